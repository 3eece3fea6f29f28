#include "tools/demo_plan.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "tools/progress.h"

// Rates of the `small` preset on the project's 2-core Intel Xeon, 2 threads, bf16 GEMMs, read
// off the quickstart's own run (tools/quickstart.sh, 2026-12-03) and the teacher's training:
// the teacher's training step, the classifier's, one distillation generator step (batch 32, 5
// fake-score updates; stage 2's reward step costs about the same), network evaluations per
// second in sampling, and the judge's pass (its test-set features once, then cached).
#define SMALL_TEACHER_IMAGES_PER_S 212.0
#define SMALL_CLASSIFIER_IMAGES_PER_S 860.0
#define SMALL_GENERATOR_STEP_S 1.25 // batch 32, ratio 5
#define SMALL_REWARD_STEP_EXTRA 1.0 // stage 2's step over stage 1's
#define SMALL_NFE_PER_S 450.0
#define SMALL_JUDGE_S 25.0

#define PLAN_SCALE_MIN_S 30.0 // stages shorter than this do not rescale the estimate

static bool known(const Config *c) { return strcmp(c->preset, "small") == 0; }

double plan_expect_teacher(const Config *c) {
    return known(c) ? (double)c->train.steps * c->train.batch / SMALL_TEACHER_IMAGES_PER_S : -1;
}

double plan_expect_classifier(const Config *c) {
    return known(c) ? 60000.0 * c->classifier.epochs / SMALL_CLASSIFIER_IMAGES_PER_S : -1;
}

double plan_expect_distill(const Config *c, int steps, bool reward) {
    if (!known(c)) return -1;
    double step = SMALL_GENERATOR_STEP_S * c->distill.opt.batch / 32.0 *
                  (c->distill.opt.ratio + 1) / 6.0;
    return steps * step * (reward ? SMALL_REWARD_STEP_EXTRA : 1.0);
}

double plan_expect_eval(const Config *c, long long images, int nfe) {
    return known(c) ? (double)images * nfe / SMALL_NFE_PER_S + SMALL_JUDGE_S : -1;
}

int plan_add(DemoPlan *p, bool skip, double expected_s, const char *format, ...) {
    if (p->n == PLAN_MAX) return p->n - 1;
    PlanStage *s = &p->stage[p->n];
    va_list ap;
    va_start(ap, format);
    vsnprintf(s->title, sizeof s->title, format, ap);
    va_end(ap);
    s->expected_s = expected_s;
    s->skip = skip;
    s->took_s = 0;
    return p->n++;
}

static void minutes(char *out, size_t size, double s) {
    if (s < 0) snprintf(out, size, "no estimate");
    else if (s < 90) snprintf(out, size, "~%.0f s", s);
    else snprintf(out, size, "~%.0f min", s / 60);
}

void plan_print(DemoPlan *p, FILE *out) {
    double total = 0;
    bool all = true;
    fprintf(out, "demo: the plan (times expected on a 2-core machine, 2 threads):\n");
    for (int i = 0; i < p->n; i++) {
        char t[32];
        minutes(t, sizeof t, p->stage[i].expected_s);
        fprintf(out, "  %d. %-58s %s\n", i + 1, p->stage[i].title,
                p->stage[i].skip ? "done already: skipped" : t);
        if (p->stage[i].skip) continue;
        if (p->stage[i].expected_s < 0) all = false;
        else total += p->stage[i].expected_s;
    }
    char t[32];
    minutes(t, sizeof t, total);
    fprintf(out, "  in all: %s%s\n", t, all ? "" : " plus the stages without an estimate");
    fflush(out);
    p->start = progress_now();
}

void plan_begin(DemoPlan *p, int i, FILE *out) {
    p->current = i;
    p->stage_start = progress_now();
    fprintf(out, "\n[demo %d/%d] %s\n", i + 1, p->n, p->stage[i].title);
    fflush(out);
}

// What is left: the remaining stages' estimates, scaled by how the finished ones compared
// with theirs on this machine.
static double left_s(const DemoPlan *p) {
    double expected_done = 0, took = 0, left = 0;
    for (int i = 0; i <= p->current; i++) // (a stage of seconds says nothing of the machine)
        if (!p->stage[i].skip && p->stage[i].expected_s >= PLAN_SCALE_MIN_S)
            expected_done += p->stage[i].expected_s, took += p->stage[i].took_s;
    for (int i = p->current + 1; i < p->n; i++) {
        if (p->stage[i].skip) continue;
        if (p->stage[i].expected_s < 0) return -1;
        left += p->stage[i].expected_s;
    }
    return expected_done > 0 ? left * took / expected_done : left;
}

void plan_done(DemoPlan *p, FILE *out) {
    PlanStage *s = &p->stage[p->current];
    s->took_s = progress_now() - p->stage_start;
    char took[32], so_far[32], left[32];
    format_duration(s->took_s, took, sizeof took);
    format_duration(progress_now() - p->start, so_far, sizeof so_far);
    minutes(left, sizeof left, left_s(p));
    fprintf(out, "[demo %d/%d] %s: done in %s; %s so far, %s left\n", p->current + 1, p->n,
            s->title, took, so_far, p->current + 1 == p->n ? "nothing" : left);
    fflush(out);
}

void plan_total(const DemoPlan *p, FILE *out) {
    double expected = 0;
    bool all = true;
    for (int i = 0; i < p->n; i++) {
        if (p->stage[i].skip) continue;
        if (p->stage[i].expected_s < 0) all = false;
        else expected += p->stage[i].expected_s;
    }
    char took[32], t[32];
    format_duration(progress_now() - p->start, took, sizeof took);
    minutes(t, sizeof t, expected);
    fprintf(out, "demo: done in %s (expected %s%s)\n", took, t, all ? "" : ", partly");
}
