#include "tools/eval/table.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "tools/html/html.h"

#define REPORT_MAX_BYTES (1 << 20) // an eval report is about 1 KB
#define CELL_MAX 96
#define CONFIG_TEXT_MAX 1024 // a judge's or reward model's path

// The columns after the model's: key in the report, header, printf format of one value.
typedef struct {
    const char *key, *header, *format;
} Column;

static const Column columns[] = {
    {"nfe", "NFE", "%.0f"},         {"images_per_s", "images/s", "%.1f"},
    {"fid", "FID", "%.2f"},         {"precision", "precision", "%.3f"},
    {"recall", "recall", "%.3f"},   {"accuracy", "class acc", "%.3f"},
    {"is", "IS", "%.2f"},           {"reward", "reward", "%.3f"},
};
#define COLUMNS ((int)(sizeof columns / sizeof columns[0]))

static cJSON *read_report(const char *path, Error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        error_set(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(REPORT_MAX_BYTES + 1);
    DMDR_CHECK(text != NULL, "out of host memory");
    size_t len = fread(text, 1, REPORT_MAX_BYTES + 1, f);
    fclose(f);
    cJSON *o = NULL;
    if (len > REPORT_MAX_BYTES) {
        error_set(err, "%s: larger than %d bytes: not an eval report", path, REPORT_MAX_BYTES);
    } else {
        text[len] = '\0';
        o = cJSON_Parse(text);
        if (!cJSON_IsObject(o) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "fid")) ||
            !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "samples")) ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "classifier"))) {
            error_set(err, "%s: not a `dmdr eval --json` report (no fid, samples or classifier)",
                      path);
            cJSON_Delete(o);
            o = NULL;
        }
    }
    free(text);
    return o;
}

static double number(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *text_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

// "m +- s" of n values (s: the sample standard deviation), "m" for one, "-" for none
static void cell(char *out, size_t size, const char *format, const double *v, int n) {
    double sum = 0, sq = 0;
    int finite = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) sum += v[i], finite++;
    if (finite == 0) {
        snprintf(out, size, "-");
        return;
    }
    double mean = sum / finite;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) sq += (v[i] - mean) * (v[i] - mean);
    char m[32], s[32];
    snprintf(m, sizeof m, format, mean);
    if (finite == 1) {
        snprintf(out, size, "%s", m);
        return;
    }
    snprintf(s, sizeof s, format, sqrt(sq / (finite - 1)));
    snprintf(out, size, "%s ± %s", m, s);
}

// One row's cells after the label: the columns' "m +- s" (cells[c], c < COLUMNS).
static void row_cells(char cells[][CELL_MAX], cJSON *const *reports, int n) {
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    DMDR_CHECK(v != NULL, "out of host memory");
    for (int c = 0; c < COLUMNS; c++) {
        for (int i = 0; i < n; i++) v[i] = number(reports[i], columns[c].key);
        cell(cells[c], CELL_MAX, columns[c].format, v, n);
    }
    free(v);
}

// Whether report r compares with the first one: the same judge at the same sample count.
static int check_comparable(const cJSON *first, const char *first_path, const cJSON *r,
                            const char *path, Error *err) {
    // the same network under any path: by its digest where both reports carry one
    const char *a = text_of(first, "classifier_sha256"), *b = text_of(r, "classifier_sha256");
    bool same = a[0] && b[0] ? strcmp(a, b) == 0
                             : strcmp(text_of(first, "classifier"), text_of(r, "classifier")) == 0;
    if (!same)
        return error_set(err, "%s is judged by %s, %s by %s: a table compares one judge's figures",
                         path, text_of(r, "classifier"), first_path, text_of(first, "classifier"));
    if (number(first, "samples") != number(r, "samples"))
        return error_set(err, "%s measures %.0f images, %s %.0f: a table compares one sample count",
                         path, number(r, "samples"), first_path, number(first, "samples"));
    return 0;
}

// The table as text: one set of cells written out as Markdown or as HTML.
typedef struct {
    char caption[2 * CONFIG_TEXT_MAX];
    int rows;              // the floor (when a report has one) and one per TableRow
    char (*label)[CELL_MAX];
    char (*seeds)[CELL_MAX], (*samples)[CELL_MAX];
    char (*cells)[COLUMNS][CELL_MAX];
    char (*missing)[CELL_MAX]; // "" or why the row has no figures
} Cells;

static void cells_alloc(Cells *t, int rows) {
    t->rows = 0;
    size_t n = (size_t)rows + 1;
    t->label = calloc(n, sizeof *t->label);
    t->seeds = calloc(n, sizeof *t->seeds);
    t->samples = calloc(n, sizeof *t->samples);
    t->cells = calloc(n, sizeof *t->cells);
    t->missing = calloc(n, sizeof *t->missing);
    DMDR_CHECK(t->label && t->seeds && t->samples && t->cells && t->missing,
               "out of host memory");
}

static void cells_free(Cells *t) {
    free(t->label), free(t->seeds), free(t->samples), free(t->cells), free(t->missing);
}

