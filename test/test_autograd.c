// The autograd check suite: a finite-difference gradient check of every op in autograd/ops.h
// with respect to each of its differentiable inputs, then the engine's own behaviour
// (accumulation, broadcasting, retained and detached tensors, no-grad scopes, the lifetime of
// graphs, gradients and scope memory).
//
// Inputs are small, odd-sized CPU tensors drawn from the run's seed (test_seed_for(name)),
// so a failure names the check and DMDR_TEST_SEED replays it.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/autograd.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "kernels/bf16.h"
#include "test/test_util.h"

// Values near a kink stay this far from it: several finite-difference steps, so that
// x +- h never straddles the kink.
#define KINK_GAP 0.05f
#define COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

// ---- building and checking one op ----------------------------------------------------------

// How a check draws its input values.
typedef struct {
    float lo, hi;       // uniform range; unset (equal) means [-1, 1]
    const float *kinks; // points every value keeps `gap` away from (relu, abs, clamp, div)
    int kink_count;
    float gap; // unset means KINK_GAP
    // every value also keeps `gap` from every other one (max, maximum); the range must leave
    // room: 2 * gap * (number of values) < hi - lo
    bool distinct;
} Draw;

// The inputs of one check: their shapes, values and which of them are differentiated.
typedef struct {
    int count;
    Shape shape[AUTOGRAD_MAX_INPUTS];
    Draw draw;
    unsigned frozen; // bit i: input i does not require a gradient
} CheckSpec;

// The op-specific arguments of a check; each run_* function reads the fields its op takes.
typedef struct {
    Tensor *(*unary)(Tensor *x);
    Tensor *(*binary)(Tensor *a, Tensor *b);
    Tensor *(*scalar_op)(Tensor *x, float s);
    Tensor *(*reduce)(Tensor *x, unsigned dims_mask, bool keepdim);
    float scalar, lo, hi, eps;
    unsigned dims_mask;
    bool keepdim;
    bool with_bias; // linear, conv2d: inputs are (x, weight, bias) rather than (x, weight)
    bool affine;    // layernorm, groupnorm: inputs are (x, weight, bias) rather than (x)
    int dim, dim1, count;
    int64_t start, len;
    int perm[TENSOR_MAX_DIMS];
    Shape shape; // reshape and expand target
    int stride, pad, groups, heads, factor;
    Tensor *index; // I32 rows or class targets: an input of the op, but not a differentiable one
} OpArgs;

// spec -> out[0..spec->count): CPU leaves of spec->shape[i], their values drawn from the
// stream of `name`
static void make_inputs(const char *name, const CheckSpec *spec, Tensor **out) {
    const Draw *d = &spec->draw;
    float lo = d->lo, hi = d->hi;
    if (lo == hi) lo = -1.0f, hi = 1.0f;
    float gap = d->gap > 0.0f ? d->gap : KINK_GAP;
    int64_t total = 0;
    for (int i = 0; i < spec->count; i++) total += shape_numel(spec->shape[i]);

    // The points to avoid: the kinks, then (distinct) every value drawn so far.
    float *values = malloc((size_t)total * sizeof *values);
    float *avoid = malloc((size_t)(d->kink_count + total) * sizeof *avoid);
    ck_assert(values && avoid);
    for (int k = 0; k < d->kink_count; k++) avoid[k] = d->kinks[k];
    uint64_t seed = test_seed_for(name);
    if (!d->distinct) {
        test_fill_away_from(values, total, seed, lo, hi, avoid, d->kink_count, gap);
    } else {
        for (int64_t j = 0; j < total; j++) {
            int avoid_count = d->kink_count + (int)j;
            test_fill_away_from(&values[j], 1, seed + (uint64_t)j, lo, hi, avoid, avoid_count, gap);
            avoid[avoid_count] = values[j];
        }
    }

    int64_t offset = 0;
    for (int i = 0; i < spec->count; i++) {
        out[i] = tensor_from_floats(spec->shape[i], values + offset, DEVICE_CPU);
        tensor_set_requires_grad(out[i], !((spec->frozen >> i) & 1u));
        offset += shape_numel(spec->shape[i]);
    }
    free(values);
    free(avoid);
}

// Gradchecks fn(inputs, args) with respect to every input spec does not freeze, at the
// default step and tolerances (fp32 finite differences with h = 1e-2 need no looser ones here).
static void check_op(const char *name, GradcheckFn fn, OpArgs *args, const CheckSpec *spec) {
    Tensor *inputs[AUTOGRAD_MAX_INPUTS];
    make_inputs(name, spec, inputs);
    GradcheckOptions opt = gradcheck_defaults();
    opt.seed = ~test_seed_for(name); // contraction weights: a stream apart from the inputs'
    char report[512] = "";
    bool ok = gradcheck(fn, args, inputs, spec->count, &opt, report, sizeof report);
    ck_assert_msg(ok, "gradcheck %s: %s", name, report);
}

// An I32 CPU tensor of n indices below `below`, from the stream of `name`.
static Tensor *make_indices(const char *name, int64_t n, int32_t below) {
    int32_t values[64];
    ck_assert(n <= COUNT_OF(values));
    test_fill_ints(values, n, test_seed_for(name), below);
    return tensor_from_ints(shape1(n), values, DEVICE_CPU);
}

// ---- the functions under check: inputs and args -> the op's output -------------------------

