/* loss.c — loss functions with their gradients, and the L1/L2 terms. Reductions follow
 * PyTorch: 'mean' averages the elementwise losses (MSE, MAE, BCE, hinge) over every value and
 * the per-sample losses (cross-entropy, Dice) over the samples; 'sum' adds them up.
 * Covered by tests/test_seeds.c (the worksheets), tests/test_calc_ref.c and tests/test_loss.c
 * (gradients by central differences). */
#include <math.h>

#include "../core/core_impl.h"

const char *cn_loss_name(cn_loss_kind kind)
{
    static const char *names[] = { "mse", "mae", "ce", "ce-logits", "bce", "bce-logits", "hinge", "dice" };
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

static int per_sample_kind(cn_loss_kind k) { return k == CN_LOSS_CE || k == CN_LOSS_CE_LOGITS || k == CN_LOSS_DICE; }

/* log(sum_j e^z_j), stable */
static double log_sum_exp(const float *z, int64_t n)
{
    double mx = z[0], s = 0.0;
    for (int64_t j = 1; j < n; j++) mx = z[j] > mx ? z[j] : mx;
    for (int64_t j = 0; j < n; j++) s += exp(z[j] - mx);
    return mx + log(s);
}

/* log p clamped at -100, as PyTorch's BCE does, so a saturated sigmoid gives a large finite loss */
static double clamped_log(double p) { return p > 0 ? fmax(log(p), -100.0) : -100.0; }

/* Loss of one sample (cols values) summed over its values for elementwise kinds; gradient
 * d(that sum)/dp times `scale` into g when g is not NULL. */
static cn_status sample_loss(cn_ctx *ctx, cn_loss_kind kind, const float *t, const float *p, int64_t cols,
                             int64_t row, double smoothing, double scale, double *out, float *g)
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
    case CN_LOSS_CE: /* -sum_j t_j log p_j, d/dp_j = -t_j / p_j */
        for (int64_t j = 0; j < cols; j++) {
            if (g) g[j] = 0;
            if (t[j] == 0.0f) continue;
            if (!(p[j] > 0.0f))
                return cn_fail(ctx, CN_E_ARG, "ce: sample %lld, class %lld: probability %g has no logarithm",
                               (long long)row + 1, (long long)j + 1, (double)p[j]);
            acc -= (double)t[j] * log((double)p[j]);
            if (g) g[j] = (float)(-(double)t[j] / p[j] * scale);
        }
        break;
    case CN_LOSS_CE_LOGITS: { /* t' = (1-s) t + s/C; -sum_j t'_j (z_j - lse); d/dz_j = softmax_j sum t' - t'_j */
        double lse = log_sum_exp(p, cols), tsum = 0;
        for (int64_t j = 0; j < cols; j++) tsum += (1.0 - smoothing) * t[j] + smoothing / (double)cols;
        for (int64_t j = 0; j < cols; j++) {
            double tj = (1.0 - smoothing) * t[j] + smoothing / (double)cols;
            acc -= tj * ((double)p[j] - lse);
            if (g) g[j] = (float)((exp((double)p[j] - lse) * tsum - tj) * scale);
        }
        break;
    }
    case CN_LOSS_BCE: /* -[t log p + (1-t) log(1-p)], d/dp = (p - t) / (p (1 - p)) */
        for (int64_t j = 0; j < cols; j++) {
            double tj = t[j], pj = p[j];
            if (!(pj >= 0.0 && pj <= 1.0))
                return cn_fail(ctx, CN_E_ARG, "bce: sample %lld, output %lld: probability %g is outside [0, 1]",
                               (long long)row + 1, (long long)j + 1, pj);
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
            if (t[j] != 1.0f && t[j] != -1.0f)
                return cn_fail(ctx, CN_E_ARG, "hinge: sample %lld, output %lld: target %g must be -1 or +1",
                               (long long)row + 1, (long long)j + 1, (double)t[j]);
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
    default: return cn_fail(ctx, CN_E_ARG, "unknown loss %d", (int)kind);
    }
    *out = acc;
    return CN_OK;
}

cn_status cn_loss_grad(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                       int64_t cols, cn_reduction reduction, double label_smoothing, double *loss, float *dpred)
{
    *loss = 0.0;
    if (rows < 1 || cols < 1) return cn_fail(ctx, CN_E_ARG, "%s: no values", cn_loss_name(kind));
    if (!(label_smoothing >= 0.0 && label_smoothing < 1.0) || (label_smoothing > 0 && kind != CN_LOSS_CE_LOGITS))
        return cn_fail(ctx, CN_E_ARG, "label smoothing must lie in [0, 1) and applies to cross-entropy from logits");
    /* mean: per-sample losses over the samples, elementwise losses over every value */
    double count = reduction == CN_REDUCE_SUM ? 1.0 : per_sample_kind(kind) ? (double)rows : (double)rows * (double)cols;
    double sum = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        double v = 0.0;
        cn_status st = sample_loss(ctx, kind, target + r * cols, pred + r * cols, cols, r, label_smoothing,
                                   1.0 / count, &v, dpred ? dpred + r * cols : NULL);
        if (st) return st;
        sum += v;
    }
    *loss = sum / count;
    return CN_OK;
}

cn_status cn_loss(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                  int64_t cols, double *loss, double *per_sample)
{
    *loss = 0.0;
    if (rows < 1 || cols < 1) return cn_fail(ctx, CN_E_ARG, "%s: no values", cn_loss_name(kind));
    /* the worksheets: each sample's loss (elementwise kinds averaged over its values), then the mean */
    double sum = 0.0, per_value = per_sample_kind(kind) ? 1.0 : (double)cols;
    for (int64_t r = 0; r < rows; r++) {
        double v = 0.0;
        cn_status st = sample_loss(ctx, kind, target + r * cols, pred + r * cols, cols, r, 0.0, 1.0, &v, NULL);
        if (st) return st;
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
