#define _POSIX_C_SOURCE 200809L /* stat */
/* check.c — `convnet data check`: reads a whole data set and reports what is wrong with it
 * instead of stopping at the first problem. Three layouts (cn_data_layout):
 *   - an image folder in halves: DIR/train plus DIR/val and/or DIR/test, each an image folder;
 *     each half is counted on its own, the halves' class lists are compared (a class folder one
 *     half lacks is a problem), and a val or test image equal to an earlier half's is a leak;
 *   - MNIST format: train-images-idx3-ubyte[.gz] and/or t10k-images-idx3-ubyte[.gz] with their
 *     label files; both halves are checked together (a test image equal to a training image
 *     is a duplicate too, and a leak);
 *   - an image folder (one sub-folder per class, read as cn_dataset_load_folder does), every
 *     file decoded at its own size.
 * Duplicates are images whose decoded pixels (and size) equal an earlier image's: found by a
 * 64-bit FNV-1a hash, then confirmed by memcmp (image folders decode the earlier file again,
 * so only one image is held at a time). per_class counts the images that decode.
 * Covered by tests/test_images.c (a folder with broken, empty and duplicate files; folders in
 * halves; the real Fashion-MNIST) and fuzz/fuzz_idx.c. */
#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data_impl.h"

#define MAX_PROBLEM_LINES 100

typedef struct checker {
    cn_ctx *ctx;
    cn_data_report *r;
    char *text;
    size_t len, cap;
    int64_t lines, more;
    int nomem;
    /* duplicate finder: open addressing on the hash; item + 1 (0 = empty) */
    uint64_t *hashes;
    int64_t *items;
    int64_t slots, used;
    /* image folders: the path of every file seen, by item, over all the halves, and its class
     * (the name, the report's copy) */
    char **paths;
    const char **item_class;
    int64_t n_paths, paths_cap;
    /* halves: the first item of each half begun so far, and the half's name for messages */
    int64_t first[3];
    const char *half_label[3];
    int n_begun;
} checker;

/* the half (0..n_begun-1) that item is in */
static int half_of(const checker *k, int64_t item)
{
    int i = k->n_begun - 1;
    while (i > 0 && item < k->first[i]) i--;
    return i;
}

/* item, found equal to the earlier item e: counts the duplicate in h, the folder or half being
 * checked (the report's totals are summed from it); returns the earlier half's index when e is
 * in another half (a leak), else -1 */
static int count_duplicate(checker *k, cn_data_half *h, int64_t item, int64_t e)
{
    h->duplicates++;
    if (k->n_begun == 0) return -1;
    int he = half_of(k, e);
    if (he == half_of(k, item)) return -1;
    h->leaks++;
    return he;
}

static void problem(checker *k, const char *fmt, ...) CN_PRINTF(2, 3);
static void problem(checker *k, const char *fmt, ...)
{
    if (k->lines >= MAX_PROBLEM_LINES) {
        k->more++;
        return;
    }
    k->lines++;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = k->cap - k->len;
        int n = vsnprintf(k->text ? k->text + k->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n + 2 <= room) { /* the line and its '\n' */
            k->len += (size_t)n;
            k->text[k->len++] = '\n';
            k->text[k->len] = '\0';
            return;
        }
        size_t next = k->cap ? 2 * k->cap : 4096;
        while (next < k->len + (size_t)n + 2) next *= 2;
        char *p = cn_realloc(k->ctx, k->text, next);
        if (!p) {
            k->nomem = 1;
            return;
        }
        k->text = p, k->cap = next;
    }
}

/* 64-bit FNV-1a over the size and the bytes */
static uint64_t pixel_hash(int64_t h, int64_t w, int ch, const unsigned char *p, int64_t n)
{
    uint64_t x = 0xcbf29ce484222325ULL;
    int64_t dims[3] = { h, w, ch };
    const unsigned char *d = (const unsigned char *)dims;
    for (size_t i = 0; i < sizeof dims; i++) x = (x ^ d[i]) * 0x100000001b3ULL;
    for (int64_t i = 0; i < n; i++) x = (x ^ p[i]) * 0x100000001b3ULL;
    return x;
}

