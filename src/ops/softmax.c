/* softmax.c — softmax over the channels of each position (the classes after a dense layer),
 * and the plain reference kernel used by `convnet calc softmax`. Covered by tests/test_calc.c. */
#include <math.h>

#include "op_impl.h"

static const cn_key no_keys[] = { { 0 } };

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in, (void)batch;
    cn_sb_printf(sb, "    softmax_i = e^(x_i - max) / sum_j e^(x_j - max) over the %lld channels; no parameters\n",
                 (long long)n->out.c);
}

const cn_op cn_op_softmax = { "softmax", "softmax", "probabilities over the channels (classes)", no_keys, 1,
                              cn_infer_pointwise, explain };

/* y[i] = e^(x_i - max) / sum_j e^(x_j - max); subtracting the max keeps e^x finite */
void cn_softmax(const float *x, float *y, int64_t n)
{
    if (n <= 0) return;
    float mx = x[0];
    for (int64_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += exp((double)x[i] - mx);
    for (int64_t i = 0; i < n; i++) y[i] = (float)(exp((double)x[i] - mx) / sum);
}
