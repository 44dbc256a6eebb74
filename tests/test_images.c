/* test_images.c — image files, image folders and the data check.
 * PNGs are written with cn_image_save_png and, for what it cannot write (palette, 16-bit,
 * 1-bit, gray + alpha, RGBA, interlaced), with libpng directly; JPEGs with libjpeg at
 * quality 100 without chroma subsampling. Decoded values, bilinear resizing worked by hand,
 * antialiased resizing by hand and against PyTorch's (resize_ref.h, tests/gen_resize_ref.py),
 * gray <-> RGB conversion, the error message of each broken file, hostile files (a chunk or a
 * size claimed beyond the file, JPEGs cut, corrupted or of too many scans) refused with their
 * message at a cost measured in a child process, image folders (class order, counts, labels,
 * failures), cn_data_check on a folder with broken, empty and duplicate files, and on the real
 * Fashion-MNIST. */
#define _POSIX_C_SOURCE 200809L /* fork, pipe, clock_gettime */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "fail_alloc.h"
#include "harness.h"
#include "convnet.h"
#include "../src/data/data_impl.h" /* cn_list_class_files, cn_image_view_resize */
#include "resize_ref.h"

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

/* How a JPEG is coded beyond write_jpeg's quality 100 and 4:4:4 (zero: baseline Huffman) */
typedef struct jpeg_how {
    int progressive;             /* libjpeg's simple progression (10 scans for colour, 6 for gray) */
    int arith;                   /* arithmetic coding */
    const jpeg_scan_info *scans; /* else this scan script, of n_scans */
    int n_scans;
    const unsigned char *app1;   /* an APP1 segment's bytes (EXIF), of app1_len */
    unsigned app1_len;
} jpeg_how;

/* A JPEG at quality 100, 4:4:4, from interleaved samples (components 1, 3, or 4 = Adobe CMYK),
 * coded as how says (NULL: baseline). */
static void write_jpeg_how(const char *path, int w, int h, int comps, const unsigned char *pix, const jpeg_how *how)
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
    if (how && how->progressive) jpeg_simple_progression(&c);
    if (how && how->scans) c.scan_info = how->scans, c.num_scans = how->n_scans;
    if (how && how->arith) c.arith_code = TRUE;
    jpeg_start_compress(&c, TRUE);
    if (how && how->app1) jpeg_write_marker(&c, JPEG_APP0 + 1, how->app1, how->app1_len);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

static void write_jpeg(const char *path, int w, int h, int comps, const unsigned char *pix)
{
    write_jpeg_how(path, w, h, comps, pix, NULL);
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

/* An APP1 segment of EXIF data holding orientation o: "Exif\0\0", a TIFF header in the byte
 * order of big (MM) or little (II) endian, one IFD of one entry (tag 0x0112, type SHORT, count
 * 1, the value), no next IFD; 32 bytes into seg */
static unsigned exif_segment(unsigned char *seg, int o, int big)
{
    static const unsigned char head[] = { 'E', 'x', 'i', 'f', 0, 0 };
    unsigned char tiff[26] = { 0 };
    const unsigned fields[][3] = { { 2, 2, 42 },     { 4, 4, 8 },  { 8, 2, 1 },  { 10, 2, 0x0112 }, { 12, 2, 3 },
                                   { 14, 4, 1 },     { 18, 2, (unsigned)o } }; /* offset, bytes, value */
    tiff[0] = tiff[1] = big ? 'M' : 'I';
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        for (unsigned b = 0; b < fields[f][1]; b++)
            tiff[fields[f][0] + (big ? fields[f][1] - 1 - b : b)] = (unsigned char)(fields[f][2] >> 8 * b);
    memcpy(seg, head, 6);
    memcpy(seg + 6, tiff, sizeof tiff);
    return 6 + sizeof tiff;
}

/* A JPEG with an EXIF orientation decodes as a viewer shows it: the 5x3 stored image (gray,
 * decoded once without EXIF) turned by each of the 8 orientations, the pixel shown at (y, x)
 * written out per orientation from the EXIF specification's table; either byte order; an
 * orientation past 8, a wrong type or an IFD cut short leave the image as stored. */
static void test_jpeg_orientation(void)
{
    unsigned char pix[3 * 5], seg[64];
    for (int i = 0; i < 15; i++) pix[i] = (unsigned char)(i * 17);
    write_jpeg(at("or.jpg"), 5, 3, 1, pix);
    float base[15], got[15];
    if (load(at("or.jpg"), 1, 3, 5, base) != CN_OK) return;
    for (int o = 1; o <= 8; o++)
        for (int big = 0; big < 2; big++) {
            jpeg_how how = { 0 };
            how.app1 = seg, how.app1_len = exif_segment(seg, o, big);
            write_jpeg_how(at("or-exif.jpg"), 5, 3, 1, pix, &how);
            int64_t c, h, w, oh = o >= 5 ? 5 : 3, ow = o >= 5 ? 3 : 5;
            CHECK(cn_image_info(ctx, at("or-exif.jpg"), &c, &h, &w) == CN_OK && c == 1 && h == oh && w == ow);
            if (load(at("or-exif.jpg"), 1, oh, ow, got) != CN_OK) continue;
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    static const int rows[9][2][3] = { /* stored row, column = a*y + b*x + c for each */
                        [1] = { { 1, 0, 0 }, { 0, 1, 0 } },  [2] = { { 1, 0, 0 }, { 0, -1, 4 } },
                        [3] = { { -1, 0, 2 }, { 0, -1, 4 } }, [4] = { { -1, 0, 2 }, { 0, 1, 0 } },
                        [5] = { { 0, 1, 0 }, { 1, 0, 0 } },  [6] = { { 0, -1, 2 }, { 1, 0, 0 } },
                        [7] = { { 0, -1, 2 }, { -1, 0, 4 } }, [8] = { { 0, 1, 0 }, { -1, 0, 4 } },
                    };
                    const int(*r)[3] = rows[o];
                    int sy = r[0][0] * y + r[0][1] * x + r[0][2], sx = r[1][0] * y + r[1][1] * x + r[1][2];
                    CHECK_NEAR(got[y * ow + x], base[sy * 5 + sx], 0);
                }
        }
    /* malformed: orientation 9, type LONG (4) in place of SHORT, the IFD's entry cut off */
    for (int bad = 0; bad < 3; bad++) {
        jpeg_how how = { 0 };
        how.app1 = seg, how.app1_len = exif_segment(seg, bad == 0 ? 9 : 6, 1);
        if (bad == 1) seg[6 + 13] = 4;
        if (bad == 2) how.app1_len -= 6;
        write_jpeg_how(at("or-bad.jpg"), 5, 3, 1, pix, &how);
        int64_t c, h, w;
        CHECK(cn_image_info(ctx, at("or-bad.jpg"), &c, &h, &w) == CN_OK && h == 3 && w == 5);
    }
}

/* --resize draft: a JPEG 8x larger than the input on both sides decoded at 1/2, 1/4 or 1/8 by
 * libjpeg's scaled IDCT, the smallest keeping 4x the input. At 1/8 a pixel is its 8x8 block's DC
 * coefficient: the block's mean (quality 100: a DC step of 1, so within a level of the mean
 * computed here from the pixels written). */
/* a decoding's success, failed as a check when it is not */
static int decoded(int ok)
{
    CHECK(ok);
    return ok;
}

