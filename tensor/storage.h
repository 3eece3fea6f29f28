// Refcounted device memory behind tensors, recycled through a per-device cache.
// Internal to tensor/: users see Storage only through tensor.h.
#pragma once

#include "tensor/tensor.h"

// A new storage of nbytes with refcount 1. Aborts when the device is out of memory even
// after the cache has been returned to it (a training step cannot continue without memory).
Storage *storage_new(Device device, size_t nbytes);
void storage_retain(Storage *s);
void storage_release(Storage *s);

// What this process may still allocate on the host, in bytes: the kernel's MemAvailable (free
// memory plus what it can reclaim), else the physical memory. Checked before building a model
// whose size came from a file or a flag, so a too-large one is an error, not an abort.
double host_memory_available(void);
// "1.7 TiB": bytes in binary units with one decimal, into buf.
const char *bytes_text(double bytes, char *buf, size_t n);
