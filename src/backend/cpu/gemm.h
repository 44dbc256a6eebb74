/* gemm.h — our single-precision matrix product, C (+)= A.B, for convolution and dense layers.
 *
 * Operands are views: element (i, j) of a view lies at p + at(row, i) + at(col, j), where an
 * axis walks `stride` apart within blocks of `blk` indices and `bstride` apart from block to
 * block. A plain row-major matrix is {ld, 1-block}x{1, 1-block}; a transposed one swaps the
 * axes; the columns of a convolution's output, (sample, pixel), are blocks of OH*OW pixels one
 * sample (Cout*OH*OW floats) apart. So no operand is ever transposed or copied before the call.
 *
 * The product is blocked and packed (BLIS's loop order) around an 8x48 AVX-512 micro-kernel
 * (gemm_avx512.c), with a portable C kernel of the same shape where AVX-512 is missing (gemm.c). Threads (OpenMP) split
 * the output tiles, or a long k in parts fixed by the shapes; each output is summed in the same
 * order on any number of threads, so results are bit-identical whatever the thread count.
 * Checked against a plain triple loop on random shapes by tests/test_gemm.c. */
#ifndef CN_GEMM_H
#define CN_GEMM_H

#include <stddef.h>
#include <stdint.h>

typedef struct cn_axis {
    int64_t stride;  /* between neighbours within a block */
    int64_t blk;     /* indices per block (INT64_MAX: one block) */
    int64_t bstride; /* between blocks */
    /* C's columns only: 0, or within a block the indices come in rows of `row` of which the
     * first `keep` are stored (the rest are computed and dropped): a convolution computed on
     * padded rows writes its output without the padding columns */
    int64_t row, keep;
} cn_axis;

/* Packs lanes [lane0, lane0+lanes) by reduction indices [k0, k0+kc) of an operand that is not a
 * view (a convolution's patches, read straight from the image): dst[k*W + l]; lanes >= `lanes`
 * are already zero. */
typedef void (*cn_pack_fn)(const void *src, int64_t lane0, int64_t lanes, int64_t k0, int64_t kc, int W,
                           float *restrict dst);

#define CN_GEMM_NR 48 /* columns of C in a panel (the micro-kernel's width) */

/* For B read in place (no packing): the rows of the panel of CN_GEMM_NR lanes from j0, for reduction
 * indices [k0, k0+kc), as a base pointer and off[k]: row k at base + off[k]. NULL when that
 * panel cannot be read so (the operand's pack_b is used). */
typedef const float *(*cn_rows_fn)(const void *src, int64_t j0, int64_t k0, int64_t kc, int64_t *off);

typedef struct cn_gemm_args {
    int64_t m, n, k;
    const float *a; cn_axis a_row, a_col; /* A: m x k */
    const float *b; cn_axis b_row, b_col; /* B: k x n */
    float *c; cn_axis c_row, c_col;       /* C: m x n */
    int accumulate;        /* 1: C += A.B; 0: C = A.B + bias */
    const float *bias_row; /* m values added to each row (or NULL); only when !accumulate */
    const float *bias_col; /* n values added to each column (or NULL); only when !accumulate */
    int relu;              /* 1: C = C > 0 ? C : 0 at the end (relu's bits: NaN and -0 give 0) */
    cn_pack_fn pack_b;     /* when set, B's panels come from pack_b(b_src, ...) instead of the view */
    cn_rows_fn b_rows;     /* when set, panels it accepts are read in place */
    const void *b_src;
} cn_gemm_args;

/* A contiguous axis and a row-major axis of leading dimension ld. */
static inline cn_axis cn_axis_unit(void) { return (cn_axis){ 1, INT64_MAX, 0, 0, 0 }; }
static inline cn_axis cn_axis_ld(int64_t ld) { return (cn_axis){ ld, INT64_MAX, 0, 0, 0 }; }
/* blocks of blk indices, stride apart within and bstride apart between */
static inline cn_axis cn_axis_blocked(int64_t stride, int64_t blk, int64_t bstride)
{
    return (cn_axis){ stride, blk, bstride, 0, 0 };
}

