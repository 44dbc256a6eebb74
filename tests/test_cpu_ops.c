/* test_cpu_ops.c — the CPU backend's kernels for pooling, activations, batch norm, softmax,
 * dropout, add, concat and flatten (src/backend/cpu/: the kernel table in cpu.c and the family files) against the
 * reference kernels of src/ops: the same net runs forward and backward on both backends from the
 * same weights, input and dropout stream, over shapes with odd sizes and remainders, padding,
 * ceil windows, strides unlike the window, and inputs full of ties. Where the fast kernel does
 * the reference's arithmetic (pooling, relu, leakyrelu, dropout, add, mul, concat, flatten,
 * upsample, pad, crop) the
 * results must be equal; elsewhere within 1e-5 relative (max |a - b| / max |b| per tensor).
 * Training steps (no input gradient, the loss of src/train/loss.c, the updates of optim.c) must
 * agree the same way. Then a net of every op, the loss over many rows and the update of a large
 * slab must give the same bits on 1, 2 and 3 threads. */
#include <stdlib.h>

#include "../src/core/sum_impl.h"
#include "../src/model/model_impl.h"
#include "test_util.h"

static cn_ctx *ctx;

typedef enum { IN_NORMAL, IN_TIES, IN_WIDE } input_kind;

/* what one run leaves: output, input gradient, parameter gradients, all parameters (BN's
 * running statistics included), malloc'ed */
typedef struct {
    float *y, *dx, *dw, *params;
    int64_t ny, nx, nw, np;
} run_result;

static void result_free(run_result *r) { free(r->y), free(r->dx), free(r->dw), free(r->params); }

static float *copy_of(const float *p, int64_t n)
{
    float *c = malloc((size_t)(n ? n : 1) * sizeof(float));
    memcpy(c, p, (size_t)n * sizeof(float));
    return c;
}

/* N(0,1); ties: multiples of 0.5 in [-2, 2] (equal values in most windows, zeros for relu);
 * wide: N(0, 8^2), saturating sigmoid and tanh */
static float draw(cn_rng *rng, input_kind kind)
{
    double v = cn_rng_normal(rng);
    if (kind == IN_TIES) {
        double q = floor(v * 2.0 + 0.5) / 2.0;
        return (float)(q > 2 ? 2 : q < -2 ? -2 : q);
    }
    return (float)(kind == IN_WIDE ? 8.0 * v : v);
}

/* Runs spec on backend be: with `eval`, one training forward first (moving BN's running
 * statistics), then forward and backward in evaluation mode; else forward and backward training. */
static run_result run(const char *spec, const cn_backend *be, int64_t batch, input_kind kind, int eval)
{
    run_result r = { 0 };
    cn_net *net = parse_spec(ctx, spec);
    if (!net) return r;
    cn_net_set_backend(net, be);
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 77) == CN_OK);
    cn_layer_info in = layer_at(ctx, net, 0, 1);
    r.nx = in.c * in.h * in.w * batch;
    float *x = malloc((size_t)r.nx * sizeof(float));
    cn_rng rng;
    cn_rng_seed(&rng, 5);
    for (int64_t i = 0; i < r.nx; i++) x[i] = draw(&rng, kind);
    if (eval) CHECK(cn_net_forward(ctx, net, x, batch, 1) == CN_OK);
    CHECK(cn_net_forward(ctx, net, x, batch, !eval) == CN_OK);
    const float *out = cn_net_output(net, &r.ny);
    r.y = copy_of(out, r.ny);
    float *g = malloc((size_t)r.ny * sizeof(float));
    for (int64_t i = 0; i < r.ny; i++) g[i] = draw(&rng, kind == IN_TIES ? IN_TIES : IN_NORMAL);
    cn_net_zero_grad(net);
    CHECK(cn_net_backward(ctx, net, g) == CN_OK);
    r.dx = copy_of(cn_net_input_grad(net), r.nx);
    const float *grads = cn_net_grads(net, &r.nw), *params = cn_net_params(net, NULL, &r.np);
    r.dw = copy_of(grads, r.nw);
    r.params = copy_of(params, r.np);
    free(g);
    free(x);
    cn_net_destroy(net);
    return r;
}

