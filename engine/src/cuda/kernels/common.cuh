// Helpers every kernel file uses. NVRTC compiles the files as one program,
// this one first (see ../source.rs), so nothing here needs an #include.

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

// NVRTC has no <math.h>: positive infinity from its bits.
#define INFINITY __int_as_float(0x7f800000)

// Threads per block for the row-wise kernels (a multiple of the warp).
#define ROW_THREADS 256
#define WARP 32

// IEEE half <-> float through the PTX conversion instructions.
__device__ __forceinline__ float half_to_float(u16 h) {
    float f;
    asm("{ cvt.f32.f16 %0, %1; }" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ u16 float_to_half(float f) {
    u16 h;
    asm("{ cvt.rn.f16.f32 %0, %1; }" : "=h"(h) : "f"(f));
    return h;
}

// bfloat16 is the top half of an f32.
__device__ __forceinline__ float bf16_to_float(u16 h) {
    return __uint_as_float(((u32)h) << 16);
}

// A little-endian f16 at byte offset `at` (block scales are not aligned).
__device__ __forceinline__ float half_at(const u8* p, int at) {
    return half_to_float((u16)p[at] | ((u16)p[at + 1] << 8));
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum (or max) over the whole block; every thread gets the result.
// `scratch` holds one float per warp.
__device__ float block_sum(float v, float* scratch) {
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    int warps = (blockDim.x + WARP - 1) / WARP;
    v = lane < warps ? scratch[lane] : 0.0f;
    return warp_sum(v);
}

// 1 / sqrt(mean(x²) + eps) from the sum of squares `ss` of `d` values:
// RMSNorm's scale, the same expression wherever a kernel applies it.
__device__ __forceinline__ float rms_inv(float ss, int d, float eps) {
    return 1.0f / sqrtf(ss / (float)d + eps);
}

__device__ float block_max(float v, float* scratch) {
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    int warps = (blockDim.x + WARP - 1) / WARP;
    v = lane < warps ? scratch[lane] : -INFINITY;
    return warp_max(v);
}
