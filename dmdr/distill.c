#include "dmdr/distill.h"

#include <math.h>
#include <stdlib.h>

#include "autograd/ops.h"
#include "diffusion/flow.h"
#include "dmdr/dmd_loss.h"
#include "kernels/check.h"
#include "tensor/dist.h"

DistillOptions distill_defaults(int64_t dyn_steps) {
    return (DistillOptions){
        .gen = {.steps = 1, .shift = 1.0f},
        .dmd = true,
        .batch = 32,
        .ratio = 5,
        .backsim = GENERATOR_BACKSIM_PREVIOUS,
        .lora = {.style = LORA_STYLE_PEFT, .rank = 16, .alpha = 16.0f},
        .fake_scale = 2.0f,
        .real_cfg = 1.0f,
        .dyna = dyna_defaults(dyn_steps),
        .gen_lr = 2e-5f,
        .fake_lr = 2e-5f,
        .gen_weight_decay = 0.01f,
        .fake_weight_decay = 0.0f,
        .clip = 1.0f,
    };
}

int distiller_init(Distiller *d, const DistillOptions *opt, Model *teacher, uint64_t seed,
                   Error *err) {
    *d = (Distiller){.opt = *opt, .rng = rng_make(seed)};
    if (opt->batch < 1 || opt->ratio < 1 || opt->gen.steps < 1 || opt->gen.shift < 1.0f)
        return error_set(err, "distill: batch, ratio and generator steps must be at least 1 "
                              "and the shift at least 1");
    if (!(opt->fake_scale > 0.0f)) // at 0 the adapter drops out and the fake score is the teacher
        return error_set(err, "distill: fake_scale must be positive, got %g",
                         (double)opt->fake_scale);
    Rng init = rng_fork(&d->rng, 1); // the adapter's A matrices
    d->scores.fake_scale = opt->fake_scale;
    d->generator = model_clone(teacher, &init, err);
    d->scores.net = d->generator ? model_clone(teacher, &init, err) : NULL;
    int rc = d->scores.net ? 0 : -1;
    if (rc == 0 && opt->fake_net == FAKE_NET_SEPARATE) {
        d->scores.fake = model_clone(teacher, &init, err);
        if (!d->scores.fake) rc = -1;
        // the real score is the frozen teacher: nothing of it trains
        params_set_trainable(model_params(d->scores.net), false);
    } else if (rc == 0) {
        rc = model_add_lora(d->scores.net, &opt->lora, &init, err);
    }
    if (rc != 0) {
        distiller_free(d);
        return -1;
    }
    AdamWConfig gen_cfg = adamw_config_default(), fake_cfg = adamw_config_default();
    gen_cfg.weight_decay = opt->gen_weight_decay;
    fake_cfg.weight_decay = opt->fake_weight_decay;
    adamw_init(&d->gen_opt, model_params(d->generator), gen_cfg);
    Model *fake = d->scores.fake ? d->scores.fake : d->scores.net;
    adamw_init(&d->fake_opt, model_params(fake), fake_cfg);
    return 0;
}

void distiller_free(Distiller *d) {
    if (d->gen_opt.m) adamw_free(&d->gen_opt);
    if (d->fake_opt.m) adamw_free(&d->fake_opt);
    model_free(d->generator);
    model_free(d->scores.net);
    model_free(d->scores.fake);
    *d = (Distiller){0};
}

// The generator's optimiser counts its updates, and checkpoints keep the count
int64_t distiller_generator_steps(const Distiller *d) { return d->gen_opt.step; }

// -> (n) I32 labels drawn uniformly from the classes
static Tensor *random_labels(Distiller *d, int64_t n) {
    int classes = model_config(d->generator)->num_classes;
    int32_t *h = malloc((size_t)n * sizeof *h);
    DMDR_CHECK(h != NULL, "out of host memory");
    for (int64_t i = 0; i < n; i++) h[i] = (int32_t)rng_below(&d->rng, (uint64_t)classes);
    Tensor *y = tensor_from_ints(shape1(n), h, model_device(d->generator));
    free(h);
    return y;
}

// L_DMD of x0 (N, ...) tracked, for labels y (N), at step k -> (1)
static Tensor *dmd_term(Distiller *d, Tensor *x0, Tensor *y, DistillStats *st) {
    const DistillOptions *o = &d->opt;
    int64_t n = x0->shape.dim[0];
    Device device = x0->device;
    // draws for the global batch, this rank's rows kept (tensor/dist.h)
    int64_t global = n * dist_size();
    Tensor *t = op_shard(dynars_sample_times(&o->dyna, distiller_generator_steps(d), global,
                                             &d->rng, device, NULL));
    Tensor *eps = op_shard_normal(x0->shape, &d->rng, device);
    Tensor *cfg = score_cfg_scales(global, o->real_cfg, o->cfg_jitter, &d->rng, device);
    if (cfg) cfg = op_shard(cfg);
    autograd_no_grad_begin();
    Tensor *x_t = flow_interpolate(tensor_detach(x0), eps, t);
    Tensor *x0_real = flow_x0_from_velocity(
        x_t, score_real(&d->scores, x_t, t, y, (float)st->real_scale, cfg), t);
    Tensor *x0_fake = flow_x0_from_velocity(x_t, score_fake(&d->scores, x_t, t, y), t);
    autograd_no_grad_end();
    Tensor *grad = dmd_gradient(x0, x0_real, x0_fake, &st->nonfinite);
    Tensor *loss = dmd_loss(x0, grad);
    st->dmd_loss = optim_average_value(tensor_item(loss));
    return loss;
}

