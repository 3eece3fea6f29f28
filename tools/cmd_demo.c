// dmdr demo: the DMDR pipeline in one command, each stage the ordinary command with its own
// run directory under the demo's folder (tools/demo.h).
//
// By default it starts from what the repository ships (docs/experiments, checked against
// weights.manifest): the small teacher, the reward model and the held-out judge. Stage 1
// distils the teacher into a 1-step generator (DMD), stage 2 continues it with reward
// backprop regularised by DMD (DMDR), the judge measures both, and the table sets them beside
// the teacher's shipped evaluation at the same judge and sample count. configs/demo.ini holds
// its settings. --from-scratch trains the teacher and a classifier (judge and reward at once)
// first, on any preset.
//
// It prints its plan (tools/demo_plan.h), each stage's time as it ends, the table, and writes
// report.html (tools/demo_report.c). A stage whose result exists is skipped, so running the
// same command again after an interruption continues where it stopped.
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmdr_config.h"
#include "kernels/check.h"
#include "tools/commands.h"
#include "tools/data/atomic_file.h"
#include "tools/data/manifest.h"
#include "tools/demo.h"
#include "tools/demo_plan.h"
#include "tools/eval/table.h"
#include "tools/rundir.h"

#define MAX_PASSED 64
#define KEY_MAX 64 // longer than any setting's section.name
#define VALUE_MAX CONFIG_PATH_MAX
#define MAX_ARGS (2 * MAX_PASSED + 16) // the passed settings and the stage's own
#define DIR_LEN (CONFIG_PATH_MAX - 64) // the demo's folder, or the shipped one
#define PATH_LEN (CONFIG_PATH_MAX + 64) // a file below either

// What the repository ships, under its docs/experiments folder.
#define SHIPPED_TEACHER "small-teacher-12k/model.safetensors"
#define SHIPPED_JUDGE "heldout-judge/judge/classifier.safetensors"
#define SHIPPED_REWARD "heldout-judge/reward-model/classifier.safetensors"
#define SHIPPED_TEACHER_EVAL "small-teacher-12k/eval/euler50-"
#define SHIPPED_PER_CLASS 200 // the count of the shipped teacher's evaluation

const ConfigCommand demo_command = {
    .name = "demo",
    .sections = "run",
};

typedef struct {
    const char *preset; // NULL: the default
    const char *out, *config, *shipped;
    bool from_scratch;
    // --key value (or --key=value) settings for the stages, configs/demo.ini's first, then the
    // command line's (later ones win), each given to the stages whose settings have it:
    // flags[i] is the argument as written ("--train.steps" or "--train.steps=3"), keys[i] the
    // name alone, values[i] NULL when the flag holds it
    const char *flags[MAX_PASSED], *keys[MAX_PASSED], *values[MAX_PASSED];
    char key_text[MAX_PASSED][KEY_MAX], flag_text[MAX_PASSED][KEY_MAX + 2],
        value_text[MAX_PASSED][VALUE_MAX];
    int count;
} DemoArgs;

typedef struct {
    const char *argv[MAX_ARGS];
    int argc;
} Argv;

static void push(Argv *a, const char *s) {
    DMDR_CHECK(a->argc < MAX_ARGS - 1, "demo: more than %d arguments", MAX_ARGS - 1);
    a->argv[a->argc++] = s;
}

// Whether the command takes --key. A bare key must mean one setting for every stage, so
// only the [run] and [data] ones may be bare (--steps would be train.steps for one stage and
// sample.steps for another; --dataset png --data DIR is the same images for every stage).
static bool takes(const ConfigCommand *cmd, const char *key) {
    if (!strchr(key, '.') && !config_has_key(key, "run") && !config_has_key(key, "data"))
        return false;
    return config_has_key(key, cmd->sections);
}

// name --preset P --out DIR, then the settings this command takes
static void stage_argv(Argv *a, const DemoArgs *d, const ConfigCommand *cmd, const char *out) {
    *a = (Argv){0};
    push(a, cmd->name);
    if (d->preset) push(a, "--preset"), push(a, d->preset);
    if (out) push(a, "--out"), push(a, out);
    for (int i = 0; i < d->count; i++)
        if (takes(cmd, d->keys[i])) {
            push(a, d->flags[i]);
            if (d->values[i]) push(a, d->values[i]);
        }
}

