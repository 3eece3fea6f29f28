#include "tools/report/report.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kernels/check.h"
#include "tools/data/atomic_file.h"
#include "tools/html/html.h"
#include "tools/html/svg_plot.h"

#define PATH_MAX_LEN 4096
#define KEY_MAX 64
#define MAX_GRIDS 12      // grids shown over the steps: evenly spaced, the last always
#define MAX_FILES 4096    // files of one folder considered
#define CONFIG_MAX_BYTES (1 << 20)

// ---- metrics.jsonl --------------------------------------------------------------------------

typedef struct {
    char key[KEY_MAX];
    double *step, *value;
    int n, cap;
} Series;

typedef struct {
    Series *s;
    int count, cap;
    int lines, unreadable; // JSON objects read, lines that were not one
    double last_step, last_elapsed;
} Metrics;

static Series *series_of(Metrics *m, const char *key) {
    for (int i = 0; i < m->count; i++)
        if (strcmp(m->s[i].key, key) == 0) return &m->s[i];
    if (m->count == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 16;
        m->s = realloc(m->s, (size_t)m->cap * sizeof *m->s);
        DMDR_CHECK(m->s != NULL, "out of host memory");
    }
    Series *s = &m->s[m->count++];
    *s = (Series){0};
    snprintf(s->key, sizeof s->key, "%s", key);
    return s;
}

static void series_push(Series *s, double step, double value) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->step = realloc(s->step, (size_t)s->cap * sizeof *s->step);
        s->value = realloc(s->value, (size_t)s->cap * sizeof *s->value);
        DMDR_CHECK(s->step && s->value, "out of host memory");
    }
    s->step[s->n] = step, s->value[s->n++] = value;
}

