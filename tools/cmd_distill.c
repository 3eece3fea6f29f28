// dmdr distill: DMD distillation of a teacher into a K-step generator (stage 1 of DMDR,
// docs/algorithm.md sections 2 to 5; the trainer is dmdr/distill.c), and with --rl, stage 2:
// reinforcement learning on a stage-1 generator (--init CHECKPOINT) regularised by DMD, a KL
// or nothing (section 6; dmdr/rl.c), the judge classifier as the reward. DMD needs no data:
// the generator learns from the teacher's score alone. Leaves a run directory (tools/rundir.h):
// config.ini, metrics.jsonl (per generator step: DMD and fake losses, gradient norms, the
// DynaDG scale, the renoise-time mean), checkpoints of the whole state, sample grids over time,
// and model.safetensors, the generator, which `dmdr sample` and `dmdr eval` read as a K-step
// generator.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "dmdr/distill.h"
#include "dmdr/rl.h"
#include "nn/guard.h"
#include "kernels/threads.h"
#include "tensor/dist.h"
#include "tools/commands.h"
#include "tools/eval/eval.h"
#include "tools/progress.h"
#include "tools/rundir.h"
#include "tools/run_loop.h"

const ConfigCommand distill_command = {
    .name = "distill",
    .sections = "distill rl eval sample run",
    .own_flags = {"resume", "init"},
};

// Labels of the independent streams derived from --seed.
enum { STREAM_DISTILL = 1, STREAM_SAMPLES, STREAM_STAGE2 };

typedef struct {
    Config cfg;
    char *config_ini; // cfg as INI text, stored in every checkpoint (RUN_CONFIG_KEY)
    Distiller d;
    RlStage stage;          // stage 2 only
    Classifier *classifier; // its reward model
    int64_t rl_start;       // the generator step stage 2 began at
    int64_t target;         // the generator step to stop at
    RunDir run;
    TrainingGuard gen_guard, fake_guard; // stop at a non-finite number, warn of divergence
    double elapsed_before;
    DistillStats sum, last; // accumulated since the last metrics line (generator turns only); the last
    int64_t sum_count;
    char steps_text[16], shift_text[32], rl_start_text[32];
} Run;

#define RL_START_KEY "rl_start_step"

static bool stage2(const Config *c) { return c->rl.opt.algorithm != RL_NONE; }

// The generator's own metadata, beside the run configuration: what makes its files samplable
#define MAX_METADATA 5
static int metadata(Run *r, const char **keys, const char **values) {
    keys[0] = RUN_CONFIG_KEY, values[0] = r->config_ini;
    keys[1] = CHECKPOINT_ROLE_KEY, values[1] = ROLE_GENERATOR;
    keys[2] = GENERATOR_STEPS_KEY, values[2] = r->steps_text;
    keys[3] = GENERATOR_SHIFT_KEY, values[3] = r->shift_text;
    if (!stage2(&r->cfg)) return 4;
    snprintf(r->rl_start_text, sizeof r->rl_start_text, "%lld", (long long)r->rl_start);
    keys[4] = RL_START_KEY, values[4] = r->rl_start_text;
    return 5;
}

static Checkpoint run_checkpoint(Run *r, const char **keys, const char **values) {
    Checkpoint ck;
    distiller_checkpoint(&r->d, &ck);
    rl_stage_checkpoint(&r->stage, &ck);
    ck.extra_count = metadata(r, keys, values);
    ck.extra_keys = keys;
    ck.extra_values = values;
    return ck;
}

static int save_checkpoint(void *ctx, const char *path, Error *err) {
    const char *keys[MAX_METADATA], *values[MAX_METADATA];
    Checkpoint ck = run_checkpoint(ctx, keys, values);
    return checkpoint_save(path, &ck, err);
}

