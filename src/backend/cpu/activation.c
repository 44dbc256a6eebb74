/* activation.c — relu, leakyrelu, sigmoid, tanh, relu6, hardsigmoid, hardswish, silu, gelu and elu
 * on the CPU: one vectorised loop over all values, split over threads in element ranges; prelu
 * and scale (a factor per channel) plane by plane, their backward threaded over channels, to the bit. relu,
 * leakyrelu, relu6, hardsigmoid and hardswish, and sigmoid's and tanh's backward given the same
 * forward output, give the reference's values to the bit (products in double where it computes in
 * double, and the same dy * 0 that turns an infinite gradient into NaN); sigmoid, tanh and silu
 * use a float e^x and stay within a few 1e-7 of the reference's double ones, and so does gelu (a
 * float erfc, or tanh); elu computes in double with libm as the reference does, threaded, and
 * gives its bits (glibc's vector exp stands in only under -ffast-math, which the build does not use). The elementwise kernels are
 * compiled for AVX-512 and for the baseline (CPU_CLONES): the same bits either way.
 * Covered by tests/test_cpu_ops.c. */
#include <math.h>

#include "../../ops/activation_ref.h"
#include "kernel_util.h"

/* ---- f(x) and dy * f'(x), each as the reference computes it in src/ops/activation.c -------- */

static inline float relu_value(float x, double slope)
{
    (void)slope;
    return cpu_relu(x);
}
static inline float relu_grad(float dy, float x, float y, double slope)
{
    (void)y, (void)slope;
    return cpu_relu_grad(dy, x);
}

static inline float leaky_value(float x, double slope) { return cpu_select(x > 0, x, (float)(slope * (double)x)); }
static inline float leaky_grad(float dy, float x, float y, double slope)
{
    (void)y;
    return cpu_select(x > 0, dy, (float)((double)dy * slope));
}

/* 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below: e^-|x| <= 1 never overflows */
static inline float sigmoid_value(float x, double slope)
{
    (void)slope;
    float e = cpu_exp_nonpos(-fabsf(x)), s = 1.0f / (1.0f + e);
    return cpu_select(x >= 0, s, e * s);
}
static inline float sigmoid_grad(float dy, float x, float y, double slope)
{
    (void)x, (void)slope;
    return (float)((double)dy * ((double)y * (1.0 - (double)y))); /* s' = s (1 - s) */
}

/* Cephes' tanhf: an odd polynomial below |x| = 0.625, where 1 - e^-2|x| would cancel; above it
 * (1 - e^-2|x|) / (1 + e^-2|x|) with the sign of x */
static inline float tanh_value(float x, double slope)
{
    (void)slope;
    float a = fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * x + x;
    float e = cpu_exp_nonpos(-2.0f * a), t = (1.0f - e) / (1.0f + e);
    return cpu_select(a < 0.625f, small, copysignf(t, x));
}
static inline float tanh_grad(float dy, float x, float y, double slope)
{
    (void)x, (void)slope;
    return (float)((double)dy * (1.0 - (double)y * (double)y)); /* tanh' = 1 - tanh^2 */
}

/* min(max(0, x), 6); the gradient passes strictly inside (0, 6), as PyTorch's */
static inline float relu6_value(float x, double slope)
{
    (void)slope;
    return cpu_relu6(x);
}
static inline float relu6_grad(float dy, float x, float y, double slope)
{
    (void)y, (void)slope;
    return cpu_relu6_grad(dy, x);
}

/* x/6 + 1/2 on (-3, 3), 0 and 1 outside, in double as the reference */
static inline float hardsigmoid_value(float x, double slope)
{
    (void)slope;
    return cpu_select(x <= -3, 0.0f, cpu_select(x >= 3, 1.0f, (float)((double)x / 6 + 0.5)));
}
static inline float hardsigmoid_grad(float dy, float x, float y, double slope)
{
    (void)y, (void)slope;
    return cpu_select((x > -3) & (x < 3), (float)((double)dy * (1.0 / 6)), dy * 0.0f);
}

/* x (x + 3) / 6 on (-3, 3), 0 below, x above; f' = x/3 + 1/2 on [-3, 3] (PyTorch's side) */
static inline float hardswish_value(float x, double slope)
{
    (void)slope;
    return cpu_select(x <= -3, 0.0f, cpu_select(x >= 3, x, (float)((double)x * ((double)x + 3) / 6)));
}
static inline float hardswish_grad(float dy, float x, float y, double slope)
{
    (void)y, (void)slope;
    return cpu_select(x < -3, dy * 0.0f, cpu_select(x <= 3, (float)((double)dy * ((double)x / 3 + 0.5)), dy));
}

/* x * sigmoid(x); f' = s (1 + x (1 - s)) */
static inline float silu_value(float x, double slope) { return x * sigmoid_value(x, slope); }
static inline float silu_grad(float dy, float x, float y, double slope)
{
    (void)y;
    double s = sigmoid_value(x, slope);
    return (float)((double)dy * (s * (1 + (double)x * (1 - s))));
}

