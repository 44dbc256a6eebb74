/* trace.c — `convnet trace`: one training step of a small net worked out as the lecture notes
 * work it: every layer's weighted sums and activations with the numbers filled in, the loss,
 * the backward pass as products of the chain rule (a convolution weight's gradient as the sum
 * of its contributions over the positions it was used at), and the update of every parameter.
 * The numbers are the engine's own (cn_net_forward, cn_net_backward, cn_optim_step: the same
 * kernels as training); each printed line "name = expression = value" recomputes to its value
 * from the printed operands (tests/worksheet_test.sh and tests/trace_check.py check it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"

/* trace prints every product: beyond this many terms it is no longer a worked example */
#define TRACE_MAX_TERMS 20000
#define TRACE_MAX_JSON_VALUES 1000000

typedef struct {
    cn_ctx *ctx;
    cn_net *net;
    int n;          /* layers */
    int64_t batch;
    int json;
    int *readers;   /* readers[i]: how many layers read layer i's output */
} tracer;

/* an operand inside an expression: negative numbers in parentheses, so "2*(-1)" reads right */
static void num(double v) { printf(v < 0 ? "(%.6g)" : "%.6g", v); }
/* a function's argument, which needs no parentheses: max(0, -1) */
static void arg(double v) { printf("%.6g", v); }
/* a result at the end of a line */
static void res(double v) { printf(" = %.6g\n", v); }

static int64_t per_sample(const cn_layer_info *li) { return li->c * li->h * li->w; }

/* the layer's parameter tensor "<layer>.<name>", NULL data when it has none */
static cn_tensor param(const tracer *t, const char *layer, const char *name)
{
    char full[512];
    cn_tensor x = { 0 };
    snprintf(full, sizeof full, "%s.%s", layer, name);
    if (cn_net_find_tensor(t->ctx, t->net, full, &x)) memset(&x, 0, sizeof x);
    return x;
}

static double key1(const tracer *t, int i, const char *key, double def)
{
    double v[2] = { def, def };
    return cn_net_layer_key(t->net, i, key, v) ? v[0] : def;
}

static void key2(const tracer *t, int i, const char *key, double def, int64_t out[2])
{
    double v[2] = { def, def };
    int k = cn_net_layer_key(t->net, i, key, v);
    out[0] = (int64_t)v[0], out[1] = (int64_t)(k == 2 ? v[1] : v[0]);
}

/* the geometry of a windowed layer (conv, pooling) */
typedef struct {
    int64_t k[2], s[2], p[2], d[2], groups;
} window;

static window window_of(const tracer *t, int i)
{
    window w;
    key2(t, i, "kernel", 1, w.k);
    key2(t, i, "stride", 1, w.s);
    key2(t, i, "pad", 0, w.p);
    key2(t, i, "dilation", 1, w.d);
    w.groups = (int64_t)key1(t, i, "groups", 1);
    return w;
}

/* ---- forward: the worked formula of a layer, one line per value ------------------------------- */

typedef struct {
    const tracer *t;
    int i;                    /* the layer */
    int in_i;                 /* its (first) input layer, -1 for the input layer */
    cn_layer_info li, in;     /* it and its (first) input */
    const float *x, *y;       /* input and output values, (N, C, H, W) */
    const float *dy;          /* backward: the gradient of its output */
} layer_ctx;

static void fwd_dense(const layer_ctx *l)
{
    cn_tensor W = param(l->t, l->li.name, "weight"), b = param(l->t, l->li.name, "bias");
    int64_t in = per_sample(&l->in), out = per_sample(&l->li);
    printf("  z_j = sum_k x_k * w[j,k]%s   (W is %lldx%lld: out x in)\n", b.data ? " + b_j" : "", (long long)out,
           (long long)in);
    for (int64_t s = 0; s < l->t->batch; s++) {
        if (l->t->batch > 1) printf("  sample %lld:\n", (long long)s + 1);
        for (int64_t j = 0; j < out; j++) {
            printf("    z%lld = ", (long long)j + 1);
            for (int64_t k = 0; k < in; k++) {
                if (k) printf(" + ");
                num(l->x[s * in + k]), printf("*"), num(W.data[j * in + k]);
            }
            if (b.data) printf(" + "), num(b.data[j]);
            res(l->y[s * out + j]);
        }
    }
}

/* the input value under tap (ky, kx) of output (oy, ox), or 0 in the padding; *inside says which */
static double tap(const float *x, int64_t h, int64_t w, const window *g, int64_t oy, int64_t ox, int64_t ky, int64_t kx,
                  int *inside)
{
    int64_t iy = oy * g->s[0] - g->p[0] + ky * g->d[0], ix = ox * g->s[1] - g->p[1] + kx * g->d[1];
    *inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
    return *inside ? x[iy * w + ix] : 0.0;
}

static void fwd_conv(const layer_ctx *l)
{
    cn_tensor W = param(l->t, l->li.name, "weight"), b = param(l->t, l->li.name, "bias");
    window g = window_of(l->t, l->i);
    int64_t cin = l->in.c, cout = l->li.c, cg = cin / g.groups, og = cout / g.groups;
    printf("  y[c](i,j) = sum over the kernel's taps of x * w%s (stride %lldx%lld, pad %lldx%lld; padding reads 0)\n",
           b.data ? " + b[c]" : "", (long long)g.s[0], (long long)g.s[1], (long long)g.p[0], (long long)g.p[1]);
    for (int64_t s = 0; s < l->t->batch; s++)
        for (int64_t co = 0; co < cout; co++) {
            if (l->t->batch > 1 || cout > 1) printf("  sample %lld, filter %lld:\n", (long long)s + 1, (long long)co + 1);
            for (int64_t oy = 0; oy < l->li.h; oy++)
                for (int64_t ox = 0; ox < l->li.w; ox++) {
                    printf("    y[%lld](%lld,%lld) = ", (long long)co + 1, (long long)oy + 1, (long long)ox + 1);
                    int first = 1;
                    for (int64_t ci = 0; ci < cg; ci++) {
                        const float *xc = l->x + ((s * cin) + (co / og) * cg + ci) * l->in.h * l->in.w;
                        for (int64_t ky = 0; ky < g.k[0]; ky++)
                            for (int64_t kx = 0; kx < g.k[1]; kx++) {
                                int inside;
                                double v = tap(xc, l->in.h, l->in.w, &g, oy, ox, ky, kx, &inside);
                                if (!first) printf(" + ");
                                num(v), printf("*"), num(W.data[((co * cg + ci) * g.k[0] + ky) * g.k[1] + kx]);
                                first = 0;
                            }
                    }
                    if (b.data) printf(" + "), num(b.data[co]);
                    res(l->y[((s * cout + co) * l->li.h + oy) * l->li.w + ox]);
                }
        }
}

