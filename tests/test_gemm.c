/* test_gemm.c — our SGEMM (src/backend/cpu/gemm.c) against the plain triple loop in double, on
 * random shapes around the block sizes (MR 8, NR 48, KC 256, MC 512) with every kind of view
 * the convolution uses: row-major, transposed, blocked columns (sample, pixel), and output
 * columns on padded rows whose last columns are dropped. Each element
 * must be within 1e-5 of |c_ij| + sum_k |a_ik b_kj| of the reference. The AVX-512 kernel, the AVX2
 * one and the portable one are all checked, and results must be bit-identical on 1, 2 and 3
 * threads (and AVX2's with AVX-512's). */
#include <stdlib.h>

#include "../src/backend/cpu/gemm.h"
#include "harness.h"
#include "convnet.h"

static cn_rng rng;

static float uniform(void) { return (float)(2.0 * cn_rng_uniform(&rng) - 1.0); }

/* an m x n operand stored as `blocks` blocks of its columns (blk columns each, gap floats
 * apart) or, when transposed, column-major */
typedef struct { float *p; int64_t len; cn_axis row, col; } operand;

static operand make(int64_t m, int64_t n, int layout)
{
    operand o;
    if (layout == 0) { /* row-major with padding */
        int64_t ld = n + 3;
        o = (operand){ NULL, m * ld, cn_axis_ld(ld), cn_axis_unit() };
    } else if (layout == 1) { /* column-major */
        o = (operand){ NULL, n * (m + 1), cn_axis_unit(), cn_axis_ld(m + 1) };
    } else if (layout == 3) { /* C only: blocks of padded rows whose last columns are dropped */
        int64_t row = 2 + (int64_t)cn_rng_below(&rng, 20), keep = 1 + (int64_t)cn_rng_below(&rng, (uint64_t)row);
        int64_t rows = 1 + (int64_t)cn_rng_below(&rng, 4), blk = row * rows, nblk = (n + blk - 1) / blk;
        o = (operand){ NULL, nblk * m * keep * rows, cn_axis_ld(keep * rows), { 1, blk, m * keep * rows, row, keep } };
    } else { /* columns in blocks of blk, like (sample, pixel) under channels */
        int64_t blk = 1 + (int64_t)cn_rng_below(&rng, 60), nblk = (n + blk - 1) / blk;
        o = (operand){ NULL, nblk * m * blk, cn_axis_ld(blk), cn_axis_blocked(1, blk, m * blk) };
    }
    o.p = malloc((size_t)o.len * sizeof(float));
    for (int64_t i = 0; i < o.len; i++) o.p[i] = uniform();
    return o;
}

static int64_t offset(const cn_axis *ax, int64_t i)
{
    if (ax->blk == INT64_MAX) return i * ax->stride;
    int64_t r = i % ax->blk;
    if (ax->row) r = r / ax->row * ax->keep + r % ax->row;
    return (i / ax->blk) * ax->bstride + r * ax->stride;
}

static int dropped(const operand *o, int64_t j) { return o->col.row && j % o->col.blk % o->col.row >= o->col.keep; }

static double get(const operand *o, int64_t i, int64_t j) { return o->p[offset(&o->row, i) + offset(&o->col, j)]; }

static int check_one(int64_t m, int64_t n, int64_t k, int la, int lb, int lc, int acc, int bias, int relu)
{
    operand a = make(m, k, la), b = make(k, n, lb), c = make(m, n, lc);
    float *br = malloc((size_t)m * sizeof(float)), *bc = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < m; i++) br[i] = uniform();
    for (int64_t j = 0; j < n; j++) bc[j] = uniform();
    float *want = malloc((size_t)c.len * sizeof(float)), *got = malloc((size_t)c.len * sizeof(float));
    memcpy(want, c.p, (size_t)c.len * sizeof(float));
    cn_gemm_args g = { .m = m, .n = n, .k = k, .a = a.p, .a_row = a.row, .a_col = a.col, .b = b.p, .b_row = b.row,
                       .b_col = b.col, .c = want, .c_row = c.row, .c_col = c.col, .accumulate = acc,
                       .bias_row = bias & 1 ? br : NULL, .bias_col = bias & 2 ? bc : NULL, .relu = relu };
    cn_gemm_ref(&g);
    int ok = 1;
    for (int threads = 1; threads <= 3; threads++) {
        cn_set_threads(threads);
        memcpy(got, c.p, (size_t)c.len * sizeof(float));
        g.c = got;
        cn_gemm(&g);
        if (threads == 1) {
            operand out = c;
            out.p = got;
            for (int64_t i = 0; i < m && ok; i++)
                for (int64_t j = 0; j < n && ok; j++) {
                    if (dropped(&c, j)) continue;
                    operand w = c;
                    w.p = want;
                    double mag = 1e-3 + fabs(get(&w, i, j)); /* bias and C's old value round too */
                    for (int64_t q = 0; q < k; q++) mag += fabs(get(&a, i, q) * get(&b, q, j));
                    if (fabs(get(&out, i, j) - get(&w, i, j)) > 1e-5 * mag) {
                        test_fail(__FILE__, __LINE__, "m %lld n %lld k %lld layouts %d%d%d acc %d: C[%lld][%lld] %.9g, want %.9g",
                                  (long long)m, (long long)n, (long long)k, la, lb, lc, acc, (long long)i, (long long)j,
                                  get(&out, i, j), get(&w, i, j));
                        ok = 0;
                    }
                }
            memcpy(want, got, (size_t)c.len * sizeof(float)); /* from here on: the 1-thread bits */
        } else if (memcmp(got, want, (size_t)c.len * sizeof(float))) {
            test_fail(__FILE__, __LINE__, "m %lld n %lld k %lld: %d threads differ from 1", (long long)m, (long long)n,
                      (long long)k, threads);
            ok = 0;
        }
    }
    free(a.p), free(b.p), free(c.p), free(br), free(bc), free(want), free(got);
    return ok;
}

