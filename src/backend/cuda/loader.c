#define _GNU_SOURCE /* dlopen's RTLD_* with -std=c11 */
/* loader.c — the CUDA backend's start: libcuda.so.1, libcublas.so.13 and libcudnn.so.9 opened
 * with dlopen at first use (a machine without them gets a clear message, and the binaries
 * need none of them to start), the first device's primary context, one stream, the kernels of
 * kernels.cu from the fatbin embedded at build time; then the memory every slab lives in
 * (managed, checked against the device's free memory first) and the launch helpers. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_impl.h"

/* kernels.cu compiled by nvcc (sm_80 and sm_90 code, compute_90 PTX), embedded by CMake */
extern const unsigned char cn_cuda_fatbin[];

cn_cuda cn_cu;

static int state;          /* 0: not tried, 1: ready, -1: cannot run (why says why) */
static char why[512];
static char first_error[512];
static _Thread_local int bound; /* the context is current on this thread */

void cn_cuda_fail(const char *fmt, ...)
{
    if (first_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(first_error, sizeof first_error, fmt, ap);
    va_end(ap);
}

const char *cn_cuda_take_error(void)
{
    static char taken[sizeof first_error];
    if (!first_error[0]) return NULL;
    memcpy(taken, first_error, sizeof taken);
    first_error[0] = 0;
    return taken;
}

static const char *cu_name(CUresult r)
{
    const char *s = NULL;
    if (cn_cu.cu.cuGetErrorName) cn_cu.cu.cuGetErrorName(r, &s);
    return s ? s : "unknown CUDA error";
}

static const char *cu_text(CUresult r)
{
    const char *s = NULL;
    if (cn_cu.cu.cuGetErrorString) cn_cu.cu.cuGetErrorString(r, &s);
    return s ? s : "";
}

int cn_cu_ok(CUresult r, const char *what)
{
    if (r == CUDA_SUCCESS) return 0;
    cn_cuda_fail("CUDA: %s failed: %s (%s)", what, cu_name(r), cu_text(r));
    return -1;
}

int cn_blas_ok(cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    cn_cuda_fail("cuBLAS: %s failed: %s", what, cn_cu.blas.cublasGetStatusString(s));
    return -1;
}

int cn_dnn_ok(cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_SUCCESS) return 0;
    cn_cuda_fail("cuDNN: %s failed: %s", what, cn_cu.dnn.cudnnGetErrorString(s));
    return -1;
}

/* name from the library path, else from the CUDA toolkit's usual folder */
static void *open_library(const char *name, char *err, size_t cap)
{
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
    snprintf(err, cap, "%s", dlerror());
    char path[256];
    snprintf(path, sizeof path, "/usr/local/cuda/lib64/%s", name);
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

#define CN_STR(x) #x
#define CN_XSTR(x) CN_STR(x) /* the symbol a header's macro names (cuMemFree -> "cuMemFree_v2") */
#define CN_CU_LOOKUP(table, name)                                                                  \
    if (!(*(void **)&cn_cu.table.name = dlsym(lib, CN_XSTR(name)))) missing = CN_XSTR(name);

static int fail_start(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail_start(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    state = -1;
    return -1;
}

static int start_driver(void)
{
    char err[256] = "";
    void *lib = open_library("libcuda.so.1", err, sizeof err);
    const char *missing = NULL;
    if (!lib) return fail_start("no NVIDIA driver: %s", err);
#define X(name) CN_CU_LOOKUP(cu, name)
    CN_CU_DRIVER_API(X)
#undef X
    if (missing) return fail_start("the NVIDIA driver's libcuda.so.1 lacks %s (driver too old?)", missing);
    CUresult r = cn_cu.cu.cuInit(0);
    int count = 0;
    if (r == CUDA_ERROR_NO_DEVICE || (r == CUDA_SUCCESS && cn_cu.cu.cuDeviceGetCount(&count) == CUDA_SUCCESS && !count))
        return fail_start("no CUDA device (the driver is installed but sees no GPU)");
    if (r != CUDA_SUCCESS) return fail_start("the CUDA driver did not start: %s (%s)", cu_name(r), cu_text(r));
    CUdevice dev;
    int major = 0, minor = 0;
    if ((r = cn_cu.cu.cuDeviceGet(&dev, 0)) || (r = cn_cu.cu.cuDeviceGetName(cn_cu.device_name, sizeof cn_cu.device_name, dev)) ||
        (r = cn_cu.cu.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)) ||
        (r = cn_cu.cu.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)) ||
        (r = cn_cu.cu.cuDevicePrimaryCtxRetain(&cn_cu.context, dev)) || (r = cn_cu.cu.cuCtxSetCurrent(cn_cu.context)) ||
        (r = cn_cu.cu.cuStreamCreate(&cn_cu.stream, CU_STREAM_DEFAULT)))
        return fail_start("CUDA device 0 could not be opened: %s (%s)", cu_name(r), cu_text(r));
    bound = 1;
    CUmodule module;
    if ((r = cn_cu.cu.cuModuleLoadData(&module, cn_cuda_fatbin)))
        return fail_start("convnet's CUDA kernels (built for sm_80 and sm_90, PTX for compute_90) do not load on %s "
                          "(compute capability %d.%d): %s (%s)",
                          cn_cu.device_name, major, minor, cu_name(r), cu_text(r));
    static const char *const names[] = {
#define X(name) #name,
        CN_CU_KERNELS(X)
#undef X
    };
    for (int k = 0; k < CN_CU_KERNEL_COUNT; k++)
        if ((r = cn_cu.cu.cuModuleGetFunction(&cn_cu.kernel[k], module, names[k])))
            return fail_start("the CUDA kernel %s is missing from the fatbin: %s", names[k], cu_name(r));
    return 0;
}

