/* merge.c — add (with its 1x1 maps broadcast) and concat on the CPU (and flatten, which cpu.c
 * runs as an add of one input: a copy forward, dx += dy backward). Threads take element ranges (add) or samples (concat); the
 * values are the reference's to the bit, each sum taken over the inputs in order.
 * Covered by tests/test_cpu_ops.c. */
#include <limits.h>

#include "kernel_util.h"

#define CHUNK 16384 /* values per piece of work for a thread (64 KiB) */

static int64_t chunk_count(int64_t count) { return (count + CHUNK - 1) / CHUNK; }

/* values [*lo, returned) of piece `chunk` */
static int64_t chunk_range(int64_t count, int64_t chunk, int64_t *lo)
{
    *lo = chunk * CHUNK;
    return count - *lo < CHUNK ? count : *lo + CHUNK;
}

/* 1 when input j is a 1x1 map spread over the output's planes (add's broadcast) */
static int spread(const cn_op_io *io, int j) { return cn_merge_spread(io->n, io->in[j]); }

/* y (N,C,H,W) <- x_0 + x_1 + ... (each N,C,H,W, or N,C,1,1 read once per plane), added in input order */
void cn_cpu_add_forward(const cn_op_io *io)
{
    int64_t count = cpu_out_count(io), chunks = chunk_count(count), hw = io->n->out.h * io->n->out.w;
    float *y = io->y;
    CN_PAR_FOR(count >= CPU_PAR_MIN, schedule(static),
        for (int64_t k = 0; k < chunks; k++) {
            int64_t lo, hi = chunk_range(count, k, &lo);
            for (int j = 0; j < io->n->n_in; j++) {
                const float *x = io->x[j];
                if (spread(io, j)) {
                    for (int64_t i = lo; i < hi; i++) y[i] = j ? y[i] + x[i / hw] : x[i / hw];
                    continue;
                }
                if (!j) {
                    memcpy(y + lo, x + lo, (size_t)(hi - lo) * sizeof(float));
                    continue;
                }
                _Pragma("omp simd")
                for (int64_t i = lo; i < hi; i++) y[i] += x[i];
            }
        });
}

/* dx_j (N,C,H,W) += dy for every input j (in input order, should two inputs be one layer); a
 * 1x1 input (N,C,1,1) += the sum of its plane, in element order as the reference, on one thread */
void cn_cpu_add_backward(const cn_op_io *io)
{
    int64_t count = cpu_out_count(io), chunks = chunk_count(count), hw = io->n->out.h * io->n->out.w;
    const float *dy = io->dy;
    CN_PAR_FOR(count >= CPU_PAR_MIN, schedule(static),
        for (int64_t k = 0; k < chunks; k++) {
            int64_t lo, hi = chunk_range(count, k, &lo);
            for (int j = 0; j < io->n->n_in; j++) {
                float *dx = io->dx[j];
                if (!dx || spread(io, j)) continue;
                /* 0 + dy: the bits of adding to zeros (a bit per input: wider adds are zeroed instead) */
                if (j < (int)(sizeof io->dx_fresh * CHAR_BIT) && io->dx_fresh >> j & 1) {
                    _Pragma("omp simd")
                    for (int64_t i = lo; i < hi; i++) dx[i] = 0.0f + dy[i];
                    continue;
                }
                _Pragma("omp simd")
                for (int64_t i = lo; i < hi; i++) dx[i] += dy[i];
            }
        });
    for (int j = 0; j < io->n->n_in; j++) {
        float *dx = io->dx[j];
        if (!dx || !spread(io, j)) continue;
        if (j < (int)(sizeof io->dx_fresh * CHAR_BIT) && io->dx_fresh >> j & 1)
            memset(dx, 0, (size_t)(count / hw) * sizeof(float));
        for (int64_t i = 0; i < count; i++) dx[i / hw] += dy[i];
    }
}

/* y (N, C_0 + C_1 + ..., H, W) <- x_0 (N,C_0,H,W), x_1 (N,C_1,H,W), ... side by side in channels */
void cn_cpu_concat_forward(const cn_op_io *io)
{
    int64_t hw = io->n->out.h * io->n->out.w, ystride = io->n->out.c * hw;
    float *y = io->y;
    CN_PAR_FOR(io->batch * ystride >= CPU_PAR_MIN, schedule(static),
        for (int64_t n = 0; n < io->batch; n++) {
            float *yn = y + n * ystride;
            for (int j = 0; j < io->n->n_in; j++) {
                int64_t block = io->in[j]->out.c * hw;
                memcpy(yn, (const float *)io->x[j] + n * block, (size_t)block * sizeof(float));
                yn += block;
            }
        });
}

/* dx_j (N,C_j,H,W) += the channels of dy (N, C_0 + C_1 + ..., H, W) that came from x_j */
void cn_cpu_concat_backward(const cn_op_io *io)
{
    int64_t hw = io->n->out.h * io->n->out.w, ystride = io->n->out.c * hw;
    const float *dy = io->dy;
    CN_PAR_FOR(io->batch * ystride >= CPU_PAR_MIN, schedule(static),
        for (int64_t n = 0; n < io->batch; n++) {
            const float *dyn = dy + n * ystride;
            for (int j = 0; j < io->n->n_in; j++) {
                int64_t block = io->in[j]->out.c * hw;
                float *dx = io->dx[j];
                if (dx) {
                    float *dxn = dx + n * block;
                    _Pragma("omp simd")
                    for (int64_t i = 0; i < block; i++) dxn[i] += dyn[i];
                }
                dyn += block;
            }
        });
}
