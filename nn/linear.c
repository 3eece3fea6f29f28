// nn.Linear, with the LoRA adapter (nn/lora.c) added to its output once one is attached.
#include <math.h>

#include "kernels/check.h"
#include "nn/layers.h"

void linear_init(Linear *l, int in_features, int out_features, bool bias, Device device,
                 Rng *rng) {
    DMDR_CHECK(in_features > 0 && out_features > 0, "linear: %d -> %d features", in_features,
               out_features);
    // kaiming_uniform(a = sqrt(5)) on the weight reduces to this bound, as for the bias
    float bound = 1.0f / sqrtf((float)in_features);
    *l = (Linear){.in_features = in_features, .out_features = out_features};
    l->weight = param_leaf(tensor_uniform(shape2(out_features, in_features), rng, -bound, bound,
                                         device));
    if (bias) l->bias = param_leaf(tensor_uniform(shape1(out_features), rng, -bound, bound, device));
}

void linear_init_xavier(Linear *l, Rng *rng) {
    init_xavier_uniform(l->weight, l->in_features, l->out_features, rng);
    if (l->bias) tensor_fill(l->bias, 0.0f);
}

// x (..., in) -> (..., out)
Tensor *linear_forward(const Linear *l, Tensor *x) {
    return lora_add(&l->lora, x, op_linear(x, l->weight, l->bias));
}

void linear_params(Linear *l, const char *prefix, bool frozen, ParamList *out) {
    tensor_set_requires_grad(l->weight, !frozen);
    params_add(out, prefix, "weight", l->weight, !frozen);
    if (l->bias) {
        tensor_set_requires_grad(l->bias, !frozen);
        params_add(out, prefix, "bias", l->bias, !frozen);
    }
    lora_params(&l->lora, prefix, out);
}

void linear_free(Linear *l) {
    tensor_release(l->weight);
    tensor_release(l->bias);
    lora_free(&l->lora);
    *l = (Linear){0};
}
