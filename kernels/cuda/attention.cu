// Scaled dot-product attention (no mask), forward and backward, fused in the FlashAttention
// way: no t x t matrix is ever stored in device memory.
//
// A block of 256 threads works on a 64 x 64 tile of scores S = scale q k^T (64 queries by
// 64 keys) at a time, held in shared memory with the tiles of q, k, v it is made from. The
// threads form a 16 x 16 grid; thread (tx, ty) computes the 4 x 4 scores of query rows
// ty + 16 a and key columns tx + 16 b (a, b < 4), so the 16 threads of a half-warp share
// their rows and reduce across them with shuffles. Row stride DMAX + 1 in shared memory
// keeps the column reads of the 16 threads on 16 different banks.
//
// - Forward: a block per (64 queries, head); it walks the key tiles keeping, per query row,
//   the running maximum m, the running sum l of exp(s - m) and the unnormalised output
//   (online softmax: when m grows, l and the output are scaled by exp(m_old - m_new)).
//   Finally out = output / l and lse = m + log l, saved for the backward as the CPU does.
// - Backward: delta_i = dout_i . out_i first (one warp per row); then one kernel per key
//   tile accumulates dk and dv over all query tiles, and one per query tile accumulates dq
//   over all key tiles, each recomputing P = exp(S - lse) from q, k and the saved lse.
//   Every output element is owned by one thread: no atomics, no zeroing, and dq, dk, dv
//   may be the thirds of one packed buffer.
//
// Head dims up to 128 (every DiT size) are compiled, as three tile widths DMAX = 32, 64,
// 128 (the columns past d are zero in shared memory).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/group.cuh"

#define TILE 64        // queries and keys per tile
#define TILE_THREADS 256
#define SUB 16         // the thread grid is SUB x SUB; each thread owns TILE / SUB rows
#define PER (TILE / SUB)
#define PS_STRIDE (TILE + 1) // row stride of the score tiles in shared memory

// Where one (batch, head) pair's tokens live: token i of q, k, v (and dq, dk, dv) at
// qkv + i ld, of out and dout at o + i heads d; its lse row at lse.
struct HeadView {
    int64_t qkv, o, lse;
    __device__ HeadView(int64_t pair, int64_t ld, int64_t t, int64_t heads, int64_t d) {
        int64_t batch = pair / heads, head = pair % heads;
        qkv = batch * t * ld + head * d;
        o = batch * t * heads * d + head * d;
        lse = pair * t;
    }
};

// tile (TILE, DMAX + 1) = rows [start, start + TILE) of src (token i at src + i ld, d
// columns), zero past token t and column d
template <int DMAX>
static __device__ __forceinline__ void load_tile(float *tile, const float *src, int64_t start,
                                                 int64_t t, int64_t ld, int d) {
    for (int i = threadIdx.x; i < TILE * DMAX; i += TILE_THREADS) {
        int r = i / DMAX, e = i % DMAX;
        int64_t token = start + r;
        tile[r * (DMAX + 1) + e] = token < t && e < d ? src[token * ld + e] : 0.0f;
    }
}

// acc[a][b] = sum over e < d of x[row a][e] y[col b][e] for this thread's rows ty + 16 a of
// tile x and rows tx + 16 b of tile y (both (TILE, DMAX + 1))
template <int DMAX>
static __device__ __forceinline__ void tile_dots(float acc[PER][PER], const float *x,
                                                 const float *y, int d) {
    int tx = threadIdx.x % SUB, ty = threadIdx.x / SUB;
#pragma unroll
    for (int a = 0; a < PER; a++)
#pragma unroll
        for (int b = 0; b < PER; b++) acc[a][b] = 0.0f;
    for (int e = 0; e < d; e++) {
        float xa[PER], yb[PER];
#pragma unroll
        for (int a = 0; a < PER; a++) xa[a] = x[(ty + SUB * a) * (DMAX + 1) + e];
#pragma unroll
        for (int b = 0; b < PER; b++) yb[b] = y[(tx + SUB * b) * (DMAX + 1) + e];
#pragma unroll
        for (int a = 0; a < PER; a++)
#pragma unroll
            for (int b = 0; b < PER; b++) acc[a][b] = fmaf(xa[a], yb[b], acc[a][b]);
    }
}

