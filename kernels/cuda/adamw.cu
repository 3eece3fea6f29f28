// AdamW: one fused pass over the parameters, reading p, g, m, v once and writing p, m, v
// once, with the CPU kernel's order of operations (kernels/cpu/adamw.c, after PyTorch's
// single-tensor torch.optim.AdamW): decay p first, then
// p -= (lr / bias_correction1) m / (sqrt(v) / sqrt(bias_correction2) + eps).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/map.cuh"

// in: (p, g, m, v) -> out: (p, m, v)
struct AdamWUpdate {
    float beta1, beta2, eps, grad_scale, decay, step_size, bias_correction2_sqrt;
    __device__ void operator()(const float *in, float *out) const {
        float grad = in[1] * grad_scale;
        float m = beta1 * in[2] + (1.0f - beta1) * grad;
        float v = beta2 * in[3] + (1.0f - beta2) * grad * grad;
        float denom = sqrtf(v) / bias_correction2_sqrt + eps;
        out[0] = in[0] * decay - step_size * m / denom;
        out[1] = m;
        out[2] = v;
    }
};

// p, g, m, v (n): one step in place on p, m, v
void cuda_adamw(const Backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                const AdamWStep *s) {
    AdamWUpdate f = {s->beta1, s->beta2, s->eps, s->grad_scale, 1.0f - s->lr * s->weight_decay,
                     s->lr / s->bias_correction1, sqrtf(s->bias_correction2)};
    MapArgs<4, 3> args = {{p, g, m, v}, {p, m, v}};
    launch_map(be, args, f, n);
}
