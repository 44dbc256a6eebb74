/* test_images.c — image files, image folders and the data check.
 * PNGs are written with cn_image_save_png and, for what it cannot write (palette, 16-bit,
 * 1-bit, gray + alpha, RGBA, interlaced), with libpng directly; JPEGs with libjpeg at
 * quality 100 without chroma subsampling. Decoded values, bilinear resizing worked by hand,
 * gray <-> RGB conversion, the error message of each broken file, image folders (class order,
 * counts, labels, failures), cn_data_check on a folder with broken, empty and duplicate files,
 * and on the real Fashion-MNIST. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>

#include "fail_alloc.h"
#include "harness.h"
#include "convnet.h"

static cn_ctx *ctx;
static char dir[64];

static void setup(void)
{
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    test_tmpdir(dir, sizeof dir, "test_images");
}

static void teardown(void)
{
    test_rmtree(dir);
    cn_ctx_destroy(ctx);
}

static const char *at(const char *name) { return test_path(dir, name); }

static void mkdir_at(const char *name) { CHECK(mkdir(at(name), 0755) == 0); }

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    if (n) CHECK(fwrite(b, 1, n, f) == n);
    fclose(f);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* the first n bytes of src copied to dst */
static void truncate_copy(const char *src, const char *dst, long n)
{
    FILE *f = fopen(src, "rb");
    CHECK(f != NULL);
    if (!f) return;
    unsigned char buf[1 << 16];
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK((long)got >= n);
    write_bytes(dst, buf, (size_t)n);
}

/* A PNG written with libpng: rows of packed samples as the color type and depth want
 * (16-bit samples big-endian). palette/trans may be NULL. */
static void write_png(const char *path, int w, int h, int color, int depth, int interlace, const unsigned char *pix,
                      const png_color *palette, int n_palette, const unsigned char *trans, int n_trans)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        test_fail(__FILE__, __LINE__, "libpng failed writing %s", path);
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, n_palette);
    if (trans) png_set_tRNS(png, info, trans, n_trans, NULL);
    png_write_info(png, info);
    int channels = color == PNG_COLOR_TYPE_RGB ? 3 : color == PNG_COLOR_TYPE_RGBA ? 4 : color == PNG_COLOR_TYPE_GA ? 2 : 1;
    size_t rowbytes = ((size_t)w * channels * depth + 7) / 8;
    int passes = interlace ? png_set_interlace_handling(png) : 1;
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < h; y++) png_write_row(png, (png_bytep)(pix + (size_t)y * rowbytes));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* A JPEG at quality 100, 4:4:4, from interleaved samples (components 1, 3, or 4 = Adobe CMYK). */
static void write_jpeg(const char *path, int w, int h, int comps, const unsigned char *pix)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h, c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    for (int i = 0; i < c.num_components; i++) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

static cn_status load(const char *path, int64_t c, int64_t h, int64_t w, float *out)
{
    cn_status st = cn_image_load(ctx, path, c, h, w, out);
    if (st) test_fail(__FILE__, __LINE__, "cn_image_load(%s): %s", path, cn_ctx_message(ctx));
    return st;
}

/* ---- decoding ---------------------------------------------------------------------------------- */

static void test_png_round_trip(void)
{
    /* gray 2x3: clamped to [0, 1], then round(v * 255) */
    const float gray[6] = { 0.0f, 0.2f, 1.0f, 0.5f, -1.0f, 2.0f };
    const float want_gray[6] = { 0, 51, 255, 128 /* 127.5 rounds up */, 0, 255 };
    CHECK(cn_image_save_png(ctx, at("g.png"), gray, 1, 2, 3) == CN_OK);
    float out[3 * 2 * 3];
    if (load(at("g.png"), 1, 2, 3, out) == CN_OK)
        for (int i = 0; i < 6; i++) CHECK_NEAR(out[i], want_gray[i] / 255.0f, 1e-7);
    /* gray to RGB: replicated */
    if (load(at("g.png"), 3, 2, 3, out) == CN_OK)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 6; i++) CHECK_NEAR(out[c * 6 + i], want_gray[i] / 255.0f, 1e-7);

    /* RGB 1x4, planar: red, green, blue, white */
    const float rgb[12] = { 1, 0, 0, 1, /* R */ 0, 1, 0, 1, /* G */ 0, 0, 1, 1 /* B */ };
    CHECK(cn_image_save_png(ctx, at("rgb.png"), rgb, 3, 1, 4) == CN_OK);
    if (load(at("rgb.png"), 3, 1, 4, out) == CN_OK)
        for (int i = 0; i < 12; i++) CHECK_NEAR(out[i], rgb[i], 0);
    /* RGB to gray: luma 0.299 R + 0.587 G + 0.114 B */
    if (load(at("rgb.png"), 1, 1, 4, out) == CN_OK) {
        CHECK_NEAR(out[0], 0.299, 1e-6);
        CHECK_NEAR(out[1], 0.587, 1e-6);
        CHECK_NEAR(out[2], 0.114, 1e-6);
        CHECK_NEAR(out[3], 1.0, 1e-6);
    }
    /* (200, 100, 50) -> (0.299*200 + 0.587*100 + 0.114*50) / 255 = 124.2 / 255 */
    const float one[3] = { 200 / 255.0f, 100 / 255.0f, 50 / 255.0f };
    CHECK(cn_image_save_png(ctx, at("one.png"), one, 3, 1, 1) == CN_OK);
    if (load(at("one.png"), 1, 1, 1, out) == CN_OK) CHECK_NEAR(out[0], 124.2 / 255.0, 1e-6);
}

