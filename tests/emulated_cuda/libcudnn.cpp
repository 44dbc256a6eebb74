/* libcudnn.cpp — an emulated cuDNN 9 (libcudnn.so.9) for the tests without a GPU (see
 * libcuda.cpp): the legacy convolution calls the CUDA backend makes (src/backend/cuda/conv.c),
 * as cuDNN's documentation defines them — cross-correlation with padding, strides, dilation and
 * groups; NCHW or NHWC tensors and filters (NHWC filters: k, h, w, c); float or bf16 data with
 * the sums in double and a bf16 result rounded to nearest even; float factors rounded to TF32
 * unless the math type is CUDNN_FMA_MATH; y = alpha * result + beta * y.
 * So `cuda_emulated_cudnn` runs conv.c's cuDNN path (descriptors, the algorithm choice, the
 * workspace, the bf16 staging in NHWC) against the reference. The heuristics list, fastest
 * first, an algorithm the backend must pass over (non-deterministic) before the ones it may
 * take, each needing some workspace, which every call fills with NaN first: a staging buffer
 * that overlapped cuDNN's workspace would show. EMU_CUDNN_ALIGN (aligned) makes it refuse
 * tensors short of an alignment. What it cannot check: real cuDNN's own
 * choices, its rounding, and whether it accepts a layout in a precision. */
#include <cudnn.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "emu_number.h"
#include "emu_queue.h"
#include <utility>
#include <vector>

struct cudnnTensorStruct {
    cudnnTensorFormat_t format;
    cudnnDataType_t type;
    int n, c, h, w;
};
struct cudnnFilterStruct {
    cudnnTensorFormat_t format;
    cudnnDataType_t type;
    int k, c, h, w;
};
struct cudnnActivationStruct {
    cudnnActivationMode_t mode;
    cudnnNanPropagation_t nan;
};
struct cudnnConvolutionStruct {
    int pad_h, pad_w, u, v, dil_h, dil_w, groups;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
};

