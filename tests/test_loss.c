/* test_loss.c — every loss's gradient by central differences, for both reductions (and label
 * smoothing); the learning-rate schedules at hand-worked steps; the initialisers' spread. The
 * predictions are multiples of 2^-8 and the step h = 2^-12, so p +- h is exact in float and
 * the difference quotient is limited only by the loss's curvature (computed in double). */
#include "test_util.h"

static cn_ctx *ctx;
static void setup(void) { CHECK(cn_ctx_create(NULL, &ctx) == CN_OK); }
static void teardown(void) { cn_ctx_destroy(ctx); }

enum { ROWS = 3, COLS = 4 };

static double fd_error(cn_loss_kind kind, cn_reduction red, double smoothing, const float *t, float *p)
{
    float g[ROWS * COLS];
    double loss, worst = 0, scale = 0;
    CHECK(cn_loss_grad(ctx, kind, t, p, ROWS, COLS, red, smoothing, &loss, g) == CN_OK);
    const float h = 1.0f / 4096;
    for (int i = 0; i < ROWS * COLS; i++) {
        float keep = p[i];
        double lp, lm;
        p[i] = keep + h;
        CHECK(cn_loss_grad(ctx, kind, t, p, ROWS, COLS, red, smoothing, &lp, NULL) == CN_OK);
        p[i] = keep - h;
        CHECK(cn_loss_grad(ctx, kind, t, p, ROWS, COLS, red, smoothing, &lm, NULL) == CN_OK);
        p[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        if (fabs(num) > scale) scale = fabs(num);
        if (fabs(num - g[i]) > worst) worst = fabs(num - g[i]);
    }
    return worst / (scale > 0 ? scale : 1);
}

static void test_loss_gradients(void)
{
    /* targets: one-hot rows for ce, 0/1 for bce, +-1 for hinge, a 0/1 mask for dice, reals otherwise */
    static const float onehot[] = { 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0 };
    static const float binary[] = { 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1 };
    static const float sign[] = { 1, -1, 1, 1, -1, -1, 1, -1, 1, 1, -1, 1 };
    static const float real[] = { 0.5f, -1, 2, 0.25f, 1, 0, -0.5f, 3, 0.75f, -2, 1.5f, 0 };
    static const struct { cn_loss_kind kind; const float *t; int probs; double smoothing; } cases[] = {
        { CN_LOSS_MSE, real, 0, 0 },     { CN_LOSS_MAE, real, 0, 0 },       { CN_LOSS_CE, onehot, 1, 0 },
        { CN_LOSS_CE_LOGITS, onehot, 0, 0 }, { CN_LOSS_CE_LOGITS, onehot, 0, 0.1 }, { CN_LOSS_BCE, binary, 1, 0 },
        { CN_LOSS_BCE_LOGITS, binary, 0, 0 }, { CN_LOSS_HINGE, sign, 0, 0 },  { CN_LOSS_DICE, binary, 1, 0 },
    };
    cn_rng rng;
    cn_rng_seed(&rng, 11);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int red = 0; red < 2; red++) {
            float p[ROWS * COLS];
            for (int i = 0; i < ROWS * COLS; i++) {
                /* probabilities in [1/8, 7/8]; scores in [-2, 2], never within h of MAE's and hinge's kinks */
                double u = cn_rng_uniform(&rng);
                p[i] = cases[c].probs ? (float)(32 + (int)(u * 192)) / 256 : (float)((int)(u * 1024) - 512) / 256;
                if (cases[c].kind == CN_LOSS_MAE && p[i] == cases[c].t[i]) p[i] += 1.0f / 256;
                if (cases[c].kind == CN_LOSS_HINGE && p[i] * cases[c].t[i] == 1.0f) p[i] += 1.0f / 256;
            }
            double e = fd_error(cases[c].kind, (cn_reduction)red, cases[c].smoothing, cases[c].t, p);
            printf("  %-10s %-4s smoothing %.1f: max rel err %.2e\n", cn_loss_name(cases[c].kind), red ? "sum" : "mean",
                   cases[c].smoothing, e);
            CHECK(e < 1e-5);
        }
}

