// Rewards for the RL stage (docs/algorithm.md section 6): a per-sample score of generated
// samples, differentiable w.r.t. them (reward backpropagation needs the gradient; PPO only
// the values). The judge classifier gives the class-conditional score log p(y | x); anything
// else with the contract plugs in the same way (the toy tests use an analytic one).
#pragma once

#include "nn/classifier.h"
#include "tensor/tensor.h"

typedef struct {
    // x (N, ...), y (N) I32 -> r (N), tracked w.r.t. x
    Tensor *(*score)(void *ctx, Tensor *x, Tensor *y);
    void *ctx;
} Reward;

// log p(y | x) under the (frozen) classifier: a Reward whose ctx is the classifier.
Reward reward_of_classifier(Classifier *c);

// logits (N, C), y (N) I32 -> log_softmax(logits)[i, y_i] (N), tracked
Tensor *log_prob_of_labels(Tensor *logits, Tensor *y);

typedef enum {
    REWARD_LOSS_LINEAR, // -mean(r): for log p(y | x), the cross-entropy against the prompted class
    REWARD_LOSS_HINGE,  // mean(relu(margin - r)): stops pushing a sample once its score is reached
    REWARD_LOSS_COUNT
} RewardLoss;

// x (N, ...) tracked, y (N) -> (1): the reward-backpropagation loss of the samples.
// *mean_reward (may be NULL) receives the mean score.
Tensor *reward_loss(const Reward *r, RewardLoss form, float margin, Tensor *x, Tensor *y,
                    double *mean_reward);
