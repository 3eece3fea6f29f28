#include "nn/model.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "nn/arch.h"
#include "tensor/storage.h"

struct Model {
    ModelConfig cfg;
    Device device;
    const Architecture *arch;
    void *self;
    ParamList params;
    LoraSite *lora; // the adapted sites, lora_count of them (NULL: no adapter)
    int lora_count;
};

static const Architecture *architectures[MODEL_KIND_COUNT] = {
    [MODEL_DIT] = &dit_architecture,
    [MODEL_UNET] = &unet_architecture,
    [MODEL_MLP] = &mlp_architecture,
};

const char *model_kind_name(ModelKind kind) {
    return kind >= 0 && kind < MODEL_KIND_COUNT ? architectures[kind]->name : "unknown";
}

Model *model_create(const ModelConfig *cfg, Device device, Rng *rng, Error *err) {
    if (model_config_check(cfg, err) != 0) return NULL;
    Model *m = calloc(1, sizeof *m);
    DMDR_CHECK(m != NULL, "out of host memory");
    m->cfg = *cfg;
    m->device = device;
    m->arch = architectures[cfg->kind];
    m->self = m->arch->create(cfg, device, rng, &m->params, err);
    if (!m->self) {
        params_free(&m->params);
        free(m);
        return NULL;
    }
    return m;
}

Model *model_clone(Model *m, Rng *rng, Error *err) {
    Model *copy = model_create(model_config(m), model_device(m), rng, err);
    if (copy) params_copy(model_params(m), model_params(copy));
    return copy;
}

void model_free(Model *m) {
    if (!m) return;
    m->arch->free(m->self);
    params_free(&m->params);
    free(m->lora);
    free(m);
}

Tensor *model_forward(Model *m, Tensor *x, Tensor *t, Tensor *y) {
    return m->arch->forward(m->self, x, t, y);
}

const ModelConfig *model_config(const Model *m) { return &m->cfg; }
const ParamList *model_params(const Model *m) { return &m->params; }
Device model_device(const Model *m) { return m->device; }

Shape model_data_shape(const Model *m, int64_t n) {
    const ModelConfig *c = &m->cfg;
    return c->kind == MODEL_MLP ? shape2(n, c->data_dim)
                                : shape4(n, c->in_channels, c->image_size, c->image_size);
}

// ---- LoRA -------------------------------------------------------------------------------------

void lora_site_add(LoraSite *out, int max, int *count, Lora *lora, int in_features,
                   int out_features, const char *prefix, const char *child, LoraPlace place) {
    if (out && *count < max) {
        out[*count] = (LoraSite){.lora = lora, .in_features = in_features,
                                 .out_features = out_features, .place = place};
        params_prefix(out[*count].prefix, prefix, child);
    }
    (*count)++;
}

void lora_site_add_linear(LoraSite *out, int max, int *count, Linear *l, const char *prefix,
                          const char *child, LoraPlace place) {
    lora_site_add(out, max, count, &l->lora, l->in_features, l->out_features, prefix, child,
                  place);
}

void attention_lora_sites(LoraSite *out, int max, int *count, Attention *a, const char *prefix) {
    int dim = a->proj.in_features;
    lora_site_add_linear(out, max, count, &a->qkv, prefix, "qkv", LORA_AT_ATTENTION);
    lora_site_add_linear(out, max, count, &a->proj, prefix, "proj", LORA_AT_ATTENTION);
    lora_site_add(out, max, count, &a->q_lora, dim, dim, prefix, "q_lora", LORA_AT_QV);
    lora_site_add(out, max, count, &a->v_lora, dim, dim, prefix, "v_lora", LORA_AT_QV);
}

static bool lora_wants(const LoraOptions *o, LoraPlace place) {
    if (o->style == LORA_STYLE_QV) return place == LORA_AT_QV;
    return place == LORA_AT_ATTENTION || (o->mlp && place == LORA_AT_MLP);
}

