/* cli_impl.h — helpers shared by the command files: option parsing, errors, number lists,
 * JSON output. The CLI is the only place that prints or exits. */
#ifndef CN_CLI_IMPL_H
#define CN_CLI_IMPL_H

#include <stdint.h>
#include <stdio.h>

#include "convnet.h"

#define EXIT_USAGE 2

/* "convnet CMD: message" on stderr ("convnet: message" when cmd is NULL); returns 1 (a failure
 * that is not a usage error). cli_error: the same without a command. */
int cli_cmd_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define cli_error(...) cli_cmd_error(NULL, __VA_ARGS__)
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "convnet: <ctx message>", exit status 1. */
int cli_ctx_error(const cn_ctx *ctx);

/* Options: argv walking with "--name value" and "--name=value". */
typedef struct {
    int argc, i;
    char **argv;
    const char *cmd;
} cli_args;

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv);
const char *cli_next(cli_args *a);
int cli_is_option(const char *s);
/* The entry of NULL-terminated `known` within edit distance 2 of word, else NULL. */
const char *cli_closest(const char *word, const char *const *known);

/* A command's options, declared once: one table gives the parsing, the options part of --help
 * and the did-you-mean of an unknown option. A table ends with { 0 }. */
typedef enum {
    CLI_FLAG,  /* no value: *(int *)target = 1 */
    CLI_SET,   /* no value: *(int *)target = lo (a flag that sets a value: gradcheck's --eval) */
    CLI_TEXT,  /* *(const char **)target = the value */
    CLI_INT,   /* *(int64_t *)target = the value, a whole number from lo to hi */
    CLI_REAL,  /* *(double *)target = the value, a finite number */
    CLI_CALL,  /* call(a, option, value): what the command does with it, 0 or the exit status */
} cli_kind;

typedef struct cli_option cli_option;
struct cli_option {
    const char *name;  /* "--batch", or a short one: "-e", "-o" */
    const char *arg;   /* the value's name in --help ("N"); NULL: a flag, which takes none */
    cli_kind kind;
    void *target;
    int64_t lo, hi;
    int (*call)(cli_args *a, const cli_option *opt, const char *value);
    const char *const *choices; /* for call: the names the value may be (cli_choice) */
    int *given;                 /* set to 1 when the option is given; NULL: not kept */
    const char *heading;        /* --help: a line before this option ("training:") */
    const char *help;           /* --help: its text, lines split by '\n'; NULL: not listed */
};

/* Walks argv against opts for command cmd. A plain argument (not an option; "-3" and "-" are
 * plain) goes to plain(state, arg), which returns 1 when it took it; one it refuses, or any with
 * plain NULL, is an unexpected argument. --help and -h call help(opts) when help is not NULL.
 * Returns CLI_GO_ON, or the exit status the command returns: 0 after --help, EXIT_USAGE after
 * printing the usage error: a missing or bad value, an unknown option (did you mean: the
 * closest name of opts, or --help). */
#define CLI_GO_ON (-1)
int cli_parse(const char *cmd, int argc, char **argv, const cli_option *opts, void (*help)(const cli_option *opts),
              int (*plain)(void *state, const char *arg), void *state);
/* The options part of --help: "  NAME ARG" padded to width, the help, its later lines indented. */
void cli_print_options(const cli_option *opts, int width);
/* plain: takes the argument into *(const char **)state when that is still NULL */
int cli_take_one(void *state, const char *arg);
/* for a call: *k = the index of value in opt->choices, else the usage error with a did-you-mean */
int cli_choice(cli_args *a, const cli_option *opt, const char *value, int *k);
/* call for an option of choices: *(int *)opt->target = the index of the value's name */
int cli_choice_option(cli_args *a, const cli_option *opt, const char *value);
/* call for --threads N: the kernels' threads (default: OMP_NUM_THREADS, else one per core) */
int cli_threads_option(cli_args *a, const cli_option *opt, const char *value);
/* --device and --precision, the same two rows in every command that runs a net */
typedef struct cli_device { int device, precision; } cli_device; /* indices of the names below */
extern const char *const cli_devices[], *const cli_precisions[];
/* --init I: the initialisers' names, in cn_init's order */
extern const char *const cli_inits[];
#define CLI_DEVICE_OPTIONS(d)                                                                               \
    { "--device", "D", CLI_CALL, &(d).device, .call = cli_choice_option, .choices = cli_devices,           \
      .help = "where the kernels run: cpu (default) or cuda (the first NVIDIA GPU)" },                    \
    { "--precision", "P", CLI_CALL, &(d).precision, .call = cli_choice_option, .choices = cli_precisions, \
      .help = "fp32 (default), tf32 (cuda: tensor cores on float) or bf16 (cuda: conv, dense and activations in bf16)" }