static void test_reductions(void)
{
    /* MSE of t = 0 against p = [1, 2; 3, 4]: sum 30, mean 30/4; CE of two samples: mean halves the sum */
    const float t[] = { 0, 0, 0, 0 }, p[] = { 1, 2, 3, 4 };
    double sum, mean;
    CHECK(cn_loss_grad(ctx, CN_LOSS_MSE, t, p, 2, 2, CN_REDUCE_SUM, 0, &sum, NULL) == CN_OK);
    CHECK(cn_loss_grad(ctx, CN_LOSS_MSE, t, p, 2, 2, CN_REDUCE_MEAN, 0, &mean, NULL) == CN_OK);
    CHECK_NEAR(sum, 30, 1e-12);
    CHECK_NEAR(mean, 7.5, 1e-12);
    /* CE from logits [0, 0] with target class 0: ln 2 per sample; smoothing 0.1 leaves it ln 2 */
    const float oh[] = { 1, 0, 1, 0 }, z[] = { 0, 0, 0, 0 };
    CHECK(cn_loss_grad(ctx, CN_LOSS_CE_LOGITS, oh, z, 2, 2, CN_REDUCE_SUM, 0.1, &sum, NULL) == CN_OK);
    CHECK_NEAR(sum, 2 * log(2.0), 1e-7);
    /* with logits [2, 0]: -(0.95 (2 - lse) + 0.05 (0 - lse)), lse = ln(e^2 + 1) */
    const float z2[] = { 2, 0 };
    double lse = log(exp(2.0) + 1.0);
    CHECK(cn_loss_grad(ctx, CN_LOSS_CE_LOGITS, oh, z2, 1, 2, CN_REDUCE_MEAN, 0.1, &mean, NULL) == CN_OK);
    CHECK_NEAR(mean, -(0.95 * (2 - lse) + 0.05 * (0 - lse)), 1e-7);
    /* BCE from a saturated probability is clamped at 100 per value, as PyTorch does */
    const float one[] = { 1 }, zero[] = { 0 };
    CHECK(cn_loss_grad(ctx, CN_LOSS_BCE, one, zero, 1, 1, CN_REDUCE_MEAN, 0, &mean, NULL) == CN_OK);
    CHECK_NEAR(mean, 100, 1e-12);
}

/* Cross-entropy from logits far from 0, against values worked by hand. The logits are floats:
 * 1e17f is 99999998430674944 (1e17 rounded to 24 bits), and the exact losses below are in
 * terms of it. The softmax of three equal logits is 1/3 each at any size, so the loss is ln 3;
 * e^-1e17 is 0 in a double, so [1e17, 0, -1e17] has p = [1, 0, 0] exactly. */
