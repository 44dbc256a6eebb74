/* test_torch_parity.c — convnet's training engine against PyTorch: for every case written by
 * tests/gen_torch_parity.py into tests/parity/<case>.bin (spec, loss, optimizer, input, weights,
 * and what PyTorch computed), build the net, set the same weights, run forward, loss, backward
 * and the optimizer steps on the same batch, and compare every tensor: the first output, dL/dx,
 * every weight gradient, the loss and learning rate of each step, every tensor after the steps
 * (batch-norm running statistics included) and an evaluation-mode output after them.
 *
 * Relative error of a tensor: max |got - want| / max(max |want|, 1e-6), at most 1e-4.
 * A missing file, a missing record or a record the net does not have fails the case.
 *
 * File format (little-endian; the generator's docstring is the reference):
 *     "CNPARITY" | u32 version (1) | u32 records | records
 *     record: u32 name length, name bytes | u32 kind (0 float32, 1 text) | u32 rank |
 *             rank x i64 dims | data (prod(dims) float32, or dims[0] bytes of text)
 *
 * Usage: test_torch_parity [CASE...] (no argument: every case). Run from the repository root. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convnet.h"
#include "harness.h"

#define PARITY_DIR "tests/parity/"
#define TOL 1e-4
#define MAX_RANK 8

/* ---- reading a .bin ------------------------------------------------------------------------ */

typedef struct {
    char *name;
    int kind;      /* 0: float32 tensor, 1: text */
    int rank;
    int64_t dims[MAX_RANK];
    int64_t count; /* values, or bytes of text */
    float *data;
    char *text;    /* NUL-terminated */
    int used;
} record;

typedef struct {
    record *r;
    int n;
} parity_file;

static void free_file(parity_file *pf)
{
    for (int i = 0; i < pf->n; i++) free(pf->r[i].name), free(pf->r[i].data), free(pf->r[i].text);
    free(pf->r);
    pf->r = NULL, pf->n = 0;
}

typedef struct {
    const unsigned char *p;
    size_t left;
} cursor;

static int take(cursor *c, void *dst, size_t n)
{
    if (n > c->left) return 0;
    memcpy(dst, c->p, n);
    c->p += n, c->left -= n;
    return 1;
}

static int take_u32(cursor *c, uint32_t *v)
{
    unsigned char b[4];
    if (!take(c, b, 4)) return 0;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 1;
}

static int take_i64(cursor *c, int64_t *v)
{
    unsigned char b[8];
    uint64_t u = 0;
    if (!take(c, b, 8)) return 0;
    for (int i = 7; i >= 0; i--) u = u << 8 | b[i];
    *v = (int64_t)u;
    return 1;
}

static int take_f32(cursor *c, float *v)
{
    uint32_t u;
    if (!take_u32(c, &u)) return 0;
    memcpy(v, &u, sizeof *v);
    return 1;
}

