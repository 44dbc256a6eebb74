/* test_gradcheck.c — the reference kernels of every op and option against central differences
 * in double (cn_net_gradcheck); that every backward accumulates (+=) and skips a NULL dx; that
 * the check itself catches a wrong backward pass; and forward values worked out by hand for
 * what a gradient check cannot see (which cell a pool picks, avgpool's divisor as PyTorch,
 * batch statistics and running statistics, dropout's mask, softmax over channels, dense layout). */
#include <stdlib.h>

#include "model/model_impl.h"
#include "test_util.h"

#define GRAD_TOL 1e-6
#define SAMPLES 64

typedef struct {
    const char *name;
    const char *spec;
    int64_t batch;
    int training;
} grad_case;

static const grad_case grad_cases[] = {
    { "conv stride 2", "input 7x7x2; conv 3 3x3 stride=2", 2, 1 },
    { "conv pad=same, odd input (pad 1 top, 2 bottom)", "input 7x7x2; conv 3 4x4 pad=same", 2, 1 },
    { "conv pad=same stride 2, even input (pad 0 top, 1 bottom)", "input 8x8x2; conv 3 3x3 stride=2 pad=same", 2, 1 },
    { "conv dilation 2", "input 9x9x2; conv 3 3x3 dilation=2 pad=2", 2, 1 },
    { "conv groups 2", "input 6x6x4; conv 6 3x3 groups=2 pad=1", 2, 1 },
    { "conv bias=no", "input 6x6x2; conv 3 3x3 bias=no", 2, 1 },
    { "conv 3x5 stride=1x2 pad=1x2", "input 8x9x2; conv 3 3x5 stride=1x2 pad=1x2", 2, 1 },
    { "maxpool pad 1", "input 7x7x2; maxpool 3x3 stride=2 pad=1", 2, 1 },
    { "minpool pad 1", "input 7x7x2; minpool 3x3 stride=2 pad=1", 2, 1 },
    { "avgpool pad 1", "input 7x7x2; avgpool 3x3 stride=2 pad=1", 2, 1 },
    { "maxpool ceil (last window overhangs)", "input 6x6x2; maxpool 3x3 stride=2 ceil=yes", 2, 1 },
    { "minpool ceil, pad 1", "input 6x7x2; minpool 3x3 stride=2 pad=1 ceil=yes", 2, 1 },
    { "avgpool ceil (last window overhangs)", "input 6x6x2; avgpool 3x3 stride=2 ceil=yes", 2, 1 },
    { "avgpool ceil, pad 1", "input 6x7x2; avgpool 3x3 stride=2 pad=1 ceil=yes", 2, 1 },
    { "maxpool pad=same (asymmetric)", "input 7x7x2; maxpool 2x2 pad=same", 2, 1 },
    { "minpool pad=same (asymmetric)", "input 7x6x2; minpool 3x3 stride=2 pad=same", 2, 1 },
    { "avgpool pad=same (asymmetric)", "input 7x7x2; avgpool 2x2 pad=same", 2, 1 },
    { "avgpool 2x3 stride=1x2", "input 6x7x2; avgpool 2x3 stride=1x2 pad=1", 2, 1 },
    { "globalavgpool", "input 5x4x3; globalavgpool", 2, 1 },
    { "relu", "input 5x5x3; relu", 2, 1 },
    { "leakyrelu slope=0.2", "input 5x5x3; leakyrelu slope=0.2", 2, 1 },
    { "sigmoid", "input 5x5x3; sigmoid", 2, 1 },
    { "tanh", "input 5x5x3; tanh", 2, 1 },
    { "softmax after dense", "input 4x4x3; flatten; dense 5; softmax", 3, 1 },
    { "softmax over the channels of a map", "input 4x3x5; softmax", 2, 1 },
    { "batchnorm training", "input 5x5x3; batchnorm", 4, 1 },
    { "batchnorm evaluation", "input 5x5x3; batchnorm", 4, 0 },
    { "batchnorm after dense, training", "input 3x3x2; flatten; dense 6; batchnorm", 4, 1 },
    { "batchnorm after dense, evaluation", "input 3x3x2; flatten; dense 6; batchnorm", 4, 0 },
    { "dropout keep=0.7 training", "input 5x5x3; dropout keep=0.7", 2, 1 },
    { "dropout keep=0.7 evaluation", "input 5x5x3; dropout keep=0.7", 2, 0 },
    { "dense on a map", "input 4x3x2; dense 5", 3, 1 },
    { "dense after flatten, bias=no", "input 4x3x2; flatten; dense 5 bias=no", 3, 1 },
    { "concat of 3 branches",
      "input 6x6x2 as x; conv 3 1x1 from x as a; conv 2 3x3 pad=1 from x as b; maxpool 3x3 stride=1 pad=1 from x as c;"
      "concat a b c",
      2, 1 },
    { "add (residual)", "input 6x6x3 as x; conv 3 3x3 pad=1; relu as r; add x r", 2, 1 },
    { "small net", "input 8x8x2; conv 4 3x3 pad=1; batchnorm; relu; maxpool 2x2; dense 5; softmax", 4, 1 },
    /* geometric layers: upsample, deconv, mul and broadcasting add, pad, crop */
    { "upsample nearest 2", "input 4x3x2; upsample 2", 2, 1 },
    { "upsample nearest to 7x5 (uneven)", "input 4x3x2; upsample size=7x5", 2, 1 },
    { "upsample bilinear 2x3", "input 4x3x2; upsample 2x3 mode=bilinear", 2, 1 },
    { "upsample bilinear align_corners to 7x5", "input 4x3x2; upsample size=7x5 mode=bilinear align_corners=yes", 2, 1 },
    { "upsample bilinear down to 3x2", "input 5x5x2; upsample size=3x2 mode=bilinear", 2, 1 },
    { "deconv stride 2 pad 1 outpad 1", "input 4x4x2; deconv 3 3x3 stride=2 pad=1 outpad=1", 2, 1 },
    { "deconv 3x2 stride 2x1 dilation 2 groups 2 bias=no",
      "input 4x3x4; deconv 6 3x2 stride=2x1 dilation=2 groups=2 bias=no", 2, 1 },
    { "deconv 2x2 stride 2 (U-Net)", "input 3x3x3; deconv 2 2x2 stride=2", 2, 1 },
    { "mul squeeze-and-excitation (1x1 broadcast)", "input 5x5x3 as x; globalavgpool; sigmoid as s; mul x s", 2, 1 },
    { "mul of three equal maps", "input 4x4x3 as x; conv 3 3x3 pad=1 as a; tanh as t; mul x a t", 2, 1 },
    { "add with a 1x1 map", "input 5x4x3 as x; globalavgpool as g; add g x", 2, 1 },
    { "pad zero 1x2", "input 4x3x2; pad 1x2", 2, 1 },
    { "pad reflect, sides", "input 4x5x2; pad 1 left=3 bottom=2 mode=reflect", 2, 1 },
    { "pad replicate to 7x6", "input 4x3x2; pad size=7x6 mode=replicate", 2, 1 },
    { "crop centred 3x2", "input 6x5x2; crop 3x2", 2, 1 },
    { "crop 3x2 at offset 1x2", "input 6x5x2; crop 3x2 offset=1x2", 2, 1 },
    { "crop margins", "input 6x5x2; crop margin=1 right=0", 2, 1 },
    /* channel layers: ShuffleNet's shuffle, and a split as two `channels` joined again */
    { "shuffle 3", "input 3x2x6; conv 6 1x1; shuffle 3", 2, 1 },
    { "channels split and joined", "input 3x2x6 as x; channels 2 start=1 as a; channels 3 start=3 from x as b; concat b a", 2, 1 },
    /* the layers of issue 15 (scaled so that inputs cross the kinks of relu6 and the hard ones) */
    { "relu6", "input 5x5x3; conv 3 3x3 pad=1; relu6", 2, 1 },
    { "hardsigmoid", "input 5x5x3; conv 3 3x3 pad=1; hardsigmoid", 2, 1 },
    { "hardswish", "input 5x5x3; conv 3 3x3 pad=1; hardswish", 2, 1 },
    { "silu", "input 5x5x3; silu", 2, 1 },
    { "gelu", "input 5x5x3; gelu", 2, 1 },
    { "gelu approximate=tanh", "input 5x5x3; gelu approximate=tanh", 2, 1 },
    { "elu alpha=0.7", "input 5x5x3; elu alpha=0.7", 2, 1 },
    { "prelu", "input 5x5x3; prelu", 2, 1 },
    { "prelu after dense", "input 3x3x2; dense 6; prelu", 3, 1 },
    { "scale", "input 4x3x3; scale init=0.7", 2, 1 },
    { "scale after dense", "input 3x3x2; dense 5; scale", 3, 1 },
    { "layernorm", "input 4x3x3; layernorm", 2, 1 },
    { "layernorm over=channels", "input 4x3x5; layernorm over=channels", 2, 1 },
    { "layernorm over=channels, affine=no", "input 3x4x4; conv 4 1x1; layernorm over=channels affine=no", 2, 1 },
    { "layernorm after dense, affine=no", "input 3x3x2; dense 6; layernorm affine=no", 3, 1 },
    { "groupnorm 2 groups", "input 4x3x6; groupnorm 2 eps=1e-3", 2, 1 },
    { "groupnorm affine=no", "input 4x3x4; groupnorm 4 affine=no", 2, 1 },
    { "instancenorm affine=yes", "input 4x5x3; instancenorm affine=yes", 2, 1 },
    { "instancenorm", "input 4x5x3; instancenorm", 2, 0 },
    { "batchnorm affine=no, training", "input 5x5x3; batchnorm affine=no", 4, 1 },
    { "batchnorm affine=no, evaluation", "input 5x5x3; batchnorm affine=no", 4, 0 },
    { "globalmaxpool", "input 5x4x3; globalmaxpool", 2, 1 },
    { "adaptiveavgpool 3x2 from 7x5", "input 7x5x2; adaptiveavgpool 3x2", 2, 1 },
    { "adaptiveavgpool 4 from 3 (windows overlap)", "input 3x3x2; adaptiveavgpool 4", 2, 1 },
    { "maxpool dilation 2", "input 9x9x2; maxpool 3x3 stride=2 pad=1 dilation=2", 2, 1 },
    { "minpool dilation 2x1, ceil", "input 8x7x2; minpool 2x3 stride=2 dilation=2x1 ceil=yes", 2, 1 },
    { "avgpool count_pad=no", "input 7x7x2; avgpool 3x3 stride=2 pad=1 count_pad=no", 2, 1 },
    { "avgpool count_pad=no, ceil", "input 6x7x2; avgpool 3x3 stride=2 pad=1 ceil=yes count_pad=no", 2, 1 },
};

