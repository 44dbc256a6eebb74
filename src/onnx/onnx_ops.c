/* onnx_ops.c — the one table between convnet's ops and ONNX's (opset 17): a row per op with its
 * ONNX op type, the converter that writes a convnet node as ONNX nodes and the one that reads an
 * ONNX node as a spec statement. Covered by tests/test_onnx.c (every op of ops.def has a row;
 * export checked by ONNX Runtime and onnx.checker, import by PyTorch's exports). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../ops/pool_ref.h"
#include "onnx_impl.h"

/* ---- export ----------------------------------------------------------------------------------- */

/* one node reading input 0 (as the op needs its rank) and writing the layer's value */
static Onnx__NodeProto *emit_unary(cn_onnx_out *o, int i, const char *op_type, int rank)
{
    const char *x = cn_onnx_input(o, i, 0, rank);
    if (!x) return NULL;
    const cn_net *net = cn_onnx_out_net(o);
    if (rank) cn_onnx_set_rank(o, i, rank);
    return cn_onnx_emit(o, op_type, net->nodes[i].name, &x, 1, net->nodes[i].name);
}

static cn_status export_input(cn_onnx_out *o, int i)
{
    cn_onnx_set_rank(o, i, 4); /* the graph's input (onnx_export.c) */
    return cn_onnx_out_status(o);
}

static cn_status export_conv(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    const cn_attrs *a = &n->a;
    const char *in[3] = { cn_onnx_input(o, i, 0, 4), cn_onnx_param(o, i, "weight"), cn_onnx_param(o, i, "bias") };
    cn_onnx_set_rank(o, i, 4);
    Onnx__NodeProto *node = cn_onnx_emit(o, "Conv", n->name, in, a->bias ? 3 : 2, n->name);
    int64_t k[2] = { a->kernel.h, a->kernel.w }, s[2] = { a->stride.h, a->stride.w };
    int64_t d[2] = { a->dilation.h, a->dilation.w }, p[4] = { n->pad_t, n->pad_l, n->pad_b, n->pad_r };
    cn_onnx_attr_ints(o, node, "kernel_shape", k, 2);
    cn_onnx_attr_ints(o, node, "strides", s, 2);
    cn_onnx_attr_ints(o, node, "dilations", d, 2);
    cn_onnx_attr_ints(o, node, "pads", p, 4);
    cn_onnx_attr_int(o, node, "group", a->groups);
    return cn_onnx_out_status(o);
}

/* ConvTranspose: the weight (Cin, Cout/groups, Kh, Kw) is ONNX's layout already */
static cn_status export_deconv(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    const cn_attrs *a = &n->a;
    const char *in[3] = { cn_onnx_input(o, i, 0, 4), cn_onnx_param(o, i, "weight"), cn_onnx_param(o, i, "bias") };
    cn_onnx_set_rank(o, i, 4);
    Onnx__NodeProto *node = cn_onnx_emit(o, "ConvTranspose", n->name, in, a->bias ? 3 : 2, n->name);
    int64_t k[2] = { a->kernel.h, a->kernel.w }, s[2] = { a->stride.h, a->stride.w };
    int64_t d[2] = { a->dilation.h, a->dilation.w }, p[4] = { a->pad.h, a->pad.w, a->pad.h, a->pad.w };
    int64_t op[2] = { a->outpad.h, a->outpad.w };
    cn_onnx_attr_ints(o, node, "kernel_shape", k, 2);
    cn_onnx_attr_ints(o, node, "strides", s, 2);
    cn_onnx_attr_ints(o, node, "dilations", d, 2);
    cn_onnx_attr_ints(o, node, "pads", p, 4);
    cn_onnx_attr_ints(o, node, "output_padding", op, 2);
    cn_onnx_attr_int(o, node, "group", a->groups);
    return cn_onnx_out_status(o);
}

/* MaxPool or AveragePool with convnet's window: the padding avgpool's divisor counts (pool_ref.h) */
static Onnx__NodeProto *emit_pool(cn_onnx_out *o, int i, const char *op_type, const char *x, const char *y)
{
    const cn_net *net = cn_onnx_out_net(o);
    const cn_node *n = &net->nodes[i];
    cn_pool_geom g = cn_pool_geom_of(n, &net->nodes[n->in[0]], 1);
    Onnx__NodeProto *node = cn_onnx_emit(o, op_type, y, &x, 1, y);
    int64_t k[2] = { g.kh, g.kw }, s[2] = { g.sh, g.sw }, p[4] = { g.pad_t, g.pad_l, g.pad_b, g.pad_r };
    cn_onnx_attr_ints(o, node, "kernel_shape", k, 2);
    cn_onnx_attr_ints(o, node, "strides", s, 2);
    cn_onnx_attr_ints(o, node, "pads", p, 4);
    cn_onnx_attr_int(o, node, "ceil_mode", n->a.ceil);
    if (g.dh != 1 || g.dw != 1) { /* MaxPool's only: AveragePool has no dilations before opset 19 */
        int64_t d[2] = { g.dh, g.dw };
        cn_onnx_attr_ints(o, node, "dilations", d, 2);
    }
    return node;
}

static cn_status export_maxpool(cn_onnx_out *o, int i)
{
    const char *x = cn_onnx_input(o, i, 0, 4);
    cn_onnx_set_rank(o, i, 4);
    if (x) emit_pool(o, i, "MaxPool", x, cn_onnx_out_net(o)->nodes[i].name);
    return cn_onnx_out_status(o);
}

static cn_status export_avgpool(cn_onnx_out *o, int i)
{
    const char *x = cn_onnx_input(o, i, 0, 4);
    cn_onnx_set_rank(o, i, 4);
    Onnx__NodeProto *node = x ? emit_pool(o, i, "AveragePool", x, cn_onnx_out_net(o)->nodes[i].name) : NULL;
    /* count_pad=yes: padded cells count as zeros, as PyTorch's default */
    cn_onnx_attr_int(o, node, "count_include_pad", cn_onnx_out_net(o)->nodes[i].a.count_pad);
    return cn_onnx_out_status(o);
}

/* windows of in/out cells, in/out apart, when out divides in (then PyTorch's adaptive windows are
 * those); ONNX has no adaptive pooling for other sizes */
static cn_status export_adaptiveavgpool(cn_onnx_out *o, int i)
{
    const cn_net *net = cn_onnx_out_net(o);
    const cn_node *n = &net->nodes[i];
    const cn_dims *x = &net->nodes[n->in[0]].out;
    if (x->h % n->out.h || x->w % n->out.w)
        return cn_onnx_out_fail(o, i, "adaptiveavgpool from %lldx%lld to %lldx%lld has no ONNX form (ONNX's "
                                      "AveragePool needs the output size to divide the input's)",
                                (long long)x->h, (long long)x->w, (long long)n->out.h, (long long)n->out.w);
    const char *in = cn_onnx_input(o, i, 0, 4);
    cn_onnx_set_rank(o, i, 4);
    Onnx__NodeProto *node = in ? cn_onnx_emit(o, "AveragePool", n->name, &in, 1, n->name) : NULL;
    int64_t k[2] = { x->h / n->out.h, x->w / n->out.w };
    cn_onnx_attr_ints(o, node, "kernel_shape", k, 2);
    cn_onnx_attr_ints(o, node, "strides", k, 2);
    return cn_onnx_out_status(o);
}

/* ONNX has no MinPool: min(x) = -max(-x), padding ignored by both */
static cn_status export_minpool(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    const char *x = cn_onnx_input(o, i, 0, 4), *neg = cn_onnx_temp(o, i, "neg"), *max = cn_onnx_temp(o, i, "max");
    cn_onnx_set_rank(o, i, 4);
    if (!x || !neg || !max) return cn_onnx_out_status(o);
    cn_onnx_emit(o, "Neg", neg, &x, 1, neg);
    emit_pool(o, i, "MaxPool", neg, max);
    cn_onnx_emit(o, "Neg", n->name, &max, 1, n->name);
    return cn_onnx_out_status(o);
}

static cn_status export_globalavgpool(cn_onnx_out *o, int i)
{
    emit_unary(o, i, "GlobalAveragePool", 4);
    return cn_onnx_out_status(o);
}

static cn_status export_globalmaxpool(cn_onnx_out *o, int i)
{
    emit_unary(o, i, "GlobalMaxPool", 4);
    return cn_onnx_out_status(o);
}

static const cn_onnx_row *row_of_op(int op);

/* an op that is one ONNX node of the same shape, without attributes: its row's op type */
static cn_status export_elementwise(cn_onnx_out *o, int i)
{
    emit_unary(o, i, row_of_op(cn_onnx_out_net(o)->nodes[i].id)->onnx, 0);
    return cn_onnx_out_status(o);
}

static cn_status export_leakyrelu(cn_onnx_out *o, int i)
{
    Onnx__NodeProto *node = emit_unary(o, i, "LeakyRelu", 0);
    cn_onnx_attr_float(o, node, "alpha", (float)cn_onnx_out_net(o)->nodes[i].a.slope);
    return cn_onnx_out_status(o);
}

/* Clip between two scalar constants (inputs since opset 11) */
static cn_status export_relu6(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    static const float lo = 0, hi = 6;
    const char *in[3] = { cn_onnx_input(o, i, 0, 0), cn_onnx_const_float(o, cn_onnx_temp(o, i, "min"), NULL, 0, &lo, 1),
                          cn_onnx_const_float(o, cn_onnx_temp(o, i, "max"), NULL, 0, &hi, 1) };
    cn_onnx_emit(o, "Clip", n->name, in, 3, n->name);
    return cn_onnx_out_status(o);
}

/* max(0, min(1, x/6 + 1/2)): PyTorch's hardsigmoid */
static cn_status export_hardsigmoid(cn_onnx_out *o, int i)
{
    Onnx__NodeProto *node = emit_unary(o, i, "HardSigmoid", 0);
    cn_onnx_attr_float(o, node, "alpha", 1.0f / 6);
    cn_onnx_attr_float(o, node, "beta", 0.5f);
    return cn_onnx_out_status(o);
}

static cn_status export_elu(cn_onnx_out *o, int i)
{
    cn_onnx_attr_float(o, emit_unary(o, i, "Elu", 0), "alpha", (float)cn_onnx_out_net(o)->nodes[i].a.alpha);
    return cn_onnx_out_status(o);
}

/* the slope per channel (C) written (C, 1, 1), which broadcasts over (N, C, H, W) */
static cn_status export_prelu(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    int64_t dims[3] = { n->out.c, 1, 1 };
    const char *in[2] = { cn_onnx_input(o, i, 0, 4), cn_onnx_param_as(o, i, "weight", dims, 3) };
    cn_onnx_set_rank(o, i, 4);
    cn_onnx_emit(o, "PRelu", n->name, in, 2, n->name);
    return cn_onnx_out_status(o);
}

/* affine=no: ONNX's scale and shift are inputs all the same, written as constants 1 and 0 */
static const char *affine_const(cn_onnx_out *o, int i, const char *name, float v)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    int64_t c = n->out.c;
    return n->a.affine ? cn_onnx_param(o, i, name) : cn_onnx_const_fill(o, cn_onnx_temp(o, i, name), &c, 1, v);
}

/* an ONNX binary node out = a OP b */
static const char *emit2(cn_onnx_out *o, const char *op, const char *out, const char *a, const char *b)
{
    const char *in[2] = { a, b };
    cn_onnx_emit(o, op, out, in, 2, out);
    return cn_onnx_out_status(o) ? NULL : out;
}

static const char *scalar(cn_onnx_out *o, int i, const char *suffix, float v)
{
    return cn_onnx_const_float(o, cn_onnx_temp(o, i, suffix), NULL, 0, &v, 1);
}

