#include "diffusion/flow_trainer.h"

void flow_trainer_init(FlowTrainer *t, Model *model, const FlowTrainOptions *opt) {
    *t = (FlowTrainer){.opt = *opt, .model = model};
    adamw_init(&t->adamw, model_params(model), opt->adamw);
    ema_init(&t->ema, model_params(model));
}

void flow_trainer_free(FlowTrainer *t) {
    adamw_free(&t->adamw);
    ema_free(&t->ema);
}

TrainStepStats flow_train_step(FlowTrainer *t, Tensor *x, Tensor *y, Rng *rng) {
    Tensor *loss = flow_matching_loss(t->model, x, y, rng, &t->opt.loss, NULL);
    return optim_train_step(&t->adamw, &t->opt.schedule, t->opt.clip, &t->ema, t->opt.ema_decay,
                            loss);
}
