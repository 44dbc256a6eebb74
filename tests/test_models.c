/* test_models.c — the totals of every file in models/, computed by hand in the comments.
 * A new file in models/ without an entry here fails the test. */
#include <dirent.h>

#include "test_util.h"

typedef struct {
    const char *file;
    int layers;
    int64_t params, trainable, macs;
    int64_t c, h, w; /* output */
} model_case;

static const model_case models[] = {
    /* conv1 (9+1)*32 = 320; conv2 (9*32+1)*64 = 18,496; dense (3136+1)*128 = 401,536; dense (128+1)*10 = 1,290
     * MACs 28*28*32*9 + 14*14*64*288 + 3136*128 + 128*10 = 225,792 + 3,612,672 + 401,408 + 1,280 */
    { "models/fmnist-small.cnn", 11, 421642, 421642, 4241152, 10, 1, 1 },
    /* fmnist-fast: convs without bias 9*(1*32 + 32*64 + 64*128 + 128*128 + 128*256) = 534,816; BN
     * 2*(32+64+128+128+256) = 1,216 trained (+1,216 running); dense (256+1)*10 = 2,570.
     * MACs 784*32*9 + 784*64*288 + 196*128*576 + 196*128*1152 + 49*256*1152 + 256*10
     *    = 225,792 + 14,450,688 + 14,450,688 + 28,901,376 + 14,450,688 + 2,560.
     * 21 layers: input, 5 x (conv, batchnorm, relu), 3 maxpools, globalmaxpool, dense */
    { "models/fmnist-fast.cnn", 21, 539818, 538602, 72481792, 10, 1, 1 },
    /* (25+1)*6 + (150+1)*16 + (400+1)*120 + (120+1)*84 + (84+1)*10 = 156 + 2,416 + 48,120 + 10,164 + 850
     * MACs 28*28*6*25 + 10*10*16*150 + 120*400 + 120*84 + 84*10 = 117,600 + 240,000 + 48,000 + 10,080 + 840 */
    { "models/lenet5.cnn", 13, 61706, 61706, 416520, 10, 1, 1 },
    /* seed 002: (3*3*10+1)*40 + (3*3*40+1)*20 = 3,640 + 7,220; MACs 100*40*90 + 100*20*360 */
    { "models/seed002-six-ops.cnn", 7, 10860, 10860, 1080000, 20, 6, 6 },
    /* (3*3*192+1)*128 + (5*5*192+1)*32 = 221,312 + 153,632; MACs 1024*128*1728 + 1024*32*4800 */
    { "models/inception-naive.cnn", 4, 374944, 374944, 383778816, 160, 32, 32 },
    /* (192+1)*64 + (9*64+1)*128 + (192+1)*16 + (25*16+1)*32 = 12,352 + 73,856 + 3,088 + 12,832
     * MACs 1024*(64*192 + 128*576 + 16*192 + 32*400) = 1024*101,888 */
    { "models/inception-reduced.cnn", 6, 102128, 102128, 104333312, 160, 32, 32 },
    /* torchvision-style ResNet-18 with a 3x3 stem and no max-pool (as kuangliu/pytorch-cifar):
     * 11,173,962 trainable; BN running mean/var add 2*(64 + 4*64 + 5*128 + 5*256 + 5*512) = 9,600.
     * 68 layers: input + stem 3 + 5 blocks of 7 + 3 projected blocks of 9 + pool + dense.
     * MACs 555,422,720 (0.56 GMAC, the figure usually quoted for this net). */
    { "models/resnet18-cifar.cnn", 68, 11183562, 11173962, 555422720, 10, 1, 1 },
    /* deep-sigmoid: (784+1)*64 + 7*(64+1)*64 + (64+1)*10 = 50,240 + 29,120 + 650; MACs 784*64 +
     * 7*64*64 + 64*10 = 50,176 + 28,672 + 640; 19 layers: input, flatten, 8 x (dense, sigmoid), dense */
    { "models/deep-sigmoid.cnn", 19, 80010, 80010, 79488, 10, 1, 1 },
    /* deep-sigmoid-res: (784+1)*64 + 8*(64+1)*64 + (64+1)*10 = 50,240 + 33,280 + 650 (the adds have
     * no weights); MACs 784*64 + 8*64*64 + 64*10 = 50,176 + 32,768 + 640. 28 layers: input,
     * flatten, h0, 8 x (dense, sigmoid, add), dense */
    { "models/deep-sigmoid-res.cnn", 28, 84170, 84170, 83584, 10, 1, 1 },
    /* seed 001's XOR graph: 2-2-1 dense, (2*2 + 2) + (2*1 + 1) = 9 parameters, 2*2 + 2*1 = 6 MACs,
     * 4 layers (input, hidden, relu, out) */
    { "models/xor-seed001.cnn", 4, 9, 9, 6, 1, 1, 1 },
    /* SE-ResNet, stages of 16, 32, 64 channels (the same totals come from its PyTorch twin in
     * tests/parity/model_se_resnet.bin): trainable = stem 432 + 32 (BN)
     *   + stage 1: 2*16*9*16 + 2*32 (BN) + SE (16*4 + 4) + (4*16 + 16) = 4,820
     *   + stage 2: 16*9*32 + 32*9*32 + 2*64 + SE (32*8 + 8) + (8*32 + 32) + proj 16*32 + 64 = 15,080
     *   + stage 3: 32*9*64 + 64*9*64 + 2*128 + SE (64*16 + 16) + (16*64 + 64) + proj 32*64 + 128 = 59,856
     *   + dense 64*10 + 10 = 650: 80,870; running mean/var 2*(16 + 2*16 + 3*32 + 3*64) = 672.
     * MACs 32*32*16*27 + 2*32*32*16*144 + 16*16*32*(144 + 288 + 16) + 8*8*64*(288 + 576 + 32)
     *   + SE 2*(16*4 + 32*8 + 64*16) + 640 = 442,368 + 4,718,592 + 3,670,016 + 3,670,016 + 2,688 + 640.
     * 49 layers: input, stem 3, per stage 13 (+2 with a projection), pool, dense. */
    { "models/se-resnet-block.cnn", 49, 81542, 80870, 12504320, 10, 1, 1 },
    /* U-Net, unpadded 3x3 convolutions (twin: tests/parity/model_unet_small.bin):
     * params (9+1)*16 + (144+1)*16 + (144+1)*32 + (288+1)*32 + (288+1)*64 + (576+1)*64
     *   + deconv 64*32*2*2 + 32 + (576+1)*32 + (288+1)*32 + 1x1 (32+1)*16 + (288+1)*16 + (144+1)*16
     *   + head (16+1)*2 = 115,234
     * MACs 74*74*16*9 + 72*72*16*144 + 34*34*32*144 + 32*32*32*288 + 14*14*64*288 + 12*12*64*576
     *   + deconv 12*12*64 * 32*2*2 + 22*22*32*576 + 20*20*32*288 + 40*40*16*32 + 38*38*16*288
     *   + 36*36*16*144 + 36*36*2*16 = 60,705,344; output the centre 36x36 of the 76x76 input */
    { "models/unet-small.cnn", 31, 115234, 115234, 60705344, 2, 36, 36 },
    /* torchvision's mobilenet_v2 at 224x224x3, 1000 classes; PyTorch's figures from
     * tests/mobilenetv2_torch_check.py: 3,504,872 trainable + 34,112 running statistics, 300,774,272
     * MACs. 153 layers: input + stem 3 + block 1 (no expansion) 5 + 16 blocks of 8 + 10 shortcut
     * adds + head 6 (conv, batchnorm, relu6, adaptiveavgpool, dropout, dense). */
    { "models/mobilenetv2.cnn", 153, 3538984, 3504872, 300774272, 1000, 1, 1 },
    /* torchvision's shufflenet_v2_x1_0 at 224x224x3, 1000 classes; PyTorch's figures from
     * tests/shufflenetv2_torch_check.py: 2,278,604 trainable + 16,180 running statistics,
     * 144,907,992 MACs. 211 layers: input + stem 4 + 3 stride-2 units of 13 + 13 stride-1 units
     * of 12 + head 5 (conv, batchnorm, relu, globalavgpool, dense). */
    { "models/shufflenetv2.cnn", 211, 2294784, 2278604, 144907992, 1000, 1, 1 },
    /* torchvision's convnext_tiny at 224x224x3, 1000 classes; PyTorch's figures from
     * tests/convnext_torch_check.py: 28,589,128 parameters, 4,455,531,264 MACs of its Conv2d and
     * Linear layers (the layer scales, element-wise, counted in neither). 139 layers: input +
     * stem 2 + 18 blocks of 7 + 3 downsamplings of 2 + head 4 (globalavgpool, layernorm, flatten,
     * dense). */
    { "models/convnext-tiny.cnn", 139, 28589128, 28589128, 4455531264, 1000, 1, 1 },
};

