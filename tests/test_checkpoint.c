/* test_checkpoint.c — checkpoints (src/io/checkpoint.c): a bit-identical round trip of a trained
 * net with batch norm and Adam state; the byte layout of the file; every malformed file the
 * reader must refuse, crafted here byte by byte, with the message that names the file and the
 * tensor; atomic writes (nothing left behind, the old file kept on failure); allocation failures;
 * and PyTorch reading the file with plain struct + json (tests/checkpoint_torch_check.py) and
 * computing the same logits. Checksums and the spec hash are computed here independently (zlib's
 * crc32, FNV-1a written out below). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "convnet.h"
#include "harness.h"
#include "test_util.h"

/* conv (with bias), batch norm (running statistics), dense: what the issue asks a round trip of */
static const char *SPEC = "input 6x6x2\nconv 4 3x3 pad=1\nbatchnorm\nrelu\nmaxpool 2x2\nflatten\ndense 3\n";

/* ---- helpers ---------------------------------------------------------------------------------- */

static char root[64];

static const char *tpath(const char *name)
{
    static char bufs[8][512];
    static int k;
    if (!root[0]) {
        snprintf(root, sizeof root, "/tmp/cn_ckpt_XXXXXX");
        if (!mkdtemp(root)) {
            fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
            exit(1);
        }
    }
    char *b = bufs[k++ % 8];
    snprintf(b, 512, "%s/%s", root, name);
    return b;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ULL;
    return h;
}

static uint32_t crc(const void *p, size_t n) { return (uint32_t)crc32(0, (const Bytef *)p, (uInt)n); }

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) {
        test_fail(__FILE__, __LINE__, "cannot read %s", path);
        return calloc(1, 1);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

static void put_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) test_fail(__FILE__, __LINE__, "cannot write %s", path);
    if (f) fclose(f);
}

/* u64 LE length of header, header, then n_data bytes of data (zeros when data is NULL) */
static void put_file(const char *path, const char *header, const void *data, size_t n_data)
{
    size_t h = strlen(header);
    unsigned char *b = calloc(1, 8 + h + n_data);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    if (data) memcpy(b + 8 + h, data, n_data);
    put_bytes(path, b, 8 + h + n_data);
    free(b);
}

/* Files of the directory whose name contains ".tmp." */
static int temp_files_left(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

static void random_fill(cn_rng *rng, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(2.0 * cn_rng_uniform(rng) - 1.0);
}

/* A net of spec with its parameters drawn, then `steps` steps of the optimizer (NULL kind < 0). */
static cn_net *trained(cn_ctx *ctx, const char *spec, int kind, int steps, cn_optim **opt_out)
{
    cn_net *net = parse_spec(ctx, spec);
    *opt_out = NULL;
    if (!net || cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 42)) {
        test_fail(__FILE__, __LINE__, "init: %s", cn_ctx_message(ctx));
        return net;
    }
    if (kind < 0) return net;
    cn_optim_config cfg;
    cn_optim_defaults(&cfg, (cn_optim_kind)kind);
    if (cn_optim_create(ctx, net, &cfg, opt_out)) test_fail(__FILE__, __LINE__, "optim: %s", cn_ctx_message(ctx));
    cn_layer_info in = layer_at(ctx, net, 0, 1), out = layer_at(ctx, net, cn_net_layer_count(net) - 1, 1);
    int64_t batch = 4, per = in.c * in.h * in.w;
    float *x = malloc((size_t)(batch * per) * sizeof(float));
    int32_t labels[4];
    cn_rng rng;
    cn_rng_seed(&rng, 7);
    cn_step_config sc = { .loss = cn_net_default_loss(net) };
    for (int s = 0; s < steps; s++) {
        random_fill(&rng, x, batch * per);
        for (int i = 0; i < batch; i++) labels[i] = (int32_t)cn_rng_below(&rng, (uint64_t)(out.c * out.h * out.w));
        double loss;
        if (cn_train_step(ctx, net, *opt_out, &sc, x, labels, batch, &loss))
            test_fail(__FILE__, __LINE__, "step: %s", cn_ctx_message(ctx));
    }
    free(x);
    return net;
}

static int same_params(const cn_net *a, const cn_net *b)
{
    int64_t na, nb, ta, tb;
    const float *pa = cn_net_params(a, &ta, &na), *pb = cn_net_params(b, &tb, &nb);
    return na == nb && ta == tb && memcmp(pa, pb, (size_t)na * sizeof(float)) == 0;
}

/* A metadata value, "(absent)" when there is none, for CHECK_STR. */
static const char *meta_of(const cn_checkpoint *ck, const char *key)
{
    const char *v = cn_checkpoint_meta(ck, key);
    return v ? v : "(absent)";
}

/* The header length at the start of a file's bytes. */
static uint64_t header_len(const unsigned char *b)
{
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
    return n;
}

static cn_checkpoint *read_ok(cn_ctx *ctx, const char *path)
{
    cn_checkpoint *ck = NULL;
    if (cn_checkpoint_read(ctx, path, &ck)) test_fail(__FILE__, __LINE__, "read %s: %s", path, cn_ctx_message(ctx));
    return ck;
}

/* ---- round trips -------------------------------------------------------------------------------- */

static void test_round_trip_adam(void)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    cn_optim *opt;
    cn_net *net = trained(ctx, SPEC, CN_OPTIM_ADAM, 3, &opt);
    const char *path = tpath("adam.safetensors");
    /* the running statistics moved away from their initial 0 and 1 */
    cn_tensor rv;
    CHECK(cn_net_find_tensor(ctx, net, "batchnorm1.running_var", &rv) == CN_OK);
    CHECK(rv.data[0] != 1.0f);
    cn_kv meta[] = { { "epoch", "3" }, { "note", "caf\xc3\xa9 \"quoted\"\\ tab\t line\n" } };
    CHECK(cn_checkpoint_write(ctx, path, net, opt, meta, 2) == CN_OK);
    CHECK_STR(cn_ctx_message(ctx), "");

    cn_checkpoint *ck = read_ok(ctx, path);
    CHECK_STR(meta_of(ck, "format"), "convnet-2");
    CHECK_STR(meta_of(ck, "spec"), SPEC);
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv1a(SPEC));
    CHECK_STR(meta_of(ck, "spec_hash"), hex);
    CHECK_STR(meta_of(ck, "optimizer"), "adam");
    CHECK_STR(meta_of(ck, "optimizer_steps"), "3");
    CHECK_STR(meta_of(ck, "epoch"), "3");
    CHECK_STR(meta_of(ck, "note"), meta[1].value);
    CHECK(cn_checkpoint_meta(ck, "nope") == NULL);
    for (int i = 0; i < cn_net_tensor_count(net); i++) {
        cn_tensor t;
        cn_net_tensor(ctx, net, i, &t);
        char key[128];
        snprintf(key, sizeof key, "crc32.%s", t.name);
        snprintf(hex, sizeof hex, "%08x", (unsigned)crc(t.data, (size_t)t.count * 4));
        const char *v = cn_checkpoint_meta(ck, key);
        CHECK(v && !strcmp(v, hex));
    }

    cn_net *back = NULL;
    CHECK(cn_checkpoint_net(ctx, ck, &back) == CN_OK);
    CHECK(back && same_params(net, back));
    CHECK_STR(cn_net_spec_text(back), SPEC);
    CHECK_INT(cn_net_tensor_count(back), cn_net_tensor_count(net));
    for (int i = 0; back && i < cn_net_tensor_count(net); i++) {
        cn_tensor a, b;
        cn_net_tensor(ctx, net, i, &a);
        cn_net_tensor(ctx, back, i, &b);
        CHECK_STR(b.name, a.name);
        CHECK_INT(b.rank, a.rank);
        CHECK(memcmp(a.shape, b.shape, sizeof a.shape) == 0);
    }
    cn_optim_config cfg;
    cn_optim_defaults(&cfg, CN_OPTIM_ADAM);
    cn_optim *opt2 = NULL;
    CHECK(cn_optim_create(ctx, back, &cfg, &opt2) == CN_OK);
    CHECK(cn_checkpoint_optim(ctx, ck, opt2) == CN_OK);
    int64_t n1, n2;
    const float *s1 = cn_optim_state(opt, &n1), *s2 = cn_optim_state(opt2, &n2);
    CHECK_INT(n2, n1);
    CHECK(n1 > 0 && memcmp(s1, s2, (size_t)n1 * sizeof(float)) == 0);
    CHECK_INT(cn_optim_steps(opt2), 3);

    /* training goes on identically from the restored state */
    cn_layer_info in = layer_at(ctx, net, 0, 1);
    float x[2 * 72];
    int32_t labels[2] = { 1, 2 };
    cn_rng rng;
    cn_rng_seed(&rng, 99);
    random_fill(&rng, x, 2 * in.c * in.h * in.w);
    cn_step_config sc = { .loss = CN_LOSS_CE_LOGITS };
    double l1, l2;
    CHECK(cn_train_step(ctx, net, opt, &sc, x, labels, 2, &l1) == CN_OK);
    CHECK(cn_train_step(ctx, back, opt2, &sc, x, labels, 2, &l2) == CN_OK);
    CHECK(l1 == l2);
    CHECK(same_params(net, back));

    cn_checkpoint_free(ck); /* the earlier name of cn_checkpoint_destroy still works */
    cn_checkpoint_destroy(NULL);
    cn_checkpoint_free(NULL); /* the earlier name, kept */
    cn_optim_destroy(opt2);
    cn_optim_destroy(opt);
    cn_net_destroy(back);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* The bytes: header length, JSON padded with spaces to a multiple of 8, tensors back to back. */
