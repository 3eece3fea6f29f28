// dmdr eval CHECKPOINT --classifier FILE: per_class samples of every class from a checkpoint,
// measured by the judge against the test set (Fashion-MNIST's, or a PNG folder's held-out
// images; tools/eval/eval.h), beside the same number of real training images (the floor every
// generator is compared with); or, with --real, the floor alone.
// A table on the terminal, and JSON with --json FILE.
//
// Producing the images (make_images) is kept apart from measuring them (eval_measure), so a
// new kind of checkpoint needs a branch in make_images only. The reward column comes from
// --reward-model when given (the network stage 2 optimised, held apart from the judge), else
// from the judge; a stage-2 run is not judged by the network that rewarded it unless asked.
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/sampler.h"
#include "kernels/check.h"
#include "kernels/threads.h"
#include "tensor/dist.h"
#include "tools/commands.h"
#include "tools/data/atomic_file.h"
#include "tools/data/sha256.h"
#include "tools/eval/eval.h"
#include "tools/progress.h"

const ConfigCommand eval_command = {
    .name = "eval",
    .sections = "eval sample run data",
    .own_flags = {"json"},
    .min_positional = 0,
    .max_positional = 1,
    .positional_name = "CHECKPOINT",
};

#define SAMPLE_CHUNK 250 // samples per sampler pass: bounds activation memory

// A set of labelled images to measure and how they were made.
typedef struct {
    float *images;   // (count, C, H, W) in [-1, 1]
    int32_t *labels; // (count): per_class of each class, class by class
    int64_t count;
    const char *source; // "teacher", "generator", "real"
    bool sampled;       // made by a model (else nfe and seconds are n/a)
    int generator_steps; // K of a generator; 0: a teacher, sampled with `sampler`
    SamplerOptions sampler;
    int64_t nfe;    // network evaluations per image
    double seconds; // making them (host transfer included)
} ImageSet;

