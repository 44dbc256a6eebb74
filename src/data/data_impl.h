/* data_impl.h — internals shared by the files of src/data/: raw IDX reading (idx.c), image
 * decoding at the native size and conversion to floats (image.c), sorted folder listings
 * (folder.c). Used by the loaders and by cn_data_check (check.c). Not part of the public API. */
#ifndef CN_DATA_IMPL_H
#define CN_DATA_IMPL_H

#include "../core/core_impl.h"

/* ---- what one input file may cost ------------------------------------------------------------
 * The decoders check a file's claims (pixels, chunk and data lengths) against these limits and
 * against the file's real size before they allocate from them (README: "Hostile files"). */

/* CN_IMAGE_MAX_PIXELS (convnet.h) bounds the pixels a decoded PNG or JPEG may have. */
/* deflate (PNG's IDAT, gzip) turns one input byte into at most 1032 output bytes: a length-258
 * match in 2 bits, with 1-bit codes for the length and the distance. A header that promises more
 * than this many times the file's bytes is refused before anything is allocated for it. */
#define CN_DEFLATE_MAX_RATIO 1032
/* Bytes libpng may allocate for one chunk other than IDAT (png_set_chunk_malloc_max): the
 * ancillary chunks (text, ICC profiles, EXIF) are skipped unread anyway, since none changes the
 * 8-bit pixels decoded here; this is the guard for those libpng keeps (PLTE, tRNS). */
#define CN_PNG_MAX_CHUNK_BYTES (INT64_C(8) << 20)
/* Ancillary chunks libpng may keep in memory (png_set_chunk_cache_max; 0 would mean no limit):
 * none is kept, as above, so this only guards against a libpng that did keep them. */
#define CN_PNG_MAX_KEPT_CHUNKS 16
/* Scans of a JPEG: libjpeg walks the whole image's coefficients once for each scan of a
 * progressive file, and a scan can be a dozen bytes (one end-of-band run covers 32767 blocks),
 * so a small file of thousands of scans costs thousands of passes. Real files have 1 (baseline)
 * or about 10 (progressive). */
#define CN_JPEG_MAX_SCANS 100
/* Bytes of data in an IDX file: EMNIST, the largest IDX set we know, has 0.64 GB; the loader
 * then holds 4 bytes of float for each, so 2 GiB here is 8 GiB of images. */
#define CN_IDX_MAX_BYTES (INT64_C(1) << 31)

/* An IDX file of unsigned bytes: dims[0..ndim-1], count = their product bytes of data. */
typedef struct cn_idx {
    int ndim;
    int64_t dims[3];
    int64_t count;
    unsigned char *data; /* count bytes, owned */
} cn_idx;

/* The image and label files of the train (1) or t10k (0) half of an MNIST-format folder dir
 * into img and lab (cap bytes each): the images gzipped, else raw; the labels stored as the
 * images are, else the other way (a folder with one file unpacked). 1 when the images are there,
 * else 0. Loading and `convnet data check` pair the files by this one rule. */
int cn_mnist_half_files(const char *dir, int train, char *img, char *lab, size_t cap);
/* Reads an IDX file of ndim (1..3) dimensions, gzipped or raw; fails naming the file. */
cn_status cn_idx_read(cn_ctx *ctx, const char *path, int ndim, cn_idx *out);
void cn_idx_free(cn_ctx *ctx, cn_idx *idx);

/* A decoded image at its own size, 8 bits per sample, interleaved: h x w x channels. */
typedef struct cn_pixels {
    int64_t h, w;
    int channels;        /* 1 (gray, gray + alpha) or 3 (RGB, RGBA, palette, CMYK) */
    unsigned char *data; /* owned */
    int64_t file_h, file_w; /* the file's own size, upright (h, w unless a JPEG was decoded smaller) */
} cn_pixels;

/* What a file is by its first n bytes (12 tell every kind): a PNG (its signature, or as much of
 * it as a shorter file holds, 4 bytes at least) or a JPEG (FF D8 FF), which are decoded; else the
 * formats photos come in that are not, named for messages (cn_file_kind_names), or other. */
typedef enum cn_file_kind {
    CN_FILE_PNG, CN_FILE_JPEG, CN_FILE_HEIC, CN_FILE_AVIF, CN_FILE_WEBP, CN_FILE_GIF, CN_FILE_BMP, CN_FILE_TIFF,
    CN_FILE_OTHER, CN_FILE_KINDS
} cn_file_kind;
extern const char *const cn_file_kind_names[CN_FILE_KINDS]; /* "PNG", ..., "HEIC", ..., "other" */
cn_file_kind cn_file_kind_of(const unsigned char *b, size_t n);
/* The same of the file at path (its first 12 bytes); -1 when it cannot be read. */
int cn_file_kind_at(const char *path);
/* For the one-class refusals (data check, the trainer): when the lone class is named as a half
 * (train/ with no val/ or test/ beside it is an image folder of one class, "train"), what to do,
 * " (a train/ folder alone ...)"; else "". */