/* max |a - b| / max |b|: 0 when equal, infinite where one is NaN */
static double rel(const float *a, const float *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (isnan(e)) return INFINITY;
        if (e > d) d = e;
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return s > 0 ? d / s : d;
}

/* the fast kernels against the reference: equal when `exact`, else within 1e-5 */
static void compare(const char *spec, int64_t batch, input_kind kind, int eval, int exact)
{
    run_result a = run(spec, cn_backend_reference(), batch, kind, eval);
    run_result b = run(spec, cn_backend_default(), batch, kind, eval);
    if (a.y && b.y) {
        CHECK(a.ny == b.ny && a.nx == b.nx && a.nw == b.nw && a.np == b.np);
        double ey = rel(b.y, a.y, a.ny), ex = rel(b.dx, a.dx, a.nx), ew = rel(b.dw, a.dw, a.nw),
               ep = rel(b.params, a.params, a.np);
        double tol = exact ? 0 : 1e-5;
        if (!(ey <= tol && ex <= tol && ew <= tol && ep <= tol))
            test_fail(__FILE__, __LINE__, "%s (batch %lld, input %d%s): y %.1e dx %.1e dw %.1e params %.1e, tolerance %g",
                      spec, (long long)batch, (int)kind, eval ? ", eval" : "", ey, ex, ew, ep, tol);
    }
    result_free(&a);
    result_free(&b);
}

/* each spec against the reference to the bit, on inputs full of ties (batch 3) and normal (batch 2) */
static void compare_exact(const char *const *specs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        compare(specs[i], 3, IN_TIES, 0, 1);
        compare(specs[i], 2, IN_NORMAL, 0, 1);
    }
}

static void test_pooling(void)
{
    static const char *geometries[] = {
        "input 8x8x3; %s 2x2",                          /* the 2x2 stride-2 path */
        "input 9x11x5; %s 2x2",                         /* odd sizes: the last row and column unused */
        "input 9x11x5; %s 2x2 ceil=yes",                /* a ceil window overhangs: general path */
        "input 10x13x4; %s 3x3 stride=2 pad=1",
        "input 7x7x2; %s 3x3 stride=1 pad=1",           /* overlapping windows */
        "input 11x9x3; %s 3x2 stride=2x3 pad=1x1 ceil=yes",
        "input 7x7x2; %s 3x3 stride=2 pad=same",
        "input 6x5x3; %s 2x2 stride=1",
        "input 5x5x1; %s 5x5",
        "input 40x40x16; %s 2x2",                         /* enough for threads */
        "input 33x35x16; %s 3x3 stride=2 pad=1",         /* enough for threads */
        "input 40x80x2; %s 3x3 stride=1 pad=1",          /* average pooling's tiles: several rows each */
        "input 3x4200x1; %s 2x3 stride=1x2 pad=1 ceil=yes", /* rows longer than a tile */
    };
    static const char *ops[] = { "maxpool", "minpool", "avgpool" };
    char spec[160];
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (size_t g = 0; g < sizeof geometries / sizeof geometries[0]; g++) {
            snprintf(spec, sizeof spec, geometries[g], ops[o]);
            compare(spec, 3, IN_TIES, 0, 1);
            compare(spec, 2, IN_NORMAL, 0, 1);
        }
    /* dilated max and min pooling (2x2 of stride 2 dilated leaves the fast path); average pooling
     * that leaves the padding out of its divisor */
    static const char *more[] = {
        "input 9x9x3; maxpool 2x2 dilation=2",
        "input 11x12x3; maxpool 3x3 stride=2 pad=1 dilation=2 ceil=yes",
        "input 33x35x16; minpool 3x2 stride=1 pad=1 dilation=3x2",
        "input 10x13x4; avgpool 3x3 stride=2 pad=1 count_pad=no",
        "input 11x9x3; avgpool 3x2 stride=2x3 pad=1x1 ceil=yes count_pad=no",
        "input 33x35x16; avgpool 3x3 stride=1 pad=1 count_pad=no",
        /* the relu read by the 2x2 maxpool's pass, forward and backward (odd sizes; rows of 35
         * outputs: vectors of 16 and a rest) and rows of exactly 32 outputs */
        "input 9x11x5; relu; maxpool 2x2",
        "input 40x70x3; relu; maxpool 2x2",
        "input 6x64x2; maxpool 2x2",
        "input 6x64x2; minpool 2x2",
        /* x's gradient from the 2x2 maxpool and from the add: one of them adds to the other's */
        "input 8x10x3 as x; maxpool 2x2 from x as a; upsample 2 from a as u; add u x",
    };
    compare_exact(more, sizeof more / sizeof more[0]);
    compare("input 7x5x6; globalavgpool", 3, IN_NORMAL, 0, 0);
    compare("input 1x1x3; globalavgpool", 2, IN_NORMAL, 0, 0);
    compare("input 31x29x40; globalavgpool", 2, IN_TIES, 0, 0);
}

