/* sum_impl.h — sums of floats in double whose order is fixed by the values' positions alone, not by
 * the thread count, the vector width or the alignment: eight running partial sums, the value at
 * position i of a run going to lane i mod 8, folded pairwise at the end. The eight independent
 * lanes also let the compiler vectorise what a single running sum would serialise. Used by the CPU
 * kernels (batch norm, global average pooling) and the optimizer's gradient norm. */
#ifndef CN_SUM_IMPL_H
#define CN_SUM_IMPL_H

#include <stdint.h>
#include <string.h>

#define CN_SUM_LANES 8

typedef struct { double lane[CN_SUM_LANES]; } cn_sum8;

static inline cn_sum8 cn_sum8_zero(void) { return (cn_sum8){ { 0 } }; }

static inline double cn_sum8_total(const cn_sum8 *a)
{
    const double *s = a->lane;
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* a += x[0..n) */
static inline void cn_sum8_add_any(cn_sum8 *a, const float *restrict x, int64_t n)
{
    int64_t i = 0;
    for (; i + CN_SUM_LANES <= n; i += CN_SUM_LANES)
        for (int l = 0; l < CN_SUM_LANES; l++) a->lane[l] += (double)x[i + l];
    for (int l = 0; i + l < n; l++) a->lane[l] += (double)x[i + l]; /* i is a multiple of 8 */
}

/* a += (x[0..n) - shift) * (y[0..n) - shift_y): a sum of squares when x == y, of products with
 * one side centred otherwise */
static inline void cn_sum8_add_dot_any(cn_sum8 *a, const float *x, double shift, const float *y, double shift_y, int64_t n)
{
    int64_t i = 0;
    for (; i + CN_SUM_LANES <= n; i += CN_SUM_LANES)
        for (int l = 0; l < CN_SUM_LANES; l++)
            a->lane[l] += ((double)x[i + l] - shift) * ((double)y[i + l] - shift_y);
    for (int l = 0; i + l < n; l++) a->lane[l] += ((double)x[i + l] - shift) * ((double)y[i + l] - shift_y);
}

/* a += x[0..n) and b += x[0..n) * (y[0..n) - shift_y), in one pass */
static inline void cn_sum8_add_pair_any(cn_sum8 *a, cn_sum8 *b, const float *restrict x, const float *restrict y,
                                    double shift_y, int64_t n)
{
    int64_t i = 0;
    for (; i + CN_SUM_LANES <= n; i += CN_SUM_LANES)
        for (int l = 0; l < CN_SUM_LANES; l++) {
            a->lane[l] += (double)x[i + l];
            b->lane[l] += (double)x[i + l] * ((double)y[i + l] - shift_y);
        }
    for (int l = 0; i + l < n; l++) {
        a->lane[l] += (double)x[i + l];
        b->lane[l] += (double)x[i + l] * ((double)y[i + l] - shift_y);
    }
}

/* The same loops on a CPU with AVX-512, the eight lanes one vector of doubles (GCC's and clang's
 * vector extension): the same operations on the same lanes, so the same bits. Written a lane at a
 * time, as above, the compilers vectorised batch norm's sums across the loop's iterations instead,
 * each vector gathered from eight scalar loads (its backward's sums of a 32x32x64 map at batch 32:
 * 0.67 ms, a third of memory's speed). A function of AVX-512's own, inlined into the callers'
 * AVX-512 clones, called (on a CPU that has it) from the rest; the portable loops elsewhere, where
 * a vector this wide went through the stack. */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
typedef double cn_sum8_vd __attribute__((vector_size(CN_SUM_LANES * sizeof(double))));
typedef float cn_sum8_vf __attribute__((vector_size(CN_SUM_LANES * sizeof(float))));

static inline int cn_sum8_wide(void) { return __builtin_cpu_supports("avx512f"); }

/* x[0..8) as doubles, an unaligned load */
#define CN_SUM8_READ(d, x)                                                                                             \
    do {                                                                                                               \
        cn_sum8_vf f_;                                                                                                 \
        memcpy(&f_, (x), sizeof f_);                                                                                   \
        (d) = __builtin_convertvector(f_, cn_sum8_vd);                                                                 \
    } while (0)

/* the whole blocks of 8 of x[0..n) (and y); returns where the tail starts */
__attribute__((target("avx512f"))) static inline int64_t cn_sum8_add_wide(cn_sum8 *a, const float *restrict x, int64_t n)
{
    int64_t i = 0;
    cn_sum8_vd s, v;
    memcpy(&s, a->lane, sizeof s);
    for (; i + CN_SUM_LANES <= n; i += CN_SUM_LANES) {
        CN_SUM8_READ(v, x + i);
        s += v;
    }
    memcpy(a->lane, &s, sizeof s);
    return i;
}

__attribute__((target("avx512f"))) static inline int64_t cn_sum8_add_dot_wide(cn_sum8 *a, const float *x, double shift,
                                                                              const float *y, double shift_y, int64_t n)
{
    int64_t i = 0;
    cn_sum8_vd s, u, v;
    memcpy(&s, a->lane, sizeof s);
    for (; i + CN_SUM_LANES <= n; i += CN_SUM_LANES) {
        CN_SUM8_READ(u, x + i);
        CN_SUM8_READ(v, y + i);
        s += (u - shift) * (v - shift_y);
    }
    memcpy(a->lane, &s, sizeof s);
    return i;
}

__attribute__((target("avx512f"))) static inline int64_t cn_sum8_add_pair_wide(cn_sum8 *a, cn_sum8 *b, const float *restrict x,
                                                                               const float *restrict y, double shift_y,
                                                                               int64_t n)
{
    int64_t i = 0;
    cn_sum8_vd sa, sb, u, v;
    memcpy(&sa, a->lane, sizeof sa);
    memcpy(&sb, b->lane, sizeof sb);
    for (; i + CN_SUM_LANES <= n; i += CN_SUM_LANES) {
        CN_SUM8_READ(u, x + i);
        CN_SUM8_READ(v, y + i);
        sa += u;
        sb += u * (v - shift_y);
    }
    memcpy(a->lane, &sa, sizeof sa);
    memcpy(b->lane, &sb, sizeof sb);
    return i;
}

/* where the CPU has AVX-512 and n is worth a call: the wide loop, which returns where the tail starts */
#define CN_SUM8_WIDE(n, call) ((n) >= 2 * CN_SUM_LANES && cn_sum8_wide() ? (call) : 0)
#else
static inline int cn_sum8_wide(void) { return 0; }
#define CN_SUM8_WIDE(n, call) 0
#endif

/* a += x[0..n) */
static inline void cn_sum8_add(cn_sum8 *a, const float *restrict x, int64_t n)
{
    int64_t i = CN_SUM8_WIDE(n, cn_sum8_add_wide(a, x, n));
    cn_sum8_add_any(a, x + i, n - i);
}

/* a += (x[0..n) - shift) * (y[0..n) - shift_y) */
static inline void cn_sum8_add_dot(cn_sum8 *a, const float *x, double shift, const float *y, double shift_y, int64_t n)
{
    int64_t i = CN_SUM8_WIDE(n, cn_sum8_add_dot_wide(a, x, shift, y, shift_y, n));
    cn_sum8_add_dot_any(a, x + i, shift, y + i, shift_y, n - i);
}

/* a += x[0..n) and b += x[0..n) * (y[0..n) - shift_y) */
static inline void cn_sum8_add_pair(cn_sum8 *a, cn_sum8 *b, const float *restrict x, const float *restrict y,
                                    double shift_y, int64_t n)
{
    int64_t i = CN_SUM8_WIDE(n, cn_sum8_add_pair_wide(a, b, x, y, shift_y, n));
    cn_sum8_add_pair_any(a, b, x + i, y + i, shift_y, n - i);
}

#endif /* CN_SUM_IMPL_H */
