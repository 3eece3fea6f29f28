// LayerNorm and GroupNorm, forward and backward (PyTorch semantics: biased variance,
// eps inside the square root, weight and bias optional).
//
// Both normalise a contiguous span: a row of c for LayerNorm; the c/groups channels of hw
// pixels of one (image, group) for GroupNorm. They differ in how the affine parameters are
// broadcast: per element of the row, or per channel across its pixels.
//
// Rows (or (image, group) pairs) run in parallel. The dweight/dbias reductions across them
// use one partial sum per thread, added in thread order, so a result depends only on the
// inputs and the thread count.
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_kernels.h"

// Below this many elements a call runs on one thread: the fork costs more than the work.
#define NORM_PARALLEL_MIN 32768

// Sums run in float over blocks of this many elements (vector speed: double sums cost 20%
// of LayerNorm's bandwidth, and made its backward 1.3x slower at (3136, 192)) and the block
// sums are added in double, so a GroupNorm span of a hundred thousand elements keeps its
// precision.
#define SUM_BLOCK 256

// x (len) -> mean and 1 / sqrt(biased variance + eps), in two passes (mean, then centred
// squares) so a large mean cannot cancel the variance away as E[x^2] - E[x]^2 would. The
// first pass sums x - x[0], so an offset shared by the whole span costs no precision there
// either.
static void span_moments(const float *x, int64_t len, float eps, float *mean, float *rstd) {
    float shift = len > 0 ? x[0] : 0.0f;
    double sum = 0.0;
    for (int64_t start = 0; start < len; start += SUM_BLOCK) {
        int64_t end = start + SUM_BLOCK < len ? start + SUM_BLOCK : len;
        float block = 0.0f;
        #pragma omp simd reduction(+ : block)
        for (int64_t i = start; i < end; i++) block += x[i] - shift;
        sum += block;
    }
    float mu = (float)((double)shift + sum / (double)len);
    double squares = 0.0;
    for (int64_t start = 0; start < len; start += SUM_BLOCK) {
        int64_t end = start + SUM_BLOCK < len ? start + SUM_BLOCK : len;
        float block = 0.0f;
        #pragma omp simd reduction(+ : block)
        for (int64_t i = start; i < end; i++) block += (x[i] - mu) * (x[i] - mu);
        squares += block;
    }
    *mean = mu;
    *rstd = (float)(1.0 / sqrt(squares / (double)len + (double)eps));
}

// One scratch row of 2 * c floats per thread for dweight and dbias partial sums, zeroed.
typedef struct {
    float *sums;
    int threads;
    int64_t c;
} AffinePartials;

static AffinePartials affine_partials_new(int64_t c, bool needed) {
    AffinePartials p = {NULL, omp_get_max_threads(), c};
    if (!needed) return p;
    p.sums = calloc((size_t)p.threads * 2 * (size_t)c, sizeof(float));
    DMDR_CHECK(p.sums != NULL, "out of memory for %d x %lld norm partial sums", p.threads,
               (long long)c);
    return p;
}

// This thread's dweight partial (c); its dbias partial follows it. NULL when not needed.
static float *affine_partials_mine(const AffinePartials *p) {
    return p->sums ? p->sums + (size_t)omp_get_thread_num() * 2 * (size_t)p->c : NULL;
}

// dweight, dbias (c) = sums of the per-thread partials in thread order; frees the partials.
static void affine_partials_finish(AffinePartials *p, float *dweight, float *dbias) {
    if (!p->sums) return;
    for (int64_t j = 0; j < p->c; j++) {
        float dw = 0.0f, db = 0.0f;
        for (int t = 0; t < p->threads; t++) {
            dw += p->sums[(size_t)t * 2 * (size_t)p->c + (size_t)j];
            db += p->sums[(size_t)t * 2 * (size_t)p->c + (size_t)p->c + (size_t)j];
        }
        if (dweight) dweight[j] = dw;
        if (dbias) dbias[j] = db;
    }
    free(p->sums);
    p->sums = NULL;
}

// dx (len) = rstd (g - mean(g) - xhat mean(g xhat)), given g = dy * weight written into dx,
// xhat = (x - mean) rstd, and the two sums of g and g xhat over the span.
static void span_input_grad(float *dx, const float *x, float mean, float rstd, int64_t len,
                            double sum_g, double sum_g_xhat) {
    float mean_g = (float)(sum_g / (double)len);
    float mean_g_xhat = (float)(sum_g_xhat / (double)len);
    #pragma omp simd
    for (int64_t i = 0; i < len; i++) {
        float xhat = (x[i] - mean) * rstd;
        dx[i] = rstd * (dx[i] - mean_g - xhat * mean_g_xhat);
    }
}

// x (rows, c), weight, bias (c) or NULL -> y (rows, c), mean, rstd (rows)
void cpu_layernorm(const Backend *be, float *y, float *mean, float *rstd, const float *x,
                   const float *weight, const float *bias, int64_t rows, int64_t c, float eps) {
    (void)be;
    #pragma omp parallel for schedule(static) if(rows * c >= NORM_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float *yr = y + r * c;
        float mu, rs;
        span_moments(xr, c, eps, &mu, &rs);
        mean[r] = mu;
        rstd[r] = rs;
        #pragma omp simd
        for (int64_t j = 0; j < c; j++) {
            float v = (xr[j] - mu) * rs;
            if (weight) v *= weight[j];
            if (bias) v += bias[j];
            yr[j] = v;
        }
    }
}

