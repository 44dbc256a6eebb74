/* net.c — the public net API: parse a spec, read each layer's numbers, explain them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "model_impl.h"

static void net_free(cn_ctx *tmp, cn_net *net)
{
    cn_exec_free(tmp, &net->ex);
    cn_free(tmp, (void *)net->shards.len);
    cn_nodes_free(tmp, net->nodes, net->n);
    cn_free(tmp, net->file);
    cn_free(tmp, net->text);
    cn_free(tmp, net);
}

void cn_net_destroy(cn_net *net)
{
    if (!net) return;
    cn_ctx tmp = { .alloc = net->alloc };
    net_free(&tmp, net);
}

/* Every input written out by name, also the implicit "previous line". */
static cn_status name_all_inputs(cn_ctx *ctx, cn_net *net)
{
    for (int i = 0; i < net->n; i++) {
        cn_node *n = &net->nodes[i];
        if (n->n_in == 0 || n->in_names) continue;
        if (!(n->in_names = cn_calloc(ctx, 1, sizeof(char *)))) return CN_E_NOMEM;
        if (!(n->in_cols = cn_calloc(ctx, 1, sizeof(int)))) return CN_E_NOMEM;
        if (!(n->in_names[0] = cn_strdup(ctx, net->nodes[n->in[0]].name))) return CN_E_NOMEM;
        n->in_cols[0] = n->col;
    }
    return CN_OK;
}

cn_status cn_net_parse(cn_ctx *ctx, const char *text, size_t len, const char *file_name, cn_net **out)
{
    if (!ctx || !out || (!text && len)) return ctx ? cn_fail(ctx, CN_E_ARG, "cn_net_parse: NULL argument") : CN_E_ARG;
    *out = NULL;
    cn_ctx_clear(ctx);
    cn_net *net = cn_calloc(ctx, 1, sizeof *net);
    if (!net) return CN_E_NOMEM;
    net->alloc = ctx->alloc;
    cn_status st = CN_E_NOMEM;
    /* a UTF-8 byte-order mark (Windows' Notepad writes one) is no text: columns count after it */
    if (text && len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) text += 3, len -= 3;
    if (!(net->file = cn_strdup(ctx, file_name ? file_name : "-e"))) goto fail;
    if (!(net->text = cn_strndup(ctx, text ? text : "", len))) goto fail;
    if ((st = cn_spec_parse(ctx, net->text, len, net->file, &net->nodes, &net->n))) goto fail;
    if ((st = cn_graph_build(ctx, net->file, net->nodes, net->n))) goto fail;
    if ((st = name_all_inputs(ctx, net))) goto fail;
    *out = net;
    return CN_OK;
fail:
    net_free(ctx, net);
    return st;
}