static int dup_grow(checker *k)
{
    int64_t slots = k->slots ? 2 * k->slots : 1024;
    uint64_t *hashes = cn_calloc(k->ctx, (size_t)slots, sizeof *hashes);
    int64_t *items = cn_calloc(k->ctx, (size_t)slots, sizeof *items);
    if (!hashes || !items) {
        cn_free(k->ctx, hashes);
        cn_free(k->ctx, items);
        k->nomem = 1;
        return -1;
    }
    for (int64_t i = 0; i < k->slots; i++) {
        if (!k->items[i]) continue;
        int64_t j = (int64_t)(k->hashes[i] & (uint64_t)(slots - 1));
        while (items[j]) j = (j + 1) & (slots - 1);
        hashes[j] = k->hashes[i], items[j] = k->items[i];
    }
    cn_free(k->ctx, k->hashes);
    cn_free(k->ctx, k->items);
    k->hashes = hashes, k->items = items, k->slots = slots;
    return 0;
}

/* Returns the earlier item with the same pixels (same(ctx, earlier) != 0 confirms), or -1
 * after remembering `item`; -2 when memory ran out. */
static int64_t dup_find(checker *k, uint64_t hash, int64_t item, int (*same)(void *, int64_t), void *arg)
{
    if (2 * (k->used + 1) > k->slots && dup_grow(k)) return -2;
    int64_t j = (int64_t)(hash & (uint64_t)(k->slots - 1));
    for (; k->items[j]; j = (j + 1) & (k->slots - 1)) {
        if (k->hashes[j] != hash) continue;
        int r = same(arg, k->items[j] - 1);
        if (r < 0) return -2;
        if (r) return k->items[j] - 1;
    }
    k->hashes[j] = hash, k->items[j] = item + 1, k->used++;
    return -1;
}

/* ---- MNIST format ---------------------------------------------------------------------------- */

typedef struct idx_half {
    char *images_path, *labels_path;
    cn_idx im, lb;
    int64_t first; /* global index of its first image */
    int train;     /* train-* (else t10k-*) */
} idx_half;

typedef struct idx_cmp {
    idx_half *halves;
    int n;
    const unsigned char *cur;
    int64_t cur_h, cur_w;
} idx_cmp;

static const unsigned char *idx_image(idx_cmp *c, int64_t item, int *half, int64_t *local)
{
    *half = 0, *local = 0;
    for (int i = c->n - 1; i >= 0; i--) {
        if (item >= c->halves[i].first && c->halves[i].im.data) {
            *half = i, *local = item - c->halves[i].first;
            return c->halves[i].im.data + *local * c->halves[i].im.dims[1] * c->halves[i].im.dims[2];
        }
    }
    return NULL;
}

static int idx_same(void *arg, int64_t earlier)
{
    idx_cmp *c = arg;
    int half;
    int64_t local;
    const unsigned char *p = idx_image(c, earlier, &half, &local);
    if (!p) return 0;
    const cn_idx *im = &c->halves[half].im;
    return im->dims[1] == c->cur_h && im->dims[2] == c->cur_w && !memcmp(p, c->cur, (size_t)(c->cur_h * c->cur_w));
}


/* finds the images file of train (1) or test (0) in dir; *found = 0 when absent */
static cn_status find_half(cn_ctx *ctx, const char *dir, int train, idx_half *h, int *found)
{
    char img[4096], lab[4096];
    *found = cn_mnist_half_files(dir, train, img, lab, sizeof img);
    if (!*found) return CN_OK;
    if (!(h->images_path = cn_strdup(ctx, img)) || !(h->labels_path = cn_strdup(ctx, lab))) return CN_E_NOMEM;
    return CN_OK;
}

