/* test_backend.c — the backends against the reference kernels. First the op table, in the
 * spirit of ggml's test-backend-ops: every op of ops.def (a new op without a case here fails)
 * on every backend compiled in, forward and backward on odd shapes with strides, padding and
 * groups where the op has them. Then the CPU backend's convolution (our SGEMM, padded rows,
 * packed patches) over every conv option. The same net runs forward and backward on both
 * backends from the same weights and input; outputs, input gradients and weight gradients must
 * agree to 1e-5 relative (max |a - b| / max |b| per tensor). The same runs on 1, 2 and 3 threads
 * must give the same bits. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdlib.h>

#include "../src/model/model_impl.h"
#include "../src/backend/cpu/cpu_impl.h"
#include "../src/backend/cpu/gemm.h"
#include "../src/train/step_row.h"
#include "../src/train/train_impl.h"
#include "test_util.h"
#ifdef CN_HAVE_CUDA
#include "../src/backend/cuda/cuda_impl.h"
#endif

static cn_ctx *ctx;

static double rel(const float *a, const float *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return s > 0 ? d / s : d;
}

/* the precision the op table runs a backend in (cn_precision), for its lines. In bf16 and tf32
 * the inputs, parameters and output gradients run() makes are values the precision holds
 * exactly: rounding them (in both runs) keeps a backend's first rounding of its products'
 * operands from moving a value across a kink (hardsigmoid's at 3, say), where the derivative
 * jumps and any rounding would fail the comparison; the values the layers make (and in bf16 the
 * products' results and gradients) are still rounded on their way into a product. */
static int precision_now;
/* 1 while the op table runs a case between identities (between_identities): run() makes the
 * first layer, a 1x1 convolution, the identity */
static int wrapped_now;
static const char *const precision_names[] = { "fp32", "tf32", "bf16" };

static float bf16_value(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u; /* to nearest even (finite values only) */
    memcpy(&v, &u, sizeof v);
    return v;
}

/* v as the op table's precision holds it: bf16's 7 mantissa bits, TF32's 10 (to nearest, ties
 * away, as the tensor cores take a float), fp32's all */
static float held_value(float v)
{
    if (precision_now == CN_PRECISION_BF16) return bf16_value(v);
    if (precision_now != CN_PRECISION_TF32) return v;
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    u = (u + 0x1000u) & ~0x1fffu; /* finite values only */
    memcpy(&v, &u, sizeof v);
    return v;
}

/* runs spec on backend be: returns output, input gradient and parameter gradients, malloc'ed.
 * Every trainable value is moved off its initial value (scales of 1 and shifts and biases of 0
 * would hide a scale read for a shift), and the backward pass runs twice, the second time over
 * the first's gradients (a kernel that adds where it should store shows there). */
static void run(const char *spec, const cn_backend *be, int64_t batch, float **y, float **dx, float **dw, int64_t *ny,
                int64_t *nx, int64_t *nw)
{
    cn_net *net = parse_spec(ctx, spec);
    *y = *dx = *dw = NULL;
    if (!net) return;
    cn_net_set_backend(net, be);
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 77) == CN_OK);
    cn_layer_info in = layer_at(ctx, net, 0, 1);
    *nx = in.c * in.h * in.w * batch;
    float *x = malloc((size_t)*nx * sizeof(float));
    cn_rng rng;
    cn_rng_seed(&rng, 5);
    int64_t trainable;
    float *params = cn_net_params(net, &trainable, NULL);
    for (int64_t i = 0; i < trainable; i++) params[i] += (float)(0.25 * cn_rng_normal(&rng));
    for (int64_t i = 0; i < *nx; i++) x[i] = (float)cn_rng_normal(&rng);
    for (int64_t i = 0; i < trainable; i++) params[i] = held_value(params[i]);
    for (int64_t i = 0; i < *nx; i++) x[i] = held_value(x[i]);
    for (int64_t i = 0; wrapped_now && i < in.c * in.c; i++) params[i] = i / in.c == i % in.c; /* its weights, first */
    CHECK(cn_net_forward(ctx, net, x, batch, 1) == CN_OK);
    const float *out = cn_net_output(net, ny);
    *y = malloc((size_t)*ny * sizeof(float));
    memcpy(*y, out, (size_t)*ny * sizeof(float));
    float *g = malloc((size_t)*ny * sizeof(float));
    for (int64_t i = 0; i < *ny; i++) g[i] = (float)cn_rng_normal(&rng);
    for (int64_t i = 0; i < *ny; i++) g[i] = held_value(g[i]);
    for (int pass = 0; pass < 2; pass++) {
        cn_net_zero_grad(net);
        CHECK(cn_net_backward(ctx, net, g) == CN_OK);
    }
    *dx = malloc((size_t)*nx * sizeof(float));
    memcpy(*dx, cn_net_input_grad(net), (size_t)*nx * sizeof(float));
    const float *grads = cn_net_grads(net, nw);
    *dw = malloc((size_t)(*nw ? *nw : 1) * sizeof(float));
    memcpy(*dw, grads, (size_t)*nw * sizeof(float));
    /* the identity's own weight gradient is not the case's (a sum of the case's input gradient
     * times its input, all rounded to bf16 on the way): left out */
    for (int64_t i = 0; wrapped_now && i < in.c * in.c; i++) (*dw)[i] = 0;
    free(g);
    free(x);
    cn_net_destroy(net);
}

/* spec on backend be against the reference kernels: relative error below tol */
static void compare_on(const cn_backend *be, const char *spec, int64_t batch, double tol)
{
    float *y0, *dx0, *dw0, *y1, *dx1, *dw1;
    int64_t ny, nx, nw, ny1, nx1, nw1;
    run(spec, cn_backend_reference(), batch, &y0, &dx0, &dw0, &ny, &nx, &nw);
    run(spec, be, batch, &y1, &dx1, &dw1, &ny1, &nx1, &nw1);
    if (y0 && y1) {
        CHECK(ny == ny1 && nx == nx1 && nw == nw1);
        double e = rel(y1, y0, ny), ex = rel(dx1, dx0, nx), ew = rel(dw1, dw0, nw);
        char label[32];
        snprintf(label, sizeof label, "%s%s%s", be->name, precision_now ? "-" : "",
                 precision_now ? precision_names[precision_now] : "");
        printf("  %-9s %-70s y %.1e dx %.1e dw %.1e\n", label, spec, e, ex, ew);
        CHECK(e < tol && ex < tol && ew < tol);
    }
    free(y0), free(dx0), free(dw0), free(y1), free(dx1), free(dw1);
}

/* whether backend be can run here in precision (cn_precision); one that cannot (no GPU) is
 * skipped with its reason, or fails the test when CN_REQUIRE_GPU=1 (make check-gpu) */
static int runs_here(const cn_backend *be, int precision)
{
    const char *const *names = precision_names;
    if (!be->open) return precision == CN_PRECISION_FP32;
    if (be->open(ctx, precision) == CN_OK) return 1;
    const char *required = getenv("CN_REQUIRE_GPU");
    if (required && !strcmp(required, "1"))
        test_fail(__FILE__, __LINE__, "backend %s (%s) cannot run and CN_REQUIRE_GPU=1: %s", be->name,
                  names[precision], cn_ctx_message(ctx));
    else printf("  SKIPPED backend %s (%s): %s\n", be->name, names[precision], cn_ctx_message(ctx));
    return 0;
}

/* the tolerance of a precision (the issue's): fp32 rounds as the reference does, tf32 rounds the
 * products' inputs to 10-bit mantissas, bf16 to 7-bit ones (and their results to bf16) */
static double tolerance(int precision)
{
    return precision == CN_PRECISION_BF16 ? 1e-2 : precision == CN_PRECISION_TF32 ? 1e-3 : 1e-5;
}

/* spec on the default backend and every other that runs here (in fp32) */
static void compare(const char *spec, int64_t batch)
{
    compare_on(cn_backend_default(), spec, batch, 1e-5);
    for (int b = 0; b < cn_backend_count(); b++) {
        const cn_backend *be = cn_backend_at(b);
        if (be != cn_backend_default() && be != cn_backend_reference() && be->open && be->open(ctx, CN_PRECISION_FP32) == CN_OK)
            compare_on(be, spec, batch, 1e-5);
    }
}

/* spec with its layers between a 1x1 convolution after the input (made the identity by run())
 * and a flatten at the end, both the identity on the values and both able to change a value's
 * storage: in bf16 the layers' inputs, outputs and gradients are then stored as bf16 NHWC where
 * their rows take it (cn_kernels.half), which a net's own input and output never are */
static void between_identities(const char *spec, char *out, size_t cap)
{
    cn_net *net = parse_spec(ctx, spec);
    long long c = net ? net->nodes[0].out.c : 1;
    cn_net_destroy(net);
    const char *semi = strchr(spec, ';'), *as = strstr(spec, " as ");
    if (!semi) semi = spec + strlen(spec);
    if (!as || as > semi) as = semi; /* the input's name goes to the convolution, which stands for it */
    snprintf(out, cap, "%.*s; conv %lld 1x1 bias=no%.*s%s; flatten", (int)(as - spec), spec, c, (int)(semi - as), as,
             semi);
}

/* every op on every backend: odd sizes, strides, padding, groups, several inputs */
static void test_op_table(void)
{
    static const char *const specs[] = {
        "input 9x7x4; conv 6 3x3 stride=2 pad=1 groups=2",
        "input 8x11x3; conv 5 4x2 pad=same dilation=2",
        "input 6x5x5; conv 7 1x1 bias=no",
        "input 5x5x16; conv 12 5x5",                  /* a kernel as large as the image (LeNet-5's C5) */
        "input 4x3x6; conv 4 4x3 stride=2 groups=2 bias=no",
        "input 9x7x3; maxpool 3x3 stride=2 pad=1 ceil=yes",
        "input 7x9x2; minpool 2x2 pad=same",
        "input 9x8x3; avgpool 3x2 stride=2 pad=1",
        "input 5x7x6; globalavgpool",
        "input 2x2x3; globalmaxpool",                 /* the CPU's 2x2 stride-2 path */
        "input 5x7x3; relu",
        "input 5x7x3; leakyrelu slope=0.3",
        "input 5x7x3; sigmoid",
        "input 5x7x3; tanh",
        "input 3x5x7; softmax",
        "input 4x3x3; flatten; dense 9; softmax",
        "input 5x7x6; batchnorm",
        "input 37x29x2; batchnorm",                   /* a channel's values in several runs (CUDA) */
        "input 40x30x2; conv 3 3x3 pad=1",            /* the bias gradient in several runs (CUDA) */
        "input 20x20x2; deconv 2 3x3 stride=2 pad=1 outpad=1",
        "input 3x3x2; flatten; dense 6; batchnorm",
        "input 5x7x3; dropout keep=0.7",
        "input 5x7x3; flatten; dense 4",
        "input 5x7x3; dense 11",
        "input 1x1x13; dense 5 bias=no",
        "input 6x5x2 as x; conv 3 1x1 from x as a; maxpool 3x3 stride=1 pad=1 from x as b; concat a b x",
        "input 6x5x3 as x; conv 3 3x3 pad=1 as a; relu as r; add x r a",
        "input 5x4x3; upsample 2x3",
        "input 5x4x3; upsample size=7x9 mode=bilinear align_corners=yes",
        "input 4x3x4; deconv 6 3x3 stride=2 pad=1 outpad=1 groups=2",
        "input 6x5x3 as x; globalavgpool as g; mul x g as m; add g m",
        "input 5x4x3; pad 1x2 top=0 mode=reflect; crop 4x3 offset=1x1",
        "input 5x4x6 as x; channels 4 start=1; shuffle 2 as s; channels 2 from x as c; concat s c",
        /* the layers of issue 15 */
        "input 5x7x3; conv 4 3x3 pad=1; relu6",
        "input 5x7x3; conv 4 3x3 pad=1; hardsigmoid",
        "input 5x7x3; conv 4 3x3 pad=1; hardswish",
        "input 5x7x3; silu",
        "input 5x7x3; gelu",
        "input 5x7x3; gelu approximate=tanh",
        "input 5x7x3; elu alpha=0.5",
        "input 5x7x3; prelu",
        "input 5x7x3; scale init=0.5",
        "input 5x7x3 as x; scale as s; add x s",
        "input 3x3x2; flatten; dense 6; scale init=-2",
        "input 5x7x3; layernorm",
        "input 5x7x6; layernorm over=channels eps=1e-6",
        "input 5x7x6 as x; layernorm over=channels affine=no as l; add x l",
        "input 5x7x6; groupnorm 3",
        "input 5x7x6; instancenorm affine=yes",
        "input 5x7x6; batchnorm affine=no",
        "input 5x7x6; globalmaxpool",
        "input 9x7x3; adaptiveavgpool 4x3",
        "input 11x10x3; maxpool 3x3 stride=2 pad=1 dilation=2",
        "input 9x10x3; minpool 2x3 stride=2 dilation=3x2 ceil=yes",
        "input 9x8x3; avgpool 3x3 stride=2 pad=1 ceil=yes count_pad=no",
        /* their options; an input read twice, so that a backward adds to a gradient (not fresh) */
        "input 6x5x3 as x; conv 3 1x1 as a; globalavgpool from x as g; mul g x a g",
        "input 6x5x3 as x; mul x x",
        "input 5x4x3; pad 2",
        "input 5x4x3 as x; pad 2x1 top=3 right=0 mode=replicate as p; crop margin=2x1 top=3 right=0 as c; add x c",
        "input 1x4x2; pad 2 mode=replicate",
        "input 6x5x3 as x; pad 3x2 mode=reflect as p; crop 6x5 as c; add c x",
        "input 5x4x3; upsample size=7x5",
        "input 9x7x3; upsample size=4x3",
        "input 5x4x3; upsample 3x2 mode=bilinear",
        "input 4x4x3 as x; upsample size=7x6 mode=bilinear as u; adaptiveavgpool 4x4 as a; add x a",
        "input 9x7x3; upsample size=4x5 mode=bilinear",
        "input 9x7x3; upsample size=4x5 mode=bilinear align_corners=yes",
        "input 6x6x3 as x; adaptiveavgpool 4x5 as a; upsample size=6x6 as u; add x u",
        "input 3x2x3; adaptiveavgpool 5x4",
        "input 5x7x3 as x; layernorm affine=no as l; add x l",
        "input 3x3x2; flatten; dense 6; layernorm",
        "input 5x7x6 as x; groupnorm 2 affine=no as g; add x g",
        "input 5x7x6; instancenorm",
        "input 5x7x6 as x; batchnorm affine=no as b; add x b",
        "input 5x7x3 as x; conv 3 3x3 pad=1 as a; add x a; relu; conv 2 1x1", /* relu in the add's pass */
        "input 5x7x4 as x; globalavgpool as g; add x g; relu",
        "input 5x4x3 as x; deconv 3 3x3 pad=1 as d; add x d",
        "input 4x3x2; deconv 3 3x3 dilation=3 outpad=2",
    };
    int covered[CN_OP_COUNT] = { 0 }, runs[8][3] = { { 0 } };
    CHECK(cn_backend_count() <= 8);
    for (int b = 0; b < cn_backend_count() && b < 8; b++)
        for (int p = CN_PRECISION_FP32; p <= CN_PRECISION_BF16; p++) runs[b][p] = runs_here(cn_backend_at(b), p);
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        cn_net *net = parse_spec(ctx, specs[s]);
        for (int i = 0; net && i < net->n; i++) covered[net->nodes[i].id] = 1;
        cn_net_destroy(net);
        for (int b = 0; b < cn_backend_count() && b < 8; b++)
            for (int p = CN_PRECISION_FP32; p <= CN_PRECISION_BF16; p++) {
                const cn_backend *be = cn_backend_at(b);
                if (be == cn_backend_reference() || !runs[b][p] || (be->open && be->open(ctx, p))) continue;
                precision_now = p;
                compare_on(be, specs[s], 3, tolerance(p));
                if (p == CN_PRECISION_BF16) {
                    char wrapped[400];
                    between_identities(specs[s], wrapped, sizeof wrapped);
                    wrapped_now = 1;
                    compare_on(be, wrapped, 3, tolerance(p));
                    wrapped_now = 0;
                }
                precision_now = CN_PRECISION_FP32;
                if (be->open) be->open(ctx, CN_PRECISION_FP32);
            }
    }
    for (int op = 0; op < CN_OP_COUNT; op++)
        if (!covered[op]) test_fail(__FILE__, __LINE__, "op '%s' has no case in test_op_table", cn_ops[op]->name);
}

static void test_conv_shapes(void)
{
    static const char *specs[] = {
        "input 9x11x3; conv 5 3x3",
        "input 9x11x3; conv 5 3x3 pad=1",
        "input 9x11x3; conv 7 3x3 stride=2 pad=same",
        "input 8x8x3; conv 4 3x3 stride=2 pad=same",
        "input 13x7x4; conv 6 5x3 stride=2x1 pad=2x1",
        "input 12x12x4; conv 6 3x3 dilation=2 pad=2",
        "input 10x10x6; conv 9 3x3 groups=3 pad=1 bias=no",
        "input 10x10x8; conv 8 3x3 groups=8 pad=1",
        "input 7x9x16; conv 12 1x1",
        "input 7x9x16; conv 12 1x1 stride=2",
        "input 7x9x6; conv 10 1x1 groups=2",
        "input 5x5x2; conv 3 5x5",
        "input 6x6x3; conv 33 3x3 pad=1; relu; maxpool 2x2; conv 17 3x3 pad=same",
        /* stride 1 on padded rows: even kernels (same pads 1 before, 2 after), rows wider
         * than a panel, dilation; rows too short to be worth padding */
        "input 9x10x3; conv 4 4x4 pad=same",
        "input 9x10x6; conv 4 2x3 pad=same dilation=2",
        "input 5x70x4; conv 3 3x3 pad=1",
        "input 20x20x1; conv 6 5x5 pad=2",
        "input 4x4x16; conv 20 3x3 pad=1",
        "input 3x3x4; conv 5 3x3 pad=1 bias=no",
        /* maps that shrink (valid): the input gradient goes through dcol */
        "input 9x9x16; conv 12 5x5",
        /* padding past the kernel's reach: the input gradient goes through dcol */
        "input 6x7x3; conv 4 1x3 pad=1",
        /* few taps (a first layer's weight gradient in registers): dilation, rows longer than a
         * vector, 27 taps in three chunks, an odd count of output channels */
        "input 13x9x1; conv 5 3x3 dilation=2 pad=2",
        "input 7x37x2; conv 3 2x3 pad=1",
        "input 6x5x3; conv 7 3x3 bias=no",
        "input 5x5x6; conv 4 1x1 pad=1",
        /* depthwise (one channel a group): stride 2 with padding, dilation, an even kernel with
         * `same`, a relu in its pass, rows longer than a vector */
        "input 9x11x6; conv 6 3x3 stride=2 pad=1 groups=6 bias=no",
        "input 12x10x4; conv 4 3x3 dilation=2 pad=2 groups=4",
        "input 7x8x5; conv 5 4x4 pad=same groups=5; relu",
        "input 6x37x3; conv 3 5x5 pad=2 groups=3; relu; conv 3 3x3 stride=2 groups=3",
        /* the weight gradient a row at a time for every tap (kernels up to 7x7, a tap at a time
         * past 5x5; column stride 1 or 2: rows of 16 lanes split into even and odd columns), and
         * beyond it (stride 3) */
        "input 11x40x4; conv 4 5x5 stride=2 pad=2 groups=4 bias=no",
        "input 9x35x3; conv 3 3x3 stride=2x1 pad=1 dilation=2 groups=3",
        "input 9x9x2; conv 2 7x7 pad=3 groups=2",
        "input 10x13x2; conv 2 3x3 stride=3 pad=1 groups=2",
        /* 1x1 with a stride (the image subsampled, then read as a matrix): ResNet's projection,
         * strides 3x2 with padding, groups, an input gradient added to another's, enough for
         * threads */
        "input 8x8x6; conv 10 1x1 stride=2 bias=no",
        "input 7x9x4; conv 6 1x1 stride=3x2 pad=1",
        "input 6x6x4; conv 6 1x1 stride=2 groups=2; relu",
        "input 8x8x4 as x; conv 4 1x1 stride=2 as d; upsample 2 from d as u; add x u",
        "input 40x40x16; conv 24 1x1 stride=2 pad=1",
        /* strides: padding 0 to 2, rows of several vectors, a row stride alone, stride 3 with
         * dilation */
        "input 10x10x4; conv 4 3x3 stride=2",
        "input 9x70x4; conv 5 3x3 stride=2 pad=1",
        "input 11x12x3; conv 4 5x5 stride=2 pad=2 bias=no",
        "input 12x9x4; conv 3 3x3 stride=2x1 pad=1",
        "input 14x13x3; conv 4 3x3 stride=3 dilation=2 pad=2",
        /* output rows of at most 16 from input rows of at most 32, permuted in registers
         * (register_block, col2im_rows in conv.c): the widest rows, an input gradient added to
         * another's, a kernel wider than its stride twice, a row stride alone */
        "input 12x32x20; conv 18 3x3 stride=2 pad=1",
        "input 12x12x4 as x; conv 4 3x3 stride=2 pad=1 as d; upsample 2 from d as u; add x u",
        "input 9x17x5; conv 6 5x5 stride=2 pad=2 bias=no",
        "input 9x14x3; conv 7 3x3 stride=2x1 pad=1",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) compare(specs[i], 3);
    /* output planes of at most 16 floats (patches permuted in registers: register_block in conv.c): 23
     * samples, so that panels of 48 pixels and slices of 192 begin inside a 3x3 map (9 pixels),
     * and tap counts that are not multiples of 16 */
    static const char *small[] = {
        "input 3x3x6; conv 7 3x3 pad=1",
        "input 4x4x5; conv 9 3x3 pad=1 bias=no",
        "input 4x4x8; conv 6 3x3 stride=2 pad=1",
        "input 4x3x6; conv 4 2x2 dilation=2 pad=1 groups=2",
        "input 2x2x3; conv 4 3x3 pad=1",
        "input 4x4x4; conv 4 4x4 pad=same",
        "input 4x4x2; conv 3 5x5 pad=2",
        "input 8x8x5; conv 6 3x3 stride=2 pad=1",   /* input planes of 17 to 64 floats */
        "input 6x5x4; conv 5 3x3 stride=2 pad=1",
        "input 7x7x3; conv 4 1x1 stride=2",
        "input 5x4x3; conv 4 2x2 stride=2 pad=same",
        /* the input gradient added to another's (a plane not fresh) */
        "input 8x8x6 as x; conv 5 3x3 stride=2 pad=1 as c; conv 5 1x1 stride=2 from x as p; add c p",
        "input 8x8x6 as x; conv 5 1x1 stride=2 as p; conv 5 3x3 stride=2 pad=1 from x as c; add c p",
    };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) compare(small[i], 23);
}

