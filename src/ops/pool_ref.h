/* pool_ref.h — geometry and reference kernels of pooling, shared with the backends. */
#ifndef CN_POOL_REF_H
#define CN_POOL_REF_H

#include "convnet.h"

typedef struct cn_pool_geom {
    int64_t n, c, h, w;
    int64_t kh, kw, sh, sw;
    int64_t pad_t, pad_l, pad_b, pad_r;
    int64_t oh, ow;
} cn_pool_geom;

/* y (N,C,OH,OW) <- pooling of x (N,C,H,W) */
void cn_pool_forward_ref(const cn_pool_geom *g, cn_pool_kind kind, const float *x, float *y);

#endif
