// Generation metrics on host feature arrays (see metrics.h for the definitions).
//
// FID: mean and covariance accumulate in double (the covariance as a DSYRK over centred row
// chunks), and the trace of the matrix square root comes from two LAPACK dsyevd calls.
// Precision/recall: squared distances |a|^2 + |b|^2 - 2 a.b with an SGEMM per block of rows;
// one fake-by-real block serves both membership tests (precision reads its rows, recall its
// columns), so the whole metric costs three n x n GEMMs.
#include "dmdr/metrics.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"

// LAPACK from OpenBLAS (Debian ships no LAPACKE header for it): the Fortran symbol, with the
// hidden lengths of the two character arguments that gfortran appends.
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
             double *w, double *work, const int *lwork, int *iwork, const int *liwork,
             int *info, size_t jobz_len, size_t uplo_len);

// The first non-finite value of x (rows, cols) -> its row, or -1 when all are finite.
static int64_t first_nonfinite_row(const float *x, int64_t rows, int64_t cols, int64_t *col) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            if (!isfinite(x[i * cols + j])) {
                *col = j;
                return i;
            }
    return -1;
}

static int check_finite(const char *fn, const char *what, const float *x, int64_t rows,
                        int64_t cols, Error *err) {
    int64_t col, row = first_nonfinite_row(x, rows, cols, &col);
    if (row < 0) return 0;
    return error_set(err, "%s: %s row %lld column %lld is %g, expected a finite number", fn,
                     what, (long long)row, (long long)col, (double)x[row * cols + col]);
}

// ---- Frechet distance --------------------------------------------------------------------

enum { STATS_CHUNK = 4096 }; // rows centred at a time for the covariance DSYRK

// feats (n, d) -> mean (d), cov (d, d) with the n - 1 denominator
int feature_stats_compute(const float *feats, int64_t n, int d, FeatureStats *out,
                          Error *err) {
    *out = (FeatureStats){.dim = d, .count = n};
    if (n < 2 || d < 1)
        return error_set(err, "feature_stats: %lld rows of %d features, expected at least 2 "
                         "rows of at least 1 feature", (long long)n, d);
    if (check_finite("feature_stats", "feature", feats, n, d, err)) return -1;
    int64_t chunk_rows = n < STATS_CHUNK ? n : STATS_CHUNK;
    out->mean = calloc((size_t)d, sizeof(double));
    out->cov = malloc((size_t)d * (size_t)d * sizeof(double));
    double *centred = malloc((size_t)chunk_rows * (size_t)d * sizeof(double));
    if (!out->mean || !out->cov || !centred) {
        free(centred);
        feature_stats_free(out);
        return error_set(err, "feature_stats: out of memory for %d features", d);
    }
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) out->mean[j] += feats[i * d + j];
    for (int j = 0; j < d; j++) out->mean[j] /= (double)n;
    // Two passes (mean, then centred products) rather than sum x x^T - n mu mu^T, which
    // cancels catastrophically when the features share a large offset.
    for (int64_t r0 = 0; r0 < n; r0 += chunk_rows) {
        int rows = (int)(n - r0 < chunk_rows ? n - r0 : chunk_rows);
        for (int64_t i = 0; i < rows; i++)
            for (int j = 0; j < d; j++)
                centred[i * d + j] = feats[(r0 + i) * d + j] - out->mean[j];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, rows, 1.0 / (double)(n - 1),
                    centred, d, r0 == 0 ? 0.0 : 1.0, out->cov, d);
    }
    free(centred);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < i; j++) out->cov[i * d + j] = out->cov[j * d + i];
    return 0;
}

void feature_stats_free(FeatureStats *s) {
    free(s->mean);
    free(s->cov);
    s->mean = s->cov = NULL;
}

