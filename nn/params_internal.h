// What nn/params.c shares with nn/checkpoint.c (not installed): matching a tensor of a loaded
// file against the parameter it is meant to fill.
#pragma once

#include "nn/params.h"
#include "tensor/safetensors.h"

// The tensor `name` of st (loaded from `path`) if it can be copied into dst: same dtype and
// same shape (a file scalar, which the loader makes (1), fits a () tensor). Otherwise NULL
// with err naming the tensor, the file and, for a shape mismatch, both shapes.
Tensor *params_match(const Safetensors *st, const char *path, const char *name, const Tensor *dst,
                     Error *err);

// Non-finite values are stopped where they enter: every F32 tensor of src (count of them, CPU
// tensors of st) finite -> 0; else -1 with err naming the file and up to three tensors with
// their counts of NaNs and infinities (a run resumed from such a file would otherwise fail
// steps later, blaming its learning rate).
int params_check_finite(const Safetensors *st, const char *path, Tensor *const *src, int count,
                        Error *err);
