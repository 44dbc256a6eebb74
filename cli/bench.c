/* bench.c — `convnet bench`: images/s and ms per step of a network on random data, and per
 * layer the MACs beside the measured time and GFLOP/s, so a user sees where the time goes. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli_impl.h"
#include "../src/backend/cpu/gemm.h"
#include "../src/train/train_impl.h"

static void help(const cli_option *opts)
{
    printf("usage: convnet bench SPEC | -e TEXT [--batch N] [--train | --infer] [--seconds S] [--threads N]\n"
           "                    [--device cpu|cuda] [--precision fp32|tf32|bf16] [--shards K] [--local-bn] [--json]\n"
           "       mpirun -np N convnet bench SPEC --train ...\n\n"
           "Times training steps (forward, loss, backward, SGD with momentum) or inference (forward in\n"
           "evaluation mode, the parameters held as predict and eval hold them: batch norms folded and\n"
           "weights transformed once) on random inputs after 3 warm-up steps, for at least S seconds\n"
           "(default 2) and 5 steps. Prints images/s, ms per step, the memory (planned, and the process's\n"
           "peak), and per layer its MACs, its forward and backward time per step and the GFLOP/s that\n"
           "makes (2 FLOP per MAC forward; conv and dense backward do twice the forward's work) and how\n"
           "the backend runs it (its kernel: for convolutions, the way of the product). On the CPU the\n"
           "first line names its vector code: avx512, avx2 or generic (CONVNET_ISA=avx2 or generic runs a\n"
           "lesser CPU's code, to see what a laptop without AVX-512 gets). On a GPU the\n"
           "timed steps run unprofiled and the layers' times come from 3 more steps, each layer waited for.\n"
           "Data-parallel training (--shards, or under mpirun): the batch is the global one, cut into K shards\n"
           "shared out among the processes (as `convnet train`); the first process prints, with the time\n"
           "each step spent in communication (waiting for the others included).\n\n");
    cli_print_options(opts, 14);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmd_bench(int argc, char **argv)
{
    cli_spec spec = { 0 };
    int64_t batch = 64, threads = cn_threads();
    double min_seconds = 2;
    int train = 1, train_flag = 0, infer = 0, json = 0, local_bn = 0, threads_given = 0;
    int64_t shards = 0;
    cli_device dev = { 0 };
    const cli_option opts[] = { /* -e, --train, --infer and --seconds: the usage line and the text say them */
        { "-e", "TEXT", CLI_TEXT, &spec.text, .help = NULL },
        { "--batch", "N", CLI_INT, &batch, 1, 1 << 16, .help = "(default 64)" },
        { "--train", NULL, CLI_FLAG, &train_flag, .help = NULL },
        { "--infer", NULL, CLI_FLAG, &infer, .help = NULL },
        { "--seconds", "S", CLI_REAL, &min_seconds, .help = NULL },
        { "--threads", "N", CLI_INT, &threads, 1, 256, .given = &threads_given,
          .help = "threads (default: OMP_NUM_THREADS, else one per core; under mpirun the\n"
                  "cores shared among the processes on the machine)" },
        CLI_DEVICE_OPTIONS(dev),
        { "--shards", "K", CLI_INT, &shards, 1, 1 << 20, .help = "data-parallel: the batch in K shards (default under mpirun: one per 16 images)" },
        { "--local-bn", NULL, CLI_FLAG, &local_bn, .help = "data-parallel: batch norm per shard" },
        { "--json", NULL, CLI_FLAG, &json,
          .help = "{\"images_per_s\",\"ms_per_step\",\"steps\",\"batch\",\"mode\",\"threads\",\"device\",\"precision\",\n"
                  "\"planned_bytes\","
                  "\"peak_rss_bytes\",\"processes\",\"shards\",\"comm_ms_per_step\",\n"
                  "\"comm_least_ms_per_step\",\"graph\",\"in_flight\",\"cpu_isa\",\"comm_ms_per_process\",\n"
                  "\"layers\":[{\"name\",\"type\",\"macs\",\"forward_ms\",\"backward_ms\",\"gflops\",\"kernel\"}]}" },
        { 0 },
    };
    int usage = cli_parse_spec("bench", argc, argv, opts, help, &spec);
    if (usage != CLI_GO_ON) return usage;
    if (train_flag && infer) return cli_usage_error("bench", "--train or --infer, not both");
    train = !infer; /* training is the default */
    if (!(min_seconds >= 0)) return cli_usage_error("bench", "--seconds %g: it must be >= 0 (0: the fewest steps)", min_seconds);
    cn_set_threads((int)threads);
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    cn_net *net = NULL;
    cn_optim *opt = NULL;
    cn_step_flight *flight = NULL; /* steps in flight, as the trainer runs them on a device */
    float *x = NULL, *x_dev = NULL; /* the batch, and its copy in a device's memory */
    int32_t *labels = NULL;
    cn_parallel *par = NULL;
    int rc = 0, quiet = 0;
    int64_t row0 = 0, rows = batch; /* data-parallel: this process's rows of the batch */
    double *comm_all = NULL;       /* data-parallel: each process's communication per step */
    if (cli_load_net(ctx, spec.file, spec.text, &net) || cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 1)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    if ((rc = cli_use_device(ctx, net, &dev))) goto done;
    int on_device = dev.device != 0; /* profiling waits for each kernel: not in the timed steps there */
    int n = cn_net_layer_count(net);
    cn_layer_info in, out;
    cn_net_layer(ctx, net, 0, 1, &in);
    cn_net_layer(ctx, net, n - 1, 1, &out);
    int64_t chw = in.c * in.h * in.w, classes = out.c * out.h * out.w, elems; /* the parser bounds chw */
    if (__builtin_mul_overflow(batch, chw, &elems) || elems > INT64_MAX / (int64_t)sizeof(float)) {
        rc = cli_error("out of memory (the random inputs of %lld images of %lld values: past 64 bits of bytes)",
                       (long long)batch, (long long)chw);
        goto done;
    }
    x = malloc((size_t)elems * sizeof(float));
    labels = malloc((size_t)batch * sizeof(int32_t));
    if (!x || !labels) {
        char size[32];
        cli_bytes(size, sizeof size, elems * (int64_t)sizeof(float));
        rc = cli_error("out of memory (the random inputs: %s)", size);
        goto done;
    }
    cn_rng rng;
    cn_rng_seed(&rng, 1);
    for (int64_t i = 0; i < elems; i++) x[i] = (float)cn_rng_normal(&rng);
    for (int64_t i = 0; i < batch; i++) labels[i] = (int32_t)cn_rng_below(&rng, (uint64_t)classes);
    /* on a device the batch stays in its memory, as PyTorch's synthetic batches do (the step's
     * input copy is then the device's own); where that memory has no room, the host's */
    const cn_memory_ops *dmem = cn_net_slab_memory(net);
    if (on_device && dmem && dmem->copy && (x_dev = dmem->alloc((size_t)elems * sizeof(float))))
        dmem->copy(x_dev, x, (size_t)elems * sizeof(float));
    else if (dmem && dmem->error) dmem->error(); /* no room: forgotten */
    const float *xb = x_dev ? x_dev : x;
    cn_optim_config oc;
    cn_optim_defaults(&oc, CN_OPTIM_MOMENTUM);
    cn_step_config sc = { cn_net_default_loss(net), 0 };
    cn_net_set_input_grad(net, 0); /* as in training */
    if (!train) cn_net_hold_params(ctx, net, 1); /* as cn_model_load */
    if (cn_optim_create(ctx, net, &oc, &opt)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE");
    if (train && (shards || local_bn || launched)) {
        if (cn_parallel_open(ctx, (int)shards, local_bn, &par) ||
            cn_parallel_attach(ctx, par, net, batch, &row0, &rows)) {
            rc = cli_ctx_error(ctx);
            goto done;
        }
        quiet = cn_parallel_rank(par) > 0;
        if (!threads_given && !getenv("OMP_NUM_THREADS")) threads = cn_set_threads(cn_parallel_threads(par));
    }
    const char *fly = getenv("CN_FLIGHT");
    if (train && !par && !(fly && !strcmp(fly, "0")) && cn_step_flight_create(ctx, net, opt, &flight)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    int in_flight = flight != NULL;
    double comm0 = 0;
    int64_t steps = 0;
    double t0 = 0, elapsed = 0;
    for (int64_t s = 0;; s++) {
        if (s == 3) { /* warm-up done: plans and caches in place */
            cn_net_profile(net, !on_device);
            t0 = now();
            comm0 = cn_parallel_comm_seconds(par);
        }
        double loss;
        int64_t right;
        int landed;
        cn_status st = par      ? cn_train_step_sharded(ctx, net, opt, &sc, par, x + row0 * chw, labels + row0, rows, batch,
                                                        &loss, &right)
                       : flight ? cn_train_step_fly(ctx, net, opt, &sc, flight, xb, labels, batch, &loss, &right, &landed)
                       : train  ? cn_train_step_counted(ctx, net, opt, &sc, xb, labels, batch, &loss, &right)
                                : cn_net_forward(ctx, net, xb, batch, 0);
        if (st) {
            rc = cli_ctx_error(ctx);
            goto done;
        }
        if (s >= 3) {
            steps = s - 2;
            /* as the trainer steps: a device's update left queued behind the next step's work,
             * and waited for here once the time is up */
            elapsed = now() - t0;
            if (elapsed >= min_seconds && steps >= 5 &&
                ((flight && (st = cn_train_step_flush(ctx, net, opt, &sc, flight, &loss, &right, &landed))) ||
                 (st = cn_net_check_backend(ctx, net)))) {
                rc = cli_ctx_error(ctx);
                goto done;
            }
            elapsed = now() - t0;
            /* the first process decides for all: they stop at the same step */
            if (cn_parallel_first_says(par, steps >= 5 && elapsed >= min_seconds)) break;
        }
    }
    cn_step_flight_destroy(flight), flight = NULL; /* the profiled steps below run one at a time */
    /* every process's: the last to arrive at an exchange waits least */
    int procs = cn_parallel_size(par);
    double comm_ms = 1e3 * (cn_parallel_comm_seconds(par) - comm0) / (double)(steps ? steps : 1), comm_least = comm_ms;
    comm_all = calloc((size_t)procs, sizeof(double));
    if (!comm_all || cn_parallel_gather_items(ctx, par, procs, &comm_ms, 1, comm_all)) {
        rc = comm_all ? cli_ctx_error(ctx) : cli_error("out of memory");
        goto done;
    }
    for (int r = 0; r < procs; r++) comm_least = comm_all[r] < comm_least ? comm_all[r] : comm_least;
    double ms = 1e3 * elapsed / (double)steps, ips = (double)(batch * steps) / elapsed;
    int replayed = train && cn_net_has_recording(net); /* the timed steps replayed a recording (CUDA graph) */
    int64_t profiled = steps;
    if (on_device) { /* the layers' times: a few more steps, each kernel waited for */
        double loss;
        cn_net_profile(net, 1);
        for (profiled = 0; profiled < 3; profiled++)
            if (train ? cn_train_step(ctx, net, opt, &sc, xb, labels, batch, &loss) : cn_net_forward(ctx, net, xb, batch, 0)) {
                rc = cli_ctx_error(ctx);
                goto done;
            }
    }
    cn_memory mem;
    cn_net_memory(ctx, net, batch, CN_OPTIM_NESTEROV, &mem);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int64_t planned = train ? mem.training_total : mem.inference_total, rss = (int64_t)ru.ru_maxrss * 1024;
    if (quiet) goto done; /* the first process prints */
    if (json) {
        printf("{\"images_per_s\":%.1f,\"ms_per_step\":%.3f,\"steps\":%lld,\"batch\":%lld,\"mode\":\"%s\",\"threads\":%lld,"
               "\"device\":\"%s\",\"precision\":\"%s\",\"planned_bytes\":%lld,\"peak_rss_bytes\":%lld,"
               "\"processes\":%d,\"shards\":%d,\"comm_ms_per_step\":%.3f,\"comm_least_ms_per_step\":%.3f,"
               "\"graph\":%s,\"in_flight\":%s,\"cpu_isa\":\"%s\",",
               ips, ms, (long long)steps, (long long)batch, train ? "train" : "infer", (long long)threads,
               cli_devices[dev.device], cli_precisions[dev.precision], (long long)planned, (long long)rss,
               cn_parallel_size(par), par ? cn_parallel_shards(par, batch) : 1, par ? comm_ms : 0.0, par ? comm_least : 0.0,
               replayed ? "true" : "false", in_flight ? "true" : "false", cn_cpu_isa_name());
        printf("\"comm_ms_per_process\":[");
        for (int r = 0; r < procs; r++) printf("%s%.3f", r ? "," : "", par ? comm_all[r] : 0.0);
        printf("],\"layers\":[");
    } else {
        char b1[32], b2[32];
        cli_bytes(b1, sizeof b1, planned);
        cli_bytes(b2, sizeof b2, rss);
        if (on_device)
            printf("on %s (%s)%s%s\n", cli_devices[dev.device], cli_precisions[dev.precision],
                   replayed ? ", each step after the second replayed as one CUDA graph" : "",
                   in_flight ? ", the next step queued before the last is read" : "");
        /* the CPU's vector code named where the CPU computes (CONVNET_ISA lowers it) */
        char isa[32] = "";
        if (!on_device) snprintf(isa, sizeof isa, " (%s)", cn_cpu_isa_name());
        printf("%s, batch %lld, %s, %lld thread%s%s: %.0f images/s, %.3f ms per step (%lld steps)\n"
               "memory: %s planned, %s peak resident\n",
               spec.file ? spec.file : "-e", (long long)batch, train ? "training" : "inference", (long long)threads,
               threads == 1 ? "" : "s", isa, ips, ms, (long long)steps, b1, b2);
        if (par)
            printf("data-parallel: %d process%s, %d shards; communication %.3f ms per step (%.0f%%, waiting included; "
                   "the least of any process %.3f ms)\n", cn_parallel_size(par), cn_parallel_size(par) > 1 ? "es" : "",
                   cn_parallel_shards(par, batch), comm_ms, 100 * comm_ms / ms, comm_least);
        printf("\n%-16s %-13s %15s %11s %11s %9s  %s\n", "layer", "type", "MACs", "fwd ms", "bwd ms", "GFLOP/s", "kernel");
    }
    double total_layers = 0;
    for (int i = 1; i < n; i++) {
        cn_layer_info li;
        double f, b;
        cn_net_layer(ctx, net, i, batch, &li);
        cn_net_profile_get(net, i, &f, &b);
        f /= (double)profiled, b /= (double)profiled;
        total_layers += f + b;
        /* conv and dense backward: dx and dW, each as much work as the forward */
        double flop = 2.0 * (double)li.macs * (train ? 3.0 : 1.0), t = f + b;
        double gflops = li.macs > 0 && t > 0 ? flop / t / 1e9 : 0;
        if (json) {
            printf("%s{\"name\":", i > 1 ? "," : "");
            cli_json_string(stdout, li.name);
            printf(",\"type\":\"%s\",\"macs\":%lld,\"forward_ms\":%.4f,\"backward_ms\":%.4f,\"gflops\":%.2f,\"kernel\":",
                   li.type, (long long)li.macs, 1e3 * f, 1e3 * b, gflops);
            cli_json_string(stdout, cn_net_layer_kernel(net, i));
            printf("}");
        } else {
            char m[32], g[16] = "-";
            cli_count(m, sizeof m, li.macs);
            if (li.macs > 0) snprintf(g, sizeof g, "%.1f", gflops);
            printf("%-16s %-13s %15s %11.3f %11.3f %9s  %s\n", li.name, li.type, m, 1e3 * f, train ? 1e3 * b : 0.0, g,
                   cn_net_layer_kernel(net, i));
        }
    }
    if (json) printf("]}\n");
    else printf("\nlayers %.3f ms of the %.3f ms step; the rest is the loss, the update and the copies\n", 1e3 * total_layers, ms);
done:
    cn_step_flight_destroy(flight);
    free(comm_all);
    if (par) cn_parallel_detach(ctx, par, net);
    if (rc && cn_parallel_size(par) > 1) cn_parallel_abort(par, rc);
    cn_parallel_close(par);
    if (x_dev) cn_net_slab_memory(net)->release(x_dev);
    free(x);
    free(labels);
    cn_optim_destroy(opt);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    return rc;
}
