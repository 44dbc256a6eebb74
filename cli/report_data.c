/* report_data.c — reading a training run for `convnet report` and the live report: metrics.csv
 * (one row per epoch), steps.csv (one row per optimizer step, downsampled to the points of the
 * loss-per-step chart), and for the final page the checkpoint, the test set and its predictions. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_impl.h"

#define REPORT_MAX_EPOCHS 100000
#define REPORT_MAX_TENSORS 10000 /* weight tensors of gradients.csv (MobileNetV2 has 105) */
#define REPORT_STEP_POINTS 2000 /* the loss-per-step chart: at most this many points (means of buckets) */

/* how many of n comma-separated numbers line s starts with, into v */
static int csv_numbers(const char *s, double *v, int n)
{
    char *end;
    int k = 0;
    for (; k < n; k++, s = end + (*end == ',')) {
        v[k] = strtod(s, &end);
        if (end == s) break;
    }
    return k;
}

/* metrics.csv: CN_METRICS_COLUMNS, one row per epoch. None (deleted, or lost with a copy of the
 * checkpoint alone): the rest of the page can still be made, and is, without the charts per epoch. */
int report_read_metrics(const char *dir, report_data *d)
{
    char path[4200], line[1024];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    metrics_row **rows = &d->rows;
    int64_t *n = &d->n_rows;
    *rows = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f && errno == ENOENT) {
        d->no_metrics = 1;
        fprintf(stderr, "convnet report: note: %s is missing: the page has no loss and accuracy per epoch\n", path);
        return 0;
    }
    if (!f) return cli_error("%s: cannot read: %s", path, strerror(errno));
    if (!fgets(line, sizeof line, f) || strncmp(line, CN_METRICS_COLUMNS, strlen(CN_METRICS_COLUMNS))) {
        fclose(f);
        return cli_error("%s: not a metrics.csv written by convnet train (header)", path);
    }
    int64_t cap = 0, lineno = 1;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        metrics_row r;
        if (csv_numbers(line, &r.epoch, 7) < 7) {
            fclose(f);
            free(*rows);
            *rows = NULL;
            return cli_error("%s:%lld: expected 7 numbers", path, (long long)lineno);
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            metrics_row *grown = cap <= REPORT_MAX_EPOCHS ? realloc(*rows, (size_t)cap * sizeof r) : NULL;
            if (!grown) {
                fclose(f);
                free(*rows);
                *rows = NULL;
                return cli_error("%s: too many rows", path);
            }
            *rows = grown;
        }
        (*rows)[(*n)++] = r;
    }
    fclose(f);
    return 0;
}

/* steps.csv: CN_STEPS_COLUMNS, one row per optimizer step (the trainer writes it with
 * metrics.csv). A long run's rows go to at most REPORT_STEP_POINTS points, each the mean step and
 * mean loss of per_point consecutive rows, so that the page stays small. No steps.csv (a run of an
 * older convnet): no points, not an error. */
