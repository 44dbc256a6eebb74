/* backend.h — a backend supplies fast kernels for some ops; the executor falls back to the op's
 * reference kernel for the rest. The registry (backend.c) is the one place that knows which
 * backends exist. */
#ifndef CN_BACKEND_H
#define CN_BACKEND_H

#include "../ops/op_impl.h"

typedef struct cn_backend {
    const char *name;
    /* the backend's float kernels for node n, or NULL for the reference kernel */
    cn_kernel_fn (*forward)(const cn_node *n);
    cn_kernel_fn (*backward)(const cn_node *n);
    /* scratch bytes node n needs for one call at this batch (0: none) */
    int64_t (*workspace)(const cn_node *n, const cn_node *const *in, int64_t batch);
    /* 1 when n's backward kernel honours cn_op_io.dx_fresh (NULL: none does) */
    int (*fresh_dx)(const cn_node *n);
} cn_backend;

/* The default backend: "cpu" (im2col + BLAS). */
const cn_backend *cn_backend_default(void);
/* The reference kernels only (for tests). */
const cn_backend *cn_backend_reference(void);

#endif
