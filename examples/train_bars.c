/* train_bars.c — the C API end to end: a small CNN learns to tell vertical from horizontal
 * bars in generated 8x8 images, then is evaluated on fresh ones.
 * Build: cc train_bars.c $(pkg-config --cflags --libs convnet) -o train_bars */
#include <stdio.h>
#include <string.h>

#include "convnet.h"

enum { SIDE = 8, BATCH = 16, STEPS = 200, TEST = 400 };

/* one image: a bar at a random row (label 0) or column (label 1) over faint noise */
static int32_t make_image(cn_rng *rng, float *img)
{
    int32_t label = (int32_t)cn_rng_below(rng, 2);
    int64_t at = (int64_t)cn_rng_below(rng, SIDE);
    for (int i = 0; i < SIDE * SIDE; i++) img[i] = (float)(0.2 * cn_rng_uniform(rng));
    for (int k = 0; k < SIDE; k++) img[label ? k * SIDE + at : at * SIDE + k] += 1.0f;
    return label;
}

int main(void)
{
    const char *spec = "input 8x8x1\n"
                       "conv 4 3x3 pad=same\n"
                       "relu\n"
                       "maxpool 2x2\n"
                       "dense 2\n";
    cn_ctx *ctx;
    cn_net *net = NULL;
    cn_optim *opt = NULL;
    int rc = 1;
    if (cn_ctx_create(NULL, &ctx) != CN_OK) return 1;
    cn_optim_config cfg;
    cn_optim_defaults(&cfg, CN_OPTIM_ADAM);
    cfg.lr = 0.01;
    if (cn_net_parse(ctx, spec, strlen(spec), "bars", &net) || cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 7) ||
        cn_optim_create(ctx, net, &cfg, &opt))
        goto done;
    cn_step_config step = { cn_net_default_loss(net), 0.0 };
    cn_rng data;
    cn_rng_seed(&data, 2024);
    float x[BATCH * SIDE * SIDE];
    int32_t y[BATCH];
    for (int s = 1; s <= STEPS; s++) {
        for (int i = 0; i < BATCH; i++) y[i] = make_image(&data, x + i * SIDE * SIDE);
        double loss;
        if (cn_train_step(ctx, net, opt, &step, x, y, BATCH, &loss)) goto done;
        if (s % 50 == 0) printf("step %3d  loss %.4f\n", s, loss);
    }
    int correct = 0;
    for (int i = 0; i < TEST; i++) {
        float img[SIDE * SIDE];
        int32_t label = make_image(&data, img);
        if (cn_net_forward(ctx, net, img, 1, 0)) goto done;
        const float *logits = cn_net_output(net, NULL);
        correct += (logits[1] > logits[0]) == (label == 1);
    }
    printf("accuracy on %d new images: %.1f%%\n", TEST, 100.0 * correct / TEST);
    rc = correct >= TEST * 95 / 100 ? 0 : 1;
done:
    if (rc && cn_ctx_message(ctx)[0]) fprintf(stderr, "%s\n", cn_ctx_message(ctx));
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    return rc;
}
