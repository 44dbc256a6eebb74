/* channels.c — layers that move channels and nothing else: `shuffle G` interleaves G groups of
 * channels (ShuffleNet's channel shuffle: x.view(N, G, C/G, H, W).transpose(1, 2).reshape(N, C,
 * H, W)), so that the grouped convolution after it sees every group's channels; `channels K
 * start=S` keeps K of them from channel S (x[:, S:S+K], torch.narrow; ShuffleNet V2's
 * x.chunk(2, dim=1) is `channels C/2` and `channels C/2 start=C/2`). No parameters, no MACs;
 * receptive field and jump pass through. Reference kernels, forward beside backward. Covered by
 * tests/test_gradcheck.c, tests/test_backend.c, tests/test_shapes.c, tests/test_spec_errors.c
 * and tests/test_torch_parity.c (channels). */
#ifndef CN_REAL
#include <string.h>

#include "op_impl.h"

static const cn_key shuffle_keys[] = {
    { .name = "groups", .type = CN_KT_INT, .offset = offsetof(cn_attrs, groups), .flags = CN_KEY_POS | CN_KEY_REQ,
      .lo = 1, .hi = CN_INT_MAX, .doc = "groups of channels interleaved (they divide the channels)" },
    { 0 },
};

static const cn_key channels_keys[] = {
    { .name = "count", .type = CN_KT_INT, .offset = offsetof(cn_attrs, filters), .flags = CN_KEY_POS | CN_KEY_REQ,
      .lo = 1, .hi = CN_INT_MAX, .doc = "channels kept" },
    { .name = "start", .type = CN_KT_INT, .offset = offsetof(cn_attrs, first), .def = "0", .hi = CN_INT_MAX,
      .doc = "the first channel kept (0: the first)" },
    { 0 },
};

static cn_status shuffle_infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    cn_status st = cn_infer_pointwise(ctx, file, n, in);
    if (!st && n->out.c % n->a.groups)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "groups"),
                          "shuffle: %lld groups do not divide the %lld channels", (long long)n->a.groups,
                          (long long)n->out.c);
    return st;
}

static void shuffle_explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in, (void)batch;
    int64_t g = n->a.groups, per = n->out.c / g;
    cn_sb_printf(sb, "    %lld groups of %lld channels interleaved: output channel j*%lld + i is input channel "
                     "i*%lld + j (i < %lld, j < %lld); no parameters\n",
                 (long long)g, (long long)per, (long long)g, (long long)per, (long long)g, (long long)per);
}

static cn_status channels_infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    cn_status st = cn_infer_pointwise(ctx, file, n, in);
    int64_t c = in[0]->out.c;
    if (!st && (n->a.first >= c || n->a.filters > c - n->a.first))
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, n->a.first >= c ? "start" : "count"),
                          "channels: %lld from channel %lld reach past the input's %lld channels",
                          (long long)n->a.filters, (long long)n->a.first, (long long)c);
    n->out.c = n->a.filters;
    return st;
}

static void channels_explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch;
    cn_sb_printf(sb, "    channels %lld to %lld of %lld; no parameters\n", (long long)n->a.first,
                 (long long)(n->a.first + n->out.c - 1), (long long)in[0]->out.c);
}

#define CN_TEMPLATE_FILE "channels.c"
#include "template.h"

const cn_op cn_op_shuffle = {
    .name = "shuffle", .usage = "shuffle GROUPS",
    .help = "interleave the channels of GROUPS groups (ShuffleNet's channel shuffle)", .keys = shuffle_keys,
    .inputs = 1, .infer = shuffle_infer, .explain = shuffle_explain,
    .forward = { shuffle_forward_f32, shuffle_forward_f64 }, .backward = { shuffle_backward_f32, shuffle_backward_f64 },
};
const cn_op cn_op_channels = {
    .name = "channels", .usage = "channels COUNT [start=S]",
    .help = "COUNT channels from channel S (x[:, S:S+COUNT]; a split is two of them)", .keys = channels_keys,
    .inputs = 1, .infer = channels_infer, .explain = channels_explain,
    .forward = { channels_forward_f32, channels_forward_f64 },
    .backward = { channels_backward_f32, channels_backward_f64 },
};

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,C,H,W): output channel j*G + i <- input channel i*(C/G) + j */
static void CN_FN(shuffle_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, g = nd->a.groups, per = c / g, hw = nd->out.h * nd->out.w;
    const CN_REAL *x = io->x[0];
    CN_REAL *y = io->y;
    for (int64_t n = 0; n < io->batch; n++)
        for (int64_t i = 0; i < g; i++)
            for (int64_t j = 0; j < per; j++)
                memcpy(y + (n * c + j * g + i) * hw, x + (n * c + i * per + j) * hw, (size_t)hw * sizeof(CN_REAL));
}

/* dx channel i*(C/G) + j += dy channel j*G + i */
static void CN_FN(shuffle_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, g = nd->a.groups, per = c / g, hw = nd->out.h * nd->out.w;
    const CN_REAL *dy = io->dy;
    CN_REAL *dx = io->dx[0];
    for (int64_t n = 0; dx && n < io->batch; n++)
        for (int64_t i = 0; i < g; i++)
            for (int64_t j = 0; j < per; j++) {
                const CN_REAL *s = dy + (n * c + j * g + i) * hw;
                CN_REAL *d = dx + (n * c + i * per + j) * hw;
                for (int64_t k = 0; k < hw; k++) d[k] += s[k];
            }
}

/* y (N,K,H,W) <- channels S .. S+K-1 of x (N,C,H,W) */
static void CN_FN(channels_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t hw = nd->out.h * nd->out.w, block = nd->out.c * hw, xstride = io->in[0]->out.c * hw;
    const CN_REAL *x = io->x[0];
    CN_REAL *y = io->y;
    for (int64_t n = 0; n < io->batch; n++)
        memcpy(y + n * block, x + n * xstride + nd->a.first * hw, (size_t)block * sizeof(CN_REAL));
}

/* channels S .. S+K-1 of dx += dy; the others get nothing */
static void CN_FN(channels_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t hw = nd->out.h * nd->out.w, block = nd->out.c * hw, xstride = io->in[0]->out.c * hw;
    const CN_REAL *dy = io->dy;
    CN_REAL *dx = io->dx[0];
    for (int64_t n = 0; dx && n < io->batch; n++)
        for (int64_t i = 0; i < block; i++) dx[n * xstride + nd->a.first * hw + i] += dy[n * block + i];
}

#endif
