/* train.c — `convnet train`: a training run with a progress bar (on a terminal) or a line per
 * epoch, the epoch table, checkpoints and metrics.csv in --out, test accuracy at the end, and
 * --seeds N for mean +- sample std over N runs. `--resume DIR` continues a run exactly. */
#define _POSIX_C_SOURCE 200809L /* strdup, strndup */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_impl.h"

static void help(void)
{
    printf("usage: convnet train SPEC | -e TEXT [options]\n"
           "       convnet train --resume DIR\n\n"
           "Trains the network of SPEC on a data set, shows progress, keeps checkpoints, and reports the\n"
           "test accuracy. The defaults are a good recipe for Fashion-MNIST (SGD with Nesterov momentum,\n"
           "one-cycle learning rate to 0.05, weight decay 5e-4, batch 64, 10 epochs).\n\n"
           "data:\n"
           "  --data D             an MNIST-format folder (train-* and t10k-* IDX files, .gz or not) or a\n"
           "                       folder of class sub-folders of PNG/JPEG images (default: fashion-mnist,\n"
           "                       Debian's copy in %s)\n"
           "  --val F              fraction of the training images held out for validation (default 0.1)\n"
           "  --crop P             augmentation: random crop after zero-padding by P pixels (default 0)\n"
           "  --flip               augmentation: random horizontal flips\n"
           "training:\n"
           "  --epochs N           (default 10)\n"
           "  --batch N            (default 64)\n"
           "  --optimizer K        sgd, momentum, nesterov (default), adam, adamw\n"
           "  --lr X               learning rate, the peak for one-cycle (default 0.05)\n"
           "  --momentum M         (default 0.9)\n"
           "  --schedule S         constant, step, cosine, onecycle (default)\n"
           "  --warmup N           linear warm-up steps (constant, step, cosine)\n"
           "  --step-size N        step schedule: steps between decays (gamma 0.1)\n"
           "  --weight-decay X     L2 (decoupled for adamw) (default 5e-4)\n"
           "  --l1 X               L1 penalty\n"
           "  --clip X             clip the gradient's global norm to X\n"
           "  --label-smoothing X  (default 0)\n"
           "  --init I             kaiming (default), kaiming-uniform, xavier, xavier-uniform\n"
           "  --seed S             (default 1); the same seed gives the same weights, bit for bit\n"
           "  --seeds N            train N times (seeds S, S+1, ...) and report mean +- sample std\n"
           "output:\n"
           "  --out DIR            model.safetensors (best by validation), last.safetensors (to resume),\n"
           "                       metrics.csv, report.html (default runs/<spec name>)\n"
           "  --resume DIR         continue the run in DIR from its last completed epoch\n"
           "  --quiet              no progress, only the final result\n"
           "  --threads N          threads for the kernels (default: OMP_NUM_THREADS, else one per core);\n"
           "                       the same bits on any number\n",
           CLI_FASHION_MNIST);
}

typedef struct {
    const char *spec, *spec_text, *data, *out, *resume;
    cn_train_config cfg;
    int64_t seeds;
    int quiet;
} train_opts;

static int parse_choice(const char *what, const char *v, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return 0;
        }
    const char *best = cli_closest(v, names);
    if (best) return cli_usage_error("train", "%s: unknown '%s' (did you mean '%s'?)", what, v, best);
    return cli_usage_error("train", "%s: unknown '%s'", what, v);
}

