// Writes the seed corpus of the fuzz targets (test/fuzz/corpus/<target>/) with the project's
// own writers where there is one: small valid inputs the fuzzers mutate from. The corpus is
// committed; run this again only to change it:
//   <build>/test/fuzz/fuzz_gen_corpus test/fuzz/corpus
// Everything is seeded, so the output is the same on every run.
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "nn/checkpoint.h"
#include "tensor/safetensors.h"
#include "tools/commands.h"

static const char *root;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "fuzz_gen_corpus: %s: %s\n", what, msg);
    exit(1);
}

static const char *path_of(char *buf, size_t n, const char *target, const char *name) {
    snprintf(buf, n, "%s/%s", root, target);
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) die(buf, strerror(errno));
    snprintf(buf, n, "%s/%s/%s", root, target, name);
    return buf;
}

static void write_bytes(const char *target, const char *name, const void *data, size_t n) {
    char path[4096];
    FILE *f = fopen(path_of(path, sizeof path, target, name), "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) die(path, strerror(errno));
}

static void write_text(const char *target, const char *name, const char *text) {
    write_bytes(target, name, text, strlen(text));
}

// ---- safetensors and checkpoints ----------------------------------------------------------------

static ModelConfig tiny_config(ModelKind kind) {
    ModelConfig c = {.kind = kind, .num_classes = 3, .in_channels = 1, .image_size = 4};
    if (kind == MODEL_DIT) {
        c.patch = 2, c.hidden = 4, c.depth = 1, c.heads = 1, c.mlp_ratio = 1.0f;
    } else if (kind == MODEL_UNET) {
        c.channels = 2, c.levels = 1, c.channel_mult[0] = 1, c.res_blocks = 1, c.groups = 1;
    } else {
        c.in_channels = 0, c.image_size = 0;
        c.data_dim = 2, c.mlp_width = 4, c.mlp_layers = 1;
    }
    return c;
}

// A weights file (checkpoint_export_weights) of a tiny model, with extra metadata.
static void export_model(const char *target, const char *name, ModelKind kind, int extra_count,
                         const char *const *keys, const char *const *values) {
    ModelConfig c = tiny_config(kind);
    Rng rng = rng_make(1);
    Error err;
    Model *m = model_create(&c, DEVICE_CPU, &rng, &err);
    if (!m) die(name, err.msg);
    char path[4096];
    if (checkpoint_export_weights(path_of(path, sizeof path, target, name), model_params(m),
                                  NULL, &c, extra_count, keys, values, &err))
        die(path, err.msg);
    model_free(m);
}

// A full training checkpoint (format dmdr.checkpoint: sampling takes its EMA) of a tiny MLP.
static void training_checkpoint(const char *target, const char *name) {
    ModelConfig c = tiny_config(MODEL_MLP);
    Rng rng = rng_make(2), train = rng_make(3);
    Error err;
    Model *m = model_create(&c, DEVICE_CPU, &rng, &err);
    if (!m) die(name, err.msg);
    Ema ema;
    ema_init(&ema, model_params(m));
    int64_t step = 5;
    DataPosition pos = {1, 7};
    Checkpoint ck = {.part_count = 1,
                     .parts = {{"", model_config(m), model_params(m), &ema, NULL}},
                     .rng_count = 1,
                     .rngs = {{"train", &train}},
                     .step = &step,
                     .data = &pos};
    char path[4096];
    if (checkpoint_save(path_of(path, sizeof path, target, name), &ck, &err)) die(path, err.msg);
    ema_free(&ema);
    model_free(m);
}

// Every dtype the reader converts (F16, BF16, I32 beside F32), a scalar, an empty tensor and
// metadata, written by hand as safetensors_save writes only F32 and I32.
static void dtypes_file(const char *target, const char *name) {
    const char *header =
        "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"dtypes\"},"
        "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,1],\"data_offsets\":[4,8]},"
        "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[8,16]},"
        "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[16,20]},"
        "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[20,20]}}";
    const uint8_t body[20] = {0x00, 0x3c, 0x00, 0xc0,  // F16 1, -2
                              0x80, 0x3f, 0x40, 0x40,  // BF16 1, 3
                              7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // I32 7, -1
                              0x00, 0x00, 0x00, 0x3f}; // F32 0.5
    size_t hlen = strlen(header);
    uint8_t buf[1024];
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    memcpy(buf + 8 + hlen, body, sizeof body);
    write_bytes(target, name, buf, 8 + hlen + sizeof body);
}

static void saved_file(const char *target, const char *name) {
    tensor_scope_begin();
    const float xs[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
    const int32_t ys[3] = {0, 2, 1};
    Tensor *t[2] = {tensor_from_floats(shape2(2, 3), xs, DEVICE_CPU),
                    tensor_from_ints(shape1(3), ys, DEVICE_CPU)};
    const char *names[2] = {"x", "y"}, *keys[1] = {"step"}, *values[1] = {"12"};
    char path[4096];
    Error err;
    if (safetensors_save(path_of(path, sizeof path, target, name), 2, names, t, 1, keys, values,
                         &err))
        die(path, err.msg);
    tensor_scope_end();
}

// ---- IDX pairs: [u32 LE length of the images file][images][labels] (fuzz_idx.c) ----------------

static size_t idx_pair(uint8_t *out, int count, int rows, int cols, uint32_t label_seed) {
    uint8_t *p = out + 4;
    const uint8_t head[4] = {0, 0, 8, 3};
    memcpy(p, head, 4);
    p += 4;
    const uint32_t dims[3] = {(uint32_t)count, (uint32_t)rows, (uint32_t)cols};
    for (int i = 0; i < 3; i++)
        for (int b = 3; b >= 0; b--) *p++ = (uint8_t)(dims[i] >> (8 * b));
    for (int i = 0; i < count * rows * cols; i++) *p++ = (uint8_t)(i * 37 + 11);
    uint32_t len = (uint32_t)(p - (out + 4));
    for (int b = 0; b < 4; b++) out[b] = (uint8_t)(len >> (8 * b));
    const uint8_t lhead[4] = {0, 0, 8, 1};
    memcpy(p, lhead, 4);
    p += 4;
    for (int b = 3; b >= 0; b--) *p++ = (uint8_t)((uint32_t)count >> (8 * b));
    for (int i = 0; i < count; i++) *p++ = (uint8_t)((label_seed + (uint32_t)i * 3) % 10);
    return (size_t)(p - out);
}

// data compressed as a gzip file (what the Debian package ships), into out
static size_t gzip_bytes(const uint8_t *data, size_t n, uint8_t *out, size_t cap) {
    z_stream z = {0};
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("gzip", "deflateInit2");
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) die("gzip", "deflate");
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

static void idx_seeds(void) {
    uint8_t plain[1024], packed[2048];
    size_t n = idx_pair(plain, 3, 4, 4, 1);
    write_bytes("idx", "three-4x4", plain, n);
    // the same kind of pair, each file gzip-compressed
    n = idx_pair(plain, 2, 3, 5, 8);
    uint32_t images_len = (uint32_t)plain[0] | (uint32_t)plain[1] << 8;
    size_t a = gzip_bytes(plain + 4, images_len, packed + 4, sizeof packed - 4);
    size_t b = gzip_bytes(plain + 4 + images_len, n - 4 - images_len, packed + 4 + a,
                          sizeof packed - 4 - a);
    for (int k = 0; k < 4; k++) packed[k] = (uint8_t)(a >> (8 * k));
    write_bytes("idx", "two-3x5-gzip", packed, 4 + a + b);
}

// ---- PNG files of several formats ---------------------------------------------------------------

static void png_seed(const char *name, int size, int color_type, int depth, int interlace,
                     bool trns) {
    char path[4096];
    FILE *f = fopen(path_of(path, sizeof path, "png_folder", name), "wb");
    if (!f) die(path, strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!png || !info || setjmp(png_jmpbuf(png))) die(path, "libpng failed");
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)size, (png_uint_32)size, depth, color_type, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color palette[4] = {{0, 0, 0}, {255, 0, 0}, {0, 200, 50}, {30, 60, 255}};
        png_set_PLTE(png, info, palette, 4);
        if (trns) {
            png_byte alpha[2] = {0, 128};
            png_set_tRNS(png, info, alpha, 2, NULL);
        }
    }
    png_write_info(png, info);
    int channels = color_type == PNG_COLOR_TYPE_GRAY         ? 1
                   : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                   : color_type == PNG_COLOR_TYPE_RGB        ? 3
                   : color_type == PNG_COLOR_TYPE_RGBA       ? 4
                                                             : 1;
    size_t rowbytes = ((size_t)size * channels * depth + 7) / 8;
    png_bytep row = calloc(rowbytes, 1);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < size; y++) {
            for (size_t i = 0; i < rowbytes; i++) {
                int v = (int)(i * 53 + (size_t)y * 29);
                row[i] = color_type == PNG_COLOR_TYPE_PALETTE && depth == 8 ? (png_byte)(v % 4)
                                                                            : (png_byte)v;
            }
            png_write_row(png, row);
        }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    if (fclose(f) != 0) die(path, strerror(errno));
}

