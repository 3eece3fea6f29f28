// Reductions: sum, mean and max over any dims, the max backward, and the sum of squares
// behind gradient clipping.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cases/ops.h"

#define FAMILY "reductions"

static const char *const reduce_names[REDUCE_OP_COUNT] = {"sum", "mean", "max"};

// x (shape) -> y (shape with the dims in mask set to 1); also ties (that shape), the number
// of elements equal to the maximum, when not NULL
static void ref_reduce_shape(ReduceOp op, float *y, int64_t *ties, const float *x,
                             const int64_t shape[KERNEL_MAX_DIMS], unsigned mask) {
    int64_t ystride[KERNEL_MAX_DIMS];
    int64_t nx = shape4_numel(shape), ny = strides_without(shape, mask, ystride);
    double *acc = ref_alloc((size_t)ny * sizeof(double));
    for (int64_t o = 0; o < ny; o++) acc[o] = op == REDUCE_MAX ? -INFINITY : 0;
    for (int64_t i = 0; i < nx; i++) {
        int64_t o = strided_offset(shape, ystride, i);
        acc[o] = op == REDUCE_MAX ? fmax(acc[o], x[i]) : acc[o] + x[i];
    }
    for (int64_t o = 0; o < ny; o++)
        y[o] = (float)(op == REDUCE_MEAN ? acc[o] / (double)(nx / ny) : acc[o]);
    free(acc);
    if (ties) {
        for (int64_t o = 0; o < ny; o++) ties[o] = 0;
        for (int64_t i = 0; i < nx; i++) {
            int64_t o = strided_offset(shape, ystride, i);
            ties[o] += x[i] == y[o];
        }
    }
}

// ---- reduce ---------------------------------------------------------------------------------

enum { RED_X, RED_Y };

static void call_reduce(const Backend *be, void *const *buf, const KernelCase *c) {
    const ReduceParams *p = &c->p.reduce;
    be->reduce(be, p->op, buf[RED_Y], buf[RED_X], p->shape, p->mask);
}

static void ref_reduce(void *const *host, const KernelCase *c) {
    const ReduceParams *p = &c->p.reduce;
    ref_reduce_shape(p->op, host[RED_Y], NULL, host[RED_X], p->shape, p->mask);
}

const KernelOp kop_reduce = {"reduce", FAMILY, call_reduce, ref_reduce, NULL, NULL};

KernelCase *case_reduce(CaseList *list, const char *name, ReduceOp op,
                        const int64_t shape[KERNEL_MAX_DIMS], unsigned mask) {
    KernelCase *c = case_new(list, &kop_reduce, name);
    ReduceParams *p = &c->p.reduce;
    *p = (ReduceParams){.op = op, .mask = mask};
    memcpy(p->shape, shape, sizeof p->shape);
    int64_t ystride[KERNEL_MAX_DIMS], nx = shape4_numel(shape);
    int64_t ny = strides_without(shape, mask, ystride);
    // sum and mean: up to 10^5 terms of [-1, 2] (no cancellation): rtol 1e-5; max: exact.
    case_in(c, "reduce x", nx, -1, 2);
    case_out(c, "y", ny, op == REDUCE_MAX ? CASE_EXACT : (CaseTol){1e-5, 1e-5});
    c->bytes = 4.0 * ((double)nx + (double)ny);
    case_shape(c, "%s over mask 0x%x of (%lld, %lld, %lld, %lld)", reduce_names[op], mask,
               (long long)shape[0], (long long)shape[1], (long long)shape[2],
               (long long)shape[3]);
    return c;
}

// ---- max backward -----------------------------------------------------------------------------

enum { RMB_X, RMB_Y, RMB_DY, RMB_DX };

static void call_reduce_max_backward(const Backend *be, void *const *buf, const KernelCase *c) {
    const ReduceParams *p = &c->p.reduce;
    be->reduce_max_backward(be, buf[RMB_DX], buf[RMB_X], buf[RMB_Y], buf[RMB_DY], p->shape,
                            p->mask);
}

// dx = dy / ties at the elements equal to their output's maximum, else 0
static void ref_reduce_max_backward(void *const *host, const KernelCase *c) {
    const ReduceParams *p = &c->p.reduce;
    const float *x = host[RMB_X], *dy = host[RMB_DY];
    float *dx = host[RMB_DX];
    int64_t ystride[KERNEL_MAX_DIMS];
    int64_t nx = shape4_numel(p->shape), ny = strides_without(p->shape, p->mask, ystride);
    float *y = ref_alloc((size_t)ny * sizeof(float));
    int64_t *ties = ref_alloc((size_t)ny * sizeof(int64_t));
    ref_reduce_shape(REDUCE_MAX, y, ties, x, p->shape, p->mask);
    for (int64_t i = 0; i < nx; i++) {
        int64_t o = strided_offset(p->shape, ystride, i);
        dx[i] = x[i] == y[o] ? (float)((double)dy[o] / (double)ties[o]) : 0.0f;
    }
    free(y);
    free(ties);
}

// y = the maximum, from the reference
static void reduce_max_y(void *const *host, const KernelCase *c) {
    ref_reduce_shape(REDUCE_MAX, host[RMB_Y], NULL, host[RMB_X], c->p.reduce.shape,
                     c->p.reduce.mask);
}

