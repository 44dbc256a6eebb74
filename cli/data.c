/* data.c — `convnet data check PATH`: lints a data set before training: every image decodes,
 * labels in range, empty and duplicate files, the class histogram. Exit status 1 when any
 * problem was found. */
#include <string.h>

#include "cli_impl.h"

static void help(void)
{
    printf("usage: convnet data check PATH [--classes N] [--json]\n\n"
           "Checks a data set before training: an MNIST-format folder (train-* and t10k-* IDX files) or\n"
           "an image folder (one sub-folder of PNG/JPEG images per class). Every image must decode;\n"
           "empty files, duplicates (identical pixels) and labels outside 0..N-1 are reported with the\n"
           "file; the histogram shows the images per class. PATH may be 'fashion-mnist'.\n"
           "Exit status 1 when anything is wrong, an empty class or no images at all included.\n\n"
           "  --classes N   the number of classes the labels must fit (default: any)\n"
           "  --json        {\"files\",\"bad_files\",\"duplicates\",\"bad_labels\",\"empty_classes\",\"classes\",\"per_class\":[{\"class\",\"name\",\"count\"}],\"problems\":[...]}\n");
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

int cmd_data(int argc, char **argv)
{
    static const char *const known[] = { "--classes", "--json", "--help", NULL };
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        if (argc < 1) return cli_usage_error("data", "name a subcommand: check");
        help();
        return 0;
    }
    if (strcmp(argv[0], "check")) return cli_usage_error("data", "unknown subcommand '%s' (the one there is: check)", argv[0]);
    const char *path = NULL;
    int64_t classes = 0;
    int json = 0;
    cli_args a;
    cli_args_init(&a, "data", argc - 1, argv + 1);
    while (cli_more(&a)) {
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            help();
            return 0;
        } else if (cli_opt(&a, "--classes")) {
            if (cli_parse_int("data", "--classes", a.value, 1, 1 << 20, &classes)) return EXIT_USAGE;
        } else if (cli_flag(&a, "--json")) json = 1;
        else if (a.failed) break;
        else if (!cli_is_option(cli_peek(&a)) && !path) path = cli_next(&a);
        else return cli_unknown(&a, known);
    }
    if (a.failed) return EXIT_USAGE;
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
    /* anything the check lists is a problem: an empty class, no images at all, a class folder's
     * name, as much as a file that does not decode */
    int64_t empty = 0;
    for (int32_t c = 0; c < r.classes; c++) empty += r.per_class[c] == 0;
    int bad = r.bad_files || r.duplicates || r.bad_labels || empty || !r.files || (r.problems && *r.problems);
    char name[32];
    const char *const *known_names = r.class_names ? (const char *const *)r.class_names : cli_known_class_names(dir, r.classes);
    if (json) {
        printf("{\"path\":");
        cli_json_string(stdout, dir);
        printf(",\"files\":%lld,\"bad_files\":%lld,\"duplicates\":%lld,\"bad_labels\":%lld,\"empty_classes\":%lld,"
               "\"classes\":%d,\"per_class\":[",
               (long long)r.files, (long long)r.bad_files, (long long)r.duplicates, (long long)r.bad_labels,
               (long long)empty, (int)r.classes);
        for (int32_t c = 0; c < r.classes; c++) {
            snprintf(name, sizeof name, "%d", (int)c);
            printf("%s{\"class\":%d,\"name\":", c ? "," : "", (int)c);
            cli_json_string(stdout, known_names ? known_names[c] : name);
            printf(",\"count\":%lld}", (long long)r.per_class[c]);
        }
        printf("],\"problems\":[");
        print_problems(r.problems, 1);
        printf("]}\n");
    } else {
        printf("%s: %lld images, %d classes\n", dir, (long long)r.files, (int)r.classes);
        for (int32_t c = 0; c < r.classes; c++) {
            snprintf(name, sizeof name, "%d", (int)c);
            char esc[256];
            printf("  %-16s %8lld\n", cn_text_escape(known_names ? known_names[c] : name, esc, sizeof esc),
                   (long long)r.per_class[c]);
        }
        printf("%lld files that do not decode or are empty, %lld duplicates, %lld labels out of range, "
               "%lld empty classes\n", (long long)r.bad_files, (long long)r.duplicates, (long long)r.bad_labels,
               (long long)empty);
        if (r.problems && *r.problems) printf("\n");
        print_problems(r.problems, 0);
        printf("%s\n", bad ? "problems found" : "ok");
    }
    cn_data_report_free(ctx, &r);
    cn_ctx_destroy(ctx);
    return bad ? 1 : 0;
}