static void test_png_formats(void)
{
    float out[3 * 4];
    /* palette, 8-bit indices, with a tRNS entry (alpha dropped) */
    const png_color pal[3] = { { 255, 0, 0 }, { 0, 128, 255 }, { 10, 20, 30 } };
    const unsigned char trans[1] = { 0 };
    const unsigned char idx8[4] = { 2, 0, 1, 2 };
    write_png(at("pal.png"), 4, 1, PNG_COLOR_TYPE_PALETTE, 8, 0, idx8, pal, 3, trans, 1);
    if (load(at("pal.png"), 3, 1, 4, out) == CN_OK) {
        const int want[12] = { 10, 255, 0, 10, 20, 0, 128, 20, 30, 0, 255, 30 };
        for (int i = 0; i < 12; i++) CHECK_NEAR(out[i], want[i] / 255.0, 1e-7);
    }
    /* palette with 2-bit indices packed 4 to a byte: 1, 2, 0, 1 */
    const unsigned char idx2[1] = { 1 << 6 | 2 << 4 | 0 << 2 | 1 };
    write_png(at("pal2.png"), 4, 1, PNG_COLOR_TYPE_PALETTE, 2, 0, idx2, pal, 3, NULL, 0);
    if (load(at("pal2.png"), 3, 1, 4, out) == CN_OK) {
        const int want[12] = { 0, 10, 255, 0, 128, 20, 0, 128, 255, 30, 0, 255 };
        for (int i = 0; i < 12; i++) CHECK_NEAR(out[i], want[i] / 255.0, 1e-7);
    }
    /* 16-bit gray, big-endian: 0x0000, 0x8080 (= 128 * 257), 0xffff, 0x3333 (= 51 * 257) */
    const unsigned char g16[8] = { 0x00, 0x00, 0x80, 0x80, 0xff, 0xff, 0x33, 0x33 };
    write_png(at("g16.png"), 4, 1, PNG_COLOR_TYPE_GRAY, 16, 0, g16, NULL, 0, NULL, 0);
    if (load(at("g16.png"), 1, 1, 4, out) == CN_OK) {
        const int want[4] = { 0, 128, 255, 51 };
        for (int i = 0; i < 4; i++) CHECK_NEAR(out[i], want[i] / 255.0, 1e-7);
    }
    /* 1-bit gray: 1 0 1 1 -> 255 0 255 255 */
    const unsigned char g1[1] = { 0xb0 };
    write_png(at("g1.png"), 4, 1, PNG_COLOR_TYPE_GRAY, 1, 0, g1, NULL, 0, NULL, 0);
    if (load(at("g1.png"), 1, 1, 4, out) == CN_OK) {
        const int want[4] = { 255, 0, 255, 255 };
        for (int i = 0; i < 4; i++) CHECK_NEAR(out[i], want[i] / 255.0, 1e-7);
    }
    /* gray + alpha: the alpha is dropped, not blended */
    const unsigned char ga[8] = { 10, 0, 20, 255, 30, 128, 40, 7 };
    write_png(at("ga.png"), 4, 1, PNG_COLOR_TYPE_GA, 8, 0, ga, NULL, 0, NULL, 0);
    if (load(at("ga.png"), 1, 1, 4, out) == CN_OK) {
        const int want[4] = { 10, 20, 30, 40 };
        for (int i = 0; i < 4; i++) CHECK_NEAR(out[i], want[i] / 255.0, 1e-7);
    }
    /* RGBA, 2 pixels; and as gray: luma of the RGB */
    const unsigned char rgba[8] = { 255, 0, 0, 0, 0, 0, 255, 99 };
    write_png(at("rgba.png"), 2, 1, PNG_COLOR_TYPE_RGBA, 8, 0, rgba, NULL, 0, NULL, 0);
    if (load(at("rgba.png"), 3, 1, 2, out) == CN_OK) {
        const int want[6] = { 255, 0, 0, 0, 0, 255 };
        for (int i = 0; i < 6; i++) CHECK_NEAR(out[i], want[i] / 255.0, 1e-7);
    }
    if (load(at("rgba.png"), 1, 1, 2, out) == CN_OK) {
        CHECK_NEAR(out[0], 0.299, 1e-6);
        CHECK_NEAR(out[1], 0.114, 1e-6);
    }
    /* 16-bit RGB, Adam7-interlaced, 3x3: pixel i has R = 0x1010 * i (-> 16 i), G = 0xffff, B = 0 */
    unsigned char rgb16[9 * 6];
    for (int i = 0; i < 9; i++) {
        unsigned v = 0x1010u * (unsigned)i;
        unsigned char px[6] = { (unsigned char)(v >> 8), (unsigned char)v, 0xff, 0xff, 0, 0 };
        memcpy(rgb16 + 6 * i, px, 6);
    }
    write_png(at("rgb16i.png"), 3, 3, PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_ADAM7, rgb16, NULL, 0, NULL, 0);
    float o9[27];
    if (load(at("rgb16i.png"), 3, 3, 3, o9) == CN_OK) {
        for (int i = 0; i < 9; i++) {
            CHECK_NEAR(o9[i], 16 * i / 255.0, 1e-7);
            CHECK_NEAR(o9[9 + i], 1.0, 1e-7);
            CHECK_NEAR(o9[18 + i], 0.0, 1e-7);
        }
    }
}

