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

#endif
