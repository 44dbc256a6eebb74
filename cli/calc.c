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
    FILE *out;   /* stdout, or the text kept for --json --explain */
    int quiet;   /* notes on stderr said already (the second run of --json --explain) */
} out_opts;

static void print_num(FILE *f, double v) { fprintf(f, "%.6g", v); }

static void print_vector_line(FILE *f, const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (i) fputc(' ', f);
        print_num(f, v[i]);
    }
    fputc('\n', f);
}

static void print_vector_json(FILE *f, const float *v, int64_t n)
{
    fputc('[', f);
    for (int64_t i = 0; i < n; i++) {
        if (i) fputc(',', f);
        cli_json_float(f, v[i], 1);
    }
    fputc(']', f);
}

static void print_matrix(FILE *f, const float *v, int64_t rows, int64_t cols, int json)
{
    if (json) {
        fputc('[', f);
        for (int64_t r = 0; r < rows; r++) {
            if (r) fputc(',', f);
            print_vector_json(f, v + r * cols, cols);
        }
        fputc(']', f);
        return;
    }
    int width = 1;
    char buf[32];
    for (int64_t i = 0; i < rows * cols; i++) {
        int l = snprintf(buf, sizeof buf, "%.6g", v[i]);
        if (l > width) width = l;
    }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) fprintf(f, "%s%*.6g", c ? " " : "", width, v[r * cols + c]);
        fputc('\n', f);
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
        fprintf(o->out, "{\"result\":");
        print_vector_json(o->out, y, n);
        fprintf(o->out, "}\n");
    } else {
        if (o->explain) {
            /* the worksheet's e^x_i, unless their sum overflows or vanishes in a double (scores
             * beyond about +-700): then the kernel's working, e^(x_i - m) with m the largest */
            double sum = 0, m = x[0];
            for (int64_t i = 0; i < n; i++) sum += exp((double)x[i]), m = x[i] > m ? x[i] : m;
            int shift = !(sum >= DBL_MIN && sum <= DBL_MAX);
            if (shift) {
                fprintf(o->out, "softmax_i = e^(x_i - m) / sum_j e^(x_j - m), m = max_j x_j = %g\n", m);
                sum = 0;
            } else {
                m = 0;
                fprintf(o->out, "softmax_i = e^x_i / sum_j e^x_j\n");
            }
            for (int64_t i = 0; i < n; i++) {
                if (shift) {
                    fprintf(o->out, "  e^(%g %c %g) = %.6g\n", x[i], m < 0 ? '+' : '-', fabs(m), exp((double)x[i] - m));
                    sum += exp((double)x[i] - m);
                } else {
                    fprintf(o->out, "  e^%g = %.6g\n", x[i], exp((double)x[i]));
                }
            }
            fprintf(o->out, "  sum = %.6g\n", sum);
            for (int64_t i = 0; i < n; i++)
                fprintf(o->out, "  S%lld = %.6g / %.6g = %.6g\n", (long long)i + 1, exp((double)x[i] - m), sum, y[i]);
        }
        print_vector_line(o->out, y, n);
    }
    free(x);
    free(y);
    return 0;
}

/* Cross-entropy compares two distributions: a row of targets (or of probabilities) that does not
 * sum to 1 still gives a number, but seldom the one meant (scores given without --logits, a
 * target typed wrong); said on stderr, the first such row of each, and the loss computed as asked. */
static void note_unlike_distributions(cn_loss_kind kind, const float *t, const float *p, int64_t rows, int64_t cols)
{
    for (int side = 0; side < 2; side++) {
        const float *m = side ? p : t;
        if (side && kind == CN_LOSS_CE_LOGITS) break; /* scores: any values */
        for (int64_t r = 0; r < rows; r++) {
            double sum = 0;
            for (int64_t c = 0; c < cols; c++) sum += m[r * cols + c];
            if (fabs(sum - 1.0) <= 1e-3) continue;
            fprintf(stderr, "convnet calc: note: sample %lld's %s sum to %g, not 1%s\n", (long long)r + 1,
                    side ? "probabilities (--pred)" : "targets", sum,
                    side ? ": are they scores? then add --logits" : ": cross-entropy's targets are a distribution");
            break;
        }
    }
}

