// A run directory: everything one training run leaves behind, in one folder a person can
// open and a later command can resume from:
//   config.ini                     the resolved configuration, run.out left empty, so
//                                  `--config config.ini` repeats the run into a new directory
//   metrics.jsonl                  one JSON object per logged step, flushed line by line
//   checkpoints/step-000500.safetensors   full training state (nn/checkpoint.h)
//   samples/step-000500.png        sample grids (or scatter plots) over time
//   model.safetensors              the final (EMA) weights
//   report.html                    all of it as one self-contained page (tools/report)
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tensor/error.h"
#include "tools/config.h"
#include "tools/data/atomic_file.h" // make_dirs

// With several ranks (tensor/dist.h) only rank 0 writes: on the others a RunDir knows its
// path when given one and every write is skipped (`silent`).
typedef struct {
    char dir[CONFIG_PATH_MAX];
    bool silent;   // a rank other than 0: nothing is written
    char command[32]; // the command that made the run ("train-teacher"), for the report
    bool report_failed; // said once; not tried again
    FILE *metrics; // metrics.jsonl, appending
    FILE *held;    // lines waiting for rundir_commit, or NULL (see rundir_hold)
    char *held_text;
    size_t held_size;
} RunDir;

typedef struct {
    const char *key; // JSON key: "loss", "lr", "grad_norm", "images_per_s", "elapsed_s"
    double value;    // written with 9 significant digits; NaN and infinities as null
} Metric;

// Opening a run (rundir_create, rundir_resume, rundir_continue) removes the files that atomic
// writes killed mid-way left in it, checkpoints/ and samples/ ("<name>.tmp.<pid>" whose process
// is gone, and nothing else), with one line on stderr for each.

// A new run: cfg->run.out, or runs/<command>-<preset>-<YYYYmmdd-HHMMSS> (with -2, -3, ...
// when that exists). Parent folders are made; an existing non-empty directory is an error
// (a run is never overwritten). Writes config.ini and opens metrics.jsonl.
int rundir_create(RunDir *rd, const Config *cfg, const char *command, Error *err);

// Continues the run in `dir` (made when missing) from `step`: rewrites config.ini, keeps the
// metrics.jsonl lines of steps <= step (a resumed run logs the rest again) and appends.
// *elapsed_s (may be NULL) receives the "elapsed_s" of the last kept line, or 0.
int rundir_resume(RunDir *rd, const char *dir, const Config *cfg, int64_t step,
                  double *elapsed_s, Error *err);

// The run directory a checkpoint belongs to, when it sits in one (<dir>/checkpoints/x with
// <dir>/config.ini); written into out (CONFIG_PATH_MAX) -> 0, else -1.
int rundir_of_checkpoint(const char *checkpoint, char *out);

// Where a resumed run goes on: `out` (--out, or NULL when not given), else the run directory
// `checkpoint` sits in, both through rundir_resume from `step`; else a new run directory
// (rundir_create for `command`, a checkpoint copied out of its run).
int rundir_continue(RunDir *rd, const char *checkpoint, const char *out, const Config *cfg,
                    const char *command, int64_t step, double *elapsed_s, Error *err);

// Whether a loop that has done `step` steps of `last` logs, saves or samples now: every
// `interval` steps (0: only at the end) and always at the last.
bool rundir_due(int64_t step, int interval, int64_t last);

// Appends {"step": step, key: value, ...} as one line and flushes it (or holds it, below).
int rundir_log(RunDir *rd, int64_t step, const Metric *metrics, int count, Error *err);

// For a step that saves a checkpoint: rundir_hold before its rundir_log calls keeps their lines
// in memory, and rundir_commit, called once the checkpoint landed, writes them. So a line for
// a checkpoint step means its checkpoint is on disk, even when a full disk failed the save.
// rundir_commit without a hold does nothing.
void rundir_hold(RunDir *rd);
int rundir_commit(RunDir *rd, Error *err);
// Rewrites report.html from the directory's files (tools/report/report.h). The report is
// derived from files the run keeps, so a failure to write it is said on stderr once and does
// not stop the run.
void rundir_report(RunDir *rd);
// Closes metrics.jsonl, dropping lines still held (their checkpoint failed), and writes the
// final report.html of an opened run.
void rundir_close(RunDir *rd);

// <dir>/<name>
const char *rundir_path(const RunDir *rd, const char *name, char *out, size_t size);
// <dir>/<folder>/step-000500.<ext>
const char *rundir_step_path(const RunDir *rd, const char *folder, int64_t step, const char *ext,
                             char *out, size_t size);

// cfg with run.out emptied: what config.ini and checkpoints store, so that repeating or
// resuming a run never aims at the directory of another.
Config rundir_repeatable(const Config *cfg);

