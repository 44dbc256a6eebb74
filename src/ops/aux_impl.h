/* aux_impl.h — the layout of what some ops keep from forward for backward (cn_op_io.aux), shared
 * by their reference kernels here and the backends' kernels, which keep the same. (Max and min
 * pooling keep one int32 argmax per output and nothing else.) */
#ifndef CN_AUX_IMPL_H
#define CN_AUX_IMPL_H

/* batchnorm: the mode forward ran in (int64: 1 = batch statistics), then per channel the mean
 * (C reals) and 1/sqrt(var + eps) (C reals); backward follows the recorded mode */
#define CN_BN_AUX_HEAD 8
/* dropout: the mode forward ran in (int64: 1 = masked), then one mask byte per value (1 = kept) */
#define CN_DROPOUT_AUX_HEAD 8

#endif
