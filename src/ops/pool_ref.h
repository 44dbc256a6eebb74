/* pool_ref.h — the geometry of pooling (a window's cells and avgpool's divisor), shared by
 * pool.c's reference kernels and the backends' (src/backend/cpu/pool.c). */
#ifndef CN_POOL_REF_H
#define CN_POOL_REF_H

#include "convnet.h"

typedef struct cn_pool_geom {
    int64_t n, c, h, w;
    int64_t kh, kw, sh, sw;
    int64_t pad_t, pad_l;
    int64_t pad_b, pad_r;      /* padding that avgpool's divisor counts (not a ceil window's overhang) */
    int64_t oh, ow;
} cn_pool_geom;

/* One output's window: input rows [y0, y1) and columns [x0, x1) (clipped to the input), and
 * avgpool's divisor, the window clipped to the padded input (PyTorch's count_include_pad=True). */
typedef struct cn_pool_window { int64_t y0, y1, x0, x1, area; } cn_pool_window;

static inline cn_pool_window cn_pool_window_at(const cn_pool_geom *g, int64_t oy, int64_t ox)
{
    int64_t ys = oy * g->sh - g->pad_t, xs = ox * g->sw - g->pad_l, ye = ys + g->kh, xe = xs + g->kw;
    int64_t ylim = g->h + g->pad_b, xlim = g->w + g->pad_r;
    cn_pool_window win;
    win.area = ((ye < ylim ? ye : ylim) - ys) * ((xe < xlim ? xe : xlim) - xs);
    win.y0 = ys < 0 ? 0 : ys;
    win.x0 = xs < 0 ? 0 : xs;
    win.y1 = ye < g->h ? ye : g->h;
    win.x1 = xe < g->w ? xe : g->w;
    return win;
}

struct cn_node;
/* The geometry of maxpool/minpool/avgpool node n reading `in`, at a batch. */
cn_pool_geom cn_pool_geom_of(const struct cn_node *n, const struct cn_node *in, int64_t batch);
/* globalavgpool's: one window the size of the map `in` */
cn_pool_geom cn_pool_geom_global(const struct cn_node *in, int64_t batch);

#endif
