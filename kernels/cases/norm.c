// Normalisation: layer norm and group norm, forward and backward. A layer norm is a group norm
// with hw = 1 and groups = 1 (each row one group), so one reference serves both.
#include <math.h>
#include <stdlib.h>

#include "kernels/cases/ops.h"

#define FAMILY "normalisation"

enum { NORM_X, NORM_WEIGHT, NORM_BIAS, NORM_Y, NORM_MEAN, NORM_RSTD }; // forward
// backward: the saved statistics take the places of bias and y
enum { NORM_SAVED_MEAN = NORM_BIAS, NORM_SAVED_RSTD, NORM_DY, NORM_DX, NORM_DWEIGHT, NORM_DBIAS };

// The channel of element e of group s (of `groups` per image), groups of len = c/groups * hw.
static int64_t norm_channel(const NormParams *p, int64_t s, int64_t e) {
    return s % p->groups * (p->c / p->groups) + e / p->hw;
}

// Group normalisation: biased variance, rstd = 1 / sqrt(var + eps), then the per-channel
// affine; y may be NULL (only the statistics).
static void ref_norm(float *y, float *mean, float *rstd, const float *x, const float *weight,
                     const float *bias, const NormParams *p) {
    int64_t groups = p->n * p->groups, len = p->c / p->groups * p->hw;
    for (int64_t s = 0; s < groups; s++) {
        const float *xs = x + s * len;
        double sum = 0, sq = 0;
        for (int64_t e = 0; e < len; e++) sum += xs[e];
        double m = sum / (double)len;
        for (int64_t e = 0; e < len; e++) sq += (xs[e] - m) * (xs[e] - m);
        double r = 1 / sqrt(sq / (double)len + p->eps);
        for (int64_t e = 0; y && e < len; e++) {
            int64_t ch = norm_channel(p, s, e);
            double v = (xs[e] - m) * r;
            y[s * len + e] = (float)(weight ? v * weight[ch] + bias[ch] : v);
        }
        mean[s] = (float)m;
        rstd[s] = (float)r;
    }
}

static void call_norm(const Backend *be, void *const *buf, const KernelCase *c) {
    const NormParams *p = &c->p.norm;
    if (c->op == &kop_layernorm)
        be->layernorm(be, buf[NORM_Y], buf[NORM_MEAN], buf[NORM_RSTD], buf[NORM_X],
                      buf[NORM_WEIGHT], buf[NORM_BIAS], p->n, p->c, p->eps);
    else
        be->groupnorm(be, buf[NORM_Y], buf[NORM_MEAN], buf[NORM_RSTD], buf[NORM_X],
                      buf[NORM_WEIGHT], buf[NORM_BIAS], p->n, p->c, p->hw, p->groups, p->eps);
}

static void ref_norm_forward(void *const *host, const KernelCase *c) {
    ref_norm(host[NORM_Y], host[NORM_MEAN], host[NORM_RSTD], host[NORM_X], host[NORM_WEIGHT],
             host[NORM_BIAS], &c->p.norm);
}

const KernelOp kop_layernorm = {"layernorm", FAMILY, call_norm, ref_norm_forward, NULL, NULL};
const KernelOp kop_groupnorm = {"groupnorm", FAMILY, call_norm, ref_norm_forward, NULL, NULL};

static void call_norm_backward(const Backend *be, void *const *buf, const KernelCase *c) {
    const NormParams *p = &c->p.norm;
    if (c->op == &kop_layernorm_backward)
        be->layernorm_backward(be, buf[NORM_DX], buf[NORM_DWEIGHT], buf[NORM_DBIAS], buf[NORM_DY],
                               buf[NORM_X], buf[NORM_SAVED_MEAN], buf[NORM_SAVED_RSTD],
                               buf[NORM_WEIGHT], p->n, p->c);
    else
        be->groupnorm_backward(be, buf[NORM_DX], buf[NORM_DWEIGHT], buf[NORM_DBIAS], buf[NORM_DY],
                               buf[NORM_X], buf[NORM_SAVED_MEAN], buf[NORM_SAVED_RSTD],
                               buf[NORM_WEIGHT], p->n, p->c, p->hw, p->groups);
}