static void test_jpeg_draft(void)
{
    enum { W = 256, H = 128 };
    static unsigned char pix[H * W];
    for (int y = 0; y < H; y++) /* a smooth pattern with some texture: values 20..235 */
        for (int x = 0; x < W; x++)
            pix[y * W + x] = (unsigned char)(128 + 70 * sin(x / 17.0) * cos(y / 11.0) + 30 * sin((x + 2 * y) / 3.0));
    write_jpeg(at("draft.jpg"), W, H, 1, pix);
    cn_pixels px;
    /* 4x8 asked: 1/8 gives 16x32, 4x it */
    if (decoded(cn_pixels_decode_for(ctx, at("draft.jpg"), 4, 8, &px) == CN_OK)) {
        CHECK(px.h == H / 8 && px.w == W / 8 && px.file_h == H && px.file_w == W && px.channels == 1);
        double worst = 0;
        for (int by = 0; by < H / 8; by++)
            for (int bx = 0; bx < W / 8; bx++) {
                double mean = 0;
                for (int y = 0; y < 8; y++)
                    for (int x = 0; x < 8; x++) mean += pix[(by * 8 + y) * W + bx * 8 + x] / 64.0;
                double e = fabs(px.data[by * (W / 8) + bx] - mean);
                worst = e > worst ? e : worst;
            }
        CHECK(worst <= 1.0); /* 0.55 */
        cn_pixels_free(ctx, &px);
    }
    /* 5x8: 1/8's 16 rows are not 4x 5, 1/4's 32 are; 40x80 asked: decoded whole; 0x0: whole */
    static const int64_t asks[][4] = { { 5, 8, H / 4, W / 4 }, { 40, 80, H, W }, { 0, 0, H, W } };
    for (int k = 0; k < 3; k++)
        if (decoded(cn_pixels_decode_for(ctx, at("draft.jpg"), asks[k][0], asks[k][1], &px) == CN_OK)) {
            CHECK(px.h == asks[k][2] && px.w == asks[k][3] && px.file_h == H && px.file_w == W);
            cn_pixels_free(ctx, &px);
        }
    /* EXIF orientation 6 (turned 90 degrees): shown 256 high and 128 wide. 8x2 asked: the stored
     * 128x256 is compared with 2x8, so 1/8 (16x32 stored, 32x16 shown); against 8x2 unturned it
     * would be 1/2 */
    unsigned char seg[64];
    jpeg_how how = { 0 };
    how.app1 = seg, how.app1_len = exif_segment(seg, 6, 1);
    write_jpeg_how(at("draft6.jpg"), W, H, 1, pix, &how);
    if (decoded(cn_pixels_decode_for(ctx, at("draft6.jpg"), 8, 2, &px) == CN_OK)) {
        CHECK(px.h == W / 8 && px.w == H / 8 && px.file_h == W && px.file_w == H);
        cn_pixels_free(ctx, &px);
    }
    /* a PNG is decoded whole */
    float img[H * W];
    for (int i = 0; i < H * W; i++) img[i] = pix[i] / 255.0f;
    CHECK(cn_image_save_png(ctx, at("draft.png"), img, 1, H, W) == CN_OK);
    if (decoded(cn_pixels_decode_for(ctx, at("draft.png"), 4, 8, &px) == CN_OK)) {
        CHECK(px.h == H && px.w == W && px.file_h == H && px.file_w == W);
        cn_pixels_free(ctx, &px);
    }
    /* after the resize: within 1.5 levels of antialias's whole decode (this pattern, measured:
     * 0.50/255 at 16x32 from 1/2, 1.25 at 4x8 from 1/8, 0.81 at 8x16 from 1/4), and bilinear
     * decodes whole: the same bits as ever */
    float full[4 * 16 * 32], draft[4 * 16 * 32];
    static const int64_t sizes[][2] = { { 16, 32 }, { 4, 8 }, { 8, 16 } };
    for (int k = 0; k < 3; k++) {
        int64_t h = sizes[k][0], w = sizes[k][1];
        cn_ctx_set_resize(ctx, CN_RESIZE_ANTIALIAS);
        if (load(at("draft.jpg"), 1, h, w, full)) break;
        cn_ctx_set_resize(ctx, CN_RESIZE_DRAFT);
        if (load(at("draft.jpg"), 1, h, w, draft)) break;
        double worst = 0;
        for (int64_t i = 0; i < h * w; i++) worst = fmax(worst, fabs(full[i] - draft[i]));
        CHECK(worst > 0 && worst <= 1.5 / 255);
    }
    cn_ctx_set_resize(ctx, CN_RESIZE_BILINEAR);
    if (!load(at("draft.jpg"), 1, 4, 8, draft) && decoded(cn_pixels_decode(ctx, at("draft.jpg"), &px) == CN_OK)) {
        CHECK(cn_pixels_resize(ctx, &px, CN_RESIZE_BILINEAR, 1, 4, 8, full) == CN_OK);
        CHECK(!memcmp(full, draft, sizeof(float) * 4 * 8));
        cn_pixels_free(ctx, &px);
    }
    cn_ctx_set_resize(ctx, CN_RESIZE_BILINEAR); /* a context's default, which the other tests have */
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

/* CN_RESIZE_ANTIALIAS: by hand, against PyTorch, and what it is for */
static void test_resize_antialias(void)
{
    /* 4x4 -> 2x2: scale 2, so the triangle filter is 4 pixels wide; output 0's centre is input
     * position 1.0 and its window [-1, 3) holds pixels 0, 1, 2 at distances 0.5, 0.5, 1.5, each
     * halved by the scale: weights 0.75, 0.75, 0.25 normalised, 3/7 3/7 1/7; output 1: 1/7 3/7
     * 3/7 of pixels 1, 2, 3. On v = 10 * (4y + x), separable: rows give (0*3 + 10*3 + 20)/7 = 50/7
     * and (10 + 20*3 + 30*3)/7 = 160/7, plus 40 times the same weights of y: 200/7 and 640/7.
     * (Plain bilinear gives the 2x2 block means 25, 45, 105, 125: the wider filter pulls each
     * towards the image's mean, 75.) */
    unsigned char big[16];
    for (int i = 0; i < 16; i++) big[i] = (unsigned char)(10 * i);
    cn_image_view v = { .data = big, .h = 4, .w = 4, .c = 1, .format = CN_PIXELS_U8 };
    float out[3 * 13 * 9];
    const double want4[4] = { 250 / 7.0, 360 / 7.0, 690 / 7.0, 800 / 7.0 };
    CHECK(cn_image_view_resize(ctx, &v, CN_RESIZE_ANTIALIAS, 1, 2, 2, out) == CN_OK);
    for (int i = 0; i < 4; i++) CHECK_NEAR(out[i], want4[i] / 255.0, 1e-6);
    CHECK(cn_image_view_resize(ctx, &v, CN_RESIZE_BILINEAR, 1, 2, 2, out) == CN_OK);
    CHECK_NEAR(out[0], 25 / 255.0, 1e-6);

    /* PyTorch's interpolate(antialias=True) in float64, from 8-bit samples and from the same as floats */
    for (size_t k = 0; k < sizeof resize_refs / sizeof resize_refs[0]; k++) {
        const resize_ref *r = &resize_refs[k];
        int64_t n = (int64_t)r->ih * r->iw * r->ic, m = (int64_t)r->oc * r->oh * r->ow;
        float *f = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) f[i] = (float)r->px[i] / 255.0f;
        cn_image_view u8 = { .data = r->px, .h = r->ih, .w = r->iw, .c = r->ic, .format = CN_PIXELS_U8 };
        cn_image_view f32 = { .data = f, .h = r->ih, .w = r->iw, .c = r->ic, .format = CN_PIXELS_F32 };
        for (int as_float = 0; as_float < 2; as_float++) {
            CHECK(cn_image_view_resize(ctx, as_float ? &f32 : &u8, CN_RESIZE_ANTIALIAS, r->oc, r->oh, r->ow, out) == CN_OK);
            double worst = 0;
            for (int64_t i = 0; i < m; i++) worst = fmax(worst, fabs(out[i] - r->want[i]));
            /* sums in double: the float output's rounding (6.3e-8 at most here) */
            if (worst > 2e-7) test_fail(__FILE__, __LINE__, "%s (%s samples): off by %g", r->what, as_float ? "float" : "8-bit", worst);
            if (r->ih == r->oh && r->iw == r->ow) /* the samples themselves, bit for bit */
                for (int64_t i = 0; i < m; i++) CHECK(out[i] == f[(i % (r->oh * r->ow)) * r->ic + i / (r->oh * r->ow)]);
        }
        free(f);
    }

    /* What it is for: a 1-pixel checkerboard of 0 and 255, 300x200, shrunk to 32x32. Plain
     * bilinear samples 2x2 blocks where the grid falls and comes out as moire (0.17 to 0.83 by
     * where each output lands, as PyTorch's antialias=False); averaged, every output is near the
     * board's mean, 1/2 (0.4992..0.5008 in PyTorch: the triangle's ends weigh a black or a white
     * pixel more). Through cn_image_load, which resizes as the context says. */
    float *board = malloc(300 * 200 * sizeof(float));
    for (int i = 0; i < 300 * 200; i++) board[i] = (float)(((i / 200) + (i % 200)) % 2);
    CHECK(cn_image_save_png(ctx, at("board.png"), board, 1, 300, 200) == CN_OK);
    free(board);
    float lo = 1, hi = 0, small[32 * 32];
    CHECK_INT(cn_ctx_resize(ctx), CN_RESIZE_BILINEAR); /* a context's default */
    if (load(at("board.png"), 1, 32, 32, small) == CN_OK)
        for (int i = 0; i < 32 * 32; i++) lo = fminf(lo, small[i]), hi = fmaxf(hi, small[i]);
    CHECK(lo < 0.18f && hi > 0.82f);
    cn_ctx_set_resize(ctx, CN_RESIZE_ANTIALIAS);
    CHECK_INT(cn_ctx_resize(ctx), CN_RESIZE_ANTIALIAS);
    lo = 1, hi = 0;
    if (load(at("board.png"), 1, 32, 32, small) == CN_OK)
        for (int i = 0; i < 32 * 32; i++) lo = fminf(lo, small[i]), hi = fmaxf(hi, small[i]);
    CHECK(lo > 0.499f && hi < 0.501f);
    cn_ctx_set_resize(ctx, (cn_resize)7); /* not a mode: ignored */
    CHECK_INT(cn_ctx_resize(ctx), CN_RESIZE_ANTIALIAS);
    cn_ctx_set_resize(ctx, CN_RESIZE_BILINEAR);

    /* a line of 2^22 pixels (either way) made 224x224: each axis the cheaper order, a shrink of
     * 18,725x summed in double; a flat grey stays that grey */
    unsigned char *line = malloc((size_t)1 << 22);
    float *sq = malloc(224 * 224 * sizeof(float));
    memset(line, 100, (size_t)1 << 22);
    for (int tall = 0; tall < 2; tall++) {
        cn_image_view lv = { .data = line, .h = tall ? 1 << 22 : 1, .w = tall ? 1 : 1 << 22, .c = 1, .format = CN_PIXELS_U8 };
        CHECK(cn_image_view_resize(ctx, &lv, CN_RESIZE_ANTIALIAS, 1, 224, 224, sq) == CN_OK);
        float far = 0;
        for (int i = 0; i < 224 * 224; i++) far = fmaxf(far, fabsf(sq[i] - 100 / 255.0f));
        CHECK(far < 1e-6f);
    }
    free(sq);
    free(line);

    /* the names the checkpoints and the command line use */
    cn_resize mode = CN_RESIZE_BILINEAR;
    CHECK_STR(cn_resize_name(CN_RESIZE_ANTIALIAS), "antialias");
    CHECK_STR(cn_resize_name(CN_RESIZE_BILINEAR), "bilinear");
    CHECK_STR(cn_resize_name(CN_RESIZE_DRAFT), "draft");
    CHECK(cn_resize_name((cn_resize)3) == NULL);
    CHECK(cn_resize_parse("draft", &mode) == 1 && mode == CN_RESIZE_DRAFT);
    CHECK(cn_resize_parse("antialias", &mode) == 1 && mode == CN_RESIZE_ANTIALIAS);
    CHECK(cn_resize_parse("Antialias", &mode) == 0 && cn_resize_parse(NULL, &mode) == 0 && mode == CN_RESIZE_ANTIALIAS);
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
    /* the formats photos come in that are not read, named by their first bytes */
    static const struct { const char *name, *bytes, *said; } others[] = {
        { "a.webp", "RIFF\x24\0\0\0WEBPVP8 ", "not a PNG or JPEG image but WebP: convert it to JPEG or PNG" },
        { "a.heic", "\0\0\0\x18" "ftypheic\0\0\0\0", "not a PNG or JPEG image but HEIC (an iPhone's photo format): convert it" },
        { "b.heic", "\0\0\0\x18" "ftypmif1\0\0\0\0", "not a PNG or JPEG image but HEIC" },
        { "a.avif", "\0\0\0\x1c" "ftypavif\0\0\0\0", "not a PNG or JPEG image but AVIF" },
        { "a.gif", "GIF89a\x08\0\x08\0\0\0", "not a PNG or JPEG image but GIF" },
        { "a.tif", "II*\0\x08\0\0\0\0\0\0\0", "not a PNG or JPEG image but TIFF" },
        { "a.bmp", "BM\x46\0\0\0\0\0\0\0\x36\0", "not a PNG or JPEG image but BMP" },
        { "bmw.txt", "BMW is a car", "not a PNG or JPEG image" },
        { "a.mp4", "\0\0\0\x18" "ftypisom\0\0\0\0", "not a PNG or JPEG image" },
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        write_bytes(at(others[i].name), others[i].bytes, 12); /* the 12 bytes that tell them */
        expect_load_error(at(others[i].name), CN_E_FORMAT, others[i].said);
    }
    CHECK(strstr(cn_ctx_message(ctx), " but ") == NULL); /* an MP4 is not named */
    expect_load_error(at("bmw.txt"), CN_E_FORMAT, "not a PNG or JPEG image");
    CHECK(strstr(cn_ctx_message(ctx), " but ") == NULL); /* nor text that starts "BM" */

    /* a 32x32 PNG of noise (so it does not compress away), cut in half */
    float noise[32 * 32];
    cn_rng rng;
    cn_rng_seed(&rng, 5);
    for (int i = 0; i < 32 * 32; i++) noise[i] = (float)cn_rng_uniform(&rng);
    CHECK(cn_image_save_png(ctx, at("noise.png"), noise, 1, 32, 32) == CN_OK);
    long n = file_size(at("noise.png"));
    CHECK(n > 500);
    truncate_copy(at("noise.png"), at("cut.png"), n / 2);
    expect_load_error(at("cut.png"), CN_E_FORMAT, "truncated or corrupt PNG: chunk IDAT of ");
    CHECK_CONTAINS(cn_ctx_message(ctx), "bytes runs past the end of the file");
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
    expect_load_error(at("huge.png"), CN_E_FORMAT, "PNG of 100000x100000 pixels; images over 67108864 pixels");
    /* 8000 x 8000 RGB (64,000,000 pixels, 192 MB; under 2^26) in a 33-byte file (signature and
     * IHDR): refused before allocating, as at 1032:1 deflate needs 186 KB for its 192 MB */
    {
        FILE *f = fopen(at("bomb.png"), "wb");
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png_create_info_struct(png);
        if (!setjmp(png_jmpbuf(png))) {
            png_init_io(png, f);
            png_set_IHDR(png, info, 8000, 8000, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                         PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
            png_write_info(png, info);
        }
        png_destroy_write_struct(&png, &info);
        fclose(f);
    }
    expect_load_error(at("bomb.png"), CN_E_FORMAT, "truncated or corrupt PNG: 33 bytes cannot hold 8000x8000 pixels");

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

/* ---- hostile files: refused, and cheaply ------------------------------------------------------ */

/* What decoding a file cost: a child process decodes it (cn_image_info, the whole file) and
 * reports its status, message, the growth of its peak resident memory and the time taken. A
 * forked child starts at the parent's present size, whatever the tests before reached, and
 * libjpeg allocates with malloc, where no allocator of ours can count. */
typedef struct cost {
    cn_status status;
    char msg[1024];
    long grew_kb;
    double seconds;
} cost;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static cost decode_cost(const char *path)
{
    cost c;
    memset(&c, 0, sizeof c);
    c.status = CN_E_ARG;
    int fd[2];
    if (pipe(fd)) {
        test_fail(__FILE__, __LINE__, "pipe failed");
        return c;
    }
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        struct rusage r0, r1;
        getrusage(RUSAGE_SELF, &r0);
        double t0 = now();
        int64_t ch, h, w;
        c.status = cn_image_info(ctx, path, &ch, &h, &w);
        c.seconds = now() - t0;
        getrusage(RUSAGE_SELF, &r1);
        c.grew_kb = r1.ru_maxrss - r0.ru_maxrss;
        snprintf(c.msg, sizeof c.msg, "%s", cn_ctx_message(ctx));
        _exit(write(fd[1], &c, sizeof c) == (ssize_t)sizeof c ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = pid > 0 ? read(fd[0], &c, sizeof c) : -1;
    close(fd[0]);
    int wst = 0;
    if (pid > 0) waitpid(pid, &wst, 0);
    if (got != (ssize_t)sizeof c || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
        test_fail(__FILE__, __LINE__, "the child decoding %s died", path);
    return c;
}

/* The file refused with "PATH: want" in the message (and tail, when not NULL), having grown
 * the decoding process by under 16 MB in under a second. */
static void expect_refused(const char *path, const char *want, const char *tail)
{
    cost c = decode_cost(path);
    CHECK_INT(c.status, CN_E_FORMAT);
    char full[1024];
    snprintf(full, sizeof full, "%s: %s", path, want);
    CHECK_CONTAINS(c.msg, full);
    if (tail) CHECK_CONTAINS(c.msg, tail);
    if (c.grew_kb > 16 << 10) test_fail(__FILE__, __LINE__, "%s: the decoder grew by %ld KB", path, c.grew_kb);
    if (c.seconds > 1.0) test_fail(__FILE__, __LINE__, "%s: %.2f s", path, c.seconds);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (24 - 8 * i));
}

/* A PNG chunk at dst: length, name, data, CRC-32 of name and data; its size */
static size_t png_chunk(unsigned char *dst, const char *name, const void *data, uint32_t n)
{
    put_be32(dst, n);
    memcpy(dst + 4, name, 4);
    if (n) memcpy(dst + 8, data, n);
    put_be32(dst + 8 + n, (uint32_t)crc32(0, dst + 4, 4 + n));
    return 12 + n;
}

/* The file's bytes into buf (at most cap); their count */
static long read_bytes(const char *path, unsigned char *buf, long cap)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) return 0;
    long n = (long)fread(buf, 1, (size_t)cap, f);
    fclose(f);
    return n;
}

/* The offset of the first JPEG marker `m` among the markers after SOI (or of the last SOS, when
 * last is set), -1 when none: segments are walked by their lengths up to the first scan, then
 * the entropy-coded data is scanned for FF xx that is not a stuffed FF 00 or a restart. */
static long jpeg_marker(const unsigned char *b, long n, int m, int last)
{
    long found = -1;
    for (long i = 2; i + 3 < n; i++) {
        if (b[i] != 0xff || b[i + 1] == 0 || b[i + 1] == 0xff || (b[i + 1] >= 0xd0 && b[i + 1] <= 0xd7)) continue;
        if (b[i + 1] == m) {
            found = i;
            if (!last) return i;
        }
        if (b[i + 1] != 0xd9) i += 1 + (b[i + 2] << 8 | b[i + 3]); /* over the segment (a scan's data follows) */
    }
    return found;
}

static void test_hostile_png(void)
{
    /* a 141-byte PNG: signature, IHDR of 1x1 gray, then a tEXt chunk claiming 2^31 - 1 bytes
     * (100 of them present, no CRC). libpng allocated and zeroed the 2 GB (7 s) before finding
     * the file short; the length is now checked against the bytes left. */
    unsigned char b[256];
    const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    const unsigned char ihdr[13] = { 0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0 };
    memcpy(b, sig, 8);
    size_t n = 8 + png_chunk(b + 8, "IHDR", ihdr, sizeof ihdr);
    put_be32(b + n, 0x7fffffffu);
    memcpy(b + n + 4, "tEXt", 4);
    n += 8;
    memset(b + n, 'x', 100);
    memcpy(b + n, "Comment", 8);
    n += 100;
    CHECK_INT(n, 141);
    write_bytes(at("text2g.png"), b, n);
    expect_refused(at("text2g.png"), "truncated or corrupt PNG: chunk tEXt of 2147483647 bytes runs past the end of "
                   "the file (141 bytes)", NULL);

    /* the ancillary chunks are skipped, not refused: a 2x1 gray PNG with tEXt, zTXt (its text
     * a deflated megabyte) and gAMA before its pixels 10, 20 decodes to them */
    static unsigned char z[8 << 10], mb[1 << 20];
    uLongf zn = sizeof z - 10;
    memcpy(z, "Comment\0\0", 9); /* keyword, NUL, compression method 0 */
    CHECK(compress2(z + 9, &zn, mb, sizeof mb, 9) == Z_OK);
    const unsigned char gray2[13] = { 0, 0, 0, 2, 0, 0, 0, 1, 8, 0, 0, 0, 0 }, gama[4] = { 0, 0, 0xb1, 0x8f };
    const unsigned char raw[3] = { 0, 10, 20 }; /* filter byte 0, then the row */
    unsigned char idat[64];
    uLongf in = sizeof idat;
    CHECK(compress2(idat, &in, raw, sizeof raw, 9) == Z_OK);
    static unsigned char meta[16 << 10];
    memcpy(meta, sig, 8);
    n = 8 + png_chunk(meta + 8, "IHDR", gray2, sizeof gray2);
    n += png_chunk(meta + n, "tEXt", "Comment\0hello", 13);
    n += png_chunk(meta + n, "zTXt", z, (uint32_t)(9 + zn));
    n += png_chunk(meta + n, "gAMA", gama, 4);
    n += png_chunk(meta + n, "IDAT", idat, (uint32_t)in);
    n += png_chunk(meta + n, "IEND", NULL, 0);
    write_bytes(at("meta.png"), meta, n);
    float out[2];
    if (load(at("meta.png"), 1, 1, 2, out) == CN_OK) {
        CHECK_NEAR(out[0], 10 / 255.0, 1e-7);
        CHECK_NEAR(out[1], 20 / 255.0, 1e-7);
    }
}

static void test_hostile_jpeg(void)
{
    static unsigned char b[1 << 16];
    unsigned char noise[32 * 32];
    cn_rng rng;
    cn_rng_seed(&rng, 7);
    for (int i = 0; i < 32 * 32; i++) noise[i] = (unsigned char)(cn_rng_uniform(&rng) * 255);

    /* a 16x16 JPEG whose SOF0 is made to claim 16384x16384 (800 MB of RGB): decoded, grey, as
     * good before; now refused by its size, and at 8000x8000 (64,000,000 pixels, under the
     * limit) by the bytes it would need: 3 components x 1000 x 1000 blocks x 2 bits = 750,000 */
    unsigned char rgb[16 * 16 * 3];
    for (int i = 0; i < 16 * 16 * 3; i++) rgb[i] = noise[i % 1024];
    write_jpeg(at("small.jpg"), 16, 16, 3, rgb);
    long n = read_bytes(at("small.jpg"), b, sizeof b), sof = jpeg_marker(b, n, 0xc0, 0);
    CHECK(n > 100 && n < 4000 && sof > 0);
    if (sof <= 0) return;
    b[sof + 5] = 0x40, b[sof + 6] = 0x00, b[sof + 7] = 0x40, b[sof + 8] = 0x00; /* height, width 16384 */
    write_bytes(at("claim16k.jpg"), b, (size_t)n);
    expect_refused(at("claim16k.jpg"), "JPEG of 16384x16384 pixels; images over 67108864 pixels are refused", NULL);
    b[sof + 5] = 0x1f, b[sof + 6] = 0x40, b[sof + 7] = 0x1f, b[sof + 8] = 0x40; /* 8000 */
    write_bytes(at("claim8k.jpg"), b, (size_t)n);
    char want[256];
    snprintf(want, sizeof want, "truncated or corrupt JPEG: %ld bytes cannot hold 8000x8000 pixels (a complete JPEG "
             "of that size has at least 750000)", n);
    expect_refused(at("claim8k.jpg"), want, NULL);

    /* a 32x32 gray JPEG cut in half, an end marker (FF D9) appended: was decoded, its lower half
     * grey */
    write_jpeg(at("noise32.jpg"), 32, 32, 1, noise);
    n = read_bytes(at("noise32.jpg"), b, sizeof b);
    long half = n / 2;
    unsigned char keep = b[half], keep1 = b[half + 1];
    b[half] = 0xff, b[half + 1] = 0xd9;
    write_bytes(at("cut-eoi.jpg"), b, (size_t)half + 2);
    b[half] = keep, b[half + 1] = keep1;
    expect_refused(at("cut-eoi.jpg"), "truncated or corrupt JPEG: Corrupt JPEG data: premature end of data segment",
                   NULL);

    /* Bits flipped in the scan data, which JPEG has no checksum over: libjpeg notices only when
     * the Huffman codes after the flip, read out of step, end before the data does or run into
     * its end. About half of all single flips in this file do (the others change a value,
     * keeping the codes in step: other pixels, no warning); bit 0 of the middle byte of the scan
     * is one that does, with this libjpeg's coding of this image. Eight bytes there set to FF 00
     * (stuffed FFs: 64 one-bits, no code of libjpeg's tables) are caught too. */
    long sos = jpeg_marker(b, n, 0xda, 0);
    CHECK(sos > 0);
    if (sos <= 0) return;
    long data = sos + 2 + (b[sos + 2] << 8 | b[sos + 3]), mid = data + (n - 2 - data) / 2;
    static unsigned char c[1 << 16];
    memcpy(c, b, (size_t)n);
    c[mid] ^= 0x01;
    write_bytes(at("flip.jpg"), c, (size_t)n);
    expect_refused(at("flip.jpg"), "truncated or corrupt JPEG: Corrupt JPEG data: ", "extraneous bytes before marker");
    memcpy(c, b, (size_t)n);
    for (int i = 0; i < 8; i++) c[mid + 2 * i] = 0xff, c[mid + 2 * i + 1] = 0x00;
    write_bytes(at("ones.jpg"), c, (size_t)n);
    expect_refused(at("ones.jpg"), "truncated or corrupt JPEG: Corrupt JPEG data: ", NULL);

    /* A progressive JPEG decodes; cut before its last scan, with an end marker, it was decoded
     * without a warning (its last refinement missing); now the uncoded bits are found. */
    unsigned char col[32 * 32 * 3];
    for (int i = 0; i < 32 * 32 * 3; i++) col[i] = (unsigned char)(i % 3 == 0 ? noise[i / 3] : 100 + i % 3);
    const jpeg_how progressive = { .progressive = 1 };
    write_jpeg_how(at("prog.jpg"), 32, 32, 3, col, &progressive);
    float out[3 * 32 * 32];
    if (load(at("prog.jpg"), 3, 32, 32, out) == CN_OK)
        for (int i = 0; i < 32 * 32; i++) CHECK_NEAR(out[i], noise[i] / 255.0, 8 / 255.0); /* red */
    n = read_bytes(at("prog.jpg"), b, sizeof b);
    long last = jpeg_marker(b, n, 0xda, 1);
    CHECK(last > 0);
    b[last] = 0xff, b[last + 1] = 0xd9;
    write_bytes(at("prog-cut.jpg"), b, (size_t)last + 2);
    expect_refused(at("prog-cut.jpg"), "truncated or corrupt JPEG: the scans stop before coefficient ",
                   "is complete (the file is cut short)");

    /* a sequential JPEG of one scan per component, cut before the third: was decoded with no
     * chroma; now the component that no scan codes is named */
    const jpeg_scan_info apart[3] = { { 1, { 0 }, 0, 63, 0, 0 }, { 1, { 1 }, 0, 63, 0, 0 }, { 1, { 2 }, 0, 63, 0, 0 } };
    const jpeg_how three = { .scans = apart, .n_scans = 3 };
    write_jpeg_how(at("apart.jpg"), 32, 32, 3, col, &three);
    if (load(at("apart.jpg"), 3, 32, 32, out) == CN_OK)
        for (int i = 0; i < 32 * 32; i++) CHECK_NEAR(out[i], noise[i] / 255.0, 8 / 255.0);
    n = read_bytes(at("apart.jpg"), b, sizeof b);
    last = jpeg_marker(b, n, 0xda, 1);
    CHECK(last > 0);
    b[last] = 0xff, b[last + 1] = 0xd9;
    write_bytes(at("apart-cut.jpg"), b, (size_t)last + 2);
    expect_refused(at("apart-cut.jpg"), "truncated or corrupt JPEG: no scan codes component 3 (the file is cut short)",
                   NULL);

    /* scans: a DC scan and the 63 AC coefficients one by one (64 scans) decode; the same with
     * each AC coefficient in two halves, first bits then last (127 scans), is over 100 */
    jpeg_scan_info many[127];
    many[0] = (jpeg_scan_info){ 1, { 0 }, 0, 0, 0, 0 };
    for (int k = 1; k < 64; k++) {
        many[k] = (jpeg_scan_info){ 1, { 0 }, k, k, 0, 1 };
        many[63 + k] = (jpeg_scan_info){ 1, { 0 }, k, k, 1, 0 };
    }
    jpeg_scan_info whole[64];
    whole[0] = many[0];
    for (int k = 1; k < 64; k++) whole[k] = (jpeg_scan_info){ 1, { 0 }, k, k, 0, 0 };
    const jpeg_how scans64 = { .scans = whole, .n_scans = 64 }, scans127 = { .scans = many, .n_scans = 127 };
    write_jpeg_how(at("scans64.jpg"), 32, 32, 1, noise, &scans64);
    if (load(at("scans64.jpg"), 1, 32, 32, out) == CN_OK)
        for (int i = 0; i < 32 * 32; i++) CHECK_NEAR(out[i], noise[i] / 255.0, 8 / 255.0);
    write_jpeg_how(at("scans127.jpg"), 32, 32, 1, noise, &scans127);
    expect_refused(at("scans127.jpg"), "truncated or corrupt JPEG: more than 100 scans", NULL);

    /* arithmetic coding: its size does not bound its pixels (a flat image costs almost nothing
     * a block), so it is refused */
    const jpeg_how arith = { .arith = 1 };
    write_jpeg_how(at("arith.jpg"), 32, 32, 1, noise, &arith);
    expect_refused(at("arith.jpg"), "truncated or corrupt JPEG: arithmetic coding is not read", NULL);
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
    mkdir_at("f/ant/nested"); /* empty: nothing read from it */
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
    /* what Windows and a Mac's zip leave behind: not images, not a class */
    write_bytes(at("f/bee/Thumbs.db"), "junk", 4);
    write_bytes(at("f/Zebra/desktop.ini"), "[.ShellClassInfo]", 17);
    write_bytes(at("f/ant/THUMBS.DB"), "junk", 4);
    mkdir_at("f/__MACOSX");
    mkdir_at("f/__MACOSX/bee");
    write_bytes(at("f/__MACOSX/bee/._a.png"), "junk", 4);

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

    /* opened, not decoded: the files named, each decoded when a batch takes it, to the same bits */
    cn_dataset lazy;
    CHECK(cn_dataset_open_folder(ctx, at("f"), 1, 4, 4, &lazy) == CN_OK);
    CHECK(lazy.images == NULL && lazy.paths != NULL);
    CHECK_INT(lazy.count, 6);
    CHECK_STR(lazy.class_names[0], "Zebra");
    if (lazy.paths) CHECK_CONTAINS(lazy.paths[1], "ant/photo");
    int64_t idx[4] = { 5, 1, 0, 3 };
    float mean[1] = { 0.25f }, std[1] = { 0.5f }, a[4 * 16], b[2 * 16];
    int32_t la[4], lb[2];
    cn_make_batch(&ds, idx, 4, mean, std, 0, 0, NULL, a, la);
    int threads_was = cn_set_threads(0);
    for (int t = 1; t <= 3; t++) { /* the rows' files decoded on 1 to 3 threads: the same bits */
        cn_set_threads(t);
        memset(b, 0, sizeof b);
        CHECK(cn_make_batch_rows(ctx, &lazy, idx, 4, 1, 3, mean, std, 0, 0, NULL, b, lb) == CN_OK);
        CHECK(memcmp(a + 16, b, sizeof b) == 0); /* rows 1 and 2 of the batch */
        CHECK(la[1] == lb[0] && la[2] == lb[1]);
    }
    cn_set_threads(threads_was);
    double part[12];
    float m2[1], s2[1], m1[1], s1[1];
    cn_dataset_stats(&ds, m1, s1);
    CHECK(cn_dataset_stats_part(ctx, &lazy, 0, 6, part) == CN_OK);
    cn_dataset_stats_merge(part, 1, 1, m2, s2);
    CHECK_NEAR(m2[0], m1[0], 1e-6);
    CHECK_NEAR(s2[0], s1[0], 1e-6);
    write_bytes(at("f/bee/a.png"), "not a png any more", 18); /* a file spoilt after the listing */
    int64_t spoilt[1] = { 4 };
    CHECK(cn_make_batch_rows(ctx, &lazy, spoilt, 1, 0, 1, mean, std, 0, 0, NULL, b, lb) != CN_OK);
    CHECK_CONTAINS(cn_ctx_message(ctx), "bee/a.png");
    int64_t with_spoilt[4] = { 0, 4, 1, 4 }; /* on 3 threads: the first bad row's file named */
    cn_set_threads(3);
    CHECK(cn_make_batch_rows(ctx, &lazy, with_spoilt, 4, 0, 4, mean, std, 0, 0, NULL, a, la) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "bee/a.png: not a PNG or JPEG image");
    CHECK(cn_dataset_stats_part(ctx, &lazy, 0, 6, part) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "bee/a.png: not a PNG or JPEG image");
    cn_set_threads(threads_was);
    gray_png("f/bee/a.png", 20);
    cn_dataset_free(ctx, &lazy);
    cn_dataset_free(ctx, &ds);
    cn_dataset_free(ctx, NULL);

    /* RGB output of the same folder, decoded on 1, 2 and 3 threads (as many as files, and
     * fewer; antialiased): the same floats */
    int was = cn_set_threads(0); /* 0: no change, the count returned */
    float rgb[6 * 12];
    cn_ctx_set_resize(ctx, CN_RESIZE_ANTIALIAS);
    for (int t = 1; t <= 3; t++) {
        cn_set_threads(t);
        CHECK(cn_dataset_load_folder(ctx, at("f"), 3, 2, 2, &ds) == CN_OK);
        CHECK_INT(ds.count * ds.c * ds.h * ds.w, 6 * 12);
        if (ds.images && t == 1) memcpy(rgb, ds.images, sizeof rgb);
        if (ds.images) CHECK(memcmp(rgb, ds.images, sizeof rgb) == 0);
        cn_dataset_free(ctx, &ds);
    }
    /* opened lazily, its batch rows decoded on 3 threads: resized as the context says (each
     * thread's context takes the caller's settings), the same floats as the eager load */
    mkdir_at("fz");
    mkdir_at("fz/a");
    mkdir_at("fz/b");
    float noisy[2][3 * 9 * 7];
    for (int k = 0; k < 2; k++) {
        for (int q = 0; q < 3 * 9 * 7; q++) noisy[k][q] = (float)((q * 53 + k * 101) % 256) / 255.0f;
        CHECK(cn_image_save_png(ctx, at(k ? "fz/b/m.png" : "fz/a/n.png"), noisy[k], 3, 9, 7) == CN_OK);
    }
    cn_dataset lz, ez;
    cn_set_threads(3);
    CHECK(cn_dataset_load_folder(ctx, at("fz"), 3, 4, 3, &ez) == CN_OK);
    CHECK(cn_dataset_open_folder(ctx, at("fz"), 3, 4, 3, &lz) == CN_OK);
    int64_t both[2] = { 0, 1 };
    float zero[3] = { 0, 0, 0 }, one[3] = { 1, 1, 1 }, rows[2 * 36], plain[2 * 36];
    int32_t lab2[2];
    CHECK(cn_make_batch_rows(ctx, &lz, both, 2, 0, 2, zero, one, 0, 0, NULL, rows, lab2) == CN_OK);
    if (ez.images) CHECK(memcmp(rows, ez.images, sizeof rows) == 0);
    cn_ctx_set_resize(ctx, CN_RESIZE_BILINEAR); /* and the two resizings do differ here */
    CHECK(cn_make_batch_rows(ctx, &lz, both, 2, 0, 2, zero, one, 0, 0, NULL, plain, lab2) == CN_OK);
    CHECK(memcmp(rows, plain, sizeof rows) != 0);
    cn_dataset_free(ctx, &lz);
    cn_dataset_free(ctx, &ez);
    cn_ctx_set_resize(ctx, CN_RESIZE_BILINEAR);
    cn_set_threads(was);

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
    CHECK_CONTAINS(cn_ctx_message(ctx), "f/bee/notes.txt: not a PNG or JPEG image (convnet data check ");
    CHECK_CONTAINS(cn_ctx_message(ctx), "f lists every file it cannot read)");
    CHECK(ds.images == NULL && ds.class_names == NULL && ds.classes == 0);
    /* three bad files: the first in order named, the others counted, all tried (on 1 to 3
     * threads, whichever thread meets which file first) */
    write_bytes(at("f/Zebra/y.webp"), "RIFF\x24\0\0\0WEBPVP8 ", 16);
    write_bytes(at("f/ant/cut.png"), "\x89PNG", 4);
    for (int t = 1; t <= 3; t++) {
        cn_set_threads(t);
        CHECK(cn_dataset_load_folder(ctx, at("f"), 1, 4, 4, &ds) == CN_E_FORMAT);
        CHECK_CONTAINS(cn_ctx_message(ctx), "f/Zebra/y.webp: not a PNG or JPEG image but WebP: convert it to JPEG or PNG; "
                                            "and 2 more files that cannot be read (convnet data check ");
        CHECK(ds.images == NULL && ds.class_names == NULL && ds.classes == 0);
    }
    cn_set_threads(was);
    CHECK(unlink(at("f/bee/notes.txt")) == 0 && unlink(at("f/Zebra/y.webp")) == 0 && unlink(at("f/ant/cut.png")) == 0);
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
    CHECK_CONTAINS(r.problems, "chk/a/1.png (one image in two classes, 'a' and 'b')\n"); /* a label conflict */
    CHECK_CONTAINS(r.problems, "chk/b/trunc.png: truncated or corrupt PNG: ");
    CHECK_CONTAINS(r.problems, "chk/b/words.txt: not a PNG or JPEG image\n");
    CHECK_INT(r.layout, CN_DATA_FOLDER);
    CHECK(r.n_halves == 0 && r.halves == NULL);
    CHECK_INT(r.leaks, 0);
    CHECK_INT(r.missing_classes, 0);
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
    CHECK_CONTAINS(r.problems, "\n... and 6 more\n"); /* 5 files, and the one class (x) */
    cn_data_report_free(ctx, &r);

    CHECK(cn_data_check(ctx, at("flat"), 0, &r) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "neither an MNIST-format folder (train-*/t10k-* IDX files) nor an image folder: no class sub-folders (an image folder holds one sub-folder of images per class: ");
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
    CHECK_CONTAINS(r.problems, "m/train-images-idx3-ubyte (in both halves: leakage)\n");
    CHECK_CONTAINS(r.problems, "m/t10k-labels-idx1-ubyte: 1 labels for the 2 images of ");
    /* the halves: train (labels 0, 1, 12, 1; image 3 = image 1), then test (label 3 for its
     * first image; its image 1 = training image 0: a leak) */
    CHECK_INT(r.layout, CN_DATA_MNIST);
    CHECK_INT(r.leaks, 1);
    if (r.n_halves == 2) {
        CHECK_STR(r.halves[0].name, "train");
        CHECK_STR(r.halves[1].name, "test");
        CHECK_CONTAINS(r.halves[1].path, "m/t10k-images-idx3-ubyte");
        CHECK_INT(r.halves[0].files, 4);
        CHECK_INT(r.halves[1].files, 2);
        CHECK_INT(r.halves[0].duplicates, 1);
        CHECK_INT(r.halves[0].leaks, 0);
        CHECK_INT(r.halves[1].duplicates, 1);
        CHECK_INT(r.halves[1].leaks, 1);
        CHECK_INT(r.halves[0].bad_labels, 1);
        CHECK_INT(r.halves[1].bad_labels, 0);
        CHECK_INT(r.halves[0].classes, 10);
        CHECK_INT(r.halves[0].per_class[0], 1);
        CHECK_INT(r.halves[0].per_class[1], 2);
        CHECK_INT(r.halves[1].per_class[3], 1);
        CHECK_INT(r.halves[1].per_class[0] + r.halves[1].per_class[1], 0);
        CHECK(r.halves[0].class_names == NULL);
    } else {
        CHECK_INT(r.n_halves, 2);
    }
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

static void write_gz(const char *path, const void *b, size_t n)
{
    gzFile f = gzopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK_INT(gzwrite(f, b, (unsigned)n), (int64_t)n);
    gzclose(f);
}

/* A folder with one file unpacked: raw training images beside gzipped labels (and a gzipped
 * test half beside a raw copy of its images, cut short). Loading and data check pair the files
 * by one rule: the images gzipped, else raw; the labels as the images are, else the other way. */
static void test_mnist_mixed_files(void)
{
    mkdir_at("mix");
    const unsigned char tri[] = { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6 };
    const unsigned char trl[] = { 0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 1 };
    const unsigned char tei[] = { 0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 7, 8 };
    const unsigned char tel[] = { 0, 0, 8, 1, 0, 0, 0, 1, 1 };
    write_bytes(at("mix/train-images-idx3-ubyte"), tri, sizeof tri);
    write_gz(at("mix/train-labels-idx1-ubyte.gz"), trl, sizeof trl);
    write_gz(at("mix/t10k-images-idx3-ubyte.gz"), tei, sizeof tei);
    write_bytes(at("mix/t10k-images-idx3-ubyte"), tei, 10); /* ignored: the .gz comes first */
    write_gz(at("mix/t10k-labels-idx1-ubyte.gz"), tel, sizeof tel);
    cn_dataset ds;
    CHECK(cn_dataset_load_mnist(ctx, at("mix"), 1, &ds) == CN_OK);
    CHECK_INT(ds.count, 3);
    if (ds.count == 3) CHECK(ds.labels[0] == 2 && ds.labels[1] == 0 && ds.labels[2] == 1);
    cn_dataset_free(ctx, &ds);
    CHECK(cn_dataset_load_mnist(ctx, at("mix"), 0, &ds) == CN_OK);
    CHECK_INT(ds.count, 1);
    if (ds.count == 1) CHECK_INT(ds.labels[0], 1);
    cn_dataset_free(ctx, &ds);
    cn_data_report r;
    CHECK(cn_data_check(ctx, at("mix"), 10, &r) == CN_OK);
    CHECK_INT(r.files, 4);
    CHECK_INT(r.bad_files, 0);
    CHECK_INT(r.n_halves, 2);
    if (r.n_halves == 2) CHECK_INT(r.halves[0].files + r.halves[1].files, 4);
    CHECK(r.problems == NULL || r.problems[0] == '\0');
    cn_data_report_free(ctx, &r);
    /* no labels in either form: the one named is stored as the images are */
    remove(at("mix/train-labels-idx1-ubyte.gz"));
    CHECK(cn_dataset_load_mnist(ctx, at("mix"), 1, &ds) == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), "mix/train-labels-idx1-ubyte: ");
}

/* Images in folders inside a class folder are the class's, in ImageFolder's order (sorted
 * os.walk: the folders by path, so "sub" < "sub b" < "sub/deeper" as ' ' < '/', each one's files
 * by name); a link back to the class folder is not walked again, and two links to one folder
 * read it once. */
static void test_nested_class_folders(void)
{
    static const char *const dirs[] = { "nest", "nest/a", "nest/a/sub", "nest/a/sub b", "nest/a/sub/deeper", "nest/b" };
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) mkdir_at(dirs[i]);
    gray_png("nest/a/x.png", 10);
    gray_png("nest/a/sub/y.png", 20);
    gray_png("nest/a/sub b/z.png", 30);
    gray_png("nest/a/sub/deeper/q.png", 40);
    gray_png("nest/b/w.png", 50);
    CHECK(symlink("..", at("nest/a/sub/up")) == 0);      /* back to a: not walked again */
    CHECK(symlink("sub b", at("nest/a/again")) == 0);    /* a second way to "sub b": read once */
    cn_names n;
    CHECK(cn_list_class_files(ctx, at("nest/a"), &n) == CN_OK);
    static const char *const want[] = { "x.png", "again/z.png", "sub/y.png", "sub/deeper/q.png" };
    CHECK_INT(n.count, 4);
    for (int64_t i = 0; i < n.count && i < 4; i++) CHECK_STR(n.names[i], want[i]);
    cn_names_free(ctx, &n);
    CHECK(unlink(at("nest/a/again")) == 0);
    CHECK(cn_list_class_files(ctx, at("nest/a"), &n) == CN_OK);
    static const char *const want2[] = { "x.png", "sub/y.png", "sub b/z.png", "sub/deeper/q.png" };
    CHECK_INT(n.count, 4);
    for (int64_t i = 0; i < n.count && i < 4; i++) CHECK_STR(n.names[i], want2[i]);
    cn_names_free(ctx, &n);
    cn_dataset ds;
    if (cn_dataset_load_folder(ctx, at("nest"), 1, 2, 2, &ds) == CN_OK) {
        const double first[5] = { 10, 20, 30, 40, 50 };
        CHECK_INT(ds.count, 5);
        for (int i = 0; i < 5 && i < ds.count; i++) CHECK_NEAR(ds.images[i * 4], first[i] / 255.0, 1e-6);
        CHECK_INT(ds.labels[3], 0);
        CHECK_INT(ds.labels[4], 1);
        cn_dataset_free(ctx, &ds);
    } else {
        test_fail(__FILE__, __LINE__, "load_folder: %s", cn_ctx_message(ctx));
    }
    cn_data_report r;
    CHECK(cn_data_check(ctx, at("nest"), 0, &r) == CN_OK);
    CHECK_INT(r.files, 5);
    CHECK(r.problems && !*r.problems);
    cn_data_report_free(ctx, &r);
    CHECK(unlink(at("nest/a/sub/up")) == 0);
}

