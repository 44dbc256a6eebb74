/* gemm.c — C (+)= A.B for float views (see gemm.h): packed panels, an 8x48 micro-kernel in
 * AVX-512 or portable C, OpenMP over output tiles, and a plain reference product.
 *
 * Loop order (BLIS): for each KC-deep slice of k, for each MC-tall block of rows, each thread
 * walks its fixed share of the (NR-column panel, MR-row panel) tiles, packing the A panels its
 * tiles need and a B panel whenever the column panel changes into buffers of its own, so a B
 * panel stays in L1 while the A panels stream from L2, and no thread waits for another. The
 * packing buffers are thread-local; the two that grow (all of A, the parts of a split k) are
 * allocated by the first product that needs them, never again for that shape. */
#define _POSIX_C_SOURCE 200809L /* pthread keys */
#include "gemm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CN_X86 1
#endif

#define MR 8
#define NR CN_GEMM_NR
#define KC 192
#define MC 512 /* a multiple of MR */

#define A_WHOLE (640 * 1024) /* floats of A packed whole at most (see gemm_whole_a) */
static _Thread_local _Alignas(64) float a_pack[MC * KC];
static _Thread_local _Alignas(64) float b_pack[KC * NR];
#define SCRATCH_ROWS 1024 /* rows of C a thread keeps in c_scratch (see gemm_whole_a) */
static _Thread_local _Alignas(64) float c_scratch[SCRATCH_ROWS * NR];

/* Buffers that grow, kept per calling thread for its life: all of A (gemm_whole_a) and the parts
 * of a split k. Taken from the heap the first time a thread needs that much, so only the first
 * product of a shape allocates; NULL when the heap says no (the caller then takes a path that
 * needs none, with the same bits, or for a split k, sums in the blocked order). */
typedef struct { float *p; size_t n; } grow_buf;
static _Thread_local grow_buf grow_bufs[2]; /* all of A, the parts of a split k */
enum { WHOLE_A, SPLIT_PARTS_BUF };

/* a thread's buffers go with it: OpenMP ends worker threads when the team shrinks */
static pthread_key_t grow_key;
static pthread_once_t grow_once = PTHREAD_ONCE_INIT;

static void free_grow_bufs(void *bufs)
{
    grow_buf *b = bufs;
    for (int i = 0; i < 2; i++) free(b[i].p), b[i].p = NULL, b[i].n = 0;
}

static void make_grow_key(void) { pthread_key_create(&grow_key, free_grow_bufs); }

static float *grown(int which, size_t floats)
{
    grow_buf *b = &grow_bufs[which];
    if (b->n >= floats) return b->p;
    pthread_once(&grow_once, make_grow_key);
    if (pthread_getspecific(grow_key) != grow_bufs && pthread_setspecific(grow_key, grow_bufs)) return NULL;
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    float *q = aligned_alloc(64, bytes);
    if (!q) return NULL;
    free(b->p);
    b->p = q, b->n = floats;
    return q;
}

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
static int64_t col_run(const cn_axis *ax, int64_t j, int64_t left, int *dropped)
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

#ifdef CN_X86
static void pack_runs_avx512(const float *const *run, int64_t n_lanes, int64_t kc, int W, float *restrict dst);
#endif

/* dst[k*W + l] = element (lane0 + l, k0 + k) of a view whose lanes run along `lane` and whose
 * reduction runs along `red`; lanes >= n_lanes are zero. */
