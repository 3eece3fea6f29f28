// Fuzz target: the Fashion-MNIST IDX reader (tools/data/fashion_mnist.c): fashion_mnist_load
// on a folder holding train-images-idx3-ubyte and train-labels-idx1-ubyte, as `--data DIR`
// reads it: magic numbers, sizes, truncation, trailing bytes, gzip (zlib reads gzip and plain
// files alike), matching counts, labels < 10.
//
// Input: a 4-byte little-endian length L, then the images file (L bytes, or all that is left
// when fewer), then the labels file (the rest). gen_corpus.c writes seeds in this layout.
#include <string.h>

#include "test/fuzz/fuzz.h"
#include "tools/data/dataset.h"

int fuzz_idx(const uint8_t *data, size_t size) {
    if (size < 4) return -1;
    size_t len = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 |
                 (size_t)data[3] << 24;
    data += 4;
    size -= 4;
    if (len > size) len = size;
    char images[4096], labels[4096];
    fuzz_write_file(fuzz_path(images, sizeof images, "train-images-idx3-ubyte"), data, len);
    fuzz_write_file(fuzz_path(labels, sizeof labels, "train-labels-idx1-ubyte"), data + len,
                    size - len);
    Dataset d;
    Error err = {{0}};
    if (fashion_mnist_load(fuzz_tmpdir(), true, &d, &err) == 0) {
        if (d.count < 1 || d.channels != 1 || d.num_classes != 10 || !d.class_names)
            fuzz_fail("a loaded IDX pair is a one-channel 10-class dataset", NULL);
        for (int64_t i = 0; i < d.count; i++)
            if (d.labels[i] < 0 || d.labels[i] >= 10) fuzz_fail("labels are in 0..9", NULL);
        for (int64_t i = 0; i < d.count * d.dim; i++)
            if (!(d.data[i] >= -1.0f && d.data[i] <= 1.0f))
                fuzz_fail("pixels are in [-1, 1]", NULL);
        dataset_free(&d);
    } else {
        fuzz_refused(err.msg);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_idx)
