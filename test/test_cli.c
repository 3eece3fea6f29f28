// The dmdr program as a user meets it: every bad command or flag gets a clear message and a
// non-zero exit, and the good paths produce what they promise. Runs the built binary, whose
// path meson passes in DMDR_EXE.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dmdr_config.h"
#include "tensor/safetensors.h"
#include "tools/data/dataset.h"
#include "tools/data/png_image.h"
#include "test/test_util.h"

typedef struct {
    int status; // exit code, or -1 if the process did not exit normally
    char output[65536];
} Run;

// The end of a command's output, for a failure message (check's own messages are bounded).
static const char *tail_of(const Run *r) {
    size_t n = strlen(r->output);
    return r->output + (n > 3000 ? n - 3000 : 0);
}

// Runs `dmdr <args>` through the shell, capturing stdout and stderr together.
static Run run_dmdr(const char *args) {
    const char *exe = getenv("DMDR_EXE");
    ck_assert_msg(exe != NULL, "DMDR_EXE is not set (run through meson test)");
    char command[1024];
    snprintf(command, sizeof command, "'%s' %s 2>&1", exe, args);
    Run r = {.status = -1, .output = ""};
    FILE *p = popen(command, "r");
    ck_assert_msg(p != NULL, "cannot run %s", command);
    size_t used = fread(r.output, 1, sizeof r.output - 1, p);
    r.output[used] = '\0';
    char rest[1024]; // drain what does not fit, so the command never dies of SIGPIPE
    while (fread(rest, 1, sizeof rest, p) > 0) continue;
    int st = pclose(p);
    if (WIFEXITED(st)) r.status = WEXITSTATUS(st);
    return r;
}

static void expect(const char *args, int status, const char *needle) {
    Run r = run_dmdr(args);
    ck_assert_msg(r.status == status, "dmdr %s: exit %d, expected %d; output:\n%s", args,
                  r.status, status, tail_of(&r));
    ck_assert_msg(strstr(r.output, needle) != NULL, "dmdr %s: output lacks \"%s\":\n%s", args,
                  needle, tail_of(&r));
}

// The JSON file at path, parsed (the caller deletes it); unlink_after: remove the file once read.
static cJSON *read_json(const char *path, bool unlink_after) {
    const char *text = test_read_text(path);
    if (unlink_after) unlink(path);
    cJSON *root = cJSON_Parse(text);
    ck_assert_msg(root != NULL, "%s does not parse as JSON:\n%s", path, text);
    return root;
}

// A run of `resume_args` (a --resume from its middle checkpoint) rewrites the run's last
// checkpoint `last` byte for byte as the uninterrupted run wrote it.
static void expect_resume_identical(const char *dir, const char *last, const char *resume_args,
                                    const char *done, const char *what) {
    char a[1400];
    snprintf(a, sizeof a, "cp %s %s/first.safetensors", last, dir);
    ck_assert(system(a) == 0);
    expect(resume_args, 0, done);
    snprintf(a, sizeof a, "cmp %s %s/first.safetensors", last, dir);
    ck_assert_msg(system(a) == 0, "the resumed %s differs from the uninterrupted one", what);
}

START_TEST(test_no_arguments_shows_usage) { expect("", 2, "usage: dmdr <command>"); }
END_TEST

START_TEST(test_unknown_command) { expect("trian-teacher", 2, "unknown command 'trian-teacher'"); }
END_TEST

START_TEST(test_version) { expect("--version", 0, "dmdr " DMDR_VERSION); }
END_TEST

START_TEST(test_help) {
    expect("help", 0, "bench");
    expect("help bench", 0, "--threads N");
    expect("help nothing", 2, "unknown command 'nothing'");
}
END_TEST

START_TEST(test_bench_bad_flags) {
    expect("bench --bogus", 2, "unknown flag '--bogus'");
    expect("bench --threads", 2, "--threads needs a value");
    expect("bench --threads x", 2, "--threads expects an integer");
    expect("bench --threads -3", 2, "--threads expects an integer");
    expect("bench --shapes huge", 2, "--shapes expects small or base, got 'huge'");
    expect("bench --device tpu", 2, "--device");
    expect("bench --precision fp16", 2, "--precision expects fp32, bf16 or both, got 'fp16'");
    expect("bench --quick --filter no-such-kernel", 2, "no-such-kernel");
    expect("bench --quick --json /nonexistent-dir/out.json", 2, "/nonexistent-dir/out.json");
}
END_TEST

START_TEST(test_bench_unavailable_device) {
    if (backend_get(DEVICE_CUDA)) return; // only meaningful where CUDA is absent
    expect("bench --device cuda", 1, "cuda backend not available");
}
END_TEST

// A quick run of one kernel writes JSON with the ceilings and that kernel's figures.
START_TEST(test_bench_json) {
    char path[] = "/tmp/dmdr-cli-XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    char args[256];
    snprintf(args, sizeof args, "bench --quick --threads 1 --filter cross_entropy --json %s",
             path);
    expect(args, 0, "cross_entropy");
    cJSON *root = read_json(path, true);
    cJSON *ceilings = cJSON_GetObjectItem(root, "ceilings");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(ceilings, "gemm_gflops")));
    ck_assert(cJSON_GetObjectItem(ceilings, "gemm_gflops")->valuedouble > 0);
    ck_assert(cJSON_GetObjectItem(ceilings, "copy_gbps")->valuedouble > 0);
    cJSON *kernels = cJSON_GetObjectItem(root, "kernels");
    ck_assert_int_eq(cJSON_GetArraySize(kernels), 1);
    cJSON *k = cJSON_GetArrayItem(kernels, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(k, "name")->valuestring, "cross_entropy");
    ck_assert(cJSON_GetObjectItem(k, "us")->valuedouble > 0);
    cJSON_Delete(root);
}
END_TEST

