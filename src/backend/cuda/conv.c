/* conv.c — convolution (and deconv, the same passes with the roles swapped) on the GPU:
 * cuDNN's forward, backward-data and backward-filter with the
 * algorithms chosen once per shape (cuDNN's heuristics, kept in a cache with the descriptors;
 * their workspace is the kernel table's workspace column), and our direct kernels (kernels.cu)
 * where cuDNN cannot take the geometry — padding larger on one side (pad=same with an even
 * window), sizes past int, no algorithm allowed in the precision within the workspace limit —
 * or libcudnn.so.9 is missing. In fp32, cuDNN runs FMA math (no
 * tensor-core TF32) and only the GEMM-like algorithms, whose rounding stays near the reference's;
 * tf32 lets cuDNN choose any algorithm with tensor-op math. Every precision takes deterministic
 * algorithms only (no atomic additions in the backward passes), so that a run, a resumed run and
 * a step replayed from a CUDA graph give the same bits every time, as on the CPU. */
#include <limits.h>
#include <string.h>

#include "../../ops/conv_ref.h"
#include "cuda_impl.h"

enum { CACHE = 256 };
#define MAX_WORKSPACE ((size_t)256 << 20) /* per call: the algorithms that need more are passed over */

typedef struct conv_plan {
    cn_cu_conv g;
    int precision;
    int dnn;                   /* 0: our direct kernels */
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t workspace;
} conv_plan;

static conv_plan plans[CACHE + 1]; /* the last: a plan without workspace once the cache is full */
static int n_plans;

static cn_cu_conv cu_geom(cn_conv_geom g)
{
    return (cn_cu_conv){ g.n, g.cin, g.h, g.w, g.cout, g.groups, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pad_t, g.pad_l,
                         g.oh, g.ow };
}

static cn_cu_conv geom_of(const cn_node *n, const cn_node *in, int64_t batch) { return cu_geom(cn_conv_geom_of(n, in, batch)); }

/* a deconv is the input gradient of the convolution that reads its output (cn_deconv_geom_of):
 * that convolution's plan, its passes with the roles swapped */
static cn_cu_conv deconv_geom(const cn_node *n, const cn_node *in, int64_t batch)
{
    return cu_geom(cn_deconv_geom_of(n, in, batch));
}

static int fits_int(const cn_cu_conv *g)
{
    int64_t big = (int64_t)INT_MAX;
    return g->n * g->cin * g->h * g->w <= big && g->n * g->cout * g->oh * g->ow <= big &&
           g->cout * g->cin * g->kh * g->kw <= big;
}

/* fp32 keeps to the algorithms whose sums are plain dot products (no FFT, no Winograd) */
static int fwd_ok(cudnnConvolutionFwdAlgo_t a)
{
    return cn_cu.precision != CN_PRECISION_FP32 || a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}
