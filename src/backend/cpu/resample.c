/* resample.c — upsample, pad and crop on the CPU: threads take planes (sample, channel), each
 * plane's work in an order fixed by the shapes. Upsample reads the source coordinates the
 * reference reads (resample_ref.h), worked out once a call into tables in the workspace instead
 * of once an output pixel. Upsample's backward gathers: each input column takes the outputs
 * that read it (the columns' table turned round) instead of four scattered adds an output. All
 * give the reference's bits. Covered by tests/test_backend.c (the op table) and
 * tests/test_cpu_ops.c. */
#include "../../ops/op_impl.h"
#include "../../ops/resample_ref.h"
#include "kernel_util.h"

/* The columns' and rows' source coordinates, and the columns' table turned round: input column
 * ix is read by outputs by_col[from[ix] .. from[ix + 1]) with weights by_col_w (each output reads
 * at most two columns). Nearest: x1 = x0 and lx = 0. */
typedef struct {
    int64_t *from; /* 64 bits: up to 2 OW entries, and OW may reach 2^31 - 1 */
    int32_t *x0, *x1, *y0, *y1, *by_col;
    float *lx, *ly, *by_col_w;
} upsample_tables;

/* the tables' bytes for output o of input x: from (64-bit, first: aligned as the workspace),
 * then the int32 and float tables */
static int64_t table_bytes(cn_dims x, cn_dims o) { return 8 * (x.w + 1) + 4 * (3 * o.w + 3 * o.h + 2 * (2 * o.w)); }

int64_t cn_cpu_upsample_workspace(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    (void)batch;
    return table_bytes(in[0]->out, n->out);
}

/* coordinates of output `dst` of `out` over `in` cells by the reference's rule */
static void source_of(const cn_node *nd, int64_t dst, int64_t in, int64_t out, int32_t *i0, int32_t *i1, float *l)
{
    int64_t a = cn_nearest_src(dst, in, out), b = a;
    float lambda = 0.0f;
    if (nd->a.mode == CN_UPSAMPLE_BILINEAR) cn_linear_src_f32(dst, in, out, nd->a.align_corners, &a, &b, &lambda);
    *i0 = (int32_t)a, *i1 = (int32_t)b, *l = lambda;
}

static upsample_tables tables_in(void *work, const cn_node *nd, cn_dims x, cn_dims o, int backward)
{
    upsample_tables t;
    t.from = work;
    int32_t *p = (int32_t *)(t.from + x.w + 1);
    t.x0 = p, t.x1 = p + o.w, t.lx = (float *)(p + 2 * o.w), p += 3 * o.w;
    t.y0 = p, t.y1 = p + o.h, t.ly = (float *)(p + 2 * o.h), p += 3 * o.h;
    t.by_col = p, t.by_col_w = (float *)(t.by_col + 2 * o.w);
    for (int64_t i = 0; i < o.w; i++) source_of(nd, i, x.w, o.w, &t.x0[i], &t.x1[i], &t.lx[i]);
    for (int64_t i = 0; i < o.h; i++) source_of(nd, i, x.h, o.h, &t.y0[i], &t.y1[i], &t.ly[i]);
    if (!backward) return t;
    /* the columns' table turned round (counting sort by input column, outputs in order) */
    int nearest = nd->a.mode == CN_UPSAMPLE_NEAREST;
    memset(t.from, 0, (size_t)(x.w + 1) * sizeof(int64_t));
    for (int64_t i = 0; i < o.w; i++) {
        t.from[t.x0[i] + 1]++;
        if (!nearest) t.from[t.x1[i] + 1]++;
    }
    for (int64_t c = 0; c < x.w; c++) t.from[c + 1] += t.from[c];
    for (int64_t i = 0; i < o.w; i++) { /* from[c]: where column c's next output goes */
        /* each output's first column, then its second (the same column at the edge) */
        for (int k = 0; k < (nearest ? 1 : 2); k++) {
            int32_t c = k ? t.x1[i] : t.x0[i];
            int64_t at = t.from[c]++;
            t.by_col[at] = (int32_t)i;
            t.by_col_w[at] = nearest ? 1.0f : k ? t.lx[i] : 1 - t.lx[i];
        }
    }
    for (int64_t c = x.w; c > 0; c--) t.from[c] = t.from[c - 1]; /* the starts, moved back */
    t.from[0] = 0;
    return t;
}

