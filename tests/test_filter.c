/* test_filter.c — `convnet filter`'s path through the library: a PNG written with
 * cn_image_save_png, its channels and size from cn_image_info, the pixels loaded unscaled with
 * cn_image_load (back to 0..255), cn_image_filter, and the clamped result written and read back
 * as a PNG. Every expected number is worked by hand in the comments: seed 001's vertical edge,
 * seed 002's edge kernel on a solid fill, sharpening with clamping, pad=same and stride 2. */
#include <math.h>
#include <stdlib.h>

#include <png.h>

#include "harness.h"
#include "convnet.h"

static cn_ctx *ctx;
static char dir[64];

static void setup(void)
{
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    test_tmpdir(dir, sizeof dir, "test_filter");
}

static void teardown(void)
{
    test_rmtree(dir);
    cn_ctx_destroy(ctx);
}

static const char *at(const char *name) { return test_path(dir, name); }

/* pixels (c, h, w) 0..255 -> a PNG */
static void save_pixels(const char *path, const float *px, int64_t c, int64_t h, int64_t w)
{
    float img[3 * 16 * 16];
    CHECK(c * h * w <= 3 * 16 * 16);
    for (int64_t i = 0; i < c * h * w; i++) img[i] = px[i] / 255.0f;
    CHECK(cn_image_save_png(ctx, path, img, c, h, w) == CN_OK);
}

/* A PNG -> pixels 0..255 at its own size, as the command reads it; c, h, w as the file has them. */
static void load_pixels(const char *path, float *px, int64_t cap, int64_t *c, int64_t *h, int64_t *w)
{
    CHECK(cn_image_info(ctx, path, c, h, w) == CN_OK);
    CHECK(*c * *h * *w <= cap);
    if (*c * *h * *w > cap) return;
    CHECK(cn_image_load(ctx, path, *c, *h, *w, px) == CN_OK);
    for (int64_t i = 0; i < *c * *h * *w; i++) px[i] = rintf(px[i] * 255.0f);
}

/* The command's pipeline on a PNG: load, filter, clamp to 0..255, write; then the written PNG
 * read back into out (its pixels); raw gets the values before clamping. */
static void filter_png(const char *in, const char *out_png, const float *k, int64_t kh, int64_t kw, int64_t stride,
                       int64_t pad, float *raw, float *out, int64_t *oh, int64_t *ow)
{
    float x[3 * 16 * 16], y[3 * 16 * 16];
    int64_t c, h, w;
    load_pixels(in, x, 3 * 16 * 16, &c, &h, &w);
    CHECK(cn_image_filter(ctx, x, c, h, w, k, kh, kw, stride, pad, NULL, oh, ow) == CN_OK);
    CHECK(c * *oh * *ow <= 3 * 16 * 16);
    CHECK(cn_image_filter(ctx, x, c, h, w, k, kh, kw, stride, pad, y, oh, ow) == CN_OK);
    for (int64_t i = 0; i < c * *oh * *ow; i++) {
        raw[i] = y[i];
        y[i] = y[i] < 0 ? 0 : y[i] > 255 ? 255 : y[i];
    }
    save_pixels(out_png, y, c, *oh, *ow);
    int64_t c2, h2, w2;
    load_pixels(out_png, out, 3 * 16 * 16, &c2, &h2, &w2);
    CHECK_INT(c2, c);
    CHECK_INT(h2, *oh);
    CHECK_INT(w2, *ow);
}

static void test_seed001_vertical_edge(void)
{
    /* worksheet 8 of seed 001: a 6x6 image, 10 in the left three columns and 0 in the right
     * three, with the vertical-edge kernel 1 0 -1 (each row). A 3x3 window over columns j..j+2
     * gives 3 * (x[j] - x[j+2]): columns 0..2: 3*(10 - 10) = 0; 1..3: 3*(10 - 0) = 30;
     * 2..4: 3*(10 - 0) = 30; 3..5: 3*(0 - 0) = 0. Output floor((6 - 3)/1) + 1 = 4: rows 0 30 30 0. */
    float img[36], raw[16], px[3 * 16 * 16];
    for (int i = 0; i < 36; i++) img[i] = (i % 6) < 3 ? 10.0f : 0.0f;
    save_pixels(at("six.png"), img, 1, 6, 6);
    const float k[] = { 1, 0, -1, 1, 0, -1, 1, 0, -1 };
    int64_t oh, ow;
    filter_png(at("six.png"), at("six_edge.png"), k, 3, 3, 1, 0, raw, px, &oh, &ow);
    CHECK_INT(oh, 4);
    CHECK_INT(ow, 4);
    const float row[] = { 0, 30, 30, 0 };
    for (int i = 0; i < 16; i++) {
        CHECK_NEAR(raw[i], row[i % 4], 0);
        CHECK_NEAR(px[i], row[i % 4], 0); /* all in 0..255: the PNG holds them as they are */
    }
}

