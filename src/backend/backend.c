/* backend.c — the backend registry: the CPU backend by default, the plain reference kernels
 * for comparisons. */
#include "backend.h"

extern const cn_backend cn_backend_cpu;

static const cn_kernels none[CN_OP_COUNT];
static const cn_backend reference = { "reference", none, NULL, NULL };

/* every backend compiled in, the reference last */
static const cn_backend *const all[] = { &cn_backend_cpu, &reference };

const cn_backend *cn_backend_default(void) { return &cn_backend_cpu; }
const cn_backend *cn_backend_reference(void) { return &reference; }
int cn_backend_count(void) { return (int)(sizeof all / sizeof all[0]); }
const cn_backend *cn_backend_at(int i) { return i >= 0 && i < cn_backend_count() ? all[i] : NULL; }
