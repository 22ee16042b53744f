//! Plain, obviously-correct twins of every kernel. The book shows these
//! first; property tests check the fast kernels against them.

// ANCHOR: dot
/// Dot product, one multiply-add at a time.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
// ANCHOR_END: dot

/// `y += alpha * x`.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(not(feature = "mutant-softmax-no-max"))]
// ANCHOR: softmax
/// Max-subtracted softmax in place.
pub fn softmax_inplace(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}
// ANCHOR_END: softmax

/// Mutant twin of `softmax_inplace`: exponentiates the logits as they are,
/// so `exp` overflows to infinity once a logit passes about 88.
#[cfg(feature = "mutant-softmax-no-max")]
pub fn softmax_inplace(x: &mut [f32]) {
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = v.exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// RMSNorm of one row.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (ms + eps).sqrt();
    for ((o, xi), wi) in out.iter_mut().zip(x).zip(w) {
        *o = xi * inv * wi;
    }
}

/// LayerNorm of one row.
pub fn layernorm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for (((o, xi), wi), bi) in out.iter_mut().zip(x).zip(w).zip(b) {
        *o = (xi - mean) * inv * wi + bi;
    }
}

/// Row-by-row matrix-vector product.
pub fn matvec(w: &[f32], rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    for r in 0..rows {
        out[r] = dot(&w[r * cols..(r + 1) * cols], x);
    }
}

// ANCHOR: matmul_bt
/// Naive `c = a · bᵀ`: every output is the dot product of a row of `a`
/// with a row of `b`.
pub fn matmul_bt(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, c: &mut [f32]) {
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = dot(&a[i * k..(i + 1) * k], &b[j * k..(j + 1) * k]);
        }
    }
}
// ANCHOR_END: matmul_bt

/// Naive strided `c = a · b` (see [`super::gemm_strided`]).
pub fn gemm_strided(
    a: super::Strided<'_>,
    b: super::Strided<'_>,
    m: usize,
    k: usize,
    n: usize,
    c: &mut [f32],
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                s += a.data[i * a.row_stride + p * a.col_stride]
                    * b.data[p * b.row_stride + j * b.col_stride];
            }
            c[i * n + j] = s;
        }
    }
}

/// Log-softmax of one row, max-subtracted.
pub fn log_softmax_inplace(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = x.iter().map(|v| (v - max).exp()).sum();
    let lse = max + sum.ln();
    for v in x.iter_mut() {
        *v -= lse;
    }
}

/// SiLU (swish) in place: `x * sigmoid(x)`.
pub fn silu_inplace(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v /= 1.0 + (-*v).exp();
    }
}

/// `sqrt(2/π)`, the constant of the tanh form of GELU.
pub const GELU_K: f32 = 0.797_884_6;

/// GELU, tanh form (as GPT-2): `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
pub fn gelu_tanh_inplace(x: &mut [f32]) {
    for v in x.iter_mut() {
        let u = GELU_K * (*v + 0.044_715 * *v * *v * *v);
        *v = 0.5 * *v * (1.0 + u.tanh());
    }
}

/// `dst[i][j] = src[j · t + i]` (see [`super::transpose`]).
pub fn transpose(src: &[f32], t: usize, dst: &mut [&mut [f32]]) {
    for (j, row) in src.chunks_exact(t).enumerate() {
        for (d, &v) in dst.iter_mut().zip(row) {
            d[j] = v;
        }
    }
}

/// `x[i] *= y[i]`.
pub fn mul_inplace(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a *= b;
    }
}

/// `out[i] = x[i] * y[i]`.
pub fn mul_to(out: &mut [f32], x: &[f32], y: &[f32]) {
    for (o, (a, b)) in out.iter_mut().zip(x.iter().zip(y)) {
        *o = a * b;
    }
}

