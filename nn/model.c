#include "nn/model.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "nn/arch.h"

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
    if (cfg->kind < 0 || cfg->kind >= MODEL_KIND_COUNT) {
        error_set(err, "model: unknown kind %d", (int)cfg->kind);
        return NULL;
    }
    if (cfg->num_classes < 1) {
        error_set(err, "model: num_classes must be at least 1, got %d", cfg->num_classes);
        return NULL;
    }
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

void lora_site_add(LoraSite *out, int max, int *count, Linear *l, const char *prefix,
                   const char *child, bool attention) {
    if (out && *count < max) {
        out[*count] = (LoraSite){.linear = l, .attention = attention};
        params_prefix(out[*count].prefix, prefix, child);
    }
    (*count)++;
}

int model_add_lora(Model *m, int rank, float alpha, bool mlp, Rng *rng, Error *err) {
    if (m->lora) return error_set(err, "lora: the model already has an adapter");
    if (rank < 1) return error_set(err, "lora: rank must be at least 1, got %d", rank);
    int total = m->arch->lora_sites(m->self, NULL, 0);
    LoraSite *all = calloc((size_t)(total > 0 ? total : 1), sizeof *all);
    DMDR_CHECK(all != NULL, "out of host memory");
    m->arch->lora_sites(m->self, all, total);
    int n = 0;
    for (int i = 0; i < total; i++)
        if (all[i].attention || mlp) all[n++] = all[i];
    if (n == 0) {
        free(all);
        return error_set(err, "lora: a %s model has no %s layers to adapt%s", m->arch->name,
                         mlp ? "attention or MLP" : "attention",
                         mlp ? "" : " (adapt its MLP layers: lora_mlp = true)");
    }
    params_set_trainable(&m->params, false);
    tensor_scope_begin();
    for (int i = 0; i < n; i++) {
        linear_add_lora(all[i].linear, rank, alpha, rng);
        params_add(&m->params, all[i].prefix, "lora_A.weight", all[i].linear->lora_a, true);
        params_add(&m->params, all[i].prefix, "lora_B.weight", all[i].linear->lora_b, true);
    }
    tensor_scope_end();
    m->lora = all;
    m->lora_count = n;
    return 0;
}

bool model_has_lora(const Model *m) { return m->lora != NULL; }

void model_set_lora_scale(Model *m, float scale) {
    DMDR_CHECK(m->lora != NULL, "model_set_lora_scale: the model has no LoRA adapter");
    for (int i = 0; i < m->lora_count; i++) m->lora[i].linear->lora_scale = scale;
}

// ---- configuration as JSON ------------------------------------------------------------------
// One table drives both directions, so a field cannot be written and then forgotten on read.

typedef struct {
    const char *key;
    size_t offset;
    bool is_float;
} ConfigField;

#define INT_FIELD(f) {#f, offsetof(ModelConfig, f), false}
static const ConfigField config_fields[] = {
    INT_FIELD(num_classes), INT_FIELD(in_channels), INT_FIELD(image_size), INT_FIELD(data_dim),
    INT_FIELD(patch),       INT_FIELD(hidden),      INT_FIELD(depth),      INT_FIELD(heads),
    {"mlp_ratio", offsetof(ModelConfig, mlp_ratio), true},
    INT_FIELD(channels),    INT_FIELD(levels),      INT_FIELD(res_blocks), INT_FIELD(groups),
    INT_FIELD(mlp_width),   INT_FIELD(mlp_layers),
};
#define CONFIG_FIELD_COUNT ((int)(sizeof config_fields / sizeof config_fields[0]))

char *model_config_to_json(const ModelConfig *cfg) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", model_kind_name(cfg->kind));
    for (int i = 0; i < CONFIG_FIELD_COUNT; i++) {
        const char *p = (const char *)cfg + config_fields[i].offset;
        cJSON_AddNumberToObject(o, config_fields[i].key,
                                config_fields[i].is_float ? (double)*(const float *)p
                                                          : (double)*(const int *)p);
    }
    cJSON *mult = cJSON_AddArrayToObject(o, "channel_mult");
    for (int i = 0; i < 4; i++) cJSON_AddItemToArray(mult, cJSON_CreateNumber(cfg->channel_mult[i]));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    DMDR_CHECK(s != NULL, "out of host memory");
    return s;
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
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, config_fields[i].key);
        char *p = (char *)cfg + config_fields[i].offset;
        if (!cJSON_IsNumber(v))
            rc = error_set(err, "model config: \"%s\" missing or not a number", config_fields[i].key);
        else if (config_fields[i].is_float)
            *(float *)p = (float)v->valuedouble;
        else if (v->valuedouble != (double)(int)v->valuedouble)
            rc = error_set(err, "model config: \"%s\" must be an integer, got %g",
                           config_fields[i].key, v->valuedouble);
        else
            *(int *)p = (int)v->valuedouble;
    }
    const cJSON *mult = cJSON_GetObjectItemCaseSensitive(o, "channel_mult");
    if (rc == 0 && (!cJSON_IsArray(mult) || cJSON_GetArraySize(mult) != 4))
        rc = error_set(err, "model config: \"channel_mult\" must be an array of 4 integers");
    for (int i = 0; i < 4 && rc == 0; i++) {
        const cJSON *v = cJSON_GetArrayItem(mult, i);
        if (!cJSON_IsNumber(v)) rc = error_set(err, "model config: channel_mult[%d] is not a number", i);
        else cfg->channel_mult[i] = (int)v->valuedouble;
    }
    cJSON_Delete(o);
    return rc;
}