// acc[a][j] += sum over c < count of w(ty + 16 a, c) m[c][tx + 16 j] for this thread's rows:
// acc += W m, with W read from a (TILE, PS_STRIDE) score tile as stored (P or dS by query,
// for out and dq) or transposed (by key, for dk and dv), and m a (TILE, DMAX + 1) tile.
template <int DMAX, bool TRANSPOSED>
static __device__ __forceinline__ void tile_accumulate(float acc[PER][DMAX / SUB], const float *w,
                                                       const float *m, int count) {
    int tx = threadIdx.x % SUB, ty = threadIdx.x / SUB;
    for (int c = 0; c < count; c++) {
        float mj[DMAX / SUB];
#pragma unroll
        for (int j = 0; j < DMAX / SUB; j++) mj[j] = m[c * (DMAX + 1) + tx + SUB * j];
#pragma unroll
        for (int a = 0; a < PER; a++) {
            int row = ty + SUB * a;
            float wa = TRANSPOSED ? w[c * PS_STRIDE + row] : w[row * PS_STRIDE + c];
#pragma unroll
            for (int j = 0; j < DMAX / SUB; j++) acc[a][j] = fmaf(wa, mj[j], acc[a][j]);
        }
    }
}

// Reduction over the SUB threads sharing a row (a half-warp); all 32 lanes must call.
template <typename Op> static __device__ __forceinline__ float row_reduce(float v, Op op) {
#pragma unroll
    for (int offset = SUB / 2; offset > 0; offset >>= 1)
        v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Writes this thread's (PER, DMAX / SUB) block, times `scale`, to rows row0 + ty + 16 a
// (< t) and columns tx + 16 j (< d) of dst (token i at dst + i ld).
template <int DMAX>
static __device__ __forceinline__ void store_rows(float *dst, const float acc[PER][DMAX / SUB],
                                                  int64_t row0, int64_t t, int64_t ld, int d,
                                                  float scale) {
    int tx = threadIdx.x % SUB, ty = threadIdx.x / SUB;
#pragma unroll
    for (int a = 0; a < PER; a++) {
        int64_t row = row0 + ty + SUB * a;
        if (row >= t) continue;
#pragma unroll
        for (int j = 0; j < DMAX / SUB; j++) {
            int col = tx + SUB * j;
            if (col < d) dst[row * ld + col] = acc[a][j] * scale;
        }
    }
}

// ---- forward -------------------------------------------------------------------------------

// grid: (query tiles) x pairs, flattened. Shared: q tile, k tile, v tile, P tile.
template <int DMAX>
__global__ void __launch_bounds__(TILE_THREADS)
    attention_forward_kernel(float *out, float *lse, const float *q, const float *k,
                             const float *v, int64_t ld, int64_t t, int64_t heads, int d,
                             float scale, int64_t tiles) {
    DYNAMIC_SHARED(float, smem);
    float *qs = smem, *ks = qs + TILE * (DMAX + 1), *vs = ks + TILE * (DMAX + 1);
    float *ps = vs + TILE * (DMAX + 1);
    int tx = threadIdx.x % SUB, ty = threadIdx.x / SUB;
    int64_t pair = blockIdx.x / tiles, q0 = blockIdx.x % tiles * TILE;
    HeadView h(pair, ld, t, heads, d);
    load_tile<DMAX>(qs, q + h.qkv, q0, t, ld, d);

    float m[PER], l[PER], o[PER][DMAX / SUB];
#pragma unroll
    for (int a = 0; a < PER; a++) {
        m[a] = -INFINITY;
        l[a] = 0.0f;
#pragma unroll
        for (int j = 0; j < DMAX / SUB; j++) o[a][j] = 0.0f;
    }
    for (int64_t k0 = 0; k0 < t; k0 += TILE) {
        __syncthreads(); // the previous tile's k, v and P are no longer read
        load_tile<DMAX>(ks, k + h.qkv, k0, t, ld, d);
        load_tile<DMAX>(vs, v + h.qkv, k0, t, ld, d);
        __syncthreads();
        float s[PER][PER];
        tile_dots<DMAX>(s, qs, ks, d);
#pragma unroll
        for (int a = 0; a < PER; a++) {
            float tile_max = -INFINITY;
#pragma unroll
            for (int b = 0; b < PER; b++) {
                // keys past t score -inf: weight exp(-inf) = 0. A tile always holds a real
                // key, so the maximum below is finite.
                s[a][b] = k0 + tx + SUB * b < t ? s[a][b] * scale : -INFINITY;
                tile_max = fmaxf(tile_max, s[a][b]);
            }
            float m_new = fmaxf(m[a], row_reduce(tile_max, MaxOp()));
            float rescale = expf(m[a] - m_new); // 0 on the first tile (m = -inf)
            float row_sum = 0.0f;
#pragma unroll
            for (int b = 0; b < PER; b++) {
                s[a][b] = expf(s[a][b] - m_new);
                row_sum += s[a][b];
                ps[(ty + SUB * a) * PS_STRIDE + tx + SUB * b] = s[a][b];
            }
            l[a] = l[a] * rescale + row_reduce(row_sum, SumOp());
            m[a] = m_new;
#pragma unroll
            for (int j = 0; j < DMAX / SUB; j++) o[a][j] *= rescale;
        }
        __syncthreads();
        int keys = t - k0 < TILE ? (int)(t - k0) : TILE;
        tile_accumulate<DMAX, false>(o, ps, vs, keys); // o += P v
    }
#pragma unroll
    for (int a = 0; a < PER; a++) {
        float inv = 1.0f / l[a];
#pragma unroll
        for (int j = 0; j < DMAX / SUB; j++) o[a][j] *= inv;
        int64_t row = q0 + ty + SUB * a;
        if (tx == 0 && row < t) lse[h.lse + row] = m[a] + logf(l[a]);
    }
    store_rows<DMAX>(out + h.o, o, q0, t, heads * d, d, 1.0f);
}

// ---- backward ------------------------------------------------------------------------------

// delta (b, heads, t): delta_i = dout_i . out_i, one warp (or block) per row
template <int GROUP>
__global__ void attention_delta_kernel(float *delta, const float *dout, const float *out,
                                       int64_t rows, int64_t t, int64_t heads, int d) {
    int64_t row = group_row<GROUP>();
    if (row >= rows) return;
    int lane = group_lane<GROUP>(), size = group_size<GROUP>();
    int64_t pair = row / t, i = row % t;
    int64_t offset = ((pair / heads) * t + i) * heads * d + pair % heads * d;
    float part = 0.0f;
    for (int e = lane; e < d; e += size) part += dout[offset + e] * out[offset + e];
    part = group_reduce<GROUP>(part, SumOp());
    if (lane == 0) delta[row] = part;
}

// The probabilities P and the score gradients dS = P (dP - delta) of one (query tile, key
// tile), for this thread's 4 x 4 entries, into ps and dss (TILE, PS_STRIDE) as (query, key).
// qs, dos: the query tile's q and dout; ks, vs: the key tile's k and v; lse_s, delta_s: the
// query rows' lse (+inf past t, so that P = 0 there) and delta.
template <int DMAX>
static __device__ __forceinline__ void tile_probs_grads(float *ps, float *dss, const float *qs,
                                                        const float *dos, const float *ks,
                                                        const float *vs, const float *lse_s,
                                                        const float *delta_s, int64_t k0,
                                                        int64_t t, int d, float scale) {
    int tx = threadIdx.x % SUB, ty = threadIdx.x / SUB;
    float s[PER][PER], dp[PER][PER];
    tile_dots<DMAX>(s, qs, ks, d);
    tile_dots<DMAX>(dp, dos, vs, d);
#pragma unroll
    for (int a = 0; a < PER; a++) {
        int r = ty + SUB * a;
#pragma unroll
        for (int b = 0; b < PER; b++) {
            int c = tx + SUB * b;
            float p = k0 + c < t ? expf(s[a][b] * scale - lse_s[r]) : 0.0f;
            if (ps) ps[r * PS_STRIDE + c] = p;
            dss[r * PS_STRIDE + c] = p * (dp[a][b] - delta_s[r]);
        }
    }
}

// lse_s, delta_s (TILE) = rows [q0, q0 + TILE) of this pair's lse and delta
static __device__ __forceinline__ void load_row_stats(float *lse_s, float *delta_s,
                                                      const float *lse, const float *delta,
                                                      int64_t q0, int64_t t) {
    for (int r = threadIdx.x; r < TILE; r += TILE_THREADS) {
        bool inside = q0 + r < t;
        lse_s[r] = inside ? lse[q0 + r] : INFINITY;
        delta_s[r] = inside ? delta[q0 + r] : 0.0f;
    }
}

// grid: (key tiles) x pairs. dk, dv of the block's 64 keys, summed over every query tile:
// dv = P^T dout, dk = scale dS^T q. Shared: k, v, q, dout tiles, P, dS, lse and delta rows.
template <int DMAX>
__global__ void __launch_bounds__(TILE_THREADS)
    attention_dkv_kernel(float *dk, float *dv, const float *dout, const float *lse,
                         const float *delta, const float *q, const float *k, const float *v,
                         int64_t ld, int64_t t, int64_t heads, int d, float scale,
                         int64_t tiles) {
    DYNAMIC_SHARED(float, smem);
    float *ks = smem, *vs = ks + TILE * (DMAX + 1), *qs = vs + TILE * (DMAX + 1);
    float *dos = qs + TILE * (DMAX + 1), *ps = dos + TILE * (DMAX + 1);
    float *dss = ps + TILE * PS_STRIDE, *lse_s = dss + TILE * PS_STRIDE, *delta_s = lse_s + TILE;
    int64_t pair = blockIdx.x / tiles, k0 = blockIdx.x % tiles * TILE;
    HeadView h(pair, ld, t, heads, d);
    load_tile<DMAX>(ks, k + h.qkv, k0, t, ld, d);
    load_tile<DMAX>(vs, v + h.qkv, k0, t, ld, d);

    float dk_acc[PER][DMAX / SUB] = {}, dv_acc[PER][DMAX / SUB] = {};
    for (int64_t q0 = 0; q0 < t; q0 += TILE) {
        __syncthreads(); // the previous query tile's q, dout, P, dS are no longer read
        load_tile<DMAX>(qs, q + h.qkv, q0, t, ld, d);
        load_tile<DMAX>(dos, dout + h.o, q0, t, heads * d, d);
        load_row_stats(lse_s, delta_s, lse + h.lse, delta + h.lse, q0, t);
        __syncthreads();
        tile_probs_grads<DMAX>(ps, dss, qs, dos, ks, vs, lse_s, delta_s, k0, t, d, scale);
        __syncthreads();
        int queries = t - q0 < TILE ? (int)(t - q0) : TILE;
        tile_accumulate<DMAX, true>(dv_acc, ps, dos, queries); // dv += P^T dout
        tile_accumulate<DMAX, true>(dk_acc, dss, qs, queries); // dk += dS^T q
    }
    store_rows<DMAX>(dv + h.qkv, dv_acc, k0, t, ld, d, 1.0f);
    store_rows<DMAX>(dk + h.qkv, dk_acc, k0, t, ld, d, scale);
}

// grid: (query tiles) x pairs. dq of the block's 64 queries, summed over every key tile:
// dq = scale dS k. Shared: q, dout, k, v tiles, dS, lse and delta rows.
template <int DMAX>
__global__ void __launch_bounds__(TILE_THREADS)
    attention_dq_kernel(float *dq, const float *dout, const float *lse, const float *delta,
                        const float *q, const float *k, const float *v, int64_t ld, int64_t t,
                        int64_t heads, int d, float scale, int64_t tiles) {
    DYNAMIC_SHARED(float, smem);
    float *qs = smem, *dos = qs + TILE * (DMAX + 1), *ks = dos + TILE * (DMAX + 1);
    float *vs = ks + TILE * (DMAX + 1), *dss = vs + TILE * (DMAX + 1);
    float *lse_s = dss + TILE * PS_STRIDE, *delta_s = lse_s + TILE;
    int64_t pair = blockIdx.x / tiles, q0 = blockIdx.x % tiles * TILE;
    HeadView h(pair, ld, t, heads, d);
    load_tile<DMAX>(qs, q + h.qkv, q0, t, ld, d);
    load_tile<DMAX>(dos, dout + h.o, q0, t, heads * d, d);
    load_row_stats(lse_s, delta_s, lse + h.lse, delta + h.lse, q0, t);

    float dq_acc[PER][DMAX / SUB] = {};
    for (int64_t k0 = 0; k0 < t; k0 += TILE) {
        __syncthreads(); // the previous key tile's k, v, dS are no longer read
        load_tile<DMAX>(ks, k + h.qkv, k0, t, ld, d);
        load_tile<DMAX>(vs, v + h.qkv, k0, t, ld, d);
        __syncthreads();
        tile_probs_grads<DMAX>(nullptr, dss, qs, dos, ks, vs, lse_s, delta_s, k0, t, d, scale);
        __syncthreads();
        int keys = t - k0 < TILE ? (int)(t - k0) : TILE;
        tile_accumulate<DMAX, false>(dq_acc, dss, ks, keys); // dq += dS k
    }
    store_rows<DMAX>(dq + h.qkv, dq_acc, q0, t, ld, d, scale);
}

// ---- launching -----------------------------------------------------------------------------

// Dynamic shared memory of each kernel, in bytes
template <int DMAX> static size_t forward_smem(void) {
    return sizeof(float) * (3 * TILE * (DMAX + 1) + TILE * PS_STRIDE);
}
template <int DMAX> static size_t dkv_smem(void) {
    return sizeof(float) * (4 * TILE * (DMAX + 1) + 2 * TILE * PS_STRIDE + 2 * TILE);
}
template <int DMAX> static size_t dq_smem(void) {
    return sizeof(float) * (4 * TILE * (DMAX + 1) + TILE * PS_STRIDE + 2 * TILE);
}

// Kernels using more than 48 KiB of dynamic shared memory must say so once.
template <typename Kernel> static void allow_smem(Kernel kernel, size_t bytes, bool *done) {
    if (*done) return;
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)bytes));
    *done = true;
}

