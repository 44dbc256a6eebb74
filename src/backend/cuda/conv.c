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
 * a step replayed from a CUDA graph give the same bits every time, as on the CPU.
 * bf16 (--precision bf16): each pass's operands are staged in the workspace as bf16 in NHWC (the
 * layout of cuDNN's tensor-core kernels; our activations are NCHW, floats or bf16), cuDNN runs
 * in bf16 with fp32 accumulation and writes bf16, and one pass brings the result back to NCHW,
 * the bias, a fused relu and the addition to a gradient in it. The direct kernels run the same
 * staging (rounded operands and result, NHWC in between), so that both paths round alike. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ops/conv_ref.h"
#include "cuda_impl.h"

#define MAX_WORKSPACE ((size_t)256 << 20) /* per call: the algorithms that need more are passed over */

typedef struct conv_plan {
    cn_cu_conv g;
    int precision;
    int dnn;                   /* 0: our direct kernels */
    int unfused;               /* cuDNN refused the bias and relu in its epilogue once: apart from then on */
    int timed;                 /* its algorithms were timed by cuDNN (CN_CUDNN_FIND=1), not guessed */
    cudnnTensorDescriptor_t x, y, bias; /* bias: (1, cout, 1, 1), made on first use */
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t workspace;
} conv_plan;

/* every plan made, kept: the workspace a node was planned with must fit its plan at every call
 * (a plan made again could choose another algorithm) */
static conv_plan *plans;
static int n_plans, room;

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

/* the filter's values: cout x cin/groups x kh x kw (the bias follows them in the layer's tensors) */
static int64_t weights_of(const cn_cu_conv *g) { return g->cout * (g->cin / g->groups) * g->kh * g->kw; }

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

/* CN_CUDNN_FIND=1: cuDNN times each algorithm of a shape once, on scratch memory, as PyTorch's
 * cudnn.benchmark does, and the fastest allowed one is taken; else the heuristics' order. Each
 * algorithm is deterministic, but which wins a timing may change from run to run, and with it
 * the bits: so it is asked for, not the default. */
static int timed(void)
{
    const char *find = getenv("CN_CUDNN_FIND");
    return find && !strcmp(find, "1");
}

/* the timings' scratch: one block of managed memory, grown as asked, its pages made on the GPU
 * first (a first touch would fault inside the timings); NULL when there is none */
static char *timing_scratch(size_t bytes)
{
    static char *block;
    static size_t have;
    if (bytes <= have) return block;
    if (block) cn_cu_sync(), cn_cu.cu.cuMemFree((CUdeviceptr)(uintptr_t)block), block = NULL, have = 0;
    CUdeviceptr at;
    if (cn_cu.cu.cuMemAllocManaged(&at, bytes, CU_MEM_ATTACH_GLOBAL)) return NULL;
    if (cn_cu.cu.cuMemsetD8Async(at, 0, bytes, cn_cu.stream) || cn_cu_sync()) {
        cn_cu.cu.cuMemFree(at);
        return NULL;
    }
    block = (char *)(uintptr_t)at, have = bytes;
    return block;
}

/* cuDNN's candidates for plan p's three passes, fastest first: timed on scratch memory
 * (timed(): p->timed set) or by its heuristics; 0, or -1 where cuDNN has none */
static int candidates(conv_plan *p, size_t limit, int n, int *got, cudnnConvolutionFwdAlgoPerf_t *f,
                      cudnnConvolutionBwdDataAlgoPerf_t *d, cudnnConvolutionBwdFilterAlgoPerf_t *w)
{
    cudnnHandle_t h = cn_cu.dnn_handle;
    const cn_cu_conv *g = &p->g;
    int64_t size = p->precision == CN_PRECISION_BF16 ? 2 : 4, nx = CN_CU_ALIGN(g->n * g->cin * g->h * g->w * size),
            nw = CN_CU_ALIGN(weights_of(g) * size), ny = CN_CU_ALIGN(g->n * g->cout * g->oh * g->ow * size);
    char *x = timed() ? timing_scratch((size_t)(nx + nw + ny) + limit) : NULL;
    if (x) {
        char *wt = x + nx, *y = wt + nw, *work = y + ny;
        p->timed = 1;
        return cn_cu.dnn.cudnnFindConvolutionForwardAlgorithmEx(h, p->x, x, p->w, wt, p->conv, p->y, y, n, &got[0], f, work,
                                                                 limit) ||
                       cn_cu.dnn.cudnnFindConvolutionBackwardDataAlgorithmEx(h, p->w, wt, p->y, y, p->conv, p->x, x, n,
                                                                             &got[1], d, work, limit) ||
                       cn_cu.dnn.cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p->x, x, p->y, y, p->conv, p->w, wt, n,
                                                                               &got[2], w, work, limit)
                   ? -1
                   : 0;
    }
    return cn_cu.dnn.cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, n, &got[0], f) ||
                   cn_cu.dnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x, n, &got[1], d) ||
                   cn_cu.dnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w, n, &got[2], w)
               ? -1
               : 0;
}

