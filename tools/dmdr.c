// dmdr: the command-line program. Each command is one entry of the table below.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmdr_config.h"
#include "tensor/dist.h"
#include "tools/commands.h"

typedef struct {
    const char *name;
    const char *summary;
    const char *usage; // shown by `dmdr help <command>`
    int (*run)(int argc, char **argv);
    const ConfigCommand *config; // its settings, listed by `dmdr help <command>`; or NULL
    bool ranks; // runs data-parallel under mpirun (tensor/dist.h); else one process only
} Command;

static int run_help(int argc, char **argv);

static const Command commands[] = {
    {"demo", "the DMDR pipeline: DMD, DMDR and the judge's table, from the shipped weights",
     "dmdr demo [--out DIR] [--config FILE] [--section.key value ...]\n"
     "dmdr demo --from-scratch [--preset P] [--out DIR] [--section.key value ...]\n"
     "  From what the repository ships (docs/experiments, checked against weights.manifest;\n"
     "  --shipped DIR for another copy): the small teacher, the reward model and the held-out\n"
     "  judge. Into DIR (default runs/demo-small): dmd/ (distill, stage 1), dmdr/ (distill\n"
     "  --init --rl backprop with the reward model, stage 2), eval/ (the judge's reports; the\n"
     "  teacher's are its shipped ones when --eval.per_class matches them, else measured)\n"
     "  and report.html. Settings: configs/demo.ini (about 15 minutes on two cores), then\n"
     "  --config FILE instead, then the flags, written qualified (--distill.steps 400,\n"
     "  --rl.steps 100, --eval.per_class 50) or bare for [run] (--threads 2). It prints its\n"
     "  plan with expected times, each stage's time, the table and the total. --from-scratch\n"
     "  first trains teacher/ and classifier/ (one classifier as judge and reward, its DMDR\n"
     "  row labelled so) on --preset P (small: about two hours; tiny: about a minute). A\n"
     "  stage whose result exists is skipped: the same command continues an interrupted demo.\n",
     demo_main, NULL, false},
    {"bench", "benchmark the kernels (GFLOP/s, GB/s, fraction of the machine's ceiling)",
     "dmdr bench [--threads N] [--device cpu|cuda] [--shapes small|base] [--batch N]\n"
     "           [--filter TEXT] [--quick] [--json FILE]\n"
     "  Measures the machine's ceilings (a large sgemm, a large copy), then every kernel at\n"
     "  the shapes of the preset's DiT (its training batch, or --batch), then end to end: the\n"
     "  training step, 50-step CFG teacher sampling and 1-step generator sampling in\n"
     "  images/s, with peak memory. Time per call, throughput and the fraction of the\n"
     "  ceiling; --json writes the same figures (train_step with its configuration) as JSON.\n"
     "  bash bench/vs_torch.sh runs the training step against its PyTorch twin. Under\n"
     "  mpirun -np N (--filter train_step, say) the end-to-end steps split the global batch.\n",
     bench_main, NULL, true},
    {"train-teacher", "train the flow-matching teacher; writes a run directory",
     "dmdr train-teacher [--preset P] [--config FILE] [--key value ...] [--resume CHECKPOINT]\n"
     "  Trains the class-conditional velocity network of the preset on its data, writing\n"
     "  runs/train-teacher-<preset>-<time>/ (or --out): config.ini, metrics.jsonl,\n"
     "  checkpoints/, samples/ (grids with one row per class, or scatter plots for 2-D data)\n"
     "  and model.safetensors (the EMA weights). `--config RUN/config.ini` repeats a run.\n"
     "  --resume CHECKPOINT continues a run from its checkpoint, bit for bit, with the run's\n"
     "  stored configuration under any flags given (e.g. --steps to train longer).\n",
     train_teacher_main, &train_teacher_command, true},
    {"train-classifier", "train the judge: the CNN classifier of metrics and rewards",
     "dmdr train-classifier [--preset P] [--config FILE] [--key value ...] [--resume CHECKPOINT]\n"
     "  Trains the conv/GroupNorm/SiLU classifier on the training set (Fashion-MNIST's, or a\n"
     "  PNG folder's: all but every 10th image of each class) and measures it on the test\n"
     "  set (the 10000 test images, or those 10th images) after every epoch, writing\n"
     "  runs/train-classifier-<preset>-<time>/ (or --out): config.ini, metrics.jsonl (loss and\n"
     "  accuracy), checkpoints/ (at epoch ends) and classifier.safetensors, the file that\n"
     "  `dmdr eval --classifier` and the RL stage read. --resume continues a run bit for bit.\n",
     train_classifier_main, &train_classifier_command, true},
    {"distill", "DMD: distill the teacher into a 1- to 4-step generator (stage 1 of DMDR)",
     "dmdr distill --teacher FILE [--preset P] [--config FILE] [--key value ...]\n"
     "             [--resume CHECKPOINT]\n"
     "  Distils the teacher (a train-teacher model.safetensors or checkpoint) into a\n"
     "  gen-steps-step generator with distribution matching (docs/algorithm.md sections 2-5):\n"
     "  backward simulation, real and fake scores as the teacher with one LoRA at two scales\n"
     "  (--fake-net separate: a separate fake network), real-score CFG, the two-time-scale\n"
     "  rule, DynaDG and DynaRS (--dynadg false / --dynars false for ablations). Writes\n"
     "  runs/distill-<preset>-<time>/ (or --out): config.ini, metrics.jsonl, checkpoints/,\n"
     "  samples/ and model.safetensors, the generator that `dmdr sample` and `dmdr eval`\n"
     "  take as it is. --resume continues a run from its checkpoint.\n"
     "dmdr distill --init STAGE1_CHECKPOINT --rl backprop|ppo --classifier FILE\n"
     "             [--regularizer dmd|kl|none] [--reward-weight W] [--key value ...]\n"
     "  Stage 2 of DMDR (section 6) in a new run directory (runs/dmdr-<preset>-<time>/):\n"
     "  rl.steps more generator updates at the rl learning rates with L_DMD + w_r L_reward,\n"
     "  the reward being log p(prompted class | x) under the judge classifier: reward\n"
     "  backpropagation or PPO over the stochastic K-step sampler; --regularizer kl or none\n"
     "  give the baselines. metrics.jsonl adds the reward, PPO's ratio spread and clip share.\n",
     distill_main, &distill_command, true},
    {"sample", "draw class-conditional samples from a checkpoint into a PNG",
     "dmdr sample CHECKPOINT [--steps N] [--method euler|heun] [--cfg S] [--shift S]\n"
     "           [--per-class K] [--seed S] [--out FILE.png] [--png-dir DIR] [--npy FILE]\n"
     "  One row of K samples per class (a scatter plot for 2-D data), from the EMA weights of\n"
     "  a training checkpoint or from an exported model.safetensors. The settings default to\n"
     "  the run's own (stored in the checkpoint); --out defaults to CHECKPOINT-samples.png.\n"
     "  --png-dir DIR also writes each sample as DIR/NNNNNN.png with DIR/labels.csv\n"
     "  (file,label), and --npy FILE all of them as an (n, H, W, C) uint8 NumPy array: what\n"
     "  clean-fid, torch-fidelity and similar scorers read.\n",
     sample_main, &sample_command, true},
    {"eval", "measure a checkpoint's samples with the judge: FID, precision, recall, ...",
     "dmdr eval CHECKPOINT --classifier FILE [--steps N] [--method euler|heun] [--cfg S]\n"
     "          [--shift S] [--per-class K] [--seed S] [--json FILE]\n"
     "dmdr eval --real --classifier FILE [--per-class K] [--json FILE]\n"
     "  Generates K samples of every class from the checkpoint (a teacher, from the EMA of its\n"
     "  training checkpoint or its exported weights, with the ODE sampler; or a few-step\n"
     "  generator of `dmdr distill`, with its own steps) and measures them with the classifier\n"
     "  against the test set (the 10000 Fashion-MNIST test images, or a PNG folder's every\n"
     "  10th image of each class): FID in the classifier's penultimate\n"
     "  features, precision and recall (k = 3 nearest-neighbour manifolds, against as many\n"
     "  test images of the same classes), class accuracy (argmax == prompted class), the\n"
     "  Inception-Score analogue exp(E KL(p(y|x) || p(y))), mean reward (the mean log\n"
     "  p(prompted class | x): minus the cross-entropy that the RL stage minimises), network\n"
     "  evaluations per image and sampler images/s; beside them the same figures of the\n"
     "  first K training images of each class (the real-image floor at the same count).\n"
     "  --real measures the floor alone. The sampler settings default to the run's own when\n"
     "  the checkpoint stores them. --json FILE writes the figures as JSON (the floor's under\n"
     "  \"floor\").\n",
     eval_main, &eval_command, true},
    {"table", "the comparison table of eval reports: mean +- std over seeds, beside the floor",
     "dmdr table LABEL=REPORT[,REPORT...] ... [--out FILE.md]\n"
     "  Reads `dmdr eval --json` reports and prints one Markdown row per LABEL: the number of\n"
     "  reports (seeds), samples, NFE, images/s, FID, precision, recall, class accuracy, IS and\n"
     "  reward, each as mean +- sample standard deviation over the row's reports; above them the\n"
     "  real-image floor the reports carry, and the judge and reward model they name. Reports\n"
     "  of different judges or sample counts are refused. --out writes the table to FILE.\n",
     table_main, NULL, false},
    {"report", "write report.html of a run directory or of the demo's folder",
     "dmdr report DIR\n"
     "  Writes DIR/report.html from the files alone: for a run directory its summary (steps,\n"
     "  wall time, throughput), a plot of every metric against the step, the sample grids over\n"
     "  the steps, the table of eval/*.json reports and its settings; for the demo's folder\n"
     "  the comparison table, the grids of teacher and students side by side and each stage's\n"
     "  run. One self-contained page (inline SVG, embedded PNGs). Training commands write\n"
     "  the same page at every metrics line.\n",
     report_main, NULL, false},
    {"info", "show what a checkpoint holds: model, weights and shapes, metadata",
     "dmdr info CHECKPOINT\n"
     "  The model configuration, the training position, every weight with its dtype and\n"
     "  shape, the parameter count, the training state stored beside the weights, and the\n"
     "  metadata (with the run's configuration).\n",
     info_main, NULL, false},
    {"help", "show the commands, or the usage of one", "dmdr help [command]\n", run_help, NULL,
     false},
};
static const int command_count = (int)(sizeof commands / sizeof commands[0]);

