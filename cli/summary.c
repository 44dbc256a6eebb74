/* summary.c — `convnet summary`: the worksheet table of a network (shapes, parameters, MACs,
 * receptive field), its arithmetic (--explain), memory (--memory, --fit) and JSON. */
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"

static void help(const cli_option *opts)
{
    printf("usage: convnet summary SPEC | -e TEXT [--batch N] [--explain] [--json] [--memory]\n"
           "                       [--fit SIZE] [--optimizer K]\n"
           "       convnet summary --compare A B [--batch N] [--json]\n\n"
           "Prints every layer's output (HxWxC, as the worksheets write it), its parameters (all,\n"
           "and trainable: batch-norm running mean/var are kept but not trained), its MACs, and its\n"
           "receptive field (RF: the input pixels one output sees; jump: input pixels between two\n"
           "neighbouring outputs), then the totals. After an upsampling (upsample, deconv) the RF and\n"
           "jump are fractions of an input pixel, printed with two decimals at most (jump 0.5).\n"
           "SPEC (and A, B) may be a checkpoint or a run folder: the net it holds.\n\n"
           "MACs are the multiplications the worksheets count, for the whole batch:\n"
           "  conv   N*Cout*Hout*Wout*(Cin/groups)*Kh*Kw   (bias additions not counted)\n"
           "  dense  N*in*out                              (bias additions not counted)\n"
           "  deconv N*Cin*Hin*Win*(Cout/groups)*Kh*Kw     (bias additions not counted)\n"
           "  other layers count 0.\n\n"
           "options:\n");
    cli_print_options(opts, 16);
    printf("\nspec language (one statement per line, '#' comments, 'as NAME' names a layer, 'from NAME'\n"
           "reads a named layer instead of the previous line):\n");
    for (int i = 0; i < cn_layer_type_count(); i++)
        printf("  %-74s %s\n", cn_layer_type_usage(i), cn_layer_type_help(i));
    printf("init=HOW (conv, deconv, dense): how the layer's weights start: net (the default: train's\n"
           "--init), kaiming, kaiming-uniform, xavier, xavier-uniform, torch (weights and bias as\n"
           "PyTorch's default), zero, normal or trunc-normal (with std=S, default 0.02); init=G of a\n"
           "norm layer or scale: where gamma (the factor) starts\n");
    printf("\nexample:\n  convnet summary -e 'input 64x64x3; conv 32 3x3 pad=1' --explain\n");
}

/* an exact receptive field or jump: whole, or fractional after an upsampling, with two
 * decimals at most ("0.5", "1.25", "0.33") */
static int exact_text(char *buf, size_t cap, double v, int decimals)
{
    int len = snprintf(buf, cap, "%.*f", decimals, v);
    while (len > 0 && (size_t)len < cap && buf[len - 1] == '0') buf[--len] = '\0';
    if (len > 0 && (size_t)len < cap && buf[len - 1] == '.') buf[--len] = '\0';
    return len;
}

static void exact_dims_text(char *buf, size_t cap, double h, double w)
{
    char a[32], b[32];
    exact_text(a, sizeof a, h, 2);
    exact_text(b, sizeof b, w, 2);
    if (!strcmp(a, b)) snprintf(buf, cap, "%.31s", a);
    else snprintf(buf, cap, "%.15sx%.15s", a, b);
}

static void print_memory(const cn_memory *m, const char *opt)
{
    static const char *fmt = "  %-30s %14s  %s\n";
    char a[32], b[32];
#define ROW(label, v) (cli_count(a, sizeof a, v), cli_bytes(b, sizeof b, v), printf(fmt, label, a, b))
    printf("\nmemory at batch %lld (fp32), bytes:\n", (long long)m->batch);
    printf("  training (optimizer %s):\n", opt);
    ROW("  activations", m->activations);
    ROW("  activation gradients", m->activation_grads);
    ROW("  argmax / masks / BN stats", m->aux);
    ROW("  parameters", m->params);
    ROW("  parameter gradients", m->param_grads);
    ROW("  optimizer state", m->optimizer_state);
    ROW("  total", m->training_total);
    printf("  inference:\n");
    ROW("  activations (peak alive)", m->inference_activations);
    ROW("  parameters", m->params);
    ROW("  total", m->inference_total);
#undef ROW
}

