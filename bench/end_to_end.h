// The end-to-end half of `dmdr bench`: a whole DiT training step (the library's
// flow_train_step: flow-matching loss, backward, clipped AdamW, EMA) and the two samplers distillation compares (the teacher's 50-step
// Euler with classifier-free guidance, and a 1-step generator), each in images/s, with the
// useful FLOP/s, the peak tensor memory and the allocations it made.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/bench_cases.h"
#include "diffusion/flow_trainer.h"

typedef enum { E2E_TRAIN_STEP, E2E_SAMPLE_TEACHER, E2E_SAMPLE_GENERATOR, E2E_COUNT } E2eKind;

extern const char *const e2e_names[E2E_COUNT]; // "train_step", "sample_teacher", ...

typedef struct {
    bool ran;
    int64_t images;          // per call
    int calls;               // timed calls (after warm-up)
    double seconds, best;    // per call: median and fastest
    double images_per_s;     // images / seconds
    double flops;            // useful work per call (dit_forward_flops), 0 when not counted
    size_t peak_bytes;       // tensor storage in use at the peak of the timed calls
    uint64_t allocations;    // backend allocations during the timed calls: 0 in a steady state
} E2eResult;

typedef struct {
    const DitShapes *shapes; // the batch of every measurement, and the model's FLOPs
    ModelConfig model;       // the DiT
    FlowTrainOptions train;  // the training step, exactly as train-teacher runs it
    float sample_cfg;        // the teacher sampler's guidance scale
    Device device;
    bool quick;              // fewer timed calls, for a run of seconds
    bool selected[E2E_COUNT];
} E2eOptions;

// The sampler settings the teacher is timed with: Euler, this many steps, the preset's CFG.
#define E2E_TEACHER_STEPS 50

// Runs the selected measurements in order on one model (trained a few steps first, so the
// samplers see weights that are no longer the adaLN-Zero identity), printing each row as it
// finishes. results[k].ran tells which ran.
void e2e_run(const E2eOptions *o, double gemm_ceiling, E2eResult results[E2E_COUNT]);