/* elementwise layers: one line per value, "a_k = f(z_k) = value" */
static void fwd_elementwise(const layer_ctx *l)
{
    const char *type = l->li.type;
    double slope = key1(l->t, l->i, "slope", 0.01);
    int64_t n = per_sample(&l->li);
    double alpha = key1(l->t, l->i, "alpha", 1.0);
    if (!strcmp(type, "relu")) printf("  a = max(0, z)\n");
    else if (!strcmp(type, "leakyrelu")) printf("  a = max(z, %g * z)\n", slope);
    else if (!strcmp(type, "sigmoid")) printf("  a = 1 / (1 + e^(-z))\n");
    else if (!strcmp(type, "relu6")) printf("  a = min(max(0, z), 6)\n");
    else if (!strcmp(type, "hardsigmoid")) printf("  a = min(max(0, z/6 + 0.5), 1)\n");
    else if (!strcmp(type, "hardswish")) printf("  a = z * min(max(0, z/6 + 0.5), 1)\n");
    else if (!strcmp(type, "silu")) printf("  a = z / (1 + e^(-z))   (z * sigmoid(z))\n");
    else if (!strcmp(type, "elu")) printf("  a = z if z > 0, else %g * (e^z - 1)\n", alpha);
    else printf("  a = tanh(z)\n");
    for (int64_t s = 0; s < l->t->batch; s++) {
        if (l->t->batch > 1) printf("  sample %lld:\n", (long long)s + 1);
        for (int64_t k = 0; k < n; k++) {
            double z = l->x[s * n + k];
            printf("    a%lld = ", (long long)k + 1);
            if (!strcmp(type, "relu")) printf("max(0, "), arg(z), printf(")");
            else if (!strcmp(type, "leakyrelu")) printf("max("), arg(z), printf(", %g*", slope), num(z), printf(")");
            else if (!strcmp(type, "sigmoid")) printf("1 / (1 + e^("), arg(-z), printf("))");
            else if (!strcmp(type, "relu6")) printf("min(max(0, "), arg(z), printf("), 6)");
            else if (!strcmp(type, "hardsigmoid")) printf("min(max(0, "), num(z), printf("/6 + 0.5), 1)");
            else if (!strcmp(type, "hardswish")) num(z), printf("*min(max(0, "), num(z), printf("/6 + 0.5), 1)");
            else if (!strcmp(type, "silu")) num(z), printf(" / (1 + e^("), arg(-z), printf("))");
            else if (!strcmp(type, "elu") && z > 0) arg(z);
            else if (!strcmp(type, "elu")) printf("%g*(e^(", alpha), arg(z), printf(") - 1)");
            else printf("tanh("), arg(z), printf(")");
            res(l->y[s * n + k]);
        }
    }
}

/* an average's divisor, as PyTorch takes it: the window's cells inside the padded input
 * (count_pad), or inside the input alone */
static int64_t window_cells(const window *g, int64_t oy, int64_t ox, int64_t h, int64_t w, int count_pad)
{
    int64_t n = 0, lo_y = count_pad ? -g->p[0] : 0, hi_y = count_pad ? h + g->p[0] : h;
    int64_t lo_x = count_pad ? -g->p[1] : 0, hi_x = count_pad ? w + g->p[1] : w;
    for (int64_t ky = 0; ky < g->k[0]; ky++)
        for (int64_t kx = 0; kx < g->k[1]; kx++) {
            int64_t y = oy * g->s[0] - g->p[0] + ky * g->d[0], x = ox * g->s[1] - g->p[1] + kx * g->d[1];
            n += y >= lo_y && y < hi_y && x >= lo_x && x < hi_x;
        }
    return n;
}

static void fwd_pool(const layer_ctx *l)
{
    window g = window_of(l->t, l->i);
    const char *type = l->li.type;
    int avg = !strcmp(type, "avgpool");
    int count_pad = key1(l->t, l->i, "count_pad", 1) != 0; /* avgpool: padded cells in the divisor */
    printf("  each output is the %s of its %lldx%lld window%s\n", avg ? "average" : !strcmp(type, "maxpool") ? "largest" : "smallest",
           (long long)g.k[0], (long long)g.k[1],
           avg && (g.p[0] || g.p[1]) ? count_pad ? " (padding counted as 0)" : " (padding left out of the count)" : "");
    for (int64_t s = 0; s < l->t->batch; s++)
        for (int64_t c = 0; c < l->li.c; c++) {
            if (l->t->batch > 1 || l->li.c > 1) printf("  sample %lld, channel %lld:\n", (long long)s + 1, (long long)c + 1);
            const float *xc = l->x + (s * l->in.c + c) * l->in.h * l->in.w;
            for (int64_t oy = 0; oy < l->li.h; oy++)
                for (int64_t ox = 0; ox < l->li.w; ox++) {
                    printf("    y(%lld,%lld) = %s(", (long long)oy + 1, (long long)ox + 1, avg ? "" : type[1] == 'a' ? "max" : "min");
                    int first = 1;
                    for (int64_t ky = 0; ky < g.k[0]; ky++)
                        for (int64_t kx = 0; kx < g.k[1]; kx++) {
                            int inside;
                            double v = tap(xc, l->in.h, l->in.w, &g, oy, ox, ky, kx, &inside);
                            if (!inside) continue; /* padding adds nothing (and is not max/min) */
                            printf("%s", first ? "" : avg ? " + " : ", ");
                            num(v);
                            first = 0;
                        }
                    printf(")");
                    if (avg) printf(" / %lld", (long long)window_cells(&g, oy, ox, l->in.h, l->in.w, count_pad));
                    res(l->y[((s * l->li.c + c) * l->li.h + oy) * l->li.w + ox]);
                }
        }
}

static void fwd_softmax(const layer_ctx *l)
{
    int64_t n = per_sample(&l->li);
    printf("  p_k = e^(z_k) / sum_j e^(z_j)\n");
    for (int64_t s = 0; s < l->t->batch; s++) {
        if (l->t->batch > 1) printf("  sample %lld:\n", (long long)s + 1);
        for (int64_t k = 0; k < n; k++) {
            printf("    p%lld = e^(", (long long)k + 1), arg(l->x[s * n + k]), printf(") / (");
            for (int64_t j = 0; j < n; j++) printf("%se^(", j ? " + " : ""), arg(l->x[s * n + j]), printf(")");
            printf(")");
            res(l->y[s * n + k]);
        }
    }
}

