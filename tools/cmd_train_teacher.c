// dmdr train-teacher: trains the flow-matching teacher (docs/algorithm.md section 1) and
// leaves a run directory (tools/rundir.h): config.ini, metrics.jsonl, checkpoints, sample
// grids over time and the final EMA weights in model.safetensors.
//
// One step: a batch from the seeded loader, the flow-matching loss (times, noise and label
// dropout drawn from the "train" stream), backward, AdamW at the warm-up + cosine learning
// rate with gradient clipping, then the EMA update. A checkpoint holds all of that state, so
// --resume continues the same run bit for bit on the same machine and thread count.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "diffusion/flow_trainer.h"
#include "kernels/threads.h"
#include "nn/checkpoint.h"
#include "nn/guard.h"
#include "tensor/dist.h"
#include "tools/commands.h"
#include "tools/data/dataset.h"
#include "tools/progress.h"
#include "tools/rundir.h"
#include "tools/run_loop.h"

const ConfigCommand train_teacher_command = {
    .name = "train-teacher",
    .sections = "train model data sample run",
    .own_flags = {"resume"},
};

// Labels of the independent streams derived from --seed.
enum { STREAM_INIT = 1, STREAM_TRAIN, STREAM_DATA_ORDER, STREAM_SAMPLES, STREAM_TOY_DATA };

typedef struct {
    Config cfg;
    char *config_ini; // cfg as INI text, stored in every checkpoint (RUN_CONFIG_KEY)
    const char *metadata[2]; // what every checkpoint stores: config_ini and the role
    Dataset data;
    DataLoader loader;
    Model *model;
    FlowTrainer flow; // the library's training step: its AdamW and EMA
    Rng rng;          // the training draws
    int64_t step;
    DataPosition pos;
    RunDir run;
    TrainingGuard guard; // stops the run at a non-finite number, warns of divergence
    TrainStepStats last; // of the last step
    double loss_sum;     // since the last metrics line
    int64_t steps_since;
    double elapsed_before; // seconds spent by the sessions before a resume
    double last_loss, last_rate; // of the last metrics line
} Trainer;

static int load_data(const Config *c, Dataset *d, Error *err) {
    switch (c->data.source) {
    case DATA_FASHION_MNIST:
    case DATA_PNG: // the training split: a PNG folder's test images stay the judge's
        return command_load_images(c, SPLIT_TRAIN, c->model.in_channels, c->model.image_size, d,
                                   err);
    case DATA_TOY2D: {
        Rng base = rng_make((uint64_t)c->run.seed);
        return toy2d_make(c->data.toy_count, c->data.toy_components, c->data.toy_radius,
                          c->data.toy_std, rng_fork(&base, STREAM_TOY_DATA).seed, d, err);
    }
    }
    return error_set(err, "unknown dataset %d", (int)c->data.source);
}

// The model must take the data as it is; each mismatch names the setting to change.
static int check_data_fits_model(const Config *c, const Dataset *d, Error *err) {
    const ModelConfig *m = &c->model;
    if (m->kind == MODEL_MLP) {
        if (dataset_is_image(d))
            return error_set(err, "model.kind mlp takes vectors, but the data are %dx%dx%d images "
                                  "(use --kind dit or unet)", d->channels, d->height, d->width);
        if (m->data_dim != d->dim)
            return error_set(err, "model.data_dim is %d but the data have %d values per example "
                                  "(set --data-dim %d)", m->data_dim, d->dim, d->dim);
    } else {
        if (!dataset_is_image(d))
            return error_set(err, "model.kind %s takes images, but the data are %d-dimensional "
                                  "vectors (use --kind mlp)", model_kind_name(m->kind), d->dim);
        if (m->in_channels != d->channels)
            return error_set(err, "model.in_channels is %d but the images have %d (set "
                                  "--in-channels %d)", m->in_channels, d->channels, d->channels);
        if (m->image_size != d->height || m->image_size != d->width)
            return error_set(err, "model.image_size is %d but the images are %dx%d (set "
                                  "--image-size)", m->image_size, d->height, d->width);
    }
    if (m->num_classes != d->num_classes)
        return error_set(err, "model.num_classes is %d but the data have %d classes (set "
                              "--num-classes %d)", m->num_classes, d->num_classes, d->num_classes);
    return 0;
}

