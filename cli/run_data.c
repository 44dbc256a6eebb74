/* run_data.c — the data sets and checkpoints the train, eval and predict commands share:
 * "--data" names an MNIST-format folder (train-* and t10k-* IDX files) or an image folder;
 * "fashion-mnist" is Debian's copy. */
#define _XOPEN_SOURCE 700 /* realpath; strdup, strndup */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_impl.h"

static const char *const fashion_names[] = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot" };

const char *const *cli_known_class_names(const char *dir, int32_t classes)
{
    return !strcmp(dir, CLI_FASHION_MNIST) && classes <= 10 ? fashion_names : NULL;
}

const char *cli_data_dir(const char *data)
{
    return !data || !strcmp(data, "fashion-mnist") ? CLI_FASHION_MNIST : data;
}

static const char *const half_dirs[] = { "test", "train", "val" }; /* by cli_half */

const char *cli_data_name(const char *data, cli_half half, char *buf, size_t cap)
{
    const char *dir = cli_data_dir(data);
    cn_data_layout l = cn_data_find_layout(dir, NULL, NULL);
    if (l == CN_DATA_HALVES) {
        if (!cn_data_half_folder(dir, half_dirs[half], buf, cap)) snprintf(buf, cap, "%s/%s", dir, half_dirs[half]);
    } else if (l == CN_DATA_MNIST) snprintf(buf, cap, "%s (%s)", dir, half ? "train-*: the training half" : "t10k-*: the test half");
    else snprintf(buf, cap, "%s (all of it)", dir);
    return buf;
}

const char *cli_test_data(const cn_checkpoint *ck)
{
    const char *test = cn_checkpoint_meta(ck, "test_data");
    return test ? test : cn_checkpoint_meta(ck, "data");
}

int cli_data_fits(const char *data, const cn_dataset *ds, const cn_layer_info *input)
{
    if (ds->c == input->c && ds->h == input->h && ds->w == input->w) return 0;
    return cli_error("%s: the images are %lldx%lldx%lld but the net's input is %lldx%lldx%lld", cli_data_dir(data),
                     (long long)ds->h, (long long)ds->w, (long long)ds->c, (long long)input->h, (long long)input->w,
                     (long long)input->c);
}

cn_status cli_load_data(cn_ctx *ctx, const char *data, cli_half half, const cn_layer_info *input, cn_dataset *ds,
                        int *has_test)
{
    return cli_open_data(ctx, data, half, input, 0, ds, has_test);
}

/* An image folder decoded whole (photos of millions of pixels: seconds, minutes for thousands):
 * on a terminal, a line saying so while it lasts, erased after */
static cn_status load_folder_said(cn_ctx *ctx, const char *dir, int lazy, const cn_layer_info *in, cn_dataset *ds)
{
    if (lazy) return cn_dataset_open_folder(ctx, dir, in->c, in->h, in->w, ds);
    int tty = isatty(2);
    char esc[4200];
    if (tty) fprintf(stderr, "reading the images of %s ...", cn_text_escape(dir, esc, sizeof esc));
    cn_status st = cn_dataset_load_folder(ctx, dir, in->c, in->h, in->w, ds);
    if (tty) fprintf(stderr, "\r\033[K");
    return st;
}

cn_status cli_open_data(cn_ctx *ctx, const char *data, cli_half half, const cn_layer_info *input, int lazy,
                        cn_dataset *ds, int *has_test)
{
    const char *dir = cli_data_dir(data);
    cn_status st;
    cn_data_layout l = cn_data_find_layout(dir, has_test, NULL);
    if (l == CN_DATA_HALVES) {
        char sub[4200];
        if (!cn_data_half_folder(dir, half_dirs[half], sub, sizeof sub)) snprintf(sub, sizeof sub, "%s/%s", dir, half_dirs[half]);
        return load_folder_said(ctx, sub, lazy, input, ds);
    }
    if (l == CN_DATA_MNIST) {
        if ((st = (lazy ? cn_dataset_open_mnist : cn_dataset_load_mnist)(ctx, dir, half == CLI_HALF_TRAIN, ds))) return st;
        const char *const *names = cli_known_class_names(dir, ds->classes);
        if (names) {
            ds->class_names = calloc((size_t)ds->classes, sizeof(char *));
            for (int32_t i = 0; ds->class_names && i < ds->classes; i++) ds->class_names[i] = strdup(names[i]);
        }
        return CN_OK;
    }
    return load_folder_said(ctx, dir, lazy, input, ds);
}

