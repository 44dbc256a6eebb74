/* winograd4.c — 3x3 stride-1 convolutions by Winograd's F(4x4,3x3) (Lavin and Gray, 2016): each
 * 4x4 block of outputs from a 6x6 tile of the input, 36 multiplications per pair of channels
 * instead of 144 (F(2x2,3x3), winograd.c, does 64 for the same block: 1.78x as many).
 *
 *   U = G g G^T      per (output, input) channel pair: 36 values, U_e for e = 0..35
 *   V = B^T d B      per (tile, input channel)
 *   M_e = U_e . V_e  for each e: a product (Cout x Cin) . (Cin x tiles)
 *   y = A^T M A      per (tile, output channel): the 4x4 outputs
 *
 * with the points 0, 1, -1, 2, -2 and infinity:
 *   B^T = (4 0 -5 0 1 0) (0 -4 -4 1 1 0) (0 4 -4 -1 1 0) (0 -2 -1 2 1 0) (0 2 -1 -2 1 0) (0 4 0 -5 0 1)
 *   G   = (1/4 0 0) (-1/6 -1/6 -1/6) (-1/6 1/6 -1/6) (1/24 1/12 1/6) (1/24 -1/12 1/6) (0 0 1)
 *   A^T = (1 1 1 1 1 0) (0 1 -1 2 -2 0) (0 1 1 4 4 0) (0 1 -1 8 -8 1)
 * Its coefficients (up to 8 in A, 5 in B, 1/24 in G) round more than F(2x2,3x3)'s halvings: about
 * 10x its error, still within 1e-5 of the largest output on the tests' shapes (tests/test_backend.c
 * against the double-precision reference).
 *
 * The layout is winograd.c's: panels of 48 tiles (3 vectors of 16) on the threads, V into the
 * products' B panels, the 36 products by cn_gemm_panel on U packed once per call as their A, and
 * y = A^T M A for 32 output channels at a time. A tile row is cut into runs of at most 8 tiles
 * (the length that fills the most lanes) and a vector holds 16 / length of them (up to 5): each input row
 * of a run is loaded as two or three vectors and its tiles' six columns picked out in registers.
 * A CPU with AVX2 but no AVX-512 runs its own transforms on vectors of 8 tiles (below), with the
 * same bits. Runs where cn_cpu_winograd4_way (cpu_impl.h). */
#include <string.h>

#include "cpu_impl.h"
#include "gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CN_X86 1
#endif

#define NR CN_GEMM_NR /* tiles in a panel: 3 vectors */
#define KB 32         /* output channels transformed back together */

#define ROWS_MAX 5    /* runs in a vector (runs of 3 tiles: maps 9 to 12 across) */

static cn_cpu_switch force4 = { "CN_WINOGRAD4", -1, 0 };

void cn_cpu_winograd4_force(int mode) { cn_cpu_switch_set(&force4, mode); }

static int forced4(void) { return cn_cpu_switch_mode(&force4); }

/* the rule, from `convnet bench` (training, batch 32, 2 threads, forward time, F(2x2,3x3)
 * against F(4x4,3x3), CN_WINOGRAD4=0 and 1, two alternations): 32x32 64->64 4.7-5.4 -> 3.7-4.1
 * ms, 16x16 128->128 3.8-3.9 -> 3.0-3.3, 28x28 32->32 1.6 -> 1.1-1.2, 24x24 16->16 0.33-0.35
 * -> 0.25-0.27, 14x14 64->64 1.28-1.34 -> 1.18-1.19, 12x12 128->128 2.35-2.55 -> 2.18-2.32,
 * 12x12 64->64 (batch 16) 0.45-0.51 -> 0.42-0.50; 11x11 64->64 and 10x10 even, 8x8 256->256
 * 4.7-5.6 -> 6.3; wider maps (batch 8 or 16): 56x56 64->64
 * 4.7-5.0 -> 3.7-3.8, 64x64 32->32 2.8-3.0 -> 1.9-2.2, 36x36 32->32 unpadded 1.5 -> 1.1-1.2,
 * 74x74 16->16 unpadded 1.07-1.08 -> 0.95-1.08; many input channels: 28x28 128->128 8.2-8.3
 * -> 5.4-6.2, 16x16 192->192 5.0-5.3 -> 4.1-4.8, but 14x14 256->256 7.6-7.8 -> 8.1-8.4 (a
 * panel's V, 36 x Cin x 48 floats, 1.8 MB at 256 channels, no longer stays in L2 while the
 * output channels' blocks read it). So the forward's Winograd way (winograd.c) on maps 12 or
 * more outputs across and down with at most 192 input channels. AVX2's code (CONVNET_ISA=avx2,
 * the same runs, forward and then the backward's input and weight gradients, ms, two
 * alternations) gains further out: 11x11 64->64 1.47-1.53 -> 1.01-1.07 and 2.9-3.6 -> 2.8-2.9,
 * 10x10 128->128 3.6 -> 3.0-3.1 and 8.2 -> 7.6-7.8, 9x9 64->64 1.15 -> 1.00-1.01, 14x14 256->256
 * (batch 16) 13.0-13.5 -> 11.8-12.0, 16x16 192->192 15.5-15.7 -> 11.9; even at 12x12 384->384
 * (batch 16) 19.9-20.5 -> 19.0-19.8, and it loses at 14x14 512->512 (batch 8) 26.5-26.9 ->
 * 31.4-32.1; 9x30 32->32 (batch 16) even. Its tiles lie anywhere in a vector, so small maps
 * too: 8x8 256->256 12.4 -> 8.9 ms and 23.3-24.0 -> 20.6-20.9, 7x7 512->512 (batch 16)
 * 19.2-19.3 -> 17.7-18.0 and 35.0 -> 33.5-33.7, but 6x6 64->64 even (4 tiles of 36 products an
 * image against 9 of 16: as many multiplications). But one image loses on maps of few tiles
 * (`--infer --batch 1 --threads 1`, forward, F(2x2,3x3) -> F(4x4,3x3)): 8x8 256->256 0.62 ->
 * 1.82 ms, 8x8 128->128 0.14 -> 0.28, 8x8 64->64 0.057 -> 0.074, 7x7 256->256 0.68 -> 1.83 (its
 * 4 tiles fill half a vector and a twelfth of a panel, while all of U, 9.4 MB at 256 channels,
 * is read for them; 12x12 256->256 1.40 -> 2.09 too, but there training gains a fifth: 66.8 ->
 * 53.1 ms forward and backward at batch 32, where 8x8 256->256 gains 36.3 -> 33.2). So there:
 * where a map's F(4x4,3x3) products are at most 0.85 of F(2x2,3x3)'s (9x9: 0.81, 7x7 0.56, 6x6
 * and 5x5 1.0) and it has 9 tiles or more (9x9 and larger; resnet18-cifar's 8x8 layers back on
 * F(2x2,3x3), AVX-512's bits there: its batch-1 inference on one thread 50-62 -> 59-76 images/s,
 * training at batch 32 52.9-55.7 -> 51.9-54.9, three alternations), at most 256 input
 * channels. It looks at one image's shape, so an image gets the same bits alone and in any
 * batch. */
