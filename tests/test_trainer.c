/* test_trainer.c — training runs: a run stopped in the middle of an epoch and resumed from its
 * last checkpoint ends bit-identical to an uninterrupted run (the checkpoint files themselves
 * are byte-identical); metrics.csv has a row per epoch; evaluation counts and the confusion
 * matrix agree; the run learns; a validation set of its own and the loss as the monitor;
 * fine-tuning (a new last layer, the matching tensors copied) and frozen layers; evaluation with
 * test-time augmentation (mirror images and shifts); a resumed run's damaged files. Uses the first
 * 2,200 Fashion-MNIST training images. */
#define _POSIX_C_SOURCE 200809L /* truncate */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_util.h"

static cn_ctx *ctx;
static cn_dataset full, small;
static char dir[64];

static const char *spec = "input 28x28x1; conv 4 3x3 pad=1; batchnorm; relu; maxpool 2x2; dropout keep=0.9; dense 10";

static void setup(void)
{
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    CHECK(cn_dataset_load_mnist(ctx, "/usr/share/datasets/fashion-mnist", 1, &full) == CN_OK);
    small = full;
    small.count = 1200;
    small.class_names = NULL;
    test_tmpdir(dir, sizeof dir, "test_trainer");
}

static void teardown(void)
{
    test_rmtree(dir);
    cn_dataset_free(ctx, &full);
    cn_ctx_destroy(ctx);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*len + 1);
    if (b && fread(b, 1, *len, f) != *len) *len = 0;
    fclose(f);
    if (b) b[*len] = '\0';
    return b;
}

static int mkdir_p(const char *p)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    return system(cmd);
}

static void config(cn_train_config *c, const char *out)
{
    cn_train_defaults(c);
    c->epochs = 3;
    c->batch = 32;
    c->seed = 9;
    c->val_fraction = 0.2;
    c->crop_pad = 2;
    c->flip = 1;
    c->out_dir = out;
}

/* stops the run at the 7th batch of epoch 2 */
static int interrupt(void *user, const cn_train_progress *p)
{
    (void)user;
    return p->epoch == 2 && p->batch == 7 && !p->epoch_done;
}

static void test_resume_is_bit_identical(void)
{
    char a[96], b[96], path[160];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    CHECK(mkdir_p(a) == 0 && mkdir_p(b) == 0);
    cn_train_config c;
    cn_train_summary s;
    /* the uninterrupted run */
    cn_net *net = parse_spec(ctx, spec);
    config(&c, a);
    CHECK(cn_train(ctx, net, &small, &c, &s) == CN_OK);
    CHECK_INT(s.epochs_run, 3);
    CHECK_INT(s.steps, 3 * (960 / 32));
    cn_net_destroy(net);
    /* the interrupted run: epoch 1 completes, epoch 2 stops part way */
    net = parse_spec(ctx, spec);
    config(&c, b);
    c.progress = interrupt;
    CHECK(cn_train(ctx, net, &small, &c, &s) == CN_OK);
    CHECK_INT(s.epochs_run, 1);
    cn_net_destroy(net);
    /* resume from b/last.safetensors */
    cn_checkpoint *ck = NULL;
    snprintf(path, sizeof path, "%s/last.safetensors", b);
    CHECK(cn_checkpoint_read(ctx, path, &ck) == CN_OK);
    CHECK_STR(cn_checkpoint_meta(ck, "epoch"), "1");
    net = NULL;
    CHECK(cn_checkpoint_net(ctx, ck, &net) == CN_OK);
    config(&c, b);
    c.resume = ck;
    CHECK(cn_train(ctx, net, &small, &c, &s) == CN_OK);
    CHECK_INT(s.epochs_run, 2);
    cn_net_destroy(net);
    cn_checkpoint_destroy(ck);
    /* the same bytes: weights, optimizer state, RNG states, metadata */
    size_t la = 0, lb = 0;
    char pa[160], pb[160];
    snprintf(pa, sizeof pa, "%s/last.safetensors", a);
    snprintf(pb, sizeof pb, "%s/last.safetensors", b);
    char *fa = slurp(pa, &la), *fb = slurp(pb, &lb);
    CHECK(fa && fb && la > 1000 && la == lb && memcmp(fa, fb, la) == 0);
    free(fa), free(fb);
    /* metrics.csv: a header and one row per epoch, in both */
    snprintf(pa, sizeof pa, "%s/metrics.csv", b);
    char *m = slurp(pa, &la);
    int lines = 0;
    for (size_t i = 0; m && i < la; i++) lines += m[i] == '\n';
    CHECK_INT(lines, 4);
    CHECK(m && strncmp(m, "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n1,", 57) == 0);
    free(m);
}

