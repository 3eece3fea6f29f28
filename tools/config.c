#include "tools/config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dmdr/generator.h"
#include "kernels/check.h"
#include "nn/classifier.h"

// ---- the table ------------------------------------------------------------------------------

typedef enum { T_INT, T_FLOAT, T_STRING, T_BOOL, T_ENUM, T_INTS } SettingType;

typedef struct {
    const char *section, *name;
    SettingType type;
    size_t offset, size;
    const char *def;     // default as text, parsed like any other value
    double min, max;     // int and float (and each element of T_INTS): inclusive range
    const char *choices; // enum: "a|b|c" in the order of the C enum
    const char *help;
} Setting;

_Static_assert(sizeof(ModelKind) == sizeof(int) && sizeof(Device) == sizeof(int) &&
                   sizeof(DataSource) == sizeof(int) && sizeof(FakeNet) == sizeof(int) &&
                   sizeof(RlAlgorithm) == sizeof(int) && sizeof(RlRegularizer) == sizeof(int) &&
                   sizeof(RewardLoss) == sizeof(int) && sizeof(FlowTimeDist) == sizeof(int) &&
                   sizeof(SamplerMethod) == sizeof(int),
               "enum settings are stored as int");

#define AT(field) offsetof(Config, field), sizeof(((Config *)0)->field)
// (INT and FLOAT expand their arguments first, so that LIBRARY_RANGE counts as two)
#define INT(...) INT_ROW(__VA_ARGS__)
#define FLOAT(...) FLOAT_ROW(__VA_ARGS__)
#define INT_ROW(sec, name, field, def, lo, hi, help) {sec, name, T_INT, AT(field), def, lo, hi, NULL, help}
#define FLOAT_ROW(sec, name, field, def, lo, hi, help) {sec, name, T_FLOAT, AT(field), def, lo, hi, NULL, help}
#define ENUM(sec, name, field, def, choices, help) {sec, name, T_ENUM, AT(field), def, 0, 0, choices, help}
#define STRING(sec, name, field, def, help) {sec, name, T_STRING, AT(field), def, 0, 0, NULL, help}
#define BOOL(sec, name, field, def, help) {sec, name, T_BOOL, AT(field), def, 0, 0, NULL, help}
#define BIG 1e9
// The ranges of the model's and the judge's architecture are the library's (model_config_range,
// classifier_config_range), which also check every configuration read from a file:
// setting_range looks them up, and these zeros are never read.
#define LIBRARY_RANGE 0, 0