int cn_cpu_winograd4_way(const cn_conv_geom *g)
{
    /* AVX-512's runs want 3 tiles across and a vector's rows 4 outputs down */
    if (!cn_cpu_winograd_way(g) || (cn_gemm_avx512() && (g->ow < 9 || g->oh < 4))) return 0;
    if (forced4() >= 0) return forced4();
    if (!cn_gemm_avx512()) {
        int64_t tiles4 = ((g->oh + 3) / 4) * ((g->ow + 3) / 4), products2 = 16 * ((g->oh + 1) / 2) * ((g->ow + 1) / 2);
        return 20 * 36 * tiles4 <= 17 * products2 && tiles4 >= 9 && g->cin <= 256;
    }
    return g->ow >= 12 && g->oh >= 12 && g->cin <= 192;
}

typedef struct w4geom {
    const cn_conv_geom *g;
    int64_t th, tw;  /* tiles down and across a map */
    int64_t rl, rpr; /* a tile row in runs of rl tiles (all of it up to 8), rpr of them */
    int64_t rows;    /* runs in a vector */
    int64_t vecs;    /* vectors over the batch */
    int64_t panels;  /* of 3 vectors */
    int64_t u_len;   /* floats of one packed U_e */
} w4geom;

static w4geom w4geom_of(const cn_conv_geom *g)
{
    w4geom w = { g, (g->oh + 3) / 4, (g->ow + 3) / 4, 0, 0, 0, 0, 0, cn_gemm_packed_a_len(g->cout, g->cin) };
    /* the run length that fills the most lanes: a vector holds 16 / rl runs, a tile row takes
     * ceil(tw / rl) of them (9 tiles across: two runs of 5, three to a vector, 27 of 32 lanes
     * where runs of 8 fill 18); the longer on a tie */
    w.rl = w.tw < 8 ? w.tw : 8;
    for (int64_t rl = w.rl, best = 0; rl >= 4 || rl == w.rl; rl--) {
        int64_t use = 16 / rl * 1000 / ((w.tw + rl - 1) / rl); /* lanes used, times 1000 / tw */
        if (use > best) best = use, w.rl = rl;
    }
    w.rpr = (w.tw + w.rl - 1) / w.rl;
    w.rows = 16 / w.rl;
    w.vecs = (g->n * w.th * w.rpr + w.rows - 1) / w.rows;
    w.panels = (w.vecs + 2) / 3;
    return w;
}

static int64_t panel_floats(const cn_conv_geom *g) { return 36 * g->cin * NR + 36 * KB * NR; }

int64_t cn_cpu_winograd4_prep_floats(const cn_conv_geom *g) { return 36 * w4geom_of(g).u_len; }

/* + 16: the spare panel 64-byte aligned */
int64_t cn_cpu_winograd4_work(const cn_conv_geom *g) { return cn_cpu_winograd4_prep_floats(g) + 16 + panel_floats(g); }

#ifdef CN_X86
#include "winograd_taps.h"

/* t = G a for a column (a0, a1, a2) of 16 lanes: 6 values */
__attribute__((target("avx512f"), always_inline)) static inline void g6(__m512 a0, __m512 a1, __m512 a2, __m512 t[6])
{
    const __m512 q = _mm512_set1_ps(0.25f), s = _mm512_set1_ps(1.0f / 6), s2 = _mm512_set1_ps(1.0f / 12),
                 s4 = _mm512_set1_ps(1.0f / 24);
    __m512 sum = _mm512_add_ps(a0, a2);
    t[0] = _mm512_mul_ps(q, a0);
    t[1] = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), s), _mm512_add_ps(sum, a1));
    t[2] = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), s), _mm512_sub_ps(sum, a1));
    __m512 even = _mm512_fmadd_ps(s4, a0, _mm512_mul_ps(s, a2)), odd = _mm512_mul_ps(s2, a1);
    t[3] = _mm512_add_ps(even, odd);
    t[4] = _mm512_sub_ps(even, odd);
    t[5] = a2;
}

/* U_e (e = 6i + j) of every channel pair into the products' packed A, 8 output channels and 2
 * input channels a vector (winograd_taps.h); turned: g is the transposed geometry of w's
 * convolution (an input gradient) */
