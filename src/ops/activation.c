/* activation.c — elementwise activations: relu, leakyrelu, sigmoid, tanh.
 * Shapes pass through; no parameters. */
#include "op_impl.h"

static const cn_key no_keys[] = { { 0 } };
static const cn_key leaky_keys[] = {
    { "slope", CN_KT_FLOAT, offsetof(cn_attrs, slope), 0, "0.01", -1e30, 1e30, "slope for x < 0" },
    { 0 },
};

const cn_op cn_op_relu = { "relu", "relu", "max(0, x)", no_keys, 1, cn_infer_pointwise, cn_explain_pointwise };
const cn_op cn_op_leakyrelu = { "leakyrelu", "leakyrelu [slope=0.01]", "x if x > 0 else slope*x", leaky_keys, 1,
                                cn_infer_pointwise, cn_explain_pointwise };
const cn_op cn_op_sigmoid = { "sigmoid", "sigmoid", "1 / (1 + e^-x)", no_keys, 1, cn_infer_pointwise,
                              cn_explain_pointwise };
const cn_op cn_op_tanh = { "tanh", "tanh", "(e^x - e^-x) / (e^x + e^-x)", no_keys, 1, cn_infer_pointwise,
                           cn_explain_pointwise };
