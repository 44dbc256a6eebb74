/* input.c — `input HxWxC`: the network's input; receptive field 1, jump 1. */
#include "op_impl.h"

static const cn_key keys[] = {
    { .name = "shape", .type = CN_KT_SHAPE, .offset = offsetof(cn_attrs, shape), .flags = CN_KEY_POS | CN_KEY_REQ,
      .lo = 1, .hi = CN_INT_MAX, .doc = "height x width x channels, as 28x28x1 (HxW means one channel)" },
    { 0 },
};

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    (void)in;
    int64_t count;
    n->out = n->a.shape;
    n->rf_h = n->rf_w = n->jump_h = n->jump_w = n->den_h = n->den_w = 1;
    return cn_dims_count(ctx, file, n, n->out, &count);
}

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in;
    cn_sb_printf(sb, "    %lld x %lldx%lldx%lld = ", (long long)batch, (long long)n->out.h, (long long)n->out.w,
                 (long long)n->out.c);
    cn_explain_product(sb, batch, n->out.h * n->out.w * n->out.c);
    cn_sb_printf(sb, " values; RF = 1, jump = 1\n");
}

/* no kernels: the executor copies the batch into this layer's output */
const cn_op cn_op_input = {
    .name = "input", .usage = "input HxWxC", .help = "the input image: height x width x channels", .keys = keys,
    .inputs = 0, .infer = infer, .explain = explain,
};
