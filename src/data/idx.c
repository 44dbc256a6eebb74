/* idx.c — IDX files (MNIST, Fashion-MNIST), gzipped or raw. Every header field is checked
 * before anything is allocated from it, and the data buffer grows only as bytes arrive.
 * Covered by tests/test_data.c (good, malformed and hostile files) and fuzz/fuzz_idx.c (corpus
 * replayed by the tests).
 *
 * The gzip data is inflated by zlib's inflate on our buffers, not gzread, which skips whatever
 * follows the gzip data: here anything after a gzip member but the end of the file or another
 * member is an error. More members are legal gzip (`cat a.gz b.gz`, bgzip, pigz --independent
 * write them) and are read as one stream, as gunzip does. zlib allocates through the context. */
#define _POSIX_C_SOURCE 200809L /* fileno */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data_impl.h"

#define IDX_UBYTE 0x08
#define IDX_FIRST_CHUNK (INT64_C(1) << 20)

/* A raw or gzipped file read as its data. */
typedef struct idx_src {
    cn_ctx *ctx;
    FILE *f;
    int gz;           /* gzip (the file starts 1f 8b); else the bytes are the data */
    int z_ready;      /* inflateInit2 done */
    int eof;          /* the file is read to its end */
    int done;         /* gzip: the last member has ended, at the end of the file */
    int64_t in_total; /* bytes of the file read so far */
    int64_t produced; /* bytes of data given out so far */
    z_stream z;       /* next_in, avail_in: bytes of the file read but not yet used, also raw */
    const char *why;  /* on failure: why, for the caller's message */
    cn_status status; /* on failure */
    int cut;          /* the failure: the gzip data stops before its end */
    char zmsg[96];    /* "corrupt gzip data: " and zlib's message */
    unsigned char in[1 << 15];
} idx_src;

static voidpf idx_zalloc(voidpf opaque, uInt items, uInt size)
{
    cn_ctx *ctx = opaque;
    return ctx->alloc.malloc_fn(ctx->alloc.user, (size_t)items * size); /* uInt x uInt fits */
}

static void idx_zfree(voidpf opaque, voidpf p)
{
    cn_ctx *ctx = opaque;
    if (p) ctx->alloc.free_fn(ctx->alloc.user, p);
}

static int src_fail(idx_src *s, cn_status status, const char *why)
{
    s->status = status, s->why = why;
    return -1;
}

/* More of the file after the bytes not yet used (moved to the front); 0, or -1 on a read error */
static int src_fill(idx_src *s)
{
    if (s->eof) return 0;
    if (s->z.avail_in) memmove(s->in, s->z.next_in, s->z.avail_in);
    size_t n = fread(s->in + s->z.avail_in, 1, sizeof s->in - s->z.avail_in, s->f);
    if (ferror(s->f)) return src_fail(s, CN_E_IO, strerror(errno ? errno : EIO));
    s->z.next_in = s->in, s->z.avail_in += (uInt)n, s->in_total += (int64_t)n;
    if (n == 0) s->eof = 1;
    return 0;
}

/* After a gzip member: the end of the file, or the next member (its magic 1f 8b); else junk */
static int src_next_member(idx_src *s)
{
    while (s->z.avail_in < 2 && !s->eof)
        if (src_fill(s)) return -1;
    if (s->z.avail_in == 0) {
        s->done = 1;
        return 0;
    }
    if (s->z.avail_in < 2 || s->z.next_in[0] != 0x1f || s->z.next_in[1] != 0x8b)
        return src_fail(s, CN_E_FORMAT, "junk after the end of the gzip data");
    inflateReset(&s->z);
    return 0;
}

/* Opens the stream: raw or gzip by the first two bytes. 0, or -1 (s->why). */
static int src_open(idx_src *s)
{
    while (s->z.avail_in < 2 && !s->eof)
        if (src_fill(s)) return -1;
    s->gz = s->z.avail_in >= 2 && s->z.next_in[0] == 0x1f && s->z.next_in[1] == 0x8b;
    if (!s->gz) return 0;
    s->z.zalloc = idx_zalloc, s->z.zfree = idx_zfree, s->z.opaque = s->ctx;
    int r = inflateInit2(&s->z, 16 + MAX_WBITS); /* gzip only */
    if (r != Z_OK) return src_fail(s, r == Z_MEM_ERROR ? CN_E_NOMEM : CN_E_FORMAT, "cannot start zlib");
    s->z_ready = 1;
    return 0;
}