// dx (n, c, hw), dweight, dbias (c) from the saved (float) mean and rstd:
// dx = rstd (g - mean(g) - xhat mean(g xhat)) over each group, g = dy weight.
static void ref_norm_backward(void *const *host, const KernelCase *c) {
    const NormParams *p = &c->p.norm;
    const float *x = host[NORM_X], *weight = host[NORM_WEIGHT], *dy = host[NORM_DY];
    const float *saved_mean = host[NORM_SAVED_MEAN], *saved_rstd = host[NORM_SAVED_RSTD];
    float *dx = host[NORM_DX], *dweight = host[NORM_DWEIGHT], *dbias = host[NORM_DBIAS];
    int64_t groups = p->n * p->groups, len = p->c / p->groups * p->hw;
    double *dw = ref_alloc((size_t)p->c * sizeof(double));
    double *db = ref_alloc((size_t)p->c * sizeof(double));
    for (int64_t s = 0; s < groups; s++) {
        const float *xs = x + s * len, *dys = dy + s * len;
        double mean = saved_mean[s], rstd = saved_rstd[s], g_mean = 0, gx_mean = 0;
        for (int64_t e = 0; e < len; e++) {
            int64_t ch = norm_channel(p, s, e);
            double xhat = (xs[e] - mean) * rstd;
            double g = dys[e] * (weight ? weight[ch] : 1.0);
            g_mean += g / (double)len;
            gx_mean += g * xhat / (double)len;
            dw[ch] += dys[e] * xhat;
            db[ch] += dys[e];
        }
        for (int64_t e = 0; e < len; e++) {
            int64_t ch = norm_channel(p, s, e);
            double xhat = (xs[e] - mean) * rstd;
            double g = dys[e] * (weight ? weight[ch] : 1.0);
            dx[s * len + e] = (float)(rstd * (g - g_mean - xhat * gx_mean));
        }
    }
    for (int64_t ch = 0; dweight && ch < p->c; ch++) {
        dweight[ch] = (float)dw[ch];
        dbias[ch] = (float)db[ch];
    }
    free(dw);
    free(db);
}

// mean and rstd as the forward saves them, from the reference
static void norm_saved(void *const *host, const KernelCase *c) {
    ref_norm(NULL, host[NORM_SAVED_MEAN], host[NORM_SAVED_RSTD], host[NORM_X], NULL, NULL,
             &c->p.norm);
}

static void prepare_norm_backward(const Backend *be, void *const *buf, const KernelCase *c) {
    const NormParams *p = &c->p.norm;
    // dx stands in for the forward's y: the call overwrites it
    if (c->op == &kop_layernorm_backward)
        be->layernorm(be, buf[NORM_DX], buf[NORM_SAVED_MEAN], buf[NORM_SAVED_RSTD], buf[NORM_X],
                      NULL, NULL, p->n, p->c, p->eps);
    else
        be->groupnorm(be, buf[NORM_DX], buf[NORM_SAVED_MEAN], buf[NORM_SAVED_RSTD], buf[NORM_X],
                      NULL, NULL, p->n, p->c, p->hw, p->groups, p->eps);
}

const KernelOp kop_layernorm_backward = {"layernorm_backward", FAMILY, call_norm_backward,
                                        ref_norm_backward, norm_saved, prepare_norm_backward};
const KernelOp kop_groupnorm_backward = {"groupnorm_backward", FAMILY, call_norm_backward,
                                        ref_norm_backward, norm_saved, prepare_norm_backward};

