// The training-state suite: AdamW against a plain double-precision loop of torch.optim.AdamW,
// clipping exactly as clip_grad_norm_, the learning-rate schedule, the EMA formula, parameter
// files and their errors, and checkpoints: a bit-exact round trip, a bit-exact resume, corrupt
// files and interrupted saves.
//
// Models here are a few tensors in a ParamList trained on a synthetic loss, so the suite
// depends on nothing above nn/params, nn/optim and nn/checkpoint.
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "nn/checkpoint.h"
#include "nn/guard.h"
#include "nn/optim.h"
#include "tensor/safetensors.h"
#include "test/test_util.h"

// ---- scratch files -------------------------------------------------------------------------

// A file name unique to the calling test case (cases run in parallel processes' order).
static const char *scratch(const char *name, char *buf) {
    snprintf(buf, 1024, "%s/%ld_%s", test_scratch_dir, (long)getpid(), name);
    return buf;
}

static int count_files_starting(const char *path) {
    const char *base = strrchr(path, '/') + 1;
    DIR *d = opendir(test_scratch_dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strncmp(e->d_name, base, strlen(base)) == 0;
    closedir(d);
    return n;
}

#define ASSERT_ERROR_HAS(err, part) \
    ck_assert_msg(strstr((err).msg, (part)) != NULL, "error \"%s\" lacks \"%s\"", (err).msg, (part))

// ---- tensors in host memory ----------------------------------------------------------------

static float *host_copy(const Tensor *t) {
    float *x = malloc((size_t)tensor_numel(t) * sizeof *x + 1);
    ck_assert_ptr_nonnull(x);
    tensor_read(t, x);
    return x;
}

static void assert_same_bits(const char *what, const Tensor *a, const Tensor *b) {
    ck_assert_int_eq(tensor_numel(a), tensor_numel(b));
    float *x = host_copy(a), *y = host_copy(b);
    ck_assert_msg(memcmp(x, y, (size_t)tensor_numel(a) * sizeof *x) == 0, "%s differs", what);
    free(x);
    free(y);
}

static void assert_lists_same_bits(const ParamList *a, const ParamList *b) {
    ck_assert_int_eq(a->count, b->count);
    for (int i = 0; i < a->count; i++) {
        ck_assert_str_eq(a->items[i].name, b->items[i].name);
        assert_same_bits(a->items[i].name, a->items[i].tensor, b->items[i].tensor);
    }
}

// A retained F32 tensor from host values.
static Tensor *make_tensor(Shape shape, const float *values, Device device) {
    tensor_scope_begin();
    Tensor *t = tensor_retain(tensor_from_floats(shape, values, device));
    tensor_scope_end();
    return t;
}

// Gives p the gradient c exactly: backward of sum(p * c).
static void set_grad(Tensor *p, const float *c) {
    tensor_scope_begin();
    Tensor *ct = tensor_from_floats(p->shape, c, p->device);
    autograd_backward(op_sum_all(op_mul(p, ct)), NULL);
    tensor_scope_end();
}

// ---- a toy model: y = x W^T + b, plus a frozen tensor ----------------------------------------

enum { IN = 3, OUT = 4, ROWS = 16, BATCH = 4 };

typedef struct {
    Tensor *w, *b, *frozen;
    ParamList params;
} Toy;

static void toy_init(Toy *toy, uint64_t seed, Device device) {
    float w[OUT * IN], b[OUT], f[4];
    test_fill_uniform(w, OUT * IN, seed, -0.5f, 0.5f);
    test_fill_uniform(b, OUT, seed + 1, -0.5f, 0.5f);
    test_fill_uniform(f, 4, seed + 2, -1.0f, 1.0f);
    *toy = (Toy){.w = make_tensor(shape2(OUT, IN), w, device),
                 .b = make_tensor(shape1(OUT), b, device),
                 .frozen = make_tensor(shape2(2, 2), f, device)};
    tensor_set_requires_grad(toy->w, true);
    tensor_set_requires_grad(toy->b, true);
    params_add(&toy->params, "net.", "weight", toy->w, true);
    params_add(&toy->params, "net.", "bias", toy->b, true);
    params_add(&toy->params, NULL, "frozen", toy->frozen, false);
}

static void toy_free(Toy *toy) {
    tensor_release(toy->w);
    tensor_release(toy->b);
    tensor_release(toy->frozen);
    params_free(&toy->params);
}

// Everything a training run carries from step to step.
typedef struct {
    Toy toy;
    AdamW opt;
    Ema ema;
    Rng rng;
    DataPosition data;
    int64_t step;
    Checkpoint ck;
} Run;

static const ModelConfig toy_config = {.kind = MODEL_MLP, .num_classes = 3, .data_dim = IN,
                                       .mlp_width = OUT, .mlp_layers = 1};

static void run_init(Run *r, uint64_t seed, Device device) {
    *r = (Run){.rng = rng_make(seed ^ 0xabcdef)};
    toy_init(&r->toy, seed, device);
    AdamWConfig cfg = adamw_config_default();
    cfg.weight_decay = 0.05f;
    adamw_init(&r->opt, &r->toy.params, cfg);
    ema_init(&r->ema, &r->toy.params);
    r->ck = (Checkpoint){
        .part_count = 1,
        .parts = {{"", &toy_config, &r->toy.params, &r->ema, &r->opt}},
        .rng_count = 1,
        .rngs = {{"train", &r->rng}},
        .step = &r->step,
        .data = &r->data,
    };
}

static void run_free(Run *r) {
    adamw_free(&r->opt);
    ema_free(&r->ema);
    toy_free(&r->toy);
}

static const LrSchedule toy_schedule = {.base_lr = 0.05f, .warmup_steps = 3, .decay = LR_COSINE,
                                        .total_steps = 12, .min_lr = 0.005f};

// One step: a batch of the fixed dataset at the data position, input noise from the RNG
// stream, MSE loss, clipped AdamW at the scheduled rate, EMA.
static void run_step(Run *r) {
    Device device = r->toy.w->device;
    float x[BATCH * IN], y[BATCH * OUT];
    for (int i = 0; i < BATCH; i++) {
        int row = (int)r->data.index + i;
        for (int j = 0; j < IN; j++) x[i * IN + j] = sinf((float)(row * IN + j));
        for (int j = 0; j < OUT; j++) y[i * OUT + j] = cosf((float)(row + j));
    }
    tensor_scope_begin();
    adamw_zero_grad(&r->opt);
    Tensor *noise = tensor_normal(shape2(BATCH, IN), &r->rng, 0.0f, 0.1f, device);
    Tensor *xt = op_add(tensor_from_floats(shape2(BATCH, IN), x, device), noise);
    Tensor *pred = op_linear(xt, r->toy.w, r->toy.b);
    autograd_backward(op_mse(pred, tensor_from_floats(shape2(BATCH, OUT), y, device)), NULL);
    adamw_step(&r->opt, lr_schedule(&toy_schedule, r->opt.step), 0.5f);
    ema_update(&r->ema, &r->toy.params, 0.8f);
    tensor_scope_end();
    r->data.index += BATCH;
    if (r->data.index >= ROWS) {
        r->data.index = 0;
        r->data.epoch++;
    }
    r->step++;
}

// Weights, shadows, moments, step counts, stream and data position all identical.
static void assert_runs_identical(const Run *a, const Run *b) {
    assert_lists_same_bits(&a->toy.params, &b->toy.params);
    assert_lists_same_bits(&a->ema.shadows, &b->ema.shadows);
    ck_assert_int_eq(a->opt.params.count, b->opt.params.count);
    for (int i = 0; i < a->opt.params.count; i++) {
        assert_same_bits("optimiser m", a->opt.m[i], b->opt.m[i]);
        assert_same_bits("optimiser v", a->opt.v[i], b->opt.v[i]);
        ck_assert_int_eq(a->opt.steps[i], b->opt.steps[i]);
    }
    ck_assert_int_eq(a->opt.step, b->opt.step);
    ck_assert_int_eq(a->step, b->step);
    ck_assert_uint_eq(a->rng.seed, b->rng.seed);
    ck_assert_uint_eq(a->rng.offset, b->rng.offset);
    ck_assert_int_eq(a->data.epoch, b->data.epoch);
    ck_assert_int_eq(a->data.index, b->data.index);
}

// ---- AdamW -----------------------------------------------------------------------------------

// torch.optim.AdamW's single-tensor step, in double: decay, moments, bias-corrected update.
static void reference_adamw(double *p, double *m, double *v, const float *g, int n, int step,
                            double lr, const AdamWConfig *c) {
    double bc1 = 1.0 - pow(c->beta1, step), bc2 = 1.0 - pow(c->beta2, step);
    for (int i = 0; i < n; i++) {
        p[i] *= 1.0 - lr * c->weight_decay;
        m[i] = c->beta1 * m[i] + (1.0 - c->beta1) * g[i];
        v[i] = c->beta2 * v[i] + (1.0 - c->beta2) * (double)g[i] * g[i];
        p[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + c->eps);
    }
}

static void assert_close_to(const char *what, const Tensor *t, const double *want, int n,
                            double atol, double rtol) {
    float *got = host_copy(t), *w = malloc((size_t)n * sizeof *w);
    for (int i = 0; i < n; i++) w[i] = (float)want[i];
    ASSERT_CLOSE(what, got, w, n, atol, rtol);
    free(got);
    free(w);
}

START_TEST(test_adamw_matches_reference) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    enum { N = 7 };
    const AdamWConfig cfg = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    const float lrs[3] = {1e-2f, 3e-2f, 5e-3f};
    uint64_t seed = test_seed_for("adamw");
    float p0[N], g[3][N];
    test_fill_uniform(p0, N, seed, -1.0f, 1.0f);
    // away from 0, so that eps is negligible in the closed form of the first step
    const float zero = 0.0f;
    for (int s = 0; s < 3; s++)
        test_fill_away_from(g[s], N, seed + 1 + s, -2.0f, 2.0f, &zero, 1, 0.05f);
    Tensor *p = make_tensor(shape1(N), p0, device);
    tensor_set_requires_grad(p, true);
    ParamList list = {0};
    params_add(&list, NULL, "p", p, true);
    AdamW opt;
    adamw_init(&opt, &list, cfg);
    double rp[N], rm[N] = {0}, rv[N] = {0};
    for (int i = 0; i < N; i++) rp[i] = p0[i];
    for (int s = 0; s < 3; s++) {
        adamw_zero_grad(&opt);
        set_grad(p, g[s]);
        adamw_step(&opt, lrs[s], 0.0f);
        reference_adamw(rp, rm, rv, g[s], N, s + 1, lrs[s], &cfg);
        if (s == 0) {
            // After one step m^ = g and v^ = g^2: p1 = p0 (1 - lr wd) - lr sign(g).
            double first[N];
            for (int i = 0; i < N; i++)
                first[i] = p0[i] * (1.0 - 1e-2 * 0.1) - 1e-2 * (g[0][i] > 0 ? 1.0 : -1.0);
            assert_close_to("p after step 1 (closed form)", p, first, N, 2e-6, 0.0);
        }
    }
    assert_close_to("p after 3 steps", p, rp, N, 2e-6, 1e-6);
    assert_close_to("m after 3 steps", opt.m[0], rm, N, 1e-7, 1e-5);
    assert_close_to("v after 3 steps", opt.v[0], rv, N, 1e-8, 1e-5);
    ck_assert_int_eq(opt.step, 3);
    ck_assert_int_eq(opt.steps[0], 3);
    adamw_free(&opt);
    params_free(&list);
    tensor_release(p);
}
END_TEST

