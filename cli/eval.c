/* eval.c — `convnet eval` (accuracy, loss, top-k accuracy, per-class scores, the confusion
 * matrix and its most frequent mistakes, of a checkpoint on a data set) and `convnet predict`
 * (the top classes of image files). */
#define _POSIX_C_SOURCE 200809L /* strdup, strndup */
#include <ctype.h>
#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../src/data/data_impl.h" /* cn_list_dir: a folder's files, skipped as the folder loader skips them */
#include "cli_impl.h"

/* class c's name as the model gives it; its number past the model's classes */
static const char *class_name(const cn_model *model, int32_t c, char *buf, size_t cap)
{
    const char *name = cn_model_class_name(model, c);
    if (name) return name;
    snprintf(buf, cap, "%d", (int)c);
    return buf;
}

static void eval_help(const cli_option *opts)
{
    printf("usage: convnet eval CKPT [--data D] [--batch N] [--top K] [--tta flip|flip-shift] [--shift DX[,DY]]\n"
           "                         [--rotate DEG] [--zoom F] [--brightness F] [--threads N] [--device cpu|cuda] [--json]\n\n"
           "Evaluates a checkpoint (a .safetensors file, or a run folder: its model.safetensors) on the test\n"
           "half of an MNIST-format folder or on every image of an image folder: accuracy, loss, top-k\n"
           "accuracy (the true class among the k most likely), accuracy (recall), precision and F1 per\n"
           "class with their macro and weighted averages (as scikit-learn's classification_report), the\n"
           "confusion matrix (rows: true class, columns: predicted) and its most frequent mistakes.\n\n"
           "--shift, --rotate, --zoom and --brightness change every image first: how much a net's\n"
           "accuracy depends on where the object sits, its angle, its size and the light (a convolution\n"
           "is translation equivariant, a dense layer is not; neither is rotation invariant). The image\n"
           "is zoomed and rotated about its centre, then moved, each pixel sampled bilinearly from the\n"
           "original, zeros (black) outside it; then every pixel is scaled by the brightness, at most 1.\n\n");
    cli_print_options(opts, 12);
}

/* what eval does to every image first (--shift, --rotate, --zoom, --brightness) */
typedef struct {
    int64_t shift[2]; /* pixels right, down */
    double rotate;    /* degrees, counterclockwise as seen */
    double zoom;      /* > 1: larger */
    double brightness;
} view_change;

static int view_changed(const view_change *v)
{
    return v->shift[0] || v->shift[1] || v->rotate != 0 || v->zoom != 1 || v->brightness != 1;
}

/* --shift DX[,DY]: whole numbers, each less than the image's size (checked against it later) */
static int shift_option(cli_args *a, const cli_option *opt, const char *value)
{
    int64_t *d = opt->target;
    char *end, *end2;
    long long x = strtoll(value, &end, 10), y = 0;
    if (end != value && *end == ',') y = strtoll(end + 1, &end2, 10), end = end2 == end + 1 ? end : end2;
    if (end == value || *end || llabs(x) > 100000 || llabs(y) > 100000)
        return cli_usage_error(a->cmd, "%s: expected DX or DX,DY in pixels (as 3 or -2,1), got '%s'", opt->name, value);
    d[0] = x, d[1] = y;
    return 0;
}

/* Every image of ds changed by v: output pixel p (x right, y down, centres at whole numbers)
 * samples the original at q = c + R^-1 (p - d - c) / zoom, c the image's centre, d the shift, R
 * the rotation seen counterclockwise (in y-down coordinates, R = [cos sin; -sin cos]);
 * bilinearly, zeros outside; then times the brightness, at most 1. A whole shift alone copies
 * pixels exactly. */
static void change_images(cn_dataset *ds, const view_change *v, float *plane)
{
    int64_t h = ds->h, w = ds->w;
    double rad = v->rotate * 3.14159265358979323846 / 180, cs = cos(rad), sn = sin(rad);
    if (v->rotate == 0) cs = 1, sn = 0;
    double cx = (double)(w - 1) / 2, cy = (double)(h - 1) / 2;
    for (int64_t p = 0; p < ds->count * ds->c; p++) {
        float *img = ds->images + p * h * w;
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                double px = (double)(x - v->shift[0]) - cx, py = (double)(y - v->shift[1]) - cy;
                double qx = cx + (cs * px - sn * py) / v->zoom, qy = cy + (sn * px + cs * py) / v->zoom;
                double x0 = floor(qx), y0 = floor(qy), fx = qx - x0, fy = qy - y0, val = 0;
                for (int j = 0; j < 4; j++) { /* the four neighbours, their weights */
                    int64_t sx = (int64_t)x0 + (j & 1), sy = (int64_t)y0 + (j >> 1);
                    double wgt = ((j & 1) ? fx : 1 - fx) * ((j >> 1) ? fy : 1 - fy);
                    if (wgt != 0 && sx >= 0 && sx < w && sy >= 0 && sy < h) val += wgt * img[sy * w + sx];
                }
                val *= v->brightness;
                plane[y * w + x] = (float)(val > 1 ? 1 : val);
            }
        memcpy(img, plane, (size_t)(h * w) * sizeof *plane);
    }
}

