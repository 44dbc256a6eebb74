/* safetensors.c — the safetensors format: named float32 tensors and string metadata, with a
 * CRC-32 of every tensor and of the metadata. Nothing here knows nets or optimizers; the
 * convnet checkpoint (src/io/checkpoint.c) is built on it.
 *
 *     u64 LE header length N | N bytes of JSON, space-padded to a multiple of 8 | data
 *
 * Writing is atomic (src/io/atomic.c). Reading validates every byte of the header and every
 * offset before a tensor is touched: the header length within the file and under 100 MB, valid
 * UTF-8 JSON with nothing after the object, F32 tensors of at most 8 dimensions whose offsets
 * tile the data section exactly, string metadata, no name twice; cn_st_check_sums then checks
 * each tensor's bytes against "crc32.<name>" and the metadata against "meta_crc32" (every other
 * key but the crc32.*, in key order, as key NUL value NUL).
 * Covered by tests/test_checkpoint.c (every malformed case) and fuzz/fuzz_safetensors.c (corpus
 * replayed by the tests). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io_impl.h"
#include "safetensors.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c writes and reads float32 in host order; big-endian hosts need byte swapping here"
#endif

#define ST_MAX_HEADER INT64_C(100000000) /* the reference implementation's limit */
#define ST_MAX_EXACT (INT64_C(1) << 53)  /* JSON numbers are doubles: integers exact up to 2^53 */

typedef struct st_meta {
    char *key, *value;
} st_meta;

struct cn_st {
    cn_allocator alloc;     /* to free it without the context that read it */
    char *path;
    unsigned char *file;    /* the whole file */
    const unsigned char *data;
    int64_t data_size;
    int n_tensors;
    cn_st_tensor *tensors;  /* in header order */
    cn_st_tensor **by_name; /* sorted by name */
    int n_meta;
    st_meta *meta;          /* sorted by key */
};

/* ---- small helpers ------------------------------------------------------------------------ */

static uint32_t crc_of(const void *p, int64_t n)
{
    return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), (const Bytef *)p, (z_size_t)n);
}

static int cmp_meta(const void *a, const void *b) { return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key); }

/* The metadata checksum: CRC-32 of every entry but itself and the tensors' crc32.* (they check
 * the data), in key order (m sorted by key), as key NUL value NUL. */
static uint32_t meta_crc(const st_meta *m, int n)
{
    uLong crc = crc32_z(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++) {
        if (cn_st_reserved_key(m[i].key)) continue;
        crc = crc32_z(crc, (const Bytef *)m[i].key, strlen(m[i].key) + 1);
        crc = crc32_z(crc, (const Bytef *)m[i].value, strlen(m[i].value) + 1);
    }
    return (uint32_t)crc;
}

int cn_st_reserved_key(const char *key) { return !strncmp(key, "crc32.", 6) || !strcmp(key, CN_ST_META_CRC); }

int cn_st_parse_hex(const char *s, int digits, uint64_t *v)
{
    uint64_t r = 0;
    for (int i = 0; i < digits; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        r = r << 4 | (uint64_t)d;
    }
    if (s[digits]) return 0;
    *v = r;
    return 1;
}

/* No overlong forms, surrogates or code points past U+10FFFF; with json = 1 the control
 * characters JSON forbids in its text (all below 0x20 except tab, LF, CR) fail too. */
int cn_st_utf8_ok(const unsigned char *s, size_t n, int json)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (json && c < 0x20 && c != '\t' && c != '\n' && c != '\r') return 0;
            i++;
            continue;
        }
        int len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!len || n - i < (size_t)len) return 0;
        uint32_t cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += (size_t)len;
    }
    return 1;
}

