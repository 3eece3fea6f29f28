// A file written where nothing reads it, then put in place whole: the text goes to
// "<path>.tmp.<pid>" beside the target, is flushed and fsync'ed, and is renamed over the
// target, so a reader (or a crash) sees the old file or the new one, never half of one.
// Run directories remove such temporaries left by a dead process (tools/rundir.h). And the
// folders such files go in.
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "tensor/error.h"

typedef struct {
    FILE *f;         // write here
    char *tmp;       // the temporary's name
    const char *path;
} AtomicFile;

// Creates the temporary -> 0, or -1 with err naming path.
int atomic_file_open(AtomicFile *a, const char *path, Error *err);

// With ok (every write succeeded): flush, fsync, close and rename -> 0, or -1 with err naming
// the step that failed. Without ok: the temporary is removed and -1 returned with err as the
// caller filled it. Either way the temporary is gone and a is closed.
int atomic_file_commit(AtomicFile *a, bool ok, Error *err);

// Whether anything (a file, a folder) is at path.
bool path_exists(const char *path);

// mkdir -p; an Error names the part that could not be made.
int make_dirs(const char *path, Error *err);
