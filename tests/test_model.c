/* test_model.c — the inference API (src/infer/model.c): a model loaded from a checkpoint file and
 * from a run folder classifies pixels (8-bit and float, RGB, RGBA with padded rows, gray), PNG
 * bytes and a PNG file; the probabilities are worked out here independently in double (the 4x4
 * image halved to 2x2 is a plain 2x2 box average under half-pixel bilinear resizing, then the
 * normalisation, the dense layer and the softmax written out); top-k order, names and empty
 * slots; test-time augmentation (the views made and averaged here); a batch equal to one image
 * at a time, bit for bit (with the views too); the errors; every allocation of
 * loading and classifying failed in turn (CN_E_NOMEM, nothing leaked); and separate models in
 * separate threads giving the bits of one thread alone. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convnet.h"
#include "fail_alloc.h"
#include "harness.h"

static char dir[256];

/* input 2x2xC -> flatten -> dense 3, weights w[k][j] = ((k + 1) * (j % 5) - 2) / 8, bias (k - 1) / 4,
 * saved with norm and class names; path into buf */
static const char *NAMES = "cat\ndog\nbird";
static const float MEAN[4] = { 0.5f, 0.25f, 0.0f, 0.0f }, STD[4] = { 0.5f, 0.25f, 1.0f, 1.0f };

static double weight(int k, int j) { return ((k + 1) * (j % 5) - 2) / 8.0; }
static double bias(int k) { return (k - 1) / 4.0; }

static void write_model_resized(const char *path, int channels, const char *resize);
static void write_model(const char *path, int channels) { write_model_resized(path, channels, NULL); }

/* resize: the checkpoint's "resize" value (NULL: no key, as before convnet wrote one) */
static void write_model_resized(const char *path, int channels, const char *resize)
{
    char spec[128];
    snprintf(spec, sizeof spec, "input 2x2x%d\nflatten\ndense 3\n", channels);
    cn_ctx *ctx;
    cn_net *net;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    CHECK(cn_net_parse(ctx, spec, strlen(spec), "model.cnn", &net) == CN_OK);
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    cn_tensor w, b;
    CHECK(cn_net_find_tensor(ctx, net, "dense1.weight", &w) == CN_OK);
    CHECK(cn_net_find_tensor(ctx, net, "dense1.bias", &b) == CN_OK);
    for (int k = 0; k < 3; k++) {
        for (int j = 0; j < 4 * channels; j++) w.data[k * 4 * channels + j] = (float)weight(k, j);
        b.data[k] = (float)bias(k);
    }
    cn_kv meta[] = { { "norm_mean", "0.5,0.25,0,0" }, { "norm_std", "0.5,0.25,1,1" }, { "class_names", NAMES },
                     { "resize", resize } };
    CHECK(cn_checkpoint_write(ctx, path, net, NULL, meta, resize ? 4 : 3) == CN_OK);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* a 4x4 RGB image, pixel (y, x) channel c = (4y + x) * 15 + 2c + seed (at most 255) */
static void make_pixels(unsigned char *px, int seed)
{
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 3; c++) px[(y * 4 + x) * 3 + c] = (unsigned char)((4 * y + x) * 15 + 2 * c + seed);
}

/* The net's input in double: 2x2 box averages of the 4x4 pixels (/255), luma 0.299 R + 0.587 G
 * + 0.114 B for one channel, (v - mean) / std; x (channels, 2, 2). */
static void input_of(const unsigned char *px, int channels, double *x)
{
    for (int c = 0; c < channels; c++)
        for (int Y = 0; Y < 2; Y++)
            for (int X = 0; X < 2; X++) {
                double s = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        const unsigned char *q = px + ((2 * Y + dy) * 4 + 2 * X + dx) * 3;
                        s += channels == 3 ? q[c] : 0.299 * q[0] + 0.587 * q[1] + 0.114 * q[2];
                    }
                x[c * 4 + Y * 2 + X] = (s / 4 / 255 - MEAN[c]) / STD[c];
            }
}

/* z += the dense layer's outputs for input x */
static void add_logits(const double *x, int channels, double z[3])
{
    for (int k = 0; k < 3; k++) {
        z[k] += bias(k);
        for (int j = 0; j < 4 * channels; j++) z[k] += weight(k, j) * x[j];
    }
}

static void softmax3(const double z[3], double p[3])
{
    double zmax = fmax(z[0], fmax(z[1], z[2])), sum = 0;
    for (int k = 0; k < 3; k++) sum += exp(z[k] - zmax);
    for (int k = 0; k < 3; k++) p[k] = exp(z[k] - zmax) / sum;
}

