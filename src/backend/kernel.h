/* kernel.h — the kernel interface: what every forward and backward kernel receives, the
 * reference kernels of src/ops and the backends' alike. A kernel reads its node's geometry
 * (n->out, n->a, its inputs' ->out) and works on the pointers of one cn_op_io; it allocates
 * nothing and keeps nothing between calls but what forward leaves in aux, and what it makes of
 * the weights in prep while the parameters are held. */
#ifndef CN_KERNEL_H
#define CN_KERNEL_H

#include "../core/core_impl.h"
#include "../data/batch_draw.h"

typedef struct cn_node cn_node;

typedef struct cn_op_io {
    const cn_node *n;
    const cn_node *const *in;  /* input nodes (their ->out are the input shapes) */
    int64_t batch;
    const void *const *x;      /* x[i]: input i (N, C_i, H_i, W_i) */
    void *y;                   /* output (N, C, OH, OW); forward overwrites it */
    const void *w;             /* this layer's trainable tensors, back to back in spec order */
    void *dw;                  /* their gradients; backward accumulates (+=) */
    void *buf;                 /* non-trainable tensors (running statistics); forward may update */
    void *aux;                 /* what forward keeps for backward (argmax, masks, batch statistics) */
    const void *dy;            /* gradient of the output */
    void *const *dx;           /* dx[i] (+=); an entry is NULL when that input needs no gradient */
    int training;
    cn_rng *rng;               /* dropout's draws */
    void *work;                /* the backend's scratch for this call (backend->workspace bytes) */
    /* bit j: dx[j] holds no gradient yet, and the kernel stores dx[j] = 0 + gradient instead of
     * adding (the same bits as adding to zeros, without zeroing first). Set only for the kernels
     * whose backend's fresh_dx says they honour it. */
    unsigned dx_fresh;
    /* the whole batch's statistics (cn_op.stats_merge's) when this call runs one shard of it;
     * NULL: the call's own batch is the whole */
    const double *whole;
    /* set where the executor runs a relu and a 2x2 stride-2 maxpool after this node in its pass
     * (cn_kernels.forward_relu_pool): the maxpool's output and argmax (its aux) */
    void *pool_y, *pool_aux;
    /* which of the call's activations are stored as bf16 in NHWC order (cn_kernels.half,
     * --precision bf16), in the first half of the floats' room: bit j for x[j] and dx[j],
     * CN_HALF_Y for y and dy, CN_HALF_POOL for pool_y. 0: all floats in NCHW (always, on a row
     * without .half). */
    unsigned half;
    /* forward_relu_out, backward_relu_out: the activation after the op is relu6, not relu
     * (cn_kernels.relu6_out) */
    int relu6;
    /* An inference forward while the parameters are held (cn_net_hold_params): room of
     * cn_kernels.prep_bytes kept for this node between calls, for what the kernel makes of io->w
     * (the CPU's Winograd transforms); prep_made: 1 when an earlier call made it of the same
     * weights (then w is not read again), 0 when this call makes it first. NULL: none (the
     * kernel makes what it needs in work, as always). */
    void *prep;
    int prep_made;
} cn_op_io;

#define CN_HALF_Y (1u << 31)
#define CN_HALF_POOL (1u << 30)
#define CN_HALF_INPUTS 30 /* inputs with a bit of their own; a wider node keeps floats */

typedef void (*cn_kernel_fn)(const cn_op_io *io);

/* Where a backend's tensors live: the executor allocates the parameter, gradient, activation,
 * aux and workspace slabs and the step's scratch through it. The memory must be addressable from
 * the host too (a device backend: managed memory), so that the public functions that return
 * pointers (cn_net_params, cn_net_output, cn_net_tensor, ...) and the host's reference code work
 * on every backend. */
