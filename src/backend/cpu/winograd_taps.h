/* winograd_taps.h — what winograd.c and winograd4.c share: the input rows fetched ahead,
 * F(4x4,3x3)'s input transform (its forward's, and F(3x3,4x4)'s weight gradient's), and the
 * kernels' taps as both Winograd forms' weight transforms read them: 8 output channels of a panel of the products' A side by side, two
 * input channels a vector (a panel's columns c and c+1 lie side by side in its packed form),
 * staged a block at a time. */
#ifndef CN_WINOGRAD_TAPS_H
#define CN_WINOGRAD_TAPS_H

#include <immintrin.h>

#include "cpu_impl.h"
#include "gemm.h"

/* the same row two channels on into L1: the planes lie too far apart for the hardware to see it
 * coming (both forms' input transforms) */
__attribute__((target("avx512f"))) static inline void fetch_ahead(const cn_conv_geom *g, const char *row, int lines)
{
    const char *ahead = row + 2 * g->h * g->w * (int64_t)sizeof(float);
    for (int l = 0; l < lines; l++) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
}

/* The kernels of a panel's 8 output channels and a block of CN_TAPS_BLOCK input channels, copied
 * from w as runs into an L1 buffer for the gathers below: read straight from w, a gather's 8
 * lanes lay a whole row of kernels apart (Cin x 9 floats), and the profile of resnet18-cifar's
 * 512-channel weights' transform put 57 % of its time on one gather. From the buffer the
 * transform is bound by memory (w read, U written) and the step of two 4x4 512->512 layers at
 * batch 32 (convnet bench, 2 threads, 3 alternations) took 28.0-29.0 ms against 28.6-30.4.
 * turned: g is the transposed geometry of w's convolution (an input gradient), whose kernel
 * (o, c) is w's (c, o) flipped, read so without a copy of w. */
#define CN_TAPS_BLOCK 16
typedef struct {
    float f[8 * CN_TAPS_BLOCK * 9];
    int64_t row, chan; /* floats from one output channel's kernel to the next's, and input channel's */
} cn_taps_block;

/* the block of output channels 8ip .. 8ip+7 (those below Cout) and input channels c0 .. c0+15
 * (those below Cin): runs of w as they lie in it, a kernel's 9 taps in w's order (plain C: the
 * AVX-512 and the AVX2 transforms both stage so) */
static inline void cn_winograd_taps_stage(const cn_conv_geom *g, const float *w, int turned, int64_t ip, int64_t c0, cn_taps_block *b)
{
    int64_t rows = g->cout - ip * 8 < 8 ? g->cout - ip * 8 : 8;
    int64_t chans = g->cin - c0 < CN_TAPS_BLOCK ? g->cin - c0 : CN_TAPS_BLOCK;
    if (!turned) { /* w (Cout, Cin, 9): each output channel's run of the block's input channels */
        b->row = CN_TAPS_BLOCK * 9, b->chan = 9;
        cn_copy_rows(b->f, b->row, w + (ip * 8 * g->cin + c0) * 9, g->cin * 9, rows, chans * 9);
    } else { /* w (Cin, Cout, 9) seen from g: each input channel's run of the panel's output channels */
        b->row = 9, b->chan = 8 * 9;
        cn_copy_rows(b->f, b->chan, w + (c0 * g->cout + ip * 8) * 9, g->cout * 9, chans, rows * 9);
    }
}

/* kk[i] <- tap i of the kernels of output channels 8ip .. 8ip+7 (lanes 0-7) and input channels
 * c (lanes 0-7) and c+1 (lanes 8-15), zeros past Cout, from the block staged from c0; returns
 * the lanes that hold an input channel (lanes 0-7 alone for an odd last one). Turned: w's taps
 * in reverse (the kernel flipped). */
__attribute__((target("avx512f"), always_inline)) static inline __mmask16
cn_winograd_taps(const cn_conv_geom *g, const cn_taps_block *b, int turned, int64_t ip, int64_t c0, int64_t c,
                 __m512 kk[9])
{
    int64_t rows = g->cout - ip * 8 < 8 ? g->cout - ip * 8 : 8;
    __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
    __m512i apart = _mm512_add_epi32(_mm512_mullo_epi32(lane, _mm512_set1_epi32((int)b->row)),
                                     _mm512_maskz_set1_epi32(0xFF00, (int)b->chan));
    __mmask16 live = _mm512_cmpgt_epi32_mask(_mm512_set1_epi32((int)rows), lane);
    __mmask16 both = c + 1 < g->cin ? 0xFFFF : 0x00FF;
    const float *k = b->f + (c - c0) * b->chan;
    for (int i = 0; i < 9; i++)
        kk[i] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live & both, apart, k + (turned ? 8 - i : i), 4);
    return both;
}

/* F(4x4,3x3)'s B^T (winograd4.c) applied to six vectors (a row of d, or a column of d B) */
__attribute__((target("avx512f"), always_inline)) static inline void bt6(const __m512 d[6], __m512 r[6])
{
    const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f), two = _mm512_set1_ps(2.0f);
    __m512 t0 = _mm512_fnmadd_ps(four, d[2], d[4]), t1 = _mm512_fnmadd_ps(four, d[1], d[3]);
    __m512 t2 = _mm512_sub_ps(d[4], d[2]), t3 = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
    r[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
    r[1] = _mm512_add_ps(t0, t1);
    r[2] = _mm512_sub_ps(t0, t1);
    r[3] = _mm512_add_ps(t2, t3);
    r[4] = _mm512_sub_ps(t2, t3);
    r[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

/* bt6 on vectors of 8 (AVX2's F(4x4,3x3) and F(3x3,4x4)): the same operations, so the same bits */
__attribute__((target("avx2,fma"), always_inline)) static inline void bt6_8(const __m256 d[6], __m256 r[6])
{
    const __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f), two = _mm256_set1_ps(2.0f);
    __m256 t0 = _mm256_fnmadd_ps(four, d[2], d[4]), t1 = _mm256_fnmadd_ps(four, d[1], d[3]);
    __m256 t2 = _mm256_sub_ps(d[4], d[2]), t3 = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));
    r[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));
    r[1] = _mm256_add_ps(t0, t1);
    r[2] = _mm256_sub_ps(t0, t1);
    r[3] = _mm256_add_ps(t2, t3);
    r[4] = _mm256_sub_ps(t2, t3);
    r[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));
}

#endif