// weight and bias (affine) near 1 and 0
KernelCase *case_norm(CaseList *list, const char *name, const NormParams *p, bool layer,
                      bool backward) {
    const KernelOp *op = layer ? (backward ? &kop_layernorm_backward : &kop_layernorm)
                               : (backward ? &kop_groupnorm_backward : &kop_groupnorm);
    KernelCase *c = case_new(list, op, name);
    c->p.norm = *p;
    int64_t nx = p->n * p->c * p->hw, groups = p->n * p->groups;
    case_in(c, "norm x", nx, p->lo, p->hi);
    case_in(c, "norm weight", p->c, 0.5f, 1.5f)->role = p->affine ? CASE_IN : CASE_NULL;
    if (!backward) {
        // Two len-term sums, a rsqrt and an affine: rtol 1e-5, atol 1e-5 for outputs near 0.
        const CaseTol tol = {1e-5, 1e-5};
        case_in(c, "norm bias", p->c, -0.5f, 0.5f)->role = p->affine ? CASE_IN : CASE_NULL;
        case_out(c, "y", nx, tol);
        case_out(c, "mean", groups, tol);
        case_out(c, "rstd", groups, tol);
        // reads x, writes y, mean, rstd
        c->bytes = 4.0 * (2.0 * (double)nx + 2.0 * (double)groups);
    } else {
        case_in(c, "mean", groups, -1, 1);
        case_in(c, "rstd", groups, 0.5f, 1.5f);
        case_in(c, "norm dy", nx, -1, 1);
        // dx: len-term means, rtol 1e-5, atol 1e-5; dweight and dbias sum n*hw terms of O(1):
        // an absolute floor of 1e-6 per term.
        case_out(c, "dx", nx, (CaseTol){1e-5, 1e-5});
        const CaseTol sums = {1e-6 * (double)(p->n * p->hw), 1e-5};
        case_optional_out(c, "dweight", p->c, p->param_grads, sums);
        case_optional_out(c, "dbias", p->c, p->param_grads, sums);
        // reads dy, x, mean, rstd, writes dx
        c->bytes = 4.0 * (3.0 * (double)nx + 2.0 * (double)groups);
    }
    if (layer)
        case_shape(c, "(%lld,%lld)%s", (long long)p->n, (long long)p->c,
                   p->affine ? " affine" : "");
    else
        case_shape(c, "(%lld, %lld, %lld) groups %lld%s", (long long)p->n, (long long)p->c,
                   (long long)p->hw, (long long)p->groups, p->affine ? " affine" : "");
    return c;
}

// ---- test cases -------------------------------------------------------------------------------

void norm_test_cases(CaseList *list) {
    static const NormParams layer[] = {
        // n, c, hw, groups, eps, affine, param_grads, x in [lo, hi]
        {7, 13, 1, 1, 1e-5f, true, true, -2, 3},
        {37, 129, 1, 1, 1e-5f, false, false, -2, 3},
        {37, 129, 1, 1, 1e-5f, true, true, 8, 12},   // mean far from 0
        {37, 129, 1, 1, 1e-5f, true, false, -2, 3},  // frozen affine parameters: no dweight, dbias
        {129, 1031, 1, 1, 1e-5f, true, true, -2, 3}, // beyond 100k elements
    };
    static const NormParams group[] = {
        {3, 12, 35, 4, 1e-5f, true, true, -2, 3},
        {2, 6, 13, 6, 1e-5f, false, false, -2, 3}, // one channel per group
        {3, 8, 7, 1, 1e-5f, true, true, 8, 12},    // one group, mean far from 0
        {2, 12, 35, 4, 1e-5f, true, false, -2, 3}, // frozen affine parameters
        {2, 32, 1681, 8, 1e-5f, true, true, -2, 3}, // beyond 100k elements
    };
    for (int backward = 0; backward < 2; backward++) {
        for (size_t i = 0; i < sizeof layer / sizeof layer[0]; i++)
            case_norm(list, backward ? "layernorm_backward" : "layernorm", &layer[i], true,
                      backward);
        for (size_t i = 0; i < sizeof group / sizeof group[0]; i++)
            case_norm(list, backward ? "groupnorm_backward" : "groupnorm", &group[i], false,
                      backward);
    }
}
