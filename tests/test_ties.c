/* test_ties.c — max-pooling's ties on real images, against PyTorch. Fashion-MNIST's flat
 * backgrounds make pooling windows whose cells are equal, which the op table's random inputs
 * never do: there the gradient goes to the first cell, as PyTorch's does. fmnist-small's
 * forward and backward on 16 real images, with the direct convolutions (every layer's output and
 * gradient and every parameter's gradient: PyTorch's to 1e-5) and with Winograd (its outputs an
 * ulp apart in flat regions, so a pool may pick another cell of a tie: tests/ties_torch_check.py
 * accepts a difference in conv2's output gradient only inside a tied window, and asks the weight
 * gradients to 1e-4). The README's "dL/d(output) can differ from PyTorch's" is this. */
#define _POSIX_C_SOURCE 200809L /* popen */
#include <stdlib.h>

#include "backend/cpu/cpu_impl.h"
#include "convnet.h"
#include "harness.h"

enum { BATCH = 16 };

static void dump(FILE *f, const float *v, int64_t n)
{
    fwrite(&n, sizeof n, 1, f);
    fwrite(v, sizeof *v, (size_t)n, f);
}

/* one training-mode forward and backward of the mean cross-entropy; every layer's output and
 * gradient, then every trained tensor's gradient, into path */
static void pass(cn_ctx *ctx, cn_net *net, const float *x, const int32_t *labels, const char *path)
{
    float target[BATCH * 10] = { 0 }, dout[BATCH * 10];
    for (int i = 0; i < BATCH; i++) target[i * 10 + labels[i]] = 1;
    double loss;
    cn_net_zero_grad(net);
    CHECK(cn_net_forward(ctx, net, x, BATCH, 1) == CN_OK);
    CHECK(cn_loss_grad(ctx, CN_LOSS_CE_LOGITS, target, cn_net_output(net, NULL), BATCH, 10, CN_REDUCE_MEAN, 0, &loss,
                       dout) == CN_OK);
    CHECK(cn_net_backward(ctx, net, dout) == CN_OK);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    for (int i = 0; i < cn_net_layer_count(net); i++) {
        int64_t n;
        const float *y = cn_net_layer_output(net, i, &n);
        dump(f, y, n);
        const float *g = cn_net_layer_grad(net, i, &n);
        dump(f, g, n);
    }
    for (int k = 0; k < cn_net_tensor_count(net); k++) {
        cn_tensor t;
        if (!cn_net_tensor(ctx, net, k, &t) && t.trainable) dump(f, t.grad, t.count);
    }
    CHECK(fclose(f) == 0);
}

static void test_ties_against_pytorch(void)
{
    char dir[256];
    test_tmpdir(dir, sizeof dir, "ties");
    cn_ctx *ctx;
    cn_net *net;
    cn_dataset ds;
    CHECK(cn_ctx_create(NULL, &ctx) == CN_OK);
    CHECK(cn_net_load_spec(ctx, "models/fmnist-small.cnn", &net) == CN_OK);
    if (!net) { /* run from another folder than the source's: nothing more to check */
        cn_ctx_destroy(ctx);
        return;
    }
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    CHECK(cn_checkpoint_write(ctx, test_path(dir, "model.safetensors"), net, NULL, NULL, 0) == CN_OK);
    CHECK(cn_dataset_load_mnist(ctx, "/usr/share/datasets/fashion-mnist", 1, &ds) == CN_OK);
    float mean[4], std[4], *x = malloc(sizeof(float) * BATCH * 784);
    int64_t idx[BATCH];
    int32_t labels[BATCH];
    for (int i = 0; i < BATCH; i++) idx[i] = i;
    cn_dataset_stats(&ds, mean, std);
    cn_make_batch(&ds, idx, BATCH, mean, std, 0, 0, NULL, x, labels);
    FILE *f = fopen(test_path(dir, "input.bin"), "wb");
    CHECK(f != NULL);
    if (f) {
        int32_t dims[4] = { BATCH, 1, 28, 28 };
        fwrite(dims, sizeof dims, 1, f), fwrite(x, sizeof *x, BATCH * 784, f), fwrite(labels, sizeof *labels, BATCH, f);
        CHECK(fclose(f) == 0);
    }
    /* a net of its own for each way (a net plans its kernels once, the fused pools included) */
    cn_cpu_winograd_force(0), cn_cpu_winograd4_force(0); /* the direct kernels */
    pass(ctx, net, x, labels, test_path(dir, "direct.bin"));
    cn_net_destroy(net);
    cn_cpu_winograd_force(-1), cn_cpu_winograd4_force(-1); /* the default: conv2 by Winograd F(4x4,3x3) */
    CHECK(cn_net_load_spec(ctx, "models/fmnist-small.cnn", &net) == CN_OK);
    if (!net) { /* run from another folder than the source's: nothing more to check */
        cn_ctx_destroy(ctx);
        return;
    }
    CHECK(cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1) == CN_OK);
    pass(ctx, net, x, labels, test_path(dir, "winograd.bin"));
    char cmd[600], line[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/ties_torch_check.py '%s' 2>&1", dir);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    while (p && fgets(line, sizeof line, p)) printf("  %s", line);
    int rc = p ? pclose(p) : -1;
    if (rc != 0) test_fail(__FILE__, __LINE__, "tests/ties_torch_check.py: status %d (its lines above)", rc);
    free(x);
    cn_dataset_free(ctx, &ds);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    test_rmtree(dir);
}

static const test_case cases[] = {
    { "max-pooling's ties on real images, against PyTorch", test_ties_against_pytorch },
};

TEST_MAIN(cases)
