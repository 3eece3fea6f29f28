#include "test/test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dmdr_config.h"
#include "kernels/threads.h"
#include "tensor/tensor.h"
#ifdef DMDR_HAVE_CUDA
#include "kernels/cuda/cuda_kernels.h"
#endif

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t test_seed(void) {
    static uint64_t seed;
    static bool ready;
    if (!ready) {
        const char *env = getenv("DMDR_TEST_SEED");
        if (env && strcmp(env, "random") == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = (uint64_t)ts.tv_sec * 1000003ull ^ (uint64_t)ts.tv_nsec;
        } else if (env && *env) {
            char *end;
            errno = 0;
            seed = strtoull(env, &end, 0);
            if (*end || errno) {
                fprintf(stderr, "DMDR_TEST_SEED=%s: expected a number or \"random\"\n", env);
                exit(2);
            }
        } else {
            seed = TEST_DEFAULT_SEED;
        }
        ready = true;
        fprintf(stderr, "test seed: DMDR_TEST_SEED=%llu\n", (unsigned long long)seed);
    }
    return seed;
}

uint64_t test_seed_for(const char *label) {
    uint64_t h = test_seed() ^ 0xcbf29ce484222325ull;
    for (const char *p = label; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return h;
}

void test_fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi) {
    uint64_t state = seed;
    for (int64_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(&state) >> 11) * (1.0 / 9007199254740992.0);
        x[i] = (float)(lo + (hi - lo) * u);
    }
}

void test_fill_away_from(float *x, int64_t n, uint64_t seed, float lo, float hi,
                         const float *kinks, int kink_count, float gap) {
    uint64_t state = seed;
    for (int64_t i = 0; i < n; i++) {
        for (;;) {
            double u = (double)(splitmix64(&state) >> 11) * (1.0 / 9007199254740992.0);
            float v = (float)(lo + (hi - lo) * u);
            bool ok = true;
            for (int j = 0; j < kink_count; j++)
                if (fabsf(v - kinks[j]) < gap) ok = false;
            if (ok) {
                x[i] = v;
                break;
            }
        }
    }
}

void test_fill_ints(int32_t *x, int64_t n, uint64_t seed, int32_t below) {
    uint64_t state = seed;
    for (int64_t i = 0; i < n; i++) x[i] = (int32_t)(splitmix64(&state) % (uint64_t)below);
}

double test_close_ratio(const float *got, const float *want, int64_t n, double atol, double rtol,
                        int64_t *worst_index) {
    double worst = 0.0;
    *worst_index = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        double r;
        if (isnan(g) || isnan(w)) r = (isnan(g) && isnan(w)) ? 0.0 : INFINITY;
        else r = fabs(g - w) / (atol + rtol * fabs(w));
        if (r > worst || (isinf(r) && !isinf(worst))) {
            worst = r;
            *worst_index = i;
        }
    }
    return worst;
}

int test_backends(const Backend **out, int max) {
    int count = 0;
    for (int d = 0; d < DEVICE_COUNT && count < max; d++) {
        const Backend *be = backend_get((Device)d);
        if (be) out[count++] = be;
    }
    return count;
}

// One line when device d has no usable backend, saying why. Asked in a child process: a
// CUDA context does not survive fork(), so this process, which forks every test, must not
// create one.
static void say_if_skipped(Device d) {
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "backend %s: cannot probe (fork: %s)\n", device_name(d), strerror(errno));
        return;
    }
    if (pid == 0) {
        if (!backend_get(d)) {
#ifdef DMDR_HAVE_CUDA
            if (d == DEVICE_CUDA)
                fprintf(stderr, "backend cuda: compiled, but no usable device (%s): GPU cases "
                        "are skipped\n", cuda_unavailable_reason());
            else
#endif
                fprintf(stderr, "backend %s: not compiled into this build: GPU cases are "
                        "skipped\n", device_name(d));
        }
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

int test_run_suite(Suite *s) {
    test_seed();
    threads_set(0);
    for (int d = 0; d < DEVICE_COUNT; d++) // said once here, not in every forked test
        if (d != DEVICE_CPU) say_if_skipped((Device)d);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

TCase *test_scoped_tcase(Suite *s, const char *name) {
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, tensor_scope_begin, tensor_scope_end);
    suite_add_tcase(s, tc);
    return tc;
}

char test_scratch_dir[512];

void test_scratch_setup(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(test_scratch_dir, sizeof test_scratch_dir, "%s/dmdr_test_XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(test_scratch_dir) != NULL, "mkdtemp: %s", strerror(errno));
}

void test_remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        remove(path);
        return;
    }
    struct dirent *entry;
    char child[2048];
    while ((entry = readdir(d)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        test_remove_tree(child);
    }
    closedir(d);
    rmdir(path);
}

void test_scratch_teardown(void) { test_remove_tree(test_scratch_dir); }

char *test_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char text[8 << 20]; // a report.html with its embedded grids is a few hundred KB
    size_t n = fread(text, 1, sizeof text - 1, f);
    ck_assert_msg(n < sizeof text - 1, "%s is larger than %zu bytes", path, sizeof text - 1);
    text[n] = '\0';
    fclose(f);
    return text;
}