/* Reads path into pf; on any problem reports it and returns 0. */
static int read_file(const char *path, parity_file *pf)
{
    memset(pf, 0, sizeof *pf);
    FILE *f = fopen(path, "rb");
    if (!f) {
        test_fail(__FILE__, __LINE__, "%s: cannot open (regenerate with /usr/bin/python3 tests/gen_torch_parity.py)",
                  path);
        return 0;
    }
    unsigned char *buf = NULL;
    size_t size = 0, cap = 0, got;
    do {
        if (size == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        got = fread(buf + size, 1, cap - size, f);
        size += got;
    } while (got > 0);
    fclose(f);
    cursor c = { buf, size };
    char magic[8];
    uint32_t version = 0, count = 0;
    const char *why = NULL;
    if (!buf || !take(&c, magic, 8) || memcmp(magic, "CNPARITY", 8) || !take_u32(&c, &version) || version != 1 ||
        !take_u32(&c, &count) || count > 10000)
        why = "bad header (magic, version or record count)";
    if (!why && !(pf->r = calloc(count ? count : 1, sizeof *pf->r))) why = "out of memory";
    for (uint32_t i = 0; !why && i < count; i++) {
        record *r = &pf->r[pf->n++];
        uint32_t len, kind, rank;
        if (!take_u32(&c, &len) || len == 0 || len > 256 || !(r->name = calloc(len + 1, 1)) ||
            !take(&c, r->name, len) || !take_u32(&c, &kind) || kind > 1 || !take_u32(&c, &rank) ||
            rank > MAX_RANK || (kind == 1 && rank != 1)) {
            why = "bad record header";
            break;
        }
        r->kind = (int)kind, r->rank = (int)rank, r->count = 1;
        for (uint32_t d = 0; d < rank; d++)
            if (!take_i64(&c, &r->dims[d]) || r->dims[d] < 0 || r->dims[d] > (int64_t)size ||
                (r->count *= r->dims[d]) > (int64_t)size) {
                why = "bad dimensions";
                break;
            }
        if (why) break;
        if (kind == 1) {
            if (!(r->text = calloc((size_t)r->count + 1, 1)) || !take(&c, r->text, (size_t)r->count)) why = "bad text";
            continue;
        }
        if (!(r->data = malloc((size_t)(r->count ? r->count : 1) * sizeof(float)))) why = "out of memory";
        for (int64_t j = 0; !why && j < r->count; j++)
            if (!take_f32(&c, &r->data[j])) why = "truncated data";
    }
    if (!why && c.left) why = "trailing bytes";
    free(buf);
    if (why) {
        test_fail(__FILE__, __LINE__, "%s: %s (record %d)", path, why, pf->n);
        free_file(pf);
        return 0;
    }
    return 1;
}

static record *find(parity_file *pf, const char *name)
{
    for (int i = 0; i < pf->n; i++)
        if (!strcmp(pf->r[i].name, name)) return &pf->r[i];
    return NULL;
}

/* The record `name` of the wanted kind, or a failure naming what is missing. */
static record *need(parity_file *pf, const char *cname, const char *name, int kind)
{
    record *r = find(pf, name);
    if (!r) test_fail(__FILE__, __LINE__, "%s: record '%s' is missing", cname, name);
    else if (r->kind != kind) {
        test_fail(__FILE__, __LINE__, "%s: record '%s' has the wrong kind", cname, name);
        r = NULL;
    }
    if (r) r->used = 1;
    return r;
}

/* ---- the case's configuration (the "config" record) --------------------------------------- */

typedef struct {
    cn_loss_kind loss;
    double smoothing;
    cn_optim_config opt;
    int steps;
} case_config;

static int parse_config(const char *cname, const char *text, case_config *cc)
{
    memset(cc, 0, sizeof *cc);
    cc->steps = 3;
    cc->loss = (cn_loss_kind)-1;
    char key[32], val[64];
    int kind = -1, consumed = 0;
    cn_optim_config o;
    cn_optim_defaults(&o, CN_OPTIM_SGD);
    /* the optimizer kind first: its defaults are the base the other keys change */
    const char *p = strstr(text, "optim=");
    static const char *kinds[] = { "sgd", "momentum", "nesterov", "adam", "adamw" };
    if (p && sscanf(p, "optim=%63s", val) == 1)
        for (int k = 0; k < 5; k++)
            if (!strcmp(val, kinds[k])) kind = k;
    if (kind < 0) {
        test_fail(__FILE__, __LINE__, "%s: config has no known optim=: %s", cname, text);
        return 0;
    }
    cn_optim_defaults(&o, (cn_optim_kind)kind);
    o.weight_decay = 0;
    for (p = text; sscanf(p, " %31[^= ]=%63s%n", key, val, &consumed) == 2; p += consumed) {
        double v = strtod(val, NULL);
        if (!strcmp(key, "loss")) {
            static const struct { const char *name; cn_loss_kind k; } losses[] = {
                { "mse", CN_LOSS_MSE }, { "ce", CN_LOSS_CE }, { "ce-logits", CN_LOSS_CE_LOGITS },
                { "bce-logits", CN_LOSS_BCE_LOGITS } };
            for (size_t k = 0; k < sizeof losses / sizeof losses[0]; k++)
                if (!strcmp(val, losses[k].name)) cc->loss = losses[k].k;
        } else if (!strcmp(key, "optim")) {
        } else if (!strcmp(key, "smoothing")) cc->smoothing = v;
        else if (!strcmp(key, "lr")) o.lr = v;
        else if (!strcmp(key, "momentum")) o.momentum = v;
        else if (!strcmp(key, "beta1")) o.beta1 = v;
        else if (!strcmp(key, "beta2")) o.beta2 = v;
        else if (!strcmp(key, "eps")) o.eps = v;
        else if (!strcmp(key, "wd")) o.weight_decay = v;
        else if (!strcmp(key, "l1")) o.l1 = v;
        else if (!strcmp(key, "clip")) o.clip_norm = v;
        else if (!strcmp(key, "total")) o.total_steps = (int64_t)v;
        else if (!strcmp(key, "warmup")) o.warmup_steps = (int64_t)v;
        else if (!strcmp(key, "pct_start")) o.pct_start = v;
        else if (!strcmp(key, "div_factor")) o.div_factor = v;
        else if (!strcmp(key, "final_div_factor")) o.final_div_factor = v;
        else if (!strcmp(key, "steps")) cc->steps = (int)v;
        else if (!strcmp(key, "schedule")) {
            if (!strcmp(val, "constant")) o.schedule = CN_SCHED_CONSTANT;
            else if (!strcmp(val, "cosine")) o.schedule = CN_SCHED_COSINE;
            else if (!strcmp(val, "onecycle")) o.schedule = CN_SCHED_ONECYCLE;
            else key[0] = 0;
        } else key[0] = 0;
        if (!key[0]) {
            test_fail(__FILE__, __LINE__, "%s: config: unknown key or value near '%s'", cname, p);
            return 0;
        }
    }
    if ((int)cc->loss < 0 || cc->steps < 1 || cc->steps > 100) {
        test_fail(__FILE__, __LINE__, "%s: config needs a known loss= and 1 <= steps <= 100: %s", cname, text);
        return 0;
    }
    cc->opt = o;
    return 1;
}

/* ---- comparing ---------------------------------------------------------------------------- */

static double overall_worst;
static char overall_where[160];

typedef struct {
    const char *cname;
    double worst;
    char where[96];
} case_state;

/* Compares count values of got with record `name`; the record's count must match. */
static void compare(case_state *cs, parity_file *pf, const char *name, const float *got, int64_t count)
{
    record *r = need(pf, cs->cname, name, 0);
    if (!r) return;
    if (!got) {
        test_fail(__FILE__, __LINE__, "%s: %s: convnet has no values", cs->cname, name);
        return;
    }
    if (r->count != count) {
        test_fail(__FILE__, __LINE__, "%s: %s: %lld values in PyTorch, %lld in convnet", cs->cname, name,
                  (long long)r->count, (long long)count);
        return;
    }
    double scale = 0, diff = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < count; i++) scale = fmax(scale, fabs((double)r->data[i]));
    for (int64_t i = 0; i < count; i++) {
        double d = fabs((double)got[i] - (double)r->data[i]);
        if (!(d <= diff)) diff = d, at = i; /* NaN wins */
    }
    double rel = diff / fmax(scale, 1e-6);
    if (!(rel <= cs->worst)) cs->worst = rel, snprintf(cs->where, sizeof cs->where, "%s", name);
    if (!(rel <= overall_worst))
        overall_worst = rel, snprintf(overall_where, sizeof overall_where, "%s %s", cs->cname, name);
    if (!(rel <= TOL))
        test_fail(__FILE__, __LINE__,
                  "%s: %s: relative error %.3g > %g; at [%lld] PyTorch %.9g, convnet %.9g (max |want| %.6g)",
                  cs->cname, name, rel, TOL, (long long)at, (double)r->data[at], (double)got[at], scale);
}

