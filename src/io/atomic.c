/* atomic.c — files written whole or not at all: "<path>.tmp.<pid>" in the same folder, fsync,
 * rename over path, fsync of the folder. A crash at any moment leaves the old file or the new
 * one, and at worst a temporary file that cn_file_remove_temps removes. Checkpoints,
 * metrics.csv, run.json and report.html are written this way; each write passes the fault
 * points "FILE:write", "FILE:rename" and "FILE:renamed" (src/core/fault.c).
 * Covered by tests/test_checkpoint.c (atomic writes) and tests/cli_crash_test.sh. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io_impl.h"

#define TEMP_INFIX ".tmp." /* "<name>.tmp.<pid>": one source for writer and cleaner */

/* fsync of the folder holding path, so that the rename itself survives a crash */
static int sync_folder(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 0;
    if (slash && len == 0) len = 1; /* "/file" */
    if (!slash) snprintf(dir, cap, ".");
    else snprintf(dir, cap, "%.*s", (int)len, path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* some file systems cannot sync a folder (EINVAL): nothing more to do there */
    if (rc != 0 && err == EINVAL) rc = 0;
    errno = err;
    return rc;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

cn_status cn_write_atomic(cn_ctx *ctx, const char *what, const char *path, const cn_span *parts, int n_parts)
{
    cn_status st = CN_E_NOMEM;
    int fd = -1, created = 0;
    size_t tlen = strlen(path) + 32, total = 0, done_bytes = 0;
    char *tmp = cn_malloc(ctx, tlen), *dir = cn_malloc(ctx, tlen);
    if (!tmp || !dir) goto done;
    st = CN_E_IO;
    for (int i = 0; i < n_parts; i++) total += parts[i].n;
    snprintf(tmp, tlen, "%s" TEMP_INFIX "%ld", path, (long)getpid());
    /* the name is this process's: a leftover of an earlier process with our pid goes, and
     * O_EXCL refuses to follow a link planted in its place */
    remove(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) {
        cn_fail(ctx, st, "%s %s: cannot create the temporary file %s: %s", what, path, tmp, strerror(errno));
        goto done;
    }
    created = 1;
    for (int i = 0; i < n_parts; i++) {
        const unsigned char *p = parts[i].p;
        size_t n = parts[i].n;
        /* the fault point "write" falls in the middle of the file */
        if (done_bytes <= total / 2 && done_bytes + n > total / 2) {
            size_t half = total / 2 - done_bytes;
            if (write_all(fd, p, half)) goto write_failed;
            cn_fault_point(path, "write");
            p += half, n -= half, done_bytes += half;
        }
        if (write_all(fd, p, n)) goto write_failed;
        done_bytes += n;
    }
    if (fsync(fd) != 0) goto write_failed;
    int rc = close(fd);
    fd = -1;
    if (rc != 0) goto write_failed;
    cn_fault_point(path, "rename");
    if (rename(tmp, path) != 0) {
        cn_fail(ctx, st, "%s %s: cannot rename %s over it: %s", what, path, tmp, strerror(errno));
        goto done;
    }
    created = 0; /* renamed: it is the file now */
    cn_fault_point(path, "renamed");
    if (sync_folder(path, dir, tlen) != 0) {
        cn_fail(ctx, st, "%s %s: written, but its folder %s cannot be synced: %s", what, path, dir, strerror(errno));
        goto done;
    }
    st = CN_OK;
    goto done;
write_failed:
    cn_fail(ctx, st, "%s %s: cannot write %s: %s", what, path, tmp, strerror(errno));
done:
    if (fd >= 0) close(fd);
    if (created) remove(tmp);
    cn_free(ctx, tmp);
    cn_free(ctx, dir);
    return st;
}

cn_status cn_file_write_atomic(cn_ctx *ctx, const char *path, const void *data, size_t len)
{
    if (!ctx) return CN_E_ARG;
    if (!path || !*path || (!data && len)) return cn_fail(ctx, CN_E_ARG, "cn_file_write_atomic: bad arguments");
    cn_span part = { data, len };
    return cn_write_atomic(ctx, "file", path, &part, 1);
}

/* "<name>.tmp.<digits>" for one of names */
static int is_temp_of(const char *file, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]), k = strlen(TEMP_INFIX);
        if (strncmp(file, names[i], len) || strncmp(file + len, TEMP_INFIX, k)) continue;
        const char *d = file + len + k;
        if (!*d) continue;
        while (*d >= '0' && *d <= '9') d++;
        if (!*d) return 1;
    }
    return 0;
}

cn_status cn_file_remove_temps(cn_ctx *ctx, const char *dir, const char *const *names, int n_names, int *removed)
{
    if (!ctx) return CN_E_ARG;
    if (removed) *removed = 0;
    if (!dir || n_names < 0 || (n_names && !names)) return cn_fail(ctx, CN_E_ARG, "cn_file_remove_temps: bad arguments");
    DIR *d = opendir(dir);
    if (!d) return cn_fail(ctx, CN_E_IO, "%s: cannot list: %s", dir, strerror(errno));
    cn_status st = CN_OK;
    size_t cap = strlen(dir) + 512;
    char *path = cn_malloc(ctx, cap);
    if (!path) {
        closedir(d);
        return CN_E_NOMEM;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_temp_of(e->d_name, names, n_names) || strlen(e->d_name) > 400) continue;
        snprintf(path, cap, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT) {
            st = cn_fail(ctx, CN_E_IO, "%s: cannot remove: %s", path, strerror(errno));
            break;
        }
        if (removed) (*removed)++;
    }
    closedir(d);
    cn_free(ctx, path);
    return st;
}
