#include "autograd/autograd.h"

#include <stdlib.h>

#include "autograd/ops.h"
#include "kernels/check.h"
#include "tensor/tensor_internal.h"

static int no_grad_depth;

bool autograd_enabled(void) { return no_grad_depth == 0; }
void autograd_no_grad_begin(void) { no_grad_depth++; }
void autograd_no_grad_end(void) {
    DMDR_CHECK(no_grad_depth > 0, "autograd_no_grad_end without a matching begin");
    no_grad_depth--;
}

static Precision gemm_precision = PRECISION_FP32;

void autograd_set_precision(Precision precision) {
    DMDR_CHECK(precision >= 0 && precision < PRECISION_COUNT, "precision %d", (int)precision);
    gemm_precision = precision;
}
Precision autograd_precision(void) { return gemm_precision; }

// ---- nodes -----------------------------------------------------------------------------------

static void node_release(AutogradNode *node) {
    for (int i = 0; i < node->input_count; i++) tensor_release(node->inputs[i]);
    for (int i = 0; i < node->saved_count; i++) tensor_release(node->saved[i]);
    free(node);
}

AutogradNode *autograd_record(Tensor *out, const char *name, BackwardFn backward,
                              int input_count, Tensor *const *inputs) {
    if (!autograd_enabled()) return NULL;
    DMDR_CHECK(input_count <= AUTOGRAD_MAX_INPUTS, "%s: %d inputs", name, input_count);
    bool wanted = false;
    for (int i = 0; i < input_count; i++)
        if (inputs[i] && inputs[i]->requires_grad) wanted = true;
    if (!wanted) return NULL;

    static bool releaser_set;
    if (!releaser_set) {
        tensor_set_grad_fn_releaser(node_release);
        releaser_set = true;
    }
    AutogradNode *node = calloc(1, sizeof *node);
    DMDR_CHECK(node != NULL, "out of host memory");
    node->name = name;
    node->backward = backward;
    node->precision = gemm_precision;
    node->input_count = input_count;
    for (int i = 0; i < input_count; i++)
        node->inputs[i] = inputs[i] ? tensor_retain(inputs[i]) : NULL;
    node->output = out;
    out->grad_fn = node;
    out->requires_grad = true;
    return node;
}

void autograd_save(AutogradNode *node, Tensor *t) {
    DMDR_CHECK(node->saved_count < AUTOGRAD_MAX_SAVED, "%s saves too many tensors", node->name);
    node->saved[node->saved_count++] = tensor_retain(t);
}

void autograd_save_output(AutogradNode *node) {
    // An alias (same storage, no grad_fn): saving the output itself would make the output
    // and its node own each other, and neither would ever be freed.
    autograd_save(node, tensor_view(node->output, node->output->shape));
}

bool autograd_needs_grad(const AutogradNode *node, int i) {
    return i < node->input_count && node->inputs[i] && node->inputs[i]->requires_grad;
}

// Gradients are never modified in place once stored: the first contribution is kept as it
// is (it may be the very tensor handed to another input too, as add's backward does), and
// each later one makes a new sum. An out-of-place add moves the same bytes as an in-place one.
void autograd_accumulate(Tensor *t, Tensor *g) {
    if (!t || !t->requires_grad || !g) return;
    char a[64], b[64];
    DMDR_CHECK(tensor_numel(g) == tensor_numel(t), "gradient %s for a tensor of shape %s",
               tensor_shape_str(g, a, sizeof a), tensor_shape_str(t, b, sizeof b));
    if (!shape_equal(g->shape, t->shape)) g = tensor_view(g, t->shape);
    Tensor *old = t->grad;
    if (!old) {
        t->grad = tensor_retain(g);
        return;
    }
    autograd_no_grad_begin();
    t->grad = tensor_retain(op_add(old, g));
    autograd_no_grad_end();
    tensor_release(old);
}

// ---- graph traversal ---------------------------------------------------------------------------

typedef struct {
    AutogradNode **items;
    int64_t count, capacity;
} NodeList;

static void node_list_push(NodeList *l, AutogradNode *n) {
    if (l->count == l->capacity) {
        l->capacity = l->capacity ? 2 * l->capacity : 64;
        l->items = realloc(l->items, (size_t)l->capacity * sizeof *l->items);
        DMDR_CHECK(l->items != NULL, "out of host memory");
    }
    l->items[l->count++] = n;
}

