/* batchnorm.c — batch normalisation on the CPU, threaded over blocks of channels. A channel's
 * sums run in lanes (core/sum_impl.h) over its samples in order, so they do not depend on the
 * thread count or the blocks and differ from the reference's single running sum by rounding in
 * double only; the elementwise work is the reference's double arithmetic, vectorised. A block's
 * passes walk memory in order, sample by sample (its channels' runs side by side, one stretch for
 * the prefetcher) rather than a channel's runs a map apart: the sums of a block of 4x4 to 32x32
 * maps fit L2 for the passes after the first. Running statistics and aux as src/ops/batchnorm.c.
 * Covered by tests/test_cpu_ops.c and the op table (tests/test_backend.c). */
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

#define BLOCK_FLOATS 4096 /* a block's channels' runs of one sample: about this many values */
#define BLOCK_MAX 64      /* channels a block at most (its sums live on the stack) */

/* channels per block for C channels of hw values: about BLOCK_FLOATS values a sample, and 8
 * blocks or more where C allows (threads take blocks) */
static int64_t block_channels(int64_t c, int64_t hw)
{
    int64_t b = (BLOCK_FLOATS + hw - 1) / hw, eighth = c / 8;
    if (b > BLOCK_MAX) b = BLOCK_MAX;
    if (eighth >= 1 && b > eighth) b = eighth;
    return b < 1 ? 1 : b;
}

/* mean and biased variance (two passes) of channels c0 .. c0 + k, x the layer's input (cloned for
 * AVX-512 itself: called, not inlined, it ran the baseline's two doubles a vector, and took twice the
 * time of the pass that normalises) */
CPU_CLONES static void block_moments(const channel_runs *r, const float *x, int64_t c0, int64_t k, double *mean, double *var)
{
    double count = r->n * r->hw > 0 ? (double)(r->n * r->hw) : 1.0;
    cn_sum8 s[BLOCK_MAX];
    for (int64_t j = 0; j < k; j++) s[j] = cn_sum8_zero();
    for (int64_t i = 0; i < r->n; i++)
        for (int64_t j = 0; j < k; j++) cn_sum8_add(&s[j], x + i * r->stride + (c0 + j) * r->hw, r->hw);
    for (int64_t j = 0; j < k; j++) mean[j] = cn_sum8_total(&s[j]) / count, s[j] = cn_sum8_zero();
    for (int64_t i = 0; i < r->n; i++)
        for (int64_t j = 0; j < k; j++) {
            const float *xr = x + i * r->stride + (c0 + j) * r->hw;
            cn_sum8_add_dot(&s[j], xr, mean[j], xr, mean[j], r->hw);
        }
    for (int64_t j = 0; j < k; j++) var[j] = cn_sum8_total(&s[j]) / count;
}

/* y (N,C,H,W) <- gamma * (x - mean) * inv + beta per channel, inv = 1/sqrt(var + eps), with batch
 * statistics (training: the running ones move by momentum as in the reference) or the running
 * statistics (evaluation); w = gamma (C), beta (C) (affine=no: none, gamma 1, beta 0);
 * buf = running mean (C), running var (C). A shard's call takes io->whole's statistics. */
