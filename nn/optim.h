// Training-loop numerics with PyTorch's semantics: AdamW (torch.optim.AdamW), global-norm
// gradient clipping (torch.nn.utils.clip_grad_norm_) folded into the AdamW step, a warm-up +
// cosine learning rate, and an exponential moving average of the weights (the DiT reference's
// update_ema). All state (moments, shadows) lives in tensors on the parameters' device.
//
// A training step:
//   adamw_zero_grad(&opt);
//   autograd_backward(loss, NULL);
//   double norm = adamw_step(&opt, lr_schedule(&sched, opt.step), clip);
//   ema_update(&ema, params, 0.9999f);
#pragma once

#include <stdint.h>

#include "nn/params.h"

// ---- AdamW --------------------------------------------------------------------------------------

typedef struct {
    float beta1, beta2, eps, weight_decay;
} AdamWConfig;

// torch.optim.AdamW's defaults: betas (0.9, 0.999), eps 1e-8, weight_decay 0.01.
AdamWConfig adamw_config_default(void);

typedef struct {
    AdamWConfig cfg;
    // The trainable entries of the list given to adamw_init, in its order: names and the
    // live tensors (not owned: the module keeps them alive while the optimiser exists).
    ParamList params;
    // Per entry: first and second moments (retained, shaped like the parameter, on its
    // device, zero at first), and the updates it has received (PyTorch's state['step']).
    Tensor **m, **v;
    int64_t *steps;
    int64_t step; // adamw_step calls so far: the index of the next update
} AdamW;

// Tracks the trainable parameters of `params` (the list itself is not kept).
void adamw_init(AdamW *opt, const ParamList *params, AdamWConfig cfg);
void adamw_free(AdamW *opt);

// The sum of squares of every element of the tensors (F32, any devices), in double: finite
// exactly when every element is (a float's square cannot overflow a double).
double tensors_sum_squares(Tensor *const *ts, int count);

// The global L2 norm of the gradients of the trainable parameters, accumulated in double;
// a parameter without a gradient counts as zero.
double optim_grad_norm(const ParamList *params);

// One update of every tracked parameter that has a gradient, at learning rate lr. With
// clip_norm > 0 the gradients are first scaled as clip_grad_norm_(params, clip_norm) would:
// by min(1, clip_norm / (norm + 1e-6)), computed in float; clip_norm <= 0 disables clipping.
// A parameter without a gradient is skipped entirely (no decay, no moment update, its step
// count unchanged), as PyTorch skips grad=None. Returns the pre-clip norm (non-finite norms
// are not special-cased, as in PyTorch: the trainer decides what to do with them).
double adamw_step(AdamW *opt, float lr, float clip_norm);
// Drops the gradients of the tracked parameters (PyTorch's zero_grad(set_to_none=True)).
void adamw_zero_grad(AdamW *opt);

// ---- learning-rate schedule ------------------------------------------------------------------

typedef enum { LR_CONSTANT, LR_COSINE } LrDecay;

typedef struct {
    float base_lr;
    int64_t warmup_steps; // 0: no warm-up
    LrDecay decay;
    int64_t total_steps; // LR_COSINE: the step at which min_lr is reached (and kept after)
    float min_lr;        // LR_COSINE: the floor
} LrSchedule;

// The learning rate of update number `step` (0 for the first; pass opt.step). In double:
//   step < warmup:    base_lr * (step + 1) / warmup
//   LR_CONSTANT:      base_lr
//   LR_COSINE:        min_lr + (base_lr - min_lr) * (1 + cos(pi * p)) / 2,
//                     p = min(1, (step - warmup) / max(1, total_steps - warmup))
// PyTorch equivalent: LambdaLR for the warm-up (its lambda(step) = (step + 1) / warmup, with
// scheduler.step() after each optimizer.step()), then the closed form of
// CosineAnnealingLR(T_max = total_steps - warmup, eta_min = min_lr) at T_cur = step - warmup.
float lr_schedule(const LrSchedule *s, int64_t step);

// ---- EMA ---------------------------------------------------------------------------------------

typedef struct {
    // One entry per trainable parameter of the list given to ema_init, in its order: the
    // parameter's name and its shadow (retained by the Ema, on the parameter's device,
    // never requiring a gradient).
    ParamList shadows;
} Ema;

// Shadows start as copies of the current values (the reference's deepcopy(model)).
void ema_init(Ema *ema, const ParamList *params);
void ema_free(Ema *ema);
// For each trainable parameter (the same list, or one with the same trainable names in the
// same order): shadow = decay * shadow + (1 - decay) * param, as the reference's
// ema.mul_(decay).add_(param, alpha=1 - decay) (two roundings here: PyTorch may fuse them).
void ema_update(Ema *ema, const ParamList *params, float decay);
// Writes the shadows into the parameters (for export or a final evaluation).
void ema_copy_to(const Ema *ema, const ParamList *params);
// Exchanges shadows and parameter values; calling it twice restores both. For evaluating
// with the EMA weights in the middle of training.
void ema_swap(Ema *ema, const ParamList *params);

// ---- one training update ---------------------------------------------------------------------

typedef struct {
    float loss, lr;
    double grad_norm;   // before clipping
    double allreduce_s; // wall time of the gradients' all-reduce (0 with one rank)
} TrainStepStats;

// Data parallelism (tensor/dist.h): replaces every trainable gradient of `params` by its mean
// over the ranks (one all-reduce of them all, packed), after a backward pass on this rank's
// shard; nothing with one rank. Every rank must hold gradients for the same parameters.
// Returns the seconds it took (packing, the all-reduce, unpacking).
double optim_average_gradients(const ParamList *params);
// The mean over the ranks of a value each computed on its shard (a loss), for the log.
double optim_average_value(double value);

// What every trainer does with its loss (1): the gradients of opt's parameters dropped, the
// backward pass, the gradients averaged over the ranks, AdamW at lr_schedule(sched,
// opt->step) with the gradient norm clipped to `clip` (<= 0: none), then the EMA at ema_decay
// (ema NULL: none). Reads the loss back (its mean over the ranks).
TrainStepStats optim_train_step(AdamW *opt, const LrSchedule *sched, float clip, Ema *ema,
                                float ema_decay, Tensor *loss);