// Post-order depth-first walk from root: a node is appended after every node that feeds it,
// so walking the list backwards runs each node after all consumers of its output.
// Iterative, so graphs thousands of ops deep (a 50-step sampler) cannot overflow the stack;
// each walk marks the nodes it reaches with a fresh epoch number instead of a visited set.
static NodeList topological_order(AutogradNode *root) {
    static uint64_t epoch;
    epoch++;
    typedef struct {
        AutogradNode *node;
        int next_input;
    } Frame;
    Frame *stack = NULL;
    int64_t depth = 0, capacity = 0;
    NodeList order = {0};
    root->visit_epoch = epoch;
    for (AutogradNode *push = root; push || depth;) {
        if (push) {
            if (depth == capacity) {
                capacity = capacity ? 2 * capacity : 64;
                stack = realloc(stack, (size_t)capacity * sizeof *stack);
                DMDR_CHECK(stack != NULL, "out of host memory");
            }
            stack[depth++] = (Frame){push, 0};
            push = NULL;
        }
        Frame *f = &stack[depth - 1];
        if (f->next_input < f->node->input_count) {
            Tensor *in = f->node->inputs[f->next_input++];
            AutogradNode *child = in ? in->grad_fn : NULL;
            if (child && child->visit_epoch != epoch) {
                child->visit_epoch = epoch;
                push = child;
            }
        } else {
            node_list_push(&order, f->node);
            depth--;
        }
    }
    free(stack);
    return order;
}

void autograd_backward(Tensor *root, Tensor *grad_root) {
    char a[64], b[64];
    DMDR_CHECK(root->requires_grad, "backward from a tensor that does not require a gradient");
    if (grad_root) {
        DMDR_CHECK(shape_equal(grad_root->shape, root->shape), "gradient %s for root %s",
                   tensor_shape_str(grad_root, a, sizeof a), tensor_shape_str(root, b, sizeof b));
    } else {
        DMDR_CHECK(tensor_numel(root) == 1, "backward from %s needs an explicit gradient",
                   tensor_shape_str(root, a, sizeof a));
    }
    tensor_scope_begin(); // gradients of intermediates die with this scope
    autograd_no_grad_begin();
    autograd_accumulate(root, grad_root ? grad_root : tensor_ones(root->shape, root->device));
    if (root->grad_fn) {
        NodeList order = topological_order(root->grad_fn);
        for (int64_t i = order.count - 1; i >= 0; i--) {
            AutogradNode *n = order.items[i];
            Tensor *out = n->output;
            // each node's temporaries die with its own scope: what it hands on is retained
            // by autograd_accumulate, so the peak is one node's work, not the whole pass's
            tensor_scope_begin();
            if (out->grad) n->backward(n, out->grad);
            tensor_scope_end();
            if (!out->retains_grad) {
                tensor_release(out->grad);
                out->grad = NULL;
            }
        }
        // Unhook every node first, then free: freeing a node can free tensors whose own
        // nodes are further down the list, and those must not be freed twice.
        for (int64_t i = 0; i < order.count; i++) order.items[i]->output->grad_fn = NULL;
        for (int64_t i = 0; i < order.count; i++) node_release(order.items[i]);
        free(order.items);
    }
    autograd_no_grad_end();
    tensor_scope_end();
}

void autograd_free_graph(Tensor *t) {
    if (!t->grad_fn) return;
    AutogradNode *n = t->grad_fn;
    t->grad_fn = NULL;
    node_release(n);
}

// ---- user API -----------------------------------------------------------------------------------

void tensor_set_requires_grad(Tensor *t, bool requires_grad) {
    DMDR_CHECK(t->grad_fn == NULL, "requires_grad can only be set on a leaf tensor");
    DMDR_CHECK(!requires_grad || t->dtype == DTYPE_F32, "only F32 tensors can require gradients");
    t->requires_grad = requires_grad;
}

void tensor_retain_grad(Tensor *t) { t->retains_grad = true; }

void tensor_zero_grad(Tensor *t) {
    tensor_release(t->grad);
    t->grad = NULL;
}

Tensor *tensor_detach(Tensor *t) { return tensor_view(t, t->shape); }