/// `x[i] += y[i]`.
pub fn add_inplace(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// The angles of RoPE at position `pos`, Llama / Hugging Face layout:
/// `cos_sin[i] = cos(pos · θ^(-2i/head_dim))` and `cos_sin[half + i]` its
/// sine, for the `half = head_dim / 2` pairs. They depend only on the
/// position, so a model computes them once per token for all its layers.
pub fn rope_angles(head_dim: usize, pos: usize, theta_base: f32, cos_sin: &mut [f32]) {
    let half = head_dim / 2;
    let (cos, sin) = cos_sin[..2 * half].split_at_mut(half);
    for i in 0..half {
        // The same f32 arithmetic as the reference: inv_freq, then pos·inv_freq.
        let inv_freq = 1.0 / theta_base.powf((2 * i) as f32 / head_dim as f32);
        (sin[i], cos[i]) = (pos as f32 * inv_freq).sin_cos();
    }
}

#[cfg(not(feature = "mutant-rope-adjacent-pairs"))]
// ANCHOR: rope
/// Rotate each of the `n_heads` heads of `x` (`[n_heads][head_dim]`) by one
/// position's angles from [`rope_angles`]: within a head, element `i` is
/// paired with `i + head_dim/2` (the "half-rotated" layout) and the pair
/// turned by angle `i`. The two halves of a head and the two halves of the
/// angles are contiguous, so the loop vectorises: it indexes four slices
/// cut to the same length, which lets the compiler drop the bounds checks
/// (a zip of the four did not vectorise, and at eight requests a step
/// spent 5 % of its time here). Inlined, so that the AVX2 and NEON entry
/// points compile it for their registers.
#[inline(always)]
pub fn rope_rotate(x: &mut [f32], n_heads: usize, head_dim: usize, cos_sin: &[f32]) {
    let half = head_dim / 2;
    let (cos, sin) = cos_sin[..2 * half].split_at(half);
    for head in x.chunks_exact_mut(head_dim.max(1)).take(n_heads) {
        let (lo, hi) = head.split_at_mut(half);
        let hi = &mut hi[..half];
        for i in 0..half {
            let (a, b) = (lo[i], hi[i]);
            lo[i] = a * cos[i] - b * sin[i];
            hi[i] = b * cos[i] + a * sin[i];
        }
    }
}
// ANCHOR_END: rope

/// Rotary position embedding in place: [`rope_angles`] for `pos`, then
/// [`rope_rotate`].
pub fn rope_inplace(x: &mut [f32], n_heads: usize, head_dim: usize, pos: usize, theta_base: f32) {
    let mut cos_sin = vec![0f32; head_dim];
    rope_angles(head_dim, pos, theta_base, &mut cos_sin);
    rope_rotate(x, n_heads, head_dim, &cos_sin);
}

/// Mutant twin of `rope_rotate`: pairs adjacent elements `(2i, 2i + 1)`
/// (the original paper's and llama.cpp's layout) instead of `(i, i + half)`.
#[cfg(feature = "mutant-rope-adjacent-pairs")]
pub fn rope_rotate(x: &mut [f32], n_heads: usize, head_dim: usize, cos_sin: &[f32]) {
    let half = head_dim / 2;
    let heads = n_heads.min(x.len() / head_dim.max(1));
    for i in 0..half {
        let (cos, sin) = (cos_sin[i], cos_sin[half + i]);
        for h in 0..heads {
            let (a, b) = (h * head_dim + 2 * i, h * head_dim + 2 * i + 1);
            let (x0, x1) = (x[a], x[b]);
            x[a] = x0 * cos - x1 * sin;
            x[b] = x1 * cos + x0 * sin;
        }
    }
}

/// Matrix-vector product with an f16 matrix (converted one element at a time).
pub fn matvec_f16(w: &[half::f16], rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        out[r] = row.iter().zip(x).map(|(a, b)| a.to_f32() * b).sum();
    }
}

/// Index of the largest value (the first one on ties; NaNs are skipped;
/// 0 for an empty or all-NaN slice).
pub fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    let mut seen = false;
    for (i, &v) in x.iter().enumerate() {
        if !v.is_nan() && (!seen || v > best_v) {
            best = i;
            best_v = v;
            seen = true;
        }
    }
    best
}