/* A class folder given as the data folder: its images beside its one sub-folder are not read,
 * and one class is no classifier's data; both said (data check exits 1 on them) */
static void test_check_loose_images(void)
{
    mkdir_at("loose");
    mkdir_at("loose/holiday");
    gray_png("loose/holiday/1.png", 10);
    gray_png("loose/2.png", 20);
    gray_png("loose/3.png", 30);
    write_bytes(at("loose/notes.txt"), "not an image", 12);
    cn_data_report r;
    CHECK(cn_data_check(ctx, at("loose"), 0, &r) == CN_OK);
    CHECK_INT(r.classes, 1);
    CHECK_CONTAINS(r.problems, "loose: 2 images beside the class folders are not read (each class is a sub-folder of "
                               "images); is this a class folder? give the folder above it\n");
    CHECK_CONTAINS(r.problems, "loose: one class only ('holiday'): a classifier needs images of two classes or more\n");
    cn_data_report_free(ctx, &r);
    mkdir_at("loose/work");
    gray_png("loose/work/4.png", 40);
    CHECK(unlink(at("loose/3.png")) == 0);
    CHECK(cn_data_check(ctx, at("loose"), 0, &r) == CN_OK);
    CHECK_CONTAINS(r.problems, "loose: 1 image beside the class folders is not read (each class is a sub-folder of images)\n");
    CHECK(strstr(r.problems, "one class only") == NULL && strstr(r.problems, "is this a class folder") == NULL);
    cn_data_report_free(ctx, &r);
}

