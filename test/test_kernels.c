// The check suite of the kernel layer: every entry of the Backend table, on every compiled
// backend, against a plain reference loop (the ggml / llm.c way).
//
// The cases, their references and tolerances are the registry of kernels/cases/ (cases.h),
// which `dmdr bench` times too: this file runs each case on each backend and compares, then
// adds the checks that are no single call against a reference (the random generators'
// contract, the conv adjoint identity, the shared index arithmetic). Random inputs are seeded
// by test_seed_for of each operand's label, replayable with DMDR_TEST_SEED. Outputs start as
// NaN, so a kernel that skips an element or accumulates into its output fails. Buffers move
// only through be->alloc / copy_from_host / copy_to_host, so the same checks hold a device
// backend.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/cases/cases.h"
#include "kernels/layout.h"
#include "kernels/philox.h"
#include "kernels/threads.h"
#include "test/test_util.h"

#define COUNTOF(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))
#define LARGE CASE_LARGE

typedef CaseTol Tol;
static const Tol EXACT = {0, 0}; // bit for bit

// ---- scratch memory: every buffer a check allocates, freed after each backend's run ----------

typedef struct {
    const Backend *be; // NULL for a host block
    void *ptr;
} ScratchBlock;
static ScratchBlock *scratch;
static int64_t scratch_count, scratch_capacity;

static void *remember(const Backend *be, void *ptr) {
    if (!ptr) ck_abort_msg("out of memory");
    if (scratch_count == scratch_capacity) {
        scratch_capacity = scratch_capacity ? 2 * scratch_capacity : 256;
        scratch = realloc(scratch, (size_t)scratch_capacity * sizeof *scratch);
        if (!scratch) ck_abort_msg("out of memory");
    }
    scratch[scratch_count++] = (ScratchBlock){be, ptr};
    return ptr;
}

static void scratch_release(void) {
    while (scratch_count > 0) {
        scratch_count--;
        const Backend *be = scratch[scratch_count].be;
        if (be) be->free(be, scratch[scratch_count].ptr);
        else free(scratch[scratch_count].ptr);
    }
    free(scratch);
    scratch = NULL;
    scratch_capacity = 0;
}

// host (bytes), zeroed
static void *host_alloc(size_t bytes) { return remember(NULL, calloc(bytes ? bytes : 1, 1)); }
// host (n) floats, zeroed
static float *host_floats(int64_t n) { return host_alloc((size_t)n * sizeof(float)); }

// host (n) uniform in [lo, hi]; the same label gives the same numbers (on every backend)
static float *host_random(int64_t n, const char *label, float lo, float hi) {
    float *x = host_floats(n);
    test_fill_uniform(x, n, test_seed_for(label), lo, hi);
    return x;
}

// host (words) of 4-byte words (float or int32) -> a new device buffer; NULL stays NULL
// (optional inputs such as a norm's weight)
static void *dev_upload(const Backend *be, const void *host, int64_t words) {
    if (!host) return NULL;
    void *dev = remember(be, be->alloc(be, (size_t)words * 4));
    be->copy_from_host(be, dev, host, (size_t)words * 4);
    return dev;
}

// A device (n) of NaNs: an output the kernel must overwrite completely.
static float *dev_poison(const Backend *be, int64_t n) {
    float *nans = host_floats(n);
    for (int64_t i = 0; i < n; i++) nans[i] = NAN;
    return dev_upload(be, nans, n);
}

// device (n) -> host (n)
static float *dev_download(const Backend *be, const float *dev, int64_t n) {
    float *host = host_floats(n);
    be->copy_to_host(be, host, dev, (size_t)n * sizeof(float));
    return host;
}

