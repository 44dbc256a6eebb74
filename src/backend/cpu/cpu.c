/* cpu.c — the CPU backend: convolution as our SGEMM (gemm.c) over patches packed straight from
 * the image (1x1 stride-1 convolutions read it as a matrix), dense layers as SGEMM, other ops through other.c.
 * Every kernel is checked against the reference kernels of src/ops on random shapes by
 * tests/test_backend.c. */
#include <string.h>

#include "cpu_impl.h"
#include "gemm.h"

/* ---- dense ------------------------------------------------------------------------------------ */

/* y (N, out) = x (N, in) . W^T + b */
static void dense_forward(const cn_op_io *io)
{
    const cn_node *n = io->n, *x = io->in[0];
    int64_t in = x->out.c * x->out.h * x->out.w, out = n->a.units, N = io->batch;
    const float *w = io->w;
    cn_gemm_args a = { .m = N, .n = out, .k = in, .a = io->x[0], .a_row = cn_axis_ld(in), .a_col = cn_axis_unit(),
                       .b = w, .b_row = cn_axis_unit(), .b_col = cn_axis_ld(in), .c = io->y, .c_row = cn_axis_ld(out),
                       .c_col = cn_axis_unit(), .bias_col = n->a.bias ? w + out * in : NULL };
    cn_gemm(&a);
}

/* dx += dY . W ; dW += dY^T . x ; db += column sums of dY */
static void dense_backward(const cn_op_io *io)
{
    const cn_node *n = io->n, *x = io->in[0];
    int64_t in = x->out.c * x->out.h * x->out.w, out = n->a.units, N = io->batch;
    const float *dy = io->dy;
    float *dw = io->dw;
    if (io->dx[0]) {
        cn_gemm_args a = { .m = N, .n = in, .k = out, .a = dy, .a_row = cn_axis_ld(out), .a_col = cn_axis_unit(),
                           .b = io->w, .b_row = cn_axis_ld(in), .b_col = cn_axis_unit(), .c = io->dx[0],
                           .c_row = cn_axis_ld(in), .c_col = cn_axis_unit(), .accumulate = !(io->dx_fresh & 1) };
        cn_gemm(&a);
    }
    cn_gemm_args a = { .m = out, .n = in, .k = N, .a = dy, .a_row = cn_axis_unit(), .a_col = cn_axis_ld(out),
                       .b = io->x[0], .b_row = cn_axis_ld(in), .b_col = cn_axis_unit(), .c = dw,
                       .c_row = cn_axis_ld(in), .c_col = cn_axis_unit(), .accumulate = 1 };
    cn_gemm(&a);
    if (n->a.bias)
        for (int64_t o = 0; o < out; o++) {
            double s = 0;
            for (int64_t i = 0; i < N; i++) s += dy[i * out + o];
            dw[out * in + o] += (float)s;
        }
}

/* ---- the vtable ---------------------------------------------------------------------------------- */

static cn_kernel_fn forward(const cn_node *n)
{
    if (n->op == cn_ops[CN_OP_CONV]) return cn_cpu_conv_forward;
    if (n->op == cn_ops[CN_OP_DENSE]) return dense_forward;
    return cn_cpu_other_forward(n);
}

static cn_kernel_fn backward(const cn_node *n)
{
    if (n->op == cn_ops[CN_OP_CONV]) return cn_cpu_conv_backward;
    if (n->op == cn_ops[CN_OP_DENSE]) return dense_backward;
    return cn_cpu_other_backward(n);
}

static int64_t workspace(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    return n->op == cn_ops[CN_OP_CONV] ? cn_cpu_conv_workspace(n, in, batch) : 0;
}

/* conv and dense, and the ops of other.c that say so, store fresh gradients */
static int fresh_dx(const cn_node *n)
{
    return n->op == cn_ops[CN_OP_CONV] || n->op == cn_ops[CN_OP_DENSE] || cn_cpu_other_fresh_dx(n);
}

const cn_backend cn_backend_cpu = { "cpu", forward, backward, workspace, fresh_dx };