static int bwd_data_ok(cudnnConvolutionBwdDataAlgo_t a)
{
    return cn_cu.precision != CN_PRECISION_FP32 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 ||
           a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
}
static int bwd_filter_ok(cudnnConvolutionBwdFilterAlgo_t a)
{
    return cn_cu.precision != CN_PRECISION_FP32 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 ||
           a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

/* fp32 wants FMA math (no tensor-core conversion of the inputs); every precision the same bits
 * from run to run */
#define ALLOWED(perf)                                                                              \
    ((cn_cu.precision != CN_PRECISION_FP32 || (perf).mathType != CUDNN_TENSOR_OP_MATH) &&          \
     (perf).determinism == CUDNN_DETERMINISTIC)

/* the algorithms of plan p: cuDNN's heuristics, fastest first, the first allowed that fits;
 * -1 when one of the three passes has none (the direct kernels then) */
static int choose(conv_plan *p, size_t limit)
{
    enum { N = 16 };
    int got = 0, found = 0;
    cudnnConvolutionFwdAlgoPerf_t f[N];
    cudnnConvolutionBwdDataAlgoPerf_t d[N];
    cudnnConvolutionBwdFilterAlgoPerf_t w[N];
    cudnnHandle_t h = cn_cu.dnn_handle;
    p->workspace = 0;
    if (cn_cu.dnn.cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, N, &got, f)) return -1;
    for (int i = 0; i < got && !found; i++)
        if (f[i].status == CUDNN_STATUS_SUCCESS && fwd_ok(f[i].algo) && ALLOWED(f[i]) && f[i].memory <= limit) {
            p->fwd = f[i].algo, found = 1;
            if (f[i].memory > p->workspace) p->workspace = f[i].memory;
        }
    if (!found || cn_cu.dnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x, N, &got, d)) return -1;
    for (int i = found = 0; i < got && !found; i++)
        if (d[i].status == CUDNN_STATUS_SUCCESS && bwd_data_ok(d[i].algo) && ALLOWED(d[i]) && d[i].memory <= limit) {
            p->bwd_data = d[i].algo, found = 1;
            if (d[i].memory > p->workspace) p->workspace = d[i].memory;
        }
    if (!found || cn_cu.dnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w, N, &got, w)) return -1;
    for (int i = found = 0; i < got && !found; i++)
        if (w[i].status == CUDNN_STATUS_SUCCESS && bwd_filter_ok(w[i].algo) && ALLOWED(w[i]) && w[i].memory <= limit) {
            p->bwd_filter = w[i].algo, found = 1;
            if (w[i].memory > p->workspace) p->workspace = w[i].memory;
        }
    return found ? 0 : -1;
}

/* cuDNN's descriptors of plan p; 0 when cuDNN takes the geometry as ours (its output size) */
static int describe(conv_plan *p)
{
    const cn_cu_conv *g = &p->g;
    int on, oc, ohh, oww;
    if (cn_dnn_ok(cn_cu.dnn.cudnnCreateTensorDescriptor(&p->x), "a tensor descriptor") ||
        cn_dnn_ok(cn_cu.dnn.cudnnCreateTensorDescriptor(&p->y), "a tensor descriptor") ||
        cn_dnn_ok(cn_cu.dnn.cudnnCreateFilterDescriptor(&p->w), "a filter descriptor") ||
        cn_dnn_ok(cn_cu.dnn.cudnnCreateConvolutionDescriptor(&p->conv), "a convolution descriptor"))
        return -1;
    cudnnMathType_t math = p->precision == CN_PRECISION_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
    if (cn_cu.dnn.cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)g->n, (int)g->cin, (int)g->h, (int)g->w) ||
        cn_cu.dnn.cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)g->cout, (int)(g->cin / g->groups),
                                             (int)g->kh, (int)g->kw) ||
        cn_cu.dnn.cudnnSetConvolution2dDescriptor(p->conv, (int)g->pad_t, (int)g->pad_l, (int)g->sh, (int)g->sw, (int)g->dh,
                                                  (int)g->dw, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ||
        cn_cu.dnn.cudnnSetConvolutionGroupCount(p->conv, (int)g->groups) ||
        cn_cu.dnn.cudnnSetConvolutionMathType(p->conv, math) ||
        cn_cu.dnn.cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &ohh, &oww))
        return -1; /* a geometry cuDNN refuses: the direct kernels */
    if (on != g->n || oc != g->cout || ohh != g->oh || oww != g->ow) return -1; /* padding larger on one side */
    if (cn_dnn_ok(cn_cu.dnn.cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)g->n, (int)g->cout,
                                                       (int)g->oh, (int)g->ow), "the output's descriptor"))
        return -1;
    return 0;
}

static void forget(conv_plan *p)
{
    if (p->x) cn_cu.dnn.cudnnDestroyTensorDescriptor(p->x);
    if (p->y) cn_cu.dnn.cudnnDestroyTensorDescriptor(p->y);
    if (p->w) cn_cu.dnn.cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) cn_cu.dnn.cudnnDestroyConvolutionDescriptor(p->conv);
    p->x = p->y = NULL, p->w = NULL, p->conv = NULL;
}