/* stops the run once epoch 1 is done */
static int after_epoch1(void *user, const cn_train_progress *p)
{
    (void)user;
    return p->epoch == 1 && p->epoch_done;
}

/* A resumed run whose files were damaged: metrics.csv's damaged rows go (the report would fail
 * on them at the run's end), and an unreadable model.safetensors is replaced by the best of the
 * epochs from there on. The validation set is one image that epoch 1 gets right: 100 %, which
 * epoch 2 cannot beat, so only the reset best writes model.safetensors again. */
static void test_resume_damaged_files(void)
{
    char out[96], path[160];
    snprintf(out, sizeof out, "%s/damaged", dir);
    cn_train_config c;
    cn_train_summary s;
    /* epoch 1 (constant schedule: the weights after it do not depend on the run's length) */
    cn_net *net = parse_spec(ctx, spec);
    config(&c, NULL);
    c.epochs = 1, c.optim.schedule = CN_SCHED_CONSTANT, c.val_fraction = 0;
    CHECK(cn_train(ctx, net, &small, &c, &s) == CN_OK);
    /* an image of the rest of the set it classifies right */
    cn_dataset one = full;
    one.class_names = NULL, one.count = 1;
    int64_t found = -1;
    float x[784];
    for (int64_t j = 1200; j < 1400 && found < 0; j++) {
        for (int i = 0; i < 784; i++) x[i] = (full.images[j * 784 + i] - s.mean[0]) / s.std[0];
        CHECK(cn_net_forward(ctx, net, x, 1, 0) == CN_OK);
        const float *y = cn_net_output(net, NULL);
        int best = 0;
        for (int k = 1; k < 10; k++) best = y[k] > y[best] ? k : best;
        if (best == full.labels[j]) found = j;
    }
    CHECK(found >= 0);
    cn_net_destroy(net);
    one.images += found * 784, one.labels += found;
    /* the run of 2 epochs, stopped after the first: validation 100 % */
    net = parse_spec(ctx, spec);
    config(&c, out);
    c.epochs = 2, c.optim.schedule = CN_SCHED_CONSTANT, c.val = &one, c.progress = after_epoch1;
    CHECK(cn_train(ctx, net, &small, &c, &s) == CN_OK);
    CHECK(s.best_val_acc == 1.0);
    cn_net_destroy(net);
    /* the damage: a metrics row cut to 3 fields, the best checkpoint truncated */
    snprintf(path, sizeof path, "%s/metrics.csv", out);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) fputs(CN_METRICS_COLUMNS "\n1,2,3\n", f), fclose(f);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    CHECK(truncate(path, 100) == 0);
    /* resumed: epoch 2 is the best of the epochs from here on */
    cn_checkpoint *ck = NULL;
    snprintf(path, sizeof path, "%s/last.safetensors", out);
    CHECK(cn_checkpoint_read(ctx, path, &ck) == CN_OK);
    net = NULL;
    if (ck) CHECK(cn_checkpoint_net(ctx, ck, &net) == CN_OK);
    c.resume = ck, c.progress = NULL;
    CHECK(net && cn_train(ctx, net, &small, &c, &s) == CN_OK);
    CHECK_INT(s.best_epoch, 2);
    cn_net_destroy(net);
    cn_checkpoint_destroy(ck);
    cn_checkpoint *best = NULL;
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    CHECK(cn_checkpoint_read(ctx, path, &best) == CN_OK);
    CHECK(best && !strcmp(cn_checkpoint_meta(best, "epoch"), "2"));
    cn_checkpoint_destroy(best);
    size_t len;
    snprintf(path, sizeof path, "%s/metrics.csv", out);
    char *m = slurp(path, &len);
    CHECK(m && !strncmp(m, CN_METRICS_COLUMNS "\n2,", strlen(CN_METRICS_COLUMNS) + 3) && !strstr(m, "1,2,3"));
    free(m);
}

