/* gradcheck.c — `convnet gradcheck`: every layer of the user's network checked by central
 * differences in double precision; exit status 1 when any layer is off. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"

#define DEFAULT_TOLERANCE 1e-06 /* --help prints it as written */
#define STR(x) STR_(x)
#define STR_(x) #x

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e; /* NaN sticks */
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return s > 0 ? d / s : d;
}

/* one float forward and backward on the CPU and on the device from the same weights, inputs and
 * output gradient: the worst of the three relative errors in *err */
static cn_status device_check(cn_ctx *ctx, const cli_spec *spec, const cli_device *dev, uint64_t seed, int64_t batch,
                              int training, double err[3])
{
    cn_net *cpu = NULL, *gpu = NULL;
    float *x = NULL, *dy = NULL;
    cn_status st = cli_load_net(ctx, spec->file, spec->text, &cpu);
    if (!st) st = cli_load_net(ctx, spec->file, spec->text, &gpu);
    if (!st) st = cn_net_init_params(ctx, cpu, CN_INIT_KAIMING_UNIFORM, seed);
    if (!st) st = cn_net_init_params(ctx, gpu, CN_INIT_KAIMING_UNIFORM, seed);
    if (!st) st = cn_net_set_device(ctx, gpu, cli_devices[dev->device], (cn_precision)dev->precision);
    if (st) goto done;
    cn_layer_info in, out;
    cn_net_layer(ctx, cpu, 0, 1, &in);
    cn_net_layer(ctx, cpu, cn_net_layer_count(cpu) - 1, 1, &out);
    int64_t nx = in.c * in.h * in.w * batch, ny = out.c * out.h * out.w * batch, nw;
    x = malloc((size_t)nx * sizeof(float)), dy = malloc((size_t)ny * sizeof(float));
    if (!x || !dy) {
        st = CN_E_NOMEM;
        goto done;
    }
    cn_rng rng;
    cn_rng_seed(&rng, seed);
    for (int64_t i = 0; i < nx; i++) x[i] = (float)cn_rng_normal(&rng);
    for (int64_t i = 0; i < ny; i++) dy[i] = (float)cn_rng_normal(&rng);
    cn_net *nets[2] = { cpu, gpu };
    for (int k = 0; k < 2 && !st; k++) {
        cn_net_zero_grad(nets[k]);
        st = cn_net_forward(ctx, nets[k], x, batch, training);
        if (!st) st = cn_net_backward(ctx, nets[k], dy);
    }
    if (st) goto done;
    err[0] = rel_err(cn_net_output(gpu, NULL), cn_net_output(cpu, NULL), ny);
    err[1] = rel_err(cn_net_input_grad(gpu), cn_net_input_grad(cpu), nx);
    const float *ga = cn_net_grads(gpu, &nw), *gb = cn_net_grads(cpu, NULL);
    err[2] = rel_err(ga, gb, nw);
done:
    free(x), free(dy);
    cn_net_destroy(cpu), cn_net_destroy(gpu);
    return st;
}

static void help(const cli_option *opts)
{
    printf("usage: convnet gradcheck SPEC | -e TEXT [--seed S] [--batch N] [--samples K] [--eval]\n"
           "                         [--tolerance T] [--device cpu|cuda] [--precision fp32|tf32|bf16] [--json]\n\n"
           "Checks the backward pass of every layer of the network: random inputs, parameters and\n"
           "output gradient (from the seed), then for up to K coordinates of each input and parameter\n"
           "tensor the numeric derivative (L(v+e) - L(v-e)) / 2e, in double precision, against the\n"
           "layer's own gradient. The error of a layer is max |analytic - numeric| / max |numeric|.\n"
           "With --device cuda, the device's float forward and backward of the whole net also run\n"
           "against the CPU's from the same weights and inputs: max |device - cpu| / max |cpu| of the\n"
           "output, the input gradient and the parameter gradients must stay under 1e-5 (tf32: 1e-3,\n"
           "bf16: 1e-2; a value that rounding moves across a kink, such as a relu's 0 or a maxpool's\n"
           "choice, can exceed it in bf16 on a net that has one).\n"
           "Exit status 1 when any layer's error exceeds the tolerance.\n\n"
           "options:\n");
    cli_print_options(opts, 16);
}