int model_add_lora(Model *m, const LoraOptions *o, Rng *rng, Error *err) {
    if (m->lora) return error_set(err, "lora: the model already has an adapter");
    if (o->rank < 1) return error_set(err, "lora: rank must be at least 1, got %d", o->rank);
    if (o->style < 0 || o->style >= LORA_STYLE_COUNT)
        return error_set(err, "lora: unknown style %d", (int)o->style);
    int total = m->arch->lora_sites(m->self, NULL, 0);
    LoraSite *all = calloc((size_t)(total > 0 ? total : 1), sizeof *all);
    DMDR_CHECK(all != NULL, "out of host memory");
    m->arch->lora_sites(m->self, all, total);
    int n = 0;
    for (int i = 0; i < total; i++)
        if (lora_wants(o, all[i].place)) all[n++] = all[i];
    if (n == 0) {
        free(all);
        if (o->style == LORA_STYLE_QV)
            return error_set(err, "lora: a %s model has no attention to adapt q and v in "
                                  "(lora_style = peft with lora_mlp = true adapts its MLP layers)",
                             m->arch->name);
        return error_set(err, "lora: a %s model has no %s layers to adapt%s", m->arch->name,
                         o->mlp ? "attention or MLP" : "attention",
                         o->mlp ? "" : " (adapt its MLP layers: lora_mlp = true)");
    }
    // PEFT's "gaussian" init and alpha / r; the authors' unit Gaussian and no scaling
    bool qv = o->style == LORA_STYLE_QV;
    float factor = qv ? 1.0f : o->alpha / (float)o->rank;
    float a_std = qv ? 1.0f : 1.0f / (float)o->rank;
    params_set_trainable(&m->params, false);
    tensor_scope_begin();
    for (int i = 0; i < n; i++) {
        lora_attach(all[i].lora, all[i].in_features, all[i].out_features, o->rank, factor, a_std,
                    m->device, rng);
        lora_params(all[i].lora, all[i].prefix, &m->params);
    }
    tensor_scope_end();
    m->lora = all;
    m->lora_count = n;
    return 0;
}

bool model_has_lora(const Model *m) { return m->lora != NULL; }

void model_set_lora_scale(Model *m, float scale) {
    DMDR_CHECK(m->lora != NULL, "model_set_lora_scale: the model has no LoRA adapter");
    for (int i = 0; i < m->lora_count; i++) m->lora[i].lora->scale = scale;
}

// ---- configuration: ranges, checks, memory ----------------------------------------------------
// One table drives the ranges, both JSON directions and the checks, so a field cannot be
// written and then forgotten on read, nor read without a bound.

#define KIND_BIT(k) (1u << (k))
#define ALL_KINDS (KIND_BIT(MODEL_DIT) | KIND_BIT(MODEL_UNET) | KIND_BIT(MODEL_MLP))
#define IMAGE_KINDS (KIND_BIT(MODEL_DIT) | KIND_BIT(MODEL_UNET))

typedef struct {
    const char *key;
    size_t offset;
    bool is_float;
    double min, max;  // inclusive
    unsigned kinds;   // the architectures that read it: only theirs are checked
} ConfigField;

