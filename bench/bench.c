// `dmdr bench`: every kernel of a DiT training step timed through the Backend table, next to
// the machine's own ceilings measured in the same run (a large sgemm for GFLOP/s, a copy far
// beyond the last-level cache for GB/s), so each figure reads as a fraction of what this
// machine can do; then the whole training step and the samplers (end_to_end.c). The kernel
// cases live in bench_cases.c; this file times the kernels and reports everything. The flags
// and the preset are the command line's (tools/cmd_bench.c).
#include "bench/bench.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_cases.h"
#include "bench/end_to_end.h"
#include "bench/timing.h"
#include "dmdr_config.h"
#include "kernels/backend.h"
#include "kernels/threads.h"
#include "tensor/dist.h"

#define BUDGET_SECONDS 0.3
#define BUDGET_SECONDS_QUICK 0.05
#define BATCHES_PER_BUDGET 10 // batches long enough that clock and synchronize are noise
#define MIN_SAMPLES 3
#define MAX_SAMPLES 64

typedef struct {
    const BenchCase *kernel;
    bool ok;         // false: its buffers could not be allocated
    double seconds;  // median per call
    double best;     // fastest per call
    double rate;     // GFLOP/s for compute-bound kernels, GB/s for memory-bound ones
    double fraction; // rate over the matching ceiling
} BenchResult;

