// Weights in their file's format: every kernel here reads f32, f16, bf16
// or ggml blocks in place (byte-exact with the CPU's quant/ files) and
// dequantizes them in registers as it goes; nothing is widened in memory.

// The dtype codes the Rust side passes (cuda/source.rs, `dtype_code`).
#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2
#define DT_Q8_0 3
#define DT_Q4_0 4
#define DT_Q4_1 5
#define DT_Q5_0 6
#define DT_Q4_K 7
#define DT_Q6_K 8

// Q4_K's six-bit scale and min of sub-block j (0..8) from its 12 bytes.
__device__ __forceinline__ void q4k_scale_min(int j, const u8* s, float* sc, float* m) {
    if (j < 4) {
        *sc = (float)(s[j] & 63);
        *m = (float)(s[j + 4] & 63);
    } else {
        *sc = (float)((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
        *m = (float)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// Element e of a row stored as `dtype`.
__device__ __forceinline__ float value_at(const u8* row, int dtype, int e) {
    switch (dtype) {
    case DT_F32:
        return ((const float*)row)[e];
    case DT_F16:
        return half_to_float(((const u16*)row)[e]);
    case DT_BF16:
        return bf16_to_float(((const u16*)row)[e]);
    case DT_Q8_0: {
        const u8* b = row + (size_t)(e / 32) * 34;
        return half_at(b, 0) * (float)(signed char)b[2 + e % 32];
    }
    case DT_Q4_0: {
        const u8* b = row + (size_t)(e / 32) * 18;
        int j = e % 32;
        u8 q = b[2 + j % 16];
        int c = j < 16 ? (q & 15) : (q >> 4);
        return ((float)c - 8.0f) * half_at(b, 0);
    }
    case DT_Q4_1: {
        const u8* b = row + (size_t)(e / 32) * 20;
        int j = e % 32;
        u8 q = b[4 + j % 16];
        int c = j < 16 ? (q & 15) : (q >> 4);
        return (float)c * half_at(b, 0) + half_at(b, 2);
    }
    case DT_Q5_0: {
        const u8* b = row + (size_t)(e / 32) * 22;
        int j = e % 32;
        u32 qh = (u32)b[2] | ((u32)b[3] << 8) | ((u32)b[4] << 16) | ((u32)b[5] << 24);
        u8 q = b[6 + j % 16];
        int c = (j < 16 ? (q & 15) : (q >> 4)) | (((qh >> j) & 1) << 4);
        return ((float)c - 16.0f) * half_at(b, 0);
    }
    case DT_Q4_K: {
        const u8* b = row + (size_t)(e / 256) * 144;
        int j = e % 256, k = j / 64, hi = (j % 64) / 32, i = j % 32;
        float sc, m;
        q4k_scale_min(2 * k + hi, b + 4, &sc, &m);
        u8 q = b[16 + 32 * k + i];
        int c = hi ? (q >> 4) : (q & 15);
        return half_at(b, 0) * sc * (float)c - half_at(b, 2) * m;
    }
    case DT_Q6_K: {
        const u8* b = row + (size_t)(e / 256) * 210;
        int j = e % 256, h = j / 128, quarter = (j % 128) / 32, i = j % 32;
        const u8* ql = b + 64 * h;
        u8 qh = b[128 + 32 * h + i];
        int c;
        switch (quarter) {
        case 0: c = (ql[i] & 15) | ((qh & 3) << 4); break;
        case 1: c = (ql[i + 32] & 15) | (((qh >> 2) & 3) << 4); break;
        case 2: c = (ql[i] >> 4) | (((qh >> 4) & 3) << 4); break;
        default: c = (ql[i + 32] >> 4) | (((qh >> 6) & 3) << 4); break;
        }
        return half_at(b, 208) * (float)(signed char)b[192 + j / 16] * (float)(c - 32);
    }
    }
    return 0.0f;
}

// ANCHOR: row_dot
// x · row for one weight row of `cols` values stored as DT, summed by one
// warp: lane i takes the 32-value blocks i, i + 32, …, and unrolls each
// block, so all of a block's loads are independent and in flight at once.
// (Lanes over single values, the first version, left each lane a chain of
// dependent loads, one memory round trip per 32 values: a SmolLM2 decode
// step then waited on memory latency, not on launches.) K-quant
// super-blocks go 32 values at a time the same way; a plain-float row
// whose length is no multiple of 32 ends value by value.
//
// PADDED: x is a row staged in shared memory, value e at e + e/32 (see
// staged_row), so that lanes 32 values apart read different banks.
template <int DT, bool PADDED>
__device__ __forceinline__ float row_dot(const u8* row, int cols, const float* x, int lane) {
    float acc = 0.0f;
    int blocks = cols / 32;
    for (int i = lane; i < blocks; i += WARP) {
        const float* xb = x + (PADDED ? 33 : 32) * i;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 32; j++) s += value_at(row, DT, 32 * i + j) * xb[j];
        acc += s;
    }
    for (int e = 32 * blocks + lane; e < cols; e += WARP)
        acc += value_at(row, DT, e) * x[PADDED ? e + e / 32 : e];
    return acc;
}

// row_dot for a dtype known only at run time (one switch per row).
template <bool PADDED>
__device__ float row_dot_any(const u8* row, int dtype, int cols, const float* x, int lane) {
    switch (dtype) {
    case DT_F32: return row_dot<DT_F32, PADDED>(row, cols, x, lane);
    case DT_F16: return row_dot<DT_F16, PADDED>(row, cols, x, lane);
    case DT_BF16: return row_dot<DT_BF16, PADDED>(row, cols, x, lane);
    case DT_Q8_0: return row_dot<DT_Q8_0, PADDED>(row, cols, x, lane);
    case DT_Q4_0: return row_dot<DT_Q4_0, PADDED>(row, cols, x, lane);
    case DT_Q4_1: return row_dot<DT_Q4_1, PADDED>(row, cols, x, lane);
    case DT_Q5_0: return row_dot<DT_Q5_0, PADDED>(row, cols, x, lane);
    case DT_Q4_K: return row_dot<DT_Q4_K, PADDED>(row, cols, x, lane);
    case DT_Q6_K: return row_dot<DT_Q6_K, PADDED>(row, cols, x, lane);
    }
    return 0.0f;
}
// ANCHOR_END: row_dot

// ANCHOR: staged_row
// How the single-row products read their activation row (`x_mode`):
#define X_GLOBAL 0  // from global memory, as it lies (rows too wide to stage)
#define X_STAGED 1  // copied once per block into shared memory
#define X_NORMED 2  // normalized once per block into shared memory (RMSNorm)

// The block's threads put their activation row into shared memory once,
// for every warp of the block to read: value e at e + e/32. row_dot's
// lanes read values 32 apart; from global memory each such load touched
// 32 cache lines, and without the pad word all 32 would fall in one of
// shared memory's banks and be served one at a time. With `normed`, the
// row is normalized on the way, x[e] · inv · g[e] as the rmsnorm kernel
// computes it: the norm that feeds a product, inside the product's kernel.
// (A first fused version had each warp find the scale itself and multiply
// by g as it read x from global memory: the norm's launch was gone, but
// on an H200 the fused kernels took longer than the two they replaced.)
// Every thread of the block must call it.
__device__ void staged_row(const float* x, const float* g, float eps, int cols, int normed, float* xs) {
    __shared__ float scratch[WARP];
    float inv = 1.0f;
    if (normed) {
        float ss = 0.0f;
        for (int e = threadIdx.x; e < cols; e += blockDim.x) ss += x[e] * x[e];
        inv = rms_inv(block_sum(ss, scratch), cols, eps);
    }
    for (int e = threadIdx.x; e < cols; e += blockDim.x) xs[e + e / 32] = normed ? x[e] * inv * g[e] : x[e];
    __syncthreads();
}

// x · row by one warp, x as `x_mode` says: `xs` when staged, `xt` otherwise.
__device__ __forceinline__ float staged_dot(const u8* row, int dtype, int cols, const float* xt, const float* xs,
                                            int x_mode, int lane) {
    return x_mode == X_GLOBAL ? row_dot_any<false>(row, dtype, cols, xt, lane)
                              : row_dot_any<true>(row, dtype, cols, xs, lane);
}
// ANCHOR_END: staged_row

// ANCHOR: linear_rows
// out[t·out_stride + r] = x[t] · w[r] (added to what is there when
// `accumulate`: a residual connection without a second kernel) for
// activation rows t (grid.y) and the rows of up to three weights stacked
// by rows (Q, K and V: one launch), of `cols` values each: weight row r
// belongs to w0 below end0, to w1 below end1, to w2 below `rows`, each
// part with its own dtype and row bytes. One warp per weight row
// (row_dot), x read as `x_mode` says (staged_row; X_NORMED: first
// normalized by the RMSNorm of weight `g`, the norm that feeds the
// product, in the same kernel).
extern "C" __global__ void linear_rows(const u8* w0, const u8* w1, const u8* w2, int dt0, int dt1, int dt2,
                                       long long rb0, long long rb1, long long rb2, int end0, int end1, int rows,
                                       int cols, const float* x, const float* g, float eps, int x_mode,
                                       float* out, int out_stride, int accumulate) {
    extern __shared__ float xs[];
    int warps = blockDim.x / WARP;
    int r = blockIdx.x * warps + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    int t = blockIdx.y;
    const float* xt = x + (size_t)t * cols;
    if (x_mode != X_GLOBAL) staged_row(xt, g, eps, cols, x_mode == X_NORMED, xs);
    if (r >= rows) return;
    const u8* row = r < end0 ? w0 + (size_t)r * rb0
                    : r < end1 ? w1 + (size_t)(r - end0) * rb1
                               : w2 + (size_t)(r - end1) * rb2;
    int dtype = r < end0 ? dt0 : r < end1 ? dt1 : dt2;
    float acc = warp_sum(staged_dot(row, dtype, cols, xt, xs, x_mode, lane));
    if (lane == 0) {
        size_t at = (size_t)t * out_stride + r;
        out[at] = accumulate ? out[at] + acc : acc;
    }
}
// ANCHOR_END: linear_rows

// SwiGLU fused with the two products that feed it (and, with X_NORMED,
// the RMSNorm that feeds them): out[t][r] = silu(x[t] · gate[r]) · (x[t] ·
// up[r]) for `rows` rows of each weight, both stored as `dtype`. One warp
// per row, as linear_rows; the gate and up products never leave registers.
extern "C" __global__ void linear_swiglu_rows(const u8* w_gate, const u8* w_up, int dtype, long long row_bytes,
                                              int rows, int cols, const float* x, const float* g, float eps,
                                              int x_mode, float* out) {
    extern __shared__ float xs[];
    int warps = blockDim.x / WARP;
    int r = blockIdx.x * warps + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    int t = blockIdx.y;
    const float* xt = x + (size_t)t * cols;
    if (x_mode != X_GLOBAL) staged_row(xt, g, eps, cols, x_mode == X_NORMED, xs);
    if (r >= rows) return;
    const u8 *gate = w_gate + (size_t)r * row_bytes, *up = w_up + (size_t)r * row_bytes;
    float gsum = warp_sum(staged_dot(gate, dtype, cols, xt, xs, x_mode, lane));
    float usum = warp_sum(staged_dot(up, dtype, cols, xt, xs, x_mode, lane));
    if (lane == 0) out[(size_t)t * rows + r] = gsum / (1.0f + expf(-gsum)) * usum;
}

// ANCHOR: linear_rows_many
// Activation rows per warp in the products of a prompt (MANY_ROWS in
// launch.rs, which sends t ≥ MANY_ROWS rows here).
#define MANY_ROWS 8

// Where a warp of the many-rows kernels works: its weight row r, its lane,
// and its activation rows t0 .. t0 + n (n ≤ MANY_ROWS, the last group of
// a prompt shorter). False for the warps past the last weight row.
struct ManyRows {
    int r, lane, t0, n;
};

__device__ __forceinline__ bool many_rows_warp(int rows, int t, ManyRows* m) {
    int warps = blockDim.x / WARP;
    m->r = blockIdx.x * warps + threadIdx.x / WARP;
    m->lane = threadIdx.x % WARP;
    m->t0 = blockIdx.y * MANY_ROWS;
    m->n = min(MANY_ROWS, t - m->t0);
    return m->r < rows;
}

// linear_rows for a prompt's rows: each warp takes one weight row and
// MANY_ROWS activation rows (grid.y = ⌈t / MANY_ROWS⌉), so each weight
// value is decoded once for all of them instead of once per row. Its lanes
// take consecutive values, so the activations' loads are coalesced and
// all 32 lanes work whatever the row's length (row_dot, one lane per
// block, leaves 14 idle on a 576-value row: fine for one token, the
// bottleneck of a prompt).
extern "C" __global__ void linear_rows_many(const u8* w, int dtype, long long row_bytes, int rows, int cols,
                                            const float* x, int t, float* out, int out_stride, int accumulate) {
    ManyRows m;
    if (!many_rows_warp(rows, t, &m)) return;
    int r = m.r, lane = m.lane, t0 = m.t0, n = m.n;
    const u8* row = w + (size_t)r * row_bytes;
    const float* x0 = x + (size_t)t0 * cols;
    float acc[MANY_ROWS];
#pragma unroll
    for (int i = 0; i < MANY_ROWS; i++) acc[i] = 0.0f;
    for (int e = lane; e < cols; e += WARP) {
        float v = value_at(row, dtype, e);
#pragma unroll
        for (int i = 0; i < MANY_ROWS; i++)
            if (i < n) acc[i] += v * x0[(size_t)i * cols + e];
    }
    // n is the same for the whole warp, so every lane takes part in each sum.
#pragma unroll
    for (int i = 0; i < MANY_ROWS; i++) {
        if (i < n) {
            float sum = warp_sum(acc[i]);
            if (lane == 0) {
                size_t at = (size_t)(t0 + i) * out_stride + r;
                out[at] = accumulate ? out[at] + sum : sum;
            }
        }
    }
}
// ANCHOR_END: linear_rows_many

// linear_swiglu_rows for a prompt's rows, MANY_ROWS of them per warp as
// linear_rows_many takes them.
extern "C" __global__ void linear_swiglu_rows_many(const u8* w_gate, const u8* w_up, int dtype,
                                                   long long row_bytes, int rows, int cols, const float* x, int t,
                                                   float* out) {
    ManyRows m;
    if (!many_rows_warp(rows, t, &m)) return;
    int r = m.r, lane = m.lane, t0 = m.t0, n = m.n;
    const u8* gate = w_gate + (size_t)r * row_bytes;
    const u8* up = w_up + (size_t)r * row_bytes;
    const float* x0 = x + (size_t)t0 * cols;
    float g[MANY_ROWS], u[MANY_ROWS];
#pragma unroll
    for (int i = 0; i < MANY_ROWS; i++) g[i] = u[i] = 0.0f;
    for (int e = lane; e < cols; e += WARP) {
        float gv = value_at(gate, dtype, e), uv = value_at(up, dtype, e);
#pragma unroll
        for (int i = 0; i < MANY_ROWS; i++) {
            if (i < n) {
                float xv = x0[(size_t)i * cols + e];
                g[i] += gv * xv;
                u[i] += uv * xv;
            }
        }
    }
#pragma unroll
    for (int i = 0; i < MANY_ROWS; i++) {
        if (i < n) {
            float gs = warp_sum(g[i]), us = warp_sum(u[i]);
            if (lane == 0) out[(size_t)(t0 + i) * rows + r] = gs / (1.0f + expf(-gs)) * us;
        }
    }
}

// Row `r` of a `dtype` matrix as f32 into out row blockIdx.x, the block's
// threads taking every blockDim.x-th value.
__device__ void widen_row(const u8* m, int dtype, long long row_bytes, int cols, size_t r, float* out) {
    const u8* row = m + r * row_bytes;
    float* o = out + (size_t)blockIdx.x * cols;
    for (int e = threadIdx.x; e < cols; e += blockDim.x) o[e] = value_at(row, dtype, e);
}

// out[i] = table[ids[i]] as f32: one block per id.
extern "C" __global__ void embed_rows(const u8* table, int dtype, long long row_bytes, int cols, const u32* ids,
                                      float* out) {
    widen_row(table, dtype, row_bytes, cols, ids[blockIdx.x], out);
}

// A whole matrix as f32, for cuBLAS's sgemm: one block per row.
extern "C" __global__ void dequant_rows(const u8* m, int dtype, long long row_bytes, int cols, float* out) {
    widen_row(m, dtype, row_bytes, cols, blockIdx.x, out);
}
