/* checkpoint.c — checkpoints as safetensors files: the net's parameters (slab order), then the
 * optimizer's state, with the spec, its hash and a CRC-32 per tensor in "__metadata__".
 *
 *     u64 LE header length N | N bytes of JSON, space-padded to a multiple of 8 | data
 *
 * Writing is atomic (src/io/atomic.c). Reading validates every byte of the header and every
 * offset before a tensor is touched: the layout must tile the data section exactly, each
 * tensor's bytes must match their checksum, the metadata must match its own checksum
 * ("meta_crc32": every other key but the tensors' crc32.*, in key order, as key NUL value NUL),
 * the values of the keys convnet train writes must be well formed (finite normalisation with
 * std > 0, printable class names, ...), and every restored value must be finite.
 * Covered by tests/test_checkpoint.c (round trip, every malformed case, atomic writes, PyTorch
 * reading the file) and fuzz/fuzz_safetensors.c (corpus replayed by the tests). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../model/model_impl.h"
#include "checkpoint_impl.h"
#include "io_impl.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c writes and reads float32 in host order; big-endian hosts need byte swapping here"
#endif

#define CK_FORMAT "convnet-2"     /* convnet-1 and a checksum of the metadata ("meta_crc32") */
#define CK_FORMAT_V1 "convnet-1"  /* still read: the metadata checksum is checked when present */
#define CK_META_CRC "meta_crc32"
#define CK_MAX_NAME 1024          /* a class name: a folder name fits (NAME_MAX is 255 bytes) */
#define CK_MAX_HEADER INT64_C(100000000) /* the reference implementation's limit */
#define CK_MAX_RANK 8
#define CK_MAX_EXACT (INT64_C(1) << 53)  /* JSON numbers are doubles: integers exact up to 2^53 */

typedef struct ck_tensor {
    char *name;
    int rank;
    int64_t shape[CK_MAX_RANK];
    int64_t count;
    int64_t begin, end; /* bytes, relative to the start of the data section */
} ck_tensor;

typedef struct ck_meta {
    char *key, *value;
} ck_meta;

struct cn_checkpoint {
    cn_allocator alloc;     /* to free it without the context that read it */
    char *path;
    unsigned char *file;    /* the whole file */
    const unsigned char *data;
    int64_t data_size;
    int n_tensors;
    ck_tensor *tensors;     /* in header order */
    ck_tensor **by_name;    /* sorted by name */
    int n_meta;
    ck_meta *meta;          /* sorted by key */
    int verified;           /* checksums checked; the spec hash is checked when 1 */
};

/* ---- small helpers ------------------------------------------------------------------------ */

/* FNV-1a, 64 bits */
static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static uint32_t crc_of(const void *p, int64_t n)
{
    return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), (const Bytef *)p, (z_size_t)n);
}

static int cmp_meta(const void *a, const void *b) { return strcmp(((const ck_meta *)a)->key, ((const ck_meta *)b)->key); }

/* The metadata checksum: CRC-32 of every entry but itself and the tensors' crc32.* (they check
 * the data), in key order (m sorted by key), as key NUL value NUL. */
static uint32_t meta_crc(const ck_meta *m, int n)
{
    uLong crc = crc32_z(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++) {
        if (!strncmp(m[i].key, "crc32.", 6) || !strcmp(m[i].key, CK_META_CRC)) continue;
        crc = crc32_z(crc, (const Bytef *)m[i].key, strlen(m[i].key) + 1);
        crc = crc32_z(crc, (const Bytef *)m[i].value, strlen(m[i].value) + 1);
    }
    return (uint32_t)crc;
}

/* Exactly `digits` hex digits (either case) into *v. */
static int parse_hex(const char *s, int digits, uint64_t *v)
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

/* A decimal integer 0 .. INT64_MAX, digits only. */
static int parse_count(const char *s, int64_t *v)
{
    int64_t r = 0;
    if (!*s) return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || !cn_mul_ok(r, 10, &r) || !cn_add_ok(r, *s - '0', &r)) return 0;
    }
    *v = r;
    return 1;
}

/* Valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF); with json = 1 the
 * control characters JSON forbids in its text (all below 0x20 except tab, LF, CR) fail too. */
static int utf8_ok(const unsigned char *s, size_t n, int json)
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

/* "(32, 1, 3, 3)" */
static const char *shape_text(const int64_t *shape, int rank, char *buf, size_t cap)
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

