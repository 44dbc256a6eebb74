/* test_core.c — the context, checked arithmetic, the RNG stream (against tests/gen_rng_ref.py,
 * an independent Python implementation of splitmix64 + xoshiro256**), suggestions. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/core_impl.h"
#include "harness.h"

static void test_rng_stream(void)
{
    /* /usr/bin/python3 tests/gen_rng_ref.py */
    static const uint64_t want0[] = { 0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL, 0x1a5f849d4933e6e0ULL,
                                      0x6aa594f1262d2d2cULL };
    static const uint64_t want42[] = { 0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL, 0xae17533239e499a1ULL,
                                       0xecb8ad4703b360a1ULL };
    cn_rng r;
    cn_rng_seed(&r, 0);
    for (int i = 0; i < 4; i++) CHECK(cn_rng_next(&r) == want0[i]);
    cn_rng_seed(&r, 42);
    for (int i = 0; i < 4; i++) CHECK(cn_rng_next(&r) == want42[i]);
}

static void test_rng_distributions(void)
{
    cn_rng r;
    cn_rng_seed(&r, 7);
    enum { N = 200000 };
    double sum = 0, sq = 0;
    int counts[10] = { 0 };
    for (int i = 0; i < N; i++) {
        double u = cn_rng_uniform(&r);
        CHECK(u >= 0.0 && u < 1.0);
        uint64_t b = cn_rng_below(&r, 10);
        CHECK(b < 10);
        counts[b < 10 ? b : 0]++;
        double z = cn_rng_normal(&r);
        sum += z;
        sq += z * z;
    }
    /* mean 0 and variance 1 within 5 standard errors (sd of the mean 1/sqrt(N) = 0.0022) */
    CHECK_NEAR(sum / N, 0.0, 0.012);
    CHECK_NEAR(sq / N, 1.0, 0.02);
    for (int k = 0; k < 10; k++) CHECK(abs(counts[k] - N / 10) < 700); /* sd 134 */
    /* same seed, same stream */
    cn_rng a, b;
    cn_rng_seed(&a, 123456789);
    cn_rng_seed(&b, 123456789);
    for (int i = 0; i < 1000; i++) CHECK(cn_rng_normal(&a) == cn_rng_normal(&b));
}

static void test_checked_arithmetic(void)
{
    int64_t r;
    CHECK(cn_mul_ok(INT64_C(3037000499), INT64_C(3037000499), &r));
    CHECK(!cn_mul_ok(INT64_C(3037000500), INT64_C(3037000500), &r));
    CHECK(cn_add_ok(INT64_MAX - 1, 1, &r) && r == INT64_MAX);
    CHECK(!cn_add_ok(INT64_MAX, 1, &r));
}

static void test_context_messages(void)
{
    cn_ctx *ctx;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    CHECK_STR(cn_ctx_message(ctx), "");
    CHECK(cn_fail_at(ctx, CN_E_SHAPE, "m.cnn", 4, 6, "conv: kernel %dx%d", 7, 7) == CN_E_SHAPE);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:4:6: conv: kernel 7x7");
    CHECK(cn_ctx_status(ctx) == CN_E_SHAPE);
    cn_ctx_clear(ctx);
    CHECK_STR(cn_ctx_message(ctx), "");
    cn_ctx_destroy(ctx);
    cn_ctx_destroy(NULL);
    cn_net_destroy(NULL);
    CHECK_STR(cn_status_name(CN_E_PARSE), "parse");
}

/* slabs: zeroed every time (a block freed dirty and taken again too); from the C library's
 * allocator on 2 MiB boundaries (huge pages), from the caller's through the caller's */
static size_t counted_bytes;
static void *counting_malloc(void *user, size_t size) { (void)user, counted_bytes += size; return malloc(size); }
static void *counting_realloc(void *user, void *ptr, size_t size) { (void)user; return realloc(ptr, size); }
static void counting_free(void *user, void *ptr) { (void)user, free(ptr); }

static void test_slabs(void)
{
    cn_ctx *ctx;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    size_t n = (5u << 20) + 3;
    for (int round = 0; round < 2; round++) {
        unsigned char *p = cn_calloc_slab(ctx, n);
        CHECK(p && (uintptr_t)p % (2u << 20) == 0);
        if (!p) break;
        size_t nonzero = 0;
        for (size_t i = 0; i < n; i++) nonzero += p[i] != 0;
        CHECK(nonzero == 0);
        memset(p, 0xff, n);
        cn_free(ctx, p);
    }
    unsigned char *small = cn_calloc_slab(ctx, 100);
    CHECK(small && small[0] == 0 && small[99] == 0);
    cn_free(ctx, small);
    cn_ctx_destroy(ctx);
    cn_allocator mine = { counting_malloc, counting_realloc, counting_free, NULL };
    CHECK(cn_ctx_create(&mine, &ctx) == CN_OK);
    counted_bytes = 0;
    unsigned char *p = cn_calloc_slab(ctx, n);
    CHECK(p && counted_bytes == n && p[0] == 0 && p[n - 1] == 0);
    cn_free(ctx, p);
    cn_ctx_destroy(ctx);
}