typedef struct cn_memory_ops {
    void *(*alloc)(size_t bytes);   /* zeroed; NULL when it cannot */
    void (*release)(void *p);
    void (*sync)(void);             /* wait for the backend's queued work before the host reads; NULL: none */
    /* the first failure of the backend's work (kernels return nothing) since the last call, then
     * forgotten; NULL: none. NULL function: the backend cannot fail. */
    const char *(*error)(void);
    /* p[0..bytes) = 0 by the backend, without the memory travelling to the host; queued in
     * order with the backend's kernels (sync before the host reads it). NULL: the host's memset */
    void (*zero)(void *p, size_t bytes);
    /* dst = src, each in the host's memory or the backend's, by the backend (neither travels
     * through the host's page tables); queued in order with its kernels, src free to reuse on
     * return. NULL: memcpy */
    void (*copy)(void *dst, const void *src, size_t bytes);
} cn_memory_ops;

/* The memory net's slabs live in (NULL: the host's, from the context's allocator), for the
 * step's own state (the optimizer's), and a check of the backend's work: waits for it and
 * fails with its first failure (src/model/exec.c). */
const cn_memory_ops *cn_net_slab_memory(const cn_net *net);
cn_status cn_net_check_backend(cn_ctx *ctx, cn_net *net);

/* ---- the training step's other kernels ----------------------------------------------------------
 * A step also computes the loss and its gradient, the gradient's norm, the optimizer's update
 * and the accuracy count; a backend may run them where its tensors are. A NULL column: the host
 * code of src/train, which is the reference. */

/* what one optimizer step applies to every value (src/train/optim.c fills it) */
typedef struct cn_update_args {
    double clip, lr, l1, decay, momentum, beta1, beta2, eps;
    double lr_bc1, sqrt_bc2; /* Adam: lr / (1 - beta1^t), sqrt(1 - beta2^t) */
    /* a step in flight's gate on the device (cn_step_kernels.queue_gate), which gives the clip
     * factor and whether to update at all; NULL: clip as given */
    const double *gate;
} cn_update_args;

/* a data set in the backend's memory, for make_batch: its IDX bytes or its floats (the other
 * NULL), the image size, the crop's padding and the channels' normalisation (c <= 4) */
typedef struct cn_batch_source {
    const unsigned char *pixels;
    const float *images;
    int64_t c, h, w, pad;
    float mean[4], std[4]; /* std 0 taken as 1 */
} cn_batch_source;

typedef struct cn_step_kernels {
    /* the loss of pred against target and its gradient, as cn_loss_grad; *loss NaN (where
     * cn_loss_grad may fail, and must where a value of pred or of the gradient is not finite)
     * sends the step to the host's code for its checks and message */
    cn_status (*loss_grad)(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                           int64_t cols, cn_reduction reduction, double label_smoothing, double *loss, float *dpred);
    /* sum of g[i]^2 over n values, in an order fixed by n */
    double (*sum_squares)(const float *g, int64_t n);
    /* one update of n values by the rule of kind; s1, s2: its state (NULL when it keeps none) */
    void (*update)(cn_optim_kind kind, const cn_update_args *a, float *w, const float *g, float *s1, float *s2,
                   int64_t n);
    /* the rows of y (rows x cols) whose largest value (the first of equals) is at their label */
    int64_t (*count_correct)(const float *y, const int32_t *labels, int64_t rows, int64_t cols);
    /* best[r] (host memory) = the column of row r's largest value, the first of equals */
    void (*best_rows)(const float *y, int64_t rows, int64_t cols, int32_t *best);
    /* a batch made on the backend from a data set copied into its memory: x (n x c x h x w, the
     * backend's memory) = what cn_make_batch_rows makes of the same draws (host memory) */
    void (*make_batch)(const cn_batch_source *src, const cn_batch_draw *draws, int64_t n, float *x);
    /* A step without a wait in it (all four given, or none): queue_loss queues loss_grad's work
     * (the gradient of the mean), queue_count count_correct's with the labels as the one-hot
     * rows, queue_sum_squares sum_squares', and read_queued waits for them and reads the rows'
     * summed loss (the step divides it by the mean's count; loss_grad's NaN rule), the sum of
     * squares and the count; -1: the backend failed, its error() says why */
    void (*queue_loss)(cn_loss_kind kind, const float *target, const float *pred, int64_t rows, int64_t cols,
                       double label_smoothing, float *dpred);
    void (*queue_count)(const float *pred, const float *onehot, int64_t rows, int64_t cols);
    void (*queue_sum_squares)(const float *g, int64_t n);
    int (*read_queued)(double *loss, double *sum_squares, int64_t *correct);
    const struct cn_replay_ops *replay; /* NULL: none */
    /* Steps in flight (all given, or none): the host queues step k + 1 before it reads step k.
     * select_slot(s): the queued sums from now on go to slot s (0 or 1; -1: the slot of a step
     * read at once, which no step in flight uses), read_queued reads it.
     * queue_gate(clip_norm): after the pass, on the device, the clip factor of the gradient's
     * norm and whether the loss and the norm are finite; returns the gate an update reads
     * (cn_update_args.gate). A step that was not finite stops the device: its update and those
     * after it leave every value as it is, and so do batch norms' running statistics, until
     * clear_halt. mark(s): the work queued so far is slot s's; read_slot(s, ...) waits for that
     * mark only (later work may still run) and reads slot s as read_queued does. */
    void (*select_slot)(int slot);
    const double *(*queue_gate)(double clip_norm);
    void (*mark)(int slot);
    int (*read_slot)(int slot, double *loss, double *sum_squares, int64_t *correct);
    void (*clear_halt)(void);
} cn_step_kernels;

