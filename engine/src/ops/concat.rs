//! Joining tensors along an axis.

use crate::error::{EngineError, Result};
use crate::tensor::Tensor;

impl Tensor {
    /// Concatenate along `axis`; all other dimensions must agree.
    ///
    /// # Errors
    /// [`EngineError::BadShape`] for an empty list, [`EngineError::BadAxis`],
    /// [`EngineError::ShapeMismatch`] naming the first disagreeing pair;
    /// [`EngineError::UnsupportedDType`] for quantized inputs.
    pub fn concat(tensors: &[&Tensor], axis: usize) -> Result<Tensor> {
        let op = "concat";
        let Some(first) = tensors.first() else {
            return Err(EngineError::BadShape {
                op,
                shape: vec![],
                reason: "no tensors given".into(),
            });
        };
        let rank = first.rank();
        if axis >= rank {
            return Err(EngineError::BadAxis { op, axis, rank });
        }
        let mut shape = first.shape().to_vec();
        shape[axis] = 0;
        for t in tensors {
            let same = t.rank() == rank
                && (0..rank).all(|d| d == axis || t.shape()[d] == first.shape()[d]);
            if !same {
                return Err(EngineError::ShapeMismatch {
                    op,
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                });
            }
            shape[axis] += t.shape()[axis];
        }
        let outer: usize = shape[..axis].iter().product();
        let parts: Vec<(Vec<f32>, usize)> = tensors
            .iter()
            .map(|t| Ok((super::owned_f32(t, op)?, t.shape()[axis..].iter().product())))
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
        for o in 0..outer {
            for (data, inner) in &parts {
                out.extend_from_slice(&data[o * inner..(o + 1) * inner]);
            }
        }
        Tensor::from_vec(out, &shape)
    }
}
