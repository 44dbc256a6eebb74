/* test_train.c — the training engine end to end: seed 001's XOR computational graph worked by
 * hand (forward, MSE, backward, one update), bit-identical runs from one seed, the NaN tracer,
 * and fmnist-small learning on 2,000 real Fashion-MNIST images. */
#include <stdlib.h>

#include "test_util.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

static cn_ctx *ctx;
static void setup(void) { CHECK(cn_ctx_create(NULL, &ctx) == CN_OK); }
static void teardown(void) { cn_ctx_destroy(ctx); }

static void set_tensor(cn_net *net, const char *name, const float *v, int64_t n)
{
    cn_tensor t;
    CHECK(cn_net_find_tensor(ctx, net, name, &t) == CN_OK);
    CHECK_INT(t.count, n);
    if (t.data && t.count == n) memcpy(t.data, v, (size_t)n * sizeof(float));
}

static cn_tensor tensor(cn_net *net, const char *name)
{
    cn_tensor t;
    CHECK(cn_net_find_tensor(ctx, net, name, &t) == CN_OK);
    return t;
}

/* Seed 001, worksheet 3: XOR with h = relu(W x + c), y = w h + b, MSE over the four samples.
 * The notes' weights: W = [[1, 1], [1, 1]], c = [0, -1] (the notes write the -1 into W's second
 * row; it is h2's bias: "0 + 0 - 1 -> -1"), w = [1, -2], b = 0. */
static const char *xor_spec = "input 1x1x2; dense 2 as hidden; relu; dense 1 as out";
static const float xor_x[] = { 0, 0, 0, 1, 1, 0, 1, 1 }, xor_t[] = { 0, 1, 1, 0 };

static cn_net *xor_net(const float *w_out)
{
    cn_net *net = parse_spec(ctx, xor_spec);
    if (!net) return NULL;
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    const float W[] = { 1, 1, 1, 1 }, c[] = { 0, -1 }, b[] = { 0 };
    set_tensor(net, "hidden.weight", W, 4);
    set_tensor(net, "hidden.bias", c, 2);
    set_tensor(net, "out.weight", w_out, 2);
    set_tensor(net, "out.bias", b, 1);
    return net;
}

/* forward, MSE, backward, one SGD step of lr 0.1 */
static double xor_step(cn_net *net, float *y)
{
    cn_optim_config cfg;
    cn_optim_defaults(&cfg, CN_OPTIM_SGD);
    cfg.lr = 0.1;
    cn_optim *opt = NULL;
    double loss = -1;
    float dy[4];
    CHECK(cn_net_forward(ctx, net, xor_x, 4, 1) == CN_OK);
    memcpy(y, cn_net_output(net, NULL), sizeof dy);
    CHECK(cn_loss_grad(ctx, CN_LOSS_MSE, xor_t, y, 4, 1, CN_REDUCE_MEAN, 0, &loss, dy) == CN_OK);
    cn_net_zero_grad(net);
    CHECK(cn_net_backward(ctx, net, dy) == CN_OK);
    CHECK(cn_optim_create(ctx, net, &cfg, &opt) == CN_OK);
    CHECK(cn_optim_step(ctx, opt, net, NULL) == CN_OK);
    cn_optim_destroy(opt);
    return loss;
}

static void test_xor_notes(void)
{
    /* H = relu([0,-1; 1,0; 1,0; 2,1]) = [0,0; 1,0; 1,0; 2,1]; y = H [1,-2]^T = [0, 1, 1, 0]: XOR, MSE 0,
     * every gradient 0, so the update changes nothing */
    const float w[] = { 1, -2 };
    cn_net *net = xor_net(w);
    if (!net) return;
    float y[4];
    CHECK_NEAR(xor_step(net, y), 0.0, 0);
    for (int i = 0; i < 4; i++) CHECK_NEAR(y[i], xor_t[i], 0);
    cn_tensor g = tensor(net, "hidden.weight");
    for (int i = 0; i < 4; i++) CHECK_NEAR(g.grad[i], 0, 0);
    CHECK_NEAR(tensor(net, "out.weight").data[1], -2, 0);
    cn_net_destroy(net);
}