CPU_CLONES static void forward_into(const cn_op_io *io, int relu)
{
    const cn_node *nd = io->n;
    channel_runs r = runs_of(io);
    int64_t c = nd->out.c, count = r.n * r.hw, cb = block_channels(c, r.hw), blocks = (c + cb - 1) / cb;
    const float *x = io->x[0], *gamma = nd->a.affine ? io->w : NULL, *beta = gamma ? gamma + c : NULL;
    float *y = io->y, *rmean = io->buf, *rvar = rmean + c, *amean = aux_mean(io->aux), *ainv = amean + c;
    double mom = nd->a.momentum, eps = nd->a.eps;
    int training = io->training != 0;
    *(int64_t *)io->aux = training;
    CN_PAR_FOR(count * c >= CPU_PAR_MIN, schedule(static),
        for (int64_t bk = 0; bk < blocks; bk++) {
            int64_t c0 = bk * cb, k = c - c0 < cb ? c - c0 : cb;
            double m[BLOCK_MAX], v[BLOCK_MAX], a[BLOCK_MAX], b[BLOCK_MAX];
            if (training && !io->whole) block_moments(&r, x, c0, k, m, v);
            for (int64_t j = 0; j < k; j++) {
                int64_t ch = c0 + j;
                if (!training) {
                    m[j] = rmean[ch], v[j] = rvar[ch];
                } else {
                    int64_t n = count;
                    if (io->whole) /* one shard of a batch: the whole batch's moments (cn_op.stats_merge) */
                        m[j] = io->whole[ch], v[j] = io->whole[c + ch], n = (int64_t)io->whole[2 * c + ch];
                    double unbiased = n > 1 ? v[j] * (double)n / (double)(n - 1) : v[j];
                    rmean[ch] = (float)((1 - mom) * rmean[ch] + mom * m[j]);
                    rvar[ch] = (float)((1 - mom) * rvar[ch] + mom * unbiased);
                }
                double inv = 1.0 / sqrt(v[j] + eps);
                amean[ch] = (float)m[j];
                ainv[ch] = (float)inv;
                v[j] = inv, a[j] = gamma ? gamma[ch] : 1, b[j] = beta ? beta[ch] : 0; /* v: inv from here */
            }
            for (int64_t i = 0; i < r.n; i++)
                for (int64_t j = 0; j < k; j++) {
                    const float *restrict xr = x + i * r.stride + (c0 + j) * r.hw;
                    float *restrict yr = y + i * r.stride + (c0 + j) * r.hw;
                    double g = a[j], mj = m[j], inv = v[j], bj = b[j];
                    if (relu && io->relu6)
                        _Pragma("omp simd")
                        for (int64_t t = 0; t < r.hw; t++) yr[t] = cpu_relu6((float)(g * ((double)xr[t] - mj) * inv + bj));
                    else if (relu)
                        _Pragma("omp simd")
                        for (int64_t t = 0; t < r.hw; t++) yr[t] = cpu_relu((float)(g * ((double)xr[t] - mj) * inv + bj));
                    else
                        _Pragma("omp simd")
                        for (int64_t t = 0; t < r.hw; t++) yr[t] = (float)(g * ((double)xr[t] - mj) * inv + bj);
                }
        });
}

void cn_cpu_batchnorm_forward(const cn_op_io *io) { forward_into(io, 0); }

/* relu(batch norm) or relu6(batch norm) (io->relu6) in one pass (cn_kernels.forward_relu_out):
 * y is the relu's output, the two layers' bits */
void cn_cpu_batchnorm_forward_relu(const cn_op_io *io) { forward_into(io, 1); }

/* With xh = (x - mean) * inv and g = dy * gamma, per channel over its M values:
 * dgamma (C) += sum dy * xh, dbeta (C) += sum dy;
 * dx (N,C,H,W) += inv * (g - mean(g) - xh * mean(g * xh)) after batch statistics,
 *                 inv * g after running statistics (constants then).
 * (A relu fused into the forward keeps its own backward: one pass more, but each of the batch
 * norm's two passes then reads two maps, not three; on maps larger than the caches, MobileNetV2's
 * 112x112x96, the two apart took 32-38 ms a step against 53-57 fused.) */
