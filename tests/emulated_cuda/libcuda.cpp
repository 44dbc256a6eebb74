/* libcuda.cpp — an emulated CUDA driver (libcuda.so.1) for the tests on machines without a GPU:
 * the driver calls the CUDA backend makes (src/backend/cuda/loader.c), with "device" memory on
 * the host and the launches run on the CPU. The kernels are kernels.cu itself, compiled as C++:
 * each thread of a block runs to its next __syncthreads, then the next thread runs (below:
 * plain calls, or coroutines where a kernel has barriers); blocks run one after another. So
 * `ctest -R cuda_emulated` runs the backend's host code, its launches (arguments as
 * cuLaunchKernel passes them) and its kernels' indexing and block reductions against the
 * reference kernels, without a GPU.
 * - The work on the stream runs when the host waits for it (cuStreamSynchronize, an event's
 *   mark), as late as a GPU may run it, so a host that reads a result before its wait, or
 *   changes an operand while the work is queued, gets other values and fails its test.
 * - EMU_ORDER=reverse runs the blocks and threads last to first, so that a read of another
 *   thread's write without a barrier fails in one order or the other.
 * - Stream capture (CUDA graphs): while a capture is on, launches, copies, memsets and (through
 *   cn_emu_queue) libcublas.cpp's products and libcudnn.cpp's convolutions are kept with copies
 *   of their arguments and run when the graph is launched; a wait on the stream while capturing
 *   fails and spoils the capture, as the driver's does.
 * What it cannot check: timing, races that neither order shows (two threads' read-modify-writes
 * of one place, warps), real cuDNN (libcudnn.cpp computes its calls by their documented
 * definition), real cuBLAS, the fatbin's machine code. */
#include <cuda.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

/* ---- what kernels.cu needs of CUDA C++ ---- */
struct cn_dim3 { unsigned x, y, z; };
static cn_dim3 threadIdx, blockIdx, blockDim, gridDim;
static void __syncthreads(void);
#define __global__
#define __device__
#define __shared__ static /* one block at a time: one copy */
using std::erf;
using std::exp;
using std::expm1;
using std::fabs;
using std::fmax;
using std::isfinite;
using std::log;
using std::log1p;
using std::nan;
using std::sqrt;
using std::tanh;
static unsigned __float_as_uint(float v) { unsigned u; memcpy(&u, &v, sizeof u); return u; }
static float __uint_as_float(unsigned u) { float v; memcpy(&v, &u, sizeof v); return v; }
#include "../../src/backend/cuda/kernels.cu"

/* ---- the threads of a block as coroutines ----
 * A kernel without barriers (most: grid-stride loops) runs its threads as plain calls, one after
 * another. One with barriers (the block sums) runs each thread on its own stack, switched by the
 * few instructions below (x86-64: the callee-saved registers and the stack pointer), until the
 * thread's next __syncthreads or its end; a round of every thread passes one barrier. */
extern "C" void cn_emu_switch(void **save_sp, void *load_sp);
__asm__(".text\n.globl cn_emu_switch\n.hidden cn_emu_switch\n.type cn_emu_switch,@function\ncn_emu_switch:\n"
        "pushq %rbp\npushq %rbx\npushq %r12\npushq %r13\npushq %r14\npushq %r15\n"
        "movq %rsp, (%rdi)\nmovq %rsi, %rsp\n"
        "popq %r15\npopq %r14\npopq %r13\npopq %r12\npopq %rbx\npopq %rbp\nret\n"
        ".size cn_emu_switch, .-cn_emu_switch\n");

enum { MAX_THREADS = 1024, STACK = 64 << 10 };
static void *scheduler_sp, *fiber_sp[MAX_THREADS];
static char *stacks[MAX_THREADS];
static int done[MAX_THREADS], current;
static int direct;     /* the threads run as plain calls: the kernel has no barrier */
static int barriers;   /* barriers thread 0 reached */
static void (*entry)(void **);
static void **entry_args;

static void __syncthreads(void)
{
    if (direct) return;
    if (current == 0) barriers++;
    cn_emu_switch(&fiber_sp[current], scheduler_sp);
}

static void fiber_start(void)
{
    entry(entry_args);
    done[current] = 1;
    cn_emu_switch(&fiber_sp[current], scheduler_sp); /* never resumed */
    abort();
}

/* thread t's stack made to start fiber_start: six zero registers, then its address for the ret */
static void fiber_init(unsigned t)
{
    if (!stacks[t]) stacks[t] = static_cast<char *>(malloc(STACK));
    void **sp = reinterpret_cast<void **>((reinterpret_cast<uintptr_t>(stacks[t]) + STACK) & ~uintptr_t(15));
    *--sp = nullptr; /* where fiber_start would return: its entry sees the stack as after a call */
    *--sp = reinterpret_cast<void *>(fiber_start);
    for (int i = 0; i < 6; i++) *--sp = nullptr;
    fiber_sp[t] = sp;
    done[t] = 0;
}

