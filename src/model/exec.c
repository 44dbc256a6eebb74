#define _POSIX_C_SOURCE 200809L /* clock_gettime */
/* exec.c — running a net: the parameter and gradient slabs, activations planned once per
 * batch size, forward in topological order and backward in reverse (gradients accumulate), a
 * training batch cut into shards (shards.h: each layer run on each shard as a batch of its own),
 * and the NaN tracer. Covered by tests/test_backend.c, tests/test_gradcheck.c,
 * tests/test_torch_parity.c, tests/test_train.c and tests/test_parallel.c. */
#include <limits.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "../ops/pool_ref.h"
#include "model_impl.h"

static const cn_backend *backend_of(const cn_exec *ex) { return ex->backend ? ex->backend : cn_backend_default(); }

/* ---- the slabs, in the backend's memory ----------------------------------------------------- */

/* zeroed bytes from the slabs' memory (the backend's, or the context's allocator) */
static void *slab_alloc(cn_ctx *ctx, const cn_memory_ops *mem, size_t bytes)
{
    if (!mem) return cn_calloc_slab(ctx, bytes);
    void *p = mem->alloc(bytes ? bytes : 1);
    const char *why = p || !mem->error ? NULL : mem->error();
    if (!p && why) cn_fail(ctx, CN_E_NOMEM, "%s", why);
    else if (!p) cn_fail(ctx, CN_E_NOMEM, "out of %s memory (%zu bytes)", "the backend's", bytes);
    return p;
}

static void slab_free(cn_ctx *ctx, const cn_memory_ops *mem, void *p)
{
    if (!mem) cn_free(ctx, p);
    else if (p) mem->release(p);
}

/* the step's recording, which names this plan's memory */
static void drop_entry(cn_exec *ex, int i)
{
    if (ex->rec[i] && ex->rec_release) ex->rec_release(ex->rec[i]);
    ex->rec[i] = NULL, ex->rec_key[i] = 0, ex->rec_seen[i] = 0, ex->rec_used[i] = 0;
}

static void drop_recording(cn_exec *ex)
{
    drop_entry(ex, 0), drop_entry(ex, 1);
    ex->rec_release = NULL;
}

/* what held parameters made (cn_net_hold_params) */
static void free_keep(cn_ctx *ctx, cn_exec *ex)
{
    slab_free(ctx, ex->mem, ex->keep), cn_free(ctx, ex->keep_off);
    ex->keep = NULL, ex->keep_off = NULL, ex->made = 0;
}

/* the slabs planned for a batch size: activations, their gradients, aux, workspace */
static void free_planned(cn_ctx *ctx, cn_exec *ex)
{
    drop_recording(ex);
    slab_free(ctx, ex->mem, ex->act), slab_free(ctx, ex->mem, ex->dact), slab_free(ctx, ex->mem, ex->aux);
    slab_free(ctx, ex->mem, ex->work), slab_free(ctx, ex->mem, ex->slice_grads);
    cn_free(ctx, ex->slice_at), cn_free(ctx, ex->aux_off), cn_free(ctx, ex->slice_rng);
    cn_free(ctx, ex->buf_save), cn_free(ctx, ex->stats), cn_free(ctx, ex->fold_w), cn_free(ctx, ex->fold_aff);
    cn_free(ctx, ex->view), cn_free(ctx, ex->dview);
    ex->view = ex->dview = NULL, ex->halved = 0;
    ex->act = ex->dact = NULL, ex->aux = NULL, ex->work = NULL, ex->batch = 0, ex->slice_grads = NULL;
    ex->slice_at = ex->aux_off = NULL, ex->slice_rng = NULL, ex->buf_save = NULL, ex->stats = NULL, ex->n_slices = 0;
    ex->fold_w = NULL, ex->fold_aff = NULL, ex->folded = ex->fused = 0;
}

/* the training step's scratch (not planned: a step asks for it before its forward pass) */
static void free_scratch(cn_ctx *ctx, cn_exec *ex)
{
    slab_free(ctx, ex->mem, ex->scratch);
    ex->scratch = NULL, ex->scratch_n = 0;
}

/* the host reads the slabs next: the backend's queued work must be done */
static void sync_host(const cn_exec *ex)
{
    if (ex->mem && ex->mem->sync) ex->mem->sync();
}

/* the backend's work done, and its first failure reported (kernels return nothing) */
static cn_status backend_status(cn_ctx *ctx, const cn_exec *ex)
{
    if (!ex->queued) sync_host(ex);
    const char *why = ex->mem && ex->mem->error ? ex->mem->error() : NULL;
    return why ? cn_fail(ctx, CN_E_DEVICE, "%s", why) : CN_OK;
}

const cn_memory_ops *cn_net_slab_memory(const cn_net *net) { return net->ex.mem; }

cn_status cn_net_check_backend(cn_ctx *ctx, cn_net *net) { return backend_status(ctx, &net->ex); }

void cn_net_set_queued(cn_net *net, int on) { net->ex.queued = on; }

/* the entry of key, or -1 */
static int entry_of(const cn_exec *ex, uint64_t key)
{
    for (int i = 0; i < 2; i++)
        if (ex->rec_used[i] && ex->rec_key[i] == key) return i;
    return -1;
}

void *cn_net_recording(const cn_net *net, uint64_t key, int *seen)
{
    int i = entry_of(&net->ex, key);
    *seen = i >= 0 ? net->ex.rec_seen[i] : 0;
    return i >= 0 ? net->ex.rec[i] : NULL;
}

int cn_net_has_recording(const cn_net *net) { return net->ex.rec[0] || net->ex.rec[1]; }

void cn_net_keep_recording(cn_net *net, void *rec, uint64_t key, int seen)
{
    cn_exec *ex = &net->ex;
    const cn_step_kernels *k = backend_of(ex)->step;
    int i = entry_of(ex, key);
    if (i < 0) i = ex->rec_used[0] <= ex->rec_used[1] ? 0 : 1; /* a new key: in place of the older */
    if (rec != ex->rec[i]) drop_entry(ex, i);
    ex->rec[i] = rec, ex->rec_key[i] = key, ex->rec_seen[i] = seen, ex->rec_used[i] = ++ex->rec_clock;
    ex->rec_release = k && k->replay ? k->replay->release : NULL;
}

void cn_net_copy(const cn_net *net, void *dst, const void *src, size_t bytes)
{
    const cn_memory_ops *mem = net->ex.mem;
    if (mem && mem->copy) mem->copy(dst, src, bytes);
    else memcpy(dst, src, bytes);
}

void cn_exec_free(cn_ctx *ctx, cn_exec *ex)
{
    for (int i = 0; i < ex->n_tensors; i++) cn_free(ctx, ex->tensors[i].name);
    cn_free(ctx, ex->tensors);
    slab_free(ctx, ex->mem, ex->params);
    slab_free(ctx, ex->mem, ex->grads);
    free_planned(ctx, ex);
    free_keep(ctx, ex);
    free_scratch(ctx, ex);
    cn_free(ctx, ex->w_off);
    cn_free(ctx, ex->buf_off);
    cn_free(ctx, ex->act_off);
    cn_free(ctx, ex->grad_writer);
    cn_free(ctx, ex->relu_in);
    cn_free(ctx, ex->n_readers);
    cn_free(ctx, ex->relu_out);
    cn_free(ctx, ex->pool_in);
    cn_free(ctx, ex->fold_bn);
    cn_free(ctx, ex->half);
    cn_free(ctx, ex->prof_fwd);
    cn_free(ctx, ex->prof_bwd);
    const cn_backend *keep = ex->backend;
    int precision = ex->precision, precision_set = ex->precision_set, no_input_grad = ex->no_input_grad;
    int held = ex->held;
    memset(ex, 0, sizeof *ex);
    /* the caller's settings outlive the parameters (cn_net_init_params after them) */
    ex->backend = keep, ex->precision = precision, ex->precision_set = precision_set, ex->no_input_grad = no_input_grad;
    ex->held = held;
    ex->mem = backend_of(ex)->memory; /* the next slabs are the backend's */
}

float *cn_net_step_scratch(cn_ctx *ctx, cn_net *net, int64_t cells)
{
    cn_exec *ex = &net->ex;
    if (ex->scratch_n >= cells) return ex->scratch;
    free_scratch(ctx, ex);
    if (!(ex->scratch = slab_alloc(ctx, ex->mem, (size_t)cells * 2 * sizeof(float)))) return NULL;
    ex->scratch_n = cells;
    return ex->scratch;
}

static void inputs_of(const cn_net *net, int i, const cn_node **in)
{
    const cn_node *n = &net->nodes[i];
    for (int j = 0; j < n->n_in; j++) in[j] = &net->nodes[n->in[j]];
}

int cn_node_params(const cn_net *net, int i, cn_param_spec *out)
{
    const cn_node *n = &net->nodes[i];
    const cn_node *in[CN_MAX_INPUTS];
    if (!n->op->params) return 0;
    inputs_of(net, i, in);
    return n->op->params(n, in, out);
}

