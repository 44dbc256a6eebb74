/* parallel.c — data-parallel training: the processes of an MPI job (or this one alone), the
 * shards of a global batch, and the exact sum of the shards' gradients.
 *
 * The sum is what makes any number of processes give the bits of one: floating-point addition
 * depends on its order, so each bucket of gradients is turned into 64-bit integers at a scale
 * set by its largest value over all shards (2^62 / shards above it: no sum can overflow), the
 * integers are summed (exact, in any order: MPI's ring, tree or whatever it picks), and the sum
 * turned back. Values below the largest by more than about 2^-36 (of a float's 2^-24 resolution)
 * keep fewer bits than a float would; they are too small to move the update.
 *
 * Buckets start as backward hands over the layers it has finished (cn_shard_hooks.grads_ready):
 * first an all-reduce of their largest value, then, once that is in, the integers' all-reduce,
 * both non-blocking, so that communication runs under the remaining layers' backward.
 * Covered by tests/test_parallel.c and tests/mpi_test.sh. */
#define _POSIX_C_SOURCE 200809L /* sysconf */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#ifdef CN_HAVE_MPI
#include <mpi.h>
#endif

#include "train_impl.h"

enum { BUCKET = 1 << 18 }; /* values per bucket: 1 MB of floats, 2 MB of integers on the wire */

typedef struct bucket {
    int64_t lo, hi;
    double max_mine, max_all; /* largest magnitude here, everywhere (inf: a NaN or inf somewhere) */
    int state;                /* 1: the largest value in flight, 2: the integers in flight, 3: done */
#ifdef CN_HAVE_MPI
    MPI_Request req;
#endif
} bucket;

struct cn_parallel {
    int rank, size, mpi, shards_asked, local_bn;
    int here;                 /* processes of the job on this machine */
    double comm_s;
#ifdef CN_HAVE_MPI
    /* every process must start collectives on a communicator in the same order: the buckets'
     * largest values and their sums, started as each process's backward and tests allow, go on
     * communicators of their own, each in bucket order */
    MPI_Comm comm, comm_max, comm_sum;
#endif
    cn_ctx *ctx;
    /* the plan of the attached net */
    cn_net *net;
    int count, first, mine;   /* shards of the batch; this process's */
    int64_t *len;             /* every shard's rows */
    int64_t *acc;             /* the integers, one per gradient value */
    int64_t n_grads;
    bucket *buckets;
    int n_buckets, cap_buckets;
    int64_t pend_lo, pend_hi; /* finished gradients not yet in a bucket */
};

#ifdef CN_HAVE_MPI /* the time spent in communication */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

/* launched by mpirun (Open MPI, MPICH, Intel MPI or any PMI launcher) */
static int under_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK") || getenv("MPI_LOCALNRANKS");
}

cn_status cn_parallel_open(cn_ctx *ctx, int shards, int local_bn, cn_parallel **out)
{
    *out = NULL;
    if (shards < 0) return cn_fail(ctx, CN_E_ARG, "shards must be 0 (the default) or more, not %d", shards);
    cn_parallel *p = cn_calloc(ctx, 1, sizeof *p);
    if (!p) return CN_E_NOMEM;
    p->ctx = ctx, p->size = 1, p->here = 1, p->shards_asked = shards, p->local_bn = local_bn != 0;
    if (under_mpirun()) {
#ifdef CN_HAVE_MPI
        int provided, ready = 0;
        MPI_Initialized(&ready);
        /* FUNNELED: only the main thread calls MPI; the kernels' OpenMP threads never do */
        if (!ready && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            cn_free(ctx, p);
            return cn_fail(ctx, CN_E_IO, "MPI_Init failed");
        }
        MPI_Comm_dup(MPI_COMM_WORLD, &p->comm);
        MPI_Comm_dup(MPI_COMM_WORLD, &p->comm_max);
        MPI_Comm_dup(MPI_COMM_WORLD, &p->comm_sum);
        MPI_Comm_rank(p->comm, &p->rank);
        MPI_Comm_size(p->comm, &p->size);
        MPI_Comm local;
        MPI_Comm_split_type(p->comm, MPI_COMM_TYPE_SHARED, p->rank, MPI_INFO_NULL, &local);
        MPI_Comm_size(local, &p->here);
        MPI_Comm_free(&local);
        p->mpi = 1;
#else
        if (getenv("OMPI_COMM_WORLD_SIZE") && atoi(getenv("OMPI_COMM_WORLD_SIZE")) > 1) {
            cn_free(ctx, p);
            return cn_fail(ctx, CN_E_ARG, "started by mpirun, but this convnet was built without MPI "
                           "(install libopenmpi-dev and build again)");
        }
#endif
    }
    *out = p;
    return CN_OK;
}

