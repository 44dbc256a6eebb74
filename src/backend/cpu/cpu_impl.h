/* cpu_impl.h — the CPU backend's float kernels, one file per op family; cpu.c's table says which
 * op runs which. An op without a kernel here runs its reference kernel (src/ops). */
#ifndef CN_CPU_IMPL_H
#define CN_CPU_IMPL_H

#include "../../ops/conv_ref.h"
#include "../backend.h"

/* conv.c: patches packed straight from the image, then our SGEMM (gemm.c) */
void cn_cpu_conv_forward(const cn_op_io *io);
void cn_cpu_conv_backward(const cn_op_io *io);
void cn_cpu_conv_forward_relu(const cn_op_io *io); /* relu(conv) in one pass (cn_kernels.forward_relu_out) */
/* conv, then maxpool 2x2/2 of relu(conv) in one pass (cn_kernels.forward_relu_pool), where
 * cn_cpu_conv_relu_pool says it can (Winograd, a map of even size) */
void cn_cpu_conv_forward_relu_pool(const cn_op_io *io);
int cn_cpu_conv_relu_pool(const cn_node *n, const cn_node *const *in, int64_t batch);
const char *cn_cpu_conv_describe(const cn_node *n, const cn_node *const *in, int64_t batch);
int64_t cn_cpu_conv_workspace(const cn_node *n, const cn_node *const *in, int64_t batch);
int64_t cn_cpu_conv_prep_bytes(const cn_node *n, const cn_node *const *in); /* cn_kernels.prep_bytes */
/* deconv through the same products: its forward is a convolution's input gradient */
void cn_cpu_deconv_forward(const cn_op_io *io);
void cn_cpu_deconv_backward(const cn_op_io *io);
int64_t cn_cpu_deconv_workspace(const cn_node *n, const cn_node *const *in, int64_t batch);
/* A switch of a measured rule, for benchmarks and tests: 1 on wherever it can, 0 off, -1 the
 * rule; the environment variable `env` (0 or 1) read the first time, unless a test set it first */
typedef struct { const char *env; int mode; int read; } cn_cpu_switch;
int cn_cpu_switch_mode(cn_cpu_switch *s);
void cn_cpu_switch_set(cn_cpu_switch *s, int mode); /* < 0: the rule */
/* winograd.c: 3x3 stride-1 convolutions by F(2x2,3x3), where conv.c's rule picks it */
int cn_cpu_winograd_can(const cn_conv_geom *g); /* the shape and the CPU (AVX-512 or AVX2) allow it */
int cn_cpu_winograd_way(const cn_conv_geom *g); /* ... and the measured rule picks it */
/* ... or in training, where the batch's tiles may pick it though one image's do not (conv.c's
 * forward in training, and the input gradient) */
int cn_cpu_winograd_train_way(const cn_conv_geom *g);
int64_t cn_cpu_winograd_work(const cn_conv_geom *g); /* floats of workspace */
/* a 2x2 stride-2 maxpool of relu(y) written in the same pass: its output and argmax */
typedef struct cn_pool_out { float *y; int32_t *argmax; } cn_pool_out;
/* y (+)= x convolved with w (+ b), then relu where relu, as conv.c's conv_into; pool (or NULL,
 * where the map's size is even): the maxpool of relu(y) too. u_made: w's transforms as
 * cn_cpu_winograd_prepare made them (w is then not read), or NULL: made in work first. */
void cn_cpu_winograd_conv(const cn_conv_geom *g, const float *x, const float *w, const float *u_made, const float *b,
                          float *y, int accumulate, int relu, const cn_pool_out *pool, float *work);
/* u (cn_cpu_winograd_prep_floats(g) floats) <- the transforms of w that the products read, kept
 * between calls while the parameters are held (cn_op_io.prep) */
int64_t cn_cpu_winograd_prep_floats(const cn_conv_geom *g);
void cn_cpu_winograd_prepare(const cn_conv_geom *g, const float *w, float *u);
/* the same for t, the transposed geometry of w's convolution (its input gradient's), straight
 * from w: t's kernels are w's flipped and turned, read so (the bits of flipping w first) */
void cn_cpu_winograd_prepare_turned(const cn_conv_geom *t, const float *w, float *u);
/* winograd4.c: F(4x4,3x3), where the forward's way is Winograd and the map is 12 or more outputs
 * across and down with at most 192 input channels (AVX-512; with AVX2 alone, a map whose
 * products are at most 0.85 of F(2x2,3x3)'s, at most 256 channels); cn_cpu_winograd_conv,
 * _prepare, _prep_floats and _work take it there themselves. turned: w's input gradient's geometry (cn_cpu_winograd_prepare_turned) */
