#include "dmdr/ppo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/ops.h"
#include "diffusion/flow.h"
#include "kernels/check.h"

PpoOptions ppo_defaults(void) {
    return (PpoOptions){.group = 8, .epochs = 2, .clip_eps = 1e-3f, .explore_std = 0.05f,
                        .adv_clamp = 5.0f};
}

void ppo_group_advantages(const float *r, int64_t n, int group, float clamp, float *adv) {
    DMDR_CHECK(group >= 1 && n % group == 0, "ppo: %lld rewards in groups of %d", (long long)n,
               group);
    for (int64_t start = 0; start < n; start += group) {
        double mean = 0, var = 0;
        for (int i = 0; i < group; i++) mean += r[start + i];
        mean /= group;
        for (int i = 0; i < group; i++) var += (r[start + i] - mean) * (r[start + i] - mean);
        double std = sqrt(var / group);
        for (int i = 0; i < group; i++) {
            double a = (r[start + i] - mean) / (std + 1e-6);
            adv[start + i] = (float)fmax(-clamp, fmin(clamp, a));
        }
    }
}

// mu, action (N, ...) -> (N)
Tensor *ppo_log_prob(Tensor *mu, Tensor *action, float sigma) {
    DMDR_CHECK(sigma > 0, "ppo: policy std %g", (double)sigma);
    Tensor *z = op_mul_scalar(op_sub(action, mu), 1.0f / sigma);
    Tensor *mean_sq = op_mean(op_square(z), flow_sample_dims(z), false);
    return op_add_scalar(op_mul_scalar(mean_sq, -0.5f),
                         -logf(sigma) - 0.5f * logf(2.0f * (float)M_PI));
}

// rho (N) host -> stats
static void ratio_stats(const Tensor *rho, float eps, PpoStats *st) {
    int64_t n = tensor_numel(rho);
    float *h = malloc((size_t)n * sizeof *h);
    DMDR_CHECK(h != NULL, "out of host memory");
    tensor_read(rho, h);
    double sum = 0, sq = 0;
    int64_t clipped = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += h[i], sq += (double)h[i] * h[i];
        clipped += fabsf(h[i] - 1.0f) > eps;
    }
    double mean = sum / (double)n;
    st->ratio_std = sqrt(fmax(0.0, sq / (double)n - mean * mean));
    st->clip_fraction = (double)clipped / (double)n;
    free(h);
}

// logp, logp_old, adv (N) -> (1)
Tensor *ppo_clipped_loss(Tensor *logp, Tensor *logp_old, Tensor *adv, float eps, PpoStats *stats) {
    Tensor *rho = op_exp(op_sub(logp, logp_old));
    if (stats) ratio_stats(rho, eps, stats);
    Tensor *neg_adv = op_neg(adv);
    Tensor *unclipped = op_mul(neg_adv, rho);
    Tensor *clipped = op_mul(neg_adv, op_clamp(rho, 1.0f - eps, 1.0f + eps));
    return op_mean_all(op_maximum(unclipped, clipped));
}


// The policy std and mean weight of step k on grid t: (t_{k+1}, 1 - t_{k+1}) before the last
// step, (sigma_exp, 1) at it
static void step_policy(const float *grid, int k, int steps, float explore, float *sigma,
                        float *weight) {
    bool last = k == steps - 1;
    *sigma = last ? explore : grid[k + 1];
    *weight = last ? 1.0f : 1.0f - grid[k + 1];
}

// *out emptied, with the step count, batch, grid (K + 1) and each step's sigma and weight
static void rollouts_begin(const GeneratorOptions *gen, const PpoOptions *o, int64_t n,
                           float *grid, Rollouts *out) {
    DMDR_CHECK(gen->steps <= PPO_MAX_STEPS, "ppo: at most %d generator steps", PPO_MAX_STEPS);
    generator_time_grid(gen, grid);
    *out = (Rollouts){.steps = gen->steps, .n = n};
    for (int k = 0; k < gen->steps; k++)
        step_policy(grid, k, gen->steps, o->explore_std, &out->sigma[k], &out->weight[k]);
}

