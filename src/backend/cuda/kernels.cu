/* kernels.cu — the CUDA backend's own kernels: every op that no cuDNN or cuBLAS call computes
 * with our reference kernel's semantics (the op files of src/ops), and the step's norm and
 * update. Each follows its reference kernel: the same sums in double where the reference sums in
 * double, the same order of float additions where gradients accumulate. Gradients: `fresh`
 * stores 0 + gradient (cn_op_io.dx_fresh), else adds. Activations come as cn_cu_act (floats in
 * NCHW, or --precision bf16's bf16 in NHWC), read and written through load, store and gather.
 * Compiled by nvcc into a fatbin embedded in the library and loaded with the driver API
 * (loader.c); the host side launches them (ops.c). */
#include "cuda_abi.h"

#include "../../data/batch_draw.h"
#include "../../ops/activation_ref.h"
#include "../../ops/resample_ref.h"
#include "../../train/step_row.h"

typedef long long i64;

#define THREADS 256
#define GRID_STRIDE(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

/* the sum of v over the block's THREADS threads, in a fixed order; every thread gets it */
static __device__ double block_sum(double v)
{
    __shared__ double part[THREADS];
    __syncthreads(); /* part may still be read from the previous call */
    part[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = THREADS / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    return part[0];
}

static __device__ float accumulate(const float *dst, i64 i, int fresh, float v) { return fresh ? v : dst[i] + v; }

/* bf16 from a float rounded to nearest even (as cuDNN and cuBLAS round; a NaN stays a NaN), and back */
static __device__ unsigned short bf16_of(float v)
{
    unsigned u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static __device__ float float_of(unsigned short h) { return __uint_as_float((unsigned)h << 16); }

/* value i of an activation (cn_cu_act: floats or bf16), and stored back rounded to its type */
static __device__ float load(cn_cu_act t, i64 i)
{
    return t.bf16 ? float_of(((const unsigned short *)t.p)[i]) : ((const float *)t.p)[i];
}

static __device__ void store(cn_cu_act t, i64 i, float v)
{
    if (t.bf16) ((unsigned short *)t.p)[i] = bf16_of(v);
    else ((float *)t.p)[i] = v;
}

/* a gradient's value i: v stored (fresh) or added to what it holds, in float */
static __device__ void gather(cn_cu_act t, i64 i, int fresh, float v) { store(t, i, fresh ? v : load(t, i) + v); }

/* an (N, C, HW) tensor's layouts: the NHWC place of NCHW index i, the NCHW index of NHWC place
 * q, and the channel of place q of t */
static __device__ i64 nhwc_at(i64 i, i64 c, i64 hw) { return (i / (c * hw) * hw + i % hw) * c + i / hw % c; }
static __device__ i64 nchw_of(i64 q, i64 c, i64 hw)
{
    i64 r = q % (c * hw);
    return (q - r) + r % c * hw + r / c;
}
static __device__ i64 channel_at(cn_cu_act t, i64 q, i64 c, i64 hw) { return t.nhwc ? q % c : q / hw % c; }
/* the place of sample s's channel ch at pixel p in t's layout */
static __device__ i64 place(cn_cu_act t, i64 s, i64 ch, i64 p, i64 c, i64 hw)
{
    return t.nhwc ? (s * hw + p) * c + ch : (s * c + ch) * hw + p;
}

/* the place of pixel (iy, ix) of plane nc's channel in a map of h x w (x: its layout; nc is
 * sample * c + channel) */
static __device__ i64 pixel_at(cn_cu_act x, i64 nc, i64 c, i64 h, i64 w, i64 iy, i64 ix)
{
    return x.nhwc ? ((nc / c * h + iy) * w + ix) * c + nc % c : (nc * h + iy) * w + ix;
}

/* the plane (sample * c + channel) and pixel (y, x) of place q of a map of h x w */
static __device__ void pixel_of(cn_cu_act x, i64 q, i64 c, i64 h, i64 w, i64 *nc, i64 *y, i64 *xx)
{
    if (x.nhwc) {
        i64 r = q / c;
        *nc = r / (h * w) * c + q % c, *y = r / w % h, *xx = r % w;
    } else {
        *nc = q / (h * w), *y = q / w % h, *xx = q % w;
    }
}

/* dst (+)= src, an (N, C, HW) tensor, each in its type and layout: one thread per place of dst.
 * Copies and sums of one layout (flatten, add, dropout at evaluation), a map read in NCHW's
 * order (flatten), an operand packed as bf16 for a product (conv.c, dense.c). */
extern "C" __global__ void relayout(cn_cu_act src, cn_cu_act dst, i64 n, i64 c, i64 hw, int add)
{
    GRID_STRIDE(q, n * c * hw) {
        i64 from = src.nhwc == dst.nhwc ? q : dst.nhwc ? nchw_of(q, c, hw) : nhwc_at(q, c, hw);
        float v = load(src, from);
        store(dst, q, add ? load(dst, q) + v : v);
    }
}

/* ---- activations (src/ops/activation.c: computed in double per value, its act_value and
 * act_deriv case for case; `param` is leakyrelu's slope, elu's alpha or gelu's approximate) ---- */

static __device__ double sigmoid_of(double v) { return v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v)); }

extern "C" __global__ void act_forward(int kind, cn_cu_act x, cn_cu_act y, i64 n, double param)
{
    GRID_STRIDE(i, n) {
        double v = load(x, i), r;
        switch (kind) {
        case CN_CU_RELU: r = v > 0 ? v : 0; break;
        case CN_CU_LEAKY: r = v > 0 ? v : param * v; break;
        case CN_CU_SIGMOID: r = sigmoid_of(v); break;
        case CN_CU_TANH: r = tanh(v); break;
        case CN_CU_RELU6: r = v <= 0 ? 0 : v >= 6 ? 6 : v; break;
        case CN_CU_HARDSIGMOID: r = v <= -3 ? 0 : v >= 3 ? 1 : v / 6 + 0.5; break;
        case CN_CU_HARDSWISH: r = v <= -3 ? 0 : v >= 3 ? v : v * (v + 3) / 6; break;
        case CN_CU_SILU: r = v * sigmoid_of(v); break;
        case CN_CU_GELU: r = cn_gelu(v, param != 0); break;
        default: r = v > 0 ? v : param * expm1(v); break; /* elu */
        }
        store(y, i, (float)r);
    }
}

extern "C" __global__ void act_backward(int kind, cn_cu_act x, cn_cu_act y, cn_cu_act dy, cn_cu_act dx, i64 n,
                                        double param, int fresh)
{
    GRID_STRIDE(i, n) {
        double d, v = load(x, i), yi = kind == CN_CU_SIGMOID || kind == CN_CU_TANH ? load(y, i) : 0;
        switch (kind) {
        case CN_CU_RELU: d = v > 0 ? 1 : 0; break;
        case CN_CU_LEAKY: d = v > 0 ? 1 : param; break;
        case CN_CU_SIGMOID: d = yi * (1 - yi); break;
        case CN_CU_TANH: d = 1 - yi * yi; break;
        case CN_CU_RELU6: d = v > 0 && v < 6 ? 1 : 0; break;
        case CN_CU_HARDSIGMOID: d = v > -3 && v < 3 ? 1.0 / 6 : 0; break;
        case CN_CU_HARDSWISH: d = v < -3 ? 0 : v <= 3 ? v / 3 + 0.5 : 1; break;
        case CN_CU_SILU: {
            double s = sigmoid_of(v);
            d = s * (1 + v * (1 - s));
            break;
        }
        case CN_CU_GELU: d = cn_gelu_deriv(v, param != 0); break;
        default: d = v > 0 ? 1 : param * exp(v); break; /* elu */
        }
        gather(dx, i, fresh, (float)(load(dy, i) * d));
    }
}

/* a factor per channel: prelu's slope, y = x if x > 0 else a[c] x, or (prelu 0) scale's, y =
 * a[c] x; in float as the reference (x, y: N x C x HW; a: C) */
extern "C" __global__ void factor_forward(cn_cu_act x, const float *a, cn_cu_act y, i64 n, i64 c, i64 hw, int prelu)
{
    GRID_STRIDE(i, n * c * hw) {
        float v = load(x, i);
        store(y, i, prelu && v > 0 ? v : a[channel_at(x, i, c, hw)] * v);
    }
}

/* one block per channel: dx (+)= a dy (prelu: dy where x > 0); da += the sum of dy x (prelu:
 * over x <= 0), in double per plane, a float add per sample in sample order as the reference */
