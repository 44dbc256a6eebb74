/* optim.c — SGD, momentum, Nesterov, Adam and AdamW over the flat parameter slab, as PyTorch
 * updates them; learning-rate schedules (constant, step, cosine, one-cycle, warm-up); gradient
 * clipping by global norm. The state lives in one slab at the parameter offsets; the update is
 * one vectorised loop over it per rule, on threads for large nets.
 * Covered by tests/test_torch_parity.c (every rule and schedule against PyTorch), tests/test_train.c
 * and tests/test_trainer.c (frozen layers). */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "../backend/kernel.h"
#include "../core/core_impl.h"
#include "../core/sum_impl.h"
#include "train_impl.h"

struct cn_optim {
    cn_allocator alloc;
    cn_optim_config cfg;
    int64_t n;       /* trainable values */
    int64_t steps;
    float *state;    /* momentum: v; Adam: m then v */
    const cn_memory_ops *mem; /* where state lives: the net's backend's memory (NULL: the host's) */
    int64_t state_n;
};

static const double PI = 3.14159265358979323846;

void cn_optim_defaults(cn_optim_config *cfg, cn_optim_kind kind)
{
    int adam = kind == CN_OPTIM_ADAM || kind == CN_OPTIM_ADAMW;
    *cfg = (cn_optim_config){ .kind = kind, .lr = adam ? 1e-3 : 1e-2, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999,
                              .eps = 1e-8, .weight_decay = kind == CN_OPTIM_ADAMW ? 1e-2 : 0.0, .gamma = 0.1,
                              .step_size = 1, .pct_start = 0.3, .div_factor = 25.0, .final_div_factor = 1e4 };
}

int cn_optim_state_names(cn_optim_kind kind, const char **names)
{
    switch (kind) {
    case CN_OPTIM_MOMENTUM:
    case CN_OPTIM_NESTEROV: names[0] = "momentum_buffer"; return 1;
    case CN_OPTIM_ADAM:
    case CN_OPTIM_ADAMW: names[0] = "exp_avg", names[1] = "exp_avg_sq"; return 2;
    default: return 0;
    }
}

static int states_of(cn_optim_kind k)
{
    const char *names[CN_OPTIM_MAX_STATES];
    return cn_optim_state_names(k, names);
}

cn_status cn_optim_config_check(cn_ctx *ctx, const cn_optim_config *cfg)
{
    /* each setting named with its value, so that `--momentum 2` is told which; the updates are
     * in float, so a value past float's range (1e39) would overflow at the first step */
    static const struct { const char *name; size_t off; double lo; int open_lo; double hi; } range[] = {
        { "lr", offsetof(cn_optim_config, lr), 0, 1, FLT_MAX },
        { "momentum", offsetof(cn_optim_config, momentum), 0, 0, 1 },
        { "beta1", offsetof(cn_optim_config, beta1), 0, 0, 1 },
        { "beta2", offsetof(cn_optim_config, beta2), 0, 0, 1 },
        { "eps", offsetof(cn_optim_config, eps), 0, 1, FLT_MAX },
        { "weight decay", offsetof(cn_optim_config, weight_decay), 0, 0, FLT_MAX },
        { "l1", offsetof(cn_optim_config, l1), 0, 0, FLT_MAX },
        { "clip", offsetof(cn_optim_config, clip_norm), 0, 0, FLT_MAX },
    };
    if ((unsigned)cfg->kind > CN_OPTIM_ADAMW || (unsigned)cfg->schedule > CN_SCHED_ONECYCLE)
        return cn_fail(ctx, CN_E_ARG, "unknown optimizer or schedule");
    for (size_t i = 0; i < sizeof range / sizeof *range; i++) {
        double v = *(const double *)((const char *)cfg + range[i].off);
        if (!(range[i].open_lo ? v > range[i].lo : v >= range[i].lo) || !(v < range[i].hi) || isnan(v))
            return cn_fail(ctx, CN_E_ARG, "optimizer: %s %g: it must be %s %g%s", range[i].name, v,
                           range[i].open_lo ? ">" : ">=", range[i].lo,
                           range[i].hi == 1 ? " and below 1" : ", and below float's largest, 3.4e38");
    }
    if (cfg->warmup_steps < 0) return cn_fail(ctx, CN_E_ARG, "optimizer: warmup %lld: it must be >= 0", (long long)cfg->warmup_steps);
    if ((cfg->schedule == CN_SCHED_COSINE || cfg->schedule == CN_SCHED_ONECYCLE) && cfg->total_steps < 1)
        return cn_fail(ctx, CN_E_ARG, "the cosine and one-cycle schedules need the total number of steps");
    if (cfg->schedule == CN_SCHED_STEP && (cfg->step_size < 1 || !(cfg->gamma > 0)))
        return cn_fail(ctx, CN_E_ARG, "the step schedule needs step_size >= 1 and gamma > 0");
    if (cfg->schedule == CN_SCHED_ONECYCLE &&
        !(cfg->pct_start > 0 && cfg->pct_start < 1 && cfg->div_factor > 0 && cfg->final_div_factor > 0))
        return cn_fail(ctx, CN_E_ARG, "one-cycle needs 0 < pct_start < 1 and positive div factors");
    return CN_OK;
}

