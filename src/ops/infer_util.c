/* infer_util.c — shape, receptive-field and explanation helpers shared by the op files.
 * Covered by tests/test_shapes.c and the seed worksheets in tests/test_seeds.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "op_impl.h"

const cn_key cn_no_keys[] = { { 0 } };

int cn_key_col(const cn_node *n, const char *name)
{
    int k = cn_op_key_index(n->op, name);
    return k >= 0 && n->key_col[k] ? n->key_col[k] : n->col;
}

int cn_key_given(const cn_node *n, const char *name)
{
    int k = cn_op_key_index(n->op, name);
    return k >= 0 && n->key_col[k] != 0;
}

const char *const cn_winit_words[] = { "net",   "kaiming", "kaiming-uniform", "xavier", "xavier-uniform",
                                       "torch", "zero",    "normal",          "trunc-normal", NULL };

cn_status cn_check_weight_init(cn_ctx *ctx, const char *file, const cn_node *n)
{
    if (cn_key_given(n, "std") && n->a.winit != CN_WINIT_NORMAL && n->a.winit != CN_WINIT_TRUNC_NORMAL)
        return cn_fail_at(ctx, CN_E_PARSE, file, n->line, cn_key_col(n, "std"),
                          "%s: std= is read by init=normal and init=trunc-normal (init=%s)", n->op->name,
                          cn_winit_words[n->a.winit]);
    return CN_OK;
}

cn_status cn_check_gamma_init(cn_ctx *ctx, const char *file, const cn_node *n)
{
    if (cn_key_given(n, "init") && !n->a.affine)
        return cn_fail_at(ctx, CN_E_PARSE, file, n->line, cn_key_col(n, "init"),
                          "%s: init= is where gamma starts, and affine=no has no gamma", n->op->name);
    return CN_OK;
}

int cn_weight_init_specs(const cn_node *n, cn_param_spec *specs, int k)
{
    specs[0].winit = (cn_winit)n->a.winit, specs[0].std = n->a.std;
    if (k == 2 && (n->a.winit == CN_WINIT_NET || n->a.winit == CN_WINIT_TORCH))
        specs[1].init = CN_PINIT_WEIGHT, specs[1].winit = (cn_winit)n->a.winit, specs[1].bias = 1,
        specs[1].fan_in = specs[0].fan_in;
    return k;
}

void cn_explain_weight_init(const cn_node *n, int64_t fan_in, int64_t fan_out, cn_strbuf *sb)
{
    if (!cn_key_given(n, "init")) return;
    double fi = (double)fan_in, fo = (double)fan_out, sd = n->a.std;
    long long i = (long long)fan_in, o = (long long)fan_out;
    cn_sb_printf(sb, "    weights start (init=%s): ", cn_winit_words[n->a.winit]);
    switch ((cn_winit)n->a.winit) {
    case CN_WINIT_NET: cn_sb_printf(sb, "as the net's initializer (--init) draws them\n"); break;
    case CN_WINIT_KAIMING:
        cn_sb_printf(sb, "N(0, 2/fan_in) = N(0, 2/%lld), std %.4g (He et al.: for ReLU)\n", i, sqrt(2 / fi));
        break;
    case CN_WINIT_KAIMING_UNIFORM:
        cn_sb_printf(sb, "U(-b, b), b = sqrt(6/fan_in) = sqrt(6/%lld) = %.4g\n", i, sqrt(6 / fi));
        break;
    case CN_WINIT_XAVIER:
        cn_sb_printf(sb, "N(0, 2/(fan_in + fan_out)) = N(0, 2/(%lld + %lld)), std %.4g (Glorot and Bengio)\n", i, o,
                     sqrt(2 / (fi + fo)));
        break;
    case CN_WINIT_XAVIER_UNIFORM:
        cn_sb_printf(sb, "U(-b, b), b = sqrt(6/(fan_in + fan_out)) = sqrt(6/(%lld + %lld)) = %.4g\n", i, o,
                     sqrt(6 / (fi + fo)));
        break;
    case CN_WINIT_NORMAL: cn_sb_printf(sb, "N(0, %g^2)\n", sd); break;
    case CN_WINIT_TRUNC_NORMAL:
        /* the std of a unit normal cut at +-2: sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)) = 0.8796 */
        cn_sb_printf(sb, "N(0, %g^2) drawn again past +-%g (2 std): std %.4g\n", sd, 2 * sd, 0.879626 * sd);
        break;
    case CN_WINIT_TORCH:
        cn_sb_printf(sb, "weights%s from U(-b, b), b = 1/sqrt(fan_in) = 1/sqrt(%lld) = %.4g (PyTorch's default)\n",
                     n->a.bias ? " and bias" : "", i, 1 / sqrt(fi));
        break;
    case CN_WINIT_ZERO:
        cn_sb_printf(sb, "all 0: its units start the same; only the weights after it can give them different gradients\n");
        break;
    }
}