static void image_set_free(ImageSet *s) {
    free(s->images);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

// count = per_class * classes, labels class by class, images uninitialised.
static void image_set_alloc(ImageSet *s, int per_class, int classes, int64_t image_size) {
    s->count = (int64_t)per_class * classes;
    s->images = malloc((size_t)(s->count * image_size) * sizeof *s->images + 1);
    s->labels = malloc((size_t)s->count * sizeof *s->labels + 1);
    DMDR_CHECK(s->images && s->labels, "out of host memory for %lld images", (long long)s->count);
    for (int64_t i = 0; i < s->count; i++) s->labels[i] = (int32_t)(i / per_class);
}

// The first per_class training images of every class.
static int real_images(const Config *cfg, const ClassifierConfig *cc, ImageSet *out,
                       Error *err) {
    Dataset train;
    if (command_load_images(cfg, SPLIT_TRAIN, cc->in_channels, cc->image_size, &train, err) != 0)
        return -1;
    int per_class = cfg->eval.per_class, classes = cc->num_classes;
    image_set_alloc(out, per_class, classes, train.dim);
    out->source = "real";
    int64_t *taken = calloc((size_t)classes, sizeof *taken);
    DMDR_CHECK(taken != NULL, "out of host memory");
    for (int64_t i = 0; i < train.count; i++) {
        int k = train.labels[i];
        if (k >= classes || taken[k] == per_class) continue;
        memcpy(out->images + ((int64_t)k * per_class + taken[k]) * train.dim,
               train.data + i * train.dim, (size_t)train.dim * sizeof *out->images);
        taken[k]++;
    }
    int rc = 0;
    for (int k = 0; k < classes && rc == 0; k++)
        if (taken[k] < per_class)
            rc = error_set(err, "the training set has %lld images of class %d, fewer than "
                                "--per-class %d", (long long)taken[k], k, per_class);
    free(taken);
    dataset_free(&train);
    if (rc) image_set_free(out);
    return rc;
}

// per_class samples of every class from the checkpoint's model (tools/commands.h): a K-step
// generator, or a teacher with the ODE sampler of cfg->sample (steps, method, CFG, shift);
// noise from cfg->run.seed, timed.
static int sample_images(const char *path, const Config *cfg, const ClassifierConfig *cc,
                         ImageSet *out, Error *err) {
    SamplingModel sm;
    if (load_sampling_model(path, cfg->run.device, cfg->sample.ema, &sm, err) != 0) return -1;
    const ModelConfig *mc = model_config(sm.model);
    if (mc->kind == MODEL_MLP || mc->in_channels != cc->in_channels ||
        mc->image_size != cc->image_size || mc->num_classes != cc->num_classes) {
        error_set(err, "%s makes %s of %d classes; the classifier takes %dx%dx%d images of %d "
                       "classes", path, mc->kind == MODEL_MLP ? "vectors" : "images",
                  mc->num_classes, cc->in_channels, cc->image_size, cc->image_size,
                  cc->num_classes);
        model_free(sm.model);
        return -1;
    }
    int64_t image_size = (int64_t)mc->in_channels * mc->image_size * mc->image_size;
    image_set_alloc(out, cfg->eval.per_class, mc->num_classes, image_size);
    out->source = sm.generator_steps ? "generator" : "teacher";
    out->generator_steps = sm.generator_steps;
    out->sampled = true;
    out->sampler = command_sampler(cfg, SAMPLE_CHUNK);
    if (!dist_divides(out->count)) {
        model_free(sm.model);
        return error_set(err, "%lld samples (--per-class %d) do not split over %d ranks",
                         (long long)out->count, cfg->eval.per_class, dist_size());
    }
    tensor_scope_begin();
    double start = progress_now();
    Rng rng = rng_make((uint64_t)cfg->run.seed);
    Tensor *y = tensor_from_ints(shape1(out->count), out->labels, cfg->run.device);
    // split over the ranks when there are several; rank 0 gets them all
    sample_model_gathered(&sm, out->count, y, &rng, &out->sampler, &out->nfe, out->images);
    out->seconds = progress_now() - start;
    tensor_scope_end();
    model_free(sm.model);
    return 0;
}

// The one place that knows how the images are made: real training images (--real), or
// samples of the checkpoint's teacher or generator.
static int make_images(const char *path, const Config *cfg, const ClassifierConfig *cc,
                       ImageSet *out, Error *err) {
    memset(out, 0, sizeof *out);
    if (cfg->eval.real) return real_images(cfg, cc, out, err);
    return sample_images(path, cfg, cc, out, err);
}

// ---- the report ---------------------------------------------------------------------------------

// One row of the table: the samples' figure and, when there is one, the floor's beside it.
static void print_row(const char *name, const char *format, double value, const EvalMetrics *floor,
                      double floor_value, const char *note) {
    char a[32], b[32] = "";
    snprintf(a, sizeof a, format, value);
    if (floor) snprintf(b, sizeof b, format, floor_value);
    if (floor) printf("  %-16s %10s %12s%s%s\n", name, a, b, note[0] ? "   " : "", note);
    else printf("  %-16s %10s%s%s\n", name, a, note[0] ? "   " : "", note);
}

// floor: the real training images at the same count (NULL when the set is the floor itself)
static void print_report(const char *path, const Config *cfg, const ImageSet *set,
                         const EvalMetrics *m, const EvalMetrics *floor,
                         const EvalReference *ref) {
    if (set->generator_steps)
        printf("eval: %d-step generator %s, seed %d\n", set->generator_steps, path,
               cfg->run.seed);
    else if (set->sampled)
        printf("eval: teacher %s, %s %d steps, cfg %g, shift %g, seed %d\n", path,
               sampler_method_name(set->sampler.method), set->sampler.steps,
               (double)set->sampler.cfg_scale, (double)set->sampler.shift, cfg->run.seed);
    else
        printf("eval: %s training images (the floor)\n", set->source);
    printf("judge: %s (%d features), reference: %lld test images%s\n", cfg->eval.classifier,
           ref->dim, (long long)ref->count, ref->cached ? " (their features from the cache)" : "");
    printf("reward: %s\n\n", cfg->eval.reward_model[0] ? cfg->eval.reward_model
                                                       : "the judge's own log p(y|x)");
    if (floor) printf("  %-16s %10s %12s\n", "", "samples", "real floor");
    char note[128];
    snprintf(note, sizeof note, "(%d per class)", cfg->eval.per_class);
    print_row("images", "%.0f", (double)m->count, floor, floor ? (double)floor->count : 0, note);
    snprintf(note, sizeof note, "(classifier features, vs %lld test images)", (long long)ref->count);
    print_row("FID", "%.3f", m->fid, floor, floor ? floor->fid : 0, note);
    snprintf(note, sizeof note, "(k = %d, vs %lld test images of the same classes)",
             EVAL_NEIGHBOURS, (long long)m->reference_count);
    print_row("precision", "%.4f", m->precision, floor, floor ? floor->precision : 0, note);
    print_row("recall", "%.4f", m->recall, floor, floor ? floor->recall : 0, "");
    print_row("class accuracy", "%.4f", m->accuracy, floor, floor ? floor->accuracy : 0,
              "(argmax == prompted class)");
    snprintf(note, sizeof note, "(of at most %d)", ref->num_classes);
    print_row("IS analogue", "%.3f", m->is_score, floor, floor ? floor->is_score : 0, note);
    print_row("mean reward", "%.4f", m->reward, floor, floor ? floor->reward : 0,
              "(mean log p(class | image))");
    if (set->sampled) {
        printf("  %-16s %10lld   (network evaluations per image)\n", "NFE", (long long)set->nfe);
        char ranks[48] = "";
        if (dist_size() > 1) snprintf(ranks, sizeof ranks, " in each of %d ranks", dist_size());
        printf("  %-16s %10.2f   (%d thread%s%s, %.1f s)\n", "images/s",
               (double)set->count / set->seconds, threads_get(), threads_get() == 1 ? "" : "s",
               ranks, set->seconds);
    } else {
        printf("  %-16s %10s\n  %-16s %10s\n", "NFE", "n/a", "images/s", "n/a");
    }
}

// Writes the report to f (opened before the work, so a bad path fails at once); closes f.
// The figures of m into o (the report's top level, or its "floor" object).
static void add_metrics(cJSON *o, const EvalMetrics *m) {
    cJSON_AddNumberToObject(o, "samples", (double)m->count);
    cJSON_AddNumberToObject(o, "reference_samples", (double)m->reference_count);
    cJSON_AddNumberToObject(o, "fid", m->fid);
    cJSON_AddNumberToObject(o, "precision", m->precision);
    cJSON_AddNumberToObject(o, "recall", m->recall);
    cJSON_AddNumberToObject(o, "accuracy", m->accuracy);
    cJSON_AddNumberToObject(o, "is", m->is_score);
    cJSON_AddNumberToObject(o, "reward", m->reward);
}

static int write_json(AtomicFile *f, const char *path, const Config *cfg,
                      const ImageSet *set, const EvalMetrics *m, const EvalMetrics *floor,
                      Error *err) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source", set->source);
    if (set->sampled) cJSON_AddStringToObject(o, "checkpoint", path);
    else cJSON_AddNullToObject(o, "checkpoint");
    cJSON_AddStringToObject(o, "classifier", cfg->eval.classifier);
    if (cfg->eval.reward_model[0]) cJSON_AddStringToObject(o, "reward_model", cfg->eval.reward_model);
    else cJSON_AddNullToObject(o, "reward_model"); // the judge's own
    // what the networks are, wherever their files lie: the table compares reports by these
    char sha[65];
    if (sha256_file(cfg->eval.classifier, sha, NULL, err) != 0) {
        cJSON_Delete(o);
        return atomic_file_commit(f, false, err);
    }
    cJSON_AddStringToObject(o, "classifier_sha256", sha);
    if (cfg->eval.reward_model[0]) {
        if (sha256_file(cfg->eval.reward_model, sha, NULL, err) != 0) {
            cJSON_Delete(o);
            return atomic_file_commit(f, false, err);
        }
        cJSON_AddStringToObject(o, "reward_model_sha256", sha);
    }
    cJSON_AddNumberToObject(o, "per_class", cfg->eval.per_class);
    add_metrics(o, m);
    if (set->generator_steps) { // its own K steps: no ODE sampler settings
        cJSON_AddStringToObject(o, "method", "generator");
        cJSON_AddNumberToObject(o, "steps", set->generator_steps);
        cJSON_AddNullToObject(o, "cfg");
        cJSON_AddNullToObject(o, "shift");
    } else if (set->sampled) {
        cJSON_AddStringToObject(o, "method", sampler_method_name(set->sampler.method));
        cJSON_AddNumberToObject(o, "steps", set->sampler.steps);
        cJSON_AddNumberToObject(o, "cfg", set->sampler.cfg_scale);
        cJSON_AddNumberToObject(o, "shift", set->sampler.shift);
    }
    if (set->sampled) {
        cJSON_AddNumberToObject(o, "seed", cfg->run.seed);
        cJSON_AddNumberToObject(o, "nfe", (double)set->nfe);
        cJSON_AddNumberToObject(o, "images_per_s", (double)set->count / set->seconds);
        cJSON_AddNumberToObject(o, "seconds", set->seconds);
        cJSON_AddNumberToObject(o, "threads", threads_get());
        cJSON_AddNumberToObject(o, "ranks", dist_size());
    } else {
        const char *na[] = {"method", "steps", "cfg", "shift", "seed", "nfe", "images_per_s",
                            "seconds", "threads", "ranks"};
        for (int i = 0; i < (int)(sizeof na / sizeof na[0]); i++) cJSON_AddNullToObject(o, na[i]);
    }
    if (floor) add_metrics(cJSON_AddObjectToObject(o, "floor"), floor);
    else cJSON_AddNullToObject(o, "floor");
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    DMDR_CHECK(text != NULL, "out of host memory");
    bool written = fprintf(f->f, "%s\n", text) >= 0;
    free(text);
    if (!written) error_set(err, "cannot write '%s': %s", f->path, strerror(errno));
    return atomic_file_commit(f, written, err);
}

