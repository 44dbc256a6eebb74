/* conv.c — convolution on the CPU as products with our SGEMM (gemm.c), in three ways:
 * 1x1 stride-1 convolutions read the image as a matrix; stride-1 convolutions work on padded
 * rows, where every patch is a contiguous run; the others pack their patches from the image
 * run by run, or, for small planes and short rows, by permutes in registers. The input gradient of a stride-1 convolution that keeps its map's size is itself
 * such a convolution. 3x3 stride-1 convolutions run by Winograd's algorithms where the rule
 * picks them (winograd.c: the forward, and so the input gradient, and the weight gradient).
 * Checked against the reference kernels (src/ops/conv.c) by tests/test_backend.c. */
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CN_X86 1
#endif

#include "../../ops/conv_ref.h"
#include "cpu_impl.h"
#include "gemm.h"
#include "kernel_util.h"

/* ---- any stride: patches packed from the image ---------------------------------------------
 * Products whose columns are (sample, pixel), so W (Cout_g x K) . patches (K x N*OH*OW) writes
 * NCHW directly. The patches are never written out: the product packs them straight from the
 * image (pack_patches). Where the input gradient is not a convolution of its own, it goes
 * through a buffer, dcol = W^T . dY, added back into dx a chunk of samples at a time
 * (col2im_add). */

#define COL_BUDGET (8 << 20) /* bytes of dcol per chunk: big products, still in the cache */

static int direct_1x1(const cn_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_t == 0 && g->pad_l == 0 &&
           g->oh == g->h && g->ow == g->w;
}

/* a kernel that covers the whole unpadded image (LeNet-5's C5): one output pixel, whose patch is
 * the sample's group of channels as it lies in memory, in the weights' order */
static int whole_image(const cn_conv_geom *g)
{
    return g->kh == g->h && g->kw == g->w && g->dh == 1 && g->dw == 1 && g->pad_t == 0 && g->pad_l == 0 &&
           g->oh == 1 && g->ow == 1;
}

/* the patches are the image itself: products read it (and write the input gradient) in place */
static int direct(const cn_conv_geom *g) { return direct_1x1(g) || whole_image(g); }

/* samples per chunk of the input gradient, whose dcol holds `per_sample` floats a sample */
static int64_t chunk_samples(const cn_conv_geom *g, int64_t per_sample)
{
    int64_t per = per_sample * (int64_t)sizeof(float);
    int64_t s = per > 0 ? COL_BUDGET / per : g->n;
    return s < 1 ? 1 : s > g->n ? g->n : s;
}

/* the outputs ox in [*lo, *hi) whose input column ix = ox*sw + x0 lies inside [0, w) */
static void inside(int64_t x0, int64_t sw, int64_t w, int64_t ow, int64_t *lo, int64_t *hi)
{
    int64_t a = x0 >= 0 ? 0 : (-x0 + sw - 1) / sw;     /* first ox with ix >= 0 */
    int64_t b = w - x0 <= 0 ? 0 : (w - x0 + sw - 1) / sw; /* first ox with ix >= w */
    *lo = a < ow ? a : ow;
    *hi = b < *lo ? *lo : b > ow ? ow : b;
}

/* The patches of group gr: element (k, j) with k = (c, ky, kx) and j = (sample, oy, ox). */
/* where small planes take their patches from registers (register_block): for each kernel position
 * e = ky*kw + kx, output pixel p's input pixel (idx) and whether it is inside the image (bit p
 * of live); worked out once a product */
#define SMALL_TAPS 16 /* kh * kw at most */
typedef struct {
    int32_t idx[SMALL_TAPS][16];
    uint16_t live[SMALL_TAPS];
} small_tab;

typedef struct patches {
    const cn_conv_geom *g;
    const float *x;
    int64_t gr;
    const small_tab *small; /* small_planes(g) or short_rows(g): the table; NULL: runs along rows */
    int rows;               /* 1: the table is short_rows(g)'s, by kernel column */
} patches;

/* A tap: one (c, ky, kx) of the kernel, with the output columns [lo, hi) whose input column
 * ix = ox*sw + x0 lies inside the image. Walked in order by tap_next, without divisions. */
typedef struct { int64_t c, ky, kx, x0, lo, hi; } tap;

static void tap_cols(const cn_conv_geom *g, tap *t)
{
    t->x0 = t->kx * g->dw - g->pad_l;
    if (g->sw == 1) {
        t->lo = t->x0 >= 0 ? 0 : -t->x0 < g->ow ? -t->x0 : g->ow;
        t->hi = g->w - t->x0 < t->lo ? t->lo : g->w - t->x0 > g->ow ? g->ow : g->w - t->x0;
    } else {
        inside(t->x0, g->sw, g->w, g->ow, &t->lo, &t->hi);
    }
}

static tap tap_of(const cn_conv_geom *g, int64_t k)
{
    tap t = { k / (g->kh * g->kw), k / g->kw % g->kh, k % g->kw, 0, 0, 0 };
    tap_cols(g, &t);
    return t;
}

static void tap_next(const cn_conv_geom *g, tap *t)
{
    if (++t->kx == g->kw) {
        t->kx = 0;
        if (++t->ky == g->kh) t->ky = 0, t->c++;
    }
    tap_cols(g, t);
}

/* A place among the output pixels of a batch, walked in runs along output rows. */
typedef struct { int64_t s, oy, ox; } pixel;

static pixel pixel_of(const cn_conv_geom *g, int64_t j)
{
    int64_t P = g->oh * g->ow;
    return (pixel){ j / P, j % P / g->ow, j % g->ow };
}

/* the run from p to the end of its row, at most `left` pixels; p moves past it */
static int64_t pixel_run(const cn_conv_geom *g, pixel *p, int64_t left)
{
    int64_t seg = g->ow - p->ox < left ? g->ow - p->ox : left;
    if ((p->ox += seg) == g->ow) {
        p->ox = 0;
        if (++p->oy == g->oh) p->oy = 0, p->s++;
    }
    return seg;
}

/* Output planes of at most 16 floats, input planes of at most 64 (resnet18-cifar's 4x4 maps, and
 * the stride-2 convolutions that make them from 8x8): the values a tap sees over one image's
 * output pixels are its input plane permuted in registers, zeros where it looks at padding
 * (register_block). Runs along output rows would be 2 to 4 floats long, and walking them cost as
 * much as the product's arithmetic. */
static int small_planes(const cn_conv_geom *g)
{
    return g->h * g->w <= 64 && g->oh * g->ow <= 16 && g->kh * g->kw <= SMALL_TAPS && cn_gemm_avx512();
}

/* Strided convolutions with output rows of at most 16 pixels read from input rows of at most 32
 * (resnet18-cifar's 32x32 -> 16x16 and 16x16 -> 8x8): the values a tap sees along an output row
 * are its input row (two vectors) permuted in registers by a table of its kernel column, zeros
 * where it looks at padding (row_tap). Walked a run at a time, a stride-2 patch run of 8 or 16
 * values cost some 30 cycles of bookkeeping and a strided copy: a third of the forward. */
static int short_rows(const cn_conv_geom *g)
{
    return !small_planes(g) && (g->sh > 1 || g->sw > 1) && g->w <= 32 && g->ow <= 16 && g->kw <= SMALL_TAPS &&
           cn_gemm_avx512();
}

/* the patches of group gr of x, with the table in *tab where small_planes(g) or short_rows(g) */
static patches patches_of(const cn_conv_geom *g, const float *x, int64_t gr, small_tab *tab)
{
    if (short_rows(g)) {
        for (int64_t kx = 0; kx < g->kw; kx++) { /* output column p reads input column idx[kx][p] */
            tab->live[kx] = 0;
            for (int64_t p = 0; p < 16; p++) {
                int64_t ix = p * g->sw - g->pad_l + kx * g->dw;
                int in = p < g->ow && ix >= 0 && ix < g->w;
                tab->idx[kx][p] = in ? (int32_t)ix : 0;
                tab->live[kx] |= (uint16_t)(in << p);
            }
        }
        return (patches){ g, x, gr, tab, 1 };
    }
    if (!small_planes(g)) return (patches){ g, x, gr, NULL, 0 };
    for (int64_t e = 0; e < g->kh * g->kw; e++) {
        tab->live[e] = 0;
        for (int64_t p = 0; p < 16; p++) {
            int64_t oy = p / g->ow, ox = p % g->ow;
            int64_t iy = oy * g->sh - g->pad_t + e / g->kw * g->dh, ix = ox * g->sw - g->pad_l + e % g->kw * g->dw;
            int in = p < g->oh * g->ow && iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
            tab->idx[e][p] = in ? (int32_t)(iy * g->w + ix) : 0;
            tab->live[e] |= (uint16_t)(in << p);
        }
    }
    return (patches){ g, x, gr, tab, 0 };
}

/* out[i*os] for i < seg: the inputs tap t sees from pixels ox .. ox+seg-1 of output row oy of
 * sample s (zeros where it looks at padding) */
static inline void patch_run(const patches *pt, const tap *t, pixel p, int64_t seg, float *restrict out, int64_t os)
{
    const cn_conv_geom *g = pt->g;
    int64_t iy = p.oy * g->sh - g->pad_t + t->ky * g->dh, a = 0, b = 0;
    if (iy >= 0 && iy < g->h) {
        a = t->lo - p.ox < 0 ? 0 : t->lo - p.ox > seg ? seg : t->lo - p.ox;
        b = t->hi - p.ox < a ? a : t->hi - p.ox > seg ? seg : t->hi - p.ox;
    }
    for (int64_t i = 0; i < a; i++) out[i * os] = 0.0f;
    if (b > a) {
        /* the input of pixel ox + a */
        const float *restrict row = pt->x + ((p.s * g->cin + pt->gr * (g->cin / g->groups) + t->c) * g->h + iy) * g->w +
                                    (t->x0 + (p.ox + a) * g->sw);
        if (os == 1 && g->sw == 1) cn_copy_floats(out + a, row, b - a);
        else
            for (int64_t i = 0; i < b - a; i++) out[(a + i) * os] = row[i * g->sw];
    }
    for (int64_t i = b; i < seg; i++) out[i * os] = 0.0f;
}

#ifdef CN_X86
/* input plane c of sample s (group gr's channel c) as four vectors, zeros past its end */
__attribute__((target("avx512f"), always_inline)) static inline void small_plane(const patches *pt, int64_t c, int64_t s,
                                                                                __m512 v[4])
{
    const cn_conv_geom *g = pt->g;
    int64_t hw = g->h * g->w;
    const float *x = pt->x + (s * g->cin + pt->gr * (g->cin / g->groups) + c) * hw;
    for (int q = 0; q < 4; q++)
        v[q] = q * 16 < hw ? _mm512_maskz_loadu_ps(cn_lanes16(0, hw - 16 * q), x + 16 * q) : _mm512_setzero_ps();
}

/* kernel position e's values over the output pixels from its input plane's vectors (lane p:
 * pixel p) */
__attribute__((target("avx512f"), always_inline)) static inline __m512 small_tap(const patches *pt, int64_t e,
                                                                                 const __m512 v[4])
{
    int64_t hw = pt->g->h * pt->g->w;
    const __mmask16 *live = pt->small->live;
    __m512i ix = _mm512_loadu_si512(pt->small->idx[e]);
    if (hw <= 16) return _mm512_maskz_permutexvar_ps(live[e], ix, v[0]);
    __m512 lo = _mm512_maskz_permutex2var_ps(live[e], v[0], ix, v[1]);
    if (hw <= 32) return lo;
    __m512 hi = _mm512_maskz_permutex2var_ps(live[e], v[2], ix, v[3]);
    return _mm512_mask_blend_ps(_mm512_test_epi32_mask(ix, _mm512_set1_epi32(32)), lo, hi); /* pixels 32..63 */
}

#endif

#ifdef CN_X86
/* input row oy*sh - pad_t + ky*dh of channel c of sample s as two vectors (zeros past its end,
 * or for a row in the padding), where short_rows(g) */
__attribute__((target("avx512f"), always_inline)) static inline void row_vectors(const patches *pt, int64_t c,
                                                                                int64_t ky, int64_t s, int64_t oy,
                                                                                __m512 *a, __m512 *b)
{
    const cn_conv_geom *g = pt->g;
    int64_t iy = oy * g->sh - g->pad_t + ky * g->dh;
    if (iy < 0 || iy >= g->h) {
        *a = *b = _mm512_setzero_ps();
        return;
    }
    const float *r = pt->x + ((s * g->cin + pt->gr * (g->cin / g->groups) + c) * g->h + iy) * g->w;
    *a = g->w >= 16 ? _mm512_loadu_ps(r) : _mm512_maskz_loadu_ps(cn_lanes16(0, g->w), r);
    *b = g->w >= 32 ? _mm512_loadu_ps(r + 16) : _mm512_maskz_loadu_ps(cn_lanes16(0, g->w - 16), r + 16);
}

/* what kernel column kx sees along the output row from an input row's vectors (lane p: pixel p) */
__attribute__((target("avx512f"), always_inline)) static inline __m512 row_tap(const patches *pt, int64_t kx, __m512 a,
                                                                               __m512 b)
{
    return _mm512_maskz_permutex2var_ps(pt->small->live[kx], a, _mm512_loadu_si512(pt->small->idx[kx]), b);
}

/* patch_block where small_planes(g) or short_rows(g) (rows: which), a segment of the block at a
 * time: an image's plane, or an output row (or the part of it in the block). Each tap's values
 * over the segment are a permute of the segment's source (the input plane, or the input row),
 * loaded once for the taps that share it (a channel's kernel positions, a kernel row's
 * columns). A row of taps (pix_stride 1: the forward's panels) is stored a segment at a time;
 * a row of pixels (tap_stride 1: the weight gradient's) is 16 taps' rows turned in registers.
 * Inlined for each value of rows, so that neither walk tests it per tap. */