/* The probabilities the model must give, in double: the input above, dense, softmax. */
static void expected(const unsigned char *px, int channels, double p[3])
{
    double x[12], z[3] = { 0 };
    input_of(px, channels, x);
    add_logits(x, channels, z);
    softmax3(z, p);
}

/* the same classes, names and probability bits (the name pointers may be other models') */
static int same_preds(const cn_prediction *a, const cn_prediction *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i].index != b[i].index || memcmp(&a[i].probability, &b[i].probability, sizeof(float)) ||
            (a[i].name || b[i].name ? !a[i].name || !b[i].name || strcmp(a[i].name, b[i].name) : 0))
            return 0;
    return 1;
}

/* preds are the classes of p, most likely first, with their names and probabilities */
static void check_preds(const cn_prediction *preds, int k, const double p[3], int line)
{
    static const char *names[3] = { "cat", "dog", "bird" };
    int failures = test_failures;
    for (int t = 0; t < k && t < 3; t++) {
        int c = preds[t].index;
        CHECK(c >= 0 && c < 3);
        if (c < 0 || c >= 3) break;
        CHECK_STR(preds[t].name, names[c]);
        CHECK_NEAR(preds[t].probability, p[c], 1e-6);
        for (int o = 0; o < 3; o++) /* nothing more likely left behind */
            if (o != c) {
                int before = 0;
                for (int s = 0; s < t; s++) before |= preds[s].index == o;
                CHECK(before || p[o] <= p[c] + 1e-9);
            }
    }
    for (int t = 3; t < k; t++) CHECK(preds[t].index == -1 && !preds[t].name && preds[t].probability == 0);
    if (test_failures != failures) fprintf(stderr, "  (from line %d)\n", line);
}

/* a new context and the model at path in it (NULL, the reason printed, when it does not load) */
static cn_model *open_model(const char *path, cn_ctx **ctx)
{
    cn_model *m = NULL;
    CHECK(cn_ctx_create(NULL, ctx) == CN_OK);
    CHECK(cn_model_load(*ctx, path, &m) == CN_OK);
    if (!m) fprintf(stderr, "%s: %s\n", path, cn_ctx_message(*ctx));
    return m;
}

