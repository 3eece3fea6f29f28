// The build without oneDNN (meson feature `onednn` disabled or libdnnl-dev missing): bf16
// GEMMs take the fp32 path on rounded operands (matmul_bf16.c), fp32 GEMMs are OpenBLAS's.
#include "kernels/cpu/onednn.h"

const char *onednn_bf16_missing(void) { return "this build has no oneDNN (libdnnl-dev)"; }

bool onednn_fp32_everywhere(void) { return false; }

bool onednn_matmul(OnednnType type, float *c, const void *a, const void *b, int64_t batch,
                   int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float alpha,
                   float beta, int64_t stride_a, int64_t stride_b, int64_t stride_c) {
    (void)type, (void)c, (void)a, (void)b, (void)batch, (void)m, (void)n, (void)k;
    (void)trans_a, (void)trans_b, (void)alpha, (void)beta, (void)stride_a, (void)stride_b;
    (void)stride_c;
    return false;
}
