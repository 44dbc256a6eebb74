/* gemm_impl.h — what the parts of our SGEMM share (included by gemm*.c only): gemm.c (the
 * packing and blocking driver, the portable micro-kernel, the reference), gemm_avx512.c (the
 * AVX-512 micro-kernel and the other vector paths) and gemm_avx2.c (the AVX2 micro-kernel). The
 * blocking sizes, the view arithmetic, a tile of C and the micro-kernels' signature live here
 * once. */
#ifndef CN_GEMM_IMPL_H
#define CN_GEMM_IMPL_H

#include "gemm.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CN_X86)
#define CN_X86 1
#endif

#define MR CN_GEMM_MR  /* rows of C in a tile (the micro-kernel's height) */
#define NR CN_GEMM_NR /* columns of C in a tile (its width: 3 vectors of 16) */
#define KC 192        /* depth of a slice of k */
#define FEW_ROWS 4    /* rows of A at most for the product that reads B in place (gemm.c's few_rows) */

/* ---- views ----------------------------------------------------------------------------------- */

static inline int64_t at(const cn_axis *ax, int64_t i)
{
    if (ax->blk == INT64_MAX) return i * ax->stride;
    int64_t r = i % ax->blk;
    if (ax->row) r = r / ax->row * ax->keep + r % ax->row;
    return (i / ax->blk) * ax->bstride + r * ax->stride;
}

/* index i's place in its row of a C axis with dropped columns (its block's index otherwise) */
static inline int64_t in_row(const cn_axis *ax, int64_t i)
{
    int64_t r = ax->blk == INT64_MAX ? i : i % ax->blk;
    return ax->row ? r % ax->row : r;
}

/* indices [i0, i0+n) lie evenly one apart in memory, and none is dropped */
static inline int unit_run(const cn_axis *ax, int64_t i0, int64_t n)
{
    if (ax->stride != 1) return 0;
    if (ax->row) return in_row(ax, i0) + n <= ax->keep && i0 % ax->blk + n <= ax->blk;
    return ax->blk == INT64_MAX || i0 % ax->blk + n <= ax->blk;
}

/* The run of C columns from j (at most `left`) that are contiguous, or all dropped (*dropped) */
static inline int64_t col_run(const cn_axis *ax, int64_t j, int64_t left, int *dropped)
{
    int64_t run = left;
    *dropped = 0;
    if (ax->blk != INT64_MAX && ax->blk - j % ax->blk < run) run = ax->blk - j % ax->blk;
    if (ax->row) {
        int64_t r = in_row(ax, j), end = r < ax->keep ? ax->keep : ax->row;
        *dropped = r >= ax->keep;
        if (end - r < run) run = end - r;
    }
    return run;
}

static inline int dropped_col(const cn_axis *ax, int64_t j) { return ax->row && in_row(ax, j) >= ax->keep; }

/* ---- a tile of C and the micro-kernels ------------------------------------------------------- */

typedef struct cn_gemm_tile {
    const cn_gemm_args *g;
    int64_t i0, j0, rows, cols; /* the tile's place and its valid extent */
    int first, last;            /* first / last slice of k */
} cn_gemm_tile;

/* C tile (+)= acc (MR x NR, row-major), with bias on the first slice and relu on the last */
void cn_gemm_store_tile(const cn_gemm_tile *t, const float *acc);

/* whether the vector stores (store_tile_avx512, store_tile_avx2) can take tile t: C's columns
 * contiguous within runs, and a column bias read as one run where it is added */
static inline int cn_gemm_tile_in_runs(const cn_gemm_tile *t)
{
    const cn_gemm_args *g = t->g;
    int set = t->first && !g->accumulate;
    return g->c_col.stride == 1 && !(set && g->bias_col && !unit_run(&g->c_col, t->j0, t->cols));
}

/* A micro-kernel: the tile of C (+)= sum over k < kc of A panel column k (MR floats at a + k*MR)
 * times B panel row k (NR floats: the packed panel's at b + k*NR when off is NULL, else read in
 * place at b + off[k]), stored through cn_gemm_store_tile's additions. */
typedef void (*cn_gemm_kernel_fn)(int64_t kc, const float *restrict a, const float *restrict b, const int64_t *off,
                                  const cn_gemm_tile *t);

#ifdef CN_X86
/* gemm_avx512.c; call only where cn_gemm_avx512() (cn_copy_*_avx512: where the CPU has AVX-512F) */
__attribute__((target("avx512f,fma"))) void cn_gemm_kernel_avx512(int64_t kc, const float *restrict a,
                                                                  const float *restrict b, const int64_t *off,
                                                                  const cn_gemm_tile *t);
/* gemm_avx2.c; call only where cn_gemm_avx2(): the same tile and bits in 256-bit registers */
__attribute__((target("avx2,fma"))) void cn_gemm_kernel_avx2(int64_t kc, const float *restrict a,
                                                          const float *restrict b, const int64_t *off,
                                                          const cn_gemm_tile *t);
/* C (+)= A.B for A of a few rows (gemm.c's few_rows), 8 columns at a time, AVX-512's bits */
__attribute__((target("avx2,fma"))) void cn_gemm_few_rows_avx2(const cn_gemm_args *g, int threads);
/* pack_panel's lanes that are each a contiguous run of k (as cn_gemm_pack_runs_avx512) */
__attribute__((target("avx2"))) void cn_gemm_pack_runs_avx2(const float *const *run, int64_t n_lanes, int64_t kc,
                                                           int W, float *restrict dst);
/* the tile's first 16 * vecs columns only (vecs 1 or 2), with the 48-wide kernel's bits; C's
 * columns contiguous, B packed */
__attribute__((target("avx512f,fma"))) void cn_gemm_kernel_narrow(int64_t kc, const float *restrict a,
                                                            const float *restrict b, int vecs,
                                                            const cn_gemm_tile *t);
/* pack_panel's lanes that are each a contiguous run of k: dst[k*W + l] = run[l][k], k < kc */
__attribute__((target("avx512f"))) void cn_gemm_pack_runs_avx512(const float *const *run, int64_t n_lanes, int64_t kc,
                                                                 int W, float *restrict dst);
/* a tile of C of at most 16 columns, A's rows read in place from column k0 (gemm.c's few_cols) */
__attribute__((target("avx512f,fma"))) void cn_gemm_few_cols_tile(int64_t kc, int64_t k0, const float *restrict b,
                                                                 const int64_t *off, const cn_gemm_tile *t);
/* C (+)= A.B for A of a few rows, B's columns read in place (see gemm.c's few_rows for when) */
__attribute__((target("avx512f,fma"))) void cn_gemm_few_rows(const cn_gemm_args *g, int threads);
__attribute__((target("avx512f"))) void cn_copy_floats_avx512(float *restrict dst, const float *restrict src,
                                                              int64_t n);
__attribute__((target("avx512f"))) void cn_copy_rows_avx512(float *restrict dst, int64_t dst_ld,
                                                            const float *restrict src, int64_t src_ld, int64_t rows,
                                                            int64_t n);
#endif

#endif
