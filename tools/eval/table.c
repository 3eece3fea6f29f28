#include "tools/eval/table.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"

#define REPORT_MAX_BYTES (1 << 20) // an eval report is about 1 KB

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

static void print_cells(FILE *out, const char *label, const char *seeds, const char *samples,
                        cJSON *const *reports, int n) {
    fprintf(out, "| %s | %s | %s |", label, seeds, samples);
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    DMDR_CHECK(v != NULL, "out of host memory");
    for (int c = 0; c < COLUMNS; c++) {
        char text[96];
        for (int i = 0; i < n; i++) v[i] = number(reports[i], columns[c].key);
        cell(text, sizeof text, columns[c].format, v, n);
        fprintf(out, " %s |", text);
    }
    free(v);
    fputc('\n', out);
}

// Whether report r compares with the first one: the same judge at the same sample count.
static int check_comparable(const cJSON *first, const char *first_path, const cJSON *r,
                            const char *path, Error *err) {
    if (strcmp(text_of(first, "classifier"), text_of(r, "classifier")) != 0)
        return error_set(err, "%s is judged by %s, %s by %s: a table compares one judge's figures",
                         path, text_of(r, "classifier"), first_path, text_of(first, "classifier"));
    if (number(first, "samples") != number(r, "samples"))
        return error_set(err, "%s measures %.0f images, %s %.0f: a table compares one sample count",
                         path, number(r, "samples"), first_path, number(first, "samples"));
    return 0;
}

int eval_table_print(FILE *out, const TableRow *rows, int n, Error *err) {
    int total = 0;
    for (int i = 0; i < n; i++) total += rows[i].count;
    cJSON **reports = calloc((size_t)(total > 0 ? total : 1), sizeof *reports);
    DMDR_CHECK(reports != NULL, "out of host memory");
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
        fprintf(out, "judge: %s; reward column: %s\n\n", text_of(first, "classifier"),
                reward[0] ? reward : "the judge's own log p(y|x)");
    }
    fprintf(out, "| model | seeds | samples |");
    for (int c = 0; c < COLUMNS; c++) fprintf(out, " %s |", columns[c].header);
    fprintf(out, "\n|---|---|---|");
    for (int c = 0; c < COLUMNS; c++) fprintf(out, "---|");
    fputc('\n', out);
    for (k = 0; k < total; k++) {
        cJSON *floor = reports[k] ? cJSON_GetObjectItemCaseSensitive(reports[k], "floor") : NULL;
        if (!cJSON_IsObject(floor)) continue;
        char samples[32];
        snprintf(samples, sizeof samples, "%.0f", number(floor, "samples"));
        print_cells(out, "real training images (floor)", "-", samples, &floor, 1);
        break;
    }
    k = 0;
    for (int i = 0; i < n; i++) {
        cJSON *const *mine = reports + k;
        int have = 0;
        for (int j = 0; j < rows[i].count; j++) have += mine[j] != NULL;
        if (have < rows[i].count) {
            fprintf(out, "| %s | no results: %d of %d reports unreadable |\n", rows[i].label,
                    rows[i].count - have, rows[i].count);
        } else {
            char seeds[16], samples[32];
            snprintf(seeds, sizeof seeds, "%d", rows[i].count);
            snprintf(samples, sizeof samples, "%.0f", number(mine[0], "samples"));
            print_cells(out, rows[i].label, seeds, samples, mine, rows[i].count);
        }
        k += rows[i].count;
    }
    for (k = 0; k < total; k++) cJSON_Delete(reports[k]);
    free(reports);
    return rc;
}
