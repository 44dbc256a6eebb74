/* conv.c — convolution (cross-correlation, as CNNs use the word) and its transpose (deconv,
 * PyTorch's nn.ConvTranspose2d): keys, shapes, parameter and MAC counts, and the plain
 * reference kernels, forward beside backward (the truth for faster paths). A deconv's forward
 * is a convolution's input gradient and its input gradient a convolution's forward, so both
 * ops run the same two kernels. Covered by tests/test_shapes.c, tests/test_seeds.c,
 * tests/test_calc_ref.c, tests/test_gradcheck.c and tests/test_torch_parity.c. */
#ifndef CN_REAL
#include <string.h>

#include "conv_ref.h"
#include "op_impl.h"

/* the keys conv and deconv share, the same words for the same things */
#define FILTERS_KEY                                                                                         \
    { .name = "filters", .type = CN_KT_INT, .offset = offsetof(cn_attrs, filters), .flags = CN_KEY_POS | CN_KEY_REQ, \
      .lo = 1, .hi = CN_INT_MAX, .doc = "number of filters (output channels)" }
#define KERNEL_KEY                                                                                          \
    { .name = "kernel", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, kernel), .flags = CN_KEY_POS | CN_KEY_REQ, \
      .lo = 1, .hi = CN_INT_MAX, .doc = "kernel size K or KhxKw" }
#define DILATION_KEY                                                                                        \
    { .name = "dilation", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, dilation), .def = "1", .lo = 1,      \
      .hi = CN_INT_MAX, .doc = "spacing of kernel taps" }
#define GROUPS_KEY                                                                                          \
    { .name = "groups", .type = CN_KT_INT, .offset = offsetof(cn_attrs, groups), .def = "1", .lo = 1,           \
      .hi = CN_INT_MAX, .doc = "channel groups (in and out channels divisible by it)" }
#define BIAS_KEY                                                                                            \
    { .name = "bias", .type = CN_KT_BOOL, .offset = offsetof(cn_attrs, bias), .def = "yes", .hi = 1,             \
      .doc = "add a bias per filter (yes|no)" }