/* the halves found (train, then test), as the report's halves: r->halves[i] is halves[i] */
static cn_status check_idx(checker *k, idx_half *halves, int n, int32_t classes)
{
    cn_ctx *ctx = k->ctx;
    cn_data_report *r = k->r;
    cn_status st = CN_OK;
    int64_t total = 0;
    int32_t max_label = -1;
    for (int i = 0; i < n; i++) {
        idx_half *h = &halves[i];
        cn_data_half *rh = &r->halves[i];
        h->first = total;
        k->first[i] = total, k->half_label[i] = rh->name, k->n_begun = i + 1;
        st = cn_idx_read(ctx, h->images_path, 3, &h->im);
        if (st == CN_E_NOMEM) return st;
        if (st) {
            r->bad_files++, rh->bad_files++;
            problem(k, "%s", cn_ctx_message(ctx));
            continue;
        }
        total += h->im.dims[0];
        rh->files = h->im.dims[0];
        st = cn_idx_read(ctx, h->labels_path, 1, &h->lb);
        if (st == CN_E_NOMEM) return st;
        if (st) {
            r->bad_files++, rh->bad_files++;
            problem(k, "%s", cn_ctx_message(ctx));
        } else if (h->lb.dims[0] != h->im.dims[0]) {
            problem(k, "%s: %lld labels for the %lld images of %s", h->labels_path, (long long)h->lb.dims[0],
                    (long long)h->im.dims[0], h->images_path);
        }
        for (int64_t j = 0; j < h->lb.count; j++)
            if (h->lb.data[j] > max_label) max_label = h->lb.data[j];
    }
    /* a net takes one size: the halves' images must agree (training refuses them otherwise) */
    for (int i = 1; i < n; i++)
        if (halves[0].im.data && halves[i].im.data &&
            (halves[i].im.dims[1] != halves[0].im.dims[1] || halves[i].im.dims[2] != halves[0].im.dims[2]))
            problem(k, "%s: the %s half's images are %lldx%lld, the %s half's (%s) %lldx%lld: a net takes one size",
                    halves[i].images_path, r->halves[i].name, (long long)halves[i].im.dims[1],
                    (long long)halves[i].im.dims[2], r->halves[0].name, halves[0].images_path,
                    (long long)halves[0].im.dims[1], (long long)halves[0].im.dims[2]);
    st = CN_OK;
    r->files = total;
    r->classes = classes > 0 ? classes : max_label + 1;
    if (!(r->per_class = cn_calloc(ctx, (size_t)(r->classes > 0 ? r->classes : 1), sizeof *r->per_class)))
        return CN_E_NOMEM;
    for (int i = 0; i < n; i++) {
        r->halves[i].classes = r->classes;
        if (!(r->halves[i].per_class = cn_calloc(ctx, (size_t)(r->classes > 0 ? r->classes : 1), sizeof(int64_t))))
            return CN_E_NOMEM;
    }
    idx_cmp cmp = { halves, n, NULL, 0, 0 };
    for (int i = 0; i < n; i++) {
        idx_half *h = &halves[i];
        cn_data_half *rh = &r->halves[i];
        if (!h->im.data) continue;
        int64_t size = h->im.dims[1] * h->im.dims[2];
        for (int64_t j = 0; j < h->lb.count && j < h->im.dims[0]; j++) {
            int32_t label = h->lb.data[j];
            if (label < r->classes) {
                r->per_class[label]++, rh->per_class[label]++;
            } else {
                r->bad_labels++, rh->bad_labels++;
                problem(k, "%s: label %d of image %lld is outside 0..%d", h->labels_path, label, (long long)j,
                        r->classes - 1);
            }
        }
        for (int64_t j = 0; j < h->im.dims[0]; j++) {
            cmp.cur = h->im.data + j * size, cmp.cur_h = h->im.dims[1], cmp.cur_w = h->im.dims[2];
            int64_t e = dup_find(k, pixel_hash(cmp.cur_h, cmp.cur_w, 1, cmp.cur, size), h->first + j, idx_same, &cmp);
            if (e == -2) return CN_E_NOMEM;
            if (e < 0) continue;
            int eh;
            int64_t el;
            idx_image(&cmp, e, &eh, &el);
            int leak = count_duplicate(k, rh, h->first + j, e) >= 0;
            problem(k, "%s: image %lld has the same pixels as image %lld of %s%s", h->images_path, (long long)j,
                    (long long)el, halves[eh].images_path, leak ? " (in both halves: leakage)" : "");
        }
        r->duplicates += rh->duplicates, r->leaks += rh->leaks;
    }
    return st;
}

/* ---- image folders --------------------------------------------------------------------------- */

typedef struct folder_cmp {
    checker *k;       /* k->paths: every file seen, by item */
    const char *path; /* the current file, decoded (cur) when a hash first matches */
    cn_pixels cur;
} folder_cmp;

