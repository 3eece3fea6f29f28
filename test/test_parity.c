// Parity with the PyTorch reference DiT (tools/torch/dit_reference.py, a re-implementation of
// facebookresearch/DiT models.py). Its fixture test/fixtures/dit_parity.safetensors holds a tiny
// DiT (image 8, 1 channel, patch 2, hidden 32, depth 2, heads 2, mlp_ratio 4, 3 classes) with
// random values in every trainable parameter, inputs x, t, y (one null label, one label unused)
// for a batch of 4, the output v, the flow-matching loss against `target`, and, after 3 AdamW
// steps on that loss, the loss of each step and every parameter as "after3.<name>". The
// fixture directory comes from DMDR_FIXTURES (meson sets it); no Python runs here.
//
// Tolerances are set against the float32 rounding noise of the reference itself: the script
// also runs a float64 twin, and float32 PyTorch differs from it by at most 2.1e-5 in v (rms
// 1.3; mostly the angle of the 1000 t sinusoids), 1.7e-6 in the loss and 5.6e-6 in any
// parameter after the steps. The bounds are about three times that, the parameters' less
// (1.8 times): at lr 1e-3 the weight decay moves a parameter by only 3e-5 |p| in three steps,
// and a looser bound would no longer notice it missing.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "autograd/ops.h"
#include "diffusion/flow.h"
#include "dmdr/distill.h"
#include "dmdr/dmd_loss.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "tensor/safetensors.h"
#include "test/test_util.h"

#define V_ATOL 6e-5      // forward output, absolute (|v| up to 4.1)
#define LOSS_RTOL 5e-6   // loss at each step, relative
#define PARAM_ATOL 1e-5  // parameters after 3 steps, absolute (1% of one step of lr)
#define STEPS 3
#define PREFIX "after3." // the fixture's name for a parameter after the STEPS steps

// AdamW as the script ran it: torch.optim.AdamW(lr=1e-3), default betas, eps, weight decay
#define LR 1e-3f

static char fixture_path[1024];

// ---- the fixture ------------------------------------------------------------------------------

static void fixture_load(Safetensors *st) {
    const char *dir = getenv("DMDR_FIXTURES");
    ck_assert_msg(dir && *dir, "DMDR_FIXTURES is not set (meson points it at test/fixtures)");
    snprintf(fixture_path, sizeof fixture_path, "%s/dit_parity.safetensors", dir);
    Error err;
    ck_assert_msg(safetensors_load(fixture_path, st, &err) == 0, "%s", err.msg);
}

static Tensor *fixture_tensor(const Safetensors *st, const char *name) {
    Tensor *t = safetensors_find(st, name);
    ck_assert_msg(t != NULL, "%s: no tensor \"%s\"", fixture_path, name);
    return t;
}

