/* conv.c — convolution (cross-correlation, as CNNs use the word): keys, shapes, parameter
 * and MAC counts, and the plain reference forward kernel (the truth for faster paths).
 * Covered by tests/test_shapes.c, tests/test_seeds.c and tests/test_calc.c. */
#include <string.h>

#include "op_impl.h"

static const cn_key keys[] = {
    { "filters", CN_KT_INT, offsetof(cn_attrs, filters), CN_KEY_POS | CN_KEY_REQ, NULL, 1, CN_INT_MAX,
      "number of filters (output channels)" },
    { "kernel", CN_KT_PAIR, offsetof(cn_attrs, kernel), CN_KEY_POS | CN_KEY_REQ, NULL, 1, CN_INT_MAX,
      "kernel size K or KhxKw" },
    { "stride", CN_KT_PAIR, offsetof(cn_attrs, stride), 0, "1", 1, CN_INT_MAX, "step S or ShxSw" },
    { "pad", CN_KT_PAD, offsetof(cn_attrs, pad), 0, "0", 0, CN_INT_MAX, "zero padding N, NhxNw, same or valid" },
    { "dilation", CN_KT_PAIR, offsetof(cn_attrs, dilation), 0, "1", 1, CN_INT_MAX, "spacing of kernel taps" },
    { "groups", CN_KT_INT, offsetof(cn_attrs, groups), 0, "1", 1, CN_INT_MAX,
      "channel groups (in and out channels divisible by it)" },
    { "bias", CN_KT_BOOL, offsetof(cn_attrs, bias), 0, "yes", 0, 1, "add a bias per filter (yes|no)" },
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
    cn_sb_count(sb, n->macs * batch);
    cn_sb_printf(sb, "%s\n", a->bias ? "   (bias additions not counted)" : "");
    cn_explain_rf(n, in[0], sb);
}

const cn_op cn_op_conv = {
    "conv",
    "conv FILTERS KxK [stride=S] [pad=N|same|valid] [dilation=D] [groups=G] [bias=yes|no]",
    "2-D convolution (cross-correlation) over all input channels of each group",
    keys, 1, infer, explain,
};

/* ---- reference kernel ------------------------------------------------------------------- */

#include "conv_ref.h"

/* y (N,Cout,OH,OW) <- x (N,Cin,H,W) * w (Cout,Cin/groups,Kh,Kw) + b (Cout) or no bias */
void cn_conv_forward_ref(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y)
{
    int64_t cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t co = 0; co < g->cout; co++) {
            int64_t grp = co / cout_g;
            for (int64_t oy = 0; oy < g->oh; oy++)
                for (int64_t ox = 0; ox < g->ow; ox++) {
                    double acc = b ? b[co] : 0.0;
                    for (int64_t ci = 0; ci < cin_g; ci++) {
                        const float *xp = x + ((n * g->cin + grp * cin_g + ci) * g->h) * g->w;
                        const float *wp = w + ((co * cin_g + ci) * g->kh) * g->kw;
                        for (int64_t ky = 0; ky < g->kh; ky++) {
                            int64_t iy = oy * g->sh - g->pad_t + ky * g->dh;
                            if (iy < 0 || iy >= g->h) continue;
                            for (int64_t kx = 0; kx < g->kw; kx++) {
                                int64_t ix = ox * g->sw - g->pad_l + kx * g->dw;
                                if (ix < 0 || ix >= g->w) continue;
                                acc += (double)xp[iy * g->w + ix] * wp[ky * g->kw + kx];
                            }
                        }
                    }
                    y[((n * g->cout + co) * g->oh + oy) * g->ow + ox] = (float)acc;
                }
        }
}

cn_status cn_conv_out_size(cn_ctx *ctx, int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dilation,
                           int64_t *out)
{
    *out = 0;
    if (in < 1 || k < 1 || stride < 1 || pad < 0 || dilation < 1)
        return cn_fail(ctx, CN_E_ARG, "need input >= 1, kernel >= 1, stride >= 1, pad >= 0, dilation >= 1");
    int64_t keff = dilation * (k - 1) + 1;
    if (keff > in + 2 * pad)
        return cn_fail(ctx, CN_E_SHAPE, "kernel %lld%s larger than padded input %lld", (long long)keff,
                       dilation > 1 ? " (dilated)" : "", (long long)(in + 2 * pad));
    *out = (in + 2 * pad - keff) / stride + 1;
    return CN_OK;
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
    if (y) cn_conv_forward_ref(&g, x, k, NULL, y);
    *oh = rh, *ow = rw;
    return CN_OK;
}
