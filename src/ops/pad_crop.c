/* pad_crop.c — `pad` adds rows and columns around each map (zeros, a reflection or the edge
 * pixel repeated, as PyTorch's F.pad with mode constant, reflect, replicate) and `crop` keeps
 * a window of it (a centred size, a size at an offset, or margins off each side: a U-Net's
 * skip connection cut to the size of the upsampled path). No parameters; receptive field and
 * jump pass through. Reference kernels, forward beside backward. Covered by
 * tests/test_gradcheck.c, tests/test_backend.c, tests/test_shapes.c, tests/test_spec_errors.c
 * and tests/test_torch_parity.c (pad_crop). */
#ifndef CN_REAL
#include "op_impl.h"

static const char *const fills[] = { "zero", "reflect", "replicate", NULL };

#define SIDE_KEYS                                                                                                 \
    { .name = "top", .type = CN_KT_INT, .offset = offsetof(cn_attrs, top), .hi = CN_INT_MAX,                      \
      .doc = "rows at the top" },                                                                                 \
    { .name = "bottom", .type = CN_KT_INT, .offset = offsetof(cn_attrs, bottom), .hi = CN_INT_MAX,                \
      .doc = "rows at the bottom" },                                                                              \
    { .name = "left", .type = CN_KT_INT, .offset = offsetof(cn_attrs, left), .hi = CN_INT_MAX,                    \
      .doc = "columns on the left" },                                                                             \
    { .name = "right", .type = CN_KT_INT, .offset = offsetof(cn_attrs, right), .hi = CN_INT_MAX,                  \
      .doc = "columns on the right" }

static const cn_key pad_keys[] = {
    { .name = "margin", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, margin), .flags = CN_KEY_POS, .hi = CN_INT_MAX,
      .doc = "rows and columns N or NhxNw on every side" },
    { .name = "size", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, size), .lo = 1, .hi = CN_INT_MAX,
      .doc = "output size HxW, the input centred (the odd row or column at the bottom/right)" },
    SIDE_KEYS,
    { .name = "mode", .type = CN_KT_CHOICE, .offset = offsetof(cn_attrs, mode), .def = "zero",
      .doc = "zero, reflect or replicate (F.pad's constant, reflect, replicate)", .choices = fills },
    { 0 },
};

static const cn_key crop_keys[] = {
    { .name = "size", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, size), .flags = CN_KEY_POS, .lo = 1,
      .hi = CN_INT_MAX, .doc = "output size HxW, centred unless offset= (the odd row or column off the bottom/right)" },
    { .name = "offset", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, offset), .hi = CN_INT_MAX,
      .doc = "top-left corner YxX of the window kept (with a size)" },
    { .name = "margin", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, margin), .hi = CN_INT_MAX,
      .doc = "rows and columns N or NhxNw taken off every side" },
    SIDE_KEYS,
    { 0 },
};

static int any_side(const cn_node *n)
{
    return cn_key_given(n, "top") || cn_key_given(n, "bottom") || cn_key_given(n, "left") || cn_key_given(n, "right");
}

/* n->pad_t, pad_b, pad_l, pad_r from margin= (or a centred size difference dh x dw), then the
 * sides written one by one */
static void resolve_sides(cn_node *n, int64_t dh, int64_t dw)
{
    const cn_attrs *a = &n->a;
    n->pad_t = dh / 2, n->pad_b = dh - dh / 2, n->pad_l = dw / 2, n->pad_r = dw - dw / 2;
    if (cn_key_given(n, "margin")) n->pad_t = n->pad_b = a->margin.h, n->pad_l = n->pad_r = a->margin.w;
    if (cn_key_given(n, "top")) n->pad_t = a->top;
    if (cn_key_given(n, "bottom")) n->pad_b = a->bottom;
    if (cn_key_given(n, "left")) n->pad_l = a->left;
    if (cn_key_given(n, "right")) n->pad_r = a->right;
}

static void pass_rf(cn_node *n, const cn_node *in)
{
    n->rf_h = in->rf_h, n->rf_w = in->rf_w, n->jump_h = in->jump_h, n->jump_w = in->jump_w;
}

