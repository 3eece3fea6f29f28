// The kernels `dmdr bench` times, each at the shape a DiT training step calls it with.
// A case is data (sizes, buffers, work) plus a tiny call function, so bench.c needs one
// allocation and timing path for all of them.
#include "bench/bench_cases.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "kernels/check.h"
#include "nn/dit.h"

const char *const dit_shape_names[] = {"small", "base"};
const int dit_shape_count = (int)(sizeof dit_shape_names / sizeof dit_shape_names[0]);

int dit_shapes_from_preset(const char *name, DitShapes *s, Config *config, Error *err) {
    Config c;
    config_defaults(&c);
    if (config_apply_preset(&c, name, err)) return -1;
    const ModelConfig *m = &c.model;
    if (m->kind != MODEL_DIT)
        return error_set(err, "preset %s is a %s, not a DiT", name, model_kind_name(m->kind));
    *s = (DitShapes){.name = name, .image = m->image_size, .in_channels = m->in_channels,
                     .patch = m->patch, .hidden = m->hidden, .depth = m->depth,
                     .heads = m->heads, .batch = c.train.batch, .classes = m->num_classes};
    s->mlp = dit_mlp_hidden(m);
    if (config) *config = c;
    return 0;
}

// Arrays beyond the 32 MiB L3 in both modes, so they measure DRAM, not cache.
#define LARGE_FLOATS ((int64_t)64 << 20)
#define LARGE_FLOATS_QUICK ((int64_t)16 << 20)

#define DIMS(...) ((const int64_t[BENCH_MAX_DIMS]){__VA_ARGS__})

// ---- call functions: buf and dim follow the order the builders below write them in ----

// dim: m, n, k, trans_a, trans_b. buf: a, b, c (batch 1, c overwritten).
static void call_gemm(const Backend *be, void *const *buf, const int64_t *dim) {
    be->matmul(buf[2], buf[0], buf[1], 1, dim[0], dim[1], dim[2], dim[3] != 0, dim[4] != 0, 1.0f,
               0.0f, 0, 0, 0);
}

// dim: nbytes. buf: src, dst.
static void call_copy(const Backend *be, void *const *buf, const int64_t *dim) {
    be->copy(buf[1], buf[0], (size_t)dim[0]);
}

// dim: n, c, h, w, kernel, stride, pad, out_channels.
static ConvGeometry conv_geometry(const int64_t *dim) {
    ConvGeometry g = {.c = dim[1], .h = dim[2], .w = dim[3], .kh = dim[4], .kw = dim[4],
                      .stride = dim[5], .pad = dim[6]};
    g.oh = (g.h + 2 * g.pad - g.kh) / g.stride + 1;
    g.ow = (g.w + 2 * g.pad - g.kw) / g.stride + 1;
    return g;
}

// x (n, c, h, w), weight (oc, c*k*k) -> y (n, oc, oh, ow), the way op_conv2d runs it:
// im2col, one GEMM for the whole batch, then the (oc, n) -> (n, oc) permute back to NCHW.
// buf: x, weight, col (c*k*k, n*oh*ow), y_cols (oc, n*oh*ow), y.
static void call_conv2d(const Backend *be, void *const *buf, const int64_t *dim) {
    ConvGeometry g = conv_geometry(dim);
    int64_t n = dim[0], oc = dim[7], pixels = g.oh * g.ow;
    be->im2col(buf[2], buf[0], n, &g);
    be->matmul(buf[3], buf[1], buf[2], 1, oc, n * pixels, g.c * g.kh * g.kw, false, false, 1.0f,
               0.0f, 0, 0, 0);
    const int64_t shape[KERNEL_MAX_DIMS] = {1, n, oc, pixels};
    const int64_t dst_stride[KERNEL_MAX_DIMS] = {0, oc * pixels, pixels, 1};
    const int64_t src_stride[KERNEL_MAX_DIMS] = {0, pixels, n * pixels, 1};
    be->copy_strided(buf[4], dst_stride, buf[3], src_stride, shape);
}

