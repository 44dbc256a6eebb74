/* sum_impl.h — sums of floats in double whose order is fixed by the values' positions alone, not by
 * the thread count, the vector width or the alignment: eight running partial sums, the value at
 * position i of a run going to lane i mod 8, folded pairwise at the end. The eight independent
 * lanes also let the compiler vectorise what a single running sum would serialise. Used by the CPU
 * kernels (batch norm, global average pooling) and the optimizer's gradient norm. */
#ifndef CN_SUM_IMPL_H
#define CN_SUM_IMPL_H

#include <stdint.h>

#define CN_SUM_LANES 8

typedef struct { double lane[CN_SUM_LANES]; } cn_sum8;

static inline cn_sum8 cn_sum8_zero(void) { return (cn_sum8){ { 0 } }; }

static inline double cn_sum8_total(const cn_sum8 *a)
{
    const double *s = a->lane;
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* a += x[0..n) */
static inline void cn_sum8_add(cn_sum8 *a, const float *restrict x, int64_t n)
{
    int64_t i = 0;
    for (; i + CN_SUM_LANES <= n; i += CN_SUM_LANES)
        for (int l = 0; l < CN_SUM_LANES; l++) a->lane[l] += (double)x[i + l];
    for (int l = 0; i + l < n; l++) a->lane[l] += (double)x[i + l]; /* i is a multiple of 8 */
}

/* a += (x[0..n) - shift) * (y[0..n) - shift_y): a sum of squares when x == y, of products with
 * one side centred otherwise */
static inline void cn_sum8_add_dot(cn_sum8 *a, const float *x, double shift, const float *y, double shift_y, int64_t n)
{
    int64_t i = 0;
    for (; i + CN_SUM_LANES <= n; i += CN_SUM_LANES)
        for (int l = 0; l < CN_SUM_LANES; l++)
            a->lane[l] += ((double)x[i + l] - shift) * ((double)y[i + l] - shift_y);
    for (int l = 0; i + l < n; l++) a->lane[l] += ((double)x[i + l] - shift) * ((double)y[i + l] - shift_y);
}

/* a += x[0..n) and b += x[0..n) * (y[0..n) - shift_y), in one pass */
static inline void cn_sum8_add_pair(cn_sum8 *a, cn_sum8 *b, const float *restrict x, const float *restrict y,
                                    double shift_y, int64_t n)
{
    int64_t i = 0;
    for (; i + CN_SUM_LANES <= n; i += CN_SUM_LANES)
        for (int l = 0; l < CN_SUM_LANES; l++) {
            a->lane[l] += (double)x[i + l];
            b->lane[l] += (double)x[i + l] * ((double)y[i + l] - shift_y);
        }
    for (int l = 0; i + l < n; l++) {
        a->lane[l] += (double)x[i + l];
        b->lane[l] += (double)x[i + l] * ((double)y[i + l] - shift_y);
    }
}

#endif /* CN_SUM_IMPL_H */
