/* op_impl.h — what every op file provides: its spec keys, shape inference (output shape,
 * parameters, MACs, receptive field) and the worksheet explanation. The parser, summary and
 * later the trainer find an op through cn_ops[] (generated from ops.def); none of them has a
 * per-op if-chain. */
#ifndef CN_OP_IMPL_H
#define CN_OP_IMPL_H

#include <stddef.h>

#include "../backend/kernel.h"
#include "../core/core_impl.h"
#include "resample_ref.h" /* cn_pad_fill */

typedef struct { int64_t h, w; } cn_pair;
typedef enum { CN_PAD_EXPLICIT = 0, CN_PAD_SAME, CN_PAD_VALID } cn_pad_mode;
typedef struct { cn_pad_mode mode; int64_t h, w; } cn_pad;
typedef struct { int64_t c, h, w; } cn_dims; /* one sample: channels, height, width */

/* Every value a statement can set; each op reads the fields its keys name. */
typedef struct cn_attrs {
    cn_dims shape;       /* input */
    int64_t filters;     /* conv: output channels; channels: how many it keeps */
    int64_t first;       /* channels: the first one it keeps */
    int64_t units;       /* dense: outputs */
    int64_t groups;      /* conv */
    cn_pair kernel, stride, dilation;
    cn_pad pad;
    int bias;            /* conv, dense: 1 = add a bias */
    int ceil;            /* pooling: ceil instead of floor for the output size */
    double slope;        /* leakyrelu */
    double eps, momentum;/* batchnorm */
    double keep;         /* dropout: keep probability */
    /* geometric layers (upsample.c, deconv.c, geom.c) */
    cn_pair scale, size; /* upsample: by a whole factor, or to a size (0x0: not given);
                          * adaptiveavgpool: its output size */
    int mode;            /* upsample: cn_upsample_mode; pad: cn_pad_fill */
    int align_corners;   /* upsample bilinear, as PyTorch */
    cn_pair outpad;      /* deconv: output padding added at the bottom/right */
    cn_pair offset;      /* crop: top-left corner of the window kept */
    cn_pair margin;      /* pad, crop: rows x columns on every side */
    int64_t top, bottom, left, right; /* pad, crop: rows or columns per side */
    /* the layers of issue 15 */
    double alpha;        /* elu: the value approached for x -> -inf is -alpha */
    int approximate;     /* gelu: 0 = erf (exact), 1 = tanh */
    int affine;          /* batchnorm, layernorm, groupnorm, instancenorm: learned scale and shift */
    int over;            /* layernorm: cn_norm_over */
    double init;         /* scale: where every factor starts */
    int winit;           /* conv, deconv, dense: how the weights start (cn_winit) */
    double std;          /* conv, deconv, dense: init=normal and trunc-normal's standard deviation */
    int count_pad;       /* avgpool: padded cells count in the divisor (PyTorch's count_include_pad) */
} cn_attrs;

typedef enum { CN_UPSAMPLE_NEAREST = 0, CN_UPSAMPLE_BILINEAR } cn_upsample_mode;
/* layernorm: each sample over all its values (nn.LayerNorm([C, H, W])), or each position over
 * its channels (ConvNeXt's LayerNorm2d: nn.LayerNorm(C) of the channels-last map) */
typedef enum { CN_NORM_OVER_ALL = 0, CN_NORM_OVER_CHANNELS } cn_norm_over;

/* conv, deconv, dense: how the weights start (init=). CN_WINIT_NET: the net's initializer
 * (`--init`, cn_net_init_params); the next six are its six in cn_init's order (CN_WINIT_KAIMING
 * + a cn_init), then two draws of the layer's own. torch: PyTorch's default, weights and bias
 * U(-1/sqrt(fan_in), +1/sqrt(fan_in)); zero: all 0 (the units start the same, and only the
 * weights after the layer give them different gradients: a lesson on symmetry); normal: N(0,
 * std^2); trunc-normal: the same drawn again past +-2 std (Keras' TruncatedNormal; PyTorch's
 * trunc_normal_(std=0.02) cuts at +-2 itself, 100 std, which is init=normal). */
typedef enum { CN_WINIT_NET = 0, CN_WINIT_KAIMING, CN_WINIT_KAIMING_UNIFORM, CN_WINIT_XAVIER,
               CN_WINIT_XAVIER_UNIFORM, CN_WINIT_TORCH, CN_WINIT_ZERO, CN_WINIT_NORMAL,
               CN_WINIT_TRUNC_NORMAL } cn_winit;
