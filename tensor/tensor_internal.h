// Tensor internals shared with the autograd layer (not installed).
#pragma once

#include "tensor/tensor.h"

// A new tensor header over existing storage (whose reference it takes), in the current scope.
Tensor *tensor_wrap_storage(Storage *s, Shape shape, DType dtype, int64_t offset);
// How a tensor frees the autograd node that produced it (set by autograd/).
void tensor_set_grad_fn_releaser(void (*release)(struct AutogradNode *node));