CPU_CLONES static void backward_clones(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    channel_runs r = runs_of(io);
    int64_t c = nd->out.c, count = r.n * r.hw, cb = block_channels(c, r.hw), blocks = (c + cb - 1) / cb;
    const float *x = io->x[0], *dy = io->dy, *gamma = nd->a.affine ? io->w : NULL, *amean = aux_mean(io->aux),
                *ainv = amean + c;
    float *dx = io->dx[0], *dgamma = gamma ? io->dw : NULL, *dbeta = dgamma ? dgamma + c : NULL;
    int batch_stats = *(const int64_t *)io->aux != 0, fresh = io->dx_fresh & 1;
    CN_PAR_FOR(count * c >= CPU_PAR_MIN, schedule(static),
        for (int64_t bk = 0; bk < blocks; bk++) {
            int64_t c0 = bk * cb, k = c - c0 < cb ? c - c0 : cb;
            cn_sum8 s_dy[BLOCK_MAX], s_dyxc[BLOCK_MAX]; /* sum dy, sum dy * (x - mean) */
            double g[BLOCK_MAX], mg[BLOCK_MAX], mgxh[BLOCK_MAX];
            for (int64_t j = 0; j < k; j++) s_dy[j] = cn_sum8_zero(), s_dyxc[j] = cn_sum8_zero();
            for (int64_t i = 0; i < r.n; i++)
                for (int64_t j = 0; j < k; j++) {
                    int64_t at = i * r.stride + (c0 + j) * r.hw;
                    cn_sum8_add_pair(&s_dy[j], &s_dyxc[j], dy + at, x + at, amean[c0 + j], r.hw);
                }
            for (int64_t j = 0; j < k; j++) {
                int64_t ch = c0 + j;
                double sdy = cn_sum8_total(&s_dy[j]), sdyxh = cn_sum8_total(&s_dyxc[j]) * ainv[ch];
                if (dgamma) dgamma[ch] += (float)sdyxh, dbeta[ch] += (float)sdy;
                double wdy = sdy, wdyxh = sdyxh, wcount = (double)count; /* the whole batch's sums (a shard's call) */
                if (io->whole) wdy = io->whole[ch], wdyxh = io->whole[c + ch], wcount = io->whole[2 * c + ch];
                g[j] = gamma ? gamma[ch] : 1;
                mg[j] = batch_stats ? g[j] * wdy / wcount : 0, mgxh[j] = batch_stats ? g[j] * wdyxh / wcount : 0;
            }
            for (int64_t i = 0; dx && i < r.n; i++)
                for (int64_t j = 0; j < k; j++) {
                    int64_t at = i * r.stride + (c0 + j) * r.hw;
                    const float *restrict xr = x + at, *restrict dyr = dy + at;
                    float *restrict dxr = dx + at;
                    double m = amean[c0 + j], inv = ainv[c0 + j], gj = g[j], mgj = mg[j], mgxhj = mgxh[j];
                    if (fresh) /* 0 + the gradient: the bits of adding to zeros, without zeroing and reading dx */
                        _Pragma("omp simd")
                        for (int64_t t = 0; t < r.hw; t++) {
                            double xh = ((double)xr[t] - m) * inv;
                            dxr[t] = 0.0f + (float)(inv * (gj * dyr[t] - mgj - xh * mgxhj));
                        }
                    else
                        _Pragma("omp simd")
                        for (int64_t t = 0; t < r.hw; t++) {
                            double xh = ((double)xr[t] - m) * inv;
                            dxr[t] += (float)(inv * (gj * dyr[t] - mgj - xh * mgxhj));
                        }
                }
        });
}

void cn_cpu_batchnorm_backward(const cn_op_io *io) { backward_clones(io); }

/* One shard's statistics per channel (cn_op.stats' layout: three runs of C): forward the count,
 * mean and sum of squared deviations of x; backward the sums of dy and dy * xh (xh from aux's
 * whole-batch mean and inv) and the count; the lanes and blocks of the passes above. */
void cn_cpu_batchnorm_stats(const cn_op_io *io, int backward, double *out)
{
    channel_runs r = runs_of(io);
    int64_t c = io->n->out.c, count = r.n * r.hw, cb = block_channels(c, r.hw), blocks = (c + cb - 1) / cb;
    const float *x = io->x[0], *dy = io->dy, *amean = aux_mean(io->aux), *ainv = amean + c;
    CN_PAR_FOR(count * c >= CPU_PAR_MIN, schedule(static),
        for (int64_t bk = 0; bk < blocks; bk++) {
            int64_t c0 = bk * cb, k = c - c0 < cb ? c - c0 : cb;
            double a[BLOCK_MAX], b[BLOCK_MAX];
            if (!backward) {
                block_moments(&r, x, c0, k, a, b);
                for (int64_t j = 0; j < k; j++) b[j] *= (double)count;
            } else {
                cn_sum8 s_dy[BLOCK_MAX], s_dyxc[BLOCK_MAX];
                for (int64_t j = 0; j < k; j++) s_dy[j] = cn_sum8_zero(), s_dyxc[j] = cn_sum8_zero();
                for (int64_t i = 0; i < r.n; i++)
                    for (int64_t j = 0; j < k; j++) {
                        int64_t at = i * r.stride + (c0 + j) * r.hw;
                        cn_sum8_add_pair(&s_dy[j], &s_dyxc[j], dy + at, x + at, amean[c0 + j], r.hw);
                    }
                for (int64_t j = 0; j < k; j++) a[j] = cn_sum8_total(&s_dy[j]), b[j] = cn_sum8_total(&s_dyxc[j]) * ainv[c0 + j];
            }
            for (int64_t j = 0; j < k; j++) out[c0 + j] = a[j], out[c + c0 + j] = b[j], out[2 * c + c0 + j] = (double)count;
        });
}
