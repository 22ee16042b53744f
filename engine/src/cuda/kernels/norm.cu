// Row norms and softmax: one block of ROW_THREADS threads per row.

// ANCHOR: rmsnorm_kernel
// RMSNorm: out = x / sqrt(mean(x²) + eps) · w.
extern "C" __global__ void rmsnorm_f32(const float* x, const float* w, float eps, int d, float* out) {
    __shared__ float scratch[ROW_THREADS / WARP];
    const float* row = x + (size_t)blockIdx.x * d;
    float* o = out + (size_t)blockIdx.x * d;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) ss += row[i] * row[i];
    ss = block_sum(ss, scratch);
    float inv = 1.0f / sqrtf(ss / (float)d + eps);
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = row[i] * inv * w[i];
}
// ANCHOR_END: rmsnorm_kernel

// LayerNorm: out = (x − mean) / sqrt(var + eps) · w + b (biased variance).
extern "C" __global__ void layernorm_f32(const float* x, const float* w, const float* b, float eps, int d,
                                         float* out) {
    __shared__ float scratch[ROW_THREADS / WARP];
    const float* row = x + (size_t)blockIdx.x * d;
    float* o = out + (size_t)blockIdx.x * d;
    float s = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) s += row[i];
    float mean = block_sum(s, scratch) / (float)d;
    float v = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) v += (row[i] - mean) * (row[i] - mean);
    float inv = 1.0f / sqrtf(block_sum(v, scratch) / (float)d + eps);
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = (row[i] - mean) * inv * w[i] + b[i];
}

// Max-subtracted softmax of each row of `n` values, in place.
extern "C" __global__ void softmax_rows_f32(float* x, int n) {
    __shared__ float scratch[ROW_THREADS / WARP];
    float* row = x + (size_t)blockIdx.x * n;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, row[i]);
    m = block_max(m, scratch);
    float s = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float e = expf(row[i] - m);
        row[i] = e;
        s += e;
    }
    s = block_sum(s, scratch);
    for (int i = threadIdx.x; i < n; i += blockDim.x) row[i] /= s;
}

// Index of each row's largest value (the first on ties; NaN skipped), so
// greedy decoding sends back one id instead of the logits.
extern "C" __global__ void argmax_rows_f32(const float* x, int n, u32* out) {
    __shared__ float best_v[ROW_THREADS];
    __shared__ int best_i[ROW_THREADS];
    const float* row = x + (size_t)blockIdx.x * n;
    float bv = -INFINITY;
    int bi = n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = row[i];
        if (v > bv || (bi == n && !isnan(v))) { bv = v; bi = i; }
    }
    best_v[threadIdx.x] = bv;
    best_i[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) {
            float ov = best_v[threadIdx.x + s];
            int oi = best_i[threadIdx.x + s];
            bool take = oi < n && (best_i[threadIdx.x] == n || ov > best_v[threadIdx.x] ||
                                   (ov == best_v[threadIdx.x] && oi < best_i[threadIdx.x]));
            if (take) { best_v[threadIdx.x] = ov; best_i[threadIdx.x] = oi; }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = best_i[0] == n ? 0 : (u32)best_i[0];
}