static Tensor *run_unary(Tensor *const *in, void *ctx) {
    return ((OpArgs *)ctx)->unary(in[0]);
}
static Tensor *run_binary(Tensor *const *in, void *ctx) {
    return ((OpArgs *)ctx)->binary(in[0], in[1]);
}
static Tensor *run_scalar(Tensor *const *in, void *ctx) {
    const OpArgs *a = ctx;
    return a->scalar_op(in[0], a->scalar);
}
static Tensor *run_clamp(Tensor *const *in, void *ctx) {
    const OpArgs *a = ctx;
    return op_clamp(in[0], a->lo, a->hi);
}
static Tensor *run_reduce(Tensor *const *in, void *ctx) {
    const OpArgs *a = ctx;
    return a->reduce(in[0], a->dims_mask, a->keepdim);
}
static Tensor *run_reshape(Tensor *const *in, void *ctx) {
    return op_reshape(in[0], ((OpArgs *)ctx)->shape);
}
static Tensor *run_permute(Tensor *const *in, void *ctx) {
    return op_permute(in[0], ((OpArgs *)ctx)->perm);
}
static Tensor *run_transpose(Tensor *const *in, void *ctx) {
    const OpArgs *a = ctx;
    return op_transpose(in[0], a->dim, a->dim1);
}
static Tensor *run_expand(Tensor *const *in, void *ctx) {
    return op_expand(in[0], ((OpArgs *)ctx)->shape);
}
static Tensor *run_narrow(Tensor *const *in, void *ctx) {
    const OpArgs *a = ctx;
    return op_narrow(in[0], a->dim, a->start, a->len);
}
static Tensor *run_concat(Tensor *const *in, void *ctx) {
    const OpArgs *a = ctx;
    return op_concat(in, a->count, a->dim);
}
// The pieces reassembled in reverse order, so each piece's gradient must land in its own slot.
static Tensor *run_chunk(Tensor *const *in, void *ctx) {
    const OpArgs *a = ctx;
    Tensor *pieces[8], *reversed[8];
    ck_assert(a->count <= COUNT_OF(pieces));
    op_chunk(in[0], a->count, a->dim, pieces);
    for (int i = 0; i < a->count; i++) reversed[i] = pieces[a->count - 1 - i];
    return op_concat(reversed, a->count, a->dim);
}
// Only the first and last pieces are used: the middle ones must get a zero gradient.
static Tensor *run_chunk_partial(Tensor *const *in, void *ctx) {
    const OpArgs *a = ctx;
    Tensor *pieces[8];
    ck_assert(a->count <= COUNT_OF(pieces));
    op_chunk(in[0], a->count, a->dim, pieces);
    return op_mul(pieces[0], pieces[a->count - 1]);
}
static Tensor *run_linear(Tensor *const *in, void *ctx) {
    return op_linear(in[0], in[1], ((OpArgs *)ctx)->with_bias ? in[2] : NULL);
}
static Tensor *run_layernorm(Tensor *const *in, void *ctx) {
    const OpArgs *a = ctx;
    return op_layernorm(in[0], a->affine ? in[1] : NULL, a->affine ? in[2] : NULL, a->eps);
}
static Tensor *run_groupnorm(Tensor *const *in, void *ctx) {
    const OpArgs *a = ctx;
    return op_groupnorm(in[0], a->groups, a->affine ? in[1] : NULL, a->affine ? in[2] : NULL,
                        a->eps);
}
static Tensor *run_embedding(Tensor *const *in, void *ctx) {
    return op_embedding(in[0], ((OpArgs *)ctx)->index);
}
static Tensor *run_cross_entropy(Tensor *const *in, void *ctx) {
    return op_cross_entropy(in[0], ((OpArgs *)ctx)->index);
}
static Tensor *run_conv2d(Tensor *const *in, void *ctx) {
    const OpArgs *a = ctx;
    return op_conv2d(in[0], in[1], a->with_bias ? in[2] : NULL, a->stride, a->pad);
}
static Tensor *run_upsample(Tensor *const *in, void *ctx) {
    return op_upsample_nearest(in[0], ((OpArgs *)ctx)->factor);
}
static Tensor *run_avgpool(Tensor *const *in, void *ctx) {
    return op_avgpool(in[0], ((OpArgs *)ctx)->factor);
}
static Tensor *run_attention(Tensor *const *in, void *ctx) {
    (void)ctx;
    return op_attention(in[0], in[1], in[2]);
}
static Tensor *run_attention_qkv(Tensor *const *in, void *ctx) {
    return op_attention_qkv(in[0], ((OpArgs *)ctx)->heads);
}

// ---- elementwise -----------------------------------------------------------------------------

static const float zero_kink[] = {0.0f};

static const struct {
    const char *name;
    Tensor *(*op)(Tensor *x);
    Draw draw;
} unary_cases[] = {
    {"exp", op_exp, {.lo = -2.0f, .hi = 2.0f}},
    {"log", op_log, {.lo = 0.5f, .hi = 3.0f}}, // inside the domain, away from the pole
    {"sqrt", op_sqrt, {.lo = 0.5f, .hi = 3.0f}},
    {"tanh", op_tanh, {.lo = -2.0f, .hi = 2.0f}},
    {"sigmoid", op_sigmoid, {.lo = -4.0f, .hi = 4.0f}},
    {"relu", op_relu, {.lo = -2.0f, .hi = 2.0f, .kinks = zero_kink, .kink_count = 1}},
    {"silu", op_silu, {.lo = -4.0f, .hi = 4.0f}},
    {"gelu_tanh", op_gelu_tanh, {.lo = -4.0f, .hi = 4.0f}},
    {"square", op_square, {.lo = -2.0f, .hi = 2.0f}},
    {"neg", op_neg, {.lo = -2.0f, .hi = 2.0f}},
    {"abs", op_abs, {.lo = -2.0f, .hi = 2.0f, .kinks = zero_kink, .kink_count = 1}},
};

START_TEST(test_unary) {
    OpArgs args = {.unary = unary_cases[_i].op};
    check_op(unary_cases[_i].name, run_unary, &args,
             &(CheckSpec){.count = 1, .shape = {shape3(2, 3, 7)}, .draw = unary_cases[_i].draw});
}
END_TEST

static const struct {
    const char *name;
    Tensor *(*op)(Tensor *a, Tensor *b);
    Draw draw;
} binary_cases[] = {
    {"add", op_add, {.lo = -1.0f, .hi = 1.0f}},
    {"sub", op_sub, {.lo = -1.0f, .hi = 1.0f}},
    {"mul", op_mul, {.lo = -1.0f, .hi = 1.0f}},
    // |b| >= 0.5 keeps a / b and its derivatives (up to 1/b^3) tame for finite differences
    {"div", op_div, {.lo = -2.0f, .hi = 2.0f, .kinks = zero_kink, .kink_count = 1, .gap = 0.5f}},
    // no a[i] within a step of the b it meets, or a +- h would swap which one wins
    {"maximum", op_maximum, {.lo = -4.0f, .hi = 4.0f, .distinct = true}},
    {"minimum", op_minimum, {.lo = -4.0f, .hi = 4.0f, .distinct = true}},
};

// Broadcasting variants (NumPy rules): the smaller operand's gradient is a sum over the
// dims it was repeated along.
static const struct {
    const char *name;
    Shape a, b;
} broadcast_cases[] = {
    {"same shape (3,5) (3,5)", {2, {3, 5}}, {2, {3, 5}}},
    {"row bias (3,5) (5)", {2, {3, 5}}, {1, {5}}},
    {"column (3,5) (3,1)", {2, {3, 5}}, {2, {3, 1}}},
    {"outer (3,1) (1,5)", {2, {3, 1}}, {2, {1, 5}}},
    {"scalar-shaped (3,5) (1)", {2, {3, 5}}, {1, {1}}},
    {"scalar-shaped first (1) (3,5)", {1, {1}}, {2, {3, 5}}},
    {"leading dims (5) (2,3,5)", {1, {5}}, {3, {2, 3, 5}}},
    {"3-d (2,3,7) (3,1)", {3, {2, 3, 7}}, {2, {3, 1}}},
};

// _i enumerates (op, broadcast variant) pairs.
START_TEST(test_binary) {
    int op = _i / COUNT_OF(broadcast_cases), variant = _i % COUNT_OF(broadcast_cases);
    char name[128];
    snprintf(name, sizeof name, "%s %s", binary_cases[op].name, broadcast_cases[variant].name);
    OpArgs args = {.binary = binary_cases[op].op};
    check_op(name, run_binary, &args,
             &(CheckSpec){.count = 2,
                          .shape = {broadcast_cases[variant].a, broadcast_cases[variant].b},
                          .draw = binary_cases[op].draw});
}
END_TEST

