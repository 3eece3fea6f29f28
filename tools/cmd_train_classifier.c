// dmdr train-classifier: trains the judge (nn/classifier.h) on the Fashion-MNIST training set
// and measures it on the test set after every epoch. Leaves a run directory (tools/rundir.h):
// config.ini, metrics.jsonl (training loss and accuracy, test loss and accuracy per epoch),
// checkpoints at epoch ends, and the final weights in classifier.safetensors.
//
// One step: a batch from the seeded loader, augmented on the host (a random horizontal flip
// and a random translation, drawn from the "train" stream), the label-smoothed cross-entropy,
// backward, AdamW at the warm-up + cosine learning rate with gradient clipping. A checkpoint
// holds all of that state, so --resume continues the same run bit for bit.
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "dmdr/metrics.h"
#include "kernels/check.h"
#include "kernels/threads.h"
#include "nn/checkpoint.h"
#include "nn/guard.h"
#include "nn/classifier.h"
#include "tensor/dist.h"
#include "tools/commands.h"
#include "tools/data/dataset.h"
#include "tools/progress.h"
#include "tools/rundir.h"
#include "tools/run_loop.h"

const ConfigCommand train_classifier_command = {
    .name = "train-classifier",
    .sections = "classifier data run",
    .own_flags = {"resume"},
};

// Labels of the independent streams derived from --seed.
enum { STREAM_INIT = 1, STREAM_TRAIN, STREAM_DATA_ORDER };

#define EVAL_CHUNK 500 // test images per forward pass

typedef struct {
    Config cfg;
    char *metadata[3]; // stored in every checkpoint: the run's INI, the classifier's JSON, the role
    Dataset train, test;
    DataLoader loader;
    Classifier *net;
    AdamW opt;
    LrSchedule sched;
    Rng rng; // the augmentation draws
    int64_t step, steps_per_epoch, total_steps;
    DataPosition pos;
    RunDir run;
    TrainingGuard guard; // stops the run at a non-finite number, warns of divergence
    TrainStepStats last; // of the last step
    double loss_sum;     // since the last metrics line, as correct and steps_since
    int64_t correct, steps_since;
    float *batch; // (batch, C, H, W) host: the augmented batch
    double elapsed_before;
    double test_accuracy, test_loss, last_rate; // of the last epoch / metrics line
} Trainer;

// The first `limit` examples of d (0: all of them).
static void keep_first(Dataset *d, int limit) {
    if (limit > 0 && limit < d->count) d->count = limit;
}

// d without its first `offset` examples; an error when none would be left.
static int skip_first(Dataset *d, int offset, Error *err) {
    if (offset == 0) return 0;
    if (offset >= d->count)
        return error_set(err, "classifier.train_offset %d skips all %lld training images", offset,
                         (long long)d->count);
    memmove(d->data, d->data + (int64_t)offset * d->dim,
            (size_t)((d->count - offset) * d->dim) * sizeof *d->data);
    memmove(d->labels, d->labels + offset, (size_t)(d->count - offset) * sizeof *d->labels);
    d->count -= offset;
    return 0;
}

static int load_data(Trainer *t, Error *err) {
    const Config *c = &t->cfg;
    // a PNG folder at its own channels and size; its test split is every 10th image
    if (command_load_images(c, SPLIT_TRAIN, 0, 0, &t->train, err) != 0 ||
        command_load_images(c, SPLIT_TEST, t->train.channels, t->train.height, &t->test,
                            err) != 0)
        return -1;
    if (skip_first(&t->train, c->classifier.train_offset, err) != 0) return -1;
    keep_first(&t->train, c->classifier.train_examples);
    keep_first(&t->test, c->classifier.test_examples);
    return 0;
}

// What checkpoint_save writes and checkpoint_load restores: every piece of the trainer's state.
static Checkpoint trainer_checkpoint(Trainer *t) {
    static const char *const keys[] = {RUN_CONFIG_KEY, CLASSIFIER_CONFIG_KEY, CHECKPOINT_ROLE_KEY};
    t->pos = (DataPosition){t->loader.epoch, t->loader.position};
    return (Checkpoint){
        .part_count = 1,
        .parts = {{"", NULL, classifier_params(t->net), NULL, &t->opt}},
        .rng_count = 1,
        .rngs = {{"train", &t->rng}},
        .step = &t->step,
        .data = &t->pos,
        .extra_count = 3,
        .extra_keys = keys,
        .extra_values = (const char *const *)t->metadata,
    };
}