static void test_jpeg(void)
{
    /* 16x8 RGB: the left 8x8 block (200, 100, 50), the right one (20, 240, 130); uniform
     * blocks without subsampling decode within a level or two at quality 100 */
    unsigned char pix[8 * 16 * 3];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 16; x++) {
            unsigned char *p = pix + (y * 16 + x) * 3;
            p[0] = x < 8 ? 200 : 20, p[1] = x < 8 ? 100 : 240, p[2] = x < 8 ? 50 : 130;
        }
    write_jpeg(at("rgb.jpg"), 16, 8, 3, pix);
    float out[3 * 8 * 16];
    const double tol = 3 / 255.0;
    if (load(at("rgb.jpg"), 3, 8, 16, out) == CN_OK) {
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 8 * 16; i++) CHECK_NEAR(out[c * 128 + i], pix[i * 3 + c] / 255.0, tol);
    }
    if (load(at("rgb.jpg"), 1, 8, 16, out) == CN_OK) {
        CHECK_NEAR(out[0], 124.2 / 255, tol);                                  /* 0.299*200 + 0.587*100 + 0.114*50 */
        CHECK_NEAR(out[15], (0.299 * 20 + 0.587 * 240 + 0.114 * 130) / 255, tol); /* 161.68 */
    }
    /* a grayscale JPEG: a horizontal ramp 0, 16, ..., 240 on 8 rows, to 3 channels */
    unsigned char g[8 * 16];
    for (int i = 0; i < 8 * 16; i++) g[i] = (unsigned char)(16 * (i % 16));
    write_jpeg(at("gray.jpg"), 16, 8, 1, g);
    if (load(at("gray.jpg"), 3, 8, 16, out) == CN_OK) {
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 8 * 16; i++) CHECK_NEAR(out[c * 128 + i], g[i] / 255.0, 4 / 255.0);
    }
    /* Adobe CMYK (inverted, as Photoshop writes it): (C, M, Y, K) = (255, 128, 0, 255) is
     * R = C*K/255 = 255, G = 128, B = 0 */
    unsigned char cmyk[8 * 8 * 4];
    for (int i = 0; i < 64; i++) cmyk[4 * i] = 255, cmyk[4 * i + 1] = 128, cmyk[4 * i + 2] = 0, cmyk[4 * i + 3] = 255;
    write_jpeg(at("cmyk.jpg"), 8, 8, 4, cmyk);
    if (load(at("cmyk.jpg"), 3, 8, 8, out) == CN_OK) {
        CHECK_NEAR(out[0], 1.0, tol);
        CHECK_NEAR(out[64 + 9], 128 / 255.0, tol);
        CHECK_NEAR(out[128 + 63], 0.0, tol);
    }
}