// The end-to-end train step of a quick bench: the JSON names the small preset's model and the
// run's batch and threads (what tools/torch/dit_train_step.py --compare reads), and the timed
// steps allocate nothing: the storage cache serves every tensor after the warm-up step.
START_TEST(test_bench_train_step_json) {
    char path[] = "/tmp/dmdr-cli-XXXXXX", args[256];
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    snprintf(args, sizeof args, "bench --quick --threads 1 --filter train_step --json %s", path);
    expect(args, 0, "train_step");
    cJSON *root = read_json(path, true);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "kernels")), 0);
    cJSON *step = cJSON_GetObjectItem(root, "train_step");
    if (!step) ck_abort_msg("no train_step in:\n%s", cJSON_Print(root));
    const struct { const char *key; double want; } fields[] = {
        {"img", 28}, {"patch", 4}, {"dim", 192}, {"depth", 6}, {"heads", 3},
        {"batch", 8}, {"threads", 1}, {"allocations", 0},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        ck_assert_msg(cJSON_GetObjectItem(step, fields[i].key)->valuedouble == fields[i].want,
                      "train_step.%s = %g, expected %g", fields[i].key,
                      cJSON_GetObjectItem(step, fields[i].key)->valuedouble, fields[i].want);
    ck_assert(cJSON_GetObjectItem(step, "images_per_s")->valuedouble > 0);
    ck_assert(cJSON_GetObjectItem(step, "peak_bytes")->valuedouble > 0);
    cJSON_Delete(root);
}
END_TEST

// A toy2d run, resumed from its middle checkpoint, ends bit for bit where the uninterrupted
// run ended; info and sample read its files.
START_TEST(test_train_resume_info_sample) {
    char dir[] = "/tmp/dmdr-cli-run-XXXXXX", args[512], a[600];
    ck_assert(mkdtemp(dir) != NULL);
    snprintf(args, sizeof args, "train-teacher --preset toy2d --steps 200 --checkpoint-every 100 "
             "--sample-every 0 --threads 1 --out %s/run", dir);
    expect(args, 0, "done: step 200");
    snprintf(a, sizeof a, "%s/run/checkpoints/step-000200.safetensors", dir);
    snprintf(args, sizeof args, "train-teacher --resume %s/run/checkpoints/step-000100.safetensors "
             "--threads 1", dir);
    expect_resume_identical(dir, a, args, "done: step 200", "run");
    snprintf(args, sizeof args, "info %s/run/model.safetensors", dir);
    expect(args, 0, "parameters: 184,450");
    snprintf(args, sizeof args, "sample %s/run/checkpoints/step-000200.safetensors --steps 5 "
             "--out %s/s.png --threads 1", dir, dir);
    expect(args, 0, "1600 samples (200 per class)");
    // --ema false samples the checkpoint's raw weights: another model, another picture
    snprintf(args, sizeof args, "sample %s/run/checkpoints/step-000200.safetensors --steps 5 "
             "--out %s/raw.png --threads 1 --ema false", dir, dir);
    expect(args, 0, "1600 samples (200 per class)");
    snprintf(a, sizeof a, "cmp -s %s/s.png %s/raw.png", dir, dir);
    ck_assert_msg(system(a) != 0, "--ema false sampled the same weights as the EMA");
    snprintf(args, sizeof args, "sample %s/run/model.safetensors --npy %s/x.npy --threads 1", dir,
             dir);
    expect(args, 1, "--png-dir and --npy write images");
    test_remove_tree(dir);
}
END_TEST

// --precision bf16 is a run setting: the header says it, a resume reads it from the checkpoint
// (the resumed run ends byte for byte where the uninterrupted bf16 run did), and where bf16
// cannot run natively (here: oneDNN turned off) the run keeps fp32 and says so in one line.
START_TEST(test_precision_bf16) {
    const Backend *cpu = backend_get(DEVICE_CPU);
    char dir[] = "/tmp/dmdr-cli-run-XXXXXX", args[512], a[600];
    ck_assert(mkdtemp(dir) != NULL);
    const char *train = "train-teacher --preset tiny --steps 12 --batch 8 --checkpoint-every 6 "
                        "--sample-every 0 --threads 1 --precision bf16";
    snprintf(args, sizeof args, "%s --out %s/run", train, dir);
    if (cpu->bf16_missing(cpu)) {
        expect(args, 0, "running fp32");
        test_remove_tree(dir);
        return;
    }
    expect(args, 0, "bf16 GEMMs");
    snprintf(a, sizeof a, "%s/run/checkpoints/step-000012.safetensors", dir);
    snprintf(args, sizeof args, "train-teacher --resume %s/run/checkpoints/step-000006.safetensors "
             "--threads 1", dir);
    expect_resume_identical(dir, a, args, "done: step 12", "bf16 run");
    setenv("DMDR_ONEDNN", "0", 1);
    snprintf(args, sizeof args, "%s --out %s/fallback", train, dir);
    expect(args, 0, "dmdr train-teacher: precision bf16 asked for, but oneDNN is turned off "
                    "(DMDR_ONEDNN=0): running fp32");
    unsetenv("DMDR_ONEDNN");
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_train_bad_input) {
    expect("train-teacher --hiden 3", 2, "unknown flag '--hiden'; did you mean '--hidden'?");
    expect("train-teacher --steps x", 2, "--steps expects an integer");
    expect("train-teacher --preset toy2d --kind dit", 1, "model.kind dit takes images");
    expect("info /nonexistent.safetensors", 1, "/nonexistent.safetensors");
    expect("sample", 2, "missing CHECKPOINT");
    expect("help train-teacher", 0, "--sample.steps N");
}
END_TEST

