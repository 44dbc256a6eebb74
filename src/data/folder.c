#define _POSIX_C_SOURCE 200809L /* opendir, stat */
/* folder.c — image folders: one sub-folder per class, as torchvision's ImageFolder reads them.
 * Classes are the sub-folders sorted by name (byte order, like Python's sorted()), class i
 * the i-th; within a class the files are sorted the same way. Names starting with '.' are
 * skipped (.DS_Store, editor files), and so are what an operating system leaves in a folder of
 * pictures: Windows' Thumbs.db, ehthumbs.db and desktop.ini (in any case), and the __MACOSX
 * folder of a zip made on a Mac; files directly in the top folder are ignored. A class's
 * images are its folder's files and those of the folders inside it, at any depth, in
 * ImageFolder's order (cn_list_class_files). Every other file of a class folder must be a PNG or JPEG (told by
 * its content, not its name, by cn_file_kind_of here): one that does not decode fails the load
 * once the rest are tried, named with the others counted, and so does a class folder with no
 * files (as ImageFolder does). Covered by tests/test_images.c. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data_impl.h"

char *cn_path_join(cn_ctx *ctx, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int slash = la > 0 && a[la - 1] != '/';
    char *p = cn_malloc(ctx, la + (size_t)slash + lb + 1);
    if (!p) return NULL;
    memcpy(p, a, la);
    if (slash) p[la] = '/';
    memcpy(p + la + slash, b, lb + 1);
    return p;
}

void cn_names_free(cn_ctx *ctx, cn_names *n)
{
    if (!n) return;
    for (int64_t i = 0; n->names && i < n->count; i++) cn_free(ctx, n->names[i]);
    cn_free(ctx, n->names);
    memset(n, 0, sizeof *n);
}

const char *const cn_file_kind_names[CN_FILE_KINDS] = { "PNG", "JPEG", "HEIC", "AVIF", "WebP", "GIF", "BMP", "TIFF",
                                                        "other" };

cn_file_kind cn_file_kind_of(const unsigned char *b, size_t n)
{
    static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    if (n >= 4 && !memcmp(b, png_sig, n < 8 ? n : 8)) return CN_FILE_PNG;
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return CN_FILE_JPEG;
    if (n >= 12 && !memcmp(b + 4, "ftyp", 4)) { /* ISO media: AVIF's brands, HEIF's (HEIC's) */
        if (!memcmp(b + 8, "avif", 4) || !memcmp(b + 8, "avis", 4)) return CN_FILE_AVIF;
        if (!memcmp(b + 8, "hei", 3) || !memcmp(b + 8, "hev", 3) || !memcmp(b + 8, "mif1", 4) || !memcmp(b + 8, "msf1", 4))
            return CN_FILE_HEIC;
    }
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return CN_FILE_WEBP;
    if (n >= 4 && !memcmp(b, "GIF8", 4)) return CN_FILE_GIF;
    /* BMP: "BM", the file's size, 4 reserved bytes (0), the pixels' offset (past the 14 + 12 bytes
     * of the smallest headers): not any text that starts "BM" */
    if (n >= 12 && !memcmp(b, "BM", 2) && !memcmp(b + 6, "\0\0\0\0", 4) && b[10] + 256 * b[11] >= 26)
        return CN_FILE_BMP;
    if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4))) return CN_FILE_TIFF;
    return CN_FILE_OTHER;
}