static const Setting settings[] = {
    ENUM("model", "kind", model.kind, "dit", "dit|unet|mlp", "velocity network architecture"),
    INT("model", "num_classes", model.num_classes, "10", LIBRARY_RANGE,
        "class labels 0..N-1 (N is the null label of CFG); must match the data"),
    INT("model", "in_channels", model.in_channels, "1", LIBRARY_RANGE, "image channels (DiT, UNet)"),
    INT("model", "image_size", model.image_size, "28", LIBRARY_RANGE, "image side in pixels (DiT, UNet)"),
    INT("model", "data_dim", model.data_dim, "2", LIBRARY_RANGE, "vector length (MLP)"),
    INT("model", "patch", model.patch, "4", LIBRARY_RANGE, "DiT patch size"),
    INT("model", "hidden", model.hidden, "192", LIBRARY_RANGE, "DiT hidden size"),
    INT("model", "depth", model.depth, "6", LIBRARY_RANGE, "DiT blocks"),
    INT("model", "heads", model.heads, "3", LIBRARY_RANGE, "DiT attention heads (dividing hidden)"),
    FLOAT("model", "mlp_ratio", model.mlp_ratio, "4", LIBRARY_RANGE, "DiT MLP width / hidden"),
    INT("model", "channels", model.channels, "32", LIBRARY_RANGE, "UNet base channels"),
    INT("model", "levels", model.levels, "3", LIBRARY_RANGE, "UNet resolutions (image_size divisible by 2^(levels-1))"),
    {"model", "channel_mult", T_INTS, AT(model.channel_mult), "1,2,2", LIBRARY_RANGE, NULL,
     "UNet channel multiplier per level, comma-separated"},
    INT("model", "res_blocks", model.res_blocks, "1", LIBRARY_RANGE, "UNet residual blocks per level"),
    INT("model", "groups", model.groups, "8", LIBRARY_RANGE, "UNet GroupNorm groups"),
    INT("model", "mlp_width", model.mlp_width, "128", LIBRARY_RANGE, "MLP score network width"),
    INT("model", "mlp_layers", model.mlp_layers, "3", LIBRARY_RANGE, "MLP score network hidden layers"),

    ENUM("data", "dataset", data.source, "fashion-mnist", "fashion-mnist|png|toy2d",
         "training data: Fashion-MNIST IDX files, a folder of PNGs (one sub-folder per class), "
         "or the toy 2D Gaussian mixture"),
    STRING("data", "data", data.path, "",
           "fashion-mnist: a folder of IDX files or an *images-idx3* file (default "
           "/usr/share/datasets/fashion-mnist); png: the image folder"),
    INT("data", "toy_components", data.toy_components, "8", 1, 1000,
        "toy2d: Gaussians on a circle, one class each"),
    INT("data", "toy_count", data.toy_count, "20000", 1, 100000000, "toy2d: points drawn"),
    FLOAT("data", "toy_radius", data.toy_radius, "2", 0, 1000, "toy2d: radius of the circle of means"),
    FLOAT("data", "toy_std", data.toy_std, "0.1", 0, 1000, "toy2d: standard deviation of each Gaussian"),

    INT("train", "steps", train.steps, "20000", 1, BIG, "optimiser steps"),
    INT("train", "batch", train.batch, "64", 1, 1 << 20, "examples per step"),
    FLOAT("train", "lr", train.opt.schedule.base_lr, "0.0003", 0, 10, "peak learning rate (AdamW)"),
    INT("train", "warmup", train.opt.schedule.warmup_steps, "500", 0, BIG, "steps of linear warm-up to lr"),
    FLOAT("train", "min_lr", train.opt.schedule.min_lr, "0.00003", 0, 10, "learning rate at the end of the cosine decay"),
    FLOAT("train", "weight_decay", train.opt.adamw.weight_decay, "0", 0, 10, "AdamW decoupled weight decay"),
    FLOAT("train", "clip", train.opt.clip, "1", 0, 1e6, "gradient-norm clipping threshold (0: none)"),
    FLOAT("train", "ema_decay", train.opt.ema_decay, "0.999", 0, 1, "EMA of the weights (the exported model)"),
    FLOAT("train", "label_dropout", train.opt.loss.label_dropout, "0.1", 0, 1,
          "probability that a label becomes the null label (for CFG)"),
    ENUM("train", "time_dist", train.opt.loss.time_dist, "logit_normal", "logit_normal|uniform",
         "distribution of the flow time t during training"),
    FLOAT("train", "logit_mean", train.opt.loss.logit_mean, "0", -10, 10, "logit-normal: mean of logit(t)"),
    FLOAT("train", "logit_std", train.opt.loss.logit_std, "1", 0.001, 10, "logit-normal: std of logit(t)"),
    INT("train", "checkpoint_every", train.checkpoint_every, "1000", 0, BIG,
        "steps between checkpoints (0: only the last)"),
    INT("train", "sample_every", train.sample_every, "1000", 0, BIG,
        "steps between sample grids (0: only the last)"),
    INT("train", "log_every", train.log_every, "10", 1, BIG, "steps between metrics.jsonl lines"),

    INT("sample", "steps", sample.opt.steps, "50", 1, 100000, "sampler steps"),
    ENUM("sample", "method", sample.opt.method, "euler", "euler|heun", "ODE sampler"),
    FLOAT("sample", "cfg", sample.opt.cfg_scale, "2", 0, 100, "classifier-free guidance scale (<= 1: none)"),
    FLOAT("sample", "shift", sample.opt.shift, "1", 1, 1000, "time shift of the sampler grid (1: uniform)"),
    INT("sample", "per_class", sample.per_class, "8", 1, 10000, "samples per class in a grid"),
    BOOL("sample", "ema", sample.ema, "true",
         "a teacher's training checkpoint: sample its EMA weights (false: its raw weights)"),

    INT("classifier", "width", classifier.width, "16", LIBRARY_RANGE,
        "channels of the first stage; each later stage doubles them"),
    INT("classifier", "stages", classifier.stages, "3", LIBRARY_RANGE,
        "resolutions (a 2x2 average pool between stages)"),
    INT("classifier", "blocks", classifier.blocks, "2", LIBRARY_RANGE, "conv/GroupNorm/SiLU blocks per stage"),
    INT("classifier", "groups", classifier.groups, "8", LIBRARY_RANGE, "GroupNorm groups (dividing width)"),
    INT("classifier", "residual", classifier.residual, "0", LIBRARY_RANGE,
        "1: ResNet basic blocks (two convs and a skip connection each); 0: one conv block"),
    INT("classifier", "hidden", classifier.hidden, "128", LIBRARY_RANGE,
        "features: a layer of this width over the flattened last stage (0: its global mean)"),
    INT("classifier", "epochs", classifier.epochs, "8", 1, 100000, "passes over the training set"),
    INT("classifier", "batch", classifier.batch, "64", 1, 1 << 20, "examples per step"),
    INT("classifier", "warmup", classifier.warmup, "100", 0, BIG, "steps of linear warm-up to lr"),
    FLOAT("classifier", "lr", classifier.lr, "0.003", 0, 10, "peak learning rate (AdamW)"),
    FLOAT("classifier", "min_lr", classifier.min_lr, "0", 0, 10,
          "learning rate at the end of the cosine decay"),
    FLOAT("classifier", "weight_decay", classifier.weight_decay, "0.05", 0, 10,
          "AdamW decoupled weight decay"),
    FLOAT("classifier", "clip", classifier.clip, "1", 0, 1e6,
          "gradient-norm clipping threshold (0: none)"),
    FLOAT("classifier", "label_smoothing", classifier.label_smoothing, "0.1", 0, 1,
          "weight of the uniform target mixed into the one-hot labels"),
    BOOL("classifier", "flip", classifier.flip, "true", "random horizontal flips of training images"),
    INT("classifier", "shift", classifier.shift, "0", 0, 64,
        "random translations of training images by up to this many pixels"),
    INT("classifier", "train_examples", classifier.train_examples, "0", 0, BIG,
        "train on the first N training images (0: all)"),
    INT("classifier", "train_offset", classifier.train_offset, "0", 0, BIG,
        "skip the first N training images (a judge and a reward model on disjoint halves)"),
    INT("classifier", "test_examples", classifier.test_examples, "0", 0, BIG,
        "evaluate on the first N test images (0: all)"),
    INT("classifier", "checkpoint_every", classifier.checkpoint_every, "1", 0, BIG,
        "epochs between checkpoints (0: only the last)"),
    INT("classifier", "log_every", classifier.log_every, "50", 1, BIG,
        "steps between metrics.jsonl lines"),

    STRING("eval", "classifier", eval.classifier, "",
           "the judge: a classifier file written by `dmdr train-classifier`"),
    STRING("eval", "reward_model", eval.reward_model, "",
           "a classifier whose mean log p(y|x) is the reward column (default: the judge's)"),
    BOOL("eval", "judge_is_reward", eval.judge_is_reward, "false",
         "measure a stage-2 run with the very network it was rewarded by (else refused)"),
    INT("eval", "per_class", eval.per_class, "100", 2, 100000,
        "samples generated (or real images taken) per class"),
    BOOL("eval", "real", eval.real, "false",
         "measure real training images against the test set (the floor) instead of samples"),

    STRING("distill", "teacher", distill.teacher, "",
           "the teacher's weights: a train-teacher checkpoint (its EMA) or model.safetensors"),
    INT("distill", "gen_steps", distill.opt.gen.steps, "1", 1, GENERATOR_MAX_STEPS,
        "generator sampling steps K (1, 2 or 4)"),
    FLOAT("distill", "gen_shift", distill.opt.gen.shift, "1", 1, GENERATOR_MAX_SHIFT,
          "time shift of the generator's grid"),
    ENUM("distill", "backsim", distill.opt.backsim, "previous", "previous|current",
         "K > 1: G's input at t_k re-noises the previous step's x0 (DMD2, as when sampling) or the "
         "x0 predicted at t_k (the DMDR authors')"),
    INT("distill", "steps", distill.steps, "2000", 1, BIG, "generator updates"),
    INT("distill", "batch", distill.opt.batch, "32", 1, 1 << 20, "examples per inner step"),
    INT("distill", "ratio", distill.opt.ratio, "5", 1, 1000,
        "fake-score updates per generator update (two-time-scale rule)"),
    ENUM("distill", "lora_style", distill.opt.lora.style, "peft", "peft|qv",
         "shared LoRA: peft (on attention projections, A ~ N(0, 1/r^2), alpha / rank) or qv (the DMDR "
         "authors': on attention's q and v outputs, A ~ N(0, 1), no scaling)"),
    INT("distill", "lora_rank", distill.opt.lora.rank, "16", 1, 4096, "rank of the shared LoRA adapter"),
    FLOAT("distill", "lora_alpha", distill.opt.lora.alpha, "16", 0, 1e6, "LoRA alpha (peft: scaling alpha / rank)"),
    BOOL("distill", "lora_mlp", distill.opt.lora.mlp, "false",
         "peft: adapt the MLP layers too, not only the attention projections"),
    ENUM("distill", "fake_net", distill.opt.fake_net, "lora", "lora|separate",
         "fake score: the teacher's LoRA at scale fake_scale (DMDR), or a separate fully trained "
         "copy of the teacher (DMD2)"),
    FLOAT("distill", "fake_scale", distill.opt.fake_scale, "2", 0.001, 100, "LoRA scale of the fake score (lambda_f)"),
    FLOAT("distill", "real_scale", distill.opt.dyna.real_scale0, "0.75", 0, 100,
          "DynaDG: LoRA scale of the real score at the start (lambda_r0), annealed to 0"),
    FLOAT("distill", "real_cfg", distill.opt.real_cfg, "1", 0, 100, "real-score CFG scale (<= 1: none)"),
    FLOAT("distill", "cfg_jitter", distill.opt.cfg_jitter, "0", 0, 100,
          "per-sample real-score CFG scale drawn from real_cfg +- jitter (only when real_cfg > 1)"),
    BOOL("distill", "dynadg", distill.opt.dyna.dynadg, "true", "dynamic distribution guidance (off: lambda_r = 0)"),
    BOOL("distill", "dynars", distill.opt.dyna.dynars, "true",
         "dynamic renoise sampling (off: renoise times uniform on [t_min, 1))"),
    INT("distill", "dyn_steps", distill.dyn_steps, "0", 0, BIG,
        "generator steps over which DynaDG and DynaRS anneal (0: half of steps)"),
    FLOAT("distill", "beta_a", distill.opt.dyna.beta_a0, "4", 1, 1000, "DynaRS: Beta a at the start"),
    FLOAT("distill", "beta_b", distill.opt.dyna.beta_b0, "1.5", 1, 1000, "DynaRS: Beta b at the start"),
    FLOAT("distill", "t_min", distill.opt.dyna.t_min, "0.001", 0, 0.5, "smallest renoise time"),
    FLOAT("distill", "gen_lr", distill.opt.gen_lr, "0.00002", 0, 10, "generator learning rate (AdamW)"),
    FLOAT("distill", "fake_lr", distill.opt.fake_lr, "0.00002", 0, 10, "fake-score learning rate (AdamW)"),
    FLOAT("distill", "gen_weight_decay", distill.opt.gen_weight_decay, "0.01", 0, 10, "generator weight decay"),
    FLOAT("distill", "fake_weight_decay", distill.opt.fake_weight_decay, "0", 0, 10, "fake-score weight decay"),
    FLOAT("distill", "clip", distill.opt.clip, "1", 0, 1e6, "gradient-norm clipping of both (0: none)"),
    INT("distill", "checkpoint_every", distill.checkpoint_every, "500", 0, BIG,
        "generator steps between checkpoints (0: only the last)"),
    INT("distill", "sample_every", distill.sample_every, "250", 0, BIG,
        "generator steps between sample grids (0: only the last)"),
    INT("distill", "log_every", distill.log_every, "10", 1, BIG, "generator steps between metrics.jsonl lines"),

    ENUM("rl", "rl", rl.opt.algorithm, "none", "none|backprop|ppo",
         "stage 2 of DMDR: the RL algorithm (none: stage 1 only); needs --init and --classifier"),
    ENUM("rl", "regularizer", rl.opt.regularizer, "dmd", "dmd|kl|none",
         "what keeps stage 2 on the data: the DMD loss (DMDR), a KL to the starting generator, "
         "or nothing (reward only)"),
    INT("rl", "steps", rl.steps, "200", 1, BIG, "generator updates of stage 2"),
    FLOAT("rl", "reward_weight", rl.opt.reward_weight, "0.05", 0, 1e6, "w_r in L_DMD + w_r L_reward"),
    FLOAT("rl", "gen_lr", rl.gen_lr, "0.00001", 0, 10, "stage-2 generator learning rate"),
    FLOAT("rl", "fake_lr", rl.fake_lr, "0.00001", 0, 10, "stage-2 fake-score learning rate"),
    ENUM("rl", "reward_loss", rl.opt.reward_loss, "linear", "linear|hinge",
         "reward backprop: -mean(log p(y|x)) (the cross-entropy), or mean(relu(margin - log p))"),
    FLOAT("rl", "margin", rl.opt.margin, "-0.105", -1e6, 1e6,
          "the hinge's target log p(y|x): no push once p >= exp(margin) (default 0.9)"),
    INT("rl", "group", rl.opt.ppo.group, "8", 1, 1 << 20, "PPO: samples per label sharing a baseline"),
    INT("rl", "ppo_epochs", rl.opt.ppo.epochs, "2", 1, 1000, "PPO: updates per batch of rollouts"),
    FLOAT("rl", "clip_eps", rl.opt.ppo.clip_eps, "0.001", 0, 1, "PPO: ratio clip range"),
    FLOAT("rl", "explore_std", rl.opt.ppo.explore_std, "0.05", 0.0001, 10,
          "PPO: std of the last step's exploration noise (and of the KL baseline)"),
    FLOAT("rl", "adv_clamp", rl.opt.ppo.adv_clamp, "5", 0, 1e6, "PPO: advantages clamped to +- this"),
    FLOAT("rl", "kl_beta", rl.opt.kl_beta, "0.1", 0, 1e6, "KL regulariser weight beta"),

    STRING("run", "out", run.out, "",
           "output: the run directory of a training command (default "
           "runs/<command>-<preset>-<time>), the PNG of `dmdr sample`"),
    INT("run", "seed", run.seed, "0", 0, INT_MAX, "seed of every random stream"),
    INT("run", "threads", run.threads, "0", 0, 4096, "CPU threads (0: $DMDR_THREADS, else every core)"),
    ENUM("run", "device", run.device, "cpu", "cpu|cuda", "where tensors live"),
    ENUM("run", "precision", run.precision, "bf16", "fp32|bf16",
         "GEMMs on bf16 operands with fp32 accumulation, all else fp32 (fp32 where the CPU "
         "lacks AVX512-BF16/AMX or oneDNN is missing); or fp32 throughout"),
    BOOL("run", "quiet", run.quiet, "false", "no progress display"),
};
#define SETTING_COUNT ((int)(sizeof settings / sizeof settings[0]))

