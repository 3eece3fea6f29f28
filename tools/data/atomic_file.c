#include "tools/data/atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/check.h"

int atomic_file_open(AtomicFile *a, const char *path, Error *err) {
    size_t size = strlen(path) + 32;
    a->path = path;
    a->tmp = malloc(size);
    DMDR_CHECK(a->tmp != NULL, "out of host memory");
    snprintf(a->tmp, size, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (a->f) return 0;
    int rc = error_set(err, "%s: cannot create %s: %s", path, a->tmp, strerror(errno));
    free(a->tmp);
    a->tmp = NULL;
    return rc;
}

int atomic_file_commit(AtomicFile *a, bool ok, Error *err) {
    int rc = ok ? 0 : -1;
    const char *step = NULL;
    if (ok && ferror(a->f)) step = "write", errno = EIO;
    else if (ok && fflush(a->f) != 0) step = "flush";
    else if (ok && fsync(fileno(a->f)) != 0) step = "fsync";
    int saved = errno;
    if (fclose(a->f) != 0 && ok && !step) step = "close", saved = errno;
    if (ok && !step && rename(a->tmp, a->path) != 0) step = "rename", saved = errno;
    if (step) rc = error_set(err, "%s: %s of %s failed: %s", a->path, step, a->tmp, strerror(saved));
    if (rc) remove(a->tmp);
    free(a->tmp);
    a->f = NULL, a->tmp = NULL;
    return rc;
}
