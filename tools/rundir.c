#include "tools/rundir.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kernels/check.h"
#include "tensor/dist.h"
#include "tools/report/report.h"

static bool dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return true; // missing: made below
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
    closedir(d);
    return empty;
}

const char *rundir_path(const RunDir *rd, const char *name, char *out, size_t size) {
    snprintf(out, size, "%s/%s", rd->dir, name);
    return out;
}

const char *rundir_step_path(const RunDir *rd, const char *folder, int64_t step, const char *ext,
                             char *out, size_t size) {
    snprintf(out, size, "%s/%s/step-%06lld.%s", rd->dir, folder, (long long)step, ext);
    return out;
}

Config rundir_repeatable(const Config *cfg) {
    Config c = *cfg;
    memset(c.run.out, 0, sizeof c.run.out);
    return c;
}

// The process id in a name "<name>.tmp.<digits>", the temporary file of an atomic write
// (safetensors, PNG, metrics.jsonl) -> > 0, else 0. Digits beyond any pid give 0 too.
static long tmp_writer(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || dot - name < 5 || strncmp(dot - 4, ".tmp", 4) != 0 || !dot[1]) return 0;
    for (const char *p = dot + 1; *p; p++)
        if (!isdigit((unsigned char)*p)) return 0;
    errno = 0;
    long pid = strtol(dot + 1, NULL, 10);
    return errno == 0 && pid > 0 && pid == (pid_t)pid ? pid : 0;
}

// Another live process may be writing into this run (a second dmdr resumed by mistake): its
// file is not an orphan. This process writes nothing yet, so a file with its own pid is one
// left by an earlier process that had the same pid (containers reuse small pids).
static bool writer_running(long pid) {
    return pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

// Removes the "<name>.tmp.<pid>" files in <dir>/<folder> whose writer is gone: a write killed
// between create and rename (SIGKILL, power loss) leaves one, and nothing else ever would.
static void remove_orphans(const RunDir *rd, const char *folder) {
    char path[CONFIG_PATH_MAX + 300];
    snprintf(path, sizeof path, "%s%s%s", rd->dir, folder[0] ? "/" : "", folder);
    DIR *d = opendir(path);
    if (!d) return; // not made yet: nothing in it
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = tmp_writer(e->d_name);
        char shown[300], file[CONFIG_PATH_MAX + 600];
        snprintf(shown, sizeof shown, "%s%s%s", folder, folder[0] ? "/" : "", e->d_name);
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        struct stat st;
        if (pid == 0 || lstat(file, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (writer_running(pid))
            fprintf(stderr, "run: kept %s: process %ld, which writes it, is still running\n",
                    shown, pid);
        else if (unlink(file) != 0)
            fprintf(stderr, "run: cannot remove %s, left by an interrupted write: %s\n", shown,
                    strerror(errno));
        else
            fprintf(stderr, "run: removed %s, left by an interrupted write\n", shown);
    }
    closedir(d);
}

// Makes the sub-folders, clears what interrupted writes left, writes config.ini and opens
// metrics.jsonl for appending.
static int populate(RunDir *rd, const Config *cfg, Error *err) {
    char path[CONFIG_PATH_MAX + 32];
    Config repeatable = rundir_repeatable(cfg);
    if (make_dirs(rundir_path(rd, "checkpoints", path, sizeof path), err) != 0 ||
        make_dirs(rundir_path(rd, "samples", path, sizeof path), err) != 0)
        return -1;
    remove_orphans(rd, "");
    remove_orphans(rd, "checkpoints");
    remove_orphans(rd, "samples");
    if (config_write(&repeatable, rundir_path(rd, "config.ini", path, sizeof path), err) != 0)
        return -1;
    rd->metrics = fopen(rundir_path(rd, "metrics.jsonl", path, sizeof path), "a");
    if (!rd->metrics) return error_set(err, "cannot open '%s': %s", path, strerror(errno));
    return 0;
}

int rundir_create(RunDir *rd, const Config *cfg, const char *command, Error *err) {
    memset(rd, 0, sizeof *rd);
    if (dist_rank() != 0) {
        rd->silent = true;
        snprintf(rd->dir, sizeof rd->dir, "%s", cfg->run.out[0] ? cfg->run.out : "(rank 0's)");
        return 0;
    }
    if (cfg->run.out[0]) {
        snprintf(rd->dir, sizeof rd->dir, "%s", cfg->run.out);
        if (!dir_is_empty(rd->dir))
            return error_set(err, "run directory '%s' is not empty (choose another --out, or "
                                  "--resume a checkpoint)", rd->dir);
    } else {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r(&now, &tm));
        struct stat st;
        for (int n = 1;; n++) {
            if (n == 1) snprintf(rd->dir, sizeof rd->dir, "runs/%s-%s-%s", command, cfg->preset, stamp);
            else snprintf(rd->dir, sizeof rd->dir, "runs/%s-%s-%s-%d", command, cfg->preset, stamp, n);
            if (stat(rd->dir, &st) != 0) break;
        }
    }
    snprintf(rd->command, sizeof rd->command, "%s", command);
    if (make_dirs(rd->dir, err) != 0) return -1;
    return populate(rd, cfg, err);
}

int rundir_of_checkpoint(const char *checkpoint, char *out) {
    char buf[CONFIG_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", checkpoint) >= (int)sizeof buf) return -1;
    char *slash = strrchr(buf, '/');
    if (!slash) return -1;
    *slash = '\0'; // buf: the checkpoint's folder
    const char *folder = strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf;
    if (strcmp(folder, "checkpoints") != 0) return -1;
    if (folder == buf) snprintf(buf, sizeof buf, ".");
    else *(char *)(folder - 1) = '\0';
    char config[CONFIG_PATH_MAX + 16];
    snprintf(config, sizeof config, "%s/config.ini", buf);
    if (access(config, R_OK) != 0) return -1;
    snprintf(out, CONFIG_PATH_MAX, "%s", buf);
    return 0;
}

// Copies the lines of `in` whose step is <= step to `out`; *elapsed_s: the last kept one's.
static void copy_lines_to(FILE *in, FILE *out, int64_t step, double *elapsed_s) {
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) > 0) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step");
        if (cJSON_IsNumber(s) && s->valuedouble <= (double)step) {
            fputs(line, out);
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "elapsed_s");
            if (cJSON_IsNumber(e)) *elapsed_s = e->valuedouble;
        }
        cJSON_Delete(o);
    }
    free(line);
}