__attribute__((target("avx512f"), always_inline)) static inline void
register_walk(const patches *pt, int rows, int64_t t0, int64_t taps, int64_t p0, int64_t pixels, float *restrict dst,
              int64_t tap_stride, int64_t pix_stride)
{
    const cn_conv_geom *g = pt->g;
    int64_t L = rows ? g->ow : g->oh * g->ow; /* pixels a segment */
    int64_t G = rows ? g->kw : g->kh * g->kw; /* taps that share a source */
    for (int64_t q = p0 / L; q * L < p0 + pixels; q++) {
        /* the segment's pixels [lo, hi) in the block, stored from dst's pixel `at` on */
        int64_t lo = p0 > q * L ? p0 - q * L : 0, hi = p0 + pixels - q * L < L ? p0 + pixels - q * L : L;
        int64_t at = q * L + lo - p0, s = rows ? q / g->oh : q, oy = rows ? q % g->oh : 0;
        int64_t e = t0 % G, c = rows ? t0 / G / g->kh : t0 / G, ky = rows ? t0 / G % g->kh : 0;
        __mmask16 m = cn_lanes16(lo, hi);
        __m512 v[4];
#define SOURCE() (rows ? row_vectors(pt, c, ky, s, oy, &v[0], &v[1]) : small_plane(pt, c, s, v))
#define TAP() (rows ? row_tap(pt, e, v[0], v[1]) : small_tap(pt, e, v))
/* to the next tap: past a source's last, the next source (rows: its next kernel row) */
#define NEXT(more)                                                                                       do {                                                                                                     if (++e < G) break;                                                                                  e = 0;                                                                                               if (!rows || ++ky == g->kh) ky = 0, c++;                                                             if (more) SOURCE();                                                                              } while (0)
        SOURCE();
        if (pix_stride == 1) {
            for (int64_t k = 0; k < taps; k++) {
                __m512 t = TAP();
                if (lo) t = _mm512_maskz_compress_ps(m, t); /* pixels from lo on to lane 0 on */
                if (hi - lo == 16) _mm512_storeu_ps(dst + k * tap_stride + at, t);
                else _mm512_mask_storeu_ps(dst + k * tap_stride + at, cn_lanes16(0, hi - lo), t);
                NEXT(k + 1 < taps);
            }
            continue;
        }
        for (int64_t k0 = 0; k0 < taps; k0 += 16) {
            int64_t n = taps - k0 < 16 ? taps - k0 : 16;
            __m512 r[16];
            for (int64_t i = 0; i < 16; i++) {
                r[i] = i < n ? TAP() : _mm512_setzero_ps();
                if (i < n) NEXT(k0 + i + 1 < taps);
            }
            cn_transpose16(r); /* r[p]: pixel p's values of the 16 taps */
            for (int64_t p = lo; p < hi; p++)
                _mm512_mask_storeu_ps(dst + (at + p - lo) * pix_stride + k0 * tap_stride, cn_lanes16(0, n), r[p]);
        }
#undef NEXT
#undef TAP
#undef SOURCE
    }
}

__attribute__((target("avx512f"))) static void register_block(const patches *pt, int64_t t0, int64_t taps, int64_t p0,
                                                              int64_t pixels, float *restrict dst, int64_t tap_stride,
                                                              int64_t pix_stride)
{
    if (pt->rows) register_walk(pt, 1, t0, taps, p0, pixels, dst, tap_stride, pix_stride);
    else register_walk(pt, 0, t0, taps, p0, pixels, dst, tap_stride, pix_stride);
}
#endif

/* dst[t*tap_stride + p*pix_stride] = patch value of tap t0+t at pixel p0+p, for taps [0, taps)
 * and pixels [0, pixels), walked tap by tap in runs along output rows */
static void patch_block(const patches *pt, int64_t t0, int64_t taps, int64_t p0, int64_t pixels, float *restrict dst,
                        int64_t tap_stride, int64_t pix_stride)
{
#ifdef CN_X86
    if (pt->small && (pix_stride == 1 || tap_stride == 1)) {
        register_block(pt, t0, taps, p0, pixels, dst, tap_stride, pix_stride);
        return;
    }
#endif
    pixel first = pixel_of(pt->g, p0);
    tap t = tap_of(pt->g, t0);
    for (int64_t k = 0; k < taps; k++, tap_next(pt->g, &t)) {
        pixel p = first;
        for (int64_t done = 0; done < pixels;) {
            pixel run = p;
            int64_t seg = pixel_run(pt->g, &p, pixels - done);
            patch_run(pt, &t, run, seg, dst + k * tap_stride + done * pix_stride, pix_stride);
            done += seg;
        }
    }
}

/* B panels of the forward product: lanes are pixels, the reduction runs over taps */
static void pack_patches(const void *src, int64_t j0, int64_t lanes, int64_t k0, int64_t kc, int W,
                         float *restrict dst)
{
    patch_block(src, k0, kc, j0, lanes, dst, W, 1);
}

/* B panels of the weight gradient's product dY . patches^T: lanes are taps, the reduction runs
 * over pixels */
static void pack_patches_t(const void *src, int64_t k0, int64_t lanes, int64_t j0, int64_t kc, int W,
                           float *restrict dst)
{
    patch_block(src, k0, lanes, j0, kc, dst, 1, W);
}

/* dx (samples [n0, n0+ns), group gr) += the patches of dcol put back where they came from; each
 * thread owns whole input planes, each value sums its patches in one fixed order */
static void col2im_add(const cn_conv_geom *g, const float *col, int64_t gr, int64_t n0, int64_t ns, float *dx)
{
    int64_t cin_g = g->cin / g->groups, P = g->oh * g->ow;
    CN_PAR_FOR(cin_g * ns * P * g->kh * g->kw > 32768, collapse(2) schedule(static),
        for (int64_t s = 0; s < ns; s++)
            for (int64_t c = 0; c < cin_g; c++) {
                float *dp = dx + ((n0 + s) * g->cin + gr * cin_g + c) * g->h * g->w;
                for (int64_t ky = 0; ky < g->kh; ky++)
                    for (int64_t kx = 0; kx < g->kw; kx++) {
                        const float *row = col + ((c * g->kh + ky) * g->kw + kx) * ns * P + s * P;
                        tap t = tap_of(g, (c * g->kh + ky) * g->kw + kx); /* its columns inside the image */
                        for (int64_t oy = 0; oy < g->oh; oy++) {
                            int64_t iy = oy * g->sh - g->pad_t + ky * g->dh;
                            if (iy < 0 || iy >= g->h) continue;
                            float *restrict dr = dp + iy * g->w + (t.lo * g->sw + t.x0);
                            const float *restrict cr = row + oy * g->ow + t.lo;
                            if (g->sw == 1)
                                _Pragma("omp simd")
                                for (int64_t i = 0; i < t.hi - t.lo; i++) dr[i] += cr[i];
                            else
                                for (int64_t i = 0; i < t.hi - t.lo; i++) dr[i * g->sw] += cr[i];
                        }
                    }
            });
}

#ifdef CN_X86
/* one dx plane (a sample's channel): its rows, each from its taps' dcol rows (col, at the
 * channel's first tap and the sample's first pixel; the taps tap_stride apart) */
__attribute__((target("avx512f"))) static void col2im_plane(const cn_conv_geom *g, const float *col, int64_t tap_stride,
                                                            const int32_t (*back)[32], const uint32_t *takes,
                                                            float *dp, int fresh)
{
    __mmask16 m0 = cn_lanes16(0, g->w), m1 = cn_lanes16(0, g->w - 16), mo = cn_lanes16(0, g->ow);
    for (int64_t iy = 0; iy < g->h; iy++) {
        float *r = dp + iy * g->w;
        __m512 lo = _mm512_setzero_ps(), hi = lo;
        if (!fresh) lo = _mm512_maskz_loadu_ps(m0, r), hi = _mm512_maskz_loadu_ps(m1, r + 16);
        for (int64_t ky = 0; ky < g->kh; ky++) {
            int64_t at = iy + g->pad_t - ky * g->dh, oy = at / g->sh;
            if (at < 0 || at % g->sh || oy >= g->oh) continue;
            for (int64_t kx = 0; kx < g->kw; kx++) {
                __m512 v = _mm512_maskz_loadu_ps(mo, col + (ky * g->kw + kx) * tap_stride + oy * g->ow);
                lo = _mm512_mask_add_ps(lo, (__mmask16)takes[kx], lo,
                                        _mm512_permutexvar_ps(_mm512_loadu_si512(back[kx]), v));
                hi = _mm512_mask_add_ps(hi, (__mmask16)(takes[kx] >> 16), hi,
                                        _mm512_permutexvar_ps(_mm512_loadu_si512(back[kx] + 16), v));
            }
        }
        _mm512_mask_storeu_ps(r, m0, lo);
        _mm512_mask_storeu_ps(r + 16, m1, hi);
    }
}

/* one dx plane of col2im_planes (col: the channel's first tap at the sample's first pixel; the
 * taps tap_stride apart) */
__attribute__((target("avx512f"))) static void col2im_plane_small(const cn_conv_geom *g, const float *col,
                                                                  int64_t tap_stride, const int32_t (*back)[64],
                                                                  const uint64_t *takes, float *dp, int fresh)
{
    int64_t hw = g->h * g->w, vecs = (hw + 15) / 16;
    __mmask16 mo = cn_lanes16(0, g->oh * g->ow);
    __m512 acc[4];
    for (int64_t v = 0; v < vecs; v++)
        acc[v] = fresh ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(cn_lanes16(0, hw - 16 * v), dp + 16 * v);
    for (int64_t e = 0; e < g->kh * g->kw; e++) {
        __m512 t = _mm512_maskz_loadu_ps(mo, col + e * tap_stride);
        for (int64_t v = 0; v < vecs; v++)
            acc[v] = _mm512_mask_add_ps(acc[v], (__mmask16)(takes[e] >> (16 * v)), acc[v],
                                        _mm512_permutexvar_ps(_mm512_loadu_si512(back[e] + 16 * v), t));
    }
    for (int64_t v = 0; v < vecs; v++) _mm512_mask_storeu_ps(dp + 16 * v, cn_lanes16(0, hw - 16 * v), acc[v]);
}

/* col2im_add where short_rows(g): a row of dx (two vectors) at a time takes, kernel row by
 * kernel row and column by column, the one dcol row each tap put there, spread over its columns
 * by a permute (the table turned about: dx column q takes output column back[kx][q]); the same
 * additions in the same order as col2im_add's, so the same bits. fresh: the rows start from
 * zeros in registers (not zeroed in memory first, then loaded: those loads waited for memory).
 * The vector work is col2im_plane's, a function of its own (core_impl.h, CN_PAR_FOR). */
static void col2im_rows(const cn_conv_geom *g, const float *col, int64_t gr, int64_t n0, int64_t ns, float *dx,
                        int fresh)
{
    int64_t cin_g = g->cin / g->groups, P = g->oh * g->ow;
    int32_t back[SMALL_TAPS][32];
    uint32_t takes[SMALL_TAPS]; /* bit q: dx column q takes a value of kernel column kx */
    for (int64_t kx = 0; kx < g->kw; kx++) {
        takes[kx] = 0;
        for (int64_t q = 0; q < 32; q++) {
            int64_t at = q + g->pad_l - kx * g->dw, ox = at / g->sw;
            int in = q < g->w && at >= 0 && at % g->sw == 0 && ox < g->ow;
            back[kx][q] = in ? (int32_t)ox : 0;
            takes[kx] |= (uint32_t)in << q;
        }
    }
    /* channels outside, samples inside: a tap's dcol rows for one sample follow the last
     * sample's, so each of the taps' rows is read in order (samples outside jumped a tap's
     * block a plane, and the loads waited for memory) */
    CN_PAR_FOR(cin_g * ns * P * g->kh * g->kw > 32768, collapse(2) schedule(static),
        for (int64_t c = 0; c < cin_g; c++)
            for (int64_t s = 0; s < ns; s++)
                col2im_plane(g, col + c * g->kh * g->kw * ns * P + s * P, ns * P, (const int32_t (*)[32])back, takes,
                             dx + ((n0 + s) * g->cin + gr * cin_g + c) * g->h * g->w, fresh););
}

/* col2im_add where small_planes(g): a dx plane (at most 64 values, four vectors) takes from each
 * tap's dcol row (at most 16 values, one vector) the values that land in it, by a permute a
 * vector (dx value q takes output pixel back[e][q] of kernel position e, where bit q of takes[e]
 * says it takes one); the taps in col2im_add's order, so the same additions: the same bits.
 * fresh: the plane starts from zeros in registers. The stride-2 convolutions that make 4x4 maps
 * from 8x8 (resnet18-cifar's conv14) added a value at a time, strided: 10 % of the layer. */
static void col2im_planes(const cn_conv_geom *g, const float *col, int64_t gr, int64_t n0, int64_t ns, float *dx,
                          int fresh)
{
    int64_t cin_g = g->cin / g->groups, P = g->oh * g->ow, taps = g->kh * g->kw;
    small_tab tab; /* the forward's table (output pixel p of position e reads input idx[e][p]), turned about */
    patches_of(g, NULL, gr, &tab);
    int32_t back[SMALL_TAPS][64] = { { 0 } };
    uint64_t takes[SMALL_TAPS] = { 0 };
    for (int64_t e = 0; e < taps; e++)
        for (int64_t p = 0; p < P; p++)
            if (tab.live[e] >> p & 1) back[e][tab.idx[e][p]] = (int32_t)p, takes[e] |= (uint64_t)1 << tab.idx[e][p];
    CN_PAR_FOR(cin_g * ns * P * taps > 32768, collapse(2) schedule(static),
        for (int64_t c = 0; c < cin_g; c++)
            for (int64_t s = 0; s < ns; s++)
                col2im_plane_small(g, col + c * taps * ns * P + s * P, ns * P, (const int32_t (*)[64])back, takes,
                                   dx + ((n0 + s) * g->cin + gr * cin_g + c) * g->h * g->w, fresh););
}
#endif

/* db (C) += sums of dY (N,C,P) over samples and pixels: a plane's sum in float (vectorised), the
 * planes added in double, in sample order */
static void bias_grad(int64_t samples, int64_t channels, int64_t P, const float *dy, float *db)
{
    CN_PAR_FOR(samples * channels * P >= CPU_PAR_MIN, schedule(static),
        for (int64_t o = 0; o < channels; o++) {
            double s = 0;
            for (int64_t n = 0; n < samples; n++) {
                const float *d = dy + (n * channels + o) * P;
                float part = 0;
                _Pragma("omp simd reduction(+ : part)")
                for (int64_t p = 0; p < P; p++) part += d[p];
                s += part;
            }
            db[o] += (float)s;
        });
}

/* the view of an NCHW tensor of C channels as (channel, sample*plane) from channel c0 of sample n0 */
typedef struct { const float *p; cn_axis row, col; } nchw_view;

static nchw_view channels_by_pixels(const float *t, int64_t channels, int64_t plane, int64_t n0, int64_t c0)
{
    return (nchw_view){ t + (n0 * channels + c0) * plane, cn_axis_ld(plane), cn_axis_blocked(1, plane, channels * plane) };
}

/* A product's B read in place (cn_rows_fn) where it is an NCHW tensor seen as (channel,
 * sample*plane): the pixels of a panel in one sample are, for every channel, one run of its
 * plane. Packing that panel cost as much as the product where A has few rows (MobileNetV2's
 * 96 -> 16 projections: 16 rows, 96 channels a panel). */
typedef struct { const float *p; int64_t channels, plane; } plane_rows;

