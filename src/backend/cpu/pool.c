/* pool.c — max, min and average pooling and global average pooling on the CPU, threaded over
 * (sample, channel) planes. 2x2 windows of stride 2 without padding or overhang (the common case)
 * run as one vector loop per plane. Any other geometry runs window cell by window cell: for cell
 * (ky, kx) the outputs whose window has that cell inside the input form a rectangle, and a vector
 * loop along each of its rows lets the cell challenge (max, min) or join (mean) each output's
 * value, so padding and clipped windows need no code of their own.
 * Results equal src/ops/pool.c's to the bit: a window's cells in the same scan order with ties to
 * the first, the same divisor, sums in double in the same order, and backward's overlapping
 * windows adding up in the same order (global average pooling: within 1e-7, its sum runs in
 * lanes). Covered by tests/test_cpu_ops.c. */
#include "../../core/sum_impl.h"
#include "../../ops/pool_ref.h"
#include "gemm.h" /* cn_gemm_avx512, cn_lanes16 */
#include "kernel_util.h"

#if defined(__x86_64__) || defined(__i386__)
#define CN_X86 1
#endif

#define TILE 2048 /* outputs per pass of average pooling: its double sums and shares live on the stack */

static int is_2x2_stride2(const cn_pool_geom *g)
{
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->dh == 1 && g->dw == 1 && g->pad_t == 0 &&
           g->pad_l == 0 &&
           2 * g->oh <= g->h && 2 * g->ow <= g->w;
}

/* A rectangle of outputs: rows [r0, r1), columns [c0, c1). */
typedef struct { int64_t r0, r1, c0, c1; } out_rect;

/* the outputs o in [lo, hi) of one dimension whose window cell k lands inside the input:
 * 0 <= o*stride - pad + k < n */
static void narrow_to_cell(int64_t stride, int64_t pad, int64_t k, int64_t n, int64_t *lo, int64_t *hi)
{
    int64_t first = pad - k > 0 ? (pad - k + stride - 1) / stride : 0, last = n - 1 + pad - k;
    int64_t end = last >= 0 ? last / stride + 1 : 0;
    if (*lo < first) *lo = first;
    if (*hi > end) *hi = end;
    if (*hi < *lo) *hi = *lo;
}

/* the outputs of rectangle t whose window cell (ky, kx) lands inside the input (the cell lies
 * ky*dh rows and kx*dw columns from the window's corner: dilation) */
static out_rect with_cell(const cn_pool_geom *g, out_rect t, int64_t ky, int64_t kx)
{
    narrow_to_cell(g->sh, g->pad_t, ky * g->dh, g->h, &t.r0, &t.r1);
    narrow_to_cell(g->sw, g->pad_l, kx * g->dw, g->w, &t.c0, &t.c1);
    return t;
}

/* The tiles of average pooling: consecutive in row-major output order (whole rows, or pieces of
 * one row when a row is longer than TILE), so a cell's shares still arrive in output order. */
static out_rect tile_at(const cn_pool_geom *g, int64_t r0, int64_t c0)
{
    int64_t cols = g->ow < TILE ? g->ow : TILE, rows = TILE / cols;
    if (cols < g->ow) return (out_rect){ r0, r0 + 1, c0, c0 + cols < g->ow ? c0 + cols : g->ow };
    return (out_rect){ r0, r0 + rows < g->oh ? r0 + rows : g->oh, 0, g->ow };
}

/* the tile after t */
static int next_tile(const cn_pool_geom *g, out_rect *t)
{
    *t = t->c1 < g->ow ? tile_at(g, t->r0, t->c1) : tile_at(g, t->r1, 0);
    return t->r0 < g->oh;
}

/* ---- forward ------------------------------------------------------------------------------- */

/* "v beats best" for max (larger) or min (smaller) pooling; NaN never beats, never is beaten.
 * Both comparisons and no branch, so that loops over it vectorise whatever `max` is. */
static inline int beats(int max, float v, float best) { return (max & (v > best)) | (!max & (v < best)); }

/* a cell's value as the pooling sees it: x, or relu(x) where the pooling reads a relu fused into
 * it (cn_cpu_maxpool_relu_forward) */
static inline float cell(int relu_in, float x) { return relu_in ? cpu_relu(x) : x; }

