/* norm.c — normalisation over each sample (no batch statistics, so training and evaluation
 * agree): layernorm (PyTorch's LayerNorm over C,H,W, a scale and shift per value; over=channels:
 * each position over its C channels, a scale and shift per channel, ConvNeXt's), groupnorm
 * (GroupNorm: G groups of C/G channels, a scale and shift per channel) and instancenorm
 * (InstanceNorm2d: one group per channel). One reference kernel serves the three: a layer norm is
 * one group with its scale and shift per value; over=channels has kernels of its own. Covered
 * by tests/test_gradcheck.c and tests/test_torch_parity.c. */
#ifndef CN_REAL
#include <math.h>

#include "op_impl.h"

extern const cn_op cn_op_layernorm, cn_op_groupnorm, cn_op_instancenorm;

#define EPS_KEY                                                                                                   \
    { .name = "eps", .type = CN_KT_FLOAT, .offset = offsetof(cn_attrs, eps), .flags = CN_KEY_LO_OPEN, .def = "1e-5", \
      .hi = 1, .doc = "added to the variance" }
#define AFFINE_KEY(DEF, DOC)                                                                                      \
    { .name = "affine", .type = CN_KT_BOOL, .offset = offsetof(cn_attrs, affine), .def = DEF, .hi = 1, .doc = DOC }

static const char *const overs[] = { "all", "channels", NULL };
static const cn_key layer_keys[] = {
    EPS_KEY, AFFINE_KEY("yes", "learn a scale and a shift per value (per channel with over=channels) (yes|no)"),
    { .name = "over", .type = CN_KT_CHOICE, .offset = offsetof(cn_attrs, over), .def = "all",
      .doc = "all of each sample's values, or each position's channels (ConvNeXt's LayerNorm2d)", .choices = overs },
    CN_GAMMA_INIT_KEY,
    { 0 },
};
static const cn_key group_keys[] = {
    { .name = "groups", .type = CN_KT_INT, .offset = offsetof(cn_attrs, groups), .flags = CN_KEY_POS | CN_KEY_REQ,
      .lo = 1, .hi = CN_INT_MAX, .doc = "number of channel groups, dividing the channels" },
    EPS_KEY, AFFINE_KEY("yes", "learn a scale and a shift per channel (yes|no)"), CN_GAMMA_INIT_KEY, { 0 },
};
/* PyTorch's InstanceNorm2d has affine=False by default; so has this spelling */
static const cn_key instance_keys[] = {
    EPS_KEY, AFFINE_KEY("no", "learn a scale and a shift per channel (yes|no)"), CN_GAMMA_INIT_KEY, { 0 },
};

static int per_value(const cn_node *n) { return n->op == &cn_op_layernorm && n->a.over == CN_NORM_OVER_ALL; }

/* the scales (and shifts): one a value (layernorm) or a channel */
static int64_t affine_count(const cn_node *n)
{
    return per_value(n) ? n->out.c * n->out.h * n->out.w : n->out.c;
}

static cn_status infer(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    int64_t count;
    cn_infer_pointwise(ctx, file, n, in);
    if (n->op == &cn_op_layernorm) n->a.groups = 1;
    if (n->op == &cn_op_instancenorm) n->a.groups = n->out.c;
    if (n->out.c % n->a.groups)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "groups"),
                          "groupnorm: %lld groups do not divide the input's %lld channels", (long long)n->a.groups,
                          (long long)n->out.c);
    cn_status st = cn_dims_count(ctx, file, n, n->out, &count);
    if (st) return st;
    n->params = n->trainable = n->a.affine ? 2 * affine_count(n) : 0;
    return cn_check_gamma_init(ctx, file, n);
}

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in, (void)batch;
    long long g = (long long)n->a.groups, per = (long long)(n->out.c / n->a.groups);
    cn_sb_printf(sb, "    y = %s(x - mean) / sqrt(var + eps)%s; mean, var over each sample's ", n->a.affine ? "gamma * " : "",
                 n->a.affine ? " + beta" : "");
    if (cn_norm_over_channels(n)) cn_sb_printf(sb, "%lld channels at each of the %lldx%lld positions\n", (long long)n->out.c,
                                       (long long)n->out.h, (long long)n->out.w);
    else if (g == 1) cn_sb_printf(sb, "%lldx%lldx%lld values\n", (long long)n->out.h, (long long)n->out.w, (long long)n->out.c);
    else cn_sb_printf(sb, "%lld groups of %lld channel%s x %lldx%lld\n", g, per, per == 1 ? "" : "s",
                      (long long)n->out.h, (long long)n->out.w);
    if (n->a.affine)
        cn_sb_printf(sb, "    params = 2*%lld trainable (gamma, beta, one per %s) = %lld\n", (long long)affine_count(n),
                     per_value(n) ? "value" : "channel", (long long)n->params);
    else cn_sb_printf(sb, "    no parameters (affine=no)\n");
    if (n->a.affine && cn_key_given(n, "init")) cn_sb_printf(sb, "    gamma starts at %g (init=), beta at 0\n", n->a.init);
}

