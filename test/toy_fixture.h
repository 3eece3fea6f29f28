// The toy2d mixture as a test fixture: the preset's data (8 Gaussians of std 0.1 on a circle
// of radius 2, one class each), a small MLP teacher trained on it in seconds, and the
// per-component statistics that the diffusion and DMD suites check samples against.
#pragma once

#include <stdint.h>

#include "dmdr/distill.h"
#include "nn/model.h"
#include "tools/data/dataset.h"

#define TOY_COMPONENTS 8
#define TOY_RADIUS 2.0f
#define TOY_STD 0.1f

// Mean and covariance of 2-d points, accumulated one at a time.
typedef struct {
    int64_t n;
    double s[5]; // x, y, xx, xy, yy
} Moments;

void moments_add(Moments *m, const float *p);
// -> mean (2), covariance (xx, xy, yy)
void moments_get(const Moments *m, double mean[2], double cov[3]);

// Points grouped by their nearest component mean, plus the whole set.
typedef struct {
    Moments component[TOY_COMPONENTS], all;
    int64_t off_mode; // points more than 5 std from their nearest mean
    int64_t off_ring; // points more than 5 std from the circle of means
} ToyStats;

// p (2) -> the component whose mean is nearest, *distance the distance to it
int toy_nearest_component(const float *p, double *distance);
// points (n, 2) -> s; assigned (n) (may be NULL) receives each point's component
void toy_stats(const float *points, int64_t n, ToyStats *s, int *assigned);

// How close conditional samples must be to the data, component by component: each mean
// within `mean` std, each variance within [var_lo, var_hi] times the data's and on average
// within [avg_lo, avg_hi], the xy covariance within `xy` std^2.
typedef struct {
    double mean, var_lo, var_hi, avg_lo, avg_hi, xy;
} ToyTolerance;

// ck_asserts the tolerance, naming `what`.
void toy_check_conditional_moments(const char *what, const ToyStats *got, const ToyStats *data,
                                   const ToyTolerance *tol);

// The mixture, 16384 points from the test seed labelled "toy_data".
void toy_data(Dataset *out);

// An MLP teacher (width 64, 2 layers) trained on `data` for `steps` AdamW steps of batch 128
// with flow_matching_loss (logit-normal times, 10% label dropout); asserts that the loss of
// the last 100 steps is under half that of the first 100.
Model *toy_train_teacher(const Dataset *data, int steps);

// An untrained MLP score network on the mixture (width, layers), initialised from the test
// seed labelled `label`.
Model *toy_mlp(const char *label, int width, int layers);

// The DMD settings the toy2d distillation tests are calibrated with (batch 128, LoRA rank and
// alpha 32 over the MLP layers too, generator lr 2e-4, fake lr 1e-3), DynaDG/DynaRS over
// dyn_steps generator steps.
DistillOptions toy_distill_options(int64_t dyn_steps);

// t -> a malloc'd host copy of its values
float *toy_host_copy(const Tensor *t);