static void test_layout(void)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    cn_optim *opt;
    cn_net *net = trained(ctx, SPEC, CN_OPTIM_ADAM, 1, &opt);
    const char *path = tpath("layout.safetensors");
    CHECK(cn_checkpoint_write(ctx, path, net, opt, NULL, 0) == CN_OK);
    size_t size;
    unsigned char *b = slurp(path, &size);
    uint64_t n = header_len(b);
    CHECK_INT(n % 8, 0);
    CHECK(b[8] == '{');
    /* params: conv1 4*2*3*3 + 4, dense1 3*36 + 3, batchnorm1 4 + 4 trainable and 4 + 4 running */
    int64_t trainable = 72 + 4 + 8 + 108 + 3, total = trainable + 8;
    CHECK_INT(size, 8 + n + 4 * (total + 2 * trainable));
    char *head = calloc(1, n + 1);
    memcpy(head, b + 8, n);
    size_t end = strlen(head);
    while (end > 0 && head[end - 1] == ' ') end--;
    CHECK(head[end - 1] == '}');
    CHECK(n - end < 8);
    CHECK_CONTAINS(head, "{\"__metadata__\":{\"format\":\"convnet-2\",");
    CHECK_CONTAINS(head, "\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[4,2,3,3],\"data_offsets\":[0,288]}");
    CHECK_CONTAINS(head, "\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[288,304]}");
    char want[160];
    /* trainable tensors in slab order, then the running statistics, then exp_avg, then exp_avg_sq */
    snprintf(want, sizeof want, "\"batchnorm1.running_var\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[%lld,%lld]}",
             (long long)(4 * total - 16), (long long)(4 * total));
    CHECK_CONTAINS(head, want);
    snprintf(want, sizeof want, "\"conv1.weight.exp_avg\":{\"dtype\":\"F32\",\"shape\":[4,2,3,3],\"data_offsets\":[%lld,%lld]}",
             (long long)(4 * total), (long long)(4 * total + 288));
    CHECK_CONTAINS(head, want);
    snprintf(want, sizeof want, "\"conv1.weight.exp_avg_sq\":{\"dtype\":\"F32\",\"shape\":[4,2,3,3],\"data_offsets\":[%lld,%lld]}",
             (long long)(4 * (total + trainable)), (long long)(4 * (total + trainable) + 288));
    CHECK_CONTAINS(head, want);
    /* the data is the slab itself, little-endian float32 */
    int64_t cnt;
    const float *p = cn_net_params(net, NULL, &cnt);
    CHECK(memcmp(b + 8 + n, p, (size_t)cnt * 4) == 0);
    free(head);
    free(b);
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

static void test_momentum_and_no_optimizer(void)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    cn_optim *opt;
    cn_net *net = trained(ctx, SPEC, CN_OPTIM_NESTEROV, 2, &opt);
    const char *p1 = tpath("nesterov.safetensors"), *p2 = tpath("plain.safetensors");
    CHECK(cn_checkpoint_write(ctx, p1, net, opt, NULL, 0) == CN_OK);
    CHECK(cn_checkpoint_write(ctx, p2, net, NULL, NULL, 0) == CN_OK);

    cn_checkpoint *ck = read_ok(ctx, p1);
    CHECK_STR(meta_of(ck, "optimizer"), "nesterov");
    cn_net *back = NULL;
    CHECK(cn_checkpoint_net(ctx, ck, &back) == CN_OK);
    cn_optim_config cfg;
    cn_optim *o2 = NULL, *wrong = NULL;
    cn_optim_defaults(&cfg, CN_OPTIM_NESTEROV);
    cn_optim_create(ctx, back, &cfg, &o2);
    CHECK(cn_checkpoint_optim(ctx, ck, o2) == CN_OK);
    int64_t n1, n2;
    const float *s1 = cn_optim_state(opt, &n1), *s2 = cn_optim_state(o2, &n2);
    CHECK(n1 == n2 && memcmp(s1, s2, (size_t)n1 * 4) == 0);
    CHECK_INT(cn_optim_steps(o2), 2);
    cn_optim_defaults(&cfg, CN_OPTIM_ADAM);
    cn_optim_create(ctx, back, &cfg, &wrong);
    CHECK(cn_checkpoint_optim(ctx, ck, wrong) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "holds nesterov state; the optimizer is adam");
    CHECK_INT(cn_optim_steps(wrong), 0);
    cn_checkpoint_destroy(ck);

    ck = read_ok(ctx, p2);
    CHECK(cn_checkpoint_meta(ck, "optimizer") == NULL);
    CHECK(cn_checkpoint_meta(ck, "optimizer_steps") == NULL);
    cn_net *back2 = NULL;
    CHECK(cn_checkpoint_net(ctx, ck, &back2) == CN_OK);
    CHECK(back2 && same_params(net, back2));
    CHECK(cn_checkpoint_optim(ctx, ck, o2) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "holds no optimizer state");
    cn_checkpoint_destroy(ck);

    cn_optim_destroy(wrong);
    cn_optim_destroy(o2);
    cn_optim_destroy(opt);
    cn_net_destroy(back2);
    cn_net_destroy(back);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

