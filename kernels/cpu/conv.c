// Convolution lowering (im2col and its adjoint col2im), nearest upsampling, average pooling
// and embedding lookup, forward and backward.
//
// Every parallel loop here gives each thread outputs of its own (a column block, a plane,
// an output row), so there are no write races and no atomics, and sums are taken in one
// fixed order whatever the thread count.
#include <omp.h>
#include <string.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_kernels.h"

// Below this many elements moved a call runs on one thread.
#define CONV_PARALLEL_MIN 32768

// The output positions o in [0, out) whose input position o * stride - pad + offset lies in
// [0, in), as the half-open range [*lo, *hi) (empty when *lo >= *hi).
static void valid_outputs(int64_t offset, int64_t stride, int64_t pad, int64_t in, int64_t out,
                          int64_t *lo, int64_t *hi) {
    // o * stride >= pad - offset, and o * stride <= in - 1 + pad - offset
    int64_t first = pad - offset, last = in - 1 + pad - offset;
    *lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    *hi = last < 0 ? 0 : last / stride + 1;
    if (*hi > out) *hi = out;
    if (*lo > *hi) *lo = *hi;
}

// x (n, c, h, w) -> col (c*kh*kw, n*oh*ow): row (ci, ky, kx), column (img, oy, ox)
void cpu_im2col(const Backend *be, float *col, const float *x, int64_t n, const ConvGeometry *g) {
    (void)be;
    int64_t rows = g->c * g->kh * g->kw, plane = g->oh * g->ow;
    #pragma omp parallel for collapse(2) schedule(static) if(rows * n * plane >= CONV_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t img = 0; img < n; img++) {
            int64_t ci = r / (g->kh * g->kw), ky = r / g->kw % g->kh, kx = r % g->kw;
            const float *xp = x + (img * g->c + ci) * g->h * g->w;
            float *dst = col + r * n * plane + img * plane;
            int64_t oy_lo, oy_hi, ox_lo, ox_hi;
            valid_outputs(ky, g->stride, g->pad, g->h, g->oh, &oy_lo, &oy_hi);
            valid_outputs(kx, g->stride, g->pad, g->w, g->ow, &ox_lo, &ox_hi);
            memset(dst, 0, (size_t)plane * sizeof(float));
            for (int64_t oy = oy_lo; oy < oy_hi; oy++) {
                const float *xrow = xp + (oy * g->stride - g->pad + ky) * g->w;
                float *drow = dst + oy * g->ow;
                for (int64_t ox = ox_lo; ox < ox_hi; ox++)
                    drow[ox] = xrow[ox * g->stride - g->pad + kx];
            }
        }
    }
}

// col (c*kh*kw, n*oh*ow) -> dx (n, c, h, w), summing every patch that covers a pixel
void cpu_col2im(const Backend *be, float *dx, const float *col, int64_t n, const ConvGeometry *g) {
    (void)be;
    int64_t plane = g->oh * g->ow, kk = g->kh * g->kw;
    // One thread per (img, ci) plane of dx: all the rows that scatter into it are its own.
    #pragma omp parallel for schedule(static) if(g->c * n * kk * plane >= CONV_PARALLEL_MIN)
    for (int64_t p = 0; p < n * g->c; p++) {
        int64_t img = p / g->c, ci = p % g->c;
        float *dxp = dx + p * g->h * g->w;
        memset(dxp, 0, (size_t)(g->h * g->w) * sizeof(float));
        for (int64_t ky = 0; ky < g->kh; ky++) {
            for (int64_t kx = 0; kx < g->kw; kx++) {
                const float *src = col + (ci * kk + ky * g->kw + kx) * n * plane + img * plane;
                int64_t oy_lo, oy_hi, ox_lo, ox_hi;
                valid_outputs(ky, g->stride, g->pad, g->h, g->oh, &oy_lo, &oy_hi);
                valid_outputs(kx, g->stride, g->pad, g->w, g->ow, &ox_lo, &ox_hi);
                for (int64_t oy = oy_lo; oy < oy_hi; oy++) {
                    float *dxrow = dxp + (oy * g->stride - g->pad + ky) * g->w;
                    const float *srow = src + oy * g->ow;
                    for (int64_t ox = ox_lo; ox < ox_hi; ox++)
                        dxrow[ox * g->stride - g->pad + kx] += srow[ox];
                }
            }
        }
    }
}

// x (planes, h, w) -> y (planes, h*f, w*f): each input pixel fills an f x f block with
// scale * pixel. Nearest upsampling, and the adjoint of block_sum.
static void block_broadcast(float *y, const float *x, int64_t planes, int64_t h, int64_t w,
                            int64_t f, float scale) {
    int64_t wf = w * f;
    #pragma omp parallel for schedule(static) if(planes * h * w * f * f >= CONV_PARALLEL_MIN)
    for (int64_t row = 0; row < planes * h; row++) { // (plane, input row)
        const float *xr = x + row * w;
        float *yr = y + row * f * wf;
        for (int64_t j = 0; j < w; j++)
            for (int64_t dx = 0; dx < f; dx++) yr[j * f + dx] = scale * xr[j];
        for (int64_t dy = 1; dy < f; dy++) memcpy(yr + dy * wf, yr, (size_t)wf * sizeof(float));
    }
}

