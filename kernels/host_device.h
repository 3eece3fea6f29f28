// Functions the CPU backend and the CUDA kernels must compute identically (index arithmetic,
// the random-number mappings): written once, compiled as plain C for the host and by nvcc
// for both host and device, so the two backends cannot drift apart.
#pragma once

#ifdef __CUDACC__
#define HOST_DEVICE static inline __host__ __device__
#else
#define HOST_DEVICE static inline
#endif