static void print_values(const char *what, const float *v, int64_t batch, int64_t n)
{
    for (int64_t s = 0; s < batch; s++) {
        printf("  %s%s", what, batch > 1 ? " (sample " : "");
        if (batch > 1) printf("%lld)", (long long)s + 1);
        printf(": [");
        for (int64_t k = 0; k < n; k++) printf("%s%.6g", k ? ", " : "", v[s * n + k]);
        printf("]\n");
    }
}

static void fwd_other(const layer_ctx *l)
{
    if (!strcmp(l->li.type, "flatten")) printf("  the values in order, reshaped to %lld per sample\n", (long long)per_sample(&l->li));
    else printf("  (no worked formula for %s here: its values, from the engine)\n", l->li.type);
    print_values("values", l->y, l->t->batch, per_sample(&l->li));
}

/* ---- backward: each gradient as the chain rule's product ----------------------------------- */

/* the gradient line of an input value: its engine value when this layer is its only reader,
 * else this layer's share (the total, the sum of the shares, is shown at that layer) */
static void dx_result(const layer_ctx *l, double share, int64_t at)
{
    int in_i = l->in_i;
    if (in_i >= 0 && l->t->readers[in_i] == 1) res(cn_net_layer_grad(l->t->net, in_i, NULL)[at]);
    else printf(" = %.6g   (this layer's share)\n", share);
}

static void bwd_dense(const layer_ctx *l)
{
    cn_tensor W = param(l->t, l->li.name, "weight"), b = param(l->t, l->li.name, "bias");
    int64_t in = per_sample(&l->in), out = per_sample(&l->li), N = l->t->batch;
    printf("  dL/dw[j,k] = sum over samples of dL/dz_j * x_k\n");
    for (int64_t j = 0; j < out; j++)
        for (int64_t k = 0; k < in; k++) {
            printf("    dL/dw[%lld,%lld] = ", (long long)j + 1, (long long)k + 1);
            for (int64_t s = 0; s < N; s++) printf("%s", s ? " + " : ""), num(l->dy[s * out + j]), printf("*"), num(l->x[s * in + k]);
            res(W.grad[j * in + k]);
        }
    if (b.data) {
        printf("  dL/db_j = sum over samples of dL/dz_j\n");
        for (int64_t j = 0; j < out; j++) {
            printf("    dL/db%lld = ", (long long)j + 1);
            for (int64_t s = 0; s < N; s++) printf("%s", s ? " + " : ""), num(l->dy[s * out + j]);
            res(b.grad[j]);
        }
    }
    printf("  dL/dx_k = sum_j dL/dz_j * w[j,k]   (passed back to %s)\n", l->li.inputs[0]);
    for (int64_t s = 0; s < N; s++) {
        if (N > 1) printf("  sample %lld:\n", (long long)s + 1);
        for (int64_t k = 0; k < in; k++) {
            double share = 0;
            printf("    dL/dx%lld = ", (long long)k + 1);
            for (int64_t j = 0; j < out; j++) {
                printf("%s", j ? " + " : ""), num(l->dy[s * out + j]), printf("*"), num(W.data[j * in + k]);
                share += (double)l->dy[s * out + j] * W.data[j * in + k];
            }
            dx_result(l, share, s * in + k);
        }
    }
}

static void bwd_conv(const layer_ctx *l)
{
    cn_tensor W = param(l->t, l->li.name, "weight"), b = param(l->t, l->li.name, "bias");
    window g = window_of(l->t, l->i);
    int64_t cin = l->in.c, cout = l->li.c, cg = cin / g.groups, og = cout / g.groups, N = l->t->batch;
    int64_t oh = l->li.h, ow = l->li.w, ih = l->in.h, iw = l->in.w;
    printf("  a weight is shared by every position: dL/dw = the sum of its contributions dL/dy * x over them\n");
    for (int64_t co = 0; co < cout; co++)
        for (int64_t ci = 0; ci < cg; ci++)
            for (int64_t ky = 0; ky < g.k[0]; ky++)
                for (int64_t kx = 0; kx < g.k[1]; kx++) {
                    printf("    dL/dw[%lld,%lld](%lld,%lld) = ", (long long)co + 1, (long long)ci + 1, (long long)ky + 1,
                           (long long)kx + 1);
                    int first = 1;
                    for (int64_t s = 0; s < N; s++) {
                        const float *xc = l->x + (s * cin + (co / og) * cg + ci) * ih * iw;
                        for (int64_t oy = 0; oy < oh; oy++)
                            for (int64_t ox = 0; ox < ow; ox++) {
                                int inside;
                                double v = tap(xc, ih, iw, &g, oy, ox, ky, kx, &inside);
                                if (!inside) continue; /* the padding's zeros add nothing */
                                printf("%s", first ? "" : " + "), num(l->dy[((s * cout + co) * oh + oy) * ow + ox]);
                                printf("*"), num(v);
                                first = 0;
                            }
                    }
                    if (first) printf("0");
                    res(W.grad[((co * cg + ci) * g.k[0] + ky) * g.k[1] + kx]);
                }
    if (b.data) {
        printf("  dL/db[c] = the sum of dL/dy over every position of filter c\n");
        for (int64_t co = 0; co < cout; co++) {
            printf("    dL/db%lld = ", (long long)co + 1);
            for (int64_t s = 0; s < N; s++)
                for (int64_t p = 0; p < oh * ow; p++) printf("%s", s || p ? " + " : ""), num(l->dy[(s * cout + co) * oh * ow + p]);
            res(b.grad[co]);
        }
    }
    printf("  dL/dx = the sum of dL/dy * w over the outputs each input value was read by (passed back to %s)\n",
           l->li.inputs[0]);
    for (int64_t s = 0; s < N; s++)
        for (int64_t c = 0; c < cin; c++)
            for (int64_t iy = 0; iy < ih; iy++)
                for (int64_t ix = 0; ix < iw; ix++) {
                    printf("    sample %lld: dL/dx[%lld](%lld,%lld) = ", (long long)s + 1, (long long)c + 1, (long long)iy + 1,
                           (long long)ix + 1);
                    int64_t grp = c / cg, ci = c % cg;
                    double share = 0;
                    int first = 1;
                    for (int64_t co = grp * og; co < (grp + 1) * og; co++)
                        for (int64_t ky = 0; ky < g.k[0]; ky++)
                            for (int64_t kx = 0; kx < g.k[1]; kx++) {
                                int64_t ny = iy + g.p[0] - ky * g.d[0], nx = ix + g.p[1] - kx * g.d[1];
                                if (ny < 0 || nx < 0 || ny % g.s[0] || nx % g.s[1]) continue;
                                int64_t oy = ny / g.s[0], ox = nx / g.s[1];
                                if (oy >= oh || ox >= ow) continue;
                                double dyv = l->dy[((s * cout + co) * oh + oy) * ow + ox];
                                double wv = W.data[((co * cg + ci) * g.k[0] + ky) * g.k[1] + kx];
                                printf("%s", first ? "" : " + "), num(dyv), printf("*"), num(wv);
                                share += dyv * wv;
                                first = 0;
                            }
                    if (first) printf("0");
                    dx_result(l, share, ((s * cin + c) * ih + iy) * iw + ix);
                }
}