static const char *const all_sections = "model data train sample classifier eval distill rl run";

// ---- presets ---------------------------------------------------------------------------------

typedef struct {
    const char *name, *summary;
    const char *const *values; // "section.name=value", NULL-terminated
} Preset;

static const char *const toy2d_values[] = {
    "model.kind=mlp", "model.num_classes=8", "model.data_dim=2", "model.mlp_width=128",
    "model.mlp_layers=3", "data.dataset=toy2d", "data.toy_components=8", "train.steps=3000",
    "train.batch=256", "train.lr=0.001", "train.warmup=100", "train.min_lr=0.0001",
    "train.ema_decay=0.99", "train.checkpoint_every=0", "train.sample_every=1000",
    "sample.cfg=1", "sample.per_class=200", "distill.steps=300", "distill.batch=128",
    "distill.lora_rank=32", "distill.lora_alpha=32", "distill.lora_mlp=true",
    "distill.gen_lr=0.0002", "distill.fake_lr=0.001", "distill.sample_every=100",
    "distill.checkpoint_every=0", NULL};
static const char *const tiny_values[] = {
    "model.kind=dit", "model.image_size=28", "model.patch=4", "model.hidden=64", "model.depth=2",
    "model.heads=2", "train.steps=300", "train.batch=32", "train.lr=0.001", "train.warmup=20",
    "train.min_lr=0.0001", "train.ema_decay=0.99", "train.checkpoint_every=0",
    "train.sample_every=0", "sample.steps=20", "distill.steps=20", "distill.batch=16",
    "distill.gen_lr=0.0001", "distill.fake_lr=0.0001", "distill.checkpoint_every=0",
    "distill.sample_every=0", "rl.steps=10", "classifier.width=8", "classifier.groups=4",
    "classifier.hidden=32", "classifier.blocks=1", "classifier.epochs=2", "classifier.batch=50",
    "classifier.warmup=10", "classifier.lr=0.01", "classifier.train_examples=1000",
    "classifier.test_examples=500", "eval.per_class=10", NULL};
