// The demo's plan and clock: the stages with their expected minutes first, then after each
// stage its time, the time so far and an estimate of what is left, and the total at the end.
// Expected times come from rates measured on the project's 2-core machine for the `small`
// preset (demo_plan.c); as stages finish, what is left is rescaled by how this machine's
// stages compared with those rates, so the estimate corrects itself on a faster or slower one.
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "tools/config.h"

#define PLAN_MAX 12

typedef struct {
    char title[96];
    double expected_s; // < 0: no estimate for this preset
    bool skip;         // its result exists
    double took_s;
} PlanStage;

typedef struct {
    PlanStage stage[PLAN_MAX];
    int n, current;
    double start, stage_start;
} DemoPlan;

// Expected seconds of the stages on the reference machine (< 0 where there is no estimate).
double plan_expect_teacher(const Config *c);
double plan_expect_classifier(const Config *c);
double plan_expect_distill(const Config *c, int steps, bool reward);
double plan_expect_eval(const Config *c, long long images, int nfe);

// Adds a stage -> its index.
int plan_add(DemoPlan *p, bool skip, double expected_s, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
// The plan: each stage with its expected minutes (or "skipped: done"), and the total.
void plan_print(DemoPlan *p, FILE *out);
// Stage i starts, then is done: "[demo 2/5] ... done in 4m10s; 6m02s so far, about 5 min left".
void plan_begin(DemoPlan *p, int i, FILE *out);
void plan_done(DemoPlan *p, FILE *out);
// "demo: done in 12m40s (expected 13 min)"
void plan_total(const DemoPlan *p, FILE *out);
