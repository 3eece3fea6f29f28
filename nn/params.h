// Named parameters: every module registers its tensors under the exact PyTorch state_dict
// name ("blocks.0.attn.qkv.weight"), so a checkpoint written here loads into the PyTorch
// reference by name, and one written there loads here (stable-diffusion.cpp style).
#pragma once

#include <stdbool.h>

#include "tensor/error.h"
#include "tensor/tensor.h"

#define PARAM_NAME_MAX 128

typedef struct {
    char name[PARAM_NAME_MAX];
    Tensor *tensor;  // owned by the module; the list only points at it
    bool trainable;  // receives gradients and optimiser updates (frozen bases are not)
} Param;

typedef struct {
    Param *items;
    int count, capacity;
} ParamList;

// Appends prefix + name ("blocks.3." + "attn.qkv.weight"); prefix may be "" or NULL.
void params_add(ParamList *list, const char *prefix, const char *name, Tensor *t, bool trainable);
// A fresh parameter tensor for a module: retained by it, a leaf that wants gradients.
Tensor *param_leaf(Tensor *t);
Param *params_find(const ParamList *list, const char *name);
int64_t params_numel(const ParamList *list, bool trainable_only);
void params_free(ParamList *list); // frees the list, not the tensors
// Copies the value of every parameter of `from` into the one of `to` with its name (a model
// started from another's weights). Every name of `from` must exist in `to` with its shape
// (checked: a programmer error otherwise); names only in `to` are left as they are.
void params_copy(const ParamList *from, const ParamList *to);
// A checksum of every value (a position-weighted sum in double): equal weights give equal
// sums bit for bit, so ranks that should hold the same weights compare it (tensor/dist.h).
double params_checksum(const ParamList *list);
// Marks every parameter trainable or not and sets its tensor's requires_grad to match: a
// frozen network (a LoRA base, a reward model, a reference) gets no gradients or updates.
void params_set_trainable(const ParamList *list, bool trainable);

// Writes prefix + child + "." into out (a PARAM_NAME_MAX buffer): the prefix already ends
// with its dot, so ("down.0.", "res") -> "down.0.res." and ("", "blocks", 3) -> "blocks.3."
const char *params_prefix(char *out, const char *prefix, const char *child);
const char *params_prefix_index(char *out, const char *prefix, const char *child, int index);

// safetensors of every parameter under its name (plus metadata), written atomically.
int params_save(const ParamList *list, const char *path, int metadata_count,
                const char *const *keys, const char *const *values, Error *err);
// Copies every parameter's values from the file (by name). Missing names, extra names (unless
// allow_extra) and shape mismatches are errors naming the parameter, the file and both shapes.
int params_load(const ParamList *list, const char *path, bool allow_extra, Error *err);
