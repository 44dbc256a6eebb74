/* test_show.c — what `convnet show` draws: the grid layout of cn_grid_size, the pixels of
 * cn_grid_draw (symmetric and per-map min..max normalisation, nearest-neighbour upscaling, the
 * 3x5 digits of the labels) and cn_net_layer_output. Every expected size and pixel is worked
 * out by hand in the comments from the layout described in convnet.h. */
#include <stdlib.h>

#include "harness.h"
#include "convnet.h"

static cn_ctx *ctx;

static void setup(void) { CHECK(cn_ctx_create(NULL, &ctx) == CN_OK); }

static void size_is(cn_grid g, int64_t want_h, int64_t want_w)
{
    int64_t h = -1, w = -1;
    CHECK(cn_grid_size(ctx, &g, &h, &w) == CN_OK);
    CHECK_INT(h, want_h);
    CHECK_INT(w, want_w);
}

static void test_layout(void)
{
    setup();
    /* 2 tiles -> 2 columns, 1 row; tile 6x6; label "1": 1*8 - 2 = 6 wide; cell 6.
     * width 2*6 + 3*2 = 18, height (12 + 6) + 2*2 = 22 */
    size_is((cn_grid){ .n = 2, .c = 1, .h = 2, .w = 2, .scale = 3 }, 22, 18);
    /* 10 tiles -> 4 columns (9 < 10 <= 16), 3 rows; tile 2x2; cell max(2, 6) = 6.
     * width 4*6 + 5*2 = 34, height 3*(12 + 2) + 4*2 = 50 */
    size_is((cn_grid){ .n = 10, .c = 3, .h = 1, .w = 1, .scale = 2 }, 50, 34);
    /* 11 tiles in 5 columns -> 3 rows; labels up to "10": 2*8 - 2 = 14 wide > tile 3.
     * width 5*14 + 6*2 = 82, height 3*(12 + 3) + 4*2 = 53 */
    size_is((cn_grid){ .n = 11, .c = 1, .h = 3, .w = 3, .scale = 1, .cols = 5 }, 53, 82);
    /* 64 filters 3x3 at 16 px: 8 columns, 8 rows of 48 x (12 + 48) cells: 8*48 + 9*2 = 402, 8*60 + 18 = 498 */
    size_is((cn_grid){ .n = 64, .c = 3, .h = 3, .w = 3, .scale = 16 }, 498, 402);
    /* more columns than tiles: as many columns as tiles */
    size_is((cn_grid){ .n = 2, .c = 1, .h = 2, .w = 2, .scale = 3, .cols = 7 }, 22, 18);

    int64_t h, w;
    CHECK(cn_grid_size(ctx, &(cn_grid){ .n = 1, .c = 2, .h = 1, .w = 1, .scale = 1 }, &h, &w) == CN_E_ARG);
    CHECK(h == 0 && w == 0);
    CHECK(cn_grid_size(ctx, &(cn_grid){ .n = 1, .c = 1, .h = 1, .w = 1, .scale = 0 }, &h, &w) == CN_E_ARG);
    CHECK(cn_grid_size(ctx, &(cn_grid){ .n = 0, .c = 1, .h = 1, .w = 1, .scale = 1 }, &h, &w) == CN_E_ARG);
    CHECK(cn_grid_size(ctx, &(cn_grid){ .n = 1, .c = 1, .h = 1, .w = 1, .scale = 1, .norm = 7 }, &h, &w) == CN_E_ARG);
    /* 65536*256 = 2^24 px a side: far over 2^28 pixels */
    CHECK(cn_grid_size(ctx, &(cn_grid){ .n = 1, .c = 1, .h = 65536, .w = 65536, .scale = 256 }, &h, &w) ==
          CN_E_OVERFLOW);
    CHECK_CONTAINS(cn_ctx_message(ctx), "2^28");
    cn_ctx_destroy(ctx);
}

/* pixel (x, y) of channel ch of a picture w wide and h high */
#define PX(out, ch, x, y, w, h) (out)[(int64_t)(ch) * (w) * (h) + (int64_t)(y) * (w) + (x)]