/* x * sigmoid(x): ONNX 17 has no SiLU (PyTorch writes these two nodes) */
static cn_status export_silu(cn_onnx_out *o, int i)
{
    const char *x = cn_onnx_input(o, i, 0, 0), *name = cn_onnx_out_net(o)->nodes[i].name;
    const char *s = cn_onnx_temp(o, i, "sigmoid");
    if (x && s) cn_onnx_emit(o, "Sigmoid", s, &x, 1, s);
    emit2(o, "Mul", name, x, s);
    return cn_onnx_out_status(o);
}

/* ONNX 17 has no GELU: PyTorch 1.13's nodes. erf: x * (erf(x / sqrt 2) + 1) * 0.5; tanh:
 * 0.5 * (x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x * (x * x))))) */
static cn_status export_gelu(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    const char *x = cn_onnx_input(o, i, 0, 0), *t;
    if (!n->a.approximate) {
        t = emit2(o, "Div", cn_onnx_temp(o, i, "div"), x, scalar(o, i, "sqrt2", 1.4142135381698608f));
        const char *e = cn_onnx_temp(o, i, "erf");
        if (t && e) cn_onnx_emit(o, "Erf", e, &t, 1, e);
        t = emit2(o, "Add", cn_onnx_temp(o, i, "add"), e, scalar(o, i, "one", 1));
        t = emit2(o, "Mul", cn_onnx_temp(o, i, "mul"), x, t);
        emit2(o, "Mul", n->name, t, scalar(o, i, "half", 0.5f));
        return cn_onnx_out_status(o);
    }
    const char *x2 = emit2(o, "Mul", cn_onnx_temp(o, i, "x2"), x, x);
    t = emit2(o, "Mul", cn_onnx_temp(o, i, "x3"), x, x2);
    t = emit2(o, "Mul", cn_onnx_temp(o, i, "cubic"), scalar(o, i, "c", 0.044714998453855515f), t);
    t = emit2(o, "Add", cn_onnx_temp(o, i, "inner"), x, t);
    t = emit2(o, "Mul", cn_onnx_temp(o, i, "scaled"), scalar(o, i, "k", 0.7978845834732056f), t);
    const char *th = cn_onnx_temp(o, i, "tanh");
    if (t && th) cn_onnx_emit(o, "Tanh", th, &t, 1, th);
    t = emit2(o, "Add", cn_onnx_temp(o, i, "add"), scalar(o, i, "one", 1), th);
    t = emit2(o, "Mul", cn_onnx_temp(o, i, "mul"), x, t);
    emit2(o, "Mul", n->name, scalar(o, i, "half", 0.5f), t);
    return cn_onnx_out_status(o);
}

/* LayerNormalization over axes 1.. (C, H, W of a map, F of a vector); the scale and shift (C, H, W)
 * or (F) as the parameters, ones and no shift when affine=no. over=channels of a map as
 * torchvision's LayerNorm2d writes it: Transpose to (N, H, W, C), LayerNormalization of the last
 * axis with (C) tensors, Transpose back */
static cn_status export_layernorm(cn_onnx_out *o, int i)
{
    const cn_net *net = cn_onnx_out_net(o);
    const cn_node *n = &net->nodes[i];
    const char *x = cn_onnx_input(o, i, 0, 0), *out = n->name;
    int64_t dims[3] = { n->out.c, n->out.h, n->out.w }, last[4] = { 0, 2, 3, 1 }, back[4] = { 0, 3, 1, 2 };
    int map = cn_onnx_rank(o, n->in[0]) == 4, nd = map ? 3 : 1; /* (C, H, W) of a map, (F) of a vector */
    int channels_last = map && n->a.over == CN_NORM_OVER_CHANNELS;
    if (channels_last) {
        const char *t = cn_onnx_temp(o, i, "channels_last");
        Onnx__NodeProto *tr = x && t ? cn_onnx_emit(o, "Transpose", t, &x, 1, t) : NULL;
        cn_onnx_attr_ints(o, tr, "perm", last, 4);
        x = t, nd = 1, out = cn_onnx_temp(o, i, "norm");
    }
    const char *in[3] = { x, n->a.affine ? cn_onnx_param_as(o, i, "weight", dims, nd)
                                         : cn_onnx_const_fill(o, cn_onnx_temp(o, i, "ones"), dims, nd, 1),
                          n->a.affine ? cn_onnx_param_as(o, i, "bias", dims, nd) : NULL };
    Onnx__NodeProto *node = out ? cn_onnx_emit(o, "LayerNormalization", out, in, n->a.affine ? 3 : 2, out) : NULL;
    cn_onnx_attr_int(o, node, "axis", channels_last ? -1 : 1);
    cn_onnx_attr_float(o, node, "epsilon", (float)n->a.eps);
    if (channels_last) {
        Onnx__NodeProto *tr = out ? cn_onnx_emit(o, "Transpose", n->name, &out, 1, n->name) : NULL;
        cn_onnx_attr_ints(o, tr, "perm", back, 4);
    }
    return cn_onnx_out_status(o);
}

/* InstanceNormalization (a group per channel); other group counts as PyTorch writes GroupNorm:
 * Reshape to (N, G, -1), InstanceNormalization with scale 1 and shift 0, Reshape back, Mul and
 * Add of the (C, 1, 1) scale and shift */
static cn_status export_groupnorm(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    const char *x = cn_onnx_input(o, i, 0, 4);
    int64_t c = n->out.c, g = n->a.groups, c11[3] = { c, 1, 1 };
    cn_onnx_set_rank(o, i, 4);
    if (g == c) {
        const char *in[3] = { x, affine_const(o, i, "weight", 1), affine_const(o, i, "bias", 0) };
        Onnx__NodeProto *node = cn_onnx_emit(o, "InstanceNormalization", n->name, in, 3, n->name);
        cn_onnx_attr_float(o, node, "epsilon", (float)n->a.eps);
        return cn_onnx_out_status(o);
    }
    int64_t grouped[3] = { 0, g, -1 }, back[4] = { 0, c, n->out.h, n->out.w };
    const char *shape_g = cn_onnx_const_int64(o, cn_onnx_temp(o, i, "groups"), grouped, 3);
    const char *t = emit2(o, "Reshape", cn_onnx_temp(o, i, "grouped"), x, shape_g), *norm = cn_onnx_temp(o, i, "norm");
    const char *in[3] = { t, cn_onnx_const_fill(o, cn_onnx_temp(o, i, "ones"), &g, 1, 1),
                          cn_onnx_const_fill(o, cn_onnx_temp(o, i, "zeros"), &g, 1, 0) };
    Onnx__NodeProto *node = norm ? cn_onnx_emit(o, "InstanceNormalization", norm, in, 3, norm) : NULL;
    cn_onnx_attr_float(o, node, "epsilon", (float)n->a.eps);
    const char *shape = cn_onnx_const_int64(o, cn_onnx_temp(o, i, "shape"), back, 4);
    if (!n->a.affine) {
        emit2(o, "Reshape", n->name, norm, shape);
        return cn_onnx_out_status(o);
    }
    t = emit2(o, "Reshape", cn_onnx_temp(o, i, "maps"), norm, shape);
    t = emit2(o, "Mul", cn_onnx_temp(o, i, "scaled"), t, cn_onnx_param_as(o, i, "weight", c11, 3));
    emit2(o, "Add", n->name, t, cn_onnx_param_as(o, i, "bias", c11, 3));
    return cn_onnx_out_status(o);
}

/* convnet's softmax runs over the channels at each position: axis 1, of (N,C) or (N,C,H,W) */
static cn_status export_softmax(cn_onnx_out *o, int i)
{
    cn_onnx_attr_int(o, emit_unary(o, i, "Softmax", 0), "axis", 1);
    return cn_onnx_out_status(o);
}

static cn_status export_batchnorm(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    const char *in[5] = { cn_onnx_input(o, i, 0, 0), affine_const(o, i, "weight", 1), affine_const(o, i, "bias", 0),
                          cn_onnx_param(o, i, "running_mean"), cn_onnx_param(o, i, "running_var") };
    Onnx__NodeProto *node = cn_onnx_emit(o, "BatchNormalization", n->name, in, 5, n->name);
    cn_onnx_attr_float(o, node, "epsilon", (float)n->a.eps);
    /* ONNX's running mean keeps `momentum` of the old value, PyTorch's (and convnet's) 1 - momentum */
    cn_onnx_attr_float(o, node, "momentum", (float)(1 - n->a.momentum));
    return cn_onnx_out_status(o);
}

/* inference passes values through; the ratio is kept for a reader that trains */
static cn_status export_dropout(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    float ratio = (float)(1 - n->a.keep);
    const char *in[2] = { cn_onnx_input(o, i, 0, 0), cn_onnx_const_float(o, cn_onnx_temp(o, i, "ratio"), NULL, 0, &ratio, 1) };
    cn_onnx_emit(o, "Dropout", n->name, in, 2, n->name);
    return cn_onnx_out_status(o);
}

static cn_status export_flatten(cn_onnx_out *o, int i)
{
    cn_onnx_attr_int(o, emit_unary(o, i, "Flatten", 0), "axis", 1);
    cn_onnx_set_rank(o, i, 2);
    return cn_onnx_out_status(o);
}

/* y = x W^T + b: Gemm with transB, on the input read flattened */
static cn_status export_dense(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    const char *in[3] = { cn_onnx_input(o, i, 0, 2), cn_onnx_param(o, i, "weight"), cn_onnx_param(o, i, "bias") };
    cn_onnx_set_rank(o, i, 2);
    cn_onnx_attr_int(o, cn_onnx_emit(o, "Gemm", n->name, in, n->a.bias ? 3 : 2, n->name), "transB", 1);
    return cn_onnx_out_status(o);
}

static cn_status export_concat(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    const char *in[CN_MAX_INPUTS];
    /* a mix of (N,F) and (N,C,1,1) values: take all as maps */
    int rank = n->out.h * n->out.w > 1 || n->n_in > 1 ? 4 : 0;
    for (int k = 0; k < n->n_in; k++) in[k] = cn_onnx_input(o, i, k, rank);
    if (rank) cn_onnx_set_rank(o, i, rank);
    cn_onnx_attr_int(o, cn_onnx_emit(o, "Concat", n->name, in, n->n_in, n->name), "axis", 1);
    return cn_onnx_out_status(o);
}

/* Add for two inputs, Sum for more; a 1x1 map broadcasts as ONNX's (N, C, 1, 1) does */
static cn_status export_add(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    const char *in[CN_MAX_INPUTS];
    int rank = n->n_in > 1 ? 4 : 0;
    for (int k = 0; k < n->n_in; k++) in[k] = cn_onnx_input(o, i, k, rank);
    if (rank) cn_onnx_set_rank(o, i, rank);
    cn_onnx_emit(o, n->n_in == 2 ? "Add" : "Sum", n->name, in, n->n_in, n->name);
    return cn_onnx_out_status(o);
}

/* Mul of the inputs read as maps (a 1x1 one broadcasts), chained for more than two */
static cn_status export_mul(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    const char *acc = cn_onnx_input(o, i, 0, 4);
    char suffix[32];
    cn_onnx_set_rank(o, i, 4);
    for (int k = 1; k < n->n_in; k++) {
        snprintf(suffix, sizeof suffix, "mul%d", k);
        const char *out = k == n->n_in - 1 ? n->name : cn_onnx_temp(o, i, suffix);
        const char *in[2] = { acc, cn_onnx_input(o, i, k, 4) };
        cn_onnx_emit(o, "Mul", out, in, 2, out);
        acc = out;
    }
    return cn_onnx_out_status(o);
}

/* Resize. nearest: PyTorch's floor(dst * in/out) is ONNX's asymmetric + floor; bilinear:
 * pytorch_half_pixel or align_corners. A whole factor is written as scales; another size as
 * sizes (N, C from the input's Shape, H, W constants), since floor(in * out/in) may fall short */
