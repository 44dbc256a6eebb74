/* backend.h — a backend supplies fast kernels for ops, as one table with a row per op of
 * ops.def; the executor runs the op's reference kernel where a row has none. The registry
 * (backend.c) is the one place that knows which backends exist. */
#ifndef CN_BACKEND_H
#define CN_BACKEND_H

#include "../ops/op_impl.h"

/* A backend's row for one op: every capability a column, NULL or 0 when it has none. */
typedef struct cn_kernels {
    cn_kernel_fn forward, backward; /* float kernels (NULL: the op's reference kernel) */
    /* scratch bytes node n needs for one call at this batch (NULL: none) */
    int64_t (*workspace)(const cn_node *n, const cn_node *const *in, int64_t batch);
    int fresh_dx;                   /* 1: backward honours cn_op_io.dx_fresh */
    /* a shard's statistics, as cn_op.stats computes them: given, the row's forward and backward
     * also honour cn_op_io.whole (a shard's call takes the whole batch's statistics); NULL: a
     * sharded batch runs the op's stats and reference kernels */
    void (*stats)(const cn_op_io *io, int backward, double *out);
    /* how the row runs node n at this batch, in a few words ("sgemm, padded rows"), a static
     * string; NULL: the backend's name says it */
    const char *(*describe)(const cn_node *n, const cn_node *const *in, int64_t batch);
    /* The op on relu(x), the relu fused into the op's pass (NULL: no fusion). The executor runs
     * them in place of a relu whose only reader is this node, and whose input only the relu
     * reads: x[0] is then the relu's input, forward writes what the two layers would (the
     * relu's output is never written), and backward stores (as if dx_fresh) the gradient of the
     * relu's input, the two layers' bits. */
    cn_kernel_fn forward_relu_in, backward_relu_in;
    /* The op, then relu, in one pass (NULL: no fusion): the executor runs it in place of the op
     * and of the relu that is the op's only reader, y being the relu's output. The op's own
     * output is then not written (computed again when asked for); the relu's backward reads
     * its output in place of its input (the same bits: y > 0 exactly where x > 0). */
    cn_kernel_fn forward_relu_out;
    /* With forward_relu_out: the op's backward from the relu's output gradient, masked where the
     * relu's output is 0 (io->y is the relu's output, io->dy its gradient), in place of the
     * relu's backward and the op's (the op's output gradient is then not written; computed
     * again when asked for). NULL: the two backward passes apart. */
    cn_kernel_fn backward_relu_out;
    /* 1: forward_relu_out (and backward_relu_out, where given) take a relu6 too (cn_op_io.relu6
     * says which: min(max(0, y), 6), its gradient masked where the output is 0 or 6) */
    int relu6_out;
    /* 1: at inference the executor may fold the batch norm after this node into its weights
     * (cn_op.channel_affine) and run the forward with them, writing the batch norm's output */
    int fold_bn;
    /* The op, a relu and a 2x2 stride-2 maxpool in one pass: forward writes the op's output and
     * the maxpool's (io->pool_y, pool_aux), the maxpool's bits; relu_pool says whether it can
     * for node n at this batch (NULL: never). The executor runs it where the relu is fused into
     * the maxpool (forward_relu_in) and is the op's one reader. */
    cn_kernel_fn forward_relu_pool;
    int (*relu_pool)(const cn_node *n, const cn_node *const *in, int64_t batch);
    /* What a training forward draws from io->rng, drawn by the host before the pass (in node
     * order, as the reference's forward would draw it) and handed to the backend without a
     * wait; forward then reads it (dropout's masks). NULL: forward draws for itself. With it
     * the pass has no host work, so a device can record it. */
    cn_kernel_fn draw;
    /* Nonzero: every kernel of the row reads and writes activations stored as bf16 in NHWC
     * order where cn_op_io.half says; 1: with its inputs and output all in one format, 2: in
     * any mix (it converts: conv, dense, flatten). The executor stores a node's output (and its
     * gradient) so where the backend asks for it (half_storage), the rows of the node and of
     * all its readers have this, and the rows that keep one format allow it; never the net's
     * input or output, which the host and the loss read. */
    int half;
    /* bytes of what the row's forward kernels make of node n's weights before they run (they
     * all honour cn_op_io.prep); kept between inference forwards while the parameters are held,
     * where the bits are those it makes afresh. NULL or 0: nothing to keep. Depends on the
     * image's shapes only, never the batch. */
    int64_t (*prep_bytes)(const cn_node *n, const cn_node *const *in);
} cn_kernels;

typedef struct cn_backend {
    const char *name;
    const cn_kernels *kernels;      /* CN_OP_COUNT rows, by cn_node.id */
    const cn_memory_ops *memory;    /* NULL: host memory from the context's allocator */
    const cn_step_kernels *step;    /* NULL: every step kernel on the host */
    /* makes the backend ready to run in a precision (cn_precision); fails with the reason
     * (no driver, no device, a precision it lacks). NULL: always ready, fp32 only. */
    cn_status (*open)(cn_ctx *ctx, int precision);
    /* 0 when node n, of an op the table has a row for, uses what that row's kernels do not
     * (dilated pooling, say): n then runs its op's reference kernel. NULL: every node. */
    int (*supports)(const cn_node *n);
    /* 1 when activations between layers are to be stored as bf16 now, where the rows allow
     * (cn_kernels.half): the precision the backend is open in. NULL: never. */
    int (*half_storage)(void);
} cn_backend;

/* The default backend: "cpu" (packed patches + our SGEMM, vectorised kernels). */
const cn_backend *cn_backend_default(void);
/* The reference kernels only (for tests). */
const cn_backend *cn_backend_reference(void);
/* Every backend compiled in (the reference included), for the op-table tests. */
int cn_backend_count(void);
const cn_backend *cn_backend_at(int i);
/* The backend of a device name ("cpu", "cuda"), opened in precision; fails with the reason it
 * cannot run here (built without it, no driver, no device). */
cn_status cn_backend_for_device(cn_ctx *ctx, const char *device, int precision, const cn_backend **out);

#endif
