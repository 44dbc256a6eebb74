/* depthwise_flat.c — depthwise convolutions (one channel a group, MobileNet's) of stride 1 on
 * small planes whose output is as wide as the input (`same` across). Along rows (conv.c) a 7x7
 * plane's row fills 7 lanes of a vector of 16 and every row sets its taps up again: MobileNet's
 * 7x7 and 14x14 layers took some 400 cycles a plane for 441 multiplications. Here a plane is
 * read flat, as one run of h*w values: output pixel p = oy*w + ox, and tap (ky, kx) reads the
 * input at p + (ky*dh - pad_t)*w + kx*dw - pad_l, one shift of the whole run, so a vector holds
 * 16 outputs across row ends. A mask made once a call takes or skips each term of each vector
 * (skipped where the tap would read the padding: a row before or after the plane, or a column
 * that wraps round to the next row), and the reads are masked loads (no fault before or past
 * the plane), so every output adds the terms conv.c's loops add, in their order, a
 * multiplication and then an addition each: the same bits (tests/test_backend.c). The input
 * gradient is the same walk over dY with the kernel turned round; the weight gradient sums each
 * tap's products over a plane in 16 float lanes and the planes' lane sums in double, in an order
 * fixed by the shapes. At stride 2 where the plane's sides halve, the same on its four phases
 * (rows and columns of one parity each: every tap reads one phase, at one shift). AVX-512's
 * code, and AVX2's: the same lanes as two vectors of 8 (each mask's halves; a masked lane kept
 * by a blend), so the same bits, the weight gradient's too. Elsewhere conv.c's loops run (a
 * lane at a time this would be slower than their vectors), the same forward and input
 * gradient, other bits of the weight gradient. */
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CN_X86 1
#endif

#include "cpu_impl.h"
#include "gemm.h"
#include "kernel_util.h"

#define LANES 16
#define BLOCK 4       /* vectors of outputs a pass over the terms keeps in registers */
#define GROUP 9       /* terms a pass of the weight gradient keeps in registers (a 3x3 kernel's) */
#define FLAT_OUT 1024 /* outputs of a plane at most (32x32), whole blocks */
#define FLAT_TERMS 27 /* kernels up to 5x5, in whole groups */
/* outputs of a stride-2 plane at most: 28x28 -> 14x14 at batch 16 forward and backward 5.4-5.5
 * -> 4.0-4.2 ms, but 56x56 -> 28x28 8.6-9.0 -> 11.1 ms (splitting the phases costs more than
 * the rows lose) */
#define FLAT_HALF_OUT 256

static int flat_mode = -1;

void cn_cpu_depthwise_flat_force(int mode) { flat_mode = mode; }

#ifdef CN_X86
/* stride 2 on a plane of even sides that halves them (3x3 with padding 1 on 14x14: 7x7): its
 * four phases (rows and columns of one parity each) are planes of the output's size */
static int halves(const cn_conv_geom *g)
{
    return g->sh == 2 && g->sw == 2 && g->dh == 1 && g->dw == 1 && g->h == 2 * g->oh && g->w == 2 * g->ow;
}

int cn_cpu_depthwise_flat_way(const cn_conv_geom *g)
{
    if (flat_mode == 0 || !(cn_gemm_avx512() || cn_gemm_avx2())) return 0;
    int one = g->sh == 1 && g->sw == 1 && g->ow == g->w && g->h * g->w <= FLAT_OUT;
    return g->groups == g->cin && g->cout == g->cin && g->kh <= 5 && g->kw <= 5 && g->oh * g->ow <= FLAT_OUT &&
           (one || (halves(g) && g->oh * g->ow <= FLAT_HALF_OUT));
}

/* A walk over one plane: n outputs (npos in whole blocks of vectors); term j adds weight tap[j]
 * times the source at p + off[j] to output p where bit p % 16 of in[j][p / 16] is set (never
 * past n, nor for the terms past the kernel's that fill its last group). Fixed blocks and
 * groups keep the sums in registers (a count known only at run time put them on the stack). */