static cn_status export_upsample(cn_onnx_out *o, int i)
{
    const cn_net *net = cn_onnx_out_net(o);
    const cn_node *n = &net->nodes[i];
    const cn_dims *x = &net->nodes[n->in[0]].out;
    const char *in[4] = { cn_onnx_input(o, i, 0, 4), "", "", "" };
    int n_in = 3;
    cn_onnx_set_rank(o, i, 4);
    if (n->out.h % x->h == 0 && n->out.w % x->w == 0) {
        float scales[4] = { 1, 1, (float)(n->out.h / x->h), (float)(n->out.w / x->w) };
        int64_t dims[1] = { 4 };
        in[2] = cn_onnx_const_float(o, cn_onnx_temp(o, i, "scales"), dims, 1, scales, 4);
    } else {
        const char *shape = cn_onnx_temp(o, i, "nc"), *hw = NULL, *sizes = cn_onnx_temp(o, i, "sizes");
        int64_t want[2] = { n->out.h, n->out.w };
        Onnx__NodeProto *sh = in[0] ? cn_onnx_emit(o, "Shape", shape, in, 1, shape) : NULL;
        cn_onnx_attr_int(o, sh, "start", 0);
        cn_onnx_attr_int(o, sh, "end", 2);
        hw = cn_onnx_const_int64(o, cn_onnx_temp(o, i, "hw"), want, 2);
        const char *parts[2] = { shape, hw };
        cn_onnx_attr_int(o, cn_onnx_emit(o, "Concat", sizes, parts, 2, sizes), "axis", 0);
        in[3] = sizes;
        n_in = 4;
    }
    Onnx__NodeProto *node = cn_onnx_emit(o, "Resize", n->name, in, n_in, n->name);
    if (n->a.mode == CN_UPSAMPLE_NEAREST) {
        cn_onnx_attr_string(o, node, "mode", "nearest");
        cn_onnx_attr_string(o, node, "coordinate_transformation_mode", "asymmetric");
        cn_onnx_attr_string(o, node, "nearest_mode", "floor");
    } else {
        cn_onnx_attr_string(o, node, "mode", "linear");
        cn_onnx_attr_string(o, node, "coordinate_transformation_mode",
                            n->a.align_corners ? "align_corners" : "pytorch_half_pixel");
    }
    return cn_onnx_out_status(o);
}

/* Pad of H and W: [0, 0, t, l, 0, 0, b, r]; zeros, reflect or edge (replicate) */
static cn_status export_pad(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    static const char *const modes[] = { "constant", "reflect", "edge" };
    int64_t p[8] = { 0, 0, n->pad_t, n->pad_l, 0, 0, n->pad_b, n->pad_r };
    const char *in[2] = { cn_onnx_input(o, i, 0, 4), cn_onnx_const_int64(o, cn_onnx_temp(o, i, "pads"), p, 8) };
    cn_onnx_set_rank(o, i, 4);
    cn_onnx_attr_string(o, cn_onnx_emit(o, "Pad", n->name, in, 2, n->name), "mode", modes[n->a.mode]);
    return cn_onnx_out_status(o);
}

/* Slice of H and W with constant starts and ends */
static cn_status export_crop(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    int64_t starts[2] = { n->pad_t, n->pad_l }, ends[2] = { n->pad_t + n->out.h, n->pad_l + n->out.w };
    int64_t axes[2] = { 2, 3 };
    const char *in[4] = { cn_onnx_input(o, i, 0, 4), cn_onnx_const_int64(o, cn_onnx_temp(o, i, "starts"), starts, 2),
                          cn_onnx_const_int64(o, cn_onnx_temp(o, i, "ends"), ends, 2),
                          cn_onnx_const_int64(o, cn_onnx_temp(o, i, "axes"), axes, 2) };
    cn_onnx_set_rank(o, i, 4);
    cn_onnx_emit(o, "Slice", n->name, in, 4, n->name);
    return cn_onnx_out_status(o);
}

/* the channel shuffle as PyTorch writes it (torchvision's channel_shuffle): Reshape to (N, G,
 * C/G, H, W), Transpose of G and C/G, Reshape back to (N, C, H, W) */
static cn_status export_shuffle(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    int64_t g = n->a.groups, five[5] = { 0, g, n->out.c / g, n->out.h, n->out.w };
    int64_t four[4] = { 0, n->out.c, n->out.h, n->out.w }, perm[5] = { 0, 2, 1, 3, 4 };
    const char *x = cn_onnx_input(o, i, 0, 4), *t = cn_onnx_temp(o, i, "swapped");
    cn_onnx_set_rank(o, i, 4);
    x = emit2(o, "Reshape", cn_onnx_temp(o, i, "grouped"), x, cn_onnx_const_int64(o, cn_onnx_temp(o, i, "groups"), five, 5));
    Onnx__NodeProto *node = x && t ? cn_onnx_emit(o, "Transpose", t, &x, 1, t) : NULL;
    cn_onnx_attr_ints(o, node, "perm", perm, 5);
    emit2(o, "Reshape", n->name, t, cn_onnx_const_int64(o, cn_onnx_temp(o, i, "shape"), four, 4));
    return cn_onnx_out_status(o);
}

/* a factor per channel: Mul by the weight as (C, 1, 1) of a map, (C) of a vector */
static cn_status export_scale(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    int64_t dims[3] = { n->out.c, 1, 1 };
    const char *x = cn_onnx_input(o, i, 0, 0);
    emit2(o, "Mul", n->name, x, cn_onnx_param_as(o, i, "weight", dims, cn_onnx_rank(o, n->in[0]) == 4 ? 3 : 1));
    return cn_onnx_out_status(o);
}

/* a range of the channels: Slice of axis 1, of a map or of a vector */
static cn_status export_channels(cn_onnx_out *o, int i)
{
    const cn_node *n = &cn_onnx_out_net(o)->nodes[i];
    int64_t start = n->a.first, end = n->a.first + n->out.c, axis = 1;
    const char *in[4] = { cn_onnx_input(o, i, 0, 0), cn_onnx_const_int64(o, cn_onnx_temp(o, i, "starts"), &start, 1),
                          cn_onnx_const_int64(o, cn_onnx_temp(o, i, "ends"), &end, 1),
                          cn_onnx_const_int64(o, cn_onnx_temp(o, i, "axes"), &axis, 1) };
    cn_onnx_emit(o, "Slice", n->name, in, 4, n->name);
    return cn_onnx_out_status(o);
}

/* ---- import ------------------------------------------------------------------------------------- */

static cn_status import_conv(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    cn_onnx_tensor w, b;
    cn_status st;
    int64_t group = 1, k[2] = { 0, 0 }, s[2] = { 1, 1 }, d[2] = { 1, 1 };
    if ((st = cn_onnx_get_tensor(in, node, 1, 1, 4, &w)) || (st = cn_onnx_get_tensor(in, node, 2, 0, 1, &b)) ||
        (st = cn_onnx_get_int(in, node, "group", &group)) || (st = cn_onnx_get_ints(in, node, "kernel_shape", k, 2)) ||
        (st = cn_onnx_get_ints(in, node, "strides", s, 2)) || (st = cn_onnx_get_ints(in, node, "dilations", d, 2)))
        return st;
    if (k[0] && (k[0] != w.dims[2] || k[1] != w.dims[3]))
        return cn_onnx_node_fail(in, node, "kernel_shape %lldx%lld differs from the weight's %lldx%lld",
                                 (long long)k[0], (long long)k[1], (long long)w.dims[2], (long long)w.dims[3]);
    if (b.name && b.count != w.dims[0])
        return cn_onnx_node_fail(in, node, "bias of %lld values for %lld filters", (long long)b.count,
                                 (long long)w.dims[0]);
    cn_onnx_layer *l = cn_onnx_add_layer(in, node, "conv", 1, 4, "%lld %lldx%lld stride=%lldx%lld dilation=%lldx%lld groups=%lld",
                                         (long long)w.dims[0], (long long)w.dims[2], (long long)w.dims[3],
                                         (long long)s[0], (long long)s[1], (long long)d[0], (long long)d[1],
                                         (long long)group);
    if (!l) return cn_onnx_in_status(in);
    cn_onnx_bias_key(l);
    if ((st = cn_onnx_pads(in, l, node)) || (st = cn_onnx_layer_tensor(in, l, "weight", &w, 0)))
        return st;
    return b.name ? cn_onnx_layer_tensor(in, l, "bias", &b, 0) : CN_OK;
}

/* MaxPool and AveragePool: convnet's window keys (dilation: MaxPool's only, as convnet's max and
 * min pooling); storage order and an index output are not convnet's */
static cn_status import_pool(cn_onnx_in *in, const Onnx__NodeProto *node, const char *type)
{
    int64_t k[2] = { 0, 0 }, s[2] = { 1, 1 }, d[2] = { 1, 1 }, ceil_mode = 0, order = 0, include = 0;
    int64_t p[4] = { 0, 0, 0, 0 };
    cn_status st;
    if ((st = cn_onnx_get_ints(in, node, "kernel_shape", k, 2)) || (st = cn_onnx_get_ints(in, node, "strides", s, 2)) ||
        (st = cn_onnx_get_ints(in, node, "dilations", d, 2)) || (st = cn_onnx_get_int(in, node, "ceil_mode", &ceil_mode)) ||
        (st = cn_onnx_get_int(in, node, "storage_order", &order)) || (st = cn_onnx_get_ints(in, node, "pads", p, 4)) ||
        (st = cn_onnx_get_int(in, node, "count_include_pad", &include)))
        return st;
    int avg = !strcmp(type, "avgpool");
    if (!k[0]) return cn_onnx_node_fail(in, node, "no kernel_shape of 2 values");
    if (avg && (d[0] != 1 || d[1] != 1)) return cn_onnx_node_fail(in, node, "dilated average pooling is not supported");
    if (node->n_output > 1 && node->output[1][0])
        return cn_onnx_node_fail(in, node, "the indices output is not supported");
    /* count_include_pad=0 leaves the node's own padding out of the divisor (count_pad=no), but a
     * Pad before it wrote real zeros, which it counts (count_pad=yes): both at once is neither */
    int after_pad = cn_onnx_padded(in, node), own_pads = p[0] || p[1] || p[2] || p[3];
    if (avg && !include && after_pad && own_pads)
        return cn_onnx_node_fail(in, node, "count_include_pad=0 with pads after a Pad is not supported");
    /* a max pool padded at the end only, less than a window: how PyTorch writes ceil_mode before
     * opset 10 (MaxPool had no ceil_mode); the same windows as ceil=yes when the outputs agree */
    int64_t span[2] = { (k[0] - 1) * d[0] + 1, (k[1] - 1) * d[1] + 1 }, end[2] = { p[2], p[3] };
    int end_pads = !avg && !ceil_mode && !after_pad && !p[0] && !p[1] && (p[2] || p[3]) && p[2] < span[0] &&
                   p[3] < span[1] && !cn_onnx_has_auto_pad(node);
    if (end_pads) ceil_mode = 1;
    cn_onnx_layer *l = cn_onnx_add_layer(in, node, type, 1, 4, "%lldx%lld stride=%lldx%lld ceil=%s", (long long)k[0],
                                         (long long)k[1], (long long)s[0], (long long)s[1], ceil_mode ? "yes" : "no");
    if (!l) return cn_onnx_in_status(in);
    if (avg && !include && !after_pad && (st = cn_onnx_append_args(in, l, " count_pad=no"))) return st;
    if (!avg && (d[0] != 1 || d[1] != 1) &&
        (st = cn_onnx_append_args(in, l, " dilation=%lldx%lld", (long long)d[0], (long long)d[1])))
        return st;
    return end_pads ? cn_onnx_end_pads(in, l, end, span, s) : cn_onnx_pads(in, l, node);
}

/* MaxPool of a negated value: convnet's minpool, min(x) = -max(-x) */
static cn_status import_maxpool(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    return import_pool(in, node, cn_onnx_negated(in, node) ? "minpool" : "maxpool");
}
static cn_status import_avgpool(cn_onnx_in *in, const Onnx__NodeProto *node) { return import_pool(in, node, "avgpool"); }