/* Up to n bytes of data into buf, fewer only at the end of the data; -1 on failure (s->why) */
static int64_t src_read(idx_src *s, unsigned char *buf, int64_t n)
{
    int64_t got = 0;
    if (!s->gz) {
        uInt k = s->z.avail_in < n ? s->z.avail_in : (uInt)n; /* the 2 bytes looked at by src_open */
        memcpy(buf, s->z.next_in, k);
        s->z.next_in += k, s->z.avail_in -= k, got = k;
        got += (int64_t)fread(buf + got, 1, (size_t)(n - got), s->f);
        s->produced += got;
        if (ferror(s->f)) return src_fail(s, CN_E_IO, strerror(errno ? errno : EIO));
        return got;
    }
    while (got < n && !s->done) {
        if (s->z.avail_in == 0 && src_fill(s)) return -1;
        uInt room = n - got > UINT_MAX ? UINT_MAX : (uInt)(n - got);
        s->z.next_out = buf + got, s->z.avail_out = room;
        int r = inflate(&s->z, Z_NO_FLUSH);
        got += room - s->z.avail_out;
        s->produced += room - s->z.avail_out;
        if (r == Z_STREAM_END) {
            if (src_next_member(s)) return -1;
        } else if (r == Z_BUF_ERROR && s->eof) { /* input wanted, and there is none */
            s->cut = 1;
            return src_fail(s, CN_E_FORMAT, "the gzip data is cut short");
        } else if (r == Z_MEM_ERROR) {
            return src_fail(s, CN_E_NOMEM, "out of memory (zlib)");
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            snprintf(s->zmsg, sizeof s->zmsg, "corrupt gzip data: %s", s->z.msg ? s->z.msg : "inflate failed");
            return src_fail(s, CN_E_FORMAT, s->zmsg);
        }
    }
    return got;
}

/* The failure of a read, naming the file: NOMEM and IO as such, else the format's problem */
static cn_status src_error(idx_src *s, const char *path)
{
    if (s->status == CN_E_NOMEM) return cn_fail(s->ctx, CN_E_NOMEM, "%s: %s", path, s->why);
    if (s->status == CN_E_IO) return cn_fail(s->ctx, CN_E_IO, "%s: cannot read: %s", path, s->why);
    return cn_fail(s->ctx, CN_E_FORMAT, "%s: %s (at byte %lld of the file)", path, s->why,
                   (long long)(s->in_total - s->z.avail_in));
}

/* The data buffer grows (doubling) as bytes arrive rather than being sized from the header:
 * a file that claims more than it holds costs what it holds, not what it claims. Before that,
 * the claim is checked against CN_IDX_MAX_BYTES and against the file's size: a raw file must
 * hold it, a gzip file can hold at most CN_DEFLATE_MAX_RATIO times its size. */
