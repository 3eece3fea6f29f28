#include "kernels/cuda/layout.h"

#include "kernels/check.h"

MergedDims merge_dims(const int64_t shape[KERNEL_MAX_DIMS], const int64_t s0[KERNEL_MAX_DIMS],
                      const int64_t s1[KERNEL_MAX_DIMS]) {
    MergedDims m = {0};
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

int64_t merged_max_offset(const MergedDims *m, int which) {
    int64_t max = 0;
    for (int d = 0; d < m->ndim; d++)
        if (m->shape[d] > 0) max += (m->shape[d] - 1) * m->stride[which][d];
    return max;
}

void contiguous_strides(const int64_t shape[KERNEL_MAX_DIMS], int64_t stride[KERNEL_MAX_DIMS]) {
    int64_t size = 1;
    for (int d = KERNEL_MAX_DIMS - 1; d >= 0; d--) {
        stride[d] = size;
        size *= shape[d];
    }
}

ReduceShape reduce_shape_of(const int64_t shape[KERNEL_MAX_DIMS], unsigned dims_mask) {
    // Runs of neighbouring dims with the same role multiply into one; size-1 dims belong to
    // neither. Walking the runs from the innermost, each lands in the next slot of its role
    // in (outer, r1, k1, r2, k2), read backwards: k2, r2, k1, r1, outer. Runs alternate
    // roles, so only the innermost run may skip a slot (a reduced innermost run leaves k2 = 1).
    int64_t slot[5] = {1, 1, 1, 1, 1};
    int s = 5;             // the slot after the one filled last
    int last_role = -1;    // role of the run being built: 1 reduced, 0 kept
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

ReduceSplit reduce_split(int64_t items, int64_t reduced, int64_t blocks_wanted, int64_t min_chunk,
                         int64_t max_splits) {
    ReduceSplit sp = {1, reduced};
    if (reduced <= 0 || items <= 0) return sp;
    int64_t splits = (blocks_wanted + items - 1) / items;
    int64_t by_length = (reduced + min_chunk - 1) / min_chunk;
    if (splits > by_length) splits = by_length;
    if (splits > max_splits) splits = max_splits;
    if (splits < 1) splits = 1;
    sp.chunk = (reduced + splits - 1) / splits;
    sp.splits = (reduced + sp.chunk - 1) / sp.chunk; // no empty chunk at the end
    return sp;
}