// The bar for the tiny DiT: a few hundred steps on Fashion-MNIST within CI time take
// the flow-matching loss well below where it starts. Read from the run's metrics.jsonl.
START_TEST(test_tiny_teacher_loss_falls) {
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "tiny teacher: dataset-fashion-mnist is not installed, skipped\n");
        return;
    }
    char dir[] = "/tmp/dmdr-cli-tiny-XXXXXX", args[512], path[600], line[1024];
    ck_assert(mkdtemp(dir) != NULL);
    snprintf(args, sizeof args, "train-teacher --preset tiny --steps 300 --log-every 10 "
             "--sample-every 0 --checkpoint-every 0 --out %s/run", dir);
    expect(args, 0, "done: step 300");
    snprintf(path, sizeof path, "%s/run/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no %s", path);
    double first = -1, last = -1;
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        ck_assert_msg(o != NULL, "metrics line is not JSON: %s", line);
        double loss = cJSON_GetObjectItem(o, "loss")->valuedouble;
        if (first < 0) first = loss;
        last = loss;
        cJSON_Delete(o);
    }
    fclose(f);
    // 10-step means: the first is ~1.7 (predicting 0 for eps - x0 costs E|eps - x0|^2 ~ 1.7);
    // after 300 steps a tiny DiT is near 0.45.
    ck_assert_msg(first > 1.0 && last < 0.5 * first, "loss %g -> %g", first, last);
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_judge_bad_input) {
    expect("train-classifier --widht 3", 2, "unknown flag '--widht'; did you mean '--width'?");
    expect("train-classifier --dataset toy2d", 1, "data.dataset toy2d holds no images");
    expect("train-classifier --resume /nonexistent.safetensors", 1, "/nonexistent.safetensors");
    expect("train-classifier --preset tiny --train-offset 60000 --threads 1", 1,
           "classifier.train_offset 60000 skips all 60000 training images");
    expect("train-classifier --residual 2", 2, "--residual expects an integer in [0, 1]");
    expect("eval", 2, "missing CHECKPOINT (or --real");
    expect("eval /nonexistent.safetensors --classifier c.safetensors", 1,
           "/nonexistent.safetensors: cannot open");
    expect("eval --real model.safetensors --classifier c.safetensors", 2,
           "--real measures training images: give no CHECKPOINT");
    expect("eval --real --classifier c.safetensors --per-class 1", 2,
           "--per-class expects an integer in [2, 100000]");
    expect("eval --real --classifier c.safetensors --json /nonexistent-dir/e.json", 2,
           "cannot write --json: /nonexistent-dir/e.json");
    expect("eval --real --classifier /nonexistent.safetensors", 1,
           "/nonexistent.safetensors: cannot open");
    expect("help eval", 0, "minus the cross-entropy");
}
END_TEST