extern "C" __global__ void factor_backward(cn_cu_act x, const float *a, cn_cu_act dy, cn_cu_act dx, float *da, i64 n,
                                           i64 c, i64 hw, int fresh, int prelu)
{
    i64 ch = blockIdx.x;
    float f = a[ch];
    for (i64 s = 0; s < n; s++) {
        double acc = 0;
        for (i64 j = threadIdx.x; j < hw; j += THREADS) {
            i64 k = place(x, s, ch, j, c, hw);
            float xv = load(x, k), g = load(dy, k);
            int passes = prelu && xv > 0; /* prelu's identity side */
            if (!passes) acc += (double)g * xv;
            if (dx.p) gather(dx, k, fresh, passes ? g : f * g);
        }
        acc = block_sum(acc);
        if (threadIdx.x == 0) da[ch] += (float)acc;
    }
}

/* add's inputs. Forward: dst[i] (+)= src[its sample and channel] for a 1x1 map (N,C,1,1)
 * broadcast over the output's planes of hw values, or (hw 0) src[i], an input of the output's
 * shape and format; then relu where asked (a relu after the add, fused into the pass of its last
 * input: the two layers' bits, as relu(round(v)) = round(relu(v))). Backward: dst[p] (+)= the
 * sum of plane p of src, in element order as the reference sums it (one thread a plane), src
 * masked where relu_y (the fused relu's output) is not above 0, as act_backward's relu masks it */
extern "C" __global__ void spread_add(cn_cu_act src, cn_cu_act dst, i64 n, i64 c, i64 hw, int add, int relu)
{
    GRID_STRIDE(i, n) {
        i64 from = !hw ? i : dst.nhwc ? i / (hw * c) * c + i % c : i / hw;
        float v = add ? load(dst, i) + load(src, from) : load(src, from);
        store(dst, i, relu && !(v > 0) ? 0.0f : v);
    }
}

/* the gradient reaching an add's output at i: dy, or through a relu after it (relu_y: the
 * relu's output) the relu's input gradient, in act_backward's arithmetic */
static __device__ float through_relu(cn_cu_act dy, cn_cu_act relu_y, i64 i)
{
    return relu_y.p ? (float)(load(dy, i) * (load(relu_y, i) > 0 ? 1.0 : 0.0)) : load(dy, i);
}

/* dst (+)= the gradient reaching the add's output (through_relu), an input of its shape */
extern "C" __global__ void add_grad(cn_cu_act dy, cn_cu_act relu_y, cn_cu_act dst, i64 n, int add)
{
    GRID_STRIDE(i, n) {
        float g = through_relu(dy, relu_y, i);
        store(dst, i, add ? load(dst, i) + g : g);
    }
}

/* ---- mul (src/ops/merge.c): products in float in input order; input j's value at output
 * element i is x[j][i / hw[j]] (hw[j] = 1, or the plane size for a 1x1 map broadcast) ---- */

/* the place of output place i's value in input j: the same, or a 1x1 map's sample and channel */
static __device__ i64 mul_at(const cn_cu_mul &m, int j, i64 i)
{
    i64 hw = m.hw[j];
    return hw == 1 ? i : m.nhwc ? i / (hw * m.c) * m.c + i % m.c : i / hw;
}

static __device__ float mul_input(const cn_cu_mul &m, int j, i64 i) { return load(m.x[j], mul_at(m, j, i)); }

extern "C" __global__ void mul_forward(cn_cu_mul m, cn_cu_act y, i64 n)
{
    GRID_STRIDE(i, n) {
        float v = mul_input(m, 0, i);
        for (int j = 1; j < m.n_in; j++) v = v * mul_input(m, j, i);
        store(y, i, v);
    }
}

/* dx_j (+)= dy times the other inputs (in input order); a 1x1 input j gets its plane's sum, in
 * element order, one thread a plane */
extern "C" __global__ void mul_backward(cn_cu_mul m, int j, cn_cu_act dy, cn_cu_act dx, i64 n, int fresh)
{
    i64 per = m.hw[j], outs = n / per;
    GRID_STRIDE(t, outs) {
        float s = fresh ? 0.0f : load(dx, t);
        for (i64 k = 0; k < per; k++) { /* the plane's places, in pixel order */
            i64 i = per == 1 ? t : m.nhwc ? (t / m.c * per + k) * m.c + t % m.c : t * per + k;
            float g = load(dy, i);
            for (int q = 0; q < m.n_in; q++)
                if (q != j) g *= mul_input(m, q, i);
            s += g;
        }
        store(dx, t, s);
    }
}

extern "C" __global__ void plane_sum(cn_cu_act src, cn_cu_act relu_y, cn_cu_act dst, i64 planes, i64 c, i64 hw,
                                     int add)
{
    GRID_STRIDE(p, planes) {
        float s = add ? load(dst, p) : 0.0f;
        for (i64 k = 0; k < hw; k++) s += through_relu(src, relu_y, src.nhwc ? (p / c * hw + k) * c + p % c : p * hw + k);
        store(dst, p, s);
    }
}

/* ---- concat: input j's block of `block` values in each run of `ystride` of y, at `off` (a
 * run a sample in NCHW, a pixel in NHWC: ops.c's concat_at) ---- */

extern "C" __global__ void concat_forward(cn_cu_act x, cn_cu_act y, i64 batch, i64 block, i64 ystride, i64 off)
{
    GRID_STRIDE(i, batch * block) store(y, (i / block) * ystride + off + i % block, load(x, i));
}

extern "C" __global__ void concat_backward(cn_cu_act dy, cn_cu_act dx, i64 batch, i64 block, i64 ystride, i64 off,
                                           int fresh)
{
    GRID_STRIDE(i, batch * block) gather(dx, i, fresh, load(dy, (i / block) * ystride + off + i % block));
}

/* ---- channels moved (src/ops/channels.c), floats in NCHW (their rows take no bf16): shuffle's
 * output channel j*g + i is input channel i*per + j; `channels` is the block of `block` values
 * at offset off of every run of xstride. Each thread writes one value. ---- */
extern "C" __global__ void shuffle_forward(cn_cu_act x, cn_cu_act y, i64 n, i64 c, i64 g, i64 hw)
{
    GRID_STRIDE(o, n) {
        i64 ch = o / hw % c, per = c / g;
        store(y, o, load(x, (o / (hw * c) * c + ch % g * per + ch / g) * hw + o % hw));
    }
}

extern "C" __global__ void shuffle_backward(cn_cu_act dy, cn_cu_act dx, i64 n, i64 c, i64 g, i64 hw, int fresh)
{
    GRID_STRIDE(q, n) {
        i64 ch = q / hw % c, per = c / g;
        gather(dx, q, fresh, load(dy, (q / (hw * c) * c + ch % per * g + ch / per) * hw + q % hw));
    }
}

extern "C" __global__ void channels_forward(cn_cu_act x, cn_cu_act y, i64 n, i64 block, i64 xstride, i64 off)
{
    GRID_STRIDE(i, n) store(y, i, load(x, i / block * xstride + off + i % block));
}

/* dx is zeroed before (the row has no fresh_dx): the channels outside the block keep 0 */
extern "C" __global__ void channels_backward(cn_cu_act dy, cn_cu_act dx, i64 n, i64 block, i64 xstride, i64 off)
{
    GRID_STRIDE(i, n) gather(dx, i / block * xstride + off + i % block, 0, load(dy, i));
}

/* ---- maps read from other maps' pixels: pad and crop, upsample, adaptive average pooling
 * (src/ops/pad_crop.c, upsample.c, pool.c; which pixels: src/ops/resample_ref.h). Forward:
 * one thread per output. Backward: one thread per input pixel, gathering the outputs that
 * read it in the reference's order (outputs in scan order), so that no two threads write one
 * pixel and its sum is the reference's. ---- */