const char *cn_st_shape_text(const int64_t *shape, int rank, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < rank && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "(", (long long)shape[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (used < cap) snprintf(buf + used, cap - used, rank ? ")" : "()");
    return buf;
}

cn_status cn_st_fail(cn_ctx *ctx, cn_status st, const char *path, const char *fmt, ...)
{
    char msg[CN_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cn_fail(ctx, st, "%s: %s", path, msg);
}
#define bad cn_st_fail

int64_t cn_st_first_nonfinite(const cn_st_tensor *t)
{
    for (int64_t i = 0; i < t->count; i++) {
        float v;
        memcpy(&v, t->bytes + 4 * i, 4);
        if (!isfinite(v)) return i;
    }
    return -1;
}

/* ---- writing -------------------------------------------------------------------------------- */
/* A growable byte buffer for the header; `failed` latches the first allocation failure. */
typedef struct jbuf {
    cn_ctx *ctx;
    char *p;
    size_t len, cap;
    int failed;
} jbuf;

static void jb_put(jbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (n > SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *q = cn_realloc(b->ctx, b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void jb_cat(jbuf *b, const char *s) { jb_put(b, s, strlen(s)); }

static void jb_printf(jbuf *b, const char *fmt, ...) CN_PRINTF(2, 3);
static void jb_printf(jbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) b->failed = 1; /* only short numbers go through here */
    else jb_put(b, tmp, (size_t)n);
}

/* A JSON string: prefix (plain ASCII) then s, valid UTF-8 (checked by the caller), so only
 * quotes, backslashes and control characters need escapes. */
static void jb_str2(jbuf *b, const char *prefix, const char *s)
{
    jb_cat(b, "\"");
    jb_put(b, prefix, strlen(prefix));
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        jb_put(b, run, (size_t)(s - run));
        char esc[8];
        if (c == '"' || c == '\\') snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n') snprintf(esc, sizeof esc, "\\n");
        else if (c == '\t') snprintf(esc, sizeof esc, "\\t");
        else if (c == '\r') snprintf(esc, sizeof esc, "\\r");
        else snprintf(esc, sizeof esc, "\\u%04x", c);
        jb_put(b, esc, strlen(esc));
        run = s + 1;
    }
    jb_put(b, run, (size_t)(s - run));
    jb_cat(b, "\"");
}

static void jb_str(jbuf *b, const char *s) { jb_str2(b, "", s); }


/* The JSON header, space-padded to a multiple of 8 as the reference implementation does. */
static cn_status build_header(cn_ctx *ctx, const char *what, const cn_kv *meta, int n_meta, const cn_st_out *t, int n,
                              jbuf *b)
{
    char crc[16];
    /* the entries sorted by key, for the metadata checksum */
    st_meta *sorted = cn_calloc(ctx, (size_t)(n_meta ? n_meta : 1), sizeof *sorted);
    if (!sorted) return CN_E_NOMEM;
    jb_cat(b, "{\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
        sorted[i] = (st_meta){ (char *)meta[i].key, (char *)meta[i].value };
        if (i) jb_cat(b, ",");
        jb_str(b, meta[i].key);
        jb_cat(b, ":");
        jb_str(b, meta[i].value);
    }
    qsort(sorted, (size_t)n_meta, sizeof *sorted, cmp_meta);
    snprintf(crc, sizeof crc, "%08x", (unsigned)meta_crc(sorted, n_meta));
    cn_free(ctx, sorted);
    if (n_meta) jb_cat(b, ",");
    jb_str(b, CN_ST_META_CRC);
    jb_cat(b, ":");
    jb_str(b, crc);
    for (int i = 0; i < n; i++) {
        jb_cat(b, ",");
        jb_str2(b, "crc32.", t[i].name);
        jb_printf(b, ":\"%08x\"", (unsigned)crc_of(t[i].data, t[i].count * 4));
    }
    jb_cat(b, "}");
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        jb_cat(b, ",");
        jb_str(b, t[i].name);
        jb_cat(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].rank; d++) jb_printf(b, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        jb_printf(b, "],\"data_offsets\":[%lld,%lld]}", (long long)off, (long long)(off + t[i].count * 4));
        off += t[i].count * 4;
    }
    jb_cat(b, "}");
    while (!b->failed && b->len % 8) jb_cat(b, " ");
    if (b->failed) return cn_fail(ctx, CN_E_NOMEM, "%s header: out of memory", what);
    return CN_OK;
}

cn_status cn_st_write(cn_ctx *ctx, const char *what, const char *path, const cn_kv *meta, int n_meta,
                      const cn_st_out *t, int n)
{
    jbuf head = { .ctx = ctx };
    cn_span *parts = NULL;
    cn_status st = build_header(ctx, what, meta, n_meta, t, n, &head);
    if (st) goto done;
    /* the file: the header's length (8 bytes, little-endian), the header, the tensors' bytes */
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)head.len >> (8 * i));
    st = CN_E_NOMEM;
    if (!(parts = cn_calloc(ctx, (size_t)n + 2, sizeof *parts))) goto done;
    parts[0] = (cn_span){ len8, 8 };
    parts[1] = (cn_span){ head.p, head.len };
    for (int i = 0; i < n; i++) parts[i + 2] = (cn_span){ t[i].data, (size_t)t[i].count * sizeof(float) };
    st = cn_write_atomic(ctx, what, path, parts, n + 2);
done:
    cn_free(ctx, parts);
    cn_free(ctx, head.p);
    return st;
}

