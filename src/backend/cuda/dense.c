/* dense.c — the dense layer on cuBLAS. Our tensors are row-major, cuBLAS's column-major: a
 * row-major (R x C) matrix is its column-major transpose, so y (N,OUT) = x (N,IN) w^T is
 * y^T = w x^T for cuBLAS. The bias is added, and its gradient summed, by our kernels.
 * fp32 runs cuBLAS's default math; tf32 its TF32 tensor-op math (loader.c sets the mode). */
#include <limits.h>

#include "cuda_impl.h"

/* cuBLAS takes int sizes */
static int sizes_ok(int64_t batch, int64_t in, int64_t out)
{
    if (batch <= INT_MAX && in <= INT_MAX && out <= INT_MAX && batch * in <= INT_MAX && out * in <= INT_MAX &&
        batch * out <= INT_MAX)
        return 1;
    cn_cuda_fail("cuBLAS: a dense layer of %lld x %lld at batch %lld is past its int sizes", (long long)out,
                 (long long)in, (long long)batch);
    return 0;
}

static int64_t fan_in(const cn_op_io *io) { return io->in[0]->out.c * io->in[0]->out.h * io->in[0]->out.w; }

/* y (N,OUT) <- x (N,IN) w^T + b, then relu(y) where a relu is fused after (forward_relu_out) */
static void dense_forward(const cn_op_io *io, int relu)
{
    int64_t out = io->n->a.units, in = fan_in(io), n = io->batch;
    if (cn_cuda_ready() || !sizes_ok(n, in, out)) return;
    const float *x = io->x[0], *w = io->w, *b = io->n->a.bias ? w + out * in : NULL;
    float *y = io->y, one = 1, zero = 0;
    if (cn_blas_ok(cn_cu.blas.cublasSgemm(cn_cu.blas_handle, CUBLAS_OP_T, CUBLAS_OP_N, (int)out, (int)n, (int)in, &one, w,
                                          (int)in, x, (int)in, &zero, y, (int)out),
                   "the dense layer's forward"))
        return;
    cn_cuda_bias_relu(y, b, n, out, 1, relu);
}

void cn_cuda_dense_forward(const cn_op_io *io) { dense_forward(io, 0); }
void cn_cuda_dense_forward_relu(const cn_op_io *io) { dense_forward(io, 1); }

/* dw (OUT,IN) += dy^T x; db += column sums of dy; dx (N,IN) (+)= dy w */
void cn_cuda_dense_backward(const cn_op_io *io)
{
    int64_t out = io->n->a.units, in = fan_in(io), n = io->batch;
    if (cn_cuda_ready() || !sizes_ok(n, in, out)) return;
    const float *x = io->x[0], *w = io->w, *dy = io->dy;
    float *dw = io->dw, *db = io->n->a.bias ? dw + out * in : NULL, *dx = io->dx[0], one = 1, zero = 0;
    if (cn_blas_ok(cn_cu.blas.cublasSgemm(cn_cu.blas_handle, CUBLAS_OP_N, CUBLAS_OP_T, (int)in, (int)out, (int)n, &one, x,
                                          (int)in, dy, (int)out, &one, dw, (int)in),
                   "the dense layer's weight gradient"))
        return;
    if (db) cn_cuda_channel_sum(dy, db, n, out, 1);
    if (dx)
        cn_blas_ok(cn_cu.blas.cublasSgemm(cn_cu.blas_handle, CUBLAS_OP_N, CUBLAS_OP_N, (int)in, (int)n, (int)out, &one, w,
                                          (int)in, dy, (int)out, (io->dx_fresh & 1u) ? &zero : &one, dx, (int)in),
                   "the dense layer's input gradient");
}
