// Convolution lowering (im2col and its adjoint col2im), nearest upsampling, average pooling
// and embedding lookup, forward and backward. One thread per output element, each decoding
// its index (in 32-bit arithmetic when the tensor allows). col2im and the window sums are
// gathers: each output sums its own inputs in the CPU kernels' order, so they need no
// atomics; only the embedding backward, whose rows may repeat anywhere in the index list,
// scatters with atomicAdd.
#include "kernels/cuda/common.cuh"

// Launches kernel<I>(args..., total) on be's stream over `total` elements: I is uint32_t when
// every index fits in 31 bits.
#define LAUNCH_ELEMENTS(be, total, kernel, ...)                                          \
    do {                                                                                 \
        int64_t total_ = (total);                                                        \
        if (total_ <= 0) break;                                                          \
        unsigned grid_ = grid_for(be, total_, THREADS);                                  \
        if (total_ <= INT32_MAX)                                                         \
            KERNEL_LAUNCH(be, grid_, THREADS, 0, kernel<uint32_t>)(__VA_ARGS__, total_); \
        else                                                                             \
            KERNEL_LAUNCH(be, grid_, THREADS, 0, kernel<int64_t>)(__VA_ARGS__, total_);  \
        CUDA_LAUNCH_CHECK(be);                                                           \
    } while (0)

// x (n, c, h, w) -> col (c kh kw, n oh ow): element (row (ci, ky, kx), column (img, oy, ox))
template <typename I>
__global__ void im2col_kernel(float *col, const float *x, ConvGeometry g, int64_t n,
                              int64_t total) {
    I plane = (I)(g.oh * g.ow), columns = (I)n * plane, taps = (I)(g.kh * g.kw);
    for (int64_t i = global_thread(); i < total; i += grid_threads()) {
        I row = (I)i / columns, column = (I)i % columns;
        I img = column / plane, pixel = column % plane;
        I ci = row / taps, tap = row % taps;
        int64_t iy = (int64_t)(pixel / (I)g.ow) * g.stride - g.pad + (int64_t)(tap / (I)g.kw);
        int64_t ix = (int64_t)(pixel % (I)g.ow) * g.stride - g.pad + (int64_t)(tap % (I)g.kw);
        bool inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
        col[i] = inside ? x[(((int64_t)img * g.c + ci) * g.h + iy) * g.w + ix] : 0.0f;
    }
}

// col (c kh kw, n oh ow) -> dx (n, c, h, w): each pixel sums the patch entries that read
// it, taps in (ky, kx) order
template <typename I>
__global__ void col2im_kernel(float *dx, const float *col, ConvGeometry g, int64_t n,
                              int64_t total) {
    int64_t plane = g.oh * g.ow, columns = n * plane;
    for (int64_t i = global_thread(); i < total; i += grid_threads()) {
        I ix = (I)i % (I)g.w, rest = (I)i / (I)g.w;
        I iy = rest % (I)g.h;
        rest /= (I)g.h;
        I ci = rest % (I)g.c, img = rest / (I)g.c;
        float sum = 0.0f;
        for (int64_t ky = 0; ky < g.kh; ky++) {
            int64_t ty = (int64_t)iy + g.pad - ky; // = oy * stride
            if (ty < 0 || ty % g.stride != 0 || ty / g.stride >= g.oh) continue;
            for (int64_t kx = 0; kx < g.kw; kx++) {
                int64_t tx = (int64_t)ix + g.pad - kx;
                if (tx < 0 || tx % g.stride != 0 || tx / g.stride >= g.ow) continue;
                int64_t row = ((int64_t)ci * g.kh + ky) * g.kw + kx;
                sum += col[row * columns + (int64_t)img * plane + ty / g.stride * g.ow +
                           tx / g.stride];
            }
        }
        dx[i] = sum;
    }
}

// x (n, c, h, w) -> col (c kh kw, n oh ow)
void cuda_im2col(const Backend *be, float *col, const float *x, int64_t n, const ConvGeometry *g) {
    LAUNCH_ELEMENTS(be, g->c * g->kh * g->kw * n * g->oh * g->ow, im2col_kernel, col, x, *g, n);
}

// col (c kh kw, n oh ow) -> dx (n, c, h, w)
void cuda_col2im(const Backend *be, float *dx, const float *col, int64_t n, const ConvGeometry *g) {
    LAUNCH_ELEMENTS(be, n * g->c * g->h * g->w, col2im_kernel, dx, col, *g, n);
}

// x (planes, h, w) -> y (planes, h f, w f) = scale * the nearest x: nearest upsampling, and
// the average pool's backward
template <typename I>
__global__ void spread_kernel(float *y, const float *x, int64_t h, int64_t w, int64_t f,
                              float scale, int64_t total) {
    I wf = (I)(w * f), hf = (I)(h * f);
    for (int64_t i = global_thread(); i < total; i += grid_threads()) {
        I ox = (I)i % wf, rest = (I)i / wf;
        I oy = rest % hf, p = rest / hf;
        y[i] = scale * x[((int64_t)p * h + oy / (I)f) * w + ox / (I)f];
    }
}