static void test_symmetric(void)
{
    setup();
    /* the layout of the first picture of test_layout: 18 x 22; tile 0 at x 2..7, tile 1 at
     * x 10..15, both at y 14..19 (gap 2 + label strip 12); labels at y 2..11 */
    float maps[8] = { -1, 0, 0.5f, 1, /* tile 1 */ 2, -2, 0, 0 };
    float out[18 * 22];
    cn_grid g = { .n = 2, .c = 1, .h = 2, .w = 2, .scale = 3, .norm = CN_GRID_SYMMETRIC };
    CHECK(cn_grid_draw(ctx, &g, maps, out) == CN_OK);
    /* max|v| = 2: pixel = 0.5 + 0.5 v / 2 */
    CHECK_NEAR(PX(out, 0, 2, 14, 18, 22), 0.25, 1e-6); /* -1, its 3x3 block x 2..4, y 14..16 */
    CHECK_NEAR(PX(out, 0, 4, 16, 18, 22), 0.25, 1e-6);
    CHECK_NEAR(PX(out, 0, 5, 14, 18, 22), 0.5, 1e-6);  /* 0 at x 5..7 */
    CHECK_NEAR(PX(out, 0, 7, 16, 18, 22), 0.5, 1e-6);
    CHECK_NEAR(PX(out, 0, 2, 17, 18, 22), 0.625, 1e-6); /* 0.5 at y 17..19 */
    CHECK_NEAR(PX(out, 0, 4, 19, 18, 22), 0.625, 1e-6);
    CHECK_NEAR(PX(out, 0, 7, 19, 18, 22), 0.75, 1e-6); /* 1 */
    CHECK_NEAR(PX(out, 0, 10, 14, 18, 22), 1.0, 1e-6); /* tile 1: 2 -> white */
    CHECK_NEAR(PX(out, 0, 13, 14, 18, 22), 0.0, 1e-6); /* -2 -> black */
    CHECK_NEAR(PX(out, 0, 15, 19, 18, 22), 0.5, 1e-6); /* 0 -> grey */
    /* background: corners, the gap between the tiles, under the labels */
    CHECK_NEAR(PX(out, 0, 0, 0, 18, 22), 1.0, 0);
    CHECK_NEAR(PX(out, 0, 17, 21, 18, 22), 1.0, 0);
    CHECK_NEAR(PX(out, 0, 8, 14, 18, 22), 1.0, 0);
    CHECK_NEAR(PX(out, 0, 9, 19, 18, 22), 1.0, 0);
    CHECK_NEAR(PX(out, 0, 2, 12, 18, 22), 1.0, 0);
    /* "0" at (2, 2), each font pixel 2x2: rows 111 101 101 101 111 */
    CHECK_NEAR(PX(out, 0, 2, 2, 18, 22), 0.0, 0);
    CHECK_NEAR(PX(out, 0, 5, 3, 18, 22), 0.0, 0);  /* row 0, column 1 */
    CHECK_NEAR(PX(out, 0, 4, 4, 18, 22), 1.0, 0);  /* row 1, column 1: the hole */
    CHECK_NEAR(PX(out, 0, 5, 9, 18, 22), 1.0, 0);  /* row 3, column 1 */
    CHECK_NEAR(PX(out, 0, 6, 4, 18, 22), 0.0, 0);  /* row 1, column 2 */
    CHECK_NEAR(PX(out, 0, 7, 11, 18, 22), 0.0, 0); /* row 4, column 2 */
    /* "1" at (10, 2): rows 010 110 010 010 111 */
    CHECK_NEAR(PX(out, 0, 10, 2, 18, 22), 1.0, 0);
    CHECK_NEAR(PX(out, 0, 12, 2, 18, 22), 0.0, 0);
    CHECK_NEAR(PX(out, 0, 10, 4, 18, 22), 0.0, 0);
    CHECK_NEAR(PX(out, 0, 10, 6, 18, 22), 1.0, 0);
    CHECK_NEAR(PX(out, 0, 10, 10, 18, 22), 0.0, 0);
    CHECK_NEAR(PX(out, 0, 15, 11, 18, 22), 0.0, 0);

    /* all zeros: grey, not a division by zero */
    float zeros[8] = { 0 };
    CHECK(cn_grid_draw(ctx, &g, zeros, out) == CN_OK);
    CHECK_NEAR(PX(out, 0, 2, 14, 18, 22), 0.5, 0);
    cn_ctx_destroy(ctx);
}