// The generator alone, as `dmdr sample` and `dmdr eval` read it (format dmdr.weights).
static int export_generator(Run *r, const char *path, Error *err) {
    const char *keys[MAX_METADATA], *values[MAX_METADATA];
    int n = metadata(r, keys, values);
    return checkpoint_export_weights(path, model_params(r->d.generator), NULL,
                                     model_config(r->d.generator), n, keys, values, err);
}

// A grid from the generator, always from the same noise so the grids of a run compare
static int save_samples(void *ctx, const char *path, Error *err) {
    Run *r = ctx;
    Rng base = rng_make((uint64_t)r->cfg.run.seed);
    SamplingModel sm = {r->d.generator, r->d.opt.gen.steps, r->d.opt.gen.shift};
    return write_samples_png(&sm, &r->cfg, rng_fork(&base, STREAM_SAMPLES).seed, path, false,
                             NULL, NULL, NULL, err);
}

// The teacher's weights, or for a resume a model of the checkpoint's configuration (its
// values come from the checkpoint, which holds every network)
static Model *starting_model(const Config *c, const char *resume, Error *err) {
    if (resume) {
        ModelConfig mc;
        if (checkpoint_read_model_config(resume, &mc, err) != 0) return NULL;
        Rng rng = rng_make(0);
        return model_create(&mc, c->run.device, &rng, err);
    }
    if (!c->distill.teacher[0]) {
        error_set(err, "no teacher: give its weights with --teacher PATH (a train-teacher "
                       "model.safetensors or checkpoint)");
        return NULL;
    }
    SamplingModel sm;
    if (load_sampling_model(c->distill.teacher, c->run.device, true, &sm, err) != 0) return NULL;
    if (sm.generator_steps) {
        model_free(sm.model);
        error_set(err, "%s is a %d-step generator, not a teacher", c->distill.teacher,
                  sm.generator_steps);
        return NULL;
    }
    return sm.model;
}

// The generator step stage 2 of `checkpoint` began at (its metadata), or -1 with err
static int64_t read_rl_start(const char *checkpoint, Error *err) {
    CheckpointMetadata md;
    if (checkpoint_read_metadata(checkpoint, &md, err) != 0) return -1;
    const char *v = checkpoint_metadata_get(&md, RL_START_KEY);
    char *end = NULL;
    long long start = v ? strtoll(v, &end, 10) : -1;
    if (!v || *end || start < 0)
        error_set(err, "%s: no valid %s: not a stage-2 checkpoint", checkpoint, RL_START_KEY);
    checkpoint_metadata_free(&md);
    return v && !*end && start >= 0 ? start : -1;
}

// Stage 2's reward and hooks, once the trainer holds the generator it starts from
static int attach_stage2(Run *r, Error *err) {
    const Config *c = &r->cfg;
    if (!c->eval.classifier[0])
        return error_set(err, "stage 2 needs the reward model: --classifier FILE (dmdr "
                              "train-classifier's classifier.safetensors)");
    if (eval_classifier_load(c->eval.classifier, c->run.device, &r->classifier, err) != 0)
        return -1;
    const ClassifierConfig *cc = classifier_config(r->classifier);
    const ModelConfig *mc = model_config(r->d.generator);
    if (mc->kind == MODEL_MLP || cc->in_channels != mc->in_channels ||
        cc->image_size != mc->image_size || cc->num_classes != mc->num_classes)
        return error_set(err, "%s classifies %dx%dx%d images of %d classes; the generator makes "
                              "%s", c->eval.classifier, cc->in_channels, cc->image_size,
                         cc->image_size, cc->num_classes,
                         mc->kind == MODEL_MLP ? "vectors" : "other images");
    return rl_stage_init(&r->stage, &c->rl.opt, &r->d, reward_of_classifier(r->classifier), err);
}

