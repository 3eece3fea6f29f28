// The models check suite: the UNet and the MLP score network through the Model interface
// (nn/model.h): output shapes, parameter names and counts, the zero output at init, gradient
// flow to every parameter, finite-difference gradients of tiny instances, independence of
// batch rows, conditioning, configuration errors, and a short training run.
//
// Most checks loop over `cases` (one small config per architecture). Zero-initialised layers
// (the output layer, and in the UNet every ResBlock's conv2 and the attention's proj) block
// the gradient to everything before them, so the checks of gradients and of conditioning
// first fill every all-zero parameter with random values.
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "nn/model.h"
#include "test/test_util.h"

#define COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define BATCH 3

// ---- configurations ---------------------------------------------------------------------------

typedef struct {
    const char *name;
    ModelConfig cfg;
    int64_t param_tensors, param_numel; // counted by hand below, independently of the code
    // the smallest instance that still has every kind of block, for finite differences, and
    // the parameter its gradcheck differentiates besides the input
    ModelConfig tiny;
    const char *gradcheck_param;
} Case;
// MLP, width W = 16, 2 blocks, data_dim D = 2, 3 classes (+ null), 128 time frequencies:
//   time_embed 128W+W + W*W+W = 2064 + 272   label_embed 4W = 64   input D*W+W = 48
//   per block: norm 2W, fc1/fc2/emb 3 (W*W+W) = 848, twice = 1696   out_norm 2W = 32
//   out W*D+D = 34                                                         total 4210
//   tensors: 4 + 1 + 2 + 2 * 8 + 2 + 2 = 27
//
// UNet, C = 8, channel_mult {1, 2}, 1 res block, 4 groups, in_channels 2, emb 4C = 32.
// ResBlock(i -> o) = norm1 2i + conv1 9io+o + emb 32o+o + norm2 2o + conv2 9oo+o
//                    (+ skip io+o when i != o); conv3(i -> o) = 9io+o.
//   time_embed 8*32+32 + 32*32+32 = 288 + 1056   label_embed 4*32 = 128   conv_in 152
//   down.0.res.0 (8->8) 1464   down.0.downsample 584   down.1.res.0 (8->16) 4208
//   mid.res.0, mid.res.1 (16->16) 5232 each   mid.attn norm 32 + qkv 816 + proj 272 = 1120
//   up.1.res.0 (16+16->16) 8096   up.1.res.1 (16+8->16) 6800   up.1.upsample 2320
//   up.0.res.0 (16+8->8) 2848     up.0.res.1 (8+8->8) 2192     out.norm 16 + out.conv 146
//                                                                          total 41882
//   tensors: 4 + 1 + 2 + 10 + 2 + 12 + 10 + 6 + 10 + 12 + 12 + 2 + 12 + 12 + 4 = 111
static const Case cases[] = {
    {"mlp",
     {.kind = MODEL_MLP, .num_classes = 3, .data_dim = 2, .mlp_width = 16, .mlp_layers = 2},
     27, 4210,
     {.kind = MODEL_MLP, .num_classes = 2, .data_dim = 2, .mlp_width = 8, .mlp_layers = 1},
     "blocks.0.fc1.weight"},
    {"unet",
     {.kind = MODEL_UNET, .num_classes = 3, .in_channels = 2, .image_size = 8, .channels = 8,
      .levels = 2, .channel_mult = {1, 2}, .res_blocks = 1, .groups = 4},
     111, 41882,
     {.kind = MODEL_UNET, .num_classes = 2, .in_channels = 1, .image_size = 4, .channels = 4,
      .levels = 2, .channel_mult = {1, 2}, .res_blocks = 1, .groups = 2},
     "mid.attn.qkv.weight"},
};

// (n, data_dim) or (n, in_channels, image_size, image_size)
static Shape input_shape(const ModelConfig *cfg, int64_t n) {
    return cfg->kind == MODEL_MLP ? shape2(n, cfg->data_dim)
                                  : shape4(n, cfg->in_channels, cfg->image_size, cfg->image_size);
}

static Model *make_model(const ModelConfig *cfg, const char *label) {
    Rng rng = rng_make(test_seed_for(label));
    Error err = {""};
    Model *m = model_create(cfg, DEVICE_CPU, &rng, &err);
    ck_assert_msg(m != NULL, "%s: model_create failed: %s", label, err.msg);
    return m;
}

typedef struct {
    Tensor *x, *t, *y;
} Inputs;