// Symmetric a (d, d) -> eigenvalues w (d) ascending; with vectors, a is overwritten by them,
// one eigenvector per row (LAPACK's column-major columns read row-major).
static int symmetric_eigen(double *a, int d, bool vectors, double *w, Error *err) {
    const char jobz = vectors ? 'V' : 'N', uplo = 'U';
    int lwork = -1, liwork = -1, info = 0, iwork_size = 0;
    double work_size = 0.0;
    dsyevd_(&jobz, &uplo, &d, a, &d, w, &work_size, &lwork, &iwork_size, &liwork, &info, 1, 1);
    if (info != 0) return error_set(err, "frechet_distance: LAPACK dsyevd workspace query failed "
                                    "(info %d)", info);
    lwork = (int)work_size;
    liwork = iwork_size;
    double *work = malloc((size_t)lwork * sizeof(double));
    int *iwork = malloc((size_t)liwork * sizeof(int));
    if (work && iwork)
        dsyevd_(&jobz, &uplo, &d, a, &d, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (!work || !iwork)
        return error_set(err, "frechet_distance: out of memory for a %d x %d eigenproblem", d, d);
    if (info != 0)
        return error_set(err, "frechet_distance: LAPACK dsyevd did not converge on a %d x %d "
                         "matrix (info %d)", d, d, info);
    return 0;
}

static int check_stats(const FeatureStats *s, const char *which, Error *err) {
    DMDR_CHECK(s->mean != NULL && s->cov != NULL, "%s statistics are not computed", which);
    int d = s->dim;
    for (int64_t i = 0; i < (int64_t)d * d + d; i++) {
        double v = i < d ? s->mean[i] : s->cov[i - d];
        if (!isfinite(v))
            return error_set(err, "frechet_distance: %s %s has a non-finite entry %g", which,
                             i < d ? "mean" : "covariance", v);
    }
    return 0;
}

// tr((C1^1/2 C2 C1^1/2)^1/2) for symmetric PSD c1, c2 (d, d).
// With C1 = E^T W E (rows of E its eigenvectors) and P = W^1/2 E, C1^1/2 C2 C1^1/2 is
// E^T (P C2 P^T) E: the same eigenvalues as G = P C2 P^T, so C1^1/2 itself is never formed.
static int trace_sqrt_product(const double *c1, const double *c2, int d, double *trace,
                              Error *err) {
    size_t dd = (size_t)d * (size_t)d;
    double *p = malloc(dd * sizeof(double)), *t = malloc(dd * sizeof(double));
    double *g = malloc(dd * sizeof(double)), *w = malloc((size_t)d * sizeof(double));
    int rc = -1;
    if (!p || !t || !g || !w) {
        error_set(err, "frechet_distance: out of memory for %d x %d matrices", d, d);
        goto done;
    }
    memcpy(p, c1, dd * sizeof(double));
    if (symmetric_eigen(p, d, true, w, err)) goto done;
    for (int i = 0; i < d; i++) {
        double s = sqrt(fmax(w[i], 0.0)); // round-off makes PSD eigenvalues slightly negative
        for (int j = 0; j < d; j++) p[i * d + j] *= s;
    }
    cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, d, d, 1.0, c2, d, p, d, 0.0, t, d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0, t, d, p, d, 0.0, g, d);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < i; j++)
            g[i * d + j] = g[j * d + i] = 0.5 * (g[i * d + j] + g[j * d + i]);
    if (symmetric_eigen(g, d, false, w, err)) goto done;
    *trace = 0.0;
    for (int i = 0; i < d; i++) *trace += sqrt(fmax(w[i], 0.0));
    rc = 0;
done:
    free(p);
    free(t);
    free(g);
    free(w);
    return rc;
}

