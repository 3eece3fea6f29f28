// The diffusion check suite: the rectified-flow pieces (time sampling, interpolation, label
// dropout, the teacher loss against a hand computation) and the samplers (time grid, Euler and
// Heun against analytic flows whose exact ODE solution is known, guidance, NFE, chunking,
// memory), and finally the toy2d teacher end to end: trained in seconds and sampled with 50
// Euler steps, its conditional samples must have each mixture component's mean and covariance,
// and its unconditional ones cover every component.
//
// The samplers are checked on analytic velocity fields computed on the host: for Gaussian data
// N(mu, sigma^2) (per dimension) the optimal velocity is known in closed form and its ODE maps
// noise z to exactly mu + sigma z, so every sample has an exact target.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "diffusion/flow.h"
#include "diffusion/sampler.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "test/test_util.h"
#include "test/toy_fixture.h"
#include "tools/data/dataset.h"

#define COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define NUM_CLASSES 3 // of the host fields; NUM_CLASSES is their null label
#define MAX_DIM 4
#define MAX_CALLS 256

// ---- analytic velocity fields on the host ----------------------------------------------------

typedef struct HostField HostField;
// one sample's velocity: x (dim) at time t with label -> v (dim)
typedef void (*RowFn)(const HostField *h, const float *x, float t, int label, float *v);

struct HostField {
    RowFn row;
    int64_t dim;               // values per sample
    double mu[MAX_DIM];        // data mean (Gaussian, point mass)
    double sigma[MAX_DIM];     // data standard deviation (Gaussian)
    double offset[NUM_CLASSES + 1]; // class field: v = x + offset[label]
    // what the sampler asked for
    int calls;
    int64_t rows, max_rows, null_rows;
    float times[MAX_CALLS]; // the time of each call (one per call: all its rows share it)
    float *last_x;          // the rows and labels of the latest call
    int32_t *last_y;
    int64_t last_n;
};

// Data N(mu, sigma^2): with a = 1 - t, x_t ~ N(a mu, a^2 sigma^2 + t^2), and
// E[eps - x0 | x_t] = (t - a sigma^2) / (a^2 sigma^2 + t^2) (x_t - a mu) - mu.
// Along its ODE x_t = a mu + sqrt(a^2 sigma^2 + t^2) z, so x_1 = z ends at mu + sigma z.
static void gaussian_row(const HostField *h, const float *x, float t, int label, float *v) {
    (void)label;
    for (int64_t j = 0; j < h->dim; j++) {
        double a = 1.0 - t, s2 = h->sigma[j] * h->sigma[j];
        v[j] = (float)((t - a * s2) / (a * a * s2 + (double)t * t) * (x[j] - a * h->mu[j]) -
                       h->mu[j]);
    }
}

// Data at the single point mu (sigma -> 0): x_t = a mu + t z is a straight line, the velocity
// z - mu is constant along it, and one Euler step is exact.
static void point_row(const HostField *h, const float *x, float t, int label, float *v) {
    (void)label;
    for (int64_t j = 0; j < h->dim; j++)
        v[j] = (float)((x[j] - (1.0 - t) * h->mu[j]) / t - h->mu[j]);
}

// v = x + offset[label]: easy to follow by hand through guidance
static void class_row(const HostField *h, const float *x, float t, int label, float *v) {
    (void)t;
    for (int64_t j = 0; j < h->dim; j++) v[j] = (float)(x[j] + h->offset[label]);
}

// x (N, dim...), t (N), y (N) -> v shaped like x
static Tensor *host_forward(void *self, Tensor *x, Tensor *t, Tensor *y) {
    HostField *h = self;
    int64_t n = x->shape.dim[0];
    ck_assert_int_eq(tensor_numel(x), n * h->dim);
    ck_assert_int_eq(tensor_numel(t), n);
    ck_assert_int_eq(tensor_numel(y), n);
    ck_assert(y->dtype == DTYPE_I32);
    float *xs = malloc((size_t)(n * h->dim) * sizeof *xs), *ts = malloc((size_t)n * sizeof *ts);
    float *vs = malloc((size_t)(n * h->dim) * sizeof *vs);
    int32_t *ys = malloc((size_t)n * sizeof *ys);
    ck_assert(xs && ts && vs && ys);
    tensor_read(x, xs);
    tensor_read(t, ts);
    tensor_read(y, ys);
    ck_assert_int_lt(h->calls, MAX_CALLS);
    h->times[h->calls++] = ts[0];
    h->rows += n;
    if (n > h->max_rows) h->max_rows = n;
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(ts[i] == ts[0], "one call, one time: %g and %g", ts[i], ts[0]);
        ck_assert(ys[i] >= 0 && ys[i] <= NUM_CLASSES);
        h->null_rows += ys[i] == NUM_CLASSES;
        h->row(h, &xs[i * h->dim], ts[i], ys[i], &vs[i * h->dim]);
    }
    free(h->last_x);
    free(h->last_y);
    h->last_x = xs, h->last_y = ys, h->last_n = n;
    Tensor *v = tensor_from_floats(x->shape, vs, x->device);
    free(ts);
    free(vs);
    return v;
}

static HostField host_field(RowFn row, int64_t dim) {
    HostField h;
    memset(&h, 0, sizeof h);
    h.row = row;
    h.dim = dim;
    return h;
}