// The judge end to end on the tiny preset: a classifier trained and resumed bit for bit,
// then the floor and a (one-step-trained) teacher measured, as a table and as JSON.
START_TEST(test_judge_train_resume_eval) {
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "judge: dataset-fashion-mnist is not installed, skipped\n");
        return;
    }
    char dir[] = "/tmp/dmdr-cli-judge-XXXXXX", args[1024], a[1200];
    ck_assert(mkdtemp(dir) != NULL);
    snprintf(args, sizeof args, "train-classifier --preset tiny --threads 1 --out %s/c", dir);
    expect(args, 0, "done: step 40, test accuracy");
    snprintf(a, sizeof a, "%s/c/checkpoints/step-000040.safetensors", dir);
    snprintf(args, sizeof args, "train-classifier --threads 1 --resume "
             "%s/c/checkpoints/step-000020.safetensors", dir);
    expect_resume_identical(dir, a, args, "done: step 40", "classifier run");

    snprintf(args, sizeof args, "eval --real --classifier %s/c/classifier.safetensors "
             "--per-class 5 --json %s/real.json", dir, dir);
    expect(args, 0, "class accuracy");
    snprintf(a, sizeof a, "%s/real.json", dir);
    cJSON *o = read_json(a, false);
    ck_assert_int_eq((int)cJSON_GetObjectItem(o, "samples")->valuedouble, 50);
    const char *numbers[] = {"fid", "precision", "recall", "accuracy", "is", "reward"};
    for (int i = 0; i < 6; i++)
        if (!cJSON_IsNumber(cJSON_GetObjectItem(o, numbers[i])))
            ck_abort_msg("%s is not a number: %s", numbers[i], cJSON_Print(o));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "nfe")));
    cJSON_Delete(o);

    snprintf(args, sizeof args, "train-teacher --preset tiny --steps 1 --threads 1 --out %s/t",
             dir);
    expect(args, 0, "done: step 1");
    snprintf(args, sizeof args, "eval %s/t/model.safetensors --classifier "
             "%s/c/classifier.safetensors --steps 2 --cfg 1.5 --per-class 4 --threads 1", dir, dir);
    expect(args, 0, "euler 2 steps, cfg 1.5");
    expect(args, 0, "NFE                       4");
    // the floor beside the samples is the --real measurement at the same count
    snprintf(args, sizeof args, "eval %s/t/model.safetensors --classifier "
             "%s/c/classifier.safetensors --steps 2 --per-class 4 --threads 1 --json %s/t.json",
             dir, dir, dir);
    expect(args, 0, "real floor");
    snprintf(args, sizeof args, "eval --real --classifier %s/c/classifier.safetensors "
             "--per-class 4 --threads 1 --json %s/real4.json", dir, dir);
    expect(args, 0, "class accuracy");
    snprintf(a, sizeof a, "%s/t.json", dir);
    o = read_json(a, false);
    snprintf(a, sizeof a, "%s/real4.json", dir);
    cJSON *real = read_json(a, false);
    const cJSON *floor = cJSON_GetObjectItem(o, "floor");
    ck_assert_msg(cJSON_IsObject(floor), "no floor: %s", cJSON_Print(o));
    for (int i = 0; i < 6; i++)
        ck_assert_msg(cJSON_GetObjectItem(floor, numbers[i])->valuedouble ==
                          cJSON_GetObjectItem(real, numbers[i])->valuedouble,
                      "floor %s differs from --real's", numbers[i]);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(real, "floor")));
    cJSON_Delete(real);

    // the judge's test-set features from the cache: the same figures as computed, and a
    // damaged cache file only means computing them again
    snprintf(a, sizeof a, "%s/cache", dir);
    setenv("DMDR_CACHE_DIR", a, 1);
    snprintf(args, sizeof args, "eval %s/t/model.safetensors --classifier "
             "%s/c/classifier.safetensors --steps 2 --per-class 4 --threads 1 --json %s/t2.json",
             dir, dir, dir);
    for (int pass = 0; pass < 3; pass++) {
        Run r = run_dmdr(args);
        ck_assert_msg(r.status == 0, "pass %d: %s", pass, tail_of(&r));
        ck_assert_msg(!strstr(r.output, "from the cache") == (pass != 1),
                      "pass %d: the cache %s", pass, pass == 1 ? "was not used" : "was used");
        snprintf(a, sizeof a, "%s/t2.json", dir);
        cJSON *again = read_json(a, true);
        for (int i = 0; i < 6; i++)
            ck_assert_msg(cJSON_GetObjectItem(again, numbers[i])->valuedouble ==
                              cJSON_GetObjectItem(o, numbers[i])->valuedouble,
                          "pass %d: %s differs", pass, numbers[i]);
        cJSON_Delete(again);
        snprintf(a, sizeof a, "for f in %s/cache/judge-reference-*; do head -c 100 $f > $f.cut; "
                 "mv $f.cut $f; done", dir);
        if (pass == 1) ck_assert(system(a) == 0);
    }
    unsetenv("DMDR_CACHE_DIR");
    cJSON_Delete(o);

    // the table: mean +- std over a row's reports, the floor above; one sample count only
    snprintf(args, sizeof args, "table teacher=%s/t.json,%s/t.json floor=%s/real4.json", dir, dir,
             dir);
    expect(args, 0, "| teacher | 2 | 40 | 4 ± 0 |");
    expect(args, 0, "| real training images (floor) | - | 40 |");
    snprintf(args, sizeof args, "table teacher=%s/t.json five=%s/real.json", dir, dir);
    expect(args, 1, "a table compares one sample count");
    snprintf(args, sizeof args, "table teacher=%s/t.json,%s/c/config.ini", dir, dir);
    expect(args, 1, "not a `dmdr eval --json` report");
    expect("table teacher", 2, "expected LABEL=REPORT");
    expect("table", 2, "no rows");
    // samples for other scorers: a PNG per sample with its label, and a uint8 NHWC array
    snprintf(args, sizeof args, "sample %s/t/model.safetensors --steps 2 --per-class 2 --threads 1 "
             "--out %s/g.png --png-dir %s/each --npy %s/x.npy", dir, dir, dir, dir);
    expect(args, 0, "wrote");
    snprintf(a, sizeof a, "%s/each/labels.csv", dir);
    const char *csv = test_read_text(a);
    ck_assert_msg(strncmp(csv, "file,label\n000000.png,0\n000001.png,0\n000002.png,1\n", 46) == 0
                      && strstr(csv, "000019.png,9\n"), "labels.csv:\n%s", csv);
    snprintf(a, sizeof a, "%s/each/000019.png", dir);
    ck_assert_msg(access(a, R_OK) == 0, "no %s", a);
    snprintf(a, sizeof a, "%s/x.npy", dir);
    FILE *npy = fopen(a, "rb");
    ck_assert(npy != NULL);
    char head[128];
    ck_assert_int_eq((int)fread(head, 1, sizeof head, npy), 128);
    fseek(npy, 0, SEEK_END);
    long bytes = ftell(npy);
    fclose(npy);
    ck_assert_msg(memcmp(head, "\x93NUMPY\x01\x00", 8) == 0 &&
                      strstr(head + 10, "'shape': (20, 28, 28, 1)") && head[127] == '\n',
                  "npy header: %.118s", head + 10);
    ck_assert_int_eq(bytes, 128 + 20 * 28 * 28);
    snprintf(args, sizeof args, "eval %s/t/model.safetensors", dir);
    expect(args, 2, "missing --classifier FILE");
    snprintf(args, sizeof args, "eval %s/t/model.safetensors --classifier %s/t/model.safetensors",
             dir, dir);
    expect(args, 1, "not a classifier file");
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_distill_bad_input) {
    expect("distill --preset toy2d", 1, "no teacher: give its weights with --teacher PATH");
    expect("distill --teacher /nonexistent.safetensors", 1, "/nonexistent.safetensors");
    expect("distill --preset toy2d --teacher x --rl backprop", 1,
           "--rl backprop starts from a stage-1 generator: give its checkpoint with --init");
    expect("distill --resume a --init b", 2, "give one of them");
    expect("distill --fake-scale -1", 2, "--fake-scale");
    expect("distill --fake-net both", 2, "--fake-net");
    expect("distill --regularizer kl2", 2, "--regularizer");
    expect("demo --train.stpes 3", 2, "no stage takes --train.stpes");
    expect("demo --steps 3", 2, "write settings qualified");
    // --key=value as every command takes it: the key is the part before '='
    expect("demo --preset=tiny --train.stpes=3", 2, "no stage takes --train.stpes");
    expect("demo --preset tiny --train.steps", 2, "without a value");
    expect("help distill", 0, "--init STAGE1_CHECKPOINT");
}
END_TEST

// DMD on toy2d from the command line: a short teacher, a distillation resumed from its middle
// checkpoint ending bit for bit where the uninterrupted run ended, the generator sampled as a
// 1-step generator and refused as a teacher.
START_TEST(test_distill_resume_sample) {
    char dir[] = "/tmp/dmdr-cli-distill-XXXXXX", args[1024], a[1200];
    ck_assert(mkdtemp(dir) != NULL);
    snprintf(args, sizeof args, "train-teacher --preset toy2d --steps 100 --sample-every 0 "
             "--threads 1 --out %s/t", dir);
    expect(args, 0, "done: step 100");
    snprintf(args, sizeof args, "distill --preset toy2d --teacher %s/t/model.safetensors "
             "--steps 20 --checkpoint-every 10 --sample-every 0 --threads 1 --out %s/d", dir, dir);
    expect(args, 0, "done: generator step 20");
    snprintf(a, sizeof a, "%s/d/checkpoints/step-000020.safetensors", dir);
    snprintf(args, sizeof args, "distill --resume %s/d/checkpoints/step-000010.safetensors "
             "--threads 1", dir);
    expect_resume_identical(dir, a, args, "done: generator step 20", "distillation");
    snprintf(args, sizeof args, "sample %s/d/model.safetensors --out %s/s.png --threads 1", dir,
             dir);
    expect(args, 0, "1-step generator");
    snprintf(args, sizeof args, "distill --preset toy2d --teacher %s/d/model.safetensors", dir);
    expect(args, 1, "is a 1-step generator, not a teacher");
    test_remove_tree(dir);
}
END_TEST

