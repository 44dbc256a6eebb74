/* merge.c — layers that read several named layers: concat joins channels (inception), add
 * sums (residual) and mul multiplies (squeeze-and-excitation) maps of one shape, where a 1x1
 * map of the same channels broadcasts over the others' height and width, as PyTorch's `+` and
 * `*` of (N,C,H,W) and (N,C,1,1). Reference kernels, forward beside backward. Covered by
 * tests/test_shapes.c, tests/test_models.c, tests/test_gradcheck.c and
 * tests/test_torch_parity.c. */
#ifndef CN_REAL
#include <string.h>

#include "op_impl.h"

static const cn_key keys[] = {
    { .name = "inputs", .type = CN_KT_NAMES, .flags = CN_KEY_POS | CN_KEY_REQ, .doc = "two or more layer names" },
    { 0 },
};

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
    cn_rf_merge(n, in);
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

/* add, mul: equal channels; each map HxW of the output or 1x1 (broadcast) */
static cn_status infer_broadcast(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    const char *op = n->op->name;
    int full = 0; /* an input of the output's size: the first that is not 1x1 */
    for (int i = 1; i < n->n_in; i++)
        if (in[full]->out.h == 1 && in[full]->out.w == 1) full = i;
    for (int i = 0; i < n->n_in; i++) {
        const cn_dims *a = &in[full]->out, *b = &in[i]->out;
        if (a->c != b->c)
            return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, n->in_cols[i],
                              "%s: '%s' has %lld channels but '%s' has %lld", op, in[full]->name, (long long)a->c, in[i]->name, (long long)b->c);
        if ((a->h != b->h || a->w != b->w) && (b->h != 1 || b->w != 1))
            return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, n->in_cols[i],
                              "%s: '%s' is %lldx%lld but '%s' is %lldx%lld", op, in[full]->name, (long long)a->h, (long long)a->w, in[i]->name, (long long)b->h,
                              (long long)b->w);
    }
    n->out = in[full]->out;
    cn_rf_merge(n, in);
    return CN_OK;
}

static void explain_broadcast(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch;
    int spread = 0;
    for (int i = 0; i < n->n_in; i++) spread += in[i]->out.h * in[i]->out.w != n->out.h * n->out.w;
    cn_sb_printf(sb, "    elementwise %s of %d inputs of %lldx%lldx%lld", n->id == CN_OP_MUL ? "product" : "sum",
                 n->n_in, (long long)n->out.h, (long long)n->out.w, (long long)n->out.c);
    if (spread) cn_sb_printf(sb, " (%d of them 1x1, one value per channel spread over %lldx%lld)", spread,
                             (long long)n->out.h, (long long)n->out.w);
    cn_sb_printf(sb, "; no parameters\n");
}

#define CN_TEMPLATE_FILE "merge.c"
#include "template.h"

const cn_op cn_op_concat = {
    .name = "concat", .usage = "concat NAME NAME...", .help = "join the channels of named layers", .keys = keys,
    .inputs = -1, .infer = infer_concat, .explain = explain_concat,
    .forward = { concat_forward_f32, concat_forward_f64 }, .backward = { concat_backward_f32, concat_backward_f64 },
};
const cn_op cn_op_add = {
    .name = "add", .usage = "add NAME NAME...", .help = "sum named layers of equal shape (residual); 1x1 maps broadcast",
    .keys = keys, .inputs = -1, .infer = infer_broadcast, .explain = explain_broadcast,
    .forward = { add_forward_f32, add_forward_f64 }, .backward = { add_backward_f32, add_backward_f64 },
};
const cn_op cn_op_mul = {
    .name = "mul", .usage = "mul NAME NAME...",
    .help = "multiply named layers of equal shape; 1x1 maps broadcast (squeeze-and-excitation)", .keys = keys,
    .inputs = -1, .infer = infer_broadcast, .explain = explain_broadcast,
    .forward = { mul_forward_f32, mul_forward_f64 }, .backward = { mul_backward_f32, mul_backward_f64 },
};

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N, C_0 + C_1 + ..., H, W) <- x_0 (N,C_0,H,W), x_1 (N,C_1,H,W), ... side by side in channels */
static void CN_FN(concat_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t hw = nd->out.h * nd->out.w, ystride = nd->out.c * hw, c0 = 0;
    CN_REAL *y = io->y;
    for (int j = 0; j < nd->n_in; j++) {
        int64_t block = io->in[j]->out.c * hw;
        const CN_REAL *x = io->x[j];
        for (int64_t n = 0; n < io->batch; n++)
            memcpy(y + n * ystride + c0 * hw, x + n * block, (size_t)block * sizeof(CN_REAL));
        c0 += io->in[j]->out.c;
    }
}