static VelocityField field_of(HostField *h) {
    VelocityField f = {host_forward, h, NUM_CLASSES};
    return f;
}

static void host_field_free(HostField *h) {
    free(h->last_x);
    free(h->last_y);
}

// ---- small helpers -------------------------------------------------------------------------

static SamplerOptions options(SamplerMethod method, int steps, float cfg, float shift) {
    SamplerOptions o = sampler_defaults();
    o.method = method, o.steps = steps, o.cfg_scale = cfg, o.shift = shift;
    return o;
}

// (n, dim) standard normal noise from the test's stream `label`
static Tensor *noise_for(const char *label, int64_t n, int64_t dim) {
    Rng rng = rng_make(test_seed_for(label));
    return tensor_normal(shape2(n, dim), &rng, 0.0f, 1.0f, DEVICE_CPU);
}

static Tensor *labels_for(const char *label, int64_t n, int32_t below) {
    int32_t *y = malloc((size_t)n * sizeof *y);
    ck_assert(y != NULL);
    test_fill_ints(y, n, test_seed_for(label), below);
    Tensor *t = tensor_from_ints(shape1(n), y, DEVICE_CPU);
    free(y);
    return t;
}

// max over samples of |sample - (mu + sigma z)|: the distance from the exact ODE solution
static double gaussian_error(const HostField *h, const Tensor *noise, const Tensor *sample) {
    float *z = toy_host_copy(noise), *x = toy_host_copy(sample);
    double worst = 0.0;
    for (int64_t i = 0; i < tensor_numel(noise); i++) {
        int64_t j = i % h->dim;
        double e = fabs(x[i] - (h->mu[j] + h->sigma[j] * z[i]));
        if (!(e <= worst)) worst = e; // NaN propagates as the worst
    }
    free(z);
    free(x);
    return worst;
}

// mu = (1, -0.5), sigma = (0.5, 2): a narrow and a wide dimension, both curved flows
static HostField gaussian_field(void) {
    HostField h = host_field(gaussian_row, 2);
    h.mu[0] = 1.0, h.mu[1] = -0.5;
    h.sigma[0] = 0.5, h.sigma[1] = 2.0;
    return h;
}

// E[g(mean + std Z)], Z ~ N(0, 1), by the trapezoid rule over +-12 standard deviations
static double normal_expectation(double (*g)(double), double mean, double std) {
    const int n = 24000;
    double sum = 0.0, h = 24.0 / n;
    for (int i = 0; i <= n; i++) {
        double z = -12.0 + i * h, w = (i == 0 || i == n) ? 0.5 : 1.0;
        sum += w * g(mean + std * z) * exp(-0.5 * z * z);
    }
    return sum * h / sqrt(2.0 * M_PI);
}
static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double sigmoid_sq(double x) { return sigmoid(x) * sigmoid(x); }

// mean and variance of t (n) read to the host; every value must lie in (0, 1]
static void time_moments(const Tensor *t, double *mean, double *var) {
    float *v = toy_host_copy(t);
    int64_t n = tensor_numel(t);
    double s = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(v[i] > 0.0f && v[i] <= 1.0f, "t[%lld] = %g outside (0, 1]", (long long)i,
                      v[i]);
        s += v[i], s2 += (double)v[i] * v[i];
    }
    free(v);
    *mean = s / n;
    *var = s2 / n - *mean * *mean;
}

// ---- time grid ---------------------------------------------------------------------------------

START_TEST(test_time_shift_formula) {
    float u[5];
    test_fill_uniform(u, 5, test_seed_for("time_shift"), 0.0f, 1.0f);
    for (int i = 0; i < 5; i++) {
        ck_assert_float_eq_tol(time_shift(u[i], 1.0f), u[i], 1e-7f); // identity
        double want = 3.0 * u[i] / (1.0 + 2.0 * u[i]);
        ck_assert_float_eq_tol(time_shift(u[i], 3.0f), (float)want, 1e-6f);
        ck_assert(time_shift(u[i], 3.0f) >= u[i]); // the shift spends more steps at high noise
    }
    ck_assert_float_eq_tol(time_shift(0.5f, 3.0f), 0.75f, 1e-7f);
    ck_assert_float_eq(time_shift(0.0f, 3.0f), 0.0f);
}
END_TEST

START_TEST(test_time_grid) {
    const float shifts[] = {1.0f, 3.0f, 3.3f, 7.1f};
    const int steps[] = {1, 7, 50};
    float grid[51];
    for (int s = 0; s < COUNT_OF(shifts); s++)
        for (int k = 0; k < COUNT_OF(steps); k++) {
            int n = steps[k];
            sampler_time_grid(n, shifts[s], grid);
            ck_assert_msg(grid[0] == 1.0f && grid[n] == 0.0f, "shift %g, %d steps: ends %g, %g",
                          shifts[s], n, grid[0], grid[n]);
            for (int i = 1; i <= n; i++) {
                ck_assert_msg(grid[i] < grid[i - 1], "grid not decreasing at %d", i);
                float u = 1.0f - (float)i / (float)n;
                ck_assert_float_eq_tol(grid[i], time_shift(u, shifts[s]), 1e-6f);
            }
        }
    sampler_time_grid(4, 1.0f, grid);
    const float uniform[] = {1.0f, 0.75f, 0.5f, 0.25f, 0.0f};
    ASSERT_CLOSE("uniform grid", grid, uniform, 5, 1e-7, 0.0);
}
END_TEST