// What checkpoint_save writes and checkpoint_load restores: every piece of the trainer's state.
static Checkpoint trainer_checkpoint(Trainer *t) {
    static const char *const keys[] = {RUN_CONFIG_KEY, CHECKPOINT_ROLE_KEY};
    t->metadata[0] = t->config_ini, t->metadata[1] = ROLE_TEACHER;
    return (Checkpoint){
        .part_count = 1,
        .parts = {{"", model_config(t->model), model_params(t->model), &t->flow.ema, &t->flow.adamw}},
        .rng_count = 1,
        .rngs = {{"train", &t->rng}},
        .step = &t->step,
        .data = &t->pos,
        .extra_count = 2,
        .extra_keys = keys,
        .extra_values = t->metadata,
    };
}

static int save_checkpoint(void *ctx, const char *path, Error *err) {
    Trainer *t = ctx;
    t->pos = (DataPosition){t->loader.epoch, t->loader.position};
    Checkpoint ck = trainer_checkpoint(t);
    return checkpoint_save(path, &ck, err);
}

// A grid from the EMA weights, always from the same noise so the grids of a run compare.
static int save_samples(void *ctx, const char *path, Error *err) {
    Trainer *t = ctx;
    Rng base = rng_make((uint64_t)t->cfg.run.seed);
    ema_swap(&t->flow.ema, model_params(t->model));
    SamplingModel sm = {.model = t->model};
    int rc = write_samples_png(&sm, &t->cfg, rng_fork(&base, STREAM_SAMPLES).seed, path, false,
                             NULL, NULL, NULL, err);
    ema_swap(&t->flow.ema, model_params(t->model));
    return rc;
}

// Everything before the first step: data, model, optimiser, EMA, the resumed state, the
// run directory. `resume` is a checkpoint path or NULL; out_given: --out was on the command line.
static int trainer_setup(Trainer *t, const char *resume, bool out_given, Error *err) {
    const Config *c = &t->cfg;
    if (!backend_get(c->run.device))
        return error_set(err, "%s backend not available", device_name(c->run.device));
    command_run_setup(c, "dmdr train-teacher");
    if (load_data(c, &t->data, err) != 0 || check_data_fits_model(c, &t->data, err) != 0)
        return -1;
    if (!dist_divides(c->train.batch))
        return error_set(err, "train.batch %d does not split over %d ranks (the batch is the "
                              "global batch: make it a multiple of the rank count)",
                         c->train.batch, dist_size());
    Rng base = rng_make((uint64_t)c->run.seed);
    Rng init = rng_fork(&base, STREAM_INIT);
    t->rng = rng_fork(&base, STREAM_TRAIN);
    // activations live on the device: on a GPU only the host's copy of the weights counts here
    if (model_check_memory(&c->model, c->run.device == DEVICE_CPU ? c->train.batch : 0, true, 1,
                           "model", err) != 0)
        return -1;
    t->model = model_create(&c->model, c->run.device, &init, err);
    if (!t->model) return -1;
    FlowTrainOptions fo = command_flow_train(c);
    flow_trainer_init(&t->flow, t->model, &fo);
    dataloader_init(&t->loader, &t->data, c->train.batch, rng_fork(&base, STREAM_DATA_ORDER).seed);
    Config stored = rundir_repeatable(c);
    t->config_ini = config_to_ini(&stored);
    if (!resume) return rundir_create(&t->run, c, "train-teacher", err);

    Checkpoint ck = trainer_checkpoint(t);
    if (checkpoint_load(resume, &ck, err) != 0 ||
        dataloader_seek(&t->loader, t->pos.epoch, t->pos.index, err) != 0)
        return -1;
    if (t->step > c->train.steps)
        return error_set(err, "%s is at step %lld, beyond train.steps %d (raise --steps)", resume,
                         (long long)t->step, c->train.steps);
    return rundir_continue(&t->run, resume, out_given ? c->run.out : NULL, c, "train-teacher",
                           t->step, &t->elapsed_before, err);
}

static void trainer_free(Trainer *t) {
    rundir_close(&t->run);
    dataloader_free(&t->loader);
    if (t->model) flow_trainer_free(&t->flow);
    model_free(t->model);
    dataset_free(&t->data);
    free(t->config_ini);
}

// One optimiser step of the library's flow_train_step on the next batch.
static int train_step(void *ctx, RunStep *out, Error *err) {
    Trainer *t = ctx;
    tensor_scope_begin();
    Tensor *x, *y;
    dataloader_next(&t->loader, &x, &y, t->cfg.run.device);
    TrainStepStats st = flow_train_step(&t->flow, x, y, &t->rng);
    tensor_scope_end();
    t->step++;
    t->loss_sum += st.loss;
    t->steps_since++;
    t->last = st;
    *out = (RunStep){t->step, t->cfg.train.batch, t->loss_sum / (double)t->steps_since};
    return training_guard_check(&t->guard, t->step, st.loss, st.grad_norm, &t->flow.adamw, stderr,
                                err);
}

