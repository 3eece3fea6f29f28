// The nn check suite: the building-block modules (Linear with LoRA, norms, Conv2d, Embedding,
// the initialisers and the timestep embedding) against plain loops, and the DiT: its
// state_dict names and shapes, the reference initialisation, adaLN-Zero's zero output,
// gradients reaching every parameter, a finite-difference check of the whole network and
// the patch layout against the convolution and the reference unpatchify.
//
// Random values come from the run's seed (test_seed_for(name)); DMDR_TEST_SEED replays one.
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/gradcheck.h"
#include "nn/dit.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "test/test_util.h"

#define COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

// ---- helpers --------------------------------------------------------------------------------

// A CPU tensor of uniform values in [lo, hi] from the stream of `name`.
static Tensor *random_tensor(Shape shape, const char *name, float lo, float hi) {
    int64_t n = shape_numel(shape);
    float *v = malloc((size_t)n * sizeof *v);
    ck_assert(v != NULL);
    test_fill_uniform(v, n, test_seed_for(name), lo, hi);
    Tensor *t = tensor_from_floats(shape, v, DEVICE_CPU);
    free(v);
    return t;
}

// Overwrites t with uniform values in [lo, hi] from the stream of `name`.
static void randomize(Tensor *t, const char *name, float lo, float hi) {
    tensor_scope_begin();
    tensor_copy_into(t, random_tensor(t->shape, name, lo, hi));
    tensor_scope_end();
}

// t's values on the host (malloc'd; the caller frees).
static float *host(const Tensor *t) {
    float *v = malloc((size_t)tensor_numel(t) * sizeof *v + 1);
    ck_assert(v != NULL);
    tensor_read(t, v);
    return v;
}

static Rng test_rng(const char *name) { return rng_make(test_seed_for(name)); }

// Min, max and sample standard deviation of t's values.
typedef struct {
    double min, max, std;
} Stats;

static Stats stats(const Tensor *t) {
    float *v = host(t);
    int64_t n = tensor_numel(t);
    Stats s = {INFINITY, -INFINITY, 0.0};
    double sum = 0.0, sq = 0.0;
    for (int64_t i = 0; i < n; i++) {
        s.min = fmin(s.min, v[i]);
        s.max = fmax(s.max, v[i]);
        sum += v[i];
        sq += (double)v[i] * v[i];
    }
    s.std = sqrt(fmax(sq / (double)n - (sum / (double)n) * (sum / (double)n), 0.0));
    free(v);
    return s;
}

// Every value of t within [-bound, bound], and the extremes near the bound (a uniform draw
// over the whole interval, not a narrower one). For n values both extremes pass half the
// bound but with probability 2 * 0.75^n, under 1e-6 from n = 50; fewer values (a conv bias
// of 16) are only held to their largest magnitude passing q * bound, q^n = 1e-6 (q = 0.42 at
// n = 16), which a draw over half the interval still fails.
static void assert_uniform_within(const Tensor *t, double bound, const char *what) {
    Stats s = stats(t);
    int64_t n = tensor_numel(t);
    ck_assert_msg(s.min >= -bound && s.max <= bound, "%s: values in [%g, %g], bound %g", what,
                  s.min, s.max, bound);
    if (n >= 50)
        ck_assert_msg(s.max > 0.5 * bound && s.min < -0.5 * bound,
                      "%s: values in [%g, %g] do not fill the bound %g", what, s.min, s.max,
                      bound);
    else
        ck_assert_msg(fmax(s.max, -s.min) > pow(1e-6, 1.0 / (double)n) * bound,
                      "%s: values in [%g, %g] do not fill the bound %g", what, s.min, s.max,
                      bound);
}

static void assert_all_equal(const Tensor *t, float value, const char *what) {
    float *v = host(t);
    for (int64_t i = 0; i < tensor_numel(t); i++)
        ck_assert_msg(v[i] == value, "%s[%lld] = %g, want %g", what, (long long)i, (double)v[i],
                      (double)value);
    free(v);
}

static void assert_shape(const Tensor *t, Shape want, const char *what) {
    char a[64], b[64];
    ck_assert_msg(shape_equal(t->shape, want), "%s: shape %s, want %s", what,
                  tensor_shape_str(t, a, sizeof a), shape_str(want, b, sizeof b));
}

// y (rows, out) = x (rows, in) W^T + b, b may be NULL
static void linear_loop(float *y, const float *x, const float *w, const float *b, int64_t rows,
                        int in, int out) {
    for (int64_t r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < in; i++) acc += (double)x[r * in + i] * w[(int64_t)o * in + i];
            y[r * out + o] = (float)acc;
        }
}

// ---- Linear ---------------------------------------------------------------------------------

START_TEST(test_linear_init_bounds) {
    Rng rng = test_rng("linear_init");
    Linear l;
    linear_init(&l, 50, 40, true, DEVICE_CPU, &rng);
    assert_shape(l.weight, shape2(40, 50), "weight");
    assert_shape(l.bias, shape1(40), "bias");
    assert_uniform_within(l.weight, 1.0 / sqrt(50.0), "weight");
    assert_uniform_within(l.bias, 1.0 / sqrt(50.0), "bias");
    ck_assert(l.weight->requires_grad && l.bias->requires_grad);

    linear_init_xavier(&l, &rng);
    assert_uniform_within(l.weight, sqrt(6.0 / 90.0), "xavier weight");
    assert_all_equal(l.bias, 0.0f, "xavier bias");
    linear_free(&l);
}
END_TEST

