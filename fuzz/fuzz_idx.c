#define _POSIX_C_SOURCE 200809L /* mkdtemp */
/* fuzz_idx.c — libFuzzer target for the IDX loader and the MNIST-format data check: any bytes
 * must load or fail with a message, never crash, leak or allocate what the file does not hold.
 * Input: byte 0 = mode, bytes 1-2 = length L of the image file (big-endian, clamped), then L
 * bytes of image file and the rest as the label file. Mode bit 0 gzips the image file, bit 1
 * the label file (so the fuzzer reaches the header checks behind zlib too); bit 2 also runs
 * cn_data_check on a folder holding the pair as train-*, bit 3 adds a copy as t10k-*.
 * `make fuzz`-style runs: see the Makefile; tests replay tests/fuzz/idx_corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "convnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void cleanup(void)
{
    static const char *const names[] = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" };
    char p[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void put(const char *name, const uint8_t *b, size_t n, int gz)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(p, "wb1");
        if (!f) abort();
        if (n) gzwrite(f, b, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(p, "wb");
        if (!f) abort();
        if (n) fwrite(b, 1, n, f);
        fclose(f);
    }
}

static void unput(const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/cn_fuzz_idx_XXXXXX");
        if (!mkdtemp(dir)) abort();
        atexit(cleanup);
    }
    if (size < 3) return 0;
    int mode = data[0];
    size_t li = (size_t)data[1] << 8 | data[2];
    data += 3, size -= 3;
    if (li > size) li = size;
    put("train-images-idx3-ubyte", data, li, mode & 1);
    put("train-labels-idx1-ubyte", data + li, size - li, mode & 2);
    if (mode & 8) {
        put("t10k-images-idx3-ubyte", data, li, 0);
        put("t10k-labels-idx1-ubyte", data + li, size - li, 0);
    } else {
        unput("t10k-images-idx3-ubyte");
        unput("t10k-labels-idx1-ubyte");
    }

    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return 0;
    char ip[128], lp[128];
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte", dir);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte", dir);
    cn_dataset ds;
    if (cn_dataset_load_idx(ctx, ip, lp, &ds) == CN_OK) {
        /* what a loaded set promises: values in [0, 1], labels below classes */
        if (ds.count < 1 || ds.c != 1 || ds.h < 1 || ds.w < 1 || ds.classes < 1 || ds.classes > 256) abort();
        for (int64_t i = 0; i < ds.count * ds.h * ds.w; i++)
            if (!(ds.images[i] >= 0 && ds.images[i] <= 1)) abort();
        for (int64_t i = 0; i < ds.count; i++)
            if (ds.labels[i] < 0 || ds.labels[i] >= ds.classes) abort();
    } else if (!cn_ctx_message(ctx)[0] || ds.images || ds.labels || ds.count) {
        abort(); /* every failure says why, and leaves nothing behind */
    }
    cn_dataset_free(ctx, &ds);
    if (mode & 4) {
        cn_data_report r;
        if (cn_data_check(ctx, dir, 10, &r) == CN_OK) {
            int64_t sum = 0;
            for (int32_t k = 0; k < r.classes; k++) sum += r.per_class[k];
            if (!r.problems || r.classes != 10 || sum + r.bad_labels > r.files) abort();
        } else if (!cn_ctx_message(ctx)[0]) {
            abort();
        }
        cn_data_report_free(ctx, &r);
    }
    cn_ctx_destroy(ctx);
    return 0;
}
