// Shapes: up to four dimensions in PyTorch order (NCHW, or (B, T, C)).
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define TENSOR_MAX_DIMS 4

typedef struct {
    int ndim;
    int64_t dim[TENSOR_MAX_DIMS];
} Shape;

static inline Shape shape0(void) { Shape s = {0, {0}}; return s; }
static inline Shape shape1(int64_t a) { Shape s = {1, {a}}; return s; }
static inline Shape shape2(int64_t a, int64_t b) { Shape s = {2, {a, b}}; return s; }
static inline Shape shape3(int64_t a, int64_t b, int64_t c) { Shape s = {3, {a, b, c}}; return s; }
static inline Shape shape4(int64_t a, int64_t b, int64_t c, int64_t d) {
    Shape s = {4, {a, b, c, d}};
    return s;
}
// from an array of n dims (n <= TENSOR_MAX_DIMS)
Shape shape_make(int ndim, const int64_t *dims);

int64_t shape_numel(Shape s);
bool shape_equal(Shape a, Shape b);
// Negative dims count from the end (PyTorch style); returns the normalised index.
int shape_axis(Shape s, int axis);
// The shape padded with leading 1s to 4 dims, as kernels take it.
void shape_to4(Shape s, int64_t out[TENSOR_MAX_DIMS]);
// Contiguous row-major strides (in elements) of the 4-d padded shape.
void shape_strides4(Shape s, int64_t out[TENSOR_MAX_DIMS]);
// "(2, 3, 4)" into buf; returns buf.
const char *shape_str(Shape s, char *buf, int buflen);
// NumPy broadcasting of a and b; false when incompatible.
bool shape_broadcast(Shape a, Shape b, Shape *out);