_Static_assert(CN_MAX_PARAMS <= CN_MAX_LAYER_TENSORS, "a layer's tensors must fit cn_net_layer_params");

int cn_net_layer_params(const cn_net *net, int i, cn_param_info out[CN_MAX_LAYER_TENSORS])
{
    if (!net || i < 0 || i >= net->n) return 0;
    cn_param_spec specs[CN_MAX_PARAMS];
    int k = cn_node_params(net, i, specs);
    for (int j = 0; j < k && j < CN_MAX_LAYER_TENSORS; j++) {
        out[j] = (cn_param_info){ .layer = net->nodes[i].name, .name = specs[j].name, .rank = specs[j].rank,
                                  .count = specs[j].count, .trainable = specs[j].trainable };
        memcpy(out[j].shape, specs[j].shape, sizeof out[j].shape);
    }
    return k;
}

static int64_t elems(const cn_node *n) { return n->out.c * n->out.h * n->out.w; }

/* ---- parameters -------------------------------------------------------------------------- */

/* one value of weight tensor p: its layer's init= or, where that is the net's, `init` */
static double draw(cn_rng *rng, cn_init init, const cn_param_spec *p)
{
    double fan_in = (double)(p->fan_in > 0 ? p->fan_in : 1), fan_avg = (double)(p->fan_in + p->fan_out) / 2.0;
    if (fan_avg <= 0) fan_avg = 1;
    /* cn_winit lists the net's initializers in cn_init's order after CN_WINIT_NET */
    cn_winit how = p->winit != CN_WINIT_NET ? p->winit : (cn_winit)(CN_WINIT_KAIMING + (int)init);
    double z;
    if (p->bias && how != CN_WINIT_TORCH) return 0.0; /* no draw: the stream as without a bias */
    switch (how) {
    case CN_WINIT_NET:
    case CN_WINIT_KAIMING: return cn_rng_normal(rng) * sqrt(2.0 / fan_in);
    case CN_WINIT_KAIMING_UNIFORM: return (2.0 * cn_rng_uniform(rng) - 1.0) * sqrt(6.0 / fan_in);
    case CN_WINIT_XAVIER: return cn_rng_normal(rng) * sqrt(1.0 / fan_avg);
    case CN_WINIT_XAVIER_UNIFORM: return (2.0 * cn_rng_uniform(rng) - 1.0) * sqrt(3.0 / fan_avg);
    case CN_WINIT_NORMAL: return cn_rng_normal(rng) * p->std;
    case CN_WINIT_TRUNC_NORMAL:
        do z = cn_rng_normal(rng); while (fabs(z) > 2.0); /* accepted 95.4 % of the time */
        return z * p->std;
    case CN_WINIT_TORCH: return (2.0 * cn_rng_uniform(rng) - 1.0) / sqrt(fan_in);
    case CN_WINIT_ZERO: return 0.0;
    }
    return 0.0;
}

cn_status cn_net_init_params(cn_ctx *ctx, cn_net *net, cn_init init, uint64_t seed)
{
    if (!ctx || !net || (unsigned)init > CN_INIT_ZERO)
        return ctx ? cn_fail(ctx, CN_E_ARG, "cn_net_init_params: bad arguments") : CN_E_ARG;
    cn_exec *ex = &net->ex;
    cn_exec_free(ctx, ex);
    cn_param_spec specs[CN_MAX_PARAMS];
    int count = 0;
    for (int i = 0; i < net->n; i++) count += cn_node_params(net, i, specs);
    ex->tensors = cn_calloc(ctx, (size_t)(count ? count : 1), sizeof *ex->tensors);
    ex->w_off = cn_calloc(ctx, (size_t)net->n, sizeof(int64_t));
    ex->buf_off = cn_calloc(ctx, (size_t)net->n, sizeof(int64_t));
    ex->prof_fwd = cn_calloc(ctx, (size_t)net->n, sizeof(double));
    ex->prof_bwd = cn_calloc(ctx, (size_t)net->n, sizeof(double));
    if (!ex->tensors || !ex->w_off || !ex->buf_off || !ex->prof_fwd || !ex->prof_bwd) goto nomem;
    /* two passes: trainable tensors first, then the buffers, each in layer order */
    int64_t off = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) ex->n_trainable = off;
        for (int i = 0; i < net->n; i++) {
            int k = cn_node_params(net, i, specs);
            if (pass == 0) ex->w_off[i] = off;
            else ex->buf_off[i] = off;
            for (int j = 0; j < k; j++) {
                if (specs[j].trainable != (pass == 0)) continue;
                cn_tensor_rec *t = &ex->tensors[ex->n_tensors++];
                t->node = i;
                t->spec = specs[j];
                t->offset = off;
                size_t len = strlen(net->nodes[i].name) + strlen(specs[j].name) + 2;
                if (!(t->name = cn_malloc(ctx, len))) goto nomem;
                snprintf(t->name, len, "%s.%s", net->nodes[i].name, specs[j].name);
                if (!cn_add_ok(off, specs[j].count, &off)) {
                    cn_exec_free(ctx, ex);
                    return cn_fail(ctx, CN_E_OVERFLOW, "parameter count overflows");
                }
            }
        }
    }
    ex->n_total = off;
    ex->params = slab_alloc(ctx, ex->mem, (size_t)off * sizeof(float));
    ex->grads = slab_alloc(ctx, ex->mem, (size_t)ex->n_trainable * sizeof(float));
    if (!ex->params || !ex->grads) goto nomem;
    cn_rng_seed(&ex->rng, seed);
    for (int t = 0; t < ex->n_tensors; t++) {
        const cn_tensor_rec *r = &ex->tensors[t];
        float *p = ex->params + r->offset;
        for (int64_t j = 0; j < r->spec.count; j++)
            p[j] = r->spec.init == CN_PINIT_WEIGHT  ? (float)draw(&ex->rng, init, &r->spec)
                   : r->spec.init == CN_PINIT_ONE   ? 1.0f
                   : r->spec.init == CN_PINIT_CONST ? (float)r->spec.value
                                                    : 0.0f;
    }
    /* dropout draws from a stream of its own seed, so a change of init leaves the masks alone */
    cn_rng_seed(&ex->rng, seed ^ 0x5eed5eed5eed5eedULL);
    return CN_OK;
nomem:
    cn_exec_free(ctx, ex);
    return CN_E_NOMEM;
}

int cn_net_tensor_count(const cn_net *net) { return net ? net->ex.n_tensors : 0; }

cn_status cn_net_tensor(cn_ctx *ctx, const cn_net *net, int i, cn_tensor *out)
{
    memset(out, 0, sizeof *out);
    if (!net || i < 0 || i >= net->ex.n_tensors)
        return cn_fail(ctx, CN_E_ARG, "tensor %d of %d (call cn_net_init_params first)", i, net ? net->ex.n_tensors : 0);
    const cn_tensor_rec *r = &net->ex.tensors[i];
    *out = (cn_tensor){ .name = r->name, .rank = r->spec.rank, .count = r->spec.count, .trainable = r->spec.trainable,
                        .data = net->ex.params + r->offset, .grad = r->spec.trainable ? net->ex.grads + r->offset : NULL,
                        .frozen = net->nodes[r->node].frozen };
    memcpy(out->shape, r->spec.shape, sizeof out->shape);
    return CN_OK;
}

cn_status cn_net_find_tensor(cn_ctx *ctx, const cn_net *net, const char *name, cn_tensor *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; net && i < net->ex.n_tensors; i++)
        if (strcmp(net->ex.tensors[i].name, name) == 0) return cn_net_tensor(ctx, net, i, out);
    return cn_fail(ctx, CN_E_ARG, "no tensor named '%s'", name);
}

float *cn_net_params(const cn_net *net, int64_t *trainable, int64_t *total)
{
    if (trainable) *trainable = net->ex.n_trainable;
    if (total) *total = net->ex.n_total;
    return net->ex.params;
}

float *cn_net_grads(const cn_net *net, int64_t *count)
{
    if (count) *count = net->ex.n_trainable;
    return net->ex.grads;
}

void cn_net_zero_grad(cn_net *net)
{
    if (!net || !net->ex.grads) return;
    cn_exec *ex = &net->ex;
    for (int s = 0; s < (ex->slice_grads ? ex->n_slices : 1); s++) {
        float *g = s ? ex->slice_grads + (s - 1) * ex->n_trainable : ex->grads;
        size_t bytes = (size_t)ex->n_trainable * sizeof(float);
        /* on a device, the device's own memset: the slab does not travel to the host and back */
        if (ex->mem && ex->mem->zero) ex->mem->zero(g, bytes);
        else memset(g, 0, bytes);
    }
}

cn_rng *cn_net_rng(cn_net *net) { return &net->ex.rng; }