static void test_resize(void)
{
    /* 2x2 -> 4x4 with half-pixel centres: output x samples the input at (x + 0.5)/2 - 0.5 =
     * -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1); pixels a=0, b=100, c=200, d=255:
     *   row 0 (y=0):    a, .75a+.25b, .25a+.75b, b            = 0, 25, 75, 100
     *   row 3 (y=1):    c, .75c+.25d, .25c+.75d, d            = 200, 213.75, 241.25, 255
     *   row 1: .75 row0 + .25 row3; row 2: .25 row0 + .75 row3 */
    const float src[4] = { 0 / 255.0f, 100 / 255.0f, 200 / 255.0f, 255 / 255.0f };
    CHECK(cn_image_save_png(ctx, at("2x2.png"), src, 1, 2, 2) == CN_OK);
    const double want[16] = { 0,   25,      75,       100,    50,  72.1875, 116.5625, 138.75,
                              150, 166.5625, 199.6875, 216.25, 200, 213.75,  241.25,   255 };
    float out[3 * 16];
    if (load(at("2x2.png"), 1, 4, 4, out) == CN_OK)
        for (int i = 0; i < 16; i++) CHECK_NEAR(out[i], want[i] / 255.0, 1e-6);
    /* the same, to RGB: every channel */
    if (load(at("2x2.png"), 3, 4, 4, out) == CN_OK)
        for (int i = 0; i < 48; i++) CHECK_NEAR(out[i], want[i % 16] / 255.0, 1e-6);
    /* 4x4 -> 2x2 samples at 0.5 and 2.5: the mean of each 2x2 block of v = 10 * (4y + x) */
    float big[16];
    for (int i = 0; i < 16; i++) big[i] = 10.0f * (float)i / 255.0f;
    CHECK(cn_image_save_png(ctx, at("4x4.png"), big, 1, 4, 4) == CN_OK);
    if (load(at("4x4.png"), 1, 2, 2, out) == CN_OK) {
        CHECK_NEAR(out[0], 25 / 255.0, 1e-6);  /* (0 + 10 + 40 + 50) / 4 */
        CHECK_NEAR(out[1], 45 / 255.0, 1e-6);  /* (20 + 30 + 60 + 70) / 4 */
        CHECK_NEAR(out[2], 105 / 255.0, 1e-6);
        CHECK_NEAR(out[3], 125 / 255.0, 1e-6);
    }
    /* 1x3 -> 1x1: the centre pixel (src x = 1) */
    const float row[3] = { 0.0f, 60 / 255.0f, 1.0f };
    CHECK(cn_image_save_png(ctx, at("1x3.png"), row, 1, 1, 3) == CN_OK);
    if (load(at("1x3.png"), 1, 1, 1, out) == CN_OK) CHECK_NEAR(out[0], 60 / 255.0, 1e-6);
}

/* ---- errors ------------------------------------------------------------------------------------ */

static void expect_load_error(const char *path, cn_status want, const char *msg)
{
    float out[3 * 4 * 4];
    cn_status st = cn_image_load(ctx, path, 1, 4, 4, out);
    CHECK_INT(st, want);
    char full[512];
    snprintf(full, sizeof full, "%s: %s", path, msg);
    CHECK_CONTAINS(cn_ctx_message(ctx), full);
}

