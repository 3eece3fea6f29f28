// Elementwise kernels: binary ops with broadcasting, unary ops, ops with a scalar, and the
// backward of each.
//
// How the loops get fast: each op's per-element formula is an inline function switching on
// the op. The switch over ops is taken once per block of elements (see the *_block
// functions), and every case calls an always-inline loop with the op as a compile-time
// constant, so the switch folds away and each op compiles to its own straight vector loop.
// Broadcasting is handled outside the vector loops: the broadcast is first merged into as few
// dims as possible, then walked one row (the last merged dim) at a time, with separate loops
// for the strides that matter: both inputs contiguous, or one of them a repeated scalar.
#include <math.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/fastmath.h"
#include "kernels/layout.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

// Work is cut into blocks of this many output elements, each run by one thread: long enough
// to amortise the dispatch, short enough to split a modest tensor evenly across threads.
#define BLOCK 8192
// Below this many elements everything runs on the calling thread: forking costs more.
#define PARALLEL_MIN 32768

// fn(job, begin, end) over [0, n) in blocks, in parallel when n is large enough.
typedef void (*BlockFn)(const void *job, int64_t begin, int64_t end);

static void for_each_block(int64_t n, BlockFn fn, const void *job) {
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t i = 0; i < blocks; i++) {
        int64_t begin = i * BLOCK;
        fn(job, begin, begin + BLOCK < n ? begin + BLOCK : n);
    }
}

// ---- the formulas ------------------------------------------------------------------------

#define GELU_K 0.7978845608028654f // sqrt(2 / pi)
#define GELU_C 0.044715f

// -2u for GELU's u = sqrt(2 / pi) (x + 0.044715 x^3)
static inline float gelu_minus_2u(float x) {
    return (-2.0f * GELU_K) * x * fastmath_fma(GELU_C, x * x, 1.0f);
}

// 0.5 x (1 + tanh(u)) written as x sigmoid(2u): the same function, but without the
// cancellation in 1 + tanh(u) for negative x.
static inline float gelu_tanh(float x) {
    return x / (1.0f + fast_expf_ftz(gelu_minus_2u(x)));
}

// s + 2 x s (1 - s) du/dx with s = sigmoid(2u) = (1 + tanh u) / 2
static inline float gelu_tanh_derivative(float x) {
    float e = fast_expf_ftz(gelu_minus_2u(x));
    float s = 1.0f / (1.0f + e);
    // 1 - s without cancellation when s is near 1 (e <= 1 there, so e s stays finite)
    float one_minus_s = s < 0.5f ? 1.0f - s : e * s;
    // The second term vanishes for |x| > 10; clamping keeps x^3 from overflowing into
    // inf * 0 for huge |x|.
    float xc = x > 20.0f ? 20.0f : (x < -20.0f ? -20.0f : x);
    float du_dx = GELU_K * fastmath_fma(3.0f * GELU_C, xc * xc, 1.0f);
    return fastmath_fma(2.0f * xc * s, one_minus_s * du_dx, s);
}

static ALWAYS_INLINE float unary_apply(UnaryOp op, float x) {
    switch (op) {
    case UNARY_EXP: return fast_expf(x);
    case UNARY_LOG: return logf(x);
    case UNARY_SQRT: return fast_sqrtf(x);
    case UNARY_TANH: return fast_tanhf(x);
    case UNARY_SIGMOID: return fast_sigmoidf(x);
    case UNARY_RELU: return x < 0.0f ? 0.0f : x; // NaN stays NaN
    case UNARY_SILU: return x * fast_sigmoidf(x);
    case UNARY_GELU_TANH: return gelu_tanh(x);
    case UNARY_SQUARE: return x * x;
    case UNARY_NEG: return -x;
    case UNARY_ABS: return fabsf(x);
    default: return 0.0f; // not reached: every op is dispatched below
    }
}

// The ops whose derivative is read from y = f(x) rather than recomputed from x.
static bool unary_derivative_uses_y(UnaryOp op) {
    return op == UNARY_EXP || op == UNARY_SQRT || op == UNARY_TANH || op == UNARY_SIGMOID;
}

