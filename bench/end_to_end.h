// The end-to-end half of `dmdr bench`: a whole DiT training step (the library's
// flow_train_step: flow-matching loss, backward, clipped AdamW, EMA), one generator step of
// distillation (the library's distiller_step, `ratio` times: the fake-score updates and one
// generator update), and the two samplers distillation compares (the teacher's 50-step Euler
// with classifier-free guidance, and a 1-step generator), each in images/s, with the useful
// FLOP/s, the peak tensor memory and the allocations it made; each in every precision asked.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/bench_cases.h"
#include "diffusion/flow_trainer.h"
#include "dmdr/distill.h"

typedef enum {
    E2E_TRAIN_STEP,
    E2E_DISTILL_STEP,
    E2E_SAMPLE_TEACHER,
    E2E_SAMPLE_GENERATOR,
    E2E_COUNT
} E2eKind;

extern const char *const e2e_names[E2E_COUNT]; // "train_step", "distill_step", ...

// The name of a row: "train_step" in fp32, "train_step_bf16" in bf16.
void e2e_row_name(char *out, size_t size, E2eKind kind, Precision precision);

typedef struct {
    bool ran;
    int64_t images;          // per call
    int calls;               // timed calls (after warm-up)
    double seconds, best;    // per call: median and fastest
    double images_per_s;     // images / seconds
    double flops;            // useful work per call (dit_forward_flops), 0 when not counted
    size_t peak_bytes;       // tensor storage in use at the peak of the timed calls
    uint64_t allocations;    // backend allocations during the timed calls: 0 in a steady state
    double allreduce_s;      // per call (mean), in the gradients' all-reduces: 0 on one rank
} E2eResult;

typedef struct {
    const DitShapes *shapes; // the batch of every measurement, and the model's FLOPs
    ModelConfig model;       // the DiT
    FlowTrainOptions train;  // the training step, exactly as train-teacher runs it
    DistillOptions distill;  // the distillation step, exactly as dmdr distill runs it
    float sample_cfg;        // the teacher sampler's guidance scale
    Device device;
    bool quick;              // fewer timed calls, for a run of seconds
    bool selected[E2E_COUNT];
    bool precisions[PRECISION_COUNT]; // each selected figure in each of these
} E2eOptions;

// The sampler settings the teacher is timed with: Euler, this many steps, the preset's CFG.
#define E2E_TEACHER_STEPS 50

// Runs the selected measurements in order on one model, fp32 rows first, printing each row as
// it finishes. results[precision][kind].ran tells which ran. gemm_ceiling: GFLOP/s of each
// precision's GEMM ceiling.
void e2e_run(const E2eOptions *o, const double gemm_ceiling[PRECISION_COUNT],
             E2eResult results[PRECISION_COUNT][E2E_COUNT]);
