/* test_shapes.c — shape inference for every option of DESIGN.md (stride, pad N/same/valid,
 * dilation, groups, rectangular kernels, pooling padding and ceil, globalavgpool, flatten,
 * concat, add), receptive fields, the explanation text, and memory planning. Every expected
 * number is worked out by hand in the comment beside it. */
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

static const test_case cases[] = {
    { "setup", setup },
    { "stride and pad=same", test_stride_and_same },
    { "dilation, groups, rectangular kernels, bias", test_dilation_groups_rect },
    { "pooling", test_pooling },
    { "flatten, dense, batchnorm, pointwise", test_flatten_dense_bn },
    { "concat and add", test_concat_add },
    { "receptive field", test_receptive_field },
    { "explain text", test_explain_text },
    { "memory and fit", test_memory },
    { "teardown", teardown },
};
TEST_MAIN(cases)
