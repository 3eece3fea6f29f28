// bfloat16: the top 16 bits of an IEEE fp32 (sign, 8-bit exponent, 7-bit mantissa). Same
// range as fp32, 3 significant decimal digits. Mixed precision rounds a GEMM's operands to it
// and accumulates their products in fp32; a product of two bf16 values (8-bit significands)
// is exact in fp32's 24, so the only rounding besides the operands' is the fp32 sum's.
//
// One conversion for every backend and for the tests' reference (host_device.h).
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels/host_device.h"

// x -> the nearest bf16, ties to even (what AVX512-BF16's vcvtneps2bf16, CUDA's
// __float2bfloat16_rn and PyTorch's .to(torch.bfloat16) do); a NaN stays a (quiet) NaN, and a
// finite value past the largest bf16 by half a unit or more becomes infinity.
HOST_DEVICE uint16_t bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
    bool nan = (u & 0x7fffffffu) > 0x7f800000u;
    return (uint16_t)((nan ? (u | 0x00400000u) : rounded) >> 16);
}

HOST_DEVICE float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

// x rounded to the nearest bf16, as an fp32
HOST_DEVICE float bf16_round(float x) { return bf16_to_float(bf16_from_float(x)); }