// ---- time sampling, interpolation, label dropout ----------------------------------------------

// Logit-normal t = sigmoid(N(mean, std^2)): its moments against quadrature (0.5 for N(0, 1)).
START_TEST(test_logit_normal_moments) {
    const float params[][2] = {{0.0f, 1.0f}, {0.4f, 0.7f}};
    const int64_t n = 200000;
    for (int c = 0; c < COUNT_OF(params); c++) {
        tensor_scope_begin();
        Rng rng = rng_make(test_seed_for("logit_normal") + (uint64_t)c);
        Tensor *t = flow_sample_time(n, FLOW_TIME_LOGIT_NORMAL, params[c][0], params[c][1], &rng,
                                     DEVICE_CPU);
        double mean, var;
        time_moments(t, &mean, &var);
        double want_mean = normal_expectation(sigmoid, params[c][0], params[c][1]);
        double want_var = normal_expectation(sigmoid_sq, params[c][0], params[c][1]) -
                          want_mean * want_mean;
        if (c == 0) ck_assert(fabs(want_mean - 0.5) < 1e-9);
        // 5 standard errors: sd(t) < 0.25, so se(mean) < 0.25 / sqrt(n), se(var) < 0.06 / sqrt(n)
        ck_assert_msg(fabs(mean - want_mean) < 5 * 0.25 / sqrt((double)n),
                      "logit-normal(%g, %g) mean %g, want %g", params[c][0], params[c][1], mean,
                      want_mean);
        ck_assert_msg(fabs(var - want_var) < 5 * 0.06 / sqrt((double)n),
                      "logit-normal(%g, %g) variance %g, want %g", params[c][0], params[c][1],
                      var, want_var);
        tensor_scope_end();
    }
}
END_TEST

START_TEST(test_uniform_time_moments) {
    const int64_t n = 200000;
    Rng rng = rng_make(test_seed_for("uniform_time"));
    Tensor *t = flow_sample_time(n, FLOW_TIME_UNIFORM, 0.0f, 1.0f, &rng, DEVICE_CPU);
    double mean, var;
    time_moments(t, &mean, &var);
    ck_assert_msg(fabs(mean - 0.5) < 5 * 0.29 / sqrt((double)n), "uniform mean %g", mean);
    ck_assert_msg(fabs(var - 1.0 / 12.0) < 5 * 0.075 / sqrt((double)n), "uniform variance %g", var);
}
END_TEST

START_TEST(test_time_dist_names) {
    FlowTimeDist d;
    Error err = {""};
    ck_assert_int_eq(flow_time_dist_parse("uniform", &d, &err), 0);
    ck_assert_int_eq(d, FLOW_TIME_UNIFORM);
    ck_assert_int_eq(flow_time_dist_parse(flow_time_dist_name(FLOW_TIME_LOGIT_NORMAL), &d, &err), 0);
    ck_assert_int_eq(d, FLOW_TIME_LOGIT_NORMAL);
    ck_assert_int_eq(flow_time_dist_parse("lognormal", &d, &err), -1);
    ck_assert_msg(strstr(err.msg, "lognormal") && strstr(err.msg, "logit_normal"), "%s", err.msg);
    SamplerMethod m;
    ck_assert_int_eq(sampler_method_parse("heun", &m, &err), 0);
    ck_assert_int_eq(m, SAMPLER_HEUN);
    ck_assert_int_eq(sampler_method_parse("rk4", &m, &err), -1);
    ck_assert_msg(strstr(err.msg, "rk4") && strstr(err.msg, "euler"), "%s", err.msg);
}
END_TEST

// x_t = (1 - t) x0 + t eps per sample of a 4-d batch; x0_from_velocity inverts it with the
// true velocity; the gradient of sum(x_t) with respect to eps is t.
START_TEST(test_interpolate) {
    enum { N = 3, PER = 2 * 2 * 3 };
    float x0v[N * PER], epsv[N * PER], tv[N] = {0.0f, 0.25f, 1.0f};
    test_fill_uniform(x0v, N * PER, test_seed_for("interp_x0"), -2.0f, 2.0f);
    test_fill_uniform(epsv, N * PER, test_seed_for("interp_eps"), -2.0f, 2.0f);
    Shape s = shape4(N, 2, 2, 3);
    Tensor *x0 = tensor_from_floats(s, x0v, DEVICE_CPU);
    Tensor *eps = tensor_from_floats(s, epsv, DEVICE_CPU);
    Tensor *t = tensor_from_floats(shape1(N), tv, DEVICE_CPU);
    tensor_set_requires_grad(eps, true);
    Tensor *xt = flow_interpolate(x0, eps, t);
    float want[N * PER], got[N * PER], grad_want[N * PER];
    for (int i = 0; i < N * PER; i++) {
        float ti = tv[i / PER];
        want[i] = (1.0f - ti) * x0v[i] + ti * epsv[i];
        grad_want[i] = ti;
    }
    tensor_read(xt, got);
    ASSERT_CLOSE("x_t", got, want, N * PER, 1e-6, 1e-6);
    autograd_backward(op_sum_all(xt), NULL);
    tensor_read(eps->grad, got);
    ASSERT_CLOSE("d sum(x_t) / d eps", got, grad_want, N * PER, 1e-7, 0.0);

    Tensor *v = op_sub(tensor_detach(eps), x0);
    tensor_read(flow_x0_from_velocity(tensor_detach(xt), v, t), got);
    ASSERT_CLOSE("x0 from the true velocity", got, x0v, N * PER, 1e-5, 1e-5);
}
END_TEST

