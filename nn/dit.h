// The DiT's token layout helpers (internal; not installed), exposed for the tests. The model
// itself is reached through nn/model.h (ModelKind MODEL_DIT).
#pragma once

#include "nn/model.h"
#include "tensor/tensor.h"

// x (N, C, H, W) -> (N, T, C*p*p), T = (H/p) (W/p) patches in row-major order, each patch a
// row ordered (c, py, px): the flattening of the PatchEmbed conv weight (hidden, C, p, p), so
// patch embedding is one linear layer.
Tensor *dit_patchify(Tensor *x, int patch);
// x (N, T, p*p*C), rows ordered (py, px, c) -> (N, C, H, W): the reference unpatchify
// (reshape (N, h, w, p, p, C), einsum nhwpqc->nchpwq), square images.
Tensor *dit_unpatchify(Tensor *x, int channels, int patch);
// The reference get_2d_sincos_pos_embed(hidden, grid) as (grid*grid, hidden) host floats:
// half the dims encode the column index, half the row index (its meshgrid puts w first).
void dit_pos_embed(float *dst, int hidden, int grid);
// The MLP width of a DiT config: int(hidden * mlp_ratio) as Python computes it from the
// decimal ratio (the float32 ratio can sit a hair below it: 2.6f * 10 = 25.9999990).
int dit_mlp_hidden(const ModelConfig *cfg);
