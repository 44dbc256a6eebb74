/* flatten.c — HxWxC -> 1x1x(H*W*C) in NCHW order (a copy; the receptive field is kept).
 * Covered by tests/test_shapes.c and tests/test_gradcheck.c. */
#ifndef CN_REAL
#include <string.h>

#include "op_impl.h"


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

#define CN_TEMPLATE_FILE "flatten.c"
#include "template.h"

const cn_op cn_op_flatten = {
    .name = "flatten", .usage = "flatten", .help = "one vector per sample", .keys = cn_no_keys, .inputs = 1,
    .infer = infer, .explain = explain,
    .forward = { flatten_forward_f32, flatten_forward_f64 }, .backward = { flatten_backward_f32, flatten_backward_f64 },
};

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,C*H*W) <- x (N,C,H,W): the same values in the same order */
static void CN_FN(flatten_forward)(const cn_op_io *io)
{
    memcpy(io->y, io->x[0], (size_t)(io->n->out.c * io->batch) * sizeof(CN_REAL));
}

/* dx (N,C,H,W) += dy (N,C*H*W) */
static void CN_FN(flatten_backward)(const cn_op_io *io)
{
    int64_t count = io->n->out.c * io->batch;
    const CN_REAL *dy = io->dy;
    CN_REAL *dx = io->dx[0];
    if (!dx) return;
    for (int64_t i = 0; i < count; i++) dx[i] += dy[i];
}

#endif