int cmd_gradcheck(int argc, char **argv)
{
    cli_spec spec = { 0 };
    int64_t seed = 1, batch = 2, samples = 32;
    int json = 0, training = 1;
    double tol = DEFAULT_TOLERANCE, dev_err[3] = { 0, 0, 0 };
    cli_device dev = { 0 };
    const cli_option opts[] = {
        { "-e", "TEXT", CLI_TEXT, &spec.text, .help = "the spec inline" },
        { "--seed", "S", CLI_INT, &seed, 0, INT64_MAX, .help = "random seed (default 1)" },
        { "--batch", "N", CLI_INT, &batch, 1, 4096, .help = "samples per check (default 2; batch norm needs 2 or more)" },
        { "--samples", "K", CLI_INT, &samples, 1, 256, .help = "coordinates checked per tensor (default 32, at most 256)" },
        { "--eval", NULL, CLI_SET, &training, 0,
          .help = "check evaluation mode (running statistics, no dropout) instead of training" },
        { "--tolerance", "T", CLI_REAL, &tol, .help = "largest error accepted (default " STR(DEFAULT_TOLERANCE) ")" },
        CLI_DEVICE_OPTIONS(dev),
        { "--json", NULL, CLI_FLAG, &json, .help = "{\"layers\":[{\"name\",\"type\",\"max_rel_err\"}],\"max_rel_err\"}" },
        { 0 },
    };
    int usage = cli_parse_spec("gradcheck", argc, argv, opts, help, &spec);
    if (usage != CLI_GO_ON) return usage;
    if (!(tol >= 0)) return cli_usage_error("gradcheck", "--tolerance %g: it must be >= 0", tol);
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    cn_net *net = NULL;
    double *errs = NULL, worst = 0;
    int rc = 0;
    cn_status st = cli_load_net(ctx, spec.file, spec.text, &net);
    if (!st && !(errs = calloc((size_t)cn_net_layer_count(net), sizeof *errs))) st = CN_E_NOMEM;
    if (!st && dev.device) st = device_check(ctx, &spec, &dev, (uint64_t)seed, batch, training, dev_err);
    if (!st) st = cn_net_gradcheck(ctx, net, (uint64_t)seed, batch, training, (int)samples, errs, &worst);
    if (st) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    int bad = 0;
    if (json) printf("{\"layers\":[");
    else printf("%-16s %-14s %14s\n", "layer", "type", "max_rel_err");
    for (int i = 1; i < cn_net_layer_count(net); i++) {
        cn_layer_info li;
        cn_net_layer(ctx, net, i, 1, &li);
        int ok = errs[i] <= tol; /* NaN fails */
        bad |= !ok;
        if (json) {
            printf("%s{\"name\":", i > 1 ? "," : "");
            cli_json_string(stdout, li.name);
            printf(",\"type\":\"%s\",\"max_rel_err\":", li.type);
            cli_json_float(stdout, errs[i], 0);
            printf("}");
        } else {
            printf("%-16s %-14s %14.3e  %s\n", li.name, li.type, errs[i], ok ? "ok" : "FAIL");
        }
    }
    if (json) {
        printf("],\"max_rel_err\":");
        cli_json_float(stdout, worst, 0);
        printf(",\"tolerance\":");
        cli_json_float(stdout, tol, 0);
        printf(",\"mode\":\"%s\"", training ? "training" : "eval");
        if (dev.device) {
            printf(",\"device\":\"%s\",\"precision\":\"%s\",\"device_rel_err\":[", cli_devices[dev.device],
                   cli_precisions[dev.precision]);
            for (int k = 0; k < 3; k++) printf("%s", k ? "," : ""), cli_json_float(stdout, dev_err[k], 0);
            printf("]");
        }
        printf("}\n");
    } else {
        printf("worst %.3e (tolerance %g, %s mode, batch %lld, seed %lld): %s\n", worst, tol,
               training ? "training" : "eval", (long long)batch, (long long)seed, bad ? "FAIL" : "ok");
    }
    if (dev.device) {
        double dev_tol = dev.precision == CN_PRECISION_BF16 ? 1e-2 : dev.precision == CN_PRECISION_TF32 ? 1e-3 : 1e-5;
        int dev_ok = dev_err[0] <= dev_tol && dev_err[1] <= dev_tol && dev_err[2] <= dev_tol; /* NaN fails */
        bad |= !dev_ok;
        if (!json)
            printf("%s (%s) against the cpu: output %.1e, input gradient %.1e, parameter gradients %.1e "
                   "(tolerance %g): %s\n",
                   cli_devices[dev.device], cli_precisions[dev.precision], dev_err[0], dev_err[1], dev_err[2], dev_tol,
                   dev_ok ? "ok" : "FAIL");
    }
    rc = bad ? 1 : 0;
done:
    free(errs);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    return rc;
}