/* y (N,C,OH,OW) <- x (N,C,H,W) resized: the reference's expression, the same bits */
void cn_cpu_upsample_forward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    cn_dims x = io->in[0]->out, o = nd->out;
    upsample_tables t = tables_in(io->work, nd, x, o, 0);
    int nearest = nd->a.mode == CN_UPSAMPLE_NEAREST;
    const float *xs = io->x[0];
    float *y = io->y;
    int64_t planes = io->batch * o.c;
    CN_PAR_FOR(planes * o.h * o.w >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            const float *xp = xs + p * x.h * x.w;
            float *yp = y + p * o.h * o.w;
            for (int64_t oy = 0; oy < o.h; oy++, yp += o.w) {
                const float *r0 = xp + t.y0[oy] * x.w, *r1 = xp + t.y1[oy] * x.w;
                if (nearest) {
                    _Pragma("omp simd")
                    for (int64_t ox = 0; ox < o.w; ox++) yp[ox] = r0[t.x0[ox]];
                    continue;
                }
                float ly = t.ly[oy];
                _Pragma("omp simd")
                for (int64_t ox = 0; ox < o.w; ox++) {
                    float lx = t.lx[ox];
                    int32_t a = t.x0[ox], b = t.x1[ox];
                    yp[ox] = (1 - ly) * ((1 - lx) * r0[a] + lx * r0[b]) + ly * ((1 - lx) * r1[a] + lx * r1[b]);
                }
            }
        });
}

/* dx row d += output row g sent back through the columns' table turned round, each term
 * (row weight * column weight) * g as the reference, in its order (by output, first column
 * before second): the reference's bits for every pixel of d */
static void gather_row(const upsample_tables *t, int64_t cols, float row_w, int nearest, const float *g, float *d)
{
    for (int64_t c = 0; c < cols; c++) {
        float s = d[c];
        if (nearest)
            for (int64_t k = t->from[c]; k < t->from[c + 1]; k++) s += g[t->by_col[k]];
        else
            for (int64_t k = t->from[c]; k < t->from[c + 1]; k++) s += row_w * t->by_col_w[k] * g[t->by_col[k]];
        d[c] = s;
    }
}

/* dx (N,C,H,W) += dy (N,C,OH,OW) sent back to the pixels each output read, with its weights: a
 * gather a row, the reference's bits (an output row whose two input rows are one, at the edge:
 * the reference's scatter, whose order mixes the two) */
void cn_cpu_upsample_backward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    float *dx = io->dx[0];
    if (!dx) return;
    cn_dims x = io->in[0]->out, o = nd->out;
    upsample_tables t = tables_in(io->work, nd, x, o, 1);
    int nearest = nd->a.mode == CN_UPSAMPLE_NEAREST;
    const float *dy = io->dy;
    int64_t planes = io->batch * o.c;
    CN_PAR_FOR(planes * o.h * o.w >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            float *dxp = dx + p * x.h * x.w;
            const float *gp = dy + p * o.h * o.w;
            for (int64_t oy = 0; oy < o.h; oy++) {
                const float *g = gp + oy * o.w;
                float ly = t.ly[oy], *d0 = dxp + t.y0[oy] * x.w, *d1 = dxp + t.y1[oy] * x.w;
                if (nearest || d0 != d1) {
                    gather_row(&t, x.w, 1 - ly, nearest, g, d0);
                    if (!nearest) gather_row(&t, x.w, ly, 0, g, d1);
                    continue;
                }
                for (int64_t ox = 0; ox < o.w; ox++) {
                    float lx = t.lx[ox];
                    int32_t a = t.x0[ox], b = t.x1[ox];
                    d0[a] += (1 - ly) * (1 - lx) * g[ox];
                    d0[b] += (1 - ly) * lx * g[ox];
                    d0[a] += ly * (1 - lx) * g[ox];
                    d0[b] += ly * lx * g[ox];
                }
            }
        });
}

