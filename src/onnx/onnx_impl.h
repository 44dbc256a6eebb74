/* onnx_impl.h — ONNX export and import: the one op table (onnx_ops.c) that maps each convnet op
 * to its ONNX node(s) and back, and the builders its converters call (onnx_export.c writes a
 * model, onnx_import.c reads one). The protobuf code is generated from Debian's onnx.proto by
 * protoc-c at build time (CMakeLists.txt). Adding an op is one row of cn_onnx_ops and its
 * converters; tests/test_onnx.c checks that every op of ops.def has a row. */
#ifndef CN_ONNX_IMPL_H
#define CN_ONNX_IMPL_H

#include "onnx.pb-c.h"

#include "../model/model_impl.h"

/* ---- export: a convnet node -> ONNX nodes -------------------------------------------------- */

typedef struct cn_onnx_out cn_onnx_out;

/* The ONNX value that node i's input k is, as a tensor of the given rank: 4 (N,C,H,W) or 2 (N,F);
 * rank 0 takes it as it is. A map read as rank 2 gets a Flatten, a vector read as rank 4 a
 * Reshape to (N,F,1,1). NULL after a failure (the builder keeps the status). */
const char *cn_onnx_input(cn_onnx_out *o, int i, int k, int rank);
/* Appends node op_type reading inputs[0..n_in) and writing output; NULL after a failure. The
 * node's output value gets the rank of node i (set it with cn_onnx_set_rank when it changes). */
Onnx__NodeProto *cn_onnx_emit(cn_onnx_out *o, const char *op_type, const char *name, const char *const *inputs,
                              int n_in, const char *output);
void cn_onnx_attr_int(cn_onnx_out *o, Onnx__NodeProto *node, const char *name, int64_t v);
void cn_onnx_attr_ints(cn_onnx_out *o, Onnx__NodeProto *node, const char *name, const int64_t *v, int n);
void cn_onnx_attr_float(cn_onnx_out *o, Onnx__NodeProto *node, const char *name, float v);
void cn_onnx_attr_string(cn_onnx_out *o, Onnx__NodeProto *node, const char *name, const char *v); /* v: static */
/* The initializer of node i's tensor `name` ("weight", ...), pointing into the net's slab, and
 * its ONNX name ("conv1.weight"); NULL when the layer has no such tensor. */
const char *cn_onnx_param(cn_onnx_out *o, int i, const char *name);
/* The same with the dims given (as many values): PRelu's slope (C) written as (C, 1, 1) */
const char *cn_onnx_param_as(cn_onnx_out *o, int i, const char *name, const int64_t *dims, int n_dims);
/* A constant initializer named name: n float (dims as given) values, or n int64 values. */
const char *cn_onnx_const_float(cn_onnx_out *o, const char *name, const int64_t *dims, int n_dims, const float *v,
                                int64_t n);
/* A tensor of these dims, every value v (a norm's scale and shift when affine=no) */
const char *cn_onnx_const_fill(cn_onnx_out *o, const char *name, const int64_t *dims, int n_dims, float v);
const char *cn_onnx_const_int64(cn_onnx_out *o, const char *name, const int64_t *v, int n);
/* A value name private to node i: "<layer>/<suffix>". */
const char *cn_onnx_temp(cn_onnx_out *o, int i, const char *suffix);
/* The rank (2 or 4) of node i's output in the ONNX graph. */
void cn_onnx_set_rank(cn_onnx_out *o, int i, int rank);
int cn_onnx_rank(const cn_onnx_out *o, int i);
/* The net and the failure state, for converters */
const cn_net *cn_onnx_out_net(const cn_onnx_out *o);
cn_status cn_onnx_out_status(const cn_onnx_out *o);
/* Fails the export (CN_E_UNSUPPORTED): "layer NAME: message" */
cn_status cn_onnx_out_fail(cn_onnx_out *o, int i, const char *fmt, ...) CN_PRINTF(3, 4);

/* ---- import: an ONNX node -> a spec statement and its tensors ----------------------------- */

