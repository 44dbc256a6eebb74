/* cuda.c — the CUDA backend: its kernel table (a row for every op, so that no reference kernel
 * runs on the host between the GPU's), its memory (loader.c) and its step kernels: the loss
 * and its gradient, the gradient's sum of squares, the optimizer's update over the slab, the
 * accuracy count and batches from a data set copied to the GPU run there, their partial sums
 * read from page-locked memory.
 * Checked against the reference kernels by tests/test_backend.c where a GPU is present. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_impl.h"
#include "../../train/step_row.h"

/* fresh_dx 1 everywhere: the host never zeroes a gradient the GPU writes next. Fusions: a relu
 * after a conv or dense layer in its bias pass, after a batch norm in its normalising pass, a
 * relu before a maxpool in the pooling's passes */
static const cn_kernels kernels[CN_OP_COUNT] = {
    [CN_OP_CONV] = { .forward = cn_cuda_conv_forward, .backward = cn_cuda_conv_backward,
                     .workspace = cn_cuda_conv_workspace, .fresh_dx = 1, .forward_relu_out = cn_cuda_conv_forward_relu,
                     .describe = cn_cuda_conv_describe, .half = 2 },
    [CN_OP_DECONV] = { .forward = cn_cuda_deconv_forward, .backward = cn_cuda_deconv_backward,
                       .workspace = cn_cuda_conv_workspace, .fresh_dx = 1, .describe = cn_cuda_conv_describe, .half = 2 },
    [CN_OP_DENSE] = { .forward = cn_cuda_dense_forward, .backward = cn_cuda_dense_backward,
                      .workspace = cn_cuda_dense_workspace, .fresh_dx = 1, .describe = cn_cuda_dense_describe,
                      .forward_relu_out = cn_cuda_dense_forward_relu, .half = 2 },
    [CN_OP_MAXPOOL] = { .forward = cn_cuda_maxpool_forward, .backward = cn_cuda_maxpool_backward, .fresh_dx = 1,
                        .forward_relu_in = cn_cuda_maxpool_relu_forward, .backward_relu_in = cn_cuda_maxpool_relu_backward, .half = 1 },
    [CN_OP_MINPOOL] = { .forward = cn_cuda_minpool_forward, .backward = cn_cuda_minpool_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_AVGPOOL] = { .forward = cn_cuda_avgpool_forward, .backward = cn_cuda_avgpool_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_GLOBALAVGPOOL] = { .forward = cn_cuda_globalavgpool_forward, .backward = cn_cuda_globalavgpool_backward,
                              .fresh_dx = 1, .half = 1 },
    [CN_OP_GLOBALMAXPOOL] = { .forward = cn_cuda_globalmaxpool_forward, .backward = cn_cuda_globalmaxpool_backward,
                              .fresh_dx = 1, .half = 1 },
    [CN_OP_RELU] = { .forward = cn_cuda_relu_forward, .backward = cn_cuda_relu_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_LEAKYRELU] = { .forward = cn_cuda_leakyrelu_forward, .backward = cn_cuda_leakyrelu_backward,
                          .fresh_dx = 1, .half = 1 },
    [CN_OP_SIGMOID] = { .forward = cn_cuda_sigmoid_forward, .backward = cn_cuda_sigmoid_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_TANH] = { .forward = cn_cuda_tanh_forward, .backward = cn_cuda_tanh_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_RELU6] = { .forward = cn_cuda_relu6_forward, .backward = cn_cuda_relu6_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_HARDSIGMOID] = { .forward = cn_cuda_hardsigmoid_forward, .backward = cn_cuda_hardsigmoid_backward,
                            .fresh_dx = 1, .half = 1 },
    [CN_OP_HARDSWISH] = { .forward = cn_cuda_hardswish_forward, .backward = cn_cuda_hardswish_backward,
                          .fresh_dx = 1, .half = 1 },
    [CN_OP_SILU] = { .forward = cn_cuda_silu_forward, .backward = cn_cuda_silu_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_GELU] = { .forward = cn_cuda_gelu_forward, .backward = cn_cuda_gelu_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_ELU] = { .forward = cn_cuda_elu_forward, .backward = cn_cuda_elu_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_PRELU] = { .forward = cn_cuda_prelu_forward, .backward = cn_cuda_prelu_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_SCALE] = { .forward = cn_cuda_scale_forward, .backward = cn_cuda_scale_backward, .fresh_dx = 1, .half = 1 },
    /* softmax keeps floats in bf16 too (as autocast does): logits rounded to bf16 lose digits
     * before the exponentials (the op table's wrapped case went past 1e-2 with them) */
    [CN_OP_SOFTMAX] = { .forward = cn_cuda_softmax_forward, .backward = cn_cuda_softmax_backward, .fresh_dx = 1 },
    [CN_OP_BATCHNORM] = { .forward = cn_cuda_batchnorm_forward, .backward = cn_cuda_batchnorm_backward,
                          .workspace = cn_cuda_batchnorm_workspace, .fresh_dx = 1,
                          .forward_relu_out = cn_cuda_batchnorm_forward_relu,
                          .backward_relu_out = cn_cuda_batchnorm_backward_relu, .stats = cn_cuda_batchnorm_stats, .half = 1 },
    [CN_OP_DROPOUT] = { .forward = cn_cuda_dropout_forward, .backward = cn_cuda_dropout_backward, .fresh_dx = 1,
                        .draw = cn_cuda_dropout_draw, .half = 1 },
    /* flatten: the values in NCHW's order, from a map stored in either layout */
    [CN_OP_FLATTEN] = { .forward = cn_cuda_flatten_forward, .backward = cn_cuda_flatten_backward, .fresh_dx = 1,
                        .half = 2 },
    [CN_OP_CONCAT] = { .forward = cn_cuda_concat_forward, .backward = cn_cuda_concat_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_ADD] = { .forward = cn_cuda_add_forward, .backward = cn_cuda_add_backward, .fresh_dx = 1, .half = 1,
                    .forward_relu_out = cn_cuda_add_forward_relu, .backward_relu_out = cn_cuda_add_backward_relu },
    [CN_OP_MUL] = { .forward = cn_cuda_mul_forward, .backward = cn_cuda_mul_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_PAD] = { .forward = cn_cuda_pad_forward, .backward = cn_cuda_pad_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_CROP] = { .forward = cn_cuda_crop_forward, .backward = cn_cuda_crop_backward, .fresh_dx = 1, .half = 1 },
    /* floats in NCHW: a bf16 net's values are widened around them */
    [CN_OP_SHUFFLE] = { .forward = cn_cuda_shuffle_forward, .backward = cn_cuda_shuffle_backward, .fresh_dx = 1 },
    [CN_OP_CHANNELS] = { .forward = cn_cuda_channels_forward, .backward = cn_cuda_channels_backward },
    [CN_OP_UPSAMPLE] = { .forward = cn_cuda_upsample_forward, .backward = cn_cuda_upsample_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_ADAPTIVEAVGPOOL] = { .forward = cn_cuda_adaptiveavgpool_forward,
                                .backward = cn_cuda_adaptiveavgpool_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_LAYERNORM] = { .forward = cn_cuda_norm_forward, .backward = cn_cuda_norm_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_GROUPNORM] = { .forward = cn_cuda_norm_forward, .backward = cn_cuda_norm_backward, .fresh_dx = 1, .half = 1 },
    [CN_OP_INSTANCENORM] = { .forward = cn_cuda_norm_forward, .backward = cn_cuda_norm_backward, .fresh_dx = 1, .half = 1 },
};

