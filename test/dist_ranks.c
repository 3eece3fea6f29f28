// Run under mpirun by the dist suite (test_dist.c), not alone: the collectives of
// tensor/dist.h across real ranks. Exits 0 when every check holds on this rank; with the
// argument "fail-rank-1", rank 1 fails while rank 0 waits in a collective, which must end the
// whole run (dist_finish, then dist_abort) rather than hang.
#include <stdio.h>
#include <string.h>

#include "kernels/backend.h"

#include "tensor/dist.h"

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "rank %d: check failed: %s (line %d)\n", dist_rank(), #cond,     \
                    __LINE__);                                                               \
            dist_abort(1);                                                                   \
        }                                                                                    \
    } while (0)

int main(int argc, char **argv) {
    if (dist_init(&argc, &argv) != 0) return 1;
    int rank = dist_rank(), size = dist_size();
    CHECK(size == 2 && strcmp(dist_backend(), "mpi") == 0);
    if (argc > 1 && strcmp(argv[1], "fail-rank-1") == 0) {
        if (rank == 1) return dist_finish(3); // as dmdr's main leaves after a failed command
        double wait = 0;
        dist_sum_f64(&wait, 1); // never completes: rank 1 is gone
        fprintf(stderr, "rank 0: the collective returned without rank 1\n");
        return 1;
    }
    float v[3] = {(float)rank, 1.0f, 0.5f * (float)rank};
    dist_sum_f32(v, 3);
    CHECK(v[0] == 1.0f && v[1] == 2.0f && v[2] == 0.5f);
    double m[2] = {(double)rank, -(double)rank};
    dist_max_f64(m, 2);
    CHECK(m[0] == 1.0 && m[1] == 0.0);
    CHECK(dist_agree(42.0));
    CHECK(!dist_agree((double)rank));
    char id[16] = "";
    if (rank == 0) memcpy(id, "rank 0's bytes", 15);
    dist_broadcast(id, sizeof id);
    CHECK(strcmp(id, "rank 0's bytes") == 0);
    // the gradient average on each compiled backend's memory: the CPU's through MPI, a GPU's
    // through NCCL (or staged through the host without it)
    const Backend *backends[DEVICE_COUNT];
    int nb = 0;
    for (int d = 0; d < DEVICE_COUNT; d++)
        if (backend_get((Device)d)) backends[nb++] = backend_get((Device)d);
    for (int b = 0; b < nb; b++) {
        const Backend *be = backends[b];
        float host[5] = {1.0f + rank, 2.0f, -4.0f * rank, 0.25f, 3.0f}, got[5];
        float *x = be->alloc(be, sizeof host);
        CHECK(x != NULL);
        be->copy_from_host(be, x, host, sizeof host);
        const char *path = dist_sum_on(be, x, 5, 0.5f);
        be->copy_to_host(be, got, x, sizeof got);
        be->synchronize(be);
        be->free(be, x);
        fprintf(stderr, "rank %d: %s backend, sum through %s\n", rank, be->name, path);
        CHECK(got[0] == 1.5f && got[1] == 2.0f && got[2] == -2.0f && got[3] == 0.25f &&
              got[4] == 3.0f);
    }
    int64_t offset, count;
    CHECK(dist_divides(64) && !dist_divides(63));
    dist_shard(64, &offset, &count);
    CHECK(count == 32 && offset == 32 * rank);
    return dist_finish(0);
}
