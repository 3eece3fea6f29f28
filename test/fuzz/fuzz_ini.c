// Fuzz target: the INI configuration reader (tools/config.c over inih), as `--config FILE` and
// a checkpoint's stored run configuration are read: config_load_string over the default
// preset with every section allowed, and config_load_file with train-teacher's sections.
// Covers line lengths, sections, bare and qualified keys, repeated keys, `preset`, and the
// typed value parsers (ints, floats, enums, bools, int lists, strings) with their ranges.
// A configuration that loads must also survive config_to_ini -> config_load_string unchanged
// (how a run stores its settings and a resume reads them back).
#include <stdlib.h>
#include <string.h>

#include "test/fuzz/fuzz.h"
#include "tools/commands.h" // train_teacher_command

// What config_resolve loads a file over: the table defaults under the default preset.
static void start(Config *cfg) {
    Error err;
    config_defaults(cfg);
    if (config_apply_preset(cfg, CONFIG_DEFAULT_PRESET, &err)) fuzz_fail(err.msg, NULL);
}

int fuzz_ini(const uint8_t *data, size_t size) {
    char *text = fuzz_string(data, size);
    Config cfg;
    Error err = {{0}};
    start(&cfg);
    if (config_load_string(&cfg, text, "fuzz.ini", NULL, &err) == 0)
        fuzz_check_config_round_trip(&cfg);
    else
        fuzz_refused(err.msg);
    free(text);

    char path[4096];
    fuzz_write_file(fuzz_path(path, sizeof path, "fuzz.ini"), data, size);
    start(&cfg);
    if (config_load_file(&cfg, path, train_teacher_command.sections, &err) == 0)
        fuzz_check_config_round_trip(&cfg);
    else
        fuzz_refused(err.msg);
    return 0;
}

FUZZ_ENTRY(fuzz_ini)