/* the algorithms of plan p: cuDNN's candidates, fastest first, the first allowed that fits;
 * -1 when one of the three passes has none (the direct kernels then) */
static int choose(conv_plan *p, size_t limit)
{
    enum { N = 16 };
    int got3[3] = { 0, 0, 0 }, got = 0, found = 0;
    cudnnConvolutionFwdAlgoPerf_t f[N];
    cudnnConvolutionBwdDataAlgoPerf_t d[N];
    cudnnConvolutionBwdFilterAlgoPerf_t w[N];
    p->workspace = 0;
    if (candidates(p, limit, N, got3, f, d, w)) return -1;
    got = got3[0];
    for (int i = 0; i < got && !found; i++)
        if (f[i].status == CUDNN_STATUS_SUCCESS && fwd_ok(f[i].algo) && ALLOWED(f[i]) && f[i].memory <= limit) {
            p->fwd = f[i].algo, found = 1;
            if (f[i].memory > p->workspace) p->workspace = f[i].memory;
        }
    if (!found) return -1;
    got = got3[1];
    for (int i = found = 0; i < got && !found; i++)
        if (d[i].status == CUDNN_STATUS_SUCCESS && bwd_data_ok(d[i].algo) && ALLOWED(d[i]) && d[i].memory <= limit) {
            p->bwd_data = d[i].algo, found = 1;
            if (d[i].memory > p->workspace) p->workspace = d[i].memory;
        }
    if (!found) return -1;
    got = got3[2];
    for (int i = found = 0; i < got && !found; i++)
        if (w[i].status == CUDNN_STATUS_SUCCESS && bwd_filter_ok(w[i].algo) && ALLOWED(w[i]) && w[i].memory <= limit) {
            p->bwd_filter = w[i].algo, found = 1;
            if (w[i].memory > p->workspace) p->workspace = w[i].memory;
        }
    return found ? 0 : -1;
}

