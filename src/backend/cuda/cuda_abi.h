/* cuda_abi.h — what the host code (C) hands the device kernels (CUDA C++) by value: plain
 * structs of int64, int and double, laid out alike by gcc and nvcc, and the kernels' names. */
#ifndef CN_CUDA_ABI_H
#define CN_CUDA_ABI_H

#include <stdint.h>

/* an activation or its gradient as a kernel reads and writes it: floats or (bf16 1) bf16
 * values, in NCHW or (nhwc 1) NHWC order (--precision bf16 stores the values between layers as
 * bf16 NHWC where the kernels on both sides take it: src/backend/kernel.h's cn_op_io.half).
 * p NULL: none (an input gradient nobody wants). */
typedef struct cn_cu_act {
    void *p;
    int32_t bf16, nhwc;
} cn_cu_act;

/* a pooling window's geometry: the reference's own (its header compiles for the device too) */
#include "../../ops/pool_ref.h"
typedef cn_pool_geom cn_cu_pool;

/* a convolution's geometry (src/ops/conv_ref.h's cn_conv_geom, field for field) */
typedef struct cn_cu_conv {
    int64_t n, cin, h, w, cout, groups, kh, kw, sh, sw, dh, dw, pad_t, pad_l, oh, ow;
} cn_cu_conv;

/* mul's inputs (up to CN_CU_MUL_MAX): hw[j] 1 (input j has the output's places) or, for a 1x1
 * map broadcast, the output's plane size; c the output's channels, nhwc its layout (and every
 * input's: they are stored alike) */
#define CN_CU_MUL_MAX 8
typedef struct cn_cu_mul {
    cn_cu_act x[CN_CU_MUL_MAX];
    int64_t hw[CN_CU_MUL_MAX];
    int64_t n_in, c, nhwc;
} cn_cu_mul;

/* a map made of another's pixels (pad, crop, upsample, adaptiveavgpool): planes (N*C, c
 * channels a sample) of h x w in, oh x ow out; pad and crop: output (oy, ox) reads input
 * (oy - top, ox - left) through the fill (cn_pad_fill; crop: top, left <= 0); upsample: fill is
 * the mode (CN_CU_NEAREST...) */
typedef struct cn_cu_maps {
    int64_t planes, c, h, w, oh, ow, top, left, fill;
} cn_cu_maps;

/* one optimizer step's constants (src/backend/kernel.h's cn_update_args, field for field) */
typedef struct cn_cu_update {
    double clip, lr, l1, decay, momentum, beta1, beta2, eps, lr_bc1, sqrt_bc2;
} cn_cu_update;

/* a data set in the GPU's memory for make_batch (src/backend/kernel.h's cn_batch_source) */
typedef struct cn_cu_batch {
    const unsigned char *pixels;
    const float *images;
    int64_t c, h, w, pad;
    float mean[4], std[4];
} cn_cu_batch;

/* kinds the kernels switch on (the host maps its enums onto these) */
enum {
    CN_CU_RELU, CN_CU_LEAKY, CN_CU_SIGMOID, CN_CU_TANH, CN_CU_RELU6, CN_CU_HARDSIGMOID, CN_CU_HARDSWISH, CN_CU_SILU,
    CN_CU_GELU, CN_CU_ELU
};
enum { CN_CU_POOL_MAX, CN_CU_POOL_MIN, CN_CU_POOL_AVG };
enum { CN_CU_NEAREST, CN_CU_BILINEAR, CN_CU_BILINEAR_ALIGNED };
enum { CN_CU_SGD, CN_CU_MOMENTUM, CN_CU_NESTEROV, CN_CU_ADAM, CN_CU_ADAMW };

/* blocks of the gradient's sum of squares (a fixed count: the order of the sum depends on n only) */
#define CN_CU_NORM_BLOCKS 128

/* blocks of the step's loss and accuracy count (src/train/loss.c's LOSS_BLOCKS) */
#define CN_CU_LOSS_BLOCKS 64

/* every kernel of kernels.cu, by name: the host looks each up once in the loaded module */
#define CN_CU_KERNELS(X)                                                                           \
    X(act_forward) X(act_backward) X(factor_forward) X(factor_backward) X(spread_add) \
    X(plane_sum) X(mul_forward) X(mul_backward) X(concat_forward) X(concat_backward)              \
    X(remap_forward) X(remap_backward) X(upsample_forward) X(upsample_backward) X(adaptive_forward) \
    X(adaptive_backward) X(gn_forward) X(gn_backward) X(gn_param_channels) X(gn_param_values)      \
    X(pool_forward) X(pool_backward) X(softmax_forward) X(softmax_backward) X(bn_sums) X(bn_stats)  \
    X(bn_apply) X(bn_grad_sums) X(bn_grad_stats) X(bn_grad_apply) X(bn_shard_stats) X(dropout_forward) X(dropout_backward) X(channel_sum) X(channel_part) X(channel_total) X(bias_relu)              \
    X(conv_forward) X(conv_backward_data) X(conv_backward_filter) X(sum_squares) X(step_gate) X(update)      \
    X(loss_rows) X(count_correct) X(best_rows) X(make_batch) X(bf16_unpack) X(relayout) X(bn_sums_nhwc) \
    X(bn_grad_sums_nhwc) X(channel_part_nhwc) X(add_grad) X(shuffle_forward) X(shuffle_backward)          \
    X(channels_forward) X(channels_backward) X(lnc_forward) X(lnc_backward) X(lnc_param)

#endif
