/* model_impl.h — the parsed network: nodes in topological order. */
#ifndef CN_MODEL_IMPL_H
#define CN_MODEL_IMPL_H

#include "../ops/op_impl.h"

struct cn_net {
    cn_allocator alloc; /* to free the net without the context that made it */
    char *file;
    char *text;
    int n;              /* nodes[0] is the input; nodes[n-1] the output */
    cn_node *nodes;
};

/* spec.c: statements -> nodes in file order, inputs unresolved */
cn_status cn_spec_parse(cn_ctx *ctx, const char *text, size_t len, const char *file, cn_node **nodes, int *count);
void cn_nodes_free(cn_ctx *ctx, cn_node *nodes, int count);
/* graph.c: names, inputs, cycles and order; then shape inference */
cn_status cn_graph_build(cn_ctx *ctx, const char *file, cn_node *nodes, int count);

/* The inputs of node i as an array of node pointers (at most CN_MAX_INPUTS shown). */
void cn_node_inputs(const cn_net *net, int i, const cn_node **in, int cap);

#endif