int cn_file_kind_at(const char *path)
{
    unsigned char b[12];
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(b, 1, sizeof b, f);
    int err = ferror(f);
    fclose(f);
    return err ? -1 : (int)cn_file_kind_of(b, n);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* a name no one gave a class or an image: hidden, or the litter of an operating system */
static int skipped_name(const char *name)
{
    static const char *const litter[] = { "thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini", "__macosx" };
    if (name[0] == '.') return 1;
    for (size_t i = 0; i < sizeof litter / sizeof litter[0]; i++)
        if (!strcasecmp(name, litter[i])) return 1;
    return 0;
}

/* appends name to n (taken: freed with n, or here on failure); 0 or CN_E_NOMEM */
static cn_status names_push(cn_ctx *ctx, cn_names *n, int64_t *cap, char *name)
{
    if (!name) return CN_E_NOMEM;
    if (n->count == *cap) {
        int64_t next = *cap ? 2 * *cap : 16;
        char **p = cn_realloc(ctx, n->names, (size_t)next * sizeof *p);
        if (!p) {
            cn_free(ctx, name);
            return CN_E_NOMEM;
        }
        n->names = p, *cap = next;
    }
    n->names[n->count++] = name;
    return CN_OK;
}

cn_status cn_list_dir(cn_ctx *ctx, const char *dir, int dirs, cn_names *out)
{
    memset(out, 0, sizeof *out);
    errno = 0;
    DIR *d = opendir(dir);
    if (!d) return cn_fail(ctx, CN_E_IO, "%s: cannot open folder: %s", dir, errno ? strerror(errno) : "opendir failed");
    cn_status st = CN_OK;
    int64_t cap = 0;
    char *path = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (skipped_name(e->d_name)) continue;
        if (!(path = cn_path_join(ctx, dir, e->d_name))) {
            st = CN_E_NOMEM;
            goto done;
        }
        struct stat sb;
        int ok = stat(path, &sb) == 0;
        cn_free(ctx, path);
        path = NULL;
        /* a file that cannot be stat'ed (a dangling link) is listed, so reading it says why */
        if (dirs ? !(ok && S_ISDIR(sb.st_mode)) : ok && !S_ISREG(sb.st_mode)) continue;
        if ((st = names_push(ctx, out, &cap, cn_strdup(ctx, e->d_name)))) goto done;
    }
    if (out->count > 1) qsort(out->names, (size_t)out->count, sizeof *out->names, cmp_names);
done:
    closedir(d);
    if (st) cn_names_free(ctx, out);
    return st;
}

