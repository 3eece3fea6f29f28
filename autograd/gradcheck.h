// Finite-difference gradient checks. The op under test maps inputs to an output y of any
// shape; the check contracts y with fixed random weights w into the scalar L = sum(w * y),
// computed in double on the host, and compares autograd's dL/dx (a backward pass seeded
// with grad = w) to the central difference (L(x + h) - L(x - h)) / 2h, element by element.
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "tensor/tensor.h"

typedef Tensor *(*GradcheckFn)(Tensor *const *inputs, void *ctx);

typedef struct {
    double step;      // h, the finite-difference step
    double abs_tol;   // pass when |analytic - numeric| <= abs_tol + rel_tol * |numeric|
    double rel_tol;
    uint64_t seed;    // for the contraction weights w
} GradcheckOptions;

GradcheckOptions gradcheck_defaults(void);

// Checks the gradient of every input that has requires_grad set (NULL entries, e.g. an
// absent bias, are passed to fn and otherwise skipped). Returns true when all
// elements agree; otherwise writes the worst element to report.
bool gradcheck(GradcheckFn fn, void *ctx, Tensor *const *inputs, int input_count,
               const GradcheckOptions *opt, char *report, size_t report_len);
