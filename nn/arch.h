// What each architecture gives nn/model.c (internal; not installed). An architecture creates
// its modules, registering every parameter in `params` under its state_dict name, and maps
// (x, t, y) to a velocity shaped like x.
#pragma once

#include "nn/layers.h"
#include "nn/model.h"

// Where an adapter may go: on an attention projection (the qkv or output Linear), on an MLP
// Linear, or on the attention's projected q and v (the DMDR authors' placement).
typedef enum { LORA_AT_ATTENTION, LORA_AT_MLP, LORA_AT_QV } LoraPlace;

// An adapter slot, its sizes and the state_dict prefix of its weights ("blocks.0.attn.qkv.").
typedef struct {
    Lora *lora;
    int in_features, out_features;
    char prefix[PARAM_NAME_MAX];
    LoraPlace place;
} LoraSite;

typedef struct {
    const char *name;
    // The architecture's own rules on cfg (heads dividing hidden, ...), called once every
    // field it reads is in its range: 0, or -1 with err naming the field (NULL: no such rules).
    int (*check)(const ModelConfig *cfg, Error *err);
    // Its parameter count, and the floats of activation one example keeps alive through a
    // forward: saved for the backward when training, else the most held at once (a no-grad
    // forward frees each block's temporaries). Estimates in double, so that absurd settings
    // compare as large instead of overflowing; they feed model_memory_bytes.
    double (*parameter_count)(const ModelConfig *cfg);
    double (*activation_floats)(const ModelConfig *cfg, bool training);
    // Creates the modules of a checked cfg, registering every parameter.
    void *(*create)(const ModelConfig *cfg, Device device, Rng *rng, ParamList *params,
                    Error *err);
    Tensor *(*forward)(void *self, Tensor *x, Tensor *t, Tensor *y);
    void (*free)(void *self);
    // Writes up to `max` LoRA sites into out (NULL: just count) and returns how many there are.
    int (*lora_sites)(void *self, LoraSite *out, int max);
} Architecture;

// Appends the slot at prefix + child + "." to out when it has room, and counts it either way:
// what every lora_sites implementation does per slot. The Linear form takes the Linear's own
// adapter and sizes; attention_lora_sites adds an attention's qkv and proj and its q and v.
void lora_site_add(LoraSite *out, int max, int *count, Lora *lora, int in_features,
                   int out_features, const char *prefix, const char *child, LoraPlace place);
void lora_site_add_linear(LoraSite *out, int max, int *count, Linear *l, const char *prefix,
                          const char *child, LoraPlace place);
void attention_lora_sites(LoraSite *out, int max, int *count, Attention *a, const char *prefix);

extern const Architecture dit_architecture;  // nn/dit.c
extern const Architecture unet_architecture; // nn/unet.c
extern const Architecture mlp_architecture;  // nn/mlp_score.c