static const float *rows_in_planes(const void *src, int64_t j0, int64_t k0, int64_t kc, int64_t *off)
{
    const plane_rows *r = src;
    int64_t q0 = j0 % r->plane;
    if (q0 + CN_GEMM_NR > r->plane) return NULL;
    for (int64_t k = 0; k < kc; k++) off[k] = (k0 + k) * r->plane;
    return r->p + j0 / r->plane * r->channels * r->plane + q0;
}

/* where direct(g): the patches of group gr from sample n0 as a (K, samples*pixels) view of the
 * input t (or of its gradient) itself */
static nchw_view image_patches(const cn_conv_geom *g, const float *t, int64_t gr, int64_t n0)
{
    int64_t cin_g = g->cin / g->groups, hw = g->h * g->w;
    if (direct_1x1(g)) return channels_by_pixels(t, g->cin, hw, n0, gr * cin_g);
    return (nchw_view){ t + (n0 * g->cin + gr * cin_g) * hw, cn_axis_unit(), cn_axis_ld(g->cin * hw) };
}

/* y (+)= x convolved with w (+ b), the patches packed from the image (direct: the image itself) */
static void general_conv(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y,
                         int accumulate, int relu)
{
    int64_t cin_g = g->cin / g->groups, cout_g = g->cout / g->groups, K = cin_g * g->kh * g->kw, P = g->oh * g->ow;
    for (int64_t gr = 0; gr < g->groups; gr++) {
        nchw_view yv = channels_by_pixels(y, g->cout, P, 0, gr * cout_g);
        small_tab tab;
        patches pt = patches_of(g, x, gr, &tab);
        cn_gemm_args a = { .m = cout_g, .n = g->n * P, .k = K, .a = w + gr * cout_g * K, .a_row = cn_axis_ld(K),
                           .a_col = cn_axis_unit(), .c = (float *)yv.p, .c_row = yv.row, .c_col = yv.col,
                           .accumulate = accumulate, .bias_row = b ? b + gr * cout_g : NULL, .relu = relu,
                           .pack_b = pack_patches, .b_src = &pt };
        plane_rows rows = { NULL, g->cin, g->h * g->w };
        if (direct(g)) {
            nchw_view xs = image_patches(g, x, gr, 0);
            a.pack_b = NULL, a.b = xs.p, a.b_row = xs.row, a.b_col = xs.col;
            if (direct_1x1(g)) rows.p = xs.p, a.b_rows = rows_in_planes, a.b_src = &rows;
        }
        cn_gemm(&a);
    }
}

/* the share of a product's lanes that n columns fill (panels of CN_GEMM_NR) */
static double lanes_used(int64_t n) { return (double)n / (double)((n + CN_GEMM_NR - 1) / CN_GEMM_NR * CN_GEMM_NR); }

/* dW_g += dY_g . patches^T; where the image is the patches and its channels would fill fewer of
 * the product's lanes than dY's, as dW_g^T += patches . dY_g^T (the same multiply-adds in the
 * same order: the same bits; MobileNetV2's 16 -> 96 expansion used a third of its lanes) */
static void general_weight_grad(const cn_conv_geom *g, const float *x, const float *dy, float *dw)
{
    int64_t cin_g = g->cin / g->groups, cout_g = g->cout / g->groups, K = cin_g * g->kh * g->kw, P = g->oh * g->ow;
    for (int64_t gr = 0; gr < g->groups; gr++) {
        nchw_view d = channels_by_pixels(dy, g->cout, P, 0, gr * cout_g);
        small_tab tab;
        patches pt = patches_of(g, x, gr, &tab);
        cn_gemm_args gw = { .m = cout_g, .n = K, .k = g->n * P, .a = d.p, .a_row = d.row, .a_col = d.col,
                            .c = dw + gr * cout_g * K, .c_row = cn_axis_ld(K), .c_col = cn_axis_unit(),
                            .accumulate = 1, .pack_b = pack_patches_t, .b_src = &pt };
        if (direct(g)) {
            nchw_view xs = image_patches(g, x, gr, 0);
            gw.pack_b = NULL, gw.b = xs.p, gw.b_row = xs.col, gw.b_col = xs.row;
            if (lanes_used(cout_g) > lanes_used(K))
                gw.m = K, gw.n = cout_g, gw.a = xs.p, gw.a_row = xs.row, gw.a_col = xs.col, gw.b = d.p,
                gw.b_row = d.col, gw.b_col = d.row, gw.c_row = cn_axis_unit(), gw.c_col = cn_axis_ld(K);
        }
        cn_gemm(&gw);
    }
}

/* dx += W_g^T dY_g (fresh: dx = 0 + W_g^T dY_g): straight into dx where direct, else dcol (K, pixels)
 * a chunk of samples at a time, put back where the patches came from */
static void general_input_grad(const cn_conv_geom *g, const float *w, const float *dy, float *dx, int fresh,
                               float *col)
{
    int64_t cin_g = g->cin / g->groups, cout_g = g->cout / g->groups, K = cin_g * g->kh * g->kw, P = g->oh * g->ow;
    int in_place = direct(g);
    int64_t chunk = in_place ? g->n : chunk_samples(g, K * P);
    int by_rows = 0;
#ifdef CN_X86
    by_rows = short_rows(g) || small_planes(g); /* col2im_rows and _planes start from zeros in registers */
#endif
    if (fresh && !in_place && !by_rows) memset(dx, 0, (size_t)(g->n * g->cin * g->h * g->w) * sizeof(float)); /* col2im adds */
    for (int64_t n0 = 0; n0 < g->n; n0 += chunk) {
        int64_t ns = g->n - n0 < chunk ? g->n - n0 : chunk;
        for (int64_t gr = 0; gr < g->groups; gr++) {
            nchw_view d = channels_by_pixels(dy, g->cout, P, n0, gr * cout_g);
            plane_rows rows = { d.p, g->cout, P };
            cn_gemm_args gx = { .m = K, .n = ns * P, .k = cout_g, .a = w + gr * cout_g * K, .a_row = cn_axis_unit(),
                                .a_col = cn_axis_ld(K), .b = d.p, .b_row = d.row, .b_col = d.col, .c = col,
                                .c_row = cn_axis_ld(ns * P), .c_col = cn_axis_unit(), .b_rows = rows_in_planes,
                                .b_src = &rows };
            if (in_place) {
                nchw_view dxs = image_patches(g, dx, gr, n0);
                gx.c = (float *)dxs.p, gx.c_row = dxs.row, gx.c_col = dxs.col, gx.accumulate = !fresh;
                cn_gemm(&gx);
                continue;
            }
            cn_gemm(&gx);
#ifdef CN_X86
            if (by_rows) {
                if (small_planes(g)) col2im_planes(g, col, gr, n0, ns, dx, fresh);
                else col2im_rows(g, col, gr, n0, ns, dx, fresh);
                continue;
            }
#endif
            col2im_add(g, col, gr, n0, ns, dx);
        }
    }
}

/* ---- 1x1 with a stride: the image subsampled first ------------------------------------------
 * A 1x1 convolution with a stride (ResNet's projection shortcuts) reads one pixel in sh*sw: as
 * packed patches every run is one value, and packing cost more than the product (a 16x16x128 ->
 * 8x8x256 projection at batch 32: 1.0 ms forward, 1.5 backward; 0.54 and 0.67 so). Copied once
 * into a map of the output's size (zeros where a pixel falls in the padding), it is a 1x1
 * stride-1 convolution read as a matrix (direct); its input gradient is that convolution's,
 * added back on the pixels they came from. */

static int depthwise(const cn_conv_geom *g);

static int subsampled(const cn_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && (g->sh > 1 || g->sw > 1) && !depthwise(g);
}

/* the 1x1 stride-1 geometry of the subsampled map */
static cn_conv_geom subsampled_geom(const cn_conv_geom *g)
{
    cn_conv_geom s = *g;
    s.h = g->oh, s.w = g->ow, s.sh = s.sw = s.dh = s.dw = 1, s.pad_t = s.pad_l = 0;
    return s;
}

/* floats of the subsampled map (or of its gradient) */
static int64_t subsampled_len(const cn_conv_geom *g) { return g->n * g->cin * g->oh * g->ow; }

/* xs (N, Cin, OH, OW) <- the pixel of x each output pixel sees, 0 where it lies in the padding */
static void subsample(const cn_conv_geom *g, const float *x, float *xs)
{
    int64_t lo, hi; /* the output columns that see a column of the image */
    inside(-g->pad_l, g->sw, g->w, g->ow, &lo, &hi);
    CN_PAR_FOR(subsampled_len(g) >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < g->n * g->cin; p++)
            for (int64_t oy = 0; oy < g->oh; oy++) {
                int64_t iy = oy * g->sh - g->pad_t, ox = 0;
                float *restrict o = xs + (p * g->oh + oy) * g->ow;
                if (iy >= 0 && iy < g->h) {
                    const float *restrict r = x + (p * g->h + iy) * g->w;
                    for (; ox < lo; ox++) o[ox] = 0.0f;
                    for (; ox < hi; ox++) o[ox] = r[ox * g->sw - g->pad_l];
                }
                for (; ox < g->ow; ox++) o[ox] = 0.0f;
            });
}

/* dx (+)= dxs added back on the pixels subsample took (fresh: dx zero first, as col2im's) */
static void unsubsample(const cn_conv_geom *g, const float *dxs, float *dx, int fresh)
{
    int64_t lo, hi, plane = g->h * g->w;
    inside(-g->pad_l, g->sw, g->w, g->ow, &lo, &hi);
    CN_PAR_FOR(g->n * g->cin * plane >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < g->n * g->cin; p++) {
            float *restrict d = dx + p * plane;
            if (fresh) memset(d, 0, (size_t)plane * sizeof(float));
            for (int64_t oy = 0; oy < g->oh; oy++) {
                int64_t iy = oy * g->sh - g->pad_t;
                if (iy < 0 || iy >= g->h) continue;
                const float *restrict s = dxs + (p * g->oh + oy) * g->ow;
                float *restrict r = d + iy * g->w;
                for (int64_t ox = lo; ox < hi; ox++) r[ox * g->sw - g->pad_l] += s[ox];
            }
        });
}

/* y (+)= x convolved with w (+ b) (+ relu); xs: subsampled_len(g) floats */
static void subsampled_conv(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y,
                            int accumulate, int relu, float *xs)
{
    cn_conv_geom s = subsampled_geom(g);
    subsample(g, x, xs);
    general_conv(&s, xs, w, b, y, accumulate, relu);
}

/* dW += dY . xs^T */
static void subsampled_weight_grad(const cn_conv_geom *g, const float *x, const float *dy, float *dw, float *xs)
{
    cn_conv_geom s = subsampled_geom(g);
    subsample(g, x, xs);
    general_weight_grad(&s, xs, dy, dw);
}

/* dx (+)= W^T dY, made on the subsampled map in dxs, then added back */
static void subsampled_input_grad(const cn_conv_geom *g, const float *w, const float *dy, float *dx, int fresh,
                                  float *dxs)
{
    cn_conv_geom s = subsampled_geom(g);
    general_input_grad(&s, w, dy, dxs, 1, NULL);
    unsubsample(g, dxs, dx, fresh);
}

/* ---- stride 1: padded rows ---------------------------------------------------------------------
 * With stride 1, tap (c, ky, kx) sees from output pixel (oy, ox) the value padded[(oy + ky*dh)*Wp +
 * ox + kx*dw] of the zero-padded plane of width Wp = OW + (kw-1)*dw. Computing the output on rows
 * of Wp pixels (the last Wp - OW of each row are thrown away) makes every tap's patch one
 * contiguous run of the padded plane: packing is a copy, and the input gradient adds whole runs. */

typedef struct padded {
    const cn_conv_geom *g;
    int64_t hp, wp;  /* the padded plane */
    int64_t plane;   /* hp*wp */
    int64_t q;       /* pixels of one sample on padded rows: OH*Wp */
    int64_t tail;    /* floats after the last plane that the last taps read past it (zeros) */
    const float *xp; /* the padded input, N x Cin x plane, then the tail */
    int64_t gr;      /* group */
} padded;

static padded padded_of(const cn_conv_geom *g)
{
    padded pd = { g, g->oh + (g->kh - 1) * g->dh, g->ow + (g->kw - 1) * g->dw, 0, 0, (g->kw - 1) * g->dw, NULL, 0 };
    pd.plane = pd.hp * pd.wp;
    pd.q = g->oh * pd.wp;
    return pd;
}

/* Worth it when the thrown-away columns cost less than packing runs of OW pixels would: up to
 * half of each row, but for maps of at most 16 pixels (their patches permuted in registers,
 * register_block) a quarter; and the kernel has taps enough to pay for padding the image (9 taps of
 * one channel run faster from packed runs, 25 faster on padded rows). Measured, training at
 * batch 64, forward ms against packed runs: lenet5's 14x14x6 by 16 5x5 (10 of 14 columns kept)
 * 0.27 against 0.75, 10x10x8 by 16 5x5 (6 of 10) 0.26 against 0.68, 14x14x8 by 16 7x7 (8 of
 * 14) 0.49 against 1.49; but 4x4x512 by 512 3x3 (4 of 6) 17.9 against 10.2. */
static int use_padded(const cn_conv_geom *g)
{
    padded pd = padded_of(g);
    int kept = g->oh * g->ow > 16 ? pd.wp <= 2 * g->ow : 4 * pd.wp <= 5 * g->ow;
    return g->sh == 1 && g->sw == 1 && pd.wp - g->pad_l - g->w >= 0 && pd.hp - g->pad_t - g->h >= 0 && kept &&
           (g->cin / g->groups) * g->kh * g->kw >= 16;
}

/* xp <- x with zeros around each plane, and the zero tail */
static void pad_planes(const padded *pd, int64_t channels, const float *x, float *xp)
{
    const cn_conv_geom *g = pd->g;
    CN_PAR_FOR(g->n * channels * pd->plane >= CPU_PAR_MIN, schedule(static),
        for (int64_t sc = 0; sc < g->n * channels; sc++) {
            float *dst = xp + sc * pd->plane;
            memset(dst, 0, (size_t)pd->plane * sizeof(float)); /* in L1: cheaper than the borders alone */
            cn_copy_rows(dst + g->pad_t * pd->wp + g->pad_l, pd->wp, x + sc * g->h * g->w, g->w, g->h, g->w);
        });
    memset(xp + g->n * channels * pd->plane, 0, (size_t)pd->tail * sizeof(float));
}

/* where tap k's run starts in sample 0's padded planes of group gr */
static int64_t tap_offset(const padded *pd, int64_t k)
{
    const cn_conv_geom *g = pd->g;
    int64_t c = k / (g->kh * g->kw), ky = k / g->kw % g->kh, kx = k % g->kw;
    return (pd->gr * (g->cin / g->groups) + c) * pd->plane + ky * g->dh * pd->wp + kx * g->dw;
}

