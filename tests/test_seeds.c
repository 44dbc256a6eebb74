/* test_seeds.c — every worked example of the lecture notes in shared/seeds/ about shapes,
 * parameters, multiplications, softmax, losses, batch norm, L1/L2 and the convolution or
 * pooling of the given matrices. Expected values are worked out by hand (or with Python's
 * math module at full precision) in the comments; where a seed's arithmetic is wrong the
 * comment says so and the test asserts the correct value. */
#include "test_util.h"

static cn_ctx *ctx;

/* Output of the last layer of an inline spec. */
static cn_layer_info last(const char *spec, int64_t batch)
{
    cn_net *net = parse_spec(ctx, spec);
    cn_layer_info li = layer_at(ctx, net, net ? cn_net_layer_count(net) - 1 : 0, batch);
    /* names are owned by the net: keep only numbers */
    li.name = li.type = NULL;
    li.inputs = NULL;
    cn_net_destroy(net);
    return li;
}

static int64_t total(const char *spec, int trainable)
{
    cn_net *net = parse_spec(ctx, spec);
    cn_totals t = { 0, 0, 0 };
    if (net) CHECK(cn_net_totals(ctx, net, 1, &t) == CN_OK);
    cn_net_destroy(net);
    return trainable ? t.trainable : t.params;
}

static int64_t macs(const char *spec, int64_t batch)
{
    cn_net *net = parse_spec(ctx, spec);
    cn_totals t = { 0, 0, 0 };
    if (net) CHECK(cn_net_totals(ctx, net, batch, &t) == CN_OK);
    cn_net_destroy(net);
    return t.macs;
}

static double loss(cn_loss_kind kind, const float *t, const float *p, int64_t rows, int64_t cols)
{
    double v = -1;
    CHECK(cn_loss(ctx, kind, t, p, rows, cols, &v, NULL) == CN_OK);
    return v;
}

/* ---- seed 000: convolution layer calculations -------------------------------------------- */

static void seed000_shapes(void)
{
    /* Q1: (64 - 3 + 2*1)/1 + 1 = 64 -> 64x64x32 */
    cn_layer_info q1 = last("input 64x64x3; conv 32 3x3 stride=1 pad=1", 1);
    CHECK_HWC(q1, 64, 64, 32);
    /* Q2: (64 - 3 + 0)/2 + 1 = 31.5, floored to 31 -> 31x31x32 */
    cn_layer_info q2 = last("input 64x64x3; conv 32 3x3 stride=2 pad=valid", 1);
    CHECK_HWC(q2, 31, 31, 32);
    /* Q3: (32 - 5 + 0)/1 + 1 = 28 -> 28x28x1. (The notes' O_h line divides by 2 instead of the
     * stride 1 yet writes 28; 28 is right.) */
    cn_layer_info q3 = last("input 32x32; conv 1 5x5", 1);
    CHECK_HWC(q3, 28, 28, 1);
    CHECK_HWC(last("input 32x32", 1), 32, 32, 1); /* HxW without channels: one */
    CHECK_INT(last("input 32x32; conv 4 3x3", 1).params, 4 * (3 * 3 * 1 + 1));
    /* Q5: 5x5 same on 64x64x16, batch 8: pad 2, (64 - 5 + 4)/1 + 1 = 64 -> 8x64x64x64 */
    cn_layer_info q5 = last("input 64x64x16; conv 64 5x5 pad=same", 8);
    CHECK_HWC(q5, 64, 64, 64);
    CHECK_INT(q5.batch, 8);
    CHECK_INT(last("input 64x64x16; conv 64 5x5 pad=2", 8).h, 64);
    /* Q13: maxpool 2x2 stride 2 on 32x32x64: (32 - 2)/2 + 1 = 16 -> 16x16x64 */
    cn_layer_info q13 = last("input 32x32x64; maxpool 2x2 stride=2", 1);
    CHECK_HWC(q13, 16, 16, 64);
    /* Q18: conv 3x3 s1 p1 keeps 64; maxpool 2x2 s2: (64 - 2)/2 + 1 = 32 */
    cn_layer_info q18 = last("input 64x64x3; conv 8 3x3 pad=1; maxpool 2x2 stride=2", 1);
    CHECK_HWC(q18, 32, 32, 8);
}

