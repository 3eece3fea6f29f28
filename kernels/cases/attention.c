// Fused scaled-dot-product attention, forward and backward.
#include <math.h>
#include <stdlib.h>

#include "kernels/cases/ops.h"

#define FAMILY "attention"

// q, k, v (and dq, dk, dv) live in one allocation of 3 b t heads d floats: the packed thirds
// of a qkv projection, ld = 3 heads d, or three separate (b, t, heads, d) tensors one after
// another, ld = heads d. The offset of q (part 0), k (1) or v (2):
static int64_t attention_part(const AttentionParams *p, int part) {
    return part * p->heads * p->d * (p->packed ? 1 : p->b * p->t);
}
static int64_t attention_ld(const AttentionParams *p) {
    return (p->packed ? 3 : 1) * p->heads * p->d;
}
static float attention_scale(const AttentionParams *p) { return 1.0f / sqrtf((float)p->d); }

// For one (batch, head): prob (t, t) = softmax over j of scale q_i . k_j, lse (t); token i of
// q is q + i ld.
static void ref_attention_probs(double *prob, double *lse, const float *q, const float *k,
                                int64_t ld, int64_t t, int64_t d, double scale) {
    for (int64_t i = 0; i < t; i++) {
        for (int64_t j = 0; j < t; j++) {
            double dot = 0;
            for (int64_t e = 0; e < d; e++) dot += (double)q[i * ld + e] * k[j * ld + e];
            prob[i * t + j] = scale * dot;
        }
        lse[i] = logsumexp(prob + i * t, t);
        for (int64_t j = 0; j < t; j++) prob[i * t + j] = exp(prob[i * t + j] - lse[i]);
    }
}

// dp_ij = dout_i . v_j; ds = p (dp - sum_j p dp); dq = scale ds k; dk = scale ds^T q;
// dv = p^T dout, for one (batch, head) whose probabilities are prob
static void ref_attention_head_backward(float *dq, float *dk, float *dv, const float *dout,
                                        const float *q, const float *k, const float *v,
                                        const double *prob, double *ds,
                                        const AttentionParams *p, double scale) {
    int64_t t = p->t, d = p->d, ld = attention_ld(p), hd = p->heads * p->d;
    for (int64_t i = 0; i < t; i++) {
        double row = 0;
        for (int64_t j = 0; j < t; j++) {
            double dp = 0;
            for (int64_t e = 0; e < d; e++) dp += (double)dout[i * hd + e] * v[j * ld + e];
            ds[i * t + j] = dp;
            row += prob[i * t + j] * dp;
        }
        for (int64_t j = 0; j < t; j++) ds[i * t + j] = prob[i * t + j] * (ds[i * t + j] - row);
    }
    for (int64_t i = 0; i < t; i++) {
        for (int64_t e = 0; e < d; e++) {
            double gq = 0, gk = 0, gv = 0;
            for (int64_t j = 0; j < t; j++) {
                gq += ds[i * t + j] * k[j * ld + e];
                gk += ds[j * t + i] * q[j * ld + e];
                gv += prob[j * t + i] * dout[j * hd + e];
            }
            dq[i * ld + e] = (float)(scale * gq);
            dk[i * ld + e] = (float)(scale * gk);
            dv[i * ld + e] = (float)gv;
        }
    }
}

// qkv (3 b t heads d) -> out (b, t, heads, d), lse (b, heads, t); and, when dout (b, t, heads,
// d) is not NULL, dqkv (the layout of qkv).
static void ref_attention(float *out, float *lse, float *dqkv, const float *dout,
                          const float *qkv, const AttentionParams *p) {
    int64_t t = p->t, d = p->d, ld = attention_ld(p), hd = p->heads * p->d;
    double scale = attention_scale(p);
    double *prob = ref_alloc((size_t)(t * t) * sizeof(double));
    double *ds = ref_alloc((size_t)(t * t) * sizeof(double));
    double *row_lse = ref_alloc((size_t)t * sizeof(double));
    for (int64_t bi = 0; bi < p->b; bi++) {
        for (int64_t h = 0; h < p->heads; h++) {
            int64_t head = bi * t * ld + h * d; // token 0 of this head in q, k, v
            const float *q = qkv + attention_part(p, 0) + head;
            const float *k = qkv + attention_part(p, 1) + head;
            const float *v = qkv + attention_part(p, 2) + head;
            ref_attention_probs(prob, row_lse, q, k, ld, t, d, scale);
            for (int64_t i = 0; i < t; i++) {
                lse[(bi * p->heads + h) * t + i] = (float)row_lse[i];
                for (int64_t e = 0; e < d; e++) {
                    double o = 0;
                    for (int64_t j = 0; j < t; j++) o += prob[i * t + j] * v[j * ld + e];
                    out[(bi * t + i) * hd + h * d + e] = (float)o;
                }
            }
            if (dout)
                ref_attention_head_backward(
                    dqkv + attention_part(p, 0) + head, dqkv + attention_part(p, 1) + head,
                    dqkv + attention_part(p, 2) + head, dout + bi * t * hd + h * d, q, k, v,
                    prob, ds, p, scale);
        }
    }
    free(prob);
    free(ds);
    free(row_lse);
}

