// Fuzz target: the PNG folder loader (tools/data/png_folder.c over png_image.c), as
// `--dataset png --data DIR` reads it. The input is one PNG file, placed in a class
// sub-folder of a temporary folder, loaded twice: as grey 8 x 8 and as RGB 13 x 13, so both
// the luminance and the RGB conversions run, and most images are resized (area averaging
// when shrinking, bilinear when enlarging). Covers libpng's reading of every colour type,
// bit depth, palette, tRNS and interlacing through our setjmp error path, the square check
// and the resize.
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "test/fuzz/fuzz.h"
#include "tools/data/dataset.h"

int fuzz_png_folder(const uint8_t *data, size_t size) {
    char root[4096], class_dir[4096 + 16], file[4096 + 32];
    fuzz_path(root, sizeof root, "png");
    snprintf(class_dir, sizeof class_dir, "%s/shirt", root);
    snprintf(file, sizeof file, "%s/image.png", class_dir);
    mkdir(root, 0700);
    mkdir(class_dir, 0700);
    fuzz_write_file(file, data, size);
    static const int settings[2][2] = {{1, 8}, {3, 13}}; // channels, size
    for (int k = 0; k < 2; k++) {
        Dataset d;
        Error err = {{0}};
        if (png_folder_load(root, settings[k][0], settings[k][1], SPLIT_ALL, &d, &err) == 0) {
            if (d.count != 1 || d.num_classes != 1 || d.labels[0] != 0 ||
                strcmp(d.class_names[0], "shirt") != 0)
                fuzz_fail("one image of class 0 \"shirt\"", NULL);
            for (int64_t i = 0; i < d.dim; i++)
                if (!(d.data[i] >= -1.0001f && d.data[i] <= 1.0001f))
                    fuzz_fail("pixels are in [-1, 1]", NULL);
            dataset_free(&d);
        } else {
            fuzz_refused(err.msg);
        }
    }
    return 0;
}

FUZZ_ENTRY(fuzz_png_folder)
