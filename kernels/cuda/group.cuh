// Reductions across the threads of a warp or a block, and "row groups": a row of a matrix
// owned by a group of threads, a warp when rows are short (eight rows to a block) or the
// whole block when they are long. Row kernels are templates on the group size and are
// launched through LAUNCH_ROWS, which picks it from the row length.
#pragma once

#include "kernels/cuda/common.cuh"

struct SumOp {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
// NaN never wins (b > a is false): a NaN element is ignored, as in the CPU backend's max.
struct MaxOp {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const {
        return b > a ? b : a;
    }
};

// The reduction of v over the 32 lanes of the warp, in every lane.
template <typename T, typename Op> __device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
    for (int offset = WARP / 2; offset > 0; offset >>= 1)
        v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// The reduction of v over a 1-d block (a whole number of warps), in every thread. Every
// thread of the block must call it. The warps' results are combined in warp order, so the
// result does not depend on timing.
template <typename T, typename Op> __device__ T block_reduce(T v, Op op) {
    __shared__ T warp_results[WARP];
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = blockDim.x / WARP;
    v = warp_reduce(v, op);
    if (lane == 0) warp_results[warp] = v;
    __syncthreads();
    T total = warp_results[0];
    for (int i = 1; i < warps; i++) total = op(total, warp_results[i]);
    __syncthreads(); // every thread has read warp_results before a next call overwrites it
    return total;
}

// ---- row groups -------------------------------------------------------------------------------

// Rows no longer than this are owned by a warp each; longer ones by a block of THREADS.
#define WARP_ROW_MAX 1024

// The row this thread's group owns (it may be past the last row in the last block of a
// warp-per-row launch), the thread's lane in its group, and the group's size.
template <int GROUP> __device__ __forceinline__ int64_t group_row(void) {
    if constexpr (GROUP == WARP)
        return (int64_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    else
        return blockIdx.x;
}
template <int GROUP> __device__ __forceinline__ int group_lane(void) {
    return GROUP == WARP ? (int)(threadIdx.x % WARP) : (int)threadIdx.x;
}
template <int GROUP> __device__ __forceinline__ int group_size(void) {
    return GROUP == WARP ? WARP : (int)blockDim.x;
}
template <int GROUP, typename T, typename Op>
__device__ __forceinline__ T group_reduce(T v, Op op) {
    if constexpr (GROUP == WARP) return warp_reduce(v, op);
    else return block_reduce(v, op);
}

// Launches kernel<GROUP>(args...) on be's stream with one group per row over `rows` rows of
// length `len`. A warp-per-row kernel must return early (the whole warp) for rows past the
// last; a block-per-row kernel gets exactly one block per row.
#define LAUNCH_ROWS(be, rows, len, kernel, ...)                                              \
    do {                                                                                     \
        int64_t rows_ = (rows);                                                              \
        DMDR_CHECK(rows_ < ((int64_t)1 << 31), "%lld rows exceed one CUDA grid",             \
                   (long long)rows_);                                                        \
        if (rows_ <= 0) break;                                                               \
        if ((len) <= WARP_ROW_MAX) {                                                         \
            int64_t per_block_ = THREADS / WARP;                                             \
            KERNEL_LAUNCH(be, (unsigned)((rows_ + per_block_ - 1) / per_block_), THREADS, 0, \
                          kernel<WARP>)(__VA_ARGS__);                                        \
        } else {                                                                             \
            KERNEL_LAUNCH(be, (unsigned)rows_, THREADS, 0, kernel<THREADS>)(__VA_ARGS__);    \
        }                                                                                    \
        CUDA_LAUNCH_CHECK(be);                                                               \
    } while (0)