#define N_CASES ((int)(sizeof grad_cases / sizeof grad_cases[0]))

static cn_ctx *new_ctx(void)
{
    cn_ctx *ctx = NULL;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    return ctx;
}

/* worst error per layer type, printed at the end */
typedef struct {
    const char *type;
    double worst;
} family;

static void note_family(family *fam, int *n_fam, const char *type, double err)
{
    for (int k = 0; k < *n_fam; k++)
        if (!strcmp(fam[k].type, type)) {
            if (err > fam[k].worst || isnan(err)) fam[k].worst = err;
            return;
        }
    fam[*n_fam].type = type;
    fam[(*n_fam)++].worst = err;
}

static void test_gradcheck_every_op(void)
{
    cn_ctx *ctx = new_ctx();
    family fam[64];
    int n_fam = 0;
    for (int c = 0; c < N_CASES; c++) {
        const grad_case *gc = &grad_cases[c];
        cn_net *net = parse_spec(ctx, gc->spec);
        if (!net) continue;
        int layers = cn_net_layer_count(net);
        double errs[16], worst = 0;
        CHECK(layers <= 16);
        for (uint64_t seed = 1; seed <= 2 && layers <= 16; seed++) {
            double w;
            if (cn_net_gradcheck(ctx, net, seed, gc->batch, gc->training, SAMPLES, errs, &w) != CN_OK) {
                test_fail(__FILE__, __LINE__, "%s: %s", gc->name, cn_ctx_message(ctx));
                break;
            }
            if (w > worst || isnan(w)) worst = w;
            for (int i = 1; i < layers; i++) {
                cn_layer_info li = layer_at(ctx, net, i, gc->batch);
                note_family(fam, &n_fam, li.type, errs[i]);
                if (!(errs[i] <= GRAD_TOL))
                    test_fail(__FILE__, __LINE__, "%s: layer %d (%s) relative error %.3g > %g (seed %llu)", gc->name,
                              i, li.type, errs[i], GRAD_TOL, (unsigned long long)seed);
            }
        }
        printf("     %-58s worst %.2e\n", gc->name, worst);
        cn_net_destroy(net);
    }
    printf("     worst per op:");
    for (int k = 0; k < n_fam; k++) printf("%s %s %.1e", k ? "," : "", fam[k].type, fam[k].worst);
    printf("\n");
    cn_ctx_destroy(ctx);
}

