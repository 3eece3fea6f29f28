#include "dmdr/reward.h"

#include <stdlib.h>

#include "autograd/ops.h"
#include "kernels/check.h"

// x (N, C, H, W), y (N) -> (N)
static Tensor *classifier_score(void *ctx, Tensor *x, Tensor *y) {
    return log_prob_of_labels(classifier_forward(ctx, x, NULL), y);
}

Reward reward_of_classifier(Classifier *c) {
    classifier_set_frozen(c, true); // the reward's gradient goes to the image only
    return (Reward){classifier_score, c};
}

// logits (N, C), y (N) -> (N)
Tensor *log_prob_of_labels(Tensor *logits, Tensor *y) {
    int64_t n = logits->shape.dim[0], c = logits->shape.dim[1];
    DMDR_CHECK(logits->shape.ndim == 2 && y->shape.ndim == 1 && y->shape.dim[0] == n &&
                   y->dtype == DTYPE_I32,
               "log_prob_of_labels: logits (N, C) and labels (N) I32");
    // the one-hot mask picks the label's column: a gather as a product, which every op of
    // the engine differentiates already
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    float *mask = calloc((size_t)(n * c), sizeof *mask);
    DMDR_CHECK(labels && mask, "out of host memory");
    tensor_read(y, labels);
    for (int64_t i = 0; i < n; i++) {
        DMDR_CHECK(labels[i] >= 0 && labels[i] < c, "label %d outside 0..%lld", labels[i],
                   (long long)c - 1);
        mask[i * c + labels[i]] = 1.0f;
    }
    Tensor *one_hot = tensor_from_floats(shape2(n, c), mask, logits->device);
    free(labels);
    free(mask);
    return op_sum(op_mul(op_log_softmax(logits), one_hot), 1u << 1, false);
}

// x (N, ...), y (N) -> (1)
Tensor *reward_loss(const Reward *r, RewardLoss form, float margin, Tensor *x, Tensor *y,
                    double *mean_reward) {
    Tensor *score = r->score(r->ctx, x, y);
    if (mean_reward) {
        autograd_no_grad_begin();
        *mean_reward = tensor_item(op_mean_all(score));
        autograd_no_grad_end();
    }
    switch (form) {
    case REWARD_LOSS_LINEAR: return op_neg(op_mean_all(score));
    case REWARD_LOSS_HINGE:
        return op_mean_all(op_relu(op_add_scalar(op_neg(score), margin)));
    default: DMDR_FATAL("unknown reward loss %d", (int)form);
    }
}
