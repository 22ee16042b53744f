// Rotary position embedding, the half-rotated layout the CPU kernels use:
// within a head, element i pairs with i + head_dim/2, turned by angle i.

// Each row's angles: cos in the first head_dim/2 values, sin in the rest,
// angle i = pos · θ^(−2i/head_dim).
extern "C" __global__ void rope_angles_f32(const u32* positions, int rows, int head_dim, float theta,
                                           float* cos_sin) {
    int half = head_dim / 2;
    int n = rows * half;
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        int r = k / half, i = k % half;
        float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        float s, c;
        sincosf((float)positions[r] * inv_freq, &s, &c);
        cos_sin[(size_t)r * head_dim + i] = c;
        cos_sin[(size_t)r * head_dim + half + i] = s;
    }
}

// Rotate the first `heads` heads of each of `rows` rows (row r starts at
// r · row_stride) by that row's angles.
extern "C" __global__ void rope_rotate_f32(float* x, int rows, int row_stride, int heads, int head_dim,
                                           const float* cos_sin) {
    int half = head_dim / 2;
    int n = rows * heads * half;
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
        int i = k % half, h = (k / half) % heads, r = k / (half * heads);
        float* head = x + (size_t)r * row_stride + (size_t)h * head_dim;
        const float* a = cos_sin + (size_t)r * head_dim;
        float c = a[i], s = a[half + i];
        float x0 = head[i], x1 = head[half + i];
        head[i] = x0 * c - x1 * s;
        head[half + i] = x1 * c + x0 * s;
    }
}