// The fixture's model: its "model_config" metadata, then every parameter by name.
static Model *fixture_model(const Safetensors *st, Device device) {
    const char *json = safetensors_metadata(st, "model_config");
    ck_assert_msg(json != NULL, "%s: no model_config metadata", fixture_path);
    ModelConfig cfg;
    Error err;
    ck_assert_msg(model_config_from_json(json, &cfg, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(cfg.kind, MODEL_DIT);
    Rng rng = rng_make(test_seed_for("parity model init")); // overwritten by the load
    Model *m = model_create(&cfg, device, &rng, &err);
    ck_assert_msg(m != NULL, "model_create: %s", err.msg);
    // allow_extra: the file also holds the inputs, outputs and the after3.* values
    ck_assert_msg(params_load(model_params(m), fixture_path, true, &err) == 0, "%s", err.msg);
    return m;
}

// got (any device) against want (the fixture's CPU tensor), same number of elements
static void assert_close_tensor(const char *what, Tensor *got, Tensor *want, double atol,
                                double rtol) {
    int64_t n = tensor_numel(want);
    ck_assert_msg(tensor_numel(got) == n, "%s: %lld elements, the fixture has %lld", what,
                  (long long)tensor_numel(got), (long long)n);
    float *host = malloc((size_t)n * sizeof *host);
    ck_assert_ptr_nonnull(host);
    tensor_read(got, host);
    ASSERT_CLOSE(what, host, tensor_f32(want), n, atol, rtol);
    free(host);
}

// v = model(x, t, y) on the fixture's inputs
static Tensor *forward_fixture(Model *m, const Safetensors *st) {
    Device d = model_device(m);
    return model_forward(m, tensor_to(fixture_tensor(st, "x"), d),
                         tensor_to(fixture_tensor(st, "t"), d),
                         tensor_to(fixture_tensor(st, "y"), d));
}

// ---- the cases --------------------------------------------------------------------------------

// The C model's parameter names and shapes are the reference state_dict's, no more, no fewer,
// and exactly pos_embed is frozen (a non-trainable nn.Parameter there).
START_TEST(test_state_dict_names_match) {
    Safetensors st;
    fixture_load(&st);
    Model *m = fixture_model(&st, DEVICE_CPU);
    const ParamList *params = model_params(m);
    int fixture_params = 0;
    char shape_a[64], shape_b[64];
    for (int i = 0; i < st.count; i++) {
        if (strncmp(st.names[i], PREFIX, strlen(PREFIX)) != 0) continue;
        const char *name = st.names[i] + strlen(PREFIX);
        fixture_params++;
        Param *p = params_find(params, name);
        ck_assert_msg(p != NULL, "reference parameter %s is missing in the C model", name);
        Tensor *want = fixture_tensor(&st, name);
        ck_assert_msg(shape_equal(p->tensor->shape, want->shape), "%s: C %s, reference %s", name,
                      tensor_shape_str(p->tensor, shape_a, sizeof shape_a),
                      tensor_shape_str(want, shape_b, sizeof shape_b));
        ck_assert_msg(p->trainable == (strcmp(name, "pos_embed") != 0),
                      "%s: trainable is %d", name, p->trainable);
    }
    for (int i = 0; i < params->count; i++) {
        char key[PARAM_NAME_MAX + 16];
        snprintf(key, sizeof key, PREFIX "%s", params->items[i].name);
        ck_assert_msg(safetensors_find(&st, key) != NULL,
                      "C parameter %s is not in the reference state_dict", params->items[i].name);
    }
    ck_assert_int_eq(params->count, fixture_params);
    ck_assert_int_eq(fixture_params, 32);
    model_free(m);
    safetensors_free(&st);
}
END_TEST

// The reference's pos_embed is the fixed 2-D sin-cos table; the C model builds its own.
START_TEST(test_pos_embed_matches) {
    Safetensors st;
    fixture_load(&st);
    ModelConfig cfg;
    Error err;
    ck_assert(model_config_from_json(safetensors_metadata(&st, "model_config"), &cfg, &err) == 0);
    Rng rng = rng_make(test_seed_for("parity pos_embed"));
    Model *m = model_create(&cfg, DEVICE_CPU, &rng, &err); // no load: its own table
    ck_assert_msg(m != NULL, "%s", err.msg);
    assert_close_tensor("pos_embed", params_find(model_params(m), "pos_embed")->tensor,
                        fixture_tensor(&st, "pos_embed"), 1e-6, 0.0);
    model_free(m);
    safetensors_free(&st);
}
END_TEST

// The output v on the fixture's inputs, and its flow-matching loss against the target. The
// loop index is the device; a device without a usable backend is skipped.
START_TEST(test_forward_and_loss_match) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    Safetensors st;
    fixture_load(&st);
    Model *m = fixture_model(&st, device);
    autograd_no_grad_begin();
    Tensor *v = forward_fixture(m, &st);
    char what[64];
    snprintf(what, sizeof what, "v on %s", device_name(device));
    assert_close_tensor(what, v, fixture_tensor(&st, "v"), V_ATOL, 0.0);
    snprintf(what, sizeof what, "loss on %s", device_name(device));
    assert_close_tensor(what, op_mse(v, tensor_to(fixture_tensor(&st, "target"), device)),
                        fixture_tensor(&st, "loss"), 0.0, LOSS_RTOL);
    autograd_no_grad_end();
    model_free(m);
    safetensors_free(&st);
}
END_TEST

// The key bias of each attention: a constant added to every key shifts each row of scores by
// q.b_k, which softmax ignores, so its gradient is zero in exact arithmetic and float32 noise
// in both implementations. AdamW normalises that noise into steps of up to ~lr (|m^|/sqrt(v^)
// <= 1.01 in the first steps), so these entries can only be held to "each side moved at most
// ~lr per step from the same start".
static bool is_key_bias(const char *name, int64_t i, int64_t hidden) {
    const char *suffix = ".attn.qkv.bias";
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0 && i >= hidden && i < 2 * hidden;
}

static void assert_params_after_steps(const Safetensors *st, const ParamList *params,
                                      int64_t hidden, const char *device) {
    for (int i = 0; i < params->count; i++) {
        const Param *p = &params->items[i];
        char key[PARAM_NAME_MAX + 16], what[PARAM_NAME_MAX + 64];
        snprintf(key, sizeof key, PREFIX "%s", p->name);
        Tensor *want = fixture_tensor(st, key);
        int64_t n = tensor_numel(want);
        const float *ref = tensor_f32(want);
        float *got = malloc((size_t)n * sizeof *got);
        ck_assert_ptr_nonnull(got);
        tensor_read(p->tensor, got);
        for (int64_t j = 0; j < n; j++)
            if (is_key_bias(p->name, j, hidden)) {
                ck_assert_msg(fabsf(got[j] - ref[j]) <= 2.0f * STEPS * 1.1f * LR,
                              "%s on %s: key bias %lld moved too far: %g vs %g", p->name, device,
                              (long long)j, (double)got[j], (double)ref[j]);
                got[j] = ref[j]; // held to the bound above only
            }
        snprintf(what, sizeof what, "%s after %d AdamW steps on %s", p->name, STEPS, device);
        ASSERT_CLOSE(what, got, ref, n, PARAM_ATOL, 0.0);
        free(got);
    }
}

// Three AdamW steps on the fixture's loss (same batch each step, no clipping): the loss of
// each step and every parameter afterwards match torch.optim.AdamW.
START_TEST(test_adamw_steps_match) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    Safetensors st;
    fixture_load(&st);
    const float *losses = tensor_f32(fixture_tensor(&st, "losses"));
    Model *m = fixture_model(&st, device);
    Tensor *target = tensor_retain(tensor_to(fixture_tensor(&st, "target"), device));
    AdamW opt;
    adamw_init(&opt, model_params(m), adamw_config_default());
    for (int step = 0; step < STEPS; step++) {
        tensor_scope_begin();
        adamw_zero_grad(&opt);
        Tensor *loss = op_mse(forward_fixture(m, &st), target);
        float got = tensor_item(loss);
        ck_assert_msg(fabs(got - losses[step]) <= LOSS_RTOL * fabs(losses[step]),
                      "loss of step %d on %s: got %.9g, want %.9g", step, device_name(device),
                      (double)got, (double)losses[step]);
        autograd_backward(loss, NULL);
        adamw_step(&opt, LR, 0.0f);
        tensor_scope_end();
    }
    assert_params_after_steps(&st, model_params(m), model_config(m)->hidden,
                              device_name(device));
    adamw_free(&opt);
    tensor_release(target);
    model_free(m);
    safetensors_free(&st);
}
END_TEST