static int folder_same(void *arg, int64_t earlier)
{
    folder_cmp *c = arg;
    cn_ctx *ctx = c->k->ctx;
    cn_pixels px;
    cn_status st = c->cur.data ? CN_OK : cn_pixels_decode(ctx, c->path, &c->cur);
    if (!st) st = cn_pixels_decode(ctx, c->k->paths[earlier], &px);
    if (st == CN_E_NOMEM) return -1;
    if (st) return 0; /* changed since it was read */
    int same = px.h == c->cur.h && px.w == c->cur.w && px.channels == c->cur.channels &&
               !memcmp(px.data, c->cur.data, (size_t)(px.h * px.w * px.channels));
    cn_pixels_free(ctx, &px);
    return same;
}

/* what decoding a file gave: its pixels' hash, or the message it failed with */
typedef struct file_sum {
    uint64_t hash;
    char *msg;
} file_sum;

static void file_sums_free(cn_ctx *ctx, file_sum *sums, int64_t n)
{
    for (int64_t i = 0; sums && i < n; i++) cn_free(ctx, sums[i].msg);
    cn_free(ctx, sums);
}

typedef struct hashing {
    const char *cls;
    const cn_names *files;
    file_sum *sums;
} hashing;

static cn_status hash_one(cn_ctx *tc, int64_t i, void *arg)
{
    hashing *h = arg;
    char *path = cn_path_join(tc, h->cls, h->files->names[i]);
    cn_pixels px;
    cn_status st = path ? cn_pixels_decode(tc, path, &px) : CN_E_NOMEM;
    cn_free(tc, path);
    if (!st) {
        h->sums[i].hash = pixel_hash(px.h, px.w, px.channels, px.data, px.h * px.w * px.channels);
        cn_pixels_free(tc, &px);
    } else if (st != CN_E_NOMEM && !(h->sums[i].msg = cn_strdup(tc, cn_ctx_message(tc)))) {
        st = CN_E_NOMEM; /* "FILE: not a PNG or JPEG image", ... kept for the report */
    }
    return st;
}

/* Every file of a class folder decoded and hashed on the threads (cn_for_each_file); the report
 * is then made from them in order, the same on any number. CN_E_NOMEM only. */
static cn_status decode_files(cn_ctx *ctx, const char *cls, const cn_names *files, file_sum **out)
{
    int64_t n = files->count;
    file_sum *sums = *out = n ? cn_calloc(ctx, (size_t)n, sizeof *sums) : NULL;
    if (n && !sums) return CN_E_NOMEM;
    hashing h = { cls, files, sums };
    cn_status st = cn_for_each_file(ctx, n, hash_one, &h);
    if (st) {
        file_sums_free(ctx, sums, n);
        *out = NULL;
    }
    return st;
}

/* One image folder (the whole data set, or a half) counted into out; the report's totals
 * (files, bad_files, duplicates, bad_labels) are the caller's to add up. */
