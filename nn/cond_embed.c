#include "nn/cond_embed.h"

// The network sees 1000 t, the DDPM timestep range its sinusoid frequencies were chosen for.
#define TIME_SCALE 1000.0f
#define MAX_PERIOD 10000.0f

void cond_embed_init(CondEmbed *e, int freq_dim, int dim, int num_classes, Device device,
                     Rng *rng) {
    e->freq_dim = freq_dim;
    linear_init(&e->fc1, freq_dim, dim, true, device, rng);
    linear_init(&e->fc2, dim, dim, true, device, rng);
    embedding_init(&e->label, num_classes + 1, dim, device, rng);
}

// t (N), y (N) -> (N, dim)
Tensor *cond_embed_forward(const CondEmbed *e, Tensor *t, Tensor *y) {
    Tensor *freq = timestep_embedding(op_mul_scalar(t, TIME_SCALE), e->freq_dim, MAX_PERIOD);
    Tensor *temb = linear_forward(&e->fc2, op_silu(linear_forward(&e->fc1, freq)));
    return op_add(temb, embedding_forward(&e->label, y));
}

void cond_embed_params(CondEmbed *e, ParamList *out) {
    linear_params(&e->fc1, "time_embed.0.", false, out);
    linear_params(&e->fc2, "time_embed.2.", false, out);
    embedding_params(&e->label, "label_embed.", out);
}

void cond_embed_free(CondEmbed *e) {
    linear_free(&e->fc1);
    linear_free(&e->fc2);
    embedding_free(&e->label);
}
