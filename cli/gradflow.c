/* gradflow.c — `convnet gradflow`: where the gradient goes. One batch of training images forward
 * and backward through the net (fresh weights, or given ones), as a training step makes them,
 * and for every layer the size (root mean square) of its output, of the loss's gradient with
 * respect to that output, and of its weight and the weight's gradient: the vanishing and
 * exploding gradients of the notes, measured. Everything through the public API (the layers'
 * outputs and gradients are the engine's own: cn_net_layer_output, cn_net_layer_grad);
 * tests/gradflow_torch_check.py checks the numbers against PyTorch's. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"
#include "report_impl.h"

#define GRAD_COLOUR "#c0392b"
#define WGRAD_COLOUR "#1f5fbf"

/* a layer's figures; NaN where it has none (no weight, or the weight is not trained) */
typedef struct {
    double out_rms, out_zero, grad_rms, w_rms, wgrad_rms;
} flow;

static double rms(const float *v, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return n ? sqrt(s / (double)n) : NAN;
}

static double zero_fraction(const float *v, int64_t n)
{
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++) z += v[i] == 0.0f;
    return n ? (double)z / (double)n : NAN;
}

/* layer i's figures after a forward and backward */
static flow flow_of(cn_ctx *ctx, const cn_net *net, int i)
{
    flow f = { NAN, NAN, NAN, NAN, NAN };
    int64_t n;
    const float *y = cn_net_layer_output(net, i, &n);
    if (y) f.out_rms = rms(y, n), f.out_zero = zero_fraction(y, n);
    const float *dy = cn_net_layer_grad(net, i, &n);
    if (dy) f.grad_rms = rms(dy, n);
    cn_param_info p[CN_MAX_LAYER_TENSORS];
    int np = cn_net_layer_params(net, i, p);
    for (int k = 0; k < np; k++) {
        char name[300];
        cn_tensor w;
        snprintf(name, sizeof name, "%s.%s", p[k].layer, p[k].name);
        if (!strcmp(p[k].name, "weight") && !cn_net_find_tensor(ctx, net, name, &w) && w.trainable && w.grad)
            f.w_rms = rms(w.data, w.count), f.wgrad_rms = rms(w.grad, w.count);
    }
    return f;
}

static void cell(double v, const char *fmt, int width)
{
    if (isnan(v)) printf("%*s", width, "-");
    else printf(fmt, width, v);
}

static void json_number(const char *key, double v)
{
    printf(",\"%s\":", key);
    if (isnan(v)) printf("null");
    else cli_json_float(stdout, v, 0);
}

/* ---- --html FILE: the figures as a chart on a log scale, and the table ----------------------------- */

/* the chart: dL/d(output) of every layer and dL/dW of the weighted ones, by depth, on a log scale */
static void flow_svg(FILE *f, cn_ctx *ctx, const cn_net *net, const flow *fl, int n)
{
    const double W = 60 + 46.0 * n, H = 330, L = 64, R = 20, T = 40, B = 80;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        double v[2] = { fl[i].grad_rms, fl[i].wgrad_rms };
        for (int k = 0; k < 2; k++)
            if (v[k] > 0 && isfinite(v[k])) lo = fmin(lo, log10(v[k])), hi = fmax(hi, log10(v[k]));
    }
    if (!(lo <= hi)) lo = -1, hi = 0;
    lo = floor(lo), hi = ceil(hi);
    if (hi <= lo) hi = lo + 1;
