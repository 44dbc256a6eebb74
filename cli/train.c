/* train.c — `convnet train`: a training run with a progress bar (on a terminal) or a line per
 * epoch, the epoch table, checkpoints and metrics.csv in --out, test accuracy at the end, and
 * --seeds N for mean +- sample std over N runs. `--resume DIR` continues a run exactly. */
#define _POSIX_C_SOURCE 200809L /* strdup, strndup */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_impl.h"

#define CN_MAX_FREEZE_HINTS 256 /* layer names a misspelt --freeze is compared with */

static void help(const cli_option *opts)
{
    printf("usage: convnet train SPEC | -e TEXT [options]\n"
           "       convnet train --init-from RUN [SPEC | -e TEXT] [options]\n"
           "       convnet train --resume DIR [--epochs N] [--threads N]\n\n"
           "Trains the network of SPEC on a data set, shows progress, keeps checkpoints, and reports the\n"
           "test accuracy. The defaults are a good recipe for Fashion-MNIST (SGD with Nesterov momentum,\n"
           "one-cycle learning rate to 0.05, weight decay 5e-4, batch 64, 10 epochs).\n\n");
    cli_print_options(opts, 20);
}

typedef struct {
    const char *spec, *spec_text, *data, *test, *out, *resume;
    const char *init_from, *freeze; /* --init-from RUN, --freeze L,... */
    const char *restart_spec; /* --resume of a run stopped before its first checkpoint: run.json's spec */
    int from_checkpoint;      /* --resume from DIR/last.safetensors */
    int64_t epochs_given;     /* --epochs as given (0: not given); with --resume, the run's new length */
    cn_train_config cfg;
    int64_t seeds;
    int quiet, replace, val_given;
    int tta;            /* --tta: cn_tta of the test accuracy at the end (besides the plain one) */
    int lr_set, wd_set; /* --lr, --weight-decay given: a later --optimizer keeps them */
    int warmup_given, step_size_given; /* a schedule's own settings, refused with another */
    cli_device dev;
    int64_t shards;     /* --shards K (0: the default, under mpirun) */
    int local_bn;       /* --local-bn */
    cn_parallel *par;   /* data-parallel: the processes of an MPI job (or this one) */
    int follower;       /* a process other than the job's first: it trains, and writes and says nothing */
    int threads_given;  /* --threads N */
    int resize;         /* --resize: cn_resize (default antialias); a resumed run keeps its checkpoint's */
    char resumed_note[600]; /* --resume: what becomes of the run, said once its data is found fit */
} train_opts;

/* the settings before any option: cn_train_defaults, one seed, antialiased resizing */
static void opts_init(train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seeds = 1;
    o->resize = CN_RESIZE_ANTIALIAS;
    cn_train_defaults(&o->cfg);
}

static const char *const optims[] = { "sgd", "momentum", "nesterov", "adam", "adamw", NULL };
static const char *const scheds[] = { "constant", "step", "cosine", "onecycle", NULL };
static const char *const monitors[] = { "accuracy", "loss", NULL };

/* --optimizer K: its defaults, keeping the schedule, clipping, L1 and momentum given so far, and a
 * given --lr and --weight-decay (Adam's learning rate is its own unless --lr was given) */
static void set_optimizer(train_opts *o, int k)
{
    cn_train_config *c = &o->cfg;
    double lr = c->optim.lr, wd = c->optim.weight_decay;
    cn_optim_config keep = c->optim;
    cn_optim_defaults(&c->optim, (cn_optim_kind)k);
    c->optim.schedule = keep.schedule, c->optim.warmup_steps = keep.warmup_steps;
    c->optim.step_size = keep.step_size, c->optim.pct_start = keep.pct_start;
    c->optim.clip_norm = keep.clip_norm, c->optim.l1 = keep.l1, c->optim.momentum = keep.momentum;
    if (o->lr_set) c->optim.lr = lr;
    else if (k == CN_OPTIM_ADAM || k == CN_OPTIM_ADAMW) c->optim.lr = keep.schedule == CN_SCHED_ONECYCLE ? 3e-3 : 1e-3;
    c->optim.weight_decay = o->wd_set ? wd : keep.weight_decay;
}

/* --optimizer, --schedule, --init, --monitor: a name of the option's choices */
static int set_choice(cli_args *a, const cli_option *opt, const char *value)
{
    train_opts *o = opt->target;
    int k;
    if (cli_choice(a, opt, value, &k)) return EXIT_USAGE;
    if (opt->choices == optims) set_optimizer(o, k);
    else if (opt->choices == scheds) o->cfg.optim.schedule = (cn_schedule)k;
    else if (opt->choices == cli_inits) o->cfg.init = (cn_init)k;
    else o->cfg.monitor = (cn_monitor)k;
    return 0;
}

