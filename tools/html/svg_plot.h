// A line plot as inline SVG: the curves of a run's metrics.jsonl in a page that needs no
// script. Axes with round-number ticks; a logarithmic y axis when the values are positive and
// span more than a factor of 30 (losses); more points than the plot has pixels for are
// averaged in buckets, so a 100000-step run draws as fast as a short one.
#pragma once

#include <stdio.h>

// y against x (n points, in x order); non-finite values are skipped.
void svg_line_plot(FILE *out, const char *title, const char *x_label, const double *x,
                   const double *y, int n);