/* a statement without arguments that reads node input 0 */
static cn_status import_plain(cn_onnx_in *in, const Onnx__NodeProto *node, const char *type, int rank)
{
    return cn_onnx_add_layer(in, node, type, 1, rank, "%s", "") ? CN_OK : cn_onnx_in_status(in);
}

static cn_status import_globalavgpool(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    return import_plain(in, node, "globalavgpool", 4);
}

static cn_status import_globalmaxpool(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    return import_plain(in, node, "globalmaxpool", 4);
}
static const cn_onnx_row *row_of_onnx(const char *op_type);

/* the reverse of export_elementwise: the row's convnet op, without arguments */
static cn_status import_elementwise(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    return import_plain(in, node, cn_ops[row_of_onnx(node->op_type)->op]->name, 0);
}

static cn_status import_leakyrelu(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    double alpha = 0.01;
    cn_status st = cn_onnx_get_float(in, node, "alpha", &alpha);
    if (st) return st;
    return cn_onnx_add_layer(in, node, "leakyrelu", 1, 0, "slope=%.7g", alpha) ? CN_OK : cn_onnx_in_status(in);
}

/* one value of a scalar constant: input k, or the attribute of an older opset; *present 0 when
 * neither is there */
static cn_status scalar_input(cn_onnx_in *in, const Onnx__NodeProto *node, int k, const char *attr, double *v,
                              int *present)
{
    cn_onnx_tensor t;
    double a = NAN;
    cn_status st = cn_onnx_get_tensor(in, node, k, 0, 0, &t);
    if (!st) st = cn_onnx_get_float(in, node, attr, &a);
    if (st) return st;
    int given = (size_t)k < node->n_input && node->input[k][0]; /* a Constant's tensor has no name */
    if (given && t.count != 1)
        return cn_onnx_node_fail(in, node, "input %d holds %lld values, not 1", k, (long long)t.count);
    *present = given || !isnan(a);
    *v = given ? cn_onnx_value(&t, 0) : a;
    return CN_OK;
}

/* Clip to [0, 6]: convnet's relu6 (PyTorch's ReLU6) */
static cn_status import_clip(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    double lo = 0, hi = 0;
    int has_lo = 0, has_hi = 0;
    cn_status st = scalar_input(in, node, 1, "min", &lo, &has_lo);
    if (!st) st = scalar_input(in, node, 2, "max", &hi, &has_hi);
    if (st) return st;
    if (!has_lo && has_hi && hi == 6 && (st = cn_onnx_relu_to_relu6(in, node)) != CN_E_UNSUPPORTED) return st;
    if (!has_lo || !has_hi || lo != 0 || hi != 6)
        return cn_onnx_node_fail(in, node, "only Clip between constants 0 and 6 (ReLU6), or to at most 6 after a Relu, "
                                           "is supported");
    return import_plain(in, node, "relu6", 0);
}

/* convnet's hardsigmoid is PyTorch's: alpha 1/6, beta 1/2 */
static cn_status import_hardsigmoid(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    double alpha = 0.2, beta = 0.5;
    cn_status st = cn_onnx_get_float(in, node, "alpha", &alpha);
    if (!st) st = cn_onnx_get_float(in, node, "beta", &beta);
    if (st) return st;
    if ((float)alpha != 1.0f / 6 || beta != 0.5)
        return cn_onnx_node_fail(in, node, "HardSigmoid with alpha=%g beta=%g is not supported (only PyTorch's "
                                           "alpha=1/6, beta=0.5)", alpha, beta);
    return import_plain(in, node, "hardsigmoid", 0);
}

static cn_status import_elu(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    double alpha = 1;
    cn_status st = cn_onnx_get_float(in, node, "alpha", &alpha);
    if (st) return st;
    if (!isfinite(alpha)) return cn_onnx_node_fail(in, node, "alpha %g is not finite", alpha);
    return cn_onnx_add_layer(in, node, "elu", 1, 0, "alpha=%.9g", alpha) ? CN_OK : cn_onnx_in_status(in);
}

/* a slope per channel: (C), (C, 1, 1) or (1, C, 1, 1) as PyTorch writes it */
static cn_status import_prelu(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    cn_onnx_tensor w;
    cn_status st = cn_onnx_get_tensor(in, node, 1, 1, 0, &w);
    if (st) return st;
    for (int d = 1; d < w.n_dims; d++)
        if (w.dims[d] != 1 && !(w.n_dims == 4 && d == 1))
            return cn_onnx_node_fail(in, node, "a slope that is not one per channel is not supported");
    cn_onnx_layer *l = cn_onnx_add_layer(in, node, "prelu", 1, 4, "%s", "");
    return l ? cn_onnx_layer_tensor(in, l, "weight", &w, 0) : cn_onnx_in_status(in);
}

/* convnet's softmax is over the channels: axis 1 of (N,C) or (N,C,H,W) (opset 13 on), or the
 * last axis of (N,C) */
static cn_status import_softmax(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int rank = cn_onnx_input_rank(in, node, 0);
    int64_t axis = cn_onnx_opset(in) >= 13 ? -1 : 1;
    cn_status st = cn_onnx_get_int(in, node, "axis", &axis);
    if (st) return st;
    if (axis < 0) axis += rank;
    if (axis != 1 || (rank == 4 && cn_onnx_opset(in) < 13))
        return cn_onnx_node_fail(in, node, "softmax over axis %lld of a rank-%d tensor is not supported (only over "
                                           "the channels, axis 1)", (long long)axis, rank);
    return import_plain(in, node, "softmax", 0);
}

static cn_status import_batchnorm(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    cn_onnx_tensor t[4];
    double eps = 1e-5, momentum = 0.9;
    int64_t training = 0;
    cn_status st;
    for (int k = 0; k < 4; k++)
        if ((st = cn_onnx_get_tensor(in, node, k + 1, 1, 1, &t[k]))) return st;
    if ((st = cn_onnx_get_float(in, node, "epsilon", &eps)) || (st = cn_onnx_get_float(in, node, "momentum", &momentum)) ||
        (st = cn_onnx_get_int(in, node, "training_mode", &training)))
        return st;
    if (training || (node->n_output > 1 && node->output[1][0]))
        return cn_onnx_node_fail(in, node, "batch normalization in training mode is not supported");
    for (int k = 1; k < 4; k++)
        if (t[k].count != t[0].count)
            return cn_onnx_node_fail(in, node, "its 4 parameters have %lld, %lld, %lld and %lld values",
                                     (long long)t[0].count, (long long)t[1].count, (long long)t[2].count,
                                     (long long)t[3].count);
    if (!(eps > 0) || !isfinite(eps)) return cn_onnx_node_fail(in, node, "epsilon %g is not > 0", eps);
    for (int64_t c = 0; c < t[3].count; c++)
        if (!(cn_onnx_value(&t[3], c) >= 0)) return cn_onnx_node_fail(in, node, "a running variance is negative");
    cn_onnx_layer *conv = cn_onnx_fold_bn_on(in) ? cn_onnx_foldable_conv(in, node) : NULL;
    if (conv) return cn_onnx_fold_bn(in, conv, node, &t[0], &t[1], &t[2], &t[3], eps);
    /* ONNX's momentum is what the running mean keeps: PyTorch's is 1 - it */
    double m = 1 - momentum;
    if (!(m >= 0 && m <= 1)) m = 0.1;
    /* scale exactly 1 and shift 0 everywhere: affine=no (convnet's export writes so) */
    int affine = 0;
    for (int64_t c = 0; c < t[0].count; c++) affine |= cn_onnx_value(&t[0], c) != 1 || cn_onnx_value(&t[1], c) != 0;
    cn_onnx_layer *l = cn_onnx_add_layer(in, node, "batchnorm", 1, 0, "eps=%.7g momentum=%.7g%s", eps, m,
                                         affine ? "" : " affine=no");
    if (!l) return cn_onnx_in_status(in);
    static const char *const names[4] = { "weight", "bias", "running_mean", "running_var" };
    for (int k = affine ? 0 : 2; k < 4; k++)
        if ((st = cn_onnx_layer_tensor(in, l, names[k], &t[k], 0))) return st;
    return CN_OK;
}

/* the ratio: input 1 from opset 12, an attribute before */
static cn_status import_dropout(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    double ratio = 0.5;
    cn_onnx_tensor r;
    cn_status st = cn_onnx_get_float(in, node, "ratio", &ratio);
    if (!st) st = cn_onnx_get_tensor(in, node, 1, 0, 0, &r);
    if (st) return st;
    if (r.name && r.count != 1) return cn_onnx_node_fail(in, node, "ratio of %lld values", (long long)r.count);
    if (r.name) ratio = cn_onnx_value(&r, 0);
    if (!(ratio >= 0 && ratio < 1)) return cn_onnx_node_fail(in, node, "ratio %g is not in [0, 1)", ratio);
    if (node->n_output > 1 && node->output[1][0]) return cn_onnx_node_fail(in, node, "the mask output is not supported");
    return cn_onnx_add_layer(in, node, "dropout", 1, 0, "keep=%.7g", 1 - ratio) ? CN_OK : cn_onnx_in_status(in);
}

static cn_status import_flatten(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int64_t axis = 1;
    cn_status st = cn_onnx_get_int(in, node, "axis", &axis);
    if (st) return st;
    if (axis != 1) return cn_onnx_node_fail(in, node, "flatten from axis %lld is not supported (only 1)", (long long)axis);
    /* convnet's export writes "<layer>/flat" before a dense that reads a map (Gemm takes (N, K)
     * only), where the spec had no flatten: a dense reads a map as that vector itself, so such
     * a Flatten, read by Gemms alone, comes back as no layer, and the net as it was exported */
    size_t n = node->n_input == 1 && node->n_output == 1 ? strlen(node->input[0]) : 0;
    if (n && !strncmp(node->output[0], node->input[0], n) && !strcmp(node->output[0] + n, "/flat") &&
        cn_onnx_read_only_by(in, node->output[0], "Gemm"))
        return cn_onnx_alias(in, node);
    return import_plain(in, node, "flatten", 2);
}

/* Y = alpha A B' + beta C with A (N,K): dense, its weight (units, K) = B' */
static cn_status import_gemm(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    cn_onnx_tensor w, b;
    double alpha = 1, beta = 1;
    int64_t ta = 0, tb = 0;
    cn_status st;
    if ((st = cn_onnx_get_tensor(in, node, 1, 1, 2, &w)) || (st = cn_onnx_get_tensor(in, node, 2, 0, 0, &b)) ||
        (st = cn_onnx_get_float(in, node, "alpha", &alpha)) || (st = cn_onnx_get_float(in, node, "beta", &beta)) ||
        (st = cn_onnx_get_int(in, node, "transA", &ta)) || (st = cn_onnx_get_int(in, node, "transB", &tb)))
        return st;
    if (alpha != 1 || (b.name && beta != 1) || ta)
        return cn_onnx_node_fail(in, node, "only alpha=1, beta=1 and transA=0 are supported");
    int64_t units = tb ? w.dims[0] : w.dims[1];
    if (b.name && (b.count != units || b.n_dims > 2 || (b.n_dims == 2 && b.dims[0] != 1)))
        return cn_onnx_node_fail(in, node, "bias C is not a vector of %lld values", (long long)units);
    cn_onnx_layer *l = cn_onnx_add_layer(in, node, "dense", 1, 2, "%lld", (long long)units);
    if (!l) return cn_onnx_in_status(in);
    cn_onnx_bias_key(l);
    if ((st = cn_onnx_layer_tensor(in, l, "weight", &w, !tb))) return st;
    return b.name ? cn_onnx_layer_tensor(in, l, "bias", &b, 0) : CN_OK;
}

