/* calc.c — `convnet calc`: the worksheet quantities, computed by the library's kernels, with
 * the steps shown (--explain) as a worksheet solution would, or as JSON {"result": ...}. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"

typedef struct {
    const char *cmd;
    int explain, json;
} out_opts;

static void print_num(double v) { printf("%.6g", v); }

static void print_vector_line(const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (i) putchar(' ');
        print_num(v[i]);
    }
    putchar('\n');
}

static void print_vector_json(const float *v, int64_t n)
{
    putchar('[');
    for (int64_t i = 0; i < n; i++) {
        if (i) putchar(',');
        cli_json_float(stdout, v[i], 1);
    }
    putchar(']');
}

static void print_matrix(const float *v, int64_t rows, int64_t cols, int json)
{
    if (json) {
        putchar('[');
        for (int64_t r = 0; r < rows; r++) {
            if (r) putchar(',');
            print_vector_json(v + r * cols, cols);
        }
        putchar(']');
        return;
    }
    int width = 1;
    char buf[32];
    for (int64_t i = 0; i < rows * cols; i++) {
        int l = snprintf(buf, sizeof buf, "%.6g", v[i]);
        if (l > width) width = l;
    }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) printf("%s%*.6g", c ? " " : "", width, v[r * cols + c]);
        putchar('\n');
    }
}

/* --explain and --json, the last two rows of every quantity's options */
#define CALC_OUTPUT_OPTIONS(o) \
    { "--explain", NULL, CLI_FLAG, .target = &(o)->explain }, { "--json", NULL, CLI_FLAG, .target = &(o)->json }

/* the plain arguments of softmax and batchnorm, joined by commas, malloc'ed */
typedef struct {
    char *joined;
    size_t len, cap;
    int oom;
} joined_values;

static int join_value(void *state, const char *s)
{
    joined_values *j = state;
    size_t l = strlen(s);
    if (j->oom) return 1;
    if (j->len + l + 2 > j->cap) {
        char *g = realloc(j->joined, j->cap = 2 * (j->len + l + 2));
        if (!g) return j->oom = 1;
        j->joined = g;
    }
    if (j->len) j->joined[j->len++] = ',';
    memcpy(j->joined + j->len, s, l + 1);
    j->len += l;
    return 1;
}

/* Values from the remaining plain arguments, "2 1 0.1" or "2,1,0.1", and the options of opts. */
static int gather_values(cli_args *a, const char *what, const cli_option *opts, float **v, int64_t *n, out_opts *o)
{
    joined_values j = { 0 };
    int rc = cli_parse(a->cmd, a->argc - a->i, a->argv + a->i, opts, NULL, join_value, &j);
    if (rc == CLI_GO_ON) rc = 0;
    if (!rc && j.oom) rc = cli_error("out of memory");
    if (!rc && !j.joined) rc = cli_usage_error(o->cmd, "give the %s", what);
    int64_t rows, cols;
    if (!rc && !(rc = cli_parse_matrix(o->cmd, what, j.joined, v, &rows, &cols))) *n = rows * cols;
    free(j.joined);
    return rc;
}

static int calc_softmax(cli_args *a, out_opts *o)
{
    const cli_option opts[] = { CALC_OUTPUT_OPTIONS(o), { 0 } };
    float *x = NULL;
    int64_t n = 0;
    int rc = gather_values(a, "scores", opts, &x, &n, o);
    if (rc) return rc;
    float *y = malloc((size_t)n * sizeof *y);
    if (!y) return free(x), cli_error("out of memory");
    cn_softmax(x, y, n);
    if (o->json) {
        printf("{\"result\":");
        print_vector_json(y, n);
        printf("}\n");
    } else {
        if (o->explain) {
            /* the worksheet's e^x_i, unless their sum overflows or vanishes in a double (scores
             * beyond about +-700): then the kernel's working, e^(x_i - m) with m the largest */
            double sum = 0, m = x[0];
            for (int64_t i = 0; i < n; i++) sum += exp((double)x[i]), m = x[i] > m ? x[i] : m;
            int shift = !(sum >= DBL_MIN && sum <= DBL_MAX);
            if (shift) {
                printf("softmax_i = e^(x_i - m) / sum_j e^(x_j - m), m = max_j x_j = %g\n", m);
                sum = 0;
            } else {
                m = 0;
                printf("softmax_i = e^x_i / sum_j e^x_j\n");
            }
            for (int64_t i = 0; i < n; i++) {
                if (shift) {
                    printf("  e^(%g %c %g) = %.6g\n", x[i], m < 0 ? '+' : '-', fabs(m), exp((double)x[i] - m));
                    sum += exp((double)x[i] - m);
                } else {
                    printf("  e^%g = %.6g\n", x[i], exp((double)x[i]));
                }
            }
            printf("  sum = %.6g\n", sum);
            for (int64_t i = 0; i < n; i++)
                printf("  S%lld = %.6g / %.6g = %.6g\n", (long long)i + 1, exp((double)x[i] - m), sum, y[i]);
        }
        print_vector_line(y, n);
    }
    free(x);
    free(y);
    return 0;
}

