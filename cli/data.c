/* data.c — `convnet data check PATH`: lints a data set before training: every image decodes,
 * labels in range, empty and duplicate files, the class histogram; for a data set in halves
 * (train/ with val/ and/or test/, or MNIST's train-* and t10k-*) each half's histogram, the
 * classes a half lacks and images shared by two halves. Exit status 1 when any problem was
 * found. Covered by tests/cli_test.sh. */
#include <string.h>

#include "cli_impl.h"

static void help(const cli_option *opts)
{
    printf("usage: convnet data check PATH [--classes N] [--json] [--threads N]\n\n"
           "Checks a data set before training. The first line names the layout found:\n"
           "  an image folder in halves   PATH/train plus PATH/val and/or PATH/test, each with one\n"
           "                              sub-folder of PNG/JPEG images per class\n"
           "  MNIST-format IDX files      PATH/train-* and/or PATH/t10k-* (PATH may be 'fashion-mnist')\n"
           "  an image folder             one sub-folder of PNG/JPEG images per class\n"
           "Every image must decode; empty files, duplicates (identical pixels) and labels outside\n"
           "0..N-1 are reported with the file; the histogram shows the images per class, per half when\n"
           "there are halves. A val or test image equal to a training image (or a test image equal\n"
           "to a val image) is leakage, reported with both files; a class folder that one half has and\n"
           "another lacks is named with the half that lacks it.\n"
           "Exit status 1 when anything is wrong, including an empty class in any half, a half without\n"
           "images, halves whose classes differ, or no images at all.\n\n");
    cli_print_options(opts, 13);
}

/* the report's problems, a line each: JSON strings, or lines escaped for the terminal (the paths
 * hold names from the folder) */
static void print_problems(const char *problems, int json)
{
    int first = 1;
    for (const char *p = problems ? problems : ""; *p; first = 0) {
        size_t len = strcspn(p, "\n");
        char line[1024], esc[4096];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line - 1 ? len : sizeof line - 1), p);
        if (json) printf("%s", first ? "" : ","), cli_json_string(stdout, line);
        else printf("%s\n", cn_text_escape(line, esc, sizeof esc));
        p += len + (p[len] == '\n');
    }
}

static const char *const layout_keys[] = { "folder", "mnist", "halves" }; /* by cn_data_layout */

static int64_t empty_classes(const int64_t *per_class, int32_t classes)
{
    int64_t n = 0;
    for (int32_t c = 0; c < classes; c++) n += per_class[c] == 0;
    return n;
}

/* the class name of class c: the report's (folders), well-known (Fashion-MNIST) or the number */
static const char *class_name(const char *const *names, int32_t c, char *buf, size_t cap)
{
    if (names) return names[c];
    snprintf(buf, cap, "%d", (int)c);
    return buf;
}

/* h's count of the report's class c (its class names are the report's, or the same numbers for
 * IDX), or -1 when h has no folder for it */
static int64_t half_count(const cn_data_report *r, const cn_data_half *h, int32_t c)
{
    if (!r->class_names || !h->class_names) return c < h->classes ? h->per_class[c] : -1;
    for (int32_t j = 0; j < h->classes; j++)
        if (!strcmp(h->class_names[j], r->class_names[c])) return h->per_class[j];
    return -1;
}

/* "layout: image folder in halves (train/, test/)" and the like */
static void print_layout(const cn_data_report *r)
{
    if (r->layout == CN_DATA_FOLDER) {
        printf("layout: image folder (one sub-folder per class)\n");
        return;
    }
    printf("layout: %s (", r->layout == CN_DATA_HALVES ? "image folder in halves" : "MNIST-format IDX files");
    for (int32_t i = 0; i < r->n_halves; i++) {
        const char *n = r->halves[i].name, *path = r->halves[i].path, *slash = path ? strrchr(path, '/') : NULL;
        char esc[256];
        /* a half's folder as spelt there (valid/, Train/) */
        if (r->layout == CN_DATA_HALVES) printf("%s%s/", i ? ", " : "", cn_text_escape(slash ? slash + 1 : n, esc, sizeof esc));
        else printf("%s%s-*", i ? ", " : "", strcmp(n, "train") ? "t10k" : "train");
    }
    printf(")\n");
}