static void test_edge_on_solid(void)
{
    /* seed 002: the edge kernel (-1 around, 8 in the middle) sums to 0, so every window of a
     * solid fill gives 8v - 8v = 0, in each channel: a 5x7 RGB fill (200, 100, 37) -> 3x5x3 zeros */
    float img[3 * 5 * 7], raw[3 * 16 * 16], px[3 * 16 * 16];
    const float fill[3] = { 200, 100, 37 };
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < 35; i++) img[ch * 35 + i] = fill[ch];
    save_pixels(at("solid.png"), img, 3, 5, 7);
    const float edge[] = { -1, -1, -1, -1, 8, -1, -1, -1, -1 };
    int64_t oh, ow;
    filter_png(at("solid.png"), at("solid_edge.png"), edge, 3, 3, 1, 0, raw, px, &oh, &ow);
    CHECK_INT(oh, 3);
    CHECK_INT(ow, 5);
    for (int i = 0; i < 3 * 3 * 5; i++) {
        CHECK_NEAR(raw[i], 0, 0);
        CHECK_NEAR(px[i], 0, 0);
    }
}

/*   0   0   0   0
 *   0 100  50   0
 *   0  50 200   0
 *   0   0   0   0 */
static const float bump[16] = { 0, 0, 0, 0, 0, 100, 50, 0, 0, 50, 200, 0, 0, 0, 0, 0 };

static void test_sharpen(void)
{
    /* sharpen 0 -1 0 / -1 5 -1 / 0 -1 0: 5*centre - (up + left + right + down)
     *   (1,1): 5*100 - (0 + 0 + 50 + 50)  = 400 -> 255 in the PNG
     *   (1,2): 5*50 - (0 + 100 + 0 + 200) = -50 -> 0
     *   (2,1): 5*50 - (100 + 0 + 200 + 0) = -50 -> 0
     *   (2,2): 5*200 - (50 + 50 + 0 + 0)  = 900 -> 255 */
    save_pixels(at("bump.png"), bump, 1, 4, 4);
    const float sharpen[] = { 0, -1, 0, -1, 5, -1, 0, -1, 0 };
    float raw[3 * 16 * 16], px[3 * 16 * 16];
    int64_t oh, ow;
    filter_png(at("bump.png"), at("bump_sharp.png"), sharpen, 3, 3, 1, 0, raw, px, &oh, &ow);
    CHECK_INT(oh, 2);
    CHECK_INT(ow, 2);
    const float want_raw[] = { 400, -50, -50, 900 }, want_px[] = { 255, 0, 0, 255 };
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(raw[i], want_raw[i], 0);
        CHECK_NEAR(px[i], want_px[i], 0);
    }
    /* pad 1 keeps 4x4; the corner (0,0) sees 0 and the zero padding: 5*0 - 0 = 0; (0,1) has
     * 100 below it: 5*0 - (0 + 0 + 0 + 100) = -100; the inside as above */
    filter_png(at("bump.png"), at("bump_sharp1.png"), sharpen, 3, 3, 1, 1, raw, px, &oh, &ow);
    CHECK_INT(oh, 4);
    CHECK_INT(ow, 4);
    CHECK_NEAR(raw[0], 0, 0);
    CHECK_NEAR(raw[1], -100, 0);
    CHECK_NEAR(raw[5], 400, 0);
    CHECK_NEAR(raw[10], 900, 0);
    /* stride 2, pad=same: ceil(4/2) = 2; padding (2-1)*2 + 3 - 4 = 1 in all, 0 before and 1
     * after, so the windows are centred on (1,1), (1,3), (3,1), (3,3):
     *   (1,1): 400;  (1,3): 5*0 - (0 + 50 + pad + 0) = -50;
     *   (3,1): 5*0 - (50 + 0 + 0 + pad) = -50;  (3,3): 5*0 - (0 + 0 + pad + pad) = 0 */
    filter_png(at("bump.png"), at("bump_sharp2.png"), sharpen, 3, 3, 2, CN_FILTER_PAD_SAME, raw, px, &oh, &ow);
    CHECK_INT(oh, 2);
    CHECK_INT(ow, 2);
    const float want_same[] = { 400, -50, -50, 0 };
    for (int i = 0; i < 4; i++) CHECK_NEAR(raw[i], want_same[i], 0);
}