static void test_caller_metadata(void)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    cn_optim *opt;
    cn_net *net = trained(ctx, SPEC, -1, 0, &opt);
    const char *path = tpath("meta.safetensors");
    static const char *reserved[] = { "format", "spec", "spec_hash", "optimizer", "optimizer_steps", "crc32.conv1.weight",
                                      "crc32.anything" };
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        cn_kv kv = { reserved[i], "x" };
        CHECK(cn_checkpoint_write(ctx, path, net, NULL, &kv, 1) == CN_E_ARG);
        CHECK_CONTAINS(cn_ctx_message(ctx), reserved[i]);
        CHECK_CONTAINS(cn_ctx_message(ctx), "reserved");
    }
    cn_kv twice[] = { { "a", "1" }, { "a", "2" } };
    CHECK(cn_checkpoint_write(ctx, path, net, NULL, twice, 2) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "'a' given twice");
    cn_kv bad_utf8 = { "k", "\xff\xfe" };
    CHECK(cn_checkpoint_write(ctx, path, net, NULL, &bad_utf8, 1) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "UTF-8");
    struct stat st;
    CHECK(stat(path, &st) != 0); /* none of them wrote anything */
    CHECK_INT(temp_files_left(root), 0);
    /* a net without parameters */
    cn_net *bare = parse_spec(ctx, SPEC);
    CHECK(cn_checkpoint_write(ctx, path, bare, NULL, NULL, 0) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "cn_net_init_params");
    cn_net_destroy(bare);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* ---- malformed files ------------------------------------------------------------------------------ */

static void expect_read_fail(int line, const char *path, cn_status want, const char *needle)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    cn_checkpoint *ck = (cn_checkpoint *)&ctx; /* must come back NULL */
    cn_status st = cn_checkpoint_read(ctx, path, &ck);
    const char *msg = cn_ctx_message(ctx);
    if (st != want)
        test_fail(__FILE__, line, "status %s, expected %s (%s)", cn_status_name(st), cn_status_name(want), msg);
    if (ck) test_fail(__FILE__, line, "out-parameter not NULL on failure");
    if (!strstr(msg, path) || !strstr(msg, needle))
        test_fail(__FILE__, line, "\"%s\" does not name %s and contain \"%s\"", msg, path, needle);
    if (st == CN_OK) cn_checkpoint_destroy(ck);
    cn_ctx_destroy(ctx);
}

typedef struct {
    const char *header;
    size_t data;      /* bytes of zeros after the header */
    cn_status status;
    const char *message;
} bad_case;