/* the plan of geometry g in the current precision, made on first use */
static conv_plan *plan_for(const cn_cu_conv *g)
{
    for (int i = 0; i < n_plans; i++)
        if (plans[i].precision == cn_cu.precision && !memcmp(&plans[i].g, g, sizeof *g)) return &plans[i];
    int full = n_plans == CACHE;
    conv_plan *p = &plans[full ? CACHE : n_plans];
    if (full) forget(p);
    memset(p, 0, sizeof *p);
    p->g = *g;
    p->precision = cn_cu.precision;
    if (cn_cu.dnn_handle && fits_int(g) && !describe(p) && !choose(p, full ? 0 : MAX_WORKSPACE)) p->dnn = 1;
    else forget(p), p->dnn = 0;
    if (!full) n_plans++;
    return p;
}

int64_t cn_cuda_conv_workspace(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    if (cn_cuda_ready()) return 0;
    cn_cu_conv g = n->id == CN_OP_DECONV ? deconv_geom(n, in[0], batch) : geom_of(n, in[0], batch);
    const conv_plan *p = plan_for(&g);
    return p->dnn ? (int64_t)p->workspace : 0;
}

/* a cuDNN call's status: 0 done, 1 not supported for these pointers (an algorithm may want more
 * alignment than a slab's offsets give; the direct kernel runs instead), -1 failed (kept) */
static int dnn_ran(cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_NOT_SUPPORTED) return 1;
    return cn_dnn_ok(s, what);
}

/* relu: a relu fused after the convolution (cn_kernels.forward_relu_out), y being its output */
static void conv_forward(const cn_op_io *io, int relu)
{
    if (cn_cuda_ready()) return;
    cn_cu_conv g = geom_of(io->n, io->in[0], io->batch);
    const conv_plan *p = plan_for(&g);
    const float *x = io->x[0], *w = io->w;
    const float *b = io->n->a.bias ? w + g.cout * (g.cin / g.groups) * g.kh * g.kw : NULL;
    float *y = io->y, one = 1, zero = 0;
    int ran = p->dnn ? dnn_ran(cn_cu.dnn.cudnnConvolutionForward(cn_cu.dnn_handle, &one, p->x, x, p->w, w, p->conv, p->fwd,
                                                                 io->work, p->workspace, &zero, p->y, y),
                               "cudnnConvolutionForward")
                     : 1;
    if (ran < 0) return;
    if (ran > 0) { /* the direct kernel adds the bias itself */
        int add = 0;
        void *args[] = { &g, &x, &w, &b, &y, &add };
        cn_cu_launch(CN_CU_K_conv_forward, g.n * g.cout * g.oh * g.ow, args);
        b = NULL;
    }
    cn_cuda_bias_relu(y, b, g.n, g.cout, g.oh * g.ow, relu);
}

void cn_cuda_conv_forward(const cn_op_io *io) { conv_forward(io, 0); }
void cn_cuda_conv_forward_relu(const cn_op_io *io) { conv_forward(io, 1); }

/* dw += the weight gradient of plan p's convolution from its input `in` and its output's
 * gradient `dout` (beta 1): cuDNN's, or the direct kernel's; dnn_ran's status */
static int weight_grad(const conv_plan *p, cn_cu_conv *g, void *work, const float *in, const float *dout, float *dw,
                       const char *what)
{
    float one = 1;
    int ran = p->dnn ? dnn_ran(cn_cu.dnn.cudnnConvolutionBackwardFilter(cn_cu.dnn_handle, &one, p->x, in, p->y, dout, p->conv,
                                                                        p->bwd_filter, work, p->workspace, &one, p->w, dw),
                               what)
                     : 1;
    void *args[] = { g, &in, &dout, &dw };
    if (ran > 0) cn_cu_launch_blocks(CN_CU_K_conv_backward_filter, g->cout * (g->cin / g->groups) * g->kh * g->kw, args);
    return ran;
}

