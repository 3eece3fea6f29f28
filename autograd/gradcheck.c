#include "autograd/gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/autograd.h"
#include "kernels/check.h"
#include "kernels/philox.h"

GradcheckOptions gradcheck_defaults(void) {
    GradcheckOptions o = {.step = 1e-2, .abs_tol = 1e-2, .rel_tol = 1e-2, .seed = 1234};
    return o;
}

static float *host_copy(const Tensor *t) {
    float *h = malloc((size_t)tensor_numel(t) * sizeof *h + 1);
    DMDR_CHECK(h != NULL, "out of host memory");
    tensor_read(t, h);
    return h;
}

// L = sum(w * fn(inputs)) in double: the scalar whose gradient is checked.
static double contracted_output(GradcheckFn fn, void *ctx, Tensor *const *inputs,
                                const float *w, int64_t n) {
    tensor_scope_begin();
    Tensor *y = fn(inputs, ctx);
    DMDR_CHECK(tensor_numel(y) == n, "gradcheck: the output size changed between calls");
    float *yh = host_copy(y);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)w[i] * (double)yh[i];
    free(yh);
    tensor_scope_end();
    return sum;
}

bool gradcheck(GradcheckFn fn, void *ctx, Tensor *const *inputs, int input_count,
               const GradcheckOptions *opt, char *report, size_t report_len) {
    GradcheckOptions o = opt ? *opt : gradcheck_defaults();
    tensor_scope_begin();
    for (int i = 0; i < input_count; i++)
        if (inputs[i]) tensor_zero_grad(inputs[i]);

    // Analytic: one backward pass seeded with w.
    Tensor *y = fn(inputs, ctx);
    int64_t n = tensor_numel(y);
    float *w = malloc((size_t)n * sizeof *w + 1);
    DMDR_CHECK(w != NULL, "out of host memory");
    for (int64_t i = 0; i < n; i++) {
        PhiloxBlock b = philox4x32_10(o.seed, (uint64_t)i);
        w[i] = 2.0f * philox_to_unit(b.v[0]) - 1.0f;
    }
    DMDR_CHECK(y->requires_grad, "gradcheck: the output does not depend on any input");
    autograd_backward(y, tensor_from_floats(y->shape, w, y->device));

    // Numeric: central differences, one element at a time, with no graph recorded.
    bool ok = true;
    double worst = -1.0;
    if (report && report_len) report[0] = '\0';
    autograd_no_grad_begin();
    for (int i = 0; i < input_count && ok; i++) {
        Tensor *x = inputs[i];
        if (!x || !x->requires_grad) continue;
        int64_t m = tensor_numel(x);
        float *xh = host_copy(x);
        float *analytic = x->grad ? host_copy(x->grad) : calloc((size_t)m + 1, sizeof(float));
        for (int64_t j = 0; j < m; j++) {
            float saved = xh[j];
            xh[j] = saved + (float)o.step;
            tensor_write(x, xh);
            double plus = contracted_output(fn, ctx, inputs, w, n);
            xh[j] = saved - (float)o.step;
            tensor_write(x, xh);
            double minus = contracted_output(fn, ctx, inputs, w, n);
            xh[j] = saved;
            tensor_write(x, xh);
            // divide by the step actually taken: x +/- h rounds in float
            double numeric = (plus - minus) / ((double)(saved + (float)o.step) -
                                               (double)(saved - (float)o.step));
            double err = fabs((double)analytic[j] - numeric);
            double excess = err - (o.abs_tol + o.rel_tol * fabs(numeric));
            if (excess > worst) {
                worst = excess;
                if (report && report_len)
                    snprintf(report, report_len,
                             "input %d element %lld: analytic %.6g, numeric %.6g (|diff| %.3g)", i,
                             (long long)j, (double)analytic[j], numeric, err);
            }
            if (excess > 0) ok = false;
        }
        free(xh);
        free(analytic);
    }
    autograd_no_grad_end();
    free(w);
    for (int i = 0; i < input_count; i++)
        if (inputs[i]) tensor_zero_grad(inputs[i]);
    tensor_scope_end();
    return ok;
}
