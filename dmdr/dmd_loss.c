#include "dmdr/dmd_loss.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "autograd/ops.h"
#include "diffusion/flow.h"
#include "kernels/check.h"

// torch.nan_to_num in place, on the host: the DMD gradient is small (N x C x H x W) and a
// non-finite entry is rare, so one round trip is cheaper than a kernel for it. -> replaced
static int64_t nan_to_num(Tensor *t) {
    int64_t n = tensor_numel(t), replaced = 0;
    float *h = malloc((size_t)n * sizeof *h);
    DMDR_CHECK(h != NULL, "out of host memory");
    tensor_read(t, h);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(h[i])) {
            h[i] = isnan(h[i]) ? 0.0f : h[i] > 0 ? FLT_MAX : -FLT_MAX;
            replaced++;
        }
    if (replaced) tensor_write(t, h);
    free(h);
    return replaced;
}

// x0, x0_real, x0_fake (N, ...) -> (N, ...)
Tensor *dmd_gradient(Tensor *x0, Tensor *x0_real, Tensor *x0_fake, int64_t *nonfinite) {
    DMDR_CHECK(shape_equal(x0->shape, x0_real->shape) && shape_equal(x0->shape, x0_fake->shape),
               "dmd_gradient: x0, x0_real and x0_fake must have one shape");
    autograd_no_grad_begin();
    Tensor *x = tensor_detach(x0);
    Tensor *p_real = op_sub(x, x0_real);
    Tensor *scale = op_add_scalar(op_mean(op_abs(p_real), flow_sample_dims(x), true), 1e-8f);
    // p_real - p_fake = x0_fake - x0_real
    Tensor *grad = op_div(op_sub(x0_fake, x0_real), scale);
    autograd_no_grad_end();
    int64_t replaced = nan_to_num(grad);
    if (nonfinite) *nonfinite = replaced;
    return grad;
}

// x0 (N, ...), grad (N, ...) -> (1)
Tensor *dmd_loss(Tensor *x0, Tensor *grad) {
    autograd_no_grad_begin();
    Tensor *target = op_sub(tensor_detach(x0), grad);
    autograd_no_grad_end();
    return op_mul_scalar(op_mse(x0, target), 0.5f);
}