/* gelu's float kernels value by value over x in [-14, 14] (steps of 1/1024) against the
 * reference's double: within 1e-6 of max(1, |value|) for f and for f' (dy = 1); the reference's
 * own 1 + erf(x / sqrt 2) loses its digits below x = -8, where both are below 1e-15 */
static void test_gelu_sweep(void)
{
    enum { N = 28 * 1024 + 1 };
    static float x[N], ones[N];
    for (int i = 0; i < N; i++) x[i] = -14.0f + (float)i / 1024.0f, ones[i] = 1.0f;
    for (int form = 0; form < 2; form++) {
        char spec[64];
        snprintf(spec, sizeof spec, "input 1x1x%d; gelu approximate=%s", N, form ? "tanh" : "none");
        float *y[2] = { NULL, NULL }, *dx[2] = { NULL, NULL };
        for (int b = 0; b < 2; b++) {
            cn_net *net = parse_spec(ctx, spec);
            if (!net) return;
            cn_net_set_backend(net, b ? cn_backend_default() : cn_backend_reference());
            CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 1) == CN_OK);
            CHECK(cn_net_forward(ctx, net, x, 1, 1) == CN_OK);
            int64_t n = 0;
            y[b] = copy_of(cn_net_output(net, &n), N);
            CHECK(n == N);
            cn_net_zero_grad(net);
            CHECK(cn_net_backward(ctx, net, ones) == CN_OK);
            dx[b] = copy_of(cn_net_input_grad(net), N);
            cn_net_destroy(net);
        }
        double worst_y = 0, worst_dx = 0;
        for (int i = 0; i < N; i++) {
            double ey = fabs((double)y[1][i] - y[0][i]) / fmax(1.0, fabs(y[0][i]));
            double ed = fabs((double)dx[1][i] - dx[0][i]) / fmax(1.0, fabs(dx[0][i]));
            worst_y = fmax(worst_y, ey), worst_dx = fmax(worst_dx, ed);
        }
        if (!(worst_y <= 1e-6 && worst_dx <= 1e-6))
            test_fail(__FILE__, __LINE__, "%s: f %.2e, f' %.2e from the reference", spec, worst_y, worst_dx);
        for (int b = 0; b < 2; b++) free(y[b]), free(dx[b]);
    }
}

static void test_activations(void)
{
    static const char *shapes[] = { "input 13x7x3; %s", "input 1x1x5; %s", "input 64x64x5; %s" };
    static const struct { const char *op; int exact; } acts[] = {
        { "relu", 1 }, { "leakyrelu", 1 }, { "leakyrelu slope=0.3", 1 }, { "sigmoid", 0 }, { "tanh", 0 },
        { "relu6", 1 }, { "hardsigmoid", 1 }, { "hardswish", 1 }, { "silu", 0 }, { "gelu", 0 },
        { "gelu approximate=tanh", 0 }, { "elu", 1 }, { "elu alpha=0.3", 1 }, { "prelu", 1 },
        { "scale init=0.3", 1 },
    };
    char spec[160];
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            snprintf(spec, sizeof spec, shapes[s], acts[a].op);
            compare(spec, 3, IN_NORMAL, 0, acts[a].exact);
            compare(spec, 2, IN_TIES, 0, acts[a].exact);
            compare(spec, 2, IN_WIDE, 0, acts[a].exact);
        }
}