static void pack_panel(const float *p, const cn_axis *lane, int64_t lane0, int64_t n_lanes, const cn_axis *red,
                       int64_t k0, int64_t kc, int W, float *restrict dst)
{
    if (n_lanes < W)
        for (int64_t k = 0; k < kc; k++)
            for (int l = (int)n_lanes; l < W; l++) dst[k * W + l] = 0.0f;
    if (unit_run(lane, lane0, n_lanes)) { /* each k: a row of contiguous lanes */
        const float *base = p + at(lane, lane0);
        for (int64_t k = 0; k < kc; k++) cn_copy_floats(dst + k * W, base + at(red, k0 + k), n_lanes);
        return;
    }
    if (red->stride == 1) { /* each lane: runs of k, contiguous up to the end of a block */
        for (int64_t k = 0, seg; k < kc; k += seg) {
            seg = red->blk == INT64_MAX || red->blk - (k0 + k) % red->blk > kc - k ? kc - k
                                                                                     : red->blk - (k0 + k) % red->blk;
            const float *run[NR > MR ? NR : MR], *base = p + at(red, k0 + k);
            for (int64_t l = 0; l < n_lanes; l++) run[l] = base + at(lane, lane0 + l);
#ifdef CN_X86
            if (cn_gemm_avx512()) {
                pack_runs_avx512(run, n_lanes, seg, W, dst + k * W);
                continue;
            }
#endif
            for (int64_t l = 0; l < n_lanes; l++)
                for (int64_t i = 0; i < seg; i++) dst[(k + i) * W + l] = run[l][i];
        }
        return;
    }
    int64_t lane_off[NR > MR ? NR : MR];
    for (int64_t l = 0; l < n_lanes; l++) lane_off[l] = at(lane, lane0 + l);
    for (int64_t k = 0; k < kc; k++) {
        const float *row = p + at(red, k0 + k);
        for (int64_t l = 0; l < n_lanes; l++) dst[k * W + l] = row[lane_off[l]];
    }
}

/* ---- storing a tile -------------------------------------------------------------------------- */

typedef struct tile {
    const cn_gemm_args *g;
    int64_t i0, j0, rows, cols; /* the tile's place and its valid extent */
    int first, last;            /* first / last slice of k */
} tile;

/* C tile (+)= acc (MR x NR, row-major), with bias on the first slice and relu on the last */
static void store_tile(const tile *t, const float *acc)
{
    const cn_gemm_args *g = t->g;
    int set = t->first && !g->accumulate;
    for (int64_t r = 0; r < t->rows; r++) {
        int64_t i = t->i0 + r;
        float *crow = g->c + at(&g->c_row, i);
        float br = set && g->bias_row ? g->bias_row[i] : 0.0f;
        for (int64_t s = 0; s < t->cols; s++) {
            int64_t j = t->j0 + s;
            if (dropped_col(&g->c_col, j)) continue;
            float *c = crow + at(&g->c_col, j);
            float v = acc[r * NR + s];
            if (set) v = v + br + (g->bias_col ? g->bias_col[j] : 0.0f);
            else v = *c + v;
            if (t->last && g->relu && v < 0.0f) v = 0.0f;
            *c = v;
        }
    }
}

/* ---- micro-kernels: acc (MR x NR) = sum over k of A panel column k times B panel row k ------- *
 * B's rows are the packed panel's (off NULL) or, read in place, at b + off[k]. */

static void kernel_generic(int64_t kc, const float *restrict a, const float *restrict b, const int64_t *off,
                           const tile *t)
{
    float acc[MR * NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; k++, a += MR) {
        const float *bk = off ? b + off[k] : b + k * NR;
        for (int r = 0; r < MR; r++)
            for (int s = 0; s < NR; s++) acc[r * NR + s] += a[r] * bk[s];
    }
    store_tile(t, acc);
}

#ifdef CN_X86
/* store_tile with vectors: each row of the tile goes out in runs that are contiguous in C (a
 * run ends where the output's (sample, pixel) columns cross into the next sample, or at the
 * end of a padded row, whose dropped columns are skipped) */