/* cuDNN's descriptors of plan p; 0 when cuDNN takes the geometry as ours, 1 when its output size
 * differs (padding larger on one side), -1 when cuDNN refuses them */
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
    int bf16 = p->precision == CN_PRECISION_BF16;
    cudnnTensorFormat_t layout = bf16 ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    cudnnDataType_t type = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT; /* the sums in float either way */
    if (cn_cu.dnn.cudnnSetTensor4dDescriptor(p->x, layout, type, (int)g->n, (int)g->cin, (int)g->h, (int)g->w) ||
        cn_cu.dnn.cudnnSetFilter4dDescriptor(p->w, type, layout, (int)g->cout, (int)(g->cin / g->groups),
                                             (int)g->kh, (int)g->kw) ||
        cn_cu.dnn.cudnnSetConvolution2dDescriptor(p->conv, (int)g->pad_t, (int)g->pad_l, (int)g->sh, (int)g->sw, (int)g->dh,
                                                  (int)g->dw, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ||
        cn_cu.dnn.cudnnSetConvolutionGroupCount(p->conv, (int)g->groups) ||
        cn_cu.dnn.cudnnSetConvolutionMathType(p->conv, math) ||
        cn_cu.dnn.cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &ohh, &oww))
        return -1; /* a geometry cuDNN refuses: the direct kernels */
    if (on != g->n || oc != g->cout || ohh != g->oh || oww != g->ow) return 1; /* padding larger on one side */
    if (cn_dnn_ok(cn_cu.dnn.cudnnSetTensor4dDescriptor(p->y, layout, type, (int)g->n, (int)g->cout,
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
    if (p->bias) cn_cu.dnn.cudnnDestroyTensorDescriptor(p->bias);
    p->x = p->y = p->bias = NULL, p->w = NULL, p->conv = NULL;
}

/* the plan of geometry g in the current precision, made on first use */
static conv_plan *plan_for(const cn_cu_conv *g)
{
    for (int i = 0; i < n_plans; i++)
        if (plans[i].precision == cn_cu.precision && !memcmp(&plans[i].g, g, sizeof *g)) return &plans[i];
    if (n_plans == room) {
        int more = room ? 2 * room : 64;
        conv_plan *grown = more > room ? realloc(plans, (size_t)more * sizeof *plans) : NULL;
        if (!grown) { /* no memory for a plan: fp32 on the direct kernels, which need no workspace */
            static conv_plan bare;
            memset(&bare, 0, sizeof bare);
            bare.g = *g, bare.precision = CN_PRECISION_FP32;
            return &bare;
        }
        plans = grown, room = more;
    }
    conv_plan *p = &plans[n_plans++];
    memset(p, 0, sizeof *p);
    p->g = *g;
    p->precision = cn_cu.precision;
    int described = cn_cu.dnn_handle && fits_int(g) ? describe(p) : 1;
    if (!described && !choose(p, MAX_WORKSPACE)) p->dnn = 1;
    else {
        forget(p), p->dnn = 0;
        /* CN_CUDNN_STRICT=1 (the emulated cuDNN's tests): a geometry cuDNN can describe runs on it */
        const char *strict = getenv("CN_CUDNN_STRICT");
        if (described <= 0 && strict && !strcmp(strict, "1"))
            cn_cuda_fail("cuDNN %s a %lldx%lld convolution of %lld to %lld channels (CN_CUDNN_STRICT=1)",
                         described ? "refused the descriptors of" : "offered no algorithm allowed for", (long long)g->kh,
                         (long long)g->kw, (long long)g->cin, (long long)g->cout);
    }
    return p;
}

/* the staging of a bf16 plan in the workspace, after cuDNN's own: the input, the weights and
 * the output as bf16 (the input's region takes the input gradient, the output's the output
 * gradient), the weight gradient as bf16; and for the direct kernels the same as floats */
typedef struct staging {
    uint16_t *x, *w, *y, *dw;
    float *xf, *wf, *yf;
    int64_t nx, nw, ny, bytes;
} staging;

static staging stage(const conv_plan *p, char *work)
{
    const cn_cu_conv *g = &p->g;
    staging s = { 0 };
    s.nx = g->n * g->cin * g->h * g->w, s.nw = weights_of(g),
    s.ny = g->n * g->cout * g->oh * g->ow;
    if (p->precision != CN_PRECISION_BF16) return s;
    int64_t at = p->dnn ? CN_CU_ALIGN((int64_t)p->workspace) : 0, n[7] = { s.nx, s.nw, s.ny, s.nw, s.nx, s.nw, s.ny };
    int64_t off[7];
    for (int i = 0; i < (p->dnn ? 4 : 7); i++) off[i] = at, at += CN_CU_ALIGN(n[i] * (i < 4 ? 2 : 4));
    s.bytes = at;
    if (!work) return s;
    s.x = (uint16_t *)(work + off[0]), s.w = (uint16_t *)(work + off[1]), s.y = (uint16_t *)(work + off[2]),
    s.dw = (uint16_t *)(work + off[3]);
    if (!p->dnn) s.xf = (float *)(work + off[4]), s.wf = (float *)(work + off[5]), s.yf = (float *)(work + off[6]);
    return s;
}

/* the passes' bytes of the workspace: cuDNN's, then the bf16 staging; after them, the bias
 * gradient's partial sums (bias_scratch) */
static int64_t pass_bytes(const conv_plan *p)
{
    int64_t bytes = stage(p, NULL).bytes;
    return CN_CU_ALIGN(bytes ? bytes : p->dnn ? (int64_t)p->workspace : 0);
}

/* the bias gradient's dy: the output's (conv) or the input's map (deconv) */
static int64_t bias_bytes(const cn_node *n, const cn_cu_conv *g)
{
    if (!n->a.bias) return 0;
    return n->id == CN_OP_DECONV ? cn_cuda_channel_sum_bytes(g->n, g->cin, g->h * g->w)
                                 : cn_cuda_channel_sum_bytes(g->n, g->cout, g->oh * g->ow);
}

int64_t cn_cuda_conv_workspace(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    if (cn_cuda_ready()) return 0;
    cn_cu_conv g = n->id == CN_OP_DECONV ? deconv_geom(n, in[0], batch) : geom_of(n, in[0], batch);
    const conv_plan *p = plan_for(&g);
    return pass_bytes(p) + bias_bytes(n, &g);
}

/* how the plan runs, for `convnet bench`'s layer table (cn_kernels.describe): cuDNN's three
 * algorithms, or the direct kernels; a few buffers in turn, each good until the next calls */
const char *cn_cuda_conv_describe(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    static const char *const fwd[] = { "implicit gemm", "implicit precomp gemm", "gemm", "direct", "fft", "fft tiling",
                                       "winograd", "winograd nonfused" };
    static const char *const data[] = { "0", "1", "fft", "fft tiling", "winograd", "winograd nonfused" };
    static const char *const filter[] = { "0", "1", "fft", "3", "winograd", "winograd nonfused", "fft tiling" };
    static char text[4][160];
    static int turn;
    if (cn_cuda_ready()) return "cuda";
    cn_cu_conv g = n->id == CN_OP_DECONV ? deconv_geom(n, in[0], batch) : geom_of(n, in[0], batch);
    const conv_plan *p = plan_for(&g);
    const char *how = p->precision == CN_PRECISION_BF16 ? ", bf16 in NHWC" : p->precision == CN_PRECISION_TF32 ? ", tf32" : "";
    char *t = text[turn++ % 4];
    if (!p->dnn) snprintf(t, sizeof text[0], "direct kernels%s", how);
    else
        snprintf(t, sizeof text[0], "cuDNN %s; data %s; filter %s%s%s", (unsigned)p->fwd < 8 ? fwd[p->fwd] : "?",
                 (unsigned)p->bwd_data < 6 ? data[p->bwd_data] : "?", (unsigned)p->bwd_filter < 7 ? filter[p->bwd_filter] : "?",
                 how, p->timed ? ", timed" : "");
    return t;
}

static double *bias_scratch(const conv_plan *p, void *work) { return (double *)((char *)work + pass_bytes(p)); }

/* a cuDNN call's status: 0 done, 1 not supported for these pointers (an algorithm may want more
 * alignment than a slab's offsets give; the direct kernel runs instead), -1 failed (kept) */
static int dnn_ran(cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_NOT_SUPPORTED) return 1;
    return cn_dnn_ok(s, what);
}

/* The three passes of plan p, each in its precision, on cuDNN or else on the direct kernels;
 * `in` (N, cin, h, w) is the convolution's input, `out` (N, cout, oh, ow) its output, as in
 * g. Each returns 0, or -1 on a failure (kept). A deconv runs them with its roles swapped. */

/* the direct kernels' passes, on float operands */
static void direct_forward(cn_cu_conv *g, const float *in, const float *w, const float *b, float *out, int add)
{
    void *args[] = { g, &in, &w, &b, &out, &add };
    cn_cu_launch(CN_CU_K_conv_forward, g->n * g->cout * g->oh * g->ow, args);
}
static void direct_data(cn_cu_conv *g, const float *w, const float *dout, float *din, int fresh)
{
    void *args[] = { g, &w, &dout, &din, &fresh };
    cn_cu_launch(CN_CU_K_conv_backward_data, g->n * g->cin * g->h * g->w, args);
}
static void direct_filter(cn_cu_conv *g, const float *in, const float *dout, float *dw)
{
    void *args[] = { g, &in, &dout, &dw };
    cn_cu_launch_blocks(CN_CU_K_conv_backward_filter, weights_of(g), args);
}

/* the staged views of in, w and out (N, C, HW as cn_cuda_bf16_pack takes them): NHWC for cuDNN */
#define IN_DIMS(g) (g)->n, (g)->cin, (g)->h * (g)->w
#define W_DIMS(g) (g)->cout, (g)->cin / (g)->groups, (g)->kh * (g)->kw
#define OUT_DIMS(g) (g)->n, (g)->cout, (g)->oh * (g)->ow
/* the staged layout: cuDNN's, and the direct kernels' staging too (they unpack it to NCHW), so
 * that the tests without cuDNN run the same layout code */
#define NHWC 1

/* The forward with its bias and relu in cuDNN's epilogue (cudnnConvolutionBiasActivationForward,
 * fp32 and tf32): 0 done, 1 not here (IMPLICIT_PRECOMP_GEMM only; a call cuDNN refuses, for any
 * reason, leaves the plan on the passes apart for good), -1 failed while running (kept). A relu
 * clamps NaN to 0 (not propagated), as ours does. */
static int fused_forward(conv_plan *p, const cn_cu_conv *g, char *work, const float *in, const float *w, const float *b,
                         float *out, int relu)
{
    static cudnnActivationDescriptor_t acts[2]; /* identity, relu */
    if (!acts[relu]) {
        if (cn_cu.dnn.cudnnCreateActivationDescriptor(&acts[relu])) return acts[relu] = NULL, 1;
        if (cn_cu.dnn.cudnnSetActivationDescriptor(acts[relu], relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                                   CUDNN_NOT_PROPAGATE_NAN, 0.0))
            return 1; /* set again next time */
    }
    /* the identity only with this algorithm (cuDNN's rule); the relu too, so that a relu fused or
     * apart (the identity, then our relu) goes through the same epilogue: the same bits */
    if (p->fwd != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) return 1;
    if (!p->bias) {
        if (cn_cu.dnn.cudnnCreateTensorDescriptor(&p->bias)) return p->bias = NULL, 1;
        if (cn_cu.dnn.cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, (int)g->cout, 1, 1))
            return 1;
    }
    float one = 1, zero = 0;
    cudnnStatus_t r = cn_cu.dnn.cudnnConvolutionBiasActivationForward(cn_cu.dnn_handle, &one, p->x, in, p->w, w, p->conv,
                                                                      p->fwd, work, p->workspace, &zero, p->y, out,
                                                                      p->bias, b, acts[relu], p->y, out);
    if (r == CUDNN_STATUS_SUCCESS) return 0;
    if (r == CUDNN_STATUS_EXECUTION_FAILED) return dnn_ran(r, "cudnnConvolutionBiasActivationForward");
    p->unfused = 1;
    return 1;
}