/* layernorm, groupnorm, instancenorm: the reference's bits (its sums in its order) */
static void test_norms(void)
{
    static const char *specs[] = {
        "input 9x7x6; groupnorm 3",
        "input 9x7x6; groupnorm 2 affine=no eps=1e-3",
        "input 9x7x5; instancenorm",
        "input 9x7x5; instancenorm affine=yes",
        "input 9x7x5; layernorm",
        "input 9x7x5; layernorm affine=no",
        "input 1x1x7; layernorm",                       /* the shape after a dense layer: (C) tensors */
        "input 1x1x8; groupnorm 8 affine=yes",          /* one value per group: variance 0 */
        "input 30x30x40; groupnorm 8",                  /* enough for threads */
        "input 30x30x40; layernorm",
        "input 30x30x40; instancenorm affine=yes",
        "input 9x7x5; layernorm over=channels",
        "input 9x7x5; layernorm over=channels affine=no",
        "input 1x1x7; layernorm over=channels",
        "input 9x7x1; layernorm over=channels",         /* one channel: variance 0 */
        "input 30x30x40; layernorm over=channels",      /* threads, and runs of 64 positions and a part */
        "input 13x11x96; layernorm over=channels eps=1e-6",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        compare(specs[i], 3, IN_NORMAL, 0, 1);
        compare(specs[i], 2, IN_WIDE, 1, 1);
        compare(specs[i], 2, IN_TIES, 0, 1);
    }
}

static void test_batchnorm(void)
{
    static const char *specs[] = {
        "input 9x7x5; batchnorm",
        "input 1x1x13; batchnorm",                      /* after a dense layer: one value per plane */
        "input 5x5x3; batchnorm momentum=0.3 eps=1e-3",
        "input 30x30x40; batchnorm",                    /* enough for threads */
        "input 6x6x4; batchnorm; relu; batchnorm",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        compare(specs[i], 3, IN_NORMAL, 0, 0);
        compare(specs[i], 3, IN_NORMAL, 1, 0);
        compare(specs[i], 2, IN_WIDE, 0, 0);
    }
    compare("input 1x1x4; batchnorm", 1, IN_NORMAL, 0, 0); /* one value per channel: variance 0 */
}

static void test_softmax(void)
{
    compare("input 1x1x10; softmax", 7, IN_NORMAL, 0, 0);
    compare("input 1x1x10; softmax", 7, IN_WIDE, 0, 0);
    compare("input 5x3x7; softmax", 3, IN_NORMAL, 0, 0);
    compare("input 9x9x4; softmax", 3, IN_WIDE, 0, 0);  /* 81 positions: a block and a remainder */
    compare("input 1x1x1000; softmax", 40, IN_NORMAL, 0, 0);
    compare("input 16x16x200; softmax", 2, IN_TIES, 0, 0);
}

static void test_dropout(void)
{
    compare("input 9x7x5; dropout keep=0.7", 3, IN_NORMAL, 0, 1);
    compare("input 9x7x5; dropout keep=0.7", 3, IN_NORMAL, 1, 1);
    compare("input 3x3x3; dropout keep=1", 2, IN_NORMAL, 0, 1);
    compare("input 64x64x4; dropout keep=0.5; relu; dropout keep=0.9", 3, IN_NORMAL, 0, 1);
}

