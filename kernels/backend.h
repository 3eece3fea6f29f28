// The backend table: the one list of primitive kernels dmdr is built from.
//
// Every backend (kernels/cpu, kernels/cuda) fills one `Backend` struct with the whole
// list. Everything above this layer (tensors, autograd, models) calls kernels only through
// this table, so a model runs on any backend unchanged, and test/test_kernels.c runs every
// entry of every compiled backend against a plain reference loop.
//
// Conventions for every kernel:
// - Pointers are device pointers of the backend (host memory for the CPU backend).
// - Buffers are contiguous, row-major, PyTorch dimension order, unless a stride is passed.
// - Kernels overwrite their outputs (they never accumulate) unless the comment says so;
//   gradient accumulation is the autograd engine's job.
// - Sizes are int64_t element counts; the comment after each entry gives the shapes.
// - Kernels never fail on valid arguments: argument validation happens in the layers
//   above, where a wrong shape can be reported against the op that received it.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KERNEL_MAX_DIMS 4

typedef enum {
    BINARY_ADD,
    BINARY_SUB,
    BINARY_MUL,
    BINARY_DIV,
    BINARY_MAX, // elementwise maximum; gradient goes to a where a >= b
    BINARY_MIN, // elementwise minimum; gradient goes to a where a <= b
    BINARY_OP_COUNT
} BinaryOp;

typedef enum {
    UNARY_EXP,
    UNARY_LOG,
    UNARY_SQRT,
    UNARY_TANH,
    UNARY_SIGMOID,
    UNARY_RELU,
    UNARY_SILU,
    UNARY_GELU_TANH, // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch approximate='tanh'
    UNARY_SQUARE,
    UNARY_NEG,
    UNARY_ABS,
    UNARY_OP_COUNT
} UnaryOp;

typedef enum {
    SCALAR_ADD, // x + s
    SCALAR_MUL, // x * s
    SCALAR_POW, // x ^ s
    SCALAR_MAX, // max(x, s); gradient where x >= s (clamp from below)
    SCALAR_MIN, // min(x, s); gradient where x <= s (clamp from above)
    SCALAR_OP_COUNT
} ScalarOp;

typedef enum { REDUCE_SUM, REDUCE_MEAN, REDUCE_MAX, REDUCE_OP_COUNT } ReduceOp;

// A 4-d broadcast: the output is contiguous with `shape`; input a is read at
// sum(i[d] * a_stride[d]) and b likewise. A stride of 0 repeats that input along d.
// Shapes of lower rank are padded with leading 1s.
typedef struct {
    int64_t shape[KERNEL_MAX_DIMS];
    int64_t a_stride[KERNEL_MAX_DIMS];
    int64_t b_stride[KERNEL_MAX_DIMS];
} Broadcast;

// A 2-d convolution's geometry (one image): input (c, h, w), kernel (kh, kw),
// output (oh, ow) = ((h + 2 pad - kh) / stride + 1, (w + 2 pad - kw) / stride + 1).
typedef struct {
    int64_t c, h, w;
    int64_t kh, kw;
    int64_t stride, pad;
    int64_t oh, ow;
} ConvGeometry;

// One AdamW step's scalars (PyTorch torch.optim.AdamW semantics):
// g' = g * grad_scale; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
// p = p - lr * wd * p - lr * (m / bias_correction1) / (sqrt(v / bias_correction2) + eps).
// grad_scale folds global-norm gradient clipping into the update (1 when not clipping).
typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    float bias_correction1, bias_correction2; // 1 - beta^step
    float grad_scale;
} AdamWStep;

// Every entry takes the table it was called through as its first argument, `be`: the device's
// state (the CUDA backend's stream, scratch memory and cuBLAS handle) travels with the call
// instead of living in file globals, so that several devices or streams can coexist later.
// Call an entry as be->fill(be, y, value, n).
typedef struct Backend Backend;

struct Backend {
    const char *name;
    void *state; // the backend's own (CudaContext for CUDA; NULL for the CPU)

    // ---- memory -------------------------------------------------------------------
    void *(*alloc)(const Backend *be, size_t nbytes); // NULL when out of memory
    void (*free)(const Backend *be, void *ptr);
    void (*copy_to_host)(const Backend *be, void *host_dst, const void *src, size_t nbytes);
    void (*copy_from_host)(const Backend *be, void *dst, const void *host_src, size_t nbytes);
    // within this device
    void (*copy)(const Backend *be, void *dst, const void *src, size_t nbytes);
    void (*synchronize)(const Backend *be);

