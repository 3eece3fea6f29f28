// The judge CNN (nn/classifier.h): conv / GroupNorm / SiLU blocks over a pyramid of average
// pools, then the features (a SiLU layer over the flattened last stage, or its global mean)
// and a linear head; its files carry their configuration.
#include "nn/classifier.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "kernels/check.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "tensor/dist.h"
#include "tensor/storage.h"

#define GROUPNORM_EPS 1e-5f // PyTorch's default

typedef struct {
    Conv2d conv;
    GroupNorm norm;
} ConvBlock;

// One block of a stage: conv -> GroupNorm -> SiLU; or, residual, a ResNet basic block
// silu(x' + norm2(conv2(silu(norm1(conv1(x)))))), where x' is x, or skip(x) (a 1x1 conv and a
// GroupNorm) where the block changes the channel count.
typedef struct {
    ConvBlock first, second; // second: residual only
    ConvBlock skip;          // residual blocks that change the channels only
    bool has_skip;
} StageBlock;

struct Classifier {
    ClassifierConfig cfg;
    Device device;
    StageBlock *blocks; // (stages * blocks), stage-major
    Linear fc; // hidden > 0 only
    Linear head;
    ParamList params;
};

// ---- configuration ----------------------------------------------------------------------------
// One table for the JSON in both directions and for the range checks.

typedef struct {
    const char *key;
    size_t offset;
    int min, max;
    bool optional; // a file may leave it out (written before the field existed): then 0
} ConfigField;

#define FIELD(f, lo, hi) {#f, offsetof(ClassifierConfig, f), lo, hi, false}
#define OPTIONAL_FIELD(f, lo, hi) {#f, offsetof(ClassifierConfig, f), lo, hi, true}
static const ConfigField fields[] = {
    FIELD(in_channels, 1, 64), FIELD(image_size, 1, 4096), FIELD(num_classes, 1, 100000),
    FIELD(width, 1, 4096),     FIELD(stages, 1, 8),        FIELD(blocks, 1, 16),
    FIELD(groups, 1, 4096),    FIELD(hidden, 0, 65536),    OPTIONAL_FIELD(residual, 0, 1),
};
#define FIELD_COUNT ((int)(sizeof fields / sizeof fields[0]))

bool classifier_config_range(const char *key, double *min, double *max) {
    for (int i = 0; i < FIELD_COUNT; i++)
        if (strcmp(key, fields[i].key) == 0) {
            *min = fields[i].min, *max = fields[i].max;
            return true;
        }
    return false;
}

static int get_field(const ClassifierConfig *cfg, const ConfigField *f) {
    return *(const int *)((const char *)cfg + f->offset);
}

// Ranges of each field, then how the fields fit together.
static int check_config(const ClassifierConfig *cfg, Error *err) {
    for (int i = 0; i < FIELD_COUNT; i++) {
        int v = get_field(cfg, &fields[i]);
        if (v < fields[i].min || v > fields[i].max)
            return error_set(err, "classifier: %s is %d, expected an integer in [%d, %d]",
                             fields[i].key, v, fields[i].min, fields[i].max);
    }
    if (cfg->width % cfg->groups != 0)
        return error_set(err, "classifier: groups %d does not divide width %d", cfg->groups,
                         cfg->width);
    int factor = 1 << (cfg->stages - 1);
    if (cfg->image_size % factor != 0)
        return error_set(err, "classifier: image_size %d is not divisible by 2^(stages - 1) = %d",
                         cfg->image_size, factor);
    int64_t channels = (int64_t)cfg->width << (cfg->stages - 1), side = cfg->image_size / factor;
    if (channels > 65536)
        return error_set(err, "classifier: width %d doubled over %d stages exceeds 65536 channels",
                         cfg->width, cfg->stages);
    if (cfg->hidden > 0 && channels * side * side > (1 << 24))
        return error_set(err, "classifier: the last stage flattens to %lld values for the hidden "
                              "layer, more than 2^24 (use fewer channels, more stages or hidden 0)",
                         (long long)(channels * side * side));
    // every conv counted at its stage's width in and out (the first of a stage takes half):
    // an upper bound, enough to refuse a network that cannot be allocated
    double weights = 9.0 * cfg->in_channels * cfg->width, width = cfg->width;
    for (int s = 0; s < cfg->stages; s++, width *= 2)
        weights += (cfg->residual ? 2 : 1) * cfg->blocks * (9 * width + 3) * width +
                   (cfg->residual ? (width + 2) * width : 0);
    weights += (double)(cfg->hidden > 0 ? channels * side * side : 0) * cfg->hidden +
               (double)(cfg->hidden > 0 ? cfg->hidden : channels) * cfg->num_classes;
    char need[32], have[32];
    double available = host_memory_available();
    if (weights * sizeof(float) > available)
        return error_set(err, "classifier: %.3g parameters need %s, more than the %s of memory "
                              "available",
                         weights, bytes_text(weights * sizeof(float), need, sizeof need),
                         bytes_text(available, have, sizeof have));
    return 0;
}