static const char *const small_values[] = {
    "model.kind=dit", "model.image_size=28", "model.patch=4", "model.hidden=192", "model.depth=6",
    "model.heads=3", "model.mlp_ratio=4", "train.steps=8000", "train.batch=64", "train.lr=0.0003",
    "train.warmup=300", "train.checkpoint_every=1000", "train.sample_every=1000",
    "distill.steps=1000", "distill.batch=32", "distill.gen_lr=0.00001", "distill.fake_lr=0.0001",
    "rl.gen_lr=0.00001", "rl.fake_lr=0.0001",
    "distill.checkpoint_every=250", "distill.sample_every=250", NULL};
static const char *const base_values[] = {
    "model.kind=dit", "model.image_size=28", "model.patch=2", "model.hidden=384", "model.depth=12",
    "model.heads=6", "model.mlp_ratio=4", "train.steps=100000", "train.batch=128",
    "train.lr=0.0001", "train.warmup=1000", "train.ema_decay=0.9999",
    "train.checkpoint_every=5000", "train.sample_every=5000", "run.device=cuda", NULL};

static const Preset presets[] = {
    {"toy2d", "MLP score network on 8 Gaussians on a ring: trains in seconds", toy2d_values},
    {"tiny", "a very small DiT and classifier on Fashion-MNIST, for tests and CI", tiny_values},
    {"small", "the CPU experiment: DiT (hidden 192, depth 6) on Fashion-MNIST", small_values},
    {"base", "DiT-S/2-like (hidden 384, depth 12, patch 2) on Fashion-MNIST, for a GPU", base_values},
};
#define PRESET_COUNT ((int)(sizeof presets / sizeof presets[0]))

// ---- lookup ----------------------------------------------------------------------------------

// Whether the space-separated word list `list` contains the first n characters of word.
static bool list_has(const char *list, const char *word, size_t n) {
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && strncmp(p, word, n) == 0) return true;
        p += len;
        while (*p == ' ') p++;
    }
    return false;
}

static const Setting *find_exact(const char *section, size_t section_len, const char *name) {
    for (int i = 0; i < SETTING_COUNT; i++)
        if (strlen(settings[i].section) == section_len &&
            strncmp(settings[i].section, section, section_len) == 0 &&
            strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

// key: "name" or "section.name". A bare name is searched in `order`'s sections in turn; a
// qualified one must name a section in `order`.
static const Setting *find_setting(const char *key, const char *order) {
    const char *dot = strchr(key, '.');
    if (dot) {
        size_t n = (size_t)(dot - key);
        return list_has(order, key, n) ? find_exact(key, n, dot + 1) : NULL;
    }
    for (const char *p = order; *p;) {
        size_t len = strcspn(p, " ");
        const Setting *s = find_exact(p, len, key);
        if (s) return s;
        p += len;
        while (*p == ' ') p++;
    }
    return NULL;
}

// How a command's user writes the setting: bare when the bare name finds it, else qualified.
static char *flag_name(const Setting *s, const char *order, char *buf, size_t n) {
    if (find_setting(s->name, order) == s) snprintf(buf, n, "%s", s->name);
    else snprintf(buf, n, "%s.%s", s->section, s->name);
    return buf;
}

static void to_dashes(char *name) {
    for (; *name; name++)
        if (*name == '_') *name = '-';
}

static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 63 || lb > 63) return 99;
    int row[64];
    for (int j = 0; j <= lb; j++) row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j];
            int sub = diag + (a[i - 1] != b[j - 1]);
            int best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[lb];
}

// "; did you mean 'hidden'?" for the closest name in `order` within 2 edits, else "".
static const char *suggest(const char *key, const char *order, const char *prefix, char *buf,
                           size_t n) {
    const char *dot = strchr(key, '.');
    const char *name = dot ? dot + 1 : key;
    const Setting *best = NULL;
    int best_d = 3;
    for (int i = 0; i < SETTING_COUNT; i++) {
        if (!list_has(order, settings[i].section, strlen(settings[i].section))) continue;
        int d = edit_distance(name, settings[i].name);
        if (d < best_d) best_d = d, best = &settings[i];
    }
    buf[0] = '\0';
    if (!best) return buf;
    char fname[96];
    flag_name(best, order, fname, sizeof fname);
    if (prefix[0]) to_dashes(fname); // a flag: spelled as help spells flags
    snprintf(buf, n, "; did you mean '%s%s'?", prefix, fname);
    return buf;
}

