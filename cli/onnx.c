/* onnx.c — `convnet export` (a checkpoint as an ONNX model) and `convnet import` (an ONNX model
 * as a run folder: model.cnn and model.safetensors, which summary, eval, predict, export and
 * train --init-from take). The work is the library's (src/onnx/); tests/onnx_test.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"

#define ONNX_MAX_BYTES ((size_t)4 << 30) /* protobuf's own limit is 2 GiB */

static void export_help(const cli_option *opts)
{
    printf("usage: convnet export CKPT -o model.onnx\n\n"
           "Writes a checkpoint (a file, or a run folder's model.safetensors) as an ONNX model\n"
           "(IR version %d, opset %d): input (N, C, H, W) with N free, already normalised as in\n"
           "training; output the net's last layer. The checkpoint's norm_mean, norm_std and\n"
           "class_names go into the model's metadata_props. Every layer type is written; minpool\n"
           "as Neg, MaxPool, Neg. The file is written whole or not at all.\n\n"
           "options:\n",
           CN_ONNX_IR_VERSION, CN_ONNX_OPSET);
    cli_print_options(opts, 16);
}

static const char *const export_keys[] = { "norm_mean", "norm_std", "class_names", "classes" };

/* a checkpoint's norm_mean or norm_std (4 values, whatever the channels) as the ONNX model's
 * metadata gives it: a value per input channel, "0.286" for a gray net (at most 4) */
static const char *norm_for_channels(const char *v, int64_t channels, char *out, size_t cap)
{
    size_t len = 0;
    for (int64_t k = 0; k < (channels < 4 ? channels : 4) && *v; k++) {
        size_t field = strcspn(v, ",");
        len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s%.*s", k ? "," : "", (int)field, v);
        v += field + (v[field] == ',');
    }
    return out;
}

int cmd_export(int argc, char **argv)
{
    const char *ckpt = NULL, *out = NULL;
    const cli_option opts[] = {
        { "-o", "FILE", CLI_TEXT, &out, .help = "the ONNX file to write (required)" },
        { 0 },
    };
    int usage = cli_parse("export", argc, argv, opts, export_help, cli_take_one, &ckpt);
    if (usage != CLI_GO_ON) return usage;
    if (!ckpt || !out) return cli_usage_error("export", "give a checkpoint (or run folder) and -o model.onnx");
    if (!cn_onnx_available())
        return cli_cmd_error("export", "this convnet was built without ONNX support (install protobuf-c-compiler, "
                                       "libprotobuf-c-dev and libonnx-dev, then build again)");
    int rc = 0;
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    cn_checkpoint *ck = NULL;
    cn_net *net = NULL;
    /* a checkpoint file or a run folder: cn_checkpoint_read takes both */
    if (cn_checkpoint_read(ctx, ckpt, &ck)) {
        rc = cli_checkpoint_error(ctx, ckpt);
    } else if (cn_checkpoint_net(ctx, ck, &net)) {
        rc = cli_ctx_error(ctx);
    } else {
        cn_kv meta[5];
        char norm[2][160];
        int n = 0;
        cn_layer_info input;
        cn_net_layer(ctx, net, 0, 1, &input);
        for (int k = 0; k < 4; k++) {
            const char *v = cn_checkpoint_meta(ck, export_keys[k]);
            if (v && k < 2) v = norm_for_channels(v, input.c, norm[k], sizeof norm[k]);
            if (v) meta[n++] = (cn_kv){ export_keys[k], v };
        }
        /* said even where the checkpoint has no key (bilinear, then): an importer need not guess */
        meta[n++] = (cn_kv){ "resize", cn_resize_name(cn_checkpoint_resize(ck)) };
        if (cn_onnx_export(ctx, net, meta, n, out)) rc = cli_ctx_error(ctx);
        else printf("wrote %s: %d layers, ONNX opset %d\n", out, cn_net_layer_count(net) - 1, CN_ONNX_OPSET);
    }
    cn_net_destroy(net);
    cn_checkpoint_destroy(ck);
    cn_ctx_destroy(ctx);
    return rc;
}

static void import_help(const cli_option *opts)
{
    printf("usage: convnet import model.onnx -o DIR [--fold-bn] [--mean M,M,M] [--std S,S,S] [--resize R] [--replace]\n\n"
           "Reads an ONNX model (opsets 9 to 21; what torch.onnx.export writes for the layers convnet\n"
           "has) into the run folder DIR: DIR/model.cnn, the spec, and DIR/model.safetensors, the\n"
           "checkpoint that summary, eval, predict, export and train --init-from take. A node convnet\n"
           "cannot express is an error naming it, its op type and the op types convnet imports.\n\n"
           "options:\n");
    cli_print_options(opts, 16);
}