START_TEST(test_label_dropout_rate) {
    const int64_t n = 100000;
    Tensor *y = labels_for("dropout_labels", n, NUM_CLASSES);
    int32_t *before = malloc((size_t)n * sizeof *before), *after = malloc((size_t)n * sizeof *after);
    ck_assert(before && after);
    tensor_read(y, before);
    Rng rng = rng_make(test_seed_for("dropout"));
    int64_t dropped;
    tensor_read(flow_drop_labels(y, NUM_CLASSES, 0.1f, &rng, &dropped), after);
    int64_t nulls = 0;
    for (int64_t i = 0; i < n; i++) {
        if (after[i] == NUM_CLASSES) nulls++;
        else ck_assert_int_eq(after[i], before[i]); // kept labels are unchanged
    }
    ck_assert_int_eq(nulls, dropped);
    double rate = (double)dropped / (double)n;
    ck_assert_msg(fabs(rate - 0.1) < 5 * sqrt(0.09 / (double)n), "dropout rate %g, want 0.1", rate);

    int64_t none, all;
    flow_drop_labels(y, NUM_CLASSES, 0.0f, &rng, &none);
    flow_drop_labels(y, NUM_CLASSES, 1.0f, &rng, &all);
    ck_assert_int_eq(none, 0);
    ck_assert_int_eq(all, n);
    free(before);
    free(after);
}
END_TEST

// The same stream gives the same decisions; another stream other ones.
START_TEST(test_label_dropout_reproducible) {
    const int64_t n = 4096;
    Tensor *y = labels_for("dropout_repro_labels", n, NUM_CLASSES);
    int32_t a[4096], b[4096], c[4096];
    Rng r1 = rng_make(test_seed_for("dropout_repro")), r2 = r1, r3 = rng_fork(&r1, 1);
    tensor_read(flow_drop_labels(y, NUM_CLASSES, 0.1f, &r1, NULL), a);
    tensor_read(flow_drop_labels(y, NUM_CLASSES, 0.1f, &r2, NULL), b);
    tensor_read(flow_drop_labels(y, NUM_CLASSES, 0.1f, &r3, NULL), c);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert(memcmp(a, c, sizeof a) != 0);
    ck_assert(r1.offset == r2.offset);
}
END_TEST

// ---- the teacher loss ---------------------------------------------------------------------------

// v = w x: one trainable scalar, so the loss and its gradient can be computed by hand; records
// the times and labels it was given.
typedef struct {
    Tensor *w; // (1)
    float t[64];
    int32_t y[64];
} ScaleField;

static Tensor *scale_forward(void *self, Tensor *x, Tensor *t, Tensor *y) {
    ScaleField *s = self;
    ck_assert_int_le(tensor_numel(t), 64);
    tensor_read(t, s->t);
    tensor_read(y, s->y);
    return op_mul(x, s->w);
}

static const FlowLossOptions loss_cases[] = {
    {FLOW_TIME_LOGIT_NORMAL, 0.3f, 0.7f, 0.1f},
    {FLOW_TIME_UNIFORM, 0.0f, 1.0f, 0.5f},
};

// The loss equals mean((w x_t - (eps - x0))^2) computed from a replay of the documented draws
// (t, eps, dropout), and its gradient mean(2 (w x_t - (eps - x0)) x_t).
START_TEST(test_loss_by_hand) {
    enum { N = 16, D = 3 };
    const FlowLossOptions *opt = &loss_cases[_i];
    float x0v[N * D], wv = 0.7f;
    test_fill_uniform(x0v, N * D, test_seed_for("loss_x0"), -1.5f, 1.5f);
    Tensor *x0 = tensor_from_floats(shape2(N, D), x0v, DEVICE_CPU);
    Tensor *y = labels_for("loss_labels", N, NUM_CLASSES);
    ScaleField sf = {tensor_from_floats(shape1(1), &wv, DEVICE_CPU), {0}, {0}};
    tensor_set_requires_grad(sf.w, true);
    VelocityField f = {scale_forward, &sf, NUM_CLASSES};

    Rng rng = rng_make(test_seed_for("loss")), replay = rng;
    FlowLossStats stats;
    Tensor *loss = flow_matching_loss_field(&f, x0, y, &rng, opt, &stats);
    ck_assert_int_eq(tensor_numel(loss), 1);
    autograd_backward(loss, NULL);

    float tv[N], epsv[N * D];
    int32_t yv[N];
    int64_t dropped;
    tensor_read(flow_sample_time(N, opt->time_dist, opt->logit_mean, opt->logit_std, &replay,
                                 DEVICE_CPU),
                tv);
    tensor_read(tensor_normal(shape2(N, D), &replay, 0.0f, 1.0f, DEVICE_CPU), epsv);
    tensor_read(flow_drop_labels(y, NUM_CLASSES, opt->label_dropout, &replay, &dropped), yv);
    ck_assert(replay.offset == rng.offset);
    ASSERT_CLOSE("times given to the field", sf.t, tv, N, 0.0, 0.0);
    ck_assert_mem_eq(sf.y, yv, sizeof yv);

    double want = 0.0, grad = 0.0, mean_t = 0.0;
    for (int i = 0; i < N * D; i++) {
        double t = tv[i / D], xt = (1.0 - t) * x0v[i] + t * epsv[i];
        double r = wv * xt - (epsv[i] - x0v[i]);
        want += r * r / (N * D);
        grad += 2.0 * r * xt / (N * D);
    }
    for (int i = 0; i < N; i++) mean_t += tv[i] / (double)N;
    ck_assert_float_eq_tol(tensor_item(loss), (float)want, 1e-5f * (float)(1.0 + want));
    ck_assert_float_eq_tol(tensor_item(sf.w->grad), (float)grad, 1e-5f * (float)(1.0 + fabs(grad)));
    ck_assert_float_eq_tol(stats.mean_t, (float)mean_t, 1e-6f);
    ck_assert_float_eq_tol(stats.dropped_fraction, (float)dropped / N, 1e-7f);
}
END_TEST

