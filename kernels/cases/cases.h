// The registry of kernel cases: one table that drives both test/test_kernels.c (every case on
// every compiled backend against its reference) and `dmdr bench` (the same calls at the shapes
// of a DiT training step, timed), the way ggml's test-backend-ops drives its modes from one
// list. A case is data: the operands (size, role, how the test fills them), the op's sizes,
// tolerances, and the flops and bytes of one call. An op (KernelOp) is code: the call through
// the Backend table, and a plain double-precision reference.
//
// Built as its own static library (kernels/meson.build), linked by the tests and the bench
// only: libdmdr holds no test code.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/cases/params.h"

#define CASE_MAX_BUFFERS 8
#define CASE_LARGE 100003 // elements: beyond every CPU kernel's serial threshold

typedef struct {
    double atol, rtol; // |got - want| <= atol + rtol |want|; both 0: bit for bit
} CaseTol;

#define CASE_EXACT ((CaseTol){0, 0})

// What the test does with an operand: fills it, or sets it to NaN (so that an element the
// kernel skips, or reads before writing, shows), and compares it after the call.
typedef enum {
    CASE_IN,      // filled, read by the kernel
    CASE_OUT,     // written by the kernel: NaN before the call, compared after
    CASE_INOUT,   // filled, updated in place by the kernel, compared after
    CASE_SCRATCH, // NaN; written and read by a recipe of several calls, not compared
    CASE_NULL,    // an optional operand left out: the call gets NULL
    CASE_HOST,    // filled for the test's `inputs` step only, never given to the kernel
} CaseRole;

typedef enum {
    FILL_UNIFORM, // floats uniform in [lo, hi]
    FILL_NONZERO, // floats uniform in [lo, hi], at least `gap` away from 0 (division, kinks)
    FILL_INTS,    // int32 uniform in [0, below): indices, labels
    FILL_LEVELS,  // the floats 0, 1, ..., below - 1 at random: many exact ties
    FILL_ZERO,
    FILL_CONST,   // every element lo
} CaseFill;

typedef struct {
    const char *label; // names it in messages; the test seeds its values from it
    int64_t words;     // 4-byte elements (float or int32; twice the doubles of an f64 buffer)
    CaseRole role;
    CaseFill fill;
    float lo, hi, gap;
    int32_t below;
    bool f64;    // holds doubles (a host-side result), compared as such
    CaseTol tol; // CASE_OUT and CASE_INOUT
} CaseBuffer;

typedef struct KernelOp KernelOp;

typedef struct {
    const KernelOp *op;
    char name[64];  // the bench's name for the case, or the test's for the variant
    char shape[96]; // the operands, in PyTorch terms, for reports and messages
    double flops;   // floating-point work of one call: compute-bound kernels, else 0
    double bytes;   // bytes one call must read and write: memory-bound kernels, else 0
    int nbuffers;
    CaseBuffer buf[CASE_MAX_BUFFERS];
    CaseParams p; // the op's own sizes and scalars (params.h)
    Precision precision; // a GEMM's (matmul, conv2d): the bench holds it to that ceiling
} KernelCase;

// buf holds the case's operands in the order its builder added them: device pointers for
// call and prepare, host copies for inputs and reference (NULL where the role says so).
struct KernelOp {
    const char *name;   // the Backend entry it calls, or the recipe
    const char *family; // the group the tests report it in
    void (*call)(const Backend *be, void *const *buf, const KernelCase *c);
    // The expected outputs, in double precision, into the host CASE_OUT buffers (NaN until
    // written) and in place into the CASE_INOUT ones.
    void (*reference)(void *const *host, const KernelCase *c);
    // Optional, the test's: host inputs that must agree with each other (exact ties, the
    // saved statistics of a forward, from the reference), after the random fill.
    void (*inputs)(void *const *host, const KernelCase *c);
    // Optional, the bench's: the same inputs made on the device by the backend's own
    // forward, untimed.
    void (*prepare)(const Backend *be, void *const *buf, const KernelCase *c);
};

// Every op of the registry, grouped by family in the order the tests report them.
extern const KernelOp *const kernel_ops[];
extern const int kernel_op_count;

typedef struct {
    KernelCase *items;
    int count, capacity;
} CaseList;

void case_list_free(CaseList *list);

// Appends every test case: odd sizes so vector tails run, one beyond CASE_LARGE elements per
// elementwise and reduction kernel so their parallel paths run, each variant of aliasing and
// of optional operands.
void kernel_test_cases(CaseList *list);

// ---- 4-d shapes, for the references and the tests -------------------------------------------

