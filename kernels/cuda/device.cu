// The CUDA device: probing for it, the stream every kernel runs on, scratch memory, and
// the backend's memory entries (allocation, copies, synchronisation).
//
// Device memory comes from cudaMalloc; the storage cache above (tensor/storage.c) keeps
// freed blocks for reuse, so a training step whose shapes repeat allocates nothing after
// its first iteration. Copies to and from the host wait for the stream: the host buffer
// may be reused (or read) as soon as they return.
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/common.cuh"

typedef struct {
    bool probed, usable;
    char reason[256]; // why not usable
    cudaStream_t stream;
    int sm_count;
    bool sync_launches;
    void *scratch;
    size_t scratch_bytes;
} DeviceState;

static DeviceState dev;

// The first CUDA call of the process. Failing calls here mean "no usable device", not a
// bug, so they are reported through the reason instead of stopping the program.
static bool probe_failed(cudaError_t err, const char *what) {
    if (err == cudaSuccess) return false;
    snprintf(dev.reason, sizeof dev.reason, "%s: %s (%s)", what, cudaGetErrorString(err),
             cudaGetErrorName(err));
    cudaGetLastError(); // not sticky: clear it so that later checks do not report it
    return true;
}

static void probe(void) {
    dev.probed = true;
    int count = 0, major = 0, minor = 0;
    if (probe_failed(cudaGetDeviceCount(&count), "cudaGetDeviceCount")) return;
    if (count == 0) {
        snprintf(dev.reason, sizeof dev.reason, "no CUDA device");
        return;
    }
    if (probe_failed(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0),
                     "compute capability") ||
        probe_failed(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0),
                     "compute capability") ||
        probe_failed(cudaDeviceGetAttribute(&dev.sm_count, cudaDevAttrMultiProcessorCount, 0),
                     "multiprocessor count"))
        return;
    // The build holds sm_90 code and compute_90 PTX, which newer devices compile at load.
    if (major < 9) {
        snprintf(dev.reason, sizeof dev.reason,
                 "device 0 has compute capability %d.%d; this build has kernels for 9.0 and newer",
                 major, minor);
        return;
    }
    if (probe_failed(cudaSetDevice(0), "cudaSetDevice") ||
        probe_failed(cudaStreamCreateWithFlags(&dev.stream, cudaStreamNonBlocking),
                     "cudaStreamCreate"))
        return;
    const char *sync = getenv("DMDR_CUDA_SYNC");
    dev.sync_launches = sync && *sync && strcmp(sync, "0") != 0;
    dev.usable = true;
}

// -> whether device 0 is usable (probed once)
bool cuda_available(void) {
    if (!dev.probed) probe();
    return dev.usable;
}

// -> why not, or "" when it is
const char *cuda_unavailable_reason(void) {
    if (!dev.probed) probe();
    return dev.usable ? "" : dev.reason;
}

cudaStream_t cuda_stream(void) { return dev.stream; }
bool cuda_sync_launches(void) { return dev.sync_launches; }
int cuda_sm_count(void) { return dev.sm_count; }

// nbytes -> the scratch block, at least that large
void *cuda_scratch(size_t nbytes) {
    if (nbytes <= dev.scratch_bytes) return dev.scratch;
    if (dev.scratch) {
        CUDA_CHECK(cudaStreamSynchronize(dev.stream)); // queued kernels may still use it
        CUDA_CHECK(cudaFree(dev.scratch));
    }
    size_t grown = 2 * dev.scratch_bytes > nbytes ? 2 * dev.scratch_bytes : nbytes;
    if (grown < ((size_t)1 << 20)) grown = (size_t)1 << 20;
    cudaError_t err = cudaMalloc(&dev.scratch, grown);
    DMDR_CHECK(err == cudaSuccess, "cannot allocate %zu bytes of CUDA scratch memory: %s", grown,
               cudaGetErrorString(err));
    dev.scratch_bytes = grown;
    return dev.scratch;
}

// ---- the memory entries of the table ----------------------------------------------------

// nbytes -> device memory, or NULL when the device is out of memory
void *cuda_alloc(size_t nbytes) {
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
void cuda_free(void *ptr) {
    if (!ptr) return;
    CUDA_CHECK(cudaStreamSynchronize(dev.stream)); // queued kernels may still use it
    CUDA_CHECK(cudaFree(ptr));
}

// device src (nbytes) -> host_dst (nbytes)
void cuda_copy_to_host(void *host_dst, const void *src, size_t nbytes) {
    if (nbytes == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(host_dst, src, nbytes, cudaMemcpyDeviceToHost, dev.stream));
    CUDA_CHECK(cudaStreamSynchronize(dev.stream));
}

// host_src (nbytes) -> device dst (nbytes)
void cuda_copy_from_host(void *dst, const void *host_src, size_t nbytes) {
    if (nbytes == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, host_src, nbytes, cudaMemcpyHostToDevice, dev.stream));
    // From pageable memory the copy may still be reading host_src after the call returns.
    CUDA_CHECK(cudaStreamSynchronize(dev.stream));
}

// device src (nbytes) -> device dst (nbytes), queued on the stream
void cuda_copy(void *dst, const void *src, size_t nbytes) {
    if (nbytes == 0 || dst == src) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, dev.stream));
}

// waits for everything queued
void cuda_synchronize(void) { CUDA_CHECK(cudaStreamSynchronize(dev.stream)); }
