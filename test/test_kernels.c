// The check suite of the kernel layer: every entry of the Backend table, on every compiled
// backend, against a plain reference loop written here (the ggml / llm.c way).
//
// The references are the most obvious loops, accumulate in double and share nothing with the
// optimised kernels. Inputs are random (seeded by test_seed_for, replayable with
// DMDR_TEST_SEED); sizes are odd so vector tails run, and elementwise and reduction kernels
// also get one case beyond 100k elements so their OpenMP paths run. Outputs start as NaN, so
// a kernel that skips an element or accumulates into its output fails. Buffers move only
// through be->alloc / copy_from_host / copy_to_host, so the same checks hold a device backend.
// Tolerances are relative (with an absolute floor where a value may be near 0) and stated at
// each test.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/philox.h"
#include "kernels/threads.h"
#include "test/test_util.h"

#define COUNTOF(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))
#define LARGE 100003 // elements: beyond the kernels' serial thresholds

typedef struct {
    double atol, rtol;
} Tol;
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
        if (scratch[scratch_count].be) scratch[scratch_count].be->free(scratch[scratch_count].ptr);
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

// host (n) in [lo, hi] at least `gap` away from 0: inputs of division and of kinked ops
static float *host_random_nonzero(int64_t n, const char *label, float lo, float hi, float gap) {
    static const float zero = 0.0f;
    float *x = host_floats(n);
    test_fill_away_from(x, n, test_seed_for(label), lo, hi, &zero, 1, gap);
    return x;
}

// host (n) indices in [0, below)
static int32_t *host_indices(int64_t n, const char *label, int32_t below) {
    int32_t *x = host_alloc((size_t)n * sizeof(int32_t));
    test_fill_ints(x, n, test_seed_for(label), below);
    return x;
}

