#include "diffusion/sampler.h"

#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "kernels/check.h"

static const char *const method_names[SAMPLER_METHOD_COUNT] = {
    [SAMPLER_EULER] = "euler",
    [SAMPLER_HEUN] = "heun",
};

const char *sampler_method_name(SamplerMethod method) {
    return method >= 0 && method < SAMPLER_METHOD_COUNT ? method_names[method] : "unknown";
}

int sampler_method_parse(const char *name, SamplerMethod *out, Error *err) {
    for (int m = 0; m < SAMPLER_METHOD_COUNT; m++)
        if (strcmp(name, method_names[m]) == 0) {
            *out = (SamplerMethod)m;
            return 0;
        }
    return error_set(err, "sampler \"%s\": expected \"euler\" or \"heun\"", name);
}

SamplerOptions sampler_defaults(void) {
    SamplerOptions o = {SAMPLER_EULER, 50, 1.0f, 1.0f, 0};
    return o;
}

float time_shift(float u, float shift) {
    double s = shift, x = u;
    return (float)(s * x / (1.0 + (s - 1.0) * x));
}

void sampler_time_grid(int steps, float shift, float *out) {
    DMDR_CHECK(steps >= 1 && shift > 0.0f, "time grid of %d steps, shift %g", steps, (double)shift);
    for (int k = 0; k <= steps; k++) out[k] = time_shift(1.0f - (float)k / (float)steps, shift);
    out[0] = 1.0f; // exact whatever the rounding of the formula
    out[steps] = 0.0f;
}

static bool guided(const SamplerOptions *opt, const Tensor *y) {
    return y != NULL && opt->cfg_scale > 1.0f;
}

static int64_t nfe_of(const SamplerOptions *opt, bool guide) {
    int64_t per_row = opt->method == SAMPLER_HEUN ? 2 * (int64_t)opt->steps - 1 : opt->steps;
    return guide ? 2 * per_row : per_row;
}

int64_t sampler_nfe(const SamplerOptions *opt) { return nfe_of(opt, opt->cfg_scale > 1.0f); }

// What one chunk's velocity evaluations need besides x and t.
typedef struct {
    const VelocityField *f;
    Tensor *labels; // (n), or (2n) = [y; null] with guidance
    float cfg_scale;
    bool guide;
} Guidance;

// x (n, ...) at time t -> the (guided) velocity (n, ...)
static Tensor *velocity(const Guidance *g, Tensor *x, float t) {
    int64_t n = x->shape.dim[0];
    if (!g->guide)
        return g->f->forward(g->f->self, x, tensor_full(shape1(n), t, x->device), g->labels);
    // One forward of 2n rows: a single large batch keeps the matmuls efficient.
    Tensor *pair[2] = {x, x};
    Tensor *v2 = g->f->forward(g->f->self, op_concat(pair, 2, 0),
                               tensor_full(shape1(2 * n), t, x->device), g->labels);
    Tensor *v[2]; // conditional, unconditional
    op_chunk(v2, 2, 0, v);
    return op_add(v[1], op_mul_scalar(op_sub(v[0], v[1]), g->cfg_scale));
}

// x (n, ...) at t0 -> (n, ...) at t1 < t0; `last` makes Heun take an Euler step, so that no
// evaluation happens at t = 0
static Tensor *ode_step(const Guidance *g, SamplerMethod method, Tensor *x, float t0, float t1,
                        bool last) {
    float dt = t1 - t0;
    Tensor *d0 = velocity(g, x, t0);
    Tensor *x_euler = op_add(x, op_mul_scalar(d0, dt));
    if (method == SAMPLER_EULER || last) return x_euler;
    Tensor *d1 = velocity(g, x_euler, t1);
    return op_add(x, op_mul_scalar(op_add(d0, d1), 0.5f * dt));
}

// rows [start, start + n) of y, or null labels for y NULL; followed by n null labels when
// guiding -> (n) or (2n)
static Tensor *chunk_labels(const VelocityField *f, Tensor *y, int64_t start, int64_t n,
                            bool guide, Device device) {
    Tensor *rows = y ? tensor_rows(y, start, n) : NULL;
    if (rows && !guide) return rows;
    Tensor *nulls = flow_null_labels(n, f->null_label, device);
    if (!rows) return nulls;
    Tensor *pair[2] = {rows, nulls};
    return op_concat(pair, 2, 0);
}

// noise (N, ...), y (N) or NULL -> (N, ...)
Tensor *sample_flow_field(const VelocityField *f, Tensor *noise, Tensor *y,
                          const SamplerOptions *opt, int64_t *nfe) {
    DMDR_CHECK(opt->steps >= 1, "sampler steps %d < 1", opt->steps);
    DMDR_CHECK(opt->shift >= 1.0f, "time shift %g < 1", (double)opt->shift);
    DMDR_CHECK(opt->method >= 0 && opt->method < SAMPLER_METHOD_COUNT, "unknown sampler %d",
               (int)opt->method);
    DMDR_CHECK(noise->dtype == DTYPE_F32 && noise->shape.ndim >= 1, "noise must be (N, ...) F32");
    int64_t total = noise->shape.dim[0];
    DMDR_CHECK(!y || (y->dtype == DTYPE_I32 && y->shape.ndim == 1 && y->shape.dim[0] == total &&
                      y->device == noise->device),
               "labels must be (N) I32 on the noise's device, N = %lld", (long long)total);
    float *grid = malloc((size_t)(opt->steps + 1) * sizeof *grid);
    DMDR_CHECK(grid != NULL, "out of host memory");
    sampler_time_grid(opt->steps, opt->shift, grid);
    bool guide = guided(opt, y);
    int64_t chunk = opt->chunk > 0 ? opt->chunk : total;

    Tensor *out = tensor_empty(noise->shape, DTYPE_F32, noise->device);
    autograd_no_grad_begin();
    for (int64_t start = 0; start < total; start += chunk) {
        int64_t n = total - start < chunk ? total - start : chunk;
        tensor_scope_begin();
        Guidance g = {f, chunk_labels(f, y, start, n, guide, noise->device), opt->cfg_scale,
                      guide};
        Tensor *x = tensor_retain(tensor_rows(noise, start, n));
        for (int k = 0; k < opt->steps; k++) {
            tensor_scope_begin(); // one step's temporaries at a time
            Tensor *next = tensor_retain(
                ode_step(&g, opt->method, x, grid[k], grid[k + 1], k == opt->steps - 1));
            tensor_scope_end();
            tensor_release(x);
            x = next;
        }
        tensor_copy_into(tensor_rows(out, start, n), x);
        tensor_release(x);
        tensor_scope_end();
    }
    autograd_no_grad_end();
    free(grid);
    if (nfe) *nfe = nfe_of(opt, guide);
    return out;
}

// noise (N, ...), y (N) or NULL -> (N, ...)
Tensor *sample_flow(Model *m, Tensor *noise, Tensor *y, const SamplerOptions *opt, int64_t *nfe) {
    VelocityField f = velocity_field_of_model(m);
    return sample_flow_field(&f, noise, y, opt, nfe);
}

// -> (n, data_dim) or (n, C, H, W)
Tensor *sample_flow_rng(Model *m, int64_t n, Tensor *y, Rng *rng, const SamplerOptions *opt,
                        int64_t *nfe) {
    return sample_flow(m, tensor_normal(model_data_shape(m, n), rng, 0.0f, 1.0f, model_device(m)), y, opt, nfe);
}
