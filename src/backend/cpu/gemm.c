/* gemm.c — C (+)= A.B for float views (see gemm.h): packed panels, the portable 8x48
 * micro-kernel (its AVX-512 twin and the other vector paths are in gemm_avx512.c, its AVX2 twin
 * in gemm_avx2.c, picked here by the CPU: isa_level), OpenMP over output tiles, and a plain
 * reference product.
 *
 * Loop order (BLIS): for each KC-deep slice of k, for each MC-tall block of rows, each thread
 * walks its fixed share of the (NR-column panel, MR-row panel) tiles, packing the A panels its
 * tiles need and a B panel whenever the column panel changes into buffers of its own, so a B
 * panel stays in L1 while the A panels stream from L2, and no thread waits for another. The
 * packing buffers are thread-local; the two that grow (all of A, the parts of a split k) are
 * allocated by the first product that needs them, never again for that shape. */
#define _POSIX_C_SOURCE 200809L /* pthread keys */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "gemm_impl.h"

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
static _Thread_local grow_buf grow_bufs[3]; /* all of A, the parts of a split k, a caller's */
enum { WHOLE_A, SPLIT_PARTS_BUF, CALLER_BUF };

/* a thread's buffers go with it: OpenMP ends worker threads when the team shrinks */
static pthread_key_t grow_key;
static pthread_once_t grow_once = PTHREAD_ONCE_INIT;

static void free_grow_bufs(void *bufs)
{
    grow_buf *b = bufs;
    for (int i = 0; i < 3; i++) free(b[i].p), b[i].p = NULL, b[i].n = 0;
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
        if (red->blk == INT64_MAX) /* rows evenly apart: one call (a transposed A's rows are 8 floats) */
            cn_copy_rows(dst, W, base + k0 * red->stride, red->stride, kc, n_lanes);
        else
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
                cn_gemm_pack_runs_avx512(run, n_lanes, seg, W, dst + k * W);
                continue;
            }
            if (cn_gemm_avx2()) {
                cn_gemm_pack_runs_avx2(run, n_lanes, seg, W, dst + k * W);
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

/* C tile (+)= acc (MR x NR, row-major), with bias on the first slice and relu on the last */
void cn_gemm_store_tile(const cn_gemm_tile *t, const float *acc)
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
            if (t->last && g->relu) v = v > 0.0f ? v : 0.0f; /* relu as the reference's: NaN gives 0 */
            *c = v;
        }
    }
}

/* ---- the portable micro-kernel (the AVX-512 one: gemm_avx512.c) ----------------------------- *
 * acc (MR x NR) = sum over k of A panel column k times B panel row k; B's rows are the packed
 * panel's (off NULL) or, read in place, at b + off[k]. */

static void kernel_generic(int64_t kc, const float *restrict a, const float *restrict b, const int64_t *off,
                           const cn_gemm_tile *t)
{
    float acc[MR * NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; k++, a += MR) {
        const float *bk = off ? b + off[k] : b + k * NR;
        for (int r = 0; r < MR; r++)
            for (int s = 0; s < NR; s++) acc[r * NR + s] += a[r] * bk[s];
    }
    cn_gemm_store_tile(t, acc);
}

/* ---- short copies (packing runs are often a row of an image: 7 to 56 floats) ------------------ */

