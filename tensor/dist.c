// What every build shares: the shard arithmetic and the agreement check, over the primitives
// of dist_mpi.c or dist_none.c.
#include "tensor/dist.h"

#include <stdlib.h>
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

// Joins the ranks in be's collective, once -> whether it can be used.
static bool collective_ready(const Backend *be) {
    static const Backend *joined;
    if (joined == be) return true;
    DMDR_CHECK(joined == NULL, "collectives on two device backends in one run");
    unsigned char id[BACKEND_COLLECTIVE_ID_BYTES] = {0};
    char reason[256] = "";
    int ok = dist_rank() != 0 || be->collective_id(be, id, reason, sizeof reason) == 0;
    // every rank learns whether rank 0 has an id before any waits on a broadcast of one
    double failed = ok ? 0 : 1;
    dist_max_f64(&failed, 1);
    DMDR_CHECK(failed == 0, "%s collectives: rank 0 could not make an id%s%s", be->name,
               reason[0] ? ": " : "", reason);
    dist_broadcast(id, sizeof id);
    ok = be->collective_init(be, id, dist_rank(), dist_size(), reason, sizeof reason) == 0;
    failed = ok ? 0 : 1;
    dist_max_f64(&failed, 1);
    DMDR_CHECK(failed == 0, "%s collectives could not join the %d ranks%s%s", be->name,
               dist_size(), reason[0] ? ": " : "", reason);
    joined = be;
    return true;
}

const char *dist_sum_on(const Backend *be, float *x, int64_t n, float scale) {
    if (dist_size() > 1 && be->allreduce_sum && collective_ready(be)) {
        be->allreduce_sum(be, x, n);
        if (scale != 1.0f) be->scalar(be, SCALAR_MUL, x, x, scale, n);
        return "nccl";
    }
    if (be == backend_get(DEVICE_CPU)) {
        dist_sum_f32(x, n);
        if (scale != 1.0f) be->scalar(be, SCALAR_MUL, x, x, scale, n);
        return "mpi";
    }
    // device memory without a collective of its own: staged through a host buffer
    static float *host;
    static int64_t capacity;
    if (n > capacity) {
        free(host);
        host = malloc((size_t)n * sizeof *host);
        DMDR_CHECK(host != NULL, "out of host memory for %lld values", (long long)n);
        capacity = n;
    }
    be->copy_to_host(be, host, x, (size_t)n * sizeof *x);
    dist_sum_f32(host, n);
    for (int64_t i = 0; i < n; i++) host[i] *= scale;
    be->copy_from_host(be, x, host, (size_t)n * sizeof *x);
    return "host";
}