// The "model name" line of /proc/cpuinfo, or "unknown CPU".
static void cpu_model(char *out, size_t size) {
    snprintf(out, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(out, size, "%s", colon + 1 + (colon[1] == ' '));
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
}

// Seconds for `calls` back-to-back calls, device work included.
static double run_batch(const Backend *be, const BenchCase *c, void *const *buf, int64_t calls) {
    be->synchronize(be);
    double start = bench_now_seconds();
    for (int64_t i = 0; i < calls; i++) c->op->call(be, buf, c);
    be->synchronize(be);
    return bench_now_seconds() - start;
}

// Per-call time: batches of calls until the budget is spent; the median over batches is
// the figure (robust to a stray interrupt), the fastest is kept as the best case.
static void time_case(const Backend *be, const BenchCase *c, void *const *buf, double budget,
                      BenchResult *r) {
    // Two warm-up calls: the first pays page faults, thread start-up and cold caches, the
    // second gives the estimate that sizes the batches.
    run_batch(be, c, buf, 1);
    double estimate = run_batch(be, c, buf, 1);
    double calls = budget / BATCHES_PER_BUDGET / (estimate > 1e-9 ? estimate : 1e-9);
    int64_t batch = calls < 1.0 ? 1 : calls > 1e7 ? 10000000 : (int64_t)calls;

    double samples[MAX_SAMPLES];
    int n = 0;
    double start = bench_now_seconds();
    while (n < MAX_SAMPLES && (n < MIN_SAMPLES || bench_now_seconds() - start < budget))
        samples[n++] = run_batch(be, c, buf, batch) / (double)batch;
    r->seconds = bench_median_seconds(samples, n, &r->best);
}

// Fills a buffer as its spec says (the values the test would use do not matter for timing;
// their range does). Returns false when host staging memory is short.
static bool fill_buffer(const Backend *be, void *buf, const CaseBuffer *spec, uint64_t seed) {
    switch (spec->fill) {
    case FILL_INTS: {
        int32_t *labels = malloc((size_t)spec->words * sizeof *labels);
        if (!labels) return false;
        for (int64_t i = 0; i < spec->words; i++) labels[i] = (int32_t)(i * 7 % spec->below);
        be->copy_from_host(be, buf, labels, (size_t)spec->words * sizeof *labels);
        free(labels);
        return true;
    }
    case FILL_LEVELS: be->rng_uniform(be, buf, spec->words, seed, 0, 0.0f,
                                      (float)spec->below); break;
    case FILL_ZERO: be->fill(be, buf, 0.0f, spec->words); break;
    case FILL_CONST: be->fill(be, buf, spec->lo, spec->words); break;
    default: be->rng_uniform(be, buf, spec->words, seed, 0, spec->lo, spec->hi); break;
    }
    return true;
}

// Whether the kernel gets buffer i of c (NULL for optional operands left out).
static bool case_allocates(const BenchCase *c, int i) {
    return c->buf[i].role != CASE_NULL && c->buf[i].role != CASE_HOST;
}

static double case_mib(const BenchCase *c) {
    double bytes = 0;
    for (int i = 0; i < c->nbuffers; i++)
        if (case_allocates(c, i)) bytes += 4.0 * (double)c->buf[i].words;
    return bytes / (1 << 20);
}

// Allocates and fills c's buffers, times it and frees them. r->ok is false (message
// printed) when the memory is not there.
static void run_case(const Backend *be, const BenchCase *c, double budget, BenchResult *r) {
    *r = (BenchResult){.kernel = c};
    void *buf[CASE_MAX_BUFFERS] = {0};
    bool ok = true;
    for (int i = 0; i < c->nbuffers && ok; i++) {
        if (!case_allocates(c, i)) continue;
        size_t nbytes = (size_t)c->buf[i].words * 4;
        buf[i] = be->alloc(be, nbytes);
        ok = buf[i] && fill_buffer(be, buf[i], &c->buf[i], (uint64_t)i + 1);
        if (!ok)
            fprintf(stderr,
                    "bench: %s: out of memory allocating %.1f MiB on %s (buffer %d of %d, "
                    "%.1f MiB in all)\n",
                    c->name, (double)nbytes / (1 << 20), be->name, i + 1, c->nbuffers,
                    case_mib(c));
    }
    if (ok) {
        if (c->op->prepare) c->op->prepare(be, buf, c);
        time_case(be, c, buf, budget, r);
        r->ok = true;
    }
    for (int i = 0; i < c->nbuffers; i++)
        if (buf[i]) be->free(be, buf[i]);
}

static double result_rate(const BenchResult *r) {
    const BenchCase *c = r->kernel;
    return (c->flops > 0 ? c->flops : c->bytes) / r->seconds / 1e9;
}

static void print_row(const BenchResult *r) {
    const BenchCase *c = r->kernel;
    if (!r->ok) {
        printf("%-24s %-30s %10s\n", c->name, c->shape, "out of memory");
    } else {
        printf("%-24s %-30s %10.1f %10.1f %9.1f %-7s %7.1f%%\n", c->name, c->shape,
               r->seconds * 1e6, r->best * 1e6, r->rate, c->flops > 0 ? "GFLOP/s" : "GB/s",
               100.0 * r->fraction);
    }
    fflush(stdout);
}

static cJSON *result_json(const BenchResult *r) {
    const BenchCase *c = r->kernel;
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "name", c->name);
    cJSON_AddStringToObject(k, "shape", c->shape);
    if (!r->ok) {
        cJSON_AddStringToObject(k, "error", "out of memory");
        return k;
    }
    cJSON_AddNumberToObject(k, "us", r->seconds * 1e6);
    cJSON_AddNumberToObject(k, "us_best", r->best * 1e6);
    cJSON_AddNumberToObject(k, c->flops > 0 ? "gflops" : "gbps", r->rate);
    cJSON_AddNumberToObject(k, "fraction", r->fraction);
    return k;
}

// One end-to-end figure, with the whole model configuration it ran under the names the
// PyTorch twin takes (tools/torch/dit_train_step.py reads them from train_step), so another
// tool can run the same one side by side.
static cJSON *e2e_json(const E2eResult *r, const DitShapes *s, double gemm_ceiling,
                       Precision precision) {
    cJSON *k = cJSON_CreateObject();
    double gflops = r->flops / r->seconds / 1e9;
    cJSON_AddStringToObject(k, "precision", precision_name(precision));
    cJSON_AddNumberToObject(k, "images_per_s", r->images_per_s);
    cJSON_AddNumberToObject(k, "seconds", r->seconds);
    cJSON_AddNumberToObject(k, "seconds_best", r->best);
    cJSON_AddNumberToObject(k, "calls", r->calls);
    cJSON_AddNumberToObject(k, "gflops", gflops);
    cJSON_AddNumberToObject(k, "fraction", gflops / (gemm_ceiling * dist_size()));
    cJSON_AddNumberToObject(k, "peak_bytes", (double)r->peak_bytes);
    cJSON_AddNumberToObject(k, "allocations", (double)r->allocations);
    cJSON_AddNumberToObject(k, "ranks", dist_size());
    cJSON_AddNumberToObject(k, "allreduce_s", r->allreduce_s);
    cJSON_AddNumberToObject(k, "img", (double)s->image);
    cJSON_AddNumberToObject(k, "in_channels", (double)s->in_channels);
    cJSON_AddNumberToObject(k, "patch", (double)s->patch);
    cJSON_AddNumberToObject(k, "dim", (double)s->hidden);
    cJSON_AddNumberToObject(k, "depth", (double)s->depth);
    cJSON_AddNumberToObject(k, "heads", (double)s->heads);
    cJSON_AddNumberToObject(k, "mlp", (double)s->mlp);
    cJSON_AddNumberToObject(k, "classes", (double)s->classes);
    cJSON_AddNumberToObject(k, "batch", (double)r->images);
    cJSON_AddNumberToObject(k, "threads", threads_get());
    return k;
}

