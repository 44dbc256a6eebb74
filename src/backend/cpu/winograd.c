/* winograd.c — 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2,3x3) (Lavin and
 * Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each 2x2 block of outputs
 * comes from a 4x4 tile of the input with 16 multiplications per pair of channels instead of 36.
 *
 *   U = G g G^T      per (output, input) channel pair: 16 values, U_e for e = 0..15
 *   V = B^T d B      per (tile, input channel)
 *   M_e = U_e . V_e  for each e: a product (Cout x Cin) . (Cin x tiles)
 *   y = A^T M A      per (tile, output channel): the 2x2 outputs
 *
 * Tiles go 48 at a time (a panel of the micro-kernel's width, gemm.h): a thread transforms its
 * panel's input into V (16 x Cin x 48 floats, the 16 products' B panels as they are read), runs
 * the 16 products on the packed panels straight through cn_gemm_panel, and transforms 32 output
 * channels at a time back into y while their M is in L1. U is packed once per call as the
 * products' A. A tile's arithmetic does not depend on which thread runs it, so the bits are the
 * same on any number of threads. The transforms use additions and subtractions only (and
 * halvings in U), so the result differs from the direct product by a few roundings: tested
 * against the double-precision reference on random shapes by tests/test_backend.c.
 *
 * With AVX-512 a tile row's 2*L+2 input columns are loaded as vectors and split into even and
 * odd columns in registers, so 16 tiles of a row fill a vector; with AVX2 alone, 8 tiles (the
 * same values: the same bits); elsewhere conv.c runs the direct products. Maps 12 or more
 * outputs across and down (with AVX2 alone, 9 or more) run F(4x4,3x3) instead (winograd4.c,
 * handed over at this file's entry points). The weight gradient's F(3x3,2x2) and F(3x3,4x4) are
 * at the end of the file (AVX-512 and AVX2). */
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"
#include "gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CN_X86 1
#endif

#define NR CN_GEMM_NR /* tiles in a panel */
#define KB 32         /* output channels transformed back together: their M (16 x KB x NR) in L1 */

int cn_cpu_switch_mode(cn_cpu_switch *s)
{
    if (!s->read) {
        const char *env = getenv(s->env);
        s->mode = env && (!strcmp(env, "0") || !strcmp(env, "1")) ? env[0] - '0' : -1, s->read = 1;
    }
    return s->mode;
}

void cn_cpu_switch_set(cn_cpu_switch *s, int mode) { s->mode = mode < 0 ? -1 : mode > 0, s->read = 1; }

static cn_cpu_switch force = { "CN_WINOGRAD", -1, 0 };

void cn_cpu_winograd_force(int mode) { cn_cpu_switch_set(&force, mode); }

static int forced(void) { return cn_cpu_switch_mode(&force); }

typedef struct wgeom {
    const cn_conv_geom *g;
    int64_t th, tw;  /* tiles down and across a map */
    int64_t tiles;   /* over the batch */
    int64_t panels;  /* of NR tiles */
    int64_t u_len;   /* floats of one packed U_e */
} wgeom;

static wgeom wgeom_of(const cn_conv_geom *g)
{
    wgeom w = { g, (g->oh + 1) / 2, (g->ow + 1) / 2, 0, 0, cn_gemm_packed_a_len(g->cout, g->cin) };
    w.tiles = g->n * w.th * w.tw;
    w.panels = (w.tiles + NR - 1) / NR;
    return w;
}

int cn_cpu_winograd_can(const cn_conv_geom *g)
{
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->groups == 1 &&
           g->oh >= 1 && g->ow >= 1 && (cn_gemm_avx512() || cn_gemm_avx2());
}

/* The rule, from `convnet bench` of single 3x3 pad=1 convolutions, forward time, CN_WINOGRAD=0
 * against 1 (the note of issue 18). Training batches, 2 threads: 32x32 64->64 2.1x, 14x14
 * 32->64 1.9x, 8x8 256->256 1.9x, 6x6 64->64 2.3x, 4x4 512->512 1.2x, 28x28 8->16 1.05x;
 * 28x28 4->8 0.88x and one input channel 0.78x. One image, 1 thread, where transforming the
 * weights costs as much as at any batch: 32x32 64->64 1.7x, 28x28 16->16 1.05x, 14x14 32->64
 * 1.1x, 8x8 64->64 0.83x, 4x4 64->64 0.68x. So: 8 channels or more on each side and 9 tiles
 * (a 5x5 map) or more an image. The rule looks at one image's shapes, never the batch's, so an
 * image gets the same bits alone and in any batch (tests/test_model.c). */
int cn_cpu_winograd_way(const cn_conv_geom *g)
{
    if (!cn_cpu_winograd_can(g)) return 0;
    if (forced() >= 0) return forced();
    wgeom one = wgeom_of(g);
    return g->cin >= 8 && g->cout >= 8 && one.th * one.tw >= 9;
}

static cn_cpu_switch force_batch = { "CN_WINOGRAD_BATCH", -1, 0 };

void cn_cpu_winograd_batch_force(int mode) { cn_cpu_switch_set(&force_batch, mode); }

/* In training an output's bits need not be its image's alone (the step's gradient sums the
 * batch), so there the batch's tiles may pick F(2x2,3x3) where one image's do not: the forward,
 * and the input gradient (only ever in training). From `convnet bench` of two 3x3 pad=1
 * convolutions C->C (training, 2 threads, twice each; the second's backward less the first's is
 * its input gradient), CN_WINOGRAD_BATCH=0 against 1, forward and input gradient, ms:
 *   4x4 maps, 512 channels: batch 16 (64 tiles) 4.5-4.6 -> 4.6-4.7 and 5.7-5.8 -> 5.7-5.9;
 *     batch 24 6.0 -> 5.5-5.8 and 7.3-7.4 -> 6.7-7.2; batch 32 7.8 -> 6.3-6.6 and 8.8 -> 7.6;
 *     batch 64 15.4-15.6 -> 12.9-13.0 and 16.5-16.6 -> 13.7-14.5
 *   4x4, 384: batch 32 4.7-4.9 -> 4.5-4.7 and 5.5-5.6 -> 4.7-5.0; batch 64 8.4-8.8 -> 7.6-7.8
 *     and 9.0-9.3 -> 7.9-8.3
 *   4x4, 256: batch 32 (128 tiles) 2.4 -> 2.6-2.9 and 2.7 -> 2.7-3.0; batch 64 3.9-4.0 -> 3.5-3.6
 *     and 4.2-4.3 -> 3.6-3.7; batch 128 7.5-7.6 -> 6.0-7.1; 128 channels at batch 128: even
 *   2x2, 512: batch 8 1.6 -> 2.2-2.3; batch 32 4.1 -> 2.8-2.9; batch 128 15.3-15.6 -> 8.3-8.7;
 *     256 at batch 32 1.3-1.4 -> 1.7, at 64 2.3 -> 2.0
 *   3x3 (tiles over 4x4), 512 at batch 64 11.6-11.8 -> 10.0-10.3, but 256 at batch 64 2.1 -> 2.9-3.0
 * So: maps of even size (the tiles cover them exactly), 256 channels or more on each side, and a
 * tile over the batch for every 512 of the fewer channels, 128 of them at 512 (resnet18-cifar's
 * 4x4 maps at batch 32). 2x2 maps pay sooner (at 512 channels from batch 16: 2.7-3.2 ->
 * 2.2-2.5 ms), but the rule keeps to one measure. */
int cn_cpu_winograd_train_way(const cn_conv_geom *g)
{
    if (cn_cpu_winograd_way(g)) return 1;
    if (!cn_cpu_winograd_can(g) || forced() >= 0) return 0;
    if (cn_cpu_switch_mode(&force_batch) >= 0) return force_batch.mode;
    int64_t c = g->cin < g->cout ? g->cin : g->cout;
    return g->oh % 2 == 0 && g->ow % 2 == 0 && c >= 256 && wgeom_of(g).tiles * c >= 128 * 512;
}

#define GROUP_PANELS 4 /* panels transformed together where by_groups */
/* Few tiles and many channels (resnet18-cifar's 4x4 maps of 512 channels: 3 panels at batch 32,
 * and U is 16 MB): panel by panel, each panel's products read all of U from memory again. Here a
 * group of panels is transformed at once, the products run one U_e at a time over the whole
 * group (a thread's U_e and V_e stay in its cache), and M is transformed back last. Each output
 * is the same sum in the same order as run_panel's, so the bits are the same. */
static int groups_forced = -1;

void cn_cpu_winograd_groups(int mode) { groups_forced = mode < 0 ? -1 : mode > 0; }

/* the rule, from `convnet bench` (training, 2 threads, forward time, panels against groups):
 * 7x7 512->512 8.1 -> 5.5 ms at batch 8 and 24.3 -> 20.0 at 32 (ResNet-18's last stage on
 * ImageNet's images); 14x14 256->256 4.95 -> 5.04 and 14.2 -> 13.9; 8x8 256->256 5.0 -> 5.4
 * and 16x16 128->128 3.7 -> 5.1 at batch 32: only U past 4 MB pays */
static int by_groups(const wgeom *wg)
{
    if (groups_forced >= 0) return groups_forced;
    return wg->g->cin * wg->g->cout > 256 * 256;
}

/* floats of one thread's V and M */
static int64_t panel_floats(const cn_conv_geom *g) { return 16 * g->cin * NR + 16 * KB * NR; }

int64_t cn_cpu_winograd_work(const cn_conv_geom *g)
{
    if (cn_cpu_winograd4_way(g)) return cn_cpu_winograd4_work(g);
    wgeom wg = wgeom_of(g);
    /* U; a spare panel's V and M; where by groups, a group's V and M (64-byte aligned) */
    int64_t group = by_groups(&wg) ? GROUP_PANELS * 16 * NR * (g->cin + g->cout) + 16 : 0;
    return 16 * wg.u_len + 16 + panel_floats(g) + group; /* + 16: the spare panel 64-byte aligned */
}

#ifdef CN_X86
#include "winograd_taps.h"

/* U_e (e = 4i + j) of every channel pair into the products' packed A: G g G^T with G's rows
 * (1 0 0) (1/2 1/2 1/2) (1/2 -1/2 1/2) (0 0 1). The 8 output channels of a panel of A go
 * side by side in a vector, as the packed panel holds them (rows past Cout zero), two input
 * channels a vector (a panel's columns c and c+1 lie side by side): half the gathers. */
_Static_assert(CN_GEMM_MR == 8, "a panel of A is one vector of 8 floats");
__attribute__((target("avx512f"))) static void transform_panel(const wgeom *wg, const float *w, int turned, int64_t ip,
                                                                float *u)
{
    const cn_conv_geom *g = wg->g;
    __m512 half = _mm512_set1_ps(0.5f);
    cn_taps_block blk;
    for (int64_t c = 0; c < g->cin; c += 2) {
        int64_t c0 = c / CN_TAPS_BLOCK * CN_TAPS_BLOCK;
        if (c == c0) cn_winograd_taps_stage(g, w, turned, ip, c0, &blk);
        __m512 kk[9], t[4][3];
        __mmask16 both = cn_winograd_taps(g, &blk, turned, ip, c0, c, kk);
        for (int j = 0; j < 3; j++) {
            t[0][j] = kk[j];
            t[1][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(kk[j], kk[3 + j]), kk[6 + j]));
            t[2][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(kk[j], kk[3 + j]), kk[6 + j]));
            t[3][j] = kk[6 + j];
        }
        float *dst = u + cn_gemm_packed_a_at(g->cin, ip * 8, c);
        for (int i = 0; i < 4; i++) {
            _mm512_mask_storeu_ps(dst + (4 * i) * wg->u_len, both, t[i][0]);
            _mm512_mask_storeu_ps(dst + (4 * i + 1) * wg->u_len, both,
                                  _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(t[i][0], t[i][1]), t[i][2])));
            _mm512_mask_storeu_ps(dst + (4 * i + 2) * wg->u_len, both,
                                  _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(t[i][0], t[i][1]), t[i][2])));
            _mm512_mask_storeu_ps(dst + (4 * i + 3) * wg->u_len, both, t[i][2]);
        }
    }
}

