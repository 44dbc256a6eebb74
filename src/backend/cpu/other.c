/* other.c — which fast kernel the CPU backend runs for each op other than conv and dense: one
 * line per op, the kernels in one file per op family (other_impl.h). An op not listed runs its
 * reference kernel. */
#include "other_impl.h"

typedef struct {
    cn_op_id op;
    cn_kernel_fn forward, backward;
} op_kernels;

static const op_kernels table[] = {
    { CN_OP_MAXPOOL, cn_cpu_maxpool_forward, cn_cpu_argpool_backward },
    { CN_OP_MINPOOL, cn_cpu_minpool_forward, cn_cpu_argpool_backward },
    { CN_OP_AVGPOOL, cn_cpu_avgpool_forward, cn_cpu_avgpool_backward },
    { CN_OP_GLOBALAVGPOOL, cn_cpu_globalavgpool_forward, cn_cpu_globalavgpool_backward },
    { CN_OP_RELU, cn_cpu_relu_forward, cn_cpu_relu_backward },
    { CN_OP_LEAKYRELU, cn_cpu_leakyrelu_forward, cn_cpu_leakyrelu_backward },
    { CN_OP_SIGMOID, cn_cpu_sigmoid_forward, cn_cpu_sigmoid_backward },
    { CN_OP_TANH, cn_cpu_tanh_forward, cn_cpu_tanh_backward },
    { CN_OP_SOFTMAX, cn_cpu_softmax_forward, cn_cpu_softmax_backward },
    { CN_OP_BATCHNORM, cn_cpu_batchnorm_forward, cn_cpu_batchnorm_backward },
    { CN_OP_DROPOUT, cn_cpu_dropout_forward, cn_cpu_dropout_backward },
    { CN_OP_ADD, cn_cpu_add_forward, cn_cpu_add_backward },
    { CN_OP_CONCAT, cn_cpu_concat_forward, cn_cpu_concat_backward },
    /* flatten keeps the values in order: a copy forward and dx += dy backward, an add of one input */
    { CN_OP_FLATTEN, cn_cpu_add_forward, cn_cpu_add_backward },
};

static const op_kernels *kernels_of(const cn_node *n)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (n->op == cn_ops[table[i].op]) return &table[i];
    return NULL;
}

cn_kernel_fn cn_cpu_other_forward(const cn_node *n)
{
    const op_kernels *k = kernels_of(n);
    return k ? k->forward : NULL;
}

cn_kernel_fn cn_cpu_other_backward(const cn_node *n)
{
    const op_kernels *k = kernels_of(n);
    return k ? k->backward : NULL;
}

/* the backward kernels that store fresh gradients (cn_op_io.dx_fresh): activations, max and min
 * pooling, add and flatten */
int cn_cpu_other_fresh_dx(const cn_node *n)
{
    static const cn_op_id fresh[] = { CN_OP_RELU, CN_OP_LEAKYRELU, CN_OP_SIGMOID, CN_OP_TANH, CN_OP_MAXPOOL,
                                      CN_OP_MINPOOL, CN_OP_ADD, CN_OP_FLATTEN };
    for (size_t i = 0; i < sizeof fresh / sizeof fresh[0]; i++)
        if (n->op == cn_ops[fresh[i]]) return 1;
    return 0;
}