cn_status cn_list_class_files(cn_ctx *ctx, const char *cls, cn_names *out)
{
    memset(out, 0, sizeof *out);
    cn_names dirs = { 0, NULL }, here = { 0, NULL }, subs = { 0, NULL };
    int64_t dirs_cap = 0, out_cap = 0, n_seen = 0, seen_cap = 0;
    struct { dev_t dev; ino_t ino; } *seen = NULL; /* the folders walked: a link back is not walked again */
    char *path = NULL;
    cn_status st = names_push(ctx, &dirs, &dirs_cap, cn_strdup(ctx, "")); /* cls itself */
    /* every folder below cls, breadth first (dirs grows as it is walked) */
    for (int64_t i = 0; !st && i < dirs.count; i++) {
        int depth = *dirs.names[i] != '\0';
        for (const char *p = dirs.names[i]; *p; p++) depth += *p == '/';
        if (!(path = *dirs.names[i] ? cn_path_join(ctx, cls, dirs.names[i]) : cn_strdup(ctx, cls))) {
            st = CN_E_NOMEM;
            break;
        }
        struct stat sb;
        int repeat = 0;
        if (!stat(path, &sb)) {
            for (int64_t s = 0; s < n_seen && !repeat; s++) repeat = seen[s].dev == sb.st_dev && seen[s].ino == sb.st_ino;
            if (!repeat && n_seen == seen_cap) {
                void *grown = cn_realloc(ctx, seen, (size_t)(seen_cap = seen_cap ? 2 * seen_cap : 16) * sizeof *seen);
                if (!grown) {
                    st = CN_E_NOMEM;
                    break;
                }
                seen = grown;
            }
            if (!repeat) seen[n_seen].dev = sb.st_dev, seen[n_seen].ino = sb.st_ino, n_seen++;
        }
        if (repeat) { /* its files would come twice: listed once, where the walk met it first */
            cn_free(ctx, dirs.names[i]);
            dirs.names[i] = NULL;
        } else if ((st = cn_list_dir(ctx, path, 1, &subs))) {
            break;
        } else if (subs.count && depth + 1 > CN_CLASS_MAX_DEPTH) {
            st = cn_fail(ctx, CN_E_FORMAT, "%s: folders nested more than %d deep in a class folder", path,
                         CN_CLASS_MAX_DEPTH);
            break;
        }
        for (int64_t j = 0; !st && j < subs.count; j++)
            st = names_push(ctx, &dirs, &dirs_cap, *dirs.names[i] ? cn_path_join(ctx, dirs.names[i], subs.names[j])
                                                                  : cn_strdup(ctx, subs.names[j]));
        cn_names_free(ctx, &subs);
        cn_free(ctx, path);
        path = NULL;
    }
    cn_free(ctx, seen);
    /* the repeats out */
    int64_t kept = 0;
    for (int64_t i = 0; i < dirs.count; i++)
        if (dirs.names[i]) dirs.names[kept++] = dirs.names[i];
    dirs.count = kept;
    /* sorted by path as os.walk's roots sort ("a" < "a b" < "a/x"), each folder's files in order */
    if (!st && dirs.count > 1) qsort(dirs.names, (size_t)dirs.count, sizeof *dirs.names, cmp_names);
    for (int64_t i = 0; !st && i < dirs.count; i++) {
        if (!(path = *dirs.names[i] ? cn_path_join(ctx, cls, dirs.names[i]) : cn_strdup(ctx, cls))) {
            st = CN_E_NOMEM;
            break;
        }
        if ((st = cn_list_dir(ctx, path, 0, &here))) break;
        for (int64_t j = 0; !st && j < here.count; j++)
            st = names_push(ctx, out, &out_cap, *dirs.names[i] ? cn_path_join(ctx, dirs.names[i], here.names[j])
                                                              : cn_strdup(ctx, here.names[j]));
        cn_names_free(ctx, &here);
        cn_free(ctx, path);
        path = NULL;
    }
    cn_free(ctx, path);
    cn_names_free(ctx, &subs);
    cn_names_free(ctx, &here);
    cn_names_free(ctx, &dirs);
    if (st) cn_names_free(ctx, out);
    return st;
}

cn_status cn_for_each_file(cn_ctx *ctx, int64_t n, cn_status (*fn)(cn_ctx *tc, int64_t i, void *arg), void *arg)
{
    int64_t threads = cn_ctx_alloc_is_libc(ctx) ? cn_threads() : 1;
    if (threads > n) threads = n > 0 ? n : 1;
    int fatal = 0;
    char msg[CN_MSG_MAX] = "out of memory";
#pragma omp parallel num_threads((int)threads) if (threads > 1)
    {
        cn_ctx *tc = ctx; /* its own context, for its messages, on a thread of several */
        if (threads > 1 && cn_ctx_create(&ctx->alloc, &tc) != CN_OK) {
            tc = NULL;
#pragma omp atomic write
            fatal = 1;
        }
        if (tc) tc->resize = ctx->resize; /* the caller's settings, as if it ran fn itself */
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < n; i++) {
            int stop;
#pragma omp atomic read
            stop = fatal;
            if (stop || !tc || fn(tc, i, arg) != CN_E_NOMEM) continue;
#pragma omp critical(cn_for_each_file)
            if (tc != ctx) snprintf(msg, sizeof msg, "%s", cn_ctx_message(tc));
#pragma omp atomic write
            fatal = 1;
        }
        if (tc && tc != ctx) {
#pragma omp atomic
            ctx->resized += tc->resized;
#pragma omp atomic
            ctx->drafted += tc->drafted;
            cn_ctx_destroy(tc);
        }
    }
    if (!fatal) return CN_OK;
    return threads > 1 ? cn_fail(ctx, CN_E_NOMEM, "%s", msg) : CN_E_NOMEM; /* one thread: ctx says so */
}

