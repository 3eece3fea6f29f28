// dmdr demo: the whole DMDR pipeline on one preset in one command, each stage the ordinary
// command with its own run directory under the demo's folder:
//   teacher/     dmdr train-teacher                 the multi-step flow-matching teacher
//   classifier/  dmdr train-classifier              the judge (metrics and reward)
//   dmd/         dmdr distill --teacher             stage 1: the DMD few-step generator
//   dmdr/        dmdr distill --init --rl backprop  stage 2: reward regularised by DMD
//   eval/        dmdr eval --json                   each model measured by the judge
// and finally the comparison table, and report.html: the table, the grids side by side and
// every stage's curves (demo_write_report, also `dmdr report DIR`). A stage whose result exists is skipped, so running the
// same command again after an interruption continues where it stopped.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/check.h"
#include "tools/commands.h"
#include "tools/eval/table.h"
#include "tools/report/report.h"
#include "tools/rundir.h"

#define MAX_PASSED 64
#define KEY_MAX 64 // longer than any setting's section.name
#define MAX_ARGS (2 * MAX_PASSED + 16) // the passed settings and the stage's own

const ConfigCommand demo_command = {
    .name = "demo",
    .sections = "run",
};

typedef struct {
    const char *preset; // NULL: the default
    const char *out;
    // --key value (or --key=value) settings for the stages, each given to the stages whose
    // settings have it: flags[i] is the argument as written ("--train.steps" or
    // "--train.steps=3"), keys[i] the name alone, values[i] NULL when the flag holds it
    const char *flags[MAX_PASSED], *keys[MAX_PASSED], *values[MAX_PASSED];
    char key_text[MAX_PASSED][KEY_MAX];
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

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

// Whether the command takes --key. A bare key must mean one setting for every stage, so
// only the [run] ones may be bare (--steps would be train.steps for one stage and
// sample.steps for another).
static bool takes(const ConfigCommand *cmd, const char *key) {
    if (!strchr(key, '.') && !config_has_key(key, "run")) return false;
    return config_has_key(key, cmd->sections);
}

// name --preset P --out DIR, then the user's settings this command takes
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

static int run_stage(const char *title, int (*main_fn)(int, char **), Argv *a) {
    printf("\n==== demo: %s ====\n$ dmdr", title);
    for (int i = 0; i < a->argc; i++) printf(" %s", a->argv[i]);
    printf("\n");
    fflush(stdout);
    a->argv[a->argc] = NULL;
    int rc = main_fn(a->argc, (char **)a->argv);
    if (rc != 0) fprintf(stderr, "dmdr demo: the %s stage failed (exit %d)\n", title, rc);
    return rc;
}

// A stage whose result `done` exists is skipped; one whose folder exists without it is
// unfinished: resuming it is the user's decision, not the demo's.
static int check_stage(const char *dir, const char *done, bool *skip) {
    *skip = exists(done);
    if (*skip) {
        printf("demo: %s exists, skipping its stage\n", done);
        return 0;
    }
    if (exists(dir)) {
        fprintf(stderr, "dmdr demo: %s exists but has no %s: an interrupted stage; resume it "
                        "with its command's --resume (see `dmdr help`) or remove the folder\n",
                dir, done);
        return 1;
    }
    return 0;
}

// The evaluations, in the table's order: the teacher at 50 Euler steps without and with
// guidance, then the two generators. model: the stage folder whose weights are measured.
typedef struct {
    const char *label, *file, *stage, *weights, *extra[4];
} DemoEval;

static const DemoEval evals[] = {
    {"teacher, 50 steps", "teacher-cfg1", "teacher", "model.safetensors",
     {"--sample.steps", "50", "--sample.cfg", "1"}},
    {"teacher, 50 steps, CFG 1.5", "teacher-cfg1.5", "teacher", "model.safetensors",
     {"--sample.steps", "50", "--sample.cfg", "1.5"}},
    {"DMD generator", "dmd", "dmd", "model.safetensors", {NULL}},
    // the demo trains one classifier, the reward of stage 2 and the judge at once: its
    // DMDR row is graded by what it optimised, and says so
    {"DMDR generator (own reward)", "dmdr", "dmdr", "model.safetensors",
     {"--judge-is-reward", "true"}},
};
#define EVALS ((int)(sizeof evals / sizeof evals[0]))

// The stages whose run directories the report shows, in pipeline order.
static const struct {
    const char *folder, *heading;
} stages[] = {
    {"teacher", "Teacher (train-teacher)"},
    {"classifier", "Judge classifier (train-classifier)"},
    {"dmd", "Stage 1: DMD (distill)"},
    {"dmdr", "Stage 2: DMDR (distill --rl backprop)"},
};

static int write_demo_page(FILE *out, void *ctx, Error *err) {
    (void)err;
    const char *dir = ctx;
    char title[CONFIG_PATH_MAX + 32], sub[CONFIG_PATH_MAX + 64];
    snprintf(title, sizeof title, "dmdr demo: %s", dir);
    report_page_begin(out, title);

    fputs("<h2>The comparison</h2>\n", out);
    static char json[EVALS][CONFIG_PATH_MAX + 32];
    static const char *files[EVALS];
    TableRow rows[EVALS];
    int n = 0;
    for (int i = 0; i < EVALS; i++) {
        snprintf(json[i], sizeof json[i], "%s/eval/%s.json", dir, evals[i].file);
        files[i] = json[i];
        if (exists(json[i])) rows[n++] = (TableRow){evals[i].label, &files[i], 1};
    }
    Error table_err;
    if (n == 0) fputs("<p>No evaluation yet.</p>\n", out);
    else if (report_table(out, rows, n, &table_err) != 0)
        fprintf(out, "<p>%s</p>\n", table_err.msg);

    fputs("<h2>Samples side by side</h2>\n<p>The last grid of each run (one row per class, at "
          "the sampler settings of its run).</p>\n<div class=\"grids\">\n", out);
    for (int i = 0; i < (int)(sizeof stages / sizeof stages[0]); i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, stages[i].folder);
        report_last_grid(out, sub, stages[i].heading);
    }
    fputs("</div>\n", out);
    for (int i = 0; i < (int)(sizeof stages / sizeof stages[0]); i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, stages[i].folder);
        if (exists(sub)) report_run_section(out, sub, stages[i].heading);
    }
    report_page_end(out);
    return 0;
}