static void test_minmax(void)
{
    setup();
    /* one RGB tile 1x2: width 6 + 4 = 10 (the label is wider than the tile), height 12 + 1 + 4 = 17;
     * the tile at (2, 14). min 1 and max 5 over its three channels: pixel = (v - 1) / 4 */
    float rgb[6] = { 1, 5, /* G */ 3, 3, /* B */ 2, 4 };
    float out[3 * 10 * 17];
    cn_grid g = { .n = 1, .c = 3, .h = 1, .w = 2, .scale = 1, .norm = CN_GRID_MINMAX_EACH };
    CHECK(cn_grid_draw(ctx, &g, rgb, out) == CN_OK);
    CHECK_NEAR(PX(out, 0, 2, 14, 10, 17), 0.0, 1e-6);
    CHECK_NEAR(PX(out, 0, 3, 14, 10, 17), 1.0, 1e-6);
    CHECK_NEAR(PX(out, 1, 2, 14, 10, 17), 0.5, 1e-6);
    CHECK_NEAR(PX(out, 1, 3, 14, 10, 17), 0.5, 1e-6);
    CHECK_NEAR(PX(out, 2, 2, 14, 10, 17), 0.25, 1e-6);
    CHECK_NEAR(PX(out, 2, 3, 14, 10, 17), 0.75, 1e-6);
    for (int ch = 0; ch < 3; ch++) {
        CHECK_NEAR(PX(out, ch, 4, 14, 10, 17), 1.0, 0); /* in the cell, right of the tile */
        CHECK_NEAR(PX(out, ch, 2, 2, 10, 17), 0.0, 0);  /* the label "0" is black in every channel */
    }

    /* each map its own range: tile 0 {1, 3} -> 0, 1; tile 1 flat {7, 7} -> black.
     * 2 columns of 6: width 18, height 17; tiles at (2, 14) and (10, 14) */
    float two[4] = { 1, 3, 7, 7 };
    float out2[18 * 17];
    g = (cn_grid){ .n = 2, .c = 1, .h = 1, .w = 2, .scale = 1, .norm = CN_GRID_MINMAX_EACH };
    CHECK(cn_grid_draw(ctx, &g, two, out2) == CN_OK);
    CHECK_NEAR(PX(out2, 0, 2, 14, 18, 17), 0.0, 1e-6);
    CHECK_NEAR(PX(out2, 0, 3, 14, 18, 17), 1.0, 1e-6);
    CHECK_NEAR(PX(out2, 0, 10, 14, 18, 17), 0.0, 0);
    CHECK_NEAR(PX(out2, 0, 11, 14, 18, 17), 0.0, 0);
    CHECK_NEAR(PX(out2, 0, 12, 14, 18, 17), 1.0, 0);

    /* one range for all the maps (min 1, max 7): pixel = (v - 1) / 6, so tile 1's flat 7s are
     * white, not black; three maps of one value each (-2, 0, 4): 0, 1/3, 1 */
    g.norm = CN_GRID_MINMAX_ALL;
    CHECK(cn_grid_draw(ctx, &g, two, out2) == CN_OK);
    CHECK_NEAR(PX(out2, 0, 2, 14, 18, 17), 0.0, 1e-6);
    CHECK_NEAR(PX(out2, 0, 3, 14, 18, 17), 2.0 / 6, 1e-6);
    CHECK_NEAR(PX(out2, 0, 10, 14, 18, 17), 1.0, 1e-6);
    CHECK_NEAR(PX(out2, 0, 11, 14, 18, 17), 1.0, 1e-6);
    float ones[3] = { -2, 0, 4 }, out3[18 * 32]; /* 2 columns (ceil(sqrt(3))), cells 6 wide: 18 x 32 */
    g = (cn_grid){ .n = 3, .c = 1, .h = 1, .w = 1, .scale = 1, .norm = CN_GRID_MINMAX_ALL };
    int64_t gh, gw;
    CHECK(cn_grid_size(ctx, &g, &gh, &gw) == CN_OK && gh == 32 && gw == 18);
    CHECK(cn_grid_draw(ctx, &g, ones, out3) == CN_OK);
    CHECK_NEAR(PX(out3, 0, 2, 14, 18, 32), 0.0, 1e-6);
    CHECK_NEAR(PX(out3, 0, 10, 14, 18, 32), 1.0 / 3, 1e-6);
    CHECK_NEAR(PX(out3, 0, 2, 29, 18, 32), 1.0, 1e-6);
    cn_ctx_destroy(ctx);
}

