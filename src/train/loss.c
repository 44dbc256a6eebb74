/* loss.c — loss functions with their gradients, and the L1/L2 terms. Reductions follow
 * PyTorch: 'mean' averages the elementwise losses (MSE, MAE, BCE, hinge) over every value and
 * the per-sample losses (cross-entropy, Dice) over the samples; 'sum' adds them up. Large
 * batches spread their rows over threads, with the same sum on any number of them.
 * Covered by tests/test_seeds.c (the worksheets), tests/test_calc_ref.c and tests/test_loss.c
 * (gradients by central differences). */
#include <math.h>

#include "step_row.h"
#include "train_impl.h"

const char *cn_loss_name(cn_loss_kind kind)
{
    static const char *names[] = { "mse", "mae", "ce", "ce-logits", "bce", "bce-logits", "hinge", "dice" };
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

/* why cn_row_loss refused value (row, col) */
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
    double count = reduction == CN_REDUCE_SUM ? 1.0 : cn_loss_per_sample(kind) ? (double)rows : (double)rows * (double)cols;
    return loss_grad_over(ctx, kind, target, pred, rows, cols, count, label_smoothing, loss, dpred);
}

cn_status cn_loss_grad_part(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                            int64_t cols, int64_t samples, double label_smoothing, double *loss, float *dpred)
{
    double count = cn_loss_per_sample(kind) ? (double)samples : (double)samples * (double)cols;
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
                int64_t col = cn_row_loss(kind, target + r * cols, pred + r * cols, cols, label_smoothing, 1.0 / count, &v,
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
    double sum = 0.0, per_value = cn_loss_per_sample(kind) ? 1.0 : (double)cols;
    for (int64_t r = 0; r < rows; r++) {
        double v = 0.0;
        int64_t col = cn_row_loss(kind, target + r * cols, pred + r * cols, cols, 0.0, 1.0, &v, NULL);
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