typedef struct flat_walk {
    int64_t n, npos;
    int terms, v16; /* v16: AVX-512's code, else AVX2's */
    int64_t off[FLAT_TERMS], tap[FLAT_TERMS];
    uint16_t in[FLAT_TERMS][FLAT_OUT / LANES];
} flat_walk;

/* the forward's walk (and the weight gradient's; dx 0): taps in order; the input gradient's
 * (dx 1): kernel rows from the last (dY's rows ascending), columns in order, each read turned
 * round. Source and output are w wide. At stride 2 (halves) source and output are ow wide: the
 * forward reads the input's four phases, oh*ow floats each, phase 2a + b holding the rows of
 * parity a and the columns of parity b (split_phases); the input gradient makes one phase of dx
 * at a time (phase), from the taps that land in it. */
static void walk_of(const cn_conv_geom *g, int dx, int phase, flat_walk *s)
{
    int two = halves(g);
    int64_t w = two ? g->ow : g->w, rows = two || !dx ? g->oh : g->h, src_rows = two || dx ? g->oh : g->h;
    s->n = rows * w, s->npos = (s->n + BLOCK * LANES - 1) / (BLOCK * LANES) * (BLOCK * LANES), s->terms = 0;
    s->v16 = cn_gemm_avx512();
    memset(s->in, 0, sizeof s->in);
    memset(s->off, 0, sizeof s->off);
    memset(s->tap, 0, sizeof s->tap);
    for (int64_t i = 0; i < g->kh; i++)
        for (int64_t kx = 0; kx < g->kw; kx++) {
            int64_t ky = dx ? g->kh - 1 - i : i;
            int64_t ry = ky * g->dh - g->pad_t, rx = kx * g->dw - g->pad_l; /* the input's row - oy*sh, col - ox*sw */
            int64_t ph = 0;
            if (two) { /* the phase the tap reads, and where in it */
                ph = 2 * (ry & 1) + (rx & 1), ry = (ry - (ry & 1)) / 2, rx = (rx - (rx & 1)) / 2;
                if (dx && ph != phase) continue;
            }
            int64_t sy = dx ? -ry : ry, sx = dx ? -rx : rx, j = s->terms++; /* source row - output row */
            s->tap[j] = ky * g->kw + kx, s->off[j] = (two && !dx ? ph * s->n : 0) + sy * w + sx;
            for (int64_t p = 0; p < s->n; p++) {
                int64_t r = p / w + sy, c = p % w + sx;
                if (r >= 0 && r < src_rows && c >= 0 && c < w) s->in[j][p / LANES] |= (uint16_t)(1u << (p % LANES));
            }
        }
}

/* dst (+)= the walk's terms over src in order (init: from dst, else from 0), then + bias where
 * add_bias, then relu where relu (NaN gives 0), a block of vectors of outputs at a time */
__attribute__((target("avx512f"))) static void flat_plane16(const flat_walk *s, const float *src, const float *wc,
                                                            float *dst, int init, int add_bias, float bias, int relu)
{
    __m512 zero = _mm512_setzero_ps();
    for (int64_t v0 = 0; v0 < s->npos; v0 += BLOCK * LANES) {
        __m512 a[BLOCK];
        __mmask16 live[BLOCK];
        for (int q = 0; q < BLOCK; q++) {
            live[q] = cn_lanes16(0, s->n - v0 - LANES * q);
            a[q] = init ? _mm512_maskz_loadu_ps(live[q], dst + v0 + LANES * q) : zero;
        }
        for (int j = 0; j < s->terms; j++) {
            __m512 wk = _mm512_set1_ps(wc[s->tap[j]]);
            const float *x = src + s->off[j] + v0;
            const uint16_t *m = s->in[j] + v0 / LANES;
            for (int q = 0; q < BLOCK; q++)
                a[q] = _mm512_mask_add_ps(a[q], m[q], a[q],
                                          _mm512_mul_ps(wk, _mm512_maskz_loadu_ps(m[q], x + LANES * q)));
        }
        for (int q = 0; q < BLOCK; q++) {
            __m512 o = add_bias ? _mm512_add_ps(a[q], _mm512_set1_ps(bias)) : a[q];
            if (relu) o = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(o, zero, _CMP_GT_OQ), o);
            _mm512_mask_storeu_ps(dst + v0 + LANES * q, live[q], o);
        }
    }
}

