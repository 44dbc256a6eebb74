/* util.c — argument parsing, number lists, formatting, files built in memory for the commands. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"

/* "convnet: " or "convnet CMD: ", the message, a newline */
static void say_error(const char *cmd, const char *fmt, va_list ap)
{
    if (cmd) fprintf(stderr, "convnet %s: ", cmd);
    else fputs("convnet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_cmd_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say_error(cmd, fmt, ap);
    va_end(ap);
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "convnet %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'convnet %s --help')\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_ctx_error(const cn_ctx *ctx) { return cli_error("%s", cn_ctx_message(ctx)); }

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv)
{
    *a = (cli_args){ .argc = argc, .i = 0, .argv = argv, .cmd = cmd };
}

const char *cli_next(cli_args *a) { return a->i < a->argc ? a->argv[a->i++] : NULL; }

int cli_is_option(const char *s)
{
    if (!s) return 0;
    /* "-3" and "-0.5" are numbers, not options */
    return s[0] == '-' && s[1] && !isdigit((unsigned char)s[1]) && s[1] != '.';
}

const char *cli_closest(const char *word, const char *const *known)
{
    const char *best = NULL;
    int bd = 3;
    for (int k = 0; known && known[k]; k++) {
        int d = cn_edit_distance(word, known[k]);
        if (d < bd) bd = d, best = known[k];
    }
    return best;
}

/* An unknown option or an unexpected argument: the usage error, with the closest of known */
static int unknown_arg(cli_args *a, const char *const *known)
{
    const char *s = a->argv[a->i];
    char word[64];
    snprintf(word, sizeof word, "%.*s", (int)strcspn(s, "="), s);
    const char *best = cli_closest(word, known);
    if (best) return cli_usage_error(a->cmd, "unknown option '%s' (did you mean '%s'?)", word, best);
    if (cli_is_option(s)) return cli_usage_error(a->cmd, "unknown option '%s'", word);
    return cli_usage_error(a->cmd, "unexpected argument '%s'", s);
}

/* The names of opts (and --help when the command has it), NULL-terminated, for cli_closest. */
#define CLI_MAX_OPTIONS 63
static void option_names(const cli_option *opts, int with_help, const char **names)
{
    int n = 0;
    for (const cli_option *o = opts; o->name && n < CLI_MAX_OPTIONS - 1; o++) names[n++] = o->name;
    if (with_help) names[n++] = "--help";
    names[n] = NULL;
}

/* the option that s names: "--name", or "--name=value" for one that takes a value (*value) */
static const cli_option *find_option(const cli_option *opts, const char *s, const char **value)
{
    *value = NULL;
    for (const cli_option *o = opts; o->name; o++) {
        size_t n = strlen(o->name);
        if (strncmp(s, o->name, n) != 0) continue;
        if (s[n] == '\0') return o;
        if (s[n] == '=' && o->arg) {
            *value = s + n + 1;
            return o;
        }
    }
    return NULL;
}

/* stores an option's value where its table row says; 0 or the exit status */
static int set_option(cli_args *a, const cli_option *o, const char *v)
{
    switch (o->kind) {
    case CLI_FLAG: *(int *)o->target = 1; break;
    case CLI_SET: *(int *)o->target = (int)o->lo; break;
    case CLI_TEXT: /* a file, a folder, a spec, a list: '' names none ("--out ''": ": cannot create") */
        if (!*v) return cli_usage_error(a->cmd, "%s needs a value, got ''", o->name);
        *(const char **)o->target = v;
        break;
    case CLI_INT: return cli_parse_int(a->cmd, o->name, v, o->lo, o->hi, o->target) ? EXIT_USAGE : 0;
    case CLI_REAL: return cli_parse_double(a->cmd, o->name, v, o->target) ? EXIT_USAGE : 0;
    case CLI_CALL: return o->call(a, o, v);
    }
    return 0;
}

int cli_parse(const char *cmd, int argc, char **argv, const cli_option *opts, void (*help)(const cli_option *opts),
              int (*plain)(void *state, const char *arg), void *state)
{
    cli_args args, *a = &args;
    cli_args_init(a, cmd, argc, argv);
    while (a->i < a->argc) {
        const char *s = a->argv[a->i], *v;
        if (help && (!strcmp(s, "--help") || !strcmp(s, "-h"))) {
            help(opts);
            return 0;
        }
        const cli_option *o = find_option(opts, s, &v);
        if (!o && !*s && plain) /* '' names no file: said here, not as ": cannot open" */
            return cli_usage_error(a->cmd, "an empty argument ('') names nothing");
        if (!o) {
            if (!cli_is_option(s) && plain && plain(state, s)) {
                a->i++;
                continue;
            }
            const char *names[CLI_MAX_OPTIONS + 1];
            option_names(opts, help != NULL, names);
            return unknown_arg(a, names);
        }
        a->i++;
        if (o->arg && !v) {
            if (a->i >= a->argc) return cli_usage_error(a->cmd, "%s needs a value", o->name);
            v = a->argv[a->i++];
        }
        if (o->given) *o->given = 1;
        int rc = set_option(a, o, v);
        if (rc) return rc;
    }
    return CLI_GO_ON;
}

void cli_print_options(const cli_option *opts, int width)
{
    for (const cli_option *o = opts; o->name; o++) {
        if (o->heading) printf("%s\n", o->heading);
        if (!o->help) continue;
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-*s ", width, left);
        for (const char *p = o->help; *p;) {
            size_t n = strcspn(p, "\n");
            printf("%.*s\n", (int)n, p);
            p += n;
            if (*p == '\n' && *++p) printf("%*s", width + 3, "");
        }
    }
}

int cli_take_one(void *state, const char *arg)
{
    const char **slot = state;
    if (*slot) return 0;
    *slot = arg;
    return 1;
}

int cli_choice(cli_args *a, const cli_option *opt, const char *value, int *k)
{
    for (int i = 0; opt->choices[i]; i++)
        if (!strcmp(value, opt->choices[i])) {
            *k = i;
            return 0;
        }
    const char *best = cli_closest(value, opt->choices);
    if (best) return cli_usage_error(a->cmd, "%s: unknown '%s' (did you mean '%s'?)", opt->name, value, best);
    char list[512] = "";
    for (int i = 0; opt->choices[i]; i++) {
        size_t at = strlen(list);
        snprintf(list + at, sizeof list - at, "%s%s", i ? opt->choices[i + 1] ? ", " : " or " : "", opt->choices[i]);
    }
    return cli_usage_error(a->cmd, "%s: unknown '%s' (%s)", opt->name, value, list);
}

const char *const cli_devices[] = { "cpu", "cuda", NULL };
const char *const cli_inits[] = { "kaiming", "kaiming-uniform", "xavier", "xavier-uniform", "torch", "zero", NULL };
const char *const cli_precisions[] = { "fp32", "tf32", "bf16", NULL }; /* in cn_precision's order */

const char *const cli_resizes[] = { "bilinear", "antialias", "draft", NULL };
const char *const cli_tta_views[] = { "none", "flip", "flip-shift", NULL };
const char *const cli_tta_said[] = { "", ", each with its mirror image (outputs averaged)",
                                     ", each in 10 views: itself, its mirror image, and their shifts by a pixel "
                                     "(outputs averaged)" };

int cli_choice_option(cli_args *a, const cli_option *opt, const char *value)
{
    int k = 0;
    if (cli_choice(a, opt, value, &k)) return EXIT_USAGE;
    *(int *)opt->target = k;
    return 0;
}

int cli_use_device(cn_ctx *ctx, cn_net *net, const cli_device *d)
{
    if (d->device == 0 && d->precision == 0) return 0; /* the CPU in fp32: where every net starts */
    return cn_net_set_device(ctx, net, cli_devices[d->device], (cn_precision)d->precision) ? cli_ctx_error(ctx) : 0;
}

int cli_device_ready(cn_ctx *ctx, const cli_device *d)
{
    if (d->device == 0 && d->precision == 0) return 0;
    return cn_device_probe(ctx, cli_devices[d->device], (cn_precision)d->precision) ? cli_ctx_error(ctx) : 0;
}

int cli_threads_option(cli_args *a, const cli_option *opt, const char *value)
{
    int64_t n = 1;
    if (cli_parse_int(a->cmd, opt->name, value, 1, 1024, &n)) return EXIT_USAGE;
    cn_set_threads((int)n);
    return 0;
}

int cli_parse_int(const char *cmd, const char *what, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return cli_usage_error(cmd, "%s must be a whole number from %lld to %lld, got '%s'", what, (long long)lo,
                               (long long)hi, s);
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *what, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end) return cli_usage_error(cmd, "%s must be a number, got '%s'", what, s);
    if (!isfinite(v)) return cli_usage_error(cmd, "%s must be a finite number, got '%s'", what, s);
    *out = v;
    return 0;
}

