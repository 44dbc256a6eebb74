/* fuzz_onnx.c — libFuzzer target for the ONNX importer: any bytes must give a net or a clean
 * error with a message, never a crash, a leak or an allocation out of proportion to the input.
 * Each input is imported with batch norms kept and folded; a net that imports and is small
 * runs one forward pass (its values must come out as a net's do). The tests replay
 * tests/fuzz/onnx_corpus (small models convnet exported, and PyTorch-shaped ones).
 *     CC=clang cmake -S . -B build-fuzz -DCN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
 *     cmake --build build-fuzz --target fuzz_onnx
 *     build-fuzz/fuzz_onnx -max_total_time=600 CORPUS tests/fuzz/onnx_corpus */
#include <stdint.h>
#include <stdlib.h>

#include "convnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run_small(cn_ctx *ctx, cn_net *net)
{
    cn_memory m;
    if (cn_net_memory(ctx, net, 1, CN_OPTIM_SGD, &m) || m.inference_total > (16 << 20)) return;
    cn_layer_info in;
    if (cn_net_layer(ctx, net, 0, 1, &in)) abort();
    float *x = calloc((size_t)(in.c * in.h * in.w), sizeof *x);
    if (x && cn_net_forward(ctx, net, x, 1, 0) && !*cn_ctx_message(ctx)) abort();
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return 0;
    for (int fold = 0; fold < 2; fold++) {
        cn_onnx_import_options opt = { .fold_bn = fold };
        cn_onnx_imported r;
        if (cn_onnx_import(ctx, data, size, "fuzz.onnx", &opt, &r)) {
            if (!*cn_ctx_message(ctx)) abort(); /* every failure must say why */
            continue;
        }
        run_small(ctx, r.net);
        cn_onnx_imported_free(ctx, &r);
    }
    cn_ctx_destroy(ctx);
    return 0;
}