    // ---- filling and random numbers ---------------------------------------------------
    // y (n) = value
    void (*fill)(const Backend *be, float *y, float value, int64_t n);
    // y (n): Philox-4x32-10 with key `seed`; element i comes from counter block
    // (offset + i / 4), word i % 4, so the numbers depend only on (seed, offset, i):
    // never on thread count or device. A call consumes ceil(n / 4) counter blocks.
    void (*rng_uniform)(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                        float lo, float hi);
    // y (n) ~ N(mean, std^2), Box-Muller over the same counter blocks as rng_uniform: the
    // words (w0, w1) and (w2, w3) of a block are pairs; with u = philox_to_unit, the pair
    // (wa, wb) gives r = sqrt(-2 log u(wa)), angle = 2 pi u(wb), element a = r cos(angle),
    // element b = r sin(angle). Every backend computes exactly this, so noise matches.
    void (*rng_normal)(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                       float mean, float std);

    // ---- data movement ------------------------------------------------------------------
    // dst[i . dst_stride] = src[i . src_stride] for every index i < shape (4-d, elements).
    // Elements are 32-bit words (float or int32). Permute, transpose, expand, concat,
    // split and slicing are all this one kernel with different strides.
    void (*copy_strided)(const Backend *be, void *dst, const int64_t dst_stride[KERNEL_MAX_DIMS],
                         const void *src, const int64_t src_stride[KERNEL_MAX_DIMS],
                         const int64_t shape[KERNEL_MAX_DIMS]);

    // ---- elementwise ----------------------------------------------------------------------
    // y (bc.shape) = a (bc.a_stride) op b (bc.b_stride). y may alias a or b when that input
    // is full-shaped (in-place accumulation).
    void (*binary)(const Backend *be, BinaryOp op, float *y, const float *a, const float *b,
                   const Broadcast *bc);
    // da, db (bc.shape, contiguous, full output shape: the caller sums over broadcast dims)
    // = dy * d(a op b)/da, dy * d(a op b)/db. Either output may be NULL.
    void (*binary_backward)(const Backend *be, BinaryOp op, float *da, float *db, const float *a,
                            const float *b, const float *dy, const Broadcast *bc);
    // y (n) = f(x)
    void (*unary)(const Backend *be, UnaryOp op, float *y, const float *x, int64_t n);
    // dx (n) = dy * f'(x); y = f(x) is passed for ops whose derivative is cheaper from it.
    void (*unary_backward)(const Backend *be, UnaryOp op, float *dx, const float *x, const float *y,
                           const float *dy, int64_t n);
    // y (n) = x op s
    void (*scalar)(const Backend *be, ScalarOp op, float *y, const float *x, float s, int64_t n);
    // dx (n) = dy * d(x op s)/dx
    void (*scalar_backward)(const Backend *be, ScalarOp op, float *dx, const float *x, float s,
                            const float *dy, int64_t n);

    // ---- reductions ---------------------------------------------------------------------
    // x (shape, 4-d) -> y (shape with every dim d whose bit (1 << d) is in dims_mask set to 1).
    // d counts dims of the 4-d padded shape: for a (rows, c) tensor, c is d = 3.
    void (*reduce)(const Backend *be, ReduceOp op, float *y, const float *x,
                   const int64_t shape[KERNEL_MAX_DIMS], unsigned dims_mask);
    // dx (shape) = dy (reduced shape) routed to the maxima; ties share it equally.
    void (*reduce_max_backward)(const Backend *be, float *dx, const float *x, const float *y,
                                const float *dy, const int64_t shape[KERNEL_MAX_DIMS],
                                unsigned dims_mask);
    // returns sum over tensors j of sum(xs[j][i]^2): the global gradient norm squared,
    // accumulated in double. xs and ns are host arrays; xs[j] are device pointers.
    // Synchronises with the device.
    double (*sum_squares)(const Backend *be, const float *const *xs, const int64_t *ns, int count);

