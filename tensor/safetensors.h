// safetensors files (the Hugging Face format): an 8-byte little-endian header length, a JSON
// header mapping each tensor name to {dtype, shape, data_offsets}, plus an optional
// "__metadata__" object of string pairs, then the raw little-endian data.
//
// We write F32 (and I32); we read F32, F16, BF16 (converted to F32) and I32. The header is
// validated completely before any data is used: a truncated file, bad JSON, an unknown
// dtype, a shape that does not match the byte range, a range outside the data or
// overlapping another: each gives an Error naming the file, the tensor and the problem.
#pragma once

#include "tensor/error.h"
#include "tensor/tensor.h"

typedef struct {
    int count;
    char **names;
    Tensor **tensors; // retained by the file; CPU, F32 or I32
    int metadata_count;
    char **metadata_keys;
    char **metadata_values;
} Safetensors;

// Loads every tensor of `path` onto the CPU. Returns 0, or -1 with err filled and *out
// zeroed (safetensors_free on it is then a no-op).
int safetensors_load(const char *path, Safetensors *out, Error *err);
void safetensors_free(Safetensors *st);
// The tensor called name, or NULL.
Tensor *safetensors_find(const Safetensors *st, const char *name);
// The metadata value for key, or NULL.
const char *safetensors_metadata(const Safetensors *st, const char *key);

// Writes tensors (any device; F32 or I32) and string metadata to `path` atomically:
// a temporary file beside it, fsync, rename, fsync of the directory, so an interrupted
// write leaves either the old file or the new one, never a torn one.
int safetensors_save(const char *path, int count, const char *const *names,
                     Tensor *const *tensors, int metadata_count, const char *const *metadata_keys,
                     const char *const *metadata_values, Error *err);
