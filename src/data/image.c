/* image.c — PNG and JPEG files: hardened decoding (libpng, libjpeg-turbo), bilinear resizing,
 * channel conversion, and writing 8-bit PNGs. Covered by tests/test_images.c and the fuzz
 * targets fuzz/fuzz_png.c and fuzz/fuzz_jpeg.c (their corpora replayed by the tests).
 *
 * Decoding: the format comes from the magic bytes (PNG signature, JPEG SOI), never from the
 * name. Both libraries report errors by longjmp back into the function that called setjmp
 * (libpng: png_jmpbuf; libjpeg: our error_exit); neither ever prints or exits. A file costs
 * memory and time in proportion to its real size, up to the limits of data_impl.h; what a
 * header claims is checked before anything is allocated from it:
 *  - the pixels against CN_IMAGE_MAX_PIXELS, and against the most a file of this size can hold
 *    (PNG: deflate's 1032:1; JPEG: jpeg_min_bytes below);
 *  - PNG: every chunk's length against the bytes left in the file; the ancillary chunks (text,
 *    ICC profiles, EXIF, ...) skipped unread, as none changes the 8-bit pixels decoded here;
 *  - JPEG: libjpeg's warnings about corrupt data are errors (libjpeg would go on and fill the
 *    rest of the image with grey), and so is a file whose scans leave a component or, in a
 *    progressive file, a coefficient uncoded (cut short at a scan boundary); at most
 *    CN_JPEG_MAX_SCANS scans; arithmetic coding, whose size says nothing of its pixels, refused;
 *    the EXIF orientation (APP1, kept by libjpeg at most 64 KiB a segment) turns the pixels
 *    upright, as a viewer shows them.
 * A file that is not a regular file (a pipe) has no size to check against: only the limits hold.
 *
 * Resizing (cn_resize): CN_RESIZE_BILINEAR is bilinear with half-pixel centres, src = (dst +
 * 0.5) * in / out - 0.5 clamped to the edge; that is OpenCV's INTER_LINEAR and PyTorch's
 * interpolate(bilinear, align_corners=False, antialias=False): shrinking by more than 2x skips
 * pixels, and a fine pattern comes out as moire. CN_RESIZE_ANTIALIAS shrinks with the triangle
 * filter stretched by the shrink factor (PIL's BILINEAR, which torchvision's Resize uses, and
 * interpolate(..., antialias=True)), every input pixel weighed; it enlarges as bilinear does.
 * Same-size "resizing" returns the pixels unchanged either way.
 *
 * setjmp: every object written between setjmp and a longjmp lives in a `decoder` owned by the
 * caller of the function holding the setjmp, so none of them is indeterminate afterwards. */
#define _POSIX_C_SOURCE 200809L /* stat, fileno, fmemopen */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "data_impl.h"

/* libpng's own allocations go through the context's allocator; failed notes that one failed */
typedef struct png_mem {
    cn_ctx *ctx;
    int failed;
} png_mem;

typedef struct decoder {
    cn_ctx *ctx;
    FILE *f;
    int64_t size;            /* bytes in the file; -1 when unknown (not a regular file) */
    int64_t pos;             /* PNG: bytes read so far */
    jmp_buf jmp;             /* libjpeg (libpng keeps its own) */
    char msg[256];
    int nomem;               /* an allocation of ours failed: CN_E_NOMEM is recorded */
    png_mem mem;             /* libpng's allocations */
    int too_big;             /* header dimensions over CN_IMAGE_MAX_PIXELS */
    int64_t hdr_w, hdr_h;
    unsigned coded;          /* JPEG: bit c set once a scan has coded component c */
    struct jpeg_progress_mgr progress;
    cn_pixels *out;
    unsigned char *scratch;  /* libjpeg CMYK row */
    int orientation;         /* JPEG: EXIF's 1..8 (1: as stored) */
    int64_t want_h, want_w;  /* JPEG: the size it will be resized to (0: decode it whole) */
} decoder;

/* ---- libpng ---------------------------------------------------------------------------------- */

