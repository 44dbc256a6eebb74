/* onnx_import.c — an ONNX model as a convnet net: each node becomes a spec statement through its
 * row of the op table (onnx_ops.c), the spec is parsed as any other, and the parameters come
 * from the initializers. The file is untrusted: protobuf-c unpacks it through the context's
 * allocator (memory in proportion to its size); every tensor's type, dims and data size, every
 * attribute's type and count, every value a node reads are checked here, the shapes by the
 * spec parser, and each parameter's shape against the layer before any slab is allocated.
 * Covered by tests/test_onnx.c, tests/onnx_test.sh (PyTorch's exports) and fuzz/fuzz_onnx.c. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_impl.h"

/* name -> int, open addressing; keys are not owned */
typedef struct {
    const char **keys;
    int *vals;
    size_t cap; /* a power of two, at least twice the keys it may hold */
} name_map;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static cn_status map_init(cn_ctx *ctx, name_map *m, size_t n)
{
    m->cap = 16;
    while (m->cap < 2 * n + 16) m->cap *= 2;
    m->keys = cn_calloc(ctx, m->cap, sizeof *m->keys);
    m->vals = cn_calloc(ctx, m->cap, sizeof *m->vals);
    return m->keys && m->vals ? CN_OK : CN_E_NOMEM;
}

static void map_free(cn_ctx *ctx, name_map *m)
{
    cn_free(ctx, (void *)m->keys);
    cn_free(ctx, m->vals);
}

static size_t map_slot(const name_map *m, const char *key)
{
    size_t i = (size_t)fnv1a(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key)) i = (i + 1) & (m->cap - 1);
    return i;
}

/* the value, or -1 */
static int map_get(const name_map *m, const char *key)
{
    size_t i = map_slot(m, key);
    return m->keys[i] ? m->vals[i] : -1;
}

/* sets key (the caller sized the map for every key it puts) */
static void map_put(name_map *m, const char *key, int val)
{
    size_t i = map_slot(m, key);
    m->keys[i] = key;
    m->vals[i] = val;
}

#define MAX_LAYER_TENSORS 4

struct cn_onnx_layer {
    char *name;                  /* the spec's layer name */
    const char *type;
    char *args;                  /* "64 7x7 stride=2x2 ..." */
    int n_reads, *reads;         /* layer indices */
    int rank;                    /* 2 or 4 */
    int node;                    /* the ONNX node (-1: the graph input) */
    const char *value;           /* the ONNX value it writes */
    int bias_key;                /* -1: none; else 0/1 = bias=no/yes */
    int n_tensors;
    struct {
        const char *name;
        cn_onnx_tensor t;
        int transpose;
    } tensors[MAX_LAYER_TENSORS];
    int folded;                  /* bn[] holds a batch norm folded into this conv */
    cn_onnx_tensor bn[4];        /* scale, bias, mean, var */
    double bn_eps;
    int check_pads;              /* pad=same must give pads[] */
    int64_t pads[4];
    int check_end;               /* ceil=yes must give the output of end pads end[] (cn_onnx_end_pads) */
    int64_t end[2], span[2], stride[2];
};

struct cn_onnx_in {
    cn_ctx *ctx;
    const char *file;
    const cn_onnx_import_options *opt;
    Onnx__ModelProto *model;
    const Onnx__GraphProto *g;
    int64_t opset;
    int64_t batch;               /* the graph input's, CN_ONNX_BATCH when free */
    const Onnx__TensorProto **consts; /* the initializers, then the Constant nodes' values */
    int n_consts;
    name_map inits;              /* initializer or Constant output name -> index in consts */
    void **owned;                /* constants folded (onnx_fold.c), freed at the end */
    int n_owned;
    name_map padded;             /* value name -> pending zero padding (Pad before Conv or AveragePool) */
    struct pending_pad { int layer; int64_t p[4]; } *pads;
    int n_pads;
    name_map values;             /* value name -> layer */
    name_map uses;               /* value name -> times read (node inputs and graph outputs) */
    name_map pad_reads;          /* value name -> times read as input 0 of a Conv or an AveragePool */
    name_map reader, writer;     /* value name -> index of a node that reads it / that writes it */
    char *skip;                  /* per node: taken into a pattern (SiLU, GELU, GroupNorm) already */
    int64_t parse_budget;        /* statements cn_onnx_input_dims may still parse (linear in the file) */
    name_map names;              /* layer name -> layer */
    name_map negs;               /* value name -> layer whose output negated it is (Neg, MaxPool, Neg) */
    name_map lasts;              /* value name -> layer whose output it is in channels-last order, (N, H, W,
                                  * C): after a Transpose perm 0,2,3,1 (ConvNeXt's blocks) */
    cn_onnx_layer *layers;
    int n_layers, cap_layers;
    int node;                    /* the node being converted */
    int folded;
    cn_status st;
};

cn_status cn_onnx_in_status(const cn_onnx_in *in) { return in->st ? in->st : cn_ctx_status(in->ctx); }
int64_t cn_onnx_opset(const cn_onnx_in *in) { return in->opset; }
int cn_onnx_fold_bn_on(const cn_onnx_in *in) { return in->opt && in->opt->fold_bn; }
void cn_onnx_bias_key(cn_onnx_layer *l) { l->bias_key = 0; }

static cn_status in_fail(cn_onnx_in *in, cn_status st, const char *fmt, ...) CN_PRINTF(3, 4);
static cn_status in_fail(cn_onnx_in *in, cn_status st, const char *fmt, ...)
{
    char msg[CN_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return in->st = cn_fail(in->ctx, st, "%s: %s", in->file, msg);
}

/* a string of the file, safe to print and cut short */
static const char *shown(const char *s, char *buf, size_t cap)
{
    char esc[256];
    const char *e = cn_text_escape(s ? s : "", esc, sizeof esc);
    snprintf(buf, cap, "%.60s%s", e, strlen(e) > 60 ? "..." : "");
    return buf;
}

cn_status cn_onnx_node_fail(cn_onnx_in *in, const Onnx__NodeProto *node, const char *fmt, ...)
{
    char msg[CN_MSG_MAX / 2], a[80], b[80];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return in_fail(in, CN_E_UNSUPPORTED, "node %d '%s' (%s): %s", in->node, shown(node->name, a, sizeof a),
                   shown(node->op_type, b, sizeof b), msg);
}

/* ---- attributes and tensors ---------------------------------------------------------------------- */

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *node, const char *name)
{
    for (size_t k = 0; k < node->n_attribute; k++)
        if (node->attribute[k]->name && !strcmp(node->attribute[k]->name, name)) return node->attribute[k];
    return NULL;
}

static cn_status attr_type(cn_onnx_in *in, const Onnx__NodeProto *node, const Onnx__AttributeProto *a,
                           Onnx__AttributeProto__AttributeType want, const char *what)
{
    if (a->has_type && a->type != want) return cn_onnx_node_fail(in, node, "attribute %s is not %s", a->name, what);
    return CN_OK;
}

cn_status cn_onnx_get_int(cn_onnx_in *in, const Onnx__NodeProto *node, const char *name, int64_t *v)
{
    const Onnx__AttributeProto *a = find_attr(node, name);
    if (!a) return CN_OK;
    cn_status st = attr_type(in, node, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, "an integer");
    if (!st) *v = a->i;
    return st;
}

cn_status cn_onnx_get_float(cn_onnx_in *in, const Onnx__NodeProto *node, const char *name, double *v)
{
    const Onnx__AttributeProto *a = find_attr(node, name);
    if (!a) return CN_OK;
    cn_status st = attr_type(in, node, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, "a float");
    if (st) return st;
    if (!isfinite(a->f)) return cn_onnx_node_fail(in, node, "attribute %s is not a finite number", name);
    *v = a->f;
    return CN_OK;
}

