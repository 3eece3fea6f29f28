// Generation metrics in a feature space (the judge classifier's penultimate layer): Frechet
// distance (FID), k-nearest-neighbour precision and recall, class accuracy and an
// Inception-Score analogue. Pure host computations on row-major float arrays, in double
// precision where sums accumulate; independent of the tensor engine so they can be checked
// against closed forms.
#pragma once

#include <stdint.h>

#include "tensor/error.h"

// Mean (d) and covariance (d, d) of n feature rows, the covariance with the n - 1
// denominator as numpy.cov / pytorch-fid use. feats (n, d) row-major.
typedef struct {
    int dim;
    int64_t count;
    double *mean; // (d)
    double *cov;  // (d, d) row-major, symmetric
} FeatureStats;

// n >= 2. Returns 0, or -1 with err when n < 2, d < 1, a feature is not finite (the message
// names its row and column) or out of memory; *out is then empty (NULL arrays).
int feature_stats_compute(const float *feats, int64_t n, int d, FeatureStats *out, Error *err);
void feature_stats_free(FeatureStats *s); // also safe on a failed compute

// Frechet distance between N(mu1, C1) and N(mu2, C2):
//   |mu1 - mu2|^2 + tr(C1) + tr(C2) - 2 tr((C1^1/2 C2 C1^1/2)^1/2)
// where the trace of the matrix square root is taken through symmetric eigendecompositions
// (LAPACK dsyevd): C1^1/2 from the eigenpairs of C1 (negative round-off eigenvalues clamped
// to 0), then the square roots of the (clamped) eigenvalues of the symmetric C1^1/2 C2 C1^1/2.
// The result is clamped at 0 (round-off can leave a distance of 0 a few ulps below it).
// Returns 0 and *fid, or -1 with err (dimension mismatch, non-finite entries, LAPACK failure).
int frechet_distance(const FeatureStats *a, const FeatureStats *b, double *fid, Error *err);

// Improved precision and recall (Kynkaanniemi et al. 2019) with k-nearest-neighbour balls:
// precision = fraction of fake rows inside some real row's ball (radius = distance to that
// real row's k-th nearest other real row), recall = the same with the roles swapped.
// real (n_real, d), fake (n_fake, d); k < n_real and k < n_fake. Distances are computed in
// float (GEMM) after centring both sets on the real mean. Returns 0, or -1 with err (k, d or a
// row count out of range, a non-finite value naming its set, row and column, out of memory).
int precision_recall(const float *real, int64_t n_real, const float *fake, int64_t n_fake,
                     int d, int k, double *precision, double *recall, Error *err);

// Classifier outputs on generated samples. logits (n, classes), labels (n) the prompted class.
// accuracy: fraction with argmax == label.
// is_score: exp(mean_i KL(p(y|x_i) || p(y))), p(y) the mean of the softmaxes (the Inception
//           Score, with our classifier in place of Inception; 1 .. classes).
// mean_log_prob: mean of log p(label_i | x_i) (the reward of the RL stage is this per sample).
typedef struct {
    double accuracy, is_score, mean_log_prob;
} ClassifierScores;

// Returns 0, or -1 with err (n < 1, classes < 2, a non-finite logit or a label outside
// 0 .. classes - 1, naming the row).
int classifier_scores(const float *logits, const int32_t *labels, int64_t n, int classes,
                      ClassifierScores *out, Error *err);