/* Tap offsets in order without dividing: kx steps by dw, a new row by dh rows, a new channel by
 * a plane. */
typedef struct { int64_t off, kx, ky; } tap_walk;

static tap_walk tap_walk_at(const padded *pd, int64_t k)
{
    const cn_conv_geom *g = pd->g;
    return (tap_walk){ tap_offset(pd, k), k % g->kw, k / g->kw % g->kh };
}

static inline void tap_walk_next(const padded *pd, tap_walk *t)
{
    const cn_conv_geom *g = pd->g;
    t->off += g->dw;
    if (++t->kx < g->kw) return;
    t->kx = 0, t->off += g->dh * pd->wp - g->kw * g->dw;
    if (++t->ky < g->kh) return;
    t->ky = 0, t->off += pd->plane - g->kh * g->dh * pd->wp;
}

/* dst[t*tap_stride + p*pix_stride] = the padded input tap t0+t sees from padded pixel p0+p, for
 * taps [0, taps) and pixels [0, pixels): per tap, one run per sample */
static void padded_block(const padded *pd, int64_t t0, int64_t taps, int64_t p0, int64_t pixels, float *restrict dst,
                         int64_t tap_stride, int64_t pix_stride)
{
    int64_t sample = pd->g->cin * pd->plane;
    tap_walk t = tap_walk_at(pd, t0);
    for (int64_t k = 0; k < taps; k++, tap_walk_next(pd, &t)) {
        const float *run = pd->xp + t.off;
        for (int64_t done = 0, s = p0 / pd->q, q = p0 % pd->q; done < pixels; s++, q = 0) {
            int64_t seg = pd->q - q < pixels - done ? pd->q - q : pixels - done;
            const float *restrict in = run + s * sample + q;
            float *out = dst + k * tap_stride + done * pix_stride;
            if (pix_stride == 1) cn_copy_floats(out, in, seg);
            else
                for (int64_t i = 0; i < seg; i++) out[i * pix_stride] = in[i];
            done += seg;
        }
    }
}

/* B panels of the forward product: lanes are padded pixels, the reduction runs over taps */
static void pack_padded(const void *src, int64_t j0, int64_t lanes, int64_t k0, int64_t kc, int W,
                        float *restrict dst)
{
    padded_block(src, k0, kc, j0, lanes, dst, W, 1);
}

#ifdef CN_X86
/* pack_padded in AVX-512: a run is a few unaligned loads and stores, the last one masked */
__attribute__((target("avx512f"))) static void pack_padded_avx512(const void *src, int64_t j0, int64_t lanes,
                                                                  int64_t k0, int64_t kc, int W, float *restrict dst)
{
    const padded *pd = src;
    int64_t sample = pd->g->cin * pd->plane, s0 = j0 / pd->q, q0 = j0 % pd->q;
    tap_walk t = tap_walk_at(pd, k0);
    for (int64_t k = 0; k < kc; k++, tap_walk_next(pd, &t)) {
        const float *run = pd->xp + t.off;
        if (q0 + lanes <= pd->q && lanes == 48) { /* the common run: one sample, a whole panel */
            const float *in = run + s0 * sample + q0;
            float *out = dst + k * W;
            _mm512_storeu_ps(out, _mm512_loadu_ps(in));
            _mm512_storeu_ps(out + 16, _mm512_loadu_ps(in + 16));
            _mm512_storeu_ps(out + 32, _mm512_loadu_ps(in + 32));
            continue;
        }
        for (int64_t done = 0, s = s0, q = q0; done < lanes; s++, q = 0) {
            int64_t seg = pd->q - q < lanes - done ? pd->q - q : lanes - done, i = 0;
            const float *in = run + s * sample + q;
            float *out = dst + k * W + done;
            for (; i + 16 <= seg; i += 16) _mm512_storeu_ps(out + i, _mm512_loadu_ps(in + i));
            if (i < seg) {
                __mmask16 m = (__mmask16)((1u << (seg - i)) - 1);
                _mm512_mask_storeu_ps(out + i, m, _mm512_maskz_loadu_ps(m, in + i));
            }
            done += seg;
        }
    }
}
#endif

/* The forward product's B read in place: a panel's pixels, when they lie in one sample, are
 * for every tap one run of the padded plane */
static const float *padded_rows(const void *src, int64_t j0, int64_t k0, int64_t kc, int64_t *off)
{
    const padded *pd = src;
    int64_t q0 = j0 % pd->q;
    if (q0 + CN_GEMM_NR > pd->q) return NULL;
    tap_walk t = tap_walk_at(pd, k0);
    for (int64_t k = 0; k < kc; k++, tap_walk_next(pd, &t)) off[k] = t.off;
    return pd->xp + j0 / pd->q * pd->g->cin * pd->plane + q0;
}

/* B panels of the weight gradient's product dY . patches^T: lanes are taps, the reduction runs
 * over padded pixels */
static void pack_padded_t(const void *src, int64_t k0, int64_t lanes, int64_t j0, int64_t kc, int W,
                          float *restrict dst)
{
    padded_block(src, k0, lanes, j0, kc, dst, 1, W);
}

#ifdef CN_X86
/* pack_padded_t in AVX-512: 16 taps by 16 pixels at a time, loaded as 16 runs and transposed in
 * registers; the rest (a partial group of taps, the pixels before a sample's end) one by one */
__attribute__((target("avx512f"))) static void pack_padded_t_avx512(const void *src, int64_t k0, int64_t lanes,
                                                                    int64_t j0, int64_t kc, int W,
                                                                    float *restrict dst)
{
    const padded *pd = src;
    int64_t sample = pd->g->cin * pd->plane, l = 0;
    for (; l + 16 <= lanes; l += 16) {
        const float *run[16];
        tap_walk tw = tap_walk_at(pd, k0 + l);
        for (int t = 0; t < 16; t++, tap_walk_next(pd, &tw)) run[t] = pd->xp + tw.off;
        for (int64_t done = 0, s = j0 / pd->q, q = j0 % pd->q; done < kc; s++, q = 0) {
            int64_t seg = pd->q - q < kc - done ? pd->q - q : kc - done, i = 0, at = s * sample + q;
            for (; i + 16 <= seg; i += 16) {
                __m512 r[16];
                for (int t = 0; t < 16; t++) r[t] = _mm512_loadu_ps(run[t] + at + i);
                cn_transpose16(r);
                for (int p = 0; p < 16; p++) _mm512_storeu_ps(dst + (done + i + p) * W + l, r[p]);
            }
            for (; i < seg; i++)
                for (int t = 0; t < 16; t++) dst[(done + i) * W + l + t] = run[t][at + i];
            done += seg;
        }
    }
    if (l < lanes) pack_padded_t(src, k0 + l, lanes - l, j0, kc, W, dst + l);
}

/* pack_padded in AVX2 (a CPU without AVX-512): each run 8 floats at a time, the rest one by one */
__attribute__((target("avx2"))) static void pack_padded_avx2(const void *src, int64_t j0, int64_t lanes, int64_t k0,
                                                             int64_t kc, int W, float *restrict dst)
{
    const padded *pd = src;
    int64_t sample = pd->g->cin * pd->plane, s0 = j0 / pd->q, q0 = j0 % pd->q;
    tap_walk t = tap_walk_at(pd, k0);
    for (int64_t k = 0; k < kc; k++, tap_walk_next(pd, &t)) {
        const float *run = pd->xp + t.off;
        for (int64_t done = 0, s = s0, q = q0; done < lanes; s++, q = 0) {
            int64_t seg = pd->q - q < lanes - done ? pd->q - q : lanes - done, i = 0;
            const float *in = run + s * sample + q;
            float *out = dst + k * W + done;
            for (; i + 8 <= seg; i += 8) _mm256_storeu_ps(out + i, _mm256_loadu_ps(in + i));
            for (; i < seg; i++) out[i] = in[i];
            done += seg;
        }
    }
}

/* pack_padded_t in AVX2: 8 taps by 8 pixels at a time, transposed in registers */
__attribute__((target("avx2"))) static void pack_padded_t_avx2(const void *src, int64_t k0, int64_t lanes, int64_t j0,
                                                               int64_t kc, int W, float *restrict dst)
{
    const padded *pd = src;
    int64_t sample = pd->g->cin * pd->plane, l = 0;
    for (; l + 8 <= lanes; l += 8) {
        const float *run[8];
        tap_walk tw = tap_walk_at(pd, k0 + l);
        for (int t = 0; t < 8; t++, tap_walk_next(pd, &tw)) run[t] = pd->xp + tw.off;
        for (int64_t done = 0, s = j0 / pd->q, q = j0 % pd->q; done < kc; s++, q = 0) {
            int64_t seg = pd->q - q < kc - done ? pd->q - q : kc - done, i = 0, at = s * sample + q;
            for (; i + 8 <= seg; i += 8) {
                __m256 r[8];
                for (int t = 0; t < 8; t++) r[t] = _mm256_loadu_ps(run[t] + at + i);
                cn_transpose8(r);
                for (int p = 0; p < 8; p++) _mm256_storeu_ps(dst + (done + i + p) * W + l, r[p]);
            }
            for (; i < seg; i++)
                for (int t = 0; t < 8; t++) dst[(done + i) * W + l + t] = run[t][at + i];
            done += seg;
        }
    }
    if (l < lanes) pack_padded_t(src, k0 + l, lanes - l, j0, kc, W, dst + l);
}
#endif

/* rows of OW pixels -> rows of Wp, zeros in the extra columns */
static void pad_rows(const padded *pd, int64_t planes, const float *from, float *to)
{
    const cn_conv_geom *g = pd->g;
    CN_PAR_FOR(planes * pd->q >= CPU_PAR_MIN, schedule(static),
        for (int64_t i = 0; i < planes; i++) {
            memset(to + i * pd->q, 0, (size_t)pd->q * sizeof(float));
            cn_copy_rows(to + i * pd->q, pd->wp, from + i * g->oh * g->ow, g->ow, g->oh, g->ow);
        });
}

/* The input gradient of a stride-1 convolution is a stride-1 convolution of dY: kernels flipped,
 * input and output channels swapped, padded by the kernel's reach less the forward's padding.
 * Fails (0) for other strides, where the forward padding goes past the kernel's reach, and where
 * the output is much smaller than the input. */
static int transposed_geom(const cn_conv_geom *g, cn_conv_geom *t)
{
    int64_t reach_h = (g->kh - 1) * g->dh, reach_w = (g->kw - 1) * g->dw;
    int64_t pad_b = g->oh - 1 + reach_h - g->pad_t - (g->h - 1), pad_r = g->ow - 1 + reach_w - g->pad_l - (g->w - 1);
    *t = *g;
    t->cin = g->cout, t->cout = g->cin, t->h = g->oh, t->w = g->ow, t->oh = g->h, t->ow = g->w;
    t->pad_t = reach_h - g->pad_t, t->pad_l = reach_w - g->pad_l;
    /* it multiplies H*W/(OH*OW) times what dcol does: worth it for `same` maps, not for `valid` */
    return g->sh == 1 && g->sw == 1 && t->pad_t >= 0 && t->pad_l >= 0 && reach_h - pad_b >= 0 && reach_w - pad_r >= 0 &&
           4 * g->h * g->w <= 5 * g->oh * g->ow;
}

/* wt, group by group Cin_g rows of Cout_g*Kh*Kw: w (Cout, Cin_g, Kh, Kw) flipped and transposed */
static void flip_weights(const cn_conv_geom *g, const float *w, float *wt)
{
    int64_t cin_g = g->cin / g->groups, cout_g = g->cout / g->groups, taps = g->kh * g->kw;
    /* wt a row (one input channel's kernels) at a time, written in order, the rows shared out
     * among the threads (a 512 -> 512 3x3 layer: 9.4 MB, a tenth of its input gradient's time
     * when it was one thread walking w in order) */
    CN_PAR_FOR(g->cin * cout_g * taps >= 1 << 16, schedule(static),
        for (int64_t r = 0; r < g->cin; r++) {
            const float *from = w + (r / cin_g * cout_g * cin_g + r % cin_g) * taps; /* (gr, o = 0, c) */
            float *to = wt + r * cout_g * taps;
            for (int64_t o = 0; o < cout_g; o++)
                for (int64_t t = 0; t < taps; t++) to[o * taps + (taps - 1 - t)] = from[o * cin_g * taps + t];
        });
}

/* floats of the padded input of geometry g */
static int64_t padded_len(const cn_conv_geom *g)
{
    padded pd = padded_of(g);
    return g->n * g->cin * pd.plane + pd.tail;
}

/* y (+)= the stride-1 convolution of x by w (+ b) on padded rows; xp: room for the padded x */
static void padded_conv(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y,
                        int accumulate, int relu, float *xp)
{
    padded pd = padded_of(g);
    int64_t cout_g = g->cout / g->groups, K = (g->cin / g->groups) * g->kh * g->kw;
    pad_planes(&pd, g->cin, x, xp);
    pd.xp = xp;
    for (pd.gr = 0; pd.gr < g->groups; pd.gr++) {
        /* C's columns: padded rows of Wp pixels, of which the first OW go to y */
        nchw_view yv = channels_by_pixels(y, g->cout, g->oh * g->ow, 0, pd.gr * cout_g);
        cn_axis cols = { 1, pd.q, g->cout * g->oh * g->ow, pd.wp, g->ow };
        cn_gemm_args a = { .m = cout_g, .n = g->n * pd.q, .k = K, .a = w + pd.gr * cout_g * K, .a_row = cn_axis_ld(K),
                           .a_col = cn_axis_unit(), .c = (float *)yv.p, .c_row = yv.row, .c_col = cols,
                           .accumulate = accumulate, .bias_row = b ? b + pd.gr * cout_g : NULL, .relu = relu,
                           .pack_b = pack_padded, .b_rows = padded_rows, .b_src = &pd };
#ifdef CN_X86
        if (cn_gemm_avx512()) a.pack_b = pack_padded_avx512;
        else if (cn_gemm_avx2()) a.pack_b = pack_padded_avx2;
#endif
        cn_gemm(&a);
    }
}

