// The loop every training command runs (train-teacher, train-classifier, distill): it calls the
// command's step, shows progress, writes the metrics lines, the checkpoints and the sample
// grids on their schedules, and orders them so that a run directory never claims more than
// happened: the metrics lines of a step that saves a checkpoint are held until the checkpoint
// landed (rundir_hold / rundir_commit). The command keeps only what is its own: its setup,
// its step (a library call), what its lines hold, and what its files contain.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "tensor/error.h"
#include "tools/progress.h"
#include "tools/rundir.h"

typedef struct {
    int64_t step;  // the step count once this step is done
    double items;  // examples it processed (for the throughput)
    double shown;  // what the progress line shows as "loss"
} RunStep;

typedef struct {
    // One step (a library call); -1 with err stops the run (a non-finite number, a failed
    // read), before anything of that step is written.
    int (*step)(void *ctx, RunStep *out, Error *err);
    // The metrics line(s) of a logging step; rate: items/s since the previous line.
    int (*log)(void *ctx, RunDir *run, int64_t step, double rate, const Progress *p, Error *err);
    // Work due after a step's metrics line and before its checkpoint (NULL: none), e.g. the
    // judge's evaluation at the end of an epoch.
    int (*after_step)(void *ctx, RunDir *run, int64_t step, const Progress *p, Error *err);
    // Writes the whole training state to `path` (atomically, nn/checkpoint.h).
    int (*checkpoint)(void *ctx, const char *path, Error *err);
    // Writes a sample grid to `path` (NULL: the command makes none).
    int (*samples)(void *ctx, const char *path, Error *err);
    // A checksum of the weights every rank must hold identically (NULL: none). With several
    // ranks it is compared at every checkpoint, and a difference stops the run.
    double (*checksum)(void *ctx);
} RunHooks;

typedef struct {
    int64_t first, last; // the step count at the start (a resume's), the step to stop at
    int log_every, checkpoint_every, sample_every; // in steps; 0 checkpoints/samples: the last only
    const char *unit;    // of the throughput: "img/s", "pts/s"
    double elapsed_before; // seconds of the sessions before a resume
    bool quiet;
} RunLoopOptions;

// Runs steps until the count reaches o->last: 0, or -1 with err (the progress line ended).
// With several ranks every rank steps; rank 0 alone shows progress and writes the metrics,
// checkpoints and grids.
int run_loop(RunDir *run, const RunLoopOptions *o, const RunHooks *h, void *ctx, Error *err);
