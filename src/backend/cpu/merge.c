/* merge.c — add and mul (with their 1x1 maps broadcast) and concat on the CPU (and flatten,
 * which cpu.c runs as an add of one input: a copy forward, dx += dy backward), and the channel
 * moves, shuffle and channels. Threads take element ranges (add), planes (mul, shuffle,
 * channels) or samples (concat); the values are the reference's to the bit, each sum taken over
 * the inputs in order, but for mul's gradient of a 1x1 map (a plane's sum, in lanes). Covered
 * by tests/test_cpu_ops.c and the op table (tests/test_backend.c). */
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

/* y (N,C,H,W) <- x_0 + x_1 + ... (each N,C,H,W, or N,C,1,1 read once per plane), added in
 * input order, then relu(y) where relu (a relu after the add in the same pass) */
static void add_forward_into(const cn_op_io *io, int relu)
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
            if (relu)
                _Pragma("omp simd")
                for (int64_t i = lo; i < hi; i++) y[i] = cpu_relu(y[i]);
        });
}

void cn_cpu_add_forward(const cn_op_io *io) { add_forward_into(io, 0); }

/* relu(add) in one pass (cn_kernels.forward_relu_out): the two layers' bits, one pass fewer */
void cn_cpu_add_forward_relu(const cn_op_io *io) { add_forward_into(io, 1); }

#define GRAD_BLOCK 1024 /* values of a relu's input gradient made at a time (4 KiB on the stack) */

/* g[0, hi-lo) <- the gradient that reaches the add's output at values [lo, hi): dy, or where
 * the relu after it runs in this pass (y: the relu's output) what the relu's own backward would
 * have stored there, 0 + its masked dy (its bits) */
static const float *reaching(const float *dy, const float *y, int64_t lo, int64_t hi, float *g)
{
    if (!y) return dy + lo;
    _Pragma("omp simd")
    for (int64_t i = lo; i < hi; i++) g[i - lo] = 0.0f + cpu_relu_grad(dy[i], y[i]);
    return g;
}

/* dx_j (N,C,H,W) += the gradient reaching the output for every input j (in input order, should
 * two inputs be one layer); a 1x1 input (N,C,1,1) += the sum of its plane, in element order as
 * the reference, on one thread. y: the relu's output where a relu after the add runs in this
 * pass (its gradient is then io->dy), else NULL. */
static void add_backward_into(const cn_op_io *io, const float *y)
{
    int64_t count = cpu_out_count(io), chunks = chunk_count(count), hw = io->n->out.h * io->n->out.w;
    const float *dy = io->dy;
    CN_PAR_FOR(count >= CPU_PAR_MIN, schedule(static),
        for (int64_t k = 0; k < chunks; k++) {
            int64_t lo, hi = chunk_range(count, k, &lo);
            for (int64_t b0 = lo; b0 < hi; b0 += GRAD_BLOCK) {
                int64_t b1 = hi - b0 < GRAD_BLOCK ? hi : b0 + GRAD_BLOCK;
                float buf[GRAD_BLOCK];
                const float *restrict g = reaching(dy, y, b0, b1, buf); /* g[i - b0] for i in [b0, b1) */
                for (int j = 0; j < io->n->n_in; j++) {
                    float *dx = io->dx[j];
                    if (!dx || spread(io, j)) continue;
                    /* 0 + g: the bits of adding to zeros (a bit per input: wider adds are zeroed instead) */
                    if (j < (int)(sizeof io->dx_fresh * CHAR_BIT) && io->dx_fresh >> j & 1) {
                        _Pragma("omp simd")
                        for (int64_t i = b0; i < b1; i++) dx[i] = 0.0f + g[i - b0];
                        continue;
                    }
                    _Pragma("omp simd")
                    for (int64_t i = b0; i < b1; i++) dx[i] += g[i - b0];
                }
            }
        });
    for (int j = 0; j < io->n->n_in; j++) {
        float *dx = io->dx[j];
        if (!dx || !spread(io, j)) continue;
        if (j < (int)(sizeof io->dx_fresh * CHAR_BIT) && io->dx_fresh >> j & 1)
            memset(dx, 0, (size_t)(count / hw) * sizeof(float));
        float buf[GRAD_BLOCK];
        for (int64_t b0 = 0; b0 < count; b0 += GRAD_BLOCK) {
            int64_t b1 = count - b0 < GRAD_BLOCK ? count : b0 + GRAD_BLOCK;
            const float *g = reaching(dy, y, b0, b1, buf);
            for (int64_t i = b0; i < b1; i++) dx[i / hw] += g[i - b0];
        }
    }
}

