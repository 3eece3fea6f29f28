#include "tools/data/npy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "tools/data/atomic_file.h"
#include "tools/data/png_image.h"

// images (n, C, H, W) -> file
int npy_write_images_u8(const char *path, const float *images, int n, int C, int H, int W,
                        Error *err) {
    DMDR_CHECK(n > 0 && C > 0 && H > 0 && W > 0, "npy of %d images (%d, %d, %d)", n, C, H, W);
    char header[128];
    int len = snprintf(header, sizeof header,
                       "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d, %d, %d), }", n,
                       H, W, C);
    // magic (6) + version (2) + header length (2) + header + padding + '\n' = k * 64
    int total = 10 + len + 1;
    int padded = (total + 63) / 64 * 64;
    size_t count = (size_t)n * (size_t)H * (size_t)W * (size_t)C;
    uint8_t *data = malloc(count);
    DMDR_CHECK(data != NULL, "out of host memory");
    for (int i = 0; i < n; i++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++) // NCHW -> NHWC
                    data[(((size_t)i * H + y) * W + x) * C + c] =
                        pixel_byte(images[(((size_t)i * C + c) * H + y) * W + x]);
    AtomicFile a;
    int rc = atomic_file_open(&a, path, err);
    if (rc == 0) {
        unsigned char start[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                   (unsigned char)((padded - 10) & 0xff),
                                   (unsigned char)((padded - 10) >> 8)};
        bool ok = fwrite(start, 1, 10, a.f) == 10 && fwrite(header, 1, (size_t)len, a.f) == (size_t)len;
        for (int i = 10 + len; ok && i < padded - 1; i++) ok = fputc(' ', a.f) != EOF;
        ok = ok && fputc('\n', a.f) != EOF && fwrite(data, 1, count, a.f) == count;
        if (!ok) error_set(err, "%s: write failed: %s", path, strerror(errno));
        rc = atomic_file_commit(&a, ok, err);
    }
    free(data);
    return rc;
}
