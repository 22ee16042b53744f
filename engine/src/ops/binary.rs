//! Elementwise add / mul with NumPy-style broadcasting, and scale.

use crate::error::{EngineError, Result};
use crate::kernels;
use crate::tensor::Tensor;

/// The shape two shapes broadcast to (aligned at the right; each pair of
/// sizes must be equal or contain a 1).
///
/// # Errors
/// [`EngineError::ShapeMismatch`] naming `op` if they do not broadcast.
pub fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let at = |s: &[usize], k: usize| {
        if k + s.len() >= n {
            s[k + s.len() - n]
        } else {
            1
        }
    };
    (0..n)
        .map(|k| match (at(a, k), at(b, k)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(EngineError::ShapeMismatch {
                op,
                lhs: a.to_vec(),
                rhs: b.to_vec(),
            }),
        })
        .collect()
}

impl Tensor {
    /// Apply `kernel(out_row, b_row)` over `self` and `other` broadcast
    /// together. When `other` is one row repeated (a bias, a per-feature
    /// scale), the row is read in place; otherwise it is gathered once.
    fn binary(
        &self,
        other: &Tensor,
        op: &'static str,
        kernel: fn(&mut [f32], &[f32]),
    ) -> Result<Tensor> {
        let shape = broadcast_shape(op, self.shape(), other.shape())?;
        let mut out = super::owned_f32(&self.broadcast_to(&shape)?, op)?;
        let b = other.broadcast_to(&shape)?;
        let row = shape.last().copied().unwrap_or(1);
        if b.dtype() == crate::DType::F32 && row > 0 && is_repeated_row(&b) {
            let row_view = b.narrow_all_but_last()?;
            let r = row_view.as_f32_slice()?;
            for chunk in out.chunks_mut(row) {
                kernel(chunk, r);
            }
        } else {
            let bv = super::owned_f32(&b, op)?;
            kernel(&mut out, &bv);
        }
        Tensor::from_vec(out, &shape)
    }

    /// Element `[0, …, 0, :]`: the last-axis row at the view's offset.
    fn narrow_all_but_last(&self) -> Result<Tensor> {
        let mut t = self.clone();
        for axis in 0..self.rank().saturating_sub(1) {
            t = t.narrow(axis, 0, 1)?;
        }
        Ok(t)
    }

    /// `self + other`, broadcasting.
    ///
    /// # Errors
    /// [`EngineError::ShapeMismatch`] if the shapes do not broadcast;
    /// [`EngineError::UnsupportedDType`] for quantized inputs.
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, "add", kernels::add_inplace)
    }

    /// `self * other` elementwise, broadcasting.
    ///
    /// # Errors
    /// As [`Tensor::add`].
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, "mul", kernels::mul_inplace)
    }

    /// `self * s`.
    ///
    /// # Errors
    /// [`EngineError::UnsupportedDType`] for quantized inputs.
    pub fn scale(&self, s: f32) -> Result<Tensor> {
        let mut v = super::owned_f32(self, "scale")?;
        for x in &mut v {
            *x *= s;
        }
        Tensor::from_vec(v, self.shape())
    }
}

/// True if every dimension but the last has stride 0 and the last has
/// stride 1: the same contiguous row repeated.
fn is_repeated_row(t: &Tensor) -> bool {
    let s = t.strides();
    let n = s.len();
    n > 0
        && s[n - 1] == 1
        && s[..n - 1]
            .iter()
            .zip(t.shape())
            .all(|(&st, &d)| st == 0 || d == 1)
}
