/* pool.c — max, min and average pooling over KxK windows (max and min dilated, average with or
 * without the padding in its divisor), global average and max pooling, and adaptive average
 * pooling to a size: keys, shapes, and the plain reference kernels, forward beside backward (one
 * kernel for the window ops, one for adaptive pooling, compiled for float and double through
 * template.h). Covered by tests/test_shapes.c, tests/test_seeds.c, tests/test_calc_ref.c and
 * tests/test_torch_parity.c (PyTorch values) and tests/test_gradcheck.c. */
#ifndef CN_REAL
#include "op_impl.h"
#include "pool_ref.h"

extern const cn_op cn_op_maxpool, cn_op_minpool, cn_op_avgpool, cn_op_globalmaxpool;

#define WINDOW_KEYS \
    { .name = "kernel", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, kernel), .flags = CN_KEY_POS | CN_KEY_REQ, \
      .lo = 1, .hi = CN_INT_MAX, .doc = "window size K or KhxKw" },                                                \
    { .name = "stride", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, stride), .lo = 1, .hi = CN_INT_MAX,        \
      .doc = "step (default: the window size)" },                                                                  \
    { .name = "pad", .type = CN_KT_PAD, .offset = offsetof(cn_attrs, pad), .def = "0", .hi = CN_INT_MAX,            \
      .doc = "padding N, NhxNw, same or valid (at most half the window)" },                                        \
    { .name = "ceil", .type = CN_KT_BOOL, .offset = offsetof(cn_attrs, ceil), .def = "no", .hi = 1,                 \
      .doc = "round the output size up, keeping a last partial window (yes|no)" }

/* max and min: a window may be dilated (PyTorch's max_pool2d dilation) */
static const cn_key arg_keys[] = {
    WINDOW_KEYS,
    { .name = "dilation", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, dilation), .def = "1", .lo = 1,
      .hi = CN_INT_MAX, .doc = "spacing of the window's cells D or DhxDw" },
    { 0 },
};
/* average: the divisor counts the padding or not (PyTorch's count_include_pad) */
static const cn_key avg_keys[] = {
    WINDOW_KEYS,
    { .name = "count_pad", .type = CN_KT_BOOL, .offset = offsetof(cn_attrs, count_pad), .def = "yes", .hi = 1,
      .doc = "divide by the window's cells in the padded input (yes) or in the input only (no)" },
    { 0 },
};

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    cn_attrs *a = &n->a;
    int64_t oh, ow, count;
    if (a->stride.h == 0) a->stride = a->kernel; /* "stride defaults to the kernel size" */
    if (n->op == &cn_op_avgpool) a->dilation = (cn_pair){ 1, 1 };
    if (a->pad.mode == CN_PAD_EXPLICIT && (2 * a->pad.h > a->kernel.h || 2 * a->pad.w > a->kernel.w))
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "pad"),
                          "%s: pad=%lldx%lld is more than half the %lldx%lld window (a window would see only padding)",
                          n->op->name, (long long)a->pad.h, (long long)a->pad.w, (long long)a->kernel.h,
                          (long long)a->kernel.w);
    /* max and min keep their winner as an int32 index into the input plane */
    if ((n->op == &cn_op_maxpool || n->op == &cn_op_minpool) && in[0]->out.h * in[0]->out.w > INT32_MAX)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, n->col,
                          "%s: an input map of %lldx%lld has more than 2^31 values", n->op->name,
                          (long long)in[0]->out.h, (long long)in[0]->out.w);
    cn_status st = cn_window_shape(ctx, file, n, in[0]->out, a->kernel, a->stride, a->dilation, a->ceil, &oh, &ow);
    if (st) return st;
    n->out = (cn_dims){ in[0]->out.c, oh, ow };
    cn_rf_window(n, in[0], a->kernel.h, a->kernel.w, a->stride.h, a->stride.w, a->dilation.h, a->dilation.w);
    return cn_dims_count(ctx, file, n, n->out, &count);
}

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch;
    cn_explain_window(n, in[0], sb);
    if (n->op == &cn_op_avgpool && !n->a.count_pad)
        cn_sb_printf(sb, "    divisor: the window's cells inside the input, padding left out (count_pad=no)\n");
    cn_sb_printf(sb, "    channels unchanged: %lld; no parameters\n", (long long)n->out.c);
    cn_explain_rf(n, in[0], sb);
}

#define POOL_USAGE(name) name " KxK [stride=S] [pad=N|same|valid] [ceil=yes|no]"

/* ---- globalavgpool ------------------------------------------------------------------------ */