int demo_write_report(const char *dir, Error *err) {
    char path[CONFIG_PATH_MAX + 32];
    if (snprintf(path, sizeof path, "%s/report.html", dir) >= (int)sizeof path)
        return error_set(err, "%s: path too long", dir);
    return report_write_file(path, write_demo_page, (void *)dir, err);
}

static int parse_args(int argc, char **argv, DemoArgs *d) {
    *d = (DemoArgs){0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
        if (strncmp(a, "--", 2) != 0 || (!eq && i + 1 >= argc)) {
            fprintf(stderr, "dmdr demo: expected --key value or --key=value, got '%s'%s\n", a,
                    strncmp(a, "--", 2) == 0 ? " without a value" : "");
            return 2;
        }
        if (d->count == MAX_PASSED) {
            fprintf(stderr, "dmdr demo: more than %d settings\n", MAX_PASSED);
            return 2;
        }
        char *key = d->key_text[d->count];
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= KEY_MAX) {
            fprintf(stderr, "dmdr demo: no setting is named '%s'\n", a);
            return 2;
        }
        memcpy(key, a + 2, len);
        key[len] = '\0';
        const char *v = eq ? eq + 1 : argv[++i];
        if (strcmp(key, "preset") == 0) d->preset = v;
        else if (strcmp(key, "out") == 0) d->out = v;
        else d->flags[d->count] = a, d->keys[d->count] = key, d->values[d->count++] = eq ? NULL : v;
    }
    return 0;
}