static void test_errors(void)
{
    write_bytes(at("empty.png"), "", 0);
    expect_load_error(at("empty.png"), CN_E_FORMAT, "not a PNG or JPEG image");
    write_bytes(at("text.png"), "hello, world\n", 13);
    expect_load_error(at("text.png"), CN_E_FORMAT, "not a PNG or JPEG image");
    write_bytes(at("sig.png"), "\x89PNG", 4);
    expect_load_error(at("sig.png"), CN_E_FORMAT, "truncated or corrupt PNG: unexpected end of file");

    /* a 32x32 PNG of noise (so it does not compress away), cut in half */
    float noise[32 * 32];
    cn_rng rng;
    cn_rng_seed(&rng, 5);
    for (int i = 0; i < 32 * 32; i++) noise[i] = (float)cn_rng_uniform(&rng);
    CHECK(cn_image_save_png(ctx, at("noise.png"), noise, 1, 32, 32) == CN_OK);
    long n = file_size(at("noise.png"));
    CHECK(n > 500);
    truncate_copy(at("noise.png"), at("cut.png"), n / 2);
    expect_load_error(at("cut.png"), CN_E_FORMAT, "truncated or corrupt PNG: unexpected end of file");
    truncate_copy(at("noise.png"), at("noend.png"), n - 12); /* only IEND missing */
    expect_load_error(at("noend.png"), CN_E_FORMAT, "truncated or corrupt PNG: ");
    truncate_copy(at("noise.png"), at("hdr.png"), 20); /* inside IHDR */
    expect_load_error(at("hdr.png"), CN_E_FORMAT, "truncated or corrupt PNG: ");

    /* a JPEG cut in half: libjpeg would pad it with gray; here it fails */
    unsigned char pix[32 * 32];
    for (int i = 0; i < 32 * 32; i++) pix[i] = (unsigned char)(noise[i] * 255);
    write_jpeg(at("noise.jpg"), 32, 32, 1, pix);
    n = file_size(at("noise.jpg"));
    truncate_copy(at("noise.jpg"), at("cut.jpg"), n / 2);
    expect_load_error(at("cut.jpg"), CN_E_FORMAT, "truncated or corrupt JPEG: Premature end of JPEG file");
    truncate_copy(at("noise.jpg"), at("soi.jpg"), 3);
    expect_load_error(at("soi.jpg"), CN_E_FORMAT, "truncated or corrupt JPEG: ");

    /* a header claiming 100000 x 100000 = 10^10 pixels: refused before any allocation */
    {
        FILE *f = fopen(at("huge.png"), "wb");
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png_create_info_struct(png);
        if (!setjmp(png_jmpbuf(png))) {
            png_init_io(png, f);
            png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
            png_set_IHDR(png, info, 100000, 100000, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                         PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
            png_write_info(png, info); /* signature and IHDR only */
        }
        png_destroy_write_struct(&png, &info);
        fclose(f);
    }
    expect_load_error(at("huge.png"), CN_E_FORMAT, "PNG of 100000x100000 pixels; images over 2^28");
    /* 16384 x 16384 RGB (2^28 pixels, 805 MB) in a 33-byte file (signature and IHDR): refused before allocating */
    {
        FILE *f = fopen(at("bomb.png"), "wb");
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png_create_info_struct(png);
        if (!setjmp(png_jmpbuf(png))) {
            png_init_io(png, f);
            png_set_IHDR(png, info, 16384, 16384, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                         PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
            png_write_info(png, info);
        }
        png_destroy_write_struct(&png, &info);
        fclose(f);
    }
    expect_load_error(at("bomb.png"), CN_E_FORMAT, "truncated or corrupt PNG: 33 bytes cannot hold 16384x16384 pixels");

    float out[16];
    CHECK(cn_image_load(ctx, at("missing.png"), 1, 4, 4, out) == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), "missing.png: cannot open: No such file");
    CHECK(cn_image_load(ctx, at("noise.png"), 2, 4, 4, out) == CN_E_ARG);
    CHECK(cn_image_load(ctx, at("noise.png"), 1, 0, 4, out) == CN_E_ARG);
    CHECK(cn_image_load(ctx, at("noise.png"), 3, INT64_C(1) << 40, INT64_C(1) << 40, out) == CN_E_OVERFLOW);
    CHECK(cn_image_load(ctx, dir, 1, 4, 4, out) == CN_E_IO); /* a folder */
    CHECK_CONTAINS(cn_ctx_message(ctx), "cannot read");

    /* writing: the path is named */
    CHECK(cn_image_save_png(ctx, "/nonexistent-dir/x.png", noise, 1, 4, 4) == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), "/nonexistent-dir/x.png: cannot open for writing");
    CHECK(cn_image_save_png(ctx, at("c2.png"), noise, 2, 4, 4) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "c2.png: 2 channels");
    if (access("/dev/full", W_OK) == 0) {
        CHECK(cn_image_save_png(ctx, "/dev/full", noise, 1, 32, 32) == CN_E_IO);
        CHECK_CONTAINS(cn_ctx_message(ctx), "/dev/full: cannot write PNG");
    }
}

/* ---- folders ----------------------------------------------------------------------------------- */

/* a 2x2 gray PNG of one value v (0..255) */
static void gray_png(const char *name, int v)
{
    float px[4] = { v / 255.0f, v / 255.0f, v / 255.0f, v / 255.0f };
    CHECK(cn_image_save_png(ctx, at(name), px, 1, 2, 2) == CN_OK);
}

