// The few-step generator (docs/algorithm.md section 2): a network with the teacher's
// architecture, started from its weights, read as an x0-predictor x0 = x_t - t G(x_t, t, y).
// K-step sampling re-noises with fresh noise between steps, so each step is the Gaussian
// policy pi(x_{k+1} | x_k) = N((1 - t_{k+1}) x0_k, t_{k+1}^2 I) that PPO trains.
#pragma once

#include "nn/model.h"

typedef struct {
    int steps;   // K in [1, GENERATOR_MAX_STEPS]
    float shift; // time shift s_g >= 1 of the K + 1 point grid (1: uniform)
} GeneratorOptions;

// The largest K, and the largest shift that the command line's distill.gen_shift and a
// generator file's metadata accept (the grid itself takes any shift >= 1).
#define GENERATOR_MAX_STEPS 64
#define GENERATOR_MAX_SHIFT 1000

// -> out[0..K]: t_0 = 1 > ... > t_K = 0 (the sampler's shifted grid)
void generator_time_grid(const GeneratorOptions *o, float *out);

// x_t (N, ...), t (N), y (N) I32 -> x0 = x_t - t G(x_t, t, y) (N, ...), tracked to G
Tensor *generator_x0(Model *g, Tensor *x_t, Tensor *t, Tensor *y);

// noise (N, ...), y (N) I32 -> x0_{K-1} (N, ...), untracked. Draws the K - 1 re-noises from
// rng. When states / x0s are not NULL (arrays of K), states[k] receives the input of step k
// (states[0] = noise) and x0s[k] its prediction; all tensors belong to the caller's scope.
Tensor *generator_sample(Model *g, const GeneratorOptions *o, Tensor *noise, Tensor *y,
                         Rng *rng, Tensor **states, Tensor **x0s);

// What the generator's training input at step k re-noises, for K > 1 (at k = 0 both are pure
// noise): the previous step's prediction x0_{k-1} (DMD2; the input G meets when sampling), or
// the chain's own prediction at t_k, x0_k (the DMDR authors' code), which trains G to refine
// its own outputs at t_k.
typedef enum {
    GENERATOR_BACKSIM_PREVIOUS,
    GENERATOR_BACKSIM_CURRENT,
    GENERATOR_BACKSIM_COUNT
} GeneratorBacksim;

// Backward simulation: y (N) I32 -> x0 (N, ...) tracked to G's parameters. Per sample a step
// k ~ U{0..K-1} is drawn; the untracked sampler runs from fresh noise far enough to give the
// prediction `backsim` names (x0_{k-1} or x0_k), and G sees x_in = (1 - t_k) x0_* + t_k eps
// (pure noise for k = 0) at t_k. *x_in and *t_in (either may be NULL) receive the inputs
// (N, ...) and times (N) G saw. Draws, in order: the N step indices, the sampler's noise and
// re-noises (when some k > 0), then eps. With several ranks (tensor/dist.h) y is this rank's
// rows of a global batch: every draw is made for the global batch and each rank keeps its rows.
Tensor *generator_backward_simulation(Model *g, const GeneratorOptions *o,
                                      GeneratorBacksim backsim, Tensor *y, Rng *rng,
                                      Tensor **x_in, Tensor **t_in);
