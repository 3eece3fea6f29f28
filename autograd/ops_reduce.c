// Reductions over any set of dims: sum, mean, max.
#include "autograd/ops_internal.h"

// x's shape with the dims in mask set to 1 (keepdim) or removed (removing all gives (1)).
static Shape reduced_shape(Shape s, unsigned mask, bool keepdim) {
    Shape r = {0, {0}};
    for (int d = 0; d < s.ndim; d++) {
        if (!(mask & (1u << d))) r.dim[r.ndim++] = s.dim[d];
        else if (keepdim) r.dim[r.ndim++] = 1;
    }
    return r.ndim ? r : shape1(1);
}

// The mask in the kernels' 4-d numbering (shapes padded with leading 1s).
static unsigned mask4(Shape s, unsigned mask) { return mask << (KERNEL_MAX_DIMS - s.ndim); }

static void reduce_backward(AutogradNode *node, Tensor *dy) {
    Tensor *x = node->inputs[0];
    ReduceOp op = (ReduceOp)node->iarg[0];
    unsigned mask = (unsigned)node->iarg[1];
    Tensor *dy_keep = tensor_view(dy, reduced_shape(x->shape, mask, true));
    Tensor *dx;
    if (op == REDUCE_MAX) {
        int64_t x4[KERNEL_MAX_DIMS];
        shape_to4(x->shape, x4);
        dx = ops_empty_like(x);
        const Backend *be = tensor_backend(x);
        be->reduce_max_backward(be, tensor_f32(dx), tensor_f32(x), tensor_f32(node->saved[0]),
                                tensor_f32(dy_keep), x4, mask4(x->shape, mask));
    } else {
        dx = op_expand(dy_keep, x->shape);
        if (op == REDUCE_MEAN)
            dx = op_mul_scalar(dx, (float)tensor_numel(dy) / (float)tensor_numel(x));
    }
    autograd_accumulate(x, dx);
}

// x -> y (reduced_shape(x, dims_mask, keepdim))
static Tensor *reduce(ReduceOp op, const char *name, Tensor *x, unsigned dims_mask,
                      bool keepdim) {
    ops_check_f32(name, 1, &x);
    DMDR_CHECK(dims_mask != 0 && dims_mask < (1u << x->shape.ndim),
               "%s: dims mask 0x%x for a tensor of rank %d", name, dims_mask, x->shape.ndim);
    int64_t x4[KERNEL_MAX_DIMS];
    shape_to4(x->shape, x4);
    Tensor *y_keep = tensor_empty(reduced_shape(x->shape, dims_mask, true), DTYPE_F32, x->device);
    const Backend *be = tensor_backend(x);
    be->reduce(be, op, tensor_f32(y_keep), tensor_f32(x), x4, mask4(x->shape, dims_mask));
    // The result is a view so that the kept-dims buffer can be saved for max's backward
    // without the output owning its own node.
    Tensor *y = tensor_view(y_keep, reduced_shape(x->shape, dims_mask, keepdim));
    AutogradNode *node = autograd_record(y, name, reduce_backward, 1, &x);
    if (node) {
        node->iarg[0] = op;
        node->iarg[1] = dims_mask;
        if (op == REDUCE_MAX) autograd_save(node, y_keep);
    }
    return y;
}

Tensor *op_sum(Tensor *x, unsigned dims_mask, bool keepdim) {
    return reduce(REDUCE_SUM, "sum", x, dims_mask, keepdim);
}
Tensor *op_mean(Tensor *x, unsigned dims_mask, bool keepdim) {
    return reduce(REDUCE_MEAN, "mean", x, dims_mask, keepdim);
}
Tensor *op_max(Tensor *x, unsigned dims_mask, bool keepdim) {
    return reduce(REDUCE_MAX, "max", x, dims_mask, keepdim);
}
Tensor *op_sum_all(Tensor *x) { return op_sum(x, (1u << x->shape.ndim) - 1, false); }
Tensor *op_mean_all(Tensor *x) { return op_mean(x, (1u << x->shape.ndim) - 1, false); }