/* U_e of every channel pair of output panel ip, as transform_panel makes them (zeros past Cout),
 * one kernel at a time: AVX2's (the segments below), where AVX-512's gathers are missing */
static void transform_panel_one(const wgeom *wg, const float *w, int turned, int64_t ip, float *u)
{
    const cn_conv_geom *g = wg->g;
    for (int64_t c = 0; c < g->cin; c++)
        for (int64_t o = ip * 8; o < ip * 8 + 8; o++) {
            float k[9] = { 0 }, t[4][3], *dst = u + cn_gemm_packed_a_at(g->cin, o, c);
            for (int i = 0; i < 9 && o < g->cout; i++) /* turned: w (Cin, Cout, 9) seen from g, flipped */
                k[i] = turned ? w[(c * g->cout + o) * 9 + 8 - i] : w[(o * g->cin + c) * 9 + i];
            for (int j = 0; j < 3; j++) {
                t[0][j] = k[j];
                t[1][j] = 0.5f * ((k[j] + k[3 + j]) + k[6 + j]);
                t[2][j] = 0.5f * ((k[j] - k[3 + j]) + k[6 + j]);
                t[3][j] = k[6 + j];
            }
            for (int i = 0; i < 4; i++) {
                dst[(4 * i) * wg->u_len] = t[i][0];
                dst[(4 * i + 1) * wg->u_len] = 0.5f * ((t[i][0] + t[i][1]) + t[i][2]);
                dst[(4 * i + 2) * wg->u_len] = 0.5f * ((t[i][0] - t[i][1]) + t[i][2]);
                dst[(4 * i + 3) * wg->u_len] = t[i][2];
            }
        }
}

/* the panels in parallel (the vector work in a function of its own: core_impl.h, CN_PAR_FOR) */
static void transform_weights(const wgeom *wg, const float *w, int turned, float *u)
{
    int64_t panels = (wg->g->cout + 7) / 8;
    CN_PAR_FOR(wg->g->cout * wg->g->cin >= 4096, schedule(static),
        for (int64_t ip = 0; ip < panels; ip++) {
            if (cn_gemm_avx512()) transform_panel(wg, w, turned, ip, u);
            else transform_panel_one(wg, w, turned, ip, u);
        });
}

/* A run of at most 16 tiles (a vector's lanes [lane, lane+len) of a panel) in one or two tile
 * rows. A row is a part: its tiles' 2*len+2 input columns are read as vectors and split into
 * even and odd columns in registers. A long row (more than 8 tiles) is one part read as four
 * vectors; maps of 7 tiles across or fewer put two rows in a segment, each read as one vector
 * (2*7+2 = 16 columns), so that a 14x14 map fills 14 lanes instead of 7; maps of 8 tiles
 * across (16x16) put two rows in a segment too, each read as two vectors (18 columns: `wide`),
 * filling 16 lanes instead of 8. */
typedef struct {
    int64_t n, ty, tx, len; /* tiles tx .. tx+len-1 of tile row ty of sample n */
} part;

typedef struct {
    int64_t lane, len;
    int parts;
    part p[2];
    int wide;               /* two parts of 8 tiles */
    __mmask16 cols[4];      /* one part: its columns from 2tx - pad_l + 0, 16, 2, 18 inside the image;
                             * two: [q] part q's 16 columns from 2tx - pad_l; wide: [2q], [2q+1]
                             * part q's columns from 2tx - pad_l + 0 and + 16 */
    int32_t pick[4][16];    /* two parts: lane l's column j from the two parts' vectors */
    int32_t put[16];        /* two parts: part 1's outputs, pairs of columns, from lane p[0].len on */
} segment;

static const int col_at[4] = { 0, 16, 2, 18 };


/* the columns of a vector of input from column `from` of a row that lie inside the image and
 * among the `want` wanted */
static __mmask16 inside(const cn_conv_geom *g, int64_t from, int64_t want)
{
    return cn_lanes16(-from, g->w - from) & cn_lanes16(0, want);
}

/* tile t's place */
static part part_at(const wgeom *wg, int64_t t, int64_t len)
{
    int64_t row = t / wg->tw;
    return (part){ row / wg->th, row % wg->th, t % wg->tw, len };
}

/* the segments of panel p's tiles; returns how many */
static int segments_of(const wgeom *wg, int64_t p, segment *seg)
{
    const cn_conv_geom *g = wg->g;
    int64_t t = p * NR, end = t + NR < wg->tiles ? t + NR : wg->tiles;
    int count = 0;
    while (t < end) {
        segment *s = &seg[count++];
        memset(s, 0, sizeof *s);
        s->lane = t - p * NR;
        int64_t len = wg->tw - t % wg->tw;
        if (len > 16) len = 16;
        if (len > end - t) len = end - t;
        s->p[0] = part_at(wg, t, len);
        if (wg->tw > 8) {
            s->parts = 1;
            for (int q = 0; q < 4; q++)
                s->cols[q] = inside(g, 2 * s->p[0].tx - g->pad_l + col_at[q], 2 * len + 2 - col_at[q]);
            s->len = len;
            t += len;
            continue;
        }
        t += len;
        int64_t len1 = wg->tw < end - t ? wg->tw : end - t; /* the next row, whole, where the panel has it */
        s->parts = 2;
        s->p[1] = part_at(wg, t, len1);
        t += len1;
        s->len = len + len1;
        s->wide = wg->tw == 8; /* whole rows: panels of 48 tiles start on a row */
        for (int q = 0; q < 2; q++) {
            int64_t from = 2 * s->p[q].tx - g->pad_l, want = s->p[q].len ? 2 * s->p[q].len + 2 : 0;
            if (s->wide) s->cols[2 * q] = inside(g, from, want), s->cols[2 * q + 1] = inside(g, from + 16, want - 16);
            else s->cols[q] = inside(g, from, want);
        }
        for (int l = 0; l < 16; l++) /* wide: lane l's columns from its part's two vectors */
            for (int j = 0; j < 4; j++)
                s->pick[j][l] = s->wide ? 2 * (l % 8) + j
                                : l < len ? 2 * l + j : l < s->len ? 16 + 2 * (l - (int)len) + j : 0;
        for (int l = 0; l < 16; l++) /* output pair l / 2 of part 1 is lane len + l / 2 of o0 (left) and o1 */
            s->put[l] = len + l / 2 < 16 ? (int32_t)(len + l / 2) + (l % 2 ? 16 : 0) : 0;
    }
    return count;
}

/* input row iy of part q's tiles, from column 2tx - pad_l, in rows of plane (x of channel c of sample n);
 * NULL where the row lies outside the image (its values are zeros) */
static inline const char *part_row(const cn_conv_geom *g, const part *pt, const float *x, int64_t c, int i)
{
    int64_t iy = 2 * pt->ty - g->pad_t + i;
    if (iy < 0 || iy >= g->h) return NULL;
    /* masked-off lanes are not read, so the address may lie before the row */
    return (const char *)(x + ((pt->n * g->cin + c) * g->h + iy) * g->w) + (2 * pt->tx - g->pad_l) * (int64_t)sizeof(float);
}

/* B^T's rows (1 0 -1 0) (0 1 1 0) (0 -1 1 0) (0 1 0 -1) applied to four vectors: a row of d
 * (d B) or a column of d B (B^T d B), in the forward's and the weight gradient's input transform */
__attribute__((target("avx512f"), always_inline)) static inline void bt4(__m512 a, __m512 b, __m512 c, __m512 d,
                                                                        __m512 out[4])
{
    out[0] = _mm512_sub_ps(a, c);
    out[1] = _mm512_add_ps(b, c);
    out[2] = _mm512_sub_ps(c, b);
    out[3] = _mm512_sub_ps(b, d);
}

/* V's lanes of one segment and input channel c: B^T d B of each tile's 4x4 input d, with
 * B^T's rows (1 0 -1 0) (0 1 1 0) (0 -1 1 0) (0 1 0 -1); each row of d is transformed as it is
 * loaded (d B), then the columns (B^T), so 16 vectors stay live */
__attribute__((target("avx512f"))) static void transform_in(const cn_conv_geom *g, const segment *s,
                                                            const float *x, int64_t c, float *v)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512i pick[4];
    for (int j = 0; j < 4; j++) pick[j] = _mm512_loadu_si512(s->pick[j]); /* zeros unless two parts */
    __m512 h[4][4], zero = _mm512_setzero_ps();
    for (int i = 0; i < 4; i++) {
        __m512 d0, d1, d2, d3;
        if (s->parts == 1) {
            const char *row = part_row(g, &s->p[0], x, c, i);
            if (!row) {
                h[i][0] = h[i][1] = h[i][2] = h[i][3] = zero;
                continue;
            }
            fetch_ahead(g, row, 3);
            __m512 a[4];
            for (int q = 0; q < 4; q++) a[q] = _mm512_maskz_loadu_ps(s->cols[q], row + col_at[q] * (int)sizeof(float));
            d0 = _mm512_permutex2var_ps(a[0], even, a[1]), d1 = _mm512_permutex2var_ps(a[0], odd, a[1]);
            d2 = _mm512_permutex2var_ps(a[2], even, a[3]), d3 = _mm512_permutex2var_ps(a[2], odd, a[3]);
        } else if (s->wide) { /* part 0 in lanes 0-7, part 1 in lanes 8-15 */
            __m512 dq[2][4];
            for (int q = 0; q < 2; q++) {
                const char *row = part_row(g, &s->p[q], x, c, i);
                __m512 a = zero, b = zero;
                if (row && s->p[q].len) {
                    a = _mm512_maskz_loadu_ps(s->cols[2 * q], row);
                    b = _mm512_maskz_loadu_ps(s->cols[2 * q + 1], row + 16 * (int)sizeof(float));
                    fetch_ahead(g, row, 2);
                }
                for (int j = 0; j < 4; j++) dq[q][j] = _mm512_permutex2var_ps(a, pick[j], b);
            }
            d0 = _mm512_mask_blend_ps(0xFF00, dq[0][0], dq[1][0]), d1 = _mm512_mask_blend_ps(0xFF00, dq[0][1], dq[1][1]);
            d2 = _mm512_mask_blend_ps(0xFF00, dq[0][2], dq[1][2]), d3 = _mm512_mask_blend_ps(0xFF00, dq[0][3], dq[1][3]);
        } else {
            __m512 a[2];
            for (int q = 0; q < 2; q++) {
                const char *row = part_row(g, &s->p[q], x, c, i);
                a[q] = row && s->p[q].len ? _mm512_maskz_loadu_ps(s->cols[q], row) : zero;
                if (row) fetch_ahead(g, row, 1);
            }
            d0 = _mm512_permutex2var_ps(a[0], pick[0], a[1]), d1 = _mm512_permutex2var_ps(a[0], pick[1], a[1]);
            d2 = _mm512_permutex2var_ps(a[0], pick[2], a[1]), d3 = _mm512_permutex2var_ps(a[0], pick[3], a[1]);
        }
        bt4(d0, d1, d2, d3, h[i]);
    }
    __mmask16 keep = cn_lanes16(0, s->len);
    float *out = v + c * NR + s->lane;
    int64_t step = g->cin * NR; /* from V_e to V_e+1 */
    for (int j = 0; j < 4; j++) {
        __m512 e[4];
        bt4(h[0][j], h[1][j], h[2][j], h[3][j], e);
        for (int r = 0; r < 4; r++) _mm512_mask_storeu_ps(out + (4 * r + j) * step, keep, e[r]);
    }
}

