// dmdr report DIR: writes DIR/report.html again from the files alone, for a run directory
// (tools/report/report.h; the training loop writes the same page as it goes) or for the
// demo's folder (demo_write_report).
#include <string.h>

#include "tools/commands.h"
#include "tools/data/atomic_file.h"
#include "tools/report/report.h"

static bool has(const char *dir, const char *name) {
    char path[CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path_exists(path);
}

int report_main(int argc, char **argv) {
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_command_help("report");
        return 0;
    }
    if (argc != 2 || strncmp(argv[1], "--", 2) == 0) {
        fprintf(stderr, "dmdr report: expected one run directory or demo folder (see `dmdr "
                        "help report`)\n");
        return 2;
    }
    const char *dir = argv[1];
    if (strlen(dir) >= CONFIG_PATH_MAX) {
        fprintf(stderr, "dmdr report: the folder name is too long: %s\n", dir);
        return 2;
    }
    Error err;
    int rc;
    if (has(dir, "config.ini") || has(dir, "metrics.jsonl")) {
        char title[CONFIG_PATH_MAX + 32];
        snprintf(title, sizeof title, "dmdr run: %s", dir);
        rc = report_write_run(dir, title, &err);
    } else if (has(dir, "teacher") || has(dir, "dmd") || has(dir, "eval")) {
        rc = demo_write_report(dir, &err);
    } else {
        fprintf(stderr, "dmdr report: %s is neither a run directory (no config.ini or "
                        "metrics.jsonl) nor a demo folder (no teacher/, dmd/ or eval/)\n", dir);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "dmdr report: %s\n", err.msg);
        return 1;
    }
    printf("%s/report.html\n", dir);
    return 0;
}