/* ---- reading -------------------------------------------------------------------------------- */

void cn_st_free(cn_st *f)
{
    if (!f) return;
    cn_ctx tmp = { .alloc = f->alloc };
    for (int i = 0; i < f->n_tensors; i++) cn_free(&tmp, f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) cn_free(&tmp, f->meta[i].key), cn_free(&tmp, f->meta[i].value);
    cn_free(&tmp, f->tensors);
    cn_free(&tmp, f->by_name);
    cn_free(&tmp, f->meta);
    cn_free(&tmp, f->file);
    cn_free(&tmp, f->path);
    cn_free(&tmp, f);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(cn_st_tensor *const *)a)->name, (*(cn_st_tensor *const *)b)->name);
}
static int cmp_offset(const void *a, const void *b)
{
    const cn_st_tensor *x = *(cn_st_tensor *const *)a, *y = *(cn_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

const char *cn_st_path(const cn_st *f) { return f->path; }
int cn_st_count(const cn_st *f) { return f->n_tensors; }
const cn_st_tensor *cn_st_at(const cn_st *f, int i) { return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL; }

const char *cn_st_meta(const cn_st *f, const char *key)
{
    if (!f || !key) return NULL;
    st_meta k = { .key = (char *)key };
    const st_meta *m = bsearch(&k, f->meta, (size_t)f->n_meta, sizeof *f->meta, cmp_meta);
    return m ? m->value : NULL;
}

const cn_st_tensor *cn_st_find(const cn_st *f, const char *name)
{
    cn_st_tensor k = { .name = (char *)name }, *kp = &k;
    cn_st_tensor **t = bsearch(&kp, f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, cmp_name);
    return t ? *t : NULL;
}

/* A JSON number that is a whole number 0 .. 2^53. */
static int json_u53(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= (double)ST_MAX_EXACT) || d != (double)(int64_t)d) return 0;
    *out = (int64_t)d;
    return 1;
}
static cn_status parse_tensor(cn_ctx *ctx, const char *path, const cJSON *item, int64_t data_size, cn_st_tensor *t)
{
    const char *name = t->name;
    char sh[200];
    if (!*name) return bad(ctx, CN_E_FORMAT, path, "a tensor has an empty name");
    if (!cJSON_IsObject(item)) return bad(ctx, CN_E_FORMAT, path, "tensor '%s': its entry is not a JSON object", name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!dtype) return bad(ctx, CN_E_FORMAT, path, "tensor '%s' has no dtype", name);
    if (!shape) return bad(ctx, CN_E_FORMAT, path, "tensor '%s' has no shape", name);
    if (!offs) return bad(ctx, CN_E_FORMAT, path, "tensor '%s' has no data_offsets", name);
    if (!cJSON_IsString(dtype)) return bad(ctx, CN_E_FORMAT, path, "tensor '%s': dtype is not a string", name);
    if (strcmp(dtype->valuestring, "F32"))
        return bad(ctx, CN_E_FORMAT, path, "tensor '%s' has dtype %.20s; convnet reads F32 only", name, dtype->valuestring);
    if (!cJSON_IsArray(shape)) return bad(ctx, CN_E_FORMAT, path, "tensor '%s': shape is not an array", name);
    int rank = cJSON_GetArraySize(shape);
    if (rank > CN_ST_MAX_RANK)
        return bad(ctx, CN_E_FORMAT, path, "tensor '%s' has %d dimensions (at most %d)", name, rank, CN_ST_MAX_RANK);
    t->rank = 0;
    t->count = 1;
    int overflow = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (!json_u53(d, &t->shape[t->rank]))
            return bad(ctx, CN_E_FORMAT, path, "tensor '%s': shape entry %d is not a whole number from 0 to 2^53", name,
                       t->rank + 1);
        if (!cn_mul_ok(t->count, t->shape[t->rank], &t->count)) overflow = 1;
        t->rank++;
    }
    int64_t bytes;
    if (overflow || !cn_mul_ok(t->count, 4, &bytes))
        return bad(ctx, CN_E_OVERFLOW, path, "tensor '%s': shape %s has more elements than 64 bits can count", name,
                   cn_st_shape_text(t->shape, t->rank, sh, sizeof sh));
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_u53(offs->child, &t->begin) ||
        !json_u53(offs->child->next, &t->end))
        return bad(ctx, CN_E_FORMAT, path, "tensor '%s': data_offsets must be [begin, end], two whole numbers", name);
    long long b = (long long)t->begin, e = (long long)t->end;
    if (t->begin > t->end)
        return bad(ctx, CN_E_FORMAT, path, "tensor '%s': data_offsets [%lld, %lld] begin after they end", name, b, e);
    if (t->end > data_size)
        return bad(ctx, CN_E_FORMAT, path, "tensor '%s': data_offsets [%lld, %lld] run past the %lld-byte data section",
                   name, b, e, (long long)data_size);
    if (t->end - t->begin != bytes)
        return bad(ctx, CN_E_FORMAT, path, "tensor '%s': data_offsets [%lld, %lld] hold %lld bytes; F32 of shape %s needs %lld",
                   name, b, e, e - b, cn_st_shape_text(t->shape, t->rank, sh, sizeof sh), (long long)bytes);
    return CN_OK;
}

