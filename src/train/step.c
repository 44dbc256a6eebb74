/* step.c — one training step: forward, loss against one-hot labels, backward, update; the NaN
 * tracer when anything turns non-finite; the same step on a batch cut into shards, its gradients
 * summed by parallel.c. Covered by tests/test_train.c and tests/test_parallel.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "step_row.h"
#include "train_impl.h"

/* the net's output layer, through the public net API */
static cn_layer_info output_layer(const cn_net *net)
{
    cn_layer_info out;
    cn_ctx quiet; /* the last layer is always there: nothing to report */
    memset(&quiet, 0, sizeof quiet);
    cn_net_layer(&quiet, net, cn_net_layer_count(net) - 1, 1, &out);
    return out;
}

cn_loss_kind cn_net_default_loss(const cn_net *net)
{
    return !strcmp(output_layer(net).type, "softmax") ? CN_LOSS_CE : CN_LOSS_CE_LOGITS;
}

cn_status cn_net_check_classes(cn_ctx *ctx, const cn_net *net, int64_t classes)
{
    cn_layer_info o = output_layer(net);
    if (o.h * o.w != 1) { /* else each of a map's values would be a class of its own (14x14x10: 1,960) */
        char fix[48] = "globalavgpool", data[64] = "";
        if (classes > 0 && o.c != classes) snprintf(fix, sizeof fix, "dense %lld", (long long)classes);
        if (classes > 0) snprintf(data, sizeof data, " (the data has %lld classes)", (long long)classes);
        return cn_fail_at(ctx, CN_E_SHAPE, cn_net_file_name(net), o.line, o.col,
                          "the net's output, %s, is a map (%lldx%lldx%lld), not one score per class: end the net "
                          "with '%s'%s",
                          o.name, (long long)o.h, (long long)o.w, (long long)o.c, fix, data);
    }
    if (o.c < classes)
        return cn_fail_at(ctx, CN_E_SHAPE, cn_net_file_name(net), o.line, o.col,
                          "the net's output, %s, has %lld score%s, fewer than the data's %lld classes (labels 0 to %lld)",
                          o.name, (long long)o.c, o.c == 1 ? "" : "s", (long long)classes, (long long)classes - 1);
    return CN_OK;
}

/* The step's scratch, in the backend's memory: *target (rows x classes) the labels one-hot, then
 * *dout of the same size, in slot 0 or 1 (two steps in flight); fails on a label outside the
 * classes. On a device the one-hot rows are made on the host and copied over (the scratch never
 * travels to the host). */
static cn_status one_hot_in(cn_ctx *ctx, cn_net *net, const int32_t *labels, int64_t rows, int64_t classes, int slot,
                            float **target, float **dout)
{
    int64_t cells;
    if (!cn_mul_ok(classes, rows, &cells) || cells > INT64_MAX / 4) return cn_fail(ctx, CN_E_OVERFLOW, "batch too large");
    float *scratch = cn_net_step_scratch(ctx, net, 2 * cells);
    if (!scratch) return CN_E_NOMEM;
    *target = scratch + 2 * slot * cells, *dout = *target + cells;
    scratch = *target;
    const cn_memory_ops *mem = cn_net_slab_memory(net);
    float *hot = mem && mem->copy ? cn_malloc(ctx, (size_t)cells * sizeof(float)) : scratch;
    if (!hot) return CN_E_NOMEM;
    memset(hot, 0, (size_t)cells * sizeof(float));
    cn_status st = CN_OK;
    for (int64_t i = 0; i < rows && !st; i++) {
        if (labels[i] < 0 || labels[i] >= classes)
            st = cn_fail(ctx, CN_E_ARG, "label %d of sample %lld is outside the %lld classes of the output",
                         (int)labels[i], (long long)i + 1, (long long)classes);
        else hot[i * classes + labels[i]] = 1.0f;
    }
    if (hot != scratch) {
        if (!st) mem->copy(scratch, hot, (size_t)cells * sizeof(float));
        cn_free(ctx, hot);
    }
    return st;
}

static cn_status one_hot(cn_ctx *ctx, cn_net *net, const int32_t *labels, int64_t rows, int64_t classes, float **target,
                         float **dout)
{
    return one_hot_in(ctx, net, labels, rows, classes, 0, target, dout);
}