char *cli_read_file(const char *path, size_t max, size_t *len_out, int *status)
{
    *status = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *status = cli_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
        if (len + 1 == cap) {
            if (cap > max) {
                free(buf);
                buf = NULL;
                *status = cli_error("%s: larger than %zu MiB", path, max >> 20);
                break;
            }
            char *g = realloc(buf, cap *= 2);
            if (!g) free(buf);
            buf = g;
        }
    }
    if (buf) buf[len] = '\0';
    else if (!*status) *status = cli_error("out of memory reading %s", path);
    if (buf && len_out) *len_out = len;
    fclose(f);
    return buf;
}

int cli_parse_matrix(const char *cmd, const char *what, const char *s, float **v, int64_t *rows, int64_t *cols)
{
    int status = 0;
    char *owned = NULL;
    const char *src = s;
    const char *where = "";
    *v = NULL;
    *rows = *cols = 0;
    if (s[0] == '@') {
        /* a matrix of text: 16 MiB is some 2 million values (a 1000x1000 kernel takes 10 MB) */
        if (!(owned = cli_read_file(s + 1, (size_t)16 << 20, NULL, &status))) return status;
        src = owned;
        where = s + 1;
    }
    size_t cap = 64;
    int64_t n = 0, r = 0, c = 0, line = 1;
    float *vals = malloc(cap * sizeof *vals);
    if (!vals) return cli_error("out of memory");
    const char *p = src;
    for (;;) {
        int commas = 0;
        for (; *p == ' ' || *p == '\t' || *p == ',' || *p == '\r'; p++) commas += *p == ',';
        int end_row = *p == ';' || *p == '\n' || *p == '\0';
        /* a comma stands between two values: "1,,2", ",1" or "1," has one missing, not skipped */
        if (commas > 1 || (commas && (c == 0 || end_row))) {
            int rc;
            if (*where) rc = cli_error("%s:%lld: an empty value (a comma with no number on one side)", where, (long long)line);
            else rc = cli_usage_error(cmd, "%s: row %lld: an empty value (a comma with no number on one side)", what,
                                      (long long)r + 1);
            free(vals);
            free(owned);
            return rc;
        }
        if (end_row) {
            if (c > 0) {
                if (r > 0 && c != *cols) {
                    free(vals);
                    free(owned);
                    if (*where) return cli_error("%s:%lld: row %lld has %lld values, row 1 has %lld", where, (long long)line,
                                                 (long long)r + 1, (long long)c, (long long)*cols);
                    return cli_usage_error(cmd, "%s: row %lld has %lld values, row 1 has %lld", what, (long long)r + 1,
                                           (long long)c, (long long)*cols);
                }
                *cols = c;
                r++;
                c = 0;
            }
            if (*p == '\0') break;
            if (*p == '\n') line++;
            p++;
            continue;
        }
        char *end;
        errno = 0;
        double d = strtod(p, &end);
        /* a value beyond float's range would become infinity (and NaN in what follows): refused */
        int too_big = end != p && isfinite(d) && fabs(d) > FLT_MAX;
        if (end == p || !isfinite(d) || too_big || (*end && !strchr(" \t,;\r\n", *end))) {
            int len = (int)strcspn(p, " \t,;\r\n"), rc;
            const char *why = too_big ? "is beyond the range of a float (about 3.4e38)" : "is not a number";
            /* p points into owned: the message first */
            if (*where) rc = cli_error("%s:%lld: '%.*s' %s", where, (long long)line, len, p, why);
            else rc = cli_usage_error(cmd, "%s: '%.*s' %s", what, len, p, why);
            free(vals);
            free(owned);
            return rc;
        }
        if ((size_t)n == cap) {
            float *g = realloc(vals, (cap *= 2) * sizeof *vals);
            if (!g) {
                free(vals);
                free(owned);
                return cli_error("out of memory");
            }
            vals = g;
        }
        vals[n++] = (float)d;
        c++;
        p = end;
    }
    free(owned);
    if (n == 0) { /* a file's content is data (exit 1, the file named); a value typed, usage */
        free(vals);
        if (*where) return cli_error("%s: no numbers in the file (%s)", where, what);
        return cli_usage_error(cmd, "%s: no numbers given", what);
    }
    *v = vals;
    *rows = r;
    return 0;
}