static cn_status pad_infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    const cn_attrs *a = &n->a;
    cn_dims x = in[0]->out;
    int64_t dh = 0, dw = 0, count;
    if (cn_key_given(n, "size")) {
        if (cn_key_given(n, "margin") || any_side(n))
            return cn_fail_at(ctx, CN_E_PARSE, file, n->line, cn_key_col(n, "size"),
                              "pad: size= gives every side; leave out margin and top/bottom/left/right");
        if (a->size.h < x.h || a->size.w < x.w)
            return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "size"),
                              "pad: size %lldx%lld is smaller than the input %lldx%lld (crop cuts)",
                              (long long)a->size.h, (long long)a->size.w, (long long)x.h, (long long)x.w);
        dh = a->size.h - x.h, dw = a->size.w - x.w;
    }
    resolve_sides(n, dh, dw);
    /* each side is at most 2^31: the sums fit */
    n->out = (cn_dims){ x.c, x.h + n->pad_t + n->pad_b, x.w + n->pad_l + n->pad_r };
    if (a->mode == CN_FILL_REFLECT &&
        (n->pad_t >= x.h || n->pad_b >= x.h || n->pad_l >= x.w || n->pad_r >= x.w))
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "mode"),
                          "pad: reflect needs every side smaller than the input %lldx%lld, got top %lld bottom %lld "
                          "left %lld right %lld",
                          (long long)x.h, (long long)x.w, (long long)n->pad_t, (long long)n->pad_b, (long long)n->pad_l,
                          (long long)n->pad_r);
    pass_rf(n, in[0]);
    return cn_dims_count(ctx, file, n, n->out, &count);
}

static cn_status crop_infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    const cn_attrs *a = &n->a;
    cn_dims x = in[0]->out;
    if (cn_key_given(n, "size")) {
        if (cn_key_given(n, "margin") || any_side(n))
            return cn_fail_at(ctx, CN_E_PARSE, file, n->line, cn_key_col(n, "size"),
                              "crop: a size with margin or top/bottom/left/right is ambiguous; give one of them");
        if (a->size.h > x.h || a->size.w > x.w)
            return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "size"),
                              "crop: size %lldx%lld is larger than the input %lldx%lld", (long long)a->size.h,
                              (long long)a->size.w, (long long)x.h, (long long)x.w);
        resolve_sides(n, x.h - a->size.h, x.w - a->size.w);
        if (cn_key_given(n, "offset")) {
            if (a->offset.h + a->size.h > x.h || a->offset.w + a->size.w > x.w)
                return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "offset"),
                                  "crop: %lldx%lld at offset %lldx%lld reaches past the input %lldx%lld",
                                  (long long)a->size.h, (long long)a->size.w, (long long)a->offset.h,
                                  (long long)a->offset.w, (long long)x.h, (long long)x.w);
            n->pad_t = a->offset.h, n->pad_l = a->offset.w;
            n->pad_b = x.h - a->size.h - a->offset.h, n->pad_r = x.w - a->size.w - a->offset.w;
        }
    } else {
        if (cn_key_given(n, "offset"))
            return cn_fail_at(ctx, CN_E_PARSE, file, n->line, cn_key_col(n, "offset"),
                              "crop: offset= places a size: write the size too (crop HxW offset=YxX)");
        if (!cn_key_given(n, "margin") && !any_side(n))
            return cn_fail_at(ctx, CN_E_PARSE, file, n->line, n->col,
                              "crop: give a size HxW, margin=N or top=/bottom=/left=/right= (usage: %s)", n->op->usage);
        resolve_sides(n, 0, 0);
        if (n->pad_t + n->pad_b >= x.h || n->pad_l + n->pad_r >= x.w)
            return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, n->col,
                              "crop: top %lld + bottom %lld and left %lld + right %lld leave nothing of %lldx%lld",
                              (long long)n->pad_t, (long long)n->pad_b, (long long)n->pad_l, (long long)n->pad_r,
                              (long long)x.h, (long long)x.w);
    }
    n->out = (cn_dims){ x.c, x.h - n->pad_t - n->pad_b, x.w - n->pad_l - n->pad_r };
    pass_rf(n, in[0]);
    return CN_OK;
}

static void pad_crop_explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch;
    const cn_dims *x = &in[0]->out;
    int cut = n->id == CN_OP_CROP;
    char sign = cut ? '-' : '+';
    cn_sb_printf(sb,
                 "    O_h = %lld %c %lld %c %lld = %lld (top, bottom); O_w = %lld %c %lld %c %lld = %lld (left, right)\n",
                 (long long)x->h, sign, (long long)n->pad_t, sign, (long long)n->pad_b, (long long)n->out.h,
                 (long long)x->w, sign, (long long)n->pad_l, sign, (long long)n->pad_r, (long long)n->out.w);
    if (cut)
        cn_sb_printf(sb, "    keeps rows %lld..%lld, columns %lld..%lld", (long long)n->pad_t,
                     (long long)(n->pad_t + n->out.h - 1), (long long)n->pad_l, (long long)(n->pad_l + n->out.w - 1));
    else cn_sb_printf(sb, "    new pixels: %s", n->a.mode == CN_FILL_ZERO      ? "0"
                                                  : n->a.mode == CN_FILL_REFLECT ? "the input mirrored at its edge"
                                                                                 : "the nearest edge pixel");
    cn_sb_printf(sb, "; no parameters, RF and jump unchanged\n");
}