/* Returns CLI_GO_ON, 0 after printing --help, or the exit status of a usage error. */
static int parse_args(int argc, char **argv, train_opts *o)
{
    cn_train_config *c = &o->cfg;
    const cli_option opts[] = {
        { "-e", "TEXT", CLI_TEXT, &o->spec_text, .help = NULL }, /* the usage lines say it */
        { "--data", "D", CLI_TEXT, &o->data, .heading = "data:",
          .help = "an MNIST-format folder (train-* and t10k-* IDX files, .gz or not), a\n"
                  "folder of class sub-folders of PNG/JPEG images, or one with train/ and\n"
                  "test/ (and val/) such folders (default: fashion-mnist, Debian's copy in\n" CLI_FASHION_MNIST ")" },
        { "--test", "D", CLI_TEXT, &o->test,
          .help = "the test half: an MNIST-format folder's t10k-* files, an image folder's\n"
                  "test/, or a whole image folder (default: the test half of --data)" },
        { "--val", "F", CLI_REAL, &c->val_fraction, .given = &o->val_given,
          .help = "fraction of the training images held out for validation, 0 to 0.9\n"
                  "(default 0.1; an image folder's val/ half, when it has one, is used instead)" },
        { "--crop", "P", CLI_INT, &c->crop_pad, 0, 64, .help = "augmentation: random crop after zero-padding by P pixels (default 0)" },
        { "--flip", NULL, CLI_FLAG, &c->flip, .help = "augmentation: random horizontal flips" },
        { "--resize", "R", CLI_CALL, &o->resize, .call = cli_choice_option, .choices = cli_resizes,
          .help = "how images of another size are made the input's: antialias (default:\n"
                  "each output pixel a weighted mean of those under it, as PIL and\n"
                  "torchvision), draft (the same after decoding a large JPEG at 1/2, 1/4\n"
                  "or 1/8 size: faster, its pixels a little off) or bilinear (2x2 pixels, as\n"
                  "convnet before; kept by the checkpoints, so predict and eval resize as\n"
                  "the net was trained)" },
        { "--epochs", "N", CLI_INT, &o->epochs_given, 1, 100000, .heading = "training:", .help = "(default 10)" },
        { "--batch", "N", CLI_INT, &c->batch, 1, 1 << 20, .help = "(default 64)" },
        { "--optimizer", "K", CLI_CALL, o, .call = set_choice, .choices = optims,
          .help = "sgd, momentum, nesterov (default), adam, adamw" },
        { "--lr", "X", CLI_REAL, &c->optim.lr, .given = &o->lr_set, .help = "learning rate, the peak for one-cycle (default 0.05)" },
        { "--momentum", "M", CLI_REAL, &c->optim.momentum, .help = "(default 0.9)" },
        { "--schedule", "S", CLI_CALL, o, .call = set_choice, .choices = scheds,
          .help = "constant, step, cosine, onecycle (default)" },
        { "--warmup", "N", CLI_INT, &c->optim.warmup_steps, 0, INT64_C(1) << 40, .given = &o->warmup_given,
          .help = "linear warm-up steps (constant, step, cosine; one-cycle rises by itself)" },
        { "--step-size", "N", CLI_INT, &c->optim.step_size, 1, INT64_C(1) << 40, .given = &o->step_size_given,
          .help = "step schedule: steps between decays (gamma 0.1)" },
        { "--weight-decay", "X", CLI_REAL, &c->optim.weight_decay, .given = &o->wd_set,
          .help = "L2 (decoupled for adamw) (default 5e-4)" },
        { "--l1", "X", CLI_REAL, &c->optim.l1, .help = "L1 penalty" },
        { "--clip", "X", CLI_REAL, &c->optim.clip_norm,
          .help = "clip the gradient's global norm to X (0: no clipping, the default)" },
        { "--label-smoothing", "X", CLI_REAL, &c->label_smoothing, .help = "(default 0)" },
        { "--init", "I", CLI_CALL, o, .call = set_choice, .choices = cli_inits,
          .help = "kaiming (default), kaiming-uniform, xavier, xavier-uniform, torch, zero (a layer's init= overrides it)" },
        { "--seed", "S", CLI_INT, &c->seed, 0, INT64_MAX, .help = "(default 1); the same seed gives the same weights, bit for bit" },
        { "--seeds", "N", CLI_INT, &o->seeds, 1, 1000, .help = "train N times (seeds S, S+1, ...) and report mean +- sample std" },
        { "--patience", "N", CLI_INT, &c->patience, 1, 100000,
          .help = "stop early once N epochs in a row gave no better validation accuracy\n"
                  "(or loss, with --monitor loss)" },
        { "--monitor", "M", CLI_CALL, o, .call = set_choice, .choices = monitors,
          .help = "what 'best' means for model.safetensors and --patience: accuracy\n"
                  "(default) or loss, of the validation images (the training figures\n"
                  "with --val 0)" },
        { "--init-from", "RUN", CLI_TEXT, &o->init_from, .heading = "fine-tuning:",
          .help = "start from the weights of another run (its folder or a .safetensors):\n"
                  "every tensor whose layer name and shape match is copied, the rest is\n"
                  "initialised; without a spec the run's own net is used, its last layer\n"
                  "made anew for the data's number of classes when that differs" },
        { "--freeze", "L,...", CLI_TEXT, &o->freeze,
          .help = "layers (by name, as `convnet summary` shows them) whose weights are not\n"
                  "changed by training" },
        { "--out", "DIR", CLI_TEXT, &o->out, .heading = "output:",
          .help = "model.safetensors (best by validation), last.safetensors (to resume),\n"
                  "metrics.csv, steps.csv, gradients.csv (each weight's gradient, as gradflow\n"
                  "measures it), run.json, report.html (rewritten after every epoch while\n"
                  "training) (default runs/<spec name>); a folder belongs to one run: one\n"
                  "holding another run is refused; -o DIR is the same" },
        { "-o", "DIR", CLI_TEXT, &o->out, .help = NULL }, /* as import's, show's and filter's -o */
        { "--replace", NULL, CLI_FLAG, &o->replace,
          .help = "start over in an --out folder that holds another run (its files go)" },
        { "--resume", "DIR", CLI_TEXT, &o->resume,
          .help = "continue the run in DIR from its last completed epoch (a run stopped\n"
                  "before its first epoch ended starts again from the beginning); with\n"
                  "--epochs N the run gets a new length, finished or not" },
        { "--shards", "K", CLI_INT, &o->shards, 1, 1 << 20, .heading = "data-parallel (mpirun -np N convnet train ...):",
          .help = "cut every batch into K shards, each run as a batch of its own and their\n"
                  "gradients summed exactly: any number of processes (mpirun -np N, N <= K)\n"
                  "gives the same weights, bit for bit, as one (default under mpirun: one\n"
                  "shard per 16 images, at least one per process; without mpirun: no shards)" },
        { "--local-bn", NULL, CLI_FLAG, &o->local_bn,
          .help = "batch norm normalises each shard by its own statistics (cheaper, as\n"
                  "PyTorch's DDP), not by the whole batch's (the default, as one process)" },
        { "--quiet", NULL, CLI_FLAG, &o->quiet, .heading = "other:", .help = "no progress, only the final result" },
        { "--tta", "V", CLI_CALL, &o->tta, .call = cli_choice_option, .choices = cli_tta_views,
          .help = "the test accuracy at the end a second time, with test-time augmentation:\n"
                  "flip or flip-shift (as eval --tta)" },
        { "--threads", "N", CLI_CALL, .call = cli_threads_option, .given = &o->threads_given,
          .help = CLI_THREADS_HELP ";\nthe same bits on any number; under mpirun the machine's cores shared\n"
                  "among its processes" },
        CLI_DEVICE_OPTIONS(o->dev),
        { 0 },
    };
    int rc = cli_parse("train", argc, argv, opts, help, cli_take_one, &o->spec);
    if (rc == CLI_GO_ON && o->spec && cli_is_checkpoint(o->spec))
        return cli_usage_error("train", "%s is a run or a checkpoint, not a spec: --resume DIR goes on with its run, "
                                        "--init-from %s starts a new one from its weights", o->spec, o->spec);
    if (rc == CLI_GO_ON && o->epochs_given) c->epochs = o->epochs_given;
    return rc;
}

/* ---- progress ------------------------------------------------------------------------------ */

typedef struct {
    int tty, quiet, header, has_test, validates;
    int64_t seed, seeds;
    const char *out; /* the run's folder: its live report.html is written after every epoch */
    int live_failed; /* that failed once (said so): not tried again, the run goes on */
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
    char eta[32];
    if (!p->epoch_done) {
        if (s->quiet || !s->tty || (p->batch % 10 && p->batch != p->batches)) return 0;
        int width = 24, fill = (int)(width * p->batch / p->batches);
        clock_text(eta, sizeof eta, p->eta_seconds);
        fprintf(stderr, "\repoch %lld/%lld [%.*s%*s] %lld/%lld  %6.0f img/s  loss %.4f  acc %5.1f%%  ETA %s ",
                (long long)p->epoch, (long long)p->epochs, fill, "========================", width - fill, "",
                (long long)p->batch, (long long)p->batches, p->images_per_s, p->loss, 100 * p->acc, eta);
        fflush(stderr);
        return 0;
    }
    if (!s->quiet) {
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
    }
    /* the live report.html, --quiet or not (the epoch's checkpoint and CSV files are written by
     * now); a failure costs the page, never the run: one warning, and no more tries */
    if (s->out && !s->live_failed && cli_report_live(s->out, p->epoch, p->epochs)) {
        s->live_failed = 1;
        fprintf(stderr, "convnet train: warning: %s/report.html is not updated during this run (the error above); "
                        "training goes on, and the report is written at its end\n", s->out);
    }
    return 0;
}

/* ---- a run -------------------------------------------------------------------------------------- */

/* A new run's folder must not hold another run, unless --replace asked for its files to go
 * (remove: under the folder's lock; else only the check, to fail before any work). */
static int claim_folder(const train_opts *o, const char *dir, int remove)
{
    int rc = remove ? 0 : cli_run_busy(dir);
    if (rc) return rc;
    const char *found = cli_run_found(dir);
    if (!found) return 0;
    if (!o->replace)
        return cli_error("%s holds another run (its %s): --resume %s continues it, --replace starts over in it "
                         "(its files go), or choose another --out", dir, found, dir);
    return remove ? cli_run_remove(dir) : 0;
}

