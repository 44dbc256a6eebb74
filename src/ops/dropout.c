/* dropout.c — dropout with a keep probability: at training time each value is kept with
 * probability keep and scaled by 1/keep (inverted dropout); identity at evaluation.
 * Covered by tests/test_gradcheck.c (gradients and the share of kept values). */
#ifndef CN_REAL
#include <string.h>

#include "aux_impl.h"
#include "op_impl.h"

static const cn_key keys[] = {
    { .name = "keep", .type = CN_KT_FLOAT, .offset = offsetof(cn_attrs, keep), .flags = CN_KEY_REQ | CN_KEY_LO_OPEN,
      .hi = 1, .doc = "probability of keeping a value, in (0, 1]; PyTorch's p is 1 - keep" },
    { 0 },
};

static void explain(const cn_node *n, const cn_node *const *in, int64_t batch, cn_strbuf *sb)
{
    (void)in, (void)batch;
    cn_sb_printf(sb, "    training: keep each value with p = %g and scale it by 1/p = %g; evaluation: identity\n",
                 n->a.keep, 1.0 / n->a.keep);
}

/* aux: the mode, then one mask byte per value (aux_impl.h). Backward follows the recorded mode,
 * not io->training. */
static int64_t aux_bytes(const cn_node *n, const cn_node *const *in, int64_t batch, size_t real_size)
{
    (void)in, (void)real_size;
    int64_t count;
    if (!cn_mul_ok(n->out.c * n->out.h * n->out.w, batch, &count) || !cn_add_ok(count, CN_DROPOUT_AUX_HEAD, &count))
        return -1;
    return count;
}

#define CN_TEMPLATE_FILE "dropout.c"
#include "template.h"

const cn_op cn_op_dropout = {
    .name = "dropout", .usage = "dropout keep=P", .help = "randomly zero values while training", .keys = keys,
    .inputs = 1, .infer = cn_infer_pointwise, .explain = explain, .aux_bytes = aux_bytes,
    .forward = { dropout_forward_f32, dropout_forward_f64 }, .backward = { dropout_backward_f32, dropout_backward_f64 },
};

#else /* ---- kernels, compiled once for float and once for double (template.h) ---------------- */

/* y (N,C,H,W) <- x * mask / keep, mask (N,C,H,W bytes) = [u < keep] with one uniform draw u
 * per value in element order (training); y <- x (evaluation) */
static void CN_FN(dropout_forward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t count = nd->out.c * nd->out.h * nd->out.w * io->batch;
    const CN_REAL *x = io->x[0];
    CN_REAL *y = io->y;
    int64_t *mode = io->aux;
    unsigned char *mask = (unsigned char *)io->aux + CN_DROPOUT_AUX_HEAD;
    *mode = io->training != 0;
    if (!io->training) {
        memcpy(y, x, (size_t)count * sizeof(CN_REAL));
        return;
    }
    CN_REAL scale = (CN_REAL)(1.0 / nd->a.keep);
    for (int64_t i = 0; i < count; i++) {
        mask[i] = cn_rng_uniform(io->rng) < nd->a.keep;
        y[i] = mask[i] ? x[i] * scale : 0;
    }
}

/* dx (N,C,H,W) += dy * mask / keep (training), dy (evaluation) */
static void CN_FN(dropout_backward)(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t count = nd->out.c * nd->out.h * nd->out.w * io->batch;
    const CN_REAL *dy = io->dy;
    CN_REAL *dx = io->dx[0];
    const unsigned char *mask = (const unsigned char *)io->aux + CN_DROPOUT_AUX_HEAD;
    if (!dx) return;
    if (!*(const int64_t *)io->aux) {
        for (int64_t i = 0; i < count; i++) dx[i] += dy[i];
        return;
    }
    CN_REAL scale = (CN_REAL)(1.0 / nd->a.keep);
    for (int64_t i = 0; i < count; i++)
        if (mask[i]) dx[i] += dy[i] * scale;
}

#endif
