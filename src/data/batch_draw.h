/* batch_draw.h — one training image's augmentation, drawn on the host, and the value it gives
 * each cell of the batch: cn_make_batch_rows (batch.c) and the CUDA backend's batch kernel
 * (a data set resident on the GPU) compute the batch from this one definition. */
#ifndef CN_BATCH_DRAW_H
#define CN_BATCH_DRAW_H

#include <stdint.h>

#include "../../include/convnet.h" /* cn_rng */
#include "../core/device_fn.h"

/* sample `index` of the data set, cropped at (dy, dx) of the image padded by pad (pad, pad: the
 * original), mirrored left-right when mirror is 1 */
typedef struct cn_batch_draw {
    int64_t index;
    int32_t dy, dx, mirror, unused;
} cn_batch_draw;

/* The draws of n samples (indices idx) as cn_make_batch_rows makes them, in sample order: the
 * crop's row offset cn_rng_below(2 pad + 1), its column offset, then the flip cn_rng_below(2),
 * each only when enabled (pad > 0, flip); out[i].index = idx[i]. */
void cn_batch_draws(cn_rng *rng, const int64_t *idx, int64_t n, int64_t pad, int flip, cn_batch_draw *out);

/* Test-time augmentation (cn_tta): how many views of each image (0: not a cn_tta), and view v
 * (0 .. count - 1) of sample `index` as a draw on the image padded by 1 (view 0: the image itself). */
int cn_tta_count(cn_tta tta);
cn_batch_draw cn_tta_draw(int v, int64_t index);

/* x (n images, host memory) = the rows of draws[0..n) of ds padded by pad, as
 * cn_make_batch_rows makes them from the draws it takes (test-time views: chosen, not drawn) */
cn_status cn_make_batch_drawn(cn_ctx *ctx, const cn_dataset *ds, const cn_batch_draw *draws, int64_t n,
                              int64_t pad, const float *mean, const float *std, float *x);

/* Where row y, column xo of a channel plane (h x w) of the drawn image comes from: the offset of
 * the original's pixel in its plane, or -1 in the padding. */
CN_DEVICE_FN int64_t cn_batch_origin(int64_t h, int64_t w, int64_t pad, const cn_batch_draw *d, int64_t y, int64_t xo)
{
    int64_t sy = y + d->dy - pad, sx = (d->mirror ? w - 1 - xo : xo) + d->dx - pad;
    return sy >= 0 && sy < h && sx >= 0 && sx < w ? sy * w + sx : -1;
}

/* The normalised value at row y, column xo of a channel plane (h x w) of the drawn image: the
 * padded image's pixel (0 in the padding), as torchvision's RandomCrop(padding) and
 * RandomHorizontalFlip, then Normalize(m, s). plane: the channel's floats, or NULL and bytes:
 * its IDX bytes (pixel / 255, as the loader converts). */
CN_DEVICE_FN float cn_batch_value(const float *plane, const unsigned char *bytes, int64_t h, int64_t w, int64_t pad,
                                  const cn_batch_draw *d, int64_t y, int64_t xo, float m, float s)
{
    int64_t at = cn_batch_origin(h, w, pad, d, y, xo);
    float v = at < 0 ? 0.0f : plane ? plane[at] : (float)bytes[at] / 255.0f;
    return (v - m) / s;
}

#endif