// dim: b, t, heads, d. buf: qkv (b, t, 3 heads d) packed, out (b, t, heads d), lse (b, heads, t).
static void call_attention(const Backend *be, void *const *buf, const int64_t *dim) {
    const float *qkv = buf[0];
    int64_t c = dim[2] * dim[3];
    be->attention(buf[1], buf[2], qkv, qkv + c, qkv + 2 * c, 3 * c, dim[0], dim[1], dim[2],
                  dim[3], 1.0f / sqrtf((float)dim[3]));
}

// dim as call_attention. buf: qkv, out, lse (from the forward), dout, dqkv (packed like qkv).
static void call_attention_backward(const Backend *be, void *const *buf, const int64_t *dim) {
    const float *qkv = buf[0];
    float *dqkv = buf[4];
    int64_t c = dim[2] * dim[3];
    be->attention_backward(dqkv, dqkv + c, dqkv + 2 * c, buf[3], buf[1], buf[2], qkv, qkv + c,
                           qkv + 2 * c, 3 * c, dim[0], dim[1], dim[2], dim[3],
                           1.0f / sqrtf((float)dim[3]));
}

// The DiT's LayerNorms have no affine parameters (adaLN modulation replaces them), eps 1e-6.
// dim: rows, c. buf: x, y, mean, rstd.
static void call_layernorm(const Backend *be, void *const *buf, const int64_t *dim) {
    be->layernorm(buf[1], buf[2], buf[3], buf[0], NULL, NULL, dim[0], dim[1], 1e-6f);
}

// dim: rows, c. buf: x, y, mean, rstd (from the forward), dy, dx.
static void call_layernorm_backward(const Backend *be, void *const *buf, const int64_t *dim) {
    be->layernorm_backward(buf[5], NULL, NULL, buf[4], buf[0], buf[2], buf[3], NULL, dim[0],
                           dim[1]);
}

// dim: rows, cols. buf: x, y.
static void call_softmax(const Backend *be, void *const *buf, const int64_t *dim) {
    be->softmax(buf[1], buf[0], dim[0], dim[1], false);
}

// dim: op, n. buf: x, y.
static void call_unary(const Backend *be, void *const *buf, const int64_t *dim) {
    be->unary((UnaryOp)dim[0], buf[1], buf[0], dim[1]);
}

// dim: op, n. buf: x, y (from the forward), dy, dx.
static void call_unary_backward(const Backend *be, void *const *buf, const int64_t *dim) {
    be->unary_backward((UnaryOp)dim[0], buf[3], buf[0], buf[1], buf[2], dim[1]);
}

// a (b, t, c) op b -> y (b, t, c), where b is (b, t, c), or (b, 1, c) repeated over t when
// dim[4] is set (adaLN's modulate). dim: op, b, t, c, b_repeats_over_t. buf: a, b, y.
static Broadcast binary_broadcast(const int64_t *dim) {
    int64_t b = dim[1], t = dim[2], c = dim[3];
    Broadcast bc = {.shape = {1, b, t, c},
                    .a_stride = {0, t * c, c, 1},
                    .b_stride = {0, t * c, c, 1}};
    if (dim[4]) {
        bc.b_stride[1] = c;
        bc.b_stride[2] = 0;
    }
    return bc;
}

static void call_binary(const Backend *be, void *const *buf, const int64_t *dim) {
    Broadcast bc = binary_broadcast(dim);
    be->binary((BinaryOp)dim[0], buf[2], buf[0], buf[1], &bc);
}

// dy * d(a op b) for call_binary's shapes: da full, db full-shaped too (the autograd layer
// sums it over t afterwards). dim as call_binary. buf: a, b, dy, da, db.
static void call_binary_backward(const Backend *be, void *const *buf, const int64_t *dim) {
    Broadcast bc = binary_broadcast(dim);
    be->binary_backward((BinaryOp)dim[0], buf[3], buf[4], buf[0], buf[1], buf[2], &bc);
}

// dim: a, r, k, then 1: x (a, r, k) summed over r into y (a, 1, k). buf: x, y.
static void call_reduce(const Backend *be, void *const *buf, const int64_t *dim) {
    const int64_t shape[KERNEL_MAX_DIMS] = {1, dim[0], dim[1], dim[2]};
    be->reduce(REDUCE_SUM, buf[1], buf[0], shape, 1u << 2);
}

