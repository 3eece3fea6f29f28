// The command line's infrastructure. Settings (tools/config.h): presets, the precedence
// preset < file < flags, the section order of bare names, every kind of bad input with the
// message that names it, the written configuration reading back to the same one. Run
// directories (tools/rundir.h) and the progress display (tools/progress.h).
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diffusion/flow.h"
#include "diffusion/sampler.h"
#include "test/test_util.h"
#include "tools/config.h"
#include "tools/progress.h"
#include "tools/rundir.h"

static const ConfigCommand train_cmd = {
    .name = "train-teacher",
    .sections = "train model data sample run",
    .own_flags = {"resume"},
};
static const ConfigCommand sample_cmd = {
    .name = "sample",
    .sections = "sample run",
    .min_positional = 1,
    .max_positional = 1,
    .positional_name = "CHECKPOINT",
};

// Writes text to a fresh temporary file whose path goes to path (a 64-byte buffer).
static void write_temp(char *path, const char *text) {
    snprintf(path, 64, "/tmp/dmdr-config-XXXXXX");
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

// Resolves "cmd args..." (space-separated, no quoting); returns the resolve status.
static int resolve(const ConfigCommand *cmd, const char *line, Config *cfg, ConfigArgs *args,
                   Error *err) {
    static char buf[1024];
    char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s %s", cmd->name, line);
    for (char *tok = strtok(buf, " "); tok && argc < 32; tok = strtok(NULL, " ")) argv[argc++] = tok;
    ConfigArgs unused;
    return config_resolve(cfg, cmd, argc, argv, NULL, args ? args : &unused, err);
}

static void expect_error(const ConfigCommand *cmd, const char *line, const char *needle) {
    Config cfg;
    Error err = {""};
    ck_assert_msg(resolve(cmd, line, &cfg, NULL, &err) == -1, "'%s' was accepted", line);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "'%s': message \"%s\" lacks \"%s\"", line,
                  err.msg, needle);
}

static void expect_ok(const ConfigCommand *cmd, const char *line, Config *cfg) {
    Error err = {""};
    ck_assert_msg(resolve(cmd, line, cfg, NULL, &err) == 0, "'%s': %s", line, err.msg);
}

START_TEST(test_presets_resolve) {
    Config c;
    expect_ok(&train_cmd, "--preset toy2d", &c);
    ck_assert_str_eq(c.preset, "toy2d");
    ck_assert_int_eq(c.model.kind, MODEL_MLP);
    ck_assert_int_eq(c.data.source, DATA_TOY2D);
    ck_assert_int_eq(c.model.mlp_width, 128);
    ck_assert_int_eq(c.model.mlp_layers, 3);
    ck_assert_int_eq(c.model.num_classes, c.data.toy_components);

    expect_ok(&train_cmd, "--preset tiny", &c);
    ck_assert_int_eq(c.model.kind, MODEL_DIT);
    ck_assert_int_eq(c.data.source, DATA_FASHION_MNIST);
    ck_assert_int_eq(c.model.image_size, 28);
    ck_assert_int_eq(c.model.patch, 4);
    ck_assert_int_eq(c.model.hidden, 64);
    ck_assert_int_eq(c.model.depth, 2);
    ck_assert_int_eq(c.model.heads, 2);
    ck_assert_int_eq(c.train.batch, 32);

    expect_ok(&train_cmd, "--preset base", &c);
    ck_assert_int_eq(c.model.patch, 2);
    ck_assert_int_eq(c.model.hidden, 384);
    ck_assert_int_eq(c.model.depth, 12);
    ck_assert_int_eq(c.model.heads, 6);
    ck_assert_int_eq(c.train.batch, 128);
    ck_assert_int_eq(c.run.device, DEVICE_CUDA);

    // no --preset: the default one
    expect_ok(&train_cmd, "", &c);
    ck_assert_str_eq(c.preset, CONFIG_DEFAULT_PRESET);
    ck_assert_str_eq(c.preset, "small");
    ck_assert_int_eq(c.model.hidden, 192);
    ck_assert_int_eq(c.model.depth, 6);
    ck_assert_int_eq(c.model.heads, 3);
    ck_assert_int_eq(c.train.batch, 64);
}
END_TEST

