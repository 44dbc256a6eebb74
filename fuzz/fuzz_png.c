/* fuzz_png.c — libFuzzer target for the PNG decoder, through cn_pixels_decode_memory (the code
 * path of cn_pixels_decode from a memory stream): any bytes must decode or fail with a message,
 * never crash, leak, or allocate past the limits of src/data/data_impl.h (run with
 * -rss_limit_mb=2048 -malloc_limit_mb=2048, as `make fuzz` does). Each chunk's CRC is
 * recomputed before decoding, so that mutations reach libpng's handling of the chunk instead of
 * its CRC check. Seeds: tests/fuzz/png_corpus (gray, RGB, palette, 16-bit, interlaced, with
 * text chunks, written with libpng), replayed by the tests; dictionary fuzz/png.dict.
 * fuzz/fuzz_jpeg.c is this file with FUZZ_JPEG defined: the same checks, no CRCs to fix. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../src/data/data_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FUZZ_JPEG
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);
    if (!b) return 0;
    if (size) memcpy(b, data, size);
#ifndef FUZZ_JPEG
    for (size_t at = 8; size >= 8 && at + 12 <= size;) { /* length, name, data, CRC */
        uint32_t n = be32(b + at);
        if (n > size - at - 12) break;
        uint32_t crc = (uint32_t)crc32(0, b + at + 4, 4 + n);
        for (int i = 0; i < 4; i++) b[at + 8 + n + i] = (uint8_t)(crc >> (24 - 8 * i));
        at += 12 + (size_t)n;
    }
#endif
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) {
        free(b);
        return 0;
    }
    cn_pixels px;
#ifdef FUZZ_JPEG
    const char *name = "fuzz.jpg";
#else
    const char *name = "fuzz.png";
#endif
    if (cn_pixels_decode_memory(ctx, b, size, name, &px) == CN_OK) {
        /* what a decoded image promises: its size within the limit, 1 or 3 channels; and the
         * resizing reads only its pixels, to values in [0, 1] */
        if (px.h < 1 || px.w < 1 || px.h * px.w > CN_IMAGE_MAX_PIXELS || (px.channels != 1 && px.channels != 3))
            abort();
        float out[3 * 5 * 7];
        for (int mode = CN_RESIZE_BILINEAR; mode <= CN_RESIZE_ANTIALIAS; mode++) {
            if (cn_pixels_resize(ctx, &px, (cn_resize)mode, 3, 5, 7, out)) abort();
            for (int i = 0; i < 3 * 5 * 7; i++) /* a convex mix of samples, give or take float rounding */
                if (!(out[i] >= -1e-6f && out[i] <= 1 + 1e-6f)) abort();
        }
    } else if (!cn_ctx_message(ctx)[0] || px.data || px.h || px.w) {
        abort(); /* every failure says why, and leaves nothing behind */
    }
#ifdef FUZZ_JPEG
    /* --resize draft's decoding for a 1x1 input: 1/8, 1/4 or 1/2, the smallest leaving 4 pixels a
     * side; it fails where the whole decode fails, else gives that size of the same file */
    cn_pixels small;
    cn_status st = cn_pixels_decode_memory_for(ctx, b, size, name, 1, 1, &small);
    if ((st != CN_OK) != (px.data == NULL)) abort();
    if (!st) {
        int64_t d = 8;
        while (d > 1 && !((px.h + d - 1) / d >= 4 && (px.w + d - 1) / d >= 4)) d /= 2;
        if (small.file_h != px.file_h || small.file_w != px.file_w || small.channels != px.channels ||
            small.h != (px.h + d - 1) / d || small.w != (px.w + d - 1) / d)
            abort();
    }
    cn_pixels_free(ctx, &small);
#endif
    cn_pixels_free(ctx, &px);
    cn_ctx_destroy(ctx);
    free(b);
    return 0;
}
