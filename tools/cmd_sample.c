// dmdr sample CHECKPOINT: a PNG of class-conditional samples from a trained model (one row
// per class), or a scatter plot for 2-D data. The sampler settings default to those stored
// with the run in the checkpoint, then the usual --key value flags.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/sampler.h"
#include "kernels/threads.h"
#include "nn/checkpoint.h"
#include "tensor/dist.h"
#include "tools/commands.h"
#include "tools/data/npy.h"
#include "tools/data/png_image.h"
#include "tools/progress.h"
#include "tools/rundir.h"

#define SAMPLE_CHUNK 128 // samples per sampler pass: bounds activation memory
#define SCATTER_PX 640

const ConfigCommand sample_command = {
    .name = "sample",
    .sections = "sample run",
    .own_flags = {"png-dir", "npy"},
    .min_positional = 1,
    .max_positional = 1,
    .positional_name = "CHECKPOINT",
};

// The half-width of the scatter plot's square: the toy mixture's reach, else the samples'.
static float scatter_extent(const Config *cfg, const float *points, int64_t n) {
    float reach = 0;
    if (cfg->data.source == DATA_TOY2D) {
        reach = cfg->data.toy_radius + 4 * cfg->data.toy_std;
    } else {
        for (int64_t i = 0; i < 2 * n; i++)
            if (isfinite(points[i]) && fabsf(points[i]) > reach) reach = fabsf(points[i]);
    }
    return reach > 0 ? 1.1f * reach : 1.0f;
}

// images (n, C, H, W), labels (n) -> png_dir/000000.png ... and png_dir/labels.csv
static int write_sample_folder(const char *dir, const float *images, const int32_t *labels,
                               int64_t n, int C, int H, int W, Error *err) {
    if (make_dirs(dir, err) != 0) return -1;
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    FILE *csv = fopen(path, "w");
    if (!csv) return error_set(err, "cannot write '%s': %s", path, strerror(errno));
    int rc = fprintf(csv, "file,label\n") < 0;
    int64_t image = (int64_t)C * H * W;
    for (int64_t i = 0; i < n && !rc; i++) {
        snprintf(path, sizeof path, "%s/%06lld.png", dir, (long long)i);
        rc = png_write_grid(path, images + i * image, 1, C, H, W, 1, 0, err) != 0 ? -1 : 0;
        if (!rc && fprintf(csv, "%06lld.png,%d\n", (long long)i, (int)labels[i]) < 0) rc = 1;
    }
    if (fclose(csv) != 0 && !rc) rc = 1;
    if (rc == 1) return error_set(err, "cannot write '%s/labels.csv': %s", dir, strerror(errno));
    return rc;
}

int write_samples_png(const SamplingModel *sm, const Config *cfg, uint64_t seed,
                      const char *path, bool across_ranks, const char *png_dir, const char *npy,
                      double *seconds, Error *err) {
    Model *m = sm->model;
    const ModelConfig *mc = model_config(m);
    if (mc->kind == MODEL_MLP && mc->data_dim != 2)
        return error_set(err, "%s: cannot draw %d-dimensional samples (only images and 2-D points)",
                         path, mc->data_dim);
    if (mc->kind == MODEL_MLP && (png_dir || npy))
        return error_set(err, "--png-dir and --npy write images; %s makes 2-D points", path);
    int per_class = cfg->sample.per_class, classes = mc->num_classes;
    int64_t n = (int64_t)per_class * classes;
    if (across_ranks && !dist_divides(n))
        return error_set(err, "%lld samples (--per-class %d) do not split over %d ranks",
                         (long long)n, per_class, dist_size());
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    if (!labels) return error_set(err, "%s: out of memory for %lld samples", path, (long long)n);
    for (int64_t i = 0; i < n; i++) labels[i] = (int32_t)(i / per_class); // row = class
    SamplerOptions opt = command_sampler(cfg, SAMPLE_CHUNK);

    tensor_scope_begin();
    double start = progress_now();
    Rng rng = rng_make(seed);
    Tensor *y = tensor_from_ints(shape1(n), labels, model_device(m));
    int64_t size = shape_numel(model_data_shape(m, n));
    float *host = malloc((size_t)size * sizeof *host);
    int rc = 0;
    if (!host) {
        rc = error_set(err, "%s: out of memory for the samples", path);
    } else {
        if (across_ranks) sample_model_gathered(sm, n, y, &rng, &opt, NULL, host);
        else tensor_read(sample_model(sm, n, y, &rng, &opt, NULL), host);
        if (seconds) *seconds = progress_now() - start;
        if (across_ranks && dist_rank() != 0)
            rc = 0; // its share went to rank 0, which writes the file
        else if (mc->kind == MODEL_MLP)
            rc = png_write_scatter(path, host, labels, (int)n, SCATTER_PX,
                                   scatter_extent(cfg, host, n), err);
        else
            rc = png_write_grid(path, host, (int)n, mc->in_channels, mc->image_size,
                                mc->image_size, per_class, 2, err);
        if (rc == 0 && png_dir && !(across_ranks && dist_rank() != 0))
            rc = write_sample_folder(png_dir, host, labels, n, mc->in_channels, mc->image_size,
                                     mc->image_size, err);
        if (rc == 0 && npy && !(across_ranks && dist_rank() != 0))
            rc = npy_write_images_u8(npy, host, (int)n, mc->in_channels, mc->image_size,
                                     mc->image_size, err);
    }
    tensor_scope_end();
    free(host);
    free(labels);
    return rc;
}

