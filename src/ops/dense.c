/* dense.c — fully connected layer: every output reads every input value (an HxWxC input is
 * read as its flattened C*H*W vector, NCHW order, as PyTorch's flatten). Reference kernels,
 * forward beside backward. Covered by tests/test_shapes.c, tests/test_seeds.c and
 * tests/test_gradcheck.c. */
#ifndef CN_REAL
#include "op_impl.h"

static const cn_key keys[] = {
    { .name = "units", .type = CN_KT_INT, .offset = offsetof(cn_attrs, units), .flags = CN_KEY_POS | CN_KEY_REQ,
      .lo = 1, .hi = CN_INT_MAX, .doc = "number of outputs" },
    { .name = "bias", .type = CN_KT_BOOL, .offset = offsetof(cn_attrs, bias), .def = "yes", .hi = 1,
      .doc = "add a bias per output (yes|no)" },
    CN_WEIGHT_INIT_KEYS,
    { 0 },
};

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    const cn_node *x = in[0];
    int64_t fan_in, params, macs;
    cn_status st = cn_check_weight_init(ctx, file, n);
    if (st || (st = cn_dims_count(ctx, file, n, x->out, &fan_in))) return st;
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
    cn_explain_product(sb, n->macs, batch);
    cn_sb_printf(sb, "\n");
    cn_explain_weight_init(n, fan_in, n->a.units, sb);
    cn_explain_rf(n, in[0], sb);
}

static int64_t fan_in_of(const cn_node *in) { return in->out.c * in->out.h * in->out.w; }

static int params(const cn_node *n, const cn_node *const *in, cn_param_spec *out)
{
    int64_t units = n->a.units, fan_in = fan_in_of(in[0]);
    out[0] = (cn_param_spec){ .name = "weight", .rank = 2, .shape = { units, fan_in }, .count = units * fan_in,
                              .trainable = 1, .init = CN_PINIT_WEIGHT, .fan_in = fan_in, .fan_out = units };
    if (n->a.bias)
        out[1] = (cn_param_spec){ .name = "bias", .rank = 1, .shape = { units }, .count = units, .trainable = 1,
                                  .init = CN_PINIT_ZERO };
    return cn_weight_init_specs(n, out, n->a.bias ? 2 : 1);
}

#define CN_TEMPLATE_FILE "dense.c"
#include "template.h"

const cn_op cn_op_dense = {
    .name = "dense", .usage = "dense UNITS [bias=yes|no] [init=HOW]", .help = "fully connected layer", .keys = keys,
    .inputs = 1, .infer = infer, .explain = explain, .params = params,
    .forward = { dense_forward_f32, dense_forward_f64 }, .backward = { dense_backward_f32, dense_backward_f64 },
};

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,OUT) <- x (N,IN) w^T + b: y[n,o] = sum_i w[o,i] x[n,i] + b[o]; w (OUT,IN), b (OUT) or
 * none; IN = C*H*W of the input */
static void CN_FN(dense_forward)(const cn_op_io *io)
{
    int64_t out = io->n->a.units, in = fan_in_of(io->in[0]);
    const CN_REAL *x = io->x[0], *w = io->w, *b = io->n->a.bias ? w + out * in : NULL;
    CN_REAL *y = io->y;
    for (int64_t n = 0; n < io->batch; n++)
        for (int64_t o = 0; o < out; o++) {
            const CN_REAL *xr = x + n * in, *wr = w + o * in;
            double acc = b ? b[o] : 0;
            for (int64_t i = 0; i < in; i++) acc += (double)wr[i] * xr[i];
            y[n * out + o] = (CN_REAL)acc;
        }
}

/* dx (N,IN) += dy (N,OUT) w; dw (OUT,IN) += dy^T x; db (OUT) += sum over n of dy */
static void CN_FN(dense_backward)(const cn_op_io *io)
{
    int64_t out = io->n->a.units, in = fan_in_of(io->in[0]);
    const CN_REAL *x = io->x[0], *w = io->w, *dy = io->dy;
    CN_REAL *dx = io->dx[0], *dw = io->dw, *db = io->n->a.bias ? dw + out * in : NULL;
    for (int64_t o = 0; o < out; o++) {
        CN_REAL *dwr = dw + o * in;
        for (int64_t i = 0; i < in; i++) {
            double acc = 0;
            for (int64_t n = 0; n < io->batch; n++) acc += (double)dy[n * out + o] * x[n * in + i];
            dwr[i] += (CN_REAL)acc;
        }
        if (db) {
            double acc = 0;
            for (int64_t n = 0; n < io->batch; n++) acc += dy[n * out + o];
            db[o] += (CN_REAL)acc;
        }
    }
    if (!dx) return;
    for (int64_t n = 0; n < io->batch; n++)
        for (int64_t i = 0; i < in; i++) {
            double acc = 0;
            for (int64_t o = 0; o < out; o++) acc += (double)dy[n * out + o] * w[o * in + i];
            dx[n * in + i] += (CN_REAL)acc;
        }
}

#endif
