// Reductions: sum, mean and max over any set of dims, the max backward, and sums of squares
// (the global gradient norm). Sums accumulate in double, as on the CPU.
//
// Any reduction is x (outer, r1, k1, r2, k2) -> y (outer, k1, k2) (kernels/layout.h), run by one of
// two kernels:
// - rows (k2 == 1): a block per output reduces its r1 runs of r2 contiguous elements;
// - columns (k2 > 1): a block per 32 neighbouring outputs, a warp-wide row of k2 read at a
//   time, eight rows in flight.
// When there are too few outputs to fill the device, the reduced elements are split into
// chunks, each block writes a partial result to scratch, and a finishing kernel combines
// the chunks of each output in chunk order. No atomics anywhere: the result depends only
// on the inputs.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/group.cuh"

// What is accumulated: the elements (sum, mean), their maximum, or the count of elements
// equal to their output's maximum (the max backward's ties).
enum { MODE_SUM, MODE_MAX, MODE_TIES };

#define COLUMN_WIDTH WARP // outputs per block of the columns kernel
#define COLUMN_ROWS 8     // rows in flight per block of the columns kernel

typedef struct {
    ReduceShape s;
    const float *x;
    const float *max; // MODE_TIES: the maxima, one per output
    const float *dy;  // MODE_TIES: the output gradient
    bool mean;        // MODE_SUM: divide by the reduced count
    int64_t splits, chunk;
    double *partial; // (splits, outputs) when splits > 1
    float *y;        // the result; MODE_TIES: each output's gradient share dy / ties
} ReduceJob;

template <int MODE> static __device__ __forceinline__ double reduce_identity(void) {
    return MODE == MODE_MAX ? -INFINITY : 0.0;
}

template <int MODE> static __device__ __forceinline__ double reduce_combine(double acc, double v) {
    if (MODE == MODE_MAX) return v > acc ? v : acc;
    return acc + v;
}

template <int MODE> struct CombineOp {
    __device__ __forceinline__ double operator()(double a, double b) const {
        return reduce_combine<MODE>(a, b);
    }
};

template <int MODE> static __device__ __forceinline__ double reduce_value(float x, float max) {
    if (MODE == MODE_TIES) return x == max ? 1.0 : 0.0;
    return x;
}

template <int MODE>
static __device__ __forceinline__ float reduce_finish(const ReduceJob &j, double acc,
                                                      int64_t out) {
    if (MODE == MODE_TIES) return acc > 0.0 ? j.dy[out] / (float)acc : 0.0f;
    if (MODE == MODE_SUM && j.mean) return (float)(acc / (double)(j.s.r1 * j.s.r2));
    return (float)acc;
}

// The block's accumulation of output `out`: the result itself, or its chunk's partial.
template <int MODE>
static __device__ __forceinline__ void reduce_store(const ReduceJob &j, double acc, int64_t out,
                                                    int64_t split, int64_t outputs) {
    if (j.splits == 1) j.y[out] = reduce_finish<MODE>(j, acc, out);
    else j.partial[split * outputs + out] = acc;
}

// grid (outer k1, splits), 1-d blocks: block (item, split) reduces chunk `split` of output item
template <int MODE> __global__ void reduce_rows_kernel(ReduceJob j) {
    const ReduceShape &s = j.s;
    int64_t item = blockIdx.x, split = blockIdx.y, reduced = s.r1 * s.r2;
    int64_t begin = split * j.chunk, end = begin + j.chunk < reduced ? begin + j.chunk : reduced;
    const float *x = j.x + reduce_item_offset(&s, item); // run 0
    int64_t run_stride = s.k1 * s.r2;
    float max = MODE == MODE_TIES ? j.max[item] : 0.0f;
    double acc = reduce_identity<MODE>();
    if (begin + threadIdx.x < end) {
        SteppedIndex q(begin + threadIdx.x, s.r2, blockDim.x); // (run, element)
        for (int64_t flat = begin + threadIdx.x; flat < end; flat += blockDim.x, q.advance())
            acc = reduce_combine<MODE>(acc, reduce_value<MODE>(x[q.hi * run_stride + q.lo], max));
    }
    acc = block_reduce(acc, CombineOp<MODE>());
    if (threadIdx.x == 0) reduce_store<MODE>(j, acc, item, split, s.outer * s.k1);
}

