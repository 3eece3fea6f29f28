// The score (velocity) network for low-dimensional toy data: a residual MLP conditioned on the
// flow time and the class label.
//
//   cond = time_embed(1000 t) + label_embed(y)                      (N, width)
//   h    = input(x) + cond                                          (N, width)
//   per block: h += fc2(SiLU(fc1(norm(h)) + emb(SiLU(cond))))       (N, width)
//   v    = out(out_norm(h))                                         (N, data_dim)
//
// Parameter names (a PyTorch module with these attribute names loads the state_dict as is):
//   time_embed.0.{weight,bias}  Linear(128, width)
//   time_embed.2.{weight,bias}  Linear(width, width)
//   label_embed.weight          (num_classes + 1, width), the last row the null label
//   input.{weight,bias}         Linear(data_dim, width)
//   blocks.{i}.norm.{weight,bias}  LayerNorm(width)
//   blocks.{i}.fc1, blocks.{i}.fc2, blocks.{i}.emb .{weight,bias}  Linear(width, width)
//   out_norm.{weight,bias}      LayerNorm(width)
//   out.{weight,bias}           Linear(width, data_dim), zero at init so v starts at 0
#include <stdlib.h>

#include "kernels/check.h"
#include "nn/arch.h"
#include "nn/cond_embed.h"

// Width of the sinusoidal time features, independent of the hidden width.
#define MLP_FREQ_DIM 128
#define MLP_NORM_EPS 1e-5f

typedef struct {
    LayerNorm norm;
    Linear fc1, fc2, emb;
} MlpBlock;

typedef struct {
    CondEmbed cond;
    Linear input;
    MlpBlock *blocks;
    int block_count;
    LayerNorm out_norm;
    Linear out;
} MlpScore;

// The conditioning MLP and label table, the input layer, per block a LayerNorm and three
// width x width linears, the output norm and layer.
static double mlp_parameter_count(const ModelConfig *cfg) {
    double w = cfg->mlp_width, d = cfg->data_dim;
    double cond = (MLP_FREQ_DIM + 1) * w + (w + 1) * w + (cfg->num_classes + 1.0) * w;
    return cond + (d + 1) * w + cfg->mlp_layers * (2 * w + 3 * (w + 1) * w) + 2 * w + (w + 1) * d;
}

// A block saves about 8 vectors of the width (norm, fc1, emb, sum, SiLU, fc2, residual).
static double mlp_activation_floats(const ModelConfig *cfg, bool training) {
    double w = cfg->mlp_width;
    return training ? cfg->mlp_layers * 8 * w + 4 * w + 2.0 * cfg->data_dim : 10 * w;
}

static void *mlp_score_create(const ModelConfig *cfg, Device device, Rng *rng, ParamList *params,
                        Error *err) {
    (void)err;
    int width = cfg->mlp_width;
    MlpScore *m = calloc(1, sizeof *m);
    DMDR_CHECK(m != NULL, "out of host memory");
    m->blocks = calloc((size_t)cfg->mlp_layers, sizeof *m->blocks);
    DMDR_CHECK(m->blocks != NULL, "out of host memory");
    m->block_count = cfg->mlp_layers;

    cond_embed_init(&m->cond, MLP_FREQ_DIM, width, cfg->num_classes, device, rng);
    cond_embed_params(&m->cond, params);
    linear_init(&m->input, cfg->data_dim, width, true, device, rng);
    linear_params(&m->input, "input.", false, params);
    for (int i = 0; i < m->block_count; i++) {
        MlpBlock *b = &m->blocks[i];
        char prefix[PARAM_NAME_MAX], name[PARAM_NAME_MAX];
        params_prefix_index(prefix, "", "blocks", i);
        layernorm_init(&b->norm, width, true, MLP_NORM_EPS, device);
        linear_init(&b->fc1, width, width, true, device, rng);
        linear_init(&b->fc2, width, width, true, device, rng);
        linear_init(&b->emb, width, width, true, device, rng);
        layernorm_params(&b->norm, params_prefix(name, prefix, "norm"), params);
        linear_params(&b->fc1, params_prefix(name, prefix, "fc1"), false, params);
        linear_params(&b->fc2, params_prefix(name, prefix, "fc2"), false, params);
        linear_params(&b->emb, params_prefix(name, prefix, "emb"), false, params);
    }
    layernorm_init(&m->out_norm, width, true, MLP_NORM_EPS, device);
    layernorm_params(&m->out_norm, "out_norm.", params);
    linear_init(&m->out, width, cfg->data_dim, true, device, rng);
    tensor_fill(m->out.weight, 0.0f);
    tensor_fill(m->out.bias, 0.0f);
    linear_params(&m->out, "out.", false, params);
    return m;
}

// x (N, data_dim), t (N), y (N) I32 -> (N, data_dim)
static Tensor *mlp_score_forward(void *self, Tensor *x, Tensor *t, Tensor *y) {
    const MlpScore *m = self;
    DMDR_CHECK(x->shape.ndim == 2 && x->shape.dim[1] == m->input.in_features,
               "mlp: x must be (N, %d)", m->input.in_features);
    Tensor *cond = cond_embed_forward(&m->cond, t, y);
    Tensor *act = op_silu(cond);
    Tensor *h = op_add(linear_forward(&m->input, x), cond);
    for (int i = 0; i < m->block_count; i++) {
        const MlpBlock *b = &m->blocks[i];
        Tensor *a = op_add(linear_forward(&b->fc1, layernorm_forward(&b->norm, h)),
                           linear_forward(&b->emb, act));
        h = op_add(h, linear_forward(&b->fc2, op_silu(a)));
    }
    return linear_forward(&m->out, layernorm_forward(&m->out_norm, h));
}

static void mlp_score_free(void *self) {
    MlpScore *m = self;
    if (!m) return;
    cond_embed_free(&m->cond);
    linear_free(&m->input);
    for (int i = 0; i < m->block_count; i++) {
        layernorm_free(&m->blocks[i].norm);
        linear_free(&m->blocks[i].fc1);
        linear_free(&m->blocks[i].fc2);
        linear_free(&m->blocks[i].emb);
    }
    free(m->blocks);
    layernorm_free(&m->out_norm);
    linear_free(&m->out);
    free(m);
}

// The blocks' fc1 and fc2 (MLP layers; there is no attention).
static int mlp_score_lora_sites(void *self, LoraSite *out, int max) {
    MlpScore *m = self;
    int n = 0;
    for (int i = 0; i < m->block_count; i++) {
        char block[PARAM_NAME_MAX];
        params_prefix_index(block, "", "blocks", i);
        lora_site_add_linear(out, max, &n, &m->blocks[i].fc1, block, "fc1", LORA_AT_MLP);
        lora_site_add_linear(out, max, &n, &m->blocks[i].fc2, block, "fc2", LORA_AT_MLP);
    }
    return n;
}

const Architecture mlp_architecture = {"mlp",          NULL,        mlp_parameter_count,
                                       mlp_activation_floats, mlp_score_create, mlp_score_forward,
                                       mlp_score_free, mlp_score_lora_sites};
