// Shape ops. Tensors are always contiguous, so reshape is a view and everything else
// (permute, expand, narrow, concat) is one copy_strided kernel call with suitable strides.
#include "autograd/ops_internal.h"
#include "tensor/dist.h"

static void *element_at(Tensor *t, int64_t index) {
    return (char *)tensor_data(t) + (size_t)index * dtype_size(t->dtype);
}

static void copy_strided(Tensor *dst, int64_t dst_offset, const int64_t dst_stride[4],
                         Tensor *src, int64_t src_offset, const int64_t src_stride[4],
                         const int64_t shape[4]) {
    const Backend *be = tensor_backend(dst);
    be->copy_strided(be, element_at(dst, dst_offset), dst_stride, element_at(src, src_offset),
                     src_stride, shape);
}

// ---- reshape ----------------------------------------------------------------------------------

static void reshape_backward(AutogradNode *node, Tensor *dy) {
    autograd_accumulate(node->inputs[0], tensor_view(dy, node->inputs[0]->shape));
}

// x -> y (shape), same elements
Tensor *op_reshape(Tensor *x, Shape shape) {
    char a[64], b[64];
    DMDR_CHECK(shape_numel(shape) == tensor_numel(x), "reshape: %s to %s changes the size",
               tensor_shape_str(x, a, sizeof a), shape_str(shape, b, sizeof b));
    Tensor *y = tensor_view(x, shape);
    autograd_record(y, "reshape", reshape_backward, 1, &x);
    return y;
}

// ---- permute ----------------------------------------------------------------------------------

static void permute_backward(AutogradNode *node, Tensor *dy) {
    int n = node->inputs[0]->shape.ndim, inverse[TENSOR_MAX_DIMS];
    for (int i = 0; i < n; i++) inverse[node->iarg[i]] = i;
    autograd_accumulate(node->inputs[0], op_permute(dy, inverse));
}

// x (d0, .., dn) -> y (d_perm[0], .., d_perm[n])
Tensor *op_permute(Tensor *x, const int *perm) {
    int n = x->shape.ndim, pad = KERNEL_MAX_DIMS - n;
    unsigned seen = 0;
    Shape out = {n, {0}};
    for (int i = 0; i < n; i++) {
        DMDR_CHECK(perm[i] >= 0 && perm[i] < n && !(seen & (1u << perm[i])),
                   "permute: not a permutation of %d dims", n);
        seen |= 1u << perm[i];
        out.dim[i] = x->shape.dim[perm[i]];
    }
    int64_t x_stride[4], y_stride[4], src_stride[4] = {0, 0, 0, 0}, y4[4];
    shape_strides4(x->shape, x_stride);
    shape_strides4(out, y_stride);
    shape_to4(out, y4);
    for (int i = 0; i < n; i++) src_stride[pad + i] = x_stride[pad + perm[i]];
    Tensor *y = tensor_empty(out, x->dtype, x->device);
    copy_strided(y, 0, y_stride, x, 0, src_stride, y4);
    AutogradNode *node = autograd_record(y, "permute", permute_backward, 1, &x);
    if (node)
        for (int i = 0; i < n; i++) node->iarg[i] = perm[i];
    return y;
}

Tensor *op_transpose(Tensor *x, int dim0, int dim1) {
    int perm[TENSOR_MAX_DIMS];
    for (int i = 0; i < x->shape.ndim; i++) perm[i] = i;
    dim0 = shape_axis(x->shape, dim0);
    dim1 = shape_axis(x->shape, dim1);
    perm[dim0] = dim1;
    perm[dim1] = dim0;
    return op_permute(x, perm);
}

// ---- expand -----------------------------------------------------------------------------------

static void expand_backward(AutogradNode *node, Tensor *dy) {
    autograd_accumulate(node->inputs[0], ops_sum_to_shape(dy, node->inputs[0]->shape));
}

// x -> y (shape): x broadcast, its size-1 dims repeated
Tensor *op_expand(Tensor *x, Shape shape) {
    Shape b;
    Tensor *target = tensor_empty(shape, x->dtype, x->device);
    OPS_CHECK_SHAPES(shape_broadcast(x->shape, shape, &b) && shape_equal(b, shape), "expand", x,
                     target);
    Broadcast bc = ops_broadcast(shape, x->shape, x->shape);
    int64_t y_stride[4];
    shape_strides4(shape, y_stride);
    copy_strided(target, 0, y_stride, x, 0, bc.a_stride, bc.shape);
    autograd_record(target, "expand", expand_backward, 1, &x);
    return target;
}

// ---- narrow, concat, chunk ----------------------------------------------------------------------