typedef struct cn_onnx_in cn_onnx_in;
typedef struct cn_onnx_layer cn_onnx_layer;

/* An initializer, checked: float32, dims >= 0 whose product is its number of values. */
typedef struct cn_onnx_tensor {
    const char *name;
    int n_dims;
    const int64_t *dims;
    int64_t count;
    const float *f;             /* float_data, or NULL: */
    const uint8_t *raw;         /* count * 4 little-endian bytes (maybe unaligned) */
} cn_onnx_tensor;

/* Value j of a tensor (either storage). */
float cn_onnx_value(const cn_onnx_tensor *t, int64_t j);

/* Attributes, type-checked: a wrong type or count is an error naming the node; *v keeps def
 * when the attribute is absent. */
cn_status cn_onnx_get_int(cn_onnx_in *in, const Onnx__NodeProto *node, const char *name, int64_t *v);
cn_status cn_onnx_get_float(cn_onnx_in *in, const Onnx__NodeProto *node, const char *name, double *v);
/* exactly n values, or absent (v left as given) */
cn_status cn_onnx_get_ints(cn_onnx_in *in, const Onnx__NodeProto *node, const char *name, int64_t *v, int n);
/* The initializer that input k of node is (*t zeroed and CN_OK when the input is absent and
 * optional, required = 0); an input that is not an initializer is an error. rank: the dims
 * count it must have (0: any). */
cn_status cn_onnx_get_tensor(cn_onnx_in *in, const Onnx__NodeProto *node, int k, int required, int rank,
                             cn_onnx_tensor *t);
/* The int64 vector initializer that input k of node is (at most cap values; a Reshape's shape). */
cn_status cn_onnx_get_int64s(cn_onnx_in *in, const Onnx__NodeProto *node, int k, int64_t *v, int cap, int *n);
/* The initializer or Constant value of that name (NULL: none). */
const Onnx__TensorProto *cn_onnx_const_at(const cn_onnx_in *in, const char *name);
/* A new constant (zeroed tensor and `extra` bytes after it, owned by the import) that node's
 * output 0 is; NULL after a failure. */
Onnx__TensorProto *cn_onnx_new_const(cn_onnx_in *in, const Onnx__NodeProto *node, size_t extra);
/* Node computed from constants only, in small int64 tensors (F.pad's pads): *folded = 1 and its
 * output a new constant (onnx_fold.c); *folded = 0 when it is not such a node. */
cn_status cn_onnx_fold_node(cn_onnx_in *in, const Onnx__NodeProto *node, int *folded);
/* A Constant node: its tensor read as an initializer. */
cn_status cn_onnx_constant(cn_onnx_in *in, const Onnx__NodeProto *node);
/* A Pad node's output: its input with zeros around it, [t, l, b, r], which only a Conv or an
 * AveragePool (counting padded cells) may read, as padding of its own. */
cn_status cn_onnx_pad_value(cn_onnx_in *in, const Onnx__NodeProto *node, const int64_t pads[4]);
/* Inputs of node that are values of the graph (not initializers): count, and the rank of the
 * k-th (2 or 4). */
int cn_onnx_value_inputs(const cn_onnx_in *in, const Onnx__NodeProto *node);
int cn_onnx_input_rank(const cn_onnx_in *in, const Onnx__NodeProto *node, int k);
/* The C, H, W of node input 0 (the spec of the layers it depends on, parsed: for a Slice's ends). */
cn_status cn_onnx_input_dims(cn_onnx_in *in, const Onnx__NodeProto *node, int64_t dims[3]);
/* Node output 0 is read only as input 0 of Conv and AveragePool nodes (which take a Pad's zeros
 * as padding of their own). */
