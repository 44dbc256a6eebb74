/* cpu_impl.h — the CPU backend's float kernels, one file per op family; cpu.c's table says which
 * op runs which. An op without a kernel here runs its reference kernel (src/ops). */
#ifndef CN_CPU_IMPL_H
#define CN_CPU_IMPL_H

#include "../backend.h"

/* conv.c: patches packed straight from the image, then our SGEMM (gemm.c) */
void cn_cpu_conv_forward(const cn_op_io *io);
void cn_cpu_conv_backward(const cn_op_io *io);
const char *cn_cpu_conv_describe(const cn_node *n, const cn_node *const *in, int64_t batch);
int64_t cn_cpu_conv_workspace(const cn_node *n, const cn_node *const *in, int64_t batch);
/* deconv through the same products: its forward is a convolution's input gradient */
void cn_cpu_deconv_forward(const cn_op_io *io);
void cn_cpu_deconv_backward(const cn_op_io *io);
int64_t cn_cpu_deconv_workspace(const cn_node *n, const cn_node *const *in, int64_t batch);
/* dense.c: SGEMM */
void cn_cpu_dense_forward(const cn_op_io *io);
void cn_cpu_dense_backward(const cn_op_io *io);
/* pool.c */
void cn_cpu_maxpool_forward(const cn_op_io *io);
void cn_cpu_minpool_forward(const cn_op_io *io);
void cn_cpu_argpool_backward(const cn_op_io *io); /* max and min: through the kept argmax */
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
void cn_cpu_groupnorm_forward(const cn_op_io *io);  /* layernorm, groupnorm, instancenorm (norm.c) */
void cn_cpu_groupnorm_backward(const cn_op_io *io);
/* batchnorm.c */
void cn_cpu_batchnorm_forward(const cn_op_io *io);
void cn_cpu_batchnorm_backward(const cn_op_io *io);
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
void cn_cpu_concat_forward(const cn_op_io *io);
void cn_cpu_concat_backward(const cn_op_io *io);


#endif
