/* dense.c — the CPU backend's dense layer: the forward pass and both gradients as SGEMM calls
 * (gemm.c) on the flattened input, the bias folded into the forward GEMM. Checked against the
 * reference kernel of src/ops/dense.c by tests/test_backend.c. */
#include "cpu_impl.h"
#include "gemm.h"

/* y (N, out) = x (N, in) . W^T + b, then relu(y) where relu */
static void dense_forward(const cn_op_io *io, int relu)
{
    const cn_node *n = io->n, *x = io->in[0];
    int64_t in = x->out.c * x->out.h * x->out.w, out = n->a.units, N = io->batch;
    const float *w = io->w;
    cn_gemm_args a = { .m = N, .n = out, .k = in, .a = io->x[0], .a_row = cn_axis_ld(in), .a_col = cn_axis_unit(),
                       .b = w, .b_row = cn_axis_unit(), .b_col = cn_axis_ld(in), .c = io->y, .c_row = cn_axis_ld(out),
                       .c_col = cn_axis_unit(), .bias_col = n->a.bias ? w + out * in : NULL, .relu = relu };
    cn_gemm(&a);
}

void cn_cpu_dense_forward(const cn_op_io *io) { dense_forward(io, 0); }
void cn_cpu_dense_forward_relu(const cn_op_io *io) { dense_forward(io, 1); }

/* dx += dY . W ; dW += dY^T . x ; db += column sums of dY */
void cn_cpu_dense_backward(const cn_op_io *io)
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
