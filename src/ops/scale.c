/* scale.c — `scale`: y = a_c * x, a learned factor per channel (ConvNeXt's layer_scale, which
 * starts at 1e-6 so that each residual block begins as nearly the identity; CaiT's LayerScale).
 * `init=` sets where every factor starts. C parameters; no MACs counted (an element-wise
 * product, as batch norm's scale). Reference kernels, forward beside backward. Covered by
 * tests/test_gradcheck.c, tests/test_backend.c, tests/test_cpu_ops.c, tests/test_shapes.c and
 * tests/test_torch_parity.c (convnext_block). */
#ifndef CN_REAL
#include "op_impl.h"

static const cn_key scale_keys[] = {
    { .name = "init", .type = CN_KT_FLOAT, .offset = offsetof(cn_attrs, init), .def = "1", .lo = -1e30, .hi = 1e30,
      .doc = "where every factor starts (ConvNeXt's: 1e-6)" },
    { 0 },
};

static cn_status scale_infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    cn_status st = cn_infer_pointwise(ctx, file, n, in);
    n->params = n->trainable = n->out.c;
    return st;
}

static void scale_explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in, (void)batch;
    cn_sb_printf(sb, "    y = a_c * x: each channel times its own factor; output shape = input shape %lldx%lldx%lld\n",
                 (long long)n->out.h, (long long)n->out.w, (long long)n->out.c);
    cn_sb_printf(sb, "    params = one factor per channel = %lld trainable (each starts at %g)\n", (long long)n->out.c,
                 n->a.init);
}

static int scale_params(const cn_node *n, const cn_node *const *in, cn_param_spec *out)
{
    (void)in;
    int64_t c = n->out.c;
    out[0] = (cn_param_spec){ .name = "weight", .rank = 1, .shape = { c }, .count = c, .trainable = 1,
                              .init = CN_PINIT_CONST, .value = n->a.init };
    return 1;
}

#define CN_TEMPLATE_FILE "scale.c"
#include "template.h"

const cn_op cn_op_scale = {
    .name = "scale", .usage = "scale [init=1]",
    .help = "multiply each channel by a learned factor (ConvNeXt's layer_scale: init=1e-6)", .keys = scale_keys,
    .inputs = 1, .infer = scale_infer, .explain = scale_explain, .params = scale_params,
    .forward = { scale_forward_f32, scale_forward_f64 }, .backward = { scale_backward_f32, scale_backward_f64 },
};

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,C,H,W) <- a[c] * x; w = a (C) */
static void CN_FN(scale_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w;
    const CN_REAL *x = io->x[0], *a = io->w;
    CN_REAL *y = io->y;
    for (int64_t i = 0; i < io->batch * c; i++)
        for (int64_t j = i * hw; j < (i + 1) * hw; j++) y[j] = a[i % c] * x[j];
}

/* dx (N,C,H,W) += a[c] * dy; da (C) += the sum of dy * x over each plane, in double, a plane
 * after another in sample order */
static void CN_FN(scale_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w;
    const CN_REAL *x = io->x[0], *dy = io->dy, *a = io->w;
    CN_REAL *dx = io->dx[0], *da = io->dw;
    for (int64_t i = 0; i < io->batch * c; i++) {
        double s = 0;
        for (int64_t j = i * hw; j < (i + 1) * hw; j++) {
            s += (double)dy[j] * x[j];
            if (dx) dx[j] += a[i % c] * dy[j];
        }
        da[i % c] += (CN_REAL)s;
    }
}

#endif
