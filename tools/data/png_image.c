// PNG reading and writing through libpng (see tools/data/png_image.h).
//
// libpng reports errors by longjmp: every libpng call sits below a setjmp whose handler frees
// what was allocated and turns the message into an Error. Warnings (odd colour profiles and
// the like) do not stop a read, so they are dropped instead of printed.
#include "tools/data/png_image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "tools/data/atomic_file.h"

typedef struct {
    char msg[256];
} PngErrorText;

static void on_png_error(png_structp png, png_const_charp msg) {
    PngErrorText *text = png_get_error_ptr(png);
    snprintf(text->msg, sizeof text->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

// ---- reading ----------------------------------------------------------------------------------

static int channels_of_file(png_structp png, png_infop info) {
    switch (png_get_color_type(png, info)) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_PALETTE: return png_get_valid(png, info, PNG_INFO_tRNS) ? 4 : 3;
    case PNG_COLOR_TYPE_RGB: return 3;
    default: return 4;
    }
}

// Every format to 8-bit RGBA: low-depth grey expanded, tRNS made alpha, 16 bits rounded, grey
// copied to R = G = B, opaque alpha added where there is none. Palette images are read as one
// index byte per pixel instead, for expand_palette: libpng's own expansion maps an index
// beyond the PLTE to black without a word, so a corrupt file would pass as a dark image.
static void set_transforms(png_structp png, bool palette) {
    if (palette) {
        png_set_packing(png);
    } else {
        png_set_expand(png);
        png_set_scale_16(png);
        png_set_gray_to_rgb(png);
        png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
    }
    png_set_interlace_handling(png);
}

// pixels holds width * height palette indices at its start -> RGBA over the whole buffer,
// alpha from tRNS. Walks backwards, so each index is read before its 4 bytes cover it.
static int expand_palette(png_structp png, png_infop info, uint8_t *pixels, int width,
                          int height, const char *path, Error *err) {
    png_colorp palette = NULL;
    png_bytep alpha = NULL;
    int entries = 0, alphas = 0;
    png_get_PLTE(png, info, &palette, &entries);
    if (!png_get_tRNS(png, info, &alpha, &alphas, NULL)) alphas = 0;
    size_t n = (size_t)width * (size_t)height;
    for (size_t i = 0; i < n; i++)
        if (pixels[i] >= entries)
            return error_set(err, "%s: corrupt PNG: pixel (%zu, %zu) has palette index %d, "
                                  "beyond the %d entries of its PLTE", path, i % (size_t)width,
                             i / (size_t)width, pixels[i], entries);
    for (size_t i = n; i-- > 0;) {
        int k = pixels[i];
        uint8_t *px = pixels + 4 * i;
        px[3] = k < alphas ? alpha[k] : 0xff;
        px[2] = palette[k].blue;
        px[1] = palette[k].green;
        px[0] = palette[k].red;
    }
    return 0;
}

// -> out->rgba (height, width, 4)
int pngimage_read(const char *path, PngImage *out, Error *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return error_set(err, "%s: cannot open: %s", path, strerror(errno));
    unsigned char signature[8];
    if (fread(signature, 1, sizeof signature, f) != sizeof signature ||
        png_sig_cmp(signature, 0, sizeof signature) != 0) {
        fclose(f);
        return error_set(err, "%s: not a PNG file: expected the 8-byte PNG signature", path);
    }
    PngErrorText text = {{0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &text, on_png_error,
                                             on_png_warning);
    DMDR_CHECK(png != NULL, "out of host memory");
    png_infop info = png_create_info_struct(png);
    DMDR_CHECK(info != NULL, "out of host memory");
    // Assigned after setjmp, read in its handler: volatile, so the handler sees the values.
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile bool too_large = false;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        fclose(f);
        return error_set(err, "%s: %s%s", path, too_large ? "" : "corrupt PNG: ", text.msg);
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, sizeof signature);
    png_read_info(png, info);
    int width = (int)png_get_image_width(png, info);
    int height = (int)png_get_image_height(png, info);
    // decoded before it is resized: refused from its header, before the pixels are allocated
    if ((uint64_t)width * (uint64_t)height > PNG_MAX_PIXELS) {
        too_large = true;
        snprintf(text.msg, sizeof text.msg, "%d x %d pixels, more than the %d this reader "
                 "decodes (resize it first)", width, height, PNG_MAX_PIXELS);
        png_longjmp(png, 1);
    }
    int file_channels = channels_of_file(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    bool palette = png_get_color_type(png, info) == PNG_COLOR_TYPE_PALETTE;
    set_transforms(png, palette);
    png_read_update_info(png, info);
    size_t row_bytes = (size_t)width * (palette ? 1 : 4);
    DMDR_CHECK(png_get_rowbytes(png, info) == row_bytes, "libpng did not give %s",
               palette ? "one byte per palette index" : "RGBA");
    pixels = malloc((size_t)width * (size_t)height * 4);
    rows = malloc((size_t)height * sizeof(png_bytep));
    if (!pixels || !rows) png_error(png, "image too large to hold in memory");
    for (int y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    int rc = palette ? expand_palette(png, info, pixels, width, height, path, err) : 0;
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    fclose(f);
    if (rc) {
        free(pixels);
        return -1;
    }
    out->width = width;
    out->height = height;
    out->file_channels = file_channels;
    out->bit_depth = bit_depth;
    out->rgba = pixels;
    return 0;
}

void pngimage_free(PngImage *img) {
    free(img->rgba);
    memset(img, 0, sizeof *img);
}

// ---- writing ----------------------------------------------------------------------------------

// pixels (height, width, channels), channels 1 (grey) or 3 (RGB) -> the PNG into f.
static int write_png_stream(FILE *f, const char *path, const uint8_t *pixels, int width,
                            int height, int channels, Error *err) {
    PngErrorText text = {{0}};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &text, on_png_error,
                                              on_png_warning);
    DMDR_CHECK(png != NULL, "out of host memory");
    png_infop info = png_create_info_struct(png);
    DMDR_CHECK(info != NULL, "out of host memory");
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return error_set(err, "%s: writing failed: %s", path, text.msg);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * (size_t)width * (size_t)channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

// Written beside the target and renamed over it, so the target is the old PNG or the new one.
static int write_png_atomic(const char *path, const uint8_t *pixels, int width, int height,
                            int channels, Error *err) {
    AtomicFile a;
    if (atomic_file_open(&a, path, err) != 0) return -1;
    bool ok = write_png_stream(a.f, path, pixels, width, height, channels, err) == 0;
    return atomic_file_commit(&a, ok, err);
}

// In double: (x + 1) * 127.5 is exact there, where float rounding moved values next to a
// half-way point to the other byte.
uint8_t pixel_byte(float x) {
    double v = ((double)x + 1.0) * 127.5;
    if (!(v > 0.0)) return 0;
    if (v >= 255.0) return 255;
    return (uint8_t)(v + 0.5);
}

// images (n, C, H, W) -> grid PNG
int png_write_grid(const char *path, const float *images, int n, int C, int H, int W,
                   int columns, int pad, Error *err) {
    DMDR_CHECK(n > 0 && (C == 1 || C == 3) && H > 0 && W > 0 && columns > 0 && pad >= 0,
               "grid of %d images (%d, %d, %d), %d columns, pad %d", n, C, H, W, columns, pad);
    int rows = (n + columns - 1) / columns;
    int width = columns * (W + pad) + pad, height = rows * (H + pad) + pad;
    size_t row_bytes = (size_t)width * (size_t)C;
    uint8_t *canvas = malloc(row_bytes * (size_t)height);
    DMDR_CHECK(canvas != NULL, "out of host memory");
    memset(canvas, 255, row_bytes * (size_t)height);
    for (int k = 0; k < n; k++) {
        int y0 = pad + (k / columns) * (H + pad), x0 = pad + (k % columns) * (W + pad);
        const float *img = images + (size_t)k * (size_t)(C * H * W);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    canvas[(size_t)(y0 + y) * row_bytes + (size_t)(x0 + x) * C + c] =
                        pixel_byte(img[((size_t)c * H + y) * W + x]);
    }
    int rc = write_png_atomic(path, canvas, width, height, C, err);
    free(canvas);
    return rc;
}

// matplotlib's "tab10": ten colours that stay distinguishable.
static const uint8_t label_colours[10][3] = {
    {0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x2c, 0xa0, 0x2c}, {0xd6, 0x27, 0x28},
    {0x94, 0x67, 0xbd}, {0x8c, 0x56, 0x4b}, {0xe3, 0x77, 0xc2}, {0x7f, 0x7f, 0x7f},
    {0xbc, 0xbd, 0x22}, {0x17, 0xbe, 0xcf}};

static void put_pixel(uint8_t *canvas, int size, int x, int y, const uint8_t rgb[3]) {
    if (x < 0 || y < 0 || x >= size || y >= size) return;
    memcpy(canvas + ((size_t)y * size + x) * 3, rgb, 3);
}

// points (n, 2), labels (n) or NULL -> scatter PNG
int png_write_scatter(const char *path, const float *points, const int32_t *labels, int n,
                      int size_px, float extent, Error *err) {
    DMDR_CHECK(n >= 0 && size_px >= 16 && extent > 0.0f, "scatter of %d points, %d px, extent %g",
               n, size_px, (double)extent);
    size_t bytes = (size_t)size_px * (size_t)size_px * 3;
    uint8_t *canvas = malloc(bytes);
    DMDR_CHECK(canvas != NULL, "out of host memory");
    memset(canvas, 255, bytes);
    float scale = (float)(size_px - 1) / (2.0f * extent); // pixels per unit
    int origin = (size_px - 1) / 2;
    static const uint8_t axis[3] = {190, 190, 190};
    for (int i = 0; i < size_px; i++) {
        put_pixel(canvas, size_px, i, origin, axis);
        put_pixel(canvas, size_px, origin, i, axis);
    }
    // A tick every unit, or every 10^k units when that would crowd the axes.
    float step = 1.0f;
    while (extent / step > 10.0f) step *= 10.0f;
    for (int k = 1; k * step <= extent; k++) {
        int offset = (int)lroundf(k * step * scale);
        for (int t = -3; t <= 3; t++) {
            put_pixel(canvas, size_px, origin + offset, origin + t, axis);
            put_pixel(canvas, size_px, origin - offset, origin + t, axis);
            put_pixel(canvas, size_px, origin + t, origin + offset, axis);
            put_pixel(canvas, size_px, origin + t, origin - offset, axis);
        }
    }
    for (int i = 0; i < n; i++) {
        float x = points[2 * i], y = points[2 * i + 1];
        if (!(fabsf(x) <= extent && fabsf(y) <= extent)) continue; // outside, or NaN
        int px = origin + (int)lroundf(x * scale), py = origin - (int)lroundf(y * scale);
        int label = labels ? labels[i] : 0;
        const uint8_t *rgb = label_colours[((label % 10) + 10) % 10];
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) put_pixel(canvas, size_px, px + dx, py + dy, rgb);
    }
    int rc = write_png_atomic(path, canvas, size_px, size_px, 3, err);
    free(canvas);
    return rc;
}