// Asserts that device (n) matches host `want` (n) within tol (EXACT: bit for bit); the
// message names the backend and the case.
__attribute__((format(printf, 6, 7))) static void
expect_dev(const Backend *be, const float *dev, const float *want, int64_t n, Tol tol,
           const char *fmt, ...) {
    char what[256];
    int len = snprintf(what, sizeof what, "%s: ", be->name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what + len, sizeof what - (size_t)len, fmt, ap);
    va_end(ap);
    const float *got = dev_download(be, dev, n);
    if (tol.atol == 0 && tol.rtol == 0) {
        // Find the first difference, then assert once: check records every passing assert.
        int64_t i = 0;
        while (i < n && memcmp(&got[i], &want[i], 4) == 0) i++;
        if (i < n) {
            uint32_t g, w;
            memcpy(&g, &got[i], 4);
            memcpy(&w, &want[i], 4);
            ck_abort_msg("%s: element %lld: got %.9g (0x%08x), want %.9g (0x%08x)", what,
                         (long long)i, (double)got[i], g, (double)want[i], w);
        }
        return;
    }
    ASSERT_CLOSE(what, got, want, n, tol.atol, tol.rtol);
}

// ---- running on every backend ---------------------------------------------------------------

// Runs `check` on every compiled backend. The backends are looked up here, inside the forked
// test, because a CUDA context does not survive fork().
static void on_every_backend(void (*check)(const Backend *be)) {
    const Backend *backends[DEVICE_COUNT];
    int count = test_backends(backends, DEVICE_COUNT);
    ck_assert_int_ge(count, 1);
    for (int i = 0; i < count; i++) {
        check(backends[i]);
        scratch_release();
    }
}