// x ~ U(-1, 1), t ~ U(0, 1), y uniform over the labels including the null one
static Inputs make_inputs(const ModelConfig *cfg, int64_t n, const char *label) {
    uint64_t seed = test_seed_for(label);
    Shape xs = input_shape(cfg, n);
    float *x = malloc((size_t)shape_numel(xs) * sizeof *x), *t = malloc((size_t)n * sizeof *t);
    int32_t *y = malloc((size_t)n * sizeof *y);
    ck_assert(x && t && y);
    test_fill_uniform(x, shape_numel(xs), seed, -1.0f, 1.0f);
    test_fill_uniform(t, n, seed + 1, 0.0f, 1.0f);
    test_fill_ints(y, n, seed + 2, cfg->num_classes + 1);
    Inputs in = {tensor_from_floats(xs, x, DEVICE_CPU),
                 tensor_from_floats(shape1(n), t, DEVICE_CPU),
                 tensor_from_ints(shape1(n), y, DEVICE_CPU)};
    free(x);
    free(t);
    free(y);
    return in;
}

static float *host_floats(const Tensor *t) {
    float *h = malloc((size_t)tensor_numel(t) * sizeof *h);
    ck_assert(h != NULL);
    tensor_read(t, h);
    return h;
}

static float max_abs(const Tensor *t) {
    float *h = host_floats(t), m = 0.0f;
    for (int64_t i = 0; i < tensor_numel(t); i++) m = fmaxf(m, fabsf(h[i]));
    free(h);
    return m;
}

// Fills every parameter that is all zeros with U(-0.5, 0.5), so no layer starts as a wall.
static void randomise_zero_params(Model *m, const char *label) {
    const ParamList *params = model_params(m);
    for (int i = 0; i < params->count; i++) {
        Tensor *p = params->items[i].tensor;
        if (max_abs(p) != 0.0f) continue;
        float *h = host_floats(p);
        test_fill_uniform(h, tensor_numel(p), test_seed_for(label) + (uint64_t)i, -0.5f, 0.5f);
        tensor_write(p, h);
        free(h);
    }
}

// ---- structure -------------------------------------------------------------------------------

START_TEST(test_output_shape) {
    const Case *c = &cases[_i];
    Model *m = make_model(&c->cfg, c->name);
    Inputs in = make_inputs(&c->cfg, BATCH, c->name);
    Tensor *v = model_forward(m, in.x, in.t, in.y);
    char got[64], want[64];
    ck_assert_msg(shape_equal(v->shape, in.x->shape), "%s: output %s, input %s", c->name,
                  tensor_shape_str(v, got, sizeof got), tensor_shape_str(in.x, want, sizeof want));
    model_free(m);
}
END_TEST

START_TEST(test_param_names_unique_and_counted) {
    const Case *c = &cases[_i];
    Model *m = make_model(&c->cfg, c->name);
    const ParamList *params = model_params(m);
    ck_assert_msg(params->count == c->param_tensors, "%s: %d parameter tensors, want %lld",
                  c->name, params->count, (long long)c->param_tensors);
    ck_assert_msg(params_numel(params, false) == c->param_numel, "%s: %lld parameters, want %lld",
                  c->name, (long long)params_numel(params, false), (long long)c->param_numel);
    ck_assert_int_eq(params_numel(params, true), c->param_numel);
    for (int i = 0; i < params->count; i++) {
        const Param *p = &params->items[i];
        ck_assert_msg(p->trainable && p->tensor->requires_grad, "%s: %s is not trainable", c->name,
                      p->name);
        for (int j = 0; j < i; j++)
            ck_assert_msg(strcmp(p->name, params->items[j].name) != 0, "%s: %s registered twice",
                          c->name, p->name);
    }
    model_free(m);
}
END_TEST

// The names other code relies on, with their shapes.
typedef struct {
    int case_index;
    const char *name;
    Shape shape;
} NamedParam;

