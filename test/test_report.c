// report.html and its parts: base64 and escaping against known answers, the SVG plot's
// scale choices and its handling of non-finite values, and a run directory's page holding
// one plot per metric, one image per grid, the judge's table and the settings, with the
// unreadable parts said rather than fatal.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test/test_util.h"
#include "tools/data/png_image.h"
#include "tools/html/html.h"
#include "tools/html/svg_plot.h"
#include "tools/report/report.h"

// What f(out) writes, as a string (static buffer, overwritten by the next call).
static char captured[1 << 20];
#define CAPTURE(call)                                                       \
    do {                                                                    \
        FILE *out = fmemopen(captured, sizeof captured - 1, "w");           \
        ck_assert(out != NULL);                                             \
        call;                                                               \
        long n_ = ftell(out);                                               \
        fclose(out);                                                        \
        captured[n_ < 0 ? 0 : n_] = '\0';                                   \
    } while (0)

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

START_TEST(test_base64_rfc4648_vectors) {
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        CAPTURE(html_base64(out, (const unsigned char *)in[i], strlen(in[i])));
        ck_assert_str_eq(captured, want[i]);
    }
    const unsigned char high[3] = {0xff, 0xfe, 0x00};
    CAPTURE(html_base64(out, high, 3));
    ck_assert_str_eq(captured, "//4A");
}
END_TEST

START_TEST(test_html_text_escapes) {
    CAPTURE(html_text(out, "a<b & \"c\">d"));
    ck_assert_str_eq(captured, "a&lt;b &amp; &quot;c&quot;&gt;d");
}
END_TEST

START_TEST(test_svg_plot_scales) {
    double x[200], y[200];
    for (int i = 0; i < 200; i++) x[i] = i + 1, y[i] = 2.0 / (i + 1); // a loss: 2 .. 0.01
    CAPTURE(svg_line_plot(out, "loss <fake>", "step", x, y, 200));
    ck_assert_msg(strstr(captured, "(log scale)"), "a 200x range is not drawn on a log axis");
    ck_assert_msg(strstr(captured, "loss &lt;fake&gt;"), "the title is not escaped");
    ck_assert_int_eq(count(captured, "<polyline"), 1);
    for (int i = 0; i < 200; i++) y[i] = 0.5 + 0.001 * i;
    CAPTURE(svg_line_plot(out, "lr", "step", x, y, 200));
    ck_assert_msg(!strstr(captured, "log scale"), "a narrow range is drawn on a log axis");
    // one value, and only non-finite values: a dot, and a plot that says so, never a NaN
    CAPTURE(svg_line_plot(out, "one", "step", x, y, 1));
    ck_assert_int_eq(count(captured, "<circle"), 1);
    ck_assert_msg(!strstr(captured, "nan") && !strstr(captured, "inf"), "%s", captured);
    for (int i = 0; i < 200; i++) y[i] = i % 2 ? NAN : INFINITY;
    CAPTURE(svg_line_plot(out, "diverged", "step", x, y, 200));
    ck_assert_msg(strstr(captured, "no finite values"), "%s", captured);
}
END_TEST

