#include "tensor/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "tensor/storage.h"
#include "tensor/tensor_internal.h"

size_t dtype_size(DType dtype) {
    switch (dtype) {
    case DTYPE_F32:
    case DTYPE_I32: return 4;
    default: DMDR_FATAL("unknown dtype %d", (int)dtype);
    }
}

const char *dtype_name(DType dtype) {
    switch (dtype) {
    case DTYPE_F32: return "F32";
    case DTYPE_I32: return "I32";
    default: return "unknown";
    }
}

// ---- scopes ------------------------------------------------------------------------------
// A stack of tensor lists; each list holds one reference to every tensor created while it
// was the innermost scope. Index 0 is the root scope, never drained.

typedef struct {
    Tensor **items;
    int64_t count, capacity;
} TensorList;

static TensorList scopes[64];
static int scope_depth; // index of the innermost scope

void tensor_scope_begin(void) {
    DMDR_CHECK(scope_depth + 1 < (int)(sizeof scopes / sizeof scopes[0]),
               "tensor scopes nested deeper than %d", (int)(sizeof scopes / sizeof scopes[0]));
    scopes[++scope_depth].count = 0;
}

void tensor_scope_end(void) {
    DMDR_CHECK(scope_depth > 0, "tensor_scope_end without tensor_scope_begin");
    TensorList *l = &scopes[scope_depth--];
    for (int64_t i = 0; i < l->count; i++) tensor_release(l->items[i]);
    l->count = 0;
}

static void scope_add(Tensor *t) {
    TensorList *l = &scopes[scope_depth];
    if (l->count == l->capacity) {
        l->capacity = l->capacity ? 2 * l->capacity : 256;
        l->items = realloc(l->items, (size_t)l->capacity * sizeof *l->items);
        DMDR_CHECK(l->items != NULL, "out of host memory");
    }
    l->items[l->count++] = t;
}

// ---- references ----------------------------------------------------------------------------
// The autograd layer sits above this one; it registers how its nodes are freed so that a
// tensor dropping its last reference can free the graph node that produced it.
static void (*release_grad_fn)(struct AutogradNode *node);

void tensor_set_grad_fn_releaser(void (*release)(struct AutogradNode *node)) {
    release_grad_fn = release;
}

Tensor *tensor_retain(Tensor *t) {
    DMDR_CHECK(t->refcount > 0, "retain of a freed tensor");
    t->refcount++;
    return t;
}

void tensor_release(Tensor *t) {
    if (!t) return;
    DMDR_CHECK(t->refcount > 0, "release of a freed tensor");
    if (--t->refcount > 0) return;
    if (t->grad_fn && release_grad_fn) release_grad_fn(t->grad_fn);
    tensor_release(t->grad);
    storage_release(t->storage);
    free(t);
}

// ---- creation ------------------------------------------------------------------------------

Tensor *tensor_wrap_storage(Storage *s, Shape shape, DType dtype, int64_t offset) {
    Tensor *t = calloc(1, sizeof *t);
    DMDR_CHECK(t != NULL, "out of host memory");
    t->shape = shape;
    t->dtype = dtype;
    t->device = s->device;
    t->storage = s;
    t->offset = offset;
    t->refcount = 1;
    scope_add(t);
    return t;
}

Tensor *tensor_empty(Shape shape, DType dtype, Device device) {
    for (int i = 0; i < shape.ndim; i++)
        DMDR_CHECK(shape.dim[i] >= 0, "negative dimension %lld", (long long)shape.dim[i]);
    size_t nbytes = (size_t)shape_numel(shape) * dtype_size(dtype);
    return tensor_wrap_storage(storage_new(device, nbytes), shape, dtype, 0);
}

Tensor *tensor_full(Shape shape, float value, Device device) {
    Tensor *t = tensor_empty(shape, DTYPE_F32, device);
    tensor_fill(t, value);
    return t;
}

Tensor *tensor_zeros(Shape shape, Device device) { return tensor_full(shape, 0.0f, device); }
Tensor *tensor_ones(Shape shape, Device device) { return tensor_full(shape, 1.0f, device); }

Tensor *tensor_arange(int64_t n, float start, float step, Device device) {
    float *host = malloc((size_t)(n > 0 ? n : 1) * sizeof *host);
    DMDR_CHECK(host != NULL, "out of host memory");
    for (int64_t i = 0; i < n; i++) host[i] = start + step * (float)i;
    Tensor *t = tensor_from_floats(shape1(n), host, device);
    free(host);
    return t;
}

Tensor *tensor_from_floats(Shape shape, const float *data, Device device) {
    Tensor *t = tensor_empty(shape, DTYPE_F32, device);
    tensor_write(t, data);
    return t;
}

Tensor *tensor_from_ints(Shape shape, const int32_t *data, Device device) {
    Tensor *t = tensor_empty(shape, DTYPE_I32, device);
    tensor_write(t, data);
    return t;
}

Tensor *tensor_uniform(Shape shape, Rng *rng, float lo, float hi, Device device) {
    Tensor *t = tensor_empty(shape, DTYPE_F32, device);
    int64_t n = tensor_numel(t);
    const Backend *be = tensor_backend(t);
    be->rng_uniform(be, tensor_f32(t), n, rng->seed, rng_reserve(rng, n), lo, hi);
    return t;
}