/* one plane: y (OH,OW) <- max or min of x (H,W) over 2x2 windows of stride 2; argmax (OH,OW) the
 * winner's index in x, the first in scan order on ties. Both loops in one vector loop: a row has
 * few outputs (14 at 28x28), and a loop per row would spend its time starting and finishing. */
static void argpool_plane_2x2(const cn_pool_geom *g, int max, int relu_in, const float *x, float *restrict y,
                              int32_t *restrict argmax)
{
    int32_t oh = (int32_t)g->oh, ow = (int32_t)g->ow, w = (int32_t)g->w; /* a plane has < 2^31 values */
#pragma omp simd collapse(2)
    for (int32_t oy = 0; oy < oh; oy++)
        for (int32_t ox = 0; ox < ow; ox++) {
            int32_t at = 2 * oy * w + 2 * ox, win = at;
            float best = cell(relu_in, x[win]), v1 = cell(relu_in, x[win + 1]), v2 = cell(relu_in, x[win + w]);
            float v3 = cell(relu_in, x[win + w + 1]);
            if (beats(max, v1, best)) best = v1, at = win + 1;
            if (beats(max, v2, best)) best = v2, at = win + w;
            if (beats(max, v3, best)) best = v3, at = win + w + 1;
            y[oy * ow + ox] = best;
            argmax[oy * ow + ox] = at;
        }
}

#ifdef CN_X86
/* argpool_plane_2x2 in AVX-512, 16 outputs of a row at a time: the window's two input rows read
 * as vectors of 32 columns and split into even and odd columns in registers (the compiler's loop
 * gathered them a value at a time). The same comparisons in the same order: the same bits. */
__attribute__((target("avx512f"))) static void argpool_plane_2x2_avx512(const cn_pool_geom *g, int max, int relu_in,
                                                                         const float *x, float *restrict y,
                                                                         int32_t *restrict argmax)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 zero = _mm512_setzero_ps();
    int32_t w = (int32_t)g->w;
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox += 16) {
            int64_t n = g->ow - ox < 16 ? g->ow - ox : 16;
            __m512 v[4]; /* the window's cells in scan order: (0,0) (0,1) (1,0) (1,1) */
            for (int r = 0; r < 2; r++) {
                const float *row = x + (2 * oy + r) * g->w + 2 * ox;
                __m512 lo = _mm512_maskz_loadu_ps(cn_lanes16(0, 2 * n), row);
                __m512 hi = _mm512_maskz_loadu_ps(cn_lanes16(0, 2 * n - 16), row + 16);
                v[2 * r] = _mm512_permutex2var_ps(lo, even, hi), v[2 * r + 1] = _mm512_permutex2var_ps(lo, odd, hi);
                if (relu_in) /* cpu_relu: x > 0 ? x : 0, so NaN gives 0 */
                    for (int q = 2 * r; q < 2 * r + 2; q++) v[q] = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v[q], zero, _CMP_GT_OQ), v[q]);
            }
            __m512i win = _mm512_add_epi32(_mm512_set1_epi32((int32_t)(2 * oy * w + 2 * ox)),
                                           _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1));
            const int32_t step[4] = { 0, 1, w, w + 1 };
            __m512 best = v[0];
            __m512i at = win;
            for (int c = 1; c < 4; c++) {
                /* beats(): NaN never beats, never is beaten */
                __mmask16 wins = max ? _mm512_cmp_ps_mask(v[c], best, _CMP_GT_OQ) : _mm512_cmp_ps_mask(v[c], best, _CMP_LT_OQ);
                best = _mm512_mask_mov_ps(best, wins, v[c]);
                at = _mm512_mask_add_epi32(at, wins, win, _mm512_set1_epi32(step[c]));
            }
            __mmask16 keep = cn_lanes16(0, n);
            _mm512_mask_storeu_ps(y + oy * g->ow + ox, keep, best);
            _mm512_mask_storeu_epi32(argmax + oy * g->ow + ox, keep, at);
        }
}
#endif

/* one plane of 2x2 windows of stride 2, in AVX-512 where the CPU has it */
static void argpool_2x2(const cn_pool_geom *g, int max, int relu_in, const float *x, float *restrict y,
                        int32_t *restrict argmax)
{
#ifdef CN_X86
    if (cn_gemm_avx512()) {
        argpool_plane_2x2_avx512(g, max, relu_in, x, y, argmax);
        return;
    }
#endif
    argpool_plane_2x2(g, max, relu_in, x, y, argmax);
}