cn_status cn_optim_create(cn_ctx *ctx, const cn_net *net, const cn_optim_config *cfg, cn_optim **out)
{
    if (!ctx || !net || !cfg || !out) return ctx ? cn_fail(ctx, CN_E_ARG, "cn_optim_create: NULL argument") : CN_E_ARG;
    *out = NULL;
    cn_status st = cn_optim_config_check(ctx, cfg);
    if (st) return st;
    int64_t trainable;
    if (!cn_net_params(net, &trainable, NULL)) return cn_fail(ctx, CN_E_ARG, "cn_optim_create: call cn_net_init_params first");
    cn_optim *o = cn_calloc(ctx, 1, sizeof *o);
    if (!o) return CN_E_NOMEM;
    o->alloc = ctx->alloc;
    o->cfg = *cfg;
    o->n = trainable;
    o->state_n = o->n * states_of(cfg->kind);
    o->mem = cn_net_slab_memory(net); /* beside the parameters, where the backend's update reads it */
    size_t bytes = (size_t)(o->state_n ? o->state_n : 1) * sizeof(float);
    if (o->mem && !(o->state = o->mem->alloc(bytes))) cn_fail(ctx, CN_E_NOMEM, "no memory for the optimizer's state");
    if (!o->mem) o->state = cn_calloc_slab(ctx, bytes);
    if (!o->state) {
        cn_free(ctx, o);
        return CN_E_NOMEM;
    }
    *out = o;
    return CN_OK;
}

void cn_optim_destroy(cn_optim *opt)
{
    if (!opt) return;
    cn_ctx tmp = { .alloc = opt->alloc };
    if (opt->mem) opt->mem->release(opt->state);
    else cn_free(&tmp, opt->state);
    cn_free(&tmp, opt);
}

int64_t cn_optim_steps(const cn_optim *opt) { return opt->steps; }
const cn_optim_config *cn_optim_get_config(const cn_optim *opt) { return &opt->cfg; }

const char *cn_optim_kind_name(cn_optim_kind kind)
{
    static const char *names[] = { "sgd", "momentum", "nesterov", "adam", "adamw" };
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}
int cn_optim_kind_from_name(const char *name, cn_optim_kind *kind)
{
    for (int k = CN_OPTIM_SGD; k <= CN_OPTIM_ADAMW; k++)
        if (!strcmp(name, cn_optim_kind_name((cn_optim_kind)k))) {
            *kind = (cn_optim_kind)k;
            return 1;
        }
    return 0;
}

void cn_optim_set_steps(cn_optim *opt, int64_t steps) { opt->steps = steps; }

float *cn_optim_state(cn_optim *opt, int64_t *count)
{
    if (count) *count = opt->state_n;
    return opt->state;
}

/* the net's trainable tensors: the first ones of its tensor order (the slab's) */
static int trainable_tensors(const cn_net *net)
{
    int n = 0, total = cn_net_tensor_count(net);
    cn_tensor t;
    while (n < total && cn_net_tensor(NULL, net, n, &t) == CN_OK && t.trainable) n++;
    return n;
}

int cn_optim_tensor_count(const cn_optim *opt, const cn_net *net)
{
    return opt && net ? states_of(opt->cfg.kind) * trainable_tensors(net) : 0;
}

