// The metrics suite: every figure against a known answer.
// - FID: a set against itself is 0; Gaussians with diagonal, jointly rotated commuting, and
//   non-commuting 2 x 2 block covariances match the closed form; statistics of large samples
//   drawn from known Gaussians give the closed form within sampling error.
// - Precision/recall: a line of points worked by hand (radius semantics, self excluded),
//   clusters with a built-in overlap, and integer lattices against a brute-force count (exact
//   arithmetic, so ties and block edges must agree to the last row).
// - Classifier scores on hand-made logits, including logits that overflow a naive softmax.
// - Every input error.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmdr/metrics.h"
#include "test/test_util.h"

#define COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MAX_D 16

#define ASSERT_ERROR_HAS(err, part)                                                      \
    ck_assert_msg(strstr((err).msg, (part)) != NULL, "error \"%s\" lacks \"%s\"", (err).msg, \
                  (part))

static void assert_near(const char *what, double got, double want, double tol) {
    ck_assert_msg(fabs(got - want) <= tol, "%s: got %.12g, want %.12g (tolerance %g)", what, got,
                  want, tol);
}

static float *alloc_floats(int64_t n) {
    float *x = malloc((size_t)n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    return x;
}

// ---- Gaussians with known Frechet distance -----------------------------------------------

// Statistics given directly (no samples): mean (d), cov (d, d).
typedef struct {
    double mean[MAX_D], cov[MAX_D * MAX_D];
    FeatureStats s;
} KnownStats;

static void known_init(KnownStats *k, int d) {
    memset(k, 0, sizeof *k);
    k->s = (FeatureStats){.dim = d, .count = 0, .mean = k->mean, .cov = k->cov};
}

static double fid_of(const FeatureStats *a, const FeatureStats *b) {
    Error err;
    double fid = -1.0;
    ck_assert_msg(frechet_distance(a, b, &fid, &err) == 0, "%s", err.msg);
    return fid;
}

static double mean_distance2(const KnownStats *a, const KnownStats *b, int d) {
    double s = 0.0;
    for (int i = 0; i < d; i++) s += (a->mean[i] - b->mean[i]) * (a->mean[i] - b->mean[i]);
    return s;
}

static double trace(const double *c, int d) {
    double t = 0.0;
    for (int i = 0; i < d; i++) t += c[i * d + i];
    return t;
}

// q (d, d) a random rotation: Gram-Schmidt on a random matrix
static void random_rotation(double *q, int d, uint64_t seed) {
    float r[MAX_D * MAX_D];
    test_fill_uniform(r, d * d, seed, -1.0f, 1.0f);
    for (int i = 0; i < d; i++) {
        for (int j = 0; j < d; j++) q[i * d + j] = r[i * d + j];
        for (int p = 0; p < i; p++) {
            double dot = 0.0;
            for (int j = 0; j < d; j++) dot += q[i * d + j] * q[p * d + j];
            for (int j = 0; j < d; j++) q[i * d + j] -= dot * q[p * d + j];
        }
        double norm = 0.0;
        for (int j = 0; j < d; j++) norm += q[i * d + j] * q[i * d + j];
        for (int j = 0; j < d; j++) q[i * d + j] /= sqrt(norm);
    }
}

// c (d, d) <- q c q^T
static void rotate(double *c, const double *q, int d) {
    double t[MAX_D * MAX_D] = {0}, out[MAX_D * MAX_D] = {0};
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            for (int p = 0; p < d; p++) t[i * d + j] += q[i * d + p] * c[p * d + j];
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            for (int p = 0; p < d; p++) out[i * d + j] += t[i * d + p] * q[j * d + p];
    memcpy(c, out, sizeof(double) * (size_t)(d * d));
}

// For 2 x 2 PSD M, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); with M = C1^1/2 C2 C1^1/2,
// tr M = tr(C1 C2) and det M = det C1 det C2. a, b: the upper-left 2 x 2 of (d, d) matrices.
static double trace_sqrt_2x2(const double *a, const double *b, int d) {
    double tr = a[0] * b[0] + a[1] * b[d] + a[d] * b[1] + a[d + 1] * b[d + 1];
    double det_a = a[0] * a[d + 1] - a[1] * a[d], det_b = b[0] * b[d + 1] - b[1] * b[d];
    return sqrt(tr + 2.0 * sqrt(det_a * det_b));
}

// A random SPD 2 x 2 block at (i, i) of c (d, d): eigenvalues in [0.2, 3], random angle.
static void random_spd_block(double *c, int d, int i, uint64_t seed) {
    float u[3];
    test_fill_uniform(u, 3, seed, 0.0f, 1.0f);
    double l1 = 0.2 + 2.8 * u[0], l2 = 0.2 + 2.8 * u[1], th = 3.14159 * u[2];
    double cs = cos(th), sn = sin(th);
    c[i * d + i] = l1 * cs * cs + l2 * sn * sn;
    c[(i + 1) * d + i + 1] = l1 * sn * sn + l2 * cs * cs;
    c[i * d + i + 1] = c[(i + 1) * d + i] = (l1 - l2) * cs * sn;
}

// Two d-dimensional Gaussians with block-diagonal covariances of random 2 x 2 SPD blocks
// (which do not commute) -> the closed-form Frechet distance.
static double random_block_gaussians(KnownStats *a, KnownStats *b, int d, uint64_t seed) {
    known_init(a, d);
    known_init(b, d);
    float mu[2 * MAX_D];
    test_fill_uniform(mu, 2 * d, seed, -0.5f, 0.5f);
    double tr_sqrt = 0.0;
    for (int i = 0; i < d; i++) {
        a->mean[i] = mu[i];
        b->mean[i] = mu[d + i];
    }
    for (int i = 0; i < d; i += 2) {
        random_spd_block(a->cov, d, i, seed + 101 + (uint64_t)i);
        random_spd_block(b->cov, d, i, seed + 202 + (uint64_t)i);
        tr_sqrt += trace_sqrt_2x2(a->cov + i * d + i, b->cov + i * d + i, d);
    }
    return mean_distance2(a, b, d) + trace(a->cov, d) + trace(b->cov, d) - 2.0 * tr_sqrt;
}

START_TEST(test_fid_of_a_set_with_itself_is_zero) {
    // full rank (n > d), and rank deficient (n < d: half the eigenvalues are round-off)
    const int shapes[][2] = {{500, 24}, {10, 32}};
    for (int s = 0; s < COUNT_OF(shapes); s++) {
        int n = shapes[s][0], d = shapes[s][1];
        float *x = alloc_floats((int64_t)n * d);
        test_fill_uniform(x, (int64_t)n * d, test_seed_for("fid self") + (uint64_t)s, -1.0f,
                          3.0f);
        for (int i = 0; i < n; i++) x[i * d + 1] += 2.0f * x[i * d]; // correlated columns
        FeatureStats st;
        Error err;
        ck_assert_msg(feature_stats_compute(x, n, d, &st, &err) == 0, "%s", err.msg);
        double fid = fid_of(&st, &st), scale = trace(st.cov, d);
        ck_assert_msg(fid >= 0.0 && fid <= 1e-9 * scale, "n %d d %d: fid %g, tr C %g", n, d, fid,
                      scale);
        feature_stats_free(&st);
        free(x);
    }
}
END_TEST

START_TEST(test_fid_diagonal_covariances) {
    const int d = 6;
    KnownStats a, b;
    known_init(&a, d);
    known_init(&b, d);
    const double va[] = {1, 4, 0.25, 2, 9, 0}, vb[] = {4, 1, 1, 2, 0.01, 3};
    double want = 0.0;
    for (int i = 0; i < d; i++) {
        a.mean[i] = i;
        b.mean[i] = 0.5 * i - 1.0;
        a.cov[i * d + i] = va[i];
        b.cov[i * d + i] = vb[i];
        want += (a.mean[i] - b.mean[i]) * (a.mean[i] - b.mean[i]) +
                (sqrt(va[i]) - sqrt(vb[i])) * (sqrt(va[i]) - sqrt(vb[i]));
    }
    assert_near("diagonal", fid_of(&a.s, &b.s), want, 1e-10 * want);
    assert_near("diagonal, swapped", fid_of(&b.s, &a.s), want, 1e-10 * want);
}
END_TEST

// C1 = Q diag(a) Q^T and C2 = Q diag(b) Q^T commute: tr sqrt = sum sqrt(a_i b_i), so the
// distance is |mu1 - mu2|^2 + sum (sqrt a_i - sqrt b_i)^2 whatever the rotation Q.
START_TEST(test_fid_commuting_covariances) {
    const int d = 12;
    uint64_t seed = test_seed_for("fid commuting");
    KnownStats a, b;
    known_init(&a, d);
    known_init(&b, d);
    float v[2 * MAX_D];
    test_fill_uniform(v, 2 * d, seed, 0.05f, 5.0f);
    double q[MAX_D * MAX_D], want = 0.0;
    for (int i = 0; i < d; i++) {
        a.cov[i * d + i] = v[i];
        b.cov[i * d + i] = v[d + i];
        a.mean[i] = 0.1 * i;
        want += 0.01 * i * i + (sqrt(v[i]) - sqrt(v[d + i])) * (sqrt(v[i]) - sqrt(v[d + i]));
    }
    random_rotation(q, d, seed + 1);
    rotate(a.cov, q, d);
    rotate(b.cov, q, d);
    assert_near("rotated diagonal", fid_of(&a.s, &b.s), want, 1e-9 * want);
}
END_TEST

START_TEST(test_fid_non_commuting_by_hand) {
    // C1 = [[2, 1], [1, 2]], C2 = diag(1, 4): tr(C1 C2) = 10, det C1 det C2 = 12, so
    // tr sqrt(C1^1/2 C2 C1^1/2) = sqrt(10 + 2 sqrt 12); |mu1 - mu2|^2 = 1 + 4.
    KnownStats a, b;
    known_init(&a, 2);
    known_init(&b, 2);
    a.cov[0] = a.cov[3] = 2.0;
    a.cov[1] = a.cov[2] = 1.0;
    b.cov[0] = 1.0;
    b.cov[3] = 4.0;
    b.mean[0] = 1.0;
    b.mean[1] = -2.0;
    double want = 5.0 + 4.0 + 5.0 - 2.0 * sqrt(10.0 + 2.0 * sqrt(12.0));
    assert_near("2x2", fid_of(&a.s, &b.s), want, 1e-12);
    assert_near("2x2, swapped", fid_of(&b.s, &a.s), want, 1e-12);
}
END_TEST

// Non-commuting 2 x 2 blocks, then the same rotation of both covariances (which leaves the
// distance unchanged) so that no block structure is left for the code to lean on.
START_TEST(test_fid_non_commuting_rotated) {
    const int d = 10;
    uint64_t seed = test_seed_for("fid blocks");
    KnownStats a, b;
    double want = random_block_gaussians(&a, &b, d, seed), q[MAX_D * MAX_D];
    random_rotation(q, d, seed + 7);
    rotate(a.cov, q, d);
    rotate(b.cov, q, d);
    assert_near("rotated blocks", fid_of(&a.s, &b.s), want, 1e-9 * (1.0 + want));
}
END_TEST

// (n, d) rows of N(mean, cov) for block-diagonal cov of 2 x 2 blocks (Cholesky by hand)
static float *sample_gaussian(const KnownStats *g, int64_t n, int d, uint64_t seed) {
    float *u = alloc_floats(n * d), *x = alloc_floats(n * d);
    test_fill_uniform(u, n * d, seed, 1e-7f, 1.0f);
    for (int64_t i = 0; i < n; i++) {
        const float *ui = u + i * d;
        float *xi = x + i * d;
        for (int j = 0; j < d; j += 2) {
            double r = sqrt(-2.0 * log(ui[j])), z0 = r * cos(6.283185307179586 * ui[j + 1]),
                   z1 = r * sin(6.283185307179586 * ui[j + 1]);
            double c00 = g->cov[j * d + j], c01 = g->cov[j * d + j + 1],
                   c11 = g->cov[(j + 1) * d + j + 1];
            double l00 = sqrt(c00), l10 = c01 / l00, l11 = sqrt(c11 - l10 * l10);
            xi[j] = (float)(g->mean[j] + l00 * z0);
            xi[j + 1] = (float)(g->mean[j + 1] + l10 * z0 + l11 * z1);
        }
    }
    free(u);
    return x;
}

// Sample statistics converge to the closed form: with n = 50000 rows per set in d = 4 the
// estimate's error has standard deviation 0.016 and mean -0.003 (measured over 200 seeds),
// so 0.1 is six deviations.
START_TEST(test_fid_of_samples_approaches_closed_form) {
    const int d = 4;
    const int64_t n = 50000;
    uint64_t seed = test_seed_for("fid samples");
    KnownStats a, b;
    double want = random_block_gaussians(&a, &b, d, seed);
    float *xa = sample_gaussian(&a, n, d, seed + 1), *xb = sample_gaussian(&b, n, d, seed + 2);
    FeatureStats sa, sb;
    Error err;
    ck_assert_msg(feature_stats_compute(xa, n, d, &sa, &err) == 0, "%s", err.msg);
    ck_assert_msg(feature_stats_compute(xb, n, d, &sb, &err) == 0, "%s", err.msg);
    assert_near("sampled", fid_of(&sa, &sb), want, 0.1);
    feature_stats_free(&sa);
    feature_stats_free(&sb);
    free(xa);
    free(xb);
}
END_TEST

// Mean and the n - 1 covariance against a plain double loop, over several DSYRK chunks and
// with a large common offset (which a one-pass formula would cancel away).
START_TEST(test_feature_stats_match_plain_loop) {
    const int d = 5;
    const int64_t n = 9000;
    float *x = alloc_floats(n * d);
    test_fill_uniform(x, n * d, test_seed_for("stats"), 999.0f, 1001.0f);
    for (int64_t i = 0; i < n; i++) x[i * d + 2] = 0.5f * x[i * d] - 0.25f * x[i * d + 4];
    FeatureStats st;
    Error err;
    ck_assert_msg(feature_stats_compute(x, n, d, &st, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(st.dim, d);
    ck_assert_int_eq(st.count, n);
    double mean[5] = {0};
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) mean[j] += x[i * d + j];
    for (int j = 0; j < d; j++) {
        mean[j] /= (double)n;
        assert_near("mean", st.mean[j], mean[j], 1e-9);
    }
    for (int p = 0; p < d; p++)
        for (int q = 0; q < d; q++) {
            double c = 0.0;
            for (int64_t i = 0; i < n; i++)
                c += (x[i * d + p] - mean[p]) * (x[i * d + q] - mean[q]);
            c /= (double)(n - 1);
            assert_near("covariance", st.cov[p * d + q], c, 1e-9);
            ck_assert(st.cov[p * d + q] == st.cov[q * d + p]);
        }
    feature_stats_free(&st);
    free(x);
}
END_TEST

START_TEST(test_fid_errors) {
    Error err;
    FeatureStats st;
    float x[12] = {0};
    ck_assert_int_eq(feature_stats_compute(x, 1, 4, &st, &err), -1);
    ASSERT_ERROR_HAS(err, "at least 2 rows");
    ck_assert_ptr_null(st.mean);
    feature_stats_free(&st); // safe after a failure
    x[7] = NAN;
    ck_assert_int_eq(feature_stats_compute(x, 3, 4, &st, &err), -1);
    ASSERT_ERROR_HAS(err, "feature row 1 column 3");
    x[7] = INFINITY;
    ck_assert_int_eq(feature_stats_compute(x, 3, 4, &st, &err), -1);
    ASSERT_ERROR_HAS(err, "is inf");

    KnownStats a, b;
    known_init(&a, 3);
    known_init(&b, 2);
    double fid = 0.0;
    ck_assert_int_eq(frechet_distance(&a.s, &b.s, &fid, &err), -1);
    ASSERT_ERROR_HAS(err, "3 and 2 features");
    known_init(&b, 3);
    b.cov[4] = NAN;
    ck_assert_int_eq(frechet_distance(&a.s, &b.s, &fid, &err), -1);
    ASSERT_ERROR_HAS(err, "second covariance");
    b.cov[4] = 1.0;
    a.mean[2] = -INFINITY;
    ck_assert_int_eq(frechet_distance(&a.s, &b.s, &fid, &err), -1);
    ASSERT_ERROR_HAS(err, "first mean");
}
END_TEST

// ---- precision and recall ----------------------------------------------------------------

static void pr_of(const float *real, int64_t n_real, const float *fake, int64_t n_fake, int d,
                  int k, double *precision, double *recall) {
    Error err;
    ck_assert_msg(precision_recall(real, n_real, fake, n_fake, d, k, precision, recall, &err) ==
                      0,
                  "%s", err.msg);
}

// Real points at x = 0 .. 9 on a line (d = 2). With k = 1 every radius is 1; with k = 3 the
// interior radii are 2 (neighbours at 1, 1, 2), the ends' 3 (1, 2, 3). Fakes at stated
// distances fall inside or outside by at least 0.05.
START_TEST(test_precision_by_hand_on_a_line) {
    float real[20] = {0};
    for (int i = 0; i < 10; i++) real[2 * i] = (float)i;
    // k = 1: inside at 0.5 and 0.9 from a point; outside at 1.07 ((4.5, 0.95) is
    // sqrt(0.25 + 0.9025) from 4 and from 5) and at 1.9 beyond the end.
    const float fake1[] = {3.5f, 0.0f, 9.9f, 0.0f, 4.5f, 0.95f, 10.9f, 0.0f};
    // k = 3: -2.5 is inside the end's radius 3 (it would be outside had self counted as a
    // neighbour, making that radius 2); 12.1 and 12.2 are outside (3.1 and 3.2 from 9);
    // (4.5, 1.9) is inside (1.96 from 4 and 5, radius 2), (4.5, 2.0) outside (2.06).
    const float fake3[] = {-2.5f, 0.0f, 12.1f, 0.0f, 4.5f, 1.9f, 4.5f, 2.0f, 12.2f, 0.0f};
    double precision, recall;
    pr_of(real, 10, fake1, 4, 2, 1, &precision, &recall);
    assert_near("k = 1 precision", precision, 0.5, 0.0);
    pr_of(real, 10, fake3, 5, 2, 3, &precision, &recall);
    assert_near("k = 3 precision", precision, 0.4, 0.0);
    // Recall with k = 3: the fake at -2.5 has radius 14.6 (its 3rd nearest fake is 12.1),
    // which covers every real point.
    assert_near("k = 3 recall", recall, 1.0, 0.0);
}
END_TEST

// Real: 300 points in cluster A and 200 in cluster B; fake: copies of those 200 and 100 in a
// cluster C. Clusters are unit cubes 100 apart, so balls (radius ~1) never reach another
// cluster, and a copy sits at distance 0 from its original: precision = 200 / 300 and
// recall = 200 / 500 exactly. All points share an offset of 10^5: there |a|^2 ~ 1.6e11, and
// unless the code centres the sets first, |a|^2 + |b|^2 - 2ab in float swamps even the
// 100^2 between clusters.
START_TEST(test_precision_recall_known_overlap) {
    const int d = 16, na = 300, nb = 200, nc = 100;
    uint64_t seed = test_seed_for("pr clusters");
    float *real = alloc_floats((na + nb) * d), *fake = alloc_floats((nb + nc) * d);
    test_fill_uniform(real, (int64_t)(na + nb) * d, seed, 0.0f, 1.0f);
    test_fill_uniform(fake + nb * d, (int64_t)nc * d, seed + 1, 0.0f, 1.0f);
    for (int i = 0; i < na + nb; i++) {
        real[i * d] += 1e5f + (i < na ? 0.0f : 100.0f);
        for (int j = 1; j < d; j++) real[i * d + j] += 1e5f;
    }
    memcpy(fake, real + na * d, sizeof(float) * (size_t)(nb * d));
    for (int i = nb; i < nb + nc; i++) {
        fake[i * d] += 1e5f + 200.0f;
        for (int j = 1; j < d; j++) fake[i * d + j] += 1e5f;
    }
    double precision, recall;
    pr_of(real, na + nb, fake, nb + nc, d, 3, &precision, &recall);
    assert_near("precision", precision, 200.0 / 300.0, 0.0);
    assert_near("recall", recall, 200.0 / 500.0, 0.0);
    free(real);
    free(fake);
}
END_TEST

// Integer points: every distance is exact in float arithmetic, so the blocked GEMM version
// must agree with a brute-force count to the last row, ties (<=) included. The real set is
// symmetric (each x next to -x) so its mean, the centre the code subtracts, is exactly 0.
static const int lattice_ks[] = {1, 3, 7, 20}; // 20: beyond SMALL_K in metrics.c

static int64_t dist2_int(const float *a, const float *b, int d) {
    int64_t s = 0;
    for (int j = 0; j < d; j++) s += (int64_t)((a[j] - b[j]) * (a[j] - b[j]));
    return s;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// radius2 (n) = squared distance of each row of x (n, d) to its k-th nearest other row
static void brute_radii(const float *x, int n, int d, int k, int64_t *radius2) {
    int64_t *row = malloc((size_t)n * sizeof *row);
    ck_assert_ptr_nonnull(row);
    for (int i = 0; i < n; i++) {
        int m = 0;
        for (int j = 0; j < n; j++)
            if (j != i) row[m++] = dist2_int(x + i * d, x + j * d, d);
        qsort(row, (size_t)m, sizeof *row, cmp_i64);
        radius2[i] = row[k - 1];
    }
    free(row);
}

// fraction of rows of x inside some ball of y (centres y, squared radii r2)
static double brute_coverage(const float *x, int nx, const float *y, int ny,
                             const int64_t *r2, int d) {
    int inside = 0;
    for (int i = 0; i < nx; i++) {
        bool in = false;
        for (int j = 0; j < ny && !in; j++) in = dist2_int(x + i * d, y + j * d, d) <= r2[j];
        inside += in;
    }
    return (double)inside / nx;
}

START_TEST(test_precision_recall_match_brute_force) {
    const int d = 6, n_real = 600, n_fake = 557, k = lattice_ks[_i];
    uint64_t seed = test_seed_for("pr lattice") + (uint64_t)_i;
    int32_t *ints = malloc(sizeof(int32_t) * (size_t)((n_real + n_fake) * d));
    float *real = alloc_floats(n_real * d), *fake = alloc_floats(n_fake * d);
    ck_assert_ptr_nonnull(ints);
    test_fill_ints(ints, (n_real + n_fake) * d, seed, 5);
    for (int i = 0; i < n_real / 2; i++)
        for (int j = 0; j < d; j++) {
            real[2 * i * d + j] = (float)(ints[i * d + j] - 2);
            real[(2 * i + 1) * d + j] = -real[2 * i * d + j];
        }
    for (int i = 0; i < n_fake * d; i++) fake[i] = (float)(ints[n_real * d + i] - 2);
    int64_t *rr = malloc(sizeof(int64_t) * n_real), *rf = malloc(sizeof(int64_t) * n_fake);
    ck_assert(rr && rf);
    brute_radii(real, n_real, d, k, rr);
    brute_radii(fake, n_fake, d, k, rf);
    double precision, recall;
    pr_of(real, n_real, fake, n_fake, d, k, &precision, &recall);
    assert_near("precision", precision, brute_coverage(fake, n_fake, real, n_real, rr, d), 0.0);
    assert_near("recall", recall, brute_coverage(real, n_real, fake, n_fake, rf, d), 0.0);
    free(ints);
    free(real);
    free(fake);
    free(rr);
    free(rf);
}
END_TEST

START_TEST(test_precision_recall_errors) {
    float real[8] = {0}, fake[8] = {0};
    double p, r;
    Error err;
    ck_assert_int_eq(precision_recall(real, 4, fake, 4, 2, 4, &p, &r, &err), -1);
    ASSERT_ERROR_HAS(err, "more than k rows");
    ck_assert_int_eq(precision_recall(real, 4, fake, 3, 2, 3, &p, &r, &err), -1);
    ASSERT_ERROR_HAS(err, "3 fake rows");
    ck_assert_int_eq(precision_recall(real, 4, fake, 4, 2, 0, &p, &r, &err), -1);
    ASSERT_ERROR_HAS(err, "k = 0");
    ck_assert_int_eq(precision_recall(real, 4, fake, 4, 0, 1, &p, &r, &err), -1);
    ASSERT_ERROR_HAS(err, "0 features");
    fake[5] = NAN;
    ck_assert_int_eq(precision_recall(real, 4, fake, 4, 2, 1, &p, &r, &err), -1);
    ASSERT_ERROR_HAS(err, "fake row 2 column 1 is nan");
    fake[5] = 0.0f;
    real[0] = -INFINITY;
    ck_assert_int_eq(precision_recall(real, 4, fake, 4, 2, 1, &p, &r, &err), -1);
    ASSERT_ERROR_HAS(err, "real row 0 column 0");
    real[0] = 3e19f; // finite, but its square overflows float
    ck_assert_int_eq(precision_recall(real, 4, fake, 4, 2, 1, &p, &r, &err), -1);
    ASSERT_ERROR_HAS(err, "real row 0 has squared norm");
}
END_TEST

// ---- classifier scores -------------------------------------------------------------------

static ClassifierScores scores_of(const float *logits, const int32_t *labels, int64_t n,
                                  int classes) {
    ClassifierScores s;
    Error err;
    ck_assert_msg(classifier_scores(logits, labels, n, classes, &s, &err) == 0, "%s", err.msg);
    return s;
}

// Two classes, logits (log 3, 0) -> p = (3/4, 1/4), and the mirror row (0, log 3). p(y) is
// uniform, so IS = exp(3/4 log(3/2) + 1/4 log(1/2)) for every row.
START_TEST(test_scores_by_hand) {
    const float l3 = (float)log(3.0);
    const float logits[] = {l3, 0.0f, 0.0f, l3, l3, 0.0f, 0.0f, l3};
    const int32_t labels[] = {0, 1, 1, 1}; // the third row is wrong
    ClassifierScores s = scores_of(logits, labels, 4, 2);
    assert_near("accuracy", s.accuracy, 0.75, 0.0);
    assert_near("IS", s.is_score, exp(0.75 * log(1.5) + 0.25 * log(0.5)), 1e-7);
    assert_near("mean log prob", s.mean_log_prob, (3.0 * log(0.75) + log(0.25)) / 4.0, 1e-7);
}
END_TEST

// Confident predictions: IS = the number of classes used evenly, 1 when all agree or when
// every prediction is uniform.
START_TEST(test_is_confident_and_uniform) {
    enum { N = 100, C = 10 };
    static float logits[N * C];
    int32_t labels[N];
    for (int i = 0; i < N; i++) {
        labels[i] = i % C;
        for (int c = 0; c < C; c++) logits[i * C + c] = c == labels[i] ? 30.0f : -30.0f;
    }
    ClassifierScores s = scores_of(logits, labels, N, C);
    assert_near("accuracy", s.accuracy, 1.0, 0.0);
    assert_near("IS, ten classes", s.is_score, 10.0, 1e-9);
    assert_near("mean log prob", s.mean_log_prob, 0.0, 1e-9);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) logits[i * C + c] = c == 3 ? 30.0f : -30.0f;
    s = scores_of(logits, labels, N, C);
    assert_near("IS, one class", s.is_score, 1.0, 1e-12);
    assert_near("accuracy, one class", s.accuracy, 0.1, 0.0);
    memset(logits, 0, sizeof logits);
    s = scores_of(logits, labels, N, C);
    assert_near("IS, uniform", s.is_score, 1.0, 1e-12);
    assert_near("mean log prob, uniform", s.mean_log_prob, -log(10.0), 1e-12);
}
END_TEST

// Logits whose exponentials overflow double: log-sum-exp keeps every score exact.
START_TEST(test_scores_are_stable) {
    const float logits[] = {1000.0f, 0.0f, 0.0f, 1000.0f};
    const int32_t labels[] = {1, 1};
    ClassifierScores s = scores_of(logits, labels, 2, 2);
    assert_near("mean log prob", s.mean_log_prob, -500.0, 0.0);
    assert_near("IS", s.is_score, 2.0, 1e-12);
    assert_near("accuracy", s.accuracy, 0.5, 0.0);
    // no row gives class 1 any probability, so p(y = 1) = 0 too: IS = 1, no 0 * log 0 NaN
    const float one_class[] = {1000.0f, 0.0f, 1000.0f, 0.0f};
    s = scores_of(one_class, labels, 2, 2);
    assert_near("IS, one class", s.is_score, 1.0, 0.0);
    // a shift of every logit by 2^20 (exact in float) changes nothing
    float shifted[8];
    const float base[8] = {1, 2, 3, 0, 5, -1, 2, 2};
    const int32_t labels4[] = {2, 0, 1, 3};
    for (int i = 0; i < 8; i++) shifted[i] = base[i] + 1048576.0f;
    ClassifierScores a = scores_of(base, labels4, 2, 4), b = scores_of(shifted, labels4, 2, 4);
    assert_near("shifted IS", b.is_score, a.is_score, 1e-12);
    assert_near("shifted log prob", b.mean_log_prob, a.mean_log_prob, 1e-12);
}
END_TEST

START_TEST(test_scores_errors) {
    float logits[6] = {0};
    int32_t labels[3] = {0, 1, 2};
    ClassifierScores s;
    Error err;
    ck_assert_int_eq(classifier_scores(logits, labels, 3, 2, &s, &err), -1);
    ASSERT_ERROR_HAS(err, "label of row 2 is 2, expected 0 .. 1");
    labels[2] = -1;
    ck_assert_int_eq(classifier_scores(logits, labels, 3, 2, &s, &err), -1);
    ASSERT_ERROR_HAS(err, "row 2 is -1");
    labels[2] = 0;
    logits[3] = NAN;
    ck_assert_int_eq(classifier_scores(logits, labels, 3, 2, &s, &err), -1);
    ASSERT_ERROR_HAS(err, "logit row 1 column 1 is nan");
    ck_assert_int_eq(classifier_scores(logits, labels, 0, 2, &s, &err), -1);
    ASSERT_ERROR_HAS(err, "at least 1 row");
    ck_assert_int_eq(classifier_scores(logits, labels, 3, 1, &s, &err), -1);
    ASSERT_ERROR_HAS(err, "at least 2 classes");
}
END_TEST

static Suite *metrics_suite(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("fid");
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_fid_of_a_set_with_itself_is_zero);
    tcase_add_test(tc, test_fid_diagonal_covariances);
    tcase_add_test(tc, test_fid_commuting_covariances);
    tcase_add_test(tc, test_fid_non_commuting_by_hand);
    tcase_add_test(tc, test_fid_non_commuting_rotated);
    tcase_add_test(tc, test_fid_of_samples_approaches_closed_form);
    tcase_add_test(tc, test_feature_stats_match_plain_loop);
    tcase_add_test(tc, test_fid_errors);

    tc = tcase_create("precision_recall");
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_precision_by_hand_on_a_line);
    tcase_add_test(tc, test_precision_recall_known_overlap);
    tcase_add_loop_test(tc, test_precision_recall_match_brute_force, 0, COUNT_OF(lattice_ks));
    tcase_add_test(tc, test_precision_recall_errors);

    tc = tcase_create("classifier");
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_scores_by_hand);
    tcase_add_test(tc, test_is_confident_and_uniform);
    tcase_add_test(tc, test_scores_are_stable);
    tcase_add_test(tc, test_scores_errors);
    return s;
}

int main(void) {
    return test_run_suite(metrics_suite());
}
