// IDX files (the MNIST family's format) read through zlib, and Fashion-MNIST on top of them.
//
// An IDX file is a 4-byte magic (0, 0, type, ndim) with type 0x08 = unsigned byte, then ndim
// big-endian u32 sizes, then the values row-major. zlib's gz* functions read gzip files and
// plain files alike, so both the Debian package's .gz files and unpacked copies load.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "kernels/check.h"
#include "tools/data/atomic_file.h"
#include "tools/data/dataset.h"

enum { IDX_IMAGES_MAGIC = 0x00000803, IDX_LABELS_MAGIC = 0x00000801 };

static const char *const fashion_class_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// Reads exactly n bytes of `what`, the part of it that starts `offset` bytes into its `total`.
// Distinguishes a short file (truncated) from a damaged gzip stream, and says how much was
// there.
static int read_exact(gzFile f, const char *path, void *buf, size_t n, const char *what,
                      size_t offset, size_t total, Error *err) {
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got < (1u << 30) ? n - got : (1u << 30);
        int r = gzread(f, (char *)buf + got, (unsigned)chunk);
        if (r < 0) {
            int errnum;
            const char *msg = gzerror(f, &errnum);
            return error_set(err, "%s: corrupt gzip data while reading the %s: %s", path, what,
                             errnum == Z_ERRNO ? strerror(errno) : msg);
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got < n) {
        int errnum;
        gzerror(f, &errnum);
        return error_set(err, "%s: truncated: expected %zu bytes of %s, found %zu%s", path,
                         total, what, offset + got,
                         errnum == Z_BUF_ERROR ? " (the gzip stream ends early)" : "");
    }
    return 0;
}