int cli_parse_channels(const char *cmd, const char *what, const char *s, float **v, int64_t *channels, int64_t *rows,
                       int64_t *cols)
{
    *v = NULL;
    *channels = *rows = *cols = 0;
    float *all = NULL;
    for (const char *p = s;;) {
        size_t len = strcspn(p, "|");
        char *piece = strndup(p, len), label[128];
        if (!piece) return free(all), cli_error("out of memory");
        snprintf(label, sizeof label, "%s, channel %lld", what, (long long)*channels + 1);
        float *m = NULL;
        int64_t r, c;
        int rc = cli_parse_matrix(cmd, strchr(s, '|') ? label : what, piece, &m, &r, &c);
        free(piece);
        if (!rc && *channels && (r != *rows || c != *cols))
            rc = cli_usage_error(cmd, "%s: channel %lld is %lldx%lld, channel 1 %lldx%lld", what, (long long)*channels + 1,
                                 (long long)r, (long long)c, (long long)*rows, (long long)*cols);
        float *grown = rc ? NULL : realloc(all, (size_t)((*channels + 1) * r * c) * sizeof *all);
        if (!rc && !grown) rc = cli_error("out of memory");
        if (rc) return free(m), free(all), rc;
        all = grown;
        memcpy(all + *channels * r * c, m, (size_t)(r * c) * sizeof *m);
        free(m);
        *rows = r, *cols = c, ++*channels;
        if (!p[len]) break;
        p += len + 1;
    }
    *v = all;
    return 0;
}

