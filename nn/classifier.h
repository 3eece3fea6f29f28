// The judge: a small CNN classifier of images. It is the feature network of the generation
// metrics (its penultimate layer) and the reward model of the RL stage (differentiable with
// respect to its input image, with its own parameters frozen).
//
// The network, as PyTorch would write it (its state_dict names are the ones registered here):
//   class ConvBlock(nn.Module):              # conv -> GroupNorm -> SiLU
//       conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False); norm = nn.GroupNorm(groups, cout)
//   class Classifier(nn.Module):
//       stages = nn.ModuleList(nn.Sequential(ConvBlock, ... `blocks` of them) per stage)
//       fc = nn.Linear(C * S * S, hidden)     # only when hidden > 0
//       head = nn.Linear(F, num_classes)
//       def forward(self, x):
//           for s, stage in enumerate(self.stages):
//               x = stage(x if s == 0 else F.avg_pool2d(x, 2))
//           if hidden: f = F.silu(self.fc(x.flatten(1)))   # F = hidden
//           else:      f = x.mean((2, 3))                  # F = C = width * 2^(stages - 1)
//           return self.head(f), f
// Stage s has width * 2^s channels at image_size / 2^s pixels (C channels at S pixels after
// the last); the conv has no bias because the GroupNorm after it removes any per-channel
// shift. With residual set, each block is instead a ResNet basic block:
//   class BasicBlock(nn.Module):             # conv1 -> norm1 -> SiLU -> conv2 -> norm2, + x
//       conv1, norm1, conv2, norm2 (3x3 convs as above)
//       skip = Sequential(conv = nn.Conv2d(cin, cout, 1, bias=False), norm)  # cin != cout only
//       def forward(self, x):
//           h = self.norm2(self.conv2(F.silu(self.norm1(self.conv1(x)))))
//           return F.silu(h + (self.skip(x) if cin != cout else x))
// (the held-out judge; the plain network is the reward model). The flattened layer keeps where things are in the image, which the global mean
// forgets: on Fashion-MNIST (shirts against T-shirts, pullovers and coats) that is worth
// about a point of test accuracy in a short training.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "nn/optim.h"
#include "nn/params.h"
#include "tensor/error.h"
#include "tensor/rng.h"

typedef struct {
    int in_channels, image_size, num_classes;
    int width;  // channels of the first stage; each later stage doubles them
    int stages; // resolutions; image_size must be divisible by 2^(stages - 1)
    int blocks; // conv blocks per stage
    int groups; // GroupNorm groups, dividing width
    int hidden; // features: 0, the global mean of the last stage; else this many, from fc
    int residual; // 1: every block a ResNet basic block (below); 0: one conv block
} ClassifierConfig;

typedef struct Classifier Classifier;

// The inclusive range of a configuration field ("width", "hidden", ...); false for a key that
// is no field. The command line's settings table takes its ranges here.
bool classifier_config_range(const char *key, double *min, double *max);

// Creates the network with PyTorch's default initialisation. NULL with err naming the field
// when the configuration is inconsistent.
Classifier *classifier_create(const ClassifierConfig *cfg, Device device, Rng *rng, Error *err);
void classifier_free(Classifier *c);

// x (N, C, H, W) in [-1, 1] -> logits (N, num_classes); *features (N, F), the penultimate
// layer, when features != NULL. Differentiable w.r.t. x and, unless frozen, the parameters.
Tensor *classifier_forward(Classifier *c, Tensor *x, Tensor **features);

// logits (N, C), y (N) -> (1): the cross-entropy against (1 - eps) one_hot(y) + eps / C, as
// torch.nn.functional.cross_entropy(label_smoothing=eps): (1 - eps) CE + eps mean_c(-log p_c).
Tensor *smoothed_cross_entropy(Tensor *logits, Tensor *y, float eps);

// The judge's training step (dmdr train-classifier): x (N, C, H, W) in [-1, 1], y (N) I32 ->
// the smoothed cross-entropy, backward, AdamW over c's parameters at the scheduled rate with
// the gradient norm clipped (optim_train_step); *correct: the batch's argmax == y count. With
// several ranks (tensor/dist.h) x and y are the global batch, each rank computes its rows,
// and the loss and the count are the global batch's.
TrainStepStats classifier_train_step(Classifier *c, AdamW *opt, const LrSchedule *schedule,
                                     float clip, float label_smoothing, Tensor *x, Tensor *y,
                                     int64_t *correct);

// Every parameter under its state_dict name.
const ParamList *classifier_params(const Classifier *c);
const ClassifierConfig *classifier_config(const Classifier *c);
Device classifier_device(const Classifier *c);
int classifier_feature_dim(const Classifier *c); // F: hidden, or the last stage's channels

// Frozen: the parameters stop requiring gradients (and are registered as not trainable), so a
// backward through the classifier computes only the gradient of its input: the reward model
// of the RL stage. Unfrozen again for training.
void classifier_set_frozen(Classifier *c, bool frozen);

// Runs the network under no-grad over n host images (n, C, H, W), `chunk` at a time (0: all
// at once), writing logits (n, num_classes) and features (n, F) to host memory; either output
// may be NULL. For evaluation: the images never need to fit the device at once, and the GEMMs
// run in fp32 whatever autograd_precision() says (restored after).
void classifier_apply(Classifier *c, const float *images, int64_t n, int64_t chunk,
                      float *logits, float *features);

// ---- files ------------------------------------------------------------------------------------
// A classifier file is a safetensors of the parameters (format "dmdr.weights") with the
// configuration as JSON under the metadata key "classifier_config"; a training checkpoint
// of the classifier carries the same key and loads too.
#define CLASSIFIER_CONFIG_KEY "classifier_config"

char *classifier_config_to_json(const ClassifierConfig *cfg); // malloc'd
// Every field present and an integer within its range; err names the field otherwise.
int classifier_config_from_json(const char *json, ClassifierConfig *cfg, Error *err);

// Writes the weights with their configuration and role, plus `extra` metadata pairs (the run
// configuration that trained them: `dmdr train-classifier` stores its INI), atomically.
int classifier_save(const Classifier *c, const char *path, int extra_count,
                    const char *const *extra_keys, const char *const *extra_values, Error *err);
// Creates the network the file describes on `device` and loads its weights into it.
// -1 with err naming the file when it is unreadable, not a classifier file, or its tensors do
// not fit the configuration it states.
int classifier_load(const char *path, Device device, Classifier **out, Error *err);
