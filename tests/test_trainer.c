/* test_trainer.c — training runs: a run stopped in the middle of an epoch and resumed from its
 * last checkpoint ends bit-identical to an uninterrupted run (the checkpoint files themselves
 * are byte-identical); metrics.csv has a row per epoch; evaluation counts and the confusion
 * matrix agree; the run learns. Uses the first 1,200 Fashion-MNIST training images. */
#include <stdlib.h>

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
    cn_checkpoint_free(ck);
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
    cn_checkpoint_free(ck);
}

static const test_case cases[] = {
    { "setup", setup },
    { "interrupted and resumed = uninterrupted, bit for bit", test_resume_is_bit_identical },
    { "the run learns; evaluation and confusion matrix", test_learns_and_evaluates },
    { "teardown", teardown },
};
TEST_MAIN(cases)