cn_status cn_net_freeze(cn_ctx *ctx, cn_net *net, const char *layer, int frozen)
{
    for (int i = 0; net && layer && i < net->n; i++)
        if (!strcmp(net->nodes[i].name, layer)) {
            if (!net->nodes[i].trainable)
                return cn_fail(ctx, CN_E_ARG, "layer '%s' (%s) has no trainable parameters to freeze", layer,
                               net->nodes[i].op->name);
            net->nodes[i].frozen = frozen != 0;
            return CN_OK;
        }
    return cn_fail(ctx, CN_E_ARG, "no layer named '%s'", layer ? layer : "(null)");
}

int cn_net_frozen(const cn_net *net, int i) { return net && i >= 0 && i < net->n && net->nodes[i].frozen; }

/* ---- planning ------------------------------------------------------------------------------ */

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cn_net_profile(cn_net *net, int on)
{
    cn_exec *ex = &net->ex;
    ex->profile = on && ex->prof_fwd;
    for (int i = 0; ex->prof_fwd && i < net->n; i++) ex->prof_fwd[i] = ex->prof_bwd[i] = 0;
}

void cn_net_profile_get(const cn_net *net, int i, double *forward_s, double *backward_s)
{
    const cn_exec *ex = &net->ex;
    int ok = ex->prof_fwd && i >= 0 && i < net->n;
    *forward_s = ok ? ex->prof_fwd[i] : 0;
    *backward_s = ok ? ex->prof_bwd[i] : 0;
}

const cn_step_kernels *cn_net_step_kernels(const cn_net *net)
{
    static const cn_step_kernels host; /* every column NULL: src/train's code */
    const cn_step_kernels *k = backend_of(&net->ex)->step;
    return k ? k : &host;
}

/* the backend's row for node n: its kernels, workspace and capabilities */
static const cn_kernels *kernels_of(const cn_exec *ex, const cn_node *n)
{
    static const cn_kernels reference_only; /* no kernel: the op's reference runs */
    const cn_backend *b = backend_of(ex);
    return b->supports && !b->supports(n) ? &reference_only : &b->kernels[n->id];
}

const char *cn_net_layer_kernel(const cn_net *net, int i)
{
    if (!net || i < 0 || i >= net->n) return NULL;
    if (i == 0) return "input";
    const cn_exec *ex = &net->ex;
    const cn_node *n = &net->nodes[i];
    const cn_kernels *k = kernels_of(ex, n);
    if (ex->relu_in && ex->relu_in[i] < 0) return "fused: the next layer's pass applies it";
    if (ex->pool_in && ex->pool_in[i] < 0) return "fused: the conv before it computes it, and the relu";
    if (ex->relu_in && ex->relu_in[i] > 0) return "fused: the relu before it in the same pass";
    if (ex->relu_out && ex->relu_out[i] < 0) return "fused: the layer before writes it";
    if (ex->fold_bn && ex->fold_bn[i] < 0) return "folded into the conv before it at inference";
    if (!k->forward) return "reference";
    if (!k->describe) return backend_of(ex)->name;
    const cn_node *in[CN_MAX_INPUTS];
    inputs_of(net, i, in);
    return k->describe(n, in, ex->batch > 0 ? ex->batch : 1);
}

void cn_net_set_backend(cn_net *net, const cn_backend *backend)
{
    cn_exec *ex = &net->ex;
    cn_ctx tmp = { .alloc = net->alloc };
    const cn_memory_ops *to = (backend ? backend : cn_backend_default())->memory;
    ex->backend = backend;
    ex->precision_set = 0; /* the backend's precision as opened (cn_net_set_device sets the net's) */
    free_planned(&tmp, ex); /* workspace sizes differ: plan again, in the new backend's memory */
    free_keep(&tmp, ex);    /* and what held parameters made: the new backend's own */
    if (to == ex->mem) return;
    free_scratch(&tmp, ex);
    /* the parameters move to the new backend's memory; where that fails they stay (every
     * backend's memory is addressable from the host, so the kernels still reach them) */
    size_t pb = (size_t)ex->n_total * sizeof(float), gb = (size_t)ex->n_trainable * sizeof(float);
    float *p = ex->params ? slab_alloc(&tmp, to, pb) : NULL, *g = ex->params ? slab_alloc(&tmp, to, gb) : NULL;
    if (ex->params && (!p || !g)) {
        slab_free(&tmp, to, p), slab_free(&tmp, to, g);
        return;
    }
    if (ex->params) {
        sync_host(ex);
        memcpy(p, ex->params, pb), memcpy(g, ex->grads, gb);
        slab_free(&tmp, ex->mem, ex->params), slab_free(&tmp, ex->mem, ex->grads);
        ex->params = p, ex->grads = g;
    }
    ex->mem = to;
}

cn_status cn_net_set_device(cn_ctx *ctx, cn_net *net, const char *device, cn_precision precision)
{
    const cn_backend *be;
    if (!ctx || !net) return ctx ? cn_fail(ctx, CN_E_ARG, "cn_net_set_device: NULL argument") : CN_E_ARG;
    cn_status st = cn_backend_for_device(ctx, device, (int)precision, &be);
    if (st) return st;
    cn_net_set_backend(net, be);
    net->ex.precision = (int)precision, net->ex.precision_set = 1;
    if (net->ex.params && net->ex.mem != be->memory) /* the move failed: the parameters stayed */
        return backend_status(ctx, &net->ex) ? cn_ctx_status(ctx)
                                             : cn_fail(ctx, CN_E_NOMEM, "no %s memory for the parameters", device);
    return CN_OK;
}

cn_status cn_device_probe(cn_ctx *ctx, const char *device, cn_precision precision)
{
    const cn_backend *be;
    return cn_backend_for_device(ctx, device, (int)precision, &be);
}

/* the batch of the shard plan on this process, 0 without one */
static int64_t sharded_batch(const cn_net *net)
{
    int64_t total = 0;
    for (int s = 0; s < net->shards.mine; s++) total += net->shards.len[s];
    return net->shards.count ? total : 0;
}

/* the first value of node i's buffers and how many (running statistics) */
static int64_t buffers_of(const cn_exec *ex, const cn_net *net, int i, int64_t *count)
{
    *count = (i + 1 < net->n ? ex->buf_off[i + 1] : ex->n_total) - ex->buf_off[i];
    return ex->buf_off[i];
}

/* Slices of the batch: the shards when batch is the shard plan's, else one. Activations are
 * one slab (a slice's rows are consecutive); aux, gradients and workspace go per slice. */
/* how many inputs of nodes name node j (add a a: twice), as planned */
static int readers(const cn_net *net, int j) { return net->ex.n_readers[j]; }

/* Relus fused into a neighbour's pass. ex->relu_in: a relu whose only reader's kernels take
 * relu(x) (forward_relu_in: maxpool), and whose input nothing else reads (so the fused
 * backward is the one writer of that gradient). ex->relu_out, for the relus left: the one
 * reader of a node whose kernels end with a relu (forward_relu_out: conv, dense, batchnorm), or
 * with a relu6 where the row says so (relu6_out: batchnorm on the CPU). */
/* 1 when node p (a maxpool) has 2x2 windows of stride 2 that tile its input exactly */
static int pool_2x2(const cn_net *net, const cn_node *p, int64_t batch)
{
    if (p->id != CN_OP_MAXPOOL) return 0;
    cn_pool_geom g = cn_pool_geom_of(p, &net->nodes[p->in[0]], batch);
    return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.dh == 1 && g.dw == 1 && g.pad_t == 0 && g.pad_l == 0 &&
           2 * g.oh == g.h && 2 * g.ow == g.w;
}

