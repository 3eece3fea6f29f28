// One thread setting for the whole CPU side: our OpenMP loops and OpenBLAS share one
// OpenMP pool (we link the OpenMP build of OpenBLAS), so the two never oversubscribe:
// a GEMM called from inside one of our parallel regions runs on the calling thread.
#pragma once

// Sets the thread count for OpenMP and OpenBLAS. n <= 0 means: $DMDR_THREADS when set,
// else the number of cores.
void threads_set(int n);
int threads_get(void);
