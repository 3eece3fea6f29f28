// Branch-free float approximations of exp, tanh, sigmoid and sqrt for the CPU kernels' hot
// loops.
//
// libm's expf/tanhf are scalar calls that GCC cannot vectorise without -ffast-math (which we
// do not use), and they cost about ten times a memory-bound loop. These are straight-line
// arithmetic with selects instead of branches, so a loop calling them under
// `#pragma omp simd` becomes AVX2/AVX-512 code. Accuracy, measured against double precision
// over every float: fast_expf within about 1 ulp (1.01) everywhere, subnormal results, inf,
// NaN included; fast_tanhf within 2e-7 relative, -0 and NaN as in libm; fast_sigmoidf within
// 2e-7 relative wherever it is not flushed to 0 (x < -87); fast_sqrtf within 1 ulp.
#pragma once

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

// The bits of a float as an integer and back (unions are the C11 way to reinterpret; GCC
// turns them into register moves that vectorise). Unsigned, so that the bit arithmetic below
// is defined for every input, NaN included.
static inline uint32_t fastmath_bits(float x) {
    union { float f; uint32_t u; } v = {x};
    return v.u;
}

static inline float fastmath_from_bits(uint32_t u) {
    union { uint32_t u; float f; } v = {u};
    return v.f;
}

// a * b + c. Fused where the target has FMA: one instruction and one rounding (C11 mode
// compiles with -ffp-contract=off, so the compiler never fuses on its own). Without FMA
// hardware fmaf would be a slow library call, so there it is a multiply and an add.
static inline float fastmath_fma(float a, float b, float c) {
#ifdef __FMA__
    return fmaf(a, b, c);
#else
    return a * b + c;
#endif
}

// 2^n for n in [-126, 127], built directly in the exponent field.
static inline float fastmath_pow2i(int32_t n) {
    return fastmath_from_bits((uint32_t)(n + 127) << 23);
}

// x = n ln2 + r with n an integer and |r| <= ln2 / 2 (valid for |x| < 2^22). Returns r.
static inline float fastmath_reduce_ln2(float x, int32_t *n) {
    // Adding 1.5 * 2^23 rounds x / ln2 to an integer that lands in the float's low mantissa
    // bits, where it is read out without a float-to-int conversion.
    const float round_magic = 12582912.0f;
    float shifted = fastmath_fma(x, 1.44269504088896341f, round_magic);
    float nf = shifted - round_magic;
    *n = (int32_t)(fastmath_bits(shifted) - fastmath_bits(round_magic));
    // ln2 split in two so that n * ln2_hi is exact (Cody-Waite)
    float r = fastmath_fma(nf, -0.693359375f, x);
    return fastmath_fma(nf, 2.12194440e-4f, r);
}

// e^r - 1 for |r| <= ln2 / 2: r + r^2 P(r), the Cephes expf polynomial.
static inline float fastmath_expm1_reduced(float r) {
    float p = 1.9875691500e-4f;
    p = fastmath_fma(p, r, 1.3981999507e-3f);
    p = fastmath_fma(p, r, 8.3334519073e-3f);
    p = fastmath_fma(p, r, 4.1665795894e-2f);
    p = fastmath_fma(p, r, 1.6666665459e-1f);
    p = fastmath_fma(p, r, 5.0000001201e-1f);
    return fastmath_fma(p, r * r, r);
}

// e^x. The scale 2^n is applied as 2^(n/2) 2^(n - n/2) so that both factors stay normal
// floats over the whole clamped range: results are correct down through the subnormals to 0
// and up to +inf, just like expf.
static inline float fast_expf(float x) {
    // e^89 overflows and e^-104 underflows to 0, so the clamp changes no result; it keeps n
    // small enough for the exponent arithmetic. NaN fails both comparisons and stays NaN.
    x = x > 89.0f ? 89.0f : x;
    x = x < -104.0f ? -104.0f : x;
    int32_t n;
    float p = fastmath_expm1_reduced(fastmath_reduce_ln2(x, &n)) + 1.0f;
    int32_t half = n >> 1; // any split works; >> of a negative int sign-extends in GCC and Clang
    return p * fastmath_pow2i(half) * fastmath_pow2i(n - half);
}

