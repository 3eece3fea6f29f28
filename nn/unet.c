// A small DDPM/ADM-style UNet velocity network on (N, in_channels, S, S) images.
//
// With C = channels and C_l = channels * channel_mult[l] for levels l = 0..levels-1:
//   emb  = time_embed(1000 t) + label_embed(y)                        (N, 4C)
//   conv_in 3x3 -> C_0; the encoder runs res_blocks ResBlocks per level and a stride-2 3x3 conv
//   between levels, remembering every output (conv_in's too) as a skip; the middle is
//   ResBlock, self-attention, ResBlock at the lowest resolution; the decoder runs
//   res_blocks + 1 ResBlocks per level, each on its input concatenated (channels) with the
//   latest unused skip, then nearest x2 upsampling + 3x3 conv between levels; the output is
//   GroupNorm -> SiLU -> conv 3x3 back to in_channels.
// ResBlock(in, out): h = conv1(SiLU(norm1(x))) + emb(SiLU(emb))[:, :, None, None];
//   h = conv2(SiLU(norm2(h))); return skip(x) + h, skip a 1x1 conv when in != out.
// Attention: GroupNorm, a packed qkv Linear over the (N, HW, C) token view, gcd(4, C) heads,
//   an output Linear, residual.
// conv2 of every ResBlock, the attention's proj and out.conv start at zero, so every block
// starts as the identity and the network's output as 0 (ADM's zero_module).
//
// Parameter names ({l} the resolution level, 0 the finest, in both halves):
//   time_embed.0.*, time_embed.2.*    Linear(C, 4C), Linear(4C, 4C)
//   label_embed.weight                (num_classes + 1, 4C), the last row the null label
//   conv_in.*                         Conv2d(in_channels, C_0, 3)
//   down.{l}.res.{j}.{norm1,conv1,emb,norm2,conv2[,skip]}.*      j < res_blocks
//   down.{l}.downsample.*             Conv2d(C_l, C_l, 3, stride 2), l < levels - 1
//   mid.res.0.*, mid.attn.{norm,qkv,proj}.*, mid.res.1.*
//   up.{l}.res.{j}.*                  j <= res_blocks
//   up.{l}.upsample.*                 Conv2d(C_l, C_l, 3) after nearest x2, l > 0
//   out.norm.*, out.conv.*            GroupNorm(C_0), Conv2d(C_0, in_channels, 3)
// Every .* is {weight, bias}.
#include <stdlib.h>

#include "kernels/check.h"
#include "nn/arch.h"
#include "nn/cond_embed.h"

#define UNET_MAX_LEVELS MODEL_MAX_LEVELS
#define UNET_NORM_EPS 1e-5f
#define UNET_MAX_HEADS 4

typedef struct {
    GroupNorm norm1, norm2;
    Conv2d conv1, conv2, skip; // skip.weight NULL when in == out
    Linear emb;
} ResBlock;

typedef struct {
    GroupNorm norm;
    Attention attn; // its qkv and proj register directly under mid.attn.
} AttnBlock;

typedef struct {
    ResBlock *res;
    int res_count;
    Conv2d resample; // downsample or upsample conv; weight NULL at the level without one
} Level;

typedef struct {
    int levels, image_size, skip_count;
    CondEmbed cond;
    Conv2d conv_in;
    Level down[UNET_MAX_LEVELS], up[UNET_MAX_LEVELS];
    ResBlock mid_res[2];
    AttnBlock mid_attn;
    GroupNorm out_norm;
    Conv2d out_conv;
} UNet;

// Every field is in its range already (model_config_check): what is left are the relations.
static int check_config(const ModelConfig *cfg, Error *err) {
    int scale = 1 << (cfg->levels - 1);
    if (cfg->image_size % scale != 0)
        return error_set(err,
                         "unet config: image_size must be a positive multiple of 2^(levels-1) = "
                         "%d, got %d",
                         scale, cfg->image_size);
    for (int l = 0; l < cfg->levels; l++) {
        int c = cfg->channels * cfg->channel_mult[l];
        if (c % cfg->groups != 0)
            return error_set(err,
                             "unet config: channels * channel_mult[%d] = %d is not divisible by "
                             "groups = %d",
                             l, c, cfg->groups);
    }
    return 0;
}

// ---- size ---------------------------------------------------------------------------------------

// A ResBlock from in to out channels: two GroupNorms, two 3x3 convs, the embedding projection,
// and a 1x1 skip when the widths differ.
static double res_parameters(double in, double out, double emb_dim) {
    return 2 * in + (9 * in + 1) * out + (emb_dim + 1) * out + 2 * out + (9 * out + 1) * out +
           (in != out ? (in + 1) * out : 0);
}