static int calc_loss(cli_args *a, out_opts *o)
{
    static const struct { const char *name; cn_loss_kind kind, logits; } kinds[] = {
        { "mse", CN_LOSS_MSE, CN_LOSS_MSE }, { "mae", CN_LOSS_MAE, CN_LOSS_MAE },
        { "ce", CN_LOSS_CE, CN_LOSS_CE_LOGITS }, { "bce", CN_LOSS_BCE, CN_LOSS_BCE_LOGITS },
        { "hinge", CN_LOSS_HINGE, CN_LOSS_HINGE },
    };
    const char *which = cli_next(a), *tgt = NULL, *prd = NULL;
    int logits = 0, k = -1;
    for (int i = 0; which && i < 5; i++)
        if (!strcmp(which, kinds[i].name)) k = i;
    if (k < 0) return cli_usage_error(o->cmd, "loss: name one of mse, mae, ce, bce, hinge%s%s%s", which ? " (got '" : "",
                                      which ? which : "", which ? "')" : "");
    const cli_option opts[] = {
        { "--target", "T", CLI_TEXT, .target = &tgt },
        { "--pred", "P", CLI_TEXT, .target = &prd },
        { "--logits", NULL, CLI_FLAG, .target = &logits },
        CALC_OUTPUT_OPTIONS(o),
        { 0 },
    };
    int usage = cli_parse(a->cmd, a->argc - a->i, a->argv + a->i, opts, NULL, NULL, NULL);
    if (usage != CLI_GO_ON) return usage;
    if (!tgt || !prd) return cli_usage_error(o->cmd, "loss %s needs --target and --pred", kinds[k].name);
    if (logits && kinds[k].logits == kinds[k].kind)
        return cli_usage_error(o->cmd, "--logits applies to ce and bce only");
    cn_loss_kind kind = logits ? kinds[k].logits : kinds[k].kind;
    float *t = NULL, *p = NULL;
    int64_t tr, tc, pr, pc;
    int rc = cli_parse_matrix(o->cmd, "--target", tgt, &t, &tr, &tc);
    if (!rc) rc = cli_parse_matrix(o->cmd, "--pred", prd, &p, &pr, &pc);
    if (!rc && (tr != pr || tc != pc))
        rc = cli_usage_error(o->cmd, "--target is %lldx%lld but --pred is %lldx%lld", (long long)tr, (long long)tc,
                             (long long)pr, (long long)pc);
    double loss = 0, *per = NULL;
    cn_ctx *ctx = NULL;
    if (!rc && (!(per = malloc((size_t)tr * sizeof *per)) || cn_ctx_create(NULL, &ctx))) rc = cli_error("out of memory");
    if (!rc && cn_loss(ctx, kind, t, p, tr, tc, &loss, per)) rc = cli_ctx_error(ctx);
    if (!rc) {
        if (o->json) {
            printf("{\"result\":");
            cli_json_float(stdout, loss, 0);
            printf(",\"loss\":\"%s\",\"per_sample\":[", cn_loss_name(kind));
            for (int64_t r = 0; r < tr; r++) {
                if (r) putchar(',');
                cli_json_float(stdout, per[r], 0);
            }
            printf("]}\n");
        } else {
            if (o->explain) {
                static const char *formula[] = {
                    "mean_j (t_j - p_j)^2", "mean_j |t_j - p_j|", "-sum_j t_j log(p_j)",
                    "-sum_j t_j ((z_j - m) - log sum_k e^(z_k - m)), m = max_k z_k", "mean_j -[t_j log(p_j) + (1 - t_j) log(1 - p_j)]",
                    "mean_j max(z,0) - z t + log(1 + e^-|z|)", "mean_j max(0, 1 - t_j p_j)", "",
                };
                printf("%s per sample = %s%s\n", cn_loss_name(kind), formula[kind],
                       kind == CN_LOSS_CE || kind == CN_LOSS_CE_LOGITS ? "" : "  (mean over the values of a row)");
                /* elementwise losses: each value's term is the loss of that one value */
                int elementwise = kind != CN_LOSS_CE && kind != CN_LOSS_CE_LOGITS && tc > 1;
                for (int64_t r = 0; r < tr; r++) {
                    printf("  sample %lld: t = [", (long long)r + 1);
                    for (int64_t c = 0; c < tc; c++) printf("%s%g", c ? ", " : "", t[r * tc + c]);
                    printf("], p = [");
                    for (int64_t c = 0; c < tc; c++) printf("%s%g", c ? ", " : "", p[r * tc + c]);
                    printf("]");
                    if (elementwise) {
                        printf(", terms [");
                        for (int64_t c = 0; c < tc; c++) {
                            double term = 0;
                            cn_loss(ctx, kind, t + r * tc + c, p + r * tc + c, 1, 1, &term, NULL);
                            printf("%s%.6g", c ? ", " : "", term);
                        }
                        printf("]");
                    }
                    printf(" -> %.6g\n", per[r]);
                }
                printf("  mean over %lld sample%s = %.6g\n", (long long)tr, tr == 1 ? "" : "s", loss);
            }
            print_num(loss);
            putchar('\n');
        }
    }
    free(t);
    free(p);
    free(per);
    cn_ctx_destroy(ctx);
    return rc;
}