static void test_learns_and_evaluates(void)
{
    char a[96], path[160];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(path, sizeof path, "%s/model.safetensors", a);
    cn_checkpoint *ck = NULL;
    cn_net *net = NULL;
    CHECK(cn_checkpoint_read(ctx, path, &ck) == CN_OK);
    CHECK(cn_checkpoint_net(ctx, ck, &net) == CN_OK);
    if (!net) return;
    float mean[4], std[4];
    cn_dataset_stats(&small, mean, std);
    /* the next 1,000 images, never trained on */
    cn_dataset next = full;
    next.images += 1200 * 784;
    next.labels += 1200;
    next.count = 1000;
    next.class_names = NULL;
    cn_eval_result r;
    CHECK(cn_evaluate(ctx, net, &next, mean, std, 100, &r) == CN_OK);
    int64_t total = 0, diag = 0;
    for (int i = 0; i < r.classes * r.classes; i++) total += r.confusion[i];
    for (int i = 0; i < r.classes; i++) diag += r.confusion[i * r.classes + i];
    CHECK_INT(r.count, 1000);
    CHECK_INT(total, 1000);
    CHECK_NEAR((double)diag / 1000, r.acc, 1e-12);
    printf("  3 epochs on 960 images: %.1f%% on 1,000 new ones, loss %.3f\n", 100 * r.acc, r.loss);
    CHECK(r.acc > 0.6); /* chance is 10% */
    cn_eval_free(ctx, &r);
    cn_net_destroy(net);
    cn_checkpoint_destroy(ck);
}

/* the mean of the net's outputs over views of n 28x28 images (raw values in img): the image,
 * then (views 10) its mirror image, its shifts by a pixel up, down, left and right, and those
 * mirrored, the pixels shifted in zeros; each view normalised by (mean, std). The test's own
 * views, made here, into out (n x 10). */
static void views_by_hand(cn_net *net, const float *img, int64_t n, int views, float mean, float std, float *out)
{
    static const int view[10][3] = { { 0, 0, 0 }, { 1, 0, 0 },  { 0, -1, 0 }, { 0, 1, 0 }, { 0, 0, -1 },
                                     { 0, 0, 1 }, { 1, -1, 0 }, { 1, 1, 0 },  { 1, 0, -1 }, { 1, 0, 1 } };
    float *x = malloc((size_t)(n * 784) * sizeof(float));
    for (int v = 0; v < views; v++) {
        for (int64_t i = 0; i < n; i++)
            for (int r = 0; r < 28; r++)
                for (int c = 0; c < 28; c++) {
                    int sr = r + view[v][1], sc = (view[v][0] ? 27 - c : c) + view[v][2];
                    float raw = sr >= 0 && sr < 28 && sc >= 0 && sc < 28 ? img[i * 784 + sr * 28 + sc] : 0.0f;
                    x[i * 784 + r * 28 + c] = (raw - mean) / std;
                }
        CHECK(cn_net_forward(ctx, net, x, n, 0) == CN_OK);
        const float *y = cn_net_output(net, NULL);
        for (int64_t i = 0; i < n * 10; i++) out[i] = v ? out[i] + y[i] : y[i];
    }
    for (int64_t i = 0; i < n * 10; i++) out[i] /= (float)views;
    free(x);
}

/* cn_evaluate_tta with CN_TTA_FLIP and CN_TTA_FLIP_SHIFT: the accuracy and the mean
 * cross-entropy of the averaged logits, as computed here from the test's own views (250 images
 * in batches of 64, the last one short); images symmetric left to right give cn_evaluate's
 * figures exactly with CN_TTA_FLIP (a vertical flip would not) */