static int run_stage(DemoPlan *p, int stage, int (*main_fn)(int, char **), Argv *a) {
    plan_begin(p, stage, stdout);
    printf("$ dmdr");
    for (int i = 0; i < a->argc; i++) printf(" %s", a->argv[i]);
    printf("\n");
    fflush(stdout);
    a->argv[a->argc] = NULL;
    int rc = main_fn(a->argc, (char **)a->argv);
    if (rc != 0) {
        fprintf(stderr, "dmdr demo: the stage '%s' failed (exit %d)\n", p->stage[stage].title, rc);
        return rc;
    }
    plan_done(p, stdout);
    return 0;
}

// A stage whose result `done` exists is skipped; one whose folder exists without it is
// unfinished: resuming it is the user's decision, not the demo's.
static int check_stage(const char *dir, const char *done, bool *skip) {
    *skip = path_exists(done);
    if (*skip || !path_exists(dir)) return 0;
    fprintf(stderr, "dmdr demo: %s exists but has no %s: an interrupted stage; resume it with "
                    "its command's --resume (see `dmdr help`) or remove the folder\n", dir, done);
    return 1;
}

static int add_setting(DemoArgs *d, const char *flag, const char *key, size_t key_len,
                       const char *value) {
    if (d->count == MAX_PASSED) {
        fprintf(stderr, "dmdr demo: more than %d settings\n", MAX_PASSED);
        return 2;
    }
    if (key_len >= KEY_MAX) {
        fprintf(stderr, "dmdr demo: no setting is named '%s'\n", flag);
        return 2;
    }
    int i = d->count++;
    memcpy(d->key_text[i], key, key_len);
    d->key_text[i][key_len] = '\0';
    d->keys[i] = d->key_text[i], d->flags[i] = flag, d->values[i] = value;
    return 0;
}

// configs/demo.ini: each "name = value" under [section] becomes --section.name value.
static int on_ini(void *user, const char *section, const char *name, const char *value) {
    DemoArgs *d = user;
    int i = d->count;
    if (!section[0] && strcmp(name, "preset") == 0 && strlen(value) < VALUE_MAX) {
        snprintf(d->value_text[MAX_PASSED - 1], VALUE_MAX, "%s", value); // (the last slot)
        d->preset = d->value_text[MAX_PASSED - 1];
        return 1;
    }
    char key[2 * KEY_MAX];
    int len = snprintf(key, sizeof key, "%s%s%s", section, section[0] ? "." : "", name);
    if (len >= KEY_MAX || strlen(value) >= VALUE_MAX || add_setting(d, "", key, (size_t)len, NULL))
        return 0;
    memcpy(d->flag_text[i], "--", 2);
    memcpy(d->flag_text[i] + 2, d->key_text[i], KEY_MAX);
    snprintf(d->value_text[i], sizeof d->value_text[i], "%s", value);
    d->flags[i] = d->flag_text[i], d->values[i] = d->value_text[i];
    return 1;
}

static int parse_args(int argc, char **argv, DemoArgs *d) {
    *d = (DemoArgs){0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
        if (strcmp(a, "--from-scratch") == 0 &&
            (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            d->from_scratch = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || (!eq && i + 1 >= argc)) {
            fprintf(stderr, "dmdr demo: expected --key value or --key=value, got '%s'%s\n", a,
                    strncmp(a, "--", 2) == 0 ? " without a value" : "");
            return 2;
        }
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const char *v = eq ? eq + 1 : argv[++i];
        if (strncmp(a + 2, "preset", len) == 0 && len == 6) d->preset = v;
        else if (strncmp(a + 2, "out", len) == 0 && len == 3) d->out = v;
        else if (strncmp(a + 2, "config", len) == 0 && len == 6) d->config = v;
        else if (strncmp(a + 2, "shipped", len) == 0 && len == 7) d->shipped = v;
        else if (strncmp(a + 2, "from-scratch", len) == 0 && len == 12) {
            if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
                fprintf(stderr, "dmdr demo: --from-scratch expects true or false, got '%s'\n", v);
                return 2;
            }
            d->from_scratch = strcmp(v, "true") == 0;
        } else if (add_setting(d, a, a + 2, len, eq ? NULL : v) != 0) {
            return 2;
        }
    }
    return 0;
}

