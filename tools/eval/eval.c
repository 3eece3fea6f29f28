// eval_measure: images -> classifier features and logits -> the metrics of dmdr/metrics.h.
#include "tools/eval/eval.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "tensor/dist.h"
#include "tensor/safetensors.h"
#include "tools/data/atomic_file.h"
#include "tools/data/manifest.h"
#include "tools/data/sha256.h"

#define EVAL_CHUNK 500 // images per classifier pass

static void *checked_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    DMDR_CHECK(p != NULL, "out of host memory (%zu bytes)", n);
    return p;
}

// The checks and allocations of a reference, its labels copied; features still to fill.
static int reference_alloc(EvalReference *ref, Classifier *c, const Dataset *test, Error *err) {
    memset(ref, 0, sizeof *ref);
    const ClassifierConfig *cc = classifier_config(c);
    if (test->channels != cc->in_channels || test->height != cc->image_size ||
        test->width != cc->image_size || test->num_classes != cc->num_classes)
        return error_set(err, "the test images are %dx%dx%d of %d classes; the classifier takes "
                              "%dx%dx%d of %d", test->channels, test->height, test->width,
                         test->num_classes, cc->in_channels, cc->image_size, cc->image_size,
                         cc->num_classes);
    ref->count = test->count;
    ref->dim = classifier_feature_dim(c);
    ref->num_classes = cc->num_classes;
    ref->features = checked_malloc((size_t)(ref->count * ref->dim) * sizeof *ref->features);
    ref->labels = checked_malloc((size_t)ref->count * sizeof *ref->labels);
    memcpy(ref->labels, test->labels, (size_t)ref->count * sizeof *ref->labels);
    return 0;
}

// The FID statistics of the filled features.
static int reference_finish(EvalReference *ref, Error *err) {
    if (feature_stats_compute(ref->features, ref->count, ref->dim, &ref->stats, err) != 0) {
        eval_reference_free(ref);
        return -1;
    }
    return 0;
}

int eval_reference_init(EvalReference *ref, Classifier *c, const Dataset *test, Error *err) {
    if (reference_alloc(ref, c, test, err) != 0) return -1;
    classifier_apply(c, test->data, test->count, EVAL_CHUNK, NULL, ref->features);
    return reference_finish(ref, err);
}

void eval_reference_free(EvalReference *ref) {
    feature_stats_free(&ref->stats);
    free(ref->features);
    free(ref->labels);
    memset(ref, 0, sizeof *ref);
}

// The reference rows for precision and recall: for each class, as many of its first test
// rows as `labels` holds images of it, so both sets have the same size and class counts.
// -> (n, dim) malloc'd, or NULL with err when the test set has too few of some class.
static float *reference_subset(const EvalReference *ref, const int32_t *labels, int64_t n,
                               Error *err) {
    int64_t *want = calloc((size_t)ref->num_classes, sizeof *want);
    int64_t *have = calloc((size_t)ref->num_classes, sizeof *have);
    DMDR_CHECK(want && have, "out of host memory");
    for (int64_t i = 0; i < n; i++) want[labels[i]]++;
    for (int64_t i = 0; i < ref->count; i++) have[ref->labels[i]]++;
    float *rows = NULL;
    for (int k = 0; k < ref->num_classes; k++)
        if (have[k] < want[k]) {
            error_set(err, "%lld images of class %d to measure, but the test set has %lld: "
                           "precision and recall compare as many test images of each class",
                      (long long)want[k], k, (long long)have[k]);
            goto done;
        }
    rows = checked_malloc((size_t)(n * ref->dim) * sizeof *rows);
    int64_t used = 0;
    for (int64_t i = 0; i < ref->count && used < n; i++) {
        if (want[ref->labels[i]] == 0) continue;
        want[ref->labels[i]]--;
        memcpy(rows + used++ * ref->dim, ref->features + i * ref->dim,
               (size_t)ref->dim * sizeof *rows);
    }
done:
    free(want);
    free(have);
    return rows;
}

// images (n, C, H, W) clamped to [-1, 1], the classifier's range (malloc'd)
static float *clamped_images(const ClassifierConfig *cc, const float *images, int64_t n) {
    int64_t size = (int64_t)cc->in_channels * cc->image_size * cc->image_size;
    float *x = checked_malloc((size_t)(n * size) * sizeof *x);
    for (int64_t i = 0; i < n * size; i++)
        x[i] = images[i] < -1.0f ? -1.0f : images[i] > 1.0f ? 1.0f : images[i];
    return x;
}

int eval_reward(Classifier *reward, const float *images, const int32_t *labels, int64_t n,
                double *out, Error *err) {
    const ClassifierConfig *cc = classifier_config(reward);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= cc->num_classes)
            return error_set(err, "image %lld is labelled %d, outside the reward model's %d "
                                  "classes", (long long)i, labels[i], cc->num_classes);
    float *x = clamped_images(cc, images, n);
    float *logits = checked_malloc((size_t)(n * cc->num_classes) * sizeof *logits);
    classifier_apply(reward, x, n, EVAL_CHUNK, logits, NULL);
    ClassifierScores scores;
    int rc = classifier_scores(logits, labels, n, cc->num_classes, &scores, err);
    if (rc == 0) *out = scores.mean_log_prob;
    free(x);
    free(logits);
    return rc;
}