/* Phi(x), the normal distribution's CDF, in float: erfc(|x| / sqrt 2) by the Chebyshev fit of
 * Numerical Recipes' erfcc (fractional error below 1.2e-7), its e^ by cpu_exp_nonpos; Phi is
 * erfc / 2 below 0 (no cancellation: relative accuracy where Phi is tiny), 1 - erfc / 2 above.
 * libm's erf in double, as the reference computes it, took 8 ns a value: 56 % of ConvNeXt-T's
 * inference on two cores */
static inline float cpu_phi(float x)
{
    float z = fabsf(x) * 0.70710678118654752f, t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    float arg = p * t - 1.26551223f - z * z; /* at most 3e-8 above 0 (at z = 0) */
    float half = 0.5f * t * cpu_exp_nonpos(cpu_select(arg > 0, 0.0f, arg));
    return cpu_select(x < 0, half, 1.0f - half);
}

/* gelu in float, within a few 1e-7 of the reference's double: x Phi(x), its gradient Phi(x) +
 * x phi(x); the tanh form x (1 + t) / 2 with t = tanh(u), u = c (x + k x^3), its gradient
 * (1 + t) / 2 + x (1 - t^2) c (1 + 3 k x^2) / 2, written with s = (1 + t) / 2 = sigmoid(2u)
 * (1 - t^2 = 4 s (1 - s)), which keeps its accuracy where 1 + t would cancel. Two kernels, one
 * a form (cn_cpu_gelu_forward) */
static inline float gelu_value(float x, double slope)
{
    (void)slope;
    return x * cpu_phi(x);
}
static inline float gelu_grad(float dy, float x, float y, double slope)
{
    (void)y, (void)slope;
    return dy * (cpu_phi(x) + x * 0.39894228040143268f * cpu_exp_nonpos(-0.5f * x * x));
}
static inline float gelu_tanh_value(float x, double slope)
{
    (void)slope;
    return x * sigmoid_value(2.0f * (float)CN_GELU_C * (x + (float)CN_GELU_K * x * x * x), 0);
}
static inline float gelu_tanh_grad(float dy, float x, float y, double slope)
{
    (void)y, (void)slope;
    float v = 2.0f * (float)CN_GELU_C * (x + (float)CN_GELU_K * x * x * x);
    float e = cpu_exp_nonpos(-fabsf(v)), a = 1.0f / (1.0f + e);
    float s = cpu_select(v >= 0, a, e * a), rest = cpu_select(v >= 0, e * a, a); /* s and 1 - s, neither cancelled */
    return dy * (s + 2.0f * x * s * rest * (float)CN_GELU_C * (1.0f + 3.0f * (float)CN_GELU_K * x * x));
}

/* elu's alpha, passed as the kernels' `slope` argument (ACT_KERNELS reads it through param) */

static inline float elu_value(float x, double alpha) { return cpu_select(x > 0, x, (float)(alpha * expm1((double)x))); }
static inline float elu_grad(float dy, float x, float y, double alpha)
{
    (void)y;
    return cpu_select(x > 0, dy, (float)((double)dy * (alpha * exp((double)x))));
}

/* y (N,C,H,W) <- f(x); dx (N,C,H,W) += dy * f'(x), from x and the forward output y (stored,
 * not added, when dx is fresh). The values go to the threads in runs of ACT_RUN, each run's loop
 * a function of its own compiled twice (CPU_CLONES): clang compiles a parallel loop's body in a
 * function without its caller's clones, so the loop over runs calls the clone rather than holding
 * the arithmetic (gcc clones either). Elementwise: the same bits however the values are split. */
#define ACT_RUN 16384
#define ACT_KERNELS(op, value, grad, param)                                                          \
    CPU_CLONES static void op##_forward_run(const float *restrict x, float *restrict y, int64_t n, double slope) \
    {                                                                                                \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++) y[i] = value(x[i], slope);               \
    }                                                                                                \
    void cn_cpu_##op##_forward(const cn_op_io *io)                                                   \
    {                                                                                                \
        int64_t count = cpu_out_count(io), runs = (count + ACT_RUN - 1) / ACT_RUN;                   \
        const float *x = io->x[0];                                                                   \
        float *y = io->y;                                                                            \
        double slope = param;                                                                        \
        CN_PAR_FOR(count >= CPU_PAR_MIN, schedule(static),                                           \
                   for (int64_t r = 0; r < runs; r++) {                                              \
                       int64_t i0 = r * ACT_RUN, n = count - i0 < ACT_RUN ? count - i0 : ACT_RUN;    \
                       op##_forward_run(x + i0, y + i0, n, slope);                                   \
                   });                                                                               \
    }                                                                                                \
    /* 0 + g where fresh: the bits of adding to zeros */                                             \
    CPU_CLONES static void op##_backward_run(const float *restrict x, const float *restrict y,       \
                                             const float *restrict dy, float *restrict dx, int64_t n, \
                                             double slope, int fresh)                                \
    {                                                                                                \
        if (fresh) {                                                                                 \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) dx[i] = 0.0f + grad(dy[i], x[i], y[i], slope); \
        } else {                                                                                     \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) dx[i] += grad(dy[i], x[i], y[i], slope); \
        }                                                                                            \
    }                                                                                                \
    void cn_cpu_##op##_backward(const cn_op_io *io)                                                  \
    {                                                                                                \
        int64_t count = cpu_out_count(io), runs = (count + ACT_RUN - 1) / ACT_RUN;                   \
        const float *x = io->x[0], *y = io->y, *dy = io->dy;                                         \
        float *dx = io->dx[0];                                                                       \
        double slope = param;                                                                        \
        int fresh = io->dx_fresh & 1;                                                                \
        if (!dx) return;                                                                             \
        CN_PAR_FOR(count >= CPU_PAR_MIN, schedule(static),                                           \
                   for (int64_t r = 0; r < runs; r++) {                                              \
                       int64_t i0 = r * ACT_RUN, n = count - i0 < ACT_RUN ? count - i0 : ACT_RUN;    \
                       op##_backward_run(x + i0, y + i0, dy + i0, dx + i0, n, slope, fresh);         \
                   });                                                                               \
    }

