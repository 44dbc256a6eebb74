/* libcublas.cpp — an emulated cuBLAS (libcublas.so.13) for the tests without a GPU (see
 * libcuda.cpp): the calls the CUDA backend makes, SGEMM as the column-major definition computes
 * it, in double; cublasGemmEx on bf16 or fp32 factors into fp32 (or bf16 from bf16 factors);
 * in TF32 mode (cublasSetMathMode) the fp32 factors rounded to TF32 first, as the tensor cores
 * take them. */
#include <cublas_v2.h>

#include <cstdint>
#include <cstring>
#include <functional>

#include "emu_number.h"
#include "emu_queue.h"

extern "C" {
cublasStatus_t cublasCreate(cublasHandle_t *h) { return *h = reinterpret_cast<cublasHandle_t>(4), CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
/* TF32 mode: fp32 factors rounded to TF32 as the tensor cores take them */
static cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t mode) { return math_mode = mode, CUBLAS_STATUS_SUCCESS; }
const char *cublasGetStatusString(cublasStatus_t) { return "an error of the emulated cuBLAS"; }

/* value i of a factor stored as fp32 (as TF32 where tf32) or as bf16 */
static double factor(const void *x, bool bf16, bool tf32, long i)
{
    if (bf16) return emu_float_of_bf16(static_cast<const uint16_t *>(x)[i]);
    float v = static_cast<const float *>(x)[i];
    return tf32 ? emu_tf32(v) : v;
}

/* C (m x n, fp32 or bf16) = alpha op(A) op(B) + beta C, column-major, op(A) m x k, op(B) k x n */
static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float *alpha,
                           const void *a, bool a16, int lda, const void *b, bool b16, int ldb, const float *beta, void *c,
                           bool c16, int ldc)
{
    /* cuBLAS's argument checks: each leading dimension at least its matrix's rows */
    auto at_least = [](int ld, int rows) { return ld >= (rows > 1 ? rows : 1); };
    if (m < 0 || n < 0 || k < 0 || !at_least(lda, ta == CUBLAS_OP_N ? m : k) || !at_least(ldb, tb == CUBLAS_OP_N ? k : n) ||
        !at_least(ldc, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    float al = *alpha, be = *beta; /* taken at the call, as cuBLAS's host-pointer mode does */
    bool tf32 = math_mode == CUBLAS_TF32_TENSOR_OP_MATH;
    queue([=]() {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double acc = 0;
                for (int p = 0; p < k; p++) {
                    double av = factor(a, a16, tf32, ta == CUBLAS_OP_N ? i + (long)p * lda : p + (long)i * lda);
                    double bv = factor(b, b16, tf32, tb == CUBLAS_OP_N ? p + (long)j * ldb : j + (long)p * ldb);
                    acc += av * bv;
                }
                long at = i + (long)j * ldc;
                /* beta 0: C is not read (it may hold anything) */
                float v = (float)(al * acc + (be != 0 ? be * factor(c, c16, false, at) : 0.0));
                if (c16) static_cast<uint16_t *>(c)[at] = emu_bf16_of(v);
                else static_cast<float *>(c)[at] = v;
            }
    });
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *a, int lda, const float *b, int ldb, const float *beta,
                           float *c, int ldc)
{
    return gemm(ta, tb, m, n, k, alpha, a, false, lda, b, false, ldb, beta, c, false, ldc);
}

/* the calls the backend makes: bf16 or fp32 factors, fp32 or bf16 C, fp32 sums, float scalars */
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *a, cudaDataType at, int lda, const void *b, cudaDataType bt,
                            int ldb, const void *beta, void *c, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t)
{
    /* cuBLAS's table for CUBLAS_COMPUTE_32F: A and B of one type; C fp32, or bf16 with bf16 factors */
    bool ok = at == bt && (at == CUDA_R_16BF || at == CUDA_R_32F) &&
              (ct == CUDA_R_32F || (ct == CUDA_R_16BF && at == CUDA_R_16BF)) && compute == CUBLAS_COMPUTE_32F;
    if (!ok) return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm(ta, tb, m, n, k, static_cast<const float *>(alpha), a, at == CUDA_R_16BF, lda, b, bt == CUDA_R_16BF, ldb,
                static_cast<const float *>(beta), c, ct == CUDA_R_16BF, ldc);
}
}