static void test_merge(void)
{
    /* add and concat read the input too, so its gradient collects from several layers */
    compare("input 6x5x4 as x; relu from x as a; tanh from x as b; add a b x", 3, IN_NORMAL, 0, 0);
    compare("input 6x5x4 as x; relu from x as a; leakyrelu from x as b; add a b x", 3, IN_TIES, 0, 1);
    compare("input 6x5x3 as x; relu from x as a; maxpool 3x3 stride=1 pad=1 from x as b; concat a x as c; concat c b",
            3, IN_NORMAL, 0, 1);
    compare("input 64x64x3 as x; relu from x as a; concat a x as c; relu from x as d; add d a as e; concat c e", 2,
            IN_NORMAL, 0, 1);
    /* a 1x1 map broadcast over the planes (squeeze-and-excitation): first, last, and twice */
    compare("input 6x5x4 as x; globalavgpool as g; relu from x as a; add g a x g", 3, IN_NORMAL, 0, 1);
    compare("input 64x64x3 as x; globalavgpool as g; add x g", 2, IN_NORMAL, 0, 1);
    /* the channel moves: a shuffle's planes, a split's halves read back by a concat, a range of
     * channels whose input is read by a shuffle too (its gradient added to the shuffle's),
     * small and big enough for threads */
    compare("input 5x3x6 as x; shuffle 3 as s; channels 2 start=3 from x as a; channels 4 from s as b; concat b a s",
            3, IN_TIES, 0, 1);
    compare("input 64x48x8 as x; relu as r; shuffle 2 as s; channels 4 start=4 from r as a; channels 4 from r as b; "
            "concat a b s", 2, IN_NORMAL, 0, 1);
    compare("input 5x3x2; flatten; relu", 3, IN_NORMAL, 0, 1);
    compare("input 64x32x8; flatten; relu", 2, IN_NORMAL, 0, 1);
    /* mul: maps of one shape, a 1x1 map spread over the planes (its gradient a plane's sum, in
     * lanes: within tolerance), an input read twice */
    compare("input 6x5x4 as x; leakyrelu from x as a; mul x a; relu", 3, IN_NORMAL, 0, 1);
    compare("input 40x40x12 as x; relu from x as a; mul a x a", 2, IN_NORMAL, 0, 1);
    compare("input 6x5x4 as x; globalavgpool; sigmoid as s; mul x s", 3, IN_NORMAL, 0, 0);
    compare("input 40x40x12 as x; globalavgpool as g; leakyrelu as s; mul s x g", 2, IN_TIES, 0, 0);
}

/* upsample, pad and crop (src/backend/cpu/resample.c): the reference's bits, forward and back,
 * on maps small and large enough for threads; an input read twice, so that a gradient adds */
static void test_resample(void)
{
    static const char *specs[] = {
        "input 5x4x3 as x; upsample 2 as u; maxpool 2x2 as m; add x m",
        "input 20x20x32; upsample 2",
        "input 9x7x3; upsample 3x2",
        "input 9x7x3; upsample size=4x5",                         /* fewer pixels out than in */
        "input 20x20x32; upsample 2 mode=bilinear",
        "input 7x6x5; upsample size=13x17 mode=bilinear",
        "input 7x6x5; upsample size=13x17 mode=bilinear align_corners=yes",
        "input 9x7x3; upsample size=4x5 mode=bilinear",
        "input 1x5x2; upsample size=3x9 mode=bilinear",          /* one input row: both rows one */
        "input 300x2x1; upsample size=2x600 mode=bilinear",      /* one output row: both rows one */
        "input 5x4x3; pad 1x2 top=0 mode=reflect",
        "input 5x4x3; pad 2x1 top=3 right=0 mode=replicate",
        "input 40x40x24; pad 3",
        "input 6x5x3; pad 4x3 mode=reflect",
        "input 1x4x2; pad 2 mode=replicate",
        "input 5x4x3 as x; pad 2 as p; crop margin=2 as c; add x c",
        "input 40x40x24; crop 31x29 offset=4x9",
        "input 9x8x3; crop margin=1x2 top=3 right=0",
    };
    compare_exact(specs, sizeof specs / sizeof specs[0]);
}

/* Training steps of spec on backend be (cn_train_step: no gradient for the net's input, so the
 * first layer's kernel sees dx NULL; the loss; the update): the losses and the parameters after. */