// ---- samplers ---------------------------------------------------------------------------------

// One Euler step on the straight flow to a point is exact, whatever the grid.
START_TEST(test_euler_straight_flow_is_exact) {
    const int steps[] = {1, 7};
    for (int k = 0; k < COUNT_OF(steps); k++) {
        HostField h = host_field(point_row, 3);
        h.mu[0] = 1.5, h.mu[1] = -0.25, h.mu[2] = 0.0;
        VelocityField f = field_of(&h);
        SamplerOptions o = options(SAMPLER_EULER, steps[k], 1.0f, 3.0f);
        Tensor *x = sample_flow_field(&f, noise_for("straight", 8, 3), NULL, &o, NULL);
        float *got = toy_host_copy(x);
        for (int i = 0; i < 8 * 3; i++)
            ck_assert_msg(fabs(got[i] - h.mu[i % 3]) < 1e-5, "%d steps: x[%d] = %g, want %g",
                          steps[k], i, got[i], h.mu[i % 3]);
        free(got);
        host_field_free(&h);
    }
}
END_TEST

// Errors of Euler and Heun against the exact ODE solution shrink at their orders (halving the
// step: Euler /2, Heun /4), and Heun with about the same NFE is far more accurate.
START_TEST(test_sampler_orders_on_curved_flow) {
    HostField h = gaussian_field();
    VelocityField f = field_of(&h);
    Tensor *z = noise_for("orders", 64, 2);
    double err[2][2];
    const int steps[2] = {20, 40};
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 2; k++) {
            SamplerOptions o = options(m == 0 ? SAMPLER_EULER : SAMPLER_HEUN, steps[k], 1.0f, 1.0f);
            err[m][k] = gaussian_error(&h, z, sample_flow_field(&f, z, NULL, &o, NULL));
        }
    double euler_ratio = err[0][0] / err[0][1], heun_ratio = err[1][0] / err[1][1];
    ck_assert_msg(euler_ratio > 1.7 && euler_ratio < 2.3, "Euler error ratio %g (%g -> %g)",
                  euler_ratio, err[0][0], err[0][1]);
    ck_assert_msg(heun_ratio > 3.4 && heun_ratio < 4.8, "Heun error ratio %g (%g -> %g)",
                  heun_ratio, err[1][0], err[1][1]);

    SamplerOptions heun = options(SAMPLER_HEUN, 10, 1.0f, 1.0f);
    SamplerOptions euler = options(SAMPLER_EULER, 20, 1.0f, 1.0f);
    ck_assert_int_le(sampler_nfe(&heun), sampler_nfe(&euler));
    double e_heun = gaussian_error(&h, z, sample_flow_field(&f, z, NULL, &heun, NULL));
    double e_euler = gaussian_error(&h, z, sample_flow_field(&f, z, NULL, &euler, NULL));
    ck_assert_msg(e_heun < e_euler / 5, "Heun 10 steps error %g, Euler 20 steps %g", e_heun,
                  e_euler);
    host_field_free(&h);
}
END_TEST

