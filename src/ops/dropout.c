/* dropout.c — dropout with a keep probability: at training time each value is kept with
 * probability keep and scaled by 1/keep (inverted dropout); identity at evaluation. */
#include "op_impl.h"

static const cn_key keys[] = {
    { "keep", CN_KT_FLOAT, offsetof(cn_attrs, keep), CN_KEY_REQ | CN_KEY_LO_OPEN, NULL, 0, 1,
      "probability of keeping a value, in (0, 1]" },
    { 0 },
};

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in, (void)batch;
    cn_sb_printf(sb, "    training: keep each value with p = %g and scale it by 1/p = %g; evaluation: identity\n",
                 n->a.keep, 1.0 / n->a.keep);
}

const cn_op cn_op_dropout = { "dropout", "dropout keep=P", "randomly zero values while training", keys, 1,
                              cn_infer_pointwise, explain };
