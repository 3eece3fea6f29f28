// Neural-network primitives, each one fused kernel pair: softmax, log-softmax, layer and
// group normalisation, embedding lookup, cross-entropy and mean squared error.
#include "autograd/ops_internal.h"

static float *f32_or_null(const Tensor *t) { return t ? tensor_f32(t) : NULL; }

// x (..., c) -> the product of the leading dims: the rows an op over the last dim runs on
static int64_t leading_rows(const Tensor *x) {
    int64_t rows = 1;
    for (int d = 0; d < x->shape.ndim - 1; d++) rows *= x->shape.dim[d];
    return rows;
}

// x (..., c) -> c; rank 0 aborts, naming the op
static int64_t last_dim(const char *op, const Tensor *x) {
    DMDR_CHECK(x->shape.ndim >= 1, "%s: input has rank 0", op);
    return x->shape.dim[x->shape.ndim - 1];
}

// ---- softmax ------------------------------------------------------------------------------

// dy (..., c) -> dx (..., c), from the saved output
static void softmax_backward(AutogradNode *node, Tensor *dy) {
    Tensor *x = node->inputs[0], *y = node->saved[0];
    Tensor *dx = ops_empty_like(x);
    const Backend *be = tensor_backend(dy);
    be->softmax_backward(be, tensor_f32(dx), tensor_f32(y), tensor_f32(dy), leading_rows(x),
                         last_dim(node->name, x), node->iarg[0] != 0);
    autograd_accumulate(x, dx);
}

// x (..., c) -> y (..., c), (log-)softmax over the last dim
static Tensor *softmax(const char *name, Tensor *x, bool log) {
    ops_check_f32(name, 1, &x);
    int64_t cols = last_dim(name, x);
    Tensor *y = ops_empty_like(x);
    const Backend *be = tensor_backend(x);
    be->softmax(be, tensor_f32(y), tensor_f32(x), leading_rows(x), cols, log);
    AutogradNode *node = autograd_record(y, name, softmax_backward, 1, &x);
    if (node) {
        node->iarg[0] = log;
        autograd_save_output(node); // both derivatives are cheapest from y
    }
    return y;
}

Tensor *op_softmax(Tensor *x) { return softmax("softmax", x, false); }
Tensor *op_log_softmax(Tensor *x) { return softmax("log_softmax", x, true); }

// ---- normalisation --------------------------------------------------------------------------
// Nodes have inputs {x, weight, bias} (weight and bias may be NULL) and save {mean, rstd}.

// weight, bias (c) or NULL
static void check_affine(const char *op, Tensor *x, Tensor *weight, Tensor *bias, int64_t c) {
    Tensor *in[3] = {x, weight, bias};
    ops_check_f32(op, 3, in);
    for (int i = 1; i < 3; i++)
        if (in[i])
            OPS_CHECK_SHAPES(in[i]->shape.ndim == 1 && in[i]->shape.dim[0] == c, op, x, in[i]);
}

typedef struct {
    Tensor *dx, *dweight, *dbias;
} NormGrads;

// The buffers a normalisation backward writes: dx always (the kernels write it whether or
// not x wants it), dweight and dbias (c) only when wanted.
static NormGrads norm_grads_new(const AutogradNode *node) {
    NormGrads g = {ops_empty_like(node->inputs[0]), NULL, NULL};
    if (autograd_needs_grad(node, 1)) g.dweight = ops_empty_like(node->inputs[1]);
    if (autograd_needs_grad(node, 2)) g.dbias = ops_empty_like(node->inputs[2]);
    return g;
}

static void norm_grads_accumulate(AutogradNode *node, NormGrads g) {
    autograd_accumulate(node->inputs[0], g.dx);
    autograd_accumulate(node->inputs[1], g.dweight);
    autograd_accumulate(node->inputs[2], g.dbias);
}

// Records a normalisation node (NULL when none is needed) and saves its statistics.
static AutogradNode *norm_record(Tensor *y, const char *name, BackwardFn backward, Tensor *x,
                                 Tensor *weight, Tensor *bias, Tensor *mean, Tensor *rstd) {
    Tensor *in[3] = {x, weight, bias};
    AutogradNode *node = autograd_record(y, name, backward, 3, in);
    if (node) {
        autograd_save(node, mean);
        autograd_save(node, rstd);
    }
    return node;
}

// dy (..., c) -> dx (..., c), dweight, dbias (c)
static void layernorm_backward(AutogradNode *node, Tensor *dy) {
    Tensor *x = node->inputs[0];
    NormGrads g = norm_grads_new(node);
    const Backend *be = tensor_backend(dy);
    be->layernorm_backward(be, tensor_f32(g.dx), f32_or_null(g.dweight), f32_or_null(g.dbias),
                           tensor_f32(dy), tensor_f32(x), tensor_f32(node->saved[0]),
                           tensor_f32(node->saved[1]), f32_or_null(node->inputs[1]),
                           leading_rows(x), last_dim(node->name, x));
    norm_grads_accumulate(node, g);
}

