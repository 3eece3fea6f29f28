// The benchmark suite behind `dmdr bench`.
#pragma once

// argv[0] is "bench". Returns a process exit code.
int bench_main(int argc, char **argv);
