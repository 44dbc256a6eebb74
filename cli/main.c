/* main.c — `convnet <command> …`: dispatch, --help, --version; a short OpenMP spin (below). */
#define _POSIX_C_SOURCE 200809L /* setenv, readlink, execv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_impl.h"
#include "../src/backend/cpu/gemm.h" /* cn_cpu_isa_known */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} commands[] = {
    { "summary", cmd_summary, "shapes, parameters, MACs and receptive field of every layer" },
    { "calc", cmd_calc, "worksheet quantities: softmax, losses, optimizer steps, receptive fields, conv, pooling" },
    { "trace", cmd_trace, "one training step of a small net worked out: every sum, gradient and update" },
    { "filter", cmd_filter, "apply a kernel (edge, sharpen, blur, ... or your own) to an image, as a conv layer does" },
    { "train", cmd_train, "train a network on images, with checkpoints, progress and mean +- std over seeds" },
    { "eval", cmd_eval, "accuracy, top-k, loss, per-class scores and confusion matrix of a checkpoint" },
    { "predict", cmd_predict, "the top classes of image files" },
    { "show", cmd_show, "a conv layer's learned kernels, or an image's activation maps, as a labelled grid PNG" },
    { "report", cmd_report, "DIR/report.html: a training run's charts, confusion matrix, model and test images" },
    { "bench", cmd_bench, "images/s of a network, and where each step's time goes, layer by layer" },
    { "data", cmd_data, "check a data set before training: decoding, labels, duplicates, classes" },
    { "export", cmd_export, "a checkpoint as an ONNX model (for ONNX Runtime, PyTorch, ...)" },
    { "import", cmd_import, "an ONNX model (as PyTorch exports) as a run folder: spec and checkpoint" },
    { "gradcheck", cmd_gradcheck, "check every layer's backward pass by central differences" },
    { "gradflow", cmd_gradflow, "the size of every layer's output, gradient and weight on a batch: vanishing gradients" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: convnet <command> [options]\n\n"
               "convnet explains, checks and runs convolutional networks written in a few readable lines.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\nEvery command takes --help. Exit status: 0 ok, 1 error, 2 bad usage.\n"
               "Environment: CONVNET_ISA=avx2 or generic runs the CPU's matrix products and hand-written vector\n"
               "kernels as a CPU without AVX-512 (or without AVX2) would; `convnet bench` names the one in use.\n"
               "Example: convnet summary -e 'input 64x64x3; conv 32 3x3 pad=1' --explain\n");
}

/* libgomp's threads spin 300,000 times (milliseconds) at a barrier before they sleep. On a
 * machine shared with a busy process, a spinning thread holds the core that the thread it waits
 * for needs: two threads trained up to 1.8x slower than one. 1000 spins keep the default near the
 * best thread count and cost a few percent on an idle machine (README "On a busy machine",
 * bench/threads_load.sh). libgomp reads GOMP_SPINCOUNT before main, so convnet runs itself again,
 * once, with it set. A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept; a failed exec goes on. */
static void spin_short(char **argv)
{
    char exe[4096];
    /* the user's setting, or this is the second run */
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    /* the file's own path, not /proc/self/exe: ps and top name the process after it */
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || n >= (ssize_t)sizeof exe - 1 || setenv("GOMP_SPINCOUNT", "1000", 1) != 0) return;
    exe[n] = '\0';
    execv(exe, argv);
    unsetenv("GOMP_SPINCOUNT");
}

/* CONVNET_ISA lowers the CPU's vector code (src/backend/cpu/gemm.c reads it); a value it does not
 * know would be ignored there, so it is refused here */
static int isa_known(void)
{
    const char *isa = getenv("CONVNET_ISA");
    if (!isa || !*isa || cn_cpu_isa_known(isa)) return 1;
    fprintf(stderr, "convnet: CONVNET_ISA=%s: expected avx512, avx2 or generic (the CPU's vector code, lowered)\n", isa);
    return 0;
}

int main(int argc, char **argv)
{
    spin_short(argv);
    if (!isa_known()) return EXIT_USAGE;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (argc > 2 && strcmp(cmd, "help") == 0) {
            for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (!strcmp(argv[2], commands[i].name)) {
                    char *args[] = { argv[2], "--help", NULL };
                    return commands[i].run(1, args + 1);
                }
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("convnet %s\n", CN_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].run(argc - 2, argv + 2);
    const char *names[sizeof commands / sizeof commands[0] + 1];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) names[i] = commands[i].name;
    names[sizeof commands / sizeof commands[0]] = NULL;
    const char *best = cli_closest(cmd, names);
    if (best) fprintf(stderr, "convnet: unknown command '%s' (did you mean '%s'?)\n", cmd, best);
    else fprintf(stderr, "convnet: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
