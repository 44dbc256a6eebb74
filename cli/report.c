/* report.c — `convnet report DIR`: one self-contained HTML page (DIR/report.html) for a training
 * run: loss and accuracy per epoch from metrics.csv and the loss per step from steps.csv as inline
 * SVG charts, the test set's confusion matrix as a heat map, per-class accuracy, the model summary
 * table, and a grid of test images (inline PNGs) with predicted and true labels, mistakes first,
 * taken in turn from each class, each titled with its file.
 * No network access: no external scripts, styles or fonts. `convnet train` calls cmd_report at the
 * end of a run, and cli_report_live after every epoch: the same page without the test set (too slow
 * to evaluate every epoch), which reloads itself in the browser. Both are written atomically.
 * Covered by tests/report_test.sh (headless Chromium parses the page, live mid-run and final, and
 * takes a screenshot).
 * This file: the page and the commands; reading the run is in report_data.c, the charts in
 * report_chart.c (report_impl.h). */
#define _POSIX_C_SOURCE 200809L /* strdup, localtime_r */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report_impl.h"

#define REPORT_REFRESH_S 15 /* the live page reloads itself this often */

static void help(const cli_option *opts)
{
    printf("usage: convnet report DIR [--data D] [--images N] [--batch N] [--tta flip|flip-shift] [--threads N] [--quiet]\n\n"
           "Writes DIR/report.html for the training run in DIR (as `convnet train --out DIR` leaves it):\n"
           "one self-contained HTML file (no network access) with the loss and accuracy per epoch (train\n"
           "and validation, from DIR/metrics.csv) as SVG charts, the test set's confusion matrix as a heat\n"
           "map, the accuracy per class, the model summary table, and a grid of test images with their\n"
           "predicted and true labels, mistakes first; with DIR/steps.csv, the loss per step too.\n"
           "`convnet train` writes it at the end of a run, and during the run a live page after every\n"
           "epoch (the charts and the model, no test results yet) that reloads itself every %d s.\n\n",
           REPORT_REFRESH_S);
    cli_print_options(opts, 12);
}

/* ---- HTML text ------------------------------------------------------------------------------------ */

/* s with & < > " ' escaped, for element text and attribute values alike */
void report_html_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *label_of(const report_data *d, int32_t k, char *buf, size_t cap)
{
    if (d->test.class_names && k >= 0 && k < d->test.classes && d->test.class_names[k]) return d->test.class_names[k];
    snprintf(buf, cap, "%d", (int)k);
    return buf;
}

static void base64(FILE *f, const unsigned char *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        fputc(abc[v >> 18 & 63], f);
        fputc(abc[v >> 12 & 63], f);
        fputc(i + 1 < n ? abc[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? abc[v & 63] : '=', f);
    }
}

static const char style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1150px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}"
    ".meta{color:#555}.live{background:#fff6d8;border:1px solid #e3c35a;padding:6px 10px}.charts{display:flex;flex-wrap:wrap;gap:16px 40px}"
    "svg.chart{background:#fff;border:1px solid #ddd}svg.chart text{font:11px sans-serif;fill:#333}"
    "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right}th{background:#f3f3f3}"
    "td.l,th.l{text-align:left}table.summary td,table.summary th{border-bottom:1px solid #eee}"
    "td.cm{width:34px;height:26px;text-align:center;padding:0;font-size:11px;border:1px solid #fff}"
    ".bar{display:inline-block;height:10px;background:#4a7fc1;vertical-align:middle}"
    "tr.avg td{border-top:1px solid #ccc;color:#555}"
    ".grid{display:flex;flex-wrap:wrap;gap:6px}"
    ".cell{width:96px;text-align:center;font-size:11px;border:2px solid #3a3;padding:2px}"
    ".cell.wrong{border-color:#d33}.cell img{width:84px;height:84px;image-rendering:pixelated}"
    ".wrong .p{color:#d33;font-weight:bold}pre{background:#f6f6f6;padding:8px}";

/* ---- the test set: confusion matrix, per-class accuracy, image grid ----------------------------- */

static int64_t row_total(const cn_eval_result *r, int32_t c)
{
    int64_t n = 0;
    for (int32_t p = 0; p < r->classes; p++) n += r->confusion[c * r->classes + p];
    return n;
}