char *classifier_config_to_json(const ClassifierConfig *cfg) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < FIELD_COUNT; i++)
        cJSON_AddNumberToObject(o, fields[i].key, get_field(cfg, &fields[i]));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    DMDR_CHECK(text != NULL, "out of host memory");
    return text;
}

int classifier_config_from_json(const char *json, ClassifierConfig *cfg, Error *err) {
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return error_set(err, "classifier_config is not a JSON object: \"%.60s\"", json);
    }
    ClassifierConfig c = {0};
    int rc = 0;
    for (int i = 0; i < FIELD_COUNT && rc == 0; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, fields[i].key);
        if (!v && fields[i].optional)
            continue; // 0, from c's initialiser
        if (!v)
            rc = error_set(err, "classifier_config: field '%s' is missing", fields[i].key);
        else if (!cJSON_IsNumber(v) || !(fabs(v->valuedouble) < 1e9) ||
                 v->valuedouble != (double)(int)v->valuedouble)
            rc = error_set(err, "classifier_config: field '%s' is not an integer", fields[i].key);
        else
            *(int *)((char *)&c + fields[i].offset) = (int)v->valuedouble;
    }
    cJSON_Delete(o);
    if (rc == 0) rc = check_config(&c, err);
    if (rc == 0) *cfg = c;
    return rc;
}

// ---- the network ---------------------------------------------------------------------------

// A conv (no bias: the GroupNorm after it removes any per-channel shift) and its GroupNorm,
// registered under block + conv_name and block + norm_name.
static void conv_block_init(Classifier *c, ConvBlock *b, int in, int out, int kernel,
                            const char *block, const char *conv_name, const char *norm_name,
                            Rng *rng) {
    char name[PARAM_NAME_MAX];
    conv2d_init(&b->conv, in, out, kernel, 1, kernel / 2, false, c->device, rng);
    groupnorm_init(&b->norm, c->cfg.groups, out, GROUPNORM_EPS, c->device);
    conv2d_params(&b->conv, params_prefix(name, block, conv_name), &c->params);
    groupnorm_params(&b->norm, params_prefix(name, block, norm_name), &c->params);
}

// x -> norm(conv(x))
static Tensor *conv_block_forward(const ConvBlock *b, Tensor *x) {
    return groupnorm_forward(&b->norm, conv2d_forward(&b->conv, x));
}

Classifier *classifier_create(const ClassifierConfig *cfg, Device device, Rng *rng, Error *err) {
    if (check_config(cfg, err) != 0) return NULL;
    Classifier *c = calloc(1, sizeof *c);
    DMDR_CHECK(c != NULL, "out of host memory");
    c->cfg = *cfg;
    c->device = device;
    c->blocks = calloc((size_t)(cfg->stages * cfg->blocks), sizeof *c->blocks);
    DMDR_CHECK(c->blocks != NULL, "out of host memory");
    char stage[32], block[PARAM_NAME_MAX];
    int in = cfg->in_channels;
    for (int s = 0; s < cfg->stages; s++) {
        int out = cfg->width << s;
        snprintf(stage, sizeof stage, "stages.%d", s);
        for (int b = 0; b < cfg->blocks; b++) {
            StageBlock *blk = &c->blocks[s * cfg->blocks + b];
            params_prefix_index(block, "", stage, b); // "stages.1.0."
            if (!cfg->residual) { // "stages.1.0.conv", "stages.1.0.norm"
                conv_block_init(c, &blk->first, in, out, 3, block, "conv", "norm", rng);
            } else { // conv1, norm1, conv2, norm2, skip.conv, skip.norm
                conv_block_init(c, &blk->first, in, out, 3, block, "conv1", "norm1", rng);
                conv_block_init(c, &blk->second, out, out, 3, block, "conv2", "norm2", rng);
                blk->has_skip = in != out;
                if (blk->has_skip)
                    conv_block_init(c, &blk->skip, in, out, 1, block, "skip.conv", "skip.norm",
                                    rng);
            }
            in = out;
        }
    }
    int side = cfg->image_size >> (cfg->stages - 1);
    if (cfg->hidden > 0) {
        linear_init(&c->fc, in * side * side, cfg->hidden, true, device, rng);
        linear_params(&c->fc, "fc.", false, &c->params);
    }
    linear_init(&c->head, classifier_feature_dim(c), cfg->num_classes, true, device, rng);
    linear_params(&c->head, "head.", false, &c->params);
    return c;
}