/* y (+)= v's first `cols` columns at row oy of part pt's outputs for channel o */
__attribute__((target("avx512f"))) static inline void put_row(const cn_conv_geom *g, const part *pt, int64_t o, int q,
                                                              __m512 v, int64_t first, float *y, int accumulate)
{
    int64_t oy = 2 * pt->ty + q, ox0 = 2 * pt->tx + first;
    if (oy >= g->oh) return;
    __mmask16 k = cn_lanes16(0, (2 * pt->len - first < g->ow - ox0 ? 2 * pt->len - first : g->ow - ox0));
    if (!k) return;
    float *row = y + ((pt->n * g->cout + o) * g->oh + oy) * g->ow + ox0;
    if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(k, row), v);
    _mm512_mask_storeu_ps(row, k, v);
}

/* the maxpool of relu(y) over each tile's 2x2 outputs (pool: its output and argmax), where the
 * map's size is even: a tile is a window. As the CPU maxpool over relu(x) computes it: the
 * window's cells in scan order, a later one taking over only when larger (ties to the first),
 * argmax the cell's index in the map. */
__attribute__((target("avx512f"))) static void pool_tile(const cn_conv_geom *g, const segment *s, int64_t o,
                                                         __m512 v[2][2], const cn_pool_out *pool)
{
    const __m512i two = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512 zero = _mm512_setzero_ps();
    int64_t len0 = s->p[0].len;
    /* each lane's window corner in the map: part 0's lanes, then part 1's */
    __m512i at = _mm512_add_epi32(_mm512_set1_epi32((int)(2 * s->p[0].ty * g->ow + 2 * s->p[0].tx)), two);
    if (s->parts == 2)
        at = _mm512_mask_add_epi32(at, cn_lanes16(len0, 16),
                                   _mm512_set1_epi32((int)(2 * s->p[1].ty * g->ow + 2 * s->p[1].tx - 2 * len0)), two);
    static const int cell[4][2] = { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 } };
    __m512 best = _mm512_max_ps(v[0][0], zero);
    __m512i arg = at;
    for (int c = 1; c < 4; c++) {
        __m512 cand = _mm512_max_ps(v[cell[c][0]][cell[c][1]], zero); /* relu, as cpu_relu */
        __mmask16 wins = _mm512_cmp_ps_mask(cand, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, wins, cand);
        arg = _mm512_mask_mov_epi32(arg, wins, _mm512_add_epi32(at, _mm512_set1_epi32((int)(cell[c][0] * g->ow + cell[c][1]))));
    }
    int64_t pw = g->ow / 2, plane = (g->oh / 2) * pw;
    for (int q = 0; q < s->parts; q++) {
        const part *pt = &s->p[q];
        if (!pt->len) continue;
        int64_t first = q ? len0 : 0, to = (pt->n * g->cout + o) * plane + pt->ty * pw + pt->tx;
        __mmask16 mine = cn_lanes16(first, first + pt->len), out = cn_lanes16(0, pt->len);
        _mm512_mask_storeu_ps(pool->y + to, out, _mm512_maskz_compress_ps(mine, best));
        _mm512_mask_storeu_epi32(pool->argmax + to, out, _mm512_maskz_compress_epi32(mine, arg));
    }
}

/* y (+)= A^T M A (+ bias) of one segment for output channel o, whose M_e rows lie m_step
 * apart from m; A^T's rows (1 1 1 0) (0 1 -1 -1). pool (or NULL): the maxpool of relu(y) too. */
__attribute__((target("avx512f"))) static void transform_out(const cn_conv_geom *g, const segment *s,
                                                             const float *m, int64_t m_step, int64_t o,
                                                             const float *b, float *y, int accumulate, int relu,
                                                             const cn_pool_out *pool)
{
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    __mmask16 keep = cn_lanes16(0, s->len);
    __m512 r[4][2], v[2][2];
    for (int i = 0; i < 4; i++) {
        const float *mi = m + s->lane + 4 * i * m_step;
        __m512 m0 = _mm512_maskz_loadu_ps(keep, mi), m1 = _mm512_maskz_loadu_ps(keep, mi + m_step);
        __m512 m2 = _mm512_maskz_loadu_ps(keep, mi + 2 * m_step), m3 = _mm512_maskz_loadu_ps(keep, mi + 3 * m_step);
        r[i][0] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        r[i][1] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    __m512 bias = _mm512_set1_ps(b ? b[o] : 0.0f);
    for (int q = 0; q < 2; q++) {
        /* the row q of A^T (r) */
        __m512 o0 = q ? _mm512_sub_ps(_mm512_sub_ps(r[1][0], r[2][0]), r[3][0])
                      : _mm512_add_ps(_mm512_add_ps(r[0][0], r[1][0]), r[2][0]);
        __m512 o1 = q ? _mm512_sub_ps(_mm512_sub_ps(r[1][1], r[2][1]), r[3][1])
                      : _mm512_add_ps(_mm512_add_ps(r[0][1], r[1][1]), r[2][1]);
        if (b) o0 = _mm512_add_ps(o0, bias), o1 = _mm512_add_ps(o1, bias);
        /* relu as the reference's: max_ps gives its second operand for NaN and for two zeros */
        if (relu) o0 = _mm512_max_ps(o0, _mm512_setzero_ps()), o1 = _mm512_max_ps(o1, _mm512_setzero_ps());
        v[q][0] = o0, v[q][1] = o1;
        /* the two columns of each tile side by side */
        put_row(g, &s->p[0], o, q, _mm512_permutex2var_ps(o0, lo, o1), 0, y, accumulate);
        if (s->parts == 1) put_row(g, &s->p[0], o, q, _mm512_permutex2var_ps(o0, hi, o1), 16, y, accumulate);
        else if (s->p[1].len)
            put_row(g, &s->p[1], o, q, _mm512_permutex2var_ps(o0, _mm512_loadu_si512(s->put), o1), 0, y, accumulate);
    }
    if (pool) pool_tile(g, s, o, v, pool);
}

/* ---- the same in AVX2 (a CPU without AVX-512) -------------------------------------------------
 * Vectors of 8 tiles, each segment a run of at most 8 tiles of one tile row (one part: a row's
 * 2*8+2 input columns are four loads, split into even and odd columns by shuffles); the weights'
 * transform one kernel at a time. Every value is the AVX-512 code's in the same order of
 * additions, and the products are the same (gemm_avx2.c), so the outputs have its bits. */

static const int col_at8[4] = { 0, 8, 2, 10 }; /* the four loads of a row: columns from 2tx - pad_l */

/* the segments of panel p's tiles in runs of at most 8 along a tile row; returns how many */
static int segments_of8(const wgeom *wg, int64_t p, segment *seg)
{
    const cn_conv_geom *g = wg->g;
    int64_t t = p * NR, end = t + NR < wg->tiles ? t + NR : wg->tiles;
    int count = 0;
    while (t < end) {
        segment *s = &seg[count++];
        memset(s, 0, sizeof *s);
        int64_t len = wg->tw - t % wg->tw;
        if (len > 8) len = 8;
        if (len > end - t) len = end - t;
        s->lane = t - p * NR, s->len = len, s->parts = 1, s->p[0] = part_at(wg, t, len);
        for (int q = 0; q < 4; q++)
            s->cols[q] = inside(g, 2 * s->p[0].tx - g->pad_l + col_at8[q], 2 * len + 2 - col_at8[q]) & 0xFF;
        t += len;
    }
    return count;
}

/* bt4 on vectors of 8 */
__attribute__((target("avx2"), always_inline)) static inline void bt4_8(__m256 a, __m256 b, __m256 c, __m256 d,
                                                                       __m256 out[4])
{
    out[0] = _mm256_sub_ps(a, c);
    out[1] = _mm256_add_ps(b, c);
    out[2] = _mm256_sub_ps(c, b);
    out[3] = _mm256_sub_ps(b, d);
}

/* transform_in for a segment of segments_of8 */
__attribute__((target("avx2"))) static void transform_in8(const cn_conv_geom *g, const segment *s, const float *x,
                                                          int64_t c, float *v)
{
    __m256 h[4][4], zero = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
        const char *row = part_row(g, &s->p[0], x, c, i);
        if (!row) {
            h[i][0] = h[i][1] = h[i][2] = h[i][3] = zero;
            continue;
        }
        _mm_prefetch(row + 2 * g->h * g->w * (int64_t)sizeof(float), _MM_HINT_T0); /* as fetch_ahead */
        __m256 a[4];
        for (int q = 0; q < 4; q++) a[q] = _mm256_maskload_ps((const float *)(row + col_at8[q] * (int)sizeof(float)), cn_lanes8(s->cols[q]));
        bt4_8(cn_even8(a[0], a[1]), cn_odd8(a[0], a[1]), cn_even8(a[2], a[3]), cn_odd8(a[2], a[3]), h[i]);
    }
    __m256i keep = cn_first8(s->len);
    float *out = v + c * NR + s->lane;
    int64_t step = g->cin * NR; /* from V_e to V_e+1 */
    for (int j = 0; j < 4; j++) {
        __m256 e[4];
        bt4_8(h[0][j], h[1][j], h[2][j], h[3][j], e);
        for (int r = 0; r < 4; r++) _mm256_maskstore_ps(out + (4 * r + j) * step, keep, e[r]);
    }
}

/* put_row for 8 outputs */
__attribute__((target("avx2"))) static inline void put_row8(const cn_conv_geom *g, const part *pt, int64_t o, int q,
                                                            __m256 v, int64_t first, float *y, int accumulate)
{
    int64_t oy = 2 * pt->ty + q, ox0 = 2 * pt->tx + first;
    int64_t n = 2 * pt->len - first < g->ow - ox0 ? 2 * pt->len - first : g->ow - ox0;
    if (oy >= g->oh || n <= 0) return;
    __m256i k = cn_first8(n);
    float *row = y + ((pt->n * g->cout + o) * g->oh + oy) * g->ow + ox0;
    if (accumulate) v = _mm256_add_ps(_mm256_maskload_ps(row, k), v);
    _mm256_maskstore_ps(row, k, v);
}

