/* gemm_bench.c — convnet's SGEMM beside OpenBLAS's cblas_sgemm on the products a training step
 * makes, in GFLOP/s (best of 5 repetitions of at least 0.3 s each). Linked to OpenBLAS for this
 * comparison only; convnet itself has no BLAS. Run by bench/run.py:
 *   gemm_bench THREADS   (convnet: cn_set_threads; OpenBLAS: openblas_set_num_threads) */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../src/backend/cpu/gemm.h"
#include "convnet.h"

void openblas_set_num_threads(int n);

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* seconds of one call, best of 5 repetitions of at least 0.3 s */
static double best_time(void (*f)(void *), void *arg)
{
    double best = 1e30;
    f(arg);
    for (int r = 0; r < 5; r++) {
        int n = 0;
        double t0 = now(), t;
        do f(arg), n++;
        while ((t = now() - t0) < 0.3);
        if (t / n < best) best = t / n;
    }
    return best;
}

typedef struct { int m, n, k; float *a, *b, *c; } prod;

static void ours(void *p)
{
    prod *q = p;
    cn_gemm_args g = { .m = q->m, .n = q->n, .k = q->k, .a = q->a, .a_row = cn_axis_ld(q->k), .a_col = cn_axis_unit(),
                       .b = q->b, .b_row = cn_axis_ld(q->n), .b_col = cn_axis_unit(), .c = q->c,
                       .c_row = cn_axis_ld(q->n), .c_col = cn_axis_unit() };
    cn_gemm(&g);
}

static void openblas(void *p)
{
    prod *q = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q->m, q->n, q->k, 1.0f, q->a, q->k, q->b, q->n, 0.0f, q->c,
                q->n);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    /* rows x columns x depth: resnet18-cifar's 3x3 convs (64 and 256 channels), fmnist-small's
     * conv2, and its dense1 at batch 64 */
    static const int shapes[][3] = { { 64, 32768, 576 }, { 256, 2048, 2304 }, { 64, 12544, 288 }, { 64, 128, 3136 } };
    cn_set_threads(threads);
    openblas_set_num_threads(threads);
    printf("{\"threads\":%d,\"kernel\":\"%s\",\"shapes\":[", threads, cn_gemm_kernel_name());
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        prod q = { shapes[s][0], shapes[s][1], shapes[s][2], NULL, NULL, NULL };
        q.a = malloc(sizeof(float) * (size_t)q.m * (size_t)q.k);
        q.b = malloc(sizeof(float) * (size_t)q.k * (size_t)q.n);
        q.c = malloc(sizeof(float) * (size_t)q.m * (size_t)q.n);
        if (!q.a || !q.b || !q.c) return 1;
        for (size_t i = 0; i < (size_t)q.m * (size_t)q.k; i++) q.a[i] = (float)(i % 7) * 0.01f;
        for (size_t i = 0; i < (size_t)q.k * (size_t)q.n; i++) q.b[i] = (float)(i % 5) * 0.01f;
        double flop = 2.0 * q.m * q.n * q.k;
        printf("%s{\"m\":%d,\"n\":%d,\"k\":%d,\"convnet_gflops\":%.1f,\"openblas_gflops\":%.1f}", s ? "," : "", q.m, q.n,
               q.k, flop / best_time(ours, &q) / 1e9, flop / best_time(openblas, &q) / 1e9);
        fflush(stdout);
        free(q.a), free(q.b), free(q.c);
    }
    printf("]}\n");
    return 0;
}
