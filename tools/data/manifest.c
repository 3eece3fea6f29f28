#include "tools/data/manifest.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/data/sha256.h"

#define LEVELS_UP 8

typedef struct {
    long long size;
    char sha[65];
    char path[PATH_MAX];
} Entry;

// The next entry of the manifest f -> 1, 0 at the end, -1 with err for a malformed line.
static int next_entry(FILE *f, const char *manifest, int *line, Entry *e, Error *err) {
    char text[PATH_MAX + 128];
    while (fgets(text, sizeof text, f)) {
        (*line)++;
        char *p = text;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '#' || *p == '\n' || *p == '\0') continue;
        int used = 0;
        if (sscanf(p, "%lld %64s %n", &e->size, e->sha, &used) != 2 || used == 0 ||
            strlen(e->sha) != 64 || e->size < 0)
            return error_set(err, "%s:%d: expected SIZE SHA256 PATH", manifest, *line);
        snprintf(e->path, sizeof e->path, "%s", p + used);
        e->path[strcspn(e->path, "\r\n")] = '\0';
        if (!e->path[0] || e->path[0] == '/' || strstr(e->path, ".."))
            return error_set(err, "%s:%d: the path must be relative, inside the manifest's "
                                  "folder", manifest, *line);
        return 1;
    }
    return 0;
}

// The file at path against its entry; what is wrong names the manifest and the restore.
static int check_entry(const Entry *e, const char *path, const char *manifest, Error *err) {
    struct stat st;
    if (stat(path, &st) != 0)
        return error_set(err, "%s is missing (listed in %s): restore it from the repository, "
                              "e.g. `git checkout -- %s` in the clone", path, manifest, path);
    char sha[65];
    long long size;
    if (sha256_file(path, sha, &size, err) != 0) return -1;
    if (size != e->size || strcmp(sha, e->sha) != 0)
        return error_set(err, "%s is damaged: %lld bytes, SHA-256 %.16s..., where %s lists %lld "
                              "bytes, %.16s... (a cut download, a Git LFS pointer, a local "
                              "change?): restore it with `git checkout -- %s` in the clone",
                         path, size, sha, manifest, e->size, e->sha, path);
    return 0;
}

int manifest_check(const char *path, bool *listed, Error *err) {
    if (listed) *listed = false;
    char real[PATH_MAX], dir[PATH_MAX], manifest[PATH_MAX + 32];
    if (!realpath(path, real)) return 0; // the loader reports a missing file itself
    snprintf(dir, sizeof dir, "%s", real);
    for (int up = 0; up < LEVELS_UP; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) return 0;
        *slash = '\0';
        snprintf(manifest, sizeof manifest, "%s/%s", dir, MANIFEST_NAME);
        FILE *f = fopen(manifest, "r");
        if (!f) continue;
        const char *rel = real + strlen(dir) + 1;
        Entry e;
        int line = 0, rc;
        while ((rc = next_entry(f, manifest, &line, &e, err)) == 1)
            if (strcmp(e.path, rel) == 0) break;
        fclose(f);
        if (rc < 0) return -1;
        if (rc == 0) return 0; // this tree's manifest does not list it: not a shipped file
        if (listed) *listed = true;
        return check_entry(&e, path, manifest, err);
    }
    return 0;
}

int manifest_check_all(const char *manifest_path, Error *err) {
    FILE *f = fopen(manifest_path, "r");
    if (!f) return error_set(err, "%s: cannot open: %s", manifest_path, strerror(errno));
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", manifest_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    Entry e;
    int line = 0, rc, count = 0;
    while ((rc = next_entry(f, manifest_path, &line, &e, err)) == 1) {
        char path[2 * PATH_MAX + 2];
        snprintf(path, sizeof path, "%s/%s", dir, e.path);
        if ((rc = check_entry(&e, path, manifest_path, err)) != 0) break;
        count++;
    }
    fclose(f);
    return rc < 0 ? -1 : count;
}
