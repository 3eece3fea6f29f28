#include "dmdr/rl.h"

#include <math.h>
#include <stdlib.h>

#include "autograd/ops.h"
#include "kernels/check.h"
#include "tensor/dist.h"

const char *rl_algorithm_name(RlAlgorithm a) {
    return a == RL_NONE ? "none" : a == RL_BACKPROP ? "backprop" : a == RL_PPO ? "ppo" : "unknown";
}

const char *rl_regularizer_name(RlRegularizer r) {
    return r == RL_REG_DMD ? "dmd" : r == RL_REG_KL ? "kl" : r == RL_REG_NONE ? "none" : "unknown";
}

// mu, mu_ref (N, ...) -> (1): mean((mu - mu_ref)^2) / (2 sigma^2), tracked through mu
static Tensor *kl_penalty(Tensor *mu, Tensor *mu_ref, float sigma) {
    return op_mul_scalar(op_mse(mu, mu_ref), 0.5f / (sigma * sigma));
}

// The reference generator's x0 at the same inputs, untracked
static Tensor *reference_x0(RlStage *s, Tensor *x_in, Tensor *t_in, Tensor *y) {
    autograd_no_grad_begin();
    Tensor *x0 = generator_x0(s->reference, x_in, t_in, y);
    autograd_no_grad_end();
    return x0;
}

// Reward backpropagation on the generator's samples x0 (N, ...) -> (1)
static Tensor *backprop_loss(RlStage *s, Tensor *x_in, Tensor *t_in, Tensor *x0, Tensor *y,
                             DistillStats *st) {
    Tensor *loss = reward_loss(&s->reward, s->opt.reward_loss, s->opt.margin, x0, y,
                               &st->reward_mean);
    st->reward_mean = optim_average_value(st->reward_mean); // of the global batch
    if (!s->reference) return loss;
    Tensor *kl = kl_penalty(x0, reference_x0(s, x_in, t_in, y), s->opt.ppo.explore_std);
    st->kl = optim_average_value(tensor_item(kl));
    return op_add(loss, op_mul_scalar(kl, s->opt.kl_beta / s->opt.reward_weight));
}

// y (N) labels in groups of G: N / G labels drawn uniformly, each repeated G times
static Tensor *group_labels(RlStage *s, int64_t n) {
    int classes = model_config(s->d->generator)->num_classes, g = s->opt.ppo.group;
    int32_t *h = malloc((size_t)n * sizeof *h);
    DMDR_CHECK(h != NULL, "out of host memory");
    for (int64_t i = 0; i < n; i += g) {
        int32_t label = (int32_t)rng_below(&s->d->rng, (uint64_t)classes);
        for (int j = 0; j < g; j++) h[i + j] = label;
    }
    Tensor *y = tensor_from_ints(shape1(n), h, model_device(s->d->generator));
    free(h);
    return y;
}

// PPO on the current rollouts (refreshed every `epochs` updates) -> (1)
static Tensor *ppo_loss(RlStage *s, DistillStats *st) {
    if (tensor_f32(s->rollouts.progress)[0] == 0.0f) { // no updates left on this batch
        rollouts_free(&s->rollouts);
        ppo_rollout(s->d->generator, &s->d->opt.gen, &s->opt.ppo, &s->reward,
                    group_labels(s, s->d->opt.batch), &s->d->rng, &s->rollouts);
    }
    float *progress = tensor_f32(s->rollouts.progress); // updates left, reward mean, std
    progress[0] -= 1.0f;
    PpoStats ps;
    Tensor *mu[PPO_MAX_STEPS];
    Tensor *loss = ppo_policy_loss(s->d->generator, &s->rollouts, &s->opt.ppo, &ps, mu);
    st->reward_mean = progress[1];
    st->reward_std = progress[2];
    st->ratio_std = ps.ratio_std;
    st->clip_fraction = ps.clip_fraction;
    if (!s->reference) return loss;
    // per step, the policy means of the two generators at the rollout's states
    Tensor *kl = NULL;
    for (int k = 0; k < s->rollouts.steps; k++) {
        autograd_no_grad_begin();
        Tensor *mu_ref = ppo_policy_mean(s->reference, &s->rollouts, k);
        autograd_no_grad_end();
        Tensor *term = kl_penalty(mu[k], mu_ref, s->rollouts.sigma[k]);
        kl = kl ? op_add(kl, term) : term;
    }
    kl = op_mul_scalar(kl, 1.0f / (float)s->rollouts.steps);
    st->kl = tensor_item(kl);
    return op_add(loss, op_mul_scalar(kl, s->opt.kl_beta / s->opt.reward_weight));
}

