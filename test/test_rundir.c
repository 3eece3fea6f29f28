// Run directories after a crash or a full disk (issue 12): what interrupted atomic writes left
// is cleared when a run opens, rewriting metrics.jsonl leaves no temporary file when it fails,
// and a step's metrics line reaches metrics.jsonl only once the step's checkpoint landed.
// The last cases run the dmdr binary (DMDR_EXE) through each training loop.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tensor/safetensors.h"
#include "tensor/tensor.h"
#include "test/test_util.h"
#include "tools/rundir.h"

#define FASHION_MNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

// test_scratch_dir/name
static const char *scratch(const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", test_scratch_dir, name);
    return buf;
}

static bool exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs("partial", f);
    ck_assert_int_eq(fclose(f), 0);
}


// A new run directory at test_scratch_dir/name, closed again.
static void make_run(const char *name, char *dir, size_t size) {
    Config c;
    Error err = {{0}};
    config_defaults(&c);
    ck_assert_msg(config_apply_preset(&c, "toy2d", &err) == 0, "%s", err.msg);
    snprintf(c.run.out, sizeof c.run.out, "%s", scratch(name, dir, size));
    RunDir rd;
    ck_assert_msg(rundir_create(&rd, &c, "train-teacher", &err) == 0, "%s", err.msg);
    rundir_close(&rd);
}

static int resume(RunDir *rd, const char *dir, int64_t step, Error *err) {
    Config c;
    config_defaults(&c);
    ck_assert(config_apply_preset(&c, "toy2d", err) == 0);
    return rundir_resume(rd, dir, &c, step, NULL, err);
}

// The pid of a process that has exited and been reaped: a writer that is surely gone.
static long dead_pid(void) {
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) _exit(0);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    return (long)pid;
}

// fd 2 into a file while `fn` runs -> what was written (static buffer).
static char *stderr_of(void (*fn)(void *), void *arg) {
    char path[600];
    scratch("stderr.txt", path, sizeof path);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return test_read_text(path);
}

typedef struct {
    const char *dir;
    int rc;
    Error err;
} ResumeCall;

static void resume_call(void *arg) {
    ResumeCall *call = arg;
    RunDir rd;
    call->rc = resume(&rd, call->dir, 0, &call->err);
    if (call->rc == 0) rundir_close(&rd);
}

// As a --resume of one of the run's checkpoints does it, without --out.
static void continue_call(void *arg) {
    ResumeCall *call = arg;
    RunDir rd;
    Config c;
    char checkpoint[1200];
    config_defaults(&c);
    snprintf(checkpoint, sizeof checkpoint, "%s/checkpoints/step-000500.safetensors", call->dir);
    call->rc = rundir_continue(&rd, checkpoint, NULL, &c, "train-teacher", 500, NULL, &call->err);
    if (call->rc == 0) rundir_close(&rd);
}

static int count_lines_with(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++) n++;
    return n;
}

// ---- orphans of interrupted writes --------------------------------------------------------------