static void test_pixels_bytes_file(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/rgb.safetensors", dir);
    write_model(path, 3);
    cn_ctx *ctx;
    cn_model *m = open_model(path, &ctx);
    if (!m) return;
    int64_t c, h, w;
    cn_model_input_shape(m, &c, &h, &w);
    CHECK(c == 3 && h == 2 && w == 2);
    CHECK_INT(cn_model_classes(m), 3);
    CHECK_STR(cn_model_class_name(m, 2), "bird");
    CHECK(cn_model_class_name(m, 3) == NULL && cn_model_class_name(m, -1) == NULL);
    float mean[4], std[4];
    cn_model_norm(m, mean, std);
    CHECK(mean[1] == 0.25f && std[0] == 0.5f);

    unsigned char px[48];
    make_pixels(px, 7);
    double p[3];
    expected(px, 3, p);
    cn_prediction u8[5], f32[5], rgba[5], png[5], file[5];
    cn_image_view v = { .data = px, .h = 4, .w = 4, .c = 3, .format = CN_PIXELS_U8 };
    CHECK(cn_model_classify_pixels(ctx, m, &v, 5, u8) == CN_OK);
    check_preds(u8, 5, p, __LINE__);

    /* the same image as floats s / 255: the same bits as the 8-bit samples */
    float fx[48];
    for (int i = 0; i < 48; i++) fx[i] = (float)px[i] / 255.0f;
    cn_image_view vf = { .data = fx, .h = 4, .w = 4, .c = 3, .format = CN_PIXELS_F32 };
    CHECK(cn_model_classify_pixels(ctx, m, &vf, 5, f32) == CN_OK);
    CHECK(same_preds(u8, f32, 5));

    /* RGBA in rows of 20 bytes (4 of padding), alpha noise that must not count */
    unsigned char pa[4 * 20];
    memset(pa, 0xee, sizeof pa);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            memcpy(pa + y * 20 + x * 4, px + (y * 4 + x) * 3, 3);
            pa[y * 20 + x * 4 + 3] = (unsigned char)(y * 60 + x);
        }
    cn_image_view va = { .data = pa, .h = 4, .w = 4, .c = 4, .format = CN_PIXELS_U8, .row_bytes = 20 };
    CHECK(cn_model_classify_pixels(ctx, m, &va, 5, rgba) == CN_OK);
    CHECK(same_preds(u8, rgba, 5));

    /* a PNG of those pixels, as a file and as bytes */
    char png_path[512];
    snprintf(png_path, sizeof png_path, "%s/img.png", dir);
    float planar[48];
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < 16; i++) planar[ch * 16 + i] = fx[i * 3 + ch];
    CHECK(cn_image_save_png(ctx, png_path, planar, 3, 4, 4) == CN_OK);
    CHECK(cn_model_classify_file(ctx, m, png_path, 5, file) == CN_OK);
    CHECK(same_preds(u8, file, 5));
    FILE *f = fopen(png_path, "rb");
    unsigned char bytes[4096];
    size_t n = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    CHECK(n > 8 && n < sizeof bytes);
    CHECK(cn_model_classify_encoded(ctx, m, bytes, n, "upload.png", 5, png) == CN_OK);
    CHECK(same_preds(u8, png, 5));

    /* the two steps apart: input, then probabilities, as predict does */
    float x[12], probs[3];
    CHECK(cn_model_input_pixels(ctx, m, &v, x) == CN_OK);
    CHECK(cn_model_probabilities(ctx, m, x, 1, probs) == CN_OK);
    for (int k = 0; k < 3; k++) CHECK_NEAR(probs[k], p[k], 1e-6);
    /* from the file, with what it decoded to (4x4 in colour, the net's input 2x2): the input of
     * cn_model_input_file, bit for bit, and of the pixels it holds */
    float xf[12], xi[12];
    int64_t sc = -1, sh = -1, sw = -1;
    CHECK(cn_model_input_file_info(ctx, m, png_path, xi, &sc, &sh, &sw) == CN_OK);
    CHECK(sc == 3 && sh == 4 && sw == 4);
    CHECK(cn_model_input_file(ctx, m, png_path, xf) == CN_OK);
    CHECK(memcmp(xf, xi, sizeof xf) == 0);
    for (int i = 0; i < 12; i++) CHECK_NEAR(xi[i], x[i], 1e-6);
    CHECK(cn_model_input_file_info(ctx, m, png_path, xi, NULL, NULL, NULL) == CN_OK);
    CHECK(cn_model_input_file_info(ctx, m, "/nonexistent/x.png", xi, &sc, &sh, &sw) == CN_E_IO);
    CHECK(sc == 0 && sh == 0 && sw == 0);
    CHECK_CONTAINS(cn_ctx_message(ctx), "/nonexistent/x.png: cannot open");

    /* errors: named, and the model still works after them */
    CHECK(cn_model_classify_encoded(ctx, m, bytes, 20, "upload.png", 1, png) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "upload.png: truncated or corrupt PNG");
    CHECK(cn_model_classify_encoded(ctx, m, "GIF89a", 6, NULL, 1, png) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "image: not a PNG or JPEG image");
    cn_image_view bad = v;
    bad.c = 5;
    CHECK(cn_model_classify_pixels(ctx, m, &bad, 1, png) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "5 channels");
    bad = v, bad.row_bytes = 11;
    CHECK(cn_model_classify_pixels(ctx, m, &bad, 1, png) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "rows of 11 bytes hold 4 pixels of 3 bytes");
    bad = vf, bad.row_bytes = 50;
    CHECK(cn_model_classify_pixels(ctx, m, &bad, 1, png) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "not whole floats");
    CHECK(cn_model_classify_pixels(ctx, m, &v, 0, png) == CN_E_ARG);
    CHECK(cn_model_classify_file(ctx, m, "/nonexistent/x.png", 1, png) == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), "/nonexistent/x.png: cannot open");
    CHECK(cn_model_classify_pixels(ctx, m, &v, 5, png) == CN_OK);
    CHECK(same_preds(u8, png, 5));
    cn_model_destroy(m);
    cn_model_destroy(NULL);
    cn_ctx_destroy(ctx);
}

/* Test-time augmentation, worked out here: the logits of each view averaged, then the softmax.
 * A view of the 2x2 input: mirrored (column X reads 1 - X), then moved by (dy, dx), a cell moved
 * in from outside holding a 0 pixel's normalised value, -mean / std. The four shifts and their
 * mirror images form a set whatever the direction conventions, so the mean is independent of
 * them. */
