// What `dmdr bench` measures: one BenchCase is one Backend call on buffers sized like the
// call a DiT training step makes. bench.c allocates the buffers, times the call and reports.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "tools/config.h"

// One DiT configuration: the image and model sizes the kernel shapes follow from, read from
// the preset of the same name in tools/config.c, so the bench measures what training runs.
typedef struct {
    const char *name;                  // the preset: "small" or "base"
    int64_t image, in_channels, patch; // images (in_channels, image, image), square patches
    int64_t hidden, depth, heads, mlp; // mlp: the width of each block's MLP
    int64_t batch;                     // images per training step
    int64_t classes;
} DitShapes;

// The presets `dmdr bench --shapes` accepts, the default first.
extern const char *const dit_shape_names[];
extern const int dit_shape_count;

// The DiT of preset `name` at the batch it trains with; *config (may be NULL) receives the
// whole preset (training and sampler settings too). Error for a preset that is unknown or
// not a DiT.
int dit_shapes_from_preset(const char *name, DitShapes *s, Config *config, Error *err);

#define BENCH_MAX_BUFFERS 6
#define BENCH_MAX_DIMS 8
#define BENCH_MAX_CASES 48

typedef enum {
    BUFFER_SIGNED,   // floats uniform in [-1, 1]
    BUFFER_POSITIVE, // floats uniform in [0.1, 1] (AdamW's second moment, under a sqrt)
    BUFFER_LABELS,   // int32 class labels in [0, label_range)
} BufferInit;

typedef struct {
    int64_t count; // 4-byte elements
    BufferInit init;
    int64_t label_range;
} BufferSpec;

// `dim` holds the call's sizes; each call function says what its entries mean.
typedef void (*BenchCall)(const Backend *be, void *const *buf, const int64_t *dim);

typedef struct {
    const char *name;
    char shape[72]; // the operands in PyTorch terms, for the report
    double flops;   // floating-point work of one call: compute-bound kernels, else 0
    double bytes;   // bytes one call must read and write: memory-bound kernels, else 0
    int64_t dim[BENCH_MAX_DIMS];
    int nbuffers;
    BufferSpec buffers[BENCH_MAX_BUFFERS];
    BenchCall prepare; // untimed, once: makes inputs that must agree (e.g. lse from forward)
    BenchCall call;
} BenchCase;

// The two ceilings every kernel is compared with: a large square sgemm (GFLOP/s) and a
// copy far beyond the last-level cache (GB/s, bytes read + written).
void bench_ceiling_cases(BenchCase *gemm, BenchCase *copy, Device device, bool quick);

// Writes the kernels of one DiT training step at these shapes into cases
// (BENCH_MAX_CASES room); returns how many. quick: the large (beyond-cache) arrays shrink.
int bench_kernel_cases(BenchCase *cases, const DitShapes *s, bool quick);

// Parameters of the DiT: the size of the tensors AdamW updates each step.
int64_t dit_param_count(const DitShapes *s);
// Useful floating-point work of one forward over `images` images: every GEMM of the linear
// layers, the patch embedding, and attention's two products (2 flops per multiply-add).
// Elementwise work is not counted; a training step is 3 forwards' worth (backward = 2).
double dit_forward_flops(const DitShapes *s, int64_t images);