/* deconv on the CPU runs the convolution's products the other way round: each of its paths */
static void test_deconv_shapes(void)
{
    static const char *specs[] = {
        "input 6x5x4; deconv 3 2x2 stride=2",                             /* U-Net's up-convolution */
        "input 7x6x6; deconv 4 3x3 stride=2 pad=1 outpad=1 groups=2",     /* general path, groups */
        "input 9x8x3; deconv 5 3x3 pad=1",                                /* stride 1: flipped kernels */
        "input 9x8x3; deconv 5 3x3",                                      /* stride 1, the map grows */
        "input 6x7x8; deconv 6 1x1",                                      /* 1x1: the image as a matrix */
        "input 5x4x6; deconv 3 1x1 stride=2 outpad=1",                    /* 1x1 with a stride: subsampled */
        "input 5x6x4; deconv 4 3x2 stride=2x1 pad=1x0 dilation=2 bias=no",
        "input 16x16x16; deconv 8 4x4 stride=2 pad=1",                    /* enough for threads */
        /* depthwise: its input gradient added to the one the add stored first */
        "input 6x6x4 as x; deconv 4 3x3 stride=2 pad=1 outpad=1 groups=4 as d; maxpool 2x2 from d as p; add x p",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) compare(specs[i], 3);
}

static void test_dense_shapes(void)
{
    compare("input 1x1x37; dense 13", 5);
    compare("input 3x5x7; dense 11 bias=no", 4);
    compare("input 4x4x3; conv 8 3x3 pad=1; flatten; dense 9; relu; dense 3", 7);
    compare("input 1x1x1; dense 1", 1);
    compare("input 1x1x7; dense 3", 2100); /* the bias gradient over 2100 rows: in runs on CUDA */
}

/* past one chunk of the input gradient (8 MiB of dcol) */
static void test_conv_chunks(void) { compare("input 40x40x64; conv 8 3x3 pad=1", 3); }

/* spec through run() once per variant v < variants (setting(v) first, setting(0) after), and
 * each variant's output, input gradient and weight gradients against the first's: the same bits */
static void same_in_each(const char *spec, int64_t batch, int variants, void (*setting)(int))
{
    float *y[3] = { NULL }, *dx[3] = { NULL }, *dw[3] = { NULL };
    int64_t ny, nx, nw;
    for (int v = 0; v < variants && v < 3; v++) {
        setting(v);
        run(spec, cn_backend_default(), batch, &y[v], &dx[v], &dw[v], &ny, &nx, &nw);
    }
    setting(0);
    for (int v = 1; v < variants && v < 3; v++)
        if (y[0] && y[v]) {
            CHECK(memcmp(y[0], y[v], (size_t)ny * sizeof(float)) == 0);
            CHECK(memcmp(dx[0], dx[v], (size_t)nx * sizeof(float)) == 0);
            CHECK(memcmp(dw[0], dw[v], (size_t)nw * sizeof(float)) == 0);
        }
    for (int v = 0; v < 3; v++) free(y[v]), free(dx[v]), free(dw[v]);
}

static void threads_of(int v) { cn_set_threads(v + 1); } /* variant v: v + 1 threads */
static void scratch_refused(int v) { cn_thread_scratch_refuse(v); } /* variant 1: no thread scratch */
static void panels_or_groups(int v) { cn_cpu_winograd_groups(v ? 1 : 0); } /* variant 1: in groups */

/* the portable micro-kernel and packers, where the CPU has AVX-512 */
static void test_portable(void)
{
    cn_gemm_force_generic(1);
    compare("input 9x11x3; conv 5 3x3 pad=1", 3);
    compare("input 9x11x3; conv 7 3x3 stride=2 pad=same", 3);
    compare("input 4x4x3; conv 8 3x3 pad=1; flatten; dense 9; relu; dense 3", 7);
    cn_gemm_force_generic(0);
    /* depthwise rows of stride 1 in AVX-512 registers and in AVX2's (dwr_row16, dwr_row8)
     * against the loops that add a tap at a time: the same bits, forward (a relu in its pass, a
     * bias, none), input gradient (stored fresh, and added to the add's) and weight gradient;
     * rows of one vector, of two chunks of 4 and the longest (128), odd widths, padding 0 to 2,
     * 5x5, 1x3, dilation, row stride 2; column stride 2 on split rows. The flat way off in each
     * (its weight gradient's bits are its own: test_depthwise_flat). */
    static const char *dw[] = {
        "input 9x11x4; conv 4 3x3 pad=1 groups=4; relu",
        "input 8x10x3; conv 3 3x3 groups=3 bias=no",
        "input 10x70x3; conv 3 5x5 pad=2 groups=3",
        "input 4x128x2; conv 2 3x3 pad=1 groups=2 bias=no",
        "input 8x8x4 as x; conv 4 3x3 pad=1 groups=4 as d; add x d",
        "input 9x13x2; conv 2 3x3 dilation=2 pad=2 groups=2",
        "input 7x20x3; conv 3 1x3 stride=2x1 pad=0x1 groups=3",
        /* column stride 2, on split rows (an input gradient added to the add's too) */
        "input 8x8x4 as x; conv 4 3x3 stride=2 pad=1 groups=4 as d; upsample 2 from d as u; add x u",
        "input 9x9x3; conv 3 1x3 stride=2 pad=0x1 groups=3",
        "input 5x200x2; conv 2 3x3 stride=2 pad=1 groups=2",
        "input 9x11x4; conv 4 3x3 stride=2 pad=1 groups=4; relu",
        "input 8x10x3; conv 3 3x3 stride=2 groups=3 bias=no",
        "input 6x150x2; conv 2 3x3 stride=2 pad=1 groups=2",
        "input 12x12x2; conv 2 3x3 stride=2 dilation=2 pad=2 groups=2",
        "input 11x40x4; conv 4 5x5 stride=2 pad=2 groups=4",
        /* 7x7 (ConvNeXt's): maps of 56, 14 and 7 with padding 3, an input gradient added to
         * the add's, rows of 128, 6x7, stride 2 on split rows */
        "input 12x56x3; conv 3 7x7 pad=3 groups=3",
        "input 14x14x4 as x; conv 4 7x7 pad=3 groups=4 bias=no as d; add x d",
        "input 7x7x5; conv 5 7x7 pad=3 groups=5; relu",
        "input 9x128x2; conv 2 6x7 pad=3 groups=2",
        "input 16x21x2; conv 2 7x7 stride=2 pad=3 groups=2",
    };
    cn_cpu_depthwise_flat_force(0);
    for (size_t i = 0; i < sizeof dw / sizeof dw[0]; i++) {
        same_in_each(dw[i], 3, 2, cn_gemm_force_generic);
        same_in_each(dw[i], 3, 2, cn_gemm_force_avx2);
    }
    cn_cpu_depthwise_flat_force(-1);
    for (size_t i = 0; i < sizeof dw / sizeof dw[0]; i++) compare(dw[i], 3);
}

/* spec on the CPU backend alone against the reference (what a CPU setting changes: the other
 * backends do not run the CPU's kernels) */
static void cpu_compare(const char *spec, int64_t batch) { compare_on(cn_backend_default(), spec, batch, 1e-5); }

/* Winograd F(2x2,3x3)'s test nets (test_winograd; test_avx2 runs them on AVX2's code) */
static const char *winograd_specs[] = {
    "input 9x11x3; conv 5 3x3",
    "input 9x11x3; conv 5 3x3 pad=1",
    "input 7x6x2; conv 3 3x3 pad=2 bias=no",
    "input 5x70x4; conv 3 3x3 pad=1",
    "input 3x3x4; conv 5 3x3 pad=1",
    "input 1x9x3; conv 4 3x3 pad=1",
    "input 4x4x200; conv 9 3x3 pad=1",
    "input 6x6x20; conv 70 3x3 pad=1",
    "input 8x8x1; conv 6 3x3 pad=same; relu; conv 7 3x3 pad=1",
    "input 9x8x3; deconv 5 3x3 pad=1",
    "input 9x8x3; deconv 5 3x3",
    /* the weight gradient's F(3x3,2x2): channels not a multiple of 8 or 16 (a half-filled
     * panel, a narrow last one), odd maps, padding 2, and enough tiles for several chunks
     * and parts */
    "input 20x19x20; conv 50 3x3 pad=1",
    "input 9x9x8; conv 8 3x3",
    "input 12x12x12; conv 16 3x3 pad=2",
    /* maps 8 tiles across (two rows a vector, each read as two): 16x16, an odd 15, padding 2,
     * the relu and maxpool in the pass, an odd count of tile rows (a last row alone), deconv */
    "input 16x16x6; conv 5 3x3 pad=1",
    "input 15x17x4; conv 6 3x3",
    "input 13x14x3; conv 4 3x3 pad=2",
    "input 16x16x8; conv 8 3x3 pad=1; relu; maxpool 2x2",
    "input 14x16x5; conv 6 3x3 pad=1",
    "input 16x16x4; deconv 3 3x3 pad=1",
};
#define WINOGRAD_SPECS (sizeof winograd_specs / sizeof winograd_specs[0])

/* Winograd F(4x4,3x3)'s test nets (test_winograd4; test_avx2 runs them on AVX2's code) */
static const char *winograd4_specs[] = {
    "input 16x16x8; conv 8 3x3 pad=1",
    "input 32x32x5; conv 7 3x3 pad=1 bias=no",
    "input 15x13x3; conv 9 3x3 pad=1",
    "input 17x19x4; conv 6 3x3 pad=1",
    "input 22x26x6; conv 40 3x3 pad=2",
    "input 6x30x3; conv 4 3x3 pad=1",
    "input 14x14x12; conv 33 3x3 pad=1; relu; conv 8 3x3 pad=1",
    "input 20x20x4 as x; conv 4 3x3 pad=1 as c; relu; conv 4 3x3 pad=1 as d; add c d",
    "input 16x14x5; deconv 6 3x3 pad=1",
    "input 14x14x3; deconv 4 3x3",
    /* the relu and maxpool in the pass: maps 4, 5, 7 and 8 tiles across, a last tile row cut in
     * half (in a vector with the next sample's first) */
    "input 16x16x8; conv 9 3x3 pad=1; relu; maxpool 2x2",
    "input 26x28x4; conv 6 3x3 pad=1; relu; maxpool 2x2; flatten; dense 3",
    "input 30x32x3; conv 5 3x3 pad=1; relu; maxpool 2x2",
    "input 14x18x6; conv 8 3x3 pad=1; relu; maxpool 2x2",
    /* maps past 8 tiles across, in runs (the last shorter): 18 = 4 + 4 + 4 + 4 + 2, 9 = 5 + 4,
     * 14 = 8 + 6, the maxpool in the pass over 17 = 4 + 4 + 4 + 4 + 1 */
    "input 20x70x4; conv 6 3x3 pad=1",
    "input 13x36x5; conv 7 3x3",
    "input 15x56x3; conv 5 3x3 pad=1",
    /* 3 tiles across (9 to 12 outputs), 5 runs a vector, rows cut short both ways */
    "input 12x12x9; conv 10 3x3 pad=1",
    "input 11x10x4; conv 6 3x3 pad=1; relu; conv 5 3x3 pad=1",
    "input 12x12x6; conv 8 3x3 pad=1; relu; maxpool 2x2",
    "input 10x66x4; conv 6 3x3 pad=1; relu; maxpool 2x2",
};
#define WINOGRAD4_SPECS (sizeof winograd4_specs / sizeof winograd4_specs[0])

static const char *kernel_at(const char *spec, int64_t batch, char *out, size_t len);

/* The AVX2 micro-kernel (gemm_avx2.c: a CPU without AVX-512), forced where the CPU has AVX-512:
 * the layers against the reference, the products past a slice of k (192) and a row block; and
 * where the AVX-512 path makes the same products (1x1, 5x5 and strided convolutions, dense
 * layers: no Winograd, no few taps), its bits. */
static void test_avx2(void)
{
    static const char *nets[] = {
        "input 9x11x3; conv 5 3x3 pad=1",
        "input 9x11x3; conv 7 3x3 stride=2 pad=same",
        "input 4x4x3; conv 8 3x3 pad=1; flatten; dense 9; relu; dense 3",
        "input 12x12x24; conv 40 3x3 pad=1; relu; conv 20 1x1; flatten; dense 10",
        "input 10x10x16; conv 24 5x5 pad=2 bias=no; relu; maxpool 2; conv 56 1x1; globalavgpool; dense 7",
        "input 14x14x32; conv 64 3x3 stride=2 pad=1; batchnorm; relu; flatten; dense 5",
    };
    cn_gemm_force_avx2(1);
    int avx2 = cn_gemm_avx2();
    if (avx2)
        for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) cpu_compare(nets[i], 3);
    /* AVX2's rule for F(4x4,3x3): maps of 9 tiles or more (10x10, 12x12; one image's 4 tiles of
     * an 8x8 map lose), whose products are at most 0.85 of F(2x2,3x3)'s, at most 256 channels */
    static const struct { const char *spec, *way; } rule4[] = {
        { "input 8x8x64; conv 64 3x3 pad=1", "winograd F(2x2,3x3)" },
        { "input 7x7x256; conv 256 3x3 pad=1", "winograd F(2x2,3x3)" },
        { "input 10x10x64; conv 64 3x3 pad=1", "winograd F(4x4,3x3)" },
        { "input 12x12x256; conv 256 3x3 pad=1", "winograd F(4x4,3x3)" },
        { "input 12x12x320; conv 64 3x3 pad=1", "winograd F(2x2,3x3)" },
    };
    for (size_t i = 0; avx2 && i < sizeof rule4 / sizeof rule4[0]; i++) {
        char how[160];
        kernel_at(rule4[i].spec, 1, how, sizeof how);
        if (strncmp(how, rule4[i].way, strlen(rule4[i].way)) != 0) printf("  %s: %s\n", rule4[i].spec, how);
        CHECK(strncmp(how, rule4[i].way, strlen(rule4[i].way)) == 0);
    }
    cn_gemm_force_avx2(0);
    if (!avx2 || !cn_gemm_avx512()) {
        printf("  skipped: %s\n", avx2 ? "AVX2's bits against AVX-512's (no AVX-512)" : "the CPU has no AVX2 and FMA");
        return;
    }
    static const char *same[] = {
        "input 8x8x16; conv 32 1x1; relu; flatten; dense 10",
        "input 10x10x16; conv 24 5x5 pad=2 bias=no; relu; conv 56 1x1; flatten; dense 7",
        "input 14x14x32; conv 64 3x3 stride=2 pad=1; relu; flatten; dense 5",
        "input 1x1x200; dense 300; relu; dense 50; relu; dense 10",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) same_in_each(same[i], 5, 2, cn_gemm_force_avx2);
    /* Winograd F(2x2,3x3) by AVX2's transforms (8 tiles a vector, the weights one kernel at a
     * time; the weight gradient's F(3x3,2x2) on 16 channels as two vectors of 8):
     * test_winograd's nets against the reference, panel by panel and in groups, the weight
     * gradient by parts and by blocks, the same bits on 1, 2 and 3 threads; and AVX-512's bits
     * (F(2x2,3x3) there too: F(4x4,3x3) off, and few enough tiles for the weight gradient's
     * product, then Winograd's) */
    cn_gemm_force_avx2(1);
    cn_cpu_winograd_force(1);
    for (int grouped = 0; grouped < 2; grouped++) {
        cn_cpu_winograd_groups(grouped);
        for (size_t i = 0; i < WINOGRAD_SPECS; i++) cpu_compare(winograd_specs[i], 3);
    }
    cn_cpu_winograd_groups(-1);
    cn_cpu_winograd_dw_blocks_force(1); /* the weight gradient by blocks of channel pairs */
    for (size_t i = 0; i < WINOGRAD_SPECS; i++) cpu_compare(winograd_specs[i], 3);
    cn_cpu_winograd_dw_blocks_force(-1);
    same_in_each("input 24x24x32; conv 24 3x3 pad=1; relu; conv 20 3x3 pad=1", 5, 3, threads_of);
    same_in_each("input 16x16x16; conv 16 3x3 pad=1; relu; maxpool 2x2; conv 8 3x3 pad=1", 5, 3, threads_of);
    cn_cpu_winograd_force(-1);
    cn_gemm_force_avx2(0);
    static const char *wino[] = {
        "input 10x10x8; conv 16 3x3 pad=1; relu; maxpool 2; conv 8 3x3 pad=1; flatten; dense 5",
        "input 9x7x12; conv 9 3x3; relu; conv 10 3x3 pad=2",
        "input 11x11x8; conv 8 3x3 pad=1 bias=no; relu; conv 8 3x3 pad=1",
        "input 8x30x8; conv 12 3x3 pad=1; relu; maxpool 2",
    };
    cn_cpu_winograd4_force(0);
    for (size_t i = 0; i < sizeof wino / sizeof wino[0]; i++) same_in_each(wino[i], 1, 2, cn_gemm_force_avx2);
    /* the weight gradient's F(3x3,2x2) (Winograd wherever it can run), by parts and by blocks of
     * channel pairs: AVX2's transforms with AVX-512's bits, on 2 threads */
    cn_cpu_winograd_force(1);
    int before = cn_threads();
    cn_set_threads(2);
    for (int blocks = 0; blocks < 2; blocks++) {
        cn_cpu_winograd_dw_blocks_force(blocks);
        same_in_each("input 20x19x20; conv 50 3x3 pad=1; relu; conv 20 3x3", 3, 2, cn_gemm_force_avx2);
        same_in_each("input 6x6x150; conv 70 3x3 pad=1; relu; conv 9 3x3", 9, 2, cn_gemm_force_avx2);
        same_in_each("input 16x16x8; conv 8 3x3 pad=1; relu; maxpool 2x2; conv 24 3x3 pad=1", 5, 2, cn_gemm_force_avx2);
    }
    cn_cpu_winograd_dw_blocks_force(-1);
    cn_set_threads(before);
    /* F(4x4,3x3) and the weight gradient's F(3x3,4x4) by AVX2's transforms (8 consecutive tiles
     * a vector wherever they lie, each read as two 4-column loads; the weights gathered 8 output
     * channels a vector): test_winograd4's nets against the reference, by parts and by blocks,
     * the same bits on 1, 2 and 3 threads and on a heap that refuses scratch; and AVX-512's bits
     * (F(4x4,3x3) there too) */
    cn_cpu_winograd4_force(1);
    cn_cpu_winograd_dw4_force(1);
    cn_gemm_force_avx2(1);
    for (int blocks = 0; blocks < 2; blocks++) {
        cn_cpu_winograd_dw_blocks_force(blocks);
        for (size_t i = 0; i < WINOGRAD4_SPECS; i++) {
            cpu_compare(winograd4_specs[i], 3);
            if (!blocks) cpu_compare(winograd4_specs[i], 7);
        }
    }
    cn_cpu_winograd_dw_blocks_force(-1);
    /* maps AVX-512's runs cannot take (fewer than 9 outputs across, or 4 down): one tile an image
     * (4x4), tiles cut short (7x7, 6x9 unpadded), a map one row high, the relu and maxpool in the
     * pass over an odd map, many channels, deconv */
    static const char *small4[] = {
        "input 8x8x16; conv 12 3x3 pad=1",
        "input 4x4x8; conv 9 3x3 pad=1",
        "input 7x7x10; conv 8 3x3 pad=1; relu; maxpool 2x2",
        "input 6x9x8; conv 8 3x3",
        "input 1x12x8; conv 8 3x3 pad=1",
        "input 8x8x72; conv 40 3x3 pad=1; relu; conv 8 3x3 pad=1",
        "input 5x6x9; deconv 8 3x3 pad=1",
    };
    for (size_t i = 0; i < sizeof small4 / sizeof small4[0]; i++) {
        cpu_compare(small4[i], 3);
        cpu_compare(small4[i], 9);
    }
    same_in_each("input 8x8x72; conv 40 3x3 pad=1; relu; conv 8 3x3 pad=1", 9, 3, threads_of);
    same_in_each("input 32x32x16; conv 24 3x3 pad=1; relu; conv 20 3x3 pad=1", 5, 3, threads_of);
    same_in_each("input 26x28x4; conv 6 3x3 pad=1; relu; maxpool 2x2; conv 9 3x3 pad=1", 7, 3, threads_of);
    same_in_each("input 18x14x40; conv 33 3x3 pad=1", 5, 3, threads_of);
    cn_set_threads(2);
    same_in_each("input 20x20x16; conv 20 3x3 pad=1; relu; conv 8 3x3 pad=1", 5, 2, scratch_refused);
    cn_set_threads(before);
    cn_gemm_force_avx2(0);
    for (size_t i = 0; i < WINOGRAD4_SPECS; i++) {
        int h, w, c; /* not a first layer of 3 channels or fewer: its weight gradient is few taps' (below) */
        if (sscanf(winograd4_specs[i], "input %dx%dx%d", &h, &w, &c) == 3 && c > 3)
            same_in_each(winograd4_specs[i], 3, 2, cn_gemm_force_avx2);
    }
    cn_set_threads(2);
    same_in_each("input 32x32x16; conv 24 3x3 pad=1; relu; maxpool 2x2; conv 20 3x3 pad=1", 5, 2, cn_gemm_force_avx2);
    same_in_each("input 16x16x64; conv 64 3x3 pad=1", 8, 2, cn_gemm_force_avx2);
    cn_set_threads(before);
    cn_cpu_winograd_dw4_force(-1);
    cn_cpu_winograd_force(-1);
    cn_cpu_winograd4_force(-1);
    /* 2x2 stride-2 pooling planes where AVX-512 is missing (the plain loop; an AVX2 one measured
     * no faster: bound by memory): max and min, a relu in the pass, rows of one vector, of
     * several and a partial last, an odd input width; against the reference and with AVX-512's
     * bits (the same comparisons) */
    static const char *pools[] = {
        "input 10x22x4; conv 4 1x1; relu; maxpool 2x2",
        "input 9x41x3; maxpool 2x2",
        "input 16x16x2; minpool 2x2",
        "input 6x34x5; conv 5 1x1; relu; minpool 2x2; flatten; dense 3",
    };
    cn_gemm_force_avx2(1);
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) cpu_compare(pools[i], 3);
    cn_gemm_force_avx2(0);
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) same_in_each(pools[i], 3, 2, cn_gemm_force_avx2);
    /* a first layer's few taps (9 to 27) in AVX2: against the reference (one, two and three
     * chunks of taps, rows of one vector and of several with a partial last, bias or none, a
     * relu in the pass), the same bits on 1, 2 and 3 threads; the forward with AVX-512's bits
     * (the weight gradient's sums run in 8 lanes there, 16 here: other bits) */
    static const char *few[] = {
        "input 28x28x1; conv 8 3x3 pad=1; relu",
        "input 12x13x3; conv 10 3x3 pad=1",
        "input 7x6x2; conv 9 3x3 pad=1 bias=no",
        "input 9x20x1; conv 5 5x5 pad=2; relu",
    };
    cn_gemm_force_avx2(1);
    for (size_t i = 0; i < sizeof few / sizeof few[0]; i++) {
        cpu_compare(few[i], 3);
        same_in_each(few[i], 4, 3, threads_of);
    }
    cn_gemm_force_avx2(0);
    for (size_t i = 0; i < sizeof few / sizeof few[0]; i++) {
        float *y[2], *dx[2], *dw[2];
        int64_t ny, nx, nw;
        for (int v = 0; v < 2; v++) {
            cn_gemm_force_avx2(v);
            run(few[i], cn_backend_default(), 3, &y[v], &dx[v], &dw[v], &ny, &nx, &nw);
        }
        cn_gemm_force_avx2(0);
        if (y[0] && y[1]) CHECK(memcmp(y[0], y[1], (size_t)ny * sizeof(float)) == 0);
        for (int v = 0; v < 2; v++) free(y[v]), free(dx[v]), free(dw[v]);
    }
}