int cn_cpu_winograd4_way(const cn_conv_geom *g);
int64_t cn_cpu_winograd4_work(const cn_conv_geom *g);
int64_t cn_cpu_winograd4_prep_floats(const cn_conv_geom *g);
void cn_cpu_winograd4_prepare(const cn_conv_geom *g, const float *w, int turned, float *u);
void cn_cpu_winograd4_conv(const cn_conv_geom *g, const float *x, const float *w, const float *u_made, const float *b,
                           float *y, int accumulate, int relu, const cn_pool_out *pool, float *work);
/* tests and benchmarks: 1 F(4x4,3x3) wherever it can run (AVX-512: maps 9 or more across; AVX2:
 * any), 0 nowhere, -1 by the rule */
void cn_cpu_winograd4_force(int mode);
/* dW += the weight gradient by F(3x3,2x2) or F(3x3,4x4), where cn_cpu_winograd_weight_way(g)
 * (the forward's way, a batch of 64 tiles or more and a tile for every 512 channel pairs: a
 * gradient is the batch's, its bits need not be an image's); the way: 0, or the tile's outputs
 * across, 2 or 4 (4 where the forward runs F(4x4,3x3)); work: cn_cpu_winograd_weight_work(g) floats */
int cn_cpu_winograd_weight_way(const cn_conv_geom *g);
void cn_cpu_winograd_weight_grad(const cn_conv_geom *g, const float *x, const float *dy, float *dw, float *work);
int64_t cn_cpu_winograd_weight_work(const cn_conv_geom *g);
/* tests and benchmarks: 1 Winograd wherever it can run, 0 nowhere, -1 by the rule (the default) */
void cn_cpu_winograd_force(int mode);
/* tests and benchmarks: the training rule of cn_cpu_winograd_train_way on (1) wherever Winograd
 * can run, off (0), or by the rule (-1, the default; CN_WINOGRAD_BATCH=0 or 1) */
void cn_cpu_winograd_batch_force(int mode);
/* tests and benchmarks: the weight gradient's Winograd by F(3x3,4x4) (1) or F(3x3,2x2) (0)
 * wherever it runs, or by the rule (-1, the default; CN_WINOGRAD_DW4=0 or 1 in the environment) */
void cn_cpu_winograd_dw4_force(int mode);
/* tests and benchmarks: the weight gradient's Winograd by blocks of channel pairs, each block's
 * sums in L2 (1), by parts of the tiles (0: and where only the blocks' rule would run it, not
 * by Winograd), or by the rule (-1, the default; CN_WINOGRAD_DW_BLOCKS=0 or 1) */
void cn_cpu_winograd_dw_blocks_force(int mode);
/* Winograd's forward in groups of panels (1), a panel at a time (0), or by the rule (-1): the
 * same bits (tests/test_backend.c) */
void cn_cpu_winograd_groups(int mode);
/* depthwise_flat.c: depthwise convolutions of stride 1 whose output is as wide as the input, on
 * planes of at most 1,024 values, and of stride 2 halving a plane into at most 256 outputs,
 * kernels up to 5x5 (MobileNet's 28x28, 14x14 and 7x7 layers), where the CPU has AVX-512: the
 * forward and the input gradient with the bits of conv.c's loops, the weight gradient its own;
 * conv.c takes them where the way says (for a depthwise geometry) */
int cn_cpu_depthwise_flat_way(const cn_conv_geom *g);
void cn_cpu_depthwise_flat_conv(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y,
                                int accumulate, int relu);
