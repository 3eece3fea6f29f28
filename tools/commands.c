// What every command does first: resolve its settings, over a run's stored ones.
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "nn/checkpoint.h"
#include "tools/commands.h"

int command_config(const ConfigCommand *cmd, int argc, char **argv, const char *stored,
                   Config *cfg, ConfigArgs *args) {
    Error err;
    if (config_resolve(cfg, cmd, argc, argv, stored, args, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    if (args->help) {
        print_command_help(cmd->name);
        return 0;
    }
    return -1;
}

int read_run_config(const char *checkpoint, char **ini, Error *err) {
    *ini = NULL;
    CheckpointMetadata md;
    if (checkpoint_read_metadata(checkpoint, &md, err) != 0) return -1;
    const char *stored = checkpoint_metadata_get(&md, RUN_CONFIG_KEY);
    if (stored) {
        *ini = strdup(stored);
        DMDR_CHECK(*ini != NULL, "out of host memory");
    }
    checkpoint_metadata_free(&md);
    return 0;
}
