// The two annealed schedules of DMDR (docs/algorithm.md section 5), both functions of the
// generator step k over K_dyn steps:
// - DynaDG, dynamic distribution guidance: the real score's LoRA scale
//   lambda_r(k) = lambda_r0 (1 + cos(pi k / K_dyn)) / 2 for k < K_dyn, then 0, so early
//   gradients come from a real score pulled part of the way toward the fake one;
// - DynaRS, dynamic renoise sampling: renoise times t ~ Beta(a_k, b_k), a_k = 1 + (a0 - 1) c_k,
//   b_k = 1 + (b0 - 1) c_k, c_k = (1 + cos(pi min(k / K_dyn, 1))) / 2: biased toward high
//   noise at first (mean a0 / (a0 + b0)), uniform from K_dyn on.
// Switched off they give lambda_r = 0 and t ~ U[t_min, 1).
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "tensor/rng.h"
#include "tensor/tensor.h"

typedef struct {
    bool dynadg, dynars;
    int64_t steps;      // K_dyn >= 1
    float real_scale0;  // lambda_r0
    float beta_a0, beta_b0;
    float t_min;        // renoise times are at least this (0.001)
} DynaSchedule;

// The paper's ImageNet settings: both on, lambda_r0 0.75, a0 4, b0 1.5, t_min 0.001, and
// the given K_dyn.
DynaSchedule dyna_defaults(int64_t steps);

// lambda_r(k)
float dynadg_real_scale(const DynaSchedule *s, int64_t k);
// (a_k, b_k) of the Beta distribution (1, 1 when DynaRS is off)
void dynars_beta(const DynaSchedule *s, int64_t k, double *a, double *b);

// A Gamma(shape, 1) draw (Marsaglia and Tsang, with the u^(1/shape) boost below 1) and a
// Beta(a, b) draw from two of them, using the stream's host draws.
double rng_gamma(Rng *rng, double shape);
double rng_beta(Rng *rng, double a, double b);

// -> n renoise times (n) on device, in [t_min, 1): Beta(a_k, b_k) draws (DynaRS) or uniform,
// drawn on the host. *mean (may be NULL) receives their mean.
Tensor *dynars_sample_times(const DynaSchedule *s, int64_t k, int64_t n, Rng *rng,
                            Device device, double *mean);
