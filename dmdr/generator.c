#include "dmdr/generator.h"

#include <stdlib.h>

#include "autograd/ops.h"
#include "diffusion/flow.h"
#include "diffusion/sampler.h"
#include "kernels/check.h"
#include "tensor/dist.h"

static void check_options(const GeneratorOptions *o) {
    DMDR_CHECK(o->steps >= 1 && o->steps <= GENERATOR_MAX_STEPS,
               "generator steps %d not in [1, %d]", o->steps, GENERATOR_MAX_STEPS);
    DMDR_CHECK(o->shift >= 1.0f, "generator shift %g < 1", (double)o->shift);
}

void generator_time_grid(const GeneratorOptions *o, float *out) {
    check_options(o);
    sampler_time_grid(o->steps, o->shift, out);
}


// x_t (N, ...), t (N), y (N) -> (N, ...)
Tensor *generator_x0(Model *g, Tensor *x_t, Tensor *t, Tensor *y) {
    return flow_x0_from_velocity(x_t, model_forward(g, x_t, t, y), t);
}

// The untracked chain from `noise` for `steps` steps of the grid; x0s[k] (and states[k]) for
// k < steps. -> the last prediction. sharded: noise and y are this rank's rows of a global
// batch (tensor/dist.h), and the re-noises are drawn for the global batch.
static Tensor *run_chain(Model *g, const float *grid, int steps, Tensor *noise, Tensor *y,
                         Rng *rng, bool sharded, Tensor **states, Tensor **x0s) {
    int64_t n = noise->shape.dim[0];
    Tensor *x = noise, *x0 = NULL;
    autograd_no_grad_begin();
    for (int k = 0; k < steps; k++) {
        if (states) states[k] = x;
        x0 = generator_x0(g, x, tensor_full(shape1(n), grid[k], noise->device), y);
        if (x0s) x0s[k] = x0;
        if (k + 1 < steps) {
            Tensor *eps = sharded ? op_shard_normal(noise->shape, rng, noise->device)
                                  : tensor_normal(noise->shape, rng, 0.0f, 1.0f, noise->device);
            x = flow_interpolate(x0, eps, tensor_full(shape1(n), grid[k + 1], noise->device));
        }
    }
    autograd_no_grad_end();
    return x0;
}

// noise (N, ...), y (N) -> (N, ...)
Tensor *generator_sample(Model *g, const GeneratorOptions *o, Tensor *noise, Tensor *y,
                         Rng *rng, Tensor **states, Tensor **x0s) {
    float grid[GENERATOR_MAX_STEPS + 1];
    generator_time_grid(o, grid);
    return run_chain(g, grid, o->steps, noise, y, rng, false, states, x0s);
}

// y (N) -> (N, ...)
Tensor *generator_backward_simulation(Model *g, const GeneratorOptions *o,
                                      GeneratorBacksim backsim, Tensor *y, Rng *rng,
                                      Tensor **x_in, Tensor **t_in) {
    DMDR_CHECK(backsim >= 0 && backsim < GENERATOR_BACKSIM_COUNT, "backward simulation %d",
               (int)backsim);
    float grid[GENERATOR_MAX_STEPS + 1];
    generator_time_grid(o, grid);
    int64_t n = y->shape.dim[0];
    Device device = y->device;
    Shape shape = model_data_shape(g, n);

    int *k = malloc((size_t)n * sizeof *k);
    float *t_host = malloc((size_t)n * sizeof *t_host);
    DMDR_CHECK(k && t_host, "out of host memory");
    int deepest = 0;
    // the steps of the global batch, of which this rank's rows are [first, first + n)
    int64_t first = (int64_t)dist_rank() * n;
    for (int64_t i = 0; i < n * dist_size(); i++) {
        int step = (int)rng_below(rng, (uint64_t)o->steps);
        if (i < first || i >= first + n) continue;
        k[i - first] = step;
        t_host[i - first] = grid[step];
        if (step > deepest) deepest = step;
    }
    // every rank runs the chain as deep as the deepest step of any rank: the chain's draws
    // must stay in step across ranks
    double deepest_any = deepest;
    dist_max_f64(&deepest_any, 1);
    deepest = (int)deepest_any;
    // start (N, ...): x0_{k-1} (or x0_k) per sample, zeros where k = 0 (there t = 1 keeps only
    // eps); a sum over the chain's predictions, each masked to the samples that re-noise it:
    // whole batch ops, where a copy per row would be N small transfers on a GPU
    Tensor *start = tensor_zeros(shape, device);
    if (deepest > 0) {
        // sample i re-noises prediction j where k[i] == j + lag
        int lag = backsim == GENERATOR_BACKSIM_PREVIOUS ? 1 : 0;
        int chain = deepest + 1 - lag;
        Tensor *x0s[GENERATOR_MAX_STEPS];
        Tensor *noise = op_shard_normal(shape, rng, device);
        run_chain(g, grid, chain, noise, y, rng, true, NULL, x0s);
        float *mask = malloc((size_t)n * sizeof *mask);
        DMDR_CHECK(mask != NULL, "out of host memory");
        autograd_no_grad_begin();
        for (int j = 1 - lag; j < chain; j++) {
            for (int64_t i = 0; i < n; i++) mask[i] = k[i] == j + lag ? 1.0f : 0.0f;
            Tensor *stops_here = tensor_from_floats(shape1(n), mask, device);
            start = op_add(start, op_mul(x0s[j], flow_per_sample(stops_here, x0s[j])));
        }
        autograd_no_grad_end();
        free(mask);
    }
    Tensor *eps = op_shard_normal(shape, rng, device);
    Tensor *t = tensor_from_floats(shape1(n), t_host, device);
    free(k);
    free(t_host);
    Tensor *x = flow_interpolate(start, eps, t);
    if (x_in) *x_in = x;
    if (t_in) *t_in = t;
    return generator_x0(g, x, t, y);
}
