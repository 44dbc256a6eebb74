/* gemm_avx512.c — the AVX-512 parts of our SGEMM (gemm.c runs them where cn_gemm_avx512()):
 * the 8x48 micro-kernel and its vector store, the packing of runs transposed 16x16 in registers,
 * the short copies, and the product for A of a few rows. Every function here carries its own
 * target attribute, so the file needs no compiler flags, and a CPU without AVX-512 never runs it.
 * Each does the additions of the portable path in the same order (the bits are the same);
 * tests/test_gemm.c compares both kernels with the reference on random shapes. */
#include "gemm_impl.h"

#ifdef CN_X86

/* cn_gemm_store_tile with vectors: each row of the tile goes out in runs that are contiguous
 * in C (a run ends where the output's (sample, pixel) columns cross into the next sample, or at
 * the end of a padded row, whose dropped columns are skipped) */
__attribute__((target("avx512f"))) static void store_tile_avx512(const cn_gemm_tile *t, const float *acc)
{
    const cn_gemm_args *g = t->g;
    int set = t->first && !g->accumulate, relu = t->last && g->relu;
    if (!cn_gemm_tile_in_runs(t)) {
        cn_gemm_store_tile(t, acc);
        return;
    }
    __m512 zero = _mm512_setzero_ps();
    for (int64_t a = 0, run; a < t->cols; a += run) {
        int64_t j = t->j0 + a;
        int dropped;
        run = col_run(&g->c_col, j, t->cols - a, &dropped);
        if (dropped) continue;
        int64_t coff = at(&g->c_col, j);
        for (int64_t r = 0; r < t->rows; r++) {
            float *crun = g->c + at(&g->c_row, t->i0 + r) + coff; /* column j */
            __m512 br = _mm512_set1_ps(set && g->bias_row ? g->bias_row[t->i0 + r] : 0.0f);
            for (int64_t q = a / 16 * 16; q < a + run; q += 16) {
                int64_t lo = a > q ? a - q : 0, hi = a + run < q + 16 ? a + run - q : 16, cnt = hi - lo;
                __mmask16 part = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1)), low = (__mmask16)((1u << cnt) - 1);
                /* lanes [lo, hi) of this vector, moved down to lanes [0, cnt) */
                __m512 v = _mm512_maskz_compress_ps(part, _mm512_load_ps(acc + r * NR + q));
                float *dst = crun + (q + lo - a);
                if (set) {
                    __m512 bc = g->bias_col ? _mm512_maskz_loadu_ps(low, g->bias_col + t->j0 + q + lo) : zero;
                    v = _mm512_add_ps(_mm512_add_ps(v, br), bc);
                } else {
                    v = _mm512_add_ps(_mm512_maskz_loadu_ps(low, dst), v);
                }
                if (relu) v = _mm512_max_ps(v, zero);
                _mm512_mask_storeu_ps(dst, low, v);
            }
        }
    }
}

__attribute__((target("avx512f,fma"), always_inline)) static inline void fma_row(__m512 c[MR][3], const float *a,
                                                                             __m512 b0, __m512 b1, __m512 b2)
{
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        __m512 ar = _mm512_set1_ps(a[r]);
        c[r][0] = _mm512_fmadd_ps(ar, b0, c[r][0]);
        c[r][1] = _mm512_fmadd_ps(ar, b1, c[r][1]);
        c[r][2] = _mm512_fmadd_ps(ar, b2, c[r][2]);
    }
}

