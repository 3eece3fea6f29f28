#include "tools/html/svg_plot.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "tools/html/html.h"

enum { WIDTH = 420, HEIGHT = 240, LEFT = 64, RIGHT = 14, TOP = 26, BOTTOM = 38, BUCKETS = 360 };

typedef struct {
    double lo, hi; // the axis range, in plotted units (log10 of y on a log axis)
    bool log;
} Axis;

// The tick spacing: 1, 2 or 5 times a power of ten, about `count` ticks over span.
static double tick_step(double span, int count) {
    double raw = span / count, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static double px_x(const Axis *a, double v) {
    return LEFT + (v - a->lo) / (a->hi - a->lo) * (WIDTH - LEFT - RIGHT);
}

static double px_y(const Axis *a, double v) {
    double u = a->log ? log10(v) : v;
    return HEIGHT - BOTTOM - (u - a->lo) / (a->hi - a->lo) * (HEIGHT - TOP - BOTTOM);
}

// A degenerate range (one value) gets room around it.
static void widen(Axis *a) {
    if (a->hi > a->lo) return;
    double d = a->lo != 0 ? fabs(a->lo) * 0.1 : 1.0;
    a->lo -= d, a->hi += d;
}

static void x_ticks(FILE *out, const Axis *ax) {
    double step = tick_step(ax->hi - ax->lo, 5);
    for (double v = ceil(ax->lo / step) * step; v <= ax->hi + step * 1e-9; v += step) {
        double x = px_x(ax, v);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"grid\"/>"
                     "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                x, TOP, x, HEIGHT - BOTTOM, x, HEIGHT - BOTTOM + 14, fabs(v) < step * 1e-9 ? 0 : v);
    }
}

static void y_tick(FILE *out, const Axis *ay, double value) {
    double y = px_y(ay, value);
    fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>"
                 "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n",
            LEFT, y, WIDTH - RIGHT, y, LEFT - 4, y + 4, value);
}

static void y_ticks(FILE *out, const Axis *ay) {
    if (ay->log) {
        // powers of ten, with 2 and 5 between them when the range holds fewer than two
        bool sparse = floor(ay->hi) - ceil(ay->lo) < 1;
        for (double e = floor(ay->lo); e <= ceil(ay->hi); e++)
            for (int m = 1; m <= 5; m += sparse ? (m == 1 ? 1 : 3) : 5) {
                double u = e + log10(m);
                if (u >= ay->lo - 1e-9 && u <= ay->hi + 1e-9) y_tick(out, ay, pow(10, u));
            }
        return;
    }
    double step = tick_step(ay->hi - ay->lo, 4);
    for (double v = ceil(ay->lo / step) * step; v <= ay->hi + step * 1e-9; v += step)
        y_tick(out, ay, fabs(v) < step * 1e-9 ? 0 : v);
}

void svg_line_plot(FILE *out, const char *title, const char *x_label, const double *x,
                   const double *y, int n) {
    // the finite points, averaged in at most BUCKETS buckets of consecutive points
    int finite = 0;
    for (int i = 0; i < n; i++) finite += isfinite(x[i]) && isfinite(y[i]);
    int per = finite > BUCKETS ? (finite + BUCKETS - 1) / BUCKETS : 1, m = 0;
    double *px = malloc(sizeof(double) * (size_t)(finite / per + 2));
    double *py = malloc(sizeof(double) * (size_t)(finite / per + 2));
    double sx = 0, sy = 0;
    int in_bucket = 0;
    for (int i = 0; i < n && px && py; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        sx += x[i], sy += y[i];
        if (++in_bucket == per) px[m] = sx / per, py[m++] = sy / per, sx = sy = 0, in_bucket = 0;
    }
    if (in_bucket && px && py) px[m] = sx / in_bucket, py[m++] = sy / in_bucket;

    Axis ax = {INFINITY, -INFINITY, false}, ay = {INFINITY, -INFINITY, false};
    for (int i = 0; i < m; i++) {
        ax.lo = fmin(ax.lo, px[i]), ax.hi = fmax(ax.hi, px[i]);
        ay.lo = fmin(ay.lo, py[i]), ay.hi = fmax(ay.hi, py[i]);
    }
    ay.log = m > 1 && ay.lo > 0 && ay.hi / ay.lo > 30;
    if (ay.log) ay.lo = log10(ay.lo), ay.hi = log10(ay.hi);
    widen(&ax), widen(&ay);

    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" width=\"%d\" "
                 "height=\"%d\" viewBox=\"0 0 %d %d\">\n<text x=\"%d\" y=\"16\" class=\"title\">",
            WIDTH, HEIGHT, WIDTH, HEIGHT, LEFT);
    html_text(out, title);
    if (ay.log) fputs(" (log scale)", out);
    fputs("</text>\n", out);
    if (m == 0) {
        fprintf(out, "<text x=\"%d\" y=\"%d\">no finite values</text>\n</svg>\n", LEFT,
                HEIGHT / 2);
        free(px), free(py);
        return;
    }
    x_ticks(out, &ax);
    y_ticks(out, &ay);
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", LEFT,
            TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (LEFT + WIDTH - RIGHT) / 2,
            HEIGHT - 6);
    html_text(out, x_label);
    fputs("</text>\n<polyline class=\"line\" points=\"", out);
    for (int i = 0; i < m; i++) fprintf(out, "%.1f,%.1f ", px_x(&ax, px[i]), px_y(&ay, py[i]));
    fputs("\"/>\n", out);
    if (m == 1) fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" class=\"dot\"/>\n",
                        px_x(&ax, px[0]), px_y(&ay, py[0]));
    fputs("</svg>\n", out);
    free(px), free(py);
}
