/* darknet_bench.c — times darknet (Debian's libdarknet, 2018) on a cfg with random data, as
 * `convnet bench` times convnet: training steps (forward, softmax cross-entropy, backward, SGD
 * with momentum: train_network_datum) or inference (network_predict, evaluation mode).
 * A benchmark program only: never linked into convnet. bench/run.py builds it with
 *     gcc -O2 bench/darknet_bench.c -I/usr/lib/darknet/include -L/usr/lib/darknet -ldarknet \
 *         -Wl,-rpath,/usr/lib/darknet -o bench/out/darknet_bench
 * Usage: darknet_bench CFG --train|--infer [--batch N] [--seconds S] [--reps R]
 * The batch defaults to the cfg's; a smaller one is set with set_batch_network (darknet
 * allocates its buffers for the cfg's batch, so a larger one is refused). After a warm-up of at
 * least 0.3 s and 2 steps (1 where a step takes over 2 s), it runs R repetitions (default 5) of as many steps as take about S
 * seconds (default 1) and keeps the best. darknet has one thread: its GEMM is its own, plain C.
 * Prints one JSON object on stdout (darknet's own layer table goes to stderr):
 *     {"images_per_s","ms_per_step","steps","batch","mode","params"} */
#define _POSIX_C_SOURCE 200809L
#include <darknet.h>
#include <math.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *data_in; /* batch x inputs */
static int training;

static void step(network *net)
{
    if (training) {
        float err = train_network_datum(net);
        if (!isfinite(err)) {
            fprintf(stderr, "darknet_bench: the loss is not finite\n");
            exit(1);
        }
    } else {
        network_predict(net, data_in);
    }
}

/* trainable parameters as convnet counts them: weights, biases (the BN beta where batch norm is
 * on), BN gamma; not the running statistics */
static long count_params(const network *net)
{
    long p = 0;
    for (int i = 0; i < net->n; i++) {
        const layer *l = &net->layers[i];
        if (l->type == CONVOLUTIONAL) p += (long)l->c / l->groups * l->n * l->size * l->size + l->n + (l->batch_normalize ? l->n : 0);
        else if (l->type == CONNECTED) p += (long)l->inputs * l->outputs + l->outputs + (l->batch_normalize ? l->outputs : 0);
    }
    return p;
}

int main(int argc, char **argv)
{
    const char *cfg = NULL;
    int batch = 0, reps = 5, mode = -1;
    double seconds = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--train")) mode = 1;
        else if (!strcmp(argv[i], "--infer")) mode = 0;
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !cfg) cfg = argv[i];
        else mode = -2;
    }
    if (!cfg || mode < 0 || reps < 1 || seconds <= 0) {
        fprintf(stderr, "usage: darknet_bench CFG --train|--infer [--batch N] [--seconds S] [--reps R]\n");
        return 2;
    }
    training = mode;
    srand(1);
    network *net = parse_network_cfg((char *)cfg);
    if (batch <= 0) batch = net->batch;
    if (batch > net->batch) {
        fprintf(stderr, "darknet_bench: batch %d is larger than the cfg's %d\n", batch, net->batch);
        return 2;
    }
    if (batch != net->batch) set_batch_network(net, batch);

    /* random inputs in [-1, 1); one-hot truths of random classes */
    data_in = malloc((size_t)batch * net->inputs * sizeof(float));
    for (long i = 0; i < (long)batch * net->inputs; i++) data_in[i] = 2.0f * rand() / (float)RAND_MAX - 1.0f;
    memcpy(net->input, data_in, (size_t)batch * net->inputs * sizeof(float));
    memset(net->truth, 0, (size_t)batch * net->truths * sizeof(float));
    for (int b = 0; b < batch; b++) net->truth[b * net->truths + rand() % net->truths] = 1;

    double t0 = now();
    int warm = 0;
    do {
        step(net);
        warm++;
    } while (warm < 2 && now() - t0 < 2); /* a net slower than 2 s a step warms up with one */
    while (now() - t0 < 0.3) step(net), warm++;
    double per_step = (now() - t0) / warm; /* an upper bound, for sizing the repetitions */
    long steps = (long)(seconds / per_step);
    if (steps < 1) steps = 1;
    double best = 1e300;
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (long s = 0; s < steps; s++) step(net);
        t = now() - t;
        if (t < best) best = t;
    }
    double ms = 1e3 * best / (double)steps;
    printf("{\"images_per_s\":%.1f,\"ms_per_step\":%.4f,\"steps\":%ld,\"batch\":%d,\"mode\":\"%s\",\"params\":%ld}\n",
           batch * 1e3 / ms, ms, steps, batch, training ? "train" : "infer", count_params(net));
    free(data_in);
    free_network(net);
    return 0;
}