void cn_parallel_close(cn_parallel *p)
{
    if (!p) return;
    cn_ctx *ctx = p->ctx; /* the context it was opened with: must outlive it */
    cn_free(ctx, p->len), cn_free(ctx, p->acc), cn_free(ctx, p->buckets);
#ifdef CN_HAVE_MPI
    if (p->mpi) {
        MPI_Comm_free(&p->comm), MPI_Comm_free(&p->comm_max), MPI_Comm_free(&p->comm_sum);
        int done = 0;
        MPI_Finalized(&done);
        if (!done) MPI_Finalize();
    }
#endif
    cn_free(ctx, p);
}

void cn_parallel_abort(cn_parallel *p, int code)
{
#ifdef CN_HAVE_MPI
    if (p && p->mpi) MPI_Abort(p->comm, code);
#endif
    (void)p;
    exit(code);
}

int cn_parallel_rank(const cn_parallel *p) { return p ? p->rank : 0; }

int cn_parallel_threads(const cn_parallel *p)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int here = p && p->here > 0 ? p->here : 1;
    return cores / here > 1 ? (int)(cores / here) : 1;
}
int cn_parallel_size(const cn_parallel *p) { return p ? p->size : 1; }
int cn_parallel_mpi(const cn_parallel *p) { return p && p->mpi; }
double cn_parallel_comm_seconds(const cn_parallel *p) { return p ? p->comm_s : 0; }

int cn_parallel_shards(const cn_parallel *p, int64_t batch)
{
    if (p->shards_asked) return p->shards_asked;
    int64_t k = (batch + 15) / 16; /* shards of 16 images: big enough for the kernels, small enough for 4 processes at batch 64 */
    return (int)(k > p->size ? (k < 1 << 20 ? k : 1 << 20) : p->size);
}

/* ---- the transport: MPI's, or nothing to do alone -------------------------------------------- */

/* the first of `items` (shards, blocks of images) process r takes: each a run of consecutive
 * ones, as even as the count allows */
static int64_t first_item(const cn_parallel *p, int64_t items, int r) { return items * r / p->size; }
static int first_shard(const cn_parallel *p, int r) { return (int)first_item(p, p->count, r); }

void cn_parallel_share(const cn_parallel *p, int64_t items, int64_t *first, int64_t *count)
{
    int r = p ? p->rank : 0;
    *first = p ? first_item(p, items, r) : 0;
    *count = p ? first_item(p, items, r + 1) - *first : items;
}

cn_status cn_parallel_gather_items(cn_ctx *ctx, cn_parallel *p, int64_t items, const double *mine, int64_t n,
                                   double *all)
{
    int64_t first, count;
    cn_parallel_share(p, items, &first, &count);
    if (!p || p->size == 1) {
        memcpy(all, mine, (size_t)(n * items) * sizeof(double));
        return CN_OK;
    }
#ifdef CN_HAVE_MPI
    if (items * n > INT32_MAX) return cn_fail(ctx, CN_E_OVERFLOW, "%lld values to gather", (long long)(items * n));
    int *counts = cn_malloc(ctx, (size_t)p->size * 2 * sizeof(int)), *displs = counts + p->size;
    if (!counts) return CN_E_NOMEM;
    for (int r = 0; r < p->size; r++) {
        displs[r] = (int)(first_item(p, items, r) * n);
        counts[r] = (int)((first_item(p, items, r + 1) - first_item(p, items, r)) * n);
    }
    double t0 = now();
    int rc = MPI_Allgatherv(mine, (int)(count * n), MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, p->comm);
    p->comm_s += now() - t0;
    cn_free(ctx, counts);
    if (rc != MPI_SUCCESS) return cn_fail(ctx, CN_E_IO, "MPI_Allgatherv failed (%d)", rc);
#else
    (void)ctx; /* one process: nothing to gather (above) */
#endif
    return CN_OK;
}