/* Winograd F(2x2,3x3) wherever it can run, against the double-precision reference: odd and even
 * maps, each padding a 3x3 kernel can have, one channel and more than a slice of k (192), Cout
 * not a multiple of the micro-kernel's 8 rows and more than the 32 transformed back together,
 * tile rows longer than a vector, a map one row high, a last partial panel of tiles, and deconv
 * of stride 1 (whose forward is a convolution's input gradient); then the same bits on 1, 2 and
 * 3 threads. On a CPU with AVX2 only, AVX2's transforms (test_avx2 runs the nets there). */
static void test_winograd(void)
{
    static const char *const *specs = winograd_specs;
    cn_cpu_winograd_force(1);
    for (size_t i = 0; i < WINOGRAD_SPECS; i++) compare(specs[i], 3);
    same_in_each("input 24x24x32; conv 24 3x3 pad=1; relu; conv 20 3x3 pad=1", 5, 3, threads_of);
    same_in_each("input 16x16x16; conv 16 3x3 pad=1; relu; maxpool 2x2; conv 8 3x3 pad=1", 5, 3, threads_of);
    /* the forward in groups of panels (the rule's way for many channels): against the reference,
     * and the bits of a panel at a time (15 panels in 4 groups, the last of 3; the maxpool in the
     * pass; a last partial panel) on 1 and 2 threads */
    cn_cpu_winograd_groups(1);
    for (size_t i = 0; i < WINOGRAD_SPECS; i++) compare(specs[i], 3);
    cn_cpu_winograd_groups(-1);
    int before = cn_threads();
    for (int t = 1; t <= 2; t++) {
        cn_set_threads(t);
        same_in_each("input 24x24x32; conv 24 3x3 pad=1; relu; conv 20 3x3 pad=1", 5, 2, panels_or_groups);
        same_in_each("input 16x16x16; conv 16 3x3 pad=1; relu; maxpool 2x2; conv 8 3x3 pad=1", 5, 2, panels_or_groups);
        same_in_each("input 9x11x20; conv 70 3x3 pad=1; relu; conv 9 3x3", 3, 2, panels_or_groups);
    }
    cn_set_threads(before);
    cn_cpu_winograd_groups(-1);
    /* the weight gradient by blocks of channel pairs (its rule's way for many channels and few
     * tiles): against the reference, and the same bits on 1, 2 and 3 threads (64 input channels
     * a block: two blocks and a part of one; output panels of 48, the last of 22) */
    cn_cpu_winograd_dw_blocks_force(1);
    for (size_t i = 0; i < WINOGRAD_SPECS; i++) compare(specs[i], 3);
    compare("input 6x6x150; conv 70 3x3 pad=1", 9);
    same_in_each("input 6x6x150; conv 70 3x3 pad=1; relu; conv 9 3x3", 9, 3, threads_of);
    cn_set_threads(before);
    cn_cpu_winograd_dw_blocks_force(-1);
    cn_cpu_winograd_force(-1);
}

/* Winograd F(4x4,3x3) on every map it can take (9 or more outputs across: runs of 3 to 8 tiles,
 * 5 to 2 runs a vector), against the double-precision reference: paddings 0 to 2, maps not a
 * multiple of 4 (a last tile cut short both ways), a map one tile high, the third vector of a
 * row 8 tiles across, channels not a multiple of 8 and past 32 (output blocks), a batch whose
 * last vector has fewer tile rows and whose last panel fewer vectors, a relu in the pass, an
 * input gradient added to another's, deconv; then the same bits on 1, 2 and 3 threads */
static void test_winograd4(void)
{
    static const char *const *specs = winograd4_specs;
    cn_cpu_winograd_force(1);
    cn_cpu_winograd4_force(1);
    for (size_t i = 0; i < WINOGRAD4_SPECS; i++) {
        compare(specs[i], 3);
        compare(specs[i], 7);
    }
    /* runs of fewer than 8 tiles (4 outputs each) store their own columns only: the next run of
     * a tile row may be another panel's, stored by another thread before (here 98 and 112 wide:
     * runs of 5 and 4 tiles, 14 and 12 panels, big enough for threads), or take the same
     * columns' sum after an input gradient's first (x read by two convolutions) */
    compare("input 98x98x32; conv 16 3x3 pad=1", 1);
    compare("input 112x40x32; conv 32 3x3 pad=1; relu; maxpool 2x2", 1);
    compare("input 36x36x4; conv 4 1x1 as x; conv 4 3x3 pad=1 as c; conv 4 3x3 pad=1 from x as d; add c d", 3);
    int before = cn_threads();
    same_in_each("input 98x98x32; conv 16 3x3 pad=1", 1, 3, threads_of);
    same_in_each("input 32x32x16; conv 24 3x3 pad=1; relu; conv 20 3x3 pad=1", 5, 3, threads_of);
    same_in_each("input 18x18x8; conv 8 3x3 pad=1; relu; conv 8 3x3", 9, 3, threads_of);
    cn_set_threads(before);
    /* the weight gradient's F(3x3,4x4) on every map (its rule takes maps its tiles cover within
     * 1/8: tiles cut short both ways here, an odd count of them, padding 2, channels past 16 and
     * not a multiple of 8, a map one tile high), against the reference; then its bits on 1, 2
     * and 3 threads (8 parts of 16 x 10 channel pairs, 4 of 40 x 33) */
    cn_cpu_winograd_dw4_force(1);
    for (size_t i = 0; i < WINOGRAD4_SPECS; i++) compare(specs[i], 3);
    compare("input 4x9x3; conv 5 3x3 pad=1", 4);
    compare("input 16x16x64; conv 64 3x3 pad=1", 8); /* sums of 576 products over 128 tiles */
    same_in_each("input 22x26x16; conv 10 3x3 pad=1; relu; conv 9 3x3 pad=1", 9, 3, threads_of);
    same_in_each("input 18x14x40; conv 33 3x3 pad=1", 5, 3, threads_of);
    cn_set_threads(before);
    /* F(3x3,4x4) by blocks of channel pairs too (36 e a block) */
    cn_cpu_winograd_dw_blocks_force(1);
    for (size_t i = 0; i < WINOGRAD4_SPECS; i++) compare(specs[i], 3);
    same_in_each("input 18x14x40; conv 70 3x3 pad=1", 5, 3, threads_of);
    cn_set_threads(before);
    cn_cpu_winograd_dw_blocks_force(-1);
    cn_cpu_winograd_dw4_force(-1);
    cn_cpu_winograd4_force(-1);
    cn_cpu_winograd_force(-1);
}

/* output (malloc'ed, *ny values) of spec's forward at batch, in training or not, from run()'s
 * kind of weights and input */
static float *forward_of(const char *spec, int64_t batch, int training, int64_t *ny)
{
    cn_net *net = parse_spec(ctx, spec);
    if (!net) return NULL;
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 77) == CN_OK);
    cn_layer_info in = layer_at(ctx, net, 0, 1);
    int64_t nx = in.c * in.h * in.w * batch;
    float *x = malloc((size_t)nx * sizeof(float));
    cn_rng rng;
    cn_rng_seed(&rng, 5);
    for (int64_t i = 0; i < nx; i++) x[i] = (float)cn_rng_normal(&rng);
    CHECK(cn_net_forward(ctx, net, x, batch, training) == CN_OK);
    const float *out = cn_net_output(net, ny);
    float *y = malloc((size_t)*ny * sizeof(float));
    memcpy(y, out, (size_t)*ny * sizeof(float));
    free(x);
    cn_net_destroy(net);
    return y;
}

/* layer 1's kernel words for spec planned at batch (a forward out of training plans it) */
static const char *kernel_at(const char *spec, int64_t batch, char *out, size_t len)
{
    int64_t ny;
    cn_net *net = parse_spec(ctx, spec);
    snprintf(out, len, "%s", "");
    if (!net) return out;
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 1) == CN_OK);
    cn_layer_info in = layer_at(ctx, net, 0, 1);
    float *x = calloc((size_t)(in.c * in.h * in.w * batch), sizeof(float));
    CHECK(cn_net_forward(ctx, net, x, batch, 0) == CN_OK);
    (void)cn_net_output(net, &ny);
    snprintf(out, len, "%s", cn_net_layer_kernel(net, 1));
    free(x);
    cn_net_destroy(net);
    return out;
}

/* r[0..k) <- the next k draws of the random tests' generator (an LCG: the same geometries on
 * every machine), 24 bits each */
static void draw(uint32_t *seed, uint32_t *r, int k)
{
    for (int q = 0; q < k; q++) *seed = *seed * 1103515245u + 12345u, r[q] = *seed >> 8;
}

/* the random tests' spec, if the parser takes it (a kernel or window past its padded input, an
 * output padding past the rules: skipped) */
static int parses(const char *spec)
{
    cn_net *net = NULL;
    if (cn_net_parse(ctx, spec, strlen(spec), "t.cnn", &net) != CN_OK) {
        cn_ctx_clear(ctx);
        return 0;
    }
    cn_net_destroy(net);
    return 1;
}

/* a training step of spec on this CPU against the reference: the output and input gradient
 * within tol, the parameter gradients within tol_w (said where not); 1 where both ran, with
 * the parameters' error in *ew */
static int near_reference(const char *spec, int64_t batch, double tol, double tol_w, double *ew)
{
    float *y0, *dx0, *dw0, *y1, *dx1, *dw1;
    int64_t ny, nx, nw;
    run(spec, cn_backend_reference(), batch, &y0, &dx0, &dw0, &ny, &nx, &nw);
    run(spec, cn_backend_default(), batch, &y1, &dx1, &dw1, &ny, &nx, &nw);
    int ran = y0 && y1;
    if (ran) {
        double ey = rel(y1, y0, ny), ex = rel(dx1, dx0, nx);
        *ew = nw ? rel(dw1, dw0, nw) : 0;
        if (ey >= tol || ex >= tol || *ew >= tol_w)
            printf("  %s (batch %lld): y %.1e dx %.1e dw %.1e from the reference\n", spec, (long long)batch, ey, ex, *ew);
        CHECK(ey < tol && ex < tol && *ew < tol_w);
    }
    free(y0), free(dx0), free(dw0), free(y1), free(dx1), free(dw1);
    return ran;
}

/* every way of the CPU's convolution (direct, subsampled, few taps, padded rows, packed patches,
 * Winograd's forms in and out of training, depthwise) on n random geometries (sides 1 to 24, 1
 * to 20 channels a side, groups 1, 2 or the channels, kernels up to 5x5, strides 1 to 3,
 * dilation 1 and 2, padding up to the kernel's reach, a relu or not, batches 1 to 3; those the
 * parser refuses skipped): within 1e-5 of the reference */
static void random_convs(int n)
{
    static const char *const ways[] = { "winograd F(2x2,3x3)", "winograd F(4x4,3x3)", "few taps", "sgemm on padded rows",
                                        "sgemm on packed patches", "subsampled", "the image as a matrix",
                                        "depthwise, plane by plane", "depthwise, each plane read flat",
                                        "dw: winograd F(3x3,2x2)", "dw: winograd F(3x3,4x4)" };
    int seen[sizeof ways / sizeof ways[0]] = { 0 };
    uint32_t seed = 2026;
    int runs = 0;
    for (int it = 0; it < n; it++) {
        uint32_t r[4];
        draw(&seed, r, 4);
        /* 3x3, stride 1, dilation 1 and groups 1 half the time or more each: Winograd's ground */
        int h = 1 + r[0] % 24, w = 1 + (r[0] >> 8) % 24, cin = 1 + r[1] % 20, cout = 1 + (r[1] >> 5) % 20;
        int square = (r[1] >> 10) & 1, kh = square ? 3 : 1 + (r[1] >> 11) % 5, kw = square ? 3 : 1 + (r[1] >> 14) % 5;
        int stride = r[2] % 6 < 3 ? 1 : r[2] % 6 < 5 ? 2 : 3, dil = (r[2] >> 3) % 4 == 0 ? 2 : 1;
        int ph = (r[2] >> 5) % (kh * dil), pw = (r[2] >> 9) % (kw * dil), relu = (r[2] >> 13) & 1;
        int g = r[3] % 4 < 2 ? 1 : r[3] % 4 == 2 ? 2 : cin, batch = 1 + (r[3] >> 4) % 3;
        if (g == 2 && (cin % 2 || cout % 2)) g = 1;
        if (g == cin && g > 1) cout = cin;
        char spec[200];
        snprintf(spec, sizeof spec, "input %dx%dx%d; conv %d %dx%d stride=%d dilation=%d pad=%dx%d groups=%d%s", h, w, cin,
                 cout, kh, kw, stride, dil, ph, pw, g, relu ? "; relu" : "");
        if (!parses(spec)) continue;
        char how[200];
        kernel_at(spec, batch, how, sizeof how);
        for (size_t k = 0; k < sizeof ways / sizeof ways[0]; k++) seen[k] += strstr(how, ways[k]) != NULL;
        double ew;
        runs += near_reference(spec, batch, 1e-5, 1e-5, &ew);
    }
    printf("  %d random convolutions; the ways they ran:", runs);
    for (size_t k = 0; k < sizeof ways / sizeof ways[0]; k++) {
        printf("%s %s %d", k ? "," : "", ways[k], seen[k]);
        CHECK(seen[k] > 0 || !cn_gemm_avx512()); /* where the CPU has AVX-512, each of them */
    }
    printf("\n");
}

/* pooling on n random geometries (max, min and average windows of 1 to 4 by 1 to 4, strides 1
 * to 3, padding up to half the window, ceil, dilation, the padding left out of the average;
 * adaptive averages; half the time after a 3x3 convolution and a relu, which the pooling's or
 * the convolution's pass may take in (Winograd's relu + maxpool); sides 1 to 20, batches 1 to
 * 3; those the parser refuses skipped): within 1e-5 of the reference (3e-5 after a
 * convolution, for Winograd F(4x4,3x3)'s error) */
static void random_pools(int n)
{
    uint32_t seed = 77;
    int runs = 0;
    for (int it = 0; it < n; it++) {
        uint32_t r[3];
        draw(&seed, r, 3);
        int h = 1 + r[0] % 20, w = 1 + (r[0] >> 8) % 20, c = 1 + (r[0] >> 16) % 12, batch = 1 + r[1] % 3;
        int kind = (r[1] >> 2) % 4, kh = 1 + (r[1] >> 4) % 4, kw = 1 + (r[1] >> 6) % 4, stride = 1 + (r[1] >> 8) % 3;
        int ph = (r[2] % (kh / 2 + 1)), pw = (r[2] >> 4) % (kw / 2 + 1), ceil = (r[2] >> 8) & 1;
        int dil = (r[2] >> 9) % 4 == 0 ? 2 : 1, before = (r[2] >> 11) & 1, square = (r[2] >> 12) % 3 == 0;
        if (square) kh = kw = stride = 2, ph = pw = 0, dil = 1; /* the 2x2 stride-2 path */
        static const char *const kinds[] = { "maxpool", "minpool", "avgpool", "adaptiveavgpool" };
        char pool[96], spec[200];
        if (kind == 3) snprintf(pool, sizeof pool, "adaptiveavgpool %dx%d", kh, kw);
        else
            snprintf(pool, sizeof pool, "%s %dx%d stride=%d pad=%dx%d%s%s%s", kinds[kind], kh, kw, stride, ph, pw,
                     ceil ? " ceil=yes" : "", dil > 1 && kind < 2 ? " dilation=2" : "",
                     kind == 2 && ceil ? " count_pad=no" : "");
        if (before) snprintf(spec, sizeof spec, "input %dx%dx%d; conv %d 3x3 pad=1; relu; %s", h, w, c, c + 6, pool);
        else snprintf(spec, sizeof spec, "input %dx%dx%d; %s", h, w, c, pool);
        if (!parses(spec)) continue;
        /* after the convolution, Winograd F(4x4,3x3)'s error (a few 1e-6 of the convolution's
         * largest output) is measured against the pooled output's largest value, which a
         * min-pool of a relu's output makes several times smaller (a 7x19 map by AVX2's code,
         * min-pooled: 1.1e-5): 3e-5 there */
        double ew, tol = before ? 3e-5 : 1e-5;
        runs += near_reference(spec, batch, tol, tol, &ew);
    }
    printf("  %d random poolings\n", runs);
    CHECK(runs > n / 2);
}

static void test_random_pools(void) { random_pools(1500); }

/* transposed convolutions on n random geometries (sides 1 to 16, 1 to 12 channels a side, groups
 * 1, 2 or the channels, kernels up to 4x4, strides 1 to 3, padding, an output padding short of
 * the stride, dilation 1 and 2, batches 1 to 3; those the parser refuses skipped): the output
 * and input gradient within 1e-5 of the reference, the weight and bias gradients within 1e-4.
 * Their outputs reach 52x52, and the bias gradient sums each plane of dY in float lanes
 * (conv.c's bias_grad) where the reference sums in double: on a 50x50 map of random dY summing
 * to 0.09 from terms near 1, the lanes' rounding (7e-5) came to 1.4e-5 of the largest gradient
 * (PyTorch's float32 weight and bias gradients of that layer, 50 draws: up to 7.9e-7) */
static void random_deconvs(int n)
{
    uint32_t seed = 314;
    int runs = 0;
    double worst = 0;
    for (int it = 0; it < n; it++) {
        uint32_t r[3];
        draw(&seed, r, 3);
        int h = 1 + r[0] % 16, w = 1 + (r[0] >> 8) % 16, cin = 1 + (r[0] >> 16) % 12, cout = 1 + r[1] % 12;
        int kh = 1 + (r[1] >> 4) % 4, kw = 1 + (r[1] >> 6) % 4, stride = 1 + (r[1] >> 8) % 3;
        int dil = (r[1] >> 10) % 4 == 0 ? 2 : 1, ph = r[2] % kh, pw = (r[2] >> 3) % kw;
        int outpad = stride > 1 ? (int)((r[2] >> 6) % stride) : 0, batch = 1 + (r[2] >> 9) % 3;
        int g = (r[2] >> 11) % 4 < 2 ? 1 : (r[2] >> 11) % 4 == 2 ? 2 : cin;
        if (g == 2 && (cin % 2 || cout % 2)) g = 1;
        if (g == cin && g > 1) cout = cin;
        char spec[200];
        snprintf(spec, sizeof spec, "input %dx%dx%d; deconv %d %dx%d stride=%d pad=%dx%d outpad=%d dilation=%d groups=%d",
                 h, w, cin, cout, kh, kw, stride, ph, pw, outpad, dil, g);
        if (!parses(spec)) continue;
        double ew = 0;
        runs += near_reference(spec, batch, 1e-5, 1e-4, &ew);
        worst = ew > worst ? ew : worst;
    }
    printf("  %d random transposed convolutions (the weight gradients at most %.1e from the reference)\n", runs, worst);
    CHECK(runs > n / 2);
}

static void test_random_deconvs(void) { random_deconvs(1000); }

