#include "tensor/shape.h"

#include <stdio.h>

#include "kernels/check.h"

Shape shape_make(int ndim, const int64_t *dims) {
    DMDR_CHECK(ndim >= 0 && ndim <= TENSOR_MAX_DIMS, "rank %d exceeds %d", ndim, TENSOR_MAX_DIMS);
    Shape s = {ndim, {0}};
    for (int i = 0; i < ndim; i++) s.dim[i] = dims[i];
    return s;
}

int64_t shape_numel(Shape s) {
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dim[i];
    return n;
}

bool shape_equal(Shape a, Shape b) {
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.dim[i] != b.dim[i]) return false;
    return true;
}

int shape_axis(Shape s, int axis) {
    int a = axis < 0 ? axis + s.ndim : axis;
    DMDR_CHECK(a >= 0 && a < s.ndim, "axis %d out of range for rank %d", axis, s.ndim);
    return a;
}

void shape_to4(Shape s, int64_t out[TENSOR_MAX_DIMS]) {
    int pad = TENSOR_MAX_DIMS - s.ndim;
    for (int i = 0; i < TENSOR_MAX_DIMS; i++) out[i] = i < pad ? 1 : s.dim[i - pad];
}

void shape_strides4(Shape s, int64_t out[TENSOR_MAX_DIMS]) {
    int64_t d4[TENSOR_MAX_DIMS];
    shape_to4(s, d4);
    int64_t stride = 1;
    for (int i = TENSOR_MAX_DIMS - 1; i >= 0; i--) {
        out[i] = stride;
        stride *= d4[i];
    }
}

const char *shape_str(Shape s, char *buf, int buflen) {
    int used = snprintf(buf, (size_t)buflen, "(");
    for (int i = 0; i < s.ndim && used < buflen; i++)
        used += snprintf(buf + used, (size_t)(buflen - used), i ? ", %lld" : "%lld",
                         (long long)s.dim[i]);
    if (used < buflen) snprintf(buf + used, (size_t)(buflen - used), ")");
    return buf;
}

bool shape_broadcast(Shape a, Shape b, Shape *out) {
    int n = a.ndim > b.ndim ? a.ndim : b.ndim;
    Shape r = {n, {0}};
    for (int i = 0; i < n; i++) {
        int ia = i - (n - a.ndim), ib = i - (n - b.ndim);
        int64_t da = ia >= 0 ? a.dim[ia] : 1, db = ib >= 0 ? b.dim[ib] : 1;
        if (da != db && da != 1 && db != 1) return false;
        r.dim[i] = da == 1 ? db : da;
    }
    *out = r;
    return true;
}