static int calc_loss(cli_args *a, out_opts *o)
{
    /* the short names first (the help's), then the long ones a student may type */
    static const struct { const char *name; cn_loss_kind kind, logits; } kinds[] = {
        { "mse", CN_LOSS_MSE, CN_LOSS_MSE }, { "mae", CN_LOSS_MAE, CN_LOSS_MAE },
        { "ce", CN_LOSS_CE, CN_LOSS_CE_LOGITS }, { "bce", CN_LOSS_BCE, CN_LOSS_BCE_LOGITS },
        { "hinge", CN_LOSS_HINGE, CN_LOSS_HINGE },
        { "mean-squared-error", CN_LOSS_MSE, CN_LOSS_MSE }, { "mean-absolute-error", CN_LOSS_MAE, CN_LOSS_MAE },
        { "cross-entropy", CN_LOSS_CE, CN_LOSS_CE_LOGITS }, { "crossentropy", CN_LOSS_CE, CN_LOSS_CE_LOGITS },
        { "binary-cross-entropy", CN_LOSS_BCE, CN_LOSS_BCE_LOGITS }, { "l1", CN_LOSS_MAE, CN_LOSS_MAE },
    };
    const char *which = cli_next(a), *tgt = NULL, *prd = NULL;
    int logits = 0, k = -1;
    for (int i = 0; which && i < (int)(sizeof kinds / sizeof kinds[0]); i++)
        if (!strcmp(which, kinds[i].name)) k = i;
    if (k < 0) return cli_usage_error(o->cmd, "loss: name one of mse, mae, ce, bce, hinge (or cross-entropy, ...)%s%s%s",
                                      which ? " (got '" : "", which ? which : "", which ? "')" : "");
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
    if (!rc && !o->quiet && (kind == CN_LOSS_CE || kind == CN_LOSS_CE_LOGITS)) note_unlike_distributions(kind, t, p, tr, tc);
    if (!rc) {
        if (o->json) {
            fprintf(o->out, "{\"result\":");
            cli_json_float(o->out, loss, 0);
            fprintf(o->out, ",\"loss\":\"%s\",\"per_sample\":[", cn_loss_name(kind));
            for (int64_t r = 0; r < tr; r++) {
                if (r) fputc(',', o->out);
                cli_json_float(o->out, per[r], 0);
            }
            fprintf(o->out, "]}\n");
        } else {
            if (o->explain) {
                static const char *formula[] = {
                    "mean_j (t_j - p_j)^2", "mean_j |t_j - p_j|", "-sum_j t_j log(p_j)",
                    "-sum_j t_j ((z_j - m) - log sum_k e^(z_k - m)), m = max_k z_k", "mean_j -[t_j log(p_j) + (1 - t_j) log(1 - p_j)]",
                    "mean_j max(z,0) - z t + log(1 + e^-|z|)", "mean_j max(0, 1 - t_j p_j)", "",
                };
                fprintf(o->out, "%s per sample = %s%s\n", cn_loss_name(kind), formula[kind],
                       kind == CN_LOSS_CE || kind == CN_LOSS_CE_LOGITS ? "" : "  (mean over the values of a row)");
                /* elementwise losses: each value's term is the loss of that one value */
                int elementwise = kind != CN_LOSS_CE && kind != CN_LOSS_CE_LOGITS && tc > 1;
                for (int64_t r = 0; r < tr; r++) {
                    fprintf(o->out, "  sample %lld: t = [", (long long)r + 1);
                    for (int64_t c = 0; c < tc; c++) fprintf(o->out, "%s%g", c ? ", " : "", t[r * tc + c]);
                    fprintf(o->out, "], p = [");
                    for (int64_t c = 0; c < tc; c++) fprintf(o->out, "%s%g", c ? ", " : "", p[r * tc + c]);
                    fprintf(o->out, "]");
                    if (elementwise) {
                        fprintf(o->out, ", terms [");
                        for (int64_t c = 0; c < tc; c++) {
                            double term = 0;
                            cn_loss(ctx, kind, t + r * tc + c, p + r * tc + c, 1, 1, &term, NULL);
                            fprintf(o->out, "%s%.6g", c ? ", " : "", term);
                        }
                        fprintf(o->out, "]");
                    }
                    fprintf(o->out, " -> %.6g\n", per[r]);
                }
                fprintf(o->out, "  mean over %lld sample%s = %.6g\n", (long long)tr, tr == 1 ? "" : "s", loss);
                /* a log of 0 (or of less than e^-100) counted: said, else 100 comes from nowhere */
                int clamped = 0;
                for (int64_t i = 0; i < tr * tc && (kind == CN_LOSS_CE || kind == CN_LOSS_BCE); i++)
                    clamped |= (t[i] > 0 && !(log(p[i]) > -100)) || (kind == CN_LOSS_BCE && t[i] < 1 && !(log(1.0 - p[i]) > -100));
                if (clamped)
                    fprintf(o->out, "  a log of 0 is taken as -100, as PyTorch's BCELoss clamps its logs: such a term costs 100,\n"
                           "  not infinity\n");
            }
            print_num(o->out, loss);
            fputc('\n', o->out);
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
        fprintf(o->out, "{\"result\":");
        cli_json_float(o->out, 1.0 - coef, 0);
        fprintf(o->out, ",\"coefficient\":");
        cli_json_float(o->out, coef, 0);
        fprintf(o->out, "}\n");
        return 0;
    }
    if (o->explain) {
        fprintf(o->out, "Dice coefficient = 2|A n B| / (|A| + |B|) = 2*%g / (%g + %g) = %.6g\n", inter, na, nb, coef);
        fprintf(o->out, "Dice loss = 1 - %.6g = %.6g\n", coef, 1.0 - coef);
    }
    print_num(o->out, 1.0 - coef);
    fputc('\n', o->out);
    return 0;
}

static int calc_batchnorm(cli_args *a, out_opts *o)
{
    double g = 1, b = 0, e = 1e-5;
    const cli_option opts[] = {
        { "--gamma", "G", CLI_REAL, .target = &g },
        { "--beta", "B", CLI_REAL, .target = &b },
        { "--eps", "E", CLI_REAL, .target = &e },
        CALC_OUTPUT_OPTIONS(o),
        { 0 },
    };
    float *x = NULL;
    int64_t n = 0;
    int rc = gather_values(a, "values", opts, &x, &n, o);
    if (rc) return rc;
    if (e < 0) return free(x), cli_usage_error(o->cmd, "--eps must be >= 0");
    float *y = malloc((size_t)n * sizeof *y), mean, var;
    if (!y) return free(x), cli_error("out of memory");
    cn_batchnorm_1d(x, y, n, (float)g, (float)b, (float)e, &mean, &var);
    if ((double)var + e <= 0) {
        free(x), free(y);
        return cli_error("batchnorm: the values have variance 0; give --eps > 0");
    }
    if (o->json) {
        fprintf(o->out, "{\"result\":");
        print_vector_json(o->out, y, n);
        fprintf(o->out, ",\"mean\":");
        cli_json_float(o->out, mean, 1);
        fprintf(o->out, ",\"var\":");
        cli_json_float(o->out, var, 1);
        fprintf(o->out, "}\n");
    } else {
        if (o->explain) {
            double sd = sqrt((double)var + e);
            fprintf(o->out, "mean = %.6g, variance (biased, divide by %lld) = %.6g\n", mean, (long long)n, var);
            fprintf(o->out, "x_hat = (x - mean) / sqrt(var + eps) = (x - %.6g) / sqrt(%.6g + %g) = (x - %.6g) / %.6g\n", mean,
                   var, e, mean, sd);
            fprintf(o->out, "y = gamma * x_hat + beta = %g * x_hat + %g\n", g, b);
            for (int64_t i = 0; i < n; i++)
                fprintf(o->out, "  x = %g: x_hat = %.6g, y = %.6g\n", x[i], ((double)x[i] - mean) / sd, y[i]);
        }
        print_vector_line(o->out, y, n);
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
        fprintf(o->out, "{\"result\":");
        cli_json_float(o->out, v, 0);
        fprintf(o->out, "}\n");
    } else {
        if (o->explain) {
            fprintf(o->out, "%s = lambda * sum %s = %g * (", which, l1 ? "|w|" : "w^2", lambda);
            for (int64_t i = 0; i < r * c; i++)
                fprintf(o->out, l1 ? "%s|%g|" : "%s(%g)^2", i ? " + " : "", w[i]);
            fprintf(o->out, ") = %g * %.6g = %.6g\n", lambda, lambda != 0 ? v / lambda : 0.0, v);
            fprintf(o->out, "(added to the data loss: L = L_data + %s)\n", which);
        }
        print_num(o->out, v);
        fputc('\n', o->out);
    }
    free(w);
    return 0;
}

#define CALC_MAX_SIZE (INT64_C(1) << 31) /* sizes, strides and pads of conv, pool and out */

/* The values of window (oy, ox) of a pooling, as the worksheet lists them: "2, 2, 9, 4"; padded
 * cells are skipped by max and min and written as 0 for avg, which counts them. */
static void print_window(FILE *f, cn_pool_kind kind, const float *x, int64_t h, int64_t w, int64_t size, int64_t stride,
                         int64_t pad, int64_t oy, int64_t ox)
{
    int first = 1;
    for (int64_t ky = 0; ky < size; ky++)
        for (int64_t kx = 0; kx < size; kx++) {
            int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
            int inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
            if (!inside && kind != CN_POOL_AVG) continue;
            fprintf(f, "%s%g", first ? "" : kind == CN_POOL_AVG ? " + " : ", ", inside ? x[iy * w + ix] : 0.0f);
            first = 0;
        }
}

static int calc_window(cli_args *a, out_opts *o, int is_pool)
{
    static const char *const pool_names[] = { "max", "min", "avg" };
    cn_pool_kind kinds[3] = { CN_POOL_MAX };
    int n_kinds = 1;
    if (is_pool) {
        /* one kind, "all", or a list "max,avg" */
        const char *which = cli_next(a);
        n_kinds = 0;
        if (which && !strcmp(which, "all")) which = "max,min,avg";
        for (const char *p = which; p && *p && n_kinds >= 0;) {
            size_t l = strcspn(p, ",");
            int k = -1;
            for (int j = 0; j < 3; j++)
                if (strlen(pool_names[j]) == l && !strncmp(p, pool_names[j], l)) k = j;
            for (int j = 0; j < n_kinds && k >= 0; j++)
                if (kinds[j] == (cn_pool_kind)k) k = -1;
            if (k < 0 || n_kinds == 3) n_kinds = -1;
            else kinds[n_kinds++] = (cn_pool_kind)k;
            p += l + (p[l] == ',');
        }
        if (n_kinds <= 0) return cli_usage_error(o->cmd, "pool: name max, min, avg, a list of them (max,avg) or all");
    }
    const char *si = NULL, *sk = NULL;
    int64_t stride = 0, pad = 0, size = 0;
    double bias = 0;
    const cli_option opts[] = {
        { "--input", "M", CLI_TEXT, .target = &si },
        is_pool ? (cli_option){ "--size", "K", CLI_INT, &size, 1, CALC_MAX_SIZE, .help = NULL }
                : (cli_option){ "--kernel", "K", CLI_TEXT, .target = &sk },
        { "--stride", "S", CLI_INT, &stride, 1, CALC_MAX_SIZE, .help = NULL },
        { "--pad", "P", CLI_INT, &pad, 0, CALC_MAX_SIZE, .help = NULL },
        CALC_OUTPUT_OPTIONS(o),
        is_pool ? (cli_option){ 0 } : (cli_option){ "--bias", "B", CLI_REAL, &bias, .help = NULL }, /* conv's last */
        { 0 },
    };
    int usage = cli_parse(a->cmd, a->argc - a->i, a->argv + a->i, opts, NULL, NULL, NULL);
    if (usage != CLI_GO_ON) return usage;
    if (!si || (!is_pool && !sk) || (is_pool && !size))
        return cli_usage_error(o->cmd, is_pool ? "pool needs --input and --size" : "conv needs --input and --kernel");
    if (!stride) stride = is_pool ? size : 1;
    float *x = NULL, *k = NULL, *y = NULL, *part = NULL;
    int64_t h = 0, w = 0, kh = size, kw = size, oh = 0, ow = 0, ch = 1, kch = 1;
    /* channels apart by '|'; conv: the kernel as deep as the input (the depth of a kernel) */
    int rc = cli_parse_channels(o->cmd, "--input", si, &x, &ch, &h, &w);
    if (!rc && !is_pool) rc = cli_parse_channels(o->cmd, "--kernel", sk, &k, &kch, &kh, &kw);
    if (!rc && !is_pool && kch != ch)
        rc = cli_usage_error(o->cmd, "conv: the kernel is %lld deep but the input has %lld channel%s: a kernel spans every "
                             "channel of its input (write a kernel's channels apart by '|', as the input's)",
                             (long long)kch, (long long)ch, ch == 1 ? "" : "s");
    cn_ctx *ctx = NULL;
    if (!rc && cn_ctx_create(NULL, &ctx)) rc = cli_error("out of memory");
    cn_status st = CN_OK;
    if (!rc) st = is_pool ? cn_pool2d_single(ctx, kinds[0], x, h, w, size, stride, pad, NULL, &oh, &ow)
                          : cn_conv2d_single(ctx, x, h, w, k, kh, kw, stride, pad, NULL, &oh, &ow);
    if (!rc && st) rc = cli_ctx_error(ctx);
    if (!rc && (!(y = malloc((size_t)(oh * ow) * sizeof *y)) || !(part = malloc((size_t)(oh * ow) * sizeof *part))))
        rc = cli_error("out of memory");
    if (!rc && o->explain && !o->json) {
        if (ch > 1 && is_pool)
            fprintf(o->out, "input %lldx%lldx%lld (channels x rows x columns), window %lldx%lld: each channel pooled alone "
                   "(the depth stays %lld); stride %lld, pad %lld\n",
                   (long long)ch, (long long)h, (long long)w, (long long)kh, (long long)kw, (long long)ch, (long long)stride,
                   (long long)pad);
        else if (ch > 1)
            fprintf(o->out, "input %lldx%lldx%lld (channels x rows x columns), kernel %lldx%lldx%lld: as deep as the input, "
                   "a %lldx%lld slice a channel, their sums added%s; stride %lld, pad %lld\n",
                   (long long)ch, (long long)h, (long long)w, (long long)ch, (long long)kh, (long long)kw, (long long)kh,
                   (long long)kw, bias != 0 ? ", then the bias" : "", (long long)stride, (long long)pad);
        else
            fprintf(o->out, "input %lldx%lld, %s %lldx%lld, stride %lld, pad %lld\n", (long long)h, (long long)w,
                   is_pool ? "window" : "kernel", (long long)kh, (long long)kw, (long long)stride, (long long)pad);
        fprintf(o->out, "O_h = floor((%lld - %lld + 2*%lld)/%lld) + 1 = %lld\n", (long long)h, (long long)kh, (long long)pad,
               (long long)stride, (long long)oh);
        fprintf(o->out, "O_w = floor((%lld - %lld + 2*%lld)/%lld) + 1 = %lld\n", (long long)w, (long long)kw, (long long)pad,
               (long long)stride, (long long)ow);
    }
    /* the worksheet's working for each output, when it stays readable */
    int readable = oh * ow <= 36 && (is_pool ? kh * kw <= 25 : ch * kh * kw <= 27);
    int64_t maps = is_pool ? ch : 1; /* pooling keeps the depth: a map a channel */
    if (!rc && o->json) fprintf(o->out, "{\"result\":%s", is_pool && n_kinds > 1 ? "{" : "");
    for (int q = 0; !rc && q < n_kinds; q++) {
        if (o->json && is_pool && n_kinds > 1) fprintf(o->out, "%s\"%s\":", q ? "," : "", pool_names[kinds[q]]);
        if (o->json && maps > 1) fprintf(o->out, "[");
        if (!o->json && n_kinds > 1) fprintf(o->out, "%s%s pooling:\n", q ? "\n" : "", pool_names[kinds[q]]);
        for (int64_t m = 0; m < maps; m++) {
            const float *xm = x + m * h * w;
            if (is_pool) cn_pool2d_single(ctx, kinds[q], xm, h, w, size, stride, pad, y, &oh, &ow);
            else /* the channels' sums added in order, then the bias */
                for (int64_t c = 0; c < ch; c++) {
                    cn_conv2d_single(ctx, x + c * h * w, h, w, k + c * kh * kw, kh, kw, stride, pad, c ? part : y, &oh, &ow);
                    for (int64_t i = 0; c && i < oh * ow; i++) y[i] += part[i];
                }
            for (int64_t i = 0; !is_pool && bias != 0 && i < oh * ow; i++) y[i] += (float)bias;
            if (o->json) {
                fprintf(o->out, "%s", m ? "," : "");
                print_matrix(o->out, y, oh, ow, 1);
                continue;
            }
            if (maps > 1) fprintf(o->out, "%schannel %lld:\n", m ? "\n" : "", (long long)m + 1);
            for (int64_t oy = 0; o->explain && readable && oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    fprintf(o->out, "  y%lld%lld = ", (long long)oy + 1, (long long)ox + 1);
                    if (is_pool) {
                        fprintf(o->out, kinds[q] == CN_POOL_AVG ? "(" : "%s(", pool_names[kinds[q]]);
                        print_window(o->out, kinds[q], xm, h, w, size, stride, pad, oy, ox);
                        if (kinds[q] == CN_POOL_AVG) fprintf(o->out, ") / %lld", (long long)(size * size));
                        else fprintf(o->out, ")");
                        fprintf(o->out, " = %g\n", y[oy * ow + ox]);
                        continue;
                    }
                    for (int64_t c = 0; c < ch; c++) {
                        fprintf(o->out, "%s", c ? ") + (" : ch > 1 ? "(" : "");
                        for (int64_t ky = 0; ky < kh; ky++)
                            for (int64_t kx = 0; kx < kw; kx++) {
                                int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                float xv = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[(c * h + iy) * w + ix] : 0.0f;
                                fprintf(o->out, "%s%g*%g", ky || kx ? " + " : "", xv, k[(c * kh + ky) * kw + kx]);
                            }
                    }
                    fprintf(o->out, "%s", ch > 1 ? ")" : "");
                    if (bias != 0) fprintf(o->out, " + %g", bias);
                    fprintf(o->out, " = %g\n", y[oy * ow + ox]);
                }
            print_matrix(o->out, y, oh, ow, 0);
        }
        if (o->json && maps > 1) fprintf(o->out, "]");
    }
    if (!rc && o->json) fprintf(o->out, "%s}\n", is_pool && n_kinds > 1 ? "}" : "");
    free(x), free(k), free(y), free(part);
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
        fprintf(o->out, "{\"result\":%lld}\n", (long long)out);
        return 0;
    }
    if (o->explain) {
        if (d == 1)
            fprintf(o->out, "O = floor((W - F + 2P)/S) + 1 = floor((%lld - %lld + 2*%lld)/%lld) + 1 = %lld\n", (long long)in,
                   (long long)k, (long long)p, (long long)s, (long long)out);
        else
            fprintf(o->out, "O = floor((W - F*D + D - 1 + 2P)/S) + 1 = floor((%lld - %lld*%lld + %lld - 1 + 2*%lld)/%lld) + 1 = %lld\n",
                   (long long)in, (long long)k, (long long)d, (long long)d, (long long)p, (long long)s, (long long)out);
    }
    fprintf(o->out, "%lld\n", (long long)out);
    return 0;
}