__attribute__((target("avx512f"))) static void transform_panel4(const w4geom *wg, const float *w, int turned,
                                                                 int64_t ip, float *u)
{
    const cn_conv_geom *g = wg->g;
    cn_taps_block blk;
    for (int64_t c = 0; c < g->cin; c += 2) {
        int64_t c0 = c / CN_TAPS_BLOCK * CN_TAPS_BLOCK;
        if (c == c0) cn_winograd_taps_stage(g, w, turned, ip, c0, &blk);
        __m512 kk[9], t[3][6], e[6];
        __mmask16 both = cn_winograd_taps(g, &blk, turned, ip, c0, c, kk);
        for (int j = 0; j < 3; j++) { /* G g: the kernel's columns */
            __m512 col[6];
            g6(kk[j], kk[3 + j], kk[6 + j], col);
            for (int i = 0; i < 6; i++) t[j][i] = col[i];
        }
        float *dst = u + cn_gemm_packed_a_at(g->cin, ip * 8, c);
        for (int i = 0; i < 6; i++) { /* (G g) G^T: row i */
            g6(t[0][i], t[1][i], t[2][i], e);
            for (int j = 0; j < 6; j++) _mm512_mask_storeu_ps(dst + (6 * i + j) * wg->u_len, both, e[j]);
        }
    }
}

/* A^T applied to six vectors: four */
__attribute__((target("avx512f"), always_inline)) static inline void at6(const __m512 m[6], __m512 o[4])
{
    const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f), eight = _mm512_set1_ps(8.0f);
    __m512 s = _mm512_add_ps(m[1], m[2]), d = _mm512_sub_ps(m[1], m[2]);
    __m512 s2 = _mm512_add_ps(m[3], m[4]), d2 = _mm512_sub_ps(m[3], m[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], s), s2);
    o[1] = _mm512_fmadd_ps(two, d2, d);
    o[2] = _mm512_fmadd_ps(four, s2, s);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(eight, d2, d), m[5]);
}

/* what a vector's lanes need, the same for every vector of a map (RL: wgeom's rl) */
typedef struct {
    int32_t pick[6][16];     /* lane l's column j: 4 (l % RL) + j of its run's span */
    __mmask16 far[6];        /* lanes whose column j lies past 32 (the third vector) */
    int32_t put[ROWS_MAX][2][2][16]; /* tile row q's outputs, 16 columns from 16h, from the (0,1) and (2,3) pairs */
    int32_t pooled[ROWS_MAX][16];    /* tile row q's pooled outputs (2 a tile), from the left and right windows */
    int32_t corner[16];              /* lane l's tile's first column in its run, 4 (l % RL) */
} w4lanes;

static void lanes_of(const w4geom *wg, w4lanes *L)
{
    int64_t rl = wg->rl;
    memset(L, 0, sizeof *L);
    for (int j = 0; j < 6; j++)
        for (int l = 0; l < 16; l++) {
            int32_t e = (int32_t)(4 * (l % rl) + j);
            L->pick[j][l] = e & 31;
            if (e >= 32 && l < wg->rows * rl) L->far[j] |= (__mmask16)(1u << l);
        }
    for (int q = 0; q < wg->rows; q++)
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 16; l++) {
                int32_t k = 16 * h + l, src = (int32_t)(q * rl) + k / 4;
                if (src > 15) src = 15; /* past the run's 4 RL outputs: never stored */
                L->put[q][h][0][l] = src + (k % 4 == 1 ? 16 : 0);
                L->put[q][h][1][l] = src + (k % 4 == 3 ? 16 : 0);
            }
    for (int q = 0; q < wg->rows; q++)
        for (int l = 0; l < 16; l++) {
            int32_t src = (int32_t)(q * rl) + l / 2;
            L->pooled[q][l] = (src > 15 ? 15 : src) + (l % 2 ? 16 : 0);
        }
    for (int l = 0; l < 16; l++) L->corner[l] = (int32_t)(4 * (l % rl));
}

/* a vector's runs: where each one's sample starts in x and y, its first input and output row,
 * its first output column and the columns of its input rows inside the image */
typedef struct {
    int64_t rows;
    int64_t x0[ROWS_MAX], y0[ROWS_MAX], iy0[ROWS_MAX], oy0[ROWS_MAX], ox0[ROWS_MAX];
    __mmask16 cols[ROWS_MAX][3]; /* an input row's columns from ox0 - pad_l: inside the image and the run's span */
} w4vec;

static w4vec vec_of(const w4geom *wg, int64_t v)
{
    const cn_conv_geom *g = wg->g;
    w4vec r;
    int64_t first = v * wg->rows, runs = g->n * wg->th * wg->rpr;
    r.rows = runs - first < wg->rows ? runs - first : wg->rows;
    for (int64_t q = 0; q < r.rows; q++) {
        int64_t row = (first + q) / wg->rpr, n = row / wg->th, ty = row % wg->th, ox = (first + q) % wg->rpr * 4 * wg->rl;
        int64_t len = wg->tw - ox / 4 < wg->rl ? wg->tw - ox / 4 : wg->rl, span = 4 * len + 2;
        r.x0[q] = n * g->cin * g->h * g->w + ox - g->pad_l; /* masked-off lanes are not read */
        r.y0[q] = n * g->cout * g->oh * g->ow;
        r.iy0[q] = 4 * ty - g->pad_t;
        r.oy0[q] = 4 * ty;
        r.ox0[q] = ox;
        for (int k = 0; k < 3; k++) { /* span element e is column ox - pad_l + e */
            int64_t lo = g->pad_l - ox, hi = g->w + g->pad_l - ox < span ? g->w + g->pad_l - ox : span;
            r.cols[q][k] = cn_lanes16(lo - 16 * k, hi - 16 * k);
        }
    }
    return r;
}