// src rewritten to dst with metadata `key` set to `value` (added when missing; key NULL: none)
// and, when `poison`, every F32 tensor's first element made NaN and its second infinite.
static void rewrite_file(const char *src, const char *dst, const char *key, const char *value,
                         bool poison) {
    Safetensors st;
    Error err = {""};
    ck_assert_msg(safetensors_load(src, &st, &err) == 0, "%s", err.msg);
    const char *keys[64], *values[64];
    int n = 0;
    ck_assert(st.metadata_count < 63);
    for (int i = 0; i < st.metadata_count; i++)
        if (!key || strcmp(st.metadata_keys[i], key) != 0)
            keys[n] = st.metadata_keys[i], values[n++] = st.metadata_values[i];
    if (key) keys[n] = key, values[n++] = value;
    for (int i = 0; poison && i < st.count; i++) {
        float *x = tensor_f32(st.tensors[i]);
        if (st.tensors[i]->dtype != DTYPE_F32 || tensor_numel(st.tensors[i]) < 2) continue;
        x[0] = NAN, x[1] = INFINITY;
    }
    ck_assert_msg(safetensors_save(dst, st.count, (const char *const *)st.names, st.tensors, n,
                                   keys, values, &err) == 0,
                  "%s", err.msg);
    safetensors_free(&st);
}

// A 20-step toy2d teacher in a fresh directory (dir, at least 64 bytes): its model.safetensors
// and checkpoints/step-000010.safetensors are what the untrusted-input tests alter.
static void small_teacher(char *dir) {
    strcpy(dir, "/tmp/dmdr-cli-untrusted-XXXXXX");
    ck_assert(mkdtemp(dir) != NULL);
    char args[512];
    snprintf(args, sizeof args, "train-teacher --preset toy2d --steps 20 --checkpoint-every 10 "
             "--sample-every 0 --threads 1 --out %s/t", dir);
    expect(args, 0, "done: step 20");
}

static const char *const DIT_CONFIG_JSON =
    "{\"kind\":\"dit\",\"num_classes\":8,\"in_channels\":1,\"image_size\":%d,\"data_dim\":2,"
    "\"patch\":%d,\"hidden\":64,\"depth\":%d,\"heads\":2,\"mlp_ratio\":4,\"channels\":32,"
    "\"levels\":3,\"res_blocks\":1,\"groups\":8,\"mlp_width\":128,\"mlp_layers\":3,"
    "\"channel_mult\":[1,2,2,0]}";

// Issue 12, defect 1: a model configuration from a file past its ranges (it overflowed int
// arithmetic, aborted on allocation or hung), or from a --config too large for memory.
START_TEST(test_model_settings_bounded) {
    char dir[64], args[1024], a[600], b[600], json[512];
    small_teacher(dir);
    snprintf(a, sizeof a, "%s/t/model.safetensors", dir);
    snprintf(b, sizeof b, "%s/bad.safetensors", dir);
    snprintf(json, sizeof json, DIT_CONFIG_JSON, 65536, 1, 2);
    rewrite_file(a, b, "model_config", json, false);
    snprintf(args, sizeof args, "sample %s --out %s/s.png", b, dir);
    expect(args, 1, "image_size = 65536 is outside");
    snprintf(json, sizeof json, DIT_CONFIG_JSON, 28, 4, 100000);
    rewrite_file(a, b, "model_config", json, false);
    expect(args, 1, "depth = 100000 is outside");
    // every setting in range, the whole beyond any machine's memory
    snprintf(args, sizeof args, "%s/big.ini", dir);
    FILE *f = fopen(args, "w");
    ck_assert(f != NULL);
    fprintf(f, "[model]\nkind = dit\nhidden = 65536\nheads = 4\n");
    fclose(f);
    snprintf(args, sizeof args, "train-teacher --config %s/big.ini --steps 1 --out %s/big", dir,
             dir);
    expect(args, 1, "memory available");
    test_remove_tree(dir);
}
END_TEST

// Defect 2: non-finite weights are refused where they enter, by tensor name: for sampling
// (it wrote black images and exited 0) and for a resume (it blamed the learning rate).
START_TEST(test_nonfinite_weights_refused) {
    char dir[64], args[1024], a[600], b[600];
    small_teacher(dir);
    snprintf(a, sizeof a, "%s/t/model.safetensors", dir);
    snprintf(b, sizeof b, "%s/bad.safetensors", dir);
    rewrite_file(a, b, NULL, NULL, true);
    snprintf(args, sizeof args, "sample %s --out %s/s.png", b, dir);
    expect(args, 1, "hold non-finite values: 'time_embed.0.weight' (1 NaN, 1 inf)");
    snprintf(a, sizeof a, "%s/t/checkpoints/step-000010.safetensors", dir);
    rewrite_file(a, b, NULL, NULL, true);
    snprintf(args, sizeof args, "train-teacher --resume %s --out %s/r", b, dir);
    Run r = run_dmdr(args);
    ck_assert_msg(r.status == 1 && strstr(r.output, "non-finite") && !strstr(r.output, "--lr"),
                  "resume from NaN weights: exit %d:\n%s", r.status, tail_of(&r));
    test_remove_tree(dir);
}
END_TEST

// Defect 5: generator metadata that does not belong to the file (a teacher's file with
// generator_steps added was sampled as a generator), or past its flag's range (a shift of inf
// was accepted).
START_TEST(test_generator_metadata_checked) {
    char dir[64], args[1024], a[600], b[600], c[600];
    small_teacher(dir);
    snprintf(a, sizeof a, "%s/t/model.safetensors", dir);
    snprintf(b, sizeof b, "%s/bad.safetensors", dir);
    rewrite_file(a, b, "generator_steps", "1", false);
    snprintf(args, sizeof args, "sample %s --out %s/s.png", b, dir);
    expect(args, 1, "a teacher's file has metadata 'generator_steps'");
    snprintf(c, sizeof c, "%s/gen.safetensors", dir);
    rewrite_file(a, c, "role", "generator", false);
    rewrite_file(c, c, "generator_steps", "1", false);
    rewrite_file(c, b, "generator_shift", "inf", false);
    expect(args, 1, "gen_shift expects a number in [1, 1000], got 'inf'");
    rewrite_file(c, b, "generator_steps", "65", false);
    expect(args, 1, "gen_steps expects an integer in [1, 64], got '65'");
    snprintf(args, sizeof args, "sample %s --out %s/s.png", c, dir);
    expect(args, 0, "1-step generator");
    test_remove_tree(dir);
}
END_TEST