static void plan_fusion(cn_net *net, int64_t batch)
{
    cn_exec *ex = &net->ex;
    memset(ex->relu_in, 0, (size_t)net->n * sizeof(int));
    memset(ex->relu_out, 0, (size_t)net->n * sizeof(int));
    memset(ex->pool_in, 0, (size_t)net->n * sizeof(int));
    for (int i = 1; i < net->n; i++) {
        const cn_node *p = &net->nodes[i];
        const cn_kernels *k = kernels_of(ex, p);
        if (!k->forward_relu_in || !k->backward_relu_in || p->n_in != 1) continue;
        int r = p->in[0];
        const cn_node *relu = &net->nodes[r];
        if (relu->id != CN_OP_RELU || ex->relu_in[r] || readers(net, r) != 1 || readers(net, relu->in[0]) != 1) continue;
        ex->relu_in[i] = r, ex->relu_in[r] = -1;
        /* and the node before the relu computing the maxpool in its own pass, where it can */
        int a = relu->in[0];
        const cn_node *an = &net->nodes[a];
        const cn_kernels *ka = kernels_of(ex, an);
        const cn_node *ain[CN_MAX_INPUTS];
        if (a == 0 || !ka->forward_relu_pool || !ka->relu_pool || !pool_2x2(net, p, batch)) continue;
        inputs_of(net, a, ain);
        if (ka->relu_pool(an, ain, batch)) ex->pool_in[a] = i, ex->pool_in[i] = -1;
    }
    /* batch norms to fold into the convolution before them at inference, where the backend's
     * memory is the host's (the host folds the weights) */
    memset(ex->fold_bn, 0, (size_t)net->n * sizeof(int));
    for (int b = 1; b < net->n && !backend_of(ex)->memory; b++) {
        const cn_node *bn = &net->nodes[b];
        int a = bn->in[0];
        if (!bn->op->channel_affine || bn->n_in != 1 || a == 0 || net->nodes[a].id != CN_OP_CONV ||
            readers(net, a) != 1 || !kernels_of(ex, &net->nodes[a])->fold_bn)
            continue;
        ex->fold_bn[a] = b, ex->fold_bn[b] = -1;
    }
    for (int r = 1; r < net->n; r++) {
        const cn_node *relu = &net->nodes[r];
        int a = relu->in[0];
        const cn_kernels *ka = kernels_of(ex, &net->nodes[a]);
        int relu6_ok = relu->id == CN_OP_RELU6 && ka->relu6_out;
        if ((relu->id != CN_OP_RELU && !relu6_ok) || ex->relu_in[r] || a == 0 || readers(net, a) != 1 || !ka->forward_relu_out ||
            !kernels_of(ex, relu)->backward)
            continue;
        /* a batch norm on shards with whole-batch statistics runs its reference (io.whole)
         * where its row has no stats column: no fused pass then */
        if (net->nodes[a].op->stats && net->shards.count && net->shards.whole_stats && !ka->stats) continue;
        ex->relu_out[a] = r, ex->relu_out[r] = -1;
    }
}

/* the row's cn_kernels.half for node i (0 for a node too wide for cn_op_io.half's bits) */
static int half_kind(const cn_net *net, int i)
{
    const cn_node *nd = &net->nodes[i];
    return nd->n_in <= CN_HALF_INPUTS ? kernels_of(&net->ex, nd)->half : 0;
}

/* Which values may be stored as bf16 NHWC (ex->half): a node's output where the node's row and
 * the rows of all its readers take it (cn_kernels.half), neither the net's input (the host's
 * copy) nor its output (the loss reads floats); and where a row keeps one format (half 1),
 * its inputs and output all in it: a value that cannot be is left a float, and the floats
 * spread through such nodes until none changes (a converting row, half 2, stops them). */
static void plan_half(cn_net *net)
{
    cn_exec *ex = &net->ex;
    const cn_backend *b = backend_of(ex);
    for (int i = 0; i < net->n; i++) ex->half[i] = b->half_storage && i > 0 && i < net->n - 1 && half_kind(net, i);
    for (int i = 1; i < net->n; i++)
        for (int j = 0; !half_kind(net, i) && j < net->nodes[i].n_in; j++) ex->half[net->nodes[i].in[j]] = 0;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 1; i < net->n; i++) {
            const cn_node *nd = &net->nodes[i];
            int all = ex->half[i];
            for (int j = 0; j < nd->n_in; j++) all &= ex->half[nd->in[j]];
            if (half_kind(net, i) != 1 || all) continue;
            changed |= ex->half[i], ex->half[i] = 0;
            for (int j = 0; j < nd->n_in; j++) changed |= ex->half[nd->in[j]], ex->half[nd->in[j]] = 0;
        }
    }
}

/* 1 when node i's output (and its gradient) is stored as bf16 in this pass */
static int half_at(const cn_exec *ex, int i) { return ex->halved && ex->half[i]; }

/* the call's cn_op_io.half bit for a value of node i */
static unsigned half_bit(const cn_exec *ex, int i, unsigned bit) { return half_at(ex, i) ? bit : 0; }

static int sharded(const cn_net *net);

/* 1 when node i's backward takes its fused relu's output gradient (backward_relu_out): neither
 * the relu's backward nor i's output gradient are written. Not for a node whose statistics a
 * sharded pass gathers from its own output gradient. */
static int folds_back(const cn_net *net, int i)
{
    const cn_exec *ex = &net->ex;
    if (!ex->fused || !ex->relu_out || ex->relu_out[i] <= 0) return 0;
    const cn_node *n = &net->nodes[i];
    return kernels_of(ex, n)->backward_relu_out && !(n->op->stats && sharded(net));
}

/* 1 when node i's relu runs in its reader's pass (the last forward fused it) */
static int absorbed(const cn_exec *ex, int i) { return ex->fused && ex->relu_in && ex->relu_in[i] < 0; }

/* the batch norm folded into conv node i at the last forward, or 0 */
static int folds(const cn_exec *ex, int i) { return ex->folded && ex->fold_bn && ex->fold_bn[i] > 0 ? ex->fold_bn[i] : 0; }

/* fw <- conv node c's weights and bias with batch norm b folded in: per output channel
 * w * scale and bias * scale + shift (in double, rounded once) */
static void fold_weights(cn_net *net, int c, int b, float *fw)
{
    cn_exec *ex = &net->ex;
    const cn_node *conv = &net->nodes[c], *bn = &net->nodes[b];
    int64_t cout = conv->out.c, wk = conv->params - (conv->a.bias ? cout : 0), k = wk / cout;
    double *scale = ex->fold_aff, *shift = scale + cout;
    bn->op->channel_affine(bn, ex->params + ex->w_off[b], ex->params + ex->buf_off[b], scale, shift);
    const float *w = ex->params + ex->w_off[c];
    for (int64_t o = 0; o < cout; o++) {
        for (int64_t j = 0; j < k; j++) fw[o * k + j] = (float)(w[o * k + j] * scale[o]);
        fw[wk + o] = (float)((conv->a.bias ? w[wk + o] : 0.0) * scale[o] + shift[o]);
    }
}

/* 1 when relu node i's output is written by the layer before it in this pass: not where that
 * layer is a batch norm folded into the convolution before it (the relu then runs itself) */
static int written_before(const cn_net *net, int i)
{
    const cn_exec *ex = &net->ex;
    return ex->fused && ex->relu_out[i] < 0 && !(ex->folded && ex->fold_bn[net->nodes[i].in[0]] < 0);
}

/* the relu node i's pass writes, or 0 (the last forward fused it) */
static int writes_relu(const cn_exec *ex, int i) { return ex->fused && ex->relu_out && ex->relu_out[i] > 0 ? ex->relu_out[i] : 0; }

/* floats of conv node n's weights and bias with a batch norm folded in (a bias always) */
static int64_t folded_floats(const cn_node *n) { return n->params + (n->a.bias ? 0 : n->out.c); }

/* Held parameters, at the first inference forward: room in ex->keep for each folded
 * convolution's weights and bias and each node's prep (cn_kernels.prep_bytes), 64-byte
 * aligned. Of the image's shapes and the backend only, so it outlives plans for other batches. */
static cn_status plan_keep(cn_ctx *ctx, cn_net *net)
{
    cn_exec *ex = &net->ex;
    int64_t off = 0, add;
    if (!(ex->keep_off = cn_malloc(ctx, (size_t)net->n * 2 * sizeof(int64_t)))) return CN_E_NOMEM;
    for (int i = 0; i < net->n; i++) {
        const cn_node *n = &net->nodes[i];
        const cn_node *in[CN_MAX_INPUTS];
        const cn_kernels *k = kernels_of(ex, n);
        inputs_of(net, i, in);
        int64_t fold = ex->fold_bn[i] > 0 ? folded_floats(n) : 0;
        int64_t prep = i > 0 && k->prep_bytes ? (k->prep_bytes(n, in) + 3) / 4 : 0;
        ex->keep_off[2 * i] = fold ? off : -1;
        if (!cn_add_ok(fold, 15, &add) || !cn_add_ok(off, add / 16 * 16, &off)) goto overflow;
        ex->keep_off[2 * i + 1] = prep ? off : -1;
        if (!cn_add_ok(prep, 15, &add) || !cn_add_ok(off, add / 16 * 16, &off)) goto overflow;
    }
    if (!(ex->keep = slab_alloc(ctx, ex->mem, (size_t)(off ? off : 16) * sizeof(float)))) goto nomem;
    ex->made = 0;
    return CN_OK;
nomem:
    free_keep(ctx, ex);
    return CN_E_NOMEM;
overflow:
    free_keep(ctx, ex);
    return cn_fail(ctx, CN_E_OVERFLOW, "the held parameters' forms overflow 64 bits");
}

