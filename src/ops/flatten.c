/* flatten.c — HxWxC -> 1x1x(H*W*C); the receptive field is kept. */
#include "op_impl.h"

static const cn_key no_keys[] = { { 0 } };

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    int64_t count;
    cn_status st = cn_dims_count(ctx, file, n, in[0]->out, &count);
    if (st) return st;
    cn_infer_pointwise(ctx, file, n, in);
    n->out = (cn_dims){ count, 1, 1 };
    return CN_OK;
}

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch;
    cn_sb_printf(sb, "    %lld*%lld*%lld = ", (long long)in[0]->out.h, (long long)in[0]->out.w, (long long)in[0]->out.c);
    cn_sb_count(sb, n->out.c);
    cn_sb_printf(sb, " values in one vector; no parameters\n");
}

const cn_op cn_op_flatten = { "flatten", "flatten", "one vector per sample", no_keys, 1, infer, explain };