static const cn_key keys[] = {
    FILTERS_KEY,
    KERNEL_KEY,
    { .name = "stride", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, stride), .def = "1", .lo = 1,
      .hi = CN_INT_MAX, .doc = "step S or ShxSw" },
    { .name = "pad", .type = CN_KT_PAD, .offset = offsetof(cn_attrs, pad), .def = "0", .hi = CN_INT_MAX,
      .doc = "zero padding N, NhxNw, same or valid" },
    DILATION_KEY,
    GROUPS_KEY,
    BIAS_KEY,
    CN_WEIGHT_INIT_KEYS,
    { 0 },
};

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    const cn_attrs *a = &n->a;
    cn_dims x = in[0]->out;
    int64_t oh, ow, count;
    cn_status st = cn_check_weight_init(ctx, file, n);
    if (st) return st;
    if (x.c % a->groups)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "groups"),
                          "conv: %lld input channel%s not divisible by groups=%lld", (long long)x.c,
                          x.c == 1 ? " is" : "s are", (long long)a->groups);
    if (a->filters % a->groups)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "groups"),
                          "conv: %lld filter%s not divisible by groups=%lld", (long long)a->filters,
                          a->filters == 1 ? " is" : "s are", (long long)a->groups);
    st = cn_window_shape(ctx, file, n, x, a->kernel, a->stride, a->dilation, 0, &oh, &ow);
    if (st) return st;
    n->out = (cn_dims){ a->filters, oh, ow };
    if ((st = cn_dims_count(ctx, file, n, n->out, &count))) return st;
    /* params = (Kh*Kw*Cin/groups + bias) * Cout ; MACs = Cout*Hout*Wout * (Cin/groups)*Kh*Kw */
    int64_t per_filter, params, macs;
    if (!cn_mul_ok(a->kernel.h * a->kernel.w, x.c / a->groups, &per_filter) ||
        !cn_mul_ok(per_filter + a->bias, a->filters, &params) || !cn_mul_ok(count, per_filter, &macs))
        return cn_fail_at(ctx, CN_E_OVERFLOW, file, n->line, n->col, "conv: parameter or MAC count overflows");
    n->params = n->trainable = params;
    n->macs = macs;
    cn_rf_window(n, in[0], a->kernel.h, a->kernel.w, a->stride.h, a->stride.w, a->dilation.h, a->dilation.w);
    return CN_OK;
}

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    const cn_attrs *a = &n->a;
    int64_t cin = in[0]->out.c, depth = cin / a->groups;
    cn_explain_window(n, in[0], sb);
    cn_sb_printf(sb, "    each of the %lld kernels is %lldx%lldx%lld (depth = ", (long long)a->filters,
                 (long long)a->kernel.h, (long long)a->kernel.w, (long long)depth);
    if (a->groups > 1) cn_sb_printf(sb, "input channels / groups = %lld/%lld)\n", (long long)cin, (long long)a->groups);
    else cn_sb_printf(sb, "input channels)\n");
    cn_sb_printf(sb, "    params = (%lld*%lld*", (long long)a->kernel.h, (long long)a->kernel.w);
    if (a->groups > 1) cn_sb_printf(sb, "(%lld/%lld)", (long long)cin, (long long)a->groups);
    else cn_sb_printf(sb, "%lld", (long long)cin);
    cn_sb_printf(sb, "%s)*%lld = ", a->bias ? " + 1" : "", (long long)a->filters);
    cn_sb_count(sb, n->params);
    cn_sb_printf(sb, "\n    MACs = ");
    cn_explain_batch(sb, batch);
    cn_sb_printf(sb, "%lld*%lld*%lld * %lld*%lld*%lld = ", (long long)n->out.h, (long long)n->out.w,
                 (long long)n->out.c, (long long)a->kernel.h, (long long)a->kernel.w, (long long)depth);
    cn_explain_product(sb, n->macs, batch);
    cn_sb_printf(sb, "%s\n", a->bias ? "   (bias additions not counted)" : "");
    int64_t k = a->kernel.h * a->kernel.w;
    cn_explain_weight_init(n, depth * k, a->filters * k, sb);
    cn_explain_rf(n, in[0], sb);
}


/* conv's and deconv's bias: one per filter, starting at 0 (init=torch draws it) */
static cn_param_spec bias_spec(int64_t filters)
{
    return (cn_param_spec){ .name = "bias", .rank = 1, .shape = { filters }, .count = filters, .trainable = 1,
                            .init = CN_PINIT_ZERO };
}

static int params(const cn_node *n, const cn_node *const *in, cn_param_spec *out)
{
    const cn_attrs *a = &n->a;
    int64_t depth = in[0]->out.c / a->groups, k = a->kernel.h * a->kernel.w;
    out[0] = (cn_param_spec){ .name = "weight", .rank = 4, .shape = { a->filters, depth, a->kernel.h, a->kernel.w },
                              .count = a->filters * depth * k, .trainable = 1, .init = CN_PINIT_WEIGHT,
                              .fan_in = depth * k, .fan_out = a->filters * k };
    if (a->bias) out[1] = bias_spec(a->filters);
    return cn_weight_init_specs(n, out, a->bias ? 2 : 1);
}

cn_conv_geom cn_conv_geom_of(const cn_node *n, const cn_node *in, int64_t batch)
{
    const cn_attrs *a = &n->a;
    return (cn_conv_geom){ .n = batch, .cin = in->out.c, .h = in->out.h, .w = in->out.w, .cout = a->filters,
                           .groups = a->groups, .kh = a->kernel.h, .kw = a->kernel.w, .sh = a->stride.h,
                           .sw = a->stride.w, .dh = a->dilation.h, .dw = a->dilation.w, .pad_t = n->pad_t,
                           .pad_l = n->pad_l, .oh = n->out.h, .ow = n->out.w };
}