static const NamedParam named_params[] = {
    {0, "time_embed.0.weight", {2, {16, 128}}},
    {0, "time_embed.2.bias", {1, {16}}},
    {0, "label_embed.weight", {2, {4, 16}}},
    {0, "input.weight", {2, {16, 2}}},
    {0, "blocks.1.norm.weight", {1, {16}}},
    {0, "blocks.1.fc2.weight", {2, {16, 16}}},
    {0, "blocks.0.emb.bias", {1, {16}}},
    {0, "out_norm.bias", {1, {16}}},
    {0, "out.weight", {2, {2, 16}}},
    {1, "time_embed.0.weight", {2, {32, 8}}},
    {1, "label_embed.weight", {2, {4, 32}}},
    {1, "conv_in.weight", {4, {8, 2, 3, 3}}},
    {1, "down.0.res.0.norm1.weight", {1, {8}}},
    {1, "down.0.res.0.emb.weight", {2, {8, 32}}},
    {1, "down.0.downsample.weight", {4, {8, 8, 3, 3}}},
    {1, "down.1.res.0.skip.weight", {4, {16, 8, 1, 1}}},
    {1, "mid.res.1.conv2.weight", {4, {16, 16, 3, 3}}},
    {1, "mid.attn.qkv.weight", {2, {48, 16}}},
    {1, "mid.attn.proj.bias", {1, {16}}},
    {1, "up.1.res.0.conv1.weight", {4, {16, 32, 3, 3}}},
    {1, "up.1.upsample.weight", {4, {16, 16, 3, 3}}},
    {1, "up.0.res.1.skip.weight", {4, {8, 16, 1, 1}}},
    {1, "out.norm.weight", {1, {8}}},
    {1, "out.conv.weight", {4, {2, 8, 3, 3}}},
};

START_TEST(test_named_param_shapes) {
    const NamedParam *np = &named_params[_i];
    const Case *c = &cases[np->case_index];
    Model *m = make_model(&c->cfg, c->name);
    const Param *p = params_find(model_params(m), np->name);
    ck_assert_msg(p != NULL, "%s: no parameter %s", c->name, np->name);
    char got[64], want[64];
    ck_assert_msg(shape_equal(p->tensor->shape, np->shape), "%s: %s is %s, want %s", c->name,
                  np->name, tensor_shape_str(p->tensor, got, sizeof got),
                  shape_str(np->shape, want, sizeof want));
    model_free(m);
}
END_TEST

START_TEST(test_zero_output_at_init) {
    const Case *c = &cases[_i];
    Model *m = make_model(&c->cfg, c->name);
    Inputs in = make_inputs(&c->cfg, BATCH, c->name);
    float got = max_abs(model_forward(m, in.x, in.t, in.y));
    ck_assert_msg(got == 0.0f, "%s: max |v| at init %g, want exactly 0", c->name, (double)got);
    model_free(m);
}
END_TEST

// ---- gradients ---------------------------------------------------------------------------------

START_TEST(test_every_param_gets_gradient) {
    const Case *c = &cases[_i];
    Model *m = make_model(&c->cfg, c->name);
    randomise_zero_params(m, c->name);
    Inputs in = make_inputs(&c->cfg, BATCH, c->name);
    Inputs target = make_inputs(&c->cfg, BATCH, "target");
    autograd_backward(op_mse(model_forward(m, in.x, in.t, in.y), target.x), NULL);
    const ParamList *params = model_params(m);
    for (int i = 0; i < params->count; i++) {
        const Param *p = &params->items[i];
        ck_assert_msg(p->tensor->grad != NULL, "%s: %s got no gradient", c->name, p->name);
        ck_assert_msg(max_abs(p->tensor->grad) > 0.0f, "%s: %s got an all-zero gradient",
                      c->name, p->name);
    }
    model_free(m);
}
END_TEST

typedef struct {
    Model *model;
    Tensor *t, *y;
} ForwardCtx;

// inputs[0] is x; inputs[1], a parameter, is read by the model itself
static Tensor *run_model(Tensor *const *inputs, void *ctx) {
    ForwardCtx *f = ctx;
    return model_forward(f->model, inputs[0], f->t, f->y);
}

// Finite differences against autograd for a tiny instance, w.r.t. its input and one parameter.
START_TEST(test_gradcheck) {
    const ModelConfig *cfg = &cases[_i].tiny;
    const char *label = cases[_i].name;
    Model *m = make_model(cfg, label);
    randomise_zero_params(m, label);
    Inputs in = make_inputs(cfg, 2, label);
    tensor_set_requires_grad(in.x, true);
    const Param *p = params_find(model_params(m), cases[_i].gradcheck_param);
    ck_assert_msg(p != NULL, "%s: no parameter %s", label, cases[_i].gradcheck_param);
    ForwardCtx ctx = {m, in.t, in.y};
    Tensor *inputs[2] = {in.x, p->tensor};
    GradcheckOptions opt = gradcheck_defaults();
    opt.seed = ~test_seed_for(label);
    char report[512] = "";
    bool ok = gradcheck(run_model, &ctx, inputs, 2, &opt, report, sizeof report);
    ck_assert_msg(ok, "gradcheck %s (input 0: x, input 1: %s): %s", label, p->name, report);
    model_free(m);
}
END_TEST