// x (planes, h f, w f) -> y (planes, h, w) = scale * the sum of each f x f window: average
// pooling, and the nearest upsampling's backward
template <typename I>
__global__ void window_sum_kernel(float *y, const float *x, int64_t h, int64_t w, int64_t f,
                                  float scale, int64_t total) {
    int64_t wf = w * f;
    for (int64_t i = global_thread(); i < total; i += grid_threads()) {
        I ox = (I)i % (I)w, row = (I)i / (I)w; // row: (plane, oy)
        const float *window = x + (int64_t)row * f * wf + (int64_t)ox * f;
        float sum = 0.0f;
        for (int64_t dy = 0; dy < f; dy++)
            for (int64_t dx = 0; dx < f; dx++) sum += window[dy * wf + dx];
        y[i] = scale * sum;
    }
}

// x (planes, h, w) -> y (planes, h f, w f)
void cuda_upsample_nearest(const Backend *be, float *y, const float *x, int64_t planes, int64_t h,
                           int64_t w, int64_t f) {
    LAUNCH_ELEMENTS(be, planes * h * f * w * f, spread_kernel, y, x, h, w, f, 1.0f);
}

// dy (planes, h f, w f) -> dx (planes, h, w)
void cuda_upsample_nearest_backward(const Backend *be, float *dx, const float *dy, int64_t planes,
                                    int64_t h, int64_t w, int64_t f) {
    LAUNCH_ELEMENTS(be, planes * h * w, window_sum_kernel, dx, dy, h, w, f, 1.0f);
}

// x (planes, h, w) -> y (planes, h / k, w / k)
void cuda_avgpool(const Backend *be, float *y, const float *x, int64_t planes, int64_t h, int64_t w,
                  int64_t k) {
    LAUNCH_ELEMENTS(be, planes * (h / k) * (w / k), window_sum_kernel, y, x, h / k, w / k, k,
                    1.0f / (float)(k * k));
}

// dy (planes, h / k, w / k) -> dx (planes, h, w)
void cuda_avgpool_backward(const Backend *be, float *dx, const float *dy, int64_t planes, int64_t h,
                           int64_t w, int64_t k) {
    LAUNCH_ELEMENTS(be, planes * h * w, spread_kernel, dx, dy, h / k, w / k, k,
                    1.0f / (float)(k * k));
}

// table (vocab, dim), index (n) -> y (n, dim). The table size is not passed, so only a
// negative index can be caught here (as on the CPU).
template <typename I>
__global__ void embedding_kernel(float *y, const float *table, const int32_t *index, int64_t dim,
                                 int64_t total) {
    for (int64_t i = global_thread(); i < total; i += grid_threads()) {
        int32_t row = index[(I)i / (I)dim];
        DEVICE_CHECK(row >= 0, "embedding index %d is negative", (int)row);
        y[i] = table[(int64_t)row * dim + (I)i % (I)dim];
    }
}

// dy (n, dim) -> dtable rows index[i] += dy row i, by atomics (dtable zeroed before)
template <typename I>
__global__ void embedding_backward_kernel(float *dtable, const float *dy, const int32_t *index,
                                          int64_t vocab, int64_t dim, int64_t total) {
    for (int64_t i = global_thread(); i < total; i += grid_threads()) {
        int32_t row = index[(I)i / (I)dim];
        DEVICE_CHECK(row >= 0 && row < vocab, "embedding index %d outside [0, %lld)", (int)row,
                     (long long)vocab);
        atomicAdd(&dtable[(int64_t)row * dim + (I)i % (I)dim], dy[i]);
    }
}

// table (vocab, dim), index (n) -> y (n, dim)
void cuda_embedding(const Backend *be, float *y, const float *table, const int32_t *index,
                    int64_t n, int64_t dim) {
    LAUNCH_ELEMENTS(be, n * dim, embedding_kernel, y, table, index, dim);
}

// dy (n, dim), index (n) -> dtable (vocab, dim): zeroed, then each dy row added to its row
void cuda_embedding_backward(const Backend *be, float *dtable, const float *dy,
                             const int32_t *index, int64_t n, int64_t vocab, int64_t dim) {
    size_t bytes = (size_t)(vocab * dim) * sizeof(float);
    if (bytes > 0) CUDA_CHECK(cudaMemsetAsync(dtable, 0, bytes, cuda_stream(be)));
    LAUNCH_ELEMENTS(be, n * dim, embedding_backward_kernel, dtable, dy, index, vocab, dim);
}
