// Models to sample from, for evaluation and pictures: a teacher, sampled by an ODE sampler, or
// a K-step generator (dmdr/generator.h), loaded from a checkpoint or an exported weights file
// and told apart by the file's metadata. `dmdr sample`, `dmdr eval`, `dmdr distill` (its
// teacher) and the trainers' sample grids use them.
#pragma once

#include <stdint.h>

#include "diffusion/sampler.h"
#include "nn/model.h"
#include "tensor/error.h"

// The metadata keys with which a few-step generator's files say what they hold.
#define GENERATOR_STEPS_KEY "generator_steps"
#define GENERATOR_SHIFT_KEY "generator_shift"

// A model to sample from: a teacher, sampled by the ODE sampler of the caller's options, or a
// K-step generator, told apart by its file's GENERATOR_STEPS_KEY.
typedef struct {
    Model *model;
    int generator_steps; // K, or 0 for a teacher
    float generator_shift;
} SamplingModel;

// Loads the weights of a full checkpoint (a teacher's EMA, or its raw weights when ema is
// false; a generator's live weights) or of an exported weights file, creating the model its
// metadata describes. The generator keys must belong to the file's role and are read through
// the ranges of the command line's distill.gen_steps and distill.gen_shift (dmdr/generator.h).
// -1 with err.
int load_sampling_model(const char *path, Device device, bool ema, SamplingModel *out,
                        Error *err);

// y (n) I32 on the model's device -> n samples (n, ...) from noise drawn from rng: the K-step
// generator, or the ODE sampler with opt (its cfg and steps unused by a generator). *nfe (may
// be NULL) receives the network evaluations per sample.
Tensor *sample_model(const SamplingModel *sm, int64_t n, Tensor *y, Rng *rng,
                     const SamplerOptions *opt, int64_t *nfe);

// The same n samples split over the ranks (tensor/dist.h; n must divide by the ranks): every
// rank draws the noise of all n as sample_model does and samples its rows, and rank 0 gets
// all of them in order into host memory out (n, ...); on the other ranks out receives only
// their rows. A teacher's and a 1-step generator's samples are those of one rank; a K > 1
// generator's re-noises come from a stream of each rank's own (drawn as independently, but
// not the same samples). One rank: sample_model read into out.
void sample_model_gathered(const SamplingModel *sm, int64_t n, Tensor *y, Rng *rng,
                           const SamplerOptions *opt, int64_t *nfe, float *out);
