// LayerNorm and GroupNorm, forward and backward (PyTorch semantics: biased variance, eps
// inside the square root, weight and bias optional), computed as the CPU kernels compute
// them (kernels/cpu/norm.c): two-pass moments, and the input gradient
// dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy * weight.
//
// Both normalise contiguous spans, a row of c (LayerNorm) or the c/groups channels of hw
// pixels of one (image, group) (GroupNorm), each owned by a warp or a block (group.cuh).
// The parameter gradients are sums across spans, taken without atomics: LayerNorm's as
// column sums over row chunks, GroupNorm's from per-(image, channel) sums that also give
// the span sums of its input gradient. Partial sums are combined in a fixed order.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/group.cuh"

typedef struct {
    float mean, rstd;
} Moments;

// x (len) -> mean and 1 / sqrt(biased variance + eps), returned in every lane of the group
// and stored by lane 0 at *mean_out, *rstd_out: two passes (mean, then centred squares), the
// first over x - x[0] so that an offset shared by the whole span costs no precision.
template <int GROUP>
static __device__ __forceinline__ Moments span_moments(const float *x, int64_t len, float eps,
                                                       float *mean_out, float *rstd_out) {
    int lane = group_lane<GROUP>(), size = group_size<GROUP>();
    float shift = len > 0 ? x[0] : 0.0f;
    float part = 0.0f;
    for (int64_t i = lane; i < len; i += size) part += x[i] - shift;
    double sum = group_reduce<GROUP>((double)part, SumOp());
    float mu = (float)((double)shift + sum / (double)len);
    part = 0.0f;
    for (int64_t i = lane; i < len; i += size) part += (x[i] - mu) * (x[i] - mu);
    double squares = group_reduce<GROUP>((double)part, SumOp());
    Moments m = {mu, (float)(1.0 / sqrt(squares / (double)len + (double)eps))};
    if (lane == 0) {
        *mean_out = m.mean;
        *rstd_out = m.rstd;
    }
    return m;
}

// ---- LayerNorm -------------------------------------------------------------------------------

// x (rows, c), weight, bias (c) or NULL -> y (rows, c), mean, rstd (rows)
template <int GROUP>
__global__ void layernorm_kernel(float *y, float *mean, float *rstd, const float *x,
                                 const float *weight, const float *bias, int64_t rows, int64_t c,
                                 float eps) {
    int64_t row = group_row<GROUP>();
    if (row >= rows) return;
    int lane = group_lane<GROUP>(), size = group_size<GROUP>();
    const float *xr = x + row * c;
    float *yr = y + row * c;
    Moments m = span_moments<GROUP>(xr, c, eps, mean + row, rstd + row);
    for (int64_t j = lane; j < c; j += size) {
        float v = (xr[j] - m.mean) * m.rstd;
        if (weight) v *= weight[j];
        if (bias) v += bias[j];
        yr[j] = v;
    }
}

// dy, x (rows, c), mean, rstd (rows), weight (c) or NULL -> dx (rows, c)
template <int GROUP>
__global__ void layernorm_dx_kernel(float *dx, const float *dy, const float *x, const float *mean,
                                    const float *rstd, const float *weight, int64_t rows,
                                    int64_t c) {
    int64_t row = group_row<GROUP>();
    if (row >= rows) return;
    int lane = group_lane<GROUP>(), size = group_size<GROUP>();
    const float *xr = x + row * c, *dyr = dy + row * c;
    float *dxr = dx + row * c;
    float mu = mean[row], rs = rstd[row];
    float part_g = 0.0f, part_g_xhat = 0.0f;
    for (int64_t j = lane; j < c; j += size) {
        float g = weight ? dyr[j] * weight[j] : dyr[j];
        part_g += g;
        part_g_xhat += g * ((xr[j] - mu) * rs);
    }
    double sum_g = group_reduce<GROUP>((double)part_g, SumOp());
    double sum_g_xhat = group_reduce<GROUP>((double)part_g_xhat, SumOp());
    float mean_g = (float)(sum_g / (double)c), mean_g_xhat = (float)(sum_g_xhat / (double)c);
    for (int64_t j = lane; j < c; j += size) {
        float g = weight ? dyr[j] * weight[j] : dyr[j];
        float xhat = (xr[j] - mu) * rs;
        dxr[j] = rs * (g - mean_g - xhat * mean_g_xhat);
    }
}

