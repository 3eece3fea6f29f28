// The full training state in one safetensors file, written atomically (safetensors_save:
// temporary file, fsync, rename), so a crash mid-save leaves the previous checkpoint intact.
//
// Layout of a file (every name below is a safetensors tensor or a __metadata__ string):
//   <prefix><name>            the weights, under their plain state_dict names: the same file
//                             loads into PyTorch after dropping the ema./optim. keys, and into
//                             a model here with params_load(..., allow_extra = true)
//   ema.<prefix><name>        EMA shadows of the trainable parameters
//   optim.m.<prefix><name>    AdamW first and second moments (torch's exp_avg, exp_avg_sq)
//   optim.v.<prefix><name>
//   metadata  format = "dmdr.checkpoint", format_version = "1",
//             <prefix>model_config   model_config_to_json of the part's model
//             <prefix>optim.step     adamw_step calls made
//             <prefix>optim.param_steps  JSON object {name: count} of the parameters whose own
//                                    update count differs from optim.step ("{}" normally)
//             step                   the trainer's step
//             rng.<name>.seed, rng.<name>.offset   each stream, as decimal strings
//             data.epoch, data.index the data position
//             ... and the caller's own key/value pairs (e.g. the resolved run config).
// <prefix> is "" for the main model; a trainer with several networks (a generator and a fake
// score) gives each other part its own prefix ("fake.").
//
// Resuming in a trainer:
//   Checkpoint ck = {
//       .part_count = 1, .parts = {{"", model_config(m), model_params(m), &ema, &opt}},
//       .rng_count = 1, .rngs = {{"train", &rng}},
//       .step = &step, .data = &pos,
//       .extra_count = 1, .extra_keys = keys, .extra_values = values,
//   };
//   if (resume && checkpoint_load(resume, &ck, err)) return -1;   // restores all of it
//   ... every N steps: if (checkpoint_save(path, &ck, err)) return -1;
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "nn/model.h"
#include "nn/optim.h"
#include "tensor/error.h"
#include "tensor/rng.h"

#define CHECKPOINT_FORMAT "dmdr.checkpoint"
#define CHECKPOINT_WEIGHTS_FORMAT "dmdr.weights"
#define CHECKPOINT_FORMAT_VERSION 1
#define CHECKPOINT_MAX_PARTS 8
// The metadata key with which a file says what its network is, so that a reader can refuse a
// file of another kind, or keys that do not belong to it, by name (files written before it
// have none, and readers then infer the kind as before).
#define CHECKPOINT_ROLE_KEY "role"
#define ROLE_TEACHER "teacher"       // a flow-matching velocity model (train-teacher)
#define ROLE_GENERATOR "generator"   // a few-step generator (distill), with generator_steps
#define ROLE_CLASSIFIER "classifier" // the judge / reward model (train-classifier)
#define CHECKPOINT_MAX_RNGS 8

// One network and its training state. Nothing is owned: every pointer refers to the
// caller's live objects, which checkpoint_save reads and checkpoint_load overwrites in place.
typedef struct {
    const char *prefix;        // "" or NULL for the main model; "fake." for another network
    const ModelConfig *config; // NULL: none stored, none checked
    const ParamList *params;   // required: every parameter is saved and restored
    Ema *ema;                  // NULL: no EMA
    AdamW *optim;              // NULL: no optimiser state
} CheckpointPart;

typedef struct {
    const char *name; // "train", "data": [A-Za-z0-9_]
    Rng *rng;
} CheckpointRng;

typedef struct {
    int64_t epoch, index; // index: the next sample (or batch, as the data loader counts) to read
} DataPosition;

typedef struct {
    int part_count;
    CheckpointPart parts[CHECKPOINT_MAX_PARTS];
    int rng_count;
    CheckpointRng rngs[CHECKPOINT_MAX_RNGS];
    int64_t *step;      // NULL: not stored
    DataPosition *data; // NULL: not stored
    // Saved as metadata beside the reserved keys above (a clash is an error); not read by
    // checkpoint_load: read them with checkpoint_read_metadata.
    int extra_count;
    const char *const *extra_keys;
    const char *const *extra_values;
} Checkpoint;

// Writes everything ck points at to `path` atomically. Returns 0, or -1 with err filled
// (and any previous file at `path` untouched).
int checkpoint_save(const char *path, const Checkpoint *ck, Error *err);
// Appends a part to ck (trainers that add their own state to a checkpoint built elsewhere);
// more than CHECKPOINT_MAX_PARTS is a programmer error.
void checkpoint_add_part(Checkpoint *ck, CheckpointPart part);

// Restores everything ck points at from `path`: weights, EMA shadows, moments and step counts,
// RNG streams, step and data position. Everything is validated before anything is written,
// so on error (-1, err naming the file and the key) the live state is unchanged. Errors: the
// file unreadable or malformed, not a dmdr checkpoint or a newer format version, a part's
// model_config differing from part->config, any tensor or metadata key ck needs missing, a
// shape or dtype mismatch (both shapes named), metadata that does not parse, and weights in
// the file that belong to no part. Keys ck does not ask for (EMA or moments when
// ema/optim is NULL, extra metadata) are ignored.
int checkpoint_load(const char *path, const Checkpoint *ck, Error *err);

// Copies the model's weights from a full checkpoint or an exported weights file, taking
// "ema.<name>" instead of "<name>" where the file has it when `ema` is set (an error if the
// file has no EMA at all). Other keys are ignored. For sampling and evaluation.
int checkpoint_load_weights(const char *path, const ParamList *params, bool ema, Error *err);

// Writes a weights-only file (plain state_dict names, format "dmdr.weights", model_config in
// the metadata when cfg is not NULL, then the caller's extra_count key/value pairs): the EMA
// shadows in place of the trainable weights when ema is not NULL, else the live weights. For
// sampling, sharing and PyTorch.
int checkpoint_export_weights(const char *path, const ParamList *params, const Ema *ema,
                              const ModelConfig *cfg, int extra_count,
                              const char *const *extra_keys, const char *const *extra_values,
                              Error *err);

// ---- metadata only (reads the header, not the tensor data) ----------------------------------

typedef struct {
    int count;
    char **keys, **values; // malloc'd
} CheckpointMetadata;

// The __metadata__ strings of a safetensors file (count 0 when it has none).
int checkpoint_read_metadata(const char *path, CheckpointMetadata *out, Error *err);
const char *checkpoint_metadata_get(const CheckpointMetadata *md, const char *key); // or NULL
void checkpoint_metadata_free(CheckpointMetadata *md);

// The main model's configuration ("model_config"), so a command can create the right model
// before loading into it. Works on full checkpoints and exported weights.
int checkpoint_read_model_config(const char *path, ModelConfig *cfg, Error *err);