/* dW_g += dY_g . patches^T on padded rows; xp and dyp: room for the padded x and dY */
static void padded_weight_grad(const cn_conv_geom *g, const float *x, const float *dy, float *dw, float *xp,
                               float *dyp)
{
    padded pd = padded_of(g);
    int64_t cout_g = g->cout / g->groups, K = (g->cin / g->groups) * g->kh * g->kw;
    pad_planes(&pd, g->cin, x, xp);
    pad_rows(&pd, g->n * g->cout, dy, dyp); /* zeros under the thrown-away columns */
    pd.xp = xp;
    for (pd.gr = 0; pd.gr < g->groups; pd.gr++) {
        nchw_view d = channels_by_pixels(dyp, g->cout, pd.q, 0, pd.gr * cout_g);
        cn_gemm_args gw = { .m = cout_g, .n = K, .k = g->n * pd.q, .a = d.p, .a_row = d.row, .a_col = d.col,
                            .c = dw + pd.gr * cout_g * K, .c_row = cn_axis_ld(K), .c_col = cn_axis_unit(),
                            .accumulate = 1, .pack_b = pack_padded_t, .b_src = &pd };
#ifdef CN_X86
        if (cn_gemm_avx512()) gw.pack_b = pack_padded_t_avx512;
        else if (cn_gemm_avx2()) gw.pack_b = pack_padded_t_avx2;
#endif
        cn_gemm(&gw);
    }
}

/* ---- few taps: a first layer's weight gradient in registers ----------------------------------
 * With one or three input channels a weight gradient has 9 to 27 taps: the product's B panel
 * would fill 9 to 27 of its 48 lanes, and packing the patches would cost more than the sums
 * (fmnist-small's conv1: 1.1 ms for 14 M multiply-adds). Instead each (output channel, tap)
 * sum lives in a vector register while 16 pixels of an output row at a time go by: dY's from
 * the map, the input's from the zero-padded image. Threads take output channels, and a vector's
 * lanes are added in a fixed order at the end, so each sum runs in one order on any number of
 * threads. */

#define TAP_CHUNK 9 /* taps summed together */
#define OUT_CHUNK 2 /* output channels together: 18 accumulators in registers, 2 dY and 1 input vector */
#define FEW_TAPS 27
#define FETCH_ROWS 16 /* dY's rows fetched ahead by the weight gradient */

/* not for a 1x1 convolution read as a matrix (direct): there the product needs no patches, and
 * MobileNetV2's 16 -> 96 expansion on 112x112 took 8-9 ms forward and 24-32 ms backward by few
 * taps against 4.7-6.5 and 15-19.5 as a product (batch 16) */
static int few_taps(const cn_conv_geom *g)
{
    padded pd = padded_of(g);
    return !direct(g) && g->sh == 1 && g->sw == 1 && g->groups == 1 && g->cin * g->kh * g->kw <= FEW_TAPS &&
           pd.wp - g->pad_l - g->w >= 0 && pd.hp - g->pad_t - g->h >= 0 && (cn_gemm_avx512() || cn_gemm_avx2());
}

#ifdef CN_X86
/* the zero-padded x in xp, and off[k] (k < taps, the rest 0: tap 0 again) where tap k's run
 * starts in a sample's padded planes: what the forward and the weight gradient read */
static padded few_taps_padded(const cn_conv_geom *g, const float *x, float *xp, int64_t off[FEW_TAPS + TAP_CHUNK])
{
    padded pd = padded_of(g);
    pad_planes(&pd, g->cin, x, xp);
    pd.xp = xp;
    memset(off, 0, (FEW_TAPS + TAP_CHUNK) * sizeof *off);
    tap_walk t = tap_walk_at(&pd, 0);
    for (int64_t k = 0; k < g->cin * g->kh * g->kw; k++, tap_walk_next(&pd, &t)) off[k] = t.off;
    return pd;
}

#endif

#ifdef CN_X86
/* dW rows [o0, o0+ob), taps [k0, k0+kn) += their sums over the batch (a chunk of fewer than
 * TAP_CHUNK taps sums tap 0 again in the rest, and drops those sums); db (or NULL) += the sums
 * of dY, which pass by anyway */
__attribute__((target("avx512f,fma"))) static void few_taps_block(const cn_conv_geom *g, const padded *pd,
                                                                  const float *dy, const int64_t *off, int64_t o0,
                                                                  int ob, int k0, int kn, float *dw, float *db)
{
    __m512 acc[OUT_CHUNK][TAP_CHUNK], bias[OUT_CHUNK];
#pragma GCC unroll 2
    for (int b = 0; b < OUT_CHUNK; b++) bias[b] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int b = 0; b < OUT_CHUNK; b++)
#pragma GCC unroll 9
        for (int k = 0; k < TAP_CHUNK; k++) acc[b][k] = _mm512_setzero_ps();
    int64_t sample = g->cin * pd->plane, taps = g->cin * g->kh * g->kw, plane = g->oh * g->ow;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t oy = 0; oy < g->oh; oy++) {
            /* dY's rows FETCH_ROWS ahead (into the next sample's planes at the end of these): a
             * block reads each of its planes once, 100 kB apart, too short a run for the
             * hardware to fetch ahead, and the loads waited for memory most of the time */
            int64_t r = n * g->oh + oy + FETCH_ROWS, ahead = r / g->oh * g->cout * plane + r % g->oh * g->ow;
            for (int b = 0; b < ob && r < g->n * g->oh; b++)
                for (int64_t at = 0; at < g->ow; at += 16)
                    _mm_prefetch((const char *)(dy + ahead + (o0 + b) * plane + at), _MM_HINT_T0);
            for (int64_t ox = 0; ox < g->ow; ox += 16) {
                __mmask16 m = cn_lanes16(0, g->ow - ox); /* the row's pixels from ox on */
                __m512 d[OUT_CHUNK];
                for (int b = 0; b < OUT_CHUNK; b++)
                    d[b] = b < ob ? _mm512_maskz_loadu_ps(m, dy + ((n * g->cout + o0 + b) * g->oh + oy) * g->ow + ox)
                                  : _mm512_setzero_ps();
                if (db)
#pragma GCC unroll 2
                    for (int b = 0; b < OUT_CHUNK; b++) bias[b] = _mm512_add_ps(bias[b], d[b]);
                const float *xr = pd->xp + n * sample + oy * pd->wp + ox;
#pragma GCC unroll 9
                for (int k = 0; k < TAP_CHUNK; k++) { /* all of them: a bound known here keeps acc in registers */
                    __m512 xv = _mm512_maskz_loadu_ps(m, xr + off[k0 + k]); /* lanes past the row: not read */
#pragma GCC unroll 2
                    for (int b = 0; b < OUT_CHUNK; b++) acc[b][k] = _mm512_fmadd_ps(d[b], xv, acc[b][k]);
                }
            }
        }
    float sums[OUT_CHUNK][TAP_CHUNK]; /* acc read at constant places only: it stays in registers */
#pragma GCC unroll 2
    for (int b = 0; b < OUT_CHUNK; b++)
#pragma GCC unroll 9
        for (int k = 0; k < TAP_CHUNK; k++) sums[b][k] = _mm512_reduce_add_ps(acc[b][k]);
    for (int b = 0; b < ob; b++) {
        for (int k = 0; k < kn; k++) dw[(o0 + b) * taps + k0 + k] += sums[b][k];
        if (db) db[o0 + b] += _mm512_reduce_add_ps(bias[b]);
    }
}

