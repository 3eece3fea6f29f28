// Internal invariants. A broken invariant is a programmer error: we stop at once with
// file:line, never limp on. Errors caused by external input (files, flags, configs) are
// reported as values instead (tensor/error.h).
#pragma once

#include <stdio.h>
#include <stdlib.h>

#define DMDR_CHECK(cond, ...)                                                        \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#define DMDR_FATAL(...)                                           \
    do {                                                          \
        fprintf(stderr, "%s:%d: fatal: ", __FILE__, __LINE__);    \
        fprintf(stderr, __VA_ARGS__);                             \
        fputc('\n', stderr);                                      \
        abort();                                                  \
    } while (0)
