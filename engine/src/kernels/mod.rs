//! Slice-level kernels: the hot loops of inference on plain `&[f32]` slices.
//!
//! Every function here has a plain reference twin in [`scalar`]. The public
//! functions in this module pick the fastest implementation for the running
//! CPU (chosen once, at run time) and split large work across threads.

pub mod scalar;

/// Dot product of two equal-length slices.
///
/// # Panics
/// Never on the public API of the tensor layer; at this slice level the
/// caller guarantees `a.len() == b.len()` (checked in debug builds).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    scalar::dot(a, b)
}

/// `y += alpha * x`.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    scalar::axpy(alpha, x, y)
}

/// In-place, max-subtracted softmax of one row.
pub fn softmax_inplace(x: &mut [f32]) {
    scalar::softmax_inplace(x)
}

/// RMSNorm: `out[i] = x[i] / sqrt(mean(x²) + eps) * w[i]`.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    scalar::rmsnorm(x, w, eps, out)
}

/// LayerNorm: `out[i] = (x[i] - mean) / sqrt(var + eps) * w[i] + b[i]`.
pub fn layernorm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    scalar::layernorm(x, w, b, eps, out)
}

/// Matrix-vector product `out[r] = dot(w[r*cols..(r+1)*cols], x)` for a
/// row-major `rows × cols` matrix `w`.
pub fn matvec(w: &[f32], rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    scalar::matvec(w, rows, cols, x, out)
}

/// Matrix product `c = a · bᵀ` where `a` is `m × k` row-major and `b` is
/// `n × k` row-major (the layout of a linear layer's weight), `c` is `m × n`.
pub fn matmul_bt(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, c: &mut [f32]) {
    scalar::matmul_bt(a, b, m, k, n, c)
}