static cn_status import_concat(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int64_t axis = 1;
    int n = cn_onnx_value_inputs(in, node), rank = cn_onnx_input_rank(in, node, 0);
    cn_status st = cn_onnx_get_int(in, node, "axis", &axis);
    if (st) return st;
    if (axis < 0) axis += rank;
    if (axis != 1) return cn_onnx_node_fail(in, node, "concatenation along axis %lld is not supported (only the channels, 1)",
                                            (long long)axis);
    if ((int)node->n_input != n) return cn_onnx_node_fail(in, node, "an input is a constant");
    if (n == 1) return cn_onnx_alias(in, node);
    return cn_onnx_add_layer(in, node, "concat", 0, 0, "%s", "") ? CN_OK : cn_onnx_in_status(in);
}

/* Add and Sum of graph values, all of one shape (convnet's add) */
static cn_status import_add(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int n = cn_onnx_value_inputs(in, node);
    if ((int)node->n_input != n)
        return cn_onnx_node_fail(in, node, "adding a constant is not supported (only layers' outputs)");
    if (n == 1) return cn_onnx_alias(in, node);
    return cn_onnx_add_layer(in, node, "add", 0, 0, "%s", "") ? CN_OK : cn_onnx_in_status(in);
}

/* the two reshapes convnet's export writes: (N, F) -> (N, F, 1, 1), which convnet's vectors
 * already are, and (N, ...) -> (N, F), convnet's flatten */
static cn_status import_groupnorm(cn_onnx_in *in, const Onnx__NodeProto *node, int64_t groups);

static cn_status import_shuffle(cn_onnx_in *in, const Onnx__NodeProto *node, const int64_t s[5]);
static cn_status take_pattern(cn_onnx_in *in, const Onnx__NodeProto *first, const Onnx__NodeProto *const *nodes, int n,
                              const char *type, const char *args);

static cn_status import_reshape(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int64_t s[8];
    int n = 0;
    cn_status st = cn_onnx_get_int64s(in, node, 1, s, 8, &n);
    if (st) return st;
    int rank = cn_onnx_input_rank(in, node, 0), batch = n && cn_onnx_is_batch(in, s[0]);
    if (n == 4 && batch && s[1] == -1 && s[2] == 1 && s[3] == 1 && rank == 2) return cn_onnx_alias(in, node);
    if (n == 2 && s[1] == -1 && (batch || s[0] > 0)) /* x.view(x.size(0), -1) too */
        return rank == 2 ? cn_onnx_alias(in, node) : import_plain(in, node, "flatten", 2);
    if (n == 2 && s[0] == -1 && s[1] >= 1) { /* x.view(-1, 16 * 5 * 5), as PyTorch's tutorial flattens */
        int64_t dims[3], f;
        if ((st = cn_onnx_input_dims(in, node, dims))) return st;
        if (cn_mul_ok(dims[0], dims[1], &f) && cn_mul_ok(f, dims[2], &f) && f == s[1])
            return rank == 2 ? cn_onnx_alias(in, node) : import_plain(in, node, "flatten", 2);
    }
    if (n == 3 && batch && s[1] >= 1 && s[1] <= INT32_MAX && s[2] == -1 && rank == 4)
        return import_groupnorm(in, node, s[1]);
    if (n == 5 && batch && rank == 4) return import_shuffle(in, node, s);
    if (n == 4 && batch && rank == 4) { /* to the shape it has: no layer (a channel shuffle's last step) */
        int64_t dims[3];
        if ((st = cn_onnx_input_dims(in, node, dims))) return st;
        if ((s[1] == dims[0] || s[1] == -1) && s[2] == dims[1] && s[3] == dims[2]) return cn_onnx_alias(in, node);
    }
    return cn_onnx_node_fail(in, node, "only reshapes to (N, -1), of a vector to (N, -1, 1, 1), and GroupNorm's and "
                                       "a channel shuffle's are supported");
}

/* Reshape to (N, G, C/G, H, W), then Transpose of G and C/G: torchvision's channel_shuffle, a
 * shuffle layer. The Reshape after it, to (N, C, H, W), is one to the shape the layer has
 * (import_reshape); its shape may be computed by nodes after this one (x.size(0)), not yet
 * folded here. */
static cn_status import_shuffle(cn_onnx_in *in, const Onnx__NodeProto *node, const int64_t s[5])
{
    int64_t dims[3], perm[5] = { 0 };
    const Onnx__NodeProto *t;
    cn_status st = cn_onnx_input_dims(in, node, dims);
    if (st) return st;
    int ok = s[1] >= 1 && dims[0] % s[1] == 0 && s[2] == dims[0] / s[1] && s[3] == dims[1] && s[4] == dims[2] &&
             (t = cn_onnx_sole_reader(in, node, "Transpose")) && cn_onnx_sole_reader(in, t, "Reshape");
    if (ok && (st = cn_onnx_get_ints(in, t, "perm", perm, 5))) return st;
    if (!ok || perm[0] != 0 || perm[1] != 2 || perm[2] != 1 || perm[3] != 3 || perm[4] != 4)
        return cn_onnx_node_fail(in, node, "a reshape to 5 dimensions is supported only as a channel shuffle: to (N, "
                                           "G, C/G, H, W), then Transpose perm 0,2,1,3,4, then a Reshape back");
    char g[24];
    snprintf(g, sizeof g, "%lld", (long long)s[1]);
    return take_pattern(in, node, &t, 1, "shuffle", g);
}

static cn_status import_constant(cn_onnx_in *in, const Onnx__NodeProto *node) { return cn_onnx_constant(in, node); }

/* Pad of H and W, pads [0, 0, t, l, 0, 0, b, r]: zeros that only Conv and AveragePool nodes read
 * become their padding (PyTorch writes avg_pool2d's padding so); otherwise a pad layer */
static cn_status import_pad(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int64_t p[8] = { -1 };
    int n = 0;
    cn_onnx_tensor value;
    const char *mode = "zero";
    double attr_value = 0;
    cn_status st;
    if (node->n_input >= 2 && node->input[1][0]) { /* opset 11 on: the pads an input */
        st = cn_onnx_get_int64s(in, node, 1, p, 8, &n);
    } else { /* opsets 2 to 10 (PyTorch's opset 9 and 10): attributes pads and value */
        if (!(st = cn_onnx_get_ints(in, node, "pads", p, 8))) st = cn_onnx_get_float(in, node, "value", &attr_value);
        if (!st && p[0] < 0) return cn_onnx_node_fail(in, node, "no pads (neither input 1 nor the attribute)");
        if (!st && attr_value != 0) return cn_onnx_node_fail(in, node, "only padding with zeros (or reflect, edge) is supported");
        n = 8;
    }
    if (!st) st = cn_onnx_get_tensor(in, node, 2, 0, 0, &value);
    if (st) return st;
    for (size_t k = 0; k < node->n_attribute; k++) {
        const Onnx__AttributeProto *a = node->attribute[k];
        if (!a->name || strcmp(a->name, "mode")) continue;
        mode = !a->has_s ? NULL : a->s.len == 8 && !memcmp(a->s.data, "constant", 8) ? "zero"
             : a->s.len == 7 && !memcmp(a->s.data, "reflect", 7) ? "reflect"
             : a->s.len == 4 && !memcmp(a->s.data, "edge", 4) ? "replicate" : NULL;
    }
    if (!mode) return cn_onnx_node_fail(in, node, "only the modes constant, reflect and edge are supported");
    if ((value.name && value.count == 1 && cn_onnx_value(&value, 0) != 0) || (value.name && value.count != 1) ||
        node->n_input > 3)
        return cn_onnx_node_fail(in, node, "only padding with zeros (or reflect, edge) is supported");
    if (n != 8 || p[0] || p[1] || p[4] || p[5])
        return cn_onnx_node_fail(in, node, "only padding of the height and width of (N, C, H, W) is supported");
    for (int k = 0; k < 8; k++)
        if (p[k] < 0 || p[k] > INT32_MAX) return cn_onnx_node_fail(in, node, "pads holds %lld", (long long)p[k]);
    int64_t pads[4] = { p[2], p[3], p[6], p[7] };
    if (!strcmp(mode, "zero") && cn_onnx_read_as_padding(in, node)) return cn_onnx_pad_value(in, node, pads);
    return cn_onnx_add_layer(in, node, "pad", 1, 4, "top=%lld left=%lld bottom=%lld right=%lld mode=%s", (long long)p[2],
                             (long long)p[3], (long long)p[6], (long long)p[7], mode)
               ? CN_OK
               : cn_onnx_in_status(in);
}

static int attr_string_is(const Onnx__NodeProto *node, const char *name, const char *want, const char *def)
{
    for (size_t k = 0; k < node->n_attribute; k++) {
        const Onnx__AttributeProto *a = node->attribute[k];
        if (a->name && !strcmp(a->name, name))
            return a->has_s && a->s.len == strlen(want) && !memcmp(a->s.data, want, a->s.len);
    }
    return !strcmp(want, def);
}

/* ConvTranspose: convnet's deconv, the weight (Cin, Cout/group, Kh, Kw) as ONNX's */
static cn_status import_convtranspose(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    cn_onnx_tensor w, b;
    cn_status st;
    int64_t group = 1, k[2] = { 0, 0 }, s[2] = { 1, 1 }, d[2] = { 1, 1 }, p[4] = { 0, 0, 0, 0 }, op[2] = { 0, 0 };
    int64_t shape[2] = { -1, -1 };
    if ((st = cn_onnx_get_tensor(in, node, 1, 1, 4, &w)) || (st = cn_onnx_get_tensor(in, node, 2, 0, 1, &b)) ||
        (st = cn_onnx_get_int(in, node, "group", &group)) || (st = cn_onnx_get_ints(in, node, "kernel_shape", k, 2)) ||
        (st = cn_onnx_get_ints(in, node, "strides", s, 2)) || (st = cn_onnx_get_ints(in, node, "dilations", d, 2)) ||
        (st = cn_onnx_get_ints(in, node, "pads", p, 4)) || (st = cn_onnx_get_ints(in, node, "output_padding", op, 2)) ||
        (st = cn_onnx_get_ints(in, node, "output_shape", shape, 2)))
        return st;
    if (!attr_string_is(node, "auto_pad", "NOTSET", "NOTSET"))
        return cn_onnx_node_fail(in, node, "auto_pad is not supported (only explicit pads)");
    if (shape[0] >= 0)
        return cn_onnx_node_fail(in, node, "output_shape is not supported (only pads and output_padding)");
    if (p[0] != p[2] || p[1] != p[3])
        return cn_onnx_node_fail(in, node, "asymmetric pads %lld,%lld,%lld,%lld are not supported", (long long)p[0],
                                 (long long)p[1], (long long)p[2], (long long)p[3]);
    if (group < 1 || w.dims[1] > INT32_MAX || group > INT32_MAX)
        return cn_onnx_node_fail(in, node, "group %lld is not supported", (long long)group);
    if (k[0] && (k[0] != w.dims[2] || k[1] != w.dims[3]))
        return cn_onnx_node_fail(in, node, "kernel_shape %lldx%lld differs from the weight's %lldx%lld",
                                 (long long)k[0], (long long)k[1], (long long)w.dims[2], (long long)w.dims[3]);
    int64_t filters = w.dims[1] * group;
    if (b.name && b.count != filters)
        return cn_onnx_node_fail(in, node, "bias of %lld values for %lld filters", (long long)b.count, (long long)filters);
    cn_onnx_layer *l = cn_onnx_add_layer(in, node, "deconv", 1, 4,
                                         "%lld %lldx%lld stride=%lldx%lld pad=%lldx%lld outpad=%lldx%lld "
                                         "dilation=%lldx%lld groups=%lld",
                                         (long long)filters, (long long)w.dims[2], (long long)w.dims[3], (long long)s[0],
                                         (long long)s[1], (long long)p[0], (long long)p[1], (long long)op[0],
                                         (long long)op[1], (long long)d[0], (long long)d[1], (long long)group);
    if (!l) return cn_onnx_in_status(in);
    cn_onnx_bias_key(l);
    if ((st = cn_onnx_layer_tensor(in, l, "weight", &w, 0))) return st;
    return b.name ? cn_onnx_layer_tensor(in, l, "bias", &b, 0) : CN_OK;
}

