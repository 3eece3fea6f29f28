// What every build shares: the shard arithmetic and the agreement check, over the primitives
// of dist_mpi.c or dist_none.c.
#include "tensor/dist.h"

#include <string.h>

#include "kernels/check.h"

bool dist_divides(int64_t global) { return global % dist_size() == 0; }

void dist_shard(int64_t global, int64_t *offset, int64_t *count) {
    DMDR_CHECK(dist_divides(global), "a batch of %lld does not split over %d ranks",
               (long long)global, dist_size());
    *count = global / dist_size();
    *offset = *count * dist_rank();
}

bool dist_agree(double value) {
    if (dist_size() == 1) return true;
    // max(v) == -max(-v) == min(v) exactly when every rank holds the same value
    double both[2] = {value, -value};
    dist_max_f64(both, 2);
    return memcmp(&both[0], &value, sizeof value) == 0 && -both[1] == value;
}
