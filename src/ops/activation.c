/* activation.c — elementwise activations: relu, leakyrelu, sigmoid, tanh. Shapes pass
 * through; no parameters. Reference kernels, forward beside backward, computed in double per
 * value. Covered by tests/test_gradcheck.c. */
#ifndef CN_REAL
#include <math.h>

#include "op_impl.h"

static const cn_key leaky_keys[] = {
    { .name = "slope", .type = CN_KT_FLOAT, .offset = offsetof(cn_attrs, slope), .def = "0.01", .lo = -1e30,
      .hi = 1e30, .doc = "slope for x < 0" },
    { 0 },
};

typedef enum { ACT_RELU, ACT_LEAKY, ACT_SIGMOID, ACT_TANH } act_kind;

/* f(x) */
static double act_value(act_kind k, double x, double slope)
{
    switch (k) {
    case ACT_RELU: return x > 0 ? x : 0;                 /* max(0, x) */
    case ACT_LEAKY: return x > 0 ? x : slope * x;        /* x if x > 0 else slope*x */
    case ACT_SIGMOID:                                    /* 1 / (1 + e^-x), e^x never overflows */
        return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    case ACT_TANH: return tanh(x);
    }
    return 0;
}

/* f'(x), from the input x or the output y */
static double act_deriv(act_kind k, double x, double y, double slope)
{
    switch (k) {
    case ACT_RELU: return x > 0 ? 1 : 0;
    case ACT_LEAKY: return x > 0 ? 1 : slope;
    case ACT_SIGMOID: return y * (1 - y);                /* s' = s (1 - s) */
    case ACT_TANH: return 1 - y * y;                     /* tanh' = 1 - tanh^2 */
    }
    return 0;
}

#define CN_TEMPLATE_FILE "activation.c"
#include "template.h"

/* an activation op: the input's shape and receptive field, no parameters; its kernels below */
#define ACTIVATION_OP(NAME, USAGE, HELP, KEYS, FWD32, FWD64, BWD32, BWD64)                                   \
    const cn_op cn_op_##NAME = { .name = #NAME, .usage = USAGE, .help = HELP, .keys = KEYS, .inputs = 1,       \
                                 .infer = cn_infer_pointwise, .explain = cn_explain_pointwise,                \
                                 .forward = { FWD32, FWD64 }, .backward = { BWD32, BWD64 } }
ACTIVATION_OP(relu, "relu", "max(0, x)", cn_no_keys, relu_forward_f32, relu_forward_f64, relu_backward_f32,
              relu_backward_f64);
ACTIVATION_OP(sigmoid, "sigmoid", "1 / (1 + e^-x)", cn_no_keys, sigmoid_forward_f32, sigmoid_forward_f64,
              sigmoid_backward_f32, sigmoid_backward_f64);
ACTIVATION_OP(tanh, "tanh", "(e^x - e^-x) / (e^x + e^-x)", cn_no_keys, tanh_forward_f32, tanh_forward_f64,
              tanh_backward_f32, tanh_backward_f64);
ACTIVATION_OP(leakyrelu, "leakyrelu [slope=0.01]", "x if x > 0 else slope*x", leaky_keys, leakyrelu_forward_f32,
              leakyrelu_forward_f64, leakyrelu_backward_f32, leakyrelu_backward_f64);

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,C,H,W) <- f(x (N,C,H,W)) */
static void CN_FN(act_fwd)(const cn_op_io *io, act_kind k)
{
    const cn_node *nd = io->n;
    int64_t count = nd->out.c * nd->out.h * nd->out.w * io->batch;
    const CN_REAL *x = io->x[0];
    CN_REAL *y = io->y;
    for (int64_t i = 0; i < count; i++) y[i] = (CN_REAL)act_value(k, x[i], nd->a.slope);
}

/* dx (N,C,H,W) += dy * f'(x), with y (N,C,H,W) the forward output */
static void CN_FN(act_bwd)(const cn_op_io *io, act_kind k)
{
    const cn_node *nd = io->n;
    int64_t count = nd->out.c * nd->out.h * nd->out.w * io->batch;
    const CN_REAL *x = io->x[0], *y = io->y, *dy = io->dy;
    CN_REAL *dx = io->dx[0];
    if (!dx) return;
    for (int64_t i = 0; i < count; i++) dx[i] += (CN_REAL)(dy[i] * act_deriv(k, x[i], y[i], nd->a.slope));
}

/* the op kernels (CN_FN(relu_forward) is relu_forward_f32 or relu_forward_f64, see template.h) */
static void CN_FN(relu_forward)(const cn_op_io *io) { CN_FN(act_fwd)(io, ACT_RELU); }
static void CN_FN(relu_backward)(const cn_op_io *io) { CN_FN(act_bwd)(io, ACT_RELU); }
static void CN_FN(leakyrelu_forward)(const cn_op_io *io) { CN_FN(act_fwd)(io, ACT_LEAKY); }
static void CN_FN(leakyrelu_backward)(const cn_op_io *io) { CN_FN(act_bwd)(io, ACT_LEAKY); }
static void CN_FN(sigmoid_forward)(const cn_op_io *io) { CN_FN(act_fwd)(io, ACT_SIGMOID); }
static void CN_FN(sigmoid_backward)(const cn_op_io *io) { CN_FN(act_bwd)(io, ACT_SIGMOID); }
static void CN_FN(tanh_forward)(const cn_op_io *io) { CN_FN(act_fwd)(io, ACT_TANH); }
static void CN_FN(tanh_backward)(const cn_op_io *io) { CN_FN(act_bwd)(io, ACT_TANH); }

#endif