static int params(const cn_node *n, const cn_node *const *in, cn_param_spec *out)
{
    (void)in;
    if (!n->a.affine) return 0;
    int64_t c = affine_count(n);
    cn_param_spec w = { .name = "weight", .rank = 1, .shape = { c }, .count = c, .trainable = 1,
                        .init = cn_gamma_pinit(n), .value = n->a.init };
    /* PyTorch's LayerNorm([C, H, W]) has (C, H, W) tensors; LayerNorm(C) after a dense layer (C) */
    if (per_value(n) && n->out.h * n->out.w > 1)
        w.rank = 3, w.shape[0] = n->out.c, w.shape[1] = n->out.h, w.shape[2] = n->out.w;
    out[0] = w;
    out[1] = w;
    out[1].name = "bias", out[1].init = CN_PINIT_ZERO, out[1].value = 0;
    return 2;
}

/* aux: mean and 1/sqrt(var + eps) of each (sample, group), or (over=channels) of each (sample, position) */
static int64_t aux_bytes(const cn_node *n, const cn_node *const *in, int64_t batch, size_t real_size)
{
    (void)in;
    int64_t bytes, blocks = cn_norm_over_channels(n) ? n->out.h * n->out.w : n->a.groups;
    if (!cn_mul_ok(batch, 2 * blocks, &bytes) || !cn_mul_ok(bytes, (int64_t)real_size, &bytes)) return -1;
    return bytes;
}

#define CN_TEMPLATE_FILE "norm.c"
#include "template.h"

const cn_op cn_op_layernorm = {
    .name = "layernorm", .usage = "layernorm [eps=1e-5] [affine=yes|no] [over=all|channels] [init=1]",
    .help = "normalise each sample over all its values (or each position over its channels), then scale and shift",
    .keys = layer_keys,
    .inputs = 1, .infer = infer, .explain = explain, .params = params, .aux_bytes = aux_bytes,
    .forward = { groupnorm_forward_f32, groupnorm_forward_f64 },
    .backward = { groupnorm_backward_f32, groupnorm_backward_f64 },
};
const cn_op cn_op_groupnorm = {
    .name = "groupnorm", .usage = "groupnorm GROUPS [eps=1e-5] [affine=yes|no] [init=1]",
    .help = "normalise each group of channels of each sample, then scale and shift each channel", .keys = group_keys,
    .inputs = 1, .infer = infer, .explain = explain, .params = params, .aux_bytes = aux_bytes,
    .forward = { groupnorm_forward_f32, groupnorm_forward_f64 },
    .backward = { groupnorm_backward_f32, groupnorm_backward_f64 },
};
const cn_op cn_op_instancenorm = {
    .name = "instancenorm", .usage = "instancenorm [eps=1e-5] [affine=no|yes] [init=1]",
    .help = "normalise each channel of each sample (groupnorm with a group per channel)", .keys = instance_keys,
    .inputs = 1, .infer = infer, .explain = explain, .params = params, .aux_bytes = aux_bytes,
    .forward = { groupnorm_forward_f32, groupnorm_forward_f64 },
    .backward = { groupnorm_backward_f32, groupnorm_backward_f64 },
};

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,C,H,W) <- gamma * (x - mean) * inv + beta, mean and inv = 1/sqrt(var + eps) (biased
 * variance, two passes in double) over each sample's groups of C/G channels of H*W values;
 * w = gamma, beta (C, or C*H*W for layernorm; affine=no: none). aux (N,G,2) keeps mean, inv. */
