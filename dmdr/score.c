#include "dmdr/score.h"

#include <stdlib.h>

#include "autograd/ops.h"
#include "diffusion/flow.h"
#include "kernels/check.h"

// x_t (N, ...), t (N), y (N) -> (N, ...)
Tensor *score_fake(const Scores *s, Tensor *x_t, Tensor *t, Tensor *y) {
    if (s->fake) return model_forward(s->fake, x_t, t, y);
    model_set_lora_scale(s->net, s->fake_scale);
    return model_forward(s->net, x_t, t, y);
}

// The real score without guidance at rows (x, t, y): (N, ...)
static Tensor *real_unguided(const Scores *s, Tensor *x, Tensor *t, Tensor *y, float lambda_r) {
    if (!s->fake) {
        model_set_lora_scale(s->net, lambda_r);
        return model_forward(s->net, x, t, y);
    }
    Tensor *v = model_forward(s->net, x, t, y);
    if (lambda_r == 0.0f) return v;
    float fraction = lambda_r / s->fake_scale;
    Tensor *v_fake = model_forward(s->fake, x, t, y);
    return op_add(v, op_mul_scalar(op_sub(v_fake, v), fraction));
}

// x_t (N, ...), t (N), y (N), cfg (N) or NULL -> (N, ...)
Tensor *score_real(const Scores *s, Tensor *x_t, Tensor *t, Tensor *y, float lambda_r,
                   Tensor *cfg) {
    autograd_no_grad_begin();
    Tensor *v;
    if (!cfg) {
        v = real_unguided(s, x_t, t, y, lambda_r);
    } else {
        int64_t n = x_t->shape.dim[0];
        int null_label = model_config(s->net)->num_classes;
        Tensor *xs[2] = {x_t, x_t}, *ts[2] = {t, t};
        Tensor *ys[2] = {y, flow_null_labels(n, null_label, y->device)};
        Tensor *both = real_unguided(s, op_concat(xs, 2, 0), op_concat(ts, 2, 0),
                                     op_concat(ys, 2, 0), lambda_r);
        Tensor *v_y = op_narrow(both, 0, 0, n), *v_null = op_narrow(both, 0, n, n);
        // where s <= 1 the guided formula must give v_y: use max(s, 1) - 1 as the weight of
        // the difference on top of v_y, i.e. v_y + (s' - 1)(v_y - v_null)
        Tensor *weight = flow_per_sample(op_add_scalar(op_maximum(cfg, tensor_ones(shape1(n),
                                                                                   cfg->device)),
                                                       -1.0f),
                                         v_y);
        v = op_add(v_y, op_mul(weight, op_sub(v_y, v_null)));
    }
    autograd_no_grad_end();
    return v;
}

// -> (n) or NULL
Tensor *score_cfg_scales(int64_t n, float s, float jitter, Rng *rng, Device device) {
    if (s <= 1.0f) return NULL;
    float *h = malloc((size_t)n * sizeof *h);
    DMDR_CHECK(h != NULL, "out of host memory");
    for (int64_t i = 0; i < n; i++)
        h[i] = s + (jitter > 0.0f ? jitter * (2.0f * rng_uniform_float(rng) - 1.0f) : 0.0f);
    Tensor *out = tensor_from_floats(shape1(n), h, device);
    free(h);
    return out;
}
