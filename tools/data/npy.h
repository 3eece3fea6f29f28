// NumPy's .npy format (version 1.0), for the sample arrays other tools read (clean-fid,
// torch-fidelity, the ADM evaluator): a magic string, a Python-literal header giving dtype,
// order and shape, padded so the data start at a multiple of 64 bytes, then the raw data.
#pragma once

#include "tensor/error.h"

// images (n, C, H, W) in [-1, 1] -> an (n, H, W, C) uint8 array (values as in the PNGs:
// pixel_byte), written atomically.
int npy_write_images_u8(const char *path, const float *images, int n, int C, int H, int W,
                        Error *err);