/* Range of output columns ox whose input column ox*sw - pad_l + kx*dw lies in [0, w). */
static void valid_cols(const cn_conv_geom *g, int64_t kx, int64_t *lo, int64_t *hi)
{
    int64_t off = kx * g->dw - g->pad_l; /* ix = ox*sw + off */
    int64_t a = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
    int64_t b = g->w - 1 - off < 0 ? -1 : (g->w - 1 - off) / g->sw;
    *lo = a;
    *hi = b < g->ow - 1 ? b : g->ow - 1;
}

/* ---- deconv: transposed convolution ------------------------------------------------------- */

static const cn_key deconv_keys[] = {
    FILTERS_KEY,
    KERNEL_KEY,
    { .name = "stride", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, stride), .def = "1", .lo = 1,
      .hi = CN_INT_MAX, .doc = "upsampling step S or ShxSw" },
    { .name = "pad", .type = CN_KT_PAD, .offset = offsetof(cn_attrs, pad), .def = "0", .hi = CN_INT_MAX,
      .doc = "rows and columns N or NhxNw taken off each side of the full output" },
    { .name = "outpad", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, outpad), .def = "0", .hi = CN_INT_MAX,
      .doc = "rows and columns added at the bottom/right (less than stride or dilation)" },
    DILATION_KEY,
    GROUPS_KEY,
    BIAS_KEY,
    CN_WEIGHT_INIT_KEYS,
    { 0 },
};

/* one dimension of a deconv's output, as PyTorch: (in - 1)*s - 2p + d*(k - 1) + outpad + 1;
 * 0 when it does not fit in 64 bits (k, s, d, p, outpad are at most 2^31, in is larger after an
 * upsampling) */
static int deconv_dim(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p, int64_t op, int64_t *out)
{
    int64_t grown;
    return cn_mul_ok(in - 1, s, &grown) && cn_add_ok(grown, d * (k - 1) + op + 1 - 2 * p, out);
}

static cn_status deconv_infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    const cn_attrs *a = &n->a;
    cn_dims x = in[0]->out;
    cn_status st = cn_check_weight_init(ctx, file, n);
    if (st) return st;
    if (a->pad.mode != CN_PAD_EXPLICIT)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "pad"),
                          "deconv: pad must be N or NhxNw (same and valid are for conv)");
    if (x.c % a->groups || a->filters % a->groups)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "groups"),
                          "deconv: %lld input channels and %lld filters must both be divisible by groups=%lld",
                          (long long)x.c, (long long)a->filters, (long long)a->groups);
    if ((a->outpad.h >= a->stride.h && a->outpad.h >= a->dilation.h) ||
        (a->outpad.w >= a->stride.w && a->outpad.w >= a->dilation.w))
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "outpad"),
                          "deconv: outpad %lldx%lld must be smaller than stride %lldx%lld or dilation %lldx%lld",
                          (long long)a->outpad.h, (long long)a->outpad.w, (long long)a->stride.h,
                          (long long)a->stride.w, (long long)a->dilation.h, (long long)a->dilation.w);
    int64_t oh, ow;
    if (!deconv_dim(x.h, a->kernel.h, a->stride.h, a->dilation.h, a->pad.h, a->outpad.h, &oh) ||
        !deconv_dim(x.w, a->kernel.w, a->stride.w, a->dilation.w, a->pad.w, a->outpad.w, &ow))
        return cn_fail_at(ctx, CN_E_OVERFLOW, file, n->line, cn_key_col(n, "stride"), "deconv: output size overflows");
    if (oh < 1 || ow < 1)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "pad"),
                          "deconv: pad %lldx%lld leaves an output of %lldx%lld", (long long)a->pad.h,
                          (long long)a->pad.w, (long long)oh, (long long)ow);
    n->out = (cn_dims){ a->filters, oh, ow };
    n->pad_t = n->pad_b = a->pad.h, n->pad_l = n->pad_r = a->pad.w;
    int64_t count, in_count, per_input, params, macs;
    st = cn_dims_count(ctx, file, n, n->out, &count);
    if (st) return st;
    if ((st = cn_dims_count(ctx, file, n, x, &in_count))) return st;
    /* params = (Cin*(Cout/groups)*Kh*Kw + bias*Cout); MACs = Cin*H*W * (Cout/groups)*Kh*Kw: every
     * input value times every tap of its group's kernels, as nn.ConvTranspose2d is counted */
    int64_t kk = a->kernel.h * a->kernel.w, weights;
    if (!cn_mul_ok(kk, a->filters / a->groups, &per_input) || !cn_mul_ok(per_input, x.c, &weights) ||
        !cn_add_ok(weights, a->bias ? a->filters : 0, &params) || !cn_mul_ok(in_count, per_input, &macs))
        return cn_fail_at(ctx, CN_E_OVERFLOW, file, n->line, n->col, "deconv: parameter or MAC count overflows");
    n->params = n->trainable = params;
    n->macs = macs;
    cn_rf_upsample(n, in[0], (cn_pair){ 1, 1 }, a->stride, (cn_pair){ 1, 1 },
                   (cn_pair){ a->dilation.h * (a->kernel.h - 1) + 1, a->dilation.w * (a->kernel.w - 1) + 1 });
    return CN_OK;
}