// host (words) of 4-byte words (float or int32) -> a new device buffer; NULL stays NULL
// (optional inputs such as a norm's weight)
static void *dev_upload(const Backend *be, const void *host, int64_t words) {
    if (!host) return NULL;
    void *dev = remember(be, be->alloc((size_t)words * 4));
    be->copy_from_host(dev, host, (size_t)words * 4);
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
    be->copy_to_host(host, dev, (size_t)n * sizeof(float));
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

// ---- 4-d shapes -------------------------------------------------------------------------------

static int64_t numel(const int64_t shape[KERNEL_MAX_DIMS]) {
    int64_t n = 1;
    for (int d = 0; d < KERNEL_MAX_DIMS; d++) n *= shape[d];
    return n;
}

// The offset, under `stride`, of the element with row-major index `flat` in `shape`.
static int64_t strided_offset(const int64_t shape[KERNEL_MAX_DIMS],
                              const int64_t stride[KERNEL_MAX_DIMS], int64_t flat) {
    int64_t offset = 0;
    for (int d = KERNEL_MAX_DIMS - 1; d >= 0; d--) {
        offset += flat % shape[d] * stride[d];
        flat /= shape[d];
    }
    return offset;
}

// Row-major strides of `shape` in which the dims in zero_mask (bit d) count as size 1 and get
// stride 0: the strides of a reduced output, or of a broadcast input. Returns the element
// count of that reduced shape.
static int64_t strides_without(const int64_t shape[KERNEL_MAX_DIMS], unsigned zero_mask,
                               int64_t stride[KERNEL_MAX_DIMS]) {
    int64_t size = 1;
    for (int d = KERNEL_MAX_DIMS - 1; d >= 0; d--) {
        if (zero_mask >> d & 1u) {
            stride[d] = 0;
        } else {
            stride[d] = size;
            size *= shape[d];
        }
    }
    return size;
}

// the dims of size 1 of shape, as a mask (bit d)
static unsigned unit_dims(const int64_t shape[KERNEL_MAX_DIMS]) {
    unsigned mask = 0;
    for (int d = 0; d < KERNEL_MAX_DIMS; d++)
        if (shape[d] == 1) mask |= 1u << d;
    return mask;
}

// ---- memory and fill ------------------------------------------------------------------------

KERNEL_TEST(memory) {
    // alloc, copy_from_host, copy (whole and at an offset), synchronize, copy_to_host and free
    // (in scratch_release) move bytes unchanged: bit for bit.
    const float *x = host_random(LARGE, "memory x", -1, 1);
    float *a = dev_upload(be, x, LARGE), *b = dev_poison(be, LARGE);
    be->copy(b, a, LARGE * sizeof(float));
    be->synchronize();
    expect_dev(be, b, x, LARGE, EXACT, "copy of %d floats", LARGE);

    const float *y = host_random(LARGE, "memory y", -1, 1);
    float *want = host_floats(LARGE);
    memcpy(want, y, LARGE * sizeof(float));
    memcpy(want + 100, x + 5, 37 * sizeof(float));
    float *c = dev_upload(be, y, LARGE);
    be->copy(c + 100, a + 5, 37 * sizeof(float));
    be->synchronize();
    expect_dev(be, c, want, LARGE, EXACT, "copy of 37 floats at an offset");
}

KERNEL_TEST(fill) {
    // Stores a constant: bit for bit.
    static const int64_t sizes[] = {1, 7, 129, LARGE};
    static const float values[] = {-3.25f, 0.0f};
    for (int64_t si = 0; si < COUNTOF(sizes); si++) {
        for (int64_t vi = 0; vi < COUNTOF(values); vi++) {
            int64_t n = sizes[si];
            float *want = host_floats(n), *y = dev_poison(be, n);
            for (int64_t i = 0; i < n; i++) want[i] = values[vi];
            be->fill(y, values[vi], n);
            expect_dev(be, y, want, n, EXACT, "fill n=%lld value %g", (long long)n,
                       (double)values[vi]);
        }
    }
}

// ---- random numbers ---------------------------------------------------------------------------

enum { RNG_SAMPLE = 1000000 }; // draws for the moment checks

typedef void (*RngKernel)(float *y, int64_t n, uint64_t seed, uint64_t offset, float p0,
                          float p1);

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
    rng_kernel(be, rs)(y, n, seed, offset, rs->p0, rs->p1);
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
        rng_kernel(&cpu_backend, rs)(cpu, LARGE, seed, offset, rs->p0, rs->p1);
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
    be->rng_uniform(y, 4, 0, 0, 0.0f, 1.0f);
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
            be->rng_uniform(got, n, seed, offsets[oi], lo, hi);
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
    be->rng_normal(z_dev, 4 * blocks, seed, offset, 0.0f, 1.0f);
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

// ---- data movement --------------------------------------------------------------------------

typedef struct {
    const char *name;
    int64_t shape[KERNEL_MAX_DIMS];
    int64_t src_size, src_offset, src_stride[KERNEL_MAX_DIMS];
    int64_t dst_size, dst_offset, dst_stride[KERNEL_MAX_DIMS];
} CopyCase;

static const CopyCase copy_cases[] = {
    // (2, 3, 5, 7) permuted (0, 2, 3, 1) into a contiguous (2, 5, 7, 3)
    {"permute", {2, 3, 5, 7}, 210, 0, {105, 35, 7, 1}, 210, 0, {105, 1, 21, 3}},
    // (257, 419) transposed: beyond 100k elements
    {"transpose", {1, 1, 257, 419}, 107683, 0, {0, 0, 419, 1}, 107683, 0, {0, 0, 1, 257}},
    // (1, 5, 1, 7) expanded to (3, 5, 4, 7)
    {"expand", {3, 5, 4, 7}, 35, 0, {0, 7, 0, 1}, 420, 0, {140, 28, 7, 1}},
    // the (3, 5) block at (2, 4) of a (7, 13) matrix into a (9, 11) matrix at (1, 3)
    {"sub-block", {1, 1, 3, 5}, 91, 2 * 13 + 4, {0, 0, 13, 1}, 99, 1 * 11 + 3, {0, 0, 11, 1}},
    // a (4, 6) into columns 6..11 of a (4, 12): one half of a concat along the last dim
    {"concat half", {1, 1, 4, 6}, 24, 0, {0, 0, 6, 1}, 48, 6, {0, 0, 12, 1}},
};

// dst[i . dst_stride] = src[i . src_stride] for every index i < shape
static void ref_copy_strided(float *dst, const int64_t dst_stride[KERNEL_MAX_DIMS],
                             const float *src, const int64_t src_stride[KERNEL_MAX_DIMS],
                             const int64_t shape[KERNEL_MAX_DIMS]) {
    for (int64_t i = 0; i < numel(shape); i++)
        dst[strided_offset(shape, dst_stride, i)] = src[strided_offset(shape, src_stride, i)];
}

KERNEL_TEST(copy_strided) {
    // Moves 32-bit words: bit for bit, and nothing outside the destination view changes.
    for (int64_t ci = 0; ci < COUNTOF(copy_cases); ci++) {
        const CopyCase *cc = &copy_cases[ci];
        const float *src = host_random(cc->src_size, "copy src", -1, 1);
        float *want = host_random(cc->dst_size, "copy dst", -1, 1);
        float *dst = dev_upload(be, want, cc->dst_size);
        const float *src_dev = dev_upload(be, src, cc->src_size);
        be->copy_strided(dst + cc->dst_offset, cc->dst_stride, src_dev + cc->src_offset,
                         cc->src_stride, cc->shape);
        ref_copy_strided(want + cc->dst_offset, cc->dst_stride, src + cc->src_offset,
                         cc->src_stride, cc->shape);
        expect_dev(be, dst, want, cc->dst_size, EXACT, "copy_strided %s", cc->name);
    }
}

// ---- elementwise ------------------------------------------------------------------------------

static const char *const binary_names[BINARY_OP_COUNT] = {"add", "sub", "mul", "div", "max",
                                                          "min"};

typedef struct {
    const char *name;
    int64_t out[KERNEL_MAX_DIMS], a[KERNEL_MAX_DIMS], b[KERNEL_MAX_DIMS];
} BroadcastCase;

static const BroadcastCase broadcast_cases[] = {
    {"same shape", {1, 1, 37, 129}, {1, 1, 37, 129}, {1, 1, 37, 129}},
    {"scalar b", {1, 1, 7, 13}, {1, 1, 7, 13}, {1, 1, 1, 1}},
    {"row bias (n,c)+(c)", {1, 1, 13, 37}, {1, 1, 13, 37}, {1, 1, 1, 37}},
    {"column (n,c)+(n,1)", {1, 1, 13, 37}, {1, 1, 13, 37}, {1, 1, 13, 1}},
    {"middle dim (a,1,c)+(a,b,c)", {1, 5, 9, 7}, {1, 5, 1, 7}, {1, 5, 9, 7}},
    {"both sides (a,1)+(1,b)", {1, 1, 13, 7}, {1, 1, 13, 1}, {1, 1, 1, 7}},
    {"channel bias (n,c,h,w)+(c,1,1)", {2, 3, 5, 7}, {2, 3, 5, 7}, {1, 3, 1, 1}},
    {"large row bias", {1, 1, 129, 1031}, {1, 1, 129, 1031}, {1, 1, 1, 1031}},
};

// The inputs of one broadcast case: a (bcase a), b (bcase b) kept away from 0 (division),
// with exact ties a == b at some outputs (max, min); on the host and uploaded.
typedef struct {
    const char *name;  // the case's
    Broadcast bc;
    int64_t n, na, nb; // elements of the output, of a and of b
    float *a, *b;      // host
    float *a_dev, *b_dev;
} BinaryInputs;

static BinaryInputs binary_inputs(const Backend *be, const BroadcastCase *bcase) {
    BinaryInputs in;
    in.name = bcase->name;
    memcpy(in.bc.shape, bcase->out, sizeof in.bc.shape);
    in.n = numel(bcase->out);
    in.na = strides_without(bcase->a, unit_dims(bcase->a), in.bc.a_stride);
    in.nb = strides_without(bcase->b, unit_dims(bcase->b), in.bc.b_stride);
    in.a = host_random_nonzero(in.na, "binary a", -2, 2, 0.1f);
    in.b = host_random_nonzero(in.nb, "binary b", -2, 2, 0.1f);
    for (int64_t i = 0; i < in.n; i += 5)
        in.b[strided_offset(in.bc.shape, in.bc.b_stride, i)] =
            in.a[strided_offset(in.bc.shape, in.bc.a_stride, i)];
    in.a_dev = dev_upload(be, in.a, in.na);
    in.b_dev = dev_upload(be, in.b, in.nb);
    return in;
}

// Runs `check` for every BinaryOp on every broadcast case (case 0 first), fresh inputs each.
typedef void (*BinaryCheck)(const Backend *be, BinaryOp op, int64_t ci, const BinaryInputs *in);

static void on_binary_cases(const Backend *be, BinaryCheck check) {
    for (int op = 0; op < BINARY_OP_COUNT; op++) {
        for (int64_t ci = 0; ci < COUNTOF(broadcast_cases); ci++) {
            BinaryInputs in = binary_inputs(be, &broadcast_cases[ci]);
            check(be, (BinaryOp)op, ci, &in);
        }
    }
}

static double ref_binary_op(BinaryOp op, double a, double b) {
    switch (op) {
    case BINARY_ADD: return a + b;
    case BINARY_SUB: return a - b;
    case BINARY_MUL: return a * b;
    case BINARY_DIV: return a / b;
    case BINARY_MAX: return a >= b ? a : b;
    case BINARY_MIN: return a <= b ? a : b;
    case BINARY_OP_COUNT: break;
    }
    ck_abort_msg("unknown binary op %d", (int)op);
    return NAN;
}

// d(a op b)/da and d(a op b)/db; at a tie of max or min the gradient goes to a
static void ref_binary_grad(BinaryOp op, double a, double b, double *da, double *db) {
    switch (op) {
    case BINARY_ADD: *da = 1, *db = 1; return;
    case BINARY_SUB: *da = 1, *db = -1; return;
    case BINARY_MUL: *da = b, *db = a; return;
    case BINARY_DIV: *da = 1 / b, *db = -a / (b * b); return;
    case BINARY_MAX: *da = a >= b, *db = a < b; return;
    case BINARY_MIN: *da = a <= b, *db = a > b; return;
    case BINARY_OP_COUNT: break;
    }
    ck_abort_msg("unknown binary op %d", (int)op);
}

// y (bc.shape) = a op b, inputs read through bc's strides
static void ref_binary(BinaryOp op, float *y, const float *a, const float *b, const Broadcast *bc) {
    for (int64_t i = 0; i < numel(bc->shape); i++)
        y[i] = (float)ref_binary_op(op, a[strided_offset(bc->shape, bc->a_stride, i)],
                                    b[strided_offset(bc->shape, bc->b_stride, i)]);
}

// da, db (bc.shape) = dy * d(a op b)/da, dy * d(a op b)/db
static void ref_binary_backward(BinaryOp op, float *da, float *db, const float *a,
                                const float *b, const float *dy, const Broadcast *bc) {
    for (int64_t i = 0; i < numel(bc->shape); i++) {
        double ga, gb;
        ref_binary_grad(op, a[strided_offset(bc->shape, bc->a_stride, i)],
                        b[strided_offset(bc->shape, bc->b_stride, i)], &ga, &gb);
        da[i] = (float)(dy[i] * ga);
        db[i] = (float)(dy[i] * gb);
    }
}

// One rounding per element (division may be a * (1 / b): two): rtol 1e-6.
static const Tol binary_tol = {1e-7, 1e-6};

static void check_binary_case(const Backend *be, BinaryOp op, int64_t ci, const BinaryInputs *in) {
    (void)ci;
    float *y = dev_poison(be, in->n), *want = host_floats(in->n);
    ref_binary(op, want, in->a, in->b, &in->bc);
    be->binary(op, y, in->a_dev, in->b_dev, &in->bc);
    expect_dev(be, y, want, in->n, binary_tol, "binary %s, %s", binary_names[op], in->name);

    // In place: y may alias a full-shaped input.
    if (in->na == in->n) {
        be->binary(op, in->a_dev, in->a_dev, in->b_dev, &in->bc);
        expect_dev(be, in->a_dev, want, in->n, binary_tol, "binary %s, %s, y == a",
                   binary_names[op], in->name);
        be->copy_from_host(in->a_dev, in->a, (size_t)in->na * sizeof(float));
    }
    if (in->nb == in->n) {
        be->binary(op, in->b_dev, in->a_dev, in->b_dev, &in->bc);
        expect_dev(be, in->b_dev, want, in->n, binary_tol, "binary %s, %s, y == b",
                   binary_names[op], in->name);
    }
}

// At most three roundings per element (-dy a / b^2): rtol 1e-6. Both outputs on every case,
// and each alone (the other NULL) on case 0.
static void check_binary_backward_case(const Backend *be, BinaryOp op, int64_t ci,
                                       const BinaryInputs *in) {
    const float *dy = host_random(in->n, "binary dy", -1, 1);
    float *want_da = host_floats(in->n), *want_db = host_floats(in->n);
    ref_binary_backward(op, want_da, want_db, in->a, in->b, dy, &in->bc);
    const float *dy_dev = dev_upload(be, dy, in->n);
    for (int outputs = 3; outputs >= (ci == 0 ? 1 : 3); outputs--) { // bit 0: da, bit 1: db
        float *da = outputs & 1 ? dev_poison(be, in->n) : NULL;
        float *db = outputs & 2 ? dev_poison(be, in->n) : NULL;
        be->binary_backward(op, da, db, in->a_dev, in->b_dev, dy_dev, &in->bc);
        if (da)
            expect_dev(be, da, want_da, in->n, binary_tol, "binary_backward %s, %s: da%s",
                       binary_names[op], in->name, db ? "" : " (db NULL)");
        if (db)
            expect_dev(be, db, want_db, in->n, binary_tol, "binary_backward %s, %s: db%s",
                       binary_names[op], in->name, da ? "" : " (da NULL)");
    }
}

KERNEL_TEST(binary) { on_binary_cases(be, check_binary_case); }
KERNEL_TEST(binary_backward) { on_binary_cases(be, check_binary_backward_case); }

// Per-op inputs and tolerances, shared by unary and unary_backward.
typedef struct {
    const char *name;
    float lo, hi;      // inputs: the op's domain, where float results are meaningful
    bool kink_at_zero; // relu, abs: inputs kept 1e-3 away from 0
    Tol tol;           // transcendentals may be fast polynomials: rtol 1e-5, others 1e-6; the
                       // atol 1e-6 covers results that are a difference of nearly equal numbers
                       // (gelu's 1 + tanh(u) for x << 0, 1 - tanh^2 near saturation, log near 1)
} UnaryCase;

static const UnaryCase unary_cases[UNARY_OP_COUNT] = {
    [UNARY_EXP] = {"exp", -10, 10, false, {1e-12, 1e-5}},
    [UNARY_LOG] = {"log", 0.01f, 10, false, {1e-6, 1e-5}},
    [UNARY_SQRT] = {"sqrt", 0.01f, 10, false, {1e-7, 1e-6}},
    [UNARY_TANH] = {"tanh", -5, 5, false, {1e-6, 1e-5}},
    [UNARY_SIGMOID] = {"sigmoid", -10, 10, false, {1e-6, 1e-5}},
    [UNARY_RELU] = {"relu", -3, 3, true, {1e-7, 1e-6}},
    [UNARY_SILU] = {"silu", -8, 8, false, {1e-6, 1e-5}},
    [UNARY_GELU_TANH] = {"gelu_tanh", -5, 5, false, {1e-6, 1e-5}},
    [UNARY_SQUARE] = {"square", -3, 3, false, {1e-7, 1e-6}},
    [UNARY_NEG] = {"neg", -3, 3, false, {1e-7, 1e-6}},
    [UNARY_ABS] = {"abs", -3, 3, true, {1e-7, 1e-6}},
};

static const int64_t elementwise_sizes[] = {7, 13, 37, 129, LARGE};

#define GELU_C 0.7978845608028654 // sqrt(2 / pi)

static double sigmoid(double x) { return 1 / (1 + exp(-x)); }

static double ref_unary_op(UnaryOp op, double x) {
    switch (op) {
    case UNARY_EXP: return exp(x);
    case UNARY_LOG: return log(x);
    case UNARY_SQRT: return sqrt(x);
    case UNARY_TANH: return tanh(x);
    case UNARY_SIGMOID: return sigmoid(x);
    case UNARY_RELU: return x > 0 ? x : 0;
    case UNARY_SILU: return x * sigmoid(x);
    case UNARY_GELU_TANH: return 0.5 * x * (1 + tanh(GELU_C * (x + 0.044715 * x * x * x)));
    case UNARY_SQUARE: return x * x;
    case UNARY_NEG: return -x;
    case UNARY_ABS: return fabs(x);
    case UNARY_OP_COUNT: break;
    }
    ck_abort_msg("unknown unary op %d", (int)op);
    return NAN;
}

// f'(x)
static double ref_unary_grad(UnaryOp op, double x) {
    switch (op) {
    case UNARY_EXP: return exp(x);
    case UNARY_LOG: return 1 / x;
    case UNARY_SQRT: return 0.5 / sqrt(x);
    case UNARY_TANH: return 1 - tanh(x) * tanh(x);
    case UNARY_SIGMOID: return sigmoid(x) * (1 - sigmoid(x));
    case UNARY_RELU: return x > 0;
    case UNARY_SILU: return sigmoid(x) * (1 + x * (1 - sigmoid(x)));
    case UNARY_GELU_TANH: {
        double t = tanh(GELU_C * (x + 0.044715 * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
    }
    case UNARY_SQUARE: return 2 * x;
    case UNARY_NEG: return -1;
    case UNARY_ABS: return x > 0 ? 1 : -1;
    case UNARY_OP_COUNT: break;
    }
    ck_abort_msg("unknown unary op %d", (int)op);
    return NAN;
}

// host x (n) in the op's domain, and y = f(x) (n) rounded to float
static void unary_inputs(UnaryOp op, int64_t n, float **x, float **y) {
    const UnaryCase *uc = &unary_cases[op];
    ck_assert_msg(uc->name != NULL, "unary op %d has no test case", (int)op);
    *x = uc->kink_at_zero ? host_random_nonzero(n, uc->name, uc->lo, uc->hi, 1e-3f)
                          : host_random(n, uc->name, uc->lo, uc->hi);
    *y = host_floats(n);
    for (int64_t i = 0; i < n; i++) (*y)[i] = (float)ref_unary_op(op, (*x)[i]);
}

// Runs check(be, case, n) for every case index below `cases` and every elementwise size.
static void on_elementwise_cases(const Backend *be, int64_t cases,
                                 void (*check)(const Backend *, int64_t, int64_t)) {
    for (int64_t ci = 0; ci < cases; ci++)
        for (int64_t si = 0; si < COUNTOF(elementwise_sizes); si++)
            check(be, ci, elementwise_sizes[si]);
}

// Tolerances per op in unary_cases.
static void check_unary_case(const Backend *be, int64_t op, int64_t n) {
    float *x, *want;
    unary_inputs((UnaryOp)op, n, &x, &want);
    float *y = dev_poison(be, n);
    be->unary((UnaryOp)op, y, dev_upload(be, x, n), n);
    expect_dev(be, y, want, n, unary_cases[op].tol, "unary %s n=%lld", unary_cases[op].name,
               (long long)n);
}

// Tolerances per op in unary_cases; the kernel may use the float y = f(x) it is given.
static void check_unary_backward_case(const Backend *be, int64_t op, int64_t n) {
    float *x, *y;
    unary_inputs((UnaryOp)op, n, &x, &y);
    const float *dy = host_random(n, "unary dy", -1, 1);
    float *want = host_floats(n), *dx = dev_poison(be, n);
    for (int64_t i = 0; i < n; i++) want[i] = (float)(dy[i] * ref_unary_grad((UnaryOp)op, x[i]));
    be->unary_backward((UnaryOp)op, dx, dev_upload(be, x, n), dev_upload(be, y, n),
                       dev_upload(be, dy, n), n);
    expect_dev(be, dx, want, n, unary_cases[op].tol, "unary_backward %s n=%lld",
               unary_cases[op].name, (long long)n);
}

KERNEL_TEST(unary) { on_elementwise_cases(be, UNARY_OP_COUNT, check_unary_case); }
KERNEL_TEST(unary_backward) { on_elementwise_cases(be, UNARY_OP_COUNT, check_unary_backward_case); }

typedef struct {
    ScalarOp op;
    const char *name;
    float s, lo, hi; // inputs in [lo, hi]; max and min get exact ties x == s
    Tol tol;         // pow may be a fast exp(s log x): rtol 1e-5; the others round once: 1e-6
} ScalarCase;

static const ScalarCase scalar_cases[] = {
    {SCALAR_ADD, "add 0.75", 0.75f, -3, 3, {1e-7, 1e-6}},
    {SCALAR_MUL, "mul -1.25", -1.25f, -3, 3, {1e-7, 1e-6}},
    {SCALAR_POW, "pow 2.5", 2.5f, 0.05f, 4, {1e-6, 1e-5}},
    {SCALAR_POW, "pow -0.5", -0.5f, 0.05f, 4, {1e-6, 1e-5}},
    {SCALAR_POW, "pow 2, negative base", 2.0f, -3, 3, {1e-6, 1e-5}},
    {SCALAR_POW, "pow 3, negative base", 3.0f, -2, 2, {1e-6, 1e-5}},
    {SCALAR_MAX, "max 0.3", 0.3f, -1, 1, {1e-7, 1e-6}},
    {SCALAR_MIN, "min -0.2", -0.2f, -1, 1, {1e-7, 1e-6}},
};

static double ref_scalar_op(ScalarOp op, double x, double s) {
    switch (op) {
    case SCALAR_ADD: return x + s;
    case SCALAR_MUL: return x * s;
    case SCALAR_POW: return pow(x, s);
    case SCALAR_MAX: return x >= s ? x : s;
    case SCALAR_MIN: return x <= s ? x : s;
    case SCALAR_OP_COUNT: break;
    }
    ck_abort_msg("unknown scalar op %d", (int)op);
    return NAN;
}

// d(x op s)/dx; at a tie of max or min the gradient goes to x
static double ref_scalar_grad(ScalarOp op, double x, double s) {
    switch (op) {
    case SCALAR_ADD: return 1;
    case SCALAR_MUL: return s;
    case SCALAR_POW: return s * pow(x, s - 1);
    case SCALAR_MAX: return x >= s;
    case SCALAR_MIN: return x <= s;
    case SCALAR_OP_COUNT: break;
    }
    ck_abort_msg("unknown scalar op %d", (int)op);
    return NAN;
}

// host x (n) for one scalar case, every 7th exactly s
static float *scalar_inputs(const ScalarCase *sc, int64_t n) {
    float *x = host_random(n, sc->name, sc->lo, sc->hi);
    for (int64_t i = 0; i < n; i += 7) x[i] = sc->s;
    return x;
}

// Asserts that the case table covers every ScalarOp.
static void expect_every_scalar_op(void) {
    unsigned covered = 0;
    for (int64_t ci = 0; ci < COUNTOF(scalar_cases); ci++) covered |= 1u << scalar_cases[ci].op;
    ck_assert_msg(covered == (1u << SCALAR_OP_COUNT) - 1, "scalar ops without a case: 0x%x",
                  ~covered & ((1u << SCALAR_OP_COUNT) - 1));
}

// Tolerances per case in scalar_cases.
static void check_scalar_case(const Backend *be, int64_t ci, int64_t n) {
    const ScalarCase *sc = &scalar_cases[ci];
    const float *x = scalar_inputs(sc, n);
    float *want = host_floats(n), *y = dev_poison(be, n);
    for (int64_t i = 0; i < n; i++) want[i] = (float)ref_scalar_op(sc->op, x[i], sc->s);
    be->scalar(sc->op, y, dev_upload(be, x, n), sc->s, n);
    expect_dev(be, y, want, n, sc->tol, "scalar %s n=%lld", sc->name, (long long)n);
}

// Tolerances per case in scalar_cases.
static void check_scalar_backward_case(const Backend *be, int64_t ci, int64_t n) {
    const ScalarCase *sc = &scalar_cases[ci];
    const float *x = scalar_inputs(sc, n), *dy = host_random(n, "scalar dy", -1, 1);
    float *want = host_floats(n), *dx = dev_poison(be, n);
    for (int64_t i = 0; i < n; i++) want[i] = (float)(dy[i] * ref_scalar_grad(sc->op, x[i], sc->s));
    be->scalar_backward(sc->op, dx, dev_upload(be, x, n), sc->s, dev_upload(be, dy, n), n);
    expect_dev(be, dx, want, n, sc->tol, "scalar_backward %s n=%lld", sc->name, (long long)n);
}

KERNEL_TEST(scalar) {
    expect_every_scalar_op();
    on_elementwise_cases(be, COUNTOF(scalar_cases), check_scalar_case);
}

KERNEL_TEST(scalar_backward) {
    expect_every_scalar_op();
    on_elementwise_cases(be, COUNTOF(scalar_cases), check_scalar_backward_case);
}

// ---- reductions -------------------------------------------------------------------------------

static const char *const reduce_names[REDUCE_OP_COUNT] = {"sum", "mean", "max"};
static const int64_t reduce_shape[KERNEL_MAX_DIMS] = {3, 5, 7, 11};
static const int64_t reduce_large_shape[KERNEL_MAX_DIMS] = {5, 3, 61, 113}; // 103395 elements
static const unsigned reduce_large_masks[] = {1, 6, 8, 15};

// x (shape) -> y (shape with the dims in mask set to 1); also count (that shape), the number
// of elements equal to the maximum, when not NULL
static void ref_reduce(ReduceOp op, float *y, int64_t *ties, const float *x,
                       const int64_t shape[KERNEL_MAX_DIMS], unsigned mask) {
    int64_t ystride[KERNEL_MAX_DIMS];
    int64_t nx = numel(shape), ny = strides_without(shape, mask, ystride);
    double *acc = host_alloc((size_t)ny * sizeof(double));
    for (int64_t o = 0; o < ny; o++) acc[o] = op == REDUCE_MAX ? -INFINITY : 0;
    for (int64_t i = 0; i < nx; i++) {
        int64_t o = strided_offset(shape, ystride, i);
        acc[o] = op == REDUCE_MAX ? fmax(acc[o], x[i]) : acc[o] + x[i];
    }
    for (int64_t o = 0; o < ny; o++)
        y[o] = (float)(op == REDUCE_MEAN ? acc[o] / (double)(nx / ny) : acc[o]);
    if (ties) {
        for (int64_t o = 0; o < ny; o++) ties[o] = 0;
        for (int64_t i = 0; i < nx; i++) {
            int64_t o = strided_offset(shape, ystride, i);
            ties[o] += x[i] == y[o];
        }
    }
}

// One reduce case: x (shape) reduced over mask.
static void check_reduce_case(const Backend *be, ReduceOp op, const float *x, const float *x_dev,
                              const int64_t shape[KERNEL_MAX_DIMS], unsigned mask) {
    // sum and mean: up to 10^5 terms of [-1, 2] (no cancellation): rtol 1e-5; max: exact.
    const Tol tol = op == REDUCE_MAX ? EXACT : (Tol){1e-5, 1e-5};
    int64_t ystride[KERNEL_MAX_DIMS], ny = strides_without(shape, mask, ystride);
    float *want = host_floats(ny), *y = dev_poison(be, ny);
    ref_reduce(op, want, NULL, x, shape, mask);
    be->reduce(op, y, x_dev, shape, mask);
    expect_dev(be, y, want, ny, tol, "reduce %s over mask 0x%x of (%lld, %lld, %lld, %lld)",
               reduce_names[op], mask, (long long)shape[0], (long long)shape[1],
               (long long)shape[2], (long long)shape[3]);
}

KERNEL_TEST(reduce) {
    const int64_t n = numel(reduce_shape), n_large = numel(reduce_large_shape);
    const float *x = host_random(n, "reduce x", -1, 2);
    const float *x_large = host_random(n_large, "reduce x", -1, 2);
    const float *x_dev = dev_upload(be, x, n), *x_large_dev = dev_upload(be, x_large, n_large);
    for (int op = 0; op < REDUCE_OP_COUNT; op++) {
        for (unsigned mask = 1; mask < 16; mask++)
            check_reduce_case(be, (ReduceOp)op, x, x_dev, reduce_shape, mask);
        for (int64_t mi = 0; mi < COUNTOF(reduce_large_masks); mi++)
            check_reduce_case(be, (ReduceOp)op, x_large, x_large_dev, reduce_large_shape,
                              reduce_large_masks[mi]);
    }
}

// One reduce_max_backward case: x (shape) reduced over mask.
static void check_reduce_max_backward_case(const Backend *be, const float *x,
                                           const int64_t shape[KERNEL_MAX_DIMS], unsigned mask,
                                           const char *what) {
    // dy or dy / ties: one division, rtol 1e-6.
    int64_t ystride[KERNEL_MAX_DIMS];
    int64_t nx = numel(shape), ny = strides_without(shape, mask, ystride);
    float *y = host_floats(ny), *want = host_floats(nx);
    int64_t *ties = host_alloc((size_t)ny * sizeof(int64_t));
    ref_reduce(REDUCE_MAX, y, ties, x, shape, mask);
    const float *dy = host_random(ny, "reduce_max_backward dy", -1, 1);
    for (int64_t i = 0; i < nx; i++) {
        int64_t o = strided_offset(shape, ystride, i);
        want[i] = x[i] == y[o] ? (float)((double)dy[o] / (double)ties[o]) : 0.0f;
    }
    float *dx = dev_poison(be, nx);
    be->reduce_max_backward(dx, dev_upload(be, x, nx), dev_upload(be, y, ny),
                            dev_upload(be, dy, ny), shape, mask);
    expect_dev(be, dx, want, nx, (Tol){1e-7, 1e-6}, "reduce_max_backward %s, mask 0x%x", what,
               mask);
}

KERNEL_TEST(reduce_max_backward) {
    const int64_t n = numel(reduce_shape), n_large = numel(reduce_large_shape);
    const float *x = host_random(n, "reduce x", -1, 2);
    // Ties: integers 0..3, so most maxima are shared.
    const int32_t *levels = host_indices(n, "reduce_max_backward ties", 4);
    float *tied = host_floats(n);
    for (int64_t i = 0; i < n; i++) tied[i] = (float)levels[i];
    for (unsigned mask = 1; mask < 16; mask++) {
        check_reduce_max_backward_case(be, x, reduce_shape, mask, "distinct values");
        check_reduce_max_backward_case(be, tied, reduce_shape, mask, "ties");
    }
    const float *x_large = host_random(n_large, "reduce x", -1, 2);
    for (int64_t mi = 0; mi < COUNTOF(reduce_large_masks); mi++)
        check_reduce_max_backward_case(be, x_large, reduce_large_shape, reduce_large_masks[mi],
                                       "large");
}

KERNEL_TEST(sum_squares) {
    // Squares summed in double: rtol 1e-6 (float squaring alone is within 6e-8). Every prefix
    // of the list is checked, from no arrays at all to all five (one of them empty).
    static const int64_t sizes[] = {7, 0, 129, LARGE, 1};
    enum { COUNT = sizeof sizes / sizeof sizes[0] };
    const float *xs[COUNT];
    double want[COUNT + 1] = {0}; // want[j]: over the first j arrays
    for (int j = 0; j < COUNT; j++) {
        int64_t words = sizes[j] ? sizes[j] : 1; // an empty array still gets a valid pointer
        const float *x = host_random(words, "sum_squares x", -1, 1);
        want[j + 1] = want[j];
        for (int64_t i = 0; i < sizes[j]; i++) want[j + 1] += (double)x[i] * x[i];
        xs[j] = dev_upload(be, x, words);
    }
    for (int count = 0; count <= COUNT; count++) {
        double got = be->sum_squares(xs, sizes, count);
        ck_assert_msg(fabs(got - want[count]) <= 1e-6 * want[count], "%s: sum_squares of %d "
                      "arrays: got %.12g, want %.12g", be->name, count, got, want[count]);
    }
}

// ---- matmul -----------------------------------------------------------------------------------

enum { PACKED = -1 }; // a batch stride meaning: the matrices follow each other

typedef struct {
    const char *name;
    int64_t batch, m, n, k;
    float alpha, beta;
    int64_t stride_a, stride_b, stride_c;
} MatmulCase;

static const MatmulCase matmul_cases[] = {
    {"plain, beta 0 (C not read)", 1, 7, 13, 37, 1.0f, 0.0f, PACKED, PACKED, PACKED},
    {"batched, alpha and beta", 3, 13, 7, 129, 0.7f, -0.3f, PACKED, PACKED, PACKED},
    {"shared B (stride 0)", 3, 13, 7, 37, 1.0f, 0.0f, PACKED, 0, PACKED},
    {"shared A (stride 0), beta 1", 4, 9, 5, 11, 0.5f, 1.0f, 0, PACKED, PACKED},
    {"gaps between batch items", 2, 7, 13, 37, 1.0f, 0.5f, 7 * 37 + 3, PACKED, 7 * 13 + 5},
    {"one row", 1, 1, 129, 37, 1.0f, 0.0f, PACKED, PACKED, PACKED},
    {"one column", 1, 37, 1, 13, 1.0f, 0.0f, PACKED, PACKED, PACKED},
    {"large k", 2, 5, 9, 4099, 1.0f, 0.0f, PACKED, PACKED, PACKED},
    // above the CPU backend's SPLIT_MIN_FLOPS: C cut into a block per thread, by rows when
    // m >= n, else by columns, blocks not multiples of the 16-wide cut
    {"split by rows", 1, 161, 97, 300, 0.5f, 1.0f, PACKED, PACKED, PACKED},
    {"split by columns", 1, 33, 301, 250, 1.0f, 0.0f, PACKED, PACKED, PACKED},
};

static int64_t batch_stride(int64_t stride, int64_t size) {
    return stride == PACKED ? size : stride;
}

// elements spanned by `batch` matrices of `size` elements, `stride` apart
static int64_t batch_extent(int64_t stride, int64_t size, int64_t batch) {
    return (batch - 1) * batch_stride(stride, size) + size;
}

// C_i (m, n) = alpha op(A_i) op(B_i) + beta C_i; beta 0 does not read C (BLAS semantics)
static void ref_matmul(float *c, const float *a, const float *b, const MatmulCase *mc,
                       bool trans_a, bool trans_b) {
    int64_t m = mc->m, n = mc->n, k = mc->k;
    for (int64_t i = 0; i < mc->batch; i++) {
        const float *ai = a + i * batch_stride(mc->stride_a, m * k);
        const float *bi = b + i * batch_stride(mc->stride_b, k * n);
        float *ci = c + i * batch_stride(mc->stride_c, m * n);
        for (int64_t r = 0; r < m; r++) {
            for (int64_t col = 0; col < n; col++) {
                double sum = 0;
                for (int64_t p = 0; p < k; p++)
                    sum += (double)(trans_a ? ai[p * m + r] : ai[r * k + p]) *
                           (trans_b ? bi[col * k + p] : bi[p * n + col]);
                double old = mc->beta == 0 ? 0 : mc->beta * (double)ci[r * n + col];
                ci[r * n + col] = (float)(mc->alpha * sum + old);
            }
        }
    }
}

KERNEL_TEST(matmul) {
    // k-term float dot products of inputs in [-1, 1]: |error| <= c eps sum|a b| ~ c eps k / 4,
    // so an absolute floor of 1e-6 k (GEMMs accumulate in blocks and land far below), rtol 1e-5.
    for (int64_t ci = 0; ci < COUNTOF(matmul_cases); ci++) {
        const MatmulCase *mc = &matmul_cases[ci];
        int64_t na = batch_extent(mc->stride_a, mc->m * mc->k, mc->batch);
        int64_t nb = batch_extent(mc->stride_b, mc->k * mc->n, mc->batch);
        int64_t nc = batch_extent(mc->stride_c, mc->m * mc->n, mc->batch);
        const float *a = host_random(na, "matmul a", -1, 1);
        const float *b = host_random(nb, "matmul b", -1, 1);
        const float *c0 = host_random(nc, "matmul c", -1, 1);
        const float *a_dev = dev_upload(be, a, na), *b_dev = dev_upload(be, b, nb);
        for (int trans = 0; trans < 4; trans++) {
            bool trans_a = trans & 1, trans_b = trans & 2;
            float *want = host_floats(nc);
            if (mc->beta == 0)
                for (int64_t i = 0; i < nc; i++) want[i] = NAN; // C starts as NaN: not read
            else
                memcpy(want, c0, (size_t)nc * sizeof(float));
            float *c = dev_upload(be, want, nc);
            be->matmul(c, a_dev, b_dev, mc->batch, mc->m, mc->n, mc->k, trans_a, trans_b,
                       mc->alpha, mc->beta, batch_stride(mc->stride_a, mc->m * mc->k),
                       batch_stride(mc->stride_b, mc->k * mc->n),
                       batch_stride(mc->stride_c, mc->m * mc->n));
            ref_matmul(want, a, b, mc, trans_a, trans_b);
            expect_dev(be, c, want, nc, (Tol){1e-6 * (double)mc->k, 1e-5},
                       "matmul %s: batch %lld, (%lld, %lld, %lld), trans_a %d, trans_b %d",
                       mc->name, (long long)mc->batch, (long long)mc->m, (long long)mc->n,
                       (long long)mc->k, trans_a, trans_b);
        }
    }
}

// ---- softmax and losses ---------------------------------------------------------------------

typedef struct {
    int64_t rows, cols;
    float lo, hi;
} RowsCase;

static const RowsCase softmax_cases[] = {
    {7, 13, -5, 5},
    {37, 129, -5, 5},
    {3, 1031, -50, 120}, // exp(120) overflows float: only a max-shifted softmax survives
    {129, 1031, -5, 5},  // beyond 100k elements
    {5, 1, -5, 5},       // a single column
};

// log sum exp of s (n), shifted by the maximum
static double logsumexp(const double *s, int64_t n) {
    double max = -INFINITY, sum = 0;
    for (int64_t j = 0; j < n; j++) max = fmax(max, s[j]);
    for (int64_t j = 0; j < n; j++) sum += exp(s[j] - max);
    return max + log(sum);
}

// lse (rows) of x (rows, cols)
static double *rows_logsumexp(const float *x, int64_t rows, int64_t cols) {
    double *lse = host_alloc((size_t)rows * sizeof(double));
    double *row = host_alloc((size_t)cols * sizeof(double));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < cols; j++) row[j] = x[r * cols + j];
        lse[r] = logsumexp(row, cols);
    }
    return lse;
}

// y (rows, cols) = softmax or log-softmax of x over cols
static void ref_softmax(float *y, const float *x, int64_t rows, int64_t cols, bool log) {
    const double *lse = rows_logsumexp(x, rows, cols);
    for (int64_t i = 0; i < rows * cols; i++)
        y[i] = (float)(log ? x[i] - lse[i / cols] : exp(x[i] - lse[i / cols]));
}

// dx (rows, cols) from y = softmax(x) (or log-softmax) and dy
static void ref_softmax_backward(float *dx, const float *y, const float *dy, int64_t rows,
                                 int64_t cols, bool log) {
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *dyr = dy + r * cols;
        double dot = 0; // softmax: sum dy y; log-softmax: sum dy
        for (int64_t j = 0; j < cols; j++) dot += log ? dyr[j] : (double)dyr[j] * yr[j];
        for (int64_t j = 0; j < cols; j++)
            dx[r * cols + j] = (float)(log ? dyr[j] - exp(yr[j]) * dot : yr[j] * (dyr[j] - dot));
    }
}

