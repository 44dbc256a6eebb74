/* trainer.c — a training run: validation split (or a validation set of its own), per-epoch
 * shuffling and augmentation from the seed, the training steps, validation, metrics.csv and
 * steps.csv, early stopping, and the checkpoints (best and last, the last one enough to resume
 * bit-identically); fine-tuning from another run's tensors; evaluation with a confusion matrix;
 * data-parallel runs (cn_train_config.parallel: each process's rows of a batch, validation and
 * the input statistics shared out, the processes agreeing at the start). Covered by
 * tests/test_trainer.c, tests/cli_train_test.sh (resume after kill -9) and tests/mpi_test.sh. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>

#include "../data/data_impl.h" /* cn_lone_half_hint */
#include "../io/io_impl.h"
#include "step_row.h"
#include "train_impl.h"

void cn_train_defaults(cn_train_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = 10;
    cfg->batch = 64;
    cn_optim_defaults(&cfg->optim, CN_OPTIM_NESTEROV);
    cfg->optim.lr = 0.05;
    cfg->optim.weight_decay = 5e-4;
    cfg->optim.schedule = CN_SCHED_ONECYCLE;
    cfg->optim.pct_start = 0.25;
    cfg->init = CN_INIT_KAIMING_NORMAL;
    cfg->seed = 1;
    cfg->val_fraction = 0.1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void rng_text(const cn_rng *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, r->s[0], r->s[1], r->s[2], r->s[3]);
}

static int rng_parse(const char *s, cn_rng *r)
{
    if (!s || strlen(s) != 64) return 0;
    for (int i = 0; i < 4; i++) {
        char part[17];
        memcpy(part, s + 16 * i, 16);
        part[16] = '\0';
        char *end;
        r->s[i] = strtoull(part, &end, 16);
        if (*end) return 0;
    }
    return 1;
}

/* layer i's output per sample (0: the input; -1: the output), through the public net API */
static cn_layer_info layer(cn_ctx *ctx, const cn_net *net, int i)
{
    cn_layer_info info;
    cn_net_layer(ctx, net, i < 0 ? cn_net_layer_count(net) - 1 : i, 1, &info); /* i is in range: no failure */
    return info;
}

/* the net's input must be the data's images */
static cn_status check_input(cn_ctx *ctx, const cn_net *net, const cn_dataset *ds)
{
    cn_layer_info in = layer(ctx, net, 0);
    if (in.c != ds->c || in.h != ds->h || in.w != ds->w)
        return cn_fail(ctx, CN_E_SHAPE, "the data's images are %lldx%lldx%lld but the net's input is %lldx%lldx%lld",
                       (long long)ds->h, (long long)ds->w, (long long)ds->c, (long long)in.h, (long long)in.w,
                       (long long)in.c);
    return CN_OK;
}

/* A data set copied into the backend's memory once, each batch made there from the host's draws
 * (cn_step_kernels.make_batch: the values cn_make_batch_rows gives, without a batch crossing to
 * the device). Not where the backend cannot, the images are decoded from files, a run is
 * data-parallel, or its memory has no room (the batches are then the host's); CN_RESIDENT=0
 * turns it off. */
typedef struct {
    const cn_memory_ops *mem;
    void *data;           /* the pixels or floats, in the backend's memory */
    float *x;             /* a batch, in the backend's memory */
    cn_batch_draw *draws; /* a batch's draws, on the host */
    cn_batch_source src;
} resident;

static void resident_close(resident *res, cn_ctx *ctx)
{
    if (res->data) res->mem->release(res->data);
    if (res->x) res->mem->release(res->x);
    cn_free(ctx, res->draws);
    memset(res, 0, sizeof *res);
}

/* ds resident for net's backend, batches of up to batch images normalised by mean and std
 * (4 channels); res->data NULL when not */
static void resident_open(resident *res, cn_ctx *ctx, cn_net *net, const cn_dataset *ds, int64_t batch,
                          const float *mean, const float *std, const cn_parallel *par)
{
    const cn_memory_ops *mem = cn_net_slab_memory(net);
    const char *env = getenv("CN_RESIDENT");
    memset(res, 0, sizeof *res);
    if (!cn_net_step_kernels(net)->make_batch || !mem || !mem->copy || par || ds->c > 4 || !(ds->pixels || ds->images) ||
        (env && !strcmp(env, "0")))
        return;
    size_t bytes = (size_t)(ds->count * ds->c * ds->h * ds->w) * (ds->pixels ? 1 : sizeof(float));
    res->mem = mem;
    res->data = mem->alloc(bytes);
    res->x = res->data ? mem->alloc((size_t)(batch * ds->c * ds->h * ds->w) * sizeof(float)) : NULL;
    res->draws = res->x ? cn_malloc(ctx, (size_t)batch * sizeof *res->draws) : NULL;
    if (!res->draws) { /* no room: the host's batches, and the failure forgotten */
        if (mem->error) mem->error();
        cn_ctx_clear(ctx);
        resident_close(res, ctx);
        return;
    }
    mem->copy(res->data, ds->pixels ? (const void *)ds->pixels : (const void *)ds->images, bytes);
    res->src = (cn_batch_source){ ds->pixels ? res->data : NULL, ds->pixels ? NULL : res->data, ds->c, ds->h, ds->w, 0,
                                  { 0 }, { 0 } };
    memcpy(res->src.mean, mean, sizeof res->src.mean), memcpy(res->src.std, std, sizeof res->src.std);
}

/* batch idx[0..n) of ds made in the backend's memory, cropped (pad > 0) and flipped as drawn
 * from rng: its images in res->x, its labels on the host */
static void resident_batch(resident *res, cn_net *net, const cn_dataset *ds, const int64_t *idx, int64_t n, int64_t pad,
                           int flip, cn_rng *rng, int32_t *labels)
{
    res->src.pad = pad < 0 ? 0 : pad;
    cn_batch_draws(rng, idx, n, pad, flip, res->draws);
    for (int64_t i = 0; i < n; i++) labels[i] = ds->labels[idx[i]];
    cn_net_step_kernels(net)->make_batch(&res->src, res->draws, n, res->x);
}

