// safetensors: round trips on every backend, half-precision conversion, the exact byte layout
// the Python library writes, the atomic save, and one case per kind of malformed file, each
// checking that the error names the file, the tensor and the problem.
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor/safetensors.h"
#include "test/test_util.h"

static const char *scratch_path(const char *name, char *buf, size_t buflen) {
    snprintf(buf, buflen, "%s/%s", test_scratch_dir, name);
    return buf;
}

// How many entries of the scratch directory contain `part` in their name.
static int count_files_containing(const char *part) {
    DIR *d = opendir(test_scratch_dir);
    ck_assert_ptr_nonnull(d);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) count += strstr(entry->d_name, part) != NULL;
    closedir(d);
    return count;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static void put_u64_le(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u16_le(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8);
}

// A safetensors file from its header text and data_len bytes of data (data may be NULL for zeros).
static void write_safetensors(const char *path, const char *header, const void *data,
                              size_t data_len) {
    size_t n = strlen(header);
    unsigned char *bytes = calloc(8 + n + data_len + 1, 1);
    ck_assert_ptr_nonnull(bytes);
    put_u64_le(bytes, n);
    memcpy(bytes + 8, header, n);
    if (data) memcpy(bytes + 8 + n, data, data_len);
    write_bytes(path, bytes, 8 + n + data_len);
    free(bytes);
}

// One header entry of an F32 tensor, e.g. F32_ENTRY("w", "[2,3]", "[0,24]").
#define F32_ENTRY(name, shape, offsets)                                                            \
    "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

static char *read_whole_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

// Loading path fails and the message names the file and contains every word in `words`
// (a NULL-terminated list).
static void expect_load_error(const char *what, const char *path, const char *const *words) {
    Safetensors st;
    Error err = {{0}};
    ck_assert_msg(safetensors_load(path, &st, &err) == -1, "%s: the load succeeded", what);
    ck_assert_msg(st.count == 0 && st.names == NULL, "%s: a failed load left tensors", what);
    ck_assert_msg(strstr(err.msg, path) != NULL, "%s: message does not name the file: %s", what,
                  err.msg);
    for (int i = 0; words[i]; i++)
        ck_assert_msg(strstr(err.msg, words[i]) != NULL, "%s: message lacks \"%s\": %s", what,
                      words[i], err.msg);
}

