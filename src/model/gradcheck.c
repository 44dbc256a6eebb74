/* gradcheck.c — central differences in double precision, layer by layer: random inputs,
 * parameters and output gradient g; the scalar L = sum(g * y); each sampled coordinate v of
 * an input or parameter tensor gets the numeric dL/dv = (L(v + e) - L(v - e)) / 2e, compared
 * with what the layer's backward pass accumulated. Used by `convnet gradcheck` and by
 * tests/test_gradcheck.c for every op and option. */
#include <math.h>
#include <string.h>

#include "model_impl.h"

typedef struct {
    cn_ctx *ctx;
    const cn_net *net;
    int node;
    int64_t batch;
    int training;
    uint64_t seed;
    const cn_node *in[CN_MAX_KEYS * 8];
    double *x[CN_MAX_KEYS * 8], *dx[CN_MAX_KEYS * 8];
    int64_t xn[CN_MAX_KEYS * 8];
    double *y, *dy, *w, *dw, *buf, *buf0, *aux;
    int64_t yn, wn, bn;
} check;

static double *alloc_real(check *c, int64_t n)
{
    int64_t bytes;
    if (!cn_mul_ok(n > 0 ? n : 1, (int64_t)sizeof(double), &bytes)) {
        cn_fail(c->ctx, CN_E_OVERFLOW, "gradcheck: tensor too large");
        return NULL;
    }
    return cn_calloc(c->ctx, (size_t)bytes, 1);
}

/* L = sum(g * y) with a fresh copy of the buffers and the same dropout draws every time */
static double loss(check *c)
{
    const cn_node *n = &c->net->nodes[c->node];
    cn_rng rng;
    cn_rng_seed(&rng, c->seed ^ 0xd809u);
    if (c->bn) memcpy(c->buf, c->buf0, (size_t)c->bn * sizeof(double));
    cn_op_io io = { .n = n, .in = c->in, .batch = c->batch, .x = (const void *const *)c->x, .y = c->y, .w = c->w,
                    .buf = c->buf, .aux = c->aux, .training = c->training, .rng = &rng };
    n->op->forward[CN_F64](&io);
    double s = 0;
    for (int64_t i = 0; i < c->yn; i++) s += c->dy[i] * c->y[i];
    return s;
}

/* Worst |analytic - numeric| / max |numeric| over up to `samples` coordinates of v. */
static double compare(check *c, double *v, const double *analytic, int64_t n, int samples, cn_rng *pick)
{
    double worst = 0, scale = 0;
    int64_t count = n < samples ? n : samples;
    double diffs[256], nums[256];
    if (count > 256) count = 256;
    for (int64_t k = 0; k < count; k++) {
        int64_t j = n <= samples ? k : (int64_t)cn_rng_below(pick, (uint64_t)n);
        double keep = v[j], e = 1e-6 * (fabs(keep) > 1 ? fabs(keep) : 1);
        v[j] = keep + e;
        double lp = loss(c);
        v[j] = keep - e;
        double lm = loss(c);
        v[j] = keep;
        nums[k] = (lp - lm) / (2 * e);
        diffs[k] = fabs(nums[k] - analytic[j]);
    }
    for (int64_t k = 0; k < count; k++) {
        if (fabs(nums[k]) > scale) scale = fabs(nums[k]);
        if (diffs[k] > worst) worst = diffs[k];
    }
    /* a gradient that is zero everywhere sampled must also be zero in the backward pass */
    return scale > 1e-12 ? worst / scale : worst;
}