static void test_xor_by_hand(void)
{
    /* w = [1, -1]: y = [0, 1, 1, 2 - 1] = [0, 1, 1, 1]; MSE = (1 - 0)^2 / 4 = 0.25.
     * dL/dy = 2 (y - t)/4 = [0, 0, 0, 0.5]
     * dL/dw = H^T dL/dy = [2*0.5, 1*0.5] = [1, 0.5]; dL/db = 0.5
     * dL/dh (sample 4) = 0.5 * [1, -1]; both units active there (h = [2, 1]):
     * dL/dW = [[0.5, 0.5], [-0.5, -0.5]] (x4 = [1, 1]); dL/dc = [0.5, -0.5]
     * SGD lr 0.1: w = [0.9, -1.05], b = -0.05, W = [[0.95, 0.95], [1.05, 1.05]], c = [-0.05, -0.95] */
    const float w[] = { 1, -1 };
    cn_net *net = xor_net(w);
    if (!net) return;
    float y[4];
    CHECK_NEAR(xor_step(net, y), 0.25, 1e-7);
    const float want_y[] = { 0, 1, 1, 1 };
    for (int i = 0; i < 4; i++) CHECK_NEAR(y[i], want_y[i], 1e-7);
    cn_tensor ow = tensor(net, "out.weight"), ob = tensor(net, "out.bias"), hw = tensor(net, "hidden.weight"),
              hb = tensor(net, "hidden.bias");
    CHECK_NEAR(ow.grad[0], 1.0, 1e-7);
    CHECK_NEAR(ow.grad[1], 0.5, 1e-7);
    CHECK_NEAR(ob.grad[0], 0.5, 1e-7);
    const float dW[] = { 0.5f, 0.5f, -0.5f, -0.5f }, W1[] = { 0.95f, 0.95f, 1.05f, 1.05f };
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(hw.grad[i], dW[i], 1e-7);
        CHECK_NEAR(hw.data[i], W1[i], 1e-6);
    }
    CHECK_NEAR(hb.grad[0], 0.5, 1e-7);
    CHECK_NEAR(hb.grad[1], -0.5, 1e-7);
    CHECK_NEAR(ow.data[0], 0.9, 1e-6);
    CHECK_NEAR(ow.data[1], -1.05, 1e-6);
    CHECK_NEAR(ob.data[0], -0.05, 1e-6);
    CHECK_NEAR(hb.data[0], -0.05, 1e-6);
    CHECK_NEAR(hb.data[1], -0.95, 1e-6);
    cn_net_destroy(net);
}

/* the gradient-descent step of seed 004: w = 0.5 - 0.01 * 0.3 = 0.497 */
static void test_seed004_update(void)
{
    cn_net *net = parse_spec(ctx, "input 1x1x1; dense 1 bias=no");
    if (!net) return;
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    cn_tensor t = tensor(net, "dense1.weight");
    t.data[0] = 0.5f;
    t.grad[0] = 0.3f;
    cn_optim_config cfg;
    cn_optim_defaults(&cfg, CN_OPTIM_SGD);
    cfg.lr = 0.01;
    cn_optim *opt;
    CHECK(cn_optim_create(ctx, net, &cfg, &opt) == CN_OK);
    CHECK(cn_optim_step(ctx, opt, net, NULL) == CN_OK);
    CHECK_NEAR(t.data[0], 0.497, 1e-7);
    cn_optim_destroy(opt);
    cn_net_destroy(net);
}

