// A folder of PNGs, one sub-folder per class, as a Dataset (see tools/data/dataset.h).
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/check.h"
#include "tools/data/dataset.h"
#include "tools/data/png_image.h"

typedef struct {
    char **names;
    int count;
} NameList;

static void name_list_free(NameList *l) {
    for (int i = 0; i < l->count; i++) free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// The entries of dir not starting with '.', sorted bytewise (so class ids do not depend on
// the locale or on the order the filesystem returns them).
static int list_visible(const char *dir, NameList *out, Error *err) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return error_set(err, "%s: cannot open folder: %s", dir, strerror(errno));
    int capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        if (out->count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            out->names = realloc(out->names, (size_t)capacity * sizeof(char *));
            DMDR_CHECK(out->names != NULL, "out of host memory");
        }
        out->names[out->count] = strdup(entry->d_name);
        DMDR_CHECK(out->names[out->count] != NULL, "out of host memory");
        out->count++;
    }
    closedir(d);
    if (out->count > 1) qsort(out->names, (size_t)out->count, sizeof(char *), compare_names);
    return 0;
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    DMDR_CHECK(p != NULL, "out of host memory");
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// ---- resizing ---------------------------------------------------------------------------------

// Resampling weights along one axis, n_in -> n_out: output o = sum_k w[o span + k] in[first[o] + k]
// for k < len[o]. Shrinking averages the input area each output pixel covers (a box filter,
// exact for fractional factors); enlarging interpolates bilinearly between pixel centres
// (PyTorch's align_corners=False).
typedef struct {
    int span;
    int *first, *len;
    float *w;
} AxisWeights;

static AxisWeights axis_weights(int n_in, int n_out) {
    AxisWeights a;
    a.span = n_in > n_out ? (n_in + n_out - 1) / n_out + 1 : 2;
    a.first = malloc((size_t)n_out * sizeof(int));
    a.len = malloc((size_t)n_out * sizeof(int));
    a.w = calloc((size_t)n_out * (size_t)a.span, sizeof(float));
    DMDR_CHECK(a.first && a.len && a.w, "out of host memory");
    double s = (double)n_in / n_out;
    for (int o = 0; o < n_out; o++) {
        float *w = a.w + (size_t)o * a.span;
        if (n_in > n_out) {
            double lo = o * s, hi = (o + 1) * s;
            int first = (int)floor(lo), last = (int)ceil(hi) - 1;
            if (last > n_in - 1) last = n_in - 1;
            a.first[o] = first;
            a.len[o] = last - first + 1;
            DMDR_CHECK(a.len[o] <= a.span, "box filter wider than its span");
            for (int i = first; i <= last; i++)
                w[i - first] = (float)((fmin(i + 1.0, hi) - fmax((double)i, lo)) / s);
        } else {
            double c = (o + 0.5) * s - 0.5;
            c = c < 0 ? 0 : c > n_in - 1 ? n_in - 1 : c;
            int i0 = (int)floor(c);
            double f = c - i0;
            a.first[o] = i0;
            a.len[o] = i0 + 1 < n_in ? 2 : 1;
            w[0] = (float)(1.0 - f);
            if (a.len[o] == 2) w[1] = (float)f;
        }
    }
    return a;
}

static void axis_weights_free(AxisWeights *a) {
    free(a->first);
    free(a->len);
    free(a->w);
}

