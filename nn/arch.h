// What each architecture gives nn/model.c (internal; not installed). An architecture creates
// its modules, registering every parameter in `params` under its state_dict name, and maps
// (x, t, y) to a velocity shaped like x.
#pragma once

#include "nn/layers.h"
#include "nn/model.h"

// A Linear that may carry a LoRA adapter, with the state_dict prefix of its weights
// ("blocks.0.attn.qkv.") and whether it is an attention projection (qkv, out) or an MLP layer.
typedef struct {
    Linear *linear;
    char prefix[PARAM_NAME_MAX];
    bool attention;
} LoraSite;

typedef struct {
    const char *name;
    // Checks cfg and creates the modules; NULL with err naming the field when cfg is bad.
    void *(*create)(const ModelConfig *cfg, Device device, Rng *rng, ParamList *params,
                    Error *err);
    Tensor *(*forward)(void *self, Tensor *x, Tensor *t, Tensor *y);
    void (*free)(void *self);
    // Writes up to `max` LoRA sites into out (NULL: just count) and returns how many there are.
    int (*lora_sites)(void *self, LoraSite *out, int max);
} Architecture;

// Appends (l, prefix + child + ".", attention) to out when it has room, and counts it either way:
// what every lora_sites implementation does per Linear.
void lora_site_add(LoraSite *out, int max, int *count, Linear *l, const char *prefix,
                   const char *child, bool attention);

extern const Architecture dit_architecture;  // nn/dit.c
extern const Architecture unet_architecture; // nn/unet.c
extern const Architecture mlp_architecture;  // nn/mlp_score.c
