/* show.c — `convnet show`: a conv layer's learned kernels (--filters) or one image's activation
 * maps at a layer (--activations), as a grid PNG of labelled tiles (cn_grid_draw, src/data/draw.c).
 * Tested in tests/cli_test.sh (sizes, errors) and tests/test_show.c (the pixels). */
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"

static void show_help(const cli_option *opts)
{
    printf("usage: convnet show CKPT --filters LAYER -o OUT.png [--channel K] [--scale S] [--cols N]\n"
           "       convnet show CKPT --activations IMAGE --layer LAYER -o OUT.png [--scale S] [--cols N]\n\n"
           "Draws a checkpoint (a .safetensors file, or a run folder: its model.safetensors) as a PNG grid of\n"
           "tiles, each labelled with its index.\n\n");
    cli_print_options(opts, 20);
    printf("\nExample: convnet train models/fmnist-small.cnn --epochs 1 --out /tmp/run\n"
           "         convnet show /tmp/run --filters conv1 -o filters.png\n");
}

/* whether layer name a is b's first stem characters and a number (conv2 of conv3's "conv") */
static int numbered_like(const char *a, const char *b, size_t stem)
{
    return !strncmp(a, b, stem) && a[stem] >= '0' && a[stem] <= '9';
}

/* The net's output layer, one value a class: which tile is which class, and its value (all of
 * them up to 20 classes, else the 5 highest), so that the picture's brightest tile can be read
 * as the prediction. kind: "score", or "probability" after a softmax. */
static void print_class_tiles(const cn_model *model, const float *v, int64_t n, const char *kind)
{
    int64_t order[20], shown = n <= 20 ? n : 5, best = 0;
    for (int64_t k = 1; k < n; k++)
        if (v[k] > v[best]) best = k;
    for (int64_t q = 0; q < shown; q++) {
        order[q] = q;
        if (n <= 20) continue; /* tile order; else the highest not yet taken */
        order[q] = -1;
        for (int64_t k = 0; k < n; k++) {
            int taken = 0;
            for (int64_t r = 0; r < q; r++) taken |= order[r] == k;
            if (!taken && (order[q] < 0 || v[k] > v[order[q]])) order[q] = k;
        }
    }
    printf("its tiles are the classes' %ss%s:\n%6s  %-16s %12s\n", kind, n > 20 ? " (the 5 highest)" : "", "tile", "class",
           kind);
    for (int64_t q = 0; q < shown; q++) {
        int64_t k = order[q];
        const char *name = cn_model_class_name(model, (int32_t)k);
        char esc[256], num[24];
        snprintf(num, sizeof num, "%lld", (long long)k);
        printf("%6lld  %-16s %12.4g%s\n", (long long)k, cn_text_escape(name ? name : num, esc, sizeof esc), (double)v[k],
               k == best ? "  (the highest: the brightest tile)" : "");
    }
}

/* The index of layer `name`, or -1 after printing the error with a did-you-mean or the names. */
static int find_layer(cn_ctx *ctx, const cn_net *net, const char *name, cn_layer_info *info)
{
    int n = cn_net_layer_count(net);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    if (!names) {
        cli_error("out of memory");
        return -1;
    }
    int found = -1;
    for (int i = 0; i < n; i++) {
        cn_net_layer(ctx, net, i, 1, info);
        names[i] = info->name;
        if (found < 0 && !strcmp(info->name, name)) found = i;
    }
    /* "conv3" of a net with conv1 and conv2: both named, not the first alone as the closest */
    size_t stem = strcspn(name, "0123456789");
    int same_kind = 0;
    for (int i = 0; found < 0 && stem && name[stem] && i < n; i++) same_kind += numbered_like(names[i], name, stem);
    if (found >= 0) {
        cn_net_layer(ctx, net, found, 1, info);
    } else if (same_kind > 1) {
        fprintf(stderr, "convnet show: no layer '%s' in the net; its %.*s layers:", name, (int)stem, name);
        for (int i = 0; i < n; i++)
            if (numbered_like(names[i], name, stem)) fprintf(stderr, " %s", names[i]);
        fputc('\n', stderr);
    } else {
        const char *best = cli_closest(name, names);
        if (best) cli_cmd_error("show", "no layer '%s' in the net (did you mean '%s'?)", name, best);
        else {
            fprintf(stderr, "convnet show: no layer '%s' in the net; its layers:", name);
            for (int i = 0; i < n; i++) fprintf(stderr, " %s", names[i]);
            fputc('\n', stderr);
        }
    }
    free(names);
    return found;
}

