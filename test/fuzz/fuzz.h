// Shared by the fuzz targets of test/fuzz (README.md there): each target is one function
// fuzz_<name>(data, size) that feeds the bytes to one reader of the library the way the
// program uses it. FUZZ_ENTRY makes it libFuzzer's entry point in a libFuzzer build
// (-DFUZZ_LIBFUZZER); otherwise replay.c calls the functions over the committed corpus.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "tools/config.h"

#ifdef FUZZ_LIBFUZZER
#define FUZZ_ENTRY(fn)                                                 \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);      \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {     \
        return fn(data, size);                                         \
    }
#else
#define FUZZ_ENTRY(fn)
#endif

// The targets (one file each).
int fuzz_safetensors(const uint8_t *data, size_t size);
int fuzz_checkpoint(const uint8_t *data, size_t size);
int fuzz_idx(const uint8_t *data, size_t size);
int fuzz_png_folder(const uint8_t *data, size_t size);
int fuzz_ini(const uint8_t *data, size_t size);
int fuzz_flags(const uint8_t *data, size_t size);

// A private temporary folder of this process (under $TMPDIR, else /tmp), made on first use
// with the library set up for fuzzing (one thread), and removed at exit.
const char *fuzz_tmpdir(void);
// fuzz_tmpdir()/name, written into buf (returned).
const char *fuzz_path(char *buf, size_t n, const char *name);
// Writes the bytes to path, replacing it; a failure is the harness's, so it aborts.
void fuzz_write_file(const char *path, const uint8_t *data, size_t size);
// The bytes as a NUL-terminated string (malloc'd; an embedded NUL ends it early).
char *fuzz_string(const uint8_t *data, size_t size);
// An input the reader refused with `msg`: the message must say something (else a finding);
// with FUZZ_VERBOSE=1 in the environment it is printed (why a seed does not load).
void fuzz_refused(const char *msg);
// The property both configuration targets check: a resolved Config written by config_to_ini
// (as a run stores its settings) reads back by config_load_string to the same text. On a
// mismatch it stops, naming the first line that changed.
void fuzz_check_config_round_trip(const Config *cfg);
// Stops with a message when a property the target checks does not hold (a finding).
void fuzz_fail(const char *what, const char *detail);