static void conv_block_free(ConvBlock *b) {
    conv2d_free(&b->conv);
    groupnorm_free(&b->norm);
}

void classifier_free(Classifier *c) {
    if (!c) return;
    for (int i = 0; i < c->cfg.stages * c->cfg.blocks; i++) {
        StageBlock *blk = &c->blocks[i];
        conv_block_free(&blk->first);
        if (c->cfg.residual) conv_block_free(&blk->second);
        if (blk->has_skip) conv_block_free(&blk->skip);
    }
    if (c->cfg.hidden > 0) linear_free(&c->fc);
    linear_free(&c->head);
    params_free(&c->params);
    free(c->blocks);
    free(c);
}

// x (N, C, S, S) -> logits (N, classes), features (N, F)
Tensor *classifier_forward(Classifier *c, Tensor *x, Tensor **features) {
    const ClassifierConfig *cfg = &c->cfg;
    char got[64];
    DMDR_CHECK(x->shape.ndim == 4 && x->shape.dim[1] == cfg->in_channels &&
                   x->shape.dim[2] == cfg->image_size && x->shape.dim[3] == cfg->image_size,
               "classifier: x must be (N, %d, %d, %d), got %s", cfg->in_channels, cfg->image_size,
               cfg->image_size, tensor_shape_str(x, got, sizeof got));
    Tensor *h = x;
    for (int s = 0; s < cfg->stages; s++) {
        if (s > 0) h = op_avgpool(h, 2);
        for (int b = 0; b < cfg->blocks; b++) {
            const StageBlock *blk = &c->blocks[s * cfg->blocks + b];
            if (!cfg->residual) {
                h = op_silu(conv_block_forward(&blk->first, h));
                continue;
            }
            Tensor *inner = conv_block_forward(&blk->second,
                                               op_silu(conv_block_forward(&blk->first, h)));
            h = op_silu(op_add(blk->has_skip ? conv_block_forward(&blk->skip, h) : h, inner));
        }
    }
    Tensor *f;
    if (cfg->hidden > 0) {
        int64_t n = h->shape.dim[0];
        int64_t flat = h->shape.dim[1] * h->shape.dim[2] * h->shape.dim[3];
        f = op_silu(linear_forward(&c->fc, op_reshape(h, shape2(n, flat))));
    } else {
        f = op_mean(h, 1u << 2 | 1u << 3, false);
    }
    if (features) *features = f;
    return linear_forward(&c->head, f);
}

const ParamList *classifier_params(const Classifier *c) { return &c->params; }
const ClassifierConfig *classifier_config(const Classifier *c) { return &c->cfg; }
Device classifier_device(const Classifier *c) { return c->device; }
int classifier_feature_dim(const Classifier *c) {
    return c->cfg.hidden > 0 ? c->cfg.hidden : c->cfg.width << (c->cfg.stages - 1);
}

void classifier_set_frozen(Classifier *c, bool frozen) {
    params_set_trainable(&c->params, !frozen);
}

void classifier_apply(Classifier *c, const float *images, int64_t n, int64_t chunk,
                      float *logits, float *features) {
    const ClassifierConfig *cfg = &c->cfg;
    int64_t image = (int64_t)cfg->in_channels * cfg->image_size * cfg->image_size;
    int dim = classifier_feature_dim(c);
    if (chunk <= 0 || chunk > n) chunk = n;
    // fp32 whatever the run's precision: a measurement must not change with the precision of
    // what it measures
    Precision run_precision = autograd_precision();
    autograd_set_precision(PRECISION_FP32);
    autograd_no_grad_begin();
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        int64_t m = n - i0 < chunk ? n - i0 : chunk;
        tensor_scope_begin();
        Tensor *x = tensor_from_floats(
            shape4(m, cfg->in_channels, cfg->image_size, cfg->image_size), images + i0 * image,
            c->device);
        Tensor *f;
        Tensor *y = classifier_forward(c, x, &f);
        if (logits) tensor_read(y, logits + i0 * cfg->num_classes);
        if (features) tensor_read(f, features + i0 * dim);
        tensor_scope_end();
    }
    autograd_no_grad_end();
    autograd_set_precision(run_precision);
}

// ---- training ----------------------------------------------------------------------------------

