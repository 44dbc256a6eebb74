/* norm.c — layernorm, groupnorm and instancenorm on the CPU, threaded: forward and the input
 * gradient over (sample, group) blocks, the scale and shift gradients over the values or channels
 * they belong to, each walking the samples in order; layernorm over=channels over runs of a
 * sample's positions (each position's sums over the channels, the run's positions side by
 * side). Every sum runs in the reference's order in double, so the results are src/ops/norm.c's
 * to the bit, on any number of threads (aux as there: mean and 1/sqrt(var + eps) of each block
 * or position). Covered by tests/test_cpu_ops.c. */
#include <math.h>

#include "kernel_util.h"

/* a block is one sample's group: cpg channels of hw values, per = cpg * hw of them */
typedef struct {
    int64_t groups, cpg, hw, per, scales;
    int per_value; /* layernorm: a scale per value; the others: per channel */
} norm_shape;

static norm_shape shape_of(const cn_node *nd)
{
    norm_shape s = { nd->a.groups, nd->out.c / nd->a.groups, nd->out.h * nd->out.w, 0, 0,
                     nd->id == CN_OP_LAYERNORM && nd->a.over == CN_NORM_OVER_ALL };
    s.per = s.cpg * s.hw;
    s.scales = s.per_value ? nd->out.c * s.hw : nd->out.c;
    return s;
}

/* value j of channel ch's scale: its own (layernorm) or the channel's */
static inline int64_t scale_at(const norm_shape *s, int64_t ch, int64_t j) { return s->per_value ? ch * s->hw + j : ch; }

/* ---- over=channels: a position's statistics over its C channels, RUN positions at a time ---- */

#define RUN 64

/* run r of the batch's (sample, RUN positions) runs: its sample, first position and length */
static void run_of(int64_t r, int64_t runs_per, int64_t hw, int64_t *s, int64_t *p0, int64_t *len)
{
    *s = r / runs_per, *p0 = r % runs_per * RUN;
    *len = hw - *p0 < RUN ? hw - *p0 : RUN;
}

static void channelnorm_forward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w, runs_per = (hw + RUN - 1) / RUN;
    const float *gamma = nd->a.affine ? io->w : NULL, *x0 = io->x[0];
    float *y0 = io->y, *aux = io->aux;
    double eps = nd->a.eps;
    CN_PAR_FOR(io->batch * c * hw >= CPU_PAR_MIN, schedule(static),
        for (int64_t r = 0; r < io->batch * runs_per; r++) {
            int64_t s, p0, len;
            run_of(r, runs_per, hw, &s, &p0, &len);
            const float *x = x0 + s * c * hw + p0;
            float *y = y0 + s * c * hw + p0, *stats = aux + 2 * (s * hw + p0);
            double m[RUN] = { 0 }, v[RUN] = { 0 }, inv[RUN];
            for (int64_t k = 0; k < c; k++)
                for (int64_t p = 0; p < len; p++) m[p] += x[k * hw + p];
            for (int64_t p = 0; p < len; p++) m[p] /= (double)c;
            for (int64_t k = 0; k < c; k++)
                for (int64_t p = 0; p < len; p++) v[p] += ((double)x[k * hw + p] - m[p]) * ((double)x[k * hw + p] - m[p]);
            for (int64_t p = 0; p < len; p++) inv[p] = 1.0 / sqrt(v[p] / (double)c + eps);
            for (int64_t k = 0; k < c; k++)
                for (int64_t p = 0; p < len; p++) {
                    double xh = ((double)x[k * hw + p] - m[p]) * inv[p];
                    y[k * hw + p] = (float)(gamma ? gamma[k] * xh + gamma[c + k] : xh);
                }
            for (int64_t p = 0; p < len; p++) stats[2 * p] = (float)m[p], stats[2 * p + 1] = (float)inv[p];
        });
}

static void channelnorm_backward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w, runs_per = (hw + RUN - 1) / RUN;
    const float *gamma = nd->a.affine ? io->w : NULL, *stats = io->aux, *x0 = io->x[0], *dy0 = io->dy;
    float *dgamma = io->dw, *dx0 = io->dx[0];
    int par = io->batch * c * hw >= CPU_PAR_MIN;
    if (gamma) /* a channel a thread's share, the samples in order, each sample's positions in order */
        CN_PAR_FOR(par, schedule(static),
            for (int64_t k = 0; k < c; k++)
                for (int64_t s = 0; s < io->batch; s++) {
                    const float *x = x0 + (s * c + k) * hw, *dy = dy0 + (s * c + k) * hw, *st = stats + 2 * s * hw;
                    double sdy = 0, sdyxh = 0;
                    for (int64_t p = 0; p < hw; p++) sdy += dy[p], sdyxh += dy[p] * (((double)x[p] - st[2 * p]) * st[2 * p + 1]);
                    dgamma[k] += (float)sdyxh, dgamma[c + k] += (float)sdy;
                });
    if (!dx0) return;
    CN_PAR_FOR(par, schedule(static),
        for (int64_t r = 0; r < io->batch * runs_per; r++) {
            int64_t s, p0, len;
            run_of(r, runs_per, hw, &s, &p0, &len);
            const float *restrict x = x0 + s * c * hw + p0, *restrict dy = dy0 + s * c * hw + p0;
            const float *st = stats + 2 * (s * hw + p0);
            float *restrict dx = dx0 + s * c * hw + p0;
            /* the statistics side by side, and g = gamma dy as 1 * dy where there is no gamma (the
             * same value): loops the compiler vectorises, the reference's arithmetic */
            double m[RUN], inv[RUN], sg[RUN] = { 0 }, sgxh[RUN] = { 0 };
            for (int64_t p = 0; p < len; p++) m[p] = st[2 * p], inv[p] = st[2 * p + 1];
            for (int64_t k = 0; k < c; k++) {
                double gk = gamma ? gamma[k] : 1.0;
                for (int64_t p = 0; p < len; p++) {
                    double xh = ((double)x[k * hw + p] - m[p]) * inv[p], g = gk * (double)dy[k * hw + p];
                    sg[p] += g, sgxh[p] += g * xh;
                }
            }
            for (int64_t p = 0; p < len; p++) sg[p] /= (double)c; /* mean(g); xh * sgxh / c as the reference orders it */
            for (int64_t k = 0; k < c; k++) {
                double gk = gamma ? gamma[k] : 1.0;
                for (int64_t p = 0; p < len; p++) {
                    double xh = ((double)x[k * hw + p] - m[p]) * inv[p], g = gk * (double)dy[k * hw + p];
                    dx[k * hw + p] += (float)(inv[p] * (g - sg[p] - xh * sgxh[p] / (double)c));
                }
            }
        });
}

/* ---- groups of channels ---- */

/* y (N,C,H,W) <- gamma * (x - mean) * inv + beta over each block; w = gamma, beta (affine) */
void cn_cpu_groupnorm_forward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    if (cn_norm_over_channels(nd)) {
        channelnorm_forward(io);
        return;
    }
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
    if (cn_norm_over_channels(nd)) {
        channelnorm_backward(io);
        return;
    }
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