// Defect 4: --config reads small regular text files only (/dev/zero never returned, a
// directory was silently ignored, a NUL byte cut a value short).
START_TEST(test_config_file_checked) {
    char dir[] = "/tmp/dmdr-cli-config-XXXXXX", args[1024];
    ck_assert(mkdtemp(dir) != NULL);
    snprintf(args, sizeof args, "train-teacher --preset toy2d --config /dev/zero --out %s/z", dir);
    expect(args, 2, "'/dev/zero' is not a regular file");
    snprintf(args, sizeof args, "train-teacher --preset toy2d --config %s --out %s/z", dir, dir);
    expect(args, 2, "is not a regular file (a directory)");
    snprintf(args, sizeof args, "%s/nul.ini", dir);
    FILE *f = fopen(args, "wb");
    ck_assert(f != NULL);
    fwrite("[train]\nsteps = 1\0 0\n", 1, 21, f);
    fclose(f);
    snprintf(args, sizeof args, "train-teacher --preset toy2d --config %s/nul.ini --out %s/z", dir,
             dir);
    expect(args, 2, "nul.ini:2: a NUL byte");
    test_remove_tree(dir);
}
END_TEST

// Defect 3: a diverging run (it reached loss 1.6e17 with Inf moments and ended "done", exit 0)
// stops at the first non-finite number, naming it and the step, exits 1, keeps
// its last good checkpoint and exports nothing; the growth before it is warned about.
START_TEST(test_divergence_stops) {
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "divergence: dataset-fashion-mnist is not installed, skipped\n");
        return;
    }
    char dir[] = "/tmp/dmdr-cli-diverge-XXXXXX", args[512], a[600];
    ck_assert(mkdtemp(dir) != NULL);
    snprintf(args, sizeof args, "train-teacher --preset tiny --lr 10 --clip 0 --warmup 0 "
             "--steps 30 --checkpoint-every 2 --sample-every 0 --threads 1 --out %s/run", dir);
    Run r = run_dmdr(args);
    ck_assert_msg(r.status == 1 && strstr(r.output, "AdamW second moment") &&
                      strstr(r.output, "warning: step 2: loss"),
                  "exit %d:\n%s", r.status, tail_of(&r));
    const char *at = strstr(r.output, "train-teacher: step ");
    ck_assert_msg(at != NULL, "%s", tail_of(&r));
    int step = atoi(at + strlen("train-teacher: step "));
    ck_assert_msg(step > 2 && step < 30, "stopped at step %d", step);
    // the last checkpoint is the one before the bad step, and it loads
    snprintf(a, sizeof a, "%s/run/checkpoints/step-%06d.safetensors", dir, (step - 1) / 2 * 2);
    ck_assert_msg(access(a, R_OK) == 0, "no %s", a);
    snprintf(a, sizeof a, "%s/run/checkpoints/step-%06d.safetensors", dir, (step + 1) / 2 * 2);
    ck_assert_msg(access(a, R_OK) != 0, "%s was written", a);
    snprintf(a, sizeof a, "%s/run/model.safetensors", dir);
    ck_assert_msg(access(a, R_OK) != 0, "model.safetensors was exported");
    test_remove_tree(dir);
}
END_TEST