static uint32_t bits_of(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

// ---- round trip --------------------------------------------------------------------------------

enum { ROUND_TRIP_TENSORS = 6 };

START_TEST(test_round_trip_all_ranks_with_metadata) {
    static const char *const names[ROUND_TRIP_TENSORS] = {
        "embed.weight", "blocks.0.attn.qkv.weight", "blocks.0.conv.weight", "scale",
        "labels", "blocks.0.index"};
    const Shape shapes[ROUND_TRIP_TENSORS] = {shape2(3, 5), shape3(2, 3, 4), shape4(2, 1, 3, 2),
                                              shape1(7), shape1(6), shape2(2, 3)};
    const DType dtypes[ROUND_TRIP_TENSORS] = {DTYPE_F32, DTYPE_F32, DTYPE_F32,
                                              DTYPE_F32, DTYPE_I32, DTYPE_I32};
    static const char *const keys[] = {"format", "step"};
    static const char *const values[] = {"pt", "1200"};

    // host data: random, plus the values a lossy writer would corrupt in the rank-1 tensor
    void *host[ROUND_TRIP_TENSORS];
    for (int i = 0; i < ROUND_TRIP_TENSORS; i++) {
        int64_t n = shape_numel(shapes[i]);
        host[i] = malloc((size_t)n * 4);
        ck_assert_ptr_nonnull(host[i]);
        if (dtypes[i] == DTYPE_F32) test_fill_uniform(host[i], n, test_seed_for(names[i]), -3, 3);
        else test_fill_ints(host[i], n, test_seed_for(names[i]), 1000);
    }
    const float specials[7] = {-0.0f, INFINITY, -INFINITY, NAN, 1e-45f, 3.4028235e38f, 1.0f / 3};
    memcpy(host[3], specials, sizeof specials);
    ((int32_t *)host[4])[0] = -123456789;

    for (int d = 0; d < DEVICE_COUNT; d++) {
        if (!backend_get((Device)d)) continue;
        char path[1024], file[64];
        snprintf(file, sizeof file, "round_trip_%s.safetensors", device_name((Device)d));
        scratch_path(file, path, sizeof path);

        tensor_scope_begin();
        Tensor *tensors[ROUND_TRIP_TENSORS];
        for (int i = 0; i < ROUND_TRIP_TENSORS; i++)
            tensors[i] = dtypes[i] == DTYPE_F32
                             ? tensor_from_floats(shapes[i], host[i], (Device)d)
                             : tensor_from_ints(shapes[i], host[i], (Device)d);
        Error err = {{0}};
        ck_assert_msg(
            safetensors_save(path, ROUND_TRIP_TENSORS, names, tensors, 2, keys, values, &err) == 0,
            "%s", err.msg);
        tensor_scope_end();

        // the data starts 8-byte aligned, as the reference writer makes it
        size_t file_len;
        char *bytes = read_whole_file(path, &file_len);
        uint64_t header_len = 0;
        for (int i = 7; i >= 0; i--) header_len = header_len << 8 | (unsigned char)bytes[i];
        ck_assert_uint_eq(header_len % 8, 0);
        free(bytes);

        // loaded inside a scope that ends at once: the file must keep its tensors alive
        Safetensors st;
        tensor_scope_begin();
        ck_assert_msg(safetensors_load(path, &st, &err) == 0, "%s", err.msg);
        tensor_scope_end();

        ck_assert_int_eq(st.count, ROUND_TRIP_TENSORS);
        for (int i = 0; i < ROUND_TRIP_TENSORS; i++) {
            const Tensor *t = st.tensors[i];
            char a[64], b[64];
            ck_assert_str_eq(st.names[i], names[i]);
            ck_assert_ptr_eq(safetensors_find(&st, names[i]), t);
            ck_assert_msg(shape_equal(t->shape, shapes[i]), "%s: shape %s, want %s", names[i],
                          shape_str(t->shape, a, sizeof a), shape_str(shapes[i], b, sizeof b));
            ck_assert_int_eq(t->dtype, dtypes[i]);
            ck_assert_int_eq(t->device, DEVICE_CPU);
            const void *got = t->dtype == DTYPE_F32 ? (const void *)tensor_f32(t)
                                                    : (const void *)tensor_i32(t);
            ck_assert_msg(memcmp(got, host[i], (size_t)shape_numel(shapes[i]) * 4) == 0,
                          "%s: values differ from what was saved (device %s)", names[i],
                          device_name((Device)d));
        }
        ck_assert_int_eq(st.metadata_count, 2);
        ck_assert_str_eq(safetensors_metadata(&st, "format"), "pt");
        ck_assert_str_eq(safetensors_metadata(&st, "step"), "1200");
        ck_assert_ptr_null(safetensors_metadata(&st, "missing"));
        ck_assert_ptr_null(safetensors_find(&st, "missing"));
        safetensors_free(&st);
        ck_assert_int_eq(st.count, 0);
    }
    for (int i = 0; i < ROUND_TRIP_TENSORS; i++) free(host[i]);
}
END_TEST

// ---- half precision -----------------------------------------------------------------------------

START_TEST(test_f16_bf16_convert_exactly) {
    // (half bits, float bits) pairs covering zeros, normals, subnormals, the extremes, inf, NaN
    static const uint16_t f16[] = {0x0000, 0x8000, 0x3c00, 0xc000, 0x0001, 0x8001, 0x03ff,
                                   0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0xfe01, 0x3555};
    static const uint32_t f16_want[] = {
        0x00000000, 0x80000000, 0x3f800000, 0xc0000000, 0x33800000, 0xb3800000, 0x387fc000,
        0x38800000, 0x477fe000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc02000, 0x3eaaa000};
    static const uint16_t bf16[] = {0x3f80, 0xc000, 0x8000, 0x0001,
                                    0x7f80, 0xff80, 0x7fc1, 0x4049};
    static const uint32_t bf16_want[] = {0x3f800000, 0xc0000000, 0x80000000, 0x00010000,
                                         0x7f800000, 0xff800000, 0x7fc10000, 0x40490000};
    const char *header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[14],\"data_offsets\":[0,28]},"
                         "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,4],\"data_offsets\":[28,44]},"
                         "\"s\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[44,46]}}";
    unsigned char data[46];
    for (int i = 0; i < 14; i++) put_u16_le(data + 2 * i, f16[i]);
    for (int i = 0; i < 8; i++) put_u16_le(data + 28 + 2 * i, bf16[i]);
    put_u16_le(data + 44, 0xc500); // -5 as a scalar
    char path[1024];
    write_safetensors(scratch_path("halves.safetensors", path, sizeof path), header, data,
                      sizeof data);

    Safetensors st;
    Error err = {{0}};
    ck_assert_msg(safetensors_load(path, &st, &err) == 0, "%s", err.msg);
    const Tensor *h = safetensors_find(&st, "h"), *b = safetensors_find(&st, "b");
    const Tensor *s = safetensors_find(&st, "s");
    ck_assert(h && b && s);
    ck_assert(h->dtype == DTYPE_F32 && b->dtype == DTYPE_F32 && s->dtype == DTYPE_F32);
    ck_assert(shape_equal(b->shape, shape2(2, 4)));
    ck_assert_msg(shape_equal(s->shape, shape1(1)), "a 0-dim tensor loads as shape (1)");
    for (int i = 0; i < 14; i++)
        ck_assert_msg(bits_of(tensor_f32(h)[i]) == f16_want[i],
                      "F16 0x%04x -> 0x%08x, want 0x%08x", f16[i], bits_of(tensor_f32(h)[i]),
                      f16_want[i]);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(bits_of(tensor_f32(b)[i]) == bf16_want[i],
                      "BF16 0x%04x -> 0x%08x, want 0x%08x", bf16[i], bits_of(tensor_f32(b)[i]),
                      bf16_want[i]);
    ck_assert(tensor_f32(s)[0] == -5.0f);
    safetensors_free(&st);
}
END_TEST

// Every one of the 65536 halves against an independent reference: ldexp of the fields.
START_TEST(test_f16_every_value) {
    const char *header =
        "{\"all\":{\"dtype\":\"F16\",\"shape\":[256,256],\"data_offsets\":[0,131072]}}";
    unsigned char *data = malloc(131072);
    ck_assert_ptr_nonnull(data);
    for (int v = 0; v < 65536; v++) put_u16_le(data + 2 * v, (uint16_t)v);
    char path[1024];
    write_safetensors(scratch_path("f16_all.safetensors", path, sizeof path), header, data, 131072);
    free(data);
    Safetensors st;
    Error err = {{0}};
    ck_assert_msg(safetensors_load(path, &st, &err) == 0, "%s", err.msg);
    const float *got = tensor_f32(st.tensors[0]);
    for (int v = 0; v < 65536; v++) {
        int exponent = (v >> 10) & 0x1f, mantissa = v & 0x3ff;
        float magnitude = exponent == 0x1f ? (mantissa ? NAN : INFINITY)
                          : exponent == 0  ? ldexpf((float)mantissa, -24)
                                           : ldexpf((float)(1024 + mantissa), exponent - 25);
        float want = v & 0x8000 ? -magnitude : magnitude;
        bool same = isnan(want) ? isnan(got[v]) && signbit(got[v]) == signbit(want)
                                : bits_of(got[v]) == bits_of(want);
        ck_assert_msg(same, "F16 0x%04x -> %a (0x%08x), want %a", v, (double)got[v],
                      bits_of(got[v]), (double)want);
    }
    safetensors_free(&st);
}
END_TEST

// A tensor with a zero dim holds no bytes: its empty range may sit anywhere, even inside another.
START_TEST(test_zero_size_tensor_loads) {
    const char *header =
        "{" F32_ENTRY("w", "[4]", "[0,16]") "," F32_ENTRY("e", "[0,3]", "[8,8]") "}";
    char path[1024];
    write_safetensors(scratch_path("zero_size.safetensors", path, sizeof path), header, NULL, 16);
    Safetensors st;
    Error err = {{0}};
    ck_assert_msg(safetensors_load(path, &st, &err) == 0, "%s", err.msg);
    const Tensor *e = safetensors_find(&st, "e");
    ck_assert(e && shape_equal(e->shape, shape2(0, 3)) && tensor_numel(e) == 0);
    safetensors_free(&st);
}
END_TEST

// ---- the reference layout -----------------------------------------------------------------------

// What Python's `safetensors.torch.save_file({"a": torch.tensor([[1., 2.], [3., 4.]]),
// "b": torch.tensor([1, 2, 3], dtype=torch.int32)}, path, metadata={"format": "pt"})` writes:
// a little-endian u64 header length (144), compact JSON with __metadata__ first and the tensors
// in data order (F32 before I32: larger alignment first), one space of padding to a multiple
// of 8, then the raw little-endian data.
static const char python_header[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
    "\"b\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[16,28]}} ";
static const unsigned char python_prefix[8] = {0x90, 0, 0, 0, 0, 0, 0, 0};
static const unsigned char python_data[28] = {
    0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40, 0x00, 0x00,
    0x80, 0x40, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00};

START_TEST(test_python_layout_loads_and_saves_identically) {
    ck_assert_uint_eq(sizeof python_header - 1, 144);
    unsigned char file[8 + 144 + 28];
    memcpy(file, python_prefix, 8);
    memcpy(file + 8, python_header, 144);
    memcpy(file + 8 + 144, python_data, 28);
    char path[1024];
    write_bytes(scratch_path("python.safetensors", path, sizeof path), file, sizeof file);

    Safetensors st;
    Error err = {{0}};
    ck_assert_msg(safetensors_load(path, &st, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(st.count, 2);
    const Tensor *a = safetensors_find(&st, "a"), *b = safetensors_find(&st, "b");
    ck_assert(a && b && a->dtype == DTYPE_F32 && b->dtype == DTYPE_I32);
    ck_assert(shape_equal(a->shape, shape2(2, 2)) && shape_equal(b->shape, shape1(3)));
    for (int i = 0; i < 4; i++) ck_assert(tensor_f32(a)[i] == (float)(i + 1));
    for (int i = 0; i < 3; i++) ck_assert_int_eq(tensor_i32(b)[i], i + 1);
    ck_assert_str_eq(safetensors_metadata(&st, "format"), "pt");

    // saving the same tensors in the same order gives the same bytes
    char ours[1024];
    scratch_path("ours.safetensors", ours, sizeof ours);
    const char *names[2] = {"a", "b"}, *key = "format", *value = "pt";
    Tensor *tensors[2] = {st.tensors[0], st.tensors[1]};
    ck_assert_msg(safetensors_save(ours, 2, names, tensors, 1, &key, &value, &err) == 0, "%s",
                  err.msg);
    size_t len;
    char *bytes = read_whole_file(ours, &len);
    ck_assert_uint_eq(len, sizeof file);
    ck_assert_msg(memcmp(bytes, file, len) == 0, "saved header: %.*s", 144, bytes + 8);
    free(bytes);
    safetensors_free(&st);
}
END_TEST

// ---- malformed files ----------------------------------------------------------------------------

typedef struct {
    const char *what;
    const char *header;
    size_t data_len;       // zero bytes of data after the header
    const char *expect[4]; // words the message must contain besides the path; NULL-terminated
} BadHeader;

static const BadHeader bad_headers[] = {
    {"invalid JSON", "{\"w\": {\"dtype\": ", 0, {"not valid JSON"}},
    {"trailing garbage", "{} x", 0, {"not valid JSON"}},
    {"header not an object", "[1, 2]", 0, {"not a JSON object"}},
    {"entry not an object", "{\"w\": 5}", 0, {"'w'", "not an object"}},
    {"missing dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     {"'w'", "\"dtype\" is missing"}},
    {"dtype not a string", "{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     {"'w'", "\"dtype\" is not a string"}},
    {"unknown dtype", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     {"'w'", "unknown dtype", "Q7"}},
    {"F64", "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
     {"'w'", "unsupported dtype", "F64"}},
    {"I64", "{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
     {"'w'", "unsupported dtype", "I64"}},
    {"missing shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
     {"'w'", "\"shape\" is missing"}},
    {"shape not an array", "{" F32_ENTRY("w", "4", "[0,16]") "}", 16,
     {"'w'", "\"shape\" is not an array"}},
    {"negative dim", "{" F32_ENTRY("w", "[2,-1]", "[0,8]") "}", 8,
     {"'w'", "shape dim 1", "non-negative integer"}},
    {"fractional dim", "{" F32_ENTRY("w", "[2.5]", "[0,8]") "}", 8,
     {"'w'", "shape dim 0", "non-negative integer"}},
    {"string dim", "{" F32_ENTRY("w", "[\"2\"]", "[0,8]") "}", 8,
     {"'w'", "shape dim 0", "non-negative integer"}},
    {"rank 5", "{" F32_ENTRY("w", "[1,1,1,1,1]", "[0,4]") "}", 4, {"'w'", "rank 5", "4"}},
    {"missing data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
     {"'w'", "\"data_offsets\" is missing"}},
    {"data_offsets not an array", "{" F32_ENTRY("w", "[1]", "\"0-4\"") "}", 4,
     {"'w'", "\"data_offsets\" is not an array"}},
    {"one offset", "{" F32_ENTRY("w", "[1]", "[0]") "}", 4,
     {"'w'", "data_offsets must be [begin, end]"}},
    {"negative offset", "{" F32_ENTRY("w", "[1]", "[-4,0]") "}", 4,
     {"'w'", "data_offsets must be [begin, end]"}},
    {"fractional offset", "{" F32_ENTRY("w", "[1]", "[0,3.5]") "}", 4,
     {"'w'", "data_offsets must be [begin, end]"}},
    {"end before begin", "{" F32_ENTRY("w", "[1]", "[8,4]") "}", 8,
     {"'w'", "data_offsets [8, 4]", "end before"}},
    {"end beyond the data", "{" F32_ENTRY("w", "[4]", "[0,16]") "}", 12,
     {"'w'", "end 16 is beyond the data buffer (12 bytes)", "truncated"}},
    {"size mismatch", "{" F32_ENTRY("w", "[2,3]", "[0,20]") "}", 24,
     {"'w'", "shape (2, 3) F32 needs 24 bytes, data_offsets give 20"}},
    {"F16 size mismatch", "{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
     {"'w'", "shape (3) F16 needs 6 bytes, data_offsets give 8"}},
    {"shape overflow", "{" F32_ENTRY("w", "[4503599627370496,4503599627370496]", "[0,4]") "}", 4,
     {"'w'", "too large"}},
    {"overlap", "{" F32_ENTRY("a", "[4]", "[0,16]") "," F32_ENTRY("b", "[4]", "[8,24]") "}", 24,
     {"'a'", "'b'", "overlap"}},
    {"contained range",
     "{" F32_ENTRY("big", "[8]", "[0,32]") "," F32_ENTRY("c", "[1]", "[28,32]") ","
     F32_ENTRY("d", "[1]", "[8,12]") "}", 32, {"'big'", "'d'", "overlap"}},
    {"overlap after touching ranges",
     "{" F32_ENTRY("a", "[1]", "[0,4]") "," F32_ENTRY("b", "[2]", "[4,12]") ","
     F32_ENTRY("c", "[1]", "[8,12]") "}", 12, {"'b'", "'c'", "overlap"}},
    {"metadata not an object", "{\"__metadata__\":\"x\"," F32_ENTRY("w", "[1]", "[0,4]") "}", 4,
     {"__metadata__", "not an object"}},
    {"metadata value not a string",
     "{\"__metadata__\":{\"k\":1}," F32_ENTRY("w", "[1]", "[0,4]") "}", 4,
     {"__metadata__", "'k'", "not a string"}},
    {"two metadata objects",
     "{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{\"b\":\"2\"}}", 0,
     {"duplicate __metadata__"}},
    {"duplicate metadata key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
     {"duplicate __metadata__ key 'k'"}},
    {"duplicate name",
     "{" F32_ENTRY("w", "[1]", "[0,4]") "," F32_ENTRY("w", "[1]", "[4,8]") "}", 8,
     {"duplicate tensor name 'w'"}},
};
enum { BAD_HEADER_COUNT = sizeof bad_headers / sizeof bad_headers[0] };

// One test per row (check's loop tests run and report each iteration separately).
START_TEST(test_malformed_header) {
    const BadHeader *c = &bad_headers[_i];
    char path[1024], file[64];
    snprintf(file, sizeof file, "bad_%d.safetensors", _i);
    write_safetensors(scratch_path(file, path, sizeof path), c->header, NULL, c->data_len);
    expect_load_error(c->what, path, c->expect);
}
END_TEST

START_TEST(test_file_shorter_than_length_prefix) {
    char path[1024];
    write_bytes(scratch_path("short.safetensors", path, sizeof path), "\x10\0\0\0\0", 5);
    expect_load_error("short file", path, (const char *[]){"5 bytes", "8-byte", NULL});
}
END_TEST

// Files whose length prefix or header bytes are wrong, written byte for byte.
typedef struct {
    const char *what;
    uint64_t prefix;  // the declared header length
    const char *body; // what follows the prefix
    size_t body_len;
    const char *expect[4];
} BadPrefix;

static const BadPrefix bad_prefixes[] = {
    // NUL is not JSON whitespace (the reference reader refuses NUL padding), though cJSON skips it
    {"NUL padding", 8, "{}\0\0\0\0\0\0", 8, {"not valid JSON"}},
    {"header beyond the file", 1000, "{\"a\":1}     ", 12,
     {"header length 1000", "beyond the file", "20 bytes"}},
    {"absurd header length", 0x7fffffffffffffffull, "{}", 2, {"absurd", "100 MB"}},
};
enum { BAD_PREFIX_COUNT = sizeof bad_prefixes / sizeof bad_prefixes[0] };

START_TEST(test_bad_length_prefix) {
    const BadPrefix *c = &bad_prefixes[_i];
    unsigned char bytes[64];
    put_u64_le(bytes, c->prefix);
    memcpy(bytes + 8, c->body, c->body_len);
    char path[1024], file[64];
    snprintf(file, sizeof file, "bad_prefix_%d.safetensors", _i);
    write_bytes(scratch_path(file, path, sizeof path), bytes, 8 + c->body_len);
    expect_load_error(c->what, path, c->expect);
}
END_TEST

START_TEST(test_missing_file) {
    char path[1024];
    scratch_path("does_not_exist.safetensors", path, sizeof path);
    expect_load_error("missing file", path, (const char *[]){"No such file", NULL});
}
END_TEST

// A good file cut short (an interrupted copy): the message says how long it is and should be.
START_TEST(test_truncated_file) {
    char path[1024];
    scratch_path("truncated.safetensors", path, sizeof path);
    tensor_scope_begin();
    Tensor *t = tensor_arange(16, 0, 1, DEVICE_CPU);
    const char *name = "weights";
    Error err = {{0}};
    ck_assert_msg(safetensors_save(path, 1, &name, &t, 0, NULL, NULL, &err) == 0, "%s", err.msg);
    tensor_scope_end();
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size - 10), 0);
    char has[96];
    snprintf(has, sizeof has, "the file has %lld bytes but needs %lld", (long long)st.st_size - 10,
             (long long)st.st_size);
    expect_load_error("truncated file", path,
                      (const char *[]){"'weights'", has, "truncated", NULL});
}
END_TEST

