// `dmdr bench`: its flags and the preset they name, handed to the benchmark (bench/bench.h)
// as plain settings: the preset's DiT at the batch of this run, its training step
// (command_flow_train, as train-teacher runs it), its distillation step
// (command_distill_options, as dmdr distill runs it) and its sampler's guidance. The flags are the
// command's own; it reads no settings table, so a preset is measured as it is.
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/end_to_end.h"
#include "tensor/dist.h"
#include "tools/commands.h"

// The presets --shapes accepts, the default first.
static const char *const dit_shape_names[] = {"small", "base"};
static const int dit_shape_count = (int)(sizeof dit_shape_names / sizeof dit_shape_names[0]);

typedef struct {
    int threads; // 0: $DMDR_THREADS, else every core
    const char *json_path;
    const char *filter;
    Device device;
    const char *preset; // --shapes
    int64_t batch;      // --batch, 0: the preset's (divided under --quick)
    bool quick;
    bool precisions[PRECISION_COUNT]; // --precision
} BenchFlags;

static void print_usage(FILE *f) {
    fprintf(f,
            "usage: dmdr bench [--threads N] [--device cpu|cuda] [--shapes NAME] [--batch N]\n"
            "                  [--precision fp32|bf16|both] [--quick] [--filter SUBSTRING]\n"
            "                  [--json FILE]\n"
            "\n"
            "Times every kernel of a DiT training step through the backend and reports each\n"
            "as GFLOP/s or GB/s and as a fraction of this machine's ceilings, measured in the\n"
            "same run: a large GEMM in each precision (GFLOP/s) and a large copy (GB/s, read +\n"
            "write). Then, end to end: the training step (train_step), one generator step of\n"
            "distillation (distill_step), the teacher's %d-step Euler sampling with CFG\n"
            "(sample_teacher) and 1-step generator sampling (sample_generator), in images/s,\n"
            "useful GFLOP/s, peak tensor memory and steady-state allocations. Every GEMM and\n"
            "every end-to-end figure comes in each precision measured (bf16 ones end in _bf16).\n"
            "\n"
            "  --threads N         CPU threads; 0 (default): $DMDR_THREADS, else every core\n"
            "  --device cpu|cuda   backend to measure (default cpu)\n"
            "  --shapes NAME       the DiT of this preset, at its training batch:",
            E2E_TEACHER_STEPS);
    for (int i = 0; i < dit_shape_count; i++)
        fprintf(f, " %s%s", dit_shape_names[i], i == 0 ? " (default)" : "");
    fprintf(f, "\n"
               "  --batch N           images per step instead of the preset's batch\n"
               "  --precision P       fp32, bf16 or both (default; bf16 only where the backend\n"
               "                      runs it natively: else fp32 alone, saying why)\n"
               "  --quick             batch / %d and short timing: the run takes seconds\n"
               "  --filter SUBSTRING  only the kernels and end-to-end figures whose name\n"
               "                      contains SUBSTRING (e.g. gemm, train_step, sample)\n"
               "  --json FILE         also write the results to FILE as JSON\n",
            BENCH_QUICK_BATCH_DIVISOR);
}

// Reads the value after flag argv[*i] into *value; false (message printed) when missing.
static bool flag_value(int argc, char **argv, int *i, const char **value) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "bench: %s needs a value (see dmdr bench --help)\n", argv[*i]);
        return false;
    }
    *value = argv[++*i];
    return true;
}