    // ---- linear algebra -------------------------------------------------------------------
    // For i < batch: C_i (m, n) = alpha * op(A_i) op(B_i) + beta * C_i, where
    // op(A_i) (m, k) is A_i (m, k), or A_i stored (k, m) when trans_a;
    // op(B_i) (k, n) is B_i (k, n), or B_i stored (n, k) when trans_b.
    // X_i = X + i * stride_x; a stride of 0 uses the same A or B for every i
    // (stride_c must not be 0 when batch > 1). With beta = 0, C is not read (BLAS convention),
    // so it may hold garbage.
    void (*matmul)(const Backend *be, float *c, const float *a, const float *b, int64_t batch,
                   int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float alpha,
                   float beta, int64_t stride_a, int64_t stride_b, int64_t stride_c);
    // The same product in mixed precision (PyTorch autocast's GEMM): op(A_i) and op(B_i)
    // rounded to bfloat16 (kernels/bf16.h: nearest, ties to even), their products accumulated
    // in fp32, C fp32. Every backend computes it, with bf16 hardware or without.
    void (*matmul_bf16)(const Backend *be, float *c, const float *a, const float *b,
                        int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
                        bool trans_b, float alpha, float beta, int64_t stride_a,
                        int64_t stride_b, int64_t stride_c);
    // NULL when matmul_bf16 runs on bf16 hardware here (faster than matmul), else why not, in
    // a few words: a run asking for bf16 then keeps fp32.
    const char *(*bf16_missing)(const Backend *be);

    // ---- softmax and losses ---------------------------------------------------------------
    // x, y (rows, cols): softmax (or log-softmax) over cols.
    void (*softmax)(const Backend *be, float *y, const float *x, int64_t rows, int64_t cols,
                    bool log);
    // dx (rows, cols) from y = softmax(x) (or log-softmax) and dy.
    void (*softmax_backward)(const Backend *be, float *dx, const float *y, const float *dy,
                             int64_t rows, int64_t cols, bool log);
    // logits (rows, classes), target (rows) in [0, classes) ->
    // loss (rows) = logsumexp(logits_r) - logits_r[target_r]
    void (*cross_entropy)(const Backend *be, float *loss, const float *logits,
                          const int32_t *target, int64_t rows, int64_t classes);
    // dlogits (rows, classes) = (softmax(logits_r) - onehot(target_r)) * dloss[r]
    void (*cross_entropy_backward)(const Backend *be, float *dlogits, const float *dloss,
                                   const float *logits, const int32_t *target, int64_t rows,
                                   int64_t classes);
    // y (1) = sum((a - b)^2) over a, b (n)
    void (*squared_error)(const Backend *be, float *y, const float *a, const float *b, int64_t n);
    // da (n) = scale * dy[0] * (a - b); db = -da. Either may be NULL. dy (1) is a device
    // scalar so the backward needs no host round trip.
    void (*squared_error_backward)(const Backend *be, float *da, float *db, const float *dy,
                                   const float *a, const float *b, float scale, int64_t n);

    // ---- normalisation ----------------------------------------------------------------------
    // x, y (rows, c); weight, bias (c) or NULL; mean, rstd (rows) saved for the backward.
    void (*layernorm)(const Backend *be, float *y, float *mean, float *rstd, const float *x,
                      const float *weight, const float *bias, int64_t rows, int64_t c, float eps);
    // dx (rows, c); dweight, dbias (c) written when not NULL.
    void (*layernorm_backward)(const Backend *be, float *dx, float *dweight, float *dbias,
                               const float *dy, const float *x, const float *mean,
                               const float *rstd, const float *weight, int64_t rows, int64_t c);
    // x, y (n, c, hw); groups of c / groups channels; weight, bias (c) or NULL;
    // mean, rstd (n, groups).
    void (*groupnorm)(const Backend *be, float *y, float *mean, float *rstd, const float *x,
                      const float *weight, const float *bias, int64_t n, int64_t c, int64_t hw,
                      int64_t groups, float eps);
    // dx (n, c, hw); dweight, dbias (c) written when not NULL.
    void (*groupnorm_backward)(const Backend *be, float *dx, float *dweight, float *dbias,
                               const float *dy, const float *x, const float *mean,
                               const float *rstd, const float *weight, int64_t n, int64_t c,
                               int64_t hw, int64_t groups);