START_TEST(test_linear_forward) {
    Rng rng = test_rng("linear_forward");
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        Linear l;
        linear_init(&l, 5, 7, with_bias, DEVICE_CPU, &rng);
        Tensor *x = random_tensor(shape3(3, 4, 5), "linear_forward x", -1, 1);
        Tensor *y = linear_forward(&l, x);
        assert_shape(y, shape3(3, 4, 7), "y");
        float *xh = host(x), *w = host(l.weight), *b = with_bias ? host(l.bias) : NULL;
        float want[12 * 7], *got = host(y);
        linear_loop(want, xh, w, b, 12, 5, 7);
        ASSERT_CLOSE("linear", got, want, 12 * 7, 1e-6, 1e-5);
        free(xh), free(w), free(b), free(got);
        linear_free(&l);
    }
}
END_TEST

START_TEST(test_linear_params) {
    Rng rng = test_rng("linear_params");
    Linear l, nb;
    linear_init(&l, 3, 2, true, DEVICE_CPU, &rng);
    linear_init(&nb, 3, 2, false, DEVICE_CPU, &rng);
    ParamList list = {0};
    linear_params(&l, "fc.", false, &list);
    linear_params(&nb, "head.", true, &list);
    ck_assert_int_eq(list.count, 3);
    ck_assert_str_eq(list.items[0].name, "fc.weight");
    ck_assert_str_eq(list.items[1].name, "fc.bias");
    ck_assert_str_eq(list.items[2].name, "head.weight");
    ck_assert(list.items[0].trainable && list.items[1].trainable && !list.items[2].trainable);
    ck_assert(!nb.weight->requires_grad); // frozen: no gradient is ever computed for it
    ck_assert_int_eq(params_numel(&list, true), 8);
    params_free(&list);
    linear_free(&l);
    linear_free(&nb);
}
END_TEST

// ---- LoRA -----------------------------------------------------------------------------------

// A PEFT adapter on a Linear, as model_add_lora attaches it: A ~ N(0, 1/r^2), factor alpha / r
static void attach_peft(Linear *l, int rank, float alpha, Rng *rng) {
    lora_attach(&l->lora, l->in_features, l->out_features, rank, alpha / (float)rank,
                1.0f / (float)rank, DEVICE_CPU, rng);
}

START_TEST(test_lora_init_is_identity) {
    Rng rng = test_rng("lora_init");
    Linear l;
    linear_init(&l, 64, 24, true, DEVICE_CPU, &rng);
    Tensor *x = random_tensor(shape2(6, 64), "lora_init x", -1, 1);
    float *base = host(linear_forward(&l, x));
    attach_peft(&l, 4, 8.0f, &rng);
    assert_shape(l.lora.a, shape2(4, 64), "lora_A");
    assert_shape(l.lora.b, shape2(24, 4), "lora_B");
    assert_all_equal(l.lora.b, 0.0f, "lora_B");
    // A ~ N(0, std 1/r): 256 draws put the sample std well within 20% of 0.25
    Stats s = stats(l.lora.a);
    ck_assert_msg(fabs(s.std - 0.25) < 0.05, "lora_A std %g, want 0.25", s.std);
    float *got = host(linear_forward(&l, x));
    for (int i = 0; i < 6 * 24; i++)
        ck_assert_msg(got[i] == base[i], "element %d: %g with the adapter, %g without", i,
                      (double)got[i], (double)base[i]);
    free(base);
    free(got);
    linear_free(&l);
}
END_TEST

// y = x W^T + b + scale (alpha / r) (x A^T) B^T, checked with a loop at scale 2
START_TEST(test_lora_formula) {
    Rng rng = test_rng("lora_formula");
    const int in = 9, out = 5, rank = 3, rows = 4;
    const float alpha = 6.0f, scale = 2.0f;
    Linear l;
    linear_init(&l, in, out, true, DEVICE_CPU, &rng);
    attach_peft(&l, rank, alpha, &rng);
    randomize(l.lora.b, "lora_formula B", -1, 1);
    l.lora.scale = scale;
    Tensor *x = random_tensor(shape2(rows, in), "lora_formula x", -1, 1);
    float *got = host(linear_forward(&l, x));

    float *xh = host(x), *w = host(l.weight), *b = host(l.bias), *a = host(l.lora.a);
    float *bb = host(l.lora.b);
    float want[4 * 5], xa[4 * 3], delta[4 * 5];
    linear_loop(want, xh, w, b, rows, in, out);
    linear_loop(xa, xh, a, NULL, rows, in, rank);
    linear_loop(delta, xa, bb, NULL, rows, rank, out);
    for (int i = 0; i < rows * out; i++) want[i] += scale * (alpha / (float)rank) * delta[i];
    ASSERT_CLOSE("lora", got, want, rows * out, 1e-5, 1e-5);

    // scale 0 is the base layer exactly
    l.lora.scale = 0.0f;
    float *base = host(linear_forward(&l, x));
    linear_loop(want, xh, w, b, rows, in, out);
    ASSERT_CLOSE("lora at scale 0", base, want, rows * out, 1e-6, 1e-5);
    free(got), free(xh), free(w), free(b), free(a), free(bb), free(base);
    linear_free(&l);
}
END_TEST

START_TEST(test_lora_frozen_base) {
    Rng rng = test_rng("lora_frozen");
    Linear l;
    linear_init(&l, 6, 4, true, DEVICE_CPU, &rng);
    attach_peft(&l, 2, 2.0f, &rng);
    ParamList list = {0};
    linear_params(&l, "attn.qkv.", true, &list);
    const char *names[] = {"attn.qkv.weight", "attn.qkv.bias", "attn.qkv.lora_A.weight",
                           "attn.qkv.lora_B.weight"};
    const bool trainable[] = {false, false, true, true};
    ck_assert_int_eq(list.count, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(list.items[i].name, names[i]);
        ck_assert_msg(list.items[i].trainable == trainable[i] &&
                          list.items[i].tensor->requires_grad == trainable[i],
                      "%s: trainable %d, requires_grad %d", names[i], list.items[i].trainable,
                      list.items[i].tensor->requires_grad);
    }
    // a backward reaches the adapter only; with B zero at init, B's gradient is the one
    // that starts the adapter moving
    autograd_backward(op_sum_all(linear_forward(&l, random_tensor(shape2(3, 6), "x", -1, 1))),
                      NULL);
    ck_assert(l.weight->grad == NULL && l.bias->grad == NULL);
    ck_assert(l.lora.a->grad != NULL && l.lora.b->grad != NULL);
    Stats g = stats(l.lora.b->grad);
    ck_assert(g.max > 0.0 || g.min < 0.0);
    params_free(&list);
    linear_free(&l);
}
END_TEST