/* --mean or --std: 1 to 4 numbers (std > 0) into v, their count into *n */
static int norm_values(const char *what, const char *s, int positive, float v[4], int *n)
{
    float *p = NULL;
    int64_t rows, cols;
    int rc = cli_parse_matrix("import", what, s, &p, &rows, &cols);
    if (rc) return rc;
    if (rows != 1 || cols < 1 || cols > 4) rc = cli_usage_error("import", "%s takes 1 to 4 numbers separated by commas", what);
    for (int k = 0; !rc && k < cols; k++)
        if (positive && !(p[k] >= 1e-6f)) /* a checkpoint with it would not load (its norm_std rule) */
            rc = cli_usage_error("import", "%s: a standard deviation must be >= 1e-06 (got %g)", what, (double)p[k]);
    for (int k = 0; !rc && k < cols; k++) v[k] = p[k];
    *n = (int)cols;
    free(p);
    return rc;
}

/* "0.485,0.456,0.406" as checkpoints keep it, 4 values: one given serves every channel; past
 * the input's channels, fill. Another count than 1 or the channels is an error (exit status). */
static int norm_text(const char *what, const float v[4], int n, int channels, double fill, char *out, size_t cap)
{
    int want = channels < 4 ? channels : 4; /* images have 4 channels at most */
    if (n > 1 && n != want && channels == 1)
        return cli_usage_error("import", "%s has %d numbers for the model's 1 input channel (give 1)", what, n);
    if (n > 1 && n != want)
        return cli_usage_error("import", "%s has %d numbers for the model's %d input channels (give 1 or %d)", what, n,
                               channels, want);
    size_t len = 0;
    for (int k = 0; k < 4; k++)
        len += (size_t)snprintf(out + len, cap - len, "%s%.9g", k ? "," : "", k >= channels ? fill : (double)v[n > 1 ? k : 0]);
    return 0;
}

/* The model's norm_mean or norm_std metadata as the checkpoint keeps it (4 values, fill past the
 * channels) into out: a value per input channel (convnet's export), one for all, or 4 (an export
 * of convnet before 2026-12-07); finite numbers, each std >= 1e-6. 0 when it is none of these. */
static int norm_from_meta(const char *s, int positive, int channels, double fill, char *out, size_t cap)
{
    double v[4];
    int n = 0;
    for (;;) {
        char *end;
        if (n == 4) return 0;
        v[n] = strtod(s, &end);
        if (end == s || !(v[n] > -1e30 && v[n] < 1e30) || (positive && !(v[n] >= 1e-6))) return 0;
        n++;
        if (*end == '\0') break;
        if (*end != ',') return 0;
        s = end + 1;
    }
    if (n != 1 && n != 4 && n != (channels < 4 ? channels : 4)) return 0;
    size_t len = 0;
    for (int k = 0; k < 4; k++)
        len += (size_t)snprintf(out + len, cap - len, "%s%.9g", k ? "," : "", k >= channels || (n > 1 && k >= n) ? fill : v[n > 1 ? k : 0]);
    return 1;
}