static void deconv_explain_dim(cn_strbuf *sb, const char *label, int64_t in, int64_t k, int64_t s, int64_t d,
                               int64_t p, int64_t op, int64_t out)
{
    cn_sb_printf(sb, "    %s = (%lld - 1)*%lld - 2*%lld + ", label, (long long)in, (long long)s, (long long)p);
    if (d > 1) cn_sb_printf(sb, "%lld*(%lld - 1)", (long long)d, (long long)k);
    else cn_sb_printf(sb, "(%lld - 1)", (long long)k);
    cn_sb_printf(sb, " + %lld + 1 = %lld\n", (long long)op, (long long)out);
}

static void deconv_explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    const cn_attrs *a = &n->a;
    cn_dims x = in[0]->out;
    int64_t per = a->filters / a->groups;
    int same = x.h == x.w && a->kernel.h == a->kernel.w && a->stride.h == a->stride.w &&
               a->dilation.h == a->dilation.w && a->pad.h == a->pad.w && a->outpad.h == a->outpad.w;
    deconv_explain_dim(sb, same ? "O" : "O_h", x.h, a->kernel.h, a->stride.h, a->dilation.h, a->pad.h, a->outpad.h,
                       n->out.h);
    if (!same)
        deconv_explain_dim(sb, "O_w", x.w, a->kernel.w, a->stride.w, a->dilation.w, a->pad.w, a->outpad.w, n->out.w);
    cn_sb_printf(sb, "    each input value scatters through %lld kernels of %lldx%lld (filters", (long long)per,
                 (long long)a->kernel.h, (long long)a->kernel.w);
    if (a->groups > 1) cn_sb_printf(sb, " / groups = %lld/%lld", (long long)a->filters, (long long)a->groups);
    cn_sb_printf(sb, ")\n    params = %lld*%lld*%lld*%lld", (long long)x.c, (long long)per, (long long)a->kernel.h,
                 (long long)a->kernel.w);
    if (a->bias) cn_sb_printf(sb, " + %lld", (long long)a->filters);
    cn_sb_printf(sb, " = ");
    cn_sb_count(sb, n->params);
    cn_sb_printf(sb, "\n    MACs = ");
    cn_explain_batch(sb, batch);
    cn_sb_printf(sb, "%lld*%lld*%lld * %lld*%lld*%lld = ", (long long)x.h, (long long)x.w, (long long)x.c,
                 (long long)per, (long long)a->kernel.h, (long long)a->kernel.w);
    cn_explain_product(sb, n->macs, batch);
    cn_sb_printf(sb, "%s\n", a->bias ? "   (bias additions not counted)" : "");
    cn_explain_weight_init(n, per * a->kernel.h * a->kernel.w, x.c * a->kernel.h * a->kernel.w, sb);
    cn_sb_printf(sb, "    (RF: the jump divides by the stride; the kernel spans %lld output steps more)\n",
                 (long long)(a->dilation.h * (a->kernel.h - 1)));
    cn_explain_rf_change(n, in[0], sb);
}

