// Elementwise ops: binary with broadcasting, unary, with a scalar, and their backwards.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cases/ops.h"
#include "kernels/check.h"

#define FAMILY "elementwise"

static const int64_t elementwise_sizes[] = {7, 13, 37, 129, CASE_LARGE};
#define SIZE_COUNT ((int)(sizeof elementwise_sizes / sizeof elementwise_sizes[0]))

// ---- binary ---------------------------------------------------------------------------------

static const char *const binary_names[BINARY_OP_COUNT] = {"add", "sub", "mul", "div", "max",
                                                          "min"};

// One rounding per element (division may be a * (1 / b): two), at most three in a backward
// (-dy a / b^2): rtol 1e-6.
static const CaseTol binary_tol = {1e-7, 1e-6};

enum { BIN_A, BIN_B, BIN_Y };                 // forward
enum { BIN_DY = BIN_Y, BIN_DA, BIN_DB };      // backward

static double ref_binary_op(BinaryOp op, double a, double b) {
    switch (op) {
    case BINARY_ADD: return a + b;
    case BINARY_SUB: return a - b;
    case BINARY_MUL: return a * b;
    case BINARY_DIV: return a / b;
    case BINARY_MAX: return a >= b ? a : b;
    case BINARY_MIN: return a <= b ? a : b;
    case BINARY_OP_COUNT: break;
    }
    DMDR_FATAL("unknown binary op %d", (int)op);
}

// d(a op b)/da and d(a op b)/db; at a tie of max or min the gradient goes to a
static void ref_binary_grad(BinaryOp op, double a, double b, double *da, double *db) {
    switch (op) {
    case BINARY_ADD: *da = 1, *db = 1; return;
    case BINARY_SUB: *da = 1, *db = -1; return;
    case BINARY_MUL: *da = b, *db = a; return;
    case BINARY_DIV: *da = 1 / b, *db = -a / (b * b); return;
    case BINARY_MAX: *da = a >= b, *db = a < b; return;
    case BINARY_MIN: *da = a <= b, *db = a > b; return;
    case BINARY_OP_COUNT: break;
    }
    DMDR_FATAL("unknown binary op %d", (int)op);
}

// y is a or b when the case aliases them (in-place accumulation)
static float *binary_output(void *const *buf, const BinaryParams *p) {
    return buf[p->alias == 1 ? BIN_A : p->alias == 2 ? BIN_B : BIN_Y];
}

static void call_binary(const Backend *be, void *const *buf, const KernelCase *c) {
    const BinaryParams *p = &c->p.binary;
    be->binary(be, p->op, binary_output(buf, p), buf[BIN_A], buf[BIN_B], &p->bc);
}

// y (bc.shape) = a op b, inputs read through bc's strides
static void ref_binary(void *const *host, const KernelCase *c) {
    const BinaryParams *p = &c->p.binary;
    const float *a = host[BIN_A], *b = host[BIN_B];
    float *y = binary_output(host, p); // in place reads element i before it writes it
    for (int64_t i = 0; i < shape4_numel(p->bc.shape); i++)
        y[i] = (float)ref_binary_op(p->op, a[strided_offset(p->bc.shape, p->bc.a_stride, i)],
                                    b[strided_offset(p->bc.shape, p->bc.b_stride, i)]);
}

// Exact ties a == b at every fifth output (max, min).
static void binary_ties(void *const *host, const KernelCase *c) {
    const Broadcast *bc = &c->p.binary.bc;
    float *a = host[BIN_A], *b = host[BIN_B];
    for (int64_t i = 0; i < shape4_numel(bc->shape); i += 5)
        b[strided_offset(bc->shape, bc->b_stride, i)] =
            a[strided_offset(bc->shape, bc->a_stride, i)];
}

const KernelOp kop_binary = {"binary", FAMILY, call_binary, ref_binary, binary_ties, NULL};

static void call_binary_backward(const Backend *be, void *const *buf, const KernelCase *c) {
    const BinaryParams *p = &c->p.binary;
    be->binary_backward(be, p->op, buf[BIN_DA], buf[BIN_DB], buf[BIN_A], buf[BIN_B], buf[BIN_DY],
                        &p->bc);
}

// da, db (bc.shape) = dy * d(a op b)/da, dy * d(a op b)/db
static void ref_binary_backward(void *const *host, const KernelCase *c) {
    const BinaryParams *p = &c->p.binary;
    const float *a = host[BIN_A], *b = host[BIN_B], *dy = host[BIN_DY];
    float *da = host[BIN_DA], *db = host[BIN_DB];
    for (int64_t i = 0; i < shape4_numel(p->bc.shape); i++) {
        double ga, gb;
        ref_binary_grad(p->op, a[strided_offset(p->bc.shape, p->bc.a_stride, i)],
                        b[strided_offset(p->bc.shape, p->bc.b_stride, i)], &ga, &gb);
        if (da) da[i] = (float)(dy[i] * ga);
        if (db) db[i] = (float)(dy[i] * gb);
    }
}

