// Convolution, resampling, gather: im2col and its adjoint col2im, nearest upsampling and
// average pooling and their backwards, the embedding gather and its scatter.
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cases/ops.h"

#define FAMILY "convolution, resampling, gather"

// ---- im2col, col2im ---------------------------------------------------------------------------

// The x (n, c, h, w) index that col element (row r, column j) reads, or -1 in the padding.
static int64_t im2col_source(const ConvGeometry *g, int64_t r, int64_t j) {
    int64_t ci = r / (g->kh * g->kw), ky = r / g->kw % g->kh, kx = r % g->kw;
    int64_t img = j / (g->oh * g->ow), oy = j / g->ow % g->oh, ox = j % g->ow;
    int64_t iy = oy * g->stride - g->pad + ky, ix = ox * g->stride - g->pad + kx;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) return -1;
    return ((img * g->c + ci) * g->h + iy) * g->w + ix;
}

static int64_t conv_x_size(const ConvParams *p) {
    return p->images * p->g.c * p->g.h * p->g.w;
}
static int64_t conv_col_size(const ConvParams *p) {
    return p->g.c * p->g.kh * p->g.kw * p->images * p->g.oh * p->g.ow;
}

static void call_im2col(const Backend *be, void *const *buf, const KernelCase *c) {
    be->im2col(be, buf[1], buf[0], c->p.conv.images, &c->p.conv.g);
}

// col (c kh kw, n oh ow) = the x each reads, 0 in the padding
static void ref_im2col(void *const *host, const KernelCase *c) {
    const ConvParams *p = &c->p.conv;
    const float *x = host[0];
    float *col = host[1];
    int64_t ncol = conv_col_size(p), cols = p->images * p->g.oh * p->g.ow;
    for (int64_t i = 0; i < ncol; i++) {
        int64_t src = im2col_source(&p->g, i / cols, i % cols);
        col[i] = src < 0 ? 0.0f : x[src];
    }
}

const KernelOp kop_im2col = {"im2col", FAMILY, call_im2col, ref_im2col, NULL, NULL};

static void call_col2im(const Backend *be, void *const *buf, const KernelCase *c) {
    be->col2im(be, buf[1], buf[0], c->p.conv.images, &c->p.conv.g);
}

// dx (n, c, h, w) = the sum of the col entries that read each x
static void ref_col2im(void *const *host, const KernelCase *c) {
    const ConvParams *p = &c->p.conv;
    const float *col = host[0];
    float *dx = host[1];
    int64_t nx = conv_x_size(p), ncol = conv_col_size(p), cols = p->images * p->g.oh * p->g.ow;
    double *acc = ref_alloc((size_t)nx * sizeof(double));
    for (int64_t i = 0; i < ncol; i++) {
        int64_t src = im2col_source(&p->g, i / cols, i % cols);
        if (src >= 0) acc[src] += col[i];
    }
    for (int64_t i = 0; i < nx; i++) dx[i] = (float)acc[i];
    free(acc);
}

const KernelOp kop_col2im = {"col2im", FAMILY, call_col2im, ref_col2im, NULL, NULL};

static void case_im2col(CaseList *list, int64_t images, ConvGeometry g, bool adjoint) {
    g.oh = (g.h + 2 * g.pad - g.kh) / g.stride + 1;
    g.ow = (g.w + 2 * g.pad - g.kw) / g.stride + 1;
    KernelCase *c =
        case_new(list, adjoint ? &kop_col2im : &kop_im2col, adjoint ? "col2im" : "im2col");
    c->p.conv = (ConvParams){.images = images, .g = g};
    int64_t nx = conv_x_size(&c->p.conv), ncol = conv_col_size(&c->p.conv);
    if (adjoint) {
        case_in(c, "conv col", ncol, -1, 1);
        // Sums of at most kh*kw entries in any order: rtol 1e-6, atol 1e-6 where they cancel.
        case_out(c, "dx", nx, (CaseTol){1e-6, 1e-6});
    } else {
        case_in(c, "conv x", nx, -1, 1);
        case_out(c, "col", ncol, CASE_EXACT); // a gather with zero padding: bit for bit
    }
    c->bytes = 4.0 * ((double)nx + (double)ncol);
    case_shape(c, "c %lld, %lldx%lld, kernel %lldx%lld, stride %lld, pad %lld", (long long)g.c,
               (long long)g.h, (long long)g.w, (long long)g.kh, (long long)g.kw,
               (long long)g.stride, (long long)g.pad);
}

// ---- resampling -------------------------------------------------------------------------------

// The four kernels map a small side (planes, h, w) and a large side (planes, h f, w f).
typedef void (*ResampleKernel)(const Backend *be, float *out, const float *in, int64_t planes,
                               int64_t h, int64_t w, int64_t f);

static ResampleKernel resample_kernel(const Backend *be, const KernelOp *op) {
    if (op == &kop_upsample_nearest) return be->upsample_nearest;
    if (op == &kop_upsample_nearest_backward) return be->upsample_nearest_backward;
    if (op == &kop_avgpool) return be->avgpool;
    return be->avgpool_backward;
}

