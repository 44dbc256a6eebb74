/* upsample.c — `upsample`: nearest or bilinear resizing by a whole factor or to a size, as
 * PyTorch's nn.Upsample / F.interpolate (align_corners included; the source coordinates are
 * computed in the same float arithmetic, so the same pixels are read). No parameters. Reference
 * kernels, forward beside backward. Covered by tests/test_gradcheck.c, tests/test_backend.c,
 * tests/test_shapes.c and tests/test_torch_parity.c (upsample_*). */
#ifndef CN_REAL
#include <math.h>

#include "op_impl.h"

static const char *const modes[] = { "nearest", "bilinear", NULL };

static const cn_key keys[] = {
    { .name = "scale", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, scale), .flags = CN_KEY_POS, .lo = 1,
      .hi = 65536, .doc = "whole factor S or ShxSw (or size=)" },
    { .name = "size", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, size), .lo = 1, .hi = CN_INT_MAX,
      .doc = "output size HxW (or a scale)" },
    { .name = "mode", .type = CN_KT_CHOICE, .offset = offsetof(cn_attrs, mode), .def = "nearest",
      .doc = "nearest or bilinear", .choices = modes },
    { .name = "align_corners", .type = CN_KT_BOOL, .offset = offsetof(cn_attrs, align_corners), .def = "no", .hi = 1,
      .doc = "bilinear: corner pixels of input and output aligned (yes|no), as PyTorch" },
    { 0 },
};

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    const cn_attrs *a = &n->a;
    cn_dims x = in[0]->out;
    int by_scale = cn_key_given(n, "scale"), by_size = cn_key_given(n, "size");
    if (by_scale == by_size)
        return cn_fail_at(ctx, CN_E_PARSE, file, n->line, by_size ? cn_key_col(n, "size") : n->col,
                          "upsample: give a scale or size=HxW, %s", by_size ? "not both" : "one of them");
    if (a->align_corners && a->mode != CN_UPSAMPLE_BILINEAR)
        return cn_fail_at(ctx, CN_E_PARSE, file, n->line, cn_key_col(n, "align_corners"),
                          "upsample: align_corners is for mode=bilinear only (as PyTorch)");
    int64_t oh = a->size.h, ow = a->size.w, count;
    if (by_scale && (!cn_mul_ok(x.h, a->scale.h, &oh) || !cn_mul_ok(x.w, a->scale.w, &ow)))
        return cn_fail_at(ctx, CN_E_OVERFLOW, file, n->line, cn_key_col(n, "scale"), "upsample: output size overflows");
    n->out = (cn_dims){ x.c, oh, ow };
    cn_status st = cn_dims_count(ctx, file, n, n->out, &count);
    if (st) return st;
    /* bilinear reads two neighbours (one jump further); the jump shrinks by in/out */
    int64_t taps = a->mode == CN_UPSAMPLE_BILINEAR ? 2 : 1;
    cn_rf_upsample(n, in[0], (cn_pair){ x.h, x.w }, (cn_pair){ oh, ow }, (cn_pair){ taps, taps }, (cn_pair){ 1, 1 });
    return CN_OK;
}

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch;
    const cn_attrs *a = &n->a;
    cn_dims x = in[0]->out;
    if (cn_key_given(n, "scale"))
        cn_sb_printf(sb, "    O = %lld*%lld x %lld*%lld = %lldx%lld", (long long)x.h, (long long)a->scale.h,
                     (long long)x.w, (long long)a->scale.w, (long long)n->out.h, (long long)n->out.w);
    else
        cn_sb_printf(sb, "    O = size = %lldx%lld", (long long)n->out.h, (long long)n->out.w);
    cn_sb_printf(sb, " (%lld channels); %s", (long long)n->out.c, modes[a->mode]);
    if (a->mode == CN_UPSAMPLE_BILINEAR)
        cn_sb_printf(sb, ", %s", a->align_corners ? "corners aligned: src = dst*(in - 1)/(out - 1)"
                                                  : "src = (dst + 0.5)*in/out - 0.5");
    else cn_sb_printf(sb, ": src = floor(dst*in/out)");
    cn_sb_printf(sb, "; no parameters\n");
    if (a->mode == CN_UPSAMPLE_BILINEAR)
        cn_sb_printf(sb, "    (RF: one input jump more for the second tap; jump * in/out)\n");
    cn_explain_rf_change(n, in[0], sb);
}

