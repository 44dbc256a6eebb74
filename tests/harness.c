/* harness.c — runs the cases of one test file and prints the totals; temporary folders. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int test_failures;

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: check failed: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    test_failures++;
}

int run_tests(const test_case *cases, int n)
{
    int passed = 0, failed = 0;
    const char *only = getenv("CN_TEST_ONLY"); /* a developer's run of the cases whose names hold it (and "setup") */
    for (int i = 0; i < n; i++) {
        if (only && *only && !strstr(cases[i].name, only) && strcmp(cases[i].name, "setup") != 0) continue;
        test_failures = 0;
        cases[i].fn();
        if (test_failures) {
            failed++;
            fprintf(stderr, "FAIL %s\n", cases[i].name);
        } else {
            passed++;
            printf("ok   %s\n", cases[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

void test_tmpdir(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/tmp/cn_%s_XXXXXX", tag);
    if (!mkdtemp(buf)) test_fail(__FILE__, __LINE__, "cannot make %s", buf);
}

void test_rmtree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) test_fail(__FILE__, __LINE__, "cannot remove %s", dir);
}

const char *test_path(const char *dir, const char *name)
{
    static char path[8][256];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}
