// The registry's table of ops, its case lists and the helpers every family's builders and
// references share.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cases/ops.h"
#include "kernels/check.h"

const KernelOp *const kernel_ops[] = {
    &kop_copy, &kop_fill,
    &kop_copy_strided,
    &kop_binary, &kop_binary_backward, &kop_unary, &kop_unary_backward, &kop_scalar,
    &kop_scalar_backward,
    &kop_reduce, &kop_reduce_max_backward, &kop_sum_squares,
    &kop_matmul, &kop_conv2d,
    &kop_softmax, &kop_softmax_backward, &kop_cross_entropy, &kop_cross_entropy_backward,
    &kop_squared_error, &kop_squared_error_backward,
    &kop_layernorm, &kop_layernorm_backward, &kop_groupnorm, &kop_groupnorm_backward,
    &kop_im2col, &kop_col2im, &kop_upsample_nearest, &kop_upsample_nearest_backward, &kop_avgpool,
    &kop_avgpool_backward, &kop_embedding, &kop_embedding_backward,
    &kop_attention, &kop_attention_backward,
    &kop_adamw,
};
const int kernel_op_count = (int)(sizeof kernel_ops / sizeof kernel_ops[0]);

void kernel_test_cases(CaseList *list) {
    memory_test_cases(list);
    elementwise_test_cases(list);
    reduce_test_cases(list);
    matmul_test_cases(list);
    softmax_test_cases(list);
    norm_test_cases(list);
    conv_test_cases(list);
    attention_test_cases(list);
    adamw_test_cases(list);
}

void case_list_free(CaseList *list) {
    free(list->items);
    *list = (CaseList){0};
}

KernelCase *case_new(CaseList *list, const KernelOp *op, const char *name) {
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? 2 * list->capacity : 64;
        list->items = realloc(list->items, (size_t)list->capacity * sizeof *list->items);
        DMDR_CHECK(list->items != NULL, "out of memory for %d kernel cases", list->capacity);
    }
    KernelCase *c = &list->items[list->count++];
    memset(c, 0, sizeof *c);
    c->op = op;
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

void case_shape(KernelCase *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->shape, sizeof c->shape, fmt, ap);
    va_end(ap);
}

CaseBuffer *case_buffer(KernelCase *c, const char *label, int64_t words, CaseRole role) {
    DMDR_CHECK(c->nbuffers < CASE_MAX_BUFFERS, "%s: more than %d buffers", c->name,
               CASE_MAX_BUFFERS);
    CaseBuffer *b = &c->buf[c->nbuffers++];
    // outputs are filled too (the bench touches every page before it times)
    *b = (CaseBuffer){.label = label, .words = words, .role = role, .fill = FILL_UNIFORM,
                      .lo = -1.0f, .hi = 1.0f};
    return b;
}

CaseBuffer *case_in(KernelCase *c, const char *label, int64_t words, float lo, float hi) {
    CaseBuffer *b = case_buffer(c, label, words, CASE_IN);
    b->lo = lo;
    b->hi = hi;
    return b;
}

CaseBuffer *case_out(KernelCase *c, const char *label, int64_t words, CaseTol tol) {
    CaseBuffer *b = case_buffer(c, label, words, CASE_OUT);
    b->tol = tol;
    return b;
}

CaseBuffer *case_inout(KernelCase *c, const char *label, int64_t words, float lo, float hi,
                       CaseTol tol) {
    CaseBuffer *b = case_in(c, label, words, lo, hi);
    b->role = CASE_INOUT;
    b->tol = tol;
    return b;
}

CaseBuffer *case_ints(KernelCase *c, const char *label, int64_t words, int32_t below) {
    CaseBuffer *b = case_buffer(c, label, words, CASE_IN);
    b->fill = FILL_INTS;
    b->below = below;
    return b;
}

CaseBuffer *case_optional_out(KernelCase *c, const char *label, int64_t words, bool present,
                              CaseTol tol) {
    CaseBuffer *b = case_out(c, label, words, tol);
    if (!present) b->role = CASE_NULL;
    return b;
}

// ---- 4-d shapes ---------------------------------------------------------------------------------

int64_t shape4_numel(const int64_t shape[KERNEL_MAX_DIMS]) {
    int64_t n = 1;
    for (int d = 0; d < KERNEL_MAX_DIMS; d++) n *= shape[d];
    return n;
}

int64_t strided_offset(const int64_t shape[KERNEL_MAX_DIMS], const int64_t stride[KERNEL_MAX_DIMS],
                       int64_t flat) {
    int64_t offset = 0;
    for (int d = KERNEL_MAX_DIMS - 1; d >= 0; d--) {
        offset += flat % shape[d] * stride[d];
        flat /= shape[d];
    }
    return offset;
}

int64_t strides_without(const int64_t shape[KERNEL_MAX_DIMS], unsigned zero_mask,
                        int64_t stride[KERNEL_MAX_DIMS]) {
    int64_t size = 1;
    for (int d = KERNEL_MAX_DIMS - 1; d >= 0; d--) {
        if (zero_mask >> d & 1u) {
            stride[d] = 0;
        } else {
            stride[d] = size;
            size *= shape[d];
        }
    }
    return size;
}

unsigned unit_dims(const int64_t shape[KERNEL_MAX_DIMS]) {
    unsigned mask = 0;
    for (int d = 0; d < KERNEL_MAX_DIMS; d++)
        if (shape[d] == 1) mask |= 1u << d;
    return mask;
}

double logsumexp(const double *s, int64_t n) {
    double max = -INFINITY, sum = 0;
    for (int64_t j = 0; j < n; j++) max = fmax(max, s[j]);
    for (int64_t j = 0; j < n; j++) sum += exp(s[j] - max);
    return max + log(sum);
}

void *ref_alloc(size_t bytes) {
    void *p = calloc(bytes ? bytes : 1, 1);
    DMDR_CHECK(p != NULL, "out of memory for %zu bytes of a reference", bytes);
    return p;
}