// Frozen parameters are not tracked; a tracked one without a gradient is skipped like
// PyTorch's grad=None: not decayed, not moved, its count unchanged.
START_TEST(test_adamw_skips_frozen_and_gradless) {
    Toy toy;
    toy_init(&toy, test_seed_for("skip"), DEVICE_CPU);
    AdamW opt;
    adamw_init(&opt, &toy.params, adamw_config_default());
    ck_assert_int_eq(opt.params.count, 2);
    ck_assert_str_eq(opt.params.items[0].name, "net.weight");
    ck_assert_str_eq(opt.params.items[1].name, "net.bias");
    float *w0 = host_copy(toy.w), *b0 = host_copy(toy.b);
    float gb[OUT] = {1.0f, -1.0f, 0.5f, 2.0f};
    set_grad(toy.b, gb); // only the bias gets a gradient
    adamw_step(&opt, 0.1f, 0.0f);
    float *w1 = host_copy(toy.w), *b1 = host_copy(toy.b);
    ck_assert(memcmp(w0, w1, sizeof(float) * OUT * IN) == 0);
    ck_assert(memcmp(b0, b1, sizeof(float) * OUT) != 0);
    ck_assert_int_eq(opt.steps[0], 0);
    ck_assert_int_eq(opt.steps[1], 1);
    ck_assert_int_eq(opt.step, 1);
    adamw_zero_grad(&opt);
    ck_assert_ptr_null(toy.b->grad);
    free(w0), free(b0), free(w1), free(b1);
    adamw_free(&opt);
    toy_free(&toy);
}
END_TEST