// The whole pipeline on the tiny preset with a few steps per stage: every stage runs, the
// table prints, and a second run skips every stage whose result exists.
// The demo's report.html: the judge's table, the grids side by side, every stage's curves
// (the teacher's loss, the distillation's DMD and fake losses, the judge's accuracy); a
// stage's own report holds one plot per metric and one image per grid; `dmdr report`
// writes both again from the files.
static int occurrences(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void expect_demo_report(const char *dir) {
    char path[700], args[800];
    for (int pass = 0; pass < 2; pass++) {
        snprintf(path, sizeof path, "%s/d/report.html", dir);
        if (pass == 1) {
            ck_assert(unlink(path) == 0);
            snprintf(args, sizeof args, "report %s/d", dir);
            expect(args, 0, "report.html");
        }
        const char *html = test_read_text(path);
        ck_assert_msg(strstr(html, "<table class=\"results\">") &&
                          strstr(html, "DMDR generator (own reward)</td>") &&
                          strstr(html, "real training images (floor)</td>"),
                      "%s: no comparison table", path);
        const char *stages[] = {"Teacher (train-teacher)", "Stage 1: DMD (distill)",
                                "Stage 2: DMDR (distill --rl backprop)"};
        for (int i = 0; i < 3; i++)
            ck_assert_msg(occurrences(html, stages[i]) >= 2, "%s: %s lacks its grid or section",
                          path, stages[i]);
        const char *plots[] = {">loss<", ">dmd_loss<", ">fake_loss<", ">test_accuracy<",
                               ">reward_mean<"};
        for (int i = 0; i < 5; i++)
            ck_assert_msg(strstr(html, plots[i]), "%s: no %s plot", path, plots[i]);
        ck_assert_msg(strstr(html, "</html>"), "%s is cut", path);
    }
    // a stage's page: loss, lr, grad_norm, images_per_s; its grids as embedded PNGs
    snprintf(path, sizeof path, "%s/d/teacher/report.html", dir);
    const char *html = test_read_text(path);
    ck_assert_int_eq(occurrences(html, "<svg"), 4);
    ck_assert_int_ge(occurrences(html, "<img src=\"data:image/png;base64,"), 1);
    expect("report", 2, "expected one run directory");
    snprintf(args, sizeof args, "report %s", dir);
    expect(args, 1, "neither a run directory");
}

// The default demo starts from shipped weights: here a tree laid out as docs/experiments is,
// holding the tiny demo's teacher and classifier with their manifest. It checks them, runs
// both stages and judges the teacher (the count differs from its shipped evaluation's) and
// both students with the judge and a separate reward model; a damaged file stops it first.
static void expect_demo_from_shipped(const char *dir) {
    char c[2400], args[1200];
    snprintf(c, sizeof c,
             "set -e; cd %s; mkdir -p ship/small-teacher-12k ship/heldout-judge/judge "
             "ship/heldout-judge/reward-model; "
             "cp d/teacher/model.safetensors ship/small-teacher-12k/; "
             "cp d/classifier/classifier.safetensors ship/heldout-judge/judge/; "
             "cp d/classifier/classifier.safetensors ship/heldout-judge/reward-model/; cd ship; "
             "for f in small-teacher-12k/model.safetensors "
             "heldout-judge/judge/classifier.safetensors "
             "heldout-judge/reward-model/classifier.safetensors; do echo \"$(stat -c %%s $f) "
             "$(sha256sum $f | cut -d' ' -f1) $f\"; done > weights.manifest", dir);
    ck_assert(system(c) == 0);
    snprintf(args, sizeof args, "demo --shipped %s/ship --out %s/s --preset tiny --distill.steps 2 "
             "--rl.steps 1 --eval.per_class 2 --sample.per_class 1 --threads 1 --quiet true "
             "--eval.judge_is_reward true", dir, dir); // (one tiny classifier is both)
    Run r = run_dmdr(args);
    ck_assert_msg(r.status == 0, "dmdr %s: exit %d; output ends:\n%s", args, r.status,
                  tail_of(&r));
    const char *said[] = {"demo: the plan", "3 files intact", "stage 1, DMD", "[demo 8/8]",
                          "| DMDR generator |", "| teacher, 50 steps, CFG 1.5 |", "demo: done in",
                          "s/report.html"};
    for (int i = 0; i < 8; i++)
        ck_assert_msg(strstr(r.output, said[i]), "the shipped demo did not say \"%s\":\n%s",
                      said[i], tail_of(&r));
    snprintf(c, sizeof c, "%s/s/report.html", dir);
    ck_assert_msg(strstr(test_read_text(c), "Teacher (shipped), 50 Euler steps"),
                  "the report lacks the teacher's grid");
    snprintf(c, sizeof c, "printf x | dd of=%s/ship/heldout-judge/judge/classifier.safetensors "
             "bs=1 seek=100 conv=notrunc 2>/dev/null; rm -rf %s/s", dir, dir);
    ck_assert(system(c) == 0);
    expect(args, 1, "classifier.safetensors is damaged");
    expect("demo --preset tiny --distill.steps 2", 2, "--from-scratch trains");
    expect("demo --from-scratch maybe", 2, "expects true or false");
}

START_TEST(test_demo_tiny) {
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "demo: dataset-fashion-mnist is not installed, skipped\n");
        return;
    }
    char dir[] = "/tmp/dmdr-cli-demo-XXXXXX", args[1024];
    ck_assert(mkdtemp(dir) != NULL);
    // more settings than the stages' own arguments, each reaching its stages intact (the
    // tiny preset's values where they are not the test's), in both --key value and
    // --key=value form
    snprintf(args, sizeof args, "demo --from-scratch --preset=tiny --out %s/d --train.steps 30 "
             "--distill.steps=3 "
             "--rl.steps 2 --eval.per_class 4 --threads 1 --quiet true --seed 0 --device cpu "
             "--distill.batch 16 --distill.ratio 5 --rl.group 8 --train.batch 32", dir);
    expect(args, 0, "DMDR generator ");
    char path[600];
    snprintf(path, sizeof path, "%s/d/dmd/checkpoints/step-000003.safetensors", dir);
    ck_assert_msg(access(path, R_OK) == 0, "--distill.steps 3 did not reach stage 1: no %s", path);
    Run r = run_dmdr(args); // again: every stage skipped, the table printed
    ck_assert_msg(r.status == 0, "dmdr %s: exit %d the second time; output:\n%s", args, r.status,
                  tail_of(&r));
    ck_assert_msg(strstr(r.output, "train the teacher (30 steps)") &&
                      strstr(r.output, "done already: skipped") &&
                      !strstr(r.output, "$ dmdr train-teacher"),
                  "the second run did not skip its stages:\n%s", tail_of(&r));
    ck_assert_msg(strstr(r.output, "teacher, 50 steps, CFG 1.5") &&
                      strstr(r.output, "DMD generator") &&
                      strstr(r.output, "DMDR generator (own reward)"),
                  "the table lacks rows");
    expect_demo_report(dir);

    // The stage-2 generator is not judged by the network that rewarded it, under that path or
    // a copy, unless asked; a separate reward model gives the reward column and is named.
    char e[1400];
    snprintf(e, sizeof e, "cp %s/d/classifier/classifier.safetensors %s/copy.safetensors", dir,
             dir);
    ck_assert(system(e) == 0);
    const char *judges[] = {"d/classifier/classifier.safetensors", "copy.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(e, sizeof e, "eval %s/d/dmdr/model.safetensors --classifier %s/%s "
                 "--per-class 4 --threads 1", dir, dir, judges[i]);
        expect(e, 2, "was rewarded by");
    }
    snprintf(e, sizeof e, "eval %s/d/dmdr/model.safetensors --classifier %s/copy.safetensors "
             "--per-class 4 --threads 1 --judge-is-reward true --reward-model %s/copy.safetensors",
             dir, dir, dir);
    expect(e, 0, "reward: ");
    ck_assert_msg(strstr(run_dmdr(e).output, "copy.safetensors\n"), "the reward model is not named");
    expect_demo_from_shipped(dir);
    test_remove_tree(dir);
}
END_TEST