static void seed000_kernel_depth(void)
{
    /* Q4: a kernel spans every input channel: 128 kernels of 3x3x64; params (3*3*64 + 1)*128 */
    cn_net *net = parse_spec(ctx, "input 28x28x64; conv 128 3x3");
    cn_layer_info li = layer_at(ctx, net, 1, 1);
    CHECK_INT(li.params, (3 * 3 * 64 + 1) * 128);
    char buf[1024];
    cn_net_explain(net, 1, 1, buf, sizeof buf);
    CHECK_CONTAINS(buf, "each of the 128 kernels is 3x3x64");
    cn_net_destroy(net);
}

static void seed000_params(void)
{
    /* Q6: (3*3*3 + 1)*32 = 896 */
    CHECK_INT(total("input 64x64x3; conv 32 3x3", 0), 896);
    /* Q7: Dense(128 -> 10): (128 + 1)*10 = 1290 */
    CHECK_INT(total("input 1x1x128; dense 10", 0), 1290);
    /* Q19: 448 + 4,640 + 5,130 = 10,218 (a 512-value input to the dense layer) */
    CHECK_INT(total("input 8x8x3; conv 16 3x3 pad=1 as a; conv 32 3x3 pad=1", 0), 448 + 4640);
    CHECK_INT(total("input 1x1x512; dense 10", 0), 5130);
    CHECK_INT(total("input 2x2x3; conv 16 3x3 pad=1; conv 32 3x3 pad=1; conv 128 2x2; dense 10", 0) -
                  (2 * 2 * 32 + 1) * 128 - (128 + 1) * 10 + 5130,
              10218);
}

static void seed000_losses(void)
{
    /* Q8: MSE of y=[1,0], y^=[0.8,0.3]: (0.04 + 0.09)/2 = 0.065 */
    const float y8[] = { 1, 0 }, p8[] = { 0.8f, 0.3f };
    CHECK_NEAR(loss(CN_LOSS_MSE, y8, p8, 1, 2), 0.065, 1e-6);
    /* Q9: three hypotheses: MSE 6.5/3 = 2.1667, 0.5/3 = 0.1667, 0.75/3 = 0.25 (best: best_fit2) */
    const float y9[] = { 1, 2.5f, 3.5f }, f1[] = { 0.5f, 1, 1.5f }, f2[] = { 1, 2, 3 }, f3[] = { 1.5f, 3, 4 };
    CHECK_NEAR(loss(CN_LOSS_MSE, y9, f1, 3, 1), 6.5 / 3, 1e-6);
    CHECK_NEAR(loss(CN_LOSS_MSE, y9, f2, 3, 1), 0.5 / 3, 1e-6);
    CHECK_NEAR(loss(CN_LOSS_MSE, y9, f3, 3, 1), 0.25, 1e-6);
    /* Q9, second version: MSE 0.14/3, 0.08/3, 0.06/3; MAE 0.6/3, 0.4/3, 0.4/3. (The notes list
     * best_fit1's errors as [0.1, 0.3, 0.2]; they are [0.2, 0.3, 0.1]: same squares, same sums.) */
    const float y9b[] = { 2, 1.5f, 3 }, g1[] = { 1.8f, 1.2f, 2.9f }, g2[] = { 2.0f, 1.7f, 3.2f }, g3[] = { 2.2f, 1.4f, 3.1f };
    CHECK_NEAR(loss(CN_LOSS_MSE, y9b, g1, 3, 1), 0.14 / 3, 1e-6);
    CHECK_NEAR(loss(CN_LOSS_MSE, y9b, g2, 3, 1), 0.08 / 3, 1e-6);
    CHECK_NEAR(loss(CN_LOSS_MSE, y9b, g3, 3, 1), 0.06 / 3, 1e-6);
    CHECK_NEAR(loss(CN_LOSS_MAE, y9b, g1, 3, 1), 0.6 / 3, 1e-6);
    CHECK_NEAR(loss(CN_LOSS_MAE, y9b, g2, 3, 1), 0.4 / 3, 1e-6);
    CHECK_NEAR(loss(CN_LOSS_MAE, y9b, g3, 3, 1), 0.4 / 3, 1e-6);
    /* Q10: CE of [1,0,0] vs [0.7,0.2,0.1] = -ln 0.7 = 0.356675 */
    const float y10[] = { 1, 0, 0 }, p10[] = { 0.7f, 0.2f, 0.1f };
    CHECK_NEAR(loss(CN_LOSS_CE, y10, p10, 1, 3), 0.35667494393873245, 1e-6);
    /* Q11: BCE = (-ln 0.9 - ln 0.8 - ln 0.4)/3 = 0.414932. (The notes give 0.4147: they average
     * the rounded terms 0.105, 0.223, 0.916.) */
    const float y11[] = { 1, 0, 1 }, p11[] = { 0.9f, 0.2f, 0.4f };
    CHECK_NEAR(loss(CN_LOSS_BCE, y11, p11, 3, 1), 0.414931599615397, 1e-6);
    /* Q16: CCE over 3 samples = (-ln 0.7 - ln 0.6 - ln 0.6)/3 = 0.459442. (The notes give 0.4597
     * from the rounded terms 0.357 + 0.511 + 0.511.) */
    const float y16[] = { 1, 0, 0, 0, 1, 0, 0, 0, 1 }, p16[] = { 0.7f, 0.2f, 0.1f, 0.1f, 0.6f, 0.3f, 0.2f, 0.2f, 0.6f };
    CHECK_NEAR(loss(CN_LOSS_CE, y16, p16, 3, 3), 0.4594420638235713, 1e-6);
    /* Q17: hinge max(0, 1 - t y): 0, 0.4, 1.3 */
    const float t17[] = { 1, 1, -1 }, p17[] = { 1.2f, 0.6f, 0.3f };
    double per[3], mean = -1;
    CHECK(cn_loss(ctx, CN_LOSS_HINGE, t17, p17, 3, 1, &mean, per) == CN_OK);
    CHECK_NEAR(mean, 1.7 / 3, 1e-6);
    CHECK_NEAR(per[0], 0.0, 1e-7);
    CHECK_NEAR(per[1], 0.4, 1e-6);
    CHECK_NEAR(per[2], 1.3, 1e-6);
}