static void test_suggestions(void)
{
    static const char *const ops[] = { "conv", "maxpool", "avgpool", "relu", "dense", "dropout" };
    CHECK_INT(cn_edit_distance("strid", "stride"), 1);
    CHECK_INT(cn_edit_distance("rleu", "relu"), 1); /* a transposition */
    CHECK_STR(cn_suggest("conv2d", ops, 6), "conv");
    CHECK_STR(cn_suggest("maxpooling", ops, 6), "maxpool");
    CHECK_STR(cn_suggest("denes", ops, 6), "dense");
    CHECK(cn_suggest("lstm", ops, 6) == NULL);
}

static void test_counts(void)
{
    char buf[32];
    cn_strbuf sb;
    cn_sb_init(&sb, buf, sizeof buf);
    cn_sb_count(&sb, 3538944);
    CHECK_STR(buf, "3,538,944");
    cn_sb_init(&sb, buf, sizeof buf);
    cn_sb_count(&sb, 896);
    CHECK_STR(buf, "896");
    cn_sb_init(&sb, buf, sizeof buf);
    cn_sb_count(&sb, -1000);
    CHECK_STR(buf, "-1,000");
    /* sizing pass: no buffer, the length is still counted */
    cn_sb_init(&sb, NULL, 0);
    cn_sb_printf(&sb, "%s", "hello");
    CHECK_INT(sb.len, 5);
}

/* names from files, escaped for the terminal: C0, DEL and C1 controls and stray bytes as \xNN */
static void test_text_escape(void)
{
    char buf[64];
    CHECK(cn_text_printable("Ankle boot"));
    CHECK(cn_text_printable("gr\xc3\xbcn \xe2\x82\xac \xf0\x9f\x98\x80")); /* U+00FC, U+20AC, U+1F600 */
    CHECK(!cn_text_printable("red\x1b[31m"));
    CHECK(!cn_text_printable("a\x7f"));
    CHECK(!cn_text_printable("\xc2\x9b" "31m")); /* U+009B, the C1 CSI */
    CHECK(!cn_text_printable("\xc0\xaf"));       /* overlong '/' */
    CHECK(!cn_text_printable("\xed\xa0\x80"));   /* a surrogate */
    CHECK(!cn_text_printable("tab\there"));
    const char *ok = "plain";
    CHECK(cn_text_escape(ok, buf, sizeof buf) == ok);
    CHECK_STR(cn_text_escape("red\x1b[31m!", buf, sizeof buf), "red\\x1b[31m!");
    CHECK_STR(cn_text_escape("\xc2\x9b" "x\xff\xc3\xbc", buf, sizeof buf), "\\xc2\\x9bx\\xff\xc3\xbc");
    CHECK_STR(cn_text_escape("\x07\x07\x07\x07", buf, 9), "\\x07\\x07"); /* cut to the buffer, terminated */
    /* class names a line each: every line non-empty, printable, at most CN_CLASS_NAME_MAX bytes */
    CHECK(cn_text_printable_lines("T-shirt/top\nTrouser\ngr\xc3\xbcn"));
    CHECK(cn_text_printable_lines("one"));
    CHECK(!cn_text_printable_lines("a\n\nb") && !cn_text_printable_lines("a\n") && !cn_text_printable_lines(""));
    CHECK(!cn_text_printable_lines("a\nred\x1b[31m") && !cn_text_printable_lines("a\r\nb"));
    static char longest[CN_CLASS_NAME_MAX + 4];
    memset(longest, 'x', CN_CLASS_NAME_MAX);
    CHECK(cn_text_printable_lines(longest));
    longest[CN_CLASS_NAME_MAX] = 'x';
    CHECK(!cn_text_printable_lines(longest));
    CHECK(cn_path_is_onnx("m.onnx") && cn_path_is_onnx("dir/M.ONNX") && !cn_path_is_onnx("onnx") &&
          !cn_path_is_onnx("m.onnx.txt") && !cn_path_is_onnx("m_onnx"));
}

static const test_case cases[] = {
    { "rng stream", test_rng_stream },
    { "rng distributions", test_rng_distributions },
    { "checked arithmetic", test_checked_arithmetic },
    { "context messages", test_context_messages },
    { "slabs: zeroed, on huge pages from the C library's allocator, else the caller's", test_slabs },
    { "suggestions", test_suggestions },
    { "thousands separators", test_counts },
    { "text escaped for printing", test_text_escape },
};
TEST_MAIN(cases)