// The judge's figures of a set, with the reward column from the reward model when there is one.
static int measure(Classifier *judge, Classifier *reward, const EvalReference *ref,
                   const ImageSet *set, EvalMetrics *m, Error *err) {
    if (eval_measure(judge, ref, set->images, set->labels, set->count, m, err) != 0) return -1;
    return reward ? eval_reward(reward, set->images, set->labels, set->count, &m->reward, err) : 0;
}

// ---- the network a run was rewarded by ---------------------------------------------------------

// Whether files a and b hold the same bytes (false when either cannot be read).
static bool same_file_content(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    char ba[65536], bb[65536];
    while (same) {
        size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
        same = na == nb && memcmp(ba, bb, na) == 0;
        if (na == 0) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

// The reward model of the stage-2 run stored in checkpoint `path` (its eval.classifier) into
// out, or "" for any other file (a teacher, stage 1, no stored configuration).
static void run_reward_model(const char *path, char *out, size_t size) {
    out[0] = '\0';
    char *ini = NULL;
    Error err;
    if (read_run_config(path, &ini, &err) != 0 || !ini) return;
    Config stored;
    config_defaults(&stored);
    if (config_load_string(&stored, ini, path, NULL, &err) == 0 &&
        stored.rl.opt.algorithm != RL_NONE)
        snprintf(out, size, "%s", stored.eval.classifier);
    free(ini);
}

// -1 to go on; 2 (message printed) when the judge is the network that rewarded the run in
// `path` and --judge-is-reward was not given.
static int check_judge_held_out(const char *path, const Config *cfg) {
    char reward[CONFIG_PATH_MAX];
    if (!path || cfg->eval.judge_is_reward) return -1;
    run_reward_model(path, reward, sizeof reward);
    if (!reward[0] || !(strcmp(reward, cfg->eval.classifier) == 0 ||
                        same_file_content(reward, cfg->eval.classifier)))
        return -1;
    fprintf(stderr, "dmdr eval: %s was rewarded by %s in stage 2: judged by it, the run would be "
                    "graded by what it optimised. Measure it with a held-out judge (--classifier), "
                    "or pass --judge-is-reward true to measure it anyway\n",
            path, reward);
    return 2;
}

// ---- the command --------------------------------------------------------------------------------

// The settings: the table's, over the run's own stored in the checkpoint (its sampler
// settings and data folder) when it has them. Returns -1 to go on, else the exit code.
static int resolve(int argc, char **argv, Config *cfg, ConfigArgs *args) {
    int rc = command_config(&eval_command, argc, argv, NULL, cfg, args);
    if (rc >= 0) return rc;
    const char *path = args->positional_count ? args->positional[0] : NULL;
    if (path && !cfg->eval.real) {
        rc = command_config_from_checkpoint(&eval_command, argc, argv, path, false, cfg, args);
        if (rc >= 0) return rc;
    }
    if (cfg->eval.real && path) {
        fprintf(stderr, "dmdr eval: --real measures training images: give no CHECKPOINT\n");
        return 2;
    }
    if (!cfg->eval.real && !path) {
        fprintf(stderr, "dmdr eval: missing CHECKPOINT (or --real for the floor; see `dmdr "
                        "help eval`)\n");
        return 2;
    }
    if (!cfg->eval.classifier[0]) {
        fprintf(stderr, "dmdr eval: missing --classifier FILE (the judge, written by `dmdr "
                        "train-classifier`)\n");
        return 2;
    }
    return check_judge_held_out(path, cfg);
}

int eval_main(int argc, char **argv) {
    Config cfg;
    ConfigArgs args;
    int rc = resolve(argc, argv, &cfg, &args);
    if (rc >= 0) return rc;
    const char *path = args.positional_count ? args.positional[0] : NULL;
    const char *json = dist_rank() == 0 ? args.own[0] : NULL; // rank 0 writes the report
    // written beside its place and renamed there at the end: an interrupted evaluation leaves
    // no report (a resumed demo would take an empty one for a finished stage)
    AtomicFile json_file = {0};
    Error open_err;
    if (json && atomic_file_open(&json_file, json, &open_err) != 0) {
        fprintf(stderr, "dmdr eval: cannot write --json: %s\n", open_err.msg);
        return 2;
    }
    command_run_setup(&cfg, "dmdr eval");
    Error err;
    Classifier *judge = NULL, *reward = NULL;
    Dataset test = {0};
    EvalReference ref = {0};
    ImageSet set = {0}, real = {0};
    EvalMetrics m, floor;
    rc = 1;
    // a sampled set gets the real training images at the same count beside it: the floor
    Config floor_cfg = cfg;
    floor_cfg.eval.real = true;
    if (!backend_get(cfg.run.device))
        error_set(&err, "%s backend not available", device_name(cfg.run.device));
    else if (dist_rank() != 0) // its share of the samples goes to rank 0, which measures them
        rc = eval_classifier_load(cfg.eval.classifier, cfg.run.device, &judge, &err) == 0 &&
                     make_images(path, &cfg, classifier_config(judge), &set, &err) == 0
                 ? 0
                 : 1;
    else if (eval_classifier_load(cfg.eval.classifier, cfg.run.device, &judge, &err) == 0 &&
             (!cfg.eval.reward_model[0] ||
              eval_classifier_load(cfg.eval.reward_model, cfg.run.device, &reward, &err) == 0) &&
             command_load_images(&cfg, SPLIT_TEST, classifier_config(judge)->in_channels,
                                 classifier_config(judge)->image_size, &test, &err) == 0 &&
             eval_reference_cached(&ref, judge, cfg.eval.classifier, &test, &err) == 0 &&
             make_images(path, &cfg, classifier_config(judge), &set, &err) == 0 &&
             measure(judge, reward, &ref, &set, &m, &err) == 0 &&
             (!set.sampled ||
              (make_images(NULL, &floor_cfg, classifier_config(judge), &real, &err) == 0 &&
               measure(judge, reward, &ref, &real, &floor, &err) == 0))) {
        const EvalMetrics *beside = set.sampled ? &floor : NULL;
        print_report(path, &cfg, &set, &m, beside, &ref);
        rc = json ? write_json(&json_file, path, &cfg, &set, &m, beside, &err) : 0;
    } else if (json) {
        atomic_file_commit(&json_file, false, &err); // nothing to write: no file at all
    }
    if (rc) fprintf(stderr, "dmdr eval: %s\n", err.msg);
    image_set_free(&set);
    image_set_free(&real);
    eval_reference_free(&ref);
    dataset_free(&test);
    classifier_free(judge);
    classifier_free(reward);
    return rc;
}