static const struct {
    const char *name;
    Tensor *(*op)(Tensor *x, float s);
    float s;
    Draw draw;
} scalar_cases[] = {
    {"add_scalar 0.7", op_add_scalar, 0.7f, {.lo = -1.0f, .hi = 1.0f}},
    {"mul_scalar -1.3", op_mul_scalar, -1.3f, {.lo = -1.0f, .hi = 1.0f}},
    {"mul_scalar 0", op_mul_scalar, 0.0f, {.lo = -1.0f, .hi = 1.0f}},
    // pow on positive bases only, where x^p is defined for every p
    {"pow_scalar 2.5", op_pow_scalar, 2.5f, {.lo = 0.5f, .hi = 2.0f}},
    {"pow_scalar 3", op_pow_scalar, 3.0f, {.lo = 0.5f, .hi = 2.0f}},
    {"pow_scalar -0.5", op_pow_scalar, -0.5f, {.lo = 0.5f, .hi = 2.0f}},
    {"pow_scalar 0.5", op_pow_scalar, 0.5f, {.lo = 0.5f, .hi = 2.0f}},
};

START_TEST(test_scalar) {
    OpArgs args = {.scalar_op = scalar_cases[_i].op, .scalar = scalar_cases[_i].s};
    check_op(scalar_cases[_i].name, run_scalar, &args,
             &(CheckSpec){.count = 1, .shape = {shape2(3, 5)}, .draw = scalar_cases[_i].draw});
}
END_TEST

START_TEST(test_clamp) {
    // values on both sides of both bounds, none within a step of one
    static const float bounds[] = {-0.5f, 0.4f};
    OpArgs args = {.lo = bounds[0], .hi = bounds[1]};
    check_op("clamp [-0.5, 0.4]", run_clamp, &args,
             &(CheckSpec){.count = 1,
                          .shape = {shape3(2, 3, 7)},
                          .draw = {.lo = -1.0f, .hi = 1.0f, .kinks = bounds, .kink_count = 2}});
}
END_TEST

// ---- reductions ----------------------------------------------------------------------------

static const struct {
    Shape shape;
    unsigned mask;
} reduce_cases[] = {
    {{2, {3, 5}}, 0x1},       {{2, {3, 5}}, 0x2},       {{2, {3, 5}}, 0x3},
    {{3, {2, 3, 7}}, 0x1},    {{3, {2, 3, 7}}, 0x2},    {{3, {2, 3, 7}}, 0x4},
    {{3, {2, 3, 7}}, 0x5},    {{3, {2, 3, 7}}, 0x6},    {{3, {2, 3, 7}}, 0x7},
    {{4, {2, 3, 2, 5}}, 0xD}, {{4, {2, 3, 2, 5}}, 0x6},
};
#define REDUCE_LOOP_COUNT (2 * COUNT_OF(reduce_cases)) // each case without and with keepdim

// i enumerates (reduce case, keepdim) pairs.
static void check_reduce(const char *op_name, Tensor *(*reduce)(Tensor *, unsigned, bool), int i,
                         Draw draw) {
    Shape shape = reduce_cases[i / 2].shape;
    unsigned mask = reduce_cases[i / 2].mask;
    bool keepdim = i % 2;
    char name[128], shape_text[64];
    snprintf(name, sizeof name, "%s %s mask 0x%x keepdim %d", op_name,
             shape_str(shape, shape_text, sizeof shape_text), mask, keepdim);
    OpArgs args = {.reduce = reduce, .dims_mask = mask, .keepdim = keepdim};
    check_op(name, run_reduce, &args, &(CheckSpec){.count = 1, .shape = {shape}, .draw = draw});
}

START_TEST(test_sum) {
    check_reduce("sum", op_sum, _i, (Draw){.lo = -1.0f, .hi = 1.0f});
}
END_TEST

START_TEST(test_mean) {
    check_reduce("mean", op_mean, _i, (Draw){.lo = -1.0f, .hi = 1.0f});
}
END_TEST

// No two values within a step of each other, or x +- h would change which one is the maximum.
START_TEST(test_max) {
    check_reduce("max", op_max, _i, (Draw){.lo = -4.0f, .hi = 4.0f, .distinct = true});
}
END_TEST

START_TEST(test_sum_all) {
    OpArgs args = {.unary = op_sum_all};
    check_op("sum_all", run_unary, &args, &(CheckSpec){.count = 1, .shape = {shape3(2, 3, 7)}});
}
END_TEST

START_TEST(test_mean_all) {
    OpArgs args = {.unary = op_mean_all};
    check_op("mean_all", run_unary, &args, &(CheckSpec){.count = 1, .shape = {shape3(2, 3, 7)}});
}
END_TEST

// ---- shape ---------------------------------------------------------------------------------

START_TEST(test_reshape) {
    OpArgs args = {.shape = shape2(6, 7)};
    check_op("reshape (2,3,7) -> (6,7)", run_reshape, &args,
             &(CheckSpec){.count = 1, .shape = {shape3(2, 3, 7)}});
    args.shape = shape4(3, 1, 7, 2);
    check_op("reshape (2,3,7) -> (3,1,7,2)", run_reshape, &args,
             &(CheckSpec){.count = 1, .shape = {shape3(2, 3, 7)}});
}
END_TEST

START_TEST(test_permute) {
    OpArgs args = {.perm = {2, 0, 1}};
    check_op("permute (2,3,7) by (2,0,1)", run_permute, &args,
             &(CheckSpec){.count = 1, .shape = {shape3(2, 3, 7)}});
    OpArgs nhwc = {.perm = {0, 2, 3, 1}};
    check_op("permute (2,3,4,5) by (0,2,3,1)", run_permute, &nhwc,
             &(CheckSpec){.count = 1, .shape = {shape4(2, 3, 4, 5)}});
}
END_TEST

START_TEST(test_transpose) {
    OpArgs args = {.dim = 0, .dim1 = 1};
    check_op("transpose (3,5) 0 1", run_transpose, &args,
             &(CheckSpec){.count = 1, .shape = {shape2(3, 5)}});
    args.dim1 = 2;
    check_op("transpose (2,3,7) 0 2", run_transpose, &args,
             &(CheckSpec){.count = 1, .shape = {shape3(2, 3, 7)}});
    args.dim = 1;
    check_op("transpose (2,3,7) 1 2", run_transpose, &args,
             &(CheckSpec){.count = 1, .shape = {shape3(2, 3, 7)}});
}
END_TEST

