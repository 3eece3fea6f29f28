// The kernels `dmdr bench` times, each at the shape a DiT training step calls it with: the
// builders of the kernel-case registry (kernels/cases/cases.h), whose calls test_kernels runs
// against its references on every backend, named and described here as the bench reports
// them.
#include "bench/bench_cases.h"

#include <stdio.h>
#include <string.h>

#include "kernels/check.h"
#include "nn/dit.h"

int dit_shapes_from_model(const char *name, const ModelConfig *m, int64_t batch, DitShapes *s,
                          Error *err) {
    if (m->kind != MODEL_DIT)
        return error_set(err, "preset %s is a %s, not a DiT", name, model_kind_name(m->kind));
    *s = (DitShapes){.name = name, .image = m->image_size, .in_channels = m->in_channels,
                     .patch = m->patch, .hidden = m->hidden, .depth = m->depth,
                     .heads = m->heads, .batch = batch, .classes = m->num_classes};
    s->mlp = dit_mlp_hidden(m);
    return 0;
}

// Arrays beyond the 32 MiB L3 in both modes, so they measure DRAM, not cache.
#define LARGE_FLOATS ((int64_t)64 << 20)
#define LARGE_FLOATS_QUICK ((int64_t)16 << 20)

// Copies the cases of list into cases (BENCH_MAX_CASES room) and frees the list.
static int take_cases(BenchCase *cases, CaseList *list) {
    DMDR_CHECK(list->count <= BENCH_MAX_CASES, "%d bench cases, room for %d", list->count,
               BENCH_MAX_CASES);
    int count = list->count;
    memcpy(cases, list->items, (size_t)count * sizeof *cases);
    case_list_free(list);
    return count;
}

void bench_ceiling_cases(BenchCase cases[CEILING_COUNT], Device device, bool quick) {
    // A GPU needs a larger GEMM than a CPU to fill its cores.
    int64_t n = quick ? 1024 : device == DEVICE_CPU ? 2048 : 4096;
    int64_t nbytes = (int64_t)(quick ? 64 : 256) << 20;
    CaseList list = {0};
    case_gemm(&list, "ceiling_sgemm", n, n, n, false, false, PRECISION_FP32);
    case_gemm(&list, "ceiling_bf16", n, n, n, false, false, PRECISION_BF16);
    case_shape(case_copy(&list, "ceiling_copy", nbytes / 4, 0, 0, nbytes / 4, false), "%lld MiB",
               (long long)(nbytes >> 20));
    for (int i = 0; i < CEILING_COUNT; i++) cases[i] = list.items[i];
    case_list_free(&list);
}

// name, or name_bf16 in bf16 (in a buffer that lives until the next call)
static const char *gemm_name(const char *name, Precision precision) {
    static char text[64];
    snprintf(text, sizeof text, "%s%s", name, precision == PRECISION_BF16 ? "_bf16" : "");
    return text;
}

// A linear layer's three GEMMs: y = x W^T (rows, out); dx = dy W (rows, in);
// dW = dy^T x (out, in).
static void add_linear(CaseList *list, const char *const names[3], int64_t rows, int64_t in,
                       int64_t out, Precision p) {
    case_gemm(list, gemm_name(names[0], p), rows, out, in, false, true, p);
    case_gemm(list, gemm_name(names[1], p), rows, in, out, false, false, p);
    case_gemm(list, gemm_name(names[2], p), out, in, rows, true, false, p);
}

// The first of dit_patchify's two copies: x (n, c, h, w) viewed (n c h/p, p, w/p, p) ->
// (n c h/p, w/p, p, p).
static void add_patchify(CaseList *list, const DitShapes *s, int64_t n) {
    int64_t p = s->patch, rows = n * s->in_channels * (s->image / p), w = s->image / p;
    int64_t count = n * s->in_channels * s->image * s->image;
    StridedParams sp = {.shape = {rows, w, p, p}, .src_stride = {p * w * p, p, w * p, 1},
                        .dst_stride = {w * p * p, p * p, p, 1}};
    case_shape(case_copy_strided(list, "copy_patchify", &sp, count, count),
               "(%lld,%lld,%lld,%lld) p%lld", (long long)n, (long long)s->in_channels,
               (long long)s->image, (long long)s->image, (long long)p);
}

