// The two sublayers of a transformer block, as timm writes them: multi-head self-attention over
// a packed qkv projection, and the two-layer GELU(tanh) MLP. The DiT blocks and the UNet's
// middle attention are built from these.
#include "kernels/check.h"
#include "nn/layers.h"

void attention_init(Attention *a, int dim, int heads, Device device, Rng *rng) {
    DMDR_CHECK(heads >= 1 && dim % heads == 0, "attention: %d heads do not divide dim %d", heads,
               dim);
    linear_init(&a->qkv, dim, 3 * dim, true, device, rng);
    linear_init(&a->proj, dim, dim, true, device, rng);
    a->heads = heads;
}

// x (B, T, dim) -> (B, T, dim)
Tensor *attention_forward(const Attention *a, Tensor *x) {
    return linear_forward(&a->proj, op_attention_qkv(linear_forward(&a->qkv, x), a->heads));
}

void attention_params(Attention *a, const char *prefix, ParamList *out) {
    char name[PARAM_NAME_MAX];
    linear_params(&a->qkv, params_prefix(name, prefix, "qkv"), false, out);
    linear_params(&a->proj, params_prefix(name, prefix, "proj"), false, out);
}

void attention_free(Attention *a) {
    linear_free(&a->qkv);
    linear_free(&a->proj);
}

void mlp_init(Mlp *m, int dim, int hidden, Device device, Rng *rng) {
    linear_init(&m->fc1, dim, hidden, true, device, rng);
    linear_init(&m->fc2, hidden, dim, true, device, rng);
}

// x (..., dim) -> (..., dim)
Tensor *mlp_forward(const Mlp *m, Tensor *x) {
    return linear_forward(&m->fc2, op_gelu_tanh(linear_forward(&m->fc1, x)));
}

void mlp_params(Mlp *m, const char *prefix, ParamList *out) {
    char name[PARAM_NAME_MAX];
    linear_params(&m->fc1, params_prefix(name, prefix, "fc1"), false, out);
    linear_params(&m->fc2, params_prefix(name, prefix, "fc2"), false, out);
}

void mlp_free(Mlp *m) {
    linear_free(&m->fc1);
    linear_free(&m->fc2);
}
