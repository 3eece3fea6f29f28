// Elementwise kernels: binary ops with broadcasting, unary ops, ops with a scalar, and the
// backward of each. The formulas are the CPU backend's (kernels/cpu/elementwise.c), with
// the device's libm (expf, logf, tanhf: within 2 ulp) in place of its fast polynomials.
//
// Each op is a template argument, so every op compiles to its own straight loop. Flat
// ops (and binary ops whose inputs turn out contiguous once broadcast dims are merged) run
// through the vectorised map loop (map.cuh); a real broadcast walks its merged dims with one
// division per dim and element, in 32-bit arithmetic where the offsets allow.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/map.cuh"

// ---- the formulas ------------------------------------------------------------------------

#define GELU_K 0.7978845608028654f // sqrt(2 / pi)
#define GELU_C 0.044715f

// -2u for GELU's u = sqrt(2 / pi) (x + 0.044715 x^3)
static __device__ __forceinline__ float gelu_minus_2u(float x) {
    return (-2.0f * GELU_K) * x * fmaf(GELU_C, x * x, 1.0f);
}

static __device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

template <UnaryOp OP> static __device__ __forceinline__ float unary_apply(float x) {
    switch (OP) {
    case UNARY_EXP: return expf(x);
    case UNARY_LOG: return logf(x);
    case UNARY_SQRT: return sqrtf(x);
    case UNARY_TANH: return tanhf(x);
    case UNARY_SIGMOID: return sigmoid(x);
    case UNARY_RELU: return x < 0.0f ? 0.0f : x; // NaN stays NaN
    case UNARY_SILU: return x * sigmoid(x);
    // 0.5 x (1 + tanh(u)) as x sigmoid(2u): no cancellation in 1 + tanh(u) for x << 0
    case UNARY_GELU_TANH: return x / (1.0f + expf(gelu_minus_2u(x)));
    case UNARY_SQUARE: return x * x;
    case UNARY_NEG: return -x;
    case UNARY_ABS: return fabsf(x);
    default: return 0.0f; // not reached: every op is dispatched below
    }
}

// The ops whose derivative is read from y = f(x); every other op reads x.
static constexpr bool unary_grad_from_y(UnaryOp op) {
    return op == UNARY_EXP || op == UNARY_SQRT || op == UNARY_TANH || op == UNARY_SIGMOID;
}

// f'(x) from v = y = f(x) for the ops above, else from v = x
template <UnaryOp OP> static __device__ __forceinline__ float unary_derivative(float v) {
    switch (OP) {
    case UNARY_EXP: return v;
    case UNARY_LOG: return 1.0f / v;
    case UNARY_SQRT: return 0.5f / v;
    case UNARY_TANH: return 1.0f - v * v;
    case UNARY_SIGMOID: return v * (1.0f - v);
    case UNARY_RELU: return v > 0.0f ? 1.0f : 0.0f;
    case UNARY_SILU: {
        float s = sigmoid(v);
        return s * (1.0f + v * (1.0f - s));
    }
    case UNARY_GELU_TANH: {
        // s + 2 x s (1 - s) du/dx with s = sigmoid(2u)
        float e = expf(gelu_minus_2u(v));
        float s = 1.0f / (1.0f + e);
        float one_minus_s = s < 0.5f ? 1.0f - s : e * s; // no cancellation when s is near 1
        // the second term vanishes for |x| > 10; the clamp keeps x^3 from overflowing
        float xc = v > 20.0f ? 20.0f : (v < -20.0f ? -20.0f : v);
        float du_dx = GELU_K * fmaf(3.0f * GELU_C, xc * xc, 1.0f);
        return fmaf(2.0f * xc * s, one_minus_s * du_dx, s);
    }
    case UNARY_SQUARE: return 2.0f * v;
    case UNARY_NEG: return -1.0f;
    case UNARY_ABS: return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f);
    default: return 0.0f;
    }
}

