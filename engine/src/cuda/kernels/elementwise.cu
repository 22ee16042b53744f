// Elementwise kernels: one thread per element, a grid-stride loop.

extern "C" __global__ void add_inplace_f32(float* x, const float* y, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        x[i] += y[i];
}

// x[r][i] += b[i] for rows of `d` values (a layer's bias).
extern "C" __global__ void add_bias_rows_f32(float* x, const float* b, int d, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        x[i] += b[i % d];
}

// SwiGLU over `rows` rows of [gate | up] (2·ffn values each):
// out[r][i] = silu(gate[r][i]) · up[r][i], silu(x) = x / (1 + e^(−x)).
extern "C" __global__ void swiglu_rows_f32(const float* gate_up, int ffn, int rows, float* out) {
    int n = ffn * rows;
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        int r = k / ffn, i = k % ffn;
        float g = gate_up[(size_t)r * 2 * ffn + i];
        float u = gate_up[(size_t)r * 2 * ffn + ffn + i];
        out[k] = g / (1.0f + expf(-g)) * u;
    }
}

// GELU, tanh form (GPT-2): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
extern "C" __global__ void gelu_tanh_f32(float* x, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float v = x[i];
        float u = 0.7978846f * (v + 0.044715f * v * v * v);
        x[i] = 0.5f * v * (1.0f + tanhf(u));
    }
}

// dst[i] = src[rows[i]] for rows of `d` values: one block per picked row.
extern "C" __global__ void gather_rows_f32(const float* src, int d, const u32* rows, float* dst) {
    const float* s = src + (size_t)rows[blockIdx.x] * d;
    float* o = dst + (size_t)blockIdx.x * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = s[i];
}
