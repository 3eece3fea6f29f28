// The settings of every command: one typed table (config.c) gives each setting its section,
// name, type, range, default and help; named presets change some defaults. A command's
// configuration is resolved in the order
//   table defaults < preset (--preset, else the file's `preset =`, else "small")
//                  < config file (--config FILE, INI) < --key value flags,
// and every unknown key or bad value is an Error naming the key and where it came from
// (file:line or the flag).
//
// Keys live in sections: [model], [data], [train], [sample], [classifier], [eval], [distill],
// [rl], [run]. A
// key may be written qualified ("sample.steps", or `steps` under [sample] in a file) or bare
// ("steps"): a bare name means the first section, in the command's own order, that has it. So
// `dmdr train-teacher --steps` is train.steps while `dmdr sample --steps` is sample.steps. On the
// command line dashes and underscores in names are the same (--per-class = --per_class).
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "diffusion/flow_trainer.h"
#include "diffusion/sampler.h"
#include "dmdr/distill.h"
#include "dmdr/rl.h"
#include "nn/model.h"
#include "tensor/error.h"

#define CONFIG_PATH_MAX 512
#define CONFIG_FILE_MAX (1 << 20) // bytes of a --config file (the full table is ~7 KB)
#define CONFIG_DEFAULT_PRESET "small"

// Enumerations in the order of their `choices` in the table: the library's own (FlowTimeDist,
// SamplerMethod, FakeNet, RlAlgorithm, RlRegularizer, RewardLoss), whose names they share,
// and the command line's data source.
typedef enum { DATA_FASHION_MNIST, DATA_PNG, DATA_TOY2D } DataSource;

typedef struct {
    char preset[32]; // the preset the defaults came from
    ModelConfig model;
    struct {
        DataSource source;
        char path[CONFIG_PATH_MAX]; // --data: IDX folder or images file, PNG folder; "" default
        int toy_components, toy_count;
        float toy_radius, toy_std;
    } data;
    struct {
        int steps, batch;
        // The library's training step, one table row per setting (loss, weight decay, base and
        // final learning rate, warm-up, clip, EMA decay); what is not a setting (AdamW's betas
        // and eps, the cosine decay over `steps`) command_flow_train fills in.
        FlowTrainOptions opt;
        int checkpoint_every, sample_every, log_every;
    } train;
    struct {
        SamplerOptions opt; // the library's sampler, one table row each (opt.chunk: the command's)
        int per_class;
        bool ema; // a teacher's training checkpoint: sample its EMA (false: its raw weights)
    } sample;
    struct { // the judge classifier and its training (dmdr train-classifier)
        int width, stages, blocks, groups, hidden; // nn/classifier.h
        int epochs, batch, warmup;
        float lr, min_lr, weight_decay, clip, label_smoothing;
        bool flip;     // random horizontal flips
        int shift;     // random translations by up to this many pixels (zero padding)
        int train_examples, test_examples; // the first N of each set (0: all)
        int train_offset;                  // training images skipped before those
        int residual;                      // ClassifierConfig.residual
        int checkpoint_every, log_every;   // epochs, steps
    } classifier;
    struct { // dmdr eval, and the evaluations of the trainers
        char classifier[CONFIG_PATH_MAX]; // the judge's weights (train-classifier's output)
        char reward_model[CONFIG_PATH_MAX]; // the reward column's network ("": the judge)
        bool judge_is_reward; // allow judging a run with the network that rewarded it
        int per_class;
        bool real; // measure real training images instead of samples (the floor)
    } eval;
    struct { // DMD distillation (dmdr distill), docs/algorithm.md sections 2 to 5
        char teacher[CONFIG_PATH_MAX]; // the teacher's weights
        int steps;                     // generator updates
        int dyn_steps;                 // K_dyn (0: half of steps)
        // The library's own settings, one table row each; what is not a setting (opt.dmd,
        // opt.dyna.steps, stage 2's learning rates) the command fills in.
        DistillOptions opt;
        int checkpoint_every, sample_every, log_every;
    } distill;
    struct { // stage 2 of DMDR (dmdr distill --init STAGE1_CHECKPOINT), docs/algorithm.md section 6
        RlOptions opt;         // opt.algorithm RL_NONE: stage 1 only
        int steps;             // generator updates of stage 2
        float gen_lr, fake_lr; // replace distill's in stage 2
    } rl;
    struct {
        char out[CONFIG_PATH_MAX]; // run directory, or the output file of `dmdr sample`
        int seed, threads;
        Device device;
        Precision precision; // the GEMMs' (autograd_set_precision)
        bool quiet;
    } run;
} Config;

// How one command reads its arguments.
typedef struct {
    const char *name;     // "train-teacher": in messages
    const char *sections; // "train model data sample run": bare-name order; flags may set only these
    const char *own_flags[4]; // flags the command handles itself, each with a value ("resume")
    int min_positional, max_positional;
    const char *positional_name; // "CHECKPOINT", for messages
} ConfigCommand;

typedef struct {
    const char *positional[4];
    int positional_count;
    const char *own[4]; // value of own_flags[i], or NULL when not given
    bool help;          // --help or -h was given (nothing else was checked)
} ConfigArgs;

// Table defaults (no preset applied).
void config_defaults(Config *cfg);
// Applies the preset's settings on top of cfg; an unknown name is an error listing the presets.
int config_apply_preset(Config *cfg, const char *name, Error *err);
// Sets one key from text. `key` is bare or "section.name"; bare names are looked up in
// `sections` order (NULL: every section). `source` prefixes messages ("run.ini:4"), or NULL
// for a flag, whose messages name the key as "--key".
int config_set(Config *cfg, const char *key, const char *value, const char *sections,
               const char *source, Error *err);
// Reads an INI file (sections optional) over cfg; a `preset` key is ignored here (see
// config_resolve). `name` is the file's name in messages.
int config_load_file(Config *cfg, const char *path, const char *sections, Error *err);
int config_load_string(Config *cfg, const char *text, const char *name, const char *sections,
                       Error *err);
// The whole resolution for a command: argv[0] is the command name; argv holds --preset,
// --config, the command's own flags, --key value settings and positional arguments.
// `base_ini` (may be NULL) is applied between the preset and --config: the configuration
// stored in a checkpoint being resumed, whose `preset` it also supplies.
int config_resolve(Config *cfg, const ConfigCommand *cmd, int argc, char **argv,
                   const char *base_ini, ConfigArgs *args, Error *err);
// Whether `key` (bare or "section.name", dashes or underscores) names a setting of `sections`.
bool config_has_key(const char *key, const char *sections);
// Pre-scans argv for one of the command's own flags (before the full resolution, when its
// value decides what to resolve against). NULL when absent or without a value.
const char *config_find_flag(int argc, char **argv, const char *flag);

// The resolved configuration as INI text (malloc'd) that config_load_string reads back to
// the same Config; with a comment of help above every key.
char *config_to_ini(const Config *cfg);
int config_write(const Config *cfg, const char *path, Error *err);

// `dmdr help <command>`: --preset, --config and every key of the command's sections with its
// type, default, the presets that change it, and help.
void config_print_help(FILE *out, const char *sections);