static void random_shapes(void)
{
    static const int64_t sizes[] = { 1, 2, 7, 8, 9, 15, 16, 17, 47, 48, 49, 95, 97, 130 };
    static const int64_t depths[] = { 1, 3, 9, 27, 255, 256, 257, 600 };
    int ns = (int)(sizeof sizes / sizeof *sizes);
    for (int t = 0; t < 120; t++) {
        int64_t m = sizes[cn_rng_below(&rng, (uint64_t)ns)], n = sizes[cn_rng_below(&rng, (uint64_t)ns)];
        int64_t k = depths[cn_rng_below(&rng, 8)];
        if (!check_one(m, n, k, (int)cn_rng_below(&rng, 3), (int)cn_rng_below(&rng, 3), (int)cn_rng_below(&rng, 4),
                       (int)cn_rng_below(&rng, 2), (int)cn_rng_below(&rng, 4), (int)cn_rng_below(&rng, 2)))
            return;
    }
}

/* past one MC block of rows and several KC slices, with many tiles per thread */
static void large(void)
{
    CHECK(check_one(530, 200, 700, 0, 0, 0, 0, 1, 0));
    CHECK(check_one(64, 1000, 288, 0, 0, 2, 0, 1, 1));
    CHECK(check_one(288, 500, 64, 1, 2, 0, 1, 0, 0));
    CHECK(check_one(64, 700, 300, 0, 0, 3, 0, 1, 1));
    /* all of A packed at once on one thread, the blocked order on 2 and 3: the same bits */
    CHECK(check_one(40, 300, 500, 0, 2, 3, 0, 1, 1));
    CHECK(check_one(48, 500, 400, 0, 0, 3, 1, 0, 0)); /* adding to C kept in scratch over the slices */
    /* few outputs and a long sum: k is split in fixed parts (a weight gradient) */
    CHECK(check_one(32, 9, 5000, 2, 1, 0, 1, 0, 0));
    CHECK(check_one(20, 30, 3500, 0, 0, 1, 1, 0, 0));
    CHECK(check_one(64, 300, 3500, 2, 1, 0, 1, 0, 0));
    /* ... added into padded rows whose ends are dropped: their summing skipped them (it wrote
     * past C; found by the sanitizer when the AVX2 bit test's layouts changed) */
    CHECK(check_one(20, 30, 3500, 0, 0, 3, 1, 0, 0));
}

/* A row of C does not depend on the other rows: one row alone (the few-rows path of a dense
 * layer on one image) gives the bits it gets among 9 (the blocked product) */
static void batch_invariant(void)
{
    for (int t = 0; t < 4; t++) {
        int64_t m = 9, n = 20 + 37 * t, k = 30 + 250 * t;
        float *a = malloc((size_t)(m * k) * sizeof(float)), *w = malloc((size_t)(n * k) * sizeof(float));
        float *bias = malloc((size_t)n * sizeof(float)), *all = malloc((size_t)(m * n) * sizeof(float));
        float *one = malloc((size_t)(4 * n) * sizeof(float));
        for (int64_t i = 0; i < m * k; i++) a[i] = uniform();
        for (int64_t i = 0; i < n * k; i++) w[i] = uniform();
        for (int64_t i = 0; i < n; i++) bias[i] = uniform();
        cn_gemm_args g = { .m = m, .n = n, .k = k, .a = a, .a_row = cn_axis_ld(k), .a_col = cn_axis_unit(), .b = w,
                           .b_row = cn_axis_unit(), .b_col = cn_axis_ld(k), .c = all, .c_row = cn_axis_ld(n),
                           .c_col = cn_axis_unit(), .bias_col = bias, .relu = t & 1 };
        cn_gemm(&g);
        for (int64_t rows = 1; rows <= 4; rows++) {
            g.m = rows, g.c = one;
            cn_gemm(&g);
            CHECK(memcmp(one, all, (size_t)(rows * n) * sizeof(float)) == 0);
        }
        free(a), free(w), free(bias), free(all), free(one);
    }
}

