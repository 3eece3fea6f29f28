// The CUDA device: probing for it and creating the backend's state (the stream every kernel
// runs on, scratch memory), and the backend's memory entries (allocation, copies,
// synchronisation).
//
// Device memory comes from cudaMalloc; the storage cache above (tensor/storage.c) keeps
// freed blocks for reuse, so a training step whose shapes repeat allocates nothing after
// its first iteration. Copies to and from the host wait for the stream: the host buffer
// may be reused (or read) as soon as they return.
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/common.cuh"

// The first CUDA calls of the process. Failing calls here mean "no usable device", not a
// bug, so they are reported through `reason` instead of stopping the program.
static bool probe_failed(cudaError_t err, const char *what, char *reason, size_t size) {
    if (err == cudaSuccess) return false;
    snprintf(reason, size, "%s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
    cudaGetLastError(); // not sticky: clear it so that later checks do not report it
    return true;
}

// The device of this process: DMDR_CUDA_DEVICE when set, else under an MPI launcher the rank's
// place on its node (one GPU per rank), else 0.
static int chosen_device(int count) {
    const char *names[] = {"DMDR_CUDA_DEVICE", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                           "SLURM_LOCALID", "LOCAL_RANK"};
    for (const char *name : names) {
        const char *v = getenv(name);
        if (v && *v) return atoi(v) % count;
    }
    return 0;
}

// -> the backend's state for this process's device (its stream created), or NULL with why in
// reason
CudaContext *cuda_context_create(char *reason, size_t size) {
    int count = 0, major = 0, minor = 0, sm_count = 0;
    if (probe_failed(cudaGetDeviceCount(&count), "cudaGetDeviceCount", reason, size))
        return nullptr;
    if (count == 0) {
        snprintf(reason, size, "no CUDA device");
        return nullptr;
    }
    int device = chosen_device(count);
    if (probe_failed(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
                     "compute capability", reason, size) ||
        probe_failed(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device),
                     "compute capability", reason, size) ||
        probe_failed(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device),
                     "multiprocessor count", reason, size))
        return nullptr;
    // The build holds sm_90 code and compute_90 PTX, which newer devices compile at load.
    if (major < 9) {
        snprintf(reason, size,
                 "device %d has compute capability %d.%d; this build has kernels for 9.0 and newer",
                 device, major, minor);
        return nullptr;
    }
    cudaStream_t stream = nullptr;
    if (probe_failed(cudaSetDevice(device), "cudaSetDevice", reason, size) ||
        probe_failed(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
                     "cudaStreamCreate", reason, size))
        return nullptr;
    CudaContext *ctx = (CudaContext *)calloc(1, sizeof *ctx);
    DMDR_CHECK(ctx, "out of host memory");
    ctx->stream = stream;
    ctx->sm_count = sm_count;
    const char *sync = getenv("DMDR_CUDA_SYNC");
    ctx->sync_launches = sync && *sync && strcmp(sync, "0") != 0;
    ctx->tf32_wanted = -1;
    ctx->tf32_applied = -1;
    return ctx;
}

// nbytes -> the scratch block, at least that large
void *cuda_scratch(const Backend *be, size_t nbytes) {
    CudaContext *ctx = cuda_context(be);
    if (nbytes <= ctx->scratch_bytes) return ctx->scratch;
    if (ctx->scratch) {
        CUDA_CHECK(cudaStreamSynchronize(cuda_stream(be))); // queued kernels may still use it
        CUDA_CHECK(cudaFree(ctx->scratch));
    }
    size_t grown = 2 * ctx->scratch_bytes > nbytes ? 2 * ctx->scratch_bytes : nbytes;
    if (grown < ((size_t)1 << 20)) grown = (size_t)1 << 20;
    cudaError_t err = cudaMalloc(&ctx->scratch, grown);
    DMDR_CHECK(err == cudaSuccess, "cannot allocate %zu bytes of CUDA scratch memory: %s", grown,
               cudaGetErrorString(err));
    ctx->scratch_bytes = grown;
    return ctx->scratch;
}

// ---- the memory entries of the table ----------------------------------------------------

// nbytes -> device memory, or NULL when the device is out of memory
void *cuda_alloc(const Backend *be, size_t nbytes) {
    (void)be; // cudaMalloc needs no stream
    void *ptr = nullptr;
    // cudaMalloc(0) may return NULL; a real allocation keeps pointers unique
    cudaError_t err = cudaMalloc(&ptr, nbytes > 0 ? nbytes : 1);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError(); // out of memory is not sticky: the caller frees its cache and retries
        return nullptr;
    }
    CUDA_CHECK(err);
    return ptr;
}

// ptr (from cuda_alloc, or NULL) -> freed, once the stream has finished with it
void cuda_free(const Backend *be, void *ptr) {
    if (!ptr) return;
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream(be))); // queued kernels may still use it
    CUDA_CHECK(cudaFree(ptr));
}

// device src (nbytes) -> host_dst (nbytes)
void cuda_copy_to_host(const Backend *be, void *host_dst, const void *src, size_t nbytes) {
    if (nbytes == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(host_dst, src, nbytes, cudaMemcpyDeviceToHost, cuda_stream(be)));
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream(be)));
}

// host_src (nbytes) -> device dst (nbytes)
void cuda_copy_from_host(const Backend *be, void *dst, const void *host_src, size_t nbytes) {
    if (nbytes == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, host_src, nbytes, cudaMemcpyHostToDevice, cuda_stream(be)));
    // From pageable memory the copy may still be reading host_src after the call returns.
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream(be)));
}

// device src (nbytes) -> device dst (nbytes), queued on the stream
void cuda_copy(const Backend *be, void *dst, const void *src, size_t nbytes) {
    if (nbytes == 0 || dst == src) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, cuda_stream(be)));
}

// waits for everything queued
void cuda_synchronize(const Backend *be) {
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream(be)));
}
