/* model_impl.h — the parsed network: nodes in topological order. */
#ifndef CN_MODEL_IMPL_H
#define CN_MODEL_IMPL_H

#include "../backend/backend.h"
#include "../ops/op_impl.h"
#include "shards.h"

/* One parameter tensor of the net: which node, its spec, where it lives in the slab. */
typedef struct cn_tensor_rec {
    int node;
    cn_param_spec spec;
    int64_t offset;     /* in the parameter slab (and the gradient slab when trainable) */
    char *name;         /* "<layer>.<spec name>" */
} cn_tensor_rec;

/* Execution state: parameters once initialised, activations once planned for a batch size. */
typedef struct cn_exec {
    int n_tensors;
    cn_tensor_rec *tensors;
    int64_t n_trainable, n_total;
    float *params;      /* [trainable | buffers] */
    float *grads;       /* n_trainable */
    int64_t *w_off, *buf_off; /* per node: first trainable / buffer value */
    cn_rng rng;
    int64_t batch;      /* planned batch size, 0 = not planned */
    float *act, *dact;  /* every node's output and its gradient, back to back */
    int64_t *act_off;
    int *grad_writer;   /* per node: the last node reading it, whose backward first adds to its gradient */
    int *n_readers;     /* per node: how many inputs of nodes name it (add a a: twice) */
    /* per node, relus fused into their reader's pass (cn_kernels.forward_relu_in): the relu
     * node i absorbs (0: none), or -1 for a relu absorbed; planned with the backend */
    int *relu_in;
    /* per node, relus fused into the pass of the node before them (forward_relu_out): the relu
     * whose output node i writes (0: none), or -1 for that relu */
    int *relu_out;
    /* per node, a maxpool (with its relu, relu_in) that node i computes in its pass
     * (forward_relu_pool): the maxpool (0: none), or -1 for that maxpool */
    int *pool_in;
    int fused;          /* the last forward ran them fused (not while tracing) */
    /* per conv node, the batch norm after it folded into its weights at inference (0: none),
     * or -1 for that batch norm (cn_kernels.fold_bn, cn_op.channel_affine) */
    int *fold_bn;
    float *fold_w;      /* the folded weights and bias of one convolution */
    double *fold_aff;   /* the batch norm's scale and shift */
    int folded;         /* the last forward folded them (evaluation, not tracing) */
    /* Held parameters (cn_net_hold_params): per node, where in keep its folded weights
     * and bias (keep_off[2i]) and its kernels' prep (keep_off[2i + 1]) lie, -1: none; made: they
     * hold what the parameters make now, since a whole folded inference pass made them (and
     * nothing has changed the parameters since: cn_net_params_changed, kernel.h) */
    int held, made;
    float *keep;
    int64_t *keep_off;
    /* per node, 1 where its output and output gradient may be stored as bf16 (cn_kernels.half:
     * its row's and every reader's; never the input's or the net's output), planned with the
     * backend; halved: the last forward stored them so (cn_backend.half_storage, not while
     * tracing or sharded). view, dview: those values as floats for the host (layer outputs and
     * gradients asked for), at the slabs' offsets, made on demand */
    int *half;
    int halved;
    float *view, *dview;
    unsigned char *aux;
    /* the batch as planned: one slice, or the shards of a sharded training batch, each run as a
     * batch of its own with its own aux, parameter gradients (slice 0's: grads) and dropout draws */
    int n_slices;
    int64_t *slice_at;  /* n_slices + 1: first rows, then the batch */
    int64_t *aux_off;   /* slice s, node i: aux + aux_off[s * (n + 1) + i] */
    float *slice_grads; /* (n_slices - 1) * n_trainable */
    cn_rng *slice_rng;
    float *buf_save;    /* a layer's buffers, kept while another shard's forward runs */
    double *stats;      /* the shards' statistics of one layer: mine, then all, then the merge */
    int trace;          /* check every layer for NaN/inf (cn_net_trace_nonfinite) */
    int no_input_grad;  /* backward skips the gradient of the net's input (training needs none) */
    int training;       /* mode of the last forward: backward runs in the same */
    const cn_backend *backend; /* NULL: cn_backend_default() */
    const cn_memory_ops *mem;  /* what the slabs below were allocated with (NULL: the context's allocator) */
    void *work;         /* the backend's scratch, the largest any layer needs */
    int profile;        /* time every kernel call (cn_net_profile) */
    double *prof_fwd, *prof_bwd; /* seconds per node */
    float *scratch;     /* the training step's one-hot targets and output gradient */
    int64_t scratch_n;
    int queued;         /* forward and backward return without waiting for the backend */
    int precision;      /* cn_precision the net runs in, where cn_net_set_device chose it
                         * (precision_set): the backend opened in it before every pass, since a
                         * device's precision is the process's */
    int precision_set;
    /* the backend's recordings of a step's layers (cn_replay_ops), two: steps in flight alternate
     * between two keys (their slots' scratch) */
    void *rec[2];       /* or NULL */
    uint64_t rec_key[2]; /* what each was recorded for */
    int rec_seen[2];    /* steps that have seen rec_key */
    uint64_t rec_used[2]; /* when each key was last asked for (the older one goes first) */
    uint64_t rec_clock;
    void (*rec_release)(void *rec);
} cn_exec;

