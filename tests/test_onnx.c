/* test_onnx.c — ONNX export and import (src/onnx/). Run alone, its cases check: every op of
 * ops.def has a row in the ONNX table and is in one of the nets below; each net exported and
 * imported again (batch norms kept, and folded) gives the outputs convnet computes for the
 * original; broken and unsupported files fail with messages naming the problem; an
 * allocation-failure sweep over the import. With arguments it serves tests/onnx_test.sh, which
 * checks the exports with ONNX Runtime and onnx.checker, and PyTorch's exports after import:
 *     test_onnx --write DIR              DIR/NAME.onnx, NAME.x.bin, NAME.x.shape, NAME.y.bin per net
 *     test_onnx --check CKPT X Y N TOL   the checkpoint's net on X (N samples, float32) against Y:
 *                                        prints max |convnet - Y| / max |Y|, exit 1 above TOL */
#include <stdlib.h>
#include <string.h>

#include "fail_alloc.h"
#include "harness.h"
#include "onnx/onnx_impl.h"

/* Every op, with the cases its export writes differently: padding asymmetric (pad=same) or
 * with a ceil window, groups and dilation, no bias, a vector read as a map, concat and add. */
static const struct {
    const char *name, *spec;
} nets[] = {
    { "cnn", "input 12x12x3; conv 8 3x3 pad=1; batchnorm; relu; maxpool 2x2; conv 8 3x3 pad=same stride=2 bias=no;"
             "leakyrelu slope=0.1; flatten; dropout keep=0.5; dense 10; softmax" },
    { "pools", "input 11x11x4; avgpool 3x3 stride=2 pad=1 ceil=yes; conv 6 3x3 dilation=2 pad=2 groups=2; tanh;"
               "minpool 2x2 pad=1 ceil=yes; maxpool 3x3 stride=2 ceil=yes; sigmoid; globalavgpool; dense 5" },
    { "branches", "input 10x10x3 as x; conv 4 1x1 from x as a; conv 4 3x3 pad=1 from x as b; concat a b as c;"
                  "conv 8 1x1 from c as d; conv 8 1x1 from x as e; add d e as f; relu from f; globalavgpool;"
                  "flatten; dense 4" },
    { "same", "input 8x8x2; conv 3 4x4 pad=same; maxpool 3x3 stride=2 pad=same; avgpool 2x2 stride=1 pad=same; dense 3" },
    { "vectors", "input 4x4x2; dense 6; relu; conv 3 1x1; batchnorm; add conv1 batchnorm1; flatten; dense 2; softmax" },
    { "mlp", "input 6x6x1; flatten; dense 8; batchnorm; sigmoid; dense 3" },
    { "mobile", "input 16x16x3; conv 8 3x3 pad=1; relu6; conv 8 3x3 pad=1 groups=8; hardswish; prelu;"
                "maxpool 3x3 stride=2 dilation=2 pad=1 ceil=yes; batchnorm affine=no; elu alpha=0.7; hardsigmoid;"
                "avgpool 3x3 stride=1 pad=1 count_pad=no; adaptiveavgpool 4; minpool 2x2 dilation=2 pad=1;"
                "globalmaxpool; dense 4" },
    { "decoder", "input 8x8x4 as x; conv 4 3x3 pad=1 as a; globalavgpool as g; mul a g as m; add m g as s;"
                 "deconv 6 3x3 stride=2 pad=1 outpad=1 groups=2 from s as d; pad 1 mode=reflect from d as pr;"
                 "crop 16x16 offset=2x1 from pr as c; upsample 2 from a as u;"
                 "upsample 2 mode=bilinear align_corners=yes from a as v; pad top=1 left=2 mode=replicate from v as pe;"
                 "crop top=1 left=2 from pe as ce; concat c u ce; pad 1; maxpool 2x2; upsample 2 mode=bilinear;"
                 "deconv 3 2x2 dilation=2 bias=no; conv 3 1x1" },
    { "norms", "input 6x6x4; conv 8 3x3 pad=1; silu; layernorm; gelu; groupnorm 2; gelu approximate=tanh;"
               "instancenorm affine=yes; conv 4 1x1; groupnorm 4 affine=no; instancenorm; groupnorm 2 affine=no eps=1e-3;"
               "globalavgpool; dense 6; layernorm eps=1e-4; silu; dense 3; layernorm affine=no" },
    { "channels", "input 6x6x8 as x; conv 8 1x1; shuffle 4 as s; channels 3 start=2 from s as a; channels 5 from x as b;"
                  "concat a b; shuffle 2; globalavgpool; dense 6; channels 4 start=1" },
    { "convnext", "input 8x8x3; conv 8 2x2 stride=2; layernorm over=channels eps=1e-6 as s; conv 8 3x3 pad=1 groups=8;"
                  "layernorm over=channels affine=no; conv 16 1x1; gelu; conv 8 1x1; scale as b; add s b; globalavgpool;"
                  "layernorm over=channels; flatten; dense 3; scale; layernorm over=channels" },
    { "sizes", "input 5x5x2; upsample size=7x8; upsample size=9x9 mode=bilinear;"
               "upsample size=11x12 mode=bilinear align_corners=yes" },
};
#define N_NETS ((int)(sizeof nets / sizeof nets[0]))
#define BATCH 2

