/* cpu.c — the CPU backend: convolution as im2col + SGEMM (1x1 stride-1 convolutions go straight
 * to SGEMM), dense layers as SGEMM, through OpenBLAS. Every kernel is checked against the
 * reference kernels of src/ops on random shapes by tests/test_backend.c. */
#include <cblas.h>
#include <string.h>

#include "../../ops/conv_ref.h"
#include "../backend.h"

/* ---- convolution --------------------------------------------------------------------------- */

static int direct_1x1(const cn_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_t == 0 && g->pad_l == 0 &&
           g->oh == g->h && g->ow == g->w;
}

/* col (Cin_g*Kh*Kw, OH*OW) <- the patches of one group of one sample x (Cin_g, H, W) */
static void im2col(const cn_conv_geom *g, const float *x, int64_t cin_g, float *col)
{
    int64_t plane = g->oh * g->ow;
    for (int64_t c = 0; c < cin_g; c++)
        for (int64_t ky = 0; ky < g->kh; ky++)
            for (int64_t kx = 0; kx < g->kw; kx++) {
                float *row = col + ((c * g->kh + ky) * g->kw + kx) * plane;
                const float *xp = x + c * g->h * g->w;
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->sh - g->pad_t + ky * g->dh;
                    float *r = row + oy * g->ow;
                    if (iy < 0 || iy >= g->h) {
                        memset(r, 0, (size_t)g->ow * sizeof(float));
                        continue;
                    }
                    for (int64_t ox = 0; ox < g->ow; ox++) {
                        int64_t ix = ox * g->sw - g->pad_l + kx * g->dw;
                        r[ox] = ix >= 0 && ix < g->w ? xp[iy * g->w + ix] : 0.0f;
                    }
                }
            }
}

/* dx (Cin_g, H, W) += the patches of dcol (Cin_g*Kh*Kw, OH*OW) put back where they came from */
static void col2im_add(const cn_conv_geom *g, const float *col, int64_t cin_g, float *dx)
{
    int64_t plane = g->oh * g->ow;
    for (int64_t c = 0; c < cin_g; c++)
        for (int64_t ky = 0; ky < g->kh; ky++)
            for (int64_t kx = 0; kx < g->kw; kx++) {
                const float *row = col + ((c * g->kh + ky) * g->kw + kx) * plane;
                float *dp = dx + c * g->h * g->w;
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->sh - g->pad_t + ky * g->dh;
                    if (iy < 0 || iy >= g->h) continue;
                    for (int64_t ox = 0; ox < g->ow; ox++) {
                        int64_t ix = ox * g->sw - g->pad_l + kx * g->dw;
                        if (ix >= 0 && ix < g->w) dp[iy * g->w + ix] += row[oy * g->ow + ox];
                    }
                }
            }
}

static int64_t conv_workspace(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    cn_conv_geom g = cn_conv_geom_of(n, in[0], batch);
    if (direct_1x1(&g)) return 0;
    return (g.cin / g.groups) * g.kh * g.kw * g.oh * g.ow * (int64_t)sizeof(float);
}

/* y (N,Cout,OH,OW) = W_g (Cout_g, K) . col_g (K, OH*OW) + b, one sample and group at a time */
static void conv_forward(const cn_op_io *io)
{
    cn_conv_geom g = cn_conv_geom_of(io->n, io->in[0], io->batch);
    int64_t cin_g = g.cin / g.groups, cout_g = g.cout / g.groups, K = cin_g * g.kh * g.kw, P = g.oh * g.ow;
    const float *w = io->w, *x = io->x[0], *b = io->n->a.bias ? w + g.cout * K : NULL;
    float *y = io->y, *col = io->work;
    int direct = direct_1x1(&g);
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t gr = 0; gr < g.groups; gr++) {
            const float *xs = x + (n * g.cin + gr * cin_g) * g.h * g.w;
            float *ys = y + (n * g.cout + gr * cout_g) * P;
            if (!direct) im2col(&g, xs, cin_g, col);
            for (int64_t o = 0; o < cout_g; o++) {
                float bias = b ? b[gr * cout_g + o] : 0.0f;
                for (int64_t p = 0; p < P; p++) ys[o * P + p] = bias;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cout_g, (int)P, (int)K, 1.0f,
                        w + gr * cout_g * K, (int)K, direct ? xs : col, (int)P, 1.0f, ys, (int)P);
        }
}

