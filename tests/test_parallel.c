/* test_parallel.c — a batch cut into shards (data-parallel training, src/train/parallel.c) gives
 * the step of the whole batch: with whole-batch batch norm the update, loss and running
 * statistics of one unsharded step; with per-shard batch norm the shards' own steps weighted by
 * their rows, and shard 0's running statistics. The references are the plain step
 * (cn_train_step) on the same weights, computed apart. Under mpirun: tests/mpi_test.sh. */
#include <math.h>
#include <stdlib.h>

#include "../src/model/model_impl.h"
#include "../src/train/train_impl.h"
#include "test_util.h"

static cn_ctx *ctx;
static void setup(void) { CHECK(cn_ctx_create(NULL, &ctx) == CN_OK); }
static void teardown(void) { cn_ctx_destroy(ctx); }

enum { BATCH = 10, CHW = 2 * 6 * 6 };
static const char *spec = "input 6x6x2; conv 3 3x3 pad=1; batchnorm; relu; flatten; dense 4";
static float x[BATCH * CHW];
static int32_t labels[BATCH];

static cn_net *fresh(void)
{
    cn_net *net = parse_spec(ctx, spec);
    CHECK(net && cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 7) == CN_OK);
    return net;
}

static cn_optim *sgd(cn_net *net)
{
    cn_optim_config oc;
    cn_optim_defaults(&oc, CN_OPTIM_SGD);
    oc.lr = 0.1;
    cn_optim *opt = NULL;
    CHECK(cn_optim_create(ctx, net, &oc, &opt) == CN_OK);
    return opt;
}

static void make_data(void)
{
    cn_rng r;
    cn_rng_seed(&r, 42);
    for (int i = 0; i < BATCH * CHW; i++) x[i] = (float)cn_rng_normal(&r) + 0.5f;
    for (int i = 0; i < BATCH; i++) labels[i] = (int32_t)cn_rng_below(&r, 4);
}

/* one plain SGD step of net on rows [lo, lo + n) */
static double plain_step(cn_net *net, int64_t lo, int64_t n)
{
    cn_optim *opt = sgd(net);
    cn_step_config sc = { CN_LOSS_CE_LOGITS, 0 };
    double loss = NAN;
    CHECK(cn_train_step(ctx, net, opt, &sc, x + lo * CHW, labels + lo, n, &loss) == CN_OK);
    cn_optim_destroy(opt);
    return loss;
}

/* one sharded step of net on the whole batch */
static double sharded_step(cn_net *net, int shards, int local_bn)
{
    cn_parallel *p = NULL;
    CHECK(cn_parallel_open(ctx, shards, local_bn, &p) == CN_OK);
    CHECK_INT(cn_parallel_size(p), 1);
    int64_t row0 = -1, rows = -1, correct = -1;
    CHECK(cn_parallel_attach(ctx, p, net, BATCH, &row0, &rows) == CN_OK);
    CHECK_INT(row0, 0);
    CHECK_INT(rows, BATCH);
    cn_optim *opt = sgd(net);
    cn_step_config sc = { CN_LOSS_CE_LOGITS, 0 };
    double loss = NAN;
    CHECK(cn_train_step_sharded(ctx, net, opt, &sc, p, x, labels, rows, BATCH, &loss, &correct) == CN_OK);
    CHECK(correct >= 0 && correct <= BATCH);
    cn_optim_destroy(opt);
    cn_parallel_detach(ctx, p, net);
    cn_parallel_close(p);
    return loss;
}

/* every value of a's and b's parameters (trainable and buffers) minus start's, compared:
 * |da - db| <= tol * the largest |db| of the tensor, or a hundredth of the net's largest if
 * that is more (conv1.bias before batch norm moves by rounding alone) */