static int calc_dice(cli_args *a, out_opts *o)
{
    const char *si = NULL, *sa = NULL, *sb = NULL, *tgt = NULL, *prd = NULL;
    const cli_option opts[] = {
        { "--intersection", "I", CLI_TEXT, .target = &si },
        { "--a", "A", CLI_TEXT, .target = &sa },
        { "--b", "B", CLI_TEXT, .target = &sb },
        { "--target", "MASK", CLI_TEXT, .target = &tgt },
        { "--pred", "MASK", CLI_TEXT, .target = &prd },
        CALC_OUTPUT_OPTIONS(o),
        { 0 },
    };
    int usage = cli_parse(a->cmd, a->argc - a->i, a->argv + a->i, opts, NULL, NULL, NULL);
    if (usage != CLI_GO_ON) return usage;
    double inter = 0, na = 0, nb = 0;
    if (tgt || prd) {
        if (!tgt || !prd || si || sa || sb)
            return cli_usage_error(o->cmd, "dice: give --target and --pred masks, or --intersection, --a and --b");
        float *t, *p;
        int64_t tr, tc, pr, pc;
        int rc = cli_parse_matrix(o->cmd, "--target", tgt, &t, &tr, &tc);
        if (rc) return rc;
        if ((rc = cli_parse_matrix(o->cmd, "--pred", prd, &p, &pr, &pc))) return free(t), rc;
        if (tr * tc != pr * pc) rc = cli_usage_error(o->cmd, "dice: masks have %lld and %lld values", (long long)(tr * tc), (long long)(pr * pc));
        for (int64_t i = 0; !rc && i < tr * tc; i++) {
            if ((t[i] != 0 && t[i] != 1) || (p[i] != 0 && p[i] != 1))
                rc = cli_usage_error(o->cmd, "dice: masks hold 0 and 1 only (value %lld)", (long long)i + 1);
            inter += t[i] * p[i], na += t[i], nb += p[i];
        }
        free(t);
        free(p);
        if (rc) return rc;
    } else {
        if (!si || !sa || !sb) return cli_usage_error(o->cmd, "dice needs --intersection, --a and --b (or --target and --pred)");
        if (cli_parse_double(o->cmd, "--intersection", si, &inter) || cli_parse_double(o->cmd, "--a", sa, &na) ||
            cli_parse_double(o->cmd, "--b", sb, &nb))
            return EXIT_USAGE;
    }
    cn_ctx *ctx;
    double coef;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    int rc = cn_dice_coefficient(ctx, inter, na, nb, &coef) ? cli_ctx_error(ctx) : 0;
    cn_ctx_destroy(ctx);
    if (rc) return rc;
    if (o->json) {
        printf("{\"result\":");
        cli_json_float(stdout, 1.0 - coef, 0);
        printf(",\"coefficient\":");
        cli_json_float(stdout, coef, 0);
        printf("}\n");
        return 0;
    }
    if (o->explain) {
        printf("Dice coefficient = 2|A n B| / (|A| + |B|) = 2*%g / (%g + %g) = %.6g\n", inter, na, nb, coef);
        printf("Dice loss = 1 - %.6g = %.6g\n", coef, 1.0 - coef);
    }
    print_num(1.0 - coef);
    putchar('\n');
    return 0;
}

