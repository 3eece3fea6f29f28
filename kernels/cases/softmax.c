// Softmax and the losses: softmax and log-softmax, cross-entropy, squared error, and their
// backwards.
#include <math.h>
#include <stdlib.h>

#include "kernels/cases/ops.h"

#define FAMILY "softmax and losses"

// lse (rows) of x (rows, cols)
static double *rows_logsumexp(const float *x, int64_t rows, int64_t cols) {
    double *lse = ref_alloc((size_t)rows * sizeof(double));
    double *row = ref_alloc((size_t)cols * sizeof(double));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < cols; j++) row[j] = x[r * cols + j];
        lse[r] = logsumexp(row, cols);
    }
    free(row);
    return lse;
}

// ---- softmax ----------------------------------------------------------------------------------

enum { SM_X, SM_Y };                          // forward
enum { SM_DY = SM_Y + 1, SM_DX };             // backward: x (host only), y, dy, dx

static void call_softmax(const Backend *be, void *const *buf, const KernelCase *c) {
    const RowsParams *p = &c->p.rows;
    be->softmax(be, buf[SM_Y], buf[SM_X], p->rows, p->cols, p->log);
}

// y (rows, cols) = softmax or log-softmax of x over cols
static void ref_softmax(void *const *host, const KernelCase *c) {
    const RowsParams *p = &c->p.rows;
    const float *x = host[SM_X];
    float *y = host[SM_Y];
    double *lse = rows_logsumexp(x, p->rows, p->cols);
    for (int64_t i = 0; i < p->rows * p->cols; i++)
        y[i] = (float)(p->log ? x[i] - lse[i / p->cols] : exp(x[i] - lse[i / p->cols]));
    free(lse);
}

const KernelOp kop_softmax = {"softmax", FAMILY, call_softmax, ref_softmax, NULL, NULL};

static void call_softmax_backward(const Backend *be, void *const *buf, const KernelCase *c) {
    const RowsParams *p = &c->p.rows;
    be->softmax_backward(be, buf[SM_DX], buf[SM_Y], buf[SM_DY], p->rows, p->cols, p->log);
}

// dx (rows, cols) from y = softmax(x) (or log-softmax) and dy
static void ref_softmax_backward(void *const *host, const KernelCase *c) {
    const RowsParams *p = &c->p.rows;
    int64_t cols = p->cols;
    const float *y = host[SM_Y], *dy = host[SM_DY];
    float *dx = host[SM_DX];
    for (int64_t r = 0; r < p->rows; r++) {
        const float *yr = y + r * cols, *dyr = dy + r * cols;
        double dot = 0; // softmax: sum dy y; log-softmax: sum dy
        for (int64_t j = 0; j < cols; j++) dot += p->log ? dyr[j] : (double)dyr[j] * yr[j];
        for (int64_t j = 0; j < cols; j++)
            dx[r * cols + j] =
                (float)(p->log ? dyr[j] - exp(yr[j]) * dot : yr[j] * (dyr[j] - dot));
    }
}

// y = the forward of the host x, from the reference
static void softmax_y(void *const *host, const KernelCase *c) { ref_softmax(host, c); }

const KernelOp kop_softmax_backward = {"softmax_backward", FAMILY, call_softmax_backward,
                                       ref_softmax_backward, softmax_y, NULL};

KernelCase *case_softmax(CaseList *list, const char *name, int64_t rows, int64_t cols, bool log,
                         float lo, float hi, bool backward) {
    KernelCase *c = case_new(list, backward ? &kop_softmax_backward : &kop_softmax, name);
    c->p.rows = (RowsParams){rows, cols, log};
    int64_t n = rows * cols;
    CaseBuffer *x = case_in(c, "softmax x", n, lo, hi);
    if (backward) {
        x->role = CASE_HOST;
        case_in(c, "y", n, 0, 1);
        case_in(c, "softmax dy", n, -1, 1);
        // dy minus a cols-term sum, times y: rtol 1e-5, atol 1e-6 where the difference cancels.
        case_out(c, "dx", n, (CaseTol){1e-6, 1e-5});
    } else {
        // exp and a cols-term sum: rtol 1e-5; atol 1e-7 for probabilities that underflow.
        case_out(c, "y", n, (CaseTol){1e-7, 1e-5});
    }
    c->bytes = 4.0 * (backward ? 3.0 : 2.0) * (double)n;
    case_shape(c, "(%lld,%lld)", (long long)rows, (long long)cols);
    return c;
}

