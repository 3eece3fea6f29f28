// DiT with adaLN-Zero, as facebookresearch/DiT models.py (and SiT): patch embedding, fixed
// 2-D sin-cos position embedding, timestep and label embedders, blocks of
// modulate(LayerNorm) -> attention / MLP with a gated residual, a modulated final layer and
// unpatchify. Parameter names and order are the reference state_dict's; initialisation is its
// initialize_weights. learn_sigma is off: the output is a velocity with the input's channels.
//
// Two things are computed differently from the reference, to the same values (up to the
// order of float sums):
// - the PatchEmbed conv (kernel = stride = patch) runs as one linear layer over patches laid
//   out by dit_patchify, with the conv weight viewed (hidden, C*p*p): this skips the im2col
//   copy and the (N, hidden, h, w) -> (N, T, hidden) transpose of the token tensor;
// - SiLU(c), the first layer of every adaLN_modulation, is computed once per forward.
#include "nn/dit.h"

#include <math.h>
#include <stdlib.h>

#include "autograd/autograd.h"
#include "kernels/check.h"
#include "nn/arch.h"
#include "nn/layers.h"

#define FREQUENCY_EMBEDDING 256 // TimestepEmbedder.frequency_embedding_size
#define MAX_PERIOD 10000.0f
#define TIME_SCALE 1000.0f // the network sees 1000 t for flow time t in [0, 1]
#define NORM_EPS 1e-6f
#define INIT_STD 0.02f // label table and timestep MLP weights

typedef struct {
    Attention attn;
    Mlp mlp;
    Linear ada; // adaLN_modulation.1: hidden -> 6 hidden
} DitBlock;

typedef struct {
    int channels, patch, grid, hidden, heads, depth;
    Conv2d x_embedder;   // proj: (hidden, C, p, p), run as a linear over patches
    Tensor *pos_embed;   // (1, T, hidden), fixed sin-cos
    Linear t_mlp[2];     // t_embedder.mlp.0 (256 -> hidden) and .2 (hidden -> hidden)
    Embedding y_table;   // num_classes + 1 rows: the last is the null label
    DitBlock *blocks;    // depth of them
    Linear final_linear; // hidden -> p*p*C
    Linear final_ada;    // final_layer.adaLN_modulation.1: hidden -> 2 hidden
} Dit;

// ---- token layout -------------------------------------------------------------------------

// x viewed (a, b, c, d) -> (a, c, b, d): one copy, or a view when b or c is 1
static Tensor *swap_middle(Tensor *x, int64_t a, int64_t b, int64_t c, int64_t d) {
    if (b == 1 || c == 1) return op_reshape(x, shape4(a, c, b, d));
    static const int perm[4] = {0, 2, 1, 3};
    return op_permute(op_reshape(x, shape4(a, b, c, d)), perm);
}

// x (N, C, H, W) -> (N, T, C*p*p), rows ordered (c, py, px)
Tensor *dit_patchify(Tensor *x, int patch) {
    char s[64];
    DMDR_CHECK(x->shape.ndim == 4 && patch > 0 && x->shape.dim[2] % patch == 0 &&
                   x->shape.dim[3] % patch == 0,
               "dit_patchify: %s into patches of %d", tensor_shape_str(x, s, sizeof s), patch);
    int64_t n = x->shape.dim[0], c = x->shape.dim[1];
    int64_t h = x->shape.dim[2] / patch, w = x->shape.dim[3] / patch, p = patch;
    x = swap_middle(x, n * c * h, p, w, p); // -> (n, c, i, j, py, px)
    x = swap_middle(x, n, c, h * w, p * p); // -> (n, i, j, c, py, px)
    return op_reshape(x, shape3(n, h * w, c * p * p));
}