// dy, x (rows, c), mean, rstd (rows), weight (c) or NULL -> dx (rows, c), dweight, dbias (c)
void cpu_layernorm_backward(const Backend *be, float *dx, float *dweight, float *dbias,
                            const float *dy, const float *x, const float *mean, const float *rstd,
                            const float *weight, int64_t rows, int64_t c) {
    (void)be;
    AffinePartials partials = affine_partials_new(c, dweight || dbias);
    #pragma omp parallel if(rows * c >= NORM_PARALLEL_MIN)
    {
        float *dw = affine_partials_mine(&partials);
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * c, *dyr = dy + r * c;
            float *dxr = dx + r * c;
            float mu = mean[r], rs = rstd[r];
            // float sums per block, double across blocks, as span_moments
            double sum_g = 0.0, sum_g_xhat = 0.0;
            for (int64_t start = 0; start < c; start += SUM_BLOCK) {
                int64_t end = start + SUM_BLOCK < c ? start + SUM_BLOCK : c;
                float block_g = 0.0f, block_g_xhat = 0.0f;
                #pragma omp simd reduction(+ : block_g, block_g_xhat)
                for (int64_t j = start; j < end; j++) {
                    float xhat = (xr[j] - mu) * rs;
                    float g = weight ? dyr[j] * weight[j] : dyr[j];
                    dxr[j] = g;
                    block_g += g;
                    block_g_xhat += g * xhat;
                }
                sum_g += block_g;
                sum_g_xhat += block_g_xhat;
            }
            if (dw) {
                float *db = dw + c;
                #pragma omp simd
                for (int64_t j = 0; j < c; j++) {
                    dw[j] += dyr[j] * (xr[j] - mu) * rs;
                    db[j] += dyr[j];
                }
            }
            span_input_grad(dxr, xr, mu, rs, c, sum_g, sum_g_xhat);
        }
    }
    affine_partials_finish(&partials, dweight, dbias);
}

// x (n, c, hw), weight, bias (c) or NULL -> y (n, c, hw), mean, rstd (n, groups)
void cpu_groupnorm(const Backend *be, float *y, float *mean, float *rstd, const float *x,
                   const float *weight, const float *bias, int64_t n, int64_t c, int64_t hw,
                   int64_t groups, float eps) {
    (void)be;
    int64_t cg = c / groups; // channels per group
    #pragma omp parallel for schedule(static) if(n * c * hw >= NORM_PARALLEL_MIN)
    for (int64_t ng = 0; ng < n * groups; ng++) {
        const float *xg = x + ng * cg * hw;
        float *yg = y + ng * cg * hw;
        float mu, rs;
        span_moments(xg, cg * hw, eps, &mu, &rs);
        mean[ng] = mu;
        rstd[ng] = rs;
        for (int64_t ch = 0; ch < cg; ch++) {
            int64_t channel = (ng % groups) * cg + ch;
            // (x - mean) first: x scale - mean scale would cancel for a large mean.
            float scale = weight ? rs * weight[channel] : rs;
            float shift = bias ? bias[channel] : 0.0f;
            const float *xc = xg + ch * hw;
            float *yc = yg + ch * hw;
            #pragma omp simd
            for (int64_t i = 0; i < hw; i++) yc[i] = (xc[i] - mu) * scale + shift;
        }
    }
}

// dy, x (n, c, hw), mean, rstd (n, groups), weight (c) or NULL
// -> dx (n, c, hw), dweight, dbias (c)
void cpu_groupnorm_backward(const Backend *be, float *dx, float *dweight, float *dbias,
                            const float *dy, const float *x, const float *mean, const float *rstd,
                            const float *weight, int64_t n, int64_t c, int64_t hw, int64_t groups) {
    (void)be;
    int64_t cg = c / groups;
    AffinePartials partials = affine_partials_new(c, dweight || dbias);
    #pragma omp parallel if(n * c * hw >= NORM_PARALLEL_MIN)
    {
        float *dw = affine_partials_mine(&partials);
        #pragma omp for schedule(static)
        for (int64_t ng = 0; ng < n * groups; ng++) {
            const float *xg = x + ng * cg * hw, *dyg = dy + ng * cg * hw;
            float *dxg = dx + ng * cg * hw;
            float mu = mean[ng], rs = rstd[ng];
            double sum_g = 0.0, sum_g_xhat = 0.0;
            for (int64_t ch = 0; ch < cg; ch++) {
                int64_t channel = (ng % groups) * cg + ch;
                float w = weight ? weight[channel] : 1.0f;
                const float *xc = xg + ch * hw, *dyc = dyg + ch * hw;
                // Per-channel sums of dy and dy xhat give both dbias/dweight and, times w,
                // this channel's share of the group sums of g = dy w.
                double sum_dy = 0.0, sum_dy_xhat = 0.0;
                #pragma omp simd reduction(+ : sum_dy, sum_dy_xhat)
                for (int64_t i = 0; i < hw; i++) {
                    sum_dy += dyc[i];
                    sum_dy_xhat += dyc[i] * (xc[i] - mu) * rs;
                    dxg[ch * hw + i] = dyc[i] * w;
                }
                sum_g += sum_dy * w;
                sum_g_xhat += sum_dy_xhat * w;
                if (dw) {
                    dw[channel] += (float)sum_dy_xhat;
                    dw[c + channel] += (float)sum_dy;
                }
            }
            span_input_grad(dxg, xg, mu, rs, cg * hw, sum_g, sum_g_xhat);
        }
    }
    affine_partials_finish(&partials, dweight, dbias);
}
