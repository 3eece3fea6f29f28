// End-to-end figures: the training step and the samplers, timed call by call on one model.
//
// Every measurement is warm-up calls (which also fill the storage cache, so the timed calls
// should allocate nothing), then timed calls until both a minimum count and a time budget
// are reached; the median is the figure, the fastest is kept beside it. The allocation count
// and the peak tensor memory are read from the storage statistics around the timed calls.
#include "bench/end_to_end.h"

#include <stdio.h>
#include <stdlib.h>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "bench/timing.h"
#include "diffusion/sampler.h"
#include "kernels/check.h"
#include "tensor/dist.h"

const char *const e2e_names[E2E_COUNT] = {
    [E2E_TRAIN_STEP] = "train_step",
    [E2E_DISTILL_STEP] = "distill_step",
    [E2E_SAMPLE_TEACHER] = "sample_teacher",
    [E2E_SAMPLE_GENERATOR] = "sample_generator",
};

void e2e_row_name(char *out, size_t size, E2eKind kind, Precision precision) {
    snprintf(out, size, "%s%s", e2e_names[kind], precision == PRECISION_BF16 ? "_bf16" : "");
}

#define MAX_CALLS 64
// A measurement stops after this many seconds of timed calls even short of its minimum count
// (with at least one call): the base DiT's 50-step sampling takes minutes on a CPU.
#define MAX_SECONDS 60.0

// How one measurement is timed: warm-up calls, then at least min_calls timed calls and at
// least budget seconds of them (all shorter under --quick).
typedef struct {
    int warmup, min_calls;
    double budget;
} Timing;

static const Timing timings[E2E_COUNT][2] = { // [kind][quick]
    [E2E_TRAIN_STEP] = {{2, 8, 4.0}, {1, 2, 0.0}},
    // a call is `ratio` inner steps; the first call's holds no generator update (the first
    // inner step never is one), the second's fills the cache for it
    [E2E_DISTILL_STEP] = {{2, 4, 4.0}, {2, 1, 0.0}},
    // one 50-step sampling is many seconds: two runs give a median and a best
    [E2E_SAMPLE_TEACHER] = {{1, 2, 0.0}, {1, 1, 0.0}},
    [E2E_SAMPLE_GENERATOR] = {{1, 8, 2.0}, {1, 2, 0.0}},
};

typedef struct {
    Model *model;
    FlowTrainer trainer;
    Distiller distiller; // made from the model at the first distillation measurement
    bool has_distiller;
    DistillOptions distill;
    float sample_cfg;
    Tensor *x0, *y, *noise; // (batch, C, H, W) data in [-1, 1], (batch) labels, noise
    Rng rng;
    const Backend *be;
    double allreduce_s; // in the gradients' all-reduces since the last measurement began
} Bench;

// One training step: the library's, as train-teacher runs it.
static void train_step(Bench *b) {
    b->allreduce_s += flow_train_step(&b->trainer, b->x0, b->y, &b->rng).allreduce_s;
}

// One generator step of distillation: `ratio` inner steps, one of them the generator's update.
static void distill_step(Bench *b) {
    if (!b->has_distiller) {
        Error err = {0};
        DMDR_CHECK(distiller_init(&b->distiller, &b->distill, b->model, 2, &err) == 0,
                   "bench distiller: %s", err.msg);
        b->has_distiller = true;
    }
    DistillStats stats;
    for (int i = 0; i < b->distill.ratio; i++) {
        distiller_step(&b->distiller, &stats);
        b->allreduce_s += stats.allreduce_s;
    }
}

// `steps` Euler steps with the preset's guidance
static SamplerOptions teacher_sampler(float cfg, int steps) {
    SamplerOptions opt = sampler_defaults();
    opt.steps = steps;
    opt.cfg_scale = cfg;
    return opt;
}

// noise (batch, ...) -> samples, `steps` steps of teacher_sampler
static void sample_teacher(Bench *b, int steps) {
    SamplerOptions opt = teacher_sampler(b->sample_cfg, steps);
    sample_flow(b->model, b->noise, b->y, &opt, NULL);
}

// The 1-step generator: x0 = x - G(x, 1, y), one forward of the batch at t = 1. DMD's
// generator has the teacher's architecture, so the teacher's weights stand in for it.
static void sample_generator(Bench *b) {
    autograd_no_grad_begin();
    Tensor *t = tensor_ones(shape1(b->noise->shape.dim[0]), b->noise->device);
    flow_x0_from_velocity(b->noise, model_forward(b->model, b->noise, t, b->y), t);
    autograd_no_grad_end();
}

