/* report_impl.h — what the files of `convnet report` and the live report share: the run's data as
 * the page shows it (report_data.c reads it), the SVG charts (report_chart.c) and the HTML text
 * helper of the page (report.c). */
#ifndef CN_REPORT_IMPL_H
#define CN_REPORT_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli_impl.h"

/* ---- what the page shows ------------------------------------------------------------------------ */

typedef struct {
    double epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds;
} metrics_row;

/* a point of the loss-per-step chart: one step of steps.csv, or the mean of a bucket of them */
typedef struct {
    double step, loss;
} step_point;

/* a point of the weight-gradient chart: an epoch and log10 of a tensor's gradient rms (NaN for 0) */
typedef struct {
    double epoch, log_rms;
} grad_point;

typedef struct {
    const char *dir;
    cn_checkpoint *ck;
    cn_net *net;
    float mean[4], std[4];
    cn_dataset test;
    cn_eval_result eval;
    int64_t *ranks;     /* the test images whose class was the net's k+1-th (cn_evaluate_ranks) */
    cn_tta tta;         /* --tta: the accuracy with these views too (the rest of the page is plain) */
    double tta_acc;     /* ... that accuracy */
    int32_t *pred;      /* test.count predicted classes */
    metrics_row *rows;  /* n_rows epochs of metrics.csv */
    int64_t n_rows;
    int no_metrics;     /* the run folder has no metrics.csv (deleted): no charts per epoch */
    step_point *steps;  /* n_points points of steps.csv (NULL without one): its n_steps rows, */
    int64_t n_points, n_steps, per_point; /* per_point consecutive ones to a point */
    char **grad_names;  /* n_grad weight tensors of gradients.csv (NULL without one), in its order; */
    grad_point *grad;   /* tensor k's n_grad_epochs points at grad + k * n_grad_epochs */
    int64_t n_grad, n_grad_epochs;
    int64_t live_epoch, live_epochs; /* the live page: epochs done of planned; 0: the final page */
    int is_test;        /* `test` is a test half (else a whole folder: the run's own, training images
                         * included, or one given by --data) */
    int given;          /* `test` was read from --data (not the run's own data) */
    char test_name[4300]; /* what `test` was read from, for the page */
    char **files;       /* test.count files of `test` (an image folder's; NULL for IDX): the grid's titles */
    cn_dataset listed;  /* ... held by this: the folder opened again lazily (listed, not decoded) */
    char *settings;     /* the run's current train_args (last.safetensors', which a resume with
                         * --epochs N updates), malloc'ed; NULL: ck's (the best checkpoint's) */
} report_data;

/* metrics.csv of run folder dir into d->rows (none, and d->no_metrics, without one: said on
 * stderr); 0 or the exit status */
int report_read_metrics(const char *dir, report_data *d);
/* steps.csv of run folder dir into d->steps (NULL without one); 0 or the exit status */
int report_read_steps(const char *dir, report_data *d);
/* gradients.csv of run folder dir into d->grad_names and d->grad (none without one); 0 or the
 * exit status */
int report_read_gradients(const char *dir, report_data *d);
/* everything the final page shows: the CSVs, the checkpoint, the test set and its predictions,
 * and the accuracy with the views of d->tta unless d->tta_acc has it already (not NaN) */
int report_load_data(cn_ctx *ctx, const char *dir, const char *data, int64_t batch, report_data *d);
void report_free_data(cn_ctx *ctx, report_data *d);

/* s with & < > " ' escaped, for element text and attribute values alike (report.c) */
void report_html_text(FILE *f, const char *s);
/* the "Training" section: the charts of metrics.csv, steps.csv and gradients.csv (report_chart.c) */
/* whether any epoch of the run was validated (not --val 0: its val columns are nan) */
int report_validated(const report_data *d);
void report_write_charts(FILE *f, const report_data *d);

#endif
