// Reference blocks for the Q5_0, Q4_K and Q6_K formats, and for Q8_K (the
// activation blocks the K-quants' dot products read), from ggml's own
// reference quantizers and dequantizers (libggml-base of llama.cpp 0c1e570).
// Prints one JSON object per line: the format, the f32 input, the bytes
// ggml's quantizer wrote (hex) and ggml's dequantization of them.
// Built and run by scripts/make_block_fixtures.sh.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

// Declared in ggml/src/ggml-quants.h (not an installed header).
void quantize_row_q5_0_ref(const float *x, void *y, int64_t k);
void quantize_row_q4_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q6_K_ref(const float *x, void *y, int64_t k);
void dequantize_row_q5_0(const void *x, float *y, int64_t k);
void dequantize_row_q4_K(const void *x, float *y, int64_t k);
void dequantize_row_q6_K(const void *x, float *y, int64_t k);
void quantize_row_q8_K_ref(const float *x, void *y, int64_t k);
void dequantize_row_q8_K(const void *x, float *y, int64_t k);

typedef void (*quant_fn)(const float *, void *, int64_t);
typedef void (*deq_fn)(const void *, float *, int64_t);

static uint64_t state = 0x9e3779b97f4a7c15ull;
// A uniform float in [-1, 1) (xorshift64*).
static float uniform(void) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    uint64_t r = state * 0x2545f4914f6cdd1dull;
    return (float)((r >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

// Case `c` of `n` values: plain noise, a normal-looking weight row, one
// outlier, all zero, constant, sub-blocks of very different size, only
// positive, exact halves of a grid.
static void fill(int c, float *x, int n) {
    for (int i = 0; i < n; i++) {
        float u = uniform();
        switch (c) {
        case 0: x[i] = u; break;
        case 1: x[i] = 0.02f * (u + uniform() + uniform()); break;
        case 2: x[i] = (i == 37 % n) ? 9.0f : 0.1f * u; break;
        case 3: x[i] = 0.0f; break;
        case 4: x[i] = -0.375f; break;
        case 5: x[i] = u * powf(10.0f, (float)((i / 16) % 5) - 3.0f); break;
        case 6: x[i] = 1.5f + u; break;
        default: x[i] = 0.125f * (float)((int)(16.0f * u)) + 0.0625f; break;
        }
    }
}

static void emit(const char *name, quant_fn q, deq_fn dq, int n, size_t bytes) {
    float x[1024], y[1024];
    uint8_t b[2048];
    for (int c = 0; c < 8; c++) {
        fill(c, x, n);
        memset(b, 0xAA, sizeof b);
        q(x, b, n);
        dq(b, y, n);
        printf("{\"type\":\"%s\",\"case\":%d,\"x\":[", name, c);
        for (int i = 0; i < n; i++) printf("%s%.9g", i ? "," : "", x[i]);
        printf("],\"bytes\":\"");
        for (size_t i = 0; i < bytes; i++) printf("%02x", b[i]);
        printf("\",\"dequantized\":[");
        for (int i = 0; i < n; i++) printf("%s%.9g", i ? "," : "", y[i]);
        printf("]}\n");
    }
}

int main(void) {
    emit("q5_0", quantize_row_q5_0_ref, dequantize_row_q5_0, 64, 2 * 22);
    emit("q4_k", quantize_row_q4_K_ref, dequantize_row_q4_K, 512, 2 * 144);
    emit("q6_k", quantize_row_q6_K_ref, dequantize_row_q6_K, 512, 2 * 210);
    // block_q8_K: f32 scale, 256 codes, sixteen i16 sums of 16 codes.
    emit("q8_k", quantize_row_q8_K_ref, dequantize_row_q8_K, 256, 4 + 256 + 32);
    return 0;
}