/* pool_tile for a segment of segments_of8 */
__attribute__((target("avx2"))) static void pool_tile8(const cn_conv_geom *g, const segment *s, int64_t o,
                                                       __m256 v[2][2], const cn_pool_out *pool)
{
    const part *pt = &s->p[0];
    __m256 zero = _mm256_setzero_ps();
    __m256i at = _mm256_add_epi32(_mm256_set1_epi32((int)(2 * pt->ty * g->ow + 2 * pt->tx)),
                                  _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
    static const int cell[4][2] = { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 } };
    __m256 best = _mm256_max_ps(v[0][0], zero);
    __m256i arg = at;
    for (int c = 1; c < 4; c++) {
        __m256 cand = _mm256_max_ps(v[cell[c][0]][cell[c][1]], zero); /* relu, as cpu_relu */
        __m256 wins = _mm256_cmp_ps(cand, best, _CMP_GT_OQ);
        best = _mm256_blendv_ps(best, cand, wins);
        arg = _mm256_castps_si256(_mm256_blendv_ps(
            _mm256_castsi256_ps(arg),
            _mm256_castsi256_ps(_mm256_add_epi32(at, _mm256_set1_epi32((int)(cell[c][0] * g->ow + cell[c][1])))), wins));
    }
    int64_t pw = g->ow / 2, plane = (g->oh / 2) * pw, to = (pt->n * g->cout + o) * plane + pt->ty * pw + pt->tx;
    __m256i keep = cn_first8(pt->len);
    _mm256_maskstore_ps(pool->y + to, keep, best);
    _mm256_maskstore_epi32((int *)(pool->argmax + to), keep, arg);
}

/* transform_out for a segment of segments_of8 */
__attribute__((target("avx2"))) static void transform_out8(const cn_conv_geom *g, const segment *s, const float *m,
                                                           int64_t m_step, int64_t o, const float *b, float *y,
                                                           int accumulate, int relu, const cn_pool_out *pool)
{
    __m256i keep = cn_first8(s->len);
    __m256 r[4][2], v[2][2], zero = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
        const float *mi = m + s->lane + 4 * i * m_step;
        __m256 m0 = _mm256_maskload_ps(mi, keep), m1 = _mm256_maskload_ps(mi + m_step, keep);
        __m256 m2 = _mm256_maskload_ps(mi + 2 * m_step, keep), m3 = _mm256_maskload_ps(mi + 3 * m_step, keep);
        r[i][0] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        r[i][1] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    __m256 bias = _mm256_set1_ps(b ? b[o] : 0.0f);
    for (int q = 0; q < 2; q++) {
        __m256 o0 = q ? _mm256_sub_ps(_mm256_sub_ps(r[1][0], r[2][0]), r[3][0])
                      : _mm256_add_ps(_mm256_add_ps(r[0][0], r[1][0]), r[2][0]);
        __m256 o1 = q ? _mm256_sub_ps(_mm256_sub_ps(r[1][1], r[2][1]), r[3][1])
                      : _mm256_add_ps(_mm256_add_ps(r[0][1], r[1][1]), r[2][1]);
        if (b) o0 = _mm256_add_ps(o0, bias), o1 = _mm256_add_ps(o1, bias);
        if (relu) o0 = _mm256_max_ps(o0, zero), o1 = _mm256_max_ps(o1, zero);
        v[q][0] = o0, v[q][1] = o1;
        /* the two columns of each tile side by side: tiles 0-3, then 4-7 */
        __m256 lo = _mm256_unpacklo_ps(o0, o1), hi = _mm256_unpackhi_ps(o0, o1);
        put_row8(g, &s->p[0], o, q, _mm256_permute2f128_ps(lo, hi, 0x20), 0, y, accumulate);
        put_row8(g, &s->p[0], o, q, _mm256_permute2f128_ps(lo, hi, 0x31), 8, y, accumulate);
    }
    if (pool) pool_tile8(g, s, o, v, pool);
}

/* the entry points of the panels' work: AVX-512's code (v16, cn_gemm_avx512() asked once a
 * panel) or AVX2's */
static int segments(int v16, const wgeom *wg, int64_t p, segment *seg)
{
    return v16 ? segments_of(wg, p, seg) : segments_of8(wg, p, seg);
}

static void to_v(int v16, const cn_conv_geom *g, const segment *s, const float *x, int64_t c, float *v)
{
    if (v16) transform_in(g, s, x, c, v);
    else transform_in8(g, s, x, c, v);
}

static void from_m(int v16, const cn_conv_geom *g, const segment *s, const float *m, int64_t m_step, int64_t o,
                   const float *b, float *y, int accumulate, int relu, const cn_pool_out *pool)
{
    if (v16) transform_out(g, s, m, m_step, o, b, y, accumulate, relu, pool);
    else transform_out8(g, s, m, m_step, o, b, y, accumulate, relu, pool);
}

/* one panel of tiles, start to end, in scratch (V then M) */
static void run_panel(const wgeom *wg, int64_t p, const float *x, const float *u, const float *b, float *y,
                      int accumulate, int relu, const cn_pool_out *pool, float *scratch)
{
    const cn_conv_geom *g = wg->g;
    segment seg[NR];
    int v16 = cn_gemm_avx512(), count = segments(v16, wg, p, seg);
    float *v = scratch, *m = scratch + 16 * g->cin * NR;
    if ((p + 1) * NR > wg->tiles) memset(v, 0, (size_t)(16 * g->cin * NR) * sizeof(float)); /* lanes past the end */
    for (int64_t c = 0; c < g->cin; c++) /* a channel's rows of the panel in turn, each read once from memory */
        for (int s = 0; s < count; s++) to_v(v16, g, &seg[s], x, c, v);
    for (int64_t o0 = 0; o0 < g->cout; o0 += KB) {
        int64_t ob = g->cout - o0 < KB ? g->cout - o0 : KB;
        for (int e = 0; e < 16; e++)
            cn_gemm_panel(ob, g->cin, u + e * wg->u_len + o0 * g->cin, v + e * g->cin * NR, m + e * KB * NR, NR,
                          wg->tiles - p * NR);
        for (int s = 0; s < count; s++)
            for (int64_t o = 0; o < ob; o++)
                from_m(v16, g, &seg[s], m + o * NR, KB * NR, o0 + o, b, y, accumulate, relu, pool);
    }
}

static void run_group(const wgeom *wg, int64_t p0, int64_t np, const float *x, const float *u, const float *b, float *y,
                      int accumulate, int relu, const cn_pool_out *pool, float *buf)
{
    const cn_conv_geom *g = wg->g;
    int64_t vl = 16 * g->cin * NR, ml = 16 * g->cout * NR, chunks = (g->cin + 63) / 64;
    float *v = buf, *m = buf + np * vl;
    int v16 = cn_gemm_avx512();
    CN_PAR_FOR(np * g->cin >= 128, schedule(static),
        for (int64_t job = 0; job < np * chunks; job++) {
            int64_t p = job / chunks, c0 = job % chunks * 64, c1 = c0 + 64 < g->cin ? c0 + 64 : g->cin;
            segment seg[NR];
            int count = segments(v16, wg, p0 + p, seg);
            float *vp = v + p * vl;
            if ((p0 + p + 1) * NR > wg->tiles) /* lanes past the end */
                for (int e = 0; e < 16; e++) memset(vp + e * g->cin * NR + c0 * NR, 0, (size_t)((c1 - c0) * NR) * sizeof(float));
            for (int64_t c = c0; c < c1; c++)
                for (int s = 0; s < count; s++) to_v(v16, g, &seg[s], x, c, vp);
        });
    CN_PAR_FOR(1, schedule(static),
        for (int e = 0; e < 16; e++)
            for (int64_t o0 = 0; o0 < g->cout; o0 += KB)
                for (int64_t p = 0; p < np; p++)
                    cn_gemm_panel(g->cout - o0 < KB ? g->cout - o0 : KB, g->cin, u + e * wg->u_len + o0 * g->cin,
                                  v + p * vl + e * g->cin * NR, m + p * ml + e * g->cout * NR + o0 * NR, NR,
                                  wg->tiles - (p0 + p) * NR););
    int64_t ochunks = (g->cout + KB - 1) / KB;
    CN_PAR_FOR(1, schedule(static),
        for (int64_t job = 0; job < np * ochunks; job++) {
            int64_t p = job / ochunks, o0 = job % ochunks * KB, o1 = o0 + KB < g->cout ? o0 + KB : g->cout;
            segment seg[NR];
            int count = segments(v16, wg, p0 + p, seg);
            for (int64_t o = o0; o < o1; o++)
                for (int s = 0; s < count; s++)
                    from_m(v16, g, &seg[s], m + p * ml + o * NR, g->cout * NR, o, b, y, accumulate, relu, pool);
        });
}

int64_t cn_cpu_winograd_prep_floats(const cn_conv_geom *g)
{
    return cn_cpu_winograd4_way(g) ? cn_cpu_winograd4_prep_floats(g) : 16 * wgeom_of(g).u_len;
}

void cn_cpu_winograd_prepare(const cn_conv_geom *g, const float *w, float *u)
{
    wgeom wg = wgeom_of(g);
    if (cn_cpu_winograd4_way(g)) cn_cpu_winograd4_prepare(g, w, 0, u);
    else transform_weights(&wg, w, 0, u);
}

void cn_cpu_winograd_prepare_turned(const cn_conv_geom *t, const float *w, float *u)
{
    wgeom wg = wgeom_of(t);
    if (cn_cpu_winograd4_way(t)) cn_cpu_winograd4_prepare(t, w, 1, u);
    else transform_weights(&wg, w, 1, u);
}

void cn_cpu_winograd_conv(const cn_conv_geom *g, const float *x, const float *w, const float *u_made, const float *b,
                          float *y, int accumulate, int relu, const cn_pool_out *pool, float *work)
{
    if (cn_cpu_winograd4_way(g)) {
        cn_cpu_winograd4_conv(g, x, w, u_made, b, y, accumulate, relu, pool, work);
        return;
    }
    wgeom wg = wgeom_of(g);
    /* the products read their B panels with aligned loads: the spare panel on 64 bytes */
    float *spare = (float *)(((uintptr_t)(work + 16 * wg.u_len) + 63) & ~(uintptr_t)63);
    const float *u = u_made;
    if (!u) transform_weights(&wg, w, 0, work), u = work;
    if (by_groups(&wg)) {
        float *buf = (float *)(((uintptr_t)(spare + panel_floats(g)) + 63) & ~(uintptr_t)63);
        for (int64_t p0 = 0; p0 < wg.panels; p0 += GROUP_PANELS)
            run_group(&wg, p0, wg.panels - p0 < GROUP_PANELS ? wg.panels - p0 : GROUP_PANELS, x, u, b, y, accumulate,
                      relu, pool, buf);
        return;
    }
    size_t per_thread = (size_t)panel_floats(g);
    CN_PAR_FOR(wg.panels > 1 && wg.tiles * g->cin * g->cout >= 1 << 18, schedule(static),
        for (int64_t p = 0; p < wg.panels; p++) {
            float *scratch = cn_thread_scratch(per_thread);
            if (scratch) {
                run_panel(&wg, p, x, u, b, y, accumulate, relu, pool, scratch);
            } else { /* the heap said no: the workspace's one panel, a thread at a time (the same bits) */
                _Pragma("omp critical(cn_winograd_spare)")
                run_panel(&wg, p, x, u, b, y, accumulate, relu, pool, spare);
            }
        });
}

