// The toy 2D Gaussian mixture on a ring (see tools/data/dataset.h): small enough to train in
// seconds, and a scatter plot shows at a glance which modes a sampler covers or drops.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tools/data/dataset.h"

void toy2d_component_mean(int k, int components, float radius, float mean[2]) {
    double angle = 2.0 * M_PI * k / components;
    mean[0] = (float)(radius * cos(angle));
    mean[1] = (float)(radius * sin(angle));
}

// -> (count, 2)
int toy2d_make(int64_t count, int components, float radius, float std, uint64_t seed,
               Dataset *out, Error *err) {
    memset(out, 0, sizeof *out);
    if (count < 1)
        return error_set(err, "toy2d: count %lld: expected at least 1", (long long)count);
    if (components < 1 || components > 1000)
        return error_set(err, "toy2d: components %d: expected 1..1000", components);
    if (!(radius >= 0.0f) || !isfinite(radius))
        return error_set(err, "toy2d: radius %g: expected a finite value >= 0", (double)radius);
    if (!(std > 0.0f) || !isfinite(std))
        return error_set(err, "toy2d: std %g: expected a finite value > 0", (double)std);
    dataset_alloc_vectors(out, count, 2, components);
    Rng rng = rng_make(seed);
    for (int64_t i = 0; i < count; i++) {
        int k = (int)(i % components);
        float mean[2];
        toy2d_component_mean(k, components, radius, mean);
        // Box-Muller: two uniforms in (0, 1] give two independent standard normals.
        double u1 = rng_uniform_float(&rng), u2 = rng_uniform_float(&rng);
        double r = sqrt(-2.0 * log(u1)), theta = 2.0 * M_PI * u2;
        out->data[2 * i] = mean[0] + std * (float)(r * cos(theta));
        out->data[2 * i + 1] = mean[1] + std * (float)(r * sin(theta));
        out->labels[i] = k;
    }
    return 0;
}
