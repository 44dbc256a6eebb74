/* cuda_fatbin.c — the CUDA kernels embedded in the library (built only where CMake found nvcc;
 * runs without a GPU): a well-formed fatbin whose entries hold sm_90 and sm_80 machine code
 * (ELF cubins) and compute_90 PTX, and in which every kernel the host looks up is named.
 * Layout read here: a 16-byte header (magic 0xBA55ED50, version, header size, entries' bytes),
 * then entries, each with its kind (1 PTX, 2 ELF) at 0, header size at 4, payload size at 8 and
 * the architecture (major*10 + minor) at 28. */
#include <stdlib.h>

#include "../src/backend/cuda/cuda_abi.h"
#include "harness.h"

extern const unsigned char cn_cuda_fatbin[];
extern const size_t cn_cuda_fatbin_size;

static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void test_entries(void)
{
    const unsigned char *f = cn_cuda_fatbin;
    CHECK(cn_cuda_fatbin_size > 1024);
    CHECK(((uintptr_t)f & 7) == 0); /* the driver reads the headers in place */
    CHECK_INT(le(f, 4), 0xBA55ED50u);
    uint64_t header = le(f + 6, 2), total = le(f + 8, 8);
    CHECK_INT(header + total, cn_cuda_fatbin_size);
    int elf90 = 0, elf80 = 0, ptx90 = 0, entries = 0;
    for (uint64_t off = header; off + 32 <= header + total && entries < 64; entries++) {
        const unsigned char *e = f + off;
        uint64_t kind = le(e, 2), eh = le(e + 4, 4), size = le(e + 8, 8), arch = le(e + 28, 4);
        printf("  entry %d: %s for sm_%llu, %llu bytes\n", entries, kind == 2 ? "ELF" : kind == 1 ? "PTX" : "?",
               (unsigned long long)arch, (unsigned long long)size);
        if (kind == 2 && arch == 90) elf90 = 1;
        if (kind == 2 && arch == 80) elf80 = 1;
        if (kind == 1 && arch == 90) ptx90 = 1;
        if (eh < 32 || off + eh + size > header + total) {
            test_fail(__FILE__, __LINE__, "entry %d runs past the fatbin", entries);
            return;
        }
        off += eh + size;
    }
    CHECK(elf90 && elf80 && ptx90);
}

/* the cubins are not compressed by default, so the kernels' names stand in them */
static int contains(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i + n <= cn_cuda_fatbin_size; i++)
        if (!memcmp(cn_cuda_fatbin + i, name, n)) return 1;
    return 0;
}

static void test_kernels_named(void)
{
#define X(name) \
    if (!contains(#name)) test_fail(__FILE__, __LINE__, "kernel %s is not in the fatbin", #name);
    CN_CU_KERNELS(X)
#undef X
}

static const test_case cases[] = {
    { "the fatbin: sm_90 and sm_80 code, compute_90 PTX", test_entries },
    { "every kernel the host looks up is in it", test_kernels_named },
};

int main(void) { return run_tests(cases, (int)(sizeof cases / sizeof cases[0])); }