// Two parameters, one of them twice the size; the gradient norm is the global L2 over both
// (a frozen tensor and a gradless one count nothing). Clipping to a quarter of it gives exactly
// the parameters of an unclipped step on gradients scaled as clip_grad_norm_ scales them.
START_TEST(test_clipping_matches_clip_grad_norm) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    uint64_t seed = test_seed_for("clip");
    float a0[5], b0[10], ga[5], gb[10];
    test_fill_uniform(a0, 5, seed, -1.0f, 1.0f);
    test_fill_uniform(b0, 10, seed + 1, -1.0f, 1.0f);
    test_fill_uniform(ga, 5, seed + 2, -3.0f, 3.0f);
    test_fill_uniform(gb, 10, seed + 3, -3.0f, 3.0f);
    double sumsq = 0.0;
    for (int i = 0; i < 5; i++) sumsq += (double)ga[i] * ga[i];
    for (int i = 0; i < 10; i++) sumsq += (double)gb[i] * gb[i];
    double norm = sqrt(sumsq);
    const float clip_factors[2] = {0.25f, 10.0f}; // clipping, and a limit above the norm
    for (int c = 0; c < 2; c++) {
        Tensor *t[2][3];
        ParamList lists[2] = {{0}, {0}};
        AdamW opts[2];
        for (int k = 0; k < 2; k++) {
            t[k][0] = make_tensor(shape1(5), a0, device);
            t[k][1] = make_tensor(shape2(2, 5), b0, device);
            t[k][2] = make_tensor(shape1(3), a0, device); // trainable, never given a gradient
            for (int j = 0; j < 3; j++) tensor_set_requires_grad(t[k][j], true);
            params_add(&lists[k], NULL, "a", t[k][0], true);
            params_add(&lists[k], NULL, "b", t[k][1], true);
            params_add(&lists[k], NULL, "gradless", t[k][2], true);
            adamw_init(&opts[k], &lists[k], adamw_config_default());
        }
        set_grad(t[0][0], ga);
        set_grad(t[0][1], gb);
        double got = optim_grad_norm(&lists[0]);
        ck_assert_msg(fabs(got - norm) <= 1e-12 * norm, "grad norm %.17g vs %.17g", got, norm);
        // clip_grad_norm_: coef = max_norm / (total_norm + 1e-6) in float (PyTorch evaluates it
        // as reciprocal(total + 1e-6) * max_norm), clamped to 1, then grads *= coef
        float clip = (float)norm * clip_factors[c];
        float coef = (1.0f / ((float)got + 1e-6f)) * clip;
        if (coef > 1.0f) coef = 1.0f;
        float sa[5], sb[10];
        for (int i = 0; i < 5; i++) sa[i] = ga[i] * coef;
        for (int i = 0; i < 10; i++) sb[i] = gb[i] * coef;
        set_grad(t[1][0], sa);
        set_grad(t[1][1], sb);
        double returned = adamw_step(&opts[0], 0.01f, clip);
        ck_assert_msg(returned == got, "pre-clip norm %.17g vs %.17g", returned, got);
        adamw_step(&opts[1], 0.01f, 0.0f);
        assert_lists_same_bits(&lists[0], &lists[1]);
        for (int k = 0; k < 2; k++) {
            adamw_free(&opts[k]);
            params_free(&lists[k]);
            for (int j = 0; j < 3; j++) tensor_release(t[k][j]);
        }
    }
}
END_TEST

// ---- learning rate and EMA -----------------------------------------------------------------