START_TEST(test_expand) {
    static const struct {
        const char *name;
        Shape from, to;
    } cases[] = {
        {"expand (3,1) -> (3,5)", {2, {3, 1}}, {2, {3, 5}}},
        {"expand (5) -> (2,3,5)", {1, {5}}, {3, {2, 3, 5}}},
        {"expand (1) -> (3,5)", {1, {1}}, {2, {3, 5}}},
        {"expand (2,1,5) -> (2,3,5)", {3, {2, 1, 5}}, {3, {2, 3, 5}}},
    };
    for (int i = 0; i < COUNT_OF(cases); i++) {
        OpArgs args = {.shape = cases[i].to};
        check_op(cases[i].name, run_expand, &args,
                 &(CheckSpec){.count = 1, .shape = {cases[i].from}});
    }
}
END_TEST

START_TEST(test_narrow) {
    static const struct {
        const char *name;
        int dim;
        int64_t start, len;
    } cases[] = {
        {"narrow (2,3,7) dim 2 [1, 5)", 2, 1, 4},
        {"narrow (2,3,7) dim 1 [2, 3)", 1, 2, 1},
        {"narrow (2,3,7) dim 0 [1, 2)", 0, 1, 1},
    };
    for (int i = 0; i < COUNT_OF(cases); i++) {
        OpArgs args = {.dim = cases[i].dim, .start = cases[i].start, .len = cases[i].len};
        check_op(cases[i].name, run_narrow, &args,
                 &(CheckSpec){.count = 1, .shape = {shape3(2, 3, 7)}});
    }
}
END_TEST

START_TEST(test_concat) {
    OpArgs args = {.count = 3, .dim = 1};
    check_op(
        "concat (2,3,7) (2,1,7) (2,2,7) dim 1", run_concat, &args,
        &(CheckSpec){.count = 3, .shape = {shape3(2, 3, 7), shape3(2, 1, 7), shape3(2, 2, 7)}});
    args = (OpArgs){.count = 2, .dim = 0};
    check_op("concat (1,5) (3,5) dim 0", run_concat, &args,
             &(CheckSpec){.count = 2, .shape = {shape2(1, 5), shape2(3, 5)}});
    args = (OpArgs){.count = 2, .dim = 1};
    check_op("concat (3,2) (3,5) dim 1", run_concat, &args,
             &(CheckSpec){.count = 2, .shape = {shape2(3, 2), shape2(3, 5)}});
}
END_TEST

START_TEST(test_chunk) {
    OpArgs args = {.count = 3, .dim = 1};
    check_op("chunk (2,6,5) into 3 along dim 1", run_chunk, &args,
             &(CheckSpec){.count = 1, .shape = {shape3(2, 6, 5)}});
    args = (OpArgs){.count = 3, .dim = 2};
    check_op("chunk (2,5,9) into 3 along dim 2, middle piece unused", run_chunk_partial, &args,
             &(CheckSpec){.count = 1, .shape = {shape3(2, 5, 9)}});
}
END_TEST

// ---- matmul and linear ---------------------------------------------------------------------

// a (m, k) @ b (k, n), batched, and with b shared across the batch (its gradient sums over
// the batch); frozen: the backward computes only the gradient asked for, which must still
// be right alone
static const struct {
    const char *name;
    Shape a, b;
    unsigned frozen;
} matmul_cases[] = {
    {"matmul (3,5) @ (5,4)", {2, {3, 5}}, {2, {5, 4}}, 0},
    {"matmul (2,3,5) @ (2,5,4)", {3, {2, 3, 5}}, {3, {2, 5, 4}}, 0},
    {"matmul (2,3,5) @ shared (5,4)", {3, {2, 3, 5}}, {2, {5, 4}}, 0},
    {"matmul (3,5) @ (5,4), b frozen", {2, {3, 5}}, {2, {5, 4}}, 0x2},
    {"matmul (2,3,5) @ shared (5,4), a frozen", {3, {2, 3, 5}}, {2, {5, 4}}, 0x1},
};

START_TEST(test_matmul) {
    OpArgs args = {.binary = op_matmul};
    check_op(matmul_cases[_i].name, run_binary, &args,
             &(CheckSpec){.count = 2,
                          .shape = {matmul_cases[_i].a, matmul_cases[_i].b},
                          .frozen = matmul_cases[_i].frozen});
}
END_TEST

// x (..., 5), weight (4, 5), bias (4) or none
static const struct {
    const char *name;
    Shape x;
    bool with_bias;
} linear_cases[] = {
    {"linear (3,5) (4,5) (4)", {2, {3, 5}}, true},
    {"linear (3,5) (4,5) no bias", {2, {3, 5}}, false},
    {"linear (2,3,5) (4,5) (4)", {3, {2, 3, 5}}, true},
};

START_TEST(test_linear) {
    OpArgs args = {.with_bias = linear_cases[_i].with_bias};
    check_op(linear_cases[_i].name, run_linear, &args,
             &(CheckSpec){.count = args.with_bias ? 3 : 2,
                          .shape = {linear_cases[_i].x, shape2(4, 5), shape1(4)}});
}
END_TEST

// ---- neural-network primitives -------------------------------------------------------------

// softmax and log_softmax normalise over the last dim: a matrix and a batch of them
static void check_last_dim_op(const char *op_name, Tensor *(*op)(Tensor *x)) {
    static const Shape shapes[] = {{2, {3, 5}}, {3, {2, 3, 7}}};
    for (int i = 0; i < COUNT_OF(shapes); i++) {
        char name[64], shape_text[32];
        snprintf(name, sizeof name, "%s %s", op_name,
                 shape_str(shapes[i], shape_text, sizeof shape_text));
        OpArgs args = {.unary = op};
        check_op(name, run_unary, &args,
                 &(CheckSpec){.count = 1, .shape = {shapes[i]}, .draw = {.lo = -3.0f, .hi = 3.0f}});
    }
}

START_TEST(test_softmax) {
    check_last_dim_op("softmax", op_softmax);
}
END_TEST

START_TEST(test_log_softmax) {
    check_last_dim_op("log_softmax", op_log_softmax);
}
END_TEST

START_TEST(test_layernorm_affine) {
    OpArgs args = {.affine = true, .eps = 1e-5f};
    check_op("layernorm (2,3,7) affine", run_layernorm, &args,
             &(CheckSpec){.count = 3, .shape = {shape3(2, 3, 7), shape1(7), shape1(7)}});
}
END_TEST

START_TEST(test_layernorm_plain) {
    OpArgs args = {.affine = false, .eps = 1e-5f};
    check_op("layernorm (3,7) no affine", run_layernorm, &args,
             &(CheckSpec){.count = 1, .shape = {shape2(3, 7)}});
}
END_TEST

START_TEST(test_groupnorm_affine) {
    OpArgs args = {.affine = true, .groups = 3, .eps = 1e-5f};
    check_op("groupnorm (2,6,3,5) groups 3 affine", run_groupnorm, &args,
             &(CheckSpec){.count = 3, .shape = {shape4(2, 6, 3, 5), shape1(6), shape1(6)}});
}
END_TEST

