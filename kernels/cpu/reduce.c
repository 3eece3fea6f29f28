// Reductions: sum, mean and max over any set of dims, the max backward, and the sum of
// squares behind gradient clipping. Sums accumulate in double, so a reduction over millions
// of elements keeps float accuracy.
//
// Any reduction of a 4-d shape is one of a few patterns once size-1 dims are dropped and
// neighbouring dims with the same role are merged: x is viewed as (outer, r1, k1, r2, k2)
// and y as (outer, k1, k2), where the r dims are reduced and the k dims kept (unused dims
// are 1; kernels/layout.h, shared with the CUDA backend). Two loop shapes cover every pattern:
// - k2 == 1, "rows": each output reduces r1 contiguous runs of r2 elements (row sums,
//   full reductions, the per-channel sums of (n, c, hw)).
// - k2 > 1, "columns": each output chunk accumulates r1 * r2 contiguous rows of k2 elements
//   (column sums such as bias gradients, means over tokens of (b, t, c)).
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/layout.h"

// Below this many input elements a reduction runs on the calling thread.
#define PARALLEL_MIN 32768
// Parallel pieces of one long run (when there are too few outputs to go round the threads).
#define PIECE 16384
// Widest column chunk one output item accumulates. Its double accumulators (16 KiB) live on
// the stack and stay in L1; rows no wider than this are read whole, front to back, which
// streams several times faster than reading column chunks of wider rows.
#define COLUMNS 2048

static double combine(ReduceOp op, double acc, double v) {
    return op == REDUCE_MAX ? (v > acc ? v : acc) : acc + v;
}

static double reduce_identity(ReduceOp op) { return op == REDUCE_MAX ? -INFINITY : 0.0; }

static float reduce_finish(ReduceOp op, double acc, int64_t count) {
    return (float)(op == REDUCE_MEAN ? acc / (double)count : acc);
}

// sum (or max) of x (n), contiguous
static double reduce_run(ReduceOp op, const float *x, int64_t n) {
    if (op == REDUCE_MAX) {
        float m = -INFINITY;
#pragma omp simd reduction(max : m)
        for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
        return m;
    }
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++) sum += x[i];
    return sum;
}

// ---- rows: k2 == 1 -------------------------------------------------------------------------

// x (runs of len, stride apart) -> the reduction of all of them, on this thread
static double reduce_runs(ReduceOp op, const float *x, int64_t runs, int64_t stride,
                          int64_t len) {
    double acc = reduce_identity(op);
    for (int64_t r = 0; r < runs; r++) acc = combine(op, acc, reduce_run(op, x + r * stride, len));
    return acc;
}

// The same, with every thread taking pieces of the runs: for the few outputs (a full
// reduction has one) that cannot keep the threads busy one per output.
static double reduce_runs_parallel(ReduceOp op, const float *x, int64_t runs, int64_t stride,
                                   int64_t len) {
    int64_t pieces = (len + PIECE - 1) / PIECE;
    double sum = 0.0, max = -INFINITY;
#pragma omp parallel for schedule(static) reduction(+ : sum) reduction(max : max) \
    if (runs * len > PARALLEL_MIN)
    for (int64_t p = 0; p < runs * pieces; p++) {
        int64_t r = p / pieces, begin = (p % pieces) * PIECE;
        int64_t n = len - begin < PIECE ? len - begin : PIECE;
        double v = reduce_run(op, x + r * stride + begin, n);
        if (op == REDUCE_MAX) max = v > max ? v : max;
        else sum += v;
    }
    return op == REDUCE_MAX ? max : sum;
}