// ---- behaviour ---------------------------------------------------------------------------------

// Each row of a batch is computed alone: no normalisation or attention mixes samples.
START_TEST(test_rows_independent) {
    const Case *c = &cases[_i];
    Model *m = make_model(&c->cfg, c->name);
    randomise_zero_params(m, c->name);
    Inputs in = make_inputs(&c->cfg, BATCH, c->name);
    Tensor *batch = model_forward(m, in.x, in.t, in.y);
    int64_t row = tensor_numel(batch) / BATCH;
    float *all = host_floats(batch);
    for (int64_t r = 0; r < BATCH; r++) {
        Tensor *v = model_forward(m, tensor_rows(in.x, r, 1), tensor_rows(in.t, r, 1),
                                  tensor_rows(in.y, r, 1));
        float *one = host_floats(v);
        char what[64];
        snprintf(what, sizeof what, "%s row %lld", c->name, (long long)r);
        ASSERT_CLOSE(what, one, all + r * row, row, 1e-5, 1e-4);
        free(one);
    }
    free(all);
    model_free(m);
}
END_TEST

// max |a - b| over two outputs of the same shape
static float max_diff(Tensor *a, Tensor *b) {
    autograd_no_grad_begin();
    float d = max_abs(op_sub(a, b));
    autograd_no_grad_end();
    return d;
}

// The output depends on the time and on the label (the null label included).
START_TEST(test_conditioning_reaches_output) {
    const Case *c = &cases[_i];
    Model *m = make_model(&c->cfg, c->name);
    randomise_zero_params(m, c->name);
    Inputs in = make_inputs(&c->cfg, 1, c->name);
    Tensor *v = model_forward(m, in.x, in.t, in.y);

    float later = tensor_item(in.t) < 0.5f ? 0.9f : 0.1f;
    Tensor *t2 = tensor_from_floats(shape1(1), &later, DEVICE_CPU);
    ck_assert_msg(max_diff(v, model_forward(m, in.x, t2, in.y)) > 1e-4f,
                  "%s: output does not depend on t", c->name);

    int32_t label;
    tensor_read(in.y, &label);
    int32_t other = (label + 1) % (c->cfg.num_classes + 1);
    Tensor *y2 = tensor_from_ints(shape1(1), &other, DEVICE_CPU);
    ck_assert_msg(max_diff(v, model_forward(m, in.x, in.t, y2)) > 1e-4f,
                  "%s: output does not depend on y (%d vs %d)", c->name, label, other);
    model_free(m);
}
END_TEST

// ---- configuration errors ----------------------------------------------------------------------

typedef struct {
    int case_index; // the valid config to start from
    size_t offset;  // the int field of ModelConfig to set
    int value;
    const char *field; // what the message must name
} BadConfig;

#define BAD(c, f, v) {c, offsetof(ModelConfig, f), v, #f}
static const BadConfig bad_configs[] = {
    BAD(0, num_classes, 0),   BAD(0, data_dim, 0),      BAD(0, mlp_width, 0),
    BAD(0, mlp_layers, 0),    BAD(1, num_classes, -1),  BAD(1, levels, 0),
    BAD(1, levels, 5),        BAD(1, in_channels, 0),   BAD(1, channels, 1),
    BAD(1, res_blocks, 0),    BAD(1, groups, 0),        BAD(1, groups, 3),
    BAD(1, image_size, 6),    BAD(1, image_size, 0),    BAD(1, channel_mult[1], 0),
};

START_TEST(test_bad_config) {
    const BadConfig *b = &bad_configs[_i];
    ModelConfig cfg = cases[b->case_index].cfg;
    *(int *)((char *)&cfg + b->offset) = b->value;
    if (b->offset == offsetof(ModelConfig, image_size)) // 6 is not a multiple of 4
        cfg.levels = 3, cfg.channel_mult[2] = cfg.channel_mult[1];
    Rng rng = rng_make(1);
    Error err = {""};
    Model *m = model_create(&cfg, DEVICE_CPU, &rng, &err);
    ck_assert_msg(m == NULL, "%s %s = %d was accepted", cases[b->case_index].name, b->field,
                  b->value);
    ck_assert_msg(strstr(err.msg, b->field) != NULL, "%s = %d: message \"%s\" does not name %s",
                  b->field, b->value, err.msg, b->field);
}
END_TEST

