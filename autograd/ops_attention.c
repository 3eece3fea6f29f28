// Scaled dot-product attention, softmax(q k^T / sqrt(d)) v, without a mask.
//
// The kernel reads q, k, v as (b, t, heads, d) with a token stride `ld`, which covers both
// layouts without a copy: separate (B, H, T, D) tensors are b = B*H sequences of one head
// (ld = D), and a packed (B, T, 3C) qkv projection is read in place, q, k and v starting at
// columns 0, C and 2C of each row (ld = 3C).
//
// Nodes save the output (an alias) and the log-sum-exp rows, so the backward recomputes
// the attention weights instead of keeping the (t, t) matrix of every head.
#include <math.h>

#include "autograd/ops_internal.h"

// The kernel's view of q, k, v, kept in node->iarg[0..4].
typedef struct {
    int64_t ld, b, t, heads, d;
} AttentionLayout;

static float attention_scale(AttentionLayout l) { return 1.0f / sqrtf((float)l.d); }

// q, k, v (l.b, l.t, l.heads, l.d) with token stride l.ld -> out (l.b, l.t, l.heads, l.d);
// records the node when grad mode wants one.
static Tensor *attention_forward(const char *name, BackwardFn backward, Tensor *const *inputs,
                                 int input_count, Shape out_shape, const float *q,
                                 const float *k, const float *v, AttentionLayout l) {
    Device device = inputs[0]->device;
    Tensor *out = tensor_empty(out_shape, DTYPE_F32, device);
    Tensor *lse = tensor_empty(shape3(l.b, l.heads, l.t), DTYPE_F32, device);
    const Backend *be = tensor_backend(inputs[0]);
    be->attention(be, tensor_f32(out), tensor_f32(lse), q, k, v, l.ld, l.b, l.t, l.heads, l.d,
                  attention_scale(l));
    AutogradNode *node = autograd_record(out, name, backward, input_count, inputs);
    if (node) {
        int64_t fields[5] = {l.ld, l.b, l.t, l.heads, l.d};
        for (int i = 0; i < 5; i++) node->iarg[i] = fields[i];
        autograd_save_output(node);
        autograd_save(node, lse);
    }
    return out;
}

// dy (l.b, l.t, l.heads, l.d) -> dq, dk, dv written in the layout of q, k, v
static void attention_gradients(const AutogradNode *node, Tensor *dy, float *dq, float *dk,
                                float *dv, const float *q, const float *k, const float *v) {
    AttentionLayout l = {node->iarg[0], node->iarg[1], node->iarg[2], node->iarg[3],
                         node->iarg[4]};
    const Backend *be = tensor_backend(dy);
    be->attention_backward(be, dq, dk, dv, tensor_f32(dy), tensor_f32(node->saved[0]),
                           tensor_f32(node->saved[1]), q, k, v, l.ld, l.b, l.t, l.heads, l.d,
                           attention_scale(l));
}

// dy (B, H, T, D) -> dq, dk, dv (B, H, T, D)
static void attention_backward(AutogradNode *node, Tensor *dy) {
    Tensor *grads[3];
    for (int i = 0; i < 3; i++) grads[i] = ops_empty_like(node->inputs[i]);
    attention_gradients(node, dy, tensor_f32(grads[0]), tensor_f32(grads[1]),
                        tensor_f32(grads[2]), tensor_f32(node->inputs[0]),
                        tensor_f32(node->inputs[1]), tensor_f32(node->inputs[2]));
    for (int i = 0; i < 3; i++) autograd_accumulate(node->inputs[i], grads[i]);
}

// q, k, v (B, H, T, D) -> (B, H, T, D)
Tensor *op_attention(Tensor *q, Tensor *k, Tensor *v) {
    Tensor *in[3] = {q, k, v};
    ops_check_f32("attention", 3, in);
    OPS_CHECK_SHAPES(q->shape.ndim == 4 && shape_equal(q->shape, k->shape), "attention", q, k);
    OPS_CHECK_SHAPES(shape_equal(q->shape, v->shape), "attention", q, v);
    const int64_t *dim = q->shape.dim;
    AttentionLayout l = {.ld = dim[3], .b = dim[0] * dim[1], .t = dim[2], .heads = 1,
                         .d = dim[3]};
    return attention_forward("attention", attention_backward, in, 3, q->shape, tensor_f32(q),
                             tensor_f32(k), tensor_f32(v), l);
}

// dy (B, T, C) -> dqkv (B, T, 3C): the kernel writes dq, dk, dv into its three column blocks
static void attention_qkv_backward(AutogradNode *node, Tensor *dy) {
    Tensor *qkv = node->inputs[0];
    int64_t c = qkv->shape.dim[2] / 3;
    Tensor *dqkv = ops_empty_like(qkv);
    float *g = tensor_f32(dqkv);
    const float *x = tensor_f32(qkv);
    attention_gradients(node, dy, g, g + c, g + 2 * c, x, x + c, x + 2 * c);
    autograd_accumulate(qkv, dqkv);
}

// qkv (B, T, 3C) read as (B, T, 3, heads, C/heads) -> (B, T, C), heads concatenated
Tensor *op_attention_qkv(Tensor *qkv, int heads) {
    ops_check_f32("attention_qkv", 1, &qkv);
    char s[64];
    DMDR_CHECK(qkv->shape.ndim == 3 && qkv->shape.dim[2] % 3 == 0,
               "attention_qkv: qkv must be (B, T, 3C), got %s", tensor_shape_str(qkv, s, sizeof s));
    const int64_t *dim = qkv->shape.dim;
    int64_t c = dim[2] / 3;
    DMDR_CHECK(heads >= 1 && c % heads == 0, "attention_qkv: %d heads do not divide C = %lld",
               heads, (long long)c);
    AttentionLayout l = {.ld = 3 * c, .b = dim[0], .t = dim[1], .heads = heads,
                         .d = c / heads};
    const float *x = tensor_f32(qkv);
    return attention_forward("attention_qkv", attention_qkv_backward, &qkv, 1,
                             shape3(dim[0], dim[1], c), x, x + c, x + 2 * c, l);
}