static int parse_args(int argc, char **argv, train_opts *o)
{
    static const char *const known[] = { "-e", "--data", "--val", "--crop", "--flip", "--epochs", "--batch", "--optimizer",
                                         "--lr", "--momentum", "--schedule", "--warmup", "--step-size", "--weight-decay",
                                         "--l1", "--clip", "--label-smoothing", "--init", "--seed", "--seeds", "--out",
                                         "--resume", "--quiet", "--threads", "--help", NULL };
    static const char *const optims[] = { "sgd", "momentum", "nesterov", "adam", "adamw", NULL };
    static const char *const scheds[] = { "constant", "step", "cosine", "onecycle", NULL };
    static const char *const inits[] = { "kaiming", "kaiming-uniform", "xavier", "xavier-uniform", NULL };
    cn_train_config *c = &o->cfg;
    int64_t v;
    int k, lr_set = 0, wd_set = 0;
    cli_args a;
    cli_args_init(&a, "train", argc, argv);
#define INT_OPT(name, lo, hi, dst) \
    else if (cli_opt(&a, name)) { if (cli_parse_int("train", name, a.value, lo, hi, &v)) return EXIT_USAGE; dst = v; }
#define REAL_OPT(name, dst) \
    else if (cli_opt(&a, name)) { if (cli_parse_double("train", name, a.value, &dst)) return EXIT_USAGE; }
    while (cli_more(&a)) {
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            help();
            return -1;
        }
        else if (cli_opt(&a, "-e")) o->spec_text = a.value;
        else if (cli_opt(&a, "--data")) o->data = a.value;
        else if (cli_opt(&a, "--out")) o->out = a.value;
        else if (cli_opt(&a, "--resume")) o->resume = a.value;
        else if (cli_flag(&a, "--flip")) c->flip = 1;
        else if (cli_flag(&a, "--quiet")) o->quiet = 1;
        else if (cli_opt(&a, "--threads")) {
            if (cli_threads("train", a.value)) return EXIT_USAGE;
        }
        INT_OPT("--epochs", 1, 100000, c->epochs)
        INT_OPT("--batch", 1, 1 << 20, c->batch)
        INT_OPT("--crop", 0, 64, c->crop_pad)
        INT_OPT("--warmup", 0, INT64_C(1) << 40, c->optim.warmup_steps)
        INT_OPT("--step-size", 1, INT64_C(1) << 40, c->optim.step_size)
        INT_OPT("--seed", 0, INT64_MAX, c->seed)
        INT_OPT("--seeds", 1, 1000, o->seeds)
        REAL_OPT("--val", c->val_fraction)
        REAL_OPT("--momentum", c->optim.momentum)
        REAL_OPT("--l1", c->optim.l1)
        REAL_OPT("--clip", c->optim.clip_norm)
        REAL_OPT("--label-smoothing", c->label_smoothing)
        else if (cli_opt(&a, "--lr")) {
            if (cli_parse_double("train", "--lr", a.value, &c->optim.lr)) return EXIT_USAGE;
            lr_set = 1;
        } else if (cli_opt(&a, "--weight-decay")) {
            if (cli_parse_double("train", "--weight-decay", a.value, &c->optim.weight_decay)) return EXIT_USAGE;
            wd_set = 1;
        } else if (cli_opt(&a, "--optimizer")) {
            if (parse_choice("--optimizer", a.value, optims, 5, &k)) return EXIT_USAGE;
            double lr = c->optim.lr, wd = c->optim.weight_decay;
            cn_optim_config keep = c->optim;
            cn_optim_defaults(&c->optim, (cn_optim_kind)k);
            c->optim.schedule = keep.schedule, c->optim.warmup_steps = keep.warmup_steps;
            c->optim.step_size = keep.step_size, c->optim.pct_start = keep.pct_start;
            c->optim.clip_norm = keep.clip_norm, c->optim.l1 = keep.l1, c->optim.momentum = keep.momentum;
            if (lr_set) c->optim.lr = lr;
            else if (k == CN_OPTIM_ADAM || k == CN_OPTIM_ADAMW) c->optim.lr = keep.schedule == CN_SCHED_ONECYCLE ? 3e-3 : 1e-3;
            c->optim.weight_decay = wd_set ? wd : keep.weight_decay;
        } else if (cli_opt(&a, "--schedule")) {
            if (parse_choice("--schedule", a.value, scheds, 4, &k)) return EXIT_USAGE;
            c->optim.schedule = (cn_schedule)k;
        } else if (cli_opt(&a, "--init")) {
            if (parse_choice("--init", a.value, inits, 4, &k)) return EXIT_USAGE;
            c->init = (cn_init)k;
        } else if (a.failed) {
            break;
        } else if (!cli_is_option(cli_peek(&a)) && !o->spec) {
            o->spec = cli_next(&a);
        } else {
            return cli_unknown(&a, known);
        }
    }
