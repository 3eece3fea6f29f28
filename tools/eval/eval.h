// The judge's measurements of a set of images against the Fashion-MNIST test set
// (docs/experiments/judge/README.md). Whatever produced the images (a teacher's sampler, a
// few-step generator, the real training set) is the caller's business: `dmdr eval` and the
// trainers hand images and their prompted labels to eval_measure.
//
// In the classifier's penultimate feature space:
//   FID        Frechet distance between the images' features and all reference features;
//   precision, recall   k = 3 nearest-neighbour manifolds against an equal-size reference
//              subset with the same class counts as the images (the first test images of each
//              class), as Kynkaanniemi et al. compare equal numbers of real and fake images;
// from the classifier's outputs:
//   accuracy   argmax == the prompted label;
//   IS         the Inception-Score analogue exp(E KL(p(y|x) || p(y)));
//   reward     mean log p(prompted label | x): minus the cross-entropy the RL stage minimises.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "dmdr/metrics.h"
#include "nn/classifier.h"
#include "tools/data/dataset.h"

#define EVAL_NEIGHBOURS 3 // k of precision and recall

// The test set through the classifier, computed once per evaluation session.
typedef struct {
    int64_t count;
    int dim, num_classes;
    float *features;    // (count, dim)
    int32_t *labels;    // (count)
    FeatureStats stats; // of all the rows, for FID
    bool cached;        // the features came from the cache (eval_reference_cached)
} EvalReference;

// classifier_load, after checking the file against the manifest of shipped weights when one
// lists it (tools/data/manifest.h): the judge and the reward model as every command loads them.
int eval_classifier_load(const char *path, Device device, Classifier **out, Error *err);

// Runs the classifier over the images of `test` (which must fit it). -1 with err otherwise.
int eval_reference_init(EvalReference *ref, Classifier *c, const Dataset *test, Error *err);
void eval_reference_free(EvalReference *ref);

// eval_reference_init through a cache: the features depend only on the classifier's file and
// the test images, so they are kept in judge-reference-<key>.safetensors under
// $DMDR_CACHE_DIR (else $XDG_CACHE_HOME/dmdr, else ~/.cache/dmdr), key = SHA-256 of both.
// A later evaluation with the same judge and test set reads them back: the same numbers,
// bit for bit, without the judge's pass over the test set (a minute for the held-out judge
// on two cores). An unusable cache (no folder, an unreadable or mismatched file) only means
// computing them; ref->cached says whether the cache served them.
int eval_reference_cached(EvalReference *ref, Classifier *c, const char *classifier_path,
                          const Dataset *test, Error *err);

typedef struct {
    int64_t count;           // images measured
    int64_t reference_count; // reference rows of precision and recall
    double fid, precision, recall, accuracy, is_score, reward;
} EvalMetrics;

// images (n, C, H, W) host values in [-1, 1] (anything else is clamped, as saving them to
// PNG would), labels (n) the classes they were prompted with -> out. n must exceed
// EVAL_NEIGHBOURS and the test set must hold as many images of each class as the labels
// ask for; -1 with err otherwise.
int eval_measure(Classifier *c, const EvalReference *ref, const float *images,
                 const int32_t *labels, int64_t n, EvalMetrics *out, Error *err);

// The mean log p(labels[i] | images[i]) under another classifier (the reward model, when the
// judge is held out from it) into *reward. -1 with err when the images do not fit it.
int eval_reward(Classifier *reward, const float *images, const int32_t *labels, int64_t n,
                double *out, Error *err);
