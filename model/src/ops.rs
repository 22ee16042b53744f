//! Small helpers shared by the architectures.

use engine::kernels;

/// A linear layer without bias on `t` stacked rows: `out[t][rows] = x[t][cols] · wᵀ`,
/// `w` row-major `rows × cols` (`[out_features][in_features]`). One row is a
/// matrix-vector product (the decode path, bound by reading the weights);
/// several rows are one matrix product (the prefill path, bound by arithmetic).
pub fn linear(x: &[f32], t: usize, w: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    if t == 1 {
        kernels::matvec(w, rows, cols, x, out);
    } else {
        kernels::matmul_bt(x, w, t, cols, rows, out);
    }
}

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
