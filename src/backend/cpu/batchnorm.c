/* batchnorm.c — batch normalisation on the CPU, threaded over channels. A channel's sums run in
 * lanes (core/sum_impl.h) over its samples in order, so they do not depend on the thread count
 * and differ from the reference's single running sum by rounding in double only; the elementwise
 * work is the reference's double arithmetic, vectorised. Running statistics and aux as
 * src/ops/batchnorm.c. Covered by tests/test_cpu_ops.c. */
#include <math.h>

#include "../../core/sum_impl.h"
#include "../../ops/aux_impl.h"
#include "kernel_util.h"

/* The layout of x (N,C,H,W) seen from one channel: N runs of HW values, `stride` apart. */
typedef struct { int64_t n, hw, stride; } channel_runs;

static channel_runs runs_of(const cn_op_io *io)
{
    const cn_dims *d = &io->n->out;
    return (channel_runs){ io->batch, d->h * d->w, d->c * d->h * d->w };
}

/* aux: the mode, then mean (C) and 1/sqrt(var + eps) (C) as floats */
static float *aux_mean(void *aux) { return (float *)((unsigned char *)aux + CN_BN_AUX_HEAD); }

/* mean and biased variance (two passes) of one channel, x pointing at its first run */
static void channel_moments(const channel_runs *r, const float *x, double *mean, double *var)
{
    double count = r->n * r->hw > 0 ? (double)(r->n * r->hw) : 1.0;
    cn_sum8 s = cn_sum8_zero(), sq = cn_sum8_zero();
    for (int64_t i = 0; i < r->n; i++) cn_sum8_add(&s, x + i * r->stride, r->hw);
    double m = cn_sum8_total(&s) / count;
    for (int64_t i = 0; i < r->n; i++) cn_sum8_add_dot(&sq, x + i * r->stride, m, x + i * r->stride, m, r->hw);
    *mean = m;
    *var = cn_sum8_total(&sq) / count;
}

/* y (N,C,H,W) <- gamma * (x - mean) * inv + beta per channel, inv = 1/sqrt(var + eps), with batch
 * statistics (training: the running ones move by momentum as in the reference) or the running
 * statistics (evaluation); w = gamma (C), beta (C) (affine=no: none, gamma 1, beta 0);
 * buf = running mean (C), running var (C). A shard's call takes io->whole's statistics. */
void cn_cpu_batchnorm_forward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    channel_runs r = runs_of(io);
    int64_t c = nd->out.c, count = r.n * r.hw;
    const float *x = io->x[0], *gamma = nd->a.affine ? io->w : NULL, *beta = gamma ? gamma + c : NULL;
    float *y = io->y, *rmean = io->buf, *rvar = rmean + c, *amean = aux_mean(io->aux), *ainv = amean + c;
    double mom = nd->a.momentum, eps = nd->a.eps;
    int training = io->training != 0;
    *(int64_t *)io->aux = training;
    CN_PAR_FOR(count * c >= CPU_PAR_MIN, schedule(static),
        for (int64_t ch = 0; ch < c; ch++) {
            const float *xc = x + ch * r.hw;
            double m = rmean[ch], v = rvar[ch];
            if (training) {
                int64_t n = count;
                if (io->whole) /* one shard of a batch: the whole batch's moments (cn_op.stats_merge) */
                    m = io->whole[ch], v = io->whole[c + ch], n = (int64_t)io->whole[2 * c + ch];
                else
                    channel_moments(&r, xc, &m, &v);
                double unbiased = n > 1 ? v * (double)n / (double)(n - 1) : v;
                rmean[ch] = (float)((1 - mom) * rmean[ch] + mom * m);
                rvar[ch] = (float)((1 - mom) * rvar[ch] + mom * unbiased);
            }
            double inv = 1.0 / sqrt(v + eps), g = gamma ? gamma[ch] : 1, b = beta ? beta[ch] : 0;
            for (int64_t i = 0; i < r.n; i++) {
                const float *restrict xr = xc + i * r.stride;
                float *restrict yr = y + ch * r.hw + i * r.stride;
                _Pragma("omp simd")
                for (int64_t j = 0; j < r.hw; j++) yr[j] = (float)(g * ((double)xr[j] - m) * inv + b);
            }
            amean[ch] = (float)m;
            ainv[ch] = (float)inv;
        });
}

/* With xh = (x - mean) * inv and g = dy * gamma, per channel over its M values:
 * dgamma (C) += sum dy * xh, dbeta (C) += sum dy;
 * dx (N,C,H,W) += inv * (g - mean(g) - xh * mean(g * xh)) after batch statistics,
 *                 inv * g after running statistics (constants then). */
