/* test_batch.c — shuffling, data set statistics and batches: a shuffle is a permutation, set by
 * the seed and uniform; statistics of a hand-made set; cn_make_batch's normalisation, and its
 * crops and flips against an independent pad -> crop -> flip -> normalise written out here,
 * replayed from the same seed. */
#include <stdlib.h>

#include "harness.h"
#include "convnet.h"

static void test_shuffle(void)
{
    int64_t a[100], b[100], c[100];
    cn_rng r;
    cn_rng_seed(&r, 1);
    cn_shuffle(&r, a, 100);
    int seen[100] = { 0 };
    for (int i = 0; i < 100; i++) {
        CHECK(a[i] >= 0 && a[i] < 100);
        if (a[i] >= 0 && a[i] < 100) seen[a[i]]++;
    }
    for (int i = 0; i < 100; i++) CHECK_INT(seen[i], 1);
    cn_rng_seed(&r, 1);
    cn_shuffle(&r, b, 100);
    CHECK(memcmp(a, b, sizeof a) == 0);
    cn_rng_seed(&r, 2);
    cn_shuffle(&r, c, 100);
    CHECK(memcmp(a, c, sizeof a) != 0);
    int moved = 0;
    for (int i = 0; i < 100; i++) moved += a[i] != i;
    CHECK(moved > 50);
    cn_shuffle(&r, a, 0); /* nothing to do */
    cn_shuffle(&r, a, 1);
    CHECK_INT(a[0], 0);

    /* uniform: each of the 6 orders of 3 items about 1/6 of 60,000 shuffles (sd ~ 91) */
    int count[6] = { 0 };
    cn_rng_seed(&r, 42);
    for (int t = 0; t < 60000; t++) {
        int64_t p[3];
        cn_shuffle(&r, p, 3);
        count[p[0] * 2 + (p[1] > p[2])]++;
    }
    for (int k = 0; k < 6; k++) CHECK(abs(count[k] - 10000) < 500);
}

/* 2 images of 2 channels of 1x2 */
static float images[8] = { 0.0f, 0.5f, 0.1f, 0.1f, /* image 0: channel 0, channel 1 */
                           1.0f, 0.5f, 0.1f, 0.1f };
static int32_t labels[2] = { 4, 7 };

static void test_stats(void)
{
    cn_dataset ds = { .count = 2, .c = 2, .h = 1, .w = 2, .images = images, .labels = labels, .classes = 8 };
    float mean[2], std[2];
    cn_dataset_stats(&ds, mean, std);
    /* channel 0: {0, .5, 1, .5}: mean .5, variance (.25 + 0 + .25 + 0) / 4 = .125 */
    CHECK_NEAR(mean[0], 0.5, 1e-7);
    CHECK_NEAR(std[0], 0.35355339, 1e-7);
    /* channel 1: constant .1: std 0, left unscaled (1), as a checkpoint's norm_std must be >= 1e-6 */
    CHECK_NEAR(mean[1], 0.1, 1e-7);
    CHECK(std[1] == 1.0f);
    /* the same from parts (the images decoded on demand): one part of each image */
    double parts[2 * 12];
    cn_ctx *ctx;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    for (int k = 0; k < 2; k++) CHECK(cn_dataset_stats_part(ctx, &ds, k, 1, parts + 12 * k) == CN_OK);
    cn_ctx_destroy(ctx);
    float m2[2], s2[2];
    cn_dataset_stats_merge(parts, 2, 2, m2, s2);
    CHECK_NEAR(s2[0], 0.35355339, 1e-7);
    CHECK(s2[1] == 1.0f);

    /* the population std of 0..9 is sqrt(8.25) */
    float ramp[10];
    for (int i = 0; i < 10; i++) ramp[i] = (float)i;
    cn_dataset r = { .count = 10, .c = 1, .h = 1, .w = 1, .images = ramp };
    cn_dataset_stats(&r, mean, std);
    CHECK_NEAR(mean[0], 4.5, 1e-7);
    CHECK_NEAR(std[0], 2.8722813, 1e-7);
}