Tensor *smoothed_cross_entropy(Tensor *logits, Tensor *y, float eps) {
    Tensor *ce = op_cross_entropy(logits, y);
    if (eps == 0.0f) return ce;
    Tensor *uniform = op_neg(op_mean_all(op_log_softmax(logits)));
    return op_add(op_mul_scalar(ce, 1.0f - eps), op_mul_scalar(uniform, eps));
}

// Correct predictions of logits (n, classes) against labels (n), both read to the host.
static int64_t count_correct(Tensor *logits, Tensor *labels) {
    int64_t n = logits->shape.dim[0], classes = logits->shape.dim[1];
    float *row = malloc((size_t)(n * classes + 1) * sizeof *row);
    int32_t *y = malloc((size_t)(n + 1) * sizeof *y);
    DMDR_CHECK(row && y, "out of host memory");
    tensor_read(logits, row);
    tensor_read(labels, y);
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *r = row + i * classes;
        int best = 0;
        for (int k = 1; k < classes; k++)
            if (r[k] > r[best]) best = k;
        correct += best == y[i];
    }
    free(row);
    free(y);
    return correct;
}

TrainStepStats classifier_train_step(Classifier *c, AdamW *opt, const LrSchedule *schedule,
                                     float clip, float label_smoothing, Tensor *x, Tensor *y,
                                     int64_t *correct) {
    x = op_shard(x), y = op_shard(y); // this rank's rows of the global batch
    Tensor *logits = classifier_forward(c, x, NULL);
    Tensor *loss = smoothed_cross_entropy(logits, y, label_smoothing);
    TrainStepStats st = optim_train_step(opt, schedule, clip, NULL, 0.0f, loss);
    double right = (double)count_correct(logits, y);
    dist_sum_f64(&right, 1);
    *correct = (int64_t)right;
    return st;
}

// ---- files ------------------------------------------------------------------------------------

#define CLASSIFIER_MAX_EXTRA 8

int classifier_save(const Classifier *c, const char *path, int extra_count,
                    const char *const *extra_keys, const char *const *extra_values, Error *err) {
    DMDR_CHECK(extra_count >= 0 && extra_count <= CLASSIFIER_MAX_EXTRA, "%d metadata pairs",
               extra_count);
    char version[16];
    snprintf(version, sizeof version, "%d", CHECKPOINT_FORMAT_VERSION);
    char *json = classifier_config_to_json(&c->cfg);
    const char *keys[4 + CLASSIFIER_MAX_EXTRA] = {"format", "format_version", CLASSIFIER_CONFIG_KEY,
                                                  CHECKPOINT_ROLE_KEY};
    const char *values[4 + CLASSIFIER_MAX_EXTRA] = {CHECKPOINT_WEIGHTS_FORMAT, version, json,
                                                    ROLE_CLASSIFIER};
    for (int i = 0; i < extra_count; i++) keys[4 + i] = extra_keys[i], values[4 + i] = extra_values[i];
    int rc = params_save(&c->params, path, 4 + extra_count, keys, values, err);
    free(json);
    return rc;
}

// The configuration a file states, with a hint when it is some other dmdr file.
static int read_config(const char *path, ClassifierConfig *cfg, Error *err) {
    CheckpointMetadata md;
    if (checkpoint_read_metadata(path, &md, err) != 0) return -1;
    const char *json = checkpoint_metadata_get(&md, CLASSIFIER_CONFIG_KEY);
    Error inner;
    int rc = 0;
    if (!json)
        rc = error_set(err, "%s: metadata '" CLASSIFIER_CONFIG_KEY "' is missing: not a "
                            "classifier file (dmdr train-classifier writes them)%s",
                       path, checkpoint_metadata_get(&md, "model_config")
                                 ? "; this one holds a velocity model"
                                 : "");
    else if (classifier_config_from_json(json, cfg, &inner) != 0)
        rc = error_set(err, "%s: metadata '" CLASSIFIER_CONFIG_KEY "': %s", path, inner.msg);
    checkpoint_metadata_free(&md);
    return rc;
}

int classifier_load(const char *path, Device device, Classifier **out, Error *err) {
    *out = NULL;
    ClassifierConfig cfg;
    if (read_config(path, &cfg, err) != 0) return -1;
    Rng rng = rng_make(0); // the initial values are overwritten
    Classifier *c = classifier_create(&cfg, device, &rng, err);
    if (!c) return -1;
    if (checkpoint_load_weights(path, &c->params, false, err) != 0) {
        classifier_free(c);
        return -1;
    }
    *out = c;
    return 0;
}