static void expected_tta(const unsigned char *px, int views, double p[3])
{
    static const int moves[5][2] = { { 0, 0 }, { 1, 0 }, { -1, 0 }, { 0, 1 }, { 0, -1 } };
    double x[12], xv[12], z[3] = { 0 };
    input_of(px, 3, x);
    for (int v = 0; v < views; v++) {
        int mirror = v % 2, dy = moves[v / 2][0], dx = moves[v / 2][1];
        for (int c = 0; c < 3; c++)
            for (int Y = 0; Y < 2; Y++)
                for (int X = 0; X < 2; X++) {
                    int sy = Y - dy, sx = X - dx;
                    int inside = sy >= 0 && sy < 2 && sx >= 0 && sx < 2;
                    xv[c * 4 + Y * 2 + X] = inside ? x[c * 4 + sy * 2 + (mirror ? 1 - sx : sx)] : -MEAN[c] / STD[c];
                }
        add_logits(xv, 3, z);
    }
    for (int k = 0; k < 3; k++) z[k] /= views;
    softmax3(z, p);
}

static void test_tta(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/rgb.safetensors", dir);
    cn_ctx *ctx;
    cn_model *m = open_model(path, &ctx);
    if (!m) return;
    unsigned char px[48];
    make_pixels(px, 3);
    px[5] = 250, px[30] = 0; /* not symmetric: the views differ */
    cn_image_view v = { .data = px, .h = 4, .w = 4, .c = 3, .format = CN_PIXELS_U8 };
    static const struct {
        cn_tta tta;
        int views;
    } cases[] = { { CN_TTA_FLIP, 2 }, { CN_TTA_FLIP_SHIFT, 10 }, { CN_TTA_NONE, 1 } };
    double plain[3];
    expected(px, 3, plain);
    for (int i = 0; i < 3; i++) {
        double p[3];
        expected_tta(px, cases[i].views, p);
        if (cases[i].views > 1) CHECK(fabs(p[0] - plain[0]) > 1e-3); /* the views changed something */
        CHECK(cn_model_set_tta(ctx, m, cases[i].tta) == CN_OK);
        cn_prediction preds[3];
        CHECK(cn_model_classify_pixels(ctx, m, &v, 3, preds) == CN_OK);
        check_preds(preds, 3, p, __LINE__);
        float x[12], probs[6]; /* two images at once: each its own views */
        CHECK(cn_model_input_pixels(ctx, m, &v, x) == CN_OK);
        float x2[24];
        memcpy(x2, x, sizeof x), memcpy(x2 + 12, x, sizeof x);
        CHECK(cn_model_probabilities(ctx, m, x2, 2, probs) == CN_OK);
        for (int k = 0; k < 3; k++) {
            CHECK_NEAR(probs[k], p[k], 1e-6);
            CHECK_NEAR(probs[3 + k], p[k], 1e-6);
        }
    }
    CHECK(cn_model_set_tta(ctx, m, (cn_tta)3) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "unknown test-time augmentation 3");
    CHECK(cn_model_set_tta(ctx, NULL, CN_TTA_FLIP) == CN_E_ARG);
    cn_model_destroy(m);
    cn_ctx_destroy(ctx);
}

