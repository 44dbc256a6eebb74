/* gemm_avx2.c — the micro-kernel of a CPU with AVX2 and FMA but no AVX-512 (most laptops, AMD
 * before Zen 4; gemm.c runs it where cn_gemm_avx2() and not cn_gemm_avx512()). The 8x48 tile of
 * the other kernels, in four 4x24 quarters: sixteen 256-bit registers hold a quarter's twelve
 * sums, its three vectors of B and a broadcast of A (the whole tile's 48 sums would not fit).
 * Each element of C is the AVX-512 kernel's chain of FMAs over k, in the same order, and the
 * same additions at the store: the bits of the AVX-512 path's micro-kernel (tests/test_gemm.c).
 * The product for A of a few rows (a dense layer on one image) has its AVX2 twin here too, with
 * the same chains. Every function carries its own target attribute, so the file needs no
 * compiler flags. */
#include "gemm_impl.h"

#ifdef CN_X86

/* c += A's 4 values at a times B's 8 * vecs at bk (one k of a quarter) */
__attribute__((target("avx2,fma"), always_inline)) static inline void quarter_step(__m256 c[4][3], const float *a,
                                                                                   const float *bk, const int vecs)
{
    __m256 bv[3];
    for (int v = 0; v < vecs; v++) bv[v] = _mm256_loadu_ps(bk + 8 * v);
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        __m256 ar = _mm256_broadcast_ss(a + r);
        for (int v = 0; v < vecs; v++) c[r][v] = _mm256_fmadd_ps(ar, bv[v], c[r][v]);
    }
}

/* rows [r0, r0+4) x columns [q0, q0 + 8 vecs) of the tile into acc (MR x NR, row-major); vecs
 * below 3 where the tile's valid columns end sooner (a last panel of 32 columns: 24 + 8, not
 * 24 + 24), each computed column the same chain */
__attribute__((target("avx2,fma"), always_inline)) static inline void quarter(int64_t kc, const float *restrict a,
                                                                              const float *restrict b,
                                                                              const int64_t *off, int r0, int q0,
                                                                              float *restrict acc, const int vecs)
{
    __m256 c[4][3];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) c[r][0] = c[r][1] = c[r][2] = _mm256_setzero_ps();
    a += r0, b += q0;
    if (off) { /* B read in place: row k at b + off[k] */
#pragma GCC unroll 2
        for (int64_t k = 0; k < kc; k++) quarter_step(c, a + k * MR, b + off[k], vecs);
    } else {
#pragma GCC unroll 2
        for (int64_t k = 0; k < kc; k++) quarter_step(c, a + k * MR, b + k * NR, vecs);
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < vecs; v++) _mm256_store_ps(acc + (r0 + r) * NR + q0 + 8 * v, c[r][v]);
}

/* cn_gemm_store_tile with vectors of 8, as AVX-512's store_tile_avx512 (a last panel of a few
 * columns, a tile whose columns cross into the next sample's map or a padded row's end): each
 * row of the tile in runs contiguous in C, read from acc where the run starts (no compress in
 * AVX2), the same additions in the same order. Before, the plain C store took 40 % of a 14x14
 * 32->64 convolution's time on one image (perf; F(4x4,3x3), 16 of a panel's 48 columns). */
__attribute__((target("avx2"))) static void store_tile_avx2(const cn_gemm_tile *t, const float *acc)
{
    const cn_gemm_args *g = t->g;
    int set = t->first && !g->accumulate, relu = t->last && g->relu;
    if (!cn_gemm_tile_in_runs(t)) {
        cn_gemm_store_tile(t, acc);
        return;
    }
    __m256 zero = _mm256_setzero_ps();
    for (int64_t a = 0, run; a < t->cols; a += run) {
        int64_t j = t->j0 + a;
        int dropped;
        run = col_run(&g->c_col, j, t->cols - a, &dropped);
        if (dropped) continue;
        int64_t coff = at(&g->c_col, j);
        for (int64_t r = 0; r < t->rows; r++) {
            float *crun = g->c + at(&g->c_row, t->i0 + r) + coff; /* column j */
            __m256 br = _mm256_set1_ps(set && g->bias_row ? g->bias_row[t->i0 + r] : 0.0f);
            for (int64_t x = 0; x < run; x += 8) {
                __m256i keep = cn_first8(run - x);
                __m256 v = _mm256_maskload_ps(acc + r * NR + a + x, keep);
                if (set) {
                    __m256 bc = g->bias_col ? _mm256_maskload_ps(g->bias_col + j + x, keep) : zero;
                    v = _mm256_add_ps(_mm256_add_ps(v, br), bc);
                } else {
                    v = _mm256_add_ps(_mm256_maskload_ps(crun + x, keep), v);
                }
                if (relu) v = _mm256_max_ps(v, zero); /* NaN gives 0, as the scalar store's relu */
                _mm256_maskstore_ps(crun + x, keep, v);
            }
        }
    }
}