int cn_onnx_read_as_padding(const cn_onnx_in *in, const Onnx__NodeProto *node);
/* A batch the graph's input leaves free, where a shape read off a tensor holds it (onnx_fold.c) */
#define CN_ONNX_BATCH (-(INT64_C(1) << 62))
/* The graph input's batch: its fixed size, else CN_ONNX_BATCH. */
int64_t cn_onnx_batch(const cn_onnx_in *in);
/* v may stand for the batch in a reshape's shape: 0 (kept), the graph's fixed batch, CN_ONNX_BATCH. */
int cn_onnx_is_batch(const cn_onnx_in *in, int64_t v);
/* The opset of the model's default domain. */
int64_t cn_onnx_opset(const cn_onnx_in *in);
/* An error naming the node: "FILE: node N 'NAME' (OP): message". */
cn_status cn_onnx_node_fail(cn_onnx_in *in, const Onnx__NodeProto *node, const char *fmt, ...) CN_PRINTF(3, 4);

/* A statement "TYPE ARGS" for node, reading its first n_read value inputs (0: all), its output
 * being rank `rank` (0: the first input's). NULL after a failure. */
cn_onnx_layer *cn_onnx_add_layer(cn_onnx_in *in, const Onnx__NodeProto *node, const char *type, int n_read, int rank,
                                 const char *args_fmt, ...) CN_PRINTF(6, 7);
/* One statement for a pattern of nodes (SiLU's Sigmoid, Mul): reading first's input 0, writing
 * last's output 0 (the nodes between are marked with cn_onnx_skip). */
cn_onnx_layer *cn_onnx_add_pattern(cn_onnx_in *in, const Onnx__NodeProto *first, const Onnx__NodeProto *last,
                                   const char *type, int rank, const char *args_fmt, ...) CN_PRINTF(6, 7);
/* A layer that reads a channels-last value (N, H, W, C: after a Transpose perm 0,2,3,1) over its
 * channels (MatMul's 1x1 conv, LayerNormalization of the last axis, Mul by a per-channel
 * constant), reading first's value input and writing last's output 0; in channels-last order when
 * it read so (a layer of the list of element-wise ones may read such values through
 * cn_onnx_add_layer and cn_onnx_add_pattern too). */
cn_onnx_layer *cn_onnx_add_channelwise(cn_onnx_in *in, const Onnx__NodeProto *first, const Onnx__NodeProto *last,
                                       const char *type, const char *args_fmt, ...) CN_PRINTF(5, 6);
/* Input k of node is a channels-last value. */
int cn_onnx_channels_last(const cn_onnx_in *in, const Onnx__NodeProto *node, int k);
/* Node's output is its input 0 turned to channels-last order (to_last: a map's Transpose perm
 * 0,2,3,1) or back (perm 0,3,1,2 of a channels-last value): the same layer's output. */
cn_status cn_onnx_turn(cn_onnx_in *in, const Onnx__NodeProto *node, int to_last);
/* Patterns: the one node after the current one that reads node's output, when it is the only
 * reader and of that op type (else NULL); the node of that op type that writes value (else
 * NULL); a node taken into a pattern, which the import then passes over; a constant of one
 * float value. */
const Onnx__NodeProto *cn_onnx_sole_reader(const cn_onnx_in *in, const Onnx__NodeProto *node, const char *op_type);
const Onnx__NodeProto *cn_onnx_writer(const cn_onnx_in *in, const char *value, const char *op_type);
void cn_onnx_skip(cn_onnx_in *in, const Onnx__NodeProto *node);
int cn_onnx_scalar(const cn_onnx_in *in, const char *name, double *v);
/* Whether value is read by nodes of op_type alone (at least one), and is no output of the graph. */
int cn_onnx_read_only_by(const cn_onnx_in *in, const char *value, const char *op_type);
/* Node's output is its first input's layer (Identity, Dropout in inference). */
cn_status cn_onnx_alias(cn_onnx_in *in, const Onnx__NodeProto *node);
/* A Clip to at most 6 after a Relu that it alone reads (PyTorch's relu6 at opset 9, whose Clip
 * had no lower bound there): that relu becomes relu6, and node's output is its value; else
 * CN_E_UNSUPPORTED, no failure recorded. */
cn_status cn_onnx_relu_to_relu6(cn_onnx_in *in, const Onnx__NodeProto *node);
/* Node's output is its first input negated (Neg): only a MaxPool (as convnet's minpool, which
 * then writes a negated value) or another Neg may read it. cn_onnx_negated: input 0 is one. */
