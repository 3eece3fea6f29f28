// The one-line progress display of a training loop:
//   step 1200/6000  loss 0.4123  312.5 img/s  elapsed 3m12s  left 12m48s
// On a terminal the line is redrawn in place (\r) at most a few times a second; when the
// output is not a terminal (a log file, CI) a plain line is written at every tenth of the run
// instead, so logs stay short; `quiet` writes nothing.
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *out;
    bool tty, quiet;
    const char *unit;          // "img/s", "pts/s"
    int64_t first_step, total; // steps already done when the display began; the last step
    double start, last_draw;   // progress_now() seconds
    double elapsed_before;     // seconds of earlier sessions of a resumed run
    int64_t next_plain;        // the step of the next plain line (not a terminal)
    int width;                 // of the last drawn line, to blank its leftovers
} Progress;

// Monotonic seconds.
double progress_now(void);

// A display for steps first_step+1 .. total on `out`; elapsed_before counts earlier sessions.
void progress_begin(Progress *p, FILE *out, int64_t first_step, int64_t total, const char *unit,
                    double elapsed_before, bool quiet);
// After step `step` (1-based count of steps done): its loss and the current throughput.
void progress_update(Progress *p, int64_t step, double loss, double items_per_s);
// Ends the line (a terminal) so later output starts on a fresh one.
void progress_end(Progress *p);
// Total seconds of the run so far, earlier sessions included.
double progress_elapsed(const Progress *p);

// "1h02m", "3m12s", "12.3s"
const char *format_duration(double seconds, char *buf, int size);