__attribute__((target("avx2,fma"))) void cn_gemm_kernel_avx2(int64_t kc, const float *restrict a,
                                                          const float *restrict b, const int64_t *off,
                                                          const cn_gemm_tile *t)
{
    /* the quarters the tile's valid part touches (a last panel of 24 columns or fewer, a last
     * row panel of 4 rows or fewer: half the work); the others' sums are never read */
    _Alignas(32) float acc[MR * NR];
    for (int q0 = 0; q0 < t->cols; q0 += 24) {
        int64_t left = t->cols - q0;
        for (int r0 = 0; r0 < t->rows; r0 += 4) {
            if (left > 16) quarter(kc, a, b, off, r0, q0, acc, 3);
            else if (left > 8) quarter(kc, a, b, off, r0, q0, acc, 2);
            else quarter(kc, a, b, off, r0, q0, acc, 1);
        }
    }
    const cn_gemm_args *g = t->g;
    int straight = t->rows == MR && t->cols == NR && g->c_col.stride == 1;
    for (int q = 0; straight && q < NR / 8; q++) straight = unit_run(&g->c_col, t->j0 + 8 * q, 8);
    if (!straight) {
        store_tile_avx2(t, acc);
        return;
    }
    /* the common tile: straight into C, each vector of 8 columns a run of its own, with the
     * additions of cn_gemm_store_tile in its order */
    int set = t->first && !g->accumulate, relu = t->last && g->relu;
    __m256 zero = _mm256_setzero_ps();
    for (int q = 0; q < NR / 8; q++) {
        int64_t coff = at(&g->c_col, t->j0 + 8 * q);
        __m256 bc = set && g->bias_col ? _mm256_loadu_ps(g->bias_col + t->j0 + 8 * q) : zero;
        for (int r = 0; r < MR; r++) {
            float *c = g->c + at(&g->c_row, t->i0 + r) + coff;
            __m256 s = _mm256_load_ps(acc + r * NR + 8 * q), v;
            if (set) v = _mm256_add_ps(_mm256_add_ps(s, _mm256_set1_ps(g->bias_row ? g->bias_row[t->i0 + r] : 0.0f)), bc);
            else v = _mm256_add_ps(_mm256_loadu_ps(c), s);
            if (relu) v = _mm256_max_ps(v, zero); /* NaN gives 0, as the scalar store's relu */
            _mm256_storeu_ps(c, v);
        }
    }
}

/* The 8 * nb columns of C from j0 (fewer at the right edge), every row (at most FEW_ROWS): each
 * slice of k read from B's columns in place, 8 by 8, and transposed in registers once for all
 * rows; nb blocks of 8 side by side, each its own chain of FMAs over k, so that nb chains are in
 * flight (as AVX-512's few_rows_blocks: one chain waited on its FMAs' latency, fmnist-small's
 * dense1 on one image 0.069 ms); each element's chain is the same, so the same bits. */
