// The Dataset container and the seeded, resumable batcher (see tools/data/dataset.h).
#include "tools/data/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"

static void *checked_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    DMDR_CHECK(p != NULL, "out of host memory (%zu bytes)", n);
    return p;
}

static void alloc_common(Dataset *d, int64_t count, int dim, int num_classes) {
    DMDR_CHECK(count >= 0 && dim > 0 && num_classes > 0, "count %lld, dim %d, classes %d",
               (long long)count, dim, num_classes);
    d->count = count;
    d->dim = dim;
    d->num_classes = num_classes;
    d->data = checked_malloc((size_t)count * (size_t)dim * sizeof(float));
    d->labels = checked_malloc((size_t)count * sizeof(int32_t));
    d->class_names = NULL;
}

void dataset_alloc_images(Dataset *d, int64_t count, int channels, int height, int width,
                          int num_classes) {
    DMDR_CHECK(channels > 0 && height > 0 && width > 0, "image (%d, %d, %d)", channels, height,
               width);
    d->channels = channels;
    d->height = height;
    d->width = width;
    alloc_common(d, count, channels * height * width, num_classes);
}

void dataset_alloc_vectors(Dataset *d, int64_t count, int dim, int num_classes) {
    d->channels = d->height = d->width = 0;
    alloc_common(d, count, dim, num_classes);
}

void dataset_set_class_names(Dataset *d, const char *const *names) {
    DMDR_CHECK(d->class_names == NULL, "class names set twice");
    d->class_names = checked_malloc((size_t)d->num_classes * sizeof(char *));
    for (int k = 0; k < d->num_classes; k++) {
        d->class_names[k] = strdup(names[k]);
        DMDR_CHECK(d->class_names[k] != NULL, "out of host memory");
    }
}

bool dataset_is_image(const Dataset *d) { return d->channels > 0; }

void dataset_free(Dataset *d) {
    if (d->class_names)
        for (int k = 0; k < d->num_classes; k++) free(d->class_names[k]);
    free(d->class_names);
    free(d->data);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

// ---- the batcher ----------------------------------------------------------------------------

// order (count) <- epoch `epoch`'s permutation: Fisher-Yates from identity, so it depends on
// (seed, epoch) only and not on what the loader did before.
static void shuffle_epoch(DataLoader *l) {
    int64_t n = l->data->count;
    Rng r = rng_fork(&l->rng, (uint64_t)l->epoch);
    for (int64_t i = 0; i < n; i++) l->order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(&r, (uint64_t)i + 1);
        int64_t tmp = l->order[i];
        l->order[i] = l->order[j];
        l->order[j] = tmp;
    }
}

void dataloader_init(DataLoader *l, const Dataset *d, int64_t batch, uint64_t seed) {
    DMDR_CHECK(d->count > 0 && batch > 0, "a loader needs examples (%lld) and a batch (%lld)",
               (long long)d->count, (long long)batch);
    memset(l, 0, sizeof *l);
    l->data = d;
    l->batch = batch;
    l->rng = rng_make(seed);
    l->order = checked_malloc((size_t)d->count * sizeof(int64_t));
    l->stage = checked_malloc((size_t)batch * (size_t)d->dim * sizeof(float));
    l->stage_labels = checked_malloc((size_t)batch * sizeof(int32_t));
    shuffle_epoch(l);
}

void dataloader_free(DataLoader *l) {
    free(l->order);
    free(l->stage);
    free(l->stage_labels);
    memset(l, 0, sizeof *l);
}

int dataloader_seek(DataLoader *l, int64_t epoch, int64_t position, Error *err) {
    if (epoch < 0 || position < 0 || position >= l->data->count)
        return error_set(err,
                         "data loader state: epoch %lld, position %lld: expected epoch >= 0 and "
                         "position in [0, %lld)",
                         (long long)epoch, (long long)position, (long long)l->data->count);
    if (epoch != l->epoch) {
        l->epoch = epoch;
        shuffle_epoch(l);
    }
    l->position = position;
    return 0;
}

// -> x (B, C, H, W) or (B, dim), y (B)
void dataloader_next(DataLoader *l, Tensor **x, Tensor **y, Device device) {
    const Dataset *d = l->data;
    for (int64_t b = 0; b < l->batch; b++) {
        int64_t i = l->order[l->position];
        memcpy(l->stage + b * d->dim, d->data + i * d->dim, (size_t)d->dim * sizeof(float));
        l->stage_labels[b] = d->labels[i];
        // Advance eagerly, so a saved position is always inside the epoch it names.
        if (++l->position == d->count) {
            l->epoch++;
            l->position = 0;
            shuffle_epoch(l);
        }
    }
    Shape xs = dataset_is_image(d) ? shape4(l->batch, d->channels, d->height, d->width)
                                   : shape2(l->batch, d->dim);
    *x = tensor_empty(xs, DTYPE_F32, device);
    *y = tensor_empty(shape1(l->batch), DTYPE_I32, device);
    tensor_write(*x, l->stage);
    tensor_write(*y, l->stage_labels);
}
