// Scaled dot-product attention (no mask), forward and backward, one (batch, head) pair per
// OpenMP thread at a time.
//
// For each pair, S = scale q k^T (t, t) is one GEMM into per-thread scratch, a row softmax
// turns it into P, and out = P v is a second GEMM. The GEMMs read q, k, v in place with
// leading dimension ld (OpenBLAS packs its operands anyway, so gathering a head first only
// adds a copy) and write out, dq, dk, dv in place the same way: a GEMM touches only its own
// (t, d) block, so the three thirds of a packed dqkv are never written by another head.
// cblas_sgemm called inside our parallel region runs on the calling thread.
//
// The backward keeps no t x t matrix from the forward: it recomputes P = exp(S - lse) from
// q, k and the saved log-sum-exp, as FlashAttention does.
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/fastmath.h"

// Where one (batch, head) pair's matrices start, and the strides between their rows.
typedef struct {
    int64_t t, d;
    int64_t ld;     // between tokens of q, k, v (and dq, dk, dv)
    int64_t ld_out; // between tokens of out and dout: heads * d
    int64_t qkv;    // offset of this pair's first element in q, k, v
    int64_t o;      // ... in out and dout
    int64_t lse;    // ... in lse
} HeadView;

static HeadView head_view(int64_t pair, int64_t ld, int64_t t, int64_t heads, int64_t d) {
    int64_t batch = pair / heads, head = pair % heads;
    return (HeadView){
        .t = t, .d = d, .ld = ld, .ld_out = heads * d,
        .qkv = batch * t * ld + head * d,
        .o = batch * t * heads * d + head * d,
        .lse = pair * t,
    };
}

// c (m, n) = alpha op(a) op(b), row-major with explicit leading dimensions
static void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                 int64_t ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda,
                b, (int)ldb, 0.0f, c, (int)ldc);
}

// q, k (t, d) at stride ld -> s (t, t) = scale q k^T
static void head_scores(float *s, const float *q, const float *k, const HeadView *h,
                        float scale) {
    gemm(false, true, h->t, h->t, h->d, scale, q + h->qkv, h->ld, k + h->qkv, h->ld, s, h->t);
}

// One thread's t x t scratch matrices for the duration of a call.
static float *scratch_new(int64_t t, int count) {
    float *s = malloc((size_t)count * (size_t)(t * t) * sizeof(float));
    DMDR_CHECK(s != NULL, "out of memory for %d attention score matrices of %lld^2", count,
               (long long)t);
    return s;
}

// Below this much work (pairs * t * t * d multiply-adds) a parallel region costs more than
// it saves; gradient checks call attention hundreds of times on tiny shapes.
#define ATTENTION_PARALLEL_MIN 32768

static bool attention_parallel(int64_t pairs, int64_t t, int64_t d) {
    return pairs > 1 && pairs * t * t * d >= ATTENTION_PARALLEL_MIN;
}

static void check_blas_range(int64_t ld, int64_t ld_out, int64_t t) {
    DMDR_CHECK(ld <= INT_MAX && ld_out <= INT_MAX && t * t <= INT_MAX,
               "attention (t %lld, ld %lld) exceeds the BLAS int range", (long long)t,
               (long long)ld);
}

// q, k, v (b, t, heads, d) at stride ld -> out (b, t, heads, d), lse (b, heads, t)
void cpu_attention(const Backend *be, float *out, float *lse, const float *q, const float *k,
                   const float *v, int64_t ld, int64_t b, int64_t t, int64_t heads, int64_t d,
                   float scale) {
    (void)be;
    int64_t pairs = b * heads;
    if (pairs == 0 || t == 0) return;
    check_blas_range(ld, heads * d, t);
    #pragma omp parallel if(attention_parallel(pairs, t, d))
    {
        float *p = scratch_new(t, 1);
        #pragma omp for schedule(static)
        for (int64_t pair = 0; pair < pairs; pair++) {
            HeadView h = head_view(pair, ld, t, heads, d);
            head_scores(p, q, k, &h, scale);
            for (int64_t i = 0; i < t; i++) {
                float *row = p + i * t;
                float max = -INFINITY;
                #pragma omp simd reduction(max : max)
                for (int64_t j = 0; j < t; j++) max = row[j] > max ? row[j] : max;
                float sum = 0.0f;
                #pragma omp simd reduction(+ : sum)
                for (int64_t j = 0; j < t; j++) {
                    row[j] = fast_expf_ftz(row[j] - max); // subnormal terms cannot move the sum
                    sum += row[j];
                }
                lse[h.lse + i] = max + logf(sum);
                float inv = 1.0f / sum;
                #pragma omp simd
                for (int64_t j = 0; j < t; j++) row[j] *= inv;
            }
            gemm(false, false, t, d, t, 1.0f, p, t, v + h.qkv, ld, out + h.o, h.ld_out);
        }
        free(p);
    }
}

// dout, out (b, t, heads, d), lse (b, heads, t), q, k, v (b, t, heads, d) at stride ld
// -> dq, dk, dv (b, t, heads, d) at stride ld
void cpu_attention_backward(const Backend *be, float *dq, float *dk, float *dv, const float *dout,
                            const float *out, const float *lse, const float *q, const float *k,
                            const float *v, int64_t ld, int64_t b, int64_t t, int64_t heads,
                            int64_t d, float scale) {
    (void)be;
    int64_t pairs = b * heads;
    if (pairs == 0 || t == 0) return;
    check_blas_range(ld, heads * d, t);
    #pragma omp parallel if(attention_parallel(pairs, t, d))
    {
        float *p = scratch_new(t, 2), *dp = p + t * t;
        #pragma omp for schedule(static)
        for (int64_t pair = 0; pair < pairs; pair++) {
            HeadView h = head_view(pair, ld, t, heads, d);
            const float *dout_h = dout + h.o, *out_h = out + h.o;
            head_scores(p, q, k, &h, scale);
            for (int64_t i = 0; i < t; i++) {
                float *row = p + i * t, row_lse = lse[h.lse + i];
                #pragma omp simd
                for (int64_t j = 0; j < t; j++) row[j] = fast_expf_ftz(row[j] - row_lse);
            }
            // dv = P^T dout; dP = dout v^T
            gemm(true, false, t, d, t, 1.0f, p, t, dout_h, h.ld_out, dv + h.qkv, ld);
            gemm(false, true, t, t, d, 1.0f, dout_h, h.ld_out, v + h.qkv, ld, dp, t);
            // dS = P (dP - D), D_i = sum_j dout_ij out_ij (= sum_j P_ij dP_ij), into dp
            for (int64_t i = 0; i < t; i++) {
                const float *dout_i = dout_h + i * h.ld_out, *out_i = out_h + i * h.ld_out;
                float delta = 0.0f;
                #pragma omp simd reduction(+ : delta)
                for (int64_t j = 0; j < d; j++) delta += dout_i[j] * out_i[j];
                float *dp_i = dp + i * t;
                const float *p_i = p + i * t;
                #pragma omp simd
                for (int64_t j = 0; j < t; j++) dp_i[j] = p_i[j] * (dp_i[j] - delta);
            }
            // dq = scale dS k; dk = scale dS^T q
            gemm(false, false, t, d, t, scale, dp, t, k + h.qkv, ld, dq + h.qkv, ld);
            gemm(true, false, t, d, t, scale, dp, t, q + h.qkv, ld, dk + h.qkv, ld);
        }
        free(p);
    }
}
