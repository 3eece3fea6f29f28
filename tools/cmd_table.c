// dmdr table LABEL=REPORT[,REPORT...] ...: the comparison table of `dmdr eval --json` reports
// (tools/eval/table.h), one row per label, each the mean +- std over its reports (the seeds),
// beside the real-image floor. Markdown, on stdout or into --out FILE.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "tools/commands.h"
#include "tools/eval/table.h"

#define TABLE_MAX_ROWS 64
#define TABLE_MAX_REPORTS 1024

static int usage(const char *why, const char *what) {
    fprintf(stderr, "dmdr table: %s%s%s (see `dmdr help table`)\n", why, what ? ": " : "",
            what ? what : "");
    return 2;
}

int table_main(int argc, char **argv) {
    TableRow rows[TABLE_MAX_ROWS];
    const char *files[TABLE_MAX_REPORTS];
    char *texts[TABLE_MAX_ROWS];
    int n = 0, total = 0, rc = 2;
    const char *out_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_command_help("table");
            rc = 0;
            goto done;
        }
        if (strcmp(a, "--out") == 0) {
            if (i + 1 >= argc) {
                rc = usage("--out without a value", NULL);
                goto done;
            }
            out_path = argv[++i];
            continue;
        }
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) == 0 || !eq || eq == a || !eq[1]) {
            rc = usage("expected LABEL=REPORT[,REPORT...] or --out FILE, got", a);
            goto done;
        }
        if (n == TABLE_MAX_ROWS) {
            rc = usage("too many rows", a);
            goto done;
        }
        // the label, then the reports split at commas, in one copy of the argument
        char *text = texts[n] = strdup(a);
        DMDR_CHECK(text != NULL, "out of host memory");
        text[eq - a] = '\0';
        rows[n] = (TableRow){.label = text, .files = files + total, .count = 0};
        n++;
        for (char *f = text + (eq - a) + 1; f;) {
            char *comma = strchr(f, ',');
            if (comma) *comma = '\0';
            if (!*f) {
                rc = usage("an empty report name in", a);
                goto done;
            }
            if (total == TABLE_MAX_REPORTS) {
                rc = usage("too many reports", a);
                goto done;
            }
            files[total++] = f;
            rows[n - 1].count++;
            f = comma ? comma + 1 : NULL;
        }
    }
    if (n == 0) {
        rc = usage("no rows", "give LABEL=REPORT[,REPORT...] for each");
        goto done;
    }
    FILE *out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) {
        fprintf(stderr, "dmdr table: cannot write --out '%s': %s\n", out_path, strerror(errno));
        rc = 1;
        goto done;
    }
    Error err;
    rc = eval_table_write(out, rows, n, TABLE_MARKDOWN, &err) == 0 ? 0 : 1;
    if (rc) fprintf(stderr, "dmdr table: %s\n", err.msg);
    if (out_path && fclose(out) != 0 && rc == 0) {
        fprintf(stderr, "dmdr table: cannot write '%s': %s\n", out_path, strerror(errno));
        rc = 1;
    }
done:
    for (int i = 0; i < n; i++) free(texts[i]);
    return rc;
}