int frechet_distance(const FeatureStats *a, const FeatureStats *b, double *fid, Error *err) {
    if (a->dim != b->dim || a->dim < 1)
        return error_set(err, "frechet_distance: statistics of %d and %d features, expected the "
                         "same positive count", a->dim, b->dim);
    if (check_stats(a, "first", err) || check_stats(b, "second", err)) return -1;
    int d = a->dim;
    double trace_sqrt;
    if (trace_sqrt_product(a->cov, b->cov, d, &trace_sqrt, err)) return -1;
    double dist = 0.0;
    for (int i = 0; i < d; i++) {
        double diff = a->mean[i] - b->mean[i];
        dist += diff * diff + a->cov[i * d + i] + b->cov[i * d + i];
    }
    // A squared distance: round-off can leave it a few ulps of the traces below zero.
    *fid = fmax(dist - 2.0 * trace_sqrt, 0.0);
    return 0;
}

// ---- precision and recall ----------------------------------------------------------------

enum { PR_BLOCK = 256 }; // rows per distance block: PR_BLOCK x n floats of scratch

// One set's rows as the GEMMs see them: shifted by a common centre, with squared norms.
typedef struct {
    float *x;    // (n, d) row - centre
    float *norm; // (n) |x_i|^2
    float *r2;   // (n) squared k-th nearest-neighbour radius within the set
    int n;
} PointSet;

// Distances are translation invariant, but the error of |a|^2 + |b|^2 - 2 a.b grows with the
// norms: centring both sets on the real mean keeps it small when features share an offset.
static int point_set_init(PointSet *s, const float *rows, int n, int d, const double *centre,
                          const char *which, Error *err) {
    s->n = n;
    s->x = malloc((size_t)n * (size_t)d * sizeof(float));
    s->norm = malloc((size_t)n * sizeof(float));
    s->r2 = malloc((size_t)n * sizeof(float));
    if (!s->x || !s->norm || !s->r2)
        return error_set(err, "precision_recall: out of memory for %d %s rows", n, which);
    for (int64_t i = 0; i < n; i++) {
        double norm = 0.0;
        for (int j = 0; j < d; j++) {
            float v = (float)(rows[i * d + j] - centre[j]);
            s->x[i * d + j] = v;
            norm += (double)v * v;
        }
        if (!(norm < 1e36)) // squares of norms must stay finite in float GEMM arithmetic
            return error_set(err, "precision_recall: %s row %lld has squared norm %g about the "
                             "real mean, expected below 1e36", which, (long long)i, norm);
        s->norm[i] = (float)norm;
    }
    return 0;
}

static void point_set_free(PointSet *s) {
    free(s->x);
    free(s->norm);
    free(s->r2);
}

// dot (rows, b->n) = -2 a_i . b_j for a's rows [r0, r0 + rows): adding |a_i|^2 + |b_j|^2 makes
// the squared distance, which the consumers do on the fly rather than in another pass.
static void block_products(const PointSet *a, int r0, int rows, const PointSet *b, int d,
                           float *dot) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, b->n, d, -2.0f,
                a->x + (int64_t)r0 * d, d, b->x, d, 0.0f, dot, b->n);
}

enum { SMALL_K = 16 }; // up to here the k-th smallest is kept by insertion, beyond by select

// The k-th smallest (1 <= k < n) of x (n), which may be reordered. Small k: one pass keeping
// the k smallest sorted (a row rarely beats the k-th after the first few hundred values, so
// this is about a compare per value); large k: quickselect, O(n) on average.
static float kth_smallest(float *x, int n, int k) {
    if (k <= SMALL_K) {
        float best[SMALL_K];
        for (int i = 0; i < k; i++) best[i] = INFINITY;
        for (int i = 0; i < n; i++) {
            float v = x[i];
            if (v >= best[k - 1]) continue;
            int j = k - 1;
            for (; j > 0 && best[j - 1] > v; j--) best[j] = best[j - 1];
            best[j] = v;
        }
        return best[k - 1];
    }
    int lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = x[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (x[i] < pivot) i++;
            while (x[j] > pivot) j--;
            if (i <= j) {
                float t = x[i];
                x[i++] = x[j];
                x[j--] = t;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return x[want]; // between j and i every value equals the pivot
    }
    return x[want];
}

// s->r2 = squared distance from each row to its k-th nearest other row of the same set
static void knn_radii(PointSet *s, int d, int k, float *dot) {
    for (int r0 = 0; r0 < s->n; r0 += PR_BLOCK) {
        int rows = s->n - r0 < PR_BLOCK ? s->n - r0 : PR_BLOCK;
        block_products(s, r0, rows, s, d, dot);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < rows; i++) {
            float *row = dot + (int64_t)i * s->n, na = s->norm[r0 + i];
            for (int j = 0; j < s->n; j++) {
                float d2 = row[j] + na + s->norm[j];
                row[j] = d2 > 0.0f ? d2 : 0.0f; // round-off can make it negative
            }
            row[r0 + i] = INFINITY; // itself, which k < n keeps out of the k smallest
            s->r2[r0 + i] = kth_smallest(row, s->n, k);
        }
    }
}

