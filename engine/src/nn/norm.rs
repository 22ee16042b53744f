//! Per-row norms whose weights are tensors.

use crate::error::{EngineError, Result};
use crate::kernels;
use crate::tensor::Tensor;

fn vector<'a>(w: &'a Tensor, d: usize, op: &'static str) -> Result<&'a [f32]> {
    let v = w.as_f32_slice()?;
    if v.len() != d || d == 0 {
        return Err(EngineError::ShapeMismatch {
            op,
            lhs: vec![d],
            rhs: w.shape().to_vec(),
        });
    }
    Ok(v)
}

fn check_rows(x: &[f32], out: &[f32], d: usize, op: &'static str) -> Result<()> {
    if !x.len().is_multiple_of(d) || x.len() != out.len() {
        return Err(EngineError::ShapeMismatch {
            op,
            lhs: vec![x.len()],
            rhs: vec![out.len(), d],
        });
    }
    Ok(())
}

/// RMSNorm of each row of `x` (rows of `w.len()` values) into `out`.
///
/// # Errors
/// If `w` is not an f32 vector or the lengths disagree.
pub fn rmsnorm(x: &[f32], w: &Tensor, eps: f32, out: &mut [f32]) -> Result<()> {
    let _t = crate::profile::timer(crate::profile::Op::Norm);
    let d = w.numel();
    let w = vector(w, d, "rmsnorm")?;
    check_rows(x, out, d, "rmsnorm")?;
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        kernels::rmsnorm(row, w, eps, o);
    }
    Ok(())
}

/// LayerNorm of each row of `x` with weight `w` and bias `b` into `out`.
///
/// # Errors
/// If `w` or `b` is not an f32 vector or the lengths disagree.
pub fn layernorm(x: &[f32], w: &Tensor, b: &Tensor, eps: f32, out: &mut [f32]) -> Result<()> {
    let _t = crate::profile::timer(crate::profile::Op::Norm);
    let d = w.numel();
    let (w, b) = (vector(w, d, "layernorm")?, vector(b, d, "layernorm")?);
    check_rows(x, out, d, "layernorm")?;
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        kernels::layernorm(row, w, b, eps, o);
    }
    Ok(())
}