static cn_status infer_global(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    const cn_node *x = in[0];
    /* globalmaxpool keeps its winner as an int32 index into the input plane */
    if (n->op == &cn_op_globalmaxpool && x->out.h * x->out.w > INT32_MAX)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, n->col,
                          "%s: an input map of %lldx%lld has more than 2^31 values", n->op->name,
                          (long long)x->out.h, (long long)x->out.w);
    n->out = (cn_dims){ x->out.c, 1, 1 };
    /* one output sees the whole map */
    cn_rf_window(n, x, x->out.h, x->out.w, x->out.h, x->out.w, 1, 1);
    return CN_OK;
}

static void explain_global(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch;
    cn_sb_printf(sb, "    %s over each %lldx%lld map: %lldx%lldx%lld -> 1x1x%lld; no parameters\n",
                 n->op == &cn_op_globalmaxpool ? "max" : "mean", (long long)in[0]->out.h, (long long)in[0]->out.w,
                 (long long)in[0]->out.h, (long long)in[0]->out.w, (long long)in[0]->out.c, (long long)n->out.c);
    cn_explain_rf(n, in[0], sb);
}

/* ---- adaptiveavgpool ------------------------------------------------------------------------ */

static const cn_key adaptive_keys[] = {
    { .name = "size", .type = CN_KT_PAIR, .offset = offsetof(cn_attrs, size), .flags = CN_KEY_POS | CN_KEY_REQ,
      .lo = 1, .hi = CN_INT_MAX, .doc = "output size S or SHxSW" },
    { 0 },
};

/* adaptive windows: cn_adaptive_start, cn_adaptive_end (resample_ref.h, shared with the CUDA
 * kernels) */

static int64_t gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* the largest window of one dimension, in O(log) rather than a pass over the outputs: with
 * in = q*out + r and g = gcd(in, out), every window has q cells when r = 0; otherwise windows of
 * q + 1 cells appear, and ones of q + 2 too unless r = g (checked against a pass over every
 * window: tests/test_shapes.c) */
static int64_t adaptive_kernel(int64_t in, int64_t out)
{
    int64_t q = in / out, r = in % out;
    return r == 0 ? q : r == gcd(in, out) ? q + 1 : q + 2;
}

static cn_status infer_adaptive(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    const cn_node *x = in[0];
    int64_t count, span;
    n->out = (cn_dims){ x->out.c, n->a.size.h, n->a.size.w };
    cn_status st = cn_dims_count(ctx, file, n, n->out, &count);
    if (st) return st;
    /* o * in must not overflow in the windows' formula */
    if (!cn_mul_ok(n->out.h + 1, x->out.h, &span) || !cn_mul_ok(n->out.w + 1, x->out.w, &span))
        return cn_fail_at(ctx, CN_E_OVERFLOW, file, n->line, cn_key_col(n, "size"),
                          "adaptiveavgpool: size %lldx%lld times the input's %lldx%lld overflows 64 bits",
                          (long long)n->out.h, (long long)n->out.w, (long long)x->out.h, (long long)x->out.w);
    /* the receptive field of the largest window; the jump rounds the windows' spacing in/out down */
    n->a.kernel = (cn_pair){ adaptive_kernel(x->out.h, n->out.h), adaptive_kernel(x->out.w, n->out.w) };
    n->a.stride = (cn_pair){ x->out.h / n->out.h > 0 ? x->out.h / n->out.h : 1,
                             x->out.w / n->out.w > 0 ? x->out.w / n->out.w : 1 };
    cn_rf_window(n, x, n->a.kernel.h, n->a.kernel.w, n->a.stride.h, n->a.stride.w, 1, 1);
    return CN_OK;
}

static void explain_adaptive(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch;
    const cn_dims *x = &in[0]->out;
    cn_sb_printf(sb, "    output %lldx%lld: output (i, j) is the mean of rows floor(i*%lld/%lld) .. ceil((i+1)*%lld/%lld)-1 "
                     "and columns floor(j*%lld/%lld) .. ceil((j+1)*%lld/%lld)-1\n",
                 (long long)n->out.h, (long long)n->out.w, (long long)x->h, (long long)n->out.h, (long long)x->h,
                 (long long)n->out.h, (long long)x->w, (long long)n->out.w, (long long)x->w, (long long)n->out.w);
    cn_sb_printf(sb, "    largest window %lldx%lld, spacing about %lldx%lld; channels unchanged: %lld; no parameters\n",
                 (long long)n->a.kernel.h, (long long)n->a.kernel.w, (long long)n->a.stride.h, (long long)n->a.stride.w,
                 (long long)n->out.c);
    cn_explain_rf(n, in[0], sb);
}