// The config's enum spellings are the library's own names, in the library's order.
START_TEST(test_enum_names_match_library) {
    Config c;
    for (int k = 0; k < MODEL_KIND_COUNT; k++) {
        char line[64];
        snprintf(line, sizeof line, "--kind %s", model_kind_name((ModelKind)k));
        expect_ok(&train_cmd, line, &c);
        ck_assert_int_eq(c.model.kind, k);
    }
    for (int k = 0; k < FLOW_TIME_DIST_COUNT; k++) {
        char line[64];
        snprintf(line, sizeof line, "--time-dist %s", flow_time_dist_name((FlowTimeDist)k));
        expect_ok(&train_cmd, line, &c);
        ck_assert_int_eq(c.train.opt.loss.time_dist, k);
    }
    for (int k = 0; k < SAMPLER_METHOD_COUNT; k++) {
        char line[64];
        snprintf(line, sizeof line, "--method %s", sampler_method_name((SamplerMethod)k));
        expect_ok(&train_cmd, line, &c);
        ck_assert_int_eq(c.sample.opt.method, k);
    }
    for (int k = 0; k < DEVICE_COUNT; k++) {
        char line[64];
        snprintf(line, sizeof line, "--device %s", device_name((Device)k));
        expect_ok(&train_cmd, line, &c);
        ck_assert_int_eq(c.run.device, k);
    }
}
END_TEST

START_TEST(test_file_overrides_preset_and_flags_override_file) {
    char path[64], line[256];
    write_temp(path, "; a comment\n[model]\nhidden = 96\n[train]\nsteps = 100\nlr = 0.002\n");
    Config c;
    // the flag wins whether it comes before or after --config
    snprintf(line, sizeof line, "--preset tiny --steps 200 --config %s", path);
    expect_ok(&train_cmd, line, &c);
    ck_assert_int_eq(c.model.hidden, 96);      // file over preset (tiny: 64)
    ck_assert_int_eq(c.train.steps, 200);      // flag over file
    ck_assert_float_eq(c.train.opt.schedule.base_lr, 0.002f);    // file over preset
    ck_assert_int_eq(c.model.depth, 2);        // preset over table default
    snprintf(line, sizeof line, "--config %s --preset tiny --steps=300", path);
    expect_ok(&train_cmd, line, &c);
    ck_assert_int_eq(c.train.steps, 300);
    unlink(path);
}
END_TEST

// A file's `preset =` applies below the file's own keys; --preset overrides it.
START_TEST(test_file_names_its_preset) {
    char path[64], line[128];
    write_temp(path, "preset = toy2d\n[train]\nsteps = 7\n");
    snprintf(line, sizeof line, "--config %s", path);
    Config c;
    expect_ok(&train_cmd, line, &c);
    ck_assert_str_eq(c.preset, "toy2d");
    ck_assert_int_eq(c.model.kind, MODEL_MLP);
    ck_assert_int_eq(c.train.steps, 7);
    snprintf(line, sizeof line, "--config %s --preset tiny", path);
    expect_ok(&train_cmd, line, &c);
    ck_assert_str_eq(c.preset, "tiny");
    ck_assert_int_eq(c.model.kind, MODEL_DIT);
    ck_assert_int_eq(c.train.steps, 7);
    unlink(path);
}
END_TEST

// Bare names resolve in the command's section order; qualified names reach any of its
// sections; flags outside the command's sections are unknown.
START_TEST(test_bare_names_follow_command_order) {
    Config c;
    ConfigArgs a;
    Error err;
    expect_ok(&train_cmd, "--steps 11 --sample.steps 12 --per-class 3 --per_class 4", &c);
    ck_assert_int_eq(c.train.steps, 11);
    ck_assert_int_eq(c.sample.opt.steps, 12);
    ck_assert_int_eq(c.sample.per_class, 4);
    ck_assert_int_eq(resolve(&sample_cmd, "ckpt.safetensors --steps 13 --seed 5", &c, &a, &err), 0);
    ck_assert_int_eq(c.sample.opt.steps, 13);
    ck_assert_int_eq(c.run.seed, 5);
    ck_assert_int_eq(a.positional_count, 1);
    ck_assert_str_eq(a.positional[0], "ckpt.safetensors");
    expect_error(&sample_cmd, "ckpt --hidden 3", "unknown flag '--hidden'");
    expect_error(&sample_cmd, "ckpt --train.steps 3", "unknown flag '--train.steps'");
}
END_TEST