/* default pixels per value: tiles about `target` px, 1..16 px per value */
static int64_t auto_scale(int64_t h, int64_t w, int64_t target)
{
    int64_t s = target / (h > w ? h : w);
    return s < 1 ? 1 : s > 16 ? 16 : s;
}

int cmd_show(int argc, char **argv)
{
    const char *ckpt = NULL, *filters = NULL, *image = NULL, *layer = NULL, *out_path = NULL;
    int64_t channel = -1, scale = 0, cols = 0;
    const cli_option opts[] = {
        { "--filters", "LAYER", CLI_TEXT, &filters,
          .help = "the kernels of conv layer LAYER (its LAYER.weight, Cout x Cin x Kh x Kw), one\n"
                  "tile per output filter. All tiles share one scale, symmetric around 0: grey\n"
                  "is 0, black the most negative weight of the layer (-max|w|), white +max|w|.\n"
                  "With 3 input channels a tile is in colour (R, G, B = input channels 0, 1, 2);\n"
                  "otherwise it shows input channel 0 (in a grouped layer, of each filter's\n"
                  "group; a depthwise layer's filters each read their own channel)" },
        { "--channel", "K", CLI_INT, &channel, 0, 1 << 20, .help = "with --filters: show input channel K of every filter, in gray" },
        { "--activations", "IMAGE", CLI_TEXT, &image,
          .help = "run the net on a PNG or JPEG (converted and normalised as `convnet predict`\n"
                  "does) and draw the output of --layer LAYER, one tile per channel, each\n"
                  "from its own minimum (black) to its maximum (white); a flat map is black;\n"
                  "maps of one value (1x1: after globalavgpool, a dense layer) share one scale" },
        { "--layer", "LAYER", CLI_TEXT, &layer, .help = "a layer name as `convnet summary` lists them (conv1, relu1, ...)" },
        { "-o", "OUT.png", CLI_TEXT, &out_path, .help = "the picture to write" },
        { "--scale", "S", CLI_INT, &scale, 1, 64,
          .help = "pixels per weight or activation, 1..64 (default: tiles about 48 px for\n"
                  "kernels, 64 px for maps, at most 16 px per value)" },
        { "--cols", "N", CLI_INT, &cols, 1, 4096, .help = "tiles per row (default: a square grid)" },
        { 0 },
    };
    int usage = cli_parse("show", argc, argv, opts, show_help, cli_take_one, &ckpt);
    if (usage != CLI_GO_ON) return usage;
    if (!ckpt) return cli_usage_error("show", "give a checkpoint (a .safetensors file or a run folder)");
    if (!filters == !image) return cli_usage_error("show", "give one of --filters LAYER or --activations IMAGE");
    if (image && !layer) return cli_usage_error("show", "--activations needs --layer LAYER");
    if (filters && layer) return cli_usage_error("show", "--layer goes with --activations; --filters names its layer");
    if (image && channel >= 0) return cli_usage_error("show", "--channel goes with --filters");
    if (!out_path) return cli_usage_error("show", "give the picture to write with -o OUT.png");

    cn_ctx *ctx;
    cn_model *model;
    float *maps = NULL, *x = NULL, *pic = NULL;
    int rc = cli_open_model(ckpt, &ctx, &model);
    if (rc) return rc;
    cn_net *net = cn_model_net(model);
    cn_layer_info info;
    const char *name = filters ? filters : layer;
    int li = find_layer(ctx, net, name, &info);
    cn_grid g = { .cols = cols };
    const char *what = "maps";
    char colour[64] = "";
    if (li < 0) {
        rc = 1;
        goto done;
    }
    if (filters) {
        cn_tensor t;
        char tname[256];
        snprintf(tname, sizeof tname, "%s.weight", name);
        if (strcmp(info.type, "conv") != 0) {
            rc = cli_cmd_error("show", "layer '%s' is a %s layer: --filters shows the kernels of a conv layer", name, info.type);
            goto done;
        }
        if (cn_net_find_tensor(ctx, net, tname, &t) || t.rank != 4) {
            rc = cli_cmd_error("show", "%s: no 4-d tensor '%s' in the checkpoint", ckpt, tname);
            goto done;
        }
        int64_t cin = t.shape[1], khw = t.shape[2] * t.shape[3];
        double groups_key[2] = { 1, 1 };
        int64_t groups = cn_net_layer_key(net, li, "groups", groups_key) ? (int64_t)groups_key[0] : 1;
        if (channel >= cin && cin == 1 && groups > 1) {
            rc = cli_cmd_error("show", "--channel %lld: each filter of '%s' reads 1 input channel, its own (depthwise: groups=%lld, filter f reads channel f)",
                           (long long)channel, name, (long long)groups);
            goto done;
        }
        if (channel >= cin) {
            rc = cli_cmd_error("show", "--channel %lld: the filters of '%s' read %lld input channel%s (0..%lld)%s",
                           (long long)channel, name, (long long)cin, cin == 1 ? "" : "s", (long long)cin - 1,
                           groups > 1 ? " of their group" : "");
            goto done;
        }
        g = (cn_grid){ .n = t.shape[0], .c = cin == 3 && channel < 0 ? 3 : 1, .h = t.shape[2], .w = t.shape[3],
                       .scale = scale ? scale : auto_scale(t.shape[2], t.shape[3], 48), .cols = cols,
                       .norm = CN_GRID_SYMMETRIC };
        if (g.c == 3) {
            maps = t.data;
            snprintf(colour, sizeof colour, ", RGB");
        } else {
            int64_t k = channel < 0 ? 0 : channel;
            if (!(x = malloc((size_t)(g.n * khw) * sizeof *x))) {
                rc = cli_error("out of memory");
                goto done;
            }
            for (int64_t f = 0; f < g.n; f++) memcpy(x + f * khw, t.data + (f * cin + k) * khw, (size_t)khw * sizeof *x);
            maps = x;
            if (groups > 1 && cin == 1) snprintf(colour, sizeof colour, ", each on its own input channel");
            else snprintf(colour, sizeof colour, ", input channel %lld%s", (long long)k, groups > 1 ? " of its group" : "");
        }
        what = "filters";
    } else {
        cn_layer_info in;
        cn_net_layer(ctx, net, 0, 1, &in);
        if (!(x = malloc((size_t)(in.c * in.h * in.w) * sizeof *x))) {
            rc = cli_error("out of memory");
            goto done;
        }
        if (cn_model_input_file(ctx, model, image, x) || cn_net_forward(ctx, net, x, 1, 0)) {
            rc = cli_ctx_error(ctx);
            goto done;
        }
        maps = (float *)cn_net_layer_output(net, li, NULL);
        g = (cn_grid){ .n = info.c, .c = 1, .h = info.h, .w = info.w,
                       .scale = scale ? scale : auto_scale(info.h, info.w, 64), .cols = cols,
                       .norm = info.h * info.w == 1 ? CN_GRID_MINMAX_ALL : CN_GRID_MINMAX_EACH };
        if (g.norm == CN_GRID_MINMAX_ALL) snprintf(colour, sizeof colour, ", one scale for all");
    }
    int64_t ph, pw;
    if (cn_grid_size(ctx, &g, &ph, &pw)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    if (!(pic = malloc((size_t)(g.c * ph * pw) * sizeof *pic))) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (cn_grid_draw(ctx, &g, maps, pic) || cn_image_save_png(ctx, out_path, pic, g.c, ph, pw)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    printf("%s: %lld %.*s of %s (%lldx%lld%s, %lld px a value), %lldx%lld px\n", out_path, (long long)g.n,
           (int)strlen(what) - (g.n == 1), what, name, /* "1 map" */
           (long long)g.h, (long long)g.w, colour, (long long)g.scale, (long long)pw, (long long)ph);
    if (!filters && li == cn_net_layer_count(net) - 1 && g.h * g.w == 1 && g.n == cn_model_classes(model))
        print_class_tiles(model, maps, g.n, strcmp(info.type, "softmax") ? "score" : "probability");
done:
    free(x), free(pic);
    cn_model_destroy(model);
    cn_ctx_destroy(ctx);
    return rc;
}
