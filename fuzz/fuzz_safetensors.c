/* fuzz_safetensors.c — libFuzzer target for the checkpoint reader: any bytes must give a
 * checkpoint or a clean error with a message, never a crash, a leak or a huge allocation.
 * Each input is read twice when the first read fails: with every check, then without the
 * checksums and the spec hash, so that mutated data and specs still reach cn_checkpoint_net
 * and cn_checkpoint_optim. The tests replay tests/fuzz/safetensors_corpus.
 *     CC=clang cmake -S . -B build-ckfuzz -DCN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
 *     cmake --build build-ckfuzz --target fuzz_safetensors
 *     build-ckfuzz/fuzz_safetensors -max_total_time=600 CORPUS tests/fuzz/safetensors_corpus */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/io/checkpoint_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must_say_why(const cn_ctx *ctx)
{
    if (!*cn_ctx_message(ctx)) abort(); /* every failure must say why */
}

static void use(cn_ctx *ctx, const cn_checkpoint *ck)
{
    cn_net *net = NULL;
    if (cn_checkpoint_net(ctx, ck, &net) != CN_OK) {
        must_say_why(ctx);
        return;
    }
    const char *name = cn_checkpoint_meta(ck, "optimizer");
    for (int k = CN_OPTIM_SGD; name && k <= CN_OPTIM_ADAMW; k++) {
        if (strcmp(name, cn_optim_kind_name((cn_optim_kind)k))) continue;
        cn_optim_config cfg;
        cn_optim *opt = NULL;
        cn_optim_defaults(&cfg, (cn_optim_kind)k);
        if (cn_optim_create(ctx, net, &cfg, &opt) == CN_OK && cn_checkpoint_optim(ctx, ck, opt) != CN_OK)
            must_say_why(ctx);
        cn_optim_destroy(opt);
    }
    cn_net_destroy(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return 0;
    for (int verify = 1; verify >= 0; verify--) {
        cn_checkpoint *ck = NULL;
        if (cn_checkpoint_read_memory(ctx, data, size, "fuzz.safetensors", verify, &ck) != CN_OK) {
            must_say_why(ctx);
            continue;
        }
        use(ctx, ck);
        cn_checkpoint_free(ck);
        break;
    }
    cn_ctx_destroy(ctx);
    return 0;
}