/* The entries of the header object into f (tensors, metadata), each checked on its own. */
static cn_status parse_entries(cn_ctx *ctx, cn_st *f, const cJSON *root)
{
    const char *path = f->path;
    const cJSON *metadata = NULL;
    int n = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__")) n++;
        else if (metadata) return bad(ctx, CN_E_FORMAT, path, "__metadata__ appears twice in the header");
        else metadata = c;
    }
    if (metadata && !cJSON_IsObject(metadata)) return bad(ctx, CN_E_FORMAT, path, "__metadata__ is not a JSON object");
    int m = metadata ? cJSON_GetArraySize(metadata) : 0;
    f->tensors = cn_calloc(ctx, (size_t)(n ? n : 1), sizeof *f->tensors);
    f->by_name = cn_calloc(ctx, (size_t)(n ? n : 1), sizeof *f->by_name);
    f->meta = cn_calloc(ctx, (size_t)(m ? m : 1), sizeof *f->meta);
    if (!f->tensors || !f->by_name || !f->meta) return CN_E_NOMEM;
    for (const cJSON *c = metadata ? metadata->child : NULL; c; c = c->next) {
        if (!cJSON_IsString(c)) return bad(ctx, CN_E_FORMAT, path, "metadata '%s' is not a string", c->string);
        st_meta *e = &f->meta[f->n_meta];
        if (!(e->key = cn_strdup(ctx, c->string)) || !(e->value = cn_strdup(ctx, c->valuestring))) {
            cn_free(ctx, e->key);
            e->key = NULL;
            return CN_E_NOMEM;
        }
        f->n_meta++;
    }
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c == metadata) continue;
        cn_st_tensor *t = &f->tensors[f->n_tensors];
        if (!(t->name = cn_strdup(ctx, c->string))) return CN_E_NOMEM;
        f->by_name[f->n_tensors++] = t;
        t->index = f->n_tensors - 1;
        cn_status st = parse_tensor(ctx, path, c, f->data_size, t);
        if (st) return st;
        t->bytes = f->data + t->begin;
    }
    qsort(f->meta, (size_t)f->n_meta, sizeof *f->meta, cmp_meta);
    for (int i = 1; i < f->n_meta; i++)
        if (!strcmp(f->meta[i - 1].key, f->meta[i].key))
            return bad(ctx, CN_E_FORMAT, path, "metadata '%s' appears twice", f->meta[i].key);
    qsort(f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, cmp_name);
    for (int i = 1; i < f->n_tensors; i++)
        if (!strcmp(f->by_name[i - 1]->name, f->by_name[i]->name))
            return bad(ctx, CN_E_FORMAT, path, "tensor '%s' appears twice in the header", f->by_name[i]->name);
    return CN_OK;
}

