/* idx.c — IDX files (MNIST, Fashion-MNIST), gzipped or raw, read through zlib (which passes
 * raw files through). Every header field is checked before anything is allocated from it, and
 * the data buffer grows only as bytes arrive. Covered by tests/test_data.c (good and malformed
 * files) and fuzz/fuzz_idx.c (corpus replayed by the tests). */
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "data_impl.h"

#define IDX_UBYTE 0x08
#define IDX_MAX_BYTES (INT64_C(1) << 34) /* 16 GiB of pixels: larger is not an image set */
#define IDX_FIRST_CHUNK (INT64_C(1) << 20)

/* The data buffer grows (doubling) as bytes arrive rather than being sized from the header:
 * a 20-byte file that claims 16 GiB costs 1 MiB, not 16 GiB, before it is found truncated. */
cn_status cn_idx_read(cn_ctx *ctx, const char *path, int ndim, cn_idx *h)
{
    memset(h, 0, sizeof *h);
    if (ndim < 1 || ndim > 3) return cn_fail(ctx, CN_E_ARG, "%s: IDX files of %d dimensions are not read", path, ndim);
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) return cn_fail(ctx, CN_E_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "gzopen failed");
    cn_status st = CN_OK;
    unsigned char head[4 + 4 * 3];
    int64_t cap = 0, have = 0;
    int got = gzread(f, head, 4);
    if (got != 4) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: %d bytes; an IDX file starts with 4 bytes of magic", path, got < 0 ? 0 : got);
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
    got = gzread(f, head + 4, (unsigned)(4 * ndim));
    if (got != 4 * ndim) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: truncated header (%d of %d dimension bytes)", path, got < 0 ? 0 : got,
                     4 * ndim);
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
        if (!cn_mul_ok(h->count, h->dims[i], &h->count) || h->count > IDX_MAX_BYTES) {
            st = cn_fail(ctx, CN_E_FORMAT, "%s: dimensions claim more than %lld bytes of data", path,
                         (long long)IDX_MAX_BYTES);
            goto done;
        }
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
        int64_t want = cap - have > (1 << 30) ? (1 << 30) : cap - have;
        int n = gzread(f, h->data + have, (unsigned)want);
        if (n <= 0) break;
        have += n;
    }
    if (have < h->count) {
        int zerr;
        const char *zmsg = gzerror(f, &zerr);
        st = cn_fail(ctx, CN_E_FORMAT, "%s: truncated: the header promises %lld bytes of data, the file has %lld%s%s", path,
                     (long long)h->count, (long long)have, zerr < 0 ? "; " : "", zerr < 0 ? zmsg : "");
        goto done;
    }
    unsigned char extra;
    if (gzread(f, &extra, 1) == 1) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: bytes after the %lld the header promises", path, (long long)h->count);
        goto done;
    }
done:
    gzclose(f);
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
    for (int32_t i = 0; ds->class_names && i < ds->classes; i++) cn_free(ctx, ds->class_names[i]);
    cn_free(ctx, ds->class_names);
    memset(ds, 0, sizeof *ds);
}

cn_status cn_dataset_load_idx(cn_ctx *ctx, const char *images_path, const char *labels_path, cn_dataset *out)
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
        out->images = cn_malloc(ctx, (size_t)hi.count * sizeof(float));
        out->labels = cn_malloc(ctx, (size_t)hl.count * sizeof(int32_t));
        if (!out->images || !out->labels) st = CN_E_NOMEM;
    }
    if (!st) {
        for (int64_t i = 0; i < hi.count; i++) out->images[i] = (float)hi.data[i] / 255.0f;
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
    gzFile f = gzopen(p, "rb");
    if (f) gzclose(f);
    return f != NULL;
}

cn_status cn_dataset_load_mnist(cn_ctx *ctx, const char *dir, int train, cn_dataset *out)
{
    char img[4096], lab[4096];
    const char *prefix = train ? "train" : "t10k";
    for (int gz = 1; gz >= 0; gz--) {
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte%s", dir, prefix, gz ? ".gz" : "");
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte%s", dir, prefix, gz ? ".gz" : "");
        if (exists(img)) return cn_dataset_load_idx(ctx, img, lab, out);
    }
    memset(out, 0, sizeof *out);
    return cn_fail(ctx, CN_E_IO, "%s: no %s-images-idx3-ubyte[.gz] here (an MNIST-format folder has train-* and t10k-* "
                                 "image and label files)", dir, prefix);
}