/* ---- backward accumulates, and skips a NULL dx -------------------------------------------- */

static double *const_reals(int64_t n, double v)
{
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    for (int64_t i = 0; p && i < n; i++) p[i] = v;
    return p;
}

static double *normal_reals(int64_t n, cn_rng *rng)
{
    double *p = const_reals(n, 0);
    for (int64_t i = 0; p && i < n; i++) p[i] = cn_rng_normal(rng);
    return p;
}

/* in [0.5, 1.5): weights, gamma and the running variance alike (> 0) */
static double *positive_reals(int64_t n, cn_rng *rng)
{
    double *p = const_reals(n, 0);
    for (int64_t i = 0; p && i < n; i++) p[i] = 0.5 + cn_rng_uniform(rng);
    return p;
}

/* Layer i's double kernels on random tensors: backward into dx, dw pre-filled with 1 must give
 * 1 + (backward into zeros); with every dx NULL, dw must still be the same. */
static void check_accumulates(const char *name, const cn_net *net, int i, int64_t batch, int training)
{
    const cn_node *n = &net->nodes[i];
    const cn_node *in[8];
    double *x[8], *dx0[8], *dx1[8];
    void *none[8] = { 0 };
    int64_t xn[8];
    cn_param_spec specs[CN_MAX_PARAMS];
    int np = cn_node_params(net, i, specs);
    int64_t wn = 0, bn = 0, yn = n->out.c * n->out.h * n->out.w * batch;
    cn_rng rng;
    cn_rng_seed(&rng, 99 + (uint64_t)i);
    CHECK(n->n_in <= 8);
    for (int j = 0; j < n->n_in && j < 8; j++) {
        in[j] = &net->nodes[n->in[j]];
        xn[j] = in[j]->out.c * in[j]->out.h * in[j]->out.w * batch;
        x[j] = normal_reals(xn[j], &rng);
        dx0[j] = const_reals(xn[j], 0);
        dx1[j] = const_reals(xn[j], 1);
    }
    for (int k = 0; k < np; k++) *(specs[k].trainable ? &wn : &bn) += specs[k].count;
    int64_t ab = n->op->aux_bytes ? n->op->aux_bytes(n, in, batch, sizeof(double)) : 0;
    double *y = const_reals(yn, 0), *dy = normal_reals(yn, &rng), *w = positive_reals(wn, &rng);
    double *buf = positive_reals(bn, &rng), *aux = const_reals((ab + 7) / 8, 0);
    double *dw0 = const_reals(wn, 0), *dw1 = const_reals(wn, 1), *dw2 = const_reals(wn, 0);
    cn_rng drop;
    cn_rng_seed(&drop, 5);
    cn_op_io io = { .n = n, .in = in, .batch = batch, .x = (const void *const *)x, .y = y, .w = w, .buf = buf,
                    .aux = aux, .dy = dy, .training = training, .rng = &drop };
    n->op->forward[CN_F64](&io);
    io.dx = (void *const *)dx0, io.dw = dw0;
    n->op->backward[CN_F64](&io);
    io.dx = (void *const *)dx1, io.dw = dw1;
    n->op->backward[CN_F64](&io);
    io.dx = none, io.dw = dw2;
    n->op->backward[CN_F64](&io);
    for (int j = 0; j < n->n_in; j++)
        for (int64_t k = 0; k < xn[j]; k++)
            if (!(fabs(dx1[j][k] - 1 - dx0[j][k]) <= 1e-12 * (1 + fabs(dx0[j][k])))) {
                test_fail(__FILE__, __LINE__, "%s: layer %d (%s) input %d: backward does not add to dx (%g, %g)",
                          name, i, n->op->name, j, dx1[j][k], dx0[j][k]);
                break;
            }
    for (int64_t k = 0; k < wn; k++)
        if (!(fabs(dw1[k] - 1 - dw0[k]) <= 1e-12 * (1 + fabs(dw0[k]))) || dw2[k] != dw0[k]) {
            test_fail(__FILE__, __LINE__, "%s: layer %d (%s): dw %g, %g after += 1, %g with dx NULL", name, i,
                      n->op->name, dw0[k], dw1[k], dw2[k]);
            break;
        }
    for (int j = 0; j < n->n_in; j++) free(x[j]), free(dx0[j]), free(dx1[j]);
    free(y), free(dy), free(w), free(buf), free(aux), free(dw0), free(dw1), free(dw2);
}