/* ---- the weight gradient: F(3x3,2x2) and F(3x3,4x4) ---------------------------------------------
 * dW of a tile (its m x m block of dY, dy, and its (m+2) x (m+2) input, d) is the correlation of
 * d with dy, Winograd's F(3x3,m); the forward's identity sum dy.y = sum g.dW, read with the roles
 * turned, gives it with the forward F(m x m,3x3)'s B, A and G:
 *
 *   Z = A dy A^T     per (tile, output channel)
 *   V = B^T d B      per (tile, input channel): the forward's input transform
 *   M_e = V_e . Z_e^T for each e: a product (Cin x tiles) . (tiles x Cout), summed over the tiles
 *   dW = G^T M G     per channel pair: the forward's G, turned
 *
 * F(3x3,2x2) (m = 2, where the forward runs F(2x2,3x3)): A's rows (1 0) (1 1) (1 -1) (0 -1), 16
 * products a tile for 4 outputs, 4 multiplications an output and channel pair instead of 9.
 * F(3x3,4x4) (m = 4, where the forward runs F(4x4,3x3), winograd4.c): A = (winograd4.c's A^T)^T,
 * rows (1 0 0 0) (1 1 1 1) (1 -1 1 -1) (1 2 4 8) (1 -2 4 -8) (0 0 0 1), 36 products for 16
 * outputs: 2.25 an output, and V and Z as much smaller (the times at dw_m); G's 1/24 and A's 8
 * round more: 2-4e-6 of the largest gradient against the double-precision reference, 3.3e-6 at
 * 32x32 64->64 and 16x16 128->128 at batch 32 (F(3x3,2x2): 3.5e-7), within the tests' 1e-5
 * (tests/test_backend.c).
 *
 * The tiles are the products' k, so the transforms run on vectors of 16 channels of one pixel: x
 * and dY are first copied channels-last (xt, dyt), and each tile's V and Z go straight into the
 * products' packed panels. The tiles are cut into parts (their number fixed by the shapes), each
 * summed into an M of its own by one thread, a chunk of tiles at a time in order, and the parts
 * are added in order: the bits are the same on any number of threads. */

/* tiles of a chunk, the k of its products: its panels, e x (Cin + Cout) x chunk floats, stay in
 * L2 (a first layer's weight gradient, 32x32 64->64 at batch 32: 8.1 ms, 9.0 with 192 tiles of
 * F(3x3,2x2)); F(3x3,4x4)'s 36 products a tile take half as many (its weight gradient at 32
 * tiles against 64 and 16: 32x32 64->64 5.7-6.2 ms, 5.8-5.9, 6.1-7.0; 16x16 128->128 4.2-4.8,
 * 4.3-4.6, 5.4-5.5) */
#define DW_TILES 64

/* Parts at most, and no more than their Ms' floats allow (2 parts always). F(3x3,4x4)'s Ms are
 * 2.25x as large for a quarter of the tiles, so zeroing and adding them weighs 9x as much: its
 * parts fill a quarter of the floats, in a power of two that shares out evenly on 2 threads
 * (convnet bench, weight gradient, 2 threads, batch 32: 32x32 64->64 6.5-7.3 ms in 2 parts,
 * 7.2-7.5 in 8 and 7.9-8.5 in 3; 16x16 128->128 5.5-5.7 in 2, 6.3-7.4 in 4 and 7.5-7.7 in 8;
 * 24x24 16->16 0.35-0.36 in 2, 0.40 in 8). */
#define DW_PARTS 8
#define DW_BLOCK_C 64 /* input channels of a block of M (dw_by_blocks): 16 x 64 x 48 floats, 196 kB */
#define DW_PARTS_FLOATS (1 << 21)

typedef struct dwgeom {
    const cn_conv_geom *g;
    int m, a, ne;            /* a tile's m x m outputs, its a x a input (a = m + 2), a^2 products */
    int64_t th, tw, tiles;   /* tiles down and across a map, and in the batch */
    int64_t kt;              /* tiles a chunk */
    int64_t ci16, co16, ci8; /* channels rounded up to 16 (a pixel's vectors) and Cin to 8 (A's panels) */
    int64_t a_len, b_len;    /* floats from one e's packed A (V) and B (Z) panels to the next's */
    int64_t parts;
    int by_blocks;           /* no parts: blocks of channel pairs, each M's block in L2 (dw_by_blocks) */
} dwgeom;

static int64_t dw_m_len(const dwgeom *d) { return d->ne * d->g->cin * d->co16; }

static cn_cpu_switch force_dw4 = { "CN_WINOGRAD_DW4", -1, 0 };

void cn_cpu_winograd_dw4_force(int mode) { cn_cpu_switch_set(&force_dw4, mode); }

/* The weight gradient's tile: F(3x3,4x4) where the forward runs F(4x4,3x3) and its tiles cover
 * at most 1/8 more than the map. From `convnet bench` of a first layer, weight gradient, batch
 * 32, 2 threads, F(3x3,2x2) against F(3x3,4x4) (CN_WINOGRAD_DW4=0 and 1, twice each): 32x32
 * 64->64 7.9-8.0 -> 6.8-6.9 ms, 16x16 128->128 6.8-6.9 -> 5.2-5.3, 28x28 32->32 1.9-2.0 ->
 * 1.7-1.9, 24x24 16->16 0.49 -> 0.37-0.39, 12x12 128->128 4.2-4.4 -> 2.9-3.2, 56x56 64->64
 * 21.7-22.1 -> 19.4; but 14x14 64->64, whose 4x4 tiles cover 16x16 (31 % more), 1.6-1.8 either
 * way, and fmnist-small's conv2 (14x14 32->64, batch 64) 3.3-3.4 either way. */
static int dw_m(const cn_conv_geom *g)
{
    if (cn_cpu_switch_mode(&force_dw4) >= 0) return force_dw4.mode ? 4 : 2;
    int64_t covered = (g->oh + 3) / 4 * 4 * ((g->ow + 3) / 4 * 4);
    return cn_cpu_winograd4_way(g) && 8 * covered <= 9 * g->oh * g->ow ? 4 : 2;
}

static cn_cpu_switch force_blocks = { "CN_WINOGRAD_DW_BLOCKS", -1, 0 };

void cn_cpu_winograd_dw_blocks_force(int mode) { cn_cpu_switch_set(&force_blocks, mode); }

static int blocks_forced(void) { return cn_cpu_switch_mode(&force_blocks); }

/* The weight gradient by blocks of channel pairs (dw_by_blocks_run) where there are 256 channel
 * pairs or more for each tile (in F(3x3,2x2)'s count) and the tiles fit the map (it is even, or
 * the forward's rule takes it). From `convnet bench` of a first layer, weight gradient, 2
 * threads, twice each, by parts against by blocks: 7x7 512->512 at batch 32 (512 tiles)
 * 24.1-24.7 -> 21.0 ms, 8x8 256->256 at 32 (128 pairs a tile) 6.2-6.4 -> 6.5-6.6, 14x14 256->256
 * at 16 8.4 -> 10.1-11.5, 16x16 128->128 at 32 3.9 -> 5.8-6.0; as a product against by blocks
 * (`CN_WINOGRAD=1 CN_WINOGRAD_DW_BLOCKS=1`): 4x4 512->512 at batch 16 3.9-5.0 -> 3.2-4.3, at 32
 * 7.2-7.3 -> 5.6-6.1, at 64 14.0-14.5 -> 10.2-10.6; 4x4 256->256 at 32 2.0 -> 1.3-1.5, at 64
 * 3.9-4.0 -> 2.7-2.8; 7x7 512->512 at batch 8 7.3-8.0 -> 5.3-6.8; 8x8 512->512 at 8 9.7-9.8 ->
 * 6.0-6.1; but 3x3 512->512 at 32 (4 tiles over 4x4 for 9 values) 5.2-5.3 -> 6.1-6.5 and 2x2
 * 512->512 at 32 (32 tiles) even. */
static int blocks_rule(const cn_conv_geom *g)
{
    return (cn_cpu_winograd_way(g) || (g->oh % 2 == 0 && g->ow % 2 == 0)) &&
           g->cin * g->cout >= 256 * wgeom_of(g).tiles;
}

static int dw_by_blocks(const cn_conv_geom *g) { return blocks_forced() >= 0 ? blocks_forced() : blocks_rule(g); }

static dwgeom dwgeom_of(const cn_conv_geom *g)
{
    dwgeom d = { g, 0, 0, 0, 0, 0, 0, 0, (g->cin + 15) / 16 * 16, (g->cout + 15) / 16 * 16, (g->cin + 7) / 8 * 8,
                 0, 0, 0, 0 };
    d.m = dw_m(g), d.a = d.m + 2, d.ne = d.a * d.a;
    d.th = (g->oh + d.m - 1) / d.m, d.tw = (g->ow + d.m - 1) / d.m, d.tiles = g->n * d.th * d.tw;
    d.kt = d.m == 2 ? DW_TILES : DW_TILES / 2;
    /* + 16: the e's panels a cache line apart in the cache's sets (a multiple of 4 kB apart, the
     * transforms' stores a tile fought over the same few lines of L1: a first layer's weight
     * gradient, 32x32 64->64 at batch 32, 8.3 ms without, 6.1 ms with) */
    d.a_len = d.ci8 * d.kt + 16;
    d.b_len = (d.co16 + CN_GEMM_NR - 1) / CN_GEMM_NR * CN_GEMM_NR * d.kt + 16;
    int64_t chunks = (d.tiles + d.kt - 1) / d.kt, fit = DW_PARTS_FLOATS / dw_m_len(&d);
    if (d.m == 4) { /* a power of two of them, within a quarter of the floats */
        fit = DW_PARTS_FLOATS / 4 / dw_m_len(&d);
        while (fit & (fit - 1)) fit &= fit - 1;
    }
    d.parts = fit < 2 ? 2 : fit > DW_PARTS ? DW_PARTS : fit;
    if (d.parts > chunks) d.parts = chunks;
    d.by_blocks = dw_by_blocks(g);
    return d;
}

/* floats: xt, dyt, the parts' Ms (e x Cin x Co16 each), a chunk's panels (a spare, for a
 * thread without scratch of its own) */
static int64_t dw_xt_len(const dwgeom *d) { return d->g->n * d->g->h * d->g->w * d->ci16; }
static int64_t dw_dyt_len(const dwgeom *d) { return d->g->n * d->g->oh * d->g->ow * d->co16; }
static int64_t dw_chunk_len(const dwgeom *d) { return d->ne * (d->a_len + d->b_len); }
/* one M block: e x DW_BLOCK_C input channels x CN_GEMM_NR output channels (dw_by_blocks) */
static int64_t dw_block_len(const dwgeom *d) { return d->ne * DW_BLOCK_C * CN_GEMM_NR; }

int cn_cpu_winograd_weight_way(const cn_conv_geom *g)
{
    if (!cn_cpu_winograd_can(g)) return 0;
    /* below a chunk of tiles over the batch, zeroing M and transforming it back cost more than
     * the products save (convnet bench, 6x6 128->128: at batch 4, 36 tiles, 0.37 ms as a
     * product against 0.47; 8x8 64->64 at batch 4, 64 tiles, 0.15 against 0.11) */
    if (forced() >= 0) return forced() ? dw_m(g) : 0;
    /* and below a tile for every 512 channel pairs, zeroing, adding and transforming back the
     * parts' Ms (16 x Cin x Cout each) cost more than the products save (convnet bench of a first
     * layer, weight gradient, direct against Winograd: 7x7 512->512 at batch 8, 128 tiles, 7.7 ms
     * against 11.2, at batch 32 34.8 against 24.0; 8x8 256->256 at batch 8, 128 tiles, 2.38
     * against 2.37; 4x4 512->512 at batch 32, 128 tiles, 7.4 against 8.7), where the forward
     * runs by Winograd; by blocks (dw_by_blocks), where its rule says. Counted in F(3x3,2x2)'s
     * tiles. A gradient is the batch's: the rule may look at the batch. */
    int64_t tiles = wgeom_of(g).tiles;
    if (tiles < DW_TILES) return 0;
    int by_parts = cn_cpu_winograd_way(g) && tiles * 512 >= g->cin * g->cout;
    return by_parts || (blocks_forced() != 0 && blocks_rule(g)) ? dw_m(g) : 0;
}

