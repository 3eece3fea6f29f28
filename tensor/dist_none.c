// The build without MPI: a world of one rank, whatever launched it.
#include <stdio.h>
#include <stdlib.h>

#include "tensor/dist.h"

int dist_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    // mpirun sets OMPI_COMM_WORLD_SIZE (PMI_SIZE for MPICH-style launchers): without MPI in
    // the build every such process would train alone on the whole batch, writing the same run
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE")) {
        const char *size = getenv("OMPI_COMM_WORLD_SIZE");
        if (!size) size = getenv("PMI_SIZE");
        if (atoi(size) > 1) {
            fprintf(stderr, "dmdr: started by an MPI launcher with %s ranks, but this build has no "
                            "MPI (install libopenmpi-dev and reconfigure: meson setup --reconfigure "
                            "-Dmpi=enabled)\n", size);
            return -1;
        }
    }
    return 0;
}

int dist_finish(int code) { return code; }
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
const char *dist_backend(void) { return "none"; }
_Noreturn void dist_abort(int code) { exit(code); }
void dist_sum_f32(float *values, int64_t n) { (void)values, (void)n; }
void dist_sum_f64(double *values, int n) { (void)values, (void)n; }
void dist_max_f64(double *values, int n) { (void)values, (void)n; }
void dist_gather_f32(float *values, int64_t count) { (void)values, (void)count; }
void dist_broadcast(void *bytes, size_t size) { (void)bytes, (void)size; }