static void bwd_elementwise(const layer_ctx *l)
{
    const char *type = l->li.type;
    double slope = key1(l->t, l->i, "slope", 0.01);
    int64_t n = per_sample(&l->li);
    double alpha = key1(l->t, l->i, "alpha", 1.0);
    if (!strcmp(type, "relu")) printf("  dL/dz = dL/da * [z > 0]\n");
    else if (!strcmp(type, "leakyrelu")) printf("  dL/dz = dL/da * (1 if z > 0, else %g)\n", slope);
    else if (!strcmp(type, "sigmoid")) printf("  dL/dz = dL/da * a * (1 - a)\n");
    else if (!strcmp(type, "relu6")) printf("  dL/dz = dL/da * [0 < z < 6]   (PyTorch's side at the kinks)\n");
    else if (!strcmp(type, "hardsigmoid")) printf("  dL/dz = dL/da * [-3 < z < 3] / 6\n");
    else if (!strcmp(type, "hardswish")) printf("  dL/dz = dL/da * (0 if z < -3, z/3 + 0.5 if z <= 3, else 1)\n");
    else if (!strcmp(type, "silu")) printf("  dL/dz = dL/da * s (1 + z (1 - s)), s = sigmoid(z)\n");
    else if (!strcmp(type, "elu")) printf("  dL/dz = dL/da * (1 if z > 0, else %g e^z)\n", alpha);
    else printf("  dL/dz = dL/da * (1 - a^2)\n");
    for (int64_t s = 0; s < l->t->batch; s++) {
        if (l->t->batch > 1) printf("  sample %lld:\n", (long long)s + 1);
        for (int64_t k = 0; k < n; k++) {
            double z = l->x[s * n + k], a = l->y[s * n + k], d = l->dy[s * n + k];
            printf("    dL/dz%lld = ", (long long)k + 1);
            num(d);
            if (!strcmp(type, "relu")) printf("*["), arg(z), printf(" > 0]");
            else if (!strcmp(type, "leakyrelu")) printf("*%g", z > 0 ? 1.0 : slope);
            else if (!strcmp(type, "sigmoid")) printf("*"), num(a), printf("*(1 - "), num(a), printf(")");
            else if (!strcmp(type, "relu6")) printf("*[0 < "), arg(z), printf(" < 6]");
            else if (!strcmp(type, "hardsigmoid")) printf("*[-3 < "), arg(z), printf(" < 3]/6");
            else if (!strcmp(type, "hardswish") && z < -3) printf("*0");
            else if (!strcmp(type, "hardswish") && z <= 3) printf("*("), num(z), printf("/3 + 0.5)");
            else if (!strcmp(type, "hardswish")) printf("*1");
            else if (!strcmp(type, "silu")) {
                double sg = 1.0 / (1.0 + exp(-z));
                printf("*"), num(sg), printf("*(1 + "), num(z), printf("*(1 - "), num(sg), printf("))");
            } else if (!strcmp(type, "elu") && z > 0) printf("*1");
            else if (!strcmp(type, "elu")) printf("*%g*e^(", alpha), arg(z), printf(")");
            else printf("*(1 - "), num(a), printf("^2)");
            dx_result(l, 0, s * n + k);
        }
    }
}

static void bwd_softmax(const layer_ctx *l)
{
    int64_t n = per_sample(&l->li);
    printf("  dL/dz_k = p_k * (dL/dp_k - sum_j dL/dp_j * p_j)\n");
    for (int64_t s = 0; s < l->t->batch; s++) {
        if (l->t->batch > 1) printf("  sample %lld:\n", (long long)s + 1);
        const float *p = l->y + s * n, *d = l->dy + s * n;
        for (int64_t k = 0; k < n; k++) {
            printf("    dL/dz%lld = ", (long long)k + 1), num(p[k]), printf("*("), num(d[k]), printf(" - (");
            for (int64_t j = 0; j < n; j++) printf("%s", j ? " + " : ""), num(d[j]), printf("*"), num(p[j]);
            printf("))");
            dx_result(l, 0, s * n + k);
        }
    }
}

/* pooling's backward: each input value gets the output gradients of the windows that took it
 * (max/min: where it was the window's pick; avg: every window it is in, divided by the window) */
static void bwd_pool(const layer_ctx *l)
{
    window g = window_of(l->t, l->i);
    int avg = !strcmp(l->li.type, "avgpool"), is_max = !strcmp(l->li.type, "maxpool");
    int count_pad = key1(l->t, l->i, "count_pad", 1) != 0;
    int64_t ih = l->in.h, iw = l->in.w, oh = l->li.h, ow = l->li.w, C = l->li.c;
    if (avg) printf("  dL/dx = the sum of dL/dy / (the window's divisor) over the windows that hold x\n");
    else printf("  dL/dx = the sum of dL/dy over the windows whose %s x is (0 elsewhere)\n", is_max ? "largest" : "smallest");
    for (int64_t s = 0; s < l->t->batch; s++)
        for (int64_t c = 0; c < C; c++) {
            const float *xc = l->x + (s * C + c) * ih * iw, *dyc = l->dy + (s * C + c) * oh * ow;
            for (int64_t iy = 0; iy < ih; iy++)
                for (int64_t ix = 0; ix < iw; ix++) {
                    int first = 1;
                    double share = 0;
                    for (int64_t oy = 0; oy < oh; oy++)
                        for (int64_t ox = 0; ox < ow; ox++) {
                            /* does window (oy, ox) take x(iy, ix)? */
                            int64_t best_y = -1, best_x = -1, in_window = 0;
                            double best = 0;
                            for (int64_t ky = 0; ky < g.k[0]; ky++)
                                for (int64_t kx = 0; kx < g.k[1]; kx++) {
                                    int64_t y = oy * g.s[0] - g.p[0] + ky * g.d[0], x = ox * g.s[1] - g.p[1] + kx * g.d[1];
                                    if (y < 0 || y >= ih || x < 0 || x >= iw) continue;
                                    if (y == iy && x == ix) in_window = 1;
                                    double v = xc[y * iw + x];
                                    if (best_y < 0 || (is_max ? v > best : v < best)) best = v, best_y = y, best_x = x;
                                }
                            if (!in_window || (!avg && (best_y != iy || best_x != ix))) continue;
                            if (first) printf("    sample %lld, channel %lld: dL/dx(%lld,%lld) = ", (long long)s + 1,
                                              (long long)c + 1, (long long)iy + 1, (long long)ix + 1);
                            int64_t cells = avg ? window_cells(&g, oy, ox, ih, iw, count_pad) : 1;
                            printf("%s", first ? "" : " + "), num(dyc[oy * ow + ox]);
                            if (avg) printf("/%lld", (long long)cells);
                            share += dyc[oy * ow + ox] / (double)cells;
                            first = 0;
                        }
                    if (!first) dx_result(l, share, ((s * C + c) * ih + iy) * iw + ix);
                }
        }
}