KERNEL_TEST(softmax) {
    // exp and a cols-term sum: rtol 1e-5; atol 1e-7 for probabilities that underflow.
    for (int64_t ci = 0; ci < COUNTOF(softmax_cases); ci++) {
        const RowsCase *rc = &softmax_cases[ci];
        int64_t n = rc->rows * rc->cols;
        const float *x = host_random(n, "softmax x", rc->lo, rc->hi);
        for (int log = 0; log < 2; log++) {
            float *want = host_floats(n), *y = dev_poison(be, n);
            ref_softmax(want, x, rc->rows, rc->cols, log);
            be->softmax(y, dev_upload(be, x, n), rc->rows, rc->cols, log);
            expect_dev(be, y, want, n, (Tol){1e-7, 1e-5}, "%s (%lld, %lld) in [%g, %g]",
                       log ? "log-softmax" : "softmax", (long long)rc->rows, (long long)rc->cols,
                       (double)rc->lo, (double)rc->hi);
        }
    }
}

KERNEL_TEST(softmax_backward) {
    // dy minus a cols-term sum, times y: rtol 1e-5, atol 1e-6 where the difference cancels.
    for (int64_t ci = 0; ci < COUNTOF(softmax_cases); ci++) {
        const RowsCase *rc = &softmax_cases[ci];
        int64_t n = rc->rows * rc->cols;
        const float *x = host_random(n, "softmax x", rc->lo, rc->hi);
        const float *dy = host_random(n, "softmax dy", -1, 1);
        for (int log = 0; log < 2; log++) {
            float *y = host_floats(n), *want = host_floats(n), *dx = dev_poison(be, n);
            ref_softmax(y, x, rc->rows, rc->cols, log);
            ref_softmax_backward(want, y, dy, rc->rows, rc->cols, log);
            be->softmax_backward(dx, dev_upload(be, y, n), dev_upload(be, dy, n), rc->rows,
                                 rc->cols, log);
            expect_dev(be, dx, want, n, (Tol){1e-6, 1e-5}, "%s backward (%lld, %lld)",
                       log ? "log-softmax" : "softmax", (long long)rc->rows, (long long)rc->cols);
        }
    }
}