static float *train(const char *spec, const cn_backend *be, cn_optim_kind kind, double *losses, int steps, int64_t *np)
{
    enum { BATCH = 5 };
    cn_net *net = parse_spec(ctx, spec);
    if (!net) return NULL;
    cn_net_set_backend(net, be);
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 3) == CN_OK);
    cn_layer_info in = layer_at(ctx, net, 0, 1), out = layer_at(ctx, net, cn_net_layer_count(net) - 1, 1);
    int64_t nx = in.c * in.h * in.w * BATCH;
    float *x = malloc((size_t)nx * sizeof(float));
    int32_t labels[BATCH];
    cn_rng rng;
    cn_rng_seed(&rng, 9);
    for (int64_t i = 0; i < nx; i++) x[i] = draw(&rng, IN_NORMAL);
    for (int i = 0; i < BATCH; i++) labels[i] = (int32_t)cn_rng_below(&rng, (uint64_t)(out.c * out.h * out.w));
    cn_optim_config oc;
    cn_optim_defaults(&oc, kind);
    oc.l1 = 1e-3;
    cn_optim *opt = NULL;
    CHECK(cn_optim_create(ctx, net, &oc, &opt) == CN_OK);
    cn_step_config sc = { cn_net_default_loss(net), 0 };
    for (int s = 0; opt && s < steps; s++) CHECK(cn_train_step(ctx, net, opt, &sc, x, labels, BATCH, &losses[s]) == CN_OK);
    const float *trained = cn_net_params(net, NULL, np);
    float *params = copy_of(trained, *np);
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    free(x);
    return params;
}

static void test_train_steps(void)
{
    static const char *specs[] = {
        "input 6x6x4; batchnorm; relu; avgpool 2x2; globalavgpool; flatten; softmax",
        "input 6x6x4; maxpool 2x2; batchnorm; globalavgpool; softmax",
        "input 7x7x3; minpool 3x3 stride=2 pad=1; batchnorm; globalavgpool",
        "input 6x6x4; dropout keep=0.8; batchnorm; tanh; globalavgpool",
        "input 6x6x4 as x; relu from x as a; add a x; batchnorm; sigmoid; globalavgpool",
        "input 6x6x4 as x; leakyrelu from x as a; concat x a; batchnorm; globalavgpool",
        "input 1x1x6; flatten; batchnorm",
    };
    static const cn_optim_kind kinds[] = { CN_OPTIM_MOMENTUM, CN_OPTIM_ADAM, CN_OPTIM_ADAMW };
    enum { STEPS = 3 };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            double la[STEPS], lb[STEPS];
            int64_t na = 0, nb = 0;
            float *a = train(specs[i], cn_backend_reference(), kinds[k], la, STEPS, &na);
            float *b = train(specs[i], cn_backend_default(), kinds[k], lb, STEPS, &nb);
            if (a && b && na == nb) {
                double e = rel(b, a, na);
                for (int s = 0; s < STEPS; s++) CHECK_NEAR(lb[s], la[s], 1e-5);
                if (!(e <= 1e-5)) test_fail(__FILE__, __LINE__, "%s (%s): parameters differ by %.1e", specs[i],
                                            cn_optim_kind_name(kinds[k]), e);
            } else {
                CHECK(a && b && na == nb);
            }
            free(a), free(b);
        }
}

/* every accelerated op in one net, each layer large enough at batch 16 for its kernel to take
 * its threads (but flatten and the last softmax) */
static const char *const all_ops =
    "input 40x40x12 as x; batchnorm; relu; maxpool 2x2 as p; avgpool 3x3 stride=1 pad=1 from p as q; add p q;"
    "dropout keep=0.8; leakyrelu as l; minpool 3x3 stride=1 pad=1 ceil=yes; sigmoid as s;"
    "maxpool 3x3 stride=1 pad=1 from l; tanh as t; concat s t; softmax; globalavgpool; flatten; softmax";

static int same(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }

/* the ops of issue 15 that have CPU kernels, in one net, large enough at batch 16 for threads */
static const char *const issue15_ops =
    "input 40x40x12; groupnorm 3; relu6; conv 12 1x1; layernorm; hardswish; instancenorm affine=yes; silu;"
    "prelu; gelu; maxpool 2x2 dilation=2 as m; gelu approximate=tanh; elu alpha=0.5; hardsigmoid;"
    "avgpool 3x3 stride=1 pad=1 count_pad=no; instancenorm; conv 6 3x3 pad=1; globalavgpool; flatten";