#define PARAM_COLUMNS WARP // columns per block of the parameter-gradient kernel
#define PARAM_ROWS 8       // rows in flight per block

// grid (column tiles, splits), blocks (PARAM_COLUMNS, PARAM_ROWS): column j of rows chunk
// `split` -> partial (splits, 2, c): sum of dy xhat (dweight), then sum of dy (dbias)
__global__ void layernorm_param_kernel(double *partial, const float *dy, const float *x,
                                       const float *mean, const float *rstd, int64_t rows,
                                       int64_t c, int64_t chunk) {
    __shared__ double lanes[2][PARAM_ROWS][PARAM_COLUMNS];
    int64_t j = (int64_t)blockIdx.x * PARAM_COLUMNS + threadIdx.x, split = blockIdx.y;
    int64_t begin = split * chunk, end = begin + chunk < rows ? begin + chunk : rows;
    double dw = 0.0, db = 0.0;
    if (j < c) {
        for (int64_t r = begin + threadIdx.y; r < end; r += PARAM_ROWS) {
            float d = dy[r * c + j];
            dw += d * (x[r * c + j] - mean[r]) * rstd[r];
            db += d;
        }
    }
    lanes[0][threadIdx.y][threadIdx.x] = dw;
    lanes[1][threadIdx.y][threadIdx.x] = db;
    __syncthreads();
    if (threadIdx.y == 0 && j < c) {
        for (int r = 1; r < PARAM_ROWS; r++) {
            dw += lanes[0][r][threadIdx.x];
            db += lanes[1][r][threadIdx.x];
        }
        partial[(split * 2) * c + j] = dw;
        partial[(split * 2 + 1) * c + j] = db;
    }
}

// partial (parts, 2, c) -> dweight (c) = sum over parts of partial[p][0], dbias of [p][1];
// either output may be NULL. Shared by LayerNorm (parts: row chunks) and GroupNorm (images).
__global__ void param_finish_kernel(float *dweight, float *dbias, const double *partial,
                                    int64_t parts, int64_t c) {
    for (int64_t i = global_thread(); i < 2 * c; i += grid_threads()) {
        double sum = 0.0;
        for (int64_t p = 0; p < parts; p++) sum += partial[p * 2 * c + i];
        float *out = i < c ? dweight : dbias;
        if (out) out[i % c] = (float)sum;
    }
}

static void launch_param_finish(const Backend *be, float *dweight, float *dbias,
                                const double *partial, int64_t parts, int64_t c) {
    unsigned grid = grid_for(be, 2 * c, THREADS);
    KERNEL_LAUNCH(be, grid, THREADS, 0, param_finish_kernel)(dweight, dbias, partial, parts, c);
    CUDA_LAUNCH_CHECK(be);
}

// x (rows, c), weight, bias (c) or NULL -> y (rows, c), mean, rstd (rows)
void cuda_layernorm(const Backend *be, float *y, float *mean, float *rstd, const float *x,
                    const float *weight, const float *bias, int64_t rows, int64_t c, float eps) {
    if (c == 0) return;
    LAUNCH_ROWS(be, rows, c, layernorm_kernel, y, mean, rstd, x, weight, bias, rows, c, eps);
}