/* n random small nets (2 to 6 layers after an input of 4 to 20 a side and 1 to 12 channels:
 * convolutions 1x1, 3x3 or 5x5 of stride 1 or 2, `same` or unpadded, some depthwise; batch
 * norms; relu and relu6; 2x2 max and average pools; adds of two layers of one shape), so that
 * the fused forms meet each other as a net has them (a relu in a batch norm's, conv's or add's
 * pass, a relu and maxpool in Winograd's): the training step's output, input gradient and
 * parameter gradients within 1e-5 of the reference */
static void random_nets(int n)
{
    uint32_t seed = 99;
    int runs = 0;
    for (int it = 0; it < n; it++) {
        uint32_t r;
        draw(&seed, &r, 1);
        char spec[1024];
        int len = snprintf(spec, sizeof spec, "input %dx%dx%d as l0", 4 + (int)(r % 17), 4 + (int)((r >> 5) % 17),
                           1 + (int)((r >> 10) % 12));
        int layers = 2 + (int)((r >> 14) % 5), made = 0, batch = 2 + (int)((r >> 17) % 2);
        int64_t shape[8][3] = { { 0 } };
        cn_net *net = NULL;
        CHECK(cn_net_parse(ctx, spec, strlen(spec), "t.cnn", &net) == CN_OK);
        cn_layer_info info;
        cn_net_layer(ctx, net, 0, 1, &info);
        shape[0][0] = info.h, shape[0][1] = info.w, shape[0][2] = info.c;
        cn_net_destroy(net);
        for (int tries = 0; made < layers && tries < 20; tries++) {
            draw(&seed, &r, 1);
            char st[160];
            int64_t c = shape[made][2];
            switch (r % 7) {
            case 0:
            case 1: {
                int k = (r >> 3) % 4 == 0 ? 1 : (r >> 3) % 4 == 3 ? 5 : 3, stride = 1 + (int)((r >> 5) % 4 == 0);
                int dw = (r >> 7) % 4 == 0 && c > 1;
                long long out = dw ? (long long)c : 1 + (long long)((r >> 9) % 16);
                snprintf(st, sizeof st, "conv %lld %dx%d stride=%d pad=%s groups=%lld", out, k, k, stride,
                         (r >> 13) % 3 ? "same" : "0", dw ? out : 1);
                break;
            }
            case 2: /* over 16 values a channel or more: over fewer (two 1x1 maps) its input gradient
                     * is the small difference of large terms, and float's rounding of it, not the
                     * kernels, would decide the comparison */
                if (shape[made][0] * shape[made][1] * batch < 16) continue;
                snprintf(st, sizeof st, "batchnorm");
                break;
            case 3: snprintf(st, sizeof st, "%s", (r >> 3) % 3 ? "relu" : "relu6"); break;
            case 4: snprintf(st, sizeof st, "%s 2x2", (r >> 3) % 2 ? "maxpool" : "avgpool"); break;
            default: { /* an add of the last layer and an earlier one of its shape */
                int other = -1;
                for (int j = made - 1; j >= 0 && other < 0; j--)
                    if (shape[j][0] == shape[made][0] && shape[j][1] == shape[made][1] && shape[j][2] == shape[made][2])
                        other = j;
                if (other < 0) continue;
                snprintf(st, sizeof st, "add l%d l%d", other, made);
                break;
            }
            }
            int keep = len;
            len += snprintf(spec + len, sizeof spec - (size_t)len, "; %s as l%d", st, made + 1);
            net = NULL;
            if (len >= (int)sizeof spec || cn_net_parse(ctx, spec, strlen(spec), "t.cnn", &net) != CN_OK) {
                cn_ctx_clear(ctx);
                spec[keep] = 0, len = keep;
                continue;
            }
            cn_net_layer(ctx, net, cn_net_layer_count(net) - 1, 1, &info);
            cn_net_destroy(net);
            made++;
            shape[made][0] = info.h, shape[made][1] = info.w, shape[made][2] = info.c;
        }
        if (made < 2) continue;
        double ew;
        runs += near_reference(spec, batch, 1e-5, 1e-5, &ew);
    }
    printf("  %d random nets\n", runs);
    CHECK(runs > n / 2);
}

static void test_random_nets(void) { random_nets(600); }



static void test_random_convs(void) { random_convs(1500); }

/* the flat way and the loops on n random depthwise geometries (sides 1 to 33, kernels up to 5x5,
 * strides 1 and 2, dilation 1 and 2, padding short of the kernel, a relu or not; those the
 * parser refuses skipped): the same forward and input gradient bits, the weight gradient within
 * 1e-5 of the loops', and all within 1e-5 of the reference; a fifth or so run the flat way */
static void random_depthwise(int n)
{
    uint32_t seed = 12345;
    int runs = 0, flat = 0;
    for (int it = 0; it < n; it++) {
        uint32_t r[3];
        draw(&seed, r, 3);
        int h = 1 + r[0] % 33, w = 1 + (r[0] >> 8) % 33, kh = 1 + r[1] % 5, kw = 1 + (r[1] >> 4) % 5;
        int stride = 1 + (r[1] >> 8) % 2, dil = 1 + (r[1] >> 12) % 2, ph = r[2] % kh, pw = (r[2] >> 4) % kw;
        int c = 2 + (r[2] >> 8) % 3, relu = (r[2] >> 12) & 1;
        if (kh * kw == 1) continue;
        char spec[200], how[160];
        snprintf(spec, sizeof spec, "input %dx%dx%d; conv %d %dx%d stride=%d dilation=%d pad=%dx%d groups=%d%s", h, w, c,
                 c, kh, kw, stride, dil, ph, pw, c, relu ? "; relu" : "");
        if (!parses(spec)) continue;
        flat += strstr(kernel_at(spec, 2, how, sizeof how), "read flat") != NULL;
        float *y[2], *dx[2], *dw[2];
        int64_t ny, nx, nw;
        for (int v = 0; v < 2; v++) {
            cn_cpu_depthwise_flat_force(v ? -1 : 0);
            run(spec, cn_backend_default(), 2, &y[v], &dx[v], &dw[v], &ny, &nx, &nw);
        }
        float *y0, *dx0, *dw0; /* the reference's */
        run(spec, cn_backend_reference(), 2, &y0, &dx0, &dw0, &ny, &nx, &nw);
        if (y[0] && y[1] && y0) {
            int same = !memcmp(y[0], y[1], (size_t)ny * sizeof(float)) && !memcmp(dx[0], dx[1], (size_t)nx * sizeof(float));
            double e = rel(dw[1], dw[0], nw), ey = rel(y[1], y0, ny), ex = rel(dx[1], dx0, nx), ew = rel(dw[1], dw0, nw);
            if (!same || e >= 1e-5 || ey >= 1e-5 || ex >= 1e-5 || ew >= 1e-5)
                printf("  %s: the loops' bits %s, dw %.1e from the loops'; y %.1e dx %.1e dw %.1e from the reference\n",
                       spec, same ? "kept" : "not kept", e, ey, ex, ew);
            CHECK(same && e < 1e-5 && ey < 1e-5 && ex < 1e-5 && ew < 1e-5);
            runs++;
        }
        for (int v = 0; v < 2; v++) free(y[v]), free(dx[v]), free(dw[v]);
        free(y0), free(dx0), free(dw0);
    }
    printf("  %d random depthwise geometries, %d of them read flat (%s)\n", runs, flat, cn_gemm_avx512() ? "AVX-512" : cn_gemm_avx2() ? "AVX2" : "nowhere");
    CHECK(!(cn_gemm_avx512() || cn_gemm_avx2()) || flat >= runs / 10);
}

/* depthwise convolutions of stride 1 read flat (depthwise_flat.c, where the CPU has AVX-512 or AVX2): the
 * forward and the input gradient bit for bit those of conv.c's loops (a bias, none, a relu in the
 * pass; dx stored fresh and added to the add's), the weight gradient within the reference's
 * tolerance; planes of one vector and less (4x4, 7x7), across vectors (14x14, 13x9, 1x40), the
 * largest (32x32) and one row past it (33x32: the loops), kernels 1x3, 2x2 and 4x4 (`same`: one
 * before, two after), 5x5, 3x5, dilation 2, padding short of `same` down the rows; stride 2
 * where it halves the plane (not an odd one) into at most 256 outputs (16x16, not 17x16), with
 * padding 1 and `same` (0 before, 1 after); depthwise deconvs; a batch's bits on 1, 2 and 3
 * threads; where it runs; and random geometries (random_depthwise). AVX2's code (forced where
 * the CPU has AVX-512): every bit of AVX-512's, the weight gradient's too, and random
 * geometries. */
static void test_depthwise_flat(void)
{
    static const char *specs[] = {
        "input 7x7x6; conv 6 3x3 pad=1 groups=6 bias=no",
        "input 14x14x4; conv 4 3x3 pad=1 groups=4; relu",
        "input 4x4x3; conv 3 3x3 pad=1 groups=3",
        "input 13x9x5; conv 5 5x5 pad=2 groups=5; relu",
        "input 1x40x2; conv 2 1x3 pad=0x1 groups=2",
        "input 9x11x4; conv 4 3x5 pad=0x2 groups=4 bias=no",
        "input 8x10x3; conv 3 2x2 pad=same groups=3",
        "input 9x10x3; conv 3 4x4 pad=same groups=3 bias=no",
        "input 12x10x4; conv 4 3x3 dilation=2 pad=2 groups=4",
        "input 32x32x2; conv 2 3x3 pad=1 groups=2",
        "input 33x32x2; conv 2 3x3 pad=1 groups=2",
        "input 8x8x4 as x; conv 4 3x3 pad=1 groups=4 as d; add x d",
        "input 7x7x4 as x; conv 4 3x3 pad=1 groups=4; conv 4 3x3 pad=1 groups=4 as d; add x d",
        /* stride 2 halving the plane, on its four phases: rows of one and of two chunks of 32,
         * 5x5, 4x4 and 2x2 kernels, dx added to an add's */
        "input 14x14x4; conv 4 3x3 stride=2 pad=1 groups=4; relu",
        "input 28x28x2; conv 2 3x3 stride=2 pad=1 groups=2 bias=no",
        "input 2x64x2; conv 2 3x3 stride=2 pad=1 groups=2",
        "input 12x40x3; conv 3 5x5 stride=2 pad=2 groups=3 bias=no",
        "input 6x6x3; conv 3 4x4 stride=2 pad=1 groups=3",
        "input 10x6x3; conv 3 2x2 stride=2 groups=3",
        "input 8x8x4 as x; conv 4 3x3 stride=2 pad=1 groups=4 as d; upsample 2 from d as u; add x u",
        "input 8x8x3; conv 3 3x3 stride=2 pad=same groups=3",
        /* a depthwise deconv: its forward the flat input gradient, its backward the flat forward */
        "input 7x7x4; deconv 4 3x3 pad=1 groups=4",
        "input 4x4x4; deconv 4 3x3 stride=2 pad=1 groups=4 bias=no",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        float *y[2], *dx[2], *dw[2];
        int64_t ny, nx, nw;
        for (int v = 0; v < 2; v++) {
            cn_cpu_depthwise_flat_force(v ? -1 : 0);
            run(specs[i], cn_backend_default(), 3, &y[v], &dx[v], &dw[v], &ny, &nx, &nw);
        }
        CHECK(y[0] && y[1]);
        if (y[0] && y[1]) {
            CHECK(memcmp(y[0], y[1], (size_t)ny * sizeof(float)) == 0);
            CHECK(memcmp(dx[0], dx[1], (size_t)nx * sizeof(float)) == 0);
            CHECK(rel(dw[1], dw[0], nw) < 1e-5);
        }
        for (int v = 0; v < 2; v++) free(y[v]), free(dx[v]), free(dw[v]);
        compare(specs[i], 3);
        if (cn_gemm_avx512()) same_in_each(specs[i], 3, 2, cn_gemm_force_avx2);
    }
    same_in_each("input 14x14x8; conv 8 3x3 pad=1 groups=8; relu; conv 8 3x3 stride=2 pad=1 groups=8", 5, 3, threads_of);
    random_depthwise(1500);
    cn_gemm_force_avx2(1);
    if (cn_gemm_avx2()) random_depthwise(300);
    cn_gemm_force_avx2(0);
    char how[160];
    int avx512 = cn_gemm_avx512() || cn_gemm_avx2();
    CHECK(!avx512 || strstr(kernel_at("input 14x14x4; conv 4 3x3 pad=1 groups=4", 2, how, sizeof how), "read flat"));
    CHECK(!avx512 || strstr(kernel_at("input 32x32x4; conv 4 3x3 pad=1 groups=4", 2, how, sizeof how), "read flat"));
    CHECK(!strstr(kernel_at("input 33x32x4; conv 4 3x3 pad=1 groups=4", 2, how, sizeof how), "read flat"));
    CHECK(!strstr(kernel_at("input 14x14x4; conv 4 3x3 groups=4", 2, how, sizeof how), "read flat")); /* narrower */
    CHECK(!avx512 || strstr(kernel_at("input 14x14x4; conv 4 3x3 stride=2 pad=1 groups=4", 2, how, sizeof how), "read flat"));
    CHECK(!strstr(kernel_at("input 15x15x4; conv 4 3x3 stride=2 pad=1 groups=4", 2, how, sizeof how), "read flat"));
    CHECK(!avx512 || strstr(kernel_at("input 32x32x2; conv 2 3x3 stride=2 pad=1 groups=2", 2, how, sizeof how), "read flat"));
    CHECK(!strstr(kernel_at("input 34x32x2; conv 2 3x3 stride=2 pad=1 groups=2", 2, how, sizeof how), "read flat"));
    cn_cpu_depthwise_flat_force(0);
    CHECK(!strstr(kernel_at("input 14x14x4; conv 4 3x3 pad=1 groups=4", 2, how, sizeof how), "read flat"));
    cn_cpu_depthwise_flat_force(-1);
}

/* Winograd F(2x2,3x3) in training where the batch's tiles pay and one image's do not
 * (cn_cpu_winograd_train_way): the rule at its measured points; then, the rule forced on
 * wherever Winograd can run, the forward in training and the input gradient against the
 * reference, their bits those of Winograd forced everywhere (its way is taken), and the forward
 * out of training the bits of the rule off (an image's bits stay its own) */
static void test_winograd_training(void)
{
    if (!cn_gemm_avx512()) return; /* no Winograd without AVX-512 */
    /* train: the forward's and input gradient's rule; dw: the weight gradient's by blocks of
     * channel pairs (256 pairs or more a tile, 64 tiles or more, an even map) */
    static const struct { const char *spec; int64_t batch; int train, dw; } rule[] = {
        { "input 4x4x512; conv 512 3x3 pad=1", 32, 1, 1 },  /* resnet18-cifar's last stage: 128 tiles */
        { "input 4x4x512; conv 512 3x3 pad=1", 16, 0, 1 },  /* 64 tiles: even (the rule's comment) */
        { "input 4x4x512; conv 512 3x3 pad=1", 8, 0, 0 },   /* 32 tiles */
        { "input 4x4x256; conv 256 3x3 pad=1", 32, 0, 1 },  /* 128 tiles of 256 channels: slower */
        { "input 4x4x256; conv 256 3x3 pad=1", 64, 1, 1 },
        { "input 4x4x128; conv 128 3x3 pad=1", 512, 0, 0 }, /* fewer than 256 channels */
        { "input 3x3x512; conv 512 3x3 pad=1", 64, 0, 0 },  /* tiles over 4x4 for 3x3 */
        { "input 2x2x512; conv 512 3x3 pad=1", 128, 1, 1 },
    };
    char how[256];
    for (size_t i = 0; i < sizeof rule / sizeof rule[0]; i++) {
        kernel_at(rule[i].spec, rule[i].batch, how, sizeof how);
        printf("  %-40s batch %3lld: %s\n", rule[i].spec, (long long)rule[i].batch, how);
        CHECK(!strncmp(how, "sgemm on packed patches", 23)); /* out of training: an image's way */
        CHECK(!strstr(how, "in training: winograd F(2x2,3x3)") == !rule[i].train);
        CHECK(!strstr(how, "dx: winograd F(2x2,3x3)") == !rule[i].train);
        CHECK(!strstr(how, "dw: winograd F(3x3,2x2)") == !rule[i].dw);
    }
    kernel_at("input 6x6x512; conv 512 3x3 pad=1", 1, how, sizeof how); /* 9 tiles: an image's way */
    CHECK(!strncmp(how, "winograd F(2x2,3x3); dx", 23));

    static const char *specs[] = {
        "input 4x4x8; conv 8 3x3 pad=1",
        "input 3x3x4; conv 5 3x3 pad=1; relu; conv 6 3x3 pad=1", /* dx by the rule too */
        "input 2x6x3; conv 4 3x3 pad=1",                         /* few taps out of training */
        "input 4x4x6; deconv 5 3x3 pad=1",                        /* its forward: an input gradient */
        "input 4x4x16 as x; conv 16 3x3 pad=1 as c; relu; conv 16 3x3 pad=1 as d; add x d",
    };
    cn_cpu_winograd_batch_force(1);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) compare(specs[i], 3);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        float *y[3], *dx[3], *dw[3], *inf[2];
        int64_t ny, nx, nw, ni;
        cn_cpu_winograd_batch_force(1);
        run(specs[i], cn_backend_default(), 3, &y[0], &dx[0], &dw[0], &ny, &nx, &nw);
        inf[0] = forward_of(specs[i], 3, 0, &ni);
        cn_cpu_winograd_batch_force(-1);
        cn_cpu_winograd_force(1);
        run(specs[i], cn_backend_default(), 3, &y[1], &dx[1], &dw[1], &ny, &nx, &nw);
        cn_cpu_winograd_force(-1);
        cn_cpu_winograd_batch_force(0);
        run(specs[i], cn_backend_default(), 3, &y[2], &dx[2], &dw[2], &ny, &nx, &nw);
        inf[1] = forward_of(specs[i], 3, 0, &ni);
        CHECK(memcmp(y[0], y[1], (size_t)ny * sizeof(float)) == 0);
        CHECK(memcmp(dx[0], dx[1], (size_t)nx * sizeof(float)) == 0);
        CHECK(memcmp(y[0], y[2], (size_t)ny * sizeof(float)) != 0); /* the rule off: another way */
        CHECK(memcmp(inf[0], inf[1], (size_t)ni * sizeof(float)) == 0);
        for (int v = 0; v < 3; v++) free(y[v]), free(dx[v]), free(dw[v]);
        free(inf[0]), free(inf[1]);
    }
    cn_cpu_winograd_batch_force(-1);
}


/* Where a thread's scratch cannot be had (the heap says no), Winograd's kernels run on the
 * workspace's spare, a thread at a time: the same bits as with scratch, on 2 threads. Forward
 * panels of F(2x2,3x3) and F(4x4,3x3), the weight gradient by parts of both sizes, and by
 * blocks. */
static void test_winograd_spare(void)
{
    int before = cn_threads();
    cn_set_threads(2);
    same_in_each("input 10x10x16; conv 16 3x3 pad=1; relu; conv 16 3x3 pad=1", 5, 2, scratch_refused);
    same_in_each("input 24x24x32; conv 24 3x3 pad=1; relu; conv 20 3x3 pad=1", 5, 2, scratch_refused);
    cn_cpu_winograd_dw_blocks_force(1);
    same_in_each("input 6x6x150; conv 70 3x3 pad=1; relu; conv 9 3x3", 9, 2, scratch_refused);
    cn_cpu_winograd_dw_blocks_force(-1);
    cn_set_threads(before);
}

/* the same bits on 1, 2 and 3 threads */
static void test_threads(void)
{
    static const char *specs[] = {
        "input 28x28x1; conv 32 3x3 pad=1; relu; maxpool 2x2; conv 64 3x3 pad=1; relu; maxpool 2x2; flatten; dense 128; relu; dense 10",
        "input 9x11x3; conv 7 3x3 stride=2 pad=same; batchnorm; relu; conv 4 1x1; flatten; dense 5",
        "input 40x40x64; conv 8 3x3 pad=1",
        "input 16x16x16; deconv 8 4x4 stride=2 pad=1; relu as r; globalavgpool as g; add r g",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) same_in_each(specs[i], 5, 3, threads_of);
    /* big enough that each path's work goes to the threads (their thresholds keep the small nets
     * above on one), at batch 3: F(4x4,3x3) in runs of 5 tiles, a tile row in two, whose 7
     * panels 3 threads cut inside a row (the race of winograd4.c's over-stored runs, fixed
     * 2026-12-07, shows here), F(2x2,3x3) past 192 channels, a strided conv, batch norm and
     * pooling, depthwise planes, a 1x1, the channel moves, an input gradient added to another's */
    static const char *big[] = {
        "input 40x40x32 as x; conv 32 3x3 pad=1 as a; conv 32 3x3 pad=1 from x as b; add a b; relu; maxpool 2x2",
        "input 20x20x256; conv 24 3x3 pad=1",
        "input 64x64x16; conv 32 3x3 stride=2 pad=1; batchnorm; relu; maxpool 3x3 stride=2 pad=1",
        "input 56x56x32; conv 32 3x3 pad=1 groups=32; relu6; conv 48 1x1",
        "input 48x48x32 as x; channels 16 as a; channels 16 start=16 from x; conv 16 1x1 as b; concat a b; shuffle 2",
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) same_in_each(big[i], 3, 3, threads_of);
}

/* backend base as `name`: its rows copied into rows, each changed by edit (a capability taken
 * away, to compare with) */
static cn_backend backend_but(const cn_backend *base, const char *name, cn_kernels *rows, void (*edit)(cn_kernels *))
{
    memcpy(rows, base->kernels, CN_OP_COUNT * sizeof *rows);
    for (int op = 0; op < CN_OP_COUNT; op++) edit(&rows[op]);
    return (cn_backend){ name, rows, base->memory, base->step, base->open, base->supports, base->half_storage };
}

static cn_backend default_but(const char *name, cn_kernels *rows, void (*edit)(cn_kernels *))
{
    return backend_but(cn_backend_default(), name, rows, edit);
}