// After the promised data, the file must end; reading on also makes zlib check the gzip CRC.
static int expect_end(gzFile f, const char *path, size_t expected_total, Error *err) {
    char extra;
    int r = gzread(f, &extra, 1);
    if (r < 0) {
        int errnum;
        const char *msg = gzerror(f, &errnum);
        return error_set(err, "%s: corrupt gzip data at the end of the file: %s", path,
                         errnum == Z_ERRNO ? strerror(errno) : msg);
    }
    if (r > 0)
        return error_set(err, "%s: trailing data: expected the file to end after %zu bytes",
                         path, expected_total);
    return 0;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

// The header: the magic first, alone, so a file of the wrong kind is reported as that even
// when it is shorter than the header we expected; then ndim sizes into dims.
static int read_idx_header(gzFile f, const char *path, uint32_t magic, int ndim, uint32_t *dims,
                           Error *err) {
    unsigned char bytes[4 * 3];
    if (read_exact(f, path, bytes, 4, "IDX magic number", 0, 4, err)) return -1;
    uint32_t found = be32(bytes);
    if (found != magic) {
        const char *kind = found == IDX_IMAGES_MAGIC   ? " (an image file)"
                           : found == IDX_LABELS_MAGIC ? " (a label file)"
                           : (found >> 16) != 0        ? " (not an IDX file)"
                                                       : "";
        return error_set(err,
                         "%s: bad magic number 0x%08x%s: expected 0x%08x (unsigned bytes, %d "
                         "dimension%s)",
                         path, found, kind, magic, ndim, ndim == 1 ? "" : "s");
    }
    if (read_exact(f, path, bytes, 4 * (size_t)ndim, "IDX sizes", 0, 4 * (size_t)ndim, err))
        return -1;
    for (int i = 0; i < ndim; i++) dims[i] = be32(bytes + 4 * i);
    return 0;
}

// Opens path and reads its header (see read_idx_header); NULL with err on failure.
static gzFile open_idx(const char *path, uint32_t magic, int ndim, uint32_t *dims, Error *err) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        error_set(err, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    gzbuffer(f, 1u << 17);
    if (read_idx_header(f, path, magic, ndim, dims, err)) {
        gzclose(f);
        return NULL;
    }
    return f;
}

// Reads the n bytes of data that follow the header and checks the file ends there. The
// buffer grows as the data arrives (from 1 MiB, doubling), so a header that promises more than
// the file holds is reported as truncated without first allocating all it promised.
static int read_body(gzFile f, const char *path, size_t n, size_t header_len, const char *what,
                     uint8_t **out, Error *err) {
    size_t got = 0, cap = n < ((size_t)1 << 20) ? n : ((size_t)1 << 20);
    uint8_t *buf = NULL;
    int rc = 0;
    for (;;) {
        uint8_t *bigger = realloc(buf, cap ? cap : 1);
        if (!bigger) {
            rc = error_set(err, "%s: cannot allocate %zu bytes for the %s the header promises",
                           path, cap, what);
            break;
        }
        buf = bigger;
        rc = read_exact(f, path, buf + got, cap - got, what, got, n, err);
        if (rc || cap == n) break;
        got = cap;
        cap = cap > n / 2 ? n : 2 * cap;
    }
    if (rc == 0) rc = expect_end(f, path, header_len + n, err);
    if (rc) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

// -> pixels (count, rows, cols)
int idx_load_images(const char *path, int64_t *count, int *rows, int *cols, uint8_t **pixels,
                    Error *err) {
    uint32_t dims[3] = {0};
    gzFile f = open_idx(path, IDX_IMAGES_MAGIC, 3, dims, err);
    if (!f) return -1;
    int rc = 0;
    // Sizes beyond these are not images we could train on; refusing them early also keeps
    // count * rows * cols far from overflow.
    if (dims[0] == 0 || dims[1] == 0 || dims[2] == 0 || dims[1] > 4096 || dims[2] > 4096) {
        rc = error_set(err,
                       "%s: bad sizes (%u images of %u x %u): expected at least one image and "
                       "1..4096 rows and columns",
                       path, dims[0], dims[1], dims[2]);
    } else {
        size_t n = (size_t)dims[0] * dims[1] * dims[2];
        rc = read_body(f, path, n, 16, "pixel data", pixels, err);
    }
    gzclose(f);
    if (rc) return -1;
    *count = dims[0];
    *rows = (int)dims[1];
    *cols = (int)dims[2];
    return 0;
}

// -> labels (count)
int idx_load_labels(const char *path, int64_t *count, uint8_t **labels, Error *err) {
    uint32_t dims[1] = {0};
    gzFile f = open_idx(path, IDX_LABELS_MAGIC, 1, dims, err);
    if (!f) return -1;
    int rc = dims[0] == 0 ? error_set(err, "%s: holds 0 labels: expected at least one", path)
                          : read_body(f, path, dims[0], 8, "labels", labels, err);
    gzclose(f);
    if (rc) return -1;
    *count = dims[0];
    return 0;
}

// images (count, rows, cols) u8 + labels (count) u8 -> (count, 1, rows, cols) in [-1, 1]
int idx_load_dataset(const char *images_path, const char *labels_path, int num_classes,
                     Dataset *out, Error *err) {
    memset(out, 0, sizeof *out);
    int64_t count, label_count;
    int rows, cols;
    uint8_t *pixels = NULL, *labels = NULL;
    if (idx_load_images(images_path, &count, &rows, &cols, &pixels, err)) return -1;
    if (idx_load_labels(labels_path, &label_count, &labels, err)) {
        free(pixels);
        return -1;
    }
    int rc = 0;
    if (label_count != count)
        rc = error_set(err,
                       "%s: holds %lld labels, but %s holds %lld images: expected equal counts",
                       labels_path, (long long)label_count, images_path, (long long)count);
    int max_label = 0;
    for (int64_t i = 0; !rc && i < count; i++) {
        if (num_classes > 0 && labels[i] >= num_classes)
            rc = error_set(err, "%s: label %d of image %lld is out of range: expected 0..%d",
                           labels_path, labels[i], (long long)i, num_classes - 1);
        if (labels[i] > max_label) max_label = labels[i];
    }
    if (!rc) {
        int classes = num_classes > 0 ? num_classes : max_label + 1;
        dataset_alloc_images(out, count, 1, rows, cols, classes);
        int64_t n = count * rows * cols;
        for (int64_t i = 0; i < n; i++) out->data[i] = (float)pixels[i] / 127.5f - 1.0f;
        for (int64_t i = 0; i < count; i++) out->labels[i] = labels[i];
    }
    free(pixels);
    free(labels);
    return rc;
}

static bool is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// dir/stem.gz when it exists, else dir/stem (an unpacked copy); buf gets the gz name when
// neither exists, for the error message.
static bool find_in_dir(const char *dir, const char *stem, char *buf, size_t buflen) {
    snprintf(buf, buflen, "%s/%s", dir, stem);
    if (path_exists(buf)) return true;
    snprintf(buf, buflen, "%s/%s.gz", dir, stem);
    return path_exists(buf);
}

int fashion_mnist_load(const char *dir_or_images_path, bool train, Dataset *out, Error *err) {
    memset(out, 0, sizeof *out);
    const char *where = dir_or_images_path ? dir_or_images_path : FASHION_MNIST_DIR;
    char images[4096], labels[4096];
    if (is_directory(where)) {
        const char *split = train ? "train" : "t10k";
        char stem[64];
        snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", split);
        bool have_images = find_in_dir(where, stem, images, sizeof images);
        snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", split);
        bool have_labels = find_in_dir(where, stem, labels, sizeof labels);
        if (!have_images || !have_labels)
            return error_set(err,
                             "%s: no %s: expected the Fashion-MNIST IDX files there (Debian: "
                             "apt install dataset-fashion-mnist)",
                             where, have_images ? labels : images);
    } else {
        const char *base = strrchr(where, '/');
        base = base ? base + 1 : where;
        const char *key = strstr(base, "images-idx3");
        if (!key)
            return error_set(err,
                             "%s: expected a directory of IDX files or an images file whose "
                             "name contains \"images-idx3\" (to find its \"labels-idx1\" file)",
                             where);
        size_t prefix = (size_t)(key - where);
        if (strlen(where) >= sizeof labels)
            return error_set(err, "%s: path too long", where);
        snprintf(images, sizeof images, "%s", where);
        snprintf(labels, sizeof labels, "%.*slabels-idx1%s", (int)prefix, where,
                 key + strlen("images-idx3"));
    }
    if (idx_load_dataset(images, labels, 10, out, err)) return -1;
    dataset_set_class_names(out, fashion_class_names);
    return 0;
}