cn_status cn_net_load_spec(cn_ctx *ctx, const char *path, cn_net **out)
{
    if (!ctx || !path || !out) return ctx ? cn_fail(ctx, CN_E_ARG, "cn_net_load_spec: NULL argument") : CN_E_ARG;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return cn_fail(ctx, CN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    cn_status st = CN_OK;
    for (;;) {
        if (len == cap) {
            if (cap >= CN_MAX_SPEC_BYTES) {
                st = cn_fail(ctx, CN_E_FORMAT, "%s: larger than %zu MiB; not a spec", path, CN_MAX_SPEC_BYTES >> 20);
                break;
            }
            size_t ncap = cap ? 2 * cap : 4096;
            char *grown = cn_realloc(ctx, buf, ncap);
            if (!grown) { st = CN_E_NOMEM; break; }
            buf = grown;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) st = cn_fail(ctx, CN_E_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!st) st = cn_net_parse(ctx, buf, len, path, out);
    cn_free(ctx, buf);
    if (st == CN_E_PARSE && cn_path_is_onnx(path)) st = cn_fail(ctx, CN_E_PARSE, CN_ONNX_HINT, path, "spec", path);
    return st;
}

cn_status cn_net_with_outputs(cn_ctx *ctx, const cn_net *net, int64_t outputs, cn_net **out)
{
    if (!ctx) return CN_E_ARG;
    if (!net || !out || outputs < 1) return cn_fail(ctx, CN_E_ARG, "cn_net_with_outputs: bad arguments");
    *out = NULL;
    int last = net->n - 1;
    while (last > 0 && !net->nodes[last].trainable) last--;
    const cn_node *d = &net->nodes[last], *o = &net->nodes[net->n - 1];
    int ki = cn_op_key_index(d->op, "units");
    if (last < 1 || ki < 0 || !d->key_col[ki] || o->out.c * o->out.h * o->out.w != d->a.units)
        return cn_fail(ctx, CN_E_ARG, "%s: its last layer with weights (%s) is not a dense layer giving the net's "
                       "output: give a spec whose output has %lld values", net->file, last > 0 ? d->name : "none",
                       (long long)outputs);
    /* the units as written: "dense 10" or "dense units=10", at the key's line and column */
    const char *t = net->text, *end = t + strlen(t);
    for (int line = 1; line < d->line && t < end; t++) line += *t == '\n';
    t += d->key_col[ki] - 1;
    if (!strncmp(t, "units=", 6)) t += 6;
    size_t digits = strspn(t, "0123456789");
    char num[32];
    int nlen = snprintf(num, sizeof num, "%lld", (long long)outputs);
    size_t head = (size_t)(t - net->text), len = strlen(net->text) - digits + (size_t)nlen;
    char *text = cn_malloc(ctx, len + 1);
    if (!text) return CN_E_NOMEM;
    memcpy(text, net->text, head);
    memcpy(text + head, num, (size_t)nlen);
    memcpy(text + head + nlen, t + digits, strlen(t + digits) + 1);
    cn_status st = cn_net_parse(ctx, text, len, net->file, out);
    cn_free(ctx, text);
    return st;
}

int cn_net_layer_count(const cn_net *net) { return net ? net->n : 0; }
const char *cn_net_spec_text(const cn_net *net) { return net ? net->text : ""; }
const char *cn_net_file_name(const cn_net *net) { return net ? net->file : ""; }

int cn_net_is_chain(const cn_net *net)
{
    for (int i = 1; i < net->n; i++)
        if (net->nodes[i].n_in != 1 || net->nodes[i].in[0] != i - 1) return 0;
    return 1;
}

/* a / b rounded up, for a >= 0 and b >= 1, with no overflow where a saturated at INT64_MAX (a
 * receptive field past 64 bits) */
static int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

cn_status cn_net_layer(cn_ctx *ctx, const cn_net *net, int i, int64_t batch, cn_layer_info *out)
{
    memset(out, 0, sizeof *out);
    if (!net || i < 0 || i >= net->n || batch < 1)
        return cn_fail(ctx, CN_E_ARG, "cn_net_layer: layer %d of %d, batch %lld", i, net ? net->n : 0, (long long)batch);
    const cn_node *n = &net->nodes[i];
    int64_t macs;
    if (!cn_mul_ok(n->macs, batch, &macs))
        return cn_fail(ctx, CN_E_OVERFLOW, "%s: MACs at batch %lld overflow 64 bits", n->name, (long long)batch);
    *out = (cn_layer_info){
        .name = n->name, .type = n->op->name, .line = n->line, .n_inputs = n->n_in,
        .inputs = (const char *const *)n->in_names, .batch = batch, .c = n->out.c, .h = n->out.h, .w = n->out.w,
        .params = n->params, .trainable = n->trainable, .macs = macs, .rf_h = n->rf_h, .rf_w = n->rf_w,
        .jump_h = n->jump_h, .jump_w = n->jump_w, .col = n->col,
        .rf_exact_h = (double)n->rf_h, .rf_exact_w = (double)n->rf_w,
        .jump_exact_h = (double)n->jump_h, .jump_exact_w = (double)n->jump_w,
    };
    if (n->den_h > 1) {
        out->rf_h = ceil_div(n->rf_h, n->den_h), out->jump_h = ceil_div(n->jump_h, n->den_h);
        out->rf_exact_h /= (double)n->den_h, out->jump_exact_h /= (double)n->den_h;
    }
    if (n->den_w > 1) {
        out->rf_w = ceil_div(n->rf_w, n->den_w), out->jump_w = ceil_div(n->jump_w, n->den_w);
        out->rf_exact_w /= (double)n->den_w, out->jump_exact_w /= (double)n->den_w;
    }
    return CN_OK;
}

int cn_net_layer_key(const cn_net *net, int i, const char *key, double out[2])
{
    if (!net || i < 0 || i >= net->n || !key) return 0;
    const cn_node *n = &net->nodes[i];
    for (const cn_key *k = n->op->keys; k && k->name; k++) {
        if (strcmp(k->name, key)) continue;
        const char *field = (const char *)&n->a + k->offset;
        switch (k->type) {
        case CN_KT_INT: out[0] = (double)*(const int64_t *)field; return 1;
        case CN_KT_FLOAT: out[0] = *(const double *)field; return 1;
        case CN_KT_BOOL: out[0] = *(const int *)field; return 1;
        case CN_KT_PAIR: {
            const cn_pair *pr = (const cn_pair *)field;
            out[0] = (double)pr->h, out[1] = (double)pr->w;
            return 2;
        }
        case CN_KT_PAD: out[0] = (double)n->pad_t, out[1] = (double)n->pad_l; return 2; /* as resolved */
        default: return 0;
        }
    }
    return 0;
}

cn_status cn_net_totals(cn_ctx *ctx, const cn_net *net, int64_t batch, cn_totals *out)
{
    memset(out, 0, sizeof *out);
    cn_totals t = { 0, 0, 0 };
    for (int i = 0; i < net->n; i++) {
        cn_layer_info li;
        cn_status st = cn_net_layer(ctx, net, i, batch, &li);
        if (st) return st;
        if (!cn_add_ok(t.params, li.params, &t.params) || !cn_add_ok(t.trainable, li.trainable, &t.trainable) ||
            !cn_add_ok(t.macs, li.macs, &t.macs))
            return cn_fail(ctx, CN_E_OVERFLOW, "total parameters or MACs overflow 64 bits");
    }
    *out = t;
    return CN_OK;
}

size_t cn_net_explain(const cn_net *net, int i, int64_t batch, char *buf, size_t cap)
{
    cn_strbuf sb;
    cn_sb_init(&sb, buf, cap);
    if (!net || i < 0 || i >= net->n) return 0;
    const cn_node *n = &net->nodes[i];
    const cn_node *in[CN_MAX_INPUTS];
    for (int j = 0; j < n->n_in; j++) in[j] = &net->nodes[n->in[j]];
    n->op->explain(n, in, batch < 1 ? 1 : batch, &sb);
    return sb.len;
}
