// safetensors read/write. Loading parses the JSON header with cJSON, checks every entry
// (dtype, shape, byte range against the file size and against the other tensors) and only then
// reads data, one tensor at a time with stdio. Saving writes a temporary file beside the target
// and renames it over, so a crash leaves the old checkpoint or the new one, never a torn one.
#include "tensor/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/check.h"

// A header this large is not a tensor index; refusing it keeps a corrupt length from
// turning into a giant allocation.
#define MAX_HEADER_BYTES (100ll * 1000 * 1000)
#define METADATA_KEY "__metadata__"

// The raw bytes are copied straight into tensors, so the host must share the file's byte order.
static void check_little_endian(void) {
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    DMDR_CHECK(first == 1, "safetensors data is little-endian and this host is not");
}

// ---- dtypes ------------------------------------------------------------------------------------

typedef enum { LOAD_NONE, LOAD_F32, LOAD_I32, LOAD_F16, LOAD_BF16 } LoadKind;

// Every dtype the format defines, so a file with one we do not load gets "unsupported"
// rather than "unknown".
static const struct {
    const char *name;
    LoadKind kind;
} file_dtypes[] = {
    {"F32", LOAD_F32},   {"I32", LOAD_I32},      {"F16", LOAD_F16},      {"BF16", LOAD_BF16},
    {"F64", LOAD_NONE},  {"I64", LOAD_NONE},     {"U64", LOAD_NONE},     {"U32", LOAD_NONE},
    {"I16", LOAD_NONE},  {"U16", LOAD_NONE},     {"I8", LOAD_NONE},      {"U8", LOAD_NONE},
    {"BOOL", LOAD_NONE}, {"F8_E4M3", LOAD_NONE}, {"F8_E5M2", LOAD_NONE}, {"F8_E8M0", LOAD_NONE},
    {"C64", LOAD_NONE},  {"F4", LOAD_NONE},      {"F6_E2M3", LOAD_NONE}, {"F6_E3M2", LOAD_NONE},
};

static int kind_size(LoadKind kind) { return kind == LOAD_F16 || kind == LOAD_BF16 ? 2 : 4; }

static DType kind_dtype(LoadKind kind) { return kind == LOAD_I32 ? DTYPE_I32 : DTYPE_F32; }