void cn_gemm(const cn_gemm_args *g);
/* The same product by a plain triple loop in double (the reference the tests compare with);
 * B must be a view. */
void cn_gemm_ref(const cn_gemm_args *g);
/* dst[0..n) = src[0..n), in vector registers when the CPU has AVX-512 (short runs) */
void cn_copy_floats(float *restrict dst, const float *restrict src, int64_t n);
/* rows of n floats, ld apart in each, as one call (the rows of a small image) */
void cn_copy_rows(float *restrict dst, int64_t dst_ld, const float *restrict src, int64_t src_ld, int64_t rows,
                  int64_t n);
/* 1 when the AVX-512 paths run (the CPU has AVX-512F and FMA, and neither CONVNET_ISA nor a test
 * asks for less) */
int cn_gemm_avx512(void);
/* 1 when the AVX2 paths run instead (the CPU has AVX2 and FMA: no AVX-512, or it is not wanted) */
int cn_gemm_avx2(void);
/* the vector code this process runs where no test forces it: "avx512", "avx2" or "generic" (the
 * CPU, capped by the environment's CONVNET_ISA) */
const char *cn_cpu_isa_name(void);
/* 1 when name is one of those (a value CONVNET_ISA takes) */
int cn_cpu_isa_known(const char *name);
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
/* lanes [lo, hi) of a vector of 16, clipped to [0, 16) (a mask for partial loads and stores) */
static inline __mmask16 cn_lanes16(int64_t lo, int64_t hi)
{
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    return hi <= lo ? 0 : (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}
/* r[i][j] <-> r[j][i] for 16 vectors of 16 floats (call only where cn_gemm_avx512()); inline,
 * so that the 16 vectors stay in registers (a call passed them through memory: a tenth of a
 * batch-1 inference went to it) */
__attribute__((target("avx512f"), always_inline)) static inline void cn_transpose16(__m512 r[16])
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

/* lanes [0, n) of a vector of 8, n clipped to [0, 8] (an AVX2 mask for partial loads and stores) */
__attribute__((target("avx2"), always_inline)) static inline __m256i cn_first8(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 0 ? 0 : n > 8 ? 8 : n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
/* lanes of an 8-bit mask as an AVX2 load or store mask (all ones where the bit is set) */
__attribute__((target("avx2"), always_inline)) static inline __m256i cn_lanes8(unsigned mask)
{
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)mask), bit), bit);
}
/* the mask of vector q of 8 lanes (lanes 8q on) from masks of 16 lanes: a half of m[q / 2] */
static inline unsigned cn_mask8_of16(const uint16_t *m, int q) { return (m[q / 2] >> (8 * (q % 2))) & 0xFF; }
/* a + wk * x (8 floats at x) in the lanes of mask m, a multiplication and then an addition; the
 * other lanes of a kept as they were, as AVX-512's masked add keeps them (a + 0 would turn -0
 * into +0), and x read only in m's lanes: the depthwise kernels' AVX2 twins keep AVX-512's bits */