// resume: a checkpoint of this run; init: a stage-1 checkpoint that stage 2 starts from
static int run_setup(Run *r, const char *resume, const char *init, bool out_given, Error *err) {
    const Config *c = &r->cfg;
    if (!backend_get(c->run.device))
        return error_set(err, "%s backend not available", device_name(c->run.device));
    if (stage2(c) && !resume && !init)
        return error_set(err, "--rl %s starts from a stage-1 generator: give its checkpoint with "
                              "--init CHECKPOINT", rl_algorithm_name(c->rl.opt.algorithm));
    if (!stage2(c) && init)
        return error_set(err, "--init starts stage 2 from %s: say which RL algorithm with --rl "
                              "backprop or --rl ppo (--resume continues a stage-1 run)", init);
    if (c->rl.opt.algorithm == RL_PPO && dist_size() > 1) // before loading anything
        return error_set(err, "rl: ppo runs on one process; started on %d ranks (reward "
                              "backprop runs on several)", dist_size());
    command_run_setup(c, "dmdr distill");
    if (!dist_divides(c->distill.opt.batch))
        return error_set(err, "distill.batch %d does not split over %d ranks (the batch is the "
                              "global batch: make it a multiple of the rank count)",
                         c->distill.opt.batch, dist_size());
    snprintf(r->steps_text, sizeof r->steps_text, "%d", c->distill.opt.gen.steps);
    snprintf(r->shift_text, sizeof r->shift_text, "%.9g", (double)c->distill.opt.gen.shift);
    const char *from = resume ? resume : init;
    Model *teacher = starting_model(c, from, err);
    if (!teacher) return -1;
    // the generator and the score network train (a separate fake network is a third copy);
    // the teacher is dropped once they are made. Activations live on the device: on a GPU
    // only the host's copy of the weights counts here.
    if (model_check_memory(model_config(teacher), c->run.device == DEVICE_CPU ? c->distill.opt.batch : 0,
                           true, c->distill.opt.fake_net == FAKE_NET_SEPARATE ? 3 : 2, "model", err) != 0) {
        model_free(teacher);
        return -1;
    }
    Rng base = rng_make((uint64_t)c->run.seed);
    DistillOptions o = command_distill_options(c);
    int rc = distiller_init(&r->d, &o, teacher, rng_fork(&base, STREAM_DISTILL).seed, err);
    model_free(teacher);
    if (rc != 0) return -1;
    Config stored = rundir_repeatable(c);
    r->config_ini = config_to_ini(&stored);
    r->target = c->distill.steps;
    // Stage 2 attaches to the generator it starts from (its KL reference is a copy): after
    // loading --init's stage-1 state; before loading a resumed stage-2 state, which then
    // restores the reference too.
    if (stage2(c) && resume && attach_stage2(r, err) != 0) return -1;
    if (from) {
        const char *keys[MAX_METADATA], *values[MAX_METADATA];
        Checkpoint ck = run_checkpoint(r, keys, values);
        if (checkpoint_load(from, &ck, err) != 0) return -1;
    }
    int64_t k = distiller_generator_steps(&r->d);
    if (stage2(c)) {
        r->rl_start = resume ? read_rl_start(resume, err) : k;
        if (r->rl_start < 0 || (init && attach_stage2(r, err) != 0)) return -1;
        r->target = r->rl_start + c->rl.steps;
        if (init) r->d.rng = rng_fork(&base, STREAM_STAGE2); // a new run's own draws
    }
    if (!resume) return rundir_create(&r->run, c, stage2(c) ? "dmdr" : "distill", err);
    if (k > r->target)
        return error_set(err, "%s is at generator step %lld, beyond the run's last (%lld): "
                              "raise --steps", resume, (long long)k, (long long)r->target);
    return rundir_continue(&r->run, resume, out_given ? c->run.out : NULL, c,
                           stage2(c) ? "dmdr" : "distill", k, &r->elapsed_before, err);
}

static void run_free(Run *r) {
    rundir_close(&r->run);
    rl_stage_free(&r->stage);
    classifier_free(r->classifier);
    if (r->d.generator) distiller_free(&r->d);
    free(r->config_ini);
}

