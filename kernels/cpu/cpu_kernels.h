// The CPU backend's kernels, one declaration per entry of the Backend table
// (kernels/backend.h has the shapes and semantics of each). cpu_backend.c assembles the table.
// The CPU backend keeps no state: its kernels take the table `be` only because every entry
// does, and most ignore it ((void)be).
#pragma once

#include "kernels/backend.h"

// cpu_backend.c: memory, fill, random numbers, strided copy
void *cpu_alloc(const Backend *be, size_t nbytes);
void cpu_free(const Backend *be, void *ptr);
void cpu_copy_bytes(const Backend *be, void *dst, const void *src, size_t nbytes);
void cpu_synchronize(const Backend *be);
void cpu_fill(const Backend *be, float *y, float value, int64_t n);
void cpu_rng_uniform(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                     float lo, float hi);
void cpu_rng_normal(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                    float mean, float std);
void cpu_copy_strided(const Backend *be, void *dst, const int64_t dst_stride[KERNEL_MAX_DIMS],
                      const void *src, const int64_t src_stride[KERNEL_MAX_DIMS],
                      const int64_t shape[KERNEL_MAX_DIMS]);

// elementwise.c
void cpu_binary(const Backend *be, BinaryOp op, float *y, const float *a, const float *b,
                const Broadcast *bc);
void cpu_binary_backward(const Backend *be, BinaryOp op, float *da, float *db, const float *a,
                         const float *b, const float *dy, const Broadcast *bc);
void cpu_unary(const Backend *be, UnaryOp op, float *y, const float *x, int64_t n);
void cpu_unary_backward(const Backend *be, UnaryOp op, float *dx, const float *x, const float *y,
                        const float *dy, int64_t n);
void cpu_scalar(const Backend *be, ScalarOp op, float *y, const float *x, float s, int64_t n);
void cpu_scalar_backward(const Backend *be, ScalarOp op, float *dx, const float *x, float s,
                         const float *dy, int64_t n);

// reduce.c
void cpu_reduce(const Backend *be, ReduceOp op, float *y, const float *x,
                const int64_t shape[KERNEL_MAX_DIMS], unsigned dims_mask);
void cpu_reduce_max_backward(const Backend *be, float *dx, const float *x, const float *y,
                             const float *dy, const int64_t shape[KERNEL_MAX_DIMS],
                             unsigned dims_mask);
double cpu_sum_squares(const Backend *be, const float *const *xs, const int64_t *ns, int count);

// matmul.c
void cpu_matmul(const Backend *be, float *c, const float *a, const float *b, int64_t batch,
                int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float alpha,
                float beta, int64_t stride_a, int64_t stride_b, int64_t stride_c);

// matmul_bf16.c
void cpu_matmul_bf16(const Backend *be, float *c, const float *a, const float *b, int64_t batch,
                     int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float alpha,
                     float beta, int64_t stride_a, int64_t stride_b, int64_t stride_c);
const char *cpu_bf16_missing(const Backend *be);

// softmax.c: softmax, cross-entropy, squared error
void cpu_softmax(const Backend *be, float *y, const float *x, int64_t rows, int64_t cols, bool log);
void cpu_softmax_backward(const Backend *be, float *dx, const float *y, const float *dy,
                          int64_t rows, int64_t cols, bool log);
void cpu_cross_entropy(const Backend *be, float *loss, const float *logits, const int32_t *target,
                       int64_t rows, int64_t classes);
void cpu_cross_entropy_backward(const Backend *be, float *dlogits, const float *dloss,
                                const float *logits, const int32_t *target, int64_t rows,
                                int64_t classes);
void cpu_squared_error(const Backend *be, float *y, const float *a, const float *b, int64_t n);
void cpu_squared_error_backward(const Backend *be, float *da, float *db, const float *dy,
                                const float *a, const float *b, float scale, int64_t n);

// norm.c
void cpu_layernorm(const Backend *be, float *y, float *mean, float *rstd, const float *x,
                   const float *weight, const float *bias, int64_t rows, int64_t c, float eps);
void cpu_layernorm_backward(const Backend *be, float *dx, float *dweight, float *dbias,
                            const float *dy, const float *x, const float *mean, const float *rstd,
                            const float *weight, int64_t rows, int64_t c);
void cpu_groupnorm(const Backend *be, float *y, float *mean, float *rstd, const float *x,
                   const float *weight, const float *bias, int64_t n, int64_t c, int64_t hw,
                   int64_t groups, float eps);
void cpu_groupnorm_backward(const Backend *be, float *dx, float *dweight, float *dbias,
                            const float *dy, const float *x, const float *mean, const float *rstd,
                            const float *weight, int64_t n, int64_t c, int64_t hw, int64_t groups);

// conv.c: im2col/col2im, nearest upsample, average pool, embedding
void cpu_im2col(const Backend *be, float *col, const float *x, int64_t n, const ConvGeometry *g);
void cpu_col2im(const Backend *be, float *dx, const float *col, int64_t n, const ConvGeometry *g);
void cpu_upsample_nearest(const Backend *be, float *y, const float *x, int64_t planes, int64_t h,
                          int64_t w, int64_t f);
void cpu_upsample_nearest_backward(const Backend *be, float *dx, const float *dy, int64_t planes,
                                   int64_t h, int64_t w, int64_t f);
void cpu_avgpool(const Backend *be, float *y, const float *x, int64_t planes, int64_t h, int64_t w,
                 int64_t k);
void cpu_avgpool_backward(const Backend *be, float *dx, const float *dy, int64_t planes, int64_t h,
                          int64_t w, int64_t k);
void cpu_embedding(const Backend *be, float *y, const float *table, const int32_t *index, int64_t n,
                   int64_t dim);
void cpu_embedding_backward(const Backend *be, float *dtable, const float *dy, const int32_t *index,
                            int64_t n, int64_t vocab, int64_t dim);

// attention.c
void cpu_attention(const Backend *be, float *out, float *lse, const float *q, const float *k,
                   const float *v, int64_t ld, int64_t b, int64_t t, int64_t heads, int64_t d,
                   float scale);
void cpu_attention_backward(const Backend *be, float *dq, float *dk, float *dv, const float *dout,
                            const float *out, const float *lse, const float *q, const float *k,
                            const float *v, int64_t ld, int64_t b, int64_t t, int64_t heads,
                            int64_t d, float scale);

// adamw.c
void cpu_adamw(const Backend *be, float *p, const float *g, float *m, float *v, int64_t n,
               const AdamWStep *s);