// The reference settings (50 Euler, 25 Heun steps) turn N(0, 1) noise into samples whose mean
// and standard deviation are the data's, with and without a time shift.
START_TEST(test_sampler_reaches_target) {
    const SamplerOptions settings[] = {options(SAMPLER_EULER, 50, 1.0f, 1.0f),
                                       options(SAMPLER_HEUN, 25, 1.0f, 1.0f),
                                       options(SAMPLER_HEUN, 25, 1.0f, 3.0f)};
    const int64_t n = 4000;
    HostField h = gaussian_field();
    VelocityField f = field_of(&h);
    Rng rng = rng_make(test_seed_for("target"));
    Tensor *z = tensor_normal(shape2(n, 2), &rng, 0.0f, 1.0f, DEVICE_CPU);
    for (int s = 0; s < COUNT_OF(settings); s++) {
        float *x = toy_host_copy(sample_flow_field(&f, z, NULL, &settings[s], NULL));
        for (int j = 0; j < 2; j++) {
            double m = 0.0, m2 = 0.0;
            for (int64_t i = 0; i < n; i++) m += x[i * 2 + j], m2 += (double)x[i * 2 + j] * x[i * 2 + j];
            m /= n;
            double sd = sqrt(m2 / n - m * m);
            // 4 standard errors of the estimate plus 2% for the discretisation
            ck_assert_msg(fabs(m - h.mu[j]) < 4 * h.sigma[j] / sqrt((double)n) + 0.02 * h.sigma[j],
                          "setting %d, dim %d: mean %g, want %g", s, j, m, h.mu[j]);
            ck_assert_msg(fabs(sd / h.sigma[j] - 1.0) < 4 / sqrt(2.0 * n) + 0.02,
                          "setting %d, dim %d: std %g, want %g", s, j, sd, h.sigma[j]);
        }
        free(x);
    }
    host_field_free(&h);
}
END_TEST

// The field is asked for exactly the grid times: Euler at t_0..t_{N-1}; Heun at t_0, then
// t_{k+1} twice (its corrector, then the next step), and never at t = 0.
START_TEST(test_sampler_times) {
    enum { STEPS = 6 };
    float grid[STEPS + 1];
    sampler_time_grid(STEPS, 3.0f, grid);
    for (int m = 0; m < 2; m++) {
        HostField h = host_field(gaussian_row, 2);
        h.sigma[0] = h.sigma[1] = 1.0;
        VelocityField f = field_of(&h);
        SamplerOptions o = options(m == 0 ? SAMPLER_EULER : SAMPLER_HEUN, STEPS, 1.0f, 3.0f);
        sample_flow_field(&f, noise_for("times", 4, 2), NULL, &o, NULL);
        float want[2 * STEPS];
        int count = 0;
        for (int k = 0; k < STEPS; k++) {
            want[count++] = grid[k];
            if (m == 1 && k < STEPS - 1) want[count++] = grid[k + 1];
        }
        ck_assert_int_eq(h.calls, count);
        ASSERT_CLOSE(m == 0 ? "Euler times" : "Heun times", h.times, want, count, 0.0, 0.0);
        host_field_free(&h);
    }
}
END_TEST

// With v = x + c[y] and c[null] = 0, a guided velocity is x + s c[y]; one forward of 2n rows
// per evaluation: [x; x] with labels [y; null].
START_TEST(test_cfg_formula_and_batching) {
    enum { N = 5, D = 2, STEPS = 3 };
    const float scale = 2.5f;
    HostField h = host_field(class_row, D);
    h.offset[0] = 1.0, h.offset[1] = -2.0, h.offset[2] = 0.5, h.offset[NUM_CLASSES] = 0.0;
    VelocityField f = field_of(&h);
    Tensor *z = noise_for("cfg", N, D);
    Tensor *y = labels_for("cfg_labels", N, NUM_CLASSES);
    SamplerOptions o = options(SAMPLER_EULER, STEPS, scale, 1.0f);
    int64_t nfe;
    float *got = toy_host_copy(sample_flow_field(&f, z, y, &o, &nfe));

    float *want = toy_host_copy(z), grid[STEPS + 1];
    int32_t yv[N];
    tensor_read(y, yv);
    sampler_time_grid(STEPS, 1.0f, grid);
    for (int k = 0; k < STEPS; k++)
        for (int i = 0; i < N * D; i++)
            want[i] += (grid[k + 1] - grid[k]) * (want[i] + scale * (float)h.offset[yv[i / D]]);
    ASSERT_CLOSE("guided Euler", got, want, N * D, 1e-5, 1e-5);

    ck_assert_int_eq(nfe, 2 * STEPS);
    ck_assert_int_eq(h.calls, STEPS);
    ck_assert_int_eq(h.max_rows, 2 * N);
    ck_assert_int_eq(h.last_n, 2 * N);
    ck_assert_mem_eq(h.last_y, yv, sizeof yv);
    for (int i = 0; i < N; i++) ck_assert_int_eq(h.last_y[N + i], NUM_CLASSES);
    ck_assert_mem_eq(h.last_x, h.last_x + N * D, N * D * sizeof(float));
    free(got);
    free(want);
    host_field_free(&h);
}
END_TEST

// Scale 1 is the conditional velocity: no unconditional evaluations, N forwards of n rows, and
// the same samples as guidance at a scale just above 1 (whose formula reduces to it).
START_TEST(test_cfg_scale_one_is_conditional) {
    enum { N = 6, D = 2, STEPS = 4 };
    HostField h = host_field(class_row, D);
    h.offset[0] = 0.3, h.offset[1] = -1.0, h.offset[2] = 2.0, h.offset[NUM_CLASSES] = -5.0;
    VelocityField f = field_of(&h);
    Tensor *z = noise_for("cfg_one", N, D), *y = labels_for("cfg_one_labels", N, NUM_CLASSES);
    SamplerOptions one = options(SAMPLER_HEUN, STEPS, 1.0f, 1.0f);
    int64_t nfe;
    float *plain = toy_host_copy(sample_flow_field(&f, z, y, &one, &nfe));
    ck_assert_int_eq(nfe, 2 * STEPS - 1);
    ck_assert_int_eq(h.calls, 2 * STEPS - 1);
    ck_assert_int_eq(h.max_rows, N);
    ck_assert_int_eq(h.null_rows, 0);

    SamplerOptions near_one = options(SAMPLER_HEUN, STEPS, 1.0001f, 1.0f);
    float *guided = toy_host_copy(sample_flow_field(&f, z, y, &near_one, &nfe));
    ck_assert_int_eq(nfe, 2 * (2 * STEPS - 1));
    ck_assert_int_gt(h.null_rows, 0);
    ASSERT_CLOSE("guidance at scale 1 + 1e-4", guided, plain, N * D, 1e-3, 1e-3);
    free(plain);
    free(guided);
    host_field_free(&h);
}
END_TEST