// x (N, T, p*p*C), rows ordered (py, px, c) -> (N, C, h p, w p), h = w = sqrt(T)
Tensor *dit_unpatchify(Tensor *x, int channels, int patch) {
    char s[64];
    int64_t n = x->shape.dim[0], t = x->shape.dim[1], c = channels, p = patch;
    int64_t h = (int64_t)llround(sqrt((double)t)), w = h;
    DMDR_CHECK(x->shape.ndim == 3 && h * w == t && x->shape.dim[2] == p * p * c,
               "dit_unpatchify: %s is not (N, h*h, %d*%d*%d)", tensor_shape_str(x, s, sizeof s),
               patch, patch, channels);
    x = swap_middle(x, n, t * p * p, c, 1); // -> (n, c, i, j, py, px)
    x = swap_middle(x, n * c * h, w, p, p); // -> (n, c, i, py, j, px)
    return op_reshape(x, shape4(n, c, h * p, w * p));
}

// dst (grid*grid, hidden): token i*grid + j gets [sin(j w_k), cos(j w_k), sin(i w_k),
// cos(i w_k)], w_k = 10000^(-k / (hidden/4)), in double as the reference's NumPy code
void dit_pos_embed(float *dst, int hidden, int grid) {
    DMDR_CHECK(hidden > 0 && hidden % 4 == 0 && grid > 0, "dit_pos_embed: hidden %d, grid %d",
               hidden, grid);
    int quarter = hidden / 4;
    for (int i = 0; i < grid; i++)
        for (int j = 0; j < grid; j++) {
            float *row = dst + ((int64_t)i * grid + j) * hidden;
            // np.meshgrid(grid_w, grid_h): grid[0], encoded first, is the column index
            const double pos[2] = {j, i};
            for (int half = 0; half < 2; half++)
                for (int k = 0; k < quarter; k++) {
                    double omega = 1.0 / pow(10000.0, (double)k / (double)quarter);
                    row[half * 2 * quarter + k] = (float)sin(pos[half] * omega);
                    row[half * 2 * quarter + quarter + k] = (float)cos(pos[half] * omega);
                }
        }
}

// ---- configuration --------------------------------------------------------------------------

int dit_mlp_hidden(const ModelConfig *cfg) {
    return (int)floor((double)cfg->hidden * (double)cfg->mlp_ratio + 1e-4);
}

// Every field is in its range already (model_config_check): what is left are the relations.
static int check_config(const ModelConfig *cfg, Error *err) {
    if (!(cfg->mlp_ratio > 0.0f) || dit_mlp_hidden(cfg) < 1)
        return error_set(err, "dit config: mlp_ratio must give at least one MLP unit, got %g",
                         (double)cfg->mlp_ratio);
    if (cfg->image_size % cfg->patch != 0)
        return error_set(err, "dit config: patch (%d) must divide image_size (%d)", cfg->patch,
                         cfg->image_size);
    if (cfg->hidden % cfg->heads != 0)
        return error_set(err, "dit config: heads (%d) must divide hidden (%d)", cfg->heads,
                         cfg->hidden);
    if (cfg->hidden % 4 != 0)
        return error_set(err,
                         "dit config: hidden (%d) must be a multiple of 4 (the 2-D sin-cos "
                         "position embedding)",
                         cfg->hidden);
    return 0;
}

// Per block: qkv (h, 3h), proj (h, h), fc1 (h, m), fc2 (m, h), adaLN (h, 6h), with biases;
// around them the patch embedding, the position table, the timestep MLP, the label table and
// the final layer.
static double dit_parameter_count(const ModelConfig *cfg) {
    double h = cfg->hidden, m = dit_mlp_hidden(cfg), c = cfg->in_channels, pp = (double)cfg->patch * cfg->patch;
    double tokens = (double)(cfg->image_size / cfg->patch) * (cfg->image_size / cfg->patch);
    double block = 10 * h * h + 2 * h * m + 11 * h + m;
    return tokens * h + (c * pp + 1) * h + (FREQUENCY_EMBEDDING + 1) * h + (h + 1) * h +
           (cfg->num_classes + 1.0) * h + cfg->depth * block + (h + 1) * pp * c + (h + 1) * 2 * h;
}

