// Helpers shared by the check suites: seeded test data, closeness assertions, backends.
//
// Seeds: a run uses TEST_DEFAULT_SEED, so the suites are deterministic and CI cannot fail by
// chance; DMDR_TEST_SEED=<n> picks another base seed and DMDR_TEST_SEED=random draws one from
// the clock. The base seed is printed, so any failure replays exactly. test/seed_sweep.sh runs
// a suite over many seeds: the way to check that a bound holds beyond the default seed.
#pragma once

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"

#define TEST_DEFAULT_SEED 1

// The base seed of this run (printed once).
uint64_t test_seed(void);
// A per-test stream derived from the base seed and a label.
uint64_t test_seed_for(const char *label);

// Host-side test data from splitmix64, independent of the library's own RNG.
void test_fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi);
// values in [lo, hi] but at least `gap` away from each of the points in `kinks` (for ops with
// kinks such as relu, abs, max, where finite differences would straddle the kink).
void test_fill_away_from(float *x, int64_t n, uint64_t seed, float lo, float hi,
                         const float *kinks, int kink_count, float gap);
void test_fill_ints(int32_t *x, int64_t n, uint64_t seed, int32_t below);

// Max over i of |got - want| / (atol + rtol * |want|); <= 1 means close. NaN anywhere -> +inf.
double test_close_ratio(const float *got, const float *want, int64_t n, double atol, double rtol,
                        int64_t *worst_index);
// ck_assert that got and want are close, naming `what`, the worst index and both values.
#define ASSERT_CLOSE(what, got, want, n, atol, rtol)                                        \
    do {                                                                                    \
        int64_t worst_;                                                                     \
        double r_ = test_close_ratio((got), (want), (n), (atol), (rtol), &worst_);          \
        ck_assert_msg(r_ <= 1.0, "%s: element %lld: got %.9g, want %.9g (atol %g, rtol %g)", \
                      (what), (long long)worst_, (double)(got)[worst_],                     \
                      (double)(want)[worst_], (double)(atol), (double)(rtol));              \
    } while (0)

// Compiled backends with a usable device (always the CPU first). Returns the count.
int test_backends(const Backend **out, int max);
// A fresh empty directory (under $TMPDIR, else /tmp) for a test case's files, named by
// test_scratch_dir. Register as an unchecked fixture: it then runs in the parent process and
// outlives every forked test. Teardown removes the directory and everything below it.
extern char test_scratch_dir[512];
void test_scratch_setup(void);
void test_scratch_teardown(void);
void test_remove_tree(const char *path); // a file, or a directory with its contents
// The text of a file (at most 8 MiB; a static buffer, overwritten by the next call).
char *test_read_text(const char *path);
// A TCase added to s whose every test runs inside its own tensor scope.
TCase *test_scoped_tcase(Suite *s, const char *name);
// Runs the suite with CK_NORMAL output and returns the process exit code.
int test_run_suite(Suite *s);