// Settings past their range, from a file or a command line, are refused by name before
// anything is allocated (they overflowed int arithmetic, aborted on a failed allocation or
// ran for hours before).
static const BadConfig too_large[] = {
    BAD(0, num_classes, INT_MAX), BAD(0, mlp_width, 1 << 20), BAD(0, mlp_layers, 100000),
    BAD(0, data_dim, 1 << 30),    BAD(1, image_size, 65536), BAD(1, channels, 1 << 20),
    BAD(1, channel_mult[0], 1 << 20),
};

START_TEST(test_config_past_range) {
    const BadConfig *b = &too_large[_i];
    ModelConfig cfg = cases[b->case_index].cfg;
    *(int *)((char *)&cfg + b->offset) = b->value;
    Error err = {""};
    ck_assert_int_eq(model_config_check(&cfg, &err), -1);
    ck_assert_msg(strstr(err.msg, b->field) && strstr(err.msg, "outside"),
                  "%s = %d: message \"%s\"", b->field, b->value, err.msg);
    Rng rng = rng_make(1);
    ck_assert(model_create(&cfg, DEVICE_CPU, &rng, &err) == NULL);
}
END_TEST

static ModelConfig dit_config(int hidden, int depth) {
    return (ModelConfig){.kind = MODEL_DIT, .num_classes = 10, .in_channels = 1,
                         .image_size = 28, .patch = 4, .hidden = hidden, .depth = depth,
                         .heads = 4, .mlp_ratio = 4.0f};
}

// Every field in range, the whole far past any machine: refused with the memory it needs.
START_TEST(test_config_too_large_for_memory) {
    ModelConfig cfg = dit_config(65536, 1024);
    Error err = {""};
    ck_assert_int_eq(model_config_check(&cfg, &err), -1);
    ck_assert_msg(strstr(err.msg, "memory available") && strstr(err.msg, "TiB"), "%s", err.msg);
    // a model that fits, at a batch that does not
    cfg = dit_config(192, 6);
    ck_assert_int_eq(model_config_check(&cfg, &err), 0);
    ck_assert_int_eq(model_check_memory(&cfg, 64, true, 1, "train", &err), 0);
    ck_assert_int_eq(model_check_memory(&cfg, (int64_t)1 << 40, true, 1, "train", &err), -1);
    ck_assert_msg(strncmp(err.msg, "train: ", 7) == 0 && strstr(err.msg, "batch"), "%s", err.msg);
}
END_TEST

static int64_t counted_parameters(const ModelConfig *cfg) {
    Model *m = make_model(cfg, "count");
    int64_t n = 0;
    for (int i = 0; i < model_params(m)->count; i++) n += shape_numel(model_params(m)->items[i].tensor->shape);
    model_free(m);
    return n;
}

// The memory check's parameter counts are exact (its formulas follow each architecture's
// construction; a change to one that forgets the other fails here).
START_TEST(test_parameter_count_estimate) {
    ModelConfig unet3 = cases[1].cfg;
    unet3.levels = 3, unet3.channel_mult[2] = 3, unet3.res_blocks = 2;
    const ModelConfig configs[] = {dit_config(64, 2), cases[0].cfg, cases[1].cfg, unet3};
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++)
        ck_assert_int_eq((int64_t)model_parameter_count(&configs[i]), counted_parameters(&configs[i]));
}
END_TEST

// A checkpoint's model_config is checked when read, with the field named.
START_TEST(test_config_json_bounded) {
    const struct {
        const char *replace, *with, *field;
    } bad[] = {
        {"\"image_size\":28", "\"image_size\":65536", "image_size"},
        {"\"depth\":2", "\"depth\":100000", "depth"},
        {"\"num_classes\":10", "\"num_classes\":2147483647", "num_classes"},
        {"\"hidden\":64", "\"hidden\":1e300", "hidden"},
        {"\"mlp_ratio\":4", "\"mlp_ratio\":1e300", "mlp_ratio"},
        {"\"depth\":2", "\"depth\":2.5", "depth"},
    };
    ModelConfig cfg = dit_config(64, 2), back;
    char *json = model_config_to_json(&cfg);
    Error err = {""};
    ck_assert_msg(model_config_from_json(json, &back, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char edited[1024];
        const char *at = strstr(json, bad[i].replace);
        ck_assert_msg(at != NULL, "%s not in %s", bad[i].replace, json);
        snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - json), json, bad[i].with,
                 at + strlen(bad[i].replace));
        err.msg[0] = '\0';
        ck_assert_msg(model_config_from_json(edited, &back, &err) == -1, "accepted %s", edited);
        ck_assert_msg(strstr(err.msg, bad[i].field), "%s: message \"%s\"", edited, err.msg);
    }
    free(json);
}
END_TEST

