/* step_row.h — one sample's loss and gradient, and its best class: the host's step
 * (src/train/loss.c, step.c) and the CUDA backend's step kernels (src/backend/cuda/kernels.cu)
 * include this one definition, so that the GPU computes what the reference does. */
#ifndef CN_STEP_ROW_H
#define CN_STEP_ROW_H

#include <math.h>
#include <stdint.h>

#include "../../include/convnet.h" /* cn_loss_kind */
#include "../core/device_fn.h"


/* the kinds whose mean is over samples (the others': over every value) */
CN_DEVICE_FN int cn_loss_per_sample(int k) { return k == CN_LOSS_CE || k == CN_LOSS_CE_LOGITS || k == CN_LOSS_DICE; }

/* The largest logit m and s = sum_j e^(z_j - m), which lies in [1, n]. Then
 *   log p_j = (z_j - m) - log s   and   p_j = e^(z_j - m) / s.
 * Never form lse = m + log s and subtract it from z_j: at |m| = 1e17 the sum m + log s rounds
 * to m, log s is lost, and three equal logits would give a loss of 0 instead of ln 3. */
CN_DEVICE_FN double cn_shifted_exp_sum(const float *z, int64_t n, double *mx)
{
    double m = z[0], s = 0.0;
    for (int64_t j = 1; j < n; j++) m = z[j] > m ? z[j] : m;
    for (int64_t j = 0; j < n; j++) s += exp((double)z[j] - m);
    *mx = m;
    return s;
}

/* log p clamped at -100, as PyTorch's BCE does, so a saturated sigmoid gives a large finite loss */
CN_DEVICE_FN double cn_clamped_log(double p) { return p > 0 ? fmax(log(p), -100.0) : -100.0; }

/* Loss of one sample (cols values) summed over its values for elementwise kinds; gradient
 * d(that sum)/dp times `scale` into g when g is not NULL. Returns the column of the first value
 * the loss is not defined for (loss.c's row_error says why), else -1. No context is touched, so
 * rows can run on several threads, or on a GPU. */
CN_DEVICE_FN int64_t cn_row_loss(int kind, const float *t, const float *p, int64_t cols, double smoothing,
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
            acc -= (double)t[j] * cn_clamped_log((double)p[j]);
            if (g) g[j] = (float)(-(double)t[j] / fmax((double)p[j], 1e-12) * scale);
        }
        break;
    case CN_LOSS_CE_LOGITS: { /* t' = (1-s) t + s/C; -sum_j t'_j log p_j; d/dz_j = p_j sum t' - t'_j */
        double mx, sum = cn_shifted_exp_sum(p, cols, &mx), log_sum = log(sum), tsum = 0, keep = 1.0 - smoothing,
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
            acc -= tj * cn_clamped_log(pj) + (1.0 - tj) * cn_clamped_log(1.0 - pj);
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

/* the column of row y's largest value, the first of equals (NaN never wins) */
CN_DEVICE_FN int64_t cn_row_best(const float *y, int64_t cols)
{
    int64_t best = 0;
    for (int64_t j = 1; j < cols; j++)
        if (y[j] > y[best]) best = j;
    return best;
}

#endif