// ---- values ----------------------------------------------------------------------------------

typedef struct {
    double min, max;
} Range;

static Range setting_range(const Setting *s) {
    Range r = {s->min, s->max};
    if (strcmp(s->section, "model") == 0) model_config_range(s->name, &r.min, &r.max);
    if (strcmp(s->section, "classifier") == 0) classifier_config_range(s->name, &r.min, &r.max);
    return r;
}

// A text setting must come back unchanged from the INI files that store it (config.ini, a
// checkpoint's run configuration): Debian's inih reads lines of at most INI_LINE_MAX
// characters, strips spaces around a value, ends it at " ;" (an inline comment) and knows no
// escapes, so such values, and control characters, are refused when set.
#define INI_LINE_MAX 198
static size_t string_max(const Setting *s) {
    size_t line = INI_LINE_MAX - strlen(s->name) - 3; // "name = value"
    return line < s->size - 1 ? line : s->size - 1;
}

static bool string_fits(const Setting *s, const char *text) {
    size_t n = strlen(text);
    if (n > string_max(s)) return false;
    if (n > 0 && (text[0] == ' ' || text[n - 1] == ' ')) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        // the writer puts "name = " before the value: a ';' first is after a space too
        if (c < 0x20 || c == 0x7f || (c == ';' && (i == 0 || text[i - 1] == ' '))) return false;
    }
    return true;
}

static void describe_expected(const Setting *s, char *buf, size_t n) {
    Range r = setting_range(s);
    switch (s->type) {
    case T_INT: snprintf(buf, n, "an integer in [%.0f, %.0f]", r.min, r.max); break;
    case T_FLOAT: snprintf(buf, n, "a number in [%g, %g]", r.min, r.max); break;
    case T_STRING:
        snprintf(buf, n, "a text of at most %zu characters, without control characters, spaces "
                 "at either end, or ';' first or after a space", string_max(s));
        break;
    case T_BOOL: snprintf(buf, n, "true or false"); break;
    case T_ENUM: snprintf(buf, n, "one of %s", s->choices); break;
    case T_INTS:
        snprintf(buf, n, "1 to %zu comma-separated integers in [%.0f, %.0f]", s->size / sizeof(int),
                 r.min, r.max);
        break;
    }
}

static bool parse_long(const char *text, double lo, double hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || (double)v < lo || (double)v > hi) return false;
    *out = v;
    return true;
}

static int enum_index(const char *choices, const char *text) {
    int index = 0;
    for (const char *p = choices; *p; index++) {
        size_t len = strcspn(p, "|");
        if (strlen(text) == len && strncmp(p, text, len) == 0) return index;
        p += len;
        if (*p == '|') p++;
    }
    return -1;
}

// Parses text into the setting's field; false when it does not fit the type or range.
static bool parse_value(const Setting *s, const char *text, Config *cfg) {
    char *field = (char *)cfg + s->offset;
    Range r = setting_range(s);
    switch (s->type) {
    case T_INT: {
        long v;
        if (!parse_long(text, r.min, r.max, &v)) return false;
        if (s->size == sizeof(int64_t)) *(int64_t *)field = v; // a library count (warm-up steps)
        else *(int *)field = (int)v;
        return true;
    }
    case T_FLOAT: {
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(v) || v < r.min || v > r.max) return false;
        *(float *)field = (float)v;
        return true;
    }
    case T_STRING:
        if (!string_fits(s, text)) return false;
        memset(field, 0, s->size);
        memcpy(field, text, strlen(text));
        return true;
    case T_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
        for (int i = 0; i < 4; i++) {
            if (strcmp(text, yes[i]) == 0) return *(bool *)field = true, true;
            if (strcmp(text, no[i]) == 0) return *(bool *)field = false, true;
        }
        return false;
    }
    case T_ENUM: {
        int index = enum_index(s->choices, text);
        if (index < 0) return false;
        *(int *)field = index;
        return true;
    }
    case T_INTS: {
        int values[16] = {0}, count = 0, capacity = (int)(s->size / sizeof(int));
        char item[32];
        for (const char *p = text;; p++) {
            size_t len = strcspn(p, ",");
            long v;
            if (count == capacity || len == 0 || len >= sizeof item) return false;
            memcpy(item, p, len);
            item[len] = '\0';
            if (!parse_long(item, r.min, r.max, &v)) return false;
            values[count++] = (int)v;
            p += len;
            if (*p == '\0') break;
        }
        memcpy(field, values, s->size);
        return true;
    }
    }
    return false;
}

static void format_value(const Setting *s, const Config *cfg, char *buf, size_t n) {
    const char *field = (const char *)cfg + s->offset;
    switch (s->type) {
    case T_INT:
        if (s->size == sizeof(int64_t)) snprintf(buf, n, "%lld", (long long)*(const int64_t *)field);
        else snprintf(buf, n, "%d", *(const int *)field);
        break;
    case T_FLOAT: {
        // the shortest text that reads back to the same float (9 digits always do)
        float v = *(const float *)field;
        for (int digits = 6; digits <= 9; digits++) {
            snprintf(buf, n, "%.*g", digits, (double)v);
            if (strtof(buf, NULL) == v) break;
        }
        break;
    }
    case T_STRING: snprintf(buf, n, "%s", field); break;
    case T_BOOL: snprintf(buf, n, "%s", *(const bool *)field ? "true" : "false"); break;
    case T_ENUM: {
        const char *p = s->choices;
        for (int i = *(const int *)field; i > 0 && *p; i--) {
            p += strcspn(p, "|");
            if (*p == '|') p++;
        }
        snprintf(buf, n, "%.*s", (int)strcspn(p, "|"), p);
        break;
    }
    case T_INTS: {
        const int *v = (const int *)field;
        size_t used = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < s->size / sizeof(int) && v[i] != 0 && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, "%s%d", i ? "," : "", v[i]);
        break;
    }
    }
}

// what: how the message names the setting: "run.ini:4: train.lr" or the flag as typed.
static int set_value(Config *cfg, const Setting *s, const char *value, const char *what,
                     Error *err) {
    if (parse_value(s, value, cfg)) return 0;
    char expected[128];
    describe_expected(s, expected, sizeof expected);
    return error_set(err, "%s expects %s, got '%s'", what, expected, value);
}

