// The optimiser: AdamW steps in place on float state.
#include <math.h>
#include <stdio.h>

#include "kernels/cases/ops.h"
#include "kernels/check.h"

enum { ADAM_P, ADAM_M, ADAM_V, ADAM_G }; // then the gradients of the following steps

// The scalars of step `step` (1-based) of a case.
static AdamWStep adamw_step(const AdamWParams *p, int step) {
    AdamWStep s = {.lr = p->lr, .beta1 = p->beta1, .beta2 = p->beta2, .eps = p->eps,
                   .weight_decay = p->weight_decay,
                   .bias_correction1 = 1 - powf(p->beta1, (float)step),
                   .bias_correction2 = 1 - powf(p->beta2, (float)step),
                   .grad_scale = step == p->half_scale_step ? 0.5f : 1.0f};
    return s;
}

static void call_adamw(const Backend *be, void *const *buf, const KernelCase *c) {
    const AdamWParams *p = &c->p.adamw;
    for (int i = 0; i < p->steps; i++) {
        AdamWStep s = adamw_step(p, p->first_step + i);
        be->adamw(be, buf[ADAM_P], buf[ADAM_G + i], buf[ADAM_M], buf[ADAM_V], p->n, &s);
    }
}

// p, g, m, v (n): the steps on float state, each element computed in double
static void ref_adamw(void *const *host, const KernelCase *c) {
    const AdamWParams *p = &c->p.adamw;
    float *param = host[ADAM_P], *m = host[ADAM_M], *v = host[ADAM_V];
    for (int k = 0; k < p->steps; k++) {
        AdamWStep s = adamw_step(p, p->first_step + k);
        const float *g = host[ADAM_G + k];
        for (int64_t i = 0; i < p->n; i++) {
            double grad = (double)g[i] * s.grad_scale;
            double mi = s.beta1 * (double)m[i] + (1 - (double)s.beta1) * grad;
            double vi = s.beta2 * (double)v[i] + (1 - (double)s.beta2) * grad * grad;
            double update = (mi / s.bias_correction1) / (sqrt(vi / s.bias_correction2) + s.eps);
            param[i] = (float)(param[i] - (double)s.lr * s.weight_decay * param[i] - s.lr * update);
            m[i] = (float)mi;
            v[i] = (float)vi;
        }
    }
}

const KernelOp kop_adamw = {"adamw", "optimiser", call_adamw, ref_adamw, NULL, NULL};

KernelCase *case_adamw(CaseList *list, const char *name, const AdamWParams *p, bool fresh) {
    static const char *const grad_labels[3] = {"adamw g step 1", "adamw g step 2",
                                               "adamw g step 3"};
    DMDR_CHECK(p->steps >= 1 && p->steps <= 3, "%s: %d AdamW steps (1 to 3)", name, p->steps);
    KernelCase *c = case_new(list, &kop_adamw, name);
    c->p.adamw = *p;
    // A handful of float operations per element and step, against double arithmetic on the
    // same float state: p rtol 1e-6 (the update is 1e-2 of p); m rtol 1e-5 with atol 1e-7
    // (1e-6 of the summed terms beta1 m ~ 0.1) where they cancel; v rtol 1e-5 (a sum of
    // squares, no cancellation).
    case_inout(c, "adamw p", p->n, -1, 1, (CaseTol){1e-7, 1e-6});
    CaseBuffer *m = case_inout(c, "adamw m", p->n, -1, 1, (CaseTol){1e-7, 1e-5});
    CaseBuffer *v = case_inout(c, "adamw v", p->n, 0.1f, 1, (CaseTol){0, 1e-5});
    if (fresh) m->fill = v->fill = FILL_ZERO;
    for (int i = 0; i < p->steps; i++) case_in(c, grad_labels[i], p->n, -1, 1);
    c->bytes = 4.0 * 7.0 * (double)p->n * p->steps; // reads p, g, m, v; writes p, m, v
    case_shape(c, "n=%lld", (long long)p->n);
    return c;
}

void adamw_test_cases(CaseList *list) {
    // After each of 3 steps from fresh state, the second with clipped gradients (scale 0.5).
    static const int64_t sizes[] = {1031, CASE_LARGE};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (int steps = 1; steps <= 3; steps++) {
            AdamWParams p = {.n = sizes[si], .first_step = 1, .steps = steps,
                             .half_scale_step = 2, .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f,
                             .eps = 1e-8f, .weight_decay = 0.1f};
            char name[32];
            snprintf(name, sizeof name, "adamw, %d step%s", steps, steps > 1 ? "s" : "");
            case_adamw(list, name, &p, true);
        }
    }
}