namespace {

/* the bytes each algorithm the heuristics offer wants (the backend sizes the workspace by them) */
const size_t WORK = 1000;

bool supported(cudnnDataType_t t) { return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_BFLOAT16; }

double load(const void *p, cudnnDataType_t t, long i)
{
    if (t == CUDNN_DATA_FLOAT) return static_cast<const float *>(p)[i];
    return emu_float_of_bf16(static_cast<const uint16_t *>(p)[i]);
}

/* a factor of a product: float factors go to the tensor cores as TF32 unless the math type
 * keeps them off (CUDNN_FMA_MATH) */
double factor(const void *p, cudnnDataType_t t, long i, cudnnMathType_t math)
{
    if (t == CUDNN_DATA_FLOAT && math != CUDNN_FMA_MATH) return emu_tf32(static_cast<const float *>(p)[i]);
    return load(p, t, i);
}

/* p[i] = alpha * v + beta * p[i] (beta 0: p[i] not read), as float or bf16 (to nearest even) */
void store(void *p, cudnnDataType_t t, long i, double v, float alpha, float beta)
{
    double old = beta != 0 ? load(p, t, i) : 0;
    float r = static_cast<float>(alpha * v + (beta != 0 ? beta * old : 0.0));
    if (t == CUDNN_DATA_FLOAT) static_cast<float *>(p)[i] = r;
    else static_cast<uint16_t *>(p)[i] = emu_bf16_of(r);
}

long at(cudnnTensorFormat_t f, int n, int c, int h, int w, int C, int H, int W)
{
    return f == CUDNN_TENSOR_NHWC ? ((static_cast<long>(n) * H + h) * W + w) * C + c
                                  : ((static_cast<long>(n) * C + c) * H + h) * W + w;
}

int out_size(int in, int pad, int k, int stride, int dil) { return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1; }

/* the descriptors describe one convolution: the filter's channels those of a group of x's, y
 * of the size the geometry gives, the same data type throughout (cuDNN's configurations) */
bool consistent(const cudnnTensorStruct *x, const cudnnFilterStruct *f, const cudnnConvolutionStruct *c,
                const cudnnTensorStruct *y)
{
    if (!x || !f || !c || !y || c->mode != CUDNN_CROSS_CORRELATION || c->groups < 1) return false;
    if (x->type != f->type || x->type != y->type || !supported(x->type) || c->compute != CUDNN_DATA_FLOAT) return false;
    if (x->format != f->format || x->format != y->format) return false;
    return f->c * c->groups == x->c && f->k % c->groups == 0 && y->n == x->n && y->c == f->k &&
           y->h == out_size(x->h, c->pad_h, f->h, c->u, c->dil_h) && y->w == out_size(x->w, c->pad_w, f->w, c->v, c->dil_w);
}

/* every (output, input, tap) triple of the convolution, in a fixed order: fn(y index, x index,
 * filter index) for each product that lands inside x */
template <typename F>
void each_product(const cudnnTensorStruct &x, const cudnnFilterStruct &f, const cudnnConvolutionStruct &c,
                  const cudnnTensorStruct &y, F fn)
{
    int cin_g = f.c, cout_g = f.k / c.groups;
    for (int n = 0; n < y.n; n++)
        for (int k = 0; k < y.c; k++)
            for (int oy = 0; oy < y.h; oy++)
                for (int ox = 0; ox < y.w; ox++) {
                    long yi = at(y.format, n, k, oy, ox, y.c, y.h, y.w);
                    for (int ci = 0; ci < cin_g; ci++)
                        for (int ky = 0; ky < f.h; ky++)
                            for (int kx = 0; kx < f.w; kx++) {
                                int iy = oy * c.u - c.pad_h + ky * c.dil_h, ix = ox * c.v - c.pad_w + kx * c.dil_w;
                                if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
                                int xc = k / cout_g * cin_g + ci;
                                fn(yi, at(x.format, n, xc, iy, ix, x.c, x.h, x.w), at(f.format, k, ci, ky, kx, f.c, f.h, f.w));
                            }
                }
}

long count(const cudnnTensorStruct &t) { return static_cast<long>(t.n) * t.c * t.h * t.w; }
long count(const cudnnFilterStruct &f) { return static_cast<long>(f.k) * f.c * f.h * f.w; }

/* whether a call's workspace holds what its algorithm asked for (the heuristics' memory) */
/* EMU_CUDNN_ALIGN=N: the data calls refuse (NOT_SUPPORTED) a tensor that is not N-byte aligned,
 * as a real algorithm may want more alignment than a slab's offsets give; the backend must fall
 * back (the staging in bf16, the direct kernels in fp32) */
bool aligned(const void *p)
{
    static const long want = [] {
        const char *e = getenv("EMU_CUDNN_ALIGN");
        return e ? atol(e) : 0L;
    }();
    return want <= 1 || reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(want) == 0;
}

bool workspace_ok(int algo, const void *work, size_t bytes)
{
    size_t need = algo == 0 ? 0 : WORK;
    return bytes >= need && (!need || work);
}

/* the workspace as cuDNN leaves it: scribbled over (NaN bytes) */
void scribble(void *work, size_t bytes)
{
    if (work && bytes) memset(work, 0xff, bytes);
}

/* the heuristics' list: algorithm 3 first (non-deterministic: to be passed over), then 1 and 0,
 * deterministic, in the descriptor's math type; 1 needs WORK bytes */
template <typename P, typename A>
void offer(P *perf, int requested, int *returned, const cudnnConvolutionStruct *c)
{
    const int algos[3] = { 3, 1, 0 };
    int n = requested < 3 ? requested : 3;
    for (int i = 0; i < n; i++) {
        memset(&perf[i], 0, sizeof perf[i]);
        perf[i].algo = static_cast<A>(algos[i]);
        perf[i].status = CUDNN_STATUS_SUCCESS;
        perf[i].time = static_cast<float>(i + 1);
        perf[i].memory = algos[i] == 0 ? 0 : WORK;
        perf[i].determinism = algos[i] == 3 ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC;
        perf[i].mathType = c->math;
    }
    *returned = n;
}

/* The timed choice (cudnnFind*Ex): the same candidates in another order, the deterministic
 * algorithm without workspace first, so that a timed plan differs from a heuristic one; the
 * buffers must be there, and the workspace is scribbled over as a real run would leave it */
template <class P, class A>
cudnnStatus_t timed_offer(P *perf, int requested, int *returned, const cudnnConvolutionStruct *c, const void *a,
                          const void *b, const void *out, void *work, size_t bytes)
{
    if (!a || !b || !out || (bytes && !work)) return CUDNN_STATUS_BAD_PARAM;
    offer<P, A>(perf, requested, returned, c);
    for (int i = *returned - 1; i > 0; i--) std::swap(perf[i], perf[i - 1]); /* the last (algorithm 0) first */
    for (int i = 0; i < *returned; i++) perf[i].time = static_cast<float>(i + 1);
    scribble(work, bytes);
    return CUDNN_STATUS_SUCCESS;
}

} // namespace

