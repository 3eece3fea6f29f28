#include "tools/progress.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_INTERVAL_S 0.2
#define PLAIN_LINES 10

double progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *format_duration(double seconds, char *buf, int size) {
    if (!(seconds >= 0)) seconds = 0;
    long s = (long)(seconds + 0.5);
    if (seconds < 60) snprintf(buf, (size_t)size, "%.1fs", seconds);
    else if (s < 3600) snprintf(buf, (size_t)size, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, (size_t)size, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    return buf;
}

void progress_begin(Progress *p, FILE *out, int64_t first_step, int64_t total, const char *unit,
                    double elapsed_before, bool quiet) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = isatty(fileno(out));
    p->quiet = quiet;
    p->unit = unit;
    p->first_step = first_step;
    p->total = total;
    p->start = progress_now();
    p->last_draw = -1e30;
    p->elapsed_before = elapsed_before;
    p->next_plain = first_step + 1;
}

double progress_elapsed(const Progress *p) { return p->elapsed_before + progress_now() - p->start; }

void progress_update(Progress *p, int64_t step, double loss, double items_per_s) {
    if (p->quiet) return;
    double now = progress_now();
    bool last = step >= p->total;
    if (!last && (p->tty ? now - p->last_draw < REDRAW_INTERVAL_S : step < p->next_plain)) return;
    p->last_draw = now;
    // time left from this session's pace (an earlier session ran at another speed, or not)
    double session = now - p->start, done = (double)(step - p->first_step);
    double left = done > 0 ? session / done * (double)(p->total - step) : 0;
    char elapsed_text[32], left_text[32], line[256];
    int n = snprintf(line, sizeof line, "step %lld/%lld  loss %.4f  %.1f %s  elapsed %s  left %s",
                     (long long)step, (long long)p->total, loss, items_per_s, p->unit,
                     format_duration(progress_elapsed(p), elapsed_text, sizeof elapsed_text),
                     format_duration(left, left_text, sizeof left_text));
    if (p->tty) {
        // pad over what the previous, longer line left on screen
        fprintf(p->out, "\r%s%*s", line, p->width > n ? p->width - n : 0, "");
        p->width = n;
    } else {
        fprintf(p->out, "%s\n", line);
        int64_t span = p->total - p->first_step, stride = span / PLAIN_LINES > 0 ? span / PLAIN_LINES : 1;
        while (p->next_plain <= step) p->next_plain += stride;
    }
    fflush(p->out);
}

void progress_end(Progress *p) {
    if (!p->quiet && p->tty && p->width > 0) fputc('\n', p->out);
    fflush(p->out);
    p->width = 0;
}
