// What every CUDA kernel file shares: error checks that stop with file:line, the backend's
// state (the one stream all work runs on, scratch memory), and launch geometry.
//
// Every kernel runs on the backend's stream, so work is ordered without events: a kernel
// sees the results of everything launched before it. Freed tensor storage can go back to
// the storage cache at once for the same reason: whatever reuses it is queued behind the
// kernels still reading it.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

// Device-side checks (an out-of-range index) stay on in every build type: they print the
// failed condition with file:line and thread, and the launch then fails with
// cudaErrorAssert at the next synchronising call.
#ifdef NDEBUG
#undef NDEBUG
#endif
#include <assert.h>

#include "kernels/check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/layout.h"

// A CUDA runtime call that must succeed; on failure: file:line, the error and the call.
#define CUDA_CHECK(call)                                                                 \
    do {                                                                                 \
        cudaError_t err_ = (call);                                                       \
        if (err_ != cudaSuccess)                                                         \
            DMDR_FATAL("CUDA error %s (%s) from %s", cudaGetErrorName(err_),             \
                       cudaGetErrorString(err_), #call);                                 \
    } while (0)

// Launches a kernel on the stream of backend `be`:
// KERNEL_LAUNCH(be, grid, block, smem, kernel)(args); always followed by CUDA_LAUNCH_CHECK(be).
#define KERNEL_LAUNCH(be, grid, block, smem, ...) \
    __VA_ARGS__<<<(grid), (block), (smem), cuda_stream(be)>>>

// The dynamic shared memory of a kernel (its size is the launch's smem argument).
#define DYNAMIC_SHARED(type, name) extern __shared__ type name[]

// After every launch. A bad configuration is reported here at once. A fault inside the
// kernel surfaces at the next synchronising call, reported with that call's file:line; with
// DMDR_CUDA_SYNC=1 in the environment every launch is waited for here, so the fault is
// reported with the file:line of the launch that caused it.
#define CUDA_LAUNCH_CHECK(be)                                                           \
    do {                                                                              \
        CUDA_CHECK(cudaGetLastError());                                               \
        if (cuda_context(be)->sync_launches)                                          \
            CUDA_CHECK(cudaStreamSynchronize(cuda_stream(be)));                       \
    } while (0)

// printf-style check inside a kernel (see the note on NDEBUG above).
#define DEVICE_CHECK(cond, fmt, ...)                                                   \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            printf("%s:%d: device check failed: " fmt "\n", __FILE__, __LINE__,        \
                   __VA_ARGS__);                                                       \
            assert(cond);                                                              \
        }                                                                              \
    } while (0)

// ---- the device state ------------------------------------------------------------------------
// The CUDA backend's state, the `state` of its table: made by cuda_context_create (device.cu)
// when the backend is first obtained, and reached from every entry through its `be`.
struct CudaContext {
    cudaStream_t stream; // every kernel and copy of the backend runs on it, in order
    int sm_count;        // multiprocessors, for sizing grids
    bool sync_launches;  // DMDR_CUDA_SYNC=1: wait after every launch (see CUDA_LAUNCH_CHECK)
    void *scratch;       // see cuda_scratch
    size_t scratch_bytes;
    struct cublasContext *blas; // the cuBLAS handle (a cublasHandle_t), made at the first GEMM
    int tf32_wanted;            // -1 until decided (the environment decides at the first GEMM)
    int tf32_applied;           // the math mode last set on blas; -1 before the first
    void *comm;                 // the NCCL communicator (an ncclComm_t), once the ranks joined
};

static inline CudaContext *cuda_context(const Backend *be) { return (CudaContext *)be->state; }
static inline cudaStream_t cuda_stream(const Backend *be) { return cuda_context(be)->stream; }
static inline int cuda_sm_count(const Backend *be) { return cuda_context(be)->sm_count; }

// Device memory for a call's temporaries, valid until the next cuda_scratch call. It only
// grows (waiting for queued work before it frees the old block), so the steady state makes
// no allocation. Kernels queued before a call may still be reading the previous contents;
// they run before anything queued after, so overwriting it from new kernels is safe.
void *cuda_scratch(const Backend *be, size_t nbytes);

// Bytes rounded up to 256, so that regions carved out of one scratch block stay aligned.
static inline size_t scratch_round(size_t nbytes) { return (nbytes + 255) & ~(size_t)255; }

// ---- launch geometry ------------------------------------------------------------------------
#define THREADS 256 // threads per block of the flat (grid-stride) kernels
#define WARP 32

// Blocks for a grid-stride loop over n items, `threads` per block: as many as the items
// need, capped at a few waves of the device (each thread then loops over several items).
static inline unsigned grid_for(const Backend *be, int64_t n, int threads) {
    int64_t blocks = (n + threads - 1) / threads;
    int64_t cap = (int64_t)cuda_sm_count(be) * 16;
    if (blocks > cap) blocks = cap;
    return (unsigned)(blocks > 0 ? blocks : 1);
}

// The index of this thread in a 1-d grid, and the grid's thread count.
static __device__ __forceinline__ int64_t global_thread(void) {
    return (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
}
static __device__ __forceinline__ int64_t grid_threads(void) {
    return (int64_t)gridDim.x * blockDim.x;
}

// A two-level index (hi, lo), lo < size, stepped by a fixed amount without a division per
// step: the walk through (run, element) pairs of a reduction, or (channel, pixel) pairs.
struct SteppedIndex {
    int64_t hi, lo, size;
    int64_t step_hi, step_lo; // the step, split as step = step_hi * size + step_lo
    __device__ SteppedIndex(int64_t flat, int64_t size_, int64_t step)
        : hi(flat / size_), lo(flat % size_), size(size_), step_hi(step / size_),
          step_lo(step % size_) {}
    __device__ void advance() {
        hi += step_hi;
        lo += step_lo;
        if (lo >= size) {
            lo -= size;
            hi++;
        }
    }
};

// merged_offsets (kernels/layout.h) in the index type I of the kernel: uint32_t when
// merged_fits_32, else int64_t.
static __device__ __forceinline__ void merged_offsets_of(const MergedDims &m, uint32_t flat,
                                                         uint32_t *off0, uint32_t *off1) {
    merged_offsets32(&m, flat, off0, off1);
}
static __device__ __forceinline__ void merged_offsets_of(const MergedDims &m, int64_t flat,
                                                         int64_t *off0, int64_t *off1) {
    merged_offsets(&m, flat, off0, off1);
}

// How a reduction over `reduced` elements for each of `items` independent outputs is split
// into parallel pieces: `splits` consecutive chunks of `chunk` elements (the last may be
// shorter), each reduced by one block into a partial result. `blocks_wanted` is how many
// blocks fill the device; a chunk is never shorter than `min_chunk` unless the whole
// reduction is. splits is at least 1 and at most max_splits.
typedef struct {
    int64_t splits, chunk;
} ReduceSplit;

static inline ReduceSplit reduce_split(int64_t items, int64_t reduced, int64_t blocks_wanted,
                                       int64_t min_chunk, int64_t max_splits) {
    ReduceSplit sp = {1, reduced};
    if (reduced <= 0 || items <= 0) return sp;
    int64_t splits = (blocks_wanted + items - 1) / items;
    int64_t by_length = (reduced + min_chunk - 1) / min_chunk;
    if (splits > by_length) splits = by_length;
    if (splits > max_splits) splits = max_splits;
    if (splits < 1) splits = 1;
    sp.chunk = (reduced + splits - 1) / splits;
    sp.splits = (reduced + sp.chunk - 1) / sp.chunk; // no empty chunk at the end
    return sp;
}