// Everything before the first step. `resume` is a checkpoint path or NULL; out_given: --out
// was on the command line.
static int trainer_setup(Trainer *t, const char *resume, bool out_given, Error *err) {
    const Config *c = &t->cfg;
    if (!backend_get(c->run.device))
        return error_set(err, "%s backend not available", device_name(c->run.device));
    command_run_setup(c, "dmdr train-classifier");
    if (!dist_divides(c->classifier.batch))
        return error_set(err, "classifier.batch %d does not split over %d ranks (the batch is the "
                              "global batch: make it a multiple of the rank count)",
                         c->classifier.batch, dist_size());
    if (load_data(t, err) != 0) return -1;
    ClassifierConfig cc = {
        .in_channels = t->train.channels, .image_size = t->train.height,
        .num_classes = t->train.num_classes, .width = c->classifier.width,
        .stages = c->classifier.stages, .blocks = c->classifier.blocks,
        .groups = c->classifier.groups, .hidden = c->classifier.hidden,
        .residual = c->classifier.residual,
    };
    Rng base = rng_make((uint64_t)c->run.seed);
    Rng init = rng_fork(&base, STREAM_INIT);
    t->rng = rng_fork(&base, STREAM_TRAIN);
    t->net = classifier_create(&cc, c->run.device, &init, err);
    if (!t->net) return -1;
    AdamWConfig ac = adamw_config_default();
    ac.weight_decay = c->classifier.weight_decay;
    adamw_init(&t->opt, classifier_params(t->net), ac);
    t->steps_per_epoch = t->train.count / c->classifier.batch;
    if (t->steps_per_epoch < 1) t->steps_per_epoch = 1;
    t->total_steps = t->steps_per_epoch * c->classifier.epochs;
    t->sched = (LrSchedule){.base_lr = c->classifier.lr, .warmup_steps = c->classifier.warmup,
                            .decay = LR_COSINE, .total_steps = t->total_steps,
                            .min_lr = c->classifier.min_lr};
    dataloader_init(&t->loader, &t->train, c->classifier.batch,
                    rng_fork(&base, STREAM_DATA_ORDER).seed);
    t->batch = malloc((size_t)c->classifier.batch * (size_t)t->train.dim * sizeof *t->batch);
    DMDR_CHECK(t->batch != NULL, "out of host memory");
    Config stored = rundir_repeatable(c);
    t->metadata[0] = config_to_ini(&stored);
    t->metadata[1] = classifier_config_to_json(&cc);
    t->metadata[2] = (char *)ROLE_CLASSIFIER; // not freed
    if (!resume) return rundir_create(&t->run, c, "train-classifier", err);

    Checkpoint ck = trainer_checkpoint(t);
    if (checkpoint_load(resume, &ck, err) != 0 ||
        dataloader_seek(&t->loader, t->pos.epoch, t->pos.index, err) != 0)
        return -1;
    if (t->step > t->total_steps)
        return error_set(err, "%s is at step %lld, beyond the %lld steps of classifier.epochs %d "
                              "(raise --epochs)", resume, (long long)t->step,
                         (long long)t->total_steps, c->classifier.epochs);
    return rundir_continue(&t->run, resume, out_given ? c->run.out : NULL, c, "train-classifier",
                           t->step, &t->elapsed_before, err);
}

static void trainer_free(Trainer *t) {
    rundir_close(&t->run);
    dataloader_free(&t->loader);
    adamw_free(&t->opt);
    classifier_free(t->net);
    dataset_free(&t->train);
    dataset_free(&t->test);
    free(t->batch);
    free(t->metadata[0]);
    free(t->metadata[1]);
}

