/* loss.c — loss functions and L1/L2 terms, the forward values (the backward passes join in
 * the training engine). Each is averaged over samples; per-sample values optional.
 * Covered by tests/test_calc.c (the worksheets of seed 000) and tests/test_loss.c. */
#include <math.h>

#include "../core/core_impl.h"

const char *cn_loss_name(cn_loss_kind kind)
{
    static const char *names[] = { "mse", "mae", "ce", "ce-logits", "bce", "bce-logits", "hinge", "dice" };
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

/* log(sum_j e^z_j), stable */
static double log_sum_exp(const float *z, int64_t n)
{
    double mx = z[0], s = 0.0;
    for (int64_t j = 1; j < n; j++) mx = z[j] > mx ? z[j] : mx;
    for (int64_t j = 0; j < n; j++) s += exp(z[j] - mx);
    return mx + log(s);
}

static cn_status sample_loss(cn_ctx *ctx, cn_loss_kind kind, const float *t, const float *p, int64_t cols,
                             int64_t row, double *out)
{
    double acc = 0.0;
    switch (kind) {
    case CN_LOSS_MSE: /* mean_j (t_j - p_j)^2 */
        for (int64_t j = 0; j < cols; j++) acc += ((double)t[j] - p[j]) * ((double)t[j] - p[j]);
        *out = acc / (double)cols;
        return CN_OK;
    case CN_LOSS_MAE: /* mean_j |t_j - p_j| */
        for (int64_t j = 0; j < cols; j++) acc += fabs((double)t[j] - p[j]);
        *out = acc / (double)cols;
        return CN_OK;
    case CN_LOSS_CE: /* -sum_j t_j log p_j */
        for (int64_t j = 0; j < cols; j++) {
            if (t[j] == 0.0f) continue;
            if (!(p[j] > 0.0f))
                return cn_fail(ctx, CN_E_ARG, "ce: sample %lld, class %lld: probability %g has no logarithm",
                               (long long)row + 1, (long long)j + 1, (double)p[j]);
            acc -= (double)t[j] * log((double)p[j]);
        }
        *out = acc;
        return CN_OK;
    case CN_LOSS_CE_LOGITS: { /* -sum_j t_j (z_j - logsumexp z) */
        double lse = log_sum_exp(p, cols);
        for (int64_t j = 0; j < cols; j++) acc -= (double)t[j] * ((double)p[j] - lse);
        *out = acc;
        return CN_OK;
    }
    case CN_LOSS_BCE: /* mean_j -[t log p + (1-t) log(1-p)] */
        for (int64_t j = 0; j < cols; j++) {
            double tj = t[j], pj = p[j];
            if ((tj != 0.0 && !(pj > 0.0)) || (tj != 1.0 && !(pj < 1.0)) || !(pj >= 0.0 && pj <= 1.0))
                return cn_fail(ctx, CN_E_ARG, "bce: sample %lld, output %lld: probability %g must lie in (0, 1)",
                               (long long)row + 1, (long long)j + 1, pj);
            if (tj != 0.0) acc -= tj * log(pj);
            if (tj != 1.0) acc -= (1.0 - tj) * log(1.0 - pj);
        }
        *out = acc / (double)cols;
        return CN_OK;
    case CN_LOSS_BCE_LOGITS: /* max(z,0) - z t + log(1 + e^-|z|) */
        for (int64_t j = 0; j < cols; j++) {
            double z = p[j];
            acc += (z > 0 ? z : 0) - z * t[j] + log1p(exp(-fabs(z)));
        }
        *out = acc / (double)cols;
        return CN_OK;
    case CN_LOSS_HINGE: /* mean_j max(0, 1 - t_j p_j), t in {-1, +1} */
        for (int64_t j = 0; j < cols; j++) {
            if (t[j] != 1.0f && t[j] != -1.0f)
                return cn_fail(ctx, CN_E_ARG, "hinge: sample %lld, output %lld: target %g must be -1 or +1",
                               (long long)row + 1, (long long)j + 1, (double)t[j]);
            double m = 1.0 - (double)t[j] * p[j];
            acc += m > 0 ? m : 0;
        }
        *out = acc / (double)cols;
        return CN_OK;
    case CN_LOSS_DICE: { /* 1 - 2 sum(t p) / (sum t + sum p) */
        double inter = 0.0, st = 0.0, sp = 0.0;
        for (int64_t j = 0; j < cols; j++) inter += (double)t[j] * p[j], st += t[j], sp += p[j];
        *out = st + sp > 0 ? 1.0 - 2.0 * inter / (st + sp) : 0.0; /* two empty masks agree fully */
        return CN_OK;
    }
    }
    return cn_fail(ctx, CN_E_ARG, "unknown loss %d", (int)kind);
}

cn_status cn_loss(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                  int64_t cols, double *loss, double *per_sample)
{
    *loss = 0.0;
    if (rows < 1 || cols < 1) return cn_fail(ctx, CN_E_ARG, "%s: no values", cn_loss_name(kind));
    double sum = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        double v = 0.0;
        cn_status st = sample_loss(ctx, kind, target + r * cols, pred + r * cols, cols, r, &v);
        if (st) return st;
        if (per_sample) per_sample[r] = v;
        sum += v;
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