enum { ATT_QKV, ATT_OUT, ATT_LSE, ATT_DOUT, ATT_DQKV };

static void call_attention(const Backend *be, void *const *buf, const KernelCase *c) {
    const AttentionParams *p = &c->p.attention;
    const float *qkv = buf[ATT_QKV];
    be->attention(be, buf[ATT_OUT], buf[ATT_LSE], qkv + attention_part(p, 0),
                  qkv + attention_part(p, 1), qkv + attention_part(p, 2), attention_ld(p), p->b,
                  p->t, p->heads, p->d, attention_scale(p));
}

static void ref_attention_forward(void *const *host, const KernelCase *c) {
    ref_attention(host[ATT_OUT], host[ATT_LSE], NULL, NULL, host[ATT_QKV], &c->p.attention);
}

const KernelOp kop_attention = {"attention", FAMILY, call_attention, ref_attention_forward, NULL,
                               NULL};

// dq, dk, dv share one buffer in the qkv layout, so every element of all three is checked
static void call_attention_backward(const Backend *be, void *const *buf, const KernelCase *c) {
    const AttentionParams *p = &c->p.attention;
    const float *qkv = buf[ATT_QKV];
    float *dqkv = buf[ATT_DQKV];
    be->attention_backward(be, dqkv + attention_part(p, 0), dqkv + attention_part(p, 1),
                           dqkv + attention_part(p, 2), buf[ATT_DOUT], buf[ATT_OUT], buf[ATT_LSE],
                           qkv + attention_part(p, 0), qkv + attention_part(p, 1),
                           qkv + attention_part(p, 2), attention_ld(p), p->b, p->t, p->heads, p->d,
                           attention_scale(p));
}

static void ref_attention_backward(void *const *host, const KernelCase *c) {
    const AttentionParams *p = &c->p.attention;
    int64_t nout = p->b * p->t * p->heads * p->d, nlse = p->b * p->heads * p->t;
    float *out = ref_alloc((size_t)nout * sizeof(float));
    float *lse = ref_alloc((size_t)nlse * sizeof(float));
    ref_attention(out, lse, host[ATT_DQKV], host[ATT_DOUT], host[ATT_QKV], p);
    free(out);
    free(lse);
}

// out and lse from the reference forward
static void attention_forward_inputs(void *const *host, const KernelCase *c) {
    ref_attention_forward(host, c);
}

static void prepare_attention_backward(const Backend *be, void *const *buf,
                                       const KernelCase *c) {
    call_attention(be, buf, c);
}

const KernelOp kop_attention_backward = {"attention_backward", FAMILY, call_attention_backward,
                                        ref_attention_backward, attention_forward_inputs,
                                        prepare_attention_backward};

KernelCase *case_attention(CaseList *list, const char *name, const AttentionParams *p,
                           bool backward) {
    KernelCase *c = case_new(list, backward ? &kop_attention_backward : &kop_attention, name);
    c->p.attention = *p;
    int64_t nqkv = 3 * p->b * p->t * p->heads * p->d, nout = nqkv / 3;
    int64_t nlse = p->b * p->heads * p->t;
    case_in(c, "attention qkv", nqkv, -2, 2);
    if (backward) {
        case_in(c, "out", nout, -1, 1);
        case_in(c, "lse", nlse, 0, 1);
        case_in(c, "attention dout", nout, -1, 1);
        // GEMM-like sums over t and d of products of the forward's own roundings: rtol 1e-4,
        // atol 1e-5 for gradients near 0.
        case_out(c, "dq, dk, dv", nqkv, (CaseTol){1e-5, 1e-4});
    } else {
        // d-term scores, then a softmax and t-term weighted sums: rtol 1e-5, atol 1e-5 for
        // outputs (averages of values in [-1, 1]) near 0.
        case_out(c, "out", nout, (CaseTol){1e-5, 1e-5});
        case_out(c, "lse", nlse, (CaseTol){1e-5, 1e-5});
    }
    // The backward recomputes the probabilities and makes four GEMMs to the forward's two.
    double forward = 4.0 * (double)p->b * (double)p->heads * (double)p->t * (double)p->t *
                     (double)p->d;
    c->flops = backward ? 2.5 * forward : forward;
    case_shape(c, "b %lld, t %lld, heads %lld, d %lld, %s", (long long)p->b, (long long)p->t,
               (long long)p->heads, (long long)p->d,
               p->packed ? "packed qkv" : "separate q, k, v");
    return c;
}

void attention_test_cases(CaseList *list) {
    static const AttentionParams cases[] = {
        {2, 13, 3, 7, true}, {2, 13, 3, 7, false}, {1, 37, 2, 9, true},
        {1, 1, 2, 5, false}, {1, 64, 2, 64, true}, {2, 129, 4, 33, false},
    };
    for (int backward = 0; backward < 2; backward++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            case_attention(list, backward ? "attention_backward" : "attention", &cases[i],
                           backward);
}
