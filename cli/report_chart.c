/* report_chart.c — the SVG line charts of the report page: loss and accuracy per epoch
 * (metrics.csv), loss per step (steps.csv) and the weights' gradients per epoch on a log scale
 * (gradients.csv), with axes, ticks and a legend. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_impl.h"

/* ---- charts ------------------------------------------------------------------------------------ */

/* a line of a chart: n points (x[i], y[i] * scale), each array read `stride` bytes apart (rows of a
 * table of doubles) */
typedef struct {
    const char *name, *colour;
    const double *x, *y;
    size_t stride;
    int64_t n;
    double scale; /* 100 for accuracies in % */
    int dots;     /* a circle with its value as a tooltip at each point (few points) */
    int unlisted; /* not in the legend (one of many lines) */
} series;

static double series_x(const series *s, int64_t i) { return *(const double *)((const char *)s->x + (size_t)i * s->stride); }
static double series_y(const series *s, int64_t i)
{
    return *(const double *)((const char *)s->y + (size_t)i * s->stride) * s->scale;
}

/* a tick step of 1, 2 or 5 times a power of ten giving about 5 ticks over span */
static double tick_step(double span)
{
    double raw = span / 5, p = pow(10, floor(log10(raw)));
    return raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
}

/* An SVG line chart of the series over x (epochs or steps, whole numbers): axes, ticks, axis labels
 * and a legend. log10: the values are powers of ten (ticks 1e-3, 1e-2, ...; tooltips 10^v). */
static void svg_chart(FILE *f, const char *title, const char *xlabel, const char *ylabel, const series *s, int ns,
                      int log10_axis)
{
    const double W = 540, H = 316, L = 56, R = 16, T = 46, B = 44; /* T: the title, then the legend */
    double lo = INFINITY, hi = -INFINITY, x0 = INFINITY, x1 = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int64_t i = 0; i < s[k].n; i++) {
            double v = series_y(&s[k], i), x = series_x(&s[k], i);
            if (isfinite(v)) lo = v < lo ? v : lo, hi = v > hi ? v : hi;
            if (isfinite(x)) x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
        }
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-9) { /* one value (a single epoch): a span of 20% around it, not below 0 nor
                           * above 100% when it is not (a loss, an accuracy) */
        double pad = lo != 0 ? 0.1 * fabs(lo) : 0.5, top = s[0].scale == 100 && hi <= 100 ? 100 : INFINITY;
        lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad;
        hi = fmin(hi + pad, top);
    }
    double step = log10_axis ? fmax(1, round(tick_step(hi - lo))) : tick_step(hi - lo);
    lo = floor(lo / step) * step, hi = ceil(hi / step) * step;
    if (!(x0 <= x1)) x0 = x1 = 1;
    if (x1 <= x0) x0 -= 0.5, x1 += 0.5;