/* EMU_ORDER=reverse: the blocks, and the threads of a block between two barriers, run last to
 * first, so that a kernel that reads what another thread or block wrote without a barrier (which
 * the forward order hides: the writer ran first) gets the wrong value and fails its test */
static int reversed(void)
{
    static int r = -1;
    if (r < 0) {
        const char *e = getenv("EMU_ORDER");
        r = e && strcmp(e, "reverse") == 0;
    }
    return r;
}
static unsigned nth(unsigned i, unsigned count) { return reversed() ? count - 1 - i : i; }

static void run_block(unsigned threads, int first)
{
    static int has_barrier = -1; /* per launch: learnt from the first block run */
    if (first) has_barrier = -1;
    if (has_barrier == 0) {
        direct = 1;
        for (unsigned i = 0; i < threads; i++) {
            unsigned t = nth(i, threads);
            threadIdx = { t, 0, 0 }, current = (int)t, entry(entry_args);
        }
        direct = 0;
        return;
    }
    barriers = 0;
    for (unsigned t = 0; t < threads; t++) fiber_init(t);
    for (unsigned left = threads; left;) { /* a round: every thread to its next barrier */
        left = 0;
        for (unsigned i = 0; i < threads; i++) {
            unsigned t = nth(i, threads);
            if (done[t]) continue;
            current = (int)t;
            threadIdx = { t, 0, 0 };
            cn_emu_switch(&scheduler_sp, fiber_sp[t]);
            left += !done[t];
        }
    }
    has_barrier = barriers > 0;
}

/* every block of a grid, one after another */
static void run_grid(void (*call)(void **), void **params, unsigned gx, unsigned bx)
{
    entry = call;
    entry_args = params;
    gridDim = { gx, 1, 1 };
    blockDim = { bx, 1, 1 };
    for (unsigned i = 0; i < gx; i++) {
        blockIdx = { nth(i, gx), 0, 0 };
        run_block(bx, i == 0);
    }
}

/* ---- the kernels by name, each called with cuLaunchKernel's argument pointers ---- */
template <typename... A, size_t... I>
static void invoke(void (*k)(A...), void **args, std::index_sequence<I...>)
{
    k(*static_cast<typename std::remove_reference<A>::type *>(args[I])...);
}
/* a launch kept for later: copies of its arguments, as the driver takes them at the launch */
template <typename... A, size_t... I>
static std::function<void()> bind_launch(void (*k)(A...), void (*call)(void **), void **args, unsigned gx, unsigned bx,
                                         std::index_sequence<I...>)
{
    (void)k;
    auto vals = std::make_shared<std::tuple<typename std::remove_reference<A>::type...>>(
        *static_cast<typename std::remove_reference<A>::type *>(args[I])...);
    return [vals, call, gx, bx]() {
        void *params[] = { static_cast<void *>(&std::get<I>(*vals))..., nullptr };
        run_grid(call, params, gx, bx);
    };
}
/* a kernel by name: bind makes its launch, the arguments copied as cuLaunchKernel takes them */
struct kernel_entry {
    const char *name;
    std::function<void()> (*bind)(void **args, unsigned gx, unsigned bx);
};
template <typename... A> static constexpr size_t arity(void (*)(A...)) { return sizeof...(A); }
#define CN_EMU_CALL(name) [](void **params) { invoke(name, params, std::make_index_sequence<arity(name)>{}); }
#define CN_EMU_ENTRY(name)                                                                          \
    { #name, [](void **args, unsigned gx, unsigned bx) {                                             \
         return bind_launch(name, CN_EMU_CALL(name), args, gx, bx, std::make_index_sequence<arity(name)>{}); } },
static const kernel_entry kernels[] = { CN_CU_KERNELS(CN_EMU_ENTRY) };

/* ---- stream capture: the work queued while it is on, kept in order ---- */
struct emu_graph {
    std::vector<std::function<void()>> ops;
};
static emu_graph *capture;   /* the graph being recorded, or null */
static bool capture_spoiled; /* a call that cannot be recorded came while capturing */

/* ---- the stream's work kept until the host waits for it ----
 * A real GPU runs a launch, a copy or a memset after the call has returned; a host that reads
 * what they write before it waits (cuStreamSynchronize, cuEventSynchronize on a mark after
 * them), or writes what they read while they may not have run, races the GPU. Here the work
 * waits in `pending` until the host waits for it, so such a read sees the old bytes (the
 * poison of a fresh allocation) and its test fails, as it may on the GPU. EMU_SYNC=1 runs
 * every call at once instead (to tell such a race from a wrong kernel). */