static void png_err(png_structp png, png_const_charp msg)
{
    decoder *d = png_get_error_ptr(png);
    snprintf(d->msg, sizeof d->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* Reads for libpng, and checks each chunk's length as libpng reads it (the 8 bytes of length
 * and name, in one call): a chunk that would run past the end of the file is refused before
 * libpng allocates for it (it zeroes a buffer of the claimed size, 2 GB for a 100-byte file). */
static void png_read_cb(png_structp png, png_bytep buf, size_t n)
{
    decoder *d = png_get_io_ptr(png);
    if (fread(buf, 1, n, d->f) != n) png_error(png, ferror(d->f) ? "read error" : "unexpected end of file");
    d->pos += (int64_t)n;
    if (n == 8 && (png_get_io_state(png) & PNG_IO_CHUNK_HDR) && d->size >= 0) {
        int64_t len = (int64_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3];
        if (len + 4 > d->size - d->pos) { /* the data and its CRC */
            char name[5], why[160];
            for (int i = 0; i < 4; i++) {
                unsigned char c = buf[4 + i];
                name[i] = (char)((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ? c : '?');
            }
            name[4] = 0;
            snprintf(why, sizeof why, "chunk %s of %lld bytes runs past the end of the file (%lld bytes)", name,
                     (long long)len, (long long)d->size);
            png_error(png, why);
        }
    }
}

static png_voidp png_alloc_cb(png_structp png, png_alloc_size_t size)
{
    png_mem *m = png_get_mem_ptr(png);
    void *p = m->ctx->alloc.malloc_fn(m->ctx->alloc.user, size ? size : 1);
    if (!p) m->failed = 1;
    return p;
}

static void png_free_cb(png_structp png, png_voidp p)
{
    png_mem *m = png_get_mem_ptr(png);
    if (p) m->ctx->alloc.free_fn(m->ctx->alloc.user, p);
}

/* 0 when d->out holds the image; -1 on a libpng error (d->msg), d->too_big or d->nomem */
static int png_decode_body(decoder *d, png_structp png, png_infop info)
{
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_read_fn(png, d, png_read_cb);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, (png_uint_32)CN_IMAGE_MAX_PIXELS, (png_uint_32)CN_IMAGE_MAX_PIXELS);
    png_set_chunk_malloc_max(png, (png_alloc_size_t)CN_PNG_MAX_CHUNK_BYTES);
    png_set_chunk_cache_max(png, CN_PNG_MAX_KEPT_CHUNKS);
    /* every ancillary chunk but tRNS skipped unread (-1: libpng's list of the known ones, and all
     * unknown ones): no text, ICC profile or EXIF is kept or inflated */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    d->hdr_w = w, d->hdr_h = h;
    if ((int64_t)w * h > CN_IMAGE_MAX_PIXELS) {
        d->too_big = 1;
        return -1;
    }
    png_set_expand(png);   /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha */
    png_set_scale_16(png); /* 16 -> 8 bits, rounded */
    png_set_strip_alpha(png);
    int passes = png_set_interlace_handling(png); /* 7 when Adam7-interlaced, else 1 */
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    if ((ch != 1 && ch != 3) || png_get_bit_depth(png, info) != 8 || png_get_rowbytes(png, info) != (size_t)w * ch)
        png_error(png, "unexpected sample layout after conversion");
    d->out->h = h, d->out->w = w, d->out->channels = ch;
    if (!(d->out->data = cn_malloc_large(d->ctx, (size_t)w * h * ch))) {
        d->nomem = 1;
        return -1;
    }
    /* row by row into the image (each pass fills its own pixels of the row) */
    for (int p = 0; p < passes; p++)
        for (png_uint_32 y = 0; y < h; y++) png_read_row(png, d->out->data + (size_t)y * w * ch, NULL);
    png_read_end(png, NULL); /* to IEND: a file cut after the pixels is still truncated */
    return 0;
}

/* The size from IHDR, which must come first, before libpng reads the chunks up to the pixels:
 * a file that stops after a header claiming 10^10 pixels is refused as too big, not truncated.
 * A file too short to hold its pixels even at deflate's best ratio is refused too, before the
 * pixels' buffer is allocated. -1 when refused; else the file is back after the signature. */
static int png_peek_size(decoder *d)
{
    static const int channels[7] = { 1, 0, 3, 1, 2, 0, 4 }; /* by color type */
    unsigned char b[18];
    size_t n = fread(b, 1, sizeof b, d->f);
    if (n == sizeof b && !memcmp(b + 4, "IHDR", 4)) {
        d->hdr_w = (int64_t)b[8] << 24 | b[9] << 16 | b[10] << 8 | b[11];
        d->hdr_h = (int64_t)b[12] << 24 | b[13] << 16 | b[14] << 8 | b[15];
        if (d->hdr_w > CN_IMAGE_MAX_PIXELS || d->hdr_h > CN_IMAGE_MAX_PIXELS ||
            d->hdr_w * d->hdr_h > CN_IMAGE_MAX_PIXELS) {
            d->too_big = 1;
            return -1;
        }
        int64_t bits = (int64_t)b[16] * (b[17] < 7 ? channels[b[17]] : 0);
        int64_t raw = d->hdr_h * (1 + (d->hdr_w * bits + 7) / 8); /* filter byte + samples per row */
        if (d->size >= 0 && raw / CN_DEFLATE_MAX_RATIO > d->size + 64) {
            snprintf(d->msg, sizeof d->msg, "%lld bytes cannot hold %lldx%lld pixels", (long long)d->size,
                     (long long)d->hdr_w, (long long)d->hdr_h);
            return -1;
        }
    }
    if (fseek(d->f, 8, SEEK_SET)) {
        snprintf(d->msg, sizeof d->msg, "cannot seek: %s", strerror(errno));
        return -1;
    }
    d->pos = 8;
    return 0;
}

static int png_decode(decoder *d)
{
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, d, png_err, png_warn, &d->mem, png_alloc_cb,
                                               png_free_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        cn_fail(d->ctx, CN_E_NOMEM, "out of memory (libpng)");
        d->nomem = 1;
        return -1;
    }
    int r = png_decode_body(d, png, info);
    png_destroy_read_struct(&png, &info, NULL);
    return r;
}

/* ---- libjpeg-turbo --------------------------------------------------------------------------- */

static void jpeg_error_exit_cb(j_common_ptr cinfo)
{
    decoder *d = cinfo->client_data;
    char buf[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, buf);
    snprintf(d->msg, sizeof d->msg, "%s", buf);
    longjmp(d->jmp, 1);
}

/* Warnings about the file's metadata (an unknown JFIF version or Adobe transform) are dropped;
 * every other one says the entropy-coded data is corrupt or cut short, where libjpeg would go
 * on and fill the rest of the image with grey: an error here. */
static void jpeg_emit_cb(j_common_ptr cinfo, int level)
{
    if (level >= 0) return; /* trace messages */
    int code = cinfo->err->msg_code;
    if (code != JWRN_JFIF_MAJOR && code != JWRN_ADOBE_XFORM) jpeg_error_exit_cb(cinfo);
    cinfo->err->num_warnings++;
}

static void jpeg_output_cb(j_common_ptr cinfo) { (void)cinfo; }

/* Called by libjpeg before each piece of input it consumes, the first time once the first scan
 * of a multi-scan file has begun: notes the components each scan codes, and stops a file of
 * too many scans before libjpeg walks the image's coefficients once more. */
static void jpeg_progress_cb(j_common_ptr cinfo)
{
    struct jpeg_decompress_struct *di = (struct jpeg_decompress_struct *)cinfo;
    decoder *d = cinfo->client_data;
    if (di->input_scan_number > CN_JPEG_MAX_SCANS) {
        snprintf(d->msg, sizeof d->msg, "more than %d scans", CN_JPEG_MAX_SCANS);
        longjmp(d->jmp, 1);
    }
    for (int i = 0; i < di->comps_in_scan; i++) d->coded |= 1u << di->cur_comp_info[i]->component_index;
}