static cn_status check_folder(checker *k, const char *dir, cn_names *classes, int32_t want_classes, cn_data_half *out)
{
    cn_ctx *ctx = k->ctx;
    cn_status st = CN_OK;
    char *cls = NULL;
    cn_names files = { 0, NULL };
    if (classes->count > INT32_MAX) return cn_fail(ctx, CN_E_OVERFLOW, "%s: more than %d class folders", dir, INT32_MAX);
    out->classes = (int32_t)classes->count;
    out->per_class = cn_calloc(ctx, (size_t)classes->count, sizeof *out->per_class);
    out->class_names = cn_calloc(ctx, (size_t)classes->count, sizeof *out->class_names);
    if (!out->per_class || !out->class_names) return CN_E_NOMEM;
    for (int64_t c = 0; c < classes->count; c++)
        if (!(out->class_names[c] = cn_strdup(ctx, classes->names[c]))) return CN_E_NOMEM;
    if (want_classes > 0 && want_classes != out->classes)
        problem(k, "%s: %d class folders, %d classes expected", dir, out->classes, want_classes);
    for (int64_t c = 0; c < classes->count; c++) {
        if (!(cls = cn_path_join(ctx, dir, classes->names[c]))) {
            st = CN_E_NOMEM;
            goto done;
        }
        if (!cn_text_printable(classes->names[c])) {
            char esc[256];
            problem(k, "%s: the class folder '%s' has a control character in its name: rename it", dir,
                    cn_text_escape(classes->names[c], esc, sizeof esc));
        }
        /* the files training reads: the class folder's and its sub-folders', as ImageFolder's */
        if ((st = cn_list_class_files(ctx, cls, &files))) {
            if (st == CN_E_NOMEM) goto done;
            st = CN_OK;
            out->bad_files++;
            problem(k, "%s", cn_ctx_message(ctx));
        } else if (files.count == 0) {
            problem(k, "%s: no images in this class folder", cls);
        }
        if (want_classes > 0 && c >= want_classes) {
            out->bad_labels += files.count;
            problem(k, "%s: class %lld is outside 0..%d", cls, (long long)c, want_classes - 1);
        }
        file_sum *sums = NULL;
        if ((st = decode_files(ctx, cls, &files, &sums))) goto done;
        for (int64_t i = 0; i < files.count; i++) {
            if (k->n_paths == k->paths_cap) {
                int64_t next = k->paths_cap ? 2 * k->paths_cap : 256;
                char **p = cn_realloc(ctx, k->paths, (size_t)next * sizeof *p);
                if (p) k->paths = p;
                const char **q = p ? cn_realloc(ctx, k->item_class, (size_t)next * sizeof *q) : NULL;
                if (!q) {
                    st = CN_E_NOMEM;
                    break;
                }
                k->item_class = q, k->paths_cap = next;
            }
            k->item_class[k->n_paths] = out->class_names[c];
            char *path = k->paths[k->n_paths] = cn_path_join(ctx, cls, files.names[i]);
            if (!path) {
                st = CN_E_NOMEM;
                break;
            }
            int64_t item = k->n_paths++;
            out->files++;
            if (sums[i].msg) {
                out->bad_files++;
                problem(k, "%s", sums[i].msg);
                continue;
            }
            out->per_class[c]++;
            folder_cmp cmp = { k, path, { 0 } };
            int64_t e = dup_find(k, sums[i].hash, item, folder_same, &cmp);
            cn_pixels_free(ctx, &cmp.cur);
            if (e == -2) {
                st = CN_E_NOMEM;
                break;
            }
            if (e >= 0) {
                int he = count_duplicate(k, out, item, e);
                char why[700] = "", esc[2][256];
                if (strcmp(k->item_class[e], out->class_names[c])) /* one image, two labels */
                    snprintf(why, sizeof why, "one image in two classes, '%s' and '%s'",
                             cn_text_escape(k->item_class[e], esc[0], sizeof esc[0]),
                             cn_text_escape(out->class_names[c], esc[1], sizeof esc[1]));
                if (he >= 0)
                    snprintf(why + strlen(why), sizeof why - strlen(why), "%sin both %s/ and %s/: leakage",
                             why[0] ? "; " : "", k->half_label[he], k->half_label[k->n_begun - 1]);
                problem(k, "%s: same pixels as %s%s%s%s", path, k->paths[e], why[0] ? " (" : "", why, why[0] ? ")" : "");
            }
        }
        file_sums_free(ctx, sums, files.count);
        if (st) goto done;
        cn_names_free(ctx, &files);
        cn_free(ctx, cls);
        cls = NULL;
    }
done:
    cn_names_free(ctx, &files);
    cn_free(ctx, cls);
    return st;
}

/* ---- image folders in halves ----------------------------------------------------------------- */

static const char *const half_dirs[] = { "train", "val", "test" }; /* the order they are checked in */

static int is_folder(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* whether dir/name is a folder (kind 'd') or a file ('f'), on a fixed-size path */
static int has_entry(const char *dir, const char *name, char kind)
{
    char p[4200];
    struct stat sb;
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, name) >= sizeof p || stat(p, &sb)) return 0;
    return kind == 'd' ? S_ISDIR(sb.st_mode) : 1;
}

const char *cn_lone_half_hint(const char *class_name)
{
    int half = class_name && (!strcasecmp(class_name, "train") || !strcasecmp(class_name, "val") ||
                              !strcasecmp(class_name, "test"));
    return half ? " (a train/ folder alone is no data in halves: give train/ itself, or add val/ or test/ beside it)" : "";
}