// The demo's settings file, read before the command line's settings so those win.
static int read_config(DemoArgs *d, const char *path) {
    DemoArgs file = {0};
    int line = ini_parse(path, on_ini, &file);
    if (line < 0) {
        fprintf(stderr, "dmdr demo: cannot read --config %s\n", path);
        return 2;
    }
    if (line > 0) {
        fprintf(stderr, "dmdr demo: %s:%d: not a setting the demo can pass on (or more than %d "
                        "settings)\n", path, line, MAX_PASSED);
        return 2;
    }
    if (file.count + d->count > MAX_PASSED - 1) {
        fprintf(stderr, "dmdr demo: more than %d settings with %s\n", MAX_PASSED, path);
        return 2;
    }
    // the file's settings first: move the command line's after them
    for (int i = d->count - 1; i >= 0; i--) {
        int j = i + file.count;
        memcpy(d->key_text[j], d->key_text[i], KEY_MAX);
        d->keys[j] = d->key_text[j], d->flags[j] = d->flags[i], d->values[j] = d->values[i];
    }
    for (int i = 0; i < file.count; i++) {
        memcpy(d->key_text[i], file.key_text[i], KEY_MAX);
        memcpy(d->flag_text[i], file.flag_text[i], sizeof d->flag_text[i]);
        memcpy(d->value_text[i], file.value_text[i], VALUE_MAX);
        d->keys[i] = d->key_text[i], d->flags[i] = d->flag_text[i], d->values[i] = d->value_text[i];
    }
    d->count += file.count;
    if (!d->preset && file.preset) { // the command line's --preset wins
        static char preset[VALUE_MAX];
        snprintf(preset, sizeof preset, "%s", file.preset);
        d->preset = preset;
    }
    return 0;
}

// The judge measures each class's samples against as many held-out images of that class: on a
// PNG folder, say before any training when its test split (every 10th image) has too few.
static int check_test_split(const Config *data, int per_class) {
    PngFolderShape folder;
    Error err;
    if (!data->data.path[0]) {
        fprintf(stderr, "dmdr demo: dataset png needs the image folder: --data PATH\n");
        return 2;
    }
    if (png_folder_probe(data->data.path, &folder, &err) != 0) {
        fprintf(stderr, "dmdr demo: %s\n", err.msg);
        return 2;
    }
    if (folder.fewest_test >= per_class) return 0;
    fprintf(stderr, "dmdr demo: --eval.per_class %d, but the test split of %s (every %dth image "
                    "of a class) holds %lld of class %s: set --eval.per_class %lld or add "
                    "images\n", per_class, data->data.path, PNG_TEST_EVERY,
            (long long)folder.fewest_test, folder.fewest_test_class,
            (long long)folder.fewest_test);
    return 2;
}

static int check_keys(const DemoArgs *d) {
    const ConfigCommand *stages[] = {&train_teacher_command, &train_classifier_command,
                                     &distill_command, &eval_command};
    for (int i = 0; i < d->count; i++) {
        bool used = false;
        for (int s = 0; s < 4; s++) used |= takes(stages[s], d->keys[i]);
        if (!used) {
            fprintf(stderr, "dmdr demo: no stage takes --%s (write settings qualified, e.g. "
                            "--train.steps, --distill.steps, --rl.steps, --eval.per_class; bare "
                            "names only for [run] and [data] settings such as --threads, "
                            "--data)\n", d->keys[i]);
            return 2;
        }
    }
    return 0;
}

typedef struct {
    char dir[DIR_LEN], sub[DEMO_STAGES][CONFIG_PATH_MAX];
    char teacher[PATH_LEN], judge[PATH_LEN], reward[PATH_LEN], dmd[PATH_LEN], dmdr[PATH_LEN],
        stage1[PATH_LEN], eval_dir[CONFIG_PATH_MAX], grid[PATH_LEN], json[DEMO_ROWS][PATH_LEN],
        shipped_eval[2][PATH_LEN], manifest[PATH_LEN];
} Paths;