extern const char *const cn_winit_words[]; /* the words of init=, in cn_winit's order */
/* the two keys of a layer with weights: init= and std= */
#define CN_WEIGHT_INIT_KEYS                                                                                      \
    { .name = "init", .type = CN_KT_CHOICE, .offset = offsetof(cn_attrs, winit), .def = "net",                 \
      .doc = "how the weights start: net (the net's --init), kaiming, kaiming-uniform, xavier, xavier-uniform, " \
             "torch, zero, normal or trunc-normal",                                                             \
      .choices = cn_winit_words },                                                                              \
    { .name = "std", .type = CN_KT_FLOAT, .offset = offsetof(cn_attrs, std), .def = "0.02", .lo = 0, .hi = 1e30, \
      .doc = "the standard deviation of init=normal and init=trunc-normal" }

/* batchnorm, layernorm, groupnorm, instancenorm: where gamma starts (init=, the field scale's
 * factors start from too); 0 in a residual block's last norm makes the block start as the
 * identity (torchvision's ResNet(zero_init_residual=True), Goyal et al. 2017) */
#define CN_GAMMA_INIT_KEY                                                                                        \
    { .name = "init", .type = CN_KT_FLOAT, .offset = offsetof(cn_attrs, init), .def = "1", .lo = -1e30, .hi = 1e30, \
      .doc = "where gamma starts (0: a residual block's last norm starts the block as the identity)" }

typedef enum { CN_KT_INT, CN_KT_PAIR, CN_KT_PAD, CN_KT_FLOAT, CN_KT_BOOL, CN_KT_SHAPE, CN_KT_NAMES,
               CN_KT_CHOICE /* one word of `choices`, stored as its index (an int) */ } cn_key_type;

#define CN_KEY_POS 1u     /* may be written by position: conv 32 3x3 */
#define CN_KEY_REQ 2u     /* must be written */
#define CN_KEY_LO_OPEN 4u /* lower bound excluded (keep > 0) */
#define CN_MAX_KEYS 10 /* deconv has 10 (init= and std= the last two) */

typedef struct cn_key {
    const char *name;  /* NULL ends the table */
    cn_key_type type;
    size_t offset;     /* field in cn_attrs */
    unsigned flags;
    const char *def;   /* default, written as in a spec; NULL: the op decides (or required) */
    double lo, hi;     /* allowed range of numbers */
    const char *doc;   /* for --help and for "missing" messages */
    const char *const *choices; /* CN_KT_CHOICE: the words, NULL-terminated */
} cn_key;

#define CN_INT_MAX 2147483647.0

/* The ops by number, generated from ops.def: CN_OP_CONV, ... */
#define CN_OP(E, name) CN_OP_##E,
typedef enum {
#include "ops.def"
    CN_OP_COUNT } cn_op_id;
#undef CN_OP

typedef struct cn_node {
    const struct cn_op *op;
    cn_op_id id;                /* op == cn_ops[id]: the row of the backends' kernel tables */
    char *name;
    int line, col;              /* the statement's first token */
    int key_col[CN_MAX_KEYS];   /* column where each key was written, 0 when defaulted */
    int name_col;               /* column of the name after 'as', 0 when automatic */
    cn_attrs a;
    int n_in;
    int *in;                    /* indices of input nodes (after resolution) */
    char **in_names;            /* names as written ('from x', 'concat a b'); NULL = previous line */
    int *in_cols;
    /* filled by shape inference */
    cn_dims out;
    int64_t params, trainable;  /* trainable <= params */
    int64_t macs;               /* per sample */
    int64_t rf_h, rf_w, jump_h, jump_w; /* in units of 1/den_h, 1/den_w input pixels */
    int64_t den_h, den_w;       /* 1 until a layer upsamples (jump 1/2); 0 after infer: the first input's */
    int64_t span_h, span_w;     /* spatial size the values still index (flatten keeps its input's) */
    int64_t pad_t, pad_b, pad_l, pad_r; /* resolved padding of conv and pooling */
    int frozen;                 /* the optimizer leaves its parameters alone (cn_net_freeze) */
} cn_node;

/* 1 when input `in` of add or mul node n is a 1x1 map spread over the output's planes: it has
 * fewer values per sample than the output (flatten, which the backends run as an add of one
 * input, has as many). The reference and every backend's kernels ask this one question. */
static inline int cn_merge_spread(const cn_node *n, const cn_node *in)
{
    return in->out.c * in->out.h * in->out.w != n->out.c * n->out.h * n->out.w;
}

/* 1 when node n is a layernorm over=channels (each position over its channels: the reference's
 * and every backend's kernels of their own) */
