// Batched GEMM, and conv2d as op_conv2d runs it (im2col, one GEMM, a permute).
#include <stdio.h>

#include "kernels/bf16.h"
#include "kernels/cases/ops.h"

#define FAMILY "matmul"

// ---- matmul -------------------------------------------------------------------------------------

enum { MM_A, MM_B, MM_C };

static void call_matmul(const Backend *be, void *const *buf, const KernelCase *c) {
    const MatmulParams *p = &c->p.matmul;
    (p->precision == PRECISION_BF16 ? be->matmul_bf16 : be->matmul)(
        be, buf[MM_C], buf[MM_A], buf[MM_B], p->batch, p->m, p->n, p->k, p->trans_a, p->trans_b,
        p->alpha, p->beta, p->stride_a, p->stride_b, p->stride_c);
}

// elements spanned by `batch` matrices of `size` elements, `stride` apart
static int64_t batch_extent(int64_t stride, int64_t size, int64_t batch) {
    return (batch - 1) * stride + size;
}

// x (n) -> x rounded to bf16 in place: the operands as matmul_bf16 sees them
static void round_bf16(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = bf16_round(x[i]);
}

// C_i (m, n) = alpha op(A_i) op(B_i) + beta C_i; beta 0 does not read C (BLAS semantics).
// In bf16 the operands are rounded first (the test's host copies: the kernel got the originals)
// and the sum stays in double: the kernel's products are exact in fp32, so it differs from this
// only by its fp32 accumulation, and the fp32 tolerance holds.
static void ref_matmul(void *const *host, const KernelCase *c) {
    const MatmulParams *p = &c->p.matmul;
    int64_t m = p->m, n = p->n, k = p->k;
    if (p->precision == PRECISION_BF16) {
        round_bf16(host[MM_A], batch_extent(p->stride_a, m * k, p->batch));
        round_bf16(host[MM_B], batch_extent(p->stride_b, k * n, p->batch));
    }
    for (int64_t i = 0; i < p->batch; i++) {
        const float *ai = (const float *)host[MM_A] + i * p->stride_a;
        const float *bi = (const float *)host[MM_B] + i * p->stride_b;
        float *ci = (float *)host[MM_C] + i * p->stride_c;
        for (int64_t r = 0; r < m; r++) {
            for (int64_t col = 0; col < n; col++) {
                double sum = 0;
                for (int64_t q = 0; q < k; q++)
                    sum += (double)(p->trans_a ? ai[q * m + r] : ai[r * k + q]) *
                           (p->trans_b ? bi[col * k + q] : bi[q * n + col]);
                double old = p->beta == 0 ? 0 : p->beta * (double)ci[r * n + col];
                ci[r * n + col] = (float)(p->alpha * sum + old);
            }
        }
    }
}

const KernelOp kop_matmul = {"matmul", FAMILY, call_matmul, ref_matmul, NULL, NULL};

KernelCase *case_matmul(CaseList *list, const char *name, const MatmulParams *p) {
    KernelCase *c = case_new(list, &kop_matmul, name);
    c->p.matmul = *p;
    c->precision = p->precision;
    int64_t na = batch_extent(p->stride_a, p->m * p->k, p->batch);
    int64_t nb = batch_extent(p->stride_b, p->k * p->n, p->batch);
    int64_t nc = batch_extent(p->stride_c, p->m * p->n, p->batch);
    c->flops = 2.0 * (double)p->batch * (double)p->m * (double)p->n * (double)p->k;
    case_in(c, "matmul a", na, -1, 1);
    case_in(c, "matmul b", nb, -1, 1);
    // k-term float dot products of inputs in [-1, 1]: |error| <= c eps sum|a b| ~ c eps k / 4,
    // so an absolute floor of 1e-6 k (GEMMs accumulate in blocks and land far below), rtol 1e-5.
    CaseTol tol = {1e-6 * (double)p->k, 1e-5};
    if (p->beta == 0) case_out(c, "c", nc, tol); // C starts as NaN: it must not be read
    else case_inout(c, "matmul c", nc, -1, 1, tol);
    case_shape(c, "batch %lld, (%lld, %lld, %lld), trans_a %d, trans_b %d, %s",
               (long long)p->batch, (long long)p->m, (long long)p->n, (long long)p->k,
               p->trans_a, p->trans_b, precision_name(p->precision));
    return c;
}