/* y (N,C,H+top+bottom,W+left+right) <- x (N,C,H,W) with the new pixels filled: the input's
 * columns of a row copied whole, the new ones by cn_pad_src */
void cn_cpu_pad_forward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    cn_dims x = io->in[0]->out, o = nd->out;
    int fill = nd->a.mode;
    int64_t planes = io->batch * o.c, left = nd->pad_l, inside = x.w < o.w - left ? x.w : o.w - left;
    if (inside < 0) inside = 0;
    CN_PAR_FOR(planes * o.h * o.w >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            const float *xp = (const float *)io->x[0] + p * x.h * x.w;
            float *yp = (float *)io->y + p * o.h * o.w;
            for (int64_t oy = 0; oy < o.h; oy++, yp += o.w) {
                int64_t iy = cn_pad_src(oy - nd->pad_t, x.h, fill);
                if (iy < 0) {
                    memset(yp, 0, (size_t)o.w * sizeof(float));
                    continue;
                }
                const float *r = xp + iy * x.w;
                for (int64_t ox = 0; ox < o.w; ox++) {
                    if (ox == left && inside > 0) {
                        memcpy(yp + ox, r, (size_t)inside * sizeof(float));
                        ox += inside - 1;
                        continue;
                    }
                    int64_t ix = cn_pad_src(ox - left, x.w, fill);
                    yp[ox] = ix < 0 ? 0.0f : r[ix];
                }
            }
        });
}

/* dx (N,C,H,W) += dy (N,C,OH,OW) at the pixel each output copied, in the reference's order (the
 * same bits: an edge pixel gathers several) */
void cn_cpu_pad_backward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    cn_dims x = io->in[0]->out, o = nd->out;
    int fill = nd->a.mode;
    float *dx = io->dx[0];
    if (!dx) return;
    int64_t planes = io->batch * o.c;
    CN_PAR_FOR(planes * o.h * o.w >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            float *dxp = dx + p * x.h * x.w;
            const float *gp = (const float *)io->dy + p * o.h * o.w;
            for (int64_t oy = 0; oy < o.h; oy++) {
                int64_t iy = cn_pad_src(oy - nd->pad_t, x.h, fill);
                for (int64_t ox = 0; iy >= 0 && ox < o.w; ox++) {
                    int64_t ix = cn_pad_src(ox - nd->pad_l, x.w, fill);
                    if (ix >= 0) dxp[iy * x.w + ix] += gp[oy * o.w + ox];
                }
            }
        });
}

/* y (N,C,OH,OW) <- the window of x (N,C,H,W) at (top, left), a row at a time */
void cn_cpu_crop_forward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    cn_dims x = io->in[0]->out, o = nd->out;
    int64_t planes = io->batch * o.c;
    CN_PAR_FOR(planes * o.h * o.w >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            const float *xp = (const float *)io->x[0] + p * x.h * x.w + nd->pad_t * x.w + nd->pad_l;
            float *yp = (float *)io->y + p * o.h * o.w;
            for (int64_t oy = 0; oy < o.h; oy++) memcpy(yp + oy * o.w, xp + oy * x.w, (size_t)o.w * sizeof(float));
        });
}

/* dx (N,C,H,W) += dy (N,C,OH,OW) inside the window; the cut border gets nothing */
void cn_cpu_crop_backward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    cn_dims x = io->in[0]->out, o = nd->out;
    if (!io->dx[0]) return;
    int64_t planes = io->batch * o.c;
    CN_PAR_FOR(planes * o.h * o.w >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            float *dxp = (float *)io->dx[0] + p * x.h * x.w + nd->pad_t * x.w + nd->pad_l;
            const float *gp = (const float *)io->dy + p * o.h * o.w;
            for (int64_t oy = 0; oy < o.h; oy++) {
                float *d = dxp + oy * x.w;
                const float *g = gp + oy * o.w;
                _Pragma("omp simd")
                for (int64_t ox = 0; ox < o.w; ox++) d[ox] += g[ox];
            }
        });
}