void cn_cpu_add_backward(const cn_op_io *io) { add_backward_into(io, NULL); }

/* the add's backward from the relu's output gradient (cn_kernels.backward_relu_out: io->y is
 * the relu's output, io->dy its gradient), in place of the relu's backward and the add's */
void cn_cpu_add_backward_relu(const cn_op_io *io) { add_backward_into(io, io->y); }

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

/* Input j's plane p (hw values), or its one value for the plane where it is a 1x1 map: *one */
static const float *plane_of(const cn_op_io *io, int j, int64_t p, int64_t hw, float *one)
{
    const float *x = io->x[j];
    if (!spread(io, j)) return x + p * hw;
    *one = x[p];
    return NULL;
}

#define MUL_BLOCK 256 /* values of a plane multiplied at a time (1 KiB on the stack) */

/* y (N,C,H,W) <- x_0 * x_1 * ... (each N,C,H,W, or N,C,1,1: a value a plane), multiplied in
 * input order as the reference: the same bits */
void cn_cpu_mul_forward(const cn_op_io *io)
{
    int64_t hw = io->n->out.h * io->n->out.w, planes = cpu_out_count(io) / hw;
    CN_PAR_FOR(planes * hw >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            float *yp = (float *)io->y + p * hw, one = 0.0f;
            for (int j = 0; j < io->n->n_in; j++) {
                const float *xp = plane_of(io, j, p, hw, &one);
                if (!j) {
                    _Pragma("omp simd")
                    for (int64_t i = 0; i < hw; i++) yp[i] = xp ? xp[i] : one;
                } else if (xp) {
                    _Pragma("omp simd")
                    for (int64_t i = 0; i < hw; i++) yp[i] *= xp[i];
                } else {
                    _Pragma("omp simd")
                    for (int64_t i = 0; i < hw; i++) yp[i] *= one;
                }
            }
        });
}

/* dx_j (N,C,H,W) += dy * the other inputs (multiplied in the reference's order: its bits); a
 * 1x1 input (N,C,1,1) += the sum of that over its plane (in lanes: within the op table's
 * tolerance of the reference's running sum) */
void cn_cpu_mul_backward(const cn_op_io *io)
{
    int64_t hw = io->n->out.h * io->n->out.w, planes = cpu_out_count(io) / hw;
    int n_in = io->n->n_in;
    CN_PAR_FOR(planes * hw >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) {
            const float *dyp = (const float *)io->dy + p * hw;
            for (int j = 0; j < n_in; j++) {
                float *dx = io->dx[j], g[MUL_BLOCK], sum = 0.0f;
                if (!dx) continue;
                int whole = !spread(io, j), fresh = j < (int)(sizeof io->dx_fresh * CHAR_BIT) && io->dx_fresh >> j & 1;
                for (int64_t i0 = 0; i0 < hw; i0 += MUL_BLOCK) {
                    int64_t len = hw - i0 < MUL_BLOCK ? hw - i0 : MUL_BLOCK;
                    memcpy(g, dyp + i0, (size_t)len * sizeof(float));
                    for (int k = 0; k < n_in; k++) {
                        float one = 0.0f;
                        const float *xp = k == j ? NULL : plane_of(io, k, p, hw, &one);
                        if (k == j) continue;
                        if (xp) {
                            _Pragma("omp simd")
                            for (int64_t i = 0; i < len; i++) g[i] *= xp[i0 + i];
                        } else {
                            _Pragma("omp simd")
                            for (int64_t i = 0; i < len; i++) g[i] *= one;
                        }
                    }
                    float *d = dx + p * hw + i0;
                    if (!whole) {
                        _Pragma("omp simd reduction(+:sum)")
                        for (int64_t i = 0; i < len; i++) sum += g[i];
                    } else if (fresh) {
                        _Pragma("omp simd")
                        for (int64_t i = 0; i < len; i++) d[i] = 0.0f + g[i];
                    } else {
                        _Pragma("omp simd")
                        for (int64_t i = 0; i < len; i++) d[i] += g[i];
                    }
                }
                if (!whole) dx[p] = fresh ? 0.0f + sum : dx[p] + sum;
            }
        });
}