/* A format error about the file: "<path>: <message>". */
static cn_status bad(cn_ctx *ctx, cn_status st, const char *path, const char *fmt, ...) CN_PRINTF(4, 5);
static cn_status bad(cn_ctx *ctx, cn_status st, const char *path, const char *fmt, ...)
{
    char msg[CN_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cn_fail(ctx, st, "%s: %s", path, msg);
}

/* Names of the optimizer's state tensors, as PyTorch's state_dict calls them; returns how many. */
static int state_suffixes(cn_optim_kind kind, const char **s)
{
    switch (kind) {
    case CN_OPTIM_MOMENTUM:
    case CN_OPTIM_NESTEROV: s[0] = "momentum_buffer"; return 1;
    case CN_OPTIM_ADAM:
    case CN_OPTIM_ADAMW: s[0] = "exp_avg", s[1] = "exp_avg_sq"; return 2;
    default: return 0;
    }
}

static int kind_from_name(const char *name, cn_optim_kind *kind)
{
    for (int k = CN_OPTIM_SGD; k <= CN_OPTIM_ADAMW; k++)
        if (!strcmp(name, cn_optim_kind_name((cn_optim_kind)k))) {
            *kind = (cn_optim_kind)k;
            return 1;
        }
    return 0;
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

static void jb_kv(jbuf *b, const char *key, const char *value)
{
    jb_cat(b, ",");
    jb_str(b, key);
    jb_cat(b, ":");
    jb_str(b, value);
}

/* One tensor to write: a view into the parameter or optimizer slab. */
typedef struct out_tensor {
    char *name;
    int rank;
    const int64_t *shape;
    int64_t count;
    const float *data;
} out_tensor;

static int reserved_key(const char *k)
{
    static const char *const keys[] = { "format", "spec", "spec_hash", "optimizer", "optimizer_steps", CK_META_CRC };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(k, keys[i])) return 1;
    return !strncmp(k, "crc32.", 6);
}

static cn_status check_caller_meta(cn_ctx *ctx, const char *path, const cn_kv *meta, int n_meta)
{
    for (int i = 0; i < n_meta; i++) {
        const char *k = meta[i].key, *v = meta[i].value;
        if (!k || !v) return cn_fail(ctx, CN_E_ARG, "checkpoint %s: metadata entry %d has a NULL key or value", path, i);
        if (!*k) return cn_fail(ctx, CN_E_ARG, "checkpoint %s: metadata entry %d has an empty key", path, i);
        if (reserved_key(k))
            return cn_fail(ctx, CN_E_ARG, "checkpoint %s: metadata key '%s' is reserved for convnet", path, k);
        if (!utf8_ok((const unsigned char *)k, strlen(k), 0) || !utf8_ok((const unsigned char *)v, strlen(v), 0))
            return cn_fail(ctx, CN_E_ARG, "checkpoint %s: metadata entry %d is not valid UTF-8", path, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(meta[j].key, k))
                return cn_fail(ctx, CN_E_ARG, "checkpoint %s: metadata key '%s' given twice", path, k);
    }
    return CN_OK;
}

/* The JSON header, space-padded to a multiple of 8 as the reference implementation does. */
static cn_status build_header(cn_ctx *ctx, const cn_net *net, const cn_optim *opt, const cn_kv *meta, int n_meta,
                              const out_tensor *t, int n, jbuf *b)
{
    char hash[32], steps[32], crc[16];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a64(cn_net_spec_text(net)));
    snprintf(steps, sizeof steps, "%lld", opt ? (long long)cn_optim_steps(opt) : 0LL);
    /* every entry but the checksums, sorted by key for the metadata checksum */
    ck_meta *all = cn_calloc(ctx, (size_t)n_meta + 5, sizeof *all);
    if (!all) return CN_E_NOMEM;
    int k = 0;
    all[k++] = (ck_meta){ "format", CK_FORMAT };
    all[k++] = (ck_meta){ "spec", (char *)cn_net_spec_text(net) };
    all[k++] = (ck_meta){ "spec_hash", hash };
    if (opt) {
        all[k++] = (ck_meta){ "optimizer", (char *)cn_optim_kind_name(cn_optim_get_config(opt)->kind) };
        all[k++] = (ck_meta){ "optimizer_steps", steps };
    }
    for (int i = 0; i < n_meta; i++) all[k++] = (ck_meta){ (char *)meta[i].key, (char *)meta[i].value };
    jb_cat(b, "{\"__metadata__\":{");
    for (int i = 0; i < k; i++) {
        if (i) jb_cat(b, ",");
        jb_str(b, all[i].key);
        jb_cat(b, ":");
        jb_str(b, all[i].value);
    }
    qsort(all, (size_t)k, sizeof *all, cmp_meta);
    snprintf(crc, sizeof crc, "%08x", (unsigned)meta_crc(all, k));
    cn_free(ctx, all);
    jb_kv(b, CK_META_CRC, crc);
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
    if (b->failed) return cn_fail(ctx, CN_E_NOMEM, "checkpoint header: out of memory");
    return CN_OK;
}

/* The file: the header's length (8 bytes, little-endian), the header, the tensors' bytes. */
static cn_status write_file(cn_ctx *ctx, const char *path, const jbuf *head, const out_tensor *t, int n)
{
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)head->len >> (8 * i));
    cn_span *parts = cn_calloc(ctx, (size_t)n + 2, sizeof *parts);
    if (!parts) return CN_E_NOMEM;
    parts[0] = (cn_span){ len8, 8 };
    parts[1] = (cn_span){ head->p, head->len };
    for (int i = 0; i < n; i++) parts[i + 2] = (cn_span){ t[i].data, (size_t)t[i].count * sizeof(float) };
    cn_status st = cn_write_atomic(ctx, "checkpoint", path, parts, n + 2);
    cn_free(ctx, parts);
    return st;
}

