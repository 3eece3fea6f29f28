// Fuzz target: the command-line parser, config_resolve (tools/config.c), with the
// ConfigCommand tables of train-teacher, sample, eval, distill, train-classifier and info
// (tools/commands.h). The input is argv, split on NUL or newline bytes; argv[0] names the
// command (another name: the input is skipped). Covers --key value, --key=value, bare
// booleans, dashes for underscores, qualified keys, the command's own flags, positionals,
// --help, --preset, and --config: its value is replaced by a small INI file of this target's
// (so no input reads a file of the machine), which still runs the preset and file ordering.
// A resolved configuration must survive config_to_ini -> config_load_string unchanged, as a
// run's stored settings must when it is resumed.
#include <stdlib.h>
#include <string.h>

#include "test/fuzz/fuzz.h"
#include "tools/commands.h"

static const ConfigCommand *const commands[] = {&train_teacher_command, &sample_command,
                                                &eval_command, &distill_command,
                                                &train_classifier_command, &info_command};

int fuzz_flags(const uint8_t *data, size_t size) {
    static char ini[4096];
    if (!ini[0]) {
        static const char text[] = "preset = tiny\n[sample]\nsteps = 4\n[run]\nseed = 7\n";
        fuzz_write_file(fuzz_path(ini, sizeof ini, "flags.ini"), (const uint8_t *)text,
                        strlen(text));
    }
    char *buf = fuzz_string(data, size), *end = buf + size;
    int argc = 0;
    char **argv = malloc((size + 2) * sizeof *argv);
    char **config_values = malloc((size + 2) * sizeof *config_values); // "--config=<ini>"
    int config_count = 0;
    if (!argv || !config_values) abort();
    // [p, the next NUL or newline) is one argument; a separator at the very end adds none
    for (char *p = buf; p < end;) {
        char *q = p;
        while (q < end && *q != '\0' && *q != '\n') q++;
        *q = '\0';
        argv[argc++] = p;
        p = q + 1;
    }
    argv[argc] = NULL;
    const ConfigCommand *cmd = NULL;
    for (size_t k = 0; argc > 0 && k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(argv[0], commands[k]->name) == 0) cmd = commands[k];
    if (cmd) {
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
                argv[++i] = ini;
            } else if (strncmp(argv[i], "--config=", 9) == 0) {
                size_t n = strlen(ini) + 10;
                char *a = config_values[config_count++] = malloc(n);
                if (!a) abort();
                snprintf(a, n, "--config=%s", ini);
                argv[i] = a;
            }
        }
        Config cfg;
        ConfigArgs args;
        Error err = {{0}};
        if (config_resolve(&cfg, cmd, argc, argv, NULL, &args, &err) == 0) {
            if (args.positional_count > cmd->max_positional)
                fuzz_fail("no more positionals than the command takes", NULL);
            if (!args.help) {
                if (args.positional_count < cmd->min_positional)
                    fuzz_fail("no fewer positionals than the command needs", NULL);
                fuzz_check_config_round_trip(&cfg);
            }
        } else {
            fuzz_refused(err.msg);
        }
    }
    for (int i = 0; i < config_count; i++) free(config_values[i]);
    free(config_values);
    free(argv);
    free(buf);
    return 0;
}

FUZZ_ENTRY(fuzz_flags)