static cn_status plan(cn_ctx *ctx, cn_net *net, int64_t batch, int training)
{
    cn_exec *ex = &net->ex;
    int slices = training && batch == sharded_batch(net) ? net->shards.mine : 1;
    if (ex->batch == batch && ex->n_slices == slices) return CN_OK;
    free_planned(ctx, ex);
    int64_t work = 0, nodes = net->n + 1, most_buffers = 0, most_c = 0;
    if (!ex->act_off && !(ex->act_off = cn_calloc(ctx, (size_t)net->n + 1, sizeof(int64_t)))) return CN_E_NOMEM;
    if (!ex->grad_writer && !(ex->grad_writer = cn_calloc(ctx, (size_t)net->n, sizeof(int)))) return CN_E_NOMEM;
    ex->slice_at = cn_calloc(ctx, (size_t)slices + 1, sizeof(int64_t));
    ex->aux_off = cn_calloc(ctx, (size_t)(slices * nodes), sizeof(int64_t));
    ex->slice_rng = cn_calloc(ctx, (size_t)slices, sizeof(cn_rng));
    if (!ex->slice_at || !ex->aux_off || !ex->slice_rng) goto nomem;
    ex->n_slices = slices;
    for (int s = 0; s < slices; s++) ex->slice_at[s + 1] = ex->slice_at[s] + (slices > 1 ? net->shards.len[s] : batch);
    if (!ex->n_readers && !(ex->n_readers = cn_calloc(ctx, (size_t)net->n, sizeof(int)))) goto nomem;
    memset(ex->n_readers, 0, (size_t)net->n * sizeof(int));
    for (int i = 0; i < net->n; i++)
        for (int j = 0; j < net->nodes[i].n_in; j++) {
            ex->grad_writer[net->nodes[i].in[j]] = i; /* topological order */
            ex->n_readers[net->nodes[i].in[j]]++;
        }
    if (!ex->relu_in && !(ex->relu_in = cn_calloc(ctx, (size_t)net->n, sizeof(int)))) goto nomem;
    if (!ex->relu_out && !(ex->relu_out = cn_calloc(ctx, (size_t)net->n, sizeof(int)))) goto nomem;
    if (!ex->pool_in && !(ex->pool_in = cn_calloc(ctx, (size_t)net->n, sizeof(int)))) goto nomem;
    if (!ex->fold_bn && !(ex->fold_bn = cn_calloc(ctx, (size_t)net->n, sizeof(int)))) goto nomem;
    if (!ex->half && !(ex->half = cn_calloc(ctx, (size_t)net->n, sizeof(int)))) goto nomem;
    plan_fusion(net, batch);
    plan_half(net);
    int64_t fold_floats = 0, fold_c = 0;
    for (int i = 1; i < net->n; i++)
        if (ex->fold_bn[i] > 0) {
            const cn_node *n = &net->nodes[i];
            int64_t f = folded_floats(n);
            if (f > fold_floats) fold_floats = f;
            if (n->out.c > fold_c) fold_c = n->out.c;
        }
    if (fold_floats && (!(ex->fold_w = cn_malloc(ctx, (size_t)fold_floats * sizeof(float))) ||
                        !(ex->fold_aff = cn_malloc(ctx, (size_t)(2 * fold_c) * sizeof(double)))))
        goto nomem;
    int64_t off = 0, aoff = 0, v;
    for (int i = 0; i < net->n; i++) {
        const cn_node *n = &net->nodes[i];
        const cn_node *in[CN_MAX_INPUTS];
        inputs_of(net, i, in);
        ex->act_off[i] = off;
        /* each activation 64-byte aligned: a device library's vector loads may want 16 bytes */
        if (!cn_mul_ok(elems(n), batch, &v) || v > INT64_MAX - 15 || !cn_add_ok(off, (v + 15) / 16 * 16, &off))
            goto overflow;
        int64_t nb;
        buffers_of(ex, net, i, &nb);
        if (nb > most_buffers) most_buffers = nb;
        if (n->op->stats && n->out.c > most_c) most_c = n->out.c;
    }
    for (int s = 0; s < slices; s++)
        for (int i = 0; i < net->n; i++) {
            const cn_node *n = &net->nodes[i];
            const cn_node *in[CN_MAX_INPUTS];
            int64_t rows = ex->slice_at[s + 1] - ex->slice_at[s];
            inputs_of(net, i, in);
            ex->aux_off[s * nodes + i] = aoff;
            /* keep aux blocks 8-byte aligned: they hold int32 indices, floats and doubles */
            int64_t ab = n->op->aux_bytes ? n->op->aux_bytes(n, in, rows, sizeof(float)) : 0;
            if (ab < 0 || ab > INT64_MAX - 7 || !cn_add_ok(aoff, (ab + 7) / 8 * 8, &aoff)) goto overflow;
            const cn_kernels *k = kernels_of(ex, n);
            int64_t wb = i > 0 && k->workspace ? k->workspace(n, in, rows) : 0;
            if (wb > work) work = wb;
        }
    ex->act_off[net->n] = off;
    ex->act = slab_alloc(ctx, ex->mem, (size_t)off * sizeof(float));
    ex->dact = slab_alloc(ctx, ex->mem, (size_t)off * sizeof(float));
    ex->aux = slab_alloc(ctx, ex->mem, (size_t)(aoff ? aoff : 8));
    ex->work = slab_alloc(ctx, ex->mem, (size_t)(work ? work : 8));
    if (!ex->act || !ex->dact || !ex->aux || !ex->work) goto nomem;
    if (net->shards.count) {
        int64_t shards = net->shards.count > slices ? net->shards.count : slices;
        ex->buf_save = cn_malloc(ctx, (size_t)(most_buffers ? most_buffers : 1) * sizeof(float));
        ex->stats = cn_malloc(ctx, (size_t)((slices + shards + 1) * 3 * (most_c ? most_c : 1)) * sizeof(double));
        if (!ex->buf_save || !ex->stats) goto nomem;
        if (slices > 1 && !(ex->slice_grads = slab_alloc(ctx, ex->mem, (size_t)((slices - 1) * ex->n_trainable) * sizeof(float))))
            goto nomem;
    }
    ex->batch = batch;
    return CN_OK;
nomem:
    free_planned(ctx, ex);
    return CN_E_NOMEM;
overflow:
    free_planned(ctx, ex);
    return cn_fail(ctx, CN_E_OVERFLOW, "activations at batch %lld overflow 64 bits", (long long)batch);
}

/* 1 when the planned batch is a sharded one: what reduces over it reaches every shard */
static int sharded(const cn_net *net)
{
    return net->shards.count > 0 && net->ex.training && net->ex.batch == sharded_batch(net);
}

cn_status cn_net_set_shards(cn_ctx *ctx, cn_net *net, const cn_shard_plan *plan_in)
{
    cn_exec *ex = &net->ex;
    free_planned(ctx, ex); /* the next forward plans again */
    cn_free(ctx, (void *)net->shards.len);
    memset(&net->shards, 0, sizeof net->shards);
    if (!plan_in) return CN_OK;
    if (plan_in->count < 1 || plan_in->mine < 1 || plan_in->first < 0 || plan_in->first + plan_in->mine > plan_in->count ||
        !plan_in->hooks.gather || !plan_in->hooks.broadcast)
        return cn_fail(ctx, CN_E_ARG, "cn_net_set_shards: a plan of %d shards cannot hold shards %d..%d", plan_in->count,
                       plan_in->first, plan_in->first + plan_in->mine - 1);
    int64_t *len = cn_malloc(ctx, (size_t)plan_in->mine * sizeof(int64_t));
    if (!len) return CN_E_NOMEM;
    for (int s = 0; s < plan_in->mine; s++) {
        if (plan_in->len[s] < 1) {
            cn_free(ctx, len);
            return cn_fail(ctx, CN_E_ARG, "cn_net_set_shards: shard %d is empty", plan_in->first + s);
        }
        len[s] = plan_in->len[s];
    }
    net->shards = *plan_in;
    net->shards.len = len;
    return CN_OK;
}

float *cn_net_shard_grads(const cn_net *net, int s)
{
    const cn_exec *ex = &net->ex;
    if (s < 0 || s >= ex->n_slices || !sharded(net)) return NULL;
    return s ? ex->slice_grads + (s - 1) * ex->n_trainable : ex->grads;
}

int cn_net_shards_here(const cn_net *net) { return net->shards.count ? net->shards.mine : 0; }

void cn_net_shard_rows(const cn_net *net, int s, int64_t *first, int64_t *count)
{
    const cn_exec *ex = &net->ex;
    int ok = s >= 0 && s < ex->n_slices;
    *first = ok ? ex->slice_at[s] : 0;
    *count = ok ? ex->slice_at[s + 1] - ex->slice_at[s] : 0;
}

/* ---- forward and backward ---------------------------------------------------------------------- */

/* min, max and mean of the finite values of x; NaN/inf counted apart */
static void stats(const float *x, int64_t n, char *buf, size_t cap)
{
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    int64_t bad = 0, good = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            bad++;
            continue;
        }
        good++;
        sum += x[i];
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
    }
    if (!good) snprintf(buf, cap, "all %lld values non-finite", (long long)n);
    else snprintf(buf, cap, "min %g, max %g, mean %g%s", mn, mx, sum / (double)good, bad ? " (and non-finite values)" : "");
}

