// Data parallelism across processes (tensor/dist.h), as mpirun runs it: the collectives on two
// real ranks (dist_ranks.c), a rank that fails ending the run, the training commands on two
// ranks giving the weights of one rank on the same global batch, and eval and sample splitting
// their samples. Skipped when the build
// has no MPI or mpirun is missing.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "nn/params.h"
#include "tensor/dist.h"
#include "tensor/safetensors.h"
#include "test/test_util.h"

// mpirun as CI runs it: two ranks on a two-core machine, as root; in the sanitizer build without
// the leak check, which would report OpenMPI's own allocations kept until exit (the same code
// of ours is leak-checked by the single-process suites)
#define MPIRUN "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " \
               "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 300 mpirun --oversubscribe -np"

static bool have_mpi(void) {
    if (strcmp(dist_backend(), "mpi") != 0) {
        fprintf(stderr, "dist: this build has no MPI, skipped\n");
        return false;
    }
    if (system("command -v mpirun > /dev/null 2>&1") != 0) {
        fprintf(stderr, "dist: mpirun is not installed, skipped\n");
        return false;
    }
    return true;
}

typedef struct {
    int status;
    char output[16384];
} Run;

static Run run(const char *command) {
    char full[2048];
    snprintf(full, sizeof full, "%s 2>&1", command);
    Run r = {.status = -1, .output = ""};
    FILE *p = popen(full, "r");
    ck_assert_msg(p != NULL, "cannot run %s", full);
    size_t used = fread(r.output, 1, sizeof r.output - 1, p);
    r.output[used] = '\0';
    char rest[1024];
    while (fread(rest, 1, sizeof rest, p) > 0) continue;
    int st = pclose(p);
    if (WIFEXITED(st)) r.status = WEXITSTATUS(st);
    return r;
}

static void expect(const char *command, int status, const char *needle) {
    Run r = run(command);
    ck_assert_msg(r.status == status, "%s: exit %d, expected %d; output:\n%s", command, r.status,
                  status, r.output);
    ck_assert_msg(strstr(r.output, needle) != NULL, "%s: output lacks \"%s\":\n%s", command,
                  needle, r.output);
}

START_TEST(test_collectives) {
    if (!have_mpi()) return;
    char c[1024];
    snprintf(c, sizeof c, MPIRUN " 2 '%s'", getenv("DMDR_DIST_RANKS"));
    Run r = run(c);
    ck_assert_msg(r.status == 0, "%s: exit %d:\n%s", c, r.status, r.output);
}
END_TEST

// rank 1 fails while rank 0 waits for it in an all-reduce: the run ends, naming the rank
START_TEST(test_failing_rank_ends_the_run) {
    if (!have_mpi()) return;
    char c[1024];
    snprintf(c, sizeof c, MPIRUN " 2 '%s' fail-rank-1", getenv("DMDR_DIST_RANKS"));
    Run r = run(c);
    ck_assert_msg(r.status != 0 && r.status != 124, "%s: exit %d (124: it hung):\n%s", c,
                  r.status, r.output);
    ck_assert_msg(strstr(r.output, "rank 1 of 2 failed"), "no message naming rank 1:\n%s",
                  r.output);
}
END_TEST

