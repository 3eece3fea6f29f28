// What each architecture gives nn/model.c (internal; not installed). An architecture creates
// its modules, registering every parameter in `params` under its state_dict name, and maps
// (x, t, y) to a velocity shaped like x.
#pragma once

#include "nn/model.h"

typedef struct {
    const char *name;
    // Checks cfg and creates the modules; NULL with err naming the field when cfg is bad.
    void *(*create)(const ModelConfig *cfg, Device device, Rng *rng, ParamList *params,
                    Error *err);
    Tensor *(*forward)(void *self, Tensor *x, Tensor *t, Tensor *y);
    void (*free)(void *self);
} Architecture;

extern const Architecture dit_architecture;  // nn/dit.c
extern const Architecture unet_architecture; // nn/unet.c
extern const Architecture mlp_architecture;  // nn/mlp_score.c