void config_defaults(Config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < SETTING_COUNT; i++)
        DMDR_CHECK(parse_value(&settings[i], settings[i].def, cfg), "bad default of %s.%s",
                   settings[i].section, settings[i].name);
}

bool config_has_key(const char *key, const char *sections) {
    char name[128];
    snprintf(name, sizeof name, "%s", key);
    for (char *p = name; *p; p++)
        if (*p == '-') *p = '_';
    return find_setting(name, sections ? sections : all_sections) != NULL;
}

int config_set(Config *cfg, const char *key, const char *value, const char *sections,
               const char *source, Error *err) {
    const char *order = sections ? sections : all_sections;
    const Setting *s = find_setting(key, order);
    if (!s) {
        char hint[160];
        suggest(key, order, "", hint, sizeof hint);
        return error_set(err, "%s%sunknown key '%s'%s", source ? source : "", source ? ": " : "",
                         key, hint);
    }
    char what[CONFIG_PATH_MAX + 64];
    if (source) snprintf(what, sizeof what, "%s: %s.%s", source, s->section, s->name);
    else snprintf(what, sizeof what, "--%s", key);
    return set_value(cfg, s, value, what, err);
}

static const Preset *find_preset(const char *name) {
    for (int i = 0; i < PRESET_COUNT; i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

// where: "file:line: " or "".
static int unknown_preset(const char *where, const char *name, Error *err) {
    char names[128] = "";
    for (int i = 0; i < PRESET_COUNT; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                 presets[i].name);
    return error_set(err, "%sunknown preset '%s' (presets: %s)", where, name, names);
}

int config_apply_preset(Config *cfg, const char *name, Error *err) {
    const Preset *p = find_preset(name);
    if (!p) return unknown_preset("", name, err);
    for (const char *const *v = p->values; *v; v++) {
        char key[64];
        const char *eq = strchr(*v, '=');
        DMDR_CHECK(eq && (size_t)(eq - *v) < sizeof key, "malformed preset entry %s", *v);
        memcpy(key, *v, (size_t)(eq - *v));
        key[eq - *v] = '\0';
        const Setting *s = find_setting(key, all_sections);
        DMDR_CHECK(s && parse_value(s, eq + 1, cfg), "bad preset entry %s in %s", *v, name);
    }
    snprintf(cfg->preset, sizeof cfg->preset, "%s", name);
    return 0;
}

// ---- INI files --------------------------------------------------------------------------------
// inih calls us back per key; we only collect (section, name, value, line) so the resolution
// can apply the preset first, whatever line the file names it on. Lines are counted by our
// own reader, which works whatever INI_HANDLER_LINENO the library was built with.

typedef struct {
    char section[64], name[64], value[CONFIG_PATH_MAX + 8]; // longer than any valid value
    int line;
} IniEntry;

typedef struct {
    FILE *f;
    int line;
    bool too_long;
    int max_line;
    IniEntry *items;
    int count, capacity;
} IniFile;

static char *ini_read_line(char *str, int num, void *stream) {
    IniFile *r = stream;
    char *s = fgets(str, num, r->f);
    if (!s) return NULL;
    r->line++;
    size_t len = strlen(s);
    if (len == (size_t)num - 1 && s[len - 1] != '\n' && !feof(r->f)) {
        r->too_long = true;
        r->max_line = num - 2;
        return NULL; // stop: the rest of this line would be read as another line
    }
    return s;
}

static int ini_collect(void *user, const char *section, const char *name, const char *value) {
    IniFile *r = user;
    if (r->count == r->capacity) {
        r->capacity = r->capacity ? 2 * r->capacity : 32;
        r->items = realloc(r->items, (size_t)r->capacity * sizeof *r->items);
        DMDR_CHECK(r->items != NULL, "out of host memory");
    }
    IniEntry *e = &r->items[r->count++];
    snprintf(e->section, sizeof e->section, "%s", section);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->value, sizeof e->value, "%s", value);
    e->line = r->line;
    return 1;
}

// Parses `f` (name for messages) into r->items; -1 with err on a syntax error.
static int ini_read(FILE *f, const char *name, IniFile *r, Error *err) {
    *r = (IniFile){.f = f};
    int rc = ini_parse_stream(ini_read_line, r, ini_collect, r);
    if (r->too_long)
        return error_set(err, "%s:%d: line longer than %d characters", name, r->line, r->max_line);
    if (rc > 0) return error_set(err, "%s:%d: expected 'key = value' or '[section]'", name, rc);
    if (rc < 0) return error_set(err, "%s: cannot parse (out of memory)", name);
    return 0;
}

static int ini_read_text(const char *text, const char *name, IniFile *r, Error *err) {
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    DMDR_CHECK(f != NULL, "fmemopen failed");
    int rc = ini_read(f, name, r, err);
    fclose(f);
    return rc;
}

// The whole of a regular file of at most CONFIG_FILE_MAX bytes, without NUL bytes (which
// would cut a value short unseen): malloc'd text, or NULL with err. A device (/dev/zero), a
// directory or a pipe is refused before a byte is read, so nothing can hang or be ignored.
static char *read_config_text(const char *path, Error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        error_set(err, "cannot open config file '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *text = NULL;
    if (fstat(fileno(f), &st) != 0)
        error_set(err, "config file '%s': %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        error_set(err, "config file '%s' is not a regular file (%s)", path,
                  S_ISDIR(st.st_mode) ? "a directory" : "a device, pipe or socket");
    else if (st.st_size > CONFIG_FILE_MAX)
        error_set(err, "config file '%s' is %lld bytes; a config file is at most %d", path,
                  (long long)st.st_size, CONFIG_FILE_MAX);
    else {
        size_t n = (size_t)st.st_size;
        text = malloc(n + 1);
        DMDR_CHECK(text != NULL, "out of host memory");
        size_t got = fread(text, 1, n + 1, f);
        text[got <= n ? got : n] = '\0';
        const char *nul = memchr(text, '\0', got <= n ? got : n);
        if (ferror(f) || got > n) {
            error_set(err, "config file '%s': %s", path,
                      got > n ? "it grew while being read" : strerror(errno));
            free(text), text = NULL;
        } else if (nul) {
            int line = 1;
            for (const char *p = text; p < nul; p++) line += *p == '\n';
            error_set(err, "%s:%d: a NUL byte (a config file is text)", path, line);
            free(text), text = NULL;
        }
    }
    fclose(f);
    return text;
}

static int ini_read_file(const char *path, IniFile *r, Error *err) {
    *r = (IniFile){0};
    char *text = read_config_text(path, err);
    if (!text) return -1;
    int rc = ini_read_text(text, path, r, err);
    free(text);
    return rc;
}

// The top-level `preset` entry, or NULL.
static const IniEntry *ini_preset(const IniFile *r) {
    for (int i = 0; i < r->count; i++)
        if (r->items[i].section[0] == '\0' && strcmp(r->items[i].name, "preset") == 0)
            return &r->items[i];
    return NULL;
}

// Applies every entry but `preset`. A bare name at the top resolves in the command's order,
// then in every section; a name under [section] must be that section's.
static int ini_apply(const IniFile *r, const char *name, Config *cfg, const char *sections,
                     Error *err) {
    const char *order = sections ? sections : all_sections;
    const Setting **seen = calloc((size_t)r->count + 1, sizeof *seen);
    DMDR_CHECK(seen != NULL, "out of host memory");
    int rc = 0;
    for (int i = 0; i < r->count && rc == 0; i++) {
        const IniEntry *e = &r->items[i];
        char where[CONFIG_PATH_MAX + 32], hint[160];
        snprintf(where, sizeof where, "%s:%d", name, e->line);
        const Setting *s;
        if (e->section[0] == '\0') {
            if (strcmp(e->name, "preset") == 0) {
                char at[sizeof where + 2];
                snprintf(at, sizeof at, "%s: ", where);
                if (!find_preset(e->value)) rc = unknown_preset(at, e->value, err);
                continue;
            }
            s = find_setting(e->name, order);
            if (!s) s = find_setting(e->name, all_sections);
            if (!s) {
                rc = error_set(err, "%s: unknown key '%s'%s", where, e->name,
                               suggest(e->name, all_sections, "", hint, sizeof hint));
                break;
            }
        } else {
            if (!list_has(all_sections, e->section, strlen(e->section))) {
                rc = error_set(err, "%s: unknown section [%s] (sections: model, data, train, "
                                    "sample, classifier, eval, distill, rl, run)",
                               where, e->section);
                break;
            }
            s = find_exact(e->section, strlen(e->section), e->name);
            if (!s) {
                rc = error_set(err, "%s: unknown key '%s' in [%s]%s", where, e->name, e->section,
                               suggest(e->name, e->section, "", hint, sizeof hint));
                break;
            }
        }
        for (int j = 0; j < i; j++)
            if (seen[j] == s) {
                rc = error_set(err, "%s: %s.%s is set again (first on line %d)", where,
                               s->section, s->name, r->items[j].line);
                break;
            }
        seen[i] = s;
        if (rc == 0) {
            char what[sizeof where + 160];
            snprintf(what, sizeof what, "%s: %s.%s", where, s->section, s->name);
            rc = set_value(cfg, s, e->value, what, err);
        }
    }
    free(seen);
    return rc;
}

int config_load_file(Config *cfg, const char *path, const char *sections, Error *err) {
    IniFile r;
    int rc = ini_read_file(path, &r, err);
    if (rc == 0) rc = ini_apply(&r, path, cfg, sections, err);
    free(r.items);
    return rc;
}

int config_load_string(Config *cfg, const char *text, const char *name, const char *sections,
                       Error *err) {
    IniFile r;
    int rc = ini_read_text(text, name, &r, err);
    if (rc == 0) rc = ini_apply(&r, name, cfg, sections, err);
    free(r.items);
    return rc;
}

char *config_to_ini(const Config *cfg) {
    size_t cap = 16384, used = 0;
    char *out = malloc(cap);
    DMDR_CHECK(out != NULL, "out of host memory");
    used += (size_t)snprintf(out, cap,
                             "# dmdr configuration, resolved: every key, so this file repeats the "
                             "run with --config\npreset = %s\n",
                             cfg->preset);
    const char *last_section = "";
    for (int i = 0; i < SETTING_COUNT; i++) {
        const Setting *s = &settings[i];
        char value[CONFIG_PATH_MAX + 64];
        format_value(s, cfg, value, sizeof value);
        size_t need = strlen(s->help) + strlen(value) + 128;
        if (used + need > cap) {
            cap = 2 * cap + need;
            out = realloc(out, cap);
            DMDR_CHECK(out != NULL, "out of host memory");
        }
        if (strcmp(s->section, last_section) != 0)
            used += (size_t)snprintf(out + used, cap - used, "\n[%s]\n", s->section);
        last_section = s->section;
        used += (size_t)snprintf(out + used, cap - used, "# %s\n%s = %s\n", s->help, s->name, value);
    }
    return out;
}

int config_write(const Config *cfg, const char *path, Error *err) {
    char *text = config_to_ini(cfg);
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (!f) rc = error_set(err, "cannot write '%s': %s", path, strerror(errno));
    else if (fputs(text, f) < 0 || fclose(f) != 0)
        rc = error_set(err, "cannot write '%s': %s", path, strerror(errno));
    free(text);
    return rc;
}

// ---- the command line ---------------------------------------------------------------------

const char *config_find_flag(int argc, char **argv, const char *flag) {
    size_t n = strlen(flag);
    const char *found = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, flag, n) != 0) continue;
        if (a[2 + n] == '=') found = a + 3 + n;
        else if (a[2 + n] == '\0' && i + 1 < argc) found = argv[i + 1];
    }
    return found;
}

