#include "tools/data/atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int make_dirs(const char *path, Error *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return error_set(err, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return error_set(err, "cannot create directory '%s': %s", buf, strerror(errno));
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
            return error_set(err, "'%s' exists and is not a directory", buf);
        *p = saved;
        if (saved == '\0') return 0;
    }
}

bool path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}
