/* test_util.h — parsing specs and reading layers in tests. */
#ifndef CN_TEST_UTIL_H
#define CN_TEST_UTIL_H

#include <string.h>

#include "convnet.h"
#include "harness.h"

/* Parses spec text; on failure reports the message and returns NULL. */
static inline cn_net *parse_spec(cn_ctx *ctx, const char *spec)
{
    cn_net *net = NULL;
    if (cn_net_parse(ctx, spec, strlen(spec), "t.cnn", &net) != CN_OK)
        test_fail(__FILE__, __LINE__, "parse failed: %s", cn_ctx_message(ctx));
    return net;
}

static inline cn_layer_info layer_at(cn_ctx *ctx, const cn_net *net, int i, int64_t batch)
{
    cn_layer_info li;
    memset(&li, 0, sizeof li);
    if (net && cn_net_layer(ctx, net, i, batch, &li) != CN_OK)
        test_fail(__FILE__, __LINE__, "layer %d: %s", i, cn_ctx_message(ctx));
    return li;
}

/* Output H x W x C of layer i. */
#define CHECK_HWC(li, H, W, C) \
    do { CHECK_INT((li).h, H); CHECK_INT((li).w, W); CHECK_INT((li).c, C); } while (0)

#endif