KERNEL_TEST(cross_entropy) {
    // logsumexp of a row minus one logit: rtol 1e-5, atol 1e-5 (a lone class has loss 0).
    for (int64_t ci = 0; ci < COUNTOF(softmax_cases); ci++) {
        const RowsCase *rc = &softmax_cases[ci];
        const float *logits = host_random(rc->rows * rc->cols, "ce logits", rc->lo, rc->hi);
        const int32_t *target = host_indices(rc->rows, "ce target", (int32_t)rc->cols);
        const double *lse = rows_logsumexp(logits, rc->rows, rc->cols);
        float *want = host_floats(rc->rows), *loss = dev_poison(be, rc->rows);
        for (int64_t r = 0; r < rc->rows; r++)
            want[r] = (float)(lse[r] - logits[r * rc->cols + target[r]]);
        be->cross_entropy(loss, dev_upload(be, logits, rc->rows * rc->cols),
                          dev_upload(be, target, rc->rows), rc->rows, rc->cols);
        expect_dev(be, loss, want, rc->rows, (Tol){1e-5, 1e-5}, "cross_entropy (%lld, %lld)",
                   (long long)rc->rows, (long long)rc->cols);
    }
}

KERNEL_TEST(cross_entropy_backward) {
    // (softmax - onehot) dloss: rtol 1e-5, atol 1e-7 for probabilities that underflow.
    for (int64_t ci = 0; ci < COUNTOF(softmax_cases); ci++) {
        const RowsCase *rc = &softmax_cases[ci];
        int64_t n = rc->rows * rc->cols;
        const float *logits = host_random(n, "ce logits", rc->lo, rc->hi);
        const int32_t *target = host_indices(rc->rows, "ce target", (int32_t)rc->cols);
        const float *dloss = host_random(rc->rows, "ce dloss", -1, 1);
        const double *lse = rows_logsumexp(logits, rc->rows, rc->cols);
        float *want = host_floats(n), *dlogits = dev_poison(be, n);
        for (int64_t i = 0; i < n; i++) {
            int64_t r = i / rc->cols;
            double onehot = i % rc->cols == target[r];
            want[i] = (float)((exp(logits[i] - lse[r]) - onehot) * dloss[r]);
        }
        be->cross_entropy_backward(dlogits, dev_upload(be, dloss, rc->rows),
                                   dev_upload(be, logits, n), dev_upload(be, target, rc->rows),
                                   rc->rows, rc->cols);
        expect_dev(be, dlogits, want, n, (Tol){1e-7, 1e-5}, "cross_entropy_backward (%lld, %lld)",
                   (long long)rc->rows, (long long)rc->cols);
    }
}