/* a vector's 8 lanes added up: halves, then pairs, in a fixed order */
__attribute__((target("avx2"), always_inline)) static inline float sum8(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* few_taps_block in AVX2 (a CPU without AVX-512): one output channel's TAP_CHUNK sums, 8 pixels
 * a vector (16 registers: the 9 sums, dY's, the input's, the bias's); its own lanes, so its own
 * bits, the same on any number of threads */
__attribute__((target("avx2,fma"))) static void few_taps_block8(const cn_conv_geom *g, const padded *pd,
                                                                const float *dy, const int64_t *off, int64_t o,
                                                                int k0, int kn, float *dw, float *db)
{
    __m256 acc[TAP_CHUNK], bias = _mm256_setzero_ps();
#pragma GCC unroll 9
    for (int k = 0; k < TAP_CHUNK; k++) acc[k] = _mm256_setzero_ps();
    int64_t sample = g->cin * pd->plane, taps = g->cin * g->kh * g->kw;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t oy = 0; oy < g->oh; oy++) {
            const float *dr = dy + ((n * g->cout + o) * g->oh + oy) * g->ow;
            _mm_prefetch((const char *)(dr + FETCH_ROWS * g->ow), _MM_HINT_T0); /* as few_taps_block */
            const float *xr = pd->xp + n * sample + oy * pd->wp;
            for (int64_t ox = 0; ox < g->ow; ox += 8) {
                __m256i m = cn_first8(g->ow - ox); /* the row's pixels */
                __m256 d = _mm256_maskload_ps(dr + ox, m);
                if (db) bias = _mm256_add_ps(bias, d);
#pragma GCC unroll 9
                for (int k = 0; k < TAP_CHUNK; k++)
                    acc[k] = _mm256_fmadd_ps(d, _mm256_maskload_ps(xr + ox + off[k0 + k], m), acc[k]);
            }
        }
    float sums[TAP_CHUNK];
#pragma GCC unroll 9
    for (int k = 0; k < TAP_CHUNK; k++) sums[k] = sum8(acc[k]);
    for (int k = 0; k < kn; k++) dw[o * taps + k0 + k] += sums[k];
    if (db) db[o] += sum8(bias);
}
#endif

/* dW += dY . patches^T, the sums in registers, and db (or NULL) += the sums of dY; xp: room for
 * the padded x */
static void few_taps_weight_grad(const cn_conv_geom *g, const float *x, const float *dy, float *dw, float *db,
                                 float *xp)
{
#ifdef CN_X86
    int64_t off[FEW_TAPS + TAP_CHUNK], blocks = (g->cout + OUT_CHUNK - 1) / OUT_CHUNK;
    padded pd = few_taps_padded(g, x, xp, off);
    int taps = (int)(g->cin * g->kh * g->kw);
    if (!cn_gemm_avx512()) { /* AVX2: an output channel at a time */
        CN_PAR_FOR(g->n * g->oh * g->ow * g->cout * taps >= (1 << 20), schedule(static),
            for (int64_t o = 0; o < g->cout; o++)
                for (int k0 = 0; k0 < taps; k0 += TAP_CHUNK)
                    few_taps_block8(g, &pd, dy, off, o, k0, taps - k0 < TAP_CHUNK ? taps - k0 : TAP_CHUNK, dw,
                                    k0 ? NULL : db););
        return;
    }
    CN_PAR_FOR(g->n * g->oh * g->ow * g->cout * taps >= (1 << 20), schedule(static),
        for (int64_t bl = 0; bl < blocks; bl++) {
            int ob = g->cout - bl * OUT_CHUNK < OUT_CHUNK ? (int)(g->cout - bl * OUT_CHUNK) : OUT_CHUNK;
            for (int k0 = 0; k0 < taps; k0 += TAP_CHUNK)
                few_taps_block(g, &pd, dy, off, bl * OUT_CHUNK, ob, k0, taps - k0 < TAP_CHUNK ? taps - k0 : TAP_CHUNK, dw,
                               k0 ? NULL : db);
        });
#else
    (void)g, (void)x, (void)dy, (void)dw, (void)db, (void)xp; /* few_taps is 0 */
#endif
}

/* A first layer's forward, the same way round: 16 pixels of an output row from the zero-padded
 * image, 8 output channels together, each output the chain of FMAs over the taps in order from
 * 0, then + bias (+ relu): the additions of the product's (k in one slice), so the same bits,
 * without packing 9 to 27 taps into a 48-lane panel that 4 micro-tiles would read. */
#define FWD_OUTS 8

#ifdef CN_X86
__attribute__((target("avx512f,fma"))) static void few_taps_row(const cn_conv_geom *g, const padded *pd,
                                                                const int64_t *off, const float *w, const float *b,
                                                                int relu, int64_t n, int64_t oy, float *y)
{
    int taps = (int)(g->cin * g->kh * g->kw);
    int64_t plane = g->oh * g->ow;
    const float *xr = pd->xp + n * g->cin * pd->plane + oy * pd->wp;
    __m512 zero = _mm512_setzero_ps();
    for (int64_t ox = 0; ox < g->ow; ox += 16) {
        __mmask16 m = cn_lanes16(0, g->ow - ox); /* the row's pixels from ox on */
        for (int64_t o0 = 0; o0 < g->cout; o0 += FWD_OUTS) {
            int ob = g->cout - o0 < FWD_OUTS ? (int)(g->cout - o0) : FWD_OUTS;
            const float *wr[FWD_OUTS]; /* rows past Cout: row o0 again, its sums dropped */
            __m512 acc[FWD_OUTS];
#pragma GCC unroll 8
            for (int q = 0; q < FWD_OUTS; q++) wr[q] = w + (o0 + (q < ob ? q : 0)) * taps, acc[q] = zero;
            for (int t = 0; t < taps; t++) {
                __m512 xv = _mm512_maskz_loadu_ps(m, xr + ox + off[t]);
#pragma GCC unroll 8
                for (int q = 0; q < FWD_OUTS; q++) acc[q] = _mm512_fmadd_ps(_mm512_set1_ps(wr[q][t]), xv, acc[q]);
            }
#pragma GCC unroll 8
            for (int q = 0; q < FWD_OUTS; q++) {
                if (q >= ob) break;
                __m512 v = _mm512_add_ps(_mm512_add_ps(acc[q], _mm512_set1_ps(b ? b[o0 + q] : 0.0f)), zero);
                if (relu) v = _mm512_max_ps(v, zero);
                _mm512_mask_storeu_ps(y + (n * g->cout + o0 + q) * plane + oy * g->ow + ox, m, v);
            }
        }
    }
}
#endif

#ifdef CN_X86
/* few_taps_row in AVX2: 8 pixels a vector; each output the same chain and additions, so the
 * same bits */
__attribute__((target("avx2,fma"))) static void few_taps_row8(const cn_conv_geom *g, const padded *pd,
                                                              const int64_t *off, const float *w, const float *b,
                                                              int relu, int64_t n, int64_t oy, float *y)
{
    int taps = (int)(g->cin * g->kh * g->kw);
    int64_t plane = g->oh * g->ow;
    const float *xr = pd->xp + n * g->cin * pd->plane + oy * pd->wp;
    __m256 zero = _mm256_setzero_ps();
    for (int64_t ox = 0; ox < g->ow; ox += 8) {
        __m256i m = cn_first8(g->ow - ox); /* the row's pixels */
        for (int64_t o0 = 0; o0 < g->cout; o0 += FWD_OUTS) {
            int ob = g->cout - o0 < FWD_OUTS ? (int)(g->cout - o0) : FWD_OUTS;
            const float *wr[FWD_OUTS]; /* rows past Cout: row o0 again, its sums dropped */
            __m256 acc[FWD_OUTS];
#pragma GCC unroll 8
            for (int q = 0; q < FWD_OUTS; q++) wr[q] = w + (o0 + (q < ob ? q : 0)) * taps, acc[q] = zero;
            for (int t = 0; t < taps; t++) {
                __m256 xv = _mm256_maskload_ps(xr + ox + off[t], m);
#pragma GCC unroll 8
                for (int q = 0; q < FWD_OUTS; q++) acc[q] = _mm256_fmadd_ps(_mm256_broadcast_ss(wr[q] + t), xv, acc[q]);
            }
#pragma GCC unroll 8
            for (int q = 0; q < FWD_OUTS; q++) {
                if (q >= ob) break;
                __m256 v = _mm256_add_ps(_mm256_add_ps(acc[q], _mm256_set1_ps(b ? b[o0 + q] : 0.0f)), zero);
                if (relu) v = _mm256_max_ps(v, zero);
                _mm256_maskstore_ps(y + (n * g->cout + o0 + q) * plane + oy * g->ow + ox, m, v);
            }
        }
    }
}
#endif

/* y = x convolved with w (+ b) (+ relu) where few_taps(g); xp: room for the padded x */
static void few_taps_conv(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y, int relu,
                          float *xp)
{
#ifdef CN_X86
    int64_t off[FEW_TAPS + TAP_CHUNK];
    padded pd = few_taps_padded(g, x, xp, off);
    int taps = (int)(g->cin * g->kh * g->kw), v16 = cn_gemm_avx512();
    CN_PAR_FOR(g->n * g->oh * g->ow * g->cout * taps >= (1 << 18), schedule(static),
        for (int64_t r = 0; r < g->n * g->oh; r++) {
            if (v16) few_taps_row(g, &pd, off, w, b, relu, r / g->oh, r % g->oh, y);
            else few_taps_row8(g, &pd, off, w, b, relu, r / g->oh, r % g->oh, y);
        });
#else
    (void)g, (void)x, (void)w, (void)b, (void)y, (void)relu, (void)xp; /* few_taps is 0 */
#endif
}

/* ---- choosing a way by shape ------------------------------------------------------------------ */

static int padded_way(const cn_conv_geom *g) { return !direct(g) && !cn_cpu_winograd_way(g) && use_padded(g); }

/* the weight gradient's products (where neither few taps nor Winograd take it): padded rows
 * wherever they pay */
static int weight_padded(const cn_conv_geom *g) { return !direct(g) && use_padded(g); }

/* y (+)= x convolved with w (+ b), then relu(y) where relu; work: conv_work(g) floats */
/* ---- depthwise: one input and one output channel a group (MobileNet's) ---------------------
 * A product a group would have one row and K = taps: the packing and the calls cost a hundred
 * times the arithmetic. Here each plane is worked directly, a tap at a time along output rows
 * (the columns each tap sees inside the image, tap_cols), threads over planes; every sum runs
 * in an order fixed by the shapes. The forward and the input gradient are compiled for AVX-512
 * and the baseline too (CPU_CLONES: no sums across lanes, the same bits). The weight gradient
 * takes every tap from one walk over a row of dY, in 16 lanes of its own (depthwise_weight_grad_rows,
 * cloned the same way), where the kernel and the rows fit its buffers; elsewhere a row's sums
 * run across lanes, on the baseline's code (depthwise_weight_grad). */
#define DW_TAPS 121 /* kernels up to 11x11 */

static int depthwise(const cn_conv_geom *g)
{
    return g->groups > 1 && g->groups == g->cin && g->cout == g->cin && g->kh * g->kw <= DW_TAPS && !direct(g);
}

/* every tap's row and columns, worked out once a call (maps of 7x7 have rows too short to walk
 * the taps again for each) */
static void depthwise_taps(const cn_conv_geom *g, tap *taps)
{
    tap t = tap_of(g, 0);
    for (int64_t k = 0; k < g->kh * g->kw; k++, tap_next(g, &t)) taps[k] = t;
}

/* Column stride 2: a row of x (or of dx) split into its even and odd columns, so that each tap
 * reads (or adds to) one of them contiguously instead of every other value; the same values in
 * the same order, so the same bits. Rows up to 2 x PH_COLS columns. */
#define PH_COLS 256
#define PH_SLOTS 8 /* split rows of x kept, by row index (a 3x3 kernel's rows for two output rows) */

static int depthwise_phases(const cn_conv_geom *g) { return g->sw == 2 && (g->w + 1) / 2 <= PH_COLS; }

/* ph[0], ph[1] <- the even and odd columns of row r (w values) */
static inline void split_row(const float *restrict r, int64_t w, float *restrict even, float *restrict odd)
{
    for (int64_t m = 0; m < w / 2; m++) even[m] = r[2 * m], odd[m] = r[2 * m + 1];
    if (w & 1) even[w / 2] = r[w - 1];
}

static inline void join_row(const float *restrict even, const float *restrict odd, int64_t w, float *restrict r)
{
    for (int64_t m = 0; m < w / 2; m++) r[2 * m] = even[m], r[2 * m + 1] = odd[m];
    if (w & 1) r[w - 1] = even[w / 2];
}

/* the phase a tap's first column x0 falls in, and where output column 0 reads in it */
static inline int64_t phase_of(int64_t x0) { return x0 & 1; }
static inline int64_t phase_at(int64_t x0) { return (x0 - (x0 & 1)) / 2; }

/* Kernels up to 7x7 (ConvNeXt's), rows up to 128 values: a row of the output (forward) or of dx (input
 * gradient) adds its terms in registers, 4 vectors side by side, instead of a load and a store
 * of the row a tap. Term (r, j) adds w[r][kx[j]] * src[r][i + off[j]] to value i where mask[j]
 * says i is inside; rows in order, then j: the order in which the loops below add them to
 * memory, a multiplication and then an addition each, so the same bits (tests/test_backend.c
 * test_portable). The masks hold for every row of a call. At column stride 2 the forward reads
 * a row's split (its even columns, then its odd ones PH_COLS on), and a row of dx gathers each
 * of its two halves from the kernel columns that fall in it. */
#define DWR_K 7
#define DWR_VECS 8

typedef struct dwr_plan {
    int64_t n;
    int terms, v16; /* v16: AVX-512's code (16 lanes), else AVX2's (8) */
    int64_t kx[DWR_K], off[DWR_K];
    uint16_t mask[DWR_K][DWR_VECS];
} dwr_plan;

/* 1 where dwr_row runs the forward (dx 0) or the input gradient (1): stride 1, or column stride
 * 2 on split rows (the forward's kernel rows for one output row in slots of their own) */
static int dw_rows(const cn_conv_geom *g, int dx)
{
    int split = depthwise_phases(g) && (dx || (g->kh - 1) * g->dh < PH_SLOTS);
    return (cn_gemm_avx512() || cn_gemm_avx2()) && (g->sw == 1 || split) && g->kh <= DWR_K && g->kw <= DWR_K &&
           g->ow <= 16 * DWR_VECS && (!dx || (g->sw == 1 ? g->w : (g->w + 1) / 2) <= 16 * DWR_VECS);
}

static uint16_t lanes16(int64_t lo, int64_t hi) /* cn_lanes16 without the intrinsics' type */
{
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    return hi <= lo ? 0 : (uint16_t)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* the plan of a forward row (dx 0), of a row of dx at stride 1 (dx 1, half -1) or of half 0 or
 * 1 of a row of dx split at stride 2: value i of term j reads source column i + off[j], inside
 * where the tap's output columns [lo, hi) say */
static dwr_plan dwr_plan_of(const cn_conv_geom *g, const tap *tt, int dx, int half)
{
    dwr_plan p = { !dx ? g->ow : half < 0 ? g->w : half == 0 ? (g->w + 1) / 2 : g->w / 2, 0, cn_gemm_avx512(), { 0 },
                   { 0 }, { { 0 } } };
    for (int64_t kx = 0; kx < g->kw; kx++) {
        tap t = tt[kx];
        if (half >= 0 && phase_of(t.x0) != half) continue;
        int64_t shift = !dx ? 0 : half < 0 ? t.x0 : phase_at(t.x0);
        int j = p.terms++;
        p.kx[j] = kx;
        p.off[j] = dx ? -shift : g->sw == 1 ? t.x0 : phase_of(t.x0) * PH_COLS + phase_at(t.x0);
        for (int q = 0; q < DWR_VECS; q++)
            p.mask[j][q] = q * 16 < p.n ? lanes16(t.lo + shift - 16 * q, t.hi + shift - 16 * q) : 0;
    }
    return p;
}

#ifdef CN_X86
__attribute__((target("avx512f"))) static void dwr_row16(const dwr_plan *p, float *dst, int init, int rows,
                                                         const float *const *src, const float *const *w, int add_bias,
                                                         float bias, int relu)
{
    __m512 zero = _mm512_setzero_ps();
    for (int64_t c = 0; c * 64 < p->n; c++) {
        float *d = dst + 64 * c;
        __mmask16 live[4];
        __m512 a[4];
        for (int q = 0; q < 4; q++) {
            live[q] = cn_lanes16(0, p->n - 64 * c - 16 * q);
            a[q] = init ? _mm512_maskz_loadu_ps(live[q], d + 16 * q) : zero;
        }
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < p->terms; j++) {
                __m512 wk = _mm512_set1_ps(w[r][p->kx[j]]);
                const float *x = src[r] + p->off[j] + 64 * c;
                const uint16_t *m = p->mask[j] + 4 * c;
                for (int q = 0; q < 4; q++)
                    if (m[q] == 0xFFFF) a[q] = _mm512_add_ps(a[q], _mm512_mul_ps(wk, _mm512_loadu_ps(x + 16 * q)));
                    else if (m[q])
                        a[q] = _mm512_mask_add_ps(a[q], m[q], a[q], _mm512_mul_ps(wk, _mm512_maskz_loadu_ps(m[q], x + 16 * q)));
            }
        for (int q = 0; q < 4 && live[q]; q++) {
            __m512 o = add_bias ? _mm512_add_ps(a[q], _mm512_set1_ps(bias)) : a[q];
            if (relu) o = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(o, zero, _CMP_GT_OQ), o); /* NaN gives 0 */
            _mm512_mask_storeu_ps(d + 16 * q, live[q], o);
        }
    }
}

/* dwr_row16 in AVX2's 8 lanes, 4 vectors side by side: a lane's terms the same, in the same
 * order (cn_add_product8), so the same bits */
__attribute__((target("avx2"))) static void dwr_row8(const dwr_plan *p, float *dst, int init, int rows,
                                                     const float *const *src, const float *const *w, int add_bias,
                                                     float bias, int relu)
{
    for (int64_t c = 0; c * 32 < p->n; c++) {
        float *d = dst + 32 * c;
        __m256i live[4];
        __m256 a[4];
        for (int q = 0; q < 4; q++) {
            live[q] = cn_first8(p->n - 32 * c - 8 * q);
            a[q] = init ? _mm256_maskload_ps(d + 8 * q, live[q]) : _mm256_setzero_ps();
        }
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < p->terms; j++) {
                __m256 wk = _mm256_set1_ps(w[r][p->kx[j]]);
                const float *x = src[r] + p->off[j] + 32 * c;
                for (int q = 0; q < 4; q++) a[q] = cn_add_product8(a[q], wk, x + 8 * q, cn_mask8_of16(p->mask[j] + 2 * c, q));
            }
        for (int q = 0; q < 4; q++) cn_store_bias_relu8(d + 8 * q, live[q], a[q], add_bias, bias, relu);
    }
}

static void dwr_row(const dwr_plan *p, float *dst, int init, int rows, const float *const *src, const float *const *w,
                    int add_bias, float bias, int relu)
{
    if (p->v16) dwr_row16(p, dst, init, rows, src, w, add_bias, bias, relu);
    else dwr_row8(p, dst, init, rows, src, w, add_bias, bias, relu);
}
#else
static void dwr_row(const dwr_plan *p, float *dst, int init, int rows, const float *const *src, const float *const *w,
                    int add_bias, float bias, int relu)
{
    (void)p, (void)dst, (void)init, (void)rows, (void)src, (void)w, (void)add_bias, (void)bias, (void)relu; /* never */
}
#endif

/* y (+)= x convolved plane by plane with w (+ b) (+ relu): per output, 0 (or y) + the taps in
 * order from 0, then + bias, then relu; a row in registers where dw_rows says so (dwr_row),
 * else a tap at a time along the row. */
CPU_CLONES static void depthwise_conv(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y,
                                      int accumulate, int relu)
{
    int64_t taps = g->kh * g->kw, plane = g->h * g->w;
    int phases = depthwise_phases(g), rows = dw_rows(g, 0);
    tap tt[DW_TAPS];
    depthwise_taps(g, tt);
    dwr_plan rp = rows ? dwr_plan_of(g, tt, 0, -1) : (dwr_plan){ 0 };
    CN_PAR_FOR(g->n * g->cin * g->oh * g->ow * taps >= CPU_PAR_MIN, schedule(static),
        for (int64_t nc = 0; nc < g->n * g->cin; nc++) {
            int64_t c = nc % g->cin, split_of[PH_SLOTS];
            const float *xp = x + nc * plane, *wc = w + c * taps;
            float split[PH_SLOTS][2][PH_COLS];
            for (int q = 0; q < PH_SLOTS; q++) split_of[q] = -1;
            for (int64_t oy = 0; oy < g->oh; oy++) {
                float *restrict yr = y + (nc * g->oh + oy) * g->ow;
                if (rows) { /* the kernel's rows inside the image, in order */
                    const float *src[DWR_K], *wr[DWR_K];
                    int nr = 0;
                    for (int64_t ky = 0; ky < g->kh; ky++) {
                        int64_t iy = oy * g->sh - g->pad_t + ky * g->dh;
                        if (iy < 0 || iy >= g->h) continue;
                        src[nr] = xp + iy * g->w, wr[nr++] = wc + ky * g->kw;
                        if (g->sw == 1) continue;
                        int q = (int)(iy % PH_SLOTS); /* split once, kept for the next output row */
                        if (split_of[q] != iy) split_row(xp + iy * g->w, g->w, split[q][0], split[q][1]), split_of[q] = iy;
                        src[nr - 1] = split[q][0];
                    }
                    dwr_row(&rp, yr, accumulate, nr, src, wr, b || relu, b ? b[c] : 0.0f, relu);
                    continue;
                }
                if (!accumulate) memset(yr, 0, (size_t)g->ow * sizeof(float));
                for (int64_t k = 0; k < taps; k++) {
                    tap t = tt[k];
                    int64_t iy = oy * g->sh - g->pad_t + t.ky * g->dh;
                    if (iy < 0 || iy >= g->h) continue;
                    float wk = wc[k];
                    if (g->sw == 1) { /* contiguous: a loop of its own, so that it vectorises */
                        const float *restrict xr = xp + iy * g->w + t.x0;
                        _Pragma("omp simd")
                        for (int64_t ox = t.lo; ox < t.hi; ox++) yr[ox] += wk * xr[ox];
                    } else if (phases) { /* the row split once, kept for the next output row */
                        int q = (int)(iy % PH_SLOTS);
                        if (split_of[q] != iy) split_row(xp + iy * g->w, g->w, split[q][0], split[q][1]), split_of[q] = iy;
                        const float *restrict xr = split[q][phase_of(t.x0)] + phase_at(t.x0);
                        _Pragma("omp simd")
                        for (int64_t ox = t.lo; ox < t.hi; ox++) yr[ox] += wk * xr[ox];
                    } else {
                        const float *restrict xr = xp + iy * g->w + t.x0;
                        for (int64_t ox = t.lo; ox < t.hi; ox++) yr[ox] += wk * xr[ox * g->sw];
                    }
                }
                float bc = b ? b[c] : 0.0f;
                if (b || relu)
                    for (int64_t ox = 0; ox < g->ow; ox++) {
                        float v = yr[ox] + bc;
                        yr[ox] = relu && !(v > 0.0f) ? 0.0f : v; /* relu as the reference's: NaN gives 0 */
                    }
            }
        });
}