// A SIGKILL between an atomic write's create and rename leaves "<name>.tmp.<pid>"; resuming the
// run removes each such file of a finished process, in the run, checkpoints/ and samples/,
// with one line each, and leaves everything else, a live writer's file included.
START_TEST(test_resume_removes_orphaned_tmp_files) {
    char dir[600], path[2048];
    make_run("orphans", dir, sizeof dir);
    long gone = dead_pid(), live = (long)getppid(), self = (long)getpid();
    char orphans[4][200], keep[10][200];
    snprintf(orphans[0], 200, "checkpoints/step-000500.safetensors.tmp.%ld", gone);
    snprintf(orphans[1], 200, "samples/step-000500.png.tmp.%ld", gone);
    snprintf(orphans[2], 200, "metrics.jsonl.tmp.%ld", gone);
    snprintf(orphans[3], 200, "model.safetensors.tmp.%ld", self); // a same-pid predecessor's
    snprintf(keep[0], 200, "checkpoints/step-000600.safetensors.tmp.%ld", live);
    const char *plain[] = {"checkpoints/step-000500.safetensors", "notes.tmp", "notes.tmp.12a",
                           ".tmp.123", "x.tmp.", "x.tmp.123.bak", "x.temp.123", "tmp.123",
                           "samples/a.tmp"};
    for (int i = 0; i < 9; i++) snprintf(keep[i + 1], 200, "%s", plain[i]);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%.199s", dir, orphans[i]);
        touch(path);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(path, sizeof path, "%s/%.199s", dir, keep[i]);
        touch(path);
    }
    snprintf(path, sizeof path, "%s/samples/folder.tmp.%ld", dir, gone); // not a regular file
    ck_assert_int_eq(mkdir(path, 0755), 0);

    ResumeCall call = {.dir = dir};
    char *said = stderr_of(resume_call, &call);
    ck_assert_msg(call.rc == 0, "%s", call.err.msg);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%.199s", dir, orphans[i]);
        ck_assert_msg(!exists(path), "the orphan %s is still there", orphans[i]);
        char line[512];
        snprintf(line, sizeof line, "run: removed %.199s, left by an interrupted write\n",
                 orphans[i]);
        ck_assert_msg(strstr(said, line) != NULL, "stderr lacks \"%s\":\n%s", line, said);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(path, sizeof path, "%s/%.199s", dir, keep[i]);
        ck_assert_msg(exists(path), "%s was removed", keep[i]);
    }
    snprintf(path, sizeof path, "%s/samples/folder.tmp.%ld", dir, gone);
    ck_assert_msg(exists(path), "a folder was removed");
    ck_assert_msg(count_lines_with(said, "run: removed") == 4, "one line per file:\n%s", said);
    ck_assert_msg(strstr(said, "still running") != NULL, "no word of the live writer:\n%s", said);

    snprintf(path, sizeof path, "%s/%.199s", dir, orphans[0]); // again, found by rundir_continue
    touch(path);
    said = stderr_of(continue_call, &call);
    ck_assert_msg(call.rc == 0, "%s", call.err.msg);
    ck_assert_msg(!exists(path) && count_lines_with(said, "run: removed") == 1, "%s", said);
}
END_TEST

// ---- rewriting metrics.jsonl ---------------------------------------------------------------------

// The entries of dir whose name has ".tmp" in it.
static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp") != NULL;
    closedir(d);
    return n;
}

// A resume rewrites metrics.jsonl to the lines up to its step; when that fails (here the read:
// metrics.jsonl is a directory, so the rename fails too) the error names the file and no
// temporary file stays behind.
START_TEST(test_failed_metrics_rewrite_leaves_no_tmp) {
    char dir[600], path[1200];
    make_run("trim_fails", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    RunDir rd;
    Error err = {{0}};
    ck_assert_int_eq(resume(&rd, dir, 0, &err), -1);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message does not name %s: %s", path, err.msg);
    ck_assert_msg(count_tmp_files(dir) == 0, "a temporary file is left in %s", dir);
}
END_TEST

// A full disk while rewriting metrics.jsonl (the temporary file made a link to /dev/full): the
// resume fails with ENOSPC, metrics.jsonl keeps its lines and no temporary file stays.
START_TEST(test_full_disk_metrics_rewrite) {
    if (access("/dev/full", W_OK) != 0) {
        fprintf(stderr, "full disk: no /dev/full, skipped\n");
        return;
    }
    char dir[600], path[1200], tmp[1300];
    make_run("trim_full", dir, sizeof dir);
    RunDir rd;
    Error err = {{0}};
    ck_assert_msg(resume(&rd, dir, 0, &err) == 0, "%s", err.msg);
    Metric m = {"loss", 0.5};
    ck_assert(rundir_log(&rd, 1, &m, 1, &err) == 0);
    rundir_close(&rd);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    ck_assert_int_eq(symlink("/dev/full", tmp), 0);
    ck_assert_int_eq(resume(&rd, dir, 5, &err), -1);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, strerror(ENOSPC)), "message: %s",
                  err.msg);
    ck_assert_msg(count_tmp_files(dir) == 0, "a temporary file is left in %s", dir);
    ck_assert_str_eq(test_read_text(path), "{\"step\": 1, \"loss\": 0.5}\n");
}
END_TEST

// ---- a step's line waits for its checkpoint ------------------------------------------------------