/* --resize R: "bilinear", "antialias" (cn_resize's order) */
extern const char *const cli_resizes[];
/* --tta V: test-time augmentation, the index of cli_tta_views (cn_tta's order) */
extern const char *const cli_tta_views[];
/* ... what each does, as the end of a line that names the images */
extern const char *const cli_tta_said[];
#define CLI_TTA_HELP                                                                               \
    "test-time augmentation, the net's outputs averaged over views of each\n"                  \
    "image: none (default), flip (the image and its mirror image) or flip-shift\n"             \
    "(those and their shifts by a pixel up, down, left and right: 10 views); for\n"            \
    "a net trained with --flip (and --crop)"
/* Runs net on the device chosen: 0, or the exit status after printing why it cannot (no GPU). */
int cli_use_device(cn_ctx *ctx, cn_net *net, const cli_device *d);
/* Whether the device chosen can run here, before the slow work starts: 0, or as above. */
int cli_device_ready(cn_ctx *ctx, const cli_device *d);

#define CLI_THREADS_HELP "threads for the kernels (default: OMP_NUM_THREADS, else one per core)"

int cli_parse_int(const char *cmd, const char *what, const char *s, int64_t lo, int64_t hi, int64_t *out);

/* The whole file, NUL-terminated and malloc'ed (*len: its bytes, may be NULL); at most about max
 * bytes. NULL with *status set (the error printed) on failure. */
char *cli_read_file(const char *path, size_t max, size_t *len, int *status);

int cli_parse_double(const char *cmd, const char *what, const char *s, double *out);
/* "1,0,-1;1,0,-1" or "@file" (numbers separated by commas/spaces, rows by ';' or newlines).
 * *v is malloc'ed; rows x cols. Ragged rows are an error. Returns 0 or an exit status. */
int cli_parse_matrix(const char *cmd, const char *what, const char *s, float **v, int64_t *rows, int64_t *cols);
/* Matrices of one size, one a channel, separated by '|' in the argument ("1,2;3,4 | 5,6;7,8", or
 * "@r.txt|@g.txt": each channel as cli_parse_matrix takes it): *v (channels, rows, cols). */
int cli_parse_channels(const char *cmd, const char *what, const char *s, float **v, int64_t *channels, int64_t *rows,
                       int64_t *cols);
/* The spec argument of a command: "-e TEXT" (into text), or the first plain argument as a file
 * when neither is given yet (cli_spec_plain, state: the cli_spec). cli_spec_check: exactly one
 * given, else the usage error (exit 2). */
typedef struct {
    const char *file, *text;
} cli_spec;
int cli_spec_plain(void *spec, const char *arg);
int cli_spec_check(const char *cmd, const char *file, const char *text);
/* cli_parse of a command whose plain argument is its spec, then cli_spec_check: CLI_GO_ON, or
 * the exit status (0 after --help). */
int cli_parse_spec(const char *cmd, int argc, char **argv, const cli_option *opts, void (*help)(const cli_option *opts),
                   cli_spec *spec);
/* The net of a spec file, of a checkpoint or run folder (its spec; its weights loaded too), or of
 * inline text (-e) when file is NULL. */
cn_status cli_load_net(cn_ctx *ctx, const char *file, const char *text, cn_net **net);
/* Size with unit: 8GiB, 512MiB, 1.5GB, 1000000 (bytes). */
int cli_parse_bytes(const char *cmd, const char *s, int64_t *out);

/* 3,538,944 */
void cli_count(char *buf, size_t cap, int64_t n);
/* 1.5 GiB (bytes in the largest unit that keeps it >= 1) */
void cli_bytes(char *buf, size_t cap, int64_t n);
void cli_json_string(FILE *f, const char *s);
/* Shortest form that reads back to the same float / double. */
void cli_json_float(FILE *f, double v, int is_float);
/* "top-2 accuracy 95.10%, top-3 97.52%, top-5 99.20%" from an evaluation's ranks
 * (cn_evaluate_ranks) of count images: k = 2, 3, 5, 10, 20, 50, ... up to top, and top, each
 * short of the classes (where it is 100%). Returns 0, having written nothing, for 2 classes. */
