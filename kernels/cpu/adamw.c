// AdamW: one fused pass over the parameters, reading p, g, m, v once and writing p, m, v
// once, so the step costs one trip through memory however large the model.
#include <math.h>

#include "kernels/cpu/cpu_kernels.h"

// Below this many parameters the step runs on the calling thread.
#define PARALLEL_MIN 32768
// Parameters per tile: the tile's p, m and v stay in L1 between the loops below.
#define TILE 512

// p, g, m, v (n): in place on p, m, v. The order of operations follows PyTorch's
// torch.optim.AdamW (single-tensor path): decay p first, then
// p -= (lr / bias_correction1) m / (sqrt(v) / sqrt(bias_correction2) + eps).
//
// Each tile runs as three loops because sqrtf may set errno (GCC's default -fmath-errno), so
// GCC will not vectorise a loop that calls it: the moments and the update are vector loops,
// and only the square roots run one at a time, on the tile while it is in L1.
void cpu_adamw(float *p, const float *g, float *m, float *v, int64_t n, const AdamWStep *s) {
    const float beta1 = s->beta1, beta2 = s->beta2, eps = s->eps, grad_scale = s->grad_scale;
    const float decay = 1.0f - s->lr * s->weight_decay;
    const float step_size = s->lr / s->bias_correction1;
    const float bias_correction2_sqrt = sqrtf(s->bias_correction2);
    int64_t tiles = (n + TILE - 1) / TILE;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t t = 0; t < tiles; t++) {
        int64_t begin = t * TILE, len = n - begin < TILE ? n - begin : TILE;
        float *pt = p + begin, *mt = m + begin, *vt = v + begin;
        const float *gt = g + begin;
        float denom[TILE];
#pragma omp simd
        for (int64_t i = 0; i < len; i++) {
            float grad = gt[i] * grad_scale;
            mt[i] = beta1 * mt[i] + (1.0f - beta1) * grad;
            vt[i] = beta2 * vt[i] + (1.0f - beta2) * grad * grad;
        }
        for (int64_t i = 0; i < len; i++) denom[i] = sqrtf(vt[i]);
#pragma omp simd
        for (int64_t i = 0; i < len; i++) {
            float d = denom[i] / bias_correction2_sqrt + eps;
            pt[i] = pt[i] * decay - step_size * mt[i] / d;
        }
    }
}