// Returns 0 to run, 1 when --help was printed, 2 (message printed) on a bad command line.
static int parse_options(BenchFlags *o, int argc, char **argv) {
    *o = (BenchFlags){.device = DEVICE_CPU, .preset = dit_shape_names[0],
                      .precisions = {true, true}};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = NULL;
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            print_usage(stdout);
            return 1;
        } else if (strcmp(flag, "--quick") == 0) {
            o->quick = true;
        } else if (strcmp(flag, "--threads") == 0) {
            if (!flag_value(argc, argv, &i, &value)) return 2;
            char *end;
            errno = 0;
            long n = strtol(value, &end, 10);
            if (errno || end == value || *end || n < 0 || n > 4096) {
                fprintf(stderr, "bench: --threads expects an integer in [0, 4096], got '%s'\n",
                        value);
                return 2;
            }
            o->threads = (int)n;
        } else if (strcmp(flag, "--batch") == 0) {
            if (!flag_value(argc, argv, &i, &value)) return 2;
            char *end;
            errno = 0;
            long long n = strtoll(value, &end, 10);
            if (errno || end == value || *end || n < 1 || n > (1 << 20)) {
                fprintf(stderr, "bench: --batch expects an integer in [1, %d], got '%s'\n",
                        1 << 20, value);
                return 2;
            }
            o->batch = n;
        } else if (strcmp(flag, "--device") == 0) {
            if (!flag_value(argc, argv, &i, &value)) return 2;
            if (strcmp(value, "cpu") == 0) {
                o->device = DEVICE_CPU;
            } else if (strcmp(value, "cuda") == 0) {
                o->device = DEVICE_CUDA;
            } else {
                fprintf(stderr, "bench: --device expects cpu or cuda, got '%s'\n", value);
                return 2;
            }
        } else if (strcmp(flag, "--shapes") == 0) {
            if (!flag_value(argc, argv, &i, &value)) return 2;
            o->preset = NULL;
            for (int s = 0; s < dit_shape_count; s++)
                if (strcmp(value, dit_shape_names[s]) == 0) o->preset = dit_shape_names[s];
            if (!o->preset) {
                fprintf(stderr, "bench: --shapes expects");
                for (int s = 0; s < dit_shape_count; s++)
                    fprintf(stderr, "%s %s", s == 0 ? "" : s + 1 < dit_shape_count ? "," : " or",
                            dit_shape_names[s]);
                fprintf(stderr, ", got '%s'\n", value);
                return 2;
            }
        } else if (strcmp(flag, "--precision") == 0) {
            if (!flag_value(argc, argv, &i, &value)) return 2;
            bool both = strcmp(value, "both") == 0;
            o->precisions[PRECISION_FP32] = both || strcmp(value, "fp32") == 0;
            o->precisions[PRECISION_BF16] = both || strcmp(value, "bf16") == 0;
            if (!o->precisions[PRECISION_FP32] && !o->precisions[PRECISION_BF16]) {
                fprintf(stderr, "bench: --precision expects fp32, bf16 or both, got '%s'\n",
                        value);
                return 2;
            }
        } else if (strcmp(flag, "--filter") == 0) {
            if (!flag_value(argc, argv, &i, &o->filter)) return 2;
        } else if (strcmp(flag, "--json") == 0) {
            if (!flag_value(argc, argv, &i, &o->json_path)) return 2;
        } else {
            fprintf(stderr, "bench: unknown flag '%s' (see dmdr bench --help)\n", flag);
            return 2;
        }
    }
    return 0;
}

// The benchmark's settings: the flags, and the preset's DiT at the batch of this run with its
// training step and guidance scale. False (message printed) when the preset cannot be read:
// a bug in the preset table.
static bool resolve_options(const BenchFlags *f, BenchOptions *o) {
    Config preset;
    Error err;
    config_defaults(&preset);
    *o = (BenchOptions){.threads = f->threads, .device = f->device, .quick = f->quick,
                        .filter = f->filter, .json_path = f->json_path};
    for (int p = 0; p < PRECISION_COUNT; p++) o->precisions[p] = f->precisions[p];
    if (config_apply_preset(&preset, f->preset, &err) != 0 ||
        dit_shapes_from_model(f->preset, &preset.model, preset.train.batch, &o->shapes, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return false;
    }
    DitShapes *s = &o->shapes;
    int64_t quick = s->batch / BENCH_QUICK_BATCH_DIVISOR;
    if (f->batch) s->batch = f->batch;
    else if (f->quick) s->batch = quick > 0 ? quick : 1;
    o->model = preset.model;
    o->train = command_flow_train(&preset);
    o->distill = command_distill_options(&preset);
    o->sample_cfg = preset.sample.opt.cfg_scale;
    return true;
}

int bench_main(int argc, char **argv) {
    BenchFlags flags;
    int parsed = parse_options(&flags, argc, argv);
    if (parsed == 1) return 0;
    if (parsed != 0) return parsed;
    BenchOptions o;
    if (!resolve_options(&flags, &o)) return 1;
    if (dist_size() > 1) {
        // every rank runs every measurement at once; rank 0 reports. The end-to-end steps are
        // the library's: each rank takes its share of the global batch and the gradients are
        // averaged, so their images/s is the run's
        if (dist_rank() != 0) {
            o.json_path = NULL;
            if (!freopen("/dev/null", "w", stdout)) return 1;
        }
        printf("bench: %d ranks, all measuring at once (rank 0 reports): kernels and ceilings "
               "are one rank's beside the others; train_step and distill_step split the global "
               "batch %lld over the ranks\n", dist_size(), (long long)o.shapes.batch);
    }
    return bench_run(&o);
}