static float float_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t bits_from_float(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

// IEEE half -> float, exact for every input (inf and NaN keep their sign and payload). The
// three cases are blended with masks rather than branches so the conversion loop vectorises.
// A subnormal half is mantissa * 2^-24, computed as a product of normal floats so that a
// flush-to-zero mode set elsewhere cannot zero it.
static inline float f16_to_f32(uint16_t h) {
    uint32_t exponent = h & 0x7c00u;
    uint32_t shifted = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t inf_nan_mask = 0u - (uint32_t)(exponent == 0x7c00u);
    uint32_t subnormal_mask = 0u - (uint32_t)(exponent == 0);
    uint32_t normal = shifted + (112u << 23); // rebias the exponent from 15 to 127
    uint32_t inf_nan = shifted | 0x7f800000u;
    uint32_t subnormal = bits_from_float((float)(h & 0x3ffu) * 0x1p-24f);
    uint32_t bits = (normal & ~(inf_nan_mask | subnormal_mask)) | (inf_nan & inf_nan_mask) |
                    (subnormal & subnormal_mask);
    return float_from_bits((uint32_t)(h & 0x8000u) << 16 | bits);
}

// bfloat16 is the top half of a float.
static inline float bf16_to_f32(uint16_t b) { return float_from_bits((uint32_t)b << 16); }

// half (n) or bfloat16 (n) -> dst (n)
static void halves_to_f32(const uint16_t *src, float *dst, int64_t n, LoadKind kind) {
    if (kind == LOAD_F16) {
#pragma omp parallel for simd if (n > (1 << 16))
        for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32(src[i]);
    } else {
#pragma omp parallel for simd if (n > (1 << 16))
        for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
    }
}

// ---- header validation ---------------------------------------------------------------------

typedef struct {
    const char *name;  // owned by the cJSON tree
    const char *dtype; // as the file names it
    LoadKind kind;
    Shape shape;        // as written: ndim 0 for a scalar
    int64_t begin, end; // byte range within the data buffer
} Entry;

// error_set for a problem with one tensor: "<path>: tensor '<name>': <problem>".
static int entry_error(Error *err, const char *path, const Entry *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int entry_error(Error *err, const char *path, const Entry *e, const char *fmt, ...) {
    char problem[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return error_set(err, "%s: tensor '%s': %s", path, e->name, problem);
}

// A JSON number that is a non-negative integer, small enough to be exact in a double.
static bool json_count(const cJSON *item, int64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (!(v >= 0.0 && v <= 9007199254740992.0) || v != (double)(int64_t)v) return false;
    *out = (int64_t)v;
    return true;
}

// Bytes taken by a shape of elements of `size` bytes, or -1 when that overflows int64.
static int64_t shape_nbytes(Shape s, int64_t size) {
    for (int i = 0; i < s.ndim; i++)
        if (s.dim[i] == 0) return 0;
    int64_t bytes = size;
    for (int i = 0; i < s.ndim; i++) {
        if (bytes > INT64_MAX / s.dim[i]) return -1;
        bytes *= s.dim[i];
    }
    return bytes;
}

static int parse_dtype(const char *path, const cJSON *entry, Entry *e, Error *err) {
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!cJSON_IsString(dtype))
        return entry_error(err, path, e, "\"dtype\" is %s", dtype ? "not a string" : "missing");
    for (size_t i = 0; i < sizeof file_dtypes / sizeof file_dtypes[0]; i++) {
        if (strcmp(dtype->valuestring, file_dtypes[i].name) != 0) continue;
        if (file_dtypes[i].kind == LOAD_NONE)
            return entry_error(err, path, e, "unsupported dtype %s (we load F32, F16, BF16, I32)",
                               dtype->valuestring);
        e->dtype = file_dtypes[i].name;
        e->kind = file_dtypes[i].kind;
        return 0;
    }
    return entry_error(err, path, e, "unknown dtype \"%s\"", dtype->valuestring);
}

static int parse_shape(const char *path, const cJSON *entry, Entry *e, Error *err) {
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!cJSON_IsArray(shape))
        return entry_error(err, path, e, "\"shape\" is %s", shape ? "not an array" : "missing");
    int rank = cJSON_GetArraySize(shape);
    if (rank > TENSOR_MAX_DIMS)
        return entry_error(err, path, e, "shape has rank %d, more than the %d we support", rank,
                           TENSOR_MAX_DIMS);
    e->shape.ndim = rank;
    const cJSON *dim;
    int i = 0;
    cJSON_ArrayForEach(dim, shape) {
        if (!json_count(dim, &e->shape.dim[i]))
            return entry_error(err, path, e, "shape dim %d is not a non-negative integer", i);
        i++;
    }
    return 0;
}

// data_offsets are relative to the data buffer, which holds data_len bytes; the whole file
// would need 8 + header_len + end bytes.
static int parse_offsets(const char *path, const cJSON *entry, int64_t header_len, int64_t data_len,
                         Entry *e, Error *err) {
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsArray(offsets))
        return entry_error(err, path, e, "\"data_offsets\" is %s",
                           offsets ? "not an array" : "missing");
    if (cJSON_GetArraySize(offsets) != 2 ||
        !json_count(cJSON_GetArrayItem(offsets, 0), &e->begin) ||
        !json_count(cJSON_GetArrayItem(offsets, 1), &e->end))
        return entry_error(err, path, e,
                           "data_offsets must be [begin, end], two non-negative integers");
    if (e->begin > e->end)
        return entry_error(err, path, e, "data_offsets [%lld, %lld] end before they begin",
                           (long long)e->begin, (long long)e->end);
    if (e->end > data_len)
        return entry_error(err, path, e,
                           "data_offsets end %lld is beyond the data buffer (%lld bytes): "
                           "the file has %lld bytes but needs %lld (truncated?)",
                           (long long)e->end, (long long)data_len,
                           (long long)(8 + header_len + data_len),
                           (long long)(8 + header_len + e->end));
    int64_t need = shape_nbytes(e->shape, kind_size(e->kind));
    if (need != e->end - e->begin) {
        char shape_buf[96];
        shape_str(e->shape, shape_buf, sizeof shape_buf);
        if (need < 0)
            return entry_error(err, path, e, "shape %s %s is too large", shape_buf, e->dtype);
        return entry_error(err, path, e, "shape %s %s needs %lld bytes, data_offsets give %lld",
                           shape_buf, e->dtype, (long long)need, (long long)(e->end - e->begin));
    }
    return 0;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// The first name (in sorted order) that occurs twice, or NULL.
static const char *find_duplicate(const char *const *names, int n) {
    if (n < 2) return NULL;
    const char **sorted = malloc((size_t)n * sizeof *sorted);
    DMDR_CHECK(sorted != NULL, "out of host memory");
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_strings);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
    free(sorted);
    return dup;
}