/* The tensors must tile the data section: sorted by offset, each begins where the last ended. */
static cn_status check_tiling(cn_ctx *ctx, const cn_st *f)
{
    cn_st_tensor **order = cn_calloc(ctx, (size_t)(f->n_tensors ? f->n_tensors : 1), sizeof *order);
    if (!order) return CN_E_NOMEM;
    memcpy(order, f->by_name, (size_t)f->n_tensors * sizeof *order);
    qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_offset);
    cn_status st = CN_OK;
    int64_t pos = 0;
    const cn_st_tensor *prev = NULL;
    for (int i = 0; i < f->n_tensors && !st; i++) {
        const cn_st_tensor *t = order[i];
        if (t->begin < pos)
            st = bad(ctx, CN_E_FORMAT, f->path, "tensor '%s' (data_offsets [%lld, %lld]) overlaps tensor '%s' ([%lld, %lld])",
                     t->name, (long long)t->begin, (long long)t->end, prev->name, (long long)prev->begin,
                     (long long)prev->end);
        else if (t->begin > pos)
            st = bad(ctx, CN_E_FORMAT, f->path, "gap in the data section: bytes %lld to %lld, before tensor '%s', "
                     "belong to no tensor", (long long)pos, (long long)t->begin, t->name);
        pos = t->end, prev = t;
    }
    if (!st && pos != f->data_size)
        st = bad(ctx, CN_E_FORMAT, f->path, "gap in the data section: bytes %lld to %lld, at its end, belong to no tensor",
                 (long long)pos, (long long)f->data_size);
    cn_free(ctx, order);
    return st;
}

cn_status cn_st_check_sums(cn_ctx *ctx, const cn_st *f, int need_meta_crc, int verify)
{
    const char *path = f->path;
    uint64_t want = 0;
    const char *mc = cn_st_meta(f, CN_ST_META_CRC);
    if (!mc && need_meta_crc)
        return bad(ctx, CN_E_FORMAT, path, "no metadata checksum (%s in __metadata__)", CN_ST_META_CRC);
    if (mc && !cn_st_parse_hex(mc, 8, &want))
        return bad(ctx, CN_E_FORMAT, path, "metadata checksum %s is '%.20s', not 8 hex digits", CN_ST_META_CRC, mc);
    if (mc && verify && meta_crc(f->meta, f->n_meta) != (uint32_t)want)
        return bad(ctx, CN_E_FORMAT, path, "metadata checksum mismatch (%s says %08x, the metadata gives %08x): "
                   "a key or value was changed", CN_ST_META_CRC, (unsigned)want, (unsigned)meta_crc(f->meta, f->n_meta));
    for (int i = 0; i < f->n_meta; i++) {
        const st_meta *m = &f->meta[i];
        if (strncmp(m->key, "crc32.", 6)) continue;
        if (!cn_st_find(f, m->key + 6)) return bad(ctx, CN_E_FORMAT, path, "checksum %s names no tensor", m->key);
        if (!cn_st_parse_hex(m->value, 8, &want))
            return bad(ctx, CN_E_FORMAT, path, "checksum %s is '%.20s', not 8 hex digits", m->key, m->value);
    }
    size_t longest = 0;
    for (int i = 0; i < f->n_tensors; i++)
        if (strlen(f->tensors[i].name) > longest) longest = strlen(f->tensors[i].name);
    char *key = cn_malloc(ctx, longest + 8);
    if (!key) return CN_E_NOMEM;
    cn_status st = CN_OK;
    for (int i = 0; i < f->n_tensors && !st; i++) {
        const cn_st_tensor *t = &f->tensors[i];
        snprintf(key, longest + 8, "crc32.%s", t->name);
        const char *v = cn_st_meta(f, key);
        if (!v) {
            st = bad(ctx, CN_E_FORMAT, path, "no checksum for tensor '%s' (%s in __metadata__)", t->name, key);
            break;
        }
        cn_st_parse_hex(v, 8, &want); /* checked above */
        uint32_t got = verify ? crc_of(f->data + t->begin, t->end - t->begin) : (uint32_t)want;
        if (got != (uint32_t)want)
            st = bad(ctx, CN_E_FORMAT, path, "checksum mismatch in %s (the header says %08x, the data gives %08x)", t->name,
                     (unsigned)want, (unsigned)got);
    }
    cn_free(ctx, key);
    return st;
}