static void json_memory(const cn_memory *m)
{
    printf(",\"memory\":{\"batch\":%lld,\"training\":{\"activations\":%lld,\"activation_grads\":%lld,\"aux\":%lld,"
           "\"params\":%lld,\"param_grads\":%lld,\"optimizer_state\":%lld,\"total\":%lld},"
           "\"inference\":{\"activations\":%lld,\"params\":%lld,\"total\":%lld}}",
           (long long)m->batch, (long long)m->activations, (long long)m->activation_grads, (long long)m->aux,
           (long long)m->params, (long long)m->param_grads, (long long)m->optimizer_state,
           (long long)m->training_total, (long long)m->inference_activations, (long long)m->params,
           (long long)m->inference_total);
}

/* the explanation of layer i, malloc'ed */
static char *explain_text(const cn_net *net, int i, int64_t batch)
{
    size_t need = cn_net_explain(net, i, batch, NULL, 0);
    char *text = malloc(need + 1);
    if (text) cn_net_explain(net, i, batch, text, need + 1);
    return text;
}

typedef struct {
    int64_t batch;
    int explain, json, memory;
    int64_t fit;
    cn_optim_kind opt;
    const char *opt_name;
} options;

static int print_table(cn_ctx *ctx, const cn_net *net, const options *o)
{
    int n = cn_net_layer_count(net), chain = cn_net_is_chain(net);
    cn_totals t;
    if (cn_net_totals(ctx, net, o->batch, &t)) return cli_ctx_error(ctx);
    /* column widths from the content */
    int wn = 5, wt = 4, wo = 6, wi = 4;
    char out[64], buf[64];
    for (int i = 0; i < n; i++) {
        cn_layer_info li;
        cn_net_layer(ctx, net, i, o->batch, &li);
        int l = (int)strlen(li.name);
        if (l > wn) wn = l;
        if ((l = (int)strlen(li.type)) > wt) wt = l;
        l = snprintf(out, sizeof out, "%lldx%lldx%lld", (long long)li.h, (long long)li.w, (long long)li.c);
        if (l > wo) wo = l;
        int li_len = 0;
        for (int j = 0; j < li.n_inputs; j++) li_len += (int)strlen(li.inputs[j]) + (j ? 1 : 0);
        if (li_len > wi) wi = li_len;
    }
    printf("%s: %d layers, batch %lld\n", cn_net_file_name(net), n, (long long)o->batch);
    printf("%-*s  %-*s  %-*s  %12s  %12s  %15s  %7s  %5s", wn, "layer", wt, "type", wo, "output", "params",
           "trainable", "mults (MACs)", "RF", "jump");
    if (!chain) printf("  %s", "reads");
    printf("\n");
    for (int i = 0; i < n; i++) {
        cn_layer_info li;
        if (cn_net_layer(ctx, net, i, o->batch, &li)) return cli_ctx_error(ctx);
        char p[32], tr[32], m[32], rf[32], jp[32];
        snprintf(out, sizeof out, "%lldx%lldx%lld", (long long)li.h, (long long)li.w, (long long)li.c);
        cli_count(p, sizeof p, li.params);
        cli_count(tr, sizeof tr, li.trainable);
        cli_count(m, sizeof m, li.macs);
        exact_dims_text(rf, sizeof rf, li.rf_exact_h, li.rf_exact_w);
        exact_dims_text(jp, sizeof jp, li.jump_exact_h, li.jump_exact_w);
        printf("%-*s  %-*s  %-*s  %12s  %12s  %15s  %7s  %5s", wn, li.name, wt, li.type, wo, out, p, tr, m, rf, jp);
        if (!chain && li.n_inputs > 0) {
            printf("  ");
            for (int j = 0; j < li.n_inputs; j++) printf("%s%s", j ? "," : "", li.inputs[j]);
        }
        printf("\n");
        if (o->explain) {
            char *text = explain_text(net, i, o->batch);
            if (!text) return cli_error("out of memory");
            fputs(text, stdout);
            free(text);
        }
    }
    char p[32], tr[32], m[32];
    cli_count(p, sizeof p, t.params);
    cli_count(tr, sizeof tr, t.trainable);
    cli_count(m, sizeof m, t.macs);
    printf("%-*s  %12s  %12s  %15s\n", wn + wt + wo + 4, "total", p, tr, m);
    cli_count(buf, sizeof buf, t.params - t.trainable);
    printf("\nparameters: %s total, %s trainable, %s not trained", p, tr, buf);
    cli_bytes(buf, sizeof buf, t.params < INT64_MAX / 4 ? t.params * 4 : INT64_MAX);
    printf(" (%s as fp32)\nmultiplications (MACs): %s at batch %lld (conv and dense, bias not counted)\n", buf, m,
           (long long)o->batch);
    return 0;
}