static cn_status gather(void *user, const double *mine, int64_t n, double *all)
{
    cn_parallel *p = user;
    return cn_parallel_gather_items(p->ctx, p, p->count, mine, n, all);
}

static cn_status broadcast(void *user, float *x, int64_t n)
{
    cn_parallel *p = user;
#ifdef CN_HAVE_MPI
    if (p->size > 1) {
        double t0 = now();
        for (int64_t at = 0; at < n; at += 1 << 30) {
            int rc = MPI_Bcast(x + at, (int)(n - at < 1 << 30 ? n - at : 1 << 30), MPI_FLOAT, 0, p->comm);
            if (rc != MPI_SUCCESS) return cn_fail(p->ctx, CN_E_IO, "MPI_Bcast failed (%d)", rc);
        }
        p->comm_s += now() - t0;
    }
#endif
    (void)p, (void)x, (void)n;
    return CN_OK;
}

/* ---- the exact sum of the gradients ---------------------------------------------------------- */

/* bucket b's largest magnitude over this process's shards (inf for a NaN or inf) */
static void bucket_max(cn_parallel *p, bucket *b)
{
    double mx = 0;
    for (int s = 0; s < p->mine; s++) {
        const float *g = cn_net_shard_grads(p->net, s);
        for (int64_t j = b->lo; j < b->hi; j++) {
            double v = fabs((double)g[j]);
            if (!(v <= mx)) mx = isnan(v) ? INFINITY : v;
        }
    }
    b->max_mine = mx;
}

/* the exponent that puts the largest value of `count` terms under 2^62 / count */
static int scale_of(double max_all, int count)
{
    int e, k = 0;
    frexp(max_all, &e); /* max_all < 2^e */
    while ((1LL << k) < count) k++;
    return 62 - k - e;
}

/* this process's shards as integers, summed */
static void bucket_to_ints(cn_parallel *p, bucket *b)
{
    int sc = scale_of(b->max_all, p->count);
    int64_t *acc = p->acc;
    if (!(b->max_all > 0) || isinf(b->max_all)) { /* zeros, or a NaN somewhere: no sum needed */
        memset(acc + b->lo, 0, (size_t)(b->hi - b->lo) * sizeof(int64_t));
        return;
    }
    const double scale = ldexp(1.0, sc); /* a power of two: the product is exact */
    enum { CHUNK = 4096 };                /* values per pass over the shards: they stay in cache */
#pragma omp parallel for schedule(static) if (b->hi - b->lo > 65536)
    for (int64_t at = b->lo; at < b->hi; at += CHUNK) {
        int64_t end = b->hi - at < CHUNK ? b->hi : at + CHUNK;
        const float *g0 = cn_net_shard_grads(p->net, 0);
#pragma omp simd
        for (int64_t j = at; j < end; j++) acc[j] = llrint((double)g0[j] * scale);
        for (int s = 1; s < p->mine; s++) {
            const float *g = cn_net_shard_grads(p->net, s);
#pragma omp simd
            for (int64_t j = at; j < end; j++) acc[j] += llrint((double)g[j] * scale);
        }
    }
}

