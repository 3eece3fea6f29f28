// Helpers shared by the op implementations (autograd/ops_*.c); not installed.
#pragma once

#include "autograd/ops.h"
#include "kernels/check.h"

// Aborts unless every non-NULL tensor is F32 and on the device of the first.
void ops_check_f32(const char *op, int count, Tensor *const *ts);
// Aborts with both shapes unless cond holds.
#define OPS_CHECK_SHAPES(cond, op, a, b)                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            char sa_[64], sb_[64];                                                         \
            DMDR_FATAL("%s: incompatible shapes %s and %s", (op),                          \
                       tensor_shape_str((a), sa_, sizeof sa_),                             \
                       tensor_shape_str((b), sb_, sizeof sb_));                            \
        }                                                                                  \
    } while (0)

// The kernel-level broadcast of a and b (padded to 4-d) into out.
Broadcast ops_broadcast(Shape out, Shape a, Shape b);
// Sums g over the dims that were broadcast to turn `shape` into g's shape: the adjoint of
// broadcasting. Returns g itself when the shapes already agree.
Tensor *ops_sum_to_shape(Tensor *g, Shape shape);
// A new F32 tensor shaped like t, on t's device (uninitialised).
Tensor *ops_empty_like(const Tensor *t);

// The GEMM entry of be for a precision: be->matmul, or be->matmul_bf16. Forwards pass
// autograd_precision(), backwards their node's precision.
typedef void (*GemmFn)(const Backend *be, float *c, const float *a, const float *b,
                       int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
                       bool trans_b, float alpha, float beta, int64_t stride_a, int64_t stride_b,
                       int64_t stride_c);
static inline GemmFn ops_gemm(const Backend *be, Precision precision) {
    return precision == PRECISION_BF16 ? be->matmul_bf16 : be->matmul;
}