// e^x for |x| <= 87, and exactly 0 below and +inf above: results that would be subnormal (or
// near overflow) are flushed. For 1 + e^x and sums of e^(x - max), where such values cannot
// change the result, but computing one would: an instruction that produces a subnormal
// takes a microcode assist on x86, about 30 times slower. One scale multiply suffices here.
static inline float fast_expf_ftz(float x) {
    float clamped = x > 87.0f ? 87.0f : (x < -87.0f ? -87.0f : x);
    int32_t n;
    float p = fastmath_expm1_reduced(fastmath_reduce_ln2(clamped, &n)) + 1.0f;
    float e = p * fastmath_pow2i(n);
    e = x < -87.0f ? 0.0f : e; // NaN fails both tests and stays NaN
    return x > 87.0f ? INFINITY : e;
}

// e^x - 1 for x in [-87, 88], accurate (relative) near 0 where e^x - 1 would cancel:
// 2^n (e^r - 1) + (2^n - 1), and n = 0 near 0.
static inline float fastmath_expm1_bounded(float x) {
    int32_t n;
    float em1 = fastmath_expm1_reduced(fastmath_reduce_ln2(x, &n));
    float scale = fastmath_pow2i(n);
    return fastmath_fma(scale, em1, scale - 1.0f);
}

// tanh(|x|) = e / (e + 2) with e = e^(2|x|) - 1, which stays accurate near 0 (no 1 - ...
// cancellation); the sign of x is copied on at the end, so tanh is odd to the bit, -0 too.
static inline float fast_tanhf(float x) {
    float ax = fabsf(x);
    ax = ax > 10.0f ? 10.0f : ax; // tanh(10) rounds to 1; keeps e finite. NaN stays NaN.
    float e = fastmath_expm1_bounded(2.0f * ax);
    float t = e / (e + 2.0f);
    return fastmath_from_bits(fastmath_bits(t) | (fastmath_bits(x) & 0x80000000u));
}

// 1 / (1 + e^-x): 1 above x = 87, 0 below x = -87 (the true values there are within 2e-38 of
// these), never a subnormal.
static inline float fast_sigmoidf(float x) { return 1.0f / (1.0f + fast_expf_ftz(-x)); }

// sqrt(x), within 1 ulp (correctly rounded for all but about 0.01% of floats when the target
// has FMA), with 0, -0, subnormals, inf, NaN and x < 0 as in sqrtf. libm's sqrtf is a single
// instruction, but it may set errno, and under GCC's default -fmath-errno that keeps any loop
// calling it scalar; this one vectorises.
static inline float fast_sqrtf(float x) {
    // Tiny inputs (0 and subnormals too) are scaled up by 2^100 and the root back by 2^-50,
    // so the guess below always starts from a normal float.
    bool tiny = x < 0x1p-100f;
    float xs = tiny ? x * 0x1p100f : x;
    // 1 / sqrt(xs) from the exponent and mantissa bits (within 0.2%), then two Newton steps
    float r = fastmath_from_bits(0x5f375a86u - (fastmath_bits(xs) >> 1));
    float half_xs = 0.5f * xs;
    r = r * (1.5f - half_xs * r * r);
    r = r * (1.5f - half_xs * r * r);
    // sqrt(xs) = xs / sqrt(xs), corrected once by the residual xs - y^2 (exact with FMA)
    float y = xs * r;
    y = fastmath_fma(0.5f * r, fastmath_fma(-y, y, xs), y);
    y = tiny ? y * 0x1p-50f : y;
    y = x == INFINITY ? x : y;
    return x < 0.0f ? NAN : y;
}
