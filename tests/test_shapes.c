/* test_shapes.c — shape inference for every option of DESIGN.md (stride, pad N/same/valid,
 * dilation, groups, rectangular kernels, pooling padding and ceil, globalavgpool, flatten,
 * concat, add; upsample, deconv, mul and add broadcasting, pad, crop), receptive fields
 * (fractional after upsampling), the explanation text, and memory planning. Every expected
 * number is worked out by hand in the comment beside it. */
#include "fail_alloc.h"
#include "ops/op_impl.h"
#include "test_util.h"

static cn_ctx *ctx;

static void setup(void) { CHECK(cn_ctx_create(NULL, &ctx) == CN_OK); }
static void teardown(void) { cn_ctx_destroy(ctx); }

static cn_layer_info at(const char *spec, int i)
{
    cn_net *net = parse_spec(ctx, spec);
    if (i < 0 && net) i += cn_net_layer_count(net);
    cn_layer_info li = layer_at(ctx, net, i, 1);
    li.name = li.type = NULL, li.inputs = NULL;
    cn_net_destroy(net);
    return li;
}

static void explain_contains(const char *spec, int i, const char *needle)
{
    cn_net *net = parse_spec(ctx, spec);
    char buf[2048] = "";
    if (net) cn_net_explain(net, i, 1, buf, sizeof buf);
    CHECK_CONTAINS(buf, needle);
    cn_net_destroy(net);
}

static void test_stride_and_same(void)
{
    /* same, stride 2 on an odd input: ceil(7/2) = 4; padding (4-1)*2 + 3 - 7 = 2: 1 + 1 */
    CHECK_HWC(at("input 7x7x3; conv 4 3x3 stride=2 pad=same", 1), 4, 4, 4);
    explain_contains("input 7x7x3; conv 4 3x3 stride=2 pad=same", 1, "O = ceil(7/2) = 4   (pad=same: 2 padded, 1 before + 1 after)");
    /* even input: ceil(8/2) = 4; padding 3*2 + 3 - 8 = 1, the extra row at the bottom (TensorFlow) */
    explain_contains("input 8x8x3; conv 4 3x3 stride=2 pad=same", 1, "1 padded, 0 before + 1 after");
    /* same, stride 1, 4x4 kernel: padding 3 = 1 before + 2 after */
    explain_contains("input 9x9x1; conv 1 4x4 pad=same", 1, "3 padded, 1 before + 2 after");
    /* valid: floor((9 - 4)/2) + 1 = 3 */
    CHECK_HWC(at("input 9x9x1; conv 1 4x4 stride=2 pad=valid", 1), 3, 3, 1);
}

static void test_dilation_groups_rect(void)
{
    /* dilation 2: effective kernel 2*(3-1)+1 = 5, (10 - 5)/1 + 1 = 6; RF 1 + 4 = 5 */
    cn_layer_info d = at("input 10x10x1; conv 1 3x3 dilation=2", 1);
    CHECK_HWC(d, 6, 6, 1);
    CHECK_INT(d.rf_h, 5);
    explain_contains("input 10x10x1; conv 1 3x3 dilation=2", 1, "O = floor((10 - 3*2 + 2 - 1 + 2*0)/1) + 1 = 6");
    /* groups 2: each filter sees 4/2 = 2 channels: params (3*3*2 + 1)*6 = 114, MACs 8*8*6*2*9 = 6,912 */
    cn_layer_info g = at("input 8x8x4; conv 6 3x3 groups=2 pad=1", 1);
    CHECK_INT(g.params, 114);
    CHECK_INT(g.macs, 6912);
    /* depthwise: groups = channels = filters: (9 + 1)*8 = 80 params */
    CHECK_INT(at("input 8x8x8; conv 8 3x3 groups=8 pad=1", 1).params, 80);
    /* 3x5 kernel, stride 1x2, pad 1x2: h (10 - 3 + 2)/1 + 1 = 10, w floor((12 - 5 + 4)/2) + 1 = 6 */
    cn_layer_info r = at("input 10x12x1; conv 2 3x5 stride=1x2 pad=1x2", 1);
    CHECK_HWC(r, 10, 6, 2);
    CHECK_INT(r.params, (15 + 1) * 2);
    CHECK_INT(r.rf_h, 3);
    CHECK_INT(r.rf_w, 5);
    CHECK_INT(r.jump_w, 2);
    /* no bias: 3*3*3*32 = 864 */
    CHECK_INT(at("input 8x8x3; conv 32 3x3 bias=no", 1).params, 864);
    CHECK_INT(at("input 1x1x128; dense 10 bias=no", 1).params, 1280);
    /* key=value for positional keys */
    CHECK_HWC(at("input 8x8x3; conv filters=5 kernel=3 pad=1", 1), 8, 8, 5);
}