static void test_folder(void)
{
    /* classes made out of order; sorted by name (byte order: "Zebra" < "ant" < "bee") */
    mkdir_at("f");
    mkdir_at("f/bee");
    mkdir_at("f/Zebra");
    mkdir_at("f/ant");
    mkdir_at("f/.git"); /* hidden: not a class */
    mkdir_at("f/ant/nested"); /* not read */
    gray_png("f/bee/b.png", 30);
    gray_png("f/bee/a.png", 20);
    gray_png("f/bee/10.png", 10); /* "10.png" < "a.png" */
    gray_png("f/Zebra/z.png", 90);
    unsigned char j[8 * 8];
    memset(j, 200, sizeof j);
    write_jpeg(at("f/ant/photo"), 8, 8, 1, j); /* no extension: the content says JPEG */
    gray_png("f/ant/x.png", 60);
    write_bytes(at("f/ant/.DS_Store"), "junk", 4);
    write_bytes(at("f/README"), "top-level files are not images", 30);

    cn_dataset ds;
    if (cn_dataset_load_folder(ctx, at("f"), 1, 4, 4, &ds) != CN_OK) {
        test_fail(__FILE__, __LINE__, "load_folder: %s", cn_ctx_message(ctx));
        return;
    }
    CHECK_INT(ds.count, 6);
    CHECK_INT(ds.classes, 3);
    CHECK_INT(ds.c, 1);
    CHECK_INT(ds.h, 4);
    CHECK_INT(ds.w, 4);
    CHECK_STR(ds.class_names[0], "Zebra");
    CHECK_STR(ds.class_names[1], "ant");
    CHECK_STR(ds.class_names[2], "bee");
    const int labels[6] = { 0, 1, 1, 2, 2, 2 };
    const double first[6] = { 90, 200, 60, 10, 20, 30 }; /* Zebra/z, ant/photo, ant/x, bee/10, bee/a, bee/b */
    for (int i = 0; i < 6; i++) {
        CHECK_INT(ds.labels[i], labels[i]);
        CHECK_NEAR(ds.images[i * 16], first[i] / 255.0, i == 1 ? 3 / 255.0 : 1e-6);
        CHECK_NEAR(ds.images[i * 16 + 15], first[i] / 255.0, i == 1 ? 3 / 255.0 : 1e-6);
    }
    cn_dataset_free(ctx, &ds);
    cn_dataset_free(ctx, NULL);

    /* RGB output of the same folder */
    CHECK(cn_dataset_load_folder(ctx, at("f"), 3, 2, 2, &ds) == CN_OK);
    CHECK_INT(ds.count * ds.c * ds.h * ds.w, 6 * 12);
    cn_dataset_free(ctx, &ds);

    /* failures name the folder or the file */
    mkdir_at("flat");
    gray_png("flat/a.png", 1);
    CHECK(cn_dataset_load_folder(ctx, at("flat"), 1, 4, 4, &ds) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "flat: no class sub-folders");
    CHECK(ds.images == NULL && ds.count == 0 && ds.class_names == NULL);
    mkdir_at("f/empty");
    CHECK(cn_dataset_load_folder(ctx, at("f"), 1, 4, 4, &ds) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "f/empty: no images in this class folder");
    CHECK(rmdir(at("f/empty")) == 0);
    write_bytes(at("f/bee/notes.txt"), "not an image", 12);
    CHECK(cn_dataset_load_folder(ctx, at("f"), 1, 4, 4, &ds) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "f/bee/notes.txt: not a PNG or JPEG image");
    CHECK(ds.images == NULL && ds.class_names == NULL && ds.classes == 0);
    CHECK(unlink(at("f/bee/notes.txt")) == 0);
    CHECK(cn_dataset_load_folder(ctx, at("nope"), 1, 4, 4, &ds) == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), "nope: cannot open folder");
    CHECK(cn_dataset_load_folder(ctx, at("f"), 4, 4, 4, &ds) == CN_E_ARG);
}

/* ---- data check -------------------------------------------------------------------------------- */

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_check_folder(void)
{
    mkdir_at("chk");
    mkdir_at("chk/a");
    mkdir_at("chk/b");
    gray_png("chk/a/1.png", 128);
    gray_png("chk/a/2.png", 7);
    write_bytes(at("chk/a/3.png"), "", 0);  /* empty */
    /* same decoded pixels as a/1.png, different file: 16-bit gray 0x8080 = 128 * 257 */
    const unsigned char g16[8] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80 };
    write_png(at("chk/b/dup16.png"), 2, 2, PNG_COLOR_TYPE_GRAY, 16, 0, g16, NULL, 0, NULL, 0);
    gray_png("chk/b/other.png", 9);
    truncate_copy(at("noise.png"), at("chk/b/trunc.png"), 100);
    write_bytes(at("chk/b/words.txt"), "hello", 5);

    cn_data_report r;
    if (cn_data_check(ctx, at("chk"), 0, &r) != CN_OK) {
        test_fail(__FILE__, __LINE__, "data_check: %s", cn_ctx_message(ctx));
        return;
    }
    CHECK_INT(r.files, 7);
    CHECK_INT(r.bad_files, 3);
    CHECK_INT(r.duplicates, 1);
    CHECK_INT(r.bad_labels, 0);
    CHECK_INT(r.classes, 2);
    CHECK_STR(r.class_names[0], "a");
    CHECK_STR(r.class_names[1], "b");
    CHECK_INT(r.per_class[0], 2);
    CHECK_INT(r.per_class[1], 2);
    CHECK_INT(count_lines(r.problems), 4);
    CHECK_CONTAINS(r.problems, "chk/a/3.png: not a PNG or JPEG image (the file is empty)\n");
    CHECK_CONTAINS(r.problems, "chk/b/dup16.png: same pixels as ");
    CHECK_CONTAINS(r.problems, "chk/a/1.png\n");
    CHECK_CONTAINS(r.problems, "chk/b/trunc.png: truncated or corrupt PNG: ");
    CHECK_CONTAINS(r.problems, "chk/b/words.txt: not a PNG or JPEG image\n");
    CHECK_STR(cn_ctx_message(ctx), ""); /* a successful check leaves no failure behind */
    cn_data_report_free(ctx, &r);
    cn_data_report_free(ctx, NULL);

    /* a third class folder when 2 classes are expected: its images are labels out of range */
    mkdir_at("chk/c");
    gray_png("chk/c/x.png", 3);
    CHECK(cn_data_check(ctx, at("chk"), 2, &r) == CN_OK);
    CHECK_INT(r.classes, 3);
    CHECK_INT(r.bad_labels, 1);
    CHECK_CONTAINS(r.problems, "chk: 3 class folders, 2 classes expected\n");
    cn_data_report_free(ctx, &r);

    /* problems stop at 100 lines */
    mkdir_at("many");
    mkdir_at("many/x");
    for (int i = 0; i < 105; i++) {
        char name[64];
        snprintf(name, sizeof name, "many/x/%03d.png", i);
        write_bytes(at(name), "", 0);
    }
    CHECK(cn_data_check(ctx, at("many"), 0, &r) == CN_OK);
    CHECK_INT(r.files, 105);
    CHECK_INT(r.bad_files, 105);
    CHECK_INT(r.per_class[0], 0);
    CHECK_INT(count_lines(r.problems), 101);
    CHECK_CONTAINS(r.problems, "many/x/099.png: not a PNG");
    CHECK(strstr(r.problems, "100.png") == NULL);
    CHECK_CONTAINS(r.problems, "\n... and 5 more\n");
    cn_data_report_free(ctx, &r);

    CHECK(cn_data_check(ctx, at("flat"), 0, &r) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "neither an MNIST-format folder");
    CHECK(r.problems == NULL && r.files == 0);
    CHECK(cn_data_check(ctx, at("chk/a/1.png"), 0, &r) == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), "1.png: not a folder");
}