/* The fewest bytes a complete Huffman-coded JPEG with this header can have (complete: every
 * component coded, as jpeg_check_scans requires). Each component has width_in_blocks x
 * height_in_blocks blocks of 8x8 samples; every block has its DC coefficient coded, by a Huffman
 * code of at least 1 bit, and in a sequential file its AC coefficients by at least one more
 * (end-of-block, or the last coefficient's). Progressive AC scans can cost almost nothing (one
 * end-of-band run covers up to 32767 blocks), so they are not counted. A JPEG holds therefore at
 * most 256 pixels a byte as baseline gray (2 bits a 64-pixel block), 171 as baseline 4:2:0
 * colour (6 blocks a 16x16 MCU), 512 as progressive gray. */
static int64_t jpeg_min_bytes(const struct jpeg_decompress_struct *ci)
{
    int64_t blocks = 0;
    for (int c = 0; c < ci->num_components; c++)
        blocks += (int64_t)ci->comp_info[c].width_in_blocks * ci->comp_info[c].height_in_blocks;
    return (blocks * (ci->progressive_mode ? 1 : 2) + 7) / 8;
}

/* What jpeg_read_header found, checked before jpeg_start_decompress allocates from it (the
 * image, and for a multi-scan file the coefficients of the whole image): the size against
 * CN_IMAGE_MAX_PIXELS and against the file's size. 0 or -1. */
static int jpeg_check_header(decoder *d, struct jpeg_decompress_struct *ci)
{
    d->hdr_w = ci->image_width, d->hdr_h = ci->image_height;
    if (d->hdr_w * d->hdr_h > CN_IMAGE_MAX_PIXELS) {
        d->too_big = 1;
        return -1;
    }
    if (ci->arith_code) {
        snprintf(d->msg, sizeof d->msg, "arithmetic coding is not read (its size does not bound its pixels)");
        return -1;
    }
    if (ci->num_components != 1 && ci->num_components != 3 && ci->num_components != 4) {
        snprintf(d->msg, sizeof d->msg, "%d components (1 gray, 3 colour or 4 CMYK are read)", ci->num_components);
        return -1;
    }
    int64_t least = jpeg_min_bytes(ci);
    if (d->size >= 0 && least > d->size) {
        snprintf(d->msg, sizeof d->msg, "%lld bytes cannot hold %lldx%lld pixels (a complete JPEG of that size has "
                 "at least %lld)", (long long)d->size, (long long)d->hdr_w, (long long)d->hdr_h, (long long)least);
        return -1;
    }
    for (int i = 0; i < ci->comps_in_scan; i++) d->coded |= 1u << ci->cur_comp_info[i]->component_index;
    return 0;
}

/* Once the input of a multi-scan file is consumed (jpeg_start_decompress): every component
 * coded, and in a progressive file every coefficient to its last bit; a file cut at a scan
 * boundary (with an end marker added, or not) has neither, and libjpeg does not warn. */
static int jpeg_check_scans(decoder *d, struct jpeg_decompress_struct *ci)
{
    for (int c = 0; c < ci->num_components; c++) {
        if (!(d->coded >> c & 1)) {
            snprintf(d->msg, sizeof d->msg, "no scan codes component %d (the file is cut short)", c + 1);
            return -1;
        }
        for (int k = 0; ci->progressive_mode && ci->coef_bits && k < DCTSIZE2; k++)
            if (ci->coef_bits[c][k] != 0) {
                snprintf(d->msg, sizeof d->msg, "the scans stop before coefficient %d of component %d is complete "
                         "(the file is cut short)", k, c + 1);
                return -1;
            }
    }
    return 0;
}

/* The orientation tag (0x0112) of an APP1 segment's EXIF data, 1..8; 1 (as stored) when there is
 * none or the data is malformed. Every offset is checked against the segment's n bytes. */
static int exif_orientation(const unsigned char *p, size_t n)
{
    if (n < 6 + 8 || memcmp(p, "Exif\0\0", 6)) return 1;
    p += 6, n -= 6; /* the TIFF header: byte order, 42, the first IFD's offset */
    int le = p[0] == 'I' && p[1] == 'I';
    if (!le && !(p[0] == 'M' && p[1] == 'M')) return 1;
#define EXIF16(q) (le ? (unsigned)(q)[0] | (unsigned)(q)[1] << 8 : (unsigned)(q)[0] << 8 | (unsigned)(q)[1])
#define EXIF32(q) (le ? EXIF16(q) | (uint32_t)EXIF16((q) + 2) << 16 : (uint32_t)EXIF16(q) << 16 | EXIF16((q) + 2))
    uint32_t ifd = EXIF32(p + 4);
    if (EXIF16(p + 2) != 42 || ifd < 8 || ifd > n - 2) return 1;
    unsigned count = EXIF16(p + ifd);
    for (unsigned i = 0; i < count && ifd + 2 + 12 * (size_t)(i + 1) <= n; i++) {
        const unsigned char *e = p + ifd + 2 + 12 * (size_t)i; /* tag, type, count, value */
        if (EXIF16(e) != 0x0112) continue;
        unsigned v = EXIF16(e + 8);
        return EXIF16(e + 2) == 3 && EXIF32(e + 4) == 1 && v >= 1 && v <= 8 ? (int)v : 1; /* one SHORT */
    }
#undef EXIF16
#undef EXIF32
    return 1;
}

/* px (h x w x channels) turned upright as EXIF orientation o says, as a viewer shows it: 2
 * mirrored, 3 turned 180 degrees, 4 flipped upside down, 5 transposed, 6 turned 90 degrees
 * clockwise, 7 transversed, 8 turned 90 degrees anticlockwise; 5..8 swap h and w. 0, or -1
 * out of memory (px unchanged). */
static int orient_pixels(cn_ctx *ctx, cn_pixels *px, int o)
{
    if (o <= 1 || o > 8) return 0;
    int64_t h = px->h, w = px->w, oh = o >= 5 ? w : h, ow = o >= 5 ? h : w, ch = px->channels;
    unsigned char *t = cn_malloc_large(ctx, (size_t)(h * w * ch));
    if (!t) return -1;
    for (int64_t y = 0; y < oh; y++)
        for (int64_t x = 0; x < ow; x++) {
            int64_t sy, sx; /* the stored pixel shown at (y, x) */
            switch (o) {
            case 2: sy = y, sx = w - 1 - x; break;
            case 3: sy = h - 1 - y, sx = w - 1 - x; break;
            case 4: sy = h - 1 - y, sx = x; break;
            case 5: sy = x, sx = y; break;
            case 6: sy = h - 1 - x, sx = y; break;
            case 7: sy = h - 1 - x, sx = w - 1 - y; break;
            default: sy = x, sx = w - 1 - y; break; /* 8 */
            }
            memcpy(t + (y * ow + x) * ch, px->data + (sy * w + sx) * ch, (size_t)ch);
        }
    cn_free(ctx, px->data);
    px->data = t, px->h = oh, px->w = ow;
    return 0;
}

