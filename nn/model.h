// A velocity network, whatever its architecture: the one interface the diffusion samplers,
// trainers and the command line use. Every architecture maps (x, t, y) to a velocity shaped
// like x, where t in [0, 1] is the flow time (the network sees 1000 t through its sinusoidal
// embedding) and y the class label, num_classes being the null label used for CFG.
#pragma once

#include "nn/params.h"
#include "tensor/error.h"

typedef enum { MODEL_DIT, MODEL_UNET, MODEL_MLP, MODEL_KIND_COUNT } ModelKind;

typedef struct {
    ModelKind kind;
    int num_classes; // labels 0..num_classes-1; num_classes itself is the null label
    // images (DiT, UNet): (in_channels, image_size, image_size); MLP: vectors of data_dim
    int in_channels, image_size, data_dim;
    // DiT (facebookresearch/DiT naming): patch size, hidden size, depth, heads, mlp ratio
    int patch, hidden, depth, heads;
    float mlp_ratio;
    // UNet: base channels, per-level multipliers (levels of them), residual blocks per
    // level, GroupNorm groups; self-attention at the lowest resolution
    int channels, levels, channel_mult[4], res_blocks, groups;
    // MLP score network: hidden width and number of hidden layers
    int mlp_width, mlp_layers;
} ModelConfig;

const char *model_kind_name(ModelKind kind);

typedef struct Model Model;

// Creates the model with the reference initialisation on `device`. Returns NULL with err
// filled when the configuration is inconsistent (e.g. heads not dividing hidden).
Model *model_create(const ModelConfig *cfg, Device device, Rng *rng, Error *err);
void model_free(Model *m);

// x (N, C, H, W) or (N, data_dim), t (N) F32 in [0, 1], y (N) I32 in [0, num_classes]
// -> v, shaped like x.
Tensor *model_forward(Model *m, Tensor *x, Tensor *t, Tensor *y);

const ModelConfig *model_config(const Model *m);
// Every parameter under its PyTorch state_dict name.
const ParamList *model_params(const Model *m);
Device model_device(const Model *m);

// The configuration as a JSON object string (malloc'd), stored in checkpoint metadata so a
// checkpoint says which model it holds; and back, validating every field.
char *model_config_to_json(const ModelConfig *cfg);
int model_config_from_json(const char *json, ModelConfig *cfg, Error *err);