static const int64_t squared_error_sizes[] = {7, 129, LARGE};

KERNEL_TEST(squared_error) {
    // A sum of n squares: rtol 1e-5.
    for (int64_t si = 0; si < COUNTOF(squared_error_sizes); si++) {
        int64_t n = squared_error_sizes[si];
        const float *a = host_random(n, "se a", -1, 1), *b = host_random(n, "se b", -1, 1);
        double sum = 0;
        for (int64_t i = 0; i < n; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        float want = (float)sum, *y = dev_poison(be, 1);
        be->squared_error(y, dev_upload(be, a, n), dev_upload(be, b, n), n);
        expect_dev(be, y, &want, 1, (Tol){0, 1e-5}, "squared_error n=%lld", (long long)n);
    }
}

KERNEL_TEST(squared_error_backward) {
    // A few multiplications per element: rtol 1e-6.
    const Tol tol = {1e-7, 1e-6};
    for (int64_t si = 0; si < COUNTOF(squared_error_sizes); si++) {
        int64_t n = squared_error_sizes[si];
        const float *a = host_random(n, "se a", -1, 1), *b = host_random(n, "se b", -1, 1);
        const float dy = 0.37f, scale = 2.0f / (float)n;
        float *want_da = host_floats(n), *want_db = host_floats(n);
        for (int64_t i = 0; i < n; i++) {
            want_da[i] = (float)((double)scale * dy * ((double)a[i] - b[i]));
            want_db[i] = -want_da[i];
        }
        const float *a_dev = dev_upload(be, a, n), *b_dev = dev_upload(be, b, n);
        const float *dy_dev = dev_upload(be, &dy, 1);
        for (int outputs = 3; outputs >= 1; outputs--) { // 3 both, 1 da only, 2 db only
            float *da = outputs & 1 ? dev_poison(be, n) : NULL;
            float *db = outputs & 2 ? dev_poison(be, n) : NULL;
            be->squared_error_backward(da, db, dy_dev, a_dev, b_dev, scale, n);
            if (da)
                expect_dev(be, da, want_da, n, tol, "squared_error_backward n=%lld: da%s",
                           (long long)n, db ? "" : " (db NULL)");
            if (db)
                expect_dev(be, db, want_db, n, tol, "squared_error_backward n=%lld: db%s",
                           (long long)n, da ? "" : " (da NULL)");
        }
    }
}

// ---- normalisation ------------------------------------------------------------------------

// A layernorm case is a groupnorm case with hw = 1 and groups = 1: each row one group.
typedef struct {
    int64_t n, c, hw, groups;
    float lo, hi;     // x in [lo, hi]
    bool affine;      // weight and bias, or NULL
    bool param_grads; // dweight and dbias requested (affine only)
} NormCase;

static const NormCase layernorm_cases[] = {
    {7, 13, 1, 1, -2, 3, true, true},
    {37, 129, 1, 1, -2, 3, false, false},
    {37, 129, 1, 1, 8, 12, true, true},   // mean far from 0
    {37, 129, 1, 1, -2, 3, true, false},  // frozen affine parameters: no dweight, dbias
    {129, 1031, 1, 1, -2, 3, true, true}, // beyond 100k elements
};

static const NormCase groupnorm_cases[] = {
    {3, 12, 35, 4, -2, 3, true, true},
    {2, 6, 13, 6, -2, 3, false, false}, // one channel per group
    {3, 8, 7, 1, 8, 12, true, true},    // one group, mean far from 0
    {2, 12, 35, 4, -2, 3, true, false}, // frozen affine parameters
    {2, 32, 1681, 8, -2, 3, true, true}, // beyond 100k elements
};

static const float norm_eps = 1e-5f;

// Host tensors of one norm case and the reference forward:
// x, y (n, c, hw); weight, bias (c) or NULL; mean, rstd (n, groups).
typedef struct {
    int64_t nx, ngroups;
    float *x, *weight, *bias;
    float *y, *mean, *rstd;
} NormData;

// The channel of element e of group s (of `groups` per image), groups of len = c/groups * hw.
static int64_t norm_channel(const NormCase *nc, int64_t s, int64_t e) {
    return s % nc->groups * (nc->c / nc->groups) + e / nc->hw;
}

// Group normalisation, the one reference for both norms: biased variance, rstd = 1 /
// sqrt(var + eps), then the per-channel affine.
static NormData ref_norm(const NormCase *nc) {
    NormData nd;
    nd.nx = nc->n * nc->c * nc->hw;
    nd.ngroups = nc->n * nc->groups;
    nd.x = host_random(nd.nx, "norm x", nc->lo, nc->hi);
    nd.weight = nc->affine ? host_random(nc->c, "norm weight", 0.5f, 1.5f) : NULL;
    nd.bias = nc->affine ? host_random(nc->c, "norm bias", -0.5f, 0.5f) : NULL;
    nd.y = host_floats(nd.nx);
    nd.mean = host_floats(nd.ngroups);
    nd.rstd = host_floats(nd.ngroups);
    int64_t len = nd.nx / nd.ngroups;
    for (int64_t s = 0; s < nd.ngroups; s++) {
        const float *xs = nd.x + s * len;
        double sum = 0, sq = 0;
        for (int64_t e = 0; e < len; e++) sum += xs[e];
        double mean = sum / (double)len;
        for (int64_t e = 0; e < len; e++) sq += (xs[e] - mean) * (xs[e] - mean);
        double rstd = 1 / sqrt(sq / (double)len + norm_eps);
        for (int64_t e = 0; e < len; e++) {
            int64_t ch = norm_channel(nc, s, e);
            double v = (xs[e] - mean) * rstd;
            nd.y[s * len + e] = (float)(nc->affine ? v * nd.weight[ch] + nd.bias[ch] : v);
        }
        nd.mean[s] = (float)mean;
        nd.rstd[s] = (float)rstd;
    }
    return nd;
}

// dx (n, c, hw), dweight, dbias (c) from the saved (float) mean and rstd:
// dx = rstd (g - mean(g) - xhat mean(g xhat)) over each group, g = dy weight.
static void ref_norm_backward(float *dx, float *dweight, float *dbias, const float *dy,
                              const NormData *nd, const NormCase *nc) {
    int64_t len = nd->nx / nd->ngroups;
    double *dw = host_alloc((size_t)nc->c * sizeof(double));
    double *db = host_alloc((size_t)nc->c * sizeof(double));
    for (int64_t s = 0; s < nd->ngroups; s++) {
        const float *xs = nd->x + s * len, *dys = dy + s * len;
        double mean = nd->mean[s], rstd = nd->rstd[s], g_mean = 0, gx_mean = 0;
        for (int64_t e = 0; e < len; e++) {
            int64_t ch = norm_channel(nc, s, e);
            double xhat = (xs[e] - mean) * rstd;
            double g = dys[e] * (nd->weight ? nd->weight[ch] : 1.0);
            g_mean += g / (double)len;
            gx_mean += g * xhat / (double)len;
            dw[ch] += dys[e] * xhat;
            db[ch] += dys[e];
        }
        for (int64_t e = 0; e < len; e++) {
            int64_t ch = norm_channel(nc, s, e);
            double xhat = (xs[e] - mean) * rstd;
            double g = dys[e] * (nd->weight ? nd->weight[ch] : 1.0);
            dx[s * len + e] = (float)(rstd * (g - g_mean - xhat * gx_mean));
        }
    }
    for (int64_t ch = 0; ch < nc->c; ch++) {
        dweight[ch] = (float)dw[ch];
        dbias[ch] = (float)db[ch];
    }
}

// Runs layernorm (layer) or groupnorm on one case against ref_norm.
static void check_norm_forward(const Backend *be, const NormCase *nc, bool layer) {
    // Two len-term sums, a rsqrt and an affine: rtol 1e-5, atol 1e-5 for outputs near 0.
    const Tol tol = {1e-5, 1e-5};
    NormData nd = ref_norm(nc);
    float *y = dev_poison(be, nd.nx), *mean = dev_poison(be, nd.ngroups);
    float *rstd = dev_poison(be, nd.ngroups);
    const float *x = dev_upload(be, nd.x, nd.nx), *weight = dev_upload(be, nd.weight, nc->c);
    const float *bias = dev_upload(be, nd.bias, nc->c);
    if (layer) be->layernorm(y, mean, rstd, x, weight, bias, nc->n, nc->c, norm_eps);
    else be->groupnorm(y, mean, rstd, x, weight, bias, nc->n, nc->c, nc->hw, nc->groups, norm_eps);
    const char *name = layer ? "layernorm" : "groupnorm";
    char what[128];
    snprintf(what, sizeof what, "%s (%lld, %lld, %lld) groups %lld%s", name, (long long)nc->n,
             (long long)nc->c, (long long)nc->hw, (long long)nc->groups,
             nc->affine ? " affine" : "");
    expect_dev(be, y, nd.y, nd.nx, tol, "%s: y", what);
    expect_dev(be, mean, nd.mean, nd.ngroups, tol, "%s: mean", what);
    expect_dev(be, rstd, nd.rstd, nd.ngroups, tol, "%s: rstd", what);
}

// Runs layernorm_backward (layer) or groupnorm_backward on one case against ref_norm_backward.
static void check_norm_backward(const Backend *be, const NormCase *nc, bool layer) {
    // dx: len-term means, rtol 1e-5, atol 1e-5; dweight and dbias sum n*hw terms of O(1):
    // an absolute floor of 1e-6 per term.
    NormData nd = ref_norm(nc);
    int64_t terms = nc->n * nc->hw;
    const float *dy = host_random(nd.nx, "norm dy", -1, 1);
    float *want_dx = host_floats(nd.nx), *want_dw = host_floats(nc->c);
    float *want_db = host_floats(nc->c);
    ref_norm_backward(want_dx, want_dw, want_db, dy, &nd, nc);
    float *dx = dev_poison(be, nd.nx);
    float *dweight = nc->param_grads ? dev_poison(be, nc->c) : NULL;
    float *dbias = nc->param_grads ? dev_poison(be, nc->c) : NULL;
    const float *dy_dev = dev_upload(be, dy, nd.nx), *x = dev_upload(be, nd.x, nd.nx);
    const float *mean = dev_upload(be, nd.mean, nd.ngroups);
    const float *rstd = dev_upload(be, nd.rstd, nd.ngroups);
    const float *weight = dev_upload(be, nd.weight, nc->c);
    if (layer)
        be->layernorm_backward(dx, dweight, dbias, dy_dev, x, mean, rstd, weight, nc->n, nc->c);
    else
        be->groupnorm_backward(dx, dweight, dbias, dy_dev, x, mean, rstd, weight, nc->n, nc->c,
                               nc->hw, nc->groups);
    char what[128];
    snprintf(what, sizeof what, "%s_backward (%lld, %lld, %lld) groups %lld%s%s",
             layer ? "layernorm" : "groupnorm", (long long)nc->n, (long long)nc->c,
             (long long)nc->hw, (long long)nc->groups, nc->affine ? " affine" : "",
             nc->param_grads ? "" : ", no parameter gradients");
    expect_dev(be, dx, want_dx, nd.nx, (Tol){1e-5, 1e-5}, "%s: dx", what);
    if (nc->param_grads) {
        const Tol sums = {1e-6 * (double)terms, 1e-5};
        expect_dev(be, dweight, want_dw, nc->c, sums, "%s: dweight", what);
        expect_dev(be, dbias, want_db, nc->c, sums, "%s: dbias", what);
    }
}

// Runs `check` (forward or backward) on every case of a table, as layernorm or groupnorm.
static void on_norm_cases(const Backend *be, const NormCase *cases, int64_t count, bool layer,
                          void (*check)(const Backend *, const NormCase *, bool)) {
    for (int64_t ci = 0; ci < count; ci++) check(be, &cases[ci], layer);
}

#define LAYERNORM_CASES layernorm_cases, COUNTOF(layernorm_cases), true
#define GROUPNORM_CASES groupnorm_cases, COUNTOF(groupnorm_cases), false
KERNEL_TEST(layernorm) { on_norm_cases(be, LAYERNORM_CASES, check_norm_forward); }
KERNEL_TEST(layernorm_backward) { on_norm_cases(be, LAYERNORM_CASES, check_norm_backward); }
KERNEL_TEST(groupnorm) { on_norm_cases(be, GROUPNORM_CASES, check_norm_forward); }
KERNEL_TEST(groupnorm_backward) { on_norm_cases(be, GROUPNORM_CASES, check_norm_backward); }

// ---- convolution, resampling, gather ----------------------------------------------------------

enum { CONV_IMAGES = 2 };

static const ConvGeometry conv_cases[] = {
    // c, h, w, kh, kw, stride, pad (oh, ow follow)
    {3, 7, 9, 3, 3, 1, 1, 0, 0},
    {2, 8, 7, 3, 3, 2, 1, 0, 0},
    {3, 7, 9, 3, 3, 1, 0, 0, 0},
    {4, 9, 9, 3, 3, 2, 0, 0, 0},
    {5, 6, 5, 1, 1, 1, 0, 0, 0},
    {3, 7, 6, 1, 1, 2, 0, 0, 0}, // stride 2, kernel 1: every other pixel is in no patch
    {3, 5, 6, 1, 1, 1, 1, 0, 0}, // kernel 1, pad 1: the output's border reads only padding
    {2, 5, 7, 3, 1, 1, 1, 0, 0}, // a 3x1 kernel
    {8, 32, 32, 3, 3, 1, 1, 0, 0}, // col has 147k elements
};

static ConvGeometry with_output_size(ConvGeometry g) {
    g.oh = (g.h + 2 * g.pad - g.kh) / g.stride + 1;
    g.ow = (g.w + 2 * g.pad - g.kw) / g.stride + 1;
    return g;
}

static int64_t conv_x_size(const ConvGeometry *g) { return CONV_IMAGES * g->c * g->h * g->w; }
static int64_t conv_col_size(const ConvGeometry *g) {
    return g->c * g->kh * g->kw * CONV_IMAGES * g->oh * g->ow;
}

// The x (n, c, h, w) index that col element (row r, column j) reads, or -1 in the padding.
static int64_t im2col_source(const ConvGeometry *g, int64_t r, int64_t j) {
    int64_t ci = r / (g->kh * g->kw), ky = r / g->kw % g->kh, kx = r % g->kw;
    int64_t img = j / (g->oh * g->ow), oy = j / g->ow % g->oh, ox = j % g->ow;
    int64_t iy = oy * g->stride - g->pad + ky, ix = ox * g->stride - g->pad + kx;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) return -1;
    return ((img * g->c + ci) * g->h + iy) * g->w + ix;
}

