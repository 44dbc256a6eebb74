/* kernel.h — the kernel interface: what every forward and backward kernel receives, the
 * reference kernels of src/ops and the backends' alike. A kernel reads its node's geometry
 * (n->out, n->a, its inputs' ->out) and works on the pointers of one cn_op_io; it allocates
 * nothing and keeps nothing between calls but what forward leaves in aux. */
#ifndef CN_KERNEL_H
#define CN_KERNEL_H

#include "../core/core_impl.h"

typedef struct cn_node cn_node;

typedef struct cn_op_io {
    const cn_node *n;
    const cn_node *const *in;  /* input nodes (their ->out are the input shapes) */
    int64_t batch;
    const void *const *x;      /* x[i]: input i (N, C_i, H_i, W_i) */
    void *y;                   /* output (N, C, OH, OW); forward overwrites it */
    const void *w;             /* this layer's trainable tensors, back to back in spec order */
    void *dw;                  /* their gradients; backward accumulates (+=) */
    void *buf;                 /* non-trainable tensors (running statistics); forward may update */
    void *aux;                 /* what forward keeps for backward (argmax, masks, batch statistics) */
    const void *dy;            /* gradient of the output */
    void *const *dx;           /* dx[i] (+=); an entry is NULL when that input needs no gradient */
    int training;
    cn_rng *rng;               /* dropout's draws */
    void *work;                /* the backend's scratch for this call (backend->workspace bytes) */
    /* bit j: dx[j] holds no gradient yet, and the kernel stores dx[j] = 0 + gradient instead of
     * adding (the same bits as adding to zeros, without zeroing first). Set only for the kernels
     * whose backend's fresh_dx says they honour it. */
    unsigned dx_fresh;
} cn_op_io;

typedef void (*cn_kernel_fn)(const cn_op_io *io);

#endif
