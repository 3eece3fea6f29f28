// The benchmark suite behind `dmdr bench`: the machine's ceilings, every kernel of a DiT
// training step at its shapes, then the training step and the samplers end to end. The
// command line (tools/cmd_bench.c) reads the flags and the preset and hands over plain
// settings.
#pragma once

#include <stdbool.h>

#include "bench/bench_cases.h"
#include "diffusion/flow_trainer.h"
#include "dmdr/distill.h"
#include "nn/model.h"

// Under --quick the batch is the preset's divided by this (at least 1).
#define BENCH_QUICK_BATCH_DIVISOR 8

typedef struct {
    int threads;            // 0: $DMDR_THREADS, else every core
    Device device;
    bool quick;             // short timing, the beyond-cache arrays shrunk
    const char *filter;     // only the kernels and end-to-end figures whose name contains it
    const char *json_path;  // also write the report there as JSON (NULL: not)
    DitShapes shapes;       // the DiT whose kernels are timed, at this run's batch
    ModelConfig model;      // that DiT, for the end-to-end figures
    FlowTrainOptions train; // the training step, as train-teacher runs it
    DistillOptions distill; // the distillation step, as dmdr distill runs it
    float sample_cfg;       // the teacher sampler's guidance scale
    bool precisions[PRECISION_COUNT]; // the GEMM precisions to measure (bf16 where native)
} BenchOptions;

// Measures and prints the report (and writes the JSON). Returns the process exit code: 0; 1
// when the backend or a measurement's memory is missing or the JSON cannot be written; 2 when
// the filter matches nothing or the JSON file cannot be opened.
int bench_run(const BenchOptions *o);