static void test_normalise(void)
{
    cn_dataset ds = { .count = 2, .c = 2, .h = 1, .w = 2, .images = images, .labels = labels, .classes = 8 };
    const float mean[2] = { 0.5f, 0.1f }, std[2] = { 0.25f, 0.0f };
    const int64_t idx[3] = { 1, 0, 1 };
    float x[3 * 4];
    int32_t lab[3];
    cn_make_batch(&ds, idx, 3, mean, std, 0, 0, NULL, x, lab); /* no draws: rng not needed */
    /* (v - mean) / std; the constant channel (std 0) is divided by 1 */
    const float want[12] = { 2.0f, 0.0f, 0.0f, 0.0f, -2.0f, 0.0f, 0.0f, 0.0f, 2.0f, 0.0f, 0.0f, 0.0f };
    for (int i = 0; i < 12; i++) CHECK_NEAR(x[i], want[i], 1e-7);
    CHECK_INT(lab[0], 7);
    CHECK_INT(lab[1], 4);
    CHECK_INT(lab[2], 7);
    /* labels may be NULL */
    cn_make_batch(&ds, idx, 1, mean, std, 0, 0, NULL, x, NULL);
    CHECK_NEAR(x[0], 2.0, 1e-7);
}

/* A 2-channel 3x4 image with distinct values, and the reference: pad with raw zeros, crop at
 * (dy, dx) of the padded image, mirror, normalise. */
#define C 2
#define H 3
#define W 4
static float img[3][C * H * W];

static void reference(const float *src, int64_t pad, int64_t dy, int64_t dx, int mirror, const float *mean,
                      const float *std, float *out)
{
    enum { PH = H + 2 * 3, PW = W + 2 * 3 }; /* room for pad <= 3 */
    for (int c = 0; c < C; c++) {
        float padded[PH][PW] = { { 0 } };
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) padded[y + pad][x + pad] = src[(c * H + y) * W + x];
        float crop[H][W];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) crop[y][x] = padded[y + dy][x + dx];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float v = mirror ? crop[y][W - 1 - x] : crop[y][x];
                out[(c * H + y) * W + x] = (v - mean[c]) / std[c];
            }
    }
}

static void test_augment(void)
{
    for (int n = 0; n < 3; n++)
        for (int i = 0; i < C * H * W; i++) img[n][i] = (float)(n * 100 + i + 1) / 255.0f;
    int32_t lab[3] = { 0, 1, 2 };
    cn_dataset ds = { .count = 3, .c = C, .h = H, .w = W, .images = &img[0][0], .labels = lab, .classes = 3 };
    const float mean[C] = { 0.3f, 0.6f }, std[C] = { 0.2f, 0.5f };
    enum { N = 40 };
    int64_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = (i * 7) % 3;
    static float x[N * C * H * W], x2[N * C * H * W], want[C * H * W];
    int32_t y[N];

    for (int pad = 0; pad <= 2; pad++) {
        for (int flip = 0; flip <= 1; flip++) {
            cn_rng r;
            cn_rng_seed(&r, 1234);
            cn_make_batch(&ds, idx, N, mean, std, pad, flip, &r, x, y);
            /* replay the draws: per sample, crop row, crop column (pad > 0), then flip */
            cn_rng q;
            cn_rng_seed(&q, 1234);
            int flips = 0, offsets = 0;
            for (int i = 0; i < N; i++) {
                int64_t dy = pad, dx = pad;
                if (pad) {
                    dy = (int64_t)cn_rng_below(&q, (uint64_t)(2 * pad + 1));
                    dx = (int64_t)cn_rng_below(&q, (uint64_t)(2 * pad + 1));
                }
                int m = flip ? (int)cn_rng_below(&q, 2) : 0;
                flips += m, offsets += dy != pad || dx != pad;
                reference(img[idx[i]], pad, dy, dx, m, mean, std, want);
                for (int k = 0; k < C * H * W; k++) CHECK_NEAR(x[i * C * H * W + k], want[k], 1e-6);
                CHECK_INT(y[i], idx[i]);
            }
            /* the generator is where the batch left it: nothing drawn that was not asked for */
            CHECK(cn_rng_next(&q) == cn_rng_next(&r));
            if (flip) CHECK(flips > 5 && flips < N - 5);
            if (pad) CHECK(offsets > 5);
            /* the same seed gives the same batch; another seed another one */
            cn_rng_seed(&r, 1234);
            cn_make_batch(&ds, idx, N, mean, std, pad, flip, &r, x2, y);
            CHECK(memcmp(x, x2, sizeof x) == 0);
            cn_rng_seed(&r, 99);
            cn_make_batch(&ds, idx, N, mean, std, pad, flip, &r, x2, y);
            CHECK((memcmp(x, x2, sizeof x) != 0) == (pad || flip));
        }
    }

    /* a flipped sample is the mirror of the normalised image, row by row */
    cn_rng r;
    cn_rng_seed(&r, 5);
    cn_make_batch(&ds, idx, N, mean, std, 0, 1, &r, x, y);
    int mirrored = 0, plain = 0;
    for (int i = 0; i < N; i++) {
        const float *s = img[idx[i]], *o = x + i * C * H * W;
        int is_mirror = 1, is_plain = 1;
        for (int c = 0; c < C; c++)
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < W; xx++) {
                    float v = o[(c * H + yy) * W + xx];
                    float p = (s[(c * H + yy) * W + xx] - mean[c]) / std[c];
                    float m = (s[(c * H + yy) * W + (W - 1 - xx)] - mean[c]) / std[c];
                    is_mirror &= v == m, is_plain &= v == p;
                }
        CHECK(is_mirror != is_plain);
        mirrored += is_mirror, plain += is_plain;
    }
    CHECK(mirrored > 0 && plain > 0);

    /* padded pixels are raw zeros normalised: a crop at (0, 0) with pad 2 starts with 2 rows
     * of -mean/std */
    int found = 0;
    for (uint64_t seed = 0; seed < 1000 && !found; seed++) {
        cn_rng_seed(&r, seed);
        cn_rng q = r;
        if (cn_rng_below(&q, 5) != 0 || cn_rng_below(&q, 5) != 0) continue;
        found = 1;
        cn_make_batch(&ds, idx, 1, mean, std, 2, 0, &r, x, y);
        for (int c = 0; c < C; c++) {
            CHECK_NEAR(x[(c * H + 0) * W + 0], -mean[c] / std[c], 1e-6);
            CHECK_NEAR(x[(c * H + 1) * W + 3], -mean[c] / std[c], 1e-6);
            CHECK_NEAR(x[(c * H + 2) * W + 1], -mean[c] / std[c], 1e-6);
            CHECK_NEAR(x[(c * H + 2) * W + 2], (img[0][c * H * W] - mean[c]) / std[c], 1e-6);
        }
    }
    CHECK(found);
}

