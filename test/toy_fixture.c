#include "test/toy_fixture.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "diffusion/flow_trainer.h"
#include "test/test_util.h"

#define TOY_BATCH 128

void moments_add(Moments *m, const float *p) {
    m->n++;
    m->s[0] += p[0], m->s[1] += p[1];
    m->s[2] += (double)p[0] * p[0], m->s[3] += (double)p[0] * p[1], m->s[4] += (double)p[1] * p[1];
}

// -> mean (2), covariance (xx, xy, yy)
void moments_get(const Moments *m, double mean[2], double cov[3]) {
    double n = (double)(m->n > 0 ? m->n : 1);
    mean[0] = m->s[0] / n, mean[1] = m->s[1] / n;
    cov[0] = m->s[2] / n - mean[0] * mean[0];
    cov[1] = m->s[3] / n - mean[0] * mean[1];
    cov[2] = m->s[4] / n - mean[1] * mean[1];
}

int toy_nearest_component(const float *p, double *distance) {
    int best = 0;
    double best_d = INFINITY;
    for (int k = 0; k < TOY_COMPONENTS; k++) {
        float m[2];
        toy2d_component_mean(k, TOY_COMPONENTS, TOY_RADIUS, m);
        double d = hypot(p[0] - m[0], p[1] - m[1]);
        if (d < best_d) best = k, best_d = d;
    }
    *distance = best_d;
    return best;
}

void toy_stats(const float *points, int64_t n, ToyStats *s, int *assigned) {
    memset(s, 0, sizeof *s);
    for (int64_t i = 0; i < n; i++) {
        const float *p = &points[2 * i];
        double d;
        int k = toy_nearest_component(p, &d);
        if (assigned) assigned[i] = k;
        s->off_mode += d > 5.0 * TOY_STD;
        s->off_ring += fabs(hypot(p[0], p[1]) - TOY_RADIUS) > 5.0 * TOY_STD;
        moments_add(&s->component[k], p);
        moments_add(&s->all, p);
    }
}

void toy_check_conditional_moments(const char *what, const ToyStats *got, const ToyStats *data,
                                   const ToyTolerance *tol) {
    const double var = (double)TOY_STD * TOY_STD;
    // the worst of each statistic over the components, printed before any assertion so that a
    // run's log shows how close it came (the tolerances are calibrated from these lines)
    double worst_mean = 0.0, ratio_lo = INFINITY, ratio_hi = 0.0, worst_xy = 0.0, ratio_sum = 0.0;
    int mean_at = 0, lo_at = 0, hi_at = 0, xy_at = 0;
    for (int k = 0; k < TOY_COMPONENTS; k++) {
        double gm[2], gc[3], dm[2], dc[3];
        moments_get(&got->component[k], gm, gc);
        moments_get(&data->component[k], dm, dc);
        for (int j = 0; j < 2; j++) {
            double off = fabs(gm[j] - dm[j]) / TOY_STD, ratio = gc[2 * j] / dc[2 * j];
            if (off > worst_mean) worst_mean = off, mean_at = k;
            if (ratio < ratio_lo) ratio_lo = ratio, lo_at = k;
            if (ratio > ratio_hi) ratio_hi = ratio, hi_at = k;
            ratio_sum += ratio;
        }
        double xy = fabs(gc[1] - dc[1]) / var;
        if (xy > worst_xy) worst_xy = xy, xy_at = k;
    }
    double mean_ratio = ratio_sum / (2 * TOY_COMPONENTS);
    fprintf(stderr,
            "%s: worst mean offset %.2f std (component %d); variance ratios %.2f to %.2f "
            "(components %d, %d), %.2f on average; worst xy covariance %.2f std^2 (component %d)\n",
            what, worst_mean, mean_at, ratio_lo, ratio_hi, lo_at, hi_at, mean_ratio, worst_xy,
            xy_at);
    ck_assert_msg(worst_mean < tol->mean, "%s component %d: mean %.2f std from the data's", what,
                  mean_at, worst_mean);
    ck_assert_msg(ratio_lo > tol->var_lo, "%s component %d: variance %.2f times the data's", what,
                  lo_at, ratio_lo);
    ck_assert_msg(ratio_hi < tol->var_hi, "%s component %d: variance %.2f times the data's", what,
                  hi_at, ratio_hi);
    ck_assert_msg(worst_xy < tol->xy, "%s component %d: xy covariance %.2f std^2 from the data's",
                  what, xy_at, worst_xy);
    ck_assert_msg(mean_ratio > tol->avg_lo && mean_ratio < tol->avg_hi,
                  "%s: variances %g times the data's on average", what, mean_ratio);
}


