// The strided copy behind permute, transpose, expand, concat and slicing: 32-bit words
// moved from one 4-d strided view to another. Dims are merged on the host first
// (kernels/layout.h), so a copy that is contiguous after all is one cudaMemcpyAsync, and any other
// pays one division per merged dim and element.
#include "kernels/cuda/common.cuh"

template <typename I>
__global__ void copy_strided_kernel(uint32_t *dst, const uint32_t *src, MergedDims m, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        I out, in;
        merged_offsets_of(m, (I)i, &out, &in);
        dst[out] = src[in];
    }
}

// dst[i . dst_stride] = src[i . src_stride] for every index i < shape
void cuda_copy_strided(const Backend *be, void *dst, const int64_t dst_stride[KERNEL_MAX_DIMS],
                       const void *src, const int64_t src_stride[KERNEL_MAX_DIMS],
                       const int64_t shape[KERNEL_MAX_DIMS]) {
    MergedDims m = merge_dims(shape, dst_stride, src_stride);
    int64_t n = merged_numel(&m);
    if (n == 0) return;
    if (merged_contiguous(&m)) {
        cuda_copy(be, dst, src, (size_t)n * sizeof(uint32_t));
        return;
    }
    uint32_t *out = (uint32_t *)dst;
    const uint32_t *in = (const uint32_t *)src;
    unsigned grid = grid_for(be, n, THREADS);
    if (merged_fits_32(&m, n))
        KERNEL_LAUNCH(be, grid, THREADS, 0, copy_strided_kernel<uint32_t>)(out, in, m, n);
    else
        KERNEL_LAUNCH(be, grid, THREADS, 0, copy_strided_kernel<int64_t>)(out, in, m, n);
    CUDA_LAUNCH_CHECK(be);
}