cn_status cn_checkpoint_write(cn_ctx *ctx, const char *path, const cn_net *net, const cn_optim *opt,
                              const cn_kv *meta, int n_meta)
{
    if (!ctx) return CN_E_ARG;
    if (!path || !*path || !net || n_meta < 0 || (n_meta > 0 && !meta))
        return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_write: bad arguments");
    const cn_exec *ex = &net->ex;
    if (!ex->params) return cn_fail(ctx, CN_E_ARG, "checkpoint %s: the net has no parameters yet (cn_net_init_params)", path);
    const char *suffix[2];
    int n_states = 0;
    float *state = NULL;
    if (opt) {
        n_states = state_suffixes(cn_optim_get_config(opt)->kind, suffix);
        int64_t count;
        state = cn_optim_state((cn_optim *)opt, &count); /* read only */
        if (count != ex->n_trainable * n_states)
            return cn_fail(ctx, CN_E_ARG, "checkpoint %s: the optimizer was made for another net (%lld state values, "
                                          "the net needs %lld)", path, (long long)count,
                           (long long)(ex->n_trainable * n_states));
    }
    cn_status st = check_caller_meta(ctx, path, meta, n_meta);
    if (st) return st;
    const char *spec = cn_net_spec_text(net);
    if (!utf8_ok((const unsigned char *)spec, strlen(spec), 0))
        return cn_fail(ctx, CN_E_ARG, "checkpoint %s: the spec text is not valid UTF-8", path);

    int trainable = 0;
    for (int i = 0; i < ex->n_tensors; i++) trainable += ex->tensors[i].spec.trainable;
    int n = ex->n_tensors + n_states * trainable, k = 0;
    jbuf head = { .ctx = ctx };
    out_tensor *t = cn_calloc(ctx, (size_t)(n ? n : 1), sizeof *t);
    if (!t) return CN_E_NOMEM;
    st = CN_E_NOMEM;
    for (int i = 0; i < ex->n_tensors; i++) {
        const cn_tensor_rec *r = &ex->tensors[i];
        t[k++] = (out_tensor){ .name = r->name, .rank = r->spec.rank, .shape = r->spec.shape, .count = r->spec.count,
                               .data = ex->params + r->offset };
    }
    /* state in slab order: all of the first slab, then all of the second */
    for (int s = 0; s < n_states; s++)
        for (int i = 0; i < ex->n_tensors; i++) {
            const cn_tensor_rec *r = &ex->tensors[i];
            if (!r->spec.trainable) continue;
            size_t len = strlen(r->name) + strlen(suffix[s]) + 2;
            char *name = cn_malloc(ctx, len);
            if (!name) goto done;
            snprintf(name, len, "%s.%s", r->name, suffix[s]);
            t[k++] = (out_tensor){ .name = name, .rank = r->spec.rank, .shape = r->spec.shape, .count = r->spec.count,
                                   .data = state + s * ex->n_trainable + r->offset };
        }
    if ((st = build_header(ctx, net, opt, meta, n_meta, t, n, &head))) goto done;
    st = write_file(ctx, path, &head, t, n);
done:
    for (int i = ex->n_tensors; i < k; i++) cn_free(ctx, t[i].name);
    cn_free(ctx, t);
    cn_free(ctx, head.p);
    return st;
}

/* ---- reading -------------------------------------------------------------------------------- */

void cn_checkpoint_free(cn_checkpoint *ck)
{
    if (!ck) return;
    cn_ctx tmp = { .alloc = ck->alloc };
    for (int i = 0; i < ck->n_tensors; i++) cn_free(&tmp, ck->tensors[i].name);
    for (int i = 0; i < ck->n_meta; i++) cn_free(&tmp, ck->meta[i].key), cn_free(&tmp, ck->meta[i].value);
    cn_free(&tmp, ck->tensors);
    cn_free(&tmp, ck->by_name);
    cn_free(&tmp, ck->meta);
    cn_free(&tmp, ck->file);
    cn_free(&tmp, ck->path);
    cn_free(&tmp, ck);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(ck_tensor *const *)a)->name, (*(ck_tensor *const *)b)->name);
}
static int cmp_offset(const void *a, const void *b)
{
    const ck_tensor *x = *(ck_tensor *const *)a, *y = *(ck_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

const char *cn_checkpoint_meta(const cn_checkpoint *ck, const char *key)
{
    if (!ck || !key) return NULL;
    ck_meta k = { .key = (char *)key };
    const ck_meta *m = bsearch(&k, ck->meta, (size_t)ck->n_meta, sizeof *ck->meta, cmp_meta);
    return m ? m->value : NULL;
}

static const ck_tensor *find_tensor(const cn_checkpoint *ck, const char *name)
{
    ck_tensor k = { .name = (char *)name }, *kp = &k;
    ck_tensor **t = bsearch(&kp, ck->by_name, (size_t)ck->n_tensors, sizeof *ck->by_name, cmp_name);
    return t ? *t : NULL;
}

/* A JSON number that is a whole number 0 .. 2^53. */
static int json_u53(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= (double)CK_MAX_EXACT) || d != (double)(int64_t)d) return 0;
    *out = (int64_t)d;
    return 1;
}

static cn_status parse_tensor(cn_ctx *ctx, const char *path, const cJSON *item, int64_t data_size, ck_tensor *t)
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
    if (rank > CK_MAX_RANK)
        return bad(ctx, CN_E_FORMAT, path, "tensor '%s' has %d dimensions (at most %d)", name, rank, CK_MAX_RANK);
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
                   shape_text(t->shape, t->rank, sh, sizeof sh));
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
                   name, b, e, e - b, shape_text(t->shape, t->rank, sh, sizeof sh), (long long)bytes);
    return CN_OK;
}