static int build(Cells *t, const TableRow *rows, int n, Error *err) {
    int total = 0;
    for (int i = 0; i < n; i++) total += rows[i].count;
    cJSON **reports = calloc((size_t)(total > 0 ? total : 1), sizeof *reports);
    DMDR_CHECK(reports != NULL, "out of host memory");
    cells_alloc(t, n + 1);
    t->caption[0] = '\0';
    int rc = 0, k = 0;
    const cJSON *first = NULL;
    const char *first_path = NULL;
    Error row_err;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < rows[i].count; j++, k++) {
            reports[k] = read_report(rows[i].files[j], &row_err);
            if (reports[k] && first &&
                check_comparable(first, first_path, reports[k], rows[i].files[j], &row_err)) {
                cJSON_Delete(reports[k]);
                reports[k] = NULL;
            }
            if (!reports[k] && rc == 0) rc = -1, *err = row_err;
            if (reports[k] && !first) first = reports[k], first_path = rows[i].files[j];
        }
    if (first) {
        const char *reward = text_of(first, "reward_model");
        snprintf(t->caption, sizeof t->caption, "judge: %s; reward column: %s",
                 text_of(first, "classifier"), reward[0] ? reward : "the judge's own log p(y|x)");
    }
    for (k = 0; k < total; k++) {
        cJSON *floor = reports[k] ? cJSON_GetObjectItemCaseSensitive(reports[k], "floor") : NULL;
        if (!cJSON_IsObject(floor)) continue;
        int r = t->rows++;
        snprintf(t->label[r], CELL_MAX, "real training images (floor)");
        snprintf(t->seeds[r], CELL_MAX, "-");
        snprintf(t->samples[r], CELL_MAX, "%.0f", number(floor, "samples"));
        row_cells(t->cells[r], &floor, 1);
        break;
    }
    k = 0;
    for (int i = 0; i < n; i++) {
        cJSON *const *mine = reports + k;
        int have = 0, r = t->rows++;
        for (int j = 0; j < rows[i].count; j++) have += mine[j] != NULL;
        snprintf(t->label[r], CELL_MAX, "%s", rows[i].label);
        if (have < rows[i].count) {
            snprintf(t->missing[r], CELL_MAX, "no results: %d of %d reports unreadable",
                     rows[i].count - have, rows[i].count);
        } else {
            snprintf(t->seeds[r], CELL_MAX, "%d", rows[i].count);
            snprintf(t->samples[r], CELL_MAX, "%.0f", number(mine[0], "samples"));
            row_cells(t->cells[r], mine, rows[i].count);
        }
        k += rows[i].count;
    }
    for (k = 0; k < total; k++) cJSON_Delete(reports[k]);
    free(reports);
    return rc;
}

static void write_markdown(FILE *out, const Cells *t) {
    if (t->caption[0]) fprintf(out, "%s\n\n", t->caption);
    fprintf(out, "| model | seeds | samples |");
    for (int c = 0; c < COLUMNS; c++) fprintf(out, " %s |", columns[c].header);
    fprintf(out, "\n|---|---|---|");
    for (int c = 0; c < COLUMNS; c++) fprintf(out, "---|");
    fputc('\n', out);
    for (int r = 0; r < t->rows; r++) {
        if (t->missing[r][0]) {
            fprintf(out, "| %s | %s |\n", t->label[r], t->missing[r]);
            continue;
        }
        fprintf(out, "| %s | %s | %s |", t->label[r], t->seeds[r], t->samples[r]);
        for (int c = 0; c < COLUMNS; c++) fprintf(out, " %s |", t->cells[r][c]);
        fputc('\n', out);
    }
}

static void write_html(FILE *out, const Cells *t) {
    fprintf(out, "<table class=\"results\">\n");
    if (t->caption[0]) {
        fprintf(out, "<caption>");
        html_text(out, t->caption);
        fprintf(out, "</caption>\n");
    }
    fprintf(out, "<tr><th>model</th><th>seeds</th><th>samples</th>");
    for (int c = 0; c < COLUMNS; c++) fprintf(out, "<th>%s</th>", columns[c].header);
    fprintf(out, "</tr>\n");
    for (int r = 0; r < t->rows; r++) {
        fprintf(out, "<tr><td>");
        html_text(out, t->label[r]);
        if (t->missing[r][0]) {
            fprintf(out, "</td><td colspan=\"%d\">", COLUMNS + 2);
            html_text(out, t->missing[r]);
            fprintf(out, "</td></tr>\n");
            continue;
        }
        fprintf(out, "</td><td>%s</td><td>%s</td>", t->seeds[r], t->samples[r]);
        for (int c = 0; c < COLUMNS; c++) fprintf(out, "<td>%s</td>", t->cells[r][c]);
        fprintf(out, "</tr>\n");
    }
    fprintf(out, "</table>\n");
}

int eval_table_write(FILE *out, const TableRow *rows, int n, TableFormat format, Error *err) {
    Cells t;
    int rc = build(&t, rows, n, err);
    if (format == TABLE_HTML) write_html(out, &t);
    else write_markdown(out, &t);
    cells_free(&t);
    return rc;
}
