/* norm.c — layernorm, groupnorm and instancenorm on the CPU, threaded: forward and the input
 * gradient over (sample, group) blocks, the scale and shift gradients over the values or channels
 * they belong to, each walking the samples in order. Every sum runs in the reference's order in
 * double, so the results are src/ops/norm.c's to the bit, on any number of threads (aux as there:
 * mean and 1/sqrt(var + eps) of each block). Covered by tests/test_cpu_ops.c. */
#include <math.h>

#include "kernel_util.h"

/* a block is one sample's group: cpg channels of hw values, per = cpg * hw of them */
typedef struct {
    int64_t groups, cpg, hw, per, scales;
    int per_value; /* layernorm: a scale per value; the others: per channel */
} norm_shape;

static norm_shape shape_of(const cn_node *nd)
{
    norm_shape s = { nd->a.groups, nd->out.c / nd->a.groups, nd->out.h * nd->out.w, 0, 0, nd->id == CN_OP_LAYERNORM };
    s.per = s.cpg * s.hw;
    s.scales = s.per_value ? nd->out.c * s.hw : nd->out.c;
    return s;
}

/* value j of channel ch's scale: its own (layernorm) or the channel's */
static inline int64_t scale_at(const norm_shape *s, int64_t ch, int64_t j) { return s->per_value ? ch * s->hw + j : ch; }

/* y (N,C,H,W) <- gamma * (x - mean) * inv + beta over each block; w = gamma, beta (affine) */
void cn_cpu_groupnorm_forward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    norm_shape s = shape_of(nd);
    int64_t blocks = io->batch * s.groups;
    const float *x = io->x[0], *gamma = nd->a.affine ? io->w : NULL;
    float *y = io->y, *stats = io->aux;
    double eps = nd->a.eps;
    CN_PAR_FOR(blocks * s.per >= CPU_PAR_MIN, schedule(static),
        for (int64_t b = 0; b < blocks; b++) {
            const float *xb = x + b * s.per;
            float *yb = y + b * s.per;
            double m = 0, v = 0;
            for (int64_t i = 0; i < s.per; i++) m += xb[i];
            m /= (double)s.per;
            for (int64_t i = 0; i < s.per; i++) v += ((double)xb[i] - m) * ((double)xb[i] - m);
            double inv = 1.0 / sqrt(v / (double)s.per + eps);
            for (int64_t k = 0; k < s.cpg; k++) {
                int64_t ch = b % s.groups * s.cpg + k;
                for (int64_t j = 0; j < s.hw; j++) {
                    int64_t i = k * s.hw + j, at = scale_at(&s, ch, j);
                    double xh = ((double)xb[i] - m) * inv;
                    yb[i] = (float)(gamma ? gamma[at] * xh + gamma[s.scales + at] : xh);
                }
            }
            stats[2 * b] = (float)m;
            stats[2 * b + 1] = (float)inv;
        });
}

/* dgamma += dy * xh, dbeta += dy: per value, sample after sample; per channel, its values summed
 * in double within each sample first (the reference's order) */
static void scale_grads(const cn_op_io *io, const norm_shape *s)
{
    const float *x = io->x[0], *dy = io->dy, *stats = io->aux;
    float *dgamma = io->dw, *dbeta = dgamma + s->scales;
    int64_t n = io->batch, plane = s->groups * s->per, units = s->per_value ? s->scales : io->n->out.c;
    CN_PAR_FOR(n * plane >= CPU_PAR_MIN, schedule(static),
        for (int64_t u = 0; u < units; u++) {
            int64_t ch = s->per_value ? u / s->hw : u, g = ch / s->cpg;
            for (int64_t i = 0; i < n; i++) {
                int64_t b = i * s->groups + g;
                double m = stats[2 * b], inv = stats[2 * b + 1];
                const float *xc = x + i * plane + ch * s->hw, *dyc = dy + i * plane + ch * s->hw;
                if (s->per_value) {
                    int64_t j = u % s->hw;
                    dgamma[u] += (float)(dyc[j] * (((double)xc[j] - m) * inv)), dbeta[u] += dyc[j];
                    continue;
                }
                double sdy = 0, sdyxh = 0;
                for (int64_t j = 0; j < s->hw; j++) sdy += dyc[j], sdyxh += dyc[j] * (((double)xc[j] - m) * inv);
                dgamma[u] += (float)sdyxh, dbeta[u] += (float)sdy;
            }
        });
}

/* dx (N,C,H,W) += inv * (g - mean(g) - xh * mean(g * xh)), g = dy * gamma, over each block */
void cn_cpu_groupnorm_backward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    norm_shape s = shape_of(nd);
    int64_t blocks = io->batch * s.groups;
    const float *x = io->x[0], *dy = io->dy, *gamma = nd->a.affine ? io->w : NULL, *stats = io->aux;
    float *dx = io->dx[0];
    if (gamma) scale_grads(io, &s);
    if (!dx) return;
    CN_PAR_FOR(blocks * s.per >= CPU_PAR_MIN, schedule(static),
        for (int64_t b = 0; b < blocks; b++) {
            const float *xb = x + b * s.per, *dyb = dy + b * s.per;
            float *dxb = dx + b * s.per;
            double m = stats[2 * b], inv = stats[2 * b + 1], sg = 0, sgxh = 0;
            for (int64_t pass = 0; pass < 2; pass++)
                for (int64_t k = 0; k < s.cpg; k++) {
                    int64_t ch = b % s.groups * s.cpg + k;
                    for (int64_t j = 0; j < s.hw; j++) {
                        int64_t i = k * s.hw + j, at = scale_at(&s, ch, j);
                        double xh = ((double)xb[i] - m) * inv, g = gamma ? gamma[at] * (double)dyb[i] : dyb[i];
                        if (pass == 0) sg += g, sgxh += g * xh;
                        else dxb[i] += (float)(inv * (g - sg / (double)s.per - xh * sgxh / (double)s.per));
                    }
                }
        });
}
