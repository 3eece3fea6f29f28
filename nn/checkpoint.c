// Training checkpoints. One function (visit_part) names every tensor for both save and load,
// so what is written and what is read cannot drift apart; the metadata keys are written by
// save_metadata and read back by stage_metadata. Loading stages everything (tensor pairs to
// copy, parsed numbers) and writes the live state only once the whole file has checked out.
#include "nn/checkpoint.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/check.h"
#include "nn/params_internal.h"
#include "tensor/safetensors.h"

#define NAME_MAX_LEN (PARAM_NAME_MAX + 64)
// Largest integer a JSON number (a double) holds exactly.
#define JSON_INT_MAX 9007199254740992ull

// ---- growing string lists ------------------------------------------------------------------

typedef struct {
    int count, capacity;
    char **items;     // malloc'd
    Tensor **tensors; // parallel to items when the list names tensors, else NULLs
} Strings;

// Appends a formatted string (and t, for a list of tensor names).
static void strings_add(Strings *s, Tensor *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void strings_add(Strings *s, Tensor *t, const char *fmt, ...) {
    if (s->count == s->capacity) {
        s->capacity = s->capacity ? 2 * s->capacity : 64;
        s->items = realloc(s->items, (size_t)s->capacity * sizeof *s->items);
        s->tensors = realloc(s->tensors, (size_t)s->capacity * sizeof *s->tensors);
        DMDR_CHECK(s->items && s->tensors, "out of host memory");
    }
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *str = malloc((size_t)n + 1);
    DMDR_CHECK(str != NULL, "out of host memory");
    vsnprintf(str, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    s->items[s->count] = str;
    s->tensors[s->count++] = t;
}

static void strings_free(Strings *s) {
    for (int i = 0; i < s->count; i++) free(s->items[i]);
    free(s->items);
    free(s->tensors);
    *s = (Strings){0};
}

static const char *part_prefix(const CheckpointPart *part) {
    return part->prefix ? part->prefix : "";
}

// ---- the tensors of a part -----------------------------------------------------------------

typedef void (*TensorVisit)(void *ctx, const char *name, Tensor *t);

// Calls visit with the file name of every tensor the part stores.
static void visit_part(const CheckpointPart *part, TensorVisit visit, void *ctx) {
    const char *prefix = part_prefix(part);
    char name[NAME_MAX_LEN];
#define VISIT(t, ...)                                                                 \
    do {                                                                              \
        int n_ = snprintf(name, sizeof name, __VA_ARGS__);                            \
        DMDR_CHECK(n_ > 0 && n_ < (int)sizeof name, "checkpoint: name too long");      \
        visit(ctx, name, (t));                                                        \
    } while (0)
    for (int i = 0; i < part->params->count; i++)
        VISIT(part->params->items[i].tensor, "%s%s", prefix, part->params->items[i].name);
    for (int i = 0; part->ema && i < part->ema->shadows.count; i++)
        VISIT(part->ema->shadows.items[i].tensor, "ema.%s%s", prefix,
              part->ema->shadows.items[i].name);
    for (int i = 0; part->optim && i < part->optim->params.count; i++) {
        VISIT(part->optim->m[i], "optim.m.%s%s", prefix, part->optim->params.items[i].name);
        VISIT(part->optim->v[i], "optim.v.%s%s", prefix, part->optim->params.items[i].name);
    }
#undef VISIT
}

static void check_struct(const Checkpoint *ck) {
    DMDR_CHECK(ck->part_count >= 1 && ck->part_count <= CHECKPOINT_MAX_PARTS,
               "checkpoint: %d parts", ck->part_count);
    DMDR_CHECK(ck->rng_count >= 0 && ck->rng_count <= CHECKPOINT_MAX_RNGS, "checkpoint: %d rngs",
               ck->rng_count);
    for (int p = 0; p < ck->part_count; p++)
        DMDR_CHECK(ck->parts[p].params != NULL, "checkpoint: part %d has no params", p);
    for (int r = 0; r < ck->rng_count; r++) {
        const char *name = ck->rngs[r].name;
        DMDR_CHECK(name && *name && ck->rngs[r].rng, "checkpoint: rng %d unnamed or NULL", r);
        for (const char *c = name; *c; c++)
            DMDR_CHECK(isalnum((unsigned char)*c) || *c == '_', "checkpoint: rng name '%s'", name);
    }
}

// ---- saving --------------------------------------------------------------------------------

static void collect_tensor(void *ctx, const char *name, Tensor *t) {
    strings_add(ctx, t, "%s", name);
}

// "{}" or {"name": count, ...} for the parameters whose count is not opt->step (malloc'd)
static char *param_steps_json(const AdamW *opt) {
    cJSON *o = cJSON_CreateObject();
    DMDR_CHECK(o != NULL, "out of host memory");
    for (int i = 0; i < opt->params.count; i++)
        if (opt->steps[i] != opt->step)
            DMDR_CHECK(cJSON_AddNumberToObject(o, opt->params.items[i].name,
                                               (double)opt->steps[i]) != NULL,
                       "out of host memory");
    char *s = cJSON_PrintUnformatted(o);
    DMDR_CHECK(s != NULL, "out of host memory");
    cJSON_Delete(o);
    return s;
}

static void save_metadata(const Checkpoint *ck, Strings *keys, Strings *values) {
    strings_add(keys, NULL, "format");
    strings_add(values, NULL, CHECKPOINT_FORMAT);
    strings_add(keys, NULL, "format_version");
    strings_add(values, NULL, "%d", CHECKPOINT_FORMAT_VERSION);
    for (int p = 0; p < ck->part_count; p++) {
        const CheckpointPart *part = &ck->parts[p];
        const char *prefix = part_prefix(part);
        if (part->config) {
            char *json = model_config_to_json(part->config);
            strings_add(keys, NULL, "%smodel_config", prefix);
            strings_add(values, NULL, "%s", json);
            free(json);
        }
        if (part->optim) {
            char *json = param_steps_json(part->optim);
            strings_add(keys, NULL, "%soptim.step", prefix);
            strings_add(values, NULL, "%lld", (long long)part->optim->step);
            strings_add(keys, NULL, "%soptim.param_steps", prefix);
            strings_add(values, NULL, "%s", json);
            cJSON_free(json);
        }
    }
    if (ck->step) {
        strings_add(keys, NULL, "step");
        strings_add(values, NULL, "%lld", (long long)*ck->step);
    }
    for (int r = 0; r < ck->rng_count; r++) {
        strings_add(keys, NULL, "rng.%s.seed", ck->rngs[r].name);
        strings_add(values, NULL, "%llu", (unsigned long long)ck->rngs[r].rng->seed);
        strings_add(keys, NULL, "rng.%s.offset", ck->rngs[r].name);
        strings_add(values, NULL, "%llu", (unsigned long long)ck->rngs[r].rng->offset);
    }
    if (ck->data) {
        strings_add(keys, NULL, "data.epoch");
        strings_add(values, NULL, "%lld", (long long)ck->data->epoch);
        strings_add(keys, NULL, "data.index");
        strings_add(values, NULL, "%lld", (long long)ck->data->index);
    }
    for (int i = 0; i < ck->extra_count; i++) {
        strings_add(keys, NULL, "%s", ck->extra_keys[i]);
        strings_add(values, NULL, "%s", ck->extra_values[i]);
    }
}

void checkpoint_add_part(Checkpoint *ck, CheckpointPart part) {
    DMDR_CHECK(ck->part_count < CHECKPOINT_MAX_PARTS, "checkpoint: more than %d parts",
               CHECKPOINT_MAX_PARTS);
    ck->parts[ck->part_count++] = part;
}

int checkpoint_save(const char *path, const Checkpoint *ck, Error *err) {
    check_struct(ck);
    Strings names = {0}, keys = {0}, values = {0};
    for (int p = 0; p < ck->part_count; p++) visit_part(&ck->parts[p], collect_tensor, &names);
    save_metadata(ck, &keys, &values);
    // a clash between an extra key and a reserved one is reported by the writer's duplicate check
    int rc = safetensors_save(path, names.count, (const char *const *)names.items, names.tensors,
                              keys.count, (const char *const *)keys.items,
                              (const char *const *)values.items, err);
    strings_free(&names);
    strings_free(&keys);
    strings_free(&values);
    return rc;
}

// ---- parsing metadata ------------------------------------------------------------------------

// A decimal integer in [0, max] spelling the whole string (no sign, no spaces).
static bool parse_decimal(const char *s, uint64_t max, uint64_t *out) {
    if (!isdigit((unsigned char)s[0])) return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) return false;
    *out = v;
    return true;
}

static const char *required_metadata(const Safetensors *st, const char *path, const char *key,
                                     Error *err) {
    const char *v = safetensors_metadata(st, key);
    if (!v) error_set(err, "%s: metadata '%s' is missing", path, key);
    return v;
}

static int metadata_decimal(const Safetensors *st, const char *path, const char *key, uint64_t max,
                            uint64_t *out, Error *err) {
    const char *v = required_metadata(st, path, key, err);
    if (!v) return -1;
    if (!parse_decimal(v, max, out))
        return error_set(err,
                         "%s: metadata '%s' is \"%.40s\", expected a decimal integer in [0, %llu]",
                         path, key, v, (unsigned long long)max);
    return 0;
}

static int metadata_int64(const Safetensors *st, const char *path, const char *key, int64_t *out,
                          Error *err) {
    uint64_t v;
    if (metadata_decimal(st, path, key, INT64_MAX, &v, err)) return -1;
    *out = (int64_t)v;
    return 0;
}

static int check_format(const Safetensors *st, const char *path, Error *err) {
    const char *format = safetensors_metadata(st, "format");
    if (!format || strcmp(format, CHECKPOINT_FORMAT) != 0)
        return error_set(err,
                         "%s: metadata 'format' is %s%s%s, expected \"" CHECKPOINT_FORMAT
                         "\": not a dmdr training checkpoint (load weights with "
                         "checkpoint_load_weights)",
                         path, format ? "\"" : "", format ? format : "missing", format ? "\"" : "");
    uint64_t version;
    if (metadata_decimal(st, path, "format_version", UINT32_MAX, &version, err)) return -1;
    if (version != CHECKPOINT_FORMAT_VERSION)
        return error_set(err, "%s: metadata 'format_version' is %llu; this build reads version %d",
                         path, (unsigned long long)version, CHECKPOINT_FORMAT_VERSION);
    return 0;
}

// The stored configuration must be the one the caller built its model from.
static int check_model_config(const char *stored, const char *path, const char *key,
                              const ModelConfig *want, Error *err) {
    ModelConfig got;
    Error inner;
    if (model_config_from_json(stored, &got, &inner))
        return error_set(err, "%s: metadata '%s': %s", path, key, inner.msg);
    char *a = model_config_to_json(&got), *b = model_config_to_json(want);
    int rc = strcmp(a, b) == 0 ? 0
                               : error_set(err, "%s: metadata '%s': the checkpoint holds %s, "
                                                "this run's model is %s",
                                           path, key, a, b);
    free(a);
    free(b);
    return rc;
}

// ---- loading -------------------------------------------------------------------------------

// Everything checkpoint_load will write, parsed and checked.
typedef struct {
    const Safetensors *st;
    const char *path;
    Error *err;
    int rc;
    int copy_count, copy_capacity;
    Tensor **dst, **src; // the file's CPU tensor src[i] goes into the live dst[i]
    bool *claimed; // per tensor of the file
    int64_t optim_step[CHECKPOINT_MAX_PARTS];
    int64_t *param_steps[CHECKPOINT_MAX_PARTS];
    Rng rngs[CHECKPOINT_MAX_RNGS];
    int64_t step;
    DataPosition data;
} Stage;

static void stage_tensor(void *ctx, const char *name, Tensor *dst) {
    Stage *s = ctx;
    if (s->rc) return;
    Tensor *src = params_match(s->st, s->path, name, dst, s->err);
    if (!src) {
        s->rc = -1;
        return;
    }
    for (int i = 0; i < s->st->count; i++)
        if (s->st->tensors[i] == src) s->claimed[i] = true;
    if (s->copy_count == s->copy_capacity) {
        s->copy_capacity = s->copy_capacity ? 2 * s->copy_capacity : 64;
        s->dst = realloc(s->dst, (size_t)s->copy_capacity * sizeof *s->dst);
        s->src = realloc(s->src, (size_t)s->copy_capacity * sizeof *s->src);
        DMDR_CHECK(s->dst && s->src, "out of host memory");
    }
    s->dst[s->copy_count] = dst;
    s->src[s->copy_count++] = src;
}

// <prefix>optim.step and <prefix>optim.param_steps of one part into the stage.
static int stage_optim(Stage *s, const CheckpointPart *part, int p) {
    const AdamW *opt = part->optim;
    const char *prefix = part_prefix(part);
    char key[NAME_MAX_LEN];
    snprintf(key, sizeof key, "%soptim.step", prefix);
    if (metadata_int64(s->st, s->path, key, &s->optim_step[p], s->err)) return -1;
    s->param_steps[p] = malloc((size_t)(opt->params.count + 1) * sizeof *s->param_steps[p]);
    DMDR_CHECK(s->param_steps[p] != NULL, "out of host memory");
    for (int i = 0; i < opt->params.count; i++) s->param_steps[p][i] = s->optim_step[p];
    snprintf(key, sizeof key, "%soptim.param_steps", prefix);
    const char *text = required_metadata(s->st, s->path, key, s->err);
    if (!text) return -1;
    cJSON *o = cJSON_Parse(text);
    int rc = cJSON_IsObject(o)
                 ? 0
                 : error_set(s->err, "%s: metadata '%s' is not a JSON object", s->path, key);
    const cJSON *item;
    cJSON_ArrayForEach(item, o) {
        if (rc) break;
        Param *param = params_find(&opt->params, item->string);
        double v = cJSON_IsNumber(item) ? item->valuedouble : -1.0;
        if (!param)
            rc = error_set(s->err, "%s: metadata '%s': '%s' is not a parameter the optimiser "
                                   "tracks",
                           s->path, key, item->string);
        else if (!(v >= 0.0 && v <= (double)JSON_INT_MAX && v == (double)(int64_t)v))
            rc = error_set(s->err, "%s: metadata '%s': the count of '%s' is not a non-negative "
                                   "integer",
                           s->path, key, item->string);
        else
            s->param_steps[p][param - opt->params.items] = (int64_t)v;
    }
    cJSON_Delete(o);
    return rc;
}

static int stage_metadata(Stage *s, const Checkpoint *ck) {
    char key[NAME_MAX_LEN];
    for (int p = 0; p < ck->part_count; p++) {
        const CheckpointPart *part = &ck->parts[p];
        if (part->config) {
            snprintf(key, sizeof key, "%smodel_config", part_prefix(part));
            const char *stored = required_metadata(s->st, s->path, key, s->err);
            if (!stored || check_model_config(stored, s->path, key, part->config, s->err))
                return -1;
        }
        if (part->optim && stage_optim(s, part, p)) return -1;
    }
    if (ck->step && metadata_int64(s->st, s->path, "step", &s->step, s->err)) return -1;
    for (int r = 0; r < ck->rng_count; r++) {
        snprintf(key, sizeof key, "rng.%s.seed", ck->rngs[r].name);
        if (metadata_decimal(s->st, s->path, key, UINT64_MAX, &s->rngs[r].seed, s->err)) return -1;
        snprintf(key, sizeof key, "rng.%s.offset", ck->rngs[r].name);
        if (metadata_decimal(s->st, s->path, key, UINT64_MAX, &s->rngs[r].offset, s->err))
            return -1;
    }
    if (ck->data && (metadata_int64(s->st, s->path, "data.epoch", &s->data.epoch, s->err) ||
                     metadata_int64(s->st, s->path, "data.index", &s->data.index, s->err)))
        return -1;
    return 0;
}

// Weights nobody asked for mean the file holds another model; state under ema./optim. that
// the caller did not ask for is skipped on purpose.
static int check_unclaimed(const Stage *s) {
    for (int i = 0; i < s->st->count; i++) {
        const char *name = s->st->names[i];
        if (s->claimed[i] || strncmp(name, "ema.", 4) == 0 || strncmp(name, "optim.", 6) == 0)
            continue;
        return error_set(s->err, "%s: tensor '%s' belongs to no part of the model being restored",
                         s->path, name);
    }
    return 0;
}

static void apply_stage(const Stage *s, const Checkpoint *ck) {
    for (int i = 0; i < s->copy_count; i++) tensor_copy_into(s->dst[i], s->src[i]);
    for (int p = 0; p < ck->part_count; p++) {
        AdamW *opt = ck->parts[p].optim;
        if (!opt) continue;
        opt->step = s->optim_step[p];
        memcpy(opt->steps, s->param_steps[p], (size_t)opt->params.count * sizeof *opt->steps);
    }
    for (int r = 0; r < ck->rng_count; r++) *ck->rngs[r].rng = s->rngs[r];
    if (ck->step) *ck->step = s->step;
    if (ck->data) *ck->data = s->data;
}

int checkpoint_load(const char *path, const Checkpoint *ck, Error *err) {
    check_struct(ck);
    Safetensors st;
    if (safetensors_load(path, &st, err)) return -1;
    Stage s = {.st = &st, .path = path, .err = err};
    s.claimed = calloc((size_t)st.count + 1, sizeof *s.claimed);
    DMDR_CHECK(s.claimed != NULL, "out of host memory");
    s.rc = check_format(&st, path, err);
    for (int p = 0; p < ck->part_count && s.rc == 0; p++)
        visit_part(&ck->parts[p], stage_tensor, &s);
    if (s.rc == 0) s.rc = check_unclaimed(&s);
    if (s.rc == 0) s.rc = stage_metadata(&s, ck);
    if (s.rc == 0) s.rc = params_check_finite(&st, path, s.src, s.copy_count, err);
    if (s.rc == 0) apply_stage(&s, ck);
    for (int p = 0; p < CHECKPOINT_MAX_PARTS; p++) free(s.param_steps[p]);
    free(s.claimed);
    free(s.dst);
    free(s.src);
    safetensors_free(&st);
    return s.rc;
}

// ---- weights only ----------------------------------------------------------------------------

int checkpoint_load_weights(const char *path, const ParamList *params, bool ema, Error *err) {
    Safetensors st;
    if (safetensors_load(path, &st, err)) return -1;
    bool has_ema = false;
    for (int i = 0; i < st.count; i++) has_ema |= strncmp(st.names[i], "ema.", 4) == 0;
    int rc = ema && !has_ema ? error_set(err, "%s: EMA weights asked for, but the file has no "
                                              "'ema.' tensors", path)
                             : 0;
    Tensor **src = calloc((size_t)params->count + 1, sizeof *src);
    DMDR_CHECK(src != NULL, "out of host memory");
    char name[NAME_MAX_LEN];
    for (int i = 0; i < params->count && rc == 0; i++) {
        const Param *p = &params->items[i];
        snprintf(name, sizeof name, "ema.%s", p->name);
        const char *use = ema && safetensors_find(&st, name) ? name : p->name;
        src[i] = params_match(&st, path, use, p->tensor, err);
        if (!src[i]) rc = -1;
    }
    if (rc == 0) rc = params_check_finite(&st, path, src, params->count, err);
    for (int i = 0; i < params->count && rc == 0; i++)
        tensor_copy_into(params->items[i].tensor, src[i]);
    free(src);
    safetensors_free(&st);
    return rc;
}

int checkpoint_export_weights(const char *path, const ParamList *params, const Ema *ema,
                              const ModelConfig *cfg, int extra_count,
                              const char *const *extra_keys, const char *const *extra_values,
                              Error *err) {
    ParamList out = {0};
    for (int i = 0; i < params->count; i++) {
        const Param *p = &params->items[i];
        const Param *shadow = ema ? params_find(&ema->shadows, p->name) : NULL;
        params_add(&out, NULL, p->name, shadow ? shadow->tensor : p->tensor, p->trainable);
    }
    char version[16];
    snprintf(version, sizeof version, "%d", CHECKPOINT_FORMAT_VERSION);
    char *json = cfg ? model_config_to_json(cfg) : NULL;
    int n = 0;
    const char **keys = malloc((size_t)(3 + extra_count) * sizeof *keys);
    const char **values = malloc((size_t)(3 + extra_count) * sizeof *values);
    DMDR_CHECK(keys && values, "out of host memory");
    keys[n] = "format", values[n++] = CHECKPOINT_WEIGHTS_FORMAT;
    keys[n] = "format_version", values[n++] = version;
    if (json) keys[n] = "model_config", values[n++] = json;
    for (int i = 0; i < extra_count; i++) keys[n] = extra_keys[i], values[n++] = extra_values[i];
    int rc = params_save(&out, path, n, keys, values, err);
    free(keys);
    free(values);
    free(json);
    params_free(&out);
    return rc;
}

// ---- metadata only ---------------------------------------------------------------------------

// The JSON header of a safetensors file, read without its data. The checks are the ones a
// full load makes first (length within the file, a JSON object); the data is not validated.
static cJSON *read_header(const char *path, Error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        error_set(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    unsigned char prefix[8];
    cJSON *root = NULL;
    char *text = NULL;
    uint64_t n = 0;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size < 8 || fread(prefix, 1, 8, f) != 8) {
        error_set(err, "%s: shorter than the 8-byte header length of a safetensors file", path);
        goto done;
    }
    for (int i = 7; i >= 0; i--) n = n << 8 | prefix[i];
    if (n > (uint64_t)sb.st_size - 8 || n > 100u * 1000 * 1000) {
        error_set(err, "%s: header length %llu does not fit the file (%lld bytes)", path,
                  (unsigned long long)n, (long long)sb.st_size);
        goto done;
    }
    text = malloc((size_t)n + 1);
    DMDR_CHECK(text != NULL, "out of host memory");
    if (fread(text, 1, (size_t)n, f) != (size_t)n) {
        error_set(err, "%s: cannot read the header", path);
        goto done;
    }
    text[n] = '\0';
    root = cJSON_Parse(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        root = NULL;
        error_set(err, "%s: header is not a JSON object", path);
    }
done:
    free(text);
    fclose(f);
    return root;
}

int checkpoint_read_metadata(const char *path, CheckpointMetadata *out, Error *err) {
    *out = (CheckpointMetadata){0};
    cJSON *root = read_header(path, err);
    if (!root) return -1;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    int rc = meta && !cJSON_IsObject(meta)
                 ? error_set(err, "%s: __metadata__ is not an object", path)
                 : 0;
    int n = meta ? cJSON_GetArraySize(meta) : 0;
    out->keys = calloc((size_t)n + 1, sizeof *out->keys);
    out->values = calloc((size_t)n + 1, sizeof *out->values);
    DMDR_CHECK(out->keys && out->values, "out of host memory");
    const cJSON *item = rc == 0 && meta ? meta->child : NULL;
    for (; item && rc == 0; item = item->next) {
        if (!cJSON_IsString(item)) {
            rc = error_set(err, "%s: metadata '%s' is not a string", path, item->string);
            break;
        }
        out->keys[out->count] = strdup(item->string);
        out->values[out->count] = strdup(item->valuestring);
        DMDR_CHECK(out->keys[out->count] && out->values[out->count], "out of host memory");
        out->count++;
    }
    cJSON_Delete(root);
    if (rc) checkpoint_metadata_free(out);
    return rc;
}

const char *checkpoint_metadata_get(const CheckpointMetadata *md, const char *key) {
    for (int i = 0; i < md->count; i++)
        if (strcmp(md->keys[i], key) == 0) return md->values[i];
    return NULL;
}

void checkpoint_metadata_free(CheckpointMetadata *md) {
    for (int i = 0; i < md->count; i++) {
        free(md->keys[i]);
        free(md->values[i]);
    }
    free(md->keys);
    free(md->values);
    *md = (CheckpointMetadata){0};
}

int checkpoint_read_model_config(const char *path, ModelConfig *cfg, Error *err) {
    CheckpointMetadata md;
    if (checkpoint_read_metadata(path, &md, err)) return -1;
    const char *json = checkpoint_metadata_get(&md, "model_config");
    Error inner;
    int rc = 0;
    if (!json)
        rc = error_set(err, "%s: metadata 'model_config' is missing: not a dmdr checkpoint or "
                            "weights file",
                       path);
    else if (model_config_from_json(json, cfg, &inner))
        rc = error_set(err, "%s: metadata 'model_config': %s", path, inner.msg);
    checkpoint_metadata_free(&md);
    return rc;
}
