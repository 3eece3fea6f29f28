// oneDNN's matmul primitive (Debian's libdnnl, the library PyTorch's CPU bf16 also runs on):
// the CPU backend's bf16 GEMM, and its fp32 GEMM at the shapes where it measured faster than
// OpenBLAS (matmul.c). onednn.c with the `onednn` build feature, onednn_none.c without it.
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum { ONEDNN_F32, ONEDNN_BF16 } OnednnType;

// NULL when oneDNN runs bf16 GEMMs natively here (compiled in, not turned off, and the CPU has
// AVX512-BF16 or AMX), else why not, in a few words; decided at the first call. DMDR_ONEDNN=0
// in the environment turns oneDNN off: bf16 GEMMs then take the rounded fp32 path, which is how
// the tests reach that path on a machine with oneDNN.
const char *onednn_bf16_missing(void);

// Whether every fp32 GEMM goes to oneDNN (DMDR_ONEDNN=fp32 in the environment), instead of
// the shapes matmul.c routes to it: how that routing was measured.
bool onednn_fp32_everywhere(void);

// c_i (m, n) = alpha op(a_i) op(b_i) + beta c_i for i < batch, Backend.matmul's semantics, with
// a and b of `type` (bf16 as uint16_t bits) and c fp32 (products accumulate in fp32). A stride
// of 0 shares that operand. One primitive per distinct call is made on first use and cached,
// so repeated shapes create and allocate nothing. Returns false, having written nothing, when
// oneDNN rejects the call; the caller then computes it another way. Called from one host
// thread at a time (the primitives run on the OpenMP pool).
bool onednn_matmul(OnednnType type, float *c, const void *a, const void *b, int64_t batch,
                   int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float alpha,
                   float beta, int64_t stride_a, int64_t stride_b, int64_t stride_c);