// NFE per sample: Euler N, Heun 2N - 1, doubled with guidance; equal to the rows the field
// evaluated divided by the sample count. Without labels nothing is guided.
START_TEST(test_nfe_counts) {
    enum { N = 4, STEPS = 5 };
    const SamplerMethod methods[] = {SAMPLER_EULER, SAMPLER_HEUN};
    const float scales[] = {1.0f, 3.0f};
    const int64_t per_row[] = {STEPS, 2 * STEPS - 1};
    for (int m = 0; m < 2; m++)
        for (int s = 0; s < 2; s++)
            for (int with_y = 0; with_y < 2; with_y++) {
                HostField h = host_field(class_row, 2);
                VelocityField f = field_of(&h);
                SamplerOptions o = options(methods[m], STEPS, scales[s], 1.0f);
                Tensor *y = with_y ? labels_for("nfe", N, NUM_CLASSES) : NULL;
                int64_t nfe;
                sample_flow_field(&f, noise_for("nfe", N, 2), y, &o, &nfe);
                int64_t want = per_row[m] * (with_y && s == 1 ? 2 : 1);
                ck_assert_msg(nfe == want, "%s, cfg %g, labels %d: nfe %lld, want %lld",
                              sampler_method_name(methods[m]), scales[s], with_y, (long long)nfe,
                              (long long)want);
                ck_assert_int_eq(h.rows, want * N);
                if (with_y) ck_assert_int_eq(sampler_nfe(&o), want);
                else ck_assert_int_eq(h.null_rows, h.rows); // unconditional: every label null
                host_field_free(&h);
            }
}
END_TEST

// Chunks of 3 give the same samples as one pass and never hand the field more than 3 samples
// (6 rows with guidance).
START_TEST(test_chunks) {
    enum { N = 10, D = 2 };
    HostField h = host_field(class_row, D);
    h.offset[0] = 1.0, h.offset[1] = 2.0, h.offset[2] = 3.0;
    VelocityField f = field_of(&h);
    Tensor *z = noise_for("chunks", N, D), *y = labels_for("chunks_labels", N, NUM_CLASSES);
    SamplerOptions o = options(SAMPLER_HEUN, 3, 2.0f, 2.0f);
    float *whole = toy_host_copy(sample_flow_field(&f, z, y, &o, NULL));
    ck_assert_int_eq(h.max_rows, 2 * N);
    h.max_rows = 0;
    o.chunk = 3;
    float *chunked = toy_host_copy(sample_flow_field(&f, z, y, &o, NULL));
    ck_assert_int_eq(h.max_rows, 2 * 3);
    ck_assert_mem_eq(whole, chunked, N * D * sizeof(float));
    free(whole);
    free(chunked);
    host_field_free(&h);
}
END_TEST

// Each step's temporaries are freed before the next: the peak memory of 40 steps is that of 4.
START_TEST(test_sampler_memory_is_per_step) {
    HostField h = gaussian_field();
    VelocityField f = field_of(&h);
    Tensor *z = noise_for("memory", 256, 2);
    size_t peak[2];
    const int steps[2] = {4, 40};
    for (int k = 0; k < 2; k++) {
        tensor_scope_begin();
        storage_reset_peak(DEVICE_CPU);
        size_t base = storage_stats(DEVICE_CPU).bytes_in_use;
        SamplerOptions o = options(SAMPLER_HEUN, steps[k], 1.0f, 1.0f);
        sample_flow_field(&f, z, NULL, &o, NULL);
        peak[k] = storage_stats(DEVICE_CPU).peak_bytes - base;
        tensor_scope_end();
    }
    ck_assert_msg(peak[1] == peak[0], "peak memory %zu bytes over 40 steps, %zu over 4", peak[1],
                  peak[0]);
    host_field_free(&h);
}
END_TEST

// ---- the toy2d teacher, end to end ------------------------------------------------------------

#define TOY_STEPS 2000
#define TOY_SAMPLES 2000

// model -> (TOY_SAMPLES, 2) on the host, 50 Euler steps from fresh noise (y NULL: unconditional)
static float *toy_sample(Model *m, Tensor *y, uint64_t seed) {
    Rng rng = rng_make(seed);
    SamplerOptions o = sampler_defaults();
    ck_assert_int_eq(o.steps, 50);
    int64_t nfe;
    float *x = toy_host_copy(sample_flow_rng(m, TOY_SAMPLES, y, &rng, &o, &nfe));
    ck_assert_int_eq(nfe, 50);
    return x;
}