// ---- training ----------------------------------------------------------------------------------

// p -= lr * grad for every parameter, then the gradients are dropped.
static void sgd_step(const ParamList *params, float lr) {
    autograd_no_grad_begin();
    for (int i = 0; i < params->count; i++) {
        Tensor *p = params->items[i].tensor;
        if (!p->grad) continue;
        tensor_copy_into(p, op_sub(p, op_mul_scalar(p->grad, lr)));
        tensor_zero_grad(p);
    }
    autograd_no_grad_end();
}

#define FIT_POINTS 64
#define FIT_STEPS 300

// A smooth target that depends on x, t and y: the MLP must use all three to fit it.
static void fit_target(const float *x, float t, int32_t y, float *out) {
    float offset = 0.5f * (float)y - 0.5f;
    out[0] = x[1] + 0.5f * sinf(3.0f * x[0]) + offset;
    out[1] = -x[0] + t - offset;
}

// Full-batch SGD on a fixed regression problem takes the MSE below a tenth of its start.
START_TEST(test_mlp_sgd_fits_target) {
    ModelConfig cfg = {.kind = MODEL_MLP, .num_classes = 2, .data_dim = 2, .mlp_width = 64,
                       .mlp_layers = 2};
    Model *m = make_model(&cfg, "fit");
    Inputs in = make_inputs(&cfg, FIT_POINTS, "fit");
    float x[FIT_POINTS * 2], t[FIT_POINTS], target[FIT_POINTS * 2];
    int32_t y[FIT_POINTS];
    tensor_read(in.x, x);
    tensor_read(in.t, t);
    tensor_read(in.y, y);
    for (int i = 0; i < FIT_POINTS; i++) fit_target(&x[2 * i], t[i], y[i], &target[2 * i]);
    Tensor *want = tensor_from_floats(shape2(FIT_POINTS, 2), target, DEVICE_CPU);

    float first = 0.0f, last = 0.0f;
    for (int step = 0; step < FIT_STEPS; step++) {
        tensor_scope_begin();
        Tensor *loss = op_mse(model_forward(m, in.x, in.t, in.y), want);
        last = tensor_item(loss);
        if (step == 0) first = last;
        autograd_backward(loss, NULL);
        sgd_step(model_params(m), 0.03f);
        tensor_scope_end();
    }
    ck_assert_msg(isfinite(last) && last < 0.1f * first, "loss %g -> %g after %d steps",
                  (double)first, (double)last, FIT_STEPS);
    model_free(m);
}
END_TEST

static Suite *models_suite(void) {
    Suite *s = suite_create("models");

    TCase *tc = test_scoped_tcase(s, "structure");
    tcase_add_loop_test(tc, test_output_shape, 0, COUNT_OF(cases));
    tcase_add_loop_test(tc, test_param_names_unique_and_counted, 0, COUNT_OF(cases));
    tcase_add_loop_test(tc, test_named_param_shapes, 0, COUNT_OF(named_params));
    tcase_add_loop_test(tc, test_zero_output_at_init, 0, COUNT_OF(cases));

    tc = test_scoped_tcase(s, "gradients");
    tcase_add_loop_test(tc, test_every_param_gets_gradient, 0, COUNT_OF(cases));
    tcase_add_loop_test(tc, test_gradcheck, 0, COUNT_OF(cases));

    tc = test_scoped_tcase(s, "behaviour");
    tcase_add_loop_test(tc, test_rows_independent, 0, COUNT_OF(cases));
    tcase_add_loop_test(tc, test_conditioning_reaches_output, 0, COUNT_OF(cases));

    tc = test_scoped_tcase(s, "config");
    tcase_add_loop_test(tc, test_bad_config, 0, COUNT_OF(bad_configs));
    tcase_add_loop_test(tc, test_config_past_range, 0, COUNT_OF(too_large));
    tcase_add_test(tc, test_config_too_large_for_memory);
    tcase_add_test(tc, test_parameter_count_estimate);
    tcase_add_test(tc, test_config_json_bounded);

    tc = test_scoped_tcase(s, "training");
    tcase_add_test(tc, test_mlp_sgd_fits_target);
    return s;
}

int main(void) {
    return test_run_suite(models_suite());
}