START_TEST(test_groupnorm_plain) {
    OpArgs args = {.affine = false, .groups = 2, .eps = 1e-5f};
    check_op("groupnorm (2,6,3,5) groups 2 no affine", run_groupnorm, &args,
             &(CheckSpec){.count = 1, .shape = {shape4(2, 6, 3, 5)}});
}
END_TEST

START_TEST(test_embedding) {
    // 9 rows drawn from 7: some rows repeat (their gradients add), some are never read
    OpArgs args = {.index = make_indices("embedding rows", 9, 7)};
    check_op("embedding (7,5) by (9)", run_embedding, &args,
             &(CheckSpec){.count = 1, .shape = {shape2(7, 5)}});
}
END_TEST

START_TEST(test_cross_entropy) {
    OpArgs args = {.index = make_indices("cross_entropy targets", 5, 7)};
    check_op("cross_entropy (5,7)", run_cross_entropy, &args,
             &(CheckSpec){.count = 1, .shape = {shape2(5, 7)}, .draw = {.lo = -3.0f, .hi = 3.0f}});
}
END_TEST

START_TEST(test_mse) {
    OpArgs args = {.binary = op_mse};
    check_op("mse (3,5)", run_binary, &args,
             &(CheckSpec){.count = 2, .shape = {shape2(3, 5), shape2(3, 5)}});
    check_op("mse (2,3,7)", run_binary, &args,
             &(CheckSpec){.count = 2, .shape = {shape3(2, 3, 7), shape3(2, 3, 7)}});
}
END_TEST

// ---- convolution and resampling ------------------------------------------------------------

// x (2,3,7,7) through a (4,3,k,k) kernel
static const struct {
    const char *name;
    Shape weight;
    bool with_bias;
    int stride, pad;
} conv_cases[] = {
    {"conv2d (2,3,7,7) (4,3,3,3) (4) stride 1 pad 0", {4, {4, 3, 3, 3}}, true, 1, 0},
    {"conv2d (2,3,7,7) (4,3,3,3) (4) stride 1 pad 1", {4, {4, 3, 3, 3}}, true, 1, 1},
    {"conv2d (2,3,7,7) (4,3,3,3) (4) stride 2 pad 0", {4, {4, 3, 3, 3}}, true, 2, 0},
    {"conv2d (2,3,7,7) (4,3,3,3) (4) stride 2 pad 1", {4, {4, 3, 3, 3}}, true, 2, 1},
    {"conv2d (2,3,7,7) (4,3,3,3) no bias stride 1 pad 1", {4, {4, 3, 3, 3}}, false, 1, 1},
    {"conv2d (2,3,7,7) (4,3,1,1) (4) pointwise", {4, {4, 3, 1, 1}}, true, 1, 0},
};

START_TEST(test_conv2d) {
    OpArgs args = {.with_bias = conv_cases[_i].with_bias,
                   .stride = conv_cases[_i].stride,
                   .pad = conv_cases[_i].pad};
    check_op(conv_cases[_i].name, run_conv2d, &args,
             &(CheckSpec){.count = args.with_bias ? 3 : 2,
                          .shape = {shape4(2, 3, 7, 7), conv_cases[_i].weight, shape1(4)}});
}
END_TEST

static const struct {
    const char *name;
    GradcheckFn run;
    Shape x;
    int factor;
} resample_cases[] = {
    {"upsample_nearest (2,3,3,5) x2", run_upsample, {4, {2, 3, 3, 5}}, 2},
    {"upsample_nearest (1,2,2,3) x3", run_upsample, {4, {1, 2, 2, 3}}, 3},
    {"avgpool (2,3,6,4) k 2", run_avgpool, {4, {2, 3, 6, 4}}, 2},
    {"avgpool (2,3,6,9) k 3", run_avgpool, {4, {2, 3, 6, 9}}, 3},
};

START_TEST(test_resample) {
    OpArgs args = {.factor = resample_cases[_i].factor};
    check_op(resample_cases[_i].name, resample_cases[_i].run, &args,
             &(CheckSpec){.count = 1, .shape = {resample_cases[_i].x}});
}
END_TEST

// ---- attention -----------------------------------------------------------------------------

START_TEST(test_attention) {
    Shape qkv = shape4(2, 2, 5, 4);
    check_op("attention (2,2,5,4)", run_attention, NULL,
             &(CheckSpec){.count = 3, .shape = {qkv, qkv, qkv}});
}
END_TEST

START_TEST(test_attention_qkv) {
    OpArgs args = {.heads = 2};
    check_op("attention_qkv (2,5,24) heads 2", run_attention_qkv, &args,
             &(CheckSpec){.count = 1, .shape = {shape3(2, 5, 24)}});
    args.heads = 4;
    check_op("attention_qkv (2,5,24) heads 4", run_attention_qkv, &args,
             &(CheckSpec){.count = 1, .shape = {shape3(2, 5, 24)}});
}
END_TEST

// ---- the engine ----------------------------------------------------------------------------

// A CPU tensor of n host values; a leaf that requires a gradient when asked.
static Tensor *leaf_of(Shape shape, const float *values, bool requires_grad) {
    Tensor *t = tensor_from_floats(shape, values, DEVICE_CPU);
    tensor_set_requires_grad(t, requires_grad);
    return t;
}

// ck_assert that t exists and holds the n values of want, each within atol (0: exactly).
static void expect_values(const char *what, const Tensor *t, const float *want, int64_t n,
                          float atol) {
    ck_assert_msg(t != NULL, "%s: missing", what);
    ck_assert_msg(tensor_numel(t) == n, "%s: %lld elements, want %lld", what,
                  (long long)tensor_numel(t), (long long)n);
    float *got = malloc((size_t)n * sizeof *got);
    ck_assert(got);
    tensor_read(t, got);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= atol, "%s: element %lld: got %.9g, want %.9g",
                      what, (long long)i, (double)got[i], (double)want[i]);
    free(got);
}

static void expect_filled(const char *what, const Tensor *t, float value, int64_t n) {
    float want[64];
    ck_assert(n <= COUNT_OF(want));
    for (int64_t i = 0; i < n; i++) want[i] = value;
    expect_values(what, t, want, n, 0.0f);
}

static void expect_untracked(const char *what, const Tensor *t) {
    ck_assert_msg(t->grad_fn == NULL, "%s: recorded a node (%s)", what,
                  t->grad_fn ? t->grad_fn->name : "");
    ck_assert_msg(!t->requires_grad, "%s: requires a gradient", what);
}

START_TEST(test_reused_tensor_accumulates) {
    // y = x*x + x reads x three times; dy/dx = 2x + 1, exact in fp32 at these points
    const float x_values[] = {-1.5f, -0.25f, 0.5f, 2.0f}, want[] = {-2.0f, 0.5f, 2.0f, 5.0f};
    Tensor *x = leaf_of(shape1(4), x_values, true);
    autograd_backward(op_sum_all(op_add(op_mul(x, x), x)), NULL);
    expect_values("d(x*x + x)/dx", x->grad, want, 4, 0.0f);
}
END_TEST