// The loader's host copy of the batch just drawn -> t->batch: each image flipped left-right
// with probability 1/2 and translated by (dy, dx) in [-shift, shift]^2, uncovered pixels
// becoming black (-1, the background of Fashion-MNIST).
static void augment(Trainer *t) {
    const Dataset *d = &t->train;
    int shift = t->cfg.classifier.shift, h = d->height, w = d->width;
    for (int64_t b = 0; b < t->loader.batch; b++) {
        const float *src = t->loader.stage + b * d->dim;
        float *dst = t->batch + b * d->dim;
        bool flip = t->cfg.classifier.flip && rng_below(&t->rng, 2);
        int dy = shift ? (int)rng_below(&t->rng, 2 * (uint64_t)shift + 1) - shift : 0;
        int dx = shift ? (int)rng_below(&t->rng, 2 * (uint64_t)shift + 1) - shift : 0;
        for (int ch = 0; ch < d->channels; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int sy = y - dy, sx = flip ? w - 1 - (x - dx) : x - dx;
                    bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
                    dst[(ch * h + y) * w + x] = inside ? src[(ch * h + sy) * w + sx] : -1.0f;
                }
    }
}

// Accuracy and mean cross-entropy on the test set.
static int evaluate(Trainer *t, Error *err) {
    const Dataset *d = &t->test;
    float *logits = malloc((size_t)(d->count * d->num_classes) * sizeof *logits);
    DMDR_CHECK(logits != NULL, "out of host memory");
    classifier_apply(t->net, d->data, d->count, EVAL_CHUNK, logits, NULL);
    ClassifierScores s;
    int rc = classifier_scores(logits, d->labels, d->count, d->num_classes, &s, err);
    t->test_accuracy = s.accuracy;
    t->test_loss = -s.mean_log_prob;
    free(logits);
    return rc;
}

static int save_checkpoint(void *ctx, const char *path, Error *err) {
    Checkpoint ck = trainer_checkpoint(ctx);
    return checkpoint_save(path, &ck, err);
}

// One optimiser step of the library's classifier_train_step on the next (augmented) batch,
// counting its correct predictions.
static int train_step(void *ctx, RunStep *out, Error *err) {
    Trainer *t = ctx;
    const Config *c = &t->cfg;
    tensor_scope_begin();
    Tensor *x, *y;
    dataloader_next(&t->loader, &x, &y, c->run.device);
    augment(t);
    tensor_write(x, t->batch);
    int64_t correct;
    TrainStepStats st = classifier_train_step(t->net, &t->opt, &t->sched, c->classifier.clip,
                                              c->classifier.label_smoothing, x, y, &correct);
    t->correct += correct;
    tensor_scope_end();
    t->step++;
    t->loss_sum += st.loss;
    t->steps_since++;
    t->last = st;
    *out = (RunStep){t->step, c->classifier.batch, t->loss_sum / (double)t->steps_since};
    return training_guard_check(&t->guard, t->step, st.loss, st.grad_norm, &t->opt, stderr, err);
}

static int log_metrics(void *ctx, RunDir *run, int64_t step, double rate, const Progress *p,
                       Error *err) {
    Trainer *t = ctx;
    double seen = (double)(t->steps_since * t->cfg.classifier.batch);
    Metric m[] = {{"loss", t->loss_sum / (double)t->steps_since},
                  {"train_accuracy", (double)t->correct / seen},
                  {"lr", t->last.lr}, {"grad_norm", t->last.grad_norm}, {"images_per_s", rate},
                  {"elapsed_s", progress_elapsed(p)}};
    t->last_rate = rate;
    t->loss_sum = 0;
    t->steps_since = t->correct = 0;
    return rundir_log(run, step, m, 6, err);
}

// The end of an epoch: the test set and its metrics line (before the epoch's checkpoint).
static int end_epoch(void *ctx, RunDir *run, int64_t step, const Progress *p, Error *err) {
    Trainer *t = ctx;
    const Config *c = &t->cfg;
    if (step % t->steps_per_epoch != 0) return 0;
    int64_t epoch = step / t->steps_per_epoch;
    if (evaluate(t, err) != 0) return -1;
    Metric m[] = {{"epoch", (double)epoch}, {"test_loss", t->test_loss},
                  {"test_accuracy", t->test_accuracy}, {"elapsed_s", progress_elapsed(p)}};
    if (rundir_log(run, step, m, 4, err) != 0) return -1;
    if (!p->quiet) // below the progress line, which a terminal redraws in place (rank 0 only)
        fprintf(stderr, "%sepoch %lld/%d: test accuracy %.2f%%, test loss %.4f\n",
                p->tty ? "\n" : "", (long long)epoch, c->classifier.epochs,
                100 * t->test_accuracy, t->test_loss);
    return 0;
}