static bool is_bool_word(const char *s) {
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
    for (int i = 0; i < 8; i++)
        if (strcmp(s, words[i]) == 0) return true;
    return false;
}

// "--per-class=8" -> name "per_class", *value "8" (or NULL); name is written into buf.
static const char *split_flag(const char *arg, char *buf, size_t n, const char **value) {
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (len >= n) len = n - 1;
    for (size_t i = 0; i < len; i++) buf[i] = arg[i] == '-' ? '_' : arg[i];
    buf[len] = '\0';
    *value = eq ? eq + 1 : NULL;
    return buf;
}

// Pass 1 (apply = false) checks the shape of the command line and finds --preset/--config;
// pass 2 applies the --key value settings in order.
static int scan_args(Config *cfg, const ConfigCommand *cmd, int argc, char **argv, bool apply,
                     ConfigArgs *args, const char **preset, const char **file, Error *err) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (!apply) {
                if (args->positional_count == cmd->max_positional)
                    return error_set(err, "dmdr %s: unexpected argument '%s' (see `dmdr help %s`)",
                                     cmd->name, a, cmd->name);
                args->positional[args->positional_count++] = a;
            }
            continue;
        }
        char name[128], flag_text[128];
        const char *value;
        split_flag(a + 2, name, sizeof name, &value);
        snprintf(flag_text, sizeof flag_text, "%.*s", (int)strcspn(a, "="), a);
        const Setting *s = find_setting(name, cmd->sections);
        int own = -1;
        for (int k = 0; k < 4 && cmd->own_flags[k]; k++) {
            char own_name[64];
            const char *unused;
            if (strcmp(split_flag(cmd->own_flags[k], own_name, sizeof own_name, &unused), name) == 0)
                own = k;
        }
        // a command without settings (info) takes no preset or file either
        bool meta = cmd->sections[0] && (strcmp(name, "preset") == 0 || strcmp(name, "config") == 0);
        if (!s && own < 0 && !meta) {
            char hint[160];
            return error_set(err, "dmdr %s: unknown flag '%s'%s (see `dmdr help %s`)", cmd->name,
                             flag_text, suggest(name, cmd->sections, "--", hint, sizeof hint),
                             cmd->name);
        }
        if (!value) {
            bool has_next = i + 1 < argc;
            if (s && s->type == T_BOOL && !(has_next && is_bool_word(argv[i + 1]))) {
                value = "true"; // a bare boolean flag switches it on
            } else if (!has_next) {
                return error_set(err, "%s needs a value", flag_text);
            } else {
                value = argv[++i];
            }
        }
        if (!apply) {
            if (strcmp(name, "preset") == 0) *preset = value;
            else if (strcmp(name, "config") == 0) *file = value;
            else if (own >= 0) args->own[own] = value;
        } else if (s && set_value(cfg, s, value, flag_text, err) != 0) {
            return -1;
        }
    }
    return 0;
}