    // ---- convolution, resampling, gather -------------------------------------------------
    // x (n, c, h, w) -> col (c*kh*kw, n*oh*ow): row r = (ci, ky, kx), column j = (img, oy, ox).
    // Laid out so a whole chunk of images is one GEMM with the (oc, c*kh*kw) weight.
    void (*im2col)(const Backend *be, float *col, const float *x, int64_t n, const ConvGeometry *g);
    // col (c*kh*kw, n*oh*ow) -> dx (n, c, h, w), summing overlapping patches (the adjoint).
    void (*col2im)(const Backend *be, float *dx, const float *col, int64_t n,
                   const ConvGeometry *g);
    // x (planes, h, w) -> y (planes, h*f, w*f)
    void (*upsample_nearest)(const Backend *be, float *y, const float *x, int64_t planes, int64_t h,
                             int64_t w, int64_t f);
    // dy (planes, h*f, w*f) -> dx (planes, h, w)
    void (*upsample_nearest_backward)(const Backend *be, float *dx, const float *dy, int64_t planes,
                                      int64_t h, int64_t w, int64_t f);
    // x (planes, h, w) -> y (planes, h/k, w/k), window k, stride k (h, w divisible by k)
    void (*avgpool)(const Backend *be, float *y, const float *x, int64_t planes, int64_t h,
                    int64_t w, int64_t k);
    // dy (planes, h/k, w/k) -> dx (planes, h, w)
    void (*avgpool_backward)(const Backend *be, float *dx, const float *dy, int64_t planes,
                             int64_t h, int64_t w, int64_t k);
    // table (vocab, dim), index (n) in [0, vocab) -> y (n, dim)
    void (*embedding)(const Backend *be, float *y, const float *table, const int32_t *index,
                      int64_t n, int64_t dim);
    // dy (n, dim) -> dtable (vocab, dim): zeroed, then dy rows summed into their index rows.
    void (*embedding_backward)(const Backend *be, float *dtable, const float *dy,
                               const int32_t *index, int64_t n, int64_t vocab, int64_t dim);

    // ---- attention -------------------------------------------------------------------------
    // Scaled dot-product attention, no mask. q, k, v are (b, t, heads, d) with `ld` elements
    // between consecutive tokens: heads*d for separate tensors, 3*heads*d when they are the
    // three thirds of a packed qkv projection (the DiT/timm layout). out (b, t, heads, d)
    // contiguous; lse (b, heads, t) the log-sum-exp of each row of scale * q k^T.
    void (*attention)(const Backend *be, float *out, float *lse, const float *q, const float *k,
                      const float *v, int64_t ld, int64_t b, int64_t t, int64_t heads, int64_t d,
                      float scale);
    // dq, dk, dv written with the layout (and ld) of q, k, v; they may point into one
    // packed dqkv buffer.
    void (*attention_backward)(const Backend *be, float *dq, float *dk, float *dv,
                               const float *dout, const float *out, const float *lse,
                               const float *q, const float *k, const float *v, int64_t ld,
                               int64_t b, int64_t t, int64_t heads, int64_t d, float scale);

    // ---- optimiser --------------------------------------------------------------------------
    // p, g, m, v (n): one AdamW step in place on p, m, v.
    void (*adamw)(const Backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                  const AdamWStep *s);

    // ---- collectives across ranks on this device's memory --------------------------------
    // For a backend whose memory the host cannot reduce in place (NCCL on CUDA); NULL where
    // tensor/dist.h's host path (MPI over host buffers) serves. The ranks join once:
    // collective_id on rank 0 writes an opaque id (BACKEND_COLLECTIVE_ID_BYTES), every rank
    // receives it (dist_broadcast) and calls collective_init -> 0, or -1 with why in reason.
    int (*collective_id)(const Backend *be, void *id, char *reason, size_t reason_size);
    int (*collective_init)(const Backend *be, const void *id, int rank, int size, char *reason,
                           size_t reason_size);
    // x (n) = the sum of x over the ranks, in place, ordered after the work queued before it
    void (*allreduce_sum)(const Backend *be, float *x, int64_t n);
};

#define BACKEND_COLLECTIVE_ID_BYTES 128 // NCCL_UNIQUE_ID_BYTES

typedef enum { DEVICE_CPU = 0, DEVICE_CUDA = 1, DEVICE_COUNT } Device;

// The GEMMs' precision: fp32 throughout, or bf16 operands with fp32 accumulation (matmul_bf16).
typedef enum { PRECISION_FP32 = 0, PRECISION_BF16 = 1, PRECISION_COUNT } Precision;

const char *precision_name(Precision precision);

// The backend for a device, or NULL when it is not compiled in or has no usable device.
const Backend *backend_get(Device device);
const char *device_name(Device device);

extern const Backend cpu_backend;
