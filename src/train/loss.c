/* loss.c — loss functions with their gradients, and the L1/L2 terms. Reductions follow
 * PyTorch: 'mean' averages the elementwise losses (MSE, MAE, BCE, hinge) over every value and
 * the per-sample losses (cross-entropy, Dice) over the samples; 'sum' adds them up. Large
 * batches spread their rows over threads, with the same sum on any number of them.
 * Covered by tests/test_seeds.c (the worksheets), tests/test_calc_ref.c and tests/test_loss.c
 * (gradients by central differences). */
#include <math.h>

#include "train_impl.h"

const char *cn_loss_name(cn_loss_kind kind)
{
    static const char *names[] = { "mse", "mae", "ce", "ce-logits", "bce", "bce-logits", "hinge", "dice" };
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

static int per_sample_kind(cn_loss_kind k) { return k == CN_LOSS_CE || k == CN_LOSS_CE_LOGITS || k == CN_LOSS_DICE; }

/* The largest logit m and s = sum_j e^(z_j - m), which lies in [1, n]. Then
 *   log p_j = (z_j - m) - log s   and   p_j = e^(z_j - m) / s.
 * Never form lse = m + log s and subtract it from z_j: at |m| = 1e17 the sum m + log s rounds
 * to m, log s is lost, and three equal logits would give a loss of 0 instead of ln 3. */
static double shifted_exp_sum(const float *z, int64_t n, double *mx)
{
    double m = z[0], s = 0.0;
    for (int64_t j = 1; j < n; j++) m = z[j] > m ? z[j] : m;
    for (int64_t j = 0; j < n; j++) s += exp((double)z[j] - m);
    *mx = m;
    return s;
}

/* log p clamped at -100, as PyTorch's BCE does, so a saturated sigmoid gives a large finite loss */
static double clamped_log(double p) { return p > 0 ? fmax(log(p), -100.0) : -100.0; }

/* Loss of one sample (cols values) summed over its values for elementwise kinds; gradient
 * d(that sum)/dp times `scale` into g when g is not NULL. Returns the column of the first value
 * the loss is not defined for (row_error says why), else -1. No context is touched, so rows can
 * run on several threads. */
static int64_t row_loss(cn_loss_kind kind, const float *t, const float *p, int64_t cols, double smoothing,
                        double scale, double *out, float *g)
{
    double acc = 0.0;
    switch (kind) {
    case CN_LOSS_MSE: /* (t - p)^2, d/dp = 2 (p - t) */
        for (int64_t j = 0; j < cols; j++) {
            double d = (double)p[j] - t[j];
            acc += d * d;
            if (g) g[j] = (float)(2.0 * d * scale);
        }
        break;
    case CN_LOSS_MAE: /* |t - p|, d/dp = sign(p - t) */
        for (int64_t j = 0; j < cols; j++) {
            double d = (double)p[j] - t[j];
            acc += fabs(d);
            if (g) g[j] = (float)((d > 0) - (d < 0)) * (float)scale;
        }
        break;
    case CN_LOSS_CE: /* -sum_j t_j log p_j, d/dp_j = -t_j / p_j; a probability 0 as BCE treats it:
                      * log clamped at -100, the division at 1e-12 */
        for (int64_t j = 0; j < cols; j++) {
            if (g) g[j] = 0;
            if (!(p[j] >= 0.0f && p[j] <= 1.0f)) return j;
            if (t[j] == 0.0f) continue;
            acc -= (double)t[j] * clamped_log((double)p[j]);
            if (g) g[j] = (float)(-(double)t[j] / fmax((double)p[j], 1e-12) * scale);
        }
        break;
    case CN_LOSS_CE_LOGITS: { /* t' = (1-s) t + s/C; -sum_j t'_j log p_j; d/dz_j = p_j sum t' - t'_j */
        double mx, sum = shifted_exp_sum(p, cols, &mx), log_sum = log(sum), tsum = 0, keep = 1.0 - smoothing,
                   spread = smoothing / (double)cols;
        for (int64_t j = 0; j < cols; j++) tsum += keep * t[j] + spread;
        for (int64_t j = 0; j < cols; j++) acc -= (keep * t[j] + spread) * (((double)p[j] - mx) - log_sum);
        for (int64_t j = 0; g && j < cols; j++)
            g[j] = (float)((exp((double)p[j] - mx) / sum * tsum - (keep * t[j] + spread)) * scale);
        break;
    }
    case CN_LOSS_BCE: /* -[t log p + (1-t) log(1-p)], d/dp = (p - t) / (p (1 - p)) */
        for (int64_t j = 0; j < cols; j++) {
            double tj = t[j], pj = p[j];
            if (!(pj >= 0.0 && pj <= 1.0)) return j;
            acc -= tj * clamped_log(pj) + (1.0 - tj) * clamped_log(1.0 - pj);
            if (g) g[j] = (float)((pj - tj) / fmax(pj * (1.0 - pj), 1e-12) * scale);
        }
        break;
    case CN_LOSS_BCE_LOGITS: /* max(z,0) - z t + log(1 + e^-|z|), d/dz = sigmoid(z) - t */
        for (int64_t j = 0; j < cols; j++) {
            double z = p[j];
            acc += (z > 0 ? z : 0) - z * t[j] + log1p(exp(-fabs(z)));
            if (g) g[j] = (float)((1.0 / (1.0 + exp(-z)) - t[j]) * scale);
        }
        break;
    case CN_LOSS_HINGE: /* max(0, 1 - t p), t in {-1, +1}; d/dp = -t where the margin is short */
        for (int64_t j = 0; j < cols; j++) {
            if (t[j] != 1.0f && t[j] != -1.0f) return j;
            double m = 1.0 - (double)t[j] * p[j];
            acc += m > 0 ? m : 0;
            if (g) g[j] = m > 0 ? (float)(-t[j] * scale) : 0.0f;
        }
        break;
    case CN_LOSS_DICE: { /* 1 - 2I/S with I = sum t p, S = sum t + sum p; d/dp_j = -2 (t_j S - I) / S^2 */
        double inter = 0.0, s = 0.0;
        for (int64_t j = 0; j < cols; j++) inter += (double)t[j] * p[j], s += (double)t[j] + p[j];
        acc = s > 0 ? 1.0 - 2.0 * inter / s : 0.0; /* two empty masks agree fully */
        for (int64_t j = 0; g && j < cols; j++) g[j] = s > 0 ? (float)(-2.0 * (t[j] * s - inter) / (s * s) * scale) : 0.0f;
        break;
    }
    }
    *out = acc;
    return -1;
}

/* why row_loss refused value (row, col) */
static cn_status row_error(cn_ctx *ctx, cn_loss_kind kind, const float *t, const float *p, int64_t row, int64_t col)
{
    long long r = (long long)row + 1, c = (long long)col + 1;
    switch (kind) {
    case CN_LOSS_CE:
        return cn_fail(ctx, CN_E_ARG, "ce: sample %lld, class %lld: probability %g is outside [0, 1]", r, c, (double)p[col]);
    case CN_LOSS_BCE:
        return cn_fail(ctx, CN_E_ARG, "bce: sample %lld, output %lld: probability %g is outside [0, 1]", r, c, (double)p[col]);
    default: return cn_fail(ctx, CN_E_ARG, "hinge: sample %lld, output %lld: target %g must be -1 or +1", r, c, (double)t[col]);
    }
}

/* Rows go in LOSS_BLOCKS blocks of consecutive rows, each summed in order by one thread, then the
 * blocks in order: the sum depends on the row count alone, never on the thread count. */
#define LOSS_BLOCKS 64
#define LOSS_PAR_MIN 16384 /* values below which the rows stay on one thread */

/* the loss and gradient of rows, divided by count (1: their sum) */
static cn_status loss_grad_over(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                                int64_t cols, double count, double label_smoothing, double *loss, float *dpred);

cn_status cn_loss_grad(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                       int64_t cols, cn_reduction reduction, double label_smoothing, double *loss, float *dpred)
{
    /* mean: per-sample losses over the samples, elementwise losses over every value */
    double count = reduction == CN_REDUCE_SUM ? 1.0 : per_sample_kind(kind) ? (double)rows : (double)rows * (double)cols;
    return loss_grad_over(ctx, kind, target, pred, rows, cols, count, label_smoothing, loss, dpred);
}

cn_status cn_loss_grad_part(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                            int64_t cols, int64_t samples, double label_smoothing, double *loss, float *dpred)
{
    double count = per_sample_kind(kind) ? (double)samples : (double)samples * (double)cols;
    return loss_grad_over(ctx, kind, target, pred, rows, cols, count, label_smoothing, loss, dpred);
}

static cn_status loss_grad_over(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                                int64_t cols, double count, double label_smoothing, double *loss, float *dpred)
{
    *loss = 0.0;
    if (rows < 1 || cols < 1) return cn_fail(ctx, CN_E_ARG, "%s: no values", cn_loss_name(kind));
    if (!(label_smoothing >= 0.0 && label_smoothing < 1.0) || (label_smoothing > 0 && kind != CN_LOSS_CE_LOGITS))
        return cn_fail(ctx, CN_E_ARG, "label smoothing must lie in [0, 1) and applies to cross-entropy from logits");
    if ((unsigned)kind > CN_LOSS_DICE) return cn_fail(ctx, CN_E_ARG, "unknown loss %d", (int)kind);
    double part[LOSS_BLOCKS];
    int64_t bad_row[LOSS_BLOCKS], bad_col[LOSS_BLOCKS], per = (rows + LOSS_BLOCKS - 1) / LOSS_BLOCKS;
    CN_PAR_FOR(rows * cols >= LOSS_PAR_MIN, schedule(static),
        for (int b = 0; b < LOSS_BLOCKS; b++) {
            part[b] = 0.0, bad_row[b] = -1;
            for (int64_t r = b * per; r < (b + 1) * per && r < rows; r++) {
                double v = 0.0;
                int64_t col = row_loss(kind, target + r * cols, pred + r * cols, cols, label_smoothing, 1.0 / count, &v,
                                       dpred ? dpred + r * cols : NULL);
                if (col >= 0) {
                    bad_row[b] = r, bad_col[b] = col;
                    break;
                }
                part[b] += v;
            }
        });
    double sum = 0.0;
    for (int b = 0; b < LOSS_BLOCKS; b++) {
        if (bad_row[b] >= 0) {
            int64_t r = bad_row[b];
            return row_error(ctx, kind, target + r * cols, pred + r * cols, r, bad_col[b]);
        }
        sum += part[b];
    }
    *loss = sum / count;
    return CN_OK;
}

cn_status cn_loss(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                  int64_t cols, double *loss, double *per_sample)
{
    *loss = 0.0;
    if (rows < 1 || cols < 1) return cn_fail(ctx, CN_E_ARG, "%s: no values", cn_loss_name(kind));
    if ((unsigned)kind > CN_LOSS_DICE) return cn_fail(ctx, CN_E_ARG, "unknown loss %d", (int)kind);
    /* the worksheets: each sample's loss (elementwise kinds averaged over its values), then the mean */
    double sum = 0.0, per_value = per_sample_kind(kind) ? 1.0 : (double)cols;
    for (int64_t r = 0; r < rows; r++) {
        double v = 0.0;
        int64_t col = row_loss(kind, target + r * cols, pred + r * cols, cols, 0.0, 1.0, &v, NULL);
        if (col >= 0) return row_error(ctx, kind, target + r * cols, pred + r * cols, r, col);
        if (per_sample) per_sample[r] = v / per_value;
        sum += v / per_value;
    }
    *loss = sum / (double)rows;
    return CN_OK;
}

cn_status cn_dice_coefficient(cn_ctx *ctx, double intersection, double a, double b, double *out)
{
    *out = 0.0;
    if (!(intersection >= 0) || !(a >= 0) || !(b >= 0) || intersection > a || intersection > b)
        return cn_fail(ctx, CN_E_ARG, "dice: need 0 <= intersection <= min(|A|, |B|), got %g, %g, %g", intersection, a, b);
    *out = a + b > 0 ? 2.0 * intersection / (a + b) : 1.0;
    return CN_OK;
}

double cn_reg_l1(const float *w, int64_t n, double lambda)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)w[i]);
    return lambda * s;
}

double cn_reg_l2(const float *w, int64_t n, double lambda)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)w[i] * w[i];
    return lambda * s;
}