static void test_gray_and_run_folder(void)
{
    /* a run folder: its model.safetensors */
    char run[512], path[600];
    snprintf(run, sizeof run, "%s/run", dir);
    CHECK(mkdir(run, 0755) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    write_model(path, 1);
    cn_ctx *ctx;
    cn_model *m = open_model(run, &ctx);
    if (!m) return;
    unsigned char px[48];
    make_pixels(px, 3);
    double p[3];
    expected(px, 1, p);
    cn_prediction preds[2];
    cn_image_view v = { .data = px, .h = 4, .w = 4, .c = 3, .format = CN_PIXELS_U8 };
    CHECK(cn_model_classify_pixels(ctx, m, &v, 2, preds) == CN_OK);
    check_preds(preds, 2, p, __LINE__);
    /* gray + alpha floats: R = G = B = g gives luma g, so the gray values' box averages */
    unsigned char grey_rgb[48];
    float ga[32];
    for (int i = 0; i < 16; i++) {
        unsigned char g = (unsigned char)(i * 13 + 40);
        grey_rgb[3 * i] = grey_rgb[3 * i + 1] = grey_rgb[3 * i + 2] = g;
        ga[2 * i] = (float)g / 255.0f, ga[2 * i + 1] = 0.5f;
    }
    expected(grey_rgb, 1, p);
    cn_image_view vg = { .data = ga, .h = 4, .w = 4, .c = 2, .format = CN_PIXELS_F32 };
    CHECK(cn_model_classify_pixels(ctx, m, &vg, 2, preds) == CN_OK);
    check_preds(preds, 2, p, __LINE__);
    cn_model_destroy(m);

    /* a checkpoint without the normalisation, and a folder without a checkpoint */
    snprintf(path, sizeof path, "%s/plain.safetensors", dir);
    cn_net *net;
    CHECK(cn_net_parse(ctx, "input 2x2x1; flatten; dense 2", 29, "-e", &net) == CN_OK);
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    CHECK(cn_checkpoint_write(ctx, path, net, NULL, NULL, 0) == CN_OK);
    cn_net_destroy(net);
    m = (cn_model *)1;
    CHECK(cn_model_load(ctx, path, &m) == CN_E_FORMAT && m == NULL);
    CHECK_CONTAINS(cn_ctx_message(ctx), "no input normalisation");
    CHECK(cn_model_load(ctx, dir, &m) == CN_E_IO && m == NULL);
    CHECK_CONTAINS(cn_ctx_message(ctx), "a folder without model.safetensors: not a run folder");
    cn_ctx_destroy(ctx);
}

/* A net whose output is a map (a U-Net's) loads, to be run or shown, but is not classified:
 * probabilities and classify say why instead of a softmax over 4x4x2 = 32 "classes". */
static void test_map_output_refused(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/map.safetensors", dir);
    cn_ctx *ctx;
    cn_net *net;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    const char *spec = "input 4x4x1\nconv 2 3x3 pad=1\n";
    CHECK(cn_net_parse(ctx, spec, strlen(spec), "map.cnn", &net) == CN_OK);
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    cn_kv meta[] = { { "norm_mean", "0.5,0,0,0" }, { "norm_std", "0.5,1,1,1" } };
    CHECK(cn_checkpoint_write(ctx, path, net, NULL, meta, 2) == CN_OK);
    cn_net_destroy(net);
    cn_model *m = NULL;
    CHECK(cn_model_load(ctx, path, &m) == CN_OK && m != NULL);
    if (!m) {
        cn_ctx_destroy(ctx);
        return;
    }
    CHECK(cn_model_classes(m) == 32);
    CHECK(cn_model_class_name(m, 0) == NULL); /* no names made for a map's values */
    float x[16] = { 0 }, probs[32];
    CHECK(cn_model_probabilities(ctx, m, x, 1, probs) == CN_E_SHAPE);
    CHECK(cn_model_probabilities(ctx, m, x, 1, NULL) == CN_E_SHAPE); /* the map said before the arguments */
    CHECK_CONTAINS(cn_ctx_message(ctx), "map.safetensors:spec:2:1: the net's output, conv1, is a map (4x4x2), not one score per class");
    unsigned char px[16] = { 0 };
    cn_image_view v = { .data = px, .h = 4, .w = 4, .c = 1, .format = CN_PIXELS_U8 };
    cn_prediction preds[1];
    CHECK(cn_model_classify_pixels(ctx, m, &v, 1, preds) == CN_E_SHAPE);
    CHECK_CONTAINS(cn_ctx_message(ctx), "end the net with 'globalavgpool'");
    /* the net itself still runs: its output is the map */
    CHECK(cn_net_forward(ctx, cn_model_net(m), x, 1, 0) == CN_OK);
    cn_model_destroy(m);
    cn_ctx_destroy(ctx);
}

/* Allocation n of load + classify (PNG bytes, a batch) fails, for every n: the call that met it
 * says CN_E_NOMEM, the ones before it worked, and every block is freed with the model. */
static void test_nomem_sweep(void)
{
    char path[512], png_path[512];
    snprintf(path, sizeof path, "%s/rgb.safetensors", dir);
    snprintf(png_path, sizeof png_path, "%s/img.png", dir);
    unsigned char bytes[4096], px[48];
    FILE *f = fopen(png_path, "rb");
    size_t n = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    CHECK(n > 8);
    make_pixels(px, 7);
    cn_image_view views[2] = { { .data = px, .h = 4, .w = 4, .c = 3, .format = CN_PIXELS_U8 },
                               { .data = px, .h = 4, .w = 4, .c = 3, .format = CN_PIXELS_U8 } };
    fa_sweep s;
    long rounds = 0;
    for (fa_sweep_start(&s); fa_sweep_next(&s, 5000); rounds++) {
        cn_model *m = NULL;
        cn_prediction p[2];
        cn_status st = cn_model_load(s.ctx, path, &m);
        if (!st) st = cn_model_classify_encoded(s.ctx, m, bytes, n, "img.png", 1, p);
        if (!st) st = cn_model_classify_batch(s.ctx, m, views, 2, 1, p);
        cn_prediction q[2];
        if (!st) st = cn_model_set_tta(s.ctx, m, CN_TTA_FLIP_SHIFT); /* the views' buffers */
        if (!st) st = cn_model_classify_batch(s.ctx, m, views, 2, 1, q);
        float xs[2 * 12];
        cn_status each[2];
        const char *two[2] = { png_path, png_path };
        if (!st) st = cn_model_input_files(s.ctx, m, two, 2, xs, NULL, each); /* one thread: a caller's allocator */
        if (!st) CHECK(each[0] == CN_OK && each[1] == CN_OK);
        int injected = fa_sweep_injected(&s);
        CHECK(injected ? st == CN_E_NOMEM : st == CN_OK);
        if (st == CN_E_NOMEM) CHECK(cn_ctx_message(s.ctx)[0] != 0);
        if (!injected)
            CHECK(p[0].index == p[1].index && p[0].probability == p[1].probability && q[0].index == q[1].index &&
                  q[0].probability == q[1].probability && q[0].probability != p[0].probability);
        cn_model_destroy(m);
        fa_sweep_end(&s);
        CHECK(s.fa.live == 0 && s.fa.bad_free == 0);
    }
    CHECK(s.done && rounds > 20);
}

/* A conv net big enough to run the real kernels, for batches and threads. */
static const char *CONV_SPEC = "input 16x16x3\nconv 8 3x3 pad=1\nrelu\nmaxpool 2x2\nconv 8 3x3\nrelu\nflatten\ndense 5\n";

static void write_conv_model(const char *path)
{
    cn_ctx *ctx;
    cn_net *net;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    CHECK(cn_net_parse(ctx, CONV_SPEC, strlen(CONV_SPEC), "conv.cnn", &net) == CN_OK);
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 5) == CN_OK);
    cn_kv meta[] = { { "norm_mean", "0.4,0.5,0.6,0" }, { "norm_std", "0.2,0.25,0.3,1" } };
    CHECK(cn_checkpoint_write(ctx, path, net, NULL, meta, 2) == CN_OK);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