// One call of measurement `kind`, its temporaries freed, the device finished.
static void run_call(Bench *b, E2eKind kind, bool warmup) {
    tensor_scope_begin();
    switch (kind) {
    case E2E_TRAIN_STEP: train_step(b); break;
    case E2E_DISTILL_STEP: distill_step(b); break;
    // A 2-step warm-up fills the storage cache for every step: from the second step on, the
    // previous step's x is alive beside the new one.
    case E2E_SAMPLE_TEACHER: sample_teacher(b, warmup ? 2 : E2E_TEACHER_STEPS); break;
    case E2E_SAMPLE_GENERATOR: sample_generator(b); break;
    default: DMDR_FATAL("end-to-end measurement %d", (int)kind);
    }
    tensor_scope_end();
    b->be->synchronize(b->be);
}

static void measure(Bench *b, E2eKind kind, const Timing *tm, Device device, E2eResult *r) {
    for (int i = 0; i < tm->warmup; i++) run_call(b, kind, true);
    storage_reset_peak(device);
    uint64_t allocations = storage_stats(device).allocations;
    double samples[MAX_CALLS];
    int n = 0;
    b->allreduce_s = 0;
    double start = bench_now_seconds();
    for (double elapsed = 0; n < MAX_CALLS && (n < tm->min_calls || elapsed < tm->budget) &&
                             !(n > 0 && elapsed > MAX_SECONDS);
         elapsed = bench_now_seconds() - start) {
        double t0 = bench_now_seconds();
        run_call(b, kind, false);
        samples[n++] = bench_now_seconds() - t0;
    }
    StorageStats stats = storage_stats(device);
    r->ran = true;
    r->calls = n;
    r->seconds = bench_median_seconds(samples, n, &r->best);
    r->images_per_s = (double)r->images / r->seconds;
    r->peak_bytes = stats.peak_bytes;
    r->allocations = stats.allocations - allocations;
    r->allreduce_s = b->allreduce_s / n;
}

static void print_row(const char *name, const E2eResult *r, double gemm_ceiling) {
    double gflops = r->flops / r->seconds / 1e9;
    printf("%-22s %6lld %10.2f %10.4f %10.4f %5d ", name, (long long)r->images, r->images_per_s,
           r->seconds, r->best, r->calls);
    // the ceiling is one rank's GEMM; N ranks' useful work is measured against N of them
    if (r->flops > 0)
        printf("%9.1f %7.1f%%", gflops, 100.0 * gflops / (gemm_ceiling * dist_size()));
    else printf("%9s %8s", "-", "-");
    printf(" %9.1f %7llu", (double)r->peak_bytes / (1 << 20),
           (unsigned long long)r->allocations);
    // on several ranks: the gradients' all-reduce per call (the samplers have none)
    if (dist_size() > 1) printf(" %12.2f", 1e3 * r->allreduce_s);
    printf("\n");
    fflush(stdout);
}

// The model, optimiser and inputs, in the caller's scope (the inputs are retained).
static void bench_init(Bench *b, const E2eOptions *o) {
    const DitShapes *s = o->shapes;
    *b = (Bench){.sample_cfg = o->sample_cfg, .distill = o->distill, .rng = rng_make(1),
                 .be = backend_get(o->device)};
    Rng init = rng_make(0);
    Error err = {0};
    b->model = model_create(&o->model, o->device, &init, &err);
    DMDR_CHECK(b->model != NULL, "bench model: %s", err.msg);
    flow_trainer_init(&b->trainer, b->model, &o->train);

    Shape images = shape4(s->batch, s->in_channels, s->image, s->image);
    int32_t *labels = malloc((size_t)s->batch * sizeof *labels);
    DMDR_CHECK(labels != NULL, "out of host memory");
    for (int64_t i = 0; i < s->batch; i++) labels[i] = (int32_t)(i % s->classes);
    tensor_scope_begin();
    b->x0 = tensor_retain(tensor_uniform(images, &init, -1.0f, 1.0f, o->device));
    b->noise = tensor_retain(tensor_normal(images, &init, 0.0f, 1.0f, o->device));
    b->y = tensor_retain(tensor_from_ints(shape1(s->batch), labels, o->device));
    tensor_scope_end();
    free(labels);
}