/* an operand as cuDNN reads it in bf16: an activation stored as bf16 NHWC itself, else its
 * staged copy (packed by the caller) */
static const uint16_t *bf16_view(cn_cu_act t, const uint16_t *staged) { return t.bf16 && t.nhwc ? t.p : staged; }

/* cuDNN's bf16 forward and backward-data calls on bf16 NHWC operands (dnn_ran's status) */
static int bf16_forward(const conv_plan *p, char *work, const void *x, const void *w, int add, void *y)
{
    float one = 1, zero = 0;
    return dnn_ran(cn_cu.dnn.cudnnConvolutionForward(cn_cu.dnn_handle, &one, p->x, x, p->w, w, p->conv, p->fwd, work,
                                                     p->workspace, add ? &one : &zero, p->y, y),
                   "cudnnConvolutionForward (bf16)");
}
static int bf16_data(const conv_plan *p, char *work, const void *w, const void *dy, int add, void *dx)
{
    float one = 1, zero = 0;
    return dnn_ran(cn_cu.dnn.cudnnConvolutionBackwardData(cn_cu.dnn_handle, &one, p->w, w, p->y, dy, p->conv, p->bwd_data,
                                                          work, p->workspace, add ? &one : &zero, p->x, dx),
                   "cudnnConvolutionBackwardData (bf16)");
}
static int bf16_filter(const conv_plan *p, char *work, const void *x, const void *dy, void *dw)
{
    float one = 1, zero = 0;
    return dnn_ran(cn_cu.dnn.cudnnConvolutionBackwardFilter(cn_cu.dnn_handle, &one, p->x, x, p->y, dy, p->conv,
                                                            p->bwd_filter, work, p->workspace, &zero, p->w, dw),
                   "cudnnConvolutionBackwardFilter (bf16)");
}