struct cn_net {
    cn_allocator alloc; /* to free the net without the context that made it */
    char *file;
    char *text;
    int n;              /* nodes[0] is the input; nodes[n-1] the output */
    cn_node *nodes;
    cn_exec ex;
    cn_shard_plan shards; /* count 0: none (cn_net_set_shards); len owned */
};

void cn_exec_free(cn_ctx *ctx, cn_exec *ex);

/* Selects the kernels a net runs with (tests compare backends); replans at the next forward. */
void cn_net_set_backend(cn_net *net, const cn_backend *backend);
/* Parameter specs of node i (returns the count). */
int cn_node_params(const cn_net *net, int i, cn_param_spec *out);

/* Limits of the spec language. The parser refuses each as soon as it reaches it, so a hostile
 * spec (a fuzzer's input, a checkpoint's metadata) costs time and memory in proportion to its
 * length up to the limit, and every per-layer table stays a few MB. */
/* models/resnet18-cifar.cnn is 68 layers and a ResNet-152 about 520 (conv, batchnorm, relu,
 * add per block): 10,000 leaves a margin of 20 while nodes, names and plans stay small. */
#define CN_MAX_LAYERS 10000
/* bytes in one word (a layer name, a key=value, a number): far beyond any real one, and short
 * enough that messages quoting a word stay readable */
#define CN_MAX_WORD 4096
/* layers one concat or add may read: the executor's per-call arrays are this long */
#define CN_MAX_INPUTS (CN_MAX_KEYS * 8)
/* the longest valid statement: its type, each key once, 'from NAME', 'as NAME' and the inputs;
 * more words are refused before they are stored */
#define CN_MAX_WORDS (1 + CN_MAX_KEYS + 4 + CN_MAX_INPUTS)
/* bytes of a spec file cn_net_load_spec reads: CN_MAX_LAYERS statements of some tens of bytes
 * are under 1 MB, so 64 leaves room for comments and long names, while a data set or an image
 * named by mistake is refused before it is read into memory whole */
#define CN_MAX_SPEC_BYTES ((size_t)64 << 20)

/* spec.c: statements -> nodes in file order, inputs unresolved */
cn_status cn_spec_parse(cn_ctx *ctx, const char *text, size_t len, const char *file, cn_node **nodes, int *count);
void cn_nodes_free(cn_ctx *ctx, cn_node *nodes, int count);
/* graph.c: names, inputs, cycles and order; then shape inference */
cn_status cn_graph_build(cn_ctx *ctx, const char *file, cn_node *nodes, int count);

/* The inputs of node i as an array of node pointers (at most CN_MAX_INPUTS shown). */
void cn_node_inputs(const cn_net *net, int i, const cn_node **in, int cap);

#endif
