// What `dmdr bench` measures: one BenchCase is one Backend call (or a short recipe of them,
// as conv2d) on buffers sized like the call a DiT training step makes. bench.c allocates the
// buffers, times the call and reports.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/cases/cases.h"
#include "nn/model.h"

// One DiT configuration: the image and model sizes the kernel shapes follow from. `dmdr bench`
// (tools/cmd_bench.c) makes it from the preset of the same name, so the bench measures what
// training runs.
typedef struct {
    const char *name;                  // the preset: "small" or "base"
    int64_t image, in_channels, patch; // images (in_channels, image, image), square patches
    int64_t hidden, depth, heads, mlp; // mlp: the width of each block's MLP
    int64_t batch;                     // images per training step
    int64_t classes;
} DitShapes;

// The shapes of model m, a DiT named `name` (its preset), at `batch` images per step. Error
// when m is not a DiT.
int dit_shapes_from_model(const char *name, const ModelConfig *m, int64_t batch, DitShapes *s,
                          Error *err);

#define BENCH_MAX_CASES 64

// One kernel call at a training step's shapes: a case of the kernel-case registry, whose op
// makes the call and whose operands bench.c allocates and fills.
typedef KernelCase BenchCase;

// The ceilings every kernel is compared with: a large square GEMM in each precision (GFLOP/s;
// a GEMM case is held to the one of its own precision) and a copy far beyond the last-level
// cache (GB/s, bytes read + written).
typedef enum { CEILING_SGEMM, CEILING_BF16, CEILING_COPY, CEILING_COUNT } Ceiling;
void bench_ceiling_cases(BenchCase cases[CEILING_COUNT], Device device, bool quick);

// Writes the kernels of one DiT training step at these shapes into cases
// (BENCH_MAX_CASES room); returns how many. quick: the large (beyond-cache) arrays shrink.
// Every GEMM comes in each precision whose precisions[] is set (a bf16 one named ..._bf16).
int bench_kernel_cases(BenchCase *cases, const DitShapes *s, bool quick,
                       const bool precisions[PRECISION_COUNT]);

// Parameters of the DiT: the size of the tensors AdamW updates each step.
int64_t dit_param_count(const DitShapes *s);
// Useful floating-point work of one forward over `images` images: every GEMM of the linear
// layers, the patch embedding, and attention's two products (2 flops per multiply-add).
// Elementwise work is not counted; a training step is 3 forwards' worth (backward = 2).
double dit_forward_flops(const DitShapes *s, int64_t images);