#define T(name, shape, b, e) "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static const bad_case bad_cases[] = {
    { "{\"a\":", 0, CN_E_FORMAT, "the header is not valid JSON" },
    { "{\"a\":1 ,}", 0, CN_E_FORMAT, "the header is not valid JSON" },
    { "[1, 2]", 0, CN_E_FORMAT, "the header is not a JSON object" },
    { " {}", 0, CN_E_FORMAT, "the header is not a JSON object" },
    { "{} x", 0, CN_E_FORMAT, "text after its JSON object" },
    { "{\"\xff\":1}", 0, CN_E_FORMAT, "not valid UTF-8" },
    { "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CN_E_FORMAT, "tensor 'a' has no dtype" },
    { "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, CN_E_FORMAT, "tensor 'a' has no shape" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, CN_E_FORMAT, "tensor 'a' has no data_offsets" },
    { "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, CN_E_FORMAT, "tensor 'a' has dtype F16" },
    { "{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CN_E_FORMAT, "tensor 'a': dtype is not a string" },
    { "{\"a\":[]}", 0, CN_E_FORMAT, "tensor 'a': its entry is not a JSON object" },
    { "{" T("big", "[4294967296,4294967296,4294967296]", 0, 4) "}", 4, CN_E_OVERFLOW,
      "tensor 'big': shape (4294967296, 4294967296, 4294967296) has more elements than 64 bits" },
    { "{" T("a", "[1,-2]", 0, 4) "}", 4, CN_E_FORMAT, "tensor 'a': shape entry 2 is not a whole number" },
    { "{" T("a", "[1.5]", 0, 4) "}", 4, CN_E_FORMAT, "tensor 'a': shape entry 1 is not a whole number" },
    { "{" T("a", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, CN_E_FORMAT, "tensor 'a' has 9 dimensions" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, CN_E_FORMAT,
      "tensor 'a': data_offsets must be [begin, end]" },
    { "{" T("w", "[2]", 0, 8) "}", 4, CN_E_FORMAT, "tensor 'w': data_offsets [0, 8] run past the 4-byte data section" },
    { "{" T("w", "[0]", 4, 0) "}", 4, CN_E_FORMAT, "tensor 'w': data_offsets [4, 0] begin after they end" },
    { "{" T("w", "[2]", 0, 4) "}", 4, CN_E_FORMAT, "tensor 'w': data_offsets [0, 4] hold 4 bytes; F32 of shape (2) needs 8" },
    { "{" T("a", "[2]", 0, 8) "," T("b", "[1]", 4, 8) "}", 8, CN_E_FORMAT,
      "tensor 'b' (data_offsets [4, 8]) overlaps tensor 'a' ([0, 8])" },
    { "{" T("a", "[1]", 0, 4) "," T("b", "[1]", 8, 12) "}", 12, CN_E_FORMAT,
      "gap in the data section: bytes 4 to 8, before tensor 'b'" },
    { "{" T("b", "[1]", 4, 8) "}", 8, CN_E_FORMAT, "gap in the data section: bytes 0 to 4, before tensor 'b'" },
    { "{" T("a", "[1]", 0, 4) "}", 8, CN_E_FORMAT, "gap in the data section: bytes 4 to 8, at its end" },
    { "{}", 4, CN_E_FORMAT, "bytes 0 to 4, at its end" },
    { "{" T("a", "[1]", 0, 4) "," T("a", "[1]", 4, 8) "}", 8, CN_E_FORMAT, "tensor 'a' appears twice" },
    { "{\"__metadata__\":{\"format\":\"convnet-1\",\"epoch\":3}}", 0, CN_E_FORMAT, "metadata 'epoch' is not a string" },
    { "{\"__metadata__\":[]}", 0, CN_E_FORMAT, "__metadata__ is not a JSON object" },
    { "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, CN_E_FORMAT, "metadata 'a' appears twice" },
    { "{}", 0, CN_E_FORMAT, "no \"format\" in __metadata__: not a convnet checkpoint" },
    { "{\"__metadata__\":{\"format\":\"convnet-9\"}}", 0, CN_E_UNSUPPORTED, "format 'convnet-9'" },
    { "{\"__metadata__\":{\"format\":\"convnet-1\"}," T("a", "[1]", 0, 4) "}", 4, CN_E_FORMAT,
      "no checksum for tensor 'a' (crc32.a in __metadata__)" },
    { "{\"__metadata__\":{\"format\":\"convnet-1\",\"crc32.a\":\"2144df1c\",\"crc32.b\":\"00000000\"}," T("a", "[1]", 0, 4)
      "}", 4, CN_E_FORMAT, "checksum crc32.b names no tensor" },
    { "{\"__metadata__\":{\"format\":\"convnet-1\",\"crc32.a\":\"xyz\"}," T("a", "[1]", 0, 4) "}", 4, CN_E_FORMAT,
      "checksum crc32.a is 'xyz', not 8 hex digits" },
    /* crc32 of four zero bytes is 2144df1c: this one must read */
    { "{\"__metadata__\":{\"format\":\"convnet-1\",\"crc32.a\":\"2144df1d\"}," T("a", "[1]", 0, 4) "}", 4, CN_E_FORMAT,
      "checksum mismatch in a (the header says 2144df1d, the data gives 2144df1c)" },
};

static void test_malformed_headers(void)
{
    const char *path = tpath("bad.safetensors");
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        put_file(path, c->header, NULL, c->data);
        int before = test_failures;
        expect_read_fail(__LINE__, path, c->status, c->message);
        if (test_failures != before) fprintf(stderr, "    in case %zu: %s\n", i, c->header);
    }
    /* 1001 arrays within each other: past cJSON's 1000 levels, said as such (brackets in a string
     * do not count: that header is merely cut short) */
    static char deep[8 + 2 * 1001 + 2], in_string[8 + 2 * 1001 + 2];
    strcpy(deep, "{\"a\":");
    memset(deep + 5, '[', 1001);
    memset(deep + 5 + 1001, ']', 1001);
    strcpy(deep + 5 + 2002, "}");
    put_file(path, deep, NULL, 0);
    expect_read_fail(__LINE__, path, CN_E_FORMAT, "the header nests arrays and objects deeper than 1000 levels (at byte");
    strcpy(in_string, "{\"a\":\"");
    memset(in_string + 6, '[', 1001);
    strcpy(in_string + 6 + 1001, "\" x}");
    put_file(path, in_string, NULL, 0);
    expect_read_fail(__LINE__, path, CN_E_FORMAT, "the header is not valid JSON");

    /* the crc of the zero bytes above, computed independently */
    unsigned char z[4] = { 0 };
    CHECK_INT(crc(z, 4), 0x2144df1c);
    /* and the good one next to them reads */
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    put_file(path, "{\"__metadata__\":{\"format\":\"convnet-1\",\"crc32.a\":\"2144DF1C\"}," T("a", "[1]", 0, 4) "}    ", NULL, 4);
    cn_checkpoint *ck = read_ok(ctx, path);
    CHECK(ck != NULL);
    /* but it names no spec */
    cn_net *net = (cn_net *)ctx;
    CHECK(cn_checkpoint_net(ctx, ck, &net) == CN_E_FORMAT);
    CHECK(net == NULL);
    CHECK_CONTAINS(cn_ctx_message(ctx), "no \"spec\" in __metadata__");
    cn_checkpoint_destroy(ck);
    cn_ctx_destroy(ctx);
}

static void test_file_length(void)
{
    const char *path = tpath("short.safetensors");
    put_bytes(path, "\x05\0\0\0", 4);
    expect_read_fail(__LINE__, path, CN_E_FORMAT, "4 bytes, shorter than the 8-byte header length");
    put_bytes(path, "", 0);
    expect_read_fail(__LINE__, path, CN_E_FORMAT, "0 bytes, shorter than the 8-byte header length");
    /* a header length past the end of the file */
    put_bytes(path, "\x10\0\0\0\0\0\0\0{}", 10);
    expect_read_fail(__LINE__, path, CN_E_FORMAT, "header length 16 runs past the end of the file (2 bytes after");
    put_bytes(path, "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
    expect_read_fail(__LINE__, path, CN_E_FORMAT, "header length 18446744073709551615 runs past the end");
    /* a text file (a spec given for a checkpoint): its first 8 characters are no length */
    put_bytes(path, "input 28x28x1\nconv 8 3x3\n", 25);
    expect_read_fail(__LINE__, path, CN_E_FORMAT, "a text file, not a safetensors checkpoint");
    put_bytes(path, "inp\xffut 28\nconv 8 3x3\n", 21); /* a byte of the 8 no text: the length said */
    expect_read_fail(__LINE__, path, CN_E_FORMAT, "runs past the end of the file");
    /* a header over 100 MB in a file that has the bytes: a sparse file, refused before reading them */
    uint64_t n = 100000001;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> (8 * i));
    put_bytes(path, len8, 8);
    CHECK(truncate(path, (off_t)(8 + n + 16)) == 0);
    expect_read_fail(__LINE__, path, CN_E_FORMAT, "header length 100000001 is over the 100 MB limit");
    unlink(path);
    expect_read_fail(__LINE__, path, CN_E_IO, "cannot open: No such file or directory");
    /* a folder is a run folder: its model.safetensors is read (here a folder: refused) */
    expect_read_fail(__LINE__, root, CN_E_IO, ": a folder without model.safetensors: not a run folder");
    char run[600], inner[700];
    snprintf(run, sizeof run, "%s/run", root);
    snprintf(inner, sizeof inner, "%s/run/run.json", root);
    CHECK(mkdir(run, 0755) == 0);
    put_bytes(inner, "{}", 2);
    expect_read_fail(__LINE__, run, CN_E_IO, "/run: the run has no model.safetensors yet (its first epoch writes it)");
    unlink(inner), rmdir(run);
    snprintf(run, sizeof run, "%s/run", root);
    snprintf(inner, sizeof inner, "%s/model.safetensors", run);
    CHECK(mkdir(run, 0755) == 0 && mkdir(inner, 0755) == 0);
    expect_read_fail(__LINE__, run, CN_E_IO, "not a regular file");
    rmdir(inner), rmdir(run);
    /* a FIFO in a checkpoint's place: refused at once (alarm: a plain open would wait for a writer
     * forever, and the test with it) */
    const char *fifo = tpath("fifo.safetensors");
    CHECK(mkfifo(fifo, 0600) == 0);
    alarm(10);
    expect_read_fail(__LINE__, fifo, CN_E_IO, "fifo.safetensors: not a regular file");
    alarm(0);
    unlink(fifo);
}

static void test_checksum_mismatch(void)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    cn_optim *opt;
    cn_net *net = trained(ctx, SPEC, -1, 0, &opt);
    const char *path = tpath("flip.safetensors");
    CHECK(cn_checkpoint_write(ctx, path, net, NULL, NULL, 0) == CN_OK);
    size_t size;
    unsigned char *b = slurp(path, &size);
    uint64_t n = header_len(b);
    b[8 + n + 5] ^= 0x10; /* a bit of conv1.weight[1] */
    put_bytes(path, b, size);
    expect_read_fail(__LINE__, path, CN_E_FORMAT, "checksum mismatch in conv1.weight");
    b[8 + n + 5] ^= 0x10;
    b[size - 1] ^= 0x01; /* the last byte: of the running variance, the last tensor in the slab */
    put_bytes(path, b, size);
    expect_read_fail(__LINE__, path, CN_E_FORMAT, "checksum mismatch in batchnorm1.running_var");
    free(b);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* ---- files whose layout is right but whose tensors do not fit the spec --------------------------- */

typedef struct {
    const char *name;
    const char *shape; /* JSON */
    int64_t count;
} tdesc;

/* A convnet-1 file written here: the spec, its hash (or `hash`), tensor t[i] filled with
 * 0.5*i + 0.001*j, each checksum computed here; extra: JSON members added to the metadata. */
static void build(const char *path, const char *spec, const tdesc *t, int n, const char *hash, const char *extra)
{
    static char head[16384], body[8192];
    static float data[4096];
    char esc[512], *e = esc;
    for (const char *s = spec; *s; s++) {
        if (*s == '\n') *e++ = '\\', *e++ = 'n';
        else *e++ = *s;
    }
    *e = '\0';
    int64_t off = 0;
    size_t bl = 0;
    char hx[17];
    snprintf(hx, sizeof hx, "%016llx", (unsigned long long)fnv1a(spec));
    int hl = snprintf(head, sizeof head, "{\"__metadata__\":{\"format\":\"convnet-1\",\"spec\":\"%s\",\"spec_hash\":\"%s\"%s", esc,
                  hash ? hash : hx, extra ? extra : "");
    for (int i = 0; i < n; i++) {
        for (int64_t j = 0; j < t[i].count; j++) data[off + j] = 0.5f * (float)i + 0.001f * (float)j;
        hl += snprintf(head + hl, sizeof head - (size_t)hl, ",\"crc32.%s\":\"%08x\"", t[i].name,
                       (unsigned)crc(data + off, (size_t)t[i].count * 4));
        bl += (size_t)snprintf(body + bl, sizeof body - bl, ",\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%lld,%lld]}",
                               t[i].name, t[i].shape, (long long)(4 * off), (long long)(4 * (off + t[i].count)));
        off += t[i].count;
    }
    snprintf(head + hl, sizeof head - (size_t)hl, "}%s}", body);
    put_file(path, head, data, (size_t)off * 4);
}

static const char *SMALL = "input 4x4x1\nconv 2 3x3\nflatten\ndense 2\n";
#define SMALL_TENSORS                                                                                          \
    { "conv1.weight", "[2,1,3,3]", 18 }, { "conv1.bias", "[2]", 2 }, { "dense1.weight", "[2,8]", 16 },       \
    { "dense1.bias", "[2]", 2 }

static void expect_net_fail(int line, const char *path, cn_status want, const char *needle)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    cn_checkpoint *ck = NULL;
    if (cn_checkpoint_read(ctx, path, &ck)) {
        test_fail(__FILE__, line, "read: %s", cn_ctx_message(ctx));
    } else {
        cn_net *net = (cn_net *)ctx;
        cn_status st = cn_checkpoint_net(ctx, ck, &net);
        const char *msg = cn_ctx_message(ctx);
        if (st != want)
            test_fail(__FILE__, line, "status %s, expected %s (%s)", cn_status_name(st), cn_status_name(want), msg);
        if (net) test_fail(__FILE__, line, "net not NULL on failure");
        if (!strstr(msg, path) || !strstr(msg, needle))
            test_fail(__FILE__, line, "\"%s\" does not name %s and contain \"%s\"", msg, path, needle);
        if (st == CN_OK) cn_net_destroy(net);
    }
    cn_checkpoint_destroy(ck);
    cn_ctx_destroy(ctx);
}

static void test_tensors_against_spec(void)
{
    const char *path = tpath("small.safetensors");
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    /* the builder itself makes a file that loads, with the values it wrote */
    tdesc good[] = { SMALL_TENSORS };
    build(path, SMALL, good, 4, NULL, NULL);
    cn_checkpoint *ck = read_ok(ctx, path);
    cn_net *net = NULL;
    CHECK(ck && cn_checkpoint_net(ctx, ck, &net) == CN_OK);
    cn_tensor t;
    CHECK(net && cn_net_find_tensor(ctx, net, "dense1.weight", &t) == CN_OK);
    CHECK(t.data && t.data[3] == 0.5f * 2 + 0.003f);
    cn_net_destroy(net);
    cn_checkpoint_destroy(ck);

    tdesc missing[] = { { "conv1.weight", "[2,1,3,3]", 18 }, { "conv1.bias", "[2]", 2 }, { "dense1.weight", "[2,8]", 16 } };
    build(path, SMALL, missing, 3, NULL, NULL);
    expect_net_fail(__LINE__, path, CN_E_FORMAT, "tensor 'dense1.bias' is missing (the spec gives it shape (2))");

    tdesc extra[] = { SMALL_TENSORS, { "conv9.weight", "[1]", 1 } };
    build(path, SMALL, extra, 5, NULL, NULL);
    expect_net_fail(__LINE__, path, CN_E_FORMAT, "unknown tensor 'conv9.weight'");

    tdesc shape[] = { { "conv1.weight", "[3,1,3,3]", 27 }, { "conv1.bias", "[2]", 2 }, { "dense1.weight", "[2,8]", 16 },
                      { "dense1.bias", "[2]", 2 } };
    build(path, SMALL, shape, 4, NULL, NULL);
    expect_net_fail(__LINE__, path, CN_E_SHAPE,
                    "tensor 'conv1.weight' has shape (3, 1, 3, 3) in the file, the spec gives (2, 1, 3, 3)");
    tdesc flat[] = { { "conv1.weight", "[18]", 18 }, { "conv1.bias", "[2]", 2 }, { "dense1.weight", "[2,8]", 16 },
                     { "dense1.bias", "[2]", 2 } };
    build(path, SMALL, flat, 4, NULL, NULL);
    expect_net_fail(__LINE__, path, CN_E_SHAPE, "tensor 'conv1.weight' has shape (18) in the file, the spec gives (2, 1, 3, 3)");

    build(path, SMALL, good, 4, "0123456789abcdef", NULL);
    char want[128];
    snprintf(want, sizeof want, "spec_hash 0123456789abcdef does not match the stored spec (whose hash is %016llx)",
             (unsigned long long)fnv1a(SMALL));
    expect_net_fail(__LINE__, path, CN_E_FORMAT, want);
    build(path, SMALL, good, 4, "12345", NULL);
    expect_net_fail(__LINE__, path, CN_E_FORMAT, "spec_hash '12345' is not 16 hex digits");

    /* a spec that does not parse: its messages name "<path>:spec" and the line */
    const char *broken = "input 4x4x1\nconv 2 9x9\n";
    build(path, broken, good, 4, NULL, NULL);
    char where[600];
    snprintf(where, sizeof where, "%s:spec:2:", path);
    expect_net_fail(__LINE__, path, CN_E_SHAPE, where);

    /* a spec asking for far more than the file holds is refused before its 6.8 GB are allocated */
    tdesc dense[] = { { "dense1.weight", "[2,8]", 16 }, { "dense1.bias", "[2]", 2 } };
    build(path, "input 4x4x1\nflatten\ndense 100000000\n", dense, 2, NULL, NULL);
    expect_net_fail(__LINE__, path, CN_E_SHAPE, "tensor 'dense1.weight' has shape (2, 8) in the file, the spec gives (100000000, 16)");

    /* optimizer state: named by the metadata, every trainable tensor's, no other */
    tdesc mom[] = { SMALL_TENSORS, { "conv1.weight.momentum_buffer", "[2,1,3,3]", 18 }, { "conv1.bias.momentum_buffer", "[2]", 2 },
                    { "dense1.weight.momentum_buffer", "[2,8]", 16 } };
    build(path, SMALL, mom, 7, NULL, ",\"optimizer\":\"momentum\",\"optimizer_steps\":\"5\"");
    expect_net_fail(__LINE__, path, CN_E_FORMAT, "tensor 'dense1.bias.momentum_buffer' is missing");
    build(path, SMALL, mom, 7, NULL, NULL);
    expect_net_fail(__LINE__, path, CN_E_FORMAT,
                    "unknown tensor 'conv1.weight.momentum_buffer': the spec has no such tensor (and no optimizer state is saved)");
    build(path, SMALL, good, 4, NULL, ",\"optimizer\":\"rmsprop\",\"optimizer_steps\":\"5\"");
    expect_net_fail(__LINE__, path, CN_E_FORMAT, "unknown optimizer 'rmsprop'");

    tdesc mom_all[] = { SMALL_TENSORS, { "conv1.weight.momentum_buffer", "[2,1,3,3]", 18 }, { "conv1.bias.momentum_buffer", "[2]", 2 },
                        { "dense1.weight.momentum_buffer", "[2,8]", 16 }, { "dense1.bias.momentum_buffer", "[2]", 2 } };
    build(path, SMALL, mom_all, 8, NULL, ",\"optimizer\":\"momentum\",\"optimizer_steps\":\"-5\"");
    ck = read_ok(ctx, path);
    net = NULL;
    CHECK(ck && cn_checkpoint_net(ctx, ck, &net) == CN_OK);
    cn_optim_config cfg;
    cn_optim *opt = NULL;
    cn_optim_defaults(&cfg, CN_OPTIM_MOMENTUM);
    CHECK(net && cn_optim_create(ctx, net, &cfg, &opt) == CN_OK);
    CHECK(cn_checkpoint_optim(ctx, ck, opt) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "optimizer_steps '-5' is not a whole number");
    cn_checkpoint_destroy(ck);
    build(path, SMALL, mom_all, 8, NULL, ",\"optimizer\":\"momentum\",\"optimizer_steps\":\"5\"");
    ck = read_ok(ctx, path);
    CHECK(cn_checkpoint_optim(ctx, ck, opt) == CN_OK);
    int64_t n;
    const float *s = cn_optim_state(opt, &n);
    CHECK_INT(n, 38);
    CHECK(s[18 + 2 + 3] == 0.5f * 6 + 0.003f); /* dense1.weight.momentum_buffer[3], the 7th tensor */
    CHECK_INT(cn_optim_steps(opt), 5);
    /* an optimizer made for another net */
    cn_net *other = trained(ctx, SPEC, -1, 0, &(cn_optim *){ NULL });
    cn_optim *o2 = NULL;
    cn_optim_create(ctx, other, &cfg, &o2);
    CHECK(cn_checkpoint_optim(ctx, ck, o2) == CN_E_ARG);
    CHECK_CONTAINS(cn_ctx_message(ctx), "the optimizer was made for another net");
    cn_optim_destroy(o2);
    cn_net_destroy(other);
    cn_checkpoint_destroy(ck);
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* ---- atomic writes ----------------------------------------------------------------------------- */

static void test_atomic_write(void)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    cn_optim *oa, *ob;
    cn_net *a = trained(ctx, SPEC, CN_OPTIM_SGD, 0, &oa), *b = trained(ctx, SPEC, CN_OPTIM_SGD, 2, &ob);
    cn_optim_destroy(oa);
    cn_optim_destroy(ob);

    /* a folder that does not exist: fails naming the path and the reason, creates nothing */
    const char *nowhere = tpath("no-such-folder/ck.safetensors");
    CHECK(cn_checkpoint_write(ctx, nowhere, a, NULL, NULL, 0) == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), nowhere);
    CHECK_CONTAINS(cn_ctx_message(ctx), strerror(ENOENT));
    struct stat st;
    CHECK(stat(tpath("no-such-folder"), &st) != 0);

    /* overwriting leaves the new file, complete, and no temporary file */
    const char *path = tpath("over.safetensors");
    CHECK(cn_checkpoint_write(ctx, path, a, NULL, NULL, 0) == CN_OK);
    CHECK(cn_checkpoint_write(ctx, path, b, NULL, NULL, 0) == CN_OK);
    cn_checkpoint *ck = read_ok(ctx, path);
    cn_net *back = NULL;
    CHECK(ck && cn_checkpoint_net(ctx, ck, &back) == CN_OK);
    CHECK(back && same_params(back, b) && !same_params(back, a));
    cn_checkpoint_destroy(ck);
    cn_net_destroy(back);
    CHECK_INT(temp_files_left(root), 0);

    /* the rename fails (a folder is in the way): the temporary file is removed */
    const char *blocked = tpath("blocked.safetensors");
    CHECK(mkdir(blocked, 0755) == 0);
    put_bytes(tpath("blocked.safetensors/keep"), "x", 1);
    CHECK(cn_checkpoint_write(ctx, blocked, a, NULL, NULL, 0) == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), "cannot rename");
    CHECK_CONTAINS(cn_ctx_message(ctx), blocked);
    CHECK_INT(temp_files_left(root), 0);
    CHECK(stat(tpath("blocked.safetensors/keep"), &st) == 0);

    /* a write that fails half-way (file size limit): the old file stays as it was */
    size_t n0, n1;
    unsigned char *before = slurp(path, &n0);
    struct rlimit old, small = { 256, 256 };
    getrlimit(RLIMIT_FSIZE, &old);
    small.rlim_max = old.rlim_max;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    cn_status s = cn_checkpoint_write(ctx, path, a, NULL, NULL, 0);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    CHECK(s == CN_E_IO);
    CHECK_CONTAINS(cn_ctx_message(ctx), "cannot write");
    CHECK_CONTAINS(cn_ctx_message(ctx), strerror(EFBIG));
    unsigned char *after = slurp(path, &n1);
    CHECK(n0 == n1 && memcmp(before, after, n0) == 0);
    CHECK_INT(temp_files_left(root), 0);
    free(before);
    free(after);

    cn_net_destroy(a);
    cn_net_destroy(b);
    cn_ctx_destroy(ctx);
}

/* ---- allocation failures ------------------------------------------------------------------------ */

static int64_t alloc_calls, alloc_fail_at, alloc_live;
static void *f_malloc(void *u, size_t n)
{
    (void)u;
    if (alloc_calls++ == alloc_fail_at) return NULL;
    alloc_live++;
    return malloc(n);
}
static void *f_realloc(void *u, void *p, size_t n)
{
    (void)u;
    if (alloc_calls++ == alloc_fail_at) return NULL;
    if (!p) alloc_live++;
    return realloc(p, n);
}
static void f_free(void *u, void *p)
{
    (void)u;
    if (p) alloc_live--, free(p);
}

static void test_allocation_failures(void)
{
    cn_ctx *ctx0;
    cn_ctx_create(NULL, &ctx0);
    cn_optim *opt;
    cn_net *net = trained(ctx0, SPEC, CN_OPTIM_ADAMW, 1, &opt);
    const char *path = tpath("alloc.safetensors"), *path2 = tpath("alloc2.safetensors");
    CHECK(cn_checkpoint_write(ctx0, path, net, opt, NULL, 0) == CN_OK);
    cn_allocator al = { f_malloc, f_realloc, f_free, NULL };
    int done = 0, k;
    for (k = 0; k < 10000 && !done; k++) {
        alloc_calls = 0, alloc_live = 0, alloc_fail_at = -1;
        cn_ctx *ctx;
        cn_ctx_create(&al, &ctx);
        alloc_fail_at = k, alloc_calls = 0;
        cn_checkpoint *ck = NULL;
        cn_net *back = NULL;
        cn_optim *o2 = NULL;
        cn_optim_config cfg;
        cn_optim_defaults(&cfg, CN_OPTIM_ADAMW);
        cn_status st = cn_checkpoint_read(ctx, path, &ck);
        if (!st) st = cn_checkpoint_net(ctx, ck, &back);
        if (!st) st = cn_optim_create(ctx, back, &cfg, &o2);
        if (!st) st = cn_checkpoint_optim(ctx, ck, o2);
        if (!st) st = cn_checkpoint_write(ctx, path2, back, o2, NULL, 0);
        if (st != CN_OK && st != CN_E_NOMEM) test_fail(__FILE__, __LINE__, "failing allocation %d: %s", k, cn_ctx_message(ctx));
        if (st == CN_OK) done = 1;
        cn_optim_destroy(o2);
        cn_net_destroy(back);
        cn_checkpoint_destroy(ck);
        cn_ctx_destroy(ctx);
        if (alloc_live != 0) test_fail(__FILE__, __LINE__, "failing allocation %d: %lld blocks leaked", k, (long long)alloc_live);
    }
    CHECK(done);
    CHECK(k > 20);
    CHECK_INT(temp_files_left(root), 0);
    size_t n1, n2;
    unsigned char *b1 = slurp(path, &n1), *b2 = slurp(path2, &n2);
    CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0); /* the round trip writes the same bytes */
    free(b1);
    free(b2);
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx0);
}