/* flat_plane16 in AVX2: a block's 64 outputs as 8 vectors of 8 (cn_add_product8) */
__attribute__((target("avx2"))) static void flat_plane8(const flat_walk *s, const float *src, const float *wc,
                                                        float *dst, int init, int add_bias, float bias, int relu)
{
    for (int64_t v0 = 0; v0 < s->npos; v0 += BLOCK * LANES) {
        __m256 a[2 * BLOCK];
        for (int q = 0; q < 2 * BLOCK; q++)
            a[q] = init ? _mm256_maskload_ps(dst + v0 + 8 * q, cn_first8(s->n - v0 - 8 * q)) : _mm256_setzero_ps();
        for (int j = 0; j < s->terms; j++) {
            __m256 wk = _mm256_set1_ps(wc[s->tap[j]]);
            const float *x = src + s->off[j] + v0;
            const uint16_t *m = s->in[j] + v0 / LANES;
            for (int q = 0; q < 2 * BLOCK; q++) a[q] = cn_add_product8(a[q], wk, x + 8 * q, cn_mask8_of16(m, q));
        }
        for (int q = 0; q < 2 * BLOCK; q++)
            cn_store_bias_relu8(dst + v0 + 8 * q, cn_first8(s->n - v0 - 8 * q), a[q], add_bias, bias, relu);
    }
}

static void flat_plane(const flat_walk *s, const float *src, const float *wc, float *dst, int init, int add_bias,
                       float bias, int relu)
{
    if (s->v16) flat_plane16(s, src, wc, dst, init, add_bias, bias, relu);
    else flat_plane8(s, src, wc, dst, init, add_bias, bias, relu);
}

/* ph (4 * oh*ow floats) <- the phases of plane x (h x w, even sides): phase 2a + b the rows of
 * parity a and the columns of parity b; join_phases puts them back */
__attribute__((target("avx512f"))) static void split_phases16(const float *x, int64_t h, int64_t w, float *ph)
{
    int64_t n = h / 2 * (w / 2);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int64_t iy = 0; iy < h; iy++) {
        const float *r = x + iy * w;
        float *e = ph + 2 * (iy & 1) * n + iy / 2 * (w / 2), *o = e + n;
        for (int64_t c = 0; c < w; c += 2 * LANES) {
            __m512 lo = _mm512_maskz_loadu_ps(cn_lanes16(0, w - c), r + c);
            __m512 hi = _mm512_maskz_loadu_ps(cn_lanes16(0, w - c - LANES), r + c + LANES);
            __mmask16 m = cn_lanes16(0, (w - c) / 2);
            _mm512_mask_storeu_ps(e + c / 2, m, _mm512_permutex2var_ps(lo, even, hi));
            _mm512_mask_storeu_ps(o + c / 2, m, _mm512_permutex2var_ps(lo, odd, hi));
        }
    }
}