/* lines of class_names */
static long count_lines(const char *s)
{
    long n = 1;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* the class names the checkpoint got, the first few; or that it has none (a model without them,
 * or with names a checkpoint refuses, a control character say): predict then prints numbers */
static void print_class_names(const cn_kv *meta, int n)
{
    const char *names = NULL;
    for (int k = 0; k < n; k++)
        if (!strcmp(meta[k].key, "class_names")) names = meta[k].value;
    if (!names) {
        printf("class names: none (predict names classes by number)\n");
        return;
    }
    long count = count_lines(names), shown = 0;
    printf("class names: ");
    for (const char *s = names; *s && shown < 3; shown++) {
        size_t len = strcspn(s, "\n");
        char esc[256], one[256];
        snprintf(one, sizeof one, "%.*s", (int)len, s);
        printf("%s%s", shown ? ", " : "", cn_text_escape(one, esc, sizeof esc));
        s += len + (s[len] == '\n');
    }
    printf(count > 3 ? ", ... (%ld)\n" : "\n", count);
}

int cmd_import(int argc, char **argv)
{
    const char *in = NULL, *dir = NULL, *mean = NULL, *std = NULL;
    int fold = 0, replace = 0, resize = -1;
    const cli_option opts[] = {
        { "-o", "DIR", CLI_TEXT, &dir, .help = "the run folder to write (required; created)" },
        { "--fold-bn", NULL, CLI_FLAG, &fold,
          .help = "fold each BatchNormalization that follows a Conv into its weights and bias\n(default: keep it as a batchnorm layer)" },
        { "--mean", "M,M,M", CLI_TEXT, &mean,
          .help = "the input normalisation eval and predict apply, per channel\n(one number: every channel; default: the model's metadata, else 0)" },
        { "--std", "S,S,S", CLI_TEXT, &std, .help = "(default: the model's metadata, else 1)" },
        { "--resize", "R", CLI_CALL, &resize, .call = cli_choice_option, .choices = cli_resizes,
          .help = "how eval and predict resize images for it: antialias, draft or bilinear\n"
                  "(default: the model's metadata, else antialias, as torchvision's\n"
                  "Resize made the images of a model trained in PyTorch)" },
        { "--replace", NULL, CLI_FLAG, &replace, .help = "replace the run DIR holds" },
        { 0 },
    };
    int usage = cli_parse("import", argc, argv, opts, import_help, cli_take_one, &in);
    if (usage != CLI_GO_ON) return usage;
    if (!in || !dir) return cli_usage_error("import", "give an ONNX file and -o DIR");
    char mean_text[160] = "0,0,0,0", std_text[160] = "1,1,1,1";
    float mean_v[4], std_v[4];
    int rc, n_mean = 0, n_std = 0;
    if ((mean && (rc = norm_values("--mean", mean, 0, mean_v, &n_mean))) ||
        (std && (rc = norm_values("--std", std, 1, std_v, &n_std))))
        return rc;
    if (!cn_onnx_available())
        return cli_cmd_error("import", "this convnet was built without ONNX support (install protobuf-c-compiler, "
                                       "libprotobuf-c-dev and libonnx-dev, then build again)");
    size_t len;
    char *data = cli_read_file(in, ONNX_MAX_BYTES, &len, &rc);
    if (!data) return rc;
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) {
        free(data);
        return cli_error("out of memory");
    }
    char spec_path[4200], ck_path[4200];
    snprintf(spec_path, sizeof spec_path, "%s/model.cnn", dir);
    snprintf(ck_path, sizeof ck_path, "%s/model.safetensors", dir);
    cn_onnx_import_options opt = { .fold_bn = fold, .spec_name = spec_path };
    cn_onnx_imported r;
    int fd = -1;
    if (cn_onnx_import(ctx, data, len, in, &opt, &r)) {
        free(data);
        rc = cli_ctx_error(ctx);
        cn_ctx_destroy(ctx);
        return rc;
    }
    free(data);
    cn_layer_info input;
    cn_net_layer(ctx, r.net, 0, 1, &input);
    if ((mean && (rc = norm_text("--mean", mean_v, n_mean, (int)input.c, 0, mean_text, sizeof mean_text))) ||
        (std && (rc = norm_text("--std", std_v, n_std, (int)input.c, 1, std_text, sizeof std_text))))
        goto done;
    if ((rc = cli_run_lock(ctx, dir, &fd))) goto done;
    const char *found = cli_run_found(dir);
    if (found && !replace) {
        rc = cli_error("%s holds a run (its %s): --replace replaces it, or choose another -o", dir, found);
        goto done;
    }
    if (found && (rc = cli_run_remove(dir))) goto done;
    cn_layer_info last;
    char classes[32], source[4200];
    cn_net_layer(ctx, r.net, cn_net_layer_count(r.net) - 1, 1, &last);
    snprintf(classes, sizeof classes, "%lld", (long long)(last.c * last.h * last.w));
    snprintf(source, sizeof source, "%s", in);
    cn_kv meta[8] = { { "norm_mean", mean_text }, { "norm_std", std_text }, { "classes", classes }, { "onnx", source },
                      { "resize", cn_resize_name(resize >= 0 ? (cn_resize)resize : CN_RESIZE_ANTIALIAS) } };
    char norm_meta[2][160];
    int n = 5;
    for (int k = 0; k < r.n_meta; k++) {
        int j = !strcmp(r.meta[k].key, "norm_mean") ? 0 : !strcmp(r.meta[k].key, "norm_std") ? 1 : -1;
        if (j >= 0 && (j ? std : mean)) continue; /* given on the command line */
        if (!strcmp(r.meta[k].key, "resize")) {
            cn_resize mode;
            if (!cn_resize_parse(r.meta[k].value, &mode))
                fprintf(stderr, "convnet import: note: the model's resize metadata is not bilinear, antialias or draft: ignored\n");
            else if (resize < 0) meta[4].value = cn_resize_name(mode);
            continue;
        }
        if (j >= 0 && norm_from_meta(r.meta[k].value, j, (int)input.c, j, norm_meta[j], sizeof norm_meta[j]))
            meta[j].value = norm_meta[j];
        else if (j < 0 && count_lines(r.meta[k].value) == last.c * last.h * last.w) meta[n++] = r.meta[k];
        else /* kept out of the checkpoint, which would refuse it: said, not an error */
            fprintf(stderr, "convnet import: note: the model's %s metadata is %s: left out\n", r.meta[k].key,
                    j >= 0 ? "not a number for each input channel (each std >= 1e-6)" : "not a name for each output");
    }
    const char *spec = cn_net_spec_text(r.net);
    if (cn_file_write_atomic(ctx, spec_path, spec, strlen(spec)) ||
        cn_checkpoint_write(ctx, ck_path, r.net, NULL, meta, n)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    cn_totals t;
    cn_net_totals(ctx, r.net, 1, &t);
    printf("imported %s: %d layers, %lld parameters", in, cn_net_layer_count(r.net) - 1, (long long)t.params);
    if (r.folded) printf(", %d batch norms folded into convolutions", r.folded);
    printf("\nwrote %s and %s\n", spec_path, ck_path);
    print_class_names(meta, n);
done:
    cli_run_unlock(fd);
    cn_onnx_imported_free(ctx, &r);
    cn_ctx_destroy(ctx);
    return rc;
}