static void test_evaluate_tta(void)
{
    enum { N = 250 };
    char path[160];
    snprintf(path, sizeof path, "%s/a/model.safetensors", dir);
    cn_checkpoint *ck = NULL;
    cn_net *net = NULL;
    CHECK(cn_checkpoint_read(ctx, path, &ck) == CN_OK);
    if (ck) CHECK(cn_checkpoint_net(ctx, ck, &net) == CN_OK);
    if (!net) return;
    float mean[4], std[4];
    cn_dataset_stats(&small, mean, std);
    static float sym[N * 784], avg[N * 10];
    cn_dataset next = full;
    next.images += 1200 * 784, next.labels += 1200, next.count = N, next.class_names = NULL;
    for (int s = 0; s < 3; s++) { /* flip, flip-shift, then flip of the left halves mirrored into the right */
        cn_tta tta = s == 1 ? CN_TTA_FLIP_SHIFT : CN_TTA_FLIP;
        if (s == 2) {
            for (int i = 0; i < N; i++)
                for (int r = 0; r < 28; r++)
                    for (int c = 0; c < 28; c++) sym[i * 784 + r * 28 + c] = next.images[i * 784 + r * 28 + (c < 14 ? c : 27 - c)];
            next.images = sym;
        }
        views_by_hand(net, next.images, N, tta == CN_TTA_FLIP ? 2 : 10, mean[0], std[0], avg);
        double loss = 0;
        int64_t right = 0, ranks[10] = { 0 }, got[10];
        for (int i = 0; i < N; i++) {
            const float *z = avg + i * 10;
            int best = 0, rank = 0, t = next.labels[i];
            double top = z[0], sum = 0;
            for (int k = 1; k < 10; k++) if (z[k] > z[best]) best = k;
            for (int k = 0; k < 10; k++) rank += z[k] > z[t] || (z[k] == z[t] && k < t);
            ranks[rank]++;
            for (int k = 0; k < 10; k++) top = z[k] > top ? z[k] : top;
            for (int k = 0; k < 10; k++) sum += exp((double)z[k] - top);
            loss += top + log(sum) - z[next.labels[i]];
            right += best == next.labels[i];
        }
        cn_eval_result plain, views;
        CHECK(cn_evaluate(ctx, net, &next, mean, std, 64, &plain) == CN_OK);
        CHECK(cn_evaluate_tta(ctx, net, &next, mean, std, 64, tta, &views) == CN_OK);
        CHECK_INT(views.count, N);
        cn_eval_result again;
        CHECK(cn_evaluate_ranks(ctx, net, &next, mean, std, 64, tta, &again, got) == CN_OK);
        CHECK(memcmp(got, ranks, sizeof ranks) == 0 && again.acc == views.acc && again.loss == views.loss);
        CHECK_INT(got[0], right);
        if (s == 0) printf("  ranks of the true class with %s:", "their mirror images");
        for (int k = 0; s == 0 && k < 10; k++) printf(" %lld", (long long)got[k]);
        if (s == 0) printf("\n");
        cn_eval_free(ctx, &again);
        CHECK_NEAR(views.acc, (double)right / N, 1e-12);
        CHECK_NEAR(views.loss, loss / N, 1e-5 * (loss / N));
        int64_t diag = 0;
        for (int i = 0; i < 10; i++) diag += views.confusion[i * 11];
        CHECK_NEAR((double)diag / N, views.acc, 1e-12);
        if (s == 2) { /* the mirror image is the image */
            CHECK(views.loss == plain.loss && views.acc == plain.acc);
            CHECK(memcmp(views.confusion, plain.confusion, 100 * sizeof(int64_t)) == 0);
        } else {
            CHECK(fabs(views.loss - plain.loss) > 1e-4); /* the views were seen */
            printf("  %d new images: %.1f%% and loss %.4f alone, %.1f%% and %.4f with %s\n", N, 100 * plain.acc,
                   plain.loss, 100 * views.acc, views.loss, s ? "10 views (flip and shifts)" : "their mirror images");
        }
        cn_eval_free(ctx, &plain), cn_eval_free(ctx, &views);
    }
    /* the ranks without views */
    views_by_hand(net, next.images, N, 1, mean[0], std[0], avg);
    int64_t ranks[10] = { 0 }, got[10];
    for (int i = 0; i < N; i++) {
        int rank = 0, t = next.labels[i];
        for (int k = 0; k < 10; k++) rank += avg[i * 10 + k] > avg[i * 10 + t] || (avg[i * 10 + k] == avg[i * 10 + t] && k < t);
        ranks[rank]++;
    }
    cn_eval_result r;
    CHECK(cn_evaluate_ranks(ctx, net, &next, mean, std, 64, CN_TTA_NONE, &r, got) == CN_OK);
    CHECK(memcmp(got, ranks, sizeof ranks) == 0);
    cn_eval_free(ctx, &r);
    CHECK(cn_evaluate_tta(ctx, net, &next, mean, std, 64, (cn_tta)7, &r) == CN_E_ARG);
    CHECK(cn_evaluate_ranks(ctx, net, &next, mean, std, 64, (cn_tta)7, &r, got) == CN_E_ARG);
    /* every weight 0: ten equal outputs, ranked by class, so that class k comes k+1-th */
    int64_t total = 0, support[10] = { 0 };
    float *w = cn_net_params(net, NULL, &total);
    memset(w, 0, (size_t)total * sizeof *w);
    for (int i = 0; i < N; i++) support[next.labels[i]]++;
    CHECK(cn_evaluate_ranks(ctx, net, &next, mean, std, 64, CN_TTA_NONE, &r, got) == CN_OK);
    CHECK(memcmp(got, support, sizeof support) == 0 && r.acc == (double)support[0] / N);
    cn_eval_free(ctx, &r);
    cn_net_destroy(net);
    cn_checkpoint_destroy(ck);
}