/* out = (add: out +) the convolution of in with w, plus b (NULL: none), then relu where asked;
 * staged: in is staged already (bf16: by the filter pass before) */
static int forward_pass(conv_plan *p, cn_cu_conv *g, char *work, cn_cu_act in, const float *w, const float *b,
                        cn_cu_act out, int add, int relu, int staged)
{
    float one = 1, zero = 0;
    if (p->precision == CN_PRECISION_BF16) {
        staging s = stage(p, work);
        const uint16_t *sx = bf16_view(in, s.x);
        if (!staged && sx == s.x) cn_cuda_bf16_pack(in, s.x, IN_DIMS(g), NHWC);
        cn_cuda_bf16_pack(cn_cu_floats(w), s.w, W_DIMS(g), NHWC);
        /* an output stored as bf16 NHWC with nothing to add to it: cuDNN writes it itself */
        int direct = p->dnn && out.bf16 && out.nhwc && !b && !relu;
        int ran = p->dnn ? bf16_forward(p, work, sx, s.w, direct && add, direct ? out.p : s.y) : 1;
        if (ran > 0 && p->dnn && (direct || sx != s.x)) { /* refused on the slabs' own pointers: staged */
            if (sx != s.x) cn_cuda_bf16_pack(in, s.x, IN_DIMS(g), NHWC), sx = s.x;
            direct = 0;
            ran = bf16_forward(p, work, sx, s.w, 0, s.y);
        }
        if (ran < 0) return -1;
        if (ran == 0 && direct) return 0;
        if (ran > 0) {
            if (p->dnn) return cn_cuda_fail("cuDNN refused a bf16 convolution's forward pass"), -1;
            cn_cuda_bf16_unpack(sx, cn_cu_floats(s.xf), NULL, IN_DIMS(g), NHWC, 0, 0);
            cn_cuda_bf16_unpack(s.w, cn_cu_floats(s.wf), NULL, W_DIMS(g), NHWC, 0, 0);
            direct_forward(g, s.xf, s.wf, NULL, s.yf, 0);
            cn_cuda_bf16_pack(cn_cu_floats(s.yf), s.y, OUT_DIMS(g), NHWC);
        }
        cn_cuda_bf16_unpack(s.y, out, b, OUT_DIMS(g), NHWC, add, relu);
        return 0;
    }
    /* fp32 and tf32 keep their activations as floats (cn_cuda_half_storage) */
    if (p->dnn && b && !add && !p->unfused) {
        int fused = fused_forward(p, g, work, in.p, w, b, out.p, relu);
        if (fused <= 0) return fused;
    }
    int ran = p->dnn ? dnn_ran(cn_cu.dnn.cudnnConvolutionForward(cn_cu.dnn_handle, &one, p->x, in.p, p->w, w, p->conv, p->fwd,
                                                                 work, p->workspace, add ? &one : &zero, p->y, out.p),
                               "cudnnConvolutionForward")
                     : 1;
    if (ran < 0) return -1;
    if (ran > 0) direct_forward(g, in.p, w, b, out.p, add), b = NULL; /* the direct kernel adds the bias itself */
    cn_cuda_bias_relu(out, b, OUT_DIMS(g), relu);
    return 0;
}

