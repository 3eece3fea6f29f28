// Fill and random numbers. The generators compute exactly what the CPU backend computes:
// one thread per Philox counter block, the same words to the same elements, through the same
// mapping functions (kernels/philox.h). Uniform numbers are bit for bit those of the CPU;
// normal numbers differ only where the device's logf/cosf/sinf round differently from
// glibc's (an ulp or two).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/map.cuh"
#include "kernels/philox.h"

struct Fill {
    float value;
    __device__ void operator()(const float *, float *y) const { y[0] = value; }
};

// y (n) = value
void cuda_fill(const Backend *be, float *y, float value, int64_t n) {
    MapArgs<0, 1> args = {{nullptr}, {y}};
    launch_map(be, args, Fill{value}, n);
}

// The mappings of kernels/philox.h, the CPU backend's own.
struct UniformBlock {
    __device__ void operator()(float out[4], PhiloxBlock block, float lo, float hi) const {
        philox_uniform4(out, block, lo, hi);
    }
};

struct NormalBlock {
    __device__ void operator()(float out[4], PhiloxBlock block, float mean, float std) const {
        philox_normal4(out, block, mean, std);
    }
};

// y (n): element i from counter block offset + i / 4, word i % 4
template <typename Transform>
__global__ void rng_kernel(float *y, int64_t n, uint64_t seed, uint64_t offset, float a, float b,
                           bool aligned, Transform transform) {
    int64_t blocks = (n + 3) / 4;
    for (int64_t i = global_thread(); i < blocks; i += grid_threads()) {
        float out[4];
        transform(out, philox4x32_10(seed, offset + (uint64_t)i), a, b);
        int64_t count = n - 4 * i < 4 ? n - 4 * i : 4;
        if (count == 4 && aligned) {
            reinterpret_cast<float4 *>(y)[i] = make_float4(out[0], out[1], out[2], out[3]);
        } else {
            for (int64_t j = 0; j < count; j++) y[4 * i + j] = out[j];
        }
    }
}

template <typename Transform>
static void rng_fill(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                     float a, float b) {
    if (n <= 0) return;
    bool aligned = ((uintptr_t)y & 15u) == 0;
    KERNEL_LAUNCH(be, grid_for(be, (n + 3) / 4, THREADS), THREADS, 0, rng_kernel<Transform>)(
        y, n, seed, offset, a, b, aligned, Transform());
    CUDA_LAUNCH_CHECK(be);
}

// y (n) uniform in (lo, hi], from Philox blocks offset.. of key seed
void cuda_rng_uniform(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                      float lo, float hi) {
    rng_fill<UniformBlock>(be, y, n, seed, offset, lo, hi);
}

// y (n) ~ N(mean, std^2), from the same blocks as cuda_rng_uniform
void cuda_rng_normal(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                     float mean, float std) {
    rng_fill<NormalBlock>(be, y, n, seed, offset, mean, std);
}