// Copies `part` to or from the slab [start, start + part.dim[dim]) along dim of `whole`;
// the two shapes agree on every other dim.
static void slab_copy(Tensor *whole, Tensor *part, int dim, int64_t start, bool into_whole) {
    int pad = KERNEL_MAX_DIMS - whole->shape.ndim;
    int64_t whole_stride[4], part_stride[4], part4[4];
    shape_strides4(whole->shape, whole_stride);
    shape_strides4(part->shape, part_stride);
    shape_to4(part->shape, part4);
    int64_t offset = start * whole_stride[pad + dim];
    if (into_whole) copy_strided(whole, offset, whole_stride, part, 0, part_stride, part4);
    else copy_strided(part, 0, part_stride, whole, offset, whole_stride, part4);
}

static void narrow_backward(AutogradNode *node, Tensor *dy) {
    Tensor *x = node->inputs[0];
    Tensor *dx = tensor_zeros(x->shape, x->device);
    slab_copy(dx, dy, (int)node->iarg[0], node->iarg[1], true);
    autograd_accumulate(x, dx);
}

// x (.., n, ..) -> y (.., len, ..): elements [start, start + len) along dim
Tensor *op_narrow(Tensor *x, int dim, int64_t start, int64_t len) {
    dim = shape_axis(x->shape, dim);
    DMDR_CHECK(start >= 0 && len >= 0 && start + len <= x->shape.dim[dim],
               "narrow: [%lld, %lld) of dim %d of size %lld", (long long)start,
               (long long)(start + len), dim, (long long)x->shape.dim[dim]);
    Shape out = x->shape;
    out.dim[dim] = len;
    Tensor *y = tensor_empty(out, x->dtype, x->device);
    slab_copy(x, y, dim, start, false);
    AutogradNode *node = autograd_record(y, "narrow", narrow_backward, 1, &x);
    if (node) {
        node->iarg[0] = dim;
        node->iarg[1] = start;
    }
    return y;
}

Tensor *op_shard(Tensor *x) {
    if (dist_size() == 1) return x;
    int64_t offset, count;
    dist_shard(x->shape.dim[0], &offset, &count);
    return op_narrow(x, 0, offset, count);
}

Tensor *op_shard_normal(Shape local_shape, Rng *rng, Device device) {
    Shape global = local_shape;
    global.dim[0] *= dist_size();
    return op_shard(tensor_normal(global, rng, 0.0f, 1.0f, device));
}

static void concat_backward(AutogradNode *node, Tensor *dy) {
    int dim = (int)node->iarg[0];
    int64_t start = 0;
    for (int i = 0; i < node->input_count; i++) {
        Tensor *x = node->inputs[i];
        if (autograd_needs_grad(node, i))
            autograd_accumulate(x, op_narrow(dy, dim, start, x->shape.dim[dim]));
        start += x->shape.dim[dim];
    }
}

// xs[i] (.., n_i, ..) -> y (.., sum n_i, ..)
Tensor *op_concat(Tensor *const *xs, int count, int dim) {
    DMDR_CHECK(count >= 1, "concat of no tensors");
    if (count > AUTOGRAD_MAX_INPUTS) { // a node holds at most that many inputs: go in stages
        Tensor *halves[2] = {op_concat(xs, count / 2, dim),
                             op_concat(xs + count / 2, count - count / 2, dim)};
        return op_concat(halves, 2, dim);
    }
    dim = shape_axis(xs[0]->shape, dim);
    Shape out = xs[0]->shape;
    out.dim[dim] = 0;
    for (int i = 0; i < count; i++) {
        Shape s = xs[i]->shape;
        s.dim[dim] = 0;
        OPS_CHECK_SHAPES(shape_equal(s, out) && xs[i]->dtype == xs[0]->dtype &&
                             xs[i]->device == xs[0]->device,
                         "concat", xs[0], xs[i]);
    }
    for (int i = 0; i < count; i++) out.dim[dim] += xs[i]->shape.dim[dim];
    Tensor *y = tensor_empty(out, xs[0]->dtype, xs[0]->device);
    int64_t start = 0;
    for (int i = 0; i < count; i++) {
        slab_copy(y, xs[i], dim, start, true);
        start += xs[i]->shape.dim[dim];
    }
    AutogradNode *node = autograd_record(y, "concat", concat_backward, count, xs);
    if (node) node->iarg[0] = dim;
    return y;
}

// x (.., n, ..) -> out[i] (.., n / count, ..)
void op_chunk(Tensor *x, int count, int dim, Tensor **out) {
    dim = shape_axis(x->shape, dim);
    DMDR_CHECK(count > 0 && x->shape.dim[dim] % count == 0, "chunk: dim %d of size %lld into %d",
               dim, (long long)x->shape.dim[dim], count);
    int64_t len = x->shape.dim[dim] / count;
    for (int i = 0; i < count; i++) out[i] = op_narrow(x, dim, i * len, len);
}