// x (..., c), weight, bias (c) or NULL -> y (..., c), normalised over the last dim
Tensor *op_layernorm(Tensor *x, Tensor *weight, Tensor *bias, float eps) {
    int64_t c = last_dim("layernorm", x), rows = leading_rows(x);
    check_affine("layernorm", x, weight, bias, c);
    Tensor *y = ops_empty_like(x);
    Tensor *mean = tensor_empty(shape1(rows), DTYPE_F32, x->device);
    Tensor *rstd = tensor_empty(shape1(rows), DTYPE_F32, x->device);
    const Backend *be = tensor_backend(x);
    be->layernorm(be, tensor_f32(y), tensor_f32(mean), tensor_f32(rstd), tensor_f32(x),
                  f32_or_null(weight), f32_or_null(bias), rows, c, eps);
    norm_record(y, "layernorm", layernorm_backward, x, weight, bias, mean, rstd);
    return y;
}

// dy (n, c, h, w) -> dx (n, c, h, w), dweight, dbias (c)
static void groupnorm_backward(AutogradNode *node, Tensor *dy) {
    Tensor *x = node->inputs[0];
    const int64_t *dim = x->shape.dim;
    NormGrads g = norm_grads_new(node);
    const Backend *be = tensor_backend(dy);
    be->groupnorm_backward(be, tensor_f32(g.dx), f32_or_null(g.dweight), f32_or_null(g.dbias),
                           tensor_f32(dy), tensor_f32(x), tensor_f32(node->saved[0]),
                           tensor_f32(node->saved[1]), f32_or_null(node->inputs[1]), dim[0], dim[1],
                           dim[2] * dim[3], node->iarg[0]);
    norm_grads_accumulate(node, g);
}

// x (n, c, h, w), groups dividing c, weight, bias (c) or NULL -> y (n, c, h, w)
Tensor *op_groupnorm(Tensor *x, int groups, Tensor *weight, Tensor *bias, float eps) {
    DMDR_CHECK(x->shape.ndim == 4, "groupnorm: x must be (N, C, H, W), got rank %d",
               x->shape.ndim);
    const int64_t *dim = x->shape.dim;
    DMDR_CHECK(groups >= 1 && dim[1] % groups == 0,
               "groupnorm: %d groups do not divide %lld channels", groups, (long long)dim[1]);
    check_affine("groupnorm", x, weight, bias, dim[1]);
    Tensor *y = ops_empty_like(x);
    Tensor *mean = tensor_empty(shape2(dim[0], groups), DTYPE_F32, x->device);
    Tensor *rstd = tensor_empty(shape2(dim[0], groups), DTYPE_F32, x->device);
    const Backend *be = tensor_backend(x);
    be->groupnorm(be, tensor_f32(y), tensor_f32(mean), tensor_f32(rstd), tensor_f32(x),
                  f32_or_null(weight), f32_or_null(bias), dim[0], dim[1], dim[2] * dim[3], groups,
                  eps);
    AutogradNode *node = norm_record(y, "groupnorm", groupnorm_backward, x, weight, bias, mean,
                                     rstd);
    if (node) node->iarg[0] = groups;
    return y;
}

// ---- indexed ops ----------------------------------------------------------------------------

// data (rows, cols) F32, index (n) I32 on data's device, every value in [0, dim
// `bound_dim` of data). The kernels index memory with these values unchecked, so a bad one
// must stop here, named. Values are read only where the host can see them: reading a device
// tensor back would stall every step.
static void check_indexed(const char *op, Tensor *data, Tensor *index, int bound_dim) {
    char s[64];
    ops_check_f32(op, 1, &data);
    DMDR_CHECK(data->shape.ndim == 2, "%s: data must be 2-d, got %s", op,
               tensor_shape_str(data, s, sizeof s));
    DMDR_CHECK(index->dtype == DTYPE_I32 && index->shape.ndim == 1,
               "%s: index must be (n) I32, got %s %s", op, dtype_name(index->dtype),
               tensor_shape_str(index, s, sizeof s));
    DMDR_CHECK(index->device == data->device, "%s: index on %s, data on %s", op,
               device_name(index->device), device_name(data->device));
    if (index->device != DEVICE_CPU) return;
    int64_t limit = data->shape.dim[bound_dim];
    const int32_t *idx = tensor_i32(index);
    for (int64_t i = 0; i < index->shape.dim[0]; i++)
        DMDR_CHECK(idx[i] >= 0 && idx[i] < limit, "%s: index[%lld] = %d is outside [0, %lld)", op,
                   (long long)i, (int)idx[i], (long long)limit);
}

