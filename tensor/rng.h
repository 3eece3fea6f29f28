// The seeded random stream. A stream is a Philox key (the seed) and a position (counter
// blocks used so far); every random tensor reserves a range of the counter and the kernels
// compute each element from (seed, block) alone. So a seed gives the same numbers on every
// thread count and device, and saving (seed, offset) saves the stream exactly.
#pragma once

#include <stdint.h>

typedef struct {
    uint64_t seed;
    uint64_t offset; // next unused Philox counter block
} Rng;

Rng rng_make(uint64_t seed);
// Reserves counter blocks for n elements and returns the first block.
uint64_t rng_reserve(Rng *rng, int64_t n);
// Host-side draws for small decisions (shuffles, sampled indices), from the same stream.
float rng_uniform_float(Rng *rng);            // in (0, 1]
uint64_t rng_below(Rng *rng, uint64_t bound); // uniform in [0, bound)
// Derives an independent stream (for a worker, a data loader, an evaluation) from a label.
Rng rng_fork(const Rng *rng, uint64_t label);