// More points than pixels are averaged into buckets: the polyline stays short.
START_TEST(test_svg_plot_buckets_long_runs) {
    int n = 100000;
    double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) x[i] = i, y[i] = sin(i * 1e-3);
    CAPTURE(svg_line_plot(out, "long", "step", x, y, n));
    const char *p = strstr(captured, "points=\"");
    ck_assert(p != NULL);
    int pairs = count(p, ",") - count(strchr(p, '>'), ","); // the pairs of the polyline alone
    ck_assert_msg(pairs > 100 && pairs <= 400, "%d points drawn for %d values", pairs, n);
    free(x), free(y);
}
END_TEST

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_run_page) {
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/run", test_scratch_dir);
    snprintf(path, sizeof path, "%s/samples", dir);
    ck_assert(mkdir(dir, 0755) == 0 && mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/config.ini", dir);
    write_text(path, "preset = tiny\n[train]\nsteps = 30 # <settings>\n");
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    write_text(path, "{\"step\": 10, \"loss\": 1.5, \"lr\": 0.001, \"images_per_s\": 100, "
                     "\"elapsed_s\": 3}\n"
                     "{\"step\": 20, \"loss\": null, \"lr\": 0.0005, \"images_per_s\": 120, "
                     "\"elapsed_s\": 3725}\n"
                     "{\"step\": 30, \"lo\n" // a line cut by a crash
                     "{\"step\": 30, \"loss\": 0.5, \"lr\": 0.0001, \"images_per_s\": 110, "
                     "\"elapsed_s\": 3730, \"fid\": 40}\n");
    float images[4 * 4 * 4];
    for (int i = 0; i < 64; i++) images[i] = (float)(i % 7) / 3 - 1;
    Error err;
    for (int step = 10; step <= 30; step += 10) {
        snprintf(path, sizeof path, "%s/samples/step-%06d.png", dir, step);
        ck_assert_msg(png_write_grid(path, images, 4, 1, 4, 4, 2, 1, &err) == 0, "%s", err.msg);
    }
    snprintf(path, sizeof path, "%s/samples/step-000040.png", dir);
    write_text(path, "not a png");
    ck_assert_msg(report_write_run(dir, "a <test> run", &err) == 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/report.html", dir);
    const char *html = test_read_text(path);
    ck_assert_msg(strstr(html, "<title>a &lt;test&gt; run</title>"), "no escaped title");
    // loss, lr, images_per_s, fid: one plot each; elapsed_s is the summary's wall time
    ck_assert_int_eq(count(html, "<svg"), 4);
    ck_assert_msg(strstr(html, ">fid<") && strstr(html, ">images_per_s<"), "a plot is missing");
    ck_assert_msg(strstr(html, "1 h 02 min"), "the wall time is not the last elapsed_s");
    ck_assert_msg(strstr(html, "1 unreadable lines"), "the cut line is not reported");
    ck_assert_msg(strstr(html, "Last logged step <b>30</b>"), "the last step is not 30");
    ck_assert_int_eq(count(html, "<img src=\"data:image/png;base64,iVBORw0KGgo"), 3);
    ck_assert_msg(strstr(html, "(unreadable PNG)"), "the broken grid is not said");
    ck_assert_msg(strstr(html, "steps = 30 # &lt;settings&gt;"), "the settings are missing");
    ck_assert_msg(!strstr(html, "<table"), "a table without eval reports");
    ck_assert_msg(strstr(html, "</html>"), "the page is cut");
}
END_TEST

START_TEST(test_missing_run_still_reports) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/empty", test_scratch_dir);
    ck_assert(mkdir(dir, 0755) == 0);
    Error err;
    ck_assert_msg(report_write_run(dir, "empty", &err) == 0, "%s", err.msg);
    char path[700];
    snprintf(path, sizeof path, "%s/report.html", dir);
    ck_assert_msg(strstr(test_read_text(path), "No metrics logged yet"), "no empty-run note");
    snprintf(dir, sizeof dir, "%s/no/such/folder", test_scratch_dir);
    ck_assert_int_eq(report_write_run(dir, "x", &err), -1);
    ck_assert_msg(strstr(err.msg, "no/such/folder/report.html"), "%s", err.msg);
}
END_TEST

static Suite *report_suite(void) {
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("report");
    tcase_add_unchecked_fixture(tc, test_scratch_setup, test_scratch_teardown);
    tcase_add_test(tc, test_base64_rfc4648_vectors);
    tcase_add_test(tc, test_html_text_escapes);
    tcase_add_test(tc, test_svg_plot_scales);
    tcase_add_test(tc, test_svg_plot_buckets_long_runs);
    tcase_add_test(tc, test_run_page);
    tcase_add_test(tc, test_missing_run_still_reports);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(report_suite()); }