static int calc_batchnorm(cli_args *a, out_opts *o)
{
    const char *sg = "1", *sb = "0", *se = "1e-5";
    const cli_option opts[] = {
        { "--gamma", "G", CLI_TEXT, .target = &sg },
        { "--beta", "B", CLI_TEXT, .target = &sb },
        { "--eps", "E", CLI_TEXT, .target = &se },
        CALC_OUTPUT_OPTIONS(o),
        { 0 },
    };
    float *x = NULL;
    int64_t n = 0;
    int rc = gather_values(a, "values", opts, &x, &n, o);
    if (rc) return rc;
    double g, b, e;
    if (cli_parse_double(o->cmd, "--gamma", sg, &g) || cli_parse_double(o->cmd, "--beta", sb, &b) ||
        cli_parse_double(o->cmd, "--eps", se, &e))
        return free(x), EXIT_USAGE;
    if (e < 0) return free(x), cli_usage_error(o->cmd, "--eps must be >= 0");
    float *y = malloc((size_t)n * sizeof *y), mean, var;
    if (!y) return free(x), cli_error("out of memory");
    cn_batchnorm_1d(x, y, n, (float)g, (float)b, (float)e, &mean, &var);
    if ((double)var + e <= 0) {
        free(x), free(y);
        return cli_error("batchnorm: the values have variance 0; give --eps > 0");
    }
    if (o->json) {
        printf("{\"result\":");
        print_vector_json(y, n);
        printf(",\"mean\":");
        cli_json_float(stdout, mean, 1);
        printf(",\"var\":");
        cli_json_float(stdout, var, 1);
        printf("}\n");
    } else {
        if (o->explain) {
            double sd = sqrt((double)var + e);
            printf("mean = %.6g, variance (biased, divide by %lld) = %.6g\n", mean, (long long)n, var);
            printf("x_hat = (x - mean) / sqrt(var + eps) = (x - %.6g) / sqrt(%.6g + %g) = (x - %.6g) / %.6g\n", mean,
                   var, e, mean, sd);
            printf("y = gamma * x_hat + beta = %g * x_hat + %g\n", g, b);
            for (int64_t i = 0; i < n; i++)
                printf("  x = %g: x_hat = %.6g, y = %.6g\n", x[i], ((double)x[i] - mean) / sd, y[i]);
        }
        print_vector_line(y, n);
    }
    free(x);
    free(y);
    return 0;
}