/* dW (C, taps) += the sums over the batch of dY times x where each tap sees it; a channel's
 * sums run in the fixed order (sample, row), each row's in float, the rows' in double. One walk
 * over a channel's rows serves every tap (a walk per tap read the channel's maps once a tap,
 * from beyond L2 on large maps; the same sums in the same order) */
static void depthwise_weight_grad(const cn_conv_geom *g, const float *x, const float *dy, float *dw)
{
    int64_t taps = g->kh * g->kw, plane = g->h * g->w, oplane = g->oh * g->ow;
    tap tt[DW_TAPS];
    depthwise_taps(g, tt);
    CN_PAR_FOR(g->n * g->cin * oplane * taps >= CPU_PAR_MIN, schedule(static),
        for (int64_t c = 0; c < g->cin; c++) {
            double sum[DW_TAPS];
            for (int64_t k = 0; k < taps; k++) sum[k] = 0;
            for (int64_t n = 0; n < g->n; n++) {
                const float *xp = x + (n * g->cin + c) * plane, *dp = dy + (n * g->cin + c) * oplane;
                for (int64_t oy = 0; oy < g->oh; oy++)
                    for (int64_t k = 0; k < taps; k++) {
                        tap t = tt[k];
                        int64_t iy = oy * g->sh - g->pad_t + t.ky * g->dh;
                        if (iy < 0 || iy >= g->h) continue;
                        const float *restrict xr = xp + iy * g->w + t.x0, *restrict dr = dp + oy * g->ow;
                        float part = 0.0f;
                        if (g->sw == 1)
                            _Pragma("omp simd reduction(+ : part)")
                            for (int64_t ox = t.lo; ox < t.hi; ox++) part += dr[ox] * xr[ox];
                        else
                            _Pragma("omp simd reduction(+ : part)")
                            for (int64_t ox = t.lo; ox < t.hi; ox++) part += dr[ox] * xr[ox * g->sw];
                        sum[k] += part;
                    }
            }
            for (int64_t k = 0; k < taps; k++) dw[c * taps + k] += (float)sum[k];
        });
}

/* Column stride 1 or 2, kernels up to 7x7: a row of dY is read once for every tap, 16 lanes at a
 * time against the kernel's rows of x copied with their padding (zeros) around them, and at
 * stride 2 split into even and odd columns (so that every tap reads x contiguously); tap k's
 * lane l sums the row's columns l, l + 16, ... in float, and the rows' lane sums add up in
 * double; a channel's 16 lanes then add in a fixed order. No sums across lanes in the vector
 * code, so the AVX-512 clone and the baseline give the same bits (other bits than
 * depthwise_weight_grad's, within the op table's tolerance of the reference). */
#define DWG_K 7       /* kernel rows and columns at most */
#define DWG_ROW 512   /* floats of a row's copy (its phases side by side) */
#define DWG_LANES 16

static int64_t dwg_ow16(const cn_conv_geom *g) { return (g->ow + DWG_LANES - 1) / DWG_LANES * DWG_LANES; }

static int depthwise_grad_rows(const cn_conv_geom *g)
{
    int64_t phase = DWG_ROW / g->sw, reach = ((g->kw - 1) * g->dw) / g->sw;
    return g->sw <= 2 && g->kh <= DWG_K && g->kw <= DWG_K && dwg_ow16(g) + reach <= phase &&
           (g->w + g->pad_l + g->sw - 1) / g->sw <= phase;
}

/* acc[k][l] (float) += the products of one row of dY (d, padded with zeros to ow16) with the
 * kernel's rows of x (xr[ky]: its phases `phase` floats apart; inside[ky] 0: outside the image)
 * for kh x kw taps, kx's columns from kx * dil on */
static inline __attribute__((always_inline)) void dwg_row(int64_t kh, int64_t kw, int64_t dil, int64_t sw,
                                                        int64_t ow16, const float *d, float (*xr)[DWG_ROW],
                                                        const int *inside, float (*acc)[DWG_LANES])
{
    int64_t phase = DWG_ROW / sw;
    for (int64_t v = 0; v < ow16; v += DWG_LANES)
        for (int64_t ky = 0; ky < kh; ky++) {
            if (!inside[ky]) continue;
            for (int64_t kx = 0; kx < kw; kx++) {
                int64_t q = kx * dil;
                const float *xv = xr[ky] + (q % sw) * phase + q / sw + v;
                float *a = acc[ky * kw + kx];
                _Pragma("omp simd")
                for (int l = 0; l < DWG_LANES; l++) a[l] += d[v + l] * xv[l];
            }
        }
}

/* dwg_row a tap at a time (over the row's vectors within it): one accumulator live, where a
 * kernel's taps outnumber the registers (7x7: 49); each lane's sum in the same order, so the
 * same bits */
static inline __attribute__((always_inline)) void dwg_row_taps(int64_t kh, int64_t kw, int64_t dil, int64_t sw,
                                                             int64_t ow16, const float *d, float (*xr)[DWG_ROW],
                                                             const int *inside, float (*acc)[DWG_LANES])
{
    int64_t phase = DWG_ROW / sw;
    for (int64_t ky = 0; ky < kh; ky++) {
        if (!inside[ky]) continue;
        for (int64_t kx = 0; kx < kw; kx++) {
            int64_t q = kx * dil;
            const float *xv = xr[ky] + (q % sw) * phase + q / sw;
            float *a = acc[ky * kw + kx];
            for (int64_t v = 0; v < ow16; v += DWG_LANES)
                _Pragma("omp simd")
                for (int l = 0; l < DWG_LANES; l++) a[l] += d[v + l] * xv[v + l];
        }
    }
}

CPU_CLONES static void depthwise_weight_grad_rows(const cn_conv_geom *g, const float *x, const float *dy, float *dw)
{
    int64_t taps = g->kh * g->kw, plane = g->h * g->w, oplane = g->oh * g->ow, ow16 = dwg_ow16(g);
    int64_t sw = g->sw, phase = DWG_ROW / sw;
    CN_PAR_FOR(g->n * g->cin * oplane * taps >= CPU_PAR_MIN, schedule(static),
        for (int64_t c = 0; c < g->cin; c++) {
            double sum[DWG_K * DWG_K][DWG_LANES];
            float xr[DWG_K][DWG_ROW], d[DWG_ROW], acc[DWG_K * DWG_K][DWG_LANES];
            int inside[DWG_K];
            memset(sum, 0, sizeof sum);
            memset(d, 0, sizeof d);
            for (int64_t ky = 0; ky < g->kh; ky++) memset(xr[ky], 0, sizeof xr[ky]);
            for (int64_t n = 0; n < g->n; n++) {
                const float *xp = x + (n * g->cin + c) * plane, *dp = dy + (n * g->cin + c) * oplane;
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    memcpy(d, dp + oy * g->ow, (size_t)g->ow * sizeof(float));
                    for (int64_t ky = 0; ky < g->kh; ky++) { /* x's row after pad_l zeros, in its phases */
                        int64_t iy = oy * g->sh - g->pad_t + ky * g->dh;
                        inside[ky] = iy >= 0 && iy < g->h;
                        if (!inside[ky]) continue;
                        const float *row = xp + iy * g->w;
                        if (sw == 1) memcpy(xr[ky] + g->pad_l, row, (size_t)g->w * sizeof(float));
                        else if (g->pad_l % 2 == 0) /* column ix at j = ix + pad_l: phase j & 1, place j >> 1 */
                            split_row(row, g->w, xr[ky] + g->pad_l / 2, xr[ky] + phase + g->pad_l / 2);
                        else
                            split_row(row, g->w, xr[ky] + phase + (g->pad_l - 1) / 2, xr[ky] + (g->pad_l + 1) / 2);
                    }
                    memset(acc, 0, sizeof acc);
                    if (g->kh == 3 && g->kw == 3 && sw == 1) dwg_row(3, 3, g->dw, 1, ow16, d, xr, inside, acc);
                    else if (g->kh == 3 && g->kw == 3) dwg_row(3, 3, g->dw, 2, ow16, d, xr, inside, acc);
                    else if (taps <= 25) dwg_row(g->kh, g->kw, g->dw, sw, ow16, d, xr, inside, acc);
                    else dwg_row_taps(g->kh, g->kw, g->dw, sw, ow16, d, xr, inside, acc);
                    for (int64_t k = 0; k < taps; k++)
                        for (int l = 0; l < DWG_LANES; l++) sum[k][l] += acc[k][l];
                }
            }
            for (int64_t k = 0; k < taps; k++) {
                double t = 0;
                for (int l = 0; l < DWG_LANES; l++) t += sum[k][l];
                dw[c * taps + k] += (float)t;
            }
        });
}

/* dx (+)= each dY value times the tap's weight, put back where the tap read it (fresh: from
 * zeros); per value, the additions in the order (row, tap). Where dw_rows says so a row of dx
 * gathers them in registers (dwr_row); else at column stride 2 (depthwise_phases) a row of dx
 * at a time, split into its even and odd columns, takes its output rows in order (kernel rows
 * from the last) and their taps in order; else a tap at a time. The same additions in the same
 * order each way. */
CPU_CLONES static void depthwise_input_grad(const cn_conv_geom *g, const float *w, const float *dy, float *dx, int fresh)
{
    int64_t taps = g->kh * g->kw, plane = g->h * g->w;
    int phases = depthwise_phases(g), rows = dw_rows(g, 1);
    tap tt[DW_TAPS];
    depthwise_taps(g, tt);
    dwr_plan rp[2] = { { 0 }, { 0 } };
    for (int h = 0; rows && h < (g->sw == 1 ? 1 : 2); h++) rp[h] = dwr_plan_of(g, tt, 1, g->sw == 1 ? -1 : h);
    CN_PAR_FOR(g->n * g->cin * g->oh * g->ow * taps >= CPU_PAR_MIN, schedule(static),
        for (int64_t nc = 0; nc < g->n * g->cin; nc++) {
            const float *wc = w + nc % g->cin * taps, *dp = dy + nc * g->oh * g->ow;
            float *dxp = dx + nc * plane;
            if (rows) { /* a row of dx gathers its terms: the output rows in order, then kx */
                for (int64_t iy = 0; iy < g->h; iy++) {
                    const float *src[DWR_K], *wr[DWR_K];
                    int nr = 0;
                    for (int64_t ky = g->kh - 1; ky >= 0; ky--) {
                        int64_t at = iy + g->pad_t - ky * g->dh, oy = at / g->sh;
                        if (at >= 0 && at % g->sh == 0 && oy < g->oh) src[nr] = dp + oy * g->ow, wr[nr++] = wc + ky * g->kw;
                    }
                    float *row = dxp + iy * g->w;
                    if (g->sw == 1) {
                        dwr_row(&rp[0], row, !fresh, nr, src, wr, 0, 0.0f, 0);
                        continue;
                    }
                    float split[2][PH_COLS]; /* the row's halves, gathered apart and joined */
                    if (!nr) {
                        if (fresh) memset(row, 0, (size_t)g->w * sizeof(float));
                        continue;
                    }
                    if (!fresh) split_row(row, g->w, split[0], split[1]);
                    for (int h = 0; h < 2; h++) dwr_row(&rp[h], split[h], !fresh, nr, src, wr, 0, 0.0f, 0);
                    join_row(split[0], split[1], g->w, row);
                }
                continue;
            }
            if (phases) { /* fresh: a row starts from zeros in its split, not in memory */
                float split[2][PH_COLS];
                for (int64_t iy = 0; iy < g->h; iy++) {
                    int any = 0;
                    for (int64_t ky = g->kh - 1; ky >= 0; ky--) { /* output rows ascending */
                        int64_t at = iy + g->pad_t - ky * g->dh, oy = at / g->sh;
                        if (at < 0 || at % g->sh || oy >= g->oh) continue;
                        if (!any && fresh) memset(split, 0, sizeof split);
                        else if (!any) split_row(dxp + iy * g->w, g->w, split[0], split[1]);
                        any = 1;
                        const float *restrict gr = dp + oy * g->ow;
                        for (int64_t kx = 0; kx < g->kw; kx++) {
                            tap t = tt[ky * g->kw + kx];
                            float wk = wc[ky * g->kw + kx], *restrict dr = split[phase_of(t.x0)] + phase_at(t.x0);
                            _Pragma("omp simd")
                            for (int64_t ox = t.lo; ox < t.hi; ox++) dr[ox] += wk * gr[ox];
                        }
                    }
                    if (any) join_row(split[0], split[1], g->w, dxp + iy * g->w);
                    else if (fresh) memset(dxp + iy * g->w, 0, (size_t)g->w * sizeof(float));
                }
                continue;
            }
            if (fresh) memset(dxp, 0, (size_t)plane * sizeof(float));
            for (int64_t oy = 0; oy < g->oh; oy++) {
                for (int64_t k = 0; k < taps; k++) {
                    tap t = tt[k];
                    int64_t iy = oy * g->sh - g->pad_t + t.ky * g->dh;
                    if (iy < 0 || iy >= g->h) continue;
                    float *restrict dr = dxp + iy * g->w + t.x0;
                    const float *restrict gr = dp + oy * g->ow;
                    float wk = wc[k];
                    if (g->sw == 1)
                        _Pragma("omp simd")
                        for (int64_t ox = t.lo; ox < t.hi; ox++) dr[ox] += wk * gr[ox];
                    else
                        for (int64_t ox = t.lo; ox < t.hi; ox++) dr[ox * g->sw] += wk * gr[ox];
                }
            }
        });
}

/* Winograd's way for a call: one image's rule, or in training the batch's (cn_cpu_winograd_train_way) */
static int winograd_here(const cn_conv_geom *g, int training)
{
    return training ? cn_cpu_winograd_train_way(g) : cn_cpu_winograd_way(g);
}