Tensor *tensor_normal(Shape shape, Rng *rng, float mean, float std, Device device) {
    Tensor *t = tensor_empty(shape, DTYPE_F32, device);
    int64_t n = tensor_numel(t);
    const Backend *be = tensor_backend(t);
    be->rng_normal(be, tensor_f32(t), n, rng->seed, rng_reserve(rng, n), mean, std);
    return t;
}

// ---- views -----------------------------------------------------------------------------------

Tensor *tensor_view(Tensor *t, Shape shape) {
    char a[64], b[64];
    DMDR_CHECK(shape_numel(shape) == tensor_numel(t), "view of %s as %s changes the element count",
               tensor_shape_str(t, a, sizeof a), shape_str(shape, b, sizeof b));
    storage_retain(t->storage);
    return tensor_wrap_storage(t->storage, shape, t->dtype, t->offset);
}

Tensor *tensor_rows(Tensor *t, int64_t start, int64_t len) {
    char a[64];
    DMDR_CHECK(t->shape.ndim >= 1 && start >= 0 && len >= 0 && start + len <= t->shape.dim[0],
               "rows [%lld, %lld) of %s", (long long)start, (long long)(start + len),
               tensor_shape_str(t, a, sizeof a));
    Shape s = t->shape;
    s.dim[0] = len;
    int64_t row = tensor_numel(t) / (t->shape.dim[0] ? t->shape.dim[0] : 1);
    storage_retain(t->storage);
    return tensor_wrap_storage(t->storage, s, t->dtype, t->offset + start * row);
}

// ---- copies ----------------------------------------------------------------------------------

void *tensor_data(const Tensor *t) {
    return (char *)t->storage->data + (size_t)t->offset * dtype_size(t->dtype);
}

static size_t tensor_nbytes(const Tensor *t) {
    return (size_t)tensor_numel(t) * dtype_size(t->dtype);
}

Tensor *tensor_clone(const Tensor *t) {
    Tensor *c = tensor_empty(t->shape, t->dtype, t->device);
    const Backend *be = tensor_backend(t);
    be->copy(be, tensor_data(c), tensor_data(t), tensor_nbytes(t));
    return c;
}

Tensor *tensor_to(Tensor *t, Device device) {
    if (t->device == device) return t;
    Tensor *c = tensor_empty(t->shape, t->dtype, device);
    tensor_copy_into(c, t);
    return c;
}

void tensor_copy_into(Tensor *dst, const Tensor *src) {
    char a[64], b[64];
    DMDR_CHECK(tensor_numel(dst) == tensor_numel(src) && dst->dtype == src->dtype,
               "copy of %s %s into %s %s", dtype_name(src->dtype),
               tensor_shape_str(src, a, sizeof a), dtype_name(dst->dtype),
               tensor_shape_str(dst, b, sizeof b));
    size_t nbytes = tensor_nbytes(src);
    const Backend *to = tensor_backend(dst), *from = tensor_backend(src);
    if (dst->device == src->device) {
        to->copy(to, tensor_data(dst), tensor_data(src), nbytes);
    } else if (src->device == DEVICE_CPU) {
        to->copy_from_host(to, tensor_data(dst), tensor_data(src), nbytes);
    } else if (dst->device == DEVICE_CPU) {
        from->copy_to_host(from, tensor_data(dst), tensor_data(src), nbytes);
    } else { // between two accelerators: through the host
        void *host = malloc(nbytes ? nbytes : 1);
        DMDR_CHECK(host != NULL, "out of host memory");
        from->copy_to_host(from, host, tensor_data(src), nbytes);
        to->copy_from_host(to, tensor_data(dst), host, nbytes);
        free(host);
    }
}

void tensor_read(const Tensor *t, void *host_dst) {
    const Backend *be = tensor_backend(t);
    be->copy_to_host(be, host_dst, tensor_data(t), tensor_nbytes(t));
}

void tensor_write(Tensor *t, const void *host_src) {
    const Backend *be = tensor_backend(t);
    be->copy_from_host(be, tensor_data(t), host_src, tensor_nbytes(t));
}

float tensor_item(const Tensor *t) {
    char a[64];
    DMDR_CHECK(tensor_numel(t) == 1 && t->dtype == DTYPE_F32, "item() of %s %s",
               dtype_name(t->dtype), tensor_shape_str(t, a, sizeof a));
    float v;
    tensor_read(t, &v);
    return v;
}

void tensor_fill(Tensor *t, float value) {
    DMDR_CHECK(t->dtype == DTYPE_F32, "fill of a %s tensor", dtype_name(t->dtype));
    const Backend *be = tensor_backend(t);
    be->fill(be, tensor_f32(t), value, tensor_numel(t));
}

// ---- access ----------------------------------------------------------------------------------

int64_t tensor_numel(const Tensor *t) { return shape_numel(t->shape); }

const Backend *tensor_backend(const Tensor *t) {
    const Backend *be = backend_get(t->device);
    DMDR_CHECK(be != NULL, "device %s is not available", device_name(t->device));
    return be;
}

float *tensor_f32(const Tensor *t) {
    DMDR_CHECK(t->dtype == DTYPE_F32, "F32 access to a %s tensor", dtype_name(t->dtype));
    return tensor_data(t);
}

int32_t *tensor_i32(const Tensor *t) {
    DMDR_CHECK(t->dtype == DTYPE_I32, "I32 access to a %s tensor", dtype_name(t->dtype));
    return tensor_data(t);
}

const char *tensor_shape_str(const Tensor *t, char *buf, int buflen) {
    return shape_str(t->shape, buf, buflen);
}