cn_status cn_optim_tensor(cn_ctx *ctx, const cn_optim *opt, const cn_net *net, int i, cn_optim_state_tensor *out)
{
    memset(out, 0, sizeof *out);
    int64_t trainable;
    const float *params = cn_net_params(net, &trainable, NULL);
    if (trainable != opt->n) return cn_fail(ctx, CN_E_ARG, "optimizer made for another net");
    const char *names[CN_OPTIM_MAX_STATES];
    int states = cn_optim_state_names(opt->cfg.kind, names), per = trainable_tensors(net);
    if (i < 0 || i >= states * per) return cn_fail(ctx, CN_E_ARG, "optimizer state tensor %d of %d", i, states * per);
    cn_tensor t;
    cn_status st = cn_net_tensor(ctx, net, i % per, &t);
    if (st) return st;
    *out = (cn_optim_state_tensor){ .param = t.name, .state = names[i / per], .rank = t.rank, .count = t.count,
                              .data = opt->state + (i / per) * opt->n + (t.data - params) };
    memcpy(out->shape, t.shape, sizeof out->shape);
    return CN_OK;
}

/* PyTorch's _annealing_cos: from start to end as pct goes 0 -> 1 */
static double anneal_cos(double start, double end, double pct) { return end + (start - end) / 2.0 * (cos(PI * pct) + 1.0); }

double cn_optim_lr_at(const cn_optim_config *c, int64_t t)
{
    if (c->schedule == CN_SCHED_ONECYCLE) {
        double initial = c->lr / c->div_factor, min_lr = initial / c->final_div_factor;
        double up_end = c->pct_start * (double)c->total_steps - 1.0, down_end = (double)c->total_steps - 1.0;
        if ((double)t <= up_end) return anneal_cos(initial, c->lr, up_end > 0 ? (double)t / up_end : 1.0);
        return anneal_cos(c->lr, min_lr, down_end > up_end ? ((double)t - up_end) / (down_end - up_end) : 1.0);
    }
    if (t < c->warmup_steps) return c->lr * (double)(t + 1) / (double)c->warmup_steps;
    int64_t s = t - c->warmup_steps;
    switch (c->schedule) {
    case CN_SCHED_STEP: return c->lr * pow(c->gamma, (double)(s / c->step_size));
    case CN_SCHED_COSINE: {
        int64_t span = c->total_steps - c->warmup_steps;
        if (span < 1 || s >= span) return 0.0;
        return c->lr * 0.5 * (1.0 + cos(PI * (double)s / (double)span));
    }
    default: return c->lr;
    }
}

/* ---- the update: elementwise over the slab, so any split over threads gives the same bits ---- */

#define OPTIM_PAR_MIN 65536 /* values below which the update stays on one thread */
#define NORM_BLOCKS 64      /* the gradient norm sums blocks of n / 64 values, then the blocks */

/* sum of g^2 in an order fixed by n alone: blocks (on threads), each in lanes, then in order */
static double sum_squares(const float *g, int64_t n)
{
    double part[NORM_BLOCKS], sq = 0.0;
    int64_t per = (n + NORM_BLOCKS - 1) / NORM_BLOCKS;
    CN_PAR_FOR(n >= OPTIM_PAR_MIN, schedule(static),
        for (int b = 0; b < NORM_BLOCKS; b++) {
            int64_t lo = b * per < n ? b * per : n, len = n - lo < per ? n - lo : per;
            cn_sum8 s = cn_sum8_zero();
            cn_sum8_add_dot(&s, g + lo, 0.0, g + lo, 0.0, len);
            part[b] = cn_sum8_total(&s);
        });
    for (int b = 0; b < NORM_BLOCKS; b++) sq += part[b];
    return sq;
}

/* what one step applies to every value: cn_update_args (src/backend/kernel.h), which a backend's
 * own update kernel receives too */
typedef cn_update_args update_args;

/* the gradient the rule sees: clipped, plus the L1 term and (but for AdamW) the L2 term */
static inline double grad_of(const update_args *a, float g, double w, int decoupled)
{
    double gi = g * a->clip;
    if (a->l1 > 0) gi += a->l1 * (double)((w > 0) - (w < 0));
    if (!decoupled) gi += a->decay * w;
    return gi;
}