static int64_t first_bad(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

static cn_status nonfinite(cn_ctx *ctx, const cn_net *net, int i, const char *pass, const char *what)
{
    const cn_exec *ex = &net->ex;
    const cn_node *n = &net->nodes[i];
    char s[160];
    /* the layer's input: what it was given when it went wrong */
    int j = n->n_in ? n->in[0] : i;
    const float *src = !strcmp(pass, "forward") ? ex->act + ex->act_off[j] : ex->dact + ex->act_off[i];
    stats(src, elems(&net->nodes[!strcmp(pass, "forward") ? j : i]) * ex->batch, s, sizeof s);
    return cn_fail_at(ctx, CN_E_NUMERIC, net->file, n->line, n->col,
                      "%s '%s' produced a non-finite %s in the %s pass; its %s: %s", n->op->name, n->name, what, pass,
                      !strcmp(pass, "forward") ? "input" : "output gradient", s);
}

/* one kernel call: its cn_op_io and the arrays it points into */
typedef struct node_call {
    const cn_node *in[CN_MAX_INPUTS];
    const void *x[CN_MAX_INPUTS];
    void *dx[CN_MAX_INPUTS];
    cn_op_io io;
} node_call;

/* the call of node i on slice s of the batch (its rows, aux, gradients and draws) */
static cn_op_io *make_io(cn_net *net, int i, int s, int training, node_call *c)
{
    cn_exec *ex = &net->ex;
    const cn_node *n = &net->nodes[i];
    int64_t row = ex->slice_at[s];
    inputs_of(net, i, c->in);
    unsigned half = half_bit(ex, i, CN_HALF_Y);
    for (int j = 0; j < n->n_in; j++) {
        c->x[j] = ex->act + ex->act_off[n->in[j]] + row * elems(c->in[j]);
        c->dx[j] = ex->no_input_grad && n->in[j] == 0 ? NULL : ex->dact + ex->act_off[n->in[j]] + row * elems(c->in[j]);
        if (j < CN_HALF_INPUTS) half |= half_bit(ex, n->in[j], 1u << j);
    }
    float *grads = s ? ex->slice_grads + (s - 1) * ex->n_trainable : ex->grads;
    c->io = (cn_op_io){ .n = n, .in = c->in, .batch = ex->slice_at[s + 1] - row, .x = c->x,
                        .y = ex->act + ex->act_off[i] + row * elems(n), .w = ex->params + ex->w_off[i],
                        .dw = grads + ex->w_off[i], .buf = ex->params + ex->buf_off[i],
                        .aux = ex->aux + ex->aux_off[s * (net->n + 1) + i],
                        .dy = ex->dact + ex->act_off[i] + row * elems(n), .dx = c->dx, .training = training,
                        .rng = sharded(net) ? &ex->slice_rng[s] : &ex->rng, .work = ex->work, .half = half };
    return &c->io;
}

/* the call of a node that absorbs relu r: its input (and that input's gradient) is the relu's */
static void through_relu(cn_net *net, int r, int s, node_call *c)
{
    cn_exec *ex = &net->ex;
    int a = net->nodes[r].in[0];
    int64_t at = ex->act_off[a] + ex->slice_at[s] * elems(&net->nodes[a]);
    c->in[0] = &net->nodes[a];
    c->x[0] = ex->act + at;
    c->dx[0] = ex->no_input_grad && a == 0 ? NULL : ex->dact + at;
    c->io.half = (c->io.half & ~1u) | half_bit(ex, a, 1u);
}

/* Node i's statistics over the whole sharded batch (cn_op.stats): each slice's, every shard's
 * through the gather hook, merged in shard order; NULL when the op needs none or the batch
 * is not sharded. */
static const double *whole_stats(cn_net *net, int i, int backward, cn_status *st)
{
    cn_exec *ex = &net->ex;
    const cn_node *n = &net->nodes[i];
    if (!ex->training || !n->op->stats || !sharded(net) || !net->shards.whole_stats) return NULL;
    int64_t per = n->op->stats_count * n->out.c;
    double *mine = ex->stats, *all = mine + ex->n_slices * per, *merged = all + net->shards.count * per;
    sync_host(ex); /* the host reads the layer's input or gradient */
    const cn_kernels *k = kernels_of(ex, n);
    for (int s = 0; s < ex->n_slices; s++) {
        node_call c;
        (k->stats ? k->stats : n->op->stats)(make_io(net, i, s, ex->training, &c), backward, mine + s * per);
    }
    if ((*st = net->shards.hooks.gather(net->shards.hooks.user, mine, per, all))) return NULL;
    n->op->stats_merge(n, backward, all, net->shards.count, merged);
    return merged;
}

static cn_status forward_layers(cn_ctx *ctx, cn_net *net, int training, int fold);

cn_status cn_net_forward(cn_ctx *ctx, cn_net *net, const float *x, int64_t batch, int training)
{
    cn_status st = cn_net_forward_input(ctx, net, x, batch, training);
    return st ? st : cn_net_forward_layers(ctx, net);
}

/* the net's backend in the net's precision (a device's precision is process-wide: another net
 * may have opened it in another since); plans and workspaces are made in it */
static cn_status in_precision(cn_ctx *ctx, const cn_exec *ex)
{
    const cn_backend *b = backend_of(ex);
    return b->open && ex->precision_set ? b->open(ctx, ex->precision) : CN_OK;
}

cn_status cn_net_forward_input(cn_ctx *ctx, cn_net *net, const float *x, int64_t batch, int training)
{
    if (!ctx || !net || !x || batch < 1) return ctx ? cn_fail(ctx, CN_E_ARG, "cn_net_forward: bad arguments") : CN_E_ARG;
    if (!net->ex.params) return cn_fail(ctx, CN_E_ARG, "cn_net_forward: call cn_net_init_params first");
    cn_status st = in_precision(ctx, &net->ex);
    if (!st) st = plan(ctx, net, batch, training);
    if (st) return st;
    cn_exec *ex = &net->ex;
    ex->training = training;
    const cn_backend *be = backend_of(ex);
    ex->halved = be->half_storage && be->half_storage() && !ex->trace && !sharded(net);
    cn_net_copy(net, ex->act, x, (size_t)(elems(&net->nodes[0]) * batch) * sizeof(float));
    int shard_run = sharded(net);
    if (shard_run) {
        /* each shard's dropout draws from a stream of its own, named by the shard's place in
         * the batch, so that a shard draws the same wherever it runs; the net's stream moves on
         * by one draw per batch */
        uint64_t base = cn_rng_next(&ex->rng);
        for (int s = 0; s < ex->n_slices; s++)
            cn_rng_seed(&ex->slice_rng[s], base ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(net->shards.first + s + 1)));
    }
    /* what the layers' forward would draw, drawn now in their order (cn_kernels.draw) */
    for (int i = 1; training && i < net->n; i++) {
        const cn_kernels *k = kernels_of(ex, &net->nodes[i]);
        for (int s = 0; k->draw && s < ex->n_slices; s++) {
            node_call c;
            k->draw(make_io(net, i, s, training, &c));
        }
    }
    return backend_status(ctx, ex);
}

cn_status cn_net_forward_layers(cn_ctx *ctx, cn_net *net) { return forward_layers(ctx, net, net->ex.training, 1); }

int cn_net_recordable(const cn_net *net)
{
    const cn_exec *ex = &net->ex;
    if (!ex->batch || sharded(net) || ex->trace || ex->profile || !ex->mem) return 0;
    for (int i = 1; i < net->n; i++) {
        const cn_node *nd = &net->nodes[i];
        const cn_kernels *k = kernels_of(ex, nd);
        /* dropout without a draw column draws its masks in the pass; a row without fresh_dx has
         * its gradients zeroed there */
        if (!k->forward || !k->backward || !k->fresh_dx || (nd->id == CN_OP_DROPOUT && !k->draw) ||
            nd->n_in > (int)(sizeof(unsigned) * CHAR_BIT))
            return 0;
    }
    return 1;
}

/* the layers of a forward pass after the input; fold: batch norms may fold into convolutions
 * (at inference) */
