// The conditioning vector of the UNet and the MLP score network (ADM style): the flow time
// through a sinusoidal embedding and a two-layer MLP, plus a learned class embedding with a
// row for the null label. Registered as "time_embed.0.*", "time_embed.2.*" (the two Linears of
// ADM's nn.Sequential(Linear, SiLU, Linear)) and "label_embed.weight".
#pragma once

#include "nn/layers.h"

typedef struct {
    Linear fc1, fc2;
    Embedding label;
    int freq_dim; // width of the sinusoidal embedding
} CondEmbed;

// freq_dim sinusoids -> Linear(freq_dim, dim) -> SiLU -> Linear(dim, dim); labels
// 0..num_classes (num_classes being the null label) -> dim
void cond_embed_init(CondEmbed *e, int freq_dim, int dim, int num_classes, Device device,
                     Rng *rng);
// t (N) F32 flow time in [0, 1], y (N) I32 -> (N, dim)
Tensor *cond_embed_forward(const CondEmbed *e, Tensor *t, Tensor *y);
void cond_embed_params(CondEmbed *e, ParamList *out);
void cond_embed_free(CondEmbed *e);