// ---- cross-entropy ------------------------------------------------------------------------------

enum { CE_LOGITS, CE_TARGET, CE_LOSS };                 // forward
enum { CE_DLOSS = CE_LOSS, CE_DLOGITS };                // backward

static void call_cross_entropy(const Backend *be, void *const *buf, const KernelCase *c) {
    be->cross_entropy(be, buf[CE_LOSS], buf[CE_LOGITS], buf[CE_TARGET], c->p.rows.rows,
                      c->p.rows.cols);
}

// loss (rows) = logsumexp of a row minus its target's logit
static void ref_cross_entropy(void *const *host, const KernelCase *c) {
    const RowsParams *p = &c->p.rows;
    const float *logits = host[CE_LOGITS];
    const int32_t *target = host[CE_TARGET];
    float *loss = host[CE_LOSS];
    double *lse = rows_logsumexp(logits, p->rows, p->cols);
    for (int64_t r = 0; r < p->rows; r++)
        loss[r] = (float)(lse[r] - logits[r * p->cols + target[r]]);
    free(lse);
}

const KernelOp kop_cross_entropy = {"cross_entropy", FAMILY, call_cross_entropy,
                                   ref_cross_entropy, NULL, NULL};

static void call_cross_entropy_backward(const Backend *be, void *const *buf,
                                        const KernelCase *c) {
    be->cross_entropy_backward(be, buf[CE_DLOGITS], buf[CE_DLOSS], buf[CE_LOGITS], buf[CE_TARGET],
                               c->p.rows.rows, c->p.rows.cols);
}

// dlogits (rows, classes) = (softmax(logits_r) - onehot(target_r)) dloss[r]
static void ref_cross_entropy_backward(void *const *host, const KernelCase *c) {
    const RowsParams *p = &c->p.rows;
    const float *logits = host[CE_LOGITS], *dloss = host[CE_DLOSS];
    const int32_t *target = host[CE_TARGET];
    float *dlogits = host[CE_DLOGITS];
    double *lse = rows_logsumexp(logits, p->rows, p->cols);
    for (int64_t i = 0; i < p->rows * p->cols; i++) {
        int64_t r = i / p->cols;
        double onehot = i % p->cols == target[r];
        dlogits[i] = (float)((exp(logits[i] - lse[r]) - onehot) * dloss[r]);
    }
    free(lse);
}

const KernelOp kop_cross_entropy_backward = {"cross_entropy_backward", FAMILY,
                                            call_cross_entropy_backward,
                                            ref_cross_entropy_backward, NULL, NULL};

KernelCase *case_cross_entropy(CaseList *list, const char *name, int64_t rows, int64_t classes,
                               float lo, float hi, bool backward) {
    KernelCase *c = case_new(list, backward ? &kop_cross_entropy_backward : &kop_cross_entropy,
                             name);
    c->p.rows = (RowsParams){rows, classes, false};
    case_in(c, "ce logits", rows * classes, lo, hi);
    case_ints(c, "ce target", rows, (int32_t)classes);
    if (backward) {
        case_in(c, "ce dloss", rows, -1, 1);
        // (softmax - onehot) dloss: rtol 1e-5, atol 1e-7 for probabilities that underflow.
        case_out(c, "dlogits", rows * classes, (CaseTol){1e-7, 1e-5});
    } else {
        // logsumexp of a row minus one logit: rtol 1e-5, atol 1e-5 (a lone class has loss 0).
        case_out(c, "loss", rows, (CaseTol){1e-5, 1e-5});
    }
    c->bytes = 4.0 * ((backward ? 2.0 : 1.0) * (double)rows * (double)classes + 2.0 * (double)rows);
    case_shape(c, "(%lld,%lld)", (long long)rows, (long long)classes);
    return c;
}

// ---- squared error ------------------------------------------------------------------------------

enum { SE_A, SE_B, SE_Y };                      // forward
enum { SE_DY = SE_Y, SE_DA, SE_DB };            // backward

