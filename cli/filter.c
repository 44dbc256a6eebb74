/* filter.c — `convnet filter`: a classic kernel (edge, sharpen, blur, ...) or one from a file
 * applied to a PNG or JPEG at its native size, written as a PNG; --print shows the kernel and
 * the numbers of a small image as a worksheet would. The arithmetic is cn_image_filter (the
 * conv layer's reference kernel). Covered by tests/cli_test.sh and tests/test_filter.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"

#define PRINT_MAX 16 /* --print shows the numbers of images up to 16x16 */

/* The named kernels: integer weights and a divisor, so that the sums stay exact integers and
 * one division rounds once (a blur of 30s gives 30, not 29.999998). Seed 002's three first. */
static const struct {
    const char *name;
    float v[9]; /* 3x3, row by row */
    float div;
    const char *what;
} kernels[] = {
    { "edge", { -1, -1, -1, -1, 8, -1, -1, -1, -1 }, 1, "edge detection: sums to 0, black on a solid fill" },
    { "sharpen", { 0, -1, 0, -1, 5, -1, 0, -1, 0 }, 1, "sharpening: sums to 1, solid fills unchanged" },
    { "blur", { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 9, "box blur: the mean of each 3x3 patch" },
    { "gaussian", { 1, 2, 1, 2, 4, 2, 1, 2, 1 }, 16, "Gaussian blur" },
    { "sobel-x", { -1, 0, 1, -2, 0, 2, -1, 0, 1 }, 1, "Sobel: brightness rising to the right (vertical edges)" },
    { "sobel-y", { -1, -2, -1, 0, 0, 0, 1, 2, 1 }, 1, "Sobel: brightness rising downwards (horizontal edges)" },
    { "emboss", { -2, -1, 0, -1, 1, 1, 0, 1, 2 }, 1, "emboss" },
    { "identity", { 0, 0, 0, 0, 1, 0, 0, 0, 0 }, 1, "the image itself (3x3: pad 1 or same keeps the size)" },
};
#define NKERNELS (sizeof kernels / sizeof kernels[0])

#define STR(x) STR_(x)
#define STR_(x) #x

static void help(const cli_option *opts)
{
    printf("usage: convnet filter IMAGE --kernel NAME|@FILE [--stride S] [--pad P|same] [--gray]\n"
           "                      [--rescale] [--print] -o OUT.png\n\n"
           "Applies a 2-D kernel to each channel of a PNG or JPEG (or to its gray version) at its own\n"
           "size and writes an 8-bit PNG. Pixels are 0..255. The kernel slides as in a conv layer:\n"
           "cross-correlation, y[i][j] = sum k[u][v] * x[i*S + u - P][j*S + v - P], with no flip.\n\n"
           "  --kernel NAME      one of:\n");
    for (size_t i = 0; i < NKERNELS; i++) {
        const float *v = kernels[i].v;
        printf("                       %-9s %g %g %g / %g %g %g / %g %g %g", kernels[i].name, v[0], v[1], v[2], v[3],
               v[4], v[5], v[6], v[7], v[8]);
        if (kernels[i].div != 1) printf(", /%g", kernels[i].div);
        printf("\n                                 %s\n", kernels[i].what);
    }
    printf("  --kernel @FILE     numbers, one kernel row per line (any size; rows of equal length)\n"
           "  --kernel '1,0,-1;1,0,-1;1,0,-1'   the same inline: rows split by ';'\n");
    cli_print_options(opts, 18);
    printf("\nexamples:\n"
           "  convnet filter photo.jpg --kernel edge --gray -o edges.png\n"
           "  convnet filter six.png --kernel '1,0,-1;1,0,-1;1,0,-1' --print\n");
}

/* an integer when exact, else 6 significant digits */
static int format_value(char *buf, size_t cap, float v)
{
    if (v == 0) v = 0; /* no "-0" */
    if (v == rintf(v) && fabsf(v) < 1e9f) return snprintf(buf, cap, "%.0f", (double)v);
    return snprintf(buf, cap, "%.6g", (double)v);
}

static void print_grid(const float *v, int64_t rows, int64_t cols, float div)
{
    char buf[32];
    int width = 1;
    for (int64_t i = 0; i < rows * cols; i++) {
        int l = format_value(buf, sizeof buf, v[i] / div);
        if (l > width) width = l;
    }
    for (int64_t r = 0; r < rows; r++) {
        printf(" ");
        for (int64_t c = 0; c < cols; c++) {
            format_value(buf, sizeof buf, v[r * cols + c] / div);
            printf(" %*s", width, buf);
        }
        printf("\n");
    }
}

/* "rows: floor((6 + 2*0 - 3)/1) + 1 = 4" or, for pad=same, "rows: ceil(6/1) = 6" */
static void print_size(const char *what, int64_t n, int64_t k, int64_t stride, int64_t pad, int64_t out)
{
    if (pad == CN_FILTER_PAD_SAME)
        printf("%s ceil(%lld/%lld) = %lld (pad=same)\n", what, (long long)n, (long long)stride, (long long)out);
    else
        printf("%s floor((%lld + 2*%lld - %lld)/%lld) + 1 = %lld\n", what, (long long)n, (long long)pad, (long long)k,
               (long long)stride, (long long)out);
}

int cmd_filter(int argc, char **argv)
{
    const char *image = NULL, *kname = NULL, *out = NULL, *spad = NULL;
    int64_t stride = 1, pad = 0;
    int gray = 0, rescale = 0, print = 0;
    const cli_option opts[] = {
        { "--kernel", "NAME|@FILE", CLI_TEXT, &kname, .help = NULL }, /* help() says its three forms */
        { "--stride", "S", CLI_INT, &stride, 1, INT64_C(1) << 20, .help = "default 1" },
        { "--pad", "P|same", CLI_TEXT, &spad,
          .help = "zero padding on every side, default 0; same: as conv pad=same\n"
                  "(ceil(n/S) outputs); else the output is floor((n + 2P - k)/S) + 1" },
        { "--gray", NULL, CLI_FLAG, &gray, .help = "filter the gray image (0.299 R + 0.587 G + 0.114 B, rounded)" },
        { "--rescale", NULL, CLI_FLAG, &rescale, .help = "map the output's min..max to 0..255 (default: clamp to 0..255)" },
        { "--print", NULL, CLI_FLAG, &print,
          .help = "print the kernel and, for images up to " STR(PRINT_MAX) "x" STR(PRINT_MAX) ", the output numbers\n"
                  "before clamping (the worksheet form); -o is then optional" },
        { "-o", "OUT.png", CLI_TEXT, &out, .help = "the filtered image (gray or RGB as the input)" },
        { 0 },
    };
    int usage = cli_parse("filter", argc, argv, opts, help, cli_take_one, &image);
    if (usage != CLI_GO_ON) return usage;
    if (!image) return cli_usage_error("filter", "give an image file (PNG or JPEG)");
    if (!kname) return cli_usage_error("filter", "give --kernel NAME or @FILE");
    if (spad && !strcmp(spad, "same")) pad = CN_FILTER_PAD_SAME;
    else if (spad && cli_parse_int("filter", "--pad (or same)", spad, 0, INT64_C(1) << 20, &pad)) return EXIT_USAGE;

    /* the kernel: a name, @FILE or inline numbers */
    float *k = NULL, div = 1;
    int64_t kh = 3, kw = 3;
    const char *ktitle = NULL; /* a name or a file */
    int rc = 0;
    size_t ki = NKERNELS;
    for (size_t i = 0; i < NKERNELS; i++)
        if (!strcmp(kname, kernels[i].name)) ki = i;
    if (ki < NKERNELS) {
        if (!(k = malloc(9 * sizeof *k))) return cli_error("out of memory");
        memcpy(k, kernels[ki].v, 9 * sizeof *k);
        div = kernels[ki].div;
        ktitle = kname;
    } else if (kname[0] == '@' || strchr("0123456789+-.", kname[0])) {
        if ((rc = cli_parse_matrix("filter", "--kernel", kname, &k, &kh, &kw))) return rc;
        if (kname[0] == '@') ktitle = kname + 1;
    } else {
        const char *names[NKERNELS + 1];
        for (size_t i = 0; i < NKERNELS; i++) names[i] = kernels[i].name;
        names[NKERNELS] = NULL;
        const char *best = cli_closest(kname, names);
        if (best) return cli_usage_error("filter", "unknown kernel '%s' (did you mean '%s'?)", kname, best);
        return cli_usage_error("filter", "unknown kernel '%s'; kernels: edge, sharpen, blur, gaussian, sobel-x, "
                               "sobel-y, emboss, identity, or @FILE", kname);
    }
    if (!out && !print) {
        free(k);
        return cli_usage_error("filter", "give -o OUT.png (or --print)");
    }

    cn_ctx *ctx = NULL;
    float *x = NULL, *y = NULL;
    int64_t c = 0, h = 0, w = 0, oh = 0, ow = 0, n = 0;
    if (cn_ctx_create(NULL, &ctx)) {
        free(k);
        return cli_error("out of memory");
    }
    if (cn_image_info(ctx, image, &c, &h, &w)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    if (gray) c = 1;
    if (cn_image_filter(ctx, NULL, c, h, w, k, kh, kw, stride, pad, NULL, &oh, &ow)) {
        rc = cli_error("%s: %s", image, cn_ctx_message(ctx));
        goto done;
    }
    n = c * oh * ow; /* checked by cn_image_filter */
    if (oh * ow > CN_IMAGE_MAX_PIXELS) {
        char px[32];
        cli_count(px, sizeof px, CN_IMAGE_MAX_PIXELS);
        rc = cli_error("%s: the output would be %lldx%lld pixels (--pad %lld, --stride %lld), over the %s an image may "
                       "have", image, (long long)oh, (long long)ow, (long long)(pad == CN_FILTER_PAD_SAME ? 0 : pad),
                       (long long)stride, px);
        goto done;
    }
    if (!(x = malloc((size_t)(c * h * w) * sizeof *x)) || !(y = malloc((size_t)n * sizeof *y))) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (cn_image_load(ctx, image, c, h, w, x)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    /* back to the file's 0..255: exact for its own channels; the gray of colour rounded */
    for (int64_t i = 0; i < c * h * w; i++) x[i] = rintf(x[i] * 255.0f);
    cn_image_filter(ctx, x, c, h, w, k, kh, kw, stride, pad, y, &oh, &ow);
    if (div != 1)
        for (int64_t i = 0; i < n; i++) y[i] /= div;
    float lo = y[0], hi = y[0];
    for (int64_t i = 1; i < n; i++) {
        if (y[i] < lo) lo = y[i];
        if (y[i] > hi) hi = y[i];
    }

    if (print) {
        printf("kernel %s%s%lldx%lld", ktitle ? ktitle : "", ktitle ? " " : "", (long long)kh, (long long)kw);
        if (div != 1) printf(" = 1/%g *", div);
        printf(" (cross-correlation: not flipped):\n");
        print_grid(k, kh, kw, 1);
        printf("image %s: %lldx%lld (HxW), %s, stride %lld, pad %s\n", image, (long long)h, (long long)w,
               c == 1 ? "gray" : "RGB", (long long)stride, spad && pad == CN_FILTER_PAD_SAME ? "same" : spad ? spad : "0");
        print_size("rows:", h, kh, stride, pad, oh);
        print_size("columns:", w, kw, stride, pad, ow);
        if (h <= PRINT_MAX && w <= PRINT_MAX) {
            static const char *const rgb[] = { "R", "G", "B" };
            for (int64_t ch = 0; ch < c; ch++) {
                if (c == 1) printf("output %lldx%lld (before clamping):\n", (long long)oh, (long long)ow);
                else printf("output %lldx%lld, channel %s (before clamping):\n", (long long)oh, (long long)ow, rgb[ch]);
                print_grid(y + ch * oh * ow, oh, ow, 1);
            }
        } else {
            printf("output %lldx%lld (numbers shown for images up to %dx%d)\n", (long long)oh, (long long)ow, PRINT_MAX,
                   PRINT_MAX);
        }
    }
    if (out) {
        /* to [0, 1] for the PNG: clamped to 0..255, or min..max stretched (a flat output clamped) */
        int stretch = rescale && hi > lo;
        for (int64_t i = 0; i < n; i++) {
            float v = stretch ? (y[i] - lo) / (hi - lo) * 255.0f : y[i];
            v = v > 0 ? (v < 255 ? v : 255) : 0;
            y[i] = v / 255.0f;
        }
        if (cn_image_save_png(ctx, out, y, c, oh, ow)) {
            rc = cli_ctx_error(ctx);
            goto done;
        }
        char slo[32], shi[32];
        format_value(slo, sizeof slo, lo);
        format_value(shi, sizeof shi, hi);
        printf("%s: %lldx%lld (HxW) %s, values %s..%s %s 0..255\n", out, (long long)oh, (long long)ow, c == 1 ? "gray" : "RGB",
               slo, shi, stretch ? "rescaled to" : rescale ? "(one value: nothing to stretch) clamped to" : "clamped to");
    }
done:
    free(k), free(x), free(y);
    cn_ctx_destroy(ctx);
    return rc;
}
