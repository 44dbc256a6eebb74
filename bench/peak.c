/* peak.c — the machine's fp32 peak, measured: every OpenMP thread runs independent chains of
 * fused multiply-adds on vector registers and nothing else, so the rate is what the FMA units
 * can do. bench/run.py compiles it with
 *     gcc -O2 -fopenmp -mavx512f -mfma bench/peak.c    (AVX-512: 16 floats a vector)
 *     gcc -O2 -fopenmp -mavx2 -mfma bench/peak.c       (where the CPU lacks AVX-512: 8 floats)
 * and runs it with OMP_NUM_THREADS=1 and then all cores. Prints one JSON object:
 *     {"isa":"avx512","threads":N,"gflops":G}
 * 12 independent accumulators cover an FMA latency of 4 cycles on 2 (or 3) pipes. The best of 7
 * repetitions of about 0.15 s each is kept: on a shared machine the best is the closest to the
 * hardware. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define ISA "avx512"
#define SET1(x) _mm512_set1_ps(x)
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define ADD(a, b) _mm512_add_ps(a, b)
static float hsum(vec v) { return _mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 vec;
#define LANES 8
#define ISA "avx2"
#define SET1(x) _mm256_set1_ps(x)
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define ADD(a, b) _mm256_add_ps(a, b)
static float hsum(vec v)
{
    float f[8];
    _mm256_storeu_ps(f, v);
    return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#else
#error "compile with -mavx512f -mfma or -mavx2 -mfma"
#endif

#define ACC 12

/* iters rounds of ACC independent FMAs; returns a value that depends on all of them */
static float chains(long iters, float seed)
{
    vec a = SET1(0.999999f), b = SET1(1e-7f * seed);
    vec c0 = SET1(seed), c1 = SET1(seed + 1), c2 = SET1(seed + 2), c3 = SET1(seed + 3), c4 = SET1(seed + 4),
        c5 = SET1(seed + 5), c6 = SET1(seed + 6), c7 = SET1(seed + 7), c8 = SET1(seed + 8), c9 = SET1(seed + 9),
        c10 = SET1(seed + 10), c11 = SET1(seed + 11);
    for (long i = 0; i < iters; i++) {
        c0 = FMA(c0, a, b);
        c1 = FMA(c1, a, b);
        c2 = FMA(c2, a, b);
        c3 = FMA(c3, a, b);
        c4 = FMA(c4, a, b);
        c5 = FMA(c5, a, b);
        c6 = FMA(c6, a, b);
        c7 = FMA(c7, a, b);
        c8 = FMA(c8, a, b);
        c9 = FMA(c9, a, b);
        c10 = FMA(c10, a, b);
        c11 = FMA(c11, a, b);
    }
    vec s = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));
    s = ADD(s, ADD(ADD(c8, c9), ADD(c10, c11)));
    return hsum(s);
}

int main(void)
{
    int threads = omp_get_max_threads();
    long iters = 20 * 1000 * 1000; /* 240M FMAs a thread: about 0.15 s at 3.5 GHz with AVX-512 */
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 8; rep++) { /* the first one warms up clocks and threads */
        double t0 = omp_get_wtime();
        float total = 0;
#pragma omp parallel reduction(+ : total)
        total += chains(iters, (float)omp_get_thread_num());
        double t = omp_get_wtime() - t0;
        sink += total;
        double gflops = 2.0 * LANES * ACC * (double)iters * threads / t / 1e9;
        if (rep > 0 && gflops > best) best = gflops;
    }
    printf("{\"isa\":\"%s\",\"threads\":%d,\"gflops\":%.1f}\n", ISA, threads, best);
    return sink == 12345.0f; /* keeps the work */
}