int cli_top_k(FILE *f, const int64_t *ranks, int32_t classes, int64_t top, int64_t count);
/* The n largest cells off the diagonal of a k x k confusion matrix ([true][predicted]), the
 * evaluation's most frequent mistakes: most first (equal counts: by true class, then predicted
 * class), cells of 0 left out; pair[i][0] the true class, pair[i][1] the predicted. Returns how
 * many. */
#define CLI_MISTAKES 5
int cli_most_confused(const int64_t *confusion, int32_t k, int n, int32_t (*pair)[2]);

/* A file built in memory, then written to its path atomically (a page, run.json, a CSV): a
 * reader never sees half of it. cli_memfile_open: m->f to write to; 0, or the exit status after
 * the error. cli_memfile_commit: closes m and, when rc is 0, writes it to path; frees it (m->f
 * NULL: nothing). Returns rc, or the exit status of a write that failed. */
typedef struct { FILE *f; char *text; size_t len; } cli_memfile;
int cli_memfile_open(cli_memfile *m);
int cli_memfile_commit(cn_ctx *ctx, cli_memfile *m, const char *path, int rc);

/* ---- data and checkpoints of the run commands (run_data.c) ---- */
#define CLI_FASHION_MNIST "/usr/share/datasets/fashion-mnist"
/* "fashion-mnist" (or NULL) -> Debian's folder; anything else as given */
const char *cli_data_dir(const char *data);
/* The class names of a well-known IDX data set (Fashion-MNIST's), else NULL. */
const char *const *cli_known_class_names(const char *dir, int32_t classes);
typedef enum { CLI_HALF_TEST, CLI_HALF_TRAIN, CLI_HALF_VAL } cli_half;
/* The training, test or validation half of an MNIST-format folder or of an image folder in
 * halves, or a plain image folder (all of it), converted to the input's shape; *has_test says
 * whether a separate test half exists. */
cn_status cli_load_data(cn_ctx *ctx, const char *data, cli_half half, const cn_layer_info *input, cn_dataset *ds,
                        int *has_test);
/* The same, the images decoded (an image folder) or converted (IDX) when a batch takes them
 * (lazy: data-parallel training, where each process decodes its shards' images only). */
cn_status cli_open_data(cn_ctx *ctx, const char *data, cli_half half, const cn_layer_info *input, int lazy,
                        cn_dataset *ds, int *has_test);
/* 0 when the images of ds (read from data) have the net's input shape, else the exit status after
 * the error (IDX images are not resized to the input, as an image folder's are) */
int cli_data_fits(const char *data, const cn_dataset *ds, const cn_layer_info *input);
/* What cli_load_data reads, for messages: "DIR/test", "DIR (t10k-*: the test half)", ... */
const char *cli_data_name(const char *data, cli_half half, char *buf, size_t cap);
/* The data a checkpoint's run was tested on: its "test_data" (train --test), else its "data". */
const char *cli_test_data(const cn_checkpoint *ck);
/* A spec file where a run or a checkpoint is wanted (`convnet eval models/lenet5.cnn`): the
 * error said (train it first) and its exit status; else 0. */
int cli_refuse_spec(const char *arg);
/* The error of arg, a checkpoint or run folder that did not read (its message in ctx): a spec
 * named as one (cli_refuse_spec), else ctx's message; returns the exit status. Asked only on a
 * failure, so a checkpoint that reads is not also parsed as a spec. */
int cli_checkpoint_error(cn_ctx *ctx, const char *arg);
/* Reads a checkpoint (a file or a run folder's model.safetensors), its net and normalisation;
 * returns 0 or the exit status after printing the error. */
int cli_open_checkpoint(cn_ctx *ctx, const char *arg, cn_checkpoint **ck, cn_net **net, float *mean, float *std);
/* An image folder's classes are its sub-folders sorted and numbered from 0, a checkpoint's those
 * it was trained on (its class_names, k of them): scored by number, a folder of some of them
 * (cat/ and dog/ of ten classes) or of others would be scored against the wrong classes. So ds's
 * labels and names become the checkpoint's by name (a folder named by a class's number, "7", is
 * that class); a class it does not know is an error (0 or the exit status after saying so). A
 * checkpoint without class names, or IDX data, is left by number. */
