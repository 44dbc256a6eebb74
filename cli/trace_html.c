/* trace_html.c — `convnet trace --html FILE`: the traced step as one self-contained page, a
 * graph per sample with every layer's values on it (forward in blue, gradients in red, as
 * the notes draw a computational graph) and a table of every parameter before, its gradient
 * and after the update. Checked in headless Chromium by tests/worksheet_test.sh. */
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"
#include "report_impl.h"

#define FWD_COLOUR "#1f5fbf"
#define GRAD_COLOUR "#c0392b"
#define NODES_DRAWN 12 /* a layer with more values per sample is drawn as one box */
#define COL_W 170
#define ROW_H 58

static int64_t values_of(const cn_layer_info *li) { return li->c * li->h * li->w; }

/* the y of node k of a layer of n values (drawn as nodes or as one box) */
static int node_y(int64_t n, int64_t k) { return n <= NODES_DRAWN ? 70 + (int)k * ROW_H : 70; }

static void sample_svg(FILE *f, cn_ctx *ctx, const cn_net *net, int64_t batch, int64_t s, int grads)
{
    int n = cn_net_layer_count(net);
    int64_t rows = 1;
    for (int i = 0; i < n; i++) {
        cn_layer_info li;
        if (!cn_net_layer(ctx, net, i, batch, &li) && values_of(&li) <= NODES_DRAWN && values_of(&li) > rows)
            rows = values_of(&li);
    }
    int width = 60 + n * COL_W, height = 90 + (int)rows * ROW_H;
    fprintf(f, "<svg class=\"graph\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", width, height, width,
            height);
    /* edges first, under the nodes */
    for (int i = 1; i < n; i++) {
        cn_layer_info li, in;
        if (cn_net_layer(ctx, net, i, batch, &li)) continue;
        int64_t m = values_of(&li);
        for (int j = 0; j < li.n_inputs; j++) {
            int a = cli_layer_index(ctx, net, li.inputs[j]);
            if (a < 0 || cn_net_layer(ctx, net, a, batch, &in)) continue;
            int64_t k = values_of(&in);
            int x0 = 40 + a * COL_W + 20, x1 = 40 + i * COL_W - 20;
            int dense = !strcmp(li.type, "dense") && k <= NODES_DRAWN && m <= NODES_DRAWN;
            int one_to_one = k == m && k <= NODES_DRAWN && !dense;
            for (int64_t p = 0; p < (k <= NODES_DRAWN ? k : 1); p++)
                for (int64_t q = 0; q < (m <= NODES_DRAWN ? m : 1); q++) {
                    if (one_to_one && p != q) continue;
                    if (!dense && !one_to_one && (p || q)) continue;
                    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#bbb\"/>\n", x0, node_y(k, p), x1,
                            node_y(m, q));
                }
        }
    }
    for (int i = 0; i < n; i++) {
        cn_layer_info li;
        if (cn_net_layer(ctx, net, i, batch, &li)) continue;
        int64_t m = values_of(&li);
        const float *y = cn_net_layer_output(net, i, NULL) + s * m;
        const float *dy = grads ? cn_net_layer_grad(net, i, NULL) : NULL;
        if (dy) dy += s * m;
        int x = 40 + i * COL_W;
        fprintf(f, "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" class=\"layer\">", x);
        report_html_text(f, li.name);
        fprintf(f, "</text><text x=\"%d\" y=\"38\" text-anchor=\"middle\" class=\"type\">%s %lldx%lldx%lld</text>\n", x,
                li.type, (long long)li.h, (long long)li.w, (long long)li.c);
        if (m > NODES_DRAWN) {
            fprintf(f, "<rect class=\"box\" x=\"%d\" y=\"50\" width=\"120\" height=\"40\" rx=\"6\"/>"
                       "<text x=\"%d\" y=\"74\" text-anchor=\"middle\">%lld values</text>\n",
                    x - 60, x, (long long)m);
            continue;
        }
        for (int64_t k = 0; k < m; k++) {
            int cy = node_y(m, k);
            fprintf(f, "<circle class=\"node\" cx=\"%d\" cy=\"%d\" r=\"20\"/>"
                       "<text class=\"fwd\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.4g</text>",
                    x, cy, x, cy + 4, y[k]);
            if (dy) fprintf(f, "<text class=\"grad\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">&#8706; %.4g</text>", x, cy + 34, dy[k]);
            fprintf(f, "\n");
        }
    }
    fprintf(f, "</svg>\n");
}