// A folder of 3 classes of 12x12 RGB PNGs, 20 each: train-teacher takes the class count, the
// channels and the size from it unless given, and a given one that disagrees is still refused;
// the demo trains every network on it (the judge on 18 images a class, measured on 2)
START_TEST(test_png_folder_shape) {
    char dir[] = "/tmp/dmdr-cli-png-XXXXXX", args[1024], path[700];
    ck_assert(mkdtemp(dir) != NULL);
    float img[3 * 12 * 12];
    Error err;
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/data/class%d", dir, k);
        snprintf(args, sizeof args, "mkdir -p %s", path);
        ck_assert(system(args) == 0);
        for (int i = 0; i < 2 * PNG_TEST_EVERY; i++) {
            for (int j = 0; j < 3 * 12 * 12; j++) img[j] = (float)((j * (k + 1) + i) % 17) / 8.5f - 1;
            snprintf(path, sizeof path, "%s/data/class%d/%d.png", dir, k, i);
            ck_assert_msg(png_write_grid(path, img, 1, 3, 12, 12, 1, 0, &err) == 0, "%s", err.msg);
        }
    }
    const char *common = "train-teacher --preset tiny --dataset png --steps 2 --batch 4 --patch 2 "
                         "--threads 1 --quiet true";
    snprintf(args, sizeof args, "%s --data %s/data --out %s/run", common, dir, dir);
    expect(args, 0, "3 classes, 3 channels, 12x12 images");
    snprintf(args, sizeof args, "info %s/run/model.safetensors", dir);
    expect(args, 0, "input 3x12x12");
    snprintf(args, sizeof args, "%s --data %s/data --num-classes 4 --out %s/four", common, dir, dir);
    expect(args, 1, "model.num_classes is 4 but the data have 3 classes");
    snprintf(args, sizeof args, "demo --dataset png --data %s/data", dir);
    expect(args, 2, "--from-scratch trains every network on other data");
    expect("demo --from-scratch --preset tiny --dataset png", 2,
           "dataset png needs the image folder: --data PATH");
    const char *demo = "demo --from-scratch --preset tiny --dataset png --train.steps 2 "
                       "--distill.steps 2 --rl.steps 1 --threads 1 --quiet true";
    snprintf(args, sizeof args, "%s --data %s/data --out %s/demo --eval.per_class 3", demo, dir,
             dir);
    expect(args, 2, "holds 2 of class class0: set --eval.per_class 2");
    snprintf(args, sizeof args, "%s --data %s/data --out %s/demo --eval.per_class 2", demo, dir,
             dir);
    expect(args, 0, "| DMDR generator (own reward) | 1 | 6 |");
    test_remove_tree(dir);
}
END_TEST

// Every configs/*.ini runs as its first line says (`# dmdr COMMAND: ...`), cut to a step of a
// small batch: its keys resolve, its paths (the shipped teacher, the reward model) load from
// the source tree, and a stage-2 file starts from a stage-1 file's checkpoint. The demo's own
// file is the demo test's.
START_TEST(test_configs_run) {
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "configs: dataset-fashion-mnist is not installed, skipped\n");
        return;
    }
    char dir[] = "/tmp/dmdr-cli-configs-XXXXXX", args[1024], path[64];
    ck_assert(mkdtemp(dir) != NULL);
    ck_assert_int_eq(chdir(DMDR_SOURCE_ROOT), 0); // the files name paths from the source root
    const char *stage1 = "dmd-1step", *files[] = {"teacher-small", "dmd-1step", "dmd-4step",
        "dmdr-backprop", "dmdr-ppo", "reward-only", "reward-kl"};
    const char *shorter = "--threads 1 --quiet true --sample-every 0 --checkpoint-every 0";
    int seen = 0;
    for (int i = 0; i < 7; i++) {
        snprintf(path, sizeof path, "configs/%s.ini", files[i]);
        const char *text = test_read_text(path);
        char command[32] = "";
        ck_assert_msg(sscanf(text, "# dmdr %31[a-z-]:", command) == 1,
                      "%s: the first line does not name its command", path);
        if (strcmp(command, "train-teacher") == 0)
            snprintf(args, sizeof args, "train-teacher --config %s --steps 1 --batch 2 %s --out "
                     "%s/%s", path, shorter, dir, files[i]);
        else if (!strstr(text, "--init"))
            snprintf(args, sizeof args, "distill --config %s --steps 1 --batch 4 --ratio 1 %s "
                     "--out %s/%s", path, shorter, dir, files[i]);
        else
            snprintf(args, sizeof args, "distill --config %s --init %s/%s/checkpoints/"
                     "step-000001.safetensors --rl.steps 1 --batch 8 --group 4 %s --out %s/%s",
                     path, dir, stage1, shorter, dir, files[i]);
        ck_assert_msg(strcmp(command, strstr(args, "train-") ? "train-teacher" : "distill") == 0,
                      "%s: command %s", path, command);
        expect(args, 0, "done:");
        seen++;
    }
    ck_assert_int_eq(seen, 7);
    // no file left out of the list above
    DIR *d = opendir("configs");
    ck_assert(d != NULL);
    int files_there = 0;
    for (struct dirent *e; (e = readdir(d));)
        files_there += e->d_name[0] != '.' && strcmp(e->d_name, "demo.ini") != 0;
    closedir(d);
    ck_assert_msg(files_there == 7, "configs/ holds %d files besides demo.ini, not 7: add the new "
                  "ones to this test", files_there);
    test_remove_tree(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_test(tc, test_no_arguments_shows_usage);
    tcase_add_test(tc, test_unknown_command);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_bench_bad_flags);
    tcase_add_test(tc, test_bench_unavailable_device);
    tcase_add_test(tc, test_bench_json);
    tcase_add_test(tc, test_bench_train_step_json);
    tcase_add_test(tc, test_tiny_teacher_loss_falls);
    tcase_add_test(tc, test_train_resume_info_sample);
    tcase_add_test(tc, test_precision_bf16);
    tcase_add_test(tc, test_train_bad_input);
    tcase_add_test(tc, test_judge_bad_input);
    tcase_add_test(tc, test_judge_train_resume_eval);
    tcase_add_test(tc, test_distill_bad_input);
    tcase_add_test(tc, test_distill_resume_sample);
    tcase_add_test(tc, test_demo_tiny);
    tcase_add_test(tc, test_png_folder_shape);
    tcase_add_test(tc, test_configs_run);
    tcase_add_test(tc, test_model_settings_bounded);
    tcase_add_test(tc, test_nonfinite_weights_refused);
    tcase_add_test(tc, test_generator_metadata_checked);
    tcase_add_test(tc, test_config_file_checked);
    tcase_add_test(tc, test_divergence_stops);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