static uint64_t rng_state = 12345;
static float uniform(float lo, float hi) /* splitmix64: the test's own stream */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return lo + (hi - lo) * (float)((double)(z >> 11) / 9007199254740992.0);
}

/* the net with random parameters: biases, batch-norm scales, shifts and statistics too, so that
 * every value the export writes matters */
static cn_net *make_net(cn_ctx *ctx, const char *spec)
{
    cn_net *net = NULL;
    if (cn_net_parse(ctx, spec, strlen(spec), "-e", &net) || cn_net_init_params(ctx, net, CN_INIT_KAIMING_UNIFORM, 7)) {
        test_fail(__FILE__, __LINE__, "%s: %s", spec, cn_ctx_message(ctx));
        cn_net_destroy(net);
        return NULL;
    }
    for (int i = 0; i < cn_net_tensor_count(net); i++) {
        cn_tensor t;
        cn_net_tensor(ctx, net, i, &t);
        int var = strstr(t.name, "running_var") != NULL, w = strstr(t.name, ".weight") != NULL;
        for (int64_t k = 0; k < t.count; k++) {
            if (var) t.data[k] = uniform(0.5f, 1.5f);
            else if (!w) t.data[k] = uniform(-0.5f, 0.5f);
            else if (!strncmp(t.name, "batchnorm", 9) || !strncmp(t.name, "scale", 5)) t.data[k] = uniform(0.5f, 1.5f);
        }
    }
    return net;
}

static float *random_input(const cn_net *net, cn_ctx *ctx, int64_t *n)
{
    cn_layer_info in;
    cn_net_layer(ctx, net, 0, 1, &in);
    *n = BATCH * in.c * in.h * in.w;
    float *x = malloc(sizeof(float) * (size_t)*n);
    for (int64_t k = 0; x && k < *n; k++) x[k] = uniform(-2, 2);
    return x;
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t k = 0; k < n; k++) {
        d = fmax(d, fabs((double)a[k] - b[k]));
        s = fmax(s, fabs((double)b[k]));
    }
    return d / (s > 0 ? s : 1);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int layers_but_flatten(cn_ctx *ctx, const cn_net *net)
{
    int n = 0;
    for (int i = 0; i < cn_net_layer_count(net); i++) {
        cn_layer_info li;
        cn_net_layer(ctx, net, i, 1, &li);
        n += strcmp(li.type, "flatten") != 0;
    }
    return n;
}

/* ---- cases ------------------------------------------------------------------------------------ */

static void every_op_has_a_row(void)
{
    int covered[CN_OP_COUNT] = { 0 };
    for (int op = 0; op < CN_OP_COUNT; op++) {
        int rows = 0;
        for (int r = 0; r < cn_onnx_row_count; r++) rows += cn_onnx_rows[r].op == op && cn_onnx_rows[r].export_node;
        if (rows != 1) test_fail(__FILE__, __LINE__, "op %s has %d ONNX export rows, not 1", cn_ops[op]->name, rows);
    }
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    for (int k = 0; k < N_NETS; k++) {
        cn_net *net = NULL;
        CHECK(cn_net_parse(ctx, nets[k].spec, strlen(nets[k].spec), "-e", &net) == CN_OK);
        for (int i = 0; net && i < net->n; i++) covered[net->nodes[i].id] = 1;
        cn_net_destroy(net);
    }
    for (int op = 0; op < CN_OP_COUNT; op++)
        if (!covered[op]) test_fail(__FILE__, __LINE__, "op %s is in none of the nets exported", cn_ops[op]->name);
    cn_ctx_destroy(ctx);
}