static void accumulate(Run *r, const DistillStats *st) {
    DistillStats *s = &r->sum;
    s->dmd_loss += st->dmd_loss;
    s->fake_loss += st->fake_loss;
    s->gen_grad_norm += st->gen_grad_norm;
    s->fake_grad_norm += st->fake_grad_norm;
    s->renoise_t_mean += st->renoise_t_mean;
    s->nonfinite += st->nonfinite;
    s->allreduce_s += st->allreduce_s;
    s->extra_loss += st->extra_loss;
    s->reward_mean += st->reward_mean;
    s->reward_std += st->reward_std;
    s->ratio_std += st->ratio_std;
    s->clip_fraction += st->clip_fraction;
    s->kl += st->kl;
    r->sum_count++;
}

static int log_metrics(void *ctx, RunDir *run, int64_t k, double rate, const Progress *p,
                       Error *err) {
    Run *r = ctx;
    double n = (double)(r->sum_count > 0 ? r->sum_count : 1);
    Metric all[] = {{"dmd_loss", r->sum.dmd_loss / n},
                    {"fake_loss", r->sum.fake_loss / n},
                    {"gen_grad_norm", r->sum.gen_grad_norm / n},
                    {"fake_grad_norm", r->sum.fake_grad_norm / n},
                    {"real_scale", r->last.real_scale},
                    {"renoise_t_mean", r->sum.renoise_t_mean / n},
                    {"nonfinite", (double)r->sum.nonfinite},
                    {"images_per_s", rate},
                    {"elapsed_s", progress_elapsed(p)}},
           ranks[] = {{"allreduce_s", r->sum.allreduce_s / n}},
           // stage 2 (NaN, written as null, where they do not apply)
           rl[] = {{"reward_loss", r->sum.extra_loss / n},
                   {"reward_mean", r->sum.reward_mean / n},
                   {"reward_std", r->sum.reward_std / n},
                   {"ratio_std", r->sum.ratio_std / n},
                   {"clip_fraction", r->sum.clip_fraction / n},
                   {"kl", r->sum.kl / n}};
    Metric m[16];
    int count = 0;
    for (int i = 0; i < 9; i++) m[count++] = all[i];
    if (dist_size() > 1) m[count++] = ranks[0]; // per generator step, its fake updates included
    if (stage2(&r->cfg))
        for (int i = 0; i < 6; i++) m[count++] = rl[i];
    r->sum = (DistillStats){0};
    r->sum_count = 0;
    return rundir_log(run, k, m, count, err);
}

// Inner steps of the library's distiller_step up to and including the next generator update
// (the fake score's updates between them), each checked for non-finite numbers.
static int generator_step(void *ctx, RunStep *out, Error *err) {
    Run *r = ctx;
    DistillStats st;
    int64_t inner = 0, k;
    double allreduce_s = 0; // of every inner step up to this generator update
    do {
        distiller_step(&r->d, &st);
        allreduce_s += st.allreduce_s;
        inner++;
        k = distiller_generator_steps(&r->d);
        if (r->d.opt.dmd && training_guard_check(&r->fake_guard, k, st.fake_loss,
                                                 st.fake_grad_norm, &r->d.fake_opt, stderr, err))
            return -1;
    } while (!st.generator_updated);
    st.allreduce_s = allreduce_s;
    accumulate(r, &st);
    r->last = st;
    double gen_loss = (r->d.opt.dmd ? st.dmd_loss : 0.0) +
                      (stage2(&r->cfg) ? r->d.extra.weight * st.extra_loss : 0.0);
    *out = (RunStep){k, (double)inner * r->d.opt.batch, r->d.opt.dmd ? st.dmd_loss : st.extra_loss};
    r->gen_guard.loss_starts_at_zero = r->d.opt.dmd; // its gradient norm is still watched
    return training_guard_check(&r->gen_guard, k, gen_loss, st.gen_grad_norm, &r->d.gen_opt,
                                stderr, err);
}

