/* test_data.c — IDX loading: a good file gzipped and raw, the real Fashion-MNIST, and each
 * malformed file with its message (wrong magic, truncated header or data, a zero or huge
 * dimension, trailing bytes, image and label counts that differ, a missing file). */
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "convnet.h"

static cn_ctx *ctx;
static char dir[64];

static void setup(void)
{
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    test_tmpdir(dir, sizeof dir, "test_data");
}

static void teardown(void)
{
    test_rmtree(dir);
    cn_ctx_destroy(ctx);
}

static const char *write_file(const char *name, const unsigned char *b, size_t n, int gz)
{
    static char path[8][160];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(p, "wb");
        gzwrite(f, b, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(p, "wb");
        fwrite(b, 1, n, f);
        fclose(f);
    }
    return p;
}

/* 3 images of 2x2 and their labels */
static const unsigned char images[] = { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                        0, 255, 51, 102, 1, 2, 3, 4, 255, 255, 0, 0 };
static const unsigned char labels[] = { 0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 2 };

static void test_good_files(void)
{
    for (int gz = 0; gz < 2; gz++) {
        const char *pi = write_file(gz ? "i.gz" : "i", images, sizeof images, gz);
        const char *pl = write_file(gz ? "l.gz" : "l", labels, sizeof labels, gz);
        cn_dataset ds;
        CHECK(cn_dataset_load_idx(ctx, pi, pl, &ds) == CN_OK);
        CHECK_INT(ds.count, 3);
        CHECK_INT(ds.h, 2);
        CHECK_INT(ds.w, 2);
        CHECK_INT(ds.classes, 8);
        CHECK_NEAR(ds.images[1], 1.0, 0);
        CHECK_NEAR(ds.images[2], 0.2, 1e-7); /* 51/255 */
        CHECK_INT(ds.labels[2], 2);
        cn_dataset_free(ctx, &ds);
    }
}

static void expect_error(const unsigned char *img, size_t ni, const unsigned char *lab, size_t nl, const char *msg)
{
    const char *pi = write_file("bad-i", img, ni, 1), *pl = write_file("bad-l", lab, nl, 0);
    cn_dataset ds;
    CHECK(cn_dataset_load_idx(ctx, pi, pl, &ds) != CN_OK);
    CHECK_CONTAINS(cn_ctx_message(ctx), msg);
    CHECK(ds.images == NULL && ds.count == 0);
}

static void test_malformed(void)
{
    unsigned char b[64];
    memcpy(b, images, sizeof images);
    b[2] = 0x0d; /* float data */
    expect_error(b, sizeof images, labels, sizeof labels, "magic 00 00 0d 03 is not an IDX file of unsigned bytes");
    expect_error(images, 2, labels, sizeof labels, "2 bytes; an IDX file starts with 4 bytes of magic");
    expect_error(images, 10, labels, sizeof labels, "truncated header (6 of 12 dimension bytes)");
    expect_error(images, sizeof images - 1, labels, sizeof labels,
                 "truncated: the header promises 12 bytes of data, the file has 11");
    memcpy(b, images, sizeof images);
    b[11] = 0; /* 3 x 0 x 2 */
    expect_error(b, sizeof images, labels, sizeof labels, "dimension 2 is 0");
    memcpy(b, images, 16);
    b[4] = b[8] = b[12] = 0x7f; /* 2^31 x 2^31 x 2^31 */
    expect_error(b, 16, labels, sizeof labels, "dimensions claim more than 17179869184 bytes of data");
    memcpy(b, images, sizeof images);
    b[sizeof images] = 9;
    expect_error(b, sizeof images + 1, labels, sizeof labels, "bytes after the 12 the header promises");
    unsigned char two[] = { 0, 0, 8, 1, 0, 0, 0, 2, 1, 1 };
    expect_error(images, sizeof images, two, sizeof two, "has 3 images but");
    expect_error(images, 0, labels, sizeof labels, "0 bytes; an IDX file starts with 4 bytes of magic");
    cn_dataset ds;
    CHECK(cn_dataset_load_idx(ctx, "/nonexistent/x.gz", "/nonexistent/y.gz", &ds) == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), "/nonexistent/x.gz: cannot open");
    CHECK(cn_dataset_load_mnist(ctx, dir, 1, &ds) == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), "no train-images-idx3-ubyte[.gz] here");
}

static void test_fashion_mnist(void)
{
    /* Debian's dataset-fashion-mnist: 60,000 training and 10,000 test images of 28x28, 10 classes,
     * 6,000 of each class in training (the data set's documentation) */
    cn_dataset tr, te;
    CHECK(cn_dataset_load_mnist(ctx, "/usr/share/datasets/fashion-mnist", 1, &tr) == CN_OK);
    CHECK(cn_dataset_load_mnist(ctx, "/usr/share/datasets/fashion-mnist", 0, &te) == CN_OK);
    CHECK_INT(tr.count, 60000);
    CHECK_INT(te.count, 10000);
    CHECK_INT(tr.h * tr.w, 784);
    CHECK_INT(tr.classes, 10);
    int hist[10] = { 0 };
    for (int64_t i = 0; i < tr.count; i++) hist[tr.labels[i] % 10]++;
    for (int k = 0; k < 10; k++) CHECK_INT(hist[k], 6000);
    cn_dataset_free(ctx, &tr);
    cn_dataset_free(ctx, &te);
}

static const test_case cases[] = {
    { "setup", setup },
    { "good IDX files, gzipped and raw", test_good_files },
    { "malformed IDX files", test_malformed },
    { "Fashion-MNIST from Debian", test_fashion_mnist },
    { "teardown", teardown },
};
TEST_MAIN(cases)
