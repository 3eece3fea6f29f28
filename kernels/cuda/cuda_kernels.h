// The CUDA backend's entry points, one declaration per entry of the Backend table
// (kernels/backend.h has the shapes and semantics of each), plus the device probe and the
// backend's own switches. cuda_backend.c assembles the table. Plain C: the .cu files
// implement these with C linkage, and C code (backend.c, tests) can include this header
// without the CUDA toolkit.
#pragma once

#include <stdbool.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- the backend (cuda_backend.c) and its device (device.cu) -------------------------------
// The CUDA backend's table, or NULL when no usable device is present. The first call probes
// this process's device (device.cu: DMDR_CUDA_DEVICE, else its rank on the node under mpirun,
// else 0) and creates the backend's state (its CudaContext: stream, scratch memory, cuBLAS
// handle); every entry reaches it through its `be` argument.
const Backend *cuda_backend(void);
// True when cuda_backend() is not NULL. When false, cuda_unavailable_reason() says why (no
// driver, no device, compute capability below 9.0, ...).
bool cuda_available(void);
const char *cuda_unavailable_reason(void);

// The CUDA backend's state (defined in common.cuh, for the .cu files).
typedef struct CudaContext CudaContext;
// Probes this process's device and creates a state for it: NULL when it is not usable, with why in reason.
CudaContext *cuda_context_create(char *reason, size_t size);

// TF32 tensor-core GEMMs (10-bit mantissa products, fp32 accumulation): off by default, on
// when the environment has DMDR_TF32=1 at the first GEMM, or after cuda_set_tf32(be, true).
void cuda_set_tf32(const Backend *be, bool enabled);

// collective.cu (with NCCL): the Backend's collective entries
int cuda_collective_id(const Backend *be, void *id, char *reason, size_t size);
int cuda_collective_init(const Backend *be, const void *id, int rank, int size, char *reason,
                         size_t reason_size);
void cuda_allreduce_sum(const Backend *be, float *x, int64_t n);

// device.cu: memory
void *cuda_alloc(const Backend *be, size_t nbytes);
void cuda_free(const Backend *be, void *ptr);
void cuda_copy_to_host(const Backend *be, void *host_dst, const void *src, size_t nbytes);
void cuda_copy_from_host(const Backend *be, void *dst, const void *host_src, size_t nbytes);
void cuda_copy(const Backend *be, void *dst, const void *src, size_t nbytes);
void cuda_synchronize(const Backend *be);

// random.cu: fill and random numbers
void cuda_fill(const Backend *be, float *y, float value, int64_t n);
void cuda_rng_uniform(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                      float lo, float hi);
void cuda_rng_normal(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                     float mean, float std);

// copy.cu
void cuda_copy_strided(const Backend *be, void *dst, const int64_t dst_stride[KERNEL_MAX_DIMS],
                       const void *src, const int64_t src_stride[KERNEL_MAX_DIMS],
                       const int64_t shape[KERNEL_MAX_DIMS]);

// elementwise.cu
void cuda_binary(const Backend *be, BinaryOp op, float *y, const float *a, const float *b,
                 const Broadcast *bc);
void cuda_binary_backward(const Backend *be, BinaryOp op, float *da, float *db, const float *a,
                          const float *b, const float *dy, const Broadcast *bc);
void cuda_unary(const Backend *be, UnaryOp op, float *y, const float *x, int64_t n);
void cuda_unary_backward(const Backend *be, UnaryOp op, float *dx, const float *x, const float *y,
                         const float *dy, int64_t n);
void cuda_scalar(const Backend *be, ScalarOp op, float *y, const float *x, float s, int64_t n);
void cuda_scalar_backward(const Backend *be, ScalarOp op, float *dx, const float *x, float s,
                          const float *dy, int64_t n);

// reduce.cu
void cuda_reduce(const Backend *be, ReduceOp op, float *y, const float *x,
                 const int64_t shape[KERNEL_MAX_DIMS], unsigned dims_mask);
void cuda_reduce_max_backward(const Backend *be, float *dx, const float *x, const float *y,
                              const float *dy, const int64_t shape[KERNEL_MAX_DIMS],
                              unsigned dims_mask);
