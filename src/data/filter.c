/* filter.c — one 2-D kernel applied to every channel of an image (`convnet filter`): the
 * conv layer's reference kernel with the channels taken as the batch (N = c, one input and one
 * output channel), so the arithmetic is the layer's own: cross-correlation, no kernel flip.
 * Covered by tests/test_filter.c (PNG in, pixels out, worked by hand) and tests/cli_test.sh. */
#include "../ops/conv_ref.h"
#include "../ops/op_impl.h"
#include "data_impl.h"

/* One side of the window: out and the padding before it, by the conv layer's own formula
 * (cn_window_dim): pad=same gives out = ceil(in / s), the odd padded row or column at the end. */
static int filter_dim(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t *out, int64_t *before)
{
    int64_t after;
    return cn_window_dim(pad == CN_FILTER_PAD_SAME ? CN_PAD_SAME : CN_PAD_EXPLICIT, in, k, s, 1, pad, 0, out, before,
                         &after);
}

cn_status cn_image_filter(cn_ctx *ctx, const float *x, int64_t c, int64_t h, int64_t w, const float *k, int64_t kh,
                          int64_t kw, int64_t stride, int64_t pad, float *y, int64_t *oh, int64_t *ow)
{
    *oh = *ow = 0;
    const int64_t big = INT64_C(1) << 30;
    if (c < 1 || h < 1 || w < 1 || kh < 1 || kw < 1 || h > big || w > big || kh > big || kw > big)
        return cn_fail(ctx, CN_E_ARG, "filter: image %lldx%lld with %lld channels and kernel %lldx%lld",
                       (long long)h, (long long)w, (long long)c, (long long)kh, (long long)kw);
    if (stride < 1 || stride > big) return cn_fail(ctx, CN_E_ARG, "filter: stride %lld", (long long)stride);
    if ((pad < 0 && pad != CN_FILTER_PAD_SAME) || pad > big)
        return cn_fail(ctx, CN_E_ARG, "filter: pad %lld", (long long)pad);
    int64_t rh, rw, pt, pl, n;
    if (!filter_dim(h, kh, stride, pad, &rh, &pt) || !filter_dim(w, kw, stride, pad, &rw, &pl))
        return cn_fail(ctx, CN_E_SHAPE, "filter: kernel %lldx%lld larger than the padded image %lldx%lld (pad %lld)",
                       (long long)kh, (long long)kw, (long long)(h + 2 * pad), (long long)(w + 2 * pad),
                       (long long)pad);
    if (!cn_mul_ok(c, rh, &n) || !cn_mul_ok(n, rw, &n) || !cn_mul_ok(n, (int64_t)sizeof(float), &n))
        return cn_fail(ctx, CN_E_OVERFLOW, "filter: %lld x %lld x %lld outputs overflow", (long long)c, (long long)rh,
                       (long long)rw);
    if (y) {
        /* y (C,1,OH,OW) <- x (C,1,H,W) * k (1,1,Kh,Kw): the channels are the batch */
        cn_conv_geom g = { .n = c, .cin = 1, .h = h, .w = w, .cout = 1, .groups = 1, .kh = kh, .kw = kw,
                           .sh = stride, .sw = stride, .dh = 1, .dw = 1, .pad_t = pt, .pad_l = pl, .oh = rh, .ow = rw };
        cn_conv_forward_ref(&g, x, k, NULL, y);
    }
    *oh = rh, *ow = rw;
    return CN_OK;
}