static cn_status import_gelu_tanh(cn_onnx_in *in, const Onnx__NodeProto *node);
static const char *other_input(const Onnx__NodeProto *b, const char *v);

/* dims of a per-channel constant: (C, 1, 1) or (1, C, 1, 1) of a map; (C), (1, C), (1, 1, C) or
 * (1, 1, 1, C) of a channels-last value or (the first two) of a vector (last) */
static int per_channel(const cn_onnx_tensor *t, int last)
{
    int at = last ? t->n_dims - 1 : t->n_dims - 3; /* where C is */
    if (t->n_dims < 1 || t->n_dims > 4 || at < 0 || (!last && t->n_dims < 3)) return 0;
    for (int d = 0; d < t->n_dims; d++)
        if (d != at && t->dims[d] != 1) return 0;
    return 1;
}

/* Mul of two graph values of one shape, or one 1x1 (squeeze-and-excitation): convnet's mul;
 * Mul(x, x) begins GELU's tanh form; Mul by a constant per channel (ConvNeXt's layer_scale):
 * convnet's scale, the constant its weight */
static cn_status import_mul(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    if (node->n_input == 2 && !strcmp(node->input[0], node->input[1])) return import_gelu_tanh(in, node);
    int values = cn_onnx_value_inputs(in, node);
    if (node->n_input == 2 && values == 1) {
        int k = cn_onnx_const_at(in, node->input[0]) ? 0 : 1; /* the constant */
        int last = cn_onnx_channels_last(in, node, !k) || cn_onnx_input_rank(in, node, !k) == 2;
        cn_onnx_tensor t;
        cn_status st = cn_onnx_get_tensor(in, node, k, 1, 0, &t);
        if (st) return st;
        if (!per_channel(&t, last))
            return cn_onnx_node_fail(in, node, "multiplying by a constant is supported for one value per channel, "
                                               "(C, 1, 1) of a map (or (C) of a vector or in channels-last order), only");
        cn_onnx_layer *l = cn_onnx_add_channelwise(in, node, node, "scale", "%s", "");
        return l ? cn_onnx_layer_tensor(in, l, "weight", &t, CN_ONNX_FLAT) : cn_onnx_in_status(in);
    }
    if (values != 2 || node->n_input != 2)
        return cn_onnx_node_fail(in, node, "multiplying by a constant is not supported (only two layers' outputs, or a "
                                           "map by a constant per channel)");
    return cn_onnx_add_layer(in, node, "mul", 0, 0, "%s", "") ? CN_OK : cn_onnx_in_status(in);
}

/* MatMul of a value by a (K, D) constant, and an Add of a (D) constant after it that alone reads
 * it (PyTorch's nn.Linear on other than 2-D inputs): of a vector a dense layer; of a
 * channels-last map (ConvNeXt's pointwise Linear layers) a 1x1 conv, channels-last still */
static cn_status import_matmul(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    cn_onnx_tensor w, b = { 0 };
    cn_status st = cn_onnx_get_tensor(in, node, 1, 1, 2, &w);
    if (st) return st;
    int last = cn_onnx_channels_last(in, node, 0);
    if (!last && cn_onnx_input_rank(in, node, 0) != 2)
        return cn_onnx_node_fail(in, node, "MatMul of a map in (N, C, H, W) order multiplies along W: not supported "
                                           "(only of a vector, or of a map in channels-last order)");
    const Onnx__NodeProto *add = cn_onnx_sole_reader(in, node, "Add"), *end = node;
    const char *k = other_input(add, node->output[0]);
    if (k && cn_onnx_const_at(in, k)) {
        if ((st = cn_onnx_get_tensor(in, add, k == add->input[0] ? 0 : 1, 1, 0, &b))) return st;
        int vector = b.count == w.dims[1];
        for (int d = 0; d + 1 < b.n_dims; d++) vector = vector && b.dims[d] == 1;
        if (vector) cn_onnx_skip(in, add), end = add;
        else b.name = NULL; /* an Add of its own: refused there */
    }
    cn_onnx_layer *l = last ? cn_onnx_add_channelwise(in, node, end, "conv", "%lld 1x1", (long long)w.dims[1])
                            : cn_onnx_add_pattern(in, node, end, "dense", 2, "%lld", (long long)w.dims[1]);
    if (!l) return cn_onnx_in_status(in);
    cn_onnx_bias_key(l);
    if ((st = cn_onnx_layer_tensor(in, l, "weight", &w, 1))) return st;
    return b.name ? cn_onnx_layer_tensor(in, l, "bias", &b, 0) : CN_OK;
}

/* Transpose of a map to channels-last order and back (PyTorch's permute around ConvNeXt's
 * LayerNorm and Linear layers); the channel shuffle's is read by import_reshape */
static cn_status import_transpose(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int64_t perm[4] = { -1, -1, -1, -1 };
    cn_status st = cn_onnx_get_ints(in, node, "perm", perm, 4);
    if (st) return st;
    if (perm[0] == 0 && perm[1] == 2 && perm[2] == 3 && perm[3] == 1) return cn_onnx_turn(in, node, 1);
    if (perm[0] == 0 && perm[1] == 3 && perm[2] == 1 && perm[3] == 2) return cn_onnx_turn(in, node, 0);
    return cn_onnx_node_fail(in, node, "only a map's Transpose to channels-last order and back (perm 0,2,3,1 and "
                                       "0,3,1,2) is supported, and the channel shuffle's");
}


/* Resize by whole constant scales or to constant sizes: nearest as PyTorch (asymmetric, floor),
 * bilinear with half pixels (half_pixel or pytorch_half_pixel) or align_corners */
static cn_status import_resize(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    const char *mode = attr_string_is(node, "mode", "nearest", "nearest") ? "nearest"
                     : attr_string_is(node, "mode", "linear", "nearest") ? "bilinear" : NULL;
    int64_t exclude = 0, antialias = 0;
    cn_status st = cn_onnx_get_int(in, node, "exclude_outside", &exclude);
    if (!st) st = cn_onnx_get_int(in, node, "antialias", &antialias);
    if (st) return st;
    if (cn_onnx_opset(in) < 11) return cn_onnx_node_fail(in, node, "Resize before opset 11 is not supported");
    if (!mode || exclude || antialias)
        return cn_onnx_node_fail(in, node, "only modes nearest and linear, without exclude_outside or antialias, "
                                           "are supported");
    const char *ctm = "coordinate_transformation_mode";
    int align = 0;
    if (!strcmp(mode, "nearest")) {
        if (!attr_string_is(node, ctm, "asymmetric", "half_pixel") ||
            !attr_string_is(node, "nearest_mode", "floor", "round_prefer_floor"))
            return cn_onnx_node_fail(in, node, "nearest resizing is supported with coordinate_transformation_mode "
                                               "asymmetric and nearest_mode floor only (PyTorch's)");
    } else if (attr_string_is(node, ctm, "align_corners", "half_pixel")) {
        align = 1;
    } else if (!attr_string_is(node, ctm, "pytorch_half_pixel", "half_pixel") &&
               !attr_string_is(node, ctm, "half_pixel", "half_pixel")) {
        return cn_onnx_node_fail(in, node, "linear resizing is supported with coordinate_transformation_mode "
                                           "half_pixel, pytorch_half_pixel or align_corners only");
    }
    const char *bilinear = strcmp(mode, "bilinear") ? "" : align ? " align_corners=yes" : "";
    cn_onnx_tensor scales;
    if ((st = cn_onnx_get_tensor(in, node, 2, 0, 1, &scales))) return st;
    if (scales.count) { /* else absent or empty: sizes */
        float f[4];
        for (int k = 0; k < 4 && scales.count == 4; k++) f[k] = cn_onnx_value(&scales, k);
        if (scales.count != 4 || f[0] != 1 || f[1] != 1 || !(f[2] >= 1 && f[2] <= 65536 && f[2] == floorf(f[2])) ||
            !(f[3] >= 1 && f[3] <= 65536 && f[3] == floorf(f[3])))
            return cn_onnx_node_fail(in, node, "only scales [1, 1, SH, SW] of whole factors are supported");
        return cn_onnx_add_layer(in, node, "upsample", 1, 4, "%lldx%lld mode=%s%s", (long long)f[2], (long long)f[3],
                                 mode, bilinear) ? CN_OK : cn_onnx_in_status(in);
    }
    int64_t size[4];
    int n = 0;
    if ((st = cn_onnx_get_int64s(in, node, 3, size, 4, &n))) return st;
    if (n != 4 || size[2] < 1 || size[3] < 1 || size[2] > INT32_MAX || size[3] > INT32_MAX)
        return cn_onnx_node_fail(in, node, "sizes is not (N, C, H, W) with H and W of at least 1");
    return cn_onnx_add_layer(in, node, "upsample", 1, 4, "size=%lldx%lld mode=%s%s", (long long)size[2],
                             (long long)size[3], mode, bilinear) ? CN_OK : cn_onnx_in_status(in);
}

/* Slice with constant starts and ends, step 1: of H and/or W a crop (its sides from the input's
 * shape, which the layers before it give), of the channels a `channels` layer */
static cn_status import_slice(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int64_t starts[4], ends[4], axes[4] = { 0, 1, 2, 3 }, steps[4] = { 1, 1, 1, 1 }, dims[3];
    int ns = 0, ne = 0, na = 0, nt = 0;
    cn_status st = cn_onnx_get_int64s(in, node, 1, starts, 4, &ns);
    if (!st) st = cn_onnx_get_int64s(in, node, 2, ends, 4, &ne);
    if (!st && node->n_input > 3 && node->input[3][0]) st = cn_onnx_get_int64s(in, node, 3, axes, 4, &na);
    else na = ns;
    if (!st && node->n_input > 4 && node->input[4][0]) st = cn_onnx_get_int64s(in, node, 4, steps, 4, &nt);
    else nt = ns;
    if (st) return st;
    if (cn_onnx_opset(in) < 10) return cn_onnx_node_fail(in, node, "Slice before opset 10 is not supported");
    if (ns != ne || ns != na || ns != nt || !ns)
        return cn_onnx_node_fail(in, node, "starts, ends, axes and steps differ in length");
    if ((st = cn_onnx_input_dims(in, node, dims))) return st;
    int rank = cn_onnx_input_rank(in, node, 0), channels = 0;
    int64_t side[4] = { 0, 0, 0, 0 }, first = 0, count = 0; /* top, left, bottom, right; the channels' range */
    for (int k = 0; k < ns; k++) {
        int64_t axis = axes[k] < 0 ? axes[k] + rank : axes[k];
        if (axis < 1 || axis > (rank == 2 ? 1 : 3) || steps[k] != 1)
            return cn_onnx_node_fail(in, node, "only slices of the channels (axis 1) or of H and W (axes 2, 3) with "
                                               "step 1 are supported");
        int64_t len = dims[axis - 1]; /* a vector's features too: its layer is a 1x1 map of them */
        int64_t b = starts[k] < 0 ? starts[k] + len : starts[k], e = ends[k] < 0 ? ends[k] + len : ends[k];
        b = b < 0 ? 0 : b > len ? len : b;
        e = e < 0 ? 0 : e > len ? len : e;
        if (e <= b) return cn_onnx_node_fail(in, node, "the slice of axis %lld is empty", (long long)axis);
        if (axis == 1) channels = 1, first = b, count = e - b;
        else side[axis - 2] = b, side[axis] = len - e;
    }
    if (channels && ns > 1)
        return cn_onnx_node_fail(in, node, "a slice of the channels and of H or W at once is not supported");
    if (channels)
        return cn_onnx_add_layer(in, node, "channels", 1, 0, "%lld start=%lld", (long long)count, (long long)first)
                   ? CN_OK : cn_onnx_in_status(in);
    return cn_onnx_add_layer(in, node, "crop", 1, 4, "top=%lld left=%lld bottom=%lld right=%lld", (long long)side[0],
                             (long long)side[1], (long long)side[2], (long long)side[3]) ? CN_OK : cn_onnx_in_status(in);
}