static int save_tensor(const char *path, Error *err) {
    tensor_scope_begin();
    Tensor *t = tensor_zeros(shape1(3), DEVICE_CPU);
    const char *name = "w";
    int rc = safetensors_save(path, 1, &name, &t, 0, NULL, NULL, err);
    tensor_scope_end();
    return rc;
}

// Lines logged under rundir_hold reach metrics.jsonl at rundir_commit, once the checkpoint
// landed; when the save fails (the checkpoint's path is a directory) rundir_close drops them.
START_TEST(test_held_lines_wait_for_checkpoint) {
    char dir[600], path[1200];
    make_run("held", dir, sizeof dir);
    RunDir rd;
    Error err = {{0}};
    ck_assert_msg(resume(&rd, dir, 0, &err) == 0, "%s", err.msg);
    Metric m = {"loss", 0.25};
    ck_assert(rundir_log(&rd, 1, &m, 1, &err) == 0); // no checkpoint due: written at once
    rundir_hold(&rd);
    ck_assert(rundir_log(&rd, 2, &m, 1, &err) == 0);
    ck_assert(rundir_log(&rd, 2, &m, 1, &err) == 0); // a second line of the step (an epoch's)
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    ck_assert_str_eq(test_read_text(path), "{\"step\": 1, \"loss\": 0.25}\n");
    ck_assert_msg(save_tensor(rundir_step_path(&rd, "checkpoints", 2, "safetensors", path,
                                               sizeof path), &err) == 0, "%s", err.msg);
    ck_assert_msg(rundir_commit(&rd, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rundir_commit(&rd, &err), 0); // nothing held: nothing to do

    rundir_hold(&rd);
    ck_assert(rundir_log(&rd, 4, &m, 1, &err) == 0);
    ck_assert_int_eq(mkdir(rundir_step_path(&rd, "checkpoints", 4, "safetensors", path,
                                            sizeof path), 0755), 0);
    ck_assert_int_eq(save_tensor(path, &err), -1);
    rundir_close(&rd);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    ck_assert_str_eq(test_read_text(path), "{\"step\": 1, \"loss\": 0.25}\n"
                                      "{\"step\": 2, \"loss\": 0.25}\n"
                                      "{\"step\": 2, \"loss\": 0.25}\n");
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    ck_assert_int_eq(count_tmp_files(path), 0);
    ck_assert_int_eq(count_tmp_files(dir), 0);
}
END_TEST

// ---- through the training loops ------------------------------------------------------------------

// `dmdr <args>` with stdout and stderr in one buffer -> the exit status.
static int run_dmdr(const char *args, char *output, size_t size) {
    const char *exe = getenv("DMDR_EXE");
    ck_assert_msg(exe != NULL, "DMDR_EXE is not set (run through meson test)");
    char command[1600];
    snprintf(command, sizeof command, "'%s' %s 2>&1", exe, args);
    FILE *p = popen(command, "r");
    ck_assert_msg(p != NULL, "cannot run %s", command);
    size_t used = fread(output, 1, size - 1, p);
    output[used] = '\0';
    char rest[1024]; // drained, so the command never dies of SIGPIPE
    while (fread(rest, 1, sizeof rest, p) > 0) continue;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_run(const char *args, int status, const char *needle) {
    static char output[16384];
    int got = run_dmdr(args, output, sizeof output);
    ck_assert_msg(got == status && strstr(output, needle), "dmdr %s: exit %d (expected %d), "
                  "output lacks \"%s\"?\n%s", args, got, status, needle, output);
}

// The steps of metrics.jsonl's lines, in order (at most max) -> how many.
static int metrics_steps(const char *dir, int *steps, int max) {
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = test_read_text(path);
    int n = 0;
    for (char *line = strtok(text, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        ck_assert_msg(cJSON_IsObject(o), "not JSON: %s", line);
        steps[n++] = (int)cJSON_GetObjectItem(o, "step")->valuedouble;
        cJSON_Delete(o);
    }
    return n;
}

// A resumed run whose next checkpoint, at `failing`, cannot land (a directory holds its
// path): the run fails naming that checkpoint, metrics.jsonl has lines up to the step before
// and none for `failing`, and no temporary file is left.
static void expect_no_line_past_checkpoint(const char *run, const char *resume_args, int failing,
                                           const char *what) {
    char path[2048], args[2048];
    snprintf(path, sizeof path, "%s/checkpoints/step-%06d.safetensors", run, failing);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(args, sizeof args, "%s --threads 1", resume_args);
    expect_run(args, 1, path);
    int steps[256], n = metrics_steps(run, steps, 256);
    ck_assert_msg(n > 0 && steps[n - 1] == failing - 1, "%s: the last metrics line is for step %d,"
                  " expected %d (the checkpoint of step %d failed)", what, n ? steps[n - 1] : -1,
                  failing - 1, failing);
    char sub[2048];
    ck_assert_int_eq(count_tmp_files(run), 0);
    snprintf(sub, sizeof sub, "%s/checkpoints", run);
    ck_assert_int_eq(count_tmp_files(sub), 0);
}

START_TEST(test_teacher_logs_a_step_after_its_checkpoint) {
    char run[600], args[1600];
    scratch("teacher", run, sizeof run);
    snprintf(args, sizeof args, "train-teacher --preset toy2d --steps 4 --log-every 1 "
             "--checkpoint-every 2 --sample-every 0 --threads 1 --out %s", run);
    expect_run(args, 0, "done: step 4");
    snprintf(args, sizeof args, "train-teacher --resume %s/checkpoints/step-000004.safetensors "
             "--steps 6", run);
    expect_no_line_past_checkpoint(run, args, 6, "train-teacher");
}
END_TEST

START_TEST(test_distill_logs_a_step_after_its_checkpoint) {
    char dir[600], run[700], args[1600];
    scratch("distill", dir, sizeof dir);
    snprintf(args, sizeof args, "train-teacher --preset toy2d --steps 2 --sample-every 0 "
             "--threads 1 --out %s/t", dir);
    expect_run(args, 0, "done: step 2");
    snprintf(run, sizeof run, "%s/d", dir);
    snprintf(args, sizeof args, "distill --preset toy2d --teacher %s/t/model.safetensors "
             "--steps 2 --log-every 1 --checkpoint-every 2 --sample-every 0 --threads 1 --out %s",
             dir, run);
    expect_run(args, 0, "done: generator step 2");
    snprintf(args, sizeof args, "distill --resume %s/checkpoints/step-000002.safetensors "
             "--steps 4", run);
    expect_no_line_past_checkpoint(run, args, 4, "distill");
}
END_TEST

// The classifier logs two lines at an epoch's end (the training one and the test-set one):
// neither may come before the epoch's checkpoint.
START_TEST(test_classifier_logs_an_epoch_after_its_checkpoint) {
    if (access(FASHION_MNIST, R_OK) != 0) {
        fprintf(stderr, "classifier: dataset-fashion-mnist is not installed, skipped\n");
        return;
    }
    char run[600], args[1600];
    scratch("classifier", run, sizeof run);
    snprintf(args, sizeof args, "train-classifier --preset tiny --epochs 1 --log-every 1 "
             "--threads 1 --out %s", run);
    expect_run(args, 0, "done: step 20");
    snprintf(args, sizeof args, "train-classifier --resume %s/checkpoints/step-000020.safetensors"
             " --epochs 2", run);
    expect_no_line_past_checkpoint(run, args, 40, "train-classifier");
}
END_TEST

static Suite *rundir_suite(void) {
    Suite *s = suite_create("rundir");
    TCase *tc = tcase_create("rundir");
    tcase_add_unchecked_fixture(tc, test_scratch_setup, test_scratch_teardown);
    tcase_add_test(tc, test_resume_removes_orphaned_tmp_files);
    tcase_add_test(tc, test_failed_metrics_rewrite_leaves_no_tmp);
    tcase_add_test(tc, test_full_disk_metrics_rewrite);
    tcase_add_test(tc, test_held_lines_wait_for_checkpoint);
    tcase_add_test(tc, test_teacher_logs_a_step_after_its_checkpoint);
    tcase_add_test(tc, test_distill_logs_a_step_after_its_checkpoint);
    tcase_add_test(tc, test_classifier_logs_an_epoch_after_its_checkpoint);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(rundir_suite()); }