// grid (outer k1 tiles, splits), blocks (COLUMN_WIDTH, COLUMN_ROWS): block (item, tile,
// split) reduces chunk `split` of the outputs (item, tile * COLUMN_WIDTH + threadIdx.x)
template <int MODE> __global__ void reduce_columns_kernel(ReduceJob j, int64_t tiles) {
    __shared__ double lanes[COLUMN_ROWS][COLUMN_WIDTH];
    const ReduceShape &s = j.s;
    int64_t item = blockIdx.x / tiles, column = blockIdx.x % tiles * COLUMN_WIDTH + threadIdx.x;
    int64_t split = blockIdx.y, reduced = s.r1 * s.r2, out = item * s.k2 + column;
    int64_t begin = split * j.chunk, end = begin + j.chunk < reduced ? begin + j.chunk : reduced;
    bool active = column < s.k2;
    const float *x = j.x + reduce_item_offset(&s, item) + column;
    int64_t run_stride = s.k1 * s.r2 * s.k2;
    double acc = reduce_identity<MODE>();
    if (active && begin + threadIdx.y < end) {
        float max = MODE == MODE_TIES ? j.max[out] : 0.0f;
        SteppedIndex q(begin + threadIdx.y, s.r2, blockDim.y); // (run, row)
        for (int64_t flat = begin + threadIdx.y; flat < end; flat += blockDim.y, q.advance())
            acc = reduce_combine<MODE>(
                acc, reduce_value<MODE>(x[q.hi * run_stride + q.lo * s.k2], max));
    }
    lanes[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && active) {
        for (int r = 1; r < COLUMN_ROWS; r++)
            acc = reduce_combine<MODE>(acc, lanes[r][threadIdx.x]);
        reduce_store<MODE>(j, acc, out, split, s.outer * s.k1 * s.k2);
    }
}

// partial (splits, outputs) -> the result of each output, its chunks combined in order
template <int MODE> __global__ void reduce_finish_kernel(ReduceJob j, int64_t outputs) {
    for (int64_t out = global_thread(); out < outputs; out += grid_threads()) {
        double acc = reduce_identity<MODE>();
        for (int64_t split = 0; split < j.splits; split++)
            acc = reduce_combine<MODE>(acc, j.partial[split * outputs + out]);
        j.y[out] = reduce_finish<MODE>(j, acc, out);
    }
}

// How a reduction runs: which kernel, its grid, and the scratch its partials need.
typedef struct {
    bool rows;
    int64_t tiles, blocks; // blocks per split
    int64_t outputs;
    ReduceSplit split;
} ReducePlan;

static ReducePlan reduce_plan(const Backend *be, const ReduceShape &s) {
    ReducePlan p;
    p.rows = s.k2 == 1;
    p.outputs = s.outer * s.k1 * s.k2;
    p.tiles = p.rows ? 1 : (s.k2 + COLUMN_WIDTH - 1) / COLUMN_WIDTH;
    p.blocks = s.outer * s.k1 * p.tiles;
    DMDR_CHECK(p.blocks < ((int64_t)1 << 31), "reduction with %lld blocks exceeds one CUDA grid",
               (long long)p.blocks);
    // enough blocks for four waves; a chunk long enough to be worth a block of its own
    int64_t wanted = 4 * (int64_t)cuda_sm_count(be);
    p.split = reduce_split(p.blocks, s.r1 * s.r2, wanted, p.rows ? 4096 : 256, 65535);
    return p;
}

