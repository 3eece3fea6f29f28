// nn.Linear with an optional LoRA adapter (the PEFT formulation: A Gaussian, B zero,
// scaling alpha / r), evaluated at a run-time scale so one adapter can serve as two models.
#include <math.h>

#include "kernels/check.h"
#include "nn/layers.h"

// A fresh parameter: retained by the module, a leaf that wants gradients.
static Tensor *parameter(Tensor *t) {
    tensor_set_requires_grad(t, true);
    return tensor_retain(t);
}

void linear_init(Linear *l, int in_features, int out_features, bool bias, Device device,
                 Rng *rng) {
    DMDR_CHECK(in_features > 0 && out_features > 0, "linear: %d -> %d features", in_features,
               out_features);
    // kaiming_uniform(a = sqrt(5)) on the weight reduces to this bound, as for the bias
    float bound = 1.0f / sqrtf((float)in_features);
    *l = (Linear){.in_features = in_features, .out_features = out_features, .lora_scale = 1.0f};
    l->weight = parameter(tensor_uniform(shape2(out_features, in_features), rng, -bound, bound,
                                         device));
    if (bias) l->bias = parameter(tensor_uniform(shape1(out_features), rng, -bound, bound, device));
}

void linear_init_xavier(Linear *l, Rng *rng) {
    init_xavier_uniform(l->weight, l->in_features, l->out_features, rng);
    if (l->bias) tensor_fill(l->bias, 0.0f);
}

void linear_add_lora(Linear *l, int rank, float alpha, Rng *rng) {
    DMDR_CHECK(l->lora_a == NULL, "linear: a LoRA adapter is already attached");
    DMDR_CHECK(rank > 0, "linear: LoRA rank %d", rank);
    Device device = l->weight->device;
    // PEFT's init_lora_weights="gaussian": std 1 / r
    l->lora_a = parameter(tensor_normal(shape2(rank, l->in_features), rng, 0.0f,
                                        1.0f / (float)rank, device));
    l->lora_b = parameter(tensor_zeros(shape2(l->out_features, rank), device));
    l->lora_rank = rank;
    l->lora_alpha = alpha;
    l->lora_scale = 1.0f;
}

// x (..., in) -> (..., out)
Tensor *linear_forward(const Linear *l, Tensor *x) {
    Tensor *y = op_linear(x, l->weight, l->bias);
    // At scale 0 the adapter adds exactly nothing: skip its two GEMMs (A and B then get no
    // gradient from this call, as they would get a zero one).
    if (!l->lora_a || l->lora_scale == 0.0f) return y;
    // the scale goes on the rank-r intermediate, the smallest tensor on the path
    Tensor *h = op_linear(x, l->lora_a, NULL);
    h = op_mul_scalar(h, l->lora_scale * l->lora_alpha / (float)l->lora_rank);
    return op_add(y, op_linear(h, l->lora_b, NULL));
}

void linear_params(Linear *l, const char *prefix, bool frozen, ParamList *out) {
    tensor_set_requires_grad(l->weight, !frozen);
    params_add(out, prefix, "weight", l->weight, !frozen);
    if (l->bias) {
        tensor_set_requires_grad(l->bias, !frozen);
        params_add(out, prefix, "bias", l->bias, !frozen);
    }
    if (l->lora_a) {
        params_add(out, prefix, "lora_A.weight", l->lora_a, true);
        params_add(out, prefix, "lora_B.weight", l->lora_b, true);
    }
}

void linear_free(Linear *l) {
    tensor_release(l->weight);
    tensor_release(l->bias);
    tensor_release(l->lora_a);
    tensor_release(l->lora_b);
    *l = (Linear){0};
}
