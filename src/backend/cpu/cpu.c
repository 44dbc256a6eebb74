/* cpu.c — the CPU backend: its kernel table, one row per op of ops.def (an empty row: the op's
 * reference kernel). The kernels live one file per op family (cpu_impl.h). Every kernel is
 * checked against the reference kernels of src/ops on random shapes by tests/test_backend.c and
 * tests/test_cpu_ops.c. */
#include "cpu_impl.h"

/* fresh_dx 1: the backward kernel stores dx = 0 + gradient when the executor asks (cn_op_io.dx_fresh) */
static const cn_kernels kernels[CN_OP_COUNT] = {
    [CN_OP_CONV] = { .forward = cn_cpu_conv_forward, .backward = cn_cpu_conv_backward,
                     .workspace = cn_cpu_conv_workspace, .fresh_dx = 1, .describe = cn_cpu_conv_describe,
                     .forward_relu_out = cn_cpu_conv_forward_relu, .fold_bn = 1,
                     .forward_relu_pool = cn_cpu_conv_forward_relu_pool, .relu_pool = cn_cpu_conv_relu_pool,
                     .prep_bytes = cn_cpu_conv_prep_bytes },
    [CN_OP_DENSE] = { .forward = cn_cpu_dense_forward, .backward = cn_cpu_dense_backward, .fresh_dx = 1,
                      .forward_relu_out = cn_cpu_dense_forward_relu },
    [CN_OP_MAXPOOL] = { .forward = cn_cpu_maxpool_forward, .backward = cn_cpu_argpool_backward, .fresh_dx = 1,
                        .forward_relu_in = cn_cpu_maxpool_relu_forward, .backward_relu_in = cn_cpu_maxpool_relu_backward },
    [CN_OP_MINPOOL] = { .forward = cn_cpu_minpool_forward, .backward = cn_cpu_argpool_backward, .fresh_dx = 1 },
    [CN_OP_AVGPOOL] = { .forward = cn_cpu_avgpool_forward, .backward = cn_cpu_avgpool_backward, .fresh_dx = 1 },
    [CN_OP_GLOBALMAXPOOL] = { .forward = cn_cpu_maxpool_forward, .backward = cn_cpu_argpool_backward, .fresh_dx = 1 },
    [CN_OP_GLOBALAVGPOOL] = { .forward = cn_cpu_globalavgpool_forward, .backward = cn_cpu_globalavgpool_backward, .fresh_dx = 1 },
    [CN_OP_RELU] = { .forward = cn_cpu_relu_forward, .backward = cn_cpu_relu_backward, .fresh_dx = 1 },
    [CN_OP_LEAKYRELU] = { .forward = cn_cpu_leakyrelu_forward, .backward = cn_cpu_leakyrelu_backward, .fresh_dx = 1 },
    [CN_OP_SIGMOID] = { .forward = cn_cpu_sigmoid_forward, .backward = cn_cpu_sigmoid_backward, .fresh_dx = 1 },
    [CN_OP_TANH] = { .forward = cn_cpu_tanh_forward, .backward = cn_cpu_tanh_backward, .fresh_dx = 1 },
    [CN_OP_SOFTMAX] = { .forward = cn_cpu_softmax_forward, .backward = cn_cpu_softmax_backward },
    [CN_OP_BATCHNORM] = { .forward = cn_cpu_batchnorm_forward, .backward = cn_cpu_batchnorm_backward,
                          .stats = cn_cpu_batchnorm_stats, .fresh_dx = 1,
                          .forward_relu_out = cn_cpu_batchnorm_forward_relu, .relu6_out = 1 },
    [CN_OP_DROPOUT] = { .forward = cn_cpu_dropout_forward, .backward = cn_cpu_dropout_backward, .fresh_dx = 1 },
    /* flatten keeps the values in order: a copy forward and dx += dy backward, an add of one input */
    [CN_OP_FLATTEN] = { .forward = cn_cpu_add_forward, .backward = cn_cpu_add_backward, .fresh_dx = 1 },
    [CN_OP_CONCAT] = { .forward = cn_cpu_concat_forward, .backward = cn_cpu_concat_backward },
    [CN_OP_SHUFFLE] = { .forward = cn_cpu_shuffle_forward, .backward = cn_cpu_shuffle_backward, .fresh_dx = 1 },
    [CN_OP_CHANNELS] = { .forward = cn_cpu_channels_forward, .backward = cn_cpu_channels_backward },
    [CN_OP_ADD] = { .forward = cn_cpu_add_forward, .backward = cn_cpu_add_backward, .fresh_dx = 1,
                    .forward_relu_out = cn_cpu_add_forward_relu, .backward_relu_out = cn_cpu_add_backward_relu },
    [CN_OP_MUL] = { .forward = cn_cpu_mul_forward, .backward = cn_cpu_mul_backward, .fresh_dx = 1 },
    [CN_OP_UPSAMPLE] = { .forward = cn_cpu_upsample_forward, .backward = cn_cpu_upsample_backward,
                         .workspace = cn_cpu_upsample_workspace },
    [CN_OP_PAD] = { .forward = cn_cpu_pad_forward, .backward = cn_cpu_pad_backward },
    [CN_OP_CROP] = { .forward = cn_cpu_crop_forward, .backward = cn_cpu_crop_backward },
    [CN_OP_DECONV] = { .forward = cn_cpu_deconv_forward, .backward = cn_cpu_deconv_backward,
                       .workspace = cn_cpu_deconv_workspace, .fresh_dx = 1 },
    [CN_OP_RELU6] = { .forward = cn_cpu_relu6_forward, .backward = cn_cpu_relu6_backward, .fresh_dx = 1 },
    [CN_OP_HARDSIGMOID] = { .forward = cn_cpu_hardsigmoid_forward, .backward = cn_cpu_hardsigmoid_backward,
                            .fresh_dx = 1 },
    [CN_OP_HARDSWISH] = { .forward = cn_cpu_hardswish_forward, .backward = cn_cpu_hardswish_backward, .fresh_dx = 1 },
    [CN_OP_SILU] = { .forward = cn_cpu_silu_forward, .backward = cn_cpu_silu_backward, .fresh_dx = 1 },
    [CN_OP_GELU] = { .forward = cn_cpu_gelu_forward, .backward = cn_cpu_gelu_backward, .fresh_dx = 1 },
    [CN_OP_ELU] = { .forward = cn_cpu_elu_forward, .backward = cn_cpu_elu_backward, .fresh_dx = 1 },
    [CN_OP_PRELU] = { .forward = cn_cpu_prelu_forward, .backward = cn_cpu_prelu_backward },
    [CN_OP_SCALE] = { .forward = cn_cpu_scale_forward, .backward = cn_cpu_scale_backward },
    [CN_OP_LAYERNORM] = { .forward = cn_cpu_groupnorm_forward, .backward = cn_cpu_groupnorm_backward },
    [CN_OP_GROUPNORM] = { .forward = cn_cpu_groupnorm_forward, .backward = cn_cpu_groupnorm_backward },
    [CN_OP_INSTANCENORM] = { .forward = cn_cpu_groupnorm_forward, .backward = cn_cpu_groupnorm_backward },
};

const cn_backend cn_backend_cpu = { "cpu", kernels, NULL, NULL, NULL, NULL, NULL }; /* host memory; the step on the host; always ready */