int cli_match_classes(const cn_checkpoint *ck, int32_t k, cn_dataset *ds, const char *data);
/* The same from the folder's listing alone, before its images are decoded (minutes for
 * thousands of photos), so that a class the model lacks is said at once; 0 for IDX data and
 * for a folder that does not list (its load says why). */
int cli_match_classes_first(cn_ctx *ctx, const cn_checkpoint *ck, int32_t k, const char *data, const cn_layer_info *in);
/* The same onto k names of another's (a training half's: whose names them in the error, "the
 * training half's"): ds's classes and labels become those of names, by name or number. */
int cli_map_classes(char *const *names, int32_t k, const char *whose, cn_dataset *ds, const char *data);
/* 0, or the exit status after saying so, when a run's folder out (made or not) would lie in the
 * image folder of data (an image folder's class folders, or a data set in halves' train/, val/
 * or test/), where a later reading of the data would take it for a class of its own. */
int cli_out_outside_data(const char *out, const char *data);
/* A new context and in it the model of a checkpoint or run folder (cn_model_load); returns 0, or
 * the exit status after printing the error (*ctx and *model then NULL). */
int cli_open_model(const char *arg, cn_ctx **ctx, cn_model **model);
/* ---- run folders (run_dir.c) ---- */
/* Creates dir, takes its lock for this process's life (*fd; another process holding it is an
 * error naming it) and removes the temporary files of interrupted writes. 0 or exit status. */
int cli_run_lock(cn_ctx *ctx, const char *dir, int *fd);
void cli_run_unlock(int fd);
/* The error (exit status) when another process holds dir's lock, else 0; takes nothing. */
int cli_run_busy(const char *dir);
/* The first file of a run found in dir (run.json, last.safetensors, ...), NULL when none. */
const char *cli_run_found(const char *dir);
/* Removes a run's files from dir (--replace). 0 or exit status. */
int cli_run_remove(const char *dir);
/* dir/run.json: the run's settings (train_args), seed and spec text, written before the first
 * step; read (malloc'ed strings) to start again a run stopped before its first checkpoint. */
int cli_run_manifest_write(cn_ctx *ctx, const char *dir, const char *args, uint64_t seed, const char *spec);
int cli_run_manifest_read(const char *dir, char **args, char **seed, char **spec);
/* dir/report.html as a live page while dir's run trains: the charts of metrics.csv and steps.csv
 * so far and the model (from last.safetensors), no test results yet (too slow to evaluate every
 * epoch), a banner "training: epoch E of N done", and it reloads itself in the browser. Written
 * atomically; cmd_train calls it after every epoch, cmd_report writes the final page over it
 * (report.c). 0 or the exit status after printing the error. */
int cli_report_live(const char *dir, int64_t epoch, int64_t epochs);
/* dir/report.html, the final page (as `convnet report dir` writes it): with tta, the accuracy with
 * those views averaged too, tta_acc if measured already (cmd_train's), else measured (NaN) */
int cli_report_final(const char *dir, cn_tta tta, double tta_acc);

/* ---- weights (weights.c) ---- */
/* Sets net's parameters from file: a text file (one tensor a line, "layer.weight = 1,1; 1,-1",
 * PyTorch's layouts, '#' comments), JSON ({"layer.weight": [[1,1],[1,-1]]}) or a checkpoint (a
 * .safetensors file or a run folder: the tensors whose names and shapes match). Every trainable
 * tensor must be given. Returns 0, or the exit status after printing the error (file and line). */
int cli_load_weights(cn_ctx *ctx, cn_net *net, const char *file, const char *cmd);
/* whether cli_load_weights takes file as a checkpoint (a .safetensors file, or a folder) */
int cli_is_checkpoint(const char *file);

int cmd_summary(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_report(int argc, char **argv); /* DIR/report.html (cli_report_final) */
int cmd_data(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_calc(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_gradflow(int argc, char **argv);
/* The index of the layer called name in net, -1 when none is */
int cli_layer_index(cn_ctx *ctx, const cn_net *net, const char *name);
/* trace --html: the traced step's page, written atomically (trace_html.c); grads: the step has a
 * loss, gradients and an update (before: the parameters before it) */
int cli_trace_html(cn_ctx *ctx, const cn_net *net, int64_t batch, int grads, double loss, const char *loss_name,
                   const char *optimizer, double lr, const float *before, const char *path);
int cmd_filter(int argc, char **argv);
int cmd_gradcheck(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_export(int argc, char **argv); /* onnx.c */
int cmd_import(int argc, char **argv);

#endif
