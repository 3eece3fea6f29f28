// The flow-matching teacher's training step (docs/algorithm.md section 1), owned here so that
// `dmdr train-teacher`, the benchmark's training step and the tests' toy teachers run the same
// code: the rectified-flow loss on a batch, the backward pass, AdamW at the scheduled learning
// rate with the gradient norm clipped, and the EMA of the weights that becomes the exported
// model.
//
//   FlowTrainer t;
//   flow_trainer_init(&t, model, &opt);
//   for each batch (x, y): FlowStepStats s = flow_train_step(&t, x, y, &rng);
//   ... checkpoints hold t.adamw and t.ema; flow_trainer_free(&t);
#pragma once

#include "diffusion/flow.h"
#include "nn/optim.h"

typedef struct {
    FlowLossOptions loss;
    AdamWConfig adamw;
    LrSchedule schedule;
    float clip;      // global gradient-norm clipping threshold (<= 0: none)
    float ema_decay; // of the weights' exponential moving average
} FlowTrainOptions;

typedef struct {
    FlowTrainOptions opt;
    Model *model; // not owned
    AdamW adamw;  // over the model's trainable parameters
    Ema ema;      // shadows of the same
} FlowTrainer;

void flow_trainer_init(FlowTrainer *t, Model *model, const FlowTrainOptions *opt);
void flow_trainer_free(FlowTrainer *t);

// One optimiser step on x (N, ...) data with labels y (N) I32, both on the model's device;
// the loss's draws come from rng (flow_matching_loss's order). Temporaries stay in the
// caller's tensor scope.
TrainStepStats flow_train_step(FlowTrainer *t, Tensor *x, Tensor *y, Rng *rng);
