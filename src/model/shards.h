/* shards.h — a training batch cut into shards, for data-parallel training (src/train/parallel.c).
 *
 * The global batch is cut into a fixed number of shards whatever the number of processes; a
 * process runs a run of consecutive shards, each layer over each of its shards in turn, each
 * shard as a batch of its own with its own parameter gradients. What reduces over the batch
 * reaches the other shards through the hooks: batch norm's statistics (gathered in shard order,
 * then merged by the op: cn_op.stats_merge) and the parameter gradients (handed over layer by
 * layer as backward finishes them, for the caller to sum while backward goes on). So a batch
 * gives the same bits on one process or many, and the caller's sum decides the rest. */
#ifndef CN_SHARDS_H
#define CN_SHARDS_H

#include "../core/core_impl.h"

typedef struct cn_shard_hooks {
    /* all[count * n] <- every shard's n values in shard order, this process's being mine
     * (its shards' n values each, back to back); count: the number of shards of the batch */
    cn_status (*gather)(void *user, const double *mine, int64_t n, double *all);
    /* the running statistics and other buffers x[0..n), as the process holding shard 0 has
     * them, to every process (per-shard statistics: only shard 0's update is kept) */
    cn_status (*broadcast)(void *user, float *x, int64_t n);
    /* the gradients [lo, hi) of the parameter slab are final in every shard's slab: backward
     * is past every layer that writes them */
    void (*grads_ready)(void *user, int64_t lo, int64_t hi);
    void *user;
} cn_shard_hooks;

typedef struct cn_shard_plan {
    int count;             /* shards of the whole batch */
    int first, mine;       /* this process runs shards first .. first + mine - 1 */
    const int64_t *len;    /* their batch sizes (mine of them) */
    int whole_stats;       /* batch norm over the whole batch (1) or each shard's own (0) */
    cn_shard_hooks hooks;
} cn_shard_plan;

/* A training forward of the plan's batch (its shards' sizes summed) runs sharded from now on;
 * other batches and evaluation run whole. NULL: never. The plan's arrays are copied. */
cn_status cn_net_set_shards(cn_ctx *ctx, cn_net *net, const cn_shard_plan *plan);
/* The parameter gradients of this process's shard s (0 .. mine - 1) after a sharded backward;
 * shard 0's are cn_net_grads'. NULL when the last pass was not sharded. */
float *cn_net_shard_grads(const cn_net *net, int s);
/* The shards this process runs (the plan's `mine`), 0 without a plan. */
int cn_net_shards_here(const cn_net *net);
/* The batch rows of this process's shard s: first row and count (0 past the last). */
void cn_net_shard_rows(const cn_net *net, int s, int64_t *first, int64_t *count);

#endif
