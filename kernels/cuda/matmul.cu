// Batched GEMM through cuBLAS, fp32. TF32 tensor cores (products rounded to a 10-bit
// mantissa, fp32 accumulation; several times faster, about 1e-3 relative error) only when
// asked: DMDR_TF32=1 in the environment, or cuda_set_tf32(be, true). The mixed-precision GEMM
// converts its operands to packed bf16 copies in scratch memory (one kernel each) and runs
// cuBLAS's bf16 tensor-core GEMM with fp32 compute and an fp32 C.
//
// cuBLAS is column-major. A row-major (m, n) matrix is, read column-major, its (n, m)
// transpose, so row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the same
// call with A and B swapped and m and n exchanged; the transpose flags stay as they are.
#include <cublas_v2.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/bf16.h"
#include "kernels/cuda/common.cuh"

#define CUBLAS_CHECK(call)                                                          \
    do {                                                                            \
        cublasStatus_t status_ = (call);                                            \
        if (status_ != CUBLAS_STATUS_SUCCESS)                                       \
            DMDR_FATAL("cuBLAS error %s from %s", cublasGetStatusString(status_), #call); \
    } while (0)

// cuBLAS's recommended workspace on Hopper. Given once, so that no GEMM allocates.
#define WORKSPACE_BYTES ((size_t)32 << 20)

// enabled -> the math mode of every later GEMM of backend be
void cuda_set_tf32(const Backend *be, bool enabled) { cuda_context(be)->tf32_wanted = enabled; }

// The backend's handle, created at its first GEMM on its stream; the math mode as wanted.
static cublasHandle_t blas(const Backend *be) {
    CudaContext *ctx = cuda_context(be);
    if (!ctx->blas) {
        CUBLAS_CHECK(cublasCreate(&ctx->blas));
        CUBLAS_CHECK(cublasSetStream(ctx->blas, ctx->stream)); // resets the workspace: set it after
        void *workspace = nullptr;
        CUDA_CHECK(cudaMalloc(&workspace, WORKSPACE_BYTES));
        CUBLAS_CHECK(cublasSetWorkspace(ctx->blas, workspace, WORKSPACE_BYTES));
        if (ctx->tf32_wanted < 0) {
            const char *env = getenv("DMDR_TF32");
            ctx->tf32_wanted = env && *env && strcmp(env, "0") != 0;
        }
    }
    if (ctx->tf32_applied != ctx->tf32_wanted) {
        CUBLAS_CHECK(cublasSetMathMode(ctx->blas, ctx->tf32_wanted ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                   : CUBLAS_DEFAULT_MATH));
        ctx->tf32_applied = ctx->tf32_wanted;
    }
    return ctx->blas;
}

static void check_int(int64_t v, const char *what) {
    DMDR_CHECK(v >= 0 && v <= INT_MAX, "matmul %s %lld exceeds cuBLAS's int range", what,
               (long long)v);
}

// The checks and the fold every GEMM starts with: false when there is nothing to compute.
// A stack of A_i (m, k) back to back times one shared B is one GEMM with batch m rows.
static bool gemm_prepare(int64_t *batch, int64_t *m, int64_t n, int64_t k, bool trans_a,
                         int64_t stride_a, int64_t stride_b, int64_t stride_c) {
    DMDR_CHECK(*batch == 1 || stride_c != 0, "batched matmul writes every C_i to the same place");
    if (*batch <= 0 || *m == 0 || n == 0) return false;
    if (*batch > 1 && stride_b == 0 && !trans_a && stride_a == *m * k && stride_c == *m * n) {
        *m *= *batch;
        *batch = 1;
    }
    check_int(*m, "m");
    check_int(n, "n");
    check_int(k, "k");
    check_int(*batch, "batch");
    return true;
}

// c (batch, m, n) = alpha op(a_i) op(b_i) + beta c_i; a, b, c advance by their strides
void cuda_matmul(const Backend *be, float *c, const float *a, const float *b, int64_t batch,
                 int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float alpha,
                 float beta, int64_t stride_a, int64_t stride_b, int64_t stride_c) {
    if (!gemm_prepare(&batch, &m, n, k, trans_a, stride_a, stride_b, stride_c)) return;
    cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    // leading dimensions of the stored (row-major) matrices; cuBLAS wants at least 1
    int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
    int lda_ = (int)(lda > 0 ? lda : 1), ldb_ = (int)(ldb > 0 ? ldb : 1);
    cublasHandle_t h = blas(be);
    if (batch == 1) {
        CUBLAS_CHECK(cublasSgemm(h, op_b, op_a, (int)n, (int)m, (int)k, &alpha, b, ldb_, a, lda_,
                                 &beta, c, (int)n));
    } else if (stride_a != 0 && stride_b != 0) {
        CUBLAS_CHECK(cublasSgemmStridedBatched(h, op_b, op_a, (int)n, (int)m, (int)k, &alpha, b,
                                               ldb_, stride_b, a, lda_, stride_a, &beta, c,
                                               (int)n, stride_c, (int)batch));
    } else {
        // A shared operand that does not fold: one GEMM per item (queued, not waited for).
        for (int64_t i = 0; i < batch; i++)
            CUBLAS_CHECK(cublasSgemm(h, op_b, op_a, (int)n, (int)m, (int)k, &alpha,
                                     b + i * stride_b, ldb_, a + i * stride_a, lda_, &beta,
                                     c + i * stride_c, (int)n));
    }
}

// Every GPU this backend runs on (sm_90 and up) has bf16 tensor cores.
const char *cuda_bf16_missing(const Backend *be) {
    (void)be;
    return nullptr;
}

// x: items matrices of `size` elements, `stride` apart -> dst (items, size) packed bf16
static __global__ void pack_bf16_kernel(uint16_t *dst, const float *x, int64_t items,
                                        int64_t size, int64_t stride) {
    for (int64_t i = global_thread(); i < items * size; i += grid_threads())
        dst[i] = bf16_from_float(x[(i / size) * stride + i % size]);
}

static void pack_bf16(const Backend *be, uint16_t *dst, const float *x, int64_t items,
                      int64_t size, int64_t stride) {
    KERNEL_LAUNCH(be, grid_for(be, items * size, THREADS), THREADS, 0, pack_bf16_kernel)(
        dst, x, items, size, stride);
    CUDA_LAUNCH_CHECK(be);
}

// c (batch, m, n) = alpha bf16(op(a_i)) bf16(op(b_i)) + beta c_i, fp32 accumulation
void cuda_matmul_bf16(const Backend *be, float *c, const float *a, const float *b,
                      int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
                      bool trans_b, float alpha, float beta, int64_t stride_a, int64_t stride_b,
                      int64_t stride_c) {
    if (!gemm_prepare(&batch, &m, n, k, trans_a, stride_a, stride_b, stride_c)) return;
    // a shared operand (stride 0) is converted once and stays shared (a batch stride of 0)
    int64_t items_a = batch > 1 && stride_a == 0 ? 1 : batch;
    int64_t items_b = batch > 1 && stride_b == 0 ? 1 : batch;
    size_t bytes_a = scratch_round((size_t)(items_a * m * k) * sizeof(uint16_t));
    size_t bytes_b = scratch_round((size_t)(items_b * k * n) * sizeof(uint16_t));
    char *work = (char *)cuda_scratch(be, bytes_a + bytes_b);
    uint16_t *a16 = (uint16_t *)work, *b16 = (uint16_t *)(work + bytes_a);
    if (k > 0) {
        pack_bf16(be, a16, a, items_a, m * k, stride_a);
        pack_bf16(be, b16, b, items_b, k * n, stride_b);
    }
    cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
    int lda_ = (int)(lda > 0 ? lda : 1), ldb_ = (int)(ldb > 0 ? ldb : 1);
    long long packed_a = items_a == 1 ? 0 : m * k, packed_b = items_b == 1 ? 0 : k * n;
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        blas(be), op_b, op_a, (int)n, (int)m, (int)k, &alpha, b16, CUDA_R_16BF, ldb_, packed_b,
        a16, CUDA_R_16BF, lda_, packed_a, &beta, c, CUDA_R_32F, (int)n,
        batch == 1 ? m * n : stride_c, (int)batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