static int log_metrics(void *ctx, RunDir *run, int64_t step, double rate, const Progress *p,
                       Error *err) {
    Trainer *t = ctx;
    // with several ranks, the all-reduce's share of the last step
    Metric m[] = {{"loss", t->loss_sum / (double)t->steps_since}, {"lr", t->last.lr},
                  {"grad_norm", t->last.grad_norm}, {"images_per_s", rate},
                  {"elapsed_s", progress_elapsed(p)}, {"allreduce_s", t->last.allreduce_s}};
    t->last_loss = m[0].value;
    t->last_rate = rate;
    t->loss_sum = 0;
    t->steps_since = 0;
    return rundir_log(run, step, m, dist_size() > 1 ? 6 : 5, err);
}

// The weights every rank must hold alike (run_loop compares them at checkpoints).
static double weights_checksum(void *ctx) {
    Trainer *t = ctx;
    return params_checksum(model_params(t->model));
}

static int train(Trainer *t, Error *err) {
    const Config *c = &t->cfg;
    RunLoopOptions o = {.first = t->step, .last = c->train.steps, .log_every = c->train.log_every,
                        .checkpoint_every = c->train.checkpoint_every,
                        .sample_every = c->train.sample_every,
                        .unit = dataset_is_image(&t->data) ? "img/s" : "pts/s",
                        .elapsed_before = t->elapsed_before, .quiet = c->run.quiet};
    RunHooks h = {.step = train_step, .log = log_metrics, .checkpoint = save_checkpoint,
                  .samples = save_samples, .checksum = weights_checksum};
    return run_loop(&t->run, &o, &h, t, err);
}

int train_teacher_main(int argc, char **argv) {
    Trainer t = {0};
    ConfigArgs args;
    Error err;
    int rc = command_config(&train_teacher_command, argc, argv, NULL, &t.cfg, &args);
    if (rc >= 0) return rc;
    const char *resume = args.own[0];
    if (resume) { // the run's own configuration, under this command line's flags
        rc = command_config_from_checkpoint(&train_teacher_command, argc, argv, resume, true,
                                            &t.cfg, &args);
        if (rc >= 0) return rc;
    }
    rc = 1;
    double start = progress_now();
    if ((!resume && command_shape_from_png_folder(&train_teacher_command, argc, argv, &t.cfg,
                                                  &err) != 0) ||
        trainer_setup(&t, resume, config_find_flag(argc, argv, "out") != NULL, &err) != 0) {
        fprintf(stderr, "dmdr train-teacher: %s\n", err.msg);
        trainer_free(&t);
        return 1;
    }
    const Config *c = &t.cfg;
    char count[32];
    snprintf(count, sizeof count, "%.2fM", (double)params_numel(model_params(t.model), true) / 1e6);
    printf("train-teacher: preset %s, %s model (%s parameters), %lld examples, steps %lld..%d "
           "of batch %d, %s, %d thread%s, %s GEMMs\nrun directory: %s\n",
           c->preset, model_kind_name(c->model.kind), count, (long long)t.data.count,
           (long long)t.step + 1, c->train.steps, c->train.batch, device_name(c->run.device),
           threads_get(), threads_get() == 1 ? "" : "s", precision_name(autograd_precision()),
           t.run.dir);
    fflush(stdout);
    char path[CONFIG_PATH_MAX + 32];
    if (train(&t, &err) != 0) {
        fprintf(stderr, "dmdr train-teacher: %s\n", err.msg);
    } else if (dist_rank() == 0 &&
               checkpoint_export_weights(rundir_path(&t.run, "model.safetensors", path, sizeof path),
                                         model_params(t.model), &t.flow.ema, &c->model, 2,
                                         (const char *[]){CHECKPOINT_ROLE_KEY, RUN_CONFIG_KEY},
                                         (const char *[]){ROLE_TEACHER, t.config_ini}, &err) != 0) {
        fprintf(stderr, "dmdr train-teacher: %s\n", err.msg);
    } else if (t.last_rate == 0) {
        printf("nothing to train: the checkpoint is at step %lld = train.steps; EMA weights in %s\n",
               (long long)t.step, path);
        rc = 0;
    } else {
        char took[32];
        printf("done: step %lld, loss %.4f, %.1f %s, %s in all; EMA weights in %s\n",
               (long long)t.step, t.last_loss, t.last_rate,
               dataset_is_image(&t.data) ? "img/s" : "pts/s",
               format_duration(progress_now() - start, took, sizeof took), path);
        rc = 0;
    }
    trainer_free(&t);
    return rc;
}