// x0 (N, ...) tracked from input x_in (N, ...) at t_in (N), y (N): the generator's update
static void generator_update(Distiller *d, Tensor *x_in, Tensor *t_in, Tensor *x0, Tensor *y,
                             DistillStats *st) {
    Tensor *loss = d->opt.dmd ? dmd_term(d, x0, y, st) : NULL;
    if (d->extra.loss) {
        Tensor *extra = d->extra.loss(d->extra.ctx, x_in, t_in, x0, y, st);
        st->extra_loss = optim_average_value(tensor_item(extra));
        extra = op_mul_scalar(extra, d->extra.weight);
        loss = loss ? op_add(loss, extra) : extra;
    }
    DMDR_CHECK(loss != NULL, "distill: a generator turn without DMD needs an extra loss");
    adamw_zero_grad(&d->gen_opt);
    autograd_backward(loss, NULL);
    st->allreduce_s += optim_average_gradients(&d->gen_opt.params);
    st->gen_grad_norm = adamw_step(&d->gen_opt, d->opt.gen_lr, d->opt.clip);
    adamw_zero_grad(&d->gen_opt);
    st->generator_updated = true;
}

// x0 (N, ...) untracked, y (N): the fake score's flow loss and update at step k
static void fake_update(Distiller *d, Tensor *x0, Tensor *y, int64_t k, DistillStats *st) {
    const DistillOptions *o = &d->opt;
    int64_t global = x0->shape.dim[0] * dist_size();
    Tensor *t = op_shard(dynars_sample_times(&o->dyna, k, global, &d->rng, x0->device,
                                             &st->renoise_t_mean));
    Tensor *eps = op_shard_normal(x0->shape, &d->rng, x0->device);
    Tensor *v = score_fake(&d->scores, flow_interpolate(x0, eps, t), t, y);
    Tensor *loss = op_mse(v, op_sub(eps, x0));
    st->fake_loss = optim_average_value(tensor_item(loss));
    adamw_zero_grad(&d->fake_opt);
    autograd_backward(loss, NULL);
    st->allreduce_s += optim_average_gradients(&d->fake_opt.params);
    st->fake_grad_norm = adamw_step(&d->fake_opt, o->fake_lr, o->clip);
    adamw_zero_grad(&d->fake_opt);
}

void distiller_step(Distiller *d, DistillStats *st) {
    *st = (DistillStats){.extra_loss = NAN, .dmd_loss = NAN, .gen_grad_norm = NAN,
                         .fake_loss = NAN, .fake_grad_norm = NAN, .renoise_t_mean = NAN,
                         .reward_mean = NAN, .reward_std = NAN, .ratio_std = NAN,
                         .clip_fraction = NAN, .kl = NAN};
    int64_t k = distiller_generator_steps(d);
    // with DMD every ratio-th inner step (the first excluded); without, every one
    bool generator_turn = !d->opt.dmd || (d->inner_steps > 0 && d->inner_steps % d->opt.ratio == 0);
    st->real_scale = dynadg_real_scale(&d->opt.dyna, k);
    tensor_scope_begin();
    // the global batch's labels; this rank works on its rows (tensor/dist.h)
    Tensor *y = op_shard(random_labels(d, d->opt.batch));
    Tensor *x0 = NULL;
    if (generator_turn && !d->opt.dmd && !d->extra.reads_samples) {
        generator_update(d, NULL, NULL, NULL, y, st); // PPO alone makes its own samples
    } else if (generator_turn) {
        Tensor *x_in, *t_in;
        x0 = generator_backward_simulation(d->generator, &d->opt.gen, d->opt.backsim, y, &d->rng,
                                           &x_in, &t_in);
        generator_update(d, x_in, t_in, x0, y, st);
        x0 = tensor_detach(x0);
    }
    if (d->opt.dmd) { // the fake score follows the generator only when DMD reads it
        if (!x0) {
            autograd_no_grad_begin();
            x0 = generator_backward_simulation(d->generator, &d->opt.gen, d->opt.backsim, y,
                                               &d->rng, NULL, NULL);
            autograd_no_grad_end();
        }
        fake_update(d, x0, y, k, st);
    }
    tensor_scope_end();
    d->inner_steps++;
}

void distiller_checkpoint(Distiller *d, Checkpoint *ck) {
    Model *fake = d->scores.fake ? d->scores.fake : d->scores.net;
    *ck = (Checkpoint){
        .part_count = 2,
        .parts = {{"", model_config(d->generator), model_params(d->generator), NULL, &d->gen_opt},
                  {"fake.", model_config(fake), model_params(fake), NULL, &d->fake_opt}},
        .rng_count = 1,
        .rngs = {{"train", &d->rng}},
        .step = &d->inner_steps,
    };
    if (d->scores.fake) // the frozen teacher of the separate setting: stored for self-containment
        checkpoint_add_part(ck, (CheckpointPart){"teacher.", model_config(d->scores.net),
                                                 model_params(d->scores.net), NULL, NULL});
}
