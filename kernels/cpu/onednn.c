// oneDNN matmul with a cache of primitives, one per distinct call (see onednn.h).
//
// Creating a primitive costs about as much as a small GEMM (oneDNN picks and JIT-compiles a
// kernel for the shapes), so every call is looked up first: a training step repeats the same
// few dozen GEMMs, and after the first step no primitive or memory object is made. The key
// holds everything a primitive is specialised for, the thread count included (oneDNN's
// OpenMP kernels split work by the count they were created for).
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "kernels/cpu/onednn.h"

typedef struct {
    OnednnType type;
    int64_t batch, m, n, k, stride_a, stride_b, stride_c;
    bool trans_a, trans_b;
    float alpha, beta;
    int threads;
} GemmKey;

typedef struct {
    GemmKey key;
    dnnl_primitive_t primitive; // NULL: oneDNN rejected this key (remembered, not retried)
    dnnl_memory_t a, b, c;      // descriptors bound to a primitive; data pointers set per call
    uint64_t last_use;
} GemmEntry;

// More distinct GEMMs than a DiT's training and sampling steps together make; past it the
// least recently used primitive is dropped.
#define CACHE_SIZE 256

static struct {
    bool tried, ok;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    GemmEntry entries[CACHE_SIZE];
    int count;
    uint64_t clock;
} g_dnnl;

// DMDR_ONEDNN from the environment, read once: "0" turns oneDNN off, "fp32" sends every fp32
// GEMM to it; anything else (or unset) is the default.
static const char *env_setting(void) {
    static const char *value;
    static bool read;
    if (!read) {
        const char *env = getenv("DMDR_ONEDNN");
        value = env && (strcmp(env, "0") == 0 || strcmp(env, "fp32") == 0) ? env : "";
        read = true;
    }
    return value;
}

static bool dnnl_ready(void) {
    if (!g_dnnl.tried) {
        g_dnnl.tried = true;
        g_dnnl.ok = strcmp(env_setting(), "0") != 0 &&
                    dnnl_engine_create(&g_dnnl.engine, dnnl_cpu, 0) == dnnl_success &&
                    dnnl_stream_create(&g_dnnl.stream, g_dnnl.engine,
                                       dnnl_stream_default_flags) == dnnl_success;
    }
    return g_dnnl.ok;
}

bool onednn_fp32_everywhere(void) { return dnnl_ready() && strcmp(env_setting(), "fp32") == 0; }

// Why bf16 is not native here, or NULL: asked once, as every bf16 GEMM asks it.
static const char *bf16_missing_reason(void) {
    if (strcmp(env_setting(), "0") == 0) return "oneDNN is turned off (DMDR_ONEDNN=0)";
    if (!dnnl_ready()) return "oneDNN could not start a CPU engine";
    // AVX512-BF16 (vdpbf16ps) or AMX; without them oneDNN would emulate bf16, slower than fp32
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16)
        return "this CPU has no AVX512-BF16 or AMX";
    return NULL;
}

const char *onednn_bf16_missing(void) {
    static const char *reason;
    static bool decided;
    if (!decided) {
        reason = bf16_missing_reason();
        decided = true;
    }
    return reason;
}

static bool key_equal(const GemmKey *x, const GemmKey *y) {
    return x->type == y->type && x->batch == y->batch && x->m == y->m && x->n == y->n &&
           x->k == y->k && x->stride_a == y->stride_a && x->stride_b == y->stride_b &&
           x->stride_c == y->stride_c && x->trans_a == y->trans_a && x->trans_b == y->trans_b &&
           x->alpha == y->alpha && x->beta == y->beta && x->threads == y->threads;
}

// A row-major (batch, rows, cols) operand, stored transposed (cols, rows) when `trans`, the
// items `stride` apart; a stride of 0 is one item that oneDNN broadcasts over the batch.
static dnnl_status_t operand_desc(dnnl_memory_desc_t *md, dnnl_data_type_t type, int64_t batch,
                                  int64_t rows, int64_t cols, bool trans, int64_t stride) {
    dnnl_dims_t dims = {stride == 0 ? 1 : batch, rows, cols};
    dnnl_dims_t strides = {stride == 0 ? rows * cols : stride, trans ? 1 : cols,
                           trans ? rows : 1};
    return dnnl_memory_desc_init_by_strides(md, 3, dims, type, strides);
}