/* The mean of the net's outputs over the views of batch b (idx[0..b)) into mean (host memory),
 * which the loss and accuracy then read; y: view 0's outputs (the images themselves), already
 * computed. Each view is made by the backend from the resident data set (res), else on the host
 * in x; draws: room for b draws. */
static cn_status views_mean(cn_ctx *ctx, cn_net *net, const cn_dataset *ds, const int64_t *idx, int64_t b,
                            const float *norm_mean, const float *norm_std, resident *res, cn_batch_draw *draws, float *x,
                            int views, int64_t classes, const float *y, float *mean)
{
    memcpy(mean, y, (size_t)(b * classes) * sizeof(float)); /* y: the host can read it (cn_memory_ops) */
    for (int v = 1; v < views; v++) {
        const float *xb = x;
        cn_status st;
        for (int64_t i = 0; i < b; i++) draws[i] = cn_tta_draw(v, idx[i]);
        if (res && res->data) {
            res->src.pad = 1;
            cn_net_step_kernels(net)->make_batch(&res->src, draws, b, res->x);
            xb = res->x;
        } else if ((st = cn_make_batch_drawn(ctx, ds, draws, b, 1, norm_mean, norm_std, x))) {
            return st;
        }
        if ((st = cn_net_forward(ctx, net, xb, b, 0))) return st;
        y = cn_net_output(net, NULL);
        for (int64_t i = 0; i < b * classes; i++) mean[i] += y[i];
    }
    for (int64_t i = 0; i < b * classes; i++) mean[i] /= (float)views;
    return CN_OK;
}

/* The rank of class t among row y's classes, most likely first: 0 where p, the row's best
 * (cn_row_best), is t, so that rank 0 counts what the accuracy counts; else 1 + the other
 * classes ahead of it: a larger value, or an equal one of a lower index (as top-k lists order
 * them); a NaN t comes last. */
static int64_t true_class_rank(const float *y, int64_t cols, int64_t t, int64_t p)
{
    if (p == t) return 0;
    int64_t ahead = 1;
    for (int64_t j = 0; j < cols; j++)
        ahead += j != t && j != p && (y[j] > y[t] || (j < t && y[j] == y[t]) || isnan(y[t]));
    return ahead;
}

/* loss and accuracy of the net in evaluation mode over idx[0..n); confusion may be NULL. With
 * par, the batches are shared out among its processes and their sums gathered in batch order:
 * every process gets the bits one process would. res: ds resident in the backend's memory (or
 * NULL); a backend with its own loss and best columns computes them where the outputs are.
 * tta: the outputs of what views of each image are averaged (cn_evaluate_tta). ranks (or NULL,
 * as confusion): ranks[k] += the images whose class came k-th, from 0 (true_class_rank). */
static cn_status eval_indices(cn_ctx *ctx, cn_net *net, const cn_dataset *ds, const int64_t *idx, int64_t n,
                              const float *mean, const float *std, int64_t batch, cn_tta tta, double *loss,
                              double *acc, int64_t *confusion, int64_t *ranks, cn_parallel *par, resident *res)
{
    const cn_step_kernels *sk = cn_net_step_kernels(net);
    int views = cn_tta_count(tta), device = sk->loss_grad && sk->best_rows && views == 1; /* a mean: on the host */
    cn_layer_info out = layer(ctx, net, -1);
    int64_t classes = out.c * out.h * out.w, chw = ds->c * ds->h * ds->w;
    cn_loss_kind kind = cn_net_default_loss(net);
    float *x = cn_malloc(ctx, (size_t)(batch * chw) * sizeof(float));
    float *target = cn_calloc(ctx, (size_t)(batch * classes), sizeof(float));
    float *mean_y = views > 1 ? cn_malloc(ctx, (size_t)(batch * classes) * sizeof(float)) : NULL;
    cn_batch_draw *draws = views > 1 ? cn_malloc(ctx, (size_t)batch * sizeof *draws) : NULL;
    int32_t *labels = cn_malloc(ctx, (size_t)batch * sizeof(int32_t) * 2), *best = labels + batch;
    int64_t batches = (n + batch - 1) / batch, first, mine;
    cn_parallel_share(par, batches, &first, &mine);
    double *part = cn_malloc(ctx, (size_t)(2 * (mine + batches) + 1) * sizeof(double)), *all = part + 2 * mine;
    cn_status st = x && target && labels && part && (views == 1 || (mean_y && draws)) ? CN_OK : CN_E_NOMEM;
    double sum = 0;
    int64_t correct = 0;
    int held = cn_net_params_held(net); /* held while it runs: the folds and transforms made once */
    if (!st && !held) st = cn_net_hold_params(ctx, net, 1);
    for (int64_t k = first; !st && k < first + mine; k++) {
        int64_t start = k * batch, b = n - start < batch ? n - start : batch, right = 0;
        const float *xb = x; /* the batch's images, in the host's memory or the backend's */
        if (res && res->data) resident_batch(res, net, ds, idx + start, b, 0, 0, NULL, labels), xb = res->x;
        else if ((st = cn_make_batch_rows(ctx, ds, idx + start, b, 0, b, mean, std, 0, 0, NULL, x, labels))) break;
        if ((st = cn_net_forward(ctx, net, xb, b, 0))) break;
        const float *y = cn_net_output(net, NULL);
        if (views > 1 && (st = views_mean(ctx, net, ds, idx + start, b, mean, std, res, draws, x, views, classes, y, mean_y)))
            break;
        if (views > 1) y = mean_y;
        memset(target, 0, (size_t)(b * classes) * sizeof(float));
        for (int64_t i = 0; i < b && !st; i++)
            if (labels[i] < 0 || labels[i] >= classes)
                st = cn_fail(ctx, CN_E_ARG, "label %d is outside the %lld classes of the net's output", (int)labels[i],
                             (long long)classes);
            else target[i * classes + labels[i]] = 1.0f;
        if (st) break;
        if (device) sk->best_rows(y, b, classes, best);
        for (int64_t i = 0; i < b; i++) {
            int64_t p = device ? best[i] : cn_row_best(y + i * classes, classes);
            right += p == labels[i];
            if (confusion && p >= 0) confusion[labels[i] * classes + p]++; /* -1: the device failed (checked below) */
            if (ranks && p >= 0) ranks[true_class_rank(y + i * classes, classes, labels[i], p)]++; /* y: host-readable */
        }
        double l = NAN;
        if (device) { /* the one-hot rows copied over; a loss not finite is computed again by the host's code */
            float *t = cn_net_step_scratch(ctx, net, b * classes);
            if (!t) {
                st = CN_E_NOMEM;
                break;
            }
            cn_net_copy(net, t, target, (size_t)(b * classes) * sizeof(float));
            sk->loss_grad(ctx, kind, t, y, b, classes, CN_REDUCE_SUM, 0, &l, NULL);
        }
        if (!isfinite(l) && (st = cn_loss_grad(ctx, kind, target, y, b, classes, CN_REDUCE_SUM, 0, &l, NULL))) break;
        part[2 * (k - first)] = l, part[2 * (k - first) + 1] = (double)right;
    }
    if (!st && device) st = cn_net_check_backend(ctx, net);
    if (!held) cn_net_hold_params(ctx, net, 0);
    if (!st) st = cn_parallel_gather_items(ctx, par, batches, part, 2, all);
    for (int64_t k = 0; !st && k < batches; k++) sum += all[2 * k], correct += (int64_t)all[2 * k + 1];
    cn_free(ctx, part);
    cn_free(ctx, x);
    cn_free(ctx, mean_y), cn_free(ctx, draws);
    cn_free(ctx, target);
    cn_free(ctx, labels);
    *loss = n ? sum / (double)n : NAN;
    *acc = n ? (double)correct / (double)n : NAN;
    return st;
}