/* ---- geometry ------------------------------------------------------------------------------ */

cn_pool_geom cn_pool_geom_of(const cn_node *n, const cn_node *in, int64_t batch)
{
    const cn_attrs *a = &n->a;
    /* the divisor counts the real padding: pad=same's (maybe asymmetric) bottom/right rows, but
     * not the overhang of a ceil window beyond an explicit pad (PyTorch clips it to H + pad) */
    int same = a->pad.mode == CN_PAD_SAME;
    return (cn_pool_geom){ .n = batch, .c = in->out.c, .h = in->out.h, .w = in->out.w, .kh = a->kernel.h,
                           .kw = a->kernel.w, .sh = a->stride.h, .sw = a->stride.w, .dh = a->dilation.h,
                           .dw = a->dilation.w, .pad_t = n->pad_t, .pad_l = n->pad_l,
                           .pad_b = same ? n->pad_b : n->pad_t, .pad_r = same ? n->pad_r : n->pad_l, .oh = n->out.h,
                           .ow = n->out.w, .count_pad = n->op != &cn_op_avgpool || a->count_pad };
}

/* globalavgpool and globalmaxpool pool one window the size of the map */
cn_pool_geom cn_pool_geom_global(const cn_node *in, int64_t batch)
{
    const cn_dims *x = &in->out;
    return (cn_pool_geom){ .n = batch, .c = x->c, .h = x->h, .w = x->w, .kh = x->h, .kw = x->w, .sh = x->h,
                           .sw = x->w, .dh = 1, .dw = 1, .oh = 1, .ow = 1, .count_pad = 1 };
}

/* a pooling kernel's geometry: a window's, or the whole map's (globalavgpool, globalmaxpool) */
static cn_pool_geom op_geom(const cn_op_io *io, int global)
{
    return global ? cn_pool_geom_global(io->in[0], io->batch) : cn_pool_geom_of(io->n, io->in[0], io->batch);
}

/* argmax: one int32 per output of max and min pooling */
static int64_t aux_argmax(const cn_node *n, const cn_node *const *in, int64_t batch, size_t real_size)
{
    (void)in, (void)real_size;
    int64_t per = n->out.c * n->out.h * n->out.w, bytes;
    if (!cn_mul_ok(per, batch, &bytes) || !cn_mul_ok(bytes, (int64_t)sizeof(int32_t), &bytes)) return -1;
    return bytes;
}

#define CN_TEMPLATE_FILE "pool.c"
#include "template.h"

const cn_op cn_op_maxpool = {
    .name = "maxpool", .usage = POOL_USAGE("maxpool") " [dilation=D]", .help = "largest value of each window", .keys = arg_keys,
    .inputs = 1, .infer = infer, .explain = explain, .aux_bytes = aux_argmax,
    .forward = { maxpool_forward_f32, maxpool_forward_f64 }, .backward = { maxpool_backward_f32, maxpool_backward_f64 },
};
const cn_op cn_op_minpool = {
    .name = "minpool", .usage = POOL_USAGE("minpool") " [dilation=D]", .help = "smallest value of each window", .keys = arg_keys,
    .inputs = 1, .infer = infer, .explain = explain, .aux_bytes = aux_argmax,
    .forward = { minpool_forward_f32, minpool_forward_f64 }, .backward = { minpool_backward_f32, minpool_backward_f64 },
};
const cn_op cn_op_avgpool = {
    .name = "avgpool", .usage = POOL_USAGE("avgpool") " [count_pad=yes|no]",
    .help = "mean of each window (padded cells count as 0, as in PyTorch, unless count_pad=no)",
    .keys = avg_keys, .inputs = 1, .infer = infer, .explain = explain,
    .forward = { avgpool_forward_f32, avgpool_forward_f64 }, .backward = { avgpool_backward_f32, avgpool_backward_f64 },
};
const cn_op cn_op_globalavgpool = {
    .name = "globalavgpool", .usage = "globalavgpool", .help = "mean of each channel's whole map", .keys = cn_no_keys,
    .inputs = 1, .infer = infer_global, .explain = explain_global,
    .forward = { globalavgpool_forward_f32, globalavgpool_forward_f64 },
    .backward = { globalavgpool_backward_f32, globalavgpool_backward_f64 },
};