static void write_confusion(FILE *f, const report_data *d)
{
    const cn_eval_result *r = &d->eval;
    int32_t k = r->classes;
    char buf[32];
    fprintf(f, "<h2>Confusion matrix</h2>\n<p class=\"meta\">Rows: true class; columns: predicted. Shade: share of<br>"
               "the row (blue on the diagonal, red off it).</p>\n<table class=\"confusion\">"
               "<tr><th class=\"l\">true \\ predicted</th>");
    for (int32_t p = 0; p < k; p++) {
        fprintf(f, "<th title=\"");
        report_html_text(f, label_of(d, p, buf, sizeof buf));
        fprintf(f, "\">%d</th>", (int)p);
    }
    fprintf(f, "</tr>\n");
    for (int32_t c = 0; c < k; c++) {
        int64_t total = row_total(r, c);
        fprintf(f, "<tr><th class=\"l\">%d ", (int)c);
        report_html_text(f, label_of(d, c, buf, sizeof buf));
        fprintf(f, "</th>");
        for (int32_t p = 0; p < k; p++) {
            int64_t n = r->confusion[c * k + p];
            double share = total ? (double)n / (double)total : 0, a = c == p ? share : sqrt(share);
            fprintf(f, "<td class=\"cm\" style=\"background:rgba(%s,%.3f);color:%s\">%lld</td>",
                    c == p ? "31,119,180" : "214,39,40", a, a > 0.55 ? "#fff" : "#222", (long long)n);
        }
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n");
    int32_t pair[CLI_MISTAKES][2];
    int mistakes = cli_most_confused(r->confusion, k, CLI_MISTAKES, pair);
    if (mistakes) fprintf(f, "<p class=\"meta\" style=\"max-width:480px\">The most frequent mistakes: ");
    for (int i = 0; i < mistakes; i++) {
        fprintf(f, "%s", i ? ", " : "");
        report_html_text(f, label_of(d, pair[i][0], buf, sizeof buf));
        fprintf(f, " as ");
        report_html_text(f, label_of(d, pair[i][1], buf, sizeof buf));
        fprintf(f, " %lld", (long long)r->confusion[pair[i][0] * k + pair[i][1]]);
    }
    if (mistakes) fprintf(f, ".</p>\n");
}

/* a share as a table cell, "&ndash;" where NaN (nothing to count) */
static void share_cell(FILE *f, double v)
{
    if (isnan(v)) fprintf(f, "<td>&ndash;</td>");
    else fprintf(f, "<td>%.2f%%</td>", 100 * v);
}

static int write_per_class(FILE *f, cn_ctx *ctx, const report_data *d)
{
    const cn_eval_result *r = &d->eval;
    char buf[32];
    cn_class_score *s = malloc((size_t)r->classes * sizeof *s), avg[2];
    if (!s) return cli_error("out of memory");
    if (cn_class_scores(ctx, r, s, avg)) {
        free(s);
        return cli_ctx_error(ctx);
    }
    fprintf(f, "<h2>Accuracy per class</h2>\n<table class=\"per-class\"><tr><th class=\"l\">class</th><th>images</th>"
               "<th>correct</th><th>accuracy</th><th>precision</th><th>F1</th><th class=\"l\"></th></tr>\n");
    for (int32_t c = 0; c < r->classes; c++) {
        fprintf(f, "<tr><td class=\"l\">%d ", (int)c);
        report_html_text(f, label_of(d, c, buf, sizeof buf));
        fprintf(f, "</td><td>%lld</td><td>%lld</td>", (long long)s[c].support, (long long)s[c].correct);
        share_cell(f, s[c].recall), share_cell(f, s[c].precision), share_cell(f, s[c].f1);
        if (isnan(s[c].recall)) fprintf(f, "<td class=\"l\"></td></tr>\n"); /* no image of the class */
        else fprintf(f, "<td class=\"l\"><span class=\"bar\" style=\"width:%.0fpx\"></span></td></tr>\n", 60 * s[c].recall);
    }
    for (int a = 0; a < 2; a++) {
        fprintf(f, "<tr class=\"avg\"><td class=\"l\">%s</td><td>%lld</td><td>%lld</td>", a ? "weighted avg" : "macro avg",
                (long long)avg[a].support, (long long)avg[a].correct);
        share_cell(f, avg[a].recall), share_cell(f, avg[a].precision), share_cell(f, avg[a].f1);
        fprintf(f, "<td class=\"l\"></td></tr>\n");
    }
    fprintf(f, "</table>\n<p class=\"meta\" style=\"max-width:540px\">A class's accuracy is its recall (its images "
               "predicted as it); precision: the images predicted as it that are it; F1: their harmonic mean. Averages "
               "as scikit-learn's classification_report.</p>\n");
    if (r->classes > 2 && r->count > 0) { /* top-k: said for 2 <= k < classes */
        fprintf(f, "<p class=\"meta\" style=\"max-width:540px\">");
        cli_top_k(f, d->ranks, r->classes, 5, r->count);
        fprintf(f, " (the true class among the k most likely)</p>\n");
    }
    free(s);
    return 0;
}

/* test image i as an <img> with an inline PNG: written to a temporary file in the run folder
 * (cn_image_save_png writes files), read back, removed */
static int write_image(FILE *f, cn_ctx *ctx, const report_data *d, int64_t i)
{
    const cn_dataset *ds = &d->test;
    char path[4200];
    snprintf(path, sizeof path, "%s/.report-%ld.png", d->dir, (long)getpid());
    int64_t c = ds->c == 3 ? 3 : 1; /* other channel counts: the first channel, in gray */
    const float *img = ds->images + i * ds->c * ds->h * ds->w;
    if (cn_image_save_png(ctx, path, img, c, ds->h, ds->w)) return cli_ctx_error(ctx);
    FILE *png = fopen(path, "rb");
    unsigned char *bytes = NULL;
    long n = -1;
    if (png && !fseek(png, 0, SEEK_END) && (n = ftell(png)) > 0 && !fseek(png, 0, SEEK_SET) &&
        (bytes = malloc((size_t)n)) && fread(bytes, 1, (size_t)n, png) == (size_t)n) {
        fprintf(f, "<img alt=\"test image %lld\" src=\"data:image/png;base64,", (long long)i);
        base64(f, bytes, (size_t)n);
        fprintf(f, "\">");
    } else {
        n = -1;
    }
    if (png) fclose(png);
    free(bytes);
    unlink(path);
    return n > 0 ? 0 : cli_error("%s: cannot read back the image just written", path);
}

/* up to want test images that are mistakes (wrong 1) or correct (wrong 0) into pick, round-robin
 * over the true classes: each class's first (in data set order), then each one's second, ..., so
 * that no class fills the grid while another is missing; next[classes]: each class's next image
 * to look at. How many were picked. */
static int64_t pick_round_robin(const report_data *d, int wrong, int64_t want, int64_t *next, int64_t *pick)
{
    const cn_dataset *ds = &d->test;
    int64_t n = 0, found = 1;
    for (int32_t c = 0; c < ds->classes; c++) next[c] = 0;
    while (n < want && found) { /* a round: one image of each class that has one left */
        found = 0;
        for (int32_t c = 0; c < ds->classes && n < want; c++) {
            int64_t i = next[c];
            while (i < ds->count && (ds->labels[i] != c || (d->pred[i] != c) != wrong)) i++;
            next[c] = i + (i < ds->count);
            if (i < ds->count) pick[n++] = i, found = 1;
        }
    }
    return n;
}

/* up to n_max test images into pick: mistakes first (at most 3/4 of the grid, more when there are
 * too few correct ones), then correct ones, each round-robin over the classes; how many */
static int64_t pick_images(const report_data *d, int64_t n_max, int64_t *pick, int64_t *next)
{
    int64_t wrong = 0, wrong_max = n_max - n_max / 4;
    for (int64_t i = 0; i < d->test.count; i++) wrong += d->pred[i] != d->test.labels[i];
    int64_t right = d->test.count - wrong, take = n_max - right > wrong_max ? n_max - right : wrong_max;
    int64_t n = pick_round_robin(d, 1, wrong < take ? wrong : take, next, pick);
    return n + pick_round_robin(d, 0, n_max - n, next, pick + n);
}

/* the cell's tooltip: the image's file (IDX: its index) and its classes */
static void write_image_title(FILE *f, const report_data *d, int64_t i, int32_t p, int32_t t)
{
    char b1[32], b2[32];
    fprintf(f, " title=\"");
    if (d->files && d->files[i]) report_html_text(f, d->files[i]);
    else fprintf(f, "image %lld (from 0)", (long long)i);
    fprintf(f, ": predicted ");
    report_html_text(f, label_of(d, p, b1, sizeof b1));
    fprintf(f, ", true ");
    report_html_text(f, label_of(d, t, b2, sizeof b2));
    fprintf(f, "\"");
}

static int write_image_grid(FILE *f, cn_ctx *ctx, const report_data *d, int64_t n_max)
{
    int64_t *pick = malloc((size_t)(n_max ? n_max : 1) * sizeof(int64_t));
    int64_t *next = malloc((size_t)(d->test.classes > 0 ? d->test.classes : 1) * sizeof(int64_t));
    if (!pick || !next) {
        free(pick), free(next);
        return cli_error("out of memory");
    }
    int64_t n = pick_images(d, n_max, pick, next), wrong = 0;
    free(next);
    for (int64_t j = 0; j < n; j++) wrong += d->pred[pick[j]] != d->test.labels[pick[j]];
    fprintf(f, "<h2>%s</h2>\n<p class=\"meta\">%lld images: %lld mistakes (red) first, then correctly "
               "classified ones (green), each taken in turn from every class (its first, then its second, ...). "
               "Each shows the predicted class (p) and the true class (t); its tooltip %s.</p>\n"
               "<div class=\"grid\">\n", d->is_test ? "Test images" : "Images", (long long)n, (long long)wrong,
            d->files ? "names its file" : "gives its index in the data (from 0)");
    int rc = 0;
    char b1[32], b2[32];
    for (int64_t j = 0; j < n && !rc; j++) {
        int64_t i = pick[j];
        int32_t p = d->pred[i], t = d->test.labels[i];
        fprintf(f, "<div class=\"cell%s\"", p != t ? " wrong" : "");
        write_image_title(f, d, i, p, t);
        fprintf(f, ">");
        if ((rc = write_image(f, ctx, d, i))) break;
        fprintf(f, "<div class=\"p\">p: ");
        report_html_text(f, label_of(d, p, b1, sizeof b1));
        fprintf(f, "</div><div class=\"t\">t: ");
        report_html_text(f, label_of(d, t, b2, sizeof b2));
        fprintf(f, "</div></div>\n");
    }
    fprintf(f, "</div>\n");
    free(pick);
    return rc;
}

/* ---- the model ------------------------------------------------------------------------------------ */

static int write_summary(FILE *f, cn_ctx *ctx, const report_data *d)
{
    cn_totals t;
    if (cn_net_totals(ctx, d->net, 1, &t)) return cli_ctx_error(ctx);
    fprintf(f, "<h2>Model</h2>\n<p class=\"meta\">As <code>convnet summary</code> computes it, for one image: the "
               "output of each layer (HxWxC), its parameters and its multiply-accumulates.</p>\n<table class=\"summary\">"
               "<tr><th class=\"l\">layer</th><th class=\"l\">type</th><th class=\"l\">output</th><th>params</th>"
               "<th>trainable</th><th>MACs</th></tr>\n");
    char p[32], tr[32], m[32];
    for (int i = 0; i < cn_net_layer_count(d->net); i++) {
        cn_layer_info li;
        if (cn_net_layer(ctx, d->net, i, 1, &li)) return cli_ctx_error(ctx);
        cli_count(p, sizeof p, li.params);
        cli_count(tr, sizeof tr, li.trainable);
        cli_count(m, sizeof m, li.macs);
        fprintf(f, "<tr><td class=\"l\">");
        report_html_text(f, li.name);
        fprintf(f, "</td><td class=\"l\">");
        report_html_text(f, li.type);
        fprintf(f, "</td><td class=\"l\">%lldx%lldx%lld</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", (long long)li.h,
                (long long)li.w, (long long)li.c, p, tr, m);
    }
    cli_count(p, sizeof p, t.params);
    cli_count(tr, sizeof tr, t.trainable);
    cli_count(m, sizeof m, t.macs);
    fprintf(f, "<tr><th class=\"l\" colspan=\"3\">total</th><th>%s</th><th>%s</th><th>%s</th></tr>\n</table>\n", p, tr, m);
    fprintf(f, "<p>Spec:</p><pre>");
    report_html_text(f, cn_net_spec_text(d->net));
    fprintf(f, "</pre>\n");
    return 0;
}

/* the net as the page names it: the spec file it was trained from (the first of train_args), else
 * (a spec given by -e) the checkpoint it was read from, without the ":spec" of its messages */
static void write_model_name(FILE *f, const report_data *d, const char *args)
{
    char name[4200];
    const char *file = cn_net_file_name(d->net);
    if (args && *args && *args != '-' && *args != '\n') {
        snprintf(name, sizeof name, "%.*s", (int)strcspn(args, "\n"), args);
    } else {
        size_t len = strlen(file);
        if (len > 5 && !strcmp(file + len - 5, ":spec")) len -= 5;
        snprintf(name, sizeof name, "%.*s", (int)len, file);
    }
    report_html_text(f, name);
}

/* the page's head and first lines; the live page's reloads itself and says how far training is */
static void write_header(FILE *f, const report_data *d)
{
    const char *best = cn_checkpoint_meta(d->ck, "best_epoch");
    const char *args = d->settings ? d->settings : cn_checkpoint_meta(d->ck, "train_args"); /* the run's current */
    const char *monitor = cn_checkpoint_meta(d->ck, "monitor"); /* absent before --monitor: accuracy */
    const char *data = cn_checkpoint_meta(d->ck, "data");
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    if (d->live_epochs) fprintf(f, "<meta http-equiv=\"refresh\" content=\"%d\">", REPORT_REFRESH_S);
    fprintf(f, "<title>convnet report: ");
    report_html_text(f, d->dir);
    if (d->live_epochs) fprintf(f, " (training, epoch %lld of %lld)", (long long)d->live_epoch, (long long)d->live_epochs);
    fprintf(f, "</title>\n<style>%s</style></head>\n<body>\n<h1>Training report: ", style);
    report_html_text(f, d->dir);
    fprintf(f, "</h1>\n");
    if (d->live_epochs) {
        char when[64] = "?";
        time_t now = time(NULL);
        struct tm tm;
        if (localtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(f, "<p class=\"live\"><b>training: epoch %lld of %lld done, updated at %s</b> &middot; this page "
                   "reloads itself every %d s; the %s when training ends.</p>\n", (long long)d->live_epoch,
                (long long)d->live_epochs, when, REPORT_REFRESH_S, d->is_test ? "test results appear" : "evaluation appears");
    }
    const char *by = report_validated(d) ? "validation" : "training"; /* --val 0 picks by the training figures */
    fprintf(f, "<p class=\"meta\">");
    write_model_name(f, d, args);
    fprintf(f, " on ");
    report_html_text(f, data ? data : "?");
    if (d->live_epochs) {
        fprintf(f, " &middot; best epoch so far (by %s %s) %s", by, monitor ? monitor : "accuracy", best ? best : "?");
    } else {
        /* "test" only for test data: the run's own folder without a test half is evaluated whole,
         * training images included; a folder given by --data is named as given, no more */
        if (!d->no_metrics) fprintf(f, " &middot; %lld epoch%s", (long long)d->n_rows, d->n_rows == 1 ? "" : "s");
        fprintf(f, " &middot; best epoch (by %s %s) %s &middot; %s <b>%.2f%%</b>, loss %.4f on %lld images of ", by,
                monitor ? monitor : "accuracy", best ? best : "?",
                d->is_test ? "test accuracy" : d->given ? "accuracy" : "accuracy (no test half: training images included)",
                100 * d->eval.acc, d->eval.loss, (long long)d->eval.count);
        report_html_text(f, d->test_name);
        if (d->tta != CN_TTA_NONE)
            fprintf(f, " &middot; <b>%.2f%%</b> with <code>--tta %s</code>%s; the confusion matrix, the classes and "
                       "the images below are the plain predictions'", 100 * d->tta_acc, cli_tta_views[d->tta],
                    cli_tta_said[d->tta]);
    }
    fprintf(f, "</p>\n<p class=\"meta\">Settings: <code>");
    for (const char *s = args ? args : ""; *s; s++) {
        char ch[2] = { *s == '\n' ? ' ' : *s, 0 };
        report_html_text(f, ch);
    }
    /* how its images were made the input's size (the key is absent before convnet kept it) */
    int kept = cn_checkpoint_meta(d->ck, "resize") != NULL;
    fprintf(f, "</code> &middot; images resized: <code>%s</code>%s</p>\n", cn_resize_name(cn_checkpoint_resize(d->ck)),
            kept ? "" : " (a run of convnet before it kept the choice)");
}

/* DIR/report.html, built in memory and written atomically: the final page, or the live one (no
 * test set: its evaluation is too slow to repeat every epoch) */
static int write_report(cn_ctx *ctx, const report_data *d, int64_t images, const char *path)
{
    cli_memfile m;
    if (cli_memfile_open(&m)) return 1;
    FILE *f = m.f;
    write_header(f, d);
    report_write_charts(f, d);
    int rc = 0;
    if (d->live_epochs) {
        fprintf(f, "<h2>%s</h2>\n<p class=\"meta\">The confusion matrix, the accuracy per class and the images of the %s "
                   "appear when training ends.</p>\n", d->is_test ? "Test results" : "Evaluation",
                d->is_test ? "test half" : "data (it has no test half: all of it)");
    } else {
        fprintf(f, "<div class=\"charts\"><div>\n");
        write_confusion(f, d);
        fprintf(f, "</div><div>\n");
        rc = write_per_class(f, ctx, d);
        fprintf(f, "</div></div>\n");
        if (!rc) rc = write_image_grid(f, ctx, d, images);
    }
    if (!rc) rc = write_summary(f, ctx, d);
    fprintf(f, "</body></html>\n");
    return cli_memfile_commit(ctx, &m, path, rc);
}

int cli_report_live(const char *dir, int64_t epoch, int64_t epochs)
{
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    report_data d = { .dir = dir, .live_epoch = epoch, .live_epochs = epochs > 0 ? epochs : 1 };
    char path[4200];
    snprintf(path, sizeof path, "%s/last.safetensors", dir); /* written before the epoch's callback */
    int rc = report_read_metrics(dir, &d);
    if (!rc) rc = report_read_steps(dir, &d);
    if (!rc) rc = report_read_gradients(dir, &d);
    if (!rc) rc = cli_open_checkpoint(ctx, path, &d.ck, &d.net, d.mean, d.std);
    if (!rc) {
        /* as the final page will say: a run's --test, or the test half of its data */
        int has_test = 0;
        cn_data_find_layout(cli_data_dir(cli_test_data(d.ck)), &has_test, NULL);
        d.is_test = has_test || cn_checkpoint_meta(d.ck, "test_data") != NULL;
        snprintf(path, sizeof path, "%s/report.html", dir);
        rc = write_report(ctx, &d, 0, path);
    }
    report_free_data(ctx, &d);
    cn_ctx_destroy(ctx);
    return rc;
}

/* the final page of dir with the options of cmd_report */
static int report_final(const char *dir, const char *data, int64_t images, int64_t batch, cn_tta tta, double tta_acc)
{
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    report_data d = { .dir = dir, .tta = tta, .tta_acc = tta_acc };
    char path[4200];
    snprintf(path, sizeof path, "%s/report.html", dir);
    int rc = report_load_data(ctx, dir, data, batch, &d);
    if (!rc) rc = write_report(ctx, &d, images, path);
    report_free_data(ctx, &d);
    cn_ctx_destroy(ctx);
    return rc;
}

enum { REPORT_IMAGES = 48, REPORT_BATCH = 256 }; /* cmd_report's defaults */

int cli_report_final(const char *dir, cn_tta tta, double tta_acc)
{
    return report_final(dir, NULL, REPORT_IMAGES, REPORT_BATCH, tta, tta_acc);
}

int cmd_report(int argc, char **argv)
{
    const char *dir = NULL, *data = NULL;
    int64_t images = REPORT_IMAGES, batch = REPORT_BATCH;
    int quiet = 0, tta = CN_TTA_NONE;
    const cli_option opts[] = {
        { "--data", "D", CLI_TEXT, &data, .help = "default: the data set the checkpoint was trained on (its test half)" },
        { "--images", "N", CLI_INT, &images, 0, 10000,
          .help = "test images in the grid (default 48, at most 3/4 of them mistakes)" },
        { "--batch", "N", CLI_INT, &batch, 1, 1 << 20, .help = "images per forward pass (default 256)" },
        { "--tta", "V", CLI_CALL, &tta, .call = cli_choice_option, .choices = cli_tta_views,
          .help = CLI_TTA_HELP ";\nthe page gives that accuracy beside the plain one (train --tta V: its own)" },
        { "--threads", "N", CLI_CALL, .call = cli_threads_option, .help = CLI_THREADS_HELP },
        { "--quiet", NULL, CLI_FLAG, &quiet, .help = "do not print where the report is" },
        { 0 },
    };
    int usage = cli_parse("report", argc, argv, opts, help, cli_take_one, &dir);
    if (usage != CLI_GO_ON) return usage;
    if (!dir) return cli_usage_error("report", "give a run folder (the --out DIR of convnet train)");
    int rc = cli_refuse_spec(dir);
    if (rc) return rc;
    rc = report_final(dir, data, images, batch, (cn_tta)tta, NAN);
    if (!rc && !quiet) printf("report: %s/report.html\n", dir);
    if (!rc && !quiet && data) /* the run's own page replaced: how to have it back */
        printf("(on %s, in place of the run's own page, which `convnet report %s` writes again)\n", data, dir);
    return rc;
}