__attribute__((target("avx2,fma"), always_inline)) static inline void few_rows_blocks(const cn_gemm_args *g, int64_t j0,
                                                                                 const int nb, const int one_row)
{
    int rows = one_row ? 1 : (int)g->m; /* one row a constant: the sums stay in registers */
    __m256i keep[2];
    const float *col[2][8], *arow[FEW_ROWS];
    float *crow[FEW_ROWS];
    for (int b = 0; b < nb; b++) {
        int64_t first = j0 + 8 * b, cols = g->n - first < 8 ? g->n - first : 8;
        keep[b] = cn_first8(cols);
        for (int l = 0; l < 8; l++) col[b][l] = g->b + at(&g->b_col, first + (l < cols ? l : cols - 1));
    }
    for (int i = 0; i < rows; i++) arow[i] = g->a + at(&g->a_row, i), crow[i] = g->c + at(&g->c_row, i) + j0;
    __m256 zero = _mm256_setzero_ps();
    for (int64_t k0 = 0; k0 < g->k; k0 += KC) {
        int64_t kc = g->k - k0 < KC ? g->k - k0 : KC, k = 0;
        __m256 acc[2][FEW_ROWS];
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < FEW_ROWS; i++) acc[b][i] = zero;
        for (; k + 8 <= kc; k += 8)
            for (int b = 0; b < nb; b++) {
                __m256 r[8];
                for (int l = 0; l < 8; l++) r[l] = _mm256_loadu_ps(col[b][l] + k0 + k);
                cn_transpose8(r);
                for (int q = 0; q < 8; q++)
                    for (int i = 0; i < rows; i++)
                        acc[b][i] = _mm256_fmadd_ps(_mm256_broadcast_ss(arow[i] + k0 + k + q), r[q], acc[b][i]);
            }
        for (; k < kc; k++)
            for (int b = 0; b < nb; b++) {
                _Alignas(32) float v[8];
                for (int l = 0; l < 8; l++) v[l] = col[b][l][k0 + k];
                for (int i = 0; i < rows; i++)
                    acc[b][i] = _mm256_fmadd_ps(_mm256_broadcast_ss(arow[i] + k0 + k), _mm256_load_ps(v), acc[b][i]);
            }
        for (int b = 0; b < nb; b++)
            for (int i = 0; i < rows; i++) { /* the additions of cn_gemm_store_tile, in its order */
                __m256 v;
                if (k0 == 0 && !g->accumulate) {
                    __m256 br = _mm256_set1_ps(g->bias_row ? g->bias_row[i] : 0.0f);
                    __m256 bc = g->bias_col ? _mm256_maskload_ps(g->bias_col + j0 + 8 * b, keep[b]) : zero;
                    v = _mm256_add_ps(_mm256_add_ps(acc[b][i], br), bc);
                } else {
                    v = _mm256_add_ps(_mm256_maskload_ps(crow[i] + 8 * b, keep[b]), acc[b][i]);
                }
                if (k0 + kc >= g->k && g->relu) v = _mm256_max_ps(v, zero);
                _mm256_maskstore_ps(crow[i] + 8 * b, keep[b], v);
            }
    }
}

/* one block or two (functions of their own: gemm_avx512.c's few_rows_group says why) */
#ifdef __clang__
#define FEW_ROWS_INLINE8 __attribute__((noinline))
#else
#define FEW_ROWS_INLINE8 __attribute__((always_inline)) inline
#endif
__attribute__((target("avx2,fma"))) static FEW_ROWS_INLINE8 void few_rows_group(const cn_gemm_args *g, int64_t j0)
{
    int two = g->n - j0 > 8;
    if (g->m == 1) {
        if (two) few_rows_blocks(g, j0, 2, 1);
        else few_rows_blocks(g, j0, 1, 1);
    } else if (two) {
        few_rows_blocks(g, j0, 2, 0);
    } else {
        few_rows_blocks(g, j0, 1, 0);
    }
}

/* pack_panel's lanes that are each a contiguous run of k, 8 lanes by 8 k at a time transposed in
 * registers (a last group of fewer lanes: zero rows, stored lane by lane); the rest of k one by one */
__attribute__((target("avx2"))) void cn_gemm_pack_runs_avx2(const float *const *run, int64_t n_lanes, int64_t kc,
                                                           int W, float *restrict dst)
{
    for (int64_t l0 = 0; l0 < n_lanes; l0 += 8) {
        int lanes = n_lanes - l0 < 8 ? (int)(n_lanes - l0) : 8;
        int64_t k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 r[8];
            for (int t = 0; t < 8; t++) r[t] = t < lanes ? _mm256_loadu_ps(run[l0 + t] + k) : _mm256_setzero_ps();
            cn_transpose8(r);
            if (lanes == 8)
                for (int q = 0; q < 8; q++) _mm256_storeu_ps(dst + (k + q) * W + l0, r[q]);
            else
                for (int q = 0; q < 8; q++) {
                    _Alignas(32) float v[8];
                    _mm256_store_ps(v, r[q]);
                    for (int t = 0; t < lanes; t++) dst[(k + q) * W + l0 + t] = v[t];
                }
        }
        for (; k < kc; k++)
            for (int t = 0; t < lanes; t++) dst[k * W + l0 + t] = run[l0 + t][k];
    }
}

__attribute__((target("avx2,fma"))) void cn_gemm_few_rows_avx2(const cn_gemm_args *g, int threads)
{
    if (threads <= 1) { /* no parallel region at all: libgomp makes a system call even for a serial one */
        for (int64_t j0 = 0; j0 < g->n; j0 += 16) few_rows_group(g, j0);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t j0 = 0; j0 < g->n; j0 += 16) few_rows_group(g, j0);
}

#endif