static inline int cn_norm_over_channels(const cn_node *n)
{
    return n->id == CN_OP_LAYERNORM && n->a.over == CN_NORM_OVER_CHANNELS;
}

/* ---- execution ------------------------------------------------------------------------------
 * Kernels exist for float (training) and double (gradient checks): each op file writes them once
 * for CN_REAL and includes itself through template.h. Tensors are NCHW, contiguous. */

typedef enum { CN_F32 = 0, CN_F64 = 1 } cn_dtype;

#define CN_MAX_PARAMS 4
typedef enum { CN_PINIT_WEIGHT = 0, CN_PINIT_ZERO, CN_PINIT_ONE, CN_PINIT_CONST } cn_pinit;

/* One parameter tensor of a layer, in PyTorch's layout and naming. */
typedef struct cn_param_spec {
    const char *name;   /* "weight", "bias", "running_mean", "running_var" */
    int rank;
    int64_t shape[4];
    int64_t count;
    int trainable;      /* trainable tensors come first in a layer's list */
    cn_pinit init;
    int64_t fan_in, fan_out;
    double value;       /* CN_PINIT_CONST: every value starts at this (prelu's 0.25) */
    cn_winit winit;     /* CN_PINIT_WEIGHT: the layer's init= (CN_WINIT_NET: the net's) */
    double std;         /* CN_WINIT_NORMAL, CN_WINIT_TRUNC_NORMAL */
    int bias;           /* a bias drawn only by CN_WINIT_TORCH (0 otherwise) */
} cn_param_spec;


typedef struct cn_op {
    const char *name;
    const char *usage;   /* "conv FILTERS KxK [stride=S] ..." */
    const char *help;    /* one line */
    const cn_key *keys;
    int inputs;          /* 0: none (input), 1: previous line or 'from', -1: two or more names */
    /* Sets n->out, params, trainable, macs, rf/jump; fails with FILE:LINE:COL. */
    cn_status (*infer)(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in);
    /* Worksheet arithmetic of this node, one formula per line, each line indented by 4. */
    void (*explain)(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb);
    /* Parameter tensors (trainable first); returns how many. NULL: none. */
    int (*params)(const cn_node *n, const cn_node *const *in, cn_param_spec *out);
    /* Bytes forward keeps for backward at this batch, for reals of real_size bytes. NULL: none. */
    int64_t (*aux_bytes)(const cn_node *n, const cn_node *const *in, int64_t batch, size_t real_size);
    cn_kernel_fn forward[2];   /* [CN_F32], [CN_F64] */
    cn_kernel_fn backward[2];
    /* Ops whose training pass reduces over the batch (batch norm), so that a batch cut into
     * shards (data-parallel training) can normalise over all of it: the statistics of one shard
     * (forward: from its input; backward: from its output gradient and forward's aux), merged
     * in shard order into those of the whole batch, which the f32 reference kernels then use
     * from cn_op_io.whole. NULL: the op works on each sample alone. */
    int64_t stats_count;       /* doubles per channel of one shard's statistics (both passes) */
    void (*stats)(const cn_op_io *io, int backward, double *out);
    void (*stats_merge)(const cn_node *n, int backward, const double *shards, int count, double *out);
    /* An op that in evaluation is y = scale * x + shift per channel (batch norm with its running
     * statistics): scale and shift (C each) from its trainable tensors w and buffers buf. The
     * executor folds it into the convolution before it at inference. NULL: not such an op. */
    void (*channel_affine)(const cn_node *n, const float *w, const float *buf, double *scale, double *shift);
} cn_op;

/* The op table, generated from ops.def. */
extern const cn_op *const cn_ops[CN_OP_COUNT];
/* The op named name, or -1. */
int cn_op_find(const char *name);
int cn_op_key_index(const cn_op *op, const char *key);

/* ---- helpers shared by op files (infer_util.c) ---- */

/* The key table of an op that has no keys (relu, flatten, softmax, ...). */
extern const cn_key cn_no_keys[];
/* Column of key `name` in the statement (the statement's column when defaulted). */
int cn_key_col(const cn_node *n, const char *name);
/* 1 when key `name` was written in the statement (not defaulted) */
int cn_key_given(const cn_node *n, const char *name);
/* init= and std= of a layer with weights: std= only where init= reads it (else fails naming it) */
cn_status cn_check_weight_init(cn_ctx *ctx, const char *file, const cn_node *n);
/* a norm layer's gamma: 1 as ever (CN_PINIT_ONE, which gradient checks draw positive), else
 * init='s constant */