// dim: n. buf: x. The gradient norm of clipping, over one tensor of every parameter.
static void call_sum_squares(const Backend *be, void *const *buf, const int64_t *dim) {
    const float *xs[1] = {buf[0]};
    be->sum_squares(xs, dim, 1);
}

// dim: n. buf: a, b, y (1).
static void call_squared_error(const Backend *be, void *const *buf, const int64_t *dim) {
    be->squared_error(buf[2], buf[0], buf[1], dim[0]);
}

// dim: n, c, h, w, p. buf: x (n, c, h, w), y: the first of dit_patchify's two copies,
// x viewed (n c h/p, p, w/p, p) -> (n c h/p, w/p, p, p).
static void call_patchify(const Backend *be, void *const *buf, const int64_t *dim) {
    int64_t p = dim[4], rows = dim[0] * dim[1] * (dim[2] / p), w = dim[3] / p;
    const int64_t shape[KERNEL_MAX_DIMS] = {rows, w, p, p};
    const int64_t src[KERNEL_MAX_DIMS] = {p * w * p, p, w * p, 1};
    const int64_t dst[KERNEL_MAX_DIMS] = {w * p * p, p * p, p, 1};
    be->copy_strided(buf[1], dst, buf[0], src, shape);
}

// dim: n. buf: p, g, m, v.
static void call_adamw(const Backend *be, void *const *buf, const int64_t *dim) {
    // A step late enough that the bias corrections are not trivial.
    static const AdamWStep step = {.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                   .weight_decay = 0.0f, .bias_correction1 = 0.6513216f,
                                   .bias_correction2 = 0.009955120f, .grad_scale = 1.0f};
    be->adamw(buf[0], buf[1], buf[2], buf[3], dim[0], &step);
}

// dim: rows, classes. buf: logits, target, loss.
static void call_cross_entropy(const Backend *be, void *const *buf, const int64_t *dim) {
    be->cross_entropy(buf[2], buf[0], buf[1], dim[0], dim[1]);
}

// ---- building the case list ----

typedef struct {
    BenchCase *items;
    int count;
} CaseList;

static BenchCase *case_add(CaseList *list, const char *name, BenchCall call, BenchCall prepare,
                           const int64_t dim[BENCH_MAX_DIMS]) {
    DMDR_CHECK(list->count < BENCH_MAX_CASES, "more than %d bench cases", BENCH_MAX_CASES);
    BenchCase *c = &list->items[list->count++];
    *c = (BenchCase){.name = name, .call = call, .prepare = prepare};
    for (int i = 0; i < BENCH_MAX_DIMS; i++) c->dim[i] = dim[i];
    return c;
}

static BufferSpec *case_buffer(BenchCase *c, int64_t count) {
    DMDR_CHECK(c->nbuffers < BENCH_MAX_BUFFERS, "%s: more than %d buffers", c->name,
               BENCH_MAX_BUFFERS);
    BufferSpec *b = &c->buffers[c->nbuffers++];
    *b = (BufferSpec){.count = count, .init = BUFFER_SIGNED};
    return b;
}

__attribute__((format(printf, 2, 3))) static void case_shape(BenchCase *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->shape, sizeof c->shape, fmt, ap);
    va_end(ap);
}

// c (m, n) = op(a) op(b); the shape shows a and b as stored, ^T where transposed.
static void add_gemm(CaseList *list, const char *name, int64_t m, int64_t n, int64_t k,
                     bool trans_a, bool trans_b) {
    BenchCase *c = case_add(list, name, call_gemm, NULL, DIMS(m, n, k, trans_a, trans_b));
    c->flops = 2.0 * (double)m * (double)n * (double)k;
    case_buffer(c, m * k);
    case_buffer(c, k * n);
    case_buffer(c, m * n);
    case_shape(c, "(%lld,%lld)%s x (%lld,%lld)%s", (long long)(trans_a ? k : m),
               (long long)(trans_a ? m : k), trans_a ? "^T" : "", (long long)(trans_b ? n : k),
               (long long)(trans_b ? k : n), trans_b ? "^T" : "");
}

