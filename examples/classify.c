/* classify.c — a trained model classifies image files: the 3 most likely classes of each, printed
 * as `convnet predict` prints them (the same numbers: predict runs on these calls).
 * Build: cc classify.c $(pkg-config --cflags --libs convnet) -o classify
 * Run:   ./classify runs/fmnist-small shoe.png [more images...]   (a run folder or a .safetensors) */
#include <stdio.h>

#include "convnet.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CHECKPOINT IMAGE...\n", argv[0]);
        return 2;
    }
    cn_ctx *ctx;
    cn_model *model;
    if (cn_ctx_create(NULL, &ctx) != CN_OK) return 1;
    if (cn_model_load(ctx, argv[1], &model) != CN_OK) {
        fprintf(stderr, "%s\n", cn_ctx_message(ctx));
        cn_ctx_destroy(ctx);
        return 1;
    }
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        cn_prediction top[3];
        if (cn_model_classify_file(ctx, model, argv[i], 3, top) != CN_OK) { /* the message names the file */
            fprintf(stderr, "%s\n", cn_ctx_message(ctx));
            rc = 1;
            continue;
        }
        printf("%s\n", argv[i]);
        for (int t = 0; t < 3 && top[t].index >= 0; t++) printf("  %6.2f%%  %s\n", 100 * top[t].probability, top[t].name);
    }
    cn_model_destroy(model);
    cn_ctx_destroy(ctx);
    return rc;
}