int eval_measure(Classifier *c, const EvalReference *ref, const float *images,
                 const int32_t *labels, int64_t n, EvalMetrics *out, Error *err) {
    memset(out, 0, sizeof *out);
    if (n <= EVAL_NEIGHBOURS)
        return error_set(err, "%lld images are too few to measure: precision and recall need "
                              "more than %d", (long long)n, EVAL_NEIGHBOURS);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= ref->num_classes)
            return error_set(err, "image %lld is labelled %d, outside the classifier's %d "
                                  "classes", (long long)i, labels[i], ref->num_classes);
    const ClassifierConfig *cc = classifier_config(c);
    float *x = clamped_images(cc, images, n);
    float *logits = checked_malloc((size_t)(n * cc->num_classes) * sizeof *logits);
    float *features = checked_malloc((size_t)(n * ref->dim) * sizeof *features);
    classifier_apply(c, x, n, EVAL_CHUNK, logits, features);
    free(x);

    FeatureStats stats = {0};
    ClassifierScores scores;
    float *real = reference_subset(ref, labels, n, err);
    int rc = real ? 0 : -1;
    if (rc == 0) rc = feature_stats_compute(features, n, ref->dim, &stats, err);
    if (rc == 0) rc = frechet_distance(&stats, &ref->stats, &out->fid, err);
    if (rc == 0)
        rc = precision_recall(real, n, features, n, ref->dim, EVAL_NEIGHBOURS, &out->precision,
                              &out->recall, err);
    if (rc == 0) rc = classifier_scores(logits, labels, n, cc->num_classes, &scores, err);
    if (rc == 0) {
        out->count = out->reference_count = n;
        out->accuracy = scores.accuracy;
        out->is_score = scores.is_score;
        out->reward = scores.mean_log_prob;
    }
    feature_stats_free(&stats);
    free(real);
    free(logits);
    free(features);
    return rc;
}

int eval_classifier_load(const char *path, Device device, Classifier **out, Error *err) {
    if (manifest_check(path, NULL, err) != 0) return -1;
    return classifier_load(path, device, out, err);
}

// The cache file for this classifier file and test set, or -1 when there is no cache folder.
static int reference_cache_path(const char *classifier_path, const Dataset *test, char *out,
                                size_t size) {
    const char *dir = getenv("DMDR_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    char folder[1024];
    if (dir && dir[0]) snprintf(folder, sizeof folder, "%s", dir);
    else if (xdg && xdg[0]) snprintf(folder, sizeof folder, "%s/dmdr", xdg);
    else if (home && home[0]) snprintf(folder, sizeof folder, "%s/.cache/dmdr", home);
    else return -1;
    char sha[65];
    Error ignored;
    if (sha256_file(classifier_path, sha, NULL, &ignored) != 0) return -1;
    Sha256 h;
    sha256_init(&h);
    sha256_update(&h, sha, 64);
    int64_t dims[5] = {test->count, test->channels, test->height, test->width, test->num_classes};
    sha256_update(&h, dims, sizeof dims);
    sha256_update(&h, test->data, (size_t)test->count * test->channels * test->height *
                                      test->width * sizeof *test->data);
    sha256_update(&h, test->labels, (size_t)test->count * sizeof *test->labels);
    unsigned char d[32];
    sha256_final(&h, d);
    int n = snprintf(out, size, "%s/judge-reference-", folder);
    for (int i = 0; i < 16 && n + 2 < (int)size; i++, n += 2) snprintf(out + n, 3, "%02x", d[i]);
    return snprintf(out + n, size - (size_t)n, ".safetensors") >= (int)(size - (size_t)n) ? -1 : 0;
}

// The cached features into ref (count, dim and labels as computed) -> whether they fit.
static bool read_cached(EvalReference *ref, const char *path, const Dataset *test) {
    Safetensors st;
    Error ignored;
    if (safetensors_load(path, &st, &ignored) != 0) return false;
    Tensor *f = safetensors_find(&st, "features"), *l = safetensors_find(&st, "labels");
    bool ok = f && l && f->dtype == DTYPE_F32 && l->dtype == DTYPE_I32 && f->shape.ndim == 2 &&
              f->shape.dim[0] == ref->count && f->shape.dim[1] == ref->dim &&
              l->shape.ndim == 1 && l->shape.dim[0] == ref->count &&
              memcmp(tensor_data(l), test->labels, (size_t)ref->count * sizeof(int32_t)) == 0;
    if (ok) memcpy(ref->features, tensor_f32(f), (size_t)(ref->count * ref->dim) * sizeof(float));
    safetensors_free(&st);
    return ok;
}

int eval_reference_cached(EvalReference *ref, Classifier *c, const char *classifier_path,
                          const Dataset *test, Error *err) {
    char path[1200];
    if (reference_cache_path(classifier_path, test, path, sizeof path) != 0)
        return eval_reference_init(ref, c, test, err);
    if (reference_alloc(ref, c, test, err) != 0) return -1;
    if (read_cached(ref, path, test)) {
        ref->cached = true;
        return reference_finish(ref, err);
    }
    classifier_apply(c, test->data, test->count, EVAL_CHUNK, NULL, ref->features);
    if (reference_finish(ref, err) != 0) return -1;
    // only rank 0 writes (the others computed the same rows)
    char *slash = strrchr(path, '/');
    Error ignored;
    if (dist_rank() == 0 && slash) {
        *slash = '\0';
        bool made = make_dirs(path, &ignored) == 0;
        *slash = '/';
        Tensor *f = tensor_from_floats(shape_make(2, (int64_t[]){ref->count, ref->dim}),
                                       ref->features, DEVICE_CPU);
        Tensor *l = tensor_from_ints(shape_make(1, (int64_t[]){ref->count}), ref->labels,
                                     DEVICE_CPU);
        const char *names[] = {"features", "labels"};
        Tensor *tensors[] = {f, l};
        if (made) safetensors_save(path, 2, names, tensors, 0, NULL, NULL, &ignored);
        tensor_release(f);
        tensor_release(l);
    }
    return 0;
}
