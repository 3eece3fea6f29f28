// Softmax and log-softmax over rows, cross-entropy, and their backwards (the squared error
// is a sum: reduce.cu; its backward is elementwise: below). A row is owned by a warp or a
// block (group.cuh); like the CPU kernels, every row is max-subtracted, and the sums of the
// row are per-thread float partials combined in double.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/group.cuh"
#include "kernels/cuda/map.cuh"

// The maximum of row x (n) and the sum of exp(x - max) over it, in every lane of the group.
template <int GROUP>
static __device__ __forceinline__ void row_max_sum(const float *x, int64_t n, float *max,
                                                   double *sum) {
    int lane = group_lane<GROUP>(), size = group_size<GROUP>();
    float m = -INFINITY;
    for (int64_t j = lane; j < n; j += size) m = x[j] > m ? x[j] : m;
    m = group_reduce<GROUP>(m, MaxOp());
    float part = 0.0f;
    for (int64_t j = lane; j < n; j += size) part += expf(x[j] - m);
    *sum = group_reduce<GROUP>((double)part, SumOp());
    *max = m;
}

// x, y (rows, cols), y may be x: softmax (or log-softmax) of each row
template <int GROUP>
__global__ void softmax_kernel(float *y, const float *x, int64_t rows, int64_t cols, bool log) {
    int64_t row = group_row<GROUP>();
    if (row >= rows) return;
    int lane = group_lane<GROUP>(), size = group_size<GROUP>();
    const float *xr = x + row * cols;
    float *yr = y + row * cols;
    float max;
    double sum;
    row_max_sum<GROUP>(xr, cols, &max, &sum);
    if (log) {
        float lse = max + (float)::log(sum);
        for (int64_t j = lane; j < cols; j += size) yr[j] = xr[j] - lse;
    } else {
        float factor = (float)(1.0 / sum);
        for (int64_t j = lane; j < cols; j += size) yr[j] = expf(xr[j] - max) * factor;
    }
}

// y = softmax(x) (or log-softmax), dy (rows, cols) -> dx (rows, cols):
// softmax: dx = y (dy - sum(dy y)); log-softmax: dx = dy - exp(y) sum(dy).
template <int GROUP>
__global__ void softmax_backward_kernel(float *dx, const float *y, const float *dy, int64_t rows,
                                        int64_t cols, bool log) {
    int64_t row = group_row<GROUP>();
    if (row >= rows) return;
    int lane = group_lane<GROUP>(), size = group_size<GROUP>();
    const float *yr = y + row * cols, *dyr = dy + row * cols;
    float *dxr = dx + row * cols;
    float part = 0.0f;
    for (int64_t j = lane; j < cols; j += size) part += log ? dyr[j] : dyr[j] * yr[j];
    float s = (float)group_reduce<GROUP>((double)part, SumOp());
    if (log) {
        for (int64_t j = lane; j < cols; j += size) dxr[j] = dyr[j] - expf(yr[j]) * s;
    } else {
        for (int64_t j = lane; j < cols; j += size) dxr[j] = yr[j] * (dyr[j] - s);
    }
}

// logits (rows, classes), target (rows) -> loss (rows) = logsumexp(logits_r) - logits_r[target_r]
template <int GROUP>
__global__ void cross_entropy_kernel(float *loss, const float *logits, const int32_t *target,
                                     int64_t rows, int64_t classes) {
    int64_t row = group_row<GROUP>();
    if (row >= rows) return;
    const float *xr = logits + row * classes;
    float max;
    double sum;
    row_max_sum<GROUP>(xr, classes, &max, &sum);
    if (group_lane<GROUP>() == 0) {
        int32_t t = target[row];
        DEVICE_CHECK(t >= 0 && t < classes, "cross_entropy target %d outside [0, %lld)", (int)t,
                     (long long)classes);
        loss[row] = max + (float)::log(sum) - xr[t];
    }
}