static int shape_matches(const record *r, int rank, const int64_t *shape)
{
    if (r->rank != rank) return 0;
    for (int i = 0; i < rank; i++)
        if (r->dims[i] != shape[i]) return 0;
    return 1;
}

/* A model case (a file of models/): its spec record must be the file as it is now, and the totals
 * of the PyTorch twin written beside it ("params=P trainable=T macs=M output=CxHxW", counted
 * from nn.Conv2d, nn.ConvTranspose2d and nn.Linear by hooks) must be convnet's. */
static void check_model(const char *cname, parity_file *pf, const record *spec, cn_ctx *ctx, const cn_net *net)
{
    record *file = find(pf, "model_file"), *twin = find(pf, "torch_totals");
    if (!file && !twin) return;
    if (!file || !twin || file->kind != 1 || twin->kind != 1) {
        test_fail(__FILE__, __LINE__, "%s: a model case needs both model_file and torch_totals", cname);
        return;
    }
    file->used = twin->used = 1;
    FILE *f = fopen(file->text, "rb");
    char *text = f ? malloc(1 << 20) : NULL;
    size_t len = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    if (f) fclose(f);
    if (text) text[len] = '\0';
    if (!text || strcmp(text, spec->text))
        test_fail(__FILE__, __LINE__, "%s: %s differs from the spec PyTorch saw (regenerate: /usr/bin/python3 "
                  "tests/gen_torch_parity.py %s)", cname, file->text, cname);
    free(text);
    long long p = -1, t = -1, m = -1, c = -1, h = -1, w = -1;
    if (sscanf(twin->text, "params=%lld trainable=%lld macs=%lld output=%lldx%lldx%lld", &p, &t, &m, &c, &h, &w) != 6) {
        test_fail(__FILE__, __LINE__, "%s: torch_totals '%s' unreadable", cname, twin->text);
        return;
    }
    cn_totals tot;
    cn_layer_info out;
    if (cn_net_totals(ctx, net, 1, &tot) != CN_OK ||
        cn_net_layer(ctx, net, cn_net_layer_count(net) - 1, 1, &out) != CN_OK) {
        test_fail(__FILE__, __LINE__, "%s: %s", cname, cn_ctx_message(ctx));
        return;
    }
    CHECK_INT(tot.params, p);
    CHECK_INT(tot.trainable, t);
    CHECK_INT(tot.macs, m);
    CHECK(out.c == c && out.h == h && out.w == w);
    printf("     %-22s PyTorch twin: %lld params (%lld trainable), %lld MACs, output %lldx%lldx%lld\n", cname, p, t, m, c,
           h, w);
}

