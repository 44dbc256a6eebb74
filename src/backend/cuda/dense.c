/* dense.c — the dense layer on cuBLAS. Our tensors are row-major, cuBLAS's column-major: a
 * row-major (R x C) matrix is its column-major transpose, so y (N,OUT) = x (N,IN) w^T is
 * y^T = w x^T for cuBLAS. The bias is added, and its gradient summed, by our kernels.
 * fp32 runs cuBLAS's default math; tf32 its TF32 tensor-op math (loader.c sets the mode); bf16
 * runs cublasGemmEx on bf16 factors with fp32 sums: the weights staged as bf16 in the
 * workspace, the input and the output's gradient too where they are floats (an activation
 * stored as bf16 between layers is a factor as it is); the result into floats (the master
 * weights' gradient) or into an activation stored as bf16. */
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

static int64_t fan_in_of(const cn_node *in) { return in->out.c * in->out.h * in->out.w; }
static int64_t fan_in(const cn_op_io *io) { return fan_in_of(io->in[0]); }

/* bf16: the workspace holds the input (or its gradient), the weights and the output's gradient;
 * then the bias gradient's partial sums */
static int64_t staged_bytes(int64_t batch, int64_t fan, int64_t units)
{
    if (cn_cu.precision != CN_PRECISION_BF16) return 0;
    return CN_CU_ALIGN(batch * fan * 2) + CN_CU_ALIGN(units * fan * 2) + CN_CU_ALIGN(batch * units * 2);
}

int64_t cn_cuda_dense_workspace(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    if (cn_cuda_ready()) return 0;
    int64_t units = n->a.units, fan = fan_in_of(in[0]);
    return staged_bytes(batch, fan, units) + (n->a.bias ? cn_cuda_channel_sum_bytes(batch, units, 1) : 0);
}

/* how the products run (cn_kernels.describe) */
const char *cn_cuda_dense_describe(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    (void)n, (void)in, (void)batch;
    return cn_cu.precision == CN_PRECISION_BF16   ? "cuBLAS GemmEx on bf16, fp32 sums"
           : cn_cu.precision == CN_PRECISION_TF32 ? "cuBLAS sgemm, tf32 tensor cores"
                                                  : "cuBLAS sgemm";
}

/* C (m x n, column-major: floats, or bf16 where stored so) = A B + beta C, op(A) m x k, op(B)
 * k x n: SGEMM, or in bf16 cublasGemmEx on the factors a16 and b16 (staged by the caller) with
 * fp32 sums */
static int product(cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k, const void *a,
                   const uint16_t *a16, int64_t lda, const void *b, const uint16_t *b16, int64_t ldb, int add, cn_cu_act c,
                   int64_t ldc, const char *what)
{
    float one = 1, beta = add ? 1.0f : 0.0f;
    if (cn_cu.precision != CN_PRECISION_BF16) /* activations are floats then (cn_cuda_half_storage) */
        return cn_blas_ok(cn_cu.blas.cublasSgemm(cn_cu.blas_handle, ta, tb, (int)m, (int)n, (int)k, &one, a, (int)lda, b,
                                                 (int)ldb, &beta, c.p, (int)ldc),
                          what);
    return cn_blas_ok(cn_cu.blas.cublasGemmEx(cn_cu.blas_handle, ta, tb, (int)m, (int)n, (int)k, &one, a16, CUDA_R_16BF,
                                              (int)lda, b16, CUDA_R_16BF, (int)ldb, &beta, c.p,
                                              c.bf16 ? CUDA_R_16BF : CUDA_R_32F, (int)ldc, CUBLAS_COMPUTE_32F,
                                              CUBLAS_GEMM_DEFAULT),
                      what);
}

/* 1 when activation t of a layer whose input is `in` is a factor as it is: bf16, in the
 * row-major order of the product (NCHW's; an NHWC map of one pixel is the same) */
static int as_factor(cn_cu_act t, const cn_node *in) { return t.bf16 && (!t.nhwc || in->out.h * in->out.w == 1); }

/* the bf16 factors: the workspace's regions (cn_cuda_dense_workspace's), each staged from its
 * tensor where given (NULL: left as it is) and not a factor as it is (as_factor); sx is the
 * input's region, which also takes an input gradient to be reordered into NHWC */
typedef struct staged { const uint16_t *x, *w, *dy; uint16_t *sx; } staged;
static staged stage(const cn_op_io *io, cn_cu_act x, const float *w, cn_cu_act dy)
{
    staged s = { 0 };
    if (cn_cu.precision != CN_PRECISION_BF16) return s;
    const cn_node *map = io->in[0];
    int64_t out = io->n->a.units, in = fan_in(io), n = io->batch, c = map->out.c, hw = map->out.h * map->out.w;
    char *at = io->work;
    uint16_t *sx = (uint16_t *)at, *sw = (uint16_t *)(at += CN_CU_ALIGN(n * in * 2)),
             *sdy = (uint16_t *)(at += CN_CU_ALIGN(out * in * 2));
    s.x = as_factor(x, map) ? x.p : sx, s.w = sw, s.dy = dy.bf16 ? dy.p : sdy, s.sx = sx;
    if (x.p && s.x == sx) cn_cuda_bf16_pack(x, sx, n, c, hw, 0); /* NCHW's order */
    if (w) cn_cuda_bf16_pack(cn_cu_floats(w), sw, out, in, 1, 0);
    if (dy.p && !dy.bf16) cn_cuda_bf16_pack(dy, sdy, n, out, 1, 0);
    return s;
}

/* y (N,OUT) <- x (N,IN) w^T + b, then relu(y) where a relu is fused after (forward_relu_out) */
static void dense_forward(const cn_op_io *io, int relu)
{
    int64_t out = io->n->a.units, in = fan_in(io), n = io->batch;
    if (cn_cuda_ready() || !sizes_ok(n, in, out)) return;
    const float *w = io->w, *b = io->n->a.bias ? w + out * in : NULL;
    cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io);
    staged s = stage(io, x, w, cn_cu_floats(NULL));
    if (product(CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, w, s.w, in, x.p, s.x, in, 0, y, out, "the dense layer's forward"))
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
    const float *w = io->w;
    cn_cu_act x = cn_cu_x(io, 0), dy = cn_cu_dy(io), dx = cn_cu_dx(io, 0);
    float *dw = io->dw, *db = io->n->a.bias ? dw + out * in : NULL;
    staged s = stage(io, x, dx.p ? w : NULL, dy);
    if (product(CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, x.p, s.x, in, dy.p, s.dy, out, 1, cn_cu_floats(dw), in,
                "the dense layer's weight gradient"))
        return;
    if (db) cn_cuda_channel_sum(dy, db, n, out, 1, (double *)((char *)io->work + staged_bytes(n, in, out)));
    if (!dx.p) return;
    int add = !(io->dx_fresh & 1u);
    if (cn_cu.precision != CN_PRECISION_BF16 || as_factor(dx, io->in[0]) || !dx.bf16) {
        product(CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w, s.w, in, dy.p, s.dy, out, add, dx, in,
                "the dense layer's input gradient");
        return;
    }
    /* an NHWC map's gradient: the product in NCHW's order into the input's region (its values
     * used already), then reordered into it */
    const cn_node *map = io->in[0];
    cn_cu_act ordered = { s.sx, 1, 0 }; /* bf16 in NCHW's order */
    if (product(CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w, s.w, in, dy.p, s.dy, out, 0, ordered, in,
                "the dense layer's input gradient"))
        return;
    cn_cuda_bf16_unpack(s.sx, dx, NULL, n, map->out.c, map->out.h * map->out.w, 0, add, 0);
}
