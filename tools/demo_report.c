// The demo's report.html (tools/demo.h): one page with the comparison table, the last sample
// grid of each stage side by side, and each stage's run (tools/report/report.h).
#include <stdio.h>
#include <string.h>

#include "tools/config.h"
#include "tools/data/atomic_file.h"
#include "tools/demo.h"
#include "tools/report/report.h"

const DemoStage demo_stages[DEMO_STAGES] = {
    {"teacher", "Teacher (train-teacher)"},
    {"classifier", "Judge classifier (train-classifier)"},
    {"dmd", "Stage 1: DMD (distill)"},
    {"dmdr", "Stage 2: DMDR (distill --rl backprop)"},
};

void demo_rows(bool from_scratch, DemoRow rows[DEMO_ROWS]) {
    rows[0] = (DemoRow){"teacher, 50 steps", "teacher-cfg1"};
    rows[1] = (DemoRow){"teacher, 50 steps, CFG 1.5", "teacher-cfg1.5"};
    rows[2] = (DemoRow){"DMD generator", "dmd"};
    rows[3] = (DemoRow){from_scratch ? "DMDR generator (own reward)" : "DMDR generator", "dmdr"};
}

static int write_demo_page(FILE *out, void *ctx, Error *err) {
    (void)err;
    const char *dir = ctx;
    char title[CONFIG_PATH_MAX + 32], sub[CONFIG_PATH_MAX + 64];
    snprintf(title, sizeof title, "dmdr demo: %s", dir);
    report_page_begin(out, title);

    fputs("<h2>The comparison</h2>\n", out);
    snprintf(sub, sizeof sub, "%s/teacher", dir);
    DemoRow rows[DEMO_ROWS];
    demo_rows(path_exists(sub), rows);
    static char json[DEMO_ROWS][CONFIG_PATH_MAX + 32];
    static const char *files[DEMO_ROWS];
    TableRow table[DEMO_ROWS];
    int n = 0;
    for (int i = 0; i < DEMO_ROWS; i++) {
        snprintf(json[i], sizeof json[i], "%s/eval/%s.json", dir, rows[i].file);
        files[i] = json[i];
        if (path_exists(json[i])) table[n++] = (TableRow){rows[i].label, &files[i], 1};
    }
    Error table_err;
    if (n == 0) fputs("<p>No evaluation yet.</p>\n", out);
    else if (report_table(out, table, n, &table_err) != 0)
        fprintf(out, "<p>%s</p>\n", table_err.msg);

    fputs("<h2>Samples side by side</h2>\n<p>The last grid of each run: one row per class, at "
          "the sampler settings of its run.</p>\n<div class=\"grids\">\n", out);
    snprintf(sub, sizeof sub, "%s/eval/teacher-grid.png", dir); // the shipped teacher's
    if (path_exists(sub)) report_figure(out, sub, "Teacher (shipped), 50 Euler steps, no CFG");
    for (int i = 0; i < DEMO_STAGES; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, demo_stages[i].folder);
        report_last_grid(out, sub, demo_stages[i].heading);
    }
    fputs("</div>\n", out);
    for (int i = 0; i < DEMO_STAGES; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, demo_stages[i].folder);
        if (path_exists(sub)) report_run_section(out, sub, demo_stages[i].heading);
    }
    report_page_end(out);
    return 0;
}

int demo_write_report(const char *dir, Error *err) {
    char path[CONFIG_PATH_MAX + 32];
    if (snprintf(path, sizeof path, "%s/report.html", dir) >= (int)sizeof path)
        return error_set(err, "%s: path too long", dir);
    return report_write_file(path, write_demo_page, (void *)dir, err);
}
