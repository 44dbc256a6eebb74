/* fault.c — the fault-injection switch of the crash tests: CONVNET_FAULT=WHERE[:N] stops the
 * process with SIGKILL (as `kill -9` would) the N-th time (default 1) it reaches the point
 * WHERE, so that a test can kill a run at every write point instead of guessing with timers.
 * CONVNET_FAULT_SIGNAL=STOP stops it with SIGSTOP instead (a process that holds its run
 * folder's lock, for the lock test). Points: "FILE:write" (half of the temporary file written),
 * "FILE:rename" (the temporary file complete, before the rename) and "FILE:renamed" (after
 * the rename, before the folder is synced) for every atomic write, FILE being the base name
 * (last.safetensors, metrics.csv, run.json, ...); "step" after every training step.
 * Unset, a point costs a pthread_once check and one comparison. Covered by
 * tests/cli_crash_test.sh. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core_impl.h"

/* CONVNET_FAULT, read once (pthread_once: training runs in separate threads may reach a point
 * at the same time) */
static char where[256];
static long left;
static pthread_once_t parse_once = PTHREAD_ONCE_INIT;

static void parse_fault(void)
{
    const char *s = getenv("CONVNET_FAULT");
    if (!s || strlen(s) >= sizeof where) return;
    strcpy(where, s);
    left = 1;
    char *colon = strrchr(where, ':'), *end;
    if (colon) {
        long n = strtol(colon + 1, &end, 10);
        if (end != colon + 1 && !*end && n > 0) left = n, *colon = '\0';
    }
}

void cn_fault_point(const char *file, const char *point)
{
    pthread_once(&parse_once, parse_fault);
    if (!where[0]) return;
    const char *base = file ? strrchr(file, '/') : NULL;
    base = base ? base + 1 : file;
    size_t n = base ? strlen(base) : 0;
    /* "FILE:POINT", or "POINT" alone when there is no file */
    if (base ? strncmp(where, base, n) || where[n] != ':' || strcmp(where + n + 1, point) : strcmp(where, point)) return;
    if (left <= 0 || --left > 0) return; /* once: a stopped process continued runs on */
    const char *sig = getenv("CONVNET_FAULT_SIGNAL");
    raise(sig && !strcmp(sig, "STOP") ? SIGSTOP : SIGKILL);
}