// The ranges are what the largest sensible model of each architecture needs, not what fits
// in memory: model_config_check compares the total against the memory separately.
#define INT_FIELD(f, lo, hi, k) {#f, offsetof(ModelConfig, f), false, lo, hi, k}
static const ConfigField config_fields[] = {
    INT_FIELD(num_classes, 1, 100000, ALL_KINDS),
    INT_FIELD(in_channels, 1, 64, IMAGE_KINDS),
    INT_FIELD(image_size, 1, 4096, IMAGE_KINDS),
    INT_FIELD(data_dim, 1, 65536, KIND_BIT(MODEL_MLP)),
    INT_FIELD(patch, 1, 64, KIND_BIT(MODEL_DIT)),
    INT_FIELD(hidden, 4, 65536, KIND_BIT(MODEL_DIT)),
    INT_FIELD(depth, 1, 1024, KIND_BIT(MODEL_DIT)),
    INT_FIELD(heads, 1, 1024, KIND_BIT(MODEL_DIT)),
    {"mlp_ratio", offsetof(ModelConfig, mlp_ratio), true, 0.25, 64, KIND_BIT(MODEL_DIT)},
    INT_FIELD(channels, 2, 4096, KIND_BIT(MODEL_UNET)),
    INT_FIELD(levels, 1, MODEL_MAX_LEVELS, KIND_BIT(MODEL_UNET)),
    INT_FIELD(res_blocks, 1, 16, KIND_BIT(MODEL_UNET)),
    INT_FIELD(groups, 1, 1024, KIND_BIT(MODEL_UNET)),
    INT_FIELD(mlp_width, 1, 65536, KIND_BIT(MODEL_MLP)),
    INT_FIELD(mlp_layers, 1, 64, KIND_BIT(MODEL_MLP)),
};
#define CONFIG_FIELD_COUNT ((int)(sizeof config_fields / sizeof config_fields[0]))
// channel_mult: each of the first `levels` elements (UNet)
#define CHANNEL_MULT_MIN 1
#define CHANNEL_MULT_MAX 64

bool model_config_range(const char *key, double *min, double *max) {
    if (strcmp(key, "channel_mult") == 0) {
        *min = CHANNEL_MULT_MIN, *max = CHANNEL_MULT_MAX;
        return true;
    }
    for (int i = 0; i < CONFIG_FIELD_COUNT; i++)
        if (strcmp(key, config_fields[i].key) == 0) {
            *min = config_fields[i].min, *max = config_fields[i].max;
            return true;
        }
    return false;
}

static double field_value(const ModelConfig *cfg, const ConfigField *f) {
    const char *p = (const char *)cfg + f->offset;
    return f->is_float ? (double)*(const float *)p : (double)*(const int *)p;
}

static int check_ranges(const ModelConfig *cfg, Error *err) {
    for (int i = 0; i < CONFIG_FIELD_COUNT; i++) {
        const ConfigField *f = &config_fields[i];
        if (!(f->kinds & KIND_BIT(cfg->kind))) continue;
        double v = field_value(cfg, f);
        if (!(v >= f->min && v <= f->max)) // NaN fails too
            return error_set(err, "model config: %s = %g is outside [%g, %g]", f->key, v, f->min,
                             f->max);
    }
    for (int l = 0; cfg->kind == MODEL_UNET && l < cfg->levels; l++)
        if (cfg->channel_mult[l] < CHANNEL_MULT_MIN || cfg->channel_mult[l] > CHANNEL_MULT_MAX)
            return error_set(err, "model config: channel_mult[%d] = %d is outside [%d, %d]", l,
                             cfg->channel_mult[l], CHANNEL_MULT_MIN, CHANNEL_MULT_MAX);
    return 0;
}

double model_parameter_count(const ModelConfig *cfg) {
    return architectures[cfg->kind]->parameter_count(cfg);
}

// fp32 weights; training adds their gradients, two AdamW moments and an EMA shadow.
double model_memory_bytes(const ModelConfig *cfg, int64_t batch, bool training) {
    const Architecture *a = architectures[cfg->kind];
    double weights = a->parameter_count(cfg) * sizeof(float) * (training ? 5 : 1);
    return weights + (double)batch * a->activation_floats(cfg, training) * sizeof(float);
}

int model_check_memory(const ModelConfig *cfg, int64_t batch, bool training, int copies,
                       const char *what, Error *err) {
    double need = copies * model_memory_bytes(cfg, batch, training), have = host_memory_available();
    if (need <= have) return 0;
    char a[32], b[32], at[48] = "for its weights", count[32] = "";
    if (copies > 1) snprintf(count, sizeof count, "%d copies of ", copies);
    if (batch > 0) snprintf(at, sizeof at, "%s batch %lld", training ? "to train at" : "at", (long long)batch);
    return error_set(err,
                     "%s: %sa %s of %.3g parameters needs about %s %s, more than the %s of "
                     "memory available; lower the model's size%s",
                     what, count, model_kind_name(cfg->kind),
                     model_parameter_count(cfg), bytes_text(need, a, sizeof a), at,
                     bytes_text(have, b, sizeof b), batch > 0 ? " or the batch" : "");
}