int sample_main(int argc, char **argv) {
    Config cfg;
    ConfigArgs args;
    Error err;
    int rc = command_config(&sample_command, argc, argv, NULL, &cfg, &args);
    if (rc >= 0) return rc;
    const char *path = args.positional[0];
    // again, over the run's own configuration when the file has one
    rc = command_config_from_checkpoint(&sample_command, argc, argv, path, false, &cfg, &args);
    if (rc >= 0) return rc;
    char out[CONFIG_PATH_MAX + 16];
    if (config_find_flag(argc, argv, "out")) { // a stored run.out is the run's folder: not ours
        snprintf(out, sizeof out, "%s", cfg.run.out);
    } else {
        size_t len = strlen(path);
        const char *ext = ".safetensors";
        if (len > strlen(ext) && strcmp(path + len - strlen(ext), ext) == 0) len -= strlen(ext);
        snprintf(out, sizeof out, "%.*s-samples.png", (int)len, path);
    }
    rc = 1;
    SamplingModel sm = {0};
    command_run_setup(&cfg, "dmdr sample");
    if (!backend_get(cfg.run.device)) {
        fprintf(stderr, "dmdr sample: %s backend not available\n", device_name(cfg.run.device));
    } else if (load_sampling_model(path, cfg.run.device, cfg.sample.ema, &sm, &err) != 0) {
        fprintf(stderr, "dmdr sample: %s\n", err.msg);
    } else {
        double seconds = 0;
        Model *m = sm.model;
        if (write_samples_png(&sm, &cfg, (uint64_t)cfg.run.seed, out, true, args.own[0],
                              args.own[1], &seconds, &err) != 0) {
            fprintf(stderr, "dmdr sample: %s\n", err.msg);
        } else {
            int64_t n = (int64_t)cfg.sample.per_class * model_config(m)->num_classes;
            char how[96];
            if (sm.generator_steps)
                snprintf(how, sizeof how, "%d-step generator", sm.generator_steps);
            else
                snprintf(how, sizeof how, "%s %d steps, cfg %g, shift %g",
                         sampler_method_name(cfg.sample.opt.method), cfg.sample.opt.steps,
                         (double)cfg.sample.opt.cfg_scale, (double)cfg.sample.opt.shift);
            printf("wrote %s: %lld samples (%d per class), %s, seed %d, %.2f s (%.1f samples/s)\n",
                   out, (long long)n, cfg.sample.per_class, how, cfg.run.seed, seconds,
                   (double)n / (seconds > 0 ? seconds : 1e-9));
            if (args.own[0]) printf("wrote %s/: one PNG per sample, labels.csv\n", args.own[0]);
            if (args.own[1]) printf("wrote %s: (%lld, H, W, C) uint8\n", args.own[1], (long long)n);
            rc = 0;
        }
    }
    model_free(sm.model);
    return rc;
}
