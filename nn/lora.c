// The LoRA adapter: a rank-r update added to a layer's output, trained while the layer stays
// frozen (Hu et al. 2021). nn/linear.c adds it to a Linear's output (PEFT's placement);
// nn/transformer.c adds it to the attention's projected q and v (the DMDR authors').
#include "kernels/check.h"
#include "nn/layers.h"

void lora_attach(Lora *l, int in_features, int out_features, int rank, float factor, float a_std,
                 Device device, Rng *rng) {
    DMDR_CHECK(l->a == NULL, "lora: an adapter is already attached");
    DMDR_CHECK(rank > 0 && in_features > 0 && out_features > 0, "lora: rank %d, %d -> %d", rank,
               in_features, out_features);
    l->a = param_leaf(tensor_normal(shape2(rank, in_features), rng, 0.0f, a_std, device));
    l->b = param_leaf(tensor_zeros(shape2(out_features, rank), device));
    l->rank = rank;
    l->factor = factor;
    l->scale = 1.0f;
}

// x (..., in), y (..., out) -> (..., out)
Tensor *lora_add(const Lora *l, Tensor *x, Tensor *y) {
    // At scale 0 the adapter adds exactly nothing: skip its two GEMMs (A and B then get no
    // gradient from this call, as they would get a zero one).
    if (!l->a || l->scale == 0.0f) return y;
    // the scale goes on the rank-r intermediate, the smallest tensor on the path
    Tensor *h = op_mul_scalar(op_linear(x, l->a, NULL), l->scale * l->factor);
    return op_add(y, op_linear(h, l->b, NULL));
}

void lora_params(Lora *l, const char *prefix, ParamList *out) {
    if (!l->a) return;
    params_add(out, prefix, "lora_A.weight", l->a, true);
    params_add(out, prefix, "lora_B.weight", l->b, true);
}

void lora_free(Lora *l) {
    tensor_release(l->a);
    tensor_release(l->b);
    *l = (Lora){0};
}