void cn_cpu_batchnorm_backward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    channel_runs r = runs_of(io);
    int64_t c = nd->out.c, count = r.n * r.hw;
    const float *x = io->x[0], *dy = io->dy, *gamma = nd->a.affine ? io->w : NULL, *amean = aux_mean(io->aux),
                *ainv = amean + c;
    float *dx = io->dx[0], *dgamma = gamma ? io->dw : NULL, *dbeta = dgamma ? dgamma + c : NULL;
    int batch_stats = *(const int64_t *)io->aux != 0, fresh = io->dx_fresh & 1;
    CN_PAR_FOR(count * c >= CPU_PAR_MIN, schedule(static),
        for (int64_t ch = 0; ch < c; ch++) {
            const float *xc = x + ch * r.hw, *dyc = dy + ch * r.hw;
            double m = amean[ch], inv = ainv[ch];
            cn_sum8 s_dy = cn_sum8_zero(), s_dyxc = cn_sum8_zero(); /* sum dy, sum dy * (x - mean) */
            for (int64_t i = 0; i < r.n; i++) cn_sum8_add_pair(&s_dy, &s_dyxc, dyc + i * r.stride, xc + i * r.stride, m, r.hw);
            double sdy = cn_sum8_total(&s_dy), sdyxh = cn_sum8_total(&s_dyxc) * inv;
            if (dgamma) dgamma[ch] += (float)sdyxh, dbeta[ch] += (float)sdy;
            if (!dx) continue;
            double wdy = sdy, wdyxh = sdyxh, wcount = (double)count; /* the whole batch's sums (a shard's call) */
            if (io->whole) wdy = io->whole[ch], wdyxh = io->whole[c + ch], wcount = io->whole[2 * c + ch];
            double g = gamma ? gamma[ch] : 1, mg = batch_stats ? g * wdy / wcount : 0,
                   mgxh = batch_stats ? g * wdyxh / wcount : 0;
            for (int64_t i = 0; i < r.n; i++) {
                const float *restrict xr = xc + i * r.stride, *restrict dyr = dyc + i * r.stride;
                float *restrict dxr = dx + ch * r.hw + i * r.stride;
                if (fresh) /* 0 + the gradient: the bits of adding to zeros, without zeroing and reading dx */
                    _Pragma("omp simd")
                    for (int64_t j = 0; j < r.hw; j++) {
                        double xh = ((double)xr[j] - m) * inv;
                        dxr[j] = 0.0f + (float)(inv * (g * dyr[j] - mg - xh * mgxh));
                    }
                else
                    _Pragma("omp simd")
                    for (int64_t j = 0; j < r.hw; j++) {
                        double xh = ((double)xr[j] - m) * inv;
                        dxr[j] += (float)(inv * (g * dyr[j] - mg - xh * mgxh));
                    }
            }
        });
}

/* One shard's statistics per channel (cn_op.stats' layout: three runs of C): forward the count,
 * mean and sum of squared deviations of x; backward the sums of dy and dy * xh (xh from aux's
 * whole-batch mean and inv) and the count; the lanes of channel_moments, threaded over channels. */
void cn_cpu_batchnorm_stats(const cn_op_io *io, int backward, double *out)
{
    channel_runs r = runs_of(io);
    int64_t c = io->n->out.c, count = r.n * r.hw;
    const float *x = io->x[0], *dy = io->dy, *amean = aux_mean(io->aux), *ainv = amean + c;
    CN_PAR_FOR(count * c >= CPU_PAR_MIN, schedule(static),
        for (int64_t ch = 0; ch < c; ch++) {
            const float *xc = x + ch * r.hw;
            double a, b;
            if (!backward) {
                channel_moments(&r, xc, &a, &b);
                b *= (double)count;
            } else {
                const float *dyc = dy + ch * r.hw;
                cn_sum8 s_dy = cn_sum8_zero(), s_dyxc = cn_sum8_zero();
                for (int64_t i = 0; i < r.n; i++)
                    cn_sum8_add_pair(&s_dy, &s_dyxc, dyc + i * r.stride, xc + i * r.stride, amean[ch], r.hw);
                a = cn_sum8_total(&s_dy), b = cn_sum8_total(&s_dyxc) * ainv[ch];
            }
            out[ch] = a, out[c + ch] = b, out[2 * c + ch] = (double)count;
        });
}