static Tensor *run_linear(Tensor *const *in, void *ctx) {
    // in[1..] are the module's own tensors, which gradcheck perturbs in place
    return linear_forward(ctx, in[0]);
}

START_TEST(test_lora_gradcheck) {
    Rng rng = test_rng("lora_gradcheck");
    Linear l;
    linear_init(&l, 5, 4, true, DEVICE_CPU, &rng);
    attach_peft(&l, 2, 3.0f, &rng);
    randomize(l.lora.b, "lora_gradcheck B", -1, 1);
    l.lora.scale = 1.5f;
    Tensor *x = random_tensor(shape2(3, 5), "lora_gradcheck x", -1, 1);
    tensor_set_requires_grad(x, true);
    Tensor *inputs[] = {x, l.weight, l.bias, l.lora.a, l.lora.b};
    GradcheckOptions opt = gradcheck_defaults();
    opt.seed = test_seed_for("lora_gradcheck w");
    char report[256];
    ck_assert_msg(gradcheck(run_linear, &l, inputs, COUNT_OF(inputs), &opt, report, sizeof report),
                  "lora gradcheck: %s", report);
    linear_free(&l);
}
END_TEST

// ---- norms, Conv2d, Embedding ----------------------------------------------------------------

START_TEST(test_layernorm) {
    LayerNorm affine, plain;
    layernorm_init(&affine, 6, true, 1e-5f, DEVICE_CPU);
    layernorm_init(&plain, 6, false, 1e-6f, DEVICE_CPU);
    ParamList list = {0};
    layernorm_params(&affine, "norm.", &list);
    layernorm_params(&plain, "norm_final.", &list); // no affine: nothing to register
    ck_assert_int_eq(list.count, 2);
    ck_assert_str_eq(list.items[0].name, "norm.weight");
    ck_assert_str_eq(list.items[1].name, "norm.bias");
    assert_shape(affine.weight, shape1(6), "weight");
    assert_all_equal(affine.weight, 1.0f, "weight");
    assert_all_equal(affine.bias, 0.0f, "bias");
    ck_assert(plain.weight == NULL && plain.bias == NULL);

    randomize(affine.weight, "layernorm w", 0.5f, 1.5f);
    randomize(affine.bias, "layernorm b", -1, 1);
    Tensor *x = random_tensor(shape2(4, 6), "layernorm x", -2, 2);
    float *got = host(layernorm_forward(&affine, x));
    float *xh = host(x), *w = host(affine.weight), *b = host(affine.bias), want[24];
    for (int r = 0; r < 4; r++) {
        double mean = 0, var = 0;
        for (int i = 0; i < 6; i++) mean += xh[r * 6 + i] / 6.0;
        for (int i = 0; i < 6; i++) var += (xh[r * 6 + i] - mean) * (xh[r * 6 + i] - mean) / 6.0;
        for (int i = 0; i < 6; i++)
            want[r * 6 + i] = (float)((xh[r * 6 + i] - mean) / sqrt(var + 1e-5) * w[i] + b[i]);
    }
    ASSERT_CLOSE("layernorm", got, want, 24, 1e-5, 1e-5);
    free(got), free(xh), free(w), free(b);
    params_free(&list);
    layernorm_free(&affine);
    layernorm_free(&plain);
}
END_TEST

START_TEST(test_groupnorm) {
    GroupNorm n;
    groupnorm_init(&n, 4, 12, 1e-5f, DEVICE_CPU);
    ParamList list = {0};
    groupnorm_params(&n, "norm1.", &list);
    ck_assert_int_eq(list.count, 2);
    ck_assert_str_eq(list.items[0].name, "norm1.weight");
    ck_assert_str_eq(list.items[1].name, "norm1.bias");
    assert_shape(n.weight, shape1(12), "weight");
    assert_shape(n.bias, shape1(12), "bias");
    assert_all_equal(n.weight, 1.0f, "weight");
    assert_all_equal(n.bias, 0.0f, "bias");
    Tensor *y = groupnorm_forward(&n, random_tensor(shape4(2, 12, 3, 3), "gn x", -1, 1));
    assert_shape(y, shape4(2, 12, 3, 3), "y");
    params_free(&list);
    groupnorm_free(&n);
}
END_TEST

START_TEST(test_conv2d) {
    Rng rng = test_rng("conv2d");
    Conv2d c, nb;
    conv2d_init(&c, 8, 16, 3, 2, 1, true, DEVICE_CPU, &rng);
    conv2d_init(&nb, 8, 4, 1, 1, 0, false, DEVICE_CPU, &rng);
    ParamList list = {0};
    conv2d_params(&c, "conv_in.", &list);
    conv2d_params(&nb, "skip.", &list);
    ck_assert_int_eq(list.count, 3);
    ck_assert_str_eq(list.items[0].name, "conv_in.weight");
    ck_assert_str_eq(list.items[1].name, "conv_in.bias");
    ck_assert_str_eq(list.items[2].name, "skip.weight");
    assert_shape(c.weight, shape4(16, 8, 3, 3), "weight");
    assert_shape(c.bias, shape1(16), "bias");
    // kaiming_uniform(a = sqrt(5)) and the bias both have bound 1/sqrt(fan_in), fan_in = 72
    assert_uniform_within(c.weight, 1.0 / sqrt(72.0), "weight");
    assert_uniform_within(c.bias, 1.0 / sqrt(72.0), "bias");
    Tensor *y = conv2d_forward(&c, random_tensor(shape4(2, 8, 7, 7), "conv x", -1, 1));
    assert_shape(y, shape4(2, 16, 4, 4), "y");
    params_free(&list);
    conv2d_free(&c);
    conv2d_free(&nb);
}
END_TEST