// What a block saves per token for its backward: about 18 h (the norms, modulations, qkv,
// attention output, projections, residuals) and 2 m (fc1 and its GELU). A no-grad forward
// holds one block's temporaries at a time. (The small DiT's training step measures 461 MiB
// at batch 64, this estimate with the weights and AdamW state 430 MiB.)
static double dit_activation_floats(const ModelConfig *cfg, bool training) {
    double h = cfg->hidden, m = dit_mlp_hidden(cfg);
    double tokens = (double)(cfg->image_size / cfg->patch) * (cfg->image_size / cfg->patch);
    double block = tokens * (18 * h + 2 * m);
    return training ? cfg->depth * block + 4 * tokens * h : block + 2 * tokens * h;
}

// ---- creation -------------------------------------------------------------------------------

// A reference DiT linear: Xavier-uniform weight, zero bias.
static void xavier_linear(Linear *l, int in, int out, Device device, Rng *rng) {
    linear_init(l, in, out, true, device, rng);
    linear_init_xavier(l, rng);
}

// adaLN-Zero: the modulation (and the output layer) start at zero.
static void zero_linear(Linear *l, int in, int out, Device device, Rng *rng) {
    linear_init(l, in, out, true, device, rng);
    tensor_fill(l->weight, 0.0f);
    tensor_fill(l->bias, 0.0f);
}

static void fill_normal(Tensor *t, float std, Rng *rng) {
    tensor_copy_into(t, tensor_normal(t->shape, rng, 0.0f, std, t->device));
}

static void create_modules(Dit *d, const ModelConfig *cfg, Device device, Rng *rng) {
    int hidden = cfg->hidden, c = cfg->in_channels, p = cfg->patch, tokens = d->grid * d->grid;
    conv2d_init(&d->x_embedder, c, hidden, p, p, 0, true, device, rng);
    init_xavier_uniform(d->x_embedder.weight, (int64_t)c * p * p, hidden, rng);
    tensor_fill(d->x_embedder.bias, 0.0f);

    float *table = malloc((size_t)tokens * (size_t)hidden * sizeof *table);
    DMDR_CHECK(table != NULL, "out of host memory");
    dit_pos_embed(table, hidden, d->grid);
    d->pos_embed = tensor_retain(tensor_from_floats(shape3(1, tokens, hidden), table, device));
    free(table);

    xavier_linear(&d->t_mlp[0], FREQUENCY_EMBEDDING, hidden, device, rng);
    xavier_linear(&d->t_mlp[1], hidden, hidden, device, rng);
    for (int i = 0; i < 2; i++) fill_normal(d->t_mlp[i].weight, INIT_STD, rng);
    embedding_init(&d->y_table, cfg->num_classes + 1, hidden, device, rng);
    fill_normal(d->y_table.weight, INIT_STD, rng);

    d->blocks = calloc((size_t)d->depth, sizeof *d->blocks);
    DMDR_CHECK(d->blocks != NULL, "out of host memory");
    for (int i = 0; i < d->depth; i++) {
        DitBlock *b = &d->blocks[i];
        attention_init(&b->attn, hidden, cfg->heads, device, rng);
        mlp_init(&b->mlp, hidden, dit_mlp_hidden(cfg), device, rng);
        Linear *linears[] = {&b->attn.qkv, &b->attn.proj, &b->mlp.fc1, &b->mlp.fc2};
        for (size_t k = 0; k < sizeof linears / sizeof linears[0]; k++)
            linear_init_xavier(linears[k], rng);
        zero_linear(&b->ada, hidden, 6 * hidden, device, rng);
    }
    zero_linear(&d->final_linear, hidden, p * p * c, device, rng);
    zero_linear(&d->final_ada, hidden, 2 * hidden, device, rng);
}