// dy, x (rows, c), mean, rstd (rows), weight (c) or NULL -> dx (rows, c), dweight, dbias (c)
// when not NULL
void cuda_layernorm_backward(const Backend *be, float *dx, float *dweight, float *dbias,
                             const float *dy, const float *x, const float *mean, const float *rstd,
                             const float *weight, int64_t rows, int64_t c) {
    if (c == 0) return;
    LAUNCH_ROWS(be, rows, c, layernorm_dx_kernel, dx, dy, x, mean, rstd, weight, rows, c);
    if (!dweight && !dbias) return;
    int64_t tiles = (c + PARAM_COLUMNS - 1) / PARAM_COLUMNS;
    DMDR_CHECK(tiles < ((int64_t)1 << 31), "layernorm width %lld exceeds one CUDA grid",
               (long long)c);
    ReduceSplit sp = reduce_split(tiles, rows, 4 * (int64_t)cuda_sm_count(be), 256, 65535);
    double *partial = (double *)cuda_scratch(be, (size_t)(sp.splits * 2 * c) * sizeof(double));
    if (rows > 0) {
        dim3 grid((unsigned)tiles, (unsigned)sp.splits), block(PARAM_COLUMNS, PARAM_ROWS);
        KERNEL_LAUNCH(be, grid, block, 0, layernorm_param_kernel)(partial, dy, x, mean, rstd, rows,
                                                                  c, sp.chunk);
        CUDA_LAUNCH_CHECK(be);
    }
    launch_param_finish(be, dweight, dbias, partial, rows > 0 ? sp.splits : 0, c);
}

// ---- GroupNorm ------------------------------------------------------------------------------

// x (n, c, hw) as spans (n groups, cg hw), weight, bias (c) or NULL -> y, mean, rstd (n groups)
template <int GROUP>
__global__ void groupnorm_kernel(float *y, float *mean, float *rstd, const float *x,
                                 const float *weight, const float *bias, int64_t spans,
                                 int64_t groups, int64_t cg, int64_t hw, float eps) {
    int64_t span = group_row<GROUP>();
    if (span >= spans) return;
    int lane = group_lane<GROUP>(), size = group_size<GROUP>();
    int64_t len = cg * hw;
    const float *xs = x + span * len;
    float *ys = y + span * len;
    Moments m = span_moments<GROUP>(xs, len, eps, mean + span, rstd + span);
    int64_t first_channel = span % groups * cg;
    SteppedIndex e(lane, hw, size); // (channel in the group, pixel)
    for (int64_t i = lane; i < len; i += size, e.advance()) {
        int64_t ch = first_channel + e.hi;
        // (x - mean) first: x scale - mean scale would cancel for a large mean
        float scale = weight ? m.rstd * weight[ch] : m.rstd;
        float shift = bias ? bias[ch] : 0.0f;
        ys[i] = (xs[i] - m.mean) * scale + shift;
    }
}

// One (image, channel) plane of hw pixels per group of threads -> its sums of dy xhat and
// of dy, into plane_sums (n, 2, c) (the layout param_finish_kernel reads).
template <int GROUP>
__global__ void groupnorm_plane_kernel(double *plane_sums, const float *dy, const float *x,
                                       const float *mean, const float *rstd, int64_t planes,
                                       int64_t c, int64_t hw, int64_t groups) {
    int64_t plane = group_row<GROUP>();
    if (plane >= planes) return;
    int lane = group_lane<GROUP>(), size = group_size<GROUP>();
    int64_t img = plane / c, ch = plane % c, span = img * groups + ch / (c / groups);
    float mu = mean[span], rs = rstd[span];
    const float *xp = x + plane * hw, *dyp = dy + plane * hw;
    float part_dy = 0.0f, part_dy_xhat = 0.0f;
    for (int64_t i = lane; i < hw; i += size) {
        part_dy += dyp[i];
        part_dy_xhat += dyp[i] * (xp[i] - mu) * rs;
    }
    double sum_dy = group_reduce<GROUP>((double)part_dy, SumOp());
    double sum_dy_xhat = group_reduce<GROUP>((double)part_dy_xhat, SumOp());
    if (lane == 0) {
        plane_sums[(img * 2) * c + ch] = sum_dy_xhat;
        plane_sums[(img * 2 + 1) * c + ch] = sum_dy;
    }
}