cn_status cn_evaluate(cn_ctx *ctx, cn_net *net, const cn_dataset *ds, const float *mean, const float *std,
                      int64_t batch, cn_eval_result *out)
{
    return cn_evaluate_tta(ctx, net, ds, mean, std, batch, CN_TTA_NONE, out);
}

cn_status cn_evaluate_tta(cn_ctx *ctx, cn_net *net, const cn_dataset *ds, const float *mean, const float *std,
                          int64_t batch, cn_tta tta, cn_eval_result *out)
{
    return cn_evaluate_ranks(ctx, net, ds, mean, std, batch, tta, out, NULL);
}

cn_status cn_evaluate_ranks(cn_ctx *ctx, cn_net *net, const cn_dataset *ds, const float *mean, const float *std,
                            int64_t batch, cn_tta tta, cn_eval_result *out, int64_t *ranks)
{
    memset(out, 0, sizeof *out);
    if (!cn_net_params(net, NULL, NULL)) return cn_fail(ctx, CN_E_ARG, "cn_evaluate: the net has no parameters");
    if (!cn_tta_count(tta))
        return cn_fail(ctx, CN_E_ARG, "cn_evaluate_tta: unknown test-time augmentation %d", (int)tta);
    cn_status st = check_input(ctx, net, ds);
    if (!st) st = cn_net_check_classes(ctx, net, ds->classes);
    if (st) return st;
    cn_layer_info o = layer(ctx, net, -1);
    int64_t classes = o.c * o.h * o.w;
    int64_t *idx = cn_malloc(ctx, (size_t)(ds->count ? ds->count : 1) * sizeof(int64_t));
    int64_t *conf = cn_calloc(ctx, (size_t)(classes * classes), sizeof(int64_t));
    if (!idx || !conf) {
        cn_free(ctx, idx), cn_free(ctx, conf);
        return CN_E_NOMEM;
    }
    for (int64_t i = 0; i < ds->count; i++) idx[i] = i;
    if (ranks) memset(ranks, 0, (size_t)classes * sizeof *ranks);
    batch = batch < 1 ? 256 : batch;
    resident res;
    resident_open(&res, ctx, net, ds, batch, mean, std, NULL);
    st = eval_indices(ctx, net, ds, idx, ds->count, mean, std, batch, tta, &out->loss, &out->acc, conf, ranks, NULL, &res);
    resident_close(&res, ctx);
    cn_free(ctx, idx);
    if (st) {
        cn_free(ctx, conf);
        return st;
    }
    out->count = ds->count;
    out->classes = (int32_t)classes;
    out->confusion = conf;
    return CN_OK;
}

void cn_eval_free(cn_ctx *ctx, cn_eval_result *r)
{
    if (!r) return;
    cn_free(ctx, r->confusion);
    memset(r, 0, sizeof *r);
}

/* ---- the run ------------------------------------------------------------------------------------- */

/* A CSV file of the run as it stands, rewritten whole (atomically) at every write, never changed
 * in place: a kill leaves the old rows or the new ones. Every row starts with its epoch. */
typedef struct {
    const char *name, *header;
    char *text;
    size_t len, cap;
} csv_file;

typedef struct {
    cn_ctx *ctx;
    cn_net *net;
    const cn_dataset *ds;
    const cn_train_config *cfg;
    cn_optim *opt;
    cn_rng data_rng;
    float mean[4], std[4];
    int64_t epoch;      /* completed epochs */
    double best_score;  /* by cfg->monitor: the accuracy, or minus the loss */
    double best_acc, best_loss; /* of the best epoch */
    int64_t best_epoch;
    char path[4096];
    csv_file metrics;   /* a row per completed epoch */
    csv_file steps;     /* a row per step of the completed epochs (and of the current one) */
    csv_file gradients; /* a row per completed epoch and trained weight tensor */
} run;