// KERNEL_TEST(fill) { ... } defines check_fill(be), the checks of one kernel on one backend,
// and the test case test_fill that runs them on every backend.
#define KERNEL_TEST(name)                                         \
    static void check_##name(const Backend *be);                  \
    START_TEST(test_##name) { on_every_backend(check_##name); }   \
    END_TEST                                                      \
    static void check_##name(const Backend *be)

// ---- the registry's cases ---------------------------------------------------------------------

static CaseList cases; // every test case, built before the suite forks

// The host copy of operand b, filled as the registry says: inputs from its label's stream,
// outputs NaN (an element the kernel skips, or reads before writing, shows), NULL where the
// operand is left out.
static void *case_host(const CaseBuffer *b) {
    if (b->role == CASE_NULL) return NULL;
    float *x = host_floats(b->words);
    if (b->role == CASE_OUT || b->role == CASE_SCRATCH) {
        for (int64_t i = 0; i < b->words; i++) x[i] = NAN;
        return x;
    }
    static const float zero = 0.0f;
    uint64_t seed = test_seed_for(b->label);
    switch (b->fill) {
    case FILL_UNIFORM: test_fill_uniform(x, b->words, seed, b->lo, b->hi); break;
    case FILL_NONZERO:
        test_fill_away_from(x, b->words, seed, b->lo, b->hi, &zero, 1, b->gap);
        break;
    case FILL_INTS: test_fill_ints((int32_t *)x, b->words, seed, b->below); break;
    case FILL_LEVELS: {
        int32_t *levels = host_alloc((size_t)b->words * sizeof(int32_t));
        test_fill_ints(levels, b->words, seed, b->below);
        for (int64_t i = 0; i < b->words; i++) x[i] = (float)levels[i];
        break;
    }
    case FILL_ZERO: break;
    case FILL_CONST:
        for (int64_t i = 0; i < b->words; i++) x[i] = b->lo;
        break;
    }
    return x;
}

// Asserts that the doubles of device buffer dev (words / 2 of them) match host want.
static void expect_dev_f64(const Backend *be, const void *dev, const double *want, int64_t words,
                           Tol tol, const char *what) {
    int64_t n = words / 2;
    double *got = host_alloc((size_t)n * sizeof(double));
    be->copy_to_host(be, got, dev, (size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol.atol + tol.rtol * fabs(want[i]),
                      "%s: %s: element %lld: got %.12g, want %.12g (atol %g, rtol %g)", be->name,
                      what, (long long)i, got[i], want[i], tol.atol, tol.rtol);
}

// Runs case c on backend be and compares every output with the reference's.
static void run_case(const Backend *be, const KernelCase *c) {
    void *host[CASE_MAX_BUFFERS] = {0}, *dev[CASE_MAX_BUFFERS] = {0};
    for (int i = 0; i < c->nbuffers; i++) host[i] = case_host(&c->buf[i]);
    if (c->op->inputs) c->op->inputs(host, c);
    for (int i = 0; i < c->nbuffers; i++)
        if (c->buf[i].role != CASE_HOST) dev[i] = dev_upload(be, host[i], c->buf[i].words);
    c->op->call(be, dev, c);
    c->op->reference(host, c);
    for (int i = 0; i < c->nbuffers; i++) {
        const CaseBuffer *b = &c->buf[i];
        if (b->role != CASE_OUT && b->role != CASE_INOUT) continue;
        char what[256];
        if (strcmp(c->name, c->op->name) == 0)
            snprintf(what, sizeof what, "%s, %s: %s", c->name, c->shape, b->label);
        else
            snprintf(what, sizeof what, "%s %s, %s: %s", c->op->name, c->name, c->shape, b->label);
        if (b->f64) expect_dev_f64(be, dev[i], host[i], b->words, b->tol, what);
        else expect_dev(be, dev[i], host[i], b->words, b->tol, "%s", what);
    }
}

// One test per op (its index in kernel_ops): every case of the op on every backend.
START_TEST(test_op) {
    const KernelOp *op = kernel_ops[_i];
    const Backend *backends[DEVICE_COUNT];
    int count = test_backends(backends, DEVICE_COUNT), ran = 0;
    ck_assert_int_ge(count, 1);
    for (int k = 0; k < count; k++) {
        for (int ci = 0; ci < cases.count; ci++) {
            if (cases.items[ci].op != op) continue;
            run_case(backends[k], &cases.items[ci]);
            scratch_release();
            ran++;
        }
    }
    ck_assert_msg(ran > 0, "%s has no test case", op->name);
}
END_TEST

// The inputs the bench makes on the device (an op's prepare step: the backend's own forward)
// agree with the test's (its inputs step: the reference forward) to 1e-4, so the bench times
// each call on the inputs the test checks it on. The device starts from the random fill, so
// a prepare step that leaves an input out fails.
START_TEST(test_prepare) {
    const Backend *backends[DEVICE_COUNT];
    int count = test_backends(backends, DEVICE_COUNT);
    for (int k = 0; k < count; k++) {
        const Backend *be = backends[k];
        for (int ci = 0; ci < cases.count; ci++) {
            const KernelCase *c = &cases.items[ci];
            if (!c->op->prepare) continue;
            void *host[CASE_MAX_BUFFERS] = {0}, *dev[CASE_MAX_BUFFERS] = {0};
            for (int i = 0; i < c->nbuffers; i++) {
                host[i] = case_host(&c->buf[i]);
                if (c->buf[i].role != CASE_HOST) dev[i] = dev_upload(be, host[i], c->buf[i].words);
            }
            c->op->inputs(host, c);
            c->op->prepare(be, dev, c);
            for (int i = 0; i < c->nbuffers; i++)
                if (c->buf[i].role == CASE_IN)
                    expect_dev(be, dev[i], host[i], c->buf[i].words, (Tol){1e-4, 1e-4},
                               "%s %s, %s: %s as prepared", c->op->name, c->name, c->shape,
                               c->buf[i].label);
            scratch_release();
        }
    }
}
END_TEST

// ---- checks beyond one call -------------------------------------------------------------------

START_TEST(test_scalar_ops_covered) {
    // The scalar cases cover every ScalarOp.
    unsigned covered = 0;
    for (int ci = 0; ci < cases.count; ci++) {
        const KernelCase *c = &cases.items[ci];
        if (strcmp(c->op->name, "scalar") == 0) covered |= 1u << c->p.elementwise.op;
    }
    ck_assert_msg(covered == (1u << SCALAR_OP_COUNT) - 1, "scalar ops without a case: 0x%x",
                  ~covered & ((1u << SCALAR_OP_COUNT) - 1));
}
END_TEST

KERNEL_TEST(col2im_adjoint) {
    // <im2col(x), c> = <x, col2im(c)> on the kernels' own outputs, to 1e-5 of the sum of
    // |terms|, at the geometry of every col2im case.
    for (int ci = 0; ci < cases.count; ci++) {
        const KernelCase *k = &cases.items[ci];
        if (strcmp(k->op->name, "col2im") != 0) continue;
        const ConvParams *p = &k->p.conv;
        int64_t nx = p->images * p->g.c * p->g.h * p->g.w;
        int64_t ncol = p->g.c * p->g.kh * p->g.kw * p->images * p->g.oh * p->g.ow;
        const float *x = host_random(nx, "conv x", -1, 1);
        const float *c = host_random(ncol, "conv col", -1, 1);
        float *col_dev = dev_poison(be, ncol), *dx_dev = dev_poison(be, nx);
        be->im2col(be, col_dev, dev_upload(be, x, nx), p->images, &p->g);
        be->col2im(be, dx_dev, dev_upload(be, c, ncol), p->images, &p->g);
        const float *col_of_x = dev_download(be, col_dev, ncol);
        const float *dx_of_c = dev_download(be, dx_dev, nx);
        double lhs = 0, rhs = 0, scale = 0;
        for (int64_t i = 0; i < ncol; i++) {
            lhs += (double)col_of_x[i] * c[i];
            scale += fabs((double)col_of_x[i] * c[i]);
        }
        for (int64_t i = 0; i < nx; i++) rhs += (double)x[i] * dx_of_c[i];
        ck_assert_msg(fabs(lhs - rhs) <= 1e-5 * scale, "%s: <im2col(x), c> = %.9g but "
                      "<x, col2im(c)> = %.9g (%s)", be->name, lhs, rhs, k->shape);
    }
}

// ---- the index arithmetic every backend shares (kernels/layout.h) -------------------------------

START_TEST(test_merged_offsets) {
    // The merged walk of a copy's two stride sets reaches, at every index, the offsets the
    // unmerged 4-d strides give, in 64-bit and in 32-bit arithmetic (the latter only the CUDA
    // kernels run).
    static const struct {
        int64_t shape[KERNEL_MAX_DIMS], s0[KERNEL_MAX_DIMS], s1[KERNEL_MAX_DIMS];
        int ndim; // after merging
    } walks[] = {
        {{2, 3, 5, 7}, {105, 35, 7, 1}, {105, 1, 21, 3}, 3},  // a permute: (3) and (5, 7) stay
        {{1, 1, 257, 419}, {0, 0, 419, 1}, {0, 0, 1, 257}, 2}, // a transpose
        {{3, 5, 4, 7}, {0, 7, 0, 1}, {140, 28, 7, 1}, 4},      // an expand
        {{2, 3, 5, 7}, {105, 35, 7, 1}, {105, 35, 7, 1}, 1},   // contiguous: one dim
        {{1, 4, 1, 6}, {0, 6, 0, 1}, {0, 12, 0, 1}, 2},        // half of a concat
        {{1, 1, 1, 1}, {0, 0, 0, 0}, {5, 5, 5, 5}, 1},         // one element
    };
    for (int64_t w = 0; w < COUNTOF(walks); w++) {
        MergedDims m = merge_dims(walks[w].shape, walks[w].s0, walks[w].s1);
        int64_t n = shape4_numel(walks[w].shape);
        ck_assert_int_eq(m.ndim, walks[w].ndim);
        ck_assert_int_eq(merged_numel(&m), n);
        ck_assert(merged_fits_32(&m, n));
        for (int64_t i = 0; i < n; i++) {
            int64_t o0, o1;
            uint32_t p0, p1;
            merged_offsets(&m, i, &o0, &o1);
            merged_offsets32(&m, (uint32_t)i, &p0, &p1);
            int64_t want0 = strided_offset(walks[w].shape, walks[w].s0, i);
            int64_t want1 = strided_offset(walks[w].shape, walks[w].s1, i);
            ck_assert_msg(o0 == want0 && o1 == want1 && p0 == want0 && p1 == want1,
                          "walk %lld, index %lld: offsets (%lld, %lld), 32-bit (%u, %u), want "
                          "(%lld, %lld)", (long long)w, (long long)i, (long long)o0,
                          (long long)o1, p0, p1, (long long)want0, (long long)want1);
        }
    }
    // and the rows of each walk start where its row-major index says
    for (int64_t w = 0; w < COUNTOF(walks); w++) {
        MergedDims m = merge_dims(walks[w].shape, walks[w].s0, walks[w].s1);
        MergedDims rows = merged_rows(&m);
        int64_t row_len = m.shape[m.ndim - 1];
        for (int64_t r = 0; r < merged_numel(&m) / row_len; r++) {
            int64_t o0, o1, want0, want1;
            merged_offsets(&rows, r, &o0, &o1);
            merged_offsets(&m, r * row_len, &want0, &want1);
            ck_assert_msg(o0 == want0 && o1 == want1, "walk %lld, row %lld", (long long)w,
                          (long long)r);
        }
    }
    const int64_t empty[KERNEL_MAX_DIMS] = {3, 0, 5, 7}, strides[KERNEL_MAX_DIMS] = {0, 0, 0, 1};
    MergedDims m = merge_dims(empty, strides, strides);
    ck_assert_int_eq(merged_numel(&m), 0);
}
END_TEST

START_TEST(test_reduce_shape) {
    // For every reduction of a 4-d shape: each x element's output (reduce_output_of, which only
    // the CUDA kernels run), and the walk of an output's reduced rows (reduce_item_offset,
    // reduce_row_offset) visiting exactly the elements that reduce into it.
    static const int64_t shape[KERNEL_MAX_DIMS] = {3, 1, 5, 4};
    int64_t n = shape4_numel(shape);
    for (unsigned mask = 0; mask < 16; mask++) {
        ReduceShape s = reduce_shape_of(shape, mask);
        int64_t ystride[KERNEL_MAX_DIMS], ny = strides_without(shape, mask, ystride);
        int64_t reduced = s.r1 * s.r2;
        ck_assert_int_eq(s.outer * s.k1 * s.k2, ny);
        ck_assert_int_eq(ny * reduced, n);
        for (int64_t i = 0; i < n; i++)
            ck_assert_int_eq(reduce_output_of(&s, i), strided_offset(shape, ystride, i));
        for (int64_t item = 0; item < s.outer * s.k1; item++)
            for (int64_t q = 0; q < reduced; q++)
                for (int64_t j = 0; j < s.k2; j++)
                    ck_assert_int_eq(reduce_output_of(&s, reduce_item_offset(&s, item) +
                                                              reduce_row_offset(&s, q) + j),
                                     item * s.k2 + j);
    }
}
END_TEST

// ---- random numbers ---------------------------------------------------------------------------

enum { RNG_SAMPLE = 1000000 }; // draws for the moment checks

typedef void (*RngKernel)(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                          float p0, float p1);

// What the shared RNG checks need to know about one of the two generators.
typedef struct {
    const char *name;
    bool normal;           // rng_normal (p0 mean, p1 std) or rng_uniform (p0 lo, p1 hi)
    float p0, p1;
    double mean, var, mu4; // the distribution's mean, variance and 4th central moment
    Tol cross_device;      // agreement with the CPU backend (device libm may differ)
} RngSpec;

static RngKernel rng_kernel(const Backend *be, const RngSpec *rs) {
    return rs->normal ? be->rng_normal : be->rng_uniform;
}

// device (n) from one call of the generator
static float *rng_run(const Backend *be, const RngSpec *rs, int64_t n, uint64_t seed,
                      uint64_t offset) {
    float *y = dev_poison(be, n);
    rng_kernel(be, rs)(be, y, n, seed, offset, rs->p0, rs->p1);
    return y;
}

// The contract both generators share: element i depends only on (seed, offset + i / 4, i % 4),
// never on n, thread count or device; and 10^6 draws have the distribution's mean and
// variance. Returns that large sample (host) for the caller's own checks.
static const float *check_rng_contract(const Backend *be, const RngSpec *rs) {
    uint64_t seed = test_seed_for(rs->name);
    const uint64_t offset = 1000;

    // Counter arithmetic: one block later is four elements later.
    float *at = rng_run(be, rs, 129, seed, offset);
    const float *before = dev_download(be, rng_run(be, rs, 133, seed, offset - 1), 133);
    expect_dev(be, at, before + 4, 129, EXACT, "%s at offset %llu vs offset - 1 shifted by 4",
               rs->name, (unsigned long long)offset);

    // A shorter call is a prefix of a longer one (the ragged last block included).
    float *prefix = rng_run(be, rs, 7, seed, offset);
    expect_dev(be, prefix, dev_download(be, at, 7), 7, EXACT, "%s n=7 vs n=129 prefix",
               rs->name);

    // Bit-identical with 1 and 2 threads.
    threads_set(1);
    const float *one_thread = dev_download(be, rng_run(be, rs, LARGE, seed, offset), LARGE);
    threads_set(2);
    float *two_threads = rng_run(be, rs, LARGE, seed, offset);
    threads_set(0);
    expect_dev(be, two_threads, one_thread, LARGE, EXACT, "%s 2 threads vs 1 thread", rs->name);

    // The same numbers on every device.
    if (be != &cpu_backend) {
        float *cpu = host_floats(LARGE);
        rng_kernel(&cpu_backend, rs)(&cpu_backend, cpu, LARGE, seed, offset, rs->p0, rs->p1);
        expect_dev(be, two_threads, cpu, LARGE, rs->cross_device, "%s vs the cpu backend",
                   rs->name);
    }

    // Sample mean and variance within 6 standard errors (a false alarm once in ~10^9 runs).
    const int64_t n = RNG_SAMPLE;
    const float *sample = dev_download(be, rng_run(be, rs, n, seed + 1, 0), n);
    double sum = 0, sum_sq = 0;
    for (int64_t i = 0; i < n; i++) sum += sample[i];
    double mean = sum / (double)n;
    for (int64_t i = 0; i < n; i++) sum_sq += (sample[i] - mean) * (sample[i] - mean);
    double var = sum_sq / (double)(n - 1);
    double se_mean = sqrt(rs->var / (double)n);
    double se_var = sqrt((rs->mu4 - rs->var * rs->var) / (double)n);
    ck_assert_msg(fabs(mean - rs->mean) <= 6 * se_mean, "%s: %s: mean %.6g, want %.6g +- %.2g",
                  be->name, rs->name, mean, rs->mean, 6 * se_mean);
    ck_assert_msg(fabs(var - rs->var) <= 6 * se_var, "%s: %s: variance %.6g, want %.6g +- %.2g",
                  be->name, rs->name, var, rs->var, 6 * se_var);
    return sample;
}

// y (n) = lo + (hi - lo) u, u = philox_to_unit(word i % 4 of block offset + i / 4)
static void ref_rng_uniform(float *y, int64_t n, uint64_t seed, uint64_t offset, float lo,
                            float hi) {
    for (int64_t i = 0; i < n; i++) {
        PhiloxBlock block = philox4x32_10(seed, offset + (uint64_t)i / 4);
        y[i] = (float)(lo + ((double)hi - lo) * philox_to_unit(block.v[i % 4]));
    }
}

KERNEL_TEST(rng_uniform) {
    // Philox-4x32-10 known answer (Random123's test vector: key 0, counter 0).
    static const uint32_t words[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    PhiloxBlock block = philox4x32_10(0, 0);
    float unit[4];
    for (int j = 0; j < 4; j++) {
        ck_assert_msg(block.v[j] == words[j], "philox4x32_10(0, 0) word %d: 0x%08x, want 0x%08x",
                      j, block.v[j], words[j]);
        unit[j] = philox_to_unit(words[j]);
    }
    float *y = dev_poison(be, 4);
    be->rng_uniform(be, y, 4, 0, 0, 0.0f, 1.0f);
    expect_dev(be, y, unit, 4, EXACT, "rng_uniform seed 0 offset 0 in [0, 1]");

    // Against the reference mapping on [lo, hi]: two roundings, rtol 1e-6 (atol 1e-6 where
    // lo + (hi - lo) u cancels near 0). The block counter is 64-bit: 0xfffffffe carries into
    // its high word within a call, and the last offset starts above 2^32.
    const float lo = -2.0f, hi = 3.0f;
    static const int64_t sizes[] = {7, 13, 129, LARGE};
    static const uint64_t offsets[] = {0, 12345, 0xfffffffeull, 0x500000003ull};
    uint64_t seed = test_seed_for("rng_uniform reference");
    for (int64_t si = 0; si < COUNTOF(sizes); si++) {
        for (int64_t oi = 0; oi < COUNTOF(offsets); oi++) {
            int64_t n = sizes[si];
            float *want = host_floats(n), *got = dev_poison(be, n);
            ref_rng_uniform(want, n, seed, offsets[oi], lo, hi);
            be->rng_uniform(be, got, n, seed, offsets[oi], lo, hi);
            expect_dev(be, got, want, n, (Tol){1e-6, 1e-6}, "rng_uniform n=%lld offset %llu",
                       (long long)n, (unsigned long long)offsets[oi]);
        }
    }

    double width = (double)hi - lo;
    const RngSpec spec = {"rng_uniform", false, lo, hi, (lo + (double)hi) / 2,
                          width * width / 12, width * width * width * width / 80, {1e-6, 1e-6}};
    const float *sample = check_rng_contract(be, &spec);
    int64_t i = 0;
    while (i < RNG_SAMPLE && sample[i] >= lo && sample[i] <= hi) i++;
    ck_assert_msg(i == RNG_SAMPLE, "%s: rng_uniform element %lld: %g outside [%g, %g]", be->name,
                  (long long)i, (double)sample[i < RNG_SAMPLE ? i : 0], (double)lo, (double)hi);
}

KERNEL_TEST(rng_normal) {
    const float mean = 0.5f, std = 2.0f;
    double var = (double)std * std;
    const RngSpec spec = {"rng_normal", true, mean, std, mean, var, 3 * var * var,
                          {1e-5, 1e-5}};
    const float *sample = check_rng_contract(be, &spec);
    int64_t i = 0;
    while (i < RNG_SAMPLE && isfinite(sample[i])) i++;
    ck_assert_msg(i == RNG_SAMPLE, "%s: rng_normal element %lld is %g", be->name, (long long)i,
                  (double)sample[i < RNG_SAMPLE ? i : 0]);

    // Box-Muller over the rng_uniform counter blocks: words (0, 1) and (2, 3) of a block make
    // a pair of standard normals whose squared radius is -2 log u of one of the two words.
    // Fast log and sincos: rtol 1e-4 on the radius.
    const int64_t blocks = 257;
    const uint64_t seed = test_seed_for("rng_normal box-muller"), offset = 7;
    float *z_dev = dev_poison(be, 4 * blocks);
    be->rng_normal(be, z_dev, 4 * blocks, seed, offset, 0.0f, 1.0f);
    const float *z = dev_download(be, z_dev, 4 * blocks);
    for (int64_t b = 0; b < blocks; b++) {
        PhiloxBlock block = philox4x32_10(seed, offset + (uint64_t)b);
        for (int pair = 0; pair < 2; pair++) {
            double za = z[4 * b + 2 * pair], zb = z[4 * b + 2 * pair + 1];
            double r2 = za * za + zb * zb;
            double r2_first = -2 * log(philox_to_unit(block.v[2 * pair]));
            double r2_second = -2 * log(philox_to_unit(block.v[2 * pair + 1]));
            bool matches = fabs(r2 - r2_first) <= 1e-5 + 1e-4 * r2_first ||
                           fabs(r2 - r2_second) <= 1e-5 + 1e-4 * r2_second;
            ck_assert_msg(matches, "%s: rng_normal block %lld pair %d: z^2 + z'^2 = %.7g, want "
                          "-2 log u of a word of the pair: %.7g or %.7g", be->name, (long long)b,
                          pair, r2, r2_first, r2_second);
        }
    }
}

KERNEL_TEST(rng_shared_mapping) {
    // Every backend's numbers are kernels/philox.h's mappings of the Philox words, the functions
    // the CPU backend and the CUDA kernels both call: bit for bit on the CPU, and for uniform
    // numbers everywhere; normal numbers may differ where a device's libm rounds differently.
    const uint64_t seed = test_seed_for("rng shared mapping"), offset = 0xfffffffeull;
    const int64_t n = LARGE; // ragged last block, the counter's carry, the parallel path
    for (int normal = 0; normal < 2; normal++) {
        float *want = host_floats(n), *y = dev_poison(be, n);
        for (int64_t b = 0; b < (n + 3) / 4; b++) {
            float out[4];
            PhiloxBlock block = philox4x32_10(seed, offset + (uint64_t)b);
            if (normal) philox_normal4(out, block, 0.5f, 2.0f);
            else philox_uniform4(out, block, -2.0f, 3.0f);
            for (int64_t j = 0; j < 4 && 4 * b + j < n; j++) want[4 * b + j] = out[j];
        }
        if (normal) be->rng_normal(be, y, n, seed, offset, 0.5f, 2.0f);
        else be->rng_uniform(be, y, n, seed, offset, -2.0f, 3.0f);
        Tol tol = normal && be != &cpu_backend ? (Tol){1e-5, 1e-5} : EXACT;
        expect_dev(be, y, want, n, tol, "%s against philox_%s4", normal ? "rng_normal" :
                   "rng_uniform", normal ? "normal" : "uniform");
    }
}

// ---- the suite ------------------------------------------------------------------------------

int main(void) {
    kernel_test_cases(&cases);
    // One TCase per family of ops (CK_RUN_CASE narrows a run to one), one test per op, then the
    // family's checks beyond one call.
    const struct {
        const char *family;
        const TTest *tests[4]; // NULL-terminated when shorter
    } extra[] = {
        {"memory and random numbers",
         {test_rng_uniform, test_rng_normal, test_rng_shared_mapping}},
        {"data movement", {test_merged_offsets}},
        {"elementwise", {test_scalar_ops_covered}},
        {"reductions", {test_reduce_shape}},
        {"convolution, resampling, gather", {test_col2im_adjoint}},
    };
    Suite *s = suite_create("kernels");
    for (int i = 0; i < kernel_op_count; i++) {
        const char *family = kernel_ops[i]->family;
        if (i > 0 && strcmp(family, kernel_ops[i - 1]->family) == 0) continue;
        TCase *tc = tcase_create(family);
        for (int j = i; j < kernel_op_count && strcmp(kernel_ops[j]->family, family) == 0; j++)
            tcase_add_loop_test(tc, test_op, j, j + 1);
        for (int64_t e = 0; e < COUNTOF(extra); e++)
            for (int k = 0; k < 4 && extra[e].tests[k]; k++)
                if (strcmp(extra[e].family, family) == 0) tcase_add_test(tc, extra[e].tests[k]);
        suite_add_tcase(s, tc);
    }
    TCase *bench = tcase_create("the bench's inputs");
    tcase_add_test(bench, test_prepare);
    suite_add_tcase(s, bench);
    int rc = test_run_suite(s);
    case_list_free(&cases);
    return rc;
}