/* halves spelt as exports spell them: Train/ (any case), Valid/ or validation/ for val/, TEST/;
 * the lower-case name first where several are there */
static void test_half_names(void)
{
    static const char *const dirs[] = { "hn", "hn/Train", "hn/Train/a", "hn/Train/b", "hn/Valid", "hn/Valid/a", "hn/TEST",
                                        "hn/TEST/b", "hn/notes" };
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) mkdir_at(dirs[i]);
    gray_png("hn/Train/a/1.png", 10);
    gray_png("hn/Train/b/2.png", 20);
    gray_png("hn/Valid/a/3.png", 30);
    gray_png("hn/TEST/b/4.png", 40);
    char p[4200];
    int has_test = 0, has_val = 0;
    CHECK_INT(cn_data_find_layout(at("hn"), &has_test, &has_val), CN_DATA_HALVES);
    CHECK(has_test && has_val);
    CHECK(cn_data_half_folder(at("hn"), "train", p, sizeof p) && strstr(p, "hn/Train") != NULL);
    CHECK(cn_data_half_folder(at("hn"), "val", p, sizeof p) && strstr(p, "hn/Valid") != NULL);
    CHECK(cn_data_half_folder(at("hn"), "test", p, sizeof p) && strstr(p, "hn/TEST") != NULL);
    mkdir_at("hn/val");
    CHECK(cn_data_half_folder(at("hn"), "val", p, sizeof p) && strstr(p, "hn/val") != NULL && !strstr(p, "Valid"));
    CHECK(rmdir(at("hn/val")) == 0);
    cn_data_report r;
    CHECK(cn_data_check(ctx, at("hn"), 0, &r) == CN_OK);
    CHECK_INT(r.n_halves, 3);
    if (r.n_halves == 3) {
        CHECK_STR(r.halves[1].name, "val");
        CHECK_CONTAINS(r.halves[1].path, "hn/Valid");
        CHECK_INT(r.halves[0].files + r.halves[1].files + r.halves[2].files, 4);
    }
    cn_data_report_free(ctx, &r);
    CHECK(!cn_data_half_folder(at("nope"), "train", p, sizeof p));
}