static void CN_FN(channelnorm_forward)(const cn_op_io *io);
static void CN_FN(channelnorm_backward)(const cn_op_io *io);

static void CN_FN(groupnorm_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    if (cn_norm_over_channels(nd)) {
        CN_FN(channelnorm_forward)(io);
        return;
    }
    int64_t groups = nd->a.groups, hw = nd->out.h * nd->out.w, cpg = nd->out.c / groups, per = cpg * hw;
    int64_t scales = affine_count(nd);
    int each = per_value(nd);
    const CN_REAL *x = io->x[0], *gamma = nd->a.affine ? io->w : NULL;
    CN_REAL *y = io->y, *stats = io->aux;
    for (int64_t b = 0; b < io->batch * groups; b++) {
        const CN_REAL *xb = x + b * per;
        CN_REAL *yb = y + b * per;
        double m = 0, v = 0;
        for (int64_t i = 0; i < per; i++) m += xb[i];
        m /= (double)per;
        for (int64_t i = 0; i < per; i++) v += ((double)xb[i] - m) * ((double)xb[i] - m);
        double inv = 1.0 / sqrt(v / (double)per + nd->a.eps);
        for (int64_t k = 0; k < cpg; k++) {
            int64_t ch = b % groups * cpg + k; /* the channel within its sample */
            for (int64_t j = 0; j < hw; j++) {
                int64_t i = k * hw + j, s = each ? ch * hw + j : ch;
                double xh = ((double)xb[i] - m) * inv;
                yb[i] = (CN_REAL)(gamma ? gamma[s] * xh + gamma[scales + s] : xh);
            }
        }
        stats[2 * b] = (CN_REAL)m;
        stats[2 * b + 1] = (CN_REAL)inv;
    }
}

/* With xh = (x - mean) * inv and g = dy * gamma, over each group's M values:
 * dgamma += dy * xh, dbeta += dy (per value, or per channel summed in double);
 * dx (N,C,H,W) += inv * (g - mean(g) - xh * mean(g * xh)) */
static void CN_FN(groupnorm_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    if (cn_norm_over_channels(nd)) {
        CN_FN(channelnorm_backward)(io);
        return;
    }
    int64_t groups = nd->a.groups, hw = nd->out.h * nd->out.w, cpg = nd->out.c / groups, per = cpg * hw;
    int64_t scales = affine_count(nd);
    int each = per_value(nd);
    const CN_REAL *x = io->x[0], *dy = io->dy, *gamma = nd->a.affine ? io->w : NULL, *stats = io->aux;
    CN_REAL *dx = io->dx[0], *dgamma = gamma ? io->dw : NULL;
    for (int64_t b = 0; b < io->batch * groups; b++) {
        const CN_REAL *xb = x + b * per, *dyb = dy + b * per;
        double m = stats[2 * b], inv = stats[2 * b + 1], sg = 0, sgxh = 0;
        for (int64_t k = 0; k < cpg; k++) {
            int64_t ch = b % groups * cpg + k;
            double sdy = 0, sdyxh = 0; /* the channel's share of dbeta, dgamma */
            for (int64_t j = 0; j < hw; j++) {
                int64_t i = k * hw + j, s = each ? ch * hw + j : ch;
                double xh = ((double)xb[i] - m) * inv, g = gamma ? gamma[s] * (double)dyb[i] : dyb[i];
                sg += g, sgxh += g * xh;
                if (dgamma && each) dgamma[s] += (CN_REAL)(dyb[i] * xh), dgamma[scales + s] += dyb[i];
                sdy += dyb[i], sdyxh += dyb[i] * xh;
            }
            if (dgamma && !each) dgamma[ch] += (CN_REAL)sdyxh, dgamma[scales + ch] += (CN_REAL)sdy;
        }
        if (!dx) continue;
        CN_REAL *dxb = dx + b * per;
        for (int64_t k = 0; k < cpg; k++) {
            int64_t ch = b % groups * cpg + k;
            for (int64_t j = 0; j < hw; j++) {
                int64_t i = k * hw + j, s = each ? ch * hw + j : ch;
                double xh = ((double)xb[i] - m) * inv, g = gamma ? gamma[s] * (double)dyb[i] : dyb[i];
                dxb[i] += (CN_REAL)(inv * (g - sg / (double)per - xh * sgxh / (double)per));
            }
        }
    }
}