static int start_blas(void)
{
    char err[256] = "";
    void *lib = open_library("libcublas.so.13", err, sizeof err);
    const char *missing = NULL;
    if (!lib) return fail_start("cuBLAS 13 is not installed: %s", err);
#define X(name) CN_CU_LOOKUP(blas, name)
    CN_CU_BLAS_API(X)
#undef X
    if (missing) return fail_start("libcublas.so.13 lacks %s", missing);
    cublasStatus_t s = cn_cu.blas.cublasCreate(&cn_cu.blas_handle);
    if (s == CUBLAS_STATUS_SUCCESS) s = cn_cu.blas.cublasSetStream(cn_cu.blas_handle, cn_cu.stream);
    if (s != CUBLAS_STATUS_SUCCESS) return fail_start("cuBLAS did not start: %s", cn_cu.blas.cublasGetStatusString(s));
    return 0;
}

/* cuDNN is optional: without it, convolutions run our direct kernels (slower, same values);
 * CN_REQUIRE_CUDNN=1 (make check-gpu) makes its absence an error instead, CN_NO_CUDNN=1 (the
 * tests of the direct kernels) leaves it unloaded */
static int start_dnn(void)
{
    char err[256] = "";
    const char *missing = NULL, *required = getenv("CN_REQUIRE_CUDNN"), *unwanted = getenv("CN_NO_CUDNN");
    int must = required && !strcmp(required, "1");
    if (unwanted && !strcmp(unwanted, "1")) return 0;
    void *lib = open_library("libcudnn.so.9", err, sizeof err);
    if (!lib) return must ? fail_start("cuDNN 9 is not installed (CN_REQUIRE_CUDNN=1): %s", err) : 0;
#define X(name) CN_CU_LOOKUP(dnn, name)
    CN_CU_DNN_API(X)
#undef X
    if (missing) return must ? fail_start("libcudnn.so.9 lacks %s (CN_REQUIRE_CUDNN=1)", missing) : 0;
    cudnnStatus_t s = cn_cu.dnn.cudnnCreate(&cn_cu.dnn_handle);
    if (s == CUDNN_STATUS_SUCCESS) s = cn_cu.dnn.cudnnSetStream(cn_cu.dnn_handle, cn_cu.stream);
    if (s == CUDNN_STATUS_SUCCESS) return 0;
    cn_cu.dnn_handle = NULL;
    return must ? fail_start("cuDNN did not start (CN_REQUIRE_CUDNN=1): %s", cn_cu.dnn.cudnnGetErrorString(s)) : 0;
}

int cn_cuda_ready(void)
{
    if (state == 1) {
        if (!bound && !cn_cu_ok(cn_cu.cu.cuCtxSetCurrent(cn_cu.context), "cuCtxSetCurrent")) bound = 1;
        return bound ? 0 : -1;
    }
    if (state < 0) return -1;
    if (start_driver() || start_blas() || start_dnn()) return -1;
    void *pinned;
    CUdeviceptr flags;
    CUresult r = cn_cu.cu.cuMemAllocHost(&pinned, CN_CU_SLOTS * sizeof(cn_cu_pinned));
    if (r) return fail_start("CUDA: no page-locked memory for the step's partial sums: %s", cu_name(r));
    cn_cu.slots = pinned, cn_cu.slot = CN_CU_SYNC_SLOT, cn_cu.pinned = &cn_cu.slots[CN_CU_SYNC_SLOT];
    if ((r = cn_cu.cu.cuMemAllocManaged(&flags, 4 * sizeof(double) + sizeof(int), CU_MEM_ATTACH_GLOBAL)) ||
        (r = cn_cu.cu.cuEventCreate(&cn_cu.marks[0], CU_EVENT_DISABLE_TIMING)) ||
        (r = cn_cu.cu.cuEventCreate(&cn_cu.marks[1], CU_EVENT_DISABLE_TIMING)))
        return fail_start("CUDA: no memory or events for the step's gate: %s", cu_name(r));
    cn_cu.gate = (double *)(uintptr_t)flags, cn_cu.halt = (int *)(cn_cu.gate + 4);
    memset(cn_cu.gate, 0, 4 * sizeof(double) + sizeof(int)); /* managed: the host's first touch */
    state = 1;
    return 0;
}