// The down path mirrors unet_create; each up-path block takes the concatenation of the width
// coming up with a skip: the level's own width, except the last block's, which is the level
// above's (conv_in's for level 0).
static double unet_parameter_count(const ModelConfig *cfg) {
    double emb = 4.0 * cfg->channels, in = cfg->in_channels;
    double n = cfg->channels * emb + emb + emb * emb + emb + (cfg->num_classes + 1.0) * emb;
    double width[MODEL_MAX_LEVELS] = {0};
    for (int l = 0; l < cfg->levels; l++) width[l] = (double)cfg->channels * cfg->channel_mult[l];
    double ch = width[0];
    n += (9 * in + 1) * ch;
    for (int l = 0; l < cfg->levels; l++) {
        for (int j = 0; j < cfg->res_blocks; j++, ch = width[l])
            n += res_parameters(ch, width[l], emb);
        if (l < cfg->levels - 1) n += (9 * ch + 1) * ch;
    }
    n += 2 * res_parameters(ch, ch, emb) + 2 * ch + (ch + 1) * 3 * ch + (ch + 1) * ch;
    for (int l = cfg->levels - 1; l >= 0; l--) {
        for (int j = 0; j <= cfg->res_blocks; j++, ch = width[l]) {
            double skip = j < cfg->res_blocks ? width[l] : width[l > 0 ? l - 1 : 0];
            n += res_parameters(ch + skip, width[l], emb);
        }
        if (l > 0) n += (9 * ch + 1) * ch;
    }
    return n + 2 * ch + (9 * ch + 1) * in;
}

// A ResBlock saves about 12 maps of its width (norms, activations, conv outputs, sums); the
// skips of every level stay alive until the up path takes them.
static double unet_activation_floats(const ModelConfig *cfg, bool training) {
    double blocks = 0, skips = 0, widest = 0;
    for (int l = 0; l < cfg->levels; l++) {
        double side = (double)(cfg->image_size >> l);
        double map = (double)cfg->channels * cfg->channel_mult[l] * side * side;
        blocks += (2.0 * cfg->res_blocks + 1) * 2 * map;
        skips += (cfg->res_blocks + 1.0) * map;
        if (map > widest) widest = map;
    }
    return training ? 12 * blocks + skips : skips + 12 * widest;
}

// ---- modules ---------------------------------------------------------------------------------

// ADM's zero_module: the layer starts as the constant 0
static void zero_conv(Conv2d *c) {
    tensor_fill(c->weight, 0.0f);
    tensor_fill(c->bias, 0.0f);
}

// a ResBlock from `in` to `out` channels, conditioned on an emb_dim vector
static void res_init(ResBlock *b, int in, int out, int emb_dim, int groups, Device device,
                     Rng *rng) {
    groupnorm_init(&b->norm1, groups, in, UNET_NORM_EPS, device);
    conv2d_init(&b->conv1, in, out, 3, 1, 1, true, device, rng);
    linear_init(&b->emb, emb_dim, out, true, device, rng);
    groupnorm_init(&b->norm2, groups, out, UNET_NORM_EPS, device);
    conv2d_init(&b->conv2, out, out, 3, 1, 1, true, device, rng);
    zero_conv(&b->conv2);
    if (in != out) conv2d_init(&b->skip, in, out, 1, 1, 0, true, device, rng);
}

static void res_params(ResBlock *b, const char *prefix, ParamList *out) {
    char name[PARAM_NAME_MAX];
    groupnorm_params(&b->norm1, params_prefix(name, prefix, "norm1"), out);
    conv2d_params(&b->conv1, params_prefix(name, prefix, "conv1"), out);
    linear_params(&b->emb, params_prefix(name, prefix, "emb"), false, out);
    groupnorm_params(&b->norm2, params_prefix(name, prefix, "norm2"), out);
    conv2d_params(&b->conv2, params_prefix(name, prefix, "conv2"), out);
    if (b->skip.weight) conv2d_params(&b->skip, params_prefix(name, prefix, "skip"), out);
}

// x (N, in, H, W), act = SiLU(emb) (N, emb_dim) -> (N, out, H, W)
static Tensor *res_forward(const ResBlock *b, Tensor *x, Tensor *act) {
    Tensor *h = conv2d_forward(&b->conv1, op_silu(groupnorm_forward(&b->norm1, x)));
    Tensor *e = linear_forward(&b->emb, act);
    h = op_add(h, op_reshape(e, shape4(e->shape.dim[0], e->shape.dim[1], 1, 1)));
    h = conv2d_forward(&b->conv2, op_silu(groupnorm_forward(&b->norm2, h)));
    return op_add(b->skip.weight ? conv2d_forward(&b->skip, x) : x, h);
}