// x (planes, h*f, w*f) -> y (planes, h, w): scale * the sum of each f x f block.
// Average pooling, and the adjoint of block_broadcast.
static void block_sum(float *y, const float *x, int64_t planes, int64_t h, int64_t w, int64_t f,
                      float scale) {
    int64_t wf = w * f;
    #pragma omp parallel for schedule(static) if(planes * h * w * f * f >= CONV_PARALLEL_MIN)
    for (int64_t row = 0; row < planes * h; row++) { // (plane, output row)
        const float *xr = x + row * f * wf;
        float *yr = y + row * w;
        for (int64_t j = 0; j < w; j++) {
            float sum = 0.0f;
            for (int64_t dy = 0; dy < f; dy++)
                for (int64_t dx = 0; dx < f; dx++) sum += xr[dy * wf + j * f + dx];
            yr[j] = scale * sum;
        }
    }
}

// x (planes, h, w) -> y (planes, h*f, w*f)
void cpu_upsample_nearest(const Backend *be, float *y, const float *x, int64_t planes, int64_t h,
                          int64_t w, int64_t f) {
    (void)be;
    block_broadcast(y, x, planes, h, w, f, 1.0f);
}

// dy (planes, h*f, w*f) -> dx (planes, h, w)
void cpu_upsample_nearest_backward(const Backend *be, float *dx, const float *dy, int64_t planes,
                                   int64_t h, int64_t w, int64_t f) {
    (void)be;
    block_sum(dx, dy, planes, h, w, f, 1.0f);
}

// x (planes, h, w) -> y (planes, h/k, w/k)
void cpu_avgpool(const Backend *be, float *y, const float *x, int64_t planes, int64_t h, int64_t w,
                 int64_t k) {
    (void)be;
    block_sum(y, x, planes, h / k, w / k, k, 1.0f / (float)(k * k));
}

// dy (planes, h/k, w/k) -> dx (planes, h, w)
void cpu_avgpool_backward(const Backend *be, float *dx, const float *dy, int64_t planes, int64_t h,
                          int64_t w, int64_t k) {
    (void)be;
    block_broadcast(dx, dy, planes, h / k, w / k, k, 1.0f / (float)(k * k));
}

// table (vocab, dim), index (n) -> y (n, dim). The table size is not passed, so only
// negative indices can be caught here; embedding_backward checks the upper bound.
void cpu_embedding(const Backend *be, float *y, const float *table, const int32_t *index, int64_t n,
                   int64_t dim) {
    (void)be;
    #pragma omp parallel for schedule(static) if(n * dim >= CONV_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        DMDR_CHECK(index[i] >= 0, "embedding index %d is negative", (int)index[i]);
        memcpy(y + i * dim, table + (int64_t)index[i] * dim, (size_t)dim * sizeof(float));
    }
}

// dy (n, dim), index (n) -> dtable (vocab, dim) = zero, then each dy row added to its row
void cpu_embedding_backward(const Backend *be, float *dtable, const float *dy, const int32_t *index,
                            int64_t n, int64_t vocab, int64_t dim) {
    (void)be;
    for (int64_t i = 0; i < n; i++)
        DMDR_CHECK(index[i] >= 0 && index[i] < vocab, "embedding index %d outside [0, %lld)",
                   (int)index[i], (long long)vocab);
    // Each thread owns a block of columns of every row and adds the dy rows in index order,
    // so repeated indices need no atomics and the sum order never changes. Block widths are
    // multiples of a cache line (16 floats), so threads rarely write to the same line.
    bool parallel = (n + vocab) * dim >= CONV_PARALLEL_MIN;
    int threads = parallel ? omp_get_max_threads() : 1;
    int64_t block = ((dim + threads - 1) / threads + 15) / 16 * 16;
    int64_t blocks = (dim + block - 1) / block;
    #pragma omp parallel for schedule(static) if(parallel)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t j0 = blk * block, len = dim - j0 < block ? dim - j0 : block;
        for (int64_t v = 0; v < vocab; v++)
            memset(dtable + v * dim + j0, 0, (size_t)len * sizeof(float));
        for (int64_t i = 0; i < n; i++) {
            float *dst = dtable + (int64_t)index[i] * dim + j0;
            const float *src = dy + i * dim + j0;
            #pragma omp simd
            for (int64_t j = 0; j < len; j++) dst[j] += src[j];
        }
    }
}