static void test_large_logits(void)
{
    const double ln3 = 1.0986122886681098; /* ln 3 = 1.09861228866810969..., by hand */
    const double big = 1e17f;             /* 99999998430674944 */
    static const float e0[] = { 1, 0, 0 }, e1[] = { 0, 1, 0 }, e2[] = { 0, 0, 1 };
    float g[3];
    double loss, per;
    /* three equal logits: loss ln 3 (the old lse = m + log s lost log 3 and gave 0 at 1e17, and
     * ln 3 only to 1e-7 at 1e9), gradient p - t = [1/3 - 1, 1/3, 1/3] */
    static const float scales[] = { 1e17f, -1e17f, 1e9f, 0.0f };
    for (size_t k = 0; k < sizeof scales / sizeof scales[0]; k++) {
        const float z[] = { scales[k], scales[k], scales[k] };
        CHECK(cn_loss_grad(ctx, CN_LOSS_CE_LOGITS, e0, z, 1, 3, CN_REDUCE_MEAN, 0, &loss, g) == CN_OK);
        CHECK_NEAR(loss, ln3, 1e-12 * ln3);
        CHECK_NEAR(g[0], -2.0 / 3, 1e-7);
        CHECK_NEAR(g[1], 1.0 / 3, 1e-7);
        CHECK_NEAR(g[2], 1.0 / 3, 1e-7);
        /* the worksheet path (convnet calc) */
        CHECK(cn_loss(ctx, CN_LOSS_CE_LOGITS, e0, z, 1, 3, &loss, &per) == CN_OK);
        CHECK_NEAR(loss, ln3, 1e-12 * ln3);
        CHECK_NEAR(per, ln3, 1e-12 * ln3);
        /* smoothing 0.1: t' = [0.9 + 0.1/3, 0.1/3, 0.1/3] sums to 1, so the loss stays ln 3;
         * gradient p - t' = [-0.6, 0.3, 0.3] */
        CHECK(cn_loss_grad(ctx, CN_LOSS_CE_LOGITS, e0, z, 1, 3, CN_REDUCE_MEAN, 0.1, &loss, g) == CN_OK);
        CHECK_NEAR(loss, ln3, 1e-12 * ln3);
        CHECK_NEAR(g[0], -0.6, 1e-7);
        CHECK_NEAR(g[1], 0.3, 1e-7);
        CHECK_NEAR(g[2], 0.3, 1e-7);
    }
    /* [1e17, 0, -1e17]: log p = (z - m) - log(1 + e^-1e17 + e^-2e17) = z - m exactly, so the loss
     * of class j is m - z_j: 0, big and 2 big, each exact; gradient p - t with p = [1, 0, 0] */
    const float z[] = { 1e17f, 0.0f, -1e17f };
    static const struct { const float *t; double loss; float g[3]; } mixed[] = {
        { e0, 0.0, { 0, 0, 0 } },
        { e1, 99999998430674944.0, { 1, -1, 0 } },
        { e2, 199999996861349888.0, { 1, 0, -1 } },
    };
    CHECK(big == 99999998430674944.0 && 2 * big == 199999996861349888.0);
    for (size_t k = 0; k < sizeof mixed / sizeof mixed[0]; k++) {
        CHECK(cn_loss_grad(ctx, CN_LOSS_CE_LOGITS, mixed[k].t, z, 1, 3, CN_REDUCE_MEAN, 0, &loss, g) == CN_OK);
        CHECK(loss == mixed[k].loss);
        for (int j = 0; j < 3; j++) CHECK(g[j] == mixed[k].g[j]);
        CHECK(cn_loss(ctx, CN_LOSS_CE_LOGITS, mixed[k].t, z, 1, 3, &loss, NULL) == CN_OK);
        CHECK(loss == mixed[k].loss);
    }
    /* BCE from logits at +-1e17: max(z,0) - z t + log(1 + e^-|z|) is 0 when the sign agrees with
     * the target and |z| = big when it does not; gradient sigmoid(z) - t */
    const float zb[] = { 1e17f, -1e17f, 1e17f, -1e17f }, tb[] = { 1, 0, 0, 1 }, gb_want[] = { 0, 0, 1, -1 };
    float gb[4];
    CHECK(cn_loss_grad(ctx, CN_LOSS_BCE_LOGITS, tb, zb, 1, 4, CN_REDUCE_SUM, 0, &loss, gb) == CN_OK);
    CHECK(loss == 2 * big);
    for (int j = 0; j < 4; j++) CHECK(gb[j] == gb_want[j]);
}