/* whether the 8 bytes of a header length (little-endian) are printable text: a file that is no
 * safetensors at all (a spec, a CSV), said as such rather than as a length */
static int text_bytes(uint64_t n)
{
    for (int i = 0; i < 8; i++) {
        unsigned c = (unsigned)(n >> (8 * i)) & 0xFF;
        if (!(c >= 0x20 && c < 0x7F) && c != '\n' && c != '\r' && c != '\t') return 0;
    }
    return 1;
}

static cn_status check_header_length(cn_ctx *ctx, const char *path, uint64_t n, uint64_t size)
{
    if (n > size - 8 && text_bytes(n))
        return bad(ctx, CN_E_FORMAT, path, "a text file, not a safetensors checkpoint (one begins with its header's "
                   "length in 8 bytes)");
    if (n > size - 8)
        return bad(ctx, CN_E_FORMAT, path, "header length %llu runs past the end of the file (%llu bytes after the length)",
                   (unsigned long long)n, (unsigned long long)(size - 8));
    if (n > (uint64_t)ST_MAX_HEADER)
        return bad(ctx, CN_E_FORMAT, path, "header length %llu is over the 100 MB limit", (unsigned long long)n);
    if (n < 2) return bad(ctx, CN_E_FORMAT, path, "header length %llu: too short for a JSON object", (unsigned long long)n);
    return CN_OK;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Takes ownership of file (size bytes, size >= 8 and the header length already checked). */
/* The deepest nesting of arrays and objects in the first n bytes of JSON text (brackets inside
 * strings not counted): what tells a header cJSON refused for its depth from one malformed. */
static int json_depth(const char *s, size_t n)
{
    int depth = 0, deepest = 0, in_string = 0;
    for (size_t i = 0; i < n && s[i]; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            deepest = ++depth > deepest ? depth : deepest;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return deepest;
}

static cn_status parse_file(cn_ctx *ctx, const char *path, unsigned char *file, size_t size, cn_st **out)
{
    cJSON *root = NULL;
    cn_status st = CN_E_NOMEM;
    cn_st *f = cn_calloc(ctx, 1, sizeof *f);
    if (!f) {
        cn_free(ctx, file);
        return CN_E_NOMEM;
    }
    f->alloc = ctx->alloc;
    f->file = file;
    if (!(f->path = cn_strdup(ctx, path))) goto done;
    uint64_t n = le64(file);
    if ((st = check_header_length(ctx, path, n, size))) goto done;
    const char *head = (const char *)file + 8;
    f->data = file + 8 + n;
    f->data_size = (int64_t)(size - 8 - n);
    st = CN_E_FORMAT;
    if (!cn_st_utf8_ok((const unsigned char *)head, (size_t)n, 1)) {
        bad(ctx, st, path, "the header is not valid UTF-8 JSON text");
        goto done;
    }
    if (head[0] != '{') {
        bad(ctx, st, path, "the header is not a JSON object (it does not start with '{')");
        goto done;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(head, (size_t)n, &end, 0);
    if (!root) {
        long long at = end && end >= head && end <= head + n ? (long long)(end - head) : 0;
        if (json_depth(head, (size_t)at + 1) > CJSON_NESTING_LIMIT)
            bad(ctx, st, path, "the header nests arrays and objects deeper than %d levels (at byte %lld; "
                               "safetensors needs 3)", CJSON_NESTING_LIMIT, at);
        else
            bad(ctx, st, path, "the header is not valid JSON (at byte %lld of %llu)", at, (unsigned long long)n);
        goto done;
    }
    for (const char *p = end ? end : head + n; p < head + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            bad(ctx, st, path, "the header has text after its JSON object (at byte %lld)", (long long)(p - head));
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        bad(ctx, st, path, "the header is not a JSON object");
        goto done;
    }
    if ((st = parse_entries(ctx, f, root))) goto done;
    if ((st = check_tiling(ctx, f))) goto done;
    *out = f;
    f = NULL;
done:
    cJSON_Delete(root);
    cn_st_free(f);
    return st;
}

cn_status cn_st_read_memory(cn_ctx *ctx, const void *data, size_t size, const char *name, cn_st **out)
{
    *out = NULL;
    if (size < 8) return bad(ctx, CN_E_FORMAT, name, "%zu bytes, shorter than the 8-byte header length", size);
    unsigned char *copy = cn_malloc(ctx, size);
    if (!copy) return CN_E_NOMEM;
    memcpy(copy, data, size);
    return parse_file(ctx, name, copy, size, out);
}

cn_status cn_st_read(cn_ctx *ctx, const char *path, cn_st **out)
{
    *out = NULL;
    cn_status st = CN_E_IO;
    unsigned char *buf = NULL, len8[8];
    /* opened without waiting: a FIFO (or a device) in a checkpoint's place is refused below,
     * where a plain open would wait for a writer that never comes */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return cn_fail(ctx, CN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    int stat_failed = fstat(fd, &sb) != 0;
    if (stat_failed || !S_ISREG(sb.st_mode)) {
        st = stat_failed ? cn_fail(ctx, CN_E_IO, "%s: cannot stat: %s", path, strerror(errno))
                         : bad(ctx, CN_E_IO, path, "not a regular file");
        close(fd);
        return st;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return cn_fail(ctx, CN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        st = bad(ctx, CN_E_FORMAT, path, "%llu bytes, shorter than the 8-byte header length", (unsigned long long)size);
        goto done;
    }
    /* the length first: a file claiming a huge header is refused before anything is allocated */
    if (fread(len8, 1, 8, f) != 8) {
        st = cn_fail(ctx, CN_E_IO, "%s: cannot read: %s", path, ferror(f) ? strerror(errno) : "file shrank while reading");
        goto done;
    }
    if ((st = check_header_length(ctx, path, le64(len8), size))) goto done;
    if (size > SIZE_MAX) {
        st = bad(ctx, CN_E_OVERFLOW, path, "%llu bytes do not fit in memory here", (unsigned long long)size);
        goto done;
    }
    if (!(buf = cn_malloc(ctx, (size_t)size))) {
        st = CN_E_NOMEM;
        goto done;
    }
    memcpy(buf, len8, 8);
    if (fread(buf + 8, 1, (size_t)size - 8, f) != (size_t)size - 8 || fgetc(f) != EOF) {
        st = cn_fail(ctx, CN_E_IO, "%s: cannot read: %s", path, ferror(f) ? strerror(errno) : "file changed while reading");
        goto done;
    }
    fclose(f);
    f = NULL;
    st = parse_file(ctx, path, buf, (size_t)size, out);
    buf = NULL; /* parse_file owns it */
done:
    if (f) fclose(f);
    cn_free(ctx, buf);
    return st;
}