/* the first o in [0, n) with key(o) >= target, key non-decreasing (n if none) */
template <class F> static __device__ i64 first_at_least(i64 n, i64 target, F key)
{
    i64 lo = 0, hi = n;
    while (lo < hi) {
        i64 mid = lo + (hi - lo) / 2;
        if (key(mid) < target) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* pad and crop: output o (of out) reads input cn_pad_src(o - before) (crop: before < 0, every
 * output inside). The outputs that may read input i, ascending: segment 0 the border before,
 * 1 the one inside (o = i + before), 2 the border after; a border reads only when filled. */
struct span { i64 lo, hi; };
static __device__ span remap_segment(int seg, const cn_cu_maps &g, i64 i, i64 n, i64 out, i64 before)
{
    span r = { 0, 0 };
    if (seg == 1) r.lo = i + before, r.hi = r.lo + 1;
    else if (g.fill != CN_FILL_ZERO) r.lo = seg == 0 ? 0 : before + n, r.hi = seg == 0 ? before : out;
    if (r.lo < 0) r.lo = 0;
    if (r.hi > out) r.hi = out;
    return r;
}

extern "C" __global__ void remap_forward(cn_cu_maps g, cn_cu_act x, cn_cu_act y)
{
    GRID_STRIDE(o, g.planes * g.oh * g.ow) {
        i64 p, oy, ox;
        pixel_of(y, o, g.c, g.oh, g.ow, &p, &oy, &ox);
        i64 iy = cn_pad_src(oy - g.top, g.h, (int)g.fill), ix = cn_pad_src(ox - g.left, g.w, (int)g.fill);
        store(y, o, iy < 0 || ix < 0 ? 0.0f : load(x, pixel_at(x, p, g.c, g.h, g.w, iy, ix)));
    }
}

extern "C" __global__ void remap_backward(cn_cu_maps g, cn_cu_act dy, cn_cu_act dx, int fresh)
{
    int fill = (int)g.fill;
    GRID_STRIDE(i, g.planes * g.h * g.w) {
        i64 p, iy, ix;
        pixel_of(dx, i, g.c, g.h, g.w, &p, &iy, &ix);
        float v = fresh ? 0.0f : load(dx, i);
        for (int sy = 0; sy < 3; sy++) {
            span ry = remap_segment(sy, g, iy, g.h, g.oh, g.top);
            for (i64 oy = ry.lo; oy < ry.hi; oy++) {
                if (cn_pad_src(oy - g.top, g.h, fill) != iy) continue;
                for (int sx = 0; sx < 3; sx++) {
                    span rx = remap_segment(sx, g, ix, g.w, g.ow, g.left);
                    for (i64 ox = rx.lo; ox < rx.hi; ox++)
                        if (cn_pad_src(ox - g.left, g.w, fill) == ix) v += load(dy, pixel_at(dy, p, g.c, g.oh, g.ow, oy, ox));
                }
            }
        }
        store(dx, i, v);
    }
}

/* upsample: fill is the mode (CN_CU_NEAREST, CN_CU_BILINEAR, CN_CU_BILINEAR_ALIGNED) */
extern "C" __global__ void upsample_forward(cn_cu_maps g, cn_cu_act x, cn_cu_act y)
{
    int align = g.fill == CN_CU_BILINEAR_ALIGNED;
    GRID_STRIDE(o, g.planes * g.oh * g.ow) {
        i64 p, oy, ox;
        pixel_of(y, o, g.c, g.oh, g.ow, &p, &oy, &ox);
        auto xp = [&](i64 iy, i64 ix) { return load(x, pixel_at(x, p, g.c, g.h, g.w, iy, ix)); };
        if (g.fill == CN_CU_NEAREST) {
            store(y, o, xp(cn_nearest_src(oy, g.h, g.oh), cn_nearest_src(ox, g.w, g.ow)));
            continue;
        }
        int64_t y0, y1, x0, x1;
        float ly, lx;
        cn_linear_src_f32(oy, g.h, g.oh, align, &y0, &y1, &ly);
        cn_linear_src_f32(ox, g.w, g.ow, align, &x0, &x1, &lx);
        store(y, o, (1 - ly) * ((1 - lx) * xp(y0, x0) + lx * xp(y0, x1)) + ly * ((1 - lx) * xp(y1, x0) + lx * xp(y1, x1)));
    }
}

/* the first source pixel of output o of one dimension (nearest's one, bilinear's i0) */
static __device__ i64 upsample_first(int mode, i64 o, i64 in, i64 out)
{
    if (mode == CN_CU_NEAREST) return cn_nearest_src(o, in, out);
    int64_t i0, i1;
    float l;
    cn_linear_src_f32(o, in, out, mode == CN_CU_BILINEAR_ALIGNED, &i0, &i1, &l);
    return i0;
}

/* the outputs that read input pixel i are those whose first source pixel lies in [i - 1, i]
 * (bilinear's second pixel is the first's next or itself) or is i (nearest): a run, the first
 * source pixel growing with o. Each adds what the reference adds to pixel i, in its order. */
extern "C" __global__ void upsample_backward(cn_cu_maps g, cn_cu_act dy, cn_cu_act dx, int fresh)
{
    int mode = (int)g.fill, align = mode == CN_CU_BILINEAR_ALIGNED, back = mode == CN_CU_NEAREST ? 0 : 1;
    GRID_STRIDE(i, g.planes * g.h * g.w) {
        i64 p, iy, ix;
        pixel_of(dx, i, g.c, g.h, g.w, &p, &iy, &ix);
        float v = fresh ? 0.0f : load(dx, i);
        i64 oy0 = first_at_least(g.oh, iy - back, [&](i64 o) { return upsample_first(mode, o, g.h, g.oh); });
        i64 ox0 = first_at_least(g.ow, ix - back, [&](i64 o) { return upsample_first(mode, o, g.w, g.ow); });
        for (i64 oy = oy0; oy < g.oh && upsample_first(mode, oy, g.h, g.oh) <= iy; oy++)
            for (i64 ox = ox0; ox < g.ow && upsample_first(mode, ox, g.w, g.ow) <= ix; ox++) {
                float gv = load(dy, pixel_at(dy, p, g.c, g.oh, g.ow, oy, ox));
                if (mode == CN_CU_NEAREST) {
                    v += gv;
                    continue;
                }
                int64_t y0, y1, x0, x1;
                float ly, lx;
                cn_linear_src_f32(oy, g.h, g.oh, align, &y0, &y1, &ly);
                cn_linear_src_f32(ox, g.w, g.ow, align, &x0, &x1, &lx);
                if (y0 == iy && x0 == ix) v += (1 - ly) * (1 - lx) * gv;
                if (y0 == iy && x1 == ix) v += (1 - ly) * lx * gv;
                if (y1 == iy && x0 == ix) v += ly * (1 - lx) * gv;
                if (y1 == iy && x1 == ix) v += ly * lx * gv;
            }
        store(dx, i, v);
    }
}

/* adaptiveavgpool: the window's mean (a sum in double in scan order) */
extern "C" __global__ void adaptive_forward(cn_cu_maps g, cn_cu_act x, cn_cu_act y)
{
    GRID_STRIDE(o, g.planes * g.oh * g.ow) {
        i64 p, oy, ox;
        pixel_of(y, o, g.c, g.oh, g.ow, &p, &oy, &ox);
        i64 y0 = cn_adaptive_start(oy, g.h, g.oh), y1 = cn_adaptive_end(oy, g.h, g.oh);
        i64 x0 = cn_adaptive_start(ox, g.w, g.ow), x1 = cn_adaptive_end(ox, g.w, g.ow);
        double acc = 0;
        for (i64 iy = y0; iy < y1; iy++)
            for (i64 ix = x0; ix < x1; ix++) acc += load(x, pixel_at(x, p, g.c, g.h, g.w, iy, ix));
        store(y, o, (float)(acc / (double)((y1 - y0) * (x1 - x0))));
    }
}

/* the windows holding pixel i: from the first that ends after i, while they start at or before i */
extern "C" __global__ void adaptive_backward(cn_cu_maps g, cn_cu_act dy, cn_cu_act dx, int fresh)
{
    GRID_STRIDE(i, g.planes * g.h * g.w) {
        i64 p, iy, ix;
        pixel_of(dx, i, g.c, g.h, g.w, &p, &iy, &ix);
        float v = fresh ? 0.0f : load(dx, i);
        i64 oy0 = first_at_least(g.oh, iy + 1, [&](i64 o) { return cn_adaptive_end(o, g.h, g.oh); });
        i64 ox0 = first_at_least(g.ow, ix + 1, [&](i64 o) { return cn_adaptive_end(o, g.w, g.ow); });
        for (i64 oy = oy0; oy < g.oh && cn_adaptive_start(oy, g.h, g.oh) <= iy; oy++)
            for (i64 ox = ox0; ox < g.ow && cn_adaptive_start(ox, g.w, g.ow) <= ix; ox++) {
                i64 area = (cn_adaptive_end(oy, g.h, g.oh) - cn_adaptive_start(oy, g.h, g.oh)) *
                           (cn_adaptive_end(ox, g.w, g.ow) - cn_adaptive_start(ox, g.w, g.ow));
                v += (float)((double)load(dy, pixel_at(dy, p, g.c, g.oh, g.ow, oy, ox)) / (double)area);
            }
        store(dx, i, v);
    }
}

/* ---- pooling (src/ops/pool.c, pool_ref.h) ---- */

/* the window of output (oy, ox) as the reference has it (pool_ref.h: its cells inside the
 * input, dilation's gaps, avgpool's divisor with or without the padding) */
static __device__ cn_pool_window window_at(const cn_cu_pool &g, i64 oy, i64 ox) { return cn_pool_window_at(&g, oy, ox); }

/* one thread per output: max/min keep the first winner in scan order (its index in argmax,
 * -1 and y = 0 for a window of padding only); avg divides the sum (double) by the divisor.
 * relu: the window's values are relu(x) (a relu fused in front: its bits) */
extern "C" __global__ void pool_forward(cn_cu_pool g, int kind, cn_cu_act x, cn_cu_act y, int *argmax, int relu)
{
    GRID_STRIDE(o, g.n * g.c * g.oh * g.ow) {
        i64 nc, oy, ox;
        pixel_of(y, o, g.c, g.oh, g.ow, &nc, &oy, &ox);
        cn_pool_window win = window_at(g, oy, ox);
        if (kind == CN_CU_POOL_AVG) {
            double acc = 0;
            for (i64 iy = win.y0; iy < win.y1; iy += g.dh)
                for (i64 ix = win.x0; ix < win.x1; ix += g.dw) acc += load(x, pixel_at(x, nc, g.c, g.h, g.w, iy, ix));
            store(y, o, (float)(acc / (double)win.area));
            continue;
        }
        i64 best = -1;
        float bv = 0;
        for (i64 iy = win.y0; iy < win.y1; iy += g.dh)
            for (i64 ix = win.x0; ix < win.x1; ix += g.dw) {
                float v = load(x, pixel_at(x, nc, g.c, g.h, g.w, iy, ix));
                if (relu) v = v > 0 ? v : 0.0f;
                if (best < 0 || (kind == CN_CU_POOL_MAX ? v > bv : v < bv)) best = iy * g.w + ix, bv = v;
            }
        store(y, o, bv);
        argmax[o] = (int)best;
    }
}

/* one thread per input cell, gathering from the windows that hold it in the reference's order
 * (outputs in scan order), so no two threads write one cell. relu_x (a relu fused in front):
 * its input; dx is then its input's gradient, stored as the two kernels would (fresh, times
 * relu'(x) in double, as act_backward) */
extern "C" __global__ void pool_backward(cn_cu_pool g, int kind, cn_cu_act dy, const int *argmax, cn_cu_act dx,
                                         int fresh, cn_cu_act relu_x)
{
    GRID_STRIDE(i, g.n * g.c * g.h * g.w) {
        i64 nc, iy, ix;
        pixel_of(dx, i, g.c, g.h, g.w, &nc, &iy, &ix);
        float v = fresh ? 0.0f : load(dx, i);
        /* the outputs whose window holds this cell, in scan order: windows start at o*s - pad,
         * so o*s - pad + k*d = i for a window cell k. Without dilation they are a range of o
         * (o*s - pad <= i < o*s - pad + k); with it, each cell k is tried, counting down */
        i64 ty = iy + g.pad_t - g.kh + 1, tx = ix + g.pad_l - g.kw + 1;
        i64 oy0 = ty <= 0 ? 0 : (ty + g.sh - 1) / g.sh, ox0 = tx <= 0 ? 0 : (tx + g.sw - 1) / g.sw;
        i64 oy1 = (iy + g.pad_t) / g.sh, ox1 = (ix + g.pad_l) / g.sw;
        if (g.dh > 1) oy0 = 0, oy1 = g.kh - 1; /* then the range is of k */
        if (g.dw > 1) ox0 = 0, ox1 = g.kw - 1;
        if (g.dh == 1 && oy1 > g.oh - 1) oy1 = g.oh - 1;
        if (g.dw == 1 && ox1 > g.ow - 1) ox1 = g.ow - 1;
        for (i64 ay = oy0; ay <= oy1; ay++) {
            i64 oy = ay;
            if (g.dh > 1) { /* cell ky = kh - 1 - ay */
                i64 t = iy + g.pad_t - (g.kh - 1 - ay) * g.dh;
                if (t < 0 || t % g.sh || t / g.sh >= g.oh) continue;
                oy = t / g.sh;
            }
            for (i64 ax = ox0; ax <= ox1; ax++) {
                i64 ox = ax;
                if (g.dw > 1) {
                    i64 t = ix + g.pad_l - (g.kw - 1 - ax) * g.dw;
                    if (t < 0 || t % g.sw || t / g.sw >= g.ow) continue;
                    ox = t / g.sw;
                }
                i64 o = pixel_at(dy, nc, g.c, g.oh, g.ow, oy, ox);
                if (kind != CN_CU_POOL_AVG) {
                    if (argmax[o] == iy * g.w + ix) v += load(dy, o);
                } else {
                    v += (float)((double)load(dy, o) / (double)window_at(g, oy, ox).area);
                }
            }
        }
        store(dx, i, relu_x.p ? (float)((double)v * (load(relu_x, i) > 0 ? 1.0 : 0.0)) : v);
    }
}

/* ---- softmax over the channels of each (sample, position) (src/ops/softmax.c) ---- */

extern "C" __global__ void softmax_forward(const float *x, float *y, i64 n, i64 c, i64 hw)
{
    GRID_STRIDE(t, n * hw) {
        i64 base = t / hw * c * hw + t % hw;
        float mx = x[base];
        for (i64 k = 1; k < c; k++) mx = x[base + k * hw] > mx ? x[base + k * hw] : mx;
        double sum = 0;
        for (i64 k = 0; k < c; k++) sum += exp((double)x[base + k * hw] - mx);
        for (i64 k = 0; k < c; k++) y[base + k * hw] = (float)(exp((double)x[base + k * hw] - mx) / sum);
    }
}

extern "C" __global__ void softmax_backward(const float *y, const float *dy, float *dx, i64 n, i64 c, i64 hw,
                                            int fresh)
{
    GRID_STRIDE(t, n * hw) {
        i64 base = t / hw * c * hw + t % hw;
        double dot = 0;
        for (i64 k = 0; k < c; k++) dot += (double)dy[base + k * hw] * y[base + k * hw];
        for (i64 k = 0; k < c; k++) {
            i64 j = base + k * hw;
            dx[j] = accumulate(dx, j, fresh, (float)((double)y[j] * ((double)dy[j] - dot)));
        }
    }
}

/* ---- batch norm (src/ops/batchnorm.c; aux: mode, mean, 1/sqrt(var+eps)) ---- */

/* Batch norm in parts, so that every SM has work whatever the channel count: a channel's
 * n * hw values are cut into `chunks` runs (bn_chunks in ops.c, from the shape alone), one block
 * each, whose partial sums (double) go to part[ch * chunks + j]; one thread per channel adds
 * them up in order and keeps what the element-wise pass reads (double: the reference's values);
 * then a grid-stride pass over every value. The same sums for the same shape every run. */

/* block b's channel and run of values [lo, hi) (also channel_part's) */
static __device__ void channel_run(i64 count, i64 chunks, i64 *ch, i64 *lo, i64 *hi)
{
    i64 per = (count + chunks - 1) / chunks, j = blockIdx.x % chunks;
    *ch = blockIdx.x / chunks, *lo = j * per, *hi = *lo + per < count ? *lo + per : count;
}

static __device__ double run_total(const double *part, i64 ch, i64 chunks)
{
    double s = 0;
    for (i64 j = 0; j < chunks; j++) s += part[ch * chunks + j];
    return s;
}

/* One pass over x: s1[b], s2[b] = run b's sums of d and d^2, d = x - its channel's first value
 * (a shift near the mean, so that the variance (s2 - s1^2 / n) / n keeps its digits in double) */
static __device__ float bn_shift(cn_cu_act x, i64 ch, i64 hw) { return load(x, x.nhwc ? ch : ch * hw); }

extern "C" __global__ void bn_sums(cn_cu_act x, double *s1, double *s2, i64 n, i64 c, i64 hw, i64 chunks)
{
    i64 ch, lo, hi;
    channel_run(n * hw, chunks, &ch, &lo, &hi);
    double shift = bn_shift(x, ch, hw), a = 0, b = 0;
    for (i64 t = lo + threadIdx.x; t < hi; t += THREADS) {
        double d = load(x, (t / hw * c + ch) * hw + t % hw) - shift;
        a += d, b += d * d;
    }
    a = block_sum(a), b = block_sum(b);
    if (threadIdx.x == 0) s1[blockIdx.x] = a, s2[blockIdx.x] = b;
}

/* the channel's mean and biased variance from bn_sums' runs */
static __device__ void bn_moments(cn_cu_act x, const double *s1, const double *s2, i64 ch, i64 hw, i64 chunks,
                                  i64 count, double *m, double *v)
{
    double n = (double)(count > 0 ? count : 1), a = run_total(s1, ch, chunks), b = run_total(s2, ch, chunks);
    *m = bn_shift(x, ch, hw) + a / n;
    *v = (b - a * a / n) / n;
    if (*v < 0) *v = 0; /* rounding below an exact 0 */
}

/* NHWC: block b's run of pixels [lo, hi) of p, in `chunks` runs */
static __device__ void pixel_run(i64 p, i64 chunks, i64 *lo, i64 *hi)
{
    i64 per = (p + chunks - 1) / chunks;
    *lo = blockIdx.x * per, *hi = *lo + per < p ? *lo + per : p;
}

/* The runs' sums of an NHWC map, every channel at once (consecutive threads on consecutive
 * channels, so that the reads coalesce): per_channel(ch) gives, once per channel a thread
 * takes, the add(q, &a, &b) that adds the terms of place q; run b's sums of channel ch go to
 * pa[ch * chunks + b] and pb[...] (pb NULL: none), where the channel-major runs of bn_sums
 * would put them; a channel's lanes added in lane order. */
template <class F> static __device__ void nhwc_runs(i64 p, i64 c, i64 chunks, double *pa, double *pb, F per_channel)
{
    __shared__ double sa[THREADS], sb[THREADS];
    i64 lo, hi, at;
    pixel_run(p, chunks, &lo, &hi);
    if (c >= THREADS) { /* a thread a channel, in turns */
        for (i64 ch = threadIdx.x; ch < c; ch += THREADS) {
            double a = 0, b = 0;
            auto add = per_channel(ch);
            for (i64 q = lo; q < hi; q++) add(q * c + ch, &a, &b);
            at = ch * chunks + blockIdx.x;
            pa[at] = a;
            if (pb) pb[at] = b;
        }
        return;
    }
    i64 lanes = THREADS / c, ch = threadIdx.x % c, lane = threadIdx.x / c;
    double a = 0, b = 0;
    auto add = per_channel(ch);
    if (lane < lanes)
        for (i64 q = lo + lane; q < hi; q += lanes) add(q * c + ch, &a, &b);
    sa[threadIdx.x] = a, sb[threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.x >= c) return;
    for (i64 l = 1; l < lanes; l++) a += sa[l * c + ch], b += sb[l * c + ch];
    at = ch * chunks + blockIdx.x;
    pa[at] = a;
    if (pb) pb[at] = b;
}

extern "C" __global__ void bn_sums_nhwc(cn_cu_act x, double *s1, double *s2, i64 n, i64 c, i64 hw, i64 chunks)
{
    nhwc_runs(n * hw, c, chunks, s1, s2, [&](i64 ch) {
        double shift = bn_shift(x, ch, hw);
        return [=](i64 q, double *a, double *b) {
            double d = load(x, q) - shift;
            *a += d, *b += d * d;
        };
    });
}

/* one thread per channel: the mean and inv of the batch (training) or of the running statistics,
 * into stat[2 ch], stat[2 ch + 1] and aux; the running statistics moved (training, not halted) */
extern "C" __global__ void bn_stats(cn_cu_act x, const double *sums, const double *sq, const double *whole,
                                    double *stat, float *rmean, float *rvar, void *aux, i64 n, i64 c, i64 hw, i64 chunks,
                                    int training, double eps, double mom, const int *halt)
{
    float *amean = (float *)((unsigned char *)aux + 8), *ainv = amean + c;
    GRID_STRIDE(ch, c) {
        double m = rmean[ch], v = rvar[ch];
        i64 count = n * hw;
        if (training && whole) /* one shard of a batch: the whole batch's moments (bn_stats_merge's) */
            m = whole[ch], v = whole[c + ch], count = (i64)whole[2 * c + ch];
        else if (training) bn_moments(x, sums, sq, ch, hw, chunks, count, &m, &v);
        if (training) {
            double unbiased = count > 1 ? v * (double)count / (double)(count - 1) : v;
            if (!*halt) { /* a step in flight stopped (step_gate): they stand still */
                rmean[ch] = (float)((1 - mom) * rmean[ch] + mom * m);
                rvar[ch] = (float)((1 - mom) * rvar[ch] + mom * unbiased);
            }
        }
        double inv = 1.0 / sqrt(v + eps);
        stat[2 * ch] = m, stat[2 * ch + 1] = inv;
        amean[ch] = (float)m;
        ainv[ch] = (float)inv;
        if (ch == 0) *(i64 *)aux = training != 0;
    }
}

/* y = gamma (x - mean) inv + beta per channel, then relu where asked (a relu fused after it:
 * act_forward's bits) */
extern "C" __global__ void bn_apply(cn_cu_act x, cn_cu_act y, const float *gamma, const float *beta, const double *stat,
                                    i64 n, i64 c, i64 hw, int relu)
{
    GRID_STRIDE(k, n * c * hw) {
        i64 ch = channel_at(x, k, c, hw);
        double g = gamma ? gamma[ch] : 1, b = beta ? beta[ch] : 0; /* affine=no: none */
        float o = (float)(g * ((double)load(x, k) - stat[2 * ch]) * stat[2 * ch + 1] + b);
        store(y, k, relu && !(o > 0) ? 0.0f : o);
    }
}

/* dy at k, or (relu_y given: a relu after the batch norm, its backward folded in) the relu's
 * output gradient where its output is above 0, else 0: the relu's backward's values */
static __device__ float bn_dy(cn_cu_act dy, cn_cu_act relu_y, i64 k)
{
    return !relu_y.p || load(relu_y, k) > 0 ? load(dy, k) : 0.0f;
}

/* s1[b], s2[b] = run b's sums of dy and of dy * xh (xh from forward's aux) */
extern "C" __global__ void bn_grad_sums(cn_cu_act x, cn_cu_act dy, cn_cu_act relu_y, const void *aux,
                                        double *s1, double *s2, i64 n, i64 c, i64 hw, i64 chunks)
{
    const float *amean = (const float *)((const unsigned char *)aux + 8), *ainv = amean + c;
    i64 ch, lo, hi;
    channel_run(n * hw, chunks, &ch, &lo, &hi);
    double m = amean[ch], inv = ainv[ch], a = 0, b = 0;
    for (i64 t = lo + threadIdx.x; t < hi; t += THREADS) {
        i64 k = (t / hw * c + ch) * hw + t % hw;
        float d = bn_dy(dy, relu_y, k);
        a += d;
        b += (double)d * ((double)load(x, k) - m) * inv;
    }
    a = block_sum(a), b = block_sum(b);
    if (threadIdx.x == 0) s1[blockIdx.x] = a, s2[blockIdx.x] = b;
}

extern "C" __global__ void bn_grad_sums_nhwc(cn_cu_act x, cn_cu_act dy, cn_cu_act relu_y, const void *aux,
                                             double *s1, double *s2, i64 n, i64 c, i64 hw, i64 chunks)
{
    const float *amean = (const float *)((const unsigned char *)aux + 8), *ainv = amean + c;
    nhwc_runs(n * hw, c, chunks, s1, s2, [&](i64 ch) {
        double m = amean[ch], inv = ainv[ch];
        return [=](i64 q, double *a, double *b) {
            float d = bn_dy(dy, relu_y, q);
            *a += d, *b += (double)d * ((double)load(x, q) - m) * inv;
        };
    });
}

/* one thread per channel: dgamma += sum dy * xh, dbeta += sum dy (this call's values); stat =
 * what dx needs, from the whole batch's sums where a shard's call has them (whole) */
extern "C" __global__ void bn_grad_stats(const double *s1, const double *s2, const double *whole, const float *gamma,
                                         const void *aux, float *dgamma, float *dbeta, double *stat, i64 n, i64 c, i64 hw,
                                         i64 chunks)
{
    int batch_stats = *(const i64 *)aux != 0;
    GRID_STRIDE(ch, c) {
        double sdy = run_total(s1, ch, chunks), sdyxh = run_total(s2, ch, chunks), count = (double)(n * hw);
        if (dgamma) dgamma[ch] += (float)sdyxh, dbeta[ch] += (float)sdy;
        if (whole) sdy = whole[ch], sdyxh = whole[c + ch], count = whole[2 * c + ch];
        double g = gamma ? gamma[ch] : 1;
        stat[3 * ch] = g;
        stat[3 * ch + 1] = batch_stats ? g * sdy / count : 0;
        stat[3 * ch + 2] = batch_stats ? g * sdyxh / count : 0;
    }
}

/* a shard's statistics (src/ops/batchnorm.c's bn_stats, three runs of C): forward the mean, the
 * sum of squared deviations and the count from bn_sums' runs (x: the shift); backward the sums
 * of dy and of dy * xh from bn_grad_sums' runs, and the count */
extern "C" __global__ void bn_shard_stats(cn_cu_act x, const double *a, const double *b, int backward, double *out,
                                          i64 n, i64 c, i64 hw, i64 chunks)
{
    GRID_STRIDE(ch, c) {
        double count = (double)(n * hw), s1, s2;
        if (backward) s1 = run_total(a, ch, chunks), s2 = run_total(b, ch, chunks);
        else bn_moments(x, a, b, ch, hw, chunks, n * hw, &s1, &s2), s2 *= count; /* the sum of squared deviations */
        out[ch] = s1, out[c + ch] = s2, out[2 * c + ch] = count;
    }
}

/* dx (+)= inv (g dy - mg - xh mgxh) */
extern "C" __global__ void bn_grad_apply(cn_cu_act x, cn_cu_act dy, cn_cu_act relu_y, const void *aux,
                                         const double *stat, cn_cu_act dx, i64 n, i64 c, i64 hw, int fresh)
{
    const float *amean = (const float *)((const unsigned char *)aux + 8), *ainv = amean + c;
    GRID_STRIDE(k, n * c * hw) {
        i64 ch = channel_at(x, k, c, hw);
        double m = amean[ch], inv = ainv[ch], xh = ((double)load(x, k) - m) * inv;
        float d = bn_dy(dy, relu_y, k);
        gather(dx, k, fresh, (float)(inv * (stat[3 * ch] * d - stat[3 * ch + 1] - xh * stat[3 * ch + 2])));
    }
}
/* ---- layernorm, groupnorm, instancenorm (src/ops/norm.c): block b of batch x groups
 * normalises group b % groups of sample b / groups, its cpg channels of hw values (per);
 * gamma (NULL: affine=no), then beta, one per channel or (per_value, layernorm) one per value of
 * a sample: `scales` of each. aux (N,G,2): mean, inv = 1/sqrt(var + eps) as floats ---- */

static __device__ i64 gn_scale(i64 b, i64 i, i64 groups, i64 cpg, i64 hw, int per_value)
{
    i64 ch = b % groups * cpg + i / hw; /* the channel within its sample */
    return per_value ? ch * hw + i % hw : ch;
}

/* the place of value i (channel-major, as NCHW holds it) of group b in t's layout */
static __device__ i64 gn_at(cn_cu_act t, i64 b, i64 i, i64 groups, i64 cpg, i64 hw)
{
    return place(t, b / groups, b % groups * cpg + i / hw, i % hw, groups * cpg, hw);
}

extern "C" __global__ void gn_forward(cn_cu_act x, cn_cu_act y, const float *gamma, float *aux, i64 groups, i64 cpg,
                                      i64 hw, int per_value, double eps)
{
    i64 b = blockIdx.x, per = cpg * hw, scales = per_value ? groups * per : groups * cpg;
    double s = 0;
    for (i64 i = threadIdx.x; i < per; i += THREADS) s += load(x, gn_at(x, b, i, groups, cpg, hw));
    double m = block_sum(s) / (double)per, q = 0;
    for (i64 i = threadIdx.x; i < per; i += THREADS) {
        double d = (double)load(x, gn_at(x, b, i, groups, cpg, hw)) - m;
        q += d * d;
    }
    double inv = 1.0 / sqrt(block_sum(q) / (double)per + eps);
    for (i64 i = threadIdx.x; i < per; i += THREADS) {
        i64 k = gn_scale(b, i, groups, cpg, hw, per_value), at = gn_at(x, b, i, groups, cpg, hw);
        double xh = ((double)load(x, at) - m) * inv;
        store(y, at, (float)(gamma ? gamma[k] * xh + gamma[scales + k] : xh));
    }
    if (threadIdx.x == 0) aux[2 * b] = (float)m, aux[2 * b + 1] = (float)inv;
}

/* dx (+)= inv (g - mean(g) - xh mean(g xh)), g = gamma dy, over group b */
extern "C" __global__ void gn_backward(cn_cu_act x, cn_cu_act dy, const float *gamma, const float *aux, cn_cu_act dx,
                                       i64 groups, i64 cpg, i64 hw, int per_value, int fresh)
{
    i64 b = blockIdx.x, per = cpg * hw;
    double m = aux[2 * b], inv = aux[2 * b + 1], sg = 0, sgxh = 0;
    for (i64 i = threadIdx.x; i < per; i += THREADS) {
        i64 k = gn_at(x, b, i, groups, cpg, hw);
        double xh = ((double)load(x, k) - m) * inv, d = load(dy, k);
        double g = gamma ? gamma[gn_scale(b, i, groups, cpg, hw, per_value)] * d : d;
        sg += g, sgxh += g * xh;
    }
    sg = block_sum(sg), sgxh = block_sum(sgxh);
    for (i64 i = threadIdx.x; i < per; i += THREADS) {
        i64 k = gn_at(x, b, i, groups, cpg, hw);
        double xh = ((double)load(x, k) - m) * inv, d = load(dy, k);
        double g = gamma ? gamma[gn_scale(b, i, groups, cpg, hw, per_value)] * d : d;
        gather(dx, k, fresh, (float)(inv * (g - sg / (double)per - xh * sgxh / (double)per)));
    }
}

/* the scales' gradients, a float add per sample in sample order as the reference: per channel
 * (one block a channel: dgamma += the sample's sum of dy xh, dbeta += of dy, in double) ... */
extern "C" __global__ void gn_param_channels(cn_cu_act x, cn_cu_act dy, const float *aux, float *dgamma, i64 n,
                                             i64 groups, i64 cpg, i64 hw)
{
    i64 ch = blockIdx.x, c = groups * cpg;
    for (i64 s = 0; s < n; s++) {
        i64 b = s * groups + ch / cpg;
        double m = aux[2 * b], inv = aux[2 * b + 1], sdy = 0, sdyxh = 0;
        for (i64 j = threadIdx.x; j < hw; j += THREADS) {
            i64 k = place(x, s, ch, j, c, hw);
            float d = load(dy, k);
            sdy += d, sdyxh += d * (((double)load(x, k) - m) * inv);
        }
        sdy = block_sum(sdy), sdyxh = block_sum(sdyxh);
        if (threadIdx.x == 0) dgamma[ch] += (float)sdyxh, dgamma[c + ch] += (float)sdy;
    }
}

/* ... or per value (layernorm: one group, c x hw values a sample, value v channel-major; one
 * thread a value) */
extern "C" __global__ void gn_param_values(cn_cu_act x, cn_cu_act dy, const float *aux, float *dgamma, i64 n, i64 c,
                                           i64 hw)
{
    i64 count = c * hw;
    GRID_STRIDE(v, count) {
        for (i64 s = 0; s < n; s++) {
            i64 k = place(x, s, v / hw, v % hw, c, hw);
            double xh = ((double)load(x, k) - aux[2 * s]) * aux[2 * s + 1];
            float d = load(dy, k);
            dgamma[v] += (float)(d * xh), dgamma[count + v] += d;
        }
    }
}

/* ---- layernorm over=channels: each (sample, position) over its c channels, one thread a
 * position; gamma then beta per channel; aux (N,HW,2): mean, inv as floats. The sums run over
 * the channels in order in double, as the reference's ---- */

extern "C" __global__ void lnc_forward(cn_cu_act x, cn_cu_act y, const float *gamma, float *aux, i64 n, i64 c, i64 hw,
                                       double eps)
{
    GRID_STRIDE(q, n * hw) {
        i64 s = q / hw, p = q % hw;
        double m = 0, v = 0;
        for (i64 k = 0; k < c; k++) m += load(x, place(x, s, k, p, c, hw));
        m /= (double)c;
        for (i64 k = 0; k < c; k++) {
            double d = (double)load(x, place(x, s, k, p, c, hw)) - m;
            v += d * d;
        }
        double inv = 1.0 / sqrt(v / (double)c + eps);
        for (i64 k = 0; k < c; k++) {
            i64 at = place(x, s, k, p, c, hw);
            double xh = ((double)load(x, at) - m) * inv;
            store(y, at, (float)(gamma ? gamma[k] * xh + gamma[c + k] : xh));
        }
        aux[2 * q] = (float)m, aux[2 * q + 1] = (float)inv;
    }
}

/* dx (+)= inv (g - mean(g) - xh mean(g xh)) over the position's channels, g = gamma dy */
extern "C" __global__ void lnc_backward(cn_cu_act x, cn_cu_act dy, const float *gamma, const float *aux, cn_cu_act dx,
                                        i64 n, i64 c, i64 hw, int fresh)
{
    GRID_STRIDE(q, n * hw) {
        i64 s = q / hw, p = q % hw;
        double m = aux[2 * q], inv = aux[2 * q + 1], sg = 0, sgxh = 0;
        for (int pass = 0; pass < 2; pass++)
            for (i64 k = 0; k < c; k++) {
                i64 at = place(x, s, k, p, c, hw);
                double xh = ((double)load(x, at) - m) * inv, d = load(dy, at), g = gamma ? gamma[k] * d : d;
                if (pass == 0) sg += g, sgxh += g * xh;
                else gather(dx, at, fresh, (float)(inv * (g - sg / (double)c - xh * sgxh / (double)c)));
            }
    }
}

/* dgamma[ch] += each sample's sum of dy xh, dbeta[ch] += of dy (double), a block a channel,
 * the samples in order as the reference */
extern "C" __global__ void lnc_param(cn_cu_act x, cn_cu_act dy, const float *aux, float *dgamma, i64 n, i64 c, i64 hw)
{
    i64 ch = blockIdx.x;
    for (i64 s = 0; s < n; s++) {
        double sdy = 0, sdyxh = 0;
        for (i64 j = threadIdx.x; j < hw; j += THREADS) {
            i64 k = place(x, s, ch, j, c, hw), q = s * hw + j;
            float d = load(dy, k);
            sdy += d, sdyxh += d * (((double)load(x, k) - aux[2 * q]) * aux[2 * q + 1]);
        }
        sdy = block_sum(sdy), sdyxh = block_sum(sdyxh);
        if (threadIdx.x == 0) dgamma[ch] += (float)sdyxh, dgamma[c + ch] += (float)sdy;
    }
}

/* ---- dropout: the mask is drawn on the host from the net's RNG, as the reference draws it ---- */

/* the masks are in NCHW order (the host draws them so); c, hw: the map's, for an NHWC one */
extern "C" __global__ void dropout_forward(cn_cu_act x, const unsigned char *mask, cn_cu_act y, i64 n, float scale, i64 c,
                                           i64 hw)
{
    GRID_STRIDE(i, n) store(y, i, mask[x.nhwc ? nchw_of(i, c, hw) : i] ? load(x, i) * scale : 0.0f);
}

/* mode: the aux's head, which forward (or the host's draw) wrote: 0 after an evaluation pass */
extern "C" __global__ void dropout_backward(cn_cu_act dy, const i64 *mode, cn_cu_act dx, i64 n, float scale, int fresh,
                                            i64 c, i64 hw)
{
    const unsigned char *mask = (const unsigned char *)mode + 8; /* CN_DROPOUT_AUX_HEAD */
    int masked = *mode != 0;
    GRID_STRIDE(i, n) {
        if (!masked) gather(dx, i, fresh, load(dy, i));
        else if (mask[dy.nhwc ? nchw_of(i, c, hw) : i]) gather(dx, i, fresh, load(dy, i) * scale);
        else if (fresh) store(dx, i, 0.0f);
    }
}

/* ---- bias: out[ch] += sum over n, positions of dy (double), one block per channel; y += b ---- */

extern "C" __global__ void channel_sum(cn_cu_act dy, float *out, i64 n, i64 c, i64 hw)
{
    i64 ch = blockIdx.x, count = n * hw;
    double s = 0;
    for (i64 t = threadIdx.x; t < count; t += THREADS) s += load(dy, (t / hw * c + ch) * hw + t % hw);
    s = block_sum(s);
    if (threadIdx.x == 0) out[ch] += (float)s;
}

/* the same in runs (ops.c's channel_runs), for maps too large for a block per channel: part[b]
 * = the sum of block b's run, then out[ch] += its channel's runs in order */
extern "C" __global__ void channel_part(cn_cu_act dy, double *part, i64 n, i64 c, i64 hw, i64 chunks)
{
    i64 ch, lo, hi;
    channel_run(n * hw, chunks, &ch, &lo, &hi);
    double s = 0;
    for (i64 t = lo + threadIdx.x; t < hi; t += THREADS) s += load(dy, (t / hw * c + ch) * hw + t % hw);
    s = block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* the same of an NHWC map, a run of pixels a block (nhwc_runs; part channel-major as above) */
extern "C" __global__ void channel_part_nhwc(cn_cu_act dy, double *part, i64 n, i64 c, i64 hw, i64 chunks)
{
    nhwc_runs(n * hw, c, chunks, part, (double *)0, [&](i64) { return [=](i64 q, double *a, double *) { *a += load(dy, q); }; });
}

extern "C" __global__ void channel_total(const double *part, float *out, i64 c, i64 chunks)
{
    GRID_STRIDE(ch, c) out[ch] += (float)run_total(part, ch, chunks);
}

/* y (N, C, HW) += b per channel (b NULL: nothing), then relu where asked (a relu fused after a
 * conv or dense layer: act_forward's bits) */
extern "C" __global__ void bias_relu(cn_cu_act y, const float *b, i64 n, i64 c, i64 hw, int relu)
{
    GRID_STRIDE(i, n * c * hw) {
        float v = b ? load(y, i) + b[channel_at(y, i, c, hw)] : load(y, i);
        store(y, i, relu && !(v > 0) ? 0.0f : v);
    }
}

/* ---- bf16 staging (conv.c, dense.c): the operands of a product rounded to bf16 (bf16_of) and
 * back; cuDNN's in NHWC, the layout of its tensor-core kernels (float activations are NCHW; those
 * stored as bf16 are NHWC already, and cuDNN takes them as they are) ---- */

/* where place q of x (an (N, C, HW) tensor in its layout) lies in a staged copy in layout nhwc */
static __device__ i64 staged_at(cn_cu_act x, i64 q, i64 c, i64 hw, int nhwc)
{
    if (x.nhwc == nhwc) return q;
    return nhwc ? nhwc_at(q, c, hw) : nchw_of(q, c, hw);
}

/* y (N, C, HW) = (add: y +) the staged src, plus b per channel (NULL: none), then relu where
 * asked (bias_relu's bits) */
extern "C" __global__ void bf16_unpack(const unsigned short *src, cn_cu_act y, const float *b, i64 n, i64 c, i64 hw,
                                       int nhwc, int add, int relu)
{
    GRID_STRIDE(q, n * c * hw) {
        float v = float_of(src[staged_at(y, q, c, hw, nhwc)]);
        if (add) v = load(y, q) + v;
        if (b) v = v + b[channel_at(y, q, c, hw)];
        store(y, q, relu && !(v > 0) ? 0.0f : v);
    }
}

/* ---- direct convolution, for the geometries cuDNN cannot take (asymmetric padding) or when
 * cuDNN is missing (src/ops/conv.c; sums in double); a deconv runs them with its roles swapped
 * (conv.c: its forward is conv_backward_data, its input gradient conv_forward) ---- */

/* y = (add 1: y +) the convolution of x with w, plus b (NULL: none); add: a deconv's input gradient */
extern "C" __global__ void conv_forward(cn_cu_conv g, const float *x, const float *w, const float *b, float *y, int add)
{
    i64 cin_g = g.cin / g.groups, cout_g = g.cout / g.groups, plane = g.oh * g.ow;
    GRID_STRIDE(o, g.n * g.cout * plane) {
        i64 nb = o / (g.cout * plane), co = o / plane % g.cout, oy = o % plane / g.ow, ox = o % g.ow;
        i64 c0 = co / cout_g * cin_g;
        double acc = b ? b[co] : 0;
        for (i64 ci = 0; ci < cin_g; ci++) {
            const float *xp = x + (nb * g.cin + c0 + ci) * g.h * g.w;
            const float *wp = w + (co * cin_g + ci) * g.kh * g.kw;
            for (i64 ky = 0; ky < g.kh; ky++) {
                i64 iy = oy * g.sh - g.pad_t + ky * g.dh;
                if (iy < 0 || iy >= g.h) continue;
                for (i64 kx = 0; kx < g.kw; kx++) {
                    i64 ix = ox * g.sw - g.pad_l + kx * g.dw;
                    if (ix >= 0 && ix < g.w) acc += (double)wp[ky * g.kw + kx] * xp[iy * g.w + ix];
                }
            }
        }
        y[o] = add ? y[o] + (float)acc : (float)acc;
    }
}

/* one thread per input cell: the taps that read it */
extern "C" __global__ void conv_backward_data(cn_cu_conv g, const float *w, const float *dy, float *dx, int fresh)
{
    i64 cin_g = g.cin / g.groups, cout_g = g.cout / g.groups, plane = g.h * g.w, oplane = g.oh * g.ow;
    GRID_STRIDE(i, g.n * g.cin * plane) {
        i64 nb = i / (g.cin * plane), ci = i / plane % g.cin, iy = i % plane / g.w, ix = i % g.w;
        i64 grp = ci / cin_g, cig = ci % cin_g;
        double acc = 0;
        for (i64 co = grp * cout_g; co < (grp + 1) * cout_g; co++) {
            const float *gp = dy + (nb * g.cout + co) * oplane;
            const float *wp = w + (co * cin_g + cig) * g.kh * g.kw;
            for (i64 ky = 0; ky < g.kh; ky++) {
                i64 ty = iy + g.pad_t - ky * g.dh; /* = oy * sh */
                if (ty < 0 || ty % g.sh || ty / g.sh >= g.oh) continue;
                for (i64 kx = 0; kx < g.kw; kx++) {
                    i64 tx = ix + g.pad_l - kx * g.dw;
                    if (tx < 0 || tx % g.sw || tx / g.sw >= g.ow) continue;
                    acc += (double)wp[ky * g.kw + kx] * gp[ty / g.sh * g.ow + tx / g.sw];
                }
            }
        }
        dx[i] = accumulate(dx, i, fresh, (float)acc);
    }
}

/* one block per weight: dw += the sum over samples and positions of dy * x */
extern "C" __global__ void conv_backward_filter(cn_cu_conv g, const float *x, const float *dy, float *dw)
{
    i64 cin_g = g.cin / g.groups, cout_g = g.cout / g.groups, plane = g.oh * g.ow;
    i64 widx = blockIdx.x, kx = widx % g.kw, ky = widx / g.kw % g.kh, cig = widx / (g.kw * g.kh) % cin_g,
        co = widx / (g.kw * g.kh * cin_g);
    i64 ci = co / cout_g * cin_g + cig;
    double acc = 0;
    for (i64 t = threadIdx.x; t < g.n * plane; t += THREADS) {
        i64 nb = t / plane, oy = t % plane / g.ow, ox = t % g.ow;
        i64 iy = oy * g.sh - g.pad_t + ky * g.dh, ix = ox * g.sw - g.pad_l + kx * g.dw;
        if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
            acc += (double)dy[(nb * g.cout + co) * plane + t % plane] * x[((nb * g.cin + ci) * g.h + iy) * g.w + ix];
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) dw[widx] += (float)acc;
}

/* ---- the step: the gradient's sum of squares, the optimizer's update (src/train/optim.c) ---- */

/* part[b] = sum of g^2 over block b's run of values (CN_CU_NORM_BLOCKS blocks) */
extern "C" __global__ void sum_squares(const float *g, i64 n, double *part)
{
    i64 per = (n + CN_CU_NORM_BLOCKS - 1) / CN_CU_NORM_BLOCKS, lo = blockIdx.x * per;
    i64 hi = lo + per < n ? lo + per : n;
    double s = 0;
    for (i64 i = lo + threadIdx.x; i < hi; i += THREADS) s += (double)g[i] * g[i];
    s = block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* the gradient the rule sees: clipped, plus the L1 term and (but for AdamW) the L2 term */
static __device__ double grad_of(const cn_cu_update &a, float g, double w, int decoupled)
{
    double gi = g * a.clip;
    if (a.l1 > 0) gi += a.l1 * (double)((w > 0) - (w < 0));
    if (!decoupled) gi += a.decay * w;
    return gi;
}

/* A step in flight's gate (one block): the loss's and the norm's partial sums (page-locked, read
 * once each in parallel) added in block order, as the host adds them; gate[0] = the clip factor
 * (optim.c's clip_grad_norm_ rule), gate[1] = 1 when both are finite and no step before stopped,
 * else 0 and *halt = 1 */
extern "C" __global__ void step_gate(const double *loss_part, const double *norm_part, double clip_norm, double *gate,
                                     int *halt)
{
    __shared__ double lp[CN_CU_LOSS_BLOCKS], np[CN_CU_NORM_BLOCKS];
    if (threadIdx.x < CN_CU_LOSS_BLOCKS) lp[threadIdx.x] = loss_part[threadIdx.x];
    if (threadIdx.x < CN_CU_NORM_BLOCKS) np[threadIdx.x] = norm_part[threadIdx.x];
    __syncthreads();
    if (threadIdx.x != 0) return;
    double loss = 0, sq = 0;
    for (int b = 0; b < CN_CU_LOSS_BLOCKS; b++) loss += lp[b];
    for (int b = 0; b < CN_CU_NORM_BLOCKS; b++) sq += np[b];
    double norm = sqrt(sq);
    int ok = isfinite(loss) && isfinite(norm) && !*halt;
    gate[0] = clip_norm > 0 && clip_norm / (norm + 1e-6) < 1.0 ? clip_norm / (norm + 1e-6) : 1.0;
    gate[1] = ok;
    if (!ok) *halt = 1;
}

/* gate (NULL: a.clip as given): a step in flight's, which leaves the values alone when not 1 */
extern "C" __global__ void update(int kind, cn_cu_update a, float *w, const float *g, float *s1, float *s2, i64 n,
                                  const double *gate)
{
    if (gate) {
        if (gate[1] != 1.0) return;
        a.clip = gate[0];
    }
    GRID_STRIDE(i, n) {
        double wi = w[i];
        if (kind == CN_CU_SGD) {
            w[i] = (float)(wi - a.lr * grad_of(a, g[i], wi, 0));
        } else if (kind == CN_CU_MOMENTUM || kind == CN_CU_NESTEROV) {
            double gi = grad_of(a, g[i], wi, 0);
            float vi = (float)(a.momentum * s1[i] + gi);
            s1[i] = vi;
            w[i] = (float)(wi - a.lr * (kind == CN_CU_NESTEROV ? gi + a.momentum * vi : vi));
        } else {
            int adamw = kind == CN_CU_ADAMW;
            double gi = grad_of(a, g[i], wi, adamw);
            if (adamw) wi *= 1.0 - a.lr * a.decay;
            float mi = (float)(a.beta1 * s1[i] + (1.0 - a.beta1) * gi);
            float vi = (float)(a.beta2 * s2[i] + (1.0 - a.beta2) * gi * gi);
            s1[i] = mi, s2[i] = vi;
            w[i] = (float)(wi - a.lr_bc1 * mi / (sqrt((double)vi) / a.sqrt_bc2 + a.eps));
        }
    }
}

/* ---- the step's loss and accuracy count: src/train/step_row.h's rows, the host's partition ----
 * Block b of CN_CU_LOSS_BLOCKS takes rows [b per, (b + 1) per) (per = ceil(rows / blocks), as
 * loss.c's blocks); part[b] is their sum, which the host adds up in block order. */

static __device__ void row_range(i64 rows, i64 *lo, i64 *hi)
{
    i64 per = (rows + CN_CU_LOSS_BLOCKS - 1) / CN_CU_LOSS_BLOCKS;
    *lo = blockIdx.x * per;
    *hi = *lo + per < rows ? *lo + per : rows;
}

/* part[b] = the loss of block b's rows, NaN where a row's loss is not defined (a bad column) or a
 * prediction or gradient value is not finite (the host then says which); g: the gradient, or NULL */
extern "C" __global__ void loss_rows(int kind, const float *t, const float *p, i64 rows, i64 cols, double smoothing,
                                     double scale, float *g, double *part)
{
    i64 lo, hi;
    row_range(rows, &lo, &hi);
    double s = 0;
    for (i64 r = lo + threadIdx.x; r < hi; r += THREADS) {
        double v = 0;
        int bad = cn_row_loss(kind, t + r * cols, p + r * cols, cols, smoothing, scale, &v, g ? g + r * cols : NULL) >= 0;
        for (i64 j = r * cols; j < (r + 1) * cols; j++) bad |= !isfinite(p[j]) || (g && !isfinite(g[j]));
        s += bad ? nan("") : v;
    }
    s = block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* part[b] = how many of block b's rows have their largest value (the first of equals) at their
 * label: labels[r], or (labels NULL) the column where the one-hot row onehot[r] holds its 1 */
extern "C" __global__ void count_correct(const float *y, const int *labels, const float *onehot, i64 rows, i64 cols,
                                         double *part)
{
    i64 lo, hi;
    row_range(rows, &lo, &hi);
    double s = 0;
    for (i64 r = lo + threadIdx.x; r < hi; r += THREADS) {
        i64 best = cn_row_best(y + r * cols, cols);
        s += labels ? best == labels[r] : onehot[r * cols + best] == 1.0f;
    }
    s = block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* best[r] = the column of row r's largest value (the first of equals) */
extern "C" __global__ void best_rows(const float *y, i64 rows, i64 cols, int *best)
{
    GRID_STRIDE(r, rows) best[r] = (int)cn_row_best(y + r * cols, cols);
}

/* ---- a batch from the data set resident on the GPU (src/data/batch.c's values) ---- */

/* one thread per value of x (n x c x h x w): sample i's draw, its channel's normalisation */
extern "C" __global__ void make_batch(cn_cu_batch b, const cn_batch_draw *draws, i64 n, float *x)
{
    i64 plane = b.h * b.w, per = b.c * plane;
    GRID_STRIDE(o, n * per) {
        i64 i = o / per, c = o % per / plane, y = o % plane / b.w, xo = o % b.w;
        const cn_batch_draw *d = &draws[i];
        i64 at = (d->index * b.c + c) * plane; /* the image's channel plane */
        float s = b.std[c] != 0 ? b.std[c] : 1.0f;
        x[o] = cn_batch_value(b.images ? b.images + at : NULL, b.pixels ? b.pixels + at : NULL, b.h, b.w, b.pad, d, y, xo,
                              b.mean[c], s);
    }
}