void cn_cuda_conv_backward(const cn_op_io *io)
{
    if (cn_cuda_ready()) return;
    cn_cu_conv g = geom_of(io->n, io->in[0], io->batch);
    const conv_plan *p = plan_for(&g);
    int64_t wn = g.cout * (g.cin / g.groups) * g.kh * g.kw;
    const float *x = io->x[0], *w = io->w, *dy = io->dy;
    float *dw = io->dw, *db = io->n->a.bias ? dw + wn : NULL, *dx = io->dx[0];
    int fresh = io->dx_fresh & 1u;
    if (db) cn_cuda_channel_sum(dy, db, g.n, g.cout, g.oh * g.ow);
    float one = 1, zero = 0;
    /* the weights' gradient accumulates; the input's is stored when fresh */
    int ran = weight_grad(p, &g, io->work, x, dy, dw, "cudnnConvolutionBackwardFilter");
    if (ran < 0 || !dx) return;
    ran = p->dnn ? dnn_ran(cn_cu.dnn.cudnnConvolutionBackwardData(cn_cu.dnn_handle, &one, p->w, w, p->y, dy, p->conv,
                                                                  p->bwd_data, io->work, p->workspace, fresh ? &zero : &one,
                                                                  p->x, dx),
                           "cudnnConvolutionBackwardData")
                 : 1;
    void *dargs[] = { &g, &w, &dy, &dx, &fresh };
    if (ran > 0) cn_cu_launch(CN_CU_K_conv_backward_data, g.n * g.cin * g.h * g.w, dargs);
}

/* deconv: y = the convolution's input gradient of x (backward data, beta 0), then the bias */
void cn_cuda_deconv_forward(const cn_op_io *io)
{
    if (cn_cuda_ready()) return;
    cn_cu_conv g = deconv_geom(io->n, io->in[0], io->batch);
    const conv_plan *p = plan_for(&g);
    int64_t wn = g.cout * (g.cin / g.groups) * g.kh * g.kw;
    const float *x = io->x[0], *w = io->w, *b = io->n->a.bias ? w + wn : NULL;
    float *y = io->y, one = 1, zero = 0;
    int fresh = 1;
    int ran = p->dnn ? dnn_ran(cn_cu.dnn.cudnnConvolutionBackwardData(cn_cu.dnn_handle, &one, p->w, w, p->y, x, p->conv,
                                                                      p->bwd_data, io->work, p->workspace, &zero, p->x, y),
                               "cudnnConvolutionBackwardData (deconv)")
                     : 1;
    if (ran < 0) return;
    void *args[] = { &g, &w, &x, &y, &fresh };
    if (ran > 0) cn_cu_launch(CN_CU_K_conv_backward_data, g.n * g.cin * g.h * g.w, args);
    cn_cuda_bias_relu(y, b, g.n, g.cin, g.h * g.w, 0);
}

/* deconv: db += the sums of dy's channels; dw += the convolution's weight gradient with dy as
 * its input and x as its output's gradient; dx (+)= the convolution of dy (forward, beta 1 to add) */
void cn_cuda_deconv_backward(const cn_op_io *io)
{
    if (cn_cuda_ready()) return;
    cn_cu_conv g = deconv_geom(io->n, io->in[0], io->batch);
    const conv_plan *p = plan_for(&g);
    int64_t wn = g.cout * (g.cin / g.groups) * g.kh * g.kw;
    const float *x = io->x[0], *w = io->w, *dy = io->dy, *nob = NULL;
    float *dw = io->dw, *db = io->n->a.bias ? dw + wn : NULL, *dx = io->dx[0], one = 1, zero = 0;
    int add = !(io->dx_fresh & 1u);
    if (db) cn_cuda_channel_sum(dy, db, g.n, g.cin, g.h * g.w);
    int ran = weight_grad(p, &g, io->work, dy, x, dw, "cudnnConvolutionBackwardFilter (deconv)");
    if (ran < 0 || !dx) return;
    ran = p->dnn ? dnn_ran(cn_cu.dnn.cudnnConvolutionForward(cn_cu.dnn_handle, &one, p->x, dy, p->w, w, p->conv, p->fwd,
                                                             io->work, p->workspace, add ? &one : &zero, p->y, dx),
                           "cudnnConvolutionForward (deconv)")
                 : 1;
    void *args[] = { &g, &dy, &w, &nob, &dx, &add };
    if (ran > 0) cn_cu_launch(CN_CU_K_conv_forward, g.n * g.cout * g.oh * g.ow, args);
}
