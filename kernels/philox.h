// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11),
// the counter-based generator PyTorch and cuRAND use. A block of four 32-bit words is a
// pure function of (key, counter), so any element of a random tensor can be computed by
// any thread on any device: the same seed gives the same tensor everywhere.
// The generator and its mappings to uniform and normal numbers (backend.h states them) are
// shared by the CPU and CUDA backends (host_device.h): the promise of the same noise on every
// device rests on this one copy.
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/host_device.h"

// One rounding per operation on every device. nvcc would fuse a multiply and an add into one
// FMA; the C build never does (-std=c11 implies -ffp-contract=off), so uniform numbers are
// bit for bit the same everywhere.
#ifdef __CUDA_ARCH__
#define PHILOX_ADD(a, b) __fadd_rn(a, b)
#define PHILOX_MUL(a, b) __fmul_rn(a, b)
#else
#define PHILOX_ADD(a, b) ((a) + (b))
#define PHILOX_MUL(a, b) ((a) * (b))
#endif

typedef struct {
    uint32_t v[4];
} PhiloxBlock;

HOST_DEVICE uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

// counter = (block index low, block index high, 0, 0); key = (seed low, seed high)
HOST_DEVICE PhiloxBlock philox4x32_10(uint64_t seed, uint64_t block) {
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
HOST_DEVICE float philox_to_unit(uint32_t x) {
    return ((float)(x >> 8) + 1.0f) * (1.0f / 16777216.0f);
}

// four values uniform in (lo, hi], one per word
HOST_DEVICE void philox_uniform4(float out[4], PhiloxBlock block, float lo, float hi) {
    for (int j = 0; j < 4; j++)
        out[j] = PHILOX_ADD(lo, PHILOX_MUL(hi - lo, philox_to_unit(block.v[j])));
}

// four values N(mean, std^2): Box-Muller on the word pairs (0, 1) and (2, 3); the even word
// of a pair gives the radius and takes the cosine, the odd word the angle and the sine.
// Normal numbers differ between devices only where their logf, cosf, sinf round differently.
HOST_DEVICE void philox_normal4(float out[4], PhiloxBlock block, float mean, float std) {
    for (int j = 0; j < 4; j += 2) {
        float radius = sqrtf(-2.0f * logf(philox_to_unit(block.v[j]))); // unit is never 0
        float angle = 6.28318530717958648f * philox_to_unit(block.v[j + 1]);
        float scale = PHILOX_MUL(std, radius);
        out[j] = PHILOX_ADD(mean, PHILOX_MUL(scale, cosf(angle)));
        out[j + 1] = PHILOX_ADD(mean, PHILOX_MUL(scale, sinf(angle)));
    }
}
