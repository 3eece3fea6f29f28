// dmdr info CHECKPOINT: what a checkpoint or weights file holds: the model it belongs to,
// the training position, every weight with its shape, parameter counts, and the metadata.
// The file is loaded (and so validated) in full, so a corrupt one gets the loader's message.
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "nn/checkpoint.h"
#include "tensor/safetensors.h"
#include "tools/commands.h"

const ConfigCommand info_command = {
    .name = "info",
    .sections = "",
    .min_positional = 1,
    .max_positional = 1,
    .positional_name = "CHECKPOINT",
};

// Training state stored beside the weights (nn/checkpoint.h): summarised, not listed.
static const char *const state_prefixes[] = {"ema.", "optim.m.", "optim.v."};
#define STATE_KINDS 3

static int state_kind(const char *name) {
    for (int k = 0; k < STATE_KINDS; k++)
        if (strncmp(name, state_prefixes[k], strlen(state_prefixes[k])) == 0) return k;
    return -1;
}

// 1234567 -> "1,234,567"
static const char *grouped(int64_t n, char *buf, size_t size) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)n), used = 0;
    for (int i = 0; i < len && used + 2 < (int)size; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[used++] = ',';
        buf[used++] = digits[i];
    }
    buf[used] = '\0';
    return buf;
}

static void print_model_config(const char *json) {
    ModelConfig c;
    Error err;
    if (model_config_from_json(json, &c, &err) != 0) {
        printf("model: unreadable configuration (%s)\n", err.msg);
        return;
    }
    printf("model: %s, %d classes (+ null label)\n", model_kind_name(c.kind), c.num_classes);
    switch (c.kind) {
    case MODEL_DIT:
        printf("  input %dx%dx%d, patch %d, hidden %d, depth %d, heads %d, mlp_ratio %g\n",
               c.in_channels, c.image_size, c.image_size, c.patch, c.hidden, c.depth, c.heads,
               (double)c.mlp_ratio);
        break;
    case MODEL_UNET:
        printf("  input %dx%dx%d, channels %d, levels %d, channel_mult", c.in_channels,
               c.image_size, c.image_size, c.channels, c.levels);
        for (int l = 0; l < c.levels && l < 4; l++) printf("%s%d", l ? "," : " ", c.channel_mult[l]);
        printf(", res_blocks %d, groups %d\n", c.res_blocks, c.groups);
        break;
    default:
        printf("  data_dim %d, mlp_width %d, mlp_layers %d\n", c.data_dim, c.mlp_width, c.mlp_layers);
        break;
    }
}

// The stored run configuration without its comments, indented.
static void print_run_config(const char *ini) {
    printf("run configuration (dmdr train-teacher --config accepts it):\n");
    for (const char *p = ini; *p;) {
        size_t len = strcspn(p, "\n");
        if (len > 0 && p[0] != '#') printf("  %.*s\n", (int)len, p);
        p += len;
        if (*p) p++;
    }
}

static void print_info(const char *path, const Safetensors *st) {
    const char *format = safetensors_metadata(st, "format");
    printf("%s: %s, %d tensors\n", path, format ? format : "safetensors (not written by dmdr)",
           st->count);
    const char *mc = safetensors_metadata(st, "model_config");
    if (mc) print_model_config(mc);
    const char *step = safetensors_metadata(st, "step");
    if (step) {
        const char *epoch = safetensors_metadata(st, "data.epoch");
        const char *index = safetensors_metadata(st, "data.index");
        printf("training: step %s", step);
        if (epoch && index) printf(", data epoch %s index %s", epoch, index);
        printf("\n");
    }

    int64_t weights = 0, state[STATE_KINDS] = {0};
    int state_count[STATE_KINDS] = {0}, width = 0;
    for (int i = 0; i < st->count; i++)
        if (state_kind(st->names[i]) < 0 && (int)strlen(st->names[i]) > width)
            width = (int)strlen(st->names[i]);
    printf("\n%-*s  dtype  shape\n", width, "weights");
    for (int i = 0; i < st->count; i++) {
        int kind = state_kind(st->names[i]);
        int64_t n = tensor_numel(st->tensors[i]);
        if (kind >= 0) {
            state[kind] += n;
            state_count[kind]++;
            continue;
        }
        char shape[128];
        weights += n;
        printf("%-*s  %-5s  %s\n", width, st->names[i], dtype_name(st->tensors[i]->dtype),
               tensor_shape_str(st->tensors[i], shape, sizeof shape));
    }
    char buf[32];
    printf("\nparameters: %s\n", grouped(weights, buf, sizeof buf));
    static const char *const what[STATE_KINDS] = {"EMA shadows", "AdamW first moments",
                                                  "AdamW second moments"};
    for (int k = 0; k < STATE_KINDS; k++)
        if (state_count[k])
            printf("%s: %d tensors (%s*), %s values\n", what[k], state_count[k], state_prefixes[k],
                   grouped(state[k], buf, sizeof buf));

    const char *run_config = NULL;
    bool header = false;
    for (int i = 0; i < st->metadata_count; i++) {
        const char *key = st->metadata_keys[i];
        if (strcmp(key, "model_config") == 0) continue; // shown above
        if (strcmp(key, RUN_CONFIG_KEY) == 0) {
            run_config = st->metadata_values[i];
            continue;
        }
        if (!header) printf("\nmetadata:\n");
        header = true;
        printf("  %s = %s\n", key, st->metadata_values[i]);
    }
    if (run_config) {
        printf("\n");
        print_run_config(run_config);
    }
}

int info_main(int argc, char **argv) {
    Config cfg;
    ConfigArgs args;
    Error err;
    int rc = command_config(&info_command, argc, argv, NULL, &cfg, &args);
    if (rc >= 0) return rc;
    Safetensors st;
    if (safetensors_load(args.positional[0], &st, &err) != 0) {
        fprintf(stderr, "dmdr info: %s\n", err.msg);
        return 1;
    }
    print_info(args.positional[0], &st);
    safetensors_free(&st);
    return 0;
}