START_TEST(test_own_flags_positionals_and_help) {
    Config c;
    ConfigArgs a;
    Error err;
    ck_assert_int_eq(resolve(&train_cmd, "--resume runs/x/step.safetensors --steps 5", &c, &a, &err), 0);
    ck_assert_str_eq(a.own[0], "runs/x/step.safetensors");
    ck_assert_int_eq(c.train.steps, 5);
    ck_assert_int_eq(resolve(&train_cmd, "--steps 5", &c, &a, &err), 0);
    ck_assert_ptr_null(a.own[0]);
    expect_error(&sample_cmd, "--steps 5", "dmdr sample: missing CHECKPOINT");
    expect_error(&sample_cmd, "a.safetensors b.safetensors", "unexpected argument 'b.safetensors'");
    expect_error(&train_cmd, "stray", "unexpected argument 'stray'");
    // --help stops the parse before anything is checked
    ck_assert_int_eq(resolve(&sample_cmd, "--bogus --help", &c, &a, &err), 0);
    ck_assert(a.help);
}
END_TEST

START_TEST(test_bool_flags) {
    Config c;
    expect_ok(&train_cmd, "--quiet", &c);
    ck_assert(c.run.quiet);
    expect_ok(&train_cmd, "--quiet --steps 3", &c);
    ck_assert(c.run.quiet);
    ck_assert_int_eq(c.train.steps, 3);
    expect_ok(&train_cmd, "--quiet false", &c);
    ck_assert(!c.run.quiet);
    expect_ok(&train_cmd, "--quiet=yes", &c);
    ck_assert(c.run.quiet);
    expect_error(&train_cmd, "--quiet=maybe", "--quiet expects true or false, got 'maybe'");
}
END_TEST

START_TEST(test_unknown_key_in_file_names_line) {
    char path[64], line[128], want[128];
    write_temp(path, "[model]\nhidden = 96\n\nhiden = 3\n");
    snprintf(line, sizeof line, "--config %s", path);
    snprintf(want, sizeof want, "%s:4: unknown key 'hiden' in [model]; did you mean 'hidden'?", path);
    expect_error(&train_cmd, line, want);
    unlink(path);
    write_temp(path, "steps = 10\nbogus_key = 1\n");
    snprintf(line, sizeof line, "--config %s", path);
    snprintf(want, sizeof want, "%s:2: unknown key 'bogus_key'", path);
    expect_error(&train_cmd, line, want);
    unlink(path);
    write_temp(path, "[modle]\nhidden = 1\n");
    snprintf(line, sizeof line, "--config %s", path);
    snprintf(want, sizeof want, "%s:2: unknown section [modle]", path);
    expect_error(&train_cmd, line, want);
    unlink(path);
}
END_TEST