/* test accuracy of a run's best checkpoint on the test half (loaded before the training):
 * acc[0] plain, acc[1] with the views of tta averaged (NaN for CN_TTA_NONE) */
static int test_accuracy(cn_ctx *ctx, const char *out, const cn_dataset *test, int64_t batch, cn_tta tta, double acc[2])
{
    cn_checkpoint *ck;
    cn_net *net;
    float mean[4], std[4];
    acc[0] = acc[1] = NAN;
    int rc = cli_open_checkpoint(ctx, out, &ck, &net, mean, std);
    if (rc) return rc;
    for (int k = 0; k < (tta == CN_TTA_NONE ? 1 : 2) && !rc; k++) {
        cn_eval_result r;
        if (cn_evaluate_tta(ctx, net, test, mean, std, batch, k ? tta : CN_TTA_NONE, &r)) {
            rc = cli_ctx_error(ctx);
        } else {
            acc[k] = r.acc;
            cn_eval_free(ctx, &r);
        }
    }
    cn_net_destroy(net);
    cn_checkpoint_destroy(ck);
    return rc;
}

/* The net of the run: its last checkpoint's (resume), run.json's spec (a run started again), the
 * spec given, or the net of the run it is fine-tuned from (init). */
static int run_net(cn_ctx *ctx, const train_opts *o, const char *out, const cn_checkpoint *init, cn_checkpoint **ck,
                   cn_net **net)
{
    char path[4200];
    if (o->from_checkpoint) {
        snprintf(path, sizeof path, "%s/last.safetensors", out);
        if (cn_checkpoint_read(ctx, path, ck) || cn_checkpoint_net(ctx, *ck, net)) return cli_ctx_error(ctx);
        /* the best epoch's weights lost: cn_train takes the best of the epochs to come instead */
        const char *be = cn_checkpoint_meta(*ck, "best_epoch");
        cn_checkpoint *best = NULL;
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        if (!o->follower && be && atoll(be) > 0 && cn_checkpoint_read(ctx, path, &best))
            fprintf(stderr, "convnet train: warning: %s (the best epoch's weights, epoch %s) cannot be read: %s; the best "
                            "of the epochs from here on takes its place\n", path, be, cn_ctx_message(ctx));
        cn_checkpoint_destroy(best);
    } else if (o->restart_spec) {
        snprintf(path, sizeof path, "%s/run.json:spec", out);
        if (cn_net_parse(ctx, o->restart_spec, strlen(o->restart_spec), path, net)) return cli_ctx_error(ctx);
    } else if (!o->spec && !o->spec_text && init) {
        if (cn_checkpoint_net(ctx, init, net)) return cli_ctx_error(ctx);
    } else if (cli_load_net(ctx, o->spec, o->spec_text, net)) {
        return cli_ctx_error(ctx);
    }
    return 0;
}

/* --init-from RUN without a spec: RUN's net, its last layer made anew when the data has another
 * number of classes (said so) */
static int fit_classes(cn_ctx *ctx, const train_opts *o, const cn_dataset *ds, cn_net **net)
{
    if (!o->init_from || o->spec || o->spec_text || o->restart_spec || o->from_checkpoint) return 0;
    cn_layer_info info;
    cn_net_layer(ctx, *net, cn_net_layer_count(*net) - 1, 1, &info);
    int64_t outputs = info.c * info.h * info.w;
    if (outputs == ds->classes) return 0;
    cn_net *fitted;
    if (cn_net_with_outputs(ctx, *net, ds->classes, &fitted)) return cli_ctx_error(ctx);
    if (!o->quiet)
        printf("fine-tuning to %d classes: the last layer of %s, %lld outputs, is made anew\n", (int)ds->classes,
               o->init_from, (long long)outputs);
    cn_net_destroy(*net);
    *net = fitted;
    return 0;
}

/* --init-from: what is copied (printed), checked before the first step; the copy itself is
 * the trainer's (cn_train_config.init_from), after its initialisation */
static int show_init(cn_ctx *ctx, const train_opts *o, const cn_checkpoint *init, cn_net *net, uint64_t seed)
{
    if (!init) return 0;
    char fresh[1024];
    int copied;
    if (cn_net_init_params(ctx, net, o->cfg.init, seed) ||
        cn_checkpoint_load_matching(ctx, init, net, &copied, fresh, sizeof fresh))
        return cli_ctx_error(ctx);
    if (!o->quiet)
        printf("starting from %s: %d of %d tensors copied%s%s\n", o->init_from, copied, cn_net_tensor_count(net),
               *fresh ? "; initialised anew: " : "", fresh);
    return 0;
}

/* --freeze L,...: by name, an unknown name with the closest one */
static int freeze_layers(cn_ctx *ctx, const train_opts *o, cn_net *net)
{
    char names[4096];
    if (!o->freeze) return 0;
    snprintf(names, sizeof names, "%s", o->freeze);
    int64_t left = 0;
    for (char *save, *t = strtok_r(names, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!cn_net_freeze(ctx, net, t, 1)) continue;
        const char *known[CN_MAX_FREEZE_HINTS + 1];
        int n = 0;
        for (int i = 1; i < cn_net_layer_count(net) && n < CN_MAX_FREEZE_HINTS; i++) {
            cn_layer_info info;
            cn_net_layer(ctx, net, i, 1, &info);
            known[n++] = info.name;
        }
        known[n] = NULL;
        const char *best = cli_closest(t, known);
        if (best) return cli_usage_error("train", "--freeze: %s (did you mean '%s'?)", cn_ctx_message(ctx), best);
        return cli_usage_error("train", "--freeze: %s (`convnet summary` lists the layers' names)", cn_ctx_message(ctx));
    }
    for (int i = 1; i < cn_net_layer_count(net); i++) {
        cn_layer_info info;
        cn_net_layer(ctx, net, i, 1, &info);
        if (!cn_net_frozen(net, i)) left += info.trainable;
    }
    if (!left) return cli_usage_error("train", "--freeze %s: every layer with weights is frozen: nothing to train", o->freeze);
    return 0;
}

/* A validation or test half must be the training half's kind: image size, classes, some images.
 * An image folder's classes are matched to the training half's by name (a test/ of some of
 * them scores as those classes, as eval --data does); IDX labels by number. */
static int half_matches(const cn_dataset *ds, cn_dataset *h, const char *data, cli_half half, const char *what)
{
    const char *dir = cli_data_dir(data);
    char folder[4300];
    if (cn_data_find_layout(dir, NULL, NULL) == CN_DATA_HALVES) cli_data_name(data, half, folder, sizeof folder);
    else snprintf(folder, sizeof folder, "%s", dir);
    if (h->h != ds->h || h->w != ds->w || h->c != ds->c)
        return cli_error("%s: the %s images are %lldx%lldx%lld, the training images %lldx%lldx%lld", folder, what,
                         (long long)h->h, (long long)h->w, (long long)h->c, (long long)ds->h, (long long)ds->w,
                         (long long)ds->c);
    int rc = cli_map_classes(ds->class_names, (int32_t)ds->classes, "the training half's", h, folder);
    if (rc) return rc;
    if (h->classes > ds->classes)
        return cli_error("%s: the %s half has labels of %d classes, the training half of %d", folder, what,
                         (int)h->classes, (int)ds->classes);
    if (h->count < 1) return cli_error("%s: the %s half holds no images", folder, what);
    return 0;
}

/* The halves of the data (training, an image folder's val/, test), checked before the first
 * step: a run never fails after training for want of its test data. */
