/* cuda_impl.h — the CUDA backend's shared state: the driver, cuBLAS and cuDNN entry points
 * (found with dlsym at first use: nothing CUDA is linked, so every binary runs without a
 * driver), the loaded kernels, the stream everything runs on in order, and the first failure
 * (kernels return nothing: a failure is kept and reported at the next check, loader.c). */
#ifndef CN_CUDA_IMPL_H
#define CN_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda.h>
#include <cudnn.h>

#include "../backend.h"
#include "cuda_abi.h"

/* The entry points, each declared with its header's own type; a name the headers map onto a
 * versioned symbol (cuMemFree -> cuMemFree_v2) is looked up by that symbol. */
#define CN_CU_DRIVER_API(X)                                                                        \
    X(cuInit) X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetName) X(cuDeviceGetAttribute)         \
    X(cuDevicePrimaryCtxRetain) X(cuCtxSetCurrent) X(cuStreamCreate) X(cuStreamSynchronize)         \
    X(cuModuleLoadData) X(cuModuleGetFunction) X(cuLaunchKernel) X(cuMemAllocManaged) X(cuMemFree) \
    X(cuMemGetInfo) X(cuMemsetD8Async) X(cuGetErrorName) X(cuGetErrorString) X(cuMemAllocHost)      \
    X(cuMemFreeHost) X(cuMemcpyAsync) X(cuStreamBeginCapture) X(cuStreamEndCapture) X(cuGraphInstantiate)   \
    X(cuGraphLaunch) X(cuGraphExecDestroy) X(cuGraphDestroy) X(cuEventCreate) X(cuEventRecord)                \
    X(cuEventSynchronize)
#define CN_CU_BLAS_API(X) X(cublasCreate) X(cublasSetStream) X(cublasSetMathMode) X(cublasSgemm) X(cublasGemmEx) X(cublasGetStatusString)
#define CN_CU_DNN_API(X)                                                                           \
    X(cudnnCreate) X(cudnnSetStream) X(cudnnGetErrorString) X(cudnnCreateTensorDescriptor)          \
    X(cudnnSetTensor4dDescriptor) X(cudnnDestroyTensorDescriptor) X(cudnnCreateFilterDescriptor)    \
    X(cudnnSetFilter4dDescriptor) X(cudnnDestroyFilterDescriptor) X(cudnnCreateConvolutionDescriptor) \
    X(cudnnSetConvolution2dDescriptor) X(cudnnSetConvolutionGroupCount) X(cudnnSetConvolutionMathType) \
    X(cudnnDestroyConvolutionDescriptor) X(cudnnGetConvolution2dForwardOutputDim)                   \
    X(cudnnGetConvolutionForwardAlgorithm_v7) X(cudnnGetConvolutionBackwardDataAlgorithm_v7)       \
    X(cudnnGetConvolutionBackwardFilterAlgorithm_v7) X(cudnnConvolutionForward)                    \
    X(cudnnConvolutionBackwardData) X(cudnnConvolutionBackwardFilter) X(cudnnCreateActivationDescriptor)      \
    X(cudnnSetActivationDescriptor) X(cudnnConvolutionBiasActivationForward)                       \
    X(cudnnFindConvolutionForwardAlgorithmEx) X(cudnnFindConvolutionBackwardDataAlgorithmEx)       \
    X(cudnnFindConvolutionBackwardFilterAlgorithmEx)

#define CN_CU_MEMBER(name) __typeof__(&name) name;
#define CN_CU_KERNEL_ENUM(name) CN_CU_K_##name,
enum { CN_CU_KERNELS(CN_CU_KERNEL_ENUM) CN_CU_KERNEL_COUNT };

/* What the step's kernels write and the host reads after a sync: page-locked host memory, which
 * the GPU writes over the bus (no page of managed memory moves for them). */
typedef struct cn_cu_pinned {
    double norm[CN_CU_NORM_BLOCKS], loss[CN_CU_LOSS_BLOCKS], correct[CN_CU_LOSS_BLOCKS];
} cn_cu_pinned;

