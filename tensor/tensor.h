// The tensor: a shape, a dtype, a device, and a window onto refcounted storage.
//
// Contiguity rule: every tensor is contiguous row-major. Views (tensor_view, tensor_rows)
// change the shape or start offset but never the strides, so every kernel takes plain
// pointers; permute/transpose/expand are copies made by the copy_strided kernel.
//
// Ownership rule (an autorelease pool, as in Objective-C): every Tensor* a function returns
// belongs to the innermost open tensor scope and is released when that scope ends.
//   tensor_scope_begin();  ...make tensors, run a training step...  tensor_scope_end();
// To keep a tensor past its scope (a parameter, an optimizer moment, a result), call
// tensor_retain() and later tensor_release(). With no scope open, tensors go to the
// process-wide root scope, which is never drained.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "tensor/rng.h"
#include "tensor/shape.h"

typedef enum {
    DTYPE_F32 = 0, // compute type of every kernel
    DTYPE_I32 = 1, // indices: class labels, embedding rows
    DTYPE_COUNT
} DType;

size_t dtype_size(DType dtype);
const char *dtype_name(DType dtype);

// Device memory shared by a tensor and its views.
typedef struct Storage {
    void *data;
    size_t nbytes;
    Device device;
    int refcount;
} Storage;

struct AutogradNode;

typedef struct Tensor {
    Shape shape;
    DType dtype;
    Device device;
    Storage *storage;
    int64_t offset; // in elements from storage->data
    int refcount;

    // Autograd state, managed by autograd/: gradient buffer, whether one is wanted, and
    // the node that produced this tensor (NULL for leaves and for untracked results).
    bool requires_grad;
    bool retains_grad; // keep .grad on a non-leaf after backward
    struct Tensor *grad;
    struct AutogradNode *grad_fn;
} Tensor;

// ---- scopes and references ------------------------------------------------------------
void tensor_scope_begin(void);
void tensor_scope_end(void);
Tensor *tensor_retain(Tensor *t); // returns t
void tensor_release(Tensor *t);   // NULL is allowed

// ---- creation (all results belong to the current scope) ---------------------------------
Tensor *tensor_empty(Shape shape, DType dtype, Device device); // uninitialised
Tensor *tensor_zeros(Shape shape, Device device);
Tensor *tensor_ones(Shape shape, Device device);
Tensor *tensor_full(Shape shape, float value, Device device);
// (n) = start, start + step, ...
Tensor *tensor_arange(int64_t n, float start, float step, Device device);
// copies numel(shape) values from host memory
Tensor *tensor_from_floats(Shape shape, const float *data, Device device);
Tensor *tensor_from_ints(Shape shape, const int32_t *data, Device device);
Tensor *tensor_uniform(Shape shape, Rng *rng, float lo, float hi, Device device);
Tensor *tensor_normal(Shape shape, Rng *rng, float mean, float std, Device device);

// ---- views: share storage, no autograd (see autograd/ops.h for tracked versions) ---------
// same elements, new shape (numel must match)
Tensor *tensor_view(Tensor *t, Shape shape);
// rows [start, start + len) of dim 0
Tensor *tensor_rows(Tensor *t, int64_t start, int64_t len);

// ---- copies and transfers -----------------------------------------------------------------
Tensor *tensor_clone(const Tensor *t);             // deep copy, same device
Tensor *tensor_to(Tensor *t, Device device);       // t itself when already there
void tensor_copy_into(Tensor *dst, const Tensor *src); // same numel and dtype, any devices
// Reads the elements to host memory (numel values of the tensor's dtype).
void tensor_read(const Tensor *t, void *host_dst);
// Writes host values into the tensor.
void tensor_write(Tensor *t, const void *host_src);
float tensor_item(const Tensor *t); // the value of a one-element F32 tensor
void tensor_fill(Tensor *t, float value);

// ---- access -----------------------------------------------------------------------------
int64_t tensor_numel(const Tensor *t);
const Backend *tensor_backend(const Tensor *t);
// Device pointer to the first element (host pointer on the CPU), any dtype.
void *tensor_data(const Tensor *t);
// The same, checked to be of the named dtype.
float *tensor_f32(const Tensor *t);
int32_t *tensor_i32(const Tensor *t);
const char *tensor_shape_str(const Tensor *t, char *buf, int buflen);

// ---- storage cache ------------------------------------------------------------------------
// Storage is recycled by exact size class, so a training step whose shapes repeat makes no
// device allocation after its first iteration.
typedef struct {
    size_t bytes_in_use;  // held by live storage
    size_t bytes_cached;  // freed storage kept for reuse
    size_t peak_bytes;    // maximum of bytes_in_use
    uint64_t allocations; // calls into the backend allocator
} StorageStats;

StorageStats storage_stats(Device device);
void storage_reset_peak(Device device);
void storage_cache_clear(void); // returns cached blocks to the backends
