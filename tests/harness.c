/* harness.c — runs the cases of one test file and prints the totals. */
#include <stdarg.h>

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
    for (int i = 0; i < n; i++) {
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