// c (m, n) = op(a) op(b); the shape shows a and b as stored, ^T where transposed.
KernelCase *case_gemm(CaseList *list, const char *name, int64_t m, int64_t n, int64_t k,
                      bool trans_a, bool trans_b, Precision precision) {
    MatmulParams p = {.batch = 1, .m = m, .n = n, .k = k, .stride_a = m * k, .stride_b = k * n,
                      .stride_c = m * n, .alpha = 1.0f, .trans_a = trans_a, .trans_b = trans_b,
                      .precision = precision};
    KernelCase *c = case_matmul(list, name, &p);
    case_shape(c, "(%lld,%lld)%s x (%lld,%lld)%s%s", (long long)(trans_a ? k : m),
               (long long)(trans_a ? m : k), trans_a ? "^T" : "", (long long)(trans_b ? n : k),
               (long long)(trans_b ? k : n), trans_b ? "^T" : "",
               precision == PRECISION_BF16 ? " bf16" : "");
    return c;
}

// ---- conv2d -------------------------------------------------------------------------------------

enum { CONV_X, CONV_W, CONV_COL, CONV_YCOLS, CONV_Y };

// x (n, c, h, w), weight (oc, c*kh*kw) -> y (n, oc, oh, ow): im2col, one GEMM for the whole
// batch, then the (oc, n) -> (n, oc) permute back to NCHW.
static void call_conv2d(const Backend *be, void *const *buf, const KernelCase *c) {
    const ConvParams *p = &c->p.conv;
    const ConvGeometry *g = &p->g;
    int64_t n = p->images, oc = p->out_channels, pixels = g->oh * g->ow;
    be->im2col(be, buf[CONV_COL], buf[CONV_X], n, g);
    (p->precision == PRECISION_BF16 ? be->matmul_bf16 : be->matmul)(
        be, buf[CONV_YCOLS], buf[CONV_W], buf[CONV_COL], 1, oc, n * pixels, g->c * g->kh * g->kw,
        false, false, 1.0f, 0.0f, 0, 0, 0);
    const int64_t shape[KERNEL_MAX_DIMS] = {1, n, oc, pixels};
    const int64_t dst_stride[KERNEL_MAX_DIMS] = {0, oc * pixels, pixels, 1};
    const int64_t src_stride[KERNEL_MAX_DIMS] = {0, pixels, n * pixels, 1};
    be->copy_strided(be, buf[CONV_Y], dst_stride, buf[CONV_YCOLS], src_stride, shape);
}

// the direct sum over each window, zero outside the image (on bf16-rounded x and weight in bf16)
static void ref_conv2d(void *const *host, const KernelCase *c) {
    const ConvParams *p = &c->p.conv;
    const ConvGeometry *g = &p->g;
    if (p->precision == PRECISION_BF16) {
        round_bf16(host[CONV_X], p->images * g->c * g->h * g->w);
        round_bf16(host[CONV_W], p->out_channels * g->c * g->kh * g->kw);
    }
    const float *x = host[CONV_X], *w = host[CONV_W];
    float *y = host[CONV_Y];
    for (int64_t img = 0; img < p->images; img++) {
        for (int64_t o = 0; o < p->out_channels; o++) {
            for (int64_t oy = 0; oy < g->oh; oy++) {
                for (int64_t ox = 0; ox < g->ow; ox++) {
                    double sum = 0;
                    for (int64_t ci = 0; ci < g->c; ci++) {
                        for (int64_t ky = 0; ky < g->kh; ky++) {
                            for (int64_t kx = 0; kx < g->kw; kx++) {
                                int64_t iy = oy * g->stride - g->pad + ky;
                                int64_t ix = ox * g->stride - g->pad + kx;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                                sum += (double)w[((o * g->c + ci) * g->kh + ky) * g->kw + kx] *
                                       x[((img * g->c + ci) * g->h + iy) * g->w + ix];
                            }
                        }
                    }
                    y[((img * p->out_channels + o) * g->oh + oy) * g->ow + ox] = (float)sum;
                }
            }
        }
    }
}

const KernelOp kop_conv2d = {"conv2d (im2col, matmul, copy_strided)", FAMILY, call_conv2d,
                            ref_conv2d, NULL, NULL};

