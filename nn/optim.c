// AdamW with clipping folded into its fused kernel, the learning-rate schedule, and the EMA.
// Each works tensor by tensor through the backend of the tensor's device, so the same code
// steps a CPU or a GPU model and the state never leaves the device.
#include "nn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/autograd.h"
#include "kernels/check.h"
#include "tensor/dist.h"

// Zeros shaped like t (or a copy of t), on its device, outliving the caller's scope: state
// owned by the optimiser or the EMA.
static Tensor *state_tensor(const Tensor *t, bool copy_values) {
    tensor_scope_begin();
    Tensor *s = tensor_retain(copy_values ? tensor_clone(t) : tensor_zeros(t->shape, t->device));
    tensor_scope_end();
    return s;
}

static void release_all(Tensor **ts, int n) {
    for (int i = 0; ts && i < n; i++) tensor_release(ts[i]);
    free(ts);
}

// ---- AdamW --------------------------------------------------------------------------------------

AdamWConfig adamw_config_default(void) {
    return (AdamWConfig){.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
}

void adamw_init(AdamW *opt, const ParamList *params, AdamWConfig cfg) {
    DMDR_CHECK(cfg.beta1 >= 0.0f && cfg.beta1 < 1.0f && cfg.beta2 >= 0.0f && cfg.beta2 < 1.0f,
               "adamw: betas (%g, %g) outside [0, 1)", cfg.beta1, cfg.beta2);
    *opt = (AdamW){.cfg = cfg};
    for (int i = 0; i < params->count; i++)
        if (params->items[i].trainable)
            params_add(&opt->params, NULL, params->items[i].name, params->items[i].tensor, true);
    int n = opt->params.count;
    opt->m = calloc((size_t)n + 1, sizeof *opt->m);
    opt->v = calloc((size_t)n + 1, sizeof *opt->v);
    opt->steps = calloc((size_t)n + 1, sizeof *opt->steps);
    DMDR_CHECK(opt->m && opt->v && opt->steps, "out of host memory");
    for (int i = 0; i < n; i++) {
        const Tensor *p = opt->params.items[i].tensor;
        DMDR_CHECK(p->dtype == DTYPE_F32, "adamw: parameter '%s' is %s, not F32",
                   opt->params.items[i].name, dtype_name(p->dtype));
        opt->m[i] = state_tensor(p, false);
        opt->v[i] = state_tensor(p, false);
    }
}

void adamw_free(AdamW *opt) {
    release_all(opt->m, opt->params.count);
    release_all(opt->v, opt->params.count);
    free(opt->steps);
    params_free(&opt->params);
    *opt = (AdamW){0};
}

// sum_squares takes one backend's pointers, so the tensors are summed device by device.
double tensors_sum_squares(Tensor *const *ts, int count) {
    const float **xs = malloc((size_t)(count + 1) * sizeof *xs);
    int64_t *ns = malloc((size_t)(count + 1) * sizeof *ns);
    DMDR_CHECK(xs && ns, "out of host memory");
    double total = 0.0;
    for (int d = 0; d < DEVICE_COUNT; d++) {
        int n = 0;
        for (int i = 0; i < count; i++) {
            if (ts[i]->device != (Device)d) continue;
            xs[n] = tensor_f32(ts[i]);
            ns[n++] = tensor_numel(ts[i]);
        }
        const Backend *be = backend_get((Device)d);
        if (n) total += be->sum_squares(be, xs, ns, n);
    }
    free(xs);
    free(ns);
    return total;
}

double optim_grad_norm(const ParamList *params) {
    Tensor **grads = malloc((size_t)(params->count + 1) * sizeof *grads);
    DMDR_CHECK(grads != NULL, "out of host memory");
    int count = 0;
    for (int i = 0; i < params->count; i++)
        if (params->items[i].trainable && params->items[i].tensor->grad)
            grads[count++] = params->items[i].tensor->grad;
    double total = tensors_sum_squares(grads, count);
    free(grads);
    return sqrt(total);
}

// clip_grad_norm_'s factor, in its float arithmetic: max_norm / (norm + 1e-6) is evaluated by
// PyTorch as reciprocal(norm + 1e-6) * max_norm, then clamped to at most 1.
static float clip_scale(double norm, float clip_norm) {
    if (clip_norm <= 0.0f) return 1.0f;
    float coef = (1.0f / ((float)norm + 1e-6f)) * clip_norm;
    return coef < 1.0f ? coef : 1.0f;
}

double adamw_step(AdamW *opt, float lr, float clip_norm) {
    double norm = optim_grad_norm(&opt->params);
    float grad_scale = clip_scale(norm, clip_norm);
    const AdamWConfig *c = &opt->cfg;
    for (int i = 0; i < opt->params.count; i++) {
        Tensor *p = opt->params.items[i].tensor, *g = p->grad;
        if (!g) continue;
        DMDR_CHECK(tensor_numel(g) == tensor_numel(p) && g->device == p->device,
                   "adamw: gradient of '%s' does not match the parameter",
                   opt->params.items[i].name);
        int64_t step = ++opt->steps[i];
        // 1 - beta^step in double, as PyTorch computes it in Python floats
        AdamWStep s = {
            .lr = lr,
            .beta1 = c->beta1,
            .beta2 = c->beta2,
            .eps = c->eps,
            .weight_decay = c->weight_decay,
            .bias_correction1 = (float)(1.0 - pow((double)c->beta1, (double)step)),
            .bias_correction2 = (float)(1.0 - pow((double)c->beta2, (double)step)),
            .grad_scale = grad_scale,
        };
        const Backend *be = tensor_backend(p);
        be->adamw(be, tensor_f32(p), tensor_f32(g), tensor_f32(opt->m[i]), tensor_f32(opt->v[i]),
                  tensor_numel(p), &s);
    }
    opt->step++;
    return norm;
}

void adamw_zero_grad(AdamW *opt) {
    for (int i = 0; i < opt->params.count; i++) tensor_zero_grad(opt->params.items[i].tensor);
}

// ---- learning-rate schedule ------------------------------------------------------------------

float lr_schedule(const LrSchedule *s, int64_t step) {
    DMDR_CHECK(step >= 0 && s->warmup_steps >= 0, "lr_schedule: step %lld, warm-up %lld",
               (long long)step, (long long)s->warmup_steps);
    if (step < s->warmup_steps) return (float)((double)s->base_lr * (double)(step + 1) /
                                               (double)s->warmup_steps);
    if (s->decay == LR_CONSTANT) return s->base_lr;
    DMDR_CHECK(s->decay == LR_COSINE, "lr_schedule: unknown decay %d", (int)s->decay);
    int64_t span = s->total_steps - s->warmup_steps;
    double progress = (double)(step - s->warmup_steps) / (double)(span > 1 ? span : 1);
    if (progress > 1.0) progress = 1.0;
    double lo = s->min_lr, hi = s->base_lr;
    return (float)(lo + (hi - lo) * 0.5 * (1.0 + cos(M_PI * progress)));
}

// ---- EMA ---------------------------------------------------------------------------------------

void ema_init(Ema *ema, const ParamList *params) {
    *ema = (Ema){0};
    for (int i = 0; i < params->count; i++) {
        const Param *p = &params->items[i];
        if (!p->trainable) continue;
        DMDR_CHECK(p->tensor->dtype == DTYPE_F32, "ema: parameter '%s' is not F32", p->name);
        params_add(&ema->shadows, NULL, p->name, state_tensor(p->tensor, true), true);
    }
}

void ema_free(Ema *ema) {
    for (int i = 0; i < ema->shadows.count; i++) tensor_release(ema->shadows.items[i].tensor);
    params_free(&ema->shadows);
}

// Calls fn on each (shadow, parameter) pair: the trainable entries of params, in order, must be
// the ones the EMA was made from.
static void for_each_pair(const Ema *ema, const ParamList *params,
                          void (*fn)(Tensor *shadow, Tensor *param, float arg), float arg) {
    int j = 0;
    for (int i = 0; i < params->count; i++) {
        const Param *p = &params->items[i];
        if (!p->trainable) continue;
        const Param *s = j < ema->shadows.count ? &ema->shadows.items[j] : NULL;
        DMDR_CHECK(s && strcmp(s->name, p->name) == 0 &&
                       tensor_numel(s->tensor) == tensor_numel(p->tensor) &&
                       s->tensor->device == p->tensor->device,
                   "ema: parameter '%s' is not the EMA's entry %d ('%s')", p->name, j,
                   s ? s->name : "none");
        fn(s->tensor, p->tensor, arg);
        j++;
    }
    DMDR_CHECK(j == ema->shadows.count, "ema: %d trainable parameters, the EMA tracks %d", j,
               ema->shadows.count);
}

// shadow (n) = decay * shadow + (1 - decay) * param, with a scratch tensor for the second term
static void ema_blend(Tensor *shadow, Tensor *param, float decay) {
    const Backend *be = tensor_backend(shadow);
    int64_t n = tensor_numel(shadow);
    tensor_scope_begin();
    Tensor *scaled = tensor_empty(shadow->shape, DTYPE_F32, shadow->device);
    // 1 - decay is exact in float for decay >= 0.5 (Sterbenz's lemma)
    be->scalar(be, SCALAR_MUL, tensor_f32(scaled), tensor_f32(param), 1.0f - decay, n);
    be->scalar(be, SCALAR_MUL, tensor_f32(shadow), tensor_f32(shadow), decay, n);
    Broadcast flat = {{1, 1, 1, n}, {n, n, n, 1}, {n, n, n, 1}};
    be->binary(be, BINARY_ADD, tensor_f32(shadow), tensor_f32(shadow), tensor_f32(scaled), &flat);
    tensor_scope_end();
}

static void copy_shadow(Tensor *shadow, Tensor *param, float unused) {
    (void)unused;
    tensor_copy_into(param, shadow);
}

static void swap_values(Tensor *shadow, Tensor *param, float unused) {
    (void)unused;
    tensor_scope_begin();
    Tensor *saved = tensor_clone(param);
    tensor_copy_into(param, shadow);
    tensor_copy_into(shadow, saved);
    tensor_scope_end();
}

void ema_update(Ema *ema, const ParamList *params, float decay) {
    DMDR_CHECK(decay >= 0.0f && decay <= 1.0f, "ema: decay %g outside [0, 1]", decay);
    for_each_pair(ema, params, ema_blend, decay);
}

void ema_copy_to(const Ema *ema, const ParamList *params) {
    for_each_pair(ema, params, copy_shadow, 0.0f);
}

void ema_swap(Ema *ema, const ParamList *params) { for_each_pair(ema, params, swap_values, 0.0f); }

// ---- data parallelism ------------------------------------------------------------------------

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double optim_average_gradients(const ParamList *params) {
    if (dist_size() == 1) return 0.0;
    double start = seconds_now();
    // which parameters have a gradient must agree, or the packed buffers would not line up
    int64_t total = 0;
    double present = 0;
    for (int i = 0; i < params->count; i++) {
        const Param *p = &params->items[i];
        if (!p->trainable || !p->tensor->grad) continue;
        total += tensor_numel(p->tensor->grad);
        present += (double)(i + 1) * (double)(i + 1);
    }
    DMDR_CHECK(dist_agree(present), "data parallel: the ranks hold gradients of different "
                                    "parameters (a rank-dependent forward)");
    // one buffer for every gradient on their device, kept across steps: a single all-reduce
    // per step (NCCL on a CUDA build with it, else MPI; tensor/dist.h)
    const Backend *be = NULL;
    for (int i = 0; i < params->count && !be; i++)
        if (params->items[i].trainable && params->items[i].tensor->grad)
            be = tensor_backend(params->items[i].tensor->grad);
    if (!be) return seconds_now() - start;
    static const Backend *buffer_be;
    static float *buffer;
    static int64_t capacity;
    if (total > capacity || be != buffer_be) {
        if (buffer) buffer_be->free(buffer_be, buffer);
        buffer = be->alloc(be, (size_t)total * sizeof *buffer);
        DMDR_CHECK(buffer != NULL, "out of %s memory for %lld gradient values", be->name,
                   (long long)total);
        capacity = total, buffer_be = be;
    }
    for (int unpack = 0; unpack < 2; unpack++) {
        int64_t at = 0;
        for (int i = 0; i < params->count; i++) {
            const Param *p = &params->items[i];
            if (!p->trainable || !p->tensor->grad) continue;
            Tensor *g = p->tensor->grad;
            DMDR_CHECK(tensor_backend(g) == be, "data parallel: gradients on two devices");
            size_t bytes = (size_t)tensor_numel(g) * sizeof(float);
            if (unpack) be->copy(be, tensor_data(g), buffer + at, bytes);
            else be->copy(be, buffer + at, tensor_data(g), bytes);
            at += tensor_numel(g);
        }
        if (!unpack) dist_sum_on(be, buffer, total, 1.0f / (float)dist_size());
    }
    return seconds_now() - start;
}

double optim_average_value(double value) {
    dist_sum_f64(&value, 1);
    return value / dist_size();
}

TrainStepStats optim_train_step(AdamW *opt, const LrSchedule *sched, float clip, Ema *ema,
                                float ema_decay, Tensor *loss) {
    TrainStepStats st = {.lr = lr_schedule(sched, opt->step)};
    adamw_zero_grad(opt);
    autograd_backward(loss, NULL);
    st.allreduce_s = optim_average_gradients(&opt->params);
    st.grad_norm = adamw_step(opt, st.lr, clip);
    if (ema) ema_update(ema, &opt->params, ema_decay);
    st.loss = (float)optim_average_value(tensor_item(loss));
    return st;
}
