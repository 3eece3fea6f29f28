// AdamW: one fused vector pass over the parameters, reading p, g, m, v once and writing p, m,
// v once, so the step costs one trip through memory however large the model.
#include <math.h>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/fastmath.h"

// Below this many parameters the step runs on the calling thread.
#define PARALLEL_MIN 32768

// p, g, m, v (n): in place on p, m, v. The order of operations follows PyTorch's
// torch.optim.AdamW (single-tensor path): decay p first, then
// p -= (lr / bias_correction1) m / (sqrt(v) / sqrt(bias_correction2) + eps).
// fast_sqrtf rather than sqrtf: GCC keeps a loop calling sqrtf scalar (it may set errno),
// which would make this compute-bound at about half the speed of memory.
void cpu_adamw(const Backend *be, float *p, const float *g, float *m, float *v, int64_t n,
               const AdamWStep *s) {
    (void)be;
    const float beta1 = s->beta1, beta2 = s->beta2, eps = s->eps, grad_scale = s->grad_scale;
    const float decay = 1.0f - s->lr * s->weight_decay;
    const float step_size = s->lr / s->bias_correction1;
    const float bias_correction2_sqrt = sqrtf(s->bias_correction2);
#pragma omp parallel for simd schedule(static) if (parallel : n > PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        float grad = g[i] * grad_scale;
        float mi = beta1 * m[i] + (1.0f - beta1) * grad;
        float vi = beta2 * v[i] + (1.0f - beta2) * grad * grad;
        m[i] = mi;
        v[i] = vi;
        float denom = fast_sqrtf(vi) / bias_correction2_sqrt + eps;
        p[i] = p[i] * decay - step_size * mi / denom;
    }
}