START_TEST(test_embedding) {
    Rng rng = test_rng("embedding");
    Embedding e;
    embedding_init(&e, 40, 30, DEVICE_CPU, &rng);
    ParamList list = {0};
    embedding_params(&e, "y_embedder.embedding_table.", &list);
    ck_assert_int_eq(list.count, 1);
    ck_assert_str_eq(list.items[0].name, "y_embedder.embedding_table.weight");
    assert_shape(e.weight, shape2(40, 30), "weight");
    Stats s = stats(e.weight); // N(0, 1): 1200 draws
    ck_assert_msg(fabs(s.std - 1.0) < 0.1, "embedding std %g, want 1", s.std);
    const int32_t index[] = {3, 0, 39, 3};
    Tensor *y = embedding_forward(&e, tensor_from_ints(shape1(4), index, DEVICE_CPU));
    float *got = host(y), *table = host(e.weight);
    for (int r = 0; r < 4; r++)
        ck_assert(memcmp(got + r * 30, table + index[r] * 30, 30 * sizeof(float)) == 0);
    free(got), free(table);
    params_free(&list);
    embedding_free(&e);
}
END_TEST

START_TEST(test_xavier_uniform) {
    Rng rng = test_rng("xavier");
    Tensor *t = tensor_zeros(shape4(20, 3, 2, 2), DEVICE_CPU); // fan_in 12, fan_out 20
    init_xavier_uniform(t, 12, 20, &rng);
    double bound = sqrt(6.0 / 32.0);
    assert_uniform_within(t, bound, "xavier");
    Stats s = stats(t); // uniform on [-b, b]: std b / sqrt(3)
    ck_assert_msg(fabs(s.std - bound / sqrt(3.0)) < 0.1 * bound, "xavier std %g", s.std);
}
END_TEST

// The reference TimestepEmbedder.timestep_embedding, computed directly in double.
START_TEST(test_timestep_embedding) {
    const int n = 5;
    Tensor *t = random_tensor(shape1(n), "timestep t", 0, 1000);
    float *th = host(t);
    for (int dim = 8; dim <= 9; dim++) { // odd dims get a zero column, as the reference
        Tensor *e = timestep_embedding(t, dim, 10000.0f);
        assert_shape(e, shape2(n, dim), "embedding");
        ck_assert(!e->requires_grad);
        float *got = host(e), want[5 * 9];
        int half = dim / 2;
        for (int r = 0; r < n; r++) {
            for (int i = 0; i < half; i++) {
                double f = exp(-log(10000.0) * i / half);
                want[r * dim + i] = (float)cos(th[r] * f);
                want[r * dim + half + i] = (float)sin(th[r] * f);
            }
            if (dim % 2) want[r * dim + dim - 1] = 0.0f;
        }
        // fp32 args of size ~1000 carry ~1e-4 rounding, as in PyTorch's own fp32 computation
        ASSERT_CLOSE("timestep embedding", got, want, n * dim, 5e-4, 0);
        free(got);
    }
    free(th);
}
END_TEST

// ---- DiT ------------------------------------------------------------------------------------

// image 8, patch 2 (16 tokens), hidden 32, depth 2, heads 2, 3 classes (+ the null label)
static ModelConfig tiny_dit(void) {
    return (ModelConfig){.kind = MODEL_DIT, .num_classes = 3, .in_channels = 3, .image_size = 8,
                         .patch = 2, .hidden = 32, .depth = 2, .heads = 2, .mlp_ratio = 4.0f};
}

static Model *create_tiny(const char *name) {
    ModelConfig cfg = tiny_dit();
    Rng rng = test_rng(name);
    Error err = {{0}};
    Model *m = model_create(&cfg, DEVICE_CPU, &rng, &err);
    ck_assert_msg(m != NULL, "model_create: %s", err.msg);
    return m;
}

static Tensor *param(Model *m, const char *name) {
    Param *p = params_find(model_params(m), name);
    ck_assert_msg(p != NULL, "no parameter %s", name);
    return p->tensor;
}

// The zero-initialised parameters (every adaLN_modulation, the final linear) set to random
// values, so that every path of the network carries signal.
static void wake_zero_init(Model *m) {
    const ParamList *list = model_params(m);
    for (int i = 0; i < list->count; i++) {
        const char *n = list->items[i].name;
        if (strstr(n, "adaLN_modulation") || strstr(n, "final_layer.linear"))
            randomize(list->items[i].tensor, n, -0.3f, 0.3f);
    }
}

// Inputs for the tiny DiT: x (n, 3, 8, 8), t (n) in [0, 1], y (n) including the null label.
typedef struct {
    Model *m;
    Tensor *x, *t, *y;
} DitInputs;

static DitInputs tiny_inputs(Model *m, int n, const char *name) {
    DitInputs in = {.m = m};
    in.x = random_tensor(shape4(n, 3, 8, 8), name, -1, 1);
    in.t = random_tensor(shape1(n), "t", 0, 1);
    int32_t labels[8];
    ck_assert(n <= 8);
    for (int i = 0; i < n; i++) labels[i] = i % 4; // 3 is the null label
    in.y = tensor_from_ints(shape1(n), labels, DEVICE_CPU);
    return in;
}