// The weights every rank must hold alike (run_loop compares them at checkpoints): the
// generator's and the score network's.
static double weights_checksum(void *ctx) {
    Run *r = ctx;
    const Model *fake = r->d.scores.fake ? r->d.scores.fake : r->d.scores.net;
    return params_checksum(model_params(r->d.generator)) + params_checksum(model_params(fake));
}

static int train(Run *r, Error *err) {
    const Config *c = &r->cfg;
    RunLoopOptions o = {.first = distiller_generator_steps(&r->d), .last = r->target,
                        .log_every = c->distill.log_every,
                        .checkpoint_every = c->distill.checkpoint_every,
                        .sample_every = c->distill.sample_every, .unit = "img/s",
                        .elapsed_before = r->elapsed_before, .quiet = c->run.quiet};
    RunHooks h = {.step = generator_step, .log = log_metrics, .checkpoint = save_checkpoint,
                  .samples = save_samples, .checksum = weights_checksum};
    return run_loop(&r->run, &o, &h, r, err);
}

int distill_main(int argc, char **argv) {
    Run r = {.gen_guard.name = "generator", .fake_guard.name = "fake score"};
    ConfigArgs args;
    Error err;
    int rc = command_config(&distill_command, argc, argv, NULL, &r.cfg, &args);
    if (rc >= 0) return rc;
    const char *resume = args.own[0], *init = args.own[1];
    if (resume && init) {
        fprintf(stderr, "dmdr distill: --resume continues a run, --init starts stage 2 from one: "
                        "give one of them\n");
        return 2;
    }
    const char *from = resume ? resume : init;
    if (from) { // the run's own configuration, under this command line's flags
        rc = command_config_from_checkpoint(&distill_command, argc, argv, from, true, &r.cfg,
                                            &args);
        if (rc >= 0) return rc;
    }
    double start = progress_now();
    if (run_setup(&r, resume, init, config_find_flag(argc, argv, "out") != NULL, &err) != 0) {
        fprintf(stderr, "dmdr distill: %s\n", err.msg);
        run_free(&r);
        return 1;
    }
    const Config *c = &r.cfg;
    const DistillOptions *o = &r.d.opt;
    printf("distill: preset %s, %d-step generator from %s, %s fake score, real CFG %g, DynaDG "
           "%s, DynaRS %s (K_dyn %lld), generator steps %lld..%lld of batch %d, ratio %d, %s, "
           "%d thread%s, %s GEMMs\n",
           c->preset, o->gen.steps, from ? from : c->distill.teacher,
           o->fake_net == FAKE_NET_SEPARATE ? "separate" : "LoRA", (double)o->real_cfg,
           o->dyna.dynadg ? "on" : "off", o->dyna.dynars ? "on" : "off", (long long)o->dyna.steps,
           (long long)distiller_generator_steps(&r.d) + 1, (long long)r.target, o->batch, o->ratio,
           device_name(c->run.device), threads_get(), threads_get() == 1 ? "" : "s",
           precision_name(autograd_precision()));
    if (stage2(c))
        printf("stage 2: %s, regulariser %s, reward log p(y|x) of %s, w_r %g, lr %g / %g\n",
               rl_algorithm_name(r.stage.opt.algorithm),
               rl_regularizer_name(r.stage.opt.regularizer), c->eval.classifier,
               (double)c->rl.opt.reward_weight, (double)c->rl.gen_lr, (double)c->rl.fake_lr);
    printf("run directory: %s\n", r.run.dir);
    fflush(stdout);
    char path[CONFIG_PATH_MAX + 32];
    rc = 1;
    if (train(&r, &err) != 0 ||
        (dist_rank() == 0 &&
         export_generator(&r, rundir_path(&r.run, "model.safetensors", path, sizeof path), &err) != 0)) {
        fprintf(stderr, "dmdr distill: %s\n", err.msg);
    } else {
        char took[32];
        printf("done: generator step %lld, %s in all; generator in %s\n",
               (long long)distiller_generator_steps(&r.d),
               format_duration(progress_now() - start, took, sizeof took), path);
        rc = 0;
    }
    run_free(&r);
    return rc;
}