/* V of vector v (its 16 lanes at out, V_e to V_e+1 step apart) for input channel c */
__attribute__((target("avx512f"))) static void transform_in4(const w4geom *wg, const w4lanes *L, const w4vec *vt,
                                                             const float *x, int64_t c, float *out, int64_t step)
{
    const cn_conv_geom *g = wg->g;
    __m512 zero = _mm512_setzero_ps(), h[6][6];
    __m512i pick[6];
    for (int j = 0; j < 6; j++) pick[j] = _mm512_loadu_si512(L->pick[j]);
    int64_t plane = g->h * g->w;
    for (int i = 0; i < 6; i++) {
        __m512 d[6] = { zero, zero, zero, zero, zero, zero };
        for (int64_t q = 0; q < vt->rows; q++) {
            int64_t iy = vt->iy0[q] + i;
            if (iy < 0 || iy >= g->h) continue;
            const float *r = x + vt->x0[q] + c * plane + iy * g->w;
            const __mmask16 *cols = vt->cols[q];
            fetch_ahead(g, (const char *)r, cols[2] ? 3 : 2);
            __m512 a = _mm512_maskz_loadu_ps(cols[0], r), b = _mm512_maskz_loadu_ps(cols[1], r + 16);
            __m512 far = cols[2] ? _mm512_maskz_loadu_ps(cols[2], r + 32) : zero;
            __mmask16 mine = cn_lanes16(q * wg->rl, (q + 1) * wg->rl);
            for (int j = 0; j < 6; j++) {
                __m512 p = _mm512_permutex2var_ps(a, pick[j], b);
                if (L->far[j]) p = _mm512_mask_permutexvar_ps(p, L->far[j], pick[j], far);
                d[j] = _mm512_mask_blend_ps(mine, d[j], p);
            }
        }
        bt6(d, h[i]);
    }
    for (int k = 0; k < 6; k++) {
        __m512 col[6] = { h[0][k], h[1][k], h[2][k], h[3][k], h[4][k], h[5][k] }, e[6];
        bt6(col, e);
        for (int r = 0; r < 6; r++) _mm512_storeu_ps(out + (6 * r + k) * step, e[r]);
    }
}

/* the columns a run stores, `per` a tile from column `at` of a row `width` wide: its own and no
 * more. The lanes past them hold the next run of the vector, or none; the next run may be
 * another panel's, which another thread may have stored already (vgg11's 112x112 layers, runs
 * of 4 tiles, were 0.64 off with two threads), and an accumulating store would add twice. */
static int64_t run_cols(const w4geom *wg, int64_t width, int64_t at, int64_t per)
{
    return width - at < per * wg->rl ? width - at : per * wg->rl;
}

/* the maxpool of relu(y) over the 2x2 windows of each lane's 4x4 outputs (pool: its output and
 * argmax), as the CPU maxpool over relu(x) computes it: a window's cells in scan order, a later one
 * taking over only when larger (ties to the first), argmax the cell's index in the map */
__attribute__((target("avx512f"))) static void pool4(const w4geom *wg, const w4lanes *L, const w4vec *vt, int64_t o,
                                                     __m512 out[4][4], const cn_pool_out *pool)
{
    const cn_conv_geom *g = wg->g;
    int64_t pw = g->ow / 2, ph = g->oh / 2;
    __m512 zero = _mm512_setzero_ps();
    __m512i corner = _mm512_loadu_si512(L->corner);
    for (int wr = 0; wr < 2; wr++) {
        __m512 best[2];
        __m512i arg[2];
        for (int wc = 0; wc < 2; wc++) /* the window from cell (2wr, 2wc) of the tile, its cells in scan order */
            for (int cell = 0; cell < 4; cell++) {
                int a = cell / 2, b = cell % 2;
                __m512 cand = _mm512_max_ps(out[2 * wr + a][2 * wc + b], zero); /* relu, as cpu_relu */
                /* the cell's place in the map from its tile row's first row (added per row below) */
                __m512i at = _mm512_add_epi32(corner, _mm512_set1_epi32((int)((2 * wr + a) * g->ow + 2 * wc + b)));
                __mmask16 wins = cell ? _mm512_cmp_ps_mask(cand, best[wc], _CMP_GT_OQ) : 0xFFFF;
                best[wc] = cell ? _mm512_mask_mov_ps(best[wc], wins, cand) : cand;
                arg[wc] = cell ? _mm512_mask_mov_epi32(arg[wc], wins, at) : at;
            }
        for (int64_t q = 0; q < vt->rows; q++) {
            int64_t py = vt->oy0[q] / 2 + wr;
            if (py >= ph) continue; /* the last tile row of a sample cut in half; the next may be another's */
            __m512i pick = _mm512_loadu_si512(L->pooled[q]);
            __mmask16 keep = cn_lanes16(0, run_cols(wg, pw, vt->ox0[q] / 2, 2));
            int64_t to = vt->y0[q] / 4 + (o * ph + py) * pw + vt->ox0[q] / 2; /* the pooled map is a quarter of y's */
            __m512i base = _mm512_set1_epi32((int)(vt->oy0[q] * g->ow + vt->ox0[q]));
            _mm512_mask_storeu_ps(pool->y + to, keep, _mm512_permutex2var_ps(best[0], pick, best[1]));
            _mm512_mask_storeu_epi32(pool->argmax + to, keep,
                                     _mm512_add_epi32(base, _mm512_permutex2var_epi32(arg[0], pick, arg[1])));
        }
    }
}

/* y (+)= A^T M A (+ bias, relu) of vector v for output channel o, its M_e lanes m_step apart from m;
 * pool (or NULL): the maxpool of relu(y) too */