#define X(e) (L + ((e) - x0) / (x1 - x0) * (W - L - R))
#define Y(v) (H - B - ((v) - lo) / (hi - lo) * (H - T - B))
    fprintf(f, "<svg class=\"chart\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", W, H, W, H);
    fprintf(f, "<title>");
    report_html_text(f, title);
    fprintf(f, "</title><text x=\"%.0f\" y=\"18\" style=\"font-weight:bold;font-size:13px\">", L);
    report_html_text(f, title);
    fprintf(f, "</text>\n");
    for (double v = lo; v <= hi + step / 2; v += step) {
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", L, W - R, Y(v), Y(v));
        if (log10_axis) fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%+.0f</text>\n", L - 6, Y(v) + 4, v);
        else fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n", L - 6, Y(v) + 4, fabs(v) < step / 1e6 ? 0 : v);
    }
    /* about 10 ticks on whole numbers: every epoch of a short run */
    double xstep = fmax(1, tick_step((x1 - x0) / 2));
    for (double e = ceil(x0 / xstep) * xstep; e <= x1 + 1e-9; e += xstep)
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/><text x=\"%.1f\" y=\"%.1f\" "
                   "text-anchor=\"middle\">%.0f</text>\n", X(e), X(e), H - B, H - B + 5, X(e), H - B + 18, e);
    fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#333\"/>", L, W - R, H - B, H - B);
    fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#333\"/>\n", L, L, T, H - B);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">", (L + W - R) / 2, H - 8);
    report_html_text(f, xlabel);
    fprintf(f, "</text><text transform=\"translate(14 %.0f) rotate(-90)\" text-anchor=\"middle\">", (T + H - B) / 2);
    report_html_text(f, ylabel);
    fprintf(f, "</text>\n");
    double lx = L; /* the legend, in the top margin under the title, left to right */
    for (int k = 0; k < ns; k++) {
        fprintf(f, "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" points=\"", s[k].colour,
                s[k].dots ? "2" : "1.2");
        for (int64_t i = 0; i < s[k].n; i++) {
            double v = series_y(&s[k], i), x = series_x(&s[k], i);
            if (isfinite(v) && isfinite(x)) fprintf(f, "%.1f,%.1f ", X(x), Y(v));
        }
        fprintf(f, "\"/>\n");
        for (int64_t i = 0; s[k].dots && i < s[k].n; i++) {
            double v = series_y(&s[k], i), x = series_x(&s[k], i);
            if (!isfinite(v) || !isfinite(x)) continue;
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>", X(x), Y(v), s[k].colour);
            if (s[k].unlisted) report_html_text(f, s[k].name), fprintf(f, ", ");
            fprintf(f, "%s %.0f: %.4g</title></circle>", xlabel, x, log10_axis ? pow(10, v) : v);
        }
        if (s[k].unlisted) continue;
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"32\" y2=\"32\" stroke=\"%s\" stroke-width=\"2\"/>"
                   "<text x=\"%.0f\" y=\"36\">", lx, lx + 20, s[k].colour, lx + 26);
        report_html_text(f, s[k].name);
        fprintf(f, "</text>\n");
        lx += 26 + 7 * (double)strlen(s[k].name) + 16;
    }
#undef X
#undef Y
    fprintf(f, "</svg>\n");
}

/* The weights' gradients per epoch (gradients.csv), a line a tensor, coloured by depth from light
 * (the first layer) to dark (the last): lines far apart on the log scale are the vanishing (or
 * exploding) gradients that `convnet gradflow` measures. The legend names the first and the last. */
static void gradient_chart(FILE *f, const report_data *d)
{
    series *s = calloc((size_t)d->n_grad, sizeof *s);
    char (*colour)[8] = calloc((size_t)d->n_grad, sizeof *colour), label[2][300];
    if (!s || !colour) {
        free(s), free(colour);
        return;
    }
    for (int64_t k = 0; k < d->n_grad; k++) {
        double t = d->n_grad > 1 ? (double)k / (double)(d->n_grad - 1) : 1; /* 0: first, 1: last */
        snprintf(colour[k], sizeof colour[k], "#%02x%02x%02x", (int)(0x9e + t * (0x08 - 0x9e)),
                 (int)(0xca + t * (0x30 - 0xca)), (int)(0xe1 + t * (0x6b - 0xe1))); /* #9ecae1 -> #08306b */
        const grad_point *p = d->grad + k * d->n_grad_epochs;
        int listed = k == 0 || k == d->n_grad - 1;
        if (listed) snprintf(label[k ? 1 : 0], sizeof label[0], "%s (%s)", d->grad_names[k], k ? "last" : "first");
        s[k] = (series){ listed ? label[k ? 1 : 0] : d->grad_names[k], colour[k], &p->epoch, &p->log_rms,
                         sizeof(grad_point), d->n_grad_epochs, 1, d->n_grad_epochs <= 60, !listed };
    }
    svg_chart(f, "Weight gradients per epoch", "epoch", "rms of dL/dW (log scale)", s, (int)d->n_grad, 1);
    free(s), free(colour);
}