/* an image folder in halves, h/{train,val,test}/CLASS/ with 2x2 gray PNGs of one value each:
 *   train: a {1: 10, 2: 20}, b {3: 30}, c {4: 40}
 *   val:   a {5: 50}, b {} (empty), c {6: 60, 6b: 60 (a duplicate within val)}
 *   test:  a {7: 20 = train/a/2 (a leak)}, b {8: 50 = val/a/5 (a leak)}, d {9: 90}; no c
 * so the union of classes is a, b, c, d; d is missing from train and val, c from test. */
static void test_check_halves(void)
{
    static const char *const dirs[] = { "h", "h/train", "h/val", "h/test", "h/train/a", "h/train/b", "h/train/c",
                                        "h/val/a", "h/val/b", "h/val/c", "h/test/a", "h/test/b", "h/test/d" };
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) mkdir_at(dirs[i]);
    gray_png("h/train/a/1.png", 10);
    gray_png("h/train/a/2.png", 20);
    gray_png("h/train/b/3.png", 30);
    gray_png("h/train/c/4.png", 40);
    gray_png("h/val/a/5.png", 50);
    gray_png("h/val/c/6.png", 60);
    gray_png("h/val/c/6b.png", 60);
    gray_png("h/test/a/7.png", 20);
    gray_png("h/test/b/8.png", 50);
    gray_png("h/test/d/9.png", 90);

    cn_data_report r;
    if (cn_data_check(ctx, at("h"), 0, &r) != CN_OK) {
        test_fail(__FILE__, __LINE__, "data_check: %s", cn_ctx_message(ctx));
        return;
    }
    CHECK_INT(r.layout, CN_DATA_HALVES);
    CHECK_INT(r.files, 4 + 3 + 3);
    CHECK_INT(r.bad_files, 0);
    CHECK_INT(r.duplicates, 3);
    CHECK_INT(r.leaks, 2);
    CHECK_INT(r.missing_classes, 3);
    CHECK_INT(r.classes, 4);
    static const char *const all[4] = { "a", "b", "c", "d" };
    const int64_t all_count[4] = { 2 + 1 + 1, 1 + 0 + 1, 1 + 2, 1 };
    for (int c = 0; c < 4 && r.classes == 4; c++) {
        CHECK_STR(r.class_names[c], all[c]);
        CHECK_INT(r.per_class[c], all_count[c]);
    }
    CHECK_INT(r.n_halves, 3);
    if (r.n_halves == 3) {
        static const char *const name[3] = { "train", "val", "test" };
        static const char *const cls[3][3] = { { "a", "b", "c" }, { "a", "b", "c" }, { "a", "b", "d" } };
        const int64_t count[3][3] = { { 2, 1, 1 }, { 1, 0, 2 }, { 1, 1, 1 } };
        const int64_t files[3] = { 4, 3, 3 }, dups[3] = { 0, 1, 2 }, leaks[3] = { 0, 0, 2 };
        for (int i = 0; i < 3; i++) {
            const cn_data_half *h = &r.halves[i];
            char path[32];
            snprintf(path, sizeof path, "h/%s", name[i]);
            CHECK_STR(h->name, name[i]);
            CHECK_CONTAINS(h->path, path);
            CHECK_INT(h->files, files[i]);
            CHECK_INT(h->duplicates, dups[i]);
            CHECK_INT(h->leaks, leaks[i]);
            CHECK_INT(h->missing_classes, 1);
            CHECK_INT(h->classes, 3);
            for (int c = 0; c < 3 && h->classes == 3; c++) {
                CHECK_STR(h->class_names[c], cls[i][c]);
                CHECK_INT(h->per_class[c], count[i][c]);
            }
        }
    }
    CHECK_INT(count_lines(r.problems), 7);
    CHECK_CONTAINS(r.problems, "h/val/b: no images in this class folder\n");
    CHECK_CONTAINS(r.problems, "h/val/c/6b.png: same pixels as ");
    CHECK_CONTAINS(r.problems, "h/val/c/6.png\n"); /* same class: a duplicate, no more */
    CHECK_CONTAINS(r.problems, "h/test/a/7.png: same pixels as ");
    CHECK_CONTAINS(r.problems, "h/train/a/2.png (in both train/ and test/: leakage)\n");
    CHECK_CONTAINS(r.problems, "h/test/b/8.png: same pixels as ");
    CHECK_CONTAINS(r.problems, "h/val/a/5.png (one image in two classes, 'a' and 'b'; in both val/ and test/: leakage)\n");
    CHECK_CONTAINS(r.problems, "h/test: no class folder 'c' (train/ and val/ have one)\n");
    CHECK_CONTAINS(r.problems, "h/train: no class folder 'd' (test/ has one)\n");
    CHECK_CONTAINS(r.problems, "h/val: no class folder 'd' (test/ has one)\n");
    CHECK_STR(cn_ctx_message(ctx), "");
    /* the files decoded on 1 to 3 threads (and a broken one among them): the same report, line for line */
    write_bytes(at("h/train/b/zz.png"), "\x89PNG", 4);
    char *first = NULL;
    int was = cn_set_threads(0);
    for (int t = 1; t <= 3; t++) {
        cn_data_report rt;
        cn_set_threads(t);
        CHECK(cn_data_check(ctx, at("h"), 0, &rt) == CN_OK);
        CHECK(rt.bad_files == 1 && rt.duplicates == 3 && rt.leaks == 2 && rt.files == 11);
        if (t == 1) first = strdup(rt.problems ? rt.problems : "");
        else if (first) CHECK_STR(rt.problems, first);
        cn_data_report_free(ctx, &rt);
    }
    cn_set_threads(was);
    if (first) CHECK_CONTAINS(first, "h/train/b/zz.png: truncated or corrupt PNG");
    free(first);
    CHECK(unlink(at("h/train/b/zz.png")) == 0);
    cn_data_report_free(ctx, &r);

    /* 2 classes expected: every half has 3 class folders; its third class's images are labels
     * out of range (train c: 1, val c: 2, test d: 1) */
    CHECK(cn_data_check(ctx, at("h"), 2, &r) == CN_OK);
    CHECK_INT(r.bad_labels, 1 + 2 + 1);
    CHECK_CONTAINS(r.problems, "h/train: 3 class folders, 2 classes expected\n");
    CHECK_CONTAINS(r.problems, "h/test: 3 class folders, 2 classes expected\n");
    cn_data_report_free(ctx, &r);

    /* train/ with val/ alone is in halves too; train/ alone is a plain image folder (its one
     * class folder is "train") */
    mkdir_at("h2");
    mkdir_at("h2/train");
    mkdir_at("h2/train/a");
    mkdir_at("h2/val");
    gray_png("h2/train/a/1.png", 1);
    CHECK(cn_data_check(ctx, at("h2"), 0, &r) == CN_OK);
    CHECK_INT(r.layout, CN_DATA_HALVES);
    CHECK_INT(r.n_halves, 2);
    CHECK_CONTAINS(r.problems, "h2/val: no class sub-folders");
    CHECK_CONTAINS(r.problems, "h2/val: no class folder 'a' (train/ has one)\n");
    CHECK_INT(r.missing_classes, 1);
    if (r.n_halves == 2) CHECK_INT(r.halves[1].files, 0);
    cn_data_report_free(ctx, &r);
    CHECK(rmdir(at("h2/val")) == 0);
    CHECK(cn_data_check(ctx, at("h2"), 0, &r) == CN_OK);
    CHECK_INT(r.layout, CN_DATA_FOLDER);
    CHECK_INT(r.classes, 1);
    if (r.classes == 1) CHECK_STR(r.class_names[0], "train");
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
    CHECK_INT(r.layout, CN_DATA_MNIST);
    CHECK_INT(r.leaks, 0);
    CHECK_INT(r.n_halves, 2);
    for (int i = 0; i < r.n_halves && i < 2; i++) {
        CHECK_INT(r.halves[i].files, i ? 10000 : 60000);
        for (int k = 0; k < 10; k++) CHECK_INT(r.halves[i].per_class[k], i ? 1000 : 6000);
    }
    cn_data_report_free(ctx, &r);
    /* 5 classes asked for: labels 5..9 (35,000 images) are out of range */
    CHECK(cn_data_check(ctx, "/usr/share/datasets/fashion-mnist", 5, &r) == CN_OK);
    CHECK_INT(r.bad_labels, 35000);
    CHECK_INT(count_lines(r.problems), 101);
    CHECK_CONTAINS(r.problems, "... and 34900 more\n");
    cn_data_report_free(ctx, &r);
}

