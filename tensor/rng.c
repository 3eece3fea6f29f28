#include "tensor/rng.h"

#include "kernels/philox.h"

Rng rng_make(uint64_t seed) {
    Rng r = {seed, 0};
    return r;
}

uint64_t rng_reserve(Rng *rng, int64_t n) {
    uint64_t first = rng->offset;
    rng->offset += (uint64_t)((n + 3) / 4);
    return first;
}

// Host draws take one whole counter block each: simple, and the stream position stays an
// exact count of blocks, so saving (seed, offset) restores it.
float rng_uniform_float(Rng *rng) {
    PhiloxBlock b = philox4x32_10(rng->seed, rng->offset++);
    return philox_to_unit(b.v[0]);
}

uint64_t rng_below(Rng *rng, uint64_t bound) {
    PhiloxBlock b = philox4x32_10(rng->seed, rng->offset++);
    uint64_t x = ((uint64_t)b.v[0] << 32) | b.v[1];
    // 64-bit draws make the modulo bias at most bound / 2^64: invisible at our sizes.
    return bound ? x % bound : 0;
}

Rng rng_fork(const Rng *rng, uint64_t label) {
    PhiloxBlock b = philox4x32_10(rng->seed ^ 0x5851F42D4C957F2Dull, label);
    Rng r = {((uint64_t)b.v[0] << 32) | b.v[1], 0};
    return r;
}