static void seed000_dice_and_reg(void)
{
    /* Q12: Dice coefficient 2*80/(100 + 90) = 0.842105, loss 0.157895 */
    double coef = 0;
    CHECK(cn_dice_coefficient(ctx, 80, 100, 90, &coef) == CN_OK);
    CHECK_NEAR(coef, 160.0 / 190.0, 1e-12);
    CHECK_NEAR(1 - coef, 0.1578947368421053, 1e-12);
    /* Q14: weights [0.5, -0.2], lambda 0.01: L1 = 0.01*0.7 = 0.007, L2 = 0.01*0.29 = 0.0029 */
    const float w[] = { 0.5f, -0.2f };
    CHECK_NEAR(cn_reg_l1(w, 2, 0.01), 0.007, 1e-7);
    CHECK_NEAR(cn_reg_l2(w, 2, 0.01), 0.0029, 1e-7);
}

/* ---- seed 001: worksheet solutions ------------------------------------------------------- */

static void seed001_softmax(void)
{
    /* softmax([2.0, 1.0, 0.1]) = [0.659001, 0.242433, 0.098566]. (The notes write S3 = 0.0099 in
     * the working and 0.099 in the answer: e^0.1/11.212 = 0.0986.) */
    const float x[] = { 2.0f, 1.0f, 0.1f };
    float y[3];
    cn_softmax(x, y, 3);
    CHECK_NEAR(y[0], 0.6590011388859679, 1e-6);
    CHECK_NEAR(y[1], 0.2424329707047139, 1e-6);
    CHECK_NEAR(y[2], 0.09856589040931818, 1e-6);
    /* the worksheet's FFN with all-zero pre-activations: softmax of [0, 0] is [0.5, 0.5] */
    const float z[] = { 0, 0 };
    cn_softmax(z, y, 2);
    CHECK_NEAR(y[0], 0.5, 1e-7);
    CHECK_NEAR(y[1], 0.5, 1e-7);
}

static void seed001_ffn_params(void)
{
    /* worksheet 4: 3 inputs, 4 hidden, 2 outputs, biases: (3 + 1)*4 + (4 + 1)*2 = 16 + 10 = 26 */
    CHECK_INT(total("input 1x1x3; dense 4; relu; dense 2", 0), 26);
}

