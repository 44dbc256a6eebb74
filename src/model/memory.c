/* memory.c — bytes a net needs at batch N: for training every layer output, its gradient and
 * the per-layer aux data (argmax, masks) are kept; for inference only the tensors alive at
 * once. Parameters, gradients and optimizer state do not depend on N, so the largest batch
 * that fits a budget follows from two evaluations. Covered by tests/test_shapes.c. */
#include <string.h>

#include "model_impl.h"

#define F32 ((int64_t)sizeof(float))

static int64_t elems(const cn_node *n) { return n->out.c * n->out.h * n->out.w; }

/* what the executor reserves for node i's aux block (exec.c's plan: rounded up to 8 bytes) */
static int64_t aux_bytes(const cn_net *net, int i, int64_t batch)
{
    const cn_node *n = &net->nodes[i];
    const cn_node *in[CN_MAX_KEYS * 8];
    if (!n->op->aux_bytes) return 0;
    for (int j = 0; j < n->n_in; j++) in[j] = &net->nodes[n->in[j]];
    int64_t b = n->op->aux_bytes(n, in, batch, sizeof(float));
    return b < 0 ? -1 : (b + 7) / 8 * 8;
}

/* All sums are taken in a 128-bit-safe way: per-sample sizes were checked at parse time,
 * a batch multiplies them and is checked here. */
static int add_scaled(int64_t *acc, int64_t per, int64_t scale)
{
    int64_t v;
    return cn_mul_ok(per, scale, &v) && cn_add_ok(*acc, v, acc);
}

cn_status cn_net_memory(cn_ctx *ctx, const cn_net *net, int64_t batch, cn_optimizer_kind opt, cn_memory *out)
{
    memset(out, 0, sizeof *out);
    if (!net || batch < 0) return cn_fail(ctx, CN_E_ARG, "cn_net_memory: bad arguments");
    cn_memory m = { .batch = batch };
    int ok = 1;
    int64_t trainable = 0, params = 0;
    for (int i = 0; i < net->n && ok; i++) {
        const cn_node *n = &net->nodes[i];
        ok &= add_scaled(&m.activations, elems(n) * F32, batch);
        if (i > 0) ok &= add_scaled(&m.activation_grads, elems(n) * F32, batch);
        int64_t ab = aux_bytes(net, i, batch);
        ok &= ab >= 0 && cn_add_ok(m.aux, ab, &m.aux);
        ok &= cn_add_ok(params, n->params, &params) && cn_add_ok(trainable, n->trainable, &trainable);
    }
    int64_t states = opt == CN_OPT_ADAM ? 2 : opt == CN_OPT_MOMENTUM ? 1 : 0;
    ok = ok && cn_mul_ok(params, F32, &m.params) && cn_mul_ok(trainable, F32, &m.param_grads) &&
         cn_mul_ok(m.param_grads, states, &m.optimizer_state);
    ok = ok && cn_add_ok(m.activations, m.activation_grads, &m.training_total) &&
         cn_add_ok(m.training_total, m.aux, &m.training_total) && cn_add_ok(m.training_total, m.params, &m.training_total) &&
         cn_add_ok(m.training_total, m.param_grads, &m.training_total) &&
         cn_add_ok(m.training_total, m.optimizer_state, &m.training_total);
    /* inference: a tensor lives from its layer to its last reader; take the peak */
    for (int k = 0; k < net->n && ok; k++) {
        int64_t live = 0;
        for (int i = 0; i <= k && ok; i++) {
            int last = i == net->n - 1 ? net->n : i;
            for (int j = i + 1; j < net->n; j++)
                for (int e = 0; e < net->nodes[j].n_in; e++)
                    if (net->nodes[j].in[e] == i && j > last) last = j;
            if (last >= k) ok &= add_scaled(&live, elems(&net->nodes[i]) * F32, batch);
        }
        if (live > m.inference_activations) m.inference_activations = live;
    }
    ok = ok && cn_add_ok(m.inference_activations, m.params, &m.inference_total);
    if (!ok) return cn_fail(ctx, CN_E_OVERFLOW, "memory at batch %lld overflows 64 bits", (long long)batch);
    *out = m;
    return CN_OK;
}

cn_status cn_net_fit_batch(cn_ctx *ctx, const cn_net *net, int64_t budget, cn_optimizer_kind opt, int training,
                           int64_t *batch)
{
    cn_memory m0, m1;
    cn_status st;
    *batch = 0;
    if ((st = cn_net_memory(ctx, net, 0, opt, &m0)) || (st = cn_net_memory(ctx, net, 1, opt, &m1))) return st;
    int64_t fixed = training ? m0.training_total : m0.inference_total;
    int64_t per = (training ? m1.training_total : m1.inference_total) - fixed;
    if (budget < fixed + per) return CN_OK;
    int64_t n = (budget - fixed) / per;
    /* the model is linear in N; confirm and step down on any rounding */
    while (n > 0) {
        cn_memory m;
        if (cn_net_memory(ctx, net, n, opt, &m) == CN_OK && (training ? m.training_total : m.inference_total) <= budget)
            break;
        n--;
    }
    cn_ctx_clear(ctx);
    *batch = n;
    return CN_OK;
}
