// Causal attention over the KV cache, aware of grouped-query attention.
// Layout as the CPU's kernels::AttnDims: position p of KV head g starts at
// (g · capacity + p) · head_dim; query head h reads KV head h / (heads / kv_heads).

__device__ __forceinline__ float kv_load(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float kv_load(const u16* p, size_t i) { return half_to_float(p[i]); }
__device__ __forceinline__ void kv_store(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void kv_store(u16* p, size_t i, float v) { p[i] = float_to_half(v); }

// Query row r (grid.y) of head h (grid.x) attends to the first
// start_len + r cached positions. Scores live in dynamic shared memory
// (one float per position, sized by the launch).
template <typename T>
__device__ void attend(const float* q, int q_stride, const T* k, const T* v, int n_heads, int n_kv_heads,
                       int head_dim, int capacity, int start_len, float* out, int out_stride) {
    extern __shared__ float scores[];
    __shared__ float scratch[WARP];
    int h = blockIdx.x, r = blockIdx.y, len = start_len + r;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = blockDim.x / WARP;
    size_t base = (size_t)(h / (n_heads / n_kv_heads)) * capacity * head_dim;
    const float* qh = q + (size_t)r * q_stride + (size_t)h * head_dim;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int p = warp; p < len; p += warps) {
        float s = 0.0f;
        for (int d = lane; d < head_dim; d += WARP) s += qh[d] * kv_load(k, base + (size_t)p * head_dim + d);
        s = warp_sum(s);
        if (lane == 0) scores[p] = s * scale;
    }
    __syncthreads();
    float m = -INFINITY;
    for (int p = threadIdx.x; p < len; p += blockDim.x) m = fmaxf(m, scores[p]);
    m = block_max(m, scratch);
    float sum = 0.0f;
    for (int p = threadIdx.x; p < len; p += blockDim.x) {
        float e = expf(scores[p] - m);
        scores[p] = e;
        sum += e;
    }
    sum = block_sum(sum, scratch);
    float* o = out + (size_t)r * out_stride + (size_t)h * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (int p = 0; p < len; p++) acc += scores[p] * kv_load(v, base + (size_t)p * head_dim + d);
        o[d] = acc / sum;
    }
}

extern "C" __global__ void attention_f32(const float* q, int q_stride, const float* k, const float* v, int n_heads,
                                         int n_kv_heads, int head_dim, int capacity, int start_len, float* out,
                                         int out_stride) {
    attend<float>(q, q_stride, k, v, n_heads, n_kv_heads, head_dim, capacity, start_len, out, out_stride);
}

extern "C" __global__ void attention_f16(const float* q, int q_stride, const u16* k, const u16* v, int n_heads,
                                         int n_kv_heads, int head_dim, int capacity, int start_len, float* out,
                                         int out_stride) {
    attend<u16>(q, q_stride, k, v, n_heads, n_kv_heads, head_dim, capacity, start_len, out, out_stride);
}

// Write `rows` new positions' keys and values into a layer's caches at
// positions first_pos, first_pos + 1, …, in one launch: row r's KV head g
// is src[k_at + r·src_stride + g·head_dim …] for the keys and the same from
// v_at for the values (both inside the fused QKV rows).
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
                                        int first_pos, int rows) {
    write_rows<float>(k_cache, v_cache, src, k_at, v_at, src_stride, n_kv_heads, head_dim, capacity, first_pos, rows);
}

extern "C" __global__ void kv_write_f16(u16* k_cache, u16* v_cache, const float* src, long long k_at,
                                        long long v_at, int src_stride, int n_kv_heads, int head_dim, int capacity,
                                        int first_pos, int rows) {
    write_rows<u16>(k_cache, v_cache, src, k_at, v_at, src_stride, n_kv_heads, head_dim, capacity, first_pos, rows);
}