/* u_made: Winograd's transforms of w, made before (NULL: made in work where the way is Winograd's);
 * training: the call is a training step's (its way may be the batch's, winograd_here) */
static void conv_into(const cn_conv_geom *g, const float *x, const float *w, const float *u_made, const float *b,
                      float *y, int accumulate, int relu, int training, float *work)
{
    if (depthwise(g) && cn_cpu_depthwise_flat_way(g)) cn_cpu_depthwise_flat_conv(g, x, w, b, y, accumulate, relu);
    else if (depthwise(g)) depthwise_conv(g, x, w, b, y, accumulate, relu);
    else if (subsampled(g)) subsampled_conv(g, x, w, b, y, accumulate, relu, work);
    else if (winograd_here(g, training)) cn_cpu_winograd_conv(g, x, w, u_made, b, y, accumulate, relu, NULL, work);
    else if (!accumulate && few_taps(g)) few_taps_conv(g, x, w, b, y, relu, work);
    else if (padded_way(g)) padded_conv(g, x, w, b, y, accumulate, relu, work);
    else general_conv(g, x, w, b, y, accumulate, relu);
}

/* floats of scratch for conv_into in training and out of it */
static int64_t conv_work(const cn_conv_geom *g)
{
    if (depthwise(g)) return 0;
    if (subsampled(g)) return subsampled_len(g);
    if (cn_cpu_winograd_way(g)) return cn_cpu_winograd_work(g);
    int64_t other = padded_way(g) || few_taps(g) ? padded_len(g) : 0;
    int64_t training = cn_cpu_winograd_train_way(g) ? cn_cpu_winograd_work(g) : 0;
    return training > other ? training : other;
}

/* floats of scratch for the weight gradient, and for the input gradient */
static int64_t weight_grad_work(const cn_conv_geom *g)
{
    if (depthwise(g)) return 0;
    if (subsampled(g)) return subsampled_len(g);
    if (few_taps(g)) return padded_len(g);
    if (cn_cpu_winograd_weight_way(g)) return cn_cpu_winograd_weight_work(g);
    return weight_padded(g) ? padded_len(g) + g->n * g->cout * padded_of(g).q : 0;
}

static int64_t input_grad_work(const cn_conv_geom *g)
{
    cn_conv_geom t;
    if (direct(g) || depthwise(g)) return 0;
    if (subsampled(g)) return subsampled_len(g);
    if (transposed_geom(g, &t)) return g->cout * (g->cin / g->groups) * g->kh * g->kw + conv_work(&t);
    return chunk_samples(g, (g->cin / g->groups) * g->kh * g->kw * g->oh * g->ow) * (g->cin / g->groups) * g->kh *
           g->kw * g->oh * g->ow;
}

/* cn_op_io.prep: a tag saying what it holds (the same node may run another way when a test
 * forces one), then, 64 bytes on, Winograd's transforms of the weights */
#define PREP_HEAD 16
#define PREP_WINOGRAD 0x57494e4fu

int64_t cn_cpu_conv_prep_bytes(const cn_node *n, const cn_node *const *in)
{
    cn_conv_geom g = cn_conv_geom_of(n, in[0], 1);
    return cn_cpu_winograd_way(&g) ? (PREP_HEAD + cn_cpu_winograd_prep_floats(&g)) * (int64_t)sizeof(float) : 0;
}

/* the transforms of io->w in io->prep, made there first where not made yet; NULL: no prep, or
 * not Winograd's way */
static const float *prepared(const cn_conv_geom *g, const cn_op_io *io)
{
    if (!io->prep || !cn_cpu_winograd_way(g)) return NULL;
    uint32_t *tag = io->prep;
    float *u = (float *)io->prep + PREP_HEAD;
    if (!io->prep_made || *tag != PREP_WINOGRAD) cn_cpu_winograd_prepare(g, io->w, u), *tag = PREP_WINOGRAD;
    return u;
}

static void conv_forward(const cn_op_io *io, int relu)
{
    cn_conv_geom g = cn_conv_geom_of(io->n, io->in[0], io->batch);
    int64_t K = (g.cin / g.groups) * g.kh * g.kw;
    const float *w = io->w;
    conv_into(&g, io->x[0], w, prepared(&g, io), io->n->a.bias ? w + g.cout * K : NULL, io->y, 0, relu, io->training,
              io->work);
}

void cn_cpu_conv_forward(const cn_op_io *io) { conv_forward(io, 0); }

int cn_cpu_conv_relu_pool(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    cn_conv_geom g = cn_conv_geom_of(n, in[0], batch);
    return cn_cpu_winograd_way(&g) && g.oh % 2 == 0 && g.ow % 2 == 0;
}

/* the convolution's output, and the maxpool of its relu beside it while it is in registers */
void cn_cpu_conv_forward_relu_pool(const cn_op_io *io)
{
    cn_conv_geom g = cn_conv_geom_of(io->n, io->in[0], io->batch);
    int64_t K = (g.cin / g.groups) * g.kh * g.kw;
    const float *w = io->w;
    cn_pool_out pool = { io->pool_y, io->pool_aux };
    cn_cpu_winograd_conv(&g, io->x[0], w, prepared(&g, io), io->n->a.bias ? w + g.cout * K : NULL, io->y, 0, 0, &pool,
                         io->work);
}
/* relu(the convolution), in the product's last pass over its output */
void cn_cpu_conv_forward_relu(const cn_op_io *io) { conv_forward(io, 1); }

/* dW += dY . patches(x)^T (by Winograd's F(3x3,2x2) or F(3x3,4x4) where
 * cn_cpu_winograd_weight_way says), and
 * where few_taps(g) db (or NULL) += the sums of dY; work: weight_grad_work(g) floats */
static void weight_grad_into(const cn_conv_geom *g, const float *x, const float *dy, float *dw, float *db, float *work)
{
    if (depthwise(g) && cn_cpu_depthwise_flat_way(g)) cn_cpu_depthwise_flat_weight_grad(g, x, dy, dw);
    else if (depthwise(g) && depthwise_grad_rows(g)) depthwise_weight_grad_rows(g, x, dy, dw);
    else if (depthwise(g)) depthwise_weight_grad(g, x, dy, dw);
    else if (subsampled(g)) subsampled_weight_grad(g, x, dy, dw, work);
    else if (few_taps(g)) few_taps_weight_grad(g, x, dy, dw, db, work);
    else if (cn_cpu_winograd_weight_way(g)) cn_cpu_winograd_weight_grad(g, x, dy, dw, work);
    else if (weight_padded(g)) padded_weight_grad(g, x, dy, dw, work, work + padded_len(g));
    else general_weight_grad(g, x, dy, dw);
}

/* dx (+)= W^T dY (fresh: stored): for stride 1 the convolution of dY by the flipped kernels;
 * training: a training step's (a convolution's backward; a deconv's forward may be either);
 * work: input_grad_work(g) floats */
static void input_grad_into(const cn_conv_geom *g, const float *w, const float *dy, float *dx, int fresh, int training,
                            float *work)
{
    cn_conv_geom t;
    int64_t K = (g->cin / g->groups) * g->kh * g->kw;
    if (depthwise(g) && cn_cpu_depthwise_flat_way(g)) {
        cn_cpu_depthwise_flat_input_grad(g, w, dy, dx, fresh);
        return;
    }
    if (depthwise(g)) {
        depthwise_input_grad(g, w, dy, dx, fresh);
        return;
    }
    if (subsampled(g)) {
        subsampled_input_grad(g, w, dy, dx, fresh, work);
        return;
    }
    if (!direct(g) && transposed_geom(g, &t)) {
        float *wt = work, *rest = work + g->cout * K;
        if (winograd_here(&t, training)) { /* t's U straight from w, in the slot its work keeps for U */
            cn_cpu_winograd_prepare_turned(&t, w, rest);
            conv_into(&t, dy, NULL, rest, NULL, dx, !fresh, 0, training, rest);
        } else {
            flip_weights(g, w, wt);
            conv_into(&t, dy, wt, NULL, NULL, dx, !fresh, 0, training, rest);
        }
    } else {
        general_input_grad(g, w, dy, dx, fresh, work);
    }
}

/* bytes of workspace for any of the three products of geometry g */
static int64_t geom_workspace(const cn_conv_geom *g)
{
    int64_t f = conv_work(g), wg = weight_grad_work(g), ig = input_grad_work(g);
    int64_t most = f > wg ? f : wg;
    return (most > ig ? most : ig) * (int64_t)sizeof(float);
}

/* db, dW, then dx */
void cn_cpu_conv_backward(const cn_op_io *io)
{
    cn_conv_geom g = cn_conv_geom_of(io->n, io->in[0], io->batch);
    int64_t K = (g.cin / g.groups) * g.kh * g.kw;
    float *dw = io->dw, *dx = io->dx[0], *db = io->n->a.bias ? dw + g.cout * K : NULL;
    if (db && !few_taps(&g)) bias_grad(g.n, g.cout, g.oh * g.ow, io->dy, db);
    weight_grad_into(&g, io->x[0], io->dy, dw, few_taps(&g) ? db : NULL, io->work);
    if (dx) input_grad_into(&g, io->w, io->dy, dx, io->dx_fresh & 1, 1, io->work);
}

const char *cn_cpu_conv_describe(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    /* [forward way][input gradient's way][weight gradient's]: 0 Winograd F(2x2,3x3), 1 padded
     * rows, 2 packed patches, 4 Winograd F(4x4,3x3), the forward's 3: few taps in registers, and
     * its 5, 6, 7: 1, 2, 3 out of training and Winograd F(2x2,3x3) in training; the
     * input gradient's 3: dcol =
     * W^T dY, added back (col2im); the weight gradient's 1: few taps, summed in registers, 2:
     * Winograd F(3x3,2x2), 3: F(3x3,4x4) (else the products of the forward's way, or padded
     * rows); the image as a matrix apart */
#define DW(f) { f, f "; dw: few taps, sums in registers", f "; dw: winograd F(3x3,2x2)", f "; dw: winograd F(3x3,4x4)" }
#define WAYS(f)                                                                                                \
    { DW(f "; dx: winograd F(2x2,3x3) of dY"), DW(f "; dx: sgemm on padded rows of dY"),                       \
      DW(f "; dx: sgemm on packed patches of dY"), DW(f "; dx: col2im"), DW(f "; dx: winograd F(4x4,3x3) of dY") }
#define TRAIN " (in training: winograd F(2x2,3x3))"
    static const char *const ways[8][5][4] = { WAYS("winograd F(2x2,3x3)"), WAYS("sgemm on padded rows"),
                                               WAYS("sgemm on packed patches"), WAYS("few taps, sums in registers"),
                                               WAYS("winograd F(4x4,3x3)"), WAYS("sgemm on padded rows" TRAIN),
                                               WAYS("sgemm on packed patches" TRAIN),
                                               WAYS("few taps, sums in registers" TRAIN) };
#undef TRAIN
#undef WAYS
#undef DW
    cn_conv_geom g = cn_conv_geom_of(n, in[0], batch), t;
    if (direct(&g)) return "sgemm, the image as a matrix (1x1, or a kernel as large as the image)";
    if (depthwise(&g) && cn_cpu_depthwise_flat_way(&g))
        return "depthwise, each plane read flat (16 outputs a vector across rows); dx and dw the same way";
    if (depthwise(&g)) return "depthwise, plane by plane along rows; dx and dw the same way";
    if (subsampled(&g)) return "sgemm, the image subsampled as a matrix (1x1 with a stride); dx: the same, added back";
    int fwd = cn_cpu_winograd4_way(&g) ? 4 : cn_cpu_winograd_way(&g) ? 0 : few_taps(&g) ? 3 : padded_way(&g) ? 1 : 2;
    if (fwd != 4 && fwd != 0 && cn_cpu_winograd_train_way(&g)) fwd += 4;
    int dx = !transposed_geom(&g, &t)     ? 3 /* the input gradient is a training step's */
             : cn_cpu_winograd4_way(&t)     ? 4
             : cn_cpu_winograd_train_way(&t) ? 0
             : padded_way(&t)               ? 1
                                            : 2;
    int dw = cn_cpu_winograd_weight_way(&g);
    return ways[fwd][dx][few_taps(&g) ? 1 : dw == 4 ? 3 : dw ? 2 : 0];
}

int64_t cn_cpu_conv_workspace(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    cn_conv_geom g = cn_conv_geom_of(n, in[0], batch);
    return geom_workspace(&g);
}

/* ---- deconv: the convolution of cn_deconv_geom_of with its directions swapped ---------------
 * g reads the deconv's output (its x: N,Cout,OH,OW) and writes the deconv's input (its y:
 * N,Cin,H,W), so the deconv's forward is g's input gradient, its input gradient g's forward,
 * and its weight gradient g's with the two tensors in each other's place. */

/* y (N,Cout,OH,OW) <- W^T x, then + bias per channel */
void cn_cpu_deconv_forward(const cn_op_io *io)
{
    cn_conv_geom g = cn_deconv_geom_of(io->n, io->in[0], io->batch);
    int64_t K = (g.cin / g.groups) * g.kh * g.kw, P = g.h * g.w;
    const float *w = io->w;
    float *y = io->y;
    input_grad_into(&g, w, io->x[0], y, 1, io->training, io->work);
    if (!io->n->a.bias) return;
    const float *b = w + g.cout * K;
    CN_PAR_FOR(g.n * g.cin * P >= CPU_PAR_MIN, schedule(static),
        for (int64_t p = 0; p < g.n * g.cin; p++) {
            float bc = b[p % g.cin], *yp = y + p * P;
            _Pragma("omp simd")
            for (int64_t i = 0; i < P; i++) yp[i] += bc;
        });
}

/* db (Cout) += sums of dy; dW += x (x) dy as g's weight gradient; dx (N,Cin,H,W) (+)= dy conv W */
void cn_cpu_deconv_backward(const cn_op_io *io)
{
    cn_conv_geom g = cn_deconv_geom_of(io->n, io->in[0], io->batch);
    int64_t K = (g.cin / g.groups) * g.kh * g.kw;
    float *dw = io->dw, *dx = io->dx[0];
    if (io->n->a.bias) bias_grad(g.n, g.cin, g.h * g.w, io->dy, dw + g.cout * K);
    weight_grad_into(&g, io->dy, io->x[0], dw, NULL, io->work);
    if (dx) conv_into(&g, io->dy, io->w, NULL, NULL, dx, !(io->dx_fresh & 1), 0, 1, io->work);
}

int64_t cn_cpu_deconv_workspace(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    cn_conv_geom g = cn_deconv_geom_of(n, in[0], batch);
    return geom_workspace(&g);
}
