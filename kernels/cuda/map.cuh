// Elementwise kernels as one generic loop: out_j[i] = f(in_0[i], ..., in_{NIN-1}[i]) for
// i < n, where f is a functor with `__device__ void operator()(const float *in, float *out)`
// taking NIN values and writing NOUT. Unary, scalar and flat binary ops, their backwards,
// fill, the squared-error backward and AdamW are all this loop with a different f.
//
// When every pointer is 16-byte aligned the loop moves float4s (one 128-bit load or store
// per array and four elements); otherwise, and for the last n % 4 elements, single floats.
// An output may alias an input: each element is read and then written by the same thread.
#pragma once

#include "kernels/cuda/common.cuh"

template <int NIN, int NOUT> struct MapArgs {
    const float *in[NIN > 0 ? NIN : 1];
    float *out[NOUT];
};

// Component `lane` (0..3) of a float4, as an lvalue; with a constant lane it is a register.
static __device__ __forceinline__ float &float4_lane(float4 &v, int lane) {
    return lane == 0 ? v.x : lane == 1 ? v.y : lane == 2 ? v.z : v.w;
}

template <int NIN, int NOUT, typename F>
__global__ void map_kernel(MapArgs<NIN, NOUT> args, F f, int64_t n, bool vectorised) {
    int64_t first = global_thread(), step = grid_threads();
    int64_t vectors = vectorised ? n / 4 : 0;
    for (int64_t v = first; v < vectors; v += step) {
        float4 in[NIN > 0 ? NIN : 1], out[NOUT];
#pragma unroll
        for (int k = 0; k < NIN; k++) in[k] = reinterpret_cast<const float4 *>(args.in[k])[v];
#pragma unroll
        for (int lane = 0; lane < 4; lane++) {
            float x[NIN > 0 ? NIN : 1], y[NOUT];
#pragma unroll
            for (int k = 0; k < NIN; k++) x[k] = float4_lane(in[k], lane);
            f(x, y);
#pragma unroll
            for (int k = 0; k < NOUT; k++) float4_lane(out[k], lane) = y[k];
        }
#pragma unroll
        for (int k = 0; k < NOUT; k++) reinterpret_cast<float4 *>(args.out[k])[v] = out[k];
    }
    for (int64_t i = 4 * vectors + first; i < n; i += step) {
        float x[NIN > 0 ? NIN : 1], y[NOUT];
#pragma unroll
        for (int k = 0; k < NIN; k++) x[k] = args.in[k][i];
        f(x, y);
#pragma unroll
        for (int k = 0; k < NOUT; k++) args.out[k][i] = y[k];
    }
}

static inline bool aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

// Runs f over n elements of the arrays in args.
template <int NIN, int NOUT, typename F>
void launch_map(const Backend *be, const MapArgs<NIN, NOUT> &args, F f, int64_t n) {
    if (n <= 0) return;
    bool vectorised = true;
    for (int k = 0; k < NIN; k++) vectorised = vectorised && aligned16(args.in[k]);
    for (int k = 0; k < NOUT; k++) vectorised = vectorised && aligned16(args.out[k]);
    int64_t items = vectorised ? n / 4 + n % 4 : n;
    unsigned grid = grid_for(be, items, THREADS);
    KERNEL_LAUNCH(be, grid, THREADS, 0, map_kernel<NIN, NOUT, F>)(args, f, n, vectorised);
    CUDA_LAUNCH_CHECK(be);
}