static void test_model_totals(void)
{
    cn_ctx *ctx;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        const model_case *m = &models[i];
        cn_net *net = NULL;
        if (cn_net_load_spec(ctx, m->file, &net) != CN_OK) {
            test_fail(__FILE__, __LINE__, "%s: %s", m->file, cn_ctx_message(ctx));
            continue;
        }
        cn_totals t;
        CHECK(cn_net_totals(ctx, net, 1, &t) == CN_OK);
        CHECK_INT(cn_net_layer_count(net), m->layers);
        CHECK_INT(t.params, m->params);
        CHECK_INT(t.trainable, m->trainable);
        CHECK_INT(t.macs, m->macs);
        cn_layer_info out = layer_at(ctx, net, cn_net_layer_count(net) - 1, 1);
        CHECK_HWC(out, m->h, m->w, m->c);
        cn_net_destroy(net);
    }
    cn_ctx_destroy(ctx);
}

static void test_every_model_listed(void)
{
    DIR *d = opendir("models");
    CHECK(d != NULL);
    if (!d) return;
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".cnn")) continue;
        files++;
        char path[300];
        snprintf(path, sizeof path, "models/%s", e->d_name);
        int found = 0;
        for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) found |= !strcmp(models[i].file, path);
        if (!found) test_fail(__FILE__, __LINE__, "%s has no entry in test_models.c", path);
    }
    closedir(d);
    CHECK_INT(files, (int)(sizeof models / sizeof models[0]));
}