const cn_op cn_op_globalmaxpool = {
    .name = "globalmaxpool", .usage = "globalmaxpool", .help = "largest value of each channel's whole map",
    .keys = cn_no_keys, .inputs = 1, .infer = infer_global, .explain = explain_global, .aux_bytes = aux_argmax,
    .forward = { globalmaxpool_forward_f32, globalmaxpool_forward_f64 },
    .backward = { globalmaxpool_backward_f32, globalmaxpool_backward_f64 },
};
const cn_op cn_op_adaptiveavgpool = {
    .name = "adaptiveavgpool", .usage = "adaptiveavgpool SxS",
    .help = "mean over windows that tile the map into an SxS output (PyTorch's AdaptiveAvgPool2d)",
    .keys = adaptive_keys, .inputs = 1, .infer = infer_adaptive, .explain = explain_adaptive,
    .forward = { adaptiveavgpool_forward_f32, adaptiveavgpool_forward_f64 },
    .backward = { adaptiveavgpool_backward_f32, adaptiveavgpool_backward_f64 },
};

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
    cn_pool_geom g = { .n = 1, .c = 1, .h = h, .w = w, .kh = size, .kw = size, .sh = stride, .sw = stride, .dh = 1,
                       .dw = 1, .pad_t = pad, .pad_l = pad, .pad_b = pad, .pad_r = pad, .oh = rh, .ow = rw,
                       .count_pad = 1 };
    if (y) pool_fwd_f32(&g, kind, x, y, NULL);
    *oh = rh, *ow = rw;
    return CN_OK;
}

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,C,OH,OW) <- max, min or mean of x (N,C,H,W) over each (dilated) window. Max and min skip padded
 * cells and keep the winner in argmax (N,C,OH,OW), when not NULL, as an index iy*W + ix into
 * its input plane (ties: the first in scan order; -1 for a window of padding only, y = 0).
 * mean = sum of the window's input cells / the divisor of cn_pool_window_at (count_pad). */
static void CN_FN(pool_fwd)(const cn_pool_geom *g, cn_pool_kind kind, const CN_REAL *x, CN_REAL *y,
                            int32_t *argmax)
{
    int64_t plane = g->h * g->w, oplane = g->oh * g->ow;
    for (int64_t nc = 0; nc < g->n * g->c; nc++) {
        const CN_REAL *xp = x + nc * plane;
        CN_REAL *yp = y + nc * oplane;
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                cn_pool_window win = cn_pool_window_at(g, oy, ox);
                int64_t o = oy * g->ow + ox;
                if (kind == CN_POOL_AVG) {
                    double acc = 0;
                    for (int64_t iy = win.y0; iy < win.y1; iy++)
                        for (int64_t ix = win.x0; ix < win.x1; ix++) acc += xp[iy * g->w + ix];
                    yp[o] = (CN_REAL)(acc / (double)win.area);
                    continue;
                }
                int64_t best = -1;
                CN_REAL bv = 0;
                for (int64_t iy = win.y0; iy < win.y1; iy += g->dh)
                    for (int64_t ix = win.x0; ix < win.x1; ix += g->dw) {
                        CN_REAL v = xp[iy * g->w + ix];
                        if (best < 0 || (kind == CN_POOL_MAX ? v > bv : v < bv)) best = iy * g->w + ix, bv = v;
                    }
                yp[o] = bv;
                if (argmax) argmax[nc * oplane + o] = (int32_t)best;
            }
    }
}

/* dx (N,C,H,W) += dy (N,C,OH,OW): max and min route each dy to the cell argmax names; the
 * mean gives dy / divisor to every input cell of the window (the padded ones take theirs away). */
static void CN_FN(pool_bwd)(const cn_pool_geom *g, cn_pool_kind kind, const CN_REAL *dy, const int32_t *argmax,
                            CN_REAL *dx)
{
    int64_t plane = g->h * g->w, oplane = g->oh * g->ow;
    for (int64_t nc = 0; nc < g->n * g->c; nc++) {
        const CN_REAL *gp = dy + nc * oplane;
        CN_REAL *dxp = dx + nc * plane;
        if (kind != CN_POOL_AVG) {
            for (int64_t o = 0; o < oplane; o++) {
                int32_t at = argmax[nc * oplane + o];
                if (at >= 0) dxp[at] += gp[o];
            }
            continue;
        }
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                cn_pool_window win = cn_pool_window_at(g, oy, ox);
                CN_REAL share = (CN_REAL)((double)gp[oy * g->ow + ox] / (double)win.area);
                for (int64_t iy = win.y0; iy < win.y1; iy++)
                    for (int64_t ix = win.x0; ix < win.x1; ix++) dxp[iy * g->w + ix] += share;
            }
    }
}

/* the op kernels (CN_FN(maxpool_forward) is maxpool_forward_f32 or maxpool_forward_f64, see
 * template.h): geometry from the node, argmax in aux (max and min) */
