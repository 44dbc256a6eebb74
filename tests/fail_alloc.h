/* fail_alloc.h — an allocator for malloc-failure sweeps: it fails call number fail_at (-1:
 * none) and counts the blocks still alive, so a sweep checks both the error path and leaks. */
#ifndef CN_TEST_FAIL_ALLOC_H
#define CN_TEST_FAIL_ALLOC_H

#include <stdlib.h>

#include "convnet.h"

typedef struct {
    long calls;   /* malloc and realloc calls so far */
    long fail_at; /* the call that fails (-1: none) */
    long live;    /* blocks allocated and not yet freed */
    long bad_free;
} fail_alloc;

static inline void *fa_malloc(void *user, size_t size)
{
    fail_alloc *a = user;
    if (a->calls++ == a->fail_at) return NULL;
    void *p = malloc(size);
    if (p) a->live++;
    return p;
}

static inline void *fa_realloc(void *user, void *ptr, size_t size)
{
    fail_alloc *a = user;
    if (a->calls++ == a->fail_at) return NULL; /* ptr stays valid, as with realloc */
    void *p = realloc(ptr, size);
    if (p && !ptr) a->live++;
    return p;
}

static inline void fa_free(void *user, void *ptr)
{
    fail_alloc *a = user;
    if (!ptr) return;
    if (a->live <= 0) a->bad_free++;
    a->live--;
    free(ptr);
}

/* A sweep: round n runs the code under test on a fresh context whose allocation n fails, for
 * n = 0, 1, ..., until a round in which no allocation failed (every one was tried):
 *     fa_sweep s;
 *     for (fa_sweep_start(&s); fa_sweep_next(&s, MAX);) {
 *         cn_status st = f(s.ctx, ...);
 *         int injected = fa_sweep_injected(&s);   (then check st, the results, and free them)
 *         fa_sweep_end(&s);                        (then CHECK s.fa.live == 0, s.fa.bad_free == 0)
 *     }
 *     CHECK(s.done); */
typedef struct {
    fail_alloc fa;
    cn_allocator alloc;
    cn_ctx *ctx;
    long n;   /* the allocation that fails this round */
    int done; /* a round ran with no failure */
} fa_sweep;

static inline void fa_sweep_start(fa_sweep *s)
{
    s->fa = (fail_alloc){ 0, -1, 0, 0 };
    s->alloc = (cn_allocator){ fa_malloc, fa_realloc, fa_free, &s->fa };
    s->ctx = NULL;
    s->n = -1;
    s->done = 0;
}

/* starts the next round; 0 when the sweep is over (done, max rounds, or no context) */
static inline int fa_sweep_next(fa_sweep *s, long max)
{
    if (s->done || s->n + 1 >= max) return 0;
    s->n++;
    s->fa = (fail_alloc){ 0, -1, 0, 0 };
    if (cn_ctx_create(&s->alloc, &s->ctx) != CN_OK) return 0;
    s->fa.calls = 0, s->fa.fail_at = s->n;
    return 1;
}

/* after the calls under test: 1 when this round's allocation failed; later calls succeed */
static inline int fa_sweep_injected(fa_sweep *s)
{
    int injected = s->fa.calls > s->n;
    s->fa.fail_at = -1;
    if (!injected) s->done = 1;
    return injected;
}

static inline void fa_sweep_end(fa_sweep *s)
{
    cn_ctx_destroy(s->ctx);
    s->ctx = NULL;
}

#endif