enum { CN_CU_SYNC_SLOT = 2, CN_CU_SLOTS = 3 };

typedef struct cn_cuda {
    struct { CN_CU_DRIVER_API(CN_CU_MEMBER) } cu;
    struct { CN_CU_BLAS_API(CN_CU_MEMBER) } blas;
    struct { CN_CU_DNN_API(CN_CU_MEMBER) } dnn;
    CUcontext context;
    CUstream stream;
    CUfunction kernel[CN_CU_KERNEL_COUNT];
    cublasHandle_t blas_handle;
    cudnnHandle_t dnn_handle;  /* NULL without libcudnn.so.9: convolutions run our direct kernels */
    int precision;             /* cn_precision: fp32, tf32 (tensor-op math in cuBLAS and cuDNN) or bf16 */
    /* the step's partial sums, in page-locked host memory: slots 0 and 1 for steps in flight
     * (one step read while the next is queued), CN_CU_SYNC_SLOT for the rest (a step one at a
     * time, the sums read at once); the queued kernels write the selected one, pinned */
    cn_cu_pinned *slots, *pinned;
    int slot;
    CUevent marks[2];          /* each slot's step done (its update queued before the mark) */
    /* on the GPU: each slot's gate (the clip factor, 1 when the step was finite) and the halt
     * flag a step that was not finite sets (the updates and batch norms' running statistics
     * then stand still until the host clears it) */
    double *gate;
    int *halt;
    int32_t *ints;             /* a batch's labels or best columns, page-locked */
    int64_t ints_n;
    cn_batch_draw *draws;      /* a batch's draws for make_batch, on the GPU */
    int64_t draws_n;
    char device_name[128];
} cn_cuda;

extern cn_cuda cn_cu;

/* Loads the driver, the device, the kernels and the libraries once; 0 when ready, else -1 and
 * the reason kept for cn_cuda_open's message. Every entry point of the backend calls it. */
int cn_cuda_ready(void);
/* The backend's open (cn_backend.open): ready, in a precision (cn_precision). */
cn_status cn_cuda_open(cn_ctx *ctx, int precision);
/* Keeps the first failure (printf-style) for the next cn_cuda_take_error. */
void cn_cuda_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The first failure since the last call (a static buffer), then forgotten; NULL: none. */
const char *cn_cuda_take_error(void);
/* 0 on success, else the failure kept (what: the call, in words) and -1 */
int cn_cu_ok(CUresult r, const char *what);
int cn_blas_ok(cublasStatus_t s, const char *what);
int cn_dnn_ok(cudnnStatus_t s, const char *what);

/* Launches kernel k over n items (grid-stride loops) or over `blocks` blocks (one per channel
 * or weight) of CN_CU_THREADS threads; args as cuLaunchKernel takes them. Nothing for n = 0. */
#define CN_CU_THREADS 256
void cn_cu_launch(int k, int64_t n, void **args);
void cn_cu_launch_blocks(int k, int64_t blocks, void **args);
/* Waits for the stream; 0 or -1 (failure kept). */
int cn_cu_sync(void);