/* One optimizer update of a weight (or a vector of weights), by the library's own update code
 * (cn_optim_update), with the rule written out and filled in. t counts steps from 1, as Adam's
 * bias corrections do. */
static int calc_step(cli_args *a, out_opts *o)
{
    const char *which = cli_next(a), *sw = NULL, *sg = NULL, *sv = NULL, *sm = NULL;
    cn_optim_kind kind;
    if (!which || !cn_optim_kind_from_name(which, &kind))
        return cli_usage_error(o->cmd, "step: name sgd, momentum, nesterov, adam or adamw%s%s%s", which ? " (got '" : "",
                               which ? which : "", which ? "')" : "");
    cn_optim_config c;
    cn_optim_defaults(&c, kind);
    int64_t t = 1;
    const cli_option opts[] = {
        { "--w", "W", CLI_TEXT, .target = &sw },
        { "--grad", "G", CLI_TEXT, .target = &sg },
        { "--lr", "LR", CLI_REAL, .target = &c.lr },
        { "--momentum", "MU", CLI_REAL, .target = &c.momentum },
        { "--weight-decay", "WD", CLI_REAL, .target = &c.weight_decay },
        { "--beta1", "B1", CLI_REAL, .target = &c.beta1 },
        { "--beta2", "B2", CLI_REAL, .target = &c.beta2 },
        { "--eps", "E", CLI_REAL, .target = &c.eps },
        { "--t", "T", CLI_INT, &t, 1, INT64_C(1) << 40, .help = NULL },
        { "--m", "M", CLI_TEXT, .target = &sm },
        { "--v", "V", CLI_TEXT, .target = &sv },
        CALC_OUTPUT_OPTIONS(o),
        { 0 },
    };
    int usage = cli_parse(a->cmd, a->argc - a->i, a->argv + a->i, opts, NULL, NULL, NULL);
    if (usage != CLI_GO_ON) return usage;
    if (!sw || !sg) return cli_usage_error(o->cmd, "step %s needs --w and --grad", which);
    int adam = kind == CN_OPTIM_ADAM || kind == CN_OPTIM_ADAMW, has_state = kind != CN_OPTIM_SGD;
    if (sm && !adam) return cli_usage_error(o->cmd, "--m is Adam's first moment: for adam and adamw only");
    if (sv && !has_state) return cli_usage_error(o->cmd, "sgd keeps no state: --v is for momentum, nesterov, adam, adamw");
    if (c.lr < 0 || c.momentum < 0 || c.beta1 < 0 || c.beta1 >= 1 || c.beta2 < 0 || c.beta2 >= 1 || c.eps < 0)
        return cli_usage_error(o->cmd, "step: --lr, --momentum, --eps >= 0 and betas in [0, 1)");
    /* m: the first state (momentum buffer, or Adam's first moment), v: Adam's second; m0, v0 before */
    float *w = NULL, *g = NULL, *m = NULL, *v = NULL, *w0 = NULL, *m0 = NULL, *v0 = NULL;
    int64_t n = 0, r, k;
    int rc = cli_parse_matrix(o->cmd, "--w", sw, &w, &r, &k);
    if (!rc) n = r * k, rc = cli_parse_matrix(o->cmd, "--grad", sg, &g, &r, &k);
    if (!rc && r * k != n) rc = cli_usage_error(o->cmd, "--w has %lld values but --grad %lld", (long long)n, (long long)(r * k));
    /* the state: given, else zeros (a first step) */
    const char *given[2] = { adam ? sm : sv, adam ? sv : NULL };
    float **state[2] = { &m, &v };
    for (int s = 0; s < 2 && !rc; s++) {
        if (s == 1 && !adam) break;
        if (s == 0 && !has_state) break;
        if (given[s]) {
            if (!(rc = cli_parse_matrix(o->cmd, s == 0 && adam ? "--m" : "--v", given[s], state[s], &r, &k)) && r * k != n)
                rc = cli_usage_error(o->cmd, "%s has %lld values but --w %lld", s == 0 && adam ? "--m" : "--v",
                                     (long long)(r * k), (long long)n);
        } else if (!(*state[s] = calloc((size_t)n, sizeof(float)))) {
            rc = cli_error("out of memory");
        }
    }
    if (!rc && (!(w0 = malloc((size_t)n * sizeof *w0)) || (m && !(m0 = malloc((size_t)n * sizeof *m0))) ||
                (v && !(v0 = malloc((size_t)n * sizeof *v0)))))
        rc = cli_error("out of memory");
    if (rc) goto done;
    memcpy(w0, w, (size_t)n * sizeof *w);
    if (m) memcpy(m0, m, (size_t)n * sizeof *m);
    if (v) memcpy(v0, v, (size_t)n * sizeof *v);
    cn_optim_update(&c, t - 1, w, g, m, adam ? v : NULL, n);
    if (o->json) {
        fprintf(o->out, "{\"result\":");
        print_vector_json(o->out, w, n);
        if (m) fprintf(o->out, ",\"%s\":", adam ? "m" : "v"), print_vector_json(o->out, m, n);
        if (adam) fprintf(o->out, ",\"v\":"), print_vector_json(o->out, v, n);
        fprintf(o->out, ",\"optimizer\":\"%s\",\"t\":%lld}\n", cn_optim_kind_name(kind), (long long)t);
        goto done;
    }
    if (o->explain) {
        double lr = c.lr, wd = c.weight_decay, b1 = c.beta1, b2 = c.beta2;
        static const char *rule[] = {
            "w <- w - lr * g",
            "v <- mu * v + g;  w <- w - lr * v",
            "v <- mu * v + g;  w <- w - lr * (g + mu * v)",
            "m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  w <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)",
            "w <- w (1 - lr wd);  then Adam's rule",
        };
        fprintf(o->out, "%s: %s\n", cn_optim_kind_name(kind), rule[kind]);
        if (wd != 0 && kind != CN_OPTIM_ADAMW) fprintf(o->out, "  (weight decay as L2: g <- g + wd * w, wd = %g)\n", wd);
        for (int64_t i = 0; i < n; i++) {
            double wi = w0[i], gi = g[i];
            if (n > 1) fprintf(o->out, "value %lld:\n", (long long)i + 1);
            if (wd != 0 && kind != CN_OPTIM_ADAMW) {
                fprintf(o->out, "  g = %g + %g * %g = %.6g\n", gi, wd, wi, gi + wd * wi);
                gi += wd * wi;
            }
            switch (kind) {
            case CN_OPTIM_SGD: fprintf(o->out, "  w = %g - %g * %g = %.6g\n", wi, lr, gi, w[i]); break;
            case CN_OPTIM_MOMENTUM:
                fprintf(o->out, "  v = %g * %g + %g = %.6g\n", c.momentum, m0[i], gi, m[i]);
                fprintf(o->out, "  w = %g - %g * %.6g = %.6g\n", wi, lr, m[i], w[i]);
                break;
            case CN_OPTIM_NESTEROV:
                fprintf(o->out, "  v = %g * %g + %g = %.6g\n", c.momentum, m0[i], gi, m[i]);
                fprintf(o->out, "  w = %g - %g * (%g + %g * %.6g) = %.6g\n", wi, lr, gi, c.momentum, m[i], w[i]);
                break;
            case CN_OPTIM_ADAM:
            case CN_OPTIM_ADAMW: {
                if (kind == CN_OPTIM_ADAMW && wd != 0) {
                    fprintf(o->out, "  w = %g * (1 - %g * %g) = %.6g\n", wi, lr, wd, wi * (1.0 - lr * wd));
                    wi *= 1.0 - lr * wd;
                }
                double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
                fprintf(o->out, "  m = %g * %g + (1 - %g) * %g = %.6g\n", b1, m0[i], b1, gi, m[i]);
                fprintf(o->out, "  v = %g * %g + (1 - %g) * %g^2 = %.6g\n", b2, v0[i], b2, gi, v[i]);
                fprintf(o->out, "  m_hat = %.6g / (1 - %g^%lld) = %.6g\n", m[i], b1, (long long)t, m[i] / bc1);
                fprintf(o->out, "  v_hat = %.6g / (1 - %g^%lld) = %.6g\n", v[i], b2, (long long)t, v[i] / bc2);
                fprintf(o->out, "  w = %.6g - %g * %.6g / (sqrt(%.6g) + %g) = %.6g\n", wi, lr, m[i] / bc1, v[i] / bc2, c.eps, w[i]);
                break;
            }
            }
        }
    }
    print_vector_line(o->out, w, n);
done:
    free(w), free(g), free(m), free(v), free(w0), free(m0), free(v0);
    return rc;
}