static void test_check_idx(void)
{
    /* a small MNIST-format folder: 4 training images of 1x2 (image 3 = image 1), labels with
     * a 12; the test half has 2 images, the second equal to training image 0, and too few labels */
    mkdir_at("m");
    const unsigned char tri[] = { 0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 3, 4 };
    const unsigned char trl[] = { 0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 12, 1 };
    const unsigned char tei[] = { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 9, 9, 1, 2 };
    const unsigned char tel[] = { 0, 0, 8, 1, 0, 0, 0, 1, 3 };
    write_bytes(at("m/train-images-idx3-ubyte"), tri, sizeof tri);
    write_bytes(at("m/train-labels-idx1-ubyte"), trl, sizeof trl);
    write_bytes(at("m/t10k-images-idx3-ubyte"), tei, sizeof tei);
    write_bytes(at("m/t10k-labels-idx1-ubyte"), tel, sizeof tel);
    cn_data_report r;
    CHECK(cn_data_check(ctx, at("m"), 10, &r) == CN_OK);
    CHECK_INT(r.files, 6);
    CHECK_INT(r.bad_files, 0);
    CHECK_INT(r.duplicates, 2);
    CHECK_INT(r.bad_labels, 1);
    CHECK_INT(r.classes, 10);
    CHECK(r.class_names == NULL);
    CHECK_INT(r.per_class[0], 1);
    CHECK_INT(r.per_class[1], 2);
    CHECK_INT(r.per_class[3], 1);
    CHECK_CONTAINS(r.problems, "m/train-labels-idx1-ubyte: label 12 of image 2 is outside 0..9\n");
    CHECK_CONTAINS(r.problems, "m/train-images-idx3-ubyte: image 3 has the same pixels as image 1 of ");
    CHECK_CONTAINS(r.problems, "m/t10k-images-idx3-ubyte: image 1 has the same pixels as image 0 of ");
    CHECK_CONTAINS(r.problems, "m/t10k-labels-idx1-ubyte: 1 labels for the 2 images of ");
    cn_data_report_free(ctx, &r);
    /* classes 0: 1 + the largest label */
    CHECK(cn_data_check(ctx, at("m"), 0, &r) == CN_OK);
    CHECK_INT(r.classes, 13);
    CHECK_INT(r.bad_labels, 0);
    CHECK_INT(r.per_class[12], 1);
    cn_data_report_free(ctx, &r);
    /* a broken file is a problem, not a failure */
    write_bytes(at("m/t10k-images-idx3-ubyte"), tei, 10);
    CHECK(cn_data_check(ctx, at("m"), 10, &r) == CN_OK);
    CHECK_INT(r.files, 4);
    CHECK_INT(r.bad_files, 1);
    CHECK_CONTAINS(r.problems, "m/t10k-images-idx3-ubyte: truncated header");
    cn_data_report_free(ctx, &r);
}

static void test_check_fashion_mnist(void)
{
    /* Debian's dataset-fashion-mnist: 60,000 + 10,000 images, 6,000 + 1,000 of each of 10
     * classes; no two images have the same pixels (counted independently with Python's gzip
     * and a set of the 784-byte images, over both halves) */
    cn_data_report r;
    if (cn_data_check(ctx, "/usr/share/datasets/fashion-mnist", 10, &r) != CN_OK) {
        test_fail(__FILE__, __LINE__, "data_check: %s", cn_ctx_message(ctx));
        return;
    }
    CHECK_INT(r.files, 70000);
    CHECK_INT(r.bad_files, 0);
    CHECK_INT(r.duplicates, 0);
    CHECK_INT(r.bad_labels, 0);
    CHECK_INT(r.classes, 10);
    for (int k = 0; k < 10; k++) CHECK_INT(r.per_class[k], 7000);
    CHECK_STR(r.problems, "");
    cn_data_report_free(ctx, &r);
    /* 5 classes asked for: labels 5..9 (35,000 images) are out of range */
    CHECK(cn_data_check(ctx, "/usr/share/datasets/fashion-mnist", 5, &r) == CN_OK);
    CHECK_INT(r.bad_labels, 35000);
    CHECK_INT(count_lines(r.problems), 101);
    CHECK_CONTAINS(r.problems, "... and 34900 more\n");
    cn_data_report_free(ctx, &r);
}