static int print_json(cn_ctx *ctx, const cn_net *net, const options *o)
{
    cn_totals t;
    if (cn_net_totals(ctx, net, o->batch, &t)) return cli_ctx_error(ctx);
    printf("{\"file\":");
    cli_json_string(stdout, cn_net_file_name(net));
    printf(",\"batch\":%lld,\"layers\":[", (long long)o->batch);
    for (int i = 0; i < cn_net_layer_count(net); i++) {
        cn_layer_info li;
        if (cn_net_layer(ctx, net, i, o->batch, &li)) return cli_ctx_error(ctx);
        printf("%s{\"name\":", i ? "," : "");
        cli_json_string(stdout, li.name);
        printf(",\"type\":\"%s\",\"output\":[%lld,%lld,%lld,%lld],\"params\":%lld,\"trainable\":%lld,\"macs\":%lld,"
               "\"rf\":%lld,\"jump\":%lld,\"rf_hw\":[%lld,%lld],\"jump_hw\":[%lld,%lld],\"line\":%d,\"inputs\":[",
               li.type, (long long)o->batch, (long long)li.c, (long long)li.h, (long long)li.w, (long long)li.params,
               (long long)li.trainable, (long long)li.macs, (long long)(li.rf_h > li.rf_w ? li.rf_h : li.rf_w),
               (long long)(li.jump_h > li.jump_w ? li.jump_h : li.jump_w), (long long)li.rf_h, (long long)li.rf_w,
               (long long)li.jump_h, (long long)li.jump_w, li.line);
        for (int j = 0; j < li.n_inputs; j++) {
            if (j) putchar(',');
            cli_json_string(stdout, li.inputs[j]);
        }
        char eh[32], ew[32], jh[32], jw[32];
        exact_text(eh, sizeof eh, li.rf_exact_h, 6), exact_text(ew, sizeof ew, li.rf_exact_w, 6);
        exact_text(jh, sizeof jh, li.jump_exact_h, 6), exact_text(jw, sizeof jw, li.jump_exact_w, 6);
        printf("],\"rf_exact_hw\":[%s,%s],\"jump_exact_hw\":[%s,%s]", eh, ew, jh, jw);
        if (o->explain) {
            char *text = explain_text(net, i, o->batch);
            if (!text) return cli_error("out of memory");
            printf(",\"explain\":");
            cli_json_string(stdout, text);
            free(text);
        }
        printf("}");
    }
    printf("],\"total_params\":%lld,\"trainable_params\":%lld,\"total_macs\":%lld", (long long)t.params,
           (long long)t.trainable, (long long)t.macs);
    return 0;
}

/* --optimizer K: the optimizer state that --memory and --fit count */
static int set_optimizer(cli_args *a, const cli_option *opt, const char *value)
{
    options *o = opt->target;
    o->opt_name = value;
    if (cn_optim_kind_from_name(value, &o->opt)) return 0;
    return cli_usage_error(a->cmd, "--optimizer must be sgd, momentum, nesterov, adam or adamw, got '%s'", value);
}

/* --fit SIZE */
static int set_fit(cli_args *a, const cli_option *opt, const char *value)
{
    return cli_parse_bytes(a->cmd, value, opt->target);
}

/* ---- summary --compare A B: two nets' totals side by side, with B/A (the 1x1 bottleneck
 * worksheet: the naive module against the reduced one) ---------------------------------------- */

typedef struct {
    const char *files[2];
    int n;
} compare_files;