/* The receptive field and jump of a stack of layers given by their kernels, strides and
 * dilations: rf_l = rf_(l-1) + (k_l - 1) d_l j_(l-1), j_l = j_(l-1) s_l, from rf_0 = j_0 = 1. */
static int calc_rf(cli_args *a, out_opts *o)
{
    const char *sk = NULL, *ss = NULL, *sd = NULL;
    const cli_option opts[] = {
        { "--kernels", "K", CLI_TEXT, .target = &sk },
        { "--strides", "S", CLI_TEXT, .target = &ss },
        { "--dilations", "D", CLI_TEXT, .target = &sd },
        CALC_OUTPUT_OPTIONS(o),
        { 0 },
    };
    int usage = cli_parse(a->cmd, a->argc - a->i, a->argv + a->i, opts, NULL, NULL, NULL);
    if (usage != CLI_GO_ON) return usage;
    if (!sk) return cli_usage_error(o->cmd, "rf needs --kernels (one per layer, e.g. 3,3,2)");
    float *k = NULL, *s = NULL, *d = NULL;
    int64_t n = 0, r, c;
    int rc = cli_parse_matrix(o->cmd, "--kernels", sk, &k, &r, &c);
    if (!rc) n = r * c;
    const char *names[2] = { "--strides", "--dilations" };
    const char *given[2] = { ss, sd };
    float **vals[2] = { &s, &d };
    for (int i = 0; i < 2 && !rc; i++) {
        if (!given[i]) continue;
        if (!(rc = cli_parse_matrix(o->cmd, names[i], given[i], vals[i], &r, &c)) && r * c != n)
            rc = cli_usage_error(o->cmd, "%s has %lld values for %lld kernels", names[i], (long long)(r * c), (long long)n);
    }
    /* every value a whole number from 1 to CALC_MAX_SIZE; the products stay in int64 (checked) */
    for (int64_t i = 0; !rc && i < n; i++) {
        float v3[3] = { k[i], s ? s[i] : 1, d ? d[i] : 1 };
        for (int j = 0; j < 3 && !rc; j++)
            if (!(v3[j] >= 1 && v3[j] <= (float)CALC_MAX_SIZE && v3[j] == floorf(v3[j])))
                rc = cli_usage_error(o->cmd, "rf: layer %lld: %s %g is not a whole number >= 1", (long long)i + 1,
                                     j == 0 ? "kernel" : j == 1 ? "stride" : "dilation", v3[j]);
    }
    int64_t rf = 1, jump = 1;
    if (!rc && !o->json && o->explain) fprintf(o->out, "rf_l = rf_(l-1) + (k_l - 1) * d_l * j_(l-1),  j_l = j_(l-1) * s_l,  rf_0 = j_0 = 1\n");
    if (!rc && o->json) fprintf(o->out, "{\"layers\":[");
    for (int64_t i = 0; !rc && i < n; i++) {
        int64_t ki = (int64_t)k[i], si = s ? (int64_t)s[i] : 1, di = d ? (int64_t)d[i] : 1, grow, nrf, njump;
        if (!cn_mul_ok((ki - 1) * di, jump, &grow) || !cn_add_ok(rf, grow, &nrf) || !cn_mul_ok(jump, si, &njump)) {
            rc = cli_error("rf: layer %lld: the receptive field overflows 64 bits", (long long)i + 1);
            break;
        }
        if (o->json) fprintf(o->out, "%s{\"rf\":%lld,\"jump\":%lld}", i ? "," : "", (long long)nrf, (long long)njump);
        else if (o->explain)
            fprintf(o->out, "  layer %lld (k %lld, s %lld, d %lld): rf = %lld + (%lld - 1) * %lld * %lld = %lld, j = %lld * %lld = %lld\n",
                   (long long)i + 1, (long long)ki, (long long)si, (long long)di, (long long)rf, (long long)ki,
                   (long long)di, (long long)jump, (long long)nrf, (long long)jump, (long long)si, (long long)njump);
        rf = nrf, jump = njump;
    }
    if (!rc) {
        if (o->json) fprintf(o->out, "],\"result\":%lld,\"jump\":%lld}\n", (long long)rf, (long long)jump);
        else fprintf(o->out, "receptive field %lld, jump %lld\n", (long long)rf, (long long)jump);
    }
    free(k), free(s), free(d);
    return rc;
}