/* A column of C does not depend on the other columns: a product of at most 16 columns (a
 * convolution on 4x4 maps for one image: A's rows read in place, few_cols in gemm.c) gives the
 * bits of the same columns among 16 + 48 (the blocked product), with bias, relu and adding to
 * C, on 1, 2 and 3 threads */
static void column_invariant(void)
{
    static const int64_t shapes[][3] = { { 32, 16, 100 }, { 70, 5, 600 }, { 512, 16, 4608 }, { 33, 1, 193 }, { 40, 9, 191 } };
    int before = cn_threads();
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        int64_t m = shapes[t][0], n = shapes[t][1], k = shapes[t][2], wide = n + 48;
        float *a = malloc((size_t)(m * k) * sizeof(float)), *b = malloc((size_t)(k * wide) * sizeof(float));
        float *br = malloc((size_t)m * sizeof(float)), *bc = malloc((size_t)wide * sizeof(float));
        float *all = malloc((size_t)(m * wide) * sizeof(float)), *few = malloc((size_t)(m * n) * sizeof(float));
        for (int64_t i = 0; i < m * k; i++) a[i] = uniform();
        for (int64_t i = 0; i < k * wide; i++) b[i] = uniform();
        for (int64_t i = 0; i < m; i++) br[i] = uniform();
        for (int64_t i = 0; i < wide; i++) bc[i] = uniform();
        for (int variant = 0; variant < 3; variant++) {
            int acc = variant == 2;
            for (int64_t i = 0; i < m * wide; i++) all[i] = (float)(i % 7) - 3.0f;
            cn_gemm_args g = { .m = m, .n = wide, .k = k, .a = a, .a_row = cn_axis_ld(k), .a_col = cn_axis_unit(), .b = b,
                               .b_row = cn_axis_ld(wide), .b_col = cn_axis_unit(), .c = all, .c_row = cn_axis_ld(wide),
                               .c_col = cn_axis_unit(), .bias_row = acc ? NULL : br, .bias_col = variant == 1 ? bc : NULL,
                               .relu = variant == 1, .accumulate = acc };
            cn_gemm(&g);
            for (int threads = 1; threads <= 3; threads++) {
                cn_set_threads(threads);
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n; j++) few[i * n + j] = (float)((i * wide + j) % 7) - 3.0f;
                g.n = n, g.c = few, g.c_row = cn_axis_ld(n);
                cn_gemm(&g);
                g.n = wide, g.c = all, g.c_row = cn_axis_ld(wide);
                int same = 1;
                for (int64_t i = 0; i < m; i++) same &= memcmp(few + i * n, all + i * wide, (size_t)n * sizeof(float)) == 0;
                if (!same)
                    test_fail(__FILE__, __LINE__, "%lldx%lldx%lld (variant %d, %d threads): the columns differ from the wide product's",
                              (long long)m, (long long)n, (long long)k, variant, threads);
            }
            cn_set_threads(before);
        }
        free(a), free(b), free(br), free(bc), free(all), free(few);
    }
}

static void generic_kernel(void)
{
    cn_gemm_force_generic(1);
    CHECK_STR(cn_gemm_kernel_name(), "generic");
    random_shapes();
    CHECK(check_one(100, 100, 300, 2, 1, 2, 1, 0, 1));
    cn_gemm_force_generic(0);
}

/* The AVX2 micro-kernel (a CPU without AVX-512), forced where the CPU has AVX-512 too: against
 * the reference as the others, and, where the CPU can run both, with the AVX-512 path's bits:
 * each element the same chain of FMAs and the same additions, whichever path of cn_gemm the
 * shape takes (a few rows, a few columns, k split, all of A packed, C in scratch, the blocked
 * order) */