/* the sum back into shard 0's gradients, the ones the optimizer reads */
static void bucket_from_ints(cn_parallel *p, bucket *b)
{
    float *g = cn_net_shard_grads(p->net, 0);
    const int64_t *acc = p->acc;
    if (isinf(b->max_all)) {
        for (int64_t j = b->lo; j < b->hi; j++) g[j] = NAN; /* the optimizer names the failure */
        return;
    }
    const double unscale = ldexp(1.0, -scale_of(b->max_all > 0 ? b->max_all : 1, p->count));
#pragma omp parallel for simd schedule(static) if (b->hi - b->lo > 65536)
    for (int64_t j = b->lo; j < b->hi; j++) g[j] = (float)((double)acc[j] * unscale);
}

/* the integers' sum over every process, started */
static void start_sum(cn_parallel *p, bucket *b)
{
    bucket_to_ints(p, b);
    b->state = 2;
#ifdef CN_HAVE_MPI
    if (p->size > 1) {
        double t0 = now();
        MPI_Iallreduce(MPI_IN_PLACE, p->acc + b->lo, (int)(b->hi - b->lo), MPI_INT64_T, MPI_SUM, p->comm_sum, &b->req);
        p->comm_s += now() - t0;
        return;
    }
#endif
    b->state = 3;
}

static void launch(cn_parallel *p, int64_t lo, int64_t hi)
{
    /* never full: a bucket ends at a layer or at BUCKET values (and MPI holds pointers into
     * the array while they are in flight: it must not move) */
    bucket *b = &p->buckets[p->n_buckets++];
    memset(b, 0, sizeof *b);
    b->lo = lo, b->hi = hi;
    bucket_max(p, b);
    b->max_all = b->max_mine;
    b->state = 1;
#ifdef CN_HAVE_MPI
    if (p->size > 1) {
        double t0 = now();
        MPI_Iallreduce(&b->max_mine, &b->max_all, 1, MPI_DOUBLE, MPI_MAX, p->comm_max, &b->req);
        p->comm_s += now() - t0;
        return;
    }
#endif
    start_sum(p, b);
}

/* 1 when bucket b's operation in flight is done (wait: once it is) */
static int finished(cn_parallel *p, bucket *b, int wait)
{
    int done = 1;
#ifdef CN_HAVE_MPI
    double t0 = now();
    if (wait) MPI_Wait(&b->req, MPI_STATUS_IGNORE);
    else MPI_Test(&b->req, &done, MPI_STATUS_IGNORE);
    p->comm_s += now() - t0;
#endif
    (void)p, (void)b, (void)wait;
    return done;
}

/* Moves the buckets on as far as they go without waiting (or, wait: to the end). A sum starts
 * only after every earlier bucket's has: the same order on every process. */
static void progress(cn_parallel *p, int wait)
{
    for (int i = 0; i < p->n_buckets; i++) {
        bucket *b = &p->buckets[i];
        if (b->state == 1) {
            if (!finished(p, b, wait)) return; /* later sums wait for this one's start */
            start_sum(p, b);
        }
        if (b->state == 2 && finished(p, b, wait)) b->state = 3;
    }
}

static void grads_ready(void *user, int64_t lo, int64_t hi)
{
    cn_parallel *p = user;
    if (p->pend_hi > p->pend_lo && hi != p->pend_lo) { /* not next to what waits: that goes first */
        launch(p, p->pend_lo, p->pend_hi);
        p->pend_lo = p->pend_hi = 0;
    }
    if (p->pend_hi <= p->pend_lo) p->pend_hi = hi;
    p->pend_lo = lo;
    if (p->pend_hi - p->pend_lo >= BUCKET) {
        launch(p, p->pend_lo, p->pend_hi);
        p->pend_lo = p->pend_hi = 0;
    }
    progress(p, 0);
}

cn_status cn_parallel_sum_grads(cn_ctx *ctx, cn_parallel *p)
{
    (void)ctx;
    if (p->pend_hi > p->pend_lo) launch(p, p->pend_lo, p->pend_hi);
    p->pend_lo = p->pend_hi = 0;
    progress(p, 1);
    for (int i = 0; i < p->n_buckets; i++) bucket_from_ints(p, &p->buckets[i]);
    p->n_buckets = 0;
    return CN_OK;
}

