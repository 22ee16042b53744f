//! Matrix products on tensors: 2-D and batched matmul, matrix-vector.

use crate::dtype::DType;
use crate::error::{EngineError, Result};
use crate::kernels::{self, Strided};
use crate::tensor::{Layout, Storage, Tensor};

/// Columns of `k` converted per block when an operand is f16 / bf16: the
/// f32 copies are `m × KB` and `KB × n`, never the whole operand.
const HALF_BLOCK_K: usize = 256;

fn f32_storage(t: &Tensor) -> &[f32] {
    match t.storage() {
        Storage::F32(v) => v,
        _ => &[],
    }
}

/// Copy rows `rows` × columns `cols` of the matrix starting at storage index
/// `base` with strides `(rs, cs)` into a contiguous f32 buffer, widening
/// f16 / bf16 on the way.
fn gather_f32(
    storage: &Storage,
    base: usize,
    (rs, cs): (usize, usize),
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    out: &mut Vec<f32>,
) {
    out.clear();
    for r in rows {
        let row = base + r * rs;
        let idx = cols.clone().map(|c| row + c * cs);
        match storage {
            Storage::F32(v) => out.extend(idx.map(|i| v[i])),
            Storage::F16(v) => out.extend(idx.map(|i| v[i].to_f32())),
            Storage::BF16(v) => out.extend(idx.map(|i| v[i].to_f32())),
            // Never reached: the callers check dtype and device first.
            Storage::Quantized { .. } | Storage::Regrouped { .. } => {}
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => {}
        }
    }
}

/// `c = a · b` for one batch element when either operand is f16 / bf16:
/// the shared `k` axis is walked in blocks of [`HALF_BLOCK_K`], each block
/// of both operands widened to f32 and multiplied with the f32 kernel, and
/// the partial products summed into `c`.
#[allow(clippy::too_many_arguments)]
fn gemm_half_blocked(
    a: (&Storage, usize, (usize, usize)),
    b: (&Storage, usize, (usize, usize)),
    m: usize,
    k: usize,
    n: usize,
    c: &mut [f32],
) {
    let (mut pa, mut pb) = (Vec::new(), Vec::new());
    let mut part = vec![0.0; m * n];
    c.fill(0.0);
    for p in (0..k).step_by(HALF_BLOCK_K) {
        let kb = HALF_BLOCK_K.min(k - p);
        gather_f32(a.0, a.1, a.2, 0..m, p..p + kb, &mut pa);
        gather_f32(b.0, b.1, b.2, p..p + kb, 0..n, &mut pb);
        let sa = Strided {
            data: &pa,
            row_stride: kb,
            col_stride: 1,
        };
        let sb = Strided {
            data: &pb,
            row_stride: n,
            col_stride: 1,
        };
        kernels::gemm_strided(sa, sb, m, kb, n, &mut part);
        kernels::add_inplace(c, &part);
    }
}

impl Tensor {
    // ANCHOR: matmul
    /// Matrix product over the last two axes: `[..., m, k] · [..., k, n]`
    /// gives `[..., m, n]`, the leading (batch) axes broadcasting. Operands
    /// are read through their strides, so a transposed or broadcast view
    /// is multiplied without being copied. f16 / bf16 operands are widened
    /// to f32 one block of the shared axis at a time (never as a whole).
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
        for t in [self, other] {
            t.host_only(op)?;
            if !matches!(t.dtype(), DType::F32 | DType::F16 | DType::BF16) {
                return Err(EngineError::UnsupportedDType {
                    op,
                    dtype: t.dtype(),
                });
            }
        }
        let a = self.broadcast_to(&[&batch[..], &[m, k]].concat())?;
        let b = other.broadcast_to(&[&batch[..], &[k, n]].concat())?;
        let all_f32 = a.dtype() == DType::F32 && b.dtype() == DType::F32;
        let nb = batch.len();
        let batch_of = |t: &Tensor| Layout {
            shape: batch.clone(),
            strides: t.strides()[..nb].to_vec(),
            offset: t.offset(),
        };
        let (la, lb) = (batch_of(&a), batch_of(&b));
        let (ma, mb) = (
            (a.strides()[nb], a.strides()[nb + 1]),
            (b.strides()[nb], b.strides()[nb + 1]),
        );
        let mut out = vec![0.0; batch.iter().product::<usize>() * m * n];
        if m * n > 0 {
            for ((oa, ob), c) in la.indices().zip(lb.indices()).zip(out.chunks_mut(m * n)) {
                if !all_f32 {
                    gemm_half_blocked((a.storage(), oa, ma), (b.storage(), ob, mb), m, k, n, c);
                    continue;
                }
                let (sa, sb) = (f32_storage(&a), f32_storage(&b));
                let a = Strided {
                    data: &sa[oa.min(sa.len())..],
                    row_stride: ma.0,
                    col_stride: ma.1,
                };
                let b = Strided {
                    data: &sb[ob.min(sb.len())..],
                    row_stride: mb.0,
                    col_stride: mb.1,
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
