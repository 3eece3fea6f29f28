#include "diffusion/flow.h"

#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "kernels/check.h"

// x (N, ...), t (N), y (N) -> v (N, ...)
static Tensor *model_field_forward(void *self, Tensor *x, Tensor *t, Tensor *y) {
    return model_forward(self, x, t, y);
}

VelocityField velocity_field_of_model(Model *m) {
    VelocityField f = {model_field_forward, m, model_config(m)->num_classes};
    return f;
}

static const char *const time_dist_names[FLOW_TIME_DIST_COUNT] = {
    [FLOW_TIME_LOGIT_NORMAL] = "logit_normal",
    [FLOW_TIME_UNIFORM] = "uniform",
};

const char *flow_time_dist_name(FlowTimeDist dist) {
    return dist >= 0 && dist < FLOW_TIME_DIST_COUNT ? time_dist_names[dist] : "unknown";
}

int flow_time_dist_parse(const char *name, FlowTimeDist *out, Error *err) {
    for (int d = 0; d < FLOW_TIME_DIST_COUNT; d++)
        if (strcmp(name, time_dist_names[d]) == 0) {
            *out = (FlowTimeDist)d;
            return 0;
        }
    return error_set(err, "time distribution \"%s\": expected \"logit_normal\" or \"uniform\"",
                     name);
}

// -> t (n)
Tensor *flow_sample_time(int64_t n, FlowTimeDist dist, float mean, float std, Rng *rng,
                         Device device) {
    switch (dist) {
    case FLOW_TIME_LOGIT_NORMAL: return op_sigmoid(tensor_normal(shape1(n), rng, mean, std, device));
    case FLOW_TIME_UNIFORM: return tensor_uniform(shape1(n), rng, 0.0f, 1.0f, device);
    default: DMDR_FATAL("unknown time distribution %d", (int)dist);
    }
}

// -> (n) I32
Tensor *flow_null_labels(int64_t n, int null_label, Device device) {
    int32_t *h = malloc((size_t)(n > 0 ? n : 1) * sizeof *h);
    DMDR_CHECK(h != NULL, "out of host memory");
    for (int64_t i = 0; i < n; i++) h[i] = null_label;
    Tensor *out = tensor_from_ints(shape1(n), h, device);
    free(h);
    return out;
}

// t (N) -> (N, 1, ..., 1) with x's rank, to broadcast one time per sample
unsigned flow_sample_dims(const Tensor *x) {
    unsigned mask = 0;
    for (int d = 1; d < x->shape.ndim; d++) mask |= 1u << d;
    return mask;
}

Tensor *flow_per_sample(Tensor *t, const Tensor *x) {
    DMDR_CHECK(t->shape.ndim == 1 && t->shape.dim[0] == x->shape.dim[0],
               "times (%lld values) must be one per sample of x (%lld samples)",
               (long long)tensor_numel(t), (long long)x->shape.dim[0]);
    Shape s = x->shape;
    for (int d = 1; d < s.ndim; d++) s.dim[d] = 1;
    return op_reshape(t, s);
}

// x0, eps (N, ...), t (N) -> (N, ...): x0 + t (eps - x0)
Tensor *flow_interpolate(Tensor *x0, Tensor *eps, Tensor *t) {
    return op_add(x0, op_mul(flow_per_sample(t, x0), op_sub(eps, x0)));
}

// x_t, v (N, ...), t (N) -> (N, ...)
Tensor *flow_x0_from_velocity(Tensor *x_t, Tensor *v, Tensor *t) {
    return op_sub(x_t, op_mul(flow_per_sample(t, x_t), v));
}

// y (N) -> (N)
Tensor *flow_drop_labels(Tensor *y, int null_label, float p, Rng *rng, int64_t *dropped) {
    DMDR_CHECK(y->dtype == DTYPE_I32 && y->shape.ndim == 1, "labels must be (N) I32");
    int64_t n = y->shape.dim[0];
    // The draws are made on the CPU: the Philox stream gives the same values there as on any
    // device, and the decisions are needed on the host to edit the labels anyway.
    Tensor *u = tensor_uniform(shape1(n), rng, 0.0f, 1.0f, DEVICE_CPU);
    int32_t *labels = malloc((size_t)(n > 0 ? n : 1) * sizeof *labels);
    DMDR_CHECK(labels != NULL, "out of host memory");
    tensor_read(y, labels);
    const float *draw = tensor_f32(u);
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++)
        if (draw[i] <= p) { // draws lie in (0, 1]: p = 0 drops nothing, p = 1 everything
            labels[i] = null_label;
            count++;
        }
    Tensor *out = tensor_from_ints(shape1(n), labels, y->device);
    free(labels);
    if (dropped) *dropped = count;
    return out;
}

FlowLossOptions flow_loss_defaults(void) {
    FlowLossOptions o = {FLOW_TIME_LOGIT_NORMAL, 0.0f, 1.0f, 0.1f};
    return o;
}

// x0 (N, ...), y (N) -> (1)
Tensor *flow_matching_loss_field(const VelocityField *f, Tensor *x0, Tensor *y, Rng *rng,
                                 const FlowLossOptions *opt, FlowLossStats *stats) {
    int64_t n = x0->shape.dim[0];
    DMDR_CHECK(y->shape.ndim == 1 && y->shape.dim[0] == n, "one label per sample");
    DMDR_CHECK(opt->label_dropout >= 0.0f && opt->label_dropout <= 1.0f,
               "label dropout %g outside [0, 1]", (double)opt->label_dropout);
    Tensor *t = flow_sample_time(n, opt->time_dist, opt->logit_mean, opt->logit_std, rng,
                                 x0->device);
    Tensor *eps = tensor_normal(x0->shape, rng, 0.0f, 1.0f, x0->device);
    int64_t dropped;
    Tensor *y_in = flow_drop_labels(y, f->null_label, opt->label_dropout, rng, &dropped);
    // every rank drew for the whole batch: it keeps its rows (tensor/dist.h)
    x0 = op_shard(x0), t = op_shard(t), eps = op_shard(eps), y_in = op_shard(y_in);
    Tensor *v = f->forward(f->self, flow_interpolate(x0, eps, t), t, y_in);
    Tensor *loss = op_mse(v, op_sub(eps, x0));
    if (stats) {
        stats->mean_t = tensor_item(op_mean_all(t));
        stats->dropped_fraction = n > 0 ? (float)dropped / (float)n : 0.0f;
    }
    return loss;
}

// x0 (N, ...), y (N) -> (1)
Tensor *flow_matching_loss(Model *m, Tensor *x0, Tensor *y, Rng *rng, const FlowLossOptions *opt,
                           FlowLossStats *stats) {
    FlowLossOptions defaults = flow_loss_defaults();
    VelocityField f = velocity_field_of_model(m);
    return flow_matching_loss_field(&f, x0, y, rng, opt ? opt : &defaults, stats);
}