// The reference DiT's state_dict for the tiny config, in order.
static const struct {
    const char *name;
    int ndim;
    int64_t dim[4];
} dit_keys[] = {
    {"pos_embed", 3, {1, 16, 32}},
    {"x_embedder.proj.weight", 4, {32, 3, 2, 2}},
    {"x_embedder.proj.bias", 1, {32}},
    {"t_embedder.mlp.0.weight", 2, {32, 256}},
    {"t_embedder.mlp.0.bias", 1, {32}},
    {"t_embedder.mlp.2.weight", 2, {32, 32}},
    {"t_embedder.mlp.2.bias", 1, {32}},
    {"y_embedder.embedding_table.weight", 2, {4, 32}},
    {"blocks.0.attn.qkv.weight", 2, {96, 32}},
    {"blocks.0.attn.qkv.bias", 1, {96}},
    {"blocks.0.attn.proj.weight", 2, {32, 32}},
    {"blocks.0.attn.proj.bias", 1, {32}},
    {"blocks.0.mlp.fc1.weight", 2, {128, 32}},
    {"blocks.0.mlp.fc1.bias", 1, {128}},
    {"blocks.0.mlp.fc2.weight", 2, {32, 128}},
    {"blocks.0.mlp.fc2.bias", 1, {32}},
    {"blocks.0.adaLN_modulation.1.weight", 2, {192, 32}},
    {"blocks.0.adaLN_modulation.1.bias", 1, {192}},
    {"blocks.1.attn.qkv.weight", 2, {96, 32}},
    {"blocks.1.attn.qkv.bias", 1, {96}},
    {"blocks.1.attn.proj.weight", 2, {32, 32}},
    {"blocks.1.attn.proj.bias", 1, {32}},
    {"blocks.1.mlp.fc1.weight", 2, {128, 32}},
    {"blocks.1.mlp.fc1.bias", 1, {128}},
    {"blocks.1.mlp.fc2.weight", 2, {32, 128}},
    {"blocks.1.mlp.fc2.bias", 1, {32}},
    {"blocks.1.adaLN_modulation.1.weight", 2, {192, 32}},
    {"blocks.1.adaLN_modulation.1.bias", 1, {192}},
    {"final_layer.linear.weight", 2, {12, 32}},
    {"final_layer.linear.bias", 1, {12}},
    {"final_layer.adaLN_modulation.1.weight", 2, {64, 32}},
    {"final_layer.adaLN_modulation.1.bias", 1, {64}},
};

START_TEST(test_dit_state_dict) {
    Model *m = create_tiny("dit_state_dict");
    const ParamList *list = model_params(m);
    ck_assert_int_eq(list->count, COUNT_OF(dit_keys));
    for (int i = 0; i < list->count; i++) {
        const Param *p = &list->items[i];
        ck_assert_str_eq(p->name, dit_keys[i].name);
        Shape want = {dit_keys[i].ndim, {0}};
        for (int d = 0; d < want.ndim; d++) want.dim[d] = dit_keys[i].dim[d];
        assert_shape(p->tensor, want, p->name);
        bool trainable = i > 0; // pos_embed: a parameter with requires_grad=False
        ck_assert_msg(p->trainable == trainable && p->tensor->requires_grad == trainable,
                      "%s: trainable %d, requires_grad %d", p->name, p->trainable,
                      p->tensor->requires_grad);
    }
    // 384 + 32 + 8192 + 32 + 1024 + 32 + 128 + 2 * 18912 + 396 + 2112; pos_embed 512 more
    ck_assert_int_eq(params_numel(list, true), 50156);
    ck_assert_int_eq(params_numel(list, false), 50668);
    model_free(m);
}
END_TEST

// initialize_weights of the reference: fixed sin-cos pos_embed, Xavier linears with zero
// biases, N(0, 0.02) label table and timestep MLP, zero adaLN modulation and final layer.
START_TEST(test_dit_init) {
    Model *m = create_tiny("dit_init");
    // get_2d_sincos_pos_embed(32, 4): np.meshgrid(w, h) makes grid[0] the column index j,
    // which fills the first 16 dims; each 1-D half is [sin(pos w), cos(pos w)] over 8 omegas
    float *pos = host(param(m, "pos_embed")), want[16 * 32];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 8; k++) {
                double omega = 1.0 / pow(10000.0, k / 8.0);
                float *row = want + (i * 4 + j) * 32;
                row[k] = (float)sin(j * omega);
                row[8 + k] = (float)cos(j * omega);
                row[16 + k] = (float)sin(i * omega);
                row[24 + k] = (float)cos(i * omega);
            }
    ASSERT_CLOSE("pos_embed", pos, want, 16 * 32, 1e-6, 0);
    free(pos);

    assert_uniform_within(param(m, "x_embedder.proj.weight"), sqrt(6.0 / (12 + 32)), "proj");
    assert_uniform_within(param(m, "blocks.1.attn.qkv.weight"), sqrt(6.0 / (32 + 96)), "qkv");
    assert_uniform_within(param(m, "blocks.0.mlp.fc2.weight"), sqrt(6.0 / (128 + 32)), "fc2");
    const char *zero[] = {"x_embedder.proj.bias", "t_embedder.mlp.0.bias", "t_embedder.mlp.2.bias",
                          "blocks.0.attn.qkv.bias", "blocks.1.attn.proj.bias",
                          "blocks.0.mlp.fc1.bias", "blocks.1.mlp.fc2.bias",
                          "blocks.0.adaLN_modulation.1.weight", "blocks.0.adaLN_modulation.1.bias",
                          "blocks.1.adaLN_modulation.1.weight", "blocks.1.adaLN_modulation.1.bias",
                          "final_layer.linear.weight", "final_layer.linear.bias",
                          "final_layer.adaLN_modulation.1.weight",
                          "final_layer.adaLN_modulation.1.bias"};
    for (int i = 0; i < COUNT_OF(zero); i++) assert_all_equal(param(m, zero[i]), 0.0f, zero[i]);
    Stats s = stats(param(m, "t_embedder.mlp.0.weight")); // 8192 draws
    ck_assert_msg(fabs(s.std - 0.02) < 0.002, "t_embedder.mlp.0.weight std %g", s.std);
    s = stats(param(m, "y_embedder.embedding_table.weight")); // 128 draws
    ck_assert_msg(fabs(s.std - 0.02) < 0.006, "embedding_table std %g", s.std);
    model_free(m);
}
END_TEST