__attribute__((target("avx512f"))) static void join_phases16(const float *ph, int64_t h, int64_t w, float *x)
{
    int64_t n = h / 2 * (w / 2);
    const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i high = _mm512_add_epi32(low, _mm512_set1_epi32(8));
    for (int64_t iy = 0; iy < h; iy++) {
        float *r = x + iy * w;
        const float *e = ph + 2 * (iy & 1) * n + iy / 2 * (w / 2), *o = e + n;
        for (int64_t c = 0; c < w; c += 2 * LANES) {
            __mmask16 m = cn_lanes16(0, (w - c) / 2);
            __m512 ev = _mm512_maskz_loadu_ps(m, e + c / 2), od = _mm512_maskz_loadu_ps(m, o + c / 2);
            _mm512_mask_storeu_ps(r + c, cn_lanes16(0, w - c), _mm512_permutex2var_ps(ev, low, od));
            _mm512_mask_storeu_ps(r + c + LANES, cn_lanes16(0, w - c - LANES), _mm512_permutex2var_ps(ev, high, od));
        }
    }
}

/* split_phases16 and join_phases16 in AVX2, 16 columns a step */
__attribute__((target("avx2"))) static void split_phases8(const float *x, int64_t h, int64_t w, float *ph)
{
    int64_t n = h / 2 * (w / 2);
    for (int64_t iy = 0; iy < h; iy++) {
        const float *r = x + iy * w;
        float *e = ph + 2 * (iy & 1) * n + iy / 2 * (w / 2), *o = e + n;
        for (int64_t c = 0; c < w; c += 16) {
            __m256 lo = _mm256_maskload_ps(r + c, cn_first8(w - c)), hi = _mm256_maskload_ps(r + c + 8, cn_first8(w - c - 8));
            __m256i m = cn_first8((w - c) / 2);
            _mm256_maskstore_ps(e + c / 2, m, cn_even8(lo, hi));
            _mm256_maskstore_ps(o + c / 2, m, cn_odd8(lo, hi));
        }
    }
}

__attribute__((target("avx2"))) static void join_phases8(const float *ph, int64_t h, int64_t w, float *x)
{
    int64_t n = h / 2 * (w / 2);
    for (int64_t iy = 0; iy < h; iy++) {
        float *r = x + iy * w;
        const float *e = ph + 2 * (iy & 1) * n + iy / 2 * (w / 2), *o = e + n;
        for (int64_t c = 0; c < w; c += 16) {
            __m256i m = cn_first8((w - c) / 2);
            __m256 ev = _mm256_maskload_ps(e + c / 2, m), od = _mm256_maskload_ps(o + c / 2, m);
            __m256 lo = _mm256_unpacklo_ps(ev, od), hi = _mm256_unpackhi_ps(ev, od); /* e0 o0 e1 o1 | e4 o4 e5 o5 */
            _mm256_maskstore_ps(r + c, cn_first8(w - c), _mm256_permute2f128_ps(lo, hi, 0x20));
            _mm256_maskstore_ps(r + c + 8, cn_first8(w - c - 8), _mm256_permute2f128_ps(lo, hi, 0x31));
        }
    }
}

static void split_phases(int v16, const float *x, int64_t h, int64_t w, float *ph)
{
    if (v16) split_phases16(x, h, w, ph);
    else split_phases8(x, h, w, ph);
}

static void join_phases(int v16, const float *ph, int64_t h, int64_t w, float *x)
{
    if (v16) join_phases16(ph, h, w, x);
    else join_phases8(ph, h, w, x);
}

/* y (+)= x convolved plane by plane with w (+ b) (+ relu): per output 0 (or y) + the taps in
 * order, then + bias, then relu, as conv.c's depthwise_conv */
void cn_cpu_depthwise_flat_conv(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y,
                                int accumulate, int relu)
{
    flat_walk s;
    walk_of(g, 0, 0, &s);
    int64_t taps = g->kh * g->kw, plane = g->h * g->w, oplane = g->oh * g->ow;
    int two = halves(g);
    CN_PAR_FOR(g->n * g->cin * oplane * taps >= CPU_PAR_MIN, schedule(static),
        for (int64_t nc = 0; nc < g->n * g->cin; nc++) {
            int64_t c = nc % g->cin;
            float ph[4 * FLAT_HALF_OUT];
            const float *src = x + nc * plane;
            if (nc + 1 < g->n * g->cin) cpu_fetch_floats(src + plane, plane);
            if (two) split_phases(s.v16, src, g->h, g->w, ph), src = ph;
            flat_plane(&s, src, w + c * taps, y + nc * oplane, accumulate, b || relu, b ? b[c] : 0.0f, relu);
        });
}