START_TEST(test_bad_values_in_file_name_line) {
    char path[64], line[128], want[160];
    write_temp(path, "[train]\nsteps = 10\nlr = fast\n");
    snprintf(line, sizeof line, "--config %s", path);
    snprintf(want, sizeof want, "%s:3: train.lr expects a number in [0, 10], got 'fast'", path);
    expect_error(&train_cmd, line, want);
    unlink(path);
    write_temp(path, "[train]\nsteps = 10\n[sample]\nmethod = rk4\n");
    snprintf(line, sizeof line, "--config %s", path);
    snprintf(want, sizeof want, "%s:4: sample.method expects one of euler|heun, got 'rk4'", path);
    expect_error(&train_cmd, line, want);
    unlink(path);
    write_temp(path, "[train]\nsteps = 10\nsteps = 20\n");
    snprintf(line, sizeof line, "--config %s", path);
    snprintf(want, sizeof want, "%s:3: train.steps is set again (first on line 2)", path);
    expect_error(&train_cmd, line, want);
    unlink(path);
    write_temp(path, "[train]\nsteps 10\n");
    snprintf(line, sizeof line, "--config %s", path);
    snprintf(want, sizeof want, "%s:2: expected 'key = value' or '[section]'", path);
    expect_error(&train_cmd, line, want);
    unlink(path);
    write_temp(path, "preset = huge\n");
    snprintf(line, sizeof line, "--config %s", path);
    snprintf(want, sizeof want, "%s:1: unknown preset 'huge' (presets: toy2d, tiny, small, base)", path);
    expect_error(&train_cmd, line, want);
    unlink(path);
    char long_line[400];
    memset(long_line, 'a', sizeof long_line);
    memcpy(long_line, "data = ", 7);
    long_line[sizeof long_line - 2] = '\n';
    long_line[sizeof long_line - 1] = '\0';
    write_temp(path, long_line);
    snprintf(line, sizeof line, "--config %s", path);
    snprintf(want, sizeof want, "%s:1: line longer than", path);
    expect_error(&train_cmd, line, want);
    unlink(path);
    expect_error(&train_cmd, "--config /nonexistent/dmdr.ini", "cannot open config file '/nonexistent/dmdr.ini'");
}
END_TEST

START_TEST(test_bad_flags) {
    expect_error(&train_cmd, "--hiden 3", "dmdr train-teacher: unknown flag '--hiden'; did you mean '--hidden'?");
    expect_error(&train_cmd, "--bogus=3", "unknown flag '--bogus' (see `dmdr help train-teacher`)");
    expect_error(&train_cmd, "--steps", "--steps needs a value");
    expect_error(&train_cmd, "--steps x", "--steps expects an integer in [1, 1000000000], got 'x'");
    expect_error(&train_cmd, "--steps 0", "--steps expects an integer");
    expect_error(&train_cmd, "--steps 1.5", "--steps expects an integer");
    expect_error(&train_cmd, "--steps 99999999999", "--steps expects an integer");
    expect_error(&train_cmd, "--method rk4", "--method expects one of euler|heun, got 'rk4'");
    expect_error(&train_cmd, "--kind resnet", "--kind expects one of dit|unet|mlp, got 'resnet'");
    expect_error(&train_cmd, "--dataset mnist", "--dataset expects one of fashion-mnist|png|toy2d");
    expect_error(&train_cmd, "--ema-decay 1.5", "--ema-decay expects a number in [0, 1], got '1.5'");
    expect_error(&train_cmd, "--lr nan", "--lr expects a number");
    expect_error(&train_cmd, "--lr 1e-3x", "--lr expects a number");
    expect_error(&train_cmd, "--channel-mult 1,,2", "--channel-mult expects 1 to 4 comma-separated");
    expect_error(&train_cmd, "--channel-mult 1,2,2,2,2", "--channel-mult expects 1 to 4");
    expect_error(&train_cmd, "--preset huge", "unknown preset 'huge' (presets: toy2d, tiny, small, base)");
    expect_error(&train_cmd, "--preset", "--preset needs a value");
    Config c;
    expect_ok(&train_cmd, "--channel-mult 1,2,4 --levels 3", &c);
    ck_assert_int_eq(c.model.channel_mult[0], 1);
    ck_assert_int_eq(c.model.channel_mult[2], 4);
    ck_assert_int_eq(c.model.channel_mult[3], 0);
}
END_TEST