static const char *describe_conv(const ConvGeometry *g) {
    static char text[128];
    snprintf(text, sizeof text, "c %lld, %lldx%lld, kernel %lldx%lld, stride %lld, pad %lld",
             (long long)g->c, (long long)g->h, (long long)g->w, (long long)g->kh,
             (long long)g->kw, (long long)g->stride, (long long)g->pad);
    return text;
}

KERNEL_TEST(im2col) {
    // A gather with zero padding: bit for bit.
    for (int64_t ci = 0; ci < COUNTOF(conv_cases); ci++) {
        ConvGeometry g = with_output_size(conv_cases[ci]);
        int64_t nx = conv_x_size(&g), ncol = conv_col_size(&g), cols = ncol / (g.c * g.kh * g.kw);
        const float *x = host_random(nx, "conv x", -1, 1);
        float *want = host_floats(ncol), *col = dev_poison(be, ncol);
        for (int64_t i = 0; i < ncol; i++) {
            int64_t src = im2col_source(&g, i / cols, i % cols);
            want[i] = src < 0 ? 0.0f : x[src];
        }
        be->im2col(col, dev_upload(be, x, nx), CONV_IMAGES, &g);
        expect_dev(be, col, want, ncol, EXACT, "im2col %s", describe_conv(&g));
    }
}