/* ---- act: an activation and its derivative, by the engine's own layer ------------------------- */

/* the working of f(x) and f'(x) in double, as the notes write them (the printed values are the
 * engine's: a net of one such layer, forward and backward) */
/* A net of one layer over n values (input 1x1xn; layer), its parameters and generator seeded as
 * training seeds them: act and dropout run the engine's own kernels on the worksheet's numbers.
 * 0, or the exit status after the error (*ctx and *net then for the caller to free). */
static int layer_net(const char *layer, int64_t n, uint64_t seed, cn_ctx **ctx, cn_net **net)
{
    char spec[128];
    snprintf(spec, sizeof spec, "input 1x1x%lld; %s", (long long)n, layer);
    *net = NULL;
    if (cn_ctx_create(NULL, ctx)) return *ctx = NULL, cli_error("out of memory");
    if (cli_load_net(*ctx, NULL, spec, net) || cn_net_init_params(*ctx, *net, CN_INIT_KAIMING_NORMAL, seed))
        return cli_ctx_error(*ctx);
    return 0;
}

/* x for a product: in parentheses when negative, so "2 * (-1)" reads right */
static const char *factor(double x, char *buf, size_t cap)
{
    snprintf(buf, cap, x < 0 ? "(%g)" : "%g", x);
    return buf;
}