__attribute__((target("avx512f,fma"))) void cn_gemm_kernel_avx512(int64_t kc, const float *restrict a,
                                                            const float *restrict b, const int64_t *off,
                                                            const cn_gemm_tile *t)
{
    __m512 c[MR][3];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = c[r][2] = _mm512_setzero_ps();
    if (off) { /* B read in place: row k at b + off[k] */
#pragma GCC unroll 2
        for (int64_t k = 0; k < kc; k++, a += MR) {
            const float *bk = b + off[k];
            fma_row(c, a, _mm512_loadu_ps(bk), _mm512_loadu_ps(bk + 16), _mm512_loadu_ps(bk + 32));
        }
    } else {
#pragma GCC unroll 2
        for (int64_t k = 0; k < kc; k++, a += MR, b += NR)
            fma_row(c, a, _mm512_load_ps(b), _mm512_load_ps(b + 16), _mm512_load_ps(b + 32));
    }
    const cn_gemm_args *g = t->g;
    if (t->rows == MR && t->cols == NR && unit_run(&g->c_col, t->j0, 16) && unit_run(&g->c_col, t->j0 + 16, 16) &&
        unit_run(&g->c_col, t->j0 + 32, 16)) {
        /* the common tile: straight into C, each vector of 16 columns a run of its own (the
         * tile may cross from one sample's map to the next where a map is 16k pixels: 4x4) */
        int set = t->first && !g->accumulate, relu = t->last && g->relu;
        int64_t coff[3] = { at(&g->c_col, t->j0), at(&g->c_col, t->j0 + 16), at(&g->c_col, t->j0 + 32) };
        __m512 bc[3], zero = _mm512_setzero_ps();
        for (int q = 0; q < 3; q++) bc[q] = set && g->bias_col ? _mm512_loadu_ps(g->bias_col + t->j0 + 16 * q) : zero;
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            float *crow = g->c + at(&g->c_row, t->i0 + r);
            __m512 br = set && g->bias_row ? _mm512_set1_ps(g->bias_row[t->i0 + r]) : zero;
            for (int q = 0; q < 3; q++) {
                /* the same additions, in the same order, as cn_gemm_store_tile */
                __m512 v = set ? _mm512_add_ps(_mm512_add_ps(c[r][q], br), bc[q])
                               : _mm512_add_ps(_mm512_loadu_ps(crow + coff[q]), c[r][q]);
                if (relu) v = _mm512_max_ps(v, zero);
                _mm512_storeu_ps(crow + coff[q], v);
            }
        }
        return;
    }
    _Alignas(64) float acc[MR * NR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 3; q++) _mm512_store_ps(acc + r * NR + 16 * q, c[r][q]);
    store_tile_avx512(t, acc);
}

/* The micro-kernel's tile when only its first 16 * vecs columns (16 or 32 of 48) are wanted: those
 * columns' FMA chains in the same order and the same additions at the store, so they get the
 * 48-wide kernel's bits, for a third or two thirds of its work (a last panel of a few tiles) */
__attribute__((target("avx512f,fma"))) void cn_gemm_kernel_narrow(int64_t kc, const float *restrict a,
                                                            const float *restrict b, int vecs,
                                                            const cn_gemm_tile *t)
{
    __m512 c[MR][2], zero = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = zero;
    if (vecs == 1) {
        for (int64_t k = 0; k < kc; k++, a += MR, b += NR) {
            if (!(k & 1)) _mm_prefetch((const char *)(a + 32 * MR), _MM_HINT_T0);
            __m512 b0 = _mm512_load_ps(b);
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) c[r][0] = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), b0, c[r][0]);
        }
    } else {
        for (int64_t k = 0; k < kc; k++, a += MR, b += NR) {
            __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                __m512 ar = _mm512_set1_ps(a[r]);
                c[r][0] = _mm512_fmadd_ps(ar, b0, c[r][0]);
                c[r][1] = _mm512_fmadd_ps(ar, b1, c[r][1]);
            }
        }
    }
    const cn_gemm_args *g = t->g;
    int set = t->first && !g->accumulate, relu = t->last && g->relu;
    for (int64_t r = 0; r < t->rows; r++) {
        float *crow = g->c + at(&g->c_row, t->i0 + r) + at(&g->c_col, t->j0);
        __m512 br = _mm512_set1_ps(set && g->bias_row ? g->bias_row[t->i0 + r] : 0.0f);
        for (int q = 0; q < vecs; q++) {
            __m512 bc = set && g->bias_col ? _mm512_loadu_ps(g->bias_col + t->j0 + 16 * q) : zero;
            __m512 v = set ? _mm512_add_ps(_mm512_add_ps(c[r][q], br), bc) : _mm512_add_ps(_mm512_loadu_ps(crow + 16 * q), c[r][q]);
            if (relu) v = _mm512_max_ps(v, zero);
            _mm512_storeu_ps(crow + 16 * q, v);
        }
    }
}

