// Inside the registry (kernels/cases/): each family file's ops and its test cases, plus the
// 4-d index helpers the references share. The references are the most obvious loops,
// accumulate in double and share nothing with the optimised kernels.
#pragma once

#include "kernels/cases/cases.h"

// ---- the ops, by family ------------------------------------------------------------------------

// memory.c
extern const KernelOp kop_copy, kop_fill, kop_copy_strided;
// elementwise.c
extern const KernelOp kop_binary, kop_binary_backward, kop_unary, kop_unary_backward;
extern const KernelOp kop_scalar, kop_scalar_backward;
// reduce.c
extern const KernelOp kop_reduce, kop_reduce_max_backward, kop_sum_squares;
// matmul.c
extern const KernelOp kop_matmul, kop_conv2d;
// softmax.c
extern const KernelOp kop_softmax, kop_softmax_backward, kop_cross_entropy;
extern const KernelOp kop_cross_entropy_backward, kop_squared_error, kop_squared_error_backward;
// norm.c
extern const KernelOp kop_layernorm, kop_layernorm_backward, kop_groupnorm;
extern const KernelOp kop_groupnorm_backward;
// conv.c
extern const KernelOp kop_im2col, kop_col2im, kop_upsample_nearest;
extern const KernelOp kop_upsample_nearest_backward, kop_avgpool, kop_avgpool_backward;
extern const KernelOp kop_embedding, kop_embedding_backward;
// attention.c
extern const KernelOp kop_attention, kop_attention_backward;
// adamw.c
extern const KernelOp kop_adamw;

void memory_test_cases(CaseList *list);
void elementwise_test_cases(CaseList *list);
void reduce_test_cases(CaseList *list);
void matmul_test_cases(CaseList *list);
void softmax_test_cases(CaseList *list);
void norm_test_cases(CaseList *list);
void conv_test_cases(CaseList *list);
void attention_test_cases(CaseList *list);
void adamw_test_cases(CaseList *list);

// A host scratch array for a reference (zeroed); stops with a message when memory is short.
void *ref_alloc(size_t bytes);