/* weight (Cin, Cout/groups, Kh, Kw) as nn.ConvTranspose2d, then bias (Cout) */
static int deconv_params(const cn_node *n, const cn_node *const *in, cn_param_spec *out)
{
    const cn_attrs *a = &n->a;
    int64_t cin = in[0]->out.c, per = a->filters / a->groups, k = a->kernel.h * a->kernel.w;
    out[0] = (cn_param_spec){ .name = "weight", .rank = 4, .shape = { cin, per, a->kernel.h, a->kernel.w },
                              .count = cin * per * k, .trainable = 1, .init = CN_PINIT_WEIGHT, .fan_in = per * k,
                              .fan_out = cin * k };
    if (a->bias) out[1] = bias_spec(a->filters);
    return cn_weight_init_specs(n, out, a->bias ? 2 : 1);
}

/* The convolution whose input gradient deconv node n is: it reads the deconv's output
 * (N, Cout, OH, OW) and writes its input (N, Cin, H, W), with the same weight tensor. */
cn_conv_geom cn_deconv_geom_of(const cn_node *n, const cn_node *in, int64_t batch)
{
    const cn_attrs *a = &n->a;
    return (cn_conv_geom){ .n = batch, .cin = n->out.c, .h = n->out.h, .w = n->out.w, .cout = in->out.c,
                           .groups = a->groups, .kh = a->kernel.h, .kw = a->kernel.w, .sh = a->stride.h,
                           .sw = a->stride.w, .dh = a->dilation.h, .dw = a->dilation.w, .pad_t = a->pad.h,
                           .pad_l = a->pad.w, .oh = in->out.h, .ow = in->out.w };
}

#define CN_TEMPLATE_FILE "conv.c"
#include "template.h"

const cn_op cn_op_deconv = {
    .name = "deconv",
    .usage = "deconv FILTERS KxK [stride=S] [pad=N] [outpad=N] [dilation=D] [groups=G] [bias=yes|no] [init=HOW]",
    .help = "transposed convolution (nn.ConvTranspose2d): upsamples by the stride",
    .keys = deconv_keys, .inputs = 1, .infer = deconv_infer, .explain = deconv_explain, .params = deconv_params,
    .forward = { deconv_forward_f32, deconv_forward_f64 },
    .backward = { deconv_backward_f32, deconv_backward_f64 },
};

const cn_op cn_op_conv = {
    .name = "conv",
    .usage = "conv FILTERS KxK [stride=S] [pad=N|same|valid] [dilation=D] [groups=G] [bias=yes|no] [init=HOW]",
    .help = "2-D convolution (cross-correlation) over all input channels of each group",
    .keys = keys, .inputs = 1, .infer = infer, .explain = explain, .params = params,
    .forward = { conv_forward_f32, conv_forward_f64 },
    .backward = { conv_backward_f32, conv_backward_f64 },
};

void cn_conv_forward_ref(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y)
{
    conv_fwd_f32(g, x, w, b, y, 0);
}

cn_status cn_conv_out_size(cn_ctx *ctx, int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dilation,
                           int64_t *out)
{
    *out = 0;
    if (in < 1 || k < 1 || stride < 1 || pad < 0 || dilation < 1)
        return cn_fail(ctx, CN_E_ARG, "need input >= 1, kernel >= 1, stride >= 1, pad >= 0, dilation >= 1");
    int64_t lo, hi;
    if (cn_window_dim(CN_PAD_EXPLICIT, in, k, stride, dilation, pad, 0, out, &lo, &hi)) return CN_OK;
    return cn_fail(ctx, CN_E_SHAPE, "kernel %lld%s larger than padded input %lld", (long long)(dilation * (k - 1) + 1),
                   dilation > 1 ? " (dilated)" : "", (long long)(in + 2 * pad));
}