// ---- one DMD distillation step (tools/torch/dmd_step_reference.py) ----------------------------
// test/fixtures/dmd_step_parity.safetensors holds one generator turn of distiller_step at
// generator step k = 0, computed by PyTorch in float64 on the fixture's DiT configuration
// (image 8, 1 channel, patch 2, hidden 32, depth 2, heads 2, 3 classes): the teacher's random
// weights under their state_dict names, a LoRA adapter of rank 4 (alpha 8) on every block's
// attn.qkv and attn.proj with random A and B, every random draw of the step ("draw.*"), and
// every intermediate and result: the 2-step backward simulation ("bs.*"), the real score (LoRA
// at lambda_r(0) = 0.75, per-sample CFG around 1.5, one sample's jittered scale <= 1) and the
// fake score (lambda_f = 2), the DMD gradient and loss ("dmd.*"), the generator's gradients,
// pre-clip norm and weights after AdamW ("gen.*"), the fake score's flow loss, LoRA gradients,
// norm and weights after AdamW ("fake.*"), and the 2-step sampler ("sample.*"). The step's
// settings are its "distill" metadata (dmdr's DistillOptions fields). The draws are what dmdr's
// own stream gives at the "stream_seed" metadata, in distiller_step's order (the script has a
// Python twin of the Philox stream), so the cases below both compose the library's public
// functions on the stored tensors and run distiller_step itself.
//
// Tolerances: the script also runs the same step in float32 PyTorch, chained (each stage from
// its own float32 results, as distiller_step) and staged (each stage from the stored values,
// as the composed cases here). The larger of its two gaps to the float64 values is, per
// quantity: x0 predictions of the generator 2.3e-5 (|x| up to 5.2), re-noised inputs 1.0e-5,
// score velocities and their x0 predictions 5.4e-5 (|v| up to 3.5), DMD gradient 1.6e-5 (up
// to 0.70), DMD loss 1.6e-5 relative, fake loss 4.4e-7 relative, gradient norms 2.2e-5
// (generator) and 1.5e-6 (fake) relative, gradients 3.8e-5 (generator) and 7.4e-6 (LoRA) of
// each tensor's largest entry, weights after the step 6.8e-8. The bounds are about three
// times those (the fake gradient norm's about four times dmdr's own gap, 2.4e-6). A weight after AdamW's first step moved by
// -lr c g / (c |g| + eps) (c the clip factor) besides its decay: almost lr sign(g) whatever g's
// size, so where |g| is within float32 noise of 0 (the attention key biases' gradient is 0 in
// exact arithmetic) the step is noise. The bound on a weight is therefore PARAM_ATOL plus what
// the gradient's own bound allows that step to vary, lr max |f(g +- tol_g) - f(g)| with
// f(x) = x / (|x| + eps / c): negligible where |g| >> tol_g, up to 2 lr where it is not.
#define DMD_FIXTURE "dmd_step_parity.safetensors"
#define DMD_X_ATOL 6e-5           // generator x0 predictions (sampler, backward simulation)
#define DMD_INTERP_ATOL 3e-5      // re-noised inputs x_t = x0 + t (eps - x0)
#define DMD_V_ATOL 1.5e-4         // score velocities and their x0 predictions
#define DMD_GRAD_ATOL 6e-5        // the DMD gradient
#define DMD_LOSS_RTOL 5e-5        // the DMD loss, relative
#define FAKE_LOSS_RTOL 2e-6       // the fake score's flow loss, relative
#define GEN_NORM_RTOL 7e-5        // the generator's pre-clip gradient norm, relative
#define FAKE_NORM_RTOL 1e-5       // the fake score's, relative (dmdr's own gap: 2.4e-6)
#define GEN_GRAD_TOL 1.5e-4       // generator gradients, times each tensor's max |g|
#define FAKE_GRAD_TOL 3e-5        // LoRA gradients, times each tensor's max |g|
#define DMD_PARAM_ATOL 2e-7       // weights after the step, before the sign allowance

typedef struct {
    Safetensors st;
    char path[1024];
    DistillOptions opt;
    ModelConfig cfg;
    uint64_t stream_seed, sample_seed, stream_offset_after;
    float eps; // AdamW's (the distiller uses adamw_config_default)
} DmdFixture;

static double settings_number(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(cJSON_IsNumber(v), DMD_FIXTURE ": distill metadata has no number \"%s\"", key);
    return v->valuedouble;
}

static uint64_t metadata_u64(const DmdFixture *fx, const char *key) {
    const char *s = safetensors_metadata(&fx->st, key);
    ck_assert_msg(s != NULL, "%s: no %s metadata", fx->path, key);
    return strtoull(s, NULL, 10);
}

// The fixture, and the DistillOptions of its "distill" metadata
static void dmd_fixture_load(DmdFixture *fx) {
    const char *dir = getenv("DMDR_FIXTURES");
    ck_assert_msg(dir && *dir, "DMDR_FIXTURES is not set (meson points it at test/fixtures)");
    snprintf(fx->path, sizeof fx->path, "%s/" DMD_FIXTURE, dir);
    Error err;
    ck_assert_msg(safetensors_load(fx->path, &fx->st, &err) == 0, "%s", err.msg);
    const char *json = safetensors_metadata(&fx->st, "model_config");
    ck_assert_msg(json != NULL, "%s: no model_config metadata", fx->path);
    ck_assert_msg(model_config_from_json(json, &fx->cfg, &err) == 0, "%s", err.msg);
    json = safetensors_metadata(&fx->st, "distill");
    ck_assert_msg(json != NULL, "%s: no distill metadata", fx->path);
    cJSON *o = cJSON_Parse(json);
    ck_assert_msg(cJSON_IsObject(o), "%s: distill metadata is not a JSON object", fx->path);
    DistillOptions d = distill_defaults((int64_t)settings_number(o, "dyn_steps"));
    d.gen.steps = (int)settings_number(o, "gen_steps");
    d.gen.shift = (float)settings_number(o, "gen_shift");
    d.dmd = true;
    d.batch = (int)settings_number(o, "batch");
    d.ratio = (int)settings_number(o, "ratio");
    d.lora.style = LORA_STYLE_PEFT;
    d.lora.rank = (int)settings_number(o, "lora_rank");
    d.lora.alpha = (float)settings_number(o, "lora_alpha");
    d.lora.mlp = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "lora_mlp"));
    d.fake_net = FAKE_NET_LORA;
    d.fake_scale = (float)settings_number(o, "fake_scale");
    d.real_cfg = (float)settings_number(o, "real_cfg");
    d.cfg_jitter = (float)settings_number(o, "cfg_jitter");
    d.dyna.real_scale0 = (float)settings_number(o, "real_scale0");
    d.dyna.beta_a0 = (float)settings_number(o, "beta_a0");
    d.dyna.beta_b0 = (float)settings_number(o, "beta_b0");
    d.dyna.t_min = (float)settings_number(o, "t_min");
    d.gen_lr = (float)settings_number(o, "gen_lr");
    d.fake_lr = (float)settings_number(o, "fake_lr");
    d.gen_weight_decay = (float)settings_number(o, "gen_weight_decay");
    d.fake_weight_decay = (float)settings_number(o, "fake_weight_decay");
    d.clip = (float)settings_number(o, "clip");
    AdamWConfig def = adamw_config_default();
    ck_assert_msg((float)settings_number(o, "beta1") == def.beta1 &&
                      (float)settings_number(o, "beta2") == def.beta2 &&
                      (float)settings_number(o, "eps") == def.eps,
                  "%s: the reference's AdamW betas and eps must be the distiller's defaults",
                  fx->path);
    fx->eps = def.eps;
    cJSON_Delete(o);
    fx->opt = d;
    fx->stream_seed = metadata_u64(fx, "stream_seed");
    fx->sample_seed = metadata_u64(fx, "sample_seed");
    fx->stream_offset_after = metadata_u64(fx, "stream_offset_after");
}