static void seed001_batchnorm(void)
{
    /* worksheet 6: x = [2,4,6,8,10], gamma 2, beta 1: mean 6, variance 40/5 = 8,
     * x_hat = (x - 6)/sqrt(8) = [-1.414, -0.707, 0, 0.707, 1.414], y = 2 x_hat + 1.
     * (The notes divide by the variance 8 instead of sqrt(8) - getting -0.5, -0.25, ... - and then
     * use beta = -1 although the question gives beta = 1.) */
    const float x[] = { 2, 4, 6, 8, 10 };
    float y[5], mean, var;
    cn_batchnorm_1d(x, y, 5, 2.0f, 1.0f, 0.0f, &mean, &var);
    CHECK_NEAR(mean, 6.0, 1e-7);
    CHECK_NEAR(var, 8.0, 1e-7);
    const double want[] = { -1.8284271247461898, -0.4142135623730949, 1.0, 2.414213562373095, 3.82842712474619 };
    for (int i = 0; i < 5; i++) CHECK_NEAR(y[i], want[i], 1e-6);
    /* with the training default eps = 1e-5: (x - 6)/sqrt(8.00001) */
    cn_batchnorm_1d(x, y, 5, 2.0f, 1.0f, 1e-5f, NULL, NULL);
    CHECK_NEAR(y[0], -1.8284253569808944, 1e-6);
    CHECK_NEAR(y[4], 3.8284253569808944, 1e-6);
}

static void seed001_edge_conv(void)
{
    /* worksheet 8: 6x6 image (10s left, 0s right) * vertical-edge kernel -> every row 0 30 30 0 */
    float img[36], y[16];
    for (int i = 0; i < 36; i++) img[i] = (i % 6) < 3 ? 10.0f : 0.0f;
    const float k[] = { 1, 0, -1, 1, 0, -1, 1, 0, -1 };
    int64_t oh, ow;
    CHECK(cn_conv2d_single(ctx, img, 6, 6, k, 3, 3, 1, 0, y, &oh, &ow) == CN_OK);
    CHECK_INT(oh, 4);
    CHECK_INT(ow, 4);
    const float row[] = { 0, 30, 30, 0 };
    for (int i = 0; i < 16; i++) CHECK_NEAR(y[i], row[i % 4], 0);
}

static void seed001_bottleneck(void)
{
    /* worksheet 13, as the notes set it up: 32 filters of 28x28x192 with same padding on
     * 28x28x192: 28*28 * 28*28 * 32 * 192 = 3,776,446,464 multiplications. */
    CHECK_INT(macs("input 28x28x192; conv 32 28x28 pad=same", 1), INT64_C(3776446464));
    /* the 1x1 bottleneck: 28*28*16*192 + 28*28*32*3*3*16 = 2,408,448 + 3,612,672 = 6,021,120 */
    CHECK_INT(macs("input 28x28x192; conv 16 1x1", 1), 2408448);
    CHECK_INT(macs("input 28x28x192; conv 16 1x1; conv 32 3x3 pad=same", 1), 6021120);
}

static void seed001_inception(void)
{
    /* worksheet 14, naive: 32*32*128*3*3*192 + 32*32*32*5*5*192 = 226,492,416 + 157,286,400 */
    const char *naive = "input 32x32x192 as x; conv 128 3x3 pad=same from x as a; conv 32 5x5 pad=same from x as b; concat a b";
    CHECK_INT(macs(naive, 1), 383778816);
    cn_layer_info out = last(naive, 1);
    CHECK_HWC(out, 32, 32, 160);
    /* with 1x1 reductions: 12,582,912 + 75,497,472 + 3,145,728 + 13,107,200 = 104,333,312.
     * (The notes total 88,604,672: they leave out the two 1x1 layers, 15,728,640 multiplications.) */
    const char *reduced = "input 32x32x192 as x; conv 64 1x1 from x; conv 128 3x3 pad=same as a;"
                          "conv 16 1x1 from x; conv 32 5x5 pad=same as b; concat a b";
    CHECK_INT(macs(reduced, 1), 104333312);
    CHECK_INT(macs(reduced, 1) - 12582912 - 3145728, 88604672);
}

/* worksheet 15: a 5-way classifier of 32x32 gray images, a dense layer of 5 on the flattened
 * image, or "a CNN layer having five 32x32 filters". The notes answer that the CNN is better for
 * "parameter efficiency": fewer parameters. Not for these two: a 32x32 kernel on a 32x32 image
 * (no padding) is one dot product per filter over the whole image, the dense layer itself.
 * Both have 5 * 1024 + 5 = 5,125 parameters and 5 * 1024 = 5,120 multiplications, and given the
 * same weights (a filter's 1x32x32 are a dense row's 1,024, in the same order) the same outputs.
 * A CNN saves parameters with kernels smaller than the image: five 3x3 filters have 50. */