const char *cn_lone_half_hint(const char *class_name);
/* Decodes a PNG or JPEG file (by its magic bytes); alpha dropped, 16-bit scaled to 8. */
cn_status cn_pixels_decode(cn_ctx *ctx, const char *path, cn_pixels *out);
/* The same for CN_RESIZE_DRAFT's resize to h x w (0, 0: decoded whole): a JPEG at least 8x
 * larger on both sides is decoded by libjpeg's scaled inverse DCT at 1/2, 1/4 or 1/8 of its
 * size, the smallest that keeps both sides at least 4x h and w (PIL's draft): up to 64x fewer
 * pixels to convert and resize, each of the smaller image's pixels close to the mean of the
 * pixels it stands for. out->file_h, file_w keep the file's size. */
cn_status cn_pixels_decode_for(cn_ctx *ctx, const char *path, int64_t h, int64_t w, cn_pixels *out);
/* The same from size bytes in memory (the fuzz targets); name stands for the path in messages. */
cn_status cn_pixels_decode_memory(cn_ctx *ctx, const void *data, size_t size, const char *name, cn_pixels *out);
/* cn_pixels_decode_for's of size bytes in memory */
cn_status cn_pixels_decode_memory_for(cn_ctx *ctx, const void *data, size_t size, const char *name, int64_t h,
                                      int64_t w, cn_pixels *out);
void cn_pixels_free(cn_ctx *ctx, cn_pixels *px);
/* out (c, h, w) in [0, 1] <- px resized by mode and converted to c (1 or 3) channels; fails
 * only for memory (CN_RESIZE_ANTIALIAS's taps and the image between its two passes). */
cn_status cn_pixels_resize(cn_ctx *ctx, const cn_pixels *px, cn_resize mode, int64_t c, int64_t h, int64_t w, float *out);
/* The same from pixels in the caller's memory (8-bit or float samples, 1 to 4 channels, alpha
 * ignored), checked first by cn_image_view_check (what names the call in its messages). */
cn_status cn_image_view_resize(cn_ctx *ctx, const cn_image_view *v, cn_resize mode, int64_t c, int64_t h, int64_t w,
                               float *out);
cn_status cn_image_view_check(cn_ctx *ctx, const char *what, const cn_image_view *v);
/* Checks the arguments cn_image_load takes: c 1 or 3, h and w positive, c*h*w floats fit in
 * int64; *values = c*h*w. */
cn_status cn_image_check_size(cn_ctx *ctx, const char *what, int64_t c, int64_t h, int64_t w, int64_t *values);

/* fn(tc, i, arg) for every i in [0, n) (a folder's files), on cn_threads() threads where ctx
 * allocates with the C library's malloc (a caller's allocator need not be thread-safe: one
 * thread then), each thread with a context of its own (tc, with ctx's settings; ctx itself on
 * one thread) for its messages; fn writes only what belongs to i, or under a critical section. fn returning
 * CN_E_NOMEM stops the rest, and the call returns CN_E_NOMEM, ctx saying so. */
cn_status cn_for_each_file(cn_ctx *ctx, int64_t n, cn_status (*fn)(cn_ctx *tc, int64_t i, void *arg), void *arg);
/* Files paths[i] (paths[which[i]] where which is not NULL), i < n, loaded as cn_image_load does
 * (with ctx's resizing) into out + i * c*h*w, on the threads by cn_for_each_file: the same
 * floats on any number. Every file is tried; one that does not load fails the call with the
 * status and message of the first in order, *bad (may be NULL) counting them (0 on CN_E_NOMEM). */
cn_status cn_load_files(cn_ctx *ctx, char *const *paths, const int64_t *which, int64_t n, int64_t c, int64_t h,
                        int64_t w, float *out, int64_t *bad);

/* Names in a folder, sorted by strcmp (byte order, as Python's sorted()). */
typedef struct cn_names {
    int64_t count;
    char **names; /* owned */
} cn_names;

/* The entries of dir that are folders (dirs = 1) or regular files (dirs = 0), following
 * symbolic links, sorted by name; hidden names (a leading '.') and an operating system's litter
 * (Thumbs.db, desktop.ini, __MACOSX, ...) are skipped. */
cn_status cn_list_dir(cn_ctx *ctx, const char *dir, int dirs, cn_names *out);
void cn_names_free(cn_ctx *ctx, cn_names *n);
/* The files of class folder cls at any depth, as torchvision's ImageFolder lists them (sorted
 * os.walk): cls and every folder below it (links followed; hidden names and litter skipped)
 * sorted by path, each one's files by name; names relative to cls ("2019/a.png"). A folder
 * more than CN_CLASS_MAX_DEPTH below cls (a link that loops) fails, named. */
#define CN_CLASS_MAX_DEPTH 32
cn_status cn_list_class_files(cn_ctx *ctx, const char *cls, cn_names *out);
/* "a/b" (a's trailing '/' not doubled), allocated; NULL (CN_E_NOMEM recorded) on failure. */
char *cn_path_join(cn_ctx *ctx, const char *a, const char *b);

#endif /* CN_DATA_IMPL_H */