cn_status cn_conv2d_single(cn_ctx *ctx, const float *x, int64_t h, int64_t w, const float *k, int64_t kh,
                           int64_t kw, int64_t stride, int64_t pad, float *y, int64_t *oh, int64_t *ow)
{
    cn_status st;
    *oh = *ow = 0;
    int64_t rh, rw;
    if ((st = cn_conv_out_size(ctx, h, kh, stride, pad, 1, &rh)) || (st = cn_conv_out_size(ctx, w, kw, stride, pad, 1, &rw)))
        return st;
    cn_conv_geom g = { .n = 1, .cin = 1, .h = h, .w = w, .cout = 1, .groups = 1, .kh = kh, .kw = kw, .sh = stride,
                       .sw = stride, .dh = 1, .dw = 1, .pad_t = pad, .pad_l = pad, .oh = rh, .ow = rw };
    if (y) conv_fwd_f32(&g, x, k, NULL, y, 0);
    *oh = rh, *ow = rw;
    return CN_OK;
}

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,Cout,OH,OW) <- x (N,Cin,H,W) * w (Cout,Cin/G,Kh,Kw) + b (Cout) or no bias; with add_to_y,
 * y += instead (a deconv's input gradient). Each weight tap slides along an output row: the
 * inner loop is contiguous for stride 1. */
static void CN_FN(conv_fwd)(const cn_conv_geom *g, const CN_REAL *x, const CN_REAL *w, const CN_REAL *b,
                            CN_REAL *y, int add_to_y)
{
    int64_t cin_g = g->cin / g->groups, cout_g = g->cout / g->groups, plane = g->oh * g->ow;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t co = 0; co < g->cout; co++) {
            CN_REAL *yp = y + (n * g->cout + co) * plane;
            for (int64_t i = 0; i < plane && !add_to_y; i++) yp[i] = b ? b[co] : 0;
            int64_t c0 = (co / cout_g) * cin_g;
            for (int64_t ci = 0; ci < cin_g; ci++) {
                const CN_REAL *xp = x + (n * g->cin + c0 + ci) * g->h * g->w;
                for (int64_t ky = 0; ky < g->kh; ky++)
                    for (int64_t kx = 0; kx < g->kw; kx++) {
                        CN_REAL wv = w[((co * cin_g + ci) * g->kh + ky) * g->kw + kx];
                        int64_t lo, hi, off = kx * g->dw - g->pad_l;
                        valid_cols(g, kx, &lo, &hi);
                        for (int64_t oy = 0; oy < g->oh; oy++) {
                            int64_t iy = oy * g->sh - g->pad_t + ky * g->dh;
                            if (iy < 0 || iy >= g->h) continue;
                            int64_t base = iy * g->w + off; /* may be negative: only base + ox*sw >= 0 is read */
                            CN_REAL *yr = yp + oy * g->ow;
                            for (int64_t ox = lo; ox <= hi; ox++) yr[ox] += wv * xp[base + ox * g->sw];
                        }
                    }
            }
        }
}

/* dx (N,Cin,H,W) += dy * w, dw (Cout,Cin/G,Kh,Kw) += dy (x) x, db (Cout) += sum dy: every
 * position a shared weight touched adds its gradient (seed 002's summed w4). dx, dw, db may
 * be NULL, and x when dw is (a deconv's forward is this dx alone). */
