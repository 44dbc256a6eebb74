/* cuda.c — the CUDA backend: its kernel table (a row for every op, so that no reference kernel
 * runs on the host between the GPU's), its memory (loader.c) and its step kernels: the
 * gradient's sum of squares and the optimizer's update over the slab run on the GPU; the loss
 * and the accuracy count (a batch of outputs) stay on the host's reference code for now.
 * Checked against the reference kernels by tests/test_backend.c where a GPU is present. */
#include <math.h>

#include "cuda_impl.h"

/* fresh_dx 1 everywhere: the host never zeroes a gradient the GPU writes next */
static const cn_kernels kernels[CN_OP_COUNT] = {
    [CN_OP_CONV] = { .forward = cn_cuda_conv_forward, .backward = cn_cuda_conv_backward,
                     .workspace = cn_cuda_conv_workspace, .fresh_dx = 1 },
    [CN_OP_DENSE] = { .forward = cn_cuda_dense_forward, .backward = cn_cuda_dense_backward, .fresh_dx = 1 },
    [CN_OP_MAXPOOL] = { .forward = cn_cuda_maxpool_forward, .backward = cn_cuda_maxpool_backward, .fresh_dx = 1 },
    [CN_OP_MINPOOL] = { .forward = cn_cuda_minpool_forward, .backward = cn_cuda_minpool_backward, .fresh_dx = 1 },
    [CN_OP_AVGPOOL] = { .forward = cn_cuda_avgpool_forward, .backward = cn_cuda_avgpool_backward, .fresh_dx = 1 },
    [CN_OP_GLOBALAVGPOOL] = { .forward = cn_cuda_globalavgpool_forward, .backward = cn_cuda_globalavgpool_backward,
                              .fresh_dx = 1 },
    [CN_OP_RELU] = { .forward = cn_cuda_relu_forward, .backward = cn_cuda_relu_backward, .fresh_dx = 1 },
    [CN_OP_LEAKYRELU] = { .forward = cn_cuda_leakyrelu_forward, .backward = cn_cuda_leakyrelu_backward,
                          .fresh_dx = 1 },
    [CN_OP_SIGMOID] = { .forward = cn_cuda_sigmoid_forward, .backward = cn_cuda_sigmoid_backward, .fresh_dx = 1 },
    [CN_OP_TANH] = { .forward = cn_cuda_tanh_forward, .backward = cn_cuda_tanh_backward, .fresh_dx = 1 },
    [CN_OP_SOFTMAX] = { .forward = cn_cuda_softmax_forward, .backward = cn_cuda_softmax_backward, .fresh_dx = 1 },
    [CN_OP_BATCHNORM] = { .forward = cn_cuda_batchnorm_forward, .backward = cn_cuda_batchnorm_backward,
                          .fresh_dx = 1 },
    [CN_OP_DROPOUT] = { .forward = cn_cuda_dropout_forward, .backward = cn_cuda_dropout_backward, .fresh_dx = 1 },
    /* flatten keeps the values in order: a copy forward, dx (+)= dy backward (an add of one input) */
    [CN_OP_FLATTEN] = { .forward = cn_cuda_copy_forward, .backward = cn_cuda_add_backward, .fresh_dx = 1 },
    [CN_OP_CONCAT] = { .forward = cn_cuda_concat_forward, .backward = cn_cuda_concat_backward, .fresh_dx = 1 },
    [CN_OP_ADD] = { .forward = cn_cuda_add_forward, .backward = cn_cuda_add_backward, .fresh_dx = 1 },
};

/* the partial sums on the GPU (a fixed number of blocks: the order depends on n only), their
 * total on the host in block order; NaN when the GPU failed (the step stops on it) */
static double sum_squares(const float *g, int64_t n)
{
    double *part = cn_cu.norm_part, sum = 0;
    if (cn_cuda_ready()) return NAN;
    void *args[] = { &g, &n, &part };
    cn_cu_launch_blocks(CN_CU_K_sum_squares, CN_CU_NORM_BLOCKS, args);
    if (cn_cu_sync()) return NAN;
    for (int b = 0; b < CN_CU_NORM_BLOCKS; b++) sum += part[b];
    return sum;
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
    void *args[] = { &k, &u, &w, &g, &s1, &s2, &n };
    cn_cu_launch(CN_CU_K_update, n, args);
}

const cn_step_kernels cn_cuda_step = { NULL, sum_squares, update, NULL };

/* what the rows' kernels do not do yet: dilated max/min pooling, average pooling that leaves
 * padding out of its divisor, batch norm without its scale and shift (those nodes run their
 * reference kernels on the host, in the same managed memory) */
static int cuda_supports(const cn_node *n)
{
    switch (n->id) {
    case CN_OP_MAXPOOL:
    case CN_OP_MINPOOL: return n->a.dilation.h == 1 && n->a.dilation.w == 1;
    case CN_OP_AVGPOOL: return n->a.count_pad;
    case CN_OP_BATCHNORM: return n->a.affine;
    default: return 1;
    }
}

const cn_backend cn_backend_cuda = { "cuda", kernels, &cn_cuda_memory, &cn_cuda_step, cn_cuda_open, cuda_supports };