int cli_spec_plain(void *spec, const char *arg)
{
    cli_spec *sp = spec;
    if (sp->file || sp->text) return 0;
    sp->file = arg;
    return 1;
}

int cli_spec_check(const char *cmd, const char *file, const char *text)
{
    if (!file && !text) return cli_usage_error(cmd, "give a spec file or -e TEXT");
    if (file && text) return cli_usage_error(cmd, "give a spec file or -e TEXT, not both");
    return 0;
}

int cli_parse_spec(const char *cmd, int argc, char **argv, const cli_option *opts, void (*help)(const cli_option *opts),
                   cli_spec *spec)
{
    int usage = cli_parse(cmd, argc, argv, opts, help, cli_spec_plain, spec);
    if (usage != CLI_GO_ON) return usage;
    return (usage = cli_spec_check(cmd, spec->file, spec->text)) ? usage : CLI_GO_ON;
}

int cli_layer_index(cn_ctx *ctx, const cn_net *net, const char *name)
{
    for (int i = 0; i < cn_net_layer_count(net); i++) {
        cn_layer_info li;
        if (!cn_net_layer(ctx, net, i, 1, &li) && !strcmp(li.name, name)) return i;
    }
    return -1;
}

cn_status cli_load_net(cn_ctx *ctx, const char *file, const char *text, cn_net **net)
{
    cn_status st;
    if (file && cli_is_checkpoint(file)) { /* a run folder or a checkpoint: the net of its spec */
        cn_checkpoint *ck = NULL;
        if (!(st = cn_checkpoint_read(ctx, file, &ck))) st = cn_checkpoint_net(ctx, ck, net);
        cn_checkpoint_destroy(ck);
        return st;
    }
    st = file ? cn_net_load_spec(ctx, file, net) : cn_net_parse(ctx, text, strlen(text), "-e", net);
    /* -e 'input 28x28x1 # note; conv 8 3x3': a comment runs to the end of its line, which in -e
     * is often the whole text, so the statements after it go unread: said */
    const char *hash = text && !file ? strchr(text, '#') : NULL, *end = hash ? hash + strcspn(hash, "\n") : NULL;
    const char *rest = hash ? memchr(hash, ';', (size_t)(end - hash)) : NULL;
    if (!st && rest) {
        rest += 1 + strspn(rest + 1, " \t");
        int shown = end - rest > 60 ? 60 : (int)(end - rest);
        fprintf(stderr, "convnet: note: -e: '#' starts a comment to the end of the line, so '%.*s' after its ';' is "
                        "not read\n", shown, rest);
    }
    cn_layer_info in;
    /* PyTorch writes shapes channels first (3x64x64); convnet reads HxWxC, so that input is a
     * 3-row image of 64 channels: legal, but almost never meant */
    if (!st && !cn_net_layer(ctx, *net, 0, 1, &in) && in.h <= 4 && in.w >= 8 && in.c >= 8)
        fprintf(stderr,
                "convnet: warning: %s:%d: input %lldx%lldx%lld is read as height x width x channels (%lld rows, "
                "%lld channels); for a %lldx%lld image with %lld channels write input %lldx%lldx%lld\n",
                cn_net_file_name(*net), in.line, (long long)in.h, (long long)in.w, (long long)in.c, (long long)in.h,
                (long long)in.c, (long long)in.w, (long long)in.c, (long long)in.h, (long long)in.w, (long long)in.c,
                (long long)in.h);
    return st;
}