static void test_two_digit_label(void)
{
    setup();
    /* 11 tiles 3x3 in 5 columns: 82 x 53, cells 14 wide. Tile 10 is row 2, column 0: its label
     * "10" at x 2, y 2 + 2*(12 + 3 + 2) = 36; "1" at x 2..7, "0" at x 10..15 */
    float maps[11 * 9];
    for (int i = 0; i < 11 * 9; i++) maps[i] = (float)(i % 9) - 4;
    float *out = malloc(82 * 53 * sizeof *out);
    CHECK(out != NULL);
    cn_grid g = { .n = 11, .c = 1, .h = 3, .w = 3, .scale = 1, .cols = 5 };
    CHECK(cn_grid_draw(ctx, &g, maps, out) == CN_OK);
    CHECK_NEAR(PX(out, 0, 2, 36, 82, 53), 1.0, 0);  /* "1" row 0 column 0 */
    CHECK_NEAR(PX(out, 0, 4, 36, 82, 53), 0.0, 0);  /* "1" row 0 column 1 */
    CHECK_NEAR(PX(out, 0, 8, 36, 82, 53), 1.0, 0);  /* the space between the digits */
    CHECK_NEAR(PX(out, 0, 10, 36, 82, 53), 0.0, 0); /* "0" row 0 column 0 */
    CHECK_NEAR(PX(out, 0, 12, 38, 82, 53), 1.0, 0); /* "0" row 1 column 1 */
    CHECK_NEAR(PX(out, 0, 14, 38, 82, 53), 0.0, 0); /* "0" row 1 column 2 */
    /* tile 10's values -4..4 (max|v| 4) at x 2..4, y 48..50: the first is -4 -> black, the centre 0 -> grey */
    CHECK_NEAR(PX(out, 0, 2, 48, 82, 53), 0.0, 1e-6);
    CHECK_NEAR(PX(out, 0, 3, 49, 82, 53), 0.5, 1e-6);
    CHECK_NEAR(PX(out, 0, 4, 50, 82, 53), 1.0, 1e-6);
    /* tile 6: row 1, column 1 at x 2 + 16 = 18, y 2 + 17 + 12 = 31 */
    CHECK_NEAR(PX(out, 0, 18, 31, 82, 53), 0.0, 1e-6);
    CHECK_NEAR(PX(out, 0, 20, 33, 82, 53), 1.0, 1e-6);
    free(out);
    cn_ctx_destroy(ctx);
}

static void test_layer_output(void)
{
    setup();
    cn_net *net;
    const char *spec = "input 3x3x1; conv 1 2x2; relu; flatten; dense 2";
    CHECK(cn_net_parse(ctx, spec, strlen(spec), "-e", &net) == CN_OK);
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    int64_t count = -1;
    CHECK(cn_net_layer_output(net, 1, &count) == NULL); /* before any forward */
    CHECK_INT(count, 0);
    cn_tensor w, b;
    CHECK(cn_net_find_tensor(ctx, net, "conv1.weight", &w) == CN_OK);
    CHECK(cn_net_find_tensor(ctx, net, "conv1.bias", &b) == CN_OK);
    /* y = 2 - x at the top-left of each 2x2 window: x 1 2 / 4 5 -> 1 0 / -2 -3; relu: 1 0 / 0 0 */
    const float kernel[4] = { -1, 0, 0, 0 };
    memcpy(w.data, kernel, sizeof kernel);
    b.data[0] = 2;
    const float x[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    CHECK(cn_net_forward(ctx, net, x, 1, 0) == CN_OK);
    const float *in = cn_net_layer_output(net, 0, &count);
    CHECK_INT(count, 9);
    CHECK(in && in[8] == 9);
    const float *conv = cn_net_layer_output(net, 1, &count);
    CHECK_INT(count, 4);
    const float want_conv[4] = { 1, 0, -2, -3 }, want_relu[4] = { 1, 0, 0, 0 };
    for (int i = 0; conv && i < 4; i++) CHECK_NEAR(conv[i], want_conv[i], 1e-6);
    const float *relu = cn_net_layer_output(net, 2, &count);
    for (int i = 0; relu && i < 4; i++) CHECK_NEAR(relu[i], want_relu[i], 0);
    CHECK(cn_net_layer_output(net, cn_net_layer_count(net) - 1, NULL) == cn_net_output(net, NULL));
    CHECK(cn_net_layer_output(net, cn_net_layer_count(net), &count) == NULL);
    CHECK(cn_net_layer_output(net, -1, NULL) == NULL);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

static const test_case cases[] = {
    { "grid layout and its errors", test_layout },
    { "symmetric normalisation, upscaling, the digits", test_symmetric },
    { "min..max per map, RGB tiles, a flat map", test_minmax },
    { "two-digit labels in a 5-column grid", test_two_digit_label },
    { "cn_net_layer_output", test_layer_output },
};

TEST_MAIN(cases)