__attribute__((target("avx512f"))) void cn_copy_floats_avx512(float *restrict dst, const float *restrict src, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
    }
}

__attribute__((target("avx512f"))) void cn_copy_rows_avx512(float *restrict dst, int64_t dst_ld,
                                                            const float *restrict src, int64_t src_ld, int64_t rows,
                                                            int64_t n)
{
    __mmask16 tail = (__mmask16)((1u << (n % 16)) - 1);
    for (int64_t r = 0; r < rows; r++, dst += dst_ld, src += src_ld) {
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
        if (tail) _mm512_mask_storeu_ps(dst + i, tail, _mm512_maskz_loadu_ps(tail, src + i));
    }
}

/* the middle case of pack_panel (each lane a contiguous run of k) 16 lanes by 16 k at a time,
 * transposed in registers (a last group of fewer lanes padded with zero rows); the rest of k
 * one by one */
__attribute__((target("avx512f"))) void cn_gemm_pack_runs_avx512(const float *const *run, int64_t n_lanes,
                                                                 int64_t kc, int W, float *restrict dst)
{
    for (int64_t l0 = 0; l0 < n_lanes; l0 += 16) {
        int lanes = n_lanes - l0 < 16 ? (int)(n_lanes - l0) : 16;
        __mmask16 keep = (__mmask16)((1u << lanes) - 1);
        int64_t k = 0;
        for (; k + 16 <= kc; k += 16) {
            __m512 r[16];
            for (int t = 0; t < 16; t++) r[t] = t < lanes ? _mm512_loadu_ps(run[l0 + t] + k) : _mm512_setzero_ps();
            cn_transpose16(r);
            for (int q = 0; q < 16; q++) _mm512_mask_storeu_ps(dst + (k + q) * W + l0, keep, r[q]);
        }
        for (; k < kc; k++)
            for (int t = 0; t < lanes; t++) dst[k * W + l0 + t] = run[l0 + t][k];
    }
}

/* The 16 * nb columns of C from j0 (fewer at the right edge), every row: nb blocks of 16 side by
 * side, each its own chain of FMAs over k, so that nb chains are in flight (one chain waited on
 * its FMAs' latency: fmnist-small's dense1 on one image, 3136 x 128, 0.038 ms, a fifth of the
 * CPU's FMA rate); each element's chain is the same, so the same bits. */