static void set_paths(Paths *p, const DemoArgs *d, const Config *cfg) {
    for (int i = 0; i < DEMO_STAGES; i++)
        snprintf(p->sub[i], CONFIG_PATH_MAX, "%s/%s", p->dir, demo_stages[i].folder);
    const char *shipped = d->shipped ? d->shipped : DMDR_SHIPPED_DIR;
    if (d->from_scratch) {
        snprintf(p->teacher, PATH_LEN, "%s/model.safetensors", p->sub[0]);
        snprintf(p->judge, PATH_LEN, "%s/classifier.safetensors", p->sub[1]);
        snprintf(p->reward, PATH_LEN, "%s", p->judge);
    } else {
        snprintf(p->teacher, PATH_LEN, "%s/%s", shipped, SHIPPED_TEACHER);
        snprintf(p->judge, PATH_LEN, "%s/%s", shipped, SHIPPED_JUDGE);
        snprintf(p->reward, PATH_LEN, "%s/%s", shipped, SHIPPED_REWARD);
    }
    snprintf(p->manifest, PATH_LEN, "%s/%s", shipped, MANIFEST_NAME);
    for (int i = 0; i < 2; i++)
        snprintf(p->shipped_eval[i], PATH_LEN, "%s/%scfg%s.json", shipped, SHIPPED_TEACHER_EVAL,
                 i ? "1.5" : "1");
    snprintf(p->dmd, PATH_LEN, "%s/model.safetensors", p->sub[2]);
    snprintf(p->dmdr, PATH_LEN, "%s/model.safetensors", p->sub[3]);
    RunDir stage1 = {.metrics = NULL}; // where stage 1 leaves its last checkpoint
    snprintf(stage1.dir, sizeof stage1.dir, "%s", p->sub[2]);
    rundir_step_path(&stage1, "checkpoints", cfg->distill.steps, "safetensors", p->stage1,
                     PATH_LEN);
    snprintf(p->eval_dir, CONFIG_PATH_MAX, "%s/eval", p->dir);
    snprintf(p->grid, PATH_LEN, "%s/teacher-grid.png", p->eval_dir);
    DemoRow rows[DEMO_ROWS];
    demo_rows(d->from_scratch, rows);
    for (int i = 0; i < DEMO_ROWS; i++)
        snprintf(p->json[i], PATH_LEN, "%s/%s.json", p->eval_dir, rows[i].file);
}

static int copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    bool ok = in && out;
    char buf[4096];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    if (in) fclose(in);
    if (out && fclose(out) != 0) ok = false;
    if (!ok) fprintf(stderr, "dmdr demo: cannot copy %s to %s\n", from, to);
    return ok ? 0 : 1;
}