static void same_updates(cn_net *a, cn_net *b, const float *start, double tol)
{
    float *pa = cn_net_params(a, NULL, NULL);
    double net_big = 0;
    for (int t = 0; t < cn_net_tensor_count(b); t++) {
        cn_tensor tb;
        CHECK(cn_net_tensor(ctx, b, t, &tb) == CN_OK);
        int64_t off = tb.data - cn_net_params(b, NULL, NULL);
        for (int64_t i = 0; i < tb.count; i++) net_big = fmax(net_big, fabs((double)tb.data[i] - start[off + i]));
    }
    for (int t = 0; t < cn_net_tensor_count(a); t++) {
        cn_tensor ta, tb;
        CHECK(cn_net_tensor(ctx, a, t, &ta) == CN_OK && cn_net_tensor(ctx, b, t, &tb) == CN_OK);
        int64_t off = ta.data - pa;
        double big = net_big / 100, worst = 0;
        for (int64_t i = 0; i < ta.count; i++) big = fmax(big, fabs((double)tb.data[i] - start[off + i]));
        for (int64_t i = 0; i < ta.count; i++)
            worst = fmax(worst, fabs(((double)ta.data[i] - start[off + i]) - ((double)tb.data[i] - start[off + i])));
        if (!(worst <= tol * big)) test_fail(__FILE__, __LINE__, "%s: updates differ by %g of %g", ta.name, worst, big);
    }
}

static float *copy_params(cn_net *net)
{
    int64_t total;
    float *p = cn_net_params(net, NULL, &total), *c = malloc((size_t)total * sizeof(float));
    memcpy(c, p, (size_t)total * sizeof(float));
    return c;
}

static void test_whole_batch_bn(void)
{
    make_data();
    for (int shards = 1; shards <= 4; shards++) {
        cn_net *plain = fresh(), *cut = fresh();
        float *start = copy_params(plain);
        double l1 = plain_step(plain, 0, BATCH), l2 = sharded_step(cut, shards, 0);
        CHECK_NEAR(l2, l1, 1e-6);
        /* the same step: weights, biases, gamma, beta, running mean and variance */
        same_updates(cut, plain, start, 2e-5);
        free(start);
        cn_net_destroy(plain), cn_net_destroy(cut);
    }
}

static void test_local_bn(void)
{
    make_data();
    cn_net *s0 = fresh(), *s1 = fresh(), *cut = fresh();
    float *start = copy_params(s0);
    plain_step(s0, 0, 4); /* 10 rows in 3 shards: 4, 3, 3 */
    plain_step(s1, 4, 3);
    cn_net *s2 = fresh();
    plain_step(s2, 7, 3);
    sharded_step(cut, 3, 1);
    /* expected: the shards' updates weighted by their rows; shard 0's running statistics */
    int64_t trainable, total;
    float *e = cn_net_params(s0, &trainable, &total);
    const float *p1 = cn_net_params(s1, NULL, NULL), *p2 = cn_net_params(s2, NULL, NULL);
    for (int64_t i = 0; i < trainable; i++)
        e[i] = (float)(start[i] + 0.4 * (e[i] - start[i]) + 0.3 * (p1[i] - start[i]) + 0.3 * (p2[i] - start[i]));
    same_updates(cut, s0, start, 2e-5);
    free(start);
    cn_net_destroy(s0), cn_net_destroy(s1), cn_net_destroy(s2), cn_net_destroy(cut);
}

static void test_backends(void)
{
    make_data();
    for (int b = 0; b < cn_backend_count(); b++) {
        const cn_backend *be = cn_backend_at(b);
        if (be == cn_backend_reference() || (be->open && be->open(ctx, CN_PRECISION_FP32))) continue;
        for (int local = 0; local <= 1; local++) {
            cn_net *ref = fresh(), *fast = fresh();
            float *start = copy_params(ref);
            cn_net_set_backend(ref, cn_backend_reference());
            cn_net_set_backend(fast, be);
            sharded_step(ref, 3, local);
            sharded_step(fast, 3, local);
            same_updates(fast, ref, start, 2e-5);
            free(start);
            cn_net_destroy(ref), cn_net_destroy(fast);
        }
    }
}

/* shard s of SUM_SHARDS gets vals[order[s]] as its gradients of "input 1x1x8; dense 6" (48
 * weights and 6 biases, one bucket); out: the summed gradients */
