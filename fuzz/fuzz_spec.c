/* fuzz_spec.c — libFuzzer target for the spec parser, shape inference, explain and memory
 * planning: any bytes must give a net or a clean error, never a crash or a leak.
 * `make fuzz` runs it; tests replay the corpus in tests/fuzz/spec_corpus. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return 0;
    cn_net *net = NULL;
    if (cn_net_parse(ctx, (const char *)data, size, "fuzz", &net) == CN_OK) {
        char buf[512];
        cn_totals t;
        cn_memory m;
        int64_t fit;
        (void)cn_net_totals(ctx, net, 3, &t);
        (void)cn_net_memory(ctx, net, 2, CN_OPT_ADAM, &m);
        (void)cn_net_fit_batch(ctx, net, INT64_C(1) << 33, CN_OPT_MOMENTUM, 1, &fit);
        for (int i = 0; i < cn_net_layer_count(net); i++) {
            cn_layer_info li;
            (void)cn_net_layer(ctx, net, i, 7, &li);
            (void)cn_net_explain(net, i, 7, buf, sizeof buf);
        }
    } else if (strlen(cn_ctx_message(ctx)) == 0) {
        abort(); /* every failure must say why */
    }
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    return 0;
}