static void copy_generic(float *restrict dst, const float *restrict src, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

/* The vector code this process may run: ISA_AVX512 (the CPU has AVX-512F and FMA), ISA_AVX2
 * (AVX2 and FMA) or ISA_GENERIC, lowered by the environment's CONVNET_ISA (avx2 or generic: what
 * a CPU without AVX-512 runs, measured on one with it) and by the tests' forcing. */
enum { ISA_GENERIC, ISA_AVX2, ISA_AVX512 };
static const char *const isa_names[] = { "generic", "avx2", "avx512" }; /* by level */
static int cpu_isa;
static pthread_once_t cpu_isa_once = PTHREAD_ONCE_INIT;
static int forced_isa = -1; /* tests: cn_gemm_force_generic, cn_gemm_force_avx2 */

static void find_cpu_isa(void)
{
#ifdef CN_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) cpu_isa = ISA_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) cpu_isa = ISA_AVX512;
#endif
    const char *cap = getenv("CONVNET_ISA");
    for (int level = ISA_GENERIC; cap && level < cpu_isa; level++) /* a cap above the CPU changes nothing */
        if (strcmp(cap, isa_names[level]) == 0) cpu_isa = level;
}

int cn_cpu_isa_known(const char *name)
{
    for (int level = ISA_GENERIC; level <= ISA_AVX512; level++)
        if (strcmp(name, isa_names[level]) == 0) return 1;
    return 0;
}

static int isa_level(int forced)
{
    pthread_once(&cpu_isa_once, find_cpu_isa);
    return forced >= 0 && forced < cpu_isa ? forced : cpu_isa;
}

void cn_gemm_force_generic(int on) { forced_isa = on ? ISA_GENERIC : -1; }

void cn_gemm_force_avx2(int on) { forced_isa = on ? ISA_AVX2 : -1; }

int cn_gemm_avx512(void) { return isa_level(forced_isa) == ISA_AVX512; }

int cn_gemm_avx2(void) { return isa_level(forced_isa) == ISA_AVX2; }

const char *cn_cpu_isa_name(void) { return isa_names[isa_level(-1)]; }

void cn_copy_rows(float *restrict dst, int64_t dst_ld, const float *restrict src, int64_t src_ld, int64_t rows,
                  int64_t n)
{
#ifdef CN_X86
    if (cn_gemm_avx512()) {
        cn_copy_rows_avx512(dst, dst_ld, src, src_ld, rows, n);
        return;
    }
#endif
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * dst_ld, src + r * src_ld, (size_t)n * sizeof(float));
}

void cn_copy_floats(float *restrict dst, const float *restrict src, int64_t n)
{
#ifdef CN_X86
    if (isa_level(-1) == ISA_AVX512) { /* not forced lower by the tests: the bits are the same */
        cn_copy_floats_avx512(dst, src, n);
        return;
    }
#endif
    copy_generic(dst, src, n);
}

static cn_gemm_kernel_fn pick_kernel(void)
{
#ifdef CN_X86
    if (cn_gemm_avx512()) return cn_gemm_kernel_avx512;
    if (cn_gemm_avx2()) return cn_gemm_kernel_avx2;
#endif
    return kernel_generic;
}

const char *cn_gemm_kernel_name(void)
{
    cn_gemm_kernel_fn k = pick_kernel();
    return k == kernel_generic ? "generic" : cn_gemm_avx512() ? "avx512" : "avx2";
}

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
static void run_tiles(const cn_gemm_args *g, cn_gemm_kernel_fn kernel, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
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
        cn_gemm_tile tl = { g, i0 + ip * MR, j0, rows, g->n - j0 < NR ? g->n - j0 : NR, first, last };
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
static void gemm_whole_a(const cn_gemm_args *g, cn_gemm_kernel_fn kernel, float *apack, int64_t kbeg, int64_t kend,
                         int thread, int threads)
{
    int64_t mp = ceil_div(g->m, MR), np = ceil_div(g->n, NR), j0p = np * thread / threads;
    int64_t j1p = np * (thread + 1) / threads;
    /* panel ip of slice s at apack + (s * mp + ip) * MR * KC, packed by the team together, each
     * thread its share; then the team's barrier (none for one thread, which runs outside any
     * parallel region of its own: a barrier there would be the caller's team's) */
    int64_t slices = ceil_div(kend - kbeg, KC), sp0 = slices * mp * thread / threads;
    int64_t sp1 = slices * mp * (thread + 1) / threads;
    for (int64_t sp = sp0; sp < sp1; sp++) {
        int64_t s = sp / mp, ip = sp % mp, k0 = kbeg + s * KC;
        int64_t rows = g->m - ip * MR < MR ? g->m - ip * MR : MR, kc = kend - k0 < KC ? kend - k0 : KC;
        pack_panel(g->a, &g->a_row, ip * MR, rows, &g->a_col, k0, kc, MR, apack + sp * MR * KC);
    }
    if (threads > 1) {
#pragma omp barrier
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
                cn_gemm_tile tl = { scratch ? &in_scratch : g, ip * MR, scratch ? 0 : j0,
                                    g->m - ip * MR < MR ? g->m - ip * MR : MR, cols, k0 == kbeg, k0 + kc >= kend };
                kernel(kc, apack + (s * mp + ip) * MR * KC, b, off, &tl);
            }
        }
        if (scratch) panel_io(g, j0, cols, 0);
    }
}