/* export, import (kept / folded), and the same outputs for the same input */
static void round_trip(void)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    char dir[256];
    test_tmpdir(dir, sizeof dir, "onnx");
    for (int k = 0; k < N_NETS; k++) {
        cn_net *net = make_net(ctx, nets[k].spec);
        int64_t n, ny, ny2;
        float *x = net ? random_input(net, ctx, &n) : NULL, *y = NULL;
        const char *path = test_path(dir, "m.onnx");
        if (!x || cn_net_forward(ctx, net, x, BATCH, 0) || cn_onnx_export(ctx, net, NULL, 0, path)) {
            test_fail(__FILE__, __LINE__, "%s: %s", nets[k].name, cn_ctx_message(ctx));
            goto next;
        }
        const float *out = cn_net_output(net, &ny);
        y = malloc(sizeof(float) * (size_t)ny);
        memcpy(y, out, sizeof(float) * (size_t)ny);
        size_t len;
        char *bytes = read_all(path, &len);
        for (int fold = 0; fold < 2 && bytes; fold++) {
            cn_onnx_import_options opt = { .fold_bn = fold };
            cn_onnx_imported r;
            if (cn_onnx_import(ctx, bytes, len, "m.onnx", &opt, &r) || cn_net_forward(ctx, r.net, x, BATCH, 0)) {
                test_fail(__FILE__, __LINE__, "%s (fold %d): %s", nets[k].name, fold, cn_ctx_message(ctx));
                continue;
            }
            const float *y2 = cn_net_output(r.net, &ny2);
            CHECK_INT(ny2, ny);
            double e = rel_err(y2, y, ny);
            if (!(e <= (fold ? 1e-5 : 1e-6)))
                test_fail(__FILE__, __LINE__, "%s (fold %d): imported output off by %.3g relative", nets[k].name, fold, e);
            /* kept: the same layers, a flatten where the spec had one and none where a dense read
             * a map (the export's "<layer>/flat"); folded: one fewer per batch norm after a conv */
            CHECK_INT(cn_net_layer_count(r.net), cn_net_layer_count(net) - r.folded);
            CHECK_INT(layers_but_flatten(ctx, r.net), layers_but_flatten(ctx, net) - r.folded);
            if (fold && !strcmp(nets[k].name, "cnn")) CHECK_INT(r.folded, 1);
            if (fold && !strcmp(nets[k].name, "mlp")) CHECK_INT(r.folded, 0); /* after a dense: kept */
            cn_onnx_imported_free(ctx, &r);
        }
        free(bytes);
    next:
        free(x);
        free(y);
        cn_net_destroy(net);
    }
    test_rmtree(dir);
    cn_ctx_destroy(ctx);
}

/* the bytes of nets[k] exported (malloc'ed; NULL, a check failed, when the export failed) */
static char *exported(int k, size_t *len)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    char dir[256];
    test_tmpdir(dir, sizeof dir, "onnx");
    cn_net *net = make_net(ctx, nets[k].spec);
    const char *path = test_path(dir, "m.onnx");
    char *bytes = net && !cn_onnx_export(ctx, net, NULL, 0, path) ? read_all(path, len) : NULL;
    CHECK(bytes != NULL);
    cn_net_destroy(net);
    test_rmtree(dir);
    cn_ctx_destroy(ctx);
    return bytes;
}

static void replace_all(char *bytes, size_t len, const char *from, const char *to)
{
    size_t n = strlen(from);
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(bytes + i, from, n)) memcpy(bytes + i, to, n);
}