/* ---- malloc-failure sweep --------------------------------------------------------------------- */


enum { OP_PNG, OP_PNG_ANTIALIAS, OP_JPEG, OP_SAVE, OP_FOLDER, OP_CHECK_FOLDER, OP_CHECK_IDX, OP_CHECK_HALVES };

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
        case OP_PNG_ANTIALIAS:
            cn_ctx_set_resize(c, CN_RESIZE_ANTIALIAS);
            st = cn_image_load(c, at("rgb16i.png"), 3, 2, 1, out);
            break;
        case OP_JPEG: st = cn_image_load(c, at("rgb.jpg"), 1, 3, 3, out); break;
        case OP_SAVE: st = cn_image_save_png(c, at("sweep.png"), img, 1, 2, 2); break;
        case OP_FOLDER: st = cn_dataset_load_folder(c, at("f"), 1, 4, 4, &ds); break;
        case OP_CHECK_FOLDER: st = cn_data_check(c, at("chk"), 0, &r); break;
        case OP_CHECK_IDX: st = cn_data_check(c, at("m"), 10, &r); break;
        case OP_CHECK_HALVES: st = cn_data_check(c, at("h"), 0, &r); break;
        }
        int injected = fa.calls > n;
        fa.fail_at = -1;
        int before = test_failures;
        if (!injected) done = 1;
        if (st) {
            CHECK(injected);
            CHECK_INT(st, CN_E_NOMEM);
            CHECK(strlen(cn_ctx_message(c)) > 0);
            CHECK(ds.images == NULL && ds.class_names == NULL && r.problems == NULL && r.per_class == NULL &&
                  r.halves == NULL);
        } else if (op == OP_FOLDER) {
            CHECK_INT(ds.count, 6);
        } else if (op == OP_CHECK_FOLDER) {
            CHECK_INT(r.files, 8);
            CHECK_INT(r.duplicates, 1);
        } else if (op == OP_CHECK_IDX) {
            CHECK_INT(r.files, 4);
        } else if (op == OP_CHECK_HALVES) {
            CHECK_INT(r.files, 10);
            CHECK_INT(r.leaks, 2);
            CHECK_INT(r.missing_classes, 3);
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
    for (int op = OP_PNG; op <= OP_CHECK_HALVES; op++) sweep(op);
}

