/* kernel_util.h — what the CPU backend's elementwise and pooling kernels share (pool.c,
 * activation.c, batchnorm.c, softmax.c, dropout.c, merge.c): the threading threshold, a
 * branch-free select and a vectorisable e^x. Each kernel keeps the aux layout and the semantics
 * of its reference kernel in src/ops. tests/test_cpu_ops.c checks them against the reference
 * kernels and for identical results on 1, 2 and 3 threads.
 *
 * Threads split outputs only (planes, channels, element ranges) and every sum runs in an order
 * fixed by the shapes, so results do not depend on the thread count. */
#ifndef CN_CPU_KERNEL_UTIL_H
#define CN_CPU_KERNEL_UTIL_H

#include <stdint.h>
#include <string.h>

#include "cpu_impl.h"

/* An elementwise kernel compiled three times, for AVX-512, for AVX2 (most laptops) and for the
 * baseline, the CPU choosing at load time. Only for loops without sums across lanes (no `omp simd
 * reduction`) and in ISO C (no contraction into FMAs): the clones then give the same bits. Worth it where the arithmetic
 * bounds the loop (tanh, sigmoid, silu: 4x on lenet5's tanh); pooling and batch norm, bound by
 * memory, measured no faster with it. The clones are static, called by the exported function:
 * clang 14 gives an exported function's clones an ifunc under another name, and the name stays
 * undefined. clang also compiles an OpenMP loop's body in a function of its own, for the
 * baseline only, where gcc clones it too: so a parallel loop calls the clone for its share
 * (activation.c's runs) rather than sitting inside it, where the arithmetic matters. */
#if defined(__x86_64__) || defined(__i386__)
#define CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CPU_CLONES /* one build: the baseline's */
#endif

/* below this many values a kernel stays on the calling thread: waking the others costs more */
#define CPU_PAR_MIN 32768

/* floats [p, p + n) into the caches ahead of their use: a kernel that works small planes one by
 * one asks for the next while it works this one (the hardware's prefetchers did not see the
 * jump from plane to plane in time: depthwise_flat.c's layers 1.4-1.5x; planes of 56x56 and
 * more measured no faster) */
static inline void cpu_fetch_floats(const float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 3);
}

/* values of node n's output over the batch */
static inline int64_t cpu_out_count(const cn_op_io *io)
{
    return io->n->out.c * io->n->out.h * io->n->out.w * io->batch;
}

/* c ? a : b with both arms computed and no branch: a branch whose arm computes in floating point
 * keeps the compiler from vectorising the loop (it may not run a trapping operation the source
 * runs conditionally, and it moves single-use arithmetic into the arm that uses it) */
static inline float cpu_select(int c, float a, float b)
{
    uint32_t ua, ub, keep_a = 0u - (uint32_t)(c != 0);
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & keep_a) | (ub & ~keep_a);
    memcpy(&a, &ua, sizeof a);
    return a;
}

/* relu as the reference computes it (NaN gives 0), and dy * relu'(x) (dy * 0 where x <= 0, as
 * the reference: NaN and inf give NaN): activation.c's relu, pool.c's maxpool of a relu and
 * batchnorm.c's fused one */
static inline float cpu_relu(float x) { return x > 0 ? x : 0.0f; }
static inline float cpu_relu_grad(float dy, float x) { return cpu_select(x > 0, dy, dy * 0.0f); }

/* relu6 as the reference (NaN stays NaN), and dy * relu6'(x), which its output gives as well
 * (0 < y < 6 exactly where 0 < x < 6): activation.c's relu6 and batchnorm.c's fused one */
static inline float cpu_relu6(float x) { return cpu_select(x <= 0, 0.0f, cpu_select(x >= 6, 6.0f, x)); }
static inline float cpu_relu6_grad(float dy, float x) { return cpu_select((x > 0) & (x < 6), dy, dy * 0.0f); }

/* e^x for x <= 0 (NaN stays NaN), vectorisable: e^x = 2^k e^r with k = round(x / ln 2) and
 * r = x - k ln 2 (ln 2 in two parts, |r| <= ln 2 / 2), e^r by the degree-6 polynomial of
 * Cephes' expf, within 2 ulp. 2^k is applied as 2^(k+64) (exact) times 2^-64 (one rounding),
 * so results below FLT_MIN come out as the reference's subnormals; below -104 it gives 0. */
static inline float cpu_exp_nonpos(float x)
{
    const float round_magic = 0x1.8p23f; /* x + it rounds x to an integer, kept in the low bits */
    float t = x * 1.44269504088896341f + round_magic, k = t - round_magic;
    float r = x - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t tbits, sbits;
    memcpy(&tbits, &t, sizeof tbits);
    sbits = (tbits - 0x4B400000u + 64u + 127u) << 23; /* 2^(k+64): k from t's low bits */
    float scale;
    memcpy(&scale, &sbits, sizeof scale);
    return cpu_select(x < -104.0f, 0.0f, p * scale * 0x1p-64f);
}

#endif /* CN_CPU_KERNEL_UTIL_H */