/* ---- the step's sums: partial sums (a fixed number of blocks, so that the order depends on
 * the size alone) written by the GPU into page-locked memory, their totals on the host in
 * block order ---- */

static double sum_parts(const double *part, int blocks)
{
    double sum = 0;
    for (int b = 0; b < blocks; b++) sum += part[b];
    return sum;
}

/* the slot whose sums are read at once (never one a step in flight waits in) */
static cn_cu_pinned *now_slot(void) { return &cn_cu.slots[CN_CU_SYNC_SLOT]; }

static void launch_sum_squares(const float *g, int64_t n, double *part)
{
    void *args[] = { &g, &n, &part };
    cn_cu_launch_blocks(CN_CU_K_sum_squares, CN_CU_NORM_BLOCKS, args);
}

static void queue_sum_squares(const float *g, int64_t n)
{
    if (!cn_cuda_ready()) launch_sum_squares(g, n, cn_cu.pinned->norm);
}

/* NaN when the GPU failed (the step stops on it) */
static double sum_squares(const float *g, int64_t n)
{
    if (cn_cuda_ready()) return NAN;
    launch_sum_squares(g, n, now_slot()->norm);
    return cn_cu_sync() ? NAN : sum_parts(now_slot()->norm, CN_CU_NORM_BLOCKS);
}

/* The loss of the batch's rows on the GPU (step_row.h, the host's partition of rows), summed
 * into the partial sums, and its gradient there divided by count; what the host's code would
 * refuse leaves NaN in the sums instead. */
