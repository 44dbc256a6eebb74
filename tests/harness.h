/* harness.h — a small table-driven test harness: each test file lists its cases and calls
 * run_tests(); a failed check prints file:line and the values, and the run ends with
 * "N passed, N failed". */
#ifndef CN_TEST_HARNESS_H
#define CN_TEST_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

extern int test_failures; /* failed checks in the current case */

int run_tests(const test_case *cases, int n);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A new folder /tmp/cn_<tag>_XXXXXX into buf (a check fails when it cannot be made), and its
 * removal with everything in it. */
void test_tmpdir(char *buf, size_t cap, const char *tag);
void test_rmtree(const char *dir);
/* "dir/name" in one of 8 rotating buffers (a call may hold up to 8 such paths at once) */
const char *test_path(const char *dir, const char *name);

#define CHECK(cond) \
    do { if (!(cond)) test_fail(__FILE__, __LINE__, "%s", #cond); } while (0)
#define CHECK_INT(a, b) \
    do { long long a_ = (long long)(a), b_ = (long long)(b); \
         if (a_ != b_) test_fail(__FILE__, __LINE__, "%s == %lld, expected %lld", #a, a_, b_); } while (0)
/* |a - b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol) \
    do { double a_ = (double)(a), b_ = (double)(b); \
         if (!(fabs(a_ - b_) <= (tol) * (fabs(b_) > 1 ? fabs(b_) : 1))) \
             test_fail(__FILE__, __LINE__, "%s == %.9g, expected %.9g", #a, a_, b_); } while (0)
#define CHECK_STR(a, b) \
    do { const char *a_ = (a), *b_ = (b); \
         if (strcmp(a_, b_)) test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a, a_, b_); } while (0)
#define CHECK_CONTAINS(hay, needle) \
    do { const char *h_ = (hay), *n_ = (needle); \
         if (!strstr(h_, n_)) test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"", h_, n_); } while (0)

#define TEST_MAIN(cases) \
    int main(void) { return run_tests(cases, (int)(sizeof cases / sizeof cases[0])); }

#endif