static void no_fusion(cn_kernels *k)
{
    k->forward_relu_in = k->backward_relu_in = k->forward_relu_out = k->forward_relu_pool = k->backward_relu_out = NULL;
    k->relu_pool = NULL;
}
static void no_folding(cn_kernels *k) { k->fold_bn = 0; }
static void no_fresh_dx(cn_kernels *k) { k->fresh_dx = 0; }

/* the cases of test_fused_relu on backends both[0] (fusing) and both[1] (not): the same bits */
static void fused_cases(const cn_backend *const both[2])
{
    static const struct { const char *spec; int relu, fused; } cases[] = {
        { "input 12x12x3; conv 8 3x3 pad=1; relu; maxpool 2x2; conv 6 3x3; relu; maxpool 3x3 stride=2; flatten; dense 5", 2, 1 },
        { "input 11x9x4; conv 6 3x3 pad=1; relu; maxpool 3x3 stride=2 pad=1; flatten; dense 4", 2, 1 },
        { "input 8x8x2; relu; maxpool 2x2; flatten; dense 3", 1, 1 },
        { "input 8x8x3; conv 4 3x3 pad=1 as a; relu; maxpool 2x2; upsample 2 as u; add a u", 2, 0 },
        { "input 8x8x3; conv 4 3x3 pad=1; relu as r; maxpool 2x2; upsample 2 as u; add r u", 2, 1 },
        { "input 6x6x3; conv 4 3x3 pad=1; maxpool 2x2; relu", 3, 0 },
        { "input 10x10x16; conv 16 3x3 pad=1; relu; conv 8 3x3 pad=1", 2, 1 },
        { "input 8x8x3; conv 6 3x3 pad=1; relu; conv 4 3x3 stride=2; flatten; dense 7; relu; dense 3", 2, 1 },
        { "input 9x9x2; conv 5 3x3 stride=2; relu; flatten; dense 6; relu", 5, 1 },
        { "input 8x8x3; conv 4 3x3 pad=1 as a; relu as r; add a r", 2, 0 },
        /* Winograd computing the maxpool too: tile rows in two parts (12 across), in one (32
         * across), and a map of odd size (the maxpool runs on its own) */
        { "input 12x12x8; conv 9 3x3 pad=1; relu; maxpool 2x2; flatten; dense 3", 2, 1 },
        { "input 32x32x8; conv 8 3x3 pad=1 bias=no; relu; maxpool 2x2; conv 4 1x1", 2, 1 },
        { "input 11x11x8; conv 8 3x3 pad=1; relu; maxpool 2x2; flatten; dense 3", 2, 1 },
        /* a relu in a batch norm's pass (fused: 2, where the backend's batch norm has the column:
         * CPU, CUDA): asking for the batch norm's output runs it again, and its running statistics
         * (compared too) must move once */
        { "input 8x8x3; conv 6 3x3 pad=1 bias=no; batchnorm; relu; conv 4 3x3; batchnorm affine=no; relu", 3, 2 },
        { "input 3x3x2; flatten; dense 6; batchnorm; relu; dense 3", 4, 2 },
        /* maps of more values than the CPU masks at a time (1,369 > 1,024), a remainder */
        { "input 37x37x2; batchnorm; relu; conv 3 3x3", 2, 2 },
        /* relu6 (fused: 3, where the batch norm's row takes it: CPU), outputs beyond 6 and
         * below 0, as MobileNetV2's blocks; and after a dense layer */
        { "input 37x37x3; conv 6 3x3 pad=1 bias=no; batchnorm; relu6; conv 4 3x3 groups=2; batchnorm; relu6", 3, 3 },
        { "input 3x3x2; flatten; dense 6; batchnorm; relu6; dense 3", 4, 3 },
        /* a relu in an add's pass (fused: 4, where the backend's add has the column: CPU): a map
         * and the net's input; a 1x1 map spread over the planes; one tensor twice; three inputs,
         * two of them read elsewhere too (their gradients added to); chunks of the threads and
         * of the masked gradient with remainders (16,428 values); and an add whose output
         * something else reads too (not fused) */
        { "input 8x8x3 as x; conv 3 3x3 pad=1 as a; add a x; relu; conv 4 3x3", 3, 4 },
        { "input 6x6x4 as x; globalavgpool as g; add x g; relu; conv 3 3x3", 3, 4 },
        { "input 6x6x3; conv 4 3x3 pad=1 as a; add a a; relu; flatten; dense 3", 3, 4 },
        { "input 7x7x3 as x; conv 3 3x3 pad=1 as a; conv 3 1x1 from x as b; add a b x; relu as r; add r a b", 4, 4 },
        { "input 37x37x3 as x; conv 3 3x3 pad=1 as a; add a x; relu; conv 2 3x3", 3, 4 },
        { "input 8x8x3 as x; conv 3 3x3 pad=1 as a; add a x as s; relu as r; add r s", 3, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float *got[2][8] = { { NULL } };
        int64_t len[8] = { 0 };
        for (int b = 0; b < 2; b++) {
            cn_net *net = parse_spec(ctx, cases[i].spec);
            if (!net) continue;
            cn_net_set_backend(net, both[b]);
            CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 3) == CN_OK);
            if (cases[i].fused == 3) { /* batch norms' gamma 4: outputs past relu6's 6 */
                int64_t np;
                float *w = cn_net_params(net, &np, NULL);
                for (int64_t k = 0; k < np; k++) w[k] *= 4;
            }
            cn_layer_info in = layer_at(ctx, net, 0, 1);
            int64_t nx = in.c * in.h * in.w * 4, ny;
            float *x = malloc((size_t)nx * sizeof(float));
            cn_rng rng;
            cn_rng_seed(&rng, 9);
            for (int64_t k = 0; k < nx; k++) x[k] = (float)cn_rng_normal(&rng);
            CHECK(cn_net_forward(ctx, net, x, 4, 1) == CN_OK);
            cn_net_output(net, &ny);
            float *g = malloc((size_t)ny * sizeof(float));
            for (int64_t k = 0; k < ny; k++) g[k] = (float)cn_rng_normal(&rng);
            cn_net_zero_grad(net);
            CHECK(cn_net_backward(ctx, net, g) == CN_OK);
            int64_t nw;
            const float *parts[8] = { cn_net_output(net, &len[0]), cn_net_input_grad(net), cn_net_grads(net, &nw),
                                      cn_net_layer_output(net, cases[i].relu, &len[3]),
                                      cn_net_layer_grad(net, cases[i].relu, &len[4]),
                                      cn_net_layer_output(net, cases[i].relu - 1, &len[5]),
                                      cn_net_params(net, NULL, &len[6]), /* copied after the asks above */
                                      /* the gradient of the relu's input: never written where the
                                       * relu's backward is folded into the layer before's */
                                      cn_net_layer_grad(net, cases[i].relu - 1, &len[7]) };
            len[1] = nx, len[2] = nw;
            for (int p = 0; p < 8; p++) {
                got[b][p] = malloc((size_t)(len[p] ? len[p] : 1) * sizeof(float));
                memcpy(got[b][p], parts[p], (size_t)len[p] * sizeof(float));
            }
            const char *how = cn_net_layer_kernel(net, cases[i].relu);
            const cn_kernels *bn_row = &both[0]->kernels[CN_OP_BATCHNORM];
            int fused = cases[i].fused == 2   ? bn_row->forward_relu_out != NULL
                        : cases[i].fused == 3 ? bn_row->forward_relu_out && bn_row->relu6_out
                        : cases[i].fused == 4 ? both[0]->kernels[CN_OP_ADD].forward_relu_out != NULL
                                              : cases[i].fused;
            CHECK((b == 0 && fused) == (strncmp(how, "fused", 5) == 0));
            free(g), free(x);
            cn_net_destroy(net);
        }
        for (int p = 0; p < 8; p++) {
            if (got[0][p] && got[1][p]) CHECK(memcmp(got[0][p], got[1][p], (size_t)len[p] * sizeof(float)) == 0);
            free(got[0][p]), free(got[1][p]);
        }
    }
}

/* a relu fused into the maxpool after it (cn_kernels.forward_relu_in), or into the conv, dense,
 * batch norm or add before it (forward_relu_out: Winograd, padded rows, packed patches, few
 * rows; the add's backward_relu_out too), gives
 * the layers' bits: output, every gradient, and the relu's output and gradient and its input
 * when asked for; a relu whose input something else reads too runs on its own */
static void test_fused_relu(void)
{
    static const cn_precision precisions[] = { CN_PRECISION_FP32, CN_PRECISION_BF16 };
    for (int be = 0; be < cn_backend_count(); be++)
        for (int p = 0; p < 2; p++) {
            const cn_backend *base = cn_backend_at(be);
            /* bf16 where the backend has it (CUDA: activations stored as bf16 NHWC) */
            if (!base->kernels[CN_OP_MAXPOOL].forward_relu_in || (p && !base->open)) continue;
            if (base->open && base->open(ctx, precisions[p])) continue;
            cn_kernels rows[CN_OP_COUNT];
            cn_backend apart = backend_but(base, "no fusion", rows, no_fusion);
            const cn_backend *both[2] = { base, &apart };
            printf("  %s%s: every fused form against the layers apart\n", base->name, p ? " (bf16)" : "");
            fused_cases(both);
            if (base->open) base->open(ctx, CN_PRECISION_FP32);
        }
}

/* cn_net_set_input_grad outlives cn_net_init_params (which plans the net afresh): off, the
 * input's gradient is never written (its slab stays as allocated, zeroed); on, it is */
static void test_input_grad_setting(void)
{
    for (int on = 0; on < 2; on++) {
        cn_net *net = parse_spec(ctx, "input 6x6x2; conv 3 3x3 pad=1; flatten; dense 4");
        if (!net) return;
        cn_net_set_input_grad(net, on);
        CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 1) == CN_OK);
        float x[2 * 72], g[2 * 4];
        cn_rng rng;
        cn_rng_seed(&rng, 5);
        for (int i = 0; i < 2 * 72; i++) x[i] = (float)cn_rng_normal(&rng);
        for (int i = 0; i < 2 * 4; i++) g[i] = (float)cn_rng_normal(&rng);
        CHECK(cn_net_forward(ctx, net, x, 2, 1) == CN_OK);
        cn_net_zero_grad(net);
        CHECK(cn_net_backward(ctx, net, g) == CN_OK);
        const float *dx = cn_net_input_grad(net);
        int written = 0;
        for (int i = 0; i < 2 * 72; i++) written |= dx[i] != 0.0f;
        CHECK(written == on);
        cn_net_destroy(net);
    }
}

/* At inference a batch norm after a convolution is folded into its weights (cn_kernels.fold_bn):
 * the output within rounding of the two layers (1e-5 of its largest value), the convolution's
 * own output when asked for, and a backward after it, the bits of the layers apart. Running
 * statistics from two training steps, so that they are not the initial 0 and 1. */
static void test_folded_bn(void)
{
    static const char *specs[] = {
        "input 10x10x3; conv 8 3x3 pad=1 bias=no; batchnorm; relu; conv 6 3x3 pad=1; batchnorm affine=no; flatten; dense 4",
        "input 12x12x16; conv 16 3x3 pad=1; batchnorm; relu; maxpool 2x2; conv 5 1x1 stride=2 bias=no; batchnorm",
        "input 8x8x3; conv 4 3x3 pad=1 as c; batchnorm as b; add b c",
    };
    cn_kernels rows[CN_OP_COUNT];
    cn_backend apart = default_but("cpu, no folding", rows, no_folding);
    const cn_backend *both[2] = { cn_backend_default(), &apart };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        float *got[2][5] = { { NULL } };
        int64_t len[5] = { 0 };
        int folded = 0;
        for (int b = 0; b < 2; b++) {
            cn_net *net = parse_spec(ctx, specs[i]);
            if (!net) continue;
            cn_net_set_backend(net, both[b]);
            CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 3) == CN_OK);
            cn_layer_info in = layer_at(ctx, net, 0, 1);
            int64_t nx = in.c * in.h * in.w * 5, ny, nw;
            float *x = malloc((size_t)nx * sizeof(float));
            cn_rng rng;
            cn_rng_seed(&rng, 4);
            for (int64_t k = 0; k < nx; k++) x[k] = 1.5f + (float)cn_rng_normal(&rng);
            for (int step = 0; step < 2; step++) CHECK(cn_net_forward(ctx, net, x, 5, 1) == CN_OK); /* running statistics move */
            CHECK(cn_net_forward(ctx, net, x, 5, 0) == CN_OK);
            const float *y = cn_net_output(net, &len[0]);
            got[b][0] = malloc((size_t)len[0] * sizeof(float));
            memcpy(got[b][0], y, (size_t)len[0] * sizeof(float));
            const float *conv = cn_net_layer_output(net, 1, &len[1]);
            got[b][1] = malloc((size_t)len[1] * sizeof(float));
            memcpy(got[b][1], conv, (size_t)len[1] * sizeof(float));
            folded |= b == 0 && !strncmp(cn_net_layer_kernel(net, 2), "folded", 6);
            ny = len[0];
            float *g = malloc((size_t)ny * sizeof(float));
            for (int64_t k = 0; k < ny; k++) g[k] = (float)cn_rng_normal(&rng);
            CHECK(cn_net_forward(ctx, net, x, 5, 0) == CN_OK);
            cn_net_zero_grad(net);
            CHECK(cn_net_backward(ctx, net, g) == CN_OK);
            const float *parts[3] = { cn_net_input_grad(net), cn_net_grads(net, &nw), cn_net_layer_output(net, 2, &len[4]) };
            len[2] = nx, len[3] = nw;
            for (int p = 0; p < 3; p++) {
                got[b][2 + p] = malloc((size_t)(len[2 + p] ? len[2 + p] : 1) * sizeof(float));
                memcpy(got[b][2 + p], parts[p], (size_t)len[2 + p] * sizeof(float));
            }
            free(g), free(x);
            cn_net_destroy(net);
        }
        CHECK(folded == (i < 2)); /* the last: the conv has another reader */
        if (got[0][0] && got[1][0]) {
            printf("  folded batch norm %-90s y %.1e\n", specs[i], rel(got[0][0], got[1][0], len[0]));
            CHECK(rel(got[0][0], got[1][0], len[0]) < 1e-5);
        }
        for (int p = 1; p < 5; p++)
            if (got[0][p] && got[1][p]) CHECK(memcmp(got[0][p], got[1][p], (size_t)len[p] * sizeof(float)) == 0);
        for (int p = 0; p < 5; p++) free(got[0][p]), free(got[1][p]);
    }
}

/* Held parameters (cn_net_hold_params): the folded weights and Winograd's transforms kept
 * between inference forwards give the bits of a net that makes them at every call, at any
 * batch and after what the library changes (training forwards moving running statistics, an
 * optimizer's step, a checkpoint's values); and they are really kept: a value changed behind
 * the hold's back is not seen until hold 0 and 1. Nets: a folded conv on Winograd's way, one
 * with its relu and maxpool in its pass, one on the product's way (stride 2). */
static double held_out(cn_net *net, const float *x, int64_t batch, float *y)
{
    int64_t n;
    CHECK(cn_net_forward(ctx, net, x, batch, 0) == CN_OK);
    const float *o = cn_net_output(net, &n);
    memcpy(y, o, (size_t)n * sizeof(float));
    return (double)n;
}

/* spec: a net of that form on side x side x 8 images */
static void held_case(const char *spec, int64_t side)
{
    char dir[512], path[600];
    test_tmpdir(dir, sizeof dir, "held");
    snprintf(path, sizeof path, "%s/net.safetensors", dir);
    cn_net *net[2] = { parse_spec(ctx, spec), parse_spec(ctx, spec) }; /* made afresh, held */
    if (!net[0] || !net[1]) return;
    cn_optim *opt[2] = { NULL, NULL };
    cn_optim_config oc;
    cn_optim_defaults(&oc, CN_OPTIM_MOMENTUM);
    int64_t nx = side * side * 8 * 5;
    float *x = malloc((size_t)nx * sizeof(float)), y[2][5 * 5], g[5 * 5];
    cn_rng rng;
    cn_rng_seed(&rng, 11);
    for (int64_t k = 0; k < nx; k++) x[k] = (float)cn_rng_normal(&rng);
    for (int k = 0; k < 25; k++) g[k] = (float)cn_rng_normal(&rng);
    for (int b = 0; b < 2; b++) {
        CHECK(cn_net_init_params(ctx, net[b], CN_INIT_KAIMING_UNIFORM, 7) == CN_OK);
        CHECK(cn_optim_create(ctx, net[b], &oc, &opt[b]) == CN_OK);
        for (int step = 0; step < 2; step++) CHECK(cn_net_forward(ctx, net[b], x, 5, 1) == CN_OK);
    }
    CHECK(cn_net_hold_params(ctx, net[1], 1) == CN_OK && cn_net_params_held(net[1]) && !cn_net_params_held(net[0]));
    /* without AVX-512 no Winograd: conv2's weights have no kept form, and a change behind the
     * hold's back shows at once (the hold's contract leaves that undefined) */
    int transformed = cn_gemm_avx512();
    CHECK(!transformed || !strncmp(cn_net_layer_kernel(net[1], 1), "winograd", 8));
    /* the same bits held or not: made, then kept; at batch 1 and 5; after each change */
    for (int round = 0; round < 5; round++) {
        if (round == 1) /* a training forward moves the running statistics */
            for (int b = 0; b < 2; b++) CHECK(cn_net_forward(ctx, net[b], x, 5, 1) == CN_OK);
        if (round == 2) /* an optimizer's step (after an inference pass, which leaves the forms made) */
            for (int b = 0; b < 2; b++) {
                CHECK(cn_net_forward(ctx, net[b], x, 5, 0) == CN_OK);
                cn_net_zero_grad(net[b]);
                CHECK(cn_net_backward(ctx, net[b], g) == CN_OK);
                CHECK(cn_optim_step(ctx, opt[b], net[b], NULL) == CN_OK);
            }
        if (round == 3) { /* a checkpoint's values: the made-afresh net's, a step on */
            CHECK(cn_net_forward(ctx, net[0], x, 5, 1) == CN_OK);
            cn_net_zero_grad(net[0]);
            CHECK(cn_net_backward(ctx, net[0], g) == CN_OK);
            CHECK(cn_optim_step(ctx, opt[0], net[0], NULL) == CN_OK);
            CHECK(cn_checkpoint_write(ctx, path, net[0], NULL, NULL, 0) == CN_OK);
            cn_checkpoint *ck = NULL;
            int copied = 0;
            CHECK(cn_checkpoint_read(ctx, path, &ck) == CN_OK);
            CHECK(ck && cn_checkpoint_load_matching(ctx, ck, net[1], &copied, NULL, 0) == CN_OK &&
                  copied == cn_net_tensor_count(net[1]));
            cn_checkpoint_destroy(ck);
            remove(path), remove(dir);
        }
        for (int pass = 0; pass < 3; pass++) {
            int64_t batch = pass == 1 ? 1 : 5;
            double n = held_out(net[0], x, batch, y[0]);
            CHECK(held_out(net[1], x, batch, y[1]) == n);
            CHECK(memcmp(y[0], y[1], (size_t)n * sizeof(float)) == 0);
        }
        if (round == 4) { /* behind the hold's back: not seen until the hold is taken again */
            for (int b = 0; b < 2; b++) {
                cn_tensor t1, t2;
                CHECK(cn_net_find_tensor(ctx, net[b], "conv1.weight", &t1) == CN_OK);
                CHECK(cn_net_find_tensor(ctx, net[b], "conv2.weight", &t2) == CN_OK);
                t1.data[100] += 0.5f, t2.data[3] -= 0.25f;
            }
            float kept[25];
            held_out(net[1], x, 5, kept);
            held_out(net[0], x, 5, y[0]);
            CHECK(!transformed || memcmp(kept, y[1], sizeof kept) == 0); /* the forms made before the change */
            CHECK(memcmp(kept, y[0], sizeof kept) != 0);     /* which the change does move */
            CHECK(cn_net_hold_params(ctx, net[1], 0) == CN_OK && cn_net_hold_params(ctx, net[1], 1) == CN_OK);
            held_out(net[1], x, 5, y[1]);
            CHECK(memcmp(y[0], y[1], sizeof kept) == 0);
        }
    }
    for (int b = 0; b < 2; b++) cn_optim_destroy(opt[b]), cn_net_destroy(net[b]);
    free(x);
}

static void test_held_params(void)
{
    /* 10x10 maps: Winograd F(2x2,3x3); 14x14: F(4x4,3x3) */
    held_case("input 10x10x8; conv 16 3x3 pad=1; batchnorm; relu; conv 16 3x3 pad=1; relu; maxpool 2x2; "
              "conv 16 3x3 stride=2 pad=1; batchnorm; relu; flatten; dense 5", 10);
    held_case("input 14x14x8; conv 16 3x3 pad=1; batchnorm; relu; conv 16 3x3 pad=1; relu; maxpool 2x2; "
              "conv 16 3x3 stride=2 pad=1; batchnorm; relu; flatten; dense 5", 14);
}