static void reduce_rows(ReduceOp op, float *y, const float *x, const ReduceShape *l) {
    int64_t items = l->outer * l->k1, runs = l->r1, len = l->r2, stride = l->k1 * l->r2;
    int64_t count = runs * len;
    if (items < omp_get_max_threads()) {
        for (int64_t it = 0; it < items; it++) {
            const float *xi = x + reduce_item_offset(l, it);
            y[it] = reduce_finish(op, reduce_runs_parallel(op, xi, runs, stride, len), count);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (items * count > PARALLEL_MIN)
    for (int64_t it = 0; it < items; it++) {
        const float *xi = x + reduce_item_offset(l, it);
        y[it] = reduce_finish(op, reduce_runs(op, xi, runs, stride, len), count);
    }
}

// ---- columns: k2 > 1 -----------------------------------------------------------------------

// A column item: output (o, k1), columns [c, c + width) of k2, COLUMNS wide at most.
typedef struct {
    int64_t x_offset; // of row (r1, r2) = (0, 0)
    int64_t y_offset;
    int64_t width;
} ColumnItem;

static int64_t column_chunks(const ReduceShape *l) { return (l->k2 + COLUMNS - 1) / COLUMNS; }

static ColumnItem column_item(const ReduceShape *l, int64_t index) {
    int64_t chunks = column_chunks(l);
    int64_t c = (index % chunks) * COLUMNS, out = index / chunks;
    ColumnItem item = {
        .x_offset = reduce_item_offset(l, out) + c,
        .y_offset = out * l->k2 + c,
        .width = l->k2 - c < COLUMNS ? l->k2 - c : COLUMNS,
    };
    return item;
}

// acc (width) = the reduction of rows [begin, end) of a column item
static void accumulate_rows(ReduceOp op, double *acc, const float *x, const ReduceShape *l,
                            ColumnItem item, int64_t begin, int64_t end) {
    for (int64_t j = 0; j < item.width; j++) acc[j] = reduce_identity(op);
    for (int64_t q = begin; q < end; q++) {
        const float *row = x + item.x_offset + reduce_row_offset(l, q);
        if (op == REDUCE_MAX) {
#pragma omp simd
            for (int64_t j = 0; j < item.width; j++) acc[j] = row[j] > acc[j] ? row[j] : acc[j];
        } else {
#pragma omp simd
            for (int64_t j = 0; j < item.width; j++) acc[j] += row[j];
        }
    }
}

static void finish_columns(ReduceOp op, float *y, const double *acc, int64_t width,
                           int64_t count) {
    for (int64_t j = 0; j < width; j++) y[j] = reduce_finish(op, acc[j], count);
}

// Each column item reduced whole by one thread.
static void reduce_column_items(ReduceOp op, float *y, const float *x, const ReduceShape *l,
                                int64_t items, bool parallel) {
    int64_t rows = l->r1 * l->r2;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t i = 0; i < items; i++) {
        ColumnItem item = column_item(l, i);
        double acc[COLUMNS];
        accumulate_rows(op, acc, x, l, item, 0, rows);
        finish_columns(op, y + item.y_offset, acc, item.width, rows);
    }
}

// Each column item's rows split into `parts`, reduced in parallel into partial accumulators
// that are combined after. False when the partials cannot be allocated.
static bool reduce_column_parts(ReduceOp op, float *y, const float *x, const ReduceShape *l,
                                int64_t items, int64_t parts) {
    int64_t rows = l->r1 * l->r2;
    double *partial = malloc((size_t)(items * parts * COLUMNS) * sizeof(double));
    if (partial == NULL) return false;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < items * parts; i++) {
        int64_t part = i % parts;
        accumulate_rows(op, partial + i * COLUMNS, x, l, column_item(l, i / parts),
                        rows * part / parts, rows * (part + 1) / parts);
    }
    for (int64_t it = 0; it < items; it++) {
        ColumnItem item = column_item(l, it);
        double *acc = partial + it * parts * COLUMNS;
        for (int64_t part = 1; part < parts; part++)
            for (int64_t j = 0; j < item.width; j++)
                acc[j] = combine(op, acc[j], acc[part * COLUMNS + j]);
        finish_columns(op, y + item.y_offset, acc, item.width, rows);
    }
    free(partial);
    return true;
}

// Parallel over column items when there are enough to go round the threads; otherwise (a
// plain column sum of a (rows, c) matrix is one item per COLUMNS columns) over parts of the
// rows as well.
static void reduce_columns(ReduceOp op, float *y, const float *x, const ReduceShape *l) {
    int64_t items = l->outer * l->k1 * column_chunks(l), rows = l->r1 * l->r2;
    int64_t threads = omp_get_max_threads();
    bool parallel = l->outer * l->k1 * l->k2 * rows > PARALLEL_MIN;
    if (parallel && items < threads && rows > 1) {
        int64_t parts = (threads + items - 1) / items;
        if (reduce_column_parts(op, y, x, l, items, parts < rows ? parts : rows)) return;
    }
    reduce_column_items(op, y, x, l, items, parallel);
}

// x (shape) -> y (shape with the dims in dims_mask set to 1)
void cpu_reduce(const Backend *be, ReduceOp op, float *y, const float *x,
                const int64_t shape[KERNEL_MAX_DIMS], unsigned dims_mask) {
    (void)be;
    ReduceShape l = reduce_shape_of(shape, dims_mask);
    if (l.k2 == 1) reduce_rows(op, y, x, &l);
    else reduce_columns(op, y, x, &l);
}

// ---- max backward --------------------------------------------------------------------------

// dx = dy / ties at the elements equal to their output's maximum y, else 0. Same two loop
// shapes as the forward: count the ties of an output (or column chunk), then write its dx.

