// Run under mpirun by the dist suite (test_dist.c), not alone: the collectives of
// tensor/dist.h across real ranks. Exits 0 when every check holds on this rank; with the
// argument "fail-rank-1", rank 1 fails while rank 0 waits in a collective, which must end the
// whole run (dist_finish, then dist_abort) rather than hang.
#include <stdio.h>
#include <string.h>

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
    int64_t offset, count;
    CHECK(dist_divides(64) && !dist_divides(63));
    dist_shard(64, &offset, &count);
    CHECK(count == 32 && offset == 32 * rank);
    return dist_finish(0);
}