/* one plane, any geometry: every output starts empty (y = 0, argmax -1, what a window of
 * padding only keeps); then each window cell in scan order is taken by the outputs still empty
 * and challenges the others, as the reference's scan of each window */
static void argpool_plane(const cn_pool_geom *g, int max, int relu_in, const float *x, float *restrict y,
                          int32_t *restrict argmax)
{
    int32_t sw = (int32_t)g->sw; /* a plane has < 2^31 values */
    for (int64_t o = 0; o < g->oh * g->ow; o++) y[o] = 0, argmax[o] = -1;
    for (int64_t ky = 0; ky < g->kh; ky++)
        for (int64_t kx = 0; kx < g->kw; kx++) {
            out_rect t = with_cell(g, (out_rect){ 0, g->oh, 0, g->ow }, ky, kx);
            for (int64_t oy = t.r0; oy < t.r1; oy++) {
                /* cell (ky, kx) of output (oy, ox) is x[row + ox * sw] */
                int32_t row = (int32_t)((oy * g->sh - g->pad_t + ky * g->dh) * g->w + kx * g->dw - g->pad_l);
                float *restrict yr = y + oy * g->ow;
                int32_t *restrict ar = argmax + oy * g->ow;
#pragma omp simd
                for (int32_t ox = (int32_t)t.c0; ox < (int32_t)t.c1; ox++) {
                    float v = cell(relu_in, x[row + ox * sw]);
                    int take = (ar[ox] < 0) | beats(max, v, yr[ox]);
                    yr[ox] = take ? v : yr[ox];
                    ar[ox] = take ? row + ox * sw : ar[ox];
                }
            }
        }
}

/* one plane: y (OH,OW) <- mean of x (H,W) over 2x2 windows of stride 2, summed as the reference
 * does (in double, from 0, in scan order); one vector loop as argpool_plane_2x2 */
static void avgpool_plane_2x2(const cn_pool_geom *g, const float *x, float *restrict y)
{
    int64_t oh = g->oh, ow = g->ow, w = g->w;
#pragma omp simd collapse(2)
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
            const float *win = x + 2 * oy * w + 2 * ox;
            double acc = 0.0;
            acc += win[0], acc += win[1], acc += win[w], acc += win[w + 1];
            y[oy * ow + ox] = (float)(acc / 4.0);
        }
}

/* one plane, any geometry, a tile at a time: each output's sum starts at 0 and takes its window's
 * cells in scan order, in double; then the divisor */
static void avgpool_plane(const cn_pool_geom *g, const float *x, float *restrict y)
{
    out_rect t = tile_at(g, 0, 0);
    do {
        int64_t cols = t.c1 - t.c0;
        double acc[TILE];
        for (int64_t i = 0; i < (t.r1 - t.r0) * cols; i++) acc[i] = 0.0;
        for (int64_t ky = 0; ky < g->kh; ky++)
            for (int64_t kx = 0; kx < g->kw; kx++) {
                out_rect c = with_cell(g, t, ky, kx);
                for (int64_t oy = c.r0; oy < c.r1; oy++) {
                    /* as in argpool_plane */
                    int64_t row = (oy * g->sh - g->pad_t + ky * g->dh) * g->w + kx * g->dw - g->pad_l;
                    int64_t sum = (oy - t.r0) * cols - t.c0; /* output (oy, ox)'s sum is acc[sum + ox] */
#pragma omp simd
                    for (int64_t ox = c.c0; ox < c.c1; ox++) acc[sum + ox] += x[row + ox * g->sw];
                }
            }
        for (int64_t oy = t.r0; oy < t.r1; oy++)
            for (int64_t ox = t.c0; ox < t.c1; ox++) {
                double area = (double)cn_pool_window_at(g, oy, ox).area;
                y[oy * g->ow + ox] = (float)(acc[(oy - t.r0) * cols + ox - t.c0] / area);
            }
    } while (next_tile(g, &t));
}

/* y (N,C,OH,OW) <- pooling of x (N,C,H,W), one plane per iteration; argmax (N,C,OH,OW) for max
 * and min */
/* the windows of node n: its own, or one the size of the map (globalmaxpool) */
static cn_pool_geom geom_of(const cn_op_io *io)
{
    return io->n->id == CN_OP_GLOBALMAXPOOL ? cn_pool_geom_global(io->in[0], io->batch)
                                            : cn_pool_geom_of(io->n, io->in[0], io->batch);
}