// dy (n, dim) -> dtable (vocab, dim)
static void embedding_backward(AutogradNode *node, Tensor *dy) {
    Tensor *table = node->inputs[0], *index = node->inputs[1];
    Tensor *dtable = ops_empty_like(table);
    const Backend *be = tensor_backend(dy);
    be->embedding_backward(be, tensor_f32(dtable), tensor_f32(dy), tensor_i32(index),
                           index->shape.dim[0], table->shape.dim[0], table->shape.dim[1]);
    autograd_accumulate(table, dtable);
}

// table (vocab, dim), index (n) I32 -> y (n, dim): rows of the table
Tensor *op_embedding(Tensor *table, Tensor *index) {
    check_indexed("embedding", table, index, 0);
    int64_t n = index->shape.dim[0], dim = table->shape.dim[1];
    Tensor *y = tensor_empty(shape2(n, dim), DTYPE_F32, table->device);
    const Backend *be = tensor_backend(table);
    be->embedding(be, tensor_f32(y), tensor_f32(table), tensor_i32(index), n, dim);
    Tensor *in[2] = {table, index}; // the index rides along for the backward
    autograd_record(y, "embedding", embedding_backward, 2, in);
    return y;
}

// ---- losses ---------------------------------------------------------------------------------

// dy (1) -> dlogits (n, c)
static void cross_entropy_backward(AutogradNode *node, Tensor *dy) {
    Tensor *logits = node->inputs[0], *target = node->inputs[1];
    int64_t rows = logits->shape.dim[0];
    // d mean / d loss_r = dy / rows for every row, built on the device from the (1) dy
    Tensor *dloss = op_expand(op_mul_scalar(dy, 1.0f / (float)rows), shape1(rows));
    Tensor *dlogits = ops_empty_like(logits);
    const Backend *be = tensor_backend(dy);
    be->cross_entropy_backward(be, tensor_f32(dlogits), tensor_f32(dloss), tensor_f32(logits),
                               tensor_i32(target), rows, logits->shape.dim[1]);
    autograd_accumulate(logits, dlogits);
}

// logits (n, c), target (n) I32 in [0, c) -> (1): mean over rows of -log softmax[target]
Tensor *op_cross_entropy(Tensor *logits, Tensor *target) {
    check_indexed("cross_entropy", logits, target, 1);
    int64_t rows = logits->shape.dim[0];
    OPS_CHECK_SHAPES(target->shape.dim[0] == rows, "cross_entropy", logits, target);
    const Backend *be = tensor_backend(logits);
    Tensor *loss = tensor_empty(shape1(rows), DTYPE_F32, logits->device);
    be->cross_entropy(be, tensor_f32(loss), tensor_f32(logits), tensor_i32(target), rows,
                      logits->shape.dim[1]);
    Tensor *y = tensor_empty(shape1(1), DTYPE_F32, logits->device);
    int64_t shape[KERNEL_MAX_DIMS] = {1, 1, 1, rows};
    be->reduce(be, REDUCE_MEAN, tensor_f32(y), tensor_f32(loss), shape, 1u << 3);
    Tensor *in[2] = {logits, target};
    autograd_record(y, "cross_entropy", cross_entropy_backward, 2, in);
    return y;
}

// dy (1) -> da, db (a's shape)
static void mse_backward(AutogradNode *node, Tensor *dy) {
    Tensor *a = node->inputs[0], *b = node->inputs[1];
    int64_t n = tensor_numel(a);
    Tensor *da = autograd_needs_grad(node, 0) ? ops_empty_like(a) : NULL;
    Tensor *db = autograd_needs_grad(node, 1) ? ops_empty_like(b) : NULL;
    const Backend *be = tensor_backend(dy);
    be->squared_error_backward(be, f32_or_null(da), f32_or_null(db), tensor_f32(dy), tensor_f32(a),
                               tensor_f32(b), 2.0f / (float)n, n);
    autograd_accumulate(a, da);
    autograd_accumulate(b, db);
}

// a, b (same shape) -> (1): mean((a - b)^2)
Tensor *op_mse(Tensor *a, Tensor *b) {
    Tensor *in[2] = {a, b};
    ops_check_f32("mse", 2, in);
    OPS_CHECK_SHAPES(shape_equal(a->shape, b->shape), "mse", a, b);
    int64_t n = tensor_numel(a);
    const Backend *be = tensor_backend(a);
    Tensor *sum = tensor_empty(shape1(1), DTYPE_F32, a->device);
    be->squared_error(be, tensor_f32(sum), tensor_f32(a), tensor_f32(b), n);
    Tensor *y = tensor_empty(shape1(1), DTYPE_F32, a->device);
    be->scalar(be, SCALAR_MUL, tensor_f32(y), tensor_f32(sum), 1.0f / (float)n, 1);
    autograd_record(y, "mse", mse_backward, 2, in);
    return y;
}