cn_status cn_cuda_open(cn_ctx *ctx, int precision)
{
    if (cn_cuda_ready()) return cn_fail(ctx, CN_E_UNSUPPORTED, "--device cuda: %s", state < 0 ? why : cn_cuda_take_error());
    if (precision < CN_PRECISION_FP32 || precision > CN_PRECISION_BF16)
        return cn_fail(ctx, CN_E_ARG, "unknown precision %d", precision);
    /* bf16's products are cublasGemmEx's on bf16 factors (dense.c): the mode is for SGEMM */
    static int mode_set = -1; /* the precision cuBLAS's mode was set for (opened before every pass) */
    cublasMath_t mode = precision == CN_PRECISION_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
    if (mode_set != precision) {
        if (cn_blas_ok(cn_cu.blas.cublasSetMathMode(cn_cu.blas_handle, mode), "cublasSetMathMode"))
            return cn_fail(ctx, CN_E_UNSUPPORTED, "%s", cn_cuda_take_error());
        mode_set = precision;
    }
    cn_cu.precision = precision;
    return CN_OK;
}

/* ---- launches ---- */

static void launch(int k, unsigned grid, void **args)
{
    if (cn_cuda_ready()) return;
    cn_cu_ok(cn_cu.cu.cuLaunchKernel(cn_cu.kernel[k], grid, 1, 1, CN_CU_THREADS, 1, 1, 0, cn_cu.stream, args, NULL),
             "a kernel launch");
}

void cn_cu_launch(int k, int64_t n, void **args)
{
    enum { MAX_BLOCKS = 1 << 16 }; /* the kernels loop over the rest (grid-stride) */
    if (n <= 0) return;
    int64_t blocks = (n + CN_CU_THREADS - 1) / CN_CU_THREADS;
    launch(k, (unsigned)(blocks < MAX_BLOCKS ? blocks : MAX_BLOCKS), args);
}

void cn_cu_launch_blocks(int k, int64_t blocks, void **args)
{
    if (blocks <= 0) return;
    if (blocks > 0x7fffffff) {
        cn_cuda_fail("CUDA: %lld blocks are more than one launch takes", (long long)blocks);
        return;
    }
    launch(k, (unsigned)blocks, args);
}

int cn_cu_sync(void)
{
    if (cn_cuda_ready()) return -1;
    return cn_cu_ok(cn_cu.cu.cuStreamSynchronize(cn_cu.stream), "the stream (an earlier kernel)");
}

/* ---- memory: managed (addressable from the host too), never more than the device has free ---- */

static void *memory_alloc(size_t bytes)
{
    if (cn_cuda_ready()) {
        if (state < 0) cn_cuda_fail("--device cuda: %s", why);
        return NULL;
    }
    size_t free_b = 0, total_b = 0;
    if (cn_cu_ok(cn_cu.cu.cuMemGetInfo(&free_b, &total_b), "cuMemGetInfo")) return NULL;
    /* asking for more managed memory than is free can hang the GPU: refuse instead */
    if (bytes > free_b) {
        cn_cuda_fail("out of GPU memory: %zu bytes asked, %zu of %zu free on %s", bytes, free_b, total_b, cn_cu.device_name);
        return NULL;
    }
    CUdeviceptr p;
    if (cn_cu_ok(cn_cu.cu.cuMemAllocManaged(&p, bytes, CU_MEM_ATTACH_GLOBAL), "cuMemAllocManaged")) return NULL;
    /* zeroed, and done before the host writes into it */
    if (cn_cu_ok(cn_cu.cu.cuMemsetD8Async(p, 0, bytes, cn_cu.stream), "cuMemsetD8Async") || cn_cu_sync()) {
        cn_cu.cu.cuMemFree(p);
        return NULL;
    }
    return (void *)(uintptr_t)p;
}

static void memory_release(void *p)
{
    if (!p || cn_cuda_ready()) return;
    cn_cu_sync(); /* no kernel may still use it */
    cn_cu_ok(cn_cu.cu.cuMemFree((CUdeviceptr)(uintptr_t)p), "cuMemFree");
}

static void memory_sync(void)
{
    if (state == 1) cn_cu_sync();
}

/* on the GPU: the gradients zeroed every step stay there instead of moving to the host and back */
static void memory_zero(void *p, size_t bytes)
{
    if (!cn_cuda_ready()) cn_cu_ok(cn_cu.cu.cuMemsetD8Async((CUdeviceptr)(uintptr_t)p, 0, bytes, cn_cu.stream), "cuMemsetD8Async");
}

/* a batch's images in, the output's gradient across: copied by the GPU's engines (from pageable
 * host memory the driver stages the bytes before it returns), no page faulted over */
static void memory_copy(void *dst, const void *src, size_t bytes)
{
    if (bytes && !cn_cuda_ready())
        cn_cu_ok(cn_cu.cu.cuMemcpyAsync((CUdeviceptr)(uintptr_t)dst, (CUdeviceptr)(uintptr_t)src, bytes, cn_cu.stream),
                 "cuMemcpyAsync");
}

const cn_memory_ops cn_cuda_memory = { memory_alloc, memory_release, memory_sync, cn_cuda_take_error, memory_zero,
                                       memory_copy };
