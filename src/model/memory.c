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
    const cn_node *in[CN_MAX_INPUTS];
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

/* *peak = the most bytes of layer outputs alive at once at this batch: node i's output is
 * alive from step i to step last[i], its last reader (the output node's to the end). Linear in
 * layers and inputs; CN_E_OVERFLOW (no message) when a sum leaves 64 bits, CN_E_NOMEM. */
static cn_status inference_peak(cn_ctx *ctx, const cn_net *net, int64_t batch, int64_t *peak)
{
    int n = net->n;
    /* freed[k]: bytes whose last reader is step k; last[i]: node i's last reader */
    int64_t *freed = cn_calloc(ctx, (size_t)n, sizeof *freed);
    int *last = cn_malloc(ctx, (size_t)n * sizeof *last);
    cn_status st = CN_E_NOMEM;
    if (!freed || !last) goto done;
    for (int i = 0; i < n; i++) last[i] = i;
    for (int j = 0; j < n; j++)
        for (int e = 0; e < net->nodes[j].n_in; e++) {
            int i = net->nodes[j].in[e];
            if (j > last[i]) last[i] = j; /* nodes are in topological order: readers come later */
        }
    st = CN_E_OVERFLOW;
    for (int i = 0; i < n - 1; i++) /* the output, n - 1, is never freed */
        if (!add_scaled(&freed[last[i]], elems(&net->nodes[i]) * F32, batch)) goto done;
    int64_t live = 0;
    *peak = 0;
    for (int k = 0; k < n; k++) {
        if (!add_scaled(&live, elems(&net->nodes[k]) * F32, batch)) goto done;
        if (live > *peak) *peak = live;
        live -= freed[k]; /* a part of live: every node in it was added at a step <= k */
    }
    st = CN_OK;
done:
    cn_free(ctx, freed);
    cn_free(ctx, last);
    return st;
}

cn_status cn_net_memory(cn_ctx *ctx, const cn_net *net, int64_t batch, cn_optim_kind opt, cn_memory *out)
{
    memset(out, 0, sizeof *out);
    if (!ctx || !net || batch < 0) return ctx ? cn_fail(ctx, CN_E_ARG, "cn_net_memory: bad arguments") : CN_E_ARG;
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
    const char *names[2];
    int64_t states = cn_optim_state_names(opt, names); /* values per parameter the optimizer keeps */
    ok = ok && cn_mul_ok(params, F32, &m.params) && cn_mul_ok(trainable, F32, &m.param_grads) &&
         cn_mul_ok(m.param_grads, states, &m.optimizer_state);
    ok = ok && cn_add_ok(m.activations, m.activation_grads, &m.training_total) &&
         cn_add_ok(m.training_total, m.aux, &m.training_total) && cn_add_ok(m.training_total, m.params, &m.training_total) &&
         cn_add_ok(m.training_total, m.param_grads, &m.training_total) &&
         cn_add_ok(m.training_total, m.optimizer_state, &m.training_total);
    /* inference: a tensor lives from its layer to its last reader, both included (the output to
     * the end); take the peak. One walk: step k adds node k's output, takes the peak, then drops
     * every tensor whose last reader is k. */
    if (ok) {
        cn_status st = inference_peak(ctx, net, batch, &m.inference_activations);
        if (st == CN_E_NOMEM) return st;
        ok = st == CN_OK;
    }
    ok = ok && cn_add_ok(m.inference_activations, m.params, &m.inference_total);
    if (!ok) return cn_fail(ctx, CN_E_OVERFLOW, "memory at batch %lld overflows 64 bits", (long long)batch);
    *out = m;
    return CN_OK;
}

cn_status cn_net_fit_batch(cn_ctx *ctx, const cn_net *net, int64_t budget, cn_optim_kind opt, int training,
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
        if ((st = cn_net_memory(ctx, net, n, opt, &m)) == CN_E_NOMEM) return st;
        if (st == CN_OK && (training ? m.training_total : m.inference_total) <= budget) break;
        n--;
    }
    cn_ctx_clear(ctx);
    *batch = n;
    return CN_OK;
}