template <ScalarOp OP> static __device__ __forceinline__ float scalar_apply(float x, float s) {
    switch (OP) {
    case SCALAR_ADD: return x + s;
    case SCALAR_MUL: return x * s;
    case SCALAR_POW: return powf(x, s);
    case SCALAR_MAX: return x < s ? s : x; // NaN x stays NaN, as in torch.clamp
    case SCALAR_MIN: return x > s ? s : x;
    default: return 0.0f;
    }
}

// d(x op s)/dx
template <ScalarOp OP> static __device__ __forceinline__ float scalar_derivative(float x, float s) {
    switch (OP) {
    case SCALAR_ADD: return 1.0f;
    case SCALAR_MUL: return s;
    case SCALAR_POW: return s == 0.0f ? 0.0f : s * powf(x, s - 1.0f); // x^0: 0, even at x = 0
    case SCALAR_MAX: return x >= s ? 1.0f : 0.0f;
    case SCALAR_MIN: return x <= s ? 1.0f : 0.0f;
    default: return 0.0f;
    }
}

template <BinaryOp OP> static __device__ __forceinline__ float binary_apply(float a, float b) {
    switch (OP) {
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
template <BinaryOp OP>
static __device__ __forceinline__ void binary_derivatives(float a, float b, float dy, float *da,
                                                          float *db) {
    switch (OP) {
    case BINARY_ADD: *da = dy, *db = dy; break;
    case BINARY_SUB: *da = dy, *db = -dy; break;
    case BINARY_MUL: *da = dy * b, *db = dy * a; break;
    case BINARY_DIV: *da = dy / b, *db = -(dy / b) * (a / b); break; // b^2 could underflow
    case BINARY_MAX: *da = a >= b ? dy : 0.0f, *db = a >= b ? 0.0f : dy; break;
    case BINARY_MIN: *da = a <= b ? dy : 0.0f, *db = a <= b ? 0.0f : dy; break;
    default: *da = 0.0f, *db = 0.0f; break;
    }
}

#define FOR_EACH_UNARY_OP(X)                                                                  \
    X(UNARY_EXP) X(UNARY_LOG) X(UNARY_SQRT) X(UNARY_TANH) X(UNARY_SIGMOID) X(UNARY_RELU)      \
    X(UNARY_SILU) X(UNARY_GELU_TANH) X(UNARY_SQUARE) X(UNARY_NEG) X(UNARY_ABS)
#define FOR_EACH_SCALAR_OP(X) X(SCALAR_ADD) X(SCALAR_MUL) X(SCALAR_POW) X(SCALAR_MAX) X(SCALAR_MIN)
#define FOR_EACH_BINARY_OP(X) \
    X(BINARY_ADD) X(BINARY_SUB) X(BINARY_MUL) X(BINARY_DIV) X(BINARY_MAX) X(BINARY_MIN)

// ---- unary and scalar ops: the map loop ---------------------------------------------------------

template <UnaryOp OP> struct UnaryForward {
    __device__ void operator()(const float *x, float *y) const { y[0] = unary_apply<OP>(x[0]); }
};
// in: (x or y, dy) -> dx
template <UnaryOp OP> struct UnaryBackward {
    __device__ void operator()(const float *in, float *dx) const {
        dx[0] = in[1] * unary_derivative<OP>(in[0]);
    }
};
template <ScalarOp OP> struct ScalarForward {
    float s;
    __device__ void operator()(const float *x, float *y) const { y[0] = scalar_apply<OP>(x[0], s); }
};
// in: (x, dy) -> dx
template <ScalarOp OP> struct ScalarBackward {
    float s;
    __device__ void operator()(const float *in, float *dx) const {
        dx[0] = in[1] * scalar_derivative<OP>(in[0], s);
    }
};

// y (n) = f(x)
void cuda_unary(const Backend *be, UnaryOp op, float *y, const float *x, int64_t n) {
    MapArgs<1, 1> args = {{x}, {y}};
    switch (op) {
#define CASE(OP) case OP: launch_map(be, args, UnaryForward<OP>(), n); break;
        FOR_EACH_UNARY_OP(CASE)
#undef CASE
    default: DMDR_FATAL("unary op %d out of range", (int)op);
    }
}

// x, y = f(x), dy (n) -> dx (n) = dy f'(x); y may be NULL for ops that do not read it
void cuda_unary_backward(const Backend *be, UnaryOp op, float *dx, const float *x, const float *y,
                         const float *dy, int64_t n) {
    switch (op) {
#define CASE(OP)                                                                        \
    case OP: {                                                                          \
        DMDR_CHECK(!unary_grad_from_y(OP) || y != NULL, "unary op %d needs y = f(x)", (int)op); \
        MapArgs<2, 1> args = {{unary_grad_from_y(OP) ? y : x, dy}, {dx}};               \
        launch_map(be, args, UnaryBackward<OP>(), n);                                   \
        break;                                                                          \
    }
        FOR_EACH_UNARY_OP(CASE)
#undef CASE
    default: DMDR_FATAL("unary op %d out of range", (int)op);
    }
}

// x (n) -> y (n) = x op s
void cuda_scalar(const Backend *be, ScalarOp op, float *y, const float *x, float s, int64_t n) {
    if (op == SCALAR_POW && s == 2.0f) { // exact, and much cheaper than powf
        cuda_unary(be, UNARY_SQUARE, y, x, n);
        return;
    }
    MapArgs<1, 1> args = {{x}, {y}};
    switch (op) {
#define CASE(OP) case OP: launch_map(be, args, ScalarForward<OP>{s}, n); break;
        FOR_EACH_SCALAR_OP(CASE)
#undef CASE
    default: DMDR_FATAL("scalar op %d out of range", (int)op);
    }
}

// x, dy (n) -> dx (n) = dy d(x op s)/dx
void cuda_scalar_backward(const Backend *be, ScalarOp op, float *dx, const float *x, float s,
                          const float *dy, int64_t n) {
    if (op == SCALAR_POW && s == 2.0f) {
        cuda_unary_backward(be, UNARY_SQUARE, dx, x, nullptr, dy, n);
        return;
    }
    MapArgs<2, 1> args = {{x, dy}, {dx}};
    switch (op) {
#define CASE(OP) case OP: launch_map(be, args, ScalarBackward<OP>{s}, n); break;
        FOR_EACH_SCALAR_OP(CASE)
#undef CASE
    default: DMDR_FATAL("scalar op %d out of range", (int)op);
    }
}

// ---- binary ops ---------------------------------------------------------------------------------

// Contiguous inputs: the map loop. in: (a, b) -> y; backward in: (a, b, dy) -> the wanted
// outputs, OUTPUTS bit 0 da, bit 1 db (in that order).
template <BinaryOp OP> struct BinaryForward {
    __device__ void operator()(const float *in, float *y) const {
        y[0] = binary_apply<OP>(in[0], in[1]);
    }
};
template <BinaryOp OP, int OUTPUTS> struct BinaryBackward {
    __device__ void operator()(const float *in, float *out) const {
        float da, db;
        binary_derivatives<OP>(in[0], in[1], in[2], &da, &db);
        if (OUTPUTS & 1) out[0] = da;
        if (OUTPUTS & 2) out[OUTPUTS & 1] = db;
    }
};

// A real broadcast: a and b read through the merged strides (m.stride[0] for a, [1] for b).
// Forward writes y; backward writes da and db where they are not NULL.
template <BinaryOp OP, bool BACKWARD, typename I>
__global__ void broadcast_kernel(MergedDims m, int64_t n, float *y, float *da, float *db,
                                 const float *a, const float *b, const float *dy) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        I ao, bo;
        merged_offsets_of(m, (I)i, &ao, &bo);
        if (BACKWARD) {
            float ga, gb;
            binary_derivatives<OP>(a[ao], b[bo], dy[i], &ga, &gb);
            if (da) da[i] = ga;
            if (db) db[i] = gb;
        } else {
            y[i] = binary_apply<OP>(a[ao], b[bo]);
        }
    }
}

