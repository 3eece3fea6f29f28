// Data: the real Fashion-MNIST files (skipped when the Debian package is absent), one case per
// kind of malformed IDX file, PNG folders of every PNG format written here with libpng, the
// resizing rules, the toy 2D mixture's statistics, the batcher's epoch order and resumption,
// and the PNG grid and scatter writers read back.
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "test/test_util.h"
#include "tools/data/dataset.h"
#include "tools/data/manifest.h"
#include "tools/data/png_image.h"
#include "tools/data/sha256.h"

// test_scratch_dir/name, made with its parent folders when `dirs` (mkdir -p of the path's folders)
static const char *scratch_path(const char *name, char *buf, size_t buflen) {
    snprintf(buf, buflen, "%s/%s", test_scratch_dir, name);
    for (char *p = buf + strlen(test_scratch_dir) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(*n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, *n, f), *n);
    fclose(f);
    return buf;
}

// The message names `path` and contains every word of the NULL-terminated list.
static void expect_message(const char *what, const Error *err, const char *path,
                           const char *const *words) {
    ck_assert_msg(strstr(err->msg, path) != NULL, "%s: message does not name %s: %s", what, path,
                  err->msg);
    for (int i = 0; words[i]; i++)
        ck_assert_msg(strstr(err->msg, words[i]) != NULL, "%s: message lacks \"%s\": %s", what,
                      words[i], err->msg);
}

static void expect_empty(const char *what, const Dataset *d) {
    ck_assert_msg(d->count == 0 && d->data == NULL && d->labels == NULL && d->class_names == NULL,
                  "%s: a failed load left data behind", what);
}

// ---- Fashion-MNIST, the real files --------------------------------------------------------------