ACT_KERNELS(relu, relu_value, relu_grad, io->n->a.slope)
ACT_KERNELS(leakyrelu, leaky_value, leaky_grad, io->n->a.slope)
ACT_KERNELS(sigmoid, sigmoid_value, sigmoid_grad, io->n->a.slope)
ACT_KERNELS(tanh, tanh_value, tanh_grad, io->n->a.slope)
ACT_KERNELS(relu6, relu6_value, relu6_grad, io->n->a.slope)
ACT_KERNELS(hardsigmoid, hardsigmoid_value, hardsigmoid_grad, io->n->a.slope)
ACT_KERNELS(hardswish, hardswish_value, hardswish_grad, io->n->a.slope)
ACT_KERNELS(silu, silu_value, silu_grad, io->n->a.slope)
ACT_KERNELS(gelu_erf, gelu_value, gelu_grad, 0)
ACT_KERNELS(gelu_tanh, gelu_tanh_value, gelu_tanh_grad, 0)
ACT_KERNELS(elu, elu_value, elu_grad, io->n->a.alpha)
#undef ACT_KERNELS

void cn_cpu_gelu_forward(const cn_op_io *io)
{
    if (io->n->a.approximate) cn_cpu_gelu_tanh_forward(io);
    else cn_cpu_gelu_erf_forward(io);
}
void cn_cpu_gelu_backward(const cn_op_io *io)
{
    if (io->n->a.approximate) cn_cpu_gelu_tanh_backward(io);
    else cn_cpu_gelu_erf_backward(io);
}

/* ---- prelu and scale: a factor per channel, so the loops run over (sample, channel) planes --- */

/* y (N,C,H,W) <- a[c] * x, or prelu's x where x > 0; w = a (C) */
static void factor_forward(const cn_op_io *io, int prelu)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w, planes = io->batch * c;
    const float *x = io->x[0], *factor = io->w;
    float *y = io->y;
    CN_PAR_FOR(planes * hw >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            const float *restrict xp = x + p * hw;
            float *restrict yp = y + p * hw;
            float a = factor[p % c];
            _Pragma("omp simd")
            for (int64_t j = 0; j < hw; j++) yp[j] = cpu_select(prelu && xp[j] > 0, xp[j], a * xp[j]);
        });
}

/* dx (N,C,H,W) += a[c] * dy (prelu: dy where x > 0); da (C) += the sum of dy * x (prelu: over
 * x <= 0), in double per plane and plane after plane in sample order, as the reference; threads
 * over channels */
static void factor_backward(const cn_op_io *io, int prelu)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w, n = io->batch;
    const float *x = io->x[0], *dy = io->dy, *factor = io->w;
    float *dx = io->dx[0], *da = io->dw;
    CN_PAR_FOR(n * c * hw >= CPU_PAR_MIN, schedule(static),
        for (int64_t ch = 0; ch < c; ch++) {
            float a = factor[ch];
            for (int64_t i = 0; i < n; i++) {
                const float *restrict xp = x + (i * c + ch) * hw, *restrict gp = dy + (i * c + ch) * hw;
                double s = 0;
                for (int64_t j = 0; j < hw; j++)
                    if (!prelu || xp[j] <= 0) s += (double)gp[j] * xp[j];
                da[ch] += (float)s;
                if (!dx) continue;
                float *restrict dp = dx + (i * c + ch) * hw;
                _Pragma("omp simd")
                for (int64_t j = 0; j < hw; j++) dp[j] += cpu_select(prelu && xp[j] > 0, gp[j], a * gp[j]);
            }
        });
}

void cn_cpu_prelu_forward(const cn_op_io *io) { factor_forward(io, 1); }
void cn_cpu_prelu_backward(const cn_op_io *io) { factor_backward(io, 1); }
void cn_cpu_scale_forward(const cn_op_io *io) { factor_forward(io, 0); }
void cn_cpu_scale_backward(const cn_op_io *io) { factor_backward(io, 0); }
