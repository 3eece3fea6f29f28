// The building-block modules. Each is a plain struct of parameter tensors (retained by the
// module) with an _init that creates them with PyTorch's default initialisation, a _forward
// built from autograd ops, a _params that registers them under their state_dict names, and a
// _free. Architectures (nn/dit.c, nn/unet.c, nn/mlp_score.c) compose these.
#pragma once

#include "autograd/ops.h"
#include "nn/params.h"

// ---- LoRA adapter (nn/lora.c) ----------------------------------------------------------------
// A low-rank update delta(x) = scale * factor * (x A^T) B^T of rank r, A (r, in), B (out, r)
// zero, so an attached adapter changes nothing until it is trained. `factor` is fixed when it
// is attached (PEFT: alpha / r; the DMDR authors: 1); `scale` is set at run time (DMDR
// evaluates one adapter at two scales). Registered as "<prefix>lora_A.weight" / "lora_B.weight".
typedef struct {
    Tensor *a, *b; // NULL until attached
    int rank;
    float factor, scale;
} Lora;

// A ~ N(0, a_std^2), B = 0, scale 1
void lora_attach(Lora *l, int in_features, int out_features, int rank, float factor, float a_std,
                 Device device, Rng *rng);
// y + delta(x): y itself when nothing is attached or the scale is 0. x (..., in), y (..., out)
Tensor *lora_add(const Lora *l, Tensor *x, Tensor *y);
void lora_params(Lora *l, const char *prefix, ParamList *out); // nothing when not attached
void lora_free(Lora *l);

// ---- Linear (+ LoRA) ----------------------------------------------------------------------
// y = x W^T + b (+ the adapter's delta(x) once one is attached), W (out, in) as nn.Linear
// stores it.
typedef struct {
    Tensor *weight, *bias; // bias may be NULL
    Lora lora;
    int in_features, out_features;
} Linear;

// weight, bias ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's default for nn.Linear)
void linear_init(Linear *l, int in_features, int out_features, bool bias, Device device,
                 Rng *rng);
// weight ~ Xavier-uniform, bias 0 (the DiT reference's init for its linears)
void linear_init_xavier(Linear *l, Rng *rng);
// x (..., in) -> (..., out)
Tensor *linear_forward(const Linear *l, Tensor *x);
// Registers weight/bias (trainable unless frozen) and the LoRA pair (always trainable).
void linear_params(Linear *l, const char *prefix, bool frozen, ParamList *out);
void linear_free(Linear *l);

// ---- normalisation --------------------------------------------------------------------------
typedef struct {
    Tensor *weight, *bias; // NULL when elementwise_affine=False
    int dim;
    float eps;
} LayerNorm;

void layernorm_init(LayerNorm *n, int dim, bool affine, float eps, Device device);
Tensor *layernorm_forward(const LayerNorm *n, Tensor *x); // x (..., dim)
void layernorm_params(LayerNorm *n, const char *prefix, ParamList *out);
void layernorm_free(LayerNorm *n);

typedef struct {
    Tensor *weight, *bias;
    int groups, channels;
    float eps;
} GroupNorm;

void groupnorm_init(GroupNorm *n, int groups, int channels, float eps, Device device);
Tensor *groupnorm_forward(const GroupNorm *n, Tensor *x); // x (N, C, H, W)
void groupnorm_params(GroupNorm *n, const char *prefix, ParamList *out);
void groupnorm_free(GroupNorm *n);

// ---- Conv2d, Embedding ------------------------------------------------------------------------
typedef struct {
    Tensor *weight, *bias; // weight (out, in, k, k); bias (out) or NULL
    int in_channels, out_channels, kernel, stride, pad;
} Conv2d;

// PyTorch's default init: kaiming-uniform(a = sqrt(5)) weight, U(-1/sqrt(fan_in), ..) bias
void conv2d_init(Conv2d *c, int in_channels, int out_channels, int kernel, int stride, int pad,
                 bool bias, Device device, Rng *rng);
Tensor *conv2d_forward(const Conv2d *c, Tensor *x); // x (N, in, H, W) -> (N, out, OH, OW)
void conv2d_params(Conv2d *c, const char *prefix, ParamList *out);
void conv2d_free(Conv2d *c);

typedef struct {
    Tensor *weight; // (count, dim)
    int count, dim;
} Embedding;

// weight ~ N(0, 1) (PyTorch's default for nn.Embedding)
void embedding_init(Embedding *e, int count, int dim, Device device, Rng *rng);
Tensor *embedding_forward(const Embedding *e, Tensor *index); // index (n) I32 -> (n, dim)
void embedding_params(Embedding *e, const char *prefix, ParamList *out);
void embedding_free(Embedding *e);

// ---- multi-head self-attention and MLP (timm's Attention and Mlp) -------------------------
// nn/transformer.c. Both start with PyTorch's default Linear init; architectures re-initialise
// (the DiT: Xavier; the UNet: a zero proj so the block starts as the identity).
// q_lora and v_lora are the DMDR authors' adapters on the projected q and v (q + delta(q),
// v + delta(v)), attached only by that LoRA style (model_add_lora).
typedef struct {
    Linear qkv, proj; // qkv (3 dim, dim): read as (B, T, 3, heads, dim / heads); proj (dim, dim)
    Lora q_lora, v_lora;
    int heads;
} Attention;

void attention_init(Attention *a, int dim, int heads, Device device, Rng *rng);
// x (B, T, dim) -> proj(softmax(q k^T / sqrt(dim / heads)) v), heads concatenated
Tensor *attention_forward(const Attention *a, Tensor *x);
void attention_params(Attention *a, const char *prefix, ParamList *out); // "qkv.", "proj."
void attention_free(Attention *a);

typedef struct {
    Linear fc1, fc2; // fc1 (hidden, dim), fc2 (dim, hidden)
} Mlp;

void mlp_init(Mlp *m, int dim, int hidden, Device device, Rng *rng);
// x (..., dim) -> fc2(gelu_tanh(fc1(x))) (..., dim)
Tensor *mlp_forward(const Mlp *m, Tensor *x);
void mlp_params(Mlp *m, const char *prefix, ParamList *out); // "fc1.", "fc2."
void mlp_free(Mlp *m);

// ---- helpers shared by the architectures ----------------------------------------------------
// Fills t with Xavier-uniform values for a (fan_out, fan_in) matrix.
void init_xavier_uniform(Tensor *t, int64_t fan_in, int64_t fan_out, Rng *rng);
// Sinusoidal embedding of t (n) -> (n, dim): [cos(t f_i), sin(t f_i)], f_i = max_period^(-i/half)
// (the DiT/SiT TimestepEmbedder.timestep_embedding, max_period 10000).
Tensor *timestep_embedding(Tensor *t, int dim, float max_period);
