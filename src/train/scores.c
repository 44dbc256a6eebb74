/* scores.c — each class's precision, recall and F1 from a confusion matrix, and their macro and
 * weighted averages, as scikit-learn's classification_report defines them (tests/test_trainer.c
 * checks a matrix worked by hand, and tests/cli_test.sh eval's JSON against scikit-learn's
 * definitions computed from its own confusion matrix). */
#include <math.h>

#include "train_impl.h"

cn_status cn_class_scores(cn_ctx *ctx, const cn_eval_result *r, cn_class_score *per, cn_class_score avg[2])
{
    if (!r || !r->confusion || r->classes < 1 || !per || !avg)
        return cn_fail(ctx, CN_E_ARG, "cn_class_scores: NULL or empty evaluation, or NULL output");
    int32_t k = r->classes;
    double macro[3] = { 0, 0, 0 }, weighted[3] = { 0, 0, 0 };
    int64_t present = 0, images = 0, predicted = 0, correct = 0;
    for (int32_t c = 0; c < k; c++) {
        cn_class_score *s = &per[c];
        s->support = s->predicted = 0;
        for (int32_t p = 0; p < k; p++) s->support += r->confusion[c * k + p], s->predicted += r->confusion[p * k + c];
        s->correct = r->confusion[c * k + c];
        /* NaN where there is nothing to count: no image predicted as c, no image of c */
        s->precision = s->predicted ? (double)s->correct / (double)s->predicted : NAN;
        s->recall = s->support ? (double)s->correct / (double)s->support : NAN;
        /* the harmonic mean of the two, 2 TP / (2 TP + FP + FN): 0, not undefined, where one is
         * 0 or undefined and the other defined (scikit-learn's too) */
        s->f1 = s->support || s->predicted ? 2.0 * (double)s->correct / (double)(s->support + s->predicted) : NAN;
        images += s->support, predicted += s->predicted, correct += s->correct;
        if (!s->support && !s->predicted) continue; /* absent from both: left out of the averages */
        present++;
        double v[3] = { s->precision, s->recall, s->f1 };
        for (int q = 0; q < 3; q++) {
            double x = isnan(v[q]) ? 0.0 : v[q]; /* scikit-learn's zero_division: an undefined share counts 0 */
            macro[q] += x;
            weighted[q] += x * (double)s->support;
        }
    }
    for (int a = 0; a < 2; a++) {
        const double *sum = a ? weighted : macro;
        double n = a ? (double)images : (double)present;
        avg[a] = (cn_class_score){ images, predicted, correct, n ? sum[0] / n : NAN, n ? sum[1] / n : NAN,
                                   n ? sum[2] / n : NAN };
    }
    return CN_OK;
}