enum { SUM_SHARDS = 3, SUM_N = 54 };
static void sum_by_hand(const float vals[SUM_SHARDS][SUM_N], const int *order, float *out)
{
    cn_net *net = parse_spec(ctx, "input 1x1x8; dense 6");
    CHECK(net && cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 3) == CN_OK);
    cn_parallel *p = NULL;
    int64_t row0, rows, n;
    float in[SUM_SHARDS * 8] = { 0 }, dout[SUM_SHARDS * 6] = { 0 };
    CHECK(cn_parallel_open(ctx, SUM_SHARDS, 0, &p) == CN_OK);
    CHECK(cn_parallel_attach(ctx, p, net, SUM_SHARDS, &row0, &rows) == CN_OK);
    CHECK(cn_net_forward(ctx, net, in, SUM_SHARDS, 1) == CN_OK);
    cn_net_zero_grad(net);
    cn_net_grads(net, &n);
    CHECK_INT(n, SUM_N);
    for (int s = 0; s < SUM_SHARDS; s++) memcpy(cn_net_shard_grads(net, s), vals[order[s]], sizeof vals[0]);
    /* a backward of zeros adds nothing, and hands the layer's gradients to the sum */
    CHECK(cn_net_backward(ctx, net, dout) == CN_OK);
    CHECK(cn_parallel_sum_grads(ctx, p) == CN_OK);
    memcpy(out, cn_net_grads(net, NULL), SUM_N * sizeof(float));
    cn_parallel_detach(ctx, p, net);
    cn_parallel_close(p);
    cn_net_destroy(net);
}

/* The sum of the shards' gradients is exact (README: values within 2^36 of their bucket's
 * largest): set by hand, spread over 2^-12 .. 2^12, or 2^0 .. 2^10 beside pairs of +-2^25
 * cancelling, they come out as the correctly rounded float of their exact sum (in double here,
 * exact for these values), the same bits whichever shard holds which; a float sum in shard
 * order loses the 1.5 beside 2^25 - 2^25 in one of the orders. */
static void test_exact_sum(void)
{
    static const int orders[2][SUM_SHARDS] = { { 0, 1, 2 }, { 2, 0, 1 } };
    static float vals[SUM_SHARDS][SUM_N];
    float got[2][SUM_N];
    cn_rng r;
    cn_rng_seed(&r, 9);
    for (int set = 0; set < 2; set++) {
        for (int j = 0; j < SUM_N; j++)
            for (int s = 0; s < SUM_SHARDS; s++)
                vals[s][j] = set == 0 ? (float)ldexp(cn_rng_normal(&r), (int)cn_rng_below(&r, 25) - 12)
                                      : (float)ldexp(1.0 + cn_rng_uniform(&r), (int)cn_rng_below(&r, 11));
        if (set == 1)
            for (int j = 0; j < 6; j++) vals[0][j] = 33554432.0f, vals[1][j] = -33554432.0f, vals[2][j] = 1.5f;
        for (int o = 0; o < 2; o++) sum_by_hand((const float(*)[SUM_N])vals, orders[o], got[o]);
        int exact = 0, same = 0;
        for (int j = 0; j < SUM_N; j++) {
            float want = (float)((double)vals[0][j] + (double)vals[1][j] + (double)vals[2][j]);
            exact += got[0][j] == want;
            same += memcmp(&got[0][j], &got[1][j], sizeof(float)) == 0;
        }
        CHECK_INT(exact, SUM_N);
        CHECK_INT(same, SUM_N);
    }
    CHECK(got[0][0] == 1.5f && got[1][0] == 1.5f);
    float big = 33554432.0f, small = 1.5f;
    CHECK((big + -big) + small == 1.5f && big + (-big + small) != 1.5f); /* what a float sum in order does */
}

static void test_plans(void)
{
    cn_parallel *p = NULL;
    CHECK(cn_parallel_open(ctx, 0, 0, &p) == CN_OK);
    CHECK_INT(cn_parallel_shards(p, 64), 4); /* one per 16 images */
    CHECK_INT(cn_parallel_shards(p, 65), 5);
    CHECK_INT(cn_parallel_shards(p, 3), 1);
    cn_parallel_close(p);
    CHECK(cn_parallel_open(ctx, 11, 0, &p) == CN_OK);
    cn_net *net = fresh();
    int64_t row0, rows;
    CHECK(cn_parallel_attach(ctx, p, net, BATCH, &row0, &rows) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "11 shards of a batch of 10");
    cn_parallel_close(p);
    cn_net_destroy(net);
    CHECK(cn_parallel_open(ctx, -1, 0, &p) == CN_E_ARG);
}

static const test_case cases[] = {
    { "setup", setup },
    { "shards with whole-batch batch norm = one unsharded step", test_whole_batch_bn },
    { "shards with per-shard batch norm = the shards' steps by their rows", test_local_bn },
    { "every backend's sharded step = the reference kernels'", test_backends },
    { "the shards' gradients summed exactly, in any order", test_exact_sum },
    { "shard counts and plans", test_plans },
    { "teardown", teardown },
};
TEST_MAIN(cases)