static void seed001_fc_vs_full_kernel(void)
{
    const char *fc = "input 32x32x1; flatten; dense 5", *cnn = "input 32x32x1; conv 5 32x32";
    CHECK_INT(total(fc, 0), 5125);
    CHECK_INT(total(cnn, 0), 5125);
    CHECK_INT(macs(fc, 1), 5120);
    CHECK_INT(macs(cnn, 1), 5120);
    CHECK_INT(total("input 32x32x1; conv 5 3x3", 0), 50);
    cn_net *a = parse_spec(ctx, fc), *b = parse_spec(ctx, cnn);
    if (!a || !b) {
        cn_net_destroy(a), cn_net_destroy(b);
        return;
    }
    CHECK(cn_net_init_params(ctx, a, CN_INIT_KAIMING_NORMAL, 3) == CN_OK);
    CHECK(cn_net_init_params(ctx, b, CN_INIT_KAIMING_NORMAL, 4) == CN_OK);
    cn_tensor wa, ba, wb, bb;
    CHECK(cn_net_find_tensor(ctx, a, "dense1.weight", &wa) == CN_OK && cn_net_find_tensor(ctx, a, "dense1.bias", &ba) == CN_OK);
    CHECK(cn_net_find_tensor(ctx, b, "conv1.weight", &wb) == CN_OK && cn_net_find_tensor(ctx, b, "conv1.bias", &bb) == CN_OK);
    CHECK_INT(wb.count, wa.count);
    memcpy(wb.data, wa.data, (size_t)wa.count * sizeof(float)); /* (5, 1024) and (5, 1, 32, 32): one order */
    for (int i = 0; i < 5; i++) ba.data[i] = 0.1f * (float)(i + 1), bb.data[i] = ba.data[i];
    float x[2 * 1024];
    cn_rng rng;
    cn_rng_seed(&rng, 15);
    for (int i = 0; i < 2 * 1024; i++) x[i] = (float)cn_rng_normal(&rng);
    CHECK(cn_net_forward(ctx, a, x, 2, 0) == CN_OK);
    CHECK(cn_net_forward(ctx, b, x, 2, 0) == CN_OK);
    int64_t na, nb;
    const float *ya = cn_net_output(a, &na), *yb = cn_net_output(b, &nb);
    CHECK_INT(nb, na);
    for (int64_t i = 0; i < na && i < nb; i++) CHECK_NEAR(yb[i], ya[i], 1e-5);
    cn_net_destroy(a), cn_net_destroy(b);
}

/* ---- seed 002: CNN basics ------------------------------------------------------------------ */

static void seed002_feature_map(void)
{
    /* the 5x5 binary image and the 3x3 X-shaped kernel: convolved feature 4 3 4 / 2 4 3 / 2 3 4 */
    const float img[] = { 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0 };
    const float k[] = { 1, 0, 1, 0, 1, 0, 1, 0, 1 };
    const float want[] = { 4, 3, 4, 2, 4, 3, 2, 3, 4 };
    float y[9];
    int64_t oh, ow;
    CHECK(cn_conv2d_single(ctx, img, 5, 5, k, 3, 3, 1, 0, y, &oh, &ow) == CN_OK);
    CHECK_INT(oh * ow, 9);
    for (int i = 0; i < 9; i++) CHECK_NEAR(y[i], want[i], 0);
}

static void seed002_zero_padding(void)
{
    /* the zero-padded 5x5 picture with the sharpen kernel 0 -1 0 / -1 5 -1 / 0 -1 0: the first
     * output is 5*60 - 113 - 73 = 114, as the notes show; the rest computed by hand (Python) */
    const float img[] = { 60, 113, 56, 139, 85, 73, 121, 54, 84, 128, 131, 99, 70, 129, 127,
                          80, 57, 115, 69, 134, 104, 126, 123, 95, 130 };
    const float k[] = { 0, -1, 0, -1, 5, -1, 0, -1, 0 };
    const float want[] = { 114, 328, -26, 470, 158, 53, 266, -61, -30, 344, 403, 116, -47, 295, 244,
                           108, -135, 256, -128, 344, 314, 346, 279, 153, 421 };
    float y[25];
    int64_t oh, ow;
    CHECK(cn_conv2d_single(ctx, img, 5, 5, k, 3, 3, 1, 1, y, &oh, &ow) == CN_OK);
    CHECK_INT(oh, 5);
    for (int i = 0; i < 25; i++) CHECK_NEAR(y[i], want[i], 0);
}