// Keeps the lines of metrics.jsonl whose step is <= step, rewritten atomically like a
// checkpoint (<path>.tmp.<pid>, fsync, rename): a full disk or a crash leaves the old file
// whole, and a failure removes the temporary file instead of leaving it beside the run.
static int trim_metrics(const char *path, int64_t step, double *elapsed_s, Error *err) {
    *elapsed_s = 0;
    FILE *in = fopen(path, "r");
    if (!in) return errno == ENOENT ? 0 : error_set(err, "cannot read '%s': %s", path, strerror(errno));
    char tmp[CONFIG_PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return error_set(err, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    }
    copy_lines_to(in, out, step, elapsed_s);
    const char *failed = NULL;
    if (ferror(in)) failed = "read";
    else if (fflush(out) != 0 || ferror(out)) failed = "write";
    else if (fsync(fileno(out)) != 0) failed = "fsync";
    int saved = errno;
    fclose(in);
    if (fclose(out) != 0 && !failed) {
        failed = "close";
        saved = errno;
    }
    if (!failed && rename(tmp, path) != 0) {
        failed = "rename";
        saved = errno;
    }
    if (!failed) return 0;
    remove(tmp);
    return error_set(err, "%s: cannot keep its lines up to step %lld: %s of %s failed: %s", path,
                     (long long)step, failed, tmp, strerror(saved));
}

int rundir_resume(RunDir *rd, const char *dir, const Config *cfg, int64_t step,
                  double *elapsed_s, Error *err) {
    memset(rd, 0, sizeof *rd);
    if (snprintf(rd->dir, sizeof rd->dir, "%s", dir) >= (int)sizeof rd->dir)
        return error_set(err, "%s: path too long", dir);
    if (dist_rank() != 0) {
        rd->silent = true;
        if (elapsed_s) *elapsed_s = 0;
        return 0;
    }
    if (make_dirs(rd->dir, err) != 0) return -1;
    char path[CONFIG_PATH_MAX + 32];
    double elapsed = 0;
    if (trim_metrics(rundir_path(rd, "metrics.jsonl", path, sizeof path), step, &elapsed, err) != 0)
        return -1;
    if (elapsed_s) *elapsed_s = elapsed;
    return populate(rd, cfg, err);
}

void rundir_hold(RunDir *rd) {
    if (rd->held || rd->silent) return;
    rd->held = open_memstream(&rd->held_text, &rd->held_size);
    DMDR_CHECK(rd->held != NULL, "out of host memory");
}

// Lines still held (a checkpoint that failed) never reach metrics.jsonl.
static void drop_held(RunDir *rd) {
    if (rd->held) fclose(rd->held);
    free(rd->held_text);
    rd->held = NULL;
    rd->held_text = NULL;
    rd->held_size = 0;
}

static int flush_metrics(RunDir *rd, Error *err) {
    if (fflush(rd->metrics) != 0 || ferror(rd->metrics))
        return error_set(err, "%s/metrics.jsonl: write failed: %s", rd->dir, strerror(errno));
    return 0;
}

int rundir_commit(RunDir *rd, Error *err) {
    if (!rd->held) return 0;
    fclose(rd->held); // sets held_text and held_size
    rd->held = NULL;
    fwrite(rd->held_text, 1, rd->held_size, rd->metrics);
    drop_held(rd);
    return flush_metrics(rd, err);
}

int rundir_log(RunDir *rd, int64_t step, const Metric *metrics, int count, Error *err) {
    if (rd->silent) return 0;
    FILE *f = rd->held ? rd->held : rd->metrics;
    fprintf(f, "{\"step\": %lld", (long long)step);
    for (int i = 0; i < count; i++) {
        if (isfinite(metrics[i].value))
            fprintf(f, ", \"%s\": %.9g", metrics[i].key, metrics[i].value);
        else
            fprintf(f, ", \"%s\": null", metrics[i].key);
    }
    fputs("}\n", f);
    return rd->held ? 0 : flush_metrics(rd, err);
}

void rundir_report(RunDir *rd) {
    if (rd->silent || rd->report_failed) return;
    char title[CONFIG_PATH_MAX + 64];
    snprintf(title, sizeof title, "dmdr %s: %s", rd->command[0] ? rd->command : "run", rd->dir);
    Error err;
    if (report_write_run(rd->dir, title, &err) != 0) {
        fprintf(stderr, "warning: report.html not written (%s); `dmdr report %s` writes it "
                        "later\n", err.msg, rd->dir);
        rd->report_failed = true;
    }
}

void rundir_close(RunDir *rd) {
    drop_held(rd);
    if (rd->metrics) {
        fclose(rd->metrics);
        rundir_report(rd);
    }
    rd->metrics = NULL;
}

int rundir_continue(RunDir *rd, const char *checkpoint, const char *out, const Config *cfg,
                    const char *command, int64_t step, double *elapsed_s, Error *err) {
    char dir[CONFIG_PATH_MAX];
    if (out) snprintf(dir, sizeof dir, "%s", out);
    else if (rundir_of_checkpoint(checkpoint, dir) != 0) return rundir_create(rd, cfg, command, err);
    int rc = rundir_resume(rd, dir, cfg, step, elapsed_s, err);
    snprintf(rd->command, sizeof rd->command, "%s", command);
    return rc;
}

bool rundir_due(int64_t step, int interval, int64_t last) {
    return step == last || (interval > 0 && step % interval == 0);
}