#define N_IMAGES 70 /* more than CN_MODEL_BATCH: two forward passes, the second smaller */
static unsigned char images[N_IMAGES][20 * 24 * 3];

static void make_images(void)
{
    cn_rng rng;
    cn_rng_seed(&rng, 11);
    for (int i = 0; i < N_IMAGES; i++)
        for (size_t j = 0; j < sizeof images[i]; j++) images[i][j] = (unsigned char)cn_rng_below(&rng, 256);
}

static cn_image_view view(int i)
{
    return (cn_image_view){ .data = images[i], .h = 20, .w = 24, .c = 3, .format = CN_PIXELS_U8 };
}

static void test_batch(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/conv.safetensors", dir);
    write_conv_model(path);
    make_images();
    cn_ctx *ctx;
    cn_model *m = open_model(path, &ctx);
    if (!m) return;
    static cn_prediction one[N_IMAGES][5], batch[N_IMAGES][5];
    for (int i = 0; i < N_IMAGES; i++) {
        cn_image_view v = view(i);
        CHECK(cn_model_classify_pixels(ctx, m, &v, 5, one[i]) == CN_OK);
    }
    cn_image_view views[N_IMAGES];
    for (int i = 0; i < N_IMAGES; i++) views[i] = view(i);
    CHECK(cn_model_classify_batch(ctx, m, views, N_IMAGES, 5, &batch[0][0]) == CN_OK);
    CHECK(same_preds(&one[0][0], &batch[0][0], N_IMAGES * 5));
    /* the 5 probabilities of an image add up to 1, sorted */
    for (int i = 0; i < N_IMAGES; i++) {
        double s = 0;
        for (int t = 0; t < 5; t++) s += batch[i][t].probability;
        CHECK_NEAR(s, 1.0, 1e-5);
        for (int t = 1; t < 5; t++) CHECK(batch[i][t].probability <= batch[i][t - 1].probability);
        char digit[2] = { (char)('0' + batch[i][0].index), 0 };
        CHECK_STR(batch[i][0].name, digit); /* no class_names: the numbers */
    }
    /* with the views of flip-shift too: the batch (two forward passes a view) gives the bits of
     * one image at a time */
    CHECK(cn_model_set_tta(ctx, m, CN_TTA_FLIP_SHIFT) == CN_OK);
    for (int i = 0; i < N_IMAGES; i++) {
        cn_image_view v = view(i);
        CHECK(cn_model_classify_pixels(ctx, m, &v, 5, one[i]) == CN_OK);
    }
    CHECK(cn_model_classify_batch(ctx, m, views, N_IMAGES, 5, &batch[0][0]) == CN_OK);
    CHECK(same_preds(&one[0][0], &batch[0][0], N_IMAGES * 5));
    views[66].data = NULL;
    CHECK(cn_model_classify_batch(ctx, m, views, N_IMAGES, 5, &batch[0][0]) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "image 66: NULL pixels");
    cn_model_destroy(m);
    cn_ctx_destroy(ctx);
}