// precision: fake rows inside some real ball; recall: real rows inside some fake ball.
// (The squared distances are not clamped at 0 here: against a radius >= 0 it changes nothing.)
static void manifold_coverage(const PointSet *real, const PointSet *fake, int d, float *dot,
                              bool *real_covered, int64_t *fake_inside) {
    enum { COLUMNS = 256 }; // real rows one thread marks per chunk
    *fake_inside = 0;
    memset(real_covered, 0, (size_t)real->n);
    for (int r0 = 0; r0 < fake->n; r0 += PR_BLOCK) {
        int rows = fake->n - r0 < PR_BLOCK ? fake->n - r0 : PR_BLOCK;
        block_products(fake, r0, rows, real, d, dot);
        int64_t inside = 0;
#pragma omp parallel for schedule(static) reduction(+ : inside)
        for (int i = 0; i < rows; i++) {
            const float *row = dot + (int64_t)i * real->n;
            float nf = fake->norm[r0 + i];
            bool in = false;
            for (int j = 0; j < real->n; j++) in |= row[j] + nf + real->norm[j] <= real->r2[j];
            inside += in;
        }
        *fake_inside += inside;
        int chunks = (real->n + COLUMNS - 1) / COLUMNS;
#pragma omp parallel for schedule(static)
        for (int c = 0; c < chunks; c++) {
            int j0 = c * COLUMNS, j1 = j0 + COLUMNS < real->n ? j0 + COLUMNS : real->n;
            for (int i = 0; i < rows; i++) {
                const float *row = dot + (int64_t)i * real->n;
                float nf = fake->norm[r0 + i], r2 = fake->r2[r0 + i];
                for (int j = j0; j < j1; j++)
                    real_covered[j] |= row[j] + nf + real->norm[j] <= r2;
            }
        }
    }
}

// real (n_real, d), fake (n_fake, d) -> precision, recall in [0, 1]
int precision_recall(const float *real, int64_t n_real, const float *fake, int64_t n_fake,
                     int d, int k, double *precision, double *recall, Error *err) {
    if (d < 1 || k < 1)
        return error_set(err, "precision_recall: %d features and k = %d, expected both >= 1", d,
                         k);
    if (n_real <= k || n_fake <= k || n_real > INT_MAX || n_fake > INT_MAX)
        return error_set(err, "precision_recall: %lld real and %lld fake rows with k = %d, "
                         "expected more than k rows in each (and at most %d)", (long long)n_real,
                         (long long)n_fake, k, INT_MAX);
    if (check_finite("precision_recall", "real", real, n_real, d, err) ||
        check_finite("precision_recall", "fake", fake, n_fake, d, err))
        return -1;
    int64_t widest = n_real > n_fake ? n_real : n_fake;
    double *centre = calloc((size_t)d, sizeof(double));
    float *dot = malloc((size_t)PR_BLOCK * (size_t)widest * sizeof(float));
    bool *real_covered = malloc((size_t)n_real);
    PointSet r = {0}, f = {0};
    int rc = -1;
    if (!centre || !dot || !real_covered) {
        error_set(err, "precision_recall: out of memory for %d x %lld distances", PR_BLOCK,
                  (long long)widest);
        goto done;
    }
    for (int64_t i = 0; i < n_real; i++)
        for (int j = 0; j < d; j++) centre[j] += real[i * d + j] / (double)n_real;
    if (point_set_init(&r, real, (int)n_real, d, centre, "real", err) ||
        point_set_init(&f, fake, (int)n_fake, d, centre, "fake", err))
        goto done;
    knn_radii(&r, d, k, dot);
    knn_radii(&f, d, k, dot);
    int64_t fake_inside, real_inside = 0;
    manifold_coverage(&r, &f, d, dot, real_covered, &fake_inside);
    for (int64_t i = 0; i < n_real; i++) real_inside += real_covered[i];
    *precision = (double)fake_inside / (double)n_fake;
    *recall = (double)real_inside / (double)n_real;
    rc = 0;
done:
    point_set_free(&r);
    point_set_free(&f);
    free(centre);
    free(dot);
    free(real_covered);
    return rc;
}

