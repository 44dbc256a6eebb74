/* emu_queue.h — for the emulated libraries beside libcuda.cpp (libcublas.cpp, libcudnn.cpp):
 * their work goes through libcuda.cpp's queue, which runs it now, or keeps it while the stream
 * is being captured (a CUDA graph's node). */
#ifndef CN_EMU_QUEUE_H
#define CN_EMU_QUEUE_H

#include <dlfcn.h>

#include <functional>

static void queue(std::function<void()> op)
{
    static void (*to)(std::function<void()> *);
    if (!to) {
        void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
        to = lib ? reinterpret_cast<void (*)(std::function<void()> *)>(dlsym(lib, "cn_emu_queue")) : nullptr;
    }
    if (to) to(&op);
    else op();
}

#endif
