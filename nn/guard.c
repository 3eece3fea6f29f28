#include "nn/guard.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/check.h"

// "the generator's " or ""
static const char *owner(const TrainingGuard *g, char *buf, size_t n) {
    if (g->name && g->name[0]) snprintf(buf, n, "the %s's ", g->name);
    else buf[0] = '\0';
    return buf;
}

// -1 with err naming the first tensor of ts holding a NaN or an infinity (there is one).
static int name_nonfinite(const TrainingGuard *g, int64_t step, const char *kind,
                          const char *const *names, Tensor *const *ts, int count, Error *err) {
    char who[64];
    for (int i = 0; i < count; i++) {
        if (isfinite(tensors_sum_squares(&ts[i], 1))) continue;
        int64_t n = tensor_numel(ts[i]), nan = 0, inf = 0;
        float *x = malloc((size_t)n * sizeof *x);
        DMDR_CHECK(x != NULL, "out of host memory");
        tensor_read(ts[i], x);
        for (int64_t j = 0; j < n; j++) nan += isnan(x[j]), inf += isinf(x[j]);
        free(x);
        return error_set(err,
                         "step %lld: %s%s '%s' holds %lld NaN and %lld infinite values of %lld; "
                         "stopped before a checkpoint could keep them (lower --lr, raise "
                         "--warmup, or clip)",
                         (long long)step, owner(g, who, sizeof who), kind, names[i],
                         (long long)nan, (long long)inf, (long long)n);
    }
    return error_set(err, "step %lld: %s%s: a non-finite value that no tensor holds alone",
                     (long long)step, owner(g, who, sizeof who), kind);
}

// The moments m, v (kind 0, 1) or the weights (2) of every tracked parameter: finite?
static int check_state(const TrainingGuard *g, int64_t step, const AdamW *opt, int which,
                       Error *err) {
    int n = opt->params.count;
    Tensor **ts = malloc((size_t)(n + 1) * sizeof *ts);
    const char **names = malloc((size_t)(n + 1) * sizeof *names);
    DMDR_CHECK(ts && names, "out of host memory");
    for (int i = 0; i < n; i++) {
        ts[i] = which == 0 ? opt->m[i] : which == 1 ? opt->v[i] : opt->params.items[i].tensor;
        names[i] = opt->params.items[i].name;
    }
    static const char *const kinds[] = {"AdamW first moment of", "AdamW second moment of",
                                        "weight"};
    int rc = isfinite(tensors_sum_squares(ts, n))
                 ? 0
                 : name_nonfinite(g, step, kinds[which], names, ts, n, err);
    free(ts);
    free(names);
    return rc;
}

static void watch_growth(TrainingGuard *g, int64_t step, int k, double value, FILE *warn) {
    static const char *const what[] = {"loss", "gradient norm"};
    g->smooth[k] = g->seen == 0 ? value : 0.9 * g->smooth[k] + 0.1 * value;
    if (g->seen == 0 || g->smooth[k] < g->low[k]) g->low[k] = g->smooth[k];
    if (!(g->low[k] > 0.0) || !warn) return;
    double ratio = value / g->low[k];
    if (ratio < GUARD_WARN_RATIO || ratio < 10.0 * g->warned[k]) return;
    g->warned[k] = ratio;
    char who[64];
    fprintf(warn,
            "warning: step %lld: %s%s %.3g is %.3gx its lowest smoothed value (%.3g): the run "
            "may be diverging (lower --lr, raise --warmup, or clip)\n",
            (long long)step, owner(g, who, sizeof who), what[k], value, ratio, g->low[k]);
}

int training_guard_check(TrainingGuard *g, int64_t step, double loss, double grad_norm,
                         const AdamW *opt, FILE *warn, Error *err) {
    char who[64];
    if (!isfinite(loss))
        return error_set(err, "step %lld: %sloss is %g; stopped before a checkpoint could keep "
                              "it (lower --lr, raise --warmup, or clip)",
                         (long long)step, owner(g, who, sizeof who), loss);
    if (!isfinite(grad_norm))
        return error_set(err, "step %lld: %sgradient norm is %g (a gradient holds a NaN or an "
                              "infinity); stopped before a checkpoint could keep it",
                         (long long)step, owner(g, who, sizeof who), grad_norm);
    for (int which = 0; which < 3; which++)
        if (check_state(g, step, opt, which, err) != 0) return -1;
    if (!g->loss_starts_at_zero) watch_growth(g, step, 0, loss, warn);
    watch_growth(g, step, 1, grad_norm, warn);
    g->seen++;
    return 0;
}
