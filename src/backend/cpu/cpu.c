/* cpu.c — the CPU backend: its kernel table, one row per op of ops.def (an empty row: the op's
 * reference kernel). The kernels live one file per op family (cpu_impl.h). Every kernel is
 * checked against the reference kernels of src/ops on random shapes by tests/test_backend.c and
 * tests/test_cpu_ops.c. */
#include "cpu_impl.h"

/* fresh_dx 1: the backward kernel stores dx = 0 + gradient when the executor asks (cn_op_io.dx_fresh) */
static const cn_kernels kernels[CN_OP_COUNT] = {
    [CN_OP_CONV] = { cn_cpu_conv_forward, cn_cpu_conv_backward, cn_cpu_conv_workspace, 1, NULL },
    [CN_OP_DENSE] = { cn_cpu_dense_forward, cn_cpu_dense_backward, NULL, 1, NULL },
    [CN_OP_MAXPOOL] = { cn_cpu_maxpool_forward, cn_cpu_argpool_backward, NULL, 1, NULL },
    [CN_OP_MINPOOL] = { cn_cpu_minpool_forward, cn_cpu_argpool_backward, NULL, 1, NULL },
    [CN_OP_AVGPOOL] = { cn_cpu_avgpool_forward, cn_cpu_avgpool_backward, NULL, 0, NULL },
    [CN_OP_GLOBALAVGPOOL] = { cn_cpu_globalavgpool_forward, cn_cpu_globalavgpool_backward, NULL, 0, NULL },
    [CN_OP_RELU] = { cn_cpu_relu_forward, cn_cpu_relu_backward, NULL, 1, NULL },
    [CN_OP_LEAKYRELU] = { cn_cpu_leakyrelu_forward, cn_cpu_leakyrelu_backward, NULL, 1, NULL },
    [CN_OP_SIGMOID] = { cn_cpu_sigmoid_forward, cn_cpu_sigmoid_backward, NULL, 1, NULL },
    [CN_OP_TANH] = { cn_cpu_tanh_forward, cn_cpu_tanh_backward, NULL, 1, NULL },
    [CN_OP_SOFTMAX] = { cn_cpu_softmax_forward, cn_cpu_softmax_backward, NULL, 0, NULL },
    [CN_OP_BATCHNORM] = { cn_cpu_batchnorm_forward, cn_cpu_batchnorm_backward, NULL, 0, cn_cpu_batchnorm_stats },
    [CN_OP_DROPOUT] = { cn_cpu_dropout_forward, cn_cpu_dropout_backward, NULL, 0, NULL },
    /* flatten keeps the values in order: a copy forward and dx += dy backward, an add of one input */
    [CN_OP_FLATTEN] = { cn_cpu_add_forward, cn_cpu_add_backward, NULL, 1, NULL },
    [CN_OP_CONCAT] = { cn_cpu_concat_forward, cn_cpu_concat_backward, NULL, 0, NULL },
    [CN_OP_ADD] = { cn_cpu_add_forward, cn_cpu_add_backward, NULL, 1, NULL },
    [CN_OP_DECONV] = { cn_cpu_deconv_forward, cn_cpu_deconv_backward, cn_cpu_deconv_workspace, 1, NULL },
    [CN_OP_RELU6] = { cn_cpu_relu6_forward, cn_cpu_relu6_backward, NULL, 1, NULL },
    [CN_OP_HARDSIGMOID] = { cn_cpu_hardsigmoid_forward, cn_cpu_hardsigmoid_backward, NULL, 1, NULL },
    [CN_OP_HARDSWISH] = { cn_cpu_hardswish_forward, cn_cpu_hardswish_backward, NULL, 1, NULL },
    [CN_OP_SILU] = { cn_cpu_silu_forward, cn_cpu_silu_backward, NULL, 1, NULL },
    [CN_OP_GELU] = { cn_cpu_gelu_forward, cn_cpu_gelu_backward, NULL, 1, NULL },
    [CN_OP_ELU] = { cn_cpu_elu_forward, cn_cpu_elu_backward, NULL, 1, NULL },
    [CN_OP_PRELU] = { cn_cpu_prelu_forward, cn_cpu_prelu_backward, NULL, 0, NULL },
    [CN_OP_LAYERNORM] = { cn_cpu_groupnorm_forward, cn_cpu_groupnorm_backward, NULL, 0, NULL },
    [CN_OP_GROUPNORM] = { cn_cpu_groupnorm_forward, cn_cpu_groupnorm_backward, NULL, 0, NULL },
    [CN_OP_INSTANCENORM] = { cn_cpu_groupnorm_forward, cn_cpu_groupnorm_backward, NULL, 0, NULL },
};

const cn_backend cn_backend_cpu = { "cpu", kernels, NULL, NULL, NULL, NULL }; /* host memory; the step on the host; always ready */