/* ---- a net's plan ---------------------------------------------------------------------------- */

cn_status cn_parallel_attach(cn_ctx *ctx, cn_parallel *p, cn_net *net, int64_t batch, int64_t *row0, int64_t *rows)
{
    p->ctx = ctx;
    int k = cn_parallel_shards(p, batch);
    if (k > batch)
        return cn_fail(ctx, CN_E_ARG, "%d shards of a batch of %lld: a shard needs an image at least", k, (long long)batch);
    if (k < p->size)
        return cn_fail(ctx, CN_E_ARG, "%d shards cannot keep %d processes busy: ask for %d shards at least", k, p->size,
                       p->size);
    int64_t n;
    cn_net_grads(net, &n);
    cn_free(ctx, p->len), cn_free(ctx, p->acc), cn_free(ctx, p->buckets);
    p->cap_buckets = cn_net_layer_count(net) + (int)(n / BUCKET) + 2; /* the most a backward can start */
    p->len = cn_malloc(ctx, (size_t)k * sizeof(int64_t));
    p->acc = cn_malloc(ctx, (size_t)(n ? n : 1) * sizeof(int64_t));
    p->buckets = cn_malloc(ctx, (size_t)p->cap_buckets * sizeof *p->buckets);
    if (!p->len || !p->acc || !p->buckets) return CN_E_NOMEM;
    p->net = net, p->count = k, p->n_grads = n, p->n_buckets = 0, p->pend_lo = p->pend_hi = 0;
    p->first = first_shard(p, p->rank), p->mine = first_shard(p, p->rank + 1) - p->first;
    *row0 = *rows = 0;
    for (int s = 0; s < k; s++) {
        p->len[s] = batch / k + (s < batch % k); /* the first batch % k shards one image more */
        if (s < p->first) *row0 += p->len[s];
        else if (s < p->first + p->mine) *rows += p->len[s];
    }
    cn_shard_plan plan = { .count = k, .first = p->first, .mine = p->mine, .len = p->len + p->first,
                           .whole_stats = !p->local_bn,
                           .hooks = { .gather = gather, .broadcast = broadcast, .grads_ready = grads_ready, .user = p } };
    return cn_net_set_shards(ctx, net, &plan);
}

void cn_parallel_detach(cn_ctx *ctx, cn_parallel *p, cn_net *net)
{
    cn_net_set_shards(ctx, net, NULL);
    p->net = NULL;
}

int cn_parallel_first_says(cn_parallel *p, int mine)
{
#ifdef CN_HAVE_MPI
    if (p && p->size > 1) {
        double t0 = now();
        MPI_Bcast(&mine, 1, MPI_INT, 0, p->comm);
        p->comm_s += now() - t0;
    }
#endif
    (void)p;
    return mine;
}

/* ---- agreeing at the start ------------------------------------------------------------------- */

/* 64-bit fingerprint: FNV-1a over 8-byte words, then the tail bytes */
static uint64_t fingerprint(const void *data, size_t n)
{
    const unsigned char *b = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h ^ n;
}

cn_status cn_parallel_agree(cn_ctx *ctx, cn_parallel *p, const char *what, const void *data, size_t n)
{
    if (!p || p->size == 1) return CN_OK;
    uint64_t mine = fingerprint(data, n);
#ifdef CN_HAVE_MPI
    uint64_t *all = cn_malloc(ctx, (size_t)p->size * sizeof(uint64_t));
    if (!all) return CN_E_NOMEM;
    double t0 = now();
    MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, p->comm);
    p->comm_s += now() - t0;
    int differs = -1;
    for (int r = 1; r < p->size && differs < 0; r++)
        if (all[r] != all[0]) differs = r;
    cn_free(ctx, all);
    if (differs >= 0)
        return cn_fail(ctx, CN_E_ARG, "process %d of %d has another %s than process 0 (every process must train the same)",
                       differs, p->size, what);
#else
    (void)ctx, (void)mine, (void)what;
#endif
    return CN_OK;
}
