// Host-side index arithmetic of the CUDA backend: before a launch, a 4-d shape is reduced to
// as few dims as possible, so that kernels spend as few integer divisions per element as
// they can. Plain C (no CUDA), so it compiles and can be tested without a GPU.
#pragma once

#include <stdint.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// A 4-d index space walked with two stride sets (dst and src of a copy, a and b of a
// broadcast), after size-1 dims are dropped and neighbours merged wherever both stride sets
// are contiguous across them. ndim >= 1: a single element is one dim of size 1.
typedef struct {
    int ndim;
    int64_t shape[KERNEL_MAX_DIMS];
    int64_t stride[2][KERNEL_MAX_DIMS];
} MergedDims;

// shape (4-d), s0 and s1 (4-d strides) -> the same walk in merged dims. A shape with a 0 gives
// ndim = 1, shape[0] = 0.
MergedDims merge_dims(const int64_t shape[KERNEL_MAX_DIMS], const int64_t s0[KERNEL_MAX_DIMS],
                      const int64_t s1[KERNEL_MAX_DIMS]);

// The largest offset stride set `which` (0 or 1) reaches over the merged walk (strides are
// never negative): whether 32-bit index arithmetic is enough for it.
int64_t merged_max_offset(const MergedDims *m, int which);

// Row-major strides of a contiguous 4-d shape.
void contiguous_strides(const int64_t shape[KERNEL_MAX_DIMS], int64_t stride[KERNEL_MAX_DIMS]);

// Any reduction of a 4-d shape over a set of dims, as x (outer, r1, k1, r2, k2) -> y (outer,
// k1, k2): the r dims are reduced, the k dims kept, unused ones are 1. Element (o, i1, j1, i2,
// j2) of x is at (((o r1 + i1) k1 + j1) r2 + i2) k2 + j2, its output at (o k1 + j1) k2 + j2.
typedef struct {
    int64_t outer, r1, k1, r2, k2;
} ReduceShape;

// shape (4-d), dims_mask (bit d: dim d is reduced) -> its ReduceShape
ReduceShape reduce_shape_of(const int64_t shape[KERNEL_MAX_DIMS], unsigned dims_mask);

// How a reduction over `reduced` elements for each of `items` independent outputs is split
// into parallel pieces: `splits` consecutive chunks of `chunk` elements (the last may be
// shorter), each reduced by one block into a partial result. `blocks_wanted` is how many
// blocks fill the device; a chunk is never shorter than `min_chunk` unless the whole
// reduction is. splits is at least 1 and at most max_splits.
typedef struct {
    int64_t splits, chunk;
} ReduceSplit;

ReduceSplit reduce_split(int64_t items, int64_t reduced, int64_t blocks_wanted, int64_t min_chunk,
                         int64_t max_splits);

#ifdef __cplusplus
}
#endif
