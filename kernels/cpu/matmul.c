// Batched GEMM through OpenBLAS cblas_sgemm (row-major).
//
// Three ways to run a batch, chosen from the shapes:
// - batch-parallel: one whole GEMM per OpenMP thread at a time (OpenBLAS, built with OpenMP,
//   runs single-threaded inside our region), for GEMMs too small for OpenBLAS to split well;
// - fold: a batched A (batch*m, k) stacked contiguously times one shared B is a single GEMM
//   with batch*m rows; it wins over batch-parallel for short matrices;
// - otherwise a plain loop over the GEMMs.
// A single GEMM (a fold, or one of the loop) is split into one block of C per thread, each a
// single-threaded cblas_sgemm, rather than threaded by OpenBLAS: see sgemm_split.
// The figures below are GFLOP/s measured on 2 cores (AMD EPYC, OpenBLAS 0.3.21 using its
// Haswell kernels: about 120 GFLOP/s a core).
#include <cblas.h>
#include <limits.h>
#include <omp.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/onednn.h"

// Below this many flops per matrix (2 m n k) a batch of GEMMs runs one matrix per thread.
// Batch-parallel is 1.3-6x faster for 64^3..320^3 and attention-sized 196x196x64 products
// (OpenBLAS threads a small GEMM poorly), even when the batch does not split evenly
// (3 x 256^3: 190 against 143). From about 2*384^3 an uneven split loses: 3 x 512^3 runs
// 190 against 215 for a loop of threaded GEMMs.
#define BATCH_PARALLEL_MAX_FLOPS 1e8

// A foldable batch of matrices of at most this many rows is folded even when it could run
// batch-parallel: 64 x (m x 256) @ (256 x 256)^T folded / batch-parallel is 243 / 115 at
// m = 8, 250 / 195 at m = 32, 248 / 225 at m = 64, but 207 / 221 at m = 96, and at m = 196
// batch-parallel stays 3-15% ahead (231 / 204 with k = 1024), free of OpenBLAS's barriers.
#define FOLD_MAX_ROWS 64

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

// Below this many flops a single GEMM is left to OpenBLAS (which runs the smallest ones on one
// thread): waking the other threads would cost more than the split saves.
#define SPLIT_MIN_FLOPS 4e6

// The same product on a block of C: explicit leading dimensions
static void sgemm_block(float *c, int64_t ldc, const float *a, int64_t lda, const float *b,
                        int64_t ldb, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                        float alpha, float beta) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda,
                b, (int)ldb, beta, c, (int)ldc);
}

// c (m, n) = alpha op(a) op(b) + beta c, C cut along its longer side into one block per
// thread, each a single-threaded sgemm that packs the shared operand itself. OpenBLAS's own
// threading shares the packed panels between threads and waits on the slowest at every one.
// Alone on a quiet machine both run the small DiT's GEMMs (3136 x 192..768 x 192..768, and the
// weight gradients over k = 3136) at 90-99% of the 2048^3 ceiling on 2 cores, but in the whole
// training step the split is 3% faster (219-220 -> 227 images/s), and with other work on the
// machine, where a descheduled thread stalls only its own block, 25% (46-48 -> 58-61).
static void sgemm_split(float *c, const float *a, const float *b, int64_t m, int64_t n,
                        int64_t k, bool trans_a, bool trans_b, float alpha, float beta) {
    int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n, ldc = n;
    bool by_rows = m >= n;
    int64_t len = by_rows ? m : n;
    #pragma omp parallel
    {
        // blocks in multiples of 16, the width of OpenBLAS's register tiles
        int64_t parts = omp_get_num_threads(), p = omp_get_thread_num();
        int64_t step = ((len + parts - 1) / parts + 15) / 16 * 16;
        int64_t begin = p * step < len ? p * step : len;
        int64_t end = begin + step < len ? begin + step : len;
        if (end > begin && by_rows)
            sgemm_block(c + begin * ldc, ldc, trans_a ? a + begin : a + begin * lda, lda, b,
                        ldb, end - begin, n, k, trans_a, trans_b, alpha, beta);
        else if (end > begin)
            sgemm_block(c + begin, ldc, a, lda, trans_b ? b + begin * ldb : b + begin, ldb, m,
                        end - begin, k, trans_a, trans_b, alpha, beta);
    }
}