static int take_compare_file(void *state, const char *arg)
{
    compare_files *f = state;
    if (f->n == 2) return 0;
    f->files[f->n++] = arg;
    return 1;
}

static void compare_help(const cli_option *opts)
{
    printf("usage: convnet summary --compare A B [--batch N] [--json]\n\n"
           "The parameters and multiplications (MACs) of two nets side by side, with the ratio B/A.\n"
           "A and B: spec files, checkpoints or run folders.\n\n"
           "options:\n");
    cli_print_options(opts, 16);
    printf("\nexample:\n  convnet summary --compare models/inception-naive.cnn models/inception-reduced.cnn\n");
}

static void print_ratio(int64_t b, int64_t a)
{
    if (a > 0) printf("  %10.4gx", (double)b / (double)a);
    else printf("  %11s", "-");
}

static int summary_compare(int argc, char **argv)
{
    int64_t batch = 1;
    int json = 0, compare = 0;
    compare_files f = { { NULL, NULL }, 0 };
    const cli_option opts[] = {
        { "--compare", NULL, CLI_FLAG, &compare, .help = "compare the two spec files A and B" },
        { "--batch", "N", CLI_INT, &batch, 1, INT64_C(1) << 40, .help = "batch size for MACs (default 1)" },
        { "--json", NULL, CLI_FLAG, &json,
          .help = "{\"a\":{\"file\",\"layers\",\"params\",\"trainable\",\"macs\"},\"b\":{...},\n"
                  "\"ratio\":{\"params\",\"trainable\",\"macs\"}} (ratio B/A; null when A's is 0)" },
        { 0 },
    };
    /* summary's other options (--memory, --explain, --fit, -e) are a single net's: named as such,
     * not as unknown */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1] || !strcmp(a, "--help") || !strcmp(a, "-h")) continue;
        const cli_option *o = opts;
        while (o->name && strcmp(a, o->name) && !(!strncmp(a, o->name, strlen(o->name)) && a[strlen(o->name)] == '='))
            o++;
        if (!o->name)
            return cli_usage_error("summary", "%s is not taken with --compare, which compares two nets' totals (it takes "
                                              "--batch N and --json)", a);
        i += o->arg && !strchr(a, '='); /* its value */
    }
    int usage = cli_parse("summary", argc, argv, opts, compare_help, take_compare_file, &f);
    if (usage != CLI_GO_ON) return usage;
    if (f.n != 2) return cli_usage_error("summary", "--compare needs two nets, A and B (spec files, checkpoints or run folders)");
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    cn_net *net[2] = { NULL, NULL };
    cn_totals t[2];
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++)
        if (cli_load_net(ctx, f.files[i], NULL, &net[i]) || cn_net_totals(ctx, net[i], batch, &t[i])) rc = cli_ctx_error(ctx);
    if (!rc && json) {
        printf("{\"batch\":%lld", (long long)batch);
        for (int i = 0; i < 2; i++) {
            printf(",\"%s\":{\"file\":", i ? "b" : "a");
            cli_json_string(stdout, f.files[i]);
            printf(",\"layers\":%d,\"params\":%lld,\"trainable\":%lld,\"macs\":%lld}", cn_net_layer_count(net[i]),
                   (long long)t[i].params, (long long)t[i].trainable, (long long)t[i].macs);
        }
        int64_t pairs[3][2] = { { t[0].params, t[1].params }, { t[0].trainable, t[1].trainable }, { t[0].macs, t[1].macs } };
        static const char *keys[3] = { "params", "trainable", "macs" };
        printf(",\"ratio\":{");
        for (int k = 0; k < 3; k++) {
            printf("%s\"%s\":", k ? "," : "", keys[k]);
            if (pairs[k][0] > 0) cli_json_float(stdout, (double)pairs[k][1] / (double)pairs[k][0], 0);
            else printf("null");
        }
        printf("}}\n");
    } else if (!rc) {
        char a[64], b[64];
        snprintf(a, sizeof a, "A");
        snprintf(b, sizeof b, "B");
        printf("A: %s\nB: %s\nbatch %lld\n\n", f.files[0], f.files[1], (long long)batch);
        printf("%-24s  %18s  %18s  %11s\n", "", a, b, "B/A");
        const char *rows[4] = { "layers", "parameters", "trainable", "multiplications (MACs)" };
        int64_t va[4] = { cn_net_layer_count(net[0]), t[0].params, t[0].trainable, t[0].macs };
        int64_t vb[4] = { cn_net_layer_count(net[1]), t[1].params, t[1].trainable, t[1].macs };
        for (int r = 0; r < 4; r++) {
            cli_count(a, sizeof a, va[r]);
            cli_count(b, sizeof b, vb[r]);
            printf("%-24s  %18s  %18s", rows[r], a, b);
            print_ratio(vb[r], va[r]);
            printf("\n");
        }
    }
    cn_net_destroy(net[0]);
    cn_net_destroy(net[1]);
    cn_ctx_destroy(ctx);
    return rc;
}