/* a few steps of a net with every stochastic part; returns the parameters (malloc'ed) */
static float *run_steps(uint64_t seed, int64_t *count)
{
    cn_net *net = parse_spec(ctx, "input 8x8x1; conv 4 3x3 pad=1; batchnorm; relu; maxpool 2x2; dropout keep=0.7;"
                                  "dense 3");
    if (!net) return NULL;
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, seed) == CN_OK);
    cn_optim_config cfg;
    cn_optim_defaults(&cfg, CN_OPTIM_ADAM);
    cn_optim *opt;
    CHECK(cn_optim_create(ctx, net, &cfg, &opt) == CN_OK);
    cn_step_config sc = { cn_net_default_loss(net), 0.1 };
    float x[4 * 64];
    int32_t labels[4] = { 0, 1, 2, 1 };
    cn_rng data;
    cn_rng_seed(&data, 99);
    for (int s = 0; s < 5; s++) {
        for (int i = 0; i < 4 * 64; i++) x[i] = (float)cn_rng_normal(&data);
        double loss;
        CHECK(cn_train_step(ctx, net, opt, &sc, x, labels, 4, &loss) == CN_OK);
    }
    int64_t total;
    const float *p = cn_net_params(net, NULL, &total);
    float *copy = malloc((size_t)total * sizeof(float));
    if (copy) memcpy(copy, p, (size_t)total * sizeof(float));
    *count = total;
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    return copy;
}

static void test_same_seed_same_run(void)
{
    int64_t na = 0, nb = 0, nc = 0;
    float *a = run_steps(5, &na), *b = run_steps(5, &nb), *c = run_steps(6, &nc);
    CHECK(a && b && c && na == nb && na == nc);
    if (a && b && c) {
        CHECK(memcmp(a, b, (size_t)na * sizeof(float)) == 0); /* bit-identical */
        CHECK(memcmp(a, c, (size_t)na * sizeof(float)) != 0);
    }
    free(a), free(b), free(c);
}

/* an SGD optimizer for a net, freed at the next call */
static cn_optim *opt2_for(cn_net *net)
{
    static cn_optim *last;
    cn_optim_destroy(last);
    last = NULL;
    cn_optim_config cfg;
    cn_optim_defaults(&cfg, CN_OPTIM_SGD);
    CHECK(cn_optim_create(ctx, net, &cfg, &last) == CN_OK);
    return last;
}