/* din = (add: din +) the input gradient of dout (backward data); staged: dout is staged already */
static int data_pass(const conv_plan *p, cn_cu_conv *g, char *work, const float *w, cn_cu_act dout, cn_cu_act din, int add,
                     int staged)
{
    float one = 1, zero = 0;
    if (p->precision == CN_PRECISION_BF16) {
        staging s = stage(p, work);
        const uint16_t *sy = bf16_view(dout, s.y);
        cn_cuda_bf16_pack(cn_cu_floats(w), s.w, W_DIMS(g), NHWC);
        if (!staged && sy == s.y) cn_cuda_bf16_pack(dout, s.y, OUT_DIMS(g), NHWC);
        int direct = p->dnn && din.bf16 && din.nhwc; /* cuDNN adds to it or stores it itself */
        int ran = p->dnn ? bf16_data(p, work, s.w, sy, direct && add, direct ? din.p : s.x) : 1;
        if (ran > 0 && p->dnn && (direct || sy != s.y)) { /* refused on the slabs' own pointers: staged */
            if (sy != s.y) cn_cuda_bf16_pack(dout, s.y, OUT_DIMS(g), NHWC), sy = s.y;
            direct = 0;
            ran = bf16_data(p, work, s.w, sy, 0, s.x);
        }
        if (ran < 0) return -1;
        if (ran == 0 && direct) return 0;
        if (ran > 0) {
            if (p->dnn) return cn_cuda_fail("cuDNN refused a bf16 convolution's input gradient"), -1;
            cn_cuda_bf16_unpack(s.w, cn_cu_floats(s.wf), NULL, W_DIMS(g), NHWC, 0, 0);
            cn_cuda_bf16_unpack(sy, cn_cu_floats(s.yf), NULL, OUT_DIMS(g), NHWC, 0, 0);
            direct_data(g, s.wf, s.yf, s.xf, 1);
            cn_cuda_bf16_pack(cn_cu_floats(s.xf), s.x, IN_DIMS(g), NHWC);
        }
        cn_cuda_bf16_unpack(s.x, din, NULL, IN_DIMS(g), NHWC, add, 0);
        return 0;
    }
    int ran = p->dnn ? dnn_ran(cn_cu.dnn.cudnnConvolutionBackwardData(cn_cu.dnn_handle, &one, p->w, w, p->y, dout.p, p->conv,
                                                                      p->bwd_data, work, p->workspace, add ? &one : &zero,
                                                                      p->x, din.p),
                               "cudnnConvolutionBackwardData")
                     : 1;
    if (ran > 0) direct_data(g, w, dout.p, din.p, !add);
    return ran < 0 ? -1 : 0;
}