int config_resolve(Config *cfg, const ConfigCommand *cmd, int argc, char **argv,
                   const char *base_ini, ConfigArgs *args, Error *err) {
    memset(args, 0, sizeof *args);
    config_defaults(cfg);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            args->help = true; // nothing else is checked: the caller prints the help
            return 0;
        }
    const char *preset = NULL, *file = NULL;
    if (scan_args(cfg, cmd, argc, argv, false, args, &preset, &file, err) != 0) return -1;
    if (args->help) return 0;
    if (args->positional_count < cmd->min_positional)
        return error_set(err, "dmdr %s: missing %s (see `dmdr help %s`)", cmd->name,
                         cmd->positional_name ? cmd->positional_name : "argument", cmd->name);
    IniFile base = {0}, user = {0};
    int rc = 0;
    if (base_ini) rc = ini_read_text(base_ini, "stored configuration", &base, err);
    if (rc == 0 && file) rc = ini_read_file(file, &user, err);
    if (rc == 0) {
        // the most specific source of a preset wins; a file's is checked where it stands
        const IniEntry *from = ini_preset(&user) ? ini_preset(&user) : ini_preset(&base);
        const char *name = preset ? preset : from ? from->value : CONFIG_DEFAULT_PRESET;
        if (!preset && from && !find_preset(name)) {
            char where[CONFIG_PATH_MAX + 32];
            snprintf(where, sizeof where, "%s:%d: ", from == ini_preset(&user) ? file
                     : "stored configuration", from->line);
            rc = unknown_preset(where, name, err);
        } else {
            rc = config_apply_preset(cfg, name, err);
        }
    }
    if (rc == 0 && base_ini) rc = ini_apply(&base, "stored configuration", cfg, cmd->sections, err);
    if (rc == 0 && file) rc = ini_apply(&user, file, cfg, cmd->sections, err);
    if (rc == 0) rc = scan_args(cfg, cmd, argc, argv, true, args, NULL, NULL, err);
    free(base.items);
    free(user.items);
    return rc;
}

// ---- help -----------------------------------------------------------------------------------

static const char *type_hint(const Setting *s, char *buf, size_t n) {
    switch (s->type) {
    case T_INT: return "N";
    case T_FLOAT: return "X";
    case T_STRING: return "TEXT";
    case T_BOOL: return "[BOOL]";
    case T_INTS: return "N,N,..";
    case T_ENUM: snprintf(buf, n, "%s", s->choices); return buf;
    }
    return "";
}

// "--per-class N", "--sample.steps N": the flag as help shows it (dashes for underscores).
static void help_flag(const Setting *s, const char *order, char *buf, size_t n) {
    char name[96], hint[96];
    to_dashes(flag_name(s, order, name, sizeof name));
    snprintf(buf, n, "--%s %s", name, type_hint(s, hint, sizeof hint));
}

void config_print_help(FILE *out, const char *sections) {
    fprintf(out, "\n  --preset NAME                defaults for the settings below (default %s):\n",
            CONFIG_DEFAULT_PRESET);
    for (int i = 0; i < PRESET_COUNT; i++)
        fprintf(out, "                                 %-6s %s\n", presets[i].name, presets[i].summary);
    fprintf(out, "  --config FILE                an INI file of settings, over the preset (flags "
                 "override it);\n"
                 "                               its keys: the names below with underscores, under "
                 "[section]\n");
    Config defaults;
    config_defaults(&defaults);
    for (const char *p = sections; *p;) {
        size_t len = strcspn(p, " ");
        fprintf(out, "\n[%.*s]\n", (int)len, p);
        for (int i = 0; i < SETTING_COUNT; i++) {
            const Setting *s = &settings[i];
            if (strlen(s->section) != len || strncmp(s->section, p, len) != 0) continue;
            char flag[200], value[CONFIG_PATH_MAX + 64];
            help_flag(s, sections, flag, sizeof flag);
            if (strlen(flag) <= 28) fprintf(out, "  %-28s %s\n", flag, s->help);
            else fprintf(out, "  %s\n  %-28s %s\n", flag, "", s->help);
            format_value(s, &defaults, value, sizeof value);
            fprintf(out, "  %-28s default %s", "", value[0] ? value : "\"\"");
            // the presets that change it
            char key[96];
            snprintf(key, sizeof key, "%s.%s=", s->section, s->name);
            for (int k = 0; k < PRESET_COUNT; k++)
                for (const char *const *v = presets[k].values; *v; v++) {
                    Config c = defaults;
                    char preset_value[CONFIG_PATH_MAX + 64];
                    if (strncmp(*v, key, strlen(key)) != 0) continue;
                    parse_value(s, *v + strlen(key), &c);
                    format_value(s, &c, preset_value, sizeof preset_value);
                    if (strcmp(preset_value, value) != 0)
                        fprintf(out, "; %s %s", presets[k].name, preset_value);
                }
            fputc('\n', out);
        }
        p += len;
        while (*p == ' ') p++;
    }
}