/// The `k` largest values with their indices, largest first (ties: lower
/// index first; NaNs are skipped). Returns fewer than `k` if `x` is shorter.
/// A partial selection (linear time) finds the `k`, then only they are sorted.
pub fn top_k(x: &[f32], k: usize) -> Vec<(usize, f32)> {
    let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let mut all: Vec<(usize, f32)> = x
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| !v.is_nan())
        .collect();
    if k == 0 {
        return Vec::new();
    }
    if k < all.len() {
        all.select_nth_unstable_by(k - 1, order);
        all.truncate(k);
    }
    all.sort_unstable_by(order);
    all
}

// ANCHOR: attend_one
/// One query head against `len` keys and values (`k`, `v`: `len × head_dim`,
/// contiguous): scaled scores, softmax, weighted sum of the values.
pub fn attend_one(q: &[f32], k: &[f32], v: &[f32], scores: &mut Vec<f32>, out: &mut [f32]) {
    let hd = q.len();
    if hd == 0 {
        return;
    }
    let scale = 1.0 / (hd as f32).sqrt();
    scores.clear();
    scores.extend(k.chunks_exact(hd).map(|kp| dot(q, kp) * scale));
    softmax_inplace(scores);
    out.fill(0.0);
    for (&s, vp) in scores.iter().zip(v.chunks_exact(hd)) {
        axpy(s, vp, out);
    }
}
// ANCHOR_END: attend_one

/// [`attend_one`] over f16 keys and values: widen them, then the f32 twin.
pub fn attend_one_f16(
    q: &[f32],
    k: &[half::f16],
    v: &[half::f16],
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let k: Vec<f32> = k.iter().map(|x| x.to_f32()).collect();
    let v: Vec<f32> = v.iter().map(|x| x.to_f32()).collect();
    attend_one(q, &k, &v, scores, out);
}

// ANCHOR: attention_decode
/// Single-query causal attention for every head, over `seq_len` cached
/// positions. See [`super::AttnDims`] for the layouts.
pub fn attention_decode(
    q: &[f32],
    k_cache: &[f32],
    v_cache: &[f32],
    dims: super::AttnDims,
    seq_len: usize,
    out: &mut [f32],
) {
    let hd = dims.head_dim;
    let group = dims.n_heads / dims.n_kv_heads;
    let mut scores = Vec::with_capacity(seq_len);
    for h in 0..dims.n_heads {
        let base = (h / group) * dims.capacity * hd; // this head's KV head
        let (k, v) = (
            &k_cache[base..base + seq_len * hd],
            &v_cache[base..base + seq_len * hd],
        );
        attend_one(
            &q[h * hd..(h + 1) * hd],
            k,
            v,
            &mut scores,
            &mut out[h * hd..(h + 1) * hd],
        );
    }
}
// ANCHOR_END: attention_decode

/// Causal attention for a block of `t` new queries at positions
/// `start_pos..start_pos + t`, whose keys and values are already in the cache.
/// Query `i` attends to positions `0..=start_pos + i`.
pub fn attention_prefill(
    q: &[f32],
    k_cache: &[f32],
    v_cache: &[f32],
    dims: super::AttnDims,
    start_pos: usize,
    t: usize,
    out: &mut [f32],
) {
    let row = dims.n_heads * dims.head_dim;
    for i in 0..t {
        attention_decode(
            &q[i * row..(i + 1) * row],
            k_cache,
            v_cache,
            dims,
            start_pos + i + 1,
            &mut out[i * row..(i + 1) * row],
        );
    }
}

/// Naive `c = a · b` (`a` is `m × k`, `b` is `k × n`, both row-major).
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, c: &mut [f32]) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                s += a[i * k + p] * b[p * n + j];
            }
            c[i * n + j] = s;
        }
    }
}

/// Sum of all elements, one at a time.
pub fn stream_sum(x: &[f32]) -> f32 {
    x.iter().sum()
}