/* an IDX data set kept as bytes (cn_dataset_open_mnist's form) gives the batches of the floats,
 * bit for bit, any rows of them; its statistics by blocks those of the whole within 1e-6 */
static void test_bytes_and_rows(void)
{
    enum { N = 37, HW = 5 * 4 };
    static unsigned char px[N * HW];
    static float fl[N * HW];
    int32_t lab[N];
    for (int i = 0; i < N * HW; i++) px[i] = (unsigned char)((i * 37 + 11) % 256), fl[i] = (float)px[i] / 255.0f;
    for (int i = 0; i < N; i++) lab[i] = i % 3;
    cn_dataset eager = { .count = N, .c = 1, .h = 5, .w = 4, .images = fl, .labels = lab, .classes = 3 };
    cn_dataset bytes = eager;
    bytes.images = NULL, bytes.pixels = px;
    cn_ctx *ctx;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    int64_t idx[9];
    for (int i = 0; i < 9; i++) idx[i] = (i * 11) % N;
    float mean[1] = { 0.4f }, std[1] = { 0.3f }, all[9 * HW], part[4 * HW];
    int32_t la[9], lp[4];
    cn_rng r1, r2;
    cn_rng_seed(&r1, 5), cn_rng_seed(&r2, 5);
    cn_make_batch(&eager, idx, 9, mean, std, 1, 1, &r1, all, la);
    CHECK(cn_make_batch_rows(ctx, &bytes, idx, 9, 3, 7, mean, std, 1, 1, &r2, part, lp) == CN_OK);
    CHECK(memcmp(all + 3 * HW, part, sizeof part) == 0);
    CHECK(memcmp(la + 3, lp, sizeof lp) == 0);
    CHECK(cn_rng_next(&r1) == cn_rng_next(&r2)); /* the draws of all 9 rows */
    float m1[1], s1[1], m2[1], s2[1];
    double parts[3 * 12];
    cn_dataset_stats(&eager, m1, s1);
    for (int k = 0; k < 3; k++) /* blocks of 16, 16 and 5 images */
        CHECK(cn_dataset_stats_part(ctx, &bytes, 16 * k, k < 2 ? 16 : 5, parts + 12 * k) == CN_OK);
    cn_dataset_stats_merge(parts, 3, 1, m2, s2);
    CHECK_NEAR(m2[0], m1[0], 1e-6);
    CHECK_NEAR(s2[0], s1[0], 1e-6);
    cn_ctx_destroy(ctx);
}

static const test_case cases[] = {
    { "IDX bytes and rows of a batch: the bits of the floats", test_bytes_and_rows },
    { "shuffle is a uniform permutation set by the seed", test_shuffle },
    { "per-channel mean and population std", test_stats },
    { "normalisation without augmentation", test_normalise },
    { "crops and flips replay from the seed", test_augment },
};
TEST_MAIN(cases)