/* ---- one case ------------------------------------------------------------------------------- */

static void run_case(const char *cname)
{
    char path[256], name[300];
    parity_file pf;
    case_state cs = { cname, 0, "" };
    cn_ctx *ctx = NULL;
    cn_net *net = NULL;
    cn_optim *opt = NULL;
    float *dout = NULL;
    int32_t *labels = NULL;
    snprintf(path, sizeof path, PARITY_DIR "%s.bin", cname);
    if (!read_file(path, &pf)) return;
    case_config cc;
    record *spec = need(&pf, cname, "spec", 1), *config = need(&pf, cname, "config", 1);
    record *x = need(&pf, cname, "x", 0), *target = need(&pf, cname, "target", 0);
    if (!spec || !config || !x || !target || !parse_config(cname, config->text, &cc)) goto done;
    if (cn_ctx_create(NULL, &ctx) != CN_OK) goto done;
    if (cn_net_parse(ctx, spec->text, strlen(spec->text), cname, &net) != CN_OK ||
        cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1) != CN_OK) {
        test_fail(__FILE__, __LINE__, "%s: %s", cname, cn_ctx_message(ctx));
        goto done;
    }

    check_model(cname, &pf, spec, ctx, net);

    /* the input and target shapes against the net's */
    cn_layer_info in, out;
    int last = cn_net_layer_count(net) - 1;
    if (cn_net_layer(ctx, net, 0, 1, &in) != CN_OK || cn_net_layer(ctx, net, last, 1, &out) != CN_OK) goto done;
    int64_t batch = x->rank == 4 ? x->dims[0] : 0, classes = out.c * out.h * out.w;
    int64_t xshape[4] = { batch, in.c, in.h, in.w }, tshape[2] = { batch, classes };
    if (batch < 1 || !shape_matches(x, 4, xshape) || !shape_matches(target, 2, tshape)) {
        test_fail(__FILE__, __LINE__, "%s: x or target do not fit the net (input %lldx%lldx%lld, %lld outputs)", cname,
                  (long long)in.h, (long long)in.w, (long long)in.c, (long long)classes);
        goto done;
    }

    /* the weights: every tensor of the net from its record, of the same shape */
    int nt = cn_net_tensor_count(net);
    for (int i = 0; i < nt; i++) {
        cn_tensor t;
        if (cn_net_tensor(ctx, net, i, &t) != CN_OK) goto done;
        record *r = need(&pf, cname, t.name, 0);
        if (!r) continue;
        if (!shape_matches(r, t.rank, t.shape)) {
            test_fail(__FILE__, __LINE__, "%s: %s: shape differs from PyTorch's", cname, t.name);
            continue;
        }
        memcpy(t.data, r->data, (size_t)t.count * sizeof(float));
    }
    if (test_failures) goto done;

    if (cn_optim_create(ctx, net, &cc.opt, &opt) != CN_OK) {
        test_fail(__FILE__, __LINE__, "%s: %s", cname, cn_ctx_message(ctx));
        goto done;
    }
    dout = malloc((size_t)(batch * classes) * sizeof(float));
    labels = malloc((size_t)batch * sizeof(int32_t));
    if (!dout || !labels) goto done;
    /* the cross-entropies go through cn_train_step with labels (the one-hot rows' argmax) */
    int via_step = cc.loss == CN_LOSS_CE || cc.loss == CN_LOSS_CE_LOGITS;
    for (int64_t i = 0; i < batch; i++) {
        int32_t best = 0;
        for (int64_t j = 1; j < classes; j++)
            if (target->data[i * classes + j] > target->data[i * classes + best]) best = (int32_t)j;
        labels[i] = best;
    }
    float losses[100], lrs[100];
    for (int s = 0; s < cc.steps; s++) {
        double loss = NAN;
        lrs[s] = (float)cn_optim_lr_at(&cc.opt, s);
        cn_status st;
        if (via_step) {
            cn_step_config sc = { cc.loss, cc.smoothing };
            st = cn_train_step(ctx, net, opt, &sc, x->data, labels, batch, &loss);
        } else {
            cn_net_zero_grad(net);
            st = cn_net_forward(ctx, net, x->data, batch, 1);
            if (!st)
                st = cn_loss_grad(ctx, cc.loss, target->data, cn_net_output(net, NULL), batch, classes, CN_REDUCE_MEAN,
                                  cc.smoothing, &loss, dout);
            if (!st) st = cn_net_backward(ctx, net, dout);
            if (!st) st = cn_optim_step(ctx, opt, net, NULL);
        }
        if (st) {
            test_fail(__FILE__, __LINE__, "%s: step %d: %s", cname, s, cn_ctx_message(ctx));
            goto done;
        }
        losses[s] = (float)loss;
        if (s > 0) continue;
        /* the first step's forward and backward (the update leaves the output and gradients) */
        int64_t ycount;
        const float *y = cn_net_output(net, &ycount);
        compare(&cs, &pf, "y", y, ycount);
        compare(&cs, &pf, "dx", cn_net_input_grad(net), batch * in.c * in.h * in.w);
        for (int i = 0; i < nt; i++) {
            cn_tensor t;
            cn_net_tensor(ctx, net, i, &t);
            if (!t.trainable) continue;
            snprintf(name, sizeof name, "grad/%s", t.name);
            compare(&cs, &pf, name, t.grad, t.count);
        }
    }
    compare(&cs, &pf, "losses", losses, cc.steps);
    compare(&cs, &pf, "lrs", lrs, cc.steps);
    for (int i = 0; i < nt; i++) {
        cn_tensor t;
        cn_net_tensor(ctx, net, i, &t);
        snprintf(name, sizeof name, "final/%s", t.name);
        compare(&cs, &pf, name, t.data, t.count);
    }
    if (cn_net_forward(ctx, net, x->data, batch, 0) != CN_OK) {
        test_fail(__FILE__, __LINE__, "%s: eval forward: %s", cname, cn_ctx_message(ctx));
        goto done;
    }
    int64_t ycount;
    const float *y = cn_net_output(net, &ycount);
    compare(&cs, &pf, "y_eval", y, ycount);

    /* a record nobody read is a tensor or result convnet does not have */
    for (int i = 0; i < pf.n; i++)
        if (!pf.r[i].used)
            test_fail(__FILE__, __LINE__, "%s: record '%s' matches nothing in convnet", cname, pf.r[i].name);
    printf("     %-22s worst relative error %.3g (%s)\n", cname, cs.worst, cs.where);