static void res_free(ResBlock *b) {
    groupnorm_free(&b->norm1);
    conv2d_free(&b->conv1);
    linear_free(&b->emb);
    groupnorm_free(&b->norm2);
    conv2d_free(&b->conv2);
    if (b->skip.weight) conv2d_free(&b->skip);
}

static int gcd(int a, int b) { return b == 0 ? a : gcd(b, a % b); }

static void attn_init(AttnBlock *a, int channels, int groups, Device device, Rng *rng) {
    groupnorm_init(&a->norm, groups, channels, UNET_NORM_EPS, device);
    // the largest of 4, 2, 1 heads dividing channels
    attention_init(&a->attn, channels, gcd(UNET_MAX_HEADS, channels), device, rng);
    tensor_fill(a->attn.proj.weight, 0.0f);
    tensor_fill(a->attn.proj.bias, 0.0f);
}

static void attn_params(AttnBlock *a, ParamList *out) {
    groupnorm_params(&a->norm, "mid.attn.norm.", out);
    attention_params(&a->attn, "mid.attn.", out);
}

// x (N, C, H, W) -> (N, C, H, W)
static Tensor *attn_forward(const AttnBlock *a, Tensor *x) {
    int64_t n = x->shape.dim[0], c = x->shape.dim[1], hh = x->shape.dim[2], ww = x->shape.dim[3];
    Tensor *h = op_reshape(groupnorm_forward(&a->norm, x), shape3(n, c, hh * ww));
    Tensor *tokens = op_transpose(h, 1, 2); // (N, HW, C)
    Tensor *o = attention_forward(&a->attn, tokens);
    o = op_reshape(op_transpose(o, 1, 2), x->shape);
    return op_add(x, o);
}

static void attn_free(AttnBlock *a) {
    groupnorm_free(&a->norm);
    attention_free(&a->attn);
}

// ---- the network -------------------------------------------------------------------------------

static void *unet_create(const ModelConfig *cfg, Device device, Rng *rng, ParamList *params,
                         Error *err) {
    (void)err;
    UNet *u = calloc(1, sizeof *u);
    DMDR_CHECK(u != NULL, "out of host memory");
    int levels = cfg->levels, groups = cfg->groups, emb_dim = 4 * cfg->channels;
    u->levels = levels;
    u->image_size = cfg->image_size;
    u->skip_count = 1 + levels * cfg->res_blocks + (levels - 1);
    int *skip_channels = malloc((size_t)u->skip_count * sizeof *skip_channels);
    DMDR_CHECK(skip_channels != NULL, "out of host memory");
    char prefix[PARAM_NAME_MAX], level_prefix[PARAM_NAME_MAX], name[PARAM_NAME_MAX];

    cond_embed_init(&u->cond, cfg->channels, emb_dim, cfg->num_classes, device, rng);
    cond_embed_params(&u->cond, params);
    int ch = cfg->channels * cfg->channel_mult[0], skips = 0;
    conv2d_init(&u->conv_in, cfg->in_channels, ch, 3, 1, 1, true, device, rng);
    conv2d_params(&u->conv_in, "conv_in.", params);
    skip_channels[skips++] = ch;

    for (int l = 0; l < levels; l++) {
        Level *lv = &u->down[l];
        int out = cfg->channels * cfg->channel_mult[l];
        params_prefix_index(level_prefix, "", "down", l);
        lv->res_count = cfg->res_blocks;
        lv->res = calloc((size_t)lv->res_count, sizeof *lv->res);
        DMDR_CHECK(lv->res != NULL, "out of host memory");
        for (int j = 0; j < lv->res_count; j++) {
            res_init(&lv->res[j], ch, out, emb_dim, groups, device, rng);
            res_params(&lv->res[j], params_prefix_index(prefix, level_prefix, "res", j), params);
            ch = out;
            skip_channels[skips++] = ch;
        }
        if (l < levels - 1) {
            conv2d_init(&lv->resample, ch, ch, 3, 2, 1, true, device, rng);
            conv2d_params(&lv->resample, params_prefix(name, level_prefix, "downsample"), params);
            skip_channels[skips++] = ch;
        }
    }

    for (int i = 0; i < 2; i++)
        res_init(&u->mid_res[i], ch, ch, emb_dim, groups, device, rng);
    attn_init(&u->mid_attn, ch, groups, device, rng);
    res_params(&u->mid_res[0], "mid.res.0.", params);
    attn_params(&u->mid_attn, params);
    res_params(&u->mid_res[1], "mid.res.1.", params);

    for (int l = levels - 1; l >= 0; l--) {
        Level *lv = &u->up[l];
        int out = cfg->channels * cfg->channel_mult[l];
        params_prefix_index(level_prefix, "", "up", l);
        lv->res_count = cfg->res_blocks + 1;
        lv->res = calloc((size_t)lv->res_count, sizeof *lv->res);
        DMDR_CHECK(lv->res != NULL, "out of host memory");
        for (int j = 0; j < lv->res_count; j++) {
            res_init(&lv->res[j], ch + skip_channels[--skips], out, emb_dim, groups, device, rng);
            res_params(&lv->res[j], params_prefix_index(prefix, level_prefix, "res", j), params);
            ch = out;
        }
        if (l > 0) {
            conv2d_init(&lv->resample, ch, ch, 3, 1, 1, true, device, rng);
            conv2d_params(&lv->resample, params_prefix(name, level_prefix, "upsample"), params);
        }
    }
    DMDR_CHECK(skips == 0, "unet: %d skips left unused", skips);
    free(skip_channels);

    groupnorm_init(&u->out_norm, groups, ch, UNET_NORM_EPS, device);
    groupnorm_params(&u->out_norm, "out.norm.", params);
    conv2d_init(&u->out_conv, ch, cfg->in_channels, 3, 1, 1, true, device, rng);
    zero_conv(&u->out_conv);
    conv2d_params(&u->out_conv, "out.conv.", params);
    return u;
}