START_TEST(test_broadcast_gradient_is_reduced) {
    // a (3,1) + b (3,4): a's gradient is the upstream gradient summed over each row
    float g[24], row_sums[3] = {0}, column_sums[4] = {0};
    test_fill_uniform(g, 24, test_seed_for("broadcast upstream"), -1.0f, 1.0f);
    Tensor *in[2];
    make_inputs("broadcast inputs", &(CheckSpec){.count = 2, .shape = {shape2(3, 1), shape2(3, 4)}},
                in);
    autograd_backward(op_add(in[0], in[1]), tensor_from_floats(shape2(3, 4), g, DEVICE_CPU));
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) row_sums[r] += g[r * 4 + c];
    ck_assert(in[0]->grad && shape_equal(in[0]->grad->shape, in[0]->shape));
    expect_values("(3,1) operand", in[0]->grad, row_sums, 3, 1e-6f);
    expect_values("(3,4) operand", in[1]->grad, g, 12, 0.0f);

    // c (4) + d (2,3,4): missing leading dims sum away too
    Tensor *cd[2];
    make_inputs("broadcast leading",
                &(CheckSpec){.count = 2, .shape = {shape1(4), shape3(2, 3, 4)}}, cd);
    autograd_backward(op_add(cd[0], cd[1]), tensor_from_floats(shape3(2, 3, 4), g, DEVICE_CPU));
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < 4; c++) column_sums[c] += g[r * 4 + c];
    ck_assert(cd[0]->grad && shape_equal(cd[0]->grad->shape, cd[0]->shape));
    expect_values("(4) operand", cd[0]->grad, column_sums, 4, 1e-6f);
}
END_TEST

START_TEST(test_input_gradient_through_frozen_model) {
    // A reward model's weights are frozen; the image fed to it still gets a gradient.
    float image_values[48], weight_values[48];
    test_fill_uniform(image_values, 48, test_seed_for("image"), 0.0f, 1.0f);
    test_fill_uniform(weight_values, 48, test_seed_for("frozen weight"), -1.0f, 1.0f);
    Tensor *image = leaf_of(shape4(1, 3, 4, 4), image_values, true);
    Tensor *weight = leaf_of(shape4(1, 3, 4, 4), weight_values, false);
    autograd_backward(op_sum_all(op_mul(image, weight)), NULL);
    expect_values("d sum(image * weight) / d image", image->grad, weight_values, 48, 0.0f);
    ck_assert_ptr_null(weight->grad);

    // and through a convolution whose weight and bias are frozen
    OpArgs args = {.with_bias = true, .stride = 1, .pad = 1};
    check_op("image through a frozen conv2d", run_conv2d, &args,
             &(CheckSpec){.count = 3,
                          .shape = {shape4(2, 3, 7, 7), shape4(4, 3, 3, 3), shape1(4)},
                          .frozen = 0x6});
}
END_TEST

START_TEST(test_retain_grad) {
    // h = 2x keeps its gradient (retained); g = 3x, not retained, does not
    float x_values[15], want_h[15], want_x[15];
    test_fill_uniform(x_values, 15, test_seed_for("retain x"), -1.0f, 1.0f);
    Tensor *x = leaf_of(shape2(3, 5), x_values, true);
    Tensor *h = op_mul_scalar(x, 2.0f), *g = op_mul_scalar(x, 3.0f);
    tensor_retain_grad(h);
    // L = sum(h^2) + sum(g): dL/dh = 2h = 4x, dL/dx = 2 dL/dh + 3 = 8x + 3
    autograd_backward(op_add(op_sum_all(op_square(h)), op_sum_all(g)), NULL);
    for (int i = 0; i < 15; i++) {
        want_h[i] = 4.0f * x_values[i];
        want_x[i] = 8.0f * x_values[i] + 3.0f;
    }
    expect_values("retained non-leaf grad", h->grad, want_h, 15, 1e-6f);
    ck_assert_msg(g->grad == NULL, "a non-leaf that was not retained kept its gradient");
    expect_values("leaf grad", x->grad, want_x, 15, 1e-5f);
}
END_TEST

START_TEST(test_no_grad_scope) {
    Tensor *x;
    make_inputs("no-grad x", &(CheckSpec){.count = 1, .shape = {shape2(3, 5)}}, &x);
    autograd_no_grad_begin();
    ck_assert(!autograd_enabled());
    Tensor *outer = op_mul(x, x);
    autograd_no_grad_begin(); // nested
    Tensor *inner = op_exp(x);
    autograd_no_grad_end();
    ck_assert_msg(!autograd_enabled(), "leaving a nested no-grad scope re-enabled grad mode");
    Tensor *after_inner = op_tanh(x);
    autograd_no_grad_end();
    ck_assert(autograd_enabled());
    expect_untracked("no-grad result", outer);
    expect_untracked("nested no-grad result", inner);
    expect_untracked("result after a nested scope ended", after_inner);
    Tensor *tracked = op_exp(x);
    ck_assert_msg(tracked->grad_fn != NULL, "grad mode back on, but nothing recorded");
}
END_TEST

START_TEST(test_untracked_inputs_record_nothing) {
    Tensor *in[2];
    make_inputs("untracked",
                &(CheckSpec){.count = 2, .shape = {shape2(3, 5), shape2(5, 4)}, .frozen = 0x3}, in);
    expect_untracked("matmul of constants", op_matmul(in[0], in[1]));
    expect_untracked("exp of a constant", op_exp(in[0]));
}
END_TEST

// ---- mixed precision -------------------------------------------------------------------------

// A leaf of `shape` drawn from the stream of `label`, and its copy rounded to bf16 (host copies
// in *values and *rounded, malloc'd).
static Tensor *bf16_leaf(const char *label, Shape shape, float **values, float **rounded) {
    int64_t n = shape_numel(shape);
    *values = malloc((size_t)n * sizeof(float));
    *rounded = malloc((size_t)n * sizeof(float));
    ck_assert(*values && *rounded);
    test_fill_uniform(*values, n, test_seed_for(label), -1, 1);
    for (int64_t i = 0; i < n; i++) (*rounded)[i] = bf16_round((*values)[i]);
    Tensor *t = tensor_from_floats(shape, *values, DEVICE_CPU);
    tensor_set_requires_grad(t, true);
    return t;
}