/* one thread's share of the blocked order over k in [kbeg, kend) */
static void gemm_blocked(const cn_gemm_args *g, cn_gemm_kernel_fn kernel, int64_t kbeg, int64_t kend, int thread,
                         int team)
{
    for (int64_t k0 = kbeg; k0 < kend; k0 += KC) {
        int64_t kc = kend - k0 < KC ? kend - k0 : KC;
        for (int64_t i0 = 0; i0 < g->m; i0 += MC)
            run_tiles(g, kernel, i0, g->m - i0 < MC ? g->m - i0 : MC, k0, kc, k0 == kbeg, k0 + kc >= kend, thread, team);
    }
}

/* fn(arg, thread, team) on `threads` threads: a parallel region, or for one thread none at all
 * (libgomp makes a system call even for a serial one) */
static void on_team(int threads, void (*fn)(const void *arg, int thread, int team), const void *arg)
{
    if (threads <= 1) {
        fn(arg, 0, 1);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        int thread = 0, team = 1;
#ifdef _OPENMP
        thread = omp_get_thread_num(), team = omp_get_num_threads();
#endif
        fn(arg, thread, team);
    }
}

typedef struct {
    const cn_gemm_args *g;
    cn_gemm_kernel_fn kernel;
    float *apack; /* all of A packed (gemm_whole_a), or NULL: the blocked order */
    int64_t kbeg, kend;
} range_job;

static void range_part(const void *arg, int thread, int team)
{
    const range_job *j = arg;
    if (j->apack) gemm_whole_a(j->g, j->kernel, j->apack, j->kbeg, j->kend, thread, team);
    else gemm_blocked(j->g, j->kernel, j->kbeg, j->kend, thread, team);
}

/* The product over k in [kbeg, kend) on `threads` threads (1 inside a parallel region). */
static void gemm_range(const cn_gemm_args *g, int64_t kbeg, int64_t kend, int threads)
{
    int64_t slices = ceil_div(kend - kbeg, KC);
    int64_t a_floats = ceil_div(g->m, MR) * MR * slices * KC;
    float *apack = a_floats <= A_WHOLE && ceil_div(g->n, NR) >= 4 * threads ? grown(WHOLE_A, (size_t)a_floats) : NULL;
    range_job j = { g, pick_kernel(), apack, kbeg, kend };
    on_team(threads, range_part, &j);
}

#ifdef CN_X86
/* A with at most FEW_ROWS rows (inference on one image: a dense layer's x . W^T): packing B
 * would cost more than the product. Each element of C is the same chain of FMAs over k, slice by
 * slice, and the same additions as in the micro-kernel and cn_gemm_store_tile, so the bits are
 * those of the blocked product; but B's columns are read in place, 16 at a time, and transposed
 * in registers (cn_gemm_few_rows, gemm_avx512.c; with AVX2, 8 at a time: cn_gemm_few_rows_avx2). Needs k contiguous in A and in B, and C's
 * columns contiguous. */

static int few_rows(const cn_gemm_args *g)
{
    return g->m <= FEW_ROWS && g->k >= 16 && (cn_gemm_avx512() || cn_gemm_avx2()) && !g->pack_b && g->a_col.stride == 1 &&
           g->a_col.blk == INT64_MAX && g->b_row.stride == 1 && g->b_row.blk == INT64_MAX && g->c_col.stride == 1 &&
           g->c_col.blk == INT64_MAX;
}
#endif

#ifdef CN_X86
/* C of at most 16 columns and many rows (a convolution on 4x4 maps for one image: 512 output
 * channels by 16 pixels, k = 4,608): packing A, a whole weight matrix, cost more than the
 * product, whose every A value serves at most 16 columns. Each thread takes its tiles of 8 rows
 * through every slice of k in turn, A's rows read in place, B's panel packed as the blocked
 * product packs it: the same FMA chains and additions, so the same bits, one image alone or in
 * a batch (tests/test_gemm.c). Needs k contiguous in A. */
#define FEW_COLS 16

static int few_cols(const cn_gemm_args *g)
{
    return g->n <= FEW_COLS && g->m >= 4 * MR && cn_gemm_avx512() && g->a_col.stride == 1 && g->a_col.blk == INT64_MAX;
}