// One thread per span: span_sums (spans, 2) = the span's sums of g = dy w and of g xhat,
// from its channels' plane sums times their weight.
__global__ void groupnorm_span_kernel(double *span_sums, const double *plane_sums,
                                      const float *weight, int64_t spans, int64_t c,
                                      int64_t groups) {
    int64_t cg = c / groups;
    for (int64_t span = global_thread(); span < spans; span += grid_threads()) {
        int64_t img = span / groups, first = span % groups * cg;
        double sum_g = 0.0, sum_g_xhat = 0.0;
        for (int64_t ch = first; ch < first + cg; ch++) {
            float w = weight ? weight[ch] : 1.0f;
            sum_g_xhat += plane_sums[(img * 2) * c + ch] * w;
            sum_g += plane_sums[(img * 2 + 1) * c + ch] * w;
        }
        span_sums[2 * span] = sum_g;
        span_sums[2 * span + 1] = sum_g_xhat;
    }
}

// dx (n, c, hw) from the span sums
template <typename I>
__global__ void groupnorm_dx_kernel(float *dx, const float *dy, const float *x, const float *mean,
                                    const float *rstd, const float *weight,
                                    const double *span_sums, int64_t total, int64_t c, int64_t hw,
                                    int64_t groups) {
    I cg = (I)(c / groups);
    double len = (double)(cg * hw);
    for (int64_t i = global_thread(); i < total; i += grid_threads()) {
        I plane = (I)i / (I)hw, img = plane / (I)c, ch = plane % (I)c;
        I span = img * (I)groups + ch / cg;
        float mu = mean[span], rs = rstd[span];
        float mean_g = (float)(span_sums[2 * span] / len);
        float mean_g_xhat = (float)(span_sums[2 * span + 1] / len);
        float g = weight ? dy[i] * weight[ch] : dy[i];
        float xhat = (x[i] - mu) * rs;
        dx[i] = rs * (g - mean_g - xhat * mean_g_xhat);
    }
}

// x (n, c, hw), weight, bias (c) or NULL -> y (n, c, hw), mean, rstd (n, groups)
void cuda_groupnorm(const Backend *be, float *y, float *mean, float *rstd, const float *x,
                    const float *weight, const float *bias, int64_t n, int64_t c, int64_t hw,
                    int64_t groups, float eps) {
    int64_t cg = c / groups;
    if (cg * hw == 0) return;
    LAUNCH_ROWS(be, n * groups, cg * hw, groupnorm_kernel, y, mean, rstd, x, weight, bias,
                n * groups, groups, cg, hw, eps);
}

// dy, x (n, c, hw), mean, rstd (n, groups), weight (c) or NULL -> dx (n, c, hw), dweight,
// dbias (c) when not NULL
void cuda_groupnorm_backward(const Backend *be, float *dx, float *dweight, float *dbias,
                             const float *dy, const float *x, const float *mean, const float *rstd,
                             const float *weight, int64_t n, int64_t c, int64_t hw,
                             int64_t groups) {
    int64_t spans = n * groups, total = n * c * hw;
    if (total == 0) return;
    size_t plane_bytes = scratch_round((size_t)(n * 2 * c) * sizeof(double));
    char *scratch = (char *)cuda_scratch(be, plane_bytes + (size_t)(2 * spans) * sizeof(double));
    double *plane_sums = (double *)scratch, *span_sums = (double *)(scratch + plane_bytes);
    LAUNCH_ROWS(be, n * c, hw, groupnorm_plane_kernel, plane_sums, dy, x, mean, rstd, n * c, c, hw,
                groups);
    KERNEL_LAUNCH(be, grid_for(be, spans, THREADS), THREADS, 0, groupnorm_span_kernel)(
        span_sums, plane_sums, weight, spans, c, groups);
    CUDA_LAUNCH_CHECK(be);
    if (total <= INT32_MAX)
        KERNEL_LAUNCH(be, grid_for(be, total, THREADS), THREADS, 0, groupnorm_dx_kernel<uint32_t>)(
            dx, dy, x, mean, rstd, weight, span_sums, total, c, hw, groups);
    else
        KERNEL_LAUNCH(be, grid_for(be, total, THREADS), THREADS, 0, groupnorm_dx_kernel<int64_t>)(
            dx, dy, x, mean, rstd, weight, span_sums, total, c, hw, groups);
    CUDA_LAUNCH_CHECK(be);
    if (dweight || dbias) launch_param_finish(be, dweight, dbias, plane_sums, n, c);
}
