// The named-parameter list and its safetensors save/load. Loading matches by name, never by
// position, so a file written by PyTorch (whose key order is its own) loads here.
#include "nn/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "kernels/check.h"
#include "nn/params_internal.h"
#include "tensor/safetensors.h"

// ---- the list ----------------------------------------------------------------------------------

// Writes the pieces one after another into out (PARAM_NAME_MAX); a name that does not fit is
// a bug in the module registering it. Built in a local buffer so out may alias a piece.
static const char *join_name(char *out, const char *a, const char *b, const char *c) {
    char buf[PARAM_NAME_MAX];
    int n = snprintf(buf, sizeof buf, "%s%s%s", a ? a : "", b, c);
    DMDR_CHECK(n >= 0 && n < PARAM_NAME_MAX, "parameter name '%s%s%s' is longer than %d bytes",
               a ? a : "", b, c, PARAM_NAME_MAX - 1);
    memcpy(out, buf, (size_t)n + 1);
    return out;
}

void params_add(ParamList *list, const char *prefix, const char *name, Tensor *t, bool trainable) {
    DMDR_CHECK(t != NULL, "parameter '%s%s' is NULL", prefix ? prefix : "", name);
    if (list->count == list->capacity) {
        int capacity = list->capacity ? 2 * list->capacity : 32;
        Param *items = realloc(list->items, (size_t)capacity * sizeof *items);
        DMDR_CHECK(items != NULL, "out of host memory");
        list->items = items;
        list->capacity = capacity;
    }
    Param *p = &list->items[list->count];
    join_name(p->name, prefix, name, "");
    // Two modules registering one name would make save/load silently drop one of them.
    DMDR_CHECK(params_find(list, p->name) == NULL, "parameter '%s' registered twice", p->name);
    p->tensor = t;
    p->trainable = trainable;
    list->count++;
}

Tensor *param_leaf(Tensor *t) {
    tensor_set_requires_grad(t, true);
    return tensor_retain(t);
}

double params_checksum(const ParamList *list) {
    double sum = 0;
    for (int i = 0; i < list->count; i++) {
        const Tensor *t = list->items[i].tensor;
        int64_t n = tensor_numel(t);
        float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
        DMDR_CHECK(v != NULL, "out of host memory");
        tensor_read(t, v);
        for (int64_t j = 0; j < n; j++) sum += (double)v[j] * (double)(1 + (i + j) % 7);
        free(v);
    }
    return sum;
}

Param *params_find(const ParamList *list, const char *name) {
    for (int i = 0; i < list->count; i++)
        if (strcmp(list->items[i].name, name) == 0) return &list->items[i];
    return NULL;
}

int64_t params_numel(const ParamList *list, bool trainable_only) {
    int64_t n = 0;
    for (int i = 0; i < list->count; i++)
        if (list->items[i].trainable || !trainable_only) n += tensor_numel(list->items[i].tensor);
    return n;
}

void params_free(ParamList *list) {
    free(list->items);
    *list = (ParamList){0};
}

// "blocks.3." + "attn" -> "blocks.3.attn."
const char *params_prefix(char *out, const char *prefix, const char *child) {
    return join_name(out, prefix, child, ".");
}

// "" + "blocks" + 3 -> "blocks.3."
const char *params_prefix_index(char *out, const char *prefix, const char *child, int index) {
    char tail[32];
    snprintf(tail, sizeof tail, ".%d.", index);
    return join_name(out, prefix, child, tail);
}

// ---- files -------------------------------------------------------------------------------------

int params_save(const ParamList *list, const char *path, int metadata_count,
                const char *const *keys, const char *const *values, Error *err) {
    const char **names = malloc((size_t)(list->count + 1) * sizeof *names);
    Tensor **tensors = malloc((size_t)(list->count + 1) * sizeof *tensors);
    DMDR_CHECK(names && tensors, "out of host memory");
    for (int i = 0; i < list->count; i++) {
        names[i] = list->items[i].name;
        tensors[i] = list->items[i].tensor;
    }
    int rc = safetensors_save(path, list->count, names, tensors, metadata_count, keys, values, err);
    free(names);
    free(tensors);
    return rc;
}