static void test_nan_tracer(void)
{
    cn_net *net = parse_spec(ctx, "input 4x4x1\nconv 2 3x3 pad=1\nrelu\nconv 2 3x3 pad=1 as second\nflatten\ndense 3");
    if (!net) return;
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 3) == CN_OK);
    cn_optim_config cfg;
    cn_optim_defaults(&cfg, CN_OPTIM_SGD);
    cn_optim *opt;
    CHECK(cn_optim_create(ctx, net, &cfg, &opt) == CN_OK);
    cn_step_config sc = { CN_LOSS_CE_LOGITS, 0 };
    float x[2 * 16];
    int32_t labels[2] = { 0, 2 };
    for (int i = 0; i < 32; i++) x[i] = (float)(i % 5) - 2.0f;
    double loss;
    /* an input that overflows float in the first convolution: conv1, forward, with its input */
    x[5] = 3e38f;
    x[6] = 3e38f;
    CHECK(cn_train_step(ctx, net, opt, &sc, x, labels, 2, &loss) == CN_E_NUMERIC);
    CHECK_CONTAINS(cn_ctx_message(ctx), "t.cnn:2:1: conv 'conv1' produced a non-finite output in the forward pass");
    CHECK_CONTAINS(cn_ctx_message(ctx), "its input: min -2, max 3e+38");
    /* a weight that is already NaN: named as the parameter */
    x[5] = x[6] = 0;
    cn_tensor t = tensor(net, "second.weight");
    t.data[3] = NAN;
    CHECK(cn_train_step(ctx, net, opt, &sc, x, labels, 2, &loss) == CN_E_NUMERIC);
    CHECK_CONTAINS(cn_ctx_message(ctx), "t.cnn:4:1: conv 'second': parameter second.weight holds a non-finite value");
    /* the backward pass: an output gradient of 3e38 through weights of 10 overflows in 'last' */
    cn_net *two = parse_spec(ctx, "input 1x1x2\ndense 2\ndense 2 as last");
    if (two) {
        CHECK(cn_net_init_params(ctx, two, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
        cn_tensor w = tensor(two, "last.weight");
        for (int i = 0; i < 4; i++) w.data[i] = 10;
        const float in[] = { 1, 1 }, dy[] = { 3e38f, 1 };
        CHECK(cn_net_trace_nonfinite(ctx, two, in, 1, dy, 1, NULL) == CN_E_NUMERIC);
        CHECK_CONTAINS(cn_ctx_message(ctx), "t.cnn:3:1: dense 'last' produced a non-finite input gradient in the backward "
                                            "pass; its output gradient: min 1, max 3e+38");
        cn_net_destroy(two);
    }
    /* a softmax probability far below 1e-12: cross-entropy's gradient -t/p is taken at
     * p >= 1e-12, as BCE does it (it overflowed a float before), so the step goes on. By hand:
     * z = (45, -45), p_label = e^-90 / (1 + e^-90) = 8.2e-40 (a subnormal float), loss
     * -ln p_label = 90 */
    cn_net *sm = parse_spec(ctx, "input 1x1x2\ndense 2 bias=no\nsoftmax");
    if (sm) {
        CHECK(cn_net_init_params(ctx, sm, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
        cn_tensor w = tensor(sm, "dense1.weight");
        const float wv[] = { 45, 0, -45, 0 }, in[] = { 1, 0 };
        memcpy(w.data, wv, sizeof wv);
        cn_step_config ce = { cn_net_default_loss(sm), 0 };
        int32_t label = 1;
        CHECK(ce.loss == CN_LOSS_CE);
        CHECK(cn_train_step(ctx, sm, opt2_for(sm), &ce, in, &label, 1, &loss) == CN_OK);
        CHECK(fabs(loss - 90.0) < 1e-3);
        cn_net_destroy(sm);
    }
    cn_optim_destroy(opt);
    cn_net_destroy(net);
}

/* fmnist-small on the first 2,000 training images: the loss halves within 300 steps */
static void test_fmnist_learns(void)
{
    cn_dataset ds;
    if (cn_dataset_load_mnist(ctx, FMNIST, 1, &ds) != CN_OK) {
        test_fail(__FILE__, __LINE__, "%s (make check installs dataset-fashion-mnist)", cn_ctx_message(ctx));
        return;
    }
    cn_net *net = NULL;
    CHECK(cn_net_load_spec(ctx, "models/fmnist-small.cnn", &net) == CN_OK);
    if (!net) {
        cn_dataset_free(ctx, &ds);
        return;
    }
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 42) == CN_OK);
    cn_optim_config cfg;
    cn_optim_defaults(&cfg, CN_OPTIM_MOMENTUM);
    cfg.lr = 0.02;
    cn_optim *opt;
    CHECK(cn_optim_create(ctx, net, &cfg, &opt) == CN_OK);
    cn_step_config sc = { cn_net_default_loss(net), 0 };
    enum { N = 2000, B = 32, STEPS = 300, AVG = 25 };
    double first = 0, last = 0;
    for (int s = 0; s < STEPS; s++) {
        int64_t start = (int64_t)s * B % (N - B + 1);
        double loss = 0;
        if (cn_train_step(ctx, net, opt, &sc, ds.images + start * 784, ds.labels + start, B, &loss) != CN_OK) {
            test_fail(__FILE__, __LINE__, "step %d: %s", s, cn_ctx_message(ctx));
            break;
        }
        if (s < AVG) first += loss / AVG;
        if (s >= STEPS - AVG) last += loss / AVG;
    }
    printf("fmnist-small, 2,000 images: mean loss of the first %d steps %.4f, of the last %d %.4f\n", AVG, first, AVG,
           last);
    CHECK(first > 1.0);      /* it starts near ln 10 = 2.3 */
    CHECK(last < first / 2); /* and halves */
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    cn_dataset_free(ctx, &ds);
}

/* ---- no allocation inside a training step -------------------------------------------------- */

static int64_t allocations;

static void *count_malloc(void *user, size_t size) { (void)user; allocations++; return malloc(size); }
static void *count_realloc(void *user, void *ptr, size_t size) { (void)user; allocations++; return realloc(ptr, size); }
static void count_free(void *user, void *ptr) { (void)user; free(ptr); }

/* Activations, gradients, workspace and the optimizer's state are planned by the first step at
 * a batch size; the steps after it allocate nothing, on any number of threads. */
static void test_no_allocation_in_step(void)
{
    static const char *spec = "input 12x12x3; conv 8 3x3 pad=1; batchnorm; relu; maxpool 2x2; conv 16 3x3 stride=2 "
                              "pad=same; relu; dropout keep=0.8; flatten; dense 10";
    cn_allocator counting = { count_malloc, count_realloc, count_free, NULL };
    cn_ctx *cx;
    CHECK(cn_ctx_create(&counting, &cx) == CN_OK);
    cn_net *net = parse_spec(cx, spec);
    cn_optim_config oc;
    cn_optim_defaults(&oc, CN_OPTIM_ADAM);
    cn_optim *opt = NULL;
    if (!net || cn_net_init_params(cx, net, CN_INIT_KAIMING_NORMAL, 3) != CN_OK ||
        cn_optim_create(cx, net, &oc, &opt) != CN_OK) {
        CHECK(0);
        cn_net_destroy(net);
        cn_ctx_destroy(cx);
        return;
    }
    float x[8 * 12 * 12 * 3];
    int32_t labels[8];
    cn_rng rng;
    cn_rng_seed(&rng, 9);
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] = (float)cn_rng_normal(&rng);
    for (int i = 0; i < 8; i++) labels[i] = i % 10;
    cn_step_config sc = { CN_LOSS_CE_LOGITS, 0.1 };
    double loss;
    for (int threads = 1; threads <= 2; threads++) {
        cn_set_threads(threads);
        CHECK(cn_train_step(cx, net, opt, &sc, x, labels, 8, &loss) == CN_OK); /* plans */
        int64_t before = allocations;
        for (int s = 0; s < 3; s++) CHECK(cn_train_step(cx, net, opt, &sc, x, labels, 8, &loss) == CN_OK);
        CHECK_INT(allocations - before, 0);
    }
    cn_set_threads(1);
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    cn_ctx_destroy(cx);
}