static void test_schedules(void)
{
    cn_optim_config c;
    cn_optim_defaults(&c, CN_OPTIM_MOMENTUM);
    c.lr = 0.1;
    CHECK_NEAR(cn_optim_lr_at(&c, 0), 0.1, 1e-15);
    CHECK_NEAR(cn_optim_lr_at(&c, 1000), 0.1, 1e-15);
    /* step: 0.1 for steps 0-2, 0.01 for 3-5, 0.001 from 6 (step_size 3, gamma 0.1) */
    c.schedule = CN_SCHED_STEP, c.step_size = 3, c.gamma = 0.1;
    CHECK_NEAR(cn_optim_lr_at(&c, 2), 0.1, 1e-15);
    CHECK_NEAR(cn_optim_lr_at(&c, 3), 0.01, 1e-15);
    CHECK_NEAR(cn_optim_lr_at(&c, 6), 0.001, 1e-15);
    /* warm-up of 4 steps: 0.025, 0.05, 0.075, 0.1, then the schedule counts from 0 */
    c.warmup_steps = 4;
    CHECK_NEAR(cn_optim_lr_at(&c, 0), 0.025, 1e-15);
    CHECK_NEAR(cn_optim_lr_at(&c, 3), 0.1, 1e-15);
    CHECK_NEAR(cn_optim_lr_at(&c, 7), 0.01, 1e-15);
    /* cosine over 10 steps: lr (1 + cos(pi t/10))/2: 0.1 at 0, 0.05 at 5, 0 at 10 */
    c.schedule = CN_SCHED_COSINE, c.warmup_steps = 0, c.total_steps = 10;
    CHECK_NEAR(cn_optim_lr_at(&c, 5), 0.05, 1e-15);
    CHECK_NEAR(cn_optim_lr_at(&c, 10), 0.0, 1e-15);
    /* one-cycle over 100 steps, pct 0.3: starts at lr/25, peaks at step 29 (0.3*100 - 1), ends at
     * lr/25/1e4 at step 99 */
    c.schedule = CN_SCHED_ONECYCLE, c.total_steps = 100;
    CHECK_NEAR(cn_optim_lr_at(&c, 0), 0.004, 1e-15);
    CHECK_NEAR(cn_optim_lr_at(&c, 29), 0.1, 1e-15);
    CHECK_NEAR(cn_optim_lr_at(&c, 99), 0.1 / 25 / 1e4, 1e-15);
}