__attribute__((target("avx512f"))) static void store_tile_avx512(const tile *t, const float *acc)
{
    const cn_gemm_args *g = t->g;
    int set = t->first && !g->accumulate, relu = t->last && g->relu;
    if (g->c_col.stride != 1 || (set && g->bias_col && !unit_run(&g->c_col, t->j0, t->cols))) {
        store_tile(t, acc);
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

__attribute__((target("avx512f,fma"))) static void kernel_avx512(int64_t kc, const float *restrict a,
                                                                  const float *restrict b, const int64_t *off,
                                                                  const tile *t)
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
    if (t->rows == MR && t->cols == NR && unit_run(&g->c_col, t->j0, NR)) {
        /* the common tile: straight into C */
        int set = t->first && !g->accumulate, relu = t->last && g->relu;
        int64_t coff = at(&g->c_col, t->j0);
        __m512 bc[3], zero = _mm512_setzero_ps();
        for (int q = 0; q < 3; q++) bc[q] = set && g->bias_col ? _mm512_loadu_ps(g->bias_col + t->j0 + 16 * q) : zero;
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            float *crow = g->c + at(&g->c_row, t->i0 + r) + coff;
            __m512 br = set && g->bias_row ? _mm512_set1_ps(g->bias_row[t->i0 + r]) : zero;
            for (int q = 0; q < 3; q++) {
                /* the same additions, in the same order, as store_tile */
                __m512 v = set ? _mm512_add_ps(_mm512_add_ps(c[r][q], br), bc[q])
                               : _mm512_add_ps(_mm512_loadu_ps(crow + 16 * q), c[r][q]);
                if (relu) v = _mm512_max_ps(v, zero);
                _mm512_storeu_ps(crow + 16 * q, v);
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
#endif

/* ---- short copies (packing runs are often a row of an image: 7 to 56 floats) ------------------ */

static void copy_generic(float *restrict dst, const float *restrict src, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

#ifdef CN_X86
__attribute__((target("avx512f"))) static void copy_avx512(float *restrict dst, const float *restrict src, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
    }
}
#endif

#ifdef CN_X86
/* r[i][j] <-> r[j][i] for 16 vectors of 16 */
__attribute__((target("avx512f"))) void cn_transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);
    }
}

/* the middle case of pack_panel (each lane a contiguous run of k) 16 lanes by 16 k at a time,
 * transposed in registers (a last group of fewer lanes padded with zero rows); the rest of k
 * one by one */
__attribute__((target("avx512f"))) static void pack_runs_avx512(const float *const *run, int64_t n_lanes, int64_t kc,
                                                                int W, float *restrict dst)
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
#endif

typedef void (*kernel_fn)(int64_t kc, const float *restrict a, const float *restrict b, const int64_t *off,
                          const tile *t);

static int force_generic;

void cn_gemm_force_generic(int on) { force_generic = on; }

int cn_gemm_avx512(void)
{
#ifdef CN_X86
    return !force_generic && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#ifdef CN_X86
__attribute__((target("avx512f"))) static void copy_rows_avx512(float *restrict dst, int64_t dst_ld,
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
#endif

void cn_copy_rows(float *restrict dst, int64_t dst_ld, const float *restrict src, int64_t src_ld, int64_t rows,
                  int64_t n)
{
#ifdef CN_X86
    if (cn_gemm_avx512()) {
        copy_rows_avx512(dst, dst_ld, src, src_ld, rows, n);
        return;
    }
#endif
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * dst_ld, src + r * src_ld, (size_t)n * sizeof(float));
}

void cn_copy_floats(float *restrict dst, const float *restrict src, int64_t n)
{
#ifdef CN_X86
    static int avx512 = -1;
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f");
    if (avx512) {
        copy_avx512(dst, src, n);
        return;
    }
#endif
    copy_generic(dst, src, n);
}

static kernel_fn pick_kernel(void)
{
#ifdef CN_X86
    if (cn_gemm_avx512()) return kernel_avx512;
#endif
    return kernel_generic;
}

const char *cn_gemm_kernel_name(void) { return pick_kernel() == kernel_generic ? "generic" : "avx512"; }

/* ---- the blocked product ------------------------------------------------------------------------ */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* B of C's column panel jp for the slice [k0, k0+kc): read in place where the operand allows it
 * (*off set), else packed into b_pack (*off NULL) */
static const float *b_panel(const cn_gemm_args *g, int64_t jp, int64_t k0, int64_t kc, int64_t *offsets,
                            const int64_t **off)
{
    int64_t j0 = jp * NR, cols = g->n - j0 < NR ? g->n - j0 : NR;
    const float *in_place = cols == NR && g->b_rows ? g->b_rows(g->b_src, j0, k0, kc, offsets) : NULL;
    *off = in_place ? offsets : NULL;
    if (in_place) return in_place;
    if (g->pack_b) {
        if (cols < NR) memset(b_pack, 0, (size_t)(kc * NR) * sizeof(float));
        g->pack_b(g->b_src, j0, cols, k0, kc, NR, b_pack);
    } else {
        pack_panel(g->b, &g->b_col, j0, cols, &g->b_row, k0, kc, NR, b_pack);
    }
    return b_pack;
}

/* One thread's share of the tiles of the block of rows [i0, i0+mc) and the slice [k0, k0+kc).
 * The share depends on the shapes and the thread's number only, so a thread owns the same
 * tiles of C in every slice and the threads never wait for each other: each packs the A and B
 * panels its tiles need into its own buffers. */
static void run_tiles(const cn_gemm_args *g, kernel_fn kernel, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                      int first, int last, int thread, int threads)
{
    int64_t mp = ceil_div(mc, MR), np = ceil_div(g->n, NR), tiles = mp * np;
    int64_t t0 = tiles * thread / threads, t1 = tiles * (thread + 1) / threads, packed_b = -1;
    uint64_t packed_a = 0; /* bit ip: A panel ip is in a_pack (MC/MR <= 64 panels) */
    int64_t offsets[KC];
    const int64_t *off = NULL;
    const float *b = b_pack;
    for (int64_t t = t0; t < t1; t++) {
        int64_t jp = t / mp, ip = t % mp, j0 = jp * NR, rows = mc - ip * MR < MR ? mc - ip * MR : MR;
        if (!(packed_a >> ip & 1)) {
            pack_panel(g->a, &g->a_row, i0 + ip * MR, rows, &g->a_col, k0, kc, MR, a_pack + ip * MR * kc);
            packed_a |= (uint64_t)1 << ip;
        }
        if (jp != packed_b) {
            b = b_panel(g, jp, k0, kc, offsets, &off);
            packed_b = jp;
        }
        tile tl = { g, i0 + ip * MR, j0, rows, g->n - j0 < NR ? g->n - j0 : NR, first, last };
        kernel(kc, a_pack + ip * MR * kc, b, off, &tl);
    }
}

/* C's column panel [j0, j0+cols), all rows, to (to_scratch) or from c_scratch (NR wide) */
static void panel_io(const cn_gemm_args *g, int64_t j0, int64_t cols, int to_scratch)
{
    for (int64_t i = 0; i < g->m; i++) {
        float *crow = g->c + at(&g->c_row, i), *srow = c_scratch + i * NR;
        for (int64_t a = 0, run; a < cols; a += run) {
            int dropped;
            run = col_run(&g->c_col, j0 + a, cols - a, &dropped);
            if (dropped) continue;
            float *c = crow + at(&g->c_col, j0 + a);
            if (g->c_col.stride == 1) cn_copy_floats(to_scratch ? srow + a : c, to_scratch ? c : srow + a, run);
            else
                for (int64_t q = 0; q < run; q++) {
                    if (to_scratch) srow[a + q] = c[q * g->c_col.stride];
                    else c[q * g->c_col.stride] = srow[a + q];
                }
        }
    }
}

/* A convolution's product has few rows (output channels), a moderate k and many columns: C
 * would go through memory once per slice of k. With all of A packed once (by the team, then one
 * barrier), each thread takes its share of column panels whole, every slice of k in turn, while
 * the panel's tiles of C stay in L1. The tiles and slices are the same as the blocked order's,
 * so the bits are too. */
static void gemm_whole_a(const cn_gemm_args *g, kernel_fn kernel, float *apack, int64_t kbeg, int64_t kend, int thread,
                         int threads)
{
    int64_t mp = ceil_div(g->m, MR), np = ceil_div(g->n, NR), j0p = np * thread / threads;
    int64_t j1p = np * (thread + 1) / threads;
    /* panel ip of slice s at apack + (s * mp + ip) * MR * KC, packed by the team together */
    int64_t slices = ceil_div(kend - kbeg, KC);
#pragma omp for schedule(static)
    for (int64_t sp = 0; sp < slices * mp; sp++) {
        int64_t s = sp / mp, ip = sp % mp, k0 = kbeg + s * KC;
        int64_t rows = g->m - ip * MR < MR ? g->m - ip * MR : MR, kc = kend - k0 < KC ? kend - k0 : KC;
        pack_panel(g->a, &g->a_row, ip * MR, rows, &g->a_col, k0, kc, MR, apack + sp * MR * KC);
    }
    if (j0p >= j1p) return;
    /* over several slices, a panel of C adds up in c_scratch (the same additions, in L1, always
     * the kernel's straight path) and goes to C once */
    int scratch = kend - kbeg > KC && g->m <= SCRATCH_ROWS;
    for (int64_t jp = j0p; jp < j1p; jp++) {
        int64_t j0 = jp * NR, cols = g->n - j0 < NR ? g->n - j0 : NR;
        cn_gemm_args in_scratch = *g;
        if (scratch) {
            in_scratch.c = c_scratch, in_scratch.c_row = cn_axis_ld(NR), in_scratch.c_col = cn_axis_unit();
            in_scratch.bias_col = g->bias_col ? g->bias_col + j0 : NULL;
            if (g->accumulate) panel_io(g, j0, cols, 1);
        }
        for (int64_t k0 = kbeg, s = 0; k0 < kend; k0 += KC, s++) {
            int64_t kc = kend - k0 < KC ? kend - k0 : KC, offsets[KC];
            const int64_t *off;
            const float *b = b_panel(g, jp, k0, kc, offsets, &off);
            for (int64_t ip = 0; ip < mp; ip++) {
                tile tl = { scratch ? &in_scratch : g, ip * MR, scratch ? 0 : j0, g->m - ip * MR < MR ? g->m - ip * MR : MR,
                            cols, k0 == kbeg, k0 + kc >= kend };
                kernel(kc, apack + (s * mp + ip) * MR * KC, b, off, &tl);
            }
        }
        if (scratch) panel_io(g, j0, cols, 0);
    }
}

/* The product over k in [kbeg, kend) on `threads` threads (1 inside a parallel region). */
static void gemm_range(const cn_gemm_args *g, int64_t kbeg, int64_t kend, int threads)
{
    kernel_fn kernel = pick_kernel();
    int64_t slices = ceil_div(kend - kbeg, KC);
    int64_t a_floats = ceil_div(g->m, MR) * MR * slices * KC;
    float *apack = a_floats <= A_WHOLE && ceil_div(g->n, NR) >= 4 * threads ? grown(WHOLE_A, (size_t)a_floats) : NULL;
    if (apack) {
#pragma omp parallel num_threads(threads) if (threads > 1)
        {
            int thread = 0, team = 1;
#ifdef _OPENMP
            thread = omp_get_thread_num(), team = omp_get_num_threads();
#endif
            gemm_whole_a(g, kernel, apack, kbeg, kend, thread, team);
        }
        return;
    }
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int thread = 0, team = 1;
#ifdef _OPENMP
        thread = omp_get_thread_num(), team = omp_get_num_threads();
#endif
        for (int64_t k0 = kbeg; k0 < kend; k0 += KC) {
            int64_t kc = kend - k0 < KC ? kend - k0 : KC;
            for (int64_t i0 = 0; i0 < g->m; i0 += MC)
                run_tiles(g, kernel, i0, g->m - i0 < MC ? g->m - i0 : MC, k0, kc, k0 == kbeg, k0 + kc >= kend, thread,
                          team);
        }
    }
}

#ifdef CN_X86
/* A with at most FEW_ROWS rows (inference on one image: a dense layer's x . W^T): packing B
 * would cost more than the product. Each element of C is the same chain of FMAs over k, slice by
 * slice, and the same additions as in the micro-kernel and store_tile, so the bits are those of
 * the blocked product; but B's columns are read in place, 16 at a time, and transposed in
 * registers. Needs k contiguous in A and in B, and C's columns contiguous. */
#define FEW_ROWS 4

static int few_rows(const cn_gemm_args *g)
{
    return g->m <= FEW_ROWS && g->k >= 16 && cn_gemm_avx512() && !g->pack_b && g->a_col.stride == 1 &&
           g->a_col.blk == INT64_MAX && g->b_row.stride == 1 && g->b_row.blk == INT64_MAX && g->c_col.stride == 1 &&
           g->c_col.blk == INT64_MAX;
}

/* The 16 columns of C from j0 (fewer at the right edge), every row. A function of its own because
 * clang does not give the function OpenMP outlines from the parallel loop below the target
 * attribute of the function around it; gcc does, and inlines it back (the same code as a loop
 * body in place). */
#ifdef __clang__
#define FEW_ROWS_INLINE __attribute__((noinline))
#else
#define FEW_ROWS_INLINE __attribute__((always_inline)) inline
#endif
__attribute__((target("avx512f,fma"))) static FEW_ROWS_INLINE void few_rows_block(const cn_gemm_args *g, int64_t j0)
{
    int cols = g->n - j0 < 16 ? (int)(g->n - j0) : 16;
    __mmask16 keep = (__mmask16)((1u << cols) - 1);
    const float *col[16];
    for (int l = 0; l < 16; l++) col[l] = g->b + at(&g->b_col, j0 + (l < cols ? l : cols - 1));
    for (int64_t i = 0; i < g->m; i++) {
        const float *arow = g->a + at(&g->a_row, i);
        float *crow = g->c + at(&g->c_row, i) + j0;
        __m512 br = _mm512_set1_ps(!g->accumulate && g->bias_row ? g->bias_row[i] : 0.0f), zero = _mm512_setzero_ps();
        for (int64_t k0 = 0; k0 < g->k; k0 += KC) {
            int64_t kc = g->k - k0 < KC ? g->k - k0 : KC, k = 0;
            __m512 acc = zero;
            for (; k + 16 <= kc; k += 16) {
                __m512 r[16];
                for (int l = 0; l < 16; l++) r[l] = _mm512_loadu_ps(col[l] + k0 + k);
                cn_transpose16(r);
                for (int q = 0; q < 16; q++) acc = _mm512_fmadd_ps(_mm512_set1_ps(arow[k0 + k + q]), r[q], acc);
            }
            for (; k < kc; k++) {
                _Alignas(64) float b[16];
                for (int l = 0; l < 16; l++) b[l] = col[l][k0 + k];
                acc = _mm512_fmadd_ps(_mm512_set1_ps(arow[k0 + k]), _mm512_load_ps(b), acc);
            }
            __m512 v;
            if (k0 == 0 && !g->accumulate) {
                __m512 bc = g->bias_col ? _mm512_maskz_loadu_ps(keep, g->bias_col + j0) : zero;
                v = _mm512_add_ps(_mm512_add_ps(acc, br), bc);
            } else {
                v = _mm512_add_ps(_mm512_maskz_loadu_ps(keep, crow), acc);
            }
            if (k0 + kc >= g->k && g->relu) v = _mm512_max_ps(v, zero);
            _mm512_mask_storeu_ps(crow, keep, v);
        }
    }
}

__attribute__((target("avx512f,fma"))) static void gemm_few_rows(const cn_gemm_args *g, int threads)
{
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t j0 = 0; j0 < g->n; j0 += 16) few_rows_block(g, j0);
}
#endif