static size_t reduce_partial_bytes(const ReducePlan &p) {
    return p.split.splits > 1 ? scratch_round((size_t)(p.split.splits * p.outputs) * sizeof(double))
                              : 0;
}

// Runs job j as planned; j.partial must hold reduce_partial_bytes(p) when that is not 0.
template <int MODE> static void reduce_run(const Backend *be, ReduceJob j, const ReducePlan &p) {
    if (p.outputs == 0) return;
    j.splits = p.split.splits;
    j.chunk = p.split.chunk;
    dim3 grid((unsigned)p.blocks, (unsigned)j.splits);
    // short rows (a sum over the last dim of 8) get a warp, not a block of idle threads
    int threads = WARP;
    while (threads < THREADS && threads < j.chunk) threads *= 2;
    if (p.rows)
        KERNEL_LAUNCH(be, grid, threads, 0, reduce_rows_kernel<MODE>)(j);
    else
        KERNEL_LAUNCH(be, grid, dim3(COLUMN_WIDTH, COLUMN_ROWS), 0, reduce_columns_kernel<MODE>)(
            j, p.tiles);
    CUDA_LAUNCH_CHECK(be);
    if (j.splits > 1) {
        KERNEL_LAUNCH(be, grid_for(be, p.outputs, THREADS), THREADS, 0, reduce_finish_kernel<MODE>)(
            j, p.outputs);
        CUDA_LAUNCH_CHECK(be);
    }
}

// x (shape) -> y (shape with the dims in dims_mask set to 1)
void cuda_reduce(const Backend *be, ReduceOp op, float *y, const float *x,
                 const int64_t shape[KERNEL_MAX_DIMS], unsigned dims_mask) {
    DMDR_CHECK(op >= 0 && op < REDUCE_OP_COUNT, "reduce op %d out of range", (int)op);
    ReduceJob j = {};
    j.s = reduce_shape_of(shape, dims_mask);
    j.x = x;
    j.y = y;
    j.mean = op == REDUCE_MEAN;
    ReducePlan p = reduce_plan(be, j.s);
    size_t bytes = reduce_partial_bytes(p);
    j.partial = bytes ? (double *)cuda_scratch(be, bytes) : nullptr;
    if (op == REDUCE_MAX) reduce_run<MODE_MAX>(be, j, p);
    else reduce_run<MODE_SUM>(be, j, p);
}

// ---- max backward ------------------------------------------------------------------------

// dx (outer, r1, k1, r2, k2) = share of its output where x equals the output's maximum, else 0
__global__ void route_to_maxima_kernel(float *dx, const float *x, const float *max,
                                       const float *share, ReduceShape s, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        int64_t out = reduce_output_of(&s, i);
        dx[i] = x[i] == max[out] ? share[out] : 0.0f;
    }
}

// x, dx (shape); y = max of x, dy (reduced shape). Two passes: count each output's ties
// (into its share dy / ties), then route the shares.
void cuda_reduce_max_backward(const Backend *be, float *dx, const float *x, const float *y,
                              const float *dy, const int64_t shape[KERNEL_MAX_DIMS],
                              unsigned dims_mask) {
    ReduceJob j = {};
    j.s = reduce_shape_of(shape, dims_mask);
    j.x = x;
    j.max = y;
    j.dy = dy;
    ReducePlan p = reduce_plan(be, j.s);
    int64_t n = p.outputs * j.s.r1 * j.s.r2;
    if (n == 0) return;
    size_t share_bytes = scratch_round((size_t)p.outputs * sizeof(float));
    char *scratch = (char *)cuda_scratch(be, share_bytes + reduce_partial_bytes(p));
    j.y = (float *)scratch;
    j.partial = (double *)(scratch + share_bytes);
    reduce_run<MODE_TIES>(be, j, p);
    unsigned grid = grid_for(be, n, THREADS);
    KERNEL_LAUNCH(be, grid, THREADS, 0, route_to_maxima_kernel)(dx, x, y, j.y, j.s, n);
    CUDA_LAUNCH_CHECK(be);
}