/* ---- channel moves: whole planes copied (forward) or added (backward; stored as 0 + dy where
 * the plane holds no gradient yet, the reference's bits of adding to zeros) ---- */

static void plane_add(float *dst, const float *src, int64_t hw, int fresh)
{
    if (fresh) {
        _Pragma("omp simd")
        for (int64_t i = 0; i < hw; i++) dst[i] = 0.0f + src[i];
    } else {
        _Pragma("omp simd")
        for (int64_t i = 0; i < hw; i++) dst[i] += src[i];
    }
}

/* shuffle: output channel j*G + i is input channel i*(C/G) + j. The plane of the other side
 * for plane p: forward (a, b) = (G, C/G) gives the input plane output plane p reads, backward
 * (C/G, G) the output plane whose gradient input plane p takes */
static int64_t shuffled(int64_t plane, int64_t c, int64_t a, int64_t b)
{
    int64_t ch = plane % c;
    return plane - ch + ch % a * b + ch / a;
}

void cn_cpu_shuffle_forward(const cn_op_io *io)
{
    int64_t c = io->n->out.c, g = io->n->a.groups, hw = io->n->out.h * io->n->out.w, planes = io->batch * c;
    const float *x = io->x[0];
    float *y = io->y;
    CN_PAR_FOR(planes * hw >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++)
            memcpy(y + p * hw, x + shuffled(p, c, g, c / g) * hw, (size_t)hw * sizeof(float)););
}

void cn_cpu_shuffle_backward(const cn_op_io *io)
{
    int64_t c = io->n->out.c, g = io->n->a.groups, hw = io->n->out.h * io->n->out.w, planes = io->batch * c;
    const float *dy = io->dy;
    float *dx = io->dx[0];
    int fresh = io->dx_fresh & 1u;
    if (!dx) return;
    CN_PAR_FOR(planes * hw >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) plane_add(dx + p * hw, dy + shuffled(p, c, c / g, g) * hw, hw, fresh););
}

/* channels: output plane k of sample n is input plane first + k of it */
void cn_cpu_channels_forward(const cn_op_io *io)
{
    int64_t k = io->n->out.c, c = io->in[0]->out.c, hw = io->n->out.h * io->n->out.w, planes = io->batch * k;
    const float *x = io->x[0];
    float *y = io->y;
    CN_PAR_FOR(planes * hw >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++)
            memcpy(y + p * hw, x + (p / k * c + io->n->a.first + p % k) * hw, (size_t)hw * sizeof(float)););
}

/* dx holds zeros or another reader's gradient (no fresh_dx: the planes outside keep theirs) */
void cn_cpu_channels_backward(const cn_op_io *io)
{
    int64_t k = io->n->out.c, c = io->in[0]->out.c, hw = io->n->out.h * io->n->out.w, planes = io->batch * k;
    const float *dy = io->dy;
    float *dx = io->dx[0];
    if (!dx) return;
    CN_PAR_FOR(planes * hw >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < planes; p++) plane_add(dx + (p / k * c + io->n->a.first + p % k) * hw, dy + p * hw, hw, 0););
}
