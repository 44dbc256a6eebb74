/* test_data.c — IDX loading: a good file gzipped and raw, the real Fashion-MNIST, and each
 * malformed file with its message (wrong magic, truncated header or data, a zero or huge
 * dimension, trailing bytes, image and label counts that differ, a missing file); hostile gzip
 * files (bombs, junk after the gzip data, cut or corrupt streams) refused with their message and
 * at a cost counted by a peak-counting allocator; multi-member gzip read; a malloc-failure sweep. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "fail_alloc.h"
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
    expect_error(b, 16, labels, sizeof labels, "dimensions claim more than 2147483648 bytes of data");
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

/* ---- hostile gzip files ------------------------------------------------------------------------ */

/* An allocator that counts the bytes in use and their peak (idx.c allocates its buffer and
 * zlib's state through the context), each block headed by its size. */
typedef struct {
    size_t live, peak;
} peak_alloc;

static void *pa_malloc(void *user, size_t n)
{
    peak_alloc *a = user;
    size_t *p = malloc(n + 16);
    if (!p) return NULL;
    *p = n, a->live += n;
    if (a->live > a->peak) a->peak = a->live;
    return (char *)p + 16;
}

static void *pa_realloc(void *user, void *ptr, size_t n)
{
    peak_alloc *a = user;
    if (!ptr) return pa_malloc(user, n);
    size_t *p = (size_t *)((char *)ptr - 16), old = *p;
    a->live -= old;
    if (a->live + old + n > a->peak) a->peak = a->live + old + n; /* both blocks, while copying */
    p = realloc(p, n + 16);
    if (!p) {
        a->live += old;
        return NULL;
    }
    *p = n, a->live += n;
    return (char *)p + 16;
}

static void pa_free(void *user, void *ptr)
{
    peak_alloc *a = user;
    if (!ptr) return;
    size_t *p = (size_t *)((char *)ptr - 16);
    a->live -= *p;
    free(p);
}

/* A gzip member of head followed by `zeros` zero bytes then `random` pseudo-random ones,
 * appended to path (so that members can follow one another); its size. */
static long gzip_member(const char *path, const unsigned char *head, size_t nh, long zeros, long random)
{
    FILE *f = fopen(path, "ab");
    CHECK(f != NULL);
    if (!f) return 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    CHECK(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    static unsigned char in[1 << 16], out[1 << 16];
    long written = 0, left = zeros + random;
    uint32_t x = 12345;
    z.next_in = (unsigned char *)head, z.avail_in = (uInt)nh;
    for (int flush = Z_NO_FLUSH; flush != Z_FINISH;) {
        if (z.avail_in == 0) {
            long k = left < (long)sizeof in ? left : (long)sizeof in;
            for (long i = 0; i < k; i++) {
                long at = zeros + random - left + i; /* position among the zeros, then the random bytes */
                x = x * 1664525u + 1013904223u;
                in[i] = at < zeros ? 0 : (unsigned char)(x >> 24);
            }
            left -= k;
            z.next_in = in, z.avail_in = (uInt)k;
            if (left == 0) flush = Z_FINISH;
        }
        int r;
        do {
            z.next_out = out, z.avail_out = sizeof out;
            r = deflate(&z, flush);
            size_t n = sizeof out - z.avail_out;
            CHECK(fwrite(out, 1, n, f) == n);
            written += (long)n;
        } while (z.avail_out == 0 || (flush == Z_FINISH && r != Z_STREAM_END));
    }
    deflateEnd(&z);
    fclose(f);
    return written;
}

static long size_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Loads images_path (with the good label file) on a counting context: its status, message (in
 * msg), peak bytes allocated and seconds. */
static cn_status load_counted(const char *images_path, char *msg, size_t cap, size_t *peak, double *seconds)
{
    peak_alloc pa = { 0, 0 };
    cn_allocator alloc = { pa_malloc, pa_realloc, pa_free, &pa };
    cn_ctx *c = NULL;
    CHECK(cn_ctx_create(&alloc, &c) == CN_OK);
    pa.peak = pa.live; /* the context itself is not the file's cost */
    const char *pl = write_file("good-l", labels, sizeof labels, 0);
    cn_dataset ds;
    double t0 = now();
    cn_status st = cn_dataset_load_idx(c, images_path, pl, &ds);
    *seconds = now() - t0;
    *peak = pa.peak;
    snprintf(msg, cap, "%s", cn_ctx_message(c));
    cn_dataset_free(c, &ds);
    cn_ctx_destroy(c);
    CHECK_INT(pa.live, 0);
    return st;
}

/* The IDX header of n images of h x w */
static void idx3_header(unsigned char b[16], uint32_t n, uint32_t h, uint32_t w)
{
    const uint32_t v[4] = { 0x00000803u, n, h, w };
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++) b[4 * i + k] = (unsigned char)(v[i] >> (24 - 8 * k));
}