/* the loading of files (cn_load_files), and the first that failed in order */
typedef struct file_loads {
    char *const *paths;
    const int64_t *which;
    int64_t c, h, w;
    float *out;
    int64_t first, bad; /* the first failing i (n: none), how many failed */
    cn_status first_st;
    char first_msg[CN_MSG_MAX];
} file_loads;

static cn_status load_one(cn_ctx *tc, int64_t i, void *arg)
{
    file_loads *f = arg;
    cn_status st = cn_image_load(tc, f->paths[f->which ? f->which[i] : i], f->c, f->h, f->w,
                                 f->out + i * f->c * f->h * f->w);
    if (st && st != CN_E_NOMEM) {
#pragma omp critical(cn_load_one)
        if (f->bad++, i < f->first) { /* the message names the file */
            f->first = i, f->first_st = st;
            snprintf(f->first_msg, sizeof f->first_msg, "%s", cn_ctx_message(tc));
        }
    }
    return st;
}

cn_status cn_load_files(cn_ctx *ctx, char *const *paths, const int64_t *which, int64_t n, int64_t c, int64_t h,
                        int64_t w, float *out, int64_t *bad)
{
    file_loads f = { paths, which, c, h, w, out, n, 0, CN_OK, "" };
    cn_status st = cn_for_each_file(ctx, n, load_one, &f);
    if (bad) *bad = st ? 0 : f.bad;
    if (!st && f.bad) st = cn_fail(ctx, f.first_st, "%s", f.first_msg);
    return st;
}

/* The images of n files into images (c x h x w floats each, resized as the context says), on
 * the threads: the same floats on any number. A file that does not decode fails the load, but
 * after the rest are tried: the message names the first in order and counts the others, so a
 * messy folder is not put right one rerun a file. */
static cn_status decode_all(cn_ctx *ctx, const char *dir, char **paths, int64_t n, int64_t c, int64_t h, int64_t w,
                            float *images)
{
    int64_t bad;
    cn_status st = cn_load_files(ctx, paths, NULL, n, c, h, w, images, &bad);
    if (st == CN_E_NOMEM || !bad) return st;
    char first[CN_MSG_MAX];
    snprintf(first, sizeof first, "%s", cn_ctx_message(ctx));
    if (bad == 1) return cn_fail(ctx, st, "%s (convnet data check %s lists every file it cannot read)", first, dir);
    return cn_fail(ctx, st, "%s; and %lld more file%s that cannot be read (convnet data check %s lists them all)", first,
                   (long long)(bad - 1), bad == 2 ? "" : "s", dir);
}

/* The folder's classes, labels and paths; the images decoded now, or (lazy) kept as paths for
 * cn_make_batch_rows to decode when a batch needs them. */