START_TEST(test_dit_output_zero_at_init) {
    Model *m = create_tiny("dit_zero");
    DitInputs in = tiny_inputs(m, 3, "dit_zero x");
    Tensor *v = model_forward(m, in.x, in.t, in.y);
    assert_shape(v, in.x->shape, "v");
    assert_all_equal(v, 0.0f, "v at init");
    model_free(m);
}
END_TEST

START_TEST(test_dit_gradients_reach_every_parameter) {
    Model *m = create_tiny("dit_grads");
    wake_zero_init(m);
    DitInputs in = tiny_inputs(m, 4, "dit_grads x");
    Tensor *v = model_forward(m, in.x, in.t, in.y);
    Tensor *target = random_tensor(v->shape, "dit_grads target", -1, 1);
    autograd_backward(op_mse(v, target), NULL);
    const ParamList *list = model_params(m);
    for (int i = 0; i < list->count; i++) {
        const Param *p = &list->items[i];
        if (!p->trainable) {
            ck_assert_msg(p->tensor->grad == NULL, "%s: a gradient for a fixed tensor", p->name);
            continue;
        }
        ck_assert_msg(p->tensor->grad != NULL, "%s: no gradient", p->name);
        Stats s = stats(p->tensor->grad);
        ck_assert_msg(s.max > 0.0 || s.min < 0.0, "%s: gradient is all zero", p->name);
        ck_assert_msg(isfinite(s.max) && isfinite(s.min), "%s: gradient not finite", p->name);
    }
    model_free(m);
}
END_TEST

static Tensor *run_dit(Tensor *const *inputs, void *ctx) {
    DitInputs *in = ctx;
    return model_forward(in->m, inputs[0], in->t, in->y);
}

// Finite differences through the whole network: the input image and a parameter of each
// kind of path (label table, attention, MLP, modulation, output layer).
START_TEST(test_dit_gradcheck) {
    Model *m = create_tiny("dit_gradcheck");
    wake_zero_init(m);
    DitInputs in = tiny_inputs(m, 2, "dit_gradcheck x");
    tensor_set_requires_grad(in.x, true);
    Tensor *inputs[] = {in.x,
                        param(m, "y_embedder.embedding_table.weight"),
                        param(m, "blocks.0.attn.qkv.bias"),
                        param(m, "blocks.1.mlp.fc1.bias"),
                        param(m, "blocks.1.adaLN_modulation.1.bias"),
                        param(m, "final_layer.linear.bias")};
    GradcheckOptions opt = gradcheck_defaults();
    opt.seed = test_seed_for("dit_gradcheck w");
    char report[256];
    ck_assert_msg(gradcheck(run_dit, &in, inputs, COUNT_OF(inputs), &opt, report, sizeof report),
                  "dit gradcheck: %s", report);
    model_free(m);
}
END_TEST

// The DMDR authors' adapter on attention: q + s (q A_q^T) B_q^T replaces q before the
// softmax, and k is untouched; checked against qkv adapted by a loop, then through the op
static Tensor *run_attention(Tensor *const *in, void *ctx) { return attention_forward(ctx, in[0]); }

START_TEST(test_attention_qv_lora) {
    Rng rng = test_rng("attention_qv");
    const int dim = 8, heads = 2, tokens = 5, rank = 3;
    const float scale = 0.5f;
    Attention a;
    attention_init(&a, dim, heads, DEVICE_CPU, &rng);
    lora_attach(&a.q_lora, dim, dim, rank, 1.0f, 1.0f, DEVICE_CPU, &rng);
    lora_attach(&a.v_lora, dim, dim, rank, 1.0f, 1.0f, DEVICE_CPU, &rng);
    randomize(a.q_lora.b, "attention_qv Bq", -1, 1);
    randomize(a.v_lora.b, "attention_qv Bv", -1, 1);
    a.q_lora.scale = a.v_lora.scale = scale;
    Tensor *x = random_tensor(shape3(1, tokens, dim), "attention_qv x", -1, 1);
    float *got = host(attention_forward(&a, x));

    float *qkv = host(linear_forward(&a.qkv, x));
    const Lora *adapters[2] = {&a.q_lora, &a.v_lora};
    const int offsets[2] = {0, 2 * dim}; // q and v inside each token's 3 dim values
    for (int which = 0; which < 2; which++) {
        float *A = host(adapters[which]->a), *B = host(adapters[which]->b);
        for (int r = 0; r < tokens; r++) {
            float *part = qkv + r * 3 * dim + offsets[which], h[3], delta[8];
            linear_loop(h, part, A, NULL, 1, dim, rank);
            linear_loop(delta, h, B, NULL, 1, rank, dim);
            for (int o = 0; o < dim; o++) part[o] += scale * delta[o];
        }
        free(A), free(B);
    }
    Tensor *adapted = tensor_from_floats(shape3(1, tokens, 3 * dim), qkv, DEVICE_CPU);
    float *want = host(linear_forward(&a.proj, op_attention_qkv(adapted, heads)));
    ASSERT_CLOSE("attention with q and v adapters", got, want, tokens * dim, 1e-5, 1e-5);

    tensor_set_requires_grad(x, true);
    Tensor *inputs[] = {x, a.q_lora.a, a.q_lora.b, a.v_lora.a, a.v_lora.b};
    GradcheckOptions opt = gradcheck_defaults();
    opt.seed = test_seed_for("attention_qv w");
    char report[256];
    ck_assert_msg(gradcheck(run_attention, &a, inputs, COUNT_OF(inputs), &opt, report,
                            sizeof report), "q/v adapter gradcheck: %s", report);
    free(got), free(qkv), free(want);
    attention_free(&a);
}
END_TEST

