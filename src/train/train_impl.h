/* train_impl.h — what the files of src/train/ share: the sharded training step (step.c) and
 * the data-parallel plumbing under it (parallel.c). Not part of the public API. */
#ifndef CN_TRAIN_IMPL_H
#define CN_TRAIN_IMPL_H

#include "../backend/kernel.h"
#include "../core/core_impl.h"
#include "../model/shards.h"

/* Cuts the net's training batch of `batch` images (the global batch) into p's shards and gives
 * this process its run of them: the batch rows row0 .. row0 + rows - 1 are its. */
cn_status cn_parallel_attach(cn_ctx *ctx, cn_parallel *p, cn_net *net, int64_t batch, int64_t *row0, int64_t *rows);
void cn_parallel_detach(cn_ctx *ctx, cn_parallel *p, cn_net *net);
/* After a sharded backward: every shard's gradients, on every process, summed exactly into the
 * net's gradient slab (cn_net_grads). */
cn_status cn_parallel_sum_grads(cn_ctx *ctx, cn_parallel *p);
/* Work of `items` parts (the shards, blocks of images) shared out: this process's run of them
 * (p NULL: all), and all[items * n] <- every part's n doubles, this process's given in mine, in
 * order. */
void cn_parallel_share(const cn_parallel *p, int64_t items, int64_t *first, int64_t *count);
cn_status cn_parallel_gather_items(cn_ctx *ctx, cn_parallel *p, int64_t items, const double *mine, int64_t n,
                                   double *all);

/* the rows of y (rows x cols) whose largest value (the first of equals) is at their label: the
 * host's accuracy count, the reference of cn_step_kernels.count_correct */
/* cn_optim_step with the gradient's sum of squares known (a device's step queued it with its
 * pass; NaN: computed here, as always where layers are frozen); wait 0: a device's update is
 * left queued (the caller checks the backend before the host reads the weights) */
cn_status cn_optim_step_sq(cn_ctx *ctx, cn_optim *opt, cn_net *net, double sum_sq, int wait, double *grad_norm);
/* Steps in flight (cn_step_kernels.queue_gate): whether this optimizer's step can be gated on
 * net's device (the backend gates, no layer is frozen); the update queued with the device's
 * gate, which gives the clip factor and skips it on a step that was not finite; and the count of
 * steps taken back by n (gated steps the device skipped) */
int cn_optim_gates(cn_ctx *ctx, const cn_optim *opt, const cn_net *net);
void cn_optim_step_gated(cn_optim *opt, cn_net *net, const double *gate);
void cn_optim_unstep(cn_optim *opt, int64_t steps);
/* cn_train_step, and where the backend counted them with the step (its queued step), the rows
 * of the batch predicted right in *correct (else -1: count them after, as cn_count_correct).
 * With correct given, a device's update is left queued: the next step's wait covers it, and
 * the caller checks the backend (cn_net_check_backend) before the host reads the weights, so
 * that the host prepares the next batch while the GPU updates. */
cn_status cn_train_step_counted(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, const float *x,
                                const int32_t *labels, int64_t batch, double *loss, int64_t *correct);
int64_t cn_count_correct(const float *y, const int32_t *labels, int64_t rows, int64_t cols);

/* Steps in flight, on a device that gates its updates (cn_step_kernels.queue_gate): each call
 * of cn_train_step_fly queues a step whole (input, pass, gate, update) and then reads the step
 * queued by the call before, while the new one runs: *done 1 with that step's mean loss and
 * count, 0 on the first call. cn_train_step_flush reads the last one. The same values as
 * cn_train_step_counted's, one call later; a step that is not finite stops with the CPU's
 * message, the net left as the CPU's step leaves it (the device skips the updates from that step
 * on). cn_step_flight_create gives NULL (and CN_OK) where the net's device or optimizer cannot
 * (no gate; frozen layers): use cn_train_step_counted then. */
typedef struct cn_step_flight cn_step_flight;
cn_status cn_step_flight_create(cn_ctx *ctx, cn_net *net, cn_optim *opt, cn_step_flight **out);
void cn_step_flight_destroy(cn_step_flight *f);
cn_status cn_train_step_fly(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, cn_step_flight *f,
                            const float *x, const int32_t *labels, int64_t batch, double *loss, int64_t *correct, int *done);
cn_status cn_train_step_flush(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, cn_step_flight *f,
                              double *loss, int64_t *correct, int *done);

/* process 0's `mine`, on every process (a decision all must take together); p NULL: mine */
int cn_parallel_first_says(cn_parallel *p, int mine);

/* cn_loss_grad with the mean taken over `samples` samples (a shard's part of a larger batch's
 * mean: the loss and gradient of its rows, divided by the whole batch's count) */
cn_status cn_loss_grad_part(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                            int64_t cols, int64_t samples, double label_smoothing, double *loss, float *dpred);

/* One training step on this process's rows (x, labels; cn_parallel_attach's) of a global batch cut into p's shards
 * (cn_parallel_attach): forward, each shard's loss, backward, the exact sum, the update. The
 * loss and the correct predictions are the whole batch's, the same on every process. */
cn_status cn_train_step_sharded(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, cn_parallel *p,
                                const float *x, const int32_t *labels, int64_t rows, int64_t batch, double *loss,
                                int64_t *correct);

#endif