#undef INT_OPT
#undef REAL_OPT
    return a.failed ? EXIT_USAGE : 0;
}

/* ---- progress ------------------------------------------------------------------------------ */

typedef struct {
    int tty, quiet, header, has_test;
    int64_t seed, seeds;
} progress_state;

static void clock_text(char *buf, size_t cap, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

static int on_progress(void *user, const cn_train_progress *p)
{
    progress_state *s = user;
    if (s->quiet) return 0;
    char eta[32];
    if (!p->epoch_done) {
        if (!s->tty || (p->batch % 10 && p->batch != p->batches)) return 0;
        int width = 24, fill = (int)(width * p->batch / p->batches);
        clock_text(eta, sizeof eta, p->eta_seconds);
        fprintf(stderr, "\repoch %lld/%lld [%.*s%*s] %lld/%lld  %6.0f img/s  loss %.4f  acc %5.1f%%  ETA %s ",
                (long long)p->epoch, (long long)p->epochs, fill, "========================", width - fill, "",
                (long long)p->batch, (long long)p->batches, p->images_per_s, p->loss, 100 * p->acc, eta);
        fflush(stderr);
        return 0;
    }
    if (s->tty) fprintf(stderr, "\r%*s\r", 110, "");
    if (!s->header) {
        if (s->seeds > 1) printf("seed %lld\n", (long long)s->seed);
        printf("%5s  %10s  %9s  %9s  %8s  %9s  %8s  %s\n", "epoch", "train loss", "train acc", "val loss", "val acc",
               "lr", "time", "img/s");
        s->header = 1;
    }
    char vl[16] = "-", va[16] = "-";
    if (!isnan(p->val_loss)) snprintf(vl, sizeof vl, "%.4f", p->val_loss), snprintf(va, sizeof va, "%.2f%%", 100 * p->val_acc);
    clock_text(eta, sizeof eta, p->seconds);
    printf("%5lld  %10.4f  %8.2f%%  %9s  %8s  %9.3g  %8s  %.0f%s\n", (long long)p->epoch, p->loss, 100 * p->acc, vl,
           va, p->lr, eta, p->images_per_s, p->best ? "  *" : "");
    fflush(stdout);
    return 0;
}

/* ---- a run -------------------------------------------------------------------------------------- */

static int mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

/* test accuracy of a run's best checkpoint, or NaN when the data has no test half */
static int test_accuracy(cn_ctx *ctx, const char *out, const char *data, int64_t batch, double *acc)
{
    cn_checkpoint *ck;
    cn_net *net;
    float mean[4], std[4];
    *acc = NAN;
    int rc = cli_open_checkpoint(ctx, out, &ck, &net, mean, std);
    if (rc) return rc;
    cn_layer_info in;
    cn_net_layer(ctx, net, 0, 1, &in);
    cn_dataset test;
    int has_test = 0;
    cn_eval_result r;
    if (cli_load_data(ctx, data, 0, &in, &test, &has_test) || cn_evaluate(ctx, net, &test, mean, std, batch, &r)) {
        rc = cli_ctx_error(ctx);
    } else {
        *acc = r.acc;
        cn_eval_free(ctx, &r);
    }
    cn_dataset_free(ctx, &test);
    cn_net_destroy(net);
    cn_checkpoint_free(ck);
    return rc;
}

static int train_once(cn_ctx *ctx, train_opts *o, const char *out, uint64_t seed, char *args, progress_state *ps,
                      double *test_acc)
{
    cn_net *net = NULL;
    cn_checkpoint *ck = NULL;
    cn_dataset ds;
    memset(&ds, 0, sizeof ds);
    int rc = 0, has_test = 0;
    *test_acc = NAN;
    if (o->resume) {
        char path[4096];
        snprintf(path, sizeof path, "%s/last.safetensors", o->resume);
        if (cn_checkpoint_read(ctx, path, &ck) || cn_checkpoint_net(ctx, ck, &net)) return cli_ctx_error(ctx);
    } else if (cli_load_net(ctx, o->spec, o->spec_text, &net)) {
        return cli_ctx_error(ctx);
    }
    cn_layer_info in;
    cn_net_layer(ctx, net, 0, 1, &in);
    if (cli_load_data(ctx, o->data, 1, &in, &ds, &has_test)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    if (mkdirs(out)) {
        rc = cli_error("%s: cannot create: %s", out, strerror(errno));
        goto done;
    }
    cn_train_config cfg = o->cfg;
    /* the settings as given, and this run's own seed (--seeds runs several) */
    char seed_text[32];
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
    cn_kv meta[3] = { { "train_args", args }, { "seed", seed_text }, { "data", cli_data_dir(o->data) } };
    cfg.seed = seed;
    cfg.out_dir = out;
    cfg.resume = ck;
    cfg.meta = meta;
    cfg.n_meta = 3;
    cfg.progress = on_progress;
    cfg.user = ps;
    ps->header = 0;
    ps->seed = (int64_t)seed;
    cn_train_summary sum;
    if (cn_train(ctx, net, &ds, &cfg, &sum)) {
        if (ps->tty) fprintf(stderr, "\n");
        rc = cli_ctx_error(ctx);
        if (cn_ctx_status(ctx) == CN_E_NUMERIC) {
            char last[4200];
            struct stat sb;
            snprintf(last, sizeof last, "%s/last.safetensors", out);
            if (!stat(last, &sb)) fprintf(stderr, "convnet: training stopped; the last good checkpoint is %s\n", last);
            else fprintf(stderr, "convnet: training stopped before the first epoch ended: no checkpoint written\n");
        }
        goto done;
    }
    if (has_test && (rc = test_accuracy(ctx, out, o->data, 256, test_acc))) goto done;
    char *report_args[] = { (char *)out, "--quiet", NULL }; /* the report is named in the last line */
    if ((rc = cmd_report(2, report_args))) goto done;
    ps->has_test = has_test;
    if (!has_test) *test_acc = sum.best_val_acc;
    if (!o->quiet) {
        if (has_test) printf("test accuracy %.2f%% (best epoch %lld", 100 * *test_acc, (long long)sum.best_epoch);
        else printf("best validation accuracy %.2f%% (epoch %lld", 100 * sum.best_val_acc, (long long)sum.best_epoch);
        printf(", %.1f s); checkpoints, metrics.csv and report.html in %s\n", sum.seconds, out);
        if (!has_test) printf("(the data has no test half: convnet eval %s --data TEST_FOLDER)\n", out);
    }
done:
    cn_dataset_free(ctx, &ds);
    cn_net_destroy(net);
    cn_checkpoint_free(ck);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    train_opts o = { .seeds = 1 };
    cn_train_defaults(&o.cfg);
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    char *args = NULL;
    if (o.resume) {
        /* the run continues with the settings it was started with */
        if (o.spec || o.spec_text || argc > 2 + (o.quiet ? 1 : 0)) {
            cn_ctx_destroy(ctx);
            return cli_usage_error("train", "--resume DIR takes no other settings (only --quiet)");
        }
        char path[4096];
        cn_checkpoint *ck;
        snprintf(path, sizeof path, "%s/last.safetensors", o.resume);
        if (cn_checkpoint_read(ctx, path, &ck)) {
            rc = cli_ctx_error(ctx);
            cn_ctx_destroy(ctx);
            return rc;
        }
        const char *saved = cn_checkpoint_meta(ck, "train_args"), *seed = cn_checkpoint_meta(ck, "seed");
        char *words_buf = strdup(saved ? saved : "");
        args = strdup(saved ? saved : ""); /* kept as they were in the checkpoints to come */
        char *words[256];
        int n = 0;
        for (char *t = strtok(words_buf, "\n"); t && n < 256; t = strtok(NULL, "\n")) words[n++] = t;
        train_opts again = { .seeds = 1 };
        cn_train_defaults(&again.cfg);
        int bad = !saved || !seed || parse_args(n, words, &again) != 0;
        if (!bad) again.cfg.seed = strtoull(seed, NULL, 10);
        cn_checkpoint_free(ck);
        if (bad) {
            free(words_buf), free(args);
            cn_ctx_destroy(ctx);
            return cli_error("%s: no settings to resume with (train_args, seed)", path);
        }
        again.resume = o.resume;
        again.quiet = o.quiet;
        again.spec = NULL;
        o = again;
        free(words_buf);
    } else if (!o.spec == !o.spec_text) {
        cn_ctx_destroy(ctx);
        return cli_usage_error("train", "give a spec file (as models/fmnist-small.cnn) or -e TEXT");
    }
    /* the settings as given, kept in the checkpoints so that --resume continues the same run */
    size_t len = 1;
    for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
    if (!args && !(args = calloc(len, 1))) return cli_error("out of memory");
    if (!args[0] && o.resume) { /* an empty saved setting list is valid: the defaults */ }
    for (int i = 0; !o.resume && i < argc; i++) {
        /* where and how often to run is the invocation's, not the run's: a resumed run reads the
         * rest, and two runs of the same settings in two folders keep the same bytes */
        if (!strcmp(argv[i], "--seeds") || !strcmp(argv[i], "--out") || !strcmp(argv[i], "--quiet")) {
            i += strcmp(argv[i], "--quiet") != 0;
            continue;
        }
        strcat(args, argv[i]);
        strcat(args, "\n");
    }
    char out[2048];
    if (o.resume) snprintf(out, sizeof out, "%s", o.resume);
    else if (o.out) snprintf(out, sizeof out, "%s", o.out);
    else if (o.spec_text) snprintf(out, sizeof out, "runs/inline");
    else {
        const char *base = strrchr(o.spec, '/') ? strrchr(o.spec, '/') + 1 : o.spec;
        snprintf(out, sizeof out, "runs/%.*s", (int)(strcspn(base, ".")), base);
    }
    progress_state ps = { .tty = isatty(2), .quiet = o.quiet, .seeds = o.seeds };
    double accs[1000];
    int done = 0;
    for (int64_t k = 0; k < o.seeds && !rc; k++) {
        char dir[4096];
        if (o.seeds > 1) snprintf(dir, sizeof dir, "%s/seed-%lld", out, (long long)(o.cfg.seed + (uint64_t)k));
        else snprintf(dir, sizeof dir, "%s", out);
        rc = train_once(ctx, &o, dir, o.cfg.seed + (uint64_t)k, args, &ps, &accs[k]);
        if (!rc) done++;
    }
    if (!rc && o.seeds > 1) {
        double mean = 0, var = 0;
        for (int i = 0; i < done; i++) mean += accs[i] / done;
        for (int i = 0; i < done; i++) var += (accs[i] - mean) * (accs[i] - mean) / (done > 1 ? done - 1 : 1);
        printf("\n%s accuracy over %d seeds: %.2f +- %.2f %% (mean +- sample std)\nruns:", ps.has_test ? "test" : "best validation",
               done, 100 * mean, 100 * sqrt(var));
        for (int i = 0; i < done; i++) printf(" %.2f", 100 * accs[i]);
        printf("\n");
    }
    free(args);
    cn_ctx_destroy(ctx);
    return rc;
}
