// The real and fake scores of DMD (docs/algorithm.md section 3). DMDR keeps one network for
// both: the frozen teacher with one LoRA adapter, read at the fake scale lambda_f for the fake
// score and at the DynaDG scale lambda_r(k) (with CFG) for the real one. DMD/DMD2's separate,
// fully trained fake-score network remains an option (the ablation): the real score is then
// the teacher itself, and DynaDG moves it toward the fake score by the fraction
// lambda_r / lambda_f, the first-order equivalent of reading a shared adapter at lambda_r.
#pragma once

#include "nn/model.h"

typedef struct {
    Model *net;       // the teacher with the LoRA adapter, or (separate) the frozen teacher
    Model *fake;      // NULL, or the separate fake-score network
    float fake_scale; // lambda_f
} Scores;

// x_t (N, ...), t (N), y (N) I32 -> v_fake (N, ...), tracked to the adapter (or the fake
// network): what the fake-score flow loss trains.
Tensor *score_fake(const Scores *s, Tensor *x_t, Tensor *t, Tensor *y);

// x_t (N, ...), t (N), y (N) I32 -> v_real (N, ...), untracked, at DynaDG scale lambda_r.
// cfg (N) F32: per-sample guidance scales (v = v_null + s (v_y - v_null) where s > 1; the
// conditional and null rows go through the network as one batch), or NULL for none.
Tensor *score_real(const Scores *s, Tensor *x_t, Tensor *t, Tensor *y, float lambda_r,
                   Tensor *cfg);

// n per-sample real-score CFG scales: s + U(-jitter, jitter), host draws from rng; NULL when
// s <= 1 (no guidance, whatever the jitter). A jittered scale <= 1 means no guidance for
// that sample.
Tensor *score_cfg_scales(int64_t n, float s, float jitter, Rng *rng, Device device);