static void CN_FN(conv_bwd)(const cn_conv_geom *g, const CN_REAL *x, const CN_REAL *w, const CN_REAL *dy,
                            CN_REAL *dx, CN_REAL *dw, CN_REAL *db)
{
    int64_t cin_g = g->cin / g->groups, cout_g = g->cout / g->groups, plane = g->oh * g->ow;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t co = 0; co < g->cout; co++) {
            const CN_REAL *gp = dy + (n * g->cout + co) * plane;
            if (db) {
                double s = 0;
                for (int64_t i = 0; i < plane; i++) s += gp[i];
                db[co] += (CN_REAL)s;
            }
            int64_t c0 = (co / cout_g) * cin_g;
            for (int64_t ci = 0; ci < cin_g; ci++) {
                const CN_REAL *xp = dw ? x + (n * g->cin + c0 + ci) * g->h * g->w : NULL;
                CN_REAL *dxp = dx ? dx + (n * g->cin + c0 + ci) * g->h * g->w : NULL;
                for (int64_t ky = 0; ky < g->kh; ky++)
                    for (int64_t kx = 0; kx < g->kw; kx++) {
                        int64_t widx = ((co * cin_g + ci) * g->kh + ky) * g->kw + kx;
                        CN_REAL wv = w[widx];
                        int64_t lo, hi, off = kx * g->dw - g->pad_l;
                        valid_cols(g, kx, &lo, &hi);
                        double acc = 0;
                        for (int64_t oy = 0; oy < g->oh; oy++) {
                            int64_t iy = oy * g->sh - g->pad_t + ky * g->dh;
                            if (iy < 0 || iy >= g->h) continue;
                            int64_t base = iy * g->w + off;
                            const CN_REAL *gr = gp + oy * g->ow;
                            if (xp)
                                for (int64_t ox = lo; ox <= hi; ox++) acc += (double)gr[ox] * xp[base + ox * g->sw];
                            if (dxp)
                                for (int64_t ox = lo; ox <= hi; ox++) dxp[base + ox * g->sw] += wv * gr[ox];
                        }
                        if (dw) dw[widx] += (CN_REAL)acc;
                    }
            }
        }
}

static void CN_FN(conv_forward)(const cn_op_io *io)
{
    cn_conv_geom g = cn_conv_geom_of(io->n, io->in[0], io->batch);
    const CN_REAL *w = io->w;
    CN_FN(conv_fwd)(&g, io->x[0], w, io->n->a.bias ? w + g.cout * (g.cin / g.groups) * g.kh * g.kw : NULL, io->y, 0);
}

static void CN_FN(conv_backward)(const cn_op_io *io)
{
    cn_conv_geom g = cn_conv_geom_of(io->n, io->in[0], io->batch);
    int64_t wn = g.cout * (g.cin / g.groups) * g.kh * g.kw;
    CN_REAL *dw = io->dw;
    CN_FN(conv_bwd)(&g, io->x[0], io->w, io->dy, io->dx[0], dw, io->n->a.bias ? dw + wn : NULL);
}

/* y (N,Cout,OH,OW) <- bias, then += the transposed convolution of x (N,Cin,H,W): the input
 * gradient of the convolution cn_deconv_geom_of describes, with x in the place of its dy */
static void CN_FN(deconv_forward)(const cn_op_io *io)
{
    cn_conv_geom g = cn_deconv_geom_of(io->n, io->in[0], io->batch);
    int64_t plane = g.h * g.w, wn = g.cout * (g.cin / g.groups) * g.kh * g.kw;
    const CN_REAL *w = io->w, *b = io->n->a.bias ? w + wn : NULL;
    CN_REAL *y = io->y;
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t c = 0; c < g.cin; c++)
            for (int64_t i = 0; i < plane; i++) y[(n * g.cin + c) * plane + i] = b ? b[c] : 0;
    CN_FN(conv_bwd)(&g, NULL, w, io->x[0], y, NULL, NULL);
}

/* dx (N,Cin,H,W) += the convolution of dy (N,Cout,OH,OW) with w; dw += dy (x) x as the
 * convolution's weight gradient with their roles swapped; db (Cout) += sum of dy */
static void CN_FN(deconv_backward)(const cn_op_io *io)
{
    cn_conv_geom g = cn_deconv_geom_of(io->n, io->in[0], io->batch);
    int64_t plane = g.h * g.w, wn = g.cout * (g.cin / g.groups) * g.kh * g.kw;
    const CN_REAL *dy = io->dy;
    CN_REAL *dw = io->dw;
    if (io->dx[0]) CN_FN(conv_fwd)(&g, dy, io->w, NULL, io->dx[0], 1);
    CN_FN(conv_bwd)(&g, dy, io->w, io->x[0], NULL, dw, NULL);
    if (!io->n->a.bias) return;
    for (int64_t c = 0; c < g.cin; c++) {
        double s = 0;
        for (int64_t n = 0; n < g.n; n++)
            for (int64_t i = 0; i < plane; i++) s += dy[(n * g.cin + c) * plane + i];
        dw[wn + c] += (CN_REAL)s;
    }
}

#endif