cn_status cn_onnx_get_ints(cn_onnx_in *in, const Onnx__NodeProto *node, const char *name, int64_t *v, int n)
{
    const Onnx__AttributeProto *a = find_attr(node, name);
    if (!a) return CN_OK;
    cn_status st = attr_type(in, node, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, "a list of integers");
    if (st) return st;
    if (a->n_ints != (size_t)n)
        return cn_onnx_node_fail(in, node, "attribute %s has %zu values, not %d (only 2-D maps are supported)", name,
                                 a->n_ints, n);
    memcpy(v, a->ints, sizeof(int64_t) * (size_t)n);
    return CN_OK;
}

float cn_onnx_value(const cn_onnx_tensor *t, int64_t j)
{
    if (t->f) return t->f[j];
    const uint8_t *p = t->raw + 4 * j;
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* initializer k of the graph, checked */
static cn_status tensor_at(cn_onnx_in *in, const Onnx__NodeProto *node, int k, cn_onnx_tensor *t)
{
    const Onnx__TensorProto *p = in->consts[k];
    char a[80];
    const char *name = shown(p->name, a, sizeof a);
    memset(t, 0, sizeof *t);
    if (p->has_data_type && p->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return cn_onnx_node_fail(in, node, "initializer '%s' is of ONNX data type %d, not float32 (1)", name,
                                 (int)p->data_type);
    if (p->has_data_location && p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return cn_onnx_node_fail(in, node, "initializer '%s' is stored in an external file (not supported)", name);
    if (p->n_dims > 8) return cn_onnx_node_fail(in, node, "initializer '%s' has %zu dims", name, p->n_dims);
    int64_t count = 1;
    for (size_t d = 0; d < p->n_dims; d++) {
        if (p->dims[d] < 0)
            return cn_onnx_node_fail(in, node, "initializer '%s': dim %zu is %lld", name, d, (long long)p->dims[d]);
        if (!cn_mul_ok(count, p->dims[d], &count))
            return cn_onnx_node_fail(in, node, "initializer '%s': its dims hold more values than 64 bits count", name);
    }
    int64_t have = p->n_float_data ? (int64_t)p->n_float_data : p->has_raw_data ? (int64_t)(p->raw_data.len / 4) : 0;
    if (have != count || (!p->n_float_data && p->has_raw_data && p->raw_data.len % 4))
        return cn_onnx_node_fail(in, node, "initializer '%s' has %lld values for dims of %lld", name,
                                 (long long)have, (long long)count);
    t->name = p->name;
    t->n_dims = (int)p->n_dims;
    t->dims = p->dims;
    t->count = count;
    t->f = p->n_float_data ? p->float_data : NULL;
    t->raw = p->n_float_data ? NULL : p->raw_data.data;
    return CN_OK;
}

cn_status cn_onnx_get_tensor(cn_onnx_in *in, const Onnx__NodeProto *node, int k, int required, int rank,
                             cn_onnx_tensor *t)
{
    char a[80];
    memset(t, 0, sizeof *t);
    if ((size_t)k >= node->n_input || !node->input[k][0]) {
        if (!required) return CN_OK;
        return cn_onnx_node_fail(in, node, "input %d is missing", k);
    }
    int at = map_get(&in->inits, node->input[k]);
    if (at < 0) return cn_onnx_node_fail(in, node, "input %d '%s' is not an initializer (a constant)", k,
                                       shown(node->input[k], a, sizeof a));
    cn_status st = tensor_at(in, node, at, t);
    if (!st && rank && t->n_dims != rank)
        return cn_onnx_node_fail(in, node, "input %d '%s' has %d dims, not %d", k, shown(t->name, a, sizeof a),
                                 t->n_dims, rank);
    return st;
}

cn_status cn_onnx_get_int64s(cn_onnx_in *in, const Onnx__NodeProto *node, int k, int64_t *v, int cap, int *n)
{
    char a[80];
    int at = (size_t)k < node->n_input ? map_get(&in->inits, node->input[k]) : -1;
    if (at < 0) return cn_onnx_node_fail(in, node, "input %d is not an initializer (a constant)", k);
    const Onnx__TensorProto *p = in->consts[at];
    const char *name = shown(p->name, a, sizeof a);
    size_t count = p->n_int64_data ? p->n_int64_data : p->has_raw_data ? p->raw_data.len / 8 : 0;
    if (p->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || p->n_dims != 1 || p->dims[0] < 0 ||
        (uint64_t)p->dims[0] != count || (!p->n_int64_data && p->raw_data.len % 8) || count > (size_t)cap)
        return cn_onnx_node_fail(in, node, "initializer '%s' is not a vector of at most %d int64 values", name, cap);
    for (size_t j = 0; j < count; j++) {
        uint64_t u = 0;
        for (int b = 7; !p->n_int64_data && b >= 0; b--) u = u << 8 | p->raw_data.data[8 * j + (size_t)b];
        v[j] = p->n_int64_data ? p->int64_data[j] : (int64_t)u;
    }
    *n = (int)count;
    return CN_OK;
}

cn_status cn_onnx_constant(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    const Onnx__AttributeProto *a = find_attr(node, "value");
    if (!a || !a->t || node->n_attribute != 1)
        return cn_onnx_node_fail(in, node, "only a Constant of one tensor 'value' is supported");
    int at = node->n_output >= 1 ? map_get(&in->inits, node->output[0]) : -1;
    if (at >= 0 && in->consts[at] == a->t) return CN_OK; /* known from the start (build_maps) */
    if (node->n_output < 1 || !node->output[0][0] || at >= 0 || map_get(&in->values, node->output[0]) >= 0)
        return cn_onnx_node_fail(in, node, "has no output, or one written twice");
    in->consts[in->n_consts] = a->t;
    map_put(&in->inits, node->output[0], in->n_consts++);
    return CN_OK;
}

const Onnx__TensorProto *cn_onnx_const_at(const cn_onnx_in *in, const char *name)
{
    int at = name && name[0] ? map_get(&in->inits, name) : -1;
    return at >= 0 ? in->consts[at] : NULL;
}

Onnx__TensorProto *cn_onnx_new_const(cn_onnx_in *in, const Onnx__NodeProto *node, size_t extra)
{
    if (map_get(&in->inits, node->output[0]) >= 0 || map_get(&in->values, node->output[0]) >= 0) {
        cn_onnx_node_fail(in, node, "its output is written twice");
        return NULL;
    }
    Onnx__TensorProto *t = cn_malloc(in->ctx, sizeof *t + extra);
    if (!t) {
        in->st = CN_E_NOMEM;
        return NULL;
    }
    onnx__tensor_proto__init(t);
    in->owned[in->n_owned++] = t; /* one per node at most: owned has a slot per node */
    in->consts[in->n_consts] = t;
    map_put(&in->inits, node->output[0], in->n_consts++);
    return t;
}

const Onnx__NodeProto *cn_onnx_sole_reader(const cn_onnx_in *in, const Onnx__NodeProto *node, const char *op_type)
{
    const char *v = node && node->n_output == 1 ? node->output[0] : NULL;
    int r = v && v[0] && map_get(&in->uses, v) == 1 ? map_get(&in->reader, v) : -1;
    return r > in->node && !in->skip[r] && !strcmp(in->g->node[r]->op_type, op_type) ? in->g->node[r] : NULL;
}

const Onnx__NodeProto *cn_onnx_writer(const cn_onnx_in *in, const char *value, const char *op_type)
{
    int w = value && value[0] ? map_get(&in->writer, value) : -1;
    return w >= 0 && !in->skip[w] && !strcmp(in->g->node[w]->op_type, op_type) ? in->g->node[w] : NULL;
}

void cn_onnx_skip(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int at = node->n_output ? map_get(&in->writer, node->output[0]) : -1;
    if (at >= 0) in->skip[at] = 1;
}

int cn_onnx_scalar(const cn_onnx_in *in, const char *name, double *v)
{
    const Onnx__TensorProto *p = cn_onnx_const_at(in, name);
    if (!p || (p->has_data_type && p->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)) return 0;
    for (size_t d = 0; d < p->n_dims; d++)
        if (p->dims[d] != 1) return 0;
    if (p->n_float_data == 1) *v = p->float_data[0];
    else if (!p->n_float_data && p->has_raw_data && p->raw_data.len == 4) {
        cn_onnx_tensor t = { .raw = p->raw_data.data };
        *v = cn_onnx_value(&t, 0);
    } else return 0;
    return 1;
}

#define CHANNELS_LAST_READERS                                                                                   \
    "convnet reads one only in LayerNormalization of the last axis, MatMul, Mul by a per-channel constant, "    \
    "element-wise layers and a Transpose perm 0,3,1,2 back"

/* the error for input 0 of node, which is no layer's output as it is: channels-last, or unknown */
static cn_status not_a_map(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    if (node->n_input && map_get(&in->lasts, node->input[0]) >= 0)
        return cn_onnx_node_fail(in, node, "reads a channels-last value (after a Transpose perm 0,2,3,1): "
                                           CHANNELS_LAST_READERS);
    return cn_onnx_node_fail(in, node, "its input is not the graph's input or an earlier node's output");
}

cn_status cn_onnx_pad_value(cn_onnx_in *in, const Onnx__NodeProto *node, const int64_t pads[4])
{
    int l = node->n_input ? map_get(&in->values, node->input[0]) : -1;
    if (l < 0) return not_a_map(in, node);
    if (node->n_output < 1 || !node->output[0][0] || map_get(&in->values, node->output[0]) >= 0 ||
        map_get(&in->padded, node->output[0]) >= 0)
        return cn_onnx_node_fail(in, node, "has no output, or one written twice");
    in->pads[in->n_pads].layer = l;
    memcpy(in->pads[in->n_pads].p, pads, sizeof in->pads[0].p);
    map_put(&in->padded, node->output[0], in->n_pads++);
    return CN_OK;
}

int cn_onnx_read_as_padding(const cn_onnx_in *in, const Onnx__NodeProto *node)
{
    const char *v = node->n_output ? node->output[0] : NULL;
    return v && v[0] && map_get(&in->uses, v) == map_get(&in->pad_reads, v);
}

int cn_onnx_value_inputs(const cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int n = 0;
    for (size_t k = 0; k < node->n_input; k++)
        n += node->input[k][0] && (map_get(&in->values, node->input[k]) >= 0 || map_get(&in->negs, node->input[k]) >= 0 ||
                                   map_get(&in->lasts, node->input[k]) >= 0);
    return n;
}

int64_t cn_onnx_batch(const cn_onnx_in *in) { return in->batch; }

int cn_onnx_is_batch(const cn_onnx_in *in, int64_t v) { return v == 0 || v == in->batch || v == CN_ONNX_BATCH; }

int cn_onnx_input_rank(const cn_onnx_in *in, const Onnx__NodeProto *node, int k)
{
    int l = (size_t)k < node->n_input ? map_get(&in->values, node->input[k]) : -1;
    return l >= 0 ? in->layers[l].rank : 4;
}

/* ---- layers ---------------------------------------------------------------------------------------- */

/* a layer name as the spec allows ([A-Za-z_][A-Za-z0-9_.-]*, at most 64 bytes) from s */
static void sanitize(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    while (*s == '/') s++;
    if (!(((*s | 32) >= 'a' && (*s | 32) <= 'z') || *s == '_')) out[n++] = '_';
    for (; *s && n + 1 < cap; s++) {
        char c = *s == '/' ? '.' : *s;
        int ok = ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        out[n++] = ok ? c : '_';
    }
    out[n] = '\0';
}

/* PyTorch's node names are scopes, "/layer1/layer1.0/relu/Relu": the module's path without the
 * op, "layer1.0.relu" (each scope that extends the one before replaces it: ConvNeXt's
 * "/features.1.0/block/block.3/MatMul" is "features.1.0.block.3", its parameters' prefix) */
static void scope_name(const char *s, char *out, size_t cap)
{
    char path[256] = "", comp[256];
    size_t at = 0; /* where the path's last scope begins */
    const char *end = strrchr(s, '/'); /* the op's own part goes */
    while (s < end) {
        s++;
        size_t n = strcspn(s, "/");
        if (n >= sizeof comp || strlen(path) + n + 2 >= sizeof path) break;
        memcpy(comp, s, n);
        comp[n] = '\0';
        size_t pl = strlen(path), ll = pl - at;
        if (!pl || (!strncmp(comp, path + at, ll) && comp[ll] == '.')) {
            memcpy(path + at, comp, n + 1);
        } else {
            path[pl] = '.';
            memcpy(path + pl + 1, comp, n + 1);
            at = pl + 1;
        }
        s += n;
    }
    sanitize(path, out, cap);
}

/* a unique layer name: from the weight's initializer ("layer1.0.conv1" of "layer1.0.conv1.weight"),
 * else the node's name, else its output value's */
static char *layer_name(cn_onnx_in *in, const Onnx__NodeProto *node, const char *fallback)
{
    char base[72], name[96];
    const char *w = node && node->n_input > 1 && map_get(&in->inits, node->input[1]) >= 0 ? node->input[1] : NULL;
    size_t wl = w ? strlen(w) : 0;
    if (w && wl > 7 && wl < 60 && !strcmp(w + wl - 7, ".weight") && !strchr(w, ':')) {
        char tmp[64];
        memcpy(tmp, w, wl - 7);
        tmp[wl - 7] = '\0';
        sanitize(tmp, base, 64);
    } else if (node && node->name && node->name[0] == '/' && strchr(node->name + 1, '/')) {
        scope_name(node->name, base, 64);
    } else if (node && node->name && node->name[0]) {
        sanitize(node->name, base, 64);
    } else {
        sanitize(fallback, base, 64);
    }
    if (!strcmp(base, "from") || !strcmp(base, "as")) strcat(base, "_");
    snprintf(name, sizeof name, "%s", base);
    for (int k = 2; map_get(&in->names, name) >= 0; k++) snprintf(name, sizeof name, "%s_%d", base, k);
    return cn_strdup(in->ctx, name);
}

static cn_onnx_layer *new_layer(cn_onnx_in *in, const Onnx__NodeProto *node, const char *type, const char *value,
                                name_map *values)
{
    if (in->n_layers >= CN_MAX_LAYERS) {
        in_fail(in, CN_E_UNSUPPORTED, "more than %d layers (convnet's limit)", CN_MAX_LAYERS);
        return NULL;
    }
    if (in->n_layers == in->cap_layers) {
        int cap = in->cap_layers ? 2 * in->cap_layers : 64;
        cn_onnx_layer *p = cn_realloc(in->ctx, in->layers, sizeof *p * (size_t)cap);
        if (!p) {
            in->st = CN_E_NOMEM;
            return NULL;
        }
        in->layers = p;
        in->cap_layers = cap;
    }
    cn_onnx_layer *l = &in->layers[in->n_layers];
    memset(l, 0, sizeof *l);
    l->type = type;
    l->node = in->node;
    l->value = value;
    l->bias_key = -1;
    l->rank = 4;
    if (!(l->name = layer_name(in, node, value))) {
        in->st = CN_E_NOMEM;
        return NULL;
    }
    map_put(&in->names, l->name, in->n_layers);
    map_put(values, value, in->n_layers);
    in->n_layers++;
    return l;
}

/* a node wrote the value already */
static int written(const cn_onnx_in *in, const char *value)
{
    return map_get(&in->values, value) >= 0 || map_get(&in->negs, value) >= 0 || map_get(&in->lasts, value) >= 0;
}

/* the layers that work value by value, to which the order of the values is all one: they may read
 * channels-last values (all their inputs so), and write one */
static int elementwise(const char *type)
{
    static const char *const types[] = { "relu", "leakyrelu", "sigmoid", "tanh", "relu6", "hardsigmoid", "hardswish",
                                         "silu", "gelu", "elu", "add", "mul" };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        if (!strcmp(type, types[k])) return 1;
    return 0;
}

/* last_ok: the layer may read channels-last values (elementwise, or over the channels) */
static cn_onnx_layer *add_layer(cn_onnx_in *in, const Onnx__NodeProto *node, const Onnx__NodeProto *last,
                                const char *type, int n_read, int rank, int last_ok, const char *args_fmt, va_list ap)
{
    int reads[CN_MAX_INPUTS], n = 0, negated = 0, lasts = 0;
    char a[80];
    for (size_t k = 0; k < node->n_input && (n_read == 0 || n < n_read); k++) {
        if (!node->input[k][0]) continue;
        int l = map_get(&in->values, node->input[k]);
        if (l < 0 && (l = map_get(&in->lasts, node->input[k])) >= 0) {
            if (!last_ok) {
                cn_onnx_node_fail(in, node, "reads a channels-last value (after a Transpose perm 0,2,3,1): "
                                            CHANNELS_LAST_READERS);
                return NULL;
            }
            lasts++;
        }
        if (l < 0 && (l = map_get(&in->negs, node->input[k])) >= 0) {
            /* max(-x) = -min(x): the minpool's output is the negated value */
            if (strcmp(type, "minpool")) {
                cn_onnx_node_fail(in, node, "reads a negated value: Neg is supported only as Neg, MaxPool, Neg "
                                            "(convnet's minpool)");
                return NULL;
            }
            negated = 1;
        }
        int pad = l < 0 && k == 0 ? map_get(&in->padded, node->input[k]) : -1;
        if (pad >= 0) { /* zeros around a conv's or an average pool's input: the layer's own padding */
            if (strcmp(type, "conv") && strcmp(type, "avgpool")) {
                cn_onnx_node_fail(in, node, "reads a padded value: Pad is supported only before Conv and AveragePool");
                return NULL;
            }
            l = in->pads[pad].layer;
        }
        if (l < 0) {
            if (map_get(&in->inits, node->input[k]) >= 0) continue; /* a parameter */
            cn_onnx_node_fail(in, node, "input '%s' is not the graph's input or an earlier node's output",
                              shown(node->input[k], a, sizeof a));
            return NULL;
        }
        if (n == CN_MAX_INPUTS) {
            cn_onnx_node_fail(in, node, "reads more than %d values", CN_MAX_INPUTS);
            return NULL;
        }
        reads[n++] = l;
    }
    if (!n) {
        cn_onnx_node_fail(in, node, "reads no value of the graph");
        return NULL;
    }
    if (lasts && lasts != n) {
        cn_onnx_node_fail(in, node, "reads a channels-last value and one that is not: not supported");
        return NULL;
    }
    if (last->n_output < 1 || !last->output[0][0]) {
        cn_onnx_node_fail(in, last, "has no output");
        return NULL;
    }
    if (written(in, last->output[0])) {
        cn_onnx_node_fail(in, last, "its output '%s' is written twice", shown(last->output[0], a, sizeof a));
        return NULL;
    }
    char args[512];
    vsnprintf(args, sizeof args, args_fmt, ap);
    int first_rank = in->layers[reads[0]].rank;
    cn_onnx_layer *l = new_layer(in, last, type, last->output[0], negated ? &in->negs : lasts ? &in->lasts : &in->values);
    if (!l) return NULL;
    l->rank = rank ? rank : first_rank;
    l->args = cn_strdup(in->ctx, args);
    l->reads = cn_malloc(in->ctx, sizeof(int) * (size_t)n);
    if (!l->args || !l->reads) {
        in->st = CN_E_NOMEM;
        return NULL;
    }
    memcpy(l->reads, reads, sizeof(int) * (size_t)n);
    l->n_reads = n;
    return l;
}

cn_onnx_layer *cn_onnx_add_layer(cn_onnx_in *in, const Onnx__NodeProto *node, const char *type, int n_read, int rank,
                                 const char *args_fmt, ...)
{
    va_list ap;
    va_start(ap, args_fmt);
    cn_onnx_layer *l = add_layer(in, node, node, type, n_read, rank, elementwise(type), args_fmt, ap);
    va_end(ap);
    return l;
}

cn_onnx_layer *cn_onnx_add_pattern(cn_onnx_in *in, const Onnx__NodeProto *first, const Onnx__NodeProto *last,
                                   const char *type, int rank, const char *args_fmt, ...)
{
    va_list ap;
    va_start(ap, args_fmt);
    cn_onnx_layer *l = add_layer(in, first, last, type, 1, rank, elementwise(type), args_fmt, ap);
    va_end(ap);
    return l;
}

cn_onnx_layer *cn_onnx_add_channelwise(cn_onnx_in *in, const Onnx__NodeProto *first, const Onnx__NodeProto *last,
                                       const char *type, const char *args_fmt, ...)
{
    va_list ap;
    va_start(ap, args_fmt);
    cn_onnx_layer *l = add_layer(in, first, last, type, 1, 0, 1, args_fmt, ap);
    va_end(ap);
    return l;
}

int cn_onnx_channels_last(const cn_onnx_in *in, const Onnx__NodeProto *node, int k)
{
    return (size_t)k < node->n_input && map_get(&in->lasts, node->input[k]) >= 0;
}

/* node's output is the layer of its input 0, negated or not (negate), in channels-last order or
 * not (a Transpose: turn 1 to channels-last, -1 back; 0 keeps the order, Identity and Dropout) */
static cn_status alias(cn_onnx_in *in, const Onnx__NodeProto *node, int negate, int turn)
{
    char a[80];
    if (!node->n_input) return cn_onnx_node_fail(in, node, "has no input");
    int l = map_get(&in->values, node->input[0]), neg = 0, last = 0;
    if (l < 0 && (l = map_get(&in->negs, node->input[0])) >= 0) neg = 1;
    if (l < 0 && (l = map_get(&in->lasts, node->input[0])) >= 0) last = 1;
    if (l < 0) return cn_onnx_node_fail(in, node, "its input is not the graph's input or an earlier node's output");
    if (neg && (!negate || turn))
        return cn_onnx_node_fail(in, node, "reads a negated value: Neg is supported only as Neg, MaxPool, Neg "
                                           "(convnet's minpool)");
    if ((turn > 0 && (last || in->layers[l].rank != 4)) || (turn < 0 && !last) || (negate && last))
        return cn_onnx_node_fail(in, node, turn > 0 ? "turns to channels-last what is not a map in (N, C, H, W) order"
                                           : turn < 0 ? "turns back from channels-last what is not channels-last"
                                                      : "reads a channels-last value: not supported");
    if (node->n_output < 1 || !node->output[0][0]) return cn_onnx_node_fail(in, node, "has no output");
    if (written(in, node->output[0]))
        return cn_onnx_node_fail(in, node, "its output '%s' is written twice", shown(node->output[0], a, sizeof a));
    last = turn ? turn > 0 : last;
    map_put(neg != negate ? &in->negs : last ? &in->lasts : &in->values, node->output[0], l);
    return CN_OK;
}

cn_status cn_onnx_turn(cn_onnx_in *in, const Onnx__NodeProto *node, int to_last) { return alias(in, node, 0, to_last ? 1 : -1); }

cn_status cn_onnx_alias(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    /* an Identity of a weight (PyTorch shares weights so): its output is that initializer */
    int init = node->n_input && node->n_output ? map_get(&in->inits, node->input[0]) : -1;
    if (init >= 0 && node->output[0][0] && map_get(&in->values, node->input[0]) < 0) {
        if (map_get(&in->inits, node->output[0]) >= 0 || map_get(&in->values, node->output[0]) >= 0)
            return cn_onnx_node_fail(in, node, "its output is written twice");
        map_put(&in->inits, node->output[0], init);
        return CN_OK;
    }
    return alias(in, node, 0, 0);
}
cn_status cn_onnx_negate(cn_onnx_in *in, const Onnx__NodeProto *node) { return alias(in, node, 1, 0); }

int cn_onnx_read_only_by(const cn_onnx_in *in, const char *value, const char *op_type)
{
    const Onnx__GraphProto *g = in->model->graph;
    int readers = 0;
    for (size_t i = 0; i < g->n_output; i++)
        if (g->output[i]->name && !strcmp(g->output[i]->name, value)) return 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            if (!strcmp(g->node[i]->input[k], value)) {
                if (!g->node[i]->op_type || strcmp(g->node[i]->op_type, op_type)) return 0;
                readers++;
            }
    return readers > 0;
}

int cn_onnx_negated(const cn_onnx_in *in, const Onnx__NodeProto *node)
{
    return node->n_input && map_get(&in->negs, node->input[0]) >= 0;
}

cn_status cn_onnx_layer_tensor(cn_onnx_in *in, cn_onnx_layer *l, const char *name, const cn_onnx_tensor *t,
                               int transpose)
{
    if (l->n_tensors == MAX_LAYER_TENSORS) return in_fail(in, CN_E_FORMAT, "layer %s: too many tensors", l->name);
    l->tensors[l->n_tensors].name = name;
    l->tensors[l->n_tensors].t = *t;
    l->tensors[l->n_tensors].transpose = transpose;
    l->n_tensors++;
    if (!strcmp(name, "bias") && l->bias_key >= 0) l->bias_key = 1;
    return CN_OK;
}

/* the layer of `type` that writes node's input 0, when node alone reads it */
static cn_onnx_layer *sole_producer(cn_onnx_in *in, const Onnx__NodeProto *node, const char *type)
{
    int l = node->n_input ? map_get(&in->values, node->input[0]) : -1;
    if (l < 0 || strcmp(in->layers[l].type, type) || strcmp(in->layers[l].value, node->input[0]) ||
        map_get(&in->uses, node->input[0]) != 1)
        return NULL;
    return &in->layers[l];
}

cn_onnx_layer *cn_onnx_foldable_conv(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    cn_onnx_layer *l = sole_producer(in, node, "conv");
    return l && !l->folded ? l : NULL;
}

cn_status cn_onnx_relu_to_relu6(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    cn_onnx_layer *l = sole_producer(in, node, "relu");
    if (!l) return CN_E_UNSUPPORTED;
    l->type = "relu6";
    return cn_onnx_alias(in, node);
}

cn_status cn_onnx_fold_bn(cn_onnx_in *in, cn_onnx_layer *l, const Onnx__NodeProto *node, const cn_onnx_tensor *scale,
                          const cn_onnx_tensor *b, const cn_onnx_tensor *mean, const cn_onnx_tensor *var, double eps)
{
    cn_status st = cn_onnx_alias(in, node);
    if (st) return st;
    l->folded = 1;
    l->bias_key = 1;
    l->bn[0] = *scale, l->bn[1] = *b, l->bn[2] = *mean, l->bn[3] = *var;
    l->bn_eps = eps;
    in->folded++;
    return CN_OK;
}

static int attr_is(const Onnx__AttributeProto *a, const char *s)
{
    return a->has_s && a->s.len == strlen(s) && !memcmp(a->s.data, s, a->s.len);
}

cn_status cn_onnx_pads(cn_onnx_in *in, cn_onnx_layer *l, const Onnx__NodeProto *node)
{
    int64_t p[4] = { 0, 0, 0, 0 };
    const Onnx__AttributeProto *a = find_attr(node, "auto_pad");
    char pad[80];
    cn_status st;
    if (a && (st = attr_type(in, node, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, "a string"))) return st;
    if (a && !attr_is(a, "NOTSET") && node->n_input && map_get(&in->padded, node->input[0]) >= 0)
        return cn_onnx_node_fail(in, node, "auto_pad after a Pad is not supported");
    if (a && attr_is(a, "SAME_UPPER")) { /* the odd padding at the end: TensorFlow's same, convnet's */
        snprintf(pad, sizeof pad, " pad=same");
    } else if (a && attr_is(a, "VALID")) {
        snprintf(pad, sizeof pad, " pad=0");
    } else if (a && !attr_is(a, "NOTSET")) {
        return cn_onnx_node_fail(in, node, "auto_pad other than NOTSET, SAME_UPPER or VALID is not supported");
    } else {
        if ((st = cn_onnx_get_ints(in, node, "pads", p, 4))) return st;
        int pending = node->n_input ? map_get(&in->padded, node->input[0]) : -1;
        for (int k = 0; k < 4 && pending >= 0; k++) p[k] += in->pads[pending].p[k];
        for (int k = 0; k < 4; k++)
            if (p[k] < 0 || p[k] > INT32_MAX) return cn_onnx_node_fail(in, node, "pads holds %lld", (long long)p[k]);
        if (p[0] == p[2] && p[1] == p[3]) {
            snprintf(pad, sizeof pad, " pad=%lldx%lld", (long long)p[0], (long long)p[1]);
        } else {
            snprintf(pad, sizeof pad, " pad=same");
            l->check_pads = 1;
            memcpy(l->pads, p, sizeof p);
        }
    }
    return cn_onnx_append_args(in, l, "%s", pad);
}

int cn_onnx_has_auto_pad(const Onnx__NodeProto *node)
{
    const Onnx__AttributeProto *a = find_attr(node, "auto_pad");
    return a && !attr_is(a, "NOTSET");
}

cn_status cn_onnx_end_pads(cn_onnx_in *in, cn_onnx_layer *l, const int64_t e[2], const int64_t span[2],
                           const int64_t stride[2])
{
    l->check_end = 1;
    for (int d = 0; d < 2; d++) l->end[d] = e[d], l->span[d] = span[d], l->stride[d] = stride[d];
    return cn_onnx_append_args(in, l, " pad=0");
}

cn_status cn_onnx_append_args(cn_onnx_in *in, cn_onnx_layer *l, const char *fmt, ...)
{
    char more[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(more, sizeof more, fmt, ap);
    va_end(ap);
    size_t n = strlen(l->args);
    char *args = cn_realloc(in->ctx, l->args, n + strlen(more) + 1);
    if (!args) return in->st = CN_E_NOMEM;
    strcpy(args + n, more);
    l->args = args;
    return CN_OK;
}

int cn_onnx_padded(const cn_onnx_in *in, const Onnx__NodeProto *node)
{
    return node->n_input && map_get(&in->padded, node->input[0]) >= 0;
}

/* ---- the model --------------------------------------------------------------------------------------- */

static const cn_onnx_row *import_row(const char *op_type)
{
    for (int r = 0; r < cn_onnx_row_count; r++)
        if (cn_onnx_rows[r].import_node && !strcmp(cn_onnx_rows[r].onnx, op_type)) return &cn_onnx_rows[r];
    return NULL;
}

static cn_status unsupported(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    char list[1024] = "";
    size_t n = 0;
    for (int r = 0; r < cn_onnx_row_count; r++)
        if (cn_onnx_rows[r].import_node && n < sizeof list)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", cn_onnx_rows[r].onnx);
    return cn_onnx_node_fail(in, node, "op type not supported; convnet imports %s", list);
}

static cn_status check_opset(cn_onnx_in *in)
{
    const Onnx__ModelProto *m = in->model;
    in->opset = -1;
    for (size_t k = 0; k < m->n_opset_import; k++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[k];
        if ((!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")) && o->has_version) in->opset = o->version;
    }
    if (in->opset < 9 || in->opset > 21)
        return in_fail(in, CN_E_UNSUPPORTED, "opset %lld of the default domain: convnet reads opsets 9 to 21",
                       (long long)in->opset);
    return CN_OK;
}

/* the graph's one input that is not an initializer: float (N, C, H, W), C, H, W known */
static cn_status add_input(cn_onnx_in *in)
{
    const Onnx__GraphProto *g = in->g;
    const Onnx__ValueInfoProto *x = NULL;
    char a[80];
    for (size_t k = 0; k < g->n_input; k++) {
        if (!g->input[k]->name || map_get(&in->inits, g->input[k]->name) >= 0) continue;
        if (x) return in_fail(in, CN_E_UNSUPPORTED, "the graph has more than one input (convnet nets have one)");
        x = g->input[k];
    }
    if (!x) return in_fail(in, CN_E_FORMAT, "the graph has no input");
    const Onnx__TypeProto *t = x->type;
    const Onnx__TensorShapeProto *s =
        t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && t->tensor_type ? t->tensor_type->shape : NULL;
    if (!s || (t->tensor_type->has_elem_type && t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT))
        return in_fail(in, CN_E_UNSUPPORTED, "input '%s' is not a float tensor of known shape", shown(x->name, a, sizeof a));
    int64_t d[4];
    in->batch = s->n_dim == 4 && s->dim[0]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                s->dim[0]->dim_value > 0 ? s->dim[0]->dim_value : CN_ONNX_BATCH;
    for (int k = 1; k < 4 && s->n_dim == 4; k++)
        d[k] = s->dim[k]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ? s->dim[k]->dim_value : -1;
    if (s->n_dim != 4 || d[1] < 1 || d[2] < 1 || d[3] < 1 || d[1] > INT32_MAX || d[2] > INT32_MAX || d[3] > INT32_MAX)
        return in_fail(in, CN_E_UNSUPPORTED, "input '%s' is not (N, C, H, W) with C, H and W known",
                       shown(x->name, a, sizeof a));
    Onnx__NodeProto none = ONNX__NODE_PROTO__INIT;
    cn_onnx_layer *l = new_layer(in, &none, "input", x->name, &in->values);
    if (!l) return cn_onnx_in_status(in);
    l->node = -1;
    char args[80];
    snprintf(args, sizeof args, "%lldx%lldx%lld", (long long)d[2], (long long)d[3], (long long)d[1]);
    return (l->args = cn_strdup(in->ctx, args)) ? CN_OK : (in->st = CN_E_NOMEM);
}

static cn_status build_maps(cn_onnx_in *in)
{
    const Onnx__GraphProto *g = in->g;
    size_t values = g->n_input + 1, reads = g->n_output;
    for (size_t k = 0; k < g->n_node; k++) {
        if (!g->node[k]->op_type) return in_fail(in, CN_E_FORMAT, "node %zu has no op type", k);
        values += g->node[k]->n_output;
        reads += g->node[k]->n_input;
    }
    in->consts = cn_calloc(in->ctx, g->n_initializer + values, sizeof *in->consts);
    if (!in->consts) return in->st = CN_E_NOMEM;
    for (size_t k = 0; k < g->n_initializer; k++) in->consts[in->n_consts++] = g->initializer[k];
    if (map_init(in->ctx, &in->inits, g->n_initializer + values) || map_init(in->ctx, &in->values, values) ||
        map_init(in->ctx, &in->uses, reads) || map_init(in->ctx, &in->pad_reads, reads) ||
        map_init(in->ctx, &in->names, values) ||
        map_init(in->ctx, &in->negs, values) || map_init(in->ctx, &in->lasts, values) ||
        map_init(in->ctx, &in->padded, values) || !(in->pads = cn_calloc(in->ctx, values, sizeof *in->pads)) ||
        !(in->owned = cn_calloc(in->ctx, g->n_node + 1, sizeof *in->owned)) ||
        map_init(in->ctx, &in->reader, reads) || map_init(in->ctx, &in->writer, values) ||
        !(in->skip = cn_calloc(in->ctx, g->n_node + 1, 1)))
        return in->st = CN_E_NOMEM;
    for (size_t k = 0; k < g->n_initializer; k++)
        if (g->initializer[k]->name && g->initializer[k]->name[0]) map_put(&in->inits, g->initializer[k]->name, (int)k);
    for (size_t k = 0; k < g->n_node; k++)
        for (size_t j = 0; j < g->node[k]->n_input; j++) {
            const char *v = g->node[k]->input[j];
            int u = map_get(&in->uses, v);
            map_put(&in->uses, v, u < 0 ? 1 : u + 1);
            if (v[0]) map_put(&in->reader, v, (int)k);
            if (j || (strcmp(g->node[k]->op_type, "Conv") && strcmp(g->node[k]->op_type, "AveragePool"))) continue;
            u = map_get(&in->pad_reads, v);
            map_put(&in->pad_reads, v, u < 0 ? 1 : u + 1);
        }
    for (size_t k = 0; k < g->n_node; k++)
        for (size_t j = 0; j < g->node[k]->n_output; j++)
            if (g->node[k]->output[j][0]) map_put(&in->writer, g->node[k]->output[j], (int)k);
    in->parse_budget = 16 * (int64_t)g->n_node + 10000;
    /* Constant nodes' values, known before their nodes come: a pattern's first node looks at
     * constants PyTorch writes just before the later nodes that read them */
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *c = g->node[k];
        const Onnx__AttributeProto *a = find_attr(c, "value");
        if (!strcmp(c->op_type, "Constant") && a && a->t && c->n_attribute == 1 && c->n_output >= 1 &&
            c->output[0][0] && map_get(&in->inits, c->output[0]) < 0) {
            in->consts[in->n_consts] = a->t;
            map_put(&in->inits, c->output[0], in->n_consts++);
        }
    }
    for (size_t k = 0; k < g->n_output; k++) {
        const char *v = g->output[k]->name ? g->output[k]->name : "";
        int u = map_get(&in->uses, v);
        map_put(&in->uses, v, u < 0 ? 1 : u + 1);
    }
    return CN_OK;
}

/* the spec text: one statement per layer, each naming what it reads */
/* the spec of the layers (those keep[] marks, when given) */
static char *render(cn_onnx_in *in, const char *keep)
{
    cn_strbuf sb;
    char *text = NULL;
    for (int pass = 0; pass < 2; pass++) {
        cn_sb_init(&sb, text, text ? sb.len + 1 : 0);
        cn_sb_printf(&sb, "# imported from %s by convnet import\n", in->file);
        for (int i = 0; i < in->n_layers; i++) {
            const cn_onnx_layer *l = &in->layers[i];
            if (keep && !keep[i]) continue;
            cn_sb_printf(&sb, "%s%s%s", l->type, l->args && l->args[0] ? " " : "", l->args ? l->args : "");
            if (l->bias_key >= 0) cn_sb_printf(&sb, " bias=%s", l->bias_key ? "yes" : "no");
            if (l->n_reads == 1 && strcmp(l->type, "concat") && strcmp(l->type, "add"))
                cn_sb_printf(&sb, " from %s", in->layers[l->reads[0]].name);
            else
                for (int k = 0; k < l->n_reads; k++) cn_sb_printf(&sb, " %s", in->layers[l->reads[k]].name);
            cn_sb_printf(&sb, " as %s\n", l->name);
        }
        if (!text && !(text = cn_malloc(in->ctx, sb.len + 1))) return NULL;
    }
    return text;
}

cn_status cn_onnx_input_dims(cn_onnx_in *in, const Onnx__NodeProto *node, int64_t dims[3])
{
    int last = node->n_input ? map_get(&in->values, node->input[0]) : -1;
    if (last < 0) return not_a_map(in, node);
    /* the layers it depends on make a net whose output it is: parsed, it has its shape */
    char *keep = cn_calloc(in->ctx, (size_t)in->n_layers, 1), *text = NULL;
    if (!keep) return in->st = CN_E_NOMEM;
    keep[last] = 1;
    int64_t kept = 0;
    for (int i = last; i >= 0; i--) {
        kept += keep[i];
        for (int k = 0; keep[i] && k < in->layers[i].n_reads; k++) keep[in->layers[i].reads[k]] = 1;
    }
    /* a chain of Slices would parse its layers again and again: the work stays linear in the file */
    if (kept > in->parse_budget) {
        cn_free(in->ctx, keep);
        return cn_onnx_node_fail(in, node, "too many Slices after too many layers (finding their input shapes "
                                           "would parse more than %lld statements)",
                                 (long long)(16 * (int64_t)in->g->n_node + 10000));
    }
    in->parse_budget -= kept;
    cn_net *net = NULL;
    text = render(in, keep);
    cn_status st = text ? cn_net_parse(in->ctx, text, strlen(text), "model.cnn", &net) : CN_E_NOMEM;
    cn_free(in->ctx, keep);
    cn_free(in->ctx, text);
    if (st == CN_E_NOMEM) return in->st = st;
    if (st) return cn_onnx_node_fail(in, node, "the layers before it do not parse: %s", cn_ctx_message(in->ctx));
    cn_layer_info li;
    cn_net_layer(in->ctx, net, cn_net_layer_count(net) - 1, 1, &li);
    dims[0] = li.c, dims[1] = li.h, dims[2] = li.w;
    cn_net_destroy(net);
    return CN_OK;
}

static const cn_onnx_layer *layer_named(const cn_onnx_in *in, const char *name)
{
    int l = map_get(&in->names, name);
    return l >= 0 ? &in->layers[l] : NULL;
}

/* every parameter of the net has a tensor of its shape in the file: checked before any slab */
static cn_status check_params(cn_onnx_in *in, const cn_net *net)
{
    /* first the padding (a layer of other pads gives the next layers other shapes, and their
     * tensors would be named instead): pad=same stands for asymmetric pads and must resolve to
     * them; ceil=yes for end pads must give their output */
    for (int i = 0; i < net->n; i++) {
        const cn_node *n = &net->nodes[i];
        const cn_onnx_layer *l = layer_named(in, n->name);
        if (l && l->check_end) {
            const cn_dims *x = &net->nodes[n->in[0]].out;
            int64_t want_h = (x->h + l->end[0] - l->span[0]) / l->stride[0] + 1,
                    want_w = (x->w + l->end[1] - l->span[1]) / l->stride[1] + 1;
            if (n->out.h != want_h || n->out.w != want_w) {
                in->node = l->node;
                return cn_onnx_node_fail(in, in->g->node[l->node],
                                         "pads 0,0,%lld,%lld at the end give %lldx%lld outputs of %lldx%lld, which "
                                         "ceil mode does not (%lldx%lld): not supported",
                                         (long long)l->end[0], (long long)l->end[1], (long long)want_h, (long long)want_w,
                                         (long long)x->h, (long long)x->w, (long long)n->out.h, (long long)n->out.w);
            }
        }
        if (l && l->check_pads &&
            (n->pad_t != l->pads[0] || n->pad_l != l->pads[1] || n->pad_b != l->pads[2] || n->pad_r != l->pads[3])) {
            in->node = l->node;
            return cn_onnx_node_fail(in, in->g->node[l->node],
                                     "asymmetric pads %lld,%lld,%lld,%lld are not supported (only symmetric ones and "
                                     "those of pad=same)",
                                     (long long)l->pads[0], (long long)l->pads[1], (long long)l->pads[2],
                                     (long long)l->pads[3]);
        }
    }
    char a[80];
    for (int i = 0; i < cn_net_layer_count(net); i++) {
        cn_param_info p[CN_MAX_LAYER_TENSORS];
        int n = cn_net_layer_params(net, i, p);
        const cn_onnx_layer *l = n ? layer_named(in, p[0].layer) : NULL;
        for (int k = 0; k < n; k++) {
            int found = 0;
            for (int j = 0; l && j < l->n_tensors && !found; j++) {
                const cn_onnx_tensor *t = &l->tensors[j].t;
                if (strcmp(l->tensors[j].name, p[k].name)) continue;
                found = 1;
                int same = t->count == p[k].count, how = l->tensors[j].transpose;
                if (how == 1) { /* (rows, cols) as (cols, rows[, 1, 1]): a dense layer's, a 1x1 conv's */
                    same = same && t->n_dims == 2 && p[k].rank >= 2 && t->dims[0] == p[k].shape[1] &&
                           t->dims[1] == p[k].shape[0];
                } else if (how == 0 && p[k].rank > 1) {
                    same = same && t->n_dims == p[k].rank;
                    for (int d = 0; same && d < p[k].rank; d++) same = t->dims[d] == p[k].shape[d];
                } /* CN_ONNX_FLAT: the count alone */
                if (!same) {
                    in->node = l->node;
                    return cn_onnx_node_fail(in, in->g->node[l->node],
                                             "initializer '%s' has %lld values in %d dims, layer %s needs %s of %lld "
                                             "values in %d",
                                             shown(t->name, a, sizeof a), (long long)t->count, t->n_dims, l->name,
                                             p[k].name, (long long)p[k].count, p[k].rank);
                }
            }
            if (!found && !(l && l->folded && !strcmp(p[k].name, "bias")))
                return in_fail(in, CN_E_FORMAT, "layer %s: no initializer gives its %s", p[k].layer, p[k].name);
        }
    }
    return CN_OK;
}

/* copies every tensor into the net (transposed or folded as recorded) */
static cn_status fill(cn_onnx_in *in, cn_net *net)
{
    char full[200];
    for (int i = 0; i < in->n_layers; i++) {
        const cn_onnx_layer *l = &in->layers[i];
        cn_tensor w = { 0 }, b = { 0 };
        for (int j = 0; j < l->n_tensors; j++) {
            const cn_onnx_tensor *t = &l->tensors[j].t;
            cn_tensor dst;
            snprintf(full, sizeof full, "%s.%s", l->name, l->tensors[j].name);
            cn_status st = cn_net_find_tensor(in->ctx, net, full, &dst);
            if (st) return st;
            if (l->tensors[j].transpose == 1) {
                int64_t rows = t->dims[0], cols = t->dims[1]; /* dst is (cols, rows) */
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t c = 0; c < cols; c++) dst.data[c * rows + r] = cn_onnx_value(t, r * cols + c);
            } else {
                for (int64_t v = 0; v < t->count; v++) dst.data[v] = cn_onnx_value(t, v);
            }
            /* checkpoints hold finite values only (and a net of NaNs helps nobody) */
            for (int64_t v = 0; v < t->count; v++)
                if (!isfinite(dst.data[v])) {
                    char a[80];
                    in->node = l->node;
                    return cn_onnx_node_fail(in, in->g->node[l->node], "initializer '%s' holds a value that is not finite",
                                             shown(t->name, a, sizeof a));
                }
            if (!strcmp(l->tensors[j].name, "weight")) w = dst;
            if (!strcmp(l->tensors[j].name, "bias")) b = dst;
        }
        if (!l->folded) continue;
        /* W' = W s, b' = (b - mean) s + beta with s = scale / sqrt(var + eps), per filter */
        if (!b.data) {
            snprintf(full, sizeof full, "%s.bias", l->name);
            cn_status st = cn_net_find_tensor(in->ctx, net, full, &b);
            if (st) return st;
            for (int64_t m = 0; m < b.count; m++) b.data[m] = 0;
        }
        if (l->bn[0].count != b.count) {
            in->node = l->node;
            return in_fail(in, CN_E_SHAPE, "layer %s: a batch norm of %lld channels folded into %lld filters", l->name,
                           (long long)l->bn[0].count, (long long)b.count);
        }
        int64_t per = w.count / b.count;
        for (int64_t m = 0; m < b.count; m++) {
            double s = cn_onnx_value(&l->bn[0], m) / sqrt((double)cn_onnx_value(&l->bn[3], m) + l->bn_eps);
            for (int64_t v = 0; v < per; v++) w.data[m * per + v] = (float)(w.data[m * per + v] * s);
            b.data[m] = (float)((b.data[m] - cn_onnx_value(&l->bn[2], m)) * s + cn_onnx_value(&l->bn[1], m));
            for (int64_t v = 0; v < per; v++) s = isfinite(w.data[m * per + v]) ? s : NAN;
            if (!isfinite(b.data[m]) || !isfinite(s))
                return in_fail(in, CN_E_NUMERIC, "layer %s: a batch norm folded into it gives values that are not finite",
                               l->name);
        }
    }
    return CN_OK;
}

static cn_status collect_meta(cn_onnx_in *in, cn_onnx_imported *out)
{
    static const char *const keep[] = { "norm_mean", "norm_std", "class_names", "resize" };
    const Onnx__ModelProto *m = in->model;
    out->meta = cn_calloc(in->ctx, 4, sizeof *out->meta);
    if (!out->meta) return CN_E_NOMEM;
    for (size_t k = 0; k < m->n_metadata_props; k++) {
        const Onnx__StringStringEntryProto *p = m->metadata_props[k];
        for (int j = 0; j < 4 && p->key && p->value; j++) {
            /* class_names: a name a line, as checkpoints keep them */
            if (strcmp(p->key, keep[j]) || strlen(p->value) > 65536 ||
                !(j == 2 ? cn_text_printable_lines(p->value) : cn_text_printable(p->value)))
                continue;
            int dup = 0;
            for (int i = 0; i < out->n_meta; i++) dup |= !strcmp(out->meta[i].key, keep[j]);
            if (dup) continue;
            out->meta[out->n_meta].key = keep[j];
            if (!(out->meta[out->n_meta].value = cn_strdup(in->ctx, p->value))) return CN_E_NOMEM;
            out->n_meta++;
        }
    }
    return CN_OK;
}

/* protobuf-c unpacks nested messages by recursion, without a limit: a file of a few MB nested
 * some 10^5 deep overflows the stack. This walks the wire format (keys and lengths only, through
 * the generated descriptors) and refuses messages nested deeper than ONNX ever needs; anything
 * else malformed is left to protobuf-c. Linear in len. */
#define MAX_NESTING 32

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

/* 0: nested too deep; 1: fine, or malformed (protobuf-c says so) */
static int nesting_ok(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d, int depth)
{
    if (depth > MAX_NESTING) return 0;
    while (p < end) {
        uint64_t key, n;
        if (!varint(&p, end, &key)) return 1;
        switch (key & 7) {
        case 0: if (!varint(&p, end, &n)) return 1; break;
        case 1: if (end - p < 8) return 1; p += 8; break;
        case 5: if (end - p < 4) return 1; p += 4; break;
        case 2: {
            if (!varint(&p, end, &n) || n > (uint64_t)(end - p)) return 1;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && !nesting_ok(p, p + n, f->descriptor, depth + 1)) return 0;
            p += n;
            break;
        }
        default: return 1;
        }
    }
    return 1;
}

static void *pb_alloc(void *user, size_t size) { return cn_malloc(user, size ? size : 1); }
static void pb_free(void *user, void *p) { cn_free(user, p); }

static cn_status convert(cn_onnx_in *in, cn_onnx_imported *out)
{
    const Onnx__GraphProto *g = in->g;
    cn_status st;
    char a[80];
    if ((st = check_opset(in)) || (st = build_maps(in)) || (st = add_input(in))) return st;
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *node = g->node[k];
        in->node = (int)k;
        if (node->domain && node->domain[0] && strcmp(node->domain, "ai.onnx"))
            return cn_onnx_node_fail(in, node, "domain '%s' is not supported (only ONNX's own)",
                                     shown(node->domain, a, sizeof a));
        for (size_t j = 0; j < node->n_input; j++)
            if (!node->input[j]) return in_fail(in, CN_E_FORMAT, "node %zu: input %zu is NULL", k, j);
        for (size_t j = 0; j < node->n_output; j++)
            if (!node->output[j]) return in_fail(in, CN_E_FORMAT, "node %zu: output %zu is NULL", k, j);
        int folded = 0;
        if (in->skip[k]) continue;
        if ((st = cn_onnx_fold_node(in, node, &folded))) return st;
        if (folded) continue;
        const cn_onnx_row *row = import_row(node->op_type);
        if (!row) return unsupported(in, node);
        /* every node convnet imports writes a value: the converters may read output[0] */
        if (node->n_output < 1 || !node->output[0][0]) return cn_onnx_node_fail(in, node, "has no output");
        if ((st = row->import_node(in, node))) return cn_onnx_in_status(in) ? cn_onnx_in_status(in) : st;
    }
    if (g->n_output != 1 || !g->output[0]->name)
        return in_fail(in, CN_E_UNSUPPORTED, "the graph has %zu outputs (convnet nets have one)", g->n_output);
    int last = map_get(&in->values, g->output[0]->name);
    if (last < 0 && map_get(&in->lasts, g->output[0]->name) >= 0)
        return in_fail(in, CN_E_UNSUPPORTED, "the graph's output '%s' is in channels-last order (N, H, W, C): convnet's "
                       "maps are (N, C, H, W); end the graph with a Transpose perm 0,3,1,2",
                       shown(g->output[0]->name, a, sizeof a));
    if (last < 0) return in_fail(in, CN_E_FORMAT, "the graph's output '%s' is no node's", shown(g->output[0]->name, a, sizeof a));
    if (last != in->n_layers - 1)
        return in_fail(in, CN_E_UNSUPPORTED, "the graph's output '%s' is not written by its last node (a node leads nowhere)",
                       shown(g->output[0]->name, a, sizeof a));
    char *text = render(in, NULL);
    if (!text) return CN_E_NOMEM;
    const char *spec = in->opt && in->opt->spec_name ? in->opt->spec_name : "model.cnn";
    st = cn_net_parse(in->ctx, text, strlen(text), spec, &out->net);
    cn_free(in->ctx, text);
    if (st) return in_fail(in, st, "the spec made of it does not parse: %s", cn_ctx_message(in->ctx));
    if ((st = check_params(in, out->net)) || (st = cn_net_init_params(in->ctx, out->net, CN_INIT_KAIMING_NORMAL, 1)) ||
        (st = fill(in, out->net)))
        return st;
    out->folded = in->folded;
    return collect_meta(in, out);
}

cn_status cn_onnx_import(cn_ctx *ctx, const void *data, size_t len, const char *file,
                         const cn_onnx_import_options *opt, cn_onnx_imported *out)
{
    if (!out || (!data && len)) return cn_fail(ctx, CN_E_ARG, "cn_onnx_import: NULL argument");
    memset(out, 0, sizeof *out);
    cn_onnx_in in = { .ctx = ctx, .file = file ? file : "model.onnx", .opt = opt };
    ProtobufCAllocator alloc = { pb_alloc, pb_free, ctx };
    cn_status st;
    if (!nesting_ok(data, (const uint8_t *)data + len, &onnx__model_proto__descriptor, 0)) {
        st = in_fail(&in, CN_E_FORMAT, "messages nested more than %d deep (not an ONNX model convnet reads)",
                     MAX_NESTING);
        goto out;
    }
    in.model = onnx__model_proto__unpack(&alloc, len, data);
    if (!in.model) {
        if (cn_ctx_status(ctx) == CN_E_NOMEM) st = in_fail(&in, CN_E_NOMEM, "out of memory reading the model");
        else st = in_fail(&in, CN_E_FORMAT, "not an ONNX model (its protobuf does not parse)");
    } else if (!(in.g = in.model->graph)) {
        st = in_fail(&in, CN_E_FORMAT, "the model has no graph");
    } else {
        st = convert(&in, out);
        if (st == CN_E_NOMEM && !in.st) st = cn_fail(ctx, CN_E_NOMEM, "%s: out of memory", in.file);
    }
out:
    for (int i = 0; i < in.n_layers; i++) {
        cn_free(ctx, in.layers[i].name);
        cn_free(ctx, in.layers[i].args);
        cn_free(ctx, in.layers[i].reads);
    }
    cn_free(ctx, in.layers);
    map_free(ctx, &in.inits);
    map_free(ctx, &in.values);
    map_free(ctx, &in.uses);
    map_free(ctx, &in.pad_reads);
    map_free(ctx, &in.reader);
    map_free(ctx, &in.writer);
    cn_free(ctx, in.skip);
    map_free(ctx, &in.names);
    map_free(ctx, &in.negs);
    map_free(ctx, &in.lasts);
    map_free(ctx, &in.padded);
    cn_free(ctx, in.pads);
    for (int i = 0; i < in.n_owned; i++) cn_free(ctx, in.owned[i]);
    cn_free(ctx, in.owned);
    cn_free(ctx, (void *)in.consts);
    if (in.model) onnx__model_proto__free_unpacked(in.model, &alloc);
    if (st) cn_onnx_imported_free(ctx, out);
    return st;
}

void cn_onnx_imported_free(cn_ctx *ctx, cn_onnx_imported *r)
{
    if (!r) return;
    cn_net_destroy(r->net);
    for (int i = 0; r->meta && i < r->n_meta; i++) cn_free(ctx, (void *)r->meta[i].value);
    cn_free(ctx, r->meta);
    memset(r, 0, sizeof *r);
}
