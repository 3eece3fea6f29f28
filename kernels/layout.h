// The index arithmetic of every backend: a 4-d walk is reduced to as few dims as possible
// before a kernel runs (so it spends as few integer divisions per element as it can), and a
// reduction of any dims to one of a few loop shapes. One copy for the CPU backend and the
// CUDA kernels (host_device.h); the functions without HOST_DEVICE plan a launch on the host.
#pragma once

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/check.h"
#include "kernels/host_device.h"

// ---- merged dims ------------------------------------------------------------------------

// A 4-d index space walked with two stride sets (dst and src of a copy, a and b of a
// broadcast), after size-1 dims are dropped and neighbours merged wherever both stride sets
// are contiguous across them. ndim >= 1: a single element is one dim of size 1.
typedef struct {
    int ndim;
    int64_t shape[KERNEL_MAX_DIMS];
    int64_t stride[2][KERNEL_MAX_DIMS];
} MergedDims;

// shape (4-d), s0 and s1 (4-d strides) -> the same walk in merged dims. A shape with a 0
// gives ndim = 1, shape[0] = 0.
HOST_DEVICE MergedDims merge_dims(const int64_t shape[KERNEL_MAX_DIMS],
                                  const int64_t s0[KERNEL_MAX_DIMS],
                                  const int64_t s1[KERNEL_MAX_DIMS]) {
    MergedDims m;
    m.ndim = 0;
    for (int d = 0; d < KERNEL_MAX_DIMS; d++) m.shape[d] = m.stride[0][d] = m.stride[1][d] = 0;
    for (int d = 0; d < KERNEL_MAX_DIMS; d++) {
        if (shape[d] == 0) { // nothing to walk
            m.ndim = 1;
            m.shape[0] = 0;
            m.stride[0][0] = m.stride[1][0] = 0;
            return m;
        }
    }
    for (int d = 0; d < KERNEL_MAX_DIMS; d++) {
        int64_t n = shape[d];
        if (n == 1) continue; // its index is always 0: its strides never matter
        int last = m.ndim - 1;
        // dims last and d walk as one when stepping last once equals stepping d n times
        if (last >= 0 && m.stride[0][last] == s0[d] * n && m.stride[1][last] == s1[d] * n) {
            m.shape[last] *= n;
            m.stride[0][last] = s0[d];
            m.stride[1][last] = s1[d];
        } else {
            m.shape[m.ndim] = n;
            m.stride[0][m.ndim] = s0[d];
            m.stride[1][m.ndim] = s1[d];
            m.ndim++;
        }
    }
    if (m.ndim == 0) { // every dim 1
        m.ndim = 1;
        m.shape[0] = 1;
        m.stride[0][0] = m.stride[1][0] = 0;
    }
    return m;
}

HOST_DEVICE int64_t merged_numel(const MergedDims *m) {
    int64_t n = 1;
    for (int d = 0; d < m->ndim; d++) n *= m->shape[d];
    return n;
}

// Both stride sets step by 1 through all of m: a plain copy of merged_numel(m) elements.
HOST_DEVICE bool merged_contiguous(const MergedDims *m) {
    return m->ndim == 1 && (m->shape[0] <= 1 || (m->stride[0][0] == 1 && m->stride[1][0] == 1));
}

// *off0, *off1 = the offsets, under the two stride sets of m, of the element with row-major
// index `flat` in m's shape. Defined for 64-bit indices (merged_offsets) and, where every
// offset fits in 31 bits, 32-bit ones (merged_offsets32): a GPU's 32-bit division costs a
// fraction of a 64-bit one. One body for both, so the two cannot differ.
#define MERGED_OFFSETS_FN(name, I)                                                  \
    HOST_DEVICE void name(const MergedDims *m, I flat, I *off0, I *off1) {          \
        I o0 = 0, o1 = 0;                                                           \
        if (m->ndim == 1) {                                                         \
            o0 = flat * (I)m->stride[0][0];                                         \
            o1 = flat * (I)m->stride[1][0];                                         \
        } else {                                                                    \
            for (int d = m->ndim - 1; d >= 0; d--) {                                \
                I size = (I)m->shape[d], index = flat % size;                       \
                flat /= size;                                                       \
                o0 += index * (I)m->stride[0][d];                                   \
                o1 += index * (I)m->stride[1][d];                                   \
            }                                                                       \
        }                                                                           \
        *off0 = o0;                                                                 \
        *off1 = o1;                                                                 \
    }