// The op (linear: x, weight, bias; conv2d: x, weight) once in bf16, its backward run after the
// precision went back to fp32 (a node keeps its forward's precision), against the same op in
// fp32 on the operands rounded beforehand and the output gradient rounded: the GEMMs of both
// multiply the same bf16 values, so they differ only in fp32 summation order. The bf16 output
// must also differ from plain fp32's, or the check would pass without bf16.
static void check_bf16_op(bool conv) {
    Shape xs = conv ? shape4(2, 3, 6, 5) : shape2(9, 37);
    Shape ws = conv ? shape4(4, 3, 3, 3) : shape2(11, 37);
    float *xv, *xr, *wv, *wr, *bv, *br, *rv, *rr;
    Tensor *x = bf16_leaf("bf16 x", xs, &xv, &xr), *w = bf16_leaf("bf16 w", ws, &wv, &wr);
    Tensor *b = conv ? NULL : bf16_leaf("bf16 b", shape1(11), &bv, &br);
    Shape ys = conv ? shape4(2, 4, 6, 5) : shape2(9, 11);
    int64_t ny = shape_numel(ys), nx = shape_numel(xs), nw = shape_numel(ws);
    Tensor *dy = bf16_leaf("bf16 dy", ys, &rv, &rr);

    autograd_set_precision(PRECISION_BF16);
    Tensor *y = conv ? op_conv2d(x, w, NULL, 1, 1) : op_linear(x, w, b);
    autograd_set_precision(PRECISION_FP32);
    autograd_backward(y, dy);

    Tensor *x2 = tensor_from_floats(xs, xr, DEVICE_CPU), *w2 = tensor_from_floats(ws, wr, DEVICE_CPU);
    tensor_set_requires_grad(x2, true);
    tensor_set_requires_grad(w2, true);
    Tensor *want = conv ? op_conv2d(x2, w2, NULL, 1, 1) : op_linear(x2, w2, b);
    autograd_backward(want, tensor_from_floats(ys, rr, DEVICE_CPU));
    Tensor *plain = conv ? op_conv2d(x, w, NULL, 1, 1) : op_linear(x, w, b);
    autograd_free_graph(plain);

    float *got = malloc((size_t)(ny + nx + nw) * 2 * sizeof(float));
    ck_assert(got != NULL);
    float *exp = got + ny + nx + nw;
    tensor_read(y, got);
    tensor_read(x->grad, got + ny);
    tensor_read(w->grad, got + ny + nx);
    tensor_read(want, exp);
    tensor_read(x2->grad, exp + ny);
    tensor_read(w2->grad, exp + ny + nx);
    const char *op = conv ? "conv2d" : "linear";
    char what[64];
    snprintf(what, sizeof what, "%s bf16 output", op);
    ASSERT_CLOSE(what, got, exp, ny, 1e-5, 1e-5);
    snprintf(what, sizeof what, "%s bf16 input gradient", op);
    ASSERT_CLOSE(what, got + ny, exp + ny, nx, 1e-5, 1e-5);
    snprintf(what, sizeof what, "%s bf16 weight gradient", op);
    ASSERT_CLOSE(what, got + ny + nx, exp + ny + nx, nw, 1e-5, 1e-5);
    tensor_read(plain, exp);
    double most = 0;
    for (int64_t i = 0; i < ny; i++) most = fmax(most, fabs((double)got[i] - exp[i]));
    ck_assert_msg(most > 1e-4, "%s in bf16 is fp32's output to %g: no rounding happened", op,
                  most);
    free(got);
    free(xv), free(xr), free(wv), free(wr), free(rv), free(rr);
    if (b) free(bv), free(br);
}

START_TEST(test_linear_bf16) { check_bf16_op(false); }
END_TEST

START_TEST(test_conv2d_bf16) { check_bf16_op(true); }
END_TEST

START_TEST(test_detach) {
    float x_values[15], h_values[15];
    test_fill_uniform(x_values, 15, test_seed_for("detach x"), -1.0f, 1.0f);
    Tensor *x = leaf_of(shape2(3, 5), x_values, true);
    Tensor *h = op_mul_scalar(x, 3.0f);
    Tensor *d = tensor_detach(h);
    expect_untracked("detached tensor", d);
    ck_assert_ptr_eq(d->storage, h->storage);
    tensor_read(h, h_values);
    expect_values("detached values", d, h_values, 15, 0.0f);
    // d = 3x is a constant to the graph: d(sum(d * x))/dx = d, not 6x
    autograd_backward(op_sum_all(op_mul(d, x)), NULL);
    expect_values("gradient past a detach", x->grad, h_values, 15, 0.0f);
}
END_TEST

START_TEST(test_backward_frees_graph) {
    Tensor *x;
    make_inputs("graph x", &(CheckSpec){.count = 1, .shape = {shape2(3, 5)}}, &x);
    Tensor *h = op_exp(x);
    Tensor *loss = op_sum_all(op_square(h));
    ck_assert(loss->grad_fn != NULL && h->grad_fn != NULL);
    autograd_backward(loss, NULL);
    ck_assert_ptr_null(loss->grad_fn);
    ck_assert_msg(h->grad_fn == NULL, "an inner node survived the backward");
    ck_assert_ptr_nonnull(x->grad);
}
END_TEST

START_TEST(test_free_graph) {
    float x_values[15];
    test_fill_uniform(x_values, 15, test_seed_for("free graph x"), -1.0f, 1.0f);
    Tensor *x = leaf_of(shape2(3, 5), x_values, true);
    Tensor *y = op_sum_all(op_exp(x));
    autograd_free_graph(y);
    ck_assert_ptr_null(y->grad_fn);
    ck_assert_ptr_null(x->grad);
    float want = 0.0f;
    for (int i = 0; i < 15; i++) want += expf(x_values[i]);
    ck_assert_float_eq_tol(tensor_item(y), want, 1e-4f * want);
}
END_TEST

START_TEST(test_backward_explicit_grad_root) {
    // y = x * c is (3,5); backward seeded with g gives dx = g * c
    float g[15], want[15];
    test_fill_uniform(g, 15, test_seed_for("grad root"), -1.0f, 1.0f);
    Tensor *in[2];
    make_inputs("grad root inputs",
                &(CheckSpec){.count = 2, .shape = {shape2(3, 5), shape2(3, 5)}, .frozen = 0x2}, in);
    float c[15];
    tensor_read(in[1], c);
    for (int i = 0; i < 15; i++) want[i] = g[i] * c[i];
    autograd_backward(op_mul(in[0], in[1]), tensor_from_floats(shape2(3, 5), g, DEVICE_CPU));
    expect_values("x grad", in[0]->grad, want, 15, 1e-6f);
    ck_assert_ptr_null(in[1]->grad);
}
END_TEST

START_TEST(test_backward_accumulates_until_zero_grad) {
    Tensor *x;
    make_inputs("accumulate x", &(CheckSpec){.count = 1, .shape = {shape2(3, 5)}}, &x);
    autograd_backward(op_sum_all(op_mul_scalar(x, 2.0f)), NULL);
    autograd_backward(op_sum_all(op_mul_scalar(x, 3.0f)), NULL);
    expect_filled("grad after two passes", x->grad, 5.0f, 15);
    tensor_zero_grad(x);
    ck_assert_ptr_null(x->grad);
    autograd_backward(op_sum_all(x), NULL);
    expect_filled("grad after zero_grad and one pass", x->grad, 1.0f, 15);
}
END_TEST