cn_status cn_dims_count(cn_ctx *ctx, const char *file, const cn_node *n, cn_dims d, int64_t *count)
{
    int64_t hw, chw, bytes;
    if (!cn_mul_ok(d.h, d.w, &hw) || !cn_mul_ok(hw, d.c, &chw))
        return cn_fail_at(ctx, CN_E_OVERFLOW, file, n->line, n->col,
                          "%s: output %lldx%lldx%lld has more elements than 64 bits can count", n->op->name,
                          (long long)d.h, (long long)d.w, (long long)d.c);
    if (!cn_mul_ok(chw, (int64_t)sizeof(float), &bytes))
        return cn_fail_at(ctx, CN_E_OVERFLOW, file, n->line, n->col,
                          "%s: output %lldx%lldx%lld takes more bytes than 64 bits can count", n->op->name,
                          (long long)d.h, (long long)d.w, (long long)d.c);
    *count = chw;
    return CN_OK;
}

cn_status cn_infer_pointwise(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in)
{
    (void)ctx, (void)file;
    n->out = in[0]->out;
    n->rf_h = in[0]->rf_h, n->rf_w = in[0]->rf_w;
    n->jump_h = in[0]->jump_h, n->jump_w = in[0]->jump_w;
    n->span_h = in[0]->span_h, n->span_w = in[0]->span_w;
    return CN_OK;
}

void cn_explain_pointwise(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)batch, (void)in;
    cn_sb_printf(sb, "    elementwise: output shape = input shape %lldx%lldx%lld, no parameters\n",
                 (long long)n->out.h, (long long)n->out.w, (long long)n->out.c);
}

/* The one place the sliding-window output size is computed (see op_impl.h). */
int cn_window_dim(cn_pad_mode mode, int64_t in, int64_t k, int64_t s, int64_t d, int64_t p, int ceil_mode,
                  int64_t *out, int64_t *lo, int64_t *hi)
{
    int64_t keff = d * (k - 1) + 1;
    if (mode == CN_PAD_SAME) {
        /* TensorFlow: out = ceil(in / s); the odd padded row or column goes to the bottom/right */
        *out = (in + s - 1) / s;
        int64_t total = (*out - 1) * s + keff - in;
        if (total < 0) total = 0;
        *lo = total / 2;
        *hi = total - *lo;
        return 1;
    }
    if (mode == CN_PAD_VALID) p = 0;
    *lo = *hi = p;
    if (keff > in + 2 * p) return 0;
    int64_t span = in + 2 * p - keff;
    *out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* as PyTorch: a ceil window must start inside the input or its left padding */
    if (ceil_mode && (*out - 1) * s >= in + p) (*out)--;
    if (ceil_mode) *hi = (*out - 1) * s + keff - in - p > p ? (*out - 1) * s + keff - in - p : p;
    return 1;
}

