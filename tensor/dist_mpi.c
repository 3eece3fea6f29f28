// The MPI world (OpenMPI): MPI_COMM_WORLD, host buffers, MPI_Allreduce.
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/check.h"
#include "tensor/dist.h"

static int world_rank, world_size = 1;
static bool joined;
// a second communicator for dist_finish alone, so that its collective can never be matched
// with a training step's on another rank
static MPI_Comm finish_comm;

// Whether an MPI launcher started this process (OpenMPI's, or a PMI one such as Slurm's)
static bool launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int dist_init(int *argc, char ***argv) {
    // a plain start is a world of one without MPI_Init: no launcher daemons, no start-up cost
    if (!launched_by_mpi()) return 0;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "dmdr: MPI_Init failed\n");
        return -1;
    }
    joined = true;
    // errors end the run with a message instead of returning codes nobody checks
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    MPI_Comm_dup(MPI_COMM_WORLD, &finish_comm);
    return 0;
}

#define FAILED_RANK_WAIT_S 3.0 // how long a failed rank waits for the others to finish too

int dist_finish(int code) {
    if (!joined) return code;
    int worst = code;
    MPI_Request request;
    MPI_Iallreduce(&code, &worst, 1, MPI_INT, MPI_MAX, finish_comm, &request);
    if (code == 0) {
        MPI_Wait(&request, MPI_STATUS_IGNORE); // done: wait for the others however long
    } else {
        int done = 0;
        for (double waited = 0; !done && waited < FAILED_RANK_WAIT_S; waited += 0.01) {
            MPI_Test(&request, &done, MPI_STATUS_IGNORE);
            if (!done) nanosleep(&(struct timespec){0, 10000000}, NULL);
        }
        if (!done) dist_abort(code); // another rank still works, maybe waiting for this one
    }
    MPI_Comm_free(&finish_comm);
    MPI_Finalize();
    joined = false;
    return worst;
}

int dist_rank(void) { return world_rank; }
int dist_size(void) { return world_size; }
const char *dist_backend(void) { return "mpi"; }

_Noreturn void dist_abort(int code) {
    if (joined && world_size > 1) {
        fprintf(stderr, "dmdr: rank %d of %d failed (exit %d): ending every rank\n", world_rank,
                world_size, code);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
    exit(code);
}

void dist_sum_f32(float *values, int64_t n) {
    if (world_size == 1) return;
    // MPI counts are int: large buffers go in pieces
    for (int64_t done = 0; done < n;) {
        int count = (int)(n - done < INT_MAX ? n - done : INT_MAX);
        MPI_Allreduce(MPI_IN_PLACE, values + done, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        done += count;
    }
}

void dist_sum_f64(double *values, int n) {
    if (world_size > 1)
        MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void dist_max_f64(double *values, int n) {
    if (world_size > 1)
        MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
}

void dist_gather_f32(float *values, int64_t count) {
    if (world_size == 1) return;
    DMDR_CHECK(count <= INT_MAX, "dist_gather_f32: %lld values per rank", (long long)count);
    if (world_rank == 0)
        MPI_Gather(MPI_IN_PLACE, (int)count, MPI_FLOAT, values, (int)count, MPI_FLOAT, 0,
                   MPI_COMM_WORLD);
    else
        MPI_Gather(values, (int)count, MPI_FLOAT, NULL, 0, MPI_FLOAT, 0, MPI_COMM_WORLD);
}

void dist_broadcast(void *bytes, size_t size) {
    if (world_size == 1) return;
    DMDR_CHECK(size <= INT_MAX, "a broadcast of %zu bytes", size);
    MPI_Bcast(bytes, (int)size, MPI_BYTE, 0, MPI_COMM_WORLD);
}
