/* idx.c — IDX files (MNIST, Fashion-MNIST), gzipped or raw, read through zlib (which passes
 * raw files through). Every header field is checked before anything is allocated from it.
 * Covered by tests/test_data.c (good and malformed files). */
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "../core/core_impl.h"

#define IDX_UBYTE 0x08
#define IDX_MAX_BYTES (INT64_C(1) << 34) /* 16 GiB of pixels: larger is not an image set */

typedef struct {
    int ndim;
    int64_t dims[4];
    int64_t count; /* product of dims */
} idx_header;

static cn_status read_idx(cn_ctx *ctx, const char *path, int want_ndim, idx_header *h, unsigned char **data)
{
    *data = NULL;
    gzFile f = gzopen(path, "rb");
    if (!f) return cn_fail(ctx, CN_E_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "gzopen failed");
    cn_status st = CN_OK;
    unsigned char head[4 + 4 * 4];
    int got = gzread(f, head, 4);
    if (got != 4) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: %d bytes; an IDX file starts with 4 bytes of magic", path, got < 0 ? 0 : got);
        goto done;
    }
    if (head[0] != 0 || head[1] != 0 || head[2] != IDX_UBYTE || head[3] != want_ndim) {
        st = cn_fail(ctx, CN_E_FORMAT,
                     "%s: magic %02x %02x %02x %02x is not an IDX file of unsigned bytes with %d dimension%s "
                     "(expected 00 00 08 %02x)",
                     path, head[0], head[1], head[2], head[3], want_ndim, want_ndim == 1 ? "" : "s", want_ndim);
        goto done;
    }
    h->ndim = want_ndim;
    got = gzread(f, head + 4, (unsigned)(4 * want_ndim));
    if (got != 4 * want_ndim) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: truncated header (%d of %d dimension bytes)", path, got < 0 ? 0 : got,
                     4 * want_ndim);
        goto done;
    }
    h->count = 1;
    for (int i = 0; i < want_ndim; i++) {
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
    if (!(*data = cn_malloc(ctx, (size_t)h->count))) {
        st = CN_E_NOMEM;
        goto done;
    }
    int64_t have = 0;
    while (have < h->count) {
        int64_t want = h->count - have > (1 << 30) ? (1 << 30) : h->count - have;
        int n = gzread(f, *data + have, (unsigned)want);
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
    if (st) {
        cn_free(ctx, *data);
        *data = NULL;
    }
    return st;
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
    idx_header hi, hl;
    unsigned char *pix = NULL, *lab = NULL;
    cn_status st = read_idx(ctx, images_path, 3, &hi, &pix);
    if (!st) st = read_idx(ctx, labels_path, 1, &hl, &lab);
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
        for (int64_t i = 0; i < hi.count; i++) out->images[i] = (float)pix[i] / 255.0f;
        for (int64_t i = 0; i < hl.count; i++) {
            out->labels[i] = lab[i];
            if (lab[i] + 1 > out->classes) out->classes = lab[i] + 1;
        }
    }
    cn_free(ctx, pix);
    cn_free(ctx, lab);
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