done:
    free(dout);
    free(labels);
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    free_file(&pf);
}

/* ---- the cases (the same list as CASES in tests/gen_torch_parity.py) ------------------------ */

#define CASES(X)                                                                                           \
    X(conv_stride_pad) X(conv_groups_dilation) X(conv_same_rect) X(maxpool_pad_ceil) X(avgpool_pad_ceil)      \
    X(minpool_pad_ceil) X(pool_rect_ceil_drop) X(globalavgpool) X(activations) X(softmax_ce)                \
    X(batchnorm_train) X(dense_map) X(concat) X(add_residual) X(opt_sgd) X(opt_momentum) X(opt_nesterov)    \
    X(opt_sgd_wd) X(opt_adam) X(opt_adam_l2) X(opt_adamw) X(opt_clip) X(opt_l1) X(sched_onecycle)           \
    X(sched_cosine_warmup) X(loss_ce_smooth) X(loss_bce_logits) X(loss_mse) X(full_net)                    \
    X(upsample_nearest) X(upsample_bilinear) X(deconv) X(mul_se) X(pad_crop) X(model_se_resnet) X(model_unet_small) \
    X(act_hard) X(act_smooth) X(prelu) X(norms) X(batchnorm_no_affine) X(pool_dilation)                   \
    X(avgpool_no_pad_count) X(adaptive_globalmax) X(mobilenetv2_block) X(channels) X(convnext_block)

