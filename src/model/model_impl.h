/* model_impl.h — the parsed network: nodes in topological order. */
#ifndef CN_MODEL_IMPL_H
#define CN_MODEL_IMPL_H

#include "../backend/backend.h"
#include "../ops/op_impl.h"

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
    unsigned char *aux;
    int64_t *aux_off;
    int trace;          /* check every layer for NaN/inf (cn_net_trace_nonfinite) */
    int no_input_grad;  /* backward skips the gradient of the net's input (training needs none) */
    int training;       /* mode of the last forward: backward runs in the same */
    const cn_backend *backend; /* NULL: cn_backend_default() */
    void *work;         /* the backend's scratch, the largest any layer needs */
    int profile;        /* time every kernel call (cn_net_profile) */
    double *prof_fwd, *prof_bwd; /* seconds per node */
    float *scratch;     /* the training step's one-hot targets and output gradient */
    int64_t scratch_n;
} cn_exec;

struct cn_net {
    cn_allocator alloc; /* to free the net without the context that made it */
    char *file;
    char *text;
    int n;              /* nodes[0] is the input; nodes[n-1] the output */
    cn_node *nodes;
    cn_exec ex;
};

void cn_exec_free(cn_ctx *ctx, cn_exec *ex);
/* Selects the kernels a net runs with (tests compare backends); replans at the next forward. */
void cn_net_set_backend(cn_net *net, const cn_backend *backend);
/* Parameter specs of node i (returns the count). */
int cn_node_params(const cn_net *net, int i, cn_param_spec *out);

/* spec.c: statements -> nodes in file order, inputs unresolved */
cn_status cn_spec_parse(cn_ctx *ctx, const char *text, size_t len, const char *file, cn_node **nodes, int *count);
void cn_nodes_free(cn_ctx *ctx, cn_node *nodes, int count);
/* graph.c: names, inputs, cycles and order; then shape inference */
cn_status cn_graph_build(cn_ctx *ctx, const char *file, cn_node *nodes, int count);

/* The inputs of node i as an array of node pointers (at most CN_MAX_INPUTS shown). */
void cn_node_inputs(const cn_net *net, int i, const cn_node **in, int cap);

#endif