/* storing fresh input gradients (cn_op_io.dx_fresh) gives the bits of zeroing and adding */
static void test_fresh_gradients(void)
{
    static const char *specs[] = {
        "input 28x28x1; conv 8 3x3 pad=1; relu; maxpool 2x2; conv 16 3x3 pad=1; tanh; minpool 2x2; flatten; dense 12; "
        "sigmoid; dense 5",
        "input 9x9x4; conv 6 3x3 pad=1 as a; leakyrelu; conv 6 3x3 pad=1 as b; add a b; conv 5 1x1; relu; conv 3 5x5",
        "input 8x8x3; conv 6 3x3 stride=2 pad=same; relu; flatten; dense 4",
        "input 8x8x4; batchnorm; conv 6 3x3 pad=1 bias=no; batchnorm affine=no; relu; flatten; dense 3",
        /* windows that leave the last row and column out (9x9 by 2x2: those cells get 0) */
        "input 9x9x3; avgpool 2x2; conv 4 3x3 pad=1; dropout keep=0.7; avgpool 3x3 stride=2 pad=1; conv 5 1x1; "
        "globalavgpool; flatten; dense 3",
        "input 8x8x2; dropout keep=0.6; conv 3 3x3 pad=1; avgpool 2x2; flatten; dense 4",
        "input 7x6x3; globalmaxpool; flatten; dense 4",
        "input 8x8x4; conv 4 3x3 pad=1 groups=4; relu; conv 4 3x3 stride=2 pad=1 groups=4; flatten; dense 3",
    };
    cn_kernels rows[CN_OP_COUNT];
    cn_backend zeroing = default_but("cpu, zeroing", rows, no_fresh_dx);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        float *y[2], *dx[2], *dw[2];
        int64_t ny, nx, nw;
        run(specs[i], cn_backend_default(), 4, &y[0], &dx[0], &dw[0], &ny, &nx, &nw);
        run(specs[i], &zeroing, 4, &y[1], &dx[1], &dw[1], &ny, &nx, &nw);
        if (y[0] && y[1]) {
            CHECK(memcmp(dx[0], dx[1], (size_t)nx * sizeof(float)) == 0);
            CHECK(memcmp(dw[0], dw[1], (size_t)nw * sizeof(float)) == 0);
        }
        for (int t = 0; t < 2; t++) free(y[t]), free(dx[t]), free(dw[t]);
    }
}

/* An image's output does not depend on the batch around it (the ways are chosen by one image's
 * shape): one image alone gives the bits it gets among 5, here where the products of 4x4 maps
 * for one image have 16 columns (A read in place) and in a batch 80, and a dense layer's one row */
static void test_image_alone(void)
{
    static const char *specs[] = {
        "input 4x4x64; conv 64 3x3 pad=1; relu; conv 40 3x3 pad=1 bias=no; conv 48 1x1",
        "input 8x8x16; conv 32 3x3 stride=2 pad=1; relu; conv 32 3x3 pad=1; flatten; dense 10",
        "input 16x16x32; conv 64 1x1 stride=2 bias=no; relu; conv 16 1x1 stride=2", /* subsampled */
        /* Winograd F(4x4,3x3): 3 tile rows a vector, 5 an image, so a batch's vectors hold two images' rows */
        "input 18x18x16; conv 24 3x3 pad=1; relu; conv 8 3x3 pad=1; flatten; dense 5",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        cn_net *net = parse_spec(ctx, specs[i]);
        if (!net) continue;
        CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 4) == CN_OK);
        cn_layer_info in = layer_at(ctx, net, 0, 1);
        int64_t per = in.c * in.h * in.w, ny;
        float *x = malloc((size_t)(5 * per) * sizeof(float));
        cn_rng rng;
        cn_rng_seed(&rng, 12);
        for (int64_t k = 0; k < 5 * per; k++) x[k] = (float)cn_rng_normal(&rng);
        CHECK(cn_net_forward(ctx, net, x, 5, 0) == CN_OK);
        const float *y = cn_net_output(net, &ny);
        float *all = malloc((size_t)ny * sizeof(float));
        memcpy(all, y, (size_t)ny * sizeof(float));
        int64_t out = ny / 5;
        for (int s = 0; s < 5; s++) {
            CHECK(cn_net_forward(ctx, net, x + s * per, 1, 0) == CN_OK);
            if (memcmp(cn_net_output(net, NULL), all + s * out, (size_t)out * sizeof(float)) != 0)
                test_fail(__FILE__, __LINE__, "%s: image %d alone differs from the batch's", specs[i], s);
        }
        free(all), free(x);
        cn_net_destroy(net);
    }
}

/* cn_net_layer_kernel: how each layer runs, by the backend's row */
static void test_layer_kernels(void)
{
    cn_net *net = parse_spec(ctx, "input 12x12x8; conv 4 3x3 pad=1; relu; conv 6 1x1; upsample 2x2; conv 3 3x3 stride=2; "
                                   "adaptiveavgpool 3x3");
    if (!net) return;
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    CHECK_STR(cn_net_layer_kernel(net, 0), "input");
    CHECK_CONTAINS(cn_net_layer_kernel(net, 1), "sgemm on padded rows");
    CHECK_STR(cn_net_layer_kernel(net, 2), "cpu");
    CHECK_CONTAINS(cn_net_layer_kernel(net, 3), "sgemm, the image as a matrix");
    CHECK_STR(cn_net_layer_kernel(net, 4), "cpu");
    CHECK_CONTAINS(cn_net_layer_kernel(net, 5), "packed patches");
    CHECK_STR(cn_net_layer_kernel(net, 6), "reference"); /* no CPU row for adaptiveavgpool */
    CHECK(cn_net_layer_kernel(net, 7) == NULL && cn_net_layer_kernel(net, -1) == NULL);
    cn_net_set_backend(net, cn_backend_reference());
    CHECK_STR(cn_net_layer_kernel(net, 1), "reference");
    cn_net_destroy(net);
}

static void setup(void) { CHECK(cn_ctx_create(NULL, &ctx) == CN_OK); }
static void teardown(void) { cn_ctx_destroy(ctx); }

/* ---- a backend's memory: every slab through it ---------------------------------------------- */

/* memory that counts its blocks (and poisons them on release), standing in for a device's */
#define MAX_BLOCKS 64
static struct { void *p; size_t n; } blocks[MAX_BLOCKS];
static int n_live, n_allocs;

static void *counted_alloc(size_t bytes)
{
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (!blocks[i].p) {
            if (!(blocks[i].p = calloc(1, bytes))) return NULL;
            blocks[i].n = bytes, n_live++, n_allocs++;
            return blocks[i].p;
        }
    return NULL;
}

static void counted_release(void *p)
{
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (blocks[i].p == p) {
            memset(p, 0xff, blocks[i].n); /* NaNs for a use after release */
            free(p);
            blocks[i].p = NULL, n_live--;
            return;
        }
    test_fail(__FILE__, __LINE__, "release of a block it did not allocate");
}

/* 1 when [p, p + bytes) lies inside one counted block */
static int in_blocks(const void *p, size_t bytes)
{
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (blocks[i].p && (const char *)p >= (const char *)blocks[i].p &&
            (const char *)p + bytes <= (const char *)blocks[i].p + blocks[i].n)
            return 1;
    return 0;
}

/* the CPU kernels in counted memory: the parameters, gradients, activations, the step's
 * scratch and the optimizer's state are allocated there, a move between backends keeps the values, and all is released */
static void test_backend_memory(void)
{
    static const cn_memory_ops counted = { counted_alloc, counted_release, NULL, NULL, NULL, NULL };
    cn_backend dev = { "counted", cn_backend_default()->kernels, &counted, NULL, NULL, NULL, NULL };
    const char *spec = "input 8x8x3; conv 4 3x3 pad=1; batchnorm; relu; maxpool 2x2; dense 5";
    cn_net *net = parse_spec(ctx, spec), *ref = parse_spec(ctx, spec);
    if (!net || !ref) return;
    cn_net_set_backend(net, &dev);
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 3) == CN_OK);
    CHECK(cn_net_init_params(ctx, ref, CN_INIT_KAIMING_UNIFORM, 3) == CN_OK);
    int64_t trainable, total;
    float *w = cn_net_params(net, &trainable, &total);
    CHECK(n_live == 2 && in_blocks(w, (size_t)total * sizeof(float)) &&
          in_blocks(cn_net_grads(net, NULL), (size_t)trainable * sizeof(float)));
    /* a training step on both: the same loss and the same weights after it */
    float x[2 * 8 * 8 * 3];
    cn_rng rng;
    cn_rng_seed(&rng, 9);
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)cn_rng_normal(&rng);
    int32_t labels[2] = { 1, 4 };
    cn_optim_config oc;
    cn_optim_defaults(&oc, CN_OPTIM_MOMENTUM);
    cn_optim *oa = NULL, *ob = NULL;
    CHECK(cn_optim_create(ctx, net, &oc, &oa) == CN_OK && cn_optim_create(ctx, ref, &oc, &ob) == CN_OK);
    cn_step_config sc = { cn_net_default_loss(net), 0 };
    double la = 0, lb = 1;
    CHECK(cn_train_step(ctx, net, oa, &sc, x, labels, 2, &la) == CN_OK);
    CHECK(cn_train_step(ctx, ref, ob, &sc, x, labels, 2, &lb) == CN_OK);
    CHECK(la == lb && memcmp(w, cn_net_params(ref, NULL, NULL), (size_t)total * sizeof(float)) == 0);
    int64_t ny;
    const float *y = cn_net_output(net, &ny);
    CHECK(n_live == 8 && in_blocks(y, (size_t)ny * sizeof(float))); /* + act, dact, aux, work, scratch, optimizer */
    /* back to host memory: the slabs move, the values stay */
    cn_net_set_backend(net, cn_backend_default());
    float *moved = cn_net_params(net, NULL, NULL);
    CHECK(n_live == 1 && !in_blocks(moved, sizeof(float))); /* the optimizer's state stays where it was made */
    CHECK(memcmp(moved, cn_net_params(ref, NULL, NULL), (size_t)total * sizeof(float)) == 0);
    /* and into it again, then released with the net */
    cn_net_set_backend(net, &dev);
    CHECK(n_live == 3 && memcmp(cn_net_params(net, NULL, NULL), cn_net_params(ref, NULL, NULL), (size_t)total * sizeof(float)) == 0);
    cn_optim_destroy(oa), cn_optim_destroy(ob);
    cn_net_destroy(net), cn_net_destroy(ref);
    CHECK_INT(n_live, 0);
    CHECK(n_allocs >= 10);
}

/* ---- a backend's step kernels: the loss, the norm, the update and the accuracy count --------- */

static int n_loss, n_norm, n_update, n_correct;

static cn_status step_loss(cn_ctx *c, cn_loss_kind kind, const float *t, const float *p, int64_t rows, int64_t cols,
                           cn_reduction red, double smoothing, double *loss, float *d)
{
    n_loss++;
    return cn_loss_grad(c, kind, t, p, rows, cols, red, smoothing, loss, d);
}

static double step_norm(const float *g, int64_t n)
{
    double s = 0;
    n_norm++;
    for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

/* SGD with momentum written out again from PyTorch's rule (no clipping, L1 or decay here):
 * v = momentum v + g; w -= lr v */
static void step_update(cn_optim_kind kind, const cn_update_args *a, float *w, const float *g, float *s1, float *s2,
                        int64_t n)
{
    n_update++;
    CHECK(kind == CN_OPTIM_MOMENTUM && s1 && !s2 && a->clip == 1.0 && a->l1 == 0 && a->decay == 0);
    for (int64_t i = 0; i < n; i++) {
        float v = (float)(a->momentum * s1[i] + (double)g[i]);
        s1[i] = v;
        w[i] = (float)((double)w[i] - a->lr * v);
    }
}

static int64_t step_correct(const float *y, const int32_t *labels, int64_t rows, int64_t cols)
{
    int64_t right = 0;
    n_correct++;
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        for (int64_t c = 1; c < cols; c++)
            if (y[r * cols + c] > y[r * cols + best]) best = c;
        right += best == labels[r];
    }
    return right;
}

/* a backend with its own step kernels: cn_train_step and cn_train go through them (counted),
 * and the weights and accuracies are those of the host's code */
static void test_step_kernels(void)
{
    static const cn_step_kernels step = { .loss_grad = step_loss, .sum_squares = step_norm, .update = step_update,
                                          .count_correct = step_correct };
    cn_backend dev = { "stepping", cn_backend_default()->kernels, NULL, &step, NULL, NULL, NULL };
    const char *spec = "input 6x6x3; conv 4 3x3 pad=1; relu; maxpool 2x2; dense 3";
    enum { N = 64 };
    static float images[N * 6 * 6 * 3];
    static int32_t labels[N];
    cn_rng rng;
    cn_rng_seed(&rng, 4);
    for (int i = 0; i < N * 108; i++) images[i] = (float)cn_rng_uniform(&rng);
    for (int i = 0; i < N; i++) labels[i] = i % 3;
    cn_dataset ds = { .count = N, .c = 3, .h = 6, .w = 6, .images = images, .labels = labels, .classes = 3 };
    cn_train_config cfg;
    cn_train_summary sa, sb;
    cn_train_defaults(&cfg);
    cfg.epochs = 2, cfg.batch = 16, cfg.val_fraction = 0;
    cfg.optim.kind = CN_OPTIM_MOMENTUM, cfg.optim.schedule = CN_SCHED_CONSTANT, cfg.optim.weight_decay = 0;
    cn_net *a = parse_spec(ctx, spec), *b = parse_spec(ctx, spec);
    if (!a || !b) return;
    cn_net_set_backend(a, &dev);
    CHECK(cn_train(ctx, a, &ds, &cfg, &sa) == CN_OK);
    CHECK(cn_train(ctx, b, &ds, &cfg, &sb) == CN_OK);
    CHECK_INT(n_loss, 8); /* 2 epochs of 4 steps */
    CHECK_INT(n_norm, 8);
    CHECK_INT(n_update, 8);
    CHECK_INT(n_correct, 8);
    int64_t total;
    const float *wa = cn_net_params(a, NULL, &total), *wb = cn_net_params(b, NULL, NULL);
    CHECK(memcmp(wa, wb, (size_t)total * sizeof(float)) == 0);
    CHECK(sa.train_acc == sb.train_acc && sa.train_loss == sb.train_loss);
    cn_net_destroy(a), cn_net_destroy(b);
}

/* random rows of kind's domain: probabilities (rows summing to 1 for ce), logits, +-1 targets */
static void loss_rows_of(cn_loss_kind kind, cn_rng *rng, float *t, float *p, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        double sum = 0;
        int64_t label = (int64_t)(cn_rng_uniform(rng) * (double)cols) % cols;
        for (int64_t j = 0; j < cols; j++) {
            float *v = &p[r * cols + j], *u = &t[r * cols + j];
            *v = (float)(kind == CN_LOSS_CE || kind == CN_LOSS_BCE || kind == CN_LOSS_DICE ? 0.02 + 0.96 * cn_rng_uniform(rng)
                                                                                          : 3 * cn_rng_normal(rng));
            sum += *v;
            *u = kind == CN_LOSS_HINGE ? (cn_rng_uniform(rng) < 0.5 ? -1.0f : 1.0f)
                 : kind == CN_LOSS_MSE || kind == CN_LOSS_MAE ? (float)cn_rng_normal(rng)
                 : kind == CN_LOSS_BCE || kind == CN_LOSS_BCE_LOGITS ? (float)cn_rng_uniform(rng)
                                                                     : (float)(j == label);
        }
        for (int64_t j = 0; kind == CN_LOSS_CE && j < cols; j++) p[r * cols + j] = (float)(p[r * cols + j] / sum);
    }
}

/* every backend's own loss and accuracy count (cn_step_kernels) against the host's: every loss
 * kind, both reductions, label smoothing, rows in one block and over many (the host's
 * partition), NaN where the host would refuse or a value is not finite, ties in the count */
static void test_device_step_kernels(void)
{
    static const int64_t shapes[][2] = { { 1, 1 }, { 7, 10 }, { 130, 10 }, { 300, 3 }, { 5, 600 } };
    for (int b = 0; b < cn_backend_count(); b++) {
        const cn_backend *be = cn_backend_at(b);
        const cn_step_kernels *k = be->step;
        if (!k || !be->memory || (be->open && be->open(ctx, CN_PRECISION_FP32))) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
            float *t = be->memory->alloc((size_t)n * sizeof(float)), *p = be->memory->alloc((size_t)n * sizeof(float));
            float *g = be->memory->alloc((size_t)n * sizeof(float)), *want = malloc((size_t)n * sizeof(float));
            int32_t *labels = malloc((size_t)rows * sizeof(int32_t));
            cn_rng rng;
            cn_rng_seed(&rng, 31 + (uint64_t)s);
            for (int kind = CN_LOSS_MSE; kind <= CN_LOSS_DICE && k->loss_grad; kind++)
                for (int red = 0; red < 2; red++) {
                    double smoothing = kind == CN_LOSS_CE_LOGITS && red == 0 ? 0.1 : 0, got, ref;
                    loss_rows_of((cn_loss_kind)kind, &rng, t, p, rows, cols);
                    CHECK(cn_loss_grad(ctx, kind, t, p, rows, cols, red, smoothing, &ref, want) == CN_OK);
                    CHECK(k->loss_grad(ctx, kind, t, p, rows, cols, red, smoothing, &got, g) == CN_OK);
                    CHECK(be->memory->error == NULL || be->memory->error() == NULL);
                    double e = rel(g, want, n);
                    if (!(fabs(got - ref) <= 1e-12 * fabs(ref) + 1e-300 && e <= 1e-6))
                        test_fail(__FILE__, __LINE__, "%s: %s %lldx%lld reduction %d: loss %.17g vs %.17g, gradient %.1e",
                                  be->name, cn_loss_name(kind), (long long)rows, (long long)cols, red, got, ref, e);
                    /* a value outside the domain, or not finite: NaN, for the host's message */
                    float keep = p[n / 2];
                    p[n / 2] = kind == CN_LOSS_CE || kind == CN_LOSS_BCE ? 1.5f : INFINITY;
                    CHECK(k->loss_grad(ctx, kind, t, p, rows, cols, red, smoothing, &got, g) == CN_OK);
                    if (!isnan(got))
                        test_fail(__FILE__, __LINE__, "%s: %s with %g in it gave %g, not NaN", be->name,
                                  cn_loss_name(kind), (double)p[n / 2], got);
                    p[n / 2] = keep;
                }
            /* smoothing outside ce-logits, or outside [0, 1): NaN, and the host's message */
            if (k->loss_grad) {
                double got = 0;
                CHECK(k->loss_grad(ctx, CN_LOSS_MSE, t, p, rows, cols, CN_REDUCE_MEAN, 0.1, &got, g) == CN_OK && isnan(got));
                CHECK(k->loss_grad(ctx, CN_LOSS_CE_LOGITS, t, p, rows, cols, CN_REDUCE_MEAN, 1.0, &got, g) == CN_OK && isnan(got));
            }
            /* the accuracy count: small integers, so that rows have ties (the first wins) */
            for (int64_t i = 0; i < n; i++) p[i] = (float)(int)(cn_rng_uniform(&rng) * 3);
            for (int64_t r = 0; r < rows; r++) labels[r] = (int32_t)((int64_t)(cn_rng_uniform(&rng) * (double)cols) % cols);
            if (k->best_rows) {
                int32_t *best = malloc((size_t)rows * sizeof *best);
                k->best_rows(p, rows, cols, best);
                for (int64_t r = 0; r < rows; r++)
                    if (best[r] != cn_row_best(p + r * cols, cols))
                        test_fail(__FILE__, __LINE__, "%s: row %lld's best column %d, not %lld", be->name, (long long)r,
                                  best[r], (long long)cn_row_best(p + r * cols, cols));
                free(best);
            }
            if (k->count_correct) {
                int64_t got = k->count_correct(p, labels, rows, cols), ref = cn_count_correct(p, labels, rows, cols);
                printf("  %-9s %lldx%lld: %lld of %lld right (host %lld)\n", be->name, (long long)rows, (long long)cols,
                       (long long)got, (long long)rows, (long long)ref);
                CHECK_INT(got, ref);
            }
            be->memory->release(t), be->memory->release(p), be->memory->release(g);
            free(want), free(labels);
        }
    }
}

/* room for the images of a small_set: n * c <= 64 */
typedef struct {
    unsigned char pixels[64 * 42];
    float images[64 * 42];
    int32_t labels[64];
} small_room;

/* a data set of n 7x6 images of c channels in room: IDX-like bytes, or floats (bytes / 255) */
static cn_dataset small_set(int64_t n, int64_t c, int bytes, small_room *room)
{
    for (int64_t i = 0; i < n * c * 42; i++)
        room->pixels[i] = (unsigned char)(i * 37 % 251), room->images[i] = room->pixels[i] / 255.0f;
    for (int64_t i = 0; i < n; i++) room->labels[i] = (int32_t)(i % 3);
    return (cn_dataset){ .count = n, .c = c, .h = 7, .w = 6, .images = bytes ? NULL : room->images,
                         .labels = room->labels, .classes = 3, .pixels = bytes ? room->pixels : NULL };
}

/* every backend's batches from a data set in its memory (make_batch) against the host's
 * (cn_make_batch_rows): the same draws, the same bits; bytes and floats, crop and flip */
static void test_device_batches(void)
{
    enum { N = 20, B = 9 };
    static small_room room;
    static float want[B * 3 * 42];
    int64_t idx[B];
    for (int i = 0; i < B; i++) idx[i] = (i * 7 + 3) % N;
    for (int b = 0; b < cn_backend_count(); b++) {
        const cn_backend *be = cn_backend_at(b);
        if (!be->step || !be->step->make_batch || (be->open && be->open(ctx, CN_PRECISION_FP32))) continue;
        for (int c = 1; c <= 3; c += 2)
            for (int bytes = 0; bytes < 2; bytes++)
                for (int pad = 0; pad <= 2; pad += 2) {
                    cn_dataset ds = small_set(N, c, bytes, &room);
                    float mean[4] = { 0.3f, 0.5f, 0.1f, 0 }, std[4] = { 0.25f, 0.0f, 2.0f, 1 }; /* std 0: 1 */
                    size_t size = (size_t)(N * c * 42) * (bytes ? 1 : sizeof(float));
                    void *data = be->memory->alloc(size);
                    float *x = be->memory->alloc((size_t)(B * c * 42) * sizeof(float));
                    be->memory->copy(data, bytes ? (const void *)room.pixels : (const void *)room.images, size);
                    cn_rng r1, r2;
                    cn_rng_seed(&r1, 8), cn_rng_seed(&r2, 8);
                    CHECK(cn_make_batch_rows(ctx, &ds, idx, B, 0, B, mean, std, pad, 1, &r1, want, NULL) == CN_OK);
                    cn_batch_draw draws[B];
                    cn_batch_draws(&r2, idx, B, pad, 1, draws);
                    cn_batch_source src = { bytes ? data : NULL, bytes ? NULL : data, c, 7, 6, pad, { 0 }, { 0 } };
                    memcpy(src.mean, mean, sizeof mean), memcpy(src.std, std, sizeof std);
                    be->step->make_batch(&src, draws, B, x);
                    be->memory->sync();
                    CHECK(memcmp(&r1, &r2, sizeof r1) == 0); /* the same draws */
                    if (memcmp(x, want, (size_t)(B * c * 42) * sizeof(float)))
                        test_fail(__FILE__, __LINE__, "%s: make_batch (%lld channels, %s, pad %d) differs from the host's",
                                  be->name, (long long)c, bytes ? "bytes" : "floats", pad);
                    be->memory->release(data), be->memory->release(x);
                }
        printf("  %s: batches of bytes and floats, 1 and 3 channels, crop and flip: the host's bits\n", be->name);
    }
}

