//! Small helpers shared by the architectures.

use engine::kernels;

/// Add the bias `b` to every row of `out`.
pub fn add_bias(out: &mut [f32], b: &[f32]) {
    for row in out.chunks_exact_mut(b.len()) {
        kernels::add_inplace(row, b);
    }
}

/// Resize a scratch buffer to `n` elements (no allocation once it has grown).
pub fn fit(buf: &mut Vec<f32>, n: usize) -> &mut [f32] {
    buf.resize(n, 0.0);
    &mut buf[..n]
}