/* The entries of the header object into ck (tensors, metadata), each checked on its own. */
static cn_status parse_entries(cn_ctx *ctx, cn_checkpoint *ck, const cJSON *root)
{
    const char *path = ck->path;
    const cJSON *metadata = NULL;
    int n = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__")) n++;
        else if (metadata) return bad(ctx, CN_E_FORMAT, path, "__metadata__ appears twice in the header");
        else metadata = c;
    }
    if (metadata && !cJSON_IsObject(metadata)) return bad(ctx, CN_E_FORMAT, path, "__metadata__ is not a JSON object");
    int m = metadata ? cJSON_GetArraySize(metadata) : 0;
    ck->tensors = cn_calloc(ctx, (size_t)(n ? n : 1), sizeof *ck->tensors);
    ck->by_name = cn_calloc(ctx, (size_t)(n ? n : 1), sizeof *ck->by_name);
    ck->meta = cn_calloc(ctx, (size_t)(m ? m : 1), sizeof *ck->meta);
    if (!ck->tensors || !ck->by_name || !ck->meta) return CN_E_NOMEM;
    for (const cJSON *c = metadata ? metadata->child : NULL; c; c = c->next) {
        if (!cJSON_IsString(c)) return bad(ctx, CN_E_FORMAT, path, "metadata '%s' is not a string", c->string);
        ck_meta *e = &ck->meta[ck->n_meta];
        if (!(e->key = cn_strdup(ctx, c->string)) || !(e->value = cn_strdup(ctx, c->valuestring))) {
            cn_free(ctx, e->key);
            e->key = NULL;
            return CN_E_NOMEM;
        }
        ck->n_meta++;
    }
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c == metadata) continue;
        ck_tensor *t = &ck->tensors[ck->n_tensors];
        if (!(t->name = cn_strdup(ctx, c->string))) return CN_E_NOMEM;
        ck->by_name[ck->n_tensors++] = t;
        cn_status st = parse_tensor(ctx, path, c, ck->data_size, t);
        if (st) return st;
    }
    qsort(ck->meta, (size_t)ck->n_meta, sizeof *ck->meta, cmp_meta);
    for (int i = 1; i < ck->n_meta; i++)
        if (!strcmp(ck->meta[i - 1].key, ck->meta[i].key))
            return bad(ctx, CN_E_FORMAT, path, "metadata '%s' appears twice", ck->meta[i].key);
    qsort(ck->by_name, (size_t)ck->n_tensors, sizeof *ck->by_name, cmp_name);
    for (int i = 1; i < ck->n_tensors; i++)
        if (!strcmp(ck->by_name[i - 1]->name, ck->by_name[i]->name))
            return bad(ctx, CN_E_FORMAT, path, "tensor '%s' appears twice in the header", ck->by_name[i]->name);
    return CN_OK;
}

/* The tensors must tile the data section: sorted by offset, each begins where the last ended. */
static cn_status check_tiling(cn_ctx *ctx, const cn_checkpoint *ck)
{
    ck_tensor **order = cn_calloc(ctx, (size_t)(ck->n_tensors ? ck->n_tensors : 1), sizeof *order);
    if (!order) return CN_E_NOMEM;
    memcpy(order, ck->by_name, (size_t)ck->n_tensors * sizeof *order);
    qsort(order, (size_t)ck->n_tensors, sizeof *order, cmp_offset);
    cn_status st = CN_OK;
    int64_t pos = 0;
    const ck_tensor *prev = NULL;
    for (int i = 0; i < ck->n_tensors && !st; i++) {
        const ck_tensor *t = order[i];
        if (t->begin < pos)
            st = bad(ctx, CN_E_FORMAT, ck->path, "tensor '%s' (data_offsets [%lld, %lld]) overlaps tensor '%s' ([%lld, %lld])",
                     t->name, (long long)t->begin, (long long)t->end, prev->name, (long long)prev->begin,
                     (long long)prev->end);
        else if (t->begin > pos)
            st = bad(ctx, CN_E_FORMAT, ck->path, "gap in the data section: bytes %lld to %lld, before tensor '%s', "
                     "belong to no tensor", (long long)pos, (long long)t->begin, t->name);
        pos = t->end, prev = t;
    }
    if (!st && pos != ck->data_size)
        st = bad(ctx, CN_E_FORMAT, ck->path, "gap in the data section: bytes %lld to %lld, at its end, belong to no tensor",
                 (long long)pos, (long long)ck->data_size);
    cn_free(ctx, order);
    return st;
}

/* format, and a checksum for every tensor and none for a tensor that is not there */
static cn_status check_meta(cn_ctx *ctx, const cn_checkpoint *ck, int verify)
{
    const char *path = ck->path, *fmt = cn_checkpoint_meta(ck, "format");
    if (!fmt) return bad(ctx, CN_E_FORMAT, path, "no \"format\" in __metadata__: not a convnet checkpoint");
    if (strcmp(fmt, CK_FORMAT) && strcmp(fmt, CK_FORMAT_V1))
        return bad(ctx, CN_E_UNSUPPORTED, path, "format '%.40s'; this version of convnet reads %s and %s", fmt, CK_FORMAT,
                   CK_FORMAT_V1);
    uint64_t want = 0;
    const char *mc = cn_checkpoint_meta(ck, CK_META_CRC);
    if (!mc && !strcmp(fmt, CK_FORMAT))
        return bad(ctx, CN_E_FORMAT, path, "no metadata checksum (%s in __metadata__)", CK_META_CRC);
    if (mc && !parse_hex(mc, 8, &want))
        return bad(ctx, CN_E_FORMAT, path, "metadata checksum %s is '%.20s', not 8 hex digits", CK_META_CRC, mc);
    if (mc && verify && meta_crc(ck->meta, ck->n_meta) != (uint32_t)want)
        return bad(ctx, CN_E_FORMAT, path, "metadata checksum mismatch (%s says %08x, the metadata gives %08x): "
                   "a key or value was changed", CK_META_CRC, (unsigned)want, (unsigned)meta_crc(ck->meta, ck->n_meta));
    for (int i = 0; i < ck->n_meta; i++) {
        const ck_meta *m = &ck->meta[i];
        if (strncmp(m->key, "crc32.", 6)) continue;
        if (!find_tensor(ck, m->key + 6)) return bad(ctx, CN_E_FORMAT, path, "checksum %s names no tensor", m->key);
        if (!parse_hex(m->value, 8, &want))
            return bad(ctx, CN_E_FORMAT, path, "checksum %s is '%.20s', not 8 hex digits", m->key, m->value);
    }
    size_t longest = 0;
    for (int i = 0; i < ck->n_tensors; i++)
        if (strlen(ck->tensors[i].name) > longest) longest = strlen(ck->tensors[i].name);
    char *key = cn_malloc(ctx, longest + 8);
    if (!key) return CN_E_NOMEM;
    cn_status st = CN_OK;
    for (int i = 0; i < ck->n_tensors && !st; i++) {
        const ck_tensor *t = &ck->tensors[i];
        snprintf(key, longest + 8, "crc32.%s", t->name);
        const char *v = cn_checkpoint_meta(ck, key);
        if (!v) {
            st = bad(ctx, CN_E_FORMAT, path, "no checksum for tensor '%s' (%s in __metadata__)", t->name, key);
            break;
        }
        parse_hex(v, 8, &want); /* checked above */
        uint32_t got = verify ? crc_of(ck->data + t->begin, t->end - t->begin) : (uint32_t)want;
        if (got != (uint32_t)want)
            st = bad(ctx, CN_E_FORMAT, path, "checksum mismatch in %s (the header says %08x, the data gives %08x)", t->name,
                     (unsigned)want, (unsigned)got);
    }
    cn_free(ctx, key);
    return st;
}