START_TEST(test_lr_schedule_values) {
    const LrSchedule cosine = {.base_lr = 1e-3f, .warmup_steps = 10, .decay = LR_COSINE,
                               .total_steps = 110, .min_lr = 1e-5f};
    const struct {
        int64_t step;
        double want;
    } cases[] = {
        {0, 1e-4},   // warm-up: base (step + 1) / warmup
        {4, 5e-4},
        {9, 1e-3},
        {10, 1e-3},  // cosine at progress 0
        {35, 1e-5 + (1e-3 - 1e-5) * 0.5 * (1.0 + cos(M_PI / 4.0))},
        {60, 1e-5 + (1e-3 - 1e-5) * 0.5}, // halfway
        {110, 1e-5}, // the floor, and kept after
        {5000, 1e-5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float got = lr_schedule(&cosine, cases[i].step);
        ck_assert_msg(fabs(got - cases[i].want) <= 2e-7 * cases[i].want, "step %lld: %.9g vs %.9g",
                      (long long)cases[i].step, (double)got, cases[i].want);
    }
    const LrSchedule constant = {.base_lr = 2e-4f, .warmup_steps = 4, .decay = LR_CONSTANT};
    ck_assert_float_eq(lr_schedule(&constant, 1), 1e-4f);
    ck_assert_float_eq(lr_schedule(&constant, 3), 2e-4f);
    ck_assert_float_eq(lr_schedule(&constant, 100000), 2e-4f);
    const LrSchedule no_warmup = {.base_lr = 1.0f, .decay = LR_COSINE, .total_steps = 4};
    ck_assert_float_eq(lr_schedule(&no_warmup, 0), 1.0f);
    ck_assert(fabsf(lr_schedule(&no_warmup, 2) - 0.5f) <= 1e-7f);
    ck_assert_float_eq(lr_schedule(&no_warmup, 4), 0.0f);
}
END_TEST

START_TEST(test_ema_formula_and_swap) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    Toy toy;
    toy_init(&toy, test_seed_for("ema"), device);
    Ema ema;
    ema_init(&ema, &toy.params);
    ck_assert_int_eq(ema.shadows.count, 2); // the frozen tensor has no shadow
    assert_same_bits("fresh shadow", ema.shadows.items[0].tensor, toy.w);
    float shadow[OUT * IN], next[OUT * IN];
    tensor_read(toy.w, shadow);
    const float decays[2] = {0.9f, 0.999f};
    for (int s = 0; s < 2; s++) {
        test_fill_uniform(next, OUT * IN, test_seed_for("ema") + 10 + s, -1.0f, 1.0f);
        tensor_write(toy.w, next);
        ema_update(&ema, &toy.params, decays[s]);
        float w = (float)(1.0 - (double)decays[s]);
        for (int i = 0; i < OUT * IN; i++) shadow[i] = decays[s] * shadow[i] + w * next[i];
        float *got = host_copy(ema.shadows.items[0].tensor);
        ASSERT_CLOSE("shadow", got, shadow, OUT * IN, 1e-7, 1e-6);
        free(got);
    }
    // swap twice restores both; copy_to writes the shadows into the model
    float *live = host_copy(toy.w), *shade = host_copy(ema.shadows.items[0].tensor);
    ema_swap(&ema, &toy.params);
    float *after = host_copy(toy.w);
    ck_assert(memcmp(after, shade, sizeof shadow) == 0);
    free(after);
    ema_swap(&ema, &toy.params);
    after = host_copy(toy.w);
    ck_assert(memcmp(after, live, sizeof shadow) == 0);
    free(after);
    ema_copy_to(&ema, &toy.params);
    assert_same_bits("weights after ema_copy_to", toy.w, ema.shadows.items[0].tensor);
    assert_same_bits("bias after ema_copy_to", toy.b, ema.shadows.items[1].tensor);
    free(live);
    free(shade);
    ema_free(&ema);
    toy_free(&toy);
}
END_TEST

// ---- parameter files -------------------------------------------------------------------------

START_TEST(test_param_names) {
    char a[PARAM_NAME_MAX], b[PARAM_NAME_MAX];
    ck_assert_str_eq(params_prefix_index(a, "", "blocks", 3), "blocks.3.");
    ck_assert_str_eq(params_prefix(b, a, "attn"), "blocks.3.attn.");
    ck_assert_str_eq(params_prefix(a, NULL, "final_layer"), "final_layer.");
    ck_assert_str_eq(params_prefix(a, a, "linear"), "final_layer.linear."); // out may alias
    Toy toy;
    toy_init(&toy, 1, DEVICE_CPU);
    ck_assert_ptr_eq(params_find(&toy.params, "net.bias")->tensor, toy.b);
    ck_assert_ptr_null(params_find(&toy.params, "net"));
    ck_assert_int_eq(params_numel(&toy.params, false), OUT * IN + OUT + 4);
    ck_assert_int_eq(params_numel(&toy.params, true), OUT * IN + OUT);
    toy_free(&toy);
}
END_TEST