static void add_attention(CaseList *list, const DitShapes *s, int64_t b, int64_t t) {
    const AttentionParams p = {b, t, s->heads, s->hidden / s->heads, true};
    for (int backward = 0; backward < 2; backward++)
        case_shape(case_attention(list, backward ? "attention_backward" : "attention", &p,
                                  backward),
                   "b%lld t%lld h%lld d%lld, qkv packed", (long long)b, (long long)t,
                   (long long)p.heads, (long long)p.d);
}

// The DiT's LayerNorms have no affine parameters (adaLN modulation replaces them), eps 1e-6.
static void add_layernorm(CaseList *list, const char *forward, const char *backward,
                          int64_t rows, int64_t c) {
    const NormParams p = {.n = rows, .c = c, .hw = 1, .groups = 1, .eps = 1e-6f, .lo = -1,
                          .hi = 1};
    case_norm(list, forward, &p, true, false);
    case_norm(list, backward, &p, true, true);
}

// a (b, t, c) op b, where b is (b, t, c), or (b, 1, c) repeated over t (adaLN's modulate). The
// backward writes a full-shaped db (the autograd layer sums it over t afterwards).
static void add_binary(CaseList *list, const char *name, BinaryOp op, int64_t b, int64_t t,
                       int64_t c, bool modulate, bool backward) {
    const int64_t full[KERNEL_MAX_DIMS] = {1, b, t, c}, per_sample[KERNEL_MAX_DIMS] = {1, b, 1, c};
    KernelCase *k = case_binary(list, name, op, full, full, modulate ? per_sample : full,
                                backward, backward ? 3 : 0);
    if (modulate)
        case_shape(k, "(%lld,%lld,%lld) * (%lld,1,%lld)", (long long)b, (long long)t,
                   (long long)c, (long long)b, (long long)c);
    else if (b == 1 && t == 1)
        case_shape(k, "n=%lld (%lld MiB each)", (long long)c, (long long)(c >> 18));
    else
        case_shape(k, "(%lld,%lld,%lld)", (long long)b, (long long)t, (long long)c);
}

// x (a, r, k) -> y (a, 1, k), the sum over r
static void add_reduce(CaseList *list, const char *name, int64_t a, int64_t r, int64_t k) {
    const int64_t shape[KERNEL_MAX_DIMS] = {1, a, r, k};
    KernelCase *c = case_reduce(list, name, REDUCE_SUM, shape, 1u << 2);
    if (a == 1) case_shape(c, "(%lld,%lld) -> (%lld)", (long long)r, (long long)k, (long long)k);
    else case_shape(c, "(%lld,%lld,%lld) -> (%lld,1,%lld)", (long long)a, (long long)r,
                    (long long)k, (long long)a, (long long)k);
}