/* the loss of the output y and its gradient dout by the host's code, after checking that y, the
 * loss and dout are finite (the NaN tracer, or a message naming the cause) */
static cn_status host_loss(cn_ctx *ctx, cn_net *net, const cn_step_config *cfg, const float *x, const float *target,
                           const float *y, int64_t batch, int64_t classes, const cn_rng *rng_before, double *loss,
                           float *dout)
{
    cn_layer_info out = output_layer(net);
    int64_t cells = classes * batch;
    for (int64_t i = 0; i < cells; i++)
        if (!isfinite(y[i])) return cn_net_trace_nonfinite(ctx, net, x, batch, NULL, 1, rng_before);
    cn_status st = cn_loss_grad(ctx, cfg->loss, target, y, batch, classes, CN_REDUCE_MEAN, cfg->label_smoothing, loss, dout);
    if (st) return st;
    if (!isfinite(*loss))
        return cn_fail_at(ctx, CN_E_NUMERIC, cn_net_file_name(net), out.line, out.col,
                          "the %s loss is %g on finite outputs of '%s' (probabilities of exactly 0 or 1?)",
                          cn_loss_name(cfg->loss), *loss, out.name);
    for (int64_t i = 0; i < cells; i++)
        if (!isfinite(dout[i]))
            return cn_fail_at(ctx, CN_E_NUMERIC, cn_net_file_name(net), out.line, out.col,
                              "the gradient of the %s loss overflows on the outputs of '%s' (value %g: a probability "
                              "near 0; cross-entropy from logits, without the softmax layer, avoids it)",
                              cn_loss_name(cfg->loss), out.name, (double)y[i]);
    return CN_OK;
}

/* the optimizer's update (sum_sq: the gradient's sum of squares where known, else NaN; wait 0:
 * a device's update left queued); a gradient norm that is not finite replays the step through
 * the NaN tracer, which names the layer */
static cn_status update(cn_ctx *ctx, cn_net *net, cn_optim *opt, const float *x, int64_t batch, const float *dout,
                        const cn_rng *rng_before, double sum_sq, int wait)
{
    double norm;
    cn_status st = cn_optim_step_sq(ctx, opt, net, sum_sq, wait, &norm);
    if (st != CN_E_NUMERIC) return st;
    cn_status traced = cn_net_trace_nonfinite(ctx, net, x, batch, dout, 1, rng_before);
    return traced ? traced : st;
}

/* FNV-1a over a value's bytes, for the recording's key */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ULL;
    return h;
}

/* The layers, the loss and its gradient, the backward pass and the gradient's sum of squares,
 * queued without a wait; a backend that records (cn_replay_ops) records them at the second step
 * of a batch size (the first runs them as they come, which also makes its libraries' one-time
 * allocations) and replays the recording from then on, where the layers allow it. */
static cn_status queue_pass(cn_ctx *ctx, cn_net *net, const cn_step_config *cfg, const float *target, float *dout,
                            int64_t batch, int64_t classes, int slot)
{
    const cn_step_kernels *k = cn_net_step_kernels(net);
    const cn_replay_ops *rp = k->replay && cn_net_recordable(net) ? k->replay : NULL;
    uint64_t key = 0xcbf29ce484222325ULL;
    key = mix(key, &batch, sizeof batch), key = mix(key, &classes, sizeof classes);
    key = mix(key, &cfg->loss, sizeof cfg->loss), key = mix(key, &cfg->label_smoothing, sizeof cfg->label_smoothing);
    key = mix(key, &target, sizeof target), key = mix(key, &dout, sizeof dout);
    key = mix(key, &slot, sizeof slot); /* where its sums go */
    int seen;
    void *rec = rp ? cn_net_recording(net, key, &seen) : NULL;
    if (rec) return rp->replay(rec) ? cn_net_check_backend(ctx, net) : CN_OK;
    int recording = rp && seen == 1 && rp->begin() == 0;
    int64_t n;
    float *g = cn_net_grads(net, NULL);
    cn_net_params(net, &n, NULL);
    cn_status st = cn_net_forward_layers(ctx, net);
    if (!st) {
        k->queue_loss(cfg->loss, target, cn_net_output(net, NULL), batch, classes, cfg->label_smoothing, dout);
        k->queue_count(cn_net_output(net, NULL), target, batch, classes);
        cn_net_zero_grad(net);
        st = cn_net_backward(ctx, net, dout);
    }
    if (!st) k->queue_sum_squares(g, n);
    if (recording) {
        /* nothing ran: the recording runs now; or, where it failed (a call the capture refused:
         * its error is the capture's, not the pass's), the pass again as it comes, for good */
        rec = rp->end();
        if (rec && st) rp->release(rec), rec = NULL;
        cn_net_keep_recording(net, rec, key, 2);
        if (rec) return rp->replay(rec) ? cn_net_check_backend(ctx, net) : CN_OK;
        cn_ctx_clear(ctx);
        return queue_pass(ctx, net, cfg, target, dout, batch, classes, slot);
    }
    if (rp) cn_net_keep_recording(net, NULL, key, seen + 1 < 2 ? seen + 1 : 2);
    return st;
}

