// Stage 2 of DMDR (docs/algorithm.md section 6): reinforcement learning on the generator,
//   L_gen = L_DMD + w_r L_reward,
// with the RL algorithm and the regulariser chosen independently:
//   algorithm   backprop: the reward loss of the generator's (backward-simulated) samples,
//                         differentiated through the reward model ("ReFL");
//               ppo:      the clipped policy gradient over the K-step stochastic sampler,
//                         several epochs per batch of rollouts (dmdr/ppo.h);
//   regulariser dmd:  the DMD loss and its fake score stay on (DMDR);
//               kl:   instead, beta * mean((mu_theta - mu_ref)^2) / (2 sigma^2) against the
//                     frozen generator this stage started from, at the same inputs (for
//                     backprop the policy is the generator's output with sigma = sigma_exp);
//               none: the reward alone (where reward hacking shows).
// The stage plugs into the DMD trainer as its generator's extra loss.
#pragma once

#include "dmdr/distill.h"
#include "dmdr/ppo.h"
#include "dmdr/reward.h"

// RL_NONE: no stage 2 (the command line's default; rl_stage_init refuses it).
typedef enum { RL_NONE, RL_BACKPROP, RL_PPO, RL_ALGORITHM_COUNT } RlAlgorithm;
typedef enum { RL_REG_DMD, RL_REG_KL, RL_REG_NONE, RL_REGULARIZER_COUNT } RlRegularizer;

const char *rl_algorithm_name(RlAlgorithm a);   // "backprop", "ppo"
const char *rl_regularizer_name(RlRegularizer r); // "dmd", "kl", "none"

typedef struct {
    RlAlgorithm algorithm;
    RlRegularizer regularizer;
    float reward_weight; // w_r
    RewardLoss reward_loss;
    float margin;        // of the hinge form
    PpoOptions ppo;
    float kl_beta;
} RlOptions;

typedef struct {
    RlOptions opt;
    Reward reward;
    Distiller *d;
    Model *reference; // the frozen starting generator (KL), or NULL
    Rollouts rollouts;        // PPO: the batch in use (zeros before the first), else empty
    ParamList rollout_params; // the rollouts as the checkpoint's "ppo." part
} RlStage;

// Hooks the stage into d (d->extra, and d->opt.dmd off unless the regulariser is DMD); the
// reward's model must outlive the stage. The KL reference is a copy of d's generator as it is
// now: attach to a trainer holding the generator stage 2 starts from, and on resuming load
// the checkpoint after attaching (rl_stage_checkpoint adds the reference to it). Returns 0,
// or -1 with err (a batch that is not a multiple of the PPO group, PPO over more than
// PPO_MAX_STEPS steps, a stage already attached).
//
// Resuming is exact at any generator step: a PPO checkpoint holds the batch of rollouts in
// use and how many updates it has left.
int rl_stage_init(RlStage *s, const RlOptions *opt, Distiller *d, Reward reward, Error *err);
// Adds the stage's own state to the trainer's checkpoint: the frozen KL reference (under
// "reference."), PPO's rollouts in use (under "ppo."). Nothing for a stage not attached (a
// zeroed RlStage). Call again before each save or load: the rollout tensors change.
void rl_stage_checkpoint(RlStage *s, Checkpoint *ck);
void rl_stage_free(RlStage *s);