// in (C, n, n) -> out (C, size, size), separably: rows first, then columns.
static void resize_square(const float *in, int C, int n, int size, float *out) {
    AxisWeights a = axis_weights(n, size);
    float *tmp = malloc((size_t)C * n * size * sizeof(float)); // (C, n, size)
    DMDR_CHECK(tmp != NULL, "out of host memory");
    for (int c = 0; c < C; c++)
        for (int y = 0; y < n; y++) {
            const float *row = in + ((size_t)c * n + y) * n;
            for (int o = 0; o < size; o++) {
                const float *w = a.w + (size_t)o * a.span;
                float acc = 0.0f;
                for (int k = 0; k < a.len[o]; k++) acc += w[k] * row[a.first[o] + k];
                tmp[((size_t)c * n + y) * size + o] = acc;
            }
        }
    for (int c = 0; c < C; c++)
        for (int o = 0; o < size; o++)
            for (int x = 0; x < size; x++) {
                const float *w = a.w + (size_t)o * a.span;
                const float *col = tmp + ((size_t)c * n + a.first[o]) * size + x;
                float acc = 0.0f;
                for (int k = 0; k < a.len[o]; k++) acc += w[k] * col[(size_t)k * size];
                out[((size_t)c * size + o) * size + x] = acc;
            }
    free(tmp);
    axis_weights_free(&a);
}

// ---- one image ---------------------------------------------------------------------------------

// rgba (n, n, 4) -> planes (C, n, n) in [0, 255], alpha composited over black
static void rgba_to_planes(const uint8_t *rgba, int n, int C, float *planes) {
    size_t area = (size_t)n * n;
    for (size_t p = 0; p < area; p++) {
        const uint8_t *px = rgba + 4 * p;
        float a = px[3] / 255.0f;
        float r = px[0] * a, g = px[1] * a, b = px[2] * a;
        if (C == 1) {
            planes[p] = 0.299f * r + 0.587f * g + 0.114f * b;
        } else {
            planes[p] = r;
            planes[area + p] = g;
            planes[2 * area + p] = b;
        }
    }
}

// path -> out (C, size, size) in [-1, 1]
static int load_one(const char *path, int C, int size, float *out, Error *err) {
    PngImage img;
    if (pngimage_read(path, &img, err)) return -1;
    if (img.width != img.height) {
        error_set(err,
                  "%s: image is %d x %d: expected a square image (square images of any size are "
                  "resized to %d x %d; others are not, to avoid distorting them)",
                  path, img.width, img.height, size, size);
        pngimage_free(&img);
        return -1;
    }
    int n = img.width;
    float *planes = malloc((size_t)C * n * n * sizeof(float));
    DMDR_CHECK(planes != NULL, "out of host memory");
    rgba_to_planes(img.rgba, n, C, planes);
    pngimage_free(&img);
    if (n == size) memcpy(out, planes, (size_t)C * n * n * sizeof(float));
    else resize_square(planes, C, n, size, out);
    free(planes);
    for (size_t i = 0; i < (size_t)C * size * size; i++) out[i] = out[i] / 127.5f - 1.0f;
    return 0;
}

// ---- the folder --------------------------------------------------------------------------------

// root's class folders and, per class, its sorted file names
static int scan_classes(const char *root, NameList *classes, NameList **files, Error *err) {
    NameList entries;
    if (list_visible(root, &entries, err)) return -1;
    memset(classes, 0, sizeof *classes);
    classes->names = malloc((size_t)(entries.count ? entries.count : 1) * sizeof(char *));
    DMDR_CHECK(classes->names != NULL, "out of host memory");
    for (int i = 0; i < entries.count; i++) {
        char *p = join_path(root, entries.names[i]);
        if (is_directory(p)) {
            classes->names[classes->count++] = entries.names[i];
            entries.names[i] = NULL; // moved
        }
        free(p);
    }
    name_list_free(&entries);
    if (classes->count == 0) {
        name_list_free(classes);
        return error_set(err, "%s: no class folders: expected one sub-folder of PNG images per "
                              "class", root);
    }
    *files = calloc((size_t)classes->count, sizeof(NameList));
    DMDR_CHECK(*files != NULL, "out of host memory");
    int rc = 0;
    for (int k = 0; !rc && k < classes->count; k++) {
        char *dir = join_path(root, classes->names[k]);
        rc = list_visible(dir, &(*files)[k], err);
        if (!rc && (*files)[k].count == 0)
            rc = error_set(err, "%s: class folder \"%s\" holds no images: expected PNG files",
                           dir, classes->names[k]);
        for (int i = 0; !rc && i < (*files)[k].count; i++) {
            char *p = join_path(dir, (*files)[k].names[i]);
            if (is_directory(p))
                rc = error_set(err, "%s: a folder inside class folder \"%s\": expected only PNG "
                                    "files there", p, classes->names[k]);
            free(p);
        }
        free(dir);
    }
    if (rc) {
        for (int k = 0; k < classes->count; k++) name_list_free(&(*files)[k]);
        free(*files);
        *files = NULL;
        name_list_free(classes);
    }
    return rc;
}

