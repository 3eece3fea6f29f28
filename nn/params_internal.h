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