/* dw += the weight gradient from the input `in` and the output's gradient `dout`; in bf16 both
 * stay staged for the pass after it (the input or output gradient, which stages nothing else
 * over them first) */
static int filter_pass(const conv_plan *p, cn_cu_conv *g, char *work, cn_cu_act in, cn_cu_act dout, float *dw)
{
    float one = 1;
    if (p->precision == CN_PRECISION_BF16) {
        staging s = stage(p, work);
        const uint16_t *sx = bf16_view(in, s.x), *sy = bf16_view(dout, s.y);
        if (sx == s.x) cn_cuda_bf16_pack(in, s.x, IN_DIMS(g), NHWC);
        if (sy == s.y) cn_cuda_bf16_pack(dout, s.y, OUT_DIMS(g), NHWC);
        int ran = p->dnn ? bf16_filter(p, work, sx, sy, s.dw) : 1;
        if (ran > 0 && p->dnn && (sx != s.x || sy != s.y)) { /* refused on the slabs' own pointers: staged */
            if (sx != s.x) cn_cuda_bf16_pack(in, s.x, IN_DIMS(g), NHWC), sx = s.x;
            if (sy != s.y) cn_cuda_bf16_pack(dout, s.y, OUT_DIMS(g), NHWC), sy = s.y;
            ran = bf16_filter(p, work, sx, sy, s.dw);
        }
        if (ran < 0) return -1;
        if (ran > 0) {
            if (p->dnn) return cn_cuda_fail("cuDNN refused a bf16 convolution's weight gradient"), -1;
            cn_cuda_bf16_unpack(sx, cn_cu_floats(s.xf), NULL, IN_DIMS(g), NHWC, 0, 0);
            cn_cuda_bf16_unpack(sy, cn_cu_floats(s.yf), NULL, OUT_DIMS(g), NHWC, 0, 0);
            if (cn_cu_ok(cn_cu.cu.cuMemsetD8Async((CUdeviceptr)(uintptr_t)s.wf, 0, (size_t)s.nw * sizeof(float), cn_cu.stream),
                         "cuMemsetD8Async"))
                return -1;
            direct_filter(g, s.xf, s.yf, s.wf);
            cn_cuda_bf16_pack(cn_cu_floats(s.wf), s.dw, W_DIMS(g), NHWC);
        }
        cn_cuda_bf16_unpack(s.dw, cn_cu_floats(dw), NULL, W_DIMS(g), NHWC, 1, 0);
        return 0;
    }
    int ran = p->dnn ? dnn_ran(cn_cu.dnn.cudnnConvolutionBackwardFilter(cn_cu.dnn_handle, &one, p->x, in.p, p->y, dout.p,
                                                                        p->conv, p->bwd_filter, work, p->workspace, &one, p->w,
                                                                        dw),
                               "cudnnConvolutionBackwardFilter")
                     : 1;
    if (ran > 0) direct_filter(g, in.p, dout.p, dw);
    return ran < 0 ? -1 : 0;
}

