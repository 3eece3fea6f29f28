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
    a->q_lora = a->v_lora = (Lora){0};
    a->heads = heads;
}

// qkv (B, T, 3 dim) -> the same with q + delta_q(q) and v + delta_v(v)
static Tensor *adapt_qv(const Attention *a, Tensor *qkv) {
    int64_t dim = qkv->shape.dim[qkv->shape.ndim - 1] / 3;
    int last = qkv->shape.ndim - 1;
    Tensor *q = op_narrow(qkv, last, 0, dim), *v = op_narrow(qkv, last, 2 * dim, dim);
    Tensor *parts[3] = {lora_add(&a->q_lora, q, q), op_narrow(qkv, last, dim, dim),
                        lora_add(&a->v_lora, v, v)};
    return op_concat(parts, 3, last);
}

// x (B, T, dim) -> (B, T, dim)
Tensor *attention_forward(const Attention *a, Tensor *x) {
    Tensor *qkv = linear_forward(&a->qkv, x);
    bool adapted = (a->q_lora.a && a->q_lora.scale != 0.0f) ||
                   (a->v_lora.a && a->v_lora.scale != 0.0f);
    if (adapted) qkv = adapt_qv(a, qkv);
    return linear_forward(&a->proj, op_attention_qkv(qkv, a->heads));
}

void attention_params(Attention *a, const char *prefix, ParamList *out) {
    char name[PARAM_NAME_MAX];
    linear_params(&a->qkv, params_prefix(name, prefix, "qkv"), false, out);
    linear_params(&a->proj, params_prefix(name, prefix, "proj"), false, out);
    lora_params(&a->q_lora, params_prefix(name, prefix, "q_lora"), out);
    lora_params(&a->v_lora, params_prefix(name, prefix, "v_lora"), out);
}

void attention_free(Attention *a) {
    linear_free(&a->qkv);
    linear_free(&a->proj);
    lora_free(&a->q_lora);
    lora_free(&a->v_lora);
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