/* Split of the channels (axis 1): a `channels` layer for each output, the sizes from input
 * `split` (opset 13 on) or the attribute (before), else equal parts (the last smaller, as
 * opset 18's num_outputs) */
static cn_status import_split(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int64_t axis = 0, sizes[CN_MAX_INPUTS], dims[3], parts = (int64_t)node->n_output, given = -1;
    int n = 0, rank = cn_onnx_input_rank(in, node, 0);
    cn_status st = cn_onnx_get_int(in, node, "axis", &axis);
    if (st) return st;
    if (axis < 0) axis += rank;
    if (axis != 1) return cn_onnx_node_fail(in, node, "only a split of the channels (axis 1) is supported");
    if (parts < 1 || parts > CN_MAX_INPUTS)
        return cn_onnx_node_fail(in, node, "%lld outputs (at most %d are supported)", (long long)parts, CN_MAX_INPUTS);
    if (cn_onnx_opset(in) >= 13 && node->n_input > 1 && node->input[1][0]) {
        if ((st = cn_onnx_get_int64s(in, node, 1, sizes, CN_MAX_INPUTS, &n))) return st;
        given = n;
    } else {
        for (size_t k = 0; k < node->n_attribute; k++)
            if (node->attribute[k]->name && !strcmp(node->attribute[k]->name, "split")) {
                const Onnx__AttributeProto *a = node->attribute[k];
                given = a->n_ints <= CN_MAX_INPUTS ? (int64_t)a->n_ints : CN_MAX_INPUTS + 1;
                for (int64_t j = 0; j < given && j < CN_MAX_INPUTS; j++) sizes[j] = a->ints[j];
            }
    }
    if ((st = cn_onnx_input_dims(in, node, dims))) return st;
    int64_t c = dims[0], start = 0; /* a vector's features too: its layer is a 1x1 map of them */
    if (given < 0) /* equal parts of ceil(C / parts), the last what is left */
        for (int64_t k = 0; k < parts; k++) sizes[k] = (c + parts - 1) / parts;
    else if (given != parts)
        return cn_onnx_node_fail(in, node, "%lld sizes for %lld outputs", (long long)given, (long long)parts);
    for (int64_t k = 0; k < parts; k++) {
        int64_t size = given < 0 && k == parts - 1 ? c - start : sizes[k];
        if (size < 1 || size > c - start)
            return cn_onnx_node_fail(in, node, "its parts do not cut the %lld channels (part %lld: %lld of them)",
                                     (long long)c, (long long)k, (long long)size);
        Onnx__NodeProto part = *node; /* output k alone, a layer of its own */
        part.n_output = 1;
        part.output = &node->output[k];
        part.n_input = 1;
        if (!cn_onnx_add_layer(in, &part, "channels", 1, 0, "%lld start=%lld", (long long)size, (long long)start))
            return cn_onnx_in_status(in);
        start += size;
    }
    if (start != c)
        return cn_onnx_node_fail(in, node, "its parts take %lld of the %lld channels", (long long)start, (long long)c);
    return CN_OK;
}

/* Unsqueeze of a (N, F) value at axes 2 and 3 (PyTorch's x[:, :, None, None]): convnet's vectors
 * are (N, F, 1, 1) already */
/* A node's axes (at most 4; *n = 0 when absent or more): input 1 from the opset where ONNX
 * moved them there (Unsqueeze 13, ReduceMean 18), the attribute before */
static cn_status node_axes(cn_onnx_in *in, const Onnx__NodeProto *node, int64_t input_from, int64_t axes[4], int *n)
{
    *n = 0;
    if (cn_onnx_opset(in) >= input_from)
        return node->n_input > 1 && node->input[1][0] ? cn_onnx_get_int64s(in, node, 1, axes, 4, n) : CN_OK;
    const Onnx__AttributeProto *a = NULL;
    for (size_t k = 0; k < node->n_attribute; k++)
        if (node->attribute[k]->name && !strcmp(node->attribute[k]->name, "axes")) a = node->attribute[k];
    *n = a && a->n_ints <= 4 ? (int)a->n_ints : 0;
    for (int k = 0; k < *n; k++) axes[k] = a->ints[k];
    return CN_OK;
}

static cn_status import_unsqueeze(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    int64_t axes[4] = { 0 };
    int n = 0, rank = cn_onnx_input_rank(in, node, 0);
    cn_status st = node_axes(in, node, 13, axes, &n);
    if (st) return st;
    /* one axis at a time (2, then 3) or both: the value stays a vector until it is 4-D */
    int ok = rank == 2 && ((n == 1 && (axes[0] == 2 || axes[0] == 3 || axes[0] == -1)) ||
                           (n == 2 && axes[0] == 2 && axes[1] == 3));
    int l = node->n_input ? cn_onnx_value_inputs(in, node) : 0;
    if (!ok || l != 1)
        return cn_onnx_node_fail(in, node, "only Unsqueeze of a (N, F) value at axes 2 and 3 is supported");
    return cn_onnx_alias(in, node);
}

/* ReduceMean or ReduceMax of a map over H and W (PyTorch's x.mean([2, 3]), as MNASNet ends):
 * global pooling, a vector when keepdims is 0 */
static cn_status import_reduce(cn_onnx_in *in, const Onnx__NodeProto *node, const char *type)
{
    int64_t axes[4] = { 0 }, keep = 1;
    int n = 0;
    cn_status st = node_axes(in, node, 18, axes, &n);
    if (!st) st = cn_onnx_get_int(in, node, "keepdims", &keep);
    if (st) return st;
    for (int k = 0; k < n; k++) axes[k] += axes[k] < 0 ? 4 : 0;
    int hw = n == 2 && ((axes[0] == 2 && axes[1] == 3) || (axes[0] == 3 && axes[1] == 2));
    if (!hw || cn_onnx_input_rank(in, node, 0) != 4 || cn_onnx_value_inputs(in, node) != 1)
        return cn_onnx_node_fail(in, node, "only a reduction of a map over H and W (axes 2 and 3) is supported");
    return import_plain(in, node, type, keep ? 4 : 2);
}

static cn_status import_reducemean(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    return import_reduce(in, node, "globalavgpool");
}
static cn_status import_reducemax(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    return import_reduce(in, node, "globalmaxpool");
}

static cn_status import_identity(cn_onnx_in *in, const Onnx__NodeProto *node) { return cn_onnx_alias(in, node); }
static cn_status import_neg(cn_onnx_in *in, const Onnx__NodeProto *node) { return cn_onnx_negate(in, node); }

/* ---- patterns: one convnet op written as several ONNX nodes ---------------------------------------- */

/* the input of binary node b that is not value v (NULL when v is not one of its two inputs) */
static const char *other_input(const Onnx__NodeProto *b, const char *v)
{
    if (!b || b->n_input != 2) return NULL;
    if (!strcmp(b->input[0], v)) return b->input[1];
    if (!strcmp(b->input[1], v)) return b->input[0];
    return NULL;
}

/* b reads v and the scalar constant want (within float rounding) */
static int with_scalar(const cn_onnx_in *in, const Onnx__NodeProto *b, const char *v, double want)
{
    double c;
    const char *k = other_input(b, v);
    return k && cn_onnx_scalar(in, k, &c) && fabs(c - want) <= 1e-6 * fabs(want);
}

/* b reads v and x */
static int with_value(const Onnx__NodeProto *b, const char *v, const char *x)
{
    const char *k = other_input(b, v);
    return k && !strcmp(k, x);
}

static cn_status take_pattern(cn_onnx_in *in, const Onnx__NodeProto *first, const Onnx__NodeProto *const *nodes, int n,
                              const char *type, const char *args)
{
    for (int k = 0; k < n; k++) cn_onnx_skip(in, nodes[k]);
    return cn_onnx_add_pattern(in, first, nodes[n - 1], type, 0, "%s", args) ? CN_OK : cn_onnx_in_status(in);
}

/* Sigmoid, or with Mul(x, Sigmoid(x)) after it: SiLU */
static cn_status import_sigmoid(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    const Onnx__NodeProto *mul = cn_onnx_sole_reader(in, node, "Mul");
    if (node->n_input == 1 && with_value(mul, node->output[0], node->input[0]))
        return take_pattern(in, node, &mul, 1, "silu", "");
    return import_plain(in, node, "sigmoid", 0);
}

/* Div(x, sqrt 2), Erf, Add 1, Mul x, Mul 0.5: GELU's erf form as PyTorch writes it */
static cn_status import_div(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    const Onnx__NodeProto *p[4];
    const char *x = node->n_input == 2 ? node->input[0] : "";
    double c;
    int ok = node->n_input == 2 && cn_onnx_scalar(in, node->input[1], &c) && fabs(c - sqrt(2)) < 1e-6 &&
             (p[0] = cn_onnx_sole_reader(in, node, "Erf")) && (p[1] = cn_onnx_sole_reader(in, p[0], "Add")) &&
             with_scalar(in, p[1], p[0]->output[0], 1) && (p[2] = cn_onnx_sole_reader(in, p[1], "Mul")) &&
             with_value(p[2], p[1]->output[0], x) && (p[3] = cn_onnx_sole_reader(in, p[2], "Mul")) &&
             with_scalar(in, p[3], p[2]->output[0], 0.5);
    if (!ok)
        return cn_onnx_node_fail(in, node, "Div is supported only in GELU's erf form "
                                           "(x * (erf(x / sqrt 2) + 1) * 0.5)");
    return take_pattern(in, node, p, 4, "gelu", "");
}

/* Mul(x, x), Mul x, Mul 0.044715, Add x, Mul sqrt(2/pi), Tanh, Add 1, Mul x, Mul 0.5: GELU's
 * tanh form as PyTorch writes it */
static cn_status import_gelu_tanh(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    static const char *const ops[8] = { "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul" };
    const Onnx__NodeProto *p[8], *prev = node;
    const char *x = node->input[0];
    for (int k = 0; k < 8; k++) {
        p[k] = cn_onnx_sole_reader(in, prev, ops[k]);
        const char *v = prev->output[0];
        int ok = p[k] && (k == 4 ? p[k]->n_input == 1
                          : k == 1 ? with_scalar(in, p[k], v, 0.044715)
                          : k == 3 ? with_scalar(in, p[k], v, 0.7978845608028654)
                          : k == 5 ? with_scalar(in, p[k], v, 1)
                          : k == 7 ? with_scalar(in, p[k], v, 0.5) : with_value(p[k], v, x));
        if (!ok)
            return cn_onnx_node_fail(in, node, "Mul(x, x) is supported only in GELU's tanh form as PyTorch writes it");
        prev = p[k];
    }
    /* Mul(x, x) is read twice (x * x * x): by p[0] only once here, as x3 = x * x2 */
    return take_pattern(in, node, p, 8, "gelu", "approximate=tanh");
}

/* scale all 1 and shift absent or all 0: no affine parameters */
static int identity_affine(const cn_onnx_tensor *scale, const cn_onnx_tensor *shift)
{
    for (int64_t k = 0; k < scale->count; k++)
        if (cn_onnx_value(scale, k) != 1) return 0;
    for (int64_t k = 0; k < shift->count; k++) /* none when absent */
        if (cn_onnx_value(shift, k) != 0) return 0;
    return 1;
}

/* tensors weight and bias of l (bias: absent is zeros, only with affine=no) */
static cn_status norm_tensors(cn_onnx_in *in, cn_onnx_layer *l, const cn_onnx_tensor *scale, const cn_onnx_tensor *shift,
                              int affine)
{
    cn_status st = CN_OK;
    if (!l) return cn_onnx_in_status(in);
    if (affine && !(st = cn_onnx_layer_tensor(in, l, "weight", scale, 0)) && shift->count)
        st = cn_onnx_layer_tensor(in, l, "bias", shift, 0);
    return st;
}