static void call_squared_error(const Backend *be, void *const *buf, const KernelCase *c) {
    be->squared_error(be, buf[SE_Y], buf[SE_A], buf[SE_B], c->p.squared_error.n);
}

static void ref_squared_error(void *const *host, const KernelCase *c) {
    const float *a = host[SE_A], *b = host[SE_B];
    double sum = 0;
    for (int64_t i = 0; i < c->p.squared_error.n; i++)
        sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    *(float *)host[SE_Y] = (float)sum;
}

const KernelOp kop_squared_error = {"squared_error", FAMILY, call_squared_error,
                                   ref_squared_error, NULL, NULL};

static void call_squared_error_backward(const Backend *be, void *const *buf,
                                        const KernelCase *c) {
    const SquaredErrorParams *p = &c->p.squared_error;
    be->squared_error_backward(be, buf[SE_DA], buf[SE_DB], buf[SE_DY], buf[SE_A], buf[SE_B],
                               p->scale, p->n);
}

// da (n) = scale dy (a - b); db = -da
static void ref_squared_error_backward(void *const *host, const KernelCase *c) {
    const SquaredErrorParams *p = &c->p.squared_error;
    const float *a = host[SE_A], *b = host[SE_B], *dy = host[SE_DY];
    float *da = host[SE_DA], *db = host[SE_DB];
    for (int64_t i = 0; i < p->n; i++) {
        float v = (float)((double)p->scale * dy[0] * ((double)a[i] - b[i]));
        if (da) da[i] = v;
        if (db) db[i] = -v;
    }
}

const KernelOp kop_squared_error_backward = {"squared_error_backward", FAMILY,
                                            call_squared_error_backward,
                                            ref_squared_error_backward, NULL, NULL};

// outputs (backward): bit 0 da, bit 1 db
KernelCase *case_squared_error(CaseList *list, const char *name, int64_t n, bool backward,
                               int outputs) {
    KernelCase *c = case_new(list, backward ? &kop_squared_error_backward : &kop_squared_error,
                             name);
    c->p.squared_error = (SquaredErrorParams){n, 2.0f / (float)n, outputs};
    case_in(c, "se a", n, -1, 1);
    case_in(c, "se b", n, -1, 1);
    if (backward) {
        CaseBuffer *dy = case_in(c, "dy", 1, 0.37f, 0.37f); // a device scalar
        dy->fill = FILL_CONST;
        // A few multiplications per element: rtol 1e-6.
        case_optional_out(c, "da", n, outputs & 1, (CaseTol){1e-7, 1e-6});
        case_optional_out(c, "db", n, outputs & 2, (CaseTol){1e-7, 1e-6});
    } else {
        // A sum of n squares: rtol 1e-5.
        case_out(c, "y", 1, (CaseTol){0, 1e-5});
    }
    c->bytes = 4.0 * (backward ? 4.0 : 2.0) * (double)n;
    case_shape(c, "n=%lld", (long long)n);
    return c;
}

// ---- test cases ---------------------------------------------------------------------------------

void softmax_test_cases(CaseList *list) {
    static const struct {
        int64_t rows, cols;
        float lo, hi;
    } rows[] = {
        {7, 13, -5, 5},
        {37, 129, -5, 5},
        {3, 1031, -50, 120}, // exp(120) overflows float: only a max-shifted softmax survives
        {129, 1031, -5, 5},  // beyond 100k elements
        {5, 1, -5, 5},       // a single column
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        for (int backward = 0; backward < 2; backward++) {
            for (int log = 0; log < 2; log++)
                case_softmax(list, log ? "log-softmax" : "softmax", rows[i].rows, rows[i].cols,
                             log, rows[i].lo, rows[i].hi, backward);
            case_cross_entropy(list, "cross_entropy", rows[i].rows, rows[i].cols, rows[i].lo,
                               rows[i].hi, backward);
        }
    }
    static const int64_t sizes[] = {7, 129, CASE_LARGE};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        case_squared_error(list, "squared_error", sizes[i], false, 0);
        for (int outputs = 3; outputs >= 1; outputs--) // both, da only, db only
            case_squared_error(list, outputs == 3 ? "both" : outputs == 1 ? "db NULL" : "da NULL",
                               sizes[i], true, outputs);
    }
}