static void test_backward_accumulates(void)
{
    cn_ctx *ctx = new_ctx();
    for (int c = 0; c < N_CASES; c++) {
        cn_net *net = parse_spec(ctx, grad_cases[c].spec);
        for (int i = 1; net && i < net->n; i++)
            check_accumulates(grad_cases[c].name, net, i, grad_cases[c].batch, grad_cases[c].training);
        cn_net_destroy(net);
    }
    cn_ctx_destroy(ctx);
}

/* ---- the check catches a wrong backward ------------------------------------------------------ */

static void sigmoid_twice(const cn_op_io *io)
{
    cn_ops[CN_OP_SIGMOID]->backward[CN_F64](io);
    cn_ops[CN_OP_SIGMOID]->backward[CN_F64](io);
}

/* right everywhere but at one input value of the batch */
static void avgpool_one_wrong(const cn_op_io *io)
{
    cn_ops[CN_OP_AVGPOOL]->backward[CN_F64](io);
    ((double *)io->dx[0])[7] += 1e-3;
}

static void test_gradcheck_catches_errors(void)
{
    static const struct {
        const char *spec;
        void (*backward)(const cn_op_io *io);
    } broken[] = {
        { "input 4x4x2; sigmoid", sigmoid_twice },
        { "input 4x4x2; avgpool 3x3 stride=2 pad=1", avgpool_one_wrong },
    };
    cn_ctx *ctx = new_ctx();
    for (size_t b = 0; b < sizeof broken / sizeof broken[0]; b++) {
        cn_net *net = parse_spec(ctx, broken[b].spec);
        if (!net) continue;
        cn_op bad = *net->nodes[1].op;
        bad.backward[CN_F64] = broken[b].backward;
        net->nodes[1].op = &bad;
        double errs[2], worst = 0;
        /* batch 1: the input has 32 values, all of them sampled */
        CHECK(cn_net_gradcheck(ctx, net, 3, 1, 1, SAMPLES, errs, &worst) == CN_OK);
        printf("     a wrong %s backward: error %.2e\n", bad.name, worst);
        CHECK(worst > 1e-4);
        cn_net_destroy(net);
    }
    cn_ctx_destroy(ctx);
}

/* ---- forward values by hand, through the executor -------------------------------------------- */

static cn_net *ready(cn_ctx *ctx, const char *spec)
{
    cn_net *net = parse_spec(ctx, spec);
    if (net && cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 7) != CN_OK) {
        test_fail(__FILE__, __LINE__, "init: %s", cn_ctx_message(ctx));
        cn_net_destroy(net);
        return NULL;
    }
    return net;
}

static const float *forward(cn_ctx *ctx, cn_net *net, const float *x, int64_t batch, int training, int64_t want)
{
    int64_t count = -1;
    if (cn_net_forward(ctx, net, x, batch, training) != CN_OK) {
        test_fail(__FILE__, __LINE__, "forward: %s", cn_ctx_message(ctx));
        return NULL;
    }
    const float *y = cn_net_output(net, &count);
    CHECK_INT(count, want);
    return count == want ? y : NULL;
}