__attribute__((target("avx512f,fma"), always_inline)) static inline void few_rows_blocks(const cn_gemm_args *g, int64_t j0,
                                                                                   const int nb)
{
    __mmask16 keep[2];
    const float *col[2][16];
    for (int b = 0; b < nb; b++) {
        int64_t first = j0 + 16 * b, cols = g->n - first < 16 ? g->n - first : 16;
        keep[b] = (__mmask16)((1u << cols) - 1);
        for (int l = 0; l < 16; l++) col[b][l] = g->b + at(&g->b_col, first + (l < cols ? l : cols - 1));
    }
    for (int64_t i = 0; i < g->m; i++) {
        const float *arow = g->a + at(&g->a_row, i);
        float *crow = g->c + at(&g->c_row, i) + j0;
        __m512 br = _mm512_set1_ps(!g->accumulate && g->bias_row ? g->bias_row[i] : 0.0f), zero = _mm512_setzero_ps();
        for (int64_t k0 = 0; k0 < g->k; k0 += KC) {
            int64_t kc = g->k - k0 < KC ? g->k - k0 : KC, k = 0;
            __m512 acc[2] = { zero, zero };
            for (; k + 16 <= kc; k += 16)
                for (int b = 0; b < nb; b++) {
                    __m512 r[16];
                    for (int l = 0; l < 16; l++) _mm_prefetch((const char *)(col[b][l] + k0 + k + 128), _MM_HINT_T0);
                    for (int l = 0; l < 16; l++) r[l] = _mm512_loadu_ps(col[b][l] + k0 + k);
                    cn_transpose16(r);
                    for (int q = 0; q < 16; q++) acc[b] = _mm512_fmadd_ps(_mm512_set1_ps(arow[k0 + k + q]), r[q], acc[b]);
                }
            for (; k < kc; k++)
                for (int b = 0; b < nb; b++) {
                    _Alignas(64) float v[16];
                    for (int l = 0; l < 16; l++) v[l] = col[b][l][k0 + k];
                    acc[b] = _mm512_fmadd_ps(_mm512_set1_ps(arow[k0 + k]), _mm512_load_ps(v), acc[b]);
                }
            for (int b = 0; b < nb; b++) {
                __m512 v;
                if (k0 == 0 && !g->accumulate) {
                    __m512 bc = g->bias_col ? _mm512_maskz_loadu_ps(keep[b], g->bias_col + j0 + 16 * b) : zero;
                    v = _mm512_add_ps(_mm512_add_ps(acc[b], br), bc);
                } else {
                    v = _mm512_add_ps(_mm512_maskz_loadu_ps(keep[b], crow + 16 * b), acc[b]);
                }
                if (k0 + kc >= g->k && g->relu) v = _mm512_max_ps(v, zero);
                _mm512_mask_storeu_ps(crow + 16 * b, keep[b], v);
            }
        }
    }
}

/* One block or two. Functions of their own because clang does not give the function OpenMP
 * outlines from the parallel loop below the target attribute of the function around it; gcc
 * does, and inlines them back (the same code as a loop body in place). */
#ifdef __clang__
#define FEW_ROWS_INLINE __attribute__((noinline))
#else
#define FEW_ROWS_INLINE __attribute__((always_inline)) inline
#endif
__attribute__((target("avx512f,fma"))) static FEW_ROWS_INLINE void few_rows_group(const cn_gemm_args *g, int64_t j0)
{
    if (g->n - j0 > 16) few_rows_blocks(g, j0, 2);
    else few_rows_blocks(g, j0, 1);
}

__attribute__((target("avx512f,fma"))) void cn_gemm_few_rows(const cn_gemm_args *g, int threads)
{
    if (threads <= 1) { /* no parallel region at all: libgomp makes a system call even for a serial one */
        for (int64_t j0 = 0; j0 < g->n; j0 += 32) few_rows_group(g, j0);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t j0 = 0; j0 < g->n; j0 += 32) few_rows_group(g, j0);
}

/* One tile of C of at most 16 columns for the slice [k0, k0 + kc): the micro-kernel's FMA chains
 * (its first 16 columns') with A's 8 rows read in place, k contiguous; B's panel as the blocked
 * product packs it (or in place at off), and its store: the blocked product's bits */
__attribute__((target("avx512f,fma"))) void cn_gemm_few_cols_tile(int64_t kc, int64_t k0, const float *restrict b,
                                                                 const int64_t *off, const cn_gemm_tile *t)
{
    const cn_gemm_args *g = t->g;
    const float *ar[MR];
    __m512 c[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) /* rows past the tile's: its first row again, the sums dropped */
        ar[r] = g->a + at(&g->a_row, t->i0 + (r < t->rows ? r : 0)) + k0, c[r] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        if (!(k & 15))
            for (int r = 0; r < MR; r++) _mm_prefetch((const char *)(ar[r] + k + 128), _MM_HINT_T0);
        __m512 bk = _mm512_loadu_ps(off ? b + off[k] : b + k * NR);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) c[r] = _mm512_fmadd_ps(_mm512_set1_ps(ar[r][k]), bk, c[r]);
    }
    _Alignas(64) float acc[MR * NR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) _mm512_store_ps(acc + r * NR, c[r]);
    store_tile_avx512(t, acc);
}

#else
typedef int cn_gemm_avx512_none; /* not x86: nothing here (an empty file is not ISO C) */
#endif