static int run_data(cn_ctx *ctx, const train_opts *o, cn_net *net, cn_dataset *ds, cn_dataset *val, cn_dataset *test,
                    int *has_test)
{
    cn_layer_info in;
    cn_net_layer(ctx, net, 0, 1, &in);
    /* data-parallel: an image folder's files are decoded where their shards run */
    if (cli_open_data(ctx, o->data, CLI_HALF_TRAIN, &in, o->par != NULL, ds, has_test)) return cli_ctx_error(ctx);
    int has_val = 0, rc;
    const char *dir = cli_data_dir(o->data);
    if ((rc = cli_data_fits(o->data, ds, &in))) return rc;
    if (cn_data_find_layout(dir, NULL, &has_val) == CN_DATA_HALVES && has_val) {
        if (o->val_given) {
            char half[4200];
            cn_data_half_folder(dir, "val", half, sizeof half);
            return cli_usage_error("train", "%s has a validation half (%s): --val F would hold out more", dir, half);
        }
        if (cli_open_data(ctx, o->data, CLI_HALF_VAL, &in, o->par != NULL, val, NULL)) return cli_ctx_error(ctx);
        if ((rc = half_matches(ds, val, o->data, CLI_HALF_VAL, "validation"))) return rc;
    }
    if (o->test) *has_test = 1;
    if (!*has_test) return 0;
    if (cli_load_data(ctx, o->test ? o->test : o->data, CLI_HALF_TEST, &in, test, NULL)) return cli_ctx_error(ctx);
    return half_matches(ds, test, o->test ? o->test : o->data, CLI_HALF_TEST, "test");
}

/* the data the run uses, said before the first epoch: "test" only for a test half */
/* images --val holds out of the training half (cn_train's count) */
static int64_t held_out(const train_opts *o, const cn_dataset *ds)
{
    return (int64_t)floor((double)ds->count * o->cfg.val_fraction);
}

/* " of 1 of the 3 classes (red)", " of 9 of the 10 classes (none of 'Ankle boot')": a half whose
 * images are of some of the training classes only (its class folders matched to train/'s by
 * name), the few there or the few missing named; nothing when all are there */
static const char *classes_present(const cn_dataset *h, int32_t classes, char *buf, size_t cap)
{
    char *seen = calloc((size_t)classes, 1);
    int32_t present = 0;
    buf[0] = '\0';
    if (!seen) return buf;
    for (int64_t i = 0; i < h->count; i++)
        if (h->labels[i] >= 0 && h->labels[i] < classes && !seen[h->labels[i]]) seen[h->labels[i]] = 1, present++;
    if (present < classes) {
        /* name the few there, else the few missing */
        int there = present > 0 && present <= 6, missing = !there && classes - present <= 3;
        snprintf(buf, cap, " of %d of the %d classes", (int)present, (int)classes);
        for (int32_t c = 0, n = 0; h->class_names && (there || missing) && c < classes; c++)
            if (seen[c] == there) {
                char esc[256];
                size_t len = strlen(buf);
                snprintf(buf + len, cap - len, there ? "%s%s" : "%s'%s'", n++ ? ", " : there ? " (" : " (none of ",
                         cn_text_escape(h->class_names[c], esc, sizeof esc));
            }
        if (h->class_names && (there || missing)) snprintf(buf + strlen(buf), cap - strlen(buf), ")");
    }
    free(seen);
    return buf;
}

/* resized (drafted): the images of the three halves made of another size (decoded smaller
 * first), counted as they were loaded */
static void say_data(const train_opts *o, const cn_dataset *ds, const cn_dataset *val, const cn_dataset *test,
                     int64_t resized, int64_t drafted, cn_resize mode)
{
    char some[2048];
    char name[4300], esc[4400];
    if (o->quiet) return;
    cli_data_name(o->data, CLI_HALF_TRAIN, name, sizeof name);
    printf("training:   %s, %lld image%s of %d class%s\n", cn_text_escape(name, esc, sizeof esc), (long long)ds->count,
           ds->count == 1 ? "" : "s", (int)ds->classes, ds->classes == 1 ? "" : "es");
    int64_t held = held_out(o, ds);
    if (val->count)
        printf("validation: %s, %lld images%s\n", cn_text_escape(cli_data_name(o->data, CLI_HALF_VAL, name, sizeof name), esc,
                                                                 sizeof esc), (long long)val->count,
               classes_present(val, (int32_t)ds->classes, some, sizeof some));
    else if (held) printf("validation: %lld of them held out (--val %g)\n", (long long)held, o->cfg.val_fraction);
    else if (o->cfg.val_fraction > 0) /* else "best validation accuracy" would be the training figures' */
        printf("validation: none (--val %g of %lld images holds out none): the best epoch is the training "
               "figures'\n", o->cfg.val_fraction, (long long)ds->count);
    if (test->count) {
        if (o->test) snprintf(name, sizeof name, "%s", cli_data_dir(o->test));
        else cli_data_name(o->data, CLI_HALF_TEST, name, sizeof name);
        printf("test:       %s, %lld images%s\n", cn_text_escape(name, esc, sizeof esc), (long long)test->count,
               classes_present(test, (int32_t)ds->classes, some, sizeof some));
    }
    if (resized) { /* what the net sees is not what the files hold */
        printf("resized:    %lld of the %lld images to %lldx%lld, %s", (long long)resized,
               (long long)(ds->count + val->count + test->count), (long long)ds->h, (long long)ds->w,
               mode == CN_RESIZE_BILINEAR ? "bilinearly" : "with antialiasing");
        if (drafted) printf(" (%lld JPEG%s decoded at 1/2 to 1/8 first: --resize draft)", (long long)drafted,
                            drafted == 1 ? "" : "s");
        printf("\n");
    }
    if (o->dev.device) /* where it runs, when not the CPU */
        printf("device:     %s, %s%s\n", cli_devices[o->dev.device], cli_precisions[o->dev.precision],
               getenv("CN_FLIGHT") && !strcmp(getenv("CN_FLIGHT"), "0") ? ", one step at a time (CN_FLIGHT=0)" : "");
}

/* A bounded last activation, whose outputs cross-entropy takes as logits: the least loss is then
 * that of the top value against the bottom one on the other K - 1 outputs,
 * log(1 + (K - 1) e^(lo - hi)) (label smoothing only raises it), said before the first epoch, so
 * that a loss stuck there is not a mystery */
static void say_output(cn_ctx *ctx, const train_opts *o, const cn_net *net)
{
    static const struct { const char *type; double lo, hi; } bounded[] = {
        { "sigmoid", 0, 1 }, { "hardsigmoid", 0, 1 }, { "tanh", -1, 1 }, { "relu6", 0, 6 }
    };
    cn_layer_info out;
    if (o->quiet || cn_net_layer(ctx, net, cn_net_layer_count(net) - 1, 1, &out)) return;
    for (size_t i = 0; i < sizeof bounded / sizeof *bounded; i++)
        if (!strcmp(out.type, bounded[i].type))
            printf("note:       the net ends in %s: cross-entropy takes its outputs (%g to %g) as logits, so the "
                   "loss cannot fall below %.4f with %lld outputs; end it with a dense layer (logits) or softmax\n",
                   out.type, bounded[i].lo, bounded[i].hi,
                   log1p((double)(out.c - 1) * exp(bounded[i].lo - bounded[i].hi)), (long long)out.c);
}