/* relu: a relu fused after the convolution (cn_kernels.forward_relu_out), y being its output */
static void conv_forward(const cn_op_io *io, int relu)
{
    if (cn_cuda_ready()) return;
    cn_cu_conv g = geom_of(io->n, io->in[0], io->batch);
    conv_plan *p = plan_for(&g);
    const float *w = io->w, *b = io->n->a.bias ? w + weights_of(&g) : NULL;
    forward_pass(p, &g, io->work, cn_cu_x(io, 0), w, b, cn_cu_y(io), 0, relu, 0);
}

void cn_cuda_conv_forward(const cn_op_io *io) { conv_forward(io, 0); }
void cn_cuda_conv_forward_relu(const cn_op_io *io) { conv_forward(io, 1); }

/* db += the sums of dy's channels; dw += the weight gradient; dx (+)= the input gradient */
void cn_cuda_conv_backward(const cn_op_io *io)
{
    if (cn_cuda_ready()) return;
    cn_cu_conv g = geom_of(io->n, io->in[0], io->batch);
    conv_plan *p = plan_for(&g);
    int64_t wn = weights_of(&g);
    float *dw = io->dw, *db = io->n->a.bias ? dw + wn : NULL;
    if (db) cn_cuda_channel_sum(cn_cu_dy(io), db, g.n, g.cout, g.oh * g.ow, bias_scratch(p, io->work));
    if (filter_pass(p, &g, io->work, cn_cu_x(io, 0), cn_cu_dy(io), dw) || !io->dx[0]) return;
    data_pass(p, &g, io->work, io->w, cn_cu_dy(io), cn_cu_dx(io, 0), !(io->dx_fresh & 1u), 1);
}

/* deconv: y = the convolution's input gradient of x (backward data), then the bias */
void cn_cuda_deconv_forward(const cn_op_io *io)
{
    if (cn_cuda_ready()) return;
    cn_cu_conv g = deconv_geom(io->n, io->in[0], io->batch);
    conv_plan *p = plan_for(&g);
    int64_t wn = weights_of(&g);
    const float *w = io->w, *b = io->n->a.bias ? w + wn : NULL;
    if (data_pass(p, &g, io->work, w, cn_cu_x(io, 0), cn_cu_y(io), 0, 0)) return;
    cn_cuda_bias_relu(cn_cu_y(io), b, g.n, g.cin, g.h * g.w, 0);
}

/* deconv: db += the sums of dy's channels; dw += the convolution's weight gradient with dy as
 * its input and x as its output's gradient; dx (+)= the convolution of dy */
void cn_cuda_deconv_backward(const cn_op_io *io)
{
    if (cn_cuda_ready()) return;
    cn_cu_conv g = deconv_geom(io->n, io->in[0], io->batch);
    conv_plan *p = plan_for(&g);
    int64_t wn = weights_of(&g);
    float *dw = io->dw, *db = io->n->a.bias ? dw + wn : NULL;
    if (db) cn_cuda_channel_sum(cn_cu_dy(io), db, g.n, g.cin, g.h * g.w, bias_scratch(p, io->work));
    if (filter_pass(p, &g, io->work, cn_cu_dy(io), cn_cu_x(io, 0), dw) || !io->dx[0]) return;
    forward_pass(p, &g, io->work, cn_cu_dy(io), io->w, NULL, cn_cu_dx(io, 0), !(io->dx_fresh & 1u), 0, 1);
}