__attribute__((target("avx2"), always_inline)) static inline __m256 cn_add_product8(__m256 a, __m256 wk, const float *x,
                                                                                   unsigned m)
{
    if (m == 0xFF) return _mm256_add_ps(a, _mm256_mul_ps(wk, _mm256_loadu_ps(x)));
    if (!m) return a;
    __m256i in = cn_lanes8(m);
    return _mm256_blendv_ps(a, _mm256_add_ps(a, _mm256_mul_ps(wk, _mm256_maskload_ps(x, in))), _mm256_castsi256_ps(in));
}
/* a (+ bias where add_bias) (relu: values not above 0, NaN too, made +0) stored in the lanes of live */
__attribute__((target("avx2"), always_inline)) static inline void cn_store_bias_relu8(float *d, __m256i live, __m256 a,
                                                                                     int add_bias, float bias, int relu)
{
    if (add_bias) a = _mm256_add_ps(a, _mm256_set1_ps(bias));
    if (relu) a = _mm256_and_ps(a, _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GT_OQ));
    _mm256_maskstore_ps(d, live, a);
}
/* the even and the odd columns of the 16 in a, b (columns 0-7, 8-15) */
__attribute__((target("avx2"), always_inline)) static inline __m256 cn_even8(__m256 a, __m256 b)
{
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
}
__attribute__((target("avx2"), always_inline)) static inline __m256 cn_odd8(__m256 a, __m256 b)
{
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}
/* r[i][j] <-> r[j][i] for 8 vectors of 8 floats (call only where cn_gemm_avx2() or cn_gemm_avx512()) */
__attribute__((target("avx2"), always_inline)) static inline void cn_transpose8(__m256 r[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);     /* a0 b0 a1 b1 | a4 b4 a5 b5 */
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]); /* a2 b2 a3 b3 | a6 b6 a7 b7 */
    }
    for (int h = 0; h < 8; h += 4) {
        u[h] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);     /* a0 b0 c0 d0 | a4 b4 c4 d4 */
        u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE); /* a1 b1 c1 d1 | a5 b5 c5 d5 */
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
        r[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
    }
}

#endif
/* ---- products on panels packed by the caller (Winograd's 16 small products per tile panel) ----
 * A packed once as the micro-kernel reads it, B already in panel form: no packing per call. */

#define CN_GEMM_MR 8 /* rows of C in a tile (the micro-kernel's height) */
/* floats of A (m x k) packed for cn_gemm_panel: m rounded up to CN_GEMM_MR rows (zeros), times k */
static inline int64_t cn_gemm_packed_a_len(int64_t m, int64_t k)
{
    return (m + CN_GEMM_MR - 1) / CN_GEMM_MR * CN_GEMM_MR * k;
}
/* where element (i, kk) of A (m x k) lies in its packed form: panels of CN_GEMM_MR rows, each
 * column of a panel CN_GEMM_MR floats in a row */
static inline int64_t cn_gemm_packed_a_at(int64_t k, int64_t i, int64_t kk)
{
    return i / CN_GEMM_MR * CN_GEMM_MR * k + kk * CN_GEMM_MR + i % CN_GEMM_MR;
}
/* C (m x CN_GEMM_NR, row-major, ldc apart) = A . B on the calling thread, A packed as
 * cn_gemm_packed_a_at, B a panel (row kk at b + kk*CN_GEMM_NR, 64-byte aligned); k is walked in the
 * blocked product's slices, so B's slice stays in L1. Only C's first `cols` columns are wanted:
 * 32 or fewer cost a third less or two thirds less (the others are left as they were); each
 * column has the bits of the full panel's. */
void cn_gemm_panel(int64_t m, int64_t k, const float *ap, const float *b, float *c, int64_t ldc, int64_t cols);
/* the same, C += A . B (C's columns up to the next multiple of 16 past `cols` are written) */
void cn_gemm_panel_add(int64_t m, int64_t k, const float *ap, const float *b, float *c, int64_t ldc, int64_t cols);
/* at least `floats` floats kept by the calling thread for its life, 64-byte aligned (grown, never
 * shrunk); NULL when the heap says no. For scratch a kernel needs per thread. */
float *cn_thread_scratch(size_t floats);
/* Tests: 1 makes cn_thread_scratch return NULL (the kernels' fallbacks then run: the
 * workspace's spare, a thread at a time, with the same bits), 0 as before. */
void cn_thread_scratch_refuse(int on);

/* Which micro-kernel cn_gemm runs on this CPU: "avx512", "avx2" or "generic". */
const char *cn_gemm_kernel_name(void);
/* Tests: 1 forces the portable kernel, 0 picks by CPU features again. */
void cn_gemm_force_generic(int on);
/* Tests: 1 runs the AVX2 paths where the CPU has AVX-512 too, 0 picks by CPU features again. */
void cn_gemm_force_avx2(int on);

#endif
