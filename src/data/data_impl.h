/* data_impl.h — internals shared by the files of src/data/: raw IDX reading (idx.c), image
 * decoding at the native size and conversion to floats (image.c), sorted folder listings
 * (folder.c). Used by the loaders and by cn_data_check (check.c). Not part of the public API. */
#ifndef CN_DATA_IMPL_H
#define CN_DATA_IMPL_H

#include "../core/core_impl.h"

/* An IDX file of unsigned bytes: dims[0..ndim-1], count = their product bytes of data. */
typedef struct cn_idx {
    int ndim;
    int64_t dims[3];
    int64_t count;
    unsigned char *data; /* count bytes, owned */
} cn_idx;

/* Reads an IDX file of ndim (1..3) dimensions, gzipped or raw; fails naming the file. */
cn_status cn_idx_read(cn_ctx *ctx, const char *path, int ndim, cn_idx *out);
void cn_idx_free(cn_ctx *ctx, cn_idx *idx);

/* A decoded image at its own size, 8 bits per sample, interleaved: h x w x channels. */
typedef struct cn_pixels {
    int64_t h, w;
    int channels;        /* 1 (gray, gray + alpha) or 3 (RGB, RGBA, palette, CMYK) */
    unsigned char *data; /* owned */
} cn_pixels;

/* Decodes a PNG or JPEG file (by its magic bytes); alpha dropped, 16-bit scaled to 8. */
cn_status cn_pixels_decode(cn_ctx *ctx, const char *path, cn_pixels *out);
void cn_pixels_free(cn_ctx *ctx, cn_pixels *px);
/* out (c, h, w) in [0, 1] <- px resized bilinearly and converted to c (1 or 3) channels. */
void cn_pixels_to_float(const cn_pixels *px, int64_t c, int64_t h, int64_t w, float *out);
/* Checks the arguments cn_image_load takes: c 1 or 3, h and w positive, c*h*w floats fit in
 * int64; *values = c*h*w. */
cn_status cn_image_check_size(cn_ctx *ctx, const char *what, int64_t c, int64_t h, int64_t w, int64_t *values);

/* Names in a folder, sorted by strcmp (byte order, as Python's sorted()). */
typedef struct cn_names {
    int64_t count;
    char **names; /* owned */
} cn_names;

/* The entries of dir that are folders (dirs = 1) or regular files (dirs = 0), following
 * symbolic links; names starting with '.' are skipped. */
cn_status cn_list_dir(cn_ctx *ctx, const char *dir, int dirs, cn_names *out);
void cn_names_free(cn_ctx *ctx, cn_names *n);
/* "a/b" (a's trailing '/' not doubled), allocated; NULL (CN_E_NOMEM recorded) on failure. */
char *cn_path_join(cn_ctx *ctx, const char *a, const char *b);

#endif /* CN_DATA_IMPL_H */