/* Split k: a weight gradient (C += A.B with a long sum and a small C, as a first layer's 32x9
 * over 50,000 pixels, or 64x576 over 35,000) is better shared by slices of k than by tiles of C:
 * tiles would be few, or every thread would pack the same A. SPLIT_PARTS slices of k are summed
 * apart, side by side, and added to C in slice order. The parts depend on the shapes only: the
 * result is the same on any number of threads. */
#define SPLIT_PARTS 8
#define SPLIT_MAX_MN 40960

static int split_k(const cn_gemm_args *g)
{
    return g->accumulate && !g->relu && g->m * g->n <= SPLIT_MAX_MN && g->k >= SPLIT_PARTS * 2 * KC;
}

static void gemm_split(const cn_gemm_args *g, float *parts, int threads)
{
    int64_t mn = g->m * g->n;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int p = 0; p < SPLIT_PARTS; p++) {
        cn_gemm_args part = *g;
        part.c = parts + p * mn, part.c_row = cn_axis_ld(g->n), part.c_col = cn_axis_unit(), part.accumulate = 0;
        gemm_range(&part, g->k * p / SPLIT_PARTS, g->k * (p + 1) / SPLIT_PARTS, 1);
    }
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            float *c = g->c + at(&g->c_row, i) + at(&g->c_col, j);
            for (int p = 0; p < SPLIT_PARTS; p++) *c += parts[p * mn + i * g->n + j];
        }
}

