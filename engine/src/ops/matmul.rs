//! Matrix products on tensors: 2-D and batched matmul, matrix-vector.

use crate::dtype::DType;
use crate::error::{EngineError, Result};
use crate::kernels::{self, Strided};
use crate::tensor::{Layout, Storage, Tensor};

/// An f32 tensor (converted if f16/bf16) whose storage can be read with its
/// own strides.
fn f32_strided(t: &Tensor, op: &'static str) -> Result<Tensor> {
    match t.dtype() {
        DType::F32 => Ok(t.clone()),
        DType::F16 | DType::BF16 => t.to_dtype(DType::F32),
        dtype => Err(EngineError::UnsupportedDType { op, dtype }),
    }
}

fn f32_storage(t: &Tensor) -> &[f32] {
    match t.storage() {
        Storage::F32(v) => v,
        _ => &[],
    }
}

impl Tensor {
    // ANCHOR: matmul
    /// Matrix product over the last two axes: `[..., m, k] · [..., k, n]`
    /// gives `[..., m, n]`, the leading (batch) axes broadcasting. Operands
    /// are read through their strides, so a transposed or broadcast view
    /// is multiplied without being copied.
    ///
    /// # Errors
    /// [`EngineError::BadShape`] for rank < 2, [`EngineError::ShapeMismatch`]
    /// if the inner sizes or batch axes disagree,
    /// [`EngineError::UnsupportedDType`] for quantized inputs.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        let op = "matmul";
        let mismatch = || EngineError::ShapeMismatch {
            op,
            lhs: self.shape().to_vec(),
            rhs: other.shape().to_vec(),
        };
        let (ra, rb) = (self.rank(), other.rank());
        if ra < 2 || rb < 2 {
            return Err(EngineError::BadShape {
                op,
                shape: if ra < 2 { self.shape() } else { other.shape() }.to_vec(),
                reason: "matmul needs rank >= 2 (use matvec for a vector)".into(),
            });
        }
        let (m, k) = (self.shape()[ra - 2], self.shape()[ra - 1]);
        let (k2, n) = (other.shape()[rb - 2], other.shape()[rb - 1]);
        if k != k2 {
            return Err(mismatch());
        }
        let batch = super::broadcast_shape(op, &self.shape()[..ra - 2], &other.shape()[..rb - 2])
            .map_err(|_| mismatch())?;
        let a = f32_strided(&self.broadcast_to(&[&batch[..], &[m, k]].concat())?, op)?;
        let b = f32_strided(&other.broadcast_to(&[&batch[..], &[k, n]].concat())?, op)?;
        let nb = batch.len();
        let batch_of = |t: &Tensor| Layout {
            shape: batch.clone(),
            strides: t.strides()[..nb].to_vec(),
            offset: t.offset(),
        };
        let (la, lb) = (batch_of(&a), batch_of(&b));
        let (sa, sb) = (f32_storage(&a), f32_storage(&b));
        let mut out = vec![0.0; batch.iter().product::<usize>() * m * n];
        if m * n > 0 {
            for ((oa, ob), c) in la.indices().zip(lb.indices()).zip(out.chunks_mut(m * n)) {
                let a = Strided {
                    data: &sa[oa.min(sa.len())..],
                    row_stride: a.strides()[nb],
                    col_stride: a.strides()[nb + 1],
                };
                let b = Strided {
                    data: &sb[ob.min(sb.len())..],
                    row_stride: b.strides()[nb],
                    col_stride: b.strides()[nb + 1],
                };
                kernels::gemm_strided(a, b, m, k, n, c);
            }
        }
        Tensor::from_vec(out, &[&batch[..], &[m, n]].concat())
    }
    // ANCHOR_END: matmul

    /// Matrix-vector product of this `[rows, cols]` matrix (f32, f16 or
    /// bf16) with a `[cols]` vector, giving `[rows]`. An f16 matrix is read
    /// as f16 (half the memory traffic) and widened in the kernel.
    ///
    /// # Errors
    /// [`EngineError::BadShape`] unless the matrix is 2-D,
    /// [`EngineError::ShapeMismatch`] if `x` is not `[cols]`,
    /// [`EngineError::UnsupportedDType`] for quantized inputs.
    pub fn matvec(&self, x: &Tensor) -> Result<Tensor> {
        let op = "matvec";
        let &[rows, cols] = self.shape() else {
            return Err(EngineError::BadShape {
                op,
                shape: self.shape().to_vec(),
                reason: "matrix must be 2-D".into(),
            });
        };
        if x.shape() != [cols] {
            return Err(EngineError::ShapeMismatch {
                op,
                lhs: self.shape().to_vec(),
                rhs: x.shape().to_vec(),
            });
        }
        let xv = super::owned_f32(x, op)?;
        let mut out = vec![0.0; rows];
        let w = match self.dtype() {
            DType::F32 | DType::F16 => self.contiguous()?,
            DType::BF16 => self.to_dtype(DType::F32)?,
            dtype => return Err(EngineError::UnsupportedDType { op, dtype }),
        };
        let range = w.offset()..w.offset() + rows * cols;
        match w.storage() {
            Storage::F16(v) => kernels::matvec_f16(&v[range], rows, cols, &xv, &mut out),
            Storage::F32(v) => kernels::matvec(&v[range], rows, cols, &xv, &mut out),
            s => {
                return Err(EngineError::UnsupportedDType {
                    op,
                    dtype: s.dtype(),
                });
            }
        }
        Tensor::from_vec(out, &[rows])
    }
}
