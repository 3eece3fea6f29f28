// Labelled datasets held in memory, their loaders, and the seeded batcher that feeds training.
//
// A Dataset is either images, (count, C, H, W) with pixels in [-1, 1], or vectors,
// (count, dim) of raw values (the toy 2D mixture). Loaders return -1 with an Error naming the
// file and what was expected, and leave *out empty, so the caller frees nothing on failure.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "tensor/error.h"
#include "tensor/tensor.h"

typedef struct {
    int64_t count;
    int channels, height, width; // images: (C, H, W); all 0 for vector data
    int dim;                     // values per example: C * H * W, or the vector length
    int num_classes;
    float *data;         // (count, C, H, W) or (count, dim)
    int32_t *labels;     // (count), each in [0, num_classes)
    char **class_names;  // num_classes names, or NULL
} Dataset;

// Allocate data and labels (uninitialised) and set the geometry; class_names stays NULL.
void dataset_alloc_images(Dataset *d, int64_t count, int channels, int height, int width,
                          int num_classes);
void dataset_alloc_vectors(Dataset *d, int64_t count, int dim, int num_classes);
// Copies num_classes names into d->class_names.
void dataset_set_class_names(Dataset *d, const char *const *names);
bool dataset_is_image(const Dataset *d);
void dataset_free(Dataset *d); // frees everything and zeroes *d; safe on a zeroed Dataset

// ---- loaders ----------------------------------------------------------------------------------

// Where the Debian package dataset-fashion-mnist installs the four IDX files.
#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

// Raw IDX files (gzip-compressed or not: zlib reads both). Images: magic 0x00000803,
// (count, rows, cols) u8 -> *pixels (count, rows, cols), malloc'd. Labels: magic 0x00000801,
// (count) u8 -> *labels, malloc'd. Magic, sizes, truncation and trailing bytes are checked.
int idx_load_images(const char *path, int64_t *count, int *rows, int *cols, uint8_t **pixels,
                    Error *err);
int idx_load_labels(const char *path, int64_t *count, uint8_t **labels, Error *err);

// An image IDX file and its label file as a one-channel dataset (count, 1, rows, cols), pixels
// mapped to x / 127.5 - 1. Counts must match and labels be < num_classes (num_classes <= 0:
// the largest label + 1). No class names.
int idx_load_dataset(const char *images_path, const char *labels_path, int num_classes,
                     Dataset *out, Error *err);

// Fashion-MNIST (count, 1, 28, 28), 10 named classes. `dir_or_images_path` is a directory
// holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (NULL: FASHION_MNIST_DIR; `train`
// picks the 60000 training or the 10000 test images), or the path of an images file whose
// name contains "images-idx3": the labels are the same name with "labels-idx1" (`train` is
// then unused). Labels must be < 10.
int fashion_mnist_load(const char *dir_or_images_path, bool train, Dataset *out, Error *err);

// A folder of PNGs: root/<class>/<image>.png, one sub-folder per class, the sorted folder
// names giving class ids 0, 1, ... and the class names. Hidden entries (".name") and plain
// files directly under root are skipped; every other file in a class folder must be a PNG.
// Any PNG format is read (grey, grey+alpha, palette, RGB, RGBA, 1..16 bits); alpha is
// composited over black; channels 1 converts to grey by luminance (ITU-R 601: .299 R +
// .587 G + .114 B), channels 3 to RGB. Square images of another size are resized to
// size x size (area averaging when shrinking, bilinear when enlarging); non-square images are
// rejected. -> (count, channels, size, size) in [-1, 1].
//
// `split` holds out a test set the way Fashion-MNIST ships one, so that a judge trained on a
// folder is measured on images no network saw: in each class, in name order, every
// PNG_TEST_EVERY-th image (the 10th, 20th, ...) is a test image, the rest training images.
// A class of fewer images has none in the test split; a test split with no image at all is
// an error naming the folder.
#define PNG_TEST_EVERY 10
typedef enum { SPLIT_ALL, SPLIT_TRAIN, SPLIT_TEST } DataSplit;
int png_folder_load(const char *root, int channels, int size, DataSplit split, Dataset *out,
                    Error *err);

// What a PNG folder holds, for the settings nobody gave: its class count, 3 channels if the
// first image of any class is in colour (RGB, RGBA or a palette; else 1), and the side of the
// first class's first image (which must be square); and, from the file names alone, the class
// with the fewest images in the test split (the first such in name order). Reads one image
// per class.
typedef struct {
    int classes, channels, size;
    int64_t fewest_test;          // test images of that class
    char fewest_test_class[256];  // its folder name (cut to fit)
} PngFolderShape;
int png_folder_probe(const char *root, PngFolderShape *out, Error *err);

// The toy 2D mixture: `components` isotropic Gaussians of standard deviation `std` whose
// means sit evenly on a circle of `radius` (component k at angle 2 pi k / components).
// Example i belongs to component i % components (so the classes are exactly balanced) and
// its label is that component. -> (count, 2) raw values.
int toy2d_make(int64_t count, int components, float radius, float std, uint64_t seed,
               Dataset *out, Error *err);
// mean (2) of component k
void toy2d_component_mean(int k, int components, float radius, float mean[2]);

// ---- the batcher ----------------------------------------------------------------------------

// Batches are consecutive windows of one endless stream: the permutation of epoch 0, then
// that of epoch 1, ...; a batch that crosses an epoch's end takes the rest of that epoch and
// the start of the next. So every batch has the same size (fixed shapes, no re-allocation)
// and every example appears exactly once per epoch.
//
// Epoch e's permutation is a Fisher-Yates shuffle driven by rng_fork(&rng, e): a pure
// function of (seed, e). The whole state is therefore (seed, epoch, position): save those
// three and dataloader_init + dataloader_seek resume the same batches.
typedef struct {
    const Dataset *data;
    int64_t batch;
    Rng rng;          // the base stream, rng_make(seed); never advanced
    int64_t epoch;    // epoch of the next example
    int64_t position; // index of the next example in this epoch's order, in [0, count)
    int64_t *order;   // (count) this epoch's permutation of the examples
    float *stage;     // (batch, dim) host staging for one batch
    int32_t *stage_labels; // (batch)
} DataLoader;

void dataloader_init(DataLoader *l, const Dataset *d, int64_t batch, uint64_t seed);
void dataloader_free(DataLoader *l);
// Moves to a saved (epoch, position); -1 with err when they are out of range.
int dataloader_seek(DataLoader *l, int64_t epoch, int64_t position, Error *err);
// -> x (B, C, H, W) or (B, dim) F32, y (B) I32, on `device`, in the current tensor scope.
void dataloader_next(DataLoader *l, Tensor **x, Tensor **y, Device device);
