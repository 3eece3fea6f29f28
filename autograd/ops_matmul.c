// Matrix products: matmul (plain, batched, batched against a shared matrix) and linear.
//
// Both are one node type underneath, a GEMM y_i = a_i op(b_i), so they share a backward:
// linear is a GEMM with b = weight transposed (PyTorch's (out, in) layout) plus a bias.
// Whenever b is shared across leading dims (linear's weight, a (B, m, k) @ (k, n) matmul),
// those dims fold into the rows of one tall GEMM, forward and backward: the gradient of
// the shared matrix is then a single GEMM over every row rather than a sum of B products.
#include "autograd/ops_internal.h"

// y_i (m, n) = a_i (m, k) op(b_i) for i < batch; op(b) is b (k, n), or b stored (n, k) and
// transposed when trans_b. Kept in node->iarg[0..4].
typedef struct {
    int64_t batch, m, k, n;
    bool trans_b;
} Gemm;

static void gemm_store(AutogradNode *node, Gemm g) {
    node->iarg[0] = g.batch;
    node->iarg[1] = g.m;
    node->iarg[2] = g.k;
    node->iarg[3] = g.n;
    node->iarg[4] = g.trans_b;
}

static Gemm gemm_load(const AutogradNode *node) {
    return (Gemm){node->iarg[0], node->iarg[1], node->iarg[2], node->iarg[3], node->iarg[4] != 0};
}

// y (batch, m, n) = a (batch, m, k) op(b) (batch, k, n)
static void gemm_forward(Tensor *y, Tensor *a, Tensor *b, Gemm g) {
    const Backend *be = tensor_backend(a);
    ops_gemm(be, autograd_precision())(be, tensor_f32(y), tensor_f32(a), tensor_f32(b), g.batch,
                                       g.m, g.n, g.k, false, g.trans_b, 1.0f, 0.0f, g.m * g.k,
                                       g.k * g.n, g.m * g.n);
}

// dy (batch, m, n) -> da (batch, m, k) = dy op(b)^T; db = a^T dy (k, n), or dy^T a (n, k)
// when b is stored transposed.
static void gemm_backward(AutogradNode *node, Tensor *dy) {
    Gemm g = gemm_load(node);
    Tensor *a = node->inputs[0], *b = node->inputs[1];
    const Backend *be = tensor_backend(dy);
    GemmFn gemm = ops_gemm(be, node->precision);
    int64_t sa = g.m * g.k, sb = g.k * g.n, sy = g.m * g.n;
    if (autograd_needs_grad(node, 0)) {
        Tensor *da = ops_empty_like(a);
        gemm(be, tensor_f32(da), tensor_f32(dy), tensor_f32(b), g.batch, g.m, g.k, g.n, false,
             !g.trans_b, 1.0f, 0.0f, sy, sb, sa);
        autograd_accumulate(a, da);
    }
    if (autograd_needs_grad(node, 1)) {
        Tensor *db = ops_empty_like(b);
        if (g.trans_b)
            gemm(be, tensor_f32(db), tensor_f32(dy), tensor_f32(a), g.batch, g.n, g.k, g.m,
                 true, false, 1.0f, 0.0f, sy, sa, sb);
        else
            gemm(be, tensor_f32(db), tensor_f32(a), tensor_f32(dy), g.batch, g.k, g.n, g.m,
                 true, false, 1.0f, 0.0f, sa, sy, sb);
        autograd_accumulate(b, db);
    }
}

// dy (B, m, n) -> da (B, m, k), db (B, k, n) or (k, n)
static void matmul_backward(AutogradNode *node, Tensor *dy) { gemm_backward(node, dy); }

// a (m, k) @ b (k, n) -> (m, n); a (B, m, k) @ b (B, k, n) -> (B, m, n);
// a (B, m, k) @ b (k, n) -> (B, m, n), computed as (B*m, k) @ (k, n)
Tensor *op_matmul(Tensor *a, Tensor *b) {
    Tensor *in[2] = {a, b};
    ops_check_f32("matmul", 2, in);
    int ra = a->shape.ndim, rb = b->shape.ndim;
    OPS_CHECK_SHAPES((ra == 2 && rb == 2) || (ra == 3 && (rb == 2 || rb == 3)), "matmul", a, b);
    int64_t batch = ra == 3 ? a->shape.dim[0] : 1;
    int64_t m = a->shape.dim[ra - 2], k = a->shape.dim[ra - 1], n = b->shape.dim[rb - 1];
    OPS_CHECK_SHAPES(b->shape.dim[rb - 2] == k && (rb == 2 || b->shape.dim[0] == batch), "matmul",
                     a, b);

    Tensor *y = tensor_empty(ra == 3 ? shape3(batch, m, n) : shape2(m, n), DTYPE_F32, a->device);
    Gemm g = {batch, m, k, n, false};
    if (rb == 2) g = (Gemm){1, batch * m, k, n, false}; // shared b: fold the batch into rows
    gemm_forward(y, a, b, g);
    AutogradNode *node = autograd_record(y, "matmul", matmul_backward, 2, in);
    if (node) gemm_store(node, g);
    return y;
}

// dy (rows, out) -> the GEMM's gradients, and dbias (out) = column sums of dy
static void linear_backward(AutogradNode *node, Tensor *dy) {
    gemm_backward(node, dy);
    if (!autograd_needs_grad(node, 2)) return;
    Gemm g = gemm_load(node);
    Tensor *bias = node->inputs[2];
    Tensor *db = ops_empty_like(bias);
    int64_t shape[KERNEL_MAX_DIMS] = {1, 1, g.m, g.n};
    const Backend *be = tensor_backend(dy);
    be->reduce(be, REDUCE_SUM, tensor_f32(db), tensor_f32(dy), shape, 1u << 2);
    autograd_accumulate(bias, db);
}

// x (..., in), weight (out, in), bias (out) or NULL -> y (..., out) = x weight^T + bias,
// every leading dim of x folded into the rows of one GEMM
Tensor *op_linear(Tensor *x, Tensor *weight, Tensor *bias) {
    Tensor *in[3] = {x, weight, bias};
    ops_check_f32("linear", 3, in);
    int rank = x->shape.ndim;
    OPS_CHECK_SHAPES(rank >= 1 && weight->shape.ndim == 2 &&
                         weight->shape.dim[1] == x->shape.dim[rank - 1],
                     "linear", x, weight);
    int64_t features_in = weight->shape.dim[1], features_out = weight->shape.dim[0];
    if (bias)
        OPS_CHECK_SHAPES(bias->shape.ndim == 1 && bias->shape.dim[0] == features_out, "linear",
                         weight, bias);
    int64_t rows = 1;
    for (int d = 0; d < rank - 1; d++) rows *= x->shape.dim[d];

    Shape out_shape = x->shape;
    out_shape.dim[rank - 1] = features_out;
    Tensor *y = tensor_empty(out_shape, DTYPE_F32, x->device);
    Gemm g = {1, rows, features_in, features_out, true};
    gemm_forward(y, x, weight, g);
    if (bias) { // in place: the binary kernel allows y to alias its full-shaped input
        Shape rows_shape = shape2(rows, features_out);
        Broadcast bc = ops_broadcast(rows_shape, rows_shape, bias->shape);
        const Backend *be = tensor_backend(x);
        be->binary(be, BINARY_ADD, tensor_f32(y), tensor_f32(y), tensor_f32(bias), &bc);
    }
    AutogradNode *node = autograd_record(y, "linear", linear_backward, 3, in);
    if (node) gemm_store(node, g);
    return y;
}