// f'(x), from x or y = f(x)
static ALWAYS_INLINE float unary_derivative(UnaryOp op, float x, float y) {
    switch (op) {
    case UNARY_EXP: return y;
    case UNARY_LOG: return 1.0f / x;
    case UNARY_SQRT: return 0.5f / y;
    case UNARY_TANH: return 1.0f - y * y;
    case UNARY_SIGMOID: return y * (1.0f - y);
    case UNARY_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case UNARY_SILU: {
        float s = fast_sigmoidf(x);
        return s * (1.0f + x * (1.0f - s));
    }
    case UNARY_GELU_TANH: return gelu_tanh_derivative(x);
    case UNARY_SQUARE: return 2.0f * x;
    case UNARY_NEG: return -1.0f;
    case UNARY_ABS: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    default: return 0.0f;
    }
}

static ALWAYS_INLINE float scalar_apply(ScalarOp op, float x, float s) {
    switch (op) {
    case SCALAR_ADD: return x + s;
    case SCALAR_MUL: return x * s;
    case SCALAR_POW: return powf(x, s);
    case SCALAR_MAX: return x < s ? s : x; // NaN x stays NaN, as in torch.clamp
    case SCALAR_MIN: return x > s ? s : x;
    default: return 0.0f;
    }
}

// d(x op s)/dx
static ALWAYS_INLINE float scalar_derivative(ScalarOp op, float x, float s) {
    switch (op) {
    case SCALAR_ADD: return 1.0f;
    case SCALAR_MUL: return s;
    case SCALAR_POW: return s == 0.0f ? 0.0f : s * powf(x, s - 1.0f); // x^0: 0, even at x = 0
    case SCALAR_MAX: return x >= s ? 1.0f : 0.0f;
    case SCALAR_MIN: return x <= s ? 1.0f : 0.0f;
    default: return 0.0f;
    }
}

static ALWAYS_INLINE float binary_apply(BinaryOp op, float a, float b) {
    switch (op) {
    case BINARY_ADD: return a + b;
    case BINARY_SUB: return a - b;
    case BINARY_MUL: return a * b;
    case BINARY_DIV: return a / b;
    case BINARY_MAX: return a >= b || isnan(a) ? a : b; // a NaN on either side wins, as in torch
    case BINARY_MIN: return a <= b || isnan(a) ? a : b;
    default: return 0.0f;
    }
}

// *da, *db = dy * d(a op b)/da, dy * d(a op b)/db; ties of max/min go to a.
static ALWAYS_INLINE void binary_derivatives(BinaryOp op, float a, float b, float dy, float *da,
                                             float *db) {
    switch (op) {
    case BINARY_ADD: *da = dy, *db = dy; break;
    case BINARY_SUB: *da = dy, *db = -dy; break;
    case BINARY_MUL: *da = dy * b, *db = dy * a; break;
    case BINARY_DIV: *da = dy / b, *db = -(dy / b) * (a / b); break; // b^2 could underflow
    case BINARY_MAX: *da = a >= b ? dy : 0.0f, *db = a >= b ? 0.0f : dy; break;
    case BINARY_MIN: *da = a <= b ? dy : 0.0f, *db = a <= b ? 0.0f : dy; break;
    default: *da = 0.0f, *db = 0.0f; break;
    }
}

// ---- unary and scalar ops: flat loops ------------------------------------------------------

// One job type for the four flat kernels: y[i] = f(x[i]) forward, or y[i] = dy[i] f'(x[i])
// backward (fx = f(x) for the unary derivatives that read it).
typedef struct {
    int op; // UnaryOp or ScalarOp
    bool backward;
    float *y;
    const float *x, *fx, *dy;
    float s;
} FlatJob;

static ALWAYS_INLINE void unary_loop(UnaryOp op, bool backward, float *y, const float *x,
                                     const float *fx, const float *dy, int64_t n) {
    if (backward) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = dy[i] * unary_derivative(op, x[i], fx[i]);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = unary_apply(op, x[i]);
    }
}

static ALWAYS_INLINE void scalar_loop(ScalarOp op, bool backward, float *y, const float *x,
                                      float s, const float *dy, int64_t n) {
    if (backward) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = dy[i] * scalar_derivative(op, x[i], s);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = scalar_apply(op, x[i], s);
    }
}