static void act_explain(FILE *f, const char *kind, double a, double x)
{
    char fx[48];
    factor(x, fx, sizeof fx);
    double s = 1 / (1 + exp(-x)), t = tanh(x), phi = 0.5 * erfc(-x / sqrt(2.0)), pdf = exp(-x * x / 2) / sqrt(2 * 3.14159265358979323846);
    if (!strcmp(kind, "sigmoid"))
        fprintf(f, "  x = %g: f = 1 / (1 + e^-x) = 1 / (1 + %.6g) = %.6g;  f' = f (1 - f) = %.6g * %.6g = %.6g\n", x, exp(-x), s,
               s, 1 - s, s * (1 - s));
    else if (!strcmp(kind, "tanh"))
        fprintf(f, "  x = %g: f = (e^x - e^-x) / (e^x + e^-x) = %.6g;  f' = 1 - f^2 = 1 - %.6g = %.6g\n", x, t, t * t, 1 - t * t);
    else if (!strcmp(kind, "relu"))
        fprintf(f, "  x = %g: f = max(0, x) = %g;  f' = %s = %g\n", x, x > 0 ? x : 0, x > 0 ? "1 (x > 0)" : "0 (x <= 0)",
               x > 0 ? 1.0 : 0.0);
    else if (!strcmp(kind, "leakyrelu"))
        fprintf(f, "  x = %g: f = %s = %.6g;  f' = %s = %g\n", x, x > 0 ? "x" : "slope * x", x > 0 ? x : a * x,
               x > 0 ? "1 (x > 0)" : "slope (x <= 0)", x > 0 ? 1.0 : a);
    else if (!strcmp(kind, "elu"))
        fprintf(f, "  x = %g: f = %s = %.6g;  f' = %s = %.6g\n", x, x > 0 ? "x" : "alpha (e^x - 1)", x > 0 ? x : a * (exp(x) - 1),
               x > 0 ? "1 (x > 0)" : "alpha e^x (x <= 0)", x > 0 ? 1.0 : a * exp(x));
    else if (!strcmp(kind, "relu6"))
        fprintf(f, "  x = %g: f = min(max(0, x), 6) = %g;  f' = %s = %g\n", x, x < 0 ? 0 : x > 6 ? 6 : x,
               x > 0 && x < 6 ? "1 (0 < x < 6)" : "0", x > 0 && x < 6 ? 1.0 : 0.0);
    else if (!strcmp(kind, "silu"))
        fprintf(f, "  x = %g: f = x sigmoid(x) = %s * %.6g = %.6g;  f' = s (1 + x (1 - s)) = %.6g\n", x, fx, s, x * s,
               s * (1 + x * (1 - s)));
    else if (!strcmp(kind, "gelu"))
        fprintf(f, "  x = %g: f = x Phi(x) = %s * %.6g = %.6g;  f' = Phi(x) + x phi(x) = %.6g + %s * %.6g = %.6g\n", x, fx, phi,
               x * phi, phi, fx, pdf, phi + x * pdf);
    else if (!strcmp(kind, "hardsigmoid")) {
        double h = x / 6 + 0.5;
        fprintf(f, "  x = %g: f = min(max(0, x/6 + 1/2), 1) = %.6g;  f' = %s\n", x, h < 0 ? 0 : h > 1 ? 1 : h,
               x > -3 && x < 3 ? "1/6 (-3 < x < 3)" : "0");
    } else if (!strcmp(kind, "hardswish")) {
        double h = x / 6 + 0.5, hs = h < 0 ? 0 : h > 1 ? 1 : h;
        fprintf(f, "  x = %g: f = x hardsigmoid(x) = %s * %.6g = %.6g;  f' = %s = %.6g\n", x, fx, hs, x * hs,
               x <= -3 ? "0 (x <= -3)" : x >= 3 ? "1 (x >= 3)" : "x/3 + 1/2", x <= -3 ? 0 : x >= 3 ? 1 : x / 3 + 0.5);
    }
}