// Writing the resolved config and reading it back gives the same Config, for every preset
// with random overrides (floats of every magnitude must survive the text).
START_TEST(test_write_then_read_is_identity) {
    static const char *const names[] = {"toy2d", "tiny", "small", "base"};
    float r[4];
    test_fill_uniform(r, 4, test_seed_for("config-roundtrip") + (uint64_t)_i, 0, 1);
    char line[512];
    snprintf(line, sizeof line,
             "--preset %s --lr %.9g --ema-decay %.9g --logit-mean %.9g --steps %d --data "
             "/tmp/some/data --quiet --channel-mult 1,3 --method heun",
             names[_i], (double)(r[0] * 1e-3f), (double)r[1], (double)(r[2] * 2 - 1),
             1 + (int)(r[3] * 100000));
    Config a, b;
    expect_ok(&train_cmd, line, &a);
    char path[64];
    write_temp(path, "");
    Error err;
    ck_assert_msg(config_write(&a, path, &err) == 0, "%s", err.msg);
    snprintf(line, sizeof line, "--config %s", path);
    expect_ok(&train_cmd, line, &b);
    ck_assert_str_eq(b.preset, names[_i]);
    ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "the re-read config differs:\n%s", config_to_ini(&b));
    // and through a string, as a checkpoint stores it
    char *text = config_to_ini(&a);
    ConfigArgs args;
    char *argv[] = {"train-teacher"};
    ck_assert_int_eq(config_resolve(&b, &train_cmd, 1, argv, text, &args, &err), 0);
    ck_assert(memcmp(&a, &b, sizeof a) == 0);
    free(text);
    unlink(path);
}
END_TEST

START_TEST(test_help_lists_keys_defaults_and_presets) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_help(f, train_cmd.sections);
    fclose(f);
    ck_assert_msg(strstr(buf, "--steps N") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "--sample.steps N") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "default 20000; toy2d 3000; tiny 300") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "--method euler|heun") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "tiny ") != NULL && strstr(buf, "--config FILE") != NULL, "%s", buf);
    free(buf);
}
END_TEST

// ---- run directories ---------------------------------------------------------------------------


static void remove_tree(const char *dir) {
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    ck_assert(system(command) == 0);
}

START_TEST(test_rundir_layout_and_metrics) {
    char dir[] = "/tmp/dmdr-rundir-XXXXXX";
    ck_assert(mkdtemp(dir) != NULL);
    Config c;
    expect_ok(&train_cmd, "--preset tiny", &c);
    snprintf(c.run.out, sizeof c.run.out, "%s/nested/run", dir);
    RunDir rd;
    Error err;
    ck_assert_msg(rundir_create(&rd, &c, "train-teacher", &err) == 0, "%s", err.msg);
    char path[CONFIG_PATH_MAX + 64], want[CONFIG_PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/nested/run/samples/step-000500.png", dir);
    ck_assert_str_eq(rundir_step_path(&rd, "samples", 500, "png", path, sizeof path), want);
    struct stat st;
    ck_assert(stat(rundir_path(&rd, "checkpoints", path, sizeof path), &st) == 0 && S_ISDIR(st.st_mode));
    // config.ini is the resolved configuration
    Config back;
    config_defaults(&back);
    ck_assert_msg(config_load_file(&back, rundir_path(&rd, "config.ini", path, sizeof path), NULL,
                                   &err) == 0, "%s", err.msg);
    ck_assert_int_eq(back.model.hidden, 64);
    ck_assert_str_eq(back.run.out, ""); // repeating the run makes a new directory
    // one JSON object per line, written as it goes; non-finite values are null
    for (int step = 10; step <= 40; step += 10) {
        Metric m[] = {{"loss", 1.0 / step}, {"lr", step == 30 ? NAN : 0.001}, {"elapsed_s", step}};
        ck_assert(rundir_log(&rd, step, m, 3, &err) == 0);
    }
    char *text = test_read_text(rundir_path(&rd, "metrics.jsonl", path, sizeof path));
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        cJSON *o = cJSON_Parse(line);
        ck_assert_msg(cJSON_IsObject(o), "not JSON: %s", line);
        ck_assert_int_eq((int)cJSON_GetObjectItem(o, "step")->valuedouble, 10 * (lines + 1));
        ck_assert_double_eq_tol(cJSON_GetObjectItem(o, "loss")->valuedouble, 1.0 / (10 * (lines + 1)), 1e-9);
        ck_assert(lines == 2 ? cJSON_IsNull(cJSON_GetObjectItem(o, "lr")) : cJSON_IsNumber(cJSON_GetObjectItem(o, "lr")));
        cJSON_Delete(o);
    }
    ck_assert_int_eq(lines, 4);
    rundir_close(&rd);

    // a run is never overwritten
    Error refused;
    ck_assert(rundir_create(&rd, &c, "train-teacher", &refused) == -1);
    ck_assert_msg(strstr(refused.msg, "is not empty") != NULL, "%s", refused.msg);

    // resuming at step 20 keeps the lines up to it and the elapsed time there
    double elapsed = -1;
    snprintf(path, sizeof path, "%s/nested/run", dir);
    ck_assert_msg(rundir_resume(&rd, path, &c, 20, &elapsed, &err) == 0, "%s", err.msg);
    ck_assert_double_eq(elapsed, 20);
    Metric m = {"loss", 0.5};
    ck_assert(rundir_log(&rd, 30, &m, 1, &err) == 0);
    rundir_close(&rd);
    text = test_read_text(rundir_path(&rd, "metrics.jsonl", path, sizeof path));
    ck_assert_msg(strstr(text, "\"step\": 20") && strstr(text, "\"step\": 30, \"loss\": 0.5}") &&
                      !strstr(text, "\"step\": 40"), "%s", text);
    // the run directory of one of its checkpoints
    char found[CONFIG_PATH_MAX];
    snprintf(path, sizeof path, "%s/nested/run/checkpoints/step-000020.safetensors", dir);
    ck_assert_int_eq(rundir_of_checkpoint(path, found), 0);
    snprintf(want, sizeof want, "%s/nested/run", dir);
    ck_assert_str_eq(found, want);
    snprintf(path, sizeof path, "%s/elsewhere.safetensors", dir);
    ck_assert_int_eq(rundir_of_checkpoint(path, found), -1);
    remove_tree(dir);
}
END_TEST