static Tensor *dmd_find(const DmdFixture *fx, const char *name) {
    Tensor *t = safetensors_find(&fx->st, name);
    ck_assert_msg(t != NULL, "%s: no tensor \"%s\"", fx->path, name);
    return t;
}

static Tensor *dmd_input(const DmdFixture *fx, const char *name, Device device) {
    return tensor_to(dmd_find(fx, name), device);
}

static Shape dmd_shape(const DmdFixture *fx) {
    return shape4(fx->opt.batch, fx->cfg.in_channels, fx->cfg.image_size, fx->cfg.image_size);
}

// The fixture's teacher (lora false: also the generator before its step) or the score network
// with its adapter, every value loaded by name
static Model *dmd_model(const DmdFixture *fx, Device device, bool lora) {
    Error err;
    Rng rng = rng_make(test_seed_for("dmd parity init")); // overwritten by the load
    Model *m = model_create(&fx->cfg, device, &rng, &err);
    ck_assert_msg(m != NULL, "model_create: %s", err.msg);
    if (lora)
        ck_assert_msg(model_add_lora(m, &fx->opt.lora, &rng, &err) == 0, "model_add_lora: %s",
                      err.msg);
    ck_assert_msg(params_load(model_params(m), fx->path, true, &err) == 0, "%s", err.msg);
    return m;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

// got (any device) against the fixture's `name`: prints the max |C - reference| and asserts
static void dmd_check(const DmdFixture *fx, const char *what, Device device, Tensor *got,
                      const char *name, double atol, double rtol) {
    Tensor *want = dmd_find(fx, name);
    int64_t n = tensor_numel(want);
    ck_assert_msg(tensor_numel(got) == n, "%s: %lld elements, the fixture's %s has %lld", what,
                  (long long)tensor_numel(got), name, (long long)n);
    float *host = malloc((size_t)n * sizeof *host);
    ck_assert_ptr_nonnull(host);
    tensor_read(got, host);
    printf("dmd step parity [%s] %-44s max |C - ref| %.3g (atol %g, rtol %g)\n",
           device_name(device), what, max_abs_diff(host, tensor_f32(want), n), atol, rtol);
    fflush(stdout);
    char label[160];
    snprintf(label, sizeof label, "%s on %s", what, device_name(device));
    ASSERT_CLOSE(label, host, tensor_f32(want), n, atol, rtol);
    free(host);
}

static void dmd_check_value(const DmdFixture *fx, const char *what, Device device, double got,
                            const char *name, double atol, double rtol) {
    double want = tensor_f32(dmd_find(fx, name))[0];
    printf("dmd step parity [%s] %-44s max |C - ref| %.3g (atol %g, rtol %g): %.9g vs %.9g\n",
           device_name(device), what, fabs(got - want), atol, rtol, got, want);
    fflush(stdout);
    ck_assert_msg(fabs(got - want) <= atol + rtol * fabs(want), "%s on %s: got %.9g, want %.9g",
                  what, device_name(device), got, want);
}

static float *read_host(const Tensor *t) {
    float *h = malloc((size_t)tensor_numel(t) * sizeof *h);
    ck_assert_ptr_nonnull(h);
    tensor_read(t, h);
    return h;
}

static double max_abs(const float *x, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

// The gradient of every trainable parameter against the fixture's prefix + name, within tol
// times that tensor's largest reference entry; the fixture has exactly those names.
static void dmd_check_grads(const DmdFixture *fx, const char *what, Device device,
                            const ParamList *params, const char *prefix, double tol) {
    double worst = 0.0, worst_rel = 0.0;
    int checked = 0, stored = 0;
    for (int i = 0; i < fx->st.count; i++) stored += strncmp(fx->st.names[i], prefix, strlen(prefix)) == 0;
    for (int i = 0; i < params->count; i++) {
        const Param *p = &params->items[i];
        if (!p->trainable) continue;
        char key[PARAM_NAME_MAX + 32];
        snprintf(key, sizeof key, "%s%s", prefix, p->name);
        Tensor *want = dmd_find(fx, key);
        ck_assert_msg(p->tensor->grad != NULL, "%s on %s: %s has no gradient", what,
                      device_name(device), p->name);
        int64_t n = tensor_numel(want);
        ck_assert_int_eq(tensor_numel(p->tensor->grad), n);
        float *got = read_host(p->tensor->grad);
        double scale = max_abs(tensor_f32(want), n), diff = max_abs_diff(got, tensor_f32(want), n);
        worst = fmax(worst, diff);
        worst_rel = fmax(worst_rel, scale > 0 ? diff / scale : 0.0);
        char label[PARAM_NAME_MAX + 96];
        snprintf(label, sizeof label, "%s: d/d %s on %s", what, p->name, device_name(device));
        ASSERT_CLOSE(label, got, tensor_f32(want), n, tol * scale, 0.0);
        free(got);
        checked++;
    }
    ck_assert_msg(checked == stored, "%s: %d trainable parameters, the fixture has %d gradients",
                  what, checked, stored);
    printf("dmd step parity [%s] %-44s max |C - ref| %.3g, max over tensors of that / max |g| "
           "%.3g (tol %g x max |g|, %d tensors)\n",
           device_name(device), what, worst, worst_rel, tol, checked);
    fflush(stdout);
}

// What AdamW's first step does with a gradient g at clip factor c, over lr, besides the decay
static double first_step(double g, double eps_eff) { return g / (fabs(g) + eps_eff); }

// Every parameter with an entry after_prefix + name against it (trainable ones must have one):
// DMD_PARAM_ATOL plus lr times how far first_step can move within the gradient's bound
// (grad_tol times the tensor's max |g|, the gradient from grad_prefix + name); the clip factor
// comes from the reference's pre-clip norm `norm_name`.
static void dmd_check_after(const DmdFixture *fx, const char *what, Device device,
                            const ParamList *params, const char *after_prefix,
                            const char *grad_prefix, const char *norm_name, double lr,
                            double grad_tol) {
    double norm = tensor_f32(dmd_find(fx, norm_name))[0];
    double c = fx->opt.clip > 0.0f ? fmin(1.0, fx->opt.clip / (norm + 1e-6)) : 1.0;
    double eps_eff = fx->eps / c;
    double worst_determined = 0.0, worst = 0.0;
    int64_t loose = 0, total = 0;
    int tensors = 0;
    for (int i = 0; i < params->count; i++) {
        const Param *p = &params->items[i];
        char key[PARAM_NAME_MAX + 32], gkey[PARAM_NAME_MAX + 32];
        snprintf(key, sizeof key, "%s%s", after_prefix, p->name);
        Tensor *want = safetensors_find(&fx->st, key);
        ck_assert_msg(want || !p->trainable, "%s: no %s in the fixture", what, key);
        if (!want) continue;
        snprintf(gkey, sizeof gkey, "%s%s", grad_prefix, p->name);
        Tensor *grad = p->trainable ? dmd_find(fx, gkey) : NULL;
        int64_t n = tensor_numel(want);
        ck_assert_int_eq(tensor_numel(p->tensor), n);
        float *got = read_host(p->tensor);
        const float *ref = tensor_f32(want), *g = grad ? tensor_f32(grad) : NULL;
        double delta = g ? grad_tol * max_abs(g, n) : 0.0;
        for (int64_t j = 0; j < n; j++) {
            double allow = 0.0;
            if (g) {
                double f = first_step(g[j], eps_eff);
                allow = lr * fmax(fabs(first_step(g[j] + delta, eps_eff) - f),
                                  fabs(first_step(g[j] - delta, eps_eff) - f));
            }
            double diff = fabs((double)got[j] - (double)ref[j]);
            ck_assert_msg(diff <= DMD_PARAM_ATOL + allow,
                          "%s on %s: %s[%lld] after the step is %.9g, want %.9g (gradient %.3g, "
                          "bound %.3g)", what, device_name(device), p->name, (long long)j,
                          (double)got[j], (double)ref[j], g ? (double)g[j] : 0.0,
                          DMD_PARAM_ATOL + allow);
            worst = fmax(worst, diff);
            if (allow <= DMD_PARAM_ATOL) worst_determined = fmax(worst_determined, diff);
            else loose++;
        }
        total += n;
        tensors++;
        free(got);
    }
    printf("dmd step parity [%s] %-44s max |C - ref| %.3g where |g| >> its bound, %.3g over "
           "all %lld (%lld with a wider bound from their gradient's; atol %g)\n",
           device_name(device), what, worst_determined, worst, (long long)total,
           (long long)loose, DMD_PARAM_ATOL);
    fflush(stdout);
    ck_assert_int_gt(tensors, 0);
}

// The frozen weights of the score network did not move: still the teacher's
static void dmd_check_frozen(const DmdFixture *fx, const ParamList *params) {
    for (int i = 0; i < params->count; i++) {
        const Param *p = &params->items[i];
        if (p->trainable) continue;
        Tensor *want = dmd_find(fx, p->name);
        float *got = read_host(p->tensor);
        ck_assert_msg(memcmp(got, tensor_f32(want), (size_t)tensor_numel(want) * sizeof(float)) == 0,
                      "frozen %s of the score network changed", p->name);
        free(got);
    }
}

static void dmd_check_exact(const char *what, const float *got, const float *want, int64_t n) {
    printf("dmd step parity [cpu] %-44s max |C - ref| %.3g (exact)\n", what,
           max_abs_diff(got, want, n));
    fflush(stdout);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s[%lld]: dmdr draws %.9g, the fixture has %.9g", what,
                      (long long)i, (double)got[i], (double)want[i]);
}

static void dmd_check_normal(const DmdFixture *fx, const char *name, Rng *rng) {
    Tensor *got = tensor_normal(dmd_shape(fx), rng, 0.0f, 1.0f, DEVICE_CPU);
    Tensor *want = dmd_find(fx, name);
    dmd_check_exact(name, tensor_f32(got), tensor_f32(want), tensor_numel(want));
}

// The fixture's draws are dmdr's stream at its seed, in distiller_step's order on a generator
// turn: labels, the backward simulation's step indices, its chain's noise (some step is 1) and
// its eps, DynaRS times, the DMD re-noise, the CFG scales, the fake loss's times and noise; and
// the sampler's noise and re-noise from its own seed. This pins the script's Python twin of the
// stream, which the cases that run the library's own draws rely on.
START_TEST(test_dmd_step_draws) {
    DmdFixture fx;
    dmd_fixture_load(&fx);
    const DistillOptions *o = &fx.opt;
    int n = o->batch;
    Rng rng = rng_make(fx.stream_seed);
    const int32_t *y = tensor_i32(dmd_find(&fx, "draw.y")), *k = tensor_i32(dmd_find(&fx, "draw.k"));
    int deepest = 0;
    for (int i = 0; i < n; i++)
        ck_assert_int_eq((int32_t)rng_below(&rng, (uint64_t)fx.cfg.num_classes), y[i]);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq((int32_t)rng_below(&rng, (uint64_t)o->gen.steps), k[i]);
        if (k[i] > deepest) deepest = k[i];
    }
    ck_assert_int_eq(deepest, 1); // the chain runs one step, so it re-noises nothing
    dmd_check_normal(&fx, "draw.noise", &rng);
    dmd_check_normal(&fx, "draw.eps_bs", &rng);
    Tensor *t = dynars_sample_times(&o->dyna, 0, n, &rng, DEVICE_CPU, NULL);
    dmd_check_exact("draw.t_dmd", tensor_f32(t), tensor_f32(dmd_find(&fx, "draw.t_dmd")), n);
    dmd_check_normal(&fx, "draw.eps_dmd", &rng);
    Tensor *cfg = score_cfg_scales(n, o->real_cfg, o->cfg_jitter, &rng, DEVICE_CPU);
    ck_assert_ptr_nonnull(cfg);
    dmd_check_exact("draw.cfg", tensor_f32(cfg), tensor_f32(dmd_find(&fx, "draw.cfg")), n);
    t = dynars_sample_times(&o->dyna, 0, n, &rng, DEVICE_CPU, NULL);
    dmd_check_exact("draw.t_fake", tensor_f32(t), tensor_f32(dmd_find(&fx, "draw.t_fake")), n);
    dmd_check_normal(&fx, "draw.eps_fake", &rng);
    ck_assert_uint_eq(rng.offset, fx.stream_offset_after);
    Rng sample = rng_make(fx.sample_seed);
    dmd_check_normal(&fx, "draw.sample_noise", &sample);
    dmd_check_normal(&fx, "draw.sample_eps", &sample);
    // what the fixture covers: both backward-simulation steps, one CFG scale <= 1 (no guidance)
    int unguided = 0, k1 = 0;
    for (int i = 0; i < n; i++) {
        unguided += tensor_f32(cfg)[i] <= 1.0f;
        k1 += k[i] == 1;
    }
    ck_assert(unguided == 1 && k1 >= 1 && k1 < n);
    safetensors_free(&fx.st);
}
END_TEST