static bool in_split(int index, DataSplit split) {
    bool test = index % PNG_TEST_EVERY == PNG_TEST_EVERY - 1;
    return split == SPLIT_ALL || (split == SPLIT_TEST) == test;
}

int png_folder_load(const char *root, int channels, int size, DataSplit split, Dataset *out,
                    Error *err) {
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3)
        return error_set(err, "%s: channels %d: expected 1 (grey) or 3 (RGB)", root, channels);
    if (size < 1 || size > 4096)
        return error_set(err, "%s: image size %d: expected 1..4096", root, size);
    NameList classes, *files = NULL;
    if (scan_classes(root, &classes, &files, err)) return -1;
    int64_t count = 0;
    for (int k = 0; k < classes.count; k++)
        for (int f = 0; f < files[k].count; f++) count += in_split(f, split);
    int rc = 0;
    if (count == 0) // only a test split can be empty: every class folder holds an image
        rc = error_set(err, "%s: no test images: the test split is every %dth image of a class "
                            "(in name order), and no class folder holds %d", root,
                       PNG_TEST_EVERY, PNG_TEST_EVERY);
    else {
        dataset_alloc_images(out, count, channels, size, size, classes.count);
        dataset_set_class_names(out, (const char *const *)classes.names);
    }
    int64_t i = 0;
    for (int k = 0; !rc && k < classes.count; k++) {
        char *dir = join_path(root, classes.names[k]);
        for (int f = 0; !rc && f < files[k].count; f++) {
            if (!in_split(f, split)) continue;
            char *path = join_path(dir, files[k].names[f]);
            rc = load_one(path, channels, size, out->data + i * out->dim, err);
            out->labels[i++] = k;
            free(path);
        }
        free(dir);
    }
    for (int k = 0; k < classes.count; k++) name_list_free(&files[k]);
    free(files);
    name_list_free(&classes);
    if (rc) dataset_free(out);
    return rc;
}

int png_folder_probe(const char *root, PngFolderShape *out, Error *err) {
    *out = (PngFolderShape){.channels = 1};
    NameList classes, *files = NULL;
    if (scan_classes(root, &classes, &files, err)) return -1;
    int rc = 0;
    for (int k = 0; !rc && k < classes.count; k++) {
        if (files[k].count == 0) continue;
        char *dir = join_path(root, classes.names[k]);
        char *path = join_path(dir, files[k].names[0]);
        PngImage img;
        rc = pngimage_read(path, &img, err);
        if (!rc) {
            if (img.file_channels >= 3) out->channels = 3;
            if (out->size == 0 && img.width != img.height)
                rc = error_set(err, "%s: %dx%d: the images must be square", path, img.width,
                               img.height);
            else if (out->size == 0)
                out->size = img.width;
            pngimage_free(&img);
        }
        free(path);
        free(dir);
    }
    out->classes = classes.count;
    for (int k = 0; k < classes.count; k++) {
        int64_t test = 0;
        for (int f = 0; f < files[k].count; f++) test += in_split(f, SPLIT_TEST);
        if (k == 0 || test < out->fewest_test) {
            out->fewest_test = test;
            snprintf(out->fewest_test_class, sizeof out->fewest_test_class, "%s",
                     classes.names[k]);
        }
    }
    for (int k = 0; k < classes.count; k++) name_list_free(&files[k]);
    free(files);
    name_list_free(&classes);
    return rc;
}
