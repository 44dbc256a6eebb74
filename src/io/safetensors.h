/* safetensors.h — the safetensors file format (src/io/safetensors.c): named float32 tensors and
 * string metadata, with a CRC-32 per tensor ("crc32.<name>") and one of the metadata
 * ("meta_crc32"). It knows nothing of nets, optimizers or checkpoints (src/io/checkpoint.c builds
 * those on it). Not part of the public API. */
#ifndef CN_SAFETENSORS_H
#define CN_SAFETENSORS_H

#include "../core/core_impl.h"

#define CN_ST_MAX_RANK 8
#define CN_ST_META_CRC "meta_crc32"

/* One tensor to write: count float32 values at data, of the given shape. */
typedef struct cn_st_out {
    const char *name;
    int rank;
    int64_t shape[CN_ST_MAX_RANK];
    int64_t count;
    const float *data;
} cn_st_out;

/* One tensor of a file read: its bytes lie at data + begin .. data + end of the data section,
 * little-endian float32, not necessarily aligned (read them with memcpy). */
typedef struct cn_st_tensor {
    char *name;
    int index;          /* in header order, 0 .. cn_st_count - 1 */
    int rank;
    int64_t shape[CN_ST_MAX_RANK];
    int64_t count;
    int64_t begin, end; /* bytes, relative to the start of the data section */
    const unsigned char *bytes;
} cn_st_tensor;

typedef struct cn_st cn_st;

/* Writes, atomically (cn_write_atomic, messages "<what> <path>: ..."), the header
 *     {"__metadata__":{meta in the order given, "meta_crc32", "crc32.<tensor>" for each tensor},
 *      each tensor in the order given: {"dtype":"F32","shape":[...],"data_offsets":[b,e]}}
 * space-padded to a multiple of 8 bytes, after its length (8 bytes, little-endian), then the
 * tensors' bytes. The caller checks the keys and values (valid UTF-8, none reserved, none twice). */
cn_status cn_st_write(cn_ctx *ctx, const char *what, const char *path, const cn_kv *meta, int n_meta,
                      const cn_st_out *t, int n);
/* 1 for the keys the format writes itself: meta_crc32 and crc32.* */
int cn_st_reserved_key(const char *key);

/* Reads a file whole and parses it as cn_st_parse does; path names it in messages. */
cn_status cn_st_read(cn_ctx *ctx, const char *path, cn_st **out);
/* Parses `size` bytes (copied) as a file named `name`. */
cn_status cn_st_read_memory(cn_ctx *ctx, const void *data, size_t size, const char *name, cn_st **out);
/* Checks the checksums: meta_crc32 (required when need_meta_crc) against the metadata, a
 * crc32.* for every tensor and none for a tensor that is not there; verify = 0 checks their
 * form but not their values against the bytes. */
cn_status cn_st_check_sums(cn_ctx *ctx, const cn_st *f, int need_meta_crc, int verify);
void cn_st_free(cn_st *f);

const char *cn_st_path(const cn_st *f);
const char *cn_st_meta(const cn_st *f, const char *key); /* NULL when absent */
int cn_st_count(const cn_st *f);
const cn_st_tensor *cn_st_at(const cn_st *f, int i);         /* header order */
const cn_st_tensor *cn_st_find(const cn_st *f, const char *name);

/* Index of the first value of t that is not finite, or -1. */
int64_t cn_st_first_nonfinite(const cn_st_tensor *t);

/* helpers both files use */
/* "<path>: <message>" */
cn_status cn_st_fail(cn_ctx *ctx, cn_status st, const char *path, const char *fmt, ...) CN_PRINTF(4, 5);
/* exactly `digits` hex digits (either case) into *v */
int cn_st_parse_hex(const char *s, int digits, uint64_t *v);
/* valid UTF-8; with json = 1 the control characters JSON forbids in text fail too */
int cn_st_utf8_ok(const unsigned char *s, size_t n, int json);
/* "(32, 1, 3, 3)" */
const char *cn_st_shape_text(const int64_t *shape, int rank, char *buf, size_t cap);

#endif