/* The updates are elementwise in double, in ISO C (no contraction into FMAs), so a clone for
 * AVX-512 (8 doubles a vector, where the baseline has 2) or AVX2 (4) gives the baseline's bits,
 * the CPU choosing at load time (as the CPU backend's activations, kernel_util.h's CPU_CLONES) */
#if defined(__x86_64__) || defined(__i386__)
#define UPDATE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define UPDATE_CLONES /* one build: the baseline's */
#endif

/* w -= lr g */
UPDATE_CLONES static void update_sgd(const update_args *a, float *restrict w, const float *restrict g, int64_t n)
{
    CN_PAR_FOR_SIMD(n >= OPTIM_PAR_MIN, schedule(simd: static),
        for (int64_t i = 0; i < n; i++) {
            double wi = w[i];
            w[i] = (float)(wi - a->lr * grad_of(a, g[i], wi, 0));
        });
}

/* v = momentum v + g; w -= lr v, or lr (g + momentum v) for Nesterov */
UPDATE_CLONES static void update_momentum(const update_args *a, int nesterov, float *restrict w, const float *restrict g,
                            float *restrict v, int64_t n)
{
    CN_PAR_FOR_SIMD(n >= OPTIM_PAR_MIN, schedule(simd: static),
        for (int64_t i = 0; i < n; i++) {
            double wi = w[i], gi = grad_of(a, g[i], wi, 0);
            float vi = (float)(a->momentum * v[i] + gi);
            v[i] = vi;
            w[i] = (float)(wi - a->lr * (nesterov ? gi + a->momentum * vi : vi));
        });
}

/* m, v = moving averages of g, g^2; w -= lr m^ / (sqrt(v^) + eps) with bias-corrected m^, v^;
 * AdamW first shrinks w by lr * decay. (Not asked to vectorise: sqrt, which may set errno, does
 * not without -fno-math-errno.) */
UPDATE_CLONES static void update_adam(const update_args *a, int adamw, float *restrict w, const float *restrict g,
                        float *restrict m, float *restrict v, int64_t n)
{
    CN_PAR_FOR(n >= OPTIM_PAR_MIN, schedule(static),
        for (int64_t i = 0; i < n; i++) {
            double wi = w[i], gi = grad_of(a, g[i], wi, adamw);
            if (adamw) wi *= 1.0 - a->lr * a->decay;
            float mi = (float)(a->beta1 * m[i] + (1.0 - a->beta1) * gi);
            float vi = (float)(a->beta2 * v[i] + (1.0 - a->beta2) * gi * gi);
            m[i] = mi, v[i] = vi;
            w[i] = (float)(wi - a->lr_bc1 * mi / (sqrt((double)vi) / a->sqrt_bc2 + a->eps));
        });
}

/* what step t (0-based) applies to every value, for a gradient of global norm `norm` */
static update_args update_args_of(const cn_optim_config *c, int64_t t, double norm)
{
    double steps = (double)(t + 1), lr = cn_optim_lr_at(c, t);
    return (update_args){
        /* clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1 */
        .clip = c->clip_norm > 0 && c->clip_norm / (norm + 1e-6) < 1.0 ? c->clip_norm / (norm + 1e-6) : 1.0,
        .lr = lr, .l1 = c->l1, .decay = c->weight_decay, .momentum = c->momentum, .beta1 = c->beta1,
        .beta2 = c->beta2, .eps = c->eps, .lr_bc1 = lr / (1.0 - pow(c->beta1, steps)),
        .sqrt_bc2 = sqrt(1.0 - pow(c->beta2, steps)),
    };
}

/* the host's update kernel, the reference of cn_step_kernels.update */
static void update_range(cn_optim_kind kind, const update_args *a, float *w, const float *g, float *s1, float *s2,
                         int64_t n)
{
    switch (kind) {
    case CN_OPTIM_SGD: update_sgd(a, w, g, n); break;
    case CN_OPTIM_MOMENTUM:
    case CN_OPTIM_NESTEROV: update_momentum(a, kind == CN_OPTIM_NESTEROV, w, g, s1, n); break;
    case CN_OPTIM_ADAM:
    case CN_OPTIM_ADAMW: update_adam(a, kind == CN_OPTIM_ADAMW, w, g, s1, s2, n); break;
    }
}