void toy_data(Dataset *out) {
    Error err = {""};
    ck_assert_msg(toy2d_make(16384, TOY_COMPONENTS, TOY_RADIUS, TOY_STD, test_seed_for("toy_data"),
                             out, &err) == 0,
                  "%s", err.msg);
}

Model *toy_mlp(const char *label, int width, int layers) {
    ModelConfig cfg = {.kind = MODEL_MLP, .num_classes = TOY_COMPONENTS, .data_dim = 2,
                       .mlp_width = width, .mlp_layers = layers};
    Rng rng = rng_make(test_seed_for(label));
    Error err = {""};
    Model *m = model_create(&cfg, DEVICE_CPU, &rng, &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    return m;
}

DistillOptions toy_distill_options(int64_t dyn_steps) {
    DistillOptions o = distill_defaults(dyn_steps);
    o.batch = 128;
    o.lora.rank = 32; // half the teacher MLP's width: rank 8 tracks the student too loosely
    o.lora.alpha = 32.0f;
    o.lora.mlp = true;
    o.gen_lr = 2e-4f;
    o.fake_lr = 1e-3f;
    return o;
}

Model *toy_train_teacher(const Dataset *data, int steps) {
    Error err = {""};
    ModelConfig cfg = {.kind = MODEL_MLP, .num_classes = TOY_COMPONENTS, .data_dim = 2,
                       .mlp_width = 64, .mlp_layers = 2};
    Rng init = rng_make(test_seed_for("toy_init")), noise = rng_make(test_seed_for("toy_noise"));
    Model *m = model_create(&cfg, DEVICE_CPU, &init, &err);
    ck_assert_msg(m != NULL, "%s", err.msg);

    FlowTrainOptions o = {.loss = flow_loss_defaults(),
                          .adamw = adamw_config_default(),
                          .schedule = {2e-3f, 100, LR_COSINE, steps, 1e-4f},
                          .clip = 1.0f,
                          .ema_decay = 0.999f};
    o.adamw.weight_decay = 0.0f;
    FlowTrainer trainer;
    flow_trainer_init(&trainer, m, &o);
    DataLoader loader;
    dataloader_init(&loader, data, TOY_BATCH, test_seed_for("toy_loader"));
    double first = 0.0, last = 0.0; // mean loss of the first and last 100 steps
    for (int step = 0; step < steps; step++) {
        tensor_scope_begin();
        Tensor *x, *y;
        dataloader_next(&loader, &x, &y, DEVICE_CPU);
        float value = flow_train_step(&trainer, x, y, &noise).loss;
        if (step < 100) first += value / 100.0;
        if (step >= steps - 100) last += value / 100.0;
        tensor_scope_end();
    }
    ck_assert_msg(last < 0.5 * first, "loss %g over the first 100 steps, %g over the last", first,
                  last);
    dataloader_free(&loader);
    flow_trainer_free(&trainer);
    return m;
}

float *toy_host_copy(const Tensor *t) {
    float *p = malloc((size_t)tensor_numel(t) * sizeof *p);
    ck_assert(p != NULL);
    tensor_read(t, p);
    return p;
}