int64_t shape4_numel(const int64_t shape[KERNEL_MAX_DIMS]);
// The offset, under `stride`, of the element with row-major index `flat` in `shape`.
int64_t strided_offset(const int64_t shape[KERNEL_MAX_DIMS], const int64_t stride[KERNEL_MAX_DIMS],
                       int64_t flat);
// Row-major strides of `shape` in which the dims in zero_mask (bit d) count as size 1 and get
// stride 0: the strides of a reduced output, or of a broadcast input. Returns the element
// count of that reduced shape.
int64_t strides_without(const int64_t shape[KERNEL_MAX_DIMS], unsigned zero_mask,
                        int64_t stride[KERNEL_MAX_DIMS]);
// the dims of size 1 of shape, as a mask (bit d)
unsigned unit_dims(const int64_t shape[KERNEL_MAX_DIMS]);
// log sum exp of s (n), shifted by the maximum
double logsumexp(const double *s, int64_t n);

// ---- building cases (the builders below use these) -------------------------------------------

KernelCase *case_new(CaseList *list, const KernelOp *op, const char *name);
__attribute__((format(printf, 2, 3))) void case_shape(KernelCase *c, const char *fmt, ...);
// An operand; the helpers below set its role and fill.
CaseBuffer *case_buffer(KernelCase *c, const char *label, int64_t words, CaseRole role);
CaseBuffer *case_in(KernelCase *c, const char *label, int64_t words, float lo, float hi);
CaseBuffer *case_out(KernelCase *c, const char *label, int64_t words, CaseTol tol);
CaseBuffer *case_inout(KernelCase *c, const char *label, int64_t words, float lo, float hi,
                       CaseTol tol);
CaseBuffer *case_ints(KernelCase *c, const char *label, int64_t words, int32_t below);
// CASE_OUT when `present`, else CASE_NULL
CaseBuffer *case_optional_out(KernelCase *c, const char *label, int64_t words, bool present,
                              CaseTol tol);

// ---- one builder per op: the test lists and the bench's DiT list call them ------------------

// dst (words) gets src [src_offset, + count) at dst_offset: be->copy
KernelCase *case_copy(CaseList *list, const char *name, int64_t words, int64_t src_offset,
                      int64_t dst_offset, int64_t count, bool dst_filled);
// src (src_size) viewed at src_offset with src_stride -> dst (dst_size) likewise
KernelCase *case_copy_strided(CaseList *list, const char *name, const StridedParams *p,
                              int64_t src_size, int64_t dst_size);
// y (out) = a (a shape) op b (b shape), or its backward; shapes broadcast as in PyTorch
KernelCase *case_binary(CaseList *list, const char *name, BinaryOp op,
                        const int64_t out[KERNEL_MAX_DIMS], const int64_t a[KERNEL_MAX_DIMS],
                        const int64_t b[KERNEL_MAX_DIMS], bool backward, int variant);
KernelCase *case_unary(CaseList *list, const char *name, UnaryOp op, int64_t n, bool backward);
// x (a, r, k) -> y (a, 1, k) and the like: shape reduced over mask
KernelCase *case_reduce(CaseList *list, const char *name, ReduceOp op,
                        const int64_t shape[KERNEL_MAX_DIMS], unsigned mask);
KernelCase *case_sum_squares(CaseList *list, const char *name, int count, const int64_t *n);
// batch of C (m, n) = alpha op(A) op(B) + beta C; strides of 0 share A or B
KernelCase *case_matmul(CaseList *list, const char *name, const MatmulParams *p);
KernelCase *case_gemm(CaseList *list, const char *name, int64_t m, int64_t n, int64_t k,
                      bool trans_a, bool trans_b, Precision precision);
// y (images, out_channels, oh, ow) = conv2d(x (images, c, h, w), weight), as op_conv2d runs it
KernelCase *case_conv2d(CaseList *list, const char *name, int64_t images,
                        const ConvGeometry *g, int64_t out_channels, Precision precision);
KernelCase *case_softmax(CaseList *list, const char *name, int64_t rows, int64_t cols, bool log,
                         float lo, float hi, bool backward);
KernelCase *case_cross_entropy(CaseList *list, const char *name, int64_t rows, int64_t classes,
                               float lo, float hi, bool backward);
KernelCase *case_squared_error(CaseList *list, const char *name, int64_t n, bool backward,
                               int outputs);
KernelCase *case_norm(CaseList *list, const char *name, const NormParams *p, bool layer,
                      bool backward);
KernelCase *case_attention(CaseList *list, const char *name, const AttentionParams *p,
                           bool backward);
// fresh: m and v start at 0, as on the first step of training
KernelCase *case_adamw(CaseList *list, const char *name, const AdamWParams *p, bool fresh);