static void bwd_other(const layer_ctx *l)
{
    int in_i = l->in_i;
    if (!strcmp(l->li.type, "flatten")) printf("  the gradient passes back unchanged, reshaped\n");
    else printf("  (no worked formula for %s's backward here: the gradients, from the engine)\n", l->li.type);
    cn_layer_info in;
    if (in_i > 0 && !cn_net_layer(l->t->ctx, l->t->net, in_i, 1, &in))
        print_values("dL/dx", cn_net_layer_grad(l->t->net, in_i, NULL), l->t->batch, per_sample(&in));
}

static const struct {
    const char *type;
    void (*forward)(const layer_ctx *l);
    void (*backward)(const layer_ctx *l);
} worked[] = {
    { "dense", fwd_dense, bwd_dense },
    { "conv", fwd_conv, bwd_conv },
    { "relu", fwd_elementwise, bwd_elementwise },
    { "leakyrelu", fwd_elementwise, bwd_elementwise },
    { "sigmoid", fwd_elementwise, bwd_elementwise },
    { "tanh", fwd_elementwise, bwd_elementwise },
    { "relu6", fwd_elementwise, bwd_elementwise },
    { "hardsigmoid", fwd_elementwise, bwd_elementwise },
    { "hardswish", fwd_elementwise, bwd_elementwise },
    { "silu", fwd_elementwise, bwd_elementwise },
    { "elu", fwd_elementwise, bwd_elementwise },
    { "maxpool", fwd_pool, bwd_pool },
    { "minpool", fwd_pool, bwd_pool },
    { "avgpool", fwd_pool, bwd_pool },
    { "softmax", fwd_softmax, bwd_softmax },
};

static int worked_row(const char *type)
{
    for (int r = 0; r < (int)(sizeof worked / sizeof worked[0]); r++)
        if (!strcmp(worked[r].type, type)) return r;
    return -1;
}

static int layer_ctx_of(const tracer *t, int i, layer_ctx *l)
{
    memset(l, 0, sizeof *l);
    l->t = t, l->i = i;
    if (cn_net_layer(t->ctx, t->net, i, t->batch, &l->li)) return cli_ctx_error(t->ctx);
    int in_i = l->in_i = l->li.n_inputs ? cli_layer_index(t->ctx, t->net, l->li.inputs[0]) : -1;
    if (in_i >= 0 && cn_net_layer(t->ctx, t->net, in_i, t->batch, &l->in)) return cli_ctx_error(t->ctx);
    l->x = in_i >= 0 ? cn_net_layer_output(t->net, in_i, NULL) : NULL;
    l->y = cn_net_layer_output(t->net, i, NULL);
    l->dy = cn_net_layer_grad(t->net, i, NULL);
    return 0;
}

/* ---- JSON: every number of the step ------------------------------------------------------------- */

static void json_values(const float *v, int64_t n)
{
    putchar('[');
    for (int64_t k = 0; k < n; k++) {
        if (k) putchar(',');
        cli_json_float(stdout, v[k], 1);
    }
    putchar(']');
}

/* ---- the command --------------------------------------------------------------------------------- */

static void help(const cli_option *opts)
{
    printf("usage: convnet trace SPEC | -e TEXT --weights FILE --input X [--target Y] [--loss L]\n"
           "                     [--lr LR] [--optimizer K] [--json] [--html FILE]\n\n"
           "One training step of a small net, worked out as the lecture notes do it: each layer's\n"
           "weighted sums and activations with the numbers filled in, the loss, every gradient as a\n"
           "product of the chain rule (a convolution weight's as the sum of its contributions), and\n"
           "the update of every parameter. The numbers are the engine's own (the training kernels).\n\n"
           "options:\n");
    cli_print_options(opts, 18);
    printf("\nThe weights file: one tensor a line, 'layer.weight = 1,1; 1,-1' (PyTorch's layout: a dense\n"
           "weight is out x in, a conv weight filters x channels x height x width, rows split by ';'),\n"
           "or JSON {\"layer.weight\": [[1,1],[1,-1]], ...}, or a checkpoint; or that text or JSON\n"
           "itself in place of FILE. Every trainable tensor must be given. X: one row per sample, its\n"
           "values in channel, row, column order.\n\n"
           "example (the XOR net of the notes):\n"
           "  convnet trace -e 'input 1x1x2; dense 2 as hidden; relu; dense 1 as out' \\\n"
           "      --weights xor.txt --input '0,0;0,1;1,0;1,1' --target '0;1;1;0' --loss mse --lr 0.1\n");
}

typedef struct {
    const char *weights, *input, *target, *loss, *optimizer, *html;
    double lr;
    int json;
} trace_opts;

