// Batched GEMM through OpenBLAS cblas_sgemm (row-major).
//
// Three ways to run a batch, chosen from the shapes:
// - fold: a batched A (batch*m, k) stacked contiguously times one shared B is a single GEMM
//   with batch*m rows; one big call beats many small ones (better packing, one thread fork);
// - batch-parallel: many small GEMMs, each too small for OpenBLAS to split well, one per
//   OpenMP thread (OpenBLAS, built with OpenMP, runs single-threaded inside our region);
// - otherwise a plain loop, each GEMM threaded by OpenBLAS itself.
#include <cblas.h>
#include <limits.h>
#include <omp.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_kernels.h"

// Below this many flops per matrix (2 m n k) a batch of GEMMs runs one matrix per thread.
// Measured on 2 cores (AMD EPYC, OpenBLAS 0.3.21 Haswell kernels, ~125 GFLOP/s a core):
// batch-parallel is 1.3-6x faster for 64^3..320^3 and attention-sized 196x196x64 products
// (OpenBLAS threads a small GEMM poorly), even when the batch does not split evenly
// (3 x 256^3: 1.33x). From about 2*384^3 an uneven split loses: 3 x 512^3 runs 0.8-0.9x.
#define BATCH_PARALLEL_MAX_FLOPS 1e8

// c (m, n) = alpha op(a) op(b) + beta c, with op(a) (m, k) and op(b) (k, n)
static void sgemm(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                  bool trans_a, bool trans_b, float alpha, float beta) {
    // BLAS rejects a leading dimension of 0 even when the matrix is empty.
    int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n, ldc = n;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a,
                (int)(lda > 0 ? lda : 1), b, (int)(ldb > 0 ? ldb : 1), beta, c,
                (int)(ldc > 0 ? ldc : 1));
}

// c (batch, m, n) = alpha op(a_i) op(b_i) + beta c_i; a, b, c advance by their strides.
void cpu_matmul(float *c, const float *a, const float *b, int64_t batch, int64_t m, int64_t n,
                int64_t k, bool trans_a, bool trans_b, float alpha, float beta, int64_t stride_a,
                int64_t stride_b, int64_t stride_c) {
    DMDR_CHECK(batch == 1 || stride_c != 0, "batched matmul writes every C_i to the same place");
    if (batch <= 0 || m == 0 || n == 0) return;

    // Rows of A stacked over the batch are rows of one taller A when A_i is untransposed
    // and the matrices sit back to back, and C_i likewise.
    if (batch > 1 && stride_b == 0 && !trans_a && stride_a == m * k && stride_c == m * n) {
        m *= batch;
        batch = 1;
    }
    DMDR_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX,
               "matmul (%lld, %lld, %lld) exceeds the BLAS int range", (long long)m,
               (long long)n, (long long)k);

    // A batch that splits evenly over the threads gains from batch-parallel at every size
    // measured (2 x 512^3: 1.2x, 2 x 1024^3: 1.05x, 2 x 2048^3: even).
    double flops = 2.0 * (double)m * (double)n * (double)k;
    int threads = omp_get_max_threads();
    bool batch_parallel =
        batch > 1 && (flops < BATCH_PARALLEL_MAX_FLOPS || batch % threads == 0);
    #pragma omp parallel for schedule(static) if(batch_parallel)
    for (int64_t i = 0; i < batch; i++)
        sgemm(c + i * stride_c, a + i * stride_a, b + i * stride_b, m, n, k, trans_a, trans_b,
              alpha, beta);
}