MERGED_OFFSETS_FN(merged_offsets, int64_t)
MERGED_OFFSETS_FN(merged_offsets32, uint32_t)
#undef MERGED_OFFSETS_FN

// m's rows: the walk without its last dim, whose row i starts at merged_offsets of i in it
// (one division fewer per row than the row's first index in m). ndim may be 0: one row.
HOST_DEVICE MergedDims merged_rows(const MergedDims *m) {
    MergedDims rows = *m;
    rows.ndim = m->ndim - 1;
    return rows;
}

// The largest offset stride set `which` (0 or 1) reaches over the walk (strides are never
// negative), and whether the walk of n elements fits merged_offsets32.
HOST_DEVICE int64_t merged_max_offset(const MergedDims *m, int which) {
    int64_t max = 0;
    for (int d = 0; d < m->ndim; d++)
        if (m->shape[d] > 0) max += (m->shape[d] - 1) * m->stride[which][d];
    return max;
}

HOST_DEVICE bool merged_fits_32(const MergedDims *m, int64_t n) {
    const int64_t limit = INT32_MAX;
    return n <= limit && merged_max_offset(m, 0) <= limit && merged_max_offset(m, 1) <= limit;
}

// ---- reductions ---------------------------------------------------------------------------

// Any reduction of a 4-d shape over a set of dims, as x (outer, r1, k1, r2, k2) -> y (outer,
// k1, k2): the r dims are reduced, the k dims kept, unused ones are 1. Element (o, i1, j1, i2,
// j2) of x is at (((o r1 + i1) k1 + j1) r2 + i2) k2 + j2, its output at (o k1 + j1) k2 + j2.
typedef struct {
    int64_t outer, r1, k1, r2, k2;
} ReduceShape;

// shape (4-d), dims_mask (bit d: dim d is reduced) -> its ReduceShape
static inline ReduceShape reduce_shape_of(const int64_t shape[KERNEL_MAX_DIMS],
                                          unsigned dims_mask) {
    // Runs of neighbouring dims with the same role multiply into one; size-1 dims belong to
    // neither. Walking the runs from the innermost, each lands in the next slot of its role
    // in (outer, r1, k1, r2, k2), read backwards: k2, r2, k1, r1, outer. Runs alternate
    // roles, so only the innermost run may skip a slot (a reduced innermost run leaves k2 = 1).
    int64_t slot[5] = {1, 1, 1, 1, 1};
    int s = 5;          // the slot after the one filled last
    int last_role = -1; // role of the run being built: 1 reduced, 0 kept
    for (int d = KERNEL_MAX_DIMS - 1; d >= 0; d--) {
        if (shape[d] == 1) continue;
        int role = (int)((dims_mask >> d) & 1u);
        if (role != last_role) {
            s--;
            if ((s % 2 == 1) != (role == 1)) s--; // odd slots hold reduced runs
            DMDR_CHECK(s >= 0, "reduction of shape (%lld, %lld, %lld, %lld) over mask 0x%x",
                       (long long)shape[0], (long long)shape[1], (long long)shape[2],
                       (long long)shape[3], dims_mask);
            last_role = role;
        }
        slot[s] *= shape[d];
    }
    ReduceShape r = {slot[0], slot[1], slot[2], slot[3], slot[4]};
    return r;
}

// The x offset of element (o, 0, j1, 0, 0): the first reduced row of output item o k1 + j1
// (an item is a row of k2 outputs).
HOST_DEVICE int64_t reduce_item_offset(const ReduceShape *s, int64_t item) {
    return ((item / s->k1) * s->r1 * s->k1 + item % s->k1) * s->r2 * s->k2;
}

// The offset of reduced row q = i1 r2 + i2 (of the r1 r2 rows of k2 that reduce into an
// item) from the item's first.
HOST_DEVICE int64_t reduce_row_offset(const ReduceShape *s, int64_t q) {
    return ((q / s->r2) * s->k1 * s->r2 + q % s->r2) * s->k2;
}

// The output that x element i reduces into.
HOST_DEVICE int64_t reduce_output_of(const ReduceShape *s, int64_t i) {
    int64_t j2 = i % s->k2, rest = i / s->k2 / s->r2;
    int64_t j1 = rest % s->k1, o = rest / s->k1 / s->r1;
    return (o * s->k1 + j1) * s->k2 + j2;
}