// x (N, in_channels, S, S), t (N), y (N) I32 -> (N, in_channels, S, S)
static Tensor *unet_forward(void *self, Tensor *x, Tensor *t, Tensor *y) {
    const UNet *u = self;
    DMDR_CHECK(x->shape.ndim == 4 && x->shape.dim[1] == u->conv_in.in_channels &&
                   x->shape.dim[2] == u->image_size && x->shape.dim[3] == u->image_size,
               "unet: x must be (N, %d, %d, %d)", u->conv_in.in_channels, u->image_size,
               u->image_size);
    Tensor *act = op_silu(cond_embed_forward(&u->cond, t, y));
    Tensor **skip = malloc((size_t)u->skip_count * sizeof *skip);
    DMDR_CHECK(skip != NULL, "out of host memory");
    int skips = 0;

    Tensor *h = conv2d_forward(&u->conv_in, x);
    skip[skips++] = h;
    for (int l = 0; l < u->levels; l++) {
        const Level *lv = &u->down[l];
        for (int j = 0; j < lv->res_count; j++)
            skip[skips++] = h = res_forward(&lv->res[j], h, act);
        if (lv->resample.weight) skip[skips++] = h = conv2d_forward(&lv->resample, h);
    }

    h = res_forward(&u->mid_res[0], h, act);
    h = attn_forward(&u->mid_attn, h);
    h = res_forward(&u->mid_res[1], h, act);

    for (int l = u->levels - 1; l >= 0; l--) {
        const Level *lv = &u->up[l];
        for (int j = 0; j < lv->res_count; j++) {
            Tensor *pair[2] = {h, skip[--skips]};
            h = res_forward(&lv->res[j], op_concat(pair, 2, 1), act);
        }
        if (lv->resample.weight) h = conv2d_forward(&lv->resample, op_upsample_nearest(h, 2));
    }
    free(skip);
    return conv2d_forward(&u->out_conv, op_silu(groupnorm_forward(&u->out_norm, h)));
}

static void level_free(Level *lv) {
    for (int j = 0; j < lv->res_count; j++) res_free(&lv->res[j]);
    free(lv->res);
    if (lv->resample.weight) conv2d_free(&lv->resample);
}

static void unet_free(void *self) {
    UNet *u = self;
    if (!u) return;
    cond_embed_free(&u->cond);
    conv2d_free(&u->conv_in);
    for (int l = 0; l < u->levels; l++) {
        level_free(&u->down[l]);
        level_free(&u->up[l]);
    }
    for (int i = 0; i < 2; i++) res_free(&u->mid_res[i]);
    attn_free(&u->mid_attn);
    groupnorm_free(&u->out_norm);
    conv2d_free(&u->out_conv);
    free(u);
}

// The middle attention's (qkv, proj, q and v); the UNet has no MLP layers.
static int unet_lora_sites(void *self, LoraSite *out, int max) {
    UNet *u = self;
    int n = 0;
    attention_lora_sites(out, max, &n, &u->mid_attn.attn, "mid.attn.");
    return n;
}

const Architecture unet_architecture = {"unet",          check_config,        unet_parameter_count,
                                        unet_activation_floats, unet_create, unet_forward,
                                        unet_free,       unet_lora_sites};