/* dx (+)= each dY value times the tap's weight where the tap read it (fresh: from zeros), per
 * value in the order of conv.c's depthwise_input_grad (dY's rows ascending, then the kernel's
 * columns); at stride 2 a phase of dx at a time, in the phases' buffer, then put back */
void cn_cpu_depthwise_flat_input_grad(const cn_conv_geom *g, const float *w, const float *dy, float *dx, int fresh)
{
    flat_walk s[4];
    int two = halves(g);
    for (int q = 0; q < (two ? 4 : 1); q++) walk_of(g, 1, q, &s[q]);
    int64_t taps = g->kh * g->kw, plane = g->h * g->w, oplane = g->oh * g->ow;
    CN_PAR_FOR(g->n * g->cin * oplane * taps >= CPU_PAR_MIN, schedule(static),
        for (int64_t nc = 0; nc < g->n * g->cin; nc++) {
            const float *wc = w + nc % g->cin * taps, *d = dy + nc * oplane;
            float *dxp = dx + nc * plane, ph[4 * FLAT_HALF_OUT];
            if (nc + 1 < g->n * g->cin) cpu_fetch_floats(d + oplane, oplane);
            if (!two) {
                flat_plane(&s[0], d, wc, dxp, !fresh, 0, 0.0f, 0);
                continue;
            }
            if (!fresh) split_phases(s[0].v16, dxp, g->h, g->w, ph);
            for (int q = 0; q < 4; q++) flat_plane(&s[q], d, wc, ph + q * oplane, !fresh, 0, 0.0f, 0);
            join_phases(s[0].v16, ph, g->h, g->w, dxp);
        });
}

/* sum[j][l] (double) += lane l of term j's products over one plane (positions l, l + 16, ...,
 * in float from 0, where the term is taken), a group of terms at a time */
__attribute__((target("avx512f"))) static void flat_weight_plane16(const flat_walk *s, const float *x, const float *d,
                                                                   double (*sum)[LANES])
{
    for (int j0 = 0; j0 < s->terms; j0 += GROUP) {
        int nt = s->terms - j0 < GROUP ? s->terms - j0 : GROUP;
        __m512 part[GROUP];
        for (int t = 0; t < GROUP; t++) part[t] = _mm512_setzero_ps();
        for (int64_t v = 0; v < s->n; v += LANES) {
            __m512 dv = _mm512_maskz_loadu_ps(cn_lanes16(0, s->n - v), d + v);
            for (int t = 0; t < GROUP; t++) {
                __mmask16 m = s->in[j0 + t][v / LANES];
                part[t] = _mm512_mask_add_ps(part[t], m, part[t],
                                             _mm512_mul_ps(dv, _mm512_maskz_loadu_ps(m, x + s->off[j0 + t] + v)));
            }
        }
        for (int t = 0; t < nt; t++) {
            double *sj = sum[j0 + t];
            __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(part[t]));
            __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(part[t]), 1)));
            _mm512_storeu_pd(sj, _mm512_add_pd(_mm512_loadu_pd(sj), lo));
            _mm512_storeu_pd(sj + 8, _mm512_add_pd(_mm512_loadu_pd(sj + 8), hi));
        }
    }
}

/* flat_weight_plane16 in AVX2: the 16 lanes' low half and then their high half, each a pass
 * over the plane (a group's 9 terms in registers twice over would not fit AVX2's 16) */
