/* softmax.c — softmax over the channels of each position (the classes after a dense layer);
 * the same kernel computes `convnet calc softmax` (cn_softmax). Covered by tests/test_seeds.c,
 * tests/test_calc_ref.c (PyTorch values) and tests/test_gradcheck.c. */
#ifndef CN_REAL
#include <math.h>

#include "op_impl.h"


static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in, (void)batch;
    cn_sb_printf(sb, "    softmax_i = e^(x_i - max) / sum_j e^(x_j - max) over the %lld channels; no parameters\n",
                 (long long)n->out.c);
}

#define CN_TEMPLATE_FILE "softmax.c"
#include "template.h"

const cn_op cn_op_softmax = {
    .name = "softmax", .usage = "softmax", .help = "probabilities over the channels (classes)", .keys = cn_no_keys,
    .inputs = 1, .infer = cn_infer_pointwise, .explain = explain,
    .forward = { softmax_forward_f32, softmax_forward_f64 }, .backward = { softmax_backward_f32, softmax_backward_f64 },
};

/* n values: one position of n channels */
void cn_softmax(const float *x, float *y, int64_t n)
{
    if (n > 0) softmax_fwd_f32(x, y, 1, n, 1);
}

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,C,HW) <- softmax over C at each (n, position):
 * y_c = e^(x_c - max) / sum_j e^(x_j - max); subtracting the max keeps e^x finite */
static void CN_FN(softmax_fwd)(const CN_REAL *x, CN_REAL *y, int64_t n, int64_t c, int64_t hw)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t p = 0; p < hw; p++) {
            const CN_REAL *xp = x + i * c * hw + p;
            CN_REAL *yp = y + i * c * hw + p;
            CN_REAL mx = xp[0];
            for (int64_t k = 1; k < c; k++) mx = xp[k * hw] > mx ? xp[k * hw] : mx;
            double sum = 0;
            for (int64_t k = 0; k < c; k++) sum += exp((double)xp[k * hw] - mx);
            for (int64_t k = 0; k < c; k++) yp[k * hw] = (CN_REAL)(exp((double)xp[k * hw] - mx) / sum);
        }
}

/* the op: y (N,C,H,W) <- softmax of x (N,C,H,W) over C */
static void CN_FN(softmax_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    CN_FN(softmax_fwd)(io->x[0], io->y, io->batch, nd->out.c, nd->out.h * nd->out.w);
}

/* dx (N,C,H,W) += y * (dy - sum_j dy_j y_j) over the channels of each position, y the output */
static void CN_FN(softmax_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w;
    const CN_REAL *y = io->y, *dy = io->dy;
    CN_REAL *dx = io->dx[0];
    if (!dx) return;
    for (int64_t i = 0; i < io->batch; i++)
        for (int64_t p = 0; p < hw; p++) {
            int64_t base = i * c * hw + p;
            double dot = 0;
            for (int64_t k = 0; k < c; k++) dot += (double)dy[base + k * hw] * y[base + k * hw];
            for (int64_t k = 0; k < c; k++)
                dx[base + k * hw] += (CN_REAL)((double)y[base + k * hw] * ((double)dy[base + k * hw] - dot));
        }
}

#endif