extern "C" {
cudnnStatus_t cudnnCreate(cudnnHandle_t *h) { return *h = reinterpret_cast<cudnnHandle_t>(8), CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetStream(cudnnHandle_t, cudaStream_t) { return CUDNN_STATUS_SUCCESS; }
const char *cudnnGetErrorString(cudnnStatus_t) { return "an error of the emulated cuDNN"; }

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) { return *d = new cudnnTensorStruct(), CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { return delete d, CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f, cudnnDataType_t t, int n, int c,
                                         int h, int w)
{
    if (!d || n < 1 || c < 1 || h < 1 || w < 1 || (f != CUDNN_TENSOR_NCHW && f != CUDNN_TENSOR_NHWC)) return CUDNN_STATUS_BAD_PARAM;
    *d = { f, t, n, c, h, w };
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) { return *d = new cudnnFilterStruct(), CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { return delete d, CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t, cudnnTensorFormat_t f, int k, int c,
                                         int h, int w)
{
    if (!d || k < 1 || c < 1 || h < 1 || w < 1 || (f != CUDNN_TENSOR_NCHW && f != CUDNN_TENSOR_NHWC)) return CUDNN_STATUS_BAD_PARAM;
    *d = { f, t, k, c, h, w };
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d)
{
    *d = new cudnnConvolutionStruct();
    (*d)->groups = 1;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) { return delete d, CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int ph, int pw, int u, int v, int dh, int dw,
                                              cudnnConvolutionMode_t mode, cudnnDataType_t compute)
{
    if (!d || ph < 0 || pw < 0 || u < 1 || v < 1 || dh < 1 || dw < 1) return CUDNN_STATUS_BAD_PARAM;
    d->pad_h = ph, d->pad_w = pw, d->u = u, d->v = v, d->dil_h = dh, d->dil_w = dw, d->mode = mode, d->compute = compute;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups)
{
    if (!d || groups < 1) return CUDNN_STATUS_BAD_PARAM;
    d->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m)
{
    if (!d) return CUDNN_STATUS_BAD_PARAM;
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t c, const cudnnTensorDescriptor_t x,
                                                    const cudnnFilterDescriptor_t f, int *n, int *k, int *h, int *w)
{
    if (!c || !x || !f || f->c * c->groups != x->c) return CUDNN_STATUS_BAD_PARAM;
    *n = x->n, *k = f->k, *h = out_size(x->h, c->pad_h, f->h, c->u, c->dil_h), *w = out_size(x->w, c->pad_w, f->w, c->v, c->dil_w);
    return *h > 0 && *w > 0 ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                     const cudnnFilterDescriptor_t f, const cudnnConvolutionDescriptor_t c,
                                                     const cudnnTensorDescriptor_t y, const int requested, int *returned,
                                                     cudnnConvolutionFwdAlgoPerf_t *perf)
{
    if (!consistent(x, f, c, y)) return CUDNN_STATUS_BAD_PARAM;
    offer<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(perf, requested, returned, c);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, const cudnnFilterDescriptor_t f,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t c,
                                                          const cudnnTensorDescriptor_t dx, const int requested,
                                                          int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf)
{
    if (!consistent(dx, f, c, dy)) return CUDNN_STATUS_BAD_PARAM;
    offer<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(perf, requested, returned, c);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                            const cudnnTensorDescriptor_t dy,
                                                            const cudnnConvolutionDescriptor_t c,
                                                            const cudnnFilterDescriptor_t dw, const int requested,
                                                            int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf)
{
    if (!consistent(x, dw, c, dy)) return CUDNN_STATUS_BAD_PARAM;
    offer<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(perf, requested, returned, c);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t, const cudnnTensorDescriptor_t xd, const void *x,
                                                     const cudnnFilterDescriptor_t wd, const void *w,
                                                     const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t yd,
                                                     void *y, const int requested, int *returned,
                                                     cudnnConvolutionFwdAlgoPerf_t *perf, void *work, size_t bytes)
{
    if (!consistent(xd, wd, cd, yd)) return CUDNN_STATUS_BAD_PARAM;
    return timed_offer<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(perf, requested, returned, cd, x, w, y,
                                                                               work, bytes);
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t, const cudnnFilterDescriptor_t wd, const void *w,
                                                          const cudnnTensorDescriptor_t dyd, const void *dy,
                                                          const cudnnConvolutionDescriptor_t cd,
                                                          const cudnnTensorDescriptor_t dxd, void *dx, const int requested,
                                                          int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf, void *work,
                                                          size_t bytes)
{
    if (!consistent(dxd, wd, cd, dyd)) return CUDNN_STATUS_BAD_PARAM;
    return timed_offer<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(perf, requested, returned, cd, w,
                                                                                       dy, dx, work, bytes);
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnHandle_t, const cudnnTensorDescriptor_t xd, const void *x,
                                                            const cudnnTensorDescriptor_t dyd, const void *dy,
                                                            const cudnnConvolutionDescriptor_t cd,
                                                            const cudnnFilterDescriptor_t dwd, void *dw, const int requested,
                                                            int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf,
                                                            void *work, size_t bytes)
{
    if (!consistent(xd, dwd, cd, dyd)) return CUDNN_STATUS_BAD_PARAM;
    return timed_offer<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(perf, requested, returned, cd,
                                                                                           x, dy, dw, work, bytes);
}

/* y = alpha conv(x, w) + beta y */
cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t, const void *alpha, const cudnnTensorDescriptor_t xd, const void *x,
                                      const cudnnFilterDescriptor_t wd, const void *w, const cudnnConvolutionDescriptor_t cd,
                                      cudnnConvolutionFwdAlgo_t algo, void *work, size_t work_bytes, const void *beta,
                                      const cudnnTensorDescriptor_t yd, void *y)
{
    if (!consistent(xd, wd, cd, yd) || !x || !w || !y) return CUDNN_STATUS_BAD_PARAM;
    if (!aligned(x) || !aligned(w) || !aligned(y)) return CUDNN_STATUS_NOT_SUPPORTED;
    cudnnTensorStruct xs = *xd, ys = *yd;
    cudnnFilterStruct ws = *wd;
    cudnnConvolutionStruct cs = *cd;
    float al = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
    if (!workspace_ok(static_cast<int>(algo), work, work_bytes)) return CUDNN_STATUS_BAD_PARAM;
    queue([=]() {
        scribble(work, work_bytes);
        std::vector<double> acc(static_cast<size_t>(count(ys)), 0.0);
        each_product(xs, ws, cs, ys, [&](long yi, long xi, long wi) {
            acc[yi] += factor(x, xs.type, xi, cs.math) * factor(w, ws.type, wi, cs.math);
        });
        for (long i = 0; i < count(ys); i++) store(y, ys.type, i, acc[i], al, be);
    });
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t *d)
{
    return *d = new cudnnActivationStruct(), CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t d, cudnnActivationMode_t mode,
                                           cudnnNanPropagation_t nan, double)
{
    if (!d || (mode != CUDNN_ACTIVATION_RELU && mode != CUDNN_ACTIVATION_IDENTITY)) return CUDNN_STATUS_NOT_SUPPORTED;
    d->mode = mode, d->nan = nan;
    return CUDNN_STATUS_SUCCESS;
}

/* y = act(alpha1 conv(x, w) + alpha2 z + bias), float data (the configurations the backend
 * uses): the sum rounded to float, then the bias added in float, as the passes apart do; the
 * identity only with IMPLICIT_PRECOMP_GEMM, as cuDNN documents; relu(NaN) = 0 when NaN is not
 * propagated */
cudnnStatus_t cudnnConvolutionBiasActivationForward(cudnnHandle_t, const void *alpha1, const cudnnTensorDescriptor_t xd,
                                                    const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                                    const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo,
                                                    void *work, size_t work_bytes, const void *alpha2,
                                                    const cudnnTensorDescriptor_t zd, const void *z,
                                                    const cudnnTensorDescriptor_t bd, const void *bias,
                                                    const cudnnActivationDescriptor_t ad, const cudnnTensorDescriptor_t yd,
                                                    void *y)
{
    if (!consistent(xd, wd, cd, yd) || !zd || !bd || !ad || !x || !w || !y || !bias || xd->type != CUDNN_DATA_FLOAT)
        return CUDNN_STATUS_BAD_PARAM;
    if (!aligned(x) || !aligned(w) || !aligned(y)) return CUDNN_STATUS_NOT_SUPPORTED;
    if (bd->n != 1 || bd->c != yd->c || bd->h != 1 || bd->w != 1 || zd->c != yd->c || zd->n != yd->n)
        return CUDNN_STATUS_BAD_PARAM;
    if (ad->mode == CUDNN_ACTIVATION_IDENTITY && algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (!workspace_ok(static_cast<int>(algo), work, work_bytes)) return CUDNN_STATUS_BAD_PARAM;
    cudnnTensorStruct xs = *xd, ys = *yd;
    cudnnFilterStruct ws = *wd;
    cudnnConvolutionStruct cs = *cd;
    float a1 = *static_cast<const float *>(alpha1), a2 = *static_cast<const float *>(alpha2);
    bool relu = ad->mode == CUDNN_ACTIVATION_RELU, propagate = ad->nan == CUDNN_PROPAGATE_NAN;
    queue([=]() {
        scribble(work, work_bytes);
        std::vector<double> acc(static_cast<size_t>(count(ys)), 0.0);
        each_product(xs, ws, cs, ys, [&](long yi, long xi, long wi) {
            acc[yi] += factor(x, xs.type, xi, cs.math) * factor(w, ws.type, wi, cs.math);
        });
        for (long i = 0; i < count(ys); i++) {
            int ch = static_cast<int>(ys.format == CUDNN_TENSOR_NHWC ? i % ys.c : i / (static_cast<long>(ys.h) * ys.w) % ys.c);
            float v = static_cast<float>(a1 * acc[i] + (a2 != 0 ? a2 * static_cast<const float *>(z)[i] : 0.0));
            v = v + static_cast<const float *>(bias)[ch];
            if (relu && !(v > 0) && !(propagate && v != v)) v = 0.0f;
            static_cast<float *>(y)[i] = v;
        }
    });
    return CUDNN_STATUS_SUCCESS;
}

/* dx = alpha (the input gradient of dy) + beta dx */
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t, const void *alpha, const cudnnFilterDescriptor_t wd, const void *w,
                                           const cudnnTensorDescriptor_t dyd, const void *dy,
                                           const cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdDataAlgo_t algo,
                                           void *work, size_t work_bytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxd, void *dx)
{
    if (!consistent(dxd, wd, cd, dyd) || !w || !dy || !dx) return CUDNN_STATUS_BAD_PARAM;
    if (!aligned(w) || !aligned(dy) || !aligned(dx)) return CUDNN_STATUS_NOT_SUPPORTED;
    if (!workspace_ok(static_cast<int>(algo), work, work_bytes)) return CUDNN_STATUS_BAD_PARAM;
    cudnnTensorStruct xs = *dxd, ys = *dyd;
    cudnnFilterStruct ws = *wd;
    cudnnConvolutionStruct cs = *cd;
    float al = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
    queue([=]() {
        scribble(work, work_bytes);
        std::vector<double> acc(static_cast<size_t>(count(xs)), 0.0);
        each_product(xs, ws, cs, ys, [&](long yi, long xi, long wi) {
            acc[xi] += factor(dy, ys.type, yi, cs.math) * factor(w, ws.type, wi, cs.math);
        });
        for (long i = 0; i < count(xs); i++) store(dx, xs.type, i, acc[i], al, be);
    });
    return CUDNN_STATUS_SUCCESS;
}

/* dw = alpha (the weight gradient of x and dy) + beta dw */
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t, const void *alpha, const cudnnTensorDescriptor_t xd, const void *x,
                                             const cudnnTensorDescriptor_t dyd, const void *dy,
                                             const cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdFilterAlgo_t algo,
                                             void *work, size_t work_bytes, const void *beta,
                                             const cudnnFilterDescriptor_t dwd, void *dw)
{
    if (!consistent(xd, dwd, cd, dyd) || !x || !dy || !dw) return CUDNN_STATUS_BAD_PARAM;
    if (!aligned(x) || !aligned(dy) || !aligned(dw)) return CUDNN_STATUS_NOT_SUPPORTED;
    if (!workspace_ok(static_cast<int>(algo), work, work_bytes)) return CUDNN_STATUS_BAD_PARAM;
    cudnnTensorStruct xs = *xd, ys = *dyd;
    cudnnFilterStruct ws = *dwd;
    cudnnConvolutionStruct cs = *cd;
    float al = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
    queue([=]() {
        scribble(work, work_bytes);
        std::vector<double> acc(static_cast<size_t>(count(ws)), 0.0);
        each_product(xs, ws, cs, ys, [&](long yi, long xi, long wi) {
            acc[wi] += factor(dy, ys.type, yi, cs.math) * factor(x, xs.type, xi, cs.math);
        });
        for (long i = 0; i < count(ws); i++) store(dw, ws.type, i, acc[i], al, be);
    });
    return CUDNN_STATUS_SUCCESS;
}
}