// model_add_lora's QV style on the DiT: two rank-r pairs per block under attn.q_lora and
// attn.v_lora, A ~ N(0, 1), nothing else trainable, and the output unchanged until B moves
START_TEST(test_dit_qv_lora) {
    Model *m = create_tiny("dit_qv_lora");
    wake_zero_init(m);
    DitInputs in = tiny_inputs(m, 2, "dit_qv_lora x");
    float *base = host(model_forward(m, in.x, in.t, in.y));
    Rng rng = test_rng("dit_qv_lora A");
    Error err = {{0}};
    LoraOptions qv = {.style = LORA_STYLE_QV, .rank = 4, .alpha = 99.0f, .mlp = true};
    ck_assert_msg(model_add_lora(m, &qv, &rng, &err) == 0, "%s", err.msg);
    const ParamList *p = model_params(m);
    int trainable = 0;
    for (int i = 0; i < p->count; i++) {
        bool adapter = strstr(p->items[i].name, "_lora.lora_") != NULL;
        ck_assert_msg(p->items[i].trainable == adapter, "%s trainable %d", p->items[i].name,
                      p->items[i].trainable);
        trainable += adapter;
    }
    ck_assert_int_eq(trainable, 2 * 2 * 2); // 2 blocks x (q, v) x (A, B); alpha, mlp unused
    assert_shape(param(m, "blocks.0.attn.q_lora.lora_A.weight"), shape2(4, 32), "A_q");
    assert_shape(param(m, "blocks.1.attn.v_lora.lora_B.weight"), shape2(32, 4), "B_v");
    Stats s = stats(param(m, "blocks.0.attn.q_lora.lora_A.weight"));
    ck_assert_msg(fabs(s.std - 1.0) < 0.25, "A std %g, want 1", s.std);
    float *same = host(model_forward(m, in.x, in.t, in.y));
    ASSERT_CLOSE("qv adapter with B = 0", same, base, 2 * 3 * 8 * 8, 0, 0);
    randomize(param(m, "blocks.1.attn.v_lora.lora_B.weight"), "dit_qv_lora B", -1, 1);
    float *moved = host(model_forward(m, in.x, in.t, in.y));
    double diff = 0;
    for (int i = 0; i < 2 * 3 * 8 * 8; i++) diff = fmax(diff, fabs(moved[i] - base[i]));
    ck_assert_msg(diff > 1e-4, "a trained v adapter should change the output (max diff %g)", diff);
    model_set_lora_scale(m, 0.0f);
    float *off = host(model_forward(m, in.x, in.t, in.y));
    ASSERT_CLOSE("qv adapter at scale 0", off, base, 2 * 3 * 8 * 8, 0, 0);
    free(base), free(same), free(moved), free(off);
    model_free(m);
}
END_TEST

START_TEST(test_dit_bad_configs) {
    static const struct {
        const char *field; // the message must name it
        int in_channels, image_size, patch, hidden, depth, heads;
        float mlp_ratio;
    } cases[] = {
        {"heads", 3, 8, 2, 32, 2, 3, 4.0f},       // 3 does not divide 32
        {"patch", 3, 8, 3, 32, 2, 2, 4.0f},       // 3 does not divide 8
        {"hidden", 3, 8, 2, 30, 2, 2, 4.0f},      // not a multiple of 4
        {"depth", 3, 8, 2, 32, 0, 2, 4.0f},
        {"in_channels", 0, 8, 2, 32, 2, 2, 4.0f},
        {"image_size", 3, -8, 2, 32, 2, 2, 4.0f},
        {"patch", 3, 8, 0, 32, 2, 2, 4.0f},       // checked before it divides anything
        {"heads", 3, 8, 2, 32, 2, 0, 4.0f},
        {"mlp_ratio", 3, 8, 2, 32, 2, 2, 0.0f},
    };
    for (int i = 0; i < COUNT_OF(cases); i++) {
        ModelConfig cfg = tiny_dit();
        cfg.in_channels = cases[i].in_channels;
        cfg.image_size = cases[i].image_size;
        cfg.patch = cases[i].patch;
        cfg.hidden = cases[i].hidden;
        cfg.depth = cases[i].depth;
        cfg.heads = cases[i].heads;
        cfg.mlp_ratio = cases[i].mlp_ratio;
        Rng rng = rng_make(1);
        Error err = {{0}};
        ck_assert_msg(model_create(&cfg, DEVICE_CPU, &rng, &err) == NULL, "case %d accepted", i);
        ck_assert_msg(strstr(err.msg, cases[i].field) != NULL, "case %d: '%s' does not name %s",
                      i, err.msg, cases[i].field);
    }
}
END_TEST

// Patch embedding as a linear over dit_patchify's rows equals the PatchEmbed convolution
// (kernel = stride = patch) followed by flatten(2).transpose(1, 2).
START_TEST(test_dit_patchify_is_the_conv) {
    const int n = 2, c = 3, p = 2, hidden = 5, tokens = 16;
    Tensor *x = random_tensor(shape4(n, c, 8, 8), "patchify x", -1, 1);
    Tensor *w = random_tensor(shape4(hidden, c, p, p), "patchify w", -1, 1);
    Tensor *b = random_tensor(shape1(hidden), "patchify b", -1, 1);
    Tensor *conv = op_conv2d(x, w, b, p, 0); // (n, hidden, 4, 4)
    Tensor *patches = dit_patchify(x, p);
    assert_shape(patches, shape3(n, tokens, c * p * p), "patches");
    Tensor *lin = op_linear(patches, op_reshape(w, shape2(hidden, c * p * p)), b);
    float *ch = host(conv), *lh = host(lin), want[2 * 16 * 5];
    for (int i = 0; i < n; i++)
        for (int t = 0; t < tokens; t++)
            for (int o = 0; o < hidden; o++)
                want[(i * tokens + t) * hidden + o] = ch[(i * hidden + o) * tokens + t];
    ASSERT_CLOSE("patch embed", lh, want, n * tokens * hidden, 1e-5, 1e-5);
    free(ch), free(lh);
}
END_TEST