#define X(i) (L + ((n > 1 ? (double)(i) / (n - 1) : 0.5)) * (W - L - R))
#define Y(e) (H - B - ((e) - lo) / (hi - lo) * (H - T - B))
    fprintf(f, "<svg class=\"flow\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", W, H, W, H);
    fprintf(f, "<title>root mean square of the gradients, by layer</title>\n");
    for (double e = lo; e <= hi + 0.5; e += 1)
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/><text x=\"%.1f\" y=\"%.1f\" "
                   "text-anchor=\"end\">1e%+.0f</text>\n", L, W - R, Y(e), Y(e), L - 6, Y(e) + 4, e);
    fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#333\"/>", L, L, T, H - B);
    fprintf(f, "<text transform=\"translate(16 %.0f) rotate(-90)\" text-anchor=\"middle\">rms (log scale)</text>\n",
            (T + H - B) / 2);
    for (int i = 0; i < n; i++) {
        cn_layer_info li;
        cn_net_layer(ctx, net, i, 1, &li);
        fprintf(f, "<text class=\"layer\" transform=\"translate(%.1f %.0f) rotate(-50)\" text-anchor=\"end\">", X(i) + 4,
                H - B + 14);
        report_html_text(f, li.name);
        fprintf(f, "</text>\n");
    }
    static const struct { const char *name, *colour; size_t at; } lines[] = {
        { "dL/d(output)", GRAD_COLOUR, offsetof(flow, grad_rms) },
        { "dL/dW (weighted layers)", WGRAD_COLOUR, offsetof(flow, wgrad_rms) },
    };
    for (int k = 0; k < 2; k++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", lines[k].colour);
        for (int i = 0; i < n; i++) {
            double v = *(const double *)((const char *)&fl[i] + lines[k].at);
            if (v > 0 && isfinite(v)) fprintf(f, "%.1f,%.1f ", X(i), Y(log10(v)));
        }
        fprintf(f, "\"/>\n");
        for (int i = 0; i < n; i++) {
            double v = *(const double *)((const char *)&fl[i] + lines[k].at);
            if (v > 0 && isfinite(v))
                fprintf(f, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\"><title>%.4g</title></circle>\n",
                        X(i), Y(log10(v)), k ? 5 : 3, lines[k].colour, v);
        }
        double lx = L + 10 + 200 * k;
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"18\" y2=\"18\" stroke=\"%s\" stroke-width=\"2\"/><text x=\"%.0f\" "
                   "y=\"22\">%s</text>\n", lx, lx + 20, lines[k].colour, lx + 26, lines[k].name);
    }
#undef X
#undef Y
    fprintf(f, "</svg>\n");
}

static void html_cell(FILE *f, double v, const char *fmt)
{
    fprintf(f, "<td>");
    if (isnan(v)) fprintf(f, "-");
    else fprintf(f, fmt, v);
    fprintf(f, "</td>");
}