static const Command *find_command(const char *name) {
    for (int i = 0; i < command_count; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void print_overview(FILE *out) {
    fprintf(out,
            "dmdr %s: a tensor engine with autograd, and DMD/DMDR few-step diffusion\n\n"
            "usage: dmdr <command> [options]\n\ncommands:\n",
            DMDR_VERSION);
    for (int i = 0; i < command_count; i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`dmdr help <command>` shows a command's options. `dmdr --version` prints the "
                 "version.\nThe thread count: --threads N on a command, or DMDR_THREADS.\n");
}

static int run_help(int argc, char **argv) {
    if (argc < 2) {
        print_overview(stdout);
        return 0;
    }
    const Command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "dmdr help: unknown command '%s' (see `dmdr help`)\n", argv[1]);
        return 2;
    }
    printf("%s: %s\n\nusage: %s", c->name, c->summary, c->usage);
    if (c->config) config_print_help(stdout, c->config->sections);
    return 0;
}

void print_command_help(const char *name) {
    char *argv[] = {"help", (char *)name};
    run_help(2, argv);
}

// libgomp's default lets a waiting thread spin before it sleeps. On a machine shared with any
// other work, the spinning thread holds the core that the thread it waits for needs, and
// every parallel region can cost a scheduler time slice: 500 toy2d steps took 41.7 s with
// spinning and 2.7 s passive on this project's 2-core machines under load, and even idle the
// small DiT step ran at ~97 images/s spinning against 222 passive. libgomp reads
// OMP_WAIT_POLICY once, before main, so the only way to change the default is to set it and
// start again. An explicit OMP_WAIT_POLICY (e.g. "active" on a dedicated machine) is kept.
static void prefer_passive_openmp_waits(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv); // returns only on failure: then carry on as we are
}

int main(int argc, char **argv) {
    prefer_passive_openmp_waits(argv);
    if (argc < 2) {
        print_overview(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("dmdr %s\n", DMDR_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return run_help(1, argv + 1);
    const Command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "dmdr: unknown command '%s' (see `dmdr help`)\n", argv[1]);
        return 2;
    }
    if (dist_init(&argc, &argv) != 0) return 1;
    if (dist_size() > 1 && !c->ranks) {
        if (dist_rank() == 0)
            fprintf(stderr, "dmdr %s: runs on one process; started on %d ranks (mpirun -np 1, or "
                            "no mpirun)\n", c->name, dist_size());
        dist_abort(2);
    }
    // rank 0 speaks for the run; the others print only their errors
    if (dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) dist_abort(1);
    return dist_finish(c->run(argc - 1, argv + 1));
}