static int calc_act(cli_args *a, out_opts *o)
{
    static const char *const kinds[] = { "relu", "leakyrelu", "sigmoid", "tanh", "softmax", "relu6", "hardsigmoid",
                                         "hardswish", "silu", "gelu", "elu", NULL };
    const char *which = cli_next(a);
    int k = -1;
    for (int i = 0; which && kinds[i]; i++)
        if (!strcmp(which, kinds[i])) k = i;
    if (k < 0) {
        const char *best = which ? cli_closest(which, kinds) : NULL;
        return cli_usage_error(o->cmd, "act: name one of relu, leakyrelu, sigmoid, tanh, softmax, relu6, hardsigmoid, "
                                       "hardswish, silu, gelu, elu%s%s%s%s%s%s", which ? " (got '" : "", which ? which : "",
                               which ? "'" : "", best ? "; did you mean '" : "", best ? best : "", best ? "'?)" : which ? ")" : "");
    }
    const char *kind = kinds[k];
    double slope = 0.01, alpha = 1.0;
    const cli_option opts[] = {
        { "--slope", "A", CLI_REAL, .target = &slope },
        { "--alpha", "A", CLI_REAL, .target = &alpha },
        CALC_OUTPUT_OPTIONS(o),
        { 0 },
    };
    float *x = NULL;
    int64_t n = 0;
    int rc = gather_values(a, "inputs", opts, &x, &n, o);
    if (rc) return rc;
    int soft = !strcmp(kind, "softmax");
    char layer[96];
    if (!strcmp(kind, "leakyrelu") || !strcmp(kind, "elu"))
        snprintf(layer, sizeof layer, "%s %s=%.17g", kind, kind[0] == 'e' ? "alpha" : "slope", kind[0] == 'e' ? alpha : slope);
    else snprintf(layer, sizeof layer, "%s", kind);
    if (n > 4096 || (n > 256 && soft)) { /* before the Jacobian's n x n floats */
        free(x);
        return cli_usage_error(o->cmd, "act: at most 4,096 inputs (256 for softmax's Jacobian)");
    }
    cn_ctx *ctx = NULL;
    cn_net *net = NULL;
    float *dy = calloc((size_t)n, sizeof *dy), *y = malloc((size_t)n * sizeof *y);
    float *d = malloc((size_t)n * (size_t)(soft ? n : 1) * sizeof *d); /* f'(x), or softmax's Jacobian (row j: dy = e_j) */
    if (!dy || !y || !d) rc = cli_error("out of memory");
    else rc = layer_net(layer, n, 1, &ctx, &net);
    for (int64_t j = 0; !rc && j < (soft ? n : 1); j++) {
        for (int64_t i = 0; i < n; i++) dy[i] = soft ? (float)(i == j) : 1.0f; /* elementwise: dL/dx_i = f'(x_i) * 1 */
        if (cn_net_forward(ctx, net, x, 1, 1) || cn_net_backward(ctx, net, dy)) rc = cli_ctx_error(ctx);
        else memcpy(d + j * n, cn_net_input_grad(net), (size_t)n * sizeof *d), memcpy(y, cn_net_output(net, NULL), (size_t)n * sizeof *y);
    }
    if (!rc && o->json) {
        fprintf(o->out, "{\"result\":");
        print_vector_json(o->out, y, n);
        fprintf(o->out, ",\"%s\":", soft ? "jacobian" : "derivative");
        if (soft) {
            fprintf(o->out, "[");
            for (int64_t j = 0; j < n; j++) fprintf(o->out, "%s", j ? "," : ""), print_vector_json(o->out, d + j * n, n);
            fprintf(o->out, "]");
        } else {
            print_vector_json(o->out, d, n);
        }
        fprintf(o->out, "}\n");
    } else if (!rc) {
        if (o->explain && soft) {
            fprintf(o->out, "softmax's Jacobian: d o_i / d x_j = o_i (1 - o_i) for i = j, -o_i o_j for i != j\n");
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++)
                    fprintf(o->out, i == j ? "  J%lld%lld = %.6g * (1 - %.6g) = %.6g\n" : "  J%lld%lld = -%.6g * %.6g = %.6g\n",
                           (long long)i + 1, (long long)j + 1, (double)y[i], (double)(i == j ? y[i] : y[j]),
                           i == j ? (double)y[i] * (1 - (double)y[i]) : -(double)y[i] * y[j]);
        } else if (o->explain) {
            fprintf(o->out, "%s and its derivative:\n", kind);
            for (int64_t i = 0; i < n; i++) act_explain(o->out, kind, !strcmp(kind, "elu") ? alpha : slope, x[i]);
        }
        fprintf(o->out, soft ? "o     " : "f(x)  ");
        print_vector_line(o->out, y, n);
        if (soft) {
            fprintf(o->out, "Jacobian (row i: d o_i / d x_j)\n");
            print_matrix(o->out, d, n, n, 0);
        } else {
            fprintf(o->out, "f'(x) ");
            print_vector_line(o->out, d, n);
        }
    }
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    free(x), free(dy), free(y), free(d);
    return rc;
}

/* ---- dropout: one draw of its mask, and the mean over many (inverted dropout's expectation) ------ */

static int calc_dropout(cli_args *a, out_opts *o)
{
    double keep = 0.8;
    int64_t seed = 1, draws = 10000;
    const cli_option opts[] = {
        { "--keep", "P", CLI_REAL, .target = &keep },
        { "--seed", "S", CLI_INT, &seed, 0, INT64_MAX, .help = NULL },
        { "--draws", "N", CLI_INT, &draws, 1, 1000000, .help = NULL },
        CALC_OUTPUT_OPTIONS(o),
        { 0 },
    };
    float *x = NULL;
    int64_t n = 0;
    int rc = gather_values(a, "values", opts, &x, &n, o);
    if (rc) return rc;
    if (!(keep > 0 && keep <= 1)) rc = cli_usage_error(o->cmd, "dropout: --keep P must be in (0, 1] (got %g)", keep);
    if (!rc && n * draws > 100000000) rc = cli_usage_error(o->cmd, "dropout: values x draws at most 100,000,000");
    char layer[64];
    snprintf(layer, sizeof layer, "dropout keep=%.17g", keep);
    cn_ctx *ctx = NULL;
    cn_net *net = NULL;
    float *y = malloc((size_t)n * sizeof *y);
    double *sum = calloc((size_t)n, sizeof *sum);
    if (!rc && (!y || !sum)) rc = cli_error("out of memory");
    if (!rc) rc = layer_net(layer, n, (uint64_t)seed, &ctx, &net); /* draw 1 is the mask shown */
    for (int64_t d = 0; !rc && d < draws; d++) {
        if (cn_net_forward(ctx, net, x, 1, 1)) {
            rc = cli_ctx_error(ctx);
            break;
        }
        const float *out = cn_net_output(net, NULL);
        if (d == 0) memcpy(y, out, (size_t)n * sizeof *y);
        for (int64_t i = 0; i < n; i++) sum[i] += out[i];
    }
    if (!rc && o->json) {
        fprintf(o->out, "{\"result\":");
        print_vector_json(o->out, y, n);
        fprintf(o->out, ",\"keep\":");
        cli_json_float(o->out, keep, 0);
        fprintf(o->out, ",\"draws\":%lld,\"mean\":[", (long long)draws);
        for (int64_t i = 0; i < n; i++) fprintf(o->out, "%s", i ? "," : ""), cli_json_float(o->out, sum[i] / (double)draws, 0);
        fprintf(o->out, "]}\n");
    } else if (!rc) {
        if (o->explain) {
            fprintf(o->out, "training: y_i = x_i * m_i / p, m_i = 1 with probability p = %g (kept), else 0; 1/p = %.6g\n", keep, 1 / keep);
            for (int64_t i = 0; i < n; i++) {
                int kept = y[i] != 0;
                if (x[i] == 0) fprintf(o->out, "  x = 0: y = 0, kept or dropped\n");
                else fprintf(o->out, "  x = %g: %s, y = %g * %d / %g = %.6g\n", x[i], kept ? "kept" : "dropped", x[i], kept, keep, y[i]);
            }
            fprintf(o->out, "E[y_i] = p * x_i / p + (1 - p) * 0 = x_i: the scaling keeps each value's expectation, so\n"
                   "evaluation (no dropout) needs none: y = x\n");
        }
        fprintf(o->out, "one draw    ");
        print_vector_line(o->out, y, n);
        fprintf(o->out, "mean of %lld ", (long long)draws);
        for (int64_t i = 0; i < n; i++) fprintf(o->out, "%s%.6g", i ? " " : "", sum[i] / (double)draws);
        fprintf(o->out, "\n");
    }
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    free(x), free(y), free(sum);
    return rc;
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
    { "dropout", calc_dropout,
      "  dropout X... --keep P [--seed S] [--draws N]\n"
      "                                            one draw of the mask by the engine's layer, and the\n"
      "                                            mean of N (default 10000): inverted dropout keeps E[y] = x\n" },
    { "act", calc_act,
      "  act relu|leakyrelu|sigmoid|tanh|softmax|relu6|hardsigmoid|hardswish|silu|gelu|elu X...\n"
      "      [--slope A] [--alpha A]              f(x) and f'(x) by the engine's layer (softmax: its\n"
      "                                            Jacobian); --slope: leakyrelu's, --alpha: elu's\n" },
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
      "  conv --input M --kernel K [--stride S] [--pad P] [--bias B]\n"
      "                                            cross-correlation of a matrix, as CNNs compute it;\n"
      "                                            channels apart by '|' ('1,2;3,4 | 5,6;7,8'), the\n"
      "                                            kernel as deep as the input, the sums added\n" },
    { "pool", run_pool,
      "  pool max|min|avg|all --input M --size K [--stride S] [--pad P]\n"
      "                                            stride defaults to the size; all (or max,avg):\n"
      "                                            several kinds at once; --explain lists each window;\n"
      "                                            channels apart by '|', each pooled alone\n" },
    { "step", calc_step,
      "  step sgd|momentum|nesterov|adam|adamw --w W --grad G [--lr LR] [--momentum MU]\n"
      "       [--weight-decay WD] [--beta1 B1] [--beta2 B2] [--eps E] [--t T] [--m M] [--v V]\n"
      "                                            one update (PyTorch's rules and defaults; t from 1;\n"
      "                                            --v: momentum buffer or Adam's 2nd moment, --m Adam's 1st)\n" },
    { "rf", calc_rf,
      "  rf --kernels K [--strides S] [--dilations D]\n"
      "                                            receptive field and jump of a stack (K: 3,3,2 or 3 3 2)\n" },
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
           "--json prints {\"result\": ...}; --explain prints the working; both: the working's lines as \"working\".\n\n"
           "examples:\n"
           "  convnet calc softmax 2 1 0.1 --explain\n"
           "  convnet calc loss ce --target '1,0,0;0,1,0;0,0,1' --pred '0.7,0.2,0.1;0.1,0.6,0.3;0.2,0.2,0.6'\n"
           "  convnet calc conv --input @image.txt --kernel '1,0,-1;1,0,-1;1,0,-1'\n");
}

