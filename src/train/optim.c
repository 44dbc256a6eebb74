/* optim.c — SGD, momentum, Nesterov, Adam and AdamW over the flat parameter slab, as PyTorch
 * updates them; learning-rate schedules (constant, step, cosine, one-cycle, warm-up); gradient
 * clipping by global norm. The state lives in one slab at the parameter offsets.
 * Covered by tests/test_optim.c and tests/test_torch_parity.c. */
#include <math.h>
#include <string.h>

#include "../model/model_impl.h"

struct cn_optim {
    cn_allocator alloc;
    cn_optim_config cfg;
    int64_t n;       /* trainable values */
    int64_t steps;
    float *state;    /* momentum: v; Adam: m then v */
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

static int states_of(cn_optim_kind k)
{
    return k == CN_OPTIM_ADAM || k == CN_OPTIM_ADAMW ? 2 : k == CN_OPTIM_SGD ? 0 : 1;
}

cn_status cn_optim_create(cn_ctx *ctx, const cn_net *net, const cn_optim_config *cfg, cn_optim **out)
{
    if (!ctx || !net || !cfg || !out) return ctx ? cn_fail(ctx, CN_E_ARG, "cn_optim_create: NULL argument") : CN_E_ARG;
    *out = NULL;
    if ((unsigned)cfg->kind > CN_OPTIM_ADAMW || (unsigned)cfg->schedule > CN_SCHED_ONECYCLE)
        return cn_fail(ctx, CN_E_ARG, "unknown optimizer or schedule");
    if (!(cfg->lr > 0) || !(cfg->momentum >= 0 && cfg->momentum < 1) || !(cfg->beta1 >= 0 && cfg->beta1 < 1) ||
        !(cfg->beta2 >= 0 && cfg->beta2 < 1) || !(cfg->eps > 0) || !(cfg->weight_decay >= 0) || !(cfg->l1 >= 0) ||
        !(cfg->clip_norm >= 0) || cfg->warmup_steps < 0)
        return cn_fail(ctx, CN_E_ARG, "optimizer: need lr > 0, 0 <= momentum, betas < 1, eps > 0, decay, l1, clip >= 0");
    if ((cfg->schedule == CN_SCHED_COSINE || cfg->schedule == CN_SCHED_ONECYCLE) && cfg->total_steps < 1)
        return cn_fail(ctx, CN_E_ARG, "the cosine and one-cycle schedules need the total number of steps");
    if (cfg->schedule == CN_SCHED_STEP && (cfg->step_size < 1 || !(cfg->gamma > 0)))
        return cn_fail(ctx, CN_E_ARG, "the step schedule needs step_size >= 1 and gamma > 0");
    if (cfg->schedule == CN_SCHED_ONECYCLE &&
        !(cfg->pct_start > 0 && cfg->pct_start < 1 && cfg->div_factor > 0 && cfg->final_div_factor > 0))
        return cn_fail(ctx, CN_E_ARG, "one-cycle needs 0 < pct_start < 1 and positive div factors");
    if (!net->ex.params) return cn_fail(ctx, CN_E_ARG, "cn_optim_create: call cn_net_init_params first");
    cn_optim *o = cn_calloc(ctx, 1, sizeof *o);
    if (!o) return CN_E_NOMEM;
    o->alloc = ctx->alloc;
    o->cfg = *cfg;
    o->n = net->ex.n_trainable;
    o->state_n = o->n * states_of(cfg->kind);
    if (!(o->state = cn_calloc(ctx, (size_t)(o->state_n ? o->state_n : 1), sizeof(float)))) {
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
    cn_free(&tmp, opt->state);
    cn_free(&tmp, opt);
}

int64_t cn_optim_steps(const cn_optim *opt) { return opt->steps; }
const cn_optim_config *cn_optim_get_config(const cn_optim *opt) { return &opt->cfg; }

const char *cn_optim_kind_name(cn_optim_kind kind)
{
    static const char *names[] = { "sgd", "momentum", "nesterov", "adam", "adamw" };
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}
void cn_optim_set_steps(cn_optim *opt, int64_t steps) { opt->steps = steps; }

float *cn_optim_state(cn_optim *opt, int64_t *count)
{
    if (count) *count = opt->state_n;
    return opt->state;
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

cn_status cn_optim_step(cn_ctx *ctx, cn_optim *opt, cn_net *net, double *grad_norm)
{
    const cn_optim_config *c = &opt->cfg;
    if (net->ex.n_trainable != opt->n) return cn_fail(ctx, CN_E_ARG, "optimizer made for another net");
    float *w = net->ex.params, *g = net->ex.grads;
    int64_t n = opt->n;
    double sq = 0;
    for (int64_t i = 0; i < n; i++) sq += (double)g[i] * g[i];
    double norm = sqrt(sq);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm)) return cn_fail(ctx, CN_E_NUMERIC, "gradient norm is %g: not updating", norm);
    /* clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1 */
    double clip = c->clip_norm > 0 && c->clip_norm / (norm + 1e-6) < 1.0 ? c->clip_norm / (norm + 1e-6) : 1.0;
    double lr = cn_optim_lr_at(c, opt->steps);
    float *s1 = opt->state, *s2 = opt->state + n;
    int adamw = c->kind == CN_OPTIM_ADAMW;
    double t = (double)(opt->steps + 1);
    double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
    for (int64_t i = 0; i < n; i++) {
        double gi = g[i] * clip, wi = w[i];
        if (c->l1 > 0) gi += c->l1 * (double)((wi > 0) - (wi < 0));
        if (!adamw) gi += c->weight_decay * wi;
        switch (c->kind) {
        case CN_OPTIM_SGD: wi -= lr * gi; break;
        case CN_OPTIM_MOMENTUM:
        case CN_OPTIM_NESTEROV: {
            float v = (float)(c->momentum * s1[i] + gi);
            s1[i] = v;
            wi -= lr * (c->kind == CN_OPTIM_NESTEROV ? gi + c->momentum * v : v);
            break;
        }
        case CN_OPTIM_ADAM:
        case CN_OPTIM_ADAMW: {
            if (adamw) wi *= 1.0 - lr * c->weight_decay;
            float m = (float)(c->beta1 * s1[i] + (1.0 - c->beta1) * gi);
            float v = (float)(c->beta2 * s2[i] + (1.0 - c->beta2) * gi * gi);
            s1[i] = m, s2[i] = v;
            wi -= lr / bc1 * m / (sqrt((double)v) / sqrt(bc2) + c->eps);
            break;
        }
        }
        w[i] = (float)wi;
    }
    opt->steps++;
    return CN_OK;
}