/* Each file refused with its message ("PATH: want", and tail when not NULL), at a cost far
 * below its claim: at most `most` bytes allocated, in under a second. */
static void expect_refused(const char *path, const char *want, const char *tail, size_t most)
{
    char msg[1024];
    size_t peak;
    double seconds;
    CHECK_INT(load_counted(path, msg, sizeof msg, &peak, &seconds), CN_E_FORMAT);
    char full[1024];
    snprintf(full, sizeof full, "%s: %s", path, want);
    CHECK_CONTAINS(msg, full);
    if (tail) CHECK_CONTAINS(msg, tail);
    if (peak > most) test_fail(__FILE__, __LINE__, "%s: %zu bytes allocated at the peak, over %zu", path, peak, most);
    if (seconds > 1.0) test_fail(__FILE__, __LINE__, "%s: %.2f s", path, seconds);
}

static void test_hostile_gzip(void)
{
    unsigned char head[16];
    char want[256];
    const size_t small = 256 << 10; /* zlib's inflate state (7 KB) and window (32 KB), the reader's 32 KB buffer */

    /* the attacker's bomb: 10^7 images of 28x28 (7.84 GB) claimed, 32 MB of zeros in a 32 KB
     * gzip behind it; refused by the header alone (the old loader read all 32 MB, then failed) */
    const char *bomb = test_path(dir, "bomb.gz");
    idx3_header(head, 10000000, 28, 28);
    gzip_member(bomb, head, sizeof head, 32L << 20, 0);
    expect_refused(bomb, "dimensions claim more than 2147483648 bytes of data", NULL, small);

    /* 60,000 images of 28x28 (47,040,000 bytes) claimed by a 50-byte gzip file: deflate gives at
     * most 1032 bytes a byte, so it cannot hold them; refused before the data buffer exists */
    const char *claim = test_path(dir, "claim.gz");
    idx3_header(head, 60000, 28, 28);
    long n = gzip_member(claim, head, sizeof head, 1000, 0);
    snprintf(want, sizeof want, "the header promises 47040000 bytes of data; %ld bytes of gzip hold at most %ld", n,
             n * 1032 - 16);
    expect_refused(claim, want, NULL, small);

    /* an honest header (1000 images of 32x32: 1,024,000 bytes) before 32 MB of zeros: stops one
     * byte past the promise, having held the promised megabyte only */
    const char *more = test_path(dir, "more.gz");
    idx3_header(head, 1000, 32, 32);
    gzip_member(more, head, sizeof head, 32L << 20, 0);
    expect_refused(more, "bytes after the 1024000 the header promises", NULL, 1024000 + small);

    /* a stream shorter than its header: 102,400 random bytes of the 1,024,000 promised (the
     * buffer starts at the promise, up to 1 MiB, and grows only as data arrives) */
    const char *shorter = test_path(dir, "short.gz");
    gzip_member(shorter, head, sizeof head, 0, 102400);
    expect_refused(shorter, "truncated: the header promises 1024000 bytes of data, the file has 102400", NULL,
                   1024000 + small);
    /* the same gzip file cut 1000 bytes before its end (its CRC and length included) */
    n = size_of(shorter);
    FILE *f = fopen(shorter, "rb");
    unsigned char *buf = malloc((size_t)n);
    CHECK(f && buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
    if (f) fclose(f);
    const char *cut = write_file("cut.gz", buf, (size_t)n - 1000, 0);
    expect_refused(cut, "truncated: the header promises 1024000 bytes of data, the file has ",
                   " before its gzip data is cut short", 1024000 + small);
    /* its CRC-32 (the 8 bytes before the end: CRC, then length) with one bit flipped: found
     * wrong once read, with the 4 bytes of length still to come */
    buf[n - 8] ^= 0x01;
    const char *crc = write_file("crc.gz", buf, (size_t)n, 0);
    snprintf(want, sizeof want, "corrupt gzip data: incorrect data check (at byte %ld of the file)", n - 4);
    expect_refused(crc, want, NULL, 1024000 + small);
    free(buf);

    /* junk after the gzip data: text, zeros (as some tools pad), a lone 1f (half a gzip magic) */
    const char *junk_tail[3] = { "junk", "\0\0\0\0\0\0\0\0", "\x1f" };
    const size_t junk_len[3] = { 4, 8, 1 };
    for (int i = 0; i < 3; i++) {
        const char *junk = test_path(dir, "junk.gz");
        unlink(junk);
        long member = gzip_member(junk, images, sizeof images, 0, 0);
        f = fopen(junk, "ab");
        CHECK(f && fwrite(junk_tail[i], 1, junk_len[i], f) == junk_len[i]);
        if (f) fclose(f);
        snprintf(want, sizeof want, "junk after the end of the gzip data (at byte %ld of the file)", member);
        expect_refused(junk, want, NULL, small);
    }
}

/* More gzip members are one stream (as gunzip reads them): the good file split in two members,
 * and followed by an empty one (bgzip ends its files so); loaded as the one-member file is. */
static void test_gzip_members(void)
{
    const char *two = test_path(dir, "two.gz");
    unlink(two);
    gzip_member(two, images, 10, 0, 0);
    gzip_member(two, images + 10, sizeof images - 10, 0, 0);
    gzip_member(two, images, 0, 0, 0);
    const char *pl = write_file("l", labels, sizeof labels, 0);
    cn_dataset ds;
    if (cn_dataset_load_idx(ctx, two, pl, &ds) != CN_OK) {
        test_fail(__FILE__, __LINE__, "%s", cn_ctx_message(ctx));
        return;
    }
    CHECK_INT(ds.count, 3);
    for (int i = 0; i < 12; i++) CHECK_NEAR(ds.images[i], images[16 + i] / 255.0, 1e-7);
    cn_dataset_free(ctx, &ds);
}

/* Loading a gzipped pair with allocation N failing, N = 0, 1, ... (zlib's allocations go through
 * the context too): CN_E_NOMEM with a message and nothing left, or the set as without a failure. */
static void test_gzip_malloc_sweep(void)
{
    const char *pi = write_file("sweep-i.gz", images, sizeof images, 1);
    const char *pl = write_file("sweep-l.gz", labels, sizeof labels, 1);
    fa_sweep s;
    for (fa_sweep_start(&s); fa_sweep_next(&s, 1000);) {
        cn_dataset ds;
        cn_status st = cn_dataset_load_idx(s.ctx, pi, pl, &ds);
        int injected = fa_sweep_injected(&s);
        if (st) {
            CHECK(injected);
            CHECK_INT(st, CN_E_NOMEM);
            CHECK(strlen(cn_ctx_message(s.ctx)) > 0);
            CHECK(ds.images == NULL && ds.count == 0);
        } else {
            CHECK_INT(ds.count, 3);
            CHECK_INT(ds.labels[2], 2);
        }
        cn_dataset_free(s.ctx, &ds);
        fa_sweep_end(&s);
        CHECK_INT(s.fa.live, 0);
        CHECK_INT(s.fa.bad_free, 0);
    }
    CHECK(s.done);
    CHECK(s.n > 4); /* the reader's buffer and zlib's state and window, for each file */
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
    { "hostile gzip files refused, cheaply", test_hostile_gzip },
    { "multi-member gzip", test_gzip_members },
    { "malloc-failure sweep of a gzipped pair", test_gzip_malloc_sweep },
    { "Fashion-MNIST from Debian", test_fashion_mnist },
    { "teardown", teardown },
};
TEST_MAIN(cases)
