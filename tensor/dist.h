// Data parallelism across processes (docs/distributed.md): every rank runs the same program on
// its shard of each global batch, and the library's training steps average the gradients
// once per step. With MPI (the meson feature `mpi`) a program started by mpirun gets one rank
// per process; without it, or without mpirun, it is the one rank of a world of one, and every
// call here is free.
//
// The convention that makes N ranks compute what one would: each rank draws the random numbers
// of the whole global batch from the same seeded streams, in the same order, then keeps its
// rows (dist_shard). Draws agree across ranks by construction and a 2-rank run equals a 1-rank
// run up to the order of the gradient sums.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

// Joins the world: MPI_Init when this process was started by an MPI launcher (mpirun sets its
// environment), else a world of one. Returns 0, or -1 after printing why MPI could not start.
int dist_init(int *argc, char ***argv);
// Leaves the world with this rank's exit code and returns the code the process exits with.
// When every rank gets here (all done, or all failed alike, e.g. at a bad setting) they agree
// on the largest code and finalise; a rank that failed while another still works (waiting in
// a collective for it) ends the whole run with dist_abort after a short wait.
int dist_finish(int code);
int dist_rank(void);
int dist_size(void);
// "mpi", or "none" in a build without MPI
const char *dist_backend(void);

// Ends every rank of the run (MPI_Abort) with `code`, after a failure on this one: a rank
// that returned instead would leave the others waiting in a collective forever.
_Noreturn void dist_abort(int code);

// In place, on host memory, the same n on every rank: the sum over ranks / the maximum.
void dist_sum_f32(float *values, int64_t n);
void dist_sum_f64(double *values, int n);
void dist_max_f64(double *values, int n);
// Rank 0's values (count per rank x ranks) receive every rank's first `count` in rank order
// (rank 0's own stay first); the others' buffers are only read.
void dist_gather_f32(float *values, int64_t count);

// Rank 0's `size` bytes, in place on every rank.
void dist_broadcast(void *bytes, size_t size);

// In place on be's memory: x (n) = scale * the sum of x over the ranks. Through the backend's
// own collective where it has one (NCCL on CUDA: the values never leave the devices; the first
// call joins the ranks), else through host memory and dist_sum_f32. Returns which: "nccl",
// "host" (a CUDA backend without NCCL, staged through the host) or "mpi" (host memory).
const char *dist_sum_on(const Backend *be, float *x, int64_t n, float scale);

// This rank's rows of a global batch of `global` rows: [*offset, *offset + *count), equal
// shares (the caller checks that the rank count divides the batch: dist_divides).
void dist_shard(int64_t global, int64_t *offset, int64_t *count);
bool dist_divides(int64_t global);

// Whether every rank holds the same value (bit for bit): the divergence check of the weights.
bool dist_agree(double value);