/* The divisor of the JPEG's size it is decoded at (data_impl.h, cn_pixels_decode_for): 8, 4 or
 * 2, the largest that leaves both sides at least 4x the size it is resized to, else 1. The stored
 * image is compared with that size turned as its EXIF orientation turns it. (A gap of 2, PIL's
 * thumbnail's, left photos within 7/255 of the whole decode and a line drawing within 39/255: the
 * 1/2 and 1/4 scaled IDCTs ring at sharp edges; 4 leaves them within 0.6/255 and 13/255.) */
static int64_t jpeg_draft(const decoder *d)
{
    if (d->want_h <= 0 || d->want_w <= 0) return 1;
    int turned = d->orientation >= 5;
    int64_t need_w = 4 * (turned ? d->want_h : d->want_w), need_h = 4 * (turned ? d->want_w : d->want_h);
    for (int64_t denom = 8; denom >= 2; denom /= 2)
        if ((d->hdr_w + denom - 1) / denom >= need_w && (d->hdr_h + denom - 1) / denom >= need_h) return denom;
    return 1;
}

static int jpeg_decode_body(decoder *d, struct jpeg_decompress_struct *cinfo)
{
    if (setjmp(d->jmp)) return -1;
    jpeg_create_decompress(cinfo);
    d->progress.progress_monitor = jpeg_progress_cb;
    cinfo->progress = &d->progress;
    jpeg_stdio_src(cinfo, d->f);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF); /* EXIF: a segment's bytes, in the file */
    jpeg_read_header(cinfo, TRUE);
    if (jpeg_check_header(d, cinfo)) return -1;
    d->orientation = 1;
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m && d->orientation == 1; m = m->next)
        if (m->marker == JPEG_APP0 + 1) d->orientation = exif_orientation(m->data, m->data_length);
    J_COLOR_SPACE in = cinfo->jpeg_color_space;
    cinfo->out_color_space = in == JCS_GRAYSCALE ? JCS_GRAYSCALE : in == JCS_CMYK || in == JCS_YCCK ? JCS_CMYK : JCS_RGB;
    int64_t denom = jpeg_draft(d), want_w = (d->hdr_w + denom - 1) / denom, want_h = (d->hdr_h + denom - 1) / denom;
    cinfo->scale_num = 1, cinfo->scale_denom = (unsigned)denom;
    jpeg_start_decompress(cinfo);
    if (jpeg_check_scans(d, cinfo)) return -1;
    int64_t w = cinfo->output_width, h = cinfo->output_height;
    int comps = cinfo->output_components, ch = comps == 1 ? 1 : 3;
    if ((comps != 1 && comps != 3 && comps != 4) || w != want_w || h != want_h) {
        snprintf(d->msg, sizeof d->msg, "unexpected output of %d components", comps);
        return -1;
    }
    d->out->h = h, d->out->w = w, d->out->channels = ch;
    d->out->data = cn_malloc_large(d->ctx, (size_t)(w * h * ch));
    if (comps == 4) d->scratch = cn_malloc(d->ctx, (size_t)w * 4);
    if (!d->out->data || (comps == 4 && !d->scratch)) {
        d->nomem = 1;
        return -1;
    }
    /* Adobe's CMYK JPEGs store inverted ink values (what Photoshop writes, and PIL assumes) */
    int inverted = cinfo->saw_Adobe_marker;
    while (cinfo->output_scanline < cinfo->output_height) {
        unsigned char *dst = d->out->data + (size_t)cinfo->output_scanline * w * ch;
        JSAMPROW row = comps == 4 ? d->scratch : dst;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            snprintf(d->msg, sizeof d->msg, "no scan line %u", cinfo->output_scanline);
            return -1;
        }
        for (int64_t x = 0; comps == 4 && x < w; x++) {
            unsigned k = inverted ? row[4 * x + 3] : 255u - row[4 * x + 3];
            for (int c = 0; c < 3; c++) {
                unsigned v = inverted ? row[4 * x + c] : 255u - row[4 * x + c];
                dst[3 * x + c] = (unsigned char)((v * k + 127) / 255);
            }
        }
    }
    jpeg_finish_decompress(cinfo);
    if (orient_pixels(d->ctx, d->out, d->orientation)) {
        d->nomem = 1;
        return -1;
    }
    return 0;
}

static int jpeg_decode(decoder *d)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&err);
    err.error_exit = jpeg_error_exit_cb;
    err.emit_message = jpeg_emit_cb;
    err.output_message = jpeg_output_cb;
    cinfo.client_data = d; /* kept by jpeg_create_decompress, which clears the rest */
    int r = jpeg_decode_body(d, &cinfo);
    jpeg_destroy_decompress(&cinfo); /* safe after a failure anywhere, also before creation */
    return r;
}

/* ---- decoding entry points ------------------------------------------------------------------- */

void cn_pixels_free(cn_ctx *ctx, cn_pixels *px)
{
    if (!px) return;
    cn_free(ctx, px->data);
    memset(px, 0, sizeof *px);
}