// The generator's time grid and its 2-step backward simulation: composed from the fixture's
// noise, steps and eps (x0_0 = z - G(z, 1), x_in = start + t_k (eps - start), x0 = x_in -
// t_k G(x_in, t_k)), then generator_backward_simulation itself from the distiller's stream
// after the labels.
START_TEST(test_dmd_step_backward_simulation) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    DmdFixture fx;
    dmd_fixture_load(&fx);
    int n = fx.opt.batch;
    float grid[3];
    ck_assert_int_eq(fx.opt.gen.steps, 2);
    generator_time_grid(&fx.opt.gen, grid);
    dmd_check_exact("grid", grid, tensor_f32(dmd_find(&fx, "grid")), 3);
    Model *g = dmd_model(&fx, device, false);
    Tensor *y = dmd_input(&fx, "draw.y", device);
    const int32_t *k = tensor_i32(dmd_find(&fx, "draw.k"));
    float *t_host = malloc((size_t)n * sizeof *t_host);
    ck_assert_ptr_nonnull(t_host);
    for (int i = 0; i < n; i++) t_host[i] = grid[k[i]];
    dmd_check_exact("bs.t_in", t_host, tensor_f32(dmd_find(&fx, "bs.t_in")), n);
    Tensor *t_in = tensor_from_floats(shape1(n), t_host, device);
    free(t_host);

    autograd_no_grad_begin();
    Tensor *x0_first = generator_x0(g, dmd_input(&fx, "draw.noise", device),
                                    tensor_full(shape1(n), grid[0], device), y);
    dmd_check(&fx, "bs.x0_first = z - G(z, 1)", device, x0_first, "bs.x0_first", DMD_X_ATOL, 0);
    Tensor *x_in = flow_interpolate(dmd_input(&fx, "bs.start", device),
                                    dmd_input(&fx, "draw.eps_bs", device), t_in);
    dmd_check(&fx, "bs.x_in", device, x_in, "bs.x_in", DMD_INTERP_ATOL, 0);
    autograd_no_grad_end();
    Tensor *x0 = generator_x0(g, dmd_input(&fx, "bs.x_in", device), t_in, y);
    ck_assert(x0->requires_grad);
    dmd_check(&fx, "bs.x0 = x_in - t G(x_in, t)", device, x0, "bs.x0", DMD_X_ATOL, 0);

    Rng rng = rng_make(fx.stream_seed);
    rng.offset = (uint64_t)n; // the labels' draws
    Tensor *x_in_lib, *t_in_lib;
    x0 = generator_backward_simulation(g, &fx.opt.gen, fx.opt.backsim, y, &rng, &x_in_lib,
                                       &t_in_lib);
    ck_assert(x0->requires_grad);
    float *t_lib = read_host(t_in_lib);
    dmd_check_exact("generator_backward_simulation t_in", t_lib,
                    tensor_f32(dmd_find(&fx, "bs.t_in")), n);
    free(t_lib);
    dmd_check(&fx, "generator_backward_simulation x_in", device, x_in_lib, "bs.x_in",
              DMD_INTERP_ATOL, 0);
    dmd_check(&fx, "generator_backward_simulation x0", device, x0, "bs.x0", DMD_X_ATOL, 0);
    model_free(g);
    safetensors_free(&fx.st);
}
END_TEST