const KernelOp kop_binary_backward = {"binary_backward", FAMILY, call_binary_backward,
                                     ref_binary_backward, binary_ties, NULL};

// variant: the forward's alias (0 none, 1 y is a, 2 y is b), the backward's outputs (bit 0
// da, bit 1 db). a and b are kept away from 0 (division).
KernelCase *case_binary(CaseList *list, const char *name, BinaryOp op,
                        const int64_t out[KERNEL_MAX_DIMS], const int64_t a[KERNEL_MAX_DIMS],
                        const int64_t b[KERNEL_MAX_DIMS], bool backward, int variant) {
    KernelCase *c = case_new(list, backward ? &kop_binary_backward : &kop_binary, name);
    BinaryParams *p = &c->p.binary;
    p->op = op;
    memcpy(p->bc.shape, out, sizeof p->bc.shape);
    int64_t n = shape4_numel(out);
    int64_t na = strides_without(a, unit_dims(a), p->bc.a_stride);
    int64_t nb = strides_without(b, unit_dims(b), p->bc.b_stride);
    case_in(c, "binary a", na, -2, 2)->fill = FILL_NONZERO;
    case_in(c, "binary b", nb, -2, 2)->fill = FILL_NONZERO;
    c->buf[BIN_A].gap = c->buf[BIN_B].gap = 0.1f;
    if (backward) {
        p->outputs = variant;
        case_in(c, "binary dy", n, -1, 1);
        case_optional_out(c, "da", n, variant & 1, binary_tol);
        case_optional_out(c, "db", n, variant & 2, binary_tol);
        c->bytes = 4.0 * (4.0 * (double)n + (double)nb);
    } else {
        p->alias = variant;
        DMDR_CHECK(variant == 0 || (variant == 1 ? na : nb) == n,
                   "%s: y may alias only a full-shaped input", name);
        case_optional_out(c, "y", n, variant == 0, binary_tol);
        if (variant) {
            c->buf[variant == 1 ? BIN_A : BIN_B].role = CASE_INOUT;
            c->buf[variant == 1 ? BIN_A : BIN_B].tol = binary_tol;
        }
        c->bytes = 4.0 * (2.0 * (double)n + (double)nb);
    }
    case_shape(c, "(%lld, %lld, %lld, %lld)", (long long)out[0], (long long)out[1],
               (long long)out[2], (long long)out[3]);
    return c;
}

// ---- unary ------------------------------------------------------------------------------------

// Per-op inputs and tolerances, shared by unary and unary_backward.
typedef struct {
    const char *name;
    float lo, hi;      // inputs: the op's domain, where float results are meaningful
    bool kink_at_zero; // relu, abs: inputs kept 1e-3 away from 0
    CaseTol tol;       // transcendentals may be fast polynomials: rtol 1e-5, others 1e-6; the
                       // atol 1e-6 covers results that are a difference of nearly equal
                       // numbers (gelu's 1 + tanh(u) for x << 0, 1 - tanh^2 near saturation,
                       // log near 1)
} UnaryCase;

static const UnaryCase unary_cases[UNARY_OP_COUNT] = {
    [UNARY_EXP] = {"exp", -10, 10, false, {1e-12, 1e-5}},
    [UNARY_LOG] = {"log", 0.01f, 10, false, {1e-6, 1e-5}},
    [UNARY_SQRT] = {"sqrt", 0.01f, 10, false, {1e-7, 1e-6}},
    [UNARY_TANH] = {"tanh", -5, 5, false, {1e-6, 1e-5}},
    [UNARY_SIGMOID] = {"sigmoid", -10, 10, false, {1e-6, 1e-5}},
    [UNARY_RELU] = {"relu", -3, 3, true, {1e-7, 1e-6}},
    [UNARY_SILU] = {"silu", -8, 8, false, {1e-6, 1e-5}},
    [UNARY_GELU_TANH] = {"gelu_tanh", -5, 5, false, {1e-6, 1e-5}},
    [UNARY_SQUARE] = {"square", -3, 3, false, {1e-7, 1e-6}},
    [UNARY_NEG] = {"neg", -3, 3, false, {1e-7, 1e-6}},
    [UNARY_ABS] = {"abs", -3, 3, true, {1e-7, 1e-6}},
};

