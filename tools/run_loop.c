#include "tools/run_loop.h"

#include <stdio.h>

#include "tensor/dist.h"

// One step and everything due after it, in the order that keeps the directory truthful.
static int one_step(RunDir *run, const RunLoopOptions *o, const RunHooks *h, void *ctx,
                    Progress *p, int64_t *step, double *items, double *seconds, Error *err) {
    bool checkpoint = rundir_due(*step + 1, o->checkpoint_every, o->last);
    if (checkpoint) rundir_hold(run); // no line for a step whose checkpoint fails
    double start = progress_now();
    RunStep s = {0};
    if (h->step(ctx, &s, err) != 0) return -1;
    *step = s.step;
    *seconds += progress_now() - start;
    *items += s.items;
    double rate = *seconds > 0 ? *items / *seconds : 0.0;
    progress_update(p, *step, s.shown, rate);
    if (rundir_due(*step, o->log_every, o->last)) {
        if (h->log(ctx, run, *step, rate, p, err) != 0) return -1;
        *items = *seconds = 0;
    }
    if (h->after_step && h->after_step(ctx, run, *step, p, err) != 0) return -1;
    // the ranks apply the same averaged gradients: their weights are equal bit for bit, or
    // something made a rank's state its own
    if (checkpoint && h->checksum && dist_size() > 1 && !dist_agree(h->checksum(ctx)))
        return error_set(err, "step %lld: the ranks' weights differ (checksums disagree): a "
                              "rank diverged from the others", (long long)*step);
    bool writer = dist_rank() == 0;
    char path[CONFIG_PATH_MAX + 64];
    if (writer && checkpoint &&
        (h->checkpoint(ctx, rundir_step_path(run, "checkpoints", *step, "safetensors", path,
                                             sizeof path), err) != 0 ||
         rundir_commit(run, err) != 0))
        return -1;
    bool sampled = h->samples && rundir_due(*step, o->sample_every, o->last);
    if (writer && sampled &&
        h->samples(ctx, rundir_step_path(run, "samples", *step, "png", path, sizeof path), err) != 0)
        return -1;
    // at every metrics line (and grid), so that an interrupted run has its report
    if (writer && (sampled || rundir_due(*step, o->log_every, o->last))) rundir_report(run);
    return 0;
}

int run_loop(RunDir *run, const RunLoopOptions *o, const RunHooks *h, void *ctx, Error *err) {
    Progress p;
    progress_begin(&p, stderr, o->first, o->last, o->unit, o->elapsed_before,
                   o->quiet || dist_rank() != 0);
    int64_t step = o->first;
    double items = 0, seconds = 0; // since the last metrics line
    int rc = 0;
    while (rc == 0 && step < o->last) rc = one_step(run, o, h, ctx, &p, &step, &items, &seconds, err);
    progress_end(&p);
    return rc;
}