/* cn_train_step on a backend that queues the step (cn_step_kernels.queue_loss): the input
 * copied, queue_pass, then one wait for the loss and the sum of squares; a loss that is not
 * finite goes to the host's checks (which either stop the step, or find it finite and run the
 * backward pass again from the host's gradient), then the update. */
static cn_status queued_step(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, const float *x,
                             const float *target, float *dout, int64_t batch, int64_t classes, double *loss,
                             int64_t *correct, int slot)
{
    const cn_step_kernels *k = cn_net_step_kernels(net);
    cn_rng rng_before = *cn_net_rng(net);
    double sum_sq = NAN;
    if (k->select_slot) k->select_slot(slot);
    cn_status st = cn_net_forward_input(ctx, net, x, batch, 1);
    if (st) return st;
    cn_net_set_queued(net, 1);
    st = queue_pass(ctx, net, cfg, target, dout, batch, classes, slot);
    cn_net_set_queued(net, 0);
    int64_t right = -1;
    if (!st && k->read_queued(loss, &sum_sq, &right)) st = cn_net_check_backend(ctx, net);
    if (correct) *correct = right;
    if (st) return st;
    *loss /= cn_loss_per_sample(cfg->loss) ? (double)batch : (double)batch * (double)classes; /* the mean */
    if (!isfinite(*loss)) {
        st = host_loss(ctx, net, cfg, x, target, cn_net_output(net, NULL), batch, classes, &rng_before, loss, dout);
        if (st) return st;
        cn_net_zero_grad(net);
        if ((st = cn_net_backward(ctx, net, dout))) return st;
        sum_sq = NAN;
    }
    return update(ctx, net, opt, x, batch, dout, &rng_before, sum_sq, correct == NULL);
}

cn_status cn_train_step(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, const float *x,
                        const int32_t *labels, int64_t batch, double *loss)
{
    return cn_train_step_counted(ctx, net, opt, cfg, x, labels, batch, loss, NULL);
}

cn_status cn_train_step_counted(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, const float *x,
                                const int32_t *labels, int64_t batch, double *loss, int64_t *correct)
{
    if (correct) *correct = -1;
    *loss = NAN;
    cn_layer_info out = output_layer(net);
    int64_t classes = out.c * out.h * out.w;
    float *target, *dout;
    cn_status st = one_hot(ctx, net, labels, batch, classes, &target, &dout);
    if (st) return st;
    const cn_step_kernels *k = cn_net_step_kernels(net);
    if (k->queue_loss && k->queue_count && k->queue_sum_squares && k->read_queued) {
        /* its sums apart from the slots of steps in flight */
        return queued_step(ctx, net, opt, cfg, x, target, dout, batch, classes, loss, correct, -1);
    }
    cn_rng rng_before = *cn_net_rng(net);
    st = cn_net_forward(ctx, net, x, batch, 1);
    if (st) return st;
    const float *y = cn_net_output(net, NULL);
    /* the backend's loss where it has one (its outputs stay where they are); when that is not
     * finite (a non-finite output, a value outside the loss's domain), the host's checks say why */
    *loss = NAN;
    if (k->loss_grad && (st = k->loss_grad(ctx, cfg->loss, target, y, batch, classes, CN_REDUCE_MEAN,
                                           cfg->label_smoothing, loss, dout)))
        return st;
    if (!isfinite(*loss) && (st = host_loss(ctx, net, cfg, x, target, y, batch, classes, &rng_before, loss, dout)))
        return st;
    cn_net_zero_grad(net);
    if ((st = cn_net_backward(ctx, net, dout))) return st;
    return update(ctx, net, opt, x, batch, dout, &rng_before, NAN, 1);
}