/* mul with a spread map, upsample, pad and crop, in one net large enough at batch 16 for threads */
static const char *const resample_ops =
    "input 20x20x12 as x; globalavgpool; sigmoid as g; mul x g; upsample 2 mode=bilinear; pad 2 mode=reflect;"
    "crop margin=3; upsample 2; crop 70x70; tanh";

static void test_threads(void)
{
    const char *const nets[] = { all_ops, issue15_ops, resample_ops };
    int before = cn_threads();
    for (size_t k = 0; k < sizeof nets / sizeof nets[0]; k++) {
        run_result r[3];
        for (int t = 0; t < 3; t++) {
            cn_set_threads(t + 1);
            r[t] = run(nets[k], cn_backend_default(), 16, IN_NORMAL, 0);
        }
        for (int t = 1; t < 3; t++) {
            CHECK(r[t].y && r[0].y && r[t].ny == r[0].ny && r[t].nx == r[0].nx && r[t].nw == r[0].nw);
            if (!r[t].y || !r[0].y) continue;
            CHECK(same(r[t].y, r[0].y, r[0].ny));
            CHECK(same(r[t].dx, r[0].dx, r[0].nx));
            CHECK(same(r[t].dw, r[0].dw, r[0].nw));
            CHECK(same(r[t].params, r[0].params, r[0].np));
        }
        for (int t = 0; t < 3; t++) result_free(&r[t]);
        cn_set_threads(before);
        compare(nets[k], 16, IN_NORMAL, 0, 0); /* and the whole net against the reference */
        compare(nets[k], 4, IN_TIES, 1, 0);
    }
}

/* the loss over rows enough for threads, and the update of a slab large enough for threads (a
 * batch norm over 40,000 channels: 80,000 trainable values) */
static void test_threads_train(void)
{
    enum { ROWS = 300, COLS = 101 };
    int before = cn_threads();
    float *target = calloc(ROWS * COLS, sizeof(float)), *logits = malloc(ROWS * COLS * sizeof(float));
    float *grad[3], *params[3];
    double loss[3], steps[3][2];
    int64_t np[3];
    cn_rng rng;
    cn_rng_seed(&rng, 4);
    for (int i = 0; i < ROWS * COLS; i++) logits[i] = draw(&rng, IN_WIDE);
    for (int r = 0; r < ROWS; r++) target[r * COLS + (int)cn_rng_below(&rng, COLS)] = 1;
    for (int t = 0; t < 3; t++) {
        cn_set_threads(t + 1);
        grad[t] = malloc(ROWS * COLS * sizeof(float));
        CHECK(cn_loss_grad(ctx, CN_LOSS_CE_LOGITS, target, logits, ROWS, COLS, CN_REDUCE_MEAN, 0.1, &loss[t], grad[t]) == CN_OK);
        params[t] = train("input 1x1x40000; batchnorm", cn_backend_default(), CN_OPTIM_ADAM, steps[t], 2, &np[t]);
    }
    for (int t = 1; t < 3; t++) {
        CHECK(loss[t] == loss[0] && same(grad[t], grad[0], ROWS * COLS));
        CHECK(steps[t][0] == steps[0][0] && steps[t][1] == steps[0][1]);
        CHECK(params[t] && params[0] && np[t] == np[0] && same(params[t], params[0], np[0]));
    }
    /* and the blocked sum is the plain one, up to rounding */
    double plain = 0;
    for (int r = 0; r < ROWS; r++) {
        double v;
        CHECK(cn_loss_grad(ctx, CN_LOSS_CE_LOGITS, target + r * COLS, logits + r * COLS, 1, COLS, CN_REDUCE_SUM, 0.1, &v,
                           NULL) == CN_OK);
        plain += v;
    }
    CHECK_NEAR(loss[0], plain / ROWS, 1e-12);
    for (int t = 0; t < 3; t++) free(grad[t]), free(params[t]);
    free(target), free(logits);
    cn_set_threads(before);
}