/* The decoding behind both entry points: f at its start, size its bytes or -1; name for messages */
static cn_status pixels_decode_stream(cn_ctx *ctx, const char *name, FILE *f, int64_t size, int64_t want_h,
                                      int64_t want_w, cn_pixels *out)
{
    cn_status st = CN_OK;
    decoder d;
    memset(&d, 0, sizeof d);
    d.ctx = ctx, d.f = f, d.size = size, d.out = out, d.want_h = want_h, d.want_w = want_w;
    d.mem.ctx = ctx;
    unsigned char sig[8];
    errno = 0;
    size_t n = fread(sig, 1, sizeof sig, f);
    if (ferror(f)) {
        st = cn_fail(ctx, CN_E_IO, "%s: cannot read: %s", name, errno ? strerror(errno) : "read error");
        goto done;
    }
    cn_file_kind kind = cn_file_kind_of(sig, n);
    int is_png = kind == CN_FILE_PNG, is_jpeg = kind == CN_FILE_JPEG;
    if (!is_png && !is_jpeg) {
        unsigned char head[12]; /* 4 more bytes name the other kinds */
        memcpy(head, sig, n);
        size_t more = n == sizeof sig ? fread(head + n, 1, sizeof head - n, f) : 0;
        kind = cn_file_kind_of(head, n + more);
        if (n == 0)
            st = cn_fail(ctx, CN_E_FORMAT, "%s: not a PNG or JPEG image (the file is empty)", name);
        else if (kind != CN_FILE_OTHER)
            st = cn_fail(ctx, CN_E_FORMAT, "%s: not a PNG or JPEG image but %s%s: convert it to JPEG or PNG", name,
                         cn_file_kind_names[kind], kind == CN_FILE_HEIC ? " (an iPhone's photo format)" : "");
        else
            st = cn_fail(ctx, CN_E_FORMAT, "%s: not a PNG or JPEG image", name);
        goto done;
    }
    int r;
    if (is_png && n < sizeof sig) {
        snprintf(d.msg, sizeof d.msg, "unexpected end of file");
        r = -1;
    } else if (is_png) {
        r = png_peek_size(&d) ? -1 : png_decode(&d);
    } else {
        rewind(f);
        r = jpeg_decode(&d);
    }
    if (r == 0) {
        int turned = is_jpeg && d.orientation >= 5;
        out->file_h = is_jpeg ? (turned ? d.hdr_w : d.hdr_h) : out->h;
        out->file_w = is_jpeg ? (turned ? d.hdr_h : d.hdr_w) : out->w;
        goto done;
    }
    if (d.nomem)
        st = CN_E_NOMEM; /* message recorded by cn_malloc */
    else if (d.mem.failed)
        st = cn_fail(ctx, CN_E_NOMEM, "%s: out of memory decoding the PNG", name);
    else if (d.too_big)
        st = cn_fail(ctx, CN_E_FORMAT, "%s: %s of %lldx%lld pixels; images over %lld pixels are refused", name,
                     is_png ? "PNG" : "JPEG", (long long)d.hdr_w, (long long)d.hdr_h, (long long)CN_IMAGE_MAX_PIXELS);
    else
        st = cn_fail(ctx, CN_E_FORMAT, "%s: truncated or corrupt %s: %s", name, is_png ? "PNG" : "JPEG", d.msg);
done:
    cn_free(ctx, d.scratch);
    if (st) cn_pixels_free(ctx, out);
    return st;
}

cn_status cn_pixels_decode(cn_ctx *ctx, const char *path, cn_pixels *out)
{
    return cn_pixels_decode_for(ctx, path, 0, 0, out);
}

cn_status cn_pixels_decode_for(cn_ctx *ctx, const char *path, int64_t h, int64_t w, cn_pixels *out)
{
    memset(out, 0, sizeof *out);
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cn_fail(ctx, CN_E_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "fopen failed");
    struct stat sb;
    int64_t size = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1;
    cn_status st = pixels_decode_stream(ctx, path, f, size, h, w, out);
    fclose(f);
    return st;
}

cn_status cn_pixels_decode_memory(cn_ctx *ctx, const void *data, size_t size, const char *name, cn_pixels *out)
{
    return cn_pixels_decode_memory_for(ctx, data, size, name, 0, 0, out);
}

cn_status cn_pixels_decode_memory_for(cn_ctx *ctx, const void *data, size_t size, const char *name, int64_t h,
                                      int64_t w, cn_pixels *out)
{
    memset(out, 0, sizeof *out);
    static const unsigned char none[1];
    errno = 0;
    /* fmemopen reads, never writes, in "rb" (hence the cast); the same stdio path as a file */
    FILE *f = fmemopen((void *)(size ? data : none), size, "rb");
    if (!f) return cn_fail(ctx, CN_E_IO, "%s: cannot open: %s", name, errno ? strerror(errno) : "fmemopen failed");
    cn_status st = pixels_decode_stream(ctx, name, f, (int64_t)size, h, w, out);
    fclose(f);
    return st;
}

/* ---- resizing and channel conversion --------------------------------------------------------- */

/* the two source samples of output index i and the weight of the second */
static void bilinear_tap(int64_t i, double scale, int64_t n, int64_t *i0, int64_t *i1, float *frac)
{
    double s = ((double)i + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    int64_t a = (int64_t)s;
    if (a >= n - 1) {
        *i0 = *i1 = n - 1, *frac = 0;
        return;
    }
    *i0 = a, *i1 = a + 1, *frac = (float)(s - (double)a);
}

/* channel ch (of c) of the source pixel at p, in [0, 1]: 8-bit samples / 255, float ones as they are */
static float sample(const cn_image_view *v, const unsigned char *p, int64_t c, int64_t ch)
{
    int gray = v->c < 3; /* gray, or gray + alpha: replicated when c = 3 */
    if (v->format == CN_PIXELS_F32) {
        const float *f = (const float *)(const void *)p;
        if (gray) return f[0];
        if (c == 3) return f[ch];
        return 0.299f * f[0] + 0.587f * f[1] + 0.114f * f[2];
    }
    if (gray) return (float)p[0] / 255.0f;
    if (c == 3) return (float)p[ch] / 255.0f;                            /* RGB */
    return (0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]) / 255.0f;     /* luma (ITU-R BT.601) */
}

static int64_t sample_bytes(cn_pixel_format f) { return f == CN_PIXELS_F32 ? (int64_t)sizeof(float) : 1; }