// The grid of one tile per (64 tokens, pair), flattened into x.
static unsigned tile_grid(int64_t pairs, int64_t tiles) {
    DMDR_CHECK(pairs * tiles < ((int64_t)1 << 31), "attention with %lld heads of %lld tokens "
               "exceeds one CUDA grid", (long long)pairs, (long long)(tiles * TILE));
    return (unsigned)(pairs * tiles);
}

template <int DMAX>
static void forward(const Backend *be, float *out, float *lse, const float *q, const float *k,
                    const float *v, int64_t ld, int64_t b, int64_t t, int64_t heads, int d,
                    float scale) {
    static bool ready;
    int64_t tiles = (t + TILE - 1) / TILE;
    size_t smem = forward_smem<DMAX>();
    allow_smem(attention_forward_kernel<DMAX>, smem, &ready);
    unsigned grid = tile_grid(b * heads, tiles);
    KERNEL_LAUNCH(be, grid, TILE_THREADS, smem, attention_forward_kernel<DMAX>)(
        out, lse, q, k, v, ld, t, heads, d, scale, tiles);
    CUDA_LAUNCH_CHECK(be);
}

template <int DMAX>
static void backward(const Backend *be, float *dq, float *dk, float *dv, const float *dout,
                     const float *lse, const float *delta, const float *q, const float *k,
                     const float *v, int64_t ld, int64_t b, int64_t t, int64_t heads, int d,
                     float scale) {
    static bool dkv_ready, dq_ready;
    int64_t tiles = (t + TILE - 1) / TILE;
    unsigned grid = tile_grid(b * heads, tiles);
    size_t smem = dkv_smem<DMAX>();
    allow_smem(attention_dkv_kernel<DMAX>, smem, &dkv_ready);
    KERNEL_LAUNCH(be, grid, TILE_THREADS, smem, attention_dkv_kernel<DMAX>)(
        dk, dv, dout, lse, delta, q, k, v, ld, t, heads, d, scale, tiles);
    CUDA_LAUNCH_CHECK(be);
    smem = dq_smem<DMAX>();
    allow_smem(attention_dq_kernel<DMAX>, smem, &dq_ready);
    KERNEL_LAUNCH(be, grid, TILE_THREADS, smem, attention_dq_kernel<DMAX>)(
        dq, dout, lse, delta, q, k, v, ld, t, heads, d, scale, tiles);
    CUDA_LAUNCH_CHECK(be);
}

