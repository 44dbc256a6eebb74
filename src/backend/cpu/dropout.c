/* dropout.c — inverted dropout on the CPU. The mask draws one number per value from the net's
 * single stream in element order, as the reference does, so that part stays on one thread (with
 * the generator inline, comparing integers instead of converting each draw to double); applying
 * the mask, and all of backward, are vectorised loops over element ranges. Same masks, outputs
 * and aux as src/ops/dropout.c, to the bit. Covered by tests/test_cpu_ops.c. */
#include <math.h>

#include "../../ops/aux_impl.h"
#include "kernel_util.h"

static unsigned char *mask_of(void *aux) { return (unsigned char *)aux + CN_DROPOUT_AUX_HEAD; }

/* y (N,C,H,W) <- x * mask / keep, mask (N,C,H,W bytes) = [u < keep] for one uniform draw u per
 * value in element order (training); y <- x (evaluation) */
void cn_cpu_dropout_forward(const cn_op_io *io)
{
    int64_t count = cpu_out_count(io);
    const float *restrict x = io->x[0];
    float *restrict y = io->y;
    unsigned char *restrict mask = mask_of(io->aux);
    *(int64_t *)io->aux = io->training != 0;
    if (!io->training) {
        memcpy(y, x, (size_t)count * sizeof(float));
        return;
    }
    /* u = (r >> 11) * 2^-53 < keep exactly when r >> 11 < ceil(keep * 2^53), both sides exact */
    uint64_t below = (uint64_t)ceil(io->n->a.keep * 0x1p53);
    cn_rng rng = *io->rng; /* a local copy stays in registers: the mask bytes may alias anything */
    for (int64_t i = 0; i < count; i++) mask[i] = (cn_rng_step(&rng) >> 11) < below;
    *io->rng = rng;
    float scale = (float)(1.0 / io->n->a.keep);
    CN_PAR_FOR_SIMD(count >= CPU_PAR_MIN, schedule(simd: static),
        for (int64_t i = 0; i < count; i++) y[i] = cpu_select(mask[i], x[i] * scale, 0.0f););
}

/* dx (N,C,H,W) += dy * mask / keep (training), dy (evaluation); a dropped value's dx is left as
 * it is, not given + 0 */
void cn_cpu_dropout_backward(const cn_op_io *io)
{
    int64_t count = cpu_out_count(io);
    const float *restrict dy = io->dy;
    const unsigned char *restrict mask = mask_of(io->aux);
    float *restrict dx = io->dx[0];
    if (!dx) return;
    /* fresh (cn_op_io.dx_fresh): dx holds nothing yet, and 0 + the gradient is stored */
    int fresh = io->dx_fresh & 1;
    if (!*(const int64_t *)io->aux) { /* evaluation: identity */
        if (fresh)
            CN_PAR_FOR_SIMD(count >= CPU_PAR_MIN, schedule(simd: static),
                for (int64_t i = 0; i < count; i++) dx[i] = 0.0f + dy[i];);
        else
            CN_PAR_FOR_SIMD(count >= CPU_PAR_MIN, schedule(simd: static),
                for (int64_t i = 0; i < count; i++) dx[i] += dy[i];);
        return;
    }
    float scale = (float)(1.0 / io->n->a.keep);
    if (fresh)
        CN_PAR_FOR_SIMD(count >= CPU_PAR_MIN, schedule(simd: static),
            for (int64_t i = 0; i < count; i++) dx[i] = cpu_select(mask[i], 0.0f + dy[i] * scale, 0.0f););
    else
        CN_PAR_FOR_SIMD(count >= CPU_PAR_MIN, schedule(simd: static),
            for (int64_t i = 0; i < count; i++) dx[i] = cpu_select(mask[i], dx[i] + dy[i] * scale, dx[i]););
}