/* cn_train, cn_train_check and cn_evaluate take an output of one score per class (1x1xK, K at
 * least the data's classes) and nothing else, before any work: a map's values were taken for
 * classes of their own (a 4x4x3 output: 48 "classes") */
static void test_output_scores_classes(void)
{
    static float images[32 * 16];
    static int32_t labels[32];
    for (int i = 0; i < 32; i++) labels[i] = i % 3;
    cn_dataset ds = { .count = 32, .c = 1, .h = 4, .w = 4, .images = images, .labels = labels, .classes = 3 };
    cn_train_config cfg;
    cn_train_defaults(&cfg);
    cfg.batch = 8, cfg.epochs = 1;
    cn_train_summary sum;
    cn_eval_result er;
    cn_net *map = parse_spec(ctx, "input 4x4x1\nconv 3 3x3 pad=1"), *wide = parse_spec(ctx, "input 4x4x1\nconv 5 1x1");
    cn_net *few = parse_spec(ctx, "input 4x4x1\nflatten\ndense 2"), *more = parse_spec(ctx, "input 4x4x1\nconv 5 4x4");
    if (!map || !wide || !few || !more) return;
    CHECK(cn_train_check(ctx, map, &ds, &cfg) == CN_E_SHAPE);
    CHECK_CONTAINS(cn_ctx_message(ctx), "t.cnn:2:1: the net's output, conv1, is a map (4x4x3), not one score per class: "
                                        "end the net with 'globalavgpool' (the data has 3 classes)");
    CHECK(cn_train(ctx, map, &ds, &cfg, &sum) == CN_E_SHAPE);
    CHECK(cn_net_init_params(ctx, map, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    CHECK(cn_evaluate(ctx, map, &ds, NULL, NULL, 8, &er) == CN_E_SHAPE);
    CHECK_CONTAINS(cn_ctx_message(ctx), "is a map (4x4x3)");
    CHECK(cn_train_check(ctx, wide, &ds, &cfg) == CN_E_SHAPE);
    CHECK_CONTAINS(cn_ctx_message(ctx), "conv1, is a map (4x4x5), not one score per class: end the net with 'dense 3'");
    CHECK(cn_train_check(ctx, few, &ds, &cfg) == CN_E_SHAPE);
    CHECK_CONTAINS(cn_ctx_message(ctx), "t.cnn:3:1: the net's output, dense1, has 2 scores, fewer than the data's 3 "
                                        "classes (labels 0 to 2)");
    CHECK(cn_net_check_classes(ctx, few, 2) == CN_OK);
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_OK); /* 1x1x5: two scores no label asks for, as PyTorch allows */
    cfg.batch = 64;
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "29 training images are fewer than one batch of 64: a batch of at most 29 (--batch)");
    /* one class only: nothing to tell apart */
    cfg.batch = 8;
    for (int i = 0; i < 32; i++) labels[i] = 2;
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "every training image is of one class, 2: a classifier needs images of two "
                                        "classes or more");
    labels[31] = 0;
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_OK);
    /* label smoothing: on logits only, and below 1 */
    cn_net *soft = parse_spec(ctx, "input 4x4x1\nflatten\ndense 3\nsoftmax");
    cfg.label_smoothing = 0.1;
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_OK);
    if (soft) CHECK(cn_train_check(ctx, soft, &ds, &cfg) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "label smoothing needs the net's logits, and this net ends in softmax");
    cfg.label_smoothing = 1;
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "label smoothing 1: it must lie in [0, 1)");
    cn_net_destroy(soft);
    /* the optimizer's settings, each named (cn_optim_create makes the same checks) */
    cfg.label_smoothing = 0;
    cfg.optim.momentum = 2;
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "optimizer: momentum 2: it must be >= 0 and below 1");
    cfg.optim.momentum = 0.9, cfg.optim.lr = -1;
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "optimizer: lr -1: it must be > 0, and below float's largest, 3.4e38");
    cfg.optim.lr = INFINITY;
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_E_ARG);
    /* finite as a double, but no float: the first update would overflow */
    cfg.optim.lr = 0.05, cfg.optim.weight_decay = 1e39;
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "optimizer: weight decay 1e+39");
    cfg.optim.weight_decay = 3e38;
    cn_optim_config planned = cfg.optim;
    CHECK(cn_optim_config_check(ctx, &planned) == CN_E_ARG); /* one-cycle, without its steps */
    CHECK_CONTAINS(cn_ctx_message(ctx), "need the total number of steps");
    planned.total_steps = 10;
    CHECK(cn_optim_config_check(ctx, &planned) == CN_OK); /* the largest floats pass */
    cfg.optim.weight_decay = 5e-4;
    cfg.optim.lr = 0.05, cfg.optim.clip_norm = NAN;
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "optimizer: clip nan");
    cfg.optim.clip_norm = 0;
    CHECK(cn_train_check(ctx, more, &ds, &cfg) == CN_OK);
    cn_net_destroy(map), cn_net_destroy(wide), cn_net_destroy(few), cn_net_destroy(more);
}

static const test_case cases[] = {
    { "setup", setup },
    { "seed001 XOR graph as in the notes", test_xor_notes },
    { "seed001 XOR graph, a step by hand", test_xor_by_hand },
    { "seed004 gradient descent step", test_seed004_update },
    { "same seed, bit-identical run", test_same_seed_same_run },
    { "NaN tracer", test_nan_tracer },
    { "fmnist-small loss halves in 300 steps", test_fmnist_learns },
    { "no allocation inside a training step", test_no_allocation_in_step },
    { "the output scores the classes", test_output_scores_classes },
    { "teardown", teardown },
};
TEST_MAIN(cases)
