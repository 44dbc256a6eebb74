/* libcublas.cpp — an emulated cuBLAS (libcublas.so.13) for the tests without a GPU (see
 * libcuda.cpp): the calls the CUDA backend makes, SGEMM as the column-major definition computes
 * it, in double. */
#include <cublas_v2.h>
#include <dlfcn.h>

#include <functional>

/* libcuda.cpp's queue: runs the product now, or keeps it while the stream is being captured */
static void queue(std::function<void()> op)
{
    static void (*to)(std::function<void()> *);
    if (!to) {
        void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
        to = lib ? reinterpret_cast<void (*)(std::function<void()> *)>(dlsym(lib, "cn_emu_queue")) : nullptr;
    }
    if (to) to(&op);
    else op();
}

extern "C" {
cublasStatus_t cublasCreate(cublasHandle_t *h) { return *h = reinterpret_cast<cublasHandle_t>(4), CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
const char *cublasGetStatusString(cublasStatus_t) { return "an error of the emulated cuBLAS"; }

/* C (m x n) = alpha op(A) op(B) + beta C, column-major, op(A) m x k, op(B) k x n */
cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *a, int lda, const float *b, int ldb, const float *beta,
                           float *c, int ldc)
{
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    float al = *alpha, be = *beta; /* taken at the call, as cuBLAS's host-pointer mode does */
    queue([=]() {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double acc = 0;
                for (int p = 0; p < k; p++) {
                    double av = ta == CUBLAS_OP_N ? a[i + (long)p * lda] : a[p + (long)i * lda];
                    double bv = tb == CUBLAS_OP_N ? b[p + (long)j * ldb] : b[j + (long)p * ldb];
                    acc += av * bv;
                }
                float *cv = &c[i + (long)j * ldc];
                /* beta 0: C is not read (it may hold anything) */
                *cv = (float)(al * acc + (be != 0 ? be * (double)*cv : 0.0));
            }
    });
    return CUBLAS_STATUS_SUCCESS;
}
}