cn_status cn_idx_read(cn_ctx *ctx, const char *path, int ndim, cn_idx *h)
{
    memset(h, 0, sizeof *h);
    if (ndim < 1 || ndim > 3) return cn_fail(ctx, CN_E_ARG, "%s: IDX files of %d dimensions are not read", path, ndim);
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cn_fail(ctx, CN_E_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "fopen failed");
    idx_src *s = cn_malloc(ctx, sizeof *s);
    if (!s) {
        fclose(f);
        return CN_E_NOMEM;
    }
    memset(s, 0, sizeof *s);
    s->ctx = ctx, s->f = f;
    struct stat sb;
    int64_t size = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1;
    cn_status st = CN_OK;
    unsigned char head[4 + 4 * 3];
    int64_t cap = 0, have = 0, hsize = 4 + 4 * ndim;
    int64_t got = src_open(s) ? -1 : src_read(s, head, 4);
    if (got < 0) {
        st = src_error(s, path);
        goto done;
    }
    if (got != 4) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: %d bytes; an IDX file starts with 4 bytes of magic", path, (int)got);
        goto done;
    }
    if (head[0] != 0 || head[1] != 0 || head[2] != IDX_UBYTE || head[3] != ndim) {
        st = cn_fail(ctx, CN_E_FORMAT,
                     "%s: magic %02x %02x %02x %02x is not an IDX file of unsigned bytes with %d dimension%s "
                     "(expected 00 00 08 %02x)",
                     path, head[0], head[1], head[2], head[3], ndim, ndim == 1 ? "" : "s", ndim);
        goto done;
    }
    h->ndim = ndim;
    if ((got = src_read(s, head + 4, 4 * ndim)) < 0) {
        st = src_error(s, path);
        goto done;
    }
    if (got != 4 * ndim) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: truncated header (%d of %d dimension bytes)", path, (int)got, 4 * ndim);
        goto done;
    }
    h->count = 1;
    for (int i = 0; i < ndim; i++) {
        const unsigned char *b = head + 4 + 4 * i;
        h->dims[i] = (int64_t)b[0] << 24 | (int64_t)b[1] << 16 | (int64_t)b[2] << 8 | b[3];
        if (h->dims[i] == 0) {
            st = cn_fail(ctx, CN_E_FORMAT, "%s: dimension %d is 0", path, i + 1);
            goto done;
        }
        if (!cn_mul_ok(h->count, h->dims[i], &h->count) || h->count > CN_IDX_MAX_BYTES) {
            st = cn_fail(ctx, CN_E_FORMAT, "%s: dimensions claim more than %lld bytes of data", path,
                         (long long)CN_IDX_MAX_BYTES);
            goto done;
        }
    }
    if (size >= 0 && !s->gz && hsize + h->count > size) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: truncated: the header promises %lld bytes of data, the file has %lld", path,
                     (long long)h->count, (long long)(size - hsize));
        goto done;
    }
    if (size >= 0 && s->gz && (hsize + h->count) / CN_DEFLATE_MAX_RATIO > size) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: the header promises %lld bytes of data; %lld bytes of gzip hold at most "
                     "%lld", path, (long long)h->count, (long long)size, (long long)(size * CN_DEFLATE_MAX_RATIO - hsize));
        goto done;
    }
    while (have < h->count) {
        if (have == cap) {
            int64_t next = cap ? (cap > h->count / 2 ? h->count : 2 * cap)
                               : (h->count < IDX_FIRST_CHUNK ? h->count : IDX_FIRST_CHUNK);
            unsigned char *p = cn_realloc(ctx, h->data, (size_t)next);
            if (!p) {
                st = CN_E_NOMEM;
                goto done;
            }
            h->data = p, cap = next;
        }
        if ((got = src_read(s, h->data + have, cap - have)) < 0) {
            st = s->cut ? cn_fail(ctx, CN_E_FORMAT, "%s: truncated: the header promises %lld bytes of data, the file has "
                                  "%lld before its gzip data is cut short", path, (long long)h->count,
                                  (long long)s->produced - hsize)
                        : src_error(s, path);
            goto done;
        }
        if (got == 0) break;
        have += got;
    }
    if (have < h->count) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: truncated: the header promises %lld bytes of data, the file has %lld", path,
                     (long long)h->count, (long long)have);
        goto done;
    }
    unsigned char extra;
    if ((got = src_read(s, &extra, 1)) < 0) {
        st = src_error(s, path);
        goto done;
    }
    if (got == 1) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: bytes after the %lld the header promises", path, (long long)h->count);
        goto done;
    }
done:
    if (s->z_ready) inflateEnd(&s->z);
    cn_free(ctx, s);
    fclose(f);
    if (st) cn_idx_free(ctx, h);
    return st;
}

void cn_idx_free(cn_ctx *ctx, cn_idx *idx)
{
    if (!idx) return;
    cn_free(ctx, idx->data);
    memset(idx, 0, sizeof *idx);
}

void cn_dataset_free(cn_ctx *ctx, cn_dataset *ds)
{
    if (!ds) return;
    cn_free(ctx, ds->images);
    cn_free(ctx, ds->labels);
    for (int64_t i = 0; ds->paths && i < ds->count; i++) cn_free(ctx, ds->paths[i]);
    cn_free(ctx, ds->paths);
    cn_free(ctx, ds->pixels);
    for (int32_t i = 0; ds->class_names && i < ds->classes; i++) cn_free(ctx, ds->class_names[i]);
    cn_free(ctx, ds->class_names);
    memset(ds, 0, sizeof *ds);
}