/* ---- PyTorch reads the file ---------------------------------------------------------------------- */

static void test_pytorch_reads_it(void)
{
    const char *spec = "input 8x8x3\nconv 4 3x3 pad=1\nbatchnorm\nrelu\nmaxpool 2x2\nflatten\ndense 5\n";
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    cn_optim *opt;
    cn_net *net = trained(ctx, spec, CN_OPTIM_MOMENTUM, 3, &opt); /* running statistics away from 0 and 1 */
    const char *dir = tpath("torch");
    char path[600];
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(cn_checkpoint_write(ctx, path, net, opt, NULL, 0) == CN_OK);

    enum { N = 2, C = 3, H = 8, W = 8, K = 5 };
    static float x[N * C * H * W];
    cn_rng rng;
    cn_rng_seed(&rng, 2024);
    random_fill(&rng, x, N * C * H * W);
    int32_t dims[4] = { N, C, H, W };
    unsigned char buf[16 + sizeof x];
    memcpy(buf, dims, 16);
    memcpy(buf + 16, x, sizeof x);
    snprintf(path, sizeof path, "%s/input.bin", dir);
    put_bytes(path, buf, sizeof buf);

    CHECK(cn_net_forward(ctx, net, x, N, 0) == CN_OK);
    int64_t count;
    const float *y = cn_net_output(net, &count);
    CHECK_INT(count, N * K);

    char cmd[700], line[256], out[4096] = "";
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/checkpoint_torch_check.py '%s' 2>&1", dir);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    double got[N * K];
    int n = 0;
    while (p && fgets(line, sizeof line, p)) {
        char *end;
        double v = strtod(line, &end);
        if (end != line && (*end == '\n' || !*end) && n < N * K) got[n++] = v;
        else strncat(out, line, sizeof out - strlen(out) - 1);
    }
    int rc = p ? pclose(p) : -1;
    if (rc != 0 || n != N * K) {
        test_fail(__FILE__, __LINE__, "PyTorch check (status %d, %d logits) failed:\n%s", rc, n, out);
    } else {
        double diff = 0, scale = 0;
        for (int i = 0; i < N * K; i++) {
            diff = fmax(diff, fabs(got[i] - (double)y[i]));
            scale = fmax(scale, fabs(got[i]));
        }
        if (!(diff <= 1e-5 * scale))
            test_fail(__FILE__, __LINE__, "PyTorch logits differ: max |diff| %g, max |logit| %g", diff, scale);
    }
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* ---- metadata: covered by a checksum, and the values convnet train stores validated -------------- */

/* SPEC's net written with meta, then read back */
static cn_status write_read(cn_ctx *ctx, cn_net *net, const cn_kv *meta, int n, cn_checkpoint **out)
{
    const char *path = tpath("meta.safetensors");
    if (cn_checkpoint_write(ctx, path, net, NULL, meta, n)) {
        test_fail(__FILE__, __LINE__, "write: %s", cn_ctx_message(ctx));
        return CN_E_IO;
    }
    return cn_checkpoint_read(ctx, path, out);
}

/* a file whose metadata key has that value is refused with a message holding want and the path */
static void refused(cn_ctx *ctx, cn_net *net, const char *key, const char *value, const char *want, int line)
{
    cn_kv kv[1] = { { key, value } };
    cn_checkpoint *ck = NULL;
    cn_status st = write_read(ctx, net, kv, 1, &ck);
    if (st != CN_E_FORMAT || !strstr(cn_ctx_message(ctx), want) || !strstr(cn_ctx_message(ctx), tpath("meta.safetensors")))
        test_fail(__FILE__, line, "%s = '%s': status %d, message '%s' (want '%s')", key, value, (int)st,
                  cn_ctx_message(ctx), want);
    cn_checkpoint_destroy(ck);
}

/* the file with the first `from` in its header replaced by `to` (same length) */
static void patch_file(const char *path, const char *from, const char *to)
{
    size_t n;
    unsigned char *b = slurp(path, &n);
    char *at = strstr((char *)b + 8, from);
    if (!at || strlen(from) != strlen(to)) test_fail(__FILE__, __LINE__, "'%s' not in %s", from, path);
    else memcpy(at, to, strlen(to));
    put_bytes(path, b, n);
    free(b);
}

static void test_metadata_trust(void)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    cn_optim *opt;
    cn_net *net = trained(ctx, SPEC, -1, 0, &opt);
    const char *path = tpath("meta.safetensors");

    /* normalisation: finite, std >= 1e-6 (a std of 0 divides by zero, 1e-45 makes every input
     * infinite, -1 flips the images) */
    const char *std_msg = "a standard deviation must be a finite number >= 1e-06";
    refused(ctx, net, "norm_std", "0,1,1,1", std_msg, __LINE__);
    refused(ctx, net, "norm_std", "1e-45,1,1,1", std_msg, __LINE__);
    refused(ctx, net, "norm_std", "1,9e-7,1,1", std_msg, __LINE__);
    refused(ctx, net, "norm_std", "1,-1,1,1", std_msg, __LINE__);
    refused(ctx, net, "norm_std", "1,1,nan,1", std_msg, __LINE__);
    refused(ctx, net, "norm_std", "1,1,1", "not 4 numbers", __LINE__);
    refused(ctx, net, "norm_mean", "0,inf,0,0", "norm_mean is '0,inf,0,0': a value is not a finite number", __LINE__);
    refused(ctx, net, "norm_mean", "0,0,0,0,0", "not 4 numbers", __LINE__);
    /* class names: printable, one per class (ESC and the C1 CSI U+009B would drive a terminal) */
    refused(ctx, net, "class_names", "red\n\x1b[31mgreen", "class_names: a name is empty or holds a control character", __LINE__);
    refused(ctx, net, "class_names", "red\n\xc2\x9b" "31mgreen", "class_names: a name is empty or holds a control", __LINE__);
    refused(ctx, net, "class_names", "red\n\ngreen", "class_names: a name is empty", __LINE__);
    refused(ctx, net, "data", "/tmp/\x1b]0;owned\x07", "metadata data holds a control character", __LINE__);
    /* the training state */
    refused(ctx, net, "epoch", "3x", "metadata epoch is '3x', not a whole number", __LINE__);
    refused(ctx, net, "data_rng", "00000000000000000000000000000000000000000000000000000000000000000",
            "metadata data_rng", __LINE__);
    refused(ctx, net, "net_rng", "0000000000000000000000000000000000000000000000000000000000000000",
            "net_rng is '0000000000000000000000000000000000000000', not 64 hex digits, not all zero", __LINE__);
    refused(ctx, net, "best_val_acc", "1.5", "metadata best_val_acc is '1.5', not nan or a number in [-1, 1]", __LINE__);
    refused(ctx, net, "train_images", "-4", "metadata train_images is '-4', not a whole number", __LINE__);
    refused(ctx, net, "resize", "bicubic", "metadata resize is 'bicubic', not bilinear, antialias or draft", __LINE__);
    /* how its images were resized: the key's value, and bilinear without one (older files) */
    for (int k = 0; k < 3; k++) {
        const char *const value[3] = { "antialias", "bilinear", NULL };
        cn_kv kv[1] = { { "resize", value[k] } };
        cn_checkpoint *ck = NULL;
        CHECK(write_read(ctx, net, kv, value[k] ? 1 : 0, &ck) == CN_OK);
        CHECK_INT(cn_checkpoint_resize(ck), k ? CN_RESIZE_BILINEAR : CN_RESIZE_ANTIALIAS);
        cn_checkpoint_destroy(ck);
    }
    CHECK_INT(cn_checkpoint_resize(NULL), CN_RESIZE_BILINEAR);

    /* the classes it was trained on: at most the net's outputs (3 here) */
    for (int k = 2; k <= 4; k++) {
        char v[8];
        snprintf(v, sizeof v, "%d", k);
        cn_kv kv[1] = { { "classes", v } };
        cn_checkpoint *ck = NULL;
        cn_net *back = NULL;
        CHECK(write_read(ctx, net, kv, 1, &ck) == CN_OK);
        cn_status st = ck ? cn_checkpoint_net(ctx, ck, &back) : CN_E_IO;
        CHECK_INT(st, k <= 3 ? CN_OK : CN_E_FORMAT);
        if (k > 3) CHECK_CONTAINS(cn_ctx_message(ctx), "meta.safetensors: metadata classes is 4, but the net's output (dense1) has 3 values");
        cn_net_destroy(back);
        cn_checkpoint_destroy(ck);
    }

    /* well-formed values pass and are read back */
    cn_kv good[5] = { { "norm_mean", "0.25,0,0,0" }, { "norm_std", "0.5,1,1,1" }, { "classes", "3" },
                      { "class_names", "red\ngr\xc3\xbcn\nblue" }, /* UTF-8 letters are printable */
                      { "data_rng", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" } };
    cn_checkpoint *ck = NULL;
    CHECK(write_read(ctx, net, good, 5, &ck) == CN_OK);
    float mean[4], std[4];
    CHECK(ck && cn_checkpoint_norm(ctx, ck, mean, std) == CN_OK);
    CHECK(mean[0] == 0.25f && std[0] == 0.5f && std[3] == 1.0f);
    cn_checkpoint_destroy(ck);
    cn_kv two_names[2] = { { "classes", "3" }, { "class_names", "red\ngreen" } };
    CHECK(write_read(ctx, net, two_names, 2, &ck) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "metadata class_names has 2 names for 3 classes");

    /* a flipped bit in a value, a key or the RNG state: the metadata checksum fails, naming it */
    static const char *const flips[][2] = { { "0123456789abcdef0123", "0123456789abcdef1123" }, /* '0' ^ 1 */
                                            { "gr\xc3\xbcn", "gs\xc3\xbcn" },                   /* 'r' ^ 1 */
                                            { "\"norm_std\"", "\"norm_stl\"" } };
    for (int i = 0; i < 3; i++) {
        CHECK(write_read(ctx, net, good, 5, &ck) == CN_OK);
        cn_checkpoint_destroy(ck);
        patch_file(path, flips[i][0], flips[i][1]);
        ck = NULL;
        CHECK(cn_checkpoint_read(ctx, path, &ck) == CN_E_FORMAT);
        CHECK_CONTAINS(cn_ctx_message(ctx), "metadata checksum mismatch (meta_crc32 says ");
        CHECK(ck == NULL);
    }
    /* the checksum removed: refused in a convnet-2 file; a convnet-1 file (older convnet) has none */
    CHECK(write_read(ctx, net, good, 5, &ck) == CN_OK);
    const char *crc_text = meta_of(ck, "meta_crc32");
    char entry[64], blank[64];
    snprintf(entry, sizeof entry, ",\"meta_crc32\":\"%s\"", crc_text ? crc_text : "?");
    memset(blank, ' ', strlen(entry));
    blank[strlen(entry)] = '\0';
    cn_checkpoint_destroy(ck);
    patch_file(path, entry, blank);
    CHECK(cn_checkpoint_read(ctx, path, &ck) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "no metadata checksum (meta_crc32 in __metadata__)");
    patch_file(path, "\"convnet-2\"", "\"convnet-1\"");
    CHECK(cn_checkpoint_read(ctx, path, &ck) == CN_OK);
    cn_checkpoint_destroy(ck);

    /* NaN and infinite weights, written with correct checksums: refused when the net is built */
    int64_t total;
    float *p = cn_net_params(net, NULL, &total);
    p[total - 1] = NAN; /* the last tensor in slab order, its last value */
    CHECK(write_read(ctx, net, NULL, 0, &ck) == CN_OK);
    cn_net *back = NULL;
    CHECK(ck && cn_checkpoint_net(ctx, ck, &back) == CN_E_FORMAT && back == NULL);
    CHECK_CONTAINS(cn_ctx_message(ctx), "holds a value that is not finite (at index ");
    cn_checkpoint_destroy(ck);
    p[total - 1] = 0;
    p[0] = INFINITY;
    CHECK(write_read(ctx, net, NULL, 0, &ck) == CN_OK);
    CHECK(ck && cn_checkpoint_net(ctx, ck, &back) == CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "tensor 'conv1.weight' holds a value that is not finite (at index 0)");
    cn_checkpoint_destroy(ck);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* The optimizer names its own state (PyTorch's state_dict names) and lists it per trainable
 * tensor at the parameter offsets of its slab; the checkpoint stores "<tensor>.<state>". */
static void test_optim_state_tensors(void)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    const char *names[CN_OPTIM_MAX_STATES];
    CHECK_INT(cn_optim_state_names(CN_OPTIM_SGD, names), 0);
    CHECK_INT(cn_optim_state_names(CN_OPTIM_NESTEROV, names), 1);
    CHECK_STR(names[0], "momentum_buffer");
    CHECK_INT(cn_optim_state_names(CN_OPTIM_ADAMW, names), 2);
    CHECK_STR(names[0], "exp_avg");
    CHECK_STR(names[1], "exp_avg_sq");
    cn_optim_kind kind = CN_OPTIM_SGD;
    CHECK(cn_optim_kind_from_name("adamw", &kind) && kind == CN_OPTIM_ADAMW);
    CHECK(!cn_optim_kind_from_name("adam ", &kind) && kind == CN_OPTIM_ADAMW);

    cn_optim *opt;
    cn_net *net = trained(ctx, SPEC, CN_OPTIM_ADAM, 2, &opt);
    int64_t trainable, n_state;
    const float *params = cn_net_params(net, &trainable, NULL), *state = cn_optim_state(opt, &n_state);
    /* conv weight and bias, batch norm gamma and beta, dense weight and bias: 6 trainable tensors */
    CHECK_INT(cn_optim_tensor_count(opt, net), 12);
    static const char *const params_in_order[] = { "conv1.weight", "conv1.bias", "batchnorm1.weight", "batchnorm1.bias",
                                                   "dense1.weight", "dense1.bias" };
    for (int i = 0; i < 12; i++) {
        cn_optim_state_tensor x;
        cn_tensor p;
        CHECK(cn_optim_tensor(ctx, opt, net, i, &x) == CN_OK);
        CHECK(cn_net_find_tensor(ctx, net, params_in_order[i % 6], &p) == CN_OK);
        CHECK_STR(x.param, params_in_order[i % 6]);
        CHECK_STR(x.state, i < 6 ? "exp_avg" : "exp_avg_sq");
        CHECK(x.rank == p.rank && x.count == p.count && memcmp(x.shape, p.shape, sizeof x.shape) == 0);
        CHECK(x.data == state + (i / 6) * trainable + (p.data - params));
    }
    cn_optim_state_tensor x;
    CHECK(cn_optim_tensor(ctx, opt, net, 12, &x) == CN_E_ARG && x.data == NULL);
    CHECK(cn_optim_tensor(ctx, opt, net, -1, &x) == CN_E_ARG);
    CHECK_INT(n_state, 2 * trainable);
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

static void test_cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(root[0] && system(cmd) == 0);
}

static const test_case cases[] = {
    { "round trip: conv, batch norm, dense, Adam", test_round_trip_adam },
    { "file layout", test_layout },
    { "momentum state, no optimizer", test_momentum_and_no_optimizer },
    { "caller metadata", test_caller_metadata },
    { "malformed headers", test_malformed_headers },
    { "file and header length", test_file_length },
    { "checksum mismatch", test_checksum_mismatch },
    { "tensors against the spec", test_tensors_against_spec },
    { "atomic write", test_atomic_write },
    { "allocation failures", test_allocation_failures },
    { "PyTorch reads the file", test_pytorch_reads_it },
    { "metadata: checksum and validation", test_metadata_trust },
    { "optimizer state tensors", test_optim_state_tensors },
    { "cleanup", test_cleanup },
};
TEST_MAIN(cases)
