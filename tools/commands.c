// What every command does first: resolve its settings, over a run's stored ones.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "kernels/check.h"
#include "kernels/threads.h"
#include "nn/checkpoint.h"
#include "tensor/dist.h"
#include "tools/commands.h"
#include "tools/data/dataset.h"

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

// Values no one writes, within each key's range: a resolution over an INI of them leaves
// exactly the keys that the command line and its --config file set changed.
#define UNSET_CLASSES 99991
#define UNSET_CHANNELS 63
#define UNSET_SIZE 4093

int command_shape_from_png_folder(const ConfigCommand *cmd, int argc, char **argv, Config *cfg,
                                  Error *err) {
    if (cfg->data.source != DATA_PNG || !cfg->data.path[0]) return 0;
    char unset[160];
    snprintf(unset, sizeof unset, "[model]\nnum_classes = %d\nin_channels = %d\nimage_size = %d\n",
             UNSET_CLASSES, UNSET_CHANNELS, UNSET_SIZE);
    Config probe;
    ConfigArgs args;
    if (config_resolve(&probe, cmd, argc, argv, unset, &args, err) != 0) return -1;
    PngFolderShape folder;
    if (png_folder_probe(cfg->data.path, &folder, err) != 0) return -1;
    char taken[128] = "";
    if (probe.model.num_classes == UNSET_CLASSES) {
        cfg->model.num_classes = folder.classes;
        snprintf(taken + strlen(taken), sizeof taken - strlen(taken), "%d classes", folder.classes);
    }
    if (probe.model.in_channels == UNSET_CHANNELS) {
        cfg->model.in_channels = folder.channels;
        snprintf(taken + strlen(taken), sizeof taken - strlen(taken), "%s%d channel%s",
                 taken[0] ? ", " : "", folder.channels, folder.channels == 1 ? "" : "s");
    }
    if (probe.model.image_size == UNSET_SIZE) {
        cfg->model.image_size = folder.size;
        snprintf(taken + strlen(taken), sizeof taken - strlen(taken), "%s%dx%d images",
                 taken[0] ? ", " : "", folder.size, folder.size);
    }
    if (taken[0])
        printf("dmdr %s: from %s: %s (--num-classes, --in-channels, --image-size set them)\n",
               cmd->name, cfg->data.path, taken);
    return 0;
}

int command_load_images(const Config *cfg, DataSplit split, int channels, int size, Dataset *out,
                        Error *err) {
    const char *path = cfg->data.path[0] ? cfg->data.path : NULL;
    switch (cfg->data.source) {
    case DATA_FASHION_MNIST:
        if (split == SPLIT_ALL)
            return error_set(err, "Fashion-MNIST comes as a training and a test set, not as one");
        return fashion_mnist_load(path, split == SPLIT_TRAIN, out, err);
    case DATA_PNG: {
        if (!path) return error_set(err, "dataset png needs the image folder: --data PATH");
        PngFolderShape folder = {0};
        if ((channels == 0 || size == 0) && png_folder_probe(path, &folder, err) != 0) return -1;
        return png_folder_load(path, channels ? channels : folder.channels,
                               size ? size : folder.size, split, out, err);
    }
    case DATA_TOY2D: break;
    }
    return error_set(err, "data.dataset %s holds no images: fashion-mnist or png",
                     cfg->data.source == DATA_TOY2D ? "toy2d" : "(unknown)");
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

Precision command_run_setup(const Config *cfg, const char *command) {
    threads_set(cfg->run.threads);
    Precision precision = cfg->run.precision;
    const Backend *be = backend_get(cfg->run.device);
    const char *missing = precision == PRECISION_BF16 && be ? be->bf16_missing(be) : NULL;
    if (missing) {
        if (dist_rank() == 0) // one line for the run, not one per rank
            fprintf(stderr, "%s: precision bf16 asked for, but %s: running fp32\n", command,
                    missing);
        precision = PRECISION_FP32;
    }
    autograd_set_precision(precision);
    return precision;
}

DistillOptions command_distill_options(const Config *cfg) {
    DistillOptions o = cfg->distill.opt;
    o.dmd = true;
    o.dyna.steps =
        cfg->distill.dyn_steps > 0 ? cfg->distill.dyn_steps : (cfg->distill.steps + 1) / 2;
    if (cfg->rl.opt.algorithm != RL_NONE) o.gen_lr = cfg->rl.gen_lr, o.fake_lr = cfg->rl.fake_lr;
    return o;
}

FlowTrainOptions command_flow_train(const Config *cfg) {
    FlowTrainOptions o = cfg->train.opt;
    AdamWConfig defaults = adamw_config_default();
    o.adamw.beta1 = defaults.beta1, o.adamw.beta2 = defaults.beta2, o.adamw.eps = defaults.eps;
    o.schedule.decay = LR_COSINE;
    o.schedule.total_steps = cfg->train.steps;
    return o;
}

SamplerOptions command_sampler(const Config *cfg, int64_t chunk) {
    SamplerOptions opt = cfg->sample.opt;
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
