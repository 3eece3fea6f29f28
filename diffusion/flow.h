// Rectified flow with velocity prediction (docs/algorithm.md section 1). Time t in [0, 1],
// t = 1 is pure noise: x_t = (1 - t) x0 + t eps, and the network predicts v = eps - x0, so
// x0_hat = x_t - t v_hat. Per-sample times are (N) tensors broadcast over the other dims.
#pragma once

#include "nn/model.h"

// A velocity field v(x, t, y) shaped like x, with the Model contract (t (N) in [0, 1], y (N)
// I32, null_label meaning "no class"): a Model, or anything else with that contract (a network
// evaluated at a LoRA scale, an analytic field in the tests).
typedef struct {
    Tensor *(*forward)(void *self, Tensor *x, Tensor *t, Tensor *y);
    void *self;
    int null_label;
} VelocityField;

// The model as a field; its null label is num_classes.
VelocityField velocity_field_of_model(Model *m);

typedef enum { FLOW_TIME_LOGIT_NORMAL, FLOW_TIME_UNIFORM, FLOW_TIME_DIST_COUNT } FlowTimeDist;

const char *flow_time_dist_name(FlowTimeDist dist); // "logit_normal", "uniform"
// The distribution named `name` (a config value); an error naming the choices otherwise.
int flow_time_dist_parse(const char *name, FlowTimeDist *out, Error *err);

// -> t (n) on device: sigmoid(N(mean, std^2)) (logit-normal) or U(0, 1]; never 0, so a
// training input is never the clean data itself.
Tensor *flow_sample_time(int64_t n, FlowTimeDist dist, float mean, float std, Rng *rng,
                         Device device);

// -> (n) I32 on device, every entry null_label (the "no class" rows of guidance)
Tensor *flow_null_labels(int64_t n, int null_label, Device device);
// t (N) -> (N, 1, ..., 1) with x's rank: one value per sample, broadcast over the rest, tracked
Tensor *flow_per_sample(Tensor *t, const Tensor *x);
// x (N, ...) -> every dim but the batch's as a reduction mask (op_sum, op_mean): per sample
unsigned flow_sample_dims(const Tensor *x);
// x0, eps (N, ...), t (N) -> x_t (N, ...) = (1 - t) x0 + t eps, tracked
Tensor *flow_interpolate(Tensor *x0, Tensor *eps, Tensor *t);
// x_t, v (N, ...), t (N) -> x0_hat (N, ...) = x_t - t v, tracked
Tensor *flow_x0_from_velocity(Tensor *x_t, Tensor *v, Tensor *t);

// y (N) I32 -> (N) I32 on y's device: each label replaced by null_label with probability p,
// decided by N uniform draws from rng (the same decisions on every device and thread count).
// *dropped (may be NULL) receives how many were replaced.
Tensor *flow_drop_labels(Tensor *y, int null_label, float p, Rng *rng, int64_t *dropped);

typedef struct {
    FlowTimeDist time_dist;
    float logit_mean, logit_std; // of the normal whose sigmoid is t (logit-normal only)
    float label_dropout;         // probability that a label becomes the null label
} FlowLossOptions;

// logit-normal(0, 1), label dropout 0.1
FlowLossOptions flow_loss_defaults(void);

typedef struct {
    float mean_t;            // mean of the sampled times
    float dropped_fraction;  // fraction of labels replaced by the null label
} FlowLossStats;

// x0 (N, ...) data, y (N) I32 -> (1): mean((v_hat(x_t, t, y') - (eps - x0))^2), with the graph
// to the field's parameters. Draws from rng, in this order: t (N), eps (like x0), then the N
// dropout decisions. stats may be NULL (filling it reads t back from the device; mean_t is
// this rank's). With several ranks (tensor/dist.h) x0 and y are the global batch: every rank
// makes the same draws and the loss is the mean over its own rows, so the mean over the ranks
// of the gradients is the gradient of the global batch's loss.
Tensor *flow_matching_loss_field(const VelocityField *f, Tensor *x0, Tensor *y, Rng *rng,
                                 const FlowLossOptions *opt, FlowLossStats *stats);
// The same for a Model (opt NULL: the defaults).
Tensor *flow_matching_loss(Model *m, Tensor *x0, Tensor *y, Rng *rng, const FlowLossOptions *opt,
                           FlowLossStats *stats);