static void seed002_classic_kernels(void)
{
    /* edge detection -1..8..-1 sums to 0 on a solid fill; sharpen leaves a solid fill unchanged */
    float solid[16], y[4];
    for (int i = 0; i < 16; i++) solid[i] = 77;
    const float edge[] = { -1, -1, -1, -1, 8, -1, -1, -1, -1 }, sharpen[] = { 0, -1, 0, -1, 5, -1, 0, -1, 0 };
    int64_t oh, ow;
    CHECK(cn_conv2d_single(ctx, solid, 4, 4, edge, 3, 3, 1, 0, y, &oh, &ow) == CN_OK);
    for (int i = 0; i < 4; i++) CHECK_NEAR(y[i], 0, 0);
    CHECK(cn_conv2d_single(ctx, solid, 4, 4, sharpen, 3, 3, 1, 0, y, &oh, &ow) == CN_OK);
    for (int i = 0; i < 4; i++) CHECK_NEAR(y[i], 77, 0);
}

static void seed002_pooling(void)
{
    /* 2 2 7 3 / 9 4 6 1 / 8 5 2 4 / 3 1 2 6, 2x2 windows, stride 2:
     * max 9 7 / 8 6; average 17/4 17/4 / 17/4 14/4; min 2 1 / 1 2 */
    const float x[] = { 2, 2, 7, 3, 9, 4, 6, 1, 8, 5, 2, 4, 3, 1, 2, 6 };
    const float mx[] = { 9, 7, 8, 6 }, av[] = { 4.25f, 4.25f, 4.25f, 3.5f }, mn[] = { 2, 1, 1, 2 };
    float y[4];
    int64_t oh, ow;
    CHECK(cn_pool2d_single(ctx, CN_POOL_MAX, x, 4, 4, 2, 2, 0, y, &oh, &ow) == CN_OK);
    for (int i = 0; i < 4; i++) CHECK_NEAR(y[i], mx[i], 0);
    CHECK(cn_pool2d_single(ctx, CN_POOL_AVG, x, 4, 4, 2, 2, 0, y, &oh, &ow) == CN_OK);
    for (int i = 0; i < 4; i++) CHECK_NEAR(y[i], av[i], 0);
    CHECK(cn_pool2d_single(ctx, CN_POOL_MIN, x, 4, 4, 2, 2, 0, y, &oh, &ow) == CN_OK);
    for (int i = 0; i < 4; i++) CHECK_NEAR(y[i], mn[i], 0);
}

static void seed002_six_operations(void)
{
    /* 10x10x10 through the six operations: 10x10x40, 10x10x40, 10x10x40 (3x3 pool, s1, p1),
     * 10x10x20, 10x10x20, then 2x2 pool s2 p1: floor((10 - 2 + 2)/2) + 1 = 6 -> 6x6x20 */
    cn_net *net = parse_spec(ctx, "input 10x10x10; conv 40 3x3 stride=1 pad=1; relu; maxpool 3x3 stride=1 pad=1;"
                                  "conv 20 3x3 stride=1 pad=1; relu; maxpool 2x2 stride=2 pad=1");
    const int64_t want[7][3] = { { 10, 10, 10 }, { 10, 10, 40 }, { 10, 10, 40 }, { 10, 10, 40 },
                                 { 10, 10, 20 }, { 10, 10, 20 }, { 6, 6, 20 } };
    for (int i = 0; i < 7; i++) {
        cn_layer_info li = layer_at(ctx, net, i, 1);
        CHECK_HWC(li, want[i][0], want[i][1], want[i][2]);
    }
    /* params (3*3*10 + 1)*40 = 3,640 and (3*3*40 + 1)*20 = 7,220: 10,860 */
    CHECK_INT(layer_at(ctx, net, 1, 1).params, 3640);
    CHECK_INT(layer_at(ctx, net, 4, 1).params, 7220);
    cn_totals t;
    CHECK(cn_net_totals(ctx, net, 1, &t) == CN_OK);
    CHECK_INT(t.params, 10860);
    cn_net_destroy(net);
    /* a third conv of 10 filters after the 20 channels: (3*3*20 + 1)*10 = 1,810 */
    CHECK_INT(total("input 6x6x20; conv 10 3x3 pad=1", 0), 1810);
}

