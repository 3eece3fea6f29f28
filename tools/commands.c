// What every command does first: resolve its settings, over a run's stored ones.
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "dmdr/generator.h"
#include "nn/checkpoint.h"
#include "tools/commands.h"

int command_config(const ConfigCommand *cmd, int argc, char **argv, const char *stored,
                   Config *cfg, ConfigArgs *args) {
    Error err;
    if (config_resolve(cfg, cmd, argc, argv, stored, args, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    if (args->help) {
        print_command_help(cmd->name);
        return 0;
    }
    return -1;
}

int command_config_from_checkpoint(const ConfigCommand *cmd, int argc, char **argv,
                                   const char *checkpoint, bool required, Config *cfg,
                                   ConfigArgs *args) {
    Error err;
    char *stored;
    if (read_run_config(checkpoint, &stored, &err) != 0 ||
        (!stored && required &&
         error_set(&err, "%s holds no run configuration ('%s'): not a %s checkpoint", checkpoint,
                   RUN_CONFIG_KEY, cmd->name))) {
        fprintf(stderr, "dmdr %s: %s\n", cmd->name, err.msg);
        return 1;
    }
    if (!stored) return -1; // cfg stays as the command line resolved it
    int rc = command_config(cmd, argc, argv, stored, cfg, args);
    free(stored);
    return rc;
}

FlowTrainOptions command_flow_train(const Config *cfg) {
    FlowTrainOptions o = {
        .loss = {.time_dist = (FlowTimeDist)cfg->train.time_dist,
                 .logit_mean = cfg->train.logit_mean,
                 .logit_std = cfg->train.logit_std,
                 .label_dropout = cfg->train.label_dropout},
        .adamw = adamw_config_default(),
        .schedule = {.base_lr = cfg->train.lr, .warmup_steps = cfg->train.warmup,
                     .decay = LR_COSINE, .total_steps = cfg->train.steps,
                     .min_lr = cfg->train.min_lr},
        .clip = cfg->train.clip,
        .ema_decay = cfg->train.ema_decay,
    };
    o.adamw.weight_decay = cfg->train.weight_decay;
    return o;
}

SamplerOptions command_sampler(const Config *cfg, int64_t chunk) {
    SamplerOptions opt = sampler_defaults();
    opt.method = (SamplerMethod)cfg->sample.method;
    opt.steps = cfg->sample.steps;
    opt.cfg_scale = cfg->sample.cfg;
    opt.shift = cfg->sample.shift;
    opt.chunk = chunk;
    return opt;
}

int read_run_config(const char *checkpoint, char **ini, Error *err) {
    *ini = NULL;
    CheckpointMetadata md;
    if (checkpoint_read_metadata(checkpoint, &md, err) != 0) return -1;
    const char *stored = checkpoint_metadata_get(&md, RUN_CONFIG_KEY);
    if (stored) {
        *ini = strdup(stored);
        DMDR_CHECK(*ini != NULL, "out of host memory");
    }
    checkpoint_metadata_free(&md);
    return 0;
}

// A file's generator keys, checked against its role and read through the flags' own ranges
// (distill.gen_steps, distill.gen_shift): a teacher's file with generator_steps added, or a
// shift of inf, is refused by name instead of sampled.
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
    Config scratch;
    config_defaults(&scratch);
    char where[CONFIG_PATH_MAX + 32];
    snprintf(where, sizeof where, "%s: metadata", path);
    if (config_set(&scratch, "distill.gen_steps", steps, "distill", where, err) != 0 ||
        (shift && config_set(&scratch, "distill.gen_shift", shift, "distill", where, err) != 0))
        return -1;
    out->generator_steps = scratch.distill.gen_steps;
    out->generator_shift = shift ? scratch.distill.gen_shift : 1.0f;
    return 0;
}

int load_sampling_model(const char *path, Device device, SamplingModel *out, Error *err) {
    *out = (SamplingModel){0};
    ModelConfig mc;
    CheckpointMetadata md;
    if (checkpoint_read_model_config(path, &mc, err) != 0 ||
        checkpoint_read_metadata(path, &md, err) != 0)
        return -1;
    const char *format = checkpoint_metadata_get(&md, "format");
    int rc = read_generator_keys(path, &md, out, err);
    // a teacher's training checkpoint samples from its EMA; a generator has none (algorithm.md
    // section 4: no EMA needed), so its live weights are the model
    bool ema = !out->generator_steps && format && strcmp(format, CHECKPOINT_FORMAT) == 0;
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