int report_read_steps(const char *dir, report_data *d)
{
    char path[4200], line[1024];
    snprintf(path, sizeof path, "%s/steps.csv", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? 0 : cli_error("%s: cannot read: %s", path, strerror(errno));
    if (!fgets(line, sizeof line, f) || strncmp(line, CN_STEPS_COLUMNS, strlen(CN_STEPS_COLUMNS))) {
        fclose(f);
        return cli_error("%s: not a steps.csv written by convnet train (header)", path);
    }
    int64_t n = 0; /* a first pass counts the rows, a second makes the points */
    while (fgets(line, sizeof line, f)) n++;
    int64_t per = n > REPORT_STEP_POINTS ? (n + REPORT_STEP_POINTS - 1) / REPORT_STEP_POINTS : 1;
    int64_t points = (n + per - 1) / per, lineno = 1, i = 0, got = 0;
    double step_sum = 0, loss_sum = 0;
    int rc = 0;
    d->steps = calloc((size_t)(points ? points : 1), sizeof *d->steps);
    if (!d->steps) rc = cli_error("out of memory");
    rewind(f);
    if (!rc && !fgets(line, sizeof line, f)) rc = cli_error("%s: cannot read: %s", path, strerror(errno));
    for (; !rc && i < n && fgets(line, sizeof line, f); i++) {
        double v[4];
        lineno++;
        if (csv_numbers(line, v, 4) < 4) {
            rc = cli_error("%s:%lld: expected 4 numbers", path, (long long)lineno);
            break;
        }
        step_sum += v[1];
        if (isfinite(v[2])) loss_sum += v[2], got++;
        if ((i + 1) % per == 0 || i + 1 == n) { /* a bucket is full (the last may hold fewer) */
            int64_t in_bucket = i % per + 1;
            d->steps[i / per] = (step_point){ step_sum / (double)in_bucket, got ? loss_sum / (double)got : NAN };
            step_sum = loss_sum = 0, got = 0;
        }
    }
    if (!rc && i < n) rc = cli_error("%s: changed while it was read", path);
    fclose(f);
    if (rc) {
        free(d->steps);
        d->steps = NULL;
        return rc;
    }
    d->n_points = points, d->n_steps = n, d->per_point = per;
    return 0;
}

static void free_gradients(report_data *d)
{
    for (int64_t k = 0; d->grad_names && k < d->n_grad; k++) free(d->grad_names[k]);
    free(d->grad_names), free(d->grad);
    d->grad_names = NULL, d->grad = NULL, d->n_grad = d->n_grad_epochs = 0;
}

/* gradients.csv: CN_GRADIENTS_COLUMNS, the same tensors in the same order every epoch (the
 * first epoch's rows name them). No gradients.csv (a run of an older convnet): no chart. */
int report_read_gradients(const char *dir, report_data *d)
{
    char path[4200], line[1024];
    snprintf(path, sizeof path, "%s/gradients.csv", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? 0 : cli_error("%s: cannot read: %s", path, strerror(errno));
    int64_t rows = 0, cap = 0, names_cap = 0, lineno = 1;
    int rc = 0;
    double first_epoch = NAN, *logs = NULL, *epochs = NULL; /* every row's, in file order */
    if (!fgets(line, sizeof line, f) || strncmp(line, CN_GRADIENTS_COLUMNS, strlen(CN_GRADIENTS_COLUMNS)))
        rc = cli_error("%s: not a gradients.csv written by convnet train (header)", path);
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char *end, *name = NULL, *comma;
        double epoch = strtod(line, &end), v[2];
        if (end != line && *end == ',' && (comma = strchr(name = end + 1, ',')) && csv_numbers(comma + 1, v, 2) == 2)
            *comma = '\0';
        else name = NULL;
        if (!name || !*name) {
            rc = cli_error("%s:%lld: expected epoch,tensor,weight_rms,grad_rms", path, (long long)lineno);
            break;
        }
        if (rows == 0 || epoch == first_epoch) { /* the first epoch's rows name the tensors */
            if (rows == 0) first_epoch = epoch;
            if (d->n_grad == REPORT_MAX_TENSORS) {
                rc = cli_error("%s: more than %d tensors", path, REPORT_MAX_TENSORS);
                break;
            }
            if (d->n_grad == names_cap) { /* doubling: time in proportion to the file */
                names_cap = names_cap ? 2 * names_cap : 16;
                char **grown = realloc(d->grad_names, (size_t)names_cap * sizeof *grown);
                if (!grown) {
                    rc = cli_error("out of memory");
                    break;
                }
                d->grad_names = grown;
            }
            size_t len = strlen(name) + 1;
            if (!(d->grad_names[d->n_grad] = malloc(len))) {
                rc = cli_error("out of memory");
                break;
            }
            memcpy(d->grad_names[d->n_grad++], name, len);
        } else if (strcmp(name, d->grad_names[rows % d->n_grad])) {
            rc = cli_error("%s:%lld: tensor %s where the first epoch had %s", path, (long long)lineno, name,
                           d->grad_names[rows % d->n_grad]);
            break;
        }
        if (rows == cap) {
            cap = cap ? 2 * cap : 256;
            double *a = cap <= (int64_t)REPORT_MAX_EPOCHS * REPORT_MAX_TENSORS ? realloc(logs, (size_t)cap * sizeof *a) : NULL;
            if (a) logs = a;
            double *b = a ? realloc(epochs, (size_t)cap * sizeof *b) : NULL;
            if (b) epochs = b;
            if (!a || !b) {
                rc = cli_error("%s: too many rows", path);
                break;
            }
        }
        epochs[rows] = epoch, logs[rows++] = v[1] > 0 ? log10(v[1]) : NAN;
    }
    fclose(f);
    int64_t per = d->n_grad ? rows / d->n_grad : 0;
    if (!rc && d->n_grad && rows % d->n_grad) rc = cli_error("%s: the last epoch's rows are cut short", path);
    if (!rc && rows && !(d->grad = malloc((size_t)rows * sizeof *d->grad))) rc = cli_error("out of memory");
    for (int64_t i = 0; !rc && i < rows; i++) /* by tensor: tensor k's points together */
        d->grad[(i % d->n_grad) * per + i / d->n_grad] = (grad_point){ epochs[i], logs[i] };
    free(logs), free(epochs);
    if (rc) free_gradients(d);
    else d->n_grad_epochs = per;
    return rc;
}

/* the predicted class (argmax of the outputs) of every test image; 0 or the exit status */
static int predict_all(cn_ctx *ctx, report_data *d, int64_t batch)
{
    const cn_dataset *ds = &d->test;
    int64_t chw = ds->c * ds->h * ds->w, n = ds->count;
    if (batch > n) batch = n;
    float *x = malloc((size_t)(batch * chw) * sizeof(float));
    int64_t *idx = malloc((size_t)batch * sizeof(int64_t));
    int32_t *labels = malloc((size_t)batch * sizeof(int32_t));
    d->pred = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    int rc = !x || !idx || !labels || !d->pred ? cli_error("out of memory") : 0;
    for (int64_t i = 0; !rc && i < n; i += batch) {
        int64_t m = n - i < batch ? n - i : batch, k;
        for (int64_t j = 0; j < m; j++) idx[j] = i + j;
        cn_make_batch(ds, idx, m, d->mean, d->std, 0, 0, NULL, x, labels);
        if (cn_net_forward(ctx, d->net, x, m, 0)) {
            rc = cli_ctx_error(ctx);
            break;
        }
        const float *y = cn_net_output(d->net, &k);
        k /= m;
        for (int64_t j = 0; j < m; j++) {
            int64_t best = 0;
            for (int64_t c = 1; c < k; c++)
                if (y[j * k + c] > y[j * k + best]) best = c;
            d->pred[i + j] = (int32_t)best;
        }
    }
    free(x), free(idx), free(labels);
    return rc;
}

/* the run's current settings into d->settings: last.safetensors' train_args. The best checkpoint's
 * are those of the best epoch, older after `train --resume DIR --epochs N` until an epoch beats
 * it; last.safetensors has every epoch's, as --resume reads them. Without one (a copy of the best
 * checkpoint alone) d->settings stays NULL: the best checkpoint's. */
static void current_settings(cn_ctx *ctx, const char *dir, report_data *d)
{
    char path[4200];
    cn_checkpoint *last = NULL;
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    if (cn_checkpoint_read(ctx, path, &last)) { /* missing or unreadable: the best one's */
        cn_ctx_clear(ctx);
        return;
    }
    const char *args = cn_checkpoint_meta(last, "train_args");
    if (args) {
        size_t len = strlen(args) + 1;
        if ((d->settings = malloc(len))) memcpy(d->settings, args, len);
    }
    cn_checkpoint_destroy(last);
}

/* the files of the image folder test was read from, for the grid's titles: the same folder listed
 * again without decoding it (cn_dataset_open_folder), in the same order. IDX data, or a listing
 * that does not match: none (the grid names the images by their index). */
static void list_files(cn_ctx *ctx, const char *data, const cn_layer_info *in, report_data *d)
{
    if (cn_data_find_layout(cli_data_dir(data), NULL, NULL) == CN_DATA_MNIST) return;
    if (cli_open_data(ctx, data, CLI_HALF_TEST, in, 1, &d->listed, NULL)) {
        cn_ctx_clear(ctx); /* changed since it was read: no titles */
        return;
    }
    int same = d->listed.paths && d->listed.count == d->test.count;
    for (int64_t i = 0; same && i < d->test.count; i++) same = d->listed.labels[i] == d->test.labels[i];
    if (same) d->files = d->listed.paths;
}

int report_load_data(cn_ctx *ctx, const char *dir, const char *data, int64_t batch, report_data *d)
{
    /* the checkpoint first: a folder that is no run is said as such, not as CSVs missing */
    int rc = cli_open_checkpoint(ctx, dir, &d->ck, &d->net, d->mean, d->std);
    if (rc || (rc = report_read_metrics(dir, d)) || (rc = report_read_steps(dir, d)) || (rc = report_read_gradients(dir, d)))
        return rc;
    current_settings(ctx, dir, d);
    d->given = data != NULL;
    if (!data) data = cli_test_data(d->ck);
    cn_layer_info in;
    cn_net_layer(ctx, d->net, 0, 1, &in);
    /* a test half: of an MNIST-format or split folder, or the run's --test */
    d->is_test = !d->given && cn_checkpoint_meta(d->ck, "test_data") != NULL;
    int has_test = 0;
    cn_layer_info out;
    cn_net_layer(ctx, d->net, cn_net_layer_count(d->net) - 1, 1, &out);
    if ((rc = cli_match_classes_first(ctx, d->ck, (int32_t)(out.c * out.h * out.w), data, &in))) return rc;
    if (cli_load_data(ctx, data, CLI_HALF_TEST, &in, &d->test, &has_test)) return cli_ctx_error(ctx);
    if ((rc = cli_data_fits(data, &d->test, &in))) return rc;
    d->is_test |= has_test;
    /* a folder given by --data (split/val) is named as given: not "all of it", which the run's
     * own folder is, training images included */
    if (d->given && !d->is_test) snprintf(d->test_name, sizeof d->test_name, "%s (--data)", cli_data_dir(data));
    else cli_data_name(data, CLI_HALF_TEST, d->test_name, sizeof d->test_name);
    list_files(ctx, data, &in, d);
    rc = cli_match_classes(d->ck, (int32_t)(out.c * out.h * out.w), &d->test, data);
    if (rc) return rc;
    if (!(d->ranks = malloc((size_t)(out.c * out.h * out.w) * sizeof *d->ranks))) return cli_error("out of memory");
    if (cn_evaluate_ranks(ctx, d->net, &d->test, d->mean, d->std, batch, CN_TTA_NONE, &d->eval, d->ranks))
        return cli_ctx_error(ctx);
    if (d->tta != CN_TTA_NONE && isnan(d->tta_acc)) {
        cn_eval_result r;
        if (cn_evaluate_tta(ctx, d->net, &d->test, d->mean, d->std, batch, d->tta, &r)) return cli_ctx_error(ctx);
        d->tta_acc = r.acc;
        cn_eval_free(ctx, &r);
    }
    return predict_all(ctx, d, batch);
}

void report_free_data(cn_ctx *ctx, report_data *d)
{
    cn_eval_free(ctx, &d->eval);
    free(d->ranks);
    cn_dataset_free(ctx, &d->test);
    cn_dataset_free(ctx, &d->listed);
    free(d->settings);
    cn_net_destroy(d->net);
    cn_checkpoint_destroy(d->ck);
    free(d->pred);
    free(d->rows);
    free(d->steps);
    free_gradients(d);
}