/* path absolute, its symbolic links resolved, though its last parts may not exist yet (a run's
 * folder before it is made): the nearest folder that exists resolved, the rest appended. 0 when
 * nothing of it resolves. */
static int absolute_path(const char *path, char *out, size_t cap)
{
    char head[4200], tail[4200] = "", part[4200];
    snprintf(head, sizeof head, "%s", *path ? path : ".");
    for (;;) {
        size_t n = strlen(head);
        while (n > 1 && head[n - 1] == '/') head[--n] = 0;
        char *r = realpath(head, NULL);
        if (r) {
            int k = snprintf(out, cap, "%s%s", strcmp(r, "/") ? r : "", tail);
            free(r);
            return k > 0 && (size_t)k < cap;
        }
        if (!strcmp(head, ".") || !strcmp(head, "/")) return 0;
        char *slash = strrchr(head, '/');
        int k = snprintf(part, sizeof part, "/%s%s", slash ? slash + 1 : head, tail);
        if (k < 0 || (size_t)k >= sizeof part) return 0; /* too long to compare: nothing resolved */
        memcpy(tail, part, (size_t)k + 1);
        if (!slash) snprintf(head, sizeof head, ".");
        else if (slash == head) head[1] = 0;
        else *slash = 0;
    }
}

/* whether the absolute path a lies in the folder b (or is b) */
static int path_within(const char *a, const char *b)
{
    size_t n = strlen(b);
    return !strncmp(a, b, n) && (a[n] == '/' || a[n] == 0);
}

int cli_out_outside_data(const char *out, const char *data)
{
    char dir[4200], a[4200], b[4200];
    const char *root = cli_data_dir(data);
    cn_data_layout l = cn_data_find_layout(root, NULL, NULL);
    if (l == CN_DATA_MNIST || !absolute_path(out, a, sizeof a)) return 0; /* IDX files: no folder is read as a class */
    for (int h = 0; h < (l == CN_DATA_HALVES ? 3 : 1); h++) {
        if (l == CN_DATA_HALVES && !cn_data_half_folder(root, half_dirs[h], dir, sizeof dir)) continue; /* not there */
        if (l != CN_DATA_HALVES) snprintf(dir, sizeof dir, "%s", root);
        if (absolute_path(dir, b, sizeof b) && path_within(a, b))
            return cli_error("%s: the run's folder would be inside the image folder %s, and reading that folder "
                             "again (the report, eval) would take it for a class: give an --out outside it",
                             out, dir);
    }
    return 0;
}

int cli_map_classes(char *const *names, int32_t k, const char *whose, cn_dataset *ds, const char *data)
{
    if (!ds->class_names || !names || k < 1 || cn_data_find_layout(cli_data_dir(data), NULL, NULL) == CN_DATA_MNIST)
        return 0; /* IDX labels are numbers, whatever names Fashion-MNIST's are given */
    int32_t *to = malloc((size_t)ds->classes * sizeof *to);
    char **mapped = NULL;
    int rc = to ? 0 : cli_error("out of memory");
    int same = ds->classes == k;
    for (int32_t i = 0; !rc && i < ds->classes; i++) {
        const char *mine = ds->class_names[i];
        char *end;
        long num = strtol(mine, &end, 10);
        to[i] = -1;
        for (int32_t j = 0; j < k && to[i] < 0; j++)
            if (!strcmp(mine, names[j])) to[i] = j;
        if (to[i] < 0 && *mine && !*end && num >= 0 && num < k) to[i] = (int32_t)num;
        if (to[i] < 0) {
            char esc[256], known[600] = "", one[256];
            for (int32_t j = 0; j < k && j < 6; j++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s'%s'", j ? ", " : "",
                         cn_text_escape(names[j], one, sizeof one));
            rc = cli_error("%s: class folder '%s' is none of %s %d classes (%s%s)", cli_data_dir(data),
                           cn_text_escape(mine, esc, sizeof esc), whose, (int)k, known, k > 6 ? ", ..." : "");
        }
        same &= to[i] == i;
    }
    if (!rc && !same) { /* the labels and names those of names */
        if (!(mapped = calloc((size_t)k, sizeof *mapped))) rc = cli_error("out of memory");
        for (int32_t j = 0; !rc && j < k; j++)
            if (!(mapped[j] = strdup(names[j]))) rc = cli_error("out of memory");
    }
    if (!rc && !same) {
        for (int64_t n = 0; n < ds->count; n++) ds->labels[n] = to[ds->labels[n]];
        for (int32_t i = 0; i < ds->classes; i++) free(ds->class_names[i]);
        free(ds->class_names);
        ds->class_names = mapped, ds->classes = k, mapped = NULL;
    }
    for (int32_t j = 0; mapped && j < k; j++) free(mapped[j]);
    free(mapped), free(to);
    return rc;
}