static int calc_reg(cli_args *a, out_opts *o)
{
    const char *which = cli_next(a), *sl = NULL, *sw = NULL;
    if (!which || (strcmp(which, "l1") && strcmp(which, "l2"))) return cli_usage_error(o->cmd, "reg: name l1 or l2");
    const cli_option opts[] = {
        { "--lambda", "L", CLI_TEXT, .target = &sl },
        { "--weights", "W", CLI_TEXT, .target = &sw },
        CALC_OUTPUT_OPTIONS(o),
        { 0 },
    };
    int usage = cli_parse(a->cmd, a->argc - a->i, a->argv + a->i, opts, NULL, NULL, NULL);
    if (usage != CLI_GO_ON) return usage;
    if (!sl || !sw) return cli_usage_error(o->cmd, "reg %s needs --lambda and --weights", which);
    double lambda;
    float *w;
    int64_t r, c;
    if (cli_parse_double(o->cmd, "--lambda", sl, &lambda)) return EXIT_USAGE;
    int rc = cli_parse_matrix(o->cmd, "--weights", sw, &w, &r, &c);
    if (rc) return rc;
    int l1 = !strcmp(which, "l1");
    double v = l1 ? cn_reg_l1(w, r * c, lambda) : cn_reg_l2(w, r * c, lambda);
    if (o->json) {
        printf("{\"result\":");
        cli_json_float(stdout, v, 0);
        printf("}\n");
    } else {
        if (o->explain) {
            printf("%s = lambda * sum %s = %g * (", which, l1 ? "|w|" : "w^2", lambda);
            for (int64_t i = 0; i < r * c; i++)
                printf(l1 ? "%s|%g|" : "%s(%g)^2", i ? " + " : "", w[i]);
            printf(") = %g * %.6g = %.6g\n", lambda, lambda != 0 ? v / lambda : 0.0, v);
            printf("(added to the data loss: L = L_data + %s)\n", which);
        }
        print_num(v);
        putchar('\n');
    }
    free(w);
    return 0;
}

#define CALC_MAX_SIZE (INT64_C(1) << 31) /* sizes, strides and pads of conv, pool and out */

static int calc_window(cli_args *a, out_opts *o, int is_pool)
{
    cn_pool_kind kind = CN_POOL_MAX;
    if (is_pool) {
        const char *which = cli_next(a);
        if (which && !strcmp(which, "max")) kind = CN_POOL_MAX;
        else if (which && !strcmp(which, "min")) kind = CN_POOL_MIN;
        else if (which && !strcmp(which, "avg")) kind = CN_POOL_AVG;
        else return cli_usage_error(o->cmd, "pool: name max, min or avg");
    }
    const char *si = NULL, *sk = NULL;
    int64_t stride = 0, pad = 0, size = 0;
    const cli_option opts[] = {
        { "--input", "M", CLI_TEXT, .target = &si },
        is_pool ? (cli_option){ "--size", "K", CLI_INT, &size, 1, CALC_MAX_SIZE, .help = NULL }
                : (cli_option){ "--kernel", "K", CLI_TEXT, .target = &sk },
        { "--stride", "S", CLI_INT, &stride, 1, CALC_MAX_SIZE, .help = NULL },
        { "--pad", "P", CLI_INT, &pad, 0, CALC_MAX_SIZE, .help = NULL },
        CALC_OUTPUT_OPTIONS(o),
        { 0 },
    };
    int usage = cli_parse(a->cmd, a->argc - a->i, a->argv + a->i, opts, NULL, NULL, NULL);
    if (usage != CLI_GO_ON) return usage;
    if (!si || (!is_pool && !sk) || (is_pool && !size))
        return cli_usage_error(o->cmd, is_pool ? "pool needs --input and --size" : "conv needs --input and --kernel");
    if (!stride) stride = is_pool ? size : 1;
    float *x = NULL, *k = NULL, *y = NULL;
    int64_t h, w, kh = size, kw = size, oh, ow;
    int rc = cli_parse_matrix(o->cmd, "--input", si, &x, &h, &w);
    if (!rc && !is_pool) rc = cli_parse_matrix(o->cmd, "--kernel", sk, &k, &kh, &kw);
    cn_ctx *ctx = NULL;
    if (!rc && cn_ctx_create(NULL, &ctx)) rc = cli_error("out of memory");
    cn_status st = CN_OK;
    if (!rc) st = is_pool ? cn_pool2d_single(ctx, kind, x, h, w, size, stride, pad, NULL, &oh, &ow)
                          : cn_conv2d_single(ctx, x, h, w, k, kh, kw, stride, pad, NULL, &oh, &ow);
    if (!rc && st) rc = cli_ctx_error(ctx);
    if (!rc && !(y = malloc((size_t)(oh * ow) * sizeof *y))) rc = cli_error("out of memory");
    if (!rc) {
        if (is_pool) cn_pool2d_single(ctx, kind, x, h, w, size, stride, pad, y, &oh, &ow);
        else cn_conv2d_single(ctx, x, h, w, k, kh, kw, stride, pad, y, &oh, &ow);
        if (o->json) {
            printf("{\"result\":");
            print_matrix(y, oh, ow, 1);
            printf("}\n");
        } else {
            if (o->explain) {
                printf("input %lldx%lld, %s %lldx%lld, stride %lld, pad %lld\n", (long long)h, (long long)w,
                       is_pool ? "window" : "kernel", (long long)kh, (long long)kw, (long long)stride, (long long)pad);
                printf("O_h = floor((%lld - %lld + 2*%lld)/%lld) + 1 = %lld\n", (long long)h, (long long)kh,
                       (long long)pad, (long long)stride, (long long)oh);
                printf("O_w = floor((%lld - %lld + 2*%lld)/%lld) + 1 = %lld\n", (long long)w, (long long)kw,
                       (long long)pad, (long long)stride, (long long)ow);
                /* the worksheet's sum of products for each output, when it stays readable */
                if (!is_pool && oh * ow <= 36 && kh * kw <= 25) {
                    for (int64_t oy = 0; oy < oh; oy++)
                        for (int64_t ox = 0; ox < ow; ox++) {
                            printf("  y%lld%lld =", (long long)oy + 1, (long long)ox + 1);
                            int first = 1;
                            for (int64_t ky = 0; ky < kh; ky++)
                                for (int64_t kx = 0; kx < kw; kx++) {
                                    int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                    float xv = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[iy * w + ix] : 0.0f;
                                    printf("%s%g*%g", first ? " " : " + ", xv, k[ky * kw + kx]);
                                    first = 0;
                                }
                            printf(" = %g\n", y[oy * ow + ox]);
                        }
                }
            }
            print_matrix(y, oh, ow, 0);
        }
    }
    free(x), free(k), free(y);
    cn_ctx_destroy(ctx);
    return rc;
}

