/* batchnorm.c — batch normalisation per channel: gamma and beta are trained, the running
 * mean and variance are kept but not trained (PyTorch's BatchNorm2d). The reference kernels,
 * forward beside backward, also compute `convnet calc batchnorm` (cn_batchnorm_1d).
 * Covered by tests/test_seeds.c (seed 001 worksheet 6), tests/test_calc_ref.c (PyTorch values)
 * and tests/test_gradcheck.c (training and evaluation). */
#ifndef CN_REAL
#include <math.h>

#include "aux_impl.h"
#include "op_impl.h"

static const cn_key keys[] = {
    { .name = "eps", .type = CN_KT_FLOAT, .offset = offsetof(cn_attrs, eps), .flags = CN_KEY_LO_OPEN, .def = "1e-5",
      .hi = 1, .doc = "added to the variance" },
    { .name = "momentum", .type = CN_KT_FLOAT, .offset = offsetof(cn_attrs, momentum), .def = "0.1", .hi = 1,
      .doc = "weight of the new batch in the running statistics" },
    { .name = "affine", .type = CN_KT_BOOL, .offset = offsetof(cn_attrs, affine), .def = "yes", .hi = 1,
      .doc = "learn a scale gamma and a shift beta per channel (yes|no)" },
    CN_GAMMA_INIT_KEY,
    { 0 },
};

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    cn_infer_pointwise(ctx, file, n, in);
    n->trainable = n->a.affine ? 2 * n->out.c : 0; /* gamma, beta */
    n->params = n->trainable + 2 * n->out.c;       /* + running mean, running var */
    return cn_check_gamma_init(ctx, file, n);
}

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in, (void)batch;
    long long c = (long long)n->out.c;
    if (!n->a.affine) {
        cn_sb_printf(sb, "    y = (x - mean) / sqrt(var + eps), per channel (affine=no)\n");
        cn_sb_printf(sb, "    params = 2*%lld running mean/var = %lld, none trainable\n", c, 2 * c);
        return;
    }
    cn_sb_printf(sb, "    y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel\n");
    cn_sb_printf(sb, "    params = 2*%lld trainable (gamma, beta) + 2*%lld running mean/var = %lld\n", c, c, 4 * c);
    if (cn_key_given(n, "init")) cn_sb_printf(sb, "    gamma starts at %g (init=), beta at 0\n", n->a.init);
}

static int params(const cn_node *n, const cn_node *const *in, cn_param_spec *out)
{
    (void)in;
    int64_t c = n->out.c;
    int k = 0;
    if (n->a.affine) {
        out[k++] = (cn_param_spec){ .name = "weight", .rank = 1, .shape = { c }, .count = c, .trainable = 1,
                                    .init = cn_gamma_pinit(n), .value = n->a.init };
        out[k++] = (cn_param_spec){ .name = "bias", .rank = 1, .shape = { c }, .count = c, .trainable = 1, .init = CN_PINIT_ZERO };
    }
    out[k++] = (cn_param_spec){ .name = "running_mean", .rank = 1, .shape = { c }, .count = c, .init = CN_PINIT_ZERO };
    out[k++] = (cn_param_spec){ .name = "running_var", .rank = 1, .shape = { c }, .count = c, .init = CN_PINIT_ONE };
    return k;
}

/* aux: the mode, then per channel mean and 1/sqrt(var + eps) (aux_impl.h). Backward follows the
 * recorded mode, not io->training. */
static int64_t aux_bytes(const cn_node *n, const cn_node *const *in, int64_t batch, size_t real_size)
{
    (void)in, (void)batch;
    return CN_BN_AUX_HEAD + 2 * n->out.c * (int64_t)real_size;
}

#define CN_TEMPLATE_FILE "batchnorm.c"
#include "template.h"

/* One shard's statistics per channel, 3 doubles each in three runs of C: forward the count,
 * mean and sum of squared deviations of its input (two passes, as bn_moments); backward the
 * sums of dy and of dy * xh, xh from forward's aux (the whole batch's mean and inv), and the
 * count. */
