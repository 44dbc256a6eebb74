/* io_impl.h — the file writing that checkpoints and the trainer share (atomic.c). Not part of
 * the public API. */
#ifndef CN_IO_IMPL_H
#define CN_IO_IMPL_H

#include "../core/core_impl.h"

typedef struct cn_span {
    const void *p;
    size_t n;
} cn_span;

/* Writes the parts, in order, to path atomically (see cn_file_write_atomic); failures say
 * "<what> <path>: ..." and leave path as it was, with no temporary file. */
cn_status cn_write_atomic(cn_ctx *ctx, const char *what, const char *path, const cn_span *parts, int n_parts);

#endif