static void test_initialisers(void)
{
    /* conv 64 3x3 on 32 channels: fan_in 288, fan_out 576; 18,432 weights */
    static const struct { cn_init init; double sd, bound; } inits[] = {
        { CN_INIT_KAIMING_NORMAL, 0.08333333, 0 },  /* sqrt(2/288) = 1/12 */
        { CN_INIT_KAIMING_UNIFORM, 0.08333333, 0.14433757 }, /* bound sqrt(6/288); sd bound/sqrt(3) */
        { CN_INIT_XAVIER_NORMAL, 0.04811252, 0 },   /* sqrt(2/(288 + 576)) */
        { CN_INIT_XAVIER_UNIFORM, 0.04811252, 0.08333333 }, /* sqrt(6/864) */
    };
    for (size_t k = 0; k < sizeof inits / sizeof inits[0]; k++) {
        cn_net *net = parse_spec(ctx, "input 8x8x32; conv 64 3x3");
        if (!net) return;
        CHECK(cn_net_init_params(ctx, net, inits[k].init, 123) == CN_OK);
        cn_tensor w, b;
        CHECK(cn_net_find_tensor(ctx, net, "conv1.weight", &w) == CN_OK);
        CHECK(cn_net_find_tensor(ctx, net, "conv1.bias", &b) == CN_OK);
        double s = 0, sq = 0, mx = 0;
        for (int64_t i = 0; i < w.count; i++) {
            s += w.data[i], sq += (double)w.data[i] * w.data[i];
            if (fabs(w.data[i]) > mx) mx = fabs(w.data[i]);
        }
        double mean = s / (double)w.count, sd = sqrt(sq / (double)w.count - mean * mean);
        CHECK_NEAR(sd, inits[k].sd, 0.02 * inits[k].sd / (inits[k].sd > 1 ? inits[k].sd : 1) + 0.002);
        CHECK(fabs(mean) < 0.05 * inits[k].sd);
        if (inits[k].bound > 0) CHECK(mx <= inits[k].bound && mx > 0.99 * inits[k].bound);
        for (int64_t i = 0; i < b.count; i++) CHECK(b.data[i] == 0.0f);
        cn_net_destroy(net);
    }
    /* batch norm: gamma 1, beta 0, running mean 0, running variance 1 */
    cn_net *bn = parse_spec(ctx, "input 2x2x3; batchnorm");
    if (!bn) return;
    CHECK(cn_net_init_params(ctx, bn, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    const char *names[] = { "batchnorm1.weight", "batchnorm1.bias", "batchnorm1.running_mean", "batchnorm1.running_var" };
    const float want[] = { 1, 0, 0, 1 };
    for (int k = 0; k < 4; k++) {
        cn_tensor t;
        CHECK(cn_net_find_tensor(ctx, bn, names[k], &t) == CN_OK);
        CHECK(t.count == 3 && t.data[2] == want[k]);
        CHECK((t.grad != NULL) == (k < 2));
    }
    cn_net_destroy(bn);
    /* init= of a norm layer: where gamma starts (0: zero_init_residual); beta and the running
     * statistics as ever */
    bn = parse_spec(ctx, "input 2x2x3; batchnorm init=0; layernorm over=channels init=0.5; groupnorm 3 init=-2");
    if (!bn) return;
    CHECK(cn_net_init_params(ctx, bn, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    const char *layer_names[] = { "batchnorm1.weight", "batchnorm1.bias", "batchnorm1.running_var",
                                  "layernorm1.weight", "layernorm1.bias", "groupnorm1.weight" };
    const float starts[] = { 0, 0, 1, 0.5f, 0, -2 };
    for (int k = 0; k < 6; k++) {
        cn_tensor t;
        CHECK(cn_net_find_tensor(ctx, bn, layer_names[k], &t) == CN_OK);
        CHECK(t.count == 3 && t.data[0] == starts[k] && t.data[2] == starts[k]);
    }
    cn_net_destroy(bn);
}

/* sample mean, standard deviation and largest magnitude of a tensor */
static void moments(const cn_tensor *t, double *mean, double *sd, double *mx)
{
    double s = 0, sq = 0;
    *mx = 0;
    for (int64_t i = 0; i < t->count; i++) {
        s += t->data[i], sq += (double)t->data[i] * t->data[i];
        if (fabs(t->data[i]) > *mx) *mx = fabs(t->data[i]);
    }
    *mean = s / (double)t->count, *sd = sqrt(sq / (double)t->count - *mean * *mean);
}

/* init= of a layer draws its weights itself, whatever the net's initializer (xavier here) */
static void test_layer_initialisers(void)
{
    static const struct {
        const char *spec, *tensor;
        double sd, bound; /* bound: the largest magnitude allowed, reached within 1 % (0: none) */
    } cases[] = {
        /* fan_in 288: sqrt(2/288) = 1/12, as test_initialisers' kaiming */
        { "input 8x8x32; conv 64 3x3 init=kaiming", "conv1.weight", 0.08333333, 0 },
        /* the net's (xavier): sqrt(2/(288 + 576)) */
        { "input 8x8x32; conv 64 3x3 init=net", "conv1.weight", 0.04811252, 0 },
        { "input 1x1x500; dense 400 init=normal std=0.02", "dense1.weight", 0.02, 0 },
        /* a unit normal cut at +-2 has std sqrt(1 - 4 phi(2)/(2 Phi(2) - 1)) = 0.87962566 */
        { "input 1x1x500; dense 400 init=trunc-normal std=0.02", "dense1.weight", 0.0175925, 0.04 },
        /* U(-1/sqrt(400), +1/sqrt(400)) = U(-0.05, 0.05): std 0.05/sqrt(3) */
        { "input 1x1x400; dense 300 init=torch", "dense1.weight", 0.02886751, 0.05 },
        /* deconv 8 3x3 on 16 channels: weight (16, 8, 3, 3), fan_in 8*9 = 72 as PyTorch counts it:
         * bound sqrt(6/72) = 0.28867513, std bound/sqrt(3) = 1/6 */
        { "input 4x4x16; deconv 8 3x3 init=kaiming-uniform", "deconv1.weight", 0.16666667, 0.28867513 },
        { "input 1x1x500; dense 400 init=zero", "dense1.weight", 0, 0 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cn_net *net = parse_spec(ctx, cases[k].spec);
        if (!net) return;
        CHECK(cn_net_init_params(ctx, net, CN_INIT_XAVIER_NORMAL, 7) == CN_OK);
        cn_tensor w;
        CHECK(cn_net_find_tensor(ctx, net, cases[k].tensor, &w) == CN_OK);
        double mean, sd, mx;
        moments(&w, &mean, &sd, &mx);
        CHECK_NEAR(sd, cases[k].sd, 0.015 * cases[k].sd);
        CHECK(fabs(mean) <= 0.02 * cases[k].sd);
        if (cases[k].bound > 0) CHECK(mx <= cases[k].bound && mx > 0.99 * cases[k].bound);
        /* a plain normal of 200,000 draws reaches past 4 std */
        if (strstr(cases[k].spec, "=normal")) CHECK(mx > 4 * cases[k].sd);
        cn_net_destroy(net);
    }
    /* init=torch draws the bias too, from the weight's bound 1/sqrt(400); the others start it at 0 */
    cn_net *net = parse_spec(ctx, "input 1x1x400; dense 300 init=torch; dense 5 init=normal");
    if (!net) return;
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 3) == CN_OK);
    cn_tensor b;
    double mean, sd, mx;
    CHECK(cn_net_find_tensor(ctx, net, "dense1.bias", &b) == CN_OK);
    moments(&b, &mean, &sd, &mx);
    CHECK(mx <= 0.05 && mx > 0.04 && sd > 0.02);
    CHECK(cn_net_find_tensor(ctx, net, "dense2.bias", &b) == CN_OK);
    moments(&b, &mean, &sd, &mx);
    CHECK(mx == 0);
    cn_net_destroy(net);
    /* init=net draws the same values as no init= at all */
    cn_net *a = parse_spec(ctx, "input 8x8x3; conv 16 3x3; dense 4");
    cn_net *c = parse_spec(ctx, "input 8x8x3; conv 16 3x3 init=net; dense 4 init=net");
    if (!a || !c) return;
    CHECK(cn_net_init_params(ctx, a, CN_INIT_KAIMING_UNIFORM, 5) == CN_OK);
    CHECK(cn_net_init_params(ctx, c, CN_INIT_KAIMING_UNIFORM, 5) == CN_OK);
    cn_tensor ta, tc;
    CHECK(cn_net_find_tensor(ctx, a, "dense1.weight", &ta) == CN_OK);
    CHECK(cn_net_find_tensor(ctx, c, "dense1.weight", &tc) == CN_OK);
    CHECK(ta.count == tc.count && !memcmp(ta.data, tc.data, (size_t)ta.count * sizeof(float)));
    cn_net_destroy(a);
    cn_net_destroy(c);
    /* the net's torch (weights and biases) draws what init=torch on every layer draws; zero: 0 */
    a = parse_spec(ctx, "input 8x8x3; conv 16 3x3; deconv 4 2x2; dense 4");
    c = parse_spec(ctx, "input 8x8x3; conv 16 3x3 init=torch; deconv 4 2x2 init=torch; dense 4 init=torch");
    if (!a || !c) return;
    CHECK(cn_net_init_params(ctx, a, CN_INIT_TORCH, 9) == CN_OK);
    CHECK(cn_net_init_params(ctx, c, CN_INIT_ZERO, 9) == CN_OK);
    int64_t na, nc;
    float *pa = cn_net_params(a, &na, NULL), *pc = cn_net_params(c, &nc, NULL);
    CHECK(na == nc && na == (16 * 27 + 16) + (16 * 4 * 4 + 4) + (4 * 7 * 7 * 4 + 4));
    CHECK(!memcmp(pa, pc, (size_t)na * sizeof(float)));
    CHECK(cn_net_find_tensor(ctx, a, "conv1.bias", &b) == CN_OK);
    moments(&b, &mean, &sd, &mx);
    CHECK(mx > 0 && mx <= 1 / sqrt(27.0)); /* fan_in 3*3*3 */
    cn_net_destroy(c);
    CHECK(cn_net_init_params(ctx, a, CN_INIT_ZERO, 9) == CN_OK);
    pa = cn_net_params(a, &na, NULL);
    for (int64_t i = 0; i < na; i++) CHECK(pa[i] == 0.0f);
    cn_net_destroy(a);
}

static const test_case cases[] = {
    { "setup", setup },
    { "loss gradients by central differences", test_loss_gradients },
    { "reductions and label smoothing", test_reductions },
    { "cross-entropy of logits at 1e17 and 1e9: ln 3, exact losses, gradients", test_large_logits },
    { "learning-rate schedules", test_schedules },
    { "initialisers", test_initialisers },
    { "a layer's own initialiser (init=)", test_layer_initialisers },
    { "teardown", teardown },
};
TEST_MAIN(cases)
