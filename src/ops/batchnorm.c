/* batchnorm.c — batch normalisation per channel: gamma and beta are trained, the running
 * mean and variance are kept but not trained. Reference kernel for `convnet calc batchnorm`.
 * Covered by tests/test_calc.c (seed 001 worksheet 6). */
#include <math.h>

#include "op_impl.h"

static const cn_key keys[] = {
    { "eps", CN_KT_FLOAT, offsetof(cn_attrs, eps), CN_KEY_LO_OPEN, "1e-5", 0, 1, "added to the variance" },
    { "momentum", CN_KT_FLOAT, offsetof(cn_attrs, momentum), 0, "0.1", 0, 1,
      "weight of the new batch in the running statistics" },
    { 0 },
};

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    cn_infer_pointwise(ctx, file, n, in);
    n->trainable = 2 * n->out.c; /* gamma, beta */
    n->params = 4 * n->out.c;    /* + running mean, running var */
    return CN_OK;
}

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in, (void)batch;
    long long c = (long long)n->out.c;
    cn_sb_printf(sb, "    y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel\n");
    cn_sb_printf(sb, "    params = 2*%lld trainable (gamma, beta) + 2*%lld running mean/var = %lld\n", c, c, 4 * c);
}

const cn_op cn_op_batchnorm = { "batchnorm", "batchnorm [eps=1e-5] [momentum=0.1]",
                                "normalise each channel over the batch, then scale by gamma and shift by beta", keys, 1,
                                infer, explain };

/* y = gamma * (x - mean) / sqrt(var + eps) + beta with the biased variance of the n values.
 * (Seed 001 divides by sigma without eps and rounds 4/sqrt(8) to 0.5: it is 1.414.) */
void cn_batchnorm_1d(const float *x, float *y, int64_t n, float gamma, float beta, float eps, float *mean, float *var)
{
    double m = 0.0, v = 0.0;
    for (int64_t i = 0; i < n; i++) m += x[i];
    m /= (double)(n > 0 ? n : 1);
    for (int64_t i = 0; i < n; i++) v += ((double)x[i] - m) * ((double)x[i] - m);
    v /= (double)(n > 0 ? n : 1);
    double inv = 1.0 / sqrt(v + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (float)(gamma * ((double)x[i] - m) * inv + beta);
    if (mean) *mean = (float)m;
    if (var) *var = (float)v;
}