cn_status cn_optim_step(cn_ctx *ctx, cn_optim *opt, cn_net *net, double *grad_norm)
{
    return cn_optim_step_sq(ctx, opt, net, NAN, 1, grad_norm);
}

cn_status cn_optim_step_sq(cn_ctx *ctx, cn_optim *opt, cn_net *net, double sum_sq, int wait, double *grad_norm)
{
    const cn_optim_config *c = &opt->cfg;
    int64_t n;
    float *w = cn_net_params(net, &n, NULL), *g = cn_net_grads(net, NULL);
    if (!w || n != opt->n) return cn_fail(ctx, CN_E_ARG, "optimizer made for another net");
    /* frozen layers: no gradient, so no part in the norm either */
    int frozen = 0, n_tensors = cn_net_tensor_count(net);
    cn_tensor t;
    for (int i = 0; i < n_tensors && !cn_net_tensor(ctx, net, i, &t) && t.trainable; i++)
        if (t.frozen) memset(t.grad, 0, (size_t)t.count * sizeof(float)), frozen = 1;
    const cn_step_kernels *k = cn_net_step_kernels(net); /* the backend's, where it has them */
    if (isnan(sum_sq) || frozen) sum_sq = (k->sum_squares ? k->sum_squares : sum_squares)(g, n);
    double norm = sqrt(sum_sq);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm)) return cn_fail(ctx, CN_E_NUMERIC, "gradient norm is %g: not updating", norm);
    update_args a = update_args_of(c, opt->steps, norm);
    /* the slab whole, or in runs of tensors that are not frozen (the trainable tensors lie back
     * to back in the slab); the update is elementwise, so a value gets the same bits either way */
    int states = states_of(c->kind);
    for (int i = 0; i < (frozen ? n_tensors : 1); i++) {
        int64_t lo = 0, len = n;
        if (frozen) {
            if (cn_net_tensor(ctx, net, i, &t) || !t.trainable) break;
            if (t.frozen) continue;
            lo = t.data - w, len = t.count;
            while (i + 1 < n_tensors && !cn_net_tensor(ctx, net, i + 1, &t) && t.trainable && !t.frozen) len += t.count, i++;
        }
        (k->update ? k->update : update_range)(c->kind, &a, w + lo, g + lo, states > 0 ? opt->state + lo : NULL,
                                               states > 1 ? opt->state + n + lo : NULL, len);
    }
    opt->steps++;
    cn_net_params_changed(net);
    /* its update done (a checkpoint may read it next); or, for a caller that waits later, queued */
    return wait ? cn_net_check_backend(ctx, net) : CN_OK;
}

int cn_optim_gates(cn_ctx *ctx, const cn_optim *opt, const cn_net *net)
{
    int64_t n;
    cn_tensor t;
    if (!cn_net_step_kernels(net)->queue_gate || !cn_net_params(net, &n, NULL) || n != opt->n) return 0;
    for (int i = 0; i < cn_net_tensor_count(net) && !cn_net_tensor(ctx, net, i, &t) && t.trainable; i++)
        if (t.frozen) return 0;
    return 1;
}

void cn_optim_step_gated(cn_optim *opt, cn_net *net, const double *gate)
{
    int64_t n;
    float *w = cn_net_params(net, &n, NULL), *g = cn_net_grads(net, NULL);
    const cn_step_kernels *k = cn_net_step_kernels(net);
    update_args a = update_args_of(&opt->cfg, opt->steps, 0); /* the clip factor: the gate's */
    a.gate = gate;
    int states = states_of(opt->cfg.kind);
    k->update(opt->cfg.kind, &a, w, g, states > 0 ? opt->state : NULL, states > 1 ? opt->state + n : NULL, n);
    opt->steps++;
    cn_net_params_changed(net);
}

void cn_optim_unstep(cn_optim *opt, int64_t steps) { opt->steps -= steps; }

void cn_optim_update(const cn_optim_config *cfg, int64_t t, float *w, const float *g, float *state1, float *state2,
                     int64_t n)
{
    double sq = sum_squares(g, n);
    update_args a = update_args_of(cfg, t, sqrt(sq));
    update_range(cfg->kind, &a, w, g, state1, state2, n);
}