cn_status cn_onnx_negate(cn_onnx_in *in, const Onnx__NodeProto *node);
int cn_onnx_negated(const cn_onnx_in *in, const Onnx__NodeProto *node);
/* Tensor `name` of layer ("weight", ...) is filled from t; transpose 1: t is 2-D and copied
 * transposed (Gemm with transB=0; MatMul's (K, D) as a 1x1 conv's (D, K, 1, 1)); CN_ONNX_FLAT:
 * the values in order, of any dims of the same count (a (C, 1, 1) scale as a depthwise 1x1
 * conv's (C, 1, 1, 1) weight: a count of C x the input's channels / C tells a wrong input). */
#define CN_ONNX_FLAT 2
cn_status cn_onnx_layer_tensor(cn_onnx_in *in, cn_onnx_layer *l, const char *name, const cn_onnx_tensor *t,
                               int transpose);
/* The layer whose output is node input 0, when a conv that only node reads (BN folding); else NULL. */
cn_onnx_layer *cn_onnx_foldable_conv(cn_onnx_in *in, const Onnx__NodeProto *node);
/* Folds batch norm y = scale (x - mean) / sqrt(var + eps) + b into conv layer l. */
cn_status cn_onnx_fold_bn(cn_onnx_in *in, cn_onnx_layer *l, const Onnx__NodeProto *node, const cn_onnx_tensor *scale,
                          const cn_onnx_tensor *b, const cn_onnx_tensor *mean, const cn_onnx_tensor *var, double eps);
/* Appends the padding of a conv or pooling node (auto_pad, pads [t, l, b, r]) to layer l's
 * statement: "pad=THxTW" when symmetric, else "pad=same", which the layer must resolve to exactly
 * these (checked once the net is parsed). */
cn_status cn_onnx_pads(cn_onnx_in *in, cn_onnx_layer *l, const Onnx__NodeProto *node);
/* A max pool whose pads are all at the end (bottom e[0], right e[1]), as exporters before
 * opset 10 write PyTorch's ceil_mode: appended as "pad=0" (the statement says ceil=yes), which
 * must give the output of the pads in floor mode, floor((in + e - span) / stride) + 1 for the
 * window's span (checked once the net is parsed: the same windows then). */
int cn_onnx_has_auto_pad(const Onnx__NodeProto *node); /* an auto_pad other than NOTSET */
cn_status cn_onnx_end_pads(cn_onnx_in *in, cn_onnx_layer *l, const int64_t e[2], const int64_t span[2],
                           const int64_t stride[2]);
/* Appends " key=value ..." (printf) to layer l's statement. */
cn_status cn_onnx_append_args(cn_onnx_in *in, cn_onnx_layer *l, const char *fmt, ...) CN_PRINTF(3, 4);
/* Input 0 of node is a Pad's output (zeros that a Conv or an AveragePool takes as its padding). */
int cn_onnx_padded(const cn_onnx_in *in, const Onnx__NodeProto *node);
/* The layer takes bias=yes|no, written yes when a "bias" tensor or a folded batch norm gives it. */
void cn_onnx_bias_key(cn_onnx_layer *l);
/* The first failure's status (CN_OK when none). */
cn_status cn_onnx_in_status(const cn_onnx_in *in);
/* The import options */
int cn_onnx_fold_bn_on(const cn_onnx_in *in);

/* ---- the table ---------------------------------------------------------------------------- */

typedef struct cn_onnx_row {
    int op;                  /* its cn_op_id; -1: an ONNX op imported only (Identity, Sum) */
    const char *onnx;        /* the ONNX op type it is written as and read from */
    cn_status (*export_node)(cn_onnx_out *o, int i);               /* NULL: not written */
    cn_status (*import_node)(cn_onnx_in *in, const Onnx__NodeProto *node); /* NULL: not read */
} cn_onnx_row;

extern const cn_onnx_row cn_onnx_rows[];
extern const int cn_onnx_row_count;

#endif /* CN_ONNX_IMPL_H */