/* over=channels: y (N,C,H,W) <- gamma[c] * (x - mean) * inv + beta[c], mean and inv over the C
 * values of each (sample, position) (two passes in double, the channels in order); aux (N,HW,2) */
static void CN_FN(channelnorm_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w;
    const CN_REAL *gamma = nd->a.affine ? io->w : NULL, *x0 = io->x[0];
    CN_REAL *y0 = io->y, *aux = io->aux;
    for (int64_t s = 0; s < io->batch; s++) {
        const CN_REAL *x = x0 + s * c * hw;
        CN_REAL *y = y0 + s * c * hw, *stats = aux + 2 * s * hw;
        for (int64_t p = 0; p < hw; p++) {
            double m = 0, v = 0;
            for (int64_t k = 0; k < c; k++) m += x[k * hw + p];
            m /= (double)c;
            for (int64_t k = 0; k < c; k++) v += ((double)x[k * hw + p] - m) * ((double)x[k * hw + p] - m);
            double inv = 1.0 / sqrt(v / (double)c + nd->a.eps);
            for (int64_t k = 0; k < c; k++) {
                double xh = ((double)x[k * hw + p] - m) * inv;
                y[k * hw + p] = (CN_REAL)(gamma ? gamma[k] * xh + gamma[c + k] : xh);
            }
            stats[2 * p] = (CN_REAL)m;
            stats[2 * p + 1] = (CN_REAL)inv;
        }
    }
}

/* With xh and g = dy * gamma[c] at each position: dgamma[c] += the sample's sum of dy * xh,
 * dbeta[c] += of dy (in double, positions in order); dx += inv * (g - mean(g) - xh * mean(g * xh))
 * over the position's channels */
static void CN_FN(channelnorm_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t c = nd->out.c, hw = nd->out.h * nd->out.w;
    const CN_REAL *gamma = nd->a.affine ? io->w : NULL, *x0 = io->x[0], *dy0 = io->dy, *aux = io->aux;
    CN_REAL *dgamma = io->dw, *dx0 = io->dx[0];
    for (int64_t s = 0; s < io->batch; s++) {
        const CN_REAL *x = x0 + s * c * hw, *dy = dy0 + s * c * hw, *stats = aux + 2 * s * hw;
        for (int64_t k = 0; gamma && k < c; k++) {
            double sdy = 0, sdyxh = 0;
            for (int64_t p = 0; p < hw; p++) {
                double xh = ((double)x[k * hw + p] - stats[2 * p]) * stats[2 * p + 1];
                sdy += dy[k * hw + p], sdyxh += dy[k * hw + p] * xh;
            }
            dgamma[k] += (CN_REAL)sdyxh, dgamma[c + k] += (CN_REAL)sdy;
        }
        if (!dx0) continue;
        CN_REAL *dx = dx0 + s * c * hw;
        for (int64_t p = 0; p < hw; p++) {
            double m = stats[2 * p], inv = stats[2 * p + 1], sg = 0, sgxh = 0;
            for (int64_t pass = 0; pass < 2; pass++)
                for (int64_t k = 0; k < c; k++) {
                    double xh = ((double)x[k * hw + p] - m) * inv, g = gamma ? gamma[k] * (double)dy[k * hw + p] : dy[k * hw + p];
                    if (pass == 0) sg += g, sgxh += g * xh;
                    else dx[k * hw + p] += (CN_REAL)(inv * (g - sg / (double)c - xh * sgxh / (double)c));
                }
        }
    }
}

#endif