static void queue_loss_over(cn_loss_kind kind, const float *target, const float *pred, int64_t rows, int64_t cols,
                            double count, double smoothing, float *dpred, double *part)
{
    if (cn_cuda_ready()) return;
    if (rows < 1 || cols < 1 || (unsigned)kind > CN_LOSS_DICE || !(smoothing >= 0 && smoothing < 1) ||
        (smoothing > 0 && kind != CN_LOSS_CE_LOGITS)) {
        if (cn_cu_sync()) return; /* no kernel writes them now */
        for (int b = 0; b < CN_CU_LOSS_BLOCKS; b++) part[b] = b ? 0 : NAN;
        return;
    }
    double scale = 1.0 / count;
    int k = (int)kind;
    void *args[] = { &k, &target, &pred, &rows, &cols, &smoothing, &scale, &dpred, &part };
    cn_cu_launch_blocks(CN_CU_K_loss_rows, CN_CU_LOSS_BLOCKS, args);
}

static double count_of(cn_loss_kind kind, cn_reduction reduction, int64_t rows, int64_t cols)
{
    return reduction == CN_REDUCE_SUM ? 1.0 : cn_loss_per_sample(kind) ? (double)rows : (double)rows * (double)cols;
}

static void queue_loss(cn_loss_kind kind, const float *target, const float *pred, int64_t rows, int64_t cols,
                       double smoothing, float *dpred)
{
    if (cn_cuda_ready()) return;
    queue_loss_over(kind, target, pred, rows, cols, count_of(kind, CN_REDUCE_MEAN, rows, cols), smoothing, dpred,
                    cn_cu.pinned->loss);
}

/* slot s's sums: the loss's, the gradient's sum of squares and the count */
static void read_sums(int s, double *loss_sum, double *sum_sq, int64_t *correct)
{
    const cn_cu_pinned *p = &cn_cu.slots[s];
    *loss_sum = sum_parts(p->loss, CN_CU_LOSS_BLOCKS);
    *sum_sq = sum_parts(p->norm, CN_CU_NORM_BLOCKS);
    *correct = (int64_t)sum_parts(p->correct, CN_CU_LOSS_BLOCKS);
}

/* the queued sums of the current slot, once the GPU is done */
static int read_queued(double *loss_sum, double *sum_sq, int64_t *correct)
{
    *loss_sum = *sum_sq = NAN, *correct = -1;
    if (cn_cu_sync()) return -1;
    read_sums(cn_cu.slot, loss_sum, sum_sq, correct);
    return 0;
}

/* ---- steps in flight ---- */

static void select_slot(int s)
{
    if (cn_cuda_ready()) return;
    if (s < 0 || s >= CN_CU_SLOTS) s = CN_CU_SYNC_SLOT;
    cn_cu.slot = s, cn_cu.pinned = &cn_cu.slots[s];
}

static const double *queue_gate(double clip_norm)
{
    if (cn_cuda_ready()) return NULL;
    const double *loss = cn_cu.pinned->loss, *norm = cn_cu.pinned->norm;
    double *gate = cn_cu.gate + 2 * (cn_cu.slot & 1);
    int *halt = cn_cu.halt;
    void *args[] = { &loss, &norm, &clip_norm, &gate, &halt };
    cn_cu_launch_blocks(CN_CU_K_step_gate, 1, args);
    return gate;
}

static void mark(int s)
{
    if (!cn_cuda_ready()) cn_cu_ok(cn_cu.cu.cuEventRecord(cn_cu.marks[s & 1], cn_cu.stream), "cuEventRecord");
}

static int read_slot(int s, double *loss_sum, double *sum_sq, int64_t *correct)
{
    *loss_sum = *sum_sq = NAN, *correct = -1;
    if (cn_cuda_ready() || cn_cu_ok(cn_cu.cu.cuEventSynchronize(cn_cu.marks[s & 1]), "cuEventSynchronize")) return -1;
    read_sums(s & 1, loss_sum, sum_sq, correct);
    return 0;
}

static void clear_halt(void)
{
    if (!cn_cuda_ready())
        cn_cu_ok(cn_cu.cu.cuMemsetD8Async((CUdeviceptr)(uintptr_t)cn_cu.halt, 0, sizeof(int), cn_cu.stream), "cuMemsetD8Async");
}

static cn_status loss_grad(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                           int64_t cols, cn_reduction reduction, double smoothing, double *loss, float *dpred)
{
    (void)ctx;
    double count = count_of(kind, reduction, rows, cols);
    if (cn_cuda_ready()) return CN_OK; /* kept for the step's check */
    queue_loss_over(kind, target, pred, rows, cols, count, smoothing, dpred, now_slot()->loss);
    *loss = cn_cu_sync() ? NAN : sum_parts(now_slot()->loss, CN_CU_LOSS_BLOCKS) / count;
    return CN_OK; /* a failure of the GPU is kept for the step's check */
}

