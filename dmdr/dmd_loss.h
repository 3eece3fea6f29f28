// The DMD loss on the generator side (docs/algorithm.md section 4). The distribution-matching
// gradient at a re-noised sample is the difference of the two scores' x0 predictions,
// normalised per sample by the mean distance to the real prediction; the loss is the
// half-MSE to a stop-gradient target placed one gradient away, so that d L / d x0 is exactly
// that gradient divided by the element count (what the autograd engine then pushes into G).
#pragma once

#include <stdint.h>

#include "tensor/tensor.h"

// x0 (N, ...) the generator's output (its values only), x0_real, x0_fake (N, ...) the scores'
// predictions -> grad (N, ...) = (x0_fake - x0_real) / (mean_{C,H,W} |x0 - x0_real| + 1e-8),
// untracked, with NaN -> 0 and +-inf -> +-FLT_MAX (torch.nan_to_num). *nonfinite (may be NULL)
// receives how many elements were replaced.
Tensor *dmd_gradient(Tensor *x0, Tensor *x0_real, Tensor *x0_fake, int64_t *nonfinite);

// x0 (N, ...) tracked, grad (N, ...) -> (1): 0.5 mean((x0 - sg(x0 - grad))^2), whose value is
// 0.5 mean(grad^2) and whose gradient w.r.t. x0 is grad / numel.
Tensor *dmd_loss(Tensor *x0, Tensor *grad);
