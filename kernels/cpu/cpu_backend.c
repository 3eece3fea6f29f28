// The CPU backend: memory, fill, random numbers and strided copies, and the table that puts
// every CPU kernel behind the Backend interface.
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/layout.h"
#include "kernels/philox.h"

// Below this many bytes (or elements) the work runs on the calling thread.
#define PARALLEL_MIN_BYTES (1 << 20)
#define PARALLEL_MIN 32768

// ---- memory ------------------------------------------------------------------------------

// 64-byte aligned: a cache line, and one AVX-512 register.
void *cpu_alloc(const Backend *be, size_t nbytes) {
    (void)be;
    void *ptr = NULL;
    // posix_memalign may return NULL for 0 bytes; a real allocation keeps pointers unique
    if (posix_memalign(&ptr, 64, nbytes > 0 ? nbytes : 1) != 0) return NULL;
    return ptr;
}

void cpu_free(const Backend *be, void *ptr) {
    (void)be;
    free(ptr);
}

// dst (nbytes) = src (nbytes). Large copies are split into one contiguous piece per thread:
// each piece is still large enough for memcpy's streaming (cache-bypassing) stores.
void cpu_copy_bytes(const Backend *be, void *dst, const void *src, size_t nbytes) {
    (void)be;
    if (nbytes == 0 || dst == src) return;
    int pieces = nbytes > PARALLEL_MIN_BYTES ? omp_get_max_threads() : 1;
    size_t piece = (nbytes / (size_t)pieces + 63) / 64 * 64;
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (int i = 0; i < pieces; i++) {
        size_t begin = (size_t)i * piece;
        if (begin < nbytes) {
            size_t n = nbytes - begin < piece ? nbytes - begin : piece;
            memcpy((char *)dst + begin, (const char *)src + begin, n);
        }
    }
}

// Every CPU kernel has finished when it returns.
void cpu_synchronize(const Backend *be) { (void)be; }

// ---- fill and random numbers ---------------------------------------------------------------

// y (n) = value
void cpu_fill(const Backend *be, float *y, float value, int64_t n) {
    (void)be;
#pragma omp parallel for simd schedule(static) if (parallel : n > PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = value;
}

// Fills y (n) from Philox counter blocks offset + i / 4, word i % 4 of each (see backend.h).
// `transform` turns one block's four words into four values (kernels/philox.h). Each block
// is computed whole by one thread, so the result never depends on the thread count.
typedef void (*BlockTransform)(float out[4], PhiloxBlock block, float a, float b);

static void rng_fill(float *y, int64_t n, uint64_t seed, uint64_t offset, float a, float b,
                     BlockTransform transform) {
    int64_t blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t i = 0; i < blocks; i++) {
        float out[4];
        transform(out, philox4x32_10(seed, offset + (uint64_t)i), a, b);
        int64_t count = n - 4 * i < 4 ? n - 4 * i : 4;
        for (int64_t j = 0; j < count; j++) y[4 * i + j] = out[j];
    }
}

void cpu_rng_uniform(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                     float lo, float hi) {
    (void)be;
    rng_fill(y, n, seed, offset, lo, hi, philox_uniform4);
}

void cpu_rng_normal(const Backend *be, float *y, int64_t n, uint64_t seed, uint64_t offset,
                    float mean, float std) {
    (void)be;
    rng_fill(y, n, seed, offset, mean, std, philox_normal4);
}

// ---- strided copy ------------------------------------------------------------------------

// dst[i . dst_stride] = src[i . src_stride] for i < shape, in 32-bit words. Dims are merged
// first (kernels/layout.h); then a fully contiguous copy is one memcpy, and anything else is
// a loop over the last merged dim, parallel over the rest.
void cpu_copy_strided(const Backend *be, void *dst, const int64_t dst_stride[KERNEL_MAX_DIMS],
                      const void *src, const int64_t src_stride[KERNEL_MAX_DIMS],
                      const int64_t shape[KERNEL_MAX_DIMS]) {
    MergedDims m = merge_dims(shape, dst_stride, src_stride);
    int64_t n = merged_numel(&m);
    uint32_t *out = dst;
    const uint32_t *in = src;
    if (n == 0) return;
    if (merged_contiguous(&m)) {
        cpu_copy_bytes(be, out, in, (size_t)n * sizeof(uint32_t));
        return;
    }
    int last = m.ndim - 1;
    int64_t row_len = m.shape[last], dsl = m.stride[0][last], ssl = m.stride[1][last];
    MergedDims rows = merged_rows(&m);
    int64_t row_count = n / row_len;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t r = 0; r < row_count; r++) {
        int64_t out_off, in_off;
        merged_offsets(&rows, r, &out_off, &in_off);
        uint32_t *o = out + out_off;
        const uint32_t *s = in + in_off;
        if (dsl == 1 && ssl == 1) {
            memcpy(o, s, (size_t)row_len * sizeof(uint32_t));
        } else {
            for (int64_t i = 0; i < row_len; i++) o[i * dsl] = s[i * ssl];
        }
    }
}

// ---- the table -----------------------------------------------------------------------------

const Backend cpu_backend = {
    .name = "cpu",
    .state = NULL, // the CPU kernels keep no state

    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_to_host = cpu_copy_bytes,
    .copy_from_host = cpu_copy_bytes,
    .copy = cpu_copy_bytes,
    .synchronize = cpu_synchronize,

    .fill = cpu_fill,
    .rng_uniform = cpu_rng_uniform,
    .rng_normal = cpu_rng_normal,

    .copy_strided = cpu_copy_strided,

    .binary = cpu_binary,
    .binary_backward = cpu_binary_backward,
    .unary = cpu_unary,
    .unary_backward = cpu_unary_backward,
    .scalar = cpu_scalar,
    .scalar_backward = cpu_scalar_backward,

    .reduce = cpu_reduce,
    .reduce_max_backward = cpu_reduce_max_backward,
    .sum_squares = cpu_sum_squares,

    .matmul = cpu_matmul,
    .matmul_bf16 = cpu_matmul_bf16,
    .bf16_missing = cpu_bf16_missing,

    .softmax = cpu_softmax,
    .softmax_backward = cpu_softmax_backward,
    .cross_entropy = cpu_cross_entropy,
    .cross_entropy_backward = cpu_cross_entropy_backward,
    .squared_error = cpu_squared_error,
    .squared_error_backward = cpu_squared_error_backward,

    .layernorm = cpu_layernorm,
    .layernorm_backward = cpu_layernorm_backward,
    .groupnorm = cpu_groupnorm,
    .groupnorm_backward = cpu_groupnorm_backward,

    .im2col = cpu_im2col,
    .col2im = cpu_col2im,
    .upsample_nearest = cpu_upsample_nearest,
    .upsample_nearest_backward = cpu_upsample_nearest_backward,
    .avgpool = cpu_avgpool,
    .avgpool_backward = cpu_avgpool_backward,
    .embedding = cpu_embedding,
    .embedding_backward = cpu_embedding_backward,

    .attention = cpu_attention,
    .attention_backward = cpu_attention_backward,

    .adamw = cpu_adamw,
};