/* ---- the values convnet train stores ---------------------------------------------------------- */

/* n comma-separated finite floats; std: each > 0 too. Returns the 1-based index of the first
 * bad value (0: all good; n + 1: wrong count or junk). */
static int parse_floats(const char *s, float *v, int n, int positive)
{
    for (int i = 0; i < n; i++) {
        char *end;
        if (!*s || *s == ',' || *s == ' ') return i + 1;
        v[i] = strtof(s, &end);
        if (end == s || !isfinite(v[i]) || (positive && !(v[i] > 0))) return i + 1;
        s = end;
        if (i + 1 < n && *s++ != ',') return n + 1;
    }
    return *s ? n + 1 : 0;
}

/* cn_text_printable, and with lines: newline-separated entries, none of them empty */
static int printable(const char *s, int lines)
{
    if (!lines) return cn_text_printable(s);
    for (;;) {
        size_t n = strcspn(s, "\n");
        if (n == 0 || n > CK_MAX_NAME) return 0;
        char line[CK_MAX_NAME + 1];
        memcpy(line, s, n);
        line[n] = '\0';
        if (!cn_text_printable(line)) return 0;
        if (!s[n]) return 1;
        s += n + 1;
    }
}

static int ok_count(const char *v) { int64_t n; return parse_count(v, &n); }
static int ok_rng(const char *v)
{
    uint64_t part, any = 0;
    if (strlen(v) != 64) return 0;
    for (int i = 0; i < 4; i++) {
        char p[17];
        memcpy(p, v + 16 * i, 16);
        p[16] = '\0';
        if (!parse_hex(p, 16, &part)) return 0;
        any |= part;
    }
    return any != 0; /* xoshiro's all-zero state repeats zeros forever */
}
static int ok_fraction(const char *v) /* "nan" (no validation) or a number in [-1, 1] */
{
    char *end;
    double d = strtod(v, &end);
    return end != v && !*end && (isnan(d) ? !strcmp(v, "nan") || !strcmp(v, "-nan") : d >= -1 && d <= 1);
}
static int ok_loss(const char *v) /* "nan" (no epoch yet) or a finite number >= 0 */
{
    char *end;
    double d = strtod(v, &end);
    return end != v && !*end && (isnan(d) ? !strcmp(v, "nan") || !strcmp(v, "-nan") : isfinite(d) && d >= 0);
}

/* The keys convnet train writes (src/train/trainer.c, cli/train.c) and what their values must be. */
static cn_status check_train_meta(cn_ctx *ctx, const cn_checkpoint *ck)
{
    static const struct {
        const char *key, *want;
        int (*ok)(const char *);
    } counts[] = {
        { "epoch", "a whole number", ok_count },   { "step", "a whole number", ok_count },
        { "best_epoch", "a whole number", ok_count }, { "seed", "a whole number", ok_count },
        { "classes", "a whole number", ok_count },
        { "data_rng", "64 hex digits, not all zero", ok_rng }, { "net_rng", "64 hex digits, not all zero", ok_rng },
        { "val_acc", "nan or a number in [-1, 1]", ok_fraction },
        { "best_val_acc", "nan or a number in [-1, 1]", ok_fraction },
        { "best_val_loss", "nan or a finite number >= 0", ok_loss },
    };
    const char *path = ck->path, *v;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if ((v = cn_checkpoint_meta(ck, counts[i].key)) && !counts[i].ok(v))
            return bad(ctx, CN_E_FORMAT, path, "metadata %s is '%.40s', not %s", counts[i].key, v, counts[i].want);
    float f[4];
    int at;
    if ((v = cn_checkpoint_meta(ck, "norm_mean")) && (at = parse_floats(v, f, 4, 0)))
        return bad(ctx, CN_E_FORMAT, path, "metadata norm_mean is '%.60s': %s", v,
                   at > 4 ? "not 4 numbers separated by commas" : "a value is not a finite number");
    if ((v = cn_checkpoint_meta(ck, "norm_std")) && (at = parse_floats(v, f, 4, 1)))
        return bad(ctx, CN_E_FORMAT, path, "metadata norm_std is '%.60s': %s", v,
                   at > 4 ? "not 4 numbers separated by commas" : "a standard deviation must be a finite number > 0");
    const char *names = cn_checkpoint_meta(ck, "class_names"), *classes = cn_checkpoint_meta(ck, "classes");
    if (names && !printable(names, 1))
        return bad(ctx, CN_E_FORMAT, path, "metadata class_names: a name is empty or holds a control character (or is over 1024 bytes)");
    if (names && classes) {
        int64_t lines = 1, want = 0;
        for (const char *p = names; *p; p++) lines += *p == '\n';
        parse_count(classes, &want);
        if (lines != want)
            return bad(ctx, CN_E_FORMAT, path, "metadata class_names has %lld names for %lld classes", (long long)lines,
                       (long long)want);
    }
    if ((v = cn_checkpoint_meta(ck, "monitor")) && strcmp(v, "accuracy") && strcmp(v, "loss"))
        return bad(ctx, CN_E_FORMAT, path, "metadata monitor is '%.40s', not accuracy or loss", v);
    if ((v = cn_checkpoint_meta(ck, "data")) && !printable(v, 0))
        return bad(ctx, CN_E_FORMAT, path, "metadata data holds a control character");
    if ((v = cn_checkpoint_meta(ck, "test_data")) && !printable(v, 0))
        return bad(ctx, CN_E_FORMAT, path, "metadata test_data holds a control character");
    return CN_OK;
}