int cmd_data(int argc, char **argv)
{
    const char *path = NULL;
    int64_t classes = 0;
    int json = 0;
    const cli_option opts[] = {
        { "--classes", "N", CLI_INT, &classes, 1, 1 << 20,
          .help = "the number of classes the labels must fit, in each half (default: any)" },
        { "--json", NULL, CLI_FLAG, &json,
          .help = "{\"path\",\"layout\":\"halves\"|\"mnist\"|\"folder\",\"files\",\"bad_files\",\"duplicates\",\"leaks\",\n"
                  "\"bad_labels\",\"empty_classes\",\"missing_classes\",\"classes\",\"per_class\":[{\"class\",\"name\",\"count\"}],\n"
                  "\"halves\":[{\"name\",\"path\",\"files\",\"bad_files\",\"duplicates\",\"leaks\",\"bad_labels\",\n"
                  "\"empty_classes\",\"classes\",\"per_class\":[...],\"missing\":[NAME...]}],\"problems\":[...]}:\n"
                  "totals over the halves at the top, halves [] for a plain image folder" },
        { "--threads", "N", CLI_CALL, .call = cli_threads_option,
          .help = "threads decoding the images (default: OMP_NUM_THREADS, else one per core)" },
        { 0 },
    };
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        if (argc < 1) return cli_usage_error("data", "name a subcommand: check");
        help(opts);
        return 0;
    }
    if (strcmp(argv[0], "check")) return cli_usage_error("data", "unknown subcommand '%s' (the one there is: check)", argv[0]);
    int usage = cli_parse("data", argc - 1, argv + 1, opts, help, cli_take_one, &path);
    if (usage != CLI_GO_ON) return usage;
    if (!path) return cli_usage_error("data", "give a data folder");
    cn_ctx *ctx;
    if (cn_ctx_create(NULL, &ctx)) return cli_error("out of memory");
    cn_data_report r;
    const char *dir = cli_data_dir(path);
    if (cn_data_check(ctx, dir, (int32_t)classes, &r)) {
        int rc = cli_ctx_error(ctx);
        cn_ctx_destroy(ctx);
        return rc;
    }
    /* anything the check lists is a problem: an empty class (in any half), a half without
     * images, a class one half lacks, no images at all, a class folder's name, as much as a
     * file that does not decode */
    int64_t empty = 0;
    int half_without_images = 0;
    for (int32_t i = 0; i < r.n_halves; i++) {
        empty += empty_classes(r.halves[i].per_class, r.halves[i].classes);
        half_without_images |= r.halves[i].files == 0;
    }
    if (!r.n_halves) empty = empty_classes(r.per_class, r.classes);
    int bad = r.bad_files || r.duplicates || r.bad_labels || empty || !r.files || half_without_images ||
              r.missing_classes || (r.problems && *r.problems);
    char name[32];
    const char *const *known_names = r.class_names ? (const char *const *)r.class_names : cli_known_class_names(dir, r.classes);
    if (json) {
        printf("{\"path\":");
        cli_json_string(stdout, dir);
        printf(",\"layout\":\"%s\",\"files\":%lld,\"bad_files\":%lld,\"duplicates\":%lld,\"leaks\":%lld,"
               "\"bad_labels\":%lld,\"empty_classes\":%lld,\"missing_classes\":%lld,\"classes\":%d,\"per_class\":[",
               layout_keys[r.layout], (long long)r.files, (long long)r.bad_files, (long long)r.duplicates,
               (long long)r.leaks, (long long)r.bad_labels, (long long)empty, (long long)r.missing_classes,
               (int)r.classes);
        for (int32_t c = 0; c < r.classes; c++) {
            printf("%s{\"class\":%d,\"name\":", c ? "," : "", (int)c);
            cli_json_string(stdout, class_name(known_names, c, name, sizeof name));
            printf(",\"count\":%lld}", (long long)r.per_class[c]);
        }
        printf("],\"halves\":[");
        for (int32_t i = 0; i < r.n_halves; i++) {
            const cn_data_half *h = &r.halves[i];
            const char *const *names = h->class_names ? (const char *const *)h->class_names : known_names;
            printf("%s{\"name\":", i ? "," : "");
            cli_json_string(stdout, h->name);
            printf(",\"path\":");
            cli_json_string(stdout, h->path);
            printf(",\"files\":%lld,\"bad_files\":%lld,\"duplicates\":%lld,\"leaks\":%lld,\"bad_labels\":%lld,"
                   "\"empty_classes\":%lld,\"classes\":%d,\"per_class\":[",
                   (long long)h->files, (long long)h->bad_files, (long long)h->duplicates, (long long)h->leaks,
                   (long long)h->bad_labels, (long long)empty_classes(h->per_class, h->classes), (int)h->classes);
            for (int32_t c = 0; c < h->classes; c++) {
                printf("%s{\"class\":%d,\"name\":", c ? "," : "", (int)c);
                cli_json_string(stdout, class_name(names, c, name, sizeof name));
                printf(",\"count\":%lld}", (long long)h->per_class[c]);
            }
            printf("],\"missing\":[");
            for (int32_t c = 0, n = 0; c < r.classes && h->missing_classes; c++) {
                if (half_count(&r, h, c) >= 0) continue;
                printf("%s", n++ ? "," : "");
                cli_json_string(stdout, r.class_names[c]);
            }
            printf("]}");
        }
        printf("],\"problems\":[");
        print_problems(r.problems, 1);
        printf("]}\n");
    } else {
        char esc[256];
        print_layout(&r);
        /* the images that decode: what the class counts add up to; the others said apart */
        printf("%s: %lld image%s, %d class%s", dir, (long long)(r.files - r.bad_files), r.files - r.bad_files == 1 ? "" : "s",
               (int)r.classes, r.classes == 1 ? "" : "es");
        if (r.bad_files) printf(" (and %lld file%s that do%s not decode)", (long long)r.bad_files, r.bad_files == 1 ? "" : "s",
                                r.bad_files == 1 ? "es" : "");
        printf("\n");
        if (r.n_halves) { /* a column per half; '-': no folder for the class */
            printf("  %-16s", "class");
            for (int32_t i = 0; i < r.n_halves; i++) printf(" %8s", cn_text_escape(r.halves[i].name, esc, sizeof esc));
            printf("\n");
        }
        for (int32_t c = 0; c < r.classes; c++) {
            printf("  %-16s", cn_text_escape(class_name(known_names, c, name, sizeof name), esc, sizeof esc));
            for (int32_t i = 0; i < r.n_halves; i++) {
                int64_t n = half_count(&r, &r.halves[i], c);
                if (n < 0) printf(" %8s", "-");
                else printf(" %8lld", (long long)n);
            }
            if (!r.n_halves) printf(" %8lld", (long long)r.per_class[c]);
            printf("\n");
        }
        if (r.n_halves) {
            printf("  %-16s", "images");
            for (int32_t i = 0; i < r.n_halves; i++) printf(" %8lld", (long long)(r.halves[i].files - r.halves[i].bad_files));
            printf("\n");
        }
        printf("%lld %s, %lld duplicate%s", (long long)r.bad_files,
               r.bad_files == 1 ? "file that does not decode or is empty" : "files that do not decode or are empty",
               (long long)r.duplicates, r.duplicates == 1 ? "" : "s");
        if (r.n_halves) printf(" (%lld across halves)", (long long)r.leaks);
        printf(", %lld label%s out of range, %lld empty class%s", (long long)r.bad_labels, r.bad_labels == 1 ? "" : "s",
               (long long)empty, empty == 1 ? "" : "es");
        if (r.layout == CN_DATA_HALVES)
            printf(", %lld class%s missing from a half", (long long)r.missing_classes, r.missing_classes == 1 ? "" : "es");
        printf("\n");
        if (r.problems && *r.problems) printf("\n");
        print_problems(r.problems, 0);
        printf("%s\n", bad ? "problems found" : "ok");
    }
    cn_data_report_free(ctx, &r);
    cn_ctx_destroy(ctx);
    return bad ? 1 : 0;
}