START_TEST(test_params_round_trip) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    char path[1024];
    scratch("params.safetensors", path);
    Toy a, b;
    toy_init(&a, test_seed_for("params a"), device);
    toy_init(&b, test_seed_for("params b"), device);
    const char *keys[] = {"note"}, *values[] = {"hello"};
    Error err;
    ck_assert_msg(params_save(&a.params, path, 1, keys, values, &err) == 0, "%s", err.msg);
    ck_assert_msg(params_load(&b.params, path, false, &err) == 0, "%s", err.msg);
    assert_lists_same_bits(&a.params, &b.params);
    CheckpointMetadata md;
    ck_assert_msg(checkpoint_read_metadata(path, &md, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(checkpoint_metadata_get(&md, "note"), "hello");
    checkpoint_metadata_free(&md);
    toy_free(&a);
    toy_free(&b);
}
END_TEST

// Each mismatch is an error naming the parameter, the file and (for shapes) both shapes, and
// leaves the parameters untouched.
START_TEST(test_params_load_errors) {
    char path[1024];
    scratch("params_err.safetensors", path);
    Toy toy;
    toy_init(&toy, test_seed_for("params err"), DEVICE_CPU);
    float *w0 = host_copy(toy.w);
    Error err;
    float x[OUT * IN] = {0};
    Tensor *wrong = make_tensor(shape2(IN, OUT), x, DEVICE_CPU);
    Tensor *extra = make_tensor(shape1(2), x, DEVICE_CPU);
    tensor_scope_begin();
    Tensor *ints = tensor_retain(tensor_from_ints(shape1(OUT), (int32_t[OUT]){0}, DEVICE_CPU));
    tensor_scope_end();
    const struct {
        const char *names[4];
        Tensor *tensors[4];
        int count;
        const char *expect[3];
    } cases[] = {
        {{"net.weight", "frozen"}, {toy.w, toy.frozen}, 2, {"'net.bias'", "missing", "(4)"}},
        {{"net.weight", "net.bias", "frozen", "stray"},
         {toy.w, toy.b, toy.frozen, extra},
         4,
         {"'stray'", "not a parameter", "(2)"}},
        {{"net.weight", "net.bias", "frozen"},
         {wrong, toy.b, toy.frozen},
         3,
         {"'net.weight'", "(3, 4)", "(4, 3)"}},
        {{"net.weight", "net.bias", "frozen"},
         {toy.w, ints, toy.frozen},
         3,
         {"'net.bias'", "I32", "F32"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ck_assert_msg(safetensors_save(path, cases[c].count, cases[c].names, cases[c].tensors, 0,
                                       NULL, NULL, &err) == 0,
                      "%s", err.msg);
        ck_assert_int_eq(params_load(&toy.params, path, false, &err), -1);
        ASSERT_ERROR_HAS(err, path);
        for (int k = 0; k < 3; k++) ASSERT_ERROR_HAS(err, cases[c].expect[k]);
        float *w1 = host_copy(toy.w);
        ck_assert(memcmp(w0, w1, sizeof x) == 0);
        free(w1);
    }
    // with allow_extra the stray tensor is ignored
    const char *names[] = {"net.weight", "net.bias", "frozen", "stray"};
    Tensor *tensors[] = {toy.w, toy.b, toy.frozen, extra};
    ck_assert(safetensors_save(path, 4, names, tensors, 0, NULL, NULL, &err) == 0);
    ck_assert_msg(params_load(&toy.params, path, true, &err) == 0, "%s", err.msg);
    // a missing file
    ck_assert_int_eq(params_load(&toy.params, "/nonexistent/x.safetensors", false, &err), -1);
    ASSERT_ERROR_HAS(err, "/nonexistent/x.safetensors");
    tensor_release(wrong);
    tensor_release(extra);
    tensor_release(ints);
    free(w0);
    toy_free(&toy);
}
END_TEST

// ---- checkpoints -----------------------------------------------------------------------------

START_TEST(test_checkpoint_round_trip) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    char path[1024];
    scratch("round.safetensors", path);
    Run a, b;
    run_init(&a, test_seed_for("round a"), device);
    run_init(&b, test_seed_for("round b"), device);
    for (int s = 0; s < 5; s++) run_step(&a);
    a.rng.seed = 0xfedcba9876543210ull; // beyond 2^63: the seed goes through as a decimal string
    const char *keys[] = {"run_config"}, *values[] = {"[train]\nsteps = 5\n"};
    a.ck.extra_count = 1;
    a.ck.extra_keys = keys;
    a.ck.extra_values = values;
    Error err;
    ck_assert_msg(checkpoint_save(path, &a.ck, &err) == 0, "%s", err.msg);
    ck_assert_msg(checkpoint_load(path, &b.ck, &err) == 0, "%s", err.msg);
    assert_runs_identical(&a, &b);
    ck_assert_int_eq(b.data.epoch, 1);
    ck_assert_int_eq(b.data.index, 4);
    ModelConfig cfg;
    ck_assert_msg(checkpoint_read_model_config(path, &cfg, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(cfg.kind, MODEL_MLP);
    ck_assert_int_eq(cfg.data_dim, IN);
    CheckpointMetadata md;
    ck_assert_msg(checkpoint_read_metadata(path, &md, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(checkpoint_metadata_get(&md, "run_config"), values[0]);
    ck_assert_str_eq(checkpoint_metadata_get(&md, "rng.train.seed"), "18364758544493064720");
    ck_assert_str_eq(checkpoint_metadata_get(&md, "format"), CHECKPOINT_FORMAT);
    checkpoint_metadata_free(&md);
    // the weights load by their plain names, as PyTorch would load them
    Toy plain;
    toy_init(&plain, 99, device);
    ck_assert_msg(params_load(&plain.params, path, true, &err) == 0, "%s", err.msg);
    assert_lists_same_bits(&plain.params, &a.toy.params);
    ck_assert_int_eq(params_load(&plain.params, path, false, &err), -1);
    ASSERT_ERROR_HAS(err, "ema.net.");
    toy_free(&plain);
    run_free(&a);
    run_free(&b);
}
END_TEST

// A parameter that missed some updates keeps its own count through a checkpoint.
START_TEST(test_checkpoint_keeps_per_parameter_steps) {
    char path[1024];
    scratch("steps.safetensors", path);
    Run a, b;
    run_init(&a, test_seed_for("steps a"), DEVICE_CPU);
    run_init(&b, test_seed_for("steps b"), DEVICE_CPU);
    run_step(&a);
    float gb[OUT] = {1.0f, 2.0f, 3.0f, 4.0f};
    adamw_zero_grad(&a.opt);
    set_grad(a.toy.b, gb);
    adamw_step(&a.opt, 0.01f, 0.0f);
    ck_assert_int_eq(a.opt.steps[0], 1);
    ck_assert_int_eq(a.opt.steps[1], 2);
    Error err;
    ck_assert_msg(checkpoint_save(path, &a.ck, &err) == 0, "%s", err.msg);
    ck_assert_msg(checkpoint_load(path, &b.ck, &err) == 0, "%s", err.msg);
    assert_runs_identical(&a, &b);
    run_free(&a);
    run_free(&b);
}
END_TEST

// Run 10 steps straight; and run 5, save, drop every object, rebuild them from other seeds,
// load, run 5 more: the two end bit for bit the same. Skipping the RNG restore does not.
START_TEST(test_resume_is_bit_exact) {
    char path[1024];
    scratch("resume.safetensors", path);
    uint64_t seed = test_seed_for("resume");
    Run straight, resumed;
    run_init(&straight, seed, DEVICE_CPU);
    for (int s = 0; s < 10; s++) run_step(&straight);

    Run first;
    run_init(&first, seed, DEVICE_CPU);
    for (int s = 0; s < 5; s++) run_step(&first);
    Error err;
    ck_assert_msg(checkpoint_save(path, &first.ck, &err) == 0, "%s", err.msg);
    run_free(&first);

    run_init(&resumed, seed + 12345, DEVICE_CPU);
    ck_assert_msg(checkpoint_load(path, &resumed.ck, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(resumed.step, 5);
    for (int s = 0; s < 5; s++) run_step(&resumed);
    assert_runs_identical(&straight, &resumed);

    Run careless;
    run_init(&careless, seed + 777, DEVICE_CPU);
    ck_assert_msg(checkpoint_load(path, &careless.ck, &err) == 0, "%s", err.msg);
    careless.rng = rng_make(seed ^ 0xabcdef); // restarted stream
    for (int s = 0; s < 5; s++) run_step(&careless);
    float *x = host_copy(straight.toy.w), *y = host_copy(careless.toy.w);
    ck_assert_msg(memcmp(x, y, sizeof(float) * OUT * IN) != 0,
                  "a resume with the wrong noise stream should not match");
    free(x);
    free(y);
    run_free(&straight);
    run_free(&resumed);
    run_free(&careless);
}
END_TEST

// Each problem with a checkpoint is an Error naming the file and the key, and leaves the live
// state untouched.
START_TEST(test_checkpoint_load_errors) {
    char path[1024], other[1024];
    scratch("err.safetensors", path);
    scratch("err_other.safetensors", other);
    Run a, b;
    run_init(&a, test_seed_for("ckerr a"), DEVICE_CPU);
    run_init(&b, test_seed_for("ckerr b"), DEVICE_CPU);
    run_step(&a);
    Error err;
    float *w0 = host_copy(b.toy.w);

    // saved without EMA, loaded with it
    Checkpoint no_ema = a.ck;
    no_ema.parts[0].ema = NULL;
    ck_assert(checkpoint_save(path, &no_ema, &err) == 0);
    ck_assert_int_eq(checkpoint_load(path, &b.ck, &err), -1);
    ASSERT_ERROR_HAS(err, path);
    ASSERT_ERROR_HAS(err, "'ema.net.weight'");
    // ... while a loader that wants no EMA takes it (and ignores EMA state it did not ask for)
    ck_assert_msg(checkpoint_load(path, &no_ema, &err) == 0, "%s", err.msg);

    // no RNG stream of that name
    Checkpoint no_rng = a.ck;
    no_rng.rng_count = 0;
    ck_assert(checkpoint_save(path, &no_rng, &err) == 0);
    ck_assert_int_eq(checkpoint_load(path, &b.ck, &err), -1);
    ASSERT_ERROR_HAS(err, "'rng.train.seed'");

    // a different model configuration
    ModelConfig bigger = toy_config;
    bigger.mlp_width = 8;
    Checkpoint other_model = b.ck;
    other_model.parts[0].config = &bigger;
    ck_assert(checkpoint_save(path, &a.ck, &err) == 0);
    ck_assert_int_eq(checkpoint_load(path, &other_model, &err), -1);
    ASSERT_ERROR_HAS(err, "'model_config'");

    // a weights file, unparsable metadata, a newer version, a stray weight
    ck_assert(checkpoint_export_weights(other, &a.toy.params, &a.ema, &toy_config, 0, NULL, NULL,
                                        &err) == 0);
    ck_assert_int_eq(checkpoint_load(other, &b.ck, &err), -1);
    ASSERT_ERROR_HAS(err, "'format'");
    Checkpoint bad = a.ck;
    const char *keys[] = {"step"}, *values[] = {"12x"};
    bad.extra_count = 1;
    bad.extra_keys = keys;
    bad.extra_values = values;
    ck_assert_int_eq(checkpoint_save(path, &bad, &err), -1); // an extra key may not be reserved
    ASSERT_ERROR_HAS(err, "'step'");
    bad.step = NULL; // now the extra "step" is the only one
    ck_assert_msg(checkpoint_save(path, &bad, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(checkpoint_load(path, &b.ck, &err), -1);
    ASSERT_ERROR_HAS(err, "'step'");
    ASSERT_ERROR_HAS(err, "12x");
    const char *names[] = {"net.weight", "net.bias", "frozen", "stray"};
    Tensor *tensors[] = {a.toy.w, a.toy.b, a.toy.frozen, a.toy.b};
    const char *mkeys[] = {"format", "format_version"}, *mvalues[] = {CHECKPOINT_FORMAT, "1"};
    ck_assert(safetensors_save(path, 4, names, tensors, 2, mkeys, mvalues, &err) == 0);
    Checkpoint weights_only = {.part_count = 1, .parts = {{.params = &b.toy.params}}};
    ck_assert_int_eq(checkpoint_load(path, &weights_only, &err), -1);
    ASSERT_ERROR_HAS(err, "'stray'");
    ck_assert(safetensors_save(path, 3, names, tensors, 2, mkeys, mvalues, &err) == 0);
    ck_assert_msg(checkpoint_load(path, &weights_only, &err) == 0, "%s", err.msg);
    tensor_write(b.toy.w, w0);
    mvalues[1] = "2";
    ck_assert(safetensors_save(path, 3, names, tensors, 2, mkeys, mvalues, &err) == 0);
    ck_assert_int_eq(checkpoint_load(path, &weights_only, &err), -1);
    ASSERT_ERROR_HAS(err, "'format_version'");

    float *w1 = host_copy(b.toy.w);
    ck_assert(memcmp(w0, w1, sizeof(float) * OUT * IN) == 0);
    ck_assert_int_eq(b.step, 0);
    free(w0);
    free(w1);
    run_free(&a);
    run_free(&b);
}
END_TEST

// Exported weights carry the EMA (or the live weights) under plain names, and
// checkpoint_load_weights picks the EMA out of a full checkpoint.
START_TEST(test_export_and_load_weights) {
    char full[1024], exported[1024];
    scratch("full.safetensors", full);
    scratch("export.safetensors", exported);
    Run a;
    run_init(&a, test_seed_for("export"), DEVICE_CPU);
    for (int s = 0; s < 3; s++) run_step(&a);
    Error err;
    ck_assert(checkpoint_save(full, &a.ck, &err) == 0);
    ck_assert(checkpoint_export_weights(exported, &a.toy.params, &a.ema, &toy_config, 0, NULL, NULL,
                                        &err) == 0);
    Toy t;
    toy_init(&t, 5, DEVICE_CPU);
    ck_assert_msg(params_load(&t.params, exported, false, &err) == 0, "%s", err.msg);
    assert_same_bits("exported EMA weight", t.w, a.ema.shadows.items[0].tensor);
    assert_same_bits("exported frozen", t.frozen, a.toy.frozen);
    toy_free(&t);
    toy_init(&t, 6, DEVICE_CPU);
    ck_assert_msg(checkpoint_load_weights(full, &t.params, true, &err) == 0, "%s", err.msg);
    assert_same_bits("EMA bias from checkpoint", t.b, a.ema.shadows.items[1].tensor);
    ck_assert_msg(checkpoint_load_weights(full, &t.params, false, &err) == 0, "%s", err.msg);
    assert_same_bits("live bias from checkpoint", t.b, a.toy.b);
    ModelConfig cfg;
    ck_assert_msg(checkpoint_read_model_config(exported, &cfg, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(cfg.mlp_width, OUT);
    ck_assert(checkpoint_export_weights(exported, &a.toy.params, NULL, NULL, 0, NULL, NULL, &err) ==
              0);
    ck_assert_int_eq(checkpoint_load_weights(exported, &t.params, true, &err), -1);
    ASSERT_ERROR_HAS(err, "no 'ema.'");
    ck_assert_int_eq(checkpoint_read_model_config(exported, &cfg, &err), -1);
    ASSERT_ERROR_HAS(err, "'model_config'");
    toy_free(&t);
    run_free(&a);
}
END_TEST

static void write_prefix(const char *path, const unsigned char *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

// Truncated at every kind of place, or with a damaged header: an Error, never a crash.
START_TEST(test_corrupt_checkpoint_is_an_error) {
    char path[1024], bad[1024];
    scratch("good.safetensors", path);
    scratch("bad.safetensors", bad);
    Run a, b;
    run_init(&a, test_seed_for("corrupt a"), DEVICE_CPU);
    run_init(&b, test_seed_for("corrupt b"), DEVICE_CPU);
    Error err;
    ck_assert(checkpoint_save(path, &a.ck, &err) == 0);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char bytes[1 << 16];
    size_t n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    ck_assert(n > 64 && n < sizeof bytes);
    size_t header_end = 8 + (size_t)bytes[0] + ((size_t)bytes[1] << 8);
    size_t cuts[] = {0, 5, 8, 30, header_end - 1, header_end, header_end + 3, n - 1};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        write_prefix(bad, bytes, cuts[c]);
        ck_assert_msg(checkpoint_load(bad, &b.ck, &err) == -1, "cut at %zu loaded", cuts[c]);
        ASSERT_ERROR_HAS(err, bad);
        ModelConfig cfg;
        if (cuts[c] < header_end) { // the header itself is cut: no metadata either
            ck_assert_int_eq(checkpoint_read_model_config(bad, &cfg, &err), -1);
            ASSERT_ERROR_HAS(err, bad);
        }
    }
    bytes[8] = 'X'; // the JSON header no longer parses
    write_prefix(bad, bytes, n);
    ck_assert_int_eq(checkpoint_load(bad, &b.ck, &err), -1);
    ASSERT_ERROR_HAS(err, "JSON");
    CheckpointMetadata md;
    ck_assert_int_eq(checkpoint_read_metadata(bad, &md, &err), -1);
    ASSERT_ERROR_HAS(err, "JSON");
    run_free(&a);
    run_free(&b);
}
END_TEST

// A save that fails part-way (here: the file-size limit is hit, as on a full disk) is an
// Error and leaves the previous checkpoint loadable and unchanged, with no temporary file left.
START_TEST(test_failed_save_keeps_previous) {
    char path[1024];
    scratch("keep.safetensors", path);
    Run a, b, c;
    run_init(&a, test_seed_for("keep a"), DEVICE_CPU);
    run_init(&b, test_seed_for("keep b"), DEVICE_CPU);
    run_init(&c, test_seed_for("keep c"), DEVICE_CPU);
    Error err;
    ck_assert(checkpoint_save(path, &a.ck, &err) == 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    struct rlimit old, small = {(rlim_t)st.st_size / 2, 0};
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN); // a write past the limit then fails with EFBIG
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = checkpoint_save(path, &b.ck, &err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    ck_assert_int_eq(rc, -1);
    ASSERT_ERROR_HAS(err, path);
    ck_assert_int_eq(count_files_starting(path), 1);
    ck_assert_msg(checkpoint_load(path, &c.ck, &err) == 0, "%s", err.msg);
    assert_runs_identical(&a, &c);
    run_free(&a);
    run_free(&b);
    run_free(&c);
}
END_TEST

// A process killed at random moments while saving, over and over, two different states: the
// final name only ever holds one of them, whole.
START_TEST(test_killed_save_leaves_a_whole_file) {
    char path[1024];
    scratch("killed.safetensors", path);
    Run a, b, c;
    run_init(&a, test_seed_for("kill a"), DEVICE_CPU);
    run_init(&b, test_seed_for("kill b"), DEVICE_CPU);
    run_init(&c, test_seed_for("kill c"), DEVICE_CPU);
    Error err;
    ck_assert(checkpoint_save(path, &a.ck, &err) == 0);
    uint64_t seed = test_seed_for("kill");
    for (int round = 0; round < 6; round++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            for (int i = 0;; i++)
                if (checkpoint_save(path, i % 2 ? &a.ck : &b.ck, &err)) _exit(1);
        }
        usleep((useconds_t)(1000 + (seed >> (round * 8) & 0xff) * 40));
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status), "the saving process stopped by itself");
        ck_assert_msg(checkpoint_load(path, &c.ck, &err) == 0, "round %d: %s", round, err.msg);
        float *got = host_copy(c.toy.w), *wa = host_copy(a.toy.w), *wb = host_copy(b.toy.w);
        size_t bytes = sizeof(float) * OUT * IN;
        ck_assert(memcmp(got, wa, bytes) == 0 || memcmp(got, wb, bytes) == 0);
        free(got), free(wa), free(wb);
    }
    run_free(&a);
    run_free(&b);
    run_free(&c);
}
END_TEST

// The guard warns when a loss grows 100x over its low, except for a loss that starts at zero by
// construction (DMD's), whose gradient norm it still watches.
START_TEST(test_guard_growth_warnings) {
    float p0[4] = {0.1f, -0.2f, 0.3f, 0.4f};
    Tensor *p = tensor_from_floats(shape1(4), p0, DEVICE_CPU);
    tensor_set_requires_grad(p, true);
    ParamList list = {0};
    params_add(&list, NULL, "p", p, true);
    AdamW opt;
    adamw_init(&opt, &list, adamw_config_default());
    for (int zero_start = 0; zero_start < 2; zero_start++) {
        TrainingGuard g = {.name = "generator", .loss_starts_at_zero = zero_start};
        char text[2048] = "";
        FILE *warn = fmemopen(text, sizeof text - 1, "w");
        Error err;
        const double losses[] = {1e-4, 1e-4, 0.05, 0.1}, norms[] = {1, 1, 1, 500};
        for (int step = 0; step < 4; step++)
            ck_assert_int_eq(training_guard_check(&g, step + 1, losses[step], norms[step], &opt,
                                                  warn, &err), 0);
        fclose(warn);
        ck_assert_msg((strstr(text, "generator's loss") != NULL) == !zero_start, "%s", text);
        ck_assert_msg(strstr(text, "step 4: the generator's gradient norm"), "%s", text);
    }
    adamw_free(&opt);
    params_free(&list);
}
END_TEST

int main(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_add_unchecked_fixture(tc, test_scratch_setup, test_scratch_teardown);
    tcase_add_loop_test(tc, test_adamw_matches_reference, 0, DEVICE_COUNT);
    tcase_add_test(tc, test_adamw_skips_frozen_and_gradless);
    tcase_add_loop_test(tc, test_clipping_matches_clip_grad_norm, 0, DEVICE_COUNT);
    tcase_add_test(tc, test_lr_schedule_values);
    tcase_add_loop_test(tc, test_ema_formula_and_swap, 0, DEVICE_COUNT);
    tcase_add_test(tc, test_param_names);
    tcase_add_loop_test(tc, test_params_round_trip, 0, DEVICE_COUNT);
    tcase_add_test(tc, test_params_load_errors);
    tcase_add_loop_test(tc, test_checkpoint_round_trip, 0, DEVICE_COUNT);
    tcase_add_test(tc, test_checkpoint_keeps_per_parameter_steps);
    tcase_add_test(tc, test_resume_is_bit_exact);
    tcase_add_test(tc, test_checkpoint_load_errors);
    tcase_add_test(tc, test_export_and_load_weights);
    tcase_add_test(tc, test_corrupt_checkpoint_is_an_error);
    tcase_add_test(tc, test_failed_save_keeps_previous);
    tcase_add_test(tc, test_killed_save_leaves_a_whole_file);
    tcase_add_test(tc, test_guard_growth_warnings);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