static cn_status save(run *r, const char *file, int with_optim, double val_acc)
{
    char kv[14][2][256];
    cn_kv meta[14 + 64];
    int n = 0;
    char names[4096] = "";
#define META(k, ...) (snprintf(kv[n][0], 256, "%s", k), snprintf(kv[n][1], 256, __VA_ARGS__), \
                      meta[n] = (cn_kv){ kv[n][0], kv[n][1] }, n++)
    META("epoch", "%lld", (long long)r->epoch);
    META("step", "%lld", (long long)cn_optim_steps(r->opt));
    META("norm_mean", "%.9g,%.9g,%.9g,%.9g", r->mean[0], r->mean[1], r->mean[2], r->mean[3]);
    META("norm_std", "%.9g,%.9g,%.9g,%.9g", r->std[0], r->std[1], r->std[2], r->std[3]);
    META("classes", "%d", (int)r->ds->classes);
    META("val_acc", "%.9g", val_acc);
    META("best_val_acc", "%.9g", r->best_acc);
    META("best_val_loss", "%.9g", r->best_loss);
    META("monitor", "%s", r->cfg->monitor == CN_MONITOR_LOSS ? "loss" : "accuracy");
    META("best_epoch", "%lld", (long long)r->best_epoch);
    char buf[80];
    rng_text(&r->data_rng, buf, sizeof buf);
    META("data_rng", "%s", buf);
    rng_text(cn_net_rng(r->net), buf, sizeof buf);
    META("net_rng", "%s", buf);
#undef META
    if (r->ds->class_names) {
        cn_strbuf sb;
        cn_sb_init(&sb, names, sizeof names);
        for (int32_t i = 0; i < r->ds->classes; i++) cn_sb_printf(&sb, "%s%s", i ? "\n" : "", r->ds->class_names[i]);
        meta[n++] = (cn_kv){ "class_names", names };
    }
    for (int i = 0; i < r->cfg->n_meta && n < 14 + 64; i++) meta[n++] = r->cfg->meta[i];
    snprintf(r->path, sizeof r->path, "%s/%s", r->cfg->out_dir, file);
    return cn_checkpoint_write(r->ctx, r->path, r->net, with_optim ? r->opt : NULL, meta, n);
}

static cn_status csv_append(run *r, csv_file *f, const char *text, size_t n)
{
    if (f->len + n + 1 > f->cap) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < f->len + n + 1) cap *= 2;
        char *p = cn_realloc(r->ctx, f->text, cap);
        if (!p) return CN_E_NOMEM;
        f->text = p, f->cap = cap;
    }
    memcpy(f->text + f->len, text, n);
    f->len += n;
    f->text[f->len] = '\0';
    return CN_OK;
}

static cn_status csv_write(run *r, csv_file *f)
{
    snprintf(r->path, sizeof r->path, "%s/%s.csv", r->cfg->out_dir, f->name);
    cn_span part = { f->text, f->len };
    return cn_write_atomic(r->ctx, f->name, r->path, &part, 1);
}

/* a row of as many fields as the header has columns, each a number but column text_column's (a
 * tensor's name; -1: none): what a damaged file's row is not (the report reads every row: a row
 * kept as it was would fail it at the run's end) */
static int csv_row_fits(const char *line, const char *header, int text_column)
{
    const char *h = header, *p = line;
    for (int column = 0;; column++) {
        size_t hl = strcspn(h, ",\n");
        char *end = (char *)p;
        if (column == text_column) end += strcspn(p, ",\r\n");
        else strtod(p, &end);
        if (end == p || (*end != ',' && *end != '\n' && *end != '\r')) return 0;
        int more_header = h[hl] == ',', more_row = *end == ',';
        if (more_header != more_row) return 0;
        if (!more_row) return 1;
        h += hl + 1, p = end + 1;
    }
}

/* The header, and on resume the rows of the epochs already done (later rows, written before a
 * kill stopped the epoch's checkpoint, go: that epoch runs again; from a damaged row on, the
 * rows go too: the file keeps what it can). text_column: the column of text, not numbers (-1: none). */
static cn_status csv_start(run *r, csv_file *f, const char *name, const char *header, int text_column)
{
    f->name = name, f->header = header;
    cn_status st = csv_append(r, f, header, strlen(header));
    snprintf(r->path, sizeof r->path, "%s/%s.csv", r->cfg->out_dir, name);
    FILE *in = r->epoch > 0 ? fopen(r->path, "rb") : NULL;
    if (in) {
        char line[1024];
        int first = 1; /* the file's header is skipped: ours is written */
        while (!st && fgets(line, sizeof line, in)) {
            size_t n = strlen(line);
            if (!n || line[n - 1] != '\n') break; /* a row cut short (older versions appended in place) */
            if (first) {
                first = 0;
                continue;
            }
            char *end;
            long long e = strtoll(line, &end, 10);
            if (end == line || *end != ',' || e < 1 || e > r->epoch || !csv_row_fits(line, header, text_column)) break;
            st = csv_append(r, f, line, n);
        }
        fclose(in);
    }
    return st ? st : csv_write(r, f);
}

static cn_status metrics_row(run *r, const cn_train_progress *p)
{
    char row[512];
    int n = snprintf(row, sizeof row, "%lld,%.6f,%.6f,%.6f,%.6f,%.6g,%.2f\n", (long long)p->epoch, p->loss, p->acc,
                     p->val_loss, p->val_acc, p->lr, p->seconds);
    cn_status st = csv_append(r, &r->metrics, row, (size_t)n);
    return st ? st : csv_write(r, &r->metrics);
}

/* a step's row, kept in memory: steps.csv is written with the epoch's checkpoint */
static cn_status steps_row(run *r, const cn_train_progress *p)
{
    char row[128];
    int n = snprintf(row, sizeof row, "%lld,%lld,%.6f,%.6g\n", (long long)p->epoch, (long long)p->step, p->step_loss, p->lr);
    return csv_append(r, &r->steps, row, (size_t)n);
}