static void test_even_kernel_same(void)
{
    /* a 2x2 kernel 1 2 / 3 4 with pad=same, stride 1: ceil(4/1) = 4; padding 3 + 2 - 4 = 1, all
     * after (bottom and right), as the conv layer's pad=same puts the odd one.
     *   (1,1): 1*100 + 2*50 + 3*50 + 4*200 = 1150;  (2,2): 1*200 + 0 + 0 + 0 = 200;
     *   (3,3): 1*0 + padding = 0;  (0,0): 1*0 + 2*0 + 3*0 + 4*100 = 400 */
    save_pixels(at("bump2.png"), bump, 1, 4, 4);
    const float k[] = { 1, 2, 3, 4 };
    float raw[3 * 16 * 16], px[3 * 16 * 16];
    int64_t oh, ow;
    filter_png(at("bump2.png"), at("bump_k2.png"), k, 2, 2, 1, CN_FILTER_PAD_SAME, raw, px, &oh, &ow);
    CHECK_INT(oh, 4);
    CHECK_INT(ow, 4);
    CHECK_NEAR(raw[5], 1150, 0);
    CHECK_NEAR(raw[10], 200, 0);
    CHECK_NEAR(raw[15], 0, 0);
    CHECK_NEAR(raw[0], 400, 0);
    CHECK_NEAR(px[5], 255, 0);
    CHECK_NEAR(px[10], 200, 0);
}

static void test_sizes_and_errors(void)
{
    float x[49] = { 0 }, k[25] = { 0 };
    int64_t oh, ow;
    /* floor((7 + 2*1 - 3)/2) + 1 = 4;  floor((7 + 0 - 5)/2) + 1 = 2 */
    CHECK(cn_image_filter(ctx, x, 1, 7, 7, k, 3, 3, 2, 1, NULL, &oh, &ow) == CN_OK);
    CHECK_INT(oh, 4);
    CHECK(cn_image_filter(ctx, x, 1, 7, 7, k, 5, 5, 2, 0, NULL, &oh, &ow) == CN_OK);
    CHECK_INT(ow, 2);
    /* 5x5 on 3x3 without padding does not fit; with pad 1 it does: floor((3 + 2 - 5)/1) + 1 = 1 */
    CHECK(cn_image_filter(ctx, x, 1, 3, 3, k, 5, 5, 1, 0, NULL, &oh, &ow) == CN_E_SHAPE);
    CHECK_CONTAINS(cn_ctx_message(ctx), "kernel 5x5 larger than the padded image 3x3");
    CHECK_INT(oh, 0);
    CHECK(cn_image_filter(ctx, x, 1, 3, 3, k, 5, 5, 1, 1, NULL, &oh, &ow) == CN_OK);
    CHECK_INT(oh, 1);
    CHECK(cn_image_filter(ctx, x, 1, 3, 3, k, 3, 3, 0, 0, NULL, &oh, &ow) == CN_E_ARG);
    CHECK(cn_image_filter(ctx, x, 1, 3, 3, k, 3, 3, 1, -2, NULL, &oh, &ow) == CN_E_ARG);
    CHECK(cn_image_filter(ctx, x, 0, 3, 3, k, 3, 3, 1, 0, NULL, &oh, &ow) == CN_E_ARG);

    int64_t c = 9, h = 9, w = 9;
    CHECK(cn_image_info(ctx, at("missing.png"), &c, &h, &w) == CN_E_IO);
    CHECK(c == 0 && h == 0 && w == 0);
    FILE *f = fopen(at("text.png"), "wb");
    CHECK(f != NULL);
    if (f) fputs("not an image", f), fclose(f);
    CHECK(cn_image_info(ctx, at("text.png"), &c, &h, &w) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "not a PNG or JPEG");
}