// The reference unpatchify: x.reshape(N, h, w, p, p, c), einsum nhwpqc->nchpwq, reshape.
START_TEST(test_dit_unpatchify) {
    const int n = 2, c = 3, p = 2, h = 4;
    Tensor *x = random_tensor(shape3(n, h * h, p * p * c), "unpatchify x", -1, 1);
    Tensor *img = dit_unpatchify(x, c, p);
    assert_shape(img, shape4(n, c, h * p, h * p), "image");
    float *xh = host(x), *got = host(img), want[2 * 3 * 8 * 8];
    for (int i = 0; i < n; i++)
        for (int hh = 0; hh < h; hh++)
            for (int ww = 0; ww < h; ww++)
                for (int py = 0; py < p; py++)
                    for (int px = 0; px < p; px++)
                        for (int ci = 0; ci < c; ci++)
                            want[((i * c + ci) * h * p + hh * p + py) * h * p + ww * p + px] =
                                xh[(((i * h + hh) * h + ww) * p + py) * p * c + px * c + ci];
    ck_assert(memcmp(got, want, sizeof want) == 0);
    free(xh), free(got);
}
END_TEST

// With one channel the two row orders coincide: unpatchify undoes patchify exactly, for
// several patch sizes (1 and the whole image included).
START_TEST(test_dit_patch_round_trip) {
    const int patches[] = {1, 2, 4, 8};
    Tensor *x = random_tensor(shape4(3, 1, 8, 8), "round trip x", -1, 1);
    float *xh = host(x);
    for (int i = 0; i < COUNT_OF(patches); i++) {
        Tensor *back = dit_unpatchify(dit_patchify(x, patches[i]), 1, patches[i]);
        assert_shape(back, x->shape, "round trip");
        float *got = host(back);
        ck_assert_msg(memcmp(got, xh, 3 * 64 * sizeof(float)) == 0, "patch %d", patches[i]);
        free(got);
    }
    free(xh);
}
END_TEST

// A model on another backend, holding the CPU model's parameters, gives the CPU's output.
START_TEST(test_dit_devices_agree) {
    for (int d = 1; d < DEVICE_COUNT; d++) {
        if (!backend_get((Device)d)) continue;
        ModelConfig cfg = tiny_dit();
        Rng rng = test_rng("dit_devices");
        Error err = {{0}};
        Model *cpu = model_create(&cfg, DEVICE_CPU, &rng, &err);
        Model *dev = model_create(&cfg, (Device)d, &rng, &err);
        ck_assert(cpu && dev);
        wake_zero_init(cpu);
        const ParamList *lc = model_params(cpu), *ld = model_params(dev);
        for (int i = 0; i < lc->count; i++)
            tensor_copy_into(ld->items[i].tensor, lc->items[i].tensor);
        DitInputs in = tiny_inputs(cpu, 4, "dit_devices x");
        float *want = host(model_forward(cpu, in.x, in.t, in.y));
        float *got = host(model_forward(dev, tensor_to(in.x, (Device)d), tensor_to(in.t, (Device)d),
                                        tensor_to(in.y, (Device)d)));
        ASSERT_CLOSE(device_name((Device)d), got, want, tensor_numel(in.x), 1e-4, 1e-3);
        free(want), free(got);
        model_free(cpu);
        model_free(dev);
    }
}
END_TEST

// ---- suite ----------------------------------------------------------------------------------

static Suite *nn_suite(void) {
    Suite *s = suite_create("nn");

    TCase *tc = test_scoped_tcase(s, "linear");
    tcase_add_test(tc, test_linear_init_bounds);
    tcase_add_test(tc, test_linear_forward);
    tcase_add_test(tc, test_linear_params);
    tcase_add_test(tc, test_lora_init_is_identity);
    tcase_add_test(tc, test_lora_formula);
    tcase_add_test(tc, test_lora_frozen_base);
    tcase_add_test(tc, test_lora_gradcheck);

    tc = test_scoped_tcase(s, "layers");
    tcase_add_test(tc, test_layernorm);
    tcase_add_test(tc, test_groupnorm);
    tcase_add_test(tc, test_conv2d);
    tcase_add_test(tc, test_embedding);
    tcase_add_test(tc, test_xavier_uniform);
    tcase_add_test(tc, test_timestep_embedding);

    tc = test_scoped_tcase(s, "dit");
    tcase_add_test(tc, test_dit_state_dict);
    tcase_add_test(tc, test_dit_init);
    tcase_add_test(tc, test_dit_output_zero_at_init);
    tcase_add_test(tc, test_dit_gradients_reach_every_parameter);
    tcase_add_test(tc, test_dit_gradcheck);
    tcase_add_test(tc, test_attention_qv_lora);
    tcase_add_test(tc, test_dit_qv_lora);
    tcase_add_test(tc, test_dit_bad_configs);
    tcase_add_test(tc, test_dit_patchify_is_the_conv);
    tcase_add_test(tc, test_dit_unpatchify);
    tcase_add_test(tc, test_dit_patch_round_trip);
    tcase_add_test(tc, test_dit_devices_agree);
    return s;
}

int main(void) {
    return test_run_suite(nn_suite());
}