/* the input pixel an output reads: cn_pad_src (resample_ref.h, shared with the CUDA kernels) */
#define CN_TEMPLATE_FILE "pad_crop.c"
#include "template.h"

const cn_op cn_op_pad = {
    .name = "pad",
    .usage = "pad MARGIN|size=HxW [top=N] [bottom=N] [left=N] [right=N] [mode=zero|reflect|replicate]",
    .help = "add rows and columns around each map: zeros, reflection or edge (F.pad)",
    .keys = pad_keys, .inputs = 1, .infer = pad_infer, .explain = pad_crop_explain,
    .forward = { pad_forward_f32, pad_forward_f64 },
    .backward = { pad_backward_f32, pad_backward_f64 },
};

const cn_op cn_op_crop = {
    .name = "crop",
    .usage = "crop HxW [offset=YxX] | crop margin=N|top=N bottom=N left=N right=N",
    .help = "keep a window of each map: a centred size, a size at an offset, or margins off",
    .keys = crop_keys, .inputs = 1, .infer = crop_infer, .explain = pad_crop_explain,
    .forward = { crop_forward_f32, crop_forward_f64 },
    .backward = { crop_backward_f32, crop_backward_f64 },
};

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,C,H+top+bottom,W+left+right) <- x (N,C,H,W) with the new pixels filled */
static void CN_FN(pad_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    cn_dims x = io->in[0]->out, o = nd->out;
    cn_pad_fill fill = (cn_pad_fill)nd->a.mode;
    for (int64_t p = 0; p < io->batch * o.c; p++) {
        const CN_REAL *xp = (const CN_REAL *)io->x[0] + p * x.h * x.w;
        CN_REAL *yp = (CN_REAL *)io->y + p * o.h * o.w;
        for (int64_t oy = 0; oy < o.h; oy++) {
            int64_t iy = cn_pad_src(oy - nd->pad_t, x.h, fill);
            for (int64_t ox = 0; ox < o.w; ox++) {
                int64_t ix = cn_pad_src(ox - nd->pad_l, x.w, fill);
                yp[oy * o.w + ox] = iy < 0 || ix < 0 ? 0 : xp[iy * x.w + ix];
            }
        }
    }
}

/* dx (N,C,H,W) += dy (N,C,OH,OW) at the pixel each output copied (edges gather several) */
static void CN_FN(pad_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    cn_dims x = io->in[0]->out, o = nd->out;
    cn_pad_fill fill = (cn_pad_fill)nd->a.mode;
    if (!io->dx[0]) return;
    for (int64_t p = 0; p < io->batch * o.c; p++) {
        CN_REAL *dxp = (CN_REAL *)io->dx[0] + p * x.h * x.w;
        const CN_REAL *gp = (const CN_REAL *)io->dy + p * o.h * o.w;
        for (int64_t oy = 0; oy < o.h; oy++) {
            int64_t iy = cn_pad_src(oy - nd->pad_t, x.h, fill);
            for (int64_t ox = 0; ox < o.w; ox++) {
                int64_t ix = cn_pad_src(ox - nd->pad_l, x.w, fill);
                if (iy >= 0 && ix >= 0) dxp[iy * x.w + ix] += gp[oy * o.w + ox];
            }
        }
    }
}

/* y (N,C,OH,OW) <- the window of x (N,C,H,W) at (top, left) */
static void CN_FN(crop_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    cn_dims x = io->in[0]->out, o = nd->out;
    for (int64_t p = 0; p < io->batch * o.c; p++) {
        const CN_REAL *xp = (const CN_REAL *)io->x[0] + p * x.h * x.w + nd->pad_t * x.w + nd->pad_l;
        CN_REAL *yp = (CN_REAL *)io->y + p * o.h * o.w;
        for (int64_t oy = 0; oy < o.h; oy++)
            for (int64_t ox = 0; ox < o.w; ox++) yp[oy * o.w + ox] = xp[oy * x.w + ox];
    }
}

/* dx (N,C,H,W) += dy (N,C,OH,OW) inside the window; the cut border gets nothing */
static void CN_FN(crop_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    cn_dims x = io->in[0]->out, o = nd->out;
    if (!io->dx[0]) return;
    for (int64_t p = 0; p < io->batch * o.c; p++) {
        CN_REAL *dxp = (CN_REAL *)io->dx[0] + p * x.h * x.w + nd->pad_t * x.w + nd->pad_l;
        const CN_REAL *gp = (const CN_REAL *)io->dy + p * o.h * o.w;
        for (int64_t oy = 0; oy < o.h; oy++)
            for (int64_t ox = 0; ox < o.w; ox++) dxp[oy * x.w + ox] += gp[oy * o.w + ox];
    }
}

#endif
