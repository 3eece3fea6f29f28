#include "autograd/ops_internal.h"

void ops_check_f32(const char *op, int count, Tensor *const *ts) {
    for (int i = 0; i < count; i++) {
        if (!ts[i]) continue;
        DMDR_CHECK(ts[i]->dtype == DTYPE_F32, "%s: input %d is %s, expected F32", op, i,
                   dtype_name(ts[i]->dtype));
        DMDR_CHECK(ts[i]->device == ts[0]->device, "%s: input %d is on %s, input 0 on %s", op,
                   i, device_name(ts[i]->device), device_name(ts[0]->device));
    }
}

// Input strides for broadcasting: the input's contiguous strides, with 0 where the input
// has size 1 and the output does not.
static void broadcast_strides(Shape out, Shape in, int64_t stride[KERNEL_MAX_DIMS]) {
    int64_t out4[KERNEL_MAX_DIMS], in4[KERNEL_MAX_DIMS];
    shape_to4(out, out4);
    shape_to4(in, in4);
    shape_strides4(in, stride);
    for (int d = 0; d < KERNEL_MAX_DIMS; d++)
        if (in4[d] == 1 && out4[d] != 1) stride[d] = 0;
}

Broadcast ops_broadcast(Shape out, Shape a, Shape b) {
    Broadcast bc;
    shape_to4(out, bc.shape);
    broadcast_strides(out, a, bc.a_stride);
    broadcast_strides(out, b, bc.b_stride);
    return bc;
}

Tensor *ops_sum_to_shape(Tensor *g, Shape shape) {
    if (shape_equal(g->shape, shape)) return g;
    int64_t g4[KERNEL_MAX_DIMS], s4[KERNEL_MAX_DIMS];
    shape_to4(g->shape, g4);
    shape_to4(shape, s4);
    unsigned mask = 0;
    for (int d = 0; d < KERNEL_MAX_DIMS; d++) {
        DMDR_CHECK(s4[d] == g4[d] || s4[d] == 1, "cannot sum a gradient down to a broadcast");
        if (s4[d] != g4[d]) mask |= 1u << (d - (KERNEL_MAX_DIMS - g->shape.ndim));
    }
    Tensor *summed = mask ? op_sum(g, mask, true) : g;
    return tensor_view(summed, shape);
}

Tensor *ops_empty_like(const Tensor *t) { return tensor_empty(t->shape, DTYPE_F32, t->device); }