static void avx2_kernel(void)
{
    cn_gemm_force_avx2(1);
    if (!cn_gemm_avx2()) {
        printf("skipped: the CPU has no AVX2 and FMA\n");
        cn_gemm_force_avx2(0);
        return;
    }
    CHECK_STR(cn_gemm_kernel_name(), "avx2");
    random_shapes();
    large();
    batch_invariant();
    column_invariant();
    cn_gemm_force_avx2(0);
    if (!cn_gemm_avx512()) {
        printf("skipped: AVX2's bits against AVX-512's (the CPU has no AVX-512)\n");
        return;
    }
    /* the few-rows product's blocks two at a time: 2 x 27 ends in a second block cut short (16 +
     * 11 columns with AVX-512, 8 + 8 and 8 + 3 with AVX2) */
    static const int64_t shapes[][3] = { { 1, 100, 300 },  { 4, 64, 600 },    { 3, 5, 17 },      { 64, 16, 576 },
                                         { 40, 9, 191 },  { 2, 27, 700 },    { 32, 9, 5000 },   { 64, 300, 3500 },
                                         { 40, 300, 500 }, { 48, 500, 400 }, { 530, 200, 700 }, { 17, 49, 257 },
                                         { 8, 48, 192 } };
    const int ns = (int)(sizeof shapes / sizeof shapes[0]);
    int before = cn_threads();
    /* each shape with B row-major, column-major (k contiguous: a few rows read it in place) and in
     * blocks, added to C or not, with a column bias or not; A and C as the few-rows and
     * few-columns paths take them for the first six shapes, any views for the others */
    for (int t = 0; t < 12 * ns; t++) {
        const int64_t *sh = shapes[t % ns];
        int64_t m = sh[0], n = sh[1], k = sh[2];
        int v = t / ns, lb = v % 3, acc = v / 3 % 2;
        int la = t % ns < 6 ? 0 : (int)cn_rng_below(&rng, 3), lc = t % ns < 6 ? 0 : (int)cn_rng_below(&rng, 4);
        operand a = make(m, k, la), b = make(k, n, lb), c = make(m, n, lc);
        float *br = malloc((size_t)m * sizeof(float)), *bc = malloc((size_t)n * sizeof(float));
        float *wide = malloc((size_t)c.len * sizeof(float));
        for (int64_t i = 0; i < m; i++) br[i] = uniform();
        for (int64_t j = 0; j < n; j++) bc[j] = uniform();
        memcpy(wide, c.p, (size_t)c.len * sizeof(float));
        cn_gemm_args g = { .m = m, .n = n, .k = k, .a = a.p, .a_row = a.row, .a_col = a.col, .b = b.p, .b_row = b.row,
                           .b_col = b.col, .c = wide, .c_row = c.row, .c_col = c.col, .accumulate = acc,
                           .bias_row = acc ? NULL : br, .bias_col = v >= 6 ? bc : NULL, .relu = t % 5 == 0 };
        cn_set_threads(1 + t % 2);
        cn_gemm(&g);
        cn_gemm_force_avx2(1);
        g.c = c.p;
        cn_gemm(&g);
        cn_gemm_force_avx2(0);
        if (memcmp(c.p, wide, (size_t)c.len * sizeof(float)))
            test_fail(__FILE__, __LINE__, "%lldx%lldx%lld (layouts %d%d%d, acc %d): AVX2's bits differ from AVX-512's",
                      (long long)m, (long long)n, (long long)k, la, lb, lc, acc);
        free(a.p), free(b.p), free(c.p), free(br), free(bc), free(wide);
    }
    cn_set_threads(before);
}

static void empty_depth(void)
{
    /* k = 0: C = bias, or C unchanged when accumulating */
    float c[6] = { 1, 2, 3, 4, 5, 6 }, br[2] = { 10, 20 }, bc[3] = { 1, 2, 3 };
    cn_gemm_args g = { .m = 2, .n = 3, .k = 0, .a_row = cn_axis_ld(0), .a_col = cn_axis_unit(), .b_row = cn_axis_ld(3),
                       .b_col = cn_axis_unit(), .c = c, .c_row = cn_axis_ld(3), .c_col = cn_axis_unit(), .accumulate = 1 };
    cn_gemm(&g);
    CHECK(c[0] == 1 && c[5] == 6);
    g.accumulate = 0, g.bias_row = br, g.bias_col = bc;
    cn_gemm(&g);
    CHECK(c[0] == 11 && c[2] == 13 && c[3] == 21 && c[5] == 23);
}

static void setup_rng(void) { cn_rng_seed(&rng, 2026); }

static const test_case cases[] = {
    { "seed", setup_rng },
    { "random shapes and views, threads bit-identical", random_shapes },
    { "large: several row blocks and k slices", large },
    { "a row alone gives the bits it gets among others", batch_invariant },
    { "up to 16 columns (A read in place) give the bits they get among others", column_invariant },
    { "portable kernel", generic_kernel },
    { "AVX2 kernel, with AVX-512's bits", avx2_kernel },
    { "k = 0", empty_depth },
};

TEST_MAIN(cases)