/* whether folders a and b (as --data names them; b may be NULL) are one folder */
static int same_folder(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!b) return 0;
    a = cli_data_dir(a), b = cli_data_dir(b);
    if (!strcmp(a, b)) return 1;
    return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* What eval scored, for its first line: cli_data_name's, and for a plain image folder the run
 * trained on (no test half to hold out) that the training images are in it, as the report says. */
static const char *scored_name(const cn_checkpoint *ck, const char *data, char *buf, size_t cap)
{
    const char *trained = cn_checkpoint_meta(ck, "data");
    if (cn_data_find_layout(cli_data_dir(data), NULL, NULL) == CN_DATA_FOLDER && same_folder(data, trained))
        snprintf(buf, cap, "%s (all of it: no test half, training images included)", cli_data_dir(data));
    else cli_data_name(data, CLI_HALF_TEST, buf, cap);
    return buf;
}

/* a share as "83.07%" in a field of width w, or "-" where it is NaN (nothing to count) */
static void print_share(double v, int w)
{
    if (isnan(v)) printf("%*s", w, "-");
    else printf("%*.2f%%", w - 1, 100 * v);
}

/* "precision":..,"recall":..,"f1":.. (null where NaN), after a comma unless first */
static void json_scores(const cn_class_score *s, int first)
{
    const double v[3] = { s->precision, s->recall, s->f1 };
    static const char *const key[3] = { "precision", "recall", "f1" };
    for (int q = 0; q < 3; q++) {
        printf("%s\"%s\":", q || !first ? "," : "", key[q]);
        if (isnan(v[q])) printf("null");
        else printf("%.6f", v[q]);
    }
}