int cmd_trace(int argc, char **argv)
{
    trace_opts o = { .loss = "mse", .optimizer = "sgd", .lr = 0.01 };
    cli_spec spec = { 0 };
    const cli_option opts[] = {
        { "-e", "TEXT", CLI_TEXT, &spec.text, .help = "the spec inline; ';' separates statements" },
        { "--weights", "FILE", CLI_TEXT, &o.weights, .help = "the weights: text, JSON or a checkpoint (required)" },
        { "--input", "X", CLI_TEXT, &o.input, .help = "the inputs, one row per sample: '0,0;0,1' or @FILE (required)" },
        { "--target", "Y", CLI_TEXT, &o.target,
          .help = "the targets, one row per sample (for ce: one-hot rows, or a column of class numbers\n"
                  "from 0); without it, the forward pass only" },
        { "--loss", "L", CLI_TEXT, &o.loss, .help = "mse (default), mae, ce, bce or hinge" },
        { "--lr", "LR", CLI_REAL, &o.lr, .help = "learning rate (default 0.01)" },
        { "--optimizer", "K", CLI_TEXT, &o.optimizer, .help = "sgd (default), momentum, nesterov, adam or adamw" },
        { "--json", NULL, CLI_FLAG, &o.json, .help = "every number of the step as JSON" },
        { "--html", "FILE", CLI_TEXT, &o.html,
          .help = "also write FILE: a page with the graph of each sample, values in blue and\n"
                  "gradients in red, and every parameter before, its gradient and after" },
        { 0 },
    };
    int usage = cli_parse_spec("trace", argc, argv, opts, help, &spec);
    if (usage != CLI_GO_ON) return usage;
    if (!o.weights || !o.input) return cli_usage_error("trace", "give --weights FILE and --input X");
    static const struct { const char *name; cn_loss_kind kind; } losses[] = {
        { "mse", CN_LOSS_MSE }, { "mae", CN_LOSS_MAE }, { "ce", CN_LOSS_CE_LOGITS }, { "cross-entropy", CN_LOSS_CE_LOGITS },
        { "bce", CN_LOSS_BCE_LOGITS }, { "hinge", CN_LOSS_HINGE },
    };
    int lk = -1;
    for (int k = 0; k < (int)(sizeof losses / sizeof losses[0]); k++)
        if (!strcmp(o.loss, losses[k].name)) lk = k;
    if (lk < 0) return cli_usage_error("trace", "--loss: mse, mae, ce, bce or hinge (got '%s')", o.loss);
    cn_optim_kind okind;
    if (!cn_optim_kind_from_name(o.optimizer, &okind))
        return cli_usage_error("trace", "--optimizer: sgd, momentum, nesterov, adam or adamw (got '%s')", o.optimizer);
    if (!(o.lr >= 0)) return cli_usage_error("trace", "--lr must be >= 0");

    tracer t = { 0 };
    double loss = 0;
    float *x = NULL, *y = NULL, *dy = NULL, *before = NULL;
    int64_t xr, xc, yr = 0, yc = 0;
    int rc = 0;
    cn_optim *opt = NULL;
    if (cn_ctx_create(NULL, &t.ctx)) return cli_error("out of memory");
    if (cli_load_net(t.ctx, spec.file, spec.text, &t.net) || cn_net_init_params(t.ctx, t.net, CN_INIT_KAIMING_NORMAL, 1)) {
        rc = cli_ctx_error(t.ctx);
        goto done;
    }
    t.n = cn_net_layer_count(t.net);
    t.json = o.json;
    if ((rc = cli_parse_matrix("trace", "--input", o.input, &x, &xr, &xc))) goto done;
    t.batch = xr;
    cn_layer_info in, out;
    cn_totals tot;
    if (cn_net_layer(t.ctx, t.net, 0, 1, &in) || cn_net_layer(t.ctx, t.net, t.n - 1, 1, &out) ||
        cn_net_totals(t.ctx, t.net, t.batch, &tot)) {
        rc = cli_ctx_error(t.ctx);
        goto done;
    }
    /* the size a worked example can have: every product and every value is a term */
    int64_t terms = tot.macs;
    for (int i = 0; i < t.n; i++) {
        cn_layer_info li;
        if (!cn_net_layer(t.ctx, t.net, i, t.batch, &li)) terms += t.batch * per_sample(&li) + li.params;
    }
    int64_t limit = o.json ? TRACE_MAX_JSON_VALUES : TRACE_MAX_TERMS;
    if (terms > limit) {
        rc = cli_error("trace: %lld sample(s) of this net make about %lld terms to print (%s), over the limit of %lld: "
                       "trace is for nets small enough to work by hand",
                       (long long)t.batch, (long long)terms, o.json ? "values" : "products and values", (long long)limit);
        goto done;
    }
    if (xc != per_sample(&in)) {
        rc = cli_usage_error("trace", "--input: %lld values a row, but input %lldx%lldx%lld takes %lld", (long long)xc,
                             (long long)in.h, (long long)in.w, (long long)in.c, (long long)per_sample(&in));
        goto done;
    }
    if ((rc = cli_load_weights(t.ctx, t.net, o.weights, "trace"))) goto done;
    if (!(t.readers = calloc((size_t)t.n, sizeof *t.readers))) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (int i = 1; i < t.n; i++) {
        cn_layer_info li;
        cn_net_layer(t.ctx, t.net, i, 1, &li);
        for (int j = 0; j < li.n_inputs; j++) {
            int k = cli_layer_index(t.ctx, t.net, li.inputs[j]);
            if (k >= 0) t.readers[k]++;
        }
    }
    cn_loss_kind lkind = losses[lk].kind;
    /* a net that ends in softmax gives probabilities: cross-entropy of those, as training takes it */
    if (lkind == CN_LOSS_CE_LOGITS && !strcmp(out.type, "softmax")) lkind = CN_LOSS_CE;
    int64_t classes = per_sample(&out);
    if (o.target) {
        if ((rc = cli_parse_matrix("trace", "--target", o.target, &y, &yr, &yc))) goto done;
        if (yr != t.batch) {
            rc = cli_usage_error("trace", "--target has %lld rows for %lld samples", (long long)yr, (long long)t.batch);
            goto done;
        }
        if ((lkind == CN_LOSS_CE_LOGITS || lkind == CN_LOSS_CE) && yc == 1 && classes > 1) {
            /* class numbers: one-hot rows */
            float *oh = calloc((size_t)(yr * classes), sizeof *oh);
            if (!oh) {
                rc = cli_error("out of memory");
                goto done;
            }
            for (int64_t s = 0; s < yr && !rc; s++) {
                if (!(y[s] >= 0 && y[s] < (float)classes && y[s] == floorf(y[s])))
                    rc = cli_usage_error("trace", "--target: sample %lld: class %g is not one of 0..%lld", (long long)s + 1,
                                         y[s], (long long)classes - 1);
                else oh[s * classes + (int64_t)y[s]] = 1;
            }
            free(y);
            y = oh, yc = classes;
            if (rc) goto done;
        }
        if (yc != classes) {
            rc = cli_usage_error("trace", "--target has %lld values a row, the net's output %lld", (long long)yc,
                                 (long long)classes);
            goto done;
        }
    }

    /* the step, by the engine: forward (training mode), loss, backward, update */
    if (cn_net_forward(t.ctx, t.net, x, t.batch, 1)) {
        rc = cli_ctx_error(t.ctx);
        goto done;
    }
    int64_t cells = t.batch * classes;
    if (y) {
        if (!(dy = malloc((size_t)cells * sizeof *dy))) {
            rc = cli_error("out of memory");
            goto done;
        }
        if (cn_loss_grad(t.ctx, lkind, y, cn_net_output(t.net, NULL), t.batch, classes, CN_REDUCE_MEAN, 0, &loss, dy)) {
            rc = cli_ctx_error(t.ctx);
            goto done;
        }
        cn_net_zero_grad(t.net);
        cn_optim_config oc;
        cn_optim_defaults(&oc, okind);
        oc.lr = o.lr;
        int64_t count;
        float *params = cn_net_params(t.net, &count, NULL);
        if (cn_net_backward(t.ctx, t.net, dy) || cn_optim_create(t.ctx, t.net, &oc, &opt)) {
            rc = cli_ctx_error(t.ctx);
            goto done;
        }
        if (!(before = malloc((size_t)(count ? count : 1) * sizeof *before))) {
            rc = cli_error("out of memory");
            goto done;
        }
        memcpy(before, params, (size_t)count * sizeof *before);
        /* printed before the update (the backward needs the old weights), updated at the end */
    }
    if (o.json) {
        printf("{\"file\":");
        cli_json_string(stdout, cn_net_file_name(t.net));
        printf(",\"batch\":%lld,\"layers\":[", (long long)t.batch);
        for (int i = 0; i < t.n; i++) {
            cn_layer_info li;
            int64_t n;
            cn_net_layer(t.ctx, t.net, i, t.batch, &li);
            printf("%s{\"name\":", i ? "," : "");
            cli_json_string(stdout, li.name);
            printf(",\"type\":\"%s\",\"output\":", li.type);
            const float *v = cn_net_layer_output(t.net, i, &n);
            json_values(v, n);
            if (y) {
                v = cn_net_layer_grad(t.net, i, &n);
                printf(",\"grad\":"), json_values(v, n);
            }
            printf("}");
        }
        printf("]");
        if (y) {
            printf(",\"loss\":{\"kind\":\"%s\",\"value\":", o.loss);
            cli_json_float(stdout, loss, 0);
            printf(",\"grad\":"), json_values(dy, cells);
            printf("},\"optimizer\":\"%s\",\"lr\":", cn_optim_kind_name(okind));
            cli_json_float(stdout, o.lr, 0);
            if (cn_optim_step(t.ctx, opt, t.net, NULL)) {
                printf("}\n");
                rc = cli_ctx_error(t.ctx);
                goto done;
            }
            printf(",\"tensors\":[");
            int first = 1;
            for (int k = 0; k < cn_net_tensor_count(t.net); k++) {
                cn_tensor tt;
                if (cn_net_tensor(t.ctx, t.net, k, &tt) || !tt.trainable) continue;
                printf("%s{\"name\":", first ? "" : ",");
                cli_json_string(stdout, tt.name);
                printf(",\"before\":"), json_values(before + (tt.data - cn_net_params(t.net, NULL, NULL)), tt.count);
                printf(",\"grad\":"), json_values(tt.grad, tt.count);
                printf(",\"after\":"), json_values(tt.data, tt.count);
                printf("}");
                first = 0;
            }
            printf("]");
        }
        printf("}\n");
        goto finish;
    }

    printf("trace of %s: %lld sample%s", cn_net_file_name(t.net), (long long)t.batch, t.batch == 1 ? "" : "s");
    if (y) printf(", loss %s, optimizer %s, lr %g", o.loss, cn_optim_kind_name(okind), o.lr);
    printf("\n\n== forward ==\n");
    print_values("input x", x, t.batch, xc);
    for (int i = 1; i < t.n; i++) {
        layer_ctx l;
        if ((rc = layer_ctx_of(&t, i, &l))) goto done;
        printf("layer %s (%s, line %d):\n", l.li.name, l.li.type, l.li.line);
        int r = worked_row(l.li.type);
        /* a multi-input layer (add, concat) has no one-input formula here */
        if (r >= 0 && l.li.n_inputs == 1) worked[r].forward(&l);
        else fwd_other(&l);
    }
    if (!y) goto finish;
    printf("\n== loss ==\n");
    const float *pred = cn_net_output(t.net, NULL);
    if (lkind == CN_LOSS_MSE) {
        if (cells == 1) printf("mse = (y - t)^2 (one value)\n  L = (");
        else printf("mse = mean over the %lld values of (y - t)^2\n  L = (", (long long)cells);
        for (int64_t k = 0; k < cells; k++) printf("%s(", k ? " + " : ""), num(pred[k]), printf(" - "), num(y[k]), printf(")^2");
        printf(") / %lld", (long long)cells);
        res(loss);
        printf("dL/dy = 2 (y - t) / %lld\n", (long long)cells);
        for (int64_t k = 0; k < cells; k++) {
            printf("  dL/dy%lld = 2*(", (long long)k + 1), num(pred[k]), printf(" - "), num(y[k]), printf(") / %lld", (long long)cells);
            res(dy[k]);
        }
        printf("(the notes write MSE as 1/2 (y - t)^2 summed; convnet and PyTorch take the mean of (y - t)^2:\n"
               " the same minimum, gradients scaled by 2/%lld)\n", (long long)cells);
    } else if (lkind == CN_LOSS_CE || lkind == CN_LOSS_CE_LOGITS) {
        int probs = lkind == CN_LOSS_CE;
        printf(probs ? "cross-entropy of probabilities p = mean over samples of -sum_k t_k log(p_k)\n"
                     : "cross-entropy of scores z = mean over samples of -sum_k t_k (z_k - log(sum_j e^(z_j)))\n");
        printf("  L = -(");
        int written = 0;
        for (int64_t s = 0; s < t.batch; s++)
            for (int64_t k = 0; k < classes; k++) {
                int64_t at = s * classes + k;
                if (y[at] == 0) continue;
                printf("%s", written++ ? " + " : ""), num(y[at]);
                if (probs) printf("*log("), arg(pred[at]), printf(")");
                else {
                    printf("*("), num(pred[at]), printf(" - log(");
                    for (int64_t j = 0; j < classes; j++) printf("%se^(", j ? " + " : ""), arg(pred[s * classes + j]), printf(")");
                    printf("))");
                }
            }
        printf("%s) / %lld", written ? "" : "0", (long long)t.batch);
        res(loss);
        /* d/dz_k of -sum_j t_j log p_j is p_k sum_j t_j - t_k: p_k - t_k only where the targets sum
         * to 1, so a row that does not is worked with its sum (as the engine computes it) */
        double *tsum = calloc((size_t)t.batch, sizeof *tsum);
        if (!tsum) {
            rc = cli_error("out of memory");
            goto done;
        }
        int unlike = 0;
        for (int64_t s = 0; s < t.batch; s++) {
            for (int64_t k = 0; k < classes; k++) tsum[s] += y[s * classes + k];
            if (fabs(tsum[s] - 1.0) > 1e-6) unlike = 1;
        }
        if (probs) printf("dL/dp_k = -t_k / (p_k * %lld)\n", (long long)t.batch);
        else if (!unlike) printf("dL/dz_k = (e^(z_k) / sum_j e^(z_j) - t_k) / %lld\n", (long long)t.batch);
        else
            printf("dL/dz_k = (e^(z_k) / sum_j e^(z_j) * sum_j t_j - t_k) / %lld   (a row of targets that does not sum to 1"
                   " keeps its sum)\n", (long long)t.batch);
        for (int64_t s = 0; s < t.batch; s++)
            for (int64_t k = 0; k < classes; k++) {
                int64_t at = s * classes + k;
                printf("  sample %lld: dL/d%s%lld = ", (long long)s + 1, probs ? "p" : "z", (long long)k + 1);
                if (probs) {
                    printf("-"), num(y[at]), printf(" / ("), num(pred[at]), printf("*%lld)", (long long)t.batch);
                } else {
                    printf("(e^("), arg(pred[at]), printf(") / (");
                    for (int64_t j = 0; j < classes; j++) printf("%se^(", j ? " + " : ""), arg(pred[s * classes + j]), printf(")");
                    printf(")");
                    if (unlike) printf(" * "), num(tsum[s]);
                    printf(" - "), num(y[at]), printf(") / %lld", (long long)t.batch);
                }
                res(dy[at]);
            }
        for (int64_t s = 0; s < t.batch; s++)
            if (fabs(tsum[s] - 1.0) > 1e-6) {
                fprintf(stderr, "convnet trace: note: sample %lld's targets sum to %g, not 1: cross-entropy's targets are a "
                                "distribution\n", (long long)s + 1, tsum[s]);
                break;
            }
        free(tsum);
        printf("(the notes' log is the natural logarithm)\n");
    } else {
        printf("%s (mean over samples) = %.6g\n", o.loss, loss);
        print_values("dL/dy", dy, t.batch, classes);
        printf("(`convnet calc loss %s --explain` shows this loss worked out)\n", o.loss);
    }
    printf("\n== backward ==\n");
    for (int i = t.n - 1; i >= 1; i--) {
        layer_ctx l;
        if ((rc = layer_ctx_of(&t, i, &l))) goto done;
        printf("layer %s (%s):\n", l.li.name, l.li.type);
        if (t.readers[i] > 1) {
            printf("  dL/d(output) is the sum of the shares of its %d readers:\n", t.readers[i]);
            print_values("dL/d(output)", l.dy, t.batch, per_sample(&l.li));
        }
        int r = worked_row(l.li.type);
        if (r >= 0 && l.li.n_inputs == 1) worked[r].backward(&l);
        else bwd_other(&l);
    }
    if (cn_optim_step(t.ctx, opt, t.net, NULL)) {
        rc = cli_ctx_error(t.ctx);
        goto done;
    }
    printf("\n== update (%s, lr %g) ==\n", cn_optim_kind_name(okind), o.lr);
    const cn_optim_config *oc = cn_optim_get_config(opt);
    static const char *rules[] = {
        "w <- w - lr * g", "v <- g (first step);  w <- w - lr * v", "v <- g (first step);  w <- w - lr * (g + mu * v)",
        "first step: m_hat = g, v_hat = g^2;  w <- w - lr * m_hat / (sqrt(v_hat) + eps)",
        "first step: w <- w (1 - lr wd) - lr * g / (sqrt(g^2) + eps)",
    };
    printf("%s\n", rules[okind]);
    float *params = cn_net_params(t.net, NULL, NULL);
    for (int k = 0; k < cn_net_tensor_count(t.net); k++) {
        cn_tensor tt;
        if (cn_net_tensor(t.ctx, t.net, k, &tt) || !tt.trainable) continue;
        const float *old = before + (tt.data - params);
        for (int64_t v = 0; v < tt.count; v++) {
            double w0 = old[v], g = tt.grad[v];
            /* the value's place, 1-based, in PyTorch's layout: [out,in] or [filter,channel,row,col] */
            printf("  %s[", tt.name);
            for (int d = 0; d < tt.rank; d++) {
                int64_t stride = 1;
                for (int e = d + 1; e < tt.rank; e++) stride *= tt.shape[e];
                printf("%s%lld", d ? "," : "", (long long)((v / stride) % tt.shape[d]) + 1);
            }
            printf("] = ");
            switch (okind) {
            case CN_OPTIM_SGD:
            case CN_OPTIM_MOMENTUM: num(w0), printf(" - %g*", o.lr), num(g); break;
            case CN_OPTIM_NESTEROV: num(w0), printf(" - %g*(", o.lr), num(g), printf(" + %g*", oc->momentum), num(g), printf(")"); break;
            case CN_OPTIM_ADAM:
            case CN_OPTIM_ADAMW:
                num(w0);
                if (okind == CN_OPTIM_ADAMW) printf("*(1 - %g*%g)", o.lr, oc->weight_decay);
                printf(" - %g*", o.lr), num(g), printf(" / (sqrt("), num(g), printf("^2) + %g)", oc->eps);
                break;
            }
            res(tt.data[v]);
        }
    }
finish:
    if (!rc && o.html) {
        rc = cli_trace_html(t.ctx, t.net, t.batch, y != NULL, loss, o.loss, cn_optim_kind_name(okind), o.lr, before, o.html);
        if (!rc && !o.json) printf("\nwrote %s\n", o.html);
    }
done:
    free(x), free(y), free(dy), free(before), free(t.readers);
    cn_optim_destroy(opt);
    cn_net_destroy(t.net);
    cn_ctx_destroy(t.ctx);
    return rc;
}
