// Causal attention over the KV cache, aware of grouped-query attention.
// Layout as the CPU's kernels::AttnDims: position p of KV head g starts at
// (g · capacity + p) · head_dim; query head h reads KV head h / (heads / kv_heads).

__device__ __forceinline__ float kv_load(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float kv_load(const u16* p, size_t i) { return half_to_float(p[i]); }
__device__ __forceinline__ void kv_store(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void kv_store(u16* p, size_t i, float v) { p[i] = float_to_half(v); }

// The longest head a lane's output sums cover: head_dim ≤ ATTN_MAX_HEAD_DIM
// (the launcher refuses longer heads), each lane keeping head_dim / 32 sums.
#define ATTN_MAX_HEAD_DIM 256

// ANCHOR: attend
// Query row r (grid.y) of head h (grid.x) attends to the first
// start_len + r cached positions (start_len read from device memory when
// `dyn_len` is not null: a decode step replayed from a CUDA graph). Dynamic shared memory holds one score
// per position, then one partial output per warp. Every phase spreads the
// positions over the whole block, so a step's cost grows with the context
// by loads that are all in flight together, not by a chain of them:
//  1. each thread scores its own positions (a whole q·k dot product);
//  2. the block finds the largest score and the sum of exponentials;
//  3. each warp sums its positions' v rows weighted by their
//     probabilities (lanes over the head's dimensions), and the warps'
//     partial outputs are added.
template <typename T>
__device__ void attend(const float* q, int q_stride, const T* k, const T* v, int n_heads, int n_kv_heads,
                       int head_dim, int capacity, int start_len, float* out, int out_stride) {
    extern __shared__ float shared[];
    __shared__ float scratch[WARP];
    int h = blockIdx.x, r = blockIdx.y, len = start_len + r;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = blockDim.x / WARP;
    float* scores = shared;
    float* partial = shared + len;
    size_t base = (size_t)(h / (n_heads / n_kv_heads)) * capacity * head_dim;
    const float* qh = q + (size_t)r * q_stride + (size_t)h * head_dim;
    float scale = 1.0f / sqrtf((float)head_dim);
    float m = -INFINITY;
    for (int p = threadIdx.x; p < len; p += blockDim.x) {
        const T* kp = k + base + (size_t)p * head_dim;
        float s = 0.0f;
#pragma unroll 8
        for (int d = 0; d < head_dim; d++) s += qh[d] * kv_load(kp, d);
        scores[p] = s * scale;
        m = fmaxf(m, s * scale);
    }
    m = block_max(m, scratch);
    float sum = 0.0f;
    for (int p = threadIdx.x; p < len; p += blockDim.x) {
        float e = expf(scores[p] - m);
        scores[p] = e;
        sum += e;
    }
    // (block_sum's barrier also makes every score visible to every warp.)
    sum = block_sum(sum, scratch);
    float acc[ATTN_MAX_HEAD_DIM / WARP];
#pragma unroll
    for (int i = 0; i < ATTN_MAX_HEAD_DIM / WARP; i++) acc[i] = 0.0f;
    for (int p = warp; p < len; p += warps) {
        float w = scores[p];
        const T* vp = v + base + (size_t)p * head_dim;
#pragma unroll
        for (int i = 0; i < ATTN_MAX_HEAD_DIM / WARP; i++) {
            int d = lane + i * WARP;
            if (d < head_dim) acc[i] += w * kv_load(vp, d);
        }
    }
#pragma unroll
    for (int i = 0; i < ATTN_MAX_HEAD_DIM / WARP; i++) {
        int d = lane + i * WARP;
        if (d < head_dim) partial[warp * head_dim + d] = acc[i];
    }
    __syncthreads();
    float* o = out + (size_t)r * out_stride + (size_t)h * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float total = 0.0f;
        for (int w = 0; w < warps; w++) total += partial[w * head_dim + d];
        o[d] = total / sum;
    }
}
// ANCHOR_END: attend

extern "C" __global__ void attention_f32(const float* q, int q_stride, const float* k, const float* v, int n_heads,
                                         int n_kv_heads, int head_dim, int capacity, int start_len,
                                         const int* dyn_len, float* out, int out_stride) {
    if (dyn_len) start_len = *dyn_len;
    attend<float>(q, q_stride, k, v, n_heads, n_kv_heads, head_dim, capacity, start_len, out, out_stride);
}

extern "C" __global__ void attention_f16(const float* q, int q_stride, const u16* k, const u16* v, int n_heads,
                                         int n_kv_heads, int head_dim, int capacity, int start_len,
                                         const int* dyn_len, float* out, int out_stride) {
    if (dyn_len) start_len = *dyn_len;
    attend<u16>(q, q_stride, k, v, n_heads, n_kv_heads, head_dim, capacity, start_len, out, out_stride);
}

// Write `rows` new positions' keys and values into a layer's caches at
// positions first_pos, first_pos + 1, …, in one launch: row r's KV head g
// is src[k_at + r·src_stride + g·head_dim …] for the keys and the same from
// v_at for the values (both inside the fused QKV rows). first_pos comes
// from device memory when `dyn_pos` is not null, as attention's start_len.
template <typename T>
__device__ void write_rows(T* k_cache, T* v_cache, const float* src, long long k_at, long long v_at,
                           int src_stride, int n_kv_heads, int head_dim, int capacity, int first_pos, int rows) {
    int n = rows * n_kv_heads * head_dim;
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        int d = k % head_dim, g = (k / head_dim) % n_kv_heads, r = k / (head_dim * n_kv_heads);
        size_t at = ((size_t)g * capacity + first_pos + r) * head_dim + d;
        size_t from = (size_t)r * src_stride + (size_t)g * head_dim + d;
        kv_store(k_cache, at, src[k_at + from]);
        kv_store(v_cache, at, src[v_at + from]);
    }
}

extern "C" __global__ void kv_write_f32(float* k_cache, float* v_cache, const float* src, long long k_at,
                                        long long v_at, int src_stride, int n_kv_heads, int head_dim, int capacity,
                                        int first_pos, const int* dyn_pos, int rows) {
    if (dyn_pos) first_pos = *dyn_pos;
    write_rows<float>(k_cache, v_cache, src, k_at, v_at, src_stride, n_kv_heads, head_dim, capacity, first_pos, rows);
}

extern "C" __global__ void kv_write_f16(u16* k_cache, u16* v_cache, const float* src, long long k_at,
                                        long long v_at, int src_stride, int n_kv_heads, int head_dim, int capacity,
                                        int first_pos, const int* dyn_pos, int rows) {
    if (dyn_pos) first_pos = *dyn_pos;
    write_rows<u16>(k_cache, v_cache, src, k_at, v_at, src_stride, n_kv_heads, head_dim, capacity, first_pos, rows);
}