void bench_ceiling_cases(BenchCase *gemm, BenchCase *copy, Device device, bool quick) {
    // A GPU needs a larger GEMM than a CPU to fill its cores.
    int64_t n = quick ? 1024 : device == DEVICE_CPU ? 2048 : 4096;
    CaseList gemm_list = {gemm, 0};
    add_gemm(&gemm_list, "ceiling_sgemm", n, n, n, false, false);

    int64_t nbytes = (int64_t)(quick ? 64 : 256) << 20;
    CaseList copy_list = {copy, 0};
    BenchCase *c = case_add(&copy_list, "ceiling_copy", call_copy, NULL, DIMS(nbytes));
    c->bytes = 2.0 * (double)nbytes;
    case_buffer(c, nbytes / 4);
    case_buffer(c, nbytes / 4);
    case_shape(c, "%lld MiB", (long long)(nbytes >> 20));
}

static void add_conv2d(CaseList *list, const char *name, int64_t n, int64_t channels, int64_t hw,
                       int64_t kernel, int64_t stride, int64_t pad, int64_t out_channels) {
    BenchCase *c = case_add(list, name, call_conv2d, NULL,
                            DIMS(n, channels, hw, hw, kernel, stride, pad, out_channels));
    ConvGeometry g = conv_geometry(c->dim);
    int64_t patch = channels * kernel * kernel, columns = n * g.oh * g.ow;
    c->flops = 2.0 * (double)out_channels * (double)columns * (double)patch;
    case_buffer(c, n * channels * hw * hw);
    case_buffer(c, out_channels * patch);
    case_buffer(c, patch * columns);
    case_buffer(c, out_channels * columns);
    case_buffer(c, out_channels * columns);
    case_shape(c, "(%lld,%lld,%lld,%lld) k%lld s%lld -> %lld ch", (long long)n,
               (long long)channels, (long long)hw, (long long)hw, (long long)kernel,
               (long long)stride, (long long)out_channels);
}

static void add_attention(CaseList *list, const DitShapes *s, int64_t b, int64_t t) {
    int64_t d = s->hidden / s->heads, c = s->hidden;
    double forward_flops = 4.0 * (double)b * (double)s->heads * (double)t * (double)t * (double)d;
    const char *names[2] = {"attention", "attention_backward"};
    for (int backward = 0; backward < 2; backward++) {
        BenchCase *k = case_add(list, names[backward],
                                backward ? call_attention_backward : call_attention,
                                backward ? call_attention : NULL, DIMS(b, t, s->heads, d));
        // The backward recomputes the probabilities and makes four GEMMs to the forward's two.
        k->flops = backward ? 2.5 * forward_flops : forward_flops;
        case_buffer(k, b * t * 3 * c);
        case_buffer(k, b * t * c);
        case_buffer(k, b * s->heads * t);
        if (backward) {
            case_buffer(k, b * t * c);
            case_buffer(k, b * t * 3 * c);
        }
        case_shape(k, "b%lld t%lld h%lld d%lld, qkv packed", (long long)b, (long long)t,
                   (long long)s->heads, (long long)d);
    }
}

static void add_layernorm(CaseList *list, const char *forward_name, const char *backward_name,
                          int64_t rows, int64_t c) {
    const char *names[2] = {forward_name, backward_name};
    for (int backward = 0; backward < 2; backward++) {
        BenchCase *k = case_add(list, names[backward],
                                backward ? call_layernorm_backward : call_layernorm,
                                backward ? call_layernorm : NULL, DIMS(rows, c));
        // forward: read x, write y, mean, rstd; backward: read dy, x, mean, rstd, write dx
        double big = backward ? 3.0 : 2.0;
        k->bytes = 4.0 * (big * (double)rows * (double)c + 2.0 * (double)rows);
        case_buffer(k, rows * c);
        case_buffer(k, rows * c);
        case_buffer(k, rows);
        case_buffer(k, rows);
        if (backward) {
            case_buffer(k, rows * c);
            case_buffer(k, rows * c);
        }
        case_shape(k, "(%lld,%lld)", (long long)rows, (long long)c);
    }
}