// Checkpoints fall on epoch ends: every checkpoint_every epochs, and the last.
// The weights every rank must hold alike (run_loop compares them at checkpoints).
static double weights_checksum(void *ctx) {
    Trainer *t = ctx;
    return params_checksum(classifier_params(t->net));
}

static int train(Trainer *t, Error *err) {
    const Config *c = &t->cfg;
    int64_t every = (int64_t)c->classifier.checkpoint_every * t->steps_per_epoch;
    RunLoopOptions o = {.first = t->step, .last = t->total_steps,
                        .log_every = c->classifier.log_every,
                        .checkpoint_every = every > INT_MAX ? INT_MAX : (int)every,
                        .unit = "img/s", .elapsed_before = t->elapsed_before,
                        .quiet = c->run.quiet};
    RunHooks h = {.step = train_step, .log = log_metrics, .after_step = end_epoch,
                  .checkpoint = save_checkpoint, .checksum = weights_checksum};
    return run_loop(&t->run, &o, &h, t, err);
}

int train_classifier_main(int argc, char **argv) {
    Trainer t = {0};
    ConfigArgs args;
    Error err;
    int rc = command_config(&train_classifier_command, argc, argv, NULL, &t.cfg, &args);
    if (rc >= 0) return rc;
    const char *resume = args.own[0];
    if (resume) { // the run's own configuration, under this command line's flags
        rc = command_config_from_checkpoint(&train_classifier_command, argc, argv, resume, true,
                                            &t.cfg, &args);
        if (rc >= 0) return rc;
    }
    double start = progress_now();
    if (trainer_setup(&t, resume, config_find_flag(argc, argv, "out") != NULL, &err) != 0) {
        fprintf(stderr, "dmdr train-classifier: %s\n", err.msg);
        trainer_free(&t);
        return 1;
    }
    const Config *c = &t.cfg;
    printf("train-classifier: preset %s, width %d, %d stages of %d %sblock%s (%lld parameters), "
           "%lld training images from #%d and %lld test images, steps %lld..%lld of batch %d "
           "(%d epochs), %s, %d thread%s, %s GEMMs\nrun directory: %s\n",
           c->preset, c->classifier.width, c->classifier.stages, c->classifier.blocks,
           c->classifier.residual ? "residual " : "", c->classifier.blocks == 1 ? "" : "s",
           (long long)params_numel(classifier_params(t.net), true), (long long)t.train.count,
           c->classifier.train_offset, (long long)t.test.count, (long long)t.step + 1,
           (long long)t.total_steps, c->classifier.batch, c->classifier.epochs,
           device_name(c->run.device), threads_get(), threads_get() == 1 ? "" : "s",
           precision_name(autograd_precision()), t.run.dir);
    fflush(stdout);
    rc = 1;
    char path[CONFIG_PATH_MAX + 32];
    if (train(&t, &err) != 0) {
        fprintf(stderr, "dmdr train-classifier: %s\n", err.msg);
    } else if (dist_rank() == 0 &&
               classifier_save(t.net, rundir_path(&t.run, "classifier.safetensors", path,
                                                  sizeof path),
                               1, (const char *[]){RUN_CONFIG_KEY},
                               (const char *[]){t.metadata[0]}, &err) != 0) {
        fprintf(stderr, "dmdr train-classifier: %s\n", err.msg);
    } else if (t.last_rate == 0 && evaluate(&t, &err) != 0) { // nothing trained: measure anyway
        fprintf(stderr, "dmdr train-classifier: %s\n", err.msg);
    } else {
        char took[32];
        printf("done: step %lld, test accuracy %.2f%% (%lld images), test loss %.4f, %s in all; "
               "weights in %s\n",
               (long long)t.step, 100 * t.test_accuracy, (long long)t.test.count, t.test_loss,
               format_duration(progress_now() - start, took, sizeof took), path);
        rc = 0;
    }
    trainer_free(&t);
    return rc;
}