static Tensor *stage_loss(void *ctx, Tensor *x_in, Tensor *t_in, Tensor *x0, Tensor *y,
                          DistillStats *st) {
    RlStage *s = ctx;
    return s->opt.algorithm == RL_PPO ? ppo_loss(s, st) : backprop_loss(s, x_in, t_in, x0, y, st);
}

int rl_stage_init(RlStage *s, const RlOptions *opt, Distiller *d, Reward reward, Error *err) {
    *s = (RlStage){.opt = *opt, .reward = reward, .d = d};
    if (d->extra.loss) return error_set(err, "rl: the trainer already has a stage attached");
    if (opt->algorithm != RL_BACKPROP && opt->algorithm != RL_PPO)
        return error_set(err, "rl: no algorithm (backprop or ppo) for stage 2");
    // PPO's groups of one label and its rollouts are not sharded over ranks (tensor/dist.h)
    if (opt->algorithm == RL_PPO && dist_size() > 1)
        return error_set(err, "rl: ppo runs on one process; started on %d ranks (reward "
                              "backprop runs on several)", dist_size());
    if (!(opt->reward_weight > 0))
        return error_set(err, "rl: reward_weight must be positive, got %g", (double)opt->reward_weight);
    if (opt->regularizer == RL_REG_KL && !(opt->ppo.explore_std > 0))
        return error_set(err, "rl: the KL penalty divides by the exploration std: it must be "
                              "positive, got %g", (double)opt->ppo.explore_std);
    if (opt->algorithm == RL_PPO && (opt->ppo.group < 1 || d->opt.batch % opt->ppo.group != 0 ||
                                     opt->ppo.epochs < 1 || !(opt->ppo.explore_std > 0)))
        return error_set(err, "rl: PPO needs a batch (%d) divisible by the group (%d), at least "
                              "one epoch and a positive exploration std",
                         d->opt.batch, opt->ppo.group);
    if (opt->algorithm == RL_PPO && d->opt.gen.steps > PPO_MAX_STEPS)
        return error_set(err, "rl: PPO takes generators of at most %d steps, not %d",
                         PPO_MAX_STEPS, d->opt.gen.steps);
    if (opt->regularizer == RL_REG_KL) {
        Rng rng = rng_make(0); // its draws are overwritten by the copy
        s->reference = model_clone(d->generator, &rng, err);
        if (!s->reference) return -1;
        params_set_trainable(model_params(s->reference), false); // read, never trained
    }
    if (opt->algorithm == RL_PPO) // an empty batch: the first step draws one
        rollouts_zeros(d->generator, &d->opt.gen, &opt->ppo, d->opt.batch, &s->rollouts);
    // the KL penalty is added inside the extra loss, which d weights by w_r: hence the
    // beta / w_r factors above, so that L_gen = w_r L_reward + beta KL
    d->opt.dmd = opt->regularizer == RL_REG_DMD;
    d->extra = (GeneratorExtraLoss){stage_loss, s, opt->reward_weight,
                                    .reads_samples = opt->algorithm == RL_BACKPROP};
    return 0;
}

void rl_stage_checkpoint(RlStage *s, Checkpoint *ck) {
    if (s->reference)
        checkpoint_add_part(ck, (CheckpointPart){"reference.", model_config(s->reference),
                                      model_params(s->reference), NULL, NULL});
    if (!s->rollouts.y) return; // not PPO
    s->rollout_params.count = 0;
    rollouts_params(&s->rollouts, &s->rollout_params);
    checkpoint_add_part(ck, (CheckpointPart){"ppo.", NULL, &s->rollout_params, NULL, NULL});
}

void rl_stage_free(RlStage *s) {
    rollouts_free(&s->rollouts);
    params_free(&s->rollout_params);
    model_free(s->reference);
    if (s->d && s->d->extra.ctx == s) s->d->extra = (GeneratorExtraLoss){0};
    *s = (RlStage){0};
}