// In the reference state_dict's order: DiT's own pos_embed, then its children in order.
static void register_params(Dit *d, ParamList *out) {
    params_add(out, NULL, "pos_embed", d->pos_embed, false);
    conv2d_params(&d->x_embedder, "x_embedder.proj.", out);
    linear_params(&d->t_mlp[0], "t_embedder.mlp.0.", false, out);
    linear_params(&d->t_mlp[1], "t_embedder.mlp.2.", false, out);
    embedding_params(&d->y_table, "y_embedder.embedding_table.", out);
    for (int i = 0; i < d->depth; i++) {
        DitBlock *b = &d->blocks[i];
        char block[PARAM_NAME_MAX], name[PARAM_NAME_MAX];
        params_prefix_index(block, "", "blocks", i);
        attention_params(&b->attn, params_prefix(name, block, "attn"), out);
        mlp_params(&b->mlp, params_prefix(name, block, "mlp"), out);
        linear_params(&b->ada, params_prefix(name, block, "adaLN_modulation.1"), false, out);
    }
    linear_params(&d->final_linear, "final_layer.linear.", false, out);
    linear_params(&d->final_ada, "final_layer.adaLN_modulation.1.", false, out);
}

static void *dit_create(const ModelConfig *cfg, Device device, Rng *rng, ParamList *params,
                        Error *err) {
    (void)err;
    Dit *d = calloc(1, sizeof *d);
    DMDR_CHECK(d != NULL, "out of host memory");
    *d = (Dit){.channels = cfg->in_channels, .patch = cfg->patch,
               .grid = cfg->image_size / cfg->patch, .hidden = cfg->hidden,
               .heads = cfg->heads, .depth = cfg->depth};
    tensor_scope_begin(); // initialisation temporaries; the modules retain their parameters
    create_modules(d, cfg, device, rng);
    register_params(d, params);
    tensor_scope_end();
    return d;
}

static void dit_free(void *self) {
    Dit *d = self;
    if (!d) return;
    conv2d_free(&d->x_embedder);
    tensor_release(d->pos_embed);
    linear_free(&d->t_mlp[0]);
    linear_free(&d->t_mlp[1]);
    embedding_free(&d->y_table);
    for (int i = 0; i < d->depth; i++) {
        DitBlock *b = &d->blocks[i];
        attention_free(&b->attn);
        mlp_free(&b->mlp);
        linear_free(&b->ada);
    }
    free(d->blocks);
    linear_free(&d->final_linear);
    linear_free(&d->final_ada);
    free(d);
}

// ---- forward --------------------------------------------------------------------------------

// v (N, D) -> (N, 1, D), to broadcast over the tokens of (N, T, D)
static Tensor *per_sample(Tensor *v) {
    return op_reshape(v, shape3(v->shape.dim[0], 1, v->shape.dim[1]));
}

// x (N, T, D), shift, scale (N, D) -> x (1 + scale) + shift
static Tensor *modulate(Tensor *x, Tensor *shift, Tensor *scale) {
    return op_add(op_mul(x, per_sample(op_add_scalar(scale, 1.0f))), per_sample(shift));
}

// x (N, T, D) -> LayerNorm without affine, eps 1e-6 (norm1, norm2, norm_final)
static Tensor *norm(Tensor *x) { return op_layernorm(x, NULL, NULL, NORM_EPS); }

// x (N, T, D), c_act = SiLU(c) (N, D) -> (N, T, D)
static Tensor *block_forward(const DitBlock *b, Tensor *x, Tensor *c_act) {
    // shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp
    Tensor *m[6];
    op_chunk(linear_forward(&b->ada, c_act), 6, 1, m);
    Tensor *h = modulate(norm(x), m[0], m[1]);
    h = attention_forward(&b->attn, h);
    x = op_add(x, op_mul(h, per_sample(m[2])));
    h = modulate(norm(x), m[3], m[4]);
    h = mlp_forward(&b->mlp, h);
    return op_add(x, op_mul(h, per_sample(m[5])));
}