void cn_gemm(const cn_gemm_args *g)
{
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) { /* C = bias (or unchanged) */
        _Alignas(64) float zero[MR * NR] = { 0 };
        for (int64_t i = 0; i < g->m; i += MR)
            for (int64_t j = 0; j < g->n; j += NR) {
                tile tl = { g, i, j, g->m - i < MR ? g->m - i : MR, g->n - j < NR ? g->n - j : NR, 1, 1 };
                store_tile(&tl, zero);
            }
        return;
    }
    /* small products are not worth waking threads for (the result is the same either way) */
    int threads = 1;
#ifdef _OPENMP
    if ((double)g->m * (double)g->n * (double)g->k >= 1 << 18 && !omp_in_parallel()) threads = omp_get_max_threads();
#endif
#ifdef CN_X86
    if (few_rows(g)) {
        gemm_few_rows(g, g->n >= 64 ? threads : 1);
        return;
    }
#endif
    float *parts = split_k(g) ? grown(SPLIT_PARTS_BUF, (size_t)(SPLIT_PARTS * g->m * g->n)) : NULL;
    if (parts) gemm_split(g, parts, threads);
    else gemm_range(g, 0, g->k, threads);
}

/* ---- reference ------------------------------------------------------------------------------------ */

void cn_gemm_ref(const cn_gemm_args *g)
{
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            if (dropped_col(&g->c_col, j)) continue;
            double s = 0;
            for (int64_t k = 0; k < g->k; k++)
                s += (double)g->a[at(&g->a_row, i) + at(&g->a_col, k)] * g->b[at(&g->b_row, k) + at(&g->b_col, j)];
            float *c = g->c + at(&g->c_row, i) + at(&g->c_col, j);
            if (g->accumulate) s += *c;
            else s += (g->bias_row ? g->bias_row[i] : 0.0) + (g->bias_col ? g->bias_col[j] : 0.0);
            if (g->relu && s < 0) s = 0;
            *c = (float)s;
        }
}