int demo_main(int argc, char **argv) {
    DemoArgs d;
    int rc = parse_args(argc, argv, &d);
    if (rc == 1) {
        print_command_help("demo");
        return 0;
    }
    if (rc) return rc;
    char default_config[PATH_LEN];
    snprintf(default_config, sizeof default_config, "%s/configs/demo.ini", DMDR_SOURCE_ROOT);
    const char *config = d.config ? d.config : d.from_scratch ? NULL : default_config;
    if (config && (rc = read_config(&d, config)) != 0) return rc;
    if ((rc = check_keys(&d)) != 0) return rc;
    if (!d.from_scratch && !d.shipped && d.preset && strcmp(d.preset, "small") != 0) {
        fprintf(stderr, "dmdr demo: the shipped teacher, reward model and judge are the small "
                        "preset's; --from-scratch trains every network of --preset %s\n",
                d.preset);
        return 2;
    }
    // The demo's own configuration: the stage-1 step count names the checkpoint stage 2 starts
    // from, and the step counts and batch sizes give the plan its times
    Config cfg;
    ConfigArgs cargs;
    Argv a;
    Error err;
    const ConfigCommand *resolved[] = {&distill_command, &train_teacher_command,
                                       &train_classifier_command};
    Config parts[3];
    for (int i = 0; i < 3; i++) {
        stage_argv(&a, &d, resolved[i], NULL);
        if (config_resolve(&parts[i], resolved[i], a.argc, (char **)a.argv, NULL, &cargs,
                           &err) != 0) {
            fprintf(stderr, "dmdr demo: %s\n", err.msg);
            return 2;
        }
    }
    if (parts[1].data.source != DATA_FASHION_MNIST && !d.from_scratch) {
        fprintf(stderr, "dmdr demo: the shipped teacher, reward model and judge are Fashion-"
                        "MNIST's; --from-scratch trains every network on other data\n");
        return 2;
    }
    // a PNG folder's class count sizes the evaluations, as train-teacher will take it
    stage_argv(&a, &d, &train_teacher_command, NULL);
    if (command_shape_from_png_folder(&train_teacher_command, a.argc, (char **)a.argv, &parts[1],
                                      &err) != 0) {
        fprintf(stderr, "dmdr demo: %s\n", err.msg);
        return 2;
    }
    if (parts[1].data.source == DATA_PNG &&
        (rc = check_test_split(&parts[1], parts[0].eval.per_class)) != 0)
        return rc;
    cfg = parts[0];
    cfg.train = parts[1].train;
    cfg.model.num_classes = parts[1].model.num_classes;
    cfg.classifier = parts[2].classifier;

    static Paths p;
    if (!d.out)
        snprintf(p.dir, sizeof p.dir, "runs/demo-%s%s", cfg.preset,
                 d.from_scratch ? "-scratch" : "");
    else
        snprintf(p.dir, sizeof p.dir, "%s", d.out);
    if ((d.out && strlen(d.out) >= sizeof p.dir) || (d.shipped && strlen(d.shipped) >= DIR_LEN)) {
        fprintf(stderr, "dmdr demo: the folder name is too long: %s\n",
                d.out && strlen(d.out) >= sizeof p.dir ? d.out : d.shipped);
        return 2;
    }
    if (make_dirs(p.dir, &err) != 0) {
        fprintf(stderr, "dmdr demo: %s\n", err.msg);
        return 1;
    }
    set_paths(&p, &d, &cfg);
    if (make_dirs(p.eval_dir, &err) != 0) {
        fprintf(stderr, "dmdr demo: %s\n", err.msg);
        return 1;
    }
    printf("demo: preset %s, %s, everything under %s%s%s\n", cfg.preset,
           d.from_scratch ? "every network trained here" : "from the shipped teacher, reward "
                                                          "model and judge", p.dir,
           config ? ", settings from " : "", config ? config : "");

    // the plan: every stage, with whether its result exists and its expected time
    DemoPlan plan = {0};
    bool skip[DEMO_STAGES];
    for (int i = 0; i < DEMO_STAGES; i++) {
        const char *done[] = {p.teacher, p.judge, p.dmd, p.dmdr};
        if (i < 2 && !d.from_scratch) { // the shipped teacher and classifiers
            skip[i] = true;
            continue;
        }
        if ((rc = check_stage(p.sub[i], done[i], &skip[i])) != 0) return rc;
    }
    int s_check = d.from_scratch ? -1 : plan_add(&plan, false, 2, "check the shipped weights "
                                                                  "against %s", MANIFEST_NAME);
    int s_teacher = d.from_scratch ? plan_add(&plan, skip[0], plan_expect_teacher(&cfg),
                                              "train the teacher (%d steps)", cfg.train.steps)
                                   : -1;
    int s_judge = d.from_scratch ? plan_add(&plan, skip[1], plan_expect_classifier(&cfg),
                                            "train the classifier (%d epochs)",
                                            cfg.classifier.epochs)
                                 : -1;
    int s_dmd = plan_add(&plan, skip[2], plan_expect_distill(&cfg, cfg.distill.steps, false),
                         "stage 1, DMD: distil the teacher (%d generator steps)",
                         cfg.distill.steps);
    int s_dmdr = plan_add(&plan, skip[3], plan_expect_distill(&cfg, cfg.rl.steps, true),
                          "stage 2, DMDR: reward backprop + DMD (%d steps)", cfg.rl.steps);
    // the teacher's rows: the shipped evaluation where the counts match, else measured here
    bool teacher_shipped = !d.from_scratch && cfg.eval.per_class == SHIPPED_PER_CLASS;
    long long n_eval = (long long)cfg.eval.per_class * cfg.model.num_classes;
    double grid_s = plan_expect_eval(&cfg, 8LL * cfg.model.num_classes, 50);
    int s_grid = d.from_scratch ? -1 : plan_add(&plan, path_exists(p.grid), grid_s,
                                                "a grid of the teacher, 50 Euler steps");
    int s_eval[DEMO_ROWS];
    for (int i = 0; i < DEMO_ROWS; i++) {
        bool teacher = i < 2;
        if (teacher && teacher_shipped) {
            s_eval[i] = -1;
            continue;
        }
        int nfe = teacher ? 50 * (i == 1 ? 2 : 1) : 1;
        s_eval[i] = plan_add(&plan, path_exists(p.json[i]), plan_expect_eval(&cfg, n_eval, nfe),
                             "the judge: %s (%lld samples)",
                             i == 0 ? "teacher, 50 steps" : i == 1 ? "teacher, CFG 1.5"
                                                      : i == 2 ? "DMD generator"
                                                               : "DMDR generator",
                             n_eval);
    }
    plan_print(&plan, stdout);
    if (teacher_shipped)
        printf("  the teacher's rows: its shipped evaluation by the same judge at the same count "
               "(%s*.json); `dmdr eval` measures them again (50 Euler steps: minutes)\n",
               SHIPPED_TEACHER_EVAL);

    if (s_check >= 0) {
        plan_begin(&plan, s_check, stdout);
        int n = manifest_check_all(p.manifest, &err);
        if (n < 0) {
            fprintf(stderr, "dmdr demo: %s\n", err.msg);
            return 1;
        }
        printf("%d files intact\n", n);
        plan_done(&plan, stdout);
    }
    if (s_teacher >= 0 && !skip[0]) {
        stage_argv(&a, &d, &train_teacher_command, p.sub[0]);
        if ((rc = run_stage(&plan, s_teacher, train_teacher_main, &a)) != 0) return rc;
    }
    if (s_judge >= 0 && !skip[1]) {
        stage_argv(&a, &d, &train_classifier_command, p.sub[1]);
        if ((rc = run_stage(&plan, s_judge, train_classifier_main, &a)) != 0) return rc;
    }
    if (!skip[2]) {
        stage_argv(&a, &d, &distill_command, p.sub[2]);
        push(&a, "--teacher"), push(&a, p.teacher), push(&a, "--rl"), push(&a, "none");
        if ((rc = run_stage(&plan, s_dmd, distill_main, &a)) != 0) return rc;
    }
    if (!skip[3]) {
        stage_argv(&a, &d, &distill_command, p.sub[3]);
        push(&a, "--init"), push(&a, p.stage1), push(&a, "--classifier"), push(&a, p.reward);
        bool rl_given = false;
        for (int i = 0; i < d.count; i++) rl_given |= strcmp(d.keys[i], "rl.rl") == 0;
        if (!rl_given) push(&a, "--rl"), push(&a, "backprop");
        if ((rc = run_stage(&plan, s_dmdr, distill_main, &a)) != 0) return rc;
    }
    if (s_grid >= 0 && !plan.stage[s_grid].skip) {
        stage_argv(&a, &d, &sample_command, NULL);
        push(&a, p.teacher), push(&a, "--steps"), push(&a, "50"), push(&a, "--cfg"), push(&a, "1");
        push(&a, "--out"), push(&a, p.grid);
        if ((rc = run_stage(&plan, s_grid, sample_main, &a)) != 0) return rc;
    }

    DemoRow rows[DEMO_ROWS];
    demo_rows(d.from_scratch, rows);
    static const char *files[DEMO_ROWS];
    TableRow table[DEMO_ROWS];
    const char *weights[DEMO_ROWS] = {p.teacher, p.teacher, p.dmd, p.dmdr};
    for (int i = 0; i < DEMO_ROWS; i++) {
        files[i] = p.json[i];
        table[i] = (TableRow){rows[i].label, &files[i], 1};
        if (path_exists(p.json[i])) continue;
        if (s_eval[i] < 0) { // the teacher's shipped evaluation
            if ((rc = copy_file(p.shipped_eval[i], p.json[i])) != 0) return rc;
            continue;
        }
        stage_argv(&a, &d, &eval_command, NULL);
        push(&a, weights[i]);
        push(&a, "--classifier"), push(&a, p.judge), push(&a, "--json"), push(&a, p.json[i]);
        if (i < 2) push(&a, "--sample.steps"), push(&a, "50");
        if (i < 2) push(&a, "--sample.cfg"), push(&a, i == 1 ? "1.5" : "1");
        // with one classifier for both, the DMDR row is graded by what it optimised, and says so
        if (d.from_scratch && i == 3) push(&a, "--judge-is-reward"), push(&a, "true");
        if (!d.from_scratch) push(&a, "--reward-model"), push(&a, p.reward);
        if ((rc = run_stage(&plan, s_eval[i], eval_main, &a)) != 0) return rc;
    }
    printf("\n==== demo: the comparison ====\n");
    rc = eval_table_write(stdout, table, DEMO_ROWS, TABLE_MARKDOWN, &err) == 0 ? 0 : 1;
    if (rc) fprintf(stderr, "dmdr demo: %s\n", err.msg);
    if (demo_write_report(p.dir, &err) != 0) {
        fprintf(stderr, "dmdr demo: %s\n", err.msg);
        return 1;
    }
    printf("\n");
    plan_total(&plan, stdout);
    printf("demo: the report is %s/report.html\n", p.dir);
    return rc;
}
