// Reverse-mode automatic differentiation over a recorded graph.
//
// Every tracked op result points to the node that made it (tensor->grad_fn); a node holds
// references to its inputs and to whatever its backward needs (saved tensors, op arguments).
// autograd_backward() orders the graph below the root (depth-first, so each node runs after
// every consumer of its output), calls each node's backward, accumulates input gradients
// (summed when a tensor is used more than once), and frees the graph.
//
// Gradients reach every leaf with requires_grad (parameters, but also inputs such as an image
// fed to a reward model) and every non-leaf marked with tensor_retain_grad().
#pragma once

#include "tensor/tensor.h"

#define AUTOGRAD_MAX_INPUTS 4
#define AUTOGRAD_MAX_SAVED 4

typedef struct AutogradNode AutogradNode;
// Computes the gradients of the node's inputs from dy (the gradient of its output, same
// shape) and hands each to autograd_accumulate(node->inputs[i], grad).
typedef void (*BackwardFn)(AutogradNode *node, Tensor *dy);

struct AutogradNode {
    const char *name; // the op, for error messages and graph dumps
    BackwardFn backward;
    int input_count;
    Tensor *inputs[AUTOGRAD_MAX_INPUTS]; // retained
    int saved_count;
    Tensor *saved[AUTOGRAD_MAX_SAVED]; // retained: statistics, or aliases of the output
    Tensor *output;                    // not retained: the output owns the node
    Precision precision; // of the GEMMs of the forward, which the backward's GEMMs keep
    // scalar arguments of the op (axes, eps, scale, ...)
    int64_t iarg[8];
    float farg[4];
    uint64_t visit_epoch; // engine bookkeeping for the graph walk
};

// ---- grad mode ---------------------------------------------------------------------------
bool autograd_enabled(void);
// Nestable no-grad scope: ops inside record nothing.
void autograd_no_grad_begin(void);
void autograd_no_grad_end(void);

// ---- mixed precision ----------------------------------------------------------------------
// The precision of the GEMMs of ops run from now on (PyTorch autocast's rule): matmul, linear
// and conv2d take bf16 operands with fp32 accumulation in PRECISION_BF16, and the backward of
// a recorded op runs its GEMMs in the precision its forward ran in. Every tensor stays fp32
// (weights, gradients, optimiser state, activations), as do all other ops. PRECISION_FP32 at
// start. Set it only to a precision the backend runs natively (Backend.bf16_missing).
void autograd_set_precision(Precision precision);
Precision autograd_precision(void);

// ---- for op implementations ---------------------------------------------------------------
// Records a node producing `out` from inputs when grad mode is on and some input requires a
// gradient; returns NULL (records nothing) otherwise.
AutogradNode *autograd_record(Tensor *out, const char *name, BackwardFn backward,
                              int input_count, Tensor *const *inputs);
// Keeps t for the backward. To save the op's own output use autograd_save_output (it saves
// an alias sharing the storage, so the output and its node do not own each other).
void autograd_save(AutogradNode *node, Tensor *t);
void autograd_save_output(AutogradNode *node);
// Adds g to t's gradient if t requires one. g must have t's shape.
void autograd_accumulate(Tensor *t, Tensor *g);
// Whether the backward must compute the gradient of input i.
bool autograd_needs_grad(const AutogradNode *node, int i);

// ---- user API -------------------------------------------------------------------------------
// Backpropagates from root. grad_root is the gradient of root (same shape), or NULL for a
// one-element root (gradient 1). Frees the graph afterwards.
void autograd_backward(Tensor *root, Tensor *grad_root);
// Frees the graph below t without a backward pass (e.g. after a no-grad evaluation that
// was not no-grad).
void autograd_free_graph(Tensor *t);

void tensor_set_requires_grad(Tensor *t, bool requires_grad);
void tensor_retain_grad(Tensor *t);
// Drops t->grad.
void tensor_zero_grad(Tensor *t);
// A tensor sharing t's storage, cut from the graph (the stop-gradient sg(.)).
Tensor *tensor_detach(Tensor *t);
