// report.html: a run directory as one page a person opens in a browser, with nothing beside
// it (the curves inline SVG, the grids PNG data URIs, no script, no network):
//   - the summary: steps, wall time, throughput, the final weights;
//   - one plot per metric of metrics.jsonl against the step (losses, learning rate, gradient
//     norms, images/s; for a distillation DMD and fake losses, real_scale, the re-noising
//     time, the reward and its spread, PPO's clip fraction: whatever the run logged);
//   - the sample grids over the steps (samples/step-*.png) and any grid beside them;
//   - the judge's table of the reports in eval/*.json, when the folder has them;
//   - the resolved settings (config.ini).
// The training loop rewrites it at every metrics line, so an interrupted run has one;
// `dmdr report DIR` rewrites it from the files alone.
#pragma once

#include <stdio.h>

#include "tensor/error.h"
#include "tools/eval/table.h"

// <dir>/report.html for the run in dir (atomically) -> 0, or -1 with err.
int report_write_run(const char *dir, const char *title, Error *err);

// The parts a page is made of, for pages that gather several runs (the demo's).
void report_page_begin(FILE *out, const char *title);
void report_page_end(FILE *out);
// The run in dir under an <h2> heading: summary, curves, grids, settings.
void report_run_section(FILE *out, const char *dir, const char *heading);
// The judge's table of rows (eval_table_write's HTML) -> 0, or -1 with err (the table still
// written, the unreadable rows marked).
int report_table(FILE *out, const TableRow *rows, int n, Error *err);
// The PNG at path as an <img> with its caption ("(unreadable PNG)" when it is not one).
void report_figure(FILE *out, const char *path, const char *caption);
// The last sample grid of the run in dir (its highest step), as an <img> with caption ->
// whether there was one.
int report_last_grid(FILE *out, const char *dir, const char *caption);

// Writes path atomically from write(out, ctx) -> 0, or -1 with err.
int report_write_file(const char *path, int (*write)(FILE *out, void *ctx, Error *err),
                      void *ctx, Error *err);