int report_validated(const report_data *d)
{
    if (d->no_metrics) { /* the checkpoint's last validation, nan under --val 0 */
        const char *v = cn_checkpoint_meta(d->ck, "val_acc");
        return v && !isnan(strtod(v, NULL));
    }
    for (int64_t i = 0; i < d->n_rows; i++)
        if (!isnan(d->rows[i].val_acc)) return 1;
    return 0;
}

/* the loss and the accuracy per epoch (metrics.csv), the loss per step (steps.csv) and the
 * weights' gradients (gradients.csv) */
void report_write_charts(FILE *f, const report_data *d)
{
    static const metrics_row none; /* no rows yet: no pointer arithmetic on NULL */
    const metrics_row *r = d->rows ? d->rows : &none;
    const size_t mr = sizeof(metrics_row);
    const series loss[] = { { "train", "#1f77b4", &r->epoch, &r->train_loss, mr, d->n_rows, 1, 1, 0 },
                            { "validation", "#ff7f0e", &r->epoch, &r->val_loss, mr, d->n_rows, 1, 1, 0 } };
    const series acc[] = { { "train", "#1f77b4", &r->epoch, &r->train_acc, mr, d->n_rows, 100, 1, 0 },
                           { "validation", "#ff7f0e", &r->epoch, &r->val_acc, mr, d->n_rows, 100, 1, 0 } };
    int series_n = report_validated(d) ? 2 : 1; /* --val 0: no validation line, nor its legend */
    fprintf(f, "<h2>Training</h2>\n");
    if (d->no_metrics)
        fprintf(f, "<p class=\"meta\">The run folder has no metrics.csv: no loss and accuracy per epoch.</p>\n");
    fprintf(f, "<div class=\"charts\">\n");
    if (!d->no_metrics) {
        svg_chart(f, "Loss per epoch", "epoch", "cross-entropy loss", loss, series_n, 0);
        svg_chart(f, "Accuracy per epoch", "epoch", "accuracy (%)", acc, series_n, 0);
    }
    if (d->steps) {
        char name[64];
        if (d->per_point > 1) snprintf(name, sizeof name, "train, mean of %lld", (long long)d->per_point);
        else snprintf(name, sizeof name, "train batch");
        const series step[] = { { name, "#1f77b4", &d->steps->step, &d->steps->loss, sizeof(step_point), d->n_points,
                                  1, 0, 0 } };
        svg_chart(f, "Loss per step", "step", "cross-entropy loss", step, 1, 0);
    }
    if (d->n_grad) gradient_chart(f, d);
    fprintf(f, "</div>\n");
    if (d->steps && d->per_point > 1)
        fprintf(f, "<p class=\"meta\">Loss per step: %lld steps, as %lld points, each the mean of %lld consecutive "
                   "steps.</p>\n", (long long)d->n_steps, (long long)d->n_points, (long long)d->per_point);
    if (d->n_grad > 1 && d->n_grad_epochs > 0) { /* gradflow's verdict, at the last epoch */
        double lo = d->grad[d->n_grad_epochs - 1].log_rms, hi = d->grad[d->n_grad * d->n_grad_epochs - 1].log_rms;
        double ratio = pow(10, lo - hi);
        if (isfinite(ratio) && (ratio < 0.01 || ratio > 100)) {
            fprintf(f, "<p class=\"meta\"><b>%s gradients:</b> at epoch %.0f the gradient of ",
                    ratio < 0.01 ? "Vanishing" : "Exploding", d->grad[d->n_grad_epochs - 1].epoch);
            report_html_text(f, d->grad_names[0]);
            fprintf(f, " is %.3g times that of ", ratio);
            report_html_text(f, d->grad_names[d->n_grad - 1]);
            fprintf(f, " (<code>convnet gradflow</code> shows it layer by layer).</p>\n");
        }
    }
}
