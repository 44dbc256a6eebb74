/* pool_ref.h — geometry and reference kernels of pooling (the float instance of pool.c's
 * kernels), shared with the backends and the worksheet calculator. */
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

struct cn_node;
/* The geometry of maxpool/minpool/avgpool node n reading `in`, at a batch. */
cn_pool_geom cn_pool_geom_of(const struct cn_node *n, const struct cn_node *in, int64_t batch);

/* y (N,C,OH,OW) <- pooling of x (N,C,H,W); argmax (N,C,OH,OW) of max/min as indices into the
 * input plane, or NULL */
void cn_pool_forward_ref(const cn_pool_geom *g, cn_pool_kind kind, const float *x, float *y, int32_t *argmax);
/* dx (N,C,H,W) += dy (N,C,OH,OW) through argmax (max/min) or spread over each window (avg) */
void cn_pool_backward_ref(const cn_pool_geom *g, cn_pool_kind kind, const float *dy, const int32_t *argmax, float *dx);

#endif