/* LayerNormalization from axis 1 to the end: convnet's layernorm (C, H, W of a map, F of a vector) */
static cn_status import_layernorm(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    cn_onnx_tensor scale, shift;
    double eps = 1e-5;
    int64_t axis = -1, stash = 1;
    int rank = cn_onnx_input_rank(in, node, 0);
    cn_status st;
    if ((st = cn_onnx_get_tensor(in, node, 1, 1, 0, &scale)) || (st = cn_onnx_get_tensor(in, node, 2, 0, 0, &shift)) ||
        (st = cn_onnx_get_float(in, node, "epsilon", &eps)) || (st = cn_onnx_get_int(in, node, "axis", &axis)) ||
        (st = cn_onnx_get_int(in, node, "stash_type", &stash)))
        return st;
    int last = cn_onnx_channels_last(in, node, 0); /* torchvision's LayerNorm2d: over the channels */
    if (axis < 0) axis += rank;
    if (last ? axis != 3 : axis != 1)
        return cn_onnx_node_fail(in, node, "normalizing from axis %lld is not supported (only from 1, the channels, "
                                           "or of a map in channels-last order the last, 3)", (long long)axis);
    if (node->n_output > 1 && ((node->output[1][0]) || (node->n_output > 2 && node->output[2][0])))
        return cn_onnx_node_fail(in, node, "the mean and inverse deviation outputs are not supported");
    if (!(eps > 0 && eps <= 1)) return cn_onnx_node_fail(in, node, "epsilon %g is not in (0, 1]", eps);
    int has_b = node->n_input > 2 && node->input[2][0];
    if (has_b && shift.count != scale.count)
        return cn_onnx_node_fail(in, node, "scale of %lld values, B of %lld", (long long)scale.count, (long long)shift.count);
    int affine = !identity_affine(&scale, &shift);
    if (affine && !has_b) return cn_onnx_node_fail(in, node, "a scale without B is not supported (convnet's layernorm has both)");
    cn_onnx_layer *l = last ? cn_onnx_add_channelwise(in, node, node, "layernorm", "eps=%.7g affine=%s over=channels", eps,
                                                      affine ? "yes" : "no")
                            : cn_onnx_add_layer(in, node, "layernorm", 1, 0, "eps=%.7g affine=%s", eps, affine ? "yes" : "no");
    return norm_tensors(in, l, &scale, &shift, affine);
}

/* InstanceNormalization: convnet's instancenorm */
static cn_status import_instancenorm(cn_onnx_in *in, const Onnx__NodeProto *node)
{
    cn_onnx_tensor scale, shift;
    double eps = 1e-5;
    cn_status st;
    if ((st = cn_onnx_get_tensor(in, node, 1, 1, 1, &scale)) || (st = cn_onnx_get_tensor(in, node, 2, 1, 1, &shift)) ||
        (st = cn_onnx_get_float(in, node, "epsilon", &eps)))
        return st;
    if (!(eps > 0 && eps <= 1)) return cn_onnx_node_fail(in, node, "epsilon %g is not in (0, 1]", eps);
    if (shift.count != scale.count)
        return cn_onnx_node_fail(in, node, "scale of %lld values, B of %lld", (long long)scale.count, (long long)shift.count);
    int affine = !identity_affine(&scale, &shift);
    cn_onnx_layer *l = cn_onnx_add_layer(in, node, "instancenorm", 1, 4, "eps=%.7g affine=%s", eps, affine ? "yes" : "no");
    return norm_tensors(in, l, &scale, &shift, affine);
}

/* Reshape (N, G, -1), InstanceNormalization (scale 1, shift 0), Reshape back (to the input's Shape
 * or a constant), then maybe Mul and Add of (C, 1, 1) constants: PyTorch's GroupNorm */
static cn_status import_groupnorm(cn_onnx_in *in, const Onnx__NodeProto *node, int64_t groups)
{
    const Onnx__NodeProto *p[4], *shape = NULL;
    cn_onnx_tensor scale, shift, w = { 0 }, b = { 0 };
    double eps = 1e-5;
    int64_t dims[4];
    int n = 0, len = 2;
    const char *fail = "Reshape to (N, G, -1) is supported only in GroupNorm as PyTorch writes it";
    if (!(p[0] = cn_onnx_sole_reader(in, node, "InstanceNormalization")) || !(p[1] = cn_onnx_sole_reader(in, p[0], "Reshape")) ||
        p[1]->n_input != 2 || cn_onnx_get_tensor(in, p[0], 1, 1, 1, &scale) || cn_onnx_get_tensor(in, p[0], 2, 1, 1, &shift) ||
        cn_onnx_get_float(in, p[0], "epsilon", &eps) || scale.count != groups || shift.count != groups ||
        !identity_affine(&scale, &shift) || !(eps > 0 && eps <= 1))
        return cn_onnx_node_fail(in, node, "%s", fail);
    /* back to the input's shape: Shape(x) (then taken into the pattern) or (0|N, C, H, W) */
    if ((shape = cn_onnx_writer(in, p[1]->input[1], "Shape")) && shape->n_input == 1 && shape->n_attribute == 0 &&
        !strcmp(shape->input[0], node->input[0]))
        cn_onnx_skip(in, shape);
    else if (cn_onnx_get_int64s(in, p[1], 1, dims, 4, &n) || n != 4)
        return cn_onnx_node_fail(in, node, "%s", fail);
    if ((p[2] = cn_onnx_sole_reader(in, p[1], "Mul")) && other_input(p[2], p[1]->output[0]) &&
        (p[3] = cn_onnx_sole_reader(in, p[2], "Add")) && other_input(p[3], p[2]->output[0])) {
        const Onnx__NodeProto *mul = p[2], *add = p[3];
        int wi = strcmp(mul->input[0], p[1]->output[0]) ? 0 : 1, bi = strcmp(add->input[0], p[2]->output[0]) ? 0 : 1;
        /* constants of C values: the affine part (a product with a layer's output is not) */
        if (cn_onnx_const_at(in, mul->input[wi]) && cn_onnx_const_at(in, add->input[bi])) {
            cn_status st = cn_onnx_get_tensor(in, mul, wi, 1, 0, &w);
            if (!st) st = cn_onnx_get_tensor(in, add, bi, 1, 0, &b);
            if (st) return st;
            len = w.count == b.count ? 4 : 2;
        }
    }
    for (int k = 0; k < len; k++) cn_onnx_skip(in, p[k]);
    cn_onnx_layer *l = cn_onnx_add_pattern(in, node, p[len - 1], "groupnorm", 4, "%lld eps=%.7g affine=%s", (long long)groups,
                                           eps, len == 4 ? "yes" : "no");
    return norm_tensors(in, l, &w, &b, len == 4);
}

/* ---- the table ------------------------------------------------------------------------------------ */

const cn_onnx_row cn_onnx_rows[] = {
    { CN_OP_INPUT, "(graph input)", export_input, NULL },
    { CN_OP_CONV, "Conv", export_conv, import_conv },
    { CN_OP_MAXPOOL, "MaxPool", export_maxpool, import_maxpool },
    { CN_OP_AVGPOOL, "AveragePool", export_avgpool, import_avgpool },
    { CN_OP_MINPOOL, "Neg+MaxPool+Neg", export_minpool, NULL },
    { CN_OP_GLOBALAVGPOOL, "GlobalAveragePool", export_globalavgpool, import_globalavgpool },
    { CN_OP_RELU, "Relu", export_elementwise, import_elementwise },
    { CN_OP_LEAKYRELU, "LeakyRelu", export_leakyrelu, import_leakyrelu },
    { CN_OP_SIGMOID, "Sigmoid", export_elementwise, import_sigmoid }, /* and SiLU's Sigmoid, Mul */
    { CN_OP_TANH, "Tanh", export_elementwise, import_elementwise },
    { CN_OP_SOFTMAX, "Softmax", export_softmax, import_softmax },
    { CN_OP_BATCHNORM, "BatchNormalization", export_batchnorm, import_batchnorm },
    { CN_OP_DROPOUT, "Dropout", export_dropout, import_dropout },
    { CN_OP_FLATTEN, "Flatten", export_flatten, import_flatten },
    { CN_OP_DENSE, "Gemm", export_dense, import_gemm },
    { CN_OP_CONCAT, "Concat", export_concat, import_concat },
    { CN_OP_ADD, "Add", export_add, import_add },
    { CN_OP_RELU6, "Clip", export_relu6, import_clip },
    { CN_OP_HARDSIGMOID, "HardSigmoid", export_hardsigmoid, import_hardsigmoid },
    { CN_OP_HARDSWISH, "HardSwish", export_elementwise, import_elementwise },
    { CN_OP_ELU, "Elu", export_elu, import_elu },
    { CN_OP_PRELU, "PRelu", export_prelu, import_prelu },
    { CN_OP_GLOBALMAXPOOL, "GlobalMaxPool", export_globalmaxpool, import_globalmaxpool },
    { CN_OP_ADAPTIVEAVGPOOL, "AveragePool", export_adaptiveavgpool, NULL }, /* read back as avgpool */
    { CN_OP_DECONV, "ConvTranspose", export_deconv, import_convtranspose },
    { CN_OP_MUL, "Mul", export_mul, import_mul },
    { CN_OP_UPSAMPLE, "Resize", export_upsample, import_resize },
    { CN_OP_PAD, "Pad", export_pad, import_pad }, /* zeros read by Conv, AveragePool: their padding */
    { CN_OP_CROP, "Slice", export_crop, import_slice },
    { CN_OP_SILU, "Sigmoid+Mul", export_silu, NULL },       /* read by import_sigmoid */
    { CN_OP_GELU, "Div+Erf+Add+Mul+Mul", export_gelu, NULL }, /* read by import_div, import_mul */
    { CN_OP_LAYERNORM, "LayerNormalization", export_layernorm, import_layernorm },
    { CN_OP_GROUPNORM, "Reshape+InstanceNormalization+Reshape+Mul+Add", export_groupnorm, NULL }, /* import_reshape */
    { CN_OP_INSTANCENORM, "InstanceNormalization", export_groupnorm, import_instancenorm },
    { CN_OP_SHUFFLE, "Reshape+Transpose+Reshape", export_shuffle, NULL }, /* read by import_reshape */
    { CN_OP_CHANNELS, "Slice", export_channels, NULL },                   /* read by import_slice */
    { CN_OP_SCALE, "Mul", export_scale, NULL },                           /* read by import_mul */
    { -1, "Sum", NULL, import_add },
    { -1, "Div", NULL, import_div }, /* GELU's erf form */
    { -1, "Identity", NULL, import_identity },
    { -1, "Reshape", NULL, import_reshape },
    { -1, "Constant", NULL, import_constant },
    { -1, "Unsqueeze", NULL, import_unsqueeze }, /* of a vector to (N, F, 1, 1) */
    { -1, "Neg", NULL, import_neg }, /* around a MaxPool: convnet's minpool */
    { -1, "ReduceMean", NULL, import_reducemean }, /* over H and W: globalavgpool */
    { -1, "Split", NULL, import_split },           /* of the channels: a `channels` a part */
    { -1, "ReduceMax", NULL, import_reducemax },   /* over H and W: globalmaxpool */
    { -1, "MatMul", NULL, import_matmul },         /* by a constant: dense, or of channels-last a 1x1 conv */
    { -1, "Transpose", NULL, import_transpose },   /* to channels-last order and back */
};
const int cn_onnx_row_count = (int)(sizeof cn_onnx_rows / sizeof cn_onnx_rows[0]);

static const cn_onnx_row *row_of_op(int op)
{
    for (int r = 0; r < cn_onnx_row_count; r++)
        if (cn_onnx_rows[r].op == op) return &cn_onnx_rows[r];
    return NULL; /* not reached: export_elementwise is only in rows of ops */
}

static const cn_onnx_row *row_of_onnx(const char *op_type)
{
    for (int r = 0; r < cn_onnx_row_count; r++)
        if (!strcmp(cn_onnx_rows[r].onnx, op_type)) return &cn_onnx_rows[r];
    return NULL; /* not reached: import_elementwise is only called through its row */
}
