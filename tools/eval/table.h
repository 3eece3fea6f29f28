// The comparison table of `dmdr eval --json` reports: one row per model, each the mean +- the
// sample standard deviation over its reports (seeds), beside the real-image floor the reports
// carry. Printed as a Markdown table, so that the terminal, the README and docs/experiments
// read the same text. `dmdr table` and `dmdr demo` print it.
#pragma once

#include <stdio.h>

#include "tensor/error.h"

typedef struct {
    const char *label;         // "DMD 1-step"
    const char *const *files;  // its eval reports (one per seed)
    int count;
} TableRow;

typedef enum { TABLE_MARKDOWN, TABLE_HTML } TableFormat;

// Reads every report and writes the table to out, as Markdown (the terminal, the README) or an
// HTML <table> (report.html): a line naming the judge and the reward model, the header, the
// floor (from the first report that has one), then one row per TableRow. Rows are compared
// only at one judge (the same SHA-256, or the same path for reports without one) and one
// sample count: a report measured by another judge, or at another count, is an error naming
// both. -1 with err for a file that cannot be read or is not an eval
// report (its row then reads "no results"; the rest are written).
int eval_table_write(FILE *out, const TableRow *rows, int n, TableFormat format, Error *err);