/* one plane's largest (or smallest) value and its index, the first in scan order on ties (a
 * whole map's window: globalmaxpool) */
static void argpool_whole(int max, const float *x, int64_t plane, float *y, int32_t *argmax)
{
    float best = x[0];
    int32_t at = 0;
    for (int32_t i = 1; i < (int32_t)plane; i++)
        if (beats(max, x[i], best)) best = x[i], at = i;
    *y = best, *argmax = at;
}

static void pool_forward(const cn_op_io *io, cn_pool_kind kind, int relu_in)
{
    cn_pool_geom g = geom_of(io);
    int64_t plane = g.h * g.w, oplane = g.oh * g.ow, planes = g.n * g.c;
    int fast = is_2x2_stride2(&g), max = kind == CN_POOL_MAX, whole = io->n->id == CN_OP_GLOBALMAXPOOL;
    const float *x = io->x[0];
    float *y = io->y;
    int32_t *argmax = io->aux;
    CN_PAR_FOR(planes * plane >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            const float *xp = x + p * plane;
            float *yp = y + p * oplane;
            if (whole) { /* globalmaxpool (never fused with a relu) */
                argpool_whole(max, xp, plane, yp, argmax + p);
            } else if (kind == CN_POOL_AVG) {
                if (fast) avgpool_plane_2x2(&g, xp, yp);
                else avgpool_plane(&g, xp, yp);
            } else if (fast) {
                argpool_2x2(&g, max, relu_in, xp, yp, argmax + p * oplane);
            } else {
                argpool_plane(&g, max, relu_in, xp, yp, argmax + p * oplane);
            }
        });
}

void cn_cpu_maxpool_forward(const cn_op_io *io) { pool_forward(io, CN_POOL_MAX, 0); } /* globalmaxpool too */
void cn_cpu_minpool_forward(const cn_op_io *io) { pool_forward(io, CN_POOL_MIN, 0); }
void cn_cpu_avgpool_forward(const cn_op_io *io) { pool_forward(io, CN_POOL_AVG, 0); }
/* maxpool of relu(x), x the relu's input: the bits of the two layers, the relu never written */
void cn_cpu_maxpool_relu_forward(const cn_op_io *io) { pool_forward(io, CN_POOL_MAX, 1); }

/* ---- backward ------------------------------------------------------------------------------ */

/* dx (N,C,H,W) += dy (N,C,OH,OW) routed to the cells argmax (N,C,OH,OW) names, in output order
 * within each plane (overlapping windows add up as in the reference). relu_in: the pooling read
 * relu(x) (x: io->x[0], the relu's input); dx, the relu's input gradient, is then stored as the
 * two layers' backward would: 0 + relu'(x) * (0 + the routed sum), plane by plane in cache. */
static void argpool_backward(const cn_op_io *io, int relu_in)
{
    cn_pool_geom g = geom_of(io);
    int64_t plane = g.h * g.w, oplane = g.oh * g.ow, planes = g.n * g.c;
    const float *dy = io->dy, *x = io->x[0];
    const int32_t *argmax = io->aux;
    float *dx = io->dx[0];
    if (!dx) return;
    CN_PAR_FOR(planes * plane >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            const float *gp = dy + p * oplane;
            const int32_t *ap = argmax + p * oplane;
            float *dxp = dx + p * plane;
            if (relu_in || io->dx_fresh & 1) memset(dxp, 0, (size_t)plane * sizeof(float)); /* in cache, plane by plane */
            for (int64_t o = 0; o < oplane; o++)
                if (ap[o] >= 0) dxp[ap[o]] += gp[o];
            if (!relu_in) continue;
            const float *xp = x + p * plane;
            _Pragma("omp simd")
            for (int64_t i = 0; i < plane; i++) dxp[i] = 0.0f + cpu_relu_grad(dxp[i], xp[i]);
        });
}

void cn_cpu_argpool_backward(const cn_op_io *io) { argpool_backward(io, 0); }
void cn_cpu_maxpool_relu_backward(const cn_op_io *io) { argpool_backward(io, 1); }