static bool shapes_fit(Shape file, Shape dst) {
    if (dst.ndim == 0) return shape_numel(file) == 1 && file.ndim <= 1;
    return shape_equal(file, dst);
}

Tensor *params_match(const Safetensors *st, const char *path, const char *name, const Tensor *dst,
                     Error *err) {
    Tensor *t = safetensors_find(st, name);
    char want[64], got[64];
    if (!t) {
        error_set(err, "%s: parameter '%s' %s is missing from the file", path, name,
                  tensor_shape_str(dst, want, sizeof want));
        return NULL;
    }
    if (t->dtype != dst->dtype) {
        error_set(err, "%s: parameter '%s' is %s in the file, the model wants %s", path, name,
                  dtype_name(t->dtype), dtype_name(dst->dtype));
        return NULL;
    }
    if (!shapes_fit(t->shape, dst->shape)) {
        error_set(err, "%s: parameter '%s' has shape %s in the file, the model wants %s", path,
                  name, tensor_shape_str(t, got, sizeof got),
                  tensor_shape_str(dst, want, sizeof want));
        return NULL;
    }
    return t;
}

static const char *file_name_of(const Safetensors *st, const Tensor *t) {
    for (int i = 0; i < st->count; i++)
        if (st->tensors[i] == t) return st->names[i];
    return "?";
}

int params_check_finite(const Safetensors *st, const char *path, Tensor *const *src, int count,
                        Error *err) {
    char list[400] = "";
    size_t used = 0;
    int bad = 0;
    for (int i = 0; i < count; i++) {
        if (src[i]->dtype != DTYPE_F32) continue;
        const float *x = tensor_f32(src[i]);
        int64_t n = shape_numel(src[i]->shape), nan = 0, inf = 0;
        for (int64_t j = 0; j < n; j++) nan += isnan(x[j]), inf += isinf(x[j]);
        if (nan + inf == 0) continue;
        if (++bad <= 3 && used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s'%s' (%lld NaN, %lld inf)",
                                     bad > 1 ? ", " : "", file_name_of(st, src[i]),
                                     (long long)nan, (long long)inf);
    }
    if (bad == 0) return 0;
    return error_set(err, "%s: %d tensor%s hold%s non-finite values: %s%s; the file came from a "
                          "diverged run or is damaged",
                     path, bad, bad > 1 ? "s" : "", bad > 1 ? "" : "s", list,
                     bad > 3 ? ", ..." : "");
}

// Every check passes before the first copy, so a failed load leaves the parameters as they were.
int params_load(const ParamList *list, const char *path, bool allow_extra, Error *err) {
    Safetensors st;
    if (safetensors_load(path, &st, err)) return -1;
    Tensor **src = malloc((size_t)(list->count + 1) * sizeof *src);
    DMDR_CHECK(src != NULL, "out of host memory");
    char shape[64];
    int rc = 0;
    for (int i = 0; i < list->count && rc == 0; i++) {
        src[i] = params_match(&st, path, list->items[i].name, list->items[i].tensor, err);
        if (!src[i]) rc = -1;
    }
    for (int i = 0; i < st.count && rc == 0 && !allow_extra; i++)
        if (!params_find(list, st.names[i]))
            rc = error_set(err, "%s: unexpected tensor '%s' %s: not a parameter of the model",
                           path, st.names[i], tensor_shape_str(st.tensors[i], shape, sizeof shape));
    if (rc == 0) rc = params_check_finite(&st, path, src, list->count, err);
    for (int i = 0; i < list->count && rc == 0; i++)
        tensor_copy_into(list->items[i].tensor, src[i]);
    free(src);
    safetensors_free(&st);
    return rc;
}

void params_set_trainable(const ParamList *list, bool trainable) {
    for (int i = 0; i < list->count; i++) {
        list->items[i].trainable = trainable;
        tensor_set_requires_grad(list->items[i].tensor, trainable);
    }
}

void params_copy(const ParamList *from, const ParamList *to) {
    for (int i = 0; i < from->count; i++) {
        const Param *src = &from->items[i];
        Param *dst = params_find(to, src->name);
        DMDR_CHECK(dst != NULL && shape_equal(dst->tensor->shape, src->tensor->shape),
                   "params_copy: %s missing or shaped differently in the destination", src->name);
        tensor_copy_into(dst->tensor, src->tensor);
    }
}