int cli_match_classes(const cn_checkpoint *ck, int32_t k, cn_dataset *ds, const char *data)
{
    const char *lines = cn_checkpoint_meta(ck, "class_names");
    if (!ds->class_names || !lines || k < 1) return 0;
    char **names = calloc((size_t)k, sizeof *names); /* the model's: class_names' lines */
    int rc = names ? 0 : cli_error("out of memory");
    for (int32_t j = 0; !rc && j < k; j++) {
        size_t n = strcspn(lines, "\n");
        if (!(names[j] = strndup(lines, n))) rc = cli_error("out of memory");
        lines += n + (lines[n] == '\n');
    }
    if (!rc) rc = cli_map_classes(names, k, "the model's", ds, data);
    for (int32_t j = 0; names && j < k; j++) free(names[j]);
    free(names);
    return rc;
}

int cli_match_classes_first(cn_ctx *ctx, const cn_checkpoint *ck, int32_t k, const char *data, const cn_layer_info *in)
{
    if (cn_data_find_layout(cli_data_dir(data), NULL, NULL) == CN_DATA_MNIST) return 0;
    cn_dataset listed;
    if (cli_open_data(ctx, data, CLI_HALF_TEST, in, 1, &listed, NULL)) { /* the load says why */
        cn_ctx_clear(ctx);
        return 0;
    }
    int rc = cli_match_classes(ck, k, &listed, data);
    cn_dataset_free(ctx, &listed);
    return rc;
}

int cli_refuse_spec(const char *arg)
{
    if (cli_is_checkpoint(arg)) return 0; /* a .safetensors file or a folder */
    cn_ctx *ctx;
    cn_net *net = NULL;
    if (cn_ctx_create(NULL, &ctx)) return 0; /* the reader's own error follows */
    int spec = !cn_net_load_spec(ctx, arg, &net);
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
    if (!spec) return 0;
    return cli_error("%s is a spec, not a run folder or a checkpoint: train it first (convnet train %s), then give the "
                     "run's folder", arg, arg);
}

int cli_checkpoint_error(cn_ctx *ctx, const char *arg)
{
    int rc = cli_refuse_spec(arg);
    return rc ? rc : cli_ctx_error(ctx);
}

int cli_open_checkpoint(cn_ctx *ctx, const char *arg, cn_checkpoint **ck, cn_net **net, float *mean, float *std)
{
    *ck = NULL;
    *net = NULL;
    int rc = 0;
    if (cn_checkpoint_read(ctx, arg, ck)) rc = cli_checkpoint_error(ctx, arg);
    else if (cn_checkpoint_net(ctx, *ck, net) || cn_checkpoint_norm(ctx, *ck, mean, std)) rc = cli_ctx_error(ctx);
    else cn_ctx_set_resize(ctx, cn_checkpoint_resize(*ck)); /* its data loaded as it was trained */
    if (rc) {
        cn_net_destroy(*net);
        cn_checkpoint_destroy(*ck);
        *net = NULL;
        *ck = NULL;
    }
    return rc;
}

int cli_open_model(const char *arg, cn_ctx **ctx, cn_model **model)
{
    *model = NULL;
    if (cn_ctx_create(NULL, ctx)) {
        *ctx = NULL;
        return cli_error("out of memory");
    }
    if (!cn_model_load(*ctx, arg, model)) {
        cn_ctx_set_resize(*ctx, cn_checkpoint_resize(cn_model_checkpoint(*model))); /* for its data sets */
        return 0;
    }
    int rc = cli_checkpoint_error(*ctx, arg);
    cn_ctx_destroy(*ctx);
    *ctx = NULL;
    return rc;
}