static void test_pooling(void)
{
    /* stride defaults to the window: (9 - 3)/3 + 1 = 3 */
    CHECK_HWC(at("input 9x9x2; maxpool 3x3", 1), 3, 3, 2);
    /* padded average pool keeps the size: (4 - 3 + 2)/1 + 1 = 4 */
    CHECK_HWC(at("input 4x4x2; avgpool 3x3 stride=1 pad=1", 1), 4, 4, 2);
    CHECK_HWC(at("input 6x6x2; minpool 2x2", 1), 3, 3, 2);
    /* ceil: 5 with 2x2: floor -> 2, ceil((5 - 2)/2) + 1 = 3 (PyTorch ceil_mode) */
    CHECK_HWC(at("input 5x5x1; maxpool 2x2", 1), 2, 2, 1);
    CHECK_HWC(at("input 5x5x1; maxpool 2x2 ceil=yes", 1), 3, 3, 1);
    /* 6 with 3x3, s2, p1: floor(5/2) + 1 = 3, ceil -> 4 */
    CHECK_HWC(at("input 6x6x1; maxpool 3x3 stride=2 pad=1 ceil=yes", 1), 4, 4, 1);
    /* a ceil window must start inside the input or its left pad: 5, 3x3, s3, p1: ceil(4/3) + 1 = 3,
     * but (3-1)*3 = 6 >= 5 + 1, so 2 */
    CHECK_HWC(at("input 5x5x1; maxpool 3x3 stride=3 pad=1 ceil=yes", 1), 2, 2, 1);
    /* pad=same: ceil(7/2) = 4 */
    CHECK_HWC(at("input 7x7x3; maxpool 2x2 pad=same", 1), 4, 4, 3);
    /* global average: 7x7x64 -> 1x1x64, RF 1 + 6 = 7 */
    cn_layer_info g = at("input 7x7x64; globalavgpool", 1);
    CHECK_HWC(g, 1, 1, 64);
    CHECK_INT(g.rf_h, 7);
}

static void test_flatten_dense_bn(void)
{
    CHECK_HWC(at("input 7x7x64; flatten", 1), 1, 1, 3136);
    /* dense reads a map flattened: (3136 + 1)*10 */
    CHECK_INT(at("input 7x7x64; dense 10", 1).params, 31370);
    CHECK_INT(at("input 7x7x64; flatten; dense 10", 2).params, 31370);
    /* batch norm: 2*C trainable, 4*C in all (running mean and variance are kept, not trained) */
    cn_layer_info bn = at("input 8x8x16; batchnorm", 1);
    CHECK_INT(bn.trainable, 32);
    CHECK_INT(bn.params, 64);
    CHECK_HWC(at("input 8x8x16; dropout keep=0.5; leakyrelu slope=0.2; sigmoid; tanh; softmax", -1), 8, 8, 16);
}

static void test_concat_add(void)
{
    /* concat joins channels: 16 + 32 = 48 */
    CHECK_HWC(at("input 8x8x3 as x; conv 16 1x1 from x as a; conv 32 3x3 pad=1 from x as b; concat a b", -1), 8, 8, 48);
    /* residual add keeps the shape */
    CHECK_HWC(at("input 8x8x16 as x; conv 16 3x3 pad=1; add conv1 x", -1), 8, 8, 16);
    /* 'from' may name a later line: the layers are put in data-flow order */
    cn_net *net = parse_spec(ctx, "input 8x8x1 as x\nconv 4 1x1 from b as a\nconv 4 1x1 from x as b\nadd a b");
    if (net) {
        cn_layer_info l1 = layer_at(ctx, net, 1, 1), l2 = layer_at(ctx, net, 2, 1);
        CHECK_STR(l1.name, "b");
        CHECK_STR(l2.name, "a");
        CHECK(!cn_net_is_chain(net));
    }
    cn_net_destroy(net);
}

static void test_receptive_field(void)
{
    /* conv3: 3; conv3: 5; pool 2 s2: 6 (jump 2); conv3: 6 + 2*2 = 10 (jump 2) */
    const char *spec = "input 32x32x1; conv 1 3x3; conv 1 3x3; maxpool 2x2; conv 1 3x3";
    const int64_t rf[] = { 1, 3, 5, 6, 10 }, jump[] = { 1, 1, 1, 2, 2 };
    cn_net *net = parse_spec(ctx, spec);
    for (int i = 0; net && i < 5; i++) {
        cn_layer_info li = layer_at(ctx, net, i, 1);
        CHECK_INT(li.rf_h, rf[i]);
        CHECK_INT(li.jump_h, jump[i]);
    }
    cn_net_destroy(net);
    /* fmnist-small's dense layers see the whole 28x28 input and more: conv 3, pool 4 (j2),
     * conv 8, pool 10 (j4), dense over 7x7: 10 + 6*4 = 34 */
    cn_net *f = NULL;
    CHECK(cn_net_load_spec(ctx, "models/fmnist-small.cnn", &f) == CN_OK);
    if (f) CHECK_INT(layer_at(ctx, f, 8, 1).rf_h, 34);
    cn_net_destroy(f);
}