START_TEST(test_shared_upstream_across_passes) {
    // z = a + b hands one upstream gradient to both; adding more to a later must not reach b
    Tensor *in[2];
    make_inputs("shared upstream", &(CheckSpec){.count = 2, .shape = {shape2(3, 5), shape2(3, 5)}},
                in);
    autograd_backward(op_sum_all(op_add(in[0], in[1])), NULL);
    autograd_backward(op_sum_all(op_mul_scalar(in[0], 2.0f)), NULL);
    expect_filled("a grad", in[0]->grad, 3.0f, 15);
    expect_filled("b grad", in[1]->grad, 1.0f, 15);
}
END_TEST

START_TEST(test_shared_upstream_within_pass) {
    // y = (a + b) + a: a's second contribution arrives after b got its gradient
    Tensor *in[2];
    make_inputs("shared upstream pass",
                &(CheckSpec){.count = 2, .shape = {shape2(3, 5), shape2(3, 5)}}, in);
    autograd_backward(op_sum_all(op_add(op_add(in[0], in[1]), in[0])), NULL);
    expect_filled("a grad", in[0]->grad, 2.0f, 15);
    expect_filled("b grad", in[1]->grad, 1.0f, 15);
}
END_TEST

START_TEST(test_scope_releases_step) {
    // Parameters live in the enclosing scope; a training step's activations, graph and (after
    // tensor_zero_grad) gradients are all gone when the step's scope ends.
    Tensor *in[3]; // x (4,5) input, weight (3,5), bias (3)
    make_inputs(
        "scope step",
        &(CheckSpec){.count = 3, .shape = {shape2(4, 5), shape2(3, 5), shape1(3)}, .frozen = 0x1},
        in);
    size_t before = storage_stats(DEVICE_CPU).bytes_in_use;
    for (int step = 0; step < 2; step++) {
        tensor_scope_begin();
        autograd_backward(op_mean_all(op_square(op_tanh(op_linear(in[0], in[1], in[2])))), NULL);
        ck_assert(in[1]->grad != NULL && in[2]->grad != NULL);
        tensor_zero_grad(in[1]);
        tensor_zero_grad(in[2]);
        tensor_scope_end();
        ck_assert_msg(storage_stats(DEVICE_CPU).bytes_in_use == before,
                      "step %d: %zu bytes in use after the scope, %zu before", step,
                      storage_stats(DEVICE_CPU).bytes_in_use, before);
    }
}
END_TEST

START_TEST(test_grad_outlives_scope) {
    // a leaf's gradient belongs to the leaf, not to the scope the backward ran in
    Tensor *in[2]; // weight, frozen input
    make_inputs("grad lifetime",
                &(CheckSpec){.count = 2, .shape = {shape2(3, 5), shape2(3, 5)}, .frozen = 0x2}, in);
    float x_values[15];
    tensor_read(in[1], x_values);
    tensor_scope_begin();
    autograd_backward(op_sum_all(op_mul(in[0], in[1])), NULL);
    tensor_scope_end();
    expect_values("weight grad after the step's scope", in[0]->grad, x_values, 15, 0.0f);
}
END_TEST

// ---- suite ---------------------------------------------------------------------------------

static Suite *autograd_suite(void) {
    Suite *s = suite_create("autograd");

    TCase *tc = test_scoped_tcase(s, "elementwise");
    tcase_add_loop_test(tc, test_unary, 0, COUNT_OF(unary_cases));
    tcase_add_loop_test(tc, test_binary, 0, COUNT_OF(binary_cases) * COUNT_OF(broadcast_cases));
    tcase_add_loop_test(tc, test_scalar, 0, COUNT_OF(scalar_cases));
    tcase_add_test(tc, test_clamp);

    tc = test_scoped_tcase(s, "reduce");
    tcase_add_loop_test(tc, test_sum, 0, REDUCE_LOOP_COUNT);
    tcase_add_loop_test(tc, test_mean, 0, REDUCE_LOOP_COUNT);
    tcase_add_loop_test(tc, test_max, 0, REDUCE_LOOP_COUNT);
    tcase_add_test(tc, test_sum_all);
    tcase_add_test(tc, test_mean_all);

    tc = test_scoped_tcase(s, "shape");
    tcase_add_test(tc, test_reshape);
    tcase_add_test(tc, test_permute);
    tcase_add_test(tc, test_transpose);
    tcase_add_test(tc, test_expand);
    tcase_add_test(tc, test_narrow);
    tcase_add_test(tc, test_concat);
    tcase_add_test(tc, test_chunk);

    tc = test_scoped_tcase(s, "matmul");
    tcase_add_loop_test(tc, test_matmul, 0, COUNT_OF(matmul_cases));
    tcase_add_loop_test(tc, test_linear, 0, COUNT_OF(linear_cases));

    tc = test_scoped_tcase(s, "nn");
    tcase_add_test(tc, test_softmax);
    tcase_add_test(tc, test_log_softmax);
    tcase_add_test(tc, test_layernorm_affine);
    tcase_add_test(tc, test_layernorm_plain);
    tcase_add_test(tc, test_groupnorm_affine);
    tcase_add_test(tc, test_groupnorm_plain);
    tcase_add_test(tc, test_embedding);
    tcase_add_test(tc, test_cross_entropy);
    tcase_add_test(tc, test_mse);

    tc = test_scoped_tcase(s, "mixed precision");
    tcase_add_test(tc, test_linear_bf16);
    tcase_add_test(tc, test_conv2d_bf16);

    tc = test_scoped_tcase(s, "conv");
    tcase_add_loop_test(tc, test_conv2d, 0, COUNT_OF(conv_cases));
    tcase_add_loop_test(tc, test_resample, 0, COUNT_OF(resample_cases));

    tc = test_scoped_tcase(s, "attention");
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_attention_qkv);

    tc = test_scoped_tcase(s, "engine");
    tcase_add_test(tc, test_reused_tensor_accumulates);
    tcase_add_test(tc, test_broadcast_gradient_is_reduced);
    tcase_add_test(tc, test_input_gradient_through_frozen_model);
    tcase_add_test(tc, test_retain_grad);
    tcase_add_test(tc, test_no_grad_scope);
    tcase_add_test(tc, test_untracked_inputs_record_nothing);
    tcase_add_test(tc, test_detach);
    tcase_add_test(tc, test_backward_frees_graph);
    tcase_add_test(tc, test_free_graph);
    tcase_add_test(tc, test_backward_explicit_grad_root);
    tcase_add_test(tc, test_backward_accumulates_until_zero_grad);
    tcase_add_test(tc, test_shared_upstream_across_passes);
    tcase_add_test(tc, test_shared_upstream_within_pass);
    tcase_add_test(tc, test_scope_releases_step);
    tcase_add_test(tc, test_grad_outlives_scope);
    return s;
}

int main(void) {
    return test_run_suite(autograd_suite());
}