/* Plain bilinear (CN_RESIZE_BILINEAR): two taps an axis, nothing allocated */
static void resize_bilinear(const cn_image_view *v, int64_t c, int64_t h, int64_t w, float *out)
{
    double sy = (double)v->h / (double)h, sx = (double)v->w / (double)w;
    int64_t pixel = v->c * sample_bytes(v->format), stride = v->row_bytes ? v->row_bytes : v->w * pixel;
    const unsigned char *data = v->data;
    for (int64_t y = 0; y < h; y++) {
        int64_t y0, y1;
        float fy;
        bilinear_tap(y, sy, v->h, &y0, &y1, &fy);
        const unsigned char *r0 = data + y0 * stride, *r1 = data + y1 * stride;
        for (int64_t x = 0; x < w; x++) {
            int64_t x0, x1;
            float fx;
            bilinear_tap(x, sx, v->w, &x0, &x1, &fx);
            x0 *= pixel, x1 *= pixel;
            for (int64_t ch = 0; ch < c; ch++) {
                float top = (1 - fx) * sample(v, r0 + x0, c, ch) + fx * sample(v, r0 + x1, c, ch);
                float bot = (1 - fx) * sample(v, r1 + x0, c, ch) + fx * sample(v, r1 + x1, c, ch);
                out[(ch * h + y) * w + x] = (1 - fy) * top + fy * bot;
            }
        }
    }
}

/* The taps of one axis resized from n to m samples with antialiasing: output i is the sum over
 * k < count[i] of w[at[i] + k] * input[first[i] + k]. */
typedef struct {
    int64_t *first, *count, *at;
    float *w;
} aa_taps;

static void aa_taps_free(cn_ctx *ctx, aa_taps *t)
{
    cn_free(ctx, t->first);
    cn_free(ctx, t->w);
    memset(t, 0, sizeof *t);
}

/* PIL's and PyTorch's (_upsample_bilinear2d_aa) weights: the triangle filter centred on output
 * i's centre in input coordinates, (i + 0.5) * n / m, its support stretched by the shrink
 * factor when shrinking (1 when enlarging: the plain bilinear taps), the window clipped to the
 * image and the weights normalised to sum 1. Zero weights at a window's ends are dropped, so a
 * same-size axis copies its samples exactly. */
static cn_status aa_taps_make(cn_ctx *ctx, int64_t n, int64_t m, aa_taps *t)
{
    memset(t, 0, sizeof *t);
    double scale = (double)n / (double)m, support = scale >= 1 ? scale : 1, inv = scale >= 1 ? 1 / scale : 1;
    if (!(t->first = cn_malloc(ctx, (size_t)m * 3 * sizeof(int64_t)))) return CN_E_NOMEM;
    t->count = t->first + m, t->at = t->count + m;
    int64_t total = 0;
    for (int64_t i = 0; i < m; i++) {
        double centre = scale * ((double)i + 0.5);
        int64_t lo = (int64_t)(centre - support + 0.5), hi = (int64_t)(centre + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > n) hi = n;
        t->first[i] = lo, t->count[i] = hi - lo, t->at[i] = total;
        total += hi - lo;
    }
    if (!(t->w = cn_malloc(ctx, (size_t)total * sizeof(float)))) {
        aa_taps_free(ctx, t);
        return CN_E_NOMEM;
    }
    for (int64_t i = 0; i < m; i++) {
        double centre = scale * ((double)i + 0.5), sum = 0;
        float *w = t->w + t->at[i];
        for (int64_t k = 0; k < t->count[i]; k++) {
            double d = fabs(((double)(t->first[i] + k) + 0.5 - centre) * inv);
            w[k] = (float)(d < 1 ? 1 - d : 0);
            sum += w[k];
        }
        for (int64_t k = 0; k < t->count[i]; k++) w[k] = (float)(w[k] / sum); /* sum > 0: a tap lies within 0.5 */
        while (t->count[i] > 1 && w[t->count[i] - 1] == 0) t->count[i]--;
        while (t->count[i] > 1 && w[0] == 0) t->first[i]++, t->at[i]++, t->count[i]--, w++;
    }
    return CN_OK;
}

/* Channel ch of n pixels from p on as sample() gives them, into out: the same expressions, with
 * the format's branches taken once a row, so the loops vectorise (the same bits) */
static void row_samples(const cn_image_view *v, const unsigned char *p, int64_t c, int64_t ch, int64_t n, float *out)
{
    int gray = v->c < 3;
    int64_t pixel = v->c * sample_bytes(v->format);
    if (v->format == CN_PIXELS_F32) {
        for (int64_t x = 0; x < n; x++) out[x] = sample(v, p + x * pixel, c, ch);
    } else if (gray || c == 3) {
        const unsigned char *q = p + (gray ? 0 : ch);
        for (int64_t x = 0; x < n; x++) out[x] = (float)q[x * pixel] / 255.0f;
    } else {
        for (int64_t x = 0; x < n; x++) {
            const unsigned char *q = p + x * pixel;
            out[x] = (0.299f * q[0] + 0.587f * q[1] + 0.114f * q[2]) / 255.0f;
        }
    }
}

/* CN_RESIZE_ANTIALIAS: one axis, then the other, through a float image between; of the two
 * orders the one of fewer multiplications (counted from the taps). Either pass is a sum over
 * the input or over the output, so the cheaper order costs time and memory in proportion to
 * the larger of the two, whatever their shapes (a 1 x 2^26 image made 224x224 too). Each sum
 * adds its float products in double, tap by tap in order; an input row is first read into
 * floats (row_samples), and the row pass runs the channels' sums side by side. */