/* the layers of issue 15: parameters by hand, adaptive pooling's output and the receptive field of
 * its largest window (PyTorch's windows [floor(i*H/S), ceil((i+1)*H/S)) written out) */
static void test_issue15_layers(void)
{
    static const struct { const char *spec; int64_t params, trainable, h, w, rf, jump; } cases[] = {
        { "input 5x4x3; prelu", 3, 3, 5, 4, 1, 1 },                      /* a slope per channel */
        { "input 5x4x3; scale init=1e-6", 3, 3, 5, 4, 1, 1 },            /* a factor per channel */
        { "input 5x4x3; layernorm", 120, 120, 5, 4, 1, 1 },              /* 2 * 5*4*3 */
        { "input 5x4x3; layernorm affine=no", 0, 0, 5, 4, 1, 1 },
        { "input 5x4x3; layernorm over=channels", 6, 6, 5, 4, 1, 1 },   /* 2 * 3: a scale and shift per channel */
        { "input 5x4x6; groupnorm 3", 12, 12, 5, 4, 1, 1 },              /* 2 * 6 */
        { "input 5x4x6; instancenorm", 0, 0, 5, 4, 1, 1 },               /* affine=no by default */
        { "input 5x4x6; instancenorm affine=yes", 12, 12, 5, 4, 1, 1 },
        { "input 5x4x6; batchnorm affine=no", 12, 0, 5, 4, 1, 1 },       /* running mean and var */
        { "input 5x4x6; globalmaxpool", 0, 0, 1, 1, 5, 5 },
        /* 7 -> 3: [0,3) [2,5) [4,7): 3 cells, spacing floor(7/3) = 2 */
        { "input 7x7x1; adaptiveavgpool 3", 0, 0, 3, 3, 3, 2 },
        /* 5 -> 3: [0,2) [1,4) [3,5): the largest 3, spacing 1 */
        { "input 5x5x1; adaptiveavgpool 3", 0, 0, 3, 3, 3, 1 },
        /* 3 -> 4: [0,1) [0,2) [1,3) [2,3): 2 cells, spacing at least 1 */
        { "input 3x3x1; adaptiveavgpool 4", 0, 0, 4, 4, 2, 1 },
        /* 13 -> 5: [0,3) [2,6) [5,8) [7,11) [10,13): 4 cells, spacing 2 */
        { "input 13x13x1; adaptiveavgpool 5", 0, 0, 5, 5, 4, 2 },
        /* 8 -> 4: exact windows of 2, stride 2 */
        { "input 8x8x1; conv 1 3x3 pad=1; adaptiveavgpool 4", 10, 10, 4, 4, 4, 2 },
        /* dilation 2 makes a 3x3 window span 5: rf 5, output floor((9 + 2 - 5)/2) + 1 = 4 */
        { "input 9x9x1; maxpool 3x3 stride=2 pad=1 dilation=2", 0, 0, 4, 4, 5, 2 },
        /* an output of 2e9 rows: inferred without a pass over them (1 input row: windows of 1) */
        { "input 1x1x1; adaptiveavgpool 2000000000x1", 0, 0, 2000000000, 1, 1, 1 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cn_net *net = parse_spec(ctx, cases[c].spec);
        if (!net) continue;
        int last = cn_net_layer_count(net) - 1;
        cn_layer_info li = layer_at(ctx, net, last, 1);
        cn_totals t;
        CHECK(cn_net_totals(ctx, net, 1, &t) == CN_OK);
        CHECK_INT(t.params, cases[c].params);
        CHECK_INT(t.trainable, cases[c].trainable);
        CHECK_INT(li.h, cases[c].h);
        CHECK_INT(li.w, cases[c].w);
        CHECK_INT(li.rf_h, cases[c].rf);
        CHECK_INT(li.jump_h, cases[c].jump);
        cn_net_destroy(net);
    }
    /* the largest window (the receptive field over the input) against a pass over every window */
    for (int64_t in = 1; in <= 40; in++)
        for (int64_t out = 1; out <= 40; out++) {
            char spec[96];
            snprintf(spec, sizeof spec, "input %lldx1x1; adaptiveavgpool %lldx1", (long long)in, (long long)out);
            int64_t largest = 0;
            for (int64_t o = 0; o < out; o++) {
                int64_t len = ((o + 1) * in + out - 1) / out - o * in / out;
                if (len > largest) largest = len;
            }
            cn_net *net = parse_spec(ctx, spec);
            if (net) CHECK_INT(layer_at(ctx, net, 1, 1).rf_h, largest);
            cn_net_destroy(net);
        }
    explain_contains("input 5x4x6; groupnorm 3", 1,
                     "    y = gamma * (x - mean) / sqrt(var + eps) + beta; mean, var over each sample's 3 groups of 2 "
                     "channels x 5x4\n");
    explain_contains("input 7x7x2; avgpool 3x3 stride=2 pad=1 count_pad=no", 1,
                     "    divisor: the window's cells inside the input, padding left out (count_pad=no)\n");
}

static void test_explain_text(void)
{
    const char *spec = "input 64x64x3; conv 32 3x3 pad=1";
    explain_contains(spec, 1, "    O = floor((64 - 3 + 2*1)/1) + 1 = 64\n");
    explain_contains(spec, 1, "    params = (3*3*3 + 1)*32 = 896\n");
    explain_contains(spec, 1, "    MACs = 64*64*32 * 3*3*3 = 3,538,944");
    explain_contains("input 10x12x1; conv 2 3x5 stride=1x2 pad=1x2", 1, "O_w = floor((12 - 5 + 2*2)/2) + 1 = 6");
    explain_contains("input 7x7x64; dense 10", 1, "in = 7*7*64 = 3,136 (the map is read flattened)");
    explain_contains("input 7x7x64; dense 10", 1, "params = (3136 + 1)*10 = 31,370");
    explain_contains("input 8x8x4; conv 6 3x3 groups=2 pad=1", 1, "params = (3*3*(4/2) + 1)*6 = 114");
    cn_net *net = parse_spec(ctx, spec);
    char buf[512];
    if (net) cn_net_explain(net, 1, 8, buf, sizeof buf);
    CHECK_CONTAINS(buf, "MACs = 8*64*64*32 * 3*3*3 = 28,311,552");
    /* snprintf contract: the needed length is returned whatever the capacity */
    size_t need = net ? cn_net_explain(net, 1, 1, NULL, 0) : 0;
    CHECK(need > 100 && need == (net ? cn_net_explain(net, 1, 1, buf, 10) : 0));
    CHECK_INT(strlen(buf), 9);
    cn_net_destroy(net);
}

static void test_memory(void)
{
    /* fmnist-small, per sample: outputs 784 + 25088*2 + 6272 + 12544*2 + 3136*2 + 128*2 + 10 = 88,858 floats */
    cn_net *net = NULL;
    CHECK(cn_net_load_spec(ctx, "models/fmnist-small.cnn", &net) == CN_OK);
    if (!net) return;
    cn_memory m;
    CHECK(cn_net_memory(ctx, net, 2, CN_OPT_ADAM, &m) == CN_OK);
    CHECK_INT(m.activations, 88858 * 2 * 4);
    CHECK_INT(m.activation_grads, (88858 - 784) * 2 * 4);
    CHECK_INT(m.aux, (6272 + 3136) * 2 * 4);    /* int32 argmax of the two max-pools */
    CHECK_INT(m.params, 421642 * 4);
    CHECK_INT(m.param_grads, 421642 * 4);
    CHECK_INT(m.optimizer_state, 421642 * 8); /* Adam: two moments */
    CHECK_INT(m.training_total, 710864 + 704592 + 75264 + 1686568 * 4);
    /* inference peak: conv1 and relu1 outputs alive together, 2*25088 floats per sample */
    CHECK_INT(m.inference_activations, 2 * 25088 * 2 * 4);
    CHECK_INT(m.inference_total, 401408 + 1686568);
    /* largest batch: fixed part 4*1,686,568 plus a per-sample part */
    cn_memory one;
    CHECK(cn_net_memory(ctx, net, 1, CN_OPT_ADAM, &one) == CN_OK);
    int64_t fixed = 4 * 1686568, per = one.training_total - fixed, b = -1;
    CHECK_INT(per, 88858 * 4 + (88858 - 784) * 4 + (6272 + 3136) * 4);
    CHECK(cn_net_fit_batch(ctx, net, fixed + 10 * per, CN_OPT_ADAM, 1, &b) == CN_OK);
    CHECK_INT(b, 10);
    CHECK(cn_net_fit_batch(ctx, net, fixed + 10 * per - 1, CN_OPT_ADAM, 1, &b) == CN_OK);
    CHECK_INT(b, 9);
    CHECK(cn_net_fit_batch(ctx, net, 1000, CN_OPT_ADAM, 1, &b) == CN_OK);
    CHECK_INT(b, 0);
    cn_net_destroy(net);
}

/* Inference peak of a small net at batch b: cn_net_memory's inference_activations, or -1. */
static int64_t peak_of(const char *spec, int64_t b, int64_t *total)
{
    cn_net *net = parse_spec(ctx, spec);
    cn_memory m = { 0 };
    if (net) CHECK(cn_net_memory(ctx, net, b, CN_OPT_SGD, &m) == CN_OK);
    cn_net_destroy(net);
    if (total) *total = m.inference_total;
    return net ? m.inference_activations : -1;
}

/* The inference peak walks the layers in data-flow order: a layer's output is alive from its
 * own step to the step of its last reader, both included; the net's output to the end. */
static void test_memory_branches(void)
{
    /* concat of two branches, per sample in floats: x 4*4*2 = 32, a 4*4*3 = 48, b 4*4*5 = 80,
     * concat 4*4*8 = 128. Last readers: x -> b (step 2), a and b -> concat (step 3).
     *   step 0: x                 32
     *   step 1: x a               32 + 48 = 80
     *   step 2: x a b             32 + 48 + 80 = 160
     *   step 3: a b concat        48 + 80 + 128 = 256   <- peak
     * batch 3: 256 * 3 * 4 bytes = 3072; parameters (2*3 + 3) + (2*5 + 5) = 24 floats = 96 bytes */
    int64_t total = 0;
    CHECK_INT(peak_of("input 4x4x2 as x; conv 3 1x1 from x as a; conv 5 1x1 from x as b; concat a b", 3, &total), 3072);
    CHECK_INT(total, 3072 + 96);
    /* a residual block: the skip keeps x alive across the block. Per sample: x 8*8*4 = 256,
     * c1 8*8*8 = 512, r1 512, c2 256, add 256. Last readers: x -> add (4), c1 -> r1 (2), r1 -> c2 (3),
     * c2 -> add (4).
     *   step 0: x                 256
     *   step 1: x c1              256 + 512 = 768
     *   step 2: x c1 r1           256 + 512 + 512 = 1280   <- peak (a chain would stop at 1024)
     *   step 3: x r1 c2           256 + 512 + 256 = 1024
     *   step 4: x c2 add          256 + 256 + 256 = 768
     * batch 1: 1280 * 4 = 5120 bytes; batch 5: 25600 */
    const char *res = "input 8x8x4 as x; conv 8 3x3 pad=1 as c1; relu as r1; conv 4 3x3 pad=1 as c2; add c2 x";
    CHECK_INT(peak_of(res, 1, NULL), 5120);
    CHECK_INT(peak_of(res, 5, NULL), 25600);
    CHECK_INT(peak_of(res, 0, NULL), 0);
    /* 'from' naming a later line, a layer read twice and a layer read by the output. Data-flow
     * order x, b, a, s, concat; per sample x 2*2*1 = 4, b 2*2*2 = 8, a 2*2*4 = 16, s 16, concat 24.
     * Last readers: x -> b (1), b -> concat (4), a -> s (3, both reads), s -> concat (4).
     *   step 0: x                 4
     *   step 1: x b               4 + 8 = 12
     *   step 2: b a               8 + 16 = 24
     *   step 3: b a s             8 + 16 + 16 = 40
     *   step 4: b s concat        8 + 16 + 24 = 48   <- peak
     * batch 2: 48 * 2 * 4 = 384 bytes */
    CHECK_INT(peak_of("input 2x2x1 as x\nconv 4 1x1 from b as a\nconv 2 1x1 from x as b\nadd a a as s\nconcat s b", 2, NULL),
              384);
    /* a chain: two tensors at once, the input alone at step 0 */
    CHECK_INT(peak_of("input 3x3x1", 2, NULL), 3 * 3 * 2 * 4);
    CHECK_INT(peak_of("input 3x3x1; relu; tanh", 2, NULL), 2 * 3 * 3 * 2 * 4);
    cn_memory m;
    CHECK_INT(cn_net_memory(NULL, NULL, 1, CN_OPT_SGD, &m), CN_E_ARG);
}

/* The longest spec (CN_MAX_LAYERS): planning is linear in the layers, so these return at once.
 * input 8x8x1 and 9,999 relus, 64 floats = 256 bytes each per sample. */
static void test_memory_long_chain(void)
{
    static char spec[12 + 9999 * 5 + 1]; /* zeroed: the text ends in a NUL */
    memcpy(spec, "input 8x8x1\n", 12);
    for (int i = 0; i < 9999; i++) memcpy(spec + 12 + 5 * i, "relu\n", 5);
    cn_net *net = parse_spec(ctx, spec);
    if (!net) return;
    CHECK_INT(cn_net_layer_count(net), 10000);
    cn_memory m;
    CHECK(cn_net_memory(ctx, net, 3, CN_OPT_ADAM, &m) == CN_OK);
    CHECK_INT(m.activations, 10000 * 256 * 3);
    CHECK_INT(m.activation_grads, 9999 * 256 * 3); /* none for the input */
    CHECK_INT(m.aux + m.params + m.param_grads + m.optimizer_state, 0);
    CHECK_INT(m.training_total, 19999 * 256 * 3);
    /* every step holds a relu's input and output: 2 * 256 bytes per sample */
    CHECK_INT(m.inference_activations, 512 * 3);
    CHECK_INT(m.inference_total, 512 * 3);
    /* 1 GiB: training 2^30 / (19,999 * 256 = 5,119,744) = 209.7; inference 2^30 / 512 = 2^21 */
    int64_t b = -1;
    CHECK(cn_net_fit_batch(ctx, net, INT64_C(1) << 30, CN_OPT_ADAM, 1, &b) == CN_OK);
    CHECK_INT(b, 209);
    CHECK(cn_net_fit_batch(ctx, net, INT64_C(1) << 30, CN_OPT_ADAM, 0, &b) == CN_OK);
    CHECK_INT(b, INT64_C(1) << 21);
    CHECK(cn_net_fit_batch(ctx, net, (INT64_C(1) << 30) - 1, CN_OPT_ADAM, 0, &b) == CN_OK);
    CHECK_INT(b, (INT64_C(1) << 21) - 1);
    cn_net_destroy(net);
}

/* cn_net_memory and cn_net_fit_batch with allocation N failing, N = 0, 1, ...: CN_E_NOMEM with
 * a message, zeroed results and nothing left allocated, or the values of a run without failure. */
static void test_memory_malloc_sweep(void)
{
    const char *res = "input 8x8x4 as x; conv 8 3x3 pad=1 as c1; relu as r1; conv 4 3x3 pad=1 as c2; add c2 x";
    cn_net *net = parse_spec(ctx, res);
    if (!net) return;
    fa_sweep s;
    for (fa_sweep_start(&s); fa_sweep_next(&s, 100);) {
        cn_memory m;
        int64_t b = -1;
        cn_status st = cn_net_memory(s.ctx, net, 1, CN_OPT_SGD, &m);
        cn_status st_fit = st ? st : cn_net_fit_batch(s.ctx, net, 1 << 20, CN_OPT_SGD, 0, &b);
        int injected = fa_sweep_injected(&s);
        if (st) {
            CHECK(injected);
            CHECK_INT(st, CN_E_NOMEM);
            CHECK(strlen(cn_ctx_message(s.ctx)) > 0);
            CHECK_INT(m.inference_activations + m.activations, 0);
        } else {
            CHECK_INT(m.inference_activations, 5120); /* test_memory_branches */
            if (st_fit) {
                CHECK(injected);
                CHECK_INT(st_fit, CN_E_NOMEM);
                CHECK_INT(b, 0);
            } else {
                /* 2^20 bytes: parameters (8*4*9 + 8) + (4*8*9 + 4) = 588 floats = 2352 bytes,
                 * then 5120 per sample: (1048576 - 2352) / 5120 = 204.3 */
                CHECK_INT(b, 204);
            }
        }
        fa_sweep_end(&s);
        CHECK_INT(s.fa.live, 0);
        CHECK_INT(s.fa.bad_free, 0);
    }
    CHECK(s.done);
    CHECK(s.n > 2); /* at least the two tables of one cn_net_memory call, then fit_batch's */
    cn_net_destroy(net);
}

/* cn_window_dim, the one output-size formula, one dimension at a time */
static void test_window_dim(void)
{
    int64_t out = -1, lo = -1, hi = -1;
    /* floor((10 + 0 - (2*(3-1) + 1)) / 1) + 1 = 6: a 3-tap kernel dilated by 2 spans 5 */
    CHECK(cn_window_dim(CN_PAD_EXPLICIT, 10, 3, 1, 2, 0, 0, &out, &lo, &hi));
    CHECK_INT(out, 6);
    CHECK_INT(lo, 0);
    CHECK_INT(hi, 0);
    /* floor((7 + 2 - 3) / 2) + 1 = 4 */
    CHECK(cn_window_dim(CN_PAD_EXPLICIT, 7, 3, 2, 1, 1, 0, &out, &lo, &hi));
    CHECK_INT(out, 4);
    CHECK_INT(lo, 1);
    CHECK_INT(hi, 1);
    /* ceil((6 + 2 - 3) / 2) + 1 = 4; the last window starts at 3*2 - 1 = 5 < 6, inside the input,
     * and ends at 5 + 3 = 8 = 6 + 2: it reaches 2 past the input (PyTorch MaxPool2d(3, 2, 1,
     * ceil_mode=True) on 6 gives 4) */
    CHECK(cn_window_dim(CN_PAD_EXPLICIT, 6, 3, 2, 1, 1, 1, &out, &lo, &hi));
    CHECK_INT(out, 4);
    CHECK_INT(lo, 1);
    CHECK_INT(hi, 2);
    /* ceil((5 + 2 - 2) / 2) + 1 = 4, but the 4th window would start at 3*2 = 6 >= 5 + 1, in the
     * right padding only: 3 (PyTorch MaxPool2d(2, 2, 1, ceil_mode=True) on 5 gives 3) */
    CHECK(cn_window_dim(CN_PAD_EXPLICIT, 5, 2, 2, 1, 1, 1, &out, &lo, &hi));
    CHECK_INT(out, 3);
    CHECK_INT(lo, 1);
    CHECK_INT(hi, 1);
    /* ceil((5 - 2) / 2) + 1 = 3: the last window [4, 6) overhangs the input by 1 */
    CHECK(cn_window_dim(CN_PAD_EXPLICIT, 5, 2, 2, 1, 0, 1, &out, &lo, &hi));
    CHECK_INT(out, 3);
    CHECK_INT(lo, 0);
    CHECK_INT(hi, 1);
    /* same: ceil(7 / 2) = 4, padding (4-1)*2 + 3 - 7 = 2 split 1 + 1; ceil(6 / 2) = 3, padding
     * (3-1)*2 + 3 - 6 = 1, the odd one after */
    CHECK(cn_window_dim(CN_PAD_SAME, 7, 3, 2, 1, 0, 0, &out, &lo, &hi));
    CHECK_INT(out, 4);
    CHECK_INT(lo, 1);
    CHECK_INT(hi, 1);
    CHECK(cn_window_dim(CN_PAD_SAME, 6, 3, 2, 1, 0, 0, &out, &lo, &hi));
    CHECK_INT(out, 3);
    CHECK_INT(lo, 0);
    CHECK_INT(hi, 1);
    /* valid ignores the pad: floor((6 - 3) / 1) + 1 = 4 */
    CHECK(cn_window_dim(CN_PAD_VALID, 6, 3, 1, 1, 2, 0, &out, &lo, &hi));
    CHECK_INT(out, 4);
    CHECK_INT(lo, 0);
    CHECK_INT(hi, 0);
    /* a kernel of 5 over 3 + 2*0: does not fit */
    CHECK(!cn_window_dim(CN_PAD_EXPLICIT, 3, 5, 1, 1, 0, 0, &out, &lo, &hi));
    /* the public entry reads the same formula: floor((10 + 2 - 5) / 2) + 1 = 4 */
    CHECK_INT(cn_conv_out_size(ctx, 10, 3, 2, 1, 2, &out), CN_OK);
    CHECK_INT(out, 4);
    CHECK_INT(cn_conv_out_size(ctx, 3, 5, 1, 0, 1, &out), CN_E_SHAPE);
    CHECK_INT(out, 0);
}

static void test_geometric_layers(void)
{
    /* upsample by 2x3: 5*2 x 4*3; to a size; no parameters, no MACs */
    CHECK_HWC(at("input 5x4x3; upsample 2x3", 1), 10, 12, 3);
    cn_layer_info u = at("input 5x4x3; upsample size=7x9 mode=bilinear", 1);
    CHECK_HWC(u, 7, 9, 3);
    CHECK(u.params == 0 && u.macs == 0);
    /* deconv as nn.ConvTranspose2d: (4 - 1)*2 - 2*1 + (3 - 1) + 1 + 1 = 8; params 4*(6/2)*3*3 + 6,
     * MACs 4*4*4 * 3*3*3 (each input value through its group's 3 kernels of 3x3) */
    cn_layer_info d = at("input 4x4x4; deconv 6 3x3 stride=2 pad=1 outpad=1 groups=2", 1);
    CHECK_HWC(d, 8, 8, 6);
    CHECK_INT(d.params, 4 * 3 * 9 + 6);
    CHECK_INT(d.macs, 64 * 27);
    /* dilation 2, stride 2x1, no bias: h (3 - 1)*2 + 2*(3 - 1) + 1 = 9, w (5 - 1)*1 + 2*(2 - 1) + 1 = 7 */
    CHECK_HWC(at("input 3x5x2; deconv 4 3x2 stride=2x1 dilation=2 bias=no", 1), 9, 7, 4);
    /* squeeze-and-excitation: a 1x1x3 gate broadcast over 5x4x3, either side of mul or add */
    CHECK_HWC(at("input 5x4x3 as x; globalavgpool; sigmoid as g; mul g x", -1), 5, 4, 3);
    CHECK_HWC(at("input 5x4x3 as x; globalavgpool as g; add x g", -1), 5, 4, 3);
    /* pad 1x2 with top=0: h 5 + 0 + 1, w 4 + 2 + 2; pad to 9x9 centred: 2 top, 2 bottom, 2 left, 3 right */
    CHECK_HWC(at("input 5x4x3; pad 1x2 top=0", 1), 6, 8, 3);
    explain_contains("input 5x4x3; pad size=9x9", 1, "O_h = 5 + 2 + 2 = 9 (top, bottom); O_w = 4 + 2 + 3 = 9");
    /* crop: a centred size (the odd column off the right), at an offset, or margins */
    explain_contains("input 8x7x3; crop 4x4", 1, "keeps rows 2..5, columns 1..4");
    explain_contains("input 8x7x3; crop 4x4 offset=0x3", 1, "keeps rows 0..3, columns 3..6");
    CHECK_HWC(at("input 8x7x3; crop margin=1 left=3", 1), 6, 3, 3);
}

static void test_receptive_field_upsampling(void)
{
    /* conv 3x3 then maxpool 2: RF 4, jump 2; deconv 2x2 stride 2 halves the jump (1) and its
     * kernel spans one more step of the new grid: 4 + 1*1 = 5; bilinear 2: the second tap
     * adds a jump (6), the jump halves (0.5); conv 3x3: 6 + 2*0.5 = 7; RF and jump are rounded
     * up in rf_h/jump_h, exact in rf_exact_h/jump_exact_h */
    const char *spec = "input 16x16x1; conv 1 3x3; maxpool 2x2; deconv 1 2x2 stride=2; upsample 2 mode=bilinear; "
                       "conv 1 3x3; upsample 2; conv 1 2x2";
    const double rf[] = { 1, 3, 4, 5, 6, 7, 7, 7.25 }, jump[] = { 1, 1, 2, 1, 0.5, 0.5, 0.25, 0.25 };
    cn_net *net = parse_spec(ctx, spec);
    for (int i = 0; net && i < 8; i++) {
        cn_layer_info li = layer_at(ctx, net, i, 1);
        CHECK(li.rf_exact_h == rf[i] && li.rf_exact_w == rf[i]);
        CHECK(li.jump_exact_h == jump[i] && li.jump_exact_w == jump[i]);
        CHECK_INT(li.rf_h, (int64_t)ceil(rf[i]));
        CHECK_INT(li.jump_h, (int64_t)ceil(jump[i]));
    }
    cn_net_destroy(net);
    /* to a size: 3 -> 7 gives a jump of 3/7; a 1x1 gate brings its field (globalavgpool over
     * 7 outputs: 1 + 6*3/7 = 3.57) but not its jump to the mul */
    cn_net *g = parse_spec(ctx, "input 3x3x2 as x; upsample size=7x7 as u; globalavgpool as p; mul u p");
    if (g) {
        cn_layer_info up = layer_at(ctx, g, 1, 1), m = layer_at(ctx, g, 3, 1);
        CHECK(fabs(up.jump_exact_h - 3.0 / 7) < 1e-12);
        CHECK(fabs(m.rf_exact_h - (1 + 6 * 3.0 / 7)) < 1e-12);
        CHECK(fabs(m.jump_exact_h - 3.0 / 7) < 1e-12);
    }
    cn_net_destroy(g);
    explain_contains(spec, 3, "RF = 4 -> 5, jump = 2 -> 1 input pixels");
    explain_contains(spec, 7, "RF = 7 -> 7.25, jump = 0.25 -> 0.25 input pixels");
}

static const test_case cases[] = {
    { "setup", setup },
    { "window output size (cn_window_dim)", test_window_dim },
    { "stride and pad=same", test_stride_and_same },
    { "dilation, groups, rectangular kernels, bias", test_dilation_groups_rect },
    { "pooling", test_pooling },
    { "flatten, dense, batchnorm, pointwise", test_flatten_dense_bn },
    { "concat and add", test_concat_add },
    { "receptive field", test_receptive_field },
    { "upsample, deconv, mul/add broadcast, pad, crop", test_geometric_layers },
    { "receptive field and jump through upsampling (fractional)", test_receptive_field_upsampling },
    { "prelu, norms, adaptive and dilated pooling: params, shapes, receptive field", test_issue15_layers },
    { "explain text", test_explain_text },
    { "memory and fit", test_memory },
    { "memory of branches, worked by hand", test_memory_branches },
    { "memory of a 10,000-layer chain", test_memory_long_chain },
    { "memory with allocation failures", test_memory_malloc_sweep },
    { "teardown", teardown },
};
TEST_MAIN(cases)
