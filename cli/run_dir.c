/* run_dir.c — a run folder belongs to one run. `convnet train` takes the folder's lock
 * (DIR/.lock, an fcntl lock the kernel drops when the process ends, however it ends), removes
 * what interrupted writes left, refuses a folder that holds another run unless told to replace
 * it, and writes run.json (the settings, the seed and the spec) before the first step, so that
 * --resume can start a run again that was stopped before its first epoch ended.
 * Covered by tests/cli_crash_test.sh. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_impl.h"

#define RUN_FORMAT "convnet-run-1"
#define RUN_JSON_MAX (64 << 20) /* the settings and the spec; specs are far smaller */

/* The files a run writes in its folder, run.json first: one list for the ownership check, the
 * cleaning of temporary files and --replace. */
static const char *const run_files[] = { "run.json", "last.safetensors", "model.safetensors", "metrics.csv",
                                         "steps.csv", "gradients.csv", "report.html" };
#define N_RUN_FILES ((int)(sizeof run_files / sizeof run_files[0]))

static int mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

/* "in use" when another process holds fd's lock, else the failure to lock path */
static int lock_error(int fd, const char *dir, const char *path, int err)
{
    struct flock who = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    long pid = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK ? (long)who.l_pid : 0;
    if (err != EACCES && err != EAGAIN) return cli_error("%s: cannot lock: %s", path, strerror(err));
    if (pid) return cli_error("%s: in use by another convnet process (pid %ld): one run per folder", dir, pid);
    return cli_error("%s: in use by another convnet process: one run per folder", dir);
}

int cli_run_lock(cn_ctx *ctx, const char *dir, int *fd_out)
{
    char path[4200];
    *fd_out = -1;
    if (mkdirs(dir)) return cli_error("%s: cannot create: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0) return cli_error("%s: cannot open: %s", path, strerror(errno));
    struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(fd, F_SETLK, &lk) != 0) {
        int rc = lock_error(fd, dir, path, errno);
        close(fd);
        return rc;
    }
    int removed;
    if (cn_file_remove_temps(ctx, dir, run_files, N_RUN_FILES, &removed)) {
        close(fd);
        return cli_ctx_error(ctx);
    }
    *fd_out = fd;
    return 0;
}

int cli_run_busy(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0; /* no lock file: nobody holds the folder */
    struct flock who = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    int rc = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK ? lock_error(fd, dir, path, EAGAIN) : 0;
    close(fd);
    return rc;
}

void cli_run_unlock(int fd)
{
    if (fd >= 0) close(fd);
}

const char *cli_run_found(const char *dir)
{
    char path[4200];
    struct stat st;
    for (int i = 0; i < N_RUN_FILES; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, run_files[i]);
        if (!lstat(path, &st)) return run_files[i];
    }
    return NULL;
}

int cli_run_remove(const char *dir)
{
    char path[4200];
    /* run.json last: a kill part way leaves a folder that still says it holds a run */
    for (int i = N_RUN_FILES - 1; i >= 0; i--) {
        snprintf(path, sizeof path, "%s/%s", dir, run_files[i]);
        if (unlink(path) && errno != ENOENT) return cli_error("%s: cannot remove: %s", path, strerror(errno));
    }
    return 0;
}

int cli_run_manifest_write(cn_ctx *ctx, const char *dir, const char *args, uint64_t seed, const char *spec)
{
    char path[4200], seed_text[32];
    snprintf(path, sizeof path, "%s/run.json", dir);
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
    cli_memfile m;
    if (cli_memfile_open(&m)) return 1;
    fprintf(m.f, "{\"format\":\"%s\",\"seed\":\"%s\",\"train_args\":", RUN_FORMAT, seed_text);
    cli_json_string(m.f, args);
    fprintf(m.f, ",\"spec\":");
    cli_json_string(m.f, spec);
    fprintf(m.f, "}\n");
    return cli_memfile_commit(ctx, &m, path, 0);
}

/* a string member of the manifest, malloc'ed */
static char *member(const cJSON *root, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

int cli_run_manifest_read(const char *dir, char **args, char **seed, char **spec)
{
    char path[4200];
    *args = *seed = *spec = NULL;
    snprintf(path, sizeof path, "%s/run.json", dir);
    size_t len;
    int rc;
    char *text = cli_read_file(path, RUN_JSON_MAX, &len, &rc);
    if (!text) return rc;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsObject(root)) rc = cli_error("%s: not a JSON object", path);
    else if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, RUN_FORMAT))
        rc = cli_error("%s: format is not %s", path, RUN_FORMAT);
    else if (!(*args = member(root, "train_args")) || !(*seed = member(root, "seed")) || !(*spec = member(root, "spec")))
        rc = cli_error("%s: train_args, seed or spec missing (or not strings)", path);
    cJSON_Delete(root);
    if (rc) {
        free(*args), free(*seed), free(*spec);
        *args = *seed = *spec = NULL;
    }
    return rc;
}
