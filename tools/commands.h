// The commands of the dmdr program (the table is in tools/dmdr.c). Each takes its own argv
// (argv[0] is the command's name) and returns the process exit code: 0 done, 1 failed while
// running (a message on stderr), 2 a bad command line.
#pragma once

#include "diffusion/flow_trainer.h"
#include "diffusion/sampler.h"
#include "nn/model.h"
#include "tools/config.h"
#include "tools/data/dataset.h"
#include "tools/eval/sampling.h"

int train_teacher_main(int argc, char **argv);
int sample_main(int argc, char **argv);
int info_main(int argc, char **argv);
int train_classifier_main(int argc, char **argv);
int eval_main(int argc, char **argv);
int distill_main(int argc, char **argv);
int demo_main(int argc, char **argv);
int bench_main(int argc, char **argv); // tools/cmd_bench.c: flags of its own, no ConfigCommand
int table_main(int argc, char **argv); // tools/cmd_table.c: likewise
int report_main(int argc, char **argv); // tools/cmd_report.c: likewise

// The demo's report.html in its folder dir (tools/cmd_demo.c) -> 0, or -1 with err.
int demo_write_report(const char *dir, Error *err);

// How each reads its arguments (sections, own flags, positionals), also for `dmdr help`.
extern const ConfigCommand train_teacher_command, sample_command, info_command,
    train_classifier_command, eval_command, distill_command, demo_command;

// Prints `dmdr help <name>` (tools/dmdr.c), for a command given --help.
void print_command_help(const char *name);

// The checkpoint metadata key under which a training run stores its resolved configuration
// (INI text): resuming and sampling start from it.
#define RUN_CONFIG_KEY "run_config"

// Resolves cmd's configuration (config_resolve) over `stored` INI text (may be NULL).
// Returns -1 to go on, else the exit code to return at once: 0 after printing the help
// (--help), 2 after printing what is wrong with the command line.
int command_config(const ConfigCommand *cmd, int argc, char **argv, const char *stored,
                   Config *cfg, ConfigArgs *args);
// Resolves cmd's configuration again over the run configuration stored in `checkpoint`, whose
// run the command continues (--resume), starts from or reads: the stored settings under this
// command line's flags. A file without one is an error when `required` (a trainer's
// checkpoint), else cfg is left as the command line resolved it (a weights file to sample).
// Returns -1 to go on, else the exit code: 1 after printing that the file is unreadable or
// holds no run configuration, or what command_config returns.
int command_config_from_checkpoint(const ConfigCommand *cmd, int argc, char **argv,
                                   const char *checkpoint, bool required, Config *cfg,
                                   ConfigArgs *args);
// The run configuration stored in a checkpoint: *ini is malloc'd text, or NULL when the file
// has none. -1 with err when the file's header cannot be read.
int read_run_config(const char *checkpoint, char **ini, Error *err);
// A fresh run on a PNG folder (data.dataset png): model.num_classes, in_channels and
// image_size that neither the command line nor its --config file gave are taken from the
// folder (png_folder_probe), with one line on stdout saying so. Nothing for other data.
// Returns 0, or -1 with err (an unreadable folder).
int command_shape_from_png_folder(const ConfigCommand *cmd, int argc, char **argv, Config *cfg,
                                  Error *err);
// The images of cfg's dataset (data.dataset, data.data) in `split`: Fashion-MNIST's training or
// test files (its fixed 1x28x28), or that split of a PNG folder (tools/data/dataset.h) at
// channels x size, each 0 for the folder's own (png_folder_probe). Returns 0, or -1 with err
// (toy2d has no images; SPLIT_ALL is a PNG folder's alone).
int command_load_images(const Config *cfg, DataSplit split, int channels, int size, Dataset *out,
                        Error *err);
// Applies cfg's [run] threads and precision to this process (threads_set,
// autograd_set_precision). bf16 on a backend without bf16 hardware keeps fp32 and says so in
// one line on stderr, prefixed with `command`. Returns the precision in effect.
Precision command_run_setup(const Config *cfg, const char *command);
// The teacher's training step as cfg's [train] section sets it (dmdr train-teacher, and the
// benchmark's training step).
FlowTrainOptions command_flow_train(const Config *cfg);
// The distillation trainer's options: the [distill] settings, and what is not a setting: DMD
// on (stage 2's regulariser may turn it off), the schedules' length (dyn_steps, else half the
// steps), stage 2's own learning rates when [rl] sets an algorithm (dmdr distill, and the
// benchmark's distillation step).
DistillOptions command_distill_options(const Config *cfg);
// The sampler of cfg's [sample] section, `chunk` samples per pass (0: all at once).
SamplerOptions command_sampler(const Config *cfg, int64_t chunk);

// ---- sample grids (the models to sample from, SamplingModel: tools/eval/sampling.h) -----------

// Samples cfg->sample.per_class of every class from the model with the sampler settings of
// cfg->sample and noise from `seed`, and writes a PNG: a grid with one row per class for
// images, a scatter plot coloured by class for 2-D data (the square around the toy mixture
// when cfg->data is toy2d, else around the samples). *seconds (may be NULL) receives the
// sampling time. across_ranks: every rank calls it and samples its share
// (sample_model_gathered), rank 0 writes the file; else the caller alone samples and writes.
// png_dir, npy (either may be NULL; images only): the same samples also as one PNG per sample
// in the folder png_dir (NNNNNN.png, made if missing, with labels.csv: file,label) and as an
// (n, H, W, C) uint8 NumPy array in the file npy, for scorers that read samples, not grids.
int write_samples_png(const SamplingModel *sm, const Config *cfg, uint64_t seed,
                      const char *path, bool across_ranks, const char *png_dir, const char *npy,
                      double *seconds, Error *err);