int64_t cn_count_correct(const float *y, const int32_t *labels, int64_t rows, int64_t cols)
{
    int64_t correct = 0;
    for (int64_t i = 0; i < rows; i++) correct += cn_row_best(y + i * cols, cols) == labels[i];
    return correct;
}

cn_status cn_train_step_sharded(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, cn_parallel *p,
                                const float *x, const int32_t *labels, int64_t rows, int64_t batch, double *loss,
                                int64_t *correct)
{
    *loss = NAN, *correct = 0;
    cn_layer_info out = output_layer(net);
    int64_t classes = out.c * out.h * out.w, first, n;
    int shards = cn_parallel_shards(p, batch), mine = cn_net_shards_here(net);
    float *target, *dout;
    cn_status st = one_hot(ctx, net, labels, rows, classes, &target, &dout);
    if (st) return st;
    double *part = cn_malloc(ctx, (size_t)(3 * (mine + shards)) * sizeof(double)), *all = part + 3 * mine;
    if (!part) return CN_E_NOMEM;
    st = cn_net_forward(ctx, net, x, rows, 1);
    /* each shard's loss over the whole batch's count (its part of the mean) and its correct
     * predictions; a shard that went non-finite is told to all, so that all stop together */
    const float *y = st ? NULL : cn_net_output(net, NULL);
    for (int s = 0; s < mine && !st; s++) {
        cn_net_shard_rows(net, s, &first, &n);
        double l = 0;
        st = cn_loss_grad_part(ctx, cfg->loss, target + first * classes, y + first * classes, n, classes, batch,
                               cfg->label_smoothing, &l, dout + first * classes);
        int bad = !isfinite(l);
        for (int64_t i = first * classes; i < (first + n) * classes && !bad; i++) bad = !isfinite(y[i]) || !isfinite(dout[i]);
        const cn_step_kernels *k = cn_net_step_kernels(net);
        part[3 * s] = l;
        part[3 * s + 1] = (double)(k->count_correct ? k->count_correct : cn_count_correct)(y + first * classes, labels + first,
                                                                                         n, classes);
        part[3 * s + 2] = bad;
    }
    if (!st) st = cn_parallel_gather_items(ctx, p, shards, part, 3, all);
    if (!st) {
        double sum = 0;
        int64_t right = 0;
        int bad_shard = -1;
        for (int s = 0; s < shards; s++) {
            sum += all[3 * s], right += (int64_t)all[3 * s + 1];
            if (all[3 * s + 2] != 0 && bad_shard < 0) bad_shard = s;
        }
        *loss = sum, *correct = right;
        if (bad_shard >= 0)
            st = cn_fail_at(ctx, CN_E_NUMERIC, cn_net_file_name(net), out.line, out.col,
                            "the outputs of '%s' or the %s loss went non-finite in shard %d of the batch (train "
                            "without shards to trace the layer where it started)",
                            out.name, cn_loss_name(cfg->loss), bad_shard);
    }
    cn_free(ctx, part);
    if (st) return st;
    cn_net_zero_grad(net);
    if ((st = cn_net_backward(ctx, net, dout)) || (st = cn_parallel_sum_grads(ctx, p))) return st;
    double norm;
    return cn_optim_step(ctx, opt, net, &norm);
}

/* ---- steps in flight: step k + 1 queued before step k is read ----
 * Each of the two slots holds a step's input (a copy in the backend's memory), its one-hot rows
 * and output gradient (the scratch's slot), its sums (the backend's slot) and the net's stream
 * before its draws. The device gates each update (the clip factor from the step's own norm,
 * computed there) and stops at a step that was not finite: that update, the next step's and the
 * next step's batch norm statistics leave every value as it was, so when the host reads the
 * step it finds the net as the CPU's step would have left it, and runs that step again from its
 * slot through the host's checks for the CPU's message. */