static void entry_release(GemmEntry *e) {
    if (e->primitive) dnnl_primitive_destroy(e->primitive);
    if (e->a) dnnl_memory_destroy(e->a);
    if (e->b) dnnl_memory_destroy(e->b);
    if (e->c) dnnl_memory_destroy(e->c);
    *e = (GemmEntry){0};
}

// Fills e for its key: the primitive and one memory object per operand. On any refusal the
// entry keeps a NULL primitive.
static void entry_build(GemmEntry *e) {
    const GemmKey *k = &e->key;
    dnnl_data_type_t in = k->type == ONEDNN_BF16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_matmul_desc_t desc;
    bool ok = operand_desc(&a_md, in, k->batch, k->m, k->k, k->trans_a, k->stride_a) ==
                  dnnl_success &&
              operand_desc(&b_md, in, k->batch, k->k, k->n, k->trans_b, k->stride_b) ==
                  dnnl_success &&
              operand_desc(&c_md, dnnl_f32, k->batch, k->m, k->n, false, k->stride_c) ==
                  dnnl_success &&
              dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md) == dnnl_success &&
              dnnl_primitive_attr_create(&attr) == dnnl_success;
    // alpha is an output scale; beta a sum post-op, which reads C: c = alpha a b + beta c
    if (ok && k->alpha != 1.0f)
        ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha) == dnnl_success;
    if (ok && k->beta != 0.0f)
        ok = dnnl_post_ops_create(&post) == dnnl_success &&
             dnnl_post_ops_append_sum(post, k->beta) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, post) == dnnl_success;
    ok = ok && dnnl_primitive_desc_create(&pd, &desc, attr, g_dnnl.engine, NULL) == dnnl_success &&
         dnnl_primitive_create(&e->primitive, pd) == dnnl_success &&
         dnnl_memory_create(&e->a, &a_md, g_dnnl.engine, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&e->b, &b_md, g_dnnl.engine, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&e->c, &c_md, g_dnnl.engine, DNNL_MEMORY_NONE) == dnnl_success;
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (post) dnnl_post_ops_destroy(post);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) {
        GemmKey key = e->key;
        entry_release(e);
        e->key = key;
    }
}

// The entry for key: found, or built in a free slot or in place of the least recently used.
static GemmEntry *entry_for(const GemmKey *key) {
    for (int i = 0; i < g_dnnl.count; i++)
        if (key_equal(&g_dnnl.entries[i].key, key)) return &g_dnnl.entries[i];
    GemmEntry *e;
    if (g_dnnl.count < CACHE_SIZE) {
        e = &g_dnnl.entries[g_dnnl.count++];
    } else {
        e = &g_dnnl.entries[0];
        for (int i = 1; i < CACHE_SIZE; i++)
            if (g_dnnl.entries[i].last_use < e->last_use) e = &g_dnnl.entries[i];
        entry_release(e);
    }
    *e = (GemmEntry){.key = *key};
    entry_build(e);
    return e;
}

bool onednn_matmul(OnednnType type, float *c, const void *a, const void *b, int64_t batch,
                   int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float alpha,
                   float beta, int64_t stride_a, int64_t stride_b, int64_t stride_c) {
    if (!dnnl_ready() || batch <= 0 || m <= 0 || n <= 0 || k <= 0) return false;
    GemmKey key = {.type = type, .batch = batch, .m = m, .n = n, .k = k,
                   .stride_a = batch == 1 ? 0 : stride_a, .stride_b = batch == 1 ? 0 : stride_b,
                   .stride_c = batch == 1 ? m * n : stride_c, .trans_a = trans_a,
                   .trans_b = trans_b, .alpha = alpha, .beta = beta,
                   .threads = omp_get_max_threads()};
    GemmEntry *e = entry_for(&key);
    if (!e->primitive) return false;
    e->last_use = ++g_dnnl.clock;
    // oneDNN takes non-const handles; it only reads a and b
    if (dnnl_memory_set_data_handle(e->a, (void *)a) != dnnl_success ||
        dnnl_memory_set_data_handle(e->b, (void *)b) != dnnl_success ||
        dnnl_memory_set_data_handle(e->c, c) != dnnl_success)
        return false;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b},
                               {DNNL_ARG_DST, e->c}};
    DMDR_CHECK(dnnl_primitive_execute(e->primitive, g_dnnl.stream, 3, args) == dnnl_success &&
                   dnnl_stream_wait(g_dnnl.stream) == dnnl_success,
               "oneDNN matmul (%lld, %lld, %lld) x %lld failed to run", (long long)m,
               (long long)n, (long long)k, (long long)batch);
    return true;
}