template <BinaryOp OP, bool BACKWARD>
static void launch_broadcast(const Backend *be, const MergedDims &m, int64_t n, float *y, float *da,
                             float *db, const float *a, const float *b, const float *dy) {
    unsigned grid = grid_for(be, n, THREADS);
    if (merged_fits_32(&m, n))
        KERNEL_LAUNCH(be, grid, THREADS, 0, broadcast_kernel<OP, BACKWARD, uint32_t>)(
            m, n, y, da, db, a, b, dy);
    else
        KERNEL_LAUNCH(be, grid, THREADS, 0, broadcast_kernel<OP, BACKWARD, int64_t>)(
            m, n, y, da, db, a, b, dy);
    CUDA_LAUNCH_CHECK(be);
}

// The broadcast merged (a's strides in stride[0], b's in stride[1]) and its element count;
// *contiguous when both inputs are plain arrays of the output's shape.
static MergedDims merge_broadcast(const Broadcast *bc, int64_t *n, bool *contiguous) {
    MergedDims m = merge_dims(bc->shape, bc->a_stride, bc->b_stride);
    *n = merged_numel(&m);
    *contiguous = merged_contiguous(&m);
    return m;
}

template <BinaryOp OP>
static void binary_forward(const Backend *be, float *y, const float *a, const float *b,
                           const Broadcast *bc) {
    int64_t n;
    bool contiguous;
    MergedDims m = merge_broadcast(bc, &n, &contiguous);
    if (n == 0) return;
    if (contiguous) {
        MapArgs<2, 1> args = {{a, b}, {y}};
        launch_map(be, args, BinaryForward<OP>(), n);
    } else {
        launch_broadcast<OP, false>(be, m, n, y, nullptr, nullptr, a, b, nullptr);
    }
}

