// The DMD trainer (docs/algorithm.md sections 2 to 5): a few-step generator and the fake
// score, both started from the teacher, trained with the two-time-scale rule. One inner step:
//   - labels y ~ U{classes}; backward simulation gives the generator's x0 (tracked on a
//     generator turn, untracked otherwise);
//   - generator turn (every ratio-th inner step, the first excluded): renoise x0 at DynaRS
//     times, read the real score (DynaDG LoRA scale, CFG) and the fake score (lambda_f),
//     L_DMD (+ the extra loss of stage 2, weighted), backward, AdamW on the generator;
//   - always: the fake score's flow loss on the detached x0 at fresh DynaRS times, backward
//     into the adapter (or the separate fake network), AdamW on it.
// The generator step k that drives DynaDG and DynaRS is the number of generator updates.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "dmdr/dyna.h"
#include "dmdr/generator.h"
#include "dmdr/score.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"

// The fake score: the teacher's shared LoRA at scale lambda_f (DMDR), or DMD2's separate,
// fully trained copy of the teacher.
typedef enum { FAKE_NET_LORA, FAKE_NET_SEPARATE, FAKE_NET_COUNT } FakeNet;

typedef struct {
    GeneratorOptions gen;
    bool dmd; // the DMD loss and the fake score (off only for stage 2's reward-only and KL baselines)
    int batch;
    int ratio; // fake-score updates per generator update (TTUR)
    GeneratorBacksim backsim; // K > 1: what G's training input at t_k re-noises
    LoraOptions lora;         // the shared adapter (fake_net lora)
    FakeNet fake_net;
    float fake_scale;   // lambda_f
    float real_cfg, cfg_jitter; // real-score guidance scale (<= 1: none) and its per-sample jitter
    DynaSchedule dyna;
    float gen_lr, fake_lr, gen_weight_decay, fake_weight_decay, clip;
} DistillOptions;

// The method's ImageNet settings: DMD on, 1 step, shift 1, ratio 5, PEFT LoRA rank 16 with alpha
// 16 on attention, lambda_f 2, no real-score CFG, DynaDG and DynaRS on over `dyn_steps`, AdamW lr
// 2e-5 for both networks, weight decay 0.01 (generator) and 0 (fake), clip 1. Batch 32.
DistillOptions distill_defaults(int64_t dyn_steps);

// A term added to the generator's loss on its turns (stage 2: the reward). x0 (N, ...) is the
// generator's tracked output for input x_in (N, ...) at times t_in (N) and labels y (N) -> a
// (1) loss; it may log into `stats`. Without DMD and with reads_samples false the trainer
// makes no samples for it (x_in, t_in, x0 NULL): PPO draws its own rollouts.
typedef struct DistillStats DistillStats;
typedef struct {
    Tensor *(*loss)(void *ctx, Tensor *x_in, Tensor *t_in, Tensor *x0, Tensor *y,
                    DistillStats *stats);
    void *ctx;
    float weight; // w_r
    bool reads_samples;
} GeneratorExtraLoss;

struct DistillStats {
    bool generator_updated;
    double dmd_loss, extra_loss, fake_loss;  // extra_loss: unweighted, NaN when none
    double gen_grad_norm, fake_grad_norm;    // pre-clip; NaN when not updated
    double real_scale;                       // lambda_r of this step
    double renoise_t_mean;                   // of the fake-score loss's times
    int64_t nonfinite;                       // DMD gradient entries replaced (nan_to_num)
    double allreduce_s;                      // in the gradients' all-reduces (0: one rank)
    // filled by a stage-2 extra loss, NaN otherwise
    double reward_mean, reward_std;          // of the samples the reward saw
    double ratio_std, clip_fraction;         // PPO's ratio spread and clipped share
    double kl;                               // the KL baseline's penalty (unweighted by beta)
};

typedef struct {
    DistillOptions opt;
    Model *generator;
    Scores scores; // owned: scores.net (teacher + adapter, or the teacher) and scores.fake
    AdamW gen_opt, fake_opt;
    Rng rng;
    int64_t inner_steps; // inner steps done (the checkpoint's step)
    GeneratorExtraLoss extra; // loss NULL: none (stage 1)
} Distiller;

// Creates the generator and the score network(s) as copies of the teacher's weights (the
// teacher itself is not kept). Returns 0, or -1 with err for settings the teacher's
// architecture cannot take (e.g. no attention to adapt).
int distiller_init(Distiller *d, const DistillOptions *opt, Model *teacher, uint64_t seed,
                   Error *err);
void distiller_free(Distiller *d);

// Generator updates made so far (the generator optimiser's step count): k of the schedules.
int64_t distiller_generator_steps(const Distiller *d);

// One inner step (the generator's turn when it falls on one).
void distiller_step(Distiller *d, DistillStats *stats);

// The checkpoint of the whole state: the generator under "" with its optimiser, the score
// network under "fake." with its own (base weights included, so a checkpoint resumes without
// the teacher's file), the "train" stream and the inner-step count. Fill extra metadata after.
void distiller_checkpoint(Distiller *d, Checkpoint *ck);