static void import_errors(void)
{
    size_t len = 0;
    char *bytes = exported(0, &len);
    cn_onnx_imported r;
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    if (!bytes) goto done;
    /* cut short: protobuf-c refuses it */
    CHECK_INT(cn_onnx_import(ctx, bytes, len / 2, "m.onnx", NULL, &r), CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "m.onnx: not an ONNX model");
    CHECK(r.net == NULL);
    CHECK_INT(cn_onnx_import(ctx, "\x0a\xff\xff\xff\xff\x0f", 6, "m.onnx", NULL, &r), CN_E_FORMAT);
    CHECK_INT(cn_onnx_import(ctx, "", 0, "m.onnx", NULL, &r), CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "no graph");
    /* an op convnet has not: the node, its op type, and the list */
    char *bad = malloc(len);
    memcpy(bad, bytes, len);
    replace_all(bad, len, "Relu", "Celu");
    CHECK_INT(cn_onnx_import(ctx, bad, len, "m.onnx", NULL, &r), CN_E_UNSUPPORTED);
    CHECK_CONTAINS(cn_ctx_message(ctx), "m.onnx: node 2 'relu1' (Celu): op type not supported; convnet imports Conv, "
                                        "MaxPool, AveragePool, GlobalAveragePool, Relu");
    /* a value no node writes */
    memcpy(bad, bytes, len);
    replace_all(bad, len, "\n\nconv1.bias", "\n\nconv9.bias"); /* Conv's input 2, no initializer of that name */
    CHECK(cn_onnx_import(ctx, bad, len, "m.onnx", NULL, &r) != CN_OK);
    CHECK_CONTAINS(cn_ctx_message(ctx), "node 0 'conv1' (Conv)");
    free(bad);
    /* messages nested 30,001 deep in 400 KB (graph, node, attribute, graph, ...): protobuf-c would
     * recurse through all of them; refused before */
    enum { DEPTH = 30000 };
    uint8_t *deep = malloc(16 * (3 * DEPTH + 1)), *p = deep, (*pre)[12] = malloc(12 * (3 * DEPTH + 1));
    int *pre_len = malloc(sizeof(int) * (3 * DEPTH + 1));
    size_t size = 0;
    static const int tags[3] = { 6, 5, 1 }; /* AttributeProto.g, NodeProto.attribute, GraphProto.node */
    for (int k = 0; k <= 3 * DEPTH; k++) { /* inside out: each prefix is a key and the length within */
        int tag = k == 3 * DEPTH ? 7 : tags[k % 3], n = 0;
        pre[k][n++] = (uint8_t)(tag << 3 | 2);
        for (size_t v = size;; v >>= 7) {
            pre[k][n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
            if (v < 0x80) break;
        }
        pre_len[k] = n;
        size += (size_t)n;
    }
    for (int k = 3 * DEPTH; k >= 0; k--) {
        memcpy(p, pre[k], (size_t)pre_len[k]);
        p += pre_len[k];
    }
    CHECK_INT(cn_onnx_import(ctx, deep, (size_t)(p - deep), "deep.onnx", NULL, &r), CN_E_FORMAT);
    CHECK_CONTAINS(cn_ctx_message(ctx), "deep.onnx: messages nested more than 32 deep");
    free(deep);
    free(pre);
    free(pre_len);
done:
    free(bytes);
    cn_ctx_destroy(ctx);
}

static void alloc_sweep_of(int k);

/* every allocation of an import may fail: a clean error, nothing leaked (nets[0]; the decoder,
 * whose crops parse the layers before them; the norms, read by patterns) */
static void import_alloc_sweep(void)
{
    for (int k = 0; k < N_NETS; k++)
        if (!k || !strcmp(nets[k].name, "decoder") || !strcmp(nets[k].name, "norms")) alloc_sweep_of(k);
}

static void alloc_sweep_of(int k)
{
    size_t len = 0;
    char *bytes = exported(k, &len);
    fa_sweep s;
    for (fa_sweep_start(&s); bytes && fa_sweep_next(&s, 5000);) {
        cn_onnx_import_options opt = { .fold_bn = 1 };
        cn_onnx_imported r;
        cn_status st = cn_onnx_import(s.ctx, bytes, len, "m.onnx", &opt, &r);
        int injected = fa_sweep_injected(&s);
        if (injected && st == CN_OK) test_fail(__FILE__, __LINE__, "allocation %ld failed, import succeeded", s.n);
        if (st && !*cn_ctx_message(s.ctx)) test_fail(__FILE__, __LINE__, "allocation %ld: no message", s.n);
        cn_onnx_imported_free(s.ctx, &r);
        fa_sweep_end(&s);
        if (s.fa.live || s.fa.bad_free) test_fail(__FILE__, __LINE__, "allocation %ld: %ld leaked", s.n, s.fa.live);
    }
    CHECK(s.done);
    free(bytes);
}

static const test_case cases[] = {
    { "every op of ops.def has an ONNX row and is in an exported net", every_op_has_a_row },
    { "export then import (kept, folded) gives the same outputs", round_trip },
    { "broken and unsupported models fail naming the problem", import_errors },
    { "allocation failures during an import", import_alloc_sweep },
};

/* ---- modes for tests/onnx_test.sh ---------------------------------------------------------------- */

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;
    if (f && fclose(f)) ok = 0;
    return ok ? 0 : 1;
}

