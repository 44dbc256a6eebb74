/* backend.c — the backend registry: the CPU backend by default, the plain reference kernels
 * for comparisons. */
#include "backend.h"

extern const cn_backend cn_backend_cpu;

static const cn_backend reference = { "reference", NULL, NULL, NULL, NULL };

const cn_backend *cn_backend_default(void) { return &cn_backend_cpu; }
const cn_backend *cn_backend_reference(void) { return &reference; }