static cn_status forward_layers(cn_ctx *ctx, cn_net *net, int training, int fold)
{
    cn_exec *ex = &net->ex;
    int64_t batch = ex->batch;
    int shard_run = sharded(net);
    cn_status st;
    ex->fused = !ex->trace; /* the tracer checks every layer's output */
    ex->folded = fold && ex->fused && !training;
    if (training) ex->made = 0; /* batch norms' running statistics move */
    if (ex->held && ex->folded && !ex->keep && (st = plan_keep(ctx, net))) return st;
    for (int i = 1; i < net->n; i++) {
        const cn_node *nd = &net->nodes[i];
        /* a relu that its reader applies (its output is written when asked for), or that the
         * layer before it has written; a batch norm folded into the convolution before it */
        if (absorbed(ex, i) || written_before(net, i) || (ex->fused && ex->pool_in[i] < 0) ||
            (ex->folded && ex->fold_bn[i] < 0))
            continue;
        int r = ex->fused ? ex->relu_in[i] : 0, out = writes_relu(ex, i), bn = folds(ex, i);
        int pool = ex->fused ? ex->pool_in[i] : 0; /* this node writes that maxpool's output and argmax too */
        cn_node with_bias;
        /* held parameters: the folded weights and the kernels' prep, kept from an earlier pass
         * of the same kind (an inference pass that folds) */
        int kept = ex->keep && !training && ex->folded;
        float *fw = kept && bn ? ex->keep + ex->keep_off[2 * i] : ex->fold_w;
        if (bn) { /* the convolution with the batch norm's scale and shift, and so a bias */
            if (!(kept && ex->made)) fold_weights(net, i, bn, fw);
            with_bias = *nd, with_bias.a.bias = 1;
        }
        cn_status gst = CN_OK;
        const double *whole = whole_stats(net, i, 0, &gst);
        if (gst) return gst;
        const cn_kernels *k = kernels_of(ex, nd);
        cn_kernel_fn fast = r      ? k->forward_relu_in
                            : pool ? k->forward_relu_pool
                            : out  ? k->forward_relu_out
                            : whole && !k->stats ? NULL
                                                 : k->forward; /* the reference reads io.whole */
        /* an op without a row in a device backend runs its reference kernel on the host, which
         * reads what the device's queued kernels write: they must be done first */
        if (!fast) sync_host(ex);
        int64_t nbuf, buf = buffers_of(ex, net, i, &nbuf);
        /* running statistics move once per batch: by the first shard here (each process's the
         * same with whole-batch statistics), by shard 0's alone with per-shard ones */
        int keeper = shard_run && nbuf > 0 ? (net->shards.whole_stats || net->shards.first == 0 ? 0 : -1) : 0;
        double t0 = ex->profile ? seconds() : 0;
        for (int s = 0; s < ex->n_slices; s++) {
            node_call c;
            cn_op_io *io = make_io(net, i, s, training, &c);
            if (r) through_relu(net, r, s, &c);
            if (out) {
                io->y = ex->act + ex->act_off[out] + ex->slice_at[s] * elems(&net->nodes[out]);
                io->relu6 = net->nodes[out].id == CN_OP_RELU6;
            }
            if (pool) {
                io->pool_y = ex->act + ex->act_off[pool] + ex->slice_at[s] * elems(&net->nodes[pool]);
                io->pool_aux = ex->aux + ex->aux_off[s * (net->n + 1) + pool];
                io->half |= half_bit(ex, pool, CN_HALF_POOL);
            }
            if (bn) io->n = &with_bias, io->w = fw, io->y = ex->act + ex->act_off[bn] + ex->slice_at[s] * elems(&net->nodes[bn]);
            if (kept && fast && ex->keep_off[2 * i + 1] >= 0)
                io->prep = ex->keep + ex->keep_off[2 * i + 1], io->prep_made = ex->made;
            if (out || bn) io->half = (io->half & ~CN_HALF_Y) | half_bit(ex, out ? out : bn, CN_HALF_Y);
            io->whole = whole;
            int keep = shard_run && nbuf > 0 && s != keeper;
            if (keep) sync_host(ex), memcpy(ex->buf_save, ex->params + buf, (size_t)nbuf * sizeof(float));
            (fast ? fast : nd->op->forward[CN_F32])(io);
            if (keep) sync_host(ex), memcpy(ex->params + buf, ex->buf_save, (size_t)nbuf * sizeof(float));
        }
        if (ex->profile || ex->trace) sync_host(ex); /* a kernel's own time; the host reads its output */
        if (ex->profile) ex->prof_fwd[i] += seconds() - t0;
        if (ex->trace && first_bad(ex->act + ex->act_off[i], elems(nd) * batch) >= 0)
            return nonfinite(ctx, net, i, "forward", "output");
    }
    if (shard_run && !net->shards.whole_stats && ex->n_total > ex->n_trainable) {
        /* per-shard statistics: shard 0's running statistics, wherever it ran, everywhere */
        sync_host(ex);
        st = net->shards.hooks.broadcast(net->shards.hooks.user, ex->params + ex->n_trainable, ex->n_total - ex->n_trainable);
        if (st) return st;
    }
    st = backend_status(ctx, ex);
    if (!st && ex->keep && !training && ex->folded) ex->made = 1; /* every keep of the net made, by this pass or before */
    return st;
}

const float *cn_net_output(const cn_net *net, int64_t *count)
{
    const cn_exec *ex = &net->ex;
    if (count) *count = ex->batch * elems(&net->nodes[net->n - 1]);
    return ex->act ? ex->act + ex->act_off[net->n - 1] : NULL;
}

/* x[0..n) = 0 on the kernels' threads (a step zeroes megabytes of gradients) */
static void zero(float *x, int64_t n)
{
    enum { CHUNK = 1 << 16 };
    CN_PAR_FOR(n > CHUNK, schedule(static),
        for (int64_t i = 0; i < n; i += CHUNK) memset(x + i, 0, (size_t)(n - i < CHUNK ? n - i : CHUNK) * sizeof(float)););
}

/* A relu fused into its reader never writes its output or gradient: asked for, they are
 * computed from what the fused pass kept (its input, the reader's gradient and argmax), with
 * the layers' own kernels. The net is the caller's, not const: only these slabs change. */
static void unfuse_output(cn_net *net, int i)
{
    cn_exec *ex = &net->ex;
    const cn_node *nd = &net->nodes[i];
    const cn_kernels *k = kernels_of(ex, nd);
    /* a batch norm's forward in training moves its running statistics: they move once a pass,
     * so they are put back after this second call */
    int64_t nbuf, buf = buffers_of(ex, net, i, &nbuf);
    cn_ctx tmp = { .alloc = net->alloc };
    float *keep = nbuf > 0 && ex->training ? cn_malloc(&tmp, (size_t)nbuf * sizeof(float)) : NULL;
    if (nbuf > 0 && ex->training && !keep) return; /* no memory: the slab keeps what it holds */
    sync_host(ex);
    if (keep) memcpy(keep, ex->params + buf, (size_t)nbuf * sizeof(float));
    for (int s = 0; s < ex->n_slices; s++) {
        node_call c;
        (k->forward ? k->forward : nd->op->forward[CN_F32])(make_io(net, i, s, ex->training, &c));
    }
    sync_host(ex); /* the host reads it next */
    if (keep) memcpy(ex->params + buf, keep, (size_t)nbuf * sizeof(float)), cn_free(&tmp, keep);
}

static void unfuse_grad(cn_net *net, int i)
{
    cn_exec *ex = &net->ex;
    int p = ex->grad_writer[i]; /* the one reader */
    const cn_node *nd = &net->nodes[p];
    const cn_kernels *k = kernels_of(ex, nd);
    sync_host(ex); /* the host zeroes it */
    for (int s = 0; s < ex->n_slices; s++) {
        node_call c;
        cn_op_io *io = make_io(net, p, s, ex->training, &c);
        if (ex->fused && ex->relu_out[p] < 0) /* a fused relu: its input never written */
            c.x[0] = io->y, io->half = (io->half & ~1u) | half_bit(ex, p, 1u);
        /* stored as the pass stores it (0 + -0 would be +0, a stored -0 stays -0) */
        if (k->backward && k->fresh_dx) io->dx_fresh = 1;
        else zero(c.dx[0], elems(c.in[0]) * io->batch);
        (k->backward ? k->backward : nd->op->backward[CN_F32])(io);
    }
    sync_host(ex); /* the host reads it next */
}

/* node i's value in slab (act or dact) as floats: itself, or where it is stored as bf16 NHWC its
 * copy in *view, NCHW (allocated at the slab's size on first use; NULL when it cannot be) */
static const float *as_floats(cn_net *net, int i, const float *slab, float **view)
{
    cn_exec *ex = &net->ex;
    const float *at = slab + ex->act_off[i];
    if (!half_at(ex, i)) return at;
    cn_ctx tmp = { .alloc = net->alloc };
    if (!*view && !(*view = cn_malloc(&tmp, (size_t)ex->act_off[net->n] * sizeof(float)))) return NULL;
    sync_host(ex);
    const uint16_t *h = (const uint16_t *)at;
    float *out = *view + ex->act_off[i];
    const cn_dims *d = &net->nodes[i].out;
    int64_t c = d->c, hw = d->h * d->w;
    for (int64_t s = 0; s < ex->batch; s++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t p = 0; p < hw; p++) { /* NHWC to NCHW */
                uint32_t u = (uint32_t)h[(s * hw + p) * c + ch] << 16;
                memcpy(&out[(s * c + ch) * hw + p], &u, sizeof u);
            }
    return out;
}