static void bn_stats(const cn_op_io *io, int backward, double *out)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w, n = io->batch;
    const float *x = io->x[0], *dy = io->dy;
    const float *amean = (const float *)((const unsigned char *)io->aux + CN_BN_AUX_HEAD), *ainv = amean + c;
    for (int64_t ch = 0; ch < c; ch++) {
        double a = 0, b = 0;
        if (!backward) {
            bn_moments_f32(x, n, c, hw, ch, &a, &b);
            b *= (double)(n * hw); /* the variance back to the sum of squares, as Chan's merge wants */
        } else
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < hw; j++) {
                    int64_t k = (i * c + ch) * hw + j;
                    a += dy[k];
                    b += (double)dy[k] * ((double)x[k] - amean[ch]) * ainv[ch];
                }
        out[ch] = a, out[c + ch] = b, out[2 * c + ch] = (double)(n * hw);
    }
}

/* The whole batch's from the shards' in shard order: forward the mean, the biased variance and
 * the count (Chan, Golub and LeVeque's pairwise update of the mean and squared deviations);
 * backward the two sums and the count. */
static void bn_stats_merge(const cn_node *nd, int backward, const double *shards, int count, double *out)
{
    int64_t c = nd->out.c;
    for (int64_t ch = 0; ch < c; ch++) {
        double a = 0, b = 0, m = 0;
        for (int s = 0; s < count; s++) {
            const double *p = shards + (int64_t)s * 3 * c;
            double sa = p[ch], sb = p[c + ch], sn = p[2 * c + ch];
            if (backward) {
                a += sa, b += sb, m += sn;
                continue;
            }
            double total = m + sn, delta = sa - a;
            if (total > 0) a += delta * sn / total, b += sb + delta * delta * m * sn / total;
            m = total;
        }
        out[ch] = a, out[c + ch] = backward || m <= 0 ? b : b / m, out[2 * c + ch] = m;
    }
}

/* evaluation: gamma * (x - mean) / sqrt(var + eps) + beta = scale * x + shift */
static void bn_channel_affine(const cn_node *n, const float *w, const float *buf, double *scale, double *shift)
{
    int64_t c = n->out.c;
    for (int64_t ch = 0; ch < c; ch++) {
        double g = n->a.affine ? w[ch] : 1, b = n->a.affine ? w[c + ch] : 0;
        scale[ch] = g / sqrt((double)buf[c + ch] + n->a.eps);
        shift[ch] = b - buf[ch] * scale[ch];
    }
}

const cn_op cn_op_batchnorm = {
    .name = "batchnorm", .usage = "batchnorm [eps=1e-5] [momentum=0.1] [affine=yes|no] [init=1]",
    .help = "normalise each channel over the batch, then scale by gamma and shift by beta", .keys = keys,
    .inputs = 1, .infer = infer, .explain = explain, .params = params, .aux_bytes = aux_bytes,
    .forward = { batchnorm_forward_f32, batchnorm_forward_f64 },
    .backward = { batchnorm_backward_f32, batchnorm_backward_f64 },
    .stats_count = 3, .stats = bn_stats, .stats_merge = bn_stats_merge, .channel_affine = bn_channel_affine,
};

/* One channel of n values with batch statistics: the op's kernel on a (n, 1, 1, 1) tensor.
 * (Seed 001 divides by sigma without eps and rounds 4/sqrt(8) to 0.5: it is 1.414.) */
void cn_batchnorm_1d(const float *x, float *y, int64_t n, float gamma, float beta, float eps, float *mean, float *var)
{
    double m, v;
    bn_moments_f32(x, n, 1, 1, 0, &m, &v);
    bn_normalize_f32(x, y, n, 1, 1, 0, m, 1.0 / sqrt(v + eps), gamma, beta);
    if (mean) *mean = (float)m;
    if (var) *var = (float)v;
}

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* mean and biased variance (two passes, in double) of channel ch of x (N,C,HW) */
static void CN_FN(bn_moments)(const CN_REAL *x, int64_t n, int64_t c, int64_t hw, int64_t ch, double *mean,
                              double *var)
{
    int64_t count = n * hw > 0 ? n * hw : 1;
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < hw; j++) m += x[(i * c + ch) * hw + j];
    m /= (double)count;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < hw; j++) {
            double d = x[(i * c + ch) * hw + j] - m;
            v += d * d;
        }
    *mean = m;
    *var = v / (double)count;
}

/* channel ch of y (N,C,HW) <- gamma * (x - mean) * inv + beta, inv = 1/sqrt(var + eps) */
static void CN_FN(bn_normalize)(const CN_REAL *x, CN_REAL *y, int64_t n, int64_t c, int64_t hw, int64_t ch,
                                double mean, double inv, double gamma, double beta)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < hw; j++) {
            int64_t k = (i * c + ch) * hw + j;
            y[k] = (CN_REAL)(gamma * ((double)x[k] - mean) * inv + beta);
        }
}

