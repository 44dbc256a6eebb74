/* core_impl.h — internals shared across the library: the context, allocation, errors,
 * a growable string. Not part of the public API. */
#ifndef CN_CORE_IMPL_H
#define CN_CORE_IMPL_H

#include <stdarg.h>
#include <stdio.h>

#include "convnet.h"

#define CN_MSG_MAX 1024

struct cn_ctx {
    cn_allocator alloc;
    cn_status status;
    char message[CN_MSG_MAX];
    cn_resize resize; /* how cn_image_load and the image-folder loaders resize (cn_ctx_set_resize) */
    int64_t resized, drafted; /* images cn_image_load resized, and decoded smaller first (cn_ctx_take_image_counts) */
};

#if defined(__GNUC__)
#define CN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CN_PRINTF(f, a)
#endif

/* Records status and message; returns status so callers can `return cn_fail(...)`. */
cn_status cn_fail(cn_ctx *ctx, cn_status status, const char *fmt, ...) CN_PRINTF(3, 4);
/* Same, with "FILE:LINE:COL: " in front. */
cn_status cn_fail_at(cn_ctx *ctx, cn_status status, const char *file, int line, int col, const char *fmt, ...)
    CN_PRINTF(6, 7);

/* Whether ctx allocates with the C library's malloc (thread-safe), not a caller's allocator. */
int cn_ctx_alloc_is_libc(const cn_ctx *ctx);
/* Allocation through the context's allocator; a failure records CN_E_NOMEM. */
void *cn_malloc(cn_ctx *ctx, size_t size);
void *cn_calloc(cn_ctx *ctx, size_t count, size_t size);
/* bytes for a buffer of megabytes (a decoded photo, a data set's floats): on huge pages where the
 * allocator is the C library's (512x fewer page faults as it is first written); freed with
 * cn_free */
void *cn_malloc_large(cn_ctx *ctx, size_t bytes);
/* the same zeroed, for a large slab (activations, parameters) */
void *cn_calloc_slab(cn_ctx *ctx, size_t bytes);
void *cn_realloc(cn_ctx *ctx, void *ptr, size_t size);
void cn_free(cn_ctx *ctx, void *ptr);
char *cn_strdup(cn_ctx *ctx, const char *s);
char *cn_strndup(cn_ctx *ctx, const char *s, size_t n);

/* A growable NUL-terminated string with snprintf-like appends; it only counts once full,
 * so callers can size a buffer first (cap == 0) and fill it second. */
typedef struct cn_strbuf {
    char *buf;
    size_t cap;
    size_t len; /* length needed so far, may exceed cap */
} cn_strbuf;

void cn_sb_init(cn_strbuf *sb, char *buf, size_t cap);
void cn_sb_printf(cn_strbuf *sb, const char *fmt, ...) CN_PRINTF(2, 3);
/* Appends n with thousands separators: 3538944 -> "3,538,944". */
void cn_sb_count(cn_strbuf *sb, int64_t n);

#define CN_CLASS_NAME_MAX 1024 /* bytes of a class name: a folder name fits (NAME_MAX is 255) */
/* The smallest standard deviation of an input channel the normalisation divides by: a channel
 * that does not vary over the data (the blue of red-and-green images) is left unscaled (std 1),
 * and a checkpoint's norm_std below it is refused (1e-45 would make every input infinite). */
#define CN_NORM_STD_MIN 1e-6
/* 1 when s is class names a line each (a checkpoint's and an ONNX model's class_names): every
 * line 1 to CN_CLASS_NAME_MAX bytes and printable (cn_text_printable) */
int cn_text_printable_lines(const char *s);
/* 1 when path names an ONNX model (ends in .onnx, any case): read as a spec or a checkpoint it
 * fails, and the message (CN_ONNX_HINT: path, "spec" or "checkpoint", path) then says what the
 * file is and what reads it */
int cn_path_is_onnx(const char *path);
#define CN_ONNX_HINT "%s: not a %s but an ONNX model: `convnet import %s -o DIR` (or cn_onnx_import) reads it into a run folder"

/* The next 64 bits of xoshiro256** (cn_rng_next), inline for loops that draw once per value
 * (dropout's masks). */
static inline uint64_t cn_rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t cn_rng_step(cn_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = cn_rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = cn_rotl64(s[3], 45);
    return result;
}

/* The candidate closest to word if it is close enough to be a likely misspelling, else NULL. */
const char *cn_suggest(const char *word, const char *const *candidates, int n);

/* The fault-injection switch (fault.c): kills the process at the point named by the
 * environment's CONVNET_FAULT, for the crash tests; a no-op otherwise. file may be NULL. */
void cn_fault_point(const char *file, const char *point);

/* Loops on the kernels' OpenMP threads only where they are big enough. libgomp makes a futex
 * system call for every parallel region, even one that its if-clause keeps serial: 1 to 2.5
 * µs a layer (issue 18: a net of 100 one-value tanh layers, batch 1, one thread, 0.25 ms a
 * pass, one futex call per layer under strace). So the condition is tested here, and a small
 * loop never enters OpenMP: `CN_PAR_FOR(cond, clauses, for (...) body)` runs `omp parallel
 * for clauses` when cond holds and the plain loop otherwise; CN_PAR_FOR_SIMD `omp parallel
 * for simd clauses`, or `omp simd`. The same loop either way: the bits do not change. A
 * directive inside the loop is written _Pragma("..."). Not in a function with a target
 * attribute: clang outlines the loop into a function without it, and the vector code in its
 * body does not compile; the loop calls a target function that does the vector work. */
#define CN_PRAGMA(x) _Pragma(#x)
#define CN_PAR_FOR(cond, clauses, ...)                                                                  \
    do {                                                                                                \
        if (cond) {                                                                                     \
            CN_PRAGMA(omp parallel for clauses)                                                         \
            __VA_ARGS__                                                                                 \
        } else {                                                                                        \
            __VA_ARGS__                                                                                 \
        }                                                                                               \
    } while (0)
#define CN_PAR_FOR_SIMD(cond, clauses, ...)                                                             \
    do {                                                                                                \
        if (cond) {                                                                                     \
            CN_PRAGMA(omp parallel for simd clauses)                                                    \
            __VA_ARGS__                                                                                 \
        } else {                                                                                        \
            CN_PRAGMA(omp simd)                                                                         \
            __VA_ARGS__                                                                                 \
        }                                                                                               \
    } while (0)

#endif /* CN_CORE_IMPL_H */