/* A recording of queued work (CUDA graphs): the part of a training step between its input and
 * its gradient's sum of squares queues the same work on the same memory every step once the
 * batch is fixed, so a backend may record it once and replay it after. */
typedef struct cn_replay_ops {
    int (*begin)(void);       /* what is queued from now on is recorded, not run; 0, or -1 */
    void *(*end)(void);       /* the recording (nothing of it ran); NULL when it failed */
    int (*replay)(void *rec); /* queues the recorded work once more; 0, or -1 (error() says why) */
    void (*release)(void *rec);
} cn_replay_ops;

/* The step kernels of the backend net runs on (src/model/exec.c); never NULL. */
const cn_step_kernels *cn_net_step_kernels(const cn_net *net);
/* dst = src by the net's memory (cn_memory_ops.copy), or memcpy */
void cn_net_copy(const cn_net *net, void *dst, const void *src, size_t bytes);
/* The step's device path (src/train/step.c) through the executor: a forward pass in two halves
 * (the batch planned and its input copied; then the layers), the passes returning without
 * waiting for the backend while queued is on (its failures reported at the next check), whether
 * the layers between input and loss can be recorded (every node on the backend's own rows, no
 * host work in them: no dropout draws, no zeroing on the host, no shards, no tracing or
 * profiling), and the net's recording with the key it was made for and how many steps have
 * seen that key (the executor drops it when the net is planned again, moves, or changes whether
 * it computes its input's gradient). */
cn_status cn_net_forward_input(cn_ctx *ctx, cn_net *net, const float *x, int64_t batch, int training);
cn_status cn_net_forward_layers(cn_ctx *ctx, cn_net *net);
void cn_net_set_queued(cn_net *net, int on);
int cn_net_recordable(const cn_net *net);
void *cn_net_recording(const cn_net *net, uint64_t key, int *seen);
void cn_net_keep_recording(cn_net *net, void *rec, uint64_t key, int seen);
int cn_net_has_recording(const cn_net *net);
/* The training step's scratch (one-hot targets and the output gradient): 2 * cells floats in
 * the backend's memory, kept for the next step (src/model/exec.c). NULL when it cannot be
 * allocated (the context says why). */
float *cn_net_step_scratch(cn_ctx *ctx, cn_net *net, int64_t cells);
/* The library changed net's parameters (an optimizer's step, a checkpoint's values): what held
 * parameters made of them (cn_net_hold_params) is made again at the next inference forward. */
void cn_net_params_changed(cn_net *net);

#endif
