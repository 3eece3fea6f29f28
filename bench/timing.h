// Wall-clock timing shared by the kernel and the end-to-end benchmarks.
#pragma once

// Seconds on the monotonic clock.
double bench_now_seconds(void);

// samples (n >= 1) of seconds per call, sorted in place -> their median (the figure: robust to
// a stray interrupt); *best gets the fastest.
double bench_median_seconds(double *samples, int n, double *best);