static int compare_begin(const void *a, const void *b) {
    const Entry *x = *(const Entry *const *)a, *y = *(const Entry *const *)b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

// Sorted by start, two ranges overlap exactly when some range starts before the previous one
// ends (if a range overlaps a later one, it overlaps its successor too). Empty ranges hold no
// bytes and are skipped.
static int check_overlaps(const char *path, const Entry *entries, int n, Error *err) {
    const Entry **by_begin = malloc((size_t)(n > 0 ? n : 1) * sizeof *by_begin);
    DMDR_CHECK(by_begin != NULL, "out of host memory");
    for (int i = 0; i < n; i++) by_begin[i] = &entries[i];
    qsort(by_begin, (size_t)n, sizeof *by_begin, compare_begin);
    const Entry *prev = NULL;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const Entry *e = by_begin[i];
        if (e->begin == e->end) continue;
        if (prev && e->begin < prev->end)
            rc = error_set(err, "%s: tensors '%s' [%lld, %lld) and '%s' [%lld, %lld) overlap", path,
                           prev->name, (long long)prev->begin, (long long)prev->end, e->name,
                           (long long)e->begin, (long long)e->end);
        prev = e;
    }
    free(by_begin);
    return rc;
}

static char *copy_string(const char *s) {
    char *c = strdup(s);
    DMDR_CHECK(c != NULL, "out of host memory");
    return c;
}

static int parse_metadata(const char *path, const cJSON *meta, Safetensors *out, Error *err) {
    if (!cJSON_IsObject(meta)) return error_set(err, "%s: " METADATA_KEY " is not an object", path);
    int n = cJSON_GetArraySize(meta);
    out->metadata_keys = calloc((size_t)n + 1, sizeof *out->metadata_keys);
    out->metadata_values = calloc((size_t)n + 1, sizeof *out->metadata_values);
    DMDR_CHECK(out->metadata_keys && out->metadata_values, "out of host memory");
    const cJSON *item;
    cJSON_ArrayForEach(item, meta) {
        if (!cJSON_IsString(item))
            return error_set(err, "%s: " METADATA_KEY " value of '%s' is not a string", path,
                             item->string);
        out->metadata_keys[out->metadata_count] = copy_string(item->string);
        out->metadata_values[out->metadata_count] = copy_string(item->valuestring);
        out->metadata_count++;
    }
    const char *dup = find_duplicate((const char *const *)out->metadata_keys, out->metadata_count);
    if (dup) return error_set(err, "%s: duplicate " METADATA_KEY " key '%s'", path, dup);
    return 0;
}

// Validates the whole header: fills entries (one per tensor, in header order) and the
// metadata of out.
static int parse_header(const char *path, const cJSON *root, int64_t header_len, int64_t data_len,
                        Entry *entries, int *count, Safetensors *out, Error *err) {
    const cJSON *item;
    int n = 0, metadata_seen = 0;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, METADATA_KEY) == 0) {
            if (metadata_seen++) return error_set(err, "%s: duplicate " METADATA_KEY, path);
            if (parse_metadata(path, item, out, err)) return -1;
            continue;
        }
        Entry *e = &entries[n++];
        e->name = item->string;
        if (!cJSON_IsObject(item)) return entry_error(err, path, e, "entry is not an object");
        if (parse_dtype(path, item, e, err) || parse_shape(path, item, e, err) ||
            parse_offsets(path, item, header_len, data_len, e, err))
            return -1;
    }
    *count = n;
    const char **names = malloc((size_t)(n > 0 ? n : 1) * sizeof *names);
    DMDR_CHECK(names != NULL, "out of host memory");
    for (int i = 0; i < n; i++) names[i] = entries[i].name;
    const char *dup = find_duplicate(names, n);
    int rc = dup ? error_set(err, "%s: duplicate tensor name '%s'", path, dup) : 0;
    free(names);
    return rc ? rc : check_overlaps(path, entries, n, err);
}

