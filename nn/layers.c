// LayerNorm, GroupNorm, Conv2d, Embedding with PyTorch's default initialisation, and the
// initialisers and the sinusoidal time embedding the architectures share.
#include <math.h>
#include <stdlib.h>

#include "kernels/check.h"
#include "nn/layers.h"

// ---- LayerNorm ------------------------------------------------------------------------------

void layernorm_init(LayerNorm *n, int dim, bool affine, float eps, Device device) {
    DMDR_CHECK(dim > 0, "layernorm: dim %d", dim);
    *n = (LayerNorm){.dim = dim, .eps = eps};
    if (affine) {
        n->weight = param_leaf(tensor_ones(shape1(dim), device));
        n->bias = param_leaf(tensor_zeros(shape1(dim), device));
    }
}

// x (..., dim) -> (..., dim)
Tensor *layernorm_forward(const LayerNorm *n, Tensor *x) {
    return op_layernorm(x, n->weight, n->bias, n->eps);
}

void layernorm_params(LayerNorm *n, const char *prefix, ParamList *out) {
    if (!n->weight) return;
    params_add(out, prefix, "weight", n->weight, true);
    params_add(out, prefix, "bias", n->bias, true);
}

void layernorm_free(LayerNorm *n) {
    tensor_release(n->weight);
    tensor_release(n->bias);
    *n = (LayerNorm){0};
}

// ---- GroupNorm ------------------------------------------------------------------------------

void groupnorm_init(GroupNorm *n, int groups, int channels, float eps, Device device) {
    DMDR_CHECK(groups > 0 && channels > 0 && channels % groups == 0,
               "groupnorm: %d groups of %d channels", groups, channels);
    *n = (GroupNorm){.groups = groups, .channels = channels, .eps = eps};
    n->weight = param_leaf(tensor_ones(shape1(channels), device));
    n->bias = param_leaf(tensor_zeros(shape1(channels), device));
}

// x (N, C, H, W) -> (N, C, H, W)
Tensor *groupnorm_forward(const GroupNorm *n, Tensor *x) {
    return op_groupnorm(x, n->groups, n->weight, n->bias, n->eps);
}

void groupnorm_params(GroupNorm *n, const char *prefix, ParamList *out) {
    params_add(out, prefix, "weight", n->weight, true);
    params_add(out, prefix, "bias", n->bias, true);
}

void groupnorm_free(GroupNorm *n) {
    tensor_release(n->weight);
    tensor_release(n->bias);
    *n = (GroupNorm){0};
}

// ---- Conv2d ---------------------------------------------------------------------------------

void conv2d_init(Conv2d *c, int in_channels, int out_channels, int kernel, int stride, int pad,
                 bool bias, Device device, Rng *rng) {
    DMDR_CHECK(in_channels > 0 && out_channels > 0 && kernel > 0 && stride > 0 && pad >= 0,
               "conv2d: %d -> %d channels, kernel %d, stride %d, pad %d", in_channels,
               out_channels, kernel, stride, pad);
    *c = (Conv2d){.in_channels = in_channels, .out_channels = out_channels, .kernel = kernel,
                  .stride = stride, .pad = pad};
    // kaiming_uniform(a = sqrt(5)): gain sqrt(1/3), bound sqrt(3) gain / sqrt(fan_in)
    float bound = 1.0f / sqrtf((float)in_channels * (float)kernel * (float)kernel);
    c->weight = param_leaf(tensor_uniform(shape4(out_channels, in_channels, kernel, kernel), rng,
                                         -bound, bound, device));
    if (bias)
        c->bias = param_leaf(tensor_uniform(shape1(out_channels), rng, -bound, bound, device));
}

// x (N, in, H, W) -> (N, out, OH, OW)
Tensor *conv2d_forward(const Conv2d *c, Tensor *x) {
    return op_conv2d(x, c->weight, c->bias, c->stride, c->pad);
}

void conv2d_params(Conv2d *c, const char *prefix, ParamList *out) {
    params_add(out, prefix, "weight", c->weight, true);
    if (c->bias) params_add(out, prefix, "bias", c->bias, true);
}

void conv2d_free(Conv2d *c) {
    tensor_release(c->weight);
    tensor_release(c->bias);
    *c = (Conv2d){0};
}

// ---- Embedding ------------------------------------------------------------------------------

void embedding_init(Embedding *e, int count, int dim, Device device, Rng *rng) {
    DMDR_CHECK(count > 0 && dim > 0, "embedding: %d rows of %d", count, dim);
    *e = (Embedding){.count = count, .dim = dim};
    e->weight = param_leaf(tensor_normal(shape2(count, dim), rng, 0.0f, 1.0f, device));
}

// index (n) I32 -> (n, dim)
Tensor *embedding_forward(const Embedding *e, Tensor *index) {
    return op_embedding(e->weight, index);
}

void embedding_params(Embedding *e, const char *prefix, ParamList *out) {
    params_add(out, prefix, "weight", e->weight, true);
}

void embedding_free(Embedding *e) {
    tensor_release(e->weight);
    *e = (Embedding){0};
}

// ---- shared helpers -------------------------------------------------------------------------

// t (any shape, numel = fan_out * fan_in * receptive field folded into fan_in) in place
void init_xavier_uniform(Tensor *t, int64_t fan_in, int64_t fan_out, Rng *rng) {
    DMDR_CHECK(fan_in > 0 && fan_out > 0 && tensor_numel(t) == fan_in * fan_out,
               "xavier: %lld elements for fan_in %lld, fan_out %lld",
               (long long)tensor_numel(t), (long long)fan_in, (long long)fan_out);
    float bound = (float)sqrt(6.0 / (double)(fan_in + fan_out));
    int64_t n = tensor_numel(t);
    const Backend *be = tensor_backend(t);
    be->rng_uniform(be, tensor_f32(t), n, rng->seed, rng_reserve(rng, n), -bound, bound);
}

// t (n) -> (n, dim), untracked: [cos(t f_0..f_{half-1}), sin(..)], a zero column when dim is
// odd. There is no cos/sin kernel, and the time input never needs a gradient, so the table
// is computed on the host (n x dim values; a read of n floats from the device) and uploaded.
// Float arithmetic in PyTorch's order (f = exp(-log(P) * i / half), args = t * f in fp32)
// so the values agree with the reference to the last bits cosf/sinf allow.
Tensor *timestep_embedding(Tensor *t, int dim, float max_period) {
    DMDR_CHECK(t->shape.ndim == 1 && t->dtype == DTYPE_F32 && dim >= 2 && max_period > 0.0f,
               "timestep_embedding: t must be (n) F32, dim >= 2");
    int64_t n = t->shape.dim[0];
    int half = dim / 2;
    float *ht = malloc((size_t)n * sizeof *ht + 1);
    float *freq = malloc((size_t)half * sizeof *freq);
    float *out = malloc((size_t)(n * dim) * sizeof *out + 1);
    DMDR_CHECK(ht && freq && out, "out of host memory");
    tensor_read(t, ht);
    float neg_log_period = (float)-log((double)max_period);
    for (int i = 0; i < half; i++) freq[i] = expf(neg_log_period * (float)i / (float)half);
    for (int64_t r = 0; r < n; r++) {
        float *row = out + r * dim;
        for (int i = 0; i < half; i++) {
            float arg = ht[r] * freq[i];
            row[i] = cosf(arg);
            row[half + i] = sinf(arg);
        }
        if (dim % 2) row[dim - 1] = 0.0f;
    }
    Tensor *y = tensor_from_floats(shape2(n, dim), out, t->device);
    free(ht);
    free(freq);
    free(out);
    return y;
}