KernelCase *case_conv2d(CaseList *list, const char *name, int64_t images,
                        const ConvGeometry *geometry, int64_t out_channels, Precision precision) {
    KernelCase *c = case_new(list, &kop_conv2d, name);
    ConvGeometry g = *geometry;
    g.oh = (g.h + 2 * g.pad - g.kh) / g.stride + 1;
    g.ow = (g.w + 2 * g.pad - g.kw) / g.stride + 1;
    c->p.conv = (ConvParams){.images = images, .out_channels = out_channels, .g = g,
                             .precision = precision};
    c->precision = precision;
    int64_t patch = g.c * g.kh * g.kw, columns = images * g.oh * g.ow;
    c->flops = 2.0 * (double)out_channels * (double)columns * (double)patch;
    case_in(c, "conv x", images * g.c * g.h * g.w, -1, 1);
    case_in(c, "conv weight", out_channels * patch, -1, 1);
    case_buffer(c, "col", patch * columns, CASE_SCRATCH);
    case_buffer(c, "y columns", out_channels * columns, CASE_SCRATCH);
    // patch-term dot products, as matmul: an absolute floor of 1e-6 per term, rtol 1e-5
    case_out(c, "y", out_channels * columns, (CaseTol){1e-6 * (double)patch, 1e-5});
    case_shape(c, "(%lld,%lld,%lld,%lld) k%lld s%lld -> %lld ch%s", (long long)images,
               (long long)g.c, (long long)g.h, (long long)g.w, (long long)g.kh,
               (long long)g.stride, (long long)out_channels,
               precision == PRECISION_BF16 ? " bf16" : "");
    return c;
}

// ---- test cases ---------------------------------------------------------------------------------

enum { PACKED = -1 }; // a batch stride meaning: the matrices follow each other

void matmul_test_cases(CaseList *list) {
    static const struct {
        const char *name;
        int64_t batch, m, n, k;
        float alpha, beta;
        int64_t stride_a, stride_b, stride_c;
    } cases[] = {
        {"plain, beta 0 (C not read)", 1, 7, 13, 37, 1.0f, 0.0f, PACKED, PACKED, PACKED},
        {"batched, alpha and beta", 3, 13, 7, 129, 0.7f, -0.3f, PACKED, PACKED, PACKED},
        {"shared B (stride 0)", 3, 13, 7, 37, 1.0f, 0.0f, PACKED, 0, PACKED},
        {"shared A (stride 0), beta 1", 4, 9, 5, 11, 0.5f, 1.0f, 0, PACKED, PACKED},
        {"gaps between batch items", 2, 7, 13, 37, 1.0f, 0.5f, 7 * 37 + 3, PACKED, 7 * 13 + 5},
        {"one row", 1, 1, 129, 37, 1.0f, 0.0f, PACKED, PACKED, PACKED},
        {"one column", 1, 37, 1, 13, 1.0f, 0.0f, PACKED, PACKED, PACKED},
        {"large k", 2, 5, 9, 4099, 1.0f, 0.0f, PACKED, PACKED, PACKED},
        // above the CPU backend's SPLIT_MIN_FLOPS: C cut into a block per thread, by rows when
        // m >= n, else by columns, blocks not multiples of the 16-wide cut
        {"split by rows", 1, 161, 97, 300, 0.5f, 1.0f, PACKED, PACKED, PACKED},
        {"split by columns", 1, 33, 301, 250, 1.0f, 0.0f, PACKED, PACKED, PACKED},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int64_t m = cases[ci].m, n = cases[ci].n, k = cases[ci].k;
        MatmulParams p = {.batch = cases[ci].batch, .m = m, .n = n, .k = k,
                          .stride_a = cases[ci].stride_a == PACKED ? m * k : cases[ci].stride_a,
                          .stride_b = cases[ci].stride_b == PACKED ? k * n : cases[ci].stride_b,
                          .stride_c = cases[ci].stride_c == PACKED ? m * n : cases[ci].stride_c,
                          .alpha = cases[ci].alpha, .beta = cases[ci].beta};
        for (int variant = 0; variant < 8; variant++) {
            p.trans_a = variant & 1;
            p.trans_b = variant & 2;
            p.precision = variant & 4 ? PRECISION_BF16 : PRECISION_FP32;
            case_matmul(list, cases[ci].name, &p);
        }
    }

    static const struct {
        ConvGeometry g;
        int64_t out_channels;
    } convs[] = {
        // c, h, w, kh, kw, stride, pad (oh, ow follow)
        {{3, 7, 9, 3, 3, 1, 1, 0, 0}, 5},
        {{4, 9, 9, 3, 3, 2, 0, 0, 0}, 3},
        {{5, 6, 5, 1, 1, 1, 0, 0, 0}, 7},
    };
    for (size_t ci = 0; ci < sizeof convs / sizeof convs[0]; ci++)
        for (int bf16 = 0; bf16 < 2; bf16++)
            case_conv2d(list, "conv2d", 2, &convs[ci].g, convs[ci].out_channels,
                        bf16 ? PRECISION_BF16 : PRECISION_FP32);
}