#define FOR_EACH_UNARY_OP(X)                                                                  \
    X(UNARY_EXP) X(UNARY_LOG) X(UNARY_SQRT) X(UNARY_TANH) X(UNARY_SIGMOID) X(UNARY_RELU)      \
    X(UNARY_SILU) X(UNARY_GELU_TANH) X(UNARY_SQUARE) X(UNARY_NEG) X(UNARY_ABS)
#define FOR_EACH_SCALAR_OP(X) X(SCALAR_ADD) X(SCALAR_MUL) X(SCALAR_POW) X(SCALAR_MAX) X(SCALAR_MIN)
#define FOR_EACH_BINARY_OP(X) \
    X(BINARY_ADD) X(BINARY_SUB) X(BINARY_MUL) X(BINARY_DIV) X(BINARY_MAX) X(BINARY_MIN)

static void unary_block(const void *job_, int64_t begin, int64_t end) {
    const FlatJob *job = job_;
    float *y = job->y + begin;
    const float *x = job->x + begin, *fx = job->fx + begin;
    const float *dy = job->backward ? job->dy + begin : NULL;
    switch ((UnaryOp)job->op) {
#define CASE(OP) case OP: unary_loop(OP, job->backward, y, x, fx, dy, end - begin); break;
        FOR_EACH_UNARY_OP(CASE)
#undef CASE
    default: DMDR_FATAL("unary op %d out of range", job->op);
    }
}

static void scalar_block(const void *job_, int64_t begin, int64_t end) {
    const FlatJob *job = job_;
    float *y = job->y + begin;
    const float *x = job->x + begin;
    const float *dy = job->backward ? job->dy + begin : NULL;
    switch ((ScalarOp)job->op) {
#define CASE(OP) case OP: scalar_loop(OP, job->backward, y, x, job->s, dy, end - begin); break;
        FOR_EACH_SCALAR_OP(CASE)
#undef CASE
    default: DMDR_FATAL("scalar op %d out of range", job->op);
    }
}

// y (n) = f(x)
void cpu_unary(const Backend *be, UnaryOp op, float *y, const float *x, int64_t n) {
    (void)be;
    FlatJob job = {.op = op, .y = y, .x = x, .fx = x};
    for_each_block(n, unary_block, &job);
}

// x, y = f(x), dy (n) -> dx (n) = dy f'(x)
void cpu_unary_backward(const Backend *be, UnaryOp op, float *dx, const float *x, const float *y,
                        const float *dy, int64_t n) {
    (void)be;
    DMDR_CHECK(y != NULL || !unary_derivative_uses_y(op), "unary op %d needs y = f(x)", op);
    // ops that do not read y get x in its place, so no loop ever indexes a NULL pointer
    FlatJob job = {.op = op, .backward = true, .y = dx, .x = x, .fx = y ? y : x, .dy = dy};
    for_each_block(n, unary_block, &job);
}

// x (n) -> y (n) = x op s
void cpu_scalar(const Backend *be, ScalarOp op, float *y, const float *x, float s, int64_t n) {
    // x^2 is common (squared norms, losses) and much cheaper than powf; x * x is also exact.
    if (op == SCALAR_POW && s == 2.0f) {
        cpu_unary(be, UNARY_SQUARE, y, x, n);
        return;
    }
    FlatJob job = {.op = op, .y = y, .x = x, .s = s};
    for_each_block(n, scalar_block, &job);
}

// x, dy (n) -> dx (n) = dy d(x op s)/dx
void cpu_scalar_backward(const Backend *be, ScalarOp op, float *dx, const float *x, float s,
                         const float *dy, int64_t n) {
    if (op == SCALAR_POW && s == 2.0f) {
        cpu_unary_backward(be, UNARY_SQUARE, dx, x, NULL, dy, n);
        return;
    }
    FlatJob job = {.op = op, .backward = true, .y = dx, .x = x, .s = s, .dy = dy};
    for_each_block(n, scalar_block, &job);
}

// ---- binary ops: broadcast walk ------------------------------------------------------------

typedef struct {
    BinaryOp op;
    bool backward;
    MergedDims mb; // a in stride[0], b in stride[1] (the output is contiguous)
    float *y, *da, *db;
    const float *a, *b, *dy;
} BinaryJob;

