/* pool_ref.h — the geometry of pooling (a window's cells and avgpool's divisor), shared by
 * pool.c's reference kernels and the backends' (src/backend/cpu/pool.c, and the CUDA kernels,
 * which compile cn_pool_window_at from this definition). */
#ifndef CN_POOL_REF_H
#define CN_POOL_REF_H

#include <stdint.h>
#include "../core/device_fn.h"

typedef struct cn_pool_geom {
    int64_t n, c, h, w;
    int64_t kh, kw, sh, sw;
    int64_t dh, dw;            /* dilation (max and min pooling; 1 elsewhere) */
    int64_t pad_t, pad_l;
    int64_t pad_b, pad_r;      /* padding that avgpool's divisor counts (not a ceil window's overhang) */
    int64_t oh, ow;
    int count_pad;             /* avgpool: the divisor counts padded cells (count_include_pad) */
} cn_pool_geom;

/* One output's window: its cells inside the input are rows y0, y0 + dh, ... below y1 and
 * columns x0, x0 + dw, ... below x1; avgpool's divisor `area` is the window clipped to the padded
 * input (PyTorch's count_include_pad=True) or, with count_pad=0, its cells inside the input. */
typedef struct cn_pool_window { int64_t y0, y1, x0, x1, area; } cn_pool_window;

/* one dimension: the cells [lo, hi) inside an input of n of the window of k cells d apart from s */
CN_DEVICE_FN void cn_pool_span(int64_t s, int64_t k, int64_t d, int64_t n, int64_t *lo, int64_t *hi)
{
    int64_t first = s < 0 ? (-s + d - 1) / d : 0;
    int64_t last = s >= n ? -1 : s + (k - 1) * d < n ? k - 1 : (n - 1 - s) / d;
    *lo = s + first * d;
    *hi = last >= first ? s + last * d + 1 : *lo;
}

CN_DEVICE_FN cn_pool_window cn_pool_window_at(const cn_pool_geom *g, int64_t oy, int64_t ox)
{
    int64_t ys = oy * g->sh - g->pad_t, xs = ox * g->sw - g->pad_l, ye = ys + g->kh, xe = xs + g->kw;
    int64_t ylim = g->h + g->pad_b, xlim = g->w + g->pad_r;
    cn_pool_window win;
    cn_pool_span(ys, g->kh, g->dh, g->h, &win.y0, &win.y1);
    cn_pool_span(xs, g->kw, g->dw, g->w, &win.x0, &win.x1);
    if (g->count_pad) win.area = ((ye < ylim ? ye : ylim) - ys) * ((xe < xlim ? xe : xlim) - xs);
    else win.area = (win.y1 - win.y0) * (win.x1 - win.x0); /* dilation 1: every cell between */
    if (win.area < 1) win.area = 1; /* a window of padding only (its sum is 0) */
    return win;
}

struct cn_node;
/* The geometry of maxpool/minpool/avgpool node n reading `in`, at a batch. */
cn_pool_geom cn_pool_geom_of(const struct cn_node *n, const struct cn_node *in, int64_t batch);
/* globalavgpool's: one window the size of the map `in` */
cn_pool_geom cn_pool_geom_global(const struct cn_node *in, int64_t batch);

#endif