KERNEL_TEST(col2im) {
    // Sums of at most kh*kw entries in any order: rtol 1e-6, atol 1e-6 where they cancel.
    for (int64_t ci = 0; ci < COUNTOF(conv_cases); ci++) {
        ConvGeometry g = with_output_size(conv_cases[ci]);
        int64_t nx = conv_x_size(&g), ncol = conv_col_size(&g), cols = ncol / (g.c * g.kh * g.kw);
        const float *c = host_random(ncol, "conv col", -1, 1);
        double *acc = host_alloc((size_t)nx * sizeof(double));
        for (int64_t i = 0; i < ncol; i++) {
            int64_t src = im2col_source(&g, i / cols, i % cols);
            if (src >= 0) acc[src] += c[i];
        }
        float *want = host_floats(nx), *dx = dev_poison(be, nx);
        for (int64_t i = 0; i < nx; i++) want[i] = (float)acc[i];
        be->col2im(dx, dev_upload(be, c, ncol), CONV_IMAGES, &g);
        expect_dev(be, dx, want, nx, (Tol){1e-6, 1e-6}, "col2im %s", describe_conv(&g));

        // The adjoint identity <im2col(x), c> = <x, col2im(c)> on the kernels' own outputs,
        // to 1e-5 of the sum of |terms|.
        const float *x = host_random(nx, "conv x", -1, 1);
        float *col_dev = dev_poison(be, ncol);
        be->im2col(col_dev, dev_upload(be, x, nx), CONV_IMAGES, &g);
        const float *col_of_x = dev_download(be, col_dev, ncol);
        const float *dx_of_c = dev_download(be, dx, nx);
        double lhs = 0, rhs = 0, scale = 0;
        for (int64_t i = 0; i < ncol; i++) {
            lhs += (double)col_of_x[i] * c[i];
            scale += fabs((double)col_of_x[i] * c[i]);
        }
        for (int64_t i = 0; i < nx; i++) rhs += (double)x[i] * dx_of_c[i];
        ck_assert_msg(fabs(lhs - rhs) <= 1e-5 * scale, "%s: <im2col(x), c> = %.9g but "
                      "<x, col2im(c)> = %.9g (%s)", be->name, lhs, rhs, describe_conv(&g));
    }
}

// The small side (planes, h, w) of a resampling and its factor f: the large side is
// (planes, h f, w f). Upsampling takes the small side's h, w; pooling the large side's.
typedef struct {
    int64_t planes, h, w, f;
} ResampleCase;

static const ResampleCase resample_cases[] = {
    {5, 7, 3, 2}, {3, 4, 5, 3}, {3, 3, 7, 3},
    {2, 1, 1, 7},    // one 7x7 window per plane
    {64, 29, 31, 2}, // the large side has 230k elements
};

// x (planes, h, w) -> y (planes, h/k, w/k) = scale * the sum over each k x k window
static void ref_window_sum(float *y, const float *x, int64_t planes, int64_t h, int64_t w,
                           int64_t k, double scale) {
    int64_t oh = h / k, ow = w / k;
    for (int64_t i = 0; i < planes * oh * ow; i++) {
        int64_t p = i / (oh * ow), oy = i / ow % oh, ox = i % ow;
        double sum = 0;
        for (int64_t dy = 0; dy < k; dy++)
            for (int64_t dx = 0; dx < k; dx++) sum += x[(p * h + oy * k + dy) * w + ox * k + dx];
        y[i] = (float)(scale * sum);
    }
}

// x (planes, h, w) -> y (planes, h*f, w*f) = scale * the nearest x
static void ref_spread(float *y, const float *x, int64_t planes, int64_t h, int64_t w, int64_t f,
                       double scale) {
    int64_t oh = h * f, ow = w * f;
    for (int64_t i = 0; i < planes * oh * ow; i++) {
        int64_t p = i / (oh * ow), oy = i / ow % oh, ox = i % ow;
        y[i] = (float)(scale * x[(p * h + oy / f) * w + ox / f]);
    }
}

typedef void (*ResampleKernel)(float *out, const float *in, int64_t planes, int64_t h, int64_t w,
                               int64_t f);

// Runs one of the four resampling kernels on every case. `grow`: it maps the small side to
// the large (nearest-neighbour spread; else window sums); `pool`: it takes the large side's
// h, w and scales by 1 / f^2.
static void check_resample(const Backend *be, const char *name, ResampleKernel kernel, bool grow,
                           bool pool, Tol tol) {
    for (int64_t ci = 0; ci < COUNTOF(resample_cases); ci++) {
        const ResampleCase *rc = &resample_cases[ci];
        int64_t small = rc->planes * rc->h * rc->w, large = small * rc->f * rc->f;
        int64_t nin = grow ? small : large, nout = grow ? large : small;
        double scale = pool ? 1.0 / (double)(rc->f * rc->f) : 1.0;
        const float *in = host_random(nin, name, -1, 1);
        float *want = host_floats(nout), *out = dev_poison(be, nout);
        if (grow) ref_spread(want, in, rc->planes, rc->h, rc->w, rc->f, scale);
        else ref_window_sum(want, in, rc->planes, rc->h * rc->f, rc->w * rc->f, rc->f, scale);
        int64_t h = pool ? rc->h * rc->f : rc->h, w = pool ? rc->w * rc->f : rc->w;
        kernel(out, dev_upload(be, in, nin), rc->planes, h, w, rc->f);
        expect_dev(be, out, want, nout, tol, "%s (%lld, %lld, %lld), f %lld", name,
                   (long long)rc->planes, (long long)h, (long long)w, (long long)rc->f);
    }
}

// A gather: bit for bit.
KERNEL_TEST(upsample_nearest) {
    check_resample(be, "upsample_nearest", be->upsample_nearest, true, false, EXACT);
}

// Sums of f*f entries in any order: rtol 1e-6, atol 1e-6 where they cancel.
KERNEL_TEST(upsample_nearest_backward) {
    check_resample(be, "upsample_nearest_backward", be->upsample_nearest_backward, false, false,
                   (Tol){1e-6, 1e-6});
}

// Means of f*f entries: rtol 1e-6, atol 1e-6 where they cancel.
KERNEL_TEST(avgpool) { check_resample(be, "avgpool", be->avgpool, false, true, (Tol){1e-6, 1e-6}); }

// dy / f^2 spread over each window: one rounding, rtol 1e-6.
KERNEL_TEST(avgpool_backward) {
    check_resample(be, "avgpool_backward", be->avgpool_backward, true, true, (Tol){1e-7, 1e-6});
}

typedef struct {
    int64_t vocab, dim, n;
    int32_t below; // indices in [0, below)
} EmbeddingCase;

static const EmbeddingCase embedding_cases[] = {
    {11, 37, 29, 10},        // more lookups than rows: repeats; row 10 is never looked up
    {1000, 129, 1031, 1000}, // beyond 100k outputs
};

KERNEL_TEST(embedding) {
    // A gather: bit for bit.
    for (int64_t ci = 0; ci < COUNTOF(embedding_cases); ci++) {
        const EmbeddingCase *ec = &embedding_cases[ci];
        const float *table = host_random(ec->vocab * ec->dim, "embedding table", -1, 1);
        const int32_t *index = host_indices(ec->n, "embedding index", ec->below);
        float *want = host_floats(ec->n * ec->dim), *y = dev_poison(be, ec->n * ec->dim);
        for (int64_t i = 0; i < ec->n * ec->dim; i++)
            want[i] = table[index[i / ec->dim] * ec->dim + i % ec->dim];
        be->embedding(y, dev_upload(be, table, ec->vocab * ec->dim), dev_upload(be, index, ec->n),
                      ec->n, ec->dim);
        expect_dev(be, y, want, ec->n * ec->dim, EXACT, "embedding vocab %lld, dim %lld, n %lld",
                   (long long)ec->vocab, (long long)ec->dim, (long long)ec->n);
    }
}

KERNEL_TEST(embedding_backward) {
    // Sums of the rows sharing an index, in any order: rtol 1e-6, atol 1e-6 where they cancel.
    for (int64_t ci = 0; ci < COUNTOF(embedding_cases); ci++) {
        const EmbeddingCase *ec = &embedding_cases[ci];
        int64_t ntable = ec->vocab * ec->dim;
        const float *dy = host_random(ec->n * ec->dim, "embedding dy", -1, 1);
        const int32_t *index = host_indices(ec->n, "embedding index", ec->below);
        double *acc = host_alloc((size_t)ntable * sizeof(double));
        for (int64_t i = 0; i < ec->n * ec->dim; i++)
            acc[index[i / ec->dim] * ec->dim + i % ec->dim] += dy[i];
        float *want = host_floats(ntable), *dtable = dev_poison(be, ntable);
        for (int64_t i = 0; i < ntable; i++) want[i] = (float)acc[i];
        be->embedding_backward(dtable, dev_upload(be, dy, ec->n * ec->dim),
                               dev_upload(be, index, ec->n), ec->n, ec->vocab, ec->dim);
        expect_dev(be, dtable, want, ntable, (Tol){1e-6, 1e-6},
                   "embedding_backward vocab %lld, dim %lld, n %lld", (long long)ec->vocab,
                   (long long)ec->dim, (long long)ec->n);
    }
}

// ---- attention ----------------------------------------------------------------------------

typedef struct {
    int64_t b, t, heads, d;
    bool packed; // q, k, v are thirds of one (b, t, 3, heads, d) projection
} AttentionCase;

static const AttentionCase attention_cases[] = {
    {2, 13, 3, 7, true}, {2, 13, 3, 7, false}, {1, 37, 2, 9, true},
    {1, 1, 2, 5, false}, {1, 64, 2, 64, true}, {2, 129, 4, 33, false},
};

// q, k, v (and dq, dk, dv) live in one allocation of 3 b t heads d floats: the packed thirds
// of a qkv projection, ld = 3 heads d, or three separate (b, t, heads, d) tensors one after
// another, ld = heads d. The offset of q (part 0), k (1) or v (2):
static int64_t attention_part(const AttentionCase *ac, int part) {
    return part * ac->heads * ac->d * (ac->packed ? 1 : ac->b * ac->t);
}
static int64_t attention_ld(const AttentionCase *ac) {
    return (ac->packed ? 3 : 1) * ac->heads * ac->d;
}
static int64_t attention_qkv_size(const AttentionCase *ac) {
    return 3 * ac->b * ac->t * ac->heads * ac->d;
}

// For one (batch, head): p (t, t) = softmax over j of scale q_i . k_j, lse (t); token i of q
// is q + i ld.
static void ref_attention_probs(double *p, double *lse, const float *q, const float *k,
                                int64_t ld, int64_t t, int64_t d, double scale) {
    for (int64_t i = 0; i < t; i++) {
        for (int64_t j = 0; j < t; j++) {
            double dot = 0;
            for (int64_t e = 0; e < d; e++) dot += (double)q[i * ld + e] * k[j * ld + e];
            p[i * t + j] = scale * dot;
        }
        lse[i] = logsumexp(p + i * t, t);
        for (int64_t j = 0; j < t; j++) p[i * t + j] = exp(p[i * t + j] - lse[i]);
    }
}

