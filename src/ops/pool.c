/* pool.c — max, min and average pooling over KxK windows, and global average pooling:
 * keys, shapes, and the plain reference forward kernel.
 * Covered by tests/test_shapes.c, tests/test_seeds.c and tests/test_calc.c. */
#include <float.h>

#include "op_impl.h"
#include "pool_ref.h"

static const cn_key keys[] = {
    { "kernel", CN_KT_PAIR, offsetof(cn_attrs, kernel), CN_KEY_POS | CN_KEY_REQ, NULL, 1, CN_INT_MAX,
      "window size K or KhxKw" },
    { "stride", CN_KT_PAIR, offsetof(cn_attrs, stride), 0, NULL, 1, CN_INT_MAX, "step (default: the window size)" },
    { "pad", CN_KT_PAD, offsetof(cn_attrs, pad), 0, "0", 0, CN_INT_MAX,
      "padding N, NhxNw, same or valid (at most half the window)" },
    { "ceil", CN_KT_BOOL, offsetof(cn_attrs, ceil), 0, "no", 0, 1,
      "round the output size up, keeping a last partial window (yes|no)" },
    { 0 },
};

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    cn_attrs *a = &n->a;
    int64_t oh, ow, count;
    if (a->stride.h == 0) a->stride = a->kernel; /* "stride defaults to the kernel size" */
    a->dilation = (cn_pair){ 1, 1 };
    if (a->pad.mode == CN_PAD_EXPLICIT && (2 * a->pad.h > a->kernel.h || 2 * a->pad.w > a->kernel.w))
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "pad"),
                          "%s: pad=%lldx%lld is more than half the %lldx%lld window (a window would see only padding)",
                          n->op->name, (long long)a->pad.h, (long long)a->pad.w, (long long)a->kernel.h,
                          (long long)a->kernel.w);
    cn_status st = cn_window_shape(ctx, file, n, in[0]->out, a->kernel, a->stride, a->dilation, a->ceil, &oh, &ow);
    if (st) return st;
    n->out = (cn_dims){ in[0]->out.c, oh, ow };
    cn_rf_window(n, in[0], a->kernel.h, a->kernel.w, a->stride.h, a->stride.w, 1, 1);
    return cn_dims_count(ctx, file, n, n->out, &count);
}

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch;
    cn_explain_window(n, in[0], sb);
    cn_sb_printf(sb, "    channels unchanged: %lld; no parameters\n", (long long)n->out.c);
    cn_explain_rf(n, in[0], sb);
}

#define POOL_USAGE(name) name " KxK [stride=S] [pad=N|same|valid] [ceil=yes|no]"
const cn_op cn_op_maxpool = { "maxpool", POOL_USAGE("maxpool"), "largest value of each window", keys, 1, infer, explain };
const cn_op cn_op_minpool = { "minpool", POOL_USAGE("minpool"), "smallest value of each window", keys, 1, infer, explain };
const cn_op cn_op_avgpool = { "avgpool", POOL_USAGE("avgpool"),
                              "mean of each window (padded cells count as 0, as in PyTorch)", keys, 1, infer, explain };

/* ---- globalavgpool ------------------------------------------------------------------------ */

static const cn_key no_keys[] = { { 0 } };

static cn_status infer_global(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    (void)ctx, (void)file;
    const cn_node *x = in[0];
    n->out = (cn_dims){ x->out.c, 1, 1 };
    /* one output sees the whole map */
    cn_rf_window(n, x, x->out.h, x->out.w, x->out.h, x->out.w, 1, 1);
    return CN_OK;
}

static void explain_global(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch;
    cn_sb_printf(sb, "    mean over each %lldx%lld map: %lldx%lldx%lld -> 1x1x%lld; no parameters\n",
                 (long long)in[0]->out.h, (long long)in[0]->out.w, (long long)in[0]->out.h, (long long)in[0]->out.w,
                 (long long)in[0]->out.c, (long long)n->out.c);
    cn_explain_rf(n, in[0], sb);
}

const cn_op cn_op_globalavgpool = { "globalavgpool", "globalavgpool", "mean of each channel's whole map",
                                    no_keys, 1, infer_global, explain_global };

/* ---- reference kernel ------------------------------------------------------------------- */

/* y (N,C,OH,OW) <- max/min/mean of x (N,C,H,W) over each window; padded cells are skipped
 * by max and min and count as zeros in the mean (divisor: window clipped to the padded input) */
void cn_pool_forward_ref(const cn_pool_geom *g, cn_pool_kind kind, const float *x, float *y)
{
    for (int64_t nc = 0; nc < g->n * g->c; nc++) {
        const float *xp = x + nc * g->h * g->w;
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t y0 = oy * g->sh - g->pad_t, x0 = ox * g->sw - g->pad_l;
                int64_t y1 = y0 + g->kh, x1 = x0 + g->kw;
                int64_t ylim = g->h + g->pad_b, xlim = g->w + g->pad_r;
                int64_t area = ((y1 < ylim ? y1 : ylim) - y0) * ((x1 < xlim ? x1 : xlim) - x0);
                double acc = kind == CN_POOL_MAX ? -DBL_MAX : kind == CN_POOL_MIN ? DBL_MAX : 0.0;
                for (int64_t iy = y0 < 0 ? 0 : y0; iy < y1 && iy < g->h; iy++)
                    for (int64_t ix = x0 < 0 ? 0 : x0; ix < x1 && ix < g->w; ix++) {
                        double v = xp[iy * g->w + ix];
                        if (kind == CN_POOL_MAX) acc = v > acc ? v : acc;
                        else if (kind == CN_POOL_MIN) acc = v < acc ? v : acc;
                        else acc += v;
                    }
                if (kind == CN_POOL_AVG) acc /= (double)area;
                y[(nc * g->oh + oy) * g->ow + ox] = (float)acc;
            }
    }
}

cn_status cn_pool2d_single(cn_ctx *ctx, cn_pool_kind kind, const float *x, int64_t h, int64_t w, int64_t size,
                           int64_t stride, int64_t pad, float *y, int64_t *oh, int64_t *ow)
{
    cn_status st;
    int64_t rh, rw;
    *oh = *ow = 0;
    if (size >= 1 && 2 * pad > size)
        return cn_fail(ctx, CN_E_SHAPE, "pad %lld is more than half the %lldx%lld window", (long long)pad,
                       (long long)size, (long long)size);
    if ((st = cn_conv_out_size(ctx, h, size, stride, pad, 1, &rh)) || (st = cn_conv_out_size(ctx, w, size, stride, pad, 1, &rw)))
        return st;
    cn_pool_geom g = { .n = 1, .c = 1, .h = h, .w = w, .kh = size, .kw = size, .sh = stride, .sw = stride,
                       .pad_t = pad, .pad_l = pad, .pad_b = pad, .pad_r = pad, .oh = rh, .ow = rw };
    if (y) cn_pool_forward_ref(&g, kind, x, y);
    *oh = rh, *ow = rw;
    return CN_OK;
}
