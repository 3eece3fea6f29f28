// The CUDA backend's table: every entry of kernels/backend.h, implemented in the .cu files
// of this directory (cuda_kernels.h lists them). Its state, the device's CudaContext, is
// created the first time the backend is asked for; backend_get returns the table only when
// that found a usable device.
#include "dmdr_config.h"
#include "kernels/cuda/cuda_kernels.h"

static Backend table = {
    .name = "cuda",
    .state = NULL, // set by cuda_backend()

    .alloc = cuda_alloc,
    .free = cuda_free,
    .copy_to_host = cuda_copy_to_host,
    .copy_from_host = cuda_copy_from_host,
    .copy = cuda_copy,
    .synchronize = cuda_synchronize,

    .fill = cuda_fill,
    .rng_uniform = cuda_rng_uniform,
    .rng_normal = cuda_rng_normal,

    .copy_strided = cuda_copy_strided,

    .binary = cuda_binary,
    .binary_backward = cuda_binary_backward,
    .unary = cuda_unary,
    .unary_backward = cuda_unary_backward,
    .scalar = cuda_scalar,
    .scalar_backward = cuda_scalar_backward,

    .reduce = cuda_reduce,
    .reduce_max_backward = cuda_reduce_max_backward,
    .sum_squares = cuda_sum_squares,

    .matmul = cuda_matmul,
    .matmul_bf16 = cuda_matmul_bf16,
    .bf16_missing = cuda_bf16_missing,

    .softmax = cuda_softmax,
    .softmax_backward = cuda_softmax_backward,
    .cross_entropy = cuda_cross_entropy,
    .cross_entropy_backward = cuda_cross_entropy_backward,
    .squared_error = cuda_squared_error,
    .squared_error_backward = cuda_squared_error_backward,

    .layernorm = cuda_layernorm,
    .layernorm_backward = cuda_layernorm_backward,
    .groupnorm = cuda_groupnorm,
    .groupnorm_backward = cuda_groupnorm_backward,

    .im2col = cuda_im2col,
    .col2im = cuda_col2im,
    .upsample_nearest = cuda_upsample_nearest,
    .upsample_nearest_backward = cuda_upsample_nearest_backward,
    .avgpool = cuda_avgpool,
    .avgpool_backward = cuda_avgpool_backward,
    .embedding = cuda_embedding,
    .embedding_backward = cuda_embedding_backward,

    .attention = cuda_attention,
    .attention_backward = cuda_attention_backward,

    .adamw = cuda_adamw,

#ifdef DMDR_HAVE_NCCL
    .collective_id = cuda_collective_id,
    .collective_init = cuda_collective_init,
    .allreduce_sum = cuda_allreduce_sum,
#endif
};

static bool probed;
static char reason[256]; // why there is no usable device

const Backend *cuda_backend(void) {
    if (!probed) {
        probed = true;
        table.state = cuda_context_create(reason, sizeof reason);
    }
    return table.state ? &table : NULL;
}

bool cuda_available(void) { return cuda_backend() != NULL; }

const char *cuda_unavailable_reason(void) { return cuda_backend() ? "" : reason; }