int64_t cn_cpu_winograd_weight_work(const cn_conv_geom *g)
{
    dwgeom d = dwgeom_of(g);
    if (d.by_blocks) /* xt, dyt, every chunk's panels, a spare block of M */
        return dw_xt_len(&d) + dw_dyt_len(&d) + (d.tiles + d.kt - 1) / d.kt * dw_chunk_len(&d) + dw_block_len(&d) + 16;
    return dw_xt_len(&d) + dw_dyt_len(&d) + d.parts * dw_m_len(&d) + dw_chunk_len(&d) + 16; /* + 16: aligning */
}

/* t (n, plane, c16) <- the NCHW tensor s (n, c, plane), channels past c zero: 16 x 16 blocks
 * turned in registers; job: a sample's group of 16 channels */
__attribute__((target("avx512f"))) static void channels_last_job(const float *s, int64_t c, int64_t plane, int64_t c16,
                                                                int64_t job, float *t)
{
    int64_t groups = c16 / 16, blocks = (plane + 15) / 16;
    int64_t i = job / groups, c0 = job % groups * 16;
    for (int64_t b = 0; b < blocks; b++) {
        int64_t p0 = b * 16, np = plane - p0 < 16 ? plane - p0 : 16;
        __mmask16 m = cn_lanes16(0, np);
        __m512 r[16];
        for (int q = 0; q < 16; q++)
            r[q] = c0 + q < c ? _mm512_maskz_loadu_ps(m, s + (i * c + c0 + q) * plane + p0) : _mm512_setzero_ps();
        cn_transpose16(r);
        for (int q = 0; q < np; q++) _mm512_storeu_ps(t + (i * plane + p0 + q) * c16 + c0, r[q]);
    }
}

/* ---- the weight gradient in AVX2 (a CPU without AVX-512) ---------------------------------------
 * The same transforms on 16 channels of a pixel as two vectors of 8, each value the AVX-512
 * code's, so the same bits: F(3x3,2x2), and F(3x3,4x4) where the forward runs F(4x4,3x3). */

/* channels_last_job, 8x8 blocks transposed in registers */
__attribute__((target("avx2"))) static void channels_last_job8(const float *s, int64_t c, int64_t plane, int64_t c16,
                                                              int64_t job, float *t)
{
    int64_t groups = c16 / 8, i = job / groups, c0 = job % groups * 8;
    for (int64_t p0 = 0; p0 < plane; p0 += 8) {
        int64_t np = plane - p0 < 8 ? plane - p0 : 8;
        __m256i m = cn_first8(np);
        __m256 r[8];
        for (int q = 0; q < 8; q++)
            r[q] = c0 + q < c ? _mm256_maskload_ps(s + (i * c + c0 + q) * plane + p0, m) : _mm256_setzero_ps();
        cn_transpose8(r);
        for (int q = 0; q < np; q++) _mm256_storeu_ps(t + (i * plane + p0 + q) * c16 + c0, r[q]);
    }
}

/* the jobs in parallel (the vector work in a function of its own: core_impl.h, CN_PAR_FOR) */
static void channels_last(const float *s, int64_t n, int64_t c, int64_t plane, int64_t c16, float *t)
{
    int v16 = cn_gemm_avx512(), lanes = v16 ? 16 : 8;
    CN_PAR_FOR(n * c * plane >= 1 << 16, schedule(static),
        for (int64_t job = 0; job < n * (c16 / lanes); job++) {
            if (v16) channels_last_job(s, c, plane, c16, job, t);
            else channels_last_job8(s, c, plane, c16, job, t);
        });
}

/* B^T of the tile's size applied to a vectors */
__attribute__((target("avx512f"), always_inline)) static inline void dw_bt(int a, const __m512 *v, __m512 *out)
{
    if (a == 4) bt4(v[0], v[1], v[2], v[3], out);
    else bt6(v, out);
}

/* A applied to m vectors (a row of dy, or a column of dy A^T): a values */
__attribute__((target("avx512f"), always_inline)) static inline void dw_a(int m, const __m512 *v, __m512 *out)
{
    __m512 zero = _mm512_setzero_ps();
    if (m == 2) {
        out[0] = v[0];
        out[1] = _mm512_add_ps(v[0], v[1]);
        out[2] = _mm512_sub_ps(v[0], v[1]);
        out[3] = _mm512_sub_ps(zero, v[1]);
        return;
    }
    const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f);
    __m512 even = _mm512_add_ps(v[0], v[2]), odd = _mm512_add_ps(v[1], v[3]);
    __m512 even4 = _mm512_fmadd_ps(four, v[2], v[0]), odd4 = _mm512_mul_ps(two, _mm512_fmadd_ps(four, v[3], v[1]));
    out[0] = v[0];
    out[1] = _mm512_add_ps(even, odd);
    out[2] = _mm512_sub_ps(even, odd);
    out[3] = _mm512_add_ps(even4, odd4);
    out[4] = _mm512_sub_ps(even4, odd4);
    out[5] = v[3];
}

/* tile t's V (B^T d B of 16 channels from c0) into column k of the chunk's A panels (kc
 * columns); a: the tile's input size, the compiler's constant in each caller */
__attribute__((target("avx512f"), always_inline)) static inline void dw_in_tile(const dwgeom *d, const float *xt, int64_t t,
                                                                               int64_t c0, int64_t k, int64_t kc,
                                                                               float *pa, const int a)
{
    const cn_conv_geom *g = d->g;
    const int m = a - 2;
    int64_t n = t / (d->th * d->tw), ty = t / d->tw % d->th, tx = t % d->tw;
    __m512 h[6][6], zero = _mm512_setzero_ps();
    for (int i = 0; i < a; i++) {
        int64_t iy = m * ty - g->pad_t + i;
        __m512 v[6];
        for (int j = 0; j < a; j++) {
            int64_t ix = m * tx - g->pad_l + j;
            v[j] = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w ? _mm512_loadu_ps(xt + ((n * g->h + iy) * g->w + ix) * d->ci16 + c0)
                                                              : zero;
        }
        dw_bt(a, v, h[i]);
    }
    float *at = pa + cn_gemm_packed_a_at(kc, c0, k);
    int hi = c0 + 8 < d->ci8; /* the upper 8 channels have a panel */
    for (int j = 0; j < a; j++) {
        __m512 col[6], e[6];
        for (int i = 0; i < a; i++) col[i] = h[i][j];
        dw_bt(a, col, e);
        for (int r = 0; r < a; r++) {
            float *dst = at + (a * r + j) * d->a_len;
            _mm256_storeu_ps(dst, _mm512_castps512_ps256(e[r]));
            if (hi) _mm256_storeu_ps(dst + 8 * kc, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e[r]), 1)));
        }
    }
}

/* tile t's Z (A dy A^T of 16 channels from o0) into row k of the chunk's B panels */
__attribute__((target("avx512f"), always_inline)) static inline void dw_dy_tile(const dwgeom *d, const float *dyt, int64_t t,
                                                                               int64_t o0, int64_t k, int64_t kc,
                                                                               float *pb, const int m)
{
    const cn_conv_geom *g = d->g;
    const int a = m + 2;
    int64_t n = t / (d->th * d->tw), ty = t / d->tw % d->th, tx = t % d->tw;
    __m512 h[4][6], zero = _mm512_setzero_ps();
    for (int i = 0; i < m; i++) {
        int64_t oy = m * ty + i;
        __m512 v[4];
        for (int j = 0; j < m; j++) {
            int64_t ox = m * tx + j;
            v[j] = oy < g->oh && ox < g->ow ? _mm512_loadu_ps(dyt + ((n * g->oh + oy) * g->ow + ox) * d->co16 + o0) : zero;
        }
        dw_a(m, v, h[i]);
    }
    float *at = pb + o0 / CN_GEMM_NR * CN_GEMM_NR * kc + k * CN_GEMM_NR + o0 % CN_GEMM_NR;
    for (int j = 0; j < a; j++) {
        __m512 col[4], e[6];
        for (int i = 0; i < m; i++) col[i] = h[i][j];
        dw_a(m, col, e);
        for (int r = 0; r < a; r++) _mm512_store_ps(at + (a * r + j) * d->b_len, e[r]);
    }
}

/* a chunk's tiles [c0, c0 + kc) transformed into its panels, by the tile's size */
__attribute__((target("avx512f"))) static void dw_transform_chunk(const dwgeom *d, const float *xt, const float *dyt,
                                                                  int64_t c0, int64_t kc, float *pa, float *pb)
{
    for (int64_t k = 0; k < kc; k++) {
        if (d->m == 2) {
            for (int64_t c = 0; c < d->ci8; c += 16) dw_in_tile(d, xt, c0 + k, c, k, kc, pa, 4);
            for (int64_t o = 0; o < d->co16; o += 16) dw_dy_tile(d, dyt, c0 + k, o, k, kc, pb, 2);
        } else {
            for (int64_t c = 0; c < d->ci8; c += 16) dw_in_tile(d, xt, c0 + k, c, k, kc, pa, 6);
            for (int64_t o = 0; o < d->co16; o += 16) dw_dy_tile(d, dyt, c0 + k, o, k, kc, pb, 4);
        }
    }
}

/* G^T applied to a vectors of doubles (a column of M, or a row of G^T M): 3 values. F(2x2,3x3)'s
 * G has rows (1 0 0) (1/2 1/2 1/2) (1/2 -1/2 1/2) (0 0 1), F(4x4,3x3)'s winograd4.c's */
__attribute__((target("avx512f"), always_inline)) static inline void dw_gt(int a, const __m512d *q, __m512d *out)
{
    if (a == 4) {
        const __m512d half = _mm512_set1_pd(0.5);
        __m512d sum = _mm512_add_pd(q[1], q[2]);
        out[0] = _mm512_add_pd(q[0], _mm512_mul_pd(half, sum));
        out[1] = _mm512_mul_pd(half, _mm512_sub_pd(q[1], q[2]));
        out[2] = _mm512_add_pd(_mm512_mul_pd(half, sum), q[3]);
        return;
    }
    const __m512d quarter = _mm512_set1_pd(0.25), sixth = _mm512_set1_pd(1.0 / 6), twelfth = _mm512_set1_pd(1.0 / 12),
                  t24 = _mm512_set1_pd(1.0 / 24);
    __m512d s12 = _mm512_add_pd(q[1], q[2]), d21 = _mm512_sub_pd(q[2], q[1]);
    __m512d s34 = _mm512_add_pd(q[3], q[4]), d34 = _mm512_sub_pd(q[3], q[4]);
    out[0] = _mm512_add_pd(_mm512_sub_pd(_mm512_mul_pd(quarter, q[0]), _mm512_mul_pd(sixth, s12)), _mm512_mul_pd(t24, s34));
    out[1] = _mm512_add_pd(_mm512_mul_pd(sixth, d21), _mm512_mul_pd(twelfth, d34));
    out[2] = _mm512_add_pd(_mm512_mul_pd(sixth, _mm512_sub_pd(s34, s12)), q[5]);
}