// The 2-step sampler: composed (x0_0 = z - G(z, 1), x_1 = x0_0 + t_1 (eps - x0_0), x0_1 = x_1 -
// t_1 G(x_1, t_1)) on the fixture's z and eps, then generator_sample from the sampler's stream.
START_TEST(test_dmd_step_sampler) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    DmdFixture fx;
    dmd_fixture_load(&fx);
    int n = fx.opt.batch;
    float grid[3];
    generator_time_grid(&fx.opt.gen, grid);
    Model *g = dmd_model(&fx, device, false);
    Tensor *y = dmd_input(&fx, "draw.y", device);
    Tensor *ones = tensor_full(shape1(n), grid[0], device), *t1 = tensor_full(shape1(n), grid[1], device);
    autograd_no_grad_begin();
    dmd_check(&fx, "sample.x0_0", device,
              generator_x0(g, dmd_input(&fx, "draw.sample_noise", device), ones, y), "sample.x0_0",
              DMD_X_ATOL, 0);
    dmd_check(&fx, "sample.x_1", device,
              flow_interpolate(dmd_input(&fx, "sample.x0_0", device),
                               dmd_input(&fx, "draw.sample_eps", device), t1),
              "sample.x_1", DMD_INTERP_ATOL, 0);
    dmd_check(&fx, "sample.x0_1", device, generator_x0(g, dmd_input(&fx, "sample.x_1", device), t1, y),
              "sample.x0_1", DMD_X_ATOL, 0);
    autograd_no_grad_end();

    Rng rng = rng_make(fx.sample_seed);
    Tensor *z = tensor_to(tensor_normal(dmd_shape(&fx), &rng, 0.0f, 1.0f, DEVICE_CPU), device);
    Tensor *states[2], *x0s[2];
    Tensor *out = generator_sample(g, &fx.opt.gen, z, y, &rng, states, x0s);
    dmd_check(&fx, "generator_sample x0_0", device, x0s[0], "sample.x0_0", DMD_X_ATOL, 0);
    dmd_check(&fx, "generator_sample x_1", device, states[1], "sample.x_1", DMD_INTERP_ATOL, 0);
    dmd_check(&fx, "generator_sample x0_1", device, out, "sample.x0_1", DMD_X_ATOL, 0);
    model_free(g);
    safetensors_free(&fx.st);
}
END_TEST