static int calc_out(cli_args *a, out_opts *o)
{
    int64_t in = 0, k = 0, s = 1, p = 0, d = 1, out;
    const cli_option opts[] = {
        { "--in", "W", CLI_INT, &in, 1, CALC_MAX_SIZE, .help = NULL },
        { "--kernel", "F", CLI_INT, &k, 1, CALC_MAX_SIZE, .help = NULL },
        { "--stride", "S", CLI_INT, &s, 1, CALC_MAX_SIZE, .help = NULL },
        { "--pad", "P", CLI_INT, &p, 0, CALC_MAX_SIZE, .help = NULL },
        { "--dilation", "D", CLI_INT, &d, 1, CALC_MAX_SIZE, .help = NULL },
        CALC_OUTPUT_OPTIONS(o),
        { 0 },
    };
    int usage = cli_parse(a->cmd, a->argc - a->i, a->argv + a->i, opts, NULL, NULL, NULL);
    if (usage != CLI_GO_ON) return usage;
    if (!in || !k) return cli_usage_error(o->cmd, "out needs --in and --kernel");
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    int rc = cn_conv_out_size(ctx, in, k, s, p, d, &out) ? cli_ctx_error(ctx) : 0;
    cn_ctx_destroy(ctx);
    if (rc) return rc;
    if (o->json) {
        printf("{\"result\":%lld}\n", (long long)out);
        return 0;
    }
    if (o->explain) {
        if (d == 1)
            printf("O = floor((W - F + 2P)/S) + 1 = floor((%lld - %lld + 2*%lld)/%lld) + 1 = %lld\n", (long long)in,
                   (long long)k, (long long)p, (long long)s, (long long)out);
        else
            printf("O = floor((W - F*D + D - 1 + 2P)/S) + 1 = floor((%lld - %lld*%lld + %lld - 1 + 2*%lld)/%lld) + 1 = %lld\n",
                   (long long)in, (long long)k, (long long)d, (long long)d, (long long)p, (long long)s, (long long)out);
    }
    printf("%lld\n", (long long)out);
    return 0;
}

