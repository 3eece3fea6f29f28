// The demo's folder (dmdr demo, tools/cmd_demo.c): what it holds, shared by the demo and by
// its report (tools/demo_report.c, also `dmdr report DIR`).
//
// From the shipped weights (the default):        With --from-scratch, besides:
//   dmd/    distill --teacher SHIPPED_TEACHER       teacher/     train-teacher
//   dmdr/   distill --init dmd/... --rl backprop    classifier/  train-classifier (judge and
//           --classifier SHIPPED_REWARD_MODEL                    reward at once)
//   eval/   the judge's reports, one per table row
//   report.html
#pragma once

#include <stdbool.h>

#include "tensor/error.h"

// The table's rows: eval/<file>.json under label.
typedef struct {
    const char *label, *file;
} DemoRow;

#define DEMO_ROWS 4
// from_scratch: the demo trained one classifier as judge and reward, so the DMDR row is graded
// by what it optimised, and its label says so.
void demo_rows(bool from_scratch, DemoRow rows[DEMO_ROWS]);

// The run directories of the stages, in pipeline order (those present are shown).
typedef struct {
    const char *folder, *heading;
} DemoStage;

#define DEMO_STAGES 4
extern const DemoStage demo_stages[DEMO_STAGES];

// <dir>/report.html: the comparison table, the last grids side by side, every stage's run ->
// 0, or -1 with err.
int demo_write_report(const char *dir, Error *err);