// grow: the op maps the small side to the large (a nearest-neighbour spread; else window
// sums); pool: it takes the large side's h, w and scales by 1 / f^2.
static bool resample_grows(const KernelOp *op) {
    return op == &kop_upsample_nearest || op == &kop_avgpool_backward;
}
static bool resample_pools(const KernelOp *op) {
    return op == &kop_avgpool || op == &kop_avgpool_backward;
}

static void call_resample(const Backend *be, void *const *buf, const KernelCase *c) {
    const ResampleParams *p = &c->p.resample;
    resample_kernel(be, c->op)(be, buf[1], buf[0], p->planes, p->h, p->w, p->f);
}

static void ref_resample(void *const *host, const KernelCase *c) {
    const ResampleParams *p = &c->p.resample;
    const float *x = host[0];
    float *y = host[1];
    int64_t f = p->f;
    bool pool = resample_pools(c->op);
    double scale = pool ? 1.0 / (double)(f * f) : 1.0;
    int64_t h = pool ? p->h / f : p->h, w = pool ? p->w / f : p->w; // the small side's
    if (resample_grows(c->op)) {
        // y (planes, h f, w f) = scale * the nearest x
        int64_t oh = h * f, ow = w * f;
        for (int64_t i = 0; i < p->planes * oh * ow; i++) {
            int64_t q = i / (oh * ow), oy = i / ow % oh, ox = i % ow;
            y[i] = (float)(scale * x[(q * h + oy / f) * w + ox / f]);
        }
    } else {
        // y (planes, h, w) = scale * the sum over each f x f window of x (planes, h f, w f)
        int64_t iw = w * f;
        for (int64_t i = 0; i < p->planes * h * w; i++) {
            int64_t q = i / (h * w), oy = i / w % h, ox = i % w;
            double sum = 0;
            for (int64_t dy = 0; dy < f; dy++)
                for (int64_t dx = 0; dx < f; dx++)
                    sum += x[(q * h * f + oy * f + dy) * iw + ox * f + dx];
            y[i] = (float)(scale * sum);
        }
    }
}

const KernelOp kop_upsample_nearest = {"upsample_nearest", FAMILY, call_resample, ref_resample,
                                      NULL, NULL};
const KernelOp kop_upsample_nearest_backward = {"upsample_nearest_backward", FAMILY,
                                               call_resample, ref_resample, NULL, NULL};
const KernelOp kop_avgpool = {"avgpool", FAMILY, call_resample, ref_resample, NULL, NULL};
const KernelOp kop_avgpool_backward = {"avgpool_backward", FAMILY, call_resample, ref_resample,
                                      NULL, NULL};

// The small side (planes, h, w) and the factor f.
static void case_resample(CaseList *list, const KernelOp *op, int64_t planes, int64_t h,
                          int64_t w, int64_t f, CaseTol tol) {
    KernelCase *c = case_new(list, op, op->name);
    bool pool = resample_pools(op), grow = resample_grows(op);
    c->p.resample = (ResampleParams){planes, pool ? h * f : h, pool ? w * f : w, f};
    int64_t small = planes * h * w, large = small * f * f;
    case_in(c, op->name, grow ? small : large, -1, 1);
    case_out(c, "out", grow ? large : small, tol);
    c->bytes = 4.0 * (double)(small + large);
    case_shape(c, "(%lld, %lld, %lld), f %lld", (long long)planes, (long long)c->p.resample.h,
               (long long)c->p.resample.w, (long long)f);
}

// ---- embedding ----------------------------------------------------------------------------------

enum { EMB_TABLE, EMB_INDEX, EMB_Y };          // forward
enum { EMB_DY = EMB_TABLE, EMB_DTABLE = EMB_Y }; // backward: dy, index, dtable

static void call_embedding(const Backend *be, void *const *buf, const KernelCase *c) {
    be->embedding(be, buf[EMB_Y], buf[EMB_TABLE], buf[EMB_INDEX], c->p.embedding.n,
                  c->p.embedding.dim);
}

static void ref_embedding(void *const *host, const KernelCase *c) {
    const EmbeddingParams *p = &c->p.embedding;
    const float *table = host[EMB_TABLE];
    const int32_t *index = host[EMB_INDEX];
    float *y = host[EMB_Y];
    for (int64_t i = 0; i < p->n * p->dim; i++)
        y[i] = table[index[i / p->dim] * p->dim + i % p->dim];
}

const KernelOp kop_embedding = {"embedding", FAMILY, call_embedding, ref_embedding, NULL, NULL};

static void call_embedding_backward(const Backend *be, void *const *buf, const KernelCase *c) {
    const EmbeddingParams *p = &c->p.embedding;
    be->embedding_backward(be, buf[EMB_DTABLE], buf[EMB_DY], buf[EMB_INDEX], p->n, p->vocab,
                           p->dim);
}