static double rms(const float *v, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

/* the rows of epoch e: every trained weight tensor's root mean squares, its gradient the last
 * step's (the update leaves the gradient slab as the backward pass wrote it) */
static cn_status gradients_rows(run *r, int64_t e)
{
    cn_status st = CN_OK;
    for (int k = 0; k < cn_net_tensor_count(r->net) && !st; k++) {
        cn_tensor t;
        size_t len;
        if (cn_net_tensor(r->ctx, r->net, k, &t) || !t.trainable || !t.grad || (len = strlen(t.name)) < 7 ||
            strcmp(t.name + len - 7, ".weight"))
            continue;
        char head[32], tail[64];
        int nh = snprintf(head, sizeof head, "%lld,", (long long)e);
        int nt = snprintf(tail, sizeof tail, ",%.6g,%.6g\n", rms(t.data, t.count), rms(t.grad, t.count));
        if (!(st = csv_append(r, &r->gradients, head, (size_t)nh)) && !(st = csv_append(r, &r->gradients, t.name, len)))
            st = csv_append(r, &r->gradients, tail, (size_t)nt);
    }
    return st ? st : csv_write(r, &r->gradients);
}

/* images held out for validation from ds (none where the run has a validation set of its own) */
static int64_t held_out(const cn_dataset *ds, const cn_train_config *c)
{
    return c->val ? 0 : (int64_t)floor((double)ds->count * c->val_fraction);
}

/* the optimizer as the run plans it: its schedule over every step of every epoch (the last
 * partial batch of an epoch dropped) */
static cn_optim_config planned_optim(const cn_dataset *ds, const cn_train_config *c)
{
    cn_optim_config oc = c->optim;
    oc.total_steps = c->epochs * ((ds->count - held_out(ds, c)) / c->batch);
    return oc;
}

static cn_status check_config(cn_ctx *ctx, const cn_net *net, const cn_dataset *ds, const cn_train_config *c)
{
    if (c->epochs < 1 || c->batch < 1) return cn_fail(ctx, CN_E_ARG, "need epochs >= 1 and batch >= 1");
    if (!(c->val_fraction >= 0 && c->val_fraction <= CN_VAL_FRACTION_MAX))
        return cn_fail(ctx, CN_E_ARG, "validation fraction %g: it must be in [0, %g]", c->val_fraction, CN_VAL_FRACTION_MAX);
    if (c->crop_pad < 0 || c->crop_pad > 64) return cn_fail(ctx, CN_E_ARG, "crop padding must be in [0, 64]");
    if (ds->c > 4) return cn_fail(ctx, CN_E_ARG, "images of more than 4 channels");
    cn_status st = check_input(ctx, net, ds);
    if (!st) st = cn_net_check_classes(ctx, net, c->val && c->val->classes > ds->classes ? c->val->classes : ds->classes);
    if (st) return st;
    if ((unsigned)c->monitor > CN_MONITOR_LOSS) return cn_fail(ctx, CN_E_ARG, "unknown monitor %d", (int)c->monitor);
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
        return cn_fail(ctx, CN_E_ARG, "label smoothing %g: it must lie in [0, 1)", c->label_smoothing);
    if (c->label_smoothing > 0 && cn_net_default_loss(net) != CN_LOSS_CE_LOGITS) /* else the first step fails */
        return cn_fail(ctx, CN_E_ARG, "label smoothing needs the net's logits, and this net ends in softmax (trained "
                       "with cross-entropy on its probabilities): drop the softmax, which the loss then applies");
    const cn_dataset *v = c->val;
    if (v && (v->c != ds->c || v->h != ds->h || v->w != ds->w))
        return cn_fail(ctx, CN_E_SHAPE, "the validation images are %lldx%lldx%lld, the training images %lldx%lldx%lld",
                       (long long)v->h, (long long)v->w, (long long)v->c, (long long)ds->h, (long long)ds->w, (long long)ds->c);
    if (v && v->count < 1) return cn_fail(ctx, CN_E_ARG, "the validation set holds no images");
    int64_t n_train = ds->count - held_out(ds, c);
    if (n_train < c->batch)
        return cn_fail(ctx, CN_E_ARG, "%lld training images are fewer than one batch of %lld: a batch of at most %lld "
                       "(--batch) trains on them", (long long)n_train, (long long)c->batch, (long long)n_train);
    cn_optim_config oc = planned_optim(ds, c);
    if ((st = cn_optim_config_check(ctx, &oc))) return st;
    /* one class only (a folder of cats alone): every image scored right from the first step, a
     * 100 % that says nothing */
    int64_t i = 1;
    while (i < ds->count && ds->labels[i] == ds->labels[0]) i++;
    if (ds->count && i == ds->count) {
        const char *name = ds->class_names ? ds->class_names[ds->labels[0]] : NULL;
        return cn_fail(ctx, CN_E_ARG, "every training image is of one class, %d%s%s%s: a classifier needs images of "
                       "two classes or more%s", (int)ds->labels[0], name ? " ('" : "", name ? name : "", name ? "')" : "",
                       cn_lone_half_hint(name));
    }
    return CN_OK;
}

cn_status cn_train_check(cn_ctx *ctx, const cn_net *net, const cn_dataset *ds, const cn_train_config *cfg)
{
    return check_config(ctx, net, ds, cfg);
}

/* The input's per-channel mean and std over the training images: of the images in memory, or,
 * for images decoded on demand, of fixed blocks of them shared out among the processes (each
 * decodes its own) and merged in block order, the same bits whichever process took which. */
static cn_status input_stats(cn_ctx *ctx, const cn_dataset *ds, cn_parallel *par, float *mean, float *std)
{
    enum { BLOCK = 1024 }; /* images per block */
    if (ds->images) {
        cn_dataset_stats(ds, mean, std);
        return CN_OK;
    }
    int64_t blocks = (ds->count + BLOCK - 1) / BLOCK, first, mine;
    cn_parallel_share(par, blocks, &first, &mine);
    double *part = cn_malloc(ctx, (size_t)(12 * (mine + blocks) + 1) * sizeof(double)), *all = part + 12 * mine;
    cn_status st = part ? CN_OK : CN_E_NOMEM;
    for (int64_t k = first; !st && k < first + mine; k++) {
        int64_t lo = k * BLOCK, n = ds->count - lo < BLOCK ? ds->count - lo : BLOCK;
        st = cn_dataset_stats_part(ctx, ds, lo, n, part + 12 * (k - first));
    }
    if (!st) st = cn_parallel_gather_items(ctx, par, blocks, part, 12, all);
    if (!st) cn_dataset_stats_merge(all, blocks, ds->c, mean, std);
    cn_free(ctx, part);
    return st;
}

/* Under several processes, all must train the same: the same net and starting weights (spec,
 * seed, init, resumed checkpoint), the same images and labels, the same settings. */
static cn_status agree(run *r, cn_parallel *p)
{
    const cn_train_config *c = r->cfg;
    int64_t trainable, total;
    float *w = cn_net_params(r->net, &trainable, &total);
    double settings[] = { (double)c->epochs, (double)c->batch, (double)c->seed, c->val_fraction, (double)c->crop_pad,
                          (double)c->flip, (double)c->optim.kind, c->optim.lr, c->optim.momentum, c->optim.weight_decay,
                          c->optim.l1, c->optim.clip_norm, (double)c->optim.schedule, c->label_smoothing,
                          (double)c->init, (double)c->patience, (double)c->monitor, (double)r->epoch,
                          (double)cn_parallel_shards(p, c->batch), c->optim.beta1, c->optim.beta2, c->optim.eps };
    cn_status st = cn_parallel_agree(r->ctx, p, "net or starting weights (spec, seed, init or checkpoint)", w,
                                     (size_t)total * sizeof(float));
    size_t values = (size_t)(r->ds->count * r->ds->c * r->ds->h * r->ds->w);
    if (!st && (r->ds->images || r->ds->pixels))
        st = r->ds->images ? cn_parallel_agree(r->ctx, p, "training images", r->ds->images, values * sizeof(float))
                           : cn_parallel_agree(r->ctx, p, "training images", r->ds->pixels, values);
    if (!st && r->ds->paths) { /* decoded on demand: the names of their files */
        uint64_t h = 1469598103934665603ULL; /* FNV-1a over the names, each ended by its NUL */
        for (int64_t i = 0; i < r->ds->count; i++)
            for (const char *ch = r->ds->paths[i];; ch++) {
                h = (h ^ (unsigned char)*ch) * 1099511628211ULL;
                if (!*ch) break;
            }
        st = cn_parallel_agree(r->ctx, p, "training image files", &h, sizeof h);
    }
    if (!st) st = cn_parallel_agree(r->ctx, p, "labels", r->ds->labels, (size_t)r->ds->count * sizeof(int32_t));
    if (!st) st = cn_parallel_agree(r->ctx, p, "settings (epochs, batch, seed, optimizer, augmentation)", settings,
                                    sizeof settings);
    return st;
}

/* The training state of the checkpoint (its values' form was checked when it was read), which
 * must be the state of these settings: as many steps as its epochs take. */
static cn_status resume_state(run *r, int64_t batches)
{
    const cn_checkpoint *ck = r->cfg->resume;
    const char *ep = cn_checkpoint_meta(ck, "epoch"), *best = cn_checkpoint_meta(ck, "best_val_acc");
    const char *best_loss = cn_checkpoint_meta(ck, "best_val_loss");
    const char *be = cn_checkpoint_meta(ck, "best_epoch"), *steps = cn_checkpoint_meta(ck, "step");
    if (!ep || !steps || !rng_parse(cn_checkpoint_meta(ck, "data_rng"), &r->data_rng) ||
        !rng_parse(cn_checkpoint_meta(ck, "net_rng"), cn_net_rng(r->net)))
        return cn_fail(r->ctx, CN_E_FORMAT, "the checkpoint has no training state to resume (epoch, step, data_rng, net_rng)");
    r->epoch = strtoll(ep, NULL, 10);
    r->best_acc = best ? strtod(best, NULL) : -1;
    r->best_loss = best_loss ? strtod(best_loss, NULL) : NAN; /* older checkpoints kept the accuracy only */
    r->best_score = r->cfg->monitor == CN_MONITOR_LOSS ? (isnan(r->best_loss) ? -INFINITY : -r->best_loss) : r->best_acc;
    r->best_epoch = be ? strtoll(be, NULL, 10) : 0;
    int64_t step = strtoll(steps, NULL, 10);
    if (r->epoch > r->cfg->epochs || r->best_epoch > r->epoch || step != r->epoch * batches)
        return cn_fail(r->ctx, CN_E_FORMAT, "the checkpoint's state (epoch %lld, best epoch %lld, step %lld) is not one of "
                       "this run (%lld epochs of %lld steps)", (long long)r->epoch, (long long)r->best_epoch,
                       (long long)step, (long long)r->cfg->epochs, (long long)batches);
    /* the best epoch's checkpoint missing or damaged: the best of the epochs from here on takes
     * its place (else the run would end without the weights its evaluation reads); the writer
     * reads it, and every process of a job takes its word, so that they agree on the best */
    double lost = 0;
    if (r->cfg->out_dir && r->best_epoch > 0) {
        char path[4200];
        cn_checkpoint *best_ck = NULL;
        snprintf(path, sizeof path, "%s/model.safetensors", r->cfg->out_dir);
        if (cn_checkpoint_read(r->ctx, path, &best_ck) == CN_E_NOMEM) return CN_E_NOMEM;
        lost = !best_ck;
        cn_checkpoint_destroy(best_ck);
        cn_ctx_clear(r->ctx);
    }
    cn_parallel *par = r->cfg->parallel;
    int size = cn_parallel_size(par);
    if (size > 1) { /* one value a process */
        double *all = cn_malloc(r->ctx, (size_t)size * sizeof *all);
        cn_status gst = all ? cn_parallel_gather_items(r->ctx, par, size, &lost, 1, all) : CN_E_NOMEM;
        for (int i = 0; !gst && i < size; i++) lost = lost || all[i];
        cn_free(r->ctx, all);
        if (gst) return gst;
    }
    if (lost) r->best_score = -INFINITY, r->best_acc = -1, r->best_loss = NAN, r->best_epoch = 0;
    cn_status st = cn_checkpoint_optim(r->ctx, ck, r->opt);
    if (!st && cn_optim_steps(r->opt) != step)
        st = cn_fail(r->ctx, CN_E_FORMAT, "the checkpoint's optimizer made %lld steps, its epochs %lld",
                     (long long)cn_optim_steps(r->opt), (long long)step);
    return st;
}

/* a step's figures: its batch in the epoch (1-based), the optimizer step it made, its learning
 * rate, its mean loss and how many of its rows it predicted right */
typedef struct step_seen {
    int64_t batch, step;
    double lr, loss;
    int64_t right;
} step_seen;

/* step s's figures into the epoch's running means, steps.csv and the progress callback; 1 when
 * the run stops (*st: why, or CN_OK where the callback asked) */
static int step_done(run *r, const cn_train_config *cfg, cn_train_progress *p, const step_seen *s, int64_t e,
                     int64_t batches, double t0, int64_t *seen, double *loss_sum, int64_t *correct, cn_status *st)
{
    *seen += cfg->batch;
    *loss_sum += s->loss * (double)cfg->batch;
    *correct += s->right;
    double t = now() - t0;
    p->lr = s->lr, p->batch = s->batch, p->step = s->step, p->step_loss = s->loss;
    p->loss = *loss_sum / (double)*seen, p->acc = (double)*correct / (double)*seen;
    if (cfg->out_dir && (*st = steps_row(r, p))) return 1;
    p->seconds = t, p->images_per_s = (double)*seen / (t > 0 ? t : 1e-9);
    double per_batch = t / (double)s->batch;
    p->eta_seconds = per_batch * (double)((batches - s->batch) + (cfg->epochs - e) * batches);
    return cfg->progress && cfg->progress(cfg->user, p);
}

cn_status cn_train(cn_ctx *ctx, cn_net *net, const cn_dataset *ds, const cn_train_config *cfg, cn_train_summary *out)
{
    memset(out, 0, sizeof *out);
    cn_status st = check_config(ctx, net, ds, cfg);
    if (st) return st;
    run r = { .ctx = ctx, .net = net, .ds = ds, .cfg = cfg, .best_score = -INFINITY, .best_acc = -1, .best_loss = NAN };
    resident res = { 0 }, val_res = { 0 }; /* the training set's, a validation set's */
    cn_step_flight *flight = NULL;
    double t_run = now();
    int64_t epochs_this_run = 0;
    int64_t chw = ds->c * ds->h * ds->w, n = ds->count;
    /* validation: the first n_val images of the seed's permutation, or a set of its own */
    int64_t n_val = held_out(ds, cfg), n_train = n - n_val;
    int64_t n_check = cfg->val ? cfg->val->count : n_val;
    int64_t batches = n_train / cfg->batch; /* the last partial batch is dropped: one plan, no reallocation */
    int64_t *perm = cn_malloc(ctx, (size_t)n * sizeof(int64_t)), *order = cn_malloc(ctx, (size_t)n_train * sizeof(int64_t));
    int64_t *idx = cn_malloc(ctx, (size_t)cfg->batch * sizeof(int64_t));
    float *x = cn_malloc(ctx, (size_t)(cfg->batch * chw) * sizeof(float));
    int32_t *labels = cn_malloc(ctx, (size_t)cfg->batch * sizeof(int32_t));
    int64_t *val_idx = cfg->val ? cn_malloc(ctx, (size_t)cfg->val->count * sizeof(int64_t)) : NULL;
    if (!perm || !order || !idx || !x || !labels || (cfg->val && !val_idx)) {
        st = CN_E_NOMEM;
        goto done;
    }
    /* the split depends on the seed only, so a resumed run holds out the same images */
    cn_rng split;
    cn_rng_seed(&split, cfg->seed ^ 0x5b117ULL);
    cn_shuffle(&split, perm, n);
    for (int64_t i = 0; i < n_check && cfg->val; i++) val_idx[i] = i;
    for (int c = 0; c < 4; c++) r.mean[c] = 0, r.std[c] = 1;
    if ((st = input_stats(ctx, ds, cfg->parallel, r.mean, r.std))) goto done;
    cn_optim_config oc = planned_optim(ds, cfg); /* total_steps: epochs x batches */
    if (!cfg->resume && (st = cn_net_init_params(ctx, net, cfg->init, cfg->seed))) goto done;
    int copied;
    if (!cfg->resume && cfg->init_from && (st = cn_checkpoint_load_matching(ctx, cfg->init_from, net, &copied, NULL, 0)))
        goto done;
    if ((st = cn_optim_create(ctx, net, &oc, &r.opt))) goto done;
    cn_net_set_input_grad(net, 0); /* no use for the images' gradient */
    cn_rng_seed(&r.data_rng, cfg->seed ^ 0xda7aULL);
    if (cfg->resume && (st = resume_state(&r, batches))) goto done;
    /* data-parallel: this process's rows of every global batch */
    cn_parallel *par = cfg->parallel;
    int64_t row0 = 0, rows = cfg->batch;
    if (par && ((st = agree(&r, par)) || (st = cn_parallel_attach(ctx, par, net, cfg->batch, &row0, &rows)))) goto done;
    /* the run's folder made if missing (its parent must exist): a C program need not make it */
    if (cfg->out_dir && mkdir(cfg->out_dir, 0777) && errno != EEXIST) {
        st = cn_fail(ctx, CN_E_IO, "%s: cannot create the run's folder: %s", cfg->out_dir, strerror(errno));
        goto done;
    }
    if (cfg->out_dir && ((st = csv_start(&r, &r.metrics, "metrics", CN_METRICS_COLUMNS "\n", -1)) ||
                         (st = csv_start(&r, &r.steps, "steps", CN_STEPS_COLUMNS "\n", -1)) ||
                         (st = csv_start(&r, &r.gradients, "gradients", CN_GRADIENTS_COLUMNS "\n", 1))))
        goto done;
    cn_step_config sc = { cn_net_default_loss(net), cfg->label_smoothing };
    cn_layer_info o = layer(ctx, net, -1);
    int64_t classes = o.c * o.h * o.w;
    const cn_step_kernels *step_k = cn_net_step_kernels(net); /* the backend's accuracy count, where it has one */
    /* steps in flight on a device that gates its updates: step b + 1 queued before step b is
     * read, so that the GPU never waits for the host in an epoch (CN_FLIGHT=0: one at a time) */
    const char *fly = getenv("CN_FLIGHT");
    if (!par && !(fly && !strcmp(fly, "0")) && (st = cn_step_flight_create(ctx, net, r.opt, &flight))) goto done;
    resident_open(&res, ctx, net, ds, cfg->batch, r.mean, r.std, cfg->parallel);
    if (cfg->val) resident_open(&val_res, ctx, net, cfg->val, cfg->batch, r.mean, r.std, cfg->parallel);
    for (int64_t e = r.epoch + 1; e <= cfg->epochs; e++) {
        /* early stopping, from the state a checkpoint keeps: a resumed run stops where it would have */
        if (cfg->patience > 0 && r.epoch - r.best_epoch >= cfg->patience) {
            out->stopped_early = 1;
            break;
        }
        double t0 = now(), loss_sum = 0;
        int64_t correct = 0, seen = 0;
        cn_shuffle(&r.data_rng, order, n_train);
        cn_train_progress p = { .epoch = e, .epochs = cfg->epochs, .batches = batches, .val_loss = NAN, .val_acc = NAN };
        step_seen q = { 0 }; /* a step in flight: its figures come with the next call */
        for (int64_t b = 0; b < batches; b++) {
            for (int64_t i = 0; i < cfg->batch; i++) idx[i] = perm[n_val + order[b * cfg->batch + i]];
            const float *xb = x; /* the batch's images, in the host's memory or the backend's */
            if (res.data) resident_batch(&res, net, ds, idx, cfg->batch, cfg->crop_pad, cfg->flip, &r.data_rng, labels), xb = res.x;
            else if ((st = cn_make_batch_rows(ctx, ds, idx, cfg->batch, row0, row0 + rows, r.mean, r.std, cfg->crop_pad,
                                              cfg->flip, &r.data_rng, x, labels)))
                goto done;
            step_seen now = { b + 1, cn_optim_steps(r.opt) + 1, cn_optim_lr_at(&oc, cn_optim_steps(r.opt)), NAN, -1 };
            if (par) {
                if ((st = cn_train_step_sharded(ctx, net, r.opt, &sc, par, x, labels, rows, cfg->batch, &now.loss,
                                                &now.right)))
                    goto done;
            } else if (flight) {
                int landed;
                if ((st = cn_train_step_fly(ctx, net, r.opt, &sc, flight, xb, labels, cfg->batch, &q.loss, &q.right, &landed)))
                    goto done;
                cn_fault_point(NULL, "step");
                step_seen was = q;
                q = now;
                if (!landed) continue;
                now = was;
            } else {
                if ((st = cn_train_step_counted(ctx, net, r.opt, &sc, xb, labels, cfg->batch, &now.loss, &now.right)))
                    goto done;
                const float *y = cn_net_output(net, NULL);
                if (now.right < 0)
                    now.right = (step_k->count_correct ? step_k->count_correct : cn_count_correct)(y, labels, cfg->batch, classes);
            }
            if (!flight) cn_fault_point(NULL, "step");
            if (step_done(&r, cfg, &p, &now, e, batches, t0, &seen, &loss_sum, &correct, &st)) goto done;
        }
        if (flight) { /* the epoch's last step read */
            int landed;
            if ((st = cn_train_step_flush(ctx, net, r.opt, &sc, flight, &q.loss, &q.right, &landed))) goto done;
            if (landed && step_done(&r, cfg, &p, &q, e, batches, t0, &seen, &loss_sum, &correct, &st)) goto done;
        }
        /* the last step's update, left queued on a device, done before the host reads the weights */
        if ((st = cn_net_check_backend(ctx, net))) goto done;
        if (n_check > 0 && (st = eval_indices(ctx, net, cfg->val ? cfg->val : ds, cfg->val ? val_idx : perm, n_check, r.mean,
                                              r.std, cfg->batch, CN_TTA_NONE, &p.val_loss, &p.val_acc, NULL, NULL, cfg->parallel,
                                              cfg->val ? &val_res : &res)))
            goto done;
        r.epoch = e;
        epochs_this_run++;
        double acc = n_check > 0 ? p.val_acc : p.acc, loss = n_check > 0 ? p.val_loss : p.loss;
        double score = cfg->monitor == CN_MONITOR_LOSS ? -loss : acc;
        p.best = score > r.best_score;
        if (p.best) r.best_score = score, r.best_acc = acc, r.best_loss = loss, r.best_epoch = e;
        p.epoch_done = 1;
        p.seconds = now() - t0;
        out->train_loss = p.loss, out->train_acc = p.acc, out->val_loss = p.val_loss, out->val_acc = p.val_acc;
        if (cfg->out_dir) {
            if ((st = metrics_row(&r, &p)) || (st = csv_write(&r, &r.steps)) || (st = gradients_rows(&r, e))) goto done;
            if (p.best && (st = save(&r, "model.safetensors", 0, p.val_acc))) goto done;
            if ((st = save(&r, "last.safetensors", 1, p.val_acc))) goto done;
        }
        if (cfg->progress && cfg->progress(cfg->user, &p)) goto done;
    }
done:
    cn_step_flight_destroy(flight); /* waits for a step still in flight */
    if (r.opt) { /* a step's update may still be queued on a device (a run stopped mid-epoch) */
        cn_status queued = cn_net_check_backend(ctx, net);
        if (!st) st = queued;
    }
    resident_close(&res, ctx), resident_close(&val_res, ctx);
    if (cfg->parallel) cn_parallel_detach(ctx, cfg->parallel, net);
    cn_net_set_input_grad(net, 1);
    out->epochs_run = epochs_this_run;
    out->steps = r.opt ? cn_optim_steps(r.opt) : 0;
    out->best_val_acc = r.best_acc;
    out->best_val_loss = r.best_loss;
    out->best_epoch = r.best_epoch;
    memcpy(out->mean, r.mean, sizeof r.mean);
    memcpy(out->std, r.std, sizeof r.std);
    out->seconds = now() - t_run;
    cn_optim_destroy(r.opt);
    cn_free(ctx, r.metrics.text), cn_free(ctx, r.steps.text), cn_free(ctx, r.gradients.text), cn_free(ctx, val_idx);
    cn_free(ctx, perm), cn_free(ctx, order), cn_free(ctx, idx), cn_free(ctx, x), cn_free(ctx, labels);
    return st;
}