// ---- sums of squares ---------------------------------------------------------------------

// partial[blockIdx.x] = sum over this block's share of i < n of f(i), in double
template <typename F> __global__ void sum_partials_kernel(F f, int64_t n, double *partial) {
    double acc = 0.0;
    for (int64_t i = global_thread(); i < n; i += grid_threads()) acc += f(i);
    acc = block_reduce(acc, SumOp());
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// One block: the sum of partial (count), in a fixed order, to *total and/or *total_f.
__global__ void sum_finish_kernel(const double *partial, int64_t count, double *total,
                                  float *total_f) {
    double acc = 0.0;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
    acc = block_reduce(acc, SumOp());
    if (threadIdx.x == 0) {
        if (total) *total = acc;
        if (total_f) *total_f = (float)acc;
    }
}

struct Squares {
    const float *x;
    __device__ double operator()(int64_t i) const { return (double)x[i] * x[i]; }
};

struct SquaredDifferences {
    const float *a, *b;
    __device__ double operator()(int64_t i) const {
        double d = (double)a[i] - b[i];
        return d * d;
    }
};

// Blocks for one sum: about 16 elements per thread, at most `cap`.
static int64_t sum_blocks(int64_t n, int64_t cap) {
    int64_t blocks = (n + 16 * THREADS - 1) / (16 * THREADS);
    return blocks < 1 ? 1 : (blocks > cap ? cap : blocks);
}

// xs[j] (ns[j]) -> sum over all of x^2: every array's blocks write partials side by side,
// one kernel adds them all, one copy brings the total back.
double cuda_sum_squares(const Backend *be, const float *const *xs, const int64_t *ns, int count) {
    int64_t slots = 0, cap = 2 * (int64_t)cuda_sm_count(be);
    for (int j = 0; j < count; j++)
        if (ns[j] > 0) slots += sum_blocks(ns[j], cap);
    if (slots == 0) return 0.0;
    double *partial = (double *)cuda_scratch(be,
                                             scratch_round((size_t)(slots + 1) * sizeof(double)));
    double *total = partial + slots;
    int64_t slot = 0;
    for (int j = 0; j < count; j++) {
        if (ns[j] <= 0) continue;
        int64_t blocks = sum_blocks(ns[j], cap);
        KERNEL_LAUNCH(be, (unsigned)blocks, THREADS, 0, sum_partials_kernel<Squares>)(
            Squares{xs[j]}, ns[j], partial + slot);
        CUDA_LAUNCH_CHECK(be);
        slot += blocks;
    }
    KERNEL_LAUNCH(be, 1, THREADS, 0, sum_finish_kernel)(partial, slots, total, nullptr);
    CUDA_LAUNCH_CHECK(be);
    double result;
    cuda_copy_to_host(be, &result, total, sizeof result);
    return result;
}

// a, b (n) -> y (1) = sum((a - b)^2), left on the device
void cuda_squared_error(const Backend *be, float *y, const float *a, const float *b, int64_t n) {
    int64_t blocks = n > 0 ? sum_blocks(n, 4 * (int64_t)cuda_sm_count(be)) : 0;
    double *partial = (double *)cuda_scratch(be,
                                             scratch_round((size_t)(blocks + 1) * sizeof(double)));
    if (blocks > 0) {
        KERNEL_LAUNCH(be, (unsigned)blocks, THREADS, 0, sum_partials_kernel<SquaredDifferences>)(
            SquaredDifferences{a, b}, n, partial);
        CUDA_LAUNCH_CHECK(be);
    }
    KERNEL_LAUNCH(be, 1, THREADS, 0, sum_finish_kernel)(partial, blocks, nullptr, y);
    CUDA_LAUNCH_CHECK(be);
}