static cn_status resize_antialias(cn_ctx *ctx, const cn_image_view *v, int64_t c, int64_t h, int64_t w, float *out)
{
    aa_taps ty, tx;
    float *mid = NULL, *row = NULL;
    double *acc = NULL; /* a row's sums: a shrink by 1000x adds 2000 terms */
    cn_status st = aa_taps_make(ctx, v->h, h, &ty);
    if (!st) st = aa_taps_make(ctx, v->w, w, &tx);
    if (st) {
        aa_taps_free(ctx, &ty);
        return st;
    }
    int64_t pixel = v->c * sample_bytes(v->format), stride = v->row_bytes ? v->row_bytes : v->w * pixel;
    const unsigned char *data = v->data;
    int64_t ny = ty.at[h - 1] + ty.count[h - 1], nx = tx.at[w - 1] + tx.count[w - 1]; /* taps in all */
    int rows_first = (double)v->h * (double)nx + (double)w * (double)ny <= (double)v->w * (double)ny + (double)h * (double)nx;
    /* mid: (c, v->h, w) after the rows, (c, h, v->w) after the columns */
    int64_t mh = rows_first ? v->h : h, mw = rows_first ? w : v->w;
    if (!(mid = cn_malloc_large(ctx, (size_t)(c * mh * mw) * sizeof(float))) ||
        !(acc = cn_malloc(ctx, (size_t)(rows_first ? w : mw) * sizeof(double))) ||
        !(row = cn_malloc(ctx, (size_t)(c * v->w) * sizeof(float)))) {
        st = CN_E_NOMEM;
        goto done;
    }
    if (rows_first) {
        for (int64_t y = 0; y < v->h; y++) {
            for (int64_t ch = 0; ch < c; ch++) row_samples(v, data + y * stride, c, ch, v->w, row + ch * v->w);
            for (int64_t x = 0; x < w; x++) {
                const float *wt = tx.w + tx.at[x], *r = row + tx.first[x];
                int64_t n = tx.count[x];
                if (c == 3) { /* three sums side by side, each in its own order */
                    const float *g = r + v->w, *b = g + v->w;
                    double s0 = 0, s1 = 0, s2 = 0;
                    for (int64_t k = 0; k < n; k++) s0 += wt[k] * r[k], s1 += wt[k] * g[k], s2 += wt[k] * b[k];
                    mid[y * mw + x] = (float)s0, mid[(mh + y) * mw + x] = (float)s1, mid[(2 * mh + y) * mw + x] = (float)s2;
                } else {
                    double s0 = 0;
                    for (int64_t k = 0; k < n; k++) s0 += wt[k] * r[k];
                    mid[y * mw + x] = (float)s0;
                }
            }
        }
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < h; y++) {
                const float *wt = ty.w + ty.at[y], *src = mid + (ch * mh + ty.first[y]) * mw;
                for (int64_t x = 0; x < w; x++) acc[x] = 0;
                for (int64_t k = 0; k < ty.count[y]; k++)
                    for (int64_t x = 0; x < w; x++) acc[x] += wt[k] * src[k * mw + x];
                for (int64_t x = 0; x < w; x++) out[(ch * h + y) * w + x] = (float)acc[x];
            }
    } else {
        for (int64_t y = 0; y < h; y++) {
            const float *wt = ty.w + ty.at[y];
            for (int64_t ch = 0; ch < c; ch++) {
                for (int64_t x = 0; x < mw; x++) acc[x] = 0;
                for (int64_t k = 0; k < ty.count[y]; k++) {
                    row_samples(v, data + (ty.first[y] + k) * stride, c, ch, mw, row);
                    for (int64_t x = 0; x < mw; x++) acc[x] += wt[k] * row[x];
                }
                for (int64_t x = 0; x < mw; x++) mid[(ch * mh + y) * mw + x] = (float)acc[x];
            }
        }
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < h; y++) {
                const float *src = mid + (ch * mh + y) * mw;
                for (int64_t x = 0; x < w; x++) {
                    const float *wt = tx.w + tx.at[x], *p = src + tx.first[x];
                    double sum = 0;
                    for (int64_t k = 0; k < tx.count[x]; k++) sum += wt[k] * p[k];
                    out[(ch * h + y) * w + x] = (float)sum;
                }
            }
    }
done:
    cn_free(ctx, row);
    cn_free(ctx, acc);
    cn_free(ctx, mid);
    aa_taps_free(ctx, &ty);
    aa_taps_free(ctx, &tx);
    return st;
}

cn_status cn_image_view_resize(cn_ctx *ctx, const cn_image_view *v, cn_resize mode, int64_t c, int64_t h, int64_t w,
                               float *out)
{
    if (mode != CN_RESIZE_BILINEAR && (v->h != h || v->w != w)) return resize_antialias(ctx, v, c, h, w, out);
    resize_bilinear(v, c, h, w, out); /* same size: the pixels themselves either way */
    return CN_OK;
}

cn_status cn_pixels_resize(cn_ctx *ctx, const cn_pixels *px, cn_resize mode, int64_t c, int64_t h, int64_t w, float *out)
{
    cn_image_view v = { .data = px->data, .h = px->h, .w = px->w, .c = px->channels, .format = CN_PIXELS_U8 };
    return cn_image_view_resize(ctx, &v, mode, c, h, w, out);
}

cn_status cn_image_view_check(cn_ctx *ctx, const char *what, const cn_image_view *v)
{
    if (!v || !v->data) return cn_fail(ctx, CN_E_ARG, "%s: NULL %s", what, v ? "pixels" : "image");
    if (v->format != CN_PIXELS_U8 && v->format != CN_PIXELS_F32)
        return cn_fail(ctx, CN_E_ARG, "%s: pixel format %d (CN_PIXELS_U8 or CN_PIXELS_F32)", what, (int)v->format);
    if (v->c < 1 || v->c > 4)
        return cn_fail(ctx, CN_E_ARG, "%s: %lld channels (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA)", what, (long long)v->c);
    if (v->h < 1 || v->w < 1)
        return cn_fail(ctx, CN_E_ARG, "%s: image size %lldx%lld", what, (long long)v->h, (long long)v->w);
    int64_t row, total;
    if (!cn_mul_ok(v->w, v->c * sample_bytes(v->format), &row) || !cn_mul_ok(v->h, v->row_bytes > row ? v->row_bytes : row, &total))
        return cn_fail(ctx, CN_E_OVERFLOW, "%s: %lldx%lld pixels overflow", what, (long long)v->h, (long long)v->w);
    if (v->row_bytes && v->row_bytes < row)
        return cn_fail(ctx, CN_E_ARG, "%s: rows of %lld bytes hold %lld pixels of %lld bytes", what,
                       (long long)v->row_bytes, (long long)v->w, (long long)(row / v->w));
    if (v->row_bytes % sample_bytes(v->format))
        return cn_fail(ctx, CN_E_ARG, "%s: rows of %lld bytes are not whole floats", what, (long long)v->row_bytes);
    return CN_OK;
}