/* a thread's share of the tiles of 8 rows, every slice of k */
static void few_cols_part(const void *arg, int thread, int team)
{
    const cn_gemm_args *g = arg;
    int64_t mp = ceil_div(g->m, MR), offsets[KC];
    const int64_t *off;
    for (int64_t k0 = 0; k0 < g->k; k0 += KC) {
        int64_t kc = g->k - k0 < KC ? g->k - k0 : KC;
        const float *b = b_panel(g, 0, k0, kc, offsets, &off);
        for (int64_t ip = mp * thread / team; ip < mp * (thread + 1) / team; ip++) {
            cn_gemm_tile tl = { g, ip * MR, 0, g->m - ip * MR < MR ? g->m - ip * MR : MR, g->n, k0 == 0, k0 + kc >= g->k };
            cn_gemm_few_cols_tile(kc, k0, b, off, &tl);
        }
    }
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
            if (dropped_col(&g->c_col, j)) continue; /* a padded row's end: not in C (it wrote past C) */
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
                cn_gemm_tile tl = { g, i, j, g->m - i < MR ? g->m - i : MR, g->n - j < NR ? g->n - j : NR, 1, 1 };
                cn_gemm_store_tile(&tl, zero);
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
        if (cn_gemm_avx512()) cn_gemm_few_rows(g, g->n >= 64 ? threads : 1);
        else cn_gemm_few_rows_avx2(g, g->n >= 64 ? threads : 1);
        return;
    }
#endif
    float *parts = split_k(g) ? grown(SPLIT_PARTS_BUF, (size_t)(SPLIT_PARTS * g->m * g->n)) : NULL;
    if (parts) {
        gemm_split(g, parts, threads);
        return;
    }
#ifdef CN_X86
    if (few_cols(g)) {
        on_team(threads, few_cols_part, g);
        return;
    }
#endif
    gemm_range(g, 0, g->k, threads);
}

/* ---- products on panels packed by the caller ---------------------------------------------------- */

static int scratch_refused; /* tests: cn_thread_scratch says no, as a full heap would */

void cn_thread_scratch_refuse(int on) { scratch_refused = on; }

float *cn_thread_scratch(size_t floats) { return scratch_refused ? NULL : grown(CALLER_BUF, floats); }

static void panel_product(int64_t m, int64_t k, const float *ap, const float *b, float *c, int64_t ldc, int64_t cols,
                          int accumulate)
{
    cn_gemm_kernel_fn kernel = pick_kernel();
    /* the AVX-512 kernels write up to 16 columns past the wanted ones, the others the wanted
     * ones alone (C's rows may be narrower than a panel: Winograd's weight gradient adds into
     * M rows of Cout rounded up to 16) */
    int64_t width = cols < NR ? cols : NR;
#ifdef CN_X86
    int vecs = kernel == cn_gemm_kernel_avx512 ? (int)((cols + 15) / 16) : 3;
    if (kernel == cn_gemm_kernel_avx512) width = NR;
#endif
    cn_gemm_args g = { .m = m, .n = NR, .k = k, .c = c, .c_row = cn_axis_ld(ldc), .c_col = cn_axis_unit(),
                       .accumulate = accumulate };
    for (int64_t k0 = 0; k0 < k; k0 += KC) {
        int64_t kc = k - k0 < KC ? k - k0 : KC;
        for (int64_t ip = 0; ip < ceil_div(m, MR); ip++) {
            cn_gemm_tile tl = { &g, ip * MR, 0, m - ip * MR < MR ? m - ip * MR : MR, width, k0 == 0, k0 + kc >= k };
#ifdef CN_X86
            if (vecs < 3) {
                cn_gemm_kernel_narrow(kc, ap + ip * MR * k + k0 * MR, b + k0 * NR, vecs, &tl);
                continue;
            }
#endif
            kernel(kc, ap + ip * MR * k + k0 * MR, b + k0 * NR, NULL, &tl);
        }
    }
}

void cn_gemm_panel(int64_t m, int64_t k, const float *ap, const float *b, float *c, int64_t ldc, int64_t cols)
{
    panel_product(m, k, ap, b, c, ldc, cols, 0);
}

void cn_gemm_panel_add(int64_t m, int64_t k, const float *ap, const float *b, float *c, int64_t ldc, int64_t cols)
{
    panel_product(m, k, ap, b, c, ldc, cols, 1);
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
            if (g->relu) s = s > 0 ? s : 0;
            *c = (float)s;
        }
}