__attribute__((target("avx512f"))) static void transform_out4(const w4geom *wg, const w4lanes *L, const w4vec *vt,
                                                              const float *m, int64_t m_step, int64_t o,
                                                              const float *b, float *y, int accumulate, int relu,
                                                              const cn_pool_out *pool)
{
    const cn_conv_geom *g = wg->g;
    __m512 s[4][6], out[4][4];
    for (int k = 0; k < 6; k++) { /* A^T on the left: M's columns */
        __m512 col[6], t[4];
        for (int i = 0; i < 6; i++) col[i] = _mm512_loadu_ps(m + (6 * i + k) * m_step);
        at6(col, t);
        for (int r = 0; r < 4; r++) s[r][k] = t[r];
    }
    __m512 bias = _mm512_set1_ps(b ? b[o] : 0.0f), zero = _mm512_setzero_ps();
    for (int r = 0; r < 4; r++) {
        at6(s[r], out[r]);
        for (int c = 0; c < 4; c++) {
            if (b) out[r][c] = _mm512_add_ps(out[r][c], bias);
            /* relu as the reference's: max_ps gives its second operand for NaN and for two zeros */
            if (relu) out[r][c] = _mm512_max_ps(out[r][c], zero);
        }
    }
    if (pool) pool4(wg, L, vt, o, out, pool);
    for (int64_t q = 0; q < vt->rows; q++) {
        for (int r = 0; r < 4; r++) {
            int64_t oy = vt->oy0[q] + r;
            if (oy >= g->oh) break;
            float *row = y + vt->y0[q] + (o * g->oh + oy) * g->ow + vt->ox0[q];
            int64_t cols = run_cols(wg, g->ow, vt->ox0[q], 4);
            for (int hh = 0; hh < 2 && 16 * hh < cols; hh++) {
                __m512 lo = _mm512_permutex2var_ps(out[r][0], _mm512_loadu_si512(L->put[q][hh][0]), out[r][1]);
                __m512 hi = _mm512_permutex2var_ps(out[r][2], _mm512_loadu_si512(L->put[q][hh][1]), out[r][3]);
                __m512 val = _mm512_mask_blend_ps(0xCCCC, lo, hi); /* columns 4t+2, 4t+3 from the second pair */
                __mmask16 keep = cn_lanes16(0, cols - 16 * hh);
                if (accumulate) val = _mm512_add_ps(_mm512_maskz_loadu_ps(keep, row + 16 * hh), val);
                _mm512_mask_storeu_ps(row + 16 * hh, keep, val);
            }
        }
    }
}

/* one panel of 3 vectors, in scratch (V then M) */
static void run_panel4(const w4geom *wg, const w4lanes *L, int64_t p, const float *x, const float *u, const float *b,
                       float *y, int accumulate, int relu, const cn_pool_out *pool, float *scratch)
{
    const cn_conv_geom *g = wg->g;
    float *v = scratch, *m = scratch + 36 * g->cin * NR;
    int64_t nv = wg->vecs - 3 * p < 3 ? wg->vecs - 3 * p : 3, step = g->cin * NR;
    w4vec vt[3];
    for (int64_t q = 0; q < nv; q++) vt[q] = vec_of(wg, 3 * p + q);
    if (nv < 3) memset(v, 0, (size_t)(36 * g->cin * NR) * sizeof(float)); /* lanes past the end */
    for (int64_t c = 0; c < g->cin; c++)
        for (int64_t q = 0; q < nv; q++) transform_in4(wg, L, &vt[q], x, c, v + c * NR + 16 * q, step);
    for (int64_t o0 = 0; o0 < g->cout; o0 += KB) {
        int64_t ob = g->cout - o0 < KB ? g->cout - o0 : KB;
        for (int e = 0; e < 36; e++)
            cn_gemm_panel(ob, g->cin, u + e * wg->u_len + o0 * g->cin, v + e * step, m + e * KB * NR, NR, 16 * nv);
        for (int64_t q = 0; q < nv; q++)
            for (int64_t o = 0; o < ob; o++)
                transform_out4(wg, L, &vt[q], m + o * NR + 16 * q, KB * NR, o0 + o, b, y, accumulate, relu, pool);
    }
}

/* ---- the same in AVX2 (a CPU without AVX-512) -------------------------------------------------
 * A panel's 48 tiles are the batch's tiles in order (sample, tile row, tile), in vectors of 8
 * consecutive ones: lane l holds one tile wherever it lies (the end of one tile row and the
 * start of the next share a vector), so every map fills every lane. Each tile's input row is read
 * as two 4-column loads of its own, masked to the image, and 4x4 blocks of them turned in
 * registers into its six columns; its 4x4 outputs are turned back the same way. Every value is
 * the AVX-512 code's in the same order of operations (a tile's transforms do not depend on its
 * lane), and the products are the same (gemm_avx2.c), so the outputs have its bits. */

/* g6 on vectors of 8: the same operations */
__attribute__((target("avx2,fma"), always_inline)) static inline void g6_8(__m256 a0, __m256 a1, __m256 a2, __m256 t[6])
{
    const __m256 q = _mm256_set1_ps(0.25f), s = _mm256_set1_ps(1.0f / 6), s2 = _mm256_set1_ps(1.0f / 12),
                 s4 = _mm256_set1_ps(1.0f / 24);
    __m256 sum = _mm256_add_ps(a0, a2);
    t[0] = _mm256_mul_ps(q, a0);
    t[1] = _mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), s), _mm256_add_ps(sum, a1));
    t[2] = _mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), s), _mm256_sub_ps(sum, a1));
    __m256 even = _mm256_fmadd_ps(s4, a0, _mm256_mul_ps(s, a2)), odd = _mm256_mul_ps(s2, a1);
    t[3] = _mm256_add_ps(even, odd);
    t[4] = _mm256_sub_ps(even, odd);
    t[5] = a2;
}