/* the kernel table's rows (ops.c, conv.c, dense.c) and the step (step.c) */
void cn_cuda_conv_forward(const cn_op_io *io);
void cn_cuda_conv_forward_relu(const cn_op_io *io);
void cn_cuda_conv_backward(const cn_op_io *io);
int64_t cn_cuda_conv_workspace(const cn_node *n, const cn_node *const *in, int64_t batch);
const char *cn_cuda_conv_describe(const cn_node *n, const cn_node *const *in, int64_t batch);
void cn_cuda_deconv_forward(const cn_op_io *io);
void cn_cuda_deconv_backward(const cn_op_io *io);
int64_t cn_cuda_dense_workspace(const cn_node *n, const cn_node *const *in, int64_t batch);
const char *cn_cuda_dense_describe(const cn_node *n, const cn_node *const *in, int64_t batch);
void cn_cuda_dense_forward(const cn_op_io *io);
void cn_cuda_dense_forward_relu(const cn_op_io *io);
void cn_cuda_dense_backward(const cn_op_io *io);
void cn_cuda_maxpool_forward(const cn_op_io *io);
void cn_cuda_minpool_forward(const cn_op_io *io);
void cn_cuda_avgpool_forward(const cn_op_io *io);
void cn_cuda_globalavgpool_forward(const cn_op_io *io);
void cn_cuda_globalmaxpool_forward(const cn_op_io *io);
void cn_cuda_maxpool_backward(const cn_op_io *io);
void cn_cuda_maxpool_relu_forward(const cn_op_io *io);
void cn_cuda_maxpool_relu_backward(const cn_op_io *io);
void cn_cuda_minpool_backward(const cn_op_io *io);
void cn_cuda_avgpool_backward(const cn_op_io *io);
void cn_cuda_globalavgpool_backward(const cn_op_io *io);
void cn_cuda_globalmaxpool_backward(const cn_op_io *io);
void cn_cuda_relu_forward(const cn_op_io *io);
void cn_cuda_relu_backward(const cn_op_io *io);
void cn_cuda_leakyrelu_forward(const cn_op_io *io);
void cn_cuda_leakyrelu_backward(const cn_op_io *io);
void cn_cuda_sigmoid_forward(const cn_op_io *io);
void cn_cuda_sigmoid_backward(const cn_op_io *io);
void cn_cuda_tanh_forward(const cn_op_io *io);
void cn_cuda_tanh_backward(const cn_op_io *io);
void cn_cuda_relu6_forward(const cn_op_io *io);
void cn_cuda_relu6_backward(const cn_op_io *io);
void cn_cuda_hardsigmoid_forward(const cn_op_io *io);
void cn_cuda_hardsigmoid_backward(const cn_op_io *io);
void cn_cuda_hardswish_forward(const cn_op_io *io);
void cn_cuda_hardswish_backward(const cn_op_io *io);
void cn_cuda_silu_forward(const cn_op_io *io);
void cn_cuda_silu_backward(const cn_op_io *io);
void cn_cuda_gelu_forward(const cn_op_io *io);
void cn_cuda_gelu_backward(const cn_op_io *io);
void cn_cuda_elu_forward(const cn_op_io *io);
void cn_cuda_elu_backward(const cn_op_io *io);
void cn_cuda_prelu_forward(const cn_op_io *io);
void cn_cuda_prelu_backward(const cn_op_io *io);
void cn_cuda_scale_forward(const cn_op_io *io);
void cn_cuda_scale_backward(const cn_op_io *io);
void cn_cuda_softmax_forward(const cn_op_io *io);
void cn_cuda_softmax_backward(const cn_op_io *io);
int64_t cn_cuda_batchnorm_workspace(const cn_node *n, const cn_node *const *in, int64_t batch);
void cn_cuda_batchnorm_forward(const cn_op_io *io);
void cn_cuda_batchnorm_forward_relu(const cn_op_io *io);
void cn_cuda_batchnorm_stats(const cn_op_io *io, int backward, double *out);
void cn_cuda_batchnorm_backward_relu(const cn_op_io *io);
void cn_cuda_batchnorm_backward(const cn_op_io *io);
void cn_cuda_dropout_draw(const cn_op_io *io);
void cn_cuda_dropout_forward(const cn_op_io *io);
void cn_cuda_dropout_backward(const cn_op_io *io);
void cn_cuda_flatten_forward(const cn_op_io *io);
void cn_cuda_flatten_backward(const cn_op_io *io);
void cn_cuda_add_forward(const cn_op_io *io);
void cn_cuda_add_backward(const cn_op_io *io);
void cn_cuda_add_forward_relu(const cn_op_io *io);
void cn_cuda_add_backward_relu(const cn_op_io *io);
void cn_cuda_mul_forward(const cn_op_io *io);
void cn_cuda_mul_backward(const cn_op_io *io);
void cn_cuda_pad_forward(const cn_op_io *io);
void cn_cuda_pad_backward(const cn_op_io *io);
void cn_cuda_crop_forward(const cn_op_io *io);
void cn_cuda_crop_backward(const cn_op_io *io);
void cn_cuda_shuffle_forward(const cn_op_io *io);
void cn_cuda_shuffle_backward(const cn_op_io *io);
void cn_cuda_channels_forward(const cn_op_io *io);
void cn_cuda_channels_backward(const cn_op_io *io);
void cn_cuda_upsample_forward(const cn_op_io *io);
void cn_cuda_upsample_backward(const cn_op_io *io);
void cn_cuda_adaptiveavgpool_forward(const cn_op_io *io);
void cn_cuda_adaptiveavgpool_backward(const cn_op_io *io);
/* layernorm, groupnorm and instancenorm */
void cn_cuda_norm_forward(const cn_op_io *io);
void cn_cuda_norm_backward(const cn_op_io *io);
void cn_cuda_concat_forward(const cn_op_io *io);
void cn_cuda_concat_backward(const cn_op_io *io);
/* 1 when activations between layers are stored as bf16 now (cn_backend.half_storage) */
int cn_cuda_half_storage(void);
/* a call's activations as the kernels take them: floats in NCHW, or bf16 in NHWC where
 * cn_op_io.half says */