// ---- saving -------------------------------------------------------------------------------------

static void save_filled(const char *path, Shape shape, float value) {
    tensor_scope_begin();
    Tensor *t = tensor_full(shape, value, DEVICE_CPU);
    const char *name = "w";
    Error err = {{0}};
    ck_assert_msg(safetensors_save(path, 1, &name, &t, 0, NULL, NULL, &err) == 0, "%s", err.msg);
    tensor_scope_end();
}

START_TEST(test_atomic_save_replaces_and_leaves_no_temporary) {
    char path[1024];
    scratch_path("atomic.safetensors", path, sizeof path);
    save_filled(path, shape1(4), 1.0f);
    ck_assert_int_eq(count_files_containing("atomic"), 1);
    save_filled(path, shape2(2, 3), 2.0f); // over the existing file
    ck_assert_int_eq(count_files_containing("atomic"), 1);
    ck_assert_int_eq(count_files_containing(".tmp."), 0);

    Safetensors st;
    Error err = {{0}};
    ck_assert_msg(safetensors_load(path, &st, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(st.count, 1);
    ck_assert(shape_equal(st.tensors[0]->shape, shape2(2, 3)));
    for (int i = 0; i < 6; i++) ck_assert(tensor_f32(st.tensors[0])[i] == 2.0f);
    safetensors_free(&st);
}
END_TEST

START_TEST(test_save_into_missing_directory_fails) {
    char path[1024];
    scratch_path("no_such_dir/model.safetensors", path, sizeof path);
    tensor_scope_begin();
    Tensor *t = tensor_zeros(shape1(3), DEVICE_CPU);
    const char *name = "w";
    Error err = {{0}};
    ck_assert_int_eq(safetensors_save(path, 1, &name, &t, 0, NULL, NULL, &err), -1);
    tensor_scope_end();
    ck_assert_msg(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
    ck_assert_msg(strstr(err.msg, "No such file or directory"), "message: %s", err.msg);
}
END_TEST

// The last step, the rename, fails (the target is a directory): the temporary file must go.
START_TEST(test_failed_save_removes_temporary) {
    char path[1024];
    scratch_path("target_is_dir", path, sizeof path);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    tensor_scope_begin();
    Tensor *t = tensor_zeros(shape1(3), DEVICE_CPU);
    const char *name = "w";
    Error err = {{0}};
    ck_assert_int_eq(safetensors_save(path, 1, &name, &t, 0, NULL, NULL, &err), -1);
    tensor_scope_end();
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "rename"), "message: %s", err.msg);
    ck_assert_int_eq(count_files_containing(".tmp."), 0);
}
END_TEST

START_TEST(test_save_rejects_bad_names) {
    static const struct {
        const char *names[2];
        const char *expect;
    } cases[] = {
        {{"w", "w"}, "duplicate tensor name 'w'"},
        {{"w", ""}, "empty name"},
        {{"__metadata__", "w"}, "reserved"},
    };
    char path[1024];
    scratch_path("rejected.safetensors", path, sizeof path);
    tensor_scope_begin();
    Tensor *tensors[2] = {tensor_zeros(shape1(2), DEVICE_CPU), tensor_zeros(shape1(2), DEVICE_CPU)};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Error err = {{0}};
        ck_assert_int_eq(safetensors_save(path, 2, cases[i].names, tensors, 0, NULL, NULL, &err),
                         -1);
        ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, cases[i].expect),
                      "want \"%s\" in: %s", cases[i].expect, err.msg);
    }
    const char *dup_keys[2] = {"k", "k"}, *vals[2] = {"1", "2"};
    Error err = {{0}};
    ck_assert_int_eq(
        safetensors_save(path, 1, (const char *[]){"w"}, tensors, 2, dup_keys, vals, &err), -1);
    ck_assert_msg(strstr(err.msg, "duplicate metadata key 'k'"), "message: %s", err.msg);
    tensor_scope_end();
    ck_assert_int_eq(count_files_containing("rejected"), 0);
}
END_TEST

static Suite *safetensors_suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_add_unchecked_fixture(tc, test_scratch_setup, test_scratch_teardown);
    tcase_add_test(tc, test_round_trip_all_ranks_with_metadata);
    tcase_add_test(tc, test_f16_bf16_convert_exactly);
    tcase_add_test(tc, test_f16_every_value);
    tcase_add_test(tc, test_zero_size_tensor_loads);
    tcase_add_test(tc, test_python_layout_loads_and_saves_identically);
    tcase_add_loop_test(tc, test_malformed_header, 0, BAD_HEADER_COUNT);
    tcase_add_test(tc, test_file_shorter_than_length_prefix);
    tcase_add_loop_test(tc, test_bad_length_prefix, 0, BAD_PREFIX_COUNT);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_truncated_file);
    tcase_add_test(tc, test_atomic_save_replaces_and_leaves_no_temporary);
    tcase_add_test(tc, test_save_into_missing_directory_fails);
    tcase_add_test(tc, test_failed_save_removes_temporary);
    tcase_add_test(tc, test_save_rejects_bad_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(safetensors_suite()); }