/* data-parallel: how the batch is cut, said once before the first epoch */
static void say_parallel(cn_ctx *ctx, const train_opts *o, const cn_net *net, int64_t batch)
{
    if (!o->par || o->quiet) return;
    int k = cn_parallel_shards(o->par, batch), n = cn_parallel_size(o->par), bn = 0;
    for (int i = 0; i < cn_net_layer_count(net); i++) {
        cn_layer_info info;
        cn_net_layer(ctx, net, i, 1, &info);
        bn |= !strcmp(info.type, "batchnorm");
    }
    printf("parallel:   %d process%s, the batch of %lld cut into %d shards of %lld%s image%s (%s)%s%s\n", n,
           n > 1 ? "es" : "", (long long)batch, k, (long long)(batch / k), batch % k ? "-" : "",
           batch / k == 1 && !(batch % k) ? "" : "s", cn_parallel_mpi(o->par) ? "MPI" : "no MPI: one process",
           bn ? ", batch norm over " : "", !bn ? "" : o->local_bn ? "each shard (--local-bn)" : "the whole batch");
}

/* Ctrl-C (or a TERM) while a run trains: the process ends as the signal would end it, but says
 * first what is kept and how to go on; the message is made beforehand, and the handler only
 * writes it (async-signal-safe). A second Ctrl-C ends it at once (SA_RESETHAND). */
static char interrupted[4400];
static size_t interrupted_len;

static void on_interrupt(int sig)
{
    ssize_t w = write(2, interrupted, interrupted_len);
    (void)w;
    raise(sig); /* SA_RESETHAND made its action the default again: delivered on return, it ends us */
}

