/* activation_ref.h — gelu's formulas in double, shared by activation.c's reference kernels, the
 * CPU backend's (src/backend/cpu/activation.c) and the CUDA kernels (CN_DEVICE_FN), which give
 * the same formulas. */
#ifndef CN_ACTIVATION_REF_H
#define CN_ACTIVATION_REF_H

#include <math.h>

#include "../core/device_fn.h"

#define CN_GELU_C 0.7978845608028654 /* sqrt(2/pi) */
#define CN_GELU_K 0.044715

/* x * Phi(x) with Phi(x) = (1 + erf(x / sqrt 2)) / 2; tanh form: Phi(x) ~ (1 + tanh(c (x + k x^3))) / 2 */
CN_DEVICE_FN double cn_gelu(double x, int tanh_form)
{
    if (tanh_form) return 0.5 * x * (1 + tanh(CN_GELU_C * (x + CN_GELU_K * x * x * x)));
    return 0.5 * x * (1 + erf(x * 0.7071067811865476));
}

/* Phi(x) + x phi(x); tanh form, with t = tanh(c (x + k x^3)): (1 + t)/2 + x (1 - t^2) c (1 + 3 k x^2) / 2 */
CN_DEVICE_FN double cn_gelu_deriv(double x, int tanh_form)
{
    if (tanh_form) {
        double t = tanh(CN_GELU_C * (x + CN_GELU_K * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * CN_GELU_C * (1 + 3 * CN_GELU_K * x * x);
    }
    return 0.5 * (1 + erf(x * 0.7071067811865476)) + x * exp(-0.5 * x * x) * 0.3989422804014327;
}

#endif
