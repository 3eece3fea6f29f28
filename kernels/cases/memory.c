// Memory and data movement: copy, fill, and the strided copy behind permute, expand, concat
// and slicing. All move or store 32-bit words: bit for bit.
#include <string.h>

#include "kernels/cases/ops.h"

// ---- copy -------------------------------------------------------------------------------------

enum { COPY_SRC, COPY_DST };

static void call_copy(const Backend *be, void *const *buf, const KernelCase *c) {
    const CopyParams *p = &c->p.copy;
    be->copy(be, (float *)buf[COPY_DST] + p->dst_offset,
             (const float *)buf[COPY_SRC] + p->src_offset, (size_t)p->count * sizeof(float));
    be->synchronize(be);
}

static void ref_copy(void *const *host, const KernelCase *c) {
    const CopyParams *p = &c->p.copy;
    memcpy((float *)host[COPY_DST] + p->dst_offset, (const float *)host[COPY_SRC] + p->src_offset,
           (size_t)p->count * sizeof(float));
}

const KernelOp kop_copy = {"copy", "memory and random numbers", call_copy, ref_copy, NULL, NULL};

KernelCase *case_copy(CaseList *list, const char *name, int64_t words, int64_t src_offset,
                      int64_t dst_offset, int64_t count, bool dst_filled) {
    KernelCase *c = case_new(list, &kop_copy, name);
    c->p.copy = (CopyParams){src_offset, dst_offset, count};
    c->bytes = 2.0 * 4.0 * (double)count;
    case_in(c, "memory x", words, -1, 1);
    // a partial copy must leave the rest of dst alone
    if (dst_filled) case_inout(c, "memory y", words, -1, 1, CASE_EXACT);
    else case_out(c, "dst", words, CASE_EXACT);
    case_shape(c, "%lld floats", (long long)count);
    return c;
}

// ---- fill ---------------------------------------------------------------------------------------

static void call_fill(const Backend *be, void *const *buf, const KernelCase *c) {
    be->fill(be, buf[0], c->p.fill.value, c->p.fill.n);
}

static void ref_fill(void *const *host, const KernelCase *c) {
    float *y = host[0];
    for (int64_t i = 0; i < c->p.fill.n; i++) y[i] = c->p.fill.value;
}

const KernelOp kop_fill = {"fill", "memory and random numbers", call_fill, ref_fill, NULL, NULL};

// ---- strided copy -------------------------------------------------------------------------------

enum { STRIDED_SRC, STRIDED_DST };

static void call_copy_strided(const Backend *be, void *const *buf, const KernelCase *c) {
    const StridedParams *p = &c->p.strided;
    be->copy_strided(be, (float *)buf[STRIDED_DST] + p->dst_offset, p->dst_stride,
                     (const float *)buf[STRIDED_SRC] + p->src_offset, p->src_stride, p->shape);
}

// dst[i . dst_stride] = src[i . src_stride] for every index i < shape
static void ref_copy_strided(void *const *host, const KernelCase *c) {
    const StridedParams *p = &c->p.strided;
    const float *src = (const float *)host[STRIDED_SRC] + p->src_offset;
    float *dst = (float *)host[STRIDED_DST] + p->dst_offset;
    for (int64_t i = 0; i < shape4_numel(p->shape); i++)
        dst[strided_offset(p->shape, p->dst_stride, i)] =
            src[strided_offset(p->shape, p->src_stride, i)];
}

const KernelOp kop_copy_strided = {"copy_strided", "data movement", call_copy_strided,
                                  ref_copy_strided, NULL, NULL};

KernelCase *case_copy_strided(CaseList *list, const char *name, const StridedParams *p,
                              int64_t src_size, int64_t dst_size) {
    KernelCase *c = case_new(list, &kop_copy_strided, name);
    c->p.strided = *p;
    c->bytes = 2.0 * 4.0 * (double)shape4_numel(p->shape);
    case_in(c, "copy src", src_size, -1, 1);
    // nothing outside the destination view may change
    case_inout(c, "copy dst", dst_size, -1, 1, CASE_EXACT);
    case_shape(c, "(%lld, %lld, %lld, %lld)", (long long)p->shape[0], (long long)p->shape[1],
               (long long)p->shape[2], (long long)p->shape[3]);
    return c;
}

// ---- test cases ---------------------------------------------------------------------------------

void memory_test_cases(CaseList *list) {
    // whole, then 37 floats from offset 5 into offset 100 of a filled buffer
    case_copy(list, "copy", CASE_LARGE, 0, 0, CASE_LARGE, false);
    case_copy(list, "copy at an offset", CASE_LARGE, 5, 100, 37, true);

    static const int64_t sizes[] = {1, 7, 129, CASE_LARGE};
    static const float values[] = {-3.25f, 0.0f};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (size_t vi = 0; vi < sizeof values / sizeof values[0]; vi++) {
            KernelCase *c = case_new(list, &kop_fill, "fill");
            c->p.fill = (FillParams){sizes[si], values[vi]};
            c->bytes = 4.0 * (double)sizes[si];
            case_out(c, "y", sizes[si], CASE_EXACT);
            case_shape(c, "n=%lld value %g", (long long)sizes[si], (double)values[vi]);
        }
    }

    static const struct {
        const char *name;
        StridedParams p;
        int64_t src_size, dst_size;
    } strided[] = {
        // (2, 3, 5, 7) permuted (0, 2, 3, 1) into a contiguous (2, 5, 7, 3)
        {"permute", {{2, 3, 5, 7}, {105, 35, 7, 1}, {105, 1, 21, 3}, 0, 0}, 210, 210},
        // (257, 419) transposed: beyond 100k elements
        {"transpose", {{1, 1, 257, 419}, {0, 0, 419, 1}, {0, 0, 1, 257}, 0, 0}, 107683, 107683},
        // (1, 5, 1, 7) expanded to (3, 5, 4, 7)
        {"expand", {{3, 5, 4, 7}, {0, 7, 0, 1}, {140, 28, 7, 1}, 0, 0}, 35, 420},
        // the (3, 5) block at (2, 4) of a (7, 13) matrix into a (9, 11) matrix at (1, 3)
        {"sub-block", {{1, 1, 3, 5}, {0, 0, 13, 1}, {0, 0, 11, 1}, 2 * 13 + 4, 1 * 11 + 3},
         91, 99},
        // a (4, 6) into columns 6..11 of a (4, 12): one half of a concat along the last dim
        {"concat half", {{1, 1, 4, 6}, {0, 0, 6, 1}, {0, 0, 12, 1}, 0, 6}, 24, 48},
    };
    for (size_t i = 0; i < sizeof strided / sizeof strided[0]; i++)
        case_copy_strided(list, strided[i].name, &strided[i].p, strided[i].src_size,
                          strided[i].dst_size);
}
