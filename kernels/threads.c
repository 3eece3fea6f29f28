#include "kernels/threads.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

void threads_set(int n) {
    if (n <= 0) {
        const char *env = getenv("DMDR_THREADS");
        n = env ? atoi(env) : 0;
    }
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    // The OpenMP build of OpenBLAS takes its width from the same pool; setting it too keeps
    // the two in step even when OpenBLAS was initialised earlier with another count.
    openblas_set_num_threads(n);
}

int threads_get(void) { return omp_get_max_threads(); }