/* The options whose value is a list of numbers: a list may also come as separate words,
 * "--weights 0.5 -1 2" (as a student types it), which are joined here into "0.5,-1,2". */
static const char *const vector_options[] = { "--target", "--pred", "--weights", "--w", "--grad", "--m", "--v",
                                              "--kernels", "--strides", "--dilations", NULL };

static int is_number_word(const char *s)
{
    char *end;
    if (!*s) return 0;
    (void)strtod(s, &end);
    return *end == '\0';
}

/* argv with the number words after a vector option joined to its value; NULL-terminated, every
 * string malloc'ed; NULL when out of memory */
static char **join_number_words(int argc, char **argv)
{
    char **out = calloc((size_t)argc + 1, sizeof *out);
    int n = 0;
    for (int i = 0; out && i < argc; i++) {
        int vec = 0;
        for (int j = 0; vector_options[j]; j++) vec |= !strcmp(argv[i], vector_options[j]);
        if (!(out[n] = malloc(strlen(argv[i]) + 1))) goto oom;
        strcpy(out[n++], argv[i]);
        if (!vec || i + 1 >= argc) continue;
        /* the value, then every number word after it */
        size_t len = strlen(argv[++i]);
        int last = i;
        while (last + 1 < argc && is_number_word(argv[last + 1])) len += strlen(argv[++last]) + 1;
        char *v = malloc(len + 1);
        if (!v) goto oom;
        strcpy(v, argv[i]);
        for (int j = i + 1; j <= last; j++) strcat(strcat(v, ","), argv[j]);
        out[n++] = v;
        i = last;
    }
    return out;
oom:
    for (int j = 0; out && j < n; j++) free(out[j]);
    free(out);
    return NULL;
}

/* run on argv less the word drop, its output kept in m */
static int run_into(int (*run)(cli_args *, out_opts *), int argc, char **argv, const char *drop, int quiet, cli_memfile *m)
{
    char **kept = malloc(((size_t)argc + 1) * sizeof *kept);
    int n = 0;
    if (!kept) return cli_error("out of memory");
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], drop)) kept[n++] = argv[i];
    kept[n] = NULL;
    int rc = cli_memfile_open(m);
    if (rc) return free(kept), rc;
    out_opts o = { "calc", 0, 0, m->f, quiet };
    cli_args a;
    cli_args_init(&a, "calc", n, kept);
    rc = run(&a, &o);
    if (fclose(m->f) && !rc) rc = cli_error("out of memory");
    m->f = NULL;
    free(kept);
    return rc;
}

/* One quantity on argv, printed. --json with --explain: the answer of --json with the working of
 * --explain beside it, {"result": ..., "working": [its lines]}, from two runs of the quantity
 * (each deterministic: dropout's draws are seeded). */
static int run_quantity(int (*run)(cli_args *, out_opts *), int argc, char **argv)
{
    int json = 0, explain = 0;
    for (int i = 0; i < argc; i++) json |= !strcmp(argv[i], "--json"), explain |= !strcmp(argv[i], "--explain");
    if (!json || !explain) {
        out_opts o = { "calc", 0, 0, stdout, 0 };
        cli_args a;
        cli_args_init(&a, "calc", argc, argv);
        return run(&a, &o);
    }
    cli_memfile text = { 0 }, answer = { 0 };
    int rc = run_into(run, argc, argv, "--json", 0, &text);
    if (!rc) rc = run_into(run, argc, argv, "--explain", 1, &answer);
    size_t end = answer.len; /* the answer without its closing brace, which comes after the working */
    while (end && (answer.text[end - 1] == '\n' || answer.text[end - 1] == ' ')) end--;
    if (!rc && (!end || answer.text[end - 1] != '}')) rc = cli_error("internal error: no JSON answer");
    if (!rc) {
        fwrite(answer.text, 1, end - 1, stdout);
        printf(",\"working\":[");
        for (char *line = text.text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
            if ((nl = strchr(line, '\n'))) *nl = '\0';
            if (line != text.text) putchar(',');
            cli_json_string(stdout, line);
        }
        printf("]}\n");
    }
    free(text.text), free(answer.text);
    return rc;
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
    for (int i = 0; i < N_QUANTITIES; i++) {
        if (strcmp(argv[0], quantities[i].name)) continue;
        char **joined = join_number_words(argc - 1, argv + 1);
        if (!joined) return cli_error("out of memory");
        int n = 0, rc;
        while (joined[n]) n++;
        rc = run_quantity(quantities[i].run, n, joined);
        for (int j = 0; j < n; j++) free(joined[j]);
        free(joined);
        return rc;
    }
    /* a quantity of a family named alone: "calc bce" is "calc loss bce" */
    static const struct { const char *word, *family; } families[] = {
        { "mse", "loss" }, { "mae", "loss" }, { "ce", "loss" }, { "bce", "loss" }, { "hinge", "loss" },
        { "cross-entropy", "loss" }, { "l1", "reg" }, { "l2", "reg" }, { "sgd", "step" }, { "momentum", "step" },
        { "nesterov", "step" }, { "adam", "step" }, { "adamw", "step" }, { "max", "pool" }, { "min", "pool" },
        { "avg", "pool" },
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (!strcmp(argv[0], families[i].word))
            return cli_usage_error("calc", "unknown quantity '%s' (did you mean 'calc %s %s'?)", argv[0], families[i].family,
                                   argv[0]);
    const char *best = cli_closest(argv[0], names);
    if (best) return cli_usage_error("calc", "unknown quantity '%s' (did you mean '%s'?)", argv[0], best);
    return cli_usage_error("calc", "unknown quantity '%s'; quantities: %s", argv[0], list);
}
