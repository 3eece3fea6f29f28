// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11),
// the counter-based generator PyTorch and cuRAND use. A block of four 32-bit words is a
// pure function of (key, counter), so any element of a random tensor can be computed by
// any thread on any device: the same seed gives the same tensor everywhere.
// Shared by the CPU and CUDA backends; plain C that nvcc also compiles.
#pragma once

#include <stdint.h>

#ifdef __CUDACC__
#define PHILOX_FN static __host__ __device__ inline
#else
#define PHILOX_FN static inline
#endif

typedef struct {
    uint32_t v[4];
} PhiloxBlock;

PHILOX_FN uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

// counter = (block index low, block index high, 0, 0); key = (seed low, seed high)
PHILOX_FN PhiloxBlock philox4x32_10(uint64_t seed, uint64_t block) {
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = philox_mulhilo(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = philox_mulhilo(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    PhiloxBlock out = {{c0, c1, c2, c3}};
    return out;
}

// A 32-bit word to a float in (0, 1]: 24 random bits, never 0 so log() is safe.
PHILOX_FN float philox_to_unit(uint32_t x) {
    return ((float)(x >> 8) + 1.0f) * (1.0f / 16777216.0f);
}