static void test_resnet_shapes(void)
{
    /* stage outputs: 32x32x64, 16x16x128, 8x8x256, 4x4x512, then 1x1x512 and 10 classes */
    cn_ctx *ctx;
    cn_net *net;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    CHECK(cn_net_load_spec(ctx, "models/resnet18-cifar.cnn", &net) == CN_OK);
    static const struct { const char *name; int64_t h, c; } stages[] = {
        { "stem", 32, 64 }, { "s1b2_out", 32, 64 }, { "s2b2_out", 16, 128 }, { "s3b2_out", 8, 256 }, { "s4b2_out", 4, 512 },
    };
    for (size_t s = 0; s < sizeof stages / sizeof stages[0]; s++) {
        int found = 0;
        for (int i = 0; net && i < cn_net_layer_count(net); i++) {
            cn_layer_info li = layer_at(ctx, net, i, 1);
            if (strcmp(li.name, stages[s].name)) continue;
            found = 1;
            CHECK_HWC(li, stages[s].h, stages[s].h, stages[s].c);
        }
        CHECK(found);
    }
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

typedef struct { const char *name; int64_t h, c, rf, jump; } stage_case;

/* the named layers of a model: their height (= width), channels, receptive field and jump */
static void check_stages(const char *path, const stage_case *stages, size_t n)
{
    cn_ctx *ctx;
    cn_net *net = NULL;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    CHECK(cn_net_load_spec(ctx, path, &net) == CN_OK);
    for (size_t s = 0; net && s < n; s++) {
        int found = 0;
        for (int i = 0; i < cn_net_layer_count(net); i++) {
            cn_layer_info li = layer_at(ctx, net, i, 1);
            if (strcmp(li.name, stages[s].name)) continue;
            found = 1;
            CHECK_HWC(li, stages[s].h, stages[s].h, stages[s].c);
            CHECK_INT(li.rf_h, stages[s].rf);
            CHECK_INT(li.jump_h, stages[s].jump);
        }
        CHECK(found);
    }
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* MobileNetV2: the stages' shapes (torchvision's), and the last feature map's receptive field
 * 491 and jump 32 (tests/mobilenetv2_torch_check.py, from torchvision's convolutions) */
static void test_mobilenetv2_shapes(void)
{
    static const stage_case stages[] = {
        /* by hand: stem 3 (jump 2); b1's 3x3 +2*2 = 7; b2's 3x3 of stride 2: 11 (jump 4); b3: 19; the
         * rest as tests/mobilenetv2_torch_check.py prints them from torchvision's convolutions */
        { "stem", 112, 32, 3, 2 }, { "b1", 112, 16, 7, 2 }, { "b2", 56, 24, 11, 4 }, { "b3", 56, 24, 19, 4 },
        { "b6", 28, 32, 59, 8 }, { "b10", 14, 64, 171, 16 }, { "b13", 14, 96, 267, 16 },
        { "b16", 7, 160, 427, 32 }, { "b17", 7, 320, 491, 32 }, { "features", 7, 1280, 491, 32 },
    };
    check_stages("models/mobilenetv2.cnn", stages, sizeof stages / sizeof stages[0]);
}

/* ShuffleNet V2: its stages' shapes (torchvision's), receptive fields and jumps
 * (tests/shufflenetv2_torch_check.py, along each unit's convolutions). By hand: the stem's
 * 3x3 of stride 2 then the 3x3 max pooling of stride 2: 1 + 2 + 2*2 = 7, jump 4; stage 2's
 * first unit +2*4 (jump 8), its 3 others +2*8 each: 7 + 8 + 48 = 63. */
static void test_shufflenetv2_shapes(void)
{
    static const stage_case stages[] = {
        { "stem", 56, 24, 7, 4 }, { "s2_u1", 28, 116, 15, 8 }, { "s2_u4", 28, 116, 63, 8 },
        { "s3_u8", 14, 232, 303, 16 }, { "s4_u4", 7, 464, 527, 32 }, { "features", 7, 1024, 527, 32 },
    };
    check_stages("models/shufflenetv2.cnn", stages, sizeof stages / sizeof stages[0]);
}

/* ConvNeXt-T: its stages' shapes (torchvision's), receptive fields and jumps
 * (tests/convnext_torch_check.py). By hand: the stem's 4x4 of stride 4: 4, jump 4; each block's
 * 7x7 depthwise conv +6*jump: stage 1 4 + 3*24 = 76; the 2x2 of stride 2 +4 (jump 8), stage 2
 * +3*48: 224; +8 (jump 16), +9*96: 1096; +16 (jump 32), +3*192: 1688. */
static void test_convnext_shapes(void)
{
    static const stage_case stages[] = {
        { "stem", 56, 96, 4, 4 }, { "s1_b3", 56, 96, 76, 4 }, { "s2_down", 28, 192, 80, 8 },
        { "s2_b3", 28, 192, 224, 8 }, { "s3_b9", 14, 384, 1096, 16 }, { "s4_b3", 7, 768, 1688, 32 },
    };
    check_stages("models/convnext-tiny.cnn", stages, sizeof stages / sizeof stages[0]);
}

/* a parsed net's tensors before any parameters exist: names, shapes, counts by hand */
static void test_layer_params(void)
{
    cn_ctx *ctx = NULL;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    cn_net *net = parse_spec(ctx, "input 8x8x3; conv 4 3x3; batchnorm as bn; relu");
    cn_param_info p[CN_MAX_LAYER_TENSORS];
    CHECK_INT(cn_net_layer_params(net, 0, p), 0);
    CHECK_INT(cn_net_layer_params(net, 1, p), 2);
    CHECK_STR(p[0].layer, "conv1");
    CHECK_STR(p[0].name, "weight");
    CHECK(p[0].rank == 4 && p[0].shape[0] == 4 && p[0].shape[1] == 3 && p[0].shape[2] == 3 && p[0].shape[3] == 3);
    CHECK(p[0].count == 108 && p[0].trainable); /* 4 filters of 3x3x3 */
    CHECK(!strcmp(p[1].name, "bias") && p[1].count == 4);
    CHECK_INT(cn_net_layer_params(net, 2, p), 4);
    CHECK(!strcmp(p[0].layer, "bn") && p[0].trainable && p[1].trainable && !p[2].trainable && !p[3].trainable);
    CHECK(!strcmp(p[2].name, "running_mean") && p[3].count == 4);
    CHECK_INT(cn_net_layer_params(net, 3, p), 0);
    CHECK_INT(cn_net_layer_params(net, 4, p), 0); /* out of range */
    CHECK_INT(cn_net_tensor_count(net), 0);       /* nothing allocated */
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

static const test_case cases[] = {
    { "model totals", test_model_totals },
    { "a layer's tensors before any parameters exist", test_layer_params },
    { "every model listed", test_every_model_listed },
    { "resnet18 stage shapes", test_resnet_shapes },
    { "mobilenetv2 stage shapes and receptive field (torchvision's)", test_mobilenetv2_shapes },
    { "shufflenetv2 stage shapes and receptive field (torchvision's)", test_shufflenetv2_shapes },
    { "convnext-tiny stage shapes and receptive field (torchvision's)", test_convnext_shapes },
};
TEST_MAIN(cases)
