/* softmax.c — softmax over the channels of each position on the CPU. Positions go in blocks
 * (threads take (sample, block) pairs); within a block the loops run over channels outside and
 * positions inside, so each position's max, sum and dot run over the channels in the reference's
 * order while the inner loop vectorises. e^x is the float one of kernel_util.h (within a few ulp
 * of the reference's double); sums stay in double. Covered by tests/test_cpu_ops.c. */
#include "kernel_util.h"

#define BLOCK 64 /* positions per block: the per-position sums live on the stack */

/* x (N,C,HW) as (sample, block of positions) pairs */
typedef struct { int64_t c, hw, blocks; } softmax_shape;

static softmax_shape shape_of(const cn_op_io *io)
{
    int64_t hw = io->n->out.h * io->n->out.w;
    return (softmax_shape){ io->n->out.c, hw, (hw + BLOCK - 1) / BLOCK };
}

/* where pair `at` starts in x, and how many positions it holds */
static int64_t block_start(const softmax_shape *s, int64_t at, int64_t *len)
{
    int64_t sample = at / s->blocks, p0 = at % s->blocks * BLOCK;
    *len = s->hw - p0 < BLOCK ? s->hw - p0 : BLOCK;
    return sample * s->c * s->hw + p0;
}

/* y (N,C,H,W) <- e^(x - max) / sum_j e^(x_j - max) over C at each position */
void cn_cpu_softmax_forward(const cn_op_io *io)
{
    softmax_shape s = shape_of(io);
    int64_t pairs = io->batch * s.blocks;
    CN_PAR_FOR(cpu_out_count(io) >= CPU_PAR_MIN, schedule(static),
        for (int64_t at = 0; at < pairs; at++) {
            int64_t len, base = block_start(&s, at, &len);
            const float *x = (const float *)io->x[0] + base;
            float *y = (float *)io->y + base, mx[BLOCK];
            double sum[BLOCK];
            for (int64_t b = 0; b < len; b++) mx[b] = x[b], sum[b] = 0;
            for (int64_t k = 1; k < s.c; k++) {
                const float *xk = x + k * s.hw;
                _Pragma("omp simd")
                for (int64_t b = 0; b < len; b++) mx[b] = xk[b] > mx[b] ? xk[b] : mx[b];
            }
            for (int64_t k = 0; k < s.c; k++) {
                const float *xk = x + k * s.hw;
                float *yk = y + k * s.hw;
                _Pragma("omp simd")
                for (int64_t b = 0; b < len; b++) {
                    yk[b] = cpu_exp_nonpos(xk[b] - mx[b]);
                    sum[b] += yk[b];
                }
            }
            for (int64_t k = 0; k < s.c; k++) {
                float *yk = y + k * s.hw;
                _Pragma("omp simd")
                for (int64_t b = 0; b < len; b++) yk[b] = (float)((double)yk[b] / sum[b]);
            }
        });
}

/* dx (N,C,H,W) += y * (dy - sum_j dy_j y_j) over the channels of each position, y the output */
void cn_cpu_softmax_backward(const cn_op_io *io)
{
    softmax_shape s = shape_of(io);
    int64_t pairs = io->batch * s.blocks;
    if (!io->dx[0]) return;
    CN_PAR_FOR(cpu_out_count(io) >= CPU_PAR_MIN, schedule(static),
        for (int64_t at = 0; at < pairs; at++) {
            int64_t len, base = block_start(&s, at, &len);
            const float *y = (const float *)io->y + base, *dy = (const float *)io->dy + base;
            float *dx = (float *)io->dx[0] + base;
            double dot[BLOCK];
            for (int64_t b = 0; b < len; b++) dot[b] = 0;
            for (int64_t k = 0; k < s.c; k++) {
                const float *yk = y + k * s.hw, *dyk = dy + k * s.hw;
                _Pragma("omp simd")
                for (int64_t b = 0; b < len; b++) dot[b] += (double)dyk[b] * yk[b];
            }
            for (int64_t k = 0; k < s.c; k++) {
                const float *yk = y + k * s.hw, *dyk = dy + k * s.hw;
                float *dxk = dx + k * s.hw;
                _Pragma("omp simd")
                for (int64_t b = 0; b < len; b++) dxk[b] += (float)((double)yk[b] * ((double)dyk[b] - dot[b]));
            }
        });
}