// x, y (rows, cols): reads x, writes y
static void add_softmax(CaseList *list, const char *name, int64_t rows, int64_t cols) {
    BenchCase *k = case_add(list, name, call_softmax, NULL, DIMS(rows, cols));
    k->bytes = 4.0 * 2.0 * (double)rows * (double)cols;
    case_buffer(k, rows * cols);
    case_buffer(k, rows * cols);
    case_shape(k, "(%lld,%lld)", (long long)rows, (long long)cols);
}

// Forward reads x and writes y. The backward reads x and dy and writes dx: none of these
// derivatives needs y, so a kernel that reads it too pays for it in the figure.
static void add_unary(CaseList *list, const char *name, UnaryOp op, bool backward, int64_t n) {
    BenchCase *c = case_add(list, name, backward ? call_unary_backward : call_unary,
                            backward ? call_unary : NULL, DIMS(op, n));
    c->bytes = 4.0 * (double)n * (backward ? 3.0 : 2.0);
    for (int i = 0; i < (backward ? 4 : 2); i++) case_buffer(c, n);
    case_shape(c, "n=%lld", (long long)n);
}

static void add_binary(CaseList *list, const char *name, BinaryOp op, int64_t b, int64_t t,
                       int64_t c, bool b_repeats_over_t) {
    BenchCase *k = case_add(list, name, call_binary, NULL, DIMS(op, b, t, c, b_repeats_over_t));
    int64_t n = b * t * c, b_count = b_repeats_over_t ? b * c : n;
    k->bytes = 4.0 * (2.0 * (double)n + (double)b_count);
    case_buffer(k, n);
    case_buffer(k, b_count);
    case_buffer(k, n);
    if (b_repeats_over_t)
        case_shape(k, "(%lld,%lld,%lld) * (%lld,1,%lld)", (long long)b, (long long)t,
                   (long long)c, (long long)b, (long long)c);
    else if (b == 1 && t == 1)
        case_shape(k, "n=%lld (%lld MiB each)", (long long)n, (long long)(n >> 18));
    else
        case_shape(k, "(%lld,%lld,%lld)", (long long)b, (long long)t, (long long)c);
}

// The backward of add_binary's op: reads a, b, dy, writes da and a full-shaped db.
static void add_binary_backward(CaseList *list, const char *name, BinaryOp op, int64_t b,
                                int64_t t, int64_t c, bool b_repeats_over_t) {
    BenchCase *k = case_add(list, name, call_binary_backward, NULL,
                            DIMS(op, b, t, c, b_repeats_over_t));
    int64_t n = b * t * c, b_count = b_repeats_over_t ? b * c : n;
    k->bytes = 4.0 * (4.0 * (double)n + (double)b_count);
    case_buffer(k, n);
    case_buffer(k, b_count);
    for (int i = 0; i < 3; i++) case_buffer(k, n);
    case_shape(k, "(%lld,%lld,%lld) * (%lld,1,%lld)", (long long)b, (long long)t, (long long)c,
               (long long)b, (long long)c);
}

// x (a, r, k) -> y (a, 1, k), the sum over r
static void add_reduce(CaseList *list, const char *name, int64_t a, int64_t r, int64_t k) {
    BenchCase *c = case_add(list, name, call_reduce, NULL, DIMS(a, r, k));
    c->bytes = 4.0 * ((double)a * (double)r * (double)k + (double)a * (double)k);
    case_buffer(c, a * r * k);
    case_buffer(c, a * k);
    if (a == 1) case_shape(c, "(%lld,%lld) -> (%lld)", (long long)r, (long long)k, (long long)k);
    else case_shape(c, "(%lld,%lld,%lld) -> (%lld,1,%lld)", (long long)a, (long long)r,
                    (long long)k, (long long)a, (long long)k);
}

static void add_sum_squares(CaseList *list, int64_t n) {
    BenchCase *c = case_add(list, "sum_squares", call_sum_squares, NULL, DIMS(n));
    c->bytes = 4.0 * (double)n;
    case_buffer(c, n);
    case_shape(c, "n=%lld", (long long)n);
}

