// Softmax and log-softmax over rows, cross-entropy, squared error, and their backwards.
//
// Every row function is max-subtracted: exp(x - max) <= 1 never overflows, and the sum it
// feeds is at least 1, so log(sum) is safe, and terms below e^-87 can count as 0
// (fast_expf_ftz: no slow subnormals). Rows are independent and run in parallel; row sums
// accumulate in double.
#include <math.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/fastmath.h"

// Below this many elements the work runs on the calling thread.
#define PARALLEL_MIN 32768

static float row_max(const float *x, int64_t n) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

// Sum of exp(x - max) over x (n). Float partial sums over short blocks (each SIMD lane adds
// a handful of terms <= 1), accumulated in double: as accurate as a double sum, but the exp
// loop stays all-float, which GCC vectorises (a double accumulator here defeats it).
static double row_exp_sum(const float *x, int64_t n, float max) {
    double sum = 0.0;
    for (int64_t begin = 0; begin < n; begin += 256) {
        int64_t end = begin + 256 < n ? begin + 256 : n;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (int64_t i = begin; i < end; i++) part += fast_expf_ftz(x[i] - max);
        sum += part;
    }
    return sum;
}

static double row_sum(const float *x, int64_t n) {
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++) sum += x[i];
    return sum;
}

static double row_dot(const float *a, const float *b, int64_t n) {
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++) sum += (double)a[i] * b[i];
    return sum;
}

// x (n) -> y (n) = softmax(x) * scale, y may be x. One pass stores the exponentials and sums
// them (in 256-long float blocks added in double, as row_exp_sum), a second scales them while
// the row is still in cache: each element costs one exp, and short rows pay for few loops.
static void row_softmax(float *y, const float *x, int64_t n, float scale) {
    float max = row_max(x, n);
    double sum = 0.0;
    for (int64_t begin = 0; begin < n; begin += 256) {
        int64_t end = begin + 256 < n ? begin + 256 : n;
        float part = 0.0f;
#pragma omp simd reduction(+ : part)
        for (int64_t i = begin; i < end; i++) {
            float e = fast_expf_ftz(x[i] - max);
            y[i] = e;
            part += e;
        }
        sum += part;
    }
    float factor = (float)(scale / sum);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] *= factor;
}

// logsumexp of x (n)
static float row_logsumexp(const float *x, int64_t n) {
    float max = row_max(x, n);
    return max + (float)log(row_exp_sum(x, n, max));
}

// x, y (rows, cols), y may be x: softmax (or log-softmax) of each row
void cpu_softmax(const Backend *be, float *y, const float *x, int64_t rows, int64_t cols,
                 bool log) {
    (void)be;
#pragma omp parallel for schedule(static) if (rows * cols > PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        if (log) {
            float lse = row_logsumexp(xr, cols);
#pragma omp simd
            for (int64_t i = 0; i < cols; i++) yr[i] = xr[i] - lse;
        } else {
            row_softmax(yr, xr, cols, 1.0f);
        }
    }
}

// y = softmax(x) (or log-softmax), dy (rows, cols) -> dx (rows, cols):
// softmax: dx = y (dy - sum(dy y)); log-softmax: dx = dy - exp(y) sum(dy).
void cpu_softmax_backward(const Backend *be, float *dx, const float *y, const float *dy,
                          int64_t rows, int64_t cols, bool log) {
    (void)be;
#pragma omp parallel for schedule(static) if (rows * cols > PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        if (log) {
            float s = (float)row_sum(dyr, cols);
#pragma omp simd
            for (int64_t i = 0; i < cols; i++) dxr[i] = dyr[i] - fast_expf_ftz(yr[i]) * s;
        } else {
            float dot = (float)row_dot(dyr, yr, cols);
#pragma omp simd
            for (int64_t i = 0; i < cols; i++) dxr[i] = yr[i] * (dyr[i] - dot);
        }
    }
}

static void check_target(int32_t target, int64_t classes) {
    DMDR_CHECK(target >= 0 && target < classes, "target %d outside [0, %lld)", (int)target,
               (long long)classes);
}

// logits (rows, classes), target (rows) -> loss (rows) = logsumexp(logits_r) - logits_r[target_r]
void cpu_cross_entropy(const Backend *be, float *loss, const float *logits, const int32_t *target,
                       int64_t rows, int64_t classes) {
    (void)be;
#pragma omp parallel for schedule(static) if (rows * classes > PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = logits + r * classes;
        check_target(target[r], classes);
        loss[r] = row_logsumexp(xr, classes) - xr[target[r]];
    }
}

// dloss (rows), logits (rows, classes), target (rows) ->
// dlogits (rows, classes) = (softmax(logits_r) - onehot(target_r)) dloss[r]
void cpu_cross_entropy_backward(const Backend *be, float *dlogits, const float *dloss,
                                const float *logits, const int32_t *target, int64_t rows,
                                int64_t classes) {
    (void)be;
#pragma omp parallel for schedule(static) if (rows * classes > PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        float *dr = dlogits + r * classes;
        check_target(target[r], classes);
        row_softmax(dr, logits + r * classes, classes, dloss[r]);
        dr[target[r]] -= dloss[r];
    }
}

// a, b (n) -> y (1) = sum((a - b)^2)
void cpu_squared_error(const Backend *be, float *y, const float *a, const float *b, int64_t n) {
    (void)be;
    double sum = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : sum) if (parallel : n > PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        sum += d * d;
    }
    y[0] = (float)sum;
}

// a, b (n), dy (1) -> da (n) = scale dy[0] (a - b), db = -da; either may be NULL
void cpu_squared_error_backward(const Backend *be, float *da, float *db, const float *dy,
                                const float *a, const float *b, float scale, int64_t n) {
    (void)be;
    const float g = scale * dy[0];
    if (da != NULL && db != NULL) {
#pragma omp parallel for simd schedule(static) if (parallel : n > PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) {
            float d = g * (a[i] - b[i]);
            da[i] = d;
            db[i] = -d;
        }
    } else if (da != NULL || db != NULL) {
        // the one wanted: da = g (a - b), or db = (-g) (a - b)
        float *out = da != NULL ? da : db;
        const float sign_g = da != NULL ? g : -g;
#pragma omp parallel for simd schedule(static) if (parallel : n > PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) out[i] = sign_g * (a[i] - b[i]);
    }
}
