// Helpers of the fuzz targets (fuzz.h): the per-process temporary folder, file writes, the
// configuration round trip, and the stubs a target needs to link.
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/threads.h"
#include "test/fuzz/fuzz.h"
#include "tools/commands.h"

static char tmpdir[4096];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tmpdir(void) {
    if (tmpdir[0]) nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmpdir(void) {
    if (tmpdir[0]) return tmpdir;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/dmdr-fuzz-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror(tmpdir);
        abort();
    }
    atexit(remove_tmpdir);
    threads_set(1); // the inputs are small; one thread keeps every run the same and fast
    return tmpdir;
}

const char *fuzz_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", fuzz_tmpdir(), name);
    return buf;
}

void fuzz_write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

char *fuzz_string(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

void fuzz_refused(const char *msg) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") && strcmp(getenv("FUZZ_VERBOSE"), "0") != 0;
    if (!msg[0]) fuzz_fail("a refused input gets an error message", NULL);
    if (verbose) fprintf(stderr, "refused: %s\n", msg);
}

// The line of text starting at p, quoted into buf with C escapes for other bytes than
// printable ASCII (a tab or a \v at the end of a value is the kind of thing to see).
static const char *quote_line(const char *p, char *buf, size_t n) {
    size_t used = 0;
    buf[used++] = '"';
    for (; *p && *p != '\n' && used + 6 < n; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') buf[used++] = (char)c;
        else used += (size_t)snprintf(buf + used, n - used, "\\x%02x", c);
    }
    buf[used++] = '"';
    buf[used] = '\0';
    return buf;
}

void fuzz_check_config_round_trip(const Config *cfg) {
    char *ini = config_to_ini(cfg);
    Config back;
    config_defaults(&back);
    // `preset =` names where the defaults came from; a load checks it but applies nothing
    memcpy(back.preset, cfg->preset, sizeof back.preset);
    Error err = {{0}};
    if (config_load_string(&back, ini, "written", NULL, &err) != 0)
        fuzz_fail("config_to_ini's text loads back", err.msg);
    char *again = config_to_ini(&back);
    if (strcmp(ini, again) != 0) {
        const char *a = ini, *b = again, *line_a = ini, *line_b = again;
        for (; *a && *a == *b; a++, b++)
            if (*a == '\n') line_a = a + 1, line_b = b + 1;
        char detail[2200], qa[1024], qb[1024];
        snprintf(detail, sizeof detail, "written:      %s\nread back as: %s",
                 quote_line(line_a, qa, sizeof qa), quote_line(line_b, qb, sizeof qb));
        fuzz_fail("config_to_ini's text loads back to the same configuration", detail);
    }
    free(again);
    free(ini);
}

void fuzz_fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz: property failed: %s\n%s\n", what, detail ? detail : "");
    abort();
}

// tools/commands.c (command_config, which the commands' flag tables need) calls this for
// --help; it lives beside the command table in tools/dmdr.c, which has main(). No target asks
// for help.
void print_command_help(const char *name) {
    fprintf(stderr, "fuzz: no help for %s here\n", name);
}