static void check_head_dim(int64_t d) {
    DMDR_CHECK(d >= 1 && d <= 128, "the CUDA attention kernels take head dims 1..128, got %lld",
               (long long)d);
}

// q, k, v (b, t, heads, d) at stride ld -> out (b, t, heads, d), lse (b, heads, t)
void cuda_attention(const Backend *be, float *out, float *lse, const float *q, const float *k,
                    const float *v, int64_t ld, int64_t b, int64_t t, int64_t heads, int64_t d,
                    float scale) {
    if (b * heads == 0 || t == 0) return;
    check_head_dim(d);
    if (d <= 32) forward<32>(be, out, lse, q, k, v, ld, b, t, heads, (int)d, scale);
    else if (d <= 64) forward<64>(be, out, lse, q, k, v, ld, b, t, heads, (int)d, scale);
    else forward<128>(be, out, lse, q, k, v, ld, b, t, heads, (int)d, scale);
}

// dout, out (b, t, heads, d), lse (b, heads, t), q, k, v (b, t, heads, d) at stride ld
// -> dq, dk, dv (b, t, heads, d) at stride ld
void cuda_attention_backward(const Backend *be, float *dq, float *dk, float *dv, const float *dout,
                             const float *out, const float *lse, const float *q, const float *k,
                             const float *v, int64_t ld, int64_t b, int64_t t, int64_t heads,
                             int64_t d, float scale) {
    int64_t rows = b * heads * t;
    if (rows == 0) return;
    check_head_dim(d);
    float *delta = (float *)cuda_scratch(be, (size_t)rows * sizeof(float));
    LAUNCH_ROWS(be, rows, d, attention_delta_kernel, delta, dout, out, rows, t, heads, (int)d);
    int di = (int)d;
    if (d <= 32)
        backward<32>(be, dq, dk, dv, dout, lse, delta, q, k, v, ld, b, t, heads, di, scale);
    else if (d <= 64)
        backward<64>(be, dq, dk, dv, dout, lse, delta, q, k, v, ld, b, t, heads, di, scale);
    else
        backward<128>(be, dq, dk, dv, dout, lse, delta, q, k, v, ld, b, t, heads, di, scale);
}