// One GEMM on every thread: split when it is large enough and we are not already inside a
// parallel region (where OpenBLAS runs on the calling thread alone).
static void sgemm_threaded(float *c, const float *a, const float *b, int64_t m, int64_t n,
                           int64_t k, bool trans_a, bool trans_b, float alpha, float beta) {
    bool split = omp_get_max_threads() > 1 && !omp_in_parallel() && m > 0 && n > 0 && k > 0 &&
                 2.0 * (double)m * (double)n * (double)k >= SPLIT_MIN_FLOPS;
    if (split) sgemm_split(c, a, b, m, n, k, trans_a, trans_b, alpha, beta);
    else sgemm(c, a, b, m, n, k, trans_a, trans_b, alpha, beta);
}

// Whether oneDNN's fp32 GEMM is faster than OpenBLAS's at this shape. bench/onednn_routes.sh
// timed both at every GEMM of the DiT (small at batch 64 and 32, base at 128; 2 threads, an
// Intel Xeon with AVX-512, a noisy shared machine: single figures move by 30%). oneDNN over
// OpenBLAS, best of two rounds each:
//   weight gradients dW = dy^T x (trans_a): 1.08 1.41 1.45 1.31 (small, 32), 1.20 1.04 1.10
//     0.78 (small, 64), 1.26 1.11 1.01 0.94 (base): oneDNN, median 1.1x;
//   a few rows (adaLN's (batch, hidden) x (6 hidden, hidden)^T): 1.70, 1.34, 1.14: oneDNN;
//   forward x W^T (trans_b) and dx = dy W: 0.49-1.92, median 0.95 for x W^T: OpenBLAS.
static bool onednn_wins(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
                        bool trans_b) {
    (void)n, (void)k;
    return batch == 1 && ((trans_a && !trans_b) || m <= 128);
}

// c (batch, m, n) = alpha op(a_i) op(b_i) + beta c_i; a, b, c advance by their strides.
void cpu_matmul(const Backend *be, float *c, const float *a, const float *b, int64_t batch,
                int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float alpha,
                float beta, int64_t stride_a, int64_t stride_b, int64_t stride_c) {
    (void)be;
    DMDR_CHECK(batch == 1 || stride_c != 0, "batched matmul writes every C_i to the same place");
    if (batch <= 0 || m == 0 || n == 0) return;
    if ((onednn_fp32_everywhere() || onednn_wins(batch, m, n, k, trans_a, trans_b)) &&
        !omp_in_parallel() &&
        onednn_matmul(ONEDNN_F32, c, a, b, batch, m, n, k, trans_a, trans_b, alpha, beta,
                      stride_a, stride_b, stride_c))
        return;

    // A batch that splits evenly over the threads gains from batch-parallel at every size
    // measured (2 x 512^3: 255 against 211, 2 x 1024^3: 249 against 237, 2 x 2048^3: even).
    double flops = 2.0 * (double)m * (double)n * (double)k;
    bool batch_parallel = batch > 1 && (flops < BATCH_PARALLEL_MAX_FLOPS ||
                                        batch % omp_get_max_threads() == 0);

    // Rows of A stacked over the batch are rows of one taller A when A_i is untransposed
    // and the matrices sit back to back, and C_i likewise.
    bool foldable =
        batch > 1 && stride_b == 0 && !trans_a && stride_a == m * k && stride_c == m * n;
    if (foldable && (m <= FOLD_MAX_ROWS || !batch_parallel)) {
        m *= batch;
        batch = 1;
        batch_parallel = false;
    }
    DMDR_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX,
               "matmul (%lld, %lld, %lld) exceeds the BLAS int range", (long long)m,
               (long long)n, (long long)k);

    if (!batch_parallel) {
        for (int64_t i = 0; i < batch; i++)
            sgemm_threaded(c + i * stride_c, a + i * stride_a, b + i * stride_b, m, n, k,
                           trans_a, trans_b, alpha, beta);
        return;
    }
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; i++)
        sgemm(c + i * stride_c, a + i * stride_a, b + i * stride_b, m, n, k, trans_a, trans_b,
              alpha, beta);
}