static bool have_fashion_mnist(void) {
    struct stat st;
    if (stat(FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", &st) == 0) return true;
    fprintf(stderr, "skipped: %s not installed (Debian package dataset-fashion-mnist)\n",
            FASHION_MNIST_DIR);
    return false;
}

// count examples, 28 x 28 grey in [-1, 1], `per_class` of each class, the given first label
// and mean pixel
static void check_fashion_split(bool train, int64_t count, int per_class, int first_label,
                                double mean_pixel) {
    Dataset d;
    Error err = {{0}};
    ck_assert_msg(fashion_mnist_load(NULL, train, &d, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(d.count, count);
    ck_assert_int_eq(d.channels, 1);
    ck_assert_int_eq(d.height, 28);
    ck_assert_int_eq(d.width, 28);
    ck_assert_int_eq(d.dim, 784);
    ck_assert_int_eq(d.num_classes, 10);
    ck_assert(dataset_is_image(&d));
    ck_assert_str_eq(d.class_names[0], "T-shirt/top");
    ck_assert_str_eq(d.class_names[9], "Ankle boot");
    ck_assert_int_eq(d.labels[0], first_label);
    int per[10] = {0};
    for (int64_t i = 0; i < d.count; i++) {
        ck_assert(d.labels[i] >= 0 && d.labels[i] < 10);
        per[d.labels[i]]++;
    }
    for (int k = 0; k < 10; k++) ck_assert_int_eq(per[k], per_class);
    float lo = 2.0f, hi = -2.0f;
    double sum = 0.0;
    for (int64_t i = 0; i < d.count * d.dim; i++) {
        lo = fminf(lo, d.data[i]);
        hi = fmaxf(hi, d.data[i]);
        sum += d.data[i];
    }
    ck_assert_float_eq(lo, -1.0f); // byte 0
    ck_assert_float_eq(hi, 1.0f);  // byte 255
    double mean = sum / (double)(d.count * d.dim);
    ck_assert_msg(fabs(mean - mean_pixel) < 1e-3, "mean pixel %.5f, want %.5f", mean, mean_pixel);
    dataset_free(&d);
}

// The figures: 6000 / 1000 images per class; the first label of both files is 9 (ankle boot,
// as `zcat ... | xxd` shows); the training set's mean pixel is 0.28604 in [0, 1], the known
// normalisation constant, i.e. 2 * 0.28604 - 1 here.
START_TEST(test_fashion_mnist_train) {
    if (!have_fashion_mnist()) return;
    check_fashion_split(true, 60000, 6000, 9, 2.0 * 0.2860406 - 1.0);
}
END_TEST

START_TEST(test_fashion_mnist_test_split) {
    if (!have_fashion_mnist()) return;
    check_fashion_split(false, 10000, 1000, 9, 2.0 * 0.2868488 - 1.0);
}
END_TEST

// ---- IDX files made here ------------------------------------------------------------------------

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

// An IDX file: magic, ndim sizes, then `n` body bytes; gzip-compressed when gz.
static void write_idx(const char *path, bool gz, uint32_t magic, int ndim, const uint32_t *dims,
                      const uint8_t *body, size_t n) {
    size_t len = 4 + 4 * (size_t)ndim + n;
    unsigned char *bytes = malloc(len);
    ck_assert_ptr_nonnull(bytes);
    put_be32(bytes, magic);
    for (int i = 0; i < ndim; i++) put_be32(bytes + 4 + 4 * i, dims[i]);
    memcpy(bytes + 4 + 4 * ndim, body, n);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, bytes, (unsigned)len), (int)len);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        write_bytes(path, bytes, len);
    }
    free(bytes);
}

enum { IDX_N = 5, IDX_ROWS = 6, IDX_COLS = 7, IDX_PIXELS = IDX_N * IDX_ROWS * IDX_COLS };

typedef struct {
    uint8_t pixels[IDX_PIXELS];
    uint8_t labels[IDX_N];
} IdxContents;

static IdxContents idx_contents(const char *label) {
    IdxContents c;
    int32_t v[IDX_PIXELS];
    test_fill_ints(v, IDX_PIXELS, test_seed_for(label), 256);
    for (int i = 0; i < IDX_PIXELS; i++) c.pixels[i] = (uint8_t)v[i];
    c.pixels[0] = 0; // the two ends of the pixel range, whose images are exactly -1 and 1
    c.pixels[1] = 255;
    for (int i = 0; i < IDX_N; i++) c.labels[i] = (uint8_t)((3 * i + 1) % 10);
    return c;
}

static void write_idx_pair(const char *images, const char *labels, bool gz, const IdxContents *c) {
    const uint32_t image_dims[3] = {IDX_N, IDX_ROWS, IDX_COLS}, label_dims[1] = {IDX_N};
    write_idx(images, gz, 0x803, 3, image_dims, c->pixels, IDX_PIXELS);
    write_idx(labels, gz, 0x801, 1, label_dims, c->labels, IDX_N);
}

static void check_idx_dataset(const Dataset *d, const IdxContents *c, int num_classes) {
    ck_assert_int_eq(d->count, IDX_N);
    ck_assert_int_eq(d->channels, 1);
    ck_assert_int_eq(d->height, IDX_ROWS);
    ck_assert_int_eq(d->width, IDX_COLS);
    ck_assert_int_eq(d->num_classes, num_classes);
    for (int i = 0; i < IDX_PIXELS; i++)
        ck_assert_float_eq(d->data[i], (float)c->pixels[i] / 127.5f - 1.0f);
    ck_assert_float_eq(d->data[0], -1.0f);
    ck_assert_float_eq(d->data[1], 1.0f);
    for (int i = 0; i < IDX_N; i++) ck_assert_int_eq(d->labels[i], c->labels[i]);
}

// gzip and plain files give the same dataset; num_classes 0 infers it from the labels.
START_TEST(test_idx_gzip_and_plain_load_alike) {
    IdxContents c = idx_contents("idx_both");
    char images[1024], labels[1024];
    Error err = {{0}};
    Dataset d;
    for (int gz = 0; gz < 2; gz++) {
        scratch_path(gz ? "both/gz-images-idx3-ubyte.gz" : "both/raw-images-idx3-ubyte", images,
                     sizeof images);
        scratch_path(gz ? "both/gz-labels-idx1-ubyte.gz" : "both/raw-labels-idx1-ubyte", labels,
                     sizeof labels);
        write_idx_pair(images, labels, gz, &c);
        ck_assert_msg(idx_load_dataset(images, labels, 10, &d, &err) == 0, "%s", err.msg);
        check_idx_dataset(&d, &c, 10);
        ck_assert_ptr_null(d.class_names);
        dataset_free(&d);
        ck_assert_msg(idx_load_dataset(images, labels, 0, &d, &err) == 0, "%s", err.msg);
        check_idx_dataset(&d, &c, 8); // labels 1, 4, 7, 0, 3
        dataset_free(&d);
        // the images file's path finds its labels file, and the Fashion-MNIST names come along
        ck_assert_msg(fashion_mnist_load(images, true, &d, &err) == 0, "%s", err.msg);
        check_idx_dataset(&d, &c, 10);
        ck_assert_str_eq(d.class_names[1], "Trouser");
        dataset_free(&d);
    }
}
END_TEST

// A directory with the standard names, plain or gzip, loads by split.
START_TEST(test_fashion_mnist_directory_by_split) {
    IdxContents train = idx_contents("idx_train"), test = idx_contents("idx_test");
    char images[1024], labels[1024], dir[1024];
    write_idx_pair(scratch_path("fm/train-images-idx3-ubyte", images, sizeof images),
                   scratch_path("fm/train-labels-idx1-ubyte", labels, sizeof labels), false,
                   &train);
    write_idx_pair(scratch_path("fm/t10k-images-idx3-ubyte.gz", images, sizeof images),
                   scratch_path("fm/t10k-labels-idx1-ubyte.gz", labels, sizeof labels), true,
                   &test);
    scratch_path("fm", dir, sizeof dir);
    Dataset d;
    Error err = {{0}};
    ck_assert_msg(fashion_mnist_load(dir, true, &d, &err) == 0, "%s", err.msg);
    check_idx_dataset(&d, &train, 10);
    dataset_free(&d);
    ck_assert_msg(fashion_mnist_load(dir, false, &d, &err) == 0, "%s", err.msg);
    check_idx_dataset(&d, &test, 10);
    dataset_free(&d);
}
END_TEST

START_TEST(test_fashion_mnist_missing_files) {
    char dir[1024], other[1024];
    scratch_path("empty_fm", dir, sizeof dir);
    mkdir(dir, 0755);
    Dataset d;
    Error err = {{0}};
    ck_assert_int_eq(fashion_mnist_load(dir, true, &d, &err), -1);
    expect_message("empty directory", &err, dir,
                   (const char *const[]){"train-images-idx3-ubyte", "dataset-fashion-mnist", NULL});
    expect_empty("empty directory", &d);
    write_bytes(scratch_path("some_images.bin", other, sizeof other), "x", 1);
    ck_assert_int_eq(fashion_mnist_load(other, true, &d, &err), -1);
    expect_message("unrelated file", &err, other, (const char *const[]){"images-idx3", NULL});
    expect_empty("unrelated file", &d);
}
END_TEST

// One malformed pair per case; `bad` says which file the message must name.
typedef enum {
    BAD_IMAGE_MAGIC,
    BAD_LABELS_AS_IMAGES,
    BAD_LABEL_MAGIC,
    BAD_SHORT_HEADER,
    BAD_TRUNCATED_PIXELS,
    BAD_TRUNCATED_GZIP,
    BAD_CORRUPT_GZIP_BODY,
    BAD_CORRUPT_GZIP_CRC,
    BAD_TRAILING_BYTES,
    BAD_COUNT_MISMATCH,
    BAD_LABEL_RANGE,
    BAD_ZERO_IMAGES,
    BAD_MISSING_FILE,
    BAD_IDX_COUNT
} BadIdx;

static const char *const bad_idx_words[BAD_IDX_COUNT][5] = {
    [BAD_IMAGE_MAGIC] = {"bad magic", "0x00000804", "expected 0x00000803", NULL},
    [BAD_LABELS_AS_IMAGES] = {"bad magic", "a label file", "expected 0x00000803", NULL},
    [BAD_LABEL_MAGIC] = {"bad magic", "an image file", "expected 0x00000801", NULL},
    [BAD_SHORT_HEADER] = {"truncated", "expected 12 bytes of IDX sizes, found 6", NULL},
    [BAD_TRUNCATED_PIXELS] = {"truncated", "expected 210 bytes of pixel data, found 126", NULL},
    [BAD_TRUNCATED_GZIP] = {"truncated", "gzip stream ends early", NULL},
    [BAD_CORRUPT_GZIP_BODY] = {"corrupt gzip", NULL},
    [BAD_CORRUPT_GZIP_CRC] = {"corrupt gzip", "incorrect data check", NULL},
    [BAD_TRAILING_BYTES] = {"trailing data", "after 226 bytes", NULL},
    [BAD_COUNT_MISMATCH] = {"4 labels", "5 images", "equal counts", NULL},
    [BAD_LABEL_RANGE] = {"label 10 of image 2", "out of range", "0..9", NULL},
    [BAD_ZERO_IMAGES] = {"bad sizes", "0 images", NULL},
    [BAD_MISSING_FILE] = {"cannot open", "No such file", NULL},
};

// Flips `n` bytes of a file from `at` (negative: from the end).
static void corrupt_file(const char *path, long at, int n) {
    size_t len;
    unsigned char *bytes = read_bytes(path, &len);
    size_t start = at >= 0 ? (size_t)at : len - (size_t)(-at);
    ck_assert(start + (size_t)n <= len);
    for (int i = 0; i < n; i++) bytes[start + i] ^= 0x5a;
    write_bytes(path, bytes, len);
    free(bytes);
}

static void cut_file(const char *path, size_t keep) {
    size_t len;
    unsigned char *bytes = read_bytes(path, &len);
    ck_assert(keep < len);
    write_bytes(path, bytes, keep);
    free(bytes);
}

START_TEST(test_malformed_idx) {
    BadIdx bad = (BadIdx)_i;
    char images[1024], labels[1024], name[64];
    snprintf(name, sizeof name, "bad%d/images-idx3-ubyte.gz", _i);
    scratch_path(name, images, sizeof images);
    snprintf(name, sizeof name, "bad%d/labels-idx1-ubyte.gz", _i);
    scratch_path(name, labels, sizeof labels);
    // Pixels from a fixed stream: zlib cannot shrink them, so cutting the .gz in half
    // cuts into the pixel data.
    IdxContents c = idx_contents("fixed");
    write_idx_pair(images, labels, true, &c);
    const uint32_t dims[3] = {IDX_N, IDX_ROWS, IDX_COLS};
    const char *named = images, *load_images = images;
    switch (bad) {
    case BAD_IMAGE_MAGIC: write_idx(images, true, 0x804, 3, dims, c.pixels, IDX_PIXELS); break;
    case BAD_LABELS_AS_IMAGES: load_images = named = labels; break;
    case BAD_LABEL_MAGIC:
        write_idx(labels, true, 0x803, 1, dims, c.labels, IDX_N);
        named = labels;
        break;
    case BAD_SHORT_HEADER: write_bytes(images, "\0\0\x08\x03\0\0\0\x05\0\0", 10); break;
    case BAD_TRUNCATED_PIXELS:
        write_idx(images, true, 0x803, 3, dims, c.pixels, 3 * IDX_ROWS * IDX_COLS);
        break;
    case BAD_TRUNCATED_GZIP: {
        size_t len;
        free(read_bytes(images, &len));
        cut_file(images, len / 2);
        break;
    }
    case BAD_CORRUPT_GZIP_BODY: corrupt_file(images, 40, 16); break;
    case BAD_CORRUPT_GZIP_CRC: corrupt_file(images, -8, 1); break; // the CRC32 of the trailer
    case BAD_TRAILING_BYTES: {
        uint8_t more[IDX_PIXELS + 3] = {0};
        memcpy(more, c.pixels, IDX_PIXELS);
        write_idx(images, false, 0x803, 3, dims, more, sizeof more);
        break;
    }
    case BAD_COUNT_MISMATCH: {
        const uint32_t four[1] = {4};
        write_idx(labels, true, 0x801, 1, four, c.labels, 4);
        named = labels;
        break;
    }
    case BAD_LABEL_RANGE:
        c.labels[2] = 10;
        write_idx(labels, true, 0x801, 1, dims, c.labels, IDX_N);
        named = labels;
        break;
    case BAD_ZERO_IMAGES: {
        const uint32_t none[3] = {0, IDX_ROWS, IDX_COLS};
        write_idx(images, true, 0x803, 3, none, c.pixels, 0);
        break;
    }
    case BAD_MISSING_FILE: remove(images); break;
    case BAD_IDX_COUNT: break;
    }
    Dataset d;
    Error err = {{0}};
    ck_assert_msg(idx_load_dataset(load_images, labels, 10, &d, &err) == -1, "case %d loaded", _i);
    expect_message("malformed IDX", &err, named, bad_idx_words[bad]);
    expect_empty("malformed IDX", &d);
}
END_TEST

// ---- PNG folders: files written here with libpng ------------------------------------------------

// A PNG of any colour type and depth from packed rows (16-bit samples big-endian).
static void write_png(const char *path, int w, int h, int color_type, int bit_depth,
                      const uint8_t *packed, const png_color *palette, int palette_len,
                      const uint8_t *trns, int trns_len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    ck_assert_msg(setjmp(png_jmpbuf(png)) == 0, "libpng failed writing %s", path);
    png_set_check_for_invalid_index(png, 0); // lets a reject case index beyond its PLTE
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, palette_len);
    if (trns) png_set_tRNS(png, info, trns, trns_len, NULL);
    png_write_info(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, packed + (size_t)y * row_bytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    ck_assert_int_eq(fclose(f), 0);
}

enum { PX = 4, PIXELS = PX * PX, FORMAT_COUNT = 7 };

// Each test image as straight (unpremultiplied) RGBA, and the formats they are stored in.
typedef struct {
    const char *file;
    int label;
    uint8_t rgba[PIXELS][4];
} SourceImage;

static int32_t rand_byte(uint64_t *state) {
    int32_t v;
    test_fill_ints(&v, 1, (*state)++, 256);
    return v;
}

// Writes `src` in format `format` (0 grey8, 1 grey16, 2 grey1, 3 rgb8, 4 rgba8, 5 palette
// with tRNS, 6 grey+alpha), first making src->rgba what that format can hold.
static void make_format(int format, SourceImage *src, uint64_t *state, const char *path) {
    uint8_t packed[PIXELS * 8] = {0};
    png_color palette[PIXELS];
    uint8_t trns[PIXELS];
    for (int p = 0; p < PIXELS; p++) {
        uint8_t *px = src->rgba[p];
        int32_t g = rand_byte(state);
        px[0] = px[1] = px[2] = (uint8_t)g;
        px[3] = 255;
        switch (format) {
        case 0: packed[p] = (uint8_t)g; break;
        case 1: { // a 16-bit v reads as round(v / 257), the nearest 8-bit value
            int32_t v = g << 8 | rand_byte(state);
            packed[2 * p] = (uint8_t)(v >> 8);
            packed[2 * p + 1] = (uint8_t)v;
            px[0] = px[1] = px[2] = (uint8_t)floor(v / 257.0 + 0.5);
            break;
        }
        case 2:
            px[0] = px[1] = px[2] = g & 1 ? 255 : 0;
            if (g & 1) packed[p / PX] |= (uint8_t)(0x80 >> (p % PX)); // one byte per row
            break;
        case 3: case 4: case 5:
            px[1] = (uint8_t)rand_byte(state);
            px[2] = (uint8_t)rand_byte(state);
            if (format != 3) px[3] = (uint8_t)rand_byte(state);
            if (format == 5) {
                palette[p] = (png_color){px[0], px[1], px[2]};
                trns[p] = px[3];
                packed[p] = (uint8_t)p;
            } else {
                memcpy(packed + (size_t)p * (format == 3 ? 3 : 4), px, format == 3 ? 3 : 4);
            }
            break;
        case 6:
            px[3] = (uint8_t)rand_byte(state);
            packed[2 * p] = px[0];
            packed[2 * p + 1] = px[3];
            break;
        }
    }
    static const int types[FORMAT_COUNT] = {PNG_COLOR_TYPE_GRAY,    PNG_COLOR_TYPE_GRAY,
                                            PNG_COLOR_TYPE_GRAY,    PNG_COLOR_TYPE_RGB,
                                            PNG_COLOR_TYPE_RGBA,    PNG_COLOR_TYPE_PALETTE,
                                            PNG_COLOR_TYPE_GRAY_ALPHA};
    static const int depths[FORMAT_COUNT] = {8, 16, 1, 8, 8, 8, 8};
    write_png(path, PX, PX, types[format], depths[format], packed, format == 5 ? palette : NULL,
              PIXELS, format == 5 ? trns : NULL, PIXELS);
}

// The expected (C, 4, 4) in [-1, 1] of a source image: alpha over black, then luminance.
static void expected_pixels(const SourceImage *src, int C, float *out) {
    for (int p = 0; p < PIXELS; p++) {
        float a = src->rgba[p][3] / 255.0f;
        float r = src->rgba[p][0] * a, g = src->rgba[p][1] * a, b = src->rgba[p][2] * a;
        if (C == 1) {
            out[p] = (0.299f * r + 0.587f * g + 0.114f * b) / 127.5f - 1.0f;
        } else {
            out[p] = r / 127.5f - 1.0f;
            out[PIXELS + p] = g / 127.5f - 1.0f;
            out[2 * PIXELS + p] = b / 127.5f - 1.0f;
        }
    }
}

static void check_folder(const char *root, int C, const SourceImage *src, int n) {
    Dataset d;
    Error err = {{0}};
    ck_assert_msg(png_folder_load(root, C, PX, SPLIT_ALL, &d, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(d.count, n);
    ck_assert_int_eq(d.channels, C);
    ck_assert_int_eq(d.height, PX);
    ck_assert_int_eq(d.width, PX);
    ck_assert_int_eq(d.num_classes, 2);
    ck_assert_str_eq(d.class_names[0], "a_grey");
    ck_assert_str_eq(d.class_names[1], "b_colour");
    for (int i = 0; i < n; i++) {
        char what[128];
        float want[3 * PIXELS];
        expected_pixels(&src[i], C, want);
        snprintf(what, sizeof what, "%s, %d channel(s)", src[i].file, C);
        ck_assert_int_eq(d.labels[i], src[i].label);
        ASSERT_CLOSE(what, d.data + (size_t)i * d.dim, want, C * PIXELS, 1e-5, 0);
    }
    dataset_free(&d);
}

// Seven PNG formats in two classes (folders made in reverse order: ids follow the sorted
// names); hidden files and plain files at the root are skipped.
START_TEST(test_png_folder_every_format) {
    static const char *const files[FORMAT_COUNT] = {
        "a_grey/f0_grey8.png",  "a_grey/f1_grey16.png",    "a_grey/f2_grey1.png",
        "b_colour/f3_rgb.png",  "b_colour/f4_rgba.png",    "b_colour/f5_palette.png",
        "b_colour/f6_grey_alpha.png"};
    SourceImage src[FORMAT_COUNT];
    uint64_t state = test_seed_for("png_formats");
    char name[256], path[1024], root[1024];
    for (int f = FORMAT_COUNT - 1; f >= 0; f--) {
        snprintf(name, sizeof name, "formats/%s", files[f]);
        src[f].file = files[f];
        src[f].label = f < 3 ? 0 : 1;
        make_format(f, &src[f], &state, scratch_path(name, path, sizeof path));
    }
    write_bytes(scratch_path("formats/a_grey/.DS_Store", path, sizeof path), "junk", 4);
    write_bytes(scratch_path("formats/README.txt", path, sizeof path), "about", 5);
    scratch_path("formats", root, sizeof root);
    check_folder(root, 1, src, FORMAT_COUNT);
    check_folder(root, 3, src, FORMAT_COUNT);
}
END_TEST

// A grey PNG of n x m whose pixel (y, x) is value(y, x).
static void write_grey(const char *path, int h, int w, const uint8_t *values) {
    write_png(path, w, h, PNG_COLOR_TYPE_GRAY, 8, values, NULL, 0, NULL, 0);
}

// The box filter's definition, in 2D and without separability: each output pixel is the
// mean of the input over the square it covers, partial pixels weighted by their overlap.
static float area_mean(const uint8_t *in, int n, int size, int oy, int ox) {
    double s = (double)n / size, sum = 0.0;
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            double wy = fmin(y + 1.0, (oy + 1) * s) - fmax((double)y, oy * s);
            double wx = fmin(x + 1.0, (ox + 1) * s) - fmax((double)x, ox * s);
            if (wy > 0 && wx > 0) sum += wy * wx * in[y * n + x];
        }
    return (float)(sum / (s * s));
}

// Shrinking by whole and fractional factors averages areas; enlarging 2 -> 4 is bilinear
// between pixel centres, so the edge outputs copy the edge inputs.
START_TEST(test_png_folder_resizes_square_images) {
    enum { SIZE = 4 };
    static const int sides[3] = {8, 6, 7};
    uint8_t big[3][64];
    uint64_t state = test_seed_for("png_resize");
    char name[256], path[1024], root[1024];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < sides[k] * sides[k]; i++) big[k][i] = (uint8_t)rand_byte(&state);
        snprintf(name, sizeof name, "resize/c/big%d.png", k);
        write_grey(scratch_path(name, path, sizeof path), sides[k], sides[k], big[k]);
    }
    const uint8_t small[4] = {0, 200, 100, 40};
    write_grey(scratch_path("resize/c/small.png", path, sizeof path), 2, 2, small);
    Dataset d;
    Error err = {{0}};
    scratch_path("resize", root, sizeof root);
    ck_assert_msg(png_folder_load(root, 1, SIZE, SPLIT_ALL, &d, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(d.count, 4);
    for (int k = 0; k < 3; k++) {
        float want[SIZE * SIZE];
        for (int oy = 0; oy < SIZE; oy++)
            for (int ox = 0; ox < SIZE; ox++)
                want[oy * SIZE + ox] = area_mean(big[k], sides[k], SIZE, oy, ox) / 127.5f - 1.0f;
        char what[64];
        snprintf(what, sizeof what, "%d -> %d area mean", sides[k], SIZE);
        ASSERT_CLOSE(what, d.data + k * SIZE * SIZE, want, SIZE * SIZE, 1e-5, 0);
    }
    static const float w[SIZE][2] = {{1, 0}, {0.75f, 0.25f}, {0.25f, 0.75f}, {0, 1}};
    float want[SIZE * SIZE];
    for (int oy = 0; oy < SIZE; oy++)
        for (int ox = 0; ox < SIZE; ox++) {
            float v = 0;
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++) v += w[oy][a] * w[ox][b] * small[a * 2 + b];
            want[oy * SIZE + ox] = v / 127.5f - 1.0f;
        }
    ASSERT_CLOSE("2 -> 4 bilinear", d.data + 3 * SIZE * SIZE, want, SIZE * SIZE, 1e-5, 0);
    dataset_free(&d);
}
END_TEST

// The held-out split: in each class, in name order, the 10th, 20th, ... image is a test image;
// train and test partition the folder; a folder whose classes all hold fewer than 10 images
// has no test split and says so.
START_TEST(test_png_folder_split) {
    static const int counts[2] = {21, 9}; // class a: test images 9 and 19; class b: none
    char name[256], path[1024], root[1024];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < counts[k]; i++) {
            uint8_t px[4] = {(uint8_t)i, (uint8_t)k, 0, 0};
            snprintf(name, sizeof name, "split/%c/%02d.png", 'a' + k, i);
            write_grey(scratch_path(name, path, sizeof path), 2, 2, px);
        }
    Dataset train, test;
    Error err = {{0}};
    scratch_path("split", root, sizeof root);
    ck_assert_msg(png_folder_load(root, 1, 2, SPLIT_TRAIN, &train, &err) == 0, "%s", err.msg);
    ck_assert_msg(png_folder_load(root, 1, 2, SPLIT_TEST, &test, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(train.count, 28);
    ck_assert_int_eq(test.count, 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(test.labels[i], 0);
        ck_assert_float_eq(test.data[i * 4], (float)(9 + 10 * i) / 127.5f - 1.0f);
    }
    for (int64_t i = 0; i < train.count; i++) // neither test image is in the training split
        ck_assert(train.labels[i] != 0 || (train.data[i * 4] != test.data[0] &&
                                           train.data[i * 4] != test.data[4]));
    dataset_free(&train);
    dataset_free(&test);
    PngFolderShape shape; // the counts from the file names: class b has the fewest, none
    ck_assert_msg(png_folder_probe(root, &shape, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(shape.fewest_test, 0);
    ck_assert_str_eq(shape.fewest_test_class, "b");
    scratch_path("split/a", root, sizeof root);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -r %s", root);
    ck_assert(system(cmd) == 0);
    scratch_path("split", root, sizeof root);
    ck_assert_int_eq(png_folder_load(root, 1, 2, SPLIT_TEST, &test, &err), -1);
    ck_assert_msg(strstr(err.msg, "no test images") && strstr(err.msg, root), "%s", err.msg);
}
END_TEST

typedef enum {
    REJECT_NOT_SQUARE,
    REJECT_TRUNCATED_PNG,
    REJECT_CRC_ERROR,
    REJECT_NOT_PNG,
    REJECT_PALETTE_INDEX,
    REJECT_PALETTE_INDEX_2BIT,
    REJECT_EMPTY_CLASS,
    REJECT_NO_CLASSES,
    REJECT_MISSING_ROOT,
    REJECT_NESTED_FOLDER,
    REJECT_BAD_CHANNELS,
    REJECT_COUNT
} RejectCase;

static const char *const reject_words[REJECT_COUNT][4] = {
    [REJECT_NOT_SQUARE] = {"4 x 3", "expected a square image", NULL},
    [REJECT_TRUNCATED_PNG] = {"corrupt PNG", NULL},
    [REJECT_CRC_ERROR] = {"corrupt PNG", "IHDR: CRC error", NULL},
    [REJECT_NOT_PNG] = {"not a PNG file", NULL},
    [REJECT_PALETTE_INDEX] = {"pixel (1, 2) has palette index 5", "beyond the 2 entries", NULL},
    [REJECT_PALETTE_INDEX_2BIT] = {"pixel (3, 0) has palette index 3", "beyond the 3 entries",
                                   NULL},
    [REJECT_EMPTY_CLASS] = {"holds no images", NULL},
    [REJECT_NO_CLASSES] = {"no class folders", NULL},
    [REJECT_MISSING_ROOT] = {"cannot open folder", NULL},
    [REJECT_NESTED_FOLDER] = {"a folder inside class folder", NULL},
    [REJECT_BAD_CHANNELS] = {"channels 2", "expected 1 (grey) or 3 (RGB)", NULL},
};

// A PX x PX palette PNG of `entries` colours whose pixel `at` (row-major) has index `index`
// and every other pixel index 0 or 1: what a fuzzer found libpng reading as black.
static void write_palette_beyond_plte(const char *path, int bit_depth, int entries, int at,
                                      int index) {
    static const png_color colours[3] = {{200, 10, 10}, {10, 200, 10}, {10, 10, 200}};
    uint8_t packed[PIXELS] = {0};
    int per_byte = 8 / bit_depth, row_bytes = (PX + per_byte - 1) / per_byte;
    for (int p = 0; p < PIXELS; p++) {
        int value = p == at ? index : p % 2, x = p % PX;
        int shift = 8 - bit_depth * (x % per_byte + 1);
        packed[(p / PX) * row_bytes + x / per_byte] |= (uint8_t)(value << shift);
    }
    write_png(path, PX, PX, PNG_COLOR_TYPE_PALETTE, bit_depth, packed, colours, entries, NULL, 0);
}

// A valid class beside one bad thing; the message names the bad file or folder.
START_TEST(test_png_folder_rejects) {
    RejectCase c = (RejectCase)_i;
    char root[1024], name[256], good[1024], bad[1024];
    snprintf(name, sizeof name, "reject%d", _i);
    scratch_path(name, root, sizeof root); // made by the first file written below
    uint8_t grey[PIXELS] = {0, 50, 100, 150};
    if (c != REJECT_NO_CLASSES && c != REJECT_MISSING_ROOT) {
        snprintf(name, sizeof name, "reject%d/good/a.png", _i);
        write_grey(scratch_path(name, good, sizeof good), PX, PX, grey);
    }
    snprintf(name, sizeof name, "reject%d/other/b.png", _i);
    if (c != REJECT_MISSING_ROOT && c != REJECT_NO_CLASSES) scratch_path(name, bad, sizeof bad);
    const char *named = bad;
    size_t len;
    switch (c) {
    case REJECT_NOT_SQUARE: write_grey(bad, 3, 4, grey); break;
    case REJECT_TRUNCATED_PNG:
        write_grey(bad, PX, PX, grey);
        free(read_bytes(bad, &len));
        cut_file(bad, len * 3 / 5);
        break;
    case REJECT_CRC_ERROR: // the signature (8), IHDR's length and type (8) and data (13): its CRC
        write_grey(bad, PX, PX, grey);
        corrupt_file(bad, 8 + 8 + 13, 1);
        break;
    case REJECT_NOT_PNG: write_bytes(bad, "P5\n4 4\n255\n", 11); break;
    case REJECT_PALETTE_INDEX: write_palette_beyond_plte(bad, 8, 2, 2 * PX + 1, 5); break;
    case REJECT_PALETTE_INDEX_2BIT: write_palette_beyond_plte(bad, 2, 3, 3, 3); break;
    case REJECT_EMPTY_CLASS: *strrchr(bad, '/') = '\0'; break; // the folder exists, empty
    case REJECT_NO_CLASSES:
        snprintf(name, sizeof name, "reject%d/lonely.png", _i);
        write_grey(scratch_path(name, bad, sizeof bad), PX, PX, grey);
        named = root;
        break;
    case REJECT_MISSING_ROOT: named = root; break;
    case REJECT_NESTED_FOLDER: mkdir(bad, 0755); break;
    case REJECT_BAD_CHANNELS: named = root; break;
    case REJECT_COUNT: break;
    }
    Dataset d;
    Error err = {{0}};
    ck_assert_int_eq(
        png_folder_load(root, c == REJECT_BAD_CHANNELS ? 2 : 1, PX, SPLIT_ALL, &d, &err), -1);
    expect_message("PNG folder", &err, named, reject_words[c]);
    expect_empty("PNG folder", &d);
}
END_TEST

// ---- toy 2D -------------------------------------------------------------------------------------

// Per component: exactly count / K points, mean at the ring position, per-axis standard
// deviation `std` and no correlation, within five standard errors.
START_TEST(test_toy2d_statistics) {
    enum { K = 8, COUNT = 16000, PER = COUNT / K };
    const float radius = 4.0f, std = 0.5f;
    Dataset d;
    Error err = {{0}};
    ck_assert_msg(toy2d_make(COUNT, K, radius, std, test_seed_for("toy2d"), &d, &err) == 0, "%s",
                  err.msg);
    ck_assert_int_eq(d.dim, 2);
    ck_assert_int_eq(d.num_classes, K);
    ck_assert(!dataset_is_image(&d));
    float m2[2];
    toy2d_component_mean(2, K, radius, m2); // a quarter turn
    ck_assert_float_eq_tol(m2[0], 0.0f, 1e-6f);
    ck_assert_float_eq_tol(m2[1], radius, 1e-6f);
    for (int k = 0; k < K; k++) {
        double n = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
        for (int64_t i = 0; i < d.count; i++) {
            if (d.labels[i] != k) continue;
            double x = d.data[2 * i], y = d.data[2 * i + 1];
            n++, sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
        }
        ck_assert_int_eq((int)n, PER);
        double mx = sx / n, my = sy / n;
        double vx = sxx / n - mx * mx, vy = syy / n - my * my, cxy = sxy / n - mx * my;
        float mean[2];
        toy2d_component_mean(k, K, radius, mean);
        double se_mean = std / sqrt(PER), se_std = std / sqrt(2.0 * PER);
        double se_cov = std * std / sqrt(PER);
        ck_assert_msg(fabs(mx - mean[0]) < 5 * se_mean && fabs(my - mean[1]) < 5 * se_mean,
                      "component %d: mean (%.4f, %.4f), want (%.4f, %.4f)", k, mx, my,
                      (double)mean[0], (double)mean[1]);
        ck_assert_msg(fabs(sqrt(vx) - std) < 5 * se_std && fabs(sqrt(vy) - std) < 5 * se_std,
                      "component %d: std (%.4f, %.4f), want %.4f", k, sqrt(vx), sqrt(vy),
                      (double)std);
        ck_assert_msg(fabs(cxy) < 5 * se_cov, "component %d: covariance %.4f", k, cxy);
    }
    dataset_free(&d);
}
END_TEST

START_TEST(test_toy2d_seeded) {
    uint64_t seed = test_seed_for("toy2d_seeded");
    Dataset a, b, c;
    Error err = {{0}};
    ck_assert_int_eq(toy2d_make(100, 4, 2.0f, 0.1f, seed, &a, &err), 0);
    ck_assert_int_eq(toy2d_make(100, 4, 2.0f, 0.1f, seed, &b, &err), 0);
    ck_assert_int_eq(toy2d_make(100, 4, 2.0f, 0.1f, seed + 1, &c, &err), 0);
    ck_assert_mem_eq(a.data, b.data, 200 * sizeof(float));
    ck_assert(memcmp(a.data, c.data, 200 * sizeof(float)) != 0);
    dataset_free(&a);
    dataset_free(&b);
    dataset_free(&c);
}
END_TEST

START_TEST(test_toy2d_rejects_bad_parameters) {
    Dataset d;
    Error err = {{0}};
    ck_assert_int_eq(toy2d_make(0, 8, 4.0f, 0.5f, 1, &d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "count 0"));
    ck_assert_int_eq(toy2d_make(10, 0, 4.0f, 0.5f, 1, &d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "components 0"));
    ck_assert_int_eq(toy2d_make(10, 8, NAN, 0.5f, 1, &d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "radius"));
    ck_assert_int_eq(toy2d_make(10, 8, 4.0f, -1.0f, 1, &d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "std -1"));
    expect_empty("toy2d", &d);
}
END_TEST

// ---- the batcher --------------------------------------------------------------------------------

// Example i is the vector (i, -i) with label i % 7, so a batch reveals which examples it holds.
static void index_dataset(Dataset *d, int64_t n) {
    dataset_alloc_vectors(d, n, 2, 7);
    for (int64_t i = 0; i < n; i++) {
        d->data[2 * i] = (float)i;
        d->data[2 * i + 1] = (float)-i;
        d->labels[i] = (int32_t)(i % 7);
    }
}

// The example indices of the loader's next batch, checked against the batch's labels.
static void next_indices(DataLoader *l, int64_t *idx) {
    tensor_scope_begin();
    Tensor *x, *y;
    dataloader_next(l, &x, &y, DEVICE_CPU);
    ck_assert_int_eq(x->shape.ndim, 2);
    ck_assert_int_eq(x->shape.dim[0], l->batch);
    ck_assert_int_eq(x->shape.dim[1], 2);
    ck_assert_int_eq(y->dtype, DTYPE_I32);
    const float *xv = tensor_f32(x);
    const int32_t *yv = tensor_i32(y);
    for (int64_t b = 0; b < l->batch; b++) {
        idx[b] = (int64_t)xv[2 * b];
        ck_assert_float_eq(xv[2 * b + 1], -xv[2 * b]);
        ck_assert_int_eq(yv[b], idx[b] % 7);
    }
    tensor_scope_end();
}

// n examples, batches of 8 that do not divide it: every run of n consecutive stream entries
// that starts at an epoch boundary is a permutation, and the loader counts the epochs.
START_TEST(test_loader_each_example_once_per_epoch) {
    enum { N = 37, BATCH = 8, EPOCHS = 4, TOTAL = N * EPOCHS };
    Dataset d;
    index_dataset(&d, N);
    DataLoader l;
    dataloader_init(&l, &d, BATCH, test_seed_for("loader_cover"));
    int64_t stream[TOTAL + BATCH];
    for (int got = 0; got < TOTAL; got += BATCH) next_indices(&l, stream + got);
    for (int e = 0; e < EPOCHS; e++) {
        int seen[N] = {0};
        for (int i = 0; i < N; i++) seen[stream[e * N + i]]++;
        for (int i = 0; i < N; i++)
            ck_assert_msg(seen[i] == 1, "epoch %d: example %d seen %d times", e, i, seen[i]);
    }
    ck_assert_int_eq(l.epoch, (TOTAL + BATCH - 1) / BATCH * BATCH / N);
    ck_assert_int_eq(l.position, (TOTAL + BATCH - 1) / BATCH * BATCH % N);
    dataloader_free(&l);
    dataset_free(&d);
}
END_TEST

// The same seed gives the same stream; epochs are shuffled differently; another seed differs.
START_TEST(test_loader_seeded_and_reshuffled) {
    enum { N = 50, BATCH = 10, BATCHES = 3 * N / BATCH };
    Dataset d;
    index_dataset(&d, N);
    uint64_t seed = test_seed_for("loader_seeded");
    DataLoader a, b, c;
    dataloader_init(&a, &d, BATCH, seed);
    dataloader_init(&b, &d, BATCH, seed);
    dataloader_init(&c, &d, BATCH, seed + 1);
    int64_t sa[BATCHES * BATCH], sb[BATCHES * BATCH], sc[BATCHES * BATCH];
    for (int i = 0; i < BATCHES; i++) {
        next_indices(&a, sa + i * BATCH);
        next_indices(&b, sb + i * BATCH);
        next_indices(&c, sc + i * BATCH);
    }
    ck_assert_mem_eq(sa, sb, sizeof sa);
    ck_assert(memcmp(sa, sa + N, N * sizeof(int64_t)) != 0);     // epoch 0 vs 1
    ck_assert(memcmp(sa + N, sa + 2 * N, N * sizeof(int64_t)) != 0); // epoch 1 vs 2
    ck_assert(memcmp(sa, sc, N * sizeof(int64_t)) != 0);
    dataloader_free(&a);
    dataloader_free(&b);
    dataloader_free(&c);
    dataset_free(&d);
}
END_TEST

// Fisher-Yates done right puts every example in every slot equally often: over many epochs
// of 5 examples, each (example, slot) count is within 5 standard deviations of epochs / 5.
START_TEST(test_loader_shuffle_is_uniform) {
    enum { N = 5, EPOCHS = 2000 };
    Dataset d;
    index_dataset(&d, N);
    DataLoader l;
    dataloader_init(&l, &d, N, test_seed_for("loader_uniform"));
    int counts[N][N] = {{0}};
    int64_t idx[N];
    for (int e = 0; e < EPOCHS; e++) {
        next_indices(&l, idx);
        for (int slot = 0; slot < N; slot++) counts[idx[slot]][slot]++;
    }
    double expect = (double)EPOCHS / N, sd = sqrt(expect * (1.0 - 1.0 / N));
    for (int i = 0; i < N; i++)
        for (int slot = 0; slot < N; slot++)
            ck_assert_msg(fabs(counts[i][slot] - expect) < 5 * sd,
                          "example %d in slot %d %d times of %d epochs, want about %.0f", i, slot,
                          counts[i][slot], EPOCHS, expect);
    dataloader_free(&l);
    dataset_free(&d);
}
END_TEST

// A loader made fresh from (seed, epoch, position) continues exactly where the first one was,
// including across the next epoch boundary.
START_TEST(test_loader_resumes_from_saved_state) {
    enum { N = 23, BATCH = 5, AFTER = 12 };
    Dataset d;
    index_dataset(&d, N);
    uint64_t seed = test_seed_for("loader_resume");
    int32_t skip;
    test_fill_ints(&skip, 1, seed, 20);
    DataLoader a;
    dataloader_init(&a, &d, BATCH, seed);
    int64_t scratch[BATCH];
    for (int i = 0; i < skip; i++) next_indices(&a, scratch);
    uint64_t saved_seed = a.rng.seed;
    int64_t saved_epoch = a.epoch, saved_position = a.position;
    int64_t want[AFTER * BATCH], got[AFTER * BATCH];
    for (int i = 0; i < AFTER; i++) next_indices(&a, want + i * BATCH);
    DataLoader b;
    Error err = {{0}};
    dataloader_init(&b, &d, BATCH, saved_seed);
    ck_assert_msg(dataloader_seek(&b, saved_epoch, saved_position, &err) == 0, "%s", err.msg);
    for (int i = 0; i < AFTER; i++) next_indices(&b, got + i * BATCH);
    ck_assert_mem_eq(got, want, sizeof want);
    ck_assert_int_eq(dataloader_seek(&b, 0, N, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "position 23"));
    ck_assert_int_eq(dataloader_seek(&b, -1, 0, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "epoch -1"));
    dataloader_free(&a);
    dataloader_free(&b);
    dataset_free(&d);
}
END_TEST

// Image batches are (B, C, H, W) F32 with (B) I32 labels on every backend, equal to the CPU's.
START_TEST(test_loader_image_batches_on_every_backend) {
    enum { N = 10, C = 1, H = 2, W = 3, BATCH = 4 };
    Dataset d;
    dataset_alloc_images(&d, N, C, H, W, 3);
    test_fill_uniform(d.data, N * C * H * W, test_seed_for("loader_images"), -1, 1);
    for (int i = 0; i < N; i++) d.labels[i] = i % 3;
    float want_x[BATCH * C * H * W];
    int32_t want_y[BATCH];
    for (int k = 0; k < DEVICE_COUNT; k++) {
        if (!backend_get((Device)k)) continue;
        DataLoader l;
        dataloader_init(&l, &d, BATCH, 42);
        tensor_scope_begin();
        Tensor *x, *y;
        dataloader_next(&l, &x, &y, (Device)k);
        ck_assert(shape_equal(x->shape, shape4(BATCH, C, H, W)));
        ck_assert(shape_equal(y->shape, shape1(BATCH)));
        ck_assert_int_eq(x->dtype, DTYPE_F32);
        ck_assert_int_eq(y->dtype, DTYPE_I32);
        ck_assert_int_eq(x->device, k);
        float got_x[BATCH * C * H * W];
        int32_t got_y[BATCH];
        tensor_read(x, got_x);
        tensor_read(y, got_y);
        if (k == 0) {
            memcpy(want_x, got_x, sizeof want_x);
            memcpy(want_y, got_y, sizeof want_y);
            enum { DIM = C * H * W };
            for (int b = 0; b < BATCH; b++) { // each row is some example with its label
                int match = -1;
                for (int i = 0; i < N; i++)
                    if (memcmp(d.data + i * DIM, got_x + b * DIM, DIM * sizeof(float)) == 0)
                        match = i;
                ck_assert_int_ge(match, 0);
                ck_assert_int_eq(got_y[b], d.labels[match]);
            }
        }
        ck_assert_mem_eq(got_x, want_x, sizeof want_x);
        ck_assert_mem_eq(got_y, want_y, sizeof want_y);
        tensor_scope_end();
        dataloader_free(&l);
    }
    dataset_free(&d);
}
END_TEST

// ---- PNG output ---------------------------------------------------------------------------------

static uint8_t byte_of(float x) {
    double v = floor((x + 1.0) * 127.5 + 0.5);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

// The grid read back: its size, its format, each cell's pixels (clamped) and white padding.
static void check_grid(const char *name, int n, int C, int H, int W, int columns, int pad) {
    char path[1024];
    scratch_path(name, path, sizeof path);
    size_t count = (size_t)n * C * H * W;
    float *images = malloc(count * sizeof(float));
    ck_assert_ptr_nonnull(images);
    test_fill_uniform(images, (int64_t)count, test_seed_for(name), -1.5f, 1.5f); // some clamp
    Error err = {{0}};
    ck_assert_msg(png_write_grid(path, images, n, C, H, W, columns, pad, &err) == 0, "%s", err.msg);
    PngImage img;
    ck_assert_msg(pngimage_read(path, &img, &err) == 0, "%s", err.msg);
    int rows = (n + columns - 1) / columns;
    ck_assert_int_eq(img.width, columns * (W + pad) + pad);
    ck_assert_int_eq(img.height, rows * (H + pad) + pad);
    ck_assert_int_eq(img.file_channels, C);
    ck_assert_int_eq(img.bit_depth, 8);
    for (int y = 0; y < img.height; y++)
        for (int x = 0; x < img.width; x++) {
            const uint8_t *px = img.rgba + 4 * ((size_t)y * img.width + x);
            int r = (y - pad) / (H + pad), cx = (x - pad) / (W + pad);
            int iy = (y - pad) % (H + pad), ix = (x - pad) % (W + pad);
            int k = r * columns + cx;
            bool inside = y >= pad && x >= pad && iy < H && ix < W && k < n;
            for (int c = 0; c < 3; c++) {
                uint8_t want = 255;
                int channel = C == 1 ? 0 : c;
                if (inside) want = byte_of(images[(((size_t)k * C + channel) * H + iy) * W + ix]);
                ck_assert_msg(px[c] == want, "%s: pixel (%d, %d) channel %d: got %d, want %d",
                              name, x, y, c, px[c], want);
            }
            ck_assert_int_eq(px[3], 255);
        }
    pngimage_free(&img);
    free(images);
}

START_TEST(test_png_grid_grey_and_rgb) {
    check_grid("grid_grey.png", 5, 1, 4, 6, 3, 2);
    check_grid("grid_rgb.png", 2, 3, 3, 3, 2, 1);
    check_grid("grid_nopad.png", 4, 1, 2, 2, 2, 0);
}
END_TEST

START_TEST(test_png_scatter) {
    enum { SIZE = 101 }; // 10 pixels per unit for extent 5, origin at pixel 50
    char path[1024];
    scratch_path("scatter.png", path, sizeof path);
    const float points[3 * 2] = {2.0f, 3.0f, -1.0f, -2.0f, 7.0f, 0.0f};
    const int32_t labels[3] = {3, 12, 0};
    static const uint8_t red[3] = {0xd6, 0x27, 0x28}, green[3] = {0x2c, 0xa0, 0x2c},
                         blue[3] = {0x1f, 0x77, 0xb4}, grey[3] = {190, 190, 190},
                         white[3] = {255, 255, 255};
    for (int with_labels = 0; with_labels < 2; with_labels++) {
        Error err = {{0}};
        ck_assert_msg(png_write_scatter(path, points, with_labels ? labels : NULL, 3, SIZE, 5.0f,
                                        &err) == 0, "%s", err.msg);
        PngImage img;
        ck_assert_msg(pngimage_read(path, &img, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(img.width, SIZE);
        ck_assert_int_eq(img.height, SIZE);
        ck_assert_int_eq(img.file_channels, 3);
        struct { int x, y; const uint8_t *rgb; } probes[] = {
            {70, 20, with_labels ? red : blue},   {71, 21, with_labels ? red : blue},
            {40, 70, with_labels ? green : blue}, {50, 50, grey}, {50, 5, grey},
            {60, 47, grey} /* the tick at x = 1 */, {0, 0, white}, {99, 99, white}};
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            const uint8_t *px = img.rgba + 4 * ((size_t)probes[i].y * SIZE + probes[i].x);
            ck_assert_msg(memcmp(px, probes[i].rgb, 3) == 0, "pixel (%d, %d): got %d %d %d",
                          probes[i].x, probes[i].y, px[0], px[1], px[2]);
        }
        pngimage_free(&img);
    }
}
END_TEST

// Rewriting replaces the file and leaves no temporary; a missing folder is an Error.
START_TEST(test_png_write_atomic_and_errors) {
    char path[1024], dir[1024];
    scratch_path("atomic/grid.png", path, sizeof path);
    scratch_path("atomic", dir, sizeof dir);
    float one[4] = {-1, 1, 0, 0.5f};
    Error err = {{0}};
    ck_assert_int_eq(png_write_grid(path, one, 1, 1, 2, 2, 1, 0, &err), 0);
    ck_assert_int_eq(png_write_grid(path, one, 1, 1, 2, 2, 1, 3, &err), 0);
    PngImage img;
    ck_assert_msg(pngimage_read(path, &img, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(img.width, 2 + 2 * 3);
    pngimage_free(&img);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *entry;
    int files = 0;
    while ((entry = readdir(d)) != NULL) files += entry->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(files, 1);
    scratch_path("no_such_dir/x/grid.png", path, sizeof path);
    test_remove_tree(strcat(dir, "/../no_such_dir"));
    ck_assert_int_eq(png_write_grid(path, one, 1, 1, 2, 2, 1, 0, &err), -1);
    expect_message("missing folder", &err, path, (const char *const[]){"cannot create", NULL});
    ck_assert_int_eq(pngimage_read(path, &img, &err), -1);
    expect_message("missing file", &err, path, (const char *const[]){"cannot open", NULL});
}
END_TEST

// FIPS 180-4's examples and the NIST one-million-'a' vector, fed in uneven pieces.
START_TEST(test_sha256_vectors) {
    const char *in[] = {"", "abc", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"};
    const char *want[] = {
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"};
    for (int i = 0; i < 3; i++) {
        Sha256 s;
        unsigned char d[32];
        char hex[65];
        sha256_init(&s);
        for (size_t k = 0; k < strlen(in[i]); k += 5) // pieces of 5 bytes cross the blocks
            sha256_update(&s, in[i] + k, strlen(in[i]) - k < 5 ? strlen(in[i]) - k : 5);
        sha256_final(&s, d);
        for (int j = 0; j < 32; j++) snprintf(hex + 2 * j, 3, "%02x", d[j]);
        ck_assert_str_eq(hex, want[i]);
    }
    char path[600], hex[65];
    scratch_path("million-a", path, sizeof path);
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    for (int i = 0; i < 1000000; i++) fputc('a', f);
    fclose(f);
    long long size;
    Error err;
    ck_assert_msg(sha256_file(path, hex, &size, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    ck_assert_int_eq(size, 1000000);
}
END_TEST

// A listed file is checked when loaded: intact passes, a changed byte, a cut file or a missing
// file is named with its restore; an unlisted file and a tree without a manifest pass as
// "not shipped"; a malformed manifest line is named by its number.
START_TEST(test_manifest_checks_shipped_files) {
    char dir[600], path[700], manifest[700], text[900];
    scratch_path("shipped", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/models", dir);
    ck_assert(mkdir(dir, 0755) == 0 && mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/models/w.safetensors", dir);
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    fputs("abc", f);
    fclose(f);
    snprintf(manifest, sizeof manifest, "%s/" MANIFEST_NAME, dir);
    f = fopen(manifest, "w");
    ck_assert(f != NULL);
    fprintf(f, "# shipped\n3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad "
               "models/w.safetensors\n");
    fclose(f);
    Error err;
    bool listed = false;
    ck_assert_msg(manifest_check(path, &listed, &err) == 0, "%s", err.msg);
    ck_assert(listed);
    ck_assert_int_eq(manifest_check_all(manifest, &err), 1);

    f = fopen(path, "wb"); // one byte changed, same size
    fputs("abd", f);
    fclose(f);
    ck_assert_int_eq(manifest_check(path, &listed, &err), -1);
    expect_message("changed file", &err, path,
                   (const char *const[]){"damaged", "git checkout -- ", MANIFEST_NAME, NULL});
    f = fopen(path, "wb"); // cut short
    fputs("a", f);
    fclose(f);
    ck_assert_int_eq(manifest_check_all(manifest, &err), -1);
    expect_message("cut file", &err, path, (const char *const[]){"1 bytes", "3 bytes", NULL});
    unlink(path);
    ck_assert_int_eq(manifest_check_all(manifest, &err), -1);
    expect_message("missing file", &err, path, (const char *const[]){"missing", NULL});

    snprintf(path, sizeof path, "%s/models/other.safetensors", dir);
    f = fopen(path, "wb");
    fputs("x", f);
    fclose(f);
    ck_assert_int_eq(manifest_check(path, &listed, &err), 0);
    ck_assert(!listed);
    f = fopen(manifest, "w");
    fprintf(f, "# shipped\n\n3 not-a-digest models/w.safetensors\n");
    fclose(f);
    ck_assert_int_eq(manifest_check_all(manifest, &err), -1);
    snprintf(text, sizeof text, "%s:3", manifest);
    expect_message("malformed line", &err, text, (const char *const[]){"SIZE SHA256 PATH", NULL});
    f = fopen(manifest, "w");
    fprintf(f, "3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad ../w\n");
    fclose(f);
    ck_assert_int_eq(manifest_check_all(manifest, &err), -1);
    expect_message("escaping path", &err, manifest, (const char *const[]){"relative", NULL});
}
END_TEST

// The repository's own manifest lists what it ships, intact: a changed weights file committed
// without tools/write_manifest.sh fails here rather than at a user's first load.
START_TEST(test_shipped_manifest_intact) {
    const char *fixtures = getenv("DMDR_FIXTURES");
    ck_assert_msg(fixtures != NULL, "DMDR_FIXTURES is not set (run through meson test)");
    char manifest[700];
    snprintf(manifest, sizeof manifest, "%s/../../docs/experiments/" MANIFEST_NAME, fixtures);
    Error err;
    int n = manifest_check_all(manifest, &err);
    ck_assert_msg(n >= 4, "%s: %s", manifest, n < 0 ? err.msg : "fewer than 4 files listed");
}
END_TEST

static Suite *data_suite(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_add_unchecked_fixture(tc, test_scratch_setup, test_scratch_teardown);
    tcase_add_test(tc, test_fashion_mnist_train);
    tcase_add_test(tc, test_fashion_mnist_test_split);
    tcase_add_test(tc, test_idx_gzip_and_plain_load_alike);
    tcase_add_test(tc, test_fashion_mnist_directory_by_split);
    tcase_add_test(tc, test_fashion_mnist_missing_files);
    tcase_add_loop_test(tc, test_malformed_idx, 0, BAD_IDX_COUNT);
    tcase_add_test(tc, test_png_folder_every_format);
    tcase_add_test(tc, test_png_folder_resizes_square_images);
    tcase_add_test(tc, test_png_folder_split);
    tcase_add_loop_test(tc, test_png_folder_rejects, 0, REJECT_COUNT);
    tcase_add_test(tc, test_toy2d_statistics);
    tcase_add_test(tc, test_toy2d_seeded);
    tcase_add_test(tc, test_toy2d_rejects_bad_parameters);
    tcase_add_test(tc, test_loader_each_example_once_per_epoch);
    tcase_add_test(tc, test_loader_seeded_and_reshuffled);
    tcase_add_test(tc, test_loader_shuffle_is_uniform);
    tcase_add_test(tc, test_loader_resumes_from_saved_state);
    tcase_add_test(tc, test_loader_image_batches_on_every_backend);
    tcase_add_test(tc, test_png_grid_grey_and_rgb);
    tcase_add_test(tc, test_png_scatter);
    tcase_add_test(tc, test_png_write_atomic_and_errors);
    tcase_add_test(tc, test_sha256_vectors);
    tcase_add_test(tc, test_manifest_checks_shipped_files);
    tcase_add_test(tc, test_shipped_manifest_intact);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(data_suite()); }
