/* dense.c — fully connected layer: every output reads every input value (an HxWxC input is
 * read as its flattened H*W*C vector). Covered by tests/test_shapes.c and tests/test_seeds.c. */
#include "op_impl.h"

static const cn_key keys[] = {
    { "units", CN_KT_INT, offsetof(cn_attrs, units), CN_KEY_POS | CN_KEY_REQ, NULL, 1, CN_INT_MAX,
      "number of outputs" },
    { "bias", CN_KT_BOOL, offsetof(cn_attrs, bias), 0, "yes", 0, 1, "add a bias per output (yes|no)" },
    { 0 },
};

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    const cn_node *x = in[0];
    int64_t fan_in, params, macs;
    cn_status st = cn_dims_count(ctx, file, n, x->out, &fan_in);
    if (st) return st;
    /* params = (in + bias) * out ; MACs = in * out */
    if (!cn_mul_ok(fan_in + n->a.bias, n->a.units, &params) || !cn_mul_ok(fan_in, n->a.units, &macs))
        return cn_fail_at(ctx, CN_E_OVERFLOW, file, n->line, n->col, "dense: parameter count overflows");
    n->out = (cn_dims){ n->a.units, 1, 1 };
    n->params = n->trainable = params;
    n->macs = macs;
    /* every output sees the whole input map, also through a flatten */
    cn_rf_window(n, x, x->span_h, x->span_w, x->span_h, x->span_w, 1, 1);
    return CN_OK;
}

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    const cn_dims *x = &in[0]->out;
    int64_t fan_in = x->c * x->h * x->w;
    if (x->h * x->w > 1) {
        cn_sb_printf(sb, "    in = %lld*%lld*%lld = ", (long long)x->h, (long long)x->w, (long long)x->c);
        cn_sb_count(sb, fan_in);
        cn_sb_printf(sb, " (the map is read flattened)\n");
    }
    cn_sb_printf(sb, "    params = (%lld%s)*%lld = ", (long long)fan_in, n->a.bias ? " + 1" : "", (long long)n->a.units);
    cn_sb_count(sb, n->params);
    cn_sb_printf(sb, "\n    MACs = ");
    cn_explain_batch(sb, batch);
    cn_sb_printf(sb, "%lld*%lld = ", (long long)fan_in, (long long)n->a.units);
    cn_sb_count(sb, n->macs * batch);
    cn_sb_printf(sb, "\n");
    cn_explain_rf(n, in[0], sb);
}

const cn_op cn_op_dense = { "dense", "dense UNITS [bias=yes|no]", "fully connected layer", keys, 1, infer, explain };