static void test_maxpool_minpool_by_hand(void)
{
    cn_ctx *ctx = new_ctx();
    /* 2x2 windows: maxima 4 at (1,0); 2 three times, the first at (0,2); 7 at (3,1); 9 twice,
     * the first at (2,3). Minima 1 at (0,0); 1 at (1,3); -2 at (3,0); 3 at (3,3). */
    const float x[16] = { 1, 3, 2, 2, 4, 2, 2, 1, 0, -1, 5, 9, -2, 7, 9, 3 };
    const float dy[4] = { 1, 2, 3, 4 };
    static const struct {
        const char *spec;
        float y[4];
        int at[4]; /* input cell that receives dy[k] */
    } cases[] = {
        { "input 4x4x1; maxpool 2x2", { 4, 2, 7, 9 }, { 4, 2, 13, 11 } },
        { "input 4x4x1; minpool 2x2", { 1, 1, -2, 3 }, { 0, 7, 12, 15 } },
    };
    for (int c = 0; c < 2; c++) {
        cn_net *net = ready(ctx, cases[c].spec);
        const float *y = net ? forward(ctx, net, x, 1, 1, 4) : NULL;
        if (!y) continue;
        for (int k = 0; k < 4; k++) CHECK_NEAR(y[k], cases[c].y[k], 0);
        CHECK(cn_net_backward(ctx, net, dy) == CN_OK);
        const float *dx = cn_net_input_grad(net);
        float want[16] = { 0 };
        for (int k = 0; k < 4; k++) want[cases[c].at[k]] = dy[k];
        for (int k = 0; k < 16; k++) CHECK_NEAR(dx[k], want[k], 0);
        cn_net_destroy(net);
    }
    /* padded cells are skipped, not read as 0: x = -1..-9, pad 1, windows of one, two and four cells */
    cn_net *net = ready(ctx, "input 3x3x1; maxpool 2x2 stride=2 pad=1");
    const float neg[9] = { -1, -2, -3, -4, -5, -6, -7, -8, -9 };
    const float *y = net ? forward(ctx, net, neg, 1, 1, 4) : NULL;
    if (y) {
        CHECK_NEAR(y[0], -1, 0);
        CHECK_NEAR(y[1], -2, 0);
        CHECK_NEAR(y[2], -4, 0);
        CHECK_NEAR(y[3], -5, 0);
    }
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

static void test_avgpool_divisor_by_hand(void)
{
    /* PyTorch count_include_pad=True: divisor = the window clipped to [-pad, H + pad); x = 1, 2, ... */
    static const struct {
        const char *spec;
        int64_t outputs;
        int n;
        int at[5];
        double y[5];
    } cases[] = {
        /* 3x3, 2x2 stride 2 pad 1: every window lies in the padded input, divisor 4:
         * 1/4, (2+3)/4, (4+7)/4, (5+6+8+9)/4 */
        { "input 3x3x1; avgpool 2x2 stride=2 pad=1", 4, 4, { 0, 1, 2, 3 }, { 0.25, 1.25, 2.75, 7.0 } },
        /* 4x4, 3x3 stride 2 pad 1 ceil: out 3x3, the last windows reach row/col 5 but the divisor
         * stops at H + pad = 5: y00 = (1+2+5+6)/9, y02 = (4+8)/(3*2),
         * y11 = (6+7+8+10+11+12+14+15+16)/9, y20 = (13+14)/(2*3), y22 = 16/(2*2) */
        { "input 4x4x1; avgpool 3x3 stride=2 pad=1 ceil=yes", 9, 5, { 0, 2, 4, 6, 8 }, { 14.0 / 9, 2.0, 11.0, 4.5, 4.0 } },
        /* 5x5, 2x2 stride 2 ceil, no pad: the last window holds one row or column:
         * y00 = (1+2+6+7)/4, y02 = (5+10)/2, y22 = 25/1 */
        { "input 5x5x1; avgpool 2x2 stride=2 ceil=yes", 9, 3, { 0, 2, 8 }, { 4.0, 7.5, 25.0 } },
        /* pad=same on 3x3 with 2x2 stride 1: one padded row/column at the bottom/right only, which
         * counts (as PyTorch's padding would; TensorFlow's SAME would divide by 1 at y22):
         * y00 = (1+2+4+5)/4, y02 = (3+6)/4, y22 = 9/4 */
        { "input 3x3x1; avgpool 2x2 stride=1 pad=same", 9, 3, { 0, 2, 8 }, { 3.0, 2.25, 2.25 } },
    };
    cn_ctx *ctx = new_ctx();
    float x[25];
    for (int i = 0; i < 25; i++) x[i] = (float)(i + 1);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cn_net *net = ready(ctx, cases[c].spec);
        const float *y = net ? forward(ctx, net, x, 1, 1, cases[c].outputs) : NULL;
        for (int k = 0; y && k < cases[c].n; k++) CHECK_NEAR(y[cases[c].at[k]], cases[c].y[k], 1e-6);
        if (y && c == 0) {
            /* dy = 1: each input cell gets 1/4 from the one window it is in */
            const float ones[4] = { 1, 1, 1, 1 };
            CHECK(cn_net_backward(ctx, net, ones) == CN_OK);
            for (int k = 0; k < 9; k++) CHECK_NEAR(cn_net_input_grad(net)[k], 0.25, 1e-7);
        }
        cn_net_destroy(net);
    }
    cn_ctx_destroy(ctx);
}