static void add_squared_error(CaseList *list, int64_t n) {
    BenchCase *c = case_add(list, "squared_error", call_squared_error, NULL, DIMS(n));
    c->bytes = 4.0 * 2.0 * (double)n;
    case_buffer(c, n);
    case_buffer(c, n);
    case_buffer(c, 1);
    case_shape(c, "n=%lld", (long long)n);
}

static void add_patchify(CaseList *list, const DitShapes *s, int64_t n) {
    BenchCase *c = case_add(list, "copy_patchify", call_patchify, NULL,
                            DIMS(n, s->in_channels, s->image, s->image, s->patch));
    int64_t count = n * s->in_channels * s->image * s->image;
    c->bytes = 4.0 * 2.0 * (double)count;
    case_buffer(c, count);
    case_buffer(c, count);
    case_shape(c, "(%lld,%lld,%lld,%lld) p%lld", (long long)n, (long long)s->in_channels,
               (long long)s->image, (long long)s->image, (long long)s->patch);
}

// A linear layer's three GEMMs: y = x W^T (rows, out); dx = dy W (rows, in);
// dW = dy^T x (out, in).
static void add_linear(CaseList *list, const char *const names[3], int64_t rows, int64_t in,
                       int64_t out) {
    add_gemm(list, names[0], rows, out, in, false, true);
    add_gemm(list, names[1], rows, in, out, false, false);
    add_gemm(list, names[2], out, in, rows, true, false);
}

static void add_adamw(CaseList *list, const char *name, int64_t n) {
    BenchCase *c = case_add(list, name, call_adamw, NULL, DIMS(n));
    c->bytes = 4.0 * 7.0 * (double)n; // reads p, g, m, v; writes p, m, v
    for (int i = 0; i < 3; i++) case_buffer(c, n);
    case_buffer(c, n)->init = BUFFER_POSITIVE;
    case_shape(c, "n=%lld", (long long)n);
}

static void add_cross_entropy(CaseList *list, int64_t rows, int64_t classes) {
    BenchCase *c = case_add(list, "cross_entropy", call_cross_entropy, NULL, DIMS(rows, classes));
    c->bytes = 4.0 * ((double)rows * (double)classes + 2.0 * (double)rows);
    case_buffer(c, rows * classes);
    BufferSpec *target = case_buffer(c, rows);
    target->init = BUFFER_LABELS;
    target->label_range = classes;
    case_buffer(c, rows);
    case_shape(c, "(%lld,%lld)", (long long)rows, (long long)classes);
}

int64_t dit_param_count(const DitShapes *s) {
    int64_t c = s->hidden, m = s->mlp, pixels = s->patch * s->patch * s->in_channels;
    // attn.qkv, attn.proj, mlp.fc1, mlp.fc2, adaLN_modulation (weights and biases)
    int64_t block = (c * 3 * c + 3 * c) + (c * c + c) + (c * m + m) + (m * c + c) +
                    (c * 6 * c + 6 * c);
    int64_t x_embedder = pixels * c + c;
    int64_t t_embedder = (256 * c + c) + (c * c + c); // from a 256-wide frequency embedding
    int64_t y_embedder = (s->classes + 1) * c;        // + 1: the dropped-label class for CFG
    int64_t final_layer = (c * 2 * c + 2 * c) + (c * pixels + pixels);
    return s->depth * block + x_embedder + t_embedder + y_embedder + final_layer;
}

double dit_forward_flops(const DitShapes *s, int64_t images) {
    double c = (double)s->hidden, m = (double)s->mlp, n = (double)images;
    double grid = (double)(s->image / s->patch), t = grid * grid;
    double pixels = (double)(s->patch * s->patch * s->in_channels);
    // multiply-adds per token: qkv, attn.proj, fc1, fc2 in every block, patch embed, final
    double per_token = (double)s->depth * (3 * c * c + c * c + 2 * c * m) + 2 * pixels * c;
    // per image: q k^T and P v (t^2 c each, over all heads) and adaLN (6 c^2) in every block,
    // the final adaLN (2 c^2) and the timestep MLP (256 c + c^2)
    double per_image = (double)s->depth * (2 * t * t * c + 6 * c * c) + 2 * c * c +
                       256 * c + c * c;
    return 2.0 * n * (t * per_token + per_image);
}