// The real and fake scores on the shared LoRA network, the DMD gradient and loss, each from
// the fixture's inputs: x_t = x0 + t (eps - x0) at the DynaRS times; v_real = score_real at
// lambda_r(0) (unguided, then with the per-sample CFG scales), v_fake = score_fake at lambda_f;
// x0 = x_t - t v; grad = dmd_gradient(x0, x0_real, x0_fake); loss = dmd_loss(x0, grad).
START_TEST(test_dmd_step_scores_and_dmd_loss) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    DmdFixture fx;
    dmd_fixture_load(&fx);
    Model *net = dmd_model(&fx, device, true);
    Scores s = {.net = net, .fake = NULL, .fake_scale = fx.opt.fake_scale};
    Tensor *y = dmd_input(&fx, "draw.y", device), *t = dmd_input(&fx, "draw.t_dmd", device);
    float lambda_r = dynadg_real_scale(&fx.opt.dyna, 0);
    ck_assert(lambda_r == fx.opt.dyna.real_scale0);

    dmd_check(&fx, "dmd.x_t", device,
              flow_interpolate(dmd_input(&fx, "bs.x0", device),
                               dmd_input(&fx, "draw.eps_dmd", device), t),
              "dmd.x_t", DMD_INTERP_ATOL, 0);
    Tensor *x_t = dmd_input(&fx, "dmd.x_t", device);
    Tensor *v = score_real(&s, x_t, t, y, lambda_r, NULL);
    dmd_check(&fx, "dmd.v_real_cond (lambda_r, no CFG)", device, v, "dmd.v_real_cond",
              DMD_V_ATOL, 0);
    v = score_real(&s, x_t, t, y, lambda_r, dmd_input(&fx, "draw.cfg", device));
    ck_assert(!v->requires_grad);
    dmd_check(&fx, "dmd.v_real (lambda_r, CFG)", device, v, "dmd.v_real", DMD_V_ATOL, 0);
    dmd_check(&fx, "dmd.x0_real", device,
              flow_x0_from_velocity(x_t, dmd_input(&fx, "dmd.v_real", device), t), "dmd.x0_real",
              DMD_V_ATOL, 0);
    v = score_fake(&s, x_t, t, y);
    ck_assert(v->requires_grad);
    dmd_check(&fx, "dmd.v_fake (lambda_f)", device, v, "dmd.v_fake", DMD_V_ATOL, 0);
    dmd_check(&fx, "dmd.x0_fake", device,
              flow_x0_from_velocity(x_t, dmd_input(&fx, "dmd.v_fake", device), t), "dmd.x0_fake",
              DMD_V_ATOL, 0);

    Tensor *x0 = dmd_input(&fx, "bs.x0", device);
    int64_t nonfinite = -1;
    Tensor *grad = dmd_gradient(x0, dmd_input(&fx, "dmd.x0_real", device),
                                dmd_input(&fx, "dmd.x0_fake", device), &nonfinite);
    ck_assert_int_eq(nonfinite, 0);
    dmd_check(&fx, "dmd.grad", device, grad, "dmd.grad", DMD_GRAD_ATOL, 0);
    dmd_check(&fx, "dmd.loss", device, dmd_loss(x0, dmd_input(&fx, "dmd.grad", device)),
              "dmd.loss", 0, DMD_LOSS_RTOL);
    model_free(net);
    safetensors_free(&fx.st);
}
END_TEST

static AdamWConfig dmd_adamw(float weight_decay) {
    AdamWConfig c = adamw_config_default();
    c.weight_decay = weight_decay;
    return c;
}

// The generator's update: x0 = generator_x0(G, x_in, t_in, y) tracked, the DMD loss against
// the fixture's gradient, backward: every parameter's gradient; then adamw_step at the
// distiller's generator settings (lr, weight decay, clip): the pre-clip norm and every weight.
START_TEST(test_dmd_step_generator_update) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    DmdFixture fx;
    dmd_fixture_load(&fx);
    Model *g = dmd_model(&fx, device, false);
    AdamW opt;
    adamw_init(&opt, model_params(g), dmd_adamw(fx.opt.gen_weight_decay));
    Tensor *x0 = generator_x0(g, dmd_input(&fx, "bs.x_in", device),
                              dmd_input(&fx, "bs.t_in", device), dmd_input(&fx, "draw.y", device));
    Tensor *loss = dmd_loss(x0, dmd_input(&fx, "dmd.grad", device));
    dmd_check(&fx, "dmd.loss (tracked)", device, loss, "dmd.loss", 0, DMD_LOSS_RTOL);
    adamw_zero_grad(&opt);
    autograd_backward(loss, NULL);
    dmd_check_grads(&fx, "gen.grad.* (d L_DMD / d G)", device, model_params(g), "gen.grad.",
                    GEN_GRAD_TOL);
    double norm = adamw_step(&opt, fx.opt.gen_lr, fx.opt.clip);
    dmd_check_value(&fx, "gen.grad_norm (pre-clip)", device, norm, "gen.grad_norm", 0,
                    GEN_NORM_RTOL);
    dmd_check_after(&fx, "gen.after.* (one AdamW step)", device, model_params(g), "gen.after.",
                    "gen.grad.", "gen.grad_norm", fx.opt.gen_lr, GEN_GRAD_TOL);
    adamw_free(&opt);
    model_free(g);
    safetensors_free(&fx.st);
}
END_TEST

