// PPO on the K-step generator (docs/algorithm.md section 6; DDPO / GRPO's clipped policy
// gradient). Step k of the stochastic sampler is the Gaussian policy
//   pi(x_{k+1} | x_k) = N((1 - t_{k+1}) x0_theta(x_k, t_k), t_{k+1}^2 I),
// and the last step, deterministic in the sampler, samples x0 + sigma_exp xi (the only step
// when K = 1), so every step has a likelihood. Rewards are normalised within groups of samples
// of one label; log-probabilities are averaged over pixels, which keeps ratios near 1 and
// calls for a small clip range.
#pragma once

#include <stdint.h>

#include "dmdr/generator.h"
#include "dmdr/reward.h"

#define PPO_MAX_STEPS 8

typedef struct {
    int group;         // samples per label sharing a baseline (G)
    int epochs;        // policy updates per batch of rollouts
    float clip_eps;    // ratio clip range (1e-4 .. 1e-3)
    float explore_std; // sigma_exp of the last step
    float adv_clamp;   // advantages clamped to [-c, c] (5)
} PpoOptions;

PpoOptions ppo_defaults(void); // group 8, 2 epochs, eps 1e-3, sigma_exp 0.05, clamp 5

// A batch of rollouts: per step k the state, the action taken from it (the next state, or
// the final sample), the policy's std and the old policy's log-probabilities. Owned (retained).
typedef struct {
    int steps;
    int64_t n;
    Tensor *y;                                 // (N) labels, G consecutive rows per label
    Tensor *states[PPO_MAX_STEPS];             // x_k (N, ...)
    Tensor *actions[PPO_MAX_STEPS];            // x_{k+1}, or the final sample (N, ...)
    Tensor *times[PPO_MAX_STEPS];              // t_k (N)
    Tensor *logp_old[PPO_MAX_STEPS];           // (N)
    float sigma[PPO_MAX_STEPS];                // the policy std of step k
    float weight[PPO_MAX_STEPS];               // its mean is weight * x0 (1 - t_{k+1}, or 1 last)
    Tensor *advantages;                        // (N)
    // (3) F32 on the host: updates left on this batch, the mean and std of its final samples'
    // rewards; a tensor, so that a checkpoint saves it with the batch
    Tensor *progress;
} Rollouts;

// r (n) in groups of `group` consecutive rows -> adv (n): (r - group mean) / (group std +
// 1e-6), the population std, clamped to [-clamp, clamp]. n must be a multiple of group.
void ppo_group_advantages(const float *r, int64_t n, int group, float clamp, float *adv);

// mu, action (N, ...), sigma -> (N): the Gaussian log-density of the action averaged over its
// elements, -((a - mu) / sigma)^2 / 2 - log sigma - log(2 pi) / 2, tracked through mu.
Tensor *ppo_log_prob(Tensor *mu, Tensor *action, float sigma);

typedef struct {
    double ratio_std, clip_fraction; // over samples, averaged over steps
} PpoStats;

// logp, logp_old, adv (N) -> (1): mean(max(-A rho, -A clip(rho, 1 - eps, 1 + eps))),
// rho = exp(logp - logp_old); stats (may be NULL) filled with rho's spread and clipped share.
Tensor *ppo_clipped_loss(Tensor *logp, Tensor *logp_old, Tensor *adv, float eps, PpoStats *stats);

// Rolls the policy out, untracked, from fresh noise for labels y (N, a multiple of the group)
// and scores the final samples -> *out (freed with rollouts_free), o->epochs updates left.
void ppo_rollout(Model *g, const GeneratorOptions *gen, const PpoOptions *o, const Reward *r,
                 Tensor *y, Rng *rng, Rollouts *out);
void rollouts_free(Rollouts *ro);
// Rollouts of the shapes ppo_rollout gives for n samples of g, every tensor zero (so no
// updates left): a stage's batch before its first rollout, what a resume loads into.
void rollouts_zeros(Model *g, const GeneratorOptions *gen, const PpoOptions *o, int64_t n,
                    Rollouts *out);
// Appends the rollout tensors to out as "y", "advantages", "progress", "states.<k>",
// "actions.<k>", "times.<k>", "logp_old.<k>" (not trainable): the checkpoint part they go in.
void rollouts_params(Rollouts *ro, ParamList *out);

// The policy mean of step k of the current generator at the rollout's states (N, ...),
// tracked to G. The sampler's re-noise weight (1 - t_{k+1}) for k < K - 1; x0 itself last.
Tensor *ppo_policy_mean(Model *g, const Rollouts *ro, int k);

// The PPO loss of the current generator on the rollouts, averaged over steps -> (1), tracked.
// means (ro->steps) or NULL: gets each step's tracked policy mean, for a penalty on the same
// forward passes (the KL regulariser) instead of a second run of the generator.
Tensor *ppo_policy_loss(Model *g, const Rollouts *ro, const PpoOptions *o, PpoStats *stats,
                        Tensor **means);