cn_status cn_image_check_size(cn_ctx *ctx, const char *what, int64_t c, int64_t h, int64_t w, int64_t *values)
{
    *values = 0;
    if (c != 1 && c != 3)
        return cn_fail(ctx, CN_E_ARG, "%s: %lld channels asked for; images have 1 (gray) or 3 (RGB)", what,
                       (long long)c);
    if (h < 1 || w < 1) return cn_fail(ctx, CN_E_ARG, "%s: image size %lldx%lld", what, (long long)h, (long long)w);
    int64_t n, bytes;
    if (!cn_mul_ok(c, h, &n) || !cn_mul_ok(n, w, &n) || !cn_mul_ok(n, (int64_t)sizeof(float), &bytes))
        return cn_fail(ctx, CN_E_OVERFLOW, "%s: %lld x %lld x %lld values overflow", what, (long long)c, (long long)h,
                       (long long)w);
    *values = n;
    return CN_OK;
}

cn_status cn_image_load(cn_ctx *ctx, const char *path, int64_t c, int64_t h, int64_t w, float *out)
{
    if (!path || !out) return cn_fail(ctx, CN_E_ARG, "cn_image_load: NULL %s", path ? "output" : "path");
    int64_t n;
    cn_status st = cn_image_check_size(ctx, path, c, h, w, &n);
    if (st) return st;
    cn_pixels px;
    int draft = ctx->resize == CN_RESIZE_DRAFT;
    if ((st = cn_pixels_decode_for(ctx, path, draft ? h : 0, draft ? w : 0, &px))) return st;
    st = cn_pixels_resize(ctx, &px, ctx->resize, c, h, w, out);
    if (!st) ctx->resized += px.file_h != h || px.file_w != w, ctx->drafted += px.h != px.file_h || px.w != px.file_w;
    cn_pixels_free(ctx, &px);
    return st;
}

cn_status cn_image_info(cn_ctx *ctx, const char *path, int64_t *c, int64_t *h, int64_t *w)
{
    if (c) *c = 0;
    if (h) *h = 0;
    if (w) *w = 0;
    if (!path) return cn_fail(ctx, CN_E_ARG, "cn_image_info: NULL path");
    /* the whole file is decoded: the channels are those the conversions give (palette -> RGB,
     * alpha dropped, CMYK -> RGB), and a truncated file fails here rather than in the load */
    cn_pixels px;
    cn_status st = cn_pixels_decode(ctx, path, &px);
    if (st) return st;
    if (c) *c = px.channels;
    if (h) *h = px.h;
    if (w) *w = px.w;
    cn_pixels_free(ctx, &px);
    return CN_OK;
}

/* ---- writing --------------------------------------------------------------------------------- */

typedef struct writer {
    cn_ctx *ctx;
    png_mem mem;
    FILE *f;
    char msg[256];
    const float *img;
    int64_t c, h, w;
    unsigned char *row;
} writer;

static void png_write_err(png_structp png, png_const_charp msg)
{
    writer *wr = png_get_error_ptr(png);
    snprintf(wr->msg, sizeof wr->msg, "%s", msg);
    png_longjmp(png, 1);
}


static void png_write_cb(png_structp png, png_bytep buf, size_t n)
{
    writer *wr = png_get_io_ptr(png);
    if (fwrite(buf, 1, n, wr->f) != n) png_error(png, strerror(errno));
}

static void png_flush_cb(png_structp png) { (void)png; }

static int png_encode_body(writer *wr, png_structp png, png_infop info)
{
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_write_fn(png, wr, png_write_cb, png_flush_cb);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_IHDR(png, info, (png_uint_32)wr->w, (png_uint_32)wr->h, 8, wr->c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    int64_t plane = wr->h * wr->w;
    for (int64_t y = 0; y < wr->h; y++) {
        for (int64_t x = 0; x < wr->w; x++) {
            for (int64_t ch = 0; ch < wr->c; ch++) {
                float v = wr->img[ch * plane + y * wr->w + x];
                v = v > 0 ? (v < 1 ? v : 1) : 0; /* NaN -> 0 */
                wr->row[x * wr->c + ch] = (unsigned char)(v * 255.0f + 0.5f);
            }
        }
        png_write_row(png, wr->row);
    }
    png_write_end(png, NULL);
    return 0;
}

cn_status cn_image_save_png(cn_ctx *ctx, const char *path, const float *img, int64_t c, int64_t h, int64_t w)
{
    if (!path || !img) return cn_fail(ctx, CN_E_ARG, "cn_image_save_png: NULL %s", path ? "image" : "path");
    int64_t n;
    cn_status st = cn_image_check_size(ctx, path, c, h, w, &n);
    if (st) return st;
    if (h > 0x7fffffff || w > 0x7fffffff)
        return cn_fail(ctx, CN_E_ARG, "%s: %lldx%lld is larger than a PNG can be (2^31 - 1 per side)", path,
                       (long long)h, (long long)w);
    writer wr;
    memset(&wr, 0, sizeof wr);
    wr.ctx = ctx, wr.img = img, wr.c = c, wr.h = h, wr.w = w;
    wr.mem.ctx = ctx;
    png_structp png = NULL;
    png_infop info = NULL;
    if (!(wr.row = cn_malloc(ctx, (size_t)(w * c)))) return CN_E_NOMEM;
    struct stat sb;
    int regular = stat(path, &sb) != 0 || S_ISREG(sb.st_mode);
    errno = 0;
    if (!(wr.f = fopen(path, "wb"))) {
        st = cn_fail(ctx, CN_E_IO, "%s: cannot open for writing: %s", path, errno ? strerror(errno) : "fopen failed");
        goto done;
    }
    png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, &wr, png_write_err, png_warn, &wr.mem, png_alloc_cb,
                                    png_free_cb);
    info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        st = cn_fail(ctx, CN_E_NOMEM, "%s: out of memory (libpng)", path);
        goto done;
    }
    if (png_encode_body(&wr, png, info))
        st = wr.mem.failed ? cn_fail(ctx, CN_E_NOMEM, "%s: out of memory writing the PNG", path)
                          : cn_fail(ctx, CN_E_IO, "%s: cannot write PNG: %s", path, wr.msg);
done:
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    if (wr.f) {
        if (fclose(wr.f) && !st) st = cn_fail(ctx, CN_E_IO, "%s: cannot write PNG: %s", path, strerror(errno));
        if (st && regular) remove(path); /* no half-written file left behind (but never a device) */
    }
    cn_free(ctx, wr.row);
    return st;
}