static void test_batchnorm_by_hand(void)
{
    cn_ctx *ctx = new_ctx();
    cn_net *net = ready(ctx, "input 2x2x2; batchnorm as bn");
    enum { N = 4, C = 2, HW = 4, M = N * HW };
    float x[N * C * HW], dy[N * C * HW];
    cn_rng rng;
    cn_rng_seed(&rng, 11);
    for (int i = 0; i < N * C * HW; i++) {
        int c = (i / HW) % C;
        x[i] = (float)(c ? -1 + 0.5 * cn_rng_normal(&rng) : 3 + 2 * cn_rng_normal(&rng));
        dy[i] = (float)cn_rng_normal(&rng);
    }
    double mean[C] = { 0 }, var[C] = { 0 };
    for (int i = 0; i < N * C * HW; i++) mean[(i / HW) % C] += x[i] / (double)M;
    for (int i = 0; i < N * C * HW; i++) var[(i / HW) % C] += pow(x[i] - mean[(i / HW) % C], 2) / M;
    const float *y = net ? forward(ctx, net, x, N, 1, N * C * HW) : NULL;
    if (!y) goto done;
    /* gamma 1, beta 0: each channel of y has mean 0 and biased variance var/(var + eps) */
    for (int c = 0; c < C; c++) {
        double m = 0, v = 0;
        for (int i = 0; i < N * C * HW; i++)
            if ((i / HW) % C == c) m += y[i] / (double)M;
        for (int i = 0; i < N * C * HW; i++)
            if ((i / HW) % C == c) v += pow(y[i] - m, 2) / M;
        CHECK_NEAR(m, 0, 1e-6);
        CHECK_NEAR(v, var[c] / (var[c] + 1e-5), 1e-5);
    }
    /* running statistics, momentum 0.1 from 0 and 1, with the unbiased variance (PyTorch) */
    cn_tensor rm, rv, gamma, beta;
    CHECK(cn_net_find_tensor(ctx, net, "bn.running_mean", &rm) == CN_OK);
    CHECK(cn_net_find_tensor(ctx, net, "bn.running_var", &rv) == CN_OK);
    CHECK(cn_net_find_tensor(ctx, net, "bn.weight", &gamma) == CN_OK);
    CHECK(cn_net_find_tensor(ctx, net, "bn.bias", &beta) == CN_OK);
    if (!rm.data || !rv.data || !gamma.grad || !beta.grad) goto done;
    CHECK(!rm.trainable && !rv.trainable && gamma.trainable && beta.trainable);
    for (int c = 0; c < C; c++) {
        CHECK_NEAR(rm.data[c], 0.1 * mean[c], 1e-5);
        CHECK_NEAR(rv.data[c], 0.9 + 0.1 * var[c] * M / (M - 1), 1e-5);
    }
    /* evaluation: y = (x - rm)/sqrt(rv + eps) * gamma + beta; backward dx = dy * gamma/sqrt(rv + eps),
     * dgamma = sum dy * xhat, dbeta = sum dy */
    gamma.data[1] = 2.0f;
    beta.data[1] = 0.5f;
    y = forward(ctx, net, x, N, 0, N * C * HW);
    if (!y) goto done;
    cn_net_zero_grad(net);
    CHECK(cn_net_backward(ctx, net, dy) == CN_OK);
    const float *dx = cn_net_input_grad(net);
    double dg[C] = { 0 }, db[C] = { 0 };
    for (int i = 0; i < N * C * HW; i++) {
        int c = (i / HW) % C;
        double inv = 1 / sqrt(rv.data[c] + 1e-5), xh = (x[i] - rm.data[c]) * inv;
        CHECK_NEAR(y[i], gamma.data[c] * xh + beta.data[c], 1e-5);
        CHECK_NEAR(dx[i], dy[i] * gamma.data[c] * inv, 1e-5);
        dg[c] += dy[i] * xh;
        db[c] += dy[i];
    }
    for (int c = 0; c < C; c++) {
        CHECK_NEAR(gamma.grad[c], dg[c], 1e-5);
        CHECK_NEAR(beta.grad[c], db[c], 1e-5);
    }
done:
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

static void test_dropout_by_hand(void)
{
    cn_ctx *ctx = new_ctx();
    cn_net *net = ready(ctx, "input 10x10x10; dropout keep=0.5");
    float x[1000], ones[1000];
    for (int i = 0; i < 1000; i++) x[i] = ones[i] = 1.0f;
    if (!net) goto done;
    /* value i is kept when the i-th uniform draw of the net's stream is below keep */
    cn_rng stream = *cn_net_rng(net);
    const float *y = forward(ctx, net, x, 1, 1, 1000);
    if (!y) goto done;
    int zeros = 0, wrong = 0;
    for (int i = 0; i < 1000; i++) {
        int kept = cn_rng_uniform(&stream) < 0.5;
        zeros += y[i] == 0;
        wrong += y[i] != (kept ? 2.0f : 0.0f);
    }
    CHECK_INT(wrong, 0);
    CHECK(zeros > 400 && zeros < 600); /* binomial(1000, 1/2): 500 +- 16 */
    /* backward: dy * mask / keep, the same as y for x = 1 */
    float kept[1000];
    memcpy(kept, y, sizeof kept);
    CHECK(cn_net_backward(ctx, net, ones) == CN_OK);
    CHECK(memcmp(cn_net_input_grad(net), kept, sizeof kept) == 0);
    /* evaluation: identity both ways */
    y = forward(ctx, net, x, 1, 0, 1000);
    if (!y) goto done;
    CHECK(memcmp(y, x, sizeof x) == 0);
    CHECK(cn_net_backward(ctx, net, ones) == CN_OK);
    CHECK(memcmp(cn_net_input_grad(net), ones, sizeof ones) == 0);
done:
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* the piecewise activations at and around their kinks, by hand (and PyTorch's side at a kink:
 * relu6 and hardsigmoid pass a gradient strictly inside, hardswish takes x/3 + 1/2 on [-3, 3]) */
static void test_piecewise_activations_by_hand(void)
{
    cn_ctx *ctx = new_ctx();
    const float x[8] = { -4, -3, -1, 0, 1.5f, 3, 4, 7 }, ones[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
    /* elu alpha=2: 2 (e^x - 1) and 2 e^x for x <= 0 */
    double e4 = exp(-4.0), e3 = exp(-3.0), e1 = exp(-1.0);
    const struct {
        const char *spec;
        double y[8], dx[8];
    } cases[] = {
        { "input 1x8x1; relu6", { 0, 0, 0, 0, 1.5, 3, 4, 6 }, { 0, 0, 0, 0, 1, 1, 1, 0 } },
        { "input 1x8x1; hardsigmoid", { 0, 0, 1.0 / 3, 0.5, 0.75, 1, 1, 1 }, { 0, 0, 1.0 / 6, 1.0 / 6, 1.0 / 6, 0, 0, 0 } },
        { "input 1x8x1; hardswish", { 0, 0, -1.0 / 3, 0, 1.125, 3, 4, 7 }, { 0, -0.5, 1.0 / 6, 0.5, 1, 1.5, 1, 1 } },
        { "input 1x8x1; elu alpha=2", { 2 * (e4 - 1), 2 * (e3 - 1), 2 * (e1 - 1), 0, 1.5, 3, 4, 7 },
          { 2 * e4, 2 * e3, 2 * e1, 2, 1, 1, 1, 1 } },
        /* prelu starts with slope 0.25 (PyTorch's PReLU) */
        { "input 1x8x1; prelu", { -1, -0.75, -0.25, 0, 1.5, 3, 4, 7 }, { 0.25, 0.25, 0.25, 0.25, 1, 1, 1, 1 } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cn_net *net = ready(ctx, cases[c].spec);
        const float *y = net ? forward(ctx, net, x, 1, 1, 8) : NULL;
        if (y && cn_net_backward(ctx, net, ones) == CN_OK) {
            const float *dx = cn_net_input_grad(net);
            for (int k = 0; k < 8; k++) {
                CHECK_NEAR(y[k], cases[c].y[k], 1e-6);
                CHECK_NEAR(dx[k], cases[c].dx[k], 1e-6);
            }
        }
        cn_net_destroy(net);
    }
    cn_ctx_destroy(ctx);
}

static void test_softmax_by_hand(void)
{
    cn_ctx *ctx = new_ctx();
    /* over the channels of each position, not along the width: 1x2 map with 2 channels,
     * x (NCHW) = [c0: 0 0, c1: ln 3, 0] -> position 0: [1/4, 3/4], position 1: [1/2, 1/2] */
    cn_net *net = ready(ctx, "input 1x2x2; softmax");
    const float x[4] = { 0, 0, (float)log(3.0), 0 };
    const float *y = net ? forward(ctx, net, x, 1, 1, 4) : NULL;
    if (y) {
        CHECK_NEAR(y[0], 0.25, 1e-7);
        CHECK_NEAR(y[1], 0.5, 1e-7);
        CHECK_NEAR(y[2], 0.75, 1e-7);
        CHECK_NEAR(y[3], 0.5, 1e-7);
    }
    cn_net_destroy(net);
    /* every position of every sample sums to 1 */
    net = ready(ctx, "input 2x3x4; softmax");
    float xs[48];
    cn_rng rng;
    cn_rng_seed(&rng, 4);
    for (int i = 0; i < 48; i++) xs[i] = (float)(3 * cn_rng_normal(&rng));
    y = net ? forward(ctx, net, xs, 2, 1, 48) : NULL;
    for (int n = 0; y && n < 2; n++)
        for (int p = 0; p < 6; p++) {
            double s = 0;
            for (int c = 0; c < 4; c++) {
                CHECK(y[n * 24 + c * 6 + p] > 0);
                s += y[n * 24 + c * 6 + p];
            }
            CHECK_NEAR(s, 1.0, 1e-6);
        }
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

static void test_dense_by_hand(void)
{
    cn_ctx *ctx = new_ctx();
    /* PyTorch layout: weight (out, in) = [[1,2,3],[4,5,6]], bias [0.5,-1], x [1,1,2]:
     * y = [1+2+6+0.5, 4+5+12-1]; dy [1,2]: dx = W^T dy = [9,12,15], dW = dy x^T, db = dy */
    cn_net *net = ready(ctx, "input 1x1x3; dense 2 as fc");
    cn_tensor w, b;
    if (!net) goto done;
    CHECK(cn_net_find_tensor(ctx, net, "fc.weight", &w) == CN_OK);
    CHECK(cn_net_find_tensor(ctx, net, "fc.bias", &b) == CN_OK);
    if (!w.data || !b.data) goto done;
    CHECK_INT(w.rank, 2);
    CHECK_INT(w.shape[0], 2);
    CHECK_INT(w.shape[1], 3);
    for (int i = 0; i < 6; i++) w.data[i] = (float)(i + 1);
    b.data[0] = 0.5f, b.data[1] = -1.0f;
    const float x[3] = { 1, 1, 2 }, dy[2] = { 1, 2 };
    const float *y = forward(ctx, net, x, 1, 1, 2);
    if (!y) goto done;
    CHECK_NEAR(y[0], 9.5, 1e-7);
    CHECK_NEAR(y[1], 20.0, 1e-7);
    cn_net_zero_grad(net);
    CHECK(cn_net_backward(ctx, net, dy) == CN_OK);
    const float *dx = cn_net_input_grad(net);
    const float want_dw[6] = { 1, 1, 2, 2, 2, 4 };
    for (int i = 0; i < 3; i++) CHECK_NEAR(dx[i], 9 + 3 * i, 1e-7);
    for (int i = 0; i < 6; i++) CHECK_NEAR(w.grad[i], want_dw[i], 1e-7);
    CHECK_NEAR(b.grad[0], 1, 1e-7);
    CHECK_NEAR(b.grad[1], 2, 1e-7);
done:
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* An add of 40 inputs, wider than the executor's bit per input of fresh gradients: each relu of
 * x > 0 passes dy = 1 back, 40 times through s and once more through r0: dx = 41 (by hand);
 * x <= 0 gives 0. Adds of 33 or more inputs once overwrote input 0's gradient (dx = 40). */
static void test_wide_add_by_hand(void)
{
    cn_ctx *ctx = new_ctx();
    char spec[4096] = "input 2x2x1 as x\n";
    for (int i = 0; i < 40; i++) snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "relu from x as r%d\n", i);
    strcat(spec, "add");
    for (int i = 0; i < 40; i++) snprintf(spec + strlen(spec), sizeof spec - strlen(spec), " r%d", i);
    strcat(spec, " as s\nadd s r0\n");
    cn_net *net = parse_spec(ctx, spec);
    CHECK(net && cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    float x[4] = { 1, -2, 3, 4 }, dy[4] = { 1, 1, 1, 1 };
    CHECK(net && cn_net_forward(ctx, net, x, 1, 1) == CN_OK && cn_net_backward(ctx, net, dy) == CN_OK);
    const float *dx = net ? cn_net_input_grad(net) : NULL;
    CHECK(dx && dx[0] == 41.0f && dx[1] == 0.0f && dx[2] == 41.0f && dx[3] == 41.0f);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* a new op of ops.def without a case above fails here */
static void test_every_op_has_a_case(void)
{
    int covered[CN_OP_COUNT] = { 0 };
    cn_ctx *ctx = new_ctx();
    for (int c = 0; c < N_CASES; c++) {
        cn_net *net = parse_spec(ctx, grad_cases[c].spec);
        for (int i = 0; net && i < net->n; i++) covered[net->nodes[i].id] = 1;
        cn_net_destroy(net);
    }
    for (int op = 0; op < CN_OP_COUNT; op++)
        if (!covered[op]) test_fail(__FILE__, __LINE__, "op '%s' has no case in grad_cases", cn_ops[op]->name);
    cn_ctx_destroy(ctx);
}

static const test_case cases[] = {
    { "every op of ops.def has a gradient-check case", test_every_op_has_a_case },
    { "gradcheck: every op and option, error <= 1e-6", test_gradcheck_every_op },
    { "backward accumulates (+=) and skips a NULL dx", test_backward_accumulates },
    { "gradcheck catches a wrong backward", test_gradcheck_catches_errors },
    { "maxpool/minpool pick the first extreme, route dy to it, skip padding", test_maxpool_minpool_by_hand },
    { "relu6, hardsigmoid, hardswish, elu, prelu at and around their kinks", test_piecewise_activations_by_hand },
    { "avgpool divides by the window clipped to the padded input (PyTorch)", test_avgpool_divisor_by_hand },
    { "batchnorm statistics, running statistics, evaluation forward and backward", test_batchnorm_by_hand },
    { "dropout keep=0.5: mask from the stream, scale 2, identity at evaluation", test_dropout_by_hand },
    { "softmax over channels sums to 1", test_softmax_by_hand },
    { "dense: PyTorch layout, forward and backward", test_dense_by_hand },
    { "add of 40 inputs: dx by hand through the executor", test_wide_add_by_hand },
};

TEST_MAIN(cases)