// AdamW at a step late enough that the bias corrections are not trivial.
static void add_adamw(CaseList *list, const char *name, int64_t n) {
    const AdamWParams p = {.n = n, .first_step = 10, .steps = 1, .lr = 1e-4f, .beta1 = 0.9f,
                           .beta2 = 0.999f, .eps = 1e-8f};
    case_adamw(list, name, &p, false);
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

int bench_kernel_cases(BenchCase *cases, const DitShapes *s, bool quick,
                       const bool precisions[PRECISION_COUNT]) {
    CaseList list = {0};
    int64_t b = s->batch;
    int64_t grid = s->image / s->patch, t = grid * grid, c = s->hidden, m = s->mlp;
    int64_t tokens = b * t, large = quick ? LARGE_FLOATS_QUICK : LARGE_FLOATS;

    // Linear layers, W (out, in) as nn.Linear stores it: forward, dx and dW.
    static const char *const qkv[3] = {"gemm_qkv", "gemm_qkv_dx", "gemm_qkv_dw"};
    static const char *const proj[3] = {"gemm_attn_proj", "gemm_attn_proj_dx",
                                        "gemm_attn_proj_dw"};
    static const char *const fc1[3] = {"gemm_mlp_fc1", "gemm_mlp_fc1_dx", "gemm_mlp_fc1_dw"};
    static const char *const fc2[3] = {"gemm_mlp_fc2", "gemm_mlp_fc2_dx", "gemm_mlp_fc2_dw"};
    int64_t pixels = s->in_channels * s->patch * s->patch;
    // The UNet's convolutions (im2col + GEMM) at the DiT's token grid.
    const ConvGeometry conv = {.c = 64, .h = grid, .w = grid, .kh = 3, .kw = 3, .stride = 1,
                               .pad = 1};
    for (int pi = 0; pi < PRECISION_COUNT; pi++) {
        if (!precisions[pi]) continue;
        Precision p = (Precision)pi;
        add_linear(&list, qkv, tokens, c, 3 * c, p);
        add_linear(&list, proj, tokens, c, c, p);
        add_linear(&list, fc1, tokens, c, m, p);
        add_linear(&list, fc2, tokens, m, c, p);
        case_gemm(&list, gemm_name("gemm_adaln", p), b, 6 * c, c, false, true, p);
        // the patch embedding: a linear over patches laid out by dit_patchify
        case_gemm(&list, gemm_name("gemm_patch_embed", p), tokens, c, pixels, false, true, p);
        case_conv2d(&list, gemm_name("conv3x3", p), b, &conv, 64, p);
    }
    add_patchify(&list, s, b);

    add_attention(&list, s, b, t);
    add_layernorm(&list, "layernorm", "layernorm_backward", tokens, c);
    // the same row lengths with 256 MiB per array: beyond the last-level cache
    add_layernorm(&list, "layernorm_large", "layernorm_backward_large", large / c, c);

    case_softmax(&list, "softmax", b * s->heads * t, t, false, -1, 1, false);
    case_softmax(&list, "softmax_large", large / t, t, false, -1, 1, false);

    case_unary(&list, "gelu_tanh", UNARY_GELU_TANH, tokens * m, false);
    case_unary(&list, "gelu_tanh_backward", UNARY_GELU_TANH, tokens * m, true);
    // The DiT applies SiLU to (b, c) conditioning only; at that size the figure would be call
    // overhead, so it is measured at the activation size like the other elementwise kernels.
    case_unary(&list, "silu", UNARY_SILU, tokens * c, false);

    add_binary(&list, "add", BINARY_ADD, b, t, c, false, false);
    add_binary(&list, "mul", BINARY_MUL, b, t, c, false, false);
    add_binary(&list, "mul_modulate", BINARY_MUL, b, t, c, true, false);
    add_binary(&list, "mul_modulate_backward", BINARY_MUL, b, t, c, true, true);
    // bias gradients (column sums over every token) and the per-sample sums of adaLN's
    // shift, scale and gate gradients over the tokens
    add_reduce(&list, "sum_bias_grad", 1, tokens, m);
    add_reduce(&list, "sum_modulate_grad", b, t, c);
    add_binary(&list, "add_large", BINARY_ADD, 1, 1, large, false, false);
    add_binary(&list, "mul_large", BINARY_MUL, 1, 1, large, false, false);

    case_squared_error(&list, "squared_error", b * s->in_channels * s->image * s->image, false,
                       0);
    int64_t params = dit_param_count(s);
    case_sum_squares(&list, "sum_squares", 1, &params);
    add_adamw(&list, "adamw", params);
    add_adamw(&list, "adamw_large", large);
    case_cross_entropy(&list, "cross_entropy", b, s->classes, -1, 1, false);
    return take_cases(cases, &list);
}