static inline cn_pinit cn_gamma_pinit(const cn_node *n) { return n->a.init == 1 ? CN_PINIT_ONE : CN_PINIT_CONST; }
/* Gives a layer's weight tensor (specs[0]) its init= and std=, and its bias (specs[1], when k is
 * 2) the weight's fan_in for a draw of init=torch (or --init torch); else it starts at 0.
 * Returns k. */
int cn_weight_init_specs(const cn_node *n, cn_param_spec *specs, int k);
/* "weights start: N(0, 2/27) ..." for a layer whose init= is written */
void cn_explain_weight_init(const cn_node *n, int64_t fan_in, int64_t fan_out, cn_strbuf *sb);
/* a norm layer's init=: only with a gamma (affine=yes), else fails naming the key */
cn_status cn_check_gamma_init(cn_ctx *ctx, const char *file, const cn_node *n);
/* Output keeps the input's shape and receptive field; no parameters. */
cn_status cn_infer_pointwise(cn_ctx *ctx, const char *file, cn_node *n, const cn_node *const *in);
void cn_explain_pointwise(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb);
/* One dimension of a sliding window, the only place its output size is computed (the layers,
 * cn_conv_out_size, `convnet filter`): keff = d*(k-1) + 1, and
 *   explicit pad p (valid: p = 0): out = floor or ceil((in + 2p - keff) / s) + 1, lo = hi = p;
 *     with ceil_mode, as PyTorch, the last window starts inside the input or its left padding,
 *     and hi grows to the last window's overhang;
 *   same (TensorFlow): out = ceil(in / s), the padding needed split lo, hi with the odd one in hi.
 * Returns 0 (out unset) when the window is larger than the padded input. */
int cn_window_dim(cn_pad_mode mode, int64_t in, int64_t k, int64_t s, int64_t d, int64_t p, int ceil_mode,
                  int64_t *out, int64_t *lo, int64_t *hi);
/* Output size of a sliding window (conv, pooling) over `in`, resolving pad=same and
 * pad=valid into n->pad_t/b/l/r; a window larger than the padded input names the kernel. */
cn_status cn_window_shape(cn_ctx *ctx, const char *file, cn_node *n, cn_dims in, cn_pair k, cn_pair s, cn_pair d,
                          int ceil_mode, int64_t *oh, int64_t *ow);
/* Receptive field after a window of k (dilated by d) with stride s. */
void cn_rf_window(cn_node *n, const cn_node *in, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                  int64_t dw);
/* "O = floor((64 - 3 + 2*1)/1) + 1 = 64" lines for a window op (both dimensions). */
void cn_explain_window(const cn_node *n, const cn_node *in, cn_strbuf *sb);
void cn_explain_rf(const cn_node *n, const cn_node *in, cn_strbuf *sb);
/* "RF = 4 -> 5, jump = 2 -> 1 input pixels": a layer that upsamples (exact fractions) */
void cn_explain_rf_change(const cn_node *n, const cn_node *in, cn_strbuf *sb);
/* num/den input pixels as an integer or a decimal ("3", "1.5", "0.33") */
void cn_sb_ratio(cn_strbuf *sb, int64_t num, int64_t den);
/* Receptive field and jump through an upsampling from `from` to `to` pixels per dimension
 * (upsample, deconv), as exact fractions (n->den_h, den_w; reduced, saturating):
 *   the field first grows by taps_in - 1 jumps of the input grid (bilinear's second tap),
 *   jump_out = jump_in * from/to,
 *   then the field grows by taps_out - 1 jumps of the output grid (a deconv's dilated kernel
 *   over its zero-stuffed input: a convolution of fractional stride 1/s). */
void cn_rf_upsample(cn_node *n, const cn_node *in, cn_pair from, cn_pair to, cn_pair taps_in, cn_pair taps_out);
/* Receptive field and jump of a layer reading several inputs (add, mul, concat; n->out set):
 * the largest; the jump of the inputs of the output's height and width only. */
void cn_rf_merge(cn_node *n, const cn_node *const *in);
/* a * b with thousands separators, or a note when the product does not fit in 64 bits */
void cn_explain_product(cn_strbuf *sb, int64_t a, int64_t b);
/* "MACs = 8*" prefix for batch > 1. */
void cn_explain_batch(cn_strbuf *sb, int64_t batch);
/* Element count c*h*w, checked. */
cn_status cn_dims_count(cn_ctx *ctx, const char *file, const cn_node *n, cn_dims d, int64_t *count);

#endif /* CN_OP_IMPL_H */
