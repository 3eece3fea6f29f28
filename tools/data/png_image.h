// PNG in and out through libpng: reading any PNG as 8-bit RGBA, and the two pictures the
// program draws: a grid of images and a scatter plot of 2D samples. Writes are atomic (a
// temporary file beside the target, fsync, rename), so a reader never sees half a PNG.
// libpng errors (corrupt files, failed writes) come back as Error values naming the file.
#pragma once

#include <stdint.h>

#include "tensor/error.h"

typedef struct {
    int width, height;
    int file_channels; // what the file holds: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (palette: 3 or 4)
    int bit_depth;     // of the file: 1, 2, 4, 8 or 16
    uint8_t *rgba;     // (height, width, 4), malloc'd; 16-bit samples are rounded to 8 bits
} PngImage;

// The most pixels a file may declare (an 8192 x 8192 image: 256 MiB decoded): a header that
// promises more is refused before anything is allocated.
#define PNG_MAX_PIXELS (1 << 26)

// (pngimage_, not png_: libpng owns that prefix and already has a png_image_free.)
// Palette indices past the PLTE are refused, as are images over PNG_MAX_PIXELS.
int pngimage_read(const char *path, PngImage *out, Error *err);
void pngimage_free(PngImage *img);

// A pixel value in [-1, 1] -> [0, 255], rounded to nearest, clamped; NaN -> 0: the one
// conversion of every picture and array the program writes.
uint8_t pixel_byte(float x);

// images (n, C, H, W) in [-1, 1], C = 1 (grey PNG) or 3 (RGB PNG) -> a grid of `columns`
// images per row, rows = ceil(n / columns), with `pad` white pixels between and around them;
// values are clamped to [0, 255] after x -> (x + 1) 127.5. Unused cells are white.
int png_write_grid(const char *path, const float *images, int n, int C, int H, int W,
                   int columns, int pad, Error *err);

// points (n, 2), labels (n) or NULL -> a size_px x size_px RGB scatter plot of the square
// [-extent, extent]^2 (y up) on white, axes through the origin with a tick at every unit
// (every 10^k units when the extent exceeds 10), each point a 3 x 3 dot coloured by its
// label (10 colours, repeating). Points outside the square are not drawn.
int png_write_scatter(const char *path, const float *points, const int32_t *labels, int n,
                      int size_px, float extent, Error *err);