/* ---- separate models in separate threads ---- */

typedef struct {
    const char *path;
    int threads;        /* the kernels' threads in this thread (0: as they are) */
    cn_prediction preds[N_IMAGES][5];
    int ok;
} worker;

static void *work(void *arg)
{
    worker *wk = arg;
    cn_ctx *ctx = NULL;
    cn_model *m = NULL;
    int threads_ok = !wk->threads || cn_set_threads(wk->threads) == wk->threads; /* OpenMP's count: per thread */
    wk->ok = threads_ok && cn_ctx_create(NULL, &ctx) == CN_OK && cn_model_load(ctx, wk->path, &m) == CN_OK;
    for (int round = 0; wk->ok && round < 10; round++)
        for (int i = 0; wk->ok && i < N_IMAGES; i++) {
            cn_image_view v = view(i);
            cn_prediction p[5];
            wk->ok = cn_model_classify_pixels(ctx, m, &v, 5, p) == CN_OK;
            if (round == 0) memcpy(wk->preds[i], p, sizeof p);
            else wk->ok = wk->ok && same_preds(wk->preds[i], p, 5);
        }
    for (int i = 0; i < N_IMAGES; i++) /* the names die with the model; the indices say it all */
        for (int t = 0; t < 5; t++) wk->preds[i][t].name = NULL;
    cn_model_destroy(m);
    cn_ctx_destroy(ctx);
    return NULL;
}

