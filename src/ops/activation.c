/* activation.c — elementwise activations: relu, leakyrelu, sigmoid, tanh, relu6, hardsigmoid,
 * hardswish, silu, gelu, elu, and prelu (a learned slope per channel). Shapes pass through;
 * only prelu has parameters. Reference kernels, forward beside backward, computed in double per
 * value, with PyTorch's formulas and its choice of derivative at the kinks. Covered by
 * tests/test_gradcheck.c and tests/test_torch_parity.c. */
#ifndef CN_REAL
#include <math.h>

#include "activation_ref.h"
#include "op_impl.h"

static const cn_key leaky_keys[] = {
    { .name = "slope", .type = CN_KT_FLOAT, .offset = offsetof(cn_attrs, slope), .def = "0.01", .lo = -1e30,
      .hi = 1e30, .doc = "slope for x < 0" },
    { 0 },
};

static const char *const gelu_forms[] = { "none", "tanh", NULL };

static const cn_key gelu_keys[] = {
    { .name = "approximate", .type = CN_KT_CHOICE, .offset = offsetof(cn_attrs, approximate), .def = "none",
      .choices = gelu_forms, .doc = "none: the exact form with erf; tanh: the tanh approximation (as PyTorch)" },
    { 0 },
};

static const cn_key elu_keys[] = {
    { .name = "alpha", .type = CN_KT_FLOAT, .offset = offsetof(cn_attrs, alpha), .def = "1", .lo = -1e30, .hi = 1e30,
      .doc = "alpha*(e^x - 1) for x <= 0" },
    { 0 },
};

typedef enum {
    ACT_RELU, ACT_LEAKY, ACT_SIGMOID, ACT_TANH, ACT_RELU6, ACT_HARDSIGMOID, ACT_HARDSWISH, ACT_SILU, ACT_GELU, ACT_ELU
} act_kind;

static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); } /* e^x never overflows */


/* f(x) */
static double act_value(act_kind k, double x, const cn_attrs *a)
{
    switch (k) {
    case ACT_RELU: return x > 0 ? x : 0;                 /* max(0, x) */
    case ACT_LEAKY: return x > 0 ? x : a->slope * x;     /* x if x > 0 else slope*x */
    case ACT_SIGMOID: return sigmoid(x);                 /* 1 / (1 + e^-x) */
    case ACT_TANH: return tanh(x);
    case ACT_RELU6: return x <= 0 ? 0 : x >= 6 ? 6 : x;  /* min(max(0, x), 6) */
    case ACT_HARDSIGMOID: return x <= -3 ? 0 : x >= 3 ? 1 : x / 6 + 0.5;
    case ACT_HARDSWISH: return x <= -3 ? 0 : x >= 3 ? x : x * (x + 3) / 6; /* x * hardsigmoid(x) */
    case ACT_SILU: return x * sigmoid(x);
    case ACT_GELU: return cn_gelu(x, a->approximate);    /* x * Phi(x) */
    case ACT_ELU: return x > 0 ? x : a->alpha * expm1(x);
    }
    return 0;
}

/* f'(x), from the input x or the output y; at a kink PyTorch's side (relu6 and hardsigmoid
 * pass the gradient strictly inside their linear piece, hardswish takes x/3 + 1/2 at -3 and 3) */
static double act_deriv(act_kind k, double x, double y, const cn_attrs *a)
{
    switch (k) {
    case ACT_RELU: return x > 0 ? 1 : 0;
    case ACT_LEAKY: return x > 0 ? 1 : a->slope;
    case ACT_SIGMOID: return y * (1 - y);                /* s' = s (1 - s) */
    case ACT_TANH: return 1 - y * y;                     /* tanh' = 1 - tanh^2 */
    case ACT_RELU6: return x > 0 && x < 6 ? 1 : 0;
    case ACT_HARDSIGMOID: return x > -3 && x < 3 ? 1.0 / 6 : 0;
    case ACT_HARDSWISH: return x < -3 ? 0 : x <= 3 ? x / 3 + 0.5 : 1;
    case ACT_SILU: {                                     /* s (1 + x (1 - s)) */
        double s = sigmoid(x);
        return s * (1 + x * (1 - s));
    }
    case ACT_GELU: return cn_gelu_deriv(x, a->approximate);
    case ACT_ELU: return x > 0 ? 1 : a->alpha * exp(x);
    }
    return 0;
}

/* ---- prelu: y = x if x > 0 else a_c * x, with a slope a_c per channel (PyTorch's PReLU(C)) ---- */

static cn_status prelu_infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    cn_infer_pointwise(ctx, file, n, in);
    n->params = n->trainable = n->out.c;
    return CN_OK;
}

static void prelu_explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in, (void)batch;
    cn_sb_printf(sb, "    elementwise: output shape = input shape %lldx%lldx%lld\n", (long long)n->out.h,
                 (long long)n->out.w, (long long)n->out.c);
    cn_sb_printf(sb, "    params = one slope per channel = %lld trainable (each starts at 0.25)\n", (long long)n->out.c);
}