/* at6 on vectors of 8 */
__attribute__((target("avx2,fma"), always_inline)) static inline void at6_8(const __m256 m[6], __m256 o[4])
{
    const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), eight = _mm256_set1_ps(8.0f);
    __m256 s = _mm256_add_ps(m[1], m[2]), d = _mm256_sub_ps(m[1], m[2]);
    __m256 s2 = _mm256_add_ps(m[3], m[4]), d2 = _mm256_sub_ps(m[3], m[4]);
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s), s2);
    o[1] = _mm256_fmadd_ps(two, d2, d);
    o[2] = _mm256_fmadd_ps(four, s2, s);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(eight, d2, d), m[5]);
}

/* U_e of every channel pair of output panel ip, as transform_panel4 makes them: the 8 output
 * channels side by side, one input channel a vector, gathered from the staged block */
__attribute__((target("avx2,fma"))) static void transform_panel4_8(const w4geom *wg, const float *w, int turned,
                                                                   int64_t ip, float *u)
{
    const cn_conv_geom *g = wg->g;
    cn_taps_block blk;
    int64_t rows = g->cout - ip * 8 < 8 ? g->cout - ip * 8 : 8;
    for (int64_t c = 0; c < g->cin; c++) {
        int64_t c0 = c / CN_TAPS_BLOCK * CN_TAPS_BLOCK;
        if (c == c0) cn_winograd_taps_stage(g, w, turned, ip, c0, &blk);
        __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        __m256i apart = _mm256_mullo_epi32(lane, _mm256_set1_epi32((int)blk.row));
        __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)rows), lane));
        const float *k = blk.f + (c - c0) * blk.chan;
        __m256 kk[9], t[3][6], e[6];
        for (int i = 0; i < 9; i++)
            kk[i] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), k + (turned ? 8 - i : i), apart, live, 4);
        for (int j = 0; j < 3; j++) g6_8(kk[j], kk[3 + j], kk[6 + j], t[j]); /* G g: the kernel's columns */
        float *dst = u + cn_gemm_packed_a_at(g->cin, ip * 8, c);
        for (int i = 0; i < 6; i++) { /* (G g) G^T: row i */
            g6_8(t[0][i], t[1][i], t[2][i], e);
            for (int j = 0; j < 6; j++) _mm256_storeu_ps(dst + (6 * i + j) * wg->u_len, e[j]);
        }
    }
}

/* r[q] <-> column q of the 4x4 blocks in each half: (tile q | tile q+4) rows of 4 become
 * (tiles 0-3 | tiles 4-7) of column q, and back */