cn_status cn_checkpoint_norm(cn_ctx *ctx, const cn_checkpoint *ck, float mean[4], float std[4])
{
    if (!ctx) return CN_E_ARG;
    if (!ck || !mean || !std) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_norm: NULL argument");
    const char *m = cn_checkpoint_meta(ck, "norm_mean"), *s = cn_checkpoint_meta(ck, "norm_std");
    if (!m || !s)
        return bad(ctx, CN_E_FORMAT, ck->path, "no input normalisation (norm_mean, norm_std) in the metadata: "
                   "not written by convnet train");
    float mv[4], sv[4];
    if (parse_floats(m, mv, 4, 0) || parse_floats(s, sv, 4, 1)) /* checked when read: only a bug gets here */
        return bad(ctx, CN_E_FORMAT, ck->path, "malformed norm_mean or norm_std");
    memcpy(mean, mv, sizeof mv);
    memcpy(std, sv, sizeof sv);
    return CN_OK;
}

/* index of the first non-finite value of p[0..n), or -1 */
static int64_t first_nonfinite(const unsigned char *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        if (!isfinite(v)) return i;
    }
    return -1;
}

static cn_status check_header_length(cn_ctx *ctx, const char *path, uint64_t n, uint64_t size)
{
    if (n > size - 8)
        return bad(ctx, CN_E_FORMAT, path, "header length %llu runs past the end of the file (%llu bytes after the length)",
                   (unsigned long long)n, (unsigned long long)(size - 8));
    if (n > (uint64_t)CK_MAX_HEADER)
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
static cn_status parse_file(cn_ctx *ctx, const char *path, unsigned char *file, size_t size, int verify,
                            cn_checkpoint **out)
{
    cJSON *root = NULL;
    cn_status st = CN_E_NOMEM;
    cn_checkpoint *ck = cn_calloc(ctx, 1, sizeof *ck);
    if (!ck) {
        cn_free(ctx, file);
        return CN_E_NOMEM;
    }
    ck->alloc = ctx->alloc;
    ck->file = file;
    ck->verified = verify;
    if (!(ck->path = cn_strdup(ctx, path))) goto done;
    uint64_t n = le64(file);
    if ((st = check_header_length(ctx, path, n, size))) goto done;
    const char *head = (const char *)file + 8;
    ck->data = file + 8 + n;
    ck->data_size = (int64_t)(size - 8 - n);
    st = CN_E_FORMAT;
    if (!utf8_ok((const unsigned char *)head, (size_t)n, 1)) {
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
    if ((st = parse_entries(ctx, ck, root))) goto done;
    if ((st = check_tiling(ctx, ck))) goto done;
    if ((st = check_meta(ctx, ck, verify))) goto done;
    if ((st = check_train_meta(ctx, ck))) goto done;
    *out = ck;
    ck = NULL;
done:
    cJSON_Delete(root);
    cn_checkpoint_free(ck);
    return st;
}

cn_status cn_checkpoint_read_memory(cn_ctx *ctx, const void *data, size_t size, const char *name, int verify,
                                    cn_checkpoint **out)
{
    if (!ctx) return CN_E_ARG;
    if (!out || !name || (!data && size)) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_read_memory: bad arguments");
    *out = NULL;
    cn_ctx_clear(ctx);
    if (size < 8) return bad(ctx, CN_E_FORMAT, name, "%zu bytes, shorter than the 8-byte header length", size);
    unsigned char *copy = cn_malloc(ctx, size);
    if (!copy) return CN_E_NOMEM;
    memcpy(copy, data, size);
    return parse_file(ctx, name, copy, size, verify, out);
}

cn_status cn_checkpoint_read(cn_ctx *ctx, const char *path, cn_checkpoint **out)
{
    if (!ctx) return CN_E_ARG;
    if (!path || !out) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_read: NULL argument");
    *out = NULL;
    cn_ctx_clear(ctx);
    cn_status st = CN_E_IO;
    unsigned char *buf = NULL, len8[8];
    FILE *f = fopen(path, "rb");
    if (!f) return cn_fail(ctx, CN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        st = cn_fail(ctx, CN_E_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = bad(ctx, CN_E_IO, path, "not a regular file");
        goto done;
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
    st = parse_file(ctx, path, buf, (size_t)size, 1, out);
    buf = NULL; /* parse_file owns it */
done:
    if (f) fclose(f);
    cn_free(ctx, buf);
    return st;
}

/* ---- restoring ---------------------------------------------------------------------------- */

/* The stored tensor `name` with the given shape, marked as used; fails naming it. */
static cn_status take_tensor(cn_ctx *ctx, const cn_checkpoint *ck, const char *name, int rank, const int64_t *shape,
                             unsigned char *used, const ck_tensor **out)
{
    char a[200], b[200];
    const ck_tensor *t = find_tensor(ck, name);
    if (!t)
        return bad(ctx, CN_E_FORMAT, ck->path, "tensor '%s' is missing (the spec gives it shape %s)", name,
                   shape_text(shape, rank, b, sizeof b));
    int same = t->rank == rank;
    for (int d = 0; same && d < rank; d++) same = t->shape[d] == shape[d];
    if (!same)
        return bad(ctx, CN_E_SHAPE, ck->path, "tensor '%s' has shape %s in the file, the spec gives %s", name,
                   shape_text(t->shape, t->rank, a, sizeof a), shape_text(shape, rank, b, sizeof b));
    used[t - ck->tensors] = 1;
    *out = t;
    return CN_OK;
}

/* Builds the stored net and fills it; *kind and *n_states describe the stored optimizer state
 * (every state tensor checked too). */
static cn_status restore_net(cn_ctx *ctx, const cn_checkpoint *ck, cn_net **out, cn_optim_kind *kind, int *n_states)
{
    const char *path = ck->path, *spec = cn_checkpoint_meta(ck, "spec"), *hash = cn_checkpoint_meta(ck, "spec_hash");
    const char *opt_name = cn_checkpoint_meta(ck, "optimizer"), *suffix[2];
    *out = NULL;
    *n_states = 0;
    *kind = CN_OPTIM_SGD;
    if (!spec) return bad(ctx, CN_E_FORMAT, path, "no \"spec\" in __metadata__");
    if (!hash) return bad(ctx, CN_E_FORMAT, path, "no \"spec_hash\" in __metadata__");
    uint64_t want;
    if (!parse_hex(hash, 16, &want)) return bad(ctx, CN_E_FORMAT, path, "spec_hash '%.40s' is not 16 hex digits", hash);
    if (ck->verified && fnv1a64(spec) != want)
        return bad(ctx, CN_E_FORMAT, path, "spec_hash %016llx does not match the stored spec (whose hash is %016llx)",
                   (unsigned long long)want, (unsigned long long)fnv1a64(spec));
    if (opt_name) {
        if (!kind_from_name(opt_name, kind)) return bad(ctx, CN_E_FORMAT, path, "unknown optimizer '%.40s'", opt_name);
        *n_states = state_suffixes(*kind, suffix);
    }

    cn_net *net = NULL;
    unsigned char *used = NULL;
    char *spec_file = NULL, *name = NULL;
    size_t plen = strlen(path) + 8;
    cn_status st = CN_E_NOMEM;
    if (!(spec_file = cn_malloc(ctx, plen))) goto done;
    snprintf(spec_file, plen, "%s:spec", path);
    if ((st = cn_net_parse(ctx, spec, strlen(spec), spec_file, &net))) goto done;
    /* every tensor the spec gives must be in the file with its shape, before the slab is
     * allocated: a spec asking for gigabytes cannot pass unless the file holds them */
    st = CN_E_NOMEM;
    if (!(used = cn_calloc(ctx, (size_t)(ck->n_tensors ? ck->n_tensors : 1), 1))) goto done;
    for (int i = 0; i < net->n; i++) {
        cn_param_spec specs[CN_MAX_PARAMS];
        int k = cn_node_params(net, i, specs);
        for (int j = 0; j < k; j++)
            for (int s = -1; s < (specs[j].trainable ? *n_states : 0); s++) {
                const char *node = net->nodes[i].name, *sfx = s < 0 ? "" : suffix[s];
                size_t len = strlen(node) + strlen(specs[j].name) + strlen(sfx) + 3;
                const ck_tensor *t;
                st = CN_E_NOMEM;
                if (!(name = cn_malloc(ctx, len))) goto done;
                snprintf(name, len, "%s.%s%s%s", node, specs[j].name, s < 0 ? "" : ".", sfx);
                if ((st = take_tensor(ctx, ck, name, specs[j].rank, specs[j].shape, used, &t))) goto done;
                cn_free(ctx, name), name = NULL;
            }
    }
    for (int i = 0; i < ck->n_tensors; i++)
        if (!used[i]) {
            st = bad(ctx, CN_E_FORMAT, path, "unknown tensor '%s': the spec has no such tensor%s", ck->tensors[i].name,
                     opt_name ? "" : " (and no optimizer state is saved)");
            goto done;
        }
    if ((st = cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 0))) goto done;
    const cn_exec *ex = &net->ex;
    for (int i = 0; i < ex->n_tensors; i++) {
        const ck_tensor *t = find_tensor(ck, ex->tensors[i].name);
        if (!t) { /* the slab names its tensors as cn_node_params does: found above */
            st = bad(ctx, CN_E_FORMAT, path, "tensor '%s' is missing", ex->tensors[i].name);
            goto done;
        }
        int64_t at = first_nonfinite(ck->data + t->begin, t->count);
        if (at >= 0) {
            st = bad(ctx, CN_E_FORMAT, path, "tensor '%s' holds a value that is not finite (at index %lld)", t->name,
                     (long long)at);
            goto done;
        }
        memcpy(ex->params + ex->tensors[i].offset, ck->data + t->begin, (size_t)t->count * sizeof(float));
    }
    *out = net, net = NULL;
    st = CN_OK;
done:
    cn_net_destroy(net);
    cn_free(ctx, used);
    cn_free(ctx, name);
    cn_free(ctx, spec_file);
    return st;
}

cn_status cn_checkpoint_load_matching(cn_ctx *ctx, const cn_checkpoint *ck, cn_net *net, int *copied, char *fresh,
                                      size_t cap)
{
    if (!ctx) return CN_E_ARG;
    if (!ck || !net || !copied) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_load_matching: NULL argument");
    const cn_exec *ex = &net->ex;
    if (!ex->params) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_load_matching: call cn_net_init_params first");
    *copied = 0;
    cn_strbuf sb;
    char none[1];
    cn_sb_init(&sb, fresh && cap ? fresh : none, fresh && cap ? cap : sizeof none);
    int last_fresh = -1;
    for (int i = 0; i < ex->n_tensors; i++) {
        const cn_tensor_rec *r = &ex->tensors[i];
        const ck_tensor *t = find_tensor(ck, r->name);
        int same = t && t->rank == r->spec.rank;
        for (int d = 0; same && d < t->rank; d++) same = t->shape[d] == r->spec.shape[d];
        if (!same) {
            if (r->node != last_fresh) cn_sb_printf(&sb, "%s%s", sb.len ? ", " : "", net->nodes[r->node].name);
            last_fresh = r->node;
            continue;
        }
        int64_t at = first_nonfinite(ck->data + t->begin, t->count);
        if (at >= 0)
            return bad(ctx, CN_E_FORMAT, ck->path, "tensor '%s' holds a value that is not finite (at index %lld)",
                       t->name, (long long)at);
        memcpy(ex->params + r->offset, ck->data + t->begin, (size_t)t->count * sizeof(float));
        ++*copied;
    }
    if (!*copied && ex->n_tensors)
        return bad(ctx, CN_E_SHAPE, ck->path, "no tensor of it has a name and shape of this net's (%s, ...): "
                   "not a run of a net like this one", ex->tensors[0].name);
    return CN_OK;
}

cn_status cn_checkpoint_net(cn_ctx *ctx, const cn_checkpoint *ck, cn_net **net)
{
    if (!ctx) return CN_E_ARG;
    if (!ck || !net) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_net: NULL argument");
    cn_optim_kind kind;
    int n_states;
    return restore_net(ctx, ck, net, &kind, &n_states);
}

cn_status cn_checkpoint_optim(cn_ctx *ctx, const cn_checkpoint *ck, cn_optim *opt)
{
    if (!ctx) return CN_E_ARG;
    if (!ck || !opt) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_optim: NULL argument");
    cn_optim_kind want = cn_optim_get_config(opt)->kind, kind;
    const char *name = cn_checkpoint_meta(ck, "optimizer"), *steps_text = cn_checkpoint_meta(ck, "optimizer_steps");
    int64_t steps;
    if (!name) return bad(ctx, CN_E_ARG, ck->path, "holds no optimizer state");
    if (!steps_text) return bad(ctx, CN_E_FORMAT, ck->path, "no \"optimizer_steps\" in __metadata__");
    if (!parse_count(steps_text, &steps))
        return bad(ctx, CN_E_FORMAT, ck->path, "optimizer_steps '%.40s' is not a whole number", steps_text);
    cn_net *net = NULL;
    const ck_tensor **found = NULL;
    char *key = NULL;
    int n_states;
    cn_status st = restore_net(ctx, ck, &net, &kind, &n_states);
    if (st) return st;
    if (kind != want) {
        st = bad(ctx, CN_E_ARG, ck->path, "holds %s state; the optimizer is %s", cn_optim_kind_name(kind),
                 cn_optim_kind_name(want));
        goto done;
    }
    const cn_exec *ex = &net->ex;
    int64_t count;
    float *state = cn_optim_state(opt, &count);
    if (count != ex->n_trainable * n_states) {
        st = bad(ctx, CN_E_ARG, ck->path, "the optimizer was made for another net (%lld state values, the checkpoint's "
                 "net needs %lld)", (long long)count, (long long)(ex->n_trainable * n_states));
        goto done;
    }
    /* restore_net found every state tensor with its shape; find them again, then copy, so that
     * a failure leaves the optimizer as it was */
    const char *suffix[2];
    state_suffixes(kind, suffix);
    st = CN_E_NOMEM;
    if (!(found = cn_calloc(ctx, (size_t)(n_states * ex->n_tensors + 1), sizeof *found))) goto done;
    for (int s = 0; s < n_states; s++)
        for (int i = 0; i < ex->n_tensors; i++) {
            const cn_tensor_rec *r = &ex->tensors[i];
            if (!r->spec.trainable) continue;
            size_t len = strlen(r->name) + strlen(suffix[s]) + 2;
            if (!(key = cn_malloc(ctx, len))) goto done;
            snprintf(key, len, "%s.%s", r->name, suffix[s]);
            found[s * ex->n_tensors + i] = find_tensor(ck, key);
            cn_free(ctx, key), key = NULL;
        }
    for (int s = 0; s < n_states * ex->n_tensors; s++) {
        const ck_tensor *t = found[s];
        int64_t at = t ? first_nonfinite(ck->data + t->begin, t->count) : -1;
        if (at >= 0) {
            st = bad(ctx, CN_E_FORMAT, ck->path, "tensor '%s' holds a value that is not finite (at index %lld)", t->name,
                     (long long)at);
            goto done;
        }
    }
    for (int s = 0; s < n_states; s++)
        for (int i = 0; i < ex->n_tensors; i++) {
            const ck_tensor *t = found[s * ex->n_tensors + i];
            if (t)
                memcpy(state + s * ex->n_trainable + ex->tensors[i].offset, ck->data + t->begin,
                       (size_t)t->count * sizeof(float));
        }
    cn_optim_set_steps(opt, steps);
    st = CN_OK;
done:
    cn_free(ctx, found);
    cn_free(ctx, key);
    cn_net_destroy(net);
    return st;
}