// Every numeric key of every line, against the line's "step" (null: a non-finite value).
static void metrics_read(Metrics *m, const char *path) {
    *m = (Metrics){.last_step = NAN, .last_elapsed = NAN};
    FILE *f = fopen(path, "r");
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *o = cJSON_Parse(line);
        cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
        if (!cJSON_IsObject(o) || !cJSON_IsNumber(step)) {
            m->unreadable += line[0] != '\n';
            cJSON_Delete(o);
            continue;
        }
        m->lines++;
        m->last_step = step->valuedouble;
        for (cJSON *it = o->child; it; it = it->next) {
            if (!it->string || strcmp(it->string, "step") == 0) continue;
            if (!cJSON_IsNumber(it) && !cJSON_IsNull(it)) continue;
            double v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
            if (strcmp(it->string, "elapsed_s") == 0) {
                if (isfinite(v)) m->last_elapsed = v;
                continue; // the summary's wall time, not a curve
            }
            series_push(series_of(m, it->string), step->valuedouble, v);
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
}

static void metrics_free(Metrics *m) {
    for (int i = 0; i < m->count; i++) free(m->s[i].step), free(m->s[i].value);
    free(m->s);
}

// ---- files ------------------------------------------------------------------------------------

static bool exists(const char *path, long long *size) {
    struct stat st;
    if (stat(path, &st) != 0) return false;
    if (size) *size = (long long)st.st_size;
    return true;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// The names in dir ending in suffix, sorted (step-000500 before step-001000) -> count; *names
// malloc'd (free with names_free).
static int list_files(const char *dir, const char *suffix, char ***names) {
    *names = NULL;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    char **v = malloc(MAX_FILES * sizeof *v);
    DMDR_CHECK(v != NULL, "out of host memory");
    size_t sl = strlen(suffix);
    struct dirent *e;
    while (n < MAX_FILES && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l <= sl || strcmp(e->d_name + l - sl, suffix) != 0) continue;
        v[n] = strdup(e->d_name);
        DMDR_CHECK(v[n] != NULL, "out of host memory");
        n++;
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, by_name);
    *names = v;
    return n;
}

static void names_free(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

// ---- the page -----------------------------------------------------------------------------------

void report_page_begin(FILE *out, const char *title) {
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %Z", localtime(&now));
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>", out);
    html_text(out, title);
    fputs("</title>\n<style>\n"
          "body{font:14px/1.4 sans-serif;margin:24px;color:#222;max-width:1400px}\n"
          "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:32px}\n"
          "h3{font-size:15px}\n"
          ".plots,.grids{display:flex;flex-wrap:wrap;gap:12px}\n"
          "figure{margin:0}figcaption{font-size:12px;color:#555;text-align:center}\n"
          "figure img{image-rendering:pixelated;border:1px solid #ddd;max-width:420px}\n"
          "svg.plot{border:1px solid #ddd;background:#fff}\n"
          "svg.plot text{font:11px sans-serif;fill:#333}svg.plot .title{font-weight:bold}\n"
          "svg.plot .grid{stroke:#eee}svg.plot .frame{fill:none;stroke:#999}\n"
          "svg.plot .line{fill:none;stroke:#1f5fa8;stroke-width:1.5}svg.plot .dot{fill:#1f5fa8}\n"
          "table.results{border-collapse:collapse}table.results td,table.results th"
          "{border:1px solid #ccc;padding:3px 8px;text-align:right}\n"
          "table.results td:first-child{text-align:left}caption{text-align:left;color:#555}\n"
          "pre{background:#f6f6f6;padding:8px;overflow:auto}\n"
          "</style></head><body>\n<h1>",
          out);
    html_text(out, title);
    fprintf(out, "</h1>\n<p>Written by dmdr at %s. Self-contained: the plots are SVG, the "
                 "images embedded.</p>\n", when);
}

void report_page_end(FILE *out) { fputs("</body></html>\n", out); }

static void duration(char *out, size_t size, double s) {
    if (!isfinite(s)) snprintf(out, size, "unknown");
    else if (s < 60) snprintf(out, size, "%.1f s", s);
    else if (s < 3600) snprintf(out, size, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(out, size, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static void summary(FILE *out, const char *dir, const Metrics *m) {
    char wall[64], path[PATH_MAX_LEN];
    duration(wall, sizeof wall, m->last_elapsed);
    fputs("<p>", out);
    if (m->lines == 0) fputs("No metrics logged yet. ", out);
    else fprintf(out, "Last logged step <b>%.0f</b>; wall time <b>%s</b> (training, the "
                      "sessions of a resumed run added). ", m->last_step, wall);
    for (int i = 0; i < m->count; i++) {
        const Series *s = &m->s[i];
        size_t l = strlen(s->key);
        if (l < 6 || strcmp(s->key + l - 6, "_per_s") != 0 || s->n == 0) continue;
        double sum = 0;
        int k = 0;
        for (int j = 0; j < s->n; j++)
            if (isfinite(s->value[j])) sum += s->value[j], k++;
        if (k) fprintf(out, "Throughput (%.*s/s): last %.1f, mean %.1f. ", (int)(l - 6), s->key,
                       s->value[s->n - 1], sum / k);
    }
    if (m->unreadable) fprintf(out, "%d unreadable lines of metrics.jsonl skipped. ",
                               m->unreadable);
    const char *finals[] = {"model.safetensors", "classifier.safetensors"};
    for (int i = 0; i < 2; i++) {
        long long size;
        snprintf(path, sizeof path, "%s/%s", dir, finals[i]);
        if (exists(path, &size))
            fprintf(out, "Final weights: <code>%s</code> (%.2f MB). ", finals[i], size / 1e6);
    }
    fputs("</p>\n", out);
}

static void curves(FILE *out, const Metrics *m) {
    if (m->count == 0) return;
    fputs("<h3>Curves</h3>\n<div class=\"plots\">\n", out);
    for (int i = 0; i < m->count; i++)
        svg_line_plot(out, m->s[i].key, "step", m->s[i].step, m->s[i].value, m->s[i].n);
    fputs("</div>\n", out);
}

void report_figure(FILE *out, const char *path, const char *caption) {
    fputs("<figure>", out);
    if (!html_png(out, path, caption)) fputs("(unreadable PNG)", out);
    fputs("<figcaption>", out);
    html_text(out, caption);
    fputs("</figcaption></figure>\n", out);
}

// The grids of samples/ (at most MAX_GRIDS, evenly spaced, the last included) and the PNGs
// beside the run's files (final grids at other sampler settings).
static void grids(FILE *out, const char *dir) {
    char folder[PATH_MAX_LEN], path[PATH_MAX_LEN * 2];
    snprintf(folder, sizeof folder, "%s/samples", dir);
    char **steps, **beside;
    int n = list_files(folder, ".png", &steps), b = list_files(dir, ".png", &beside);
    if (n + b > 0) fputs("<h3>Samples</h3>\n<div class=\"grids\">\n", out);
    int shown = n < MAX_GRIDS ? n : MAX_GRIDS;
    for (int k = 0; k < shown; k++) {
        int i = shown == 1 ? n - 1 : (int)((long long)k * (n - 1) / (shown - 1));
        snprintf(path, sizeof path, "%s/%s", folder, steps[i]);
        char caption[300];
        snprintf(caption, sizeof caption, "%.*s", (int)(strlen(steps[i]) - 4), steps[i]);
        report_figure(out, path, caption);
    }
    for (int i = 0; i < b; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, beside[i]);
        report_figure(out, path, beside[i]);
    }
    if (n + b > 0) fputs("</div>\n", out);
    names_free(steps, n), names_free(beside, b);
}

int report_last_grid(FILE *out, const char *dir, const char *caption) {
    char folder[PATH_MAX_LEN], path[PATH_MAX_LEN * 2];
    snprintf(folder, sizeof folder, "%s/samples", dir);
    char **steps;
    int n = list_files(folder, ".png", &steps);
    if (n) {
        snprintf(path, sizeof path, "%s/%s", folder, steps[n - 1]);
        report_figure(out, path, caption);
    }
    names_free(steps, n);
    return n > 0;
}

static void settings(FILE *out, const char *dir) {
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof path, "%s/config.ini", dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char *text = malloc(CONFIG_MAX_BYTES + 1);
    DMDR_CHECK(text != NULL, "out of host memory");
    size_t len = fread(text, 1, CONFIG_MAX_BYTES, f);
    text[len] = '\0';
    fclose(f);
    fputs("<details><summary>Settings (config.ini: <code>--config</code> repeats the run)</summary><pre>",
          out);
    html_text(out, text);
    fputs("</pre></details>\n", out);
    free(text);
}

// The reports in <dir>/eval/*.json, one row each, labelled by file name.
static void evaluations(FILE *out, const char *dir) {
    char folder[PATH_MAX_LEN];
    snprintf(folder, sizeof folder, "%s/eval", dir);
    char **names;
    int n = list_files(folder, ".json", &names);
    if (n == 0) return;
    TableRow *rows = malloc((size_t)n * sizeof *rows);
    char **paths = malloc((size_t)n * sizeof *paths), **labels = malloc((size_t)n * sizeof *labels);
    DMDR_CHECK(rows && paths && labels, "out of host memory");
    for (int i = 0; i < n; i++) {
        size_t size = strlen(folder) + strlen(names[i]) + 2;
        paths[i] = malloc(size);
        labels[i] = strdup(names[i]);
        DMDR_CHECK(paths[i] && labels[i], "out of host memory");
        snprintf(paths[i], size, "%s/%s", folder, names[i]);
        labels[i][strlen(labels[i]) - 5] = '\0';
        rows[i] = (TableRow){labels[i], (const char *const *)&paths[i], 1};
    }
    fputs("<h3>Judged</h3>\n", out);
    Error err;
    if (report_table(out, rows, n, &err) != 0) {
        fputs("<p>", out);
        html_text(out, err.msg);
        fputs("</p>\n", out);
    }
    for (int i = 0; i < n; i++) free(paths[i]), free(labels[i]);
    free(paths), free(labels), free(rows);
    names_free(names, n);
}

int report_table(FILE *out, const TableRow *rows, int n, Error *err) {
    return eval_table_write(out, rows, n, TABLE_HTML, err);
}

void report_run_section(FILE *out, const char *dir, const char *heading) {
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    Metrics m;
    metrics_read(&m, path);
    fputs("<h2>", out);
    html_text(out, heading);
    fputs("</h2>\n<p><code>", out);
    html_text(out, dir);
    fputs("</code></p>\n", out);
    summary(out, dir, &m);
    curves(out, &m);
    grids(out, dir);
    evaluations(out, dir);
    settings(out, dir);
    metrics_free(&m);
}

int report_write_file(const char *path, int (*write)(FILE *out, void *ctx, Error *err),
                      void *ctx, Error *err) {
    AtomicFile a;
    if (atomic_file_open(&a, path, err) != 0) return -1;
    bool ok = write(a.f, ctx, err) == 0;
    return atomic_file_commit(&a, ok, err);
}

typedef struct {
    const char *dir, *title;
} RunPage;

static int write_run_page(FILE *out, void *ctx, Error *err) {
    (void)err;
    const RunPage *p = ctx;
    report_page_begin(out, p->title);
    report_run_section(out, p->dir, "The run");
    report_page_end(out);
    return 0;
}

int report_write_run(const char *dir, const char *title, Error *err) {
    char path[PATH_MAX_LEN];
    if (snprintf(path, sizeof path, "%s/report.html", dir) >= (int)sizeof path)
        return error_set(err, "%s: path too long", dir);
    RunPage p = {dir, title};
    return report_write_file(path, write_run_page, &p, err);
}