__attribute__((target("avx2"), always_inline)) static inline void turn4(__m256 r[4])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    r[0] = _mm256_shuffle_ps(t0, t2, 0x44), r[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    r[2] = _mm256_shuffle_ps(t1, t3, 0x44), r[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
}

/* 8 consecutive tiles of a panel: where each lies */
typedef struct {
    int64_t lane, len;                  /* lanes [lane, lane + len) of the panel */
    int64_t x0[8];                      /* its input's first row's first column: sample, - pad */
    int64_t iy0[8], ix0[8], y0[8];      /* its first input row and column; its sample's output */
    int64_t oy0[8], ox0[8];             /* its first output row and column */
    int32_t ma[8][4], mb[8][4];         /* its input row's columns 0-3 and 4-5 inside the image: load masks */
} w4seg8;

static w4seg8 seg8_of(const w4geom *wg, int64_t first, int64_t len, int64_t lane)
{
    const cn_conv_geom *g = wg->g;
    w4seg8 s;
    memset(&s, 0, sizeof s); /* lanes past len: masks of nothing */
    s.lane = lane, s.len = len;
    for (int64_t l = 0; l < len; l++) {
        int64_t t = first + l, n = t / (wg->th * wg->tw), ty = t / wg->tw % wg->th, tx = t % wg->tw;
        s.iy0[l] = 4 * ty - g->pad_t, s.ix0[l] = 4 * tx - g->pad_l;
        for (int j = 0; j < 4; j++) { /* made once, not for every input channel */
            int64_t x = s.ix0[l] + j;
            s.ma[l][j] = x >= 0 && x < g->w ? -1 : 0;
            s.mb[l][j] = j < 2 && x + 4 >= 0 && x + 4 < g->w ? -1 : 0;
        }
        s.x0[l] = n * g->cin * g->h * g->w + s.ix0[l];
        s.y0[l] = n * g->cout * g->oh * g->ow;
        s.oy0[l] = 4 * ty, s.ox0[l] = 4 * tx;
    }
    return s;
}

/* V of the segment's tiles for input channel c into its lanes of the panel at out (V_e to V_e+1
 * step apart) */
__attribute__((target("avx2,fma"))) static void transform_in4_8(const w4geom *wg, const w4seg8 *s, const float *x,
                                                                int64_t c, float *out, int64_t step)
{
    const cn_conv_geom *g = wg->g;
    __m256 h[6][6];
    const float *xc = x + c * g->h * g->w;
    for (int i = 0; i < 6; i++) {
        __m128 a[8], b[8];
        for (int l = 0; l < 8; l++) {
            int64_t iy = s->iy0[l] + i;
            if (l < s->len && iy >= 0 && iy < g->h) {
                const float *r = xc + s->x0[l] + iy * g->w;
                a[l] = _mm_maskload_ps(r, _mm_loadu_si128((const __m128i *)s->ma[l]));
                b[l] = _mm_maskload_ps(r + 4, _mm_loadu_si128((const __m128i *)s->mb[l]));
            } else {
                a[l] = b[l] = _mm_setzero_ps();
            }
        }
        __m256 d[6], lo[4], hi[4];
        for (int q = 0; q < 4; q++) {
            lo[q] = _mm256_insertf128_ps(_mm256_castps128_ps256(a[q]), a[q + 4], 1);
            hi[q] = _mm256_insertf128_ps(_mm256_castps128_ps256(b[q]), b[q + 4], 1);
        }
        turn4(lo), turn4(hi);
        d[0] = lo[0], d[1] = lo[1], d[2] = lo[2], d[3] = lo[3], d[4] = hi[0], d[5] = hi[1];
        bt6_8(d, h[i]);
    }
    __m256i keep = cn_first8(s->len);
    float *o = out + s->lane;
    for (int k = 0; k < 6; k++) {
        __m256 col[6] = { h[0][k], h[1][k], h[2][k], h[3][k], h[4][k], h[5][k] }, e[6];
        bt6_8(col, e);
        for (int r = 0; r < 6; r++) _mm256_maskstore_ps(o + (6 * r + k) * step, keep, e[r]);
    }
}

/* pool4 for the segment's tiles: the same comparisons, in the same order */
__attribute__((target("avx2"))) static void pool4_8(const w4geom *wg, const w4seg8 *s, int64_t o, __m256 out[4][4],
                                                   const cn_pool_out *pool)
{
    const cn_conv_geom *g = wg->g;
    int64_t pw = g->ow / 2, ph = g->oh / 2;
    __m256 zero = _mm256_setzero_ps();
    for (int wr = 0; wr < 2; wr++)
        for (int wc = 0; wc < 2; wc++) { /* the window from cell (2wr, 2wc) of each tile, its cells in scan order */
            __m256 best = zero;
            __m256i arg = _mm256_setzero_si256();
            for (int cell = 0; cell < 4; cell++) {
                int a = cell / 2, b = cell % 2;
                __m256 cand = _mm256_max_ps(out[2 * wr + a][2 * wc + b], zero); /* relu, as cpu_relu */
                __m256i at = _mm256_set1_epi32((int)((2 * wr + a) * g->ow + 2 * wc + b));
                __m256 wins = cell ? _mm256_cmp_ps(cand, best, _CMP_GT_OQ) : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
                best = _mm256_blendv_ps(best, cand, wins);
                arg = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(arg), _mm256_castsi256_ps(at), wins));
            }
            float v[8];
            int32_t cellat[8];
            _mm256_storeu_ps(v, best);
            _mm256_storeu_si256((__m256i *)cellat, arg);
            for (int64_t l = 0; l < s->len; l++) {
                int64_t py = s->oy0[l] / 2 + wr, px = s->ox0[l] / 2 + wc;
                if (py >= ph || px >= pw) continue;
                int64_t to = s->y0[l] / 4 + (o * ph + py) * pw + px; /* the pooled map is a quarter of y's */
                pool->y[to] = v[l];
                pool->argmax[to] = (int32_t)(s->oy0[l] * g->ow + s->ox0[l]) + cellat[l];
            }
        }
}

/* y (+)= A^T M A (+ bias, relu) of the segment's tiles for output channel o, M's lanes of the
 * panel at m (M_e to M_e+1 m_step apart); pool (or NULL): the maxpool of relu(y) too */
__attribute__((target("avx2,fma"))) static void transform_out4_8(const w4geom *wg, const w4seg8 *s, const float *m,
                                                                 int64_t m_step, int64_t o, const float *b, float *y,
                                                                 int accumulate, int relu, const cn_pool_out *pool)
{
    const cn_conv_geom *g = wg->g;
    __m256 t[4][6], out[4][4];
    m += s->lane; /* 8 lanes from a multiple of 8: inside the panel's row */
    for (int k = 0; k < 6; k++) { /* A^T on the left: M's columns */
        __m256 col[6], r[4];
        for (int i = 0; i < 6; i++) col[i] = _mm256_loadu_ps(m + (6 * i + k) * m_step);
        at6_8(col, r);
        for (int q = 0; q < 4; q++) t[q][k] = r[q];
    }
    __m256 bias = _mm256_set1_ps(b ? b[o] : 0.0f), zero = _mm256_setzero_ps();
    for (int r = 0; r < 4; r++) {
        at6_8(t[r], out[r]);
        for (int c = 0; c < 4; c++) {
            if (b) out[r][c] = _mm256_add_ps(out[r][c], bias);
            /* relu as the reference's: max_ps gives its second operand for NaN and for two zeros */
            if (relu) out[r][c] = _mm256_max_ps(out[r][c], zero);
        }
    }
    if (pool) pool4_8(wg, s, o, out, pool);
    for (int r = 0; r < 4; r++) {
        __m256 row[4] = { out[r][0], out[r][1], out[r][2], out[r][3] };
        turn4(row); /* row[q]: (tile q | tile q+4)'s 4 outputs of row r */
        for (int64_t l = 0; l < s->len; l++) {
            int64_t oy = s->oy0[l] + r, cols = g->ow - s->ox0[l];
            if (oy >= g->oh) continue;
            float *at = y + s->y0[l] + (o * g->oh + oy) * g->ow + s->ox0[l];
            __m128 v = l < 4 ? _mm256_castps256_ps128(row[l]) : _mm256_extractf128_ps(row[l - 4], 1);
            if (cols >= 4) {
                if (accumulate) v = _mm_add_ps(_mm_loadu_ps(at), v);
                _mm_storeu_ps(at, v);
            } else {
                __m128i keep = _mm_cmpgt_epi32(_mm_set1_epi32((int)cols), _mm_setr_epi32(0, 1, 2, 3));
                if (accumulate) v = _mm_add_ps(_mm_maskload_ps(at, keep), v);
                _mm_maskstore_ps(at, keep, v);
            }
        }
    }
}

