// ODE samplers of a velocity field from t = 1 (noise) to t = 0 (data): Euler and Heun, with
// classifier-free guidance and a time-shifted grid (docs/algorithm.md section 1). Everything
// runs under no-grad.
#pragma once

#include "diffusion/flow.h"

typedef enum { SAMPLER_EULER, SAMPLER_HEUN, SAMPLER_METHOD_COUNT } SamplerMethod;

const char *sampler_method_name(SamplerMethod method); // "euler", "heun"
int sampler_method_parse(const char *name, SamplerMethod *out, Error *err);

typedef struct {
    SamplerMethod method;
    int steps;       // N >= 1 intervals of the time grid
    float cfg_scale; // s: v = v(null) + s (v(y) - v(null)), applied only when s > 1
    float shift;     // time shift s_t >= 1 (1: the uniform grid)
    int64_t chunk;   // samples per pass, bounding memory (0: all at once)
} SamplerOptions;

// Euler, 50 steps, no guidance, no shift, one pass
SamplerOptions sampler_defaults(void);

// u in [0, 1] -> s u / (1 + (s - 1) u): 0 -> 0, 1 -> 1, larger s spends more steps near t = 1
float time_shift(float u, float shift);
// -> out[0..steps]: time_shift(1 - k / steps), out[0] = 1 and out[steps] = 0 exactly
void sampler_time_grid(int steps, float shift, float *out);

// Network evaluations per sample for these options: Euler N, Heun 2N - 1 (its last step is
// Euler), doubled with guidance (the conditional and unconditional halves of a batch).
int64_t sampler_nfe(const SamplerOptions *opt);

// noise (N, ...) at t = 1, y (N) I32 on noise's device, or NULL for unconditional samples
// -> x at t = 0 (N, ...). Guidance with labels runs one forward of 2n rows per evaluation
// ([x; x] with [y; null]). *nfe (may be NULL) receives sampler_nfe(opt), or for y NULL the
// count without guidance (guidance without labels is the unconditional velocity itself).
Tensor *sample_flow_field(const VelocityField *f, Tensor *noise, Tensor *y,
                          const SamplerOptions *opt, int64_t *nfe);
Tensor *sample_flow(Model *m, Tensor *noise, Tensor *y, const SamplerOptions *opt, int64_t *nfe);

// n samples of the model's data shape ((n, data_dim) for MLP, else (n, C, H, W)) from noise
// drawn from rng on the model's device.
Tensor *sample_flow_rng(Model *m, int64_t n, Tensor *y, Rng *rng, const SamplerOptions *opt,
                        int64_t *nfe);