#define GELU_C 0.7978845608028654 // sqrt(2 / pi)

static double sigmoid(double x) { return 1 / (1 + exp(-x)); }

static double ref_unary_op(UnaryOp op, double x) {
    switch (op) {
    case UNARY_EXP: return exp(x);
    case UNARY_LOG: return log(x);
    case UNARY_SQRT: return sqrt(x);
    case UNARY_TANH: return tanh(x);
    case UNARY_SIGMOID: return sigmoid(x);
    case UNARY_RELU: return x > 0 ? x : 0;
    case UNARY_SILU: return x * sigmoid(x);
    case UNARY_GELU_TANH: return 0.5 * x * (1 + tanh(GELU_C * (x + 0.044715 * x * x * x)));
    case UNARY_SQUARE: return x * x;
    case UNARY_NEG: return -x;
    case UNARY_ABS: return fabs(x);
    case UNARY_OP_COUNT: break;
    }
    DMDR_FATAL("unknown unary op %d", (int)op);
}

// f'(x)
static double ref_unary_grad(UnaryOp op, double x) {
    switch (op) {
    case UNARY_EXP: return exp(x);
    case UNARY_LOG: return 1 / x;
    case UNARY_SQRT: return 0.5 / sqrt(x);
    case UNARY_TANH: return 1 - tanh(x) * tanh(x);
    case UNARY_SIGMOID: return sigmoid(x) * (1 - sigmoid(x));
    case UNARY_RELU: return x > 0;
    case UNARY_SILU: return sigmoid(x) * (1 + x * (1 - sigmoid(x)));
    case UNARY_GELU_TANH: {
        double t = tanh(GELU_C * (x + 0.044715 * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
    }
    case UNARY_SQUARE: return 2 * x;
    case UNARY_NEG: return -1;
    case UNARY_ABS: return x > 0 ? 1 : -1;
    case UNARY_OP_COUNT: break;
    }
    DMDR_FATAL("unknown unary op %d", (int)op);
}

enum { UN_X, UN_Y };                       // forward
enum { UN_FX = UN_Y, UN_DY, UN_DX };       // backward: fx = f(x), the kernel may read it

static void call_unary(const Backend *be, void *const *buf, const KernelCase *c) {
    const ElementwiseParams *p = &c->p.elementwise;
    be->unary(be, (UnaryOp)p->op, buf[UN_Y], buf[UN_X], p->n);
}

static void ref_unary(void *const *host, const KernelCase *c) {
    const ElementwiseParams *p = &c->p.elementwise;
    const float *x = host[UN_X];
    float *y = host[UN_Y];
    for (int64_t i = 0; i < p->n; i++) y[i] = (float)ref_unary_op((UnaryOp)p->op, x[i]);
}

const KernelOp kop_unary = {"unary", FAMILY, call_unary, ref_unary, NULL, NULL};

static void call_unary_backward(const Backend *be, void *const *buf, const KernelCase *c) {
    const ElementwiseParams *p = &c->p.elementwise;
    be->unary_backward(be, (UnaryOp)p->op, buf[UN_DX], buf[UN_X], buf[UN_FX], buf[UN_DY], p->n);
}

static void ref_unary_backward(void *const *host, const KernelCase *c) {
    const ElementwiseParams *p = &c->p.elementwise;
    const float *x = host[UN_X], *dy = host[UN_DY];
    float *dx = host[UN_DX];
    for (int64_t i = 0; i < p->n; i++)
        dx[i] = (float)(dy[i] * ref_unary_grad((UnaryOp)p->op, x[i]));
}

// f(x), rounded to float: what the forward gives the backward
static void unary_fx(void *const *host, const KernelCase *c) {
    void *const forward[2] = {[UN_X] = host[UN_X], [UN_Y] = host[UN_FX]};
    ref_unary(forward, c);
}

static void prepare_unary_backward(const Backend *be, void *const *buf, const KernelCase *c) {
    be->unary(be, (UnaryOp)c->p.elementwise.op, buf[UN_FX], buf[UN_X], c->p.elementwise.n);
}

const KernelOp kop_unary_backward = {"unary_backward", FAMILY, call_unary_backward,
                                    ref_unary_backward, unary_fx, prepare_unary_backward};

// Forward reads x and writes y. The backward reads x and dy and writes dx: none of the
// derivatives needs y, so a kernel that reads it too pays for it in the bench's figure.
KernelCase *case_unary(CaseList *list, const char *name, UnaryOp op, int64_t n, bool backward) {
    const UnaryCase *uc = &unary_cases[op];
    DMDR_CHECK(op >= 0 && op < UNARY_OP_COUNT && uc->name, "unary op %d has no case", (int)op);
    KernelCase *c = case_new(list, backward ? &kop_unary_backward : &kop_unary, name);
    c->p.elementwise = (ElementwiseParams){.op = op, .n = n};
    CaseBuffer *x = case_in(c, uc->name, n, uc->lo, uc->hi);
    if (uc->kink_at_zero) {
        x->fill = FILL_NONZERO;
        x->gap = 1e-3f;
    }
    if (backward) {
        case_in(c, "fx", n, -1, 1);
        case_in(c, "unary dy", n, -1, 1);
        case_out(c, "dx", n, uc->tol);
    } else {
        case_out(c, "y", n, uc->tol);
    }
    c->bytes = 4.0 * (double)n * (backward ? 3.0 : 2.0);
    case_shape(c, "n=%lld", (long long)n);
    return c;
}

// ---- with a scalar ----------------------------------------------------------------------------

typedef struct {
    ScalarOp op;
    const char *name;
    float s, lo, hi; // inputs in [lo, hi]; max and min get exact ties x == s
    CaseTol tol;     // pow may be a fast exp(s log x): rtol 1e-5; the others round once: 1e-6
} ScalarCase;

static const ScalarCase scalar_cases[] = {
    {SCALAR_ADD, "add 0.75", 0.75f, -3, 3, {1e-7, 1e-6}},
    {SCALAR_MUL, "mul -1.25", -1.25f, -3, 3, {1e-7, 1e-6}},
    {SCALAR_POW, "pow 2.5", 2.5f, 0.05f, 4, {1e-6, 1e-5}},
    {SCALAR_POW, "pow -0.5", -0.5f, 0.05f, 4, {1e-6, 1e-5}},
    {SCALAR_POW, "pow 2, negative base", 2.0f, -3, 3, {1e-6, 1e-5}},
    {SCALAR_POW, "pow 3, negative base", 3.0f, -2, 2, {1e-6, 1e-5}},
    {SCALAR_MAX, "max 0.3", 0.3f, -1, 1, {1e-7, 1e-6}},
    {SCALAR_MIN, "min -0.2", -0.2f, -1, 1, {1e-7, 1e-6}},
};

static double ref_scalar_op(ScalarOp op, double x, double s) {
    switch (op) {
    case SCALAR_ADD: return x + s;
    case SCALAR_MUL: return x * s;
    case SCALAR_POW: return pow(x, s);
    case SCALAR_MAX: return x >= s ? x : s;
    case SCALAR_MIN: return x <= s ? x : s;
    case SCALAR_OP_COUNT: break;
    }
    DMDR_FATAL("unknown scalar op %d", (int)op);
}

// d(x op s)/dx; at a tie of max or min the gradient goes to x
static double ref_scalar_grad(ScalarOp op, double x, double s) {
    switch (op) {
    case SCALAR_ADD: return 1;
    case SCALAR_MUL: return s;
    case SCALAR_POW: return s * pow(x, s - 1);
    case SCALAR_MAX: return x >= s;
    case SCALAR_MIN: return x <= s;
    case SCALAR_OP_COUNT: break;
    }
    DMDR_FATAL("unknown scalar op %d", (int)op);
}

enum { SC_X, SC_Y };                 // forward
enum { SC_DY = SC_Y, SC_DX };        // backward

static void call_scalar(const Backend *be, void *const *buf, const KernelCase *c) {
    const ElementwiseParams *p = &c->p.elementwise;
    be->scalar(be, (ScalarOp)p->op, buf[SC_Y], buf[SC_X], p->s, p->n);
}

static void ref_scalar(void *const *host, const KernelCase *c) {
    const ElementwiseParams *p = &c->p.elementwise;
    const float *x = host[SC_X];
    float *y = host[SC_Y];
    for (int64_t i = 0; i < p->n; i++) y[i] = (float)ref_scalar_op((ScalarOp)p->op, x[i], p->s);
}

// every 7th x exactly s: the ties of max and min
static void scalar_ties(void *const *host, const KernelCase *c) {
    float *x = host[SC_X];
    for (int64_t i = 0; i < c->p.elementwise.n; i += 7) x[i] = c->p.elementwise.s;
}

const KernelOp kop_scalar = {"scalar", FAMILY, call_scalar, ref_scalar, scalar_ties, NULL};

static void call_scalar_backward(const Backend *be, void *const *buf, const KernelCase *c) {
    const ElementwiseParams *p = &c->p.elementwise;
    be->scalar_backward(be, (ScalarOp)p->op, buf[SC_DX], buf[SC_X], p->s, buf[SC_DY], p->n);
}

static void ref_scalar_backward(void *const *host, const KernelCase *c) {
    const ElementwiseParams *p = &c->p.elementwise;
    const float *x = host[SC_X], *dy = host[SC_DY];
    float *dx = host[SC_DX];
    for (int64_t i = 0; i < p->n; i++)
        dx[i] = (float)(dy[i] * ref_scalar_grad((ScalarOp)p->op, x[i], p->s));
}

const KernelOp kop_scalar_backward = {"scalar_backward", FAMILY, call_scalar_backward,
                                     ref_scalar_backward, scalar_ties, NULL};

static void case_scalar(CaseList *list, const ScalarCase *sc, int64_t n, bool backward) {
    KernelCase *c = case_new(list, backward ? &kop_scalar_backward : &kop_scalar, sc->name);
    c->p.elementwise = (ElementwiseParams){.op = sc->op, .n = n, .s = sc->s};
    case_in(c, sc->name, n, sc->lo, sc->hi);
    if (backward) case_in(c, "scalar dy", n, -1, 1);
    case_out(c, backward ? "dx" : "y", n, sc->tol);
    c->bytes = 4.0 * (double)n * (backward ? 3.0 : 2.0);
    case_shape(c, "n=%lld", (long long)n);
}

// ---- test cases -----------------------------------------------------------------------------

static void binary_test_cases(CaseList *list, bool backward) {
    static const struct {
        const char *name;
        int64_t out[KERNEL_MAX_DIMS], a[KERNEL_MAX_DIMS], b[KERNEL_MAX_DIMS];
    } shapes[] = {
        {"same shape", {1, 1, 37, 129}, {1, 1, 37, 129}, {1, 1, 37, 129}},
        {"scalar b", {1, 1, 7, 13}, {1, 1, 7, 13}, {1, 1, 1, 1}},
        {"row bias (n,c)+(c)", {1, 1, 13, 37}, {1, 1, 13, 37}, {1, 1, 1, 37}},
        {"column (n,c)+(n,1)", {1, 1, 13, 37}, {1, 1, 13, 37}, {1, 1, 13, 1}},
        {"middle dim (a,1,c)+(a,b,c)", {1, 5, 9, 7}, {1, 5, 1, 7}, {1, 5, 9, 7}},
        {"both sides (a,1)+(1,b)", {1, 1, 13, 7}, {1, 1, 13, 1}, {1, 1, 1, 7}},
        {"channel bias (n,c,h,w)+(c,1,1)", {2, 3, 5, 7}, {2, 3, 5, 7}, {1, 3, 1, 1}},
        {"large row bias", {1, 1, 129, 1031}, {1, 1, 129, 1031}, {1, 1, 1, 1031}},
    };
    static const char *const alias_names[3] = {"", ", y == a", ", y == b"};
    static const char *const output_names[4] = {"", " (db NULL)", " (da NULL)", ""};
    for (int op = 0; op < BINARY_OP_COUNT; op++) {
        for (size_t ci = 0; ci < sizeof shapes / sizeof shapes[0]; ci++) {
            int64_t n = shape4_numel(shapes[ci].out);
            // Forward: apart, then in place over each full-shaped input. Backward: both
            // outputs, and each alone (the other NULL) on the first shape.
            for (int v = 0; v < 3; v++) {
                int variant = backward ? 3 - v : v;
                if (backward ? (v > 0 && ci > 0)
                             : (v > 0 && shape4_numel(v == 1 ? shapes[ci].a : shapes[ci].b) != n))
                    continue;
                char name[48];
                snprintf(name, sizeof name, "%s, %s%s", binary_names[op], shapes[ci].name,
                         backward ? output_names[variant] : alias_names[variant]);
                case_binary(list, name, (BinaryOp)op, shapes[ci].out, shapes[ci].a,
                            shapes[ci].b, backward, variant);
            }
        }
    }
}

void elementwise_test_cases(CaseList *list) {
    binary_test_cases(list, false);
    binary_test_cases(list, true);
    for (int backward = 0; backward < 2; backward++) {
        for (int op = 0; op < UNARY_OP_COUNT; op++)
            for (int si = 0; si < SIZE_COUNT; si++)
                case_unary(list, unary_cases[op].name, (UnaryOp)op, elementwise_sizes[si],
                           backward);
        for (size_t ci = 0; ci < sizeof scalar_cases / sizeof scalar_cases[0]; ci++)
            for (int si = 0; si < SIZE_COUNT; si++)
                case_scalar(list, &scalar_cases[ci], elementwise_sizes[si], backward);
    }
}