#define DEFINE(c) static void test_##c(void) { run_case(#c); }
CASES(DEFINE)
#undef DEFINE

/* layer type t's name: the first word of its usage ("conv FILTERS KxK ...") */
static const char *type_name(int t, char name[32])
{
    snprintf(name, 32, "%.*s", (int)strcspn(cn_layer_type_usage(t), " "), cn_layer_type_usage(t));
    return name;
}

/* a new op of ops.def without a case in tests/parity/ fails here; dropout is the one op
 * PyTorch cannot be compared with (its masks come from another random stream: test_gradcheck
 * checks convnet's by hand) */
static void test_every_op_has_a_case(void)
{
#define NAME(c) #c,
    static const char *const names[] = { CASES(NAME) };
#undef NAME
    static const char *const exempt[] = { "dropout" };
    int covered[64] = { 0 }, n_types = cn_layer_type_count();
    cn_ctx *ctx = NULL;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK && n_types <= 64);
    char name[32];
    for (size_t c = 0; ctx && c < sizeof names / sizeof names[0]; c++) {
        char path[256];
        parity_file pf = { NULL, 0 };
        snprintf(path, sizeof path, PARITY_DIR "%s.bin", names[c]);
        if (!read_file(path, &pf)) continue; /* its own case fails */
        record *spec = find(&pf, "spec");
        cn_net *net = NULL;
        if (spec && spec->kind == 1 && cn_net_parse(ctx, spec->text, strlen(spec->text), path, &net) == CN_OK)
            for (int i = 0; i < cn_net_layer_count(net); i++) {
                cn_layer_info info;
                cn_net_layer(ctx, net, i, 1, &info);
                for (int t = 0; t < n_types; t++) covered[t] |= !strcmp(type_name(t, name), info.type);
            }
        cn_net_destroy(net);
        free_file(&pf);
    }
    for (int t = 0; t < n_types; t++) {
        type_name(t, name);
        int skip = 0;
        for (size_t e = 0; e < sizeof exempt / sizeof exempt[0]; e++) skip |= !strcmp(name, exempt[e]);
        if (!covered[t] && !skip) test_fail(__FILE__, __LINE__, "op '%s' has no PyTorch parity case", name);
    }
    cn_ctx_destroy(ctx);
}

static void test_overall(void)
{
    printf("     overall worst relative error %.3g (%s), tolerance %g\n", overall_worst, overall_where, TOL);
    CHECK(overall_worst <= TOL);
}

#define ENTRY(c) { #c, test_##c },
static const test_case cases[] = { CASES(ENTRY) { "every op has a parity case", test_every_op_has_a_case },
                                   { "overall", test_overall } };
#undef ENTRY

int main(int argc, char **argv)
{
    int n = (int)(sizeof cases / sizeof cases[0]);
    if (argc < 2) return run_tests(cases, n);
    /* the named cases only, then the overall line */
    test_case picked[sizeof cases / sizeof cases[0]];
    int k = 0;
    for (int a = 1; a < argc; a++) {
        int found = 0;
        for (int i = 0; i < n - 1; i++)
            if (!strcmp(argv[a], cases[i].name) && k < n - 1) picked[k++] = cases[i], found = 1;
        if (!found) {
            fprintf(stderr, "test_torch_parity: no case '%s'\n", argv[a]);
            return 2;
        }
    }
    picked[k++] = cases[n - 1];
    return run_tests(picked, k);
}