static int64_t count_ties(const float *x, int64_t n, float max) {
    int64_t ties = 0;
#pragma omp simd reduction(+ : ties)
    for (int64_t i = 0; i < n; i++) ties += x[i] == max;
    return ties;
}

static void route_to_ties(float *dx, const float *x, int64_t n, float max, float share) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] = x[i] == max ? share : 0.0f;
}

static void max_backward_rows(float *dx, const float *x, const float *y, const float *dy,
                              const ReduceShape *l) {
    int64_t items = l->outer * l->k1, runs = l->r1, len = l->r2, stride = l->k1 * l->r2;
#pragma omp parallel for schedule(static) if (items * runs * len > PARALLEL_MIN)
    for (int64_t it = 0; it < items; it++) {
        int64_t base = reduce_item_offset(l, it);
        int64_t ties = 0;
        for (int64_t r = 0; r < runs; r++) ties += count_ties(x + base + r * stride, len, y[it]);
        float share = ties > 0 ? dy[it] / (float)ties : 0.0f;
        for (int64_t r = 0; r < runs; r++)
            route_to_ties(dx + base + r * stride, x + base + r * stride, len, y[it], share);
    }
}

static void max_backward_columns(float *dx, const float *x, const float *y, const float *dy,
                                 const ReduceShape *l) {
    int64_t items = l->outer * l->k1 * column_chunks(l), rows = l->r1 * l->r2;
#pragma omp parallel for schedule(static) if (l->outer * l->k1 * l->k2 * rows > PARALLEL_MIN)
    for (int64_t i = 0; i < items; i++) {
        ColumnItem item = column_item(l, i);
        const float *max = y + item.y_offset;
        float share[COLUMNS] = {0};
        for (int64_t q = 0; q < rows; q++) {
            const float *row = x + item.x_offset + reduce_row_offset(l, q);
#pragma omp simd
            for (int64_t j = 0; j < item.width; j++) share[j] += row[j] == max[j];
        }
        for (int64_t j = 0; j < item.width; j++)
            share[j] = share[j] > 0.0f ? dy[item.y_offset + j] / share[j] : 0.0f;
        for (int64_t q = 0; q < rows; q++) {
            int64_t offset = item.x_offset + reduce_row_offset(l, q);
#pragma omp simd
            for (int64_t j = 0; j < item.width; j++)
                dx[offset + j] = x[offset + j] == max[j] ? share[j] : 0.0f;
        }
    }
}

// x, dx (shape); y = max of x, dy (reduced shape)
void cpu_reduce_max_backward(const Backend *be, float *dx, const float *x, const float *y,
                             const float *dy, const int64_t shape[KERNEL_MAX_DIMS],
                             unsigned dims_mask) {
    (void)be;
    ReduceShape l = reduce_shape_of(shape, dims_mask);
    if (l.k2 == 1) max_backward_rows(dx, x, y, dy, &l);
    else max_backward_columns(dx, x, y, dy, &l);
}

// ---- sum of squares ------------------------------------------------------------------------

// xs[j] (ns[j]) for j < count -> sum over all of x^2, in double. The tensors are one
// concatenated range cut into a contiguous piece per thread: one parallel region for all of
// them (a region per tensor cost 1.9 ms for the small DiT's 71 gradients, against 0.4 ms for
// reading their 17 MB once), and per-thread sums added in thread order.
double cpu_sum_squares(const Backend *be, const float *const *xs, const int64_t *ns, int count) {
    (void)be;
    int64_t total = 0;
    for (int j = 0; j < count; j++) total += ns[j];
    int threads = total > PARALLEL_MIN ? omp_get_max_threads() : 1;
    double *partial = calloc((size_t)threads, sizeof *partial);
    DMDR_CHECK(partial != NULL, "out of memory for %d partial sums", threads);
#pragma omp parallel num_threads(threads)
    {
        int p = omp_get_thread_num(), parts = omp_get_num_threads();
        int64_t begin = total * p / parts, end = total * (p + 1) / parts, start = 0;
        double sum = 0.0;
        for (int j = 0; j < count && start < end; start += ns[j], j++) {
            int64_t lo = begin > start ? begin - start : 0;
            int64_t hi = end - start < ns[j] ? end - start : ns[j];
            const float *x = xs[j];
#pragma omp simd reduction(+ : sum)
            for (int64_t i = lo; i < hi; i++) sum += (double)x[i] * x[i];
        }
        partial[p] = sum;
    }
    double sum = 0.0;
    for (int p = 0; p < threads; p++) sum += partial[p];
    free(partial);
    return sum;
}