static std::vector<std::function<void()>> pending;
static unsigned long long queued, ran; /* work ever queued, and run, in stream order */
static bool deferring(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("EMU_SYNC");
        on = !(e && strcmp(e, "1") == 0);
    }
    return on;
}
/* the stream's work up to the upto-th ever queued */
static void run_until(unsigned long long upto)
{
    size_t n = 0;
    while (ran < upto && n < pending.size()) pending[n++](), ran++;
    pending.erase(pending.begin(), pending.begin() + static_cast<long>(n));
}

/* keeps op while a capture is on, else queues it (EMU_SYNC=1: runs it now); libcublas.cpp's
 * products and libcudnn.cpp's convolutions come here too */
extern "C" __attribute__((visibility("default"))) void cn_emu_queue(std::function<void()> *op)
{
    if (capture) capture->ops.push_back(std::move(*op));
    else if (deferring()) pending.push_back(std::move(*op)), queued++;
    else (*op)();
}

/* the driver's allocations (managed and page-locked): start -> bytes */
static std::map<uintptr_t, size_t> driver_memory;
static bool from_driver(uintptr_t p, size_t n)
{
    auto at = driver_memory.upper_bound(p);
    if (at == driver_memory.begin()) return false;
    --at;
    return p + n <= at->first + at->second;
}

/* ---- the driver ---- */
extern "C" {
CUresult cuInit(unsigned int) { return CUDA_SUCCESS; }
CUresult cuDeviceGetCount(int *n) { return *n = 1, CUDA_SUCCESS; }
CUresult cuDeviceGet(CUdevice *d, int) { return *d = 0, CUDA_SUCCESS; }
CUresult cuDeviceGetName(char *name, int len, CUdevice) { return snprintf(name, (size_t)len, "emulated GPU"), CUDA_SUCCESS; }
CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice)
{
    *v = a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR ? 9 : 0;
    return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice) { return *c = reinterpret_cast<CUcontext>(1), CUDA_SUCCESS; }
CUresult cuCtxSetCurrent(CUcontext) { return CUDA_SUCCESS; }
CUresult cuStreamCreate(CUstream *s, unsigned int) { return *s = reinterpret_cast<CUstream>(2), CUDA_SUCCESS; }
CUresult cuStreamSynchronize(CUstream)
{
    if (capture) return capture_spoiled = true, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    run_until(queued);
    return CUDA_SUCCESS;
}
/* events: a mark is the count of work queued when it was recorded; waiting on it runs that
 * much (never destroyed: the backend makes two) */