static int prelu_params(const cn_node *n, const cn_node *const *in, cn_param_spec *out)
{
    (void)in;
    int64_t c = n->out.c;
    out[0] = (cn_param_spec){ .name = "weight", .rank = 1, .shape = { c }, .count = c, .trainable = 1,
                              .init = CN_PINIT_CONST, .value = 0.25 };
    return 1;
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
ACTIVATION_OP(relu6, "relu6", "min(max(0, x), 6)", cn_no_keys, relu6_forward_f32, relu6_forward_f64,
              relu6_backward_f32, relu6_backward_f64);
ACTIVATION_OP(hardsigmoid, "hardsigmoid", "min(max(0, x/6 + 1/2), 1)", cn_no_keys, hardsigmoid_forward_f32,
              hardsigmoid_forward_f64, hardsigmoid_backward_f32, hardsigmoid_backward_f64);
ACTIVATION_OP(hardswish, "hardswish", "x * hardsigmoid(x)", cn_no_keys, hardswish_forward_f32,
              hardswish_forward_f64, hardswish_backward_f32, hardswish_backward_f64);
ACTIVATION_OP(silu, "silu", "x * sigmoid(x) (swish)", cn_no_keys, silu_forward_f32, silu_forward_f64,
              silu_backward_f32, silu_backward_f64);
ACTIVATION_OP(gelu, "gelu [approximate=none|tanh]", "x * Phi(x), Phi the normal CDF (or its tanh approximation)",
              gelu_keys, gelu_forward_f32, gelu_forward_f64, gelu_backward_f32, gelu_backward_f64);
ACTIVATION_OP(elu, "elu [alpha=1]", "x if x > 0 else alpha*(e^x - 1)", elu_keys, elu_forward_f32, elu_forward_f64,
              elu_backward_f32, elu_backward_f64);

const cn_op cn_op_prelu = {
    .name = "prelu", .usage = "prelu", .help = "x if x > 0 else a*x, a learned slope a per channel (starts at 0.25)",
    .keys = cn_no_keys, .inputs = 1, .infer = prelu_infer, .explain = prelu_explain, .params = prelu_params,
    .forward = { prelu_forward_f32, prelu_forward_f64 }, .backward = { prelu_backward_f32, prelu_backward_f64 },
};

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,C,H,W) <- f(x (N,C,H,W)) */
static void CN_FN(act_fwd)(const cn_op_io *io, act_kind k)
{
    const cn_node *nd = io->n;
    int64_t count = nd->out.c * nd->out.h * nd->out.w * io->batch;
    const CN_REAL *x = io->x[0];
    CN_REAL *y = io->y;
    for (int64_t i = 0; i < count; i++) y[i] = (CN_REAL)act_value(k, x[i], &nd->a);
}

/* dx (N,C,H,W) += dy * f'(x), with y (N,C,H,W) the forward output */
static void CN_FN(act_bwd)(const cn_op_io *io, act_kind k)
{
    const cn_node *nd = io->n;
    int64_t count = nd->out.c * nd->out.h * nd->out.w * io->batch;
    const CN_REAL *x = io->x[0], *y = io->y, *dy = io->dy;
    CN_REAL *dx = io->dx[0];
    if (!dx) return;
    for (int64_t i = 0; i < count; i++) dx[i] += (CN_REAL)(dy[i] * act_deriv(k, x[i], y[i], &nd->a));
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
static void CN_FN(relu6_forward)(const cn_op_io *io) { CN_FN(act_fwd)(io, ACT_RELU6); }
static void CN_FN(relu6_backward)(const cn_op_io *io) { CN_FN(act_bwd)(io, ACT_RELU6); }
static void CN_FN(hardsigmoid_forward)(const cn_op_io *io) { CN_FN(act_fwd)(io, ACT_HARDSIGMOID); }
static void CN_FN(hardsigmoid_backward)(const cn_op_io *io) { CN_FN(act_bwd)(io, ACT_HARDSIGMOID); }
static void CN_FN(hardswish_forward)(const cn_op_io *io) { CN_FN(act_fwd)(io, ACT_HARDSWISH); }
static void CN_FN(hardswish_backward)(const cn_op_io *io) { CN_FN(act_bwd)(io, ACT_HARDSWISH); }
static void CN_FN(silu_forward)(const cn_op_io *io) { CN_FN(act_fwd)(io, ACT_SILU); }
static void CN_FN(silu_backward)(const cn_op_io *io) { CN_FN(act_bwd)(io, ACT_SILU); }
static void CN_FN(gelu_forward)(const cn_op_io *io) { CN_FN(act_fwd)(io, ACT_GELU); }
static void CN_FN(gelu_backward)(const cn_op_io *io) { CN_FN(act_bwd)(io, ACT_GELU); }
static void CN_FN(elu_forward)(const cn_op_io *io) { CN_FN(act_fwd)(io, ACT_ELU); }
static void CN_FN(elu_backward)(const cn_op_io *io) { CN_FN(act_bwd)(io, ACT_ELU); }

/* y (N,C,H,W) <- x if x > 0 else a[c] * x; w = a (C) */
static void CN_FN(prelu_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w;
    const CN_REAL *x = io->x[0], *slope = io->w;
    CN_REAL *y = io->y;
    for (int64_t i = 0; i < io->batch * c; i++) {
        CN_REAL a = slope[i % c];
        for (int64_t j = i * hw; j < (i + 1) * hw; j++) y[j] = x[j] > 0 ? x[j] : a * x[j];
    }
}

/* dx (N,C,H,W) += dy * (1 if x > 0 else a[c]); da (C) += sum of dy * x over x <= 0 */
static void CN_FN(prelu_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w;
    const CN_REAL *x = io->x[0], *dy = io->dy, *slope = io->w;
    CN_REAL *dx = io->dx[0], *dslope = io->dw;
    for (int64_t i = 0; i < io->batch * c; i++) {
        double a = slope[i % c], da = 0;
        for (int64_t j = i * hw; j < (i + 1) * hw; j++) {
            if (x[j] <= 0) da += (double)dy[j] * x[j];
            if (dx) dx[j] += (CN_REAL)(x[j] > 0 ? dy[j] : a * dy[j]);
        }
        dslope[i % c] += (CN_REAL)da;
    }
}

#endif