// ---- loading -----------------------------------------------------------------------------------

// Reads the length prefix and the JSON header; sets *header_len and *data_len.
static int read_header(FILE *f, const char *path, cJSON **root, int64_t *header_len,
                       int64_t *data_len, Error *err) {
    struct stat st;
    if (fstat(fileno(f), &st) != 0) return error_set(err, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return error_set(err, "%s: not a regular file", path);
    int64_t file_len = (int64_t)st.st_size;
    unsigned char prefix[8];
    if (file_len < 8 || fread(prefix, 1, 8, f) != 8)
        return error_set(err, "%s: file is %lld bytes, shorter than the 8-byte header length", path,
                         (long long)file_len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | prefix[i];
    if (n > (uint64_t)MAX_HEADER_BYTES)
        return error_set(
            err, "%s: header length %llu is absurd (more than 100 MB): not a safetensors file?",
            path, (unsigned long long)n);
    if ((int64_t)n > file_len - 8)
        return error_set(err, "%s: header length %llu is beyond the file, which has %lld bytes",
                         path, (unsigned long long)n, (long long)file_len);
    char *text = malloc((size_t)n + 1);
    DMDR_CHECK(text != NULL, "out of host memory");
    if (fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        return error_set(err, "%s: cannot read the header: %s", path,
                         ferror(f) ? strerror(errno) : "unexpected end of file");
    }
    text[n] = '\0';
    // The JSON must fill the header exactly: after it only spaces (alignment padding) may
    // follow. cJSON counts a NUL as whitespace, so a NUL inside the header is refused first.
    const char *nul = memchr(text, '\0', (size_t)n);
    const char *end = text;
    *root = nul ? NULL : cJSON_ParseWithLengthOpts(text, (size_t)n + 1, &end, 1);
    int rc = 0;
    if (!*root)
        rc = error_set(err, "%s: header is not valid JSON (error at byte %lld of %llu)", path,
                       (long long)((nul ? nul : end) - text), (unsigned long long)n);
    free(text);
    if (rc) return rc;
    if (!cJSON_IsObject(*root)) return error_set(err, "%s: header is not a JSON object", path);
    *header_len = (int64_t)n;
    *data_len = file_len - 8 - (int64_t)n;
    return 0;
}

// Reads one validated entry into the CPU tensor t, converting half types to F32.
static int read_tensor(FILE *f, const char *path, int64_t data_start, const Entry *e, Tensor *t,
                       Error *err) {
    size_t nbytes = (size_t)(e->end - e->begin);
    if (nbytes == 0) return 0;
    bool half = e->kind == LOAD_F16 || e->kind == LOAD_BF16;
    void *dst;
    if (half) dst = malloc(nbytes);
    else if (e->kind == LOAD_I32) dst = tensor_i32(t);
    else dst = tensor_f32(t);
    DMDR_CHECK(dst != NULL, "out of host memory");
    int rc = 0;
    if (fseeko(f, (off_t)(data_start + e->begin), SEEK_SET) != 0)
        rc = entry_error(err, path, e, "seek failed: %s", strerror(errno));
    else if (fread(dst, 1, nbytes, f) != nbytes)
        rc = entry_error(err, path, e, "read failed: %s",
                         ferror(f) ? strerror(errno) : "unexpected end of file");
    if (half) {
        if (rc == 0) halves_to_f32(dst, tensor_f32(t), (int64_t)(nbytes / 2), e->kind);
        free(dst);
    }
    return rc;
}

static int load_tensors(FILE *f, const char *path, const cJSON *root, int64_t header_len,
                        int64_t data_len, Safetensors *out, Error *err) {
    int n = 0;
    Entry *entries = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof *entries);
    DMDR_CHECK(entries != NULL, "out of host memory");
    int rc = parse_header(path, root, header_len, data_len, entries, &n, out, err);
    if (rc == 0) {
        out->names = calloc((size_t)n + 1, sizeof *out->names);
        out->tensors = calloc((size_t)n + 1, sizeof *out->tensors);
        DMDR_CHECK(out->names && out->tensors, "out of host memory");
    }
    // A scope of our own, so that once it ends the file holds the only reference and
    // safetensors_free really frees, even when the caller has no scope open.
    tensor_scope_begin();
    for (int i = 0; rc == 0 && i < n; i++) {
        const Entry *e = &entries[i];
        Shape shape = e->shape.ndim == 0 ? shape1(1) : e->shape; // a scalar is stored as (1)
        out->names[i] = copy_string(e->name);
        out->tensors[i] = tensor_retain(tensor_empty(shape, kind_dtype(e->kind), DEVICE_CPU));
        out->count = i + 1;
        rc = read_tensor(f, path, 8 + header_len, e, out->tensors[i], err);
    }
    tensor_scope_end();
    free(entries);
    return rc;
}

int safetensors_load(const char *path, Safetensors *out, Error *err) {
    check_little_endian();
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return error_set(err, "%s: cannot open: %s", path, strerror(errno));
    cJSON *root = NULL;
    int64_t header_len = 0, data_len = 0;
    int rc = read_header(f, path, &root, &header_len, &data_len, err);
    if (rc == 0) rc = load_tensors(f, path, root, header_len, data_len, out, err);
    cJSON_Delete(root);
    fclose(f);
    if (rc != 0) safetensors_free(out);
    return rc;
}

void safetensors_free(Safetensors *st) {
    for (int i = 0; i < st->count; i++) {
        free(st->names[i]);
        tensor_release(st->tensors[i]);
    }
    for (int i = 0; i < st->metadata_count; i++) {
        free(st->metadata_keys[i]);
        free(st->metadata_values[i]);
    }
    free(st->names);
    free(st->tensors);
    free(st->metadata_keys);
    free(st->metadata_values);
    memset(st, 0, sizeof *st);
}

Tensor *safetensors_find(const Safetensors *st, const char *name) {
    for (int i = 0; i < st->count; i++)
        if (strcmp(st->names[i], name) == 0) return st->tensors[i];
    return NULL;
}

const char *safetensors_metadata(const Safetensors *st, const char *key) {
    for (int i = 0; i < st->metadata_count; i++)
        if (strcmp(st->metadata_keys[i], key) == 0) return st->metadata_values[i];
    return NULL;
}

// ---- saving ------------------------------------------------------------------------------------

static void json_add(cJSON *object, const char *key, cJSON *item) {
    DMDR_CHECK(item != NULL && cJSON_AddItemToObject(object, key, item), "out of host memory");
}

static cJSON *json_int_array(const int64_t *values, int n) {
    cJSON *array = cJSON_CreateArray();
    DMDR_CHECK(array != NULL, "out of host memory");
    for (int i = 0; i < n; i++) {
        cJSON *v = cJSON_CreateNumber((double)values[i]);
        DMDR_CHECK(v != NULL && cJSON_AddItemToArray(array, v), "out of host memory");
    }
    return array;
}

// The header as the reference implementation writes it: compact JSON, metadata first, then
// the tensors in order with back-to-back ranges, padded with spaces to a multiple of 8 bytes so
// the data starts aligned. Returns a malloc'd buffer of *len bytes (not NUL-terminated).
static char *build_header(int count, const char *const *names, Tensor *const *tensors,
                          int metadata_count, const char *const *keys, const char *const *values,
                          size_t *len) {
    cJSON *root = cJSON_CreateObject();
    DMDR_CHECK(root != NULL, "out of host memory");
    if (metadata_count > 0) {
        cJSON *meta = cJSON_CreateObject();
        json_add(root, METADATA_KEY, meta);
        for (int i = 0; i < metadata_count; i++)
            json_add(meta, keys[i], cJSON_CreateString(values[i]));
    }
    int64_t offset = 0;
    for (int i = 0; i < count; i++) {
        const Tensor *t = tensors[i];
        int64_t range[2] = {offset, offset + tensor_numel(t) * (int64_t)dtype_size(t->dtype)};
        cJSON *entry = cJSON_CreateObject();
        json_add(root, names[i], entry);
        json_add(entry, "dtype", cJSON_CreateString(dtype_name(t->dtype)));
        json_add(entry, "shape", json_int_array(t->shape.dim, t->shape.ndim));
        json_add(entry, "data_offsets", json_int_array(range, 2));
        offset = range[1];
    }
    char *json = cJSON_PrintUnformatted(root);
    DMDR_CHECK(json != NULL, "out of host memory");
    cJSON_Delete(root);
    size_t n = strlen(json), padded = (n + 7) / 8 * 8;
    char *header = malloc(padded);
    DMDR_CHECK(header != NULL, "out of host memory");
    memcpy(header, json, n);
    memset(header + n, ' ', padded - n);
    cJSON_free(json);
    *len = padded;
    return header;
}

static int check_save_args(const char *path, int count, const char *const *names,
                           Tensor *const *tensors, int metadata_count, const char *const *keys,
                           const char *const *values, Error *err) {
    for (int i = 0; i < count; i++) {
        if (!names[i] || !names[i][0])
            return error_set(err, "%s: tensor %d has an empty name", path, i);
        if (strcmp(names[i], METADATA_KEY) == 0)
            return error_set(err, "%s: tensor name '" METADATA_KEY "' is reserved", path);
        if (!tensors[i]) return error_set(err, "%s: tensor '%s' is NULL", path, names[i]);
    }
    for (int i = 0; i < metadata_count; i++)
        if (!keys[i] || !values[i])
            return error_set(err, "%s: metadata entry %d has a NULL key or value", path, i);
    const char *dup = find_duplicate(names, count);
    if (dup) return error_set(err, "%s: duplicate tensor name '%s'", path, dup);
    dup = find_duplicate(keys, metadata_count);
    if (dup) return error_set(err, "%s: duplicate metadata key '%s'", path, dup);
    return 0;
}

// fwrite that leaves errno meaningful on a short write.
static bool write_all(FILE *f, const void *data, size_t n) {
    errno = 0;
    if (fwrite(data, 1, n, f) == n) return true;
    if (errno == 0) errno = EIO;
    return false;
}

static bool write_contents(FILE *f, const char *header, size_t header_len, int count,
                           Tensor *const *tensors) {
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    if (!write_all(f, prefix, 8) || !write_all(f, header, header_len)) return false;
    size_t max_bytes = 1;
    for (int i = 0; i < count; i++) {
        size_t nbytes = (size_t)tensor_numel(tensors[i]) * dtype_size(tensors[i]->dtype);
        if (nbytes > max_bytes) max_bytes = nbytes;
    }
    void *host = malloc(max_bytes);
    DMDR_CHECK(host != NULL, "out of host memory");
    bool ok = true;
    for (int i = 0; ok && i < count; i++) {
        tensor_read(tensors[i], host);
        ok = write_all(f, host, (size_t)tensor_numel(tensors[i]) * dtype_size(tensors[i]->dtype));
    }
    free(host);
    return ok;
}

// A rename is durable only once the directory holding it is on disk too.
static int fsync_directory(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    DMDR_CHECK(dir != NULL, "out of host memory");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    free(dir);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    // Some filesystems cannot sync a directory (EINVAL); the file's own data is synced already.
    if (rc != 0 && errno == EINVAL) rc = 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int safetensors_save(const char *path, int count, const char *const *names, Tensor *const *tensors,
                     int metadata_count, const char *const *metadata_keys,
                     const char *const *metadata_values, Error *err) {
    check_little_endian();
    if (check_save_args(path, count, names, tensors, metadata_count, metadata_keys, metadata_values,
                        err))
        return -1;
    size_t header_len;
    char *header = build_header(count, names, tensors, metadata_count, metadata_keys,
                                metadata_values, &header_len);
    size_t tmp_size = strlen(path) + 32;
    char *tmp = malloc(tmp_size);
    DMDR_CHECK(tmp != NULL, "out of host memory");
    snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());

    int rc = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = error_set(err, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    } else {
        const char *step = NULL;
        if (!write_contents(f, header, header_len, count, tensors)) step = "write";
        else if (fflush(f) != 0) step = "flush";
        else if (fsync(fileno(f)) != 0) step = "fsync";
        int saved = errno;
        if (fclose(f) != 0 && !step) {
            step = "close";
            saved = errno;
        }
        if (!step && rename(tmp, path) != 0) {
            step = "rename";
            saved = errno;
        }
        if (step) {
            remove(tmp);
            rc = error_set(err, "%s: %s of %s failed: %s", path, step, tmp, strerror(saved));
        } else if (fsync_directory(path) != 0) {
            rc = error_set(err, "%s: fsync of its directory failed: %s", path, strerror(errno));
        }
    }
    free(tmp);
    free(header);
    return rc;
}