static int write_nets(const char *dir)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    int rc = 0;
    char path[4200];
    for (int k = 0; k < N_NETS && !rc; k++) {
        cn_net *net = make_net(ctx, nets[k].spec);
        int64_t n, ny;
        float *x = net ? random_input(net, ctx, &n) : NULL;
        cn_layer_info in;
        snprintf(path, sizeof path, "%s/%s.onnx", dir, nets[k].name);
        if (!x || cn_net_forward(ctx, net, x, BATCH, 0) || cn_onnx_export(ctx, net, NULL, 0, path)) {
            fprintf(stderr, "%s: %s\n", nets[k].name, cn_ctx_message(ctx));
            rc = 1;
        } else {
            const float *y = cn_net_output(net, &ny);
            cn_net_layer(ctx, net, 0, 1, &in);
            char shape[64];
            int m = snprintf(shape, sizeof shape, "%d %lld %lld %lld\n", BATCH, (long long)in.c, (long long)in.h,
                             (long long)in.w);
            snprintf(path, sizeof path, "%s/%s.x.bin", dir, nets[k].name);
            rc |= write_file(path, x, sizeof(float) * (size_t)n);
            snprintf(path, sizeof path, "%s/%s.y.bin", dir, nets[k].name);
            rc |= write_file(path, y, sizeof(float) * (size_t)ny);
            snprintf(path, sizeof path, "%s/%s.x.shape", dir, nets[k].name);
            rc |= write_file(path, shape, (size_t)m);
        }
        free(x);
        cn_net_destroy(net);
    }
    cn_ctx_destroy(ctx);
    return rc;
}

static int check_ckpt(const char *ckpt, const char *xs, const char *ys, const char *ns, const char *tols)
{
    cn_ctx *ctx;
    cn_ctx_create(NULL, &ctx);
    cn_checkpoint *ck = NULL;
    cn_net *net = NULL;
    size_t lx = 0, ly = 0;
    char *x = read_all(xs, &lx), *y = read_all(ys, &ly);
    int64_t batch = atoll(ns), ny = 0;
    double tol = atof(tols);
    int rc = 1;
    if (!x || !y) fprintf(stderr, "cannot read %s or %s\n", xs, ys);
    else if (cn_checkpoint_read(ctx, ckpt, &ck) || cn_checkpoint_net(ctx, ck, &net) ||
             cn_net_forward(ctx, net, (const float *)x, batch, 0))
        fprintf(stderr, "%s\n", cn_ctx_message(ctx));
    else {
        const float *out = cn_net_output(net, &ny);
        if ((size_t)ny * sizeof(float) != ly) {
            fprintf(stderr, "convnet gives %lld values, the reference %zu\n", (long long)ny, ly / sizeof(float));
        } else {
            double e = rel_err(out, (const float *)y, ny);
            printf("%lld values, max rel err %.2e (tolerance %g): %s\n", (long long)ny, e, tol, e <= tol ? "ok" : "FAIL");
            rc = !(e <= tol);
        }
    }
    free(x);
    free(y);
    cn_net_destroy(net);
    cn_checkpoint_destroy(ck);
    cn_ctx_destroy(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write")) return write_nets(argv[2]);
    if (argc == 7 && !strcmp(argv[1], "--check")) return check_ckpt(argv[2], argv[3], argv[4], argv[5], argv[6]);
    if (argc > 1) {
        fprintf(stderr, "usage: test_onnx [--write DIR | --check CKPT X Y N TOL]\n");
        return 2;
    }
    return run_tests(cases, (int)(sizeof cases / sizeof cases[0]));
}