// ---- configuration ----------------------------------------------------------------------------

static void config_seeds(void) {
    Config cfg;
    Error err;
    config_defaults(&cfg);
    if (config_apply_preset(&cfg, "tiny", &err)) die("tiny", err.msg);
    // the whole resolved file a run stores, without its help comments (kilobytes smaller)
    char *ini = config_to_ini(&cfg), *out = malloc(strlen(ini) + 1), *o = out;
    for (const char *line = ini; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (line[0] != '#') {
            memcpy(o, line, len);
            o += len;
        }
        line += len;
    }
    *o = '\0';
    write_text("ini", "resolved-tiny.ini", out);
    free(out);
    free(ini);
    write_text("ini", "sections.ini",
               "preset = toy2d\n; a comment\n[model]\nkind = dit\nhidden = 64\nchannel_mult = "
               "1,2,2,2\n[train]\nlr = 3e-4\ntime_dist = logit_normal\n[data]\ndataset = png\n"
               "[run]\nquiet = yes\nout = runs/x\n");
    write_text("ini", "bare-keys.ini",
               "steps = 12\nbatch = 8\nper_class = 2\ncfg = 1.5\nmethod = heun\nflip = true\n"
               "device = cpu\nthreads = 1\n");

    write_text("flags", "train-teacher",
               "train-teacher\n--preset\ntiny\n--steps\n3\n--train.batch=4\n--quiet\n"
               "--model.kind\nunet\n--channel-mult\n1,2\n--resume\nrun/last.safetensors\n");
    write_text("flags", "sample",
               "sample\nteacher.safetensors\n--steps=8\n--cfg\n1.5\n--method\nheun\n--per-class"
               "\n2\n--out\nx.png\n");
    write_text("flags", "eval", "eval\nck.safetensors\n--json\nout.json\n--real\nfalse\n"
                                "--config\nany.ini\n--eval.per_class\n5\n");
    write_text("flags", "distill",
               "distill\n--preset\ntoy2d\n--teacher\nt.safetensors\n--init\ns1.safetensors\n"
               "--rl\nppo\n--lora-rank\n4\n--dynadg\n--config=any.ini\n");
    write_text("flags", "train-classifier",
               "train-classifier\n--epochs\n1\n--data.dataset=png\n--data\nimages\n--flip\nno\n");
    write_text("flags", "help", "sample\n-h\n");
    write_text("flags", "info", "info\nmodel.safetensors\n");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_gen_corpus CORPUS_DIR (test/fuzz/corpus)\n");
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) != 0 && errno != EEXIST) die(root, strerror(errno));

    dtypes_file("safetensors", "dtypes.safetensors");
    saved_file("safetensors", "saved.safetensors");
    export_model("safetensors", "mlp-weights.safetensors", MODEL_MLP, 0, NULL, NULL);

    export_model("checkpoint", "mlp-weights.safetensors", MODEL_MLP, 0, NULL, NULL);
    export_model("checkpoint", "dit-weights.safetensors", MODEL_DIT, 0, NULL, NULL);
    export_model("checkpoint", "unet-weights.safetensors", MODEL_UNET, 0, NULL, NULL);
    const char *gen_keys[2] = {GENERATOR_STEPS_KEY, GENERATOR_SHIFT_KEY};
    const char *gen_values[2] = {"2", "3"};
    export_model("checkpoint", "mlp-generator.safetensors", MODEL_MLP, 2, gen_keys, gen_values);
    training_checkpoint("checkpoint", "mlp-training.safetensors");

    idx_seeds();

    png_seed("grey8-4.png", 4, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, false);
    png_seed("grey1-16.png", 16, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, false);
    png_seed("grey-alpha16-3.png", 3, PNG_COLOR_TYPE_GRAY_ALPHA, 16, PNG_INTERLACE_NONE, false);
    png_seed("palette-trns-5.png", 5, PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE, true);
    png_seed("rgb8-13.png", 13, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, false);
    png_seed("rgba8-interlaced-9.png", 9, PNG_COLOR_TYPE_RGBA, 8, PNG_INTERLACE_ADAM7, false);

    config_seeds();
    printf("wrote the seed corpus under %s\n", root);
    return 0;
}
