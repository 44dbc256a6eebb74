/* checked.c — size arithmetic that says when it overflows (the public header holds no compiler
 * builtins, so it stays plain C11 for any compiler that includes it). Covered by tests/test_core.c. */
#include "core_impl.h"

int cn_mul_ok(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }
int cn_add_ok(int64_t a, int64_t b, int64_t *r) { return !__builtin_add_overflow(a, b, r); }