int cli_parse_bytes(const char *cmd, const char *s, int64_t *out)
{
    static const struct { const char *unit; double mult; } units[] = {
        { "", 1 }, { "B", 1 }, { "KiB", 1024.0 }, { "MiB", 1048576.0 }, { "GiB", 1073741824.0 },
        { "TiB", 1099511627776.0 }, { "KB", 1e3 }, { "MB", 1e6 }, { "GB", 1e9 }, { "TB", 1e12 },
        { "K", 1024.0 }, { "M", 1048576.0 }, { "G", 1073741824.0 }, { "T", 1099511627776.0 },
    };
    char *end;
    double v = strtod(s, &end);
    if (end != s && isfinite(v) && v > 0) /* nothing fits in 0 bytes */
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcmp(end, units[i].unit) == 0 && v * units[i].mult < 9.2e18) {
                *out = (int64_t)(v * units[i].mult);
                return 0;
            }
    return cli_usage_error(cmd, "size must be a number above 0, in bytes or with a unit (as 8GiB, 512MiB, 2GB), got '%s'",
                           s);
}

void cli_count(char *buf, size_t cap, int64_t n)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)(n < 0 ? -n : n));
    size_t o = 0;
    if (n < 0 && o + 1 < cap) buf[o++] = '-';
    for (int i = 0; i < len && o + 1 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 2 < cap) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

void cli_bytes(char *buf, size_t cap, int64_t n)
{
    static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 6) v /= 1024.0, u++;
    if (u == 0) snprintf(buf, cap, "%lld B", (long long)n);
    else snprintf(buf, cap, "%.1f %s", v, unit[u]);
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 32 || c == 0x7f) fprintf(f, "\\u%04x", c);
        else if (c == 0xc2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9f) /* C1 controls */
            fprintf(f, "\\u%04x", (unsigned char)*++s);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* whether top-k accuracy is said for k (2, 3, 5, 10, 20, 50, 100, ...) */
static int round_k(int64_t k)
{
    if (k == 3) return 1;
    while (k >= 10 && k % 10 == 0) k /= 10;
    return k == 1 || k == 2 || k == 5;
}

int cli_top_k(FILE *f, const int64_t *ranks, int32_t classes, int64_t top, int64_t count)
{
    int64_t within = ranks[0];
    int said = 0;
    for (int64_t k = 2; k <= top && k < classes; k++) {
        within += ranks[k - 1];
        if (!round_k(k) && k != top) continue;
        fprintf(f, "%stop-%lld%s %.2f%%", said ? ", " : "", (long long)k, said ? "" : " accuracy",
                100.0 * (double)within / (double)count);
        said = 1;
    }
    return said;
}

/* whether a cell of count v at (t, p) comes before one of count w at (u, q) among the mistakes */
static int comes_before(int64_t v, int32_t t, int32_t p, int64_t w, int32_t u, int32_t q)
{
    return v != w ? v > w : t != u ? t < u : p < q;
}

int cli_most_confused(const int64_t *confusion, int32_t k, int n, int32_t (*pair)[2])
{
#define CELL(t, p) confusion[(int64_t)(t) * k + (p)]
    int found = 0;
    for (; found < n; found++) { /* the first cell after the last one taken */
        int32_t bt = -1, bp = -1, lt = found ? pair[found - 1][0] : 0, lp = found ? pair[found - 1][1] : 0;
        for (int32_t t = 0; t < k; t++)
            for (int32_t p = 0; p < k; p++)
                if (t != p && CELL(t, p) > 0 && (!found || comes_before(CELL(lt, lp), lt, lp, CELL(t, p), t, p)) &&
                    (bt < 0 || comes_before(CELL(t, p), t, p, CELL(bt, bp), bt, bp)))
                    bt = t, bp = p;
        if (bt < 0) break;
        pair[found][0] = bt, pair[found][1] = bp;
    }
    return found;
#undef CELL
}

void cli_json_float(FILE *f, double v, int is_float)
{
    char buf[40];
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    /* shortest decimal that reads back to the same value */
    for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (is_float ? (float)strtod(buf, NULL) == (float)v : strtod(buf, NULL) == v) break;
    }
    fputs(buf, f);
}

int cli_memfile_open(cli_memfile *m)
{
    m->text = NULL, m->len = 0;
    m->f = open_memstream(&m->text, &m->len);
    return m->f ? 0 : cli_error("out of memory");
}

int cli_memfile_commit(cn_ctx *ctx, cli_memfile *m, const char *path, int rc)
{
    if (m->f && fclose(m->f) && !rc) rc = cli_error("%s: out of memory", path);
    if (m->f && !rc && cn_file_write_atomic(ctx, path, m->text, m->len)) rc = cli_ctx_error(ctx);
    free(m->text);
    m->f = NULL, m->text = NULL, m->len = 0;
    return rc;
}