const float *cn_net_layer_output(const cn_net *net, int i, int64_t *count)
{
    if (count) *count = 0;
    if (!net || i < 0 || i >= net->n || !net->ex.act) return NULL;
    if (count) *count = net->ex.batch * elems(&net->nodes[i]);
    if (absorbed(&net->ex, i) || writes_relu(&net->ex, i) || folds(&net->ex, i)) unfuse_output((cn_net *)net, i);
    const float *v = as_floats((cn_net *)net, i, net->ex.act, &((cn_net *)net)->ex.view);
    if (!v && count) *count = 0; /* no memory for the floats */
    return v;
}

const float *cn_net_layer_grad(const cn_net *net, int i, int64_t *count)
{
    if (count) *count = 0;
    if (!net || i < 0 || i >= net->n || !net->ex.dact) return NULL;
    if (count) *count = net->ex.batch * elems(&net->nodes[i]);
    if (absorbed(&net->ex, i) || folds_back(net, i)) unfuse_grad((cn_net *)net, i);
    const float *v = as_floats((cn_net *)net, i, net->ex.dact, &((cn_net *)net)->ex.dview);
    if (!v && count) *count = 0; /* no memory for the floats */
    return v;
}

cn_status cn_net_backward(cn_ctx *ctx, cn_net *net, const float *dy)
{
    cn_exec *ex = &net->ex;
    if (!ctx || !net || !dy || !ex->batch) return ctx ? cn_fail(ctx, CN_E_ARG, "cn_net_backward: run forward first") : CN_E_ARG;
    cn_status pst = in_precision(ctx, ex);
    if (pst) return pst;
    int last = net->n - 1;
    if (ex->folded) { /* backward takes the layers' own outputs and aux: the pass again, unfolded */
        cn_status st = forward_layers(ctx, net, ex->training, 0);
        if (st) return st;
    }
    cn_net_copy(net, ex->dact + ex->act_off[last], dy, (size_t)(elems(&net->nodes[last]) * ex->batch) * sizeof(float));
    for (int i = last; i >= 1; i--) {
        const cn_node *nd = &net->nodes[i];
        if (absorbed(ex, i)) continue; /* its reader's backward went through it */
        if (ex->fused && ex->relu_out[i] < 0 && folds_back(net, nd->in[0])) continue; /* the layer before's does */
        int r = ex->fused ? ex->relu_in[i] : 0, back = folds_back(net, i) ? ex->relu_out[i] : 0;
        cn_status gst = CN_OK;
        const double *whole = whole_stats(net, i, 1, &gst);
        if (gst) return gst;
        /* kernels add to their inputs' gradients: the first to add (the last reader) stores
         * instead where its kernel can, else the gradient is zeroed here first */
        const cn_kernels *k = kernels_of(ex, nd);
        if (r) { /* the relu's input gradient, stored by the fused kernel: it is the one writer */
            double t0 = ex->profile ? seconds() : 0;
            for (int s = 0; s < ex->n_slices; s++) {
                node_call c;
                cn_op_io *io = make_io(net, i, s, ex->training, &c);
                through_relu(net, r, s, &c);
                k->backward_relu_in(io);
            }
            if (ex->profile) sync_host(ex), ex->prof_bwd[i] += seconds() - t0;
            continue;
        }
        cn_kernel_fn fast = back ? k->backward_relu_out : whole && !k->stats ? NULL : k->backward; /* the reference reads io.whole */
        /* dx_fresh has a bit per input: a wider layer (an add of 33 or more) zeroes instead, and
         * leaves every bit clear (1u << 32 would wrap onto input 0 on x86); only the backend's own
         * kernel may honour it */
        int fresh_ok = fast && k->fresh_dx && nd->n_in <= (int)(sizeof(unsigned) * CHAR_BIT);
        if (!fast || !fresh_ok) sync_host(ex); /* the host zeroes or runs the reference kernel */
        double t0 = ex->profile ? seconds() : 0;
        for (int s = 0; s < ex->n_slices; s++) {
            node_call c;
            cn_op_io *io = make_io(net, i, s, ex->training, &c);
            io->whole = whole;
            if (ex->fused && ex->relu_out[i] < 0) /* its input was never written */
                c.x[0] = io->y, io->half = (io->half & ~1u) | half_bit(ex, i, 1u);
            if (back) { /* the relu's output and its gradient, in place of this node's */
                int64_t at = ex->act_off[back] + ex->slice_at[s] * elems(&net->nodes[back]);
                io->y = ex->act + at, io->dy = ex->dact + at, io->relu6 = net->nodes[back].id == CN_OP_RELU6;
                io->half = (io->half & ~CN_HALF_Y) | half_bit(ex, back, CN_HALF_Y);
            }
            for (int j = 0; j < nd->n_in; j++) {
                if (!c.dx[j] || ex->grad_writer[nd->in[j]] != i) continue;
                int again = 0; /* the same tensor twice (add a a): the second use adds */
                for (int m = 0; m < j; m++) again |= nd->in[m] == nd->in[j];
                if (again) continue;
                if (fresh_ok) io->dx_fresh |= 1u << j;
                else zero(c.dx[j], elems(c.in[j]) * io->batch);
            }
            (fast ? fast : nd->op->backward[CN_F32])(io);
        }
        if (ex->profile || ex->trace) sync_host(ex);
        if (ex->profile) ex->prof_bwd[i] += seconds() - t0;
        int64_t wn = (i + 1 < net->n ? ex->w_off[i + 1] : ex->n_trainable) - ex->w_off[i];
        if (wn > 0 && sharded(net) && net->shards.hooks.grads_ready) {
            sync_host(ex);
            net->shards.hooks.grads_ready(net->shards.hooks.user, ex->w_off[i], ex->w_off[i] + wn);
        }
        if (!ex->trace) continue;
        for (int j = 0; j < nd->n_in; j++) {
            const cn_node *src = &net->nodes[nd->in[j]];
            if (!(ex->no_input_grad && nd->in[j] == 0) && first_bad(ex->dact + ex->act_off[nd->in[j]], elems(src) * ex->batch) >= 0)
                return nonfinite(ctx, net, i, "backward", "input gradient");
        }
        if (first_bad(ex->grads + ex->w_off[i], wn) >= 0) return nonfinite(ctx, net, i, "backward", "parameter gradient");
    }
    return backend_status(ctx, ex);
}

const float *cn_net_input_grad(const cn_net *net) { return net->ex.dact; }

cn_status cn_net_hold_params(cn_ctx *ctx, cn_net *net, int hold)
{
    if (!net) return ctx ? cn_fail(ctx, CN_E_ARG, "cn_net_hold_params: NULL net") : CN_E_ARG;
    cn_exec *ex = &net->ex;
    cn_ctx tmp = { .alloc = net->alloc };
    if (!hold) free_keep(&tmp, ex);
    ex->held = !!hold, ex->made = 0; /* made at the next inference forward */
    return CN_OK;
}

int cn_net_params_held(const cn_net *net) { return net && net->ex.held; }

void cn_net_params_changed(cn_net *net) { net->ex.made = 0; }

void cn_net_set_input_grad(cn_net *net, int on)
{
    if (net->ex.no_input_grad != !on) drop_recording(&net->ex); /* it recorded the other backward */
    net->ex.no_input_grad = !on;
}

cn_status cn_net_trace_nonfinite(cn_ctx *ctx, cn_net *net, const float *x, int64_t batch, const float *dy,
                                 int training, const cn_rng *rng_before)
{
    cn_exec *ex = &net->ex;
    int64_t n = batch;
    if (!ex->params || batch < 1 || !x) return cn_fail(ctx, CN_E_ARG, "cn_net_trace_nonfinite: bad arguments");
    /* the parameters themselves may be where it started (a step that overflowed) */
    for (int t = 0; t < ex->n_tensors; t++) {
        const cn_tensor_rec *r = &ex->tensors[t];
        if (first_bad(ex->params + r->offset, r->spec.count) >= 0) {
            const cn_node *nd = &net->nodes[r->node];
            return cn_fail_at(ctx, CN_E_NUMERIC, net->file, nd->line, nd->col,
                              "%s '%s': parameter %s holds a non-finite value (an update overflowed)", nd->op->name,
                              nd->name, r->name);
        }
    }
    cn_rng saved = ex->rng;
    if (rng_before) ex->rng = *rng_before;
    ex->trace = 1;
    cn_status st = cn_net_forward(ctx, net, x, n, training);
    if (!st && dy) {
        float *save = cn_malloc(ctx, (size_t)ex->n_trainable * sizeof(float) + 1);
        if (!save) st = CN_E_NOMEM;
        else {
            memcpy(save, ex->grads, (size_t)ex->n_trainable * sizeof(float));
            cn_net_zero_grad(net);
            st = cn_net_backward(ctx, net, dy);
            memcpy(ex->grads, save, (size_t)ex->n_trainable * sizeof(float));
            cn_free(ctx, save);
        }
    }
    ex->trace = 0;
    ex->rng = saved;
    return st;
}