static void CN_FN(pool_op_forward)(const cn_op_io *io, cn_pool_kind kind, int global)
{
    cn_pool_geom g = op_geom(io, global);
    CN_FN(pool_fwd)(&g, kind, io->x[0], io->y, kind == CN_POOL_AVG ? NULL : io->aux);
}
static void CN_FN(pool_op_backward)(const cn_op_io *io, cn_pool_kind kind, int global)
{
    cn_pool_geom g = op_geom(io, global);
    if (io->dx[0]) CN_FN(pool_bwd)(&g, kind, io->dy, io->aux, io->dx[0]);
}

static void CN_FN(maxpool_forward)(const cn_op_io *io) { CN_FN(pool_op_forward)(io, CN_POOL_MAX, 0); }
static void CN_FN(maxpool_backward)(const cn_op_io *io) { CN_FN(pool_op_backward)(io, CN_POOL_MAX, 0); }
static void CN_FN(minpool_forward)(const cn_op_io *io) { CN_FN(pool_op_forward)(io, CN_POOL_MIN, 0); }
static void CN_FN(minpool_backward)(const cn_op_io *io) { CN_FN(pool_op_backward)(io, CN_POOL_MIN, 0); }
static void CN_FN(avgpool_forward)(const cn_op_io *io) { CN_FN(pool_op_forward)(io, CN_POOL_AVG, 0); }
static void CN_FN(avgpool_backward)(const cn_op_io *io) { CN_FN(pool_op_backward)(io, CN_POOL_AVG, 0); }
static void CN_FN(globalavgpool_forward)(const cn_op_io *io) { CN_FN(pool_op_forward)(io, CN_POOL_AVG, 1); }
static void CN_FN(globalavgpool_backward)(const cn_op_io *io) { CN_FN(pool_op_backward)(io, CN_POOL_AVG, 1); }
static void CN_FN(globalmaxpool_forward)(const cn_op_io *io) { CN_FN(pool_op_forward)(io, CN_POOL_MAX, 1); }
static void CN_FN(globalmaxpool_backward)(const cn_op_io *io) { CN_FN(pool_op_backward)(io, CN_POOL_MAX, 1); }

/* y (N,C,OH,OW) <- mean of x (N,C,H,W) over each adaptive window (sum in double in scan order) */
static void CN_FN(adaptiveavgpool_forward)(const cn_op_io *io)
{
    const cn_dims *x = &io->in[0]->out, *o = &io->n->out;
    for (int64_t nc = 0; nc < io->batch * o->c; nc++) {
        const CN_REAL *xp = (const CN_REAL *)io->x[0] + nc * x->h * x->w;
        CN_REAL *yp = (CN_REAL *)io->y + nc * o->h * o->w;
        for (int64_t oy = 0; oy < o->h; oy++)
            for (int64_t ox = 0; ox < o->w; ox++) {
                int64_t y0 = cn_adaptive_start(oy, x->h, o->h), y1 = cn_adaptive_end(oy, x->h, o->h);
                int64_t x0 = cn_adaptive_start(ox, x->w, o->w), x1 = cn_adaptive_end(ox, x->w, o->w);
                double acc = 0;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) acc += xp[iy * x->w + ix];
                yp[oy * o->w + ox] = (CN_REAL)(acc / (double)((y1 - y0) * (x1 - x0)));
            }
    }
}

/* dx (N,C,H,W) += dy / window size to every cell of each output's window */
static void CN_FN(adaptiveavgpool_backward)(const cn_op_io *io)
{
    const cn_dims *x = &io->in[0]->out, *o = &io->n->out;
    if (!io->dx[0]) return;
    for (int64_t nc = 0; nc < io->batch * o->c; nc++) {
        const CN_REAL *gp = (const CN_REAL *)io->dy + nc * o->h * o->w;
        CN_REAL *dxp = (CN_REAL *)io->dx[0] + nc * x->h * x->w;
        for (int64_t oy = 0; oy < o->h; oy++)
            for (int64_t ox = 0; ox < o->w; ox++) {
                int64_t y0 = cn_adaptive_start(oy, x->h, o->h), y1 = cn_adaptive_end(oy, x->h, o->h);
                int64_t x0 = cn_adaptive_start(ox, x->w, o->w), x1 = cn_adaptive_end(ox, x->w, o->w);
                CN_REAL share = (CN_REAL)((double)gp[oy * o->w + ox] / (double)((y1 - y0) * (x1 - x0)));
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) dxp[iy * x->w + ix] += share;
            }
    }
}

#endif