__attribute__((target("avx2"))) static void flat_weight_plane8(const flat_walk *s, const float *x, const float *d,
                                                               double (*sum)[LANES])
{
    for (int j0 = 0; j0 < s->terms; j0 += GROUP) {
        int nt = s->terms - j0 < GROUP ? s->terms - j0 : GROUP;
        for (int h = 0; h < 2; h++) { /* lanes 8h to 8h + 7: outputs p with p % 16 among them */
            __m256 part[GROUP];
            for (int t = 0; t < GROUP; t++) part[t] = _mm256_setzero_ps();
            for (int64_t v = 8 * h; v < s->n; v += LANES) {
                __m256 dv = _mm256_maskload_ps(d + v, cn_first8(s->n - v));
                for (int t = 0; t < GROUP; t++)
                    part[t] = cn_add_product8(part[t], dv, x + s->off[j0 + t] + v, cn_mask8_of16(s->in[j0 + t] + v / LANES, h));
            }
            for (int t = 0; t < nt; t++) {
                double *sj = sum[j0 + t] + 8 * h;
                __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(part[t])), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(part[t], 1));
                _mm256_storeu_pd(sj, _mm256_add_pd(_mm256_loadu_pd(sj), lo));
                _mm256_storeu_pd(sj + 4, _mm256_add_pd(_mm256_loadu_pd(sj + 4), hi));
            }
        }
    }
}

static void flat_weight_plane(const flat_walk *s, const float *x, const float *d, double (*sum)[LANES])
{
    if (s->v16) flat_weight_plane16(s, x, d, sum);
    else flat_weight_plane8(s, x, d, sum);
}

/* dW (C, taps) += the sums over the batch of dY times x where each tap sees it: a plane's
 * products in 16 float lanes (output p in lane p % 16), the planes' lane sums in double in
 * sample order, then the lanes in order */
void cn_cpu_depthwise_flat_weight_grad(const cn_conv_geom *g, const float *x, const float *dy, float *dw)
{
    flat_walk s;
    walk_of(g, 0, 0, &s);
    int64_t taps = g->kh * g->kw, plane = g->h * g->w, oplane = g->oh * g->ow;
    int two = halves(g);
    CN_PAR_FOR(g->n * g->cin * oplane * taps >= CPU_PAR_MIN, schedule(static),
        for (int64_t c = 0; c < g->cin; c++) {
            double sum[FLAT_TERMS][LANES];
            float ph[4 * FLAT_HALF_OUT];
            memset(sum, 0, sizeof sum);
            for (int64_t n = 0; n < g->n; n++) {
                const float *src = x + (n * g->cin + c) * plane, *d = dy + (n * g->cin + c) * oplane;
                if (n + 1 < g->n) /* the next sample's planes */
                    cpu_fetch_floats(src + g->cin * plane, plane), cpu_fetch_floats(d + g->cin * oplane, oplane);
                if (two) split_phases(s.v16, src, g->h, g->w, ph), src = ph;
                flat_weight_plane(&s, src, d, sum);
            }
            for (int j = 0; j < s.terms; j++) {
                double t = 0;
                for (int l = 0; l < LANES; l++) t += sum[j][l];
                dw[c * taps + s.tap[j]] += (float)t;
            }
        });
}
#else
int cn_cpu_depthwise_flat_way(const cn_conv_geom *g)
{
    (void)g;
    return 0;
}
/* never called: the way is 0 */
void cn_cpu_depthwise_flat_conv(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y,
                                int accumulate, int relu)
{
    (void)g, (void)x, (void)w, (void)b, (void)y, (void)accumulate, (void)relu;
}
void cn_cpu_depthwise_flat_input_grad(const cn_conv_geom *g, const float *w, const float *dy, float *dx, int fresh)
{
    (void)g, (void)w, (void)dy, (void)dx, (void)fresh;
}
void cn_cpu_depthwise_flat_weight_grad(const cn_conv_geom *g, const float *x, const float *dy, float *dw)
{
    (void)g, (void)x, (void)dy, (void)dw;
}
#endif
