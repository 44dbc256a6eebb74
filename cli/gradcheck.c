/* gradcheck.c — `convnet gradcheck`: every layer of the user's network checked by central
 * differences in double precision; exit status 1 when any layer is off. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_impl.h"

#define DEFAULT_TOLERANCE 1e-06 /* --help prints it as written */
#define STR(x) STR_(x)
#define STR_(x) #x

static void help(const cli_option *opts)
{
    printf("usage: convnet gradcheck SPEC | -e TEXT [--seed S] [--batch N] [--samples K] [--eval]\n"
           "                         [--tolerance T] [--json]\n\n"
           "Checks the backward pass of every layer of the network: random inputs, parameters and\n"
           "output gradient (from the seed), then for up to K coordinates of each input and parameter\n"
           "tensor the numeric derivative (L(v+e) - L(v-e)) / 2e, in double precision, against the\n"
           "layer's own gradient. The error of a layer is max |analytic - numeric| / max |numeric|.\n"
           "Exit status 1 when any layer's error exceeds the tolerance.\n\n"
           "options:\n");
    cli_print_options(opts, 16);
}

int cmd_gradcheck(int argc, char **argv)
{
    cli_spec spec = { 0 };
    int64_t seed = 1, batch = 2, samples = 32;
    int json = 0, training = 1;
    double tol = DEFAULT_TOLERANCE;
    const cli_option opts[] = {
        { "-e", "TEXT", CLI_TEXT, &spec.text, .help = "the spec inline" },
        { "--seed", "S", CLI_INT, &seed, 0, INT64_MAX, .help = "random seed (default 1)" },
        { "--batch", "N", CLI_INT, &batch, 1, 4096, .help = "samples per check (default 2; batch norm needs 2 or more)" },
        { "--samples", "K", CLI_INT, &samples, 1, 256, .help = "coordinates checked per tensor (default 32, at most 256)" },
        { "--eval", NULL, CLI_SET, &training, 0,
          .help = "check evaluation mode (running statistics, no dropout) instead of training" },
        { "--tolerance", "T", CLI_REAL, &tol, .help = "largest error accepted (default " STR(DEFAULT_TOLERANCE) ")" },
        { "--json", NULL, CLI_FLAG, &json, .help = "{\"layers\":[{\"name\",\"type\",\"max_rel_err\"}],\"max_rel_err\"}" },
        { 0 },
    };
    int usage = cli_parse_spec("gradcheck", argc, argv, opts, help, &spec);
    if (usage != CLI_GO_ON) return usage;
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    cn_net *net = NULL;
    double *errs = NULL, worst = 0;
    int rc = 0;
    cn_status st = cli_load_net(ctx, spec.file, spec.text, &net);
    if (!st && !(errs = calloc((size_t)cn_net_layer_count(net), sizeof *errs))) st = CN_E_NOMEM;
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
        printf(",\"mode\":\"%s\"}\n", training ? "training" : "eval");
    } else {
        printf("worst %.3e (tolerance %g, %s mode, batch %lld, seed %lld): %s\n", worst, tol,
               training ? "training" : "eval", (long long)batch, (long long)seed, bad ? "FAIL" : "ok");
    }
    rc = bad ? 1 : 0;
done:
    free(errs);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    return rc;
}