/* dW rows of input channel c and the 8 output channels from o (those below Cout) += the 9 taps
 * of f (lane l: channel o + l): taps 0-7 turned in registers (8x8), so that each channel's row
 * of dW takes them in one vector; tap 8 one by one (the same additions as a tap at a time).
 * AVX-512's dw_out_tile and AVX2's dw_out_8_avx2. */
__attribute__((target("avx2"), always_inline)) static inline void dw_add_taps(const cn_conv_geom *g, const __m256 f[9],
                                                                              int64_t o, int64_t c, float *dw)
{
    __m256 u[8], v[8];
    float last[8];
    _mm256_storeu_ps(last, f[8]);
    for (int k = 0; k < 8; k += 2)
        u[k] = _mm256_unpacklo_ps(f[k], f[k + 1]), u[k + 1] = _mm256_unpackhi_ps(f[k], f[k + 1]);
    for (int k = 0; k < 8; k += 4)
        for (int h = 0; h < 2; h++) {
            v[k + h] = _mm256_shuffle_ps(u[k + h], u[k + h + 2], 0x44);
            v[k + h + 2] = _mm256_shuffle_ps(u[k + h], u[k + h + 2], 0xEE);
        }
    /* v[0..3]: lanes 0-3 and 4-7 of taps 0-3 for channels (0,4) (2,6) (1,5) (3,7); v[4..7] taps 4-7 */
    static const int pick[8] = { 0, 2, 1, 3, 0, 2, 1, 3 };
    for (int l = 0; l < 8 && o + l < g->cout; l++) {
        float *wl = dw + ((o + l) * g->cin + c) * 9;
        __m256 lo = v[pick[l]], hi = v[4 + pick[l]];
        __m256 row = l < 4 ? _mm256_permute2f128_ps(lo, hi, 0x20) : _mm256_permute2f128_ps(lo, hi, 0x31);
        _mm256_storeu_ps(wl, _mm256_add_ps(_mm256_loadu_ps(wl), row));
        wl[8] += last[l];
    }
}

/* dW += G^T M G for input channel c and the 8 output channels from o (those below Cout), in
 * double, the 8 side by side in a vector; m: M_0's value (c, o), M_e's m_e floats on. M's rows
 * are Co16 wide (by blocks, a panel's 48), so the 8 loads stay inside them. a: the tile's input
 * size, the compiler's constant in each caller. */
__attribute__((target("avx512f"), always_inline)) static inline void dw_out_tile(const dwgeom *d, const float *m,
                                                                                int64_t m_e, int64_t o, int64_t c,
                                                                                float *dw, const int a)
{
    const cn_conv_geom *g = d->g;
    __m512d q[6][6], r[3][6], w[3][3];
    for (int e = 0; e < d->ne; e++) q[e / a][e % a] = _mm512_cvtps_pd(_mm256_loadu_ps(m + e * m_e));
    for (int j = 0; j < a; j++) { /* G^T on the left */
        __m512d col[6], t[3];
        for (int i = 0; i < a; i++) col[i] = q[i][j];
        dw_gt(a, col, t);
        for (int i = 0; i < 3; i++) r[i][j] = t[i];
    }
    for (int i = 0; i < 3; i++) dw_gt(a, r[i], w[i]); /* G on the right */
    __m256 f[9];
    for (int k = 0; k < 9; k++) f[k] = _mm512_cvtpd_ps(w[k / 3][k % 3]);
    dw_add_taps(g, f, o, c, dw);
}

__attribute__((target("avx512f"))) static void dw_out_8(const dwgeom *d, const float *m, int64_t m_e, int64_t o,
                                                        int64_t c, float *dw)
{
    if (d->a == 4) dw_out_tile(d, m, m_e, o, c, dw, 4);
    else dw_out_tile(d, m, m_e, o, c, dw, 6);
}

/* tile t's V into column k of the chunk's A panels, as dw_in_tile; a: the tile's input size, the
 * compiler's constant in each caller */
__attribute__((target("avx2,fma"), always_inline)) static inline void dw_in_tile8(const dwgeom *d, const float *xt,
                                                                                 int64_t t, int64_t c0, int64_t k,
                                                                                 int64_t kc, float *pa, const int a)
{
    const cn_conv_geom *g = d->g;
    const int m = a - 2;
    int64_t n = t / (d->th * d->tw), ty = t / d->tw % d->th, tx = t % d->tw;
    int hi = c0 + 8 < d->ci8; /* the upper 8 channels have a panel */
    float *at = pa + cn_gemm_packed_a_at(kc, c0, k);
    for (int half = 0; half < 1 + hi; half++) {
        __m256 h[6][6], zero = _mm256_setzero_ps();
        for (int i = 0; i < a; i++) {
            int64_t iy = m * ty - g->pad_t + i;
            __m256 v[6];
            for (int j = 0; j < a; j++) {
                int64_t ix = m * tx - g->pad_l + j;
                v[j] = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w
                           ? _mm256_loadu_ps(xt + ((n * g->h + iy) * g->w + ix) * d->ci16 + c0 + 8 * half)
                           : zero;
            }
            if (a == 4) bt4_8(v[0], v[1], v[2], v[3], h[i]);
            else bt6_8(v, h[i]);
        }
        for (int j = 0; j < a; j++) {
            __m256 col[6], e[6];
            for (int i = 0; i < a; i++) col[i] = h[i][j];
            if (a == 4) bt4_8(col[0], col[1], col[2], col[3], e);
            else bt6_8(col, e);
            for (int r = 0; r < a; r++) _mm256_storeu_ps(at + (a * r + j) * d->a_len + half * 8 * kc, e[r]);
        }
    }
}

/* dw_a on vectors of 8: the same operations */
__attribute__((target("avx2,fma"), always_inline)) static inline void dw_a8(int m, const __m256 *v, __m256 *out)
{
    __m256 zero = _mm256_setzero_ps();
    if (m == 2) {
        out[0] = v[0];
        out[1] = _mm256_add_ps(v[0], v[1]);
        out[2] = _mm256_sub_ps(v[0], v[1]);
        out[3] = _mm256_sub_ps(zero, v[1]);
        return;
    }
    const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f);
    __m256 even = _mm256_add_ps(v[0], v[2]), odd = _mm256_add_ps(v[1], v[3]);
    __m256 even4 = _mm256_fmadd_ps(four, v[2], v[0]), odd4 = _mm256_mul_ps(two, _mm256_fmadd_ps(four, v[3], v[1]));
    out[0] = v[0];
    out[1] = _mm256_add_ps(even, odd);
    out[2] = _mm256_sub_ps(even, odd);
    out[3] = _mm256_add_ps(even4, odd4);
    out[4] = _mm256_sub_ps(even4, odd4);
    out[5] = v[3];
}

/* tile t's Z into row k of the chunk's B panels, as dw_dy_tile; m: the tile's output size */
__attribute__((target("avx2,fma"), always_inline)) static inline void dw_dy_tile8(const dwgeom *d, const float *dyt,
                                                                                 int64_t t, int64_t o0, int64_t k,
                                                                                 int64_t kc, float *pb, const int m)
{
    const cn_conv_geom *g = d->g;
    const int a = m + 2;
    int64_t n = t / (d->th * d->tw), ty = t / d->tw % d->th, tx = t % d->tw;
    float *at = pb + o0 / CN_GEMM_NR * CN_GEMM_NR * kc + k * CN_GEMM_NR + o0 % CN_GEMM_NR;
    __m256 zero = _mm256_setzero_ps();
    for (int half = 0; half < 2; half++) {
        __m256 h[4][6];
        for (int i = 0; i < m; i++) {
            int64_t oy = m * ty + i;
            __m256 v[4];
            for (int j = 0; j < m; j++) {
                int64_t ox = m * tx + j;
                v[j] = oy < g->oh && ox < g->ow ? _mm256_loadu_ps(dyt + ((n * g->oh + oy) * g->ow + ox) * d->co16 + o0 + 8 * half)
                                                : zero;
            }
            dw_a8(m, v, h[i]);
        }
        for (int j = 0; j < a; j++) {
            __m256 col[4], e[6];
            for (int i = 0; i < m; i++) col[i] = h[i][j];
            dw_a8(m, col, e);
            for (int r = 0; r < a; r++) _mm256_storeu_ps(at + (a * r + j) * d->b_len + 8 * half, e[r]);
        }
    }
}

__attribute__((target("avx2,fma"))) static void dw_transform_chunk8(const dwgeom *d, const float *xt, const float *dyt,
                                                                   int64_t c0, int64_t kc, float *pa, float *pb)
{
    for (int64_t k = 0; k < kc; k++) {
        if (d->m == 2) {
            for (int64_t c = 0; c < d->ci8; c += 16) dw_in_tile8(d, xt, c0 + k, c, k, kc, pa, 4);
            for (int64_t o = 0; o < d->co16; o += 16) dw_dy_tile8(d, dyt, c0 + k, o, k, kc, pb, 2);
        } else {
            for (int64_t c = 0; c < d->ci8; c += 16) dw_in_tile8(d, xt, c0 + k, c, k, kc, pa, 6);
            for (int64_t o = 0; o < d->co16; o += 16) dw_dy_tile8(d, dyt, c0 + k, o, k, kc, pb, 4);
        }
    }
}

/* dw_gt on 4 doubles: the same operations */
__attribute__((target("avx2"), always_inline)) static inline void dw_gt_4(int a, const __m256d *q, __m256d *out)
{
    if (a == 4) {
        const __m256d half = _mm256_set1_pd(0.5);
        __m256d sum = _mm256_add_pd(q[1], q[2]);
        out[0] = _mm256_add_pd(q[0], _mm256_mul_pd(half, sum));
        out[1] = _mm256_mul_pd(half, _mm256_sub_pd(q[1], q[2]));
        out[2] = _mm256_add_pd(_mm256_mul_pd(half, sum), q[3]);
        return;
    }
    const __m256d quarter = _mm256_set1_pd(0.25), sixth = _mm256_set1_pd(1.0 / 6), twelfth = _mm256_set1_pd(1.0 / 12),
                  t24 = _mm256_set1_pd(1.0 / 24);
    __m256d s12 = _mm256_add_pd(q[1], q[2]), d21 = _mm256_sub_pd(q[2], q[1]);
    __m256d s34 = _mm256_add_pd(q[3], q[4]), d34 = _mm256_sub_pd(q[3], q[4]);
    out[0] = _mm256_add_pd(_mm256_sub_pd(_mm256_mul_pd(quarter, q[0]), _mm256_mul_pd(sixth, s12)), _mm256_mul_pd(t24, s34));
    out[1] = _mm256_add_pd(_mm256_mul_pd(sixth, d21), _mm256_mul_pd(twelfth, d34));
    out[2] = _mm256_add_pd(_mm256_mul_pd(sixth, _mm256_sub_pd(s34, s12)), q[5]);
}

