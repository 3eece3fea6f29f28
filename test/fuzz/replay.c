// The fuzz targets without libFuzzer: runs each target over files, so the committed corpus
// and every regression input replay in the ordinary build (meson test fuzz-corpus), under
// the sanitizers in CI's ASan build. A crash stops the process (meson reports it; the last
// "replay" line names the input); otherwise it prints check's summary line.
//
//   fuzz_replay --all DIR            DIR/corpus/<target>/* and DIR/regressions/<target>/*
//   fuzz_replay TARGET PATH...       files, or every file of a folder, for one target
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test/fuzz/fuzz.h"

static const struct {
    const char *name;
    int (*run)(const uint8_t *data, size_t size);
} targets[] = {
    {"safetensors", fuzz_safetensors}, {"checkpoint", fuzz_checkpoint},
    {"idx", fuzz_idx},                 {"png_folder", fuzz_png_folder},
    {"ini", fuzz_ini},                 {"flags", fuzz_flags},
};
#define TARGET_COUNT ((int)(sizeof targets / sizeof targets[0]))

static int replayed;

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_file(int t, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *data = malloc(cap);
    size_t got;
    while (data && (got = fread(data + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap) data = realloc(data, cap *= 2);
    fclose(f);
    if (!data) abort();
    printf("replay %s %s (%zu bytes)\n", targets[t].name, path, n);
    fflush(stdout);
    // libFuzzer hands the target an exactly sized buffer: copy, so ASan sees overreads
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) abort();
    memcpy(exact, data, n);
    free(data);
    targets[t].run(exact, n);
    free(exact);
    replayed++;
}

// path: a file, or a folder whose visible files replay in name order; a missing folder is
// fine when `optional` (a target without regressions yet).
static void replay_path(int t, const char *path, int optional) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (optional) return;
        perror(path);
        exit(1);
    }
    if (!S_ISDIR(st.st_mode)) {
        replay_file(t, path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        exit(1);
    }
    char **names = NULL;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (size_t)(count + 1) * sizeof *names);
        if (!names || !(names[count++] = strdup(e->d_name))) abort();
    }
    closedir(d);
    if (count > 1) qsort(names, (size_t)count, sizeof *names, compare_names);
    for (int i = 0; i < count; i++) {
        size_t n = strlen(path) + strlen(names[i]) + 2;
        char *p = malloc(n);
        if (!p) abort();
        snprintf(p, n, "%s/%s", path, names[i]);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) replay_file(t, p);
        free(p);
        free(names[i]);
    }
    free(names);
}

static int usage(void) {
    fprintf(stderr, "usage: fuzz_replay --all DIR | fuzz_replay TARGET PATH...\ntargets:");
    for (int t = 0; t < TARGET_COUNT; t++) fprintf(stderr, " %s", targets[t].name);
    fprintf(stderr, "\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--all") == 0) {
        for (int t = 0; t < TARGET_COUNT; t++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/corpus/%s", argv[2], targets[t].name);
            int before = replayed;
            replay_path(t, path, 0);
            if (replayed == before) {
                fprintf(stderr, "%s: no seed inputs\n", path);
                return 1;
            }
            snprintf(path, sizeof path, "%s/regressions/%s", argv[2], targets[t].name);
            replay_path(t, path, 1);
        }
    } else if (argc >= 3) {
        int t = 0;
        while (t < TARGET_COUNT && strcmp(argv[1], targets[t].name) != 0) t++;
        if (t == TARGET_COUNT) return usage();
        for (int i = 2; i < argc; i++) replay_path(t, argv[i], 0);
    } else {
        return usage();
    }
    // the summary line of a check suite, which CI's tally reads
    printf("100%%: Checks: %d, Failures: 0, Errors: 0\n", replayed);
    return 0;
}