int cmd_summary(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--compare")) return summary_compare(argc, argv);
    options o = { .batch = 1, .fit = -1, .opt = CN_OPTIM_ADAM, .opt_name = "adam" };
    cli_spec spec = { 0 };
    const cli_option opts[] = {
        { "-e", "TEXT", CLI_TEXT, &spec.text, .help = "the spec inline; ';' separates statements" },
        { "--batch", "N", CLI_INT, &o.batch, 1, INT64_C(1) << 40, .help = "batch size for MACs and memory (default 1)" },
        { "--explain", NULL, CLI_FLAG, &o.explain, .help = "under each layer, its formulas with the numbers filled in" },
        { "--json", NULL, CLI_FLAG, &o.json,
          .help = "{\"layers\":[{\"name\",\"type\",\"output\":[N,C,H,W],\"params\",\"trainable\",\n"
                  "\"macs\",\"rf\",\"jump\",...}],\"total_params\",\"trainable_params\",\"total_macs\"}" },
        { "--memory", NULL, CLI_FLAG, &o.memory, .help = "bytes for training and for inference at the batch size" },
        { "--fit", "SIZE", CLI_CALL, &o.fit, .call = set_fit,
          .help = "the largest batch whose training (and inference) fits in SIZE (8GiB, 512MiB)" },
        { "--optimizer", "K", CLI_CALL, &o, .call = set_optimizer,
          .help = "optimizer state counted by --memory/--fit: sgd, momentum, nesterov, adam, adamw (default adam)" },
        { "--compare", "A B", CLI_FLAG, NULL,
          .help = "two spec files' parameters and multiplications side by side, with B/A\n"
                  "(convnet summary --compare A B --help)" },
        { 0 },
    };
    int usage = cli_parse_spec("summary", argc, argv, opts, help, &spec);
    if (usage != CLI_GO_ON) return usage;

    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    cn_net *net = NULL;
    cn_status st = cli_load_net(ctx, spec.file, spec.text, &net);
    int rc = 0;
    if (st) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    cn_memory mem;
    if (o.memory && cn_net_memory(ctx, net, o.batch, o.opt, &mem)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    int64_t fit_train = 0, fit_infer = 0;
    if (o.fit >= 0 && (cn_net_fit_batch(ctx, net, o.fit, o.opt, 1, &fit_train) ||
                       cn_net_fit_batch(ctx, net, o.fit, o.opt, 0, &fit_infer))) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    if (o.json) {
        if ((rc = print_json(ctx, net, &o))) goto done;
        if (o.memory) json_memory(&mem);
        if (o.fit >= 0)
            printf(",\"fit\":{\"budget\":%lld,\"optimizer\":\"%s\",\"training_batch\":%lld,\"inference_batch\":%lld}",
                   (long long)o.fit, o.opt_name, (long long)fit_train, (long long)fit_infer);
        printf("}\n");
    } else {
        if ((rc = print_table(ctx, net, &o))) goto done;
        if (o.memory) print_memory(&mem, o.opt_name);
        if (o.fit >= 0) {
            char b[32];
            cli_bytes(b, sizeof b, o.fit);
            printf("\nlargest batch that fits in %s: training %lld (optimizer %s), inference %lld\n", b,
                   (long long)fit_train, o.opt_name, (long long)fit_infer);
        }
    }
done:
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    return rc;
}