/* the page: what ran, the chart, the verdict and the table; written atomically */
static int flow_html(cn_ctx *ctx, const char *path, const cn_net *net, const flow *fl, int n, const char *label,
                     const char *what, const char *loss_line, const char *verdict)
{
    cli_memfile m;
    if (cli_memfile_open(&m)) return 1;
    FILE *f = m.f;
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>convnet gradflow: ");
    report_html_text(f, label);
    fprintf(f, "</title>\n<style>\nbody{font-family:sans-serif;margin:24px;color:#222}\n"
               "svg text{font-size:12px}.layer{fill:#444}\n"
               "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}\n"
               "td:first-child,td:nth-child(2),th:first-child,th:nth-child(2){text-align:left}\n</style></head><body>\n<h1>Where the gradient goes: ");
    report_html_text(f, label);
    fprintf(f, "</h1>\n<p>");
    report_html_text(f, what);
    fprintf(f, "<br>");
    report_html_text(f, loss_line);
    fprintf(f, "</p>\n<p>Backpropagation multiplies the gradient by each layer's local derivative (a sigmoid's is at "
               "most 0.25, a tanh's at most 1, a relu's 0 or 1). Read from right to left: the gradient starts at the "
               "loss and shrinks (vanishing) or grows (exploding) on its way to the first layers.</p>\n");
    flow_svg(f, ctx, net, fl, n);
    if (verdict[0]) {
        fprintf(f, "<p><b>");
        report_html_text(f, verdict);
        fprintf(f, "</b></p>\n");
    }
    fprintf(f, "<table><tr><th>layer</th><th>type</th><th>output rms</th><th>zeros</th><th>dL/d(output) rms</th>"
               "<th>weight rms</th><th>dL/dW rms</th><th>dL/dW / W</th></tr>\n");
    for (int i = 0; i < n; i++) {
        cn_layer_info li;
        cn_net_layer(ctx, net, i, 1, &li);
        fprintf(f, "<tr><td>");
        report_html_text(f, li.name);
        fprintf(f, "</td><td>%s</td>", li.type);
        html_cell(f, fl[i].out_rms, "%.4g");
        html_cell(f, 100 * fl[i].out_zero, "%.1f%%");
        html_cell(f, fl[i].grad_rms, "%.3e");
        html_cell(f, fl[i].w_rms, "%.4g");
        html_cell(f, fl[i].wgrad_rms, "%.3e");
        html_cell(f, fl[i].wgrad_rms / fl[i].w_rms, "%.3e");
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n</body></html>\n");
    return cli_memfile_commit(ctx, &m, path, 0);
}

static void help(const cli_option *opts)
{
    printf("usage: convnet gradflow SPEC | -e TEXT [--weights FILE] [--data D] [--batch N] [--init I]\n"
           "                        [--seed S] [--eval] [--threads N] [--device cpu|cuda] [--precision P]\n"
           "                        [--html FILE] [--json]\n"
           "       convnet gradflow --weights RUN [options]\n\n"
           "Where the gradient goes: the first N training images forward and backward through the\n"
           "net, as a training step makes them (the loss training uses, averaged over the batch;\n"
           "batch statistics and dropout), and for every layer the root mean square of its output,\n"
           "the share of its outputs that are exactly 0 (dead or inactive relus), the root mean\n"
           "square of dL/d(output), and of the layer's weight and of dL/dW. Backpropagation\n"
           "multiplies the gradient by each layer's local derivative: a sigmoid's is at most 0.25,\n"
           "a tanh's at most 1, a relu's 0 or 1; through many such layers the gradient shrinks\n"
           "(vanishing: the first layers learn slowly) or grows (exploding). Kaiming's weights,\n"
           "relus and batch norm keep it near the same size at every depth. The last line compares\n"
           "the first and the last weighted layer.\n\n"
           "The weights are fresh (--init, --seed: the weights convnet train starts from) unless\n"
           "--weights gives them; the input is normalised by the mean and std of the training\n"
           "images (a checkpoint's own, when --weights is one).\n\n"
           "options:\n");
    cli_print_options(opts, 16);
}

int cmd_gradflow(int argc, char **argv)
{
    cli_spec spec = { 0 };
    const char *weights = NULL, *data = NULL, *html = NULL;
    int64_t batch = 64, seed = 1;
    int init = 0, json = 0, training = 1;
    cli_device dev = { 0 };
    const cli_option opts[] = {
        { "-e", "TEXT", CLI_TEXT, &spec.text, .help = "the spec inline; ';' separates statements" },
        { "--weights", "FILE", CLI_TEXT, &weights,
          .help = "the weights: text or JSON (as trace takes them), or a checkpoint or run folder\n"
                  "(alone: its net, its input normalisation and its data)" },
        { "--data", "D", CLI_TEXT, &data,
          .help = "the images: an MNIST-format folder or an image folder, its training half\n"
                  "(default: fashion-mnist, or the data a checkpoint was trained on)" },
        { "--batch", "N", CLI_INT, &batch, 1, 4096, .help = "images in the batch: the first N (default 64)" },
        { "--init", "I", CLI_CALL, &init, .call = cli_choice_option, .choices = cli_inits,
          .help = "fresh weights: kaiming (default), kaiming-uniform, xavier, xavier-uniform, torch, zero (a layer's init= overrides it)" },
        { "--seed", "S", CLI_INT, &seed, 0, INT64_MAX, .help = "fresh weights' seed (default 1)" },
        { "--eval", NULL, CLI_SET, &training, 0, .help = "evaluation mode: running statistics, no dropout" },
        { "--threads", "N", CLI_CALL, .call = cli_threads_option, .help = CLI_THREADS_HELP },
        CLI_DEVICE_OPTIONS(dev),
        { "--html", "FILE", CLI_TEXT, &html,
          .help = "also write FILE: a page with the gradients by layer on a log scale, and the table" },
        { "--json", NULL, CLI_FLAG, &json,
          .help = "{\"loss\",\"layers\":[{\"name\",\"type\",\"output_rms\",\"output_zero_fraction\",\"grad_rms\",\n"
                  "\"weight_rms\",\"weight_grad_rms\"}],\"first_last_weight_grad_ratio\"} (null: none)" },
        { 0 },
    };
    int usage = cli_parse("gradflow", argc, argv, opts, help, cli_spec_plain, &spec);
    if (usage != CLI_GO_ON) return usage;
    int from_run = !spec.file && !spec.text && weights; /* --weights RUN alone: its net */
    if (!from_run && (usage = cli_spec_check("gradflow", spec.file, spec.text))) return usage;
    if (from_run && !cli_is_checkpoint(weights))
        return cli_usage_error("gradflow", "--weights %s without a spec: give a checkpoint or run folder, or the spec too", weights);

    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    cn_net *net = NULL;
    cn_checkpoint *ck = NULL;
    cn_dataset ds = { 0 };
    float mean[4] = { 0, 0, 0, 0 }, std[4] = { 1, 1, 1, 1 }, *x = NULL, *target = NULL, *dout = NULL;
    int32_t *labels = NULL;
    int64_t *idx = NULL;
    flow *f = NULL;
    int rc = 0, have_norm = 0;
    if (from_run) {
        if ((rc = cli_open_checkpoint(ctx, weights, &ck, &net, mean, std))) goto done;
        have_norm = 1;
    } else {
        if (cli_load_net(ctx, spec.file, spec.text, &net) || cn_net_init_params(ctx, net, (cn_init)init, (uint64_t)seed)) {
            rc = cli_ctx_error(ctx);
            goto done;
        }
        if (weights && (rc = cli_load_weights(ctx, net, weights, "gradflow"))) goto done;
        if (weights && cli_is_checkpoint(weights)) { /* its normalisation, where it has one */
            if (cn_checkpoint_read(ctx, weights, &ck)) {
                rc = cli_ctx_error(ctx);
                goto done;
            }
            have_norm = cn_checkpoint_meta(ck, "norm_mean") && !cn_checkpoint_norm(ctx, ck, mean, std);
        }
    }
    if ((rc = cli_use_device(ctx, net, &dev))) goto done;
    if (!data && ck) data = cn_checkpoint_meta(ck, "data");
    /* images resized as the checkpoint's net was trained on them, else as convnet train would */
    cn_ctx_set_resize(ctx, ck ? cn_checkpoint_resize(ck) : CN_RESIZE_ANTIALIAS);
    int n = cn_net_layer_count(net);
    cn_layer_info in, out;
    cn_net_layer(ctx, net, 0, 1, &in);
    cn_net_layer(ctx, net, n - 1, 1, &out);
    if (cli_load_data(ctx, data, CLI_HALF_TRAIN, &in, &ds, NULL)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    if ((rc = cli_data_fits(data, &ds, &in))) goto done;
    if (cn_net_check_classes(ctx, net, ds.classes)) { /* the loss training uses: one score per class */
        rc = cli_ctx_error(ctx);
        goto done;
    }
    if (ds.count < batch) batch = ds.count;
    if (!have_norm) cn_dataset_stats(&ds, mean, std);
    int64_t chw = in.c * in.h * in.w, classes = out.c * out.h * out.w;
    x = malloc((size_t)(batch * chw) * sizeof *x);
    labels = malloc((size_t)batch * sizeof *labels);
    idx = malloc((size_t)batch * sizeof *idx);
    target = calloc((size_t)(batch * classes), sizeof *target);
    dout = malloc((size_t)(batch * classes) * sizeof *dout);
    f = calloc((size_t)n, sizeof *f);
    if (!x || !labels || !idx || !target || !dout || !f) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (int64_t i = 0; i < batch; i++) idx[i] = i;
    cn_make_batch(&ds, idx, batch, mean, std, 0, 0, NULL, x, labels);
    for (int64_t i = 0; i < batch; i++) target[i * classes + labels[i]] = 1.0f; /* labels < ds.classes <= classes */
    cn_loss_kind kind = cn_net_default_loss(net);
    double loss = 0;
    cn_net_zero_grad(net);
    if (cn_net_forward(ctx, net, x, batch, training) ||
        cn_loss_grad(ctx, kind, target, cn_net_output(net, NULL), batch, classes, CN_REDUCE_MEAN, 0, &loss, dout) ||
        cn_net_backward(ctx, net, dout)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    int first = -1, last = -1; /* the first and the last layer with a trained weight */
    for (int i = 0; i < n; i++) {
        f[i] = flow_of(ctx, net, i);
        if (!isnan(f[i].wgrad_rms)) last = i, first = first < 0 ? i : first;
    }
    double ratio = first >= 0 && first != last && f[last].wgrad_rms > 0 ? f[first].wgrad_rms / f[last].wgrad_rms : NAN;
    char dname[4300], how[200], what[5000], loss_line[300], verdict[300] = "";
    cli_data_name(data, CLI_HALF_TRAIN, dname, sizeof dname);
    if (weights) snprintf(how, sizeof how, "the weights of %s", weights);
    else snprintf(how, sizeof how, "fresh weights (%s, seed %lld)", cli_inits[init], (long long)seed);
    char label[80]; /* the spec file, the start of -e's text, or the run */
    snprintf(label, sizeof label, "%s", spec.file ? spec.file : spec.text ? spec.text : weights);
    if (!spec.file && spec.text && strlen(spec.text) >= sizeof label) {
        size_t cut = sizeof label - 4;
        while (cut > 0 && ((unsigned char)label[cut] & 0xC0) == 0x80) cut--; /* not inside a UTF-8 character */
        memcpy(label + cut, "...", 4);
    }
    snprintf(what, sizeof what, "%s: the first %lld images of %s, %s, %s mode", label, (long long)batch, dname, how,
             training ? "training" : "eval");
    snprintf(loss_line, sizeof loss_line, "loss %.6g (%s, the mean over the batch; a uniform guess among %lld classes: %.4g)",
             loss, cn_loss_name(kind), (long long)classes, log((double)classes));
    if (!isnan(ratio)) {
        cn_layer_info a, b;
        cn_net_layer(ctx, net, first, 1, &a);
        cn_net_layer(ctx, net, last, 1, &b);
        snprintf(verdict, sizeof verdict, "dL/dW rms of the first weighted layer (%s) over the last's (%s): %.3g%s", a.name,
                 b.name, ratio, ratio < 0.01 ? ": vanishing gradients" : ratio > 100 ? ": exploding gradients" : "");
    } else if (first >= 0 && f[last].wgrad_rms == 0 && f[first].wgrad_rms == 0) {
        int moving = 0;
        for (int i = first; i <= last; i++) moving |= f[i].wgrad_rms > 0;
        if (!moving) snprintf(verdict, sizeof verdict, "every dL/dW is 0: no weight would move");
    }
    if (json) {
        printf("{\"batch\":%lld,\"mode\":\"%s\",\"data\":", (long long)batch, training ? "training" : "eval");
        cli_json_string(stdout, dname);
        printf(",\"loss_kind\":\"%s\"", cn_loss_name(kind));
        json_number("loss", loss);
        printf(",\"layers\":[");
        for (int i = 0; i < n; i++) {
            cn_layer_info li;
            cn_net_layer(ctx, net, i, 1, &li);
            printf("%s{\"name\":", i ? "," : "");
            cli_json_string(stdout, li.name);
            printf(",\"type\":\"%s\"", li.type);
            json_number("output_rms", f[i].out_rms);
            json_number("output_zero_fraction", f[i].out_zero);
            json_number("grad_rms", f[i].grad_rms);
            json_number("weight_rms", f[i].w_rms);
            json_number("weight_grad_rms", f[i].wgrad_rms);
            printf("}");
        }
        printf("]");
        json_number("first_last_weight_grad_ratio", ratio);
        printf("}\n");
    } else {
        printf("%s\n%s\n\n", what, loss_line);
        printf("%-16s %-13s %11s %7s %14s %11s %11s %10s\n", "layer", "type", "output rms", "zeros", "dL/dout rms",
               "weight rms", "dL/dW rms", "dL/dW / W");
        for (int i = 0; i < n; i++) {
            cn_layer_info li;
            cn_net_layer(ctx, net, i, 1, &li);
            printf("%-16s %-13s ", li.name, li.type);
            cell(f[i].out_rms, "%*.4g", 11);
            if (isnan(f[i].out_zero)) printf(" %7s", "-");
            else printf(" %6.1f%%", 100 * f[i].out_zero);
            cell(f[i].grad_rms, " %*.3e", 13);
            cell(f[i].w_rms, " %*.4g", 10);
            cell(f[i].wgrad_rms, " %*.3e", 10);
            cell(f[i].wgrad_rms / f[i].w_rms, " %*.3e", 9);
            printf("\n");
        }
        if (verdict[0]) printf("\n%s\n", verdict);
    }
    if (html) rc = flow_html(ctx, html, net, f, n, label, what, loss_line, verdict);
done:
    free(x), free(labels), free(idx), free(target), free(dout), free(f);
    cn_dataset_free(ctx, &ds);
    cn_checkpoint_destroy(ck);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    return rc;
}