static void value_list(FILE *f, const float *v, int64_t n, const char *cls)
{
    fprintf(f, "<td class=\"%s\">", cls);
    for (int64_t k = 0; k < n; k++) fprintf(f, "%s%.6g", k ? ", " : "", v[k]);
    fprintf(f, "</td>");
}

int cli_trace_html(cn_ctx *ctx, const cn_net *net, int64_t batch, int grads, double loss, const char *loss_name,
                   const char *optimizer, double lr, const float *before, const char *path)
{
    cli_memfile m;
    if (cli_memfile_open(&m)) return 1;
    FILE *f = m.f;
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>convnet trace: ");
    report_html_text(f, cn_net_file_name(net));
    fprintf(f, "</title>\n<style>\nbody{font-family:sans-serif;margin:24px;color:#222}\n"
               ".fwd{fill:" FWD_COLOUR ";font-size:12px}.grad{fill:" GRAD_COLOUR ";font-size:11px}\n"
               ".node{fill:#fff;stroke:#555}.box{fill:#f4f4f4;stroke:#555}.layer{font-weight:bold;font-size:13px}\n"
               ".type{fill:#666;font-size:11px}td.fwd{color:" FWD_COLOUR "}td.grad{color:" GRAD_COLOUR "}\n"
               "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}\n"
               "</style></head><body>\n<h1>One training step of ");
    const char *name = cn_net_file_name(net);
    report_html_text(f, strcmp(name, "-e") ? name : "the net given by -e");
    fprintf(f, "</h1>\n<pre>");
    report_html_text(f, cn_net_spec_text(net));
    fprintf(f, "</pre>\n<p>Values of the forward pass in <span style=\"color:" FWD_COLOUR "\">blue</span>");
    if (grads) {
        fprintf(f, ", gradients of the loss (&#8706;L/&#8706;value) in <span style=\"color:" GRAD_COLOUR "\">red</span>. "
                   "Loss %s = %.6g; update by %s with learning rate %g.", loss_name, loss, optimizer, lr);
    }
    fprintf(f, " The worked arithmetic of every number: <code>convnet trace</code> without <code>--html</code>.</p>\n");
    for (int64_t s = 0; s < batch; s++) {
        fprintf(f, "<h2>Sample %lld</h2>\n", (long long)s + 1);
        sample_svg(f, ctx, net, batch, s, grads);
    }
    if (grads) {
        fprintf(f, "<h2>Parameters</h2>\n<table><tr><th>tensor</th><th>before</th><th>gradient</th><th>after</th></tr>\n");
        const float *params = cn_net_params(net, NULL, NULL);
        for (int k = 0; k < cn_net_tensor_count(net); k++) {
            cn_tensor t;
            if (cn_net_tensor(ctx, net, k, &t) || !t.trainable) continue;
            fprintf(f, "<tr><td>");
            report_html_text(f, t.name);
            fprintf(f, "</td>");
            value_list(f, before + (t.data - params), t.count, "fwd");
            value_list(f, t.grad, t.count, "grad");
            value_list(f, t.data, t.count, "fwd");
            fprintf(f, "</tr>\n");
        }
        fprintf(f, "</table>\n");
    }
    fprintf(f, "</body></html>\n");
    return cli_memfile_commit(ctx, &m, path, 0);
}