static void bench_free(Bench *b) {
    tensor_release(b->x0);
    tensor_release(b->noise);
    tensor_release(b->y);
    flow_trainer_free(&b->trainer);
    if (b->has_distiller) distiller_free(&b->distiller);
    model_free(b->model);
}

void e2e_run(const E2eOptions *o, const double gemm_ceiling[PRECISION_COUNT],
             E2eResult results[PRECISION_COUNT][E2E_COUNT]) {
    const DitShapes *s = o->shapes;
    int64_t n = s->batch;
    float cfg = o->sample_cfg;
    SamplerOptions teacher = teacher_sampler(cfg, E2E_TEACHER_STEPS);
    int64_t teacher_forwards = sampler_nfe(&teacher);
    double forward = dit_forward_flops(s, n);
    // the distillation step's work is not counted (several networks, tracked and not)
    const double flops[E2E_COUNT] = {3.0 * forward, 0.0, (double)teacher_forwards * forward,
                                     forward};
    const int64_t images[E2E_COUNT] = {n, o->distill.batch, n, n};

    Bench b;
    bench_init(&b, o);
    printf("\n%-22s %6s %10s %10s %10s %5s %9s %8s %9s %7s", "end to end", "images",
           "images/s", "s/call", "best s", "calls", "GFLOP/s", "ceiling", "peak MiB", "allocs");
    printf(dist_size() > 1 ? " allreduce ms\n" : "\n");
    Precision before = autograd_precision();
    for (int p = 0; p < PRECISION_COUNT; p++) {
        for (int k = 0; k < E2E_COUNT; k++) {
            results[p][k] = (E2eResult){.images = images[k], .flops = flops[k]};
            if (!o->precisions[p] || !o->selected[k]) continue;
            autograd_set_precision((Precision)p);
            measure(&b, (E2eKind)k, &timings[k][o->quick], o->device, &results[p][k]);
            char name[64];
            e2e_row_name(name, sizeof name, (E2eKind)k, (Precision)p);
            print_row(name, &results[p][k], gemm_ceiling[p]);
        }
    }
    autograd_set_precision(before);
    bench_free(&b);

    printf("\ntrain_step:       flow-matching loss, backward, AdamW (clip %g), EMA: the library's "
           "flow_train_step;\n                  useful FLOPs = 3 forwards of GEMM and attention "
           "work\n", (double)o->train.clip);
    printf("distill_step:     %d inner steps of the library's distiller_step (batch %d, "
           "%d-step generator,\n                  %s fake score): %d fake-score updates and "
           "one generator update; images/s\n                  counts the generator's batch\n",
           o->distill.ratio, o->distill.batch, o->distill.gen.steps,
           o->distill.fake_net == FAKE_NET_SEPARATE ? "separate" : "LoRA", o->distill.ratio);
    printf("sample_teacher:   Euler, %d steps, CFG %g: %lld forwards of the batch\n",
           E2E_TEACHER_STEPS, (double)cfg, (long long)teacher_forwards);
    printf("sample_generator: x0 = x - G(x, 1, y), one forward of the batch\n");
    printf("_bf16:            the GEMMs in bf16 with fp32 accumulation (their ceiling: the bf16 "
           "GEMM's)\n");
    printf("s/call: median over the timed calls; images/s and GFLOP/s from it; peak: tensor "
           "storage in use\nallocs: backend allocations during the timed calls (0: a steady "
           "state)\n");
    if (dist_size() > 1)
        printf("allreduce ms: mean wall time per call in the gradients' all-reduces, waiting for "
               "the slowest\n              rank included (%d ranks, %s)\n",
               dist_size(), dist_backend());
    for (int p = 0; p < PRECISION_COUNT; p++) {
        const E2eResult *t = &results[p][E2E_SAMPLE_TEACHER];
        const E2eResult *g = &results[p][E2E_SAMPLE_GENERATOR];
        if (t->ran && g->ran)
            printf("1-step generator / %d-step CFG teacher, %s: %.1fx the images/s\n",
                   E2E_TEACHER_STEPS, precision_name((Precision)p),
                   g->images_per_s / t->images_per_s);
    }
    for (int k = 0; k < E2E_COUNT; k++) {
        const E2eResult *f = &results[PRECISION_FP32][k], *h = &results[PRECISION_BF16][k];
        if (f->ran && h->ran)
            printf("%s: bf16 / fp32 %.2fx the images/s\n", e2e_names[k],
                   h->images_per_s / f->images_per_s);
    }
    fflush(stdout);
}