/* the best checkpoint by validation loss, on a validation set of its own: its epoch is the
 * row of metrics.csv with the lowest val_loss, and evaluating it on that set gives that loss */
static void test_val_set_and_loss_monitor(void)
{
    char out[96], path[160];
    snprintf(out, sizeof out, "%s/val", dir); /* not made here: cn_train makes a missing out_dir */
    cn_dataset val = full;
    val.images += 1200 * 784, val.labels += 1200, val.count = 200, val.class_names = NULL;
    cn_train_config c;
    cn_train_summary s;
    config(&c, out);
    c.epochs = 4;
    c.val = &val;
    c.val_fraction = 0.5; /* not used: nothing of the training images is held out */
    c.monitor = CN_MONITOR_LOSS;
    cn_net *net = parse_spec(ctx, spec);
    snprintf(path, sizeof path, "%s/no-such/val", dir); /* its parent missing: refused, nothing made */
    c.out_dir = path;
    CHECK(cn_train(ctx, net, &small, &c, &s) == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), "no-such/val: cannot create the run's folder: No such file or directory");
    c.out_dir = out;
    CHECK(cn_train(ctx, net, &small, &c, &s) == CN_OK);
    CHECK_INT(s.steps, 4 * (1200 / 32));
    cn_net_destroy(net);
    size_t len;
    snprintf(path, sizeof path, "%s/metrics.csv", out);
    char *m = slurp(path, &len), *line = m ? strchr(m, '\n') : NULL;
    double best = INFINITY;
    int64_t best_epoch = 0;
    for (int e = 1; line && line[1]; e++, line = strchr(line + 1, '\n')) {
        double v[5];
        CHECK(sscanf(line + 1, "%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4]) == 5);
        if (v[3] < best) best = v[3], best_epoch = e;
    }
    free(m);
    CHECK_INT(s.best_epoch, best_epoch);
    CHECK_NEAR(s.best_val_loss, best, 1e-5);
    cn_checkpoint *ck = NULL;
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    CHECK(cn_checkpoint_read(ctx, path, &ck) == CN_OK);
    net = NULL;
    if (ck) CHECK(cn_checkpoint_net(ctx, ck, &net) == CN_OK);
    cn_eval_result r;
    if (net && cn_evaluate(ctx, net, &val, s.mean, s.std, 64, &r) == CN_OK) {
        CHECK_INT(r.count, 200);
        CHECK_NEAR(r.loss, s.best_val_loss, 1e-5);
        cn_eval_free(ctx, &r);
    } else {
        CHECK(0);
    }
    /* steps.csv: a row per step, the epoch first, the batch's loss */
    snprintf(path, sizeof path, "%s/steps.csv", out);
    char *st = slurp(path, &len);
    int lines = 0;
    for (size_t i = 0; st && i < len; i++) lines += st[i] == '\n';
    CHECK_INT(lines, 1 + 4 * (1200 / 32));
    CHECK(st && strncmp(st, "epoch,step,loss,lr\n1,1,", 23) == 0);
    free(st);
    cn_net_destroy(net);
    cn_checkpoint_destroy(ck);
}

/* fine-tuning: the net with 4 outputs has the source's tensors but the last layer's */
static void test_fine_tuning(void)
{
    char path[160];
    snprintf(path, sizeof path, "%s/a/model.safetensors", dir);
    cn_checkpoint *ck = NULL;
    cn_net *src = NULL, *tuned = NULL, *other = NULL;
    CHECK(cn_checkpoint_read(ctx, path, &ck) == CN_OK);
    if (!ck) return;
    CHECK(cn_checkpoint_net(ctx, ck, &src) == CN_OK);
    CHECK(cn_net_with_outputs(ctx, src, 4, &tuned) == CN_OK);
    if (!tuned) return;
    CHECK(strstr(cn_net_spec_text(tuned), "; dense 4") != NULL);
    CHECK_INT(layer_at(ctx, tuned, cn_net_layer_count(tuned) - 1, 1).c, 4);
    CHECK(cn_net_init_params(ctx, tuned, CN_INIT_KAIMING_NORMAL, 5) == CN_OK);
    char fresh[64];
    int copied = 0;
    CHECK(cn_checkpoint_load_matching(ctx, ck, tuned, &copied, fresh, sizeof fresh) == CN_OK);
    CHECK_INT(copied, cn_net_tensor_count(src) - 2); /* all but dense1.weight and dense1.bias */
    CHECK_STR(fresh, "dense1");
    cn_tensor a, b;
    CHECK(cn_net_find_tensor(ctx, src, "batchnorm1.running_var", &a) == CN_OK);
    CHECK(cn_net_find_tensor(ctx, tuned, "batchnorm1.running_var", &b) == CN_OK);
    CHECK(a.data && b.data && memcmp(a.data, b.data, (size_t)a.count * sizeof(float)) == 0);
    CHECK(cn_net_find_tensor(ctx, tuned, "dense1.weight", &b) == CN_OK);
    CHECK_INT(b.shape[0], 4);
    /* a net with nothing in common, and one whose last layer is not dense */
    other = parse_spec(ctx, "input 28x28x1; conv 5 5x5; dense 9");
    CHECK(cn_net_init_params(ctx, other, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    CHECK(cn_checkpoint_load_matching(ctx, ck, other, &copied, NULL, 0) == CN_E_SHAPE);
    CHECK_INT(copied, 0);
    cn_net_destroy(other);
    other = parse_spec(ctx, "input 8x8x1; conv 3 3x3; relu");
    cn_net *bad = NULL;
    CHECK(cn_net_with_outputs(ctx, other, 4, &bad) == CN_E_ARG && bad == NULL);
    cn_net_destroy(other);
    other = parse_spec(ctx, "input 8x8x1\nflatten\ndense units=7 bias=no\nsoftmax");
    CHECK(cn_net_with_outputs(ctx, other, 12, &bad) == CN_OK);
    if (bad) CHECK_STR(cn_net_spec_text(bad), "input 8x8x1\nflatten\ndense units=12 bias=no\nsoftmax");
    cn_net_destroy(bad);
    cn_net_destroy(other);
    cn_net_destroy(tuned);
    cn_net_destroy(src);
    cn_checkpoint_destroy(ck);
}

/* a frozen layer keeps its values through steps with momentum and weight decay; in the first
 * step every other value gets the bits it gets with nothing frozen */
static void test_freeze(void)
{
    cn_net *a = parse_spec(ctx, spec), *b = parse_spec(ctx, spec);
    CHECK(cn_net_init_params(ctx, a, CN_INIT_KAIMING_NORMAL, 3) == CN_OK);
    CHECK(cn_net_init_params(ctx, b, CN_INIT_KAIMING_NORMAL, 3) == CN_OK);
    CHECK(cn_net_freeze(ctx, b, "conv1", 1) == CN_OK);
    CHECK(cn_net_frozen(b, 1) && !cn_net_frozen(a, 1));
    CHECK(cn_net_freeze(ctx, b, "relu1", 1) == CN_E_ARG);  /* no weights */
    CHECK(cn_net_freeze(ctx, b, "conv9", 1) == CN_E_ARG);  /* no such layer */
    int64_t n, total;
    float *wa = cn_net_params(a, &n, &total), *wb = cn_net_params(b, NULL, NULL);
    float *before = malloc((size_t)n * sizeof(float));
    if (!before) return;
    memcpy(before, wb, (size_t)n * sizeof(float));
    cn_tensor conv_w;
    CHECK(cn_net_find_tensor(ctx, b, "conv1.weight", &conv_w) == CN_OK);
    int64_t conv_n = 4 * 9 + 4; /* conv1.weight and conv1.bias, first in the slab */
    CHECK(conv_w.data == wb);
    cn_optim_config oc;
    cn_optim_defaults(&oc, CN_OPTIM_NESTEROV);
    oc.weight_decay = 5e-4;
    oc.clip_norm = 0;
    cn_optim *oa = NULL, *ob = NULL;
    CHECK(cn_optim_create(ctx, a, &oc, &oa) == CN_OK && cn_optim_create(ctx, b, &oc, &ob) == CN_OK);
    float mean[4] = { 0 }, std[4] = { 1, 1, 1, 1 };
    cn_dataset_stats(&small, mean, std);
    float *x = malloc(32 * 784 * sizeof(float));
    int32_t labels[32];
    int64_t idx[32];
    for (int i = 0; i < 32; i++) idx[i] = i;
    cn_make_batch(&small, idx, 32, mean, std, 0, 0, NULL, x, labels);
    cn_step_config sc = { cn_net_default_loss(a), 0 };
    double la, lb;
    CHECK(cn_train_step(ctx, a, oa, &sc, x, labels, 32, &la) == CN_OK);
    CHECK(cn_train_step(ctx, b, ob, &sc, x, labels, 32, &lb) == CN_OK);
    CHECK(la == lb);
    CHECK(memcmp(wb, before, (size_t)conv_n * sizeof(float)) == 0);
    CHECK(memcmp(wa, before, (size_t)conv_n * sizeof(float)) != 0);
    CHECK(memcmp(wa + conv_n, wb + conv_n, (size_t)(n - conv_n) * sizeof(float)) == 0);
    CHECK(memcmp(wb + conv_n, before + conv_n, (size_t)(n - conv_n) * sizeof(float)) != 0);
    CHECK(cn_train_step(ctx, b, ob, &sc, x, labels, 32, &lb) == CN_OK);
    CHECK(memcmp(wb, before, (size_t)conv_n * sizeof(float)) == 0);
    /* thawed, it trains again */
    CHECK(cn_net_freeze(ctx, b, "conv1", 0) == CN_OK);
    CHECK(cn_train_step(ctx, b, ob, &sc, x, labels, 32, &lb) == CN_OK);
    CHECK(memcmp(wb, before, (size_t)conv_n * sizeof(float)) != 0);
    free(x), free(before);
    cn_optim_destroy(oa), cn_optim_destroy(ob);
    cn_net_destroy(a), cn_net_destroy(b);
}

/* cn_class_scores on a confusion matrix worked by hand (rows: true class, columns: predicted):
 * class 0 (7 images, 8 predicted, 5 right), 1 (5, 5, 3), 2 (2 images, never predicted), 3 (no
 * images, predicted once), 4 (neither: left out of the averages). By hand: precision 5/8, 3/5,
 * -, 0/1; recall 5/7, 3/5, 0/2, -; F1 10/15, 6/10, 0/2, 0/1; the macro average over the four
 * present, a missing share as 0 (scikit-learn's zero_division): precision (0.625 + 0.6) / 4 =
 * 0.30625, recall (5/7 + 0.6) / 4 = 0.328571..., F1 (2/3 + 0.6) / 4 = 0.316667; weighted by the
 * 14 images: precision (0.625 * 7 + 0.6 * 5) / 14 = 0.526786, recall 8/14 (the accuracy), F1
 * (2/3 * 7 + 0.6 * 5) / 14 = 0.547619 */
static void test_class_scores(void)
{
    int64_t conf[25] = { 5, 1, 0, 1, 0, /**/ 2, 3, 0, 0, 0, /**/ 1, 1, 0, 0, 0, /**/ 0, 0, 0, 0, 0, /**/ 0, 0, 0, 0, 0 };
    cn_eval_result r = { 14, 0, 8.0 / 14, 5, conf };
    cn_class_score s[5], avg[2];
    CHECK(cn_class_scores(ctx, &r, s, avg) == CN_OK);
    const double want[5][3] = { { 0.625, 5.0 / 7, 10.0 / 15 }, { 0.6, 0.6, 0.6 }, { NAN, 0, 0 }, { 0, NAN, 0 }, { NAN, NAN, NAN } };
    const int64_t counts[5][3] = { { 7, 8, 5 }, { 5, 5, 3 }, { 2, 0, 0 }, { 0, 1, 0 }, { 0, 0, 0 } };
    for (int c = 0; c < 5; c++) {
        const double got[3] = { s[c].precision, s[c].recall, s[c].f1 };
        for (int q = 0; q < 3; q++)
            CHECK(isnan(want[c][q]) ? isnan(got[q]) : fabs(got[q] - want[c][q]) < 1e-12);
        CHECK(s[c].support == counts[c][0] && s[c].predicted == counts[c][1] && s[c].correct == counts[c][2]);
    }
    CHECK(fabs(avg[0].precision - 0.30625) < 1e-12 && fabs(avg[0].recall - (5.0 / 7 + 0.6) / 4) < 1e-12 &&
          fabs(avg[0].f1 - (2.0 / 3 + 0.6) / 4) < 1e-12);
    CHECK(fabs(avg[1].precision - (0.625 * 7 + 3.0) / 14) < 1e-12 && fabs(avg[1].recall - 8.0 / 14) < 1e-12 &&
          fabs(avg[1].f1 - (2.0 / 3 * 7 + 3.0) / 14) < 1e-12);
    CHECK(avg[0].support == 14 && avg[1].predicted == 14 && avg[1].correct == 8);
    CHECK(cn_class_scores(ctx, NULL, s, avg) == CN_E_ARG);
    cn_ctx_clear(ctx);
}

static const test_case cases[] = {
    { "setup", setup },
    { "interrupted and resumed = uninterrupted, bit for bit", test_resume_is_bit_identical },
    { "a resumed run's damaged metrics rows dropped, its unreadable best checkpoint replaced", test_resume_damaged_files },
    { "the run learns; evaluation and confusion matrix", test_learns_and_evaluates },
    { "evaluation with views of each image averaged (test-time augmentation)", test_evaluate_tta },
    { "a validation set of its own; the best by validation loss; steps.csv", test_val_set_and_loss_monitor },
    { "fine-tuning: a new last layer, the matching tensors copied", test_fine_tuning },
    { "frozen layers keep their values; the others train as without", test_freeze },
    { "precision, recall and F1 a class from a confusion matrix worked by hand", test_class_scores },
    { "teardown", teardown },
};
TEST_MAIN(cases)
