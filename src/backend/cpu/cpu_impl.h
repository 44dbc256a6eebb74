/* cpu_impl.h — the parts of the CPU backend, each in its own file: GEMM-based convolution and
 * dense layers (cpu.c, gemm.c), and the vectorised, threaded kernels of the other ops. Each
 * lookup returns the fast float kernel for node n, or NULL to leave n to the reference kernel. */
#ifndef CN_CPU_IMPL_H
#define CN_CPU_IMPL_H

#include "../backend.h"

/* convolution (conv.c) */
void cn_cpu_conv_forward(const cn_op_io *io);
void cn_cpu_conv_backward(const cn_op_io *io);
int64_t cn_cpu_conv_workspace(const cn_node *n, const cn_node *const *in, int64_t batch);

/* pooling, activations, batch norm, dropout, softmax, merge ... (one file per op) */
cn_kernel_fn cn_cpu_other_forward(const cn_node *n);
cn_kernel_fn cn_cpu_other_backward(const cn_node *n);
/* 1 when that backward kernel honours cn_op_io.dx_fresh */
int cn_cpu_other_fresh_dx(const cn_node *n);

#endif
