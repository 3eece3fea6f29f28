// A velocity network, whatever its architecture: the one interface the diffusion samplers,
// trainers and the command line use. Every architecture maps (x, t, y) to a velocity shaped
// like x, where t in [0, 1] is the flow time (the network sees 1000 t through its sinusoidal
// embedding) and y the class label, num_classes being the null label used for CFG.
#pragma once

#include "nn/params.h"
#include "tensor/error.h"

typedef enum { MODEL_DIT, MODEL_UNET, MODEL_MLP, MODEL_KIND_COUNT } ModelKind;

#define MODEL_MAX_LEVELS 4 // UNet resolutions

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
    int channels, levels, channel_mult[MODEL_MAX_LEVELS], res_blocks, groups;
    // MLP score network: hidden width and number of hidden layers
    int mlp_width, mlp_layers;
} ModelConfig;

const char *model_kind_name(ModelKind kind);

typedef struct Model Model;

// ---- checking a configuration before anything is allocated -----------------------------------
// A configuration may come from a file's metadata or a command line: every field its
// architecture reads must lie in the field's range, the fields must agree (heads dividing
// hidden...), and the model must fit in memory. Checked in double, so absurd settings compare
// as large instead of overflowing.

// The inclusive range of a field ("hidden"; "channel_mult": each element); false for a key
// that is no numeric field. The command line's settings table takes its model ranges here.
bool model_config_range(const char *key, double *min, double *max);
// 0, or -1 with err naming the field, its value and the limit (or the memory it would need).
int model_config_check(const ModelConfig *cfg, Error *err);
// The parameter count of a checked configuration.
double model_parameter_count(const ModelConfig *cfg);
// Estimated bytes to train (weights, gradients, AdamW moments, EMA, the activations the
// backward needs) or to run (weights, the largest live activations) a model at `batch`.
double model_memory_bytes(const ModelConfig *cfg, int64_t batch, bool training);
// Whether `copies` such models (a teacher, a generator, a fake score...) fit in the host's
// available memory: 0, or -1 with err saying what would be needed and what there is, `what`
// leading the message.
int model_check_memory(const ModelConfig *cfg, int64_t batch, bool training, int copies,
                       const char *what, Error *err);

// Creates the model with the reference initialisation on `device`. Returns NULL with err
// filled when model_config_check refuses the configuration.
Model *model_create(const ModelConfig *cfg, Device device, Rng *rng, Error *err);
void model_free(Model *m);
// A new model of m's configuration holding a copy of its weights (rng only feeds the
// initialisation the copy overwrites, and any later draws of the caller's stream).
Model *model_clone(Model *m, Rng *rng, Error *err);

// x (N, C, H, W) or (N, data_dim), t (N) F32 in [0, 1], y (N) I32 in [0, num_classes]
// -> v, shaped like x.
Tensor *model_forward(Model *m, Tensor *x, Tensor *t, Tensor *y);

const ModelConfig *model_config(const Model *m);
// Every parameter under its PyTorch state_dict name.
const ParamList *model_params(const Model *m);
Device model_device(const Model *m);
// The shape of n examples: (n, data_dim) for the MLP, else (n, C, H, W).
Shape model_data_shape(const Model *m, int64_t n);

// ---- LoRA (docs/algorithm.md section 3) ------------------------------------------------------
// One adapter of rank r over the model. Two styles:
//  - PEFT: on the attention projections (DiT: every block's attn.qkv and attn.proj; UNet: the
//    middle attention) and, with `mlp`, the MLP layers (DiT: mlp.fc1, mlp.fc2; the MLP score
//    network: every block's fc1 and fc2); A ~ N(0, 1/r^2), factor alpha / r (PEFT's "gaussian").
//  - QV, the DMDR authors' set-up: on every attention's projected q and v, as q + delta(q) and
//    v + delta(v) ("<attn>.q_lora.", "<attn>.v_lora."); A ~ N(0, 1), factor 1 (alpha and mlp
//    unused).
// The UNet's only attention is its middle one, so its adapter is small at the lowest
// resolution: a separate fake network suits it better. Attaching freezes every other
// parameter (PEFT's convention: only the adapter trains) and registers the pairs as
// "<site>lora_A.weight" (r, in) and "<site>lora_B.weight" (out, r). B starts at zero, so the
// model computes exactly what it did before until the adapter is trained. Load base weights
// before attaching (the file has no lora_ names); a checkpoint of the adapted model loads after.
// Returns 0, or -1 with err when the model has no site of the kind asked for, or already has
// an adapter.
typedef enum { LORA_STYLE_PEFT, LORA_STYLE_QV, LORA_STYLE_COUNT } LoraStyle;

typedef struct {
    LoraStyle style;
    int rank;
    float alpha; // PEFT: the factor is alpha / rank
    bool mlp;    // PEFT: adapt the MLP layers too
} LoraOptions;

int model_add_lora(Model *m, const LoraOptions *o, Rng *rng, Error *err);
bool model_has_lora(const Model *m);
// The run-time scale of every adapted site: out + scale factor B A in (0: the base model).
// Read at forward time: set it before each forward that needs another scale.
void model_set_lora_scale(Model *m, float scale);

// The configuration as a JSON object string (malloc'd), stored in checkpoint metadata so a
// checkpoint says which model it holds; and back, checking it (model_config_check).
char *model_config_to_json(const ModelConfig *cfg);
int model_config_from_json(const char *json, ModelConfig *cfg, Error *err);