/* n ints of page-locked memory (a buffer kept for the next call), once the GPU is done with the
 * last ones; NULL when the GPU failed or there is no memory (kept for the step's check) */
static int32_t *pinned_ints(int64_t n)
{
    if (cn_cu_sync()) return NULL;
    if (n > cn_cu.ints_n) {
        void *p = NULL;
        if (cn_cu.ints) cn_cu.cu.cuMemFreeHost(cn_cu.ints);
        cn_cu.ints = NULL, cn_cu.ints_n = 0;
        if (cn_cu_ok(cn_cu.cu.cuMemAllocHost(&p, (size_t)n * sizeof(int32_t)), "cuMemAllocHost (a batch's labels)")) return NULL;
        cn_cu.ints = p, cn_cu.ints_n = n;
    }
    return cn_cu.ints;
}

/* queues the count's partial sums, the labels given as ints (lab) or as one-hot rows */
static void launch_count(const float *y, const int32_t *lab, const float *onehot, int64_t rows, int64_t cols,
                         double *part)
{
    void *args[] = { &y, &lab, &onehot, &rows, &cols, &part };
    cn_cu_launch_blocks(CN_CU_K_count_correct, CN_CU_LOSS_BLOCKS, args);
}

/* the labels through page-locked memory, the rows on the GPU; -1 when the GPU failed or the
 * labels found no memory (the step's check reports it) */
static int64_t count_correct(const float *y, const int32_t *labels, int64_t rows, int64_t cols)
{
    int32_t *lab = cn_cuda_ready() ? NULL : pinned_ints(rows);
    if (!lab) return -1;
    memcpy(lab, labels, (size_t)rows * sizeof *labels);
    launch_count(y, lab, NULL, rows, cols, now_slot()->correct);
    return cn_cu_sync() ? -1 : (int64_t)sum_parts(now_slot()->correct, CN_CU_LOSS_BLOCKS);
}

/* the step's count, queued with its pass: the labels are the one-hot rows already on the GPU */
static void queue_count(const float *y, const float *onehot, int64_t rows, int64_t cols)
{
    if (!cn_cuda_ready()) launch_count(y, NULL, onehot, rows, cols, cn_cu.pinned->correct);
}

/* each row's best column on the GPU, read through page-locked memory; -1s when the GPU failed */
static void best_rows(const float *y, int64_t rows, int64_t cols, int32_t *best)
{
    int32_t *b = cn_cuda_ready() ? NULL : pinned_ints(rows);
    void *args[] = { &y, &rows, &cols, &b };
    if (b) cn_cu_launch(CN_CU_K_best_rows, rows, args);
    if (!b || cn_cu_sync()) {
        for (int64_t r = 0; r < rows; r++) best[r] = -1;
        return;
    }
    memcpy(best, b, (size_t)rows * sizeof *best);
}

/* the rule of optim.c's update_range, one kernel over the run of values */
static void update(cn_optim_kind kind, const cn_update_args *a, float *w, const float *g, float *s1, float *s2, int64_t n)
{
    int k = kind == CN_OPTIM_SGD ? CN_CU_SGD
            : kind == CN_OPTIM_MOMENTUM ? CN_CU_MOMENTUM
            : kind == CN_OPTIM_NESTEROV ? CN_CU_NESTEROV
            : kind == CN_OPTIM_ADAM ? CN_CU_ADAM
                                    : CN_CU_ADAMW;
    cn_cu_update u = { a->clip, a->lr, a->l1, a->decay, a->momentum, a->beta1, a->beta2, a->eps, a->lr_bc1, a->sqrt_bc2 };
    const double *gate = a->gate;
    void *args[] = { &k, &u, &w, &g, &s1, &s2, &n, &gate };
    cn_cu_launch(CN_CU_K_update, n, args);
}