/* ---- seed 004: class notes ------------------------------------------------------------------- */

static void seed004_shapes_and_params(void)
{
    /* 100x100x3, 6 kernels 3x3(x3), s1, p0: (100 - 3)/1 + 1 = 98 -> 98x98x6.
     * (The notes write 97x97x6: 100 - 3 + 1 is 98.) */
    cn_layer_info a = last("input 100x100x3; conv 6 3x3", 1);
    CHECK_HWC(a, 98, 98, 6);
    /* the same with 32 kernels on a batch of 10: 10x98x98x32 (the notes: 97x97x32) */
    cn_layer_info b = last("input 100x100x3; conv 32 3x3", 10);
    CHECK_HWC(b, 98, 98, 32);
    /* 16x16x32, 64 kernels 3x3, s1, p0 -> 14x14x64, each kernel 3x3x32 */
    cn_layer_info c = last("input 16x16x32; conv 64 3x3", 1);
    CHECK_HWC(c, 14, 14, 64);
    CHECK_INT(c.params, (3 * 3 * 32 + 1) * 64);
    /* 6 filters 5x5 on 32x32x3: 6*3*5*5 + 6 = 456 params, output 28x28x6 */
    cn_layer_info d = last("input 32x32x3; conv 6 5x5", 1);
    CHECK_HWC(d, 28, 28, 6);
    CHECK_INT(d.params, 456);
    /* 3 filters 3x3x3, stride 2, pad 1 on 8x8x3: 3*3*3*3 + 3 = 84 params; floor((8 - 3 + 2)/2) + 1 = 4
     * -> 3x4x4 = 48 values */
    cn_layer_info e = last("input 8x8x3; conv 3 3x3 stride=2 pad=1", 1);
    CHECK_HWC(e, 4, 4, 3);
    CHECK_INT(e.params, 84);
    CHECK_INT(e.h * e.w * e.c, 48);
}

static void seed004_linear_loss(void)
{
    /* x = [0.6, 0.8], w = [0.5, 0.1]: y^ = 0.38, (0.38 - 3)^2 = 6.8644; with x1 = 0.7: 0.43,
     * (0.43 - 3)^2 = 6.6049 (the squared error of one prediction: MSE of one value) */
    const float t[] = { 3 }, p1[] = { 0.38f }, p2[] = { 0.43f };
    CHECK_NEAR(loss(CN_LOSS_MSE, t, p1, 1, 1), 6.8644, 1e-6);
    CHECK_NEAR(loss(CN_LOSS_MSE, t, p2, 1, 1), 6.6049, 1e-6);
}

static void setup(void) { CHECK(cn_ctx_create(NULL, &ctx) == CN_OK); }
static void teardown(void) { cn_ctx_destroy(ctx); }

static const test_case cases[] = {
    { "setup", setup },
    { "seed000 output shapes (Q1-Q3, Q5, Q13, Q18)", seed000_shapes },
    { "seed000 kernel depth (Q4)", seed000_kernel_depth },
    { "seed000 parameters (Q6, Q7, Q19)", seed000_params },
    { "seed000 losses (Q8-Q11, Q16, Q17)", seed000_losses },
    { "seed000 dice and L1/L2 (Q12, Q14)", seed000_dice_and_reg },
    { "seed001 softmax", seed001_softmax },
    { "seed001 FFN parameters", seed001_ffn_params },
    { "seed001 batch norm", seed001_batchnorm },
    { "seed001 vertical edge", seed001_edge_conv },
    { "seed001 1x1 bottleneck", seed001_bottleneck },
    { "seed001 inception", seed001_inception },
    { "seed001 a dense layer or five 32x32 filters (worksheet 15)", seed001_fc_vs_full_kernel },
    { "seed002 convolved feature", seed002_feature_map },
    { "seed002 zero padding", seed002_zero_padding },
    { "seed002 classic kernels", seed002_classic_kernels },
    { "seed002 pooling", seed002_pooling },
    { "seed002 six operations", seed002_six_operations },
    { "seed004 shapes and parameters", seed004_shapes_and_params },
    { "seed004 squared error", seed004_linear_loss },
    { "teardown", teardown },
};
TEST_MAIN(cases)