// Trains the MLP teacher with AdamW on the mixture through flow_matching_loss (the defaults:
// logit-normal times, 10% label dropout), then samples it with 50 Euler steps.
// Conditional samples of label k must land on component k with about its mean and covariance
// (check_conditional_moments). Unconditional samples must cover every component (at least
// half its share) and keep to the ring with the data's overall mean and covariance; the
// null-label field needs far longer training than this to separate the modes sharply (about a
// third of its samples fall between them here), so its per-mode moments are not checked.
START_TEST(test_toy2d_teacher) {
    Dataset data;
    toy_data(&data);
    Model *m = toy_train_teacher(&data, TOY_STEPS);

    ToyStats want, got;
    toy_stats(data.data, data.count, &want, NULL);
    int32_t labels[TOY_SAMPLES];
    int assigned[TOY_SAMPLES];
    for (int i = 0; i < TOY_SAMPLES; i++) labels[i] = i % TOY_COMPONENTS;
    float *x = toy_sample(m, tensor_from_ints(shape1(TOY_SAMPLES), labels, DEVICE_CPU),
                          test_seed_for("toy_sample_cond"));
    toy_stats(x, TOY_SAMPLES, &got, assigned);
    int64_t wrong = 0;
    for (int i = 0; i < TOY_SAMPLES; i++) wrong += assigned[i] != labels[i];
    ck_assert_msg(wrong <= TOY_SAMPLES / 100, "%lld conditional samples on another component",
                  (long long)wrong);
    ck_assert_msg(got.off_mode <= TOY_SAMPLES / 50, "%lld conditional samples off the modes",
                  (long long)got.off_mode);
    // 50 Euler steps alone shrink the variance of a std-0.1 mode to 0.84 of it; a teacher
    // trained for seconds adds its own error. Measured over 40 seeds (test/seed_sweep.sh):
    // worst mean offset 0.14-0.51 std, variance ratios 0.48-1.16, 0.68-0.84 on average, worst
    // xy covariance 0.05-0.39 std^2; each tolerance is about 1.5x the worst seen.
    const ToyTolerance tol = {.mean = 0.8, .var_lo = 0.3, .var_hi = 1.6, .avg_lo = 0.5,
                             .avg_hi = 1.1, .xy = 0.6};
    toy_check_conditional_moments("conditional", &got, &want, &tol);
    free(x);

    x = toy_sample(m, NULL, test_seed_for("toy_sample_uncond"));
    toy_stats(x, TOY_SAMPLES, &got, NULL);
    for (int k = 0; k < TOY_COMPONENTS; k++)
        ck_assert_msg(got.component[k].n >= TOY_SAMPLES / (2 * TOY_COMPONENTS),
                      "unconditional: component %d got %lld of %d samples", k,
                      (long long)got.component[k].n, TOY_SAMPLES);
    ck_assert_msg(got.off_ring <= TOY_SAMPLES / 20, "%lld unconditional samples off the ring",
                  (long long)got.off_ring);
    // the mixture's mean 0 and covariance (R^2 / 2 + std^2) I = 2.01 I, within the noise of
    // 2000 samples and the teacher's imbalance between components
    double gm[2], gc[3], dm[2], dc[3];
    moments_get(&got.all, gm, gc);
    moments_get(&want.all, dm, dc);
    for (int j = 0; j < 2; j++)
        ck_assert_msg(fabs(gm[j] - dm[j]) < 0.25, "unconditional: mean[%d] %g, data %g", j, gm[j],
                      dm[j]);
    for (int j = 0; j < 3; j++)
        ck_assert_msg(fabs(gc[j] - dc[j]) < 0.3, "unconditional: covariance[%d] %g, data %g", j,
                      gc[j], dc[j]);
    free(x);

    model_free(m);
    dataset_free(&data);
}
END_TEST

static Suite *diffusion_suite(void) {
    Suite *s = suite_create("diffusion");
    TCase *tc = tcase_create("flow");
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_time_shift_formula);
    tcase_add_test(tc, test_time_grid);
    tcase_add_test(tc, test_logit_normal_moments);
    tcase_add_test(tc, test_uniform_time_moments);
    tcase_add_test(tc, test_time_dist_names);
    tcase_add_test(tc, test_interpolate);
    tcase_add_test(tc, test_label_dropout_rate);
    tcase_add_test(tc, test_label_dropout_reproducible);
    tcase_add_loop_test(tc, test_loss_by_hand, 0, COUNT_OF(loss_cases));

    tc = tcase_create("sampler");
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_euler_straight_flow_is_exact);
    tcase_add_test(tc, test_sampler_orders_on_curved_flow);
    tcase_add_test(tc, test_sampler_reaches_target);
    tcase_add_test(tc, test_sampler_times);
    tcase_add_test(tc, test_cfg_formula_and_batching);
    tcase_add_test(tc, test_cfg_scale_one_is_conditional);
    tcase_add_test(tc, test_nfe_counts);
    tcase_add_test(tc, test_chunks);
    tcase_add_test(tc, test_sampler_memory_is_per_step);

    tc = tcase_create("teacher");
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_toy2d_teacher);
    return s;
}

int main(void) {
    return test_run_suite(diffusion_suite());
}