/* one plane: dx (H,W) += dy (OH,OW) / 4 over each 2x2 window of stride 2 */
static void avgpool_backward_plane_2x2(const cn_pool_geom *g, const float *dy, float *dx)
{
    int64_t oh = g->oh, ow = g->ow, w = g->w;
#pragma omp simd collapse(2)
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
            float share = (float)((double)dy[oy * ow + ox] / 4.0), *win = dx + 2 * oy * w + 2 * ox;
            win[0] += share, win[1] += share, win[w] += share, win[w + 1] += share;
        }
}

/* one plane, any geometry, a tile at a time: dx (H,W) += dy / divisor over each window. A cell
 * that several windows cover must receive their shares in output order, as in the reference; an
 * earlier output covers it with a later cell of its window (lower or further right), so the
 * window cells go from the last to the first. */
static void avgpool_backward_plane(const cn_pool_geom *g, const float *dy, float *dx)
{
    out_rect t = tile_at(g, 0, 0);
    do {
        int64_t cols = t.c1 - t.c0;
        float share[TILE];
        for (int64_t oy = t.r0; oy < t.r1; oy++)
            for (int64_t ox = t.c0; ox < t.c1; ox++)
                share[(oy - t.r0) * cols + ox - t.c0] =
                    (float)((double)dy[oy * g->ow + ox] / (double)cn_pool_window_at(g, oy, ox).area);
        for (int64_t ky = g->kh - 1; ky >= 0; ky--)
            for (int64_t kx = g->kw - 1; kx >= 0; kx--) {
                out_rect c = with_cell(g, t, ky, kx);
                for (int64_t oy = c.r0; oy < c.r1; oy++) {
                    /* as in argpool_plane */
                    int64_t row = (oy * g->sh - g->pad_t + ky * g->dh) * g->w + kx * g->dw - g->pad_l;
                    int64_t part = (oy - t.r0) * cols - t.c0; /* output (oy, ox)'s share is share[part + ox] */
#pragma omp simd
                    for (int64_t ox = c.c0; ox < c.c1; ox++) dx[row + ox * g->sw] += share[part + ox];
                }
            }
    } while (next_tile(g, &t));
}

/* dx (N,C,H,W) += dy (N,C,OH,OW) spread evenly over each window */
void cn_cpu_avgpool_backward(const cn_op_io *io)
{
    cn_pool_geom g = cn_pool_geom_of(io->n, io->in[0], io->batch);
    int64_t plane = g.h * g.w, oplane = g.oh * g.ow, planes = g.n * g.c;
    int fast = is_2x2_stride2(&g);
    const float *dy = io->dy;
    float *dx = io->dx[0];
    if (!dx) return;
    int fresh = io->dx_fresh & 1;
    CN_PAR_FOR(planes * plane >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            if (fresh) memset(dx + p * plane, 0, (size_t)plane * sizeof(float)); /* in cache, plane by plane */
            if (fast) avgpool_backward_plane_2x2(&g, dy + p * oplane, dx + p * plane);
            else avgpool_backward_plane(&g, dy + p * oplane, dx + p * plane);
        });
}

/* ---- global average pooling ---------------------------------------------------------------- */

/* y (N,C,1,1) <- mean of each plane of x (N,C,H,W) */
void cn_cpu_globalavgpool_forward(const cn_op_io *io)
{
    const cn_dims *in = &io->in[0]->out;
    int64_t plane = in->h * in->w, planes = io->batch * in->c;
    const float *x = io->x[0];
    float *y = io->y;
    CN_PAR_FOR(planes * plane >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            cn_sum8 acc = cn_sum8_zero();
            cn_sum8_add(&acc, x + p * plane, plane);
            y[p] = (float)(cn_sum8_total(&acc) / (double)plane);
        });
}

/* dx (N,C,H,W) += dy (N,C,1,1) / (H*W) over each plane */
void cn_cpu_globalavgpool_backward(const cn_op_io *io)
{
    const cn_dims *in = &io->in[0]->out;
    int64_t plane = in->h * in->w, planes = io->batch * in->c;
    const float *dy = io->dy;
    float *dx = io->dx[0];
    if (!dx) return;
    CN_PAR_FOR(planes * plane >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            float share = (float)((double)dy[p] / (double)plane), *restrict dxp = dx + p * plane;
            if (io->dx_fresh & 1) /* 0 + share: the bits of adding to zeros */
                _Pragma("omp simd")
                for (int64_t i = 0; i < plane; i++) dxp[i] = 0.0f + share;
            else
                _Pragma("omp simd")
                for (int64_t i = 0; i < plane; i++) dxp[i] += share;
        });
}