// dloss (rows), logits (rows, classes), target (rows) ->
// dlogits (rows, classes) = (softmax(logits_r) - onehot(target_r)) dloss[r]
template <int GROUP>
__global__ void cross_entropy_backward_kernel(float *dlogits, const float *dloss,
                                              const float *logits, const int32_t *target,
                                              int64_t rows, int64_t classes) {
    int64_t row = group_row<GROUP>();
    if (row >= rows) return;
    int lane = group_lane<GROUP>(), size = group_size<GROUP>();
    const float *xr = logits + row * classes;
    float *dr = dlogits + row * classes;
    int32_t t = target[row];
    DEVICE_CHECK(t >= 0 && t < classes, "cross_entropy target %d outside [0, %lld)", (int)t,
                 (long long)classes);
    float max;
    double sum;
    row_max_sum<GROUP>(xr, classes, &max, &sum);
    float scale = dloss[row], factor = (float)(scale / sum);
    for (int64_t j = lane; j < classes; j += size) {
        float v = expf(xr[j] - max) * factor;
        dr[j] = j == t ? v - scale : v;
    }
}

// x (rows, cols) -> y (rows, cols), y may be x
void cuda_softmax(const Backend *be, float *y, const float *x, int64_t rows, int64_t cols,
                  bool log) {
    LAUNCH_ROWS(be, rows, cols, softmax_kernel, y, x, rows, cols, log);
}

// y, dy (rows, cols) -> dx (rows, cols)
void cuda_softmax_backward(const Backend *be, float *dx, const float *y, const float *dy,
                           int64_t rows, int64_t cols, bool log) {
    LAUNCH_ROWS(be, rows, cols, softmax_backward_kernel, dx, y, dy, rows, cols, log);
}

// logits (rows, classes), target (rows) -> loss (rows)
void cuda_cross_entropy(const Backend *be, float *loss, const float *logits, const int32_t *target,
                        int64_t rows, int64_t classes) {
    LAUNCH_ROWS(be, rows, classes, cross_entropy_kernel, loss, logits, target, rows, classes);
}

// dloss (rows), logits (rows, classes), target (rows) -> dlogits (rows, classes)
void cuda_cross_entropy_backward(const Backend *be, float *dlogits, const float *dloss,
                                 const float *logits, const int32_t *target, int64_t rows,
                                 int64_t classes) {
    LAUNCH_ROWS(be, rows, classes, cross_entropy_backward_kernel, dlogits, dloss, logits, target,
                rows, classes);
}

// ---- squared error backward ----------------------------------------------------------------

// in: (a, b) -> da = g (a - b) and/or db = -g (a - b), g = scale * dy[0] read on the device.
// OUTPUTS: bit 0 da, bit 1 db.
template <int OUTPUTS> struct SquaredErrorBackward {
    const float *dy;
    float scale;
    __device__ void operator()(const float *in, float *out) const {
        float g = scale * dy[0];
        if (OUTPUTS == 3) {
            float d = g * (in[0] - in[1]);
            out[0] = d;
            out[1] = -d;
        } else {
            out[0] = (OUTPUTS == 1 ? g : -g) * (in[0] - in[1]);
        }
    }
};

// a, b (n), dy (1) -> da (n) = scale dy[0] (a - b), db = -da; either may be NULL
void cuda_squared_error_backward(const Backend *be, float *da, float *db, const float *dy,
                                 const float *a, const float *b, float scale, int64_t n) {
    if (da && db) {
        MapArgs<2, 2> args = {{a, b}, {da, db}};
        launch_map(be, args, SquaredErrorBackward<3>{dy, scale}, n);
    } else if (da) {
        MapArgs<2, 1> args = {{a, b}, {da}};
        launch_map(be, args, SquaredErrorBackward<1>{dy, scale}, n);
    } else if (db) {
        MapArgs<2, 1> args = {{a, b}, {db}};
        launch_map(be, args, SquaredErrorBackward<2>{dy, scale}, n);
    }
}