/* dw_out_tile in AVX2: the 8 output channels' G^T M G in two vectors of 4 doubles */
__attribute__((target("avx2"), always_inline)) static inline void dw_out_8_avx2_a(const dwgeom *d, const float *m,
                                                                                 int64_t m_e, int64_t o, int64_t c,
                                                                                 float *dw, const int a)
{
    __m256 f[9];
    for (int half = 0; half < 2; half++) {
        __m256d q[6][6], r[3][6], w[3][3];
        for (int e = 0; e < a * a; e++) q[e / a][e % a] = _mm256_cvtps_pd(_mm_loadu_ps(m + e * m_e + 4 * half));
        for (int j = 0; j < a; j++) { /* G^T on the left */
            __m256d col[6], t[3];
            for (int i = 0; i < a; i++) col[i] = q[i][j];
            dw_gt_4(a, col, t);
            for (int i = 0; i < 3; i++) r[i][j] = t[i];
        }
        for (int i = 0; i < 3; i++) dw_gt_4(a, r[i], w[i]); /* G on the right */
        for (int k = 0; k < 9; k++) { /* lanes 4 half .. 4 half + 3 of tap k */
            __m128 v = _mm256_cvtpd_ps(w[k / 3][k % 3]);
            f[k] = half ? _mm256_insertf128_ps(f[k], v, 1) : _mm256_castps128_ps256(v);
        }
    }
    dw_add_taps(d->g, f, o, c, dw);
}

__attribute__((target("avx2"))) static void dw_out_8_avx2(const dwgeom *d, const float *m, int64_t m_e, int64_t o,
                                                         int64_t c, float *dw)
{
    if (d->a == 4) dw_out_8_avx2_a(d, m, m_e, o, c, dw, 4);
    else dw_out_8_avx2_a(d, m, m_e, o, c, dw, 6);
}

/* the entry points of the weight gradient's vector work: AVX-512's code or AVX2's */
static void transform_chunk(const dwgeom *d, const float *xt, const float *dyt, int64_t c0, int64_t kc, float *pa,
                            float *pb)
{
    if (cn_gemm_avx512()) dw_transform_chunk(d, xt, dyt, c0, kc, pa, pb);
    else dw_transform_chunk8(d, xt, dyt, c0, kc, pa, pb);
}

static void out_8(const dwgeom *d, const float *m, int64_t m_e, int64_t o, int64_t c, float *dw)
{
    if (cn_gemm_avx512()) dw_out_8(d, m, m_e, o, c, dw);
    else dw_out_8_avx2(d, m, m_e, o, c, dw);
}

/* dW += G^T M G per channel pair, in blocks of 16 x 16 pairs whose M stays in L1 */
static void dw_out(const dwgeom *d, const float *m, float *dw)
{
    const cn_conv_geom *g = d->g;
    int64_t ob = (g->cout + 15) / 16, cb = (g->cin + 15) / 16;
    CN_PAR_FOR(g->cout * g->cin >= 4096, schedule(static),
        for (int64_t blk = 0; blk < ob * cb; blk++)
            for (int64_t o = blk / cb * 16; o < g->cout && o < blk / cb * 16 + 16; o += 8)
                for (int64_t c = blk % cb * 16; c < g->cin && c < blk % cb * 16 + 16; c++)
                    out_8(d, m + c * d->co16 + o, g->cin * d->co16, o, c, dw););
}

/* M += the products of tiles [t0, t1), a chunk at a time; chunk: room for their panels,
 * 64-byte aligned */
static void dw_part(const dwgeom *d, const float *xt, const float *dyt, int64_t t0, int64_t t1, float *m, float *chunk)
{
    const cn_conv_geom *g = d->g;
    float *a = chunk, *b = chunk + d->ne * d->a_len;
    for (int64_t c0 = t0; c0 < t1; c0 += d->kt) {
        int64_t kc = t1 - c0 < d->kt ? t1 - c0 : d->kt;
        transform_chunk(d, xt, dyt, c0, kc, a, b);
        for (int e = 0; e < d->ne; e++)
            for (int64_t o = 0; o < g->cout; o += CN_GEMM_NR)
                cn_gemm_panel_add(g->cin, kc, a + e * d->a_len, b + e * d->b_len + o * kc, m + e * g->cin * d->co16 + o,
                                  d->co16, g->cout - o < CN_GEMM_NR ? g->cout - o : CN_GEMM_NR);
    }
}

/* dW += G^T M G of input channels [c0, c0 + rows) and the panel of output channels from o0, M
 * made in blk (its value (e, c, o) at blk + (e + (c - c0) ne) NR + o - o0) from every chunk's
 * panels, summed over the chunks in order */
static void dw_block(const dwgeom *d, const float *panels, int64_t c0, int64_t rows, int64_t o0, float *blk, float *dw)
{
    const cn_conv_geom *g = d->g;
    int64_t chunks = (d->tiles + d->kt - 1) / d->kt, len = dw_chunk_len(d);
    int64_t cols = g->cout - o0 < CN_GEMM_NR ? g->cout - o0 : CN_GEMM_NR;
    for (int e = 0; e < d->ne; e++)
        for (int64_t ch = 0; ch < chunks; ch++) {
            int64_t kc = d->tiles - ch * d->kt < d->kt ? d->tiles - ch * d->kt : d->kt;
            const float *a = panels + ch * len + e * d->a_len + c0 * kc;
            const float *b = panels + ch * len + d->ne * d->a_len + e * d->b_len + o0 * kc;
            if (ch) cn_gemm_panel_add(rows, kc, a, b, blk + e * CN_GEMM_NR, d->ne * CN_GEMM_NR, cols);
            else cn_gemm_panel(rows, kc, a, b, blk + e * CN_GEMM_NR, d->ne * CN_GEMM_NR, cols);
        }
    for (int64_t o = o0; o < o0 + cols; o += 8) /* dW's 8 rows a run of channels at a time */
        for (int64_t c = c0; c < c0 + rows; c++)
            out_8(d, blk + (c - c0) * d->ne * CN_GEMM_NR + o - o0, CN_GEMM_NR, o, c, dw);
}

/* Few tiles for many channel pairs (resnet18-cifar's 4x4 maps of 512 channels: 128 tiles at
 * batch 32, each M 16 MB): the parts' Ms cost more to zero, add and turn back through memory
 * than their products save. Instead every chunk's panels are made first, then each block of
 * DW_BLOCK_C input channels by a panel of output channels is one thread's job: its M (16 or 36
 * e of it, in L2) summed over the chunks in order and turned back at once. Each value of dW is
 * one sum in one order on any number of threads. panels: room for every chunk's, then a spare
 * block (64-byte aligned). */
static void dw_by_blocks_run(const dwgeom *d, const float *xt, const float *dyt, float *panels, float *dw)
{
    const cn_conv_geom *g = d->g;
    int64_t chunks = (d->tiles + d->kt - 1) / d->kt, len = dw_chunk_len(d);
    int64_t op = (g->cout + CN_GEMM_NR - 1) / CN_GEMM_NR, cb = (g->cin + DW_BLOCK_C - 1) / DW_BLOCK_C;
    float *spare = panels + chunks * len;
    CN_PAR_FOR(chunks > 1, schedule(static),
        for (int64_t ch = 0; ch < chunks; ch++) {
            int64_t kc = d->tiles - ch * d->kt < d->kt ? d->tiles - ch * d->kt : d->kt;
            transform_chunk(d, xt, dyt, ch * d->kt, kc, panels + ch * len, panels + ch * len + d->ne * d->a_len);
        });
    /* input channels outside: a thread's jobs share their panels' rows of V */
    CN_PAR_FOR(cb * op > 1, schedule(static),
        for (int64_t job = 0; job < cb * op; job++) {
            int64_t c0 = job / op * DW_BLOCK_C, rows = g->cin - c0 < DW_BLOCK_C ? g->cin - c0 : DW_BLOCK_C;
            float *blk = cn_thread_scratch((size_t)dw_block_len(d));
            if (blk) {
                dw_block(d, panels, c0, rows, job % op * CN_GEMM_NR, blk, dw);
            } else { /* the heap said no: the workspace's block, a thread at a time (the same bits) */
                _Pragma("omp critical(cn_winograd_spare)")
                dw_block(d, panels, c0, rows, job % op * CN_GEMM_NR, spare, dw);
            }
        });
}

void cn_cpu_winograd_weight_grad(const cn_conv_geom *g, const float *x, const float *dy, float *dw, float *work)
{
    dwgeom d = dwgeom_of(g);
    int64_t ml = dw_m_len(&d), parts = d.parts, tiles = d.tiles;
    float *xt = work, *dyt = xt + dw_xt_len(&d), *m = dyt + dw_dyt_len(&d);
    /* the panels 64-byte aligned, as the products read B (the sizes are all multiples of 16 floats) */
    float *spare = (float *)(((uintptr_t)(m + parts * ml) + 63) & ~(uintptr_t)63);
    channels_last(x, g->n, g->cin, g->h * g->w, d.ci16, xt);
    channels_last(dy, g->n, g->cout, g->oh * g->ow, d.co16, dyt);
    if (d.by_blocks) {
        dw_by_blocks_run(&d, xt, dyt, (float *)(((uintptr_t)m + 63) & ~(uintptr_t)63), dw);
        return;
    }
    size_t per_thread = (size_t)dw_chunk_len(&d);
    CN_PAR_FOR(parts > 1 && tiles * g->cin * g->cout >= 1 << 18, schedule(dynamic),
        for (int64_t p = 0; p < parts; p++) {
            float *mp = m + p * ml, *chunk = cn_thread_scratch(per_thread);
            memset(mp, 0, (size_t)ml * sizeof(float));
            if (chunk) {
                dw_part(&d, xt, dyt, tiles * p / parts, tiles * (p + 1) / parts, mp, chunk);
            } else { /* the heap said no: the workspace's chunk, a thread at a time (the same bits) */
                _Pragma("omp critical(cn_winograd_spare)")
                dw_part(&d, xt, dyt, tiles * p / parts, tiles * (p + 1) / parts, mp, spare);
            }
        });
    /* the parts added in order into the first */
    CN_PAR_FOR(parts > 1 && ml * parts >= 1 << 16, schedule(static),
        for (int64_t i0 = 0; i0 < ml; i0 += 1024)
            for (int64_t p = 1; p < parts; p++)
                for (int64_t i = i0; i < i0 + 1024 && i < ml; i++) m[i] += m[p * ml + i];);
    dw_out(&d, m, dw);
}

#else
void cn_cpu_winograd_conv(const cn_conv_geom *g, const float *x, const float *w, const float *u_made, const float *b,
                          float *y, int accumulate, int relu, const cn_pool_out *pool, float *work)
{
    (void)g, (void)x, (void)w, (void)u_made, (void)b, (void)y, (void)accumulate, (void)relu, (void)pool, (void)work; /* never */
}
int64_t cn_cpu_winograd_prep_floats(const cn_conv_geom *g) { return (void)g, 0; }
void cn_cpu_winograd_prepare(const cn_conv_geom *g, const float *w, float *u) { (void)g, (void)w, (void)u; /* never */ }
void cn_cpu_winograd_prepare_turned(const cn_conv_geom *t, const float *w, float *u)
{
    (void)t, (void)w, (void)u; /* never */
}
int cn_cpu_winograd_weight_way(const cn_conv_geom *g) { return (void)g, 0; }
void cn_cpu_winograd_dw4_force(int mode) { (void)mode; }
void cn_cpu_winograd_dw_blocks_force(int mode) { (void)mode; }
int64_t cn_cpu_winograd_weight_work(const cn_conv_geom *g) { return (void)g, 0; }
void cn_cpu_winograd_weight_grad(const cn_conv_geom *g, const float *x, const float *dy, float *dw, float *work)
{
    (void)g, (void)x, (void)dy, (void)dw, (void)work; /* never */
}
#endif