static inline cn_cu_act cn_cu_act_of(const void *p, int half) { return (cn_cu_act){ (void *)p, half != 0, half != 0 }; }
static inline cn_cu_act cn_cu_x(const cn_op_io *io, int j) { return cn_cu_act_of(io->x[j], (io->half >> j) & 1u); }
static inline cn_cu_act cn_cu_dx(const cn_op_io *io, int j) { return cn_cu_act_of(io->dx[j], (io->half >> j) & 1u); }
static inline cn_cu_act cn_cu_y(const cn_op_io *io) { return cn_cu_act_of(io->y, io->half & CN_HALF_Y); }
static inline cn_cu_act cn_cu_dy(const cn_op_io *io) { return cn_cu_act_of(io->dy, io->half & CN_HALF_Y); }
static inline cn_cu_act cn_cu_floats(const void *p) { return cn_cu_act_of(p, 0); }
/* y (N, C, HW) += b per channel (b NULL: nothing), then relu where asked: the end of a conv
 * or dense layer's forward, and a relu fused after it */
void cn_cuda_bias_relu(cn_cu_act y, const float *b, int64_t n, int64_t c, int64_t hw, int relu);
/* bf16 staging of a product's operands (--precision bf16; conv.c, dense.c): dst = x (N, C, HW)
 * rounded to bf16 (to nearest even), in NHWC where asked; and back, y (N, C, HW) = (add: y +)
 * the staged src, plus b per channel (NULL: none), then relu where asked */
void cn_cuda_bf16_pack(cn_cu_act x, uint16_t *dst, int64_t n, int64_t c, int64_t hw, int nhwc);
void cn_cuda_bf16_unpack(const uint16_t *src, cn_cu_act y, const float *b, int64_t n, int64_t c, int64_t hw, int nhwc,
                         int add, int relu);
/* the workspace's regions start on 256-byte boundaries (cuDNN's and cuBLAS's alignment) */
#define CN_CU_ALIGN(bytes) (((bytes) + 255) / 256 * 256)
/* out[ch] += the sum of dy (N, C, HW) over N and HW: the bias gradients of conv and dense; a
 * large map in runs, their partial sums in scratch (cn_cuda_channel_sum_bytes of workspace) */
void cn_cuda_channel_sum(cn_cu_act dy, float *out, int64_t n, int64_t c, int64_t hw, double *scratch);
int64_t cn_cuda_channel_sum_bytes(int64_t n, int64_t c, int64_t hw);

extern const cn_step_kernels cn_cuda_step;
extern const cn_memory_ops cn_cuda_memory;

#endif