/* the images converted to floats now, or (lazy) their bytes kept for cn_make_batch_rows */
static cn_status load_idx(cn_ctx *ctx, const char *images_path, const char *labels_path, int lazy, cn_dataset *out)
{
    memset(out, 0, sizeof *out);
    cn_idx hi, hl;
    memset(&hl, 0, sizeof hl);
    cn_status st = cn_idx_read(ctx, images_path, 3, &hi);
    if (!st) st = cn_idx_read(ctx, labels_path, 1, &hl);
    if (!st && hi.dims[0] != hl.dims[0])
        st = cn_fail(ctx, CN_E_FORMAT, "%s has %lld images but %s has %lld labels", images_path, (long long)hi.dims[0],
                     labels_path, (long long)hl.dims[0]);
    if (!st) {
        out->count = hi.dims[0];
        out->c = 1, out->h = hi.dims[1], out->w = hi.dims[2];
        out->images = lazy ? NULL : cn_malloc_large(ctx, (size_t)hi.count * sizeof(float));
        out->labels = cn_malloc(ctx, (size_t)hl.count * sizeof(int32_t));
        if ((!lazy && !out->images) || !out->labels) st = CN_E_NOMEM;
    }
    if (!st) {
        if (lazy) out->pixels = hi.data, hi.data = NULL; /* kept: converted by cn_make_batch_rows */
        for (int64_t i = 0; !lazy && i < hi.count; i++) out->images[i] = (float)hi.data[i] / 255.0f;
        for (int64_t i = 0; i < hl.count; i++) {
            out->labels[i] = hl.data[i];
            if (hl.data[i] + 1 > out->classes) out->classes = hl.data[i] + 1;
        }
    }
    cn_idx_free(ctx, &hi);
    cn_idx_free(ctx, &hl);
    if (st) cn_dataset_free(ctx, out);
    return st;
}

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && !S_ISDIR(sb.st_mode);
}

int cn_mnist_half_files(const char *dir, int train, char *img, char *lab, size_t cap)
{
    const char *prefix = train ? "train" : "t10k";
    const char *slash = *dir && dir[strlen(dir) - 1] != '/' ? "/" : "";
    for (int gz = 1; gz >= 0; gz--) {
        snprintf(img, cap, "%s%s%s-images-idx3-ubyte%s", dir, slash, prefix, gz ? ".gz" : "");
        if (!exists(img)) continue;
        for (int other = 0; other < 2; other++) {
            snprintf(lab, cap, "%s%s%s-labels-idx1-ubyte%s", dir, slash, prefix, gz != other ? ".gz" : "");
            if (exists(lab)) return 1;
        }
        snprintf(lab, cap, "%s%s%s-labels-idx1-ubyte%s", dir, slash, prefix, gz ? ".gz" : ""); /* named missing */
        return 1;
    }
    return 0;
}

cn_status cn_dataset_load_idx(cn_ctx *ctx, const char *images_path, const char *labels_path, cn_dataset *out)
{
    return load_idx(ctx, images_path, labels_path, 0, out);
}

static cn_status load_mnist(cn_ctx *ctx, const char *dir, int train, int lazy, cn_dataset *out)
{
    char img[4096], lab[4096];
    if (cn_mnist_half_files(dir, train, img, lab, sizeof img)) return load_idx(ctx, img, lab, lazy, out);
    memset(out, 0, sizeof *out);
    return cn_fail(ctx, CN_E_IO, "%s: no %s-images-idx3-ubyte[.gz] here (an MNIST-format folder has train-* and t10k-* "
                                 "image and label files)", dir, train ? "train" : "t10k");
}

cn_status cn_dataset_load_mnist(cn_ctx *ctx, const char *dir, int train, cn_dataset *out)
{
    return load_mnist(ctx, dir, train, 0, out);
}

cn_status cn_dataset_open_mnist(cn_ctx *ctx, const char *dir, int train, cn_dataset *out)
{
    return load_mnist(ctx, dir, train, 1, out);
}
