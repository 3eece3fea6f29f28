// Guarding a training run: it stops at the first non-finite number, naming it and the step,
// before a checkpoint could store it, and it warns when the loss or the gradient norm grows by
// orders of magnitude (a run diverging while its numbers are still finite).
//
// After each optimiser step of a trainer:
//   if (training_guard_check(&guard, step, loss, grad_norm, &opt, stderr, err)) stop;
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nn/optim.h"
#include "tensor/error.h"

// A warning each time a value reaches GUARD_WARN_RATIO times the lowest of its smoothed
// values so far, and again at every further factor of 10. Healthy runs here stay within 10x of
// that low (the small teacher's loss 1.69 -> 0.20 and gradient norm 2.7 -> 0.25; DMD's losses
// and norms within 4x), so 100x is a divergence, not noise.
// The low includes the first step: a run that explodes at once is warned about at once.
#define GUARD_WARN_RATIO 100.0

// Starts zeroed; `name` says what is trained ("generator", "fake score"; NULL for a single
// network) in its messages.
typedef struct {
    const char *name;
    // no growth warning for the loss, only for the gradient norm: for a loss that starts at
    // zero by construction (DMD's surrogate: the fake score equals the teacher at first, so
    // the distribution-matching gradient, and with it the loss, grows from nothing)
    bool loss_starts_at_zero;
    double smooth[2], low[2], warned[2]; // [0] the loss, [1] the gradient norm
    int64_t seen;
} TrainingGuard;

// Checks, in this order, the step's loss, the gradient norm before clipping, every AdamW
// moment and every weight opt updates: 0 when all are finite, else -1 with err naming the
// first non-finite quantity (the tensor and its count of NaNs and infinities) and `step`.
// Warnings about growth go to `warn` (NULL: none).
int training_guard_check(TrainingGuard *g, int64_t step, double loss, double grad_norm,
                         const AdamW *opt, FILE *warn, Error *err);