// The whole report as JSON: machine, settings, ceilings, one object per kernel, then the
// end-to-end figures that ran.
static cJSON *report_json(const BenchOptions *o, const DitShapes *s, const Backend *be,
                          const char *cpu, const BenchResult ceiling[CEILING_COUNT],
                          const BenchResult *results, int count,
                          const E2eResult e2e[PRECISION_COUNT][E2E_COUNT]) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", DMDR_VERSION);
    cJSON *machine = cJSON_AddObjectToObject(root, "machine");
    cJSON_AddStringToObject(machine, "cpu", cpu);
    cJSON_AddNumberToObject(machine, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddStringToObject(machine, "backend", be->name);
    cJSON_AddNumberToObject(root, "threads", threads_get());
    cJSON_AddStringToObject(root, "device", device_name(o->device));
    cJSON_AddBoolToObject(root, "quick", o->quick);
    cJSON *shapes = cJSON_AddObjectToObject(root, "shapes");
    cJSON_AddStringToObject(shapes, "name", s->name);
    cJSON_AddNumberToObject(shapes, "batch", (double)s->batch);
    cJSON_AddNumberToObject(shapes, "image", (double)s->image);
    cJSON_AddNumberToObject(shapes, "patch", (double)s->patch);
    cJSON_AddNumberToObject(shapes, "hidden", (double)s->hidden);
    cJSON_AddNumberToObject(shapes, "heads", (double)s->heads);
    cJSON_AddNumberToObject(shapes, "depth", (double)s->depth);
    cJSON_AddNumberToObject(shapes, "params", (double)dit_param_count(s));
    cJSON *ceilings = cJSON_AddObjectToObject(root, "ceilings");
    cJSON_AddNumberToObject(ceilings, "gemm_gflops", ceiling[CEILING_SGEMM].rate);
    cJSON_AddStringToObject(ceilings, "gemm_shape", ceiling[CEILING_SGEMM].kernel->shape);
    if (ceiling[CEILING_BF16].ok)
        cJSON_AddNumberToObject(ceilings, "bf16_gemm_gflops", ceiling[CEILING_BF16].rate);
    cJSON_AddNumberToObject(ceilings, "copy_gbps", ceiling[CEILING_COPY].rate);
    cJSON_AddStringToObject(ceilings, "copy_shape", ceiling[CEILING_COPY].kernel->shape);
    cJSON *kernels = cJSON_AddArrayToObject(root, "kernels");
    for (int i = 0; i < count; i++) cJSON_AddItemToArray(kernels, result_json(&results[i]));
    // "train_step" in fp32, "train_step_bf16" in bf16, each against its precision's ceiling
    for (int p = 0; p < PRECISION_COUNT; p++) {
        double gemm_ceiling = ceiling[p == PRECISION_BF16 ? CEILING_BF16 : CEILING_SGEMM].rate;
        for (int k = 0; k < E2E_COUNT; k++) {
            if (!e2e[p][k].ran) continue;
            char name[64];
            e2e_row_name(name, sizeof name, (E2eKind)k, (Precision)p);
            cJSON *row = e2e_json(&e2e[p][k], s, gemm_ceiling, (Precision)p);
            if (k == E2E_SAMPLE_TEACHER) {
                cJSON_AddNumberToObject(row, "steps", E2E_TEACHER_STEPS);
                cJSON_AddNumberToObject(row, "cfg", o->sample_cfg);
            }
            cJSON_AddItemToObject(root, name, row);
        }
    }
    const E2eResult *t = &e2e[PRECISION_FP32][E2E_SAMPLE_TEACHER];
    const E2eResult *g = &e2e[PRECISION_FP32][E2E_SAMPLE_GENERATOR];
    if (t->ran && g->ran)
        cJSON_AddNumberToObject(root, "generator_over_teacher", g->images_per_s / t->images_per_s);
    return root;
}