int model_config_check(const ModelConfig *cfg, Error *err) {
    if (cfg->kind < 0 || cfg->kind >= MODEL_KIND_COUNT)
        return error_set(err, "model config: unknown kind %d", (int)cfg->kind);
    if (check_ranges(cfg, err) != 0) return -1;
    const Architecture *a = architectures[cfg->kind];
    if (a->check && a->check(cfg, err) != 0) return -1;
    return model_check_memory(cfg, 0, false, 1, "model config", err);
}

char *model_config_to_json(const ModelConfig *cfg) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", model_kind_name(cfg->kind));
    for (int i = 0; i < CONFIG_FIELD_COUNT; i++)
        cJSON_AddNumberToObject(o, config_fields[i].key, field_value(cfg, &config_fields[i]));
    cJSON *mult = cJSON_AddArrayToObject(o, "channel_mult");
    for (int i = 0; i < MODEL_MAX_LEVELS; i++) cJSON_AddItemToArray(mult, cJSON_CreateNumber(cfg->channel_mult[i]));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    DMDR_CHECK(s != NULL, "out of host memory");
    return s;
}

// A JSON number that is an int (a cast of anything else would be undefined).
static bool json_int(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= INT_MIN && d <= INT_MAX) || d != floor(d)) return false;
    *out = (int)d;
    return true;
}

int model_config_from_json(const char *json, ModelConfig *cfg, Error *err) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return error_set(err, "model config: not a JSON object");
    }
    int rc = 0;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    cfg->kind = MODEL_KIND_COUNT;
    for (int k = 0; k < MODEL_KIND_COUNT && cJSON_IsString(kind); k++)
        if (strcmp(kind->valuestring, model_kind_name((ModelKind)k)) == 0) cfg->kind = (ModelKind)k;
    if (cfg->kind == MODEL_KIND_COUNT)
        rc = error_set(err, "model config: \"kind\" must be \"dit\", \"unet\" or \"mlp\"");
    for (int i = 0; i < CONFIG_FIELD_COUNT && rc == 0; i++) {
        const ConfigField *f = &config_fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, f->key);
        char *p = (char *)cfg + f->offset;
        if (!cJSON_IsNumber(v))
            rc = error_set(err, "model config: \"%s\" missing or not a number", f->key);
        else if (f->is_float && !(fabs(v->valuedouble) <= FLT_MAX))
            rc = error_set(err, "model config: \"%s\" = %g is not a finite float", f->key,
                           v->valuedouble);
        else if (f->is_float)
            *(float *)p = (float)v->valuedouble;
        else if (!json_int(v, (int *)p))
            rc = error_set(err, "model config: \"%s\" must be an integer, got %g", f->key,
                           v->valuedouble);
    }
    const cJSON *mult = cJSON_GetObjectItemCaseSensitive(o, "channel_mult");
    if (rc == 0 && (!cJSON_IsArray(mult) || cJSON_GetArraySize(mult) != MODEL_MAX_LEVELS))
        rc = error_set(err, "model config: \"channel_mult\" must be an array of %d integers",
                       MODEL_MAX_LEVELS);
    for (int i = 0; i < MODEL_MAX_LEVELS && rc == 0; i++)
        if (!json_int(cJSON_GetArrayItem(mult, i), &cfg->channel_mult[i]))
            rc = error_set(err, "model config: channel_mult[%d] is not an integer", i);
    cJSON_Delete(o);
    return rc == 0 ? model_config_check(cfg, err) : rc;
}