int demo_main(int argc, char **argv) {
    DemoArgs d;
    int rc = parse_args(argc, argv, &d);
    if (rc == 1) {
        print_command_help("demo");
        return 0;
    }
    if (rc) return rc;
    const ConfigCommand *stages[] = {&train_teacher_command, &train_classifier_command,
                                     &distill_command, &eval_command};
    for (int i = 0; i < d.count; i++) {
        bool used = false;
        for (int s = 0; s < 4; s++) used |= takes(stages[s], d.keys[i]);
        if (!used) {
            fprintf(stderr, "dmdr demo: no stage takes --%s (write settings qualified, e.g. "
                            "--train.steps, --distill.steps, --rl.steps, --eval.per_class; bare "
                            "names only for [run] settings such as --threads)\n", d.keys[i]);
            return 2;
        }
    }
    // The demo's own configuration: the stage-1 step count names the checkpoint stage 2 starts from
    Config cfg;
    ConfigArgs cargs;
    Argv a;
    Error err;
    stage_argv(&a, &d, &distill_command, NULL);
    if (config_resolve(&cfg, &distill_command, a.argc, (char **)a.argv, NULL, &cargs, &err) != 0) {
        fprintf(stderr, "dmdr demo: %s\n", err.msg);
        return 2;
    }
    char dir[CONFIG_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", d.out ? d.out : "");
    if (!d.out) snprintf(dir, sizeof dir, "runs/demo-%s", cfg.preset);
    if (make_dirs(dir, &err) != 0) {
        fprintf(stderr, "dmdr demo: %s\n", err.msg);
        return 1;
    }
    char teacher[CONFIG_PATH_MAX + 64], judge[CONFIG_PATH_MAX + 64], dmd[CONFIG_PATH_MAX + 64],
        dmdr[CONFIG_PATH_MAX + 64], stage1[CONFIG_PATH_MAX + 64], sub[CONFIG_PATH_MAX + 16];
    snprintf(teacher, sizeof teacher, "%s/teacher/model.safetensors", dir);
    snprintf(judge, sizeof judge, "%s/classifier/classifier.safetensors", dir);
    snprintf(dmd, sizeof dmd, "%s/dmd/model.safetensors", dir);
    snprintf(dmdr, sizeof dmdr, "%s/dmdr/model.safetensors", dir);
    RunDir dmd_run = {.metrics = NULL}; // where stage 1 leaves its last checkpoint
    if (snprintf(dmd_run.dir, sizeof dmd_run.dir, "%s/dmd", dir) >= (int)sizeof dmd_run.dir) {
        fprintf(stderr, "dmdr demo: the output folder name is too long: %s\n", dir);
        return 1;
    }
    rundir_step_path(&dmd_run, "checkpoints", cfg.distill.steps, "safetensors", stage1,
                     sizeof stage1);
    printf("demo: preset %s, everything under %s\n", cfg.preset, dir);

    bool skip;
    snprintf(sub, sizeof sub, "%s/teacher", dir);
    if ((rc = check_stage(sub, teacher, &skip)) != 0) return rc;
    stage_argv(&a, &d, &train_teacher_command, sub);
    if (!skip && (rc = run_stage("teacher", train_teacher_main, &a)) != 0) return rc;

    snprintf(sub, sizeof sub, "%s/classifier", dir);
    if ((rc = check_stage(sub, judge, &skip)) != 0) return rc;
    stage_argv(&a, &d, &train_classifier_command, sub);
    if (!skip && (rc = run_stage("judge classifier", train_classifier_main, &a)) != 0) return rc;

    snprintf(sub, sizeof sub, "%s/dmd", dir);
    if ((rc = check_stage(sub, dmd, &skip)) != 0) return rc;
    stage_argv(&a, &d, &distill_command, sub);
    push(&a, "--teacher"), push(&a, teacher), push(&a, "--rl"), push(&a, "none");
    if (!skip && (rc = run_stage("DMD (stage 1)", distill_main, &a)) != 0) return rc;

    snprintf(sub, sizeof sub, "%s/dmdr", dir);
    if ((rc = check_stage(sub, dmdr, &skip)) != 0) return rc;
    stage_argv(&a, &d, &distill_command, sub);
    push(&a, "--init"), push(&a, stage1), push(&a, "--classifier"), push(&a, judge);
    bool rl_given = false;
    for (int i = 0; i < d.count; i++) rl_given |= strcmp(d.keys[i], "rl.rl") == 0;
    if (!rl_given) push(&a, "--rl"), push(&a, "backprop");
    if (!skip && (rc = run_stage("DMDR (stage 2)", distill_main, &a)) != 0) return rc;

    TableRow rows[EVALS];
    static char json[EVALS][CONFIG_PATH_MAX + 32];
    static const char *files[EVALS];
    snprintf(sub, sizeof sub, "%s/eval", dir);
    if (make_dirs(sub, &err) != 0) {
        fprintf(stderr, "dmdr demo: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < EVALS; i++) {
        snprintf(json[i], sizeof json[i], "%s/%s.json", sub, evals[i].file);
        files[i] = json[i];
        rows[i] = (TableRow){evals[i].label, &files[i], 1};
        if (exists(json[i])) {
            printf("demo: %s exists, skipping its evaluation\n", json[i]);
            continue;
        }
        stage_argv(&a, &d, &eval_command, NULL);
        char weights[CONFIG_PATH_MAX + 64];
        snprintf(weights, sizeof weights, "%s/%s/%s", dir, evals[i].stage, evals[i].weights);
        push(&a, weights);
        push(&a, "--classifier"), push(&a, judge), push(&a, "--json"), push(&a, json[i]);
        for (int j = 0; j < 4 && evals[i].extra[j]; j++) push(&a, evals[i].extra[j]);
        if ((rc = run_stage(evals[i].label, eval_main, &a)) != 0) return rc;
    }
    printf("\n==== demo: the comparison ====\n");
    rc = eval_table_write(stdout, rows, EVALS, TABLE_MARKDOWN, &err) == 0 ? 0 : 1;
    if (rc) fprintf(stderr, "dmdr demo: %s\n", err.msg);
    if (demo_write_report(dir, &err) != 0) {
        fprintf(stderr, "dmdr demo: %s\n", err.msg);
        return 1;
    }
    printf("\ndemo: the report is %s/report.html\n", dir);
    return rc;
}