/* the source pixels: cn_nearest_src, cn_linear_src_f32/_f64 (resample_ref.h, shared with the
 * CUDA kernels) */
#define CN_TEMPLATE_FILE "upsample.c"
#include "template.h"

const cn_op cn_op_upsample = {
    .name = "upsample",
    .usage = "upsample SCALE|size=HxW [mode=nearest|bilinear] [align_corners=yes|no]",
    .help = "resize by a whole factor or to a size, nearest or bilinear (nn.Upsample)",
    .keys = keys, .inputs = 1, .infer = infer, .explain = explain,
    .forward = { upsample_forward_f32, upsample_forward_f64 },
    .backward = { upsample_backward_f32, upsample_backward_f64 },
};

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,C,OH,OW) <- x (N,C,H,W) resized */
static void CN_FN(upsample_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    cn_dims x = io->in[0]->out, o = nd->out;
    const CN_REAL *xs = io->x[0];
    CN_REAL *y = io->y;
    int align = nd->a.align_corners;
    for (int64_t p = 0; p < io->batch * o.c; p++) {
        const CN_REAL *xp = xs + p * x.h * x.w;
        CN_REAL *yp = y + p * o.h * o.w;
        for (int64_t oy = 0; oy < o.h; oy++)
            for (int64_t ox = 0; ox < o.w; ox++) {
                if (nd->a.mode == CN_UPSAMPLE_NEAREST) {
                    yp[oy * o.w + ox] = xp[cn_nearest_src(oy, x.h, o.h) * x.w + cn_nearest_src(ox, x.w, o.w)];
                    continue;
                }
                int64_t y0, y1, x0, x1;
                CN_REAL ly, lx;
                CN_FN(cn_linear_src)(oy, x.h, o.h, align, &y0, &y1, &ly);
                CN_FN(cn_linear_src)(ox, x.w, o.w, align, &x0, &x1, &lx);
                yp[oy * o.w + ox] = (1 - ly) * ((1 - lx) * xp[y0 * x.w + x0] + lx * xp[y0 * x.w + x1]) +
                                    ly * ((1 - lx) * xp[y1 * x.w + x0] + lx * xp[y1 * x.w + x1]);
            }
    }
}

/* dx (N,C,H,W) += dy (N,C,OH,OW) sent back to the pixels each output read, with its weights */
static void CN_FN(upsample_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    cn_dims x = io->in[0]->out, o = nd->out;
    const CN_REAL *dy = io->dy;
    CN_REAL *dx = io->dx[0];
    if (!dx) return;
    int align = nd->a.align_corners;
    for (int64_t p = 0; p < io->batch * o.c; p++) {
        CN_REAL *dxp = dx + p * x.h * x.w;
        const CN_REAL *gp = dy + p * o.h * o.w;
        for (int64_t oy = 0; oy < o.h; oy++)
            for (int64_t ox = 0; ox < o.w; ox++) {
                CN_REAL g = gp[oy * o.w + ox];
                if (nd->a.mode == CN_UPSAMPLE_NEAREST) {
                    dxp[cn_nearest_src(oy, x.h, o.h) * x.w + cn_nearest_src(ox, x.w, o.w)] += g;
                    continue;
                }
                int64_t y0, y1, x0, x1;
                CN_REAL ly, lx;
                CN_FN(cn_linear_src)(oy, x.h, o.h, align, &y0, &y1, &ly);
                CN_FN(cn_linear_src)(ox, x.w, o.w, align, &x0, &x1, &lx);
                dxp[y0 * x.w + x0] += (1 - ly) * (1 - lx) * g;
                dxp[y0 * x.w + x1] += (1 - ly) * lx * g;
                dxp[y1 * x.w + x0] += ly * (1 - lx) * g;
                dxp[y1 * x.w + x1] += ly * lx * g;
            }
    }
}

#endif