// The largest |a - b| over the weights the two files share by name (the parameters and their
// EMA; not AdamW's moments, whose entries for near-zero gradients are rounding noise), relative
// to the largest |a| of that tensor (so that no tensor's scale hides another's difference), or
// to 1e-6 where that is smaller.
static double max_relative_difference(const char *a_path, const char *b_path) {
    char worst_name[256] = "";
    Safetensors a, b;
    Error err;
    ck_assert_msg(safetensors_load(a_path, &a, &err) == 0, "%s", err.msg);
    ck_assert_msg(safetensors_load(b_path, &b, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(a.count, b.count);
    double worst = 0;
    for (int i = 0; i < a.count; i++) {
        Tensor *x = a.tensors[i], *y = safetensors_find(&b, a.names[i]);
        ck_assert_msg(y != NULL && tensor_numel(y) == tensor_numel(x), "%s differs in shape",
                      a.names[i]);
        if (x->dtype != DTYPE_F32 || strncmp(a.names[i], "optim.", 6) == 0) continue;
        const float *xv = tensor_f32(x), *yv = tensor_f32(y);
        double scale = 1e-6, diff = 0;
        for (int64_t j = 0; j < tensor_numel(x); j++) {
            scale = fmax(scale, fabs(xv[j]));
            diff = fmax(diff, fabs((double)xv[j] - yv[j]));
        }
        if (diff / scale > worst) {
            worst = diff / scale;
            snprintf(worst_name, sizeof worst_name, "%s (largest |value| %.3g)", a.names[i], scale);
        }
    }
    fprintf(stderr, "dist: %s against %s: the largest relative difference is in %s\n", a_path,
            b_path, worst_name);
    safetensors_free(&a);
    safetensors_free(&b);
    return worst;
}

// Two ranks differ from one only in the order of the gradient sums (each rank's half, then
// the halves), a rounding of about 1e-7 per step that AdamW's per-element normalisation can
// amplify where a gradient is near zero. Every weight tensor of the checkpoint (the parameters
// and the EMA) must agree to 1e-3 of its largest value; seen on the 2-core machine: 3.0e-5 for
// the teacher (20 steps), 9.8e-7 for the classifier (10 steps).
#define RANKS_TOLERANCE 1e-3
// Distillation's fake score, trained at a high rate for the test (below), takes AdamW steps of
// the full rate on entries whose gradient is near zero in either run: its LoRA B differs by up
// to 1e-2 of its largest value (seen 1.0e-4 after 3 steps), and the difference grows with the
// steps; its losses agree to 1e-4 over the first three.
#define DISTILL_TOLERANCE 2e-2

// `dmdr <common>` on 1 rank into dir/one and on 2 into dir/two, each printing `done`; -> the
// largest relative difference between their files `file` (under one/ and two/), printed
static double one_against_two(const char *dir, const char *common, const char *done,
                              const char *file, const char *what) {
    const char *exe = getenv("DMDR_EXE");
    char c[2048], a[600], b[600];
    snprintf(c, sizeof c, "'%s' %s --out %s/one", exe, common, dir);
    expect(c, 0, done);
    snprintf(c, sizeof c, MPIRUN " 2 '%s' %s --out %s/two", exe, common, dir);
    expect(c, 0, done);
    snprintf(a, sizeof a, "%s/one/%s", dir, file);
    snprintf(b, sizeof b, "%s/two/%s", dir, file);
    double d = max_relative_difference(a, b);
    fprintf(stderr, "dist: 1 rank against 2, %s: largest relative difference %.3g\n", what, d);
    return d;
}

// 1 rank against 2 on the same global batch of 32, 20 steps of the tiny teacher in fp32; then
// a 2-rank resume rewrites its last checkpoint bit for bit.
START_TEST(test_teacher_two_ranks) {
    if (!have_mpi()) return;
    const char *exe = getenv("DMDR_EXE");
    char dir[] = "/tmp/dmdr-dist-XXXXXX", c[2048], b[600];
    ck_assert(mkdtemp(dir) != NULL);
    const char *common = "train-teacher --preset tiny --steps 20 --batch 32 --precision fp32 "
                         "--threads 1 --checkpoint-every 10 --sample-every 0 --quiet true";
    double d = one_against_two(dir, common, "done: step 20",
                               "checkpoints/step-000020.safetensors", "tiny teacher, 20 steps");
    ck_assert_msg(d < RANKS_TOLERANCE, "1 and 2 ranks differ by %g", d);
    snprintf(b, sizeof b, "%s/two/checkpoints/step-000020.safetensors", dir);

    snprintf(c, sizeof c, "cp %s %s/first.safetensors", b, dir);
    ck_assert(system(c) == 0);
    snprintf(c, sizeof c, MPIRUN " 2 '%s' train-teacher --resume "
             "%s/two/checkpoints/step-000010.safetensors --threads 1 --quiet true", exe, dir);
    expect(c, 0, "done: step 20");
    snprintf(c, sizeof c, "cmp %s %s/first.safetensors", b, dir);
    ck_assert_msg(system(c) == 0, "the 2-rank resume differs from the uninterrupted run");

    // the batch is the global batch: it must split over the ranks
    snprintf(c, sizeof c, MPIRUN " 2 '%s' %s --batch 33 --out %s/odd", exe, common, dir);
    expect(c, 1, "train.batch 33 does not split over 2 ranks");
    // a command that runs on one process says so instead of repeating itself on each
    snprintf(c, sizeof c, MPIRUN " 2 '%s' info %s/one/model.safetensors", exe, dir);
    expect(c, 2, "runs on one process");
    test_remove_tree(dir);
}
END_TEST

// The judge's training on 2 ranks: the same weights as on 1
START_TEST(test_classifier_two_ranks) {
    if (!have_mpi()) return;
    char dir[] = "/tmp/dmdr-dist-XXXXXX";
    ck_assert(mkdtemp(dir) != NULL);
    const char *common = "train-classifier --preset tiny --batch 50 --precision fp32 --threads 1 "
                         "--train-examples 500 --test-examples 200 --epochs 1 --quiet true";
    double d = one_against_two(dir, common, "done: step 10", "classifier.safetensors",
                               "tiny classifier, 10 steps");
    ck_assert_msg(d < RANKS_TOLERANCE, "1 and 2 ranks differ by %g", d);
    test_remove_tree(dir);
}
END_TEST

// The dmd_loss and fake_loss of a step's line of a distillation's metrics.jsonl
static void metrics_losses(const char *path, int step, double out[2]) {
    const char *text = test_read_text(path);
    char key[32];
    snprintf(key, sizeof key, "{\"step\": %d,", step);
    const char *line = strstr(text, key);
    ck_assert_msg(line != NULL, "%s has no line for step %d", path, step);
    const char *dmd = strstr(line, "\"dmd_loss\": "), *fake = strstr(line, "\"fake_loss\": ");
    ck_assert_msg(dmd && fake, "%s step %d: no losses", path, step);
    out[0] = atof(dmd + 12);
    out[1] = atof(fake + 13);
}

// Distillation on 2 ranks (a 4-step generator, so that backward simulation's chains are
// sharded too): the generator and the fake score of 1 rank. The fake score's rate is high so
// that after a few steps it differs from the real one and the DMD gradient is not rounding
// noise, which AdamW would blow up to full-size steps. PPO refuses to run on 2 ranks.
START_TEST(test_distill_two_ranks) {
    if (!have_mpi()) return;
    const char *exe = getenv("DMDR_EXE");
    char dir[] = "/tmp/dmdr-dist-XXXXXX", c[2048], a[600], b[600], last[600];
    ck_assert(mkdtemp(dir) != NULL);
    snprintf(c, sizeof c, "'%s' train-teacher --preset tiny --steps 30 --threads 1 --quiet true "
             "--out %s/t", exe, dir);
    expect(c, 0, "done: step 30");
    char common[1024];
    snprintf(common, sizeof common, "distill --preset tiny --teacher %s/t/model.safetensors "
             "--steps 3 --batch 16 --gen-steps 4 --backsim current --fake-lr 0.01 --precision fp32 "
             "--threads 1 --quiet true --log-every 1", dir);
    double d = one_against_two(dir, common, "done: generator step 3",
                               "checkpoints/step-000003.safetensors",
                               "tiny 4-step distillation, 3 generator steps");
    snprintf(last, sizeof last, "%s/two/checkpoints/step-000003.safetensors", dir);
    ck_assert_msg(d < DISTILL_TOLERANCE, "1 and 2 ranks differ by %g", d);
    // the losses of every generator step, each the global batch's
    for (int step = 1; step <= 3; step++) {
        double one[2], two[2];
        snprintf(a, sizeof a, "%s/one/metrics.jsonl", dir);
        snprintf(b, sizeof b, "%s/two/metrics.jsonl", dir);
        metrics_losses(a, step, one);
        metrics_losses(b, step, two);
        for (int k = 0; k < 2; k++)
            ck_assert_msg(fabs(one[k] - two[k]) <= 1e-4 * fabs(one[k]),
                          "step %d: %s %.9g on 1 rank, %.9g on 2", step,
                          k ? "fake_loss" : "dmd_loss", one[k], two[k]);
    }
    snprintf(c, sizeof c, MPIRUN " 2 '%s' distill --init %s --rl ppo --classifier %s/t/model.safetensors "
             "--threads 1 --out %s/ppo", exe, last, dir, dir);
    expect(c, 1, "ppo runs on one process");
    test_remove_tree(dir);
}
END_TEST

// A report's number
static double report_number(const char *path, const char *key) {
    const char *text = test_read_text(path);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\":", key);
    const char *at = strstr(text, quoted);
    ck_assert_msg(at != NULL, "%s has no %s", path, key);
    return atof(at + strlen(quoted));
}

// eval and sample split their samples over 2 ranks and rank 0 measures or draws them all: a
// teacher's figures and grid are those of 1 rank (the ODE sampler is deterministic given the
// noise, which every rank draws for all samples)
START_TEST(test_eval_sample_two_ranks) {
    if (!have_mpi()) return;
    const char *exe = getenv("DMDR_EXE");
    char dir[] = "/tmp/dmdr-dist-XXXXXX", c[2048], a[600], b[600];
    ck_assert(mkdtemp(dir) != NULL);
    snprintf(c, sizeof c, "'%s' train-teacher --preset tiny --steps 30 --threads 1 --quiet true "
             "--out %s/t", exe, dir);
    expect(c, 0, "done: step 30");
    snprintf(c, sizeof c, "'%s' train-classifier --preset tiny --threads 1 --quiet true --out %s/c",
             exe, dir);
    expect(c, 0, "done: step");
    for (int ranks = 1; ranks <= 2; ranks++) {
        char launch[256] = "";
        if (ranks == 2) snprintf(launch, sizeof launch, MPIRUN " 2");
        snprintf(c, sizeof c, "%s '%s' eval %s/t/model.safetensors --classifier "
                 "%s/c/classifier.safetensors --steps 4 --per-class 6 --precision fp32 --threads 1 "
                 "--json %s/e%d.json", launch, exe, dir, dir, dir, ranks);
        expect(c, 0, "real floor");
        snprintf(c, sizeof c, "%s '%s' sample %s/t/model.safetensors --steps 4 --per-class 4 "
                 "--precision fp32 --threads 1 --out %s/s%d.png", launch, exe, dir, dir, ranks);
        expect(c, 0, "wrote");
    }
    snprintf(a, sizeof a, "%s/e1.json", dir);
    snprintf(b, sizeof b, "%s/e2.json", dir);
    const char *keys[] = {"fid", "precision", "recall", "accuracy", "is", "reward"};
    for (int i = 0; i < 6; i++) {
        double one = report_number(a, keys[i]), two = report_number(b, keys[i]);
        ck_assert_msg(fabs(one - two) <= 1e-4 * fmax(1.0, fabs(one)), "%s: %.9g on 1 rank, %.9g "
                      "on 2", keys[i], one, two);
    }
    snprintf(c, sizeof c, "cmp %s/s1.png %s/s2.png", dir, dir);
    ck_assert_msg(system(c) == 0, "the 2-rank grid differs from the 1-rank one");
    test_remove_tree(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("dist");
    tcase_add_test(tc, test_collectives);
    tcase_add_test(tc, test_failing_rank_ends_the_run);
    tcase_add_test(tc, test_teacher_two_ranks);
    tcase_add_test(tc, test_classifier_two_ranks);
    tcase_add_test(tc, test_distill_two_ranks);
    tcase_add_test(tc, test_eval_sample_two_ranks);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