cn_status cn_window_shape(cn_ctx *ctx, const char *file, cn_node *n, cn_dims in, cn_pair k, cn_pair s, cn_pair d,
                          int ceil_mode, int64_t *oh, int64_t *ow)
{
    const cn_pad *pad = &n->a.pad;
    int okh = cn_window_dim(pad->mode, in.h, k.h, s.h, d.h, pad->h, ceil_mode, oh, &n->pad_t, &n->pad_b);
    int okw = cn_window_dim(pad->mode, in.w, k.w, s.w, d.w, pad->w, ceil_mode, ow, &n->pad_l, &n->pad_r);
    if (okh && okw) return CN_OK;
    int64_t ph = pad->mode == CN_PAD_VALID ? 0 : pad->h, pw = pad->mode == CN_PAD_VALID ? 0 : pad->w;
    int64_t keh = d.h * (k.h - 1) + 1, kew = d.w * (k.w - 1) + 1;
    if (keh != k.h || kew != k.w)
        return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "kernel"),
                          "%s: dilated kernel %lldx%lld (%lldx%lld, dilation %lldx%lld) larger than padded input "
                          "%lldx%lld",
                          n->op->name, (long long)keh, (long long)kew, (long long)k.h, (long long)k.w,
                          (long long)d.h, (long long)d.w, (long long)(in.h + 2 * ph), (long long)(in.w + 2 * pw));
    return cn_fail_at(ctx, CN_E_SHAPE, file, n->line, cn_key_col(n, "kernel"),
                      "%s: kernel %lldx%lld larger than padded input %lldx%lld", n->op->name, (long long)k.h,
                      (long long)k.w, (long long)(in.h + 2 * ph), (long long)(in.w + 2 * pw));
}

static int64_t sat_add(int64_t a, int64_t b) { int64_t r; return cn_add_ok(a, b, &r) ? r : INT64_MAX; }
static int64_t sat_mul(int64_t a, int64_t b) { int64_t r; return cn_mul_ok(a, b, &r) ? r : INT64_MAX; }

void cn_rf_window(cn_node *n, const cn_node *in, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                  int64_t dw)
{
    /* rf_out = rf_in + (k_eff - 1) * jump_in ; jump_out = jump_in * stride (saturating: absurd specs
     * may not overflow here) */
    n->rf_h = sat_add(in->rf_h, sat_mul(sat_mul(dh, kh - 1), in->jump_h));
    n->rf_w = sat_add(in->rf_w, sat_mul(sat_mul(dw, kw - 1), in->jump_w));
    n->jump_h = sat_mul(in->jump_h, sh);
    n->jump_w = sat_mul(in->jump_w, sw);
}

static void explain_dim(char *buf, size_t cap, const cn_node *n, int64_t in, int64_t k, int64_t s, int64_t d,
                        int64_t p, int64_t lo, int64_t hi, int64_t out)
{
    cn_strbuf sb;
    cn_sb_init(&sb, buf, cap);
    if (n->a.pad.mode == CN_PAD_SAME) {
        cn_sb_printf(&sb, "ceil(%lld/%lld) = %lld   (pad=same: ", (long long)in, (long long)s, (long long)out);
        if (lo + hi == 0) cn_sb_printf(&sb, "no padding needed)");
        else cn_sb_printf(&sb, "%lld padded, %lld before + %lld after)", (long long)(lo + hi), (long long)lo,
                          (long long)hi);
        return;
    }
    const char *rnd = n->a.ceil ? "ceil" : "floor";
    if (d == 1)
        cn_sb_printf(&sb, "%s((%lld - %lld + 2*%lld)/%lld) + 1 = %lld", rnd, (long long)in, (long long)k,
                     (long long)p, (long long)s, (long long)out);
    else
        cn_sb_printf(&sb, "%s((%lld - %lld*%lld + %lld - 1 + 2*%lld)/%lld) + 1 = %lld", rnd, (long long)in,
                     (long long)k, (long long)d, (long long)d, (long long)p, (long long)s, (long long)out);
    if (n->a.ceil && hi > lo) cn_sb_printf(&sb, "   (the last window overhangs by %lld)", (long long)(hi - lo));
}