struct cn_step_flight {
    cn_allocator alloc;
    const cn_memory_ops *mem;
    float *input[2];
    int64_t room;              /* floats in each input */
    int pending;               /* steps queued, not read yet (0, 1; 2 only inside cn_train_step_fly) */
    int slot;                  /* the older pending step's */
    int64_t batch[2], classes;
    float *target[2], *dout[2]; /* each slot's one-hot rows and output gradient (the scratch's) */
    cn_rng rng_before[2];
    int redone;                /* a step read already (run again on the host): its loss and count */
    double redone_loss;
    int64_t redone_correct;
};

cn_status cn_step_flight_create(cn_ctx *ctx, cn_net *net, cn_optim *opt, cn_step_flight **out)
{
    *out = NULL;
    if (!cn_optim_gates(ctx, opt, net) || !cn_net_step_kernels(net)->queue_loss || !cn_net_slab_memory(net)) return CN_OK;
    cn_step_flight *f = cn_calloc(ctx, 1, sizeof *f);
    if (!f) return CN_E_NOMEM;
    f->alloc = ctx->alloc, f->mem = cn_net_slab_memory(net);
    *out = f;
    return CN_OK;
}

void cn_step_flight_destroy(cn_step_flight *f)
{
    if (!f) return;
    for (int s = 0; s < 2; s++)
        if (f->input[s]) f->mem->release(f->input[s]); /* the release waits for the stream */
    cn_ctx own = { .alloc = f->alloc };
    cn_free(&own, f);
}

static cn_status land_on_host(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, cn_step_flight *f,
                              int s, int other, double *loss);

/* slot s's step read: its loss (the mean) and count, or, where it was not finite, the host's
 * checks on it run again from its slot (the CPU's message); other, the slot of a step queued
 * after it (-1: none), is then run again too where the host finds s finite after all */
static cn_status land(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, cn_step_flight *f, int s,
                      int other, double *loss, int64_t *correct)
{
    const cn_step_kernels *k = cn_net_step_kernels(net);
    double sum_sq;
    if (k->read_slot(s, loss, &sum_sq, correct)) return cn_net_check_backend(ctx, net);
    int64_t batch = f->batch[s], classes = f->classes;
    *loss /= cn_loss_per_sample(cfg->loss) ? (double)batch : (double)batch * (double)classes;
    if (isfinite(*loss) && isfinite(sum_sq)) return CN_OK;
    /* the device stopped at this step: its update and the next one's were skipped */
    cn_status st = cn_net_check_backend(ctx, net);
    if (st) return st;
    cn_optim_unstep(opt, other >= 0 ? 2 : 1);
    st = land_on_host(ctx, net, opt, cfg, f, s, other, loss);
    k->clear_halt(); /* after the run again, whose batch norms leave their statistics as they are */
    return st;
}

/* land's step s that was not finite, run again on the host from its slot: the CPU's message, or
 * (the device refused what the host takes) its update, and the step queued after it again */
static cn_status land_on_host(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, cn_step_flight *f,
                              int s, int other, double *loss)
{
    const cn_step_kernels *k = cn_net_step_kernels(net);
    int64_t batch = f->batch[s], classes = f->classes;
    cn_status st;
    float *target = f->target[s], *dout = f->dout[s];
    cn_rng *rng = cn_net_rng(net), after = *rng;
    *rng = f->rng_before[s];
    const float *x = f->input[s];
    if ((st = cn_net_forward(ctx, net, x, batch, 1))) return st;
    st = host_loss(ctx, net, cfg, x, target, cn_net_output(net, NULL), batch, classes, &f->rng_before[s], loss, dout);
    if (!st) {
        cn_net_zero_grad(net);
        st = cn_net_backward(ctx, net, dout);
    }
    if (!st) st = update(ctx, net, opt, x, batch, dout, &f->rng_before[s], NAN, 1);
    if (st) return st; /* the CPU's message: the run stops here, as it would on the CPU */
    /* the host found the step finite (the device refused what the host takes): on from here,
     * the step after it run again (its update was skipped) */
    k->clear_halt();
    if (other < 0) {
        *rng = after;
        return CN_OK;
    }
    *rng = f->rng_before[other];
    f->redone = 1;
    st = queued_step(ctx, net, opt, cfg, f->input[other], f->target[other], f->dout[other], f->batch[other], classes,
                     &f->redone_loss, &f->redone_correct, other);
    return st ? st : cn_net_check_backend(ctx, net);
}