// ---- classifier scores -------------------------------------------------------------------

// logits (classes) -> log_p (classes) = logits - logsumexp(logits), in double
static void log_softmax_row(const float *logits, int classes, double *log_p) {
    double top = logits[0], sum = 0.0;
    for (int c = 1; c < classes; c++) top = fmax(top, logits[c]);
    for (int c = 0; c < classes; c++) sum += exp((double)logits[c] - top);
    // (x - top) - log(sum), not x - (top + log(sum)): top may be large and would round away
    // the low bits of log(sum)
    double log_sum = log(sum);
    for (int c = 0; c < classes; c++) log_p[c] = ((double)logits[c] - top) - log_sum;
}

// logits (n, classes), labels (n) -> accuracy, IS analogue, mean log p(label)
int classifier_scores(const float *logits, const int32_t *labels, int64_t n, int classes,
                      ClassifierScores *out, Error *err) {
    if (n < 1 || classes < 2)
        return error_set(err, "classifier_scores: %lld rows of %d classes, expected at least 1 "
                         "row of at least 2 classes", (long long)n, classes);
    if (check_finite("classifier_scores", "logit", logits, n, classes, err)) return -1;
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return error_set(err, "classifier_scores: label of row %lld is %d, expected 0 .. %d",
                             (long long)i, labels[i], classes - 1);
    double *log_p = malloc((size_t)classes * sizeof(double));
    double *marginal = calloc((size_t)classes, sizeof(double)); // p(y), then log p(y)
    if (!log_p || !marginal) {
        free(log_p);
        free(marginal);
        return error_set(err, "classifier_scores: out of memory for %d classes", classes);
    }
    int64_t correct = 0;
    double log_prob = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *row = logits + i * classes;
        log_softmax_row(row, classes, log_p);
        int best = 0;
        for (int c = 1; c < classes; c++) best = row[c] > row[best] ? c : best;
        correct += best == labels[i];
        log_prob += log_p[labels[i]];
        for (int c = 0; c < classes; c++) marginal[c] += exp(log_p[c]) / (double)n;
    }
    for (int c = 0; c < classes; c++) marginal[c] = log(marginal[c]);
    // KL(p_i || p(y)) term by term; p_ic log p_ic -> 0 where p_ic underflows, and p(y)_c > 0
    // wherever some p_ic > 0, so no term is 0 * inf.
    double kl = 0.0;
    for (int64_t i = 0; i < n; i++) {
        log_softmax_row(logits + i * classes, classes, log_p);
        for (int c = 0; c < classes; c++) {
            double p = exp(log_p[c]);
            if (p > 0.0) kl += p * (log_p[c] - marginal[c]);
        }
    }
    free(log_p);
    free(marginal);
    *out = (ClassifierScores){
        .accuracy = (double)correct / (double)n,
        .is_score = exp(kl / (double)n),
        .mean_log_prob = log_prob / (double)n,
    };
    return 0;
}
