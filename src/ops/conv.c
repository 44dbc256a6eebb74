/* conv.c — convolution (cross-correlation, as CNNs use the word): keys, shapes, parameter
 * and MAC counts, and the plain reference kernels, forward beside backward (the truth for
 * faster paths). Covered by tests/test_shapes.c, tests/test_seeds.c, tests/test_calc_ref.c,
 * tests/test_gradcheck.c and tests/test_torch_parity.c. */
#ifndef CN_REAL
#include <string.h>

#include "conv_ref.h"
#include "op_impl.h"

static const cn_key keys[] = {
    { .name = "filters", .type = CN_KT_INT, .offset = offsetof(cn_attrs, filters), .flags = CN_KEY_POS | CN_KEY_REQ,
      .lo = 1, .hi = CN_INT_MAX, .doc = "number of filters (output channels)" },
    { .name = "kernel", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, kernel), .flags = CN_KEY_POS | CN_KEY_REQ,
      .lo = 1, .hi = CN_INT_MAX, .doc = "kernel size K or KhxKw" },
    { .name = "stride", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, stride), .def = "1", .lo = 1,
      .hi = CN_INT_MAX, .doc = "step S or ShxSw" },
    { .name = "pad", .type = CN_KT_PAD, .offset = offsetof(cn_attrs, pad), .def = "0", .hi = CN_INT_MAX,
      .doc = "zero padding N, NhxNw, same or valid" },
    { .name = "dilation", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, dilation), .def = "1", .lo = 1,
      .hi = CN_INT_MAX, .doc = "spacing of kernel taps" },
    { .name = "groups", .type = CN_KT_INT, .offset = offsetof(cn_attrs, groups), .def = "1", .lo = 1, .hi = CN_INT_MAX,
      .doc = "channel groups (in and out channels divisible by it)" },
    { .name = "bias", .type = CN_KT_BOOL, .offset = offsetof(cn_attrs, bias), .def = "yes", .hi = 1,
      .doc = "add a bias per filter (yes|no)" },
    { 0 },
};

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    const cn_attrs *a = &n->a;
    cn_dims x = in[0]->out;
    int64_t oh, ow, count;
    if (x.c % a->groups)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "groups"),
                          "conv: %lld input channels are not divisible by groups=%lld", (long long)x.c,
                          (long long)a->groups);
    if (a->filters % a->groups)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "groups"),
                          "conv: %lld filters are not divisible by groups=%lld", (long long)a->filters,
                          (long long)a->groups);
    cn_status st = cn_window_shape(ctx, file, n, x, a->kernel, a->stride, a->dilation, 0, &oh, &ow);
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
    cn_explain_rf(n, in[0], sb);
}


static int params(const cn_node *n, const cn_node *const *in, cn_param_spec *out)
{
    const cn_attrs *a = &n->a;
    int64_t depth = in[0]->out.c / a->groups, k = a->kernel.h * a->kernel.w;
    out[0] = (cn_param_spec){ "weight", 4, { a->filters, depth, a->kernel.h, a->kernel.w }, a->filters * depth * k, 1,
                              CN_PINIT_WEIGHT, depth * k, a->filters * k, 0 };
    if (!a->bias) return 1;
    out[1] = (cn_param_spec){ "bias", 1, { a->filters }, a->filters, 1, CN_PINIT_ZERO, 0, 0, 0 };
    return 2;
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

#define CN_TEMPLATE_FILE "conv.c"
#include "template.h"

const cn_op cn_op_conv = {
    .name = "conv",
    .usage = "conv FILTERS KxK [stride=S] [pad=N|same|valid] [dilation=D] [groups=G] [bias=yes|no]",
    .help = "2-D convolution (cross-correlation) over all input channels of each group",
    .keys = keys, .inputs = 1, .infer = infer, .explain = explain, .params = params,
    .forward = { conv_forward_f32, conv_forward_f64 },
    .backward = { conv_backward_f32, conv_backward_f64 },
};

void cn_conv_forward_ref(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y)
{
    conv_fwd_f32(g, x, w, b, y);
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
    if (y) conv_fwd_f32(&g, x, k, NULL, y);
    *oh = rh, *ow = rw;
    return CN_OK;
}

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,Cout,OH,OW) <- x (N,Cin,H,W) * w (Cout,Cin/G,Kh,Kw) + b (Cout) or no bias.
 * Each weight tap slides along an output row: the inner loop is contiguous for stride 1. */
static void CN_FN(conv_fwd)(const cn_conv_geom *g, const CN_REAL *x, const CN_REAL *w, const CN_REAL *b,
                            CN_REAL *y)
{
    int64_t cin_g = g->cin / g->groups, cout_g = g->cout / g->groups, plane = g->oh * g->ow;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t co = 0; co < g->cout; co++) {
            CN_REAL *yp = y + (n * g->cout + co) * plane;
            for (int64_t i = 0; i < plane; i++) yp[i] = b ? b[co] : 0;
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
 * position a shared weight touched adds its gradient (seed 002's summed w4). */
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
                const CN_REAL *xp = x + (n * g->cin + c0 + ci) * g->h * g->w;
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
    CN_FN(conv_fwd)(&g, io->x[0], w, io->n->a.bias ? w + g.cout * (g.cin / g.groups) * g.kh * g.kw : NULL, io->y);
}

static void CN_FN(conv_backward)(const cn_op_io *io)
{
    cn_conv_geom g = cn_conv_geom_of(io->n, io->in[0], io->batch);
    int64_t wn = g.cout * (g.cin / g.groups) * g.kh * g.kw;
    CN_REAL *dw = io->dw;
    CN_FN(conv_bwd)(&g, io->x[0], io->w, io->dy, io->dx[0], dw, io->n->a.bias ? dw + wn : NULL);
}

#endif