static int n_made;
static const cn_step_kernels *real_step;
static void counted_make_batch(const cn_batch_source *src, const cn_batch_draw *d, int64_t n, float *x)
{
    n_made++;
    real_step->make_batch(src, d, n, x);
}

/* dev = the backend that makes batches from a resident data set (opened in fp32), its
 * make_batch counted in n_made through step; NULL (said) when none runs here */
static const cn_backend *counting_device(cn_backend *dev, cn_step_kernels *step)
{
    const cn_backend *cuda = NULL;
    for (int b = 0; b < cn_backend_count(); b++)
        if (cn_backend_at(b)->step && cn_backend_at(b)->step->make_batch) cuda = cn_backend_at(b);
    if (!cuda || (cuda->open && cuda->open(ctx, CN_PRECISION_FP32))) {
        printf("  SKIPPED: no backend with make_batch runs here\n");
        return NULL;
    }
    *step = *cuda->step;
    real_step = cuda->step, step->make_batch = counted_make_batch;
    *dev = *cuda;
    dev->step = step;
    return cuda;
}

/* training from a data set resident in the device's memory gives the bits of training from the
 * host's batches (CN_RESIDENT=0), with crops and flips; validation's batches too, and its loss
 * and accuracy on the device */
/* each step's loss and learning rate as the progress callback saw them, in order */
typedef struct seen_steps {
    double loss[64], lr[64];
    int64_t step[64];
    int n;
} seen_steps;

static int see_step(void *user, const cn_train_progress *p)
{
    seen_steps *s = user;
    if (!p->epoch_done && s->n < 64) s->loss[s->n] = p->step_loss, s->lr[s->n] = p->lr, s->step[s->n] = p->step, s->n++;
    return 0;
}

/* Two epochs three ways: batches made on the device from its copy of the data and steps in
 * flight (the next step queued before the last is read), batches made on the host, and steps
 * one at a time (CN_FLIGHT=0): the same weights (running statistics too), the same steps' losses
 * in the same order, the same figures. The net has a batch norm, dropout and clipping, which
 * the flight's gate and halt touch. */
static void test_resident_training(void)
{
    enum { N = 48, RUNS = 3 };
    static small_room room;
    cn_step_kernels step;
    cn_backend dev;
    const cn_backend *cuda = counting_device(&dev, &step);
    if (!cuda) return;
    cn_dataset ds = small_set(N, 1, 1, &room);
    float *w[RUNS] = { NULL };
    int64_t total = 0;
    double acc[RUNS], val[RUNS], val_loss[RUNS], loss[RUNS];
    static seen_steps seen[RUNS];
    for (int run = 0; run < RUNS; run++) {
        cn_net *net = parse_spec(ctx, "input 7x6x1; conv 4 3x3 pad=1 bias=no; batchnorm; relu; maxpool 2x2; "
                                      "dropout keep=0.8; dense 3");
        if (!net) return;
        cn_net_set_backend(net, &dev);
        cn_train_config cfg;
        cn_train_summary sum;
        cn_train_defaults(&cfg);
        cfg.epochs = 2, cfg.batch = 8, cfg.val_fraction = 0.25, cfg.crop_pad = 1, cfg.flip = 1;
        cfg.optim.clip_norm = 0.5;
        cfg.progress = see_step, cfg.user = &seen[run];
        seen[run].n = 0;
        setenv("CN_RESIDENT", run == 1 ? "0" : "1", 1);
        setenv("CN_FLIGHT", run == 2 ? "0" : "1", 1);
        n_made = 0;
        CHECK(cn_train(ctx, net, &ds, &cfg, &sum) == CN_OK);
        CHECK_INT(n_made, run == 1 ? 0 : 2 * (36 / 8 + 2)); /* 2 epochs: 4 training batches, 2 of validation */
        const float *p = cn_net_params(net, NULL, &total);
        w[run] = malloc((size_t)total * sizeof(float));
        memcpy(w[run], p, (size_t)total * sizeof(float));
        acc[run] = sum.train_acc, val[run] = sum.val_acc, val_loss[run] = sum.val_loss, loss[run] = sum.train_loss;
        CHECK_INT(sum.steps, 8);
        cn_net_destroy(net);
    }
    unsetenv("CN_RESIDENT"), unsetenv("CN_FLIGHT");
    printf("  %s: in flight, host batches, one at a time: train accuracy %.4f %.4f %.4f, loss %.6f %.6f %.6f\n",
           cuda->name, acc[0], acc[1], acc[2], loss[0], loss[1], loss[2]);
    for (int run = 1; run < RUNS; run++) {
        CHECK(w[0] && w[run] && memcmp(w[0], w[run], (size_t)total * sizeof(float)) == 0);
        CHECK(acc[0] == acc[run] && loss[0] == loss[run] && val[0] == val[run]);
        CHECK(fabs(val_loss[0] - val_loss[run]) <= 1e-12 * fabs(val_loss[run]));
        CHECK_INT(seen[run].n, 8);
        for (int i = 0; i < seen[0].n && i < seen[run].n; i++)
            CHECK(seen[0].loss[i] == seen[run].loss[i] && seen[0].lr[i] == seen[run].lr[i] &&
                  seen[0].step[i] == seen[run].step[i]);
    }
    for (int run = 0; run < RUNS; run++) free(w[run]);
}

/* evaluation with views of each image averaged (CN_TTA_FLIP, CN_TTA_FLIP_SHIFT) from the data
 * set resident in the device's memory (the views' batches made there) gives the figures of the
 * host's batches (CN_RESIDENT=0), and differs from the plain evaluation */
static void test_resident_tta(void)
{
    enum { N = 30 };
    static small_room room;
    cn_step_kernels step;
    cn_backend dev;
    const cn_backend *cuda = counting_device(&dev, &step);
    if (!cuda) return;
    cn_dataset ds = small_set(N, 1, 1, &room);
    cn_net *net = parse_spec(ctx, "input 7x6x1; conv 4 3x3 pad=1; relu; dense 3");
    if (!net) return;
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 5) == CN_OK);
    cn_net_set_backend(net, &dev);
    float mean[4] = { 0.5f, 0, 0, 0 }, std[4] = { 0.3f, 1, 1, 1 };
    cn_eval_result plain, r[2];
    setenv("CN_RESIDENT", "1", 1);
    CHECK(cn_evaluate_tta(ctx, net, &ds, mean, std, 8, CN_TTA_NONE, &plain) == CN_OK);
    for (int t = 1; t <= 2; t++) {
        int views = t == CN_TTA_FLIP ? 2 : 10;
        for (int run = 0; run < 2; run++) { /* resident, host batches */
            setenv("CN_RESIDENT", run ? "0" : "1", 1);
            n_made = 0;
            CHECK(cn_evaluate_tta(ctx, net, &ds, mean, std, 8, (cn_tta)t, &r[run]) == CN_OK);
            CHECK_INT(n_made, run ? 0 : views * ((N + 7) / 8));
        }
        CHECK(r[0].acc == r[1].acc && r[0].loss == r[1].loss);
        CHECK(memcmp(r[0].confusion, r[1].confusion, 9 * sizeof(int64_t)) == 0);
        CHECK(fabs(r[0].loss - plain.loss) > 1e-6);
        printf("  %s: loss %.6f with %d views (resident and host batches), %.6f without\n", cuda->name, r[0].loss, views,
               plain.loss);
        cn_eval_free(ctx, &r[0]), cn_eval_free(ctx, &r[1]);
    }
    unsetenv("CN_RESIDENT");
    cn_eval_free(ctx, &plain);
    cn_net_destroy(net);
}

static int n_begin, n_end, n_replay, refuse_begin;
static const cn_replay_ops *real_replay;
static int counted_begin(void) { return n_begin++, refuse_begin == 1 ? -1 : real_replay->begin(); }
/* refuse_begin 2: the recording fails at its end (a call the capture refused) */
static void *counted_end(void)
{
    void *rec = (n_end++, real_replay->end());
    if (rec && refuse_begin == 2) real_replay->release(rec), rec = NULL;
    return rec;
}
static int counted_replay(void *rec) { return n_replay++, real_replay->replay(rec); }
static void counted_drop(void *rec) { real_replay->release(rec); }

/* a step recorded once the batch size is fixed and replayed after (CUDA graphs) gives the bits
 * of the same steps unrecorded: losses, weights, running statistics; recorded at the second
 * step of a size, again after the size changes, never for a net with dropout, and each step
 * unrecorded when the recording cannot start */
static void test_replayed_steps(void)
{
    const cn_backend *dev = NULL;
    for (int b = 0; b < cn_backend_count(); b++)
        if (cn_backend_at(b)->step && cn_backend_at(b)->step->replay) dev = cn_backend_at(b);
    if (!dev || (dev->open && dev->open(ctx, CN_PRECISION_FP32))) {
        printf("  SKIPPED: no backend that records runs here\n");
        return;
    }
    static const cn_replay_ops counted = { counted_begin, counted_end, counted_replay, counted_drop };
    real_replay = dev->step->replay;
    cn_step_kernels with = *dev->step, without = *dev->step;
    with.replay = &counted, without.replay = NULL;
    cn_backend recording = *dev, plain = *dev, flying = *dev; /* flying: its own recordings, not counted */
    recording.step = &with, plain.step = &without;
    static const struct { const char *spec; int begins; } nets[] = {
        { "input 8x8x3; conv 6 3x3 pad=1 bias=no; batchnorm; relu; maxpool 2x2; conv 5 3x3 pad=same; tanh; "
          "globalavgpool; flatten; dense 4", 2 },
        /* dropout's masks drawn before the pass (cn_kernels.draw): recorded too, the same masks */
        { "input 6x6x2; conv 4 3x3 pad=1; relu; dropout keep=0.7; flatten; dense 4", 2 },
    };
    /* in bf16 too: the values between layers stored as bf16 NHWC, recorded and in flight alike */
    for (int bf16 = 0; bf16 < 2; bf16++)
    for (size_t c = 0; c < sizeof nets / sizeof nets[0]; c++)
        for (int refuse = 0; refuse < 3; refuse++) {
            double tol = bf16 ? 1e-2 : 1e-5; /* against the reference */
            if (dev->open(ctx, bf16 ? CN_PRECISION_BF16 : CN_PRECISION_FP32)) continue;
            /* the fourth: steps in flight on the recording backend (two recordings, one a slot) */
            cn_net *net[4];
            cn_optim *opt[4];
            double loss[4][7];
            const cn_backend *on[4] = { &recording, &plain, cn_backend_reference(), &flying };
            for (int r = 0; r < 4; r++) {
                net[r] = parse_spec(ctx, nets[c].spec);
                if (!net[r]) return;
                cn_net_set_backend(net[r], on[r]);
                CHECK(cn_net_init_params(ctx, net[r], CN_INIT_KAIMING_UNIFORM, 6) == CN_OK);
                cn_optim_config oc;
                cn_optim_defaults(&oc, CN_OPTIM_NESTEROV);
                oc.clip_norm = 0.5;
                CHECK(cn_optim_create(ctx, net[r], &oc, &opt[r]) == CN_OK);
            }
            n_begin = n_end = n_replay = 0, refuse_begin = refuse;
            cn_layer_info in = layer_at(ctx, net[0], 0, 1);
            int64_t per = in.c * in.h * in.w;
            float *x = malloc((size_t)(5 * per) * sizeof(float));
            int32_t labels[5] = { 0, 3, 1, 2, 3 };
            cn_rng rng;
            cn_rng_seed(&rng, 21);
            cn_step_config sc = { cn_net_default_loss(net[0]), 0.1 };
            cn_step_flight *f = NULL;
            int landed_n = 0, landed;
            CHECK(cn_step_flight_create(ctx, net[3], opt[3], &f) == CN_OK && f);
            for (int step = 0; step < 7; step++) {
                int64_t batch = step < 4 ? 4 : 5; /* a new size at step 5: recorded again at step 6 */
                for (int64_t i = 0; i < batch * per; i++) x[i] = (float)cn_rng_normal(&rng);
                int64_t right = -2, flown;
                CHECK(cn_train_step_counted(ctx, net[0], opt[0], &sc, x, labels, batch, &loss[0][step], &right) == CN_OK);
                for (int r = 1; r < 3; r++) CHECK(cn_train_step(ctx, net[r], opt[r], &sc, x, labels, batch, &loss[r][step]) == CN_OK);
                /* the count queued with the step (replayed too): the host's count of the step's outputs */
                CHECK_INT(right, cn_count_correct(cn_net_output(net[0], NULL), labels, batch, 4));
                CHECK(loss[0][step] == loss[1][step] && fabs(loss[0][step] - loss[2][step]) < tol * fabs(loss[2][step]));
                double l;
                if (f && cn_train_step_fly(ctx, net[3], opt[3], &sc, f, x, labels, batch, &l, &flown, &landed) == CN_OK && landed)
                    loss[3][landed_n++] = l;
            }
            int64_t last_right;
            if (f && cn_train_step_flush(ctx, net[3], opt[3], &sc, f, &loss[3][landed_n], &last_right, &landed) == CN_OK &&
                landed)
                landed_n++;
            cn_step_flight_destroy(f); /* waits for the last update */
            CHECK_INT(landed_n, 7);
            for (int step = 0; step < landed_n; step++) CHECK(loss[3][step] == loss[1][step]);
            CHECK(cn_net_has_recording(net[3]) == (nets[c].begins > 0)); /* its slots' steps replayed */
            int64_t total;
            const float *wa = cn_net_params(net[0], NULL, &total), *wb = cn_net_params(net[1], NULL, NULL);
            CHECK(rel(wa, cn_net_params(net[2], NULL, NULL), total) < tol); /* and the reference's values */
            static const char *const how[] = { "allowed", "refused", "failing at its end" };
            printf("  %s%s, recording %s: %d recorded, %d replays, loss %.6f\n", c ? "dropout" : "batch norm",
                   bf16 ? " in bf16" : "", how[refuse], n_end, n_replay, loss[0][6]);
            CHECK(memcmp(wa, wb, (size_t)total * sizeof(float)) == 0);
            CHECK(memcmp(cn_net_params(net[3], NULL, NULL), wb, (size_t)total * sizeof(float)) == 0); /* in flight */
            CHECK_INT(n_begin, nets[c].begins);
            CHECK_INT(n_end, refuse == 1 ? 0 : nets[c].begins);
            CHECK_INT(n_replay, refuse || !nets[c].begins ? 0 : 3 + 2); /* steps 2-4, 6-7 */
            free(x);
            for (int r = 0; r < 4; r++) cn_optim_destroy(opt[r]), cn_net_destroy(net[r]);
        }
    dev->open(ctx, CN_PRECISION_FP32);
}

/* spec's net with weights of seed 3, on the CPU or (cuda 1) on the GPU; NULL where it cannot
 * (no GPU: said as SKIPPED) */
static cn_net *net_on(const char *spec, int cuda)
{
    cn_net *net = parse_spec(ctx, spec);
    if (!net) return NULL;
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 3) == CN_OK);
    if (cuda && cn_net_set_device(ctx, net, "cuda", CN_PRECISION_FP32) != CN_OK) {
        printf("  SKIPPED: %s\n", cn_ctx_message(ctx));
        cn_net_destroy(net);
        return NULL;
    }
    return net;
}

/* a non-finite input met on a device: the step stops with the host's message (the tracer) */
static void test_device_nonfinite(void)
{
    const char *spec = "input 4x4x1; conv 2 3x3 pad=1; relu; flatten; dense 3";
    char msg[2][512];
    for (int d = 0; d < 2; d++) {
        cn_net *net = net_on(spec, d);
        if (!net) return;
        cn_optim_config oc;
        cn_optim_defaults(&oc, CN_OPTIM_SGD);
        cn_optim *opt = NULL;
        CHECK(cn_optim_create(ctx, net, &oc, &opt) == CN_OK);
        float x[2 * 16] = { 0 };
        int32_t labels[2] = { 1, 2 };
        x[21] = NAN;
        cn_step_config sc = { cn_net_default_loss(net), 0 };
        double loss;
        CHECK_INT(cn_train_step(ctx, net, opt, &sc, x, labels, 2, &loss), CN_E_NUMERIC);
        snprintf(msg[d], sizeof msg[d], "%s", cn_ctx_message(ctx));
        cn_optim_destroy(opt);
        cn_net_destroy(net);
    }
    printf("  %s\n", msg[1]);
    CHECK_STR(msg[1], msg[0]);
}

/* Steps in flight meeting a NaN at step 4 (of a batch norm net, so that running statistics are
 * at stake): the step one at a time on the host's backend stops there with its message; in
 * flight, step 5 is already queued when step 4 is read, yet the run stops with the same
 * message and leaves the same weights, running statistics and optimizer steps. */
static void test_flight_nonfinite(void)
{
    const char *spec = "input 5x5x1; conv 3 3x3 pad=1 bias=no; batchnorm; relu; flatten; dense 3";
    char msg[2][512] = { "", "" };
    float *w[2] = { NULL, NULL };
    int64_t total = 0, steps[2] = { 0, 0 };
    for (int d = 0; d < 2; d++) {
        cn_net *net = net_on(spec, d);
        if (!net) {
            free(w[0]);
            return;
        }
        cn_optim_config oc;
        cn_optim_defaults(&oc, CN_OPTIM_MOMENTUM);
        oc.clip_norm = 1;
        cn_optim *opt = NULL;
        cn_step_flight *f = NULL;
        CHECK(cn_optim_create(ctx, net, &oc, &opt) == CN_OK);
        CHECK(cn_step_flight_create(ctx, net, opt, &f) == CN_OK);
        CHECK((f != NULL) == d);
        cn_step_config sc = { cn_net_default_loss(net), 0 };
        cn_rng rng;
        cn_rng_seed(&rng, 4);
        cn_status st = CN_OK;
        int landed_at = 0;
        for (int k = 1; k <= 6 && !st; k++) {
            float x[3 * 25];
            int32_t labels[3] = { 0, 2, 1 };
            for (int i = 0; i < 75; i++) x[i] = (float)cn_rng_normal(&rng);
            if (k == 4) x[30] = NAN;
            double loss;
            int64_t right;
            int landed = 0;
            if (d) st = cn_train_step_fly(ctx, net, opt, &sc, f, x, labels, 3, &loss, &right, &landed);
            else st = cn_train_step(ctx, net, opt, &sc, x, labels, 3, &loss);
            landed_at += d ? landed : !st;
        }
        CHECK_INT(st, CN_E_NUMERIC);
        CHECK_INT(landed_at, 3); /* steps 1-3 read; the run stopped at step 4 */
        snprintf(msg[d], sizeof msg[d], "%s", cn_ctx_message(ctx));
        const float *p = cn_net_params(net, NULL, &total);
        w[d] = malloc((size_t)total * sizeof(float));
        memcpy(w[d], p, (size_t)total * sizeof(float));
        steps[d] = cn_optim_steps(opt);
        cn_step_flight_destroy(f);
        cn_optim_destroy(opt);
        cn_net_destroy(net);
    }
    printf("  %s\n", msg[1]);
    CHECK_STR(msg[1], msg[0]);
    CHECK_INT(steps[1], steps[0]);
#ifdef CN_HAVE_CUDA
    /* the halt itself: a gate over a sum that is not finite stops the batch norms' running
     * statistics and the gated update until it is cleared */
    cn_net *net = parse_spec(ctx, "input 4x4x2; batchnorm; flatten; dense 2");
    if (net && cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 3) == CN_OK &&
        cn_net_set_device(ctx, net, "cuda", CN_PRECISION_FP32) == CN_OK) {
        const cn_step_kernels *k = cn_net_step_kernels(net);
        float x[3 * 32];
        for (int i = 0; i < 96; i++) x[i] = (float)(i % 7) - 2.5f;
        int64_t n, all;
        float *p = cn_net_params(net, &n, &all), before[4], *g = cn_net_grads(net, NULL);
        CHECK(cn_net_forward(ctx, net, x, 3, 1) == CN_OK);
        memcpy(before, p + n, sizeof before); /* the running mean and variance, 2 channels */
        k->select_slot(0);
        cn_cu.slots[0].loss[0] = NAN; /* nothing queued writes it now (the forward waited) */
        const double *gate = k->queue_gate(0);
        for (int64_t i = 0; i < n; i++) g[i] = 1;
        cn_update_args a = { .clip = 1, .lr = 0.5, .gate = gate };
        float w0 = p[0];
        k->update(CN_OPTIM_SGD, &a, p, g, NULL, NULL, n);
        CHECK(cn_net_forward(ctx, net, x, 3, 1) == CN_OK); /* waits */
        CHECK(memcmp(before, p + n, sizeof before) == 0 && p[0] == w0);
        k->clear_halt();
        CHECK(cn_net_forward(ctx, net, x, 3, 1) == CN_OK);
        CHECK(memcmp(before, p + n, sizeof before) != 0); /* on the move again */
    } else CHECK(0);
    cn_net_destroy(net);