template <BinaryOp OP>
static void binary_backward(const Backend *be, float *da, float *db, const float *a, const float *b,
                            const float *dy, const Broadcast *bc) {
    int64_t n;
    bool contiguous;
    MergedDims m = merge_broadcast(bc, &n, &contiguous);
    if (n == 0 || (!da && !db)) return;
    if (!contiguous) {
        launch_broadcast<OP, true>(be, m, n, nullptr, da, db, a, b, dy);
    } else if (da && db) {
        MapArgs<3, 2> args = {{a, b, dy}, {da, db}};
        launch_map(be, args, BinaryBackward<OP, 3>(), n);
    } else {
        MapArgs<3, 1> args = {{a, b, dy}, {da ? da : db}};
        if (da) launch_map(be, args, BinaryBackward<OP, 1>(), n);
        else launch_map(be, args, BinaryBackward<OP, 2>(), n);
    }
}

// a (bc.a_stride), b (bc.b_stride) -> y (bc.shape) = a op b
void cuda_binary(const Backend *be, BinaryOp op, float *y, const float *a, const float *b,
                 const Broadcast *bc) {
    switch (op) {
#define CASE(OP) case OP: binary_forward<OP>(be, y, a, b, bc); break;
        FOR_EACH_BINARY_OP(CASE)
#undef CASE
    default: DMDR_FATAL("binary op %d out of range", (int)op);
    }
}

// a, b (broadcast as in bc), dy (bc.shape) -> da, db (bc.shape, either may be NULL)
void cuda_binary_backward(const Backend *be, BinaryOp op, float *da, float *db, const float *a,
                          const float *b, const float *dy, const Broadcast *bc) {
    switch (op) {
#define CASE(OP) case OP: binary_backward<OP>(be, da, db, a, b, dy, bc); break;
        FOR_EACH_BINARY_OP(CASE)
#undef CASE
    default: DMDR_FATAL("binary op %d out of range", (int)op);
    }
}
