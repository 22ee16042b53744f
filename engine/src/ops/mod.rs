//! Operations on tensors. Each one checks shapes and dtypes (returning an
//! [`EngineError`] that names the op and the shapes),
//! brings its inputs to contiguous f32 where needed, and runs the slice
//! kernels of [`crate::kernels`] over the rows.
//!
//! Inputs in f16 / bf16 are converted to f32 (outputs are f32); quantized
//! tensors are rejected with [`EngineError::UnsupportedDType`].

mod activation;
mod attention;
mod binary;
mod concat;
mod embedding;
mod matmul;
mod norm;
mod reduce;
mod rope;
mod softmax;

pub use binary::broadcast_shape;

use crate::error::{EngineError, Result};
use crate::tensor::Tensor;

/// Contiguous f32 data of `t` as an owned vector (for ops that write their
/// output over a copy of the input).
pub(crate) fn owned_f32(t: &Tensor, op: &'static str) -> Result<Vec<f32>> {
    if t.dtype().is_quantized() {
        return Err(EngineError::UnsupportedDType {
            op,
            dtype: t.dtype(),
        });
    }
    t.to_vec_f32()
}

/// The size of the last axis (error for rank 0).
pub(crate) fn last_dim(t: &Tensor, op: &'static str) -> Result<usize> {
    t.shape()
        .last()
        .copied()
        .ok_or_else(|| EngineError::BadShape {
            op,
            shape: vec![],
            reason: "needs at least one dimension".into(),
        })
}

/// Check that `w` is 1-D of length `n` (a per-feature weight).
pub(crate) fn check_vector(op: &'static str, x: &Tensor, w: &Tensor, n: usize) -> Result<()> {
    if w.shape() != [n] {
        return Err(EngineError::ShapeMismatch {
            op,
            lhs: x.shape().to_vec(),
            rhs: w.shape().to_vec(),
        });
    }
    Ok(())
}

/// Run `f(row_index, row)` over the `n`-long rows of `v`, on the thread pool
/// when there is enough work.
pub(crate) fn for_each_row(v: &mut [f32], n: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if n == 0 {
        return;
    }
    if crate::kernels::go_parallel(v.len()) && v.len() > n {
        crate::threads::for_each_chunk_mut(v, n, f);
    } else {
        v.chunks_mut(n).enumerate().for_each(|(i, r)| f(i, r));
    }
}