void cn_explain_window(const cn_node *n, const cn_node *in, cn_strbuf *sb)
{
    char bh[256], bw[256];
    const cn_attrs *a = &n->a;
    int64_t ph = a->pad.mode == CN_PAD_VALID ? 0 : a->pad.h, pw = a->pad.mode == CN_PAD_VALID ? 0 : a->pad.w;
    int64_t dh = a->dilation.h ? a->dilation.h : 1, dw = a->dilation.w ? a->dilation.w : 1;
    explain_dim(bh, sizeof bh, n, in->out.h, a->kernel.h, a->stride.h, dh, ph, n->pad_t, n->pad_b, n->out.h);
    explain_dim(bw, sizeof bw, n, in->out.w, a->kernel.w, a->stride.w, dw, pw, n->pad_l, n->pad_r, n->out.w);
    if (strcmp(bh, bw) == 0) {
        cn_sb_printf(sb, "    O = %s\n", bh);
    } else {
        cn_sb_printf(sb, "    O_h = %s\n", bh);
        cn_sb_printf(sb, "    O_w = %s\n", bw);
    }
}

void cn_sb_ratio(cn_strbuf *sb, int64_t num, int64_t den)
{
    if (den <= 1 || num % den == 0) {
        cn_sb_printf(sb, "%lld", (long long)(den > 1 ? num / den : num));
        return;
    }
    char text[48];
    int len = snprintf(text, sizeof text, "%.2f", (double)num / (double)den);
    while (len > 0 && text[len - 1] == '0') text[--len] = '\0'; /* 1.50 -> 1.5 */
    cn_sb_printf(sb, "%s", text);
}

/* "3", "1.5" or "3x1.5": a field or jump per dimension */
static void ratio_pair(cn_strbuf *sb, int64_t h, int64_t dh, int64_t w, int64_t dw)
{
    cn_sb_ratio(sb, h, dh);
    if (sat_mul(h, dw) != sat_mul(w, dh)) cn_sb_printf(sb, "x"), cn_sb_ratio(sb, w, dw);
}

void cn_explain_rf_change(const cn_node *n, const cn_node *in, cn_strbuf *sb)
{
    cn_sb_printf(sb, "    RF = ");
    ratio_pair(sb, in->rf_h, in->den_h, in->rf_w, in->den_w);
    cn_sb_printf(sb, " -> ");
    ratio_pair(sb, n->rf_h, n->den_h, n->rf_w, n->den_w);
    cn_sb_printf(sb, ", jump = ");
    ratio_pair(sb, in->jump_h, in->den_h, in->jump_w, in->den_w);
    cn_sb_printf(sb, " -> ");
    ratio_pair(sb, n->jump_h, n->den_h, n->jump_w, n->den_w);
    cn_sb_printf(sb, " input pixels\n");
}

