/* draw.c — grids of labelled tiles for `convnet show` (a conv layer's kernels, a layer's
 * activation maps): layout, normalisation, nearest-neighbour upscaling and a 3x5 bitmap font
 * for the tiles' indices. The layout is described next to cn_grid in convnet.h. Covered by
 * tests/test_show.c (pixels computed by hand) and tests/cli_test.sh (the command). */
#include <math.h>

#include "../core/core_impl.h"

#define FONT_SCALE 2                  /* a glyph is 6 x 10 output pixels */
#define GLYPH_ADVANCE (4 * FONT_SCALE) /* 3 columns + 1 column of spacing */

/* Digits 3 wide, 5 high: one byte per row, bit 2 the left column. */
static const unsigned char digit_glyph[10][5] = {
    { 7, 5, 5, 5, 7 }, { 2, 6, 2, 2, 7 }, { 7, 1, 7, 4, 7 }, { 7, 1, 7, 1, 7 }, { 5, 5, 7, 1, 1 },
    { 7, 4, 7, 1, 7 }, { 7, 4, 7, 5, 7 }, { 7, 1, 1, 1, 1 }, { 7, 5, 7, 5, 7 }, { 7, 5, 7, 1, 7 },
};

static int64_t digits(int64_t v)
{
    int64_t d = 1;
    while (v >= 10) v /= 10, d++;
    return d;
}

typedef struct layout {
    int64_t cols, rows;
    int64_t tile_h, tile_w; /* h*scale, w*scale */
    int64_t cell_w;         /* max(tile_w, widest label) */
    int64_t height, width;
} layout;

static cn_status plan_layout(cn_ctx *ctx, const cn_grid *g, layout *L)
{
    if (!g || g->n < 1 || g->n > (1 << 20) || (g->c != 1 && g->c != 3) || g->h < 1 || g->w < 1 ||
        g->h > (1 << 16) || g->w > (1 << 16) || g->scale < 1 || g->scale > 256 || g->cols < 0 ||
        (g->norm != CN_GRID_SYMMETRIC && g->norm != CN_GRID_MINMAX_EACH && g->norm != CN_GRID_MINMAX_ALL))
        return cn_fail(ctx, CN_E_ARG, "grid: bad layout (n %lld, c %lld, %lldx%lld, scale %lld, cols %lld)",
                       g ? (long long)g->n : 0, g ? (long long)g->c : 0, g ? (long long)g->h : 0,
                       g ? (long long)g->w : 0, g ? (long long)g->scale : 0, g ? (long long)g->cols : 0);
    L->cols = g->cols;
    if (!L->cols)
        while (L->cols * L->cols < g->n) L->cols++;
    if (L->cols > g->n) L->cols = g->n;
    L->rows = (g->n + L->cols - 1) / L->cols;
    L->tile_h = g->h * g->scale;
    L->tile_w = g->w * g->scale;
    int64_t label_w = digits(g->n - 1) * GLYPH_ADVANCE - FONT_SCALE;
    L->cell_w = L->tile_w > label_w ? L->tile_w : label_w;
    /* every term is below 2^20 * 2^24, so only the product can overflow */
    L->width = L->cols * L->cell_w + (L->cols + 1) * CN_GRID_GAP;
    L->height = L->rows * (CN_GRID_LABEL_H + L->tile_h) + (L->rows + 1) * CN_GRID_GAP;
    int64_t px;
    if (!cn_mul_ok(L->width, L->height, &px) || px > ((int64_t)1 << 28))
        return cn_fail(ctx, CN_E_OVERFLOW, "grid: a %lld x %lld picture is over 2^28 pixels", (long long)L->width,
                       (long long)L->height);
    return CN_OK;
}

cn_status cn_grid_size(cn_ctx *ctx, const cn_grid *g, int64_t *height, int64_t *width)
{
    layout L = { 0 };
    *height = *width = 0;
    cn_status st = plan_layout(ctx, g, &L);
    if (st) return st;
    *height = L.height;
    *width = L.width;
    return CN_OK;
}

/* the decimal digits of v, black, top-left at (x, y) of plane (width wide), in every channel */
static void draw_number(float *out, int64_t c, int64_t plane, int64_t width, int64_t x, int64_t y, int64_t v)
{
    int64_t nd = digits(v);
    for (int64_t k = nd - 1; k >= 0; k--, v /= 10) {
        const unsigned char *glyph = digit_glyph[v % 10];
        int64_t gx = x + k * GLYPH_ADVANCE;
        for (int r = 0; r < 5 * FONT_SCALE; r++)
            for (int col = 0; col < 3 * FONT_SCALE; col++)
                if (glyph[r / FONT_SCALE] >> (2 - col / FONT_SCALE) & 1)
                    for (int64_t ch = 0; ch < c; ch++) out[ch * plane + (y + r) * width + gx + col] = 0.0f;
    }
}

/* the offset and multiplier taking v[0..n)'s finite min to 0 and max to 1; flat (or none): 0 */
static void minmax_scale(const float *v, int64_t n, float *offset, float *mul)
{
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(v[i])) lo = fminf(lo, v[i]), hi = fmaxf(hi, v[i]);
    *mul = hi > lo ? 1.0f / (hi - lo) : 0;
    *offset = hi > lo ? -lo * *mul : 0;
}

cn_status cn_grid_draw(cn_ctx *ctx, const cn_grid *g, const float *maps, float *out)
{
    layout L = { 0 };
    cn_status st = plan_layout(ctx, g, &L);
    if (st) return st;
    if (!maps || !out) return cn_fail(ctx, CN_E_ARG, "cn_grid_draw: NULL maps or out");
    int64_t plane = L.width * L.height, hw = g->h * g->w, map = g->c * hw;
    for (int64_t i = 0; i < g->c * plane; i++) out[i] = 1.0f;

    /* symmetric: one scale for all the maps, so a weak filter looks weak; pixel = offset + mul * v */
    float offset = 0.5f, mul = 0;
    if (g->norm == CN_GRID_SYMMETRIC) {
        float amax = 0;
        for (int64_t i = 0; i < g->n * map; i++)
            if (isfinite(maps[i]) && fabsf(maps[i]) > amax) amax = fabsf(maps[i]);
        mul = amax > 0 ? 0.5f / amax : 0;
    } else if (g->norm == CN_GRID_MINMAX_ALL) {
        minmax_scale(maps, g->n * map, &offset, &mul);
    }

    for (int64_t t = 0; t < g->n; t++) {
        const float *m = maps + t * map;
        if (g->norm == CN_GRID_MINMAX_EACH) minmax_scale(m, map, &offset, &mul);
        int64_t x0 = CN_GRID_GAP + (t % L.cols) * (L.cell_w + CN_GRID_GAP);
        int64_t y0 = CN_GRID_GAP + (t / L.cols) * (CN_GRID_LABEL_H + L.tile_h + CN_GRID_GAP);
        draw_number(out, g->c, plane, L.width, x0, y0, t);
        y0 += CN_GRID_LABEL_H;
        for (int64_t ch = 0; ch < g->c; ch++)
            for (int64_t y = 0; y < L.tile_h; y++)
                for (int64_t x = 0; x < L.tile_w; x++) {
                    float v = m[ch * hw + (y / g->scale) * g->w + x / g->scale];
                    out[ch * plane + (y0 + y) * L.width + x0 + x] = isfinite(v) ? offset + mul * v : 0.0f;
                }
    }
    return CN_OK;
}