// One row segment: y (or da, db, from dy) at [0, n) from a[i * sa], b[i * sb]. Called with
// constant strides (below), each stride pattern becomes its own loop: 1 is a contiguous
// vector load, 0 a broadcast register.
static ALWAYS_INLINE void binary_loop(BinaryOp op, bool backward, float *y, float *da, float *db,
                                      const float *a, int64_t sa, const float *b, int64_t sb,
                                      const float *dy, int64_t n) {
    if (backward) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            binary_derivatives(op, a[i * sa], b[i * sb], dy[i], &da[i], &db[i]);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = binary_apply(op, a[i * sa], b[i * sb]);
    }
}

static ALWAYS_INLINE void binary_strides(BinaryOp op, bool backward, float *y, float *da,
                                         float *db, const float *a, int64_t sa, const float *b,
                                         int64_t sb, const float *dy, int64_t n) {
    if (sa == 1 && sb == 1) binary_loop(op, backward, y, da, db, a, 1, b, 1, dy, n);
    else if (sa == 1 && sb == 0) binary_loop(op, backward, y, da, db, a, 1, b, 0, dy, n);
    else if (sa == 0 && sb == 1) binary_loop(op, backward, y, da, db, a, 0, b, 1, dy, n);
    else binary_loop(op, backward, y, da, db, a, sa, b, sb, dy, n);
}

// Output elements [begin, end): split into row segments, each run by the op's own loop.
// A backward with da or db NULL writes that one to a scratch row instead (a segment is never
// longer than a block), so the loops need no variant per missing output.
static void binary_block(const void *job_, int64_t begin, int64_t end) {
    const BinaryJob *job = job_;
    const MergedDims *mb = &job->mb;
    int last = mb->ndim - 1;
    int64_t row_len = mb->shape[last], sa = mb->stride[0][last], sb = mb->stride[1][last];
    MergedDims rows = merged_rows(mb);
    float scratch[BLOCK];
    while (begin < end) {
        int64_t row = begin / row_len, col = begin % row_len;
        int64_t n = row_len - col < end - begin ? row_len - col : end - begin;
        int64_t a_off, b_off;
        merged_offsets(&rows, row, &a_off, &b_off);
        a_off += col * sa;
        b_off += col * sb;
        float *y = job->y ? job->y + begin : NULL;
        float *da = job->da ? job->da + begin : scratch;
        float *db = job->db ? job->db + begin : scratch;
        const float *a = job->a + a_off, *b = job->b + b_off;
        const float *dy = job->dy ? job->dy + begin : NULL;
        switch (job->op) {
#define CASE(OP)                                                                      \
    case OP:                                                                          \
        if (job->backward) binary_strides(OP, true, y, da, db, a, sa, b, sb, dy, n);  \
        else binary_strides(OP, false, y, da, db, a, sa, b, sb, dy, n);               \
        break;
            FOR_EACH_BINARY_OP(CASE)
#undef CASE
        default: DMDR_FATAL("binary op %d out of range", job->op);
        }
        begin += n;
    }
}

// a (bc.a_stride), b (bc.b_stride) -> y (bc.shape) = a op b
void cpu_binary(const Backend *be, BinaryOp op, float *y, const float *a, const float *b,
                const Broadcast *bc) {
    (void)be;
    BinaryJob job = {.op = op, .mb = merge_dims(bc->shape, bc->a_stride, bc->b_stride),
                     .y = y, .a = a, .b = b};
    for_each_block(merged_numel(&job.mb), binary_block, &job);
}

// a, b (broadcast as in bc), dy (bc.shape) -> da, db (bc.shape, either may be NULL)
void cpu_binary_backward(const Backend *be, BinaryOp op, float *da, float *db, const float *a,
                         const float *b, const float *dy, const Broadcast *bc) {
    (void)be;
    if (da == NULL && db == NULL) return;
    BinaryJob job = {.op = op, .backward = true,
                     .mb = merge_dims(bc->shape, bc->a_stride, bc->b_stride),
                     .da = da, .db = db, .a = a, .b = b, .dy = dy};
    for_each_block(merged_numel(&job.mb), binary_block, &job);
}