CUresult cuEventCreate(CUevent *e, unsigned int)
{
    return *e = reinterpret_cast<CUevent>(new unsigned long long(0)), CUDA_SUCCESS;
}
CUresult cuEventRecord(CUevent e, CUstream)
{
    if (capture) return capture_spoiled = true, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* not recorded here */
    *reinterpret_cast<unsigned long long *>(e) = queued;
    return CUDA_SUCCESS;
}
CUresult cuEventSynchronize(CUevent e)
{
    run_until(*reinterpret_cast<unsigned long long *>(e));
    return CUDA_SUCCESS;
}
CUresult cuStreamBeginCapture(CUstream, CUstreamCaptureMode)
{
    if (capture) return CUDA_ERROR_ILLEGAL_STATE;
    capture = new emu_graph, capture_spoiled = false;
    return CUDA_SUCCESS;
}
CUresult cuStreamEndCapture(CUstream, CUgraph *g)
{
    if (!capture) return CUDA_ERROR_ILLEGAL_STATE;
    emu_graph *made = capture;
    capture = nullptr;
    if (capture_spoiled) return delete made, *g = nullptr, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    *g = reinterpret_cast<CUgraph>(made);
    return CUDA_SUCCESS;
}
CUresult cuGraphInstantiate(CUgraphExec *e, CUgraph g, unsigned long long)
{
    *e = reinterpret_cast<CUgraphExec>(new emu_graph(*reinterpret_cast<emu_graph *>(g)));
    return CUDA_SUCCESS;
}
CUresult cuGraphLaunch(CUgraphExec e, CUstream)
{
    if (capture) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* not needed by the backend */
    emu_graph *g = reinterpret_cast<emu_graph *>(e);
    std::function<void()> op = [g]() {
        for (auto &node : g->ops) node();
    };
    return cn_emu_queue(&op), CUDA_SUCCESS;
}
CUresult cuGraphExecDestroy(CUgraphExec e)
{
    run_until(queued); /* a launch of it may be waiting */
    return delete reinterpret_cast<emu_graph *>(e), CUDA_SUCCESS;
}
CUresult cuGraphDestroy(CUgraph g) { return delete reinterpret_cast<emu_graph *>(g), CUDA_SUCCESS; }
CUresult cuModuleLoadData(CUmodule *m, const void *image)
{
    uint32_t magic;
    memcpy(&magic, image, 4);
    if (magic != 0xBA55ED50u) return CUDA_ERROR_INVALID_IMAGE; /* the embedded fatbin, or nothing */
    return *m = reinterpret_cast<CUmodule>(3), CUDA_SUCCESS;
}
CUresult cuModuleGetFunction(CUfunction *f, CUmodule, const char *name)
{
    for (const kernel_entry &k : kernels)
        if (!strcmp(k.name, name)) return *f = reinterpret_cast<CUfunction>(const_cast<kernel_entry *>(&k)), CUDA_SUCCESS;
    return CUDA_ERROR_NOT_FOUND;
}
CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, CUstream, void **params, void **extra)
{
    if (!gx || !bx || gy != 1 || gz != 1 || by != 1 || bz != 1 || bx > MAX_THREADS || shared || extra)
        return CUDA_ERROR_INVALID_VALUE; /* the backend launches 1-D grids of 1-D blocks only */
    std::function<void()> op = reinterpret_cast<kernel_entry *>(f)->bind(params, gx, bx); /* the arguments copied */
    return cn_emu_queue(&op), CUDA_SUCCESS;
}
CUresult cuMemAllocManaged(CUdeviceptr *p, size_t bytes, unsigned int)
{
    void *m = aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
    memset(m, 0x7f, bytes); /* poisoned: the backend must zero what it hands out */
    *p = reinterpret_cast<CUdeviceptr>(m);
    driver_memory[reinterpret_cast<uintptr_t>(m)] = bytes;
    return CUDA_SUCCESS;
}
/* freeing waits for the work queued before (as the driver's cuMemFree and cuMemFreeHost do) */
CUresult cuMemFree(CUdeviceptr p)
{
    run_until(queued);
    driver_memory.erase(static_cast<uintptr_t>(p));
    return free(reinterpret_cast<void *>(p)), CUDA_SUCCESS;
}
CUresult cuMemGetInfo(size_t *free_b, size_t *total_b)
{
    *free_b = (size_t)4 << 30, *total_b = (size_t)8 << 30;
    return CUDA_SUCCESS;
}
CUresult cuMemsetD8Async(CUdeviceptr p, unsigned char v, size_t n, CUstream)
{
    std::function<void()> op = [p, v, n]() { memset(reinterpret_cast<void *>(p), v, n); };
    return cn_emu_queue(&op), CUDA_SUCCESS;
}
CUresult cuMemAllocHost(void **p, size_t bytes)
{
    if (!(*p = aligned_alloc(256, (bytes + 255) / 256 * 256))) return CUDA_ERROR_OUT_OF_MEMORY;
    memset(*p, 0x7f, bytes);
    driver_memory[reinterpret_cast<uintptr_t>(*p)] = bytes;
    return CUDA_SUCCESS;
}
CUresult cuMemFreeHost(void *p)
{
    run_until(queued);
    driver_memory.erase(reinterpret_cast<uintptr_t>(p));
    return free(p), CUDA_SUCCESS;
}
/* From the host's own (pageable) memory the driver stages the bytes before it returns, so the
 * host may change them at once; from memory of the driver's (managed, page-locked) the copy
 * reads them when it runs. */
CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream)
{
    std::function<void()> op;
    if (!from_driver(static_cast<uintptr_t>(src), n)) {
        auto staged = std::make_shared<std::vector<unsigned char>>(reinterpret_cast<const unsigned char *>(src),
                                                                    reinterpret_cast<const unsigned char *>(src) + n);
        op = [dst, staged, n]() { memcpy(reinterpret_cast<void *>(dst), staged->data(), n); };
    } else {
        op = [dst, src, n]() { memcpy(reinterpret_cast<void *>(dst), reinterpret_cast<const void *>(src), n); };
    }
    return cn_emu_queue(&op), CUDA_SUCCESS;
}
CUresult cuGetErrorName(CUresult r, const char **s) { return *s = r ? "CUDA_ERROR_EMULATED" : "CUDA_SUCCESS", CUDA_SUCCESS; }
CUresult cuGetErrorString(CUresult, const char **s) { return *s = "an error of the emulated driver", CUDA_SUCCESS; }
}