static cn_status check_node(check *c, int samples, double *err)
{
    const cn_net *net = c->net;
    const cn_node *n = &net->nodes[c->node];
    cn_param_spec specs[CN_MAX_PARAMS];
    int np = cn_node_params(net, c->node, specs);
    cn_rng rng;
    cn_rng_seed(&rng, c->seed + (uint64_t)c->node * 7919u);
    for (int j = 0; j < n->n_in; j++) {
        c->in[j] = &net->nodes[n->in[j]];
        c->xn[j] = c->in[j]->out.c * c->in[j]->out.h * c->in[j]->out.w * c->batch;
        if (!(c->x[j] = alloc_real(c, c->xn[j])) || !(c->dx[j] = alloc_real(c, c->xn[j]))) return CN_E_NOMEM;
        for (int64_t i = 0; i < c->xn[j]; i++) c->x[j][i] = cn_rng_normal(&rng);
    }
    c->yn = n->out.c * n->out.h * n->out.w * c->batch;
    c->wn = c->bn = 0;
    for (int k = 0; k < np; k++) *(specs[k].trainable ? &c->wn : &c->bn) += specs[k].count;
    int64_t ab = n->op->aux_bytes ? n->op->aux_bytes(n, c->in, c->batch, sizeof(double)) : 0;
    if (ab < 0 || ab > INT64_MAX - 8) return cn_fail(c->ctx, CN_E_OVERFLOW, "gradcheck: %s: scratch too large", n->name);
    if (!(c->y = alloc_real(c, c->yn)) || !(c->dy = alloc_real(c, c->yn)) || !(c->w = alloc_real(c, c->wn)) ||
        !(c->dw = alloc_real(c, c->wn)) || !(c->buf = alloc_real(c, c->bn)) || !(c->buf0 = alloc_real(c, c->bn)) ||
        !(c->aux = alloc_real(c, (ab + 7) / 8)))
        return CN_E_NOMEM;
    for (int64_t i = 0; i < c->yn; i++) c->dy[i] = cn_rng_normal(&rng);
    int64_t wo = 0, bo = 0;
    for (int k = 0; k < np; k++) {
        double *dst = specs[k].trainable ? c->w + wo : c->buf0 + bo;
        for (int64_t i = 0; i < specs[k].count; i++)
            dst[i] = specs[k].init == CN_PINIT_WEIGHT ? cn_rng_normal(&rng) * 0.5
                     : specs[k].init == CN_PINIT_ONE ? 0.5 + cn_rng_uniform(&rng) /* gamma, running var > 0 */
                                                     : cn_rng_normal(&rng) * 0.1;
        *(specs[k].trainable ? &wo : &bo) += specs[k].count;
    }
    /* analytic gradients, accumulated onto a known start so that a backward pass which
     * overwrites instead of adding shows up as an error */
    for (int j = 0; j < n->n_in; j++)
        for (int64_t i = 0; i < c->xn[j]; i++) c->dx[j][i] = 1.0;
    for (int64_t i = 0; i < c->wn; i++) c->dw[i] = 1.0;
    loss(c);
    cn_op_io io = { .n = n, .in = c->in, .batch = c->batch, .x = (const void *const *)c->x, .y = c->y, .w = c->w,
                    .dw = c->dw, .buf = c->buf, .aux = c->aux, .dy = c->dy, .dx = (void *const *)c->dx,
                    .training = c->training };
    n->op->backward[CN_F64](&io);
    for (int j = 0; j < n->n_in; j++)
        for (int64_t i = 0; i < c->xn[j]; i++) c->dx[j][i] -= 1.0;
    for (int64_t i = 0; i < c->wn; i++) c->dw[i] -= 1.0;
    *err = 0;
    for (int j = 0; j < n->n_in; j++) {
        double e = compare(c, c->x[j], c->dx[j], c->xn[j], samples, &rng);
        if (e > *err) *err = e;
    }
    if (c->wn) {
        double e = compare(c, c->w, c->dw, c->wn, samples, &rng);
        if (e > *err) *err = e;
    }
    return CN_OK;
}

static void release(check *c)
{
    const cn_node *n = &c->net->nodes[c->node];
    for (int j = 0; j < n->n_in; j++) {
        cn_free(c->ctx, c->x[j]);
        cn_free(c->ctx, c->dx[j]);
        c->x[j] = c->dx[j] = NULL;
    }
    double **all[] = { &c->y, &c->dy, &c->w, &c->dw, &c->buf, &c->buf0, &c->aux };
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        cn_free(c->ctx, *all[k]);
        *all[k] = NULL;
    }
}

cn_status cn_net_gradcheck(cn_ctx *ctx, const cn_net *net, uint64_t seed, int64_t batch, int training, int samples,
                           double *max_rel_err, double *worst)
{
    if (!ctx || !net || !max_rel_err || batch < 1 || samples < 1)
        return ctx ? cn_fail(ctx, CN_E_ARG, "cn_net_gradcheck: bad arguments") : CN_E_ARG;
    *worst = 0;
    max_rel_err[0] = 0;
    for (int i = 1; i < net->n; i++) {
        check c = { .ctx = ctx, .net = net, .node = i, .batch = batch, .training = training, .seed = seed };
        cn_status st = check_node(&c, samples, &max_rel_err[i]);
        release(&c);
        if (st) return st;
        if (max_rel_err[i] > *worst || isnan(max_rel_err[i])) *worst = max_rel_err[i];
    }
    return CN_OK;
}