void cn_explain_rf(const cn_node *n, const cn_node *in, cn_strbuf *sb)
{
    if (n->den_h > 1 || n->den_w > 1 || in->den_h > 1 || in->den_w > 1) {
        /* fractional after an upsampling: the values only */
        cn_explain_rf_change(n, in, sb);
        return;
    }
    if (n->rf_h == n->rf_w && in->rf_h == in->rf_w && in->jump_h == in->jump_w && n->jump_h == n->jump_w)
        cn_sb_printf(sb, "    RF = %lld + (%lld - 1)*%lld = %lld, jump = %lld*%lld = %lld\n", (long long)in->rf_h,
                     (long long)((n->rf_h - in->rf_h) / in->jump_h + 1), (long long)in->jump_h, (long long)n->rf_h,
                     (long long)in->jump_h, (long long)(n->jump_h / in->jump_h), (long long)n->jump_h);
    else
        cn_sb_printf(sb, "    RF = %lldx%lld, jump = %lldx%lld\n", (long long)n->rf_h, (long long)n->rf_w,
                     (long long)n->jump_h, (long long)n->jump_w);
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* one dimension of cn_rf_upsample: rf/den and jump/den in, the same out */
static void rf_upsample_dim(int64_t rf, int64_t jump, int64_t den, int64_t from, int64_t to, int64_t taps_in,
                            int64_t taps_out, int64_t *rf_out, int64_t *jump_out, int64_t *den_out)
{
    if (den < 1) den = 1;
    rf = sat_add(rf, sat_mul(taps_in - 1, jump));
    /* rf/den -> rf*to / (den*to); jump/den * from/to -> jump*from / (den*to) */
    rf = sat_mul(rf, to);
    jump = sat_mul(jump, from);
    den = sat_mul(den, to);
    rf = sat_add(rf, sat_mul(taps_out - 1, jump));
    int64_t g = gcd64(gcd64(rf, jump), den);
    if (g > 1) rf /= g, jump /= g, den /= g;
    *rf_out = rf, *jump_out = jump, *den_out = den;
}

void cn_rf_upsample(cn_node *n, const cn_node *in, cn_pair from, cn_pair to, cn_pair taps_in, cn_pair taps_out)
{
    rf_upsample_dim(in->rf_h, in->jump_h, in->den_h, from.h, to.h, taps_in.h, taps_out.h, &n->rf_h, &n->jump_h,
                    &n->den_h);
    rf_upsample_dim(in->rf_w, in->jump_w, in->den_w, from.w, to.w, taps_in.w, taps_out.w, &n->rf_w, &n->jump_w,
                    &n->den_w);
}

/* a/da < b/db, without overflow for the sizes that occur (saturating products) */
static int ratio_less(int64_t a, int64_t da, int64_t b, int64_t db)
{
    return sat_mul(a, db) < sat_mul(b, da);
}

void cn_rf_merge(cn_node *n, const cn_node *const *in)
{
    /* the largest field and jump of the inputs, over the least common denominator; a 1x1 map
     * broadcast over the output's planes (add, mul) brings its field but not its jump: the
     * output's neighbours are the full-size inputs' */
    int64_t dh = 1, dw = 1;
    for (int i = 0; i < n->n_in; i++) {
        int64_t ih = in[i]->den_h > 0 ? in[i]->den_h : 1, iw = in[i]->den_w > 0 ? in[i]->den_w : 1;
        dh = sat_mul(dh / gcd64(dh, ih), ih);
        dw = sat_mul(dw / gcd64(dw, iw), iw);
    }
    int64_t rh = 0, rw = 0, jh = 0, jw = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t ih = in[i]->den_h > 0 ? in[i]->den_h : 1, iw = in[i]->den_w > 0 ? in[i]->den_w : 1;
        if (ratio_less(rh, dh, in[i]->rf_h, ih)) rh = sat_mul(in[i]->rf_h, dh / ih);
        if (ratio_less(rw, dw, in[i]->rf_w, iw)) rw = sat_mul(in[i]->rf_w, dw / iw);
        if (in[i]->out.h != n->out.h || in[i]->out.w != n->out.w) continue;
        if (ratio_less(jh, dh, in[i]->jump_h, ih)) jh = sat_mul(in[i]->jump_h, dh / ih);
        if (ratio_less(jw, dw, in[i]->jump_w, iw)) jw = sat_mul(in[i]->jump_w, dw / iw);
    }
    n->rf_h = rh, n->rf_w = rw, n->jump_h = jh, n->jump_w = jw, n->den_h = dh, n->den_w = dw;
}

void cn_explain_product(cn_strbuf *sb, int64_t a, int64_t b)
{
    int64_t r;
    if (cn_mul_ok(a, b, &r)) cn_sb_count(sb, r);
    else cn_sb_printf(sb, "(more than 2^63)");
}

void cn_explain_batch(cn_strbuf *sb, int64_t batch)
{
    if (batch > 1) cn_sb_printf(sb, "%lld*", (long long)batch);
}
