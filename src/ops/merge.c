/* merge.c — layers that read several named layers: concat joins channels (inception),
 * add sums equal shapes (residual). Reference kernels, forward beside backward. Covered by
 * tests/test_shapes.c, tests/test_models.c and tests/test_gradcheck.c. */
#ifndef CN_REAL
#include <string.h>

#include "op_impl.h"

static const cn_key keys[] = {
    { .name = "inputs", .type = CN_KT_NAMES, .flags = CN_KEY_POS | CN_KEY_REQ, .doc = "two or more layer names" },
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

#define CN_TEMPLATE_FILE "merge.c"
#include "template.h"

const cn_op cn_op_concat = {
    .name = "concat", .usage = "concat NAME NAME...", .help = "join the channels of named layers", .keys = keys,
    .inputs = -1, .infer = infer_concat, .explain = explain_concat,
    .forward = { concat_forward_f32, concat_forward_f64 }, .backward = { concat_backward_f32, concat_backward_f64 },
};
const cn_op cn_op_add = {
    .name = "add", .usage = "add NAME NAME...", .help = "sum named layers of equal shape (residual)", .keys = keys,
    .inputs = -1, .infer = infer_add, .explain = explain_add,
    .forward = { add_forward_f32, add_forward_f64 }, .backward = { add_backward_f32, add_backward_f64 },
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

/* y (N,C,H,W) <- x_0 + x_1 + ... (each N,C,H,W) */
static void CN_FN(add_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t count = nd->out.c * nd->out.h * nd->out.w * io->batch;
    CN_REAL *y = io->y;
    memcpy(y, io->x[0], (size_t)count * sizeof(CN_REAL));
    for (int j = 1; j < nd->n_in; j++) {
        const CN_REAL *x = io->x[j];
        for (int64_t i = 0; i < count; i++) y[i] += x[i];
    }
}

/* dx_j (N,C,H,W) += dy for every input j */
static void CN_FN(add_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t count = nd->out.c * nd->out.h * nd->out.w * io->batch;
    const CN_REAL *dy = io->dy;
    for (int j = 0; j < nd->n_in; j++) {
        CN_REAL *dx = io->dx[j];
        for (int64_t i = 0; dx && i < count; i++) dx[i] += dy[i];
    }
}

#endif
