#include "dmdr/dyna.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/check.h"

#define PI 3.14159265358979323846

DynaSchedule dyna_defaults(int64_t steps) {
    return (DynaSchedule){.dynadg = true, .dynars = true, .steps = steps, .real_scale0 = 0.75f,
                          .beta_a0 = 4.0f, .beta_b0 = 1.5f, .t_min = 0.001f};
}

// (1 + cos(pi min(k / K, 1))) / 2: 1 at k = 0, 0 from k = K on
static double cosine_weight(const DynaSchedule *s, int64_t k) {
    DMDR_CHECK(s->steps >= 1, "dyna schedule: K_dyn %lld < 1", (long long)s->steps);
    double p = k >= s->steps ? 1.0 : (double)(k > 0 ? k : 0) / (double)s->steps;
    return 0.5 * (1.0 + cos(PI * p));
}

float dynadg_real_scale(const DynaSchedule *s, int64_t k) {
    return s->dynadg ? (float)(s->real_scale0 * cosine_weight(s, k)) : 0.0f;
}

void dynars_beta(const DynaSchedule *s, int64_t k, double *a, double *b) {
    double c = s->dynars ? cosine_weight(s, k) : 0.0;
    *a = 1.0 + (s->beta_a0 - 1.0) * c;
    *b = 1.0 + (s->beta_b0 - 1.0) * c;
}

// A standard normal from two of the stream's uniforms (Box-Muller, cosine branch)
static double host_normal(Rng *rng) {
    double u1 = rng_uniform_float(rng), u2 = rng_uniform_float(rng); // both in (0, 1]
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

double rng_gamma(Rng *rng, double shape) {
    DMDR_CHECK(shape > 0, "gamma shape %g <= 0", shape);
    if (shape < 1.0) // Gamma(a) = Gamma(a + 1) U^(1/a)
        return rng_gamma(rng, shape + 1.0) * pow(rng_uniform_float(rng), 1.0 / shape);
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = host_normal(rng), v = 1.0 + c * x;
        if (v <= 0.0) continue;
        v = v * v * v;
        double u = rng_uniform_float(rng);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

double rng_beta(Rng *rng, double a, double b) {
    double x = rng_gamma(rng, a), y = rng_gamma(rng, b);
    return x / (x + y);
}

// -> (n)
Tensor *dynars_sample_times(const DynaSchedule *s, int64_t k, int64_t n, Rng *rng,
                            Device device, double *mean) {
    double a, b, sum = 0.0;
    dynars_beta(s, k, &a, &b);
    float *t = malloc((size_t)(n > 0 ? n : 1) * sizeof *t);
    DMDR_CHECK(t != NULL, "out of host memory");
    // 1 - U, U in (0, 1], is uniform on [0, 1); Beta(1, 1) is the same law, drawn cheaper
    for (int64_t i = 0; i < n; i++) {
        double u = s->dynars && (a != 1.0 || b != 1.0) ? rng_beta(rng, a, b)
                                                      : 1.0 - rng_uniform_float(rng);
        u = s->t_min + (1.0 - s->t_min) * u; // onto [t_min, 1)
        t[i] = (float)u;
        if (t[i] >= 1.0f) t[i] = nextafterf(1.0f, 0.0f); // float rounding must not reach 1
        sum += t[i];
    }
    Tensor *out = tensor_from_floats(shape1(n), t, device);
    free(t);
    if (mean) *mean = n > 0 ? sum / (double)n : 0.0;
    return out;
}