static const test_case cases[] = {
    { "setup", setup },
    { "PNG round trip, gray <-> RGB", test_png_round_trip },
    { "PNG palette, 16-bit, 1-bit, alpha, interlaced", test_png_formats },
    { "JPEG RGB, gray, CMYK", test_jpeg },
    { "JPEG EXIF orientation: the 8 turns, both byte orders, malformed tags ignored", test_jpeg_orientation },
    { "JPEG draft decoding (--resize draft): block means, the scale chosen, orientation", test_jpeg_draft },
    { "bilinear resize by hand", test_resize },
    { "antialiased resize by hand and against PyTorch; moire gone", test_resize_antialias },
    { "broken files and their messages", test_errors },
    { "hostile PNGs refused, cheaply", test_hostile_png },
    { "hostile JPEGs refused, cheaply", test_hostile_jpeg },
    { "image folder with 3 classes", test_folder },
    { "data check of an image folder", test_check_folder },
    { "data check of an MNIST-format folder", test_check_idx },
    { "MNIST-format files, one unpacked: loading and data check pair them alike", test_mnist_mixed_files },
    { "data check of an image folder in halves", test_check_halves },
    { "halves spelt Train/, Valid/, TEST/", test_half_names },
    { "data check of a class folder: loose images, one class", test_check_loose_images },
    { "folders inside a class folder: read, in ImageFolder's order, links not twice", test_nested_class_folders },
    { "data check of Fashion-MNIST", test_check_fashion_mnist },
    { "malloc-failure sweep: decode, save, folder, data check", test_malloc_sweep },
    { "teardown", teardown },
};
TEST_MAIN(cases)