/* one panel of 48 tiles (from 48p), in scratch (V then M) */
static void run_panel4_8(const w4geom *wg, int64_t tiles, int64_t p, const float *x, const float *u, const float *b,
                         float *y, int accumulate, int relu, const cn_pool_out *pool, float *scratch)
{
    const cn_conv_geom *g = wg->g;
    float *v = scratch, *m = scratch + 36 * g->cin * NR;
    int64_t first = p * NR, count = tiles - first < NR ? tiles - first : NR, step = g->cin * NR;
    w4seg8 seg[NR / 8];
    int nseg = 0;
    for (int64_t l = 0; l < count; l += 8) seg[nseg++] = seg8_of(wg, first + l, count - l < 8 ? count - l : 8, l);
    if (count < NR) memset(v, 0, (size_t)(36 * g->cin * NR) * sizeof(float)); /* lanes past the end */
    for (int64_t c = 0; c < g->cin; c++)
        for (int q = 0; q < nseg; q++) transform_in4_8(wg, &seg[q], x, c, v + c * NR, step);
    for (int64_t o0 = 0; o0 < g->cout; o0 += KB) {
        int64_t ob = g->cout - o0 < KB ? g->cout - o0 : KB;
        for (int e = 0; e < 36; e++)
            cn_gemm_panel(ob, g->cin, u + e * wg->u_len + o0 * g->cin, v + e * step, m + e * KB * NR, NR, count);
        for (int q = 0; q < nseg; q++)
            for (int64_t o = 0; o < ob; o++)
                transform_out4_8(wg, &seg[q], m + o * NR, KB * NR, o0 + o, b, y, accumulate, relu, pool);
    }
}

/* the panels in parallel (the vector work in a function of its own: core_impl.h, CN_PAR_FOR) */
static void transform_weights4(const w4geom *wg, const float *w, int turned, float *u)
{
    int64_t panels = (wg->g->cout + 7) / 8;
    int v16 = cn_gemm_avx512();
    CN_PAR_FOR(wg->g->cout * wg->g->cin >= 4096, schedule(static),
        for (int64_t ip = 0; ip < panels; ip++) {
            if (v16) transform_panel4(wg, w, turned, ip, u);
            else transform_panel4_8(wg, w, turned, ip, u);
        });
}

void cn_cpu_winograd4_prepare(const cn_conv_geom *g, const float *w, int turned, float *u)
{
    w4geom wg = w4geom_of(g);
    transform_weights4(&wg, w, turned, u);
}

void cn_cpu_winograd4_conv(const cn_conv_geom *g, const float *x, const float *w, const float *u_made, const float *b,
                           float *y, int accumulate, int relu, const cn_pool_out *pool, float *work)
{
    w4geom wg = w4geom_of(g);
    /* the products read their B panels with aligned loads: the spare panel on 64 bytes */
    float *spare = (float *)(((uintptr_t)(work + 36 * wg.u_len) + 63) & ~(uintptr_t)63);
    const float *u = u_made;
    if (!u) transform_weights4(&wg, w, 0, work), u = work;
    size_t per_thread = (size_t)panel_floats(g);
    if (!cn_gemm_avx512()) { /* AVX2: panels of 48 tiles in order */
        int64_t tiles = g->n * wg.th * wg.tw, panels = (tiles + NR - 1) / NR;
        CN_PAR_FOR(panels > 1 && tiles * g->cin * g->cout >= 1 << 18, schedule(static),
            for (int64_t p = 0; p < panels; p++) {
                float *scratch = cn_thread_scratch(per_thread);
                if (scratch) {
                    run_panel4_8(&wg, tiles, p, x, u, b, y, accumulate, relu, pool, scratch);
                } else { /* the heap said no: the workspace's one panel, a thread at a time (the same bits) */
                    _Pragma("omp critical(cn_winograd_spare)")
                    run_panel4_8(&wg, tiles, p, x, u, b, y, accumulate, relu, pool, spare);
                }
            });
        return;
    }
    w4lanes L; /* AVX-512's runs alone: a map under 9 outputs across would overfill its tables */
    lanes_of(&wg, &L);
    CN_PAR_FOR(wg.panels > 1 && wg.vecs * 16 * g->cin * g->cout >= 1 << 18, schedule(static),
        for (int64_t p = 0; p < wg.panels; p++) {
            float *scratch = cn_thread_scratch(per_thread);
            if (scratch) {
                run_panel4(&wg, &L, p, x, u, b, y, accumulate, relu, pool, scratch);
            } else { /* the heap said no: the workspace's one panel, a thread at a time (the same bits) */
                _Pragma("omp critical(cn_winograd_spare)")
                run_panel4(&wg, &L, p, x, u, b, y, accumulate, relu, pool, spare);
            }
        });
}

#else
void cn_cpu_winograd4_prepare(const cn_conv_geom *g, const float *w, int turned, float *u)
{
    (void)g, (void)w, (void)turned, (void)u; /* never: cn_cpu_winograd_can needs AVX2 or AVX-512 */
}
void cn_cpu_winograd4_conv(const cn_conv_geom *g, const float *x, const float *w, const float *u_made, const float *b,
                           float *y, int accumulate, int relu, const cn_pool_out *pool, float *work)
{
    (void)g, (void)x, (void)w, (void)u_made, (void)b, (void)y, (void)accumulate, (void)relu, (void)pool, (void)work; /* never */
}
#endif