int bench_kernel_cases(BenchCase *cases, const DitShapes *s, bool quick) {
    CaseList list = {cases, 0};
    int64_t b = s->batch;
    int64_t grid = s->image / s->patch, t = grid * grid, c = s->hidden, m = s->mlp;
    int64_t tokens = b * t, large = quick ? LARGE_FLOATS_QUICK : LARGE_FLOATS;

    // Linear layers, W (out, in) as nn.Linear stores it: forward, dx and dW.
    static const char *const qkv[3] = {"gemm_qkv", "gemm_qkv_dx", "gemm_qkv_dw"};
    static const char *const proj[3] = {"gemm_attn_proj", "gemm_attn_proj_dx",
                                        "gemm_attn_proj_dw"};
    static const char *const fc1[3] = {"gemm_mlp_fc1", "gemm_mlp_fc1_dx", "gemm_mlp_fc1_dw"};
    static const char *const fc2[3] = {"gemm_mlp_fc2", "gemm_mlp_fc2_dx", "gemm_mlp_fc2_dw"};
    add_linear(&list, qkv, tokens, c, 3 * c);
    add_linear(&list, proj, tokens, c, c);
    add_linear(&list, fc1, tokens, c, m);
    add_linear(&list, fc2, tokens, m, c);
    add_gemm(&list, "gemm_adaln", b, 6 * c, c, false, true);
    // the patch embedding: a linear over patches laid out by dit_patchify
    int64_t pixels = s->in_channels * s->patch * s->patch;
    add_gemm(&list, "gemm_patch_embed", tokens, c, pixels, false, true);
    add_patchify(&list, s, b);
    // The UNet's convolutions (im2col + GEMM) at the DiT's token grid.
    add_conv2d(&list, "conv3x3", b, 64, grid, 3, 1, 1, 64);

    add_attention(&list, s, b, t);
    add_layernorm(&list, "layernorm", "layernorm_backward", tokens, c);
    // the same row lengths with 256 MiB per array: beyond the last-level cache
    add_layernorm(&list, "layernorm_large", "layernorm_backward_large", large / c, c);

    add_softmax(&list, "softmax", b * s->heads * t, t);
    add_softmax(&list, "softmax_large", large / t, t);

    add_unary(&list, "gelu_tanh", UNARY_GELU_TANH, false, tokens * m);
    add_unary(&list, "gelu_tanh_backward", UNARY_GELU_TANH, true, tokens * m);
    // The DiT applies SiLU to (b, c) conditioning only; at that size the figure would be call
    // overhead, so it is measured at the activation size like the other elementwise kernels.
    add_unary(&list, "silu", UNARY_SILU, false, tokens * c);

    add_binary(&list, "add", BINARY_ADD, b, t, c, false);
    add_binary(&list, "mul", BINARY_MUL, b, t, c, false);
    add_binary(&list, "mul_modulate", BINARY_MUL, b, t, c, true);
    add_binary_backward(&list, "mul_modulate_backward", BINARY_MUL, b, t, c, true);
    // bias gradients (column sums over every token) and the per-sample sums of adaLN's
    // shift, scale and gate gradients over the tokens
    add_reduce(&list, "sum_bias_grad", 1, tokens, m);
    add_reduce(&list, "sum_modulate_grad", b, t, c);
    add_binary(&list, "add_large", BINARY_ADD, 1, 1, large, false);
    add_binary(&list, "mul_large", BINARY_MUL, 1, 1, large, false);

    add_squared_error(&list, b * s->in_channels * s->image * s->image);
    add_sum_squares(&list, dit_param_count(s));
    add_adamw(&list, "adamw", dit_param_count(s));
    add_adamw(&list, "adamw_large", large);
    add_cross_entropy(&list, b, s->classes);
    return list.count;
}
