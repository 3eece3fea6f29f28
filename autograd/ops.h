// The differentiable ops: each runs its kernel(s) through the tensor's backend and, when
// grad mode is on and an input requires a gradient, records a node whose backward is defined
// beside the forward in the same file. Results belong to the current tensor scope.
//
// Shape errors are programmer errors here (the caller built the model): they abort with the
// op's name and both shapes. External input is validated before it reaches an op.
#pragma once

#include "autograd/autograd.h"

// ---- elementwise, broadcasting (NumPy rules) ---- autograd/ops_elementwise.c
Tensor *op_add(Tensor *a, Tensor *b);
Tensor *op_sub(Tensor *a, Tensor *b);
Tensor *op_mul(Tensor *a, Tensor *b);
Tensor *op_div(Tensor *a, Tensor *b);
Tensor *op_maximum(Tensor *a, Tensor *b);
Tensor *op_minimum(Tensor *a, Tensor *b);

Tensor *op_exp(Tensor *x);
Tensor *op_log(Tensor *x);
Tensor *op_sqrt(Tensor *x);
Tensor *op_tanh(Tensor *x);
Tensor *op_sigmoid(Tensor *x);
Tensor *op_relu(Tensor *x);
Tensor *op_silu(Tensor *x);
Tensor *op_gelu_tanh(Tensor *x);
Tensor *op_square(Tensor *x);
Tensor *op_neg(Tensor *x);
Tensor *op_abs(Tensor *x);

Tensor *op_add_scalar(Tensor *x, float s);
Tensor *op_mul_scalar(Tensor *x, float s);
Tensor *op_pow_scalar(Tensor *x, float p);
Tensor *op_clamp(Tensor *x, float lo, float hi);

// ---- reductions ---- autograd/ops_reduce.c
// dims_mask: bit d set reduces dim d (negative-free, 0-based). keepdim keeps reduced dims
// as size 1; otherwise they are removed (reducing every dim gives shape (1)).
Tensor *op_sum(Tensor *x, unsigned dims_mask, bool keepdim);
Tensor *op_mean(Tensor *x, unsigned dims_mask, bool keepdim);
Tensor *op_max(Tensor *x, unsigned dims_mask, bool keepdim);
Tensor *op_sum_all(Tensor *x);  // (1)
Tensor *op_mean_all(Tensor *x); // (1)

// ---- shape ---- autograd/ops_shape.c
Tensor *op_reshape(Tensor *x, Shape shape);
// y.shape[i] = x.shape[perm[i]]
Tensor *op_permute(Tensor *x, const int *perm);
Tensor *op_transpose(Tensor *x, int dim0, int dim1);
// broadcast x to shape (dims of size 1 repeat; missing leading dims are added)
Tensor *op_expand(Tensor *x, Shape shape);
// elements [start, start + len) along dim
Tensor *op_narrow(Tensor *x, int dim, int64_t start, int64_t len);
// This rank's rows of a global batch x (N, ...) (tensor/dist.h: dim 0 split evenly over the
// ranks); x itself in a world of one.
Tensor *op_shard(Tensor *x);
// N(0, 1) draws for this rank's rows: the draws of the global batch (local_shape's rows times
// the ranks), made on every rank alike, of which this rank keeps its own (untracked).
Tensor *op_shard_normal(Shape local_shape, Rng *rng, Device device);
Tensor *op_concat(Tensor *const *xs, int count, int dim);
// count equal pieces along dim into out[0..count)
void op_chunk(Tensor *x, int count, int dim, Tensor **out);

// ---- linear algebra ---- autograd/ops_matmul.c
// a (m, k) @ b (k, n) -> (m, n); a (B, m, k) @ b (B, k, n) -> (B, m, n);
// a (B, m, k) @ b (k, n) -> (B, m, n) (b shared across the batch)
Tensor *op_matmul(Tensor *a, Tensor *b);
// x (..., in), weight (out, in), bias (out) or NULL -> (..., out): x weight^T + bias
Tensor *op_linear(Tensor *x, Tensor *weight, Tensor *bias);

// ---- neural-network primitives ---- autograd/ops_nn.c
Tensor *op_softmax(Tensor *x);     // over the last dim
Tensor *op_log_softmax(Tensor *x); // over the last dim
// over the last dim; weight, bias (C) or NULL (elementwise_affine=False)
Tensor *op_layernorm(Tensor *x, Tensor *weight, Tensor *bias, float eps);
// x (N, C, H, W), groups dividing C; weight, bias (C) or NULL
Tensor *op_groupnorm(Tensor *x, int groups, Tensor *weight, Tensor *bias, float eps);
// table (vocab, dim), index (n) I32 -> (n, dim)
Tensor *op_embedding(Tensor *table, Tensor *index);
// logits (N, C), target (N) I32 -> (1): mean over rows of -log softmax(logits)[target]
Tensor *op_cross_entropy(Tensor *logits, Tensor *target);
// a, b same shape -> (1): mean((a - b)^2)
Tensor *op_mse(Tensor *a, Tensor *b);

// ---- convolution and resampling ---- autograd/ops_conv.c
// x (N, C, H, W), weight (OC, C, kh, kw), bias (OC) or NULL -> (N, OC, OH, OW)
Tensor *op_conv2d(Tensor *x, Tensor *weight, Tensor *bias, int stride, int pad);
// x (N, C, H, W) -> (N, C, H*f, W*f)
Tensor *op_upsample_nearest(Tensor *x, int factor);
// x (N, C, H, W) -> (N, C, H/k, W/k), window = stride = k
Tensor *op_avgpool(Tensor *x, int k);

// ---- attention ---- autograd/ops_attention.c
// q, k, v (B, H, T, D) -> (B, H, T, D): softmax(q k^T / sqrt(D)) v
Tensor *op_attention(Tensor *q, Tensor *k, Tensor *v);
// qkv (B, T, 3*C), the output of a packed qkv Linear, read as (B, T, 3, heads, C/heads)
// like timm's Attention -> (B, T, C), heads concatenated: no permute copies on the way.
Tensor *op_attention_qkv(Tensor *qkv, int heads);