double cuda_sum_squares(const Backend *be, const float *const *xs, const int64_t *ns, int count);

// matmul.cu
void cuda_matmul(const Backend *be, float *c, const float *a, const float *b, int64_t batch,
                 int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float alpha,
                 float beta, int64_t stride_a, int64_t stride_b, int64_t stride_c);
void cuda_matmul_bf16(const Backend *be, float *c, const float *a, const float *b,
                      int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
                      bool trans_b, float alpha, float beta, int64_t stride_a, int64_t stride_b,
                      int64_t stride_c);
const char *cuda_bf16_missing(const Backend *be);

// softmax.cu: softmax, cross-entropy, squared error
void cuda_softmax(const Backend *be, float *y, const float *x, int64_t rows, int64_t cols,
                  bool log);
void cuda_softmax_backward(const Backend *be, float *dx, const float *y, const float *dy,
                           int64_t rows, int64_t cols, bool log);
void cuda_cross_entropy(const Backend *be, float *loss, const float *logits, const int32_t *target,
                        int64_t rows, int64_t classes);
void cuda_cross_entropy_backward(const Backend *be, float *dlogits, const float *dloss,
                                 const float *logits, const int32_t *target, int64_t rows,
                                 int64_t classes);
void cuda_squared_error(const Backend *be, float *y, const float *a, const float *b, int64_t n);
void cuda_squared_error_backward(const Backend *be, float *da, float *db, const float *dy,
                                 const float *a, const float *b, float scale, int64_t n);

// norm.cu
void cuda_layernorm(const Backend *be, float *y, float *mean, float *rstd, const float *x,
                    const float *weight, const float *bias, int64_t rows, int64_t c, float eps);
void cuda_layernorm_backward(const Backend *be, float *dx, float *dweight, float *dbias,
                             const float *dy, const float *x, const float *mean, const float *rstd,
                             const float *weight, int64_t rows, int64_t c);
void cuda_groupnorm(const Backend *be, float *y, float *mean, float *rstd, const float *x,
                    const float *weight, const float *bias, int64_t n, int64_t c, int64_t hw,
                    int64_t groups, float eps);
void cuda_groupnorm_backward(const Backend *be, float *dx, float *dweight, float *dbias,
                             const float *dy, const float *x, const float *mean, const float *rstd,
                             const float *weight, int64_t n, int64_t c, int64_t hw, int64_t groups);

// conv.cu: im2col/col2im, nearest upsample, average pool, embedding
void cuda_im2col(const Backend *be, float *col, const float *x, int64_t n, const ConvGeometry *g);
void cuda_col2im(const Backend *be, float *dx, const float *col, int64_t n, const ConvGeometry *g);
void cuda_upsample_nearest(const Backend *be, float *y, const float *x, int64_t planes, int64_t h,
                           int64_t w, int64_t f);
void cuda_upsample_nearest_backward(const Backend *be, float *dx, const float *dy, int64_t planes,
                                    int64_t h, int64_t w, int64_t f);
void cuda_avgpool(const Backend *be, float *y, const float *x, int64_t planes, int64_t h, int64_t w,
                  int64_t k);
void cuda_avgpool_backward(const Backend *be, float *dx, const float *dy, int64_t planes, int64_t h,
                           int64_t w, int64_t k);
void cuda_embedding(const Backend *be, float *y, const float *table, const int32_t *index,
                    int64_t n, int64_t dim);
void cuda_embedding_backward(const Backend *be, float *dtable, const float *dy,
                             const int32_t *index, int64_t n, int64_t vocab, int64_t dim);

// attention.cu
void cuda_attention(const Backend *be, float *out, float *lse, const float *q, const float *k,
                    const float *v, int64_t ld, int64_t b, int64_t t, int64_t heads, int64_t d,
                    float scale);
void cuda_attention_backward(const Backend *be, float *dq, float *dk, float *dv, const float *dout,
                             const float *out, const float *lse, const float *q, const float *k,
                             const float *v, int64_t ld, int64_t b, int64_t t, int64_t heads,
                             int64_t d, float scale);

// adamw.cu
void cuda_adamw(const Backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                const AdamWStep *s);

#ifdef __cplusplus
}
#endif