/* A 2x3 PNG with an alpha channel, written with libpng (cn_image_save_png writes none). */
static void write_alpha_png(const char *path, int color, const unsigned char *pix, int channels)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        test_fail(__FILE__, __LINE__, "libpng failed writing %s", path);
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, 3, 2, 8, color, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < 2; y++) png_write_row(png, (png_bytep)(pix + y * 3 * channels));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static void test_round_trip(void)
{
    /* gray 3x5 and RGB 2x4 with values spread over 0..255: saved, then read at the size and
     * channels cn_image_info reports, give the same values (exactly k/255 as floats) */
    float g[15], rgb[24], back[3 * 16 * 16];
    for (int i = 0; i < 15; i++) g[i] = (float)(i * 17); /* 0, 17, ..., 238 */
    for (int i = 0; i < 24; i++) rgb[i] = (float)((i * 53 + 7) % 256);
    int64_t c, h, w;
    save_pixels(at("g.png"), g, 1, 3, 5);
    CHECK(cn_image_info(ctx, at("g.png"), &c, &h, &w) == CN_OK);
    CHECK(c == 1 && h == 3 && w == 5);
    CHECK(cn_image_load(ctx, at("g.png"), c, h, w, back) == CN_OK);
    for (int i = 0; i < 15; i++) CHECK_NEAR(back[i], g[i] / 255.0f, 0);
    save_pixels(at("rgb.png"), rgb, 3, 2, 4);
    load_pixels(at("rgb.png"), back, 3 * 16 * 16, &c, &h, &w);
    CHECK(c == 3 && h == 2 && w == 4);
    for (int i = 0; i < 24; i++) CHECK_NEAR(back[i], rgb[i], 0);
    /* the identity kernel with pad 1 gives the image back, channel by channel */
    const float id[] = { 0, 0, 0, 0, 1, 0, 0, 0, 0 };
    float raw[3 * 16 * 16], px[3 * 16 * 16];
    int64_t oh, ow;
    filter_png(at("rgb.png"), at("rgb_id.png"), id, 3, 3, 1, 1, raw, px, &oh, &ow);
    CHECK(oh == 2 && ow == 4);
    for (int i = 0; i < 24; i++) CHECK_NEAR(px[i], rgb[i], 0);
    /* alpha is dropped: gray + alpha has 1 channel, RGBA 3 */
    const unsigned char ga[12] = { 10, 255, 20, 0, 30, 128, 40, 255, 50, 1, 60, 2 };
    unsigned char rgba[24];
    for (int i = 0; i < 24; i++) rgba[i] = (unsigned char)(i * 10);
    write_alpha_png(at("ga.png"), PNG_COLOR_TYPE_GA, ga, 2);
    write_alpha_png(at("rgba.png"), PNG_COLOR_TYPE_RGBA, rgba, 4);
    load_pixels(at("ga.png"), back, 3 * 16 * 16, &c, &h, &w);
    CHECK(c == 1 && h == 2 && w == 3);
    for (int i = 0; i < 6; i++) CHECK_NEAR(back[i], 10 * (i + 1), 0);
    load_pixels(at("rgba.png"), back, 3 * 16 * 16, &c, &h, &w);
    CHECK(c == 3 && h == 2 && w == 3);
    /* channel ch of pixel p was byte 4p + ch: (4p + ch) * 10 */
    for (int ch = 0; ch < 3; ch++)
        for (int p = 0; p < 6; p++) CHECK_NEAR(back[ch * 6 + p], (4 * p + ch) * 10, 0);
}

static const test_case cases[] = {
    { "setup", setup },
    { "seed 001: 6x6 and the vertical edge -> rows 0 30 30 0", test_seed001_vertical_edge },
    { "seed 002: the edge kernel on a solid fill -> 0", test_edge_on_solid },
    { "sharpen by hand: clamping, pad 1, stride 2 with pad=same", test_sharpen },
    { "a 2x2 kernel with pad=same pads after", test_even_kernel_same },
    { "output sizes and errors", test_sizes_and_errors },
    { "PNG round trip at the native size; alpha dropped", test_round_trip },
    { "teardown", teardown },
};
TEST_MAIN(cases)