int cn_data_half_folder(const char *dir, const char *half, char *out, size_t cap)
{
    static const char *const val_names[] = { "val", "valid", "validation", NULL };
    const char *one[] = { half, NULL }, *const *names = strcmp(half, "val") ? one : val_names;
    for (int k = 0; names[k]; k++) /* the name as given: no listing needed */
        if (has_entry(dir, names[k], 'd')) return snprintf(out, cap, "%s/%s", dir, names[k]) < (int)cap;
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));)
        for (int k = 0; names[k] && !found; k++)
            found = !strcasecmp(e->d_name, names[k]) && has_entry(dir, e->d_name, 'd') &&
                    snprintf(out, cap, "%s/%s", dir, e->d_name) < (int)cap;
    if (d) closedir(d);
    return found;
}

cn_data_layout cn_data_find_layout(const char *dir, int *has_test, int *has_val)
{
    char sub[4200];
    int test = cn_data_half_folder(dir, "test", sub, sizeof sub), val = cn_data_half_folder(dir, "val", sub, sizeof sub);
    int mnist = 0;
    cn_data_layout l = CN_DATA_FOLDER;
    if (cn_data_half_folder(dir, "train", sub, sizeof sub) && (test || val)) {
        l = CN_DATA_HALVES;
    } else {
        static const char *const idx[] = { "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte",
                                           "t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte" };
        for (int i = 0; i < 4; i++) mnist |= has_entry(dir, idx[i], 'f');
        l = mnist ? CN_DATA_MNIST : CN_DATA_FOLDER;
        test = mnist, val = 0;
    }
    if (has_test) *has_test = test;
    if (has_val) *has_val = val;
    return l;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the index of name in h's sorted class names, or -1 */
static int64_t class_index(const cn_data_half *h, const char *name)
{
    if (!h->classes) return -1;
    char **p = bsearch(&name, h->class_names, (size_t)h->classes, sizeof *h->class_names, cmp_names);
    return p ? p - h->class_names : -1;
}

/* The report's classes: every half's, sorted; per_class summed over the halves. A class that
 * one half has a folder for and another has not is a problem named in the half that lacks it. */
static cn_status merge_classes(checker *k)
{
    cn_ctx *ctx = k->ctx;
    cn_data_report *r = k->r;
    int64_t all = 0, n = 0;
    for (int i = 0; i < r->n_halves; i++) all += r->halves[i].classes;
    const char **names = cn_calloc(ctx, (size_t)(all ? all : 1), sizeof *names); /* borrowed from the halves */
    if (!names) return CN_E_NOMEM;
    for (int i = 0; i < r->n_halves; i++)
        for (int32_t c = 0; c < r->halves[i].classes; c++) names[n++] = r->halves[i].class_names[c];
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    int64_t u = 0;
    for (int64_t i = 0; i < n; i++)
        if (u == 0 || strcmp(names[u - 1], names[i])) names[u++] = names[i];
    cn_status st = CN_OK;
    if (u > INT32_MAX) {
        st = cn_fail(ctx, CN_E_OVERFLOW, "more than %d classes over the halves", INT32_MAX);
        goto done;
    }
    r->per_class = cn_calloc(ctx, (size_t)(u ? u : 1), sizeof *r->per_class);
    r->class_names = cn_calloc(ctx, (size_t)(u ? u : 1), sizeof *r->class_names);
    if (!r->per_class || !r->class_names) {
        st = CN_E_NOMEM;
        goto done;
    }
    r->classes = (int32_t)u;
    for (int64_t c = 0; c < u; c++) {
        if (!(r->class_names[c] = cn_strdup(ctx, names[c]))) {
            st = CN_E_NOMEM;
            goto done;
        }
        char have[32] = ""; /* "train/ and val/": the halves with the class */
        int n_have = 0;
        for (int i = 0; i < r->n_halves; i++) {
            int64_t j = class_index(&r->halves[i], names[c]);
            if (j < 0) continue;
            r->per_class[c] += r->halves[i].per_class[j];
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s/", n_have ? " and " : "",
                     r->halves[i].name);
            n_have++;
        }
        for (int i = 0; i < r->n_halves; i++) {
            cn_data_half *h = &r->halves[i];
            if (class_index(h, names[c]) >= 0) continue;
            h->missing_classes++, r->missing_classes++;
            problem(k, "%s: no class folder '%s' (%s %s one)", h->path, names[c], have, n_have > 1 ? "have" : "has");
        }
    }
done:
    cn_free(ctx, names);
    return st;
}