// Without a terminal the display writes a plain line at every tenth of the run and the last
// step, so a log stays short; quiet writes nothing.
START_TEST(test_progress_plain_lines) {
    for (int quiet = 0; quiet <= 1; quiet++) {
        FILE *f = tmpfile();
        ck_assert(f != NULL);
        Progress p;
        progress_begin(&p, f, 0, 1000, "img/s", 0, quiet);
        for (int step = 1; step <= 1000; step++) progress_update(&p, step, 0.5, 100);
        progress_end(&p);
        rewind(f);
        char line[256], last[256] = "";
        int lines = 0;
        while (fgets(line, sizeof line, f)) {
            lines++;
            snprintf(last, sizeof last, "%s", line);
        }
        fclose(f);
        if (quiet) {
            ck_assert_int_eq(lines, 0);
        } else {
            ck_assert_int_eq(lines, 11);
            ck_assert_msg(strstr(last, "step 1000/1000  loss 0.5000  100.0 img/s") == last, "%s", last);
        }
    }
    char buf[32];
    ck_assert_str_eq(format_duration(12.34, buf, sizeof buf), "12.3s");
    ck_assert_str_eq(format_duration(192, buf, sizeof buf), "3m12s");
    ck_assert_str_eq(format_duration(3720, buf, sizeof buf), "1h02m");
}
END_TEST

int main(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_presets_resolve);
    tcase_add_test(tc, test_enum_names_match_library);
    tcase_add_test(tc, test_file_overrides_preset_and_flags_override_file);
    tcase_add_test(tc, test_file_names_its_preset);
    tcase_add_test(tc, test_bare_names_follow_command_order);
    tcase_add_test(tc, test_own_flags_positionals_and_help);
    tcase_add_test(tc, test_bool_flags);
    tcase_add_test(tc, test_unknown_key_in_file_names_line);
    tcase_add_test(tc, test_bad_values_in_file_name_line);
    tcase_add_test(tc, test_bad_flags);
    tcase_add_loop_test(tc, test_write_then_read_is_identity, 0, 4);
    tcase_add_test(tc, test_help_lists_keys_defaults_and_presets);
    suite_add_tcase(s, tc);
    TCase *files = tcase_create("rundir and progress");
    tcase_add_test(files, test_rundir_layout_and_metrics);
    tcase_add_test(files, test_progress_plain_lines);
    suite_add_tcase(s, files);
    return test_run_suite(s);
}