// dtable (vocab, dim) = the sum of the dy rows that looked each row up
static void ref_embedding_backward(void *const *host, const KernelCase *c) {
    const EmbeddingParams *p = &c->p.embedding;
    const float *dy = host[EMB_DY];
    const int32_t *index = host[EMB_INDEX];
    float *dtable = host[EMB_DTABLE];
    int64_t ntable = p->vocab * p->dim;
    double *acc = ref_alloc((size_t)ntable * sizeof(double));
    for (int64_t i = 0; i < p->n * p->dim; i++)
        acc[index[i / p->dim] * p->dim + i % p->dim] += dy[i];
    for (int64_t i = 0; i < ntable; i++) dtable[i] = (float)acc[i];
    free(acc);
}

const KernelOp kop_embedding_backward = {"embedding_backward", FAMILY, call_embedding_backward,
                                        ref_embedding_backward, NULL, NULL};

// indices in [0, below)
static void case_embedding(CaseList *list, int64_t vocab, int64_t dim, int64_t n, int32_t below,
                           bool backward) {
    KernelCase *c = case_new(list, backward ? &kop_embedding_backward : &kop_embedding,
                             backward ? "embedding_backward" : "embedding");
    c->p.embedding = (EmbeddingParams){vocab, dim, n};
    if (backward) {
        case_in(c, "embedding dy", n * dim, -1, 1);
        case_ints(c, "embedding index", n, below);
        // Sums of the rows sharing an index, in any order: rtol 1e-6, atol 1e-6 where they
        // cancel.
        case_out(c, "dtable", vocab * dim, (CaseTol){1e-6, 1e-6});
    } else {
        case_in(c, "embedding table", vocab * dim, -1, 1);
        case_ints(c, "embedding index", n, below);
        case_out(c, "y", n * dim, CASE_EXACT); // a gather: bit for bit
    }
    c->bytes = 4.0 * (2.0 * (double)(n * dim) + (double)n);
    case_shape(c, "vocab %lld, dim %lld, n %lld", (long long)vocab, (long long)dim, (long long)n);
}

// ---- test cases ---------------------------------------------------------------------------------

void conv_test_cases(CaseList *list) {
    static const ConvGeometry convs[] = {
        // c, h, w, kh, kw, stride, pad (oh, ow follow)
        {3, 7, 9, 3, 3, 1, 1, 0, 0},
        {2, 8, 7, 3, 3, 2, 1, 0, 0},
        {3, 7, 9, 3, 3, 1, 0, 0, 0},
        {4, 9, 9, 3, 3, 2, 0, 0, 0},
        {5, 6, 5, 1, 1, 1, 0, 0, 0},
        {3, 7, 6, 1, 1, 2, 0, 0, 0}, // stride 2, kernel 1: every other pixel is in no patch
        {3, 5, 6, 1, 1, 1, 1, 0, 0}, // kernel 1, pad 1: the output's border reads only padding
        {2, 5, 7, 3, 1, 1, 1, 0, 0}, // a 3x1 kernel
        {8, 32, 32, 3, 3, 1, 1, 0, 0}, // col has 147k elements
    };
    for (int adjoint = 0; adjoint < 2; adjoint++)
        for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++)
            case_im2col(list, 2, convs[i], adjoint);

    static const struct {
        int64_t planes, h, w, f; // the small side
    } resample[] = {
        {5, 7, 3, 2}, {3, 4, 5, 3}, {3, 3, 7, 3},
        {2, 1, 1, 7},    // one 7x7 window per plane
        {64, 29, 31, 2}, // the large side has 230k elements
    };
    static const struct {
        const KernelOp *op;
        CaseTol tol;
    } resamplers[] = {
        {&kop_upsample_nearest, CASE_EXACT},                // a gather: bit for bit
        {&kop_upsample_nearest_backward, {1e-6, 1e-6}},     // sums of f*f entries in any order
        {&kop_avgpool, {1e-6, 1e-6}},                       // means of f*f entries
        {&kop_avgpool_backward, {1e-7, 1e-6}},              // dy / f^2: one rounding
    };
    for (size_t k = 0; k < sizeof resamplers / sizeof resamplers[0]; k++)
        for (size_t i = 0; i < sizeof resample / sizeof resample[0]; i++)
            case_resample(list, resamplers[k].op, resample[i].planes, resample[i].h,
                          resample[i].w, resample[i].f, resamplers[k].tol);

    static const struct {
        int64_t vocab, dim, n;
        int32_t below;
    } embeddings[] = {
        {11, 37, 29, 10},        // more lookups than rows: repeats; row 10 is never looked up
        {1000, 129, 1031, 1000}, // beyond 100k outputs
    };
    for (int backward = 0; backward < 2; backward++)
        for (size_t i = 0; i < sizeof embeddings / sizeof embeddings[0]; i++)
            case_embedding(list, embeddings[i].vocab, embeddings[i].dim, embeddings[i].n,
                           embeddings[i].below, backward);
}
