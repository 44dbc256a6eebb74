/* merge.c — layers that read several named layers: concat joins channels (inception),
 * add sums equal shapes (residual). Covered by tests/test_shapes.c and tests/test_models.c. */
#include "op_impl.h"

static const cn_key keys[] = {
    { "inputs", CN_KT_NAMES, 0, CN_KEY_POS | CN_KEY_REQ, NULL, 0, 0, "two or more layer names" },
    { 0 },
};

static void rf_max(cn_node *n, const cn_node *const *in)
{
    n->rf_h = n->rf_w = n->jump_h = n->jump_w = 0;
    for (int i = 0; i < n->n_in; i++) {
        if (in[i]->rf_h > n->rf_h) n->rf_h = in[i]->rf_h;
        if (in[i]->rf_w > n->rf_w) n->rf_w = in[i]->rf_w;
        if (in[i]->jump_h > n->jump_h) n->jump_h = in[i]->jump_h;
        if (in[i]->jump_w > n->jump_w) n->jump_w = in[i]->jump_w;
    }
}

static cn_status infer_concat(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    int64_t c = 0, count;
    for (int i = 0; i < n->n_in; i++) {
        if (in[i]->out.h != in[0]->out.h || in[i]->out.w != in[0]->out.w)
            return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, n->in_cols[i],
                              "concat: '%s' is %lldx%lld but '%s' is %lldx%lld (heights and widths must match)",
                              in[i]->name, (long long)in[i]->out.h, (long long)in[i]->out.w, in[0]->name,
                              (long long)in[0]->out.h, (long long)in[0]->out.w);
        if (!cn_add_ok(c, in[i]->out.c, &c))
            return cn_fail_at(ctx, CN_E_OVERFLOW, file, n->line, n->col, "concat: channel count overflows");
    }
    n->out = (cn_dims){ c, in[0]->out.h, in[0]->out.w };
    rf_max(n, in);
    return cn_dims_count(ctx, file, n, n->out, &count);
}

static void explain_concat(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch;
    cn_sb_printf(sb, "    C = ");
    for (int i = 0; i < n->n_in; i++) cn_sb_printf(sb, "%s%lld", i ? " + " : "", (long long)in[i]->out.c);
    cn_sb_printf(sb, " = %lld channels at %lldx%lld; no parameters\n", (long long)n->out.c, (long long)n->out.h,
                 (long long)n->out.w);
}

static cn_status infer_add(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    for (int i = 1; i < n->n_in; i++) {
        const cn_dims *a = &in[0]->out, *b = &in[i]->out;
        if (a->c != b->c)
            return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, n->in_cols[i],
                              "add: '%s' has %lld channels but '%s' has %lld", in[0]->name, (long long)a->c,
                              in[i]->name, (long long)b->c);
        if (a->h != b->h || a->w != b->w)
            return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, n->in_cols[i], "add: '%s' is %lldx%lld but '%s' is %lldx%lld",
                              in[0]->name, (long long)a->h, (long long)a->w, in[i]->name, (long long)b->h,
                              (long long)b->w);
    }
    n->out = in[0]->out;
    rf_max(n, in);
    return CN_OK;
}

static void explain_add(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in, (void)batch;
    cn_sb_printf(sb, "    elementwise sum of %d inputs of %lldx%lldx%lld; no parameters\n", n->n_in,
                 (long long)n->out.h, (long long)n->out.w, (long long)n->out.c);
}

const cn_op cn_op_concat = { "concat", "concat NAME NAME...", "join the channels of named layers", keys, -1,
                             infer_concat, explain_concat };
const cn_op cn_op_add = { "add", "add NAME NAME...", "sum named layers of equal shape (residual)", keys, -1, infer_add,
                          explain_add };
