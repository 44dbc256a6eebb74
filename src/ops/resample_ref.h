/* resample_ref.h — which input pixels pad, upsample and adaptiveavgpool read: the source
 * coordinates of pad_crop.c's, upsample.c's and pool.c's reference kernels, shared with the
 * CUDA kernels (CN_DEVICE_FN, src/backend/cuda/kernels.cu), which read the same pixels. */
#ifndef CN_RESAMPLE_REF_H
#define CN_RESAMPLE_REF_H

#include <math.h>
#include <stdint.h>

#include "../core/device_fn.h"

typedef enum { CN_FILL_ZERO = 0, CN_FILL_REFLECT, CN_FILL_REPLICATE } cn_pad_fill;

/* pad: the input row (or column) that output position i - before reads, -1 for a zero: the
 * reflection excludes the edge (F.pad's reflect), replicate repeats it. */
CN_DEVICE_FN int64_t cn_pad_src(int64_t i, int64_t n, int fill)
{
    if (i >= 0 && i < n) return i;
    switch (fill) {
    case CN_FILL_REFLECT: return i < 0 ? -i : 2 * (n - 1) - i;
    case CN_FILL_REPLICATE: return i < 0 ? 0 : n - 1;
    default: break;
    }
    return -1;
}

/* upsample nearest: PyTorch's source index (nearest_idx), floor(dst * in/out) in float, at
 * most in - 1 */
CN_DEVICE_FN int64_t cn_nearest_src(int64_t dst, int64_t in, int64_t out)
{
    if (out == in) return dst;
    if (out == 2 * in) return dst >> 1;
    float scale = (float)in / (float)out;
    int64_t s = (int64_t)floorf((float)dst * scale);
    return s < in - 1 ? s : in - 1;
}

/* upsample bilinear: the two source pixels of output coordinate dst and the weight of the
 * second, as PyTorch's area_pixel_compute_source_index in REAL: src = dst*(in-1)/(out-1) with
 * aligned corners, else max(0, (dst + 0.5)*in/out - 0.5); i0 = floor(src), i1 = i0 + 1 inside
 * the input. cn_linear_src_f32 and _f64 (the reference's float and double kernels). */
#define CN_LINEAR_SRC(NAME, REAL)                                                                  \
    CN_DEVICE_FN void NAME(int64_t dst, int64_t in, int64_t out, int align, int64_t *i0, int64_t *i1, \
                           REAL *lambda)                                                           \
    {                                                                                              \
        REAL src;                                                                                  \
        if (align) {                                                                               \
            REAL scale = out > 1 ? (REAL)(in - 1) / (REAL)(out - 1) : (REAL)0;                     \
            src = scale * (REAL)dst;                                                               \
        } else {                                                                                   \
            REAL scale = (REAL)in / (REAL)out;                                                     \
            src = scale * ((REAL)dst + (REAL)0.5) - (REAL)0.5;                                     \
            if (src < 0) src = 0;                                                                  \
        }                                                                                          \
        *i0 = (int64_t)src;                                                                        \
        *i1 = *i0 + (*i0 < in - 1 ? 1 : 0);                                                        \
        *lambda = src - (REAL)*i0;                                                                 \
    }
CN_LINEAR_SRC(cn_linear_src_f32, float)
#ifndef __CUDACC__ /* the GPU's kernels are float only */
CN_LINEAR_SRC(cn_linear_src_f64, double)
#endif
#undef CN_LINEAR_SRC

/* adaptiveavgpool: PyTorch's AdaptiveAvgPool2d window of output o of `out` over `in` cells:
 * [floor(o*in/out), ceil((o+1)*in/out)) */
CN_DEVICE_FN int64_t cn_adaptive_start(int64_t o, int64_t in, int64_t out) { return o * in / out; }
CN_DEVICE_FN int64_t cn_adaptive_end(int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; }

#endif
