/* onnx_export.c — a net with its parameters as an ONNX model (IR version 8, opset 17): the
 * graph's input is the net's input (N,C,H,W) with N free, every layer is written by its row of
 * the op table (onnx_ops.c), the weights are initializers named as in checkpoints
 * ("conv1.weight"). The message is built from protobuf-c's generated structs and packed once;
 * the weights are not copied before packing. Checked by tests/test_onnx.c and tests/onnx_test.sh
 * (ONNX Runtime, onnx.checker). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/io_impl.h"
#include "onnx_impl.h"

struct cn_onnx_out {
    cn_ctx *ctx;
    const cn_net *net;
    cn_status st;
    void **allocs;              /* everything built, freed together */
    size_t n_allocs, cap_allocs;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    int *rank;                  /* per net node: 2 or 4 */
    const char **as2d, **as4d;  /* per net node: its value flattened / as (N,F,1,1), once made */
    const char *shape_nf11;     /* the Reshape target (0,-1,1,1), once made */
};

static void *out_alloc(cn_onnx_out *o, size_t size)
{
    if (o->st) return NULL;
    if (o->n_allocs == o->cap_allocs) {
        size_t cap = o->cap_allocs ? 2 * o->cap_allocs : 256;
        void **p = cn_realloc(o->ctx, o->allocs, cap * sizeof *p);
        if (!p) {
            o->st = CN_E_NOMEM;
            return NULL;
        }
        o->allocs = p;
        o->cap_allocs = cap;
    }
    void *p = cn_calloc(o->ctx, 1, size);
    if (!p) {
        o->st = CN_E_NOMEM;
        return NULL;
    }
    return o->allocs[o->n_allocs++] = p;
}

/* appends p to a growing array of pointers */
static int out_push(cn_onnx_out *o, void ***arr, size_t *n, size_t *cap, void *p)
{
    if (o->st || !p) return 0;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        void **q = cn_realloc(o->ctx, *arr, c * sizeof *q);
        if (!q) {
            o->st = CN_E_NOMEM;
            return 0;
        }
        *arr = q;
        *cap = c;
    }
    (*arr)[(*n)++] = p;
    return 1;
}

const cn_net *cn_onnx_out_net(const cn_onnx_out *o) { return o->net; }
cn_status cn_onnx_out_status(const cn_onnx_out *o) { return o->st; }

cn_status cn_onnx_out_fail(cn_onnx_out *o, int i, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return o->st = cn_fail(o->ctx, CN_E_UNSUPPORTED, "layer %s: %s", o->net->nodes[i].name, msg);
}
void cn_onnx_set_rank(cn_onnx_out *o, int i, int rank) { o->rank[i] = rank; }
int cn_onnx_rank(const cn_onnx_out *o, int i) { return o->rank[i]; }

const char *cn_onnx_temp(cn_onnx_out *o, int i, const char *suffix)
{
    const char *name = o->net->nodes[i].name;
    char *s = out_alloc(o, strlen(name) + strlen(suffix) + 2);
    if (s) sprintf(s, "%s/%s", name, suffix);
    return s;
}

Onnx__NodeProto *cn_onnx_emit(cn_onnx_out *o, const char *op_type, const char *name, const char *const *inputs,
                              int n_in, const char *output)
{
    Onnx__NodeProto *node = out_alloc(o, sizeof *node);
    char **in = out_alloc(o, sizeof(char *) * (size_t)(n_in ? n_in : 1));
    char **out = out_alloc(o, sizeof(char *));
    if (!node || !in || !out) return NULL;
    onnx__node_proto__init(node);
    for (int k = 0; k < n_in; k++) {
        if (!inputs[k]) return NULL; /* a failed input: the status is set */
        in[k] = (char *)inputs[k];
    }
    out[0] = (char *)output;
    node->n_input = (size_t)n_in;
    node->input = in;
    node->n_output = 1;
    node->output = out;
    node->name = (char *)name;
    node->op_type = (char *)op_type;
    return out_push(o, (void ***)&o->nodes, &o->n_nodes, &o->cap_nodes, node) ? node : NULL;
}