#endif
    /* the host's backend and the device round alike to 1e-5; the running statistics too */
    CHECK(w[0] && w[1] && rel(w[1], w[0], total) < 1e-5);
    free(w[0]), free(w[1]);
}

/* --precision bf16's staging (src/backend/cuda): a tensor packed as bf16 in NHWC at the places
 * cuDNN reads (n, h, w, c), rounded to nearest even; and back, with a bias, an addition and a
 * relu. Checked by hand-made indices and bit patterns, since the op table's runs without cuDNN
 * would pass any layout that packing and unpacking agree on. */
static void test_bf16_staging(void)
{
#ifdef CN_HAVE_CUDA
    const cn_backend *cuda = NULL;
    for (int b = 0; b < cn_backend_count(); b++)
        if (!strcmp(cn_backend_at(b)->name, "cuda")) cuda = cn_backend_at(b);
    if (!cuda || !runs_here(cuda, CN_PRECISION_BF16)) return;
    enum { N = 2, C = 3, HW = 5, T = N * C * HW };
    float *x = cuda->memory->alloc(T * sizeof(float)), *y = cuda->memory->alloc(T * sizeof(float));
    float *b = cuda->memory->alloc(C * sizeof(float));
    uint16_t *s = cuda->memory->alloc(T * sizeof(uint16_t));
    CHECK(x && y && b && s);
    if (!x || !y || !b || !s) return;
    /* value i: exactly i, but for the roundings: 1 + 2^-8 (a tie: to even, 1), 1 + 3 * 2^-8 (a
     * tie: to even, 1 + 2^-6), 1 + 2^-8 + 2^-20 (past the tie: up), -0, NaN */
    for (int i = 0; i < T; i++) x[i] = (float)i;
    x[1] = 1 + 0x1p-8f, x[2] = 1 + 3 * 0x1p-8f, x[3] = 1 + 0x1p-8f + 0x1p-20f, x[4] = -0.0f, x[5] = NAN;
    const uint16_t want[6] = { 0x0000, 0x3f80, 0x3f82, 0x3f81, 0x8000 };
    b[0] = -20, b[1] = 5, b[2] = 30; /* with -i below: some sums negative, for the relu */
    cn_cuda_bf16_pack(cn_cu_floats(x), s, N, C, HW, 1);
    cuda->memory->sync();
    CHECK(cuda->memory->error() == NULL);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++) {
                int i = (n * C + c) * HW + p, at = (n * HW + p) * C + c; /* NCHW's i, NHWC's place */
                uint16_t h = s[at];
                if (i < 5) CHECK_INT(h, want[i]);
                else if (i == 5) CHECK((h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0); /* a NaN */
                else {
                    float v = (float)i; /* i < 256: exact in bf16, its float's high half */
                    uint32_t u;
                    memcpy(&u, &v, sizeof u);
                    CHECK_INT(h, (uint16_t)(u >> 16));
                }
            }
    /* back to NCHW: y = y + staged + b, then relu */
    for (int i = 0; i < T; i++) y[i] = -2.0f * (float)i;
    cn_cuda_bf16_unpack(s, cn_cu_floats(y), b, N, C, HW, 1, 1, 1);
    cuda->memory->sync();
    for (int i = 6; i < T; i++) {
        float v = -2.0f * (float)i + (float)i + b[i / HW % C];
        CHECK(y[i] == (v > 0 ? v : 0));
    }
    CHECK(y[1] == 0 && y[0] == 0); /* below 0: relu */
    /* the same place without NHWC, no bias, stored */
    cn_cuda_bf16_pack(cn_cu_floats(x), s, N, C, HW, 0);
    cn_cuda_bf16_unpack(s, cn_cu_floats(y), NULL, N, C, HW, 0, 0, 0);
    cuda->memory->sync();
    CHECK(y[1] == 1 && y[2] == 1 + 0x1p-6f && y[3] == 1 + 0x1p-7f && y[7] == 7.0f && signbit(y[4]) && y[5] != y[5]);
    /* an activation stored as bf16 between layers (cn_op_io.half): packed as its own bits in
     * NHWC's places; unpacked into bf16, the sum with the bias rounded to nearest even */
    uint16_t *xh = cuda->memory->alloc(T * sizeof(uint16_t)), *yh = cuda->memory->alloc(T * sizeof(uint16_t));
    CHECK(xh && yh);
    if (xh && yh) {
        for (int i = 0; i < T; i++) xh[i] = (uint16_t)(0x3f80 + i); /* 1 + i/128 */
        cn_cuda_bf16_pack((cn_cu_act){ xh, 1, 0 }, s, N, C, HW, 1);
        cn_cuda_bf16_unpack(s, (cn_cu_act){ yh, 1, 0 }, b, N, C, HW, 1, 0, 0);
        cuda->memory->sync();
        int rounded = 0;
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int p = 0; p < HW; p++) {
                    int i = (n * C + c) * HW + p;
                    CHECK_INT(s[(n * HW + p) * C + c], xh[i]);
                    float v = (1 + (float)i / 128) + b[c], r = bf16_value(v);
                    uint32_t u;
                    memcpy(&u, &r, sizeof u);
                    CHECK_INT(yh[i], (uint16_t)(u >> 16));
                    rounded += r != v;
                }
        CHECK(rounded > 0); /* the case rounds somewhere */
    }
    cuda->memory->release(xh), cuda->memory->release(yh);
    cuda->memory->release(x), cuda->memory->release(y), cuda->memory->release(b), cuda->memory->release(s);
#endif
}

/* Two nets on the GPU in two precisions, their passes interleaved: each runs in its own (a
 * device's precision is the process's, so the executor opens the net's before each pass), with
 * the bits each gives alone. The bf16 net's staging needs more workspace than the fp32 net's:
 * run in the other's precision, the fp32 net would overrun its workspace. */
static void test_two_precisions(void)
{
    const char *spec = "input 9x9x3; conv 6 3x3 pad=1; relu; conv 4 3x3; flatten; dense 5";
    cn_net *net[4];
    const cn_precision prec[4] = { CN_PRECISION_FP32, CN_PRECISION_BF16, CN_PRECISION_FP32, CN_PRECISION_BF16 };
    float x[2 * 243], g[2 * 5];
    for (int i = 0; i < 2 * 243; i++) x[i] = (float)sin(0.37 * i);
    for (int i = 0; i < 10; i++) g[i] = (float)cos(0.91 * i);
    for (int r = 0; r < 4; r++) {
        net[r] = parse_spec(ctx, spec);
        if (!net[r] || cn_net_init_params(ctx, net[r], CN_INIT_KAIMING_UNIFORM, 5) ||
            cn_net_set_device(ctx, net[r], "cuda", prec[r]) != CN_OK) {
            printf("  SKIPPED: %s\n", cn_ctx_message(ctx));
            for (int j = 0; j <= r; j++) cn_net_destroy(net[j]);
            return;
        }
    }
    /* 0 and 1 interleaved; 2 and 3 alone */
    CHECK(cn_net_forward(ctx, net[0], x, 2, 1) == CN_OK && cn_net_forward(ctx, net[1], x, 2, 1) == CN_OK);
    CHECK(cn_net_backward(ctx, net[0], g) == CN_OK && cn_net_backward(ctx, net[1], g) == CN_OK);
    for (int r = 2; r < 4; r++) CHECK(cn_net_forward(ctx, net[r], x, 2, 1) == CN_OK && cn_net_backward(ctx, net[r], g) == CN_OK);
    for (int r = 0; r < 2; r++) {
        int64_t ny, nw;
        const float *y = cn_net_output(net[r], &ny), *y2 = cn_net_output(net[r + 2], NULL);
        const float *w = cn_net_grads(net[r], &nw), *w2 = cn_net_grads(net[r + 2], NULL);
        CHECK(memcmp(y, y2, (size_t)ny * sizeof(float)) == 0 && memcmp(w, w2, (size_t)nw * sizeof(float)) == 0);
    }
    /* and they differ from each other: bf16 rounds */
    CHECK(memcmp(cn_net_output(net[0], NULL), cn_net_output(net[1], NULL), 10 * sizeof(float)) != 0);
    for (int r = 0; r < 4; r++) cn_net_destroy(net[r]);
}

/* bits of v below bf16's: 0 when v is a bf16 value */
static int below_bf16(const float *v, int64_t n)
{
    int64_t any = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof u);
        any |= u & 0xffffu;
    }
    return any != 0;
}

/* --precision bf16 on CUDA stores the values between layers as bf16 NHWC (cn_kernels.half):
 * every layer output and gradient but the net's input and output holds bf16 values, though the
 * input does not; CN_BF16_STORAGE=0 keeps floats (the staging alone), which then do not; the two
 * runs' layer outputs and gradients (the host's NCHW floats, made from NHWC) and parameter
 * gradients agree to bf16's rounding (their outputs may agree to the bit: the dense layer rounds
 * its input to bf16 either way) */
static void test_bf16_storage(void)
{
    const char *spec = "input 6x6x3; conv 4 3x3 pad=1; relu; maxpool 2x2; batchnorm; relu; flatten; dense 5";
    enum { B = 2, X = B * 108, Y = B * 5, W = 4 * 27 + 4 + 2 * 4 + 5 * 36 + 5, L = 8, MOST = B * 4 * 36 };
    float x[X], g[Y], dw[2][W];
    static float seen[L][2][MOST]; /* storage on: each layer's output and gradient */
    for (int i = 0; i < X; i++) x[i] = (float)sin(0.37 * i + 0.1);
    for (int i = 0; i < Y; i++) g[i] = (float)cos(0.91 * i);
    for (int keep = 0; keep < 2; keep++) {
        cn_net *net = parse_spec(ctx, spec);
        if (!net || cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 5) ||
            cn_net_set_device(ctx, net, "cuda", CN_PRECISION_BF16) != CN_OK) {
            printf("  SKIPPED: %s\n", cn_ctx_message(ctx));
            cn_net_destroy(net);
            return;
        }
        int64_t nw;
        float *w = cn_net_params(net, &nw, NULL);
        CHECK(nw == W);
        for (int64_t i = 0; i < nw; i++) w[i] += (float)(0.1 * sin(1.3 * (double)i)); /* biases off 0 */
        if (keep) setenv("CN_BF16_STORAGE", "0", 1);
        CHECK(cn_net_forward(ctx, net, x, B, 1) == CN_OK);
        cn_net_zero_grad(net);
        CHECK(cn_net_backward(ctx, net, g) == CN_OK);
        unsetenv("CN_BF16_STORAGE");
        memcpy(dw[keep], cn_net_grads(net, NULL), sizeof dw[keep]);
        CHECK(below_bf16(cn_net_output(net, NULL), Y)); /* the output: floats */
        for (int i = 1; i < net->n - 1; i++) {
            int64_t n, ng;
            const float *v = cn_net_layer_output(net, i, &n), *d = cn_net_layer_grad(net, i, &ng);
            CHECK(v && d && n == ng && n > 0);
            if (!v || !d) continue;
            /* relus and maxpool output values of their input; the conv's and batch norm's
             * outputs (floats) have bits below bf16's, as have the gradients */
            int layer_rounds = net->nodes[i].id == CN_OP_CONV || net->nodes[i].id == CN_OP_BATCHNORM;
            if (keep && layer_rounds) CHECK(below_bf16(v, n));
            if (keep && i >= 2) CHECK(below_bf16(d, n));
            if (!keep) CHECK(!below_bf16(v, n) && !below_bf16(d, n));
            CHECK(n <= MOST && net->n == L);
            if (n > MOST || i >= L) continue;
            if (!keep) memcpy(seen[i][0], v, (size_t)n * sizeof(float)), memcpy(seen[i][1], d, (size_t)n * sizeof(float));
            else CHECK(rel(seen[i][0], v, n) < 1e-2 && rel(seen[i][1], d, n) < 1e-2);
        }
        cn_net_destroy(net);
    }
    printf("  parameter gradients, bf16 storage against floats: %.1e\n", rel(dw[0], dw[1], W));
    CHECK(rel(dw[0], dw[1], W) < 1e-2 && memcmp(dw[0], dw[1], sizeof dw[0]) != 0);
}

/* batch norm over values far from 0 (a mean 10^6 times their spread): each backend's variance
 * keeps its digits (CUDA sums x minus a shift in one pass), its output within 1e-5 of the
 * reference's two passes */
static void test_bn_offset(void)
{
    enum { B = 4, V = 6 * 5 * 3 };
    float x[B * V];
    cn_rng rng;
    cn_rng_seed(&rng, 12);
    for (int i = 0; i < B * V; i++) x[i] = (float)(1e6 + cn_rng_normal(&rng));
    float *ref = NULL;
    for (int b = -1; b < cn_backend_count(); b++) { /* the reference first */
        const cn_backend *be = b < 0 ? cn_backend_reference() : cn_backend_at(b);
        if ((b >= 0 && be == cn_backend_reference()) || (be->open && be->open(ctx, CN_PRECISION_FP32))) continue;
        cn_net *net = parse_spec(ctx, "input 6x5x3; batchnorm");
        if (!net) return;
        cn_net_set_backend(net, be);
        CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 1) == CN_OK);
        CHECK(cn_net_forward(ctx, net, x, B, 1) == CN_OK);
        int64_t n;
        const float *y = cn_net_output(net, &n);
        if (b < 0) ref = malloc((size_t)n * sizeof(float)), memcpy(ref, y, (size_t)n * sizeof(float));
        else if (ref) {
            printf("  %-9s y %.1e\n", be->name, rel(y, ref, n));
            CHECK(rel(y, ref, n) < 1e-5);
        }
        cn_net_destroy(net);
    }
    free(ref);
}

/* ---- devices by name (the CLI's --device) ------------------------------------------------------ */

/* cpu always runs; cuda runs or says why it cannot; other names and CPU tf32 are refused */
static void test_set_device(void)
{
    cn_net *net = parse_spec(ctx, "input 4x4x1; conv 2 3x3; flatten; dense 3");
    if (!net) return;
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 1) == CN_OK);
    float before = cn_net_params(net, NULL, NULL)[5];
    CHECK(cn_net_set_device(ctx, net, "cpu", CN_PRECISION_FP32) == CN_OK);
    CHECK(cn_net_set_device(ctx, net, "tpu", CN_PRECISION_FP32) == CN_E_ARG);
    CHECK(strstr(cn_ctx_message(ctx), "unknown device 'tpu' (cpu or cuda)") != NULL);
    CHECK(cn_net_set_device(ctx, net, "cpu", CN_PRECISION_TF32) == CN_E_UNSUPPORTED);
    CHECK(strstr(cn_ctx_message(ctx), "--precision tf32 needs --device cuda") != NULL);
    cn_status st = cn_net_set_device(ctx, net, "cuda", CN_PRECISION_FP32);
    if (st) { /* no GPU here: the reason, and the net still on the CPU */
        CHECK_INT(st, CN_E_UNSUPPORTED);
        CHECK(strstr(cn_ctx_message(ctx), "--device cuda: ") == cn_ctx_message(ctx));
        CHECK_INT(cn_device_probe(ctx, "cuda", CN_PRECISION_FP32), CN_E_UNSUPPORTED);
        printf("  cuda: %s\n", cn_ctx_message(ctx));
    } else {
        CHECK_INT(cn_device_probe(ctx, "cuda", CN_PRECISION_TF32), CN_OK);
        CHECK_INT(cn_net_set_device(ctx, net, "cuda", CN_PRECISION_BF16), CN_OK);
        CHECK(cn_net_set_device(ctx, net, "cpu", CN_PRECISION_BF16) == CN_E_UNSUPPORTED);
        CHECK(strstr(cn_ctx_message(ctx), "--precision bf16 needs --device cuda") != NULL);
    }
    CHECK(cn_net_params(net, NULL, NULL)[5] == before); /* the values kept through the moves */
    cn_net_destroy(net);
}

/* every backend that runs here trains as the reference does: a few steps of each optimizer
 * (the step's norm and update on the backend, dropout's masks from the same stream) */
static void test_backend_training(void)
{
    /* no bias before batchnorm: its gradient is rounding noise, which Adam would scale up to lr */
    static const char *spec = "input 8x8x3; conv 6 3x3 pad=1 bias=no; batchnorm; relu; maxpool 2x2; dropout keep=0.8; "
                              "conv 5 3x3 pad=same; tanh; globalavgpool; flatten; dense 4";
    static const cn_optim_kind kinds[] = { CN_OPTIM_SGD, CN_OPTIM_NESTEROV, CN_OPTIM_ADAMW };
    for (int b = 0; b < cn_backend_count(); b++) {
        const cn_backend *be = cn_backend_at(b);
        if (be == cn_backend_reference() || (be->open && be->open(ctx, CN_PRECISION_FP32))) continue;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            cn_net *net = parse_spec(ctx, spec), *ref = parse_spec(ctx, spec);
            if (!net || !ref) return;
            cn_net_set_backend(net, be);
            cn_net_set_backend(ref, cn_backend_reference());
            CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 4) == CN_OK);
            CHECK(cn_net_init_params(ctx, ref, CN_INIT_KAIMING_UNIFORM, 4) == CN_OK);
            cn_optim_config oc;
            cn_optim_defaults(&oc, kinds[k]);
            oc.clip_norm = 0.5; /* the norm matters */
            cn_optim *oa = NULL, *ob = NULL;
            CHECK(cn_optim_create(ctx, net, &oc, &oa) == CN_OK && cn_optim_create(ctx, ref, &oc, &ob) == CN_OK);
            float x[4 * 8 * 8 * 3];
            int32_t labels[4] = { 0, 3, 1, 3 };
            cn_rng rng;
            cn_rng_seed(&rng, 12);
            cn_step_config sc = { cn_net_default_loss(net), 0 };
            double la = 0, lb = 0;
            for (int step = 0; step < 3; step++) {
                for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)cn_rng_normal(&rng);
                CHECK(cn_train_step(ctx, net, oa, &sc, x, labels, 4, &la) == CN_OK);
                CHECK(cn_train_step(ctx, ref, ob, &sc, x, labels, 4, &lb) == CN_OK);
            }
            int64_t total;
            const float *wa = cn_net_params(net, NULL, &total), *wb = cn_net_params(ref, NULL, NULL);
            double e = rel(wa, wb, total);
            printf("  %-9s %-9s loss %.6f vs %.6f, weights %.1e\n", be->name, cn_optim_kind_name(kinds[k]), la, lb, e);
            CHECK(e < 1e-5 && fabs(la - lb) < 1e-5 * fabs(lb));
            cn_optim_destroy(oa), cn_optim_destroy(ob);
            cn_net_destroy(net), cn_net_destroy(ref);
        }
    }
}

static const test_case cases[] = {
    { "setup", setup },
    { "every op of ops.def on every backend against the reference", test_op_table },
    { "conv: every path against the reference", test_conv_shapes },
    { "conv: random geometries against the reference", test_random_convs },
    { "pooling: random geometries against the reference", test_random_pools },
    { "deconv: random geometries against the reference", test_random_deconvs },
    { "small random nets against the reference: the fused forms as they meet", test_random_nets },
    { "deconv: every path against the reference", test_deconv_shapes },
    { "dense: against the reference", test_dense_shapes },
    { "conv: several chunks of the input gradient", test_conv_chunks },
    { "portable kernel", test_portable },
    { "AVX2 kernel: against the reference, AVX-512's bits where the products are the same", test_avx2 },
    { "bit-identical on 1, 2 and 3 threads", test_threads },
    { "depthwise read flat: the loops' forward and input gradient bits, the reference's weight gradient",
      test_depthwise_flat },
    { "winograd F(2x2,3x3) and the weight gradient's F(3x3,2x2) against the reference, the same bits on any thread count",
      test_winograd },
    { "winograd F(4x4,3x3) and the weight gradient's F(3x3,4x4) against the reference, the same bits on any thread "
      "count", test_winograd4 },
    { "winograd F(2x2,3x3) in training where the batch's tiles pay, against the reference, an image's bits out of "
      "training", test_winograd_training },
    { "winograd without a thread's scratch: the workspace's spare, the same bits", test_winograd_spare },
    { "a relu fused into the maxpool after it or the layer before: the layers' bits", test_fused_relu },
    { "cn_net_set_input_grad outlives cn_net_init_params", test_input_grad_setting },
    { "a batch norm folded into the conv before it at inference", test_folded_bn },
    { "held parameters: the folds and transforms kept, the same bits, made again after changes", test_held_params },
    { "fresh gradients stored: the bits of zeroing and adding", test_fresh_gradients },
    { "a backend's memory holds every slab; moves keep the values", test_backend_memory },
    { "a backend's step kernels: loss, norm, update, accuracy count", test_step_kernels },
    { "a device's own loss and accuracy count against the host's", test_device_step_kernels },
    { "a device's step meets a NaN: the host's message", test_device_nonfinite },
    { "steps in flight meet a NaN: the host's message and values, the steps after undone", test_flight_nonfinite },
    { "a device's batches from a data set in its memory: the host's bits", test_device_batches },
    { "training from a data set resident on the device: the bits of the host's batches", test_resident_training },
    { "evaluation with views (flips, shifts) from a data set resident on the device: the host's figures", test_resident_tta },
    { "steps recorded once and replayed (CUDA graphs): the bits of steps as they come", test_replayed_steps },
    { "devices by name: cpu, cuda (or why not), refusals", test_set_device },
    { "two nets in two precisions on one device, interleaved: each its own bits", test_two_precisions },
    { "batch norm over values far from 0: the reference's output on every backend", test_bn_offset },
    { "bf16 staging: NHWC places, rounding to nearest even, bias, addition, relu", test_bf16_staging },
    { "bf16: the values between layers stored as bf16, the net's input and output as floats", test_bf16_storage },
    { "every backend that runs here trains as the reference", test_backend_training },
    { "each layer says how it runs (cn_net_layer_kernel)", test_layer_kernels },
    { "an image alone gives the bits it gets in a batch", test_image_alone },
    { "teardown", teardown },
};
TEST_MAIN(cases)