/* ---- malloc-failure sweep --------------------------------------------------------------------- */


enum { OP_PNG, OP_JPEG, OP_SAVE, OP_FOLDER, OP_CHECK_FOLDER, OP_CHECK_IDX };

/* Runs op with allocation N failing, N = 0, 1, ...: each run fails with CN_E_NOMEM and a
 * message (or, where libpng copes with a failed allocation, succeeds as without one), leaves
 * its outputs empty on failure and nothing allocated once freed. */
static void sweep(int op)
{
    fail_alloc fa;
    cn_allocator alloc = { fa_malloc, fa_realloc, fa_free, &fa };
    int done = 0;
    long n;
    float out[3 * 3 * 3], img[4] = { 0.1f, 0.2f, 0.3f, 0.4f };
    for (n = 0; n < 100000 && !done; n++) {
        fa = (fail_alloc){ 0, -1, 0, 0 };
        cn_ctx *c = NULL;
        if (cn_ctx_create(&alloc, &c) != CN_OK) {
            CHECK(0);
            return;
        }
        fa.calls = 0, fa.fail_at = n;
        cn_dataset ds;
        cn_data_report r;
        memset(&ds, 0, sizeof ds);
        memset(&r, 0, sizeof r);
        cn_status st = CN_E_ARG;
        switch (op) {
        case OP_PNG: st = cn_image_load(c, at("rgb16i.png"), 3, 3, 3, out); break;
        case OP_JPEG: st = cn_image_load(c, at("rgb.jpg"), 1, 3, 3, out); break;
        case OP_SAVE: st = cn_image_save_png(c, at("sweep.png"), img, 1, 2, 2); break;
        case OP_FOLDER: st = cn_dataset_load_folder(c, at("f"), 1, 4, 4, &ds); break;
        case OP_CHECK_FOLDER: st = cn_data_check(c, at("chk"), 0, &r); break;
        case OP_CHECK_IDX: st = cn_data_check(c, at("m"), 10, &r); break;
        }
        int injected = fa.calls > n;
        fa.fail_at = -1;
        int before = test_failures;
        if (!injected) done = 1;
        if (st) {
            CHECK(injected);
            CHECK_INT(st, CN_E_NOMEM);
            CHECK(strlen(cn_ctx_message(c)) > 0);
            CHECK(ds.images == NULL && ds.class_names == NULL && r.problems == NULL && r.per_class == NULL);
        } else if (op == OP_FOLDER) {
            CHECK_INT(ds.count, 6);
        } else if (op == OP_CHECK_FOLDER) {
            CHECK_INT(r.files, 8);
            CHECK_INT(r.duplicates, 1);
        } else if (op == OP_CHECK_IDX) {
            CHECK_INT(r.files, 4);
        }
        cn_dataset_free(c, &ds);
        cn_data_report_free(c, &r);
        cn_ctx_destroy(c);
        CHECK_INT(fa.live, 0);
        CHECK_INT(fa.bad_free, 0);
        if (test_failures != before) {
            fprintf(stderr, "  ^ op %d with allocation %ld failing (status %s)\n", op, n, cn_status_name(st));
            return;
        }
    }
    CHECK(done);
    CHECK(n > 1); /* something was allocated, and failed (libjpeg allocates on its own) */
}

static void test_malloc_sweep(void)
{
    for (int op = OP_PNG; op <= OP_CHECK_IDX; op++) sweep(op);
}

static const test_case cases[] = {
    { "setup", setup },
    { "PNG round trip, gray <-> RGB", test_png_round_trip },
    { "PNG palette, 16-bit, 1-bit, alpha, interlaced", test_png_formats },
    { "JPEG RGB, gray, CMYK", test_jpeg },
    { "bilinear resize by hand", test_resize },
    { "broken files and their messages", test_errors },
    { "image folder with 3 classes", test_folder },
    { "data check of an image folder", test_check_folder },
    { "data check of an MNIST-format folder", test_check_idx },
    { "data check of Fashion-MNIST", test_check_fashion_mnist },
    { "malloc-failure sweep: decode, save, folder, data check", test_malloc_sweep },
    { "teardown", teardown },
};
TEST_MAIN(cases)