int cmd_eval(int argc, char **argv)
{
    const char *ckpt = NULL, *data = NULL;
    int64_t batch = 256, top = 5;
    view_change view = { { 0, 0 }, 0, 1, 1 };
    int json = 0, tta = CN_TTA_NONE;
    cli_device dev = { 0 };
    const cli_option opts[] = {
        { "--data", "D", CLI_TEXT, &data, .help = "default: the data set the checkpoint was trained on" },
        { "--batch", "N", CLI_INT, &batch, 1, 1 << 20, .help = "images per forward pass (default 256)" },
        { "--top", "K", CLI_INT, &top, 1, 1 << 20,
          .help = "top-k accuracy for k = 2, 3, 5, 10, 20, 50, ... up to K, and K (default 5; --json: every k)" },
        { "--tta", "V", CLI_CALL, &tta, .call = cli_choice_option, .choices = cli_tta_views, .help = CLI_TTA_HELP },
        { "--shift", "DX[,DY]", CLI_CALL, view.shift, .call = shift_option,
          .help = "move every image DX pixels right and DY down first (negative: left, up)" },
        { "--rotate", "DEG", CLI_REAL, &view.rotate, .help = "turn every image DEG degrees counterclockwise first" },
        { "--zoom", "F", CLI_REAL, &view.zoom, .help = "scale every image by F about its centre first (2: twice as large)" },
        { "--brightness", "F", CLI_REAL, &view.brightness,
          .help = "multiply every pixel by F first (0.5: half as bright; at most 1 after)" },
        { "--threads", "N", CLI_CALL, .call = cli_threads_option, .help = CLI_THREADS_HELP },
        CLI_DEVICE_OPTIONS(dev),
        { "--json", NULL, CLI_FLAG, &json,
          .help = "{\"accuracy\",\"loss\",\"count\",\"top_accuracy\":[k = 1, 2, ...],\"tta\",\"shift\":[dx,dy],\"per_class\":[{\"class\",\"name\",\"count\",\n"
                  "\"accuracy\",\"predicted\",\"precision\",\"recall\",\"f1\"}],\"macro_avg\",\"weighted_avg\",\"confusion\",\n"
                  "\"most_confused\":[{\"true\",\"predicted\",\"count\"}]}" },
        { 0 },
    };
    int usage = cli_parse("eval", argc, argv, opts, eval_help, cli_take_one, &ckpt);
    if (usage != CLI_GO_ON) return usage;
    if (!ckpt) return cli_usage_error("eval", "give a checkpoint (a .safetensors file or a run folder)");
    cn_ctx *ctx;
    cn_model *model;
    int rc = cli_open_model(ckpt, &ctx, &model);
    if (rc) return rc;
    cn_net *net = cn_model_net(model);
    float mean[4], std[4];
    cn_model_norm(model, mean, std);
    const cn_checkpoint *ck = cn_model_checkpoint(model);
    if (!data) data = cli_test_data(ck);
    cn_layer_info in, out;
    cn_net_layer(ctx, net, 0, 1, &in);
    cn_net_layer(ctx, net, cn_net_layer_count(net) - 1, 1, &out);
    cn_dataset ds;
    cn_eval_result r = { 0 };
    cn_class_score *score = NULL;
    int64_t *ranks = calloc((size_t)(out.c * out.h * out.w), sizeof *ranks); /* ranks[k]: true class k+1-th */
    char buf[32];
    memset(&ds, 0, sizeof ds);
    if (!(rc = cli_use_device(ctx, net, &dev)) && !(rc = cli_match_classes_first(ctx, ck, cn_model_classes(model), data, &in)) &&
        cli_load_data(ctx, data, CLI_HALF_TEST, &in, &ds, NULL))
        rc = cli_ctx_error(ctx);
    if (!rc) rc = cli_data_fits(data, &ds, &in); /* the message names the data */
    if (!rc) rc = cli_match_classes(ck, cn_model_classes(model), &ds, data);
    if (!rc && view_changed(&view)) {
        float *plane = NULL;
        if (llabs(view.shift[0]) >= ds.w || llabs(view.shift[1]) >= ds.h)
            rc = cli_usage_error("eval", "--shift %lld,%lld moves the %lldx%lld images out of sight", (long long)view.shift[0],
                                 (long long)view.shift[1], (long long)ds.h, (long long)ds.w);
        else if (!(view.zoom >= 0.01 && view.zoom <= 100) || !(fabs(view.rotate) <= 3600) ||
                 !(view.brightness >= 0 && view.brightness <= 100))
            rc = cli_usage_error("eval", "--zoom takes 0.01 to 100, --rotate -3600 to 3600 degrees, --brightness 0 to 100");
        else if (!(plane = malloc((size_t)(ds.h * ds.w) * sizeof *plane))) rc = cli_error("out of memory");
        else change_images(&ds, &view, plane);
        free(plane);
    }
    if (!rc && !ranks) rc = cli_error("out of memory");
    if (!rc && cn_evaluate_ranks(ctx, net, &ds, mean, std, batch, (cn_tta)tta, &r, ranks)) rc = cli_ctx_error(ctx);
    if (rc) goto done;
    int32_t k = r.classes, pair[CLI_MISTAKES][2];
    int mistakes = cli_most_confused(r.confusion, k, CLI_MISTAKES, pair);
    cn_class_score avg[2];
    if (!(score = malloc((size_t)k * sizeof *score))) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (cn_class_scores(ctx, &r, score, avg)) {
        rc = cli_ctx_error(ctx);
        goto done;
    }
    if (json) {
        printf("{\"accuracy\":%.6f,\"loss\":%.6f,\"count\":%lld,\"tta\":\"%s\",\"shift\":[%lld,%lld],\"rotate\":",
               r.acc, r.loss, (long long)r.count, cli_tta_views[tta], (long long)view.shift[0], (long long)view.shift[1]);
        cli_json_float(stdout, view.rotate, 0);
        printf(",\"zoom\":");
        cli_json_float(stdout, view.zoom, 0);
        printf(",\"brightness\":");
        cli_json_float(stdout, view.brightness, 0);
        printf(",\"top_accuracy\":[");
        int64_t within = 0; /* the images whose class is among the c+1 most likely */
        for (int32_t c = 0; c < k; c++) printf("%s%.6f", c ? "," : "", (double)(within += ranks[c]) / (double)r.count);
        printf("],\"per_class\":[");
        for (int32_t c = 0; c < k; c++) {
            printf("%s{\"class\":%d,\"name\":", c ? "," : "", (int)c);
            cli_json_string(stdout, class_name(model, c, buf, sizeof buf));
            printf(",\"count\":%lld,\"accuracy\":%.6f,\"predicted\":%lld", (long long)score[c].support,
                   isnan(score[c].recall) ? 0.0 : score[c].recall, (long long)score[c].predicted);
            json_scores(&score[c], 0);
            printf("}");
        }
        printf("]");
        for (int a = 0; a < 2; a++) {
            printf(",\"%s\":{", a ? "weighted_avg" : "macro_avg");
            json_scores(&avg[a], 1);
            printf("}");
        }
        printf(",\"confusion\":[");
        for (int32_t c = 0; c < k; c++) {
            printf("%s[", c ? "," : "");
            for (int32_t p = 0; p < k; p++) printf("%s%lld", p ? "," : "", (long long)r.confusion[c * k + p]);
            printf("]");
        }
        printf("],\"most_confused\":[");
        for (int i = 0; i < mistakes; i++)
            printf("%s{\"true\":%d,\"predicted\":%d,\"count\":%lld}", i ? "," : "", (int)pair[i][0], (int)pair[i][1],
                   (long long)r.confusion[pair[i][0] * k + pair[i][1]]);
        printf("]}\n");
        goto done;
    }
    char used[4300];
    char moved[256] = "";
    if (view.zoom != 1) snprintf(moved + strlen(moved), sizeof moved - strlen(moved), ", zoomed %gx", view.zoom);
    if (view.rotate != 0)
        snprintf(moved + strlen(moved), sizeof moved - strlen(moved), ", turned %g degrees %s", fabs(view.rotate),
                 view.rotate < 0 ? "clockwise" : "counterclockwise");
    if (view.shift[0] || view.shift[1])
        snprintf(moved + strlen(moved), sizeof moved - strlen(moved), ", moved %lld px %s and %lld px %s",
                 llabs(view.shift[0]), view.shift[0] < 0 ? "left" : "right", llabs(view.shift[1]),
                 view.shift[1] < 0 ? "up" : "down");
    if (view.brightness != 1)
        snprintf(moved + strlen(moved), sizeof moved - strlen(moved), ", %g times as bright", view.brightness);
    printf("%s on %s: %lld images%s%s\naccuracy %.2f%%, loss %.4f\n", ckpt, scored_name(ck, data, used, sizeof used),
           (long long)r.count, moved, cli_tta_said[tta], 100 * r.acc, r.loss);
    if (cli_top_k(stdout, ranks, k, top, r.count)) printf(" (the true class among the k most likely)\n");
    printf("\n%-14s %8s %9s %10s %9s\n", "class", "images", "accuracy", "precision", "F1");
    for (int32_t c = 0; c < k; c++) {
        char esc[256];
        printf("%-14s %8lld", cn_text_escape(class_name(model, c, buf, sizeof buf), esc, sizeof esc),
               (long long)score[c].support);
        /* "-": nothing to count (no image of the class; nothing predicted as it) */
        print_share(score[c].recall, 10), print_share(score[c].precision, 11), print_share(score[c].f1, 10);
        printf("\n");
    }
    for (int a = 0; a < 2; a++) {
        printf("%-23s", a ? "weighted avg" : "macro avg");
        print_share(avg[a].recall, 10), print_share(avg[a].precision, 11), print_share(avg[a].f1, 10);
        printf("\n");
    }
    printf("(a class's accuracy is its recall: its images predicted as it; precision: the images predicted\n"
           "as it that are it; F1: their harmonic mean. Averages as scikit-learn's classification_report.)\n");
    /* rows labelled by number and name, columns by number */
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%20s", "");
    for (int32_t p = 0; p < k; p++) printf(" %5d", (int)p);
    printf("\n");
    for (int32_t c = 0; c < k; c++) {
        char esc[256];
        printf("%3d %-16.16s", (int)c, cn_text_escape(class_name(model, c, buf, sizeof buf), esc, sizeof esc));
        for (int32_t p = 0; p < k; p++) printf(" %5lld", (long long)r.confusion[c * k + p]);
        printf("\n");
    }
    if (mistakes) printf("\nthe most frequent mistakes (true class -> predicted class)\n");
    for (int i = 0; i < mistakes; i++) {
        char esc[2][256], buf2[32];
        int64_t n = r.confusion[pair[i][0] * k + pair[i][1]];
        const char *t = cn_text_escape(class_name(model, pair[i][0], buf, sizeof buf), esc[0], sizeof esc[0]);
        printf("%8lld  %s -> %s (%.2f%% of the %s images)\n", (long long)n, t,
               cn_text_escape(class_name(model, pair[i][1], buf2, sizeof buf2), esc[1], sizeof esc[1]),
               100.0 * (double)n / (double)score[pair[i][0]].support, t);
    }
done:
    free(score), free(ranks);
    cn_eval_free(ctx, &r);
    cn_dataset_free(ctx, &ds);
    cn_model_destroy(model);
    cn_ctx_destroy(ctx);
    return rc;
}