void ppo_rollout(Model *g, const GeneratorOptions *gen, const PpoOptions *o, const Reward *r,
                 Tensor *y, Rng *rng, Rollouts *out) {
    float grid[PPO_MAX_STEPS + 1];
    int64_t n = y->shape.dim[0];
    Device device = y->device;
    rollouts_begin(gen, o, n, grid, out);
    out->y = tensor_retain(y);
    autograd_no_grad_begin();
    tensor_scope_begin();
    Tensor *x = tensor_normal(model_data_shape(g, n), rng, 0.0f, 1.0f, device);
    for (int k = 0; k < gen->steps; k++) {
        Tensor *t = tensor_full(shape1(n), grid[k], device);
        Tensor *mu = op_mul_scalar(generator_x0(g, x, t, y), out->weight[k]);
        Tensor *action = op_add(mu, tensor_normal(mu->shape, rng, 0.0f, out->sigma[k], device));
        out->states[k] = tensor_retain(x);
        out->actions[k] = tensor_retain(action);
        out->times[k] = tensor_retain(t);
        out->logp_old[k] = tensor_retain(ppo_log_prob(mu, action, out->sigma[k]));
        x = action;
    }
    Tensor *reward = r->score(r->ctx, x, y);
    float *rh = malloc((size_t)n * sizeof *rh), *adv = malloc((size_t)n * sizeof *adv);
    DMDR_CHECK(rh && adv, "out of host memory");
    tensor_read(reward, rh);
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) sum += rh[i], sq += (double)rh[i] * rh[i];
    double mean = sum / (double)n;
    const float progress[3] = {(float)o->epochs, (float)mean,
                               (float)sqrt(fmax(0.0, sq / (double)n - mean * mean))};
    out->progress = tensor_retain(tensor_from_floats(shape1(3), progress, DEVICE_CPU));
    ppo_group_advantages(rh, n, o->group, o->adv_clamp, adv);
    out->advantages = tensor_retain(tensor_from_floats(shape1(n), adv, device));
    free(rh);
    free(adv);
    tensor_scope_end();
    autograd_no_grad_end();
}

void rollouts_zeros(Model *g, const GeneratorOptions *gen, const PpoOptions *o, int64_t n,
                    Rollouts *out) {
    float grid[PPO_MAX_STEPS + 1];
    rollouts_begin(gen, o, n, grid, out);
    Device device = model_device(g);
    tensor_scope_begin();
    int32_t *labels = calloc((size_t)n, sizeof *labels);
    DMDR_CHECK(labels != NULL, "out of host memory");
    out->y = tensor_retain(tensor_from_ints(shape1(n), labels, device));
    free(labels);
    out->advantages = tensor_retain(tensor_zeros(shape1(n), device));
    out->progress = tensor_retain(tensor_zeros(shape1(3), DEVICE_CPU));
    for (int k = 0; k < gen->steps; k++) {
        out->states[k] = tensor_retain(tensor_zeros(model_data_shape(g, n), device));
        out->actions[k] = tensor_retain(tensor_zeros(model_data_shape(g, n), device));
        out->times[k] = tensor_retain(tensor_zeros(shape1(n), device));
        out->logp_old[k] = tensor_retain(tensor_zeros(shape1(n), device));
    }
    tensor_scope_end();
}

void rollouts_params(Rollouts *ro, ParamList *out) {
    char name[PARAM_NAME_MAX];
    params_add(out, NULL, "y", ro->y, false);
    params_add(out, NULL, "advantages", ro->advantages, false);
    params_add(out, NULL, "progress", ro->progress, false);
    struct {
        const char *name;
        Tensor **per_step;
    } lists[] = {{"states", ro->states}, {"actions", ro->actions}, {"times", ro->times},
                 {"logp_old", ro->logp_old}};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        for (int k = 0; k < ro->steps; k++) {
            snprintf(name, sizeof name, "%s.%d", lists[i].name, k);
            params_add(out, NULL, name, lists[i].per_step[k], false);
        }
}

void rollouts_free(Rollouts *ro) {
    tensor_release(ro->y);
    tensor_release(ro->advantages);
    tensor_release(ro->progress);
    for (int k = 0; k < ro->steps; k++) {
        tensor_release(ro->states[k]);
        tensor_release(ro->actions[k]);
        tensor_release(ro->times[k]);
        tensor_release(ro->logp_old[k]);
    }
    *ro = (Rollouts){0};
}

// -> (N, ...)
Tensor *ppo_policy_mean(Model *g, const Rollouts *ro, int k) {
    Tensor *x0 = generator_x0(g, ro->states[k], ro->times[k], ro->y);
    return ro->weight[k] == 1.0f ? x0 : op_mul_scalar(x0, ro->weight[k]);
}

// -> (1)
Tensor *ppo_policy_loss(Model *g, const Rollouts *ro, const PpoOptions *o, PpoStats *stats,
                        Tensor **means) {
    Tensor *total = NULL;
    PpoStats sum = {0};
    for (int k = 0; k < ro->steps; k++) {
        PpoStats st;
        Tensor *mu = ppo_policy_mean(g, ro, k);
        if (means) means[k] = mu;
        Tensor *logp = ppo_log_prob(mu, ro->actions[k], ro->sigma[k]);
        Tensor *loss = ppo_clipped_loss(logp, ro->logp_old[k], ro->advantages, o->clip_eps, &st);
        total = total ? op_add(total, loss) : loss;
        sum.ratio_std += st.ratio_std / ro->steps;
        sum.clip_fraction += st.clip_fraction / ro->steps;
    }
    if (stats) *stats = sum;
    return ro->steps > 1 ? op_mul_scalar(total, 1.0f / (float)ro->steps) : total;
}