/* ---- the quantities: one table gives the dispatch, the help and the did-you-mean ------------- */

static int run_softmax(cli_args *a, out_opts *o) { return calc_softmax(a, o); }
static int run_conv(cli_args *a, out_opts *o) { return calc_window(a, o, 0); }
static int run_pool(cli_args *a, out_opts *o) { return calc_window(a, o, 1); }

static const struct {
    const char *name;
    int (*run)(cli_args *a, out_opts *o);
    const char *usage; /* its lines of --help */
} quantities[] = {
    { "softmax", run_softmax, "  softmax X...                              probabilities from scores (X: numbers or 2,1,0.1)\n" },
    { "loss", calc_loss,
      "  loss mse|mae|ce|bce|hinge --target T --pred P [--logits]\n"
      "                                            mean over samples; T, P vectors (1,0) or matrices\n"
      "                                            (1,0,0;0,1,0: one row per sample); --logits: P are\n"
      "                                            scores, for ce and bce\n" },
    { "dice", calc_dice,
      "  dice --intersection I --a A --b B         Dice loss 1 - 2I/(A+B)\n"
      "  dice --target MASK --pred MASK            the same from two 0/1 masks\n" },
    { "batchnorm", calc_batchnorm,
      "  batchnorm X... --gamma G --beta B [--eps E]\n"
      "                                            batch statistics, biased variance, eps 1e-5\n" },
    { "reg", calc_reg, "  reg l1|l2 --lambda L --weights W          L * sum|w| or L * sum w^2\n" },
    { "conv", run_conv,
      "  conv --input M --kernel K [--stride S] [--pad P]\n"
      "                                            cross-correlation of a matrix, as CNNs compute it\n" },
    { "pool", run_pool,
      "  pool max|min|avg --input M --size K [--stride S] [--pad P]\n"
      "                                            stride defaults to the size\n" },
    { "out", calc_out,
      "  out --in W --kernel F [--stride S] [--pad P] [--dilation D]\n"
      "                                            floor((W - F*D + D - 1 + 2P)/S) + 1\n" },
};
#define N_QUANTITIES ((int)(sizeof quantities / sizeof quantities[0]))

static void help(void)
{
    printf("usage: convnet calc <quantity> [arguments] [--explain] [--json]\n\n");
    for (int i = 0; i < N_QUANTITIES; i++) printf("%s", quantities[i].usage);
    printf("\nMatrices are written inline (rows split by ';', values by ',') or as @FILE (rows on lines).\n"
           "--json prints {\"result\": ...}; --explain prints the working.\n\n"
           "examples:\n"
           "  convnet calc softmax 2 1 0.1 --explain\n"
           "  convnet calc loss ce --target '1,0,0;0,1,0;0,0,1' --pred '0.7,0.2,0.1;0.1,0.6,0.3;0.2,0.2,0.6'\n"
           "  convnet calc conv --input @image.txt --kernel '1,0,-1;1,0,-1;1,0,-1'\n");
}

int cmd_calc(int argc, char **argv)
{
    const char *names[N_QUANTITIES + 1];
    char list[256] = "";
    for (int i = 0; i < N_QUANTITIES; i++) {
        names[i] = quantities[i].name;
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    }
    names[N_QUANTITIES] = NULL;
    if (argc < 1) return cli_usage_error("calc", "name a quantity: %s", list);
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 0;
        }
    out_opts o = { "calc", 0, 0 };
    cli_args a;
    cli_args_init(&a, "calc", argc - 1, argv + 1);
    for (int i = 0; i < N_QUANTITIES; i++)
        if (!strcmp(argv[0], quantities[i].name)) return quantities[i].run(&a, &o);
    const char *best = cli_closest(argv[0], names);
    if (best) return cli_usage_error("calc", "unknown quantity '%s' (did you mean '%s'?)", argv[0], best);
    return cli_usage_error("calc", "unknown quantity '%s'; quantities: %s", argv[0], list);
}