/* The lane sums of core/sum_impl.h (batch norm, global average pooling, the gradient's norm):
 * where the CPU has AVX-512 they run a loop of its own, which must leave the portable loop's bits
 * in every lane, whatever the length and the tail; and the total is the sum, within double's
 * rounding of a long double sum in order. */
static void test_lane_sums(void)
{
    cn_rng rng;
    cn_rng_seed(&rng, 91);
    enum { MAX = 1100 };
    float *x = malloc(MAX * sizeof(float)), *y = malloc(MAX * sizeof(float));
    for (int i = 0; i < MAX; i++) x[i] = (float)(cn_rng_normal(&rng) * 3.0 + 1.0), y[i] = (float)cn_rng_normal(&rng);
    static const int lengths[] = { 0, 1, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 64, 100, 1024, 1027, 1100 };
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++)
        for (int off = 0; off < 3; off++) { /* unaligned starts */
            int n = lengths[k] - off < 0 ? 0 : lengths[k] - off;
            const float *xs = x + off, *ys = y + off;
            cn_sum8 a = cn_sum8_zero(), b = cn_sum8_zero(), pa = cn_sum8_zero(), pb = cn_sum8_zero();
            cn_sum8_add(&a, xs, n), cn_sum8_add_any(&pa, xs, n);
            CHECK(memcmp(&a, &pa, sizeof a) == 0);
            cn_sum8_add_dot(&b, xs, 0.1, ys, -0.3, n), cn_sum8_add_dot_any(&pb, xs, 0.1, ys, -0.3, n);
            CHECK(memcmp(&b, &pb, sizeof b) == 0);
            a = b = pa = pb = cn_sum8_zero();
            cn_sum8_add_pair(&a, &b, xs, ys, 0.1, n), cn_sum8_add_pair_any(&pa, &pb, xs, ys, 0.1, n);
            CHECK(memcmp(&a, &pa, sizeof a) == 0 && memcmp(&b, &pb, sizeof b) == 0);
            long double sx = 0, sxy = 0, ax = 0, axy = 0;
            for (int i = 0; i < n; i++) {
                long double t = (long double)xs[i] * ((long double)ys[i] - 0.1L);
                sx += xs[i], sxy += t, ax += fabsl(xs[i]), axy += fabsl(t);
            }
            CHECK(fabsl(cn_sum8_total(&a) - sx) <= 1e-15L * (ax + 1));
            CHECK(fabsl(cn_sum8_total(&b) - sxy) <= 1e-15L * (axy + 1));
        }
    if (!cn_sum8_wide()) printf("     (this CPU has no AVX-512: the portable loops only)\n");
    free(x), free(y);
}

static void setup(void) { CHECK(cn_ctx_create(NULL, &ctx) == CN_OK); }
static void teardown(void) { cn_ctx_destroy(ctx); }

static const test_case cases[] = {
    { "setup", setup },
    { "max, min and average pooling, global average pooling against the reference", test_pooling },
    { "relu, leakyrelu, sigmoid, tanh, relu6, hardsigmoid, hardswish, silu, gelu, elu, prelu, scale against the reference", test_activations },
    { "gelu (both forms) value by value over [-14, 14] within 1e-6 of the reference", test_gelu_sweep },
    { "batch norm (training and evaluation) against the reference", test_batchnorm },
    { "layernorm, groupnorm, instancenorm: the reference's bits", test_norms },
    { "softmax against the reference", test_softmax },
    { "dropout against the reference (same stream, same masks)", test_dropout },
    { "add, mul, concat, flatten, shuffle and channels against the reference", test_merge },
    { "upsample, pad and crop: the reference's bits", test_resample },
    { "training steps (no input gradient, loss, update) against the reference", test_train_steps },
    { "the lane sums: AVX-512's loops leave the portable loops' bits; the total is the sum", test_lane_sums },
    { "the same bits on 1, 2 and 3 threads", test_threads },
    { "loss and update: the same bits on 1, 2 and 3 threads", test_threads_train },
    { "teardown", teardown },
};
TEST_MAIN(cases)
