/* checkpoint_impl.h — what checkpoint.c shares with the fuzz target (fuzz/fuzz_safetensors.c):
 * reading a checkpoint held in memory. Not part of the public API. */
#ifndef CN_CHECKPOINT_IMPL_H
#define CN_CHECKPOINT_IMPL_H

#include "../core/core_impl.h"

/* Validates and parses `size` bytes (copied) as cn_checkpoint_read does a file; name stands
 * for the path in messages. verify = 0 skips the checksums and the spec hash (and only them),
 * so that a fuzzer mutating the data or the spec still reaches cn_checkpoint_net; every other
 * caller passes 1. */
cn_status cn_checkpoint_read_memory(cn_ctx *ctx, const void *data, size_t size, const char *name, int verify,
                                    cn_checkpoint **out);

#endif