// qkv (attention_qkv_size) -> out (b, t, heads, d), lse (b, heads, t); and, when dout
// (b, t, heads, d) is not NULL, dqkv (the layout of qkv).
static void ref_attention(float *out, float *lse, float *dqkv, const float *dout,
                          const float *qkv, const AttentionCase *ac, double scale) {
    int64_t t = ac->t, d = ac->d, ld = attention_ld(ac), hd = ac->heads * ac->d;
    double *p = host_alloc((size_t)(t * t) * sizeof(double));
    double *ds = host_alloc((size_t)(t * t) * sizeof(double));
    double *row_lse = host_alloc((size_t)t * sizeof(double));
    for (int64_t bi = 0; bi < ac->b; bi++) {
        for (int64_t h = 0; h < ac->heads; h++) {
            int64_t head = bi * t * ld + h * d; // token 0 of this head in q, k, v
            const float *q = qkv + attention_part(ac, 0) + head;
            const float *k = qkv + attention_part(ac, 1) + head;
            const float *v = qkv + attention_part(ac, 2) + head;
            ref_attention_probs(p, row_lse, q, k, ld, t, d, scale);
            for (int64_t i = 0; i < t; i++) {
                lse[(bi * ac->heads + h) * t + i] = (float)row_lse[i];
                for (int64_t e = 0; e < d; e++) {
                    double o = 0;
                    for (int64_t j = 0; j < t; j++) o += p[i * t + j] * v[j * ld + e];
                    out[(bi * t + i) * hd + h * d + e] = (float)o;
                }
            }
            if (!dout) continue;
            // dp_ij = dout_i . v_j; ds = p (dp - sum_j p dp); dq = scale ds k; dk = scale ds^T q;
            // dv = p^T dout
            const float *dout_h = dout + bi * t * hd + h * d;
            float *dq = dqkv + attention_part(ac, 0) + head;
            float *dk = dqkv + attention_part(ac, 1) + head;
            float *dv = dqkv + attention_part(ac, 2) + head;
            for (int64_t i = 0; i < t; i++) {
                double row = 0;
                for (int64_t j = 0; j < t; j++) {
                    double dp = 0;
                    for (int64_t e = 0; e < d; e++)
                        dp += (double)dout_h[i * hd + e] * v[j * ld + e];
                    ds[i * t + j] = dp;
                    row += p[i * t + j] * dp;
                }
                for (int64_t j = 0; j < t; j++)
                    ds[i * t + j] = p[i * t + j] * (ds[i * t + j] - row);
            }
            for (int64_t i = 0; i < t; i++) {
                for (int64_t e = 0; e < d; e++) {
                    double gq = 0, gk = 0, gv = 0;
                    for (int64_t j = 0; j < t; j++) {
                        gq += ds[i * t + j] * k[j * ld + e];
                        gk += ds[j * t + i] * q[j * ld + e];
                        gv += p[j * t + i] * dout_h[j * hd + e];
                    }
                    dq[i * ld + e] = (float)(scale * gq);
                    dk[i * ld + e] = (float)(scale * gk);
                    dv[i * ld + e] = (float)gv;
                }
            }
        }
    }
}

static const char *describe_attention(const AttentionCase *ac) {
    static char text[128];
    snprintf(text, sizeof text, "b %lld, t %lld, heads %lld, d %lld, %s", (long long)ac->b,
             (long long)ac->t, (long long)ac->heads, (long long)ac->d,
             ac->packed ? "packed qkv" : "separate q, k, v");
    return text;
}

// One attention case, ready to run: host inputs and reference results, and the device qkv.
typedef struct {
    int64_t nqkv, nout, nlse;  // elements of qkv (and dqkv), out (and dout), lse
    float scale;               // 1 / sqrt(d)
    float *out, *lse, *dqkv;   // the reference (host); dqkv only with backward
    const float *dout;         // host, only with backward
    const float *q, *k, *v;    // device pointers into one uploaded qkv allocation
} AttentionRun;

static AttentionRun attention_run(const Backend *be, const AttentionCase *ac, bool backward) {
    AttentionRun ar;
    ar.nqkv = attention_qkv_size(ac);
    ar.nout = ar.nqkv / 3;
    ar.nlse = ac->b * ac->heads * ac->t;
    ar.scale = 1.0f / sqrtf((float)ac->d);
    const float *qkv = host_random(ar.nqkv, "attention qkv", -2, 2);
    ar.dout = backward ? host_random(ar.nout, "attention dout", -1, 1) : NULL;
    ar.out = host_floats(ar.nout);
    ar.lse = host_floats(ar.nlse);
    ar.dqkv = backward ? host_floats(ar.nqkv) : NULL;
    ref_attention(ar.out, ar.lse, ar.dqkv, ar.dout, qkv, ac, ar.scale);
    const float *qkv_dev = dev_upload(be, qkv, ar.nqkv);
    ar.q = qkv_dev + attention_part(ac, 0);
    ar.k = qkv_dev + attention_part(ac, 1);
    ar.v = qkv_dev + attention_part(ac, 2);
    return ar;
}

KERNEL_TEST(attention) {
    // d-term scores, then a softmax and t-term weighted sums: rtol 1e-5, atol 1e-5 for outputs
    // (averages of values in [-1, 1]) near 0.
    const Tol tol = {1e-5, 1e-5};
    for (int64_t ci = 0; ci < COUNTOF(attention_cases); ci++) {
        const AttentionCase *ac = &attention_cases[ci];
        AttentionRun ar = attention_run(be, ac, false);
        float *out = dev_poison(be, ar.nout), *lse = dev_poison(be, ar.nlse);
        be->attention(out, lse, ar.q, ar.k, ar.v, attention_ld(ac), ac->b, ac->t, ac->heads,
                      ac->d, ar.scale);
        expect_dev(be, out, ar.out, ar.nout, tol, "attention %s: out", describe_attention(ac));
        expect_dev(be, lse, ar.lse, ar.nlse, tol, "attention %s: lse", describe_attention(ac));
    }
}

KERNEL_TEST(attention_backward) {
    // GEMM-like sums over t and d of products of the forward's own roundings: rtol 1e-4,
    // atol 1e-5 for gradients near 0. dq, dk, dv share one poisoned buffer in the qkv layout,
    // so every element of all three must be written.
    for (int64_t ci = 0; ci < COUNTOF(attention_cases); ci++) {
        const AttentionCase *ac = &attention_cases[ci];
        AttentionRun ar = attention_run(be, ac, true);
        float *dqkv = dev_poison(be, ar.nqkv);
        be->attention_backward(dqkv + attention_part(ac, 0), dqkv + attention_part(ac, 1),
                               dqkv + attention_part(ac, 2), dev_upload(be, ar.dout, ar.nout),
                               dev_upload(be, ar.out, ar.nout), dev_upload(be, ar.lse, ar.nlse),
                               ar.q, ar.k, ar.v, attention_ld(ac), ac->b, ac->t, ac->heads, ac->d,
                               ar.scale);
        expect_dev(be, dqkv, ar.dqkv, ar.nqkv, (Tol){1e-5, 1e-4},
                   "attention_backward %s: dq, dk, dv", describe_attention(ac));
    }
}

// ---- optimiser ----------------------------------------------------------------------------

// p, g, m, v (n): one AdamW step on float state, each element computed in double
static void ref_adamw(float *p, const float *g, float *m, float *v, int64_t n,
                      const AdamWStep *s) {
    for (int64_t i = 0; i < n; i++) {
        double grad = (double)g[i] * s->grad_scale;
        double mi = s->beta1 * (double)m[i] + (1 - (double)s->beta1) * grad;
        double vi = s->beta2 * (double)v[i] + (1 - (double)s->beta2) * grad * grad;
        double update = (mi / s->bias_correction1) / (sqrt(vi / s->bias_correction2) + s->eps);
        p[i] = (float)(p[i] - (double)s->lr * s->weight_decay * p[i] - s->lr * update);
        m[i] = (float)mi;
        v[i] = (float)vi;
    }
}

KERNEL_TEST(adamw) {
    // A handful of float operations per element and step, against double arithmetic on the
    // same float state, over 3 steps: p rtol 1e-6 (the update is 1e-2 of p); m rtol 1e-5
    // with atol 1e-7 (1e-6 of the summed terms beta1 m ~ 0.1) where they cancel; v rtol 1e-5
    // (a sum of squares, no cancellation).
    static const char *const grad_labels[3] = {"adamw g step 1", "adamw g step 2",
                                               "adamw g step 3"};
    static const int64_t sizes[] = {1031, LARGE};
    for (int64_t si = 0; si < COUNTOF(sizes); si++) {
        int64_t n = sizes[si];
        float *p = host_random(n, "adamw p", -1, 1), *m = host_floats(n), *v = host_floats(n);
        float *p_dev = dev_upload(be, p, n), *m_dev = dev_upload(be, m, n);
        float *v_dev = dev_upload(be, v, n);
        for (int step = 1; step <= 3; step++) {
            const float *g = host_random(n, grad_labels[step - 1], -1, 1);
            AdamWStep s = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                           .weight_decay = 0.1f, .bias_correction1 = 1 - powf(0.9f, (float)step),
                           .bias_correction2 = 1 - powf(0.999f, (float)step),
                           .grad_scale = step == 2 ? 0.5f : 1.0f};
            be->adamw(p_dev, dev_upload(be, g, n), m_dev, v_dev, n, &s);
            ref_adamw(p, g, m, v, n, &s);
            expect_dev(be, p_dev, p, n, (Tol){1e-7, 1e-6}, "adamw n=%lld step %d: p",
                       (long long)n, step);
            expect_dev(be, m_dev, m, n, (Tol){1e-7, 1e-5}, "adamw n=%lld step %d: m",
                       (long long)n, step);
            expect_dev(be, v_dev, v, n, (Tol){0, 1e-5}, "adamw n=%lld step %d: v", (long long)n,
                       step);
        }
    }
}

// ---- the suite ------------------------------------------------------------------------------

int main(void) {
    // One TCase per kernel family, one test per kernel.
    enum { FAMILY_MAX = 8 };
    const struct {
        const char *name;
        const TTest *tests[FAMILY_MAX]; // NULL-terminated when shorter
    } families[] = {
        {"memory and random numbers", {test_memory, test_fill, test_rng_uniform, test_rng_normal}},
        {"data movement", {test_copy_strided}},
        {"elementwise", {test_binary, test_binary_backward, test_unary, test_unary_backward,
                         test_scalar, test_scalar_backward}},
        {"reductions", {test_reduce, test_reduce_max_backward, test_sum_squares}},
        {"matmul", {test_matmul}},
        {"softmax and losses", {test_softmax, test_softmax_backward, test_cross_entropy,
                                test_cross_entropy_backward, test_squared_error,
                                test_squared_error_backward}},
        {"normalisation", {test_layernorm, test_layernorm_backward, test_groupnorm,
                           test_groupnorm_backward}},
        {"convolution, resampling, gather", {test_im2col, test_col2im, test_upsample_nearest,
                                             test_upsample_nearest_backward, test_avgpool,
                                             test_avgpool_backward, test_embedding,
                                             test_embedding_backward}},
        {"attention", {test_attention, test_attention_backward}},
        {"optimiser", {test_adamw}},
    };
    Suite *s = suite_create("kernels");
    for (int64_t f = 0; f < COUNTOF(families); f++) {
        TCase *tc = tcase_create(families[f].name);
        for (int i = 0; i < FAMILY_MAX && families[f].tests[i]; i++)
            tcase_add_test(tc, families[f].tests[i]);
        suite_add_tcase(s, tc);
    }
    return test_run_suite(s);
}