/* Each half of dir (train, val, test, as found) checked as an image folder of its own, into
 * the report's halves; the report's figures are their totals. */
static cn_status check_halves(checker *k, const char *dir, int32_t want_classes)
{
    cn_ctx *ctx = k->ctx;
    cn_data_report *r = k->r;
    cn_status st = CN_OK;
    cn_names cls = { 0, NULL };
    if (!(r->halves = cn_calloc(ctx, 3, sizeof *r->halves))) return CN_E_NOMEM;
    for (int i = 0; i < 3; i++) {
        char found[4200], *sub;
        if (!cn_data_half_folder(dir, half_dirs[i], found, sizeof found)) continue;
        if (!(sub = cn_strdup(ctx, found))) return CN_E_NOMEM;
        cn_data_half *h = &r->halves[r->n_halves++];
        h->path = sub;
        if (!(h->name = cn_strdup(ctx, half_dirs[i]))) return CN_E_NOMEM;
        k->first[k->n_begun] = k->n_paths, k->half_label[k->n_begun] = h->name, k->n_begun++;
        if ((st = cn_list_dir(ctx, h->path, 1, &cls))) {
            if (st == CN_E_NOMEM) goto done;
            st = CN_OK;
            problem(k, "%s", cn_ctx_message(ctx));
        } else if (cls.count == 0) {
            problem(k, "%s: no class sub-folders (each half is an image folder: %s/CLASS/IMAGE.png)", h->path, h->path);
        } else if ((st = check_folder(k, h->path, &cls, want_classes, h))) {
            goto done;
        }
        cn_names_free(ctx, &cls);
        r->files += h->files, r->bad_files += h->bad_files, r->duplicates += h->duplicates;
        r->bad_labels += h->bad_labels, r->leaks += h->leaks;
    }
    st = merge_classes(k);
done:
    cn_names_free(ctx, &cls);
    return st;
}

/* ---- entry points ---------------------------------------------------------------------------- */

void cn_data_report_free(cn_ctx *ctx, cn_data_report *r)
{
    if (!r) return;
    for (int32_t i = 0; r->halves && i < r->n_halves; i++) {
        cn_data_half *h = &r->halves[i];
        cn_free(ctx, h->name);
        cn_free(ctx, h->path);
        cn_free(ctx, h->per_class);
        for (int32_t c = 0; h->class_names && c < h->classes; c++) cn_free(ctx, h->class_names[c]);
        cn_free(ctx, h->class_names);
    }
    cn_free(ctx, r->halves);
    cn_free(ctx, r->per_class);
    for (int32_t i = 0; r->class_names && i < r->classes; i++) cn_free(ctx, r->class_names[i]);
    cn_free(ctx, r->class_names);
    cn_free(ctx, r->problems);
    memset(r, 0, sizeof *r);
}

/* Images beside an image folder's class folders are not read (a class is a sub-folder): said,
 * for they are often the point (a class folder given in place of the folder above it). */
static cn_status note_loose_images(checker *k, const char *path, int64_t n_classes)
{
    cn_names files = { 0, NULL };
    cn_status st = cn_list_dir(k->ctx, path, 0, &files);
    if (st) return st == CN_E_NOMEM ? st : (cn_ctx_clear(k->ctx), CN_OK);
    int64_t loose = 0;
    for (int64_t i = 0; i < files.count; i++) {
        char *p = cn_path_join(k->ctx, path, files.names[i]);
        if (!p) {
            cn_names_free(k->ctx, &files);
            return CN_E_NOMEM;
        }
        int kind = cn_file_kind_at(p);
        loose += kind == CN_FILE_PNG || kind == CN_FILE_JPEG;
        cn_free(k->ctx, p);
    }
    cn_names_free(k->ctx, &files);
    if (loose)
        problem(k, "%s: %lld image%s beside the class folders %s not read (each class is a sub-folder of images)%s", path,
                (long long)loose, loose == 1 ? "" : "s", loose == 1 ? "is" : "are",
                n_classes == 1 ? "; is this a class folder? give the folder above it" : "");
    return CN_OK;
}

