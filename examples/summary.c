/* summary.c — the C API in a few lines: parse a spec, walk its layers, print a table.
 * Build: cc summary.c $(pkg-config --cflags --libs convnet) -o summary */
#include <stdio.h>
#include <string.h>

#include "convnet.h"

int main(void)
{
    const char *spec = "input 32x32x3\n"
                       "conv 16 3x3 pad=same\n"
                       "relu\n"
                       "maxpool 2x2\n"
                       "flatten\n"
                       "dense 10\n";
    cn_ctx *ctx;
    cn_net *net;
    if (cn_ctx_create(NULL, &ctx) != CN_OK) return 1;
    if (cn_net_parse(ctx, spec, strlen(spec), "example", &net) != CN_OK) {
        fprintf(stderr, "%s\n", cn_ctx_message(ctx));
        cn_ctx_destroy(ctx);
        return 1;
    }
    for (int i = 0; i < cn_net_layer_count(net); i++) {
        cn_layer_info li;
        cn_net_layer(ctx, net, i, 1, &li);
        printf("%-8s %-8s %lldx%lldx%-5lld params %6lld  MACs %8lld\n", li.name, li.type, (long long)li.h,
               (long long)li.w, (long long)li.c, (long long)li.params, (long long)li.macs);
    }
    cn_totals t;
    cn_net_totals(ctx, net, 1, &t);
    printf("total params %lld, MACs %lld\n", (long long)t.params, (long long)t.macs);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    /* conv1 (3*3*3 + 1)*16 = 448 params, dense (16*16*16 + 1)*10 = 40,970 */
    return t.params == 448 + 40970 ? 0 : 1;
}