static void test_threads(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/conv.safetensors", dir);
    make_images();
    /* the reference: one model, this thread alone */
    static worker alone, workers[4];
    alone.path = path;
    work(&alone);
    CHECK(alone.ok);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        workers[i].path = path;
        workers[i].threads = 1 + i % 2; /* half of them with kernels on a team of two */
        CHECK(pthread_create(&t[i], NULL, work, &workers[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        CHECK(pthread_join(t[i], NULL) == 0);
        CHECK(workers[i].ok);
        CHECK(same_preds(&workers[i].preds[0][0], &alone.preds[0][0], N_IMAGES * 5));
    }
}

static void setup(void) { test_tmpdir(dir, sizeof dir, "model"); }
static void teardown(void) { test_rmtree(dir); }

/* A checkpoint's "resize": its model makes inputs as its training images were made, whatever
 * its context's setting. 4x4 -> 2x2 with antialiasing: each axis weighs pixels 0..3 by 3/7 3/7
 * 1/7 0 (output 0) and 0 1/7 3/7 3/7 (output 1), the triangle filter stretched 2x (worked in
 * test_images.c); without the key, the plain bilinear 2x2 block means of input_of. */
static void test_resize_from_checkpoint(void)
{
    static const double wt[2][4] = { { 3 / 7.0, 3 / 7.0, 1 / 7.0, 0 }, { 0, 1 / 7.0, 3 / 7.0, 3 / 7.0 } };
    unsigned char px[48];
    make_pixels(px, 7);
    double want_aa[12], want_plain[12];
    input_of(px, 3, want_plain);
    for (int c = 0; c < 3; c++)
        for (int Y = 0; Y < 2; Y++)
            for (int X = 0; X < 2; X++) {
                double s = 0;
                for (int y = 0; y < 4; y++)
                    for (int x = 0; x < 4; x++) s += wt[Y][y] * wt[X][x] * px[(y * 4 + x) * 3 + c];
                want_aa[c * 4 + Y * 2 + X] = (s / 255 - MEAN[c]) / STD[c];
            }
    cn_image_view v = { .data = px, .h = 4, .w = 4, .c = 3, .format = CN_PIXELS_U8 };
    for (int k = 0; k < 2; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/resize%d.safetensors", dir, k);
        write_model_resized(path, 3, k ? NULL : "antialias");
        cn_ctx *ctx;
        cn_model *m = open_model(path, &ctx);
        if (!m) return;
        cn_ctx_set_resize(ctx, k ? CN_RESIZE_ANTIALIAS : CN_RESIZE_BILINEAR); /* not the model's business */
        CHECK_INT(cn_checkpoint_resize(cn_model_checkpoint(m)), k ? CN_RESIZE_BILINEAR : CN_RESIZE_ANTIALIAS);
        float x[12], xb[12];
        CHECK(cn_model_input_pixels(ctx, m, &v, x) == CN_OK);
        for (int i = 0; i < 12; i++) CHECK_NEAR(x[i], (k ? want_plain : want_aa)[i], 1e-5);
        cn_prediction pred;
        CHECK(cn_model_classify_batch(ctx, m, &v, 1, 1, &pred) == CN_OK); /* the batch path resizes alike */
        double p[3], z[3] = { 0 };
        add_logits(k ? want_plain : want_aa, 3, z);
        softmax3(z, p);
        CHECK_NEAR(pred.probability, fmax(p[0], fmax(p[1], p[2])), 1e-5);
        char png[512];
        snprintf(png, sizeof png, "%s/resize.png", dir);
        float planar[48];
        for (int ch = 0; ch < 3; ch++)
            for (int i = 0; i < 16; i++) planar[ch * 16 + i] = (float)px[i * 3 + ch] / 255.0f;
        CHECK(cn_image_save_png(ctx, png, planar, 3, 4, 4) == CN_OK);
        CHECK(cn_model_input_file(ctx, m, png, xb) == CN_OK);
        CHECK(memcmp(x, xb, sizeof x) == 0);
        cn_model_destroy(m);
        cn_ctx_destroy(ctx);
    }
}

/* n files at once, on 1 to 3 threads: each image's floats as cn_model_input_file_info gives
 * them alone, bit for bit, its size, and a file that does not decode said by its status alone */
static void test_input_files(void)
{
    char path[512], files[5][512];
    snprintf(path, sizeof path, "%s/files.safetensors", dir);
    write_model(path, 3);
    cn_ctx *ctx;
    cn_model *m = open_model(path, &ctx);
    if (!m) return;
    const int size[5] = { 4, 2, 0, 6, 3 }; /* 0: not an image */
    for (int i = 0; i < 5; i++) {
        snprintf(files[i], sizeof files[i], "%s/in%d.png", dir, i);
        if (!size[i]) {
            FILE *f = fopen(files[i], "wb");
            if (f) fputs("not a png", f), fclose(f);
            continue;
        }
        float px[3 * 36];
        for (int j = 0; j < 3 * size[i] * size[i]; j++) px[j] = (float)((j * 37 + i * 11) % 256) / 255.0f;
        CHECK(cn_image_save_png(ctx, files[i], px, 3, size[i], size[i]) == CN_OK);
    }
    const char *paths[5] = { files[0], files[1], files[2], files[3], files[4] };
    float alone[5][12], x[5 * 12];
    for (int i = 0; i < 5; i++)
        if (size[i]) CHECK(cn_model_input_file(ctx, m, files[i], alone[i]) == CN_OK);
    int was = cn_set_threads(0);
    for (int t = 1; t <= 3; t++) {
        int64_t src[15];
        cn_status st[5];
        memset(x, 0, sizeof x);
        cn_set_threads(t);
        CHECK(cn_model_input_files(ctx, m, paths, 5, x, t == 3 ? NULL : src, st) == CN_OK);
        CHECK_STR(cn_ctx_message(ctx), ""); /* the failure is status[2]'s */
        for (int i = 0; i < 5; i++) {
            CHECK_INT(st[i], size[i] ? CN_OK : CN_E_FORMAT);
            if (size[i]) CHECK(memcmp(x + 12 * i, alone[i], sizeof alone[i]) == 0);
            if (t < 3) CHECK(src[3 * i] == (size[i] ? 3 : 0) && src[3 * i + 1] == size[i] && src[3 * i + 2] == size[i]);
        }
    }
    cn_set_threads(was);
    CHECK(cn_model_input_files(ctx, m, paths, -1, x, NULL, NULL) == CN_E_ARG);
    cn_model_destroy(m);
    cn_ctx_destroy(ctx);
}

static const test_case cases[] = {
    { "setup", setup },
    { "pixels, float pixels, RGBA, PNG bytes and file: the hand-computed probabilities", test_pixels_bytes_file },
    { "every allocation of load and classify failed in turn: CN_E_NOMEM, nothing leaked", test_nomem_sweep },
    { "test-time augmentation: the mean of the views' logits, worked out here", test_tta },
    { "gray input from colour pixels and from gray + alpha floats, a run folder, checkpoints refused",
      test_gray_and_run_folder },
    { "a net whose output is a map loads, but probabilities and classify refuse it", test_map_output_refused },
    { "a batch of 70 equals one image at a time, bit for bit", test_batch },
    { "the checkpoint's resize key: antialiased inputs worked by hand, bilinear without it", test_resize_from_checkpoint },
    { "n files at once on 1 to 3 threads: each as alone, bit for bit; a broken one by its status", test_input_files },
    { "four models in four threads: the bits of one alone", test_threads },
    { "teardown", teardown },
};

TEST_MAIN(cases)