// block_forward, x (N, T, D) -> (N, T, D). Without a graph to keep them (sampling), a block's
// temporaries are freed as soon as it returns, so a forward holds one block's activations at
// a time: the small DiT's 1-step sampling of 64 images peaks at 126 MiB instead of 424 MiB.
static Tensor *block_step(const DitBlock *b, Tensor *x, Tensor *c_act) {
    if (autograd_enabled()) return block_forward(b, x, c_act);
    tensor_scope_begin();
    Tensor *y = tensor_retain(block_forward(b, x, c_act));
    tensor_scope_end();
    Tensor *out = tensor_view(y, y->shape); // the same storage, in the caller's scope
    tensor_release(y);
    return out;
}

// t (N) in [0, 1] -> (N, hidden); the embedding table is untracked (t needs no gradient)
static Tensor *time_embed(const Dit *d, Tensor *t) {
    Tensor *freq = timestep_embedding(op_mul_scalar(t, TIME_SCALE), FREQUENCY_EMBEDDING,
                                      MAX_PERIOD);
    return linear_forward(&d->t_mlp[1], op_silu(linear_forward(&d->t_mlp[0], freq)));
}

// x (N, C, H, W), t (N) F32, y (N) I32 in [0, num_classes] -> v (N, C, H, W)
static Tensor *dit_forward(void *self, Tensor *x, Tensor *t, Tensor *y) {
    const Dit *d = self;
    char s[64];
    int64_t image = (int64_t)d->grid * d->patch, n = x->shape.dim[0];
    DMDR_CHECK(x->shape.ndim == 4 && x->shape.dim[1] == d->channels &&
                   x->shape.dim[2] == image && x->shape.dim[3] == image,
               "dit: x must be (N, %d, %lld, %lld), got %s", d->channels, (long long)image,
               (long long)image, tensor_shape_str(x, s, sizeof s));
    DMDR_CHECK(t->shape.ndim == 1 && t->shape.dim[0] == n && y->shape.ndim == 1 &&
                   y->shape.dim[0] == n && y->dtype == DTYPE_I32,
               "dit: t (N) and y (N) I32 must match the batch of %lld", (long long)n);

    int64_t patch_dim = (int64_t)d->channels * d->patch * d->patch;
    Tensor *proj = op_reshape(d->x_embedder.weight, shape2(d->hidden, patch_dim));
    Tensor *h = op_linear(dit_patchify(x, d->patch), proj, d->x_embedder.bias);
    h = op_add(h, d->pos_embed);
    Tensor *c = op_add(time_embed(d, t), embedding_forward(&d->y_table, y));
    Tensor *c_act = op_silu(c);
    for (int i = 0; i < d->depth; i++) h = block_step(&d->blocks[i], h, c_act);

    Tensor *m[2]; // shift, scale
    op_chunk(linear_forward(&d->final_ada, c_act), 2, 1, m);
    h = linear_forward(&d->final_linear, modulate(norm(h), m[0], m[1]));
    return dit_unpatchify(h, d->channels, d->patch);
}

// Per block: attn.qkv, attn.proj, attn.q_lora, attn.v_lora (attention), mlp.fc1, mlp.fc2 (MLP).
static int dit_lora_sites(void *self, LoraSite *out, int max) {
    Dit *d = self;
    int n = 0;
    for (int i = 0; i < d->depth; i++) {
        DitBlock *b = &d->blocks[i];
        char block[PARAM_NAME_MAX];
        params_prefix_index(block, "", "blocks", i);
        char attn[PARAM_NAME_MAX];
        attention_lora_sites(out, max, &n, &b->attn, params_prefix(attn, block, "attn"));
        lora_site_add_linear(out, max, &n, &b->mlp.fc1, block, "mlp.fc1", LORA_AT_MLP);
        lora_site_add_linear(out, max, &n, &b->mlp.fc2, block, "mlp.fc2", LORA_AT_MLP);
    }
    return n;
}

const Architecture dit_architecture = {"dit",       check_config,        dit_parameter_count,
                                       dit_activation_floats, dit_create, dit_forward,
                                       dit_free,    dit_lora_sites};
