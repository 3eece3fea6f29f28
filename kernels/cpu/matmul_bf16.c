// The mixed-precision GEMM: operands rounded to bf16, products accumulated in fp32, C fp32.
//
// The operands are converted into packed bf16 copies (each A_i, B_i back to back, a shared
// operand once) and multiplied by oneDNN, which runs bf16 dot products (AVX512-BF16's
// vdpbf16ps, or AMX tiles) at about twice the fp32 rate. Where oneDNN is missing, or the CPU
// has no bf16 instructions, the same numbers come from the fp32 GEMM on operands rounded to
// bf16 (a product of two bf16 values is exact in fp32), at the fp32 speed: correct, not fast,
// and the run says so when it resolves its precision (backend bf16_missing).
#include <stdbool.h>
#include <stdlib.h>

#include "kernels/bf16.h"
#include "kernels/check.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/onednn.h"

// Converting is memory-bound (6 bytes an element); below this many elements one thread does it.
#define CONVERT_PARALLEL_MIN 65536

// Conversion buffers, grown as needed and kept, so the steady state allocates nothing: one for
// A's copy, one for B's. The backend is driven from one host thread.
static struct {
    void *data;
    size_t bytes;
} g_scratch[2];

static void *scratch(int which, size_t bytes) {
    if (bytes > g_scratch[which].bytes) {
        free(g_scratch[which].data);
        g_scratch[which].data = NULL;
        DMDR_CHECK(posix_memalign(&g_scratch[which].data, 64, bytes) == 0,
                   "out of memory for a %zu-byte bf16 GEMM operand", bytes);
        g_scratch[which].bytes = bytes;
    }
    return g_scratch[which].data;
}

// Elements one thread converts at a time: a batch of one matrix still splits over the threads.
#define CONVERT_BLOCK 8192

// items x (size) matrices `stride` apart -> dst (items, size) packed: as bf16 bits (uint16_t)
// for oneDNN when `bits`, else as fp32 values rounded to bf16 for the fallback
static void pack_rounded(void *dst, const float *x, int64_t items, int64_t size, int64_t stride,
                         bool bits) {
    int64_t blocks = (size + CONVERT_BLOCK - 1) / CONVERT_BLOCK;
    #pragma omp parallel for collapse(2) schedule(static) if (items * size >= CONVERT_PARALLEL_MIN)
    for (int64_t i = 0; i < items; i++) {
        for (int64_t b = 0; b < blocks; b++) {
            const float *src = x + i * stride;
            int64_t begin = b * CONVERT_BLOCK;
            int64_t end = begin + CONVERT_BLOCK < size ? begin + CONVERT_BLOCK : size;
            if (bits) {
                uint16_t *out = (uint16_t *)dst + i * size;
                for (int64_t j = begin; j < end; j++) out[j] = bf16_from_float(src[j]);
            } else {
                float *out = (float *)dst + i * size;
                for (int64_t j = begin; j < end; j++) out[j] = bf16_round(src[j]);
            }
        }
    }
}

const char *cpu_bf16_missing(const Backend *be) {
    (void)be;
    return onednn_bf16_missing();
}

// c (batch, m, n) = alpha bf16(op(a_i)) bf16(op(b_i)) + beta c_i, fp32 accumulation
void cpu_matmul_bf16(const Backend *be, float *c, const float *a, const float *b, int64_t batch,
                     int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float alpha,
                     float beta, int64_t stride_a, int64_t stride_b, int64_t stride_c) {
    DMDR_CHECK(batch == 1 || stride_c != 0, "batched matmul writes every C_i to the same place");
    if (batch <= 0 || m == 0 || n == 0) return;
    if (k == 0) { // nothing to round: C = beta C
        cpu_matmul(be, c, a, b, batch, m, n, k, trans_a, trans_b, alpha, beta, stride_a,
                   stride_b, stride_c);
        return;
    }
    // a shared operand (stride 0) is converted once and stays shared
    int64_t items_a = batch > 1 && stride_a == 0 ? 1 : batch;
    int64_t items_b = batch > 1 && stride_b == 0 ? 1 : batch;
    int64_t packed_a = items_a == 1 ? 0 : m * k, packed_b = items_b == 1 ? 0 : k * n;
    if (!onednn_bf16_missing()) {
        uint16_t *a16 = scratch(0, (size_t)(items_a * m * k) * sizeof(uint16_t));
        uint16_t *b16 = scratch(1, (size_t)(items_b * k * n) * sizeof(uint16_t));
        pack_rounded(a16, a, items_a, m * k, stride_a, true);
        pack_rounded(b16, b, items_b, k * n, stride_b, true);
        if (onednn_matmul(ONEDNN_BF16, c, a16, b16, batch, m, n, k, trans_a, trans_b, alpha,
                          beta, packed_a, packed_b, stride_c))
            return;
    }
    float *a32 = scratch(0, (size_t)(items_a * m * k) * sizeof(float));
    float *b32 = scratch(1, (size_t)(items_b * k * n) * sizeof(float));
    pack_rounded(a32, a, items_a, m * k, stride_a, false);
    pack_rounded(b32, b, items_b, k * n, stride_b, false);
    cpu_matmul(be, c, a32, b32, batch, m, n, k, trans_a, trans_b, alpha, beta, packed_a,
               packed_b, stride_c);
}