/* dx_j (N,C_j,H,W) += the channels of dy (N, C_0 + C_1 + ..., H, W) that came from x_j */
static void CN_FN(concat_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t hw = nd->out.h * nd->out.w, ystride = nd->out.c * hw, c0 = 0;
    const CN_REAL *dy = io->dy;
    for (int j = 0; j < nd->n_in; j++) {
        int64_t block = io->in[j]->out.c * hw;
        CN_REAL *dx = io->dx[j];
        for (int64_t n = 0; dx && n < io->batch; n++)
            for (int64_t i = 0; i < block; i++) dx[n * block + i] += dy[n * ystride + c0 * hw + i];
        c0 += io->in[j]->out.c;
    }
}

/* Input j's value at output element i (of N*C*H*W), where a 1x1 input holds one value per
 * (sample, channel): a plane of hw outputs reads it. */
static CN_REAL CN_FN(bcast_at)(const cn_op_io *io, int j, int64_t i, int64_t hw)
{
    const CN_REAL *x = io->x[j];
    return cn_merge_spread(io->n, io->in[j]) ? x[i / hw] : x[i];
}

/* y (N,C,H,W) <- x_0 + x_1 + ... (sum) or x_0 * x_1 * ... (multiply), each N,C,H,W or N,C,1,1 */
static void CN_FN(combine_forward)(const cn_op_io *io, int multiply)
{
    const cn_node *nd = io->n;
    int64_t hw = nd->out.h * nd->out.w, count = nd->out.c * hw * io->batch;
    CN_REAL *y = io->y;
    for (int64_t i = 0; i < count; i++) y[i] = CN_FN(bcast_at)(io, 0, i, hw);
    for (int j = 1; j < nd->n_in; j++)
        for (int64_t i = 0; i < count; i++)
            y[i] = multiply ? y[i] * CN_FN(bcast_at)(io, j, i, hw) : y[i] + CN_FN(bcast_at)(io, j, i, hw);
}

/* dx_j += dy (sum) or dy * the product of the other inputs (multiply); a 1x1 input (N,C,1,1)
 * += the sum over its plane */
static void CN_FN(combine_backward)(const cn_op_io *io, int multiply)
{
    const cn_node *nd = io->n;
    int64_t hw = nd->out.h * nd->out.w, count = nd->out.c * hw * io->batch;
    const CN_REAL *dy = io->dy;
    for (int j = 0; j < nd->n_in; j++) {
        CN_REAL *dx = io->dx[j];
        if (!dx) continue;
        int full = !cn_merge_spread(nd, io->in[j]);
        for (int64_t i = 0; i < count; i++) {
            CN_REAL g = dy[i];
            for (int k = 0; multiply && k < nd->n_in; k++)
                if (k != j) g *= CN_FN(bcast_at)(io, k, i, hw);
            dx[full ? i : i / hw] += g;
        }
    }
}

static void CN_FN(add_forward)(const cn_op_io *io) { CN_FN(combine_forward)(io, 0); }
static void CN_FN(add_backward)(const cn_op_io *io) { CN_FN(combine_backward)(io, 0); }
static void CN_FN(mul_forward)(const cn_op_io *io) { CN_FN(combine_forward)(io, 1); }
static void CN_FN(mul_backward)(const cn_op_io *io) { CN_FN(combine_backward)(io, 1); }

#endif