// Writes the report to f (opened on path) and closes it. Returns 0, or 1 with a message.
static int write_json(FILE *f, const char *path, cJSON *root) {
    char *text = cJSON_Print(root);
    bool ok = text && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "bench: --json %s: cannot write the report: %s\n", path,
                text ? strerror(errno) : "out of memory");
    free(text);
    return ok ? 0 : 1;
}

static void print_header(const BenchOptions *o, const DitShapes *s, const Backend *be,
                         const char *cpu, double budget) {
    int64_t grid = s->image / s->patch;
    printf("dmdr %s bench\n", DMDR_VERSION);
    printf("machine   %s, %ld cores; device %s (backend %s), %d thread%s\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), device_name(o->device), be->name, threads_get(),
           threads_get() == 1 ? "" : "s");
    printf("shapes    %s: batch %lld, image %lld, patch %lld (%lld tokens), hidden %lld, heads "
           "%lld, depth %lld (%.2fM parameters)%s\n",
           s->name, (long long)s->batch, (long long)s->image, (long long)s->patch,
           (long long)(grid * grid), (long long)s->hidden, (long long)s->heads,
           (long long)s->depth, (double)dit_param_count(s) / 1e6, o->quick ? ", --quick" : "");
    printf("timing    per call: median (rate, ceiling) and best over >= %.2f s per kernel, "
           "after warm-up\n", budget);
    fflush(stdout);
}

// Measures the ceilings (the bf16 GEMM's only when bf16 is measured; ok false otherwise) and
// prints them. False (message printed) when their memory is not there.
static bool measure_ceilings(const Backend *be, const BenchOptions *o, double budget,
                             BenchCase cases[CEILING_COUNT],
                             BenchResult ceiling[CEILING_COUNT]) {
    bench_ceiling_cases(cases, o->device, o->quick);
    for (int i = 0; i < CEILING_COUNT; i++) {
        ceiling[i] = (BenchResult){.kernel = &cases[i]};
        if (i == CEILING_BF16 && !o->precisions[PRECISION_BF16]) continue;
        run_case(be, &cases[i], budget, &ceiling[i]);
        if (!ceiling[i].ok) {
            fprintf(stderr, "bench: without the %s ceiling no fraction can be reported\n",
                    cases[i].name);
            return false;
        }
        ceiling[i].rate = result_rate(&ceiling[i]);
        ceiling[i].fraction = 1.0;
    }
    printf("ceilings  sgemm %s: %.1f GFLOP/s", cases[CEILING_SGEMM].shape,
           ceiling[CEILING_SGEMM].rate);
    if (ceiling[CEILING_BF16].ok)
        printf("; bf16 GEMM %s: %.1f GFLOP/s", cases[CEILING_BF16].shape,
               ceiling[CEILING_BF16].rate);
    printf("; copy %s: %.1f GB/s (read + write)\n\n", cases[CEILING_COPY].shape,
           ceiling[CEILING_COPY].rate);
    return true;
}

// The ceiling kernel c is held to: its precision's GEMM, or the copy.
static double ceiling_of(const BenchCase *c, const BenchResult ceiling[CEILING_COUNT]) {
    if (c->flops == 0) return ceiling[CEILING_COPY].rate;
    return ceiling[c->precision == PRECISION_BF16 ? CEILING_BF16 : CEILING_SGEMM].rate;
}

// Times each selected kernel, printing its row as it finishes. False when one was skipped.
static bool measure_kernels(const Backend *be, const BenchCase *const *selected, int count,
                            double budget, const BenchResult ceiling[CEILING_COUNT],
                            BenchResult *results) {
    printf("%-24s %-30s %10s %10s %17s %8s\n", "kernel", "shape", "us/call", "best us", "rate",
           "ceiling");
    bool all_ok = true, beyond_copy = false;
    for (int i = 0; i < count; i++) {
        BenchResult *r = &results[i];
        run_case(be, selected[i], budget, r);
        if (r->ok) {
            r->rate = result_rate(r);
            r->fraction = r->rate / ceiling_of(selected[i], ceiling);
        }
        all_ok = all_ok && r->ok;
        beyond_copy = beyond_copy || (r->ok && selected[i]->flops == 0 && r->fraction > 1.0);
        print_row(r);
    }
    if (beyond_copy)
        printf("\nAbove 100%% of the copy ceiling: the operands stay in cache between calls; "
               "the ceiling is DRAM.\n");
    return all_ok;
}