/* the draws copied to the GPU (a buffer kept for the next batch), then one thread per value */
static void make_batch(const cn_batch_source *src, const cn_batch_draw *draws, int64_t n, float *x)
{
    if (cn_cuda_ready() || n <= 0) return;
    if (n > cn_cu.draws_n) {
        CUdeviceptr p;
        cn_cu_sync(); /* the old buffer may still be read */
        if (cn_cu.draws) cn_cu.cu.cuMemFree((CUdeviceptr)(uintptr_t)cn_cu.draws);
        cn_cu.draws = NULL, cn_cu.draws_n = 0;
        if (cn_cu_ok(cn_cu.cu.cuMemAllocManaged(&p, (size_t)n * sizeof *draws, CU_MEM_ATTACH_GLOBAL), "cuMemAllocManaged (a batch's draws)"))
            return;
        cn_cu.draws = (cn_batch_draw *)(uintptr_t)p, cn_cu.draws_n = n;
    }
    if (cn_cu_ok(cn_cu.cu.cuMemcpyAsync((CUdeviceptr)(uintptr_t)cn_cu.draws, (CUdeviceptr)(uintptr_t)draws,
                                        (size_t)n * sizeof *draws, cn_cu.stream),
                 "cuMemcpyAsync (a batch's draws)"))
        return;
    cn_cu_batch b = { src->pixels, src->images, src->c, src->h, src->w, src->pad, { 0 }, { 0 } };
    memcpy(b.mean, src->mean, sizeof b.mean), memcpy(b.std, src->std, sizeof b.std);
    cn_batch_draw *d = cn_cu.draws;
    void *args[] = { &b, &d, &n, &x };
    cn_cu_launch(CN_CU_K_make_batch, n * src->c * src->h * src->w, args);
}

/* ---- recordings: CUDA graphs of the stream's work ---- */

static int record_begin(void)
{
    if (cn_cuda_ready()) return -1;
    /* relaxed: cuDNN and cuBLAS may make calls that the stricter modes refuse while recording */
    return cn_cu_ok(cn_cu.cu.cuStreamBeginCapture(cn_cu.stream, CU_STREAM_CAPTURE_MODE_RELAXED), "cuStreamBeginCapture");
}

/* the graph made executable; NULL when anything failed while recording (the failure dropped:
 * the step runs its work again unrecorded, where a real failure recurs and is reported;
 * CN_CUDA_VERBOSE=1 prints why the recording failed) */
static void *record_end(void)
{
    CUgraph g = NULL;
    CUgraphExec e = NULL;
    CUresult r = cn_cu.cu.cuStreamEndCapture(cn_cu.stream, &g), ri = CUDA_SUCCESS;
    const char *kept = cn_cuda_take_error(), *verbose = getenv("CN_CUDA_VERBOSE");
    int failed = kept != NULL || r != CUDA_SUCCESS || !g;
    if (!failed) failed = (ri = cn_cu.cu.cuGraphInstantiate(&e, g, 0)) != CUDA_SUCCESS;
    if (g) cn_cu.cu.cuGraphDestroy(g);
    if (failed && verbose && !strcmp(verbose, "1")) {
        const char *name = "?";
        cn_cu.cu.cuGetErrorName(r != CUDA_SUCCESS ? r : ri, &name);
        fprintf(stderr, "convnet: the CUDA graph of a step was not recorded (%s%s%s); its steps run as they come\n",
                kept ? kept : "", kept ? "; " : "", r != CUDA_SUCCESS || ri != CUDA_SUCCESS ? name : "no graph");
    }
    return failed ? NULL : e;
}

static int replay(void *rec)
{
    if (cn_cuda_ready()) return -1;
    return cn_cu_ok(cn_cu.cu.cuGraphLaunch((CUgraphExec)rec, cn_cu.stream), "cuGraphLaunch");
}

static void release(void *rec)
{
    if (rec && !cn_cuda_ready()) cn_cu_sync(), cn_cu.cu.cuGraphExecDestroy((CUgraphExec)rec);
}

static const cn_replay_ops replay_ops = { record_begin, record_end, replay, release };

const cn_step_kernels cn_cuda_step = { loss_grad,   sum_squares, update,    count_correct, best_rows,
                                       make_batch,  queue_loss,  queue_count, queue_sum_squares, read_queued,
                                       &replay_ops, select_slot, queue_gate, mark,      read_slot,  clear_halt };

/* what the rows' kernels do not do yet: a mul of more than CN_CU_MUL_MAX inputs (such a node
 * runs its reference kernel on the host, in the same managed memory) */
static int cuda_supports(const cn_node *n) { return n->id != CN_OP_MUL || n->n_in <= CN_CU_MUL_MAX; }

/* --precision bf16 stores the activations between layers as bf16 where the rows allow (their
 * .half); CN_BF16_STORAGE=0 keeps them floats, each product staging its operands alone (to
 * compare the two in one run) */
int cn_cuda_half_storage(void)
{
    const char *keep = getenv("CN_BF16_STORAGE");
    return cn_cu.precision == CN_PRECISION_BF16 && !(keep && !strcmp(keep, "0"));
}

const cn_backend cn_backend_cuda = { "cuda", kernels, &cn_cuda_memory, &cn_cuda_step, cn_cuda_open, cuda_supports,
                                     cn_cuda_half_storage };
