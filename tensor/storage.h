// Refcounted device memory behind tensors, recycled through a per-device cache.
// Internal to tensor/: users see Storage only through tensor.h.
#pragma once

#include "tensor/tensor.h"

// A new storage of nbytes with refcount 1. Aborts when the device is out of memory even
// after the cache has been returned to it (a training step cannot continue without memory).
Storage *storage_new(Device device, size_t nbytes);
void storage_retain(Storage *s);
void storage_release(Storage *s);