void cn_cpu_depthwise_flat_input_grad(const cn_conv_geom *g, const float *w, const float *dy, float *dx, int fresh);
void cn_cpu_depthwise_flat_weight_grad(const cn_conv_geom *g, const float *x, const float *dy, float *dw);
/* tests and benchmarks: 0 never, -1 by the way (the default) */
void cn_cpu_depthwise_flat_force(int mode);
/* dense.c: SGEMM */
void cn_cpu_dense_forward(const cn_op_io *io);
void cn_cpu_dense_backward(const cn_op_io *io);
void cn_cpu_dense_forward_relu(const cn_op_io *io); /* relu(dense) in one pass (cn_kernels.forward_relu_out) */
/* pool.c */
void cn_cpu_maxpool_forward(const cn_op_io *io);
void cn_cpu_minpool_forward(const cn_op_io *io);
void cn_cpu_argpool_backward(const cn_op_io *io); /* max and min: through the kept argmax */
/* maxpool reading relu(x) (cn_kernels.forward_relu_in): the relu fused into its pass */
void cn_cpu_maxpool_relu_forward(const cn_op_io *io);
void cn_cpu_maxpool_relu_backward(const cn_op_io *io);
void cn_cpu_avgpool_forward(const cn_op_io *io);
void cn_cpu_avgpool_backward(const cn_op_io *io);
void cn_cpu_globalavgpool_forward(const cn_op_io *io);
void cn_cpu_globalavgpool_backward(const cn_op_io *io);
/* activation.c */
void cn_cpu_relu_forward(const cn_op_io *io);
void cn_cpu_relu_backward(const cn_op_io *io);
void cn_cpu_leakyrelu_forward(const cn_op_io *io);
void cn_cpu_leakyrelu_backward(const cn_op_io *io);
void cn_cpu_sigmoid_forward(const cn_op_io *io);
void cn_cpu_sigmoid_backward(const cn_op_io *io);
void cn_cpu_tanh_forward(const cn_op_io *io);
void cn_cpu_tanh_backward(const cn_op_io *io);
void cn_cpu_relu6_forward(const cn_op_io *io);
void cn_cpu_relu6_backward(const cn_op_io *io);
void cn_cpu_hardsigmoid_forward(const cn_op_io *io);
void cn_cpu_hardsigmoid_backward(const cn_op_io *io);
void cn_cpu_hardswish_forward(const cn_op_io *io);
void cn_cpu_hardswish_backward(const cn_op_io *io);
void cn_cpu_silu_forward(const cn_op_io *io);
void cn_cpu_silu_backward(const cn_op_io *io);
void cn_cpu_gelu_forward(const cn_op_io *io);
void cn_cpu_gelu_backward(const cn_op_io *io);
void cn_cpu_elu_forward(const cn_op_io *io);
void cn_cpu_elu_backward(const cn_op_io *io);
void cn_cpu_prelu_forward(const cn_op_io *io);
void cn_cpu_prelu_backward(const cn_op_io *io);
void cn_cpu_scale_forward(const cn_op_io *io);  /* activation.c, beside prelu */
void cn_cpu_scale_backward(const cn_op_io *io);
void cn_cpu_groupnorm_forward(const cn_op_io *io);  /* layernorm, groupnorm, instancenorm (norm.c) */
void cn_cpu_groupnorm_backward(const cn_op_io *io);
/* batchnorm.c */
void cn_cpu_batchnorm_forward(const cn_op_io *io);
void cn_cpu_batchnorm_backward(const cn_op_io *io);
void cn_cpu_batchnorm_forward_relu(const cn_op_io *io); /* relu or relu6 of it (cn_kernels.forward_relu_out) */
void cn_cpu_batchnorm_stats(const cn_op_io *io, int backward, double *out);
/* softmax.c */
void cn_cpu_softmax_forward(const cn_op_io *io);
void cn_cpu_softmax_backward(const cn_op_io *io);
/* dropout.c */
void cn_cpu_dropout_forward(const cn_op_io *io);
void cn_cpu_dropout_backward(const cn_op_io *io);
/* merge.c */
void cn_cpu_add_forward(const cn_op_io *io);
void cn_cpu_add_backward(const cn_op_io *io);
void cn_cpu_add_forward_relu(const cn_op_io *io);
void cn_cpu_add_backward_relu(const cn_op_io *io);
void cn_cpu_concat_forward(const cn_op_io *io);
void cn_cpu_concat_backward(const cn_op_io *io);
void cn_cpu_shuffle_forward(const cn_op_io *io);
void cn_cpu_shuffle_backward(const cn_op_io *io);
void cn_cpu_channels_forward(const cn_op_io *io);
void cn_cpu_channels_backward(const cn_op_io *io);
void cn_cpu_mul_forward(const cn_op_io *io);
void cn_cpu_mul_backward(const cn_op_io *io);
/* resample.c */
void cn_cpu_upsample_forward(const cn_op_io *io);
void cn_cpu_upsample_backward(const cn_op_io *io);
int64_t cn_cpu_upsample_workspace(const cn_node *n, const cn_node *const *in, int64_t batch);
void cn_cpu_pad_forward(const cn_op_io *io);
void cn_cpu_pad_backward(const cn_op_io *io);
void cn_cpu_crop_forward(const cn_op_io *io);
void cn_cpu_crop_backward(const cn_op_io *io);

#endif
