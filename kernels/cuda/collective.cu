// Collectives across ranks on device memory, through NCCL (built when the meson feature `nccl`
// finds it): the gradients of a data-parallel step are summed GPU to GPU (NVLink, PCIe or the
// network NCCL picks) on the backend's stream, never staged through the host. The ranks join
// once (tensor/dist.c: rank 0's id broadcast over MPI, then ncclCommInitRank on each).
#include <nccl.h>

#include "kernels/cuda/common.cuh"

static bool nccl_failed(ncclResult_t r, const char *what, char *reason, size_t size) {
    if (r == ncclSuccess) return false;
    snprintf(reason, size, "%s: %s", what, ncclGetErrorString(r));
    return true;
}

extern "C" int cuda_collective_id(const Backend *be, void *id, char *reason, size_t size) {
    (void)be;
    static_assert(sizeof(ncclUniqueId) == BACKEND_COLLECTIVE_ID_BYTES, "the id's size");
    return nccl_failed(ncclGetUniqueId((ncclUniqueId *)id), "ncclGetUniqueId", reason, size)
               ? -1
               : 0;
}

extern "C" int cuda_collective_init(const Backend *be, const void *id, int rank, int size,
                                    char *reason, size_t reason_size) {
    CudaContext *ctx = cuda_context(be);
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    ncclComm_t comm = nullptr;
    if (nccl_failed(ncclCommInitRank(&comm, size, uid, rank), "ncclCommInitRank", reason,
                    reason_size))
        return -1;
    ctx->comm = comm;
    return 0;
}

// x (n) summed over the ranks in place; NCCL counts are size_t, so one call serves any n
extern "C" void cuda_allreduce_sum(const Backend *be, float *x, int64_t n) {
    CudaContext *ctx = cuda_context(be);
    DMDR_CHECK(ctx->comm != nullptr, "cuda_allreduce_sum before cuda_collective_init");
    ncclResult_t r = ncclAllReduce(x, x, (size_t)n, ncclFloat, ncclSum,
                                   (ncclComm_t)ctx->comm, cuda_stream(be));
    DMDR_CHECK(r == ncclSuccess, "ncclAllReduce of %lld values: %s", (long long)n,
               ncclGetErrorString(r));
    if (ctx->sync_launches) CUDA_CHECK(cudaStreamSynchronize(cuda_stream(be)));
}