static cn_status load_folder(cn_ctx *ctx, const char *dir, int64_t c, int64_t h, int64_t w, int lazy, cn_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (!dir) return cn_fail(ctx, CN_E_ARG, "cn_dataset_load_folder: NULL folder");
    int64_t per, bytes, total = 0;
    cn_status st = cn_image_check_size(ctx, dir, c, h, w, &per);
    if (st) return st;
    cn_names classes = { 0, NULL };
    cn_names *files = NULL;
    char *cls = NULL;
    if ((st = cn_list_dir(ctx, dir, 1, &classes))) goto done;
    if (classes.count == 0) {
        st = cn_fail(ctx, CN_E_FORMAT, "%s: no class sub-folders (an image folder holds one sub-folder of images "
                                       "per class: %s/CLASS/IMAGE.png)", dir, dir);
        goto done;
    }
    for (int64_t k = 0; k < classes.count; k++)
        if (!cn_text_printable(classes.names[k])) { /* it names the class in checkpoints and on terminals */
            char esc[256];
            st = cn_fail(ctx, CN_E_FORMAT, "%s: the class folder '%s' has a control character in its name: rename it", dir,
                         cn_text_escape(classes.names[k], esc, sizeof esc));
            goto done;
        }
    if (classes.count > INT32_MAX) {
        st = cn_fail(ctx, CN_E_OVERFLOW, "%s: more than %d class folders", dir, INT32_MAX);
        goto done;
    }
    if (!(files = cn_calloc(ctx, (size_t)classes.count, sizeof *files))) {
        st = cn_ctx_status(ctx);
        goto done;
    }
    for (int64_t k = 0; k < classes.count; k++) {
        if (!(cls = cn_path_join(ctx, dir, classes.names[k]))) {
            st = CN_E_NOMEM;
            goto done;
        }
        if ((st = cn_list_class_files(ctx, cls, &files[k]))) goto done;
        if (files[k].count == 0) {
            st = cn_fail(ctx, CN_E_FORMAT, "%s: no images in this class folder", cls);
            goto done;
        }
        total += files[k].count;
        cn_free(ctx, cls);
        cls = NULL;
    }
    if (!cn_mul_ok(total, per, &bytes) || !cn_mul_ok(bytes, (int64_t)sizeof(float), &bytes)) {
        st = cn_fail(ctx, CN_E_OVERFLOW, "%s: %lld images of %lld values overflow", dir, (long long)total,
                     (long long)per);
        goto done;
    }
    out->class_names = cn_calloc(ctx, (size_t)classes.count, sizeof *out->class_names);
    out->images = lazy ? NULL : cn_malloc_large(ctx, (size_t)bytes);
    out->paths = lazy ? cn_calloc(ctx, (size_t)total, sizeof *out->paths) : NULL;
    out->labels = cn_malloc(ctx, (size_t)total * sizeof *out->labels);
    if (!out->class_names || (!lazy && !out->images) || (lazy && !out->paths) || !out->labels) {
        st = cn_ctx_status(ctx);
        goto done;
    }
    out->classes = (int32_t)classes.count; /* from here cn_dataset_free frees the names */
    out->c = c, out->h = h, out->w = w;
    /* every file's path and label (a lazy set keeps the paths, to decode when a batch needs them) */
    char **paths = lazy ? out->paths : cn_calloc(ctx, (size_t)total, sizeof *paths);
    if (!paths) {
        st = CN_E_NOMEM;
        goto done;
    }
    for (int64_t k = 0; k < classes.count; k++) {
        if (!(out->class_names[k] = cn_strdup(ctx, classes.names[k])) || !(cls = cn_path_join(ctx, dir, classes.names[k]))) {
            st = CN_E_NOMEM;
            break;
        }
        for (int64_t i = 0; i < files[k].count; i++) {
            if (!(paths[out->count] = cn_path_join(ctx, cls, files[k].names[i]))) {
                st = CN_E_NOMEM;
                break;
            }
            out->labels[out->count++] = (int32_t)k;
        }
        cn_free(ctx, cls);
        cls = NULL;
        if (st) break;
    }
    if (!lazy) {
        if (!st) st = decode_all(ctx, dir, paths, out->count, c, h, w, out->images);
        for (int64_t i = 0; i < out->count; i++) cn_free(ctx, paths[i]);
        cn_free(ctx, paths);
    }
done:
    cn_free(ctx, cls);
    for (int64_t k = 0; files && k < classes.count; k++) cn_names_free(ctx, &files[k]);
    cn_free(ctx, files);
    cn_names_free(ctx, &classes);
    if (st) cn_dataset_free(ctx, out);
    return st;
}

cn_status cn_dataset_load_folder(cn_ctx *ctx, const char *dir, int64_t c, int64_t h, int64_t w, cn_dataset *out)
{
    return load_folder(ctx, dir, c, h, w, 0, out);
}

cn_status cn_dataset_open_folder(cn_ctx *ctx, const char *dir, int64_t c, int64_t h, int64_t w, cn_dataset *out)
{
    return load_folder(ctx, dir, c, h, w, 1, out);
}