cn_status cn_train_step_fly(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, cn_step_flight *f,
                            const float *x, const int32_t *labels, int64_t batch, double *loss, int64_t *correct, int *done)
{
    *done = 0, *loss = NAN, *correct = -1;
    if (f->redone) { /* a step read already: its figures now, nothing pending */
        if (f->pending) return cn_fail(ctx, CN_E_ARG, "cn_train_step_fly: a redone step with one pending");
        *done = 1, *loss = f->redone_loss, *correct = f->redone_correct, f->redone = 0;
    }
    const cn_step_kernels *k = cn_net_step_kernels(net);
    cn_layer_info out = output_layer(net), in;
    cn_ctx quiet;
    memset(&quiet, 0, sizeof quiet);
    cn_net_layer(&quiet, net, 0, 1, &in);
    int64_t classes = out.c * out.h * out.w, per = in.c * in.h * in.w, n;
    if (f->pending && classes != f->classes) return cn_fail(ctx, CN_E_ARG, "cn_train_step_fly: another net");
    int s = f->pending ? !f->slot : 0;
    if (!cn_mul_ok(per, batch, &n)) return cn_fail(ctx, CN_E_OVERFLOW, "batch too large");
    if (n > f->room) { /* the inputs grow (no step may be pending: its input is kept) */
        if (f->pending) {
            cn_status st = cn_train_step_flush(ctx, net, opt, cfg, f, loss, correct, done);
            if (st) return st;
            s = 0;
        }
        for (int j = 0; j < 2; j++) {
            if (f->input[j]) f->mem->release(f->input[j]);
            f->input[j] = f->mem->alloc((size_t)n * sizeof(float));
        }
        f->room = f->input[0] && f->input[1] ? n : 0;
        if (!f->room) return cn_fail(ctx, CN_E_NOMEM, "no device memory for two batches' inputs");
    }
    float *target, *dout;
    cn_status st = one_hot_in(ctx, net, labels, batch, classes, s, &target, &dout);
    if (st) return st;
    /* step k + 1 queued: its input kept in its slot, the pass, the gate, the gated update */
    f->mem->copy(f->input[s], x, (size_t)(per * batch) * sizeof(float));
    f->rng_before[s] = *cn_net_rng(net), f->batch[s] = batch, f->classes = classes;
    f->target[s] = target, f->dout[s] = dout;
    k->select_slot(s);
    if ((st = cn_net_forward_input(ctx, net, f->input[s], batch, 1))) return st;
    cn_net_set_queued(net, 1);
    st = queue_pass(ctx, net, cfg, target, dout, batch, classes, s);
    cn_net_set_queued(net, 0);
    if (st) return st;
    const double *gate = k->queue_gate(cn_optim_get_config(opt)->clip_norm);
    cn_optim_step_gated(opt, net, gate);
    k->mark(s);
    /* then step k read, while k + 1 runs */
    if (f->pending) {
        int older = f->slot;
        f->slot = s; /* k + 1 pending from here, whatever k's reading finds */
        st = land(ctx, net, opt, cfg, f, older, s, loss, correct);
        if (!st && f->redone) f->pending = 0; /* k + 1 ran again, read: its figures next time */
        *done = !st;
        return st;
    }
    f->pending = 1, f->slot = s;
    return CN_OK;
}

cn_status cn_train_step_flush(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, cn_step_flight *f,
                              double *loss, int64_t *correct, int *done)
{
    *done = 0;
    if (f->redone) {
        *done = 1, *loss = f->redone_loss, *correct = f->redone_correct, f->redone = 0;
        return CN_OK;
    }
    if (!f->pending) return CN_OK;
    f->pending = 0;
    cn_status st = land(ctx, net, opt, cfg, f, f->slot, -1, loss, correct);
    *done = !st;
    return st;
}