static void predict_help(const cli_option *opts)
{
    printf("usage: convnet predict CKPT IMAGE|FOLDER|'GLOB'... [--top K] [--tta flip|flip-shift] [--csv FILE]\n"
           "                       [--threads N] [--device cpu|cuda] [--precision P] [--json]\n\n"
           "The K most likely classes (default 3) of each PNG or JPEG image, resized and converted to the\n"
           "network's input as in training (said under the image's name where it was), with their\n"
           "probabilities. A folder gives every PNG and JPEG file under it, told by its content whatever its\n"
           "name (sorted, sub-folders too; hidden files, Thumbs.db, desktop.ini and __MACOSX skipped),\n"
           "and says how many other files it skipped; a quoted pattern ('photos/*.jpg') is expanded here.\n"
           "A file that cannot be read is reported and the others go on; the exit status is then 1.\n");
    cli_print_options(opts, 12);
}

/* a growable list of paths, malloc'ed */
typedef struct {
    char **v;
    int n, cap;
} path_list;

static int path_add(path_list *l, const char *p)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        l->v = v, l->cap = cap;
    }
    return (l->v[l->n] = strdup(p)) ? (l->n++, 0) : -1;
}

static void path_free(path_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* the files of a folder given to predict that were skipped, by kind (HEIC ... other) */
typedef struct {
    int n, by[CN_FILE_KINDS];
} skip_tally;

/* "4 files in WHERE are not PNG or JPEG[ and were skipped] (2 HEIC, 1 WebP, 1 other)": the
 * formats most first, other last; then how to go on when some are photos in another format */
static const char *skip_said(const skip_tally *t, const char *where, int skipped, char *buf, size_t cap)
{
    char esc[4300];
    int one = t->n == 1, photos = t->n > t->by[CN_FILE_OTHER];
    size_t len = (size_t)snprintf(buf, cap, "%d file%s in %s %s not PNG or JPEG%s (", t->n, one ? "" : "s",
                                  cn_text_escape(where, esc, sizeof esc), one ? "is" : "are",
                                  !skipped ? "" : one ? " and was skipped" : " and were skipped");
    int said[CN_FILE_KINDS] = { 0 };
    for (int k = 0; k < CN_FILE_KINDS && len < cap; k++) {
        int most = -1; /* the largest count not said yet, other last */
        for (int j = CN_FILE_HEIC; j < CN_FILE_OTHER; j++)
            if (!said[j] && t->by[j] && (most < 0 || t->by[j] > t->by[most])) most = j;
        if (most < 0 && !said[CN_FILE_OTHER] && t->by[CN_FILE_OTHER]) most = CN_FILE_OTHER;
        if (most < 0) break;
        said[most] = 1;
        len += (size_t)snprintf(buf + len, cap - len, "%s%d %s", k ? ", " : "", t->by[most], cn_file_kind_names[most]);
    }
    const char *hint = !photos ? "" : one ? ": convert it to JPEG or PNG" : ": convert them to JPEG or PNG";
    if (len < cap) snprintf(buf + len, cap - len, ")%s", hint);
    return buf;
}

/* Every image file under dir into l, as a class folder's are listed (cn_list_class_files: at any
 * depth in ImageFolder's order, a link back up not walked again; regular files only, as a FIFO
 * named .png would wait for ever; hidden names and an operating system's litter skipped); 0 or
 * exit status. A file is taken by its content (a PNG or JPEG whatever its name), and so is one
 * named .png, .jpg or .jpeg that is none, or one that cannot be read, so that reading it says
 * why; the others are counted in t. */
static int add_folder(cn_ctx *ctx, path_list *l, const char *dir, skip_tally *t)
{
    cn_names files = { 0, NULL };
    int rc = cn_list_class_files(ctx, dir, &files) ? cli_ctx_error(ctx) : 0;
    for (int64_t i = 0; !rc && i < files.count; i++) {
        char *path = cn_path_join(ctx, dir, files.names[i]);
        if (!path) {
            rc = cli_error("out of memory");
            break;
        }
        int kind = cn_file_kind_at(path);
        if (kind < 0 || kind == CN_FILE_PNG || kind == CN_FILE_JPEG || is_image_name(files.names[i]))
            rc = path_add(l, path) ? cli_error("out of memory") : 0;
        else t->n++, t->by[kind]++;
        cn_free(ctx, path);
    }
    cn_names_free(ctx, &files);
    return rc;
}

/* pattern with every letter outside a bracket expression made a bracket of both cases ('*.jpg':
 * '*.[jJ][pP][gG]'), in buf (cap bytes); NULL when it does not fit */
static const char *any_case(const char *pattern, char *buf, size_t cap)
{
    size_t n = 0;
    int bracket = 0;
    for (const char *p = pattern; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (n + 5 >= cap) return NULL;
        if (c == '\\' && p[1] && !bracket) buf[n++] = *p++, buf[n++] = *p; /* an escaped character stays itself */
        else if (!bracket && isalpha(c) && tolower(c) != toupper(c))
            buf[n++] = '[', buf[n++] = (char)tolower(c), buf[n++] = (char)toupper(c), buf[n++] = ']';
        else {
            if (c == '[') bracket = 1;
            else if (c == ']') bracket = 0;
            buf[n++] = (char)c;
        }
    }
    buf[n] = 0;
    return buf;
}

/* "no file matches", and where files match it but for letter case (a pattern of .jpg files and
 * a camera's IMG_0001.JPG), how many and one of them: patterns match as the shell's do, case
 * and all */
static int no_match(const char *pattern)
{
    char buf[4096], esc[2][4300];
    const char *folded = any_case(pattern, buf, sizeof buf);
    glob_t g;
    if (!folded || glob(folded, 0, NULL, &g)) return cli_error("%s: no file matches", cn_text_escape(pattern, esc[0], sizeof esc[0]));
    int rc = cli_error("%s: no file matches (the pattern is case-sensitive: %zu file%s would match it in other case, "
                       "as %s)", cn_text_escape(pattern, esc[0], sizeof esc[0]), g.gl_pathc, g.gl_pathc == 1 ? "" : "s",
                       cn_text_escape(g.gl_pathv[0], esc[1], sizeof esc[1]));
    globfree(&g);
    return rc;
}

/* the images an argument names: a folder's (its other files counted in t), a pattern's
 * matches, or the file itself */
static int add_images(cn_ctx *ctx, path_list *l, const char *arg, skip_tally *t)
{
    struct stat st;
    if (!stat(arg, &st) && S_ISDIR(st.st_mode)) return add_folder(ctx, l, arg, t);
    if (stat(arg, &st) && strpbrk(arg, "*?[")) {
        glob_t g;
        int r = glob(arg, 0, NULL, &g);
        if (r == GLOB_NOMATCH) return no_match(arg);
        if (r) return cli_error("%s: cannot expand the pattern", arg);
        int rc = 0;
        for (size_t i = 0; !rc && i < g.gl_pathc; i++) {
            if (!stat(g.gl_pathv[i], &st) && !S_ISREG(st.st_mode)) continue; /* a pattern's files, as a folder's */
            rc = path_add(l, g.gl_pathv[i]) ? cli_error("out of memory") : 0;
        }
        globfree(&g);
        return rc;
    }
    return path_add(l, arg) ? cli_error("out of memory") : 0;
}

static void csv_field(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Images a forward pass: planning a batch costs its slabs once (activations and gradients),
 * more images a pass run faster. The first 1,000 Fashion-MNIST test images through fmnist-fast
 * on 2 threads, plain / --tta flip-shift: one at a time 1.5 / 14.4 s, 8 0.69 / 5.0 s, 16 0.79 /
 * 4.3 s, 32 0.90 / 4.2 s, 64 1.5 / 6.0 s. */
#define PREDICT_BATCH 16
#define PREDICT_FLOATS (1 << 22) /* input floats a pass, at most */

/* what an image file decoded to: channels (1 or 3), rows, columns */
typedef struct { int64_t c, h, w; } image_source;

/* "resized to 28x28 with antialiasing and turned to gray" where the image is not the net's input
 * as it stands (a photo given to a Fashion-MNIST net: what the net saw is not what the user
 * looks at); how, where it was shrunk (enlarging is bilinear either way) */
static void print_source(const cn_model *model, const image_source *src)
{
    int64_t c, h, w;
    cn_model_input_shape(model, &c, &h, &w);
    int resized = src->h != h || src->w != w, recoloured = src->c != c, shrunk = src->h > h || src->w > w;
    if (!resized && !recoloured) return;
    printf("  (the image: %lldx%lld (HxW) %s;", (long long)src->h, (long long)src->w, src->c == 1 ? "gray" : "colour");
    if (resized)
        printf(" resized to %lldx%lld%s", (long long)h, (long long)w,
               !shrunk ? ""
               : cn_checkpoint_resize(cn_model_checkpoint(model)) == CN_RESIZE_DRAFT
                   ? " with antialiasing (--resize draft: a JPEG 8x that size decoded smaller first)"
               : cn_checkpoint_resize(cn_model_checkpoint(model)) == CN_RESIZE_ANTIALIAS
                   ? " with antialiasing"
                   : " bilinearly (no antialiasing, as in its training)");
    if (recoloured) printf("%s %s", resized ? " and" : "", c == 1 ? "turned to gray" : "its gray copied to 3 channels");
    printf(", as the net's input)\n");
}

/* one image's top classes (prob: its probabilities; preds: room for top) as text, JSON (first:
 * the array's first element) and a CSV row; src: what the file decoded to */
static void print_prediction(const cn_model *model, const float *prob, int top, cn_prediction *preds, const char *img,
                             const image_source *src, int json, int first, FILE *cf)
{
    cn_model_top(model, prob, top, preds);
    if (json) {
        printf("%s{\"image\":", first ? "" : ",");
        cli_json_string(stdout, img);
        printf(",\"source\":{\"h\":%lld,\"w\":%lld,\"channels\":%lld}", (long long)src->h, (long long)src->w,
               (long long)src->c);
        printf(",\"predictions\":[");
    } else {
        char esc[4200];
        printf("%s\n", cn_text_escape(img, esc, sizeof esc));
        print_source(model, src);
    }
    for (int t = 0; t < top && preds[t].index >= 0; t++) {
        const cn_prediction *pr = &preds[t];
        if (json) {
            printf("%s{\"class\":%lld,\"name\":", t ? "," : "", (long long)pr->index);
            cli_json_string(stdout, pr->name);
            printf(",\"probability\":%.6f}", pr->probability);
        } else {
            char esc[256];
            printf("  %6.2f%%  %s\n", 100 * pr->probability, cn_text_escape(pr->name, esc, sizeof esc));
        }
        if (cf && t == 0) csv_field(cf, img), fprintf(cf, ",%lld,", (long long)pr->index), csv_field(cf, pr->name),
            fprintf(cf, ",%.6f,\n", pr->probability);
    }
    if (json) printf("]}");
}

/* predict's plain arguments: the checkpoint, then the images */
typedef struct {
    const char *ckpt, **args;
    int n_args;
} predict_args;

static int predict_plain(void *state, const char *arg)
{
    predict_args *p = state;
    if (!p->ckpt) p->ckpt = arg;
    else p->args[p->n_args++] = arg;
    return 1;
}

int cmd_predict(int argc, char **argv)
{
    const char *csv_path = NULL;
    predict_args p = { .args = calloc((size_t)argc + 1, sizeof(char *)) };
    int64_t top = 3;
    int json = 0, tta = CN_TTA_NONE;
    cli_device dev = { 0 };
    if (!p.args) return cli_error("out of memory");
    const cli_option opts[] = {
        { "--top", "K", CLI_INT, &top, 1, 1000, .help = "classes per image (default 3)" },
        { "--tta", "V", CLI_CALL, &tta, .call = cli_choice_option, .choices = cli_tta_views, .help = CLI_TTA_HELP },
        { "--csv", "FILE", CLI_TEXT, &csv_path,
          .help = "also write image,class,name,probability,error (the most likely class; the\n"
                  "error of an unreadable file), written atomically" },
        { "--threads", "N", CLI_CALL, .call = cli_threads_option, .help = CLI_THREADS_HELP },
        CLI_DEVICE_OPTIONS(dev),
        { "--json", NULL, CLI_FLAG, &json,
          .help = "[{\"image\",\"source\":{\"h\",\"w\",\"channels\"},\"predictions\":[{\"class\",\"name\",\"probability\"}]} or {\"image\",\"error\"}]" },
        { 0 },
    };
    int usage = cli_parse("predict", argc, argv, opts, predict_help, predict_plain, &p);
    if (usage != CLI_GO_ON || !p.ckpt || !p.n_args) {
        free(p.args);
        if (usage != CLI_GO_ON) return usage;
        return cli_usage_error("predict", "give a checkpoint and one or more images or folders");
    }
    const char *ckpt = p.ckpt, **args = p.args;
    int n_args = p.n_args;
    path_list images = { 0 };
    skip_tally *skips = calloc((size_t)n_args, sizeof *skips), all = { 0 }; /* a folder's files skipped, by argument */
    cn_ctx *ctx = NULL;
    int rc = !skips || cn_ctx_create(NULL, &ctx) ? cli_error("out of memory") : 0; /* the folders' listings' */
    for (int i = 0; !rc && i < n_args; i++) rc = add_images(ctx, &images, args[i], &skips[i]);
    cn_ctx_destroy(ctx);
    ctx = NULL;
    char from[4200], said[8800]; /* what the images are, for the first line */
    if (n_args == 1) snprintf(from, sizeof from, "%s", args[0]);
    else snprintf(from, sizeof from, "%s and %d more paths", args[0], n_args - 1);
    int folders = 0, last = 0; /* the folders with files skipped, the last of them */
    for (int i = 0; !rc && i < n_args; i++) {
        if (!skips[i].n) continue;
        folders++, last = i, all.n += skips[i].n;
        for (int k = 0; k < CN_FILE_KINDS; k++) all.by[k] += skips[i].by[k];
        if (images.n) fprintf(stderr, "convnet predict: note: %s\n", skip_said(&skips[i], args[i], 1, said, sizeof said));
    }
    if (!rc && !images.n && all.n) {
        char where[64];
        snprintf(where, sizeof where, "the %d folders given", folders);
        rc = cli_error("no PNG or JPEG images in what was given: %s",
                       skip_said(&all, folders == 1 ? args[last] : where, 0, said, sizeof said));
    } else if (!rc && !images.n) rc = cli_error("no PNG or JPEG images in what was given");
    free(args);
    free(skips);
    cn_model *model = NULL;
    if (!rc) rc = cli_open_model(ckpt, &ctx, &model);
    if (!rc && cn_net_check_classes(ctx, cn_model_net(model), 0)) { /* a map's values are no classes */
        rc = cli_ctx_error(ctx);
        fprintf(stderr, "(`convnet show %s --activations IMAGE --layer LAYER -o OUT.png` draws a layer's maps)\n", ckpt);
    }
    if (!rc && cn_model_set_tta(ctx, model, (cn_tta)tta)) rc = cli_ctx_error(ctx);
    if (!rc) rc = cli_use_device(ctx, cn_model_net(model), &dev);
    if (rc) {
        cn_model_destroy(model);
        path_free(&images);
        cn_ctx_destroy(ctx);
        return rc;
    }
    int64_t c, h, w, k = cn_model_classes(model);
    cn_model_input_shape(model, &c, &h, &w);
    /* the images go through the net PREDICT_BATCH at a time (the probabilities of one at a time,
     * bit for bit), at most PREDICT_FLOATS of input */
    int64_t chw = c * h * w, chunk = PREDICT_FLOATS / chw;
    chunk = chunk < 1 ? 1 : chunk > PREDICT_BATCH ? PREDICT_BATCH : chunk;
    int failed = 0;
    float *x = malloc((size_t)(chunk * chw) * sizeof(float)), *prob = malloc((size_t)(chunk * k) * sizeof(float));
    char **why = calloc((size_t)chunk, sizeof *why); /* an image's error, NULL where it was read */
    image_source *src = calloc((size_t)chunk, sizeof *src);
    int64_t *got = calloc((size_t)chunk * 3, sizeof *got); /* each file's channels, rows, columns */
    cn_status *status = calloc((size_t)chunk, sizeof *status);
    cn_prediction *preds = malloc((size_t)top * sizeof *preds);
    cli_memfile csv = { 0 };
    if (!x || !prob || !why || !src || !got || !status || !preds) rc = cli_error("out of memory");
    else if (csv_path) rc = cli_memfile_open(&csv);
    FILE *cf = csv.f;
    if (cf) fprintf(cf, "image,class,name,probability,error\n");
    if (json && !rc) printf("[");
    if (!json && !rc) {
        char esc[4300], esc2[4300];
        printf("%s: %d image%s from %s%s\n", cn_text_escape(ckpt, esc, sizeof esc), images.n, images.n == 1 ? "" : "s",
               cn_text_escape(from, esc2, sizeof esc2), cli_tta_said[tta]);
    }
    for (int i0 = 0; !rc && i0 < images.n; i0 += (int)chunk) {
        int n = images.n - i0 < chunk ? images.n - i0 : (int)chunk, read = 0;
        /* decoded on the threads; then, in order, the images read packed and each failure said
         * (its message from a second try, alone: failures are few) */
        if (cn_model_input_files(ctx, model, (const char *const *)images.v + i0, n, x, got, status)) {
            rc = cli_ctx_error(ctx);
            break;
        }
        for (int j = 0; j < n; j++) {
            if (!status[j]) {
                if (read < j) memcpy(x + read * chw, x + j * chw, (size_t)chw * sizeof *x);
                src[read++] = (image_source){ got[3 * j], got[3 * j + 1], got[3 * j + 2] };
                continue;
            }
            char changed[4300];
            const char *msg = changed;
            if (cn_model_input_file_info(ctx, model, images.v[i0 + j], x + j * chw, NULL, NULL, NULL)) {
                cli_ctx_error(ctx); /* reported; the other images go on */
                msg = cn_ctx_message(ctx);
            } else { /* read the second time */
                snprintf(changed, sizeof changed, "%s: changed while it was read", images.v[i0 + j]);
                cli_error("%s", changed);
            }
            failed++;
            if (!(why[j] = strdup(msg))) rc = cli_error("out of memory");
        }
        if (!rc && read && cn_model_probabilities(ctx, model, x, read, prob)) rc = cli_ctx_error(ctx);
        for (int j = 0, r = 0; !rc && j < n; j++) {
            const char *img = images.v[i0 + j];
            if (why[j]) {
                if (json) printf("%s{\"image\":", i0 + j ? "," : ""), cli_json_string(stdout, img), printf(",\"error\":"),
                    cli_json_string(stdout, why[j]), printf("}");
                if (cf) csv_field(cf, img), fprintf(cf, ",,,,"), csv_field(cf, why[j]), fprintf(cf, "\n");
                continue;
            }
            print_prediction(model, prob + r * k, (int)top, preds, img, &src[r], json, i0 + j == 0, cf);
            r++;
        }
        for (int j = 0; j < n; j++) free(why[j]), why[j] = NULL;
    }
    if (json && !rc) printf("]\n");
    rc = cli_memfile_commit(ctx, &csv, csv_path, rc);
    if (!rc && failed) rc = cli_error("%d of %d images could not be read (named above)", failed, images.n);
    free(x), free(prob), free(preds), free(why), free(src), free(got), free(status);
    path_free(&images);
    cn_model_destroy(model);
    cn_ctx_destroy(ctx);
    return rc;
}