static void prepare_reduce_max_backward(const Backend *be, void *const *buf,
                                        const KernelCase *c) {
    be->reduce(be, REDUCE_MAX, buf[RMB_Y], buf[RMB_X], c->p.reduce.shape, c->p.reduce.mask);
}

const KernelOp kop_reduce_max_backward = {"reduce_max_backward", FAMILY, call_reduce_max_backward,
                                         ref_reduce_max_backward, reduce_max_y,
                                         prepare_reduce_max_backward};

// tied: x holds the integers 0..3, so most maxima are shared
static void case_reduce_max_backward(CaseList *list, const char *name,
                                     const int64_t shape[KERNEL_MAX_DIMS], unsigned mask,
                                     bool tied) {
    KernelCase *c = case_new(list, &kop_reduce_max_backward, name);
    ReduceParams *p = &c->p.reduce;
    *p = (ReduceParams){.op = REDUCE_MAX, .mask = mask};
    memcpy(p->shape, shape, sizeof p->shape);
    int64_t ystride[KERNEL_MAX_DIMS], nx = shape4_numel(shape);
    int64_t ny = strides_without(shape, mask, ystride);
    if (tied) {
        CaseBuffer *x = case_in(c, "reduce_max_backward ties", nx, 0, 0);
        x->fill = FILL_LEVELS;
        x->below = 4;
    } else {
        case_in(c, "reduce x", nx, -1, 2);
    }
    case_in(c, "y", ny, -1, 1);
    case_in(c, "reduce_max_backward dy", ny, -1, 1);
    // dy or dy / ties: one division, rtol 1e-6.
    case_out(c, "dx", nx, (CaseTol){1e-7, 1e-6});
    c->bytes = 4.0 * (3.0 * (double)nx + 2.0 * (double)ny);
    case_shape(c, "mask 0x%x of (%lld, %lld, %lld, %lld)", mask, (long long)shape[0],
               (long long)shape[1], (long long)shape[2], (long long)shape[3]);
}

// ---- sum of squares ---------------------------------------------------------------------------

// buffers: the arrays, then the result (a double)
static void call_sum_squares(const Backend *be, void *const *buf, const KernelCase *c) {
    const SumSquaresParams *p = &c->p.sum_squares;
    const float *xs[CASE_MAX_ARRAYS];
    for (int j = 0; j < p->count; j++) xs[j] = buf[j];
    double sum = be->sum_squares(be, xs, p->n, p->count);
    be->copy_from_host(be, buf[p->count], &sum, sizeof sum);
}

static void ref_sum_squares(void *const *host, const KernelCase *c) {
    const SumSquaresParams *p = &c->p.sum_squares;
    double sum = 0;
    for (int j = 0; j < p->count; j++) {
        const float *x = host[j];
        for (int64_t i = 0; i < p->n[j]; i++) sum += (double)x[i] * x[i];
    }
    memcpy(host[p->count], &sum, sizeof sum);
}

const KernelOp kop_sum_squares = {"sum_squares", FAMILY, call_sum_squares, ref_sum_squares, NULL,
                                 NULL};

KernelCase *case_sum_squares(CaseList *list, const char *name, int count, const int64_t *n) {
    KernelCase *c = case_new(list, &kop_sum_squares, name);
    SumSquaresParams *p = &c->p.sum_squares;
    p->count = count;
    double total = 0;
    for (int j = 0; j < count; j++) {
        p->n[j] = n[j];
        total += (double)n[j];
        case_in(c, "sum_squares x", n[j] ? n[j] : 1, -1, 1); // an empty array: a valid pointer
    }
    // Squares summed in double: rtol 1e-6 (float squaring alone is within 6e-8).
    case_out(c, "sum", 2, (CaseTol){0, 1e-6})->f64 = true;
    c->bytes = 4.0 * total;
    if (count == 1) case_shape(c, "n=%lld", (long long)n[0]);
    else case_shape(c, "%d arrays", count);
    return c;
}

// ---- test cases -------------------------------------------------------------------------------

void reduce_test_cases(CaseList *list) {
    static const int64_t shape[KERNEL_MAX_DIMS] = {3, 5, 7, 11};
    static const int64_t large[KERNEL_MAX_DIMS] = {5, 3, 61, 113}; // 103395 elements
    static const unsigned large_masks[] = {1, 6, 8, 15};
    enum { LARGE_MASKS = sizeof large_masks / sizeof large_masks[0] };
    for (int op = 0; op < REDUCE_OP_COUNT; op++) {
        for (unsigned mask = 1; mask < 16; mask++)
            case_reduce(list, "reduce", (ReduceOp)op, shape, mask);
        for (int mi = 0; mi < LARGE_MASKS; mi++)
            case_reduce(list, "reduce, large", (ReduceOp)op, large, large_masks[mi]);
    }
    for (unsigned mask = 1; mask < 16; mask++) {
        case_reduce_max_backward(list, "distinct values", shape, mask, false);
        case_reduce_max_backward(list, "ties", shape, mask, true);
    }
    for (int mi = 0; mi < LARGE_MASKS; mi++)
        case_reduce_max_backward(list, "large", large, large_masks[mi], false);

    // Every prefix of the list, from no arrays at all to all five (one of them empty).
    static const int64_t sizes[CASE_MAX_ARRAYS] = {7, 0, 129, CASE_LARGE, 1};
    for (int count = 0; count <= CASE_MAX_ARRAYS; count++)
        case_sum_squares(list, "sum_squares", count, sizes);
}
