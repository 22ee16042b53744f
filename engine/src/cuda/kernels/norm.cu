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
    float inv = rms_inv(ss, d, eps);
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

// Index of each row's largest value (the first on ties; NaN skipped) and
// its log-probability under the row's softmax, max − (max + log Σ exp(x −
// max)) as the host computes it, so greedy decoding sends back an id and a
// float instead of the logits. A row holding NaN or +inf gets a NaN
// log-probability, which the host turns into the error its logits check
// would have raised. One block of up to 1024 threads per row (argmax_rows in
// launch.rs): SmolLM2's 49,152 logits are 48 values a thread, read twice.
// (With 256 threads and a tree over shared memory, the first version took
// 97 µs of a 2 ms step on an H200.)

// Keep the better of two (value, index) candidates: the larger value, the
// smaller index on ties; index n is no candidate and loses to any.
__device__ __forceinline__ void keep_better(float* bv, int* bi, float ov, int oi, int n) {
    if (oi < n && (*bi == n || ov > *bv || (ov == *bv && oi < *bi))) {
        *bv = ov;
        *bi = oi;
    }
}

__device__ __forceinline__ void warp_best(float* bv, int* bi, int n) {
    for (int o = WARP / 2; o > 0; o /= 2) {
        float ov = __shfl_xor_sync(0xffffffffu, *bv, o);
        int oi = __shfl_xor_sync(0xffffffffu, *bi, o);
        keep_better(bv, bi, ov, oi, n);
    }
}

extern "C" __global__ void argmax_rows_f32(const float* x, int n, u32* out, float* logprob) {
    __shared__ float best_v[WARP];
    __shared__ int best_i[WARP];
    __shared__ float scratch[WARP];
    const float* row = x + (size_t)blockIdx.x * n;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int warps = (blockDim.x + WARP - 1) / WARP;
    float bv = -INFINITY;
    int bi = n;
#pragma unroll 4
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = row[i];
        if (v > bv || (bi == n && !isnan(v))) { bv = v; bi = i; }
    }
    warp_best(&bv, &bi, n);
    if (lane == 0) { best_v[warp] = bv; best_i[warp] = bi; }
    __syncthreads();
    bv = lane < warps ? best_v[lane] : -INFINITY;
    bi = lane < warps ? best_i[lane] : n;
    warp_best(&bv, &bi, n);
    // Every warp reduced the same candidates, so every thread has the row's best.
    float s = 0.0f;
#pragma unroll 4
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += expf(row[i] - bv);
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) {
        out[blockIdx.x] = bi == n ? 0 : (u32)bi;
        logprob[blockIdx.x] = bi == n ? __int_as_float(0x7fc00000) : bv - (bv + logf(s));
    }
}
