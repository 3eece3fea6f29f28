// Elementwise ops: broadcasting binary ops, unary functions, ops with a scalar.
#include "autograd/ops_internal.h"

// ---- binary ---------------------------------------------------------------------------------

static void binary_backward(AutogradNode *node, Tensor *dy) {
    BinaryOp op = (BinaryOp)node->iarg[0];
    Tensor *a = node->inputs[0], *b = node->inputs[1];
    bool need_a = autograd_needs_grad(node, 0), need_b = autograd_needs_grad(node, 1);
    if (op == BINARY_ADD || op == BINARY_SUB) { // the gradient passes through unchanged
        if (need_a) autograd_accumulate(a, ops_sum_to_shape(dy, a->shape));
        if (need_b) {
            Tensor *gb = ops_sum_to_shape(dy, b->shape);
            autograd_accumulate(b, op == BINARY_SUB ? op_neg(gb) : gb);
        }
        return;
    }
    // (*, /, max, min) need the other operand: the kernel computes full-shaped gradients,
    // then each is summed down to its input's shape.
    Tensor *da = need_a ? ops_empty_like(dy) : NULL;
    Tensor *db = need_b ? ops_empty_like(dy) : NULL;
    Broadcast bc = ops_broadcast(dy->shape, a->shape, b->shape);
    const Backend *be = tensor_backend(dy);
    be->binary_backward(be, op, da ? tensor_f32(da) : NULL, db ? tensor_f32(db) : NULL,
                        tensor_f32(a), tensor_f32(b), tensor_f32(dy), &bc);
    if (need_a) autograd_accumulate(a, ops_sum_to_shape(da, a->shape));
    if (need_b) autograd_accumulate(b, ops_sum_to_shape(db, b->shape));
}

// a (broadcastable with b), b -> y (broadcast shape)
static Tensor *binary(BinaryOp op, const char *name, Tensor *a, Tensor *b) {
    Tensor *in[2] = {a, b};
    ops_check_f32(name, 2, in);
    Shape out_shape;
    OPS_CHECK_SHAPES(shape_broadcast(a->shape, b->shape, &out_shape), name, a, b);
    Tensor *y = tensor_empty(out_shape, DTYPE_F32, a->device);
    Broadcast bc = ops_broadcast(out_shape, a->shape, b->shape);
    const Backend *be = tensor_backend(a);
    be->binary(be, op, tensor_f32(y), tensor_f32(a), tensor_f32(b), &bc);
    AutogradNode *node = autograd_record(y, name, binary_backward, 2, in);
    if (node) node->iarg[0] = op;
    return y;
}

Tensor *op_add(Tensor *a, Tensor *b) { return binary(BINARY_ADD, "add", a, b); }
Tensor *op_sub(Tensor *a, Tensor *b) { return binary(BINARY_SUB, "sub", a, b); }
Tensor *op_mul(Tensor *a, Tensor *b) { return binary(BINARY_MUL, "mul", a, b); }
Tensor *op_div(Tensor *a, Tensor *b) { return binary(BINARY_DIV, "div", a, b); }
Tensor *op_maximum(Tensor *a, Tensor *b) { return binary(BINARY_MAX, "maximum", a, b); }
Tensor *op_minimum(Tensor *a, Tensor *b) { return binary(BINARY_MIN, "minimum", a, b); }

// ---- unary ----------------------------------------------------------------------------------

static void unary_backward(AutogradNode *node, Tensor *dy) {
    Tensor *x = node->inputs[0], *y = node->saved[0];
    Tensor *dx = ops_empty_like(x);
    const Backend *be = tensor_backend(x);
    be->unary_backward(be, (UnaryOp)node->iarg[0], tensor_f32(dx), tensor_f32(x), tensor_f32(y),
                       tensor_f32(dy), tensor_numel(x));
    autograd_accumulate(x, dx);
}

// x -> y (same shape)
static Tensor *unary(UnaryOp op, const char *name, Tensor *x) {
    ops_check_f32(name, 1, &x);
    Tensor *y = ops_empty_like(x);
    const Backend *be = tensor_backend(x);
    be->unary(be, op, tensor_f32(y), tensor_f32(x), tensor_numel(x));
    AutogradNode *node = autograd_record(y, name, unary_backward, 1, &x);
    if (node) {
        node->iarg[0] = op;
        autograd_save_output(node); // exp, tanh, sigmoid, sqrt differentiate cheapest from y
    }
    return y;
}

Tensor *op_exp(Tensor *x) { return unary(UNARY_EXP, "exp", x); }
Tensor *op_log(Tensor *x) { return unary(UNARY_LOG, "log", x); }
Tensor *op_sqrt(Tensor *x) { return unary(UNARY_SQRT, "sqrt", x); }
Tensor *op_tanh(Tensor *x) { return unary(UNARY_TANH, "tanh", x); }
Tensor *op_sigmoid(Tensor *x) { return unary(UNARY_SIGMOID, "sigmoid", x); }
Tensor *op_relu(Tensor *x) { return unary(UNARY_RELU, "relu", x); }
Tensor *op_silu(Tensor *x) { return unary(UNARY_SILU, "silu", x); }
Tensor *op_gelu_tanh(Tensor *x) { return unary(UNARY_GELU_TANH, "gelu_tanh", x); }
Tensor *op_square(Tensor *x) { return unary(UNARY_SQUARE, "square", x); }
Tensor *op_neg(Tensor *x) { return unary(UNARY_NEG, "neg", x); }
Tensor *op_abs(Tensor *x) { return unary(UNARY_ABS, "abs", x); }

// ---- with a scalar ----------------------------------------------------------------------------

static void scalar_backward(AutogradNode *node, Tensor *dy) {
    Tensor *x = node->inputs[0];
    Tensor *dx = ops_empty_like(x);
    const Backend *be = tensor_backend(x);
    be->scalar_backward(be, (ScalarOp)node->iarg[0], tensor_f32(dx), tensor_f32(x), node->farg[0],
                        tensor_f32(dy), tensor_numel(x));
    autograd_accumulate(x, dx);
}

// x -> y = x op s (same shape)
static Tensor *scalar(ScalarOp op, const char *name, Tensor *x, float s) {
    ops_check_f32(name, 1, &x);
    Tensor *y = ops_empty_like(x);
    const Backend *be = tensor_backend(x);
    be->scalar(be, op, tensor_f32(y), tensor_f32(x), s, tensor_numel(x));
    AutogradNode *node = autograd_record(y, name, scalar_backward, 1, &x);
    if (node) {
        node->iarg[0] = op;
        node->farg[0] = s;
    }
    return y;
}

Tensor *op_add_scalar(Tensor *x, float s) { return scalar(SCALAR_ADD, "add_scalar", x, s); }
Tensor *op_mul_scalar(Tensor *x, float s) { return scalar(SCALAR_MUL, "mul_scalar", x, s); }
Tensor *op_pow_scalar(Tensor *x, float p) { return scalar(SCALAR_POW, "pow_scalar", x, p); }

Tensor *op_clamp(Tensor *x, float lo, float hi) {
    DMDR_CHECK(lo <= hi, "clamp: lo %g > hi %g", (double)lo, (double)hi);
    return scalar(SCALAR_MIN, "clamp_max", scalar(SCALAR_MAX, "clamp_min", x, lo), hi);
}