static void catch_interrupt(const char *out, int on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_interrupt : SIG_DFL;
    sa.sa_flags = on ? SA_RESETHAND : 0;
    sigemptyset(&sa.sa_mask);
    if (on) {
        int n = snprintf(interrupted, sizeof interrupted,
                         "\nconvnet train: interrupted; the epochs finished are kept in %s (last.safetensors): "
                         "`convnet train --resume %s` continues the run\n", out, out);
        interrupted_len = n < 0 ? 0 : (size_t)n < sizeof interrupted ? (size_t)n : sizeof interrupted - 1;
    }
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* A resumed run's classes must be the ones it was started on, by name and in order: a class
 * folder renamed since would give every image of it another label, an epoch trained wrong and
 * the run's checkpoints overwritten before the end refused it. */
static int resumed_classes_same(const cn_checkpoint *ck, const cn_dataset *ds, const char *data)
{
    const char *lines = cn_checkpoint_meta(ck, "class_names");
    if (!lines || !ds->class_names) return 0; /* IDX data, or a run without names: by number */
    const char *p = lines;
    int same = 1;
    for (int32_t c = 0; c < ds->classes && same; c++) {
        size_t len = strcspn(p, "\n");
        same = strlen(ds->class_names[c]) == len && !strncmp(p, ds->class_names[c], len);
        p += len + (p[len] == '\n');
    }
    if (same && !*p) return 0;
    char now[700] = "", then[700] = "", one[256], esc[256];
    for (int32_t c = 0; c < ds->classes && c < 6; c++) /* the first 6 of each */
        snprintf(now + strlen(now), sizeof now - strlen(now), "%s'%s'%s", c ? ", " : "",
                 cn_text_escape(ds->class_names[c], esc, sizeof esc), c == 5 && ds->classes > 6 ? ", ..." : "");
    p = lines;
    for (int c = 0; *p && c < 6; c++) {
        size_t len = strcspn(p, "\n");
        snprintf(one, sizeof one, "%.*s", (int)(len < 255 ? len : 255), p);
        p += len + (p[len] == '\n');
        snprintf(then + strlen(then), sizeof then - strlen(then), "%s'%s'%s", c ? ", " : "",
                 cn_text_escape(one, esc, sizeof esc), c == 5 && *p ? ", ..." : "");
    }
    return cli_error("%s: its classes are now %s; the run was started on %s: --resume goes on with the classes it "
                     "began with (rename the folders back, or start a new run: --init-from RUN keeps the weights)",
                     cli_data_dir(data), now, then);
}

/* Before a resumed run goes on: what kept_settings found, and a training half that is no longer
 * the one the run began on (images added or removed: the held-out validation images and the
 * batches are drawn anew from what is there, so the run is no longer the one it was) */
static void say_resumed(const train_opts *o, const cn_checkpoint *ck, const cn_dataset *ds)
{
    if (o->follower) return;
    fputs(o->resumed_note, stderr);
    const char *was = ck ? cn_checkpoint_meta(ck, "train_images") : NULL;
    char name[4300], esc[4400];
    if (was && strtoll(was, NULL, 10) != ds->count)
        fprintf(stderr, "convnet train: note: %s now holds %lld training images; the run began on %s (the held-out "
                        "images, if any, and the batches are drawn from what is there now)\n",
                cn_text_escape(cli_data_name(o->data, CLI_HALF_TRAIN, name, sizeof name), esc, sizeof esc),
                (long long)ds->count, was);
}

/* An image folder's classes checked from the listings alone, before any image is decoded
 * (minutes for thousands of photos): those of val/ and test/ (or --test) against train/'s, and
 * a resumed run's against its checkpoint's (ck). IDX halves, a listing that fails (the load
 * says why) and data-parallel runs (which open lazily anyway) are left to the checks after the
 * load. */
static int classes_match_first(cn_ctx *ctx, const train_opts *o, const cn_net *net, const cn_checkpoint *ck)
{
    const char *dir = cli_data_dir(o->data), *test = o->test ? o->test : o->data;
    int has_test = 0, has_val = 0, rc = 0;
    if (o->par || cn_data_find_layout(dir, &has_test, &has_val) == CN_DATA_MNIST) return 0;
    cn_layer_info in;
    cn_net_layer(ctx, net, 0, 1, &in);
    cn_dataset tr, v, t;
    memset(&tr, 0, sizeof tr), memset(&v, 0, sizeof v), memset(&t, 0, sizeof t);
    if (!cli_open_data(ctx, o->data, CLI_HALF_TRAIN, &in, 1, &tr, NULL)) {
        if (ck) rc = resumed_classes_same(ck, &tr, o->data);
        if (!rc && has_val && !o->val_given && !cli_open_data(ctx, o->data, CLI_HALF_VAL, &in, 1, &v, NULL))
            rc = half_matches(&tr, &v, o->data, CLI_HALF_VAL, "validation");
        if (!rc && (has_test || o->test) && cn_data_find_layout(cli_data_dir(test), NULL, NULL) != CN_DATA_MNIST &&
            !cli_open_data(ctx, test, CLI_HALF_TEST, &in, 1, &t, NULL))
            rc = half_matches(&tr, &t, test, CLI_HALF_TEST, "test");
    }
    cn_ctx_clear(ctx);
    cn_dataset_free(ctx, &tr), cn_dataset_free(ctx, &v), cn_dataset_free(ctx, &t);
    return rc;
}

static int train_once(cn_ctx *ctx, train_opts *o, const char *out, uint64_t seed, char *args, progress_state *ps,
                      double test_acc[2])
{
    cn_net *net = NULL;
    cn_checkpoint *ck = NULL, *init = NULL;
    cn_dataset ds, val, test;
    memset(&ds, 0, sizeof ds);
    memset(&val, 0, sizeof val);
    memset(&test, 0, sizeof test);
    int rc, has_test = 0, lock = -1;
    test_acc[0] = test_acc[1] = NAN;
    /* --init-from RUN: its best checkpoint (not read again by a resume: the run's own has it all) */
    if (o->init_from && !o->from_checkpoint &&
        cn_checkpoint_read(ctx, o->init_from, &init)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    if ((rc = run_net(ctx, o, out, init, &ck, &net))) goto done;
    /* a resumed run goes on with the pixels it started on: its checkpoint's (bilinear when it
     * was made before the choice was kept) */
    cn_resize resize = o->from_checkpoint ? cn_checkpoint_resize(ck) : (cn_resize)o->resize;
    cn_ctx_set_resize(ctx, resize);
    int64_t resized = 0, drafted = 0;
    cn_ctx_take_image_counts(ctx, NULL, NULL); /* from 0: the halves' images only */
    if ((rc = cli_device_ready(ctx, &o->dev)) || (rc = classes_match_first(ctx, o, net, o->from_checkpoint ? ck : NULL)) ||
        (rc = run_data(ctx, o, net, &ds, &val, &test, &has_test)) ||
        (o->from_checkpoint && (rc = resumed_classes_same(ck, &ds, o->data))) || (rc = fit_classes(ctx, o, &ds, &net)) || (rc = freeze_layers(ctx, o, net)) || (rc = cli_use_device(ctx, net, &o->dev)) ||
        (rc = show_init(ctx, o, init, net, seed)))
        goto done;
    if (o->resume) say_resumed(o, o->from_checkpoint ? ck : NULL, &ds);
    cn_ctx_take_image_counts(ctx, &resized, &drafted);
    say_data(o, &ds, &val, &test, resized, drafted, resize);
    say_output(ctx, o, net);
    say_parallel(ctx, o, net, o->cfg.batch);
    cn_train_config cfg = o->cfg;
    /* the settings as given, and this run's own seed (--seeds runs several) */
    char seed_text[32], count_text[32];
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
    snprintf(count_text, sizeof count_text, "%lld", (long long)ds.count);
    cn_kv meta[6] = { { "train_args", args }, { "seed", seed_text }, { "data", cli_data_dir(o->data) },
                      { "resize", cn_resize_name(resize) }, { "train_images", count_text },
                      { "test_data", o->test ? cli_data_dir(o->test) : "" } };
    cfg.seed = seed;
    cfg.out_dir = o->follower ? NULL : out;
    cfg.parallel = o->par;
    cfg.resume = ck;
    cfg.init_from = init;
    cfg.val = val.count ? &val : NULL;
    cfg.meta = meta;
    cfg.n_meta = o->test ? 6 : 5;
    cfg.progress = on_progress;
    cfg.user = ps;
    ps->header = 0;
    ps->seed = (int64_t)seed;
    ps->out = o->follower ? NULL : out;
    /* what cn_train would refuse (the batch, the classes the output scores), and the test half's
     * classes, before the folder is created and taken, so that a run that cannot start leaves
     * nothing behind (a resumed run's folder is held by cmd_train); the job's first process
     * alone writes */
    if (cn_train_check(ctx, net, &ds, &cfg) || (has_test && cn_net_check_classes(ctx, net, test.classes))) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    if (!o->resume && !o->follower && ((rc = cli_run_lock(ctx, out, &lock)) || (rc = claim_folder(o, out, 1)))) goto done;
    /* run.json: a new run's, or an extended run's new settings */
    if ((!o->from_checkpoint || o->epochs_given) && !o->follower &&
        (rc = cli_run_manifest_write(ctx, out, args, seed, cn_net_spec_text(net))))
        goto done;
    cn_train_summary sum;
    if (!o->follower) catch_interrupt(out, 1);
    if (cn_train(ctx, net, &ds, &cfg, &sum)) {
        if (ps->tty) fprintf(stderr, "\n");
        rc = cli_ctx_error(ctx);
        if (cn_ctx_status(ctx) == CN_E_NUMERIC) {
            /* only this run's checkpoint: one it resumed from, or one of its own epochs */
            if (o->from_checkpoint || sum.epochs_run > 0)
                fprintf(stderr, "convnet: training stopped; the last good checkpoint is %s/last.safetensors\n", out);
            else fprintf(stderr, "convnet: training stopped before the first epoch ended: no checkpoint written\n");
        }
        goto done;
    }
    if (o->follower) goto done; /* the first process tests, reports and says so */
    if (has_test && (rc = test_accuracy(ctx, out, &test, 256, (cn_tta)o->tta, test_acc))) goto done;
    /* the report is named in the last line; it gives the --tta accuracy measured above */
    if ((rc = cli_report_final(out, has_test ? (cn_tta)o->tta : CN_TTA_NONE, test_acc[1]))) goto done;
    ps->has_test = has_test;
    /* no image held out (--val 0, or a fraction of too few images): the best is the training figures' */
    int validates = val.count > 0 || held_out(o, &ds) > 0;
    ps->validates = validates;
    if (!has_test) test_acc[0] = sum.best_val_acc;
    if (!o->quiet && sum.stopped_early)
        printf("stopped early: %lld epochs without a better %s %s than epoch %lld's (--patience %lld)\n",
               (long long)o->cfg.patience, validates ? "validation" : "training",
               cfg.monitor == CN_MONITOR_LOSS ? "loss" : "accuracy", (long long)sum.best_epoch, (long long)o->cfg.patience);
    /* the final result, --quiet or not (--quiet: "no progress, only the final result") */
    if (has_test) printf("test accuracy %.2f%%", 100 * test_acc[0]);
    if (has_test && o->tta) printf(", %.2f%% with --tta %s", 100 * test_acc[1], cli_tta_views[o->tta]);
    if (has_test) printf(" (best epoch %lld", (long long)sum.best_epoch);
    else printf("best %s accuracy %.2f%% (epoch %lld", validates ? "validation" : "training", 100 * sum.best_val_acc,
                (long long)sum.best_epoch);
    printf(", %.1f s); checkpoints, metrics.csv and report.html in %s\n", sum.seconds, out);
    if (!o->quiet) {
        if (o->par && cn_parallel_size(o->par) > 1)
            printf("data-parallel: %d processes; process 0 spent %.1f s of the %.1f s in communication (waits "
                   "included)\n", cn_parallel_size(o->par), cn_parallel_comm_seconds(o->par), sum.seconds);
        if (!has_test) printf("(the data has no test half: convnet eval %s --data TEST_FOLDER)\n", out);
    }
done:
    if (!o->follower) catch_interrupt(out, 0);
    cli_run_unlock(lock);
    cn_dataset_free(ctx, &ds);
    cn_dataset_free(ctx, &val);
    cn_dataset_free(ctx, &test);
    cn_net_destroy(net);
    cn_checkpoint_destroy(ck);
    cn_checkpoint_destroy(init);
    return rc;
}

/* The settings a run was started with (train_args: one argument a line, as its checkpoints
 * and run.json keep them) and its seed into *o, with --epochs N if given (*old_epochs: the run's
 * own); *words keeps the strings o points into. */
static int saved_settings(const char *where, const char *saved, const char *seed, train_opts *o, char **words,
                          int64_t *old_epochs)
{
    char *argv_saved[256];
    int n = 0;
    *words = strdup(saved ? saved : "");
    if (!*words) return cli_error("out of memory");
    for (char *t = strtok(*words, "\n"); t && n < 256; t = strtok(NULL, "\n")) argv_saved[n++] = t;
    train_opts again;
    opts_init(&again);
    if (!saved || !seed || parse_args(n, argv_saved, &again) != CLI_GO_ON)
        return cli_error("%s: no settings to resume with (train_args, seed)", where);
    *old_epochs = again.cfg.epochs;
    again.cfg.seed = strtoull(seed, NULL, 10);
    again.resume = o->resume;
    again.quiet = o->quiet;
    again.follower = o->follower;
    again.spec = NULL;
    again.epochs_given = o->epochs_given; /* --resume DIR --epochs N: the new length */
    if (o->epochs_given) again.cfg.epochs = o->epochs_given;
    *o = again;
    return 0;
}

/* saved train_args with "--epochs N" set to epochs (appended when absent), malloc'ed */
static char *with_epochs(const char *saved, int64_t epochs)
{
    char *out = malloc(strlen(saved) + 64), *w = out;
    if (!out) return NULL;
    int found = 0;
    for (const char *p = saved; *p;) {
        size_t n = strcspn(p, "\n"), step = n + (p[n] == '\n');
        int is_opt = n == 8 && !strncmp(p, "--epochs", 8), is_eq = n > 9 && !strncmp(p, "--epochs=", 9);
        if (is_opt || is_eq) {
            w += sprintf(w, "--epochs\n%lld\n", (long long)epochs);
            found = 1;
            p += step;
            if (is_opt && *p) p += strcspn(p, "\n"), p += *p == '\n'; /* the old value */
            continue;
        }
        memcpy(w, p, step);
        w += step, p += step;
    }
    if (!found) w += sprintf(w, "--epochs\n%lld\n", (long long)epochs);
    *w = '\0';
    return out;
}

/* The settings kept from here on: as saved, or with --epochs N (a longer or shorter run, never
 * shorter than the epochs done; said so), so that later resumes continue the same run. */
static int kept_settings(train_opts *o, const char *saved, int64_t done, int64_t old_epochs, char **args)
{
    char *note = o->resumed_note;
    size_t cap = sizeof o->resumed_note;
    if (!o->epochs_given && done >= old_epochs && old_epochs > 0) /* else the result comes again unexplained */
        snprintf(note, cap, "convnet train: %s: %lld of %lld epochs done already (--epochs N trains it further); its "
                            "result again:\n", o->resume, (long long)done, (long long)old_epochs);
    if (!o->epochs_given) return (*args = strdup(saved)) ? 0 : cli_error("out of memory");
    if (o->epochs_given < done)
        return cli_usage_error("train", "%s has trained %lld epochs already: --epochs must be at least that", o->resume,
                               (long long)done);
    if (!(*args = with_epochs(saved, o->epochs_given))) return cli_error("out of memory");
    if (o->epochs_given != old_epochs)
        snprintf(note, cap, "convnet train: %s: %lld of %lld epochs done; the run now has %lld, and its learning-rate "
                            "schedule is planned again for them\n", o->resume, (long long)done, (long long)old_epochs,
                 (long long)o->epochs_given);
    return 0;
}

/* --resume DIR [--epochs N]: the settings of its last checkpoint, else of its run.json (a run
 * stopped before its first epoch ended, which starts again). Under the folder's lock. */
static int resume_settings(cn_ctx *ctx, train_opts *o, char **args, char **words, char **spec)
{
    char path[4200];
    struct stat sb;
    int64_t old_epochs = 0;
    snprintf(path, sizeof path, "%s/last.safetensors", o->resume);
    if (!stat(path, &sb)) {
        cn_checkpoint *ck;
        if (cn_checkpoint_read(ctx, path, &ck)) return cli_ctx_error(ctx);
        const char *saved = cn_checkpoint_meta(ck, "train_args"), *seed = cn_checkpoint_meta(ck, "seed");
        const char *ep = cn_checkpoint_meta(ck, "epoch");
        int rc = saved_settings(path, saved, seed, o, words, &old_epochs);
        if (!rc) rc = kept_settings(o, saved, ep ? strtoll(ep, NULL, 10) : 0, old_epochs, args);
        cn_checkpoint_destroy(ck);
        o->from_checkpoint = 1;
        return rc;
    }
    snprintf(path, sizeof path, "%s/run.json", o->resume);
    if (stat(path, &sb))
        return cli_error("%s: nothing to resume: no last.safetensors or run.json (a run killed before it wrote "
                         "run.json had not started training: start it again)", o->resume);
    char *seed, *saved;
    int rc = cli_run_manifest_read(o->resume, &saved, &seed, spec);
    if (!rc) rc = saved_settings(path, saved, seed, o, words, &old_epochs);
    if (!rc) rc = kept_settings(o, saved, 0, old_epochs, args);
    free(seed), free(saved);
    if (rc) return rc;
    o->restart_spec = *spec;
    fprintf(stderr, "convnet train: %s: the run was stopped before its first epoch ended; it starts again from the "
                    "beginning\n", o->resume);
    return 0;
}

/* out, and out/seed-K for --seeds */
static int claim_folders(const train_opts *o, const char *out)
{
    char dir[4200];
    int bad = cli_out_outside_data(out, o->data);
    if (bad || (o->test && (bad = cli_out_outside_data(out, o->test)))) return bad;
    for (int64_t k = -1; k < (o->seeds > 1 ? o->seeds : 0); k++) {
        if (k < 0) snprintf(dir, sizeof dir, "%s", out);
        else snprintf(dir, sizeof dir, "%s/seed-%lld", out, (long long)(o->cfg.seed + (uint64_t)k));
        int rc = claim_folder(o, dir, 0);
        if (rc) return rc;
    }
    return 0;
}

/* The arguments that describe the run, one a line, kept in its checkpoints and run.json so that
 * --resume continues the same run. Where and how often to run is the invocation's, not the
 * run's: two runs of the same settings in two folders keep the same bytes. */
static char *run_args(int argc, char **argv)
{
    static const char *const valued[] = { "--seeds", "--out", "-o", "--threads", NULL },
                             *const flags[] = { "--quiet", "--replace", NULL };
    size_t len = 1;
    for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
    char *args = calloc(len, 1);
    for (int i = 0; args && i < argc; i++) {
        int skip = 0;
        for (int k = 0; valued[k] && !skip; k++) {
            size_t n = strlen(valued[k]);
            if (!strcmp(argv[i], valued[k])) skip = 2;
            else if (!strncmp(argv[i], valued[k], n) && argv[i][n] == '=') skip = 1;
        }
        for (int k = 0; flags[k] && !skip; k++) skip = !strcmp(argv[i], flags[k]);
        if (skip) {
            i += skip - 1;
            continue;
        }
        strcat(args, argv[i]);
        strcat(args, "\n");
    }
    return args;
}

/* this process's rank in the job mpirun started (0 outside one), from the launcher's
 * environment: known before MPI starts, so that only the first process takes the run's folder */
static int launched_rank(int *size)
{
    const char *r = getenv("OMPI_COMM_WORLD_RANK") ? getenv("OMPI_COMM_WORLD_RANK") : getenv("PMI_RANK");
    const char *n = getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : getenv("PMI_SIZE");
    *size = n ? atoi(n) : 0;
    return r ? atoi(r) : 0;
}

/* Under mpirun, or with --shards or --local-bn (the run's, resumed): the job's processes, or
 * this one alone */
static int open_parallel(cn_ctx *ctx, train_opts *o)
{
    int size;
    launched_rank(&size);
    if (!size && !o->shards && !o->local_bn) return 0;
    if (cn_parallel_open(ctx, (int)o->shards, o->local_bn, &o->par)) return cli_ctx_error(ctx);
    /* the processes on one machine share its cores, unless told otherwise */
    if (!o->threads_given && !getenv("OMP_NUM_THREADS")) cn_set_threads(cn_parallel_threads(o->par));
    return 0;
}

/* The settings that need no data, checked before a folder is made or a data set read: a bad
 * value is a usage error (exit 2), said at once. What depends on the data (the classes, a batch
 * larger than the training images) is checked by the trainer. */
static int check_settings(cn_ctx *ctx, const train_opts *o)
{
    const cn_train_config *c = &o->cfg;
    if (!(c->val_fraction >= 0 && c->val_fraction <= CN_VAL_FRACTION_MAX))
        return cli_usage_error("train", "--val %g: it must be in [0, %g] (0: no validation)", c->val_fraction,
                               CN_VAL_FRACTION_MAX);
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
        return cli_usage_error("train", "--label-smoothing %g: it must lie in [0, 1)", c->label_smoothing);
    if (o->shards > c->batch)
        return cli_usage_error("train", "--shards %lld of a batch of %lld: a shard needs an image at least",
                               (long long)o->shards, (long long)c->batch);
    /* a setting the schedule does not read would be dropped without a word */
    if (o->warmup_given && c->optim.schedule == CN_SCHED_ONECYCLE)
        return cli_usage_error("train", "--warmup: one-cycle (the default schedule) takes none: its learning rate "
                                        "rises over the first 30 %% of the steps by itself; give --schedule "
                                        "constant, step or cosine with --warmup");
    if (o->step_size_given && c->optim.schedule != CN_SCHED_STEP)
        return cli_usage_error("train", "--step-size is the step schedule's: give --schedule step with it");
    cn_optim_config oc = c->optim;
    oc.total_steps = 1; /* known once the data is read: any count passes here */
    if (cn_optim_config_check(ctx, &oc)) return cli_usage_error("train", "%s", cn_ctx_message(ctx));
    return 0;
}

/* dir removed if it holds nothing but its lock file: a folder made for a run that never wrote */
static void remove_if_bare(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    int other = 0;
    for (struct dirent *e; !other && (e = readdir(d));)
        other = strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".lock");
    closedir(d);
    char lk[4200];
    snprintf(lk, sizeof lk, "%s/.lock", dir);
    if (!other && (!unlink(lk) || errno == ENOENT)) rmdir(dir);
}

int cmd_train(int argc, char **argv)
{
    train_opts o;
    opts_init(&o);
    int rc = parse_args(argc, argv, &o);
    if (rc != CLI_GO_ON) return rc;
    rc = 0;
    if (o.resume) {
        /* the run continues with the settings it was started with */
        for (int i = 0; i < argc; i++) {
            int valued = !strcmp(argv[i], "--resume") || !strcmp(argv[i], "--epochs") || !strcmp(argv[i], "--threads");
            if (!valued && strcmp(argv[i], "--quiet") && strncmp(argv[i], "--resume=", 9) && strncmp(argv[i], "--epochs=", 9) &&
                strncmp(argv[i], "--threads=", 10))
                return cli_usage_error("train", "--resume DIR takes no other settings (only --epochs N, --threads N and "
                                                "--quiet)");
            i += valued;
        }
    } else if ((o.spec && o.spec_text) || (!o.spec && !o.spec_text && !o.init_from)) {
        return cli_usage_error("train", "give a spec file (as models/fmnist-small.cnn) or -e TEXT (or --init-from RUN)");
    }
    char out[2048];
    if (o.resume) snprintf(out, sizeof out, "%s", o.resume);
    else if (o.out) snprintf(out, sizeof out, "%s", o.out);
    else if (o.spec_text) snprintf(out, sizeof out, "runs/inline");
    else if (!o.spec) snprintf(out, sizeof out, "runs/fine-tuned");
    else {
        const char *base = strrchr(o.spec, '/') ? strrchr(o.spec, '/') + 1 : o.spec;
        snprintf(out, sizeof out, "runs/%.*s", (int)(strcspn(base, ".")), base);
    }
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    if (!o.resume && (rc = check_settings(ctx, &o))) {
        cn_ctx_destroy(ctx);
        return rc;
    }
    char *args = NULL, *words = NULL, *spec = NULL;
    int lock = -1, top_new = 0; /* top_new: --seeds made the top folder now */
    int size;
    o.follower = launched_rank(&size) > 0;
    if (o.follower) o.quiet = 1;
    /* --threads is the invocation's: a resumed run's saved settings (older runs kept it) yield */
    int given_threads = o.threads_given ? cn_threads() : 0;
    if (o.follower) {
        /* a follower only reads the run: the first process holds and writes the folder */
        if (o.resume) rc = resume_settings(ctx, &o, &args, &words, &spec);
        else if (!(args = run_args(argc, argv))) rc = cli_error("out of memory");
    } else if (o.resume) {
        struct stat sb;
        if (stat(o.resume, &sb) || !S_ISDIR(sb.st_mode)) rc = cli_error("%s: no such run folder", o.resume);
        else if (!(rc = cli_run_lock(ctx, out, &lock))) rc = resume_settings(ctx, &o, &args, &words, &spec);
    } else {
        /* --seeds: the top folder is held for the whole invocation; each seed's by train_once */
        struct stat sb;
        top_new = o.seeds > 1 && stat(out, &sb) != 0;
        if (!(args = run_args(argc, argv))) rc = cli_error("out of memory");
        else if (!(rc = claim_folders(&o, out)) && o.seeds > 1 && !(rc = cli_run_lock(ctx, out, &lock)))
            rc = claim_folder(&o, out, 1);
    }
    if (given_threads) cn_set_threads(given_threads), o.threads_given = 1;
    if (!rc) rc = open_parallel(ctx, &o);
    if (!rc && o.par && !o.shards) {
        /* the shards under mpirun's default are kept with the run's settings: a resume on
         * another number of processes, or on one, cuts the batch as the run did */
        int k = cn_parallel_shards(o.par, o.cfg.batch);
        char *more = malloc(strlen(args) + 32);
        if (!more) rc = cli_error("out of memory");
        else {
            sprintf(more, "%s--shards\n%d\n", args, k); /* the default's own count: nothing changes now */
            free(args);
            args = more;
            o.shards = k;
        }
    }
    progress_state ps = { .tty = isatty(2), .quiet = o.quiet, .seeds = o.seeds };
    double accs[1000][2];
    int done = 0;
    for (int64_t k = 0; k < o.seeds && !rc; k++) {
        char dir[4096];
        if (o.seeds > 1) snprintf(dir, sizeof dir, "%s/seed-%lld", out, (long long)(o.cfg.seed + (uint64_t)k));
        else snprintf(dir, sizeof dir, "%s", out);
        rc = train_once(ctx, &o, dir, o.cfg.seed + (uint64_t)k, args, &ps, accs[k]);
        if (!rc) done++;
    }
    for (int v = 0; !rc && o.seeds > 1 && v < (ps.has_test && o.tta ? 2 : 1); v++) {
        double mean = 0, var = 0;
        for (int i = 0; i < done; i++) mean += accs[i][v] / done;
        for (int i = 0; i < done; i++) var += (accs[i][v] - mean) * (accs[i][v] - mean) / (done > 1 ? done - 1 : 1);
        char with[64] = "";
        if (v) snprintf(with, sizeof with, " with --tta %s", cli_tta_views[o.tta]);
        printf("%s%s accuracy%s over %d seeds: %.2f +- %.2f %% (mean +- sample std)\nruns:", v ? "" : "\n",
               ps.has_test ? "test" : ps.validates ? "best validation" : "best training", with, done, 100 * mean,
               100 * sqrt(var));
        for (int i = 0; i < done; i++) printf(" %.2f", 100 * accs[i][v]);
        printf("\n");
    }
    cli_run_unlock(lock);
    if (rc && top_new && !done) remove_if_bare(out); /* refused before a seed wrote */
    free(args), free(words), free(spec);
    /* a process that failed ends the job: the others would wait for it forever */
    if (rc && cn_parallel_size(o.par) > 1) {
        fprintf(stderr, "convnet train: process %d of %d stopped (the error above): ending the job\n",
                cn_parallel_rank(o.par), cn_parallel_size(o.par));
        cn_parallel_abort(o.par, rc);
    }
    cn_parallel_close(o.par);
    cn_ctx_destroy(ctx);
    return rc;
}