static Onnx__AttributeProto *add_attr(cn_onnx_out *o, Onnx__NodeProto *node, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    if (!node) return NULL;
    Onnx__AttributeProto *a = out_alloc(o, sizeof *a);
    Onnx__AttributeProto **arr = out_alloc(o, sizeof(*arr) * (node->n_attribute + 1));
    if (!a || !arr) return NULL;
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    if (node->n_attribute) memcpy(arr, node->attribute, sizeof(*arr) * node->n_attribute);
    arr[node->n_attribute++] = a;
    node->attribute = arr;
    return a;
}

void cn_onnx_attr_int(cn_onnx_out *o, Onnx__NodeProto *node, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = add_attr(o, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
}

void cn_onnx_attr_float(cn_onnx_out *o, Onnx__NodeProto *node, const char *name, float v)
{
    Onnx__AttributeProto *a = add_attr(o, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = v;
}

void cn_onnx_attr_string(cn_onnx_out *o, Onnx__NodeProto *node, const char *name, const char *v)
{
    Onnx__AttributeProto *a = add_attr(o, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (a) a->has_s = 1, a->s.len = strlen(v), a->s.data = (uint8_t *)v;
}

void cn_onnx_attr_ints(cn_onnx_out *o, Onnx__NodeProto *node, const char *name, const int64_t *v, int n)
{
    Onnx__AttributeProto *a = add_attr(o, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *copy = a ? out_alloc(o, sizeof(int64_t) * (size_t)n) : NULL;
    if (!copy) return;
    memcpy(copy, v, sizeof(int64_t) * (size_t)n);
    a->n_ints = (size_t)n;
    a->ints = copy;
}

/* an initializer of dims[0..n_dims) whose little-endian bytes are data (not copied) */
static const char *add_init(cn_onnx_out *o, const char *name, int32_t type, const int64_t *dims, int n_dims,
                            const void *data, size_t bytes)
{
    Onnx__TensorProto *t = out_alloc(o, sizeof *t);
    int64_t *d = out_alloc(o, sizeof(int64_t) * (size_t)(n_dims ? n_dims : 1));
    if (!t || !d || !name) return NULL;
    onnx__tensor_proto__init(t);
    if (n_dims) memcpy(d, dims, sizeof(int64_t) * (size_t)n_dims);
    t->n_dims = (size_t)n_dims;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = type;
    t->name = (char *)name;
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = (uint8_t *)data;
    return out_push(o, (void ***)&o->inits, &o->n_inits, &o->cap_inits, t) ? name : NULL;
}

const char *cn_onnx_const_float(cn_onnx_out *o, const char *name, const int64_t *dims, int n_dims, const float *v,
                                int64_t n)
{
    float *copy = out_alloc(o, sizeof(float) * (size_t)n);
    if (!copy) return NULL;
    memcpy(copy, v, sizeof(float) * (size_t)n);
    return add_init(o, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, n_dims, copy, sizeof(float) * (size_t)n);
}

const char *cn_onnx_const_fill(cn_onnx_out *o, const char *name, const int64_t *dims, int n_dims, float v)
{
    int64_t n = 1;
    for (int d = 0; d < n_dims; d++) n *= dims[d];
    float *vals = out_alloc(o, sizeof(float) * (size_t)n);
    if (!vals) return NULL;
    for (int64_t k = 0; k < n; k++) vals[k] = v;
    return add_init(o, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, n_dims, vals, sizeof(float) * (size_t)n);
}

const char *cn_onnx_const_int64(cn_onnx_out *o, const char *name, const int64_t *v, int n)
{
    int64_t *copy = out_alloc(o, sizeof(int64_t) * (size_t)n), dims[1] = { n };
    if (!copy) return NULL;
    memcpy(copy, v, sizeof(int64_t) * (size_t)n);
    return add_init(o, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims, 1, copy, sizeof(int64_t) * (size_t)n);
}

const char *cn_onnx_param(cn_onnx_out *o, int i, const char *name) { return cn_onnx_param_as(o, i, name, NULL, 0); }

const char *cn_onnx_param_as(cn_onnx_out *o, int i, const char *name, const int64_t *dims, int n_dims)
{
    if (o->st) return NULL;
    cn_param_info p[CN_MAX_LAYER_TENSORS];
    int n = cn_net_layer_params(o->net, i, p);
    for (int k = 0; k < n; k++) {
        if (strcmp(p[k].name, name)) continue;
        char *full = out_alloc(o, strlen(p[k].layer) + strlen(name) + 2);
        cn_tensor t;
        if (!full) return NULL;
        sprintf(full, "%s.%s", p[k].layer, name);
        if ((o->st = cn_net_find_tensor(o->ctx, o->net, full, &t))) return NULL;
        return add_init(o, full, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims ? dims : t.shape, dims ? n_dims : t.rank,
                        t.data, sizeof(float) * (size_t)t.count);
    }
    return NULL;
}

const char *cn_onnx_input(cn_onnx_out *o, int i, int k, int rank)
{
    if (o->st) return NULL;
    int j = o->net->nodes[i].in[k];
    const char *name = o->net->nodes[j].name;
    if (!rank || rank == o->rank[j]) return name;
    if (rank == 2) { /* a map read as a vector: (N, C*H*W) in C, H, W order, as convnet's dense */
        if (!o->as2d[j]) {
            const char *flat = cn_onnx_temp(o, j, "flat");
            cn_onnx_attr_int(o, cn_onnx_emit(o, "Flatten", flat, &name, 1, flat), "axis", 1);
            o->as2d[j] = flat;
        }
        return o->st ? NULL : o->as2d[j];
    }
    if (!o->as4d[j]) { /* a vector read as a map of 1x1 */
        static const int64_t nf11[4] = { 0, -1, 1, 1 };
        if (!o->shape_nf11) o->shape_nf11 = cn_onnx_const_int64(o, "convnet.shape_n_f_1_1", nf11, 4);
        const char *map = cn_onnx_temp(o, j, "map"), *in[2] = { name, o->shape_nf11 };
        cn_onnx_emit(o, "Reshape", map, in, 2, map);
        o->as4d[j] = map;
    }
    return o->st ? NULL : o->as4d[j];
}

/* a graph input or output: float, (N, C, H, W) or (N, C) with N named "N" */
static Onnx__ValueInfoProto *value_info(cn_onnx_out *o, const char *name, const cn_node *n, int rank)
{
    Onnx__ValueInfoProto *v = out_alloc(o, sizeof *v);
    Onnx__TypeProto *type = out_alloc(o, sizeof *type);
    Onnx__TypeProto__Tensor *tt = out_alloc(o, sizeof *tt);
    Onnx__TensorShapeProto *shape = out_alloc(o, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dims = out_alloc(o, sizeof(*dims) * 4);
    if (!v || !type || !tt || !shape || !dims) return NULL;
    int64_t size[4] = { 0, n->out.c, n->out.h, n->out.w };
    for (int k = 0; k < rank; k++) {
        if (!(dims[k] = out_alloc(o, sizeof **dims))) return NULL;
        onnx__tensor_shape_proto__dimension__init(dims[k]);
        if (k) {
            dims[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dims[k]->dim_value = size[k];
        } else {
            dims[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dims[k]->dim_param = "N";
        }
    }
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(shape);
    shape->n_dim = (size_t)rank;
    shape->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = shape;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tt;
    v->name = (char *)name;
    v->type = type;
    return v;
}

static const cn_onnx_row *row_of(int op)
{
    for (int r = 0; r < cn_onnx_row_count; r++)
        if (cn_onnx_rows[r].op == op && cn_onnx_rows[r].export_node) return &cn_onnx_rows[r];
    return NULL;
}

/* the model: graph, opset, metadata; packed into *buf (malloc'ed by the context) */
static cn_status build(cn_onnx_out *o, const cn_kv *meta, int n_meta, uint8_t **buf, size_t *len)
{
    const cn_net *net = o->net;
    for (int i = 0; i < net->n && !o->st; i++) {
        const cn_onnx_row *row = row_of(net->nodes[i].id);
        if (!row)
            return cn_fail(o->ctx, CN_E_UNSUPPORTED, "layer %s: ONNX export of %s is not supported", net->nodes[i].name,
                           net->nodes[i].op->name);
        o->rank[i] = i ? o->rank[net->nodes[i].in[0]] : 4;
        if ((o->st = row->export_node(o, i))) break;
    }
    Onnx__ModelProto *model = out_alloc(o, sizeof *model);
    Onnx__GraphProto *graph = out_alloc(o, sizeof *graph);
    Onnx__OperatorSetIdProto *opset = out_alloc(o, sizeof *opset), **opsets = out_alloc(o, sizeof *opsets);
    Onnx__ValueInfoProto **in = out_alloc(o, sizeof *in), **out = out_alloc(o, sizeof *out);
    Onnx__StringStringEntryProto **props = out_alloc(o, sizeof(*props) * (size_t)(n_meta ? n_meta : 1));
    if (o->st) return o->st == CN_E_NOMEM ? cn_fail(o->ctx, CN_E_NOMEM, "out of memory building the ONNX model") : o->st;
    for (int k = 0; k < n_meta; k++) {
        if (!(props[k] = out_alloc(o, sizeof **props))) return cn_fail(o->ctx, CN_E_NOMEM, "out of memory");
        onnx__string_string_entry_proto__init(props[k]);
        props[k]->key = (char *)meta[k].key;
        props[k]->value = (char *)meta[k].value;
    }
    const cn_node *last = &net->nodes[net->n - 1];
    in[0] = value_info(o, net->nodes[0].name, &net->nodes[0], 4);
    out[0] = value_info(o, last->name, last, o->rank[net->n - 1]);
    if (!in[0] || !out[0]) return cn_fail(o->ctx, CN_E_NOMEM, "out of memory building the ONNX model");
    onnx__model_proto__init(model);
    onnx__graph_proto__init(graph);
    onnx__operator_set_id_proto__init(opset);
    opset->domain = "";
    opset->has_version = 1;
    opset->version = CN_ONNX_OPSET;
    opsets[0] = opset;
    graph->name = "convnet";
    graph->n_node = o->n_nodes;
    graph->node = o->nodes;
    graph->n_initializer = o->n_inits;
    graph->initializer = o->inits;
    graph->n_input = 1;
    graph->input = in;
    graph->n_output = 1;
    graph->output = out;
    model->has_ir_version = 1;
    model->ir_version = CN_ONNX_IR_VERSION;
    model->n_opset_import = 1;
    model->opset_import = opsets;
    model->producer_name = "convnet";
    model->producer_version = CN_VERSION;
    model->graph = graph;
    model->n_metadata_props = (size_t)n_meta;
    model->metadata_props = props;
    *len = onnx__model_proto__get_packed_size(model);
    if (!(*buf = cn_malloc(o->ctx, *len ? *len : 1))) return CN_E_NOMEM;
    onnx__model_proto__pack(model, *buf);
    return CN_OK;
}

cn_status cn_onnx_export(cn_ctx *ctx, const cn_net *net, const cn_kv *meta, int n_meta, const char *path)
{
    if (!net || !path || n_meta < 0 || (n_meta && !meta)) return cn_fail(ctx, CN_E_ARG, "cn_onnx_export: bad argument");
    if (!net->ex.params) return cn_fail(ctx, CN_E_ARG, "cn_onnx_export: the net's parameters are not initialised");
    cn_onnx_out o = { .ctx = ctx, .net = net };
    uint8_t *buf = NULL;
    size_t len = 0;
    cn_status st;
    o.rank = cn_calloc(ctx, (size_t)net->n, sizeof *o.rank);
    o.as2d = cn_calloc(ctx, (size_t)net->n, sizeof *o.as2d);
    o.as4d = cn_calloc(ctx, (size_t)net->n, sizeof *o.as4d);
    if (!o.rank || !o.as2d || !o.as4d) st = CN_E_NOMEM;
    else st = build(&o, meta, n_meta, &buf, &len);
    if (!st) {
        cn_span part = { buf, len };
        st = cn_write_atomic(ctx, "ONNX model", path, &part, 1);
    }
    cn_free(ctx, buf);
    for (size_t k = 0; k < o.n_allocs; k++) cn_free(ctx, o.allocs[k]);
    cn_free(ctx, o.allocs);
    cn_free(ctx, o.nodes);
    cn_free(ctx, o.inits);
    cn_free(ctx, o.rank);
    cn_free(ctx, (void *)o.as2d);
    cn_free(ctx, (void *)o.as4d);
    return st;
}

int cn_onnx_available(void) { return 1; }
