// Loading a model to sample from, and sampling it: the ODE sampler for a teacher, the K-step
// sampler for a generator.
#include "tools/eval/sampling.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "dmdr/generator.h"
#include "kernels/check.h"
#include "nn/checkpoint.h"
#include "tensor/dist.h"
#include "tools/data/manifest.h"

// A generator key's value, parsed as the command line parses the setting it comes from: the
// whole text a number, in the setting's range.
static bool parse_steps(const char *text, int *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 1 || v > GENERATOR_MAX_STEPS) return false;
    *out = (int)v;
    return true;
}

static bool parse_shift(const char *text, float *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < 1 || v > GENERATOR_MAX_SHIFT)
        return false;
    *out = (float)v;
    return true;
}

// A file's generator keys, checked against its role and read through the ranges of the
// flags that set them (distill.gen_steps, distill.gen_shift): a teacher's file with
// generator_steps added, or a shift of inf, is refused by name instead of sampled.
static int read_generator_keys(const char *path, const CheckpointMetadata *md, SamplingModel *out,
                               Error *err) {
    const char *role = checkpoint_metadata_get(md, CHECKPOINT_ROLE_KEY);
    const char *steps = checkpoint_metadata_get(md, GENERATOR_STEPS_KEY);
    const char *shift = checkpoint_metadata_get(md, GENERATOR_SHIFT_KEY);
    if (role && strcmp(role, ROLE_TEACHER) != 0 && strcmp(role, ROLE_GENERATOR) != 0)
        return error_set(err, "%s: metadata '%s' is \"%s\": not a model to sample from (a %s or "
                              "a %s)",
                         path, CHECKPOINT_ROLE_KEY, role, ROLE_TEACHER, ROLE_GENERATOR);
    bool generator = role ? strcmp(role, ROLE_GENERATOR) == 0 : steps != NULL;
    if (!generator && (steps || shift))
        return error_set(err, "%s: a %s's file has metadata '%s', which belongs to a generator's",
                         path, ROLE_TEACHER, steps ? GENERATOR_STEPS_KEY : GENERATOR_SHIFT_KEY);
    if (!generator) return 0;
    if (!steps)
        return error_set(err, "%s: a generator's file without metadata '%s'", path,
                         GENERATOR_STEPS_KEY);
    if (!parse_steps(steps, &out->generator_steps))
        return error_set(err, "%s: metadata: distill.gen_steps expects an integer in [1, %d], "
                              "got '%s'",
                         path, GENERATOR_MAX_STEPS, steps);
    out->generator_shift = 1.0f;
    if (shift && !parse_shift(shift, &out->generator_shift))
        return error_set(err, "%s: metadata: distill.gen_shift expects a number in [1, %d], "
                              "got '%s'",
                         path, GENERATOR_MAX_SHIFT, shift);
    return 0;
}

int load_sampling_model(const char *path, Device device, bool ema_wanted, SamplingModel *out,
                        Error *err) {
    *out = (SamplingModel){0};
    ModelConfig mc;
    CheckpointMetadata md;
    if (manifest_check(path, NULL, err) != 0 || checkpoint_read_model_config(path, &mc, err) != 0 ||
        checkpoint_read_metadata(path, &md, err) != 0)
        return -1;
    const char *format = checkpoint_metadata_get(&md, "format");
    int rc = read_generator_keys(path, &md, out, err);
    // a teacher's training checkpoint samples from its EMA; a generator has none (algorithm.md
    // section 4: no EMA needed), so its live weights are the model
    bool ema = ema_wanted && !out->generator_steps && format &&
               strcmp(format, CHECKPOINT_FORMAT) == 0;
    checkpoint_metadata_free(&md);
    if (rc != 0) return -1;
    Rng rng = rng_make(0); // the initial values are overwritten
    out->model = model_create(&mc, device, &rng, err);
    if (!out->model) return -1;
    if (checkpoint_load_weights(path, model_params(out->model), ema, err) != 0) {
        model_free(out->model);
        out->model = NULL;
        return -1;
    }
    return 0;
}

// y (n) -> (n, ...)
Tensor *sample_model(const SamplingModel *sm, int64_t n, Tensor *y, Rng *rng,
                     const SamplerOptions *opt, int64_t *nfe) {
    if (!sm->generator_steps) return sample_flow_rng(sm->model, n, y, rng, opt, nfe);
    GeneratorOptions g = {sm->generator_steps, sm->generator_shift};
    Tensor *noise = tensor_normal(model_data_shape(sm->model, n), rng, 0.0f, 1.0f,
                                  model_device(sm->model));
    if (nfe) *nfe = g.steps;
    int64_t chunk = opt->chunk > 0 ? opt->chunk : n;
    if (chunk >= n) return generator_sample(sm->model, &g, noise, y, rng, NULL, NULL);
    // bounded memory, as the ODE sampler's chunks
    Tensor *out = tensor_empty(noise->shape, DTYPE_F32, noise->device);
    for (int64_t start = 0; start < n; start += chunk) {
        int64_t m = n - start < chunk ? n - start : chunk;
        tensor_scope_begin();
        tensor_copy_into(tensor_rows(out, start, m),
                         generator_sample(sm->model, &g, tensor_rows(noise, start, m),
                                          tensor_rows(y, start, m), rng, NULL, NULL));
        tensor_scope_end();
    }
    return out;
}

void sample_model_gathered(const SamplingModel *sm, int64_t n, Tensor *y, Rng *rng,
                           const SamplerOptions *opt, int64_t *nfe, float *out) {
    if (dist_size() == 1) {
        tensor_read(sample_model(sm, n, y, rng, opt, nfe), out);
        return;
    }
    Tensor *noise = op_shard(tensor_normal(model_data_shape(sm->model, n), rng, 0.0f, 1.0f,
                                           model_device(sm->model)));
    Tensor *mine = op_shard(y), *x;
    if (!sm->generator_steps) {
        x = sample_flow(sm->model, noise, mine, opt, nfe);
    } else {
        GeneratorOptions g = {sm->generator_steps, sm->generator_shift};
        Rng own = rng_fork(rng, 1 + (uint64_t)dist_rank()); // the re-noises of K > 1
        x = generator_sample(sm->model, &g, noise, mine, &own, NULL, NULL);
        if (nfe) *nfe = g.steps;
    }
    tensor_read(x, out);
    dist_gather_f32(out, tensor_numel(x));
}