/* dW_g += dY_g . col_g^T ; dcol = W_g^T . dY_g -> dx ; db += row sums of dY */
static void conv_backward(const cn_op_io *io)
{
    cn_conv_geom g = cn_conv_geom_of(io->n, io->in[0], io->batch);
    int64_t cin_g = g.cin / g.groups, cout_g = g.cout / g.groups, K = cin_g * g.kh * g.kw, P = g.oh * g.ow;
    const float *w = io->w, *x = io->x[0], *dy = io->dy;
    float *dw = io->dw, *db = io->n->a.bias ? dw + g.cout * K : NULL, *dx = io->dx[0], *col = io->work;
    int direct = direct_1x1(&g);
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t gr = 0; gr < g.groups; gr++) {
            const float *xs = x + (n * g.cin + gr * cin_g) * g.h * g.w;
            const float *dys = dy + (n * g.cout + gr * cout_g) * P;
            if (db)
                for (int64_t o = 0; o < cout_g; o++) {
                    double s = 0;
                    for (int64_t p = 0; p < P; p++) s += dys[o * P + p];
                    db[gr * cout_g + o] += (float)s;
                }
            if (!direct) im2col(&g, xs, cin_g, col);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)cout_g, (int)K, (int)P, 1.0f, dys, (int)P,
                        direct ? xs : col, (int)P, 1.0f, dw + gr * cout_g * K, (int)K);
            if (!dx) continue;
            float *dxs = dx + (n * g.cin + gr * cin_g) * g.h * g.w;
            if (direct) { /* dx (Cin_g, P) += W^T dY */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)cout_g, 1.0f,
                            w + gr * cout_g * K, (int)K, dys, (int)P, 1.0f, dxs, (int)P);
                continue;
            }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)cout_g, 1.0f,
                        w + gr * cout_g * K, (int)K, dys, (int)P, 0.0f, col, (int)P);
            col2im_add(&g, col, cin_g, dxs);
        }
}

/* ---- dense ------------------------------------------------------------------------------------ */

/* y (N, out) = x (N, in) . W^T + b */
static void dense_forward(const cn_op_io *io)
{
    const cn_node *n = io->n, *x = io->in[0];
    int64_t in = x->out.c * x->out.h * x->out.w, out = n->a.units, N = io->batch;
    const float *w = io->w, *b = n->a.bias ? w + out * in : NULL;
    float *y = io->y;
    for (int64_t i = 0; i < N; i++)
        for (int64_t o = 0; o < out; o++) y[i * out + o] = b ? b[o] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)out, (int)in, 1.0f, io->x[0], (int)in, w,
                (int)in, 1.0f, y, (int)out);
}

/* dx += dY . W ; dW += dY^T . x ; db += column sums of dY */
static void dense_backward(const cn_op_io *io)
{
    const cn_node *n = io->n, *x = io->in[0];
    int64_t in = x->out.c * x->out.h * x->out.w, out = n->a.units, N = io->batch;
    const float *dy = io->dy;
    float *dw = io->dw;
    if (io->dx[0])
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)in, (int)out, 1.0f, dy, (int)out, io->w,
                    (int)in, 1.0f, io->dx[0], (int)in);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)N, 1.0f, dy, (int)out, io->x[0],
                (int)in, 1.0f, dw, (int)in);
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
    if (n->op == cn_ops[CN_OP_CONV]) return conv_forward;
    if (n->op == cn_ops[CN_OP_DENSE]) return dense_forward;
    return NULL;
}

static cn_kernel_fn backward(const cn_node *n)
{
    if (n->op == cn_ops[CN_OP_CONV]) return conv_backward;
    if (n->op == cn_ops[CN_OP_DENSE]) return dense_backward;
    return NULL;
}

static int64_t workspace(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    return n->op == cn_ops[CN_OP_CONV] ? conv_workspace(n, in, batch) : 0;
}

const cn_backend cn_backend_cpu = { "cpu", forward, backward, workspace };