// Whether a name passes --filter.
static bool selected_name(const BenchOptions *o, const char *name) {
    return !o->filter || strstr(name, o->filter);
}

int bench_run(const BenchOptions *opt) {
    BenchOptions o = *opt;
    const DitShapes shapes = o.shapes;
    threads_set(o.threads);
    const Backend *be = backend_get(o.device);
    const char *missing = be && o.precisions[PRECISION_BF16] ? be->bf16_missing(be) : NULL;
    if (missing) { // the rounded fp32 path would be timed: not what bf16 means
        o.precisions[PRECISION_BF16] = false;
        o.precisions[PRECISION_FP32] = true;
        printf("bench: bf16 asked for, but %s: measuring fp32 only\n", missing);
    }
    BenchCase cases[BENCH_MAX_CASES];
    int total = bench_kernel_cases(cases, &shapes, o.quick, o.precisions), count = 0;
    const BenchCase *selected[BENCH_MAX_CASES];
    for (int i = 0; i < total; i++)
        if (selected_name(&o, cases[i].name)) selected[count++] = &cases[i];
    E2eOptions e2e = {.shapes = &shapes, .model = o.model, .train = o.train,
                      .distill = o.distill, .sample_cfg = o.sample_cfg, .device = o.device,
                      .quick = o.quick};
    for (int p = 0; p < PRECISION_COUNT; p++) e2e.precisions[p] = o.precisions[p];
    bool any_e2e = false;
    for (int k = 0; k < E2E_COUNT; k++)
        any_e2e |= e2e.selected[k] = selected_name(&o, e2e_names[k]);
    if (count == 0 && !any_e2e) {
        fprintf(stderr, "bench: --filter '%s' matches no kernel; the kernels are:", o.filter);
        for (int i = 0; i < total; i++) fprintf(stderr, " %s", cases[i].name);
        fprintf(stderr, "; end to end:");
        for (int k = 0; k < E2E_COUNT; k++) fprintf(stderr, " %s", e2e_names[k]);
        fputc('\n', stderr);
        return 2;
    }

    if (!be) {
        fprintf(stderr, "bench: %s backend not available in this build/machine\n",
                device_name(o.device));
        return 1;
    }
    // Opened now, so an unwritable path fails before minutes of measuring, not after.
    FILE *json = NULL;
    if (o.json_path && !(json = fopen(o.json_path, "w"))) {
        fprintf(stderr, "bench: --json %s: cannot open for writing: %s\n", o.json_path,
                strerror(errno));
        return 2;
    }

    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    double budget = o.quick ? BUDGET_SECONDS_QUICK : BUDGET_SECONDS;
    print_header(&o, &shapes, be, cpu, budget);
    BenchCase ceiling_cases[CEILING_COUNT];
    BenchResult ceiling[CEILING_COUNT], results[BENCH_MAX_CASES];
    if (!measure_ceilings(be, &o, budget, ceiling_cases, ceiling)) {
        if (json) {
            fclose(json);
            remove(o.json_path); // no half-written report left behind
        }
        return 1;
    }
    int rc = 0;
    if (count > 0 && !measure_kernels(be, selected, count, budget, ceiling, results)) rc = 1;
    E2eResult e2e_results[PRECISION_COUNT][E2E_COUNT] = {0};
    double gemm_ceilings[PRECISION_COUNT] = {ceiling[CEILING_SGEMM].rate,
                                             ceiling[CEILING_BF16].rate};
    if (any_e2e) e2e_run(&e2e, gemm_ceilings, e2e_results);
    if (json) {
        cJSON *root = report_json(&o, &shapes, be, cpu, ceiling, results, count, e2e_results);
        if (write_json(json, o.json_path, root) != 0) rc = 1;
        cJSON_Delete(root);
    }
    return rc;
}