// The fake score's update on the pre-update x0: x_t at fresh DynaRS times, v = score_fake,
// loss mse(v, eps - x0), backward into the adapter only, adamw_step at the distiller's fake
// settings: loss, LoRA gradients, pre-clip norm, LoRA weights after; the base did not move.
START_TEST(test_dmd_step_fake_update) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    DmdFixture fx;
    dmd_fixture_load(&fx);
    Model *net = dmd_model(&fx, device, true);
    Scores s = {.net = net, .fake = NULL, .fake_scale = fx.opt.fake_scale};
    AdamW opt;
    adamw_init(&opt, model_params(net), dmd_adamw(fx.opt.fake_weight_decay));
    ck_assert_int_eq(opt.params.count, 2 * fx.cfg.depth * (fx.opt.lora.mlp ? 4 : 2));
    Tensor *x0 = dmd_input(&fx, "bs.x0", device), *t = dmd_input(&fx, "draw.t_fake", device);
    Tensor *eps = dmd_input(&fx, "draw.eps_fake", device);
    dmd_check(&fx, "fake.x_t", device, flow_interpolate(x0, eps, t), "fake.x_t", DMD_INTERP_ATOL, 0);
    Tensor *v = score_fake(&s, dmd_input(&fx, "fake.x_t", device), t,
                           dmd_input(&fx, "draw.y", device));
    dmd_check(&fx, "fake.v (lambda_f)", device, v, "fake.v", DMD_V_ATOL, 0);
    Tensor *loss = op_mse(v, op_sub(eps, x0));
    dmd_check(&fx, "fake.loss", device, loss, "fake.loss", 0, FAKE_LOSS_RTOL);
    adamw_zero_grad(&opt);
    autograd_backward(loss, NULL);
    dmd_check_grads(&fx, "fake.grad.* (d L_fake / d LoRA)", device, model_params(net),
                    "fake.grad.", FAKE_GRAD_TOL);
    double norm = adamw_step(&opt, fx.opt.fake_lr, fx.opt.clip);
    dmd_check_value(&fx, "fake.grad_norm (pre-clip)", device, norm, "fake.grad_norm", 0,
                    FAKE_NORM_RTOL);
    dmd_check_after(&fx, "fake.after.* (one AdamW step)", device, model_params(net),
                    "fake.after.", "fake.grad.", "fake.grad_norm", fx.opt.fake_lr, FAKE_GRAD_TOL);
    dmd_check_frozen(&fx, model_params(net));
    adamw_free(&opt);
    model_free(net);
    safetensors_free(&fx.st);
}
END_TEST

// distiller_step itself: a distiller made from the fixture's teacher at the fixture's seed,
// its adapter set to the fixture's A and B, on a generator turn (inner step = ratio, as after
// a resume there) at generator step 0. It draws exactly the fixture's values, so its losses,
// pre-clip norms, renoise time mean and both networks' weights afterwards must be the
// reference's, and its stream must end where the reference's does.
START_TEST(test_dmd_step_distiller_step) {
    Device device = (Device)_i;
    if (!backend_get(device)) return;
    DmdFixture fx;
    dmd_fixture_load(&fx);
    Model *teacher = dmd_model(&fx, device, false);
    Distiller d;
    Error err;
    ck_assert_msg(distiller_init(&d, &fx.opt, teacher, fx.stream_seed, &err) == 0, "%s", err.msg);
    model_free(teacher);
    ck_assert_msg(params_load(model_params(d.scores.net), fx.path, true, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(d.rng.offset, 0);
    d.inner_steps = d.opt.ratio; // a generator turn
    DistillStats st;
    distiller_step(&d, &st);
    ck_assert(st.generator_updated);
    ck_assert_int_eq(st.nonfinite, 0);
    ck_assert_uint_eq(d.rng.offset, fx.stream_offset_after);
    ck_assert(st.real_scale == (double)fx.opt.dyna.real_scale0);
    dmd_check_value(&fx, "distiller_step dmd_loss", device, st.dmd_loss, "dmd.loss", 0,
                    DMD_LOSS_RTOL);
    dmd_check_value(&fx, "distiller_step gen_grad_norm", device, st.gen_grad_norm,
                    "gen.grad_norm", 0, GEN_NORM_RTOL);
    dmd_check_value(&fx, "distiller_step fake_loss", device, st.fake_loss, "fake.loss", 0,
                    FAKE_LOSS_RTOL);
    dmd_check_value(&fx, "distiller_step fake_grad_norm", device, st.fake_grad_norm,
                    "fake.grad_norm", 0, FAKE_NORM_RTOL);
    dmd_check_value(&fx, "distiller_step renoise_t_mean", device, st.renoise_t_mean,
                    "fake.renoise_t_mean", 1e-7, 0);
    dmd_check_after(&fx, "distiller_step generator weights", device, model_params(d.generator),
                    "gen.after.", "gen.grad.", "gen.grad_norm", fx.opt.gen_lr, GEN_GRAD_TOL);
    dmd_check_after(&fx, "distiller_step LoRA weights", device, model_params(d.scores.net),
                    "fake.after.", "fake.grad.", "fake.grad_norm", fx.opt.fake_lr, FAKE_GRAD_TOL);
    dmd_check_frozen(&fx, model_params(d.scores.net));
    ck_assert_int_eq(distiller_generator_steps(&d), 1);
    distiller_free(&d);
    safetensors_free(&fx.st);
}
END_TEST

int main(void) {
    Suite *s = suite_create("parity");
    TCase *tc = tcase_create("dit");
    tcase_add_test(tc, test_state_dict_names_match);
    tcase_add_test(tc, test_pos_embed_matches);
    tcase_add_loop_test(tc, test_forward_and_loss_match, 0, DEVICE_COUNT);
    tcase_add_loop_test(tc, test_adamw_steps_match, 0, DEVICE_COUNT);
    suite_add_tcase(s, tc);
    TCase *dmd = test_scoped_tcase(s, "dmd_step");
    tcase_add_test(dmd, test_dmd_step_draws);
    tcase_add_loop_test(dmd, test_dmd_step_backward_simulation, 0, DEVICE_COUNT);
    tcase_add_loop_test(dmd, test_dmd_step_sampler, 0, DEVICE_COUNT);
    tcase_add_loop_test(dmd, test_dmd_step_scores_and_dmd_loss, 0, DEVICE_COUNT);
    tcase_add_loop_test(dmd, test_dmd_step_generator_update, 0, DEVICE_COUNT);
    tcase_add_loop_test(dmd, test_dmd_step_fake_update, 0, DEVICE_COUNT);
    tcase_add_loop_test(dmd, test_dmd_step_distiller_step, 0, DEVICE_COUNT);
    return test_run_suite(s);
}
