// dmdr: the command-line program. Each command is one entry of the table below.
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "dmdr_config.h"

typedef struct {
    const char *name;
    const char *summary;
    const char *usage; // shown by `dmdr help <command>`
    int (*run)(int argc, char **argv);
} Command;

static int run_help(int argc, char **argv);

static const Command commands[] = {
    {"bench", "benchmark the kernels (GFLOP/s, GB/s, fraction of the machine's ceiling)",
     "dmdr bench [--threads N] [--device cpu|cuda] [--shapes small|base] [--filter TEXT]\n"
     "           [--quick] [--json FILE]\n"
     "  Measures the machine's ceilings (a large sgemm, a large copy) and then every kernel\n"
     "  at the shapes of a small DiT, printing time per call, throughput, and the fraction\n"
     "  of the ceiling. --json writes the same figures as JSON.\n",
     bench_main},
    {"help", "show the commands, or the usage of one", "dmdr help [command]\n", run_help},
};
static const int command_count = (int)(sizeof commands / sizeof commands[0]);

static const Command *find_command(const char *name) {
    for (int i = 0; i < command_count; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void print_overview(FILE *out) {
    fprintf(out,
            "dmdr %s: a tensor engine with autograd, and DMD/DMDR few-step diffusion\n\n"
            "usage: dmdr <command> [options]\n\ncommands:\n",
            DMDR_VERSION);
    for (int i = 0; i < command_count; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`dmdr help <command>` shows a command's options. `dmdr --version` prints the "
                 "version.\nThe thread count: --threads N on a command, or DMDR_THREADS.\n");
}

static int run_help(int argc, char **argv) {
    if (argc < 2) {
        print_overview(stdout);
        return 0;
    }
    const Command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "dmdr help: unknown command '%s' (see `dmdr help`)\n", argv[1]);
        return 2;
    }
    printf("%s: %s\n\nusage: %s", c->name, c->summary, c->usage);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_overview(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("dmdr %s\n", DMDR_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return run_help(1, argv + 1);
    const Command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "dmdr: unknown command '%s' (see `dmdr help`)\n", argv[1]);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
