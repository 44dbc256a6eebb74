/* backend.c — the backend registry: the CPU backend by default, the CUDA backend where the
 * build found nvcc (the one place that knows whether it did), the plain reference kernels for
 * comparisons. */
#include <string.h>

#include "backend.h"

extern const cn_backend cn_backend_cpu;
#ifdef CN_HAVE_CUDA
extern const cn_backend cn_backend_cuda;
#define CUDA_BACKEND &cn_backend_cuda,
#else
#define CUDA_BACKEND
#endif

static const cn_kernels none[CN_OP_COUNT];
static const cn_backend reference = { "reference", none, NULL, NULL, NULL, NULL, NULL };

/* every backend compiled in, the reference last */
static const cn_backend *const all[] = { &cn_backend_cpu, CUDA_BACKEND & reference };

const cn_backend *cn_backend_default(void) { return &cn_backend_cpu; }
const cn_backend *cn_backend_reference(void) { return &reference; }
int cn_backend_count(void) { return (int)(sizeof all / sizeof all[0]); }
const cn_backend *cn_backend_at(int i) { return i >= 0 && i < cn_backend_count() ? all[i] : NULL; }

cn_status cn_backend_for_device(cn_ctx *ctx, const char *device, int precision, const cn_backend **out)
{
    static const char *const names[] = { "fp32", "tf32", "bf16" };
    *out = NULL;
    if (!device || (strcmp(device, "cpu") && strcmp(device, "cuda")))
        return cn_fail(ctx, CN_E_ARG, "unknown device '%s' (cpu or cuda)", device ? device : "(null)");
    if (precision < CN_PRECISION_FP32 || precision > CN_PRECISION_BF16)
        return cn_fail(ctx, CN_E_ARG, "unknown precision %d", precision);
    for (int i = 0; i < cn_backend_count(); i++)
        if (!strcmp(all[i]->name, device)) {
            cn_status st = all[i]->open ? all[i]->open(ctx, precision) : CN_OK;
            if (st) return st;
            if (!all[i]->open && precision != CN_PRECISION_FP32)
                return cn_fail(ctx, CN_E_UNSUPPORTED, "--precision %s needs --device cuda (the CPU computes in fp32)",
                               names[precision]);
            *out = all[i];
            return CN_OK;
        }
    return cn_fail(ctx, CN_E_UNSUPPORTED, "--device cuda: this convnet was built without CUDA (nvcc not found at build time)");
}