/* y (N,C,H,W) <- x (N,C,H,W) normalised per channel; w = gamma (C), beta (C) (affine=no: none,
 * gamma 1, beta 0); buf = running
 * mean (C), running var (C). Training: batch statistics over N,H,W, and the running statistics
 * move by momentum m: rm = (1-m) rm + m mean, rv = (1-m) rv + m var * M/(M-1) (unbiased, as
 * PyTorch; M = N*H*W). Evaluation: the running statistics. aux keeps mode, mean, inv. */
static void CN_FN(batchnorm_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w, count = io->batch * hw;
    const CN_REAL *gamma = nd->a.affine ? io->w : NULL, *beta = gamma ? gamma + c : NULL;
    CN_REAL *rmean = io->buf, *rvar = rmean + c;
    int64_t *mode = io->aux;
    CN_REAL *amean = (CN_REAL *)((unsigned char *)io->aux + CN_BN_AUX_HEAD), *ainv = amean + c;
    double mom = nd->a.momentum;
    *mode = io->training != 0;
    for (int64_t ch = 0; ch < c; ch++) {
        double m = rmean[ch], v = rvar[ch];
        if (io->training) {
            if (io->whole) /* one shard of a batch: the whole batch's moments (bn_stats_merge) */
                m = io->whole[ch], v = io->whole[c + ch], count = (int64_t)io->whole[2 * c + ch];
            else
                CN_FN(bn_moments)(io->x[0], io->batch, c, hw, ch, &m, &v);
            double unbiased = count > 1 ? v * (double)count / (double)(count - 1) : v;
            rmean[ch] = (CN_REAL)((1 - mom) * rmean[ch] + mom * m);
            rvar[ch] = (CN_REAL)((1 - mom) * rvar[ch] + mom * unbiased);
        }
        double inv = 1.0 / sqrt(v + nd->a.eps);
        CN_FN(bn_normalize)(io->x[0], io->y, io->batch, c, hw, ch, m, inv, gamma ? gamma[ch] : 1,
                            beta ? beta[ch] : 0);
        amean[ch] = (CN_REAL)m;
        ainv[ch] = (CN_REAL)inv;
    }
}

/* With xh = (x - mean) * inv and g = dy * gamma, per channel over its M values:
 * dgamma (C) += sum dy * xh, dbeta (C) += sum dy;
 * dx (N,C,H,W) += inv * (g - mean(g) - xh * mean(g * xh)) with batch statistics,
 *                 inv * g with running statistics (constants then). */
static void CN_FN(batchnorm_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w, n = io->batch, count = n * hw;
    const CN_REAL *x = io->x[0], *dy = io->dy, *gamma = nd->a.affine ? io->w : NULL;
    CN_REAL *dx = io->dx[0], *dgamma = gamma ? io->dw : NULL, *dbeta = dgamma ? dgamma + c : NULL;
    int batch_stats = *(const int64_t *)io->aux != 0;
    const CN_REAL *amean = (const CN_REAL *)((const unsigned char *)io->aux + CN_BN_AUX_HEAD), *ainv = amean + c;
    for (int64_t ch = 0; ch < c; ch++) {
        double m = amean[ch], inv = ainv[ch], sdy = 0, sdyxh = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                int64_t k = (i * c + ch) * hw + j;
                sdy += dy[k];
                sdyxh += (double)dy[k] * ((double)x[k] - m) * inv;
            }
        if (dgamma) dgamma[ch] += (CN_REAL)sdyxh, dbeta[ch] += (CN_REAL)sdy;
        if (!dx) continue;
        double wdy = sdy, wdyxh = sdyxh, wcount = (double)count; /* the whole batch's sums (a shard's call) */
        if (io->whole) wdy = io->whole[ch], wdyxh = io->whole[c + ch], wcount = io->whole[2 * c + ch];
        double g = gamma ? gamma[ch] : 1, mg = batch_stats ? g * wdy / wcount : 0,
               mgxh = batch_stats ? g * wdyxh / wcount : 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                int64_t k = (i * c + ch) * hw + j;
                double xh = ((double)x[k] - m) * inv;
                dx[k] += (CN_REAL)(inv * (g * dy[k] - mg - xh * mgxh));
            }
    }
}

#endif