cn_status cn_data_check(cn_ctx *ctx, const char *path, int32_t classes, cn_data_report *out)
{
    memset(out, 0, sizeof *out);
    if (!path) return cn_fail(ctx, CN_E_ARG, "cn_data_check: NULL path");
    if (classes < 0) return cn_fail(ctx, CN_E_ARG, "%s: %d classes asked for", path, classes);
    checker k;
    memset(&k, 0, sizeof k);
    k.ctx = ctx, k.r = out;
    idx_half halves[2];
    memset(halves, 0, sizeof halves);
    cn_names cls = { 0, NULL };
    int n = 0;
    cn_status st;
    int in_halves;
    if (!is_folder(path)) {
        st = cn_fail(ctx, CN_E_IO, "%s: not a folder (give an MNIST-format folder or an image folder)", path);
        goto done;
    }
    in_halves = cn_data_find_layout(path, NULL, NULL) == CN_DATA_HALVES;
    for (int train = 1; train >= 0 && !in_halves; train--) {
        int found;
        if ((st = find_half(ctx, path, train, &halves[n], &found))) goto done;
        halves[n].train = train;
        n += found;
    }
    if (in_halves) {
        out->layout = CN_DATA_HALVES;
        st = check_halves(&k, path, classes);
    } else if (n > 0) {
        out->layout = CN_DATA_MNIST;
        if (!(out->halves = cn_calloc(ctx, (size_t)n, sizeof *out->halves))) {
            st = CN_E_NOMEM;
            goto done;
        }
        for (int i = 0; i < n; i++) {
            cn_data_half *h = &out->halves[out->n_halves++];
            h->name = cn_strdup(ctx, halves[i].train ? "train" : "test");
            h->path = cn_strdup(ctx, halves[i].images_path);
            if (!h->name || !h->path) {
                st = CN_E_NOMEM;
                goto done;
            }
        }
        st = check_idx(&k, halves, n, classes);
    } else {
        if ((st = cn_list_dir(ctx, path, 1, &cls))) goto done;
        if (cls.count == 0) {
            st = cn_fail(ctx, CN_E_FORMAT, "%s: neither an MNIST-format folder (train-*/t10k-* IDX files) nor an image "
                                           "folder: no class sub-folders (an image folder holds one sub-folder of images "
                                           "per class: %s/CLASS/IMAGE.png)", path, path);
            goto done;
        }
        if ((st = note_loose_images(&k, path, cls.count))) goto done;
        cn_data_half all;
        memset(&all, 0, sizeof all);
        st = check_folder(&k, path, &cls, classes, &all);
        /* moved into the report whole, so that freeing it frees what was made on a failure too */
        out->files = all.files, out->bad_files = all.bad_files, out->duplicates = all.duplicates;
        out->bad_labels = all.bad_labels, out->classes = all.classes, out->per_class = all.per_class;
        out->class_names = all.class_names;
        if (!st && out->classes == 1) /* train refuses it: every image right from the first step */
            problem(&k, "%s: one class only ('%s'): a classifier needs images of two classes or more%s", path,
                    out->class_names[0], cn_lone_half_hint(out->class_names[0]));
    }
    if (!st && k.more) {
        k.lines = 0; /* room for the summary line */
        problem(&k, "... and %lld more", (long long)k.more);
    }
    if (!st && k.nomem) st = cn_fail(ctx, CN_E_NOMEM, "out of memory");
    if (!st && !k.text && !(k.text = cn_calloc(ctx, 1, 1))) st = CN_E_NOMEM;
    if (!st) {
        out->problems = k.text;
        k.text = NULL;
        cn_ctx_clear(ctx); /* the failures met on the way are in the report */
    }
done:
    for (int i = 0; i < 2; i++) {
        cn_free(ctx, halves[i].images_path);
        cn_free(ctx, halves[i].labels_path);
        cn_idx_free(ctx, &halves[i].im);
        cn_idx_free(ctx, &halves[i].lb);
    }
    cn_names_free(ctx, &cls);
    for (int64_t i = 0; i < k.n_paths; i++) cn_free(ctx, k.paths[i]);
    cn_free(ctx, k.paths);
    cn_free(ctx, k.item_class);
    cn_free(ctx, k.text);
    cn_free(ctx, k.hashes);
    cn_free(ctx, k.items);
    if (st) cn_data_report_free(ctx, out);
    return st;
}
