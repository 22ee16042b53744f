//! The tensor: shared storage plus a layout (shape, strides, offset).
//!
//! Cloning a tensor or taking a view (reshape, permute, narrow, broadcast,
//! squeeze, unsqueeze) shares the storage through an `Arc`; only
//! [`Tensor::contiguous`] on a non-contiguous view, [`Tensor::to_dtype`] and
//! the ops allocate.

pub mod bytes;
mod display;
pub mod home;
mod host;
pub mod layout;
mod regroup;
pub mod storage;

use std::sync::Arc;

use half::{bf16, f16};

use crate::dtype::DType;
use crate::error::{EngineError, Result};
pub use bytes::Bytes;
pub use layout::Layout;
pub use storage::Storage;

// ANCHOR: tensor
/// An n-dimensional array: a layout over shared, immutable storage.
#[derive(Debug, Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    layout: Layout,
}
// ANCHOR_END: tensor

impl Tensor {
    /// A contiguous tensor of `shape` over `storage`, checked: the storage
    /// must hold exactly the shape's elements.
    pub(crate) fn new(storage: Storage, shape: &[usize], op: &'static str) -> Result<Tensor> {
        let expected = layout::numel(shape).ok_or_else(|| EngineError::BadShape {
            op,
            shape: shape.to_vec(),
            reason: "element count overflows".into(),
        })?;
        let len = storage.len() * storage.dtype().block_len();
        if len != expected {
            return Err(EngineError::LengthMismatch {
                op,
                shape: shape.to_vec(),
                expected,
                len,
            });
        }
        Ok(Tensor {
            storage: Arc::new(storage),
            layout: Layout::contiguous(shape),
        })
    }

    /// A tensor owning `data` (row-major) with the given shape.
    ///
    /// # Errors
    /// [`EngineError::LengthMismatch`] if `data.len()` is not the product of `shape`.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        Tensor::new(Storage::F32(data), shape, "from_vec")
    }

    /// An f16 tensor owning `data`.
    ///
    /// # Errors
    /// As [`Tensor::from_vec`].
    pub fn from_f16(data: Vec<f16>, shape: &[usize]) -> Result<Tensor> {
        Tensor::new(Storage::F16(data), shape, "from_f16")
    }

    /// A bf16 tensor owning `data`.
    ///
    /// # Errors
    /// As [`Tensor::from_vec`].
    pub fn from_bf16(data: Vec<bf16>, shape: &[usize]) -> Result<Tensor> {
        Tensor::new(Storage::BF16(data), shape, "from_bf16")
    }

    /// A block-quantized tensor from raw blocks. The last dimension must be
    /// a whole number of blocks. The engine's ops reject quantized tensors
    /// with [`EngineError::UnsupportedDType`]; the quantization code reads
    /// the blocks through [`Tensor::storage`].
    ///
    /// # Errors
    /// [`EngineError::UnsupportedDType`] for a plain dtype,
    /// [`EngineError::BadShape`] if the last dimension is not a multiple of
    /// the block length, [`EngineError::LengthMismatch`] if `bytes` does not
    /// hold exactly the blocks the shape needs.
    pub fn from_quantized(dtype: DType, bytes: Vec<u8>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_quantized_bytes(dtype, Bytes::from_vec(bytes), shape)
    }

    /// As [`Tensor::from_quantized`], over bytes that may live in someone
    /// else's buffer (a memory-mapped file): no copy is made.
    ///
    /// # Errors
    /// As [`Tensor::from_quantized`].
    pub fn from_quantized_bytes(dtype: DType, bytes: Bytes, shape: &[usize]) -> Result<Tensor> {
        let op = "from_quantized";
        if !dtype.is_quantized() {
            return Err(EngineError::UnsupportedDType { op, dtype });
        }
        if shape.last().is_none_or(|d| d % dtype.block_len() != 0) {
            return Err(EngineError::BadShape {
                op,
                shape: shape.to_vec(),
                reason: format!("last dimension must be a multiple of {}", dtype.block_len()),
            });
        }
        if !bytes.len().is_multiple_of(dtype.unit_bytes()) {
            return Err(EngineError::LengthMismatch {
                op,
                shape: shape.to_vec(),
                expected: layout::numel(shape).unwrap_or(usize::MAX),
                len: bytes.len() / dtype.unit_bytes() * dtype.block_len(),
            });
        }
        Tensor::new(Storage::Quantized { dtype, bytes }, shape, op)
    }

    /// This tensor with its decode-step products summed in `order`
    /// ([`crate::quant::SumOrder`]) if it is regrouped (the same bytes,
    /// shared); any other tensor as it is.
    pub fn with_sum_order(&self, order: crate::quant::SumOrder) -> Tensor {
        if let Storage::Regrouped {
            dtype, bytes, cols, ..
        } = &*self.storage
        {
            let storage = Storage::Regrouped {
                dtype: *dtype,
                bytes: bytes.clone(),
                cols: *cols,
                order,
            };
            return Tensor {
                storage: Arc::new(storage),
                ..self.clone()
            };
        }
        self.clone()
    }

    /// A regrouped tensor ([`Tensor::regrouped`]) put back in the file's
    /// block layout (one copy); any other tensor as it is.
    pub fn ungrouped(&self) -> Tensor {
        if let Storage::Regrouped {
            dtype, bytes, cols, ..
        } = &*self.storage
        {
            let rb = dtype.bytes_for(*cols).unwrap_or(0);
            let mut out = vec![0u8; bytes.len()];
            for (r, row) in out.chunks_exact_mut(rb.max(1)).enumerate() {
                crate::quant::x8::unpack_row(*dtype, bytes, *cols, r, row);
            }
            let storage = Storage::Quantized {
                dtype: *dtype,
                bytes: Bytes::from_vec(out),
            };
            // Same number of bytes, so the view (shape, strides, offset)
            // fits the new storage as it fitted the old.
            return Tensor {
                storage: Arc::new(storage),
                layout: self.layout.clone(),
            };
        }
        self.clone()
    }

    /// A tensor of zeros.
    ///
    /// # Errors
    /// [`EngineError::BadShape`] if the element count overflows.
    pub fn zeros(shape: &[usize]) -> Result<Tensor> {
        Tensor::full(shape, 0.0)
    }

    /// A tensor filled with `value`.
    ///
    /// # Errors
    /// [`EngineError::BadShape`] if the element count overflows.
    pub fn full(shape: &[usize], value: f32) -> Result<Tensor> {
        let n = layout::numel(shape).ok_or_else(|| EngineError::BadShape {
            op: "full",
            shape: shape.to_vec(),
            reason: "element count overflows".into(),
        })?;
        Tensor::from_vec(vec![value; n], shape)
    }

    /// `0, 1, 2, …` reshaped to `shape` (handy in examples and tests).
    ///
    /// # Errors
    /// As [`Tensor::full`].
    pub fn arange(shape: &[usize]) -> Result<Tensor> {
        let n = layout::numel(shape).ok_or_else(|| EngineError::BadShape {
            op: "arange",
            shape: shape.to_vec(),
            reason: "element count overflows".into(),
        })?;
        Tensor::from_vec((0..n).map(|i| i as f32).collect(), shape)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    /// The strides, in storage elements.
    pub fn strides(&self) -> &[usize] {
        &self.layout.strides
    }

    /// Storage index of element `[0, 0, …]`.
    pub fn offset(&self) -> usize {
        self.layout.offset
    }

    /// The layout (shape, strides, offset).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The shared storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// A tensor with this one's layout (shape, strides and offset) over
    /// `storage`: how a copy between devices keeps a view a view.
    #[cfg(feature = "cuda")]
    pub(crate) fn with_storage(&self, storage: Storage) -> Tensor {
        Tensor {
            storage: Arc::new(storage),
            layout: self.layout.clone(),
        }
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.layout.rank()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// True if the elements are one row-major run of the storage.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// True if `self` and `other` are views of the same storage.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    fn view(&self, layout: Layout, op: &'static str) -> Result<Tensor> {
        if self.dtype().is_quantized() && layout != self.layout {
            return Err(EngineError::UnsupportedDType {
                op,
                dtype: self.dtype(),
            });
        }
        Ok(Tensor {
            storage: Arc::clone(&self.storage),
            layout,
        })
    }

    /// Same elements read as `shape`: a view if `self` is contiguous,
    /// otherwise a contiguous copy first.
    ///
    /// # Errors
    /// [`EngineError::ShapeMismatch`] if the element counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let base = self.contiguous()?;
        let layout = base.layout.reshape(shape)?;
        base.view(layout, "reshape")
    }

    /// Reorder dimensions (a view).
    ///
    /// # Errors
    /// [`EngineError::BadShape`] if `dims` is not a permutation of `0..rank`.
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        self.view(self.layout.permute(dims)?, "permute")
    }

    /// Swap two dimensions (a view).
    ///
    /// # Errors
    /// [`EngineError::BadAxis`] if either axis is out of range.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Tensor> {
        self.view(self.layout.transpose(a, b)?, "transpose")
    }

    /// Entries `start..start+len` of `axis` (a view).
    ///
    /// # Errors
    /// [`EngineError::BadAxis`] or [`EngineError::OutOfRange`].
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Tensor> {
        self.view(self.layout.narrow(axis, start, len)?, "narrow")
    }

    /// Repeat size-1 or missing leading dimensions up to `shape` (a view
    /// with stride 0 on the repeated dimensions).
    ///
    /// # Errors
    /// [`EngineError::ShapeMismatch`] if the shapes are not compatible.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        self.view(self.layout.broadcast_to(shape)?, "broadcast_to")
    }

    /// Remove a size-1 dimension (a view).
    ///
    /// # Errors
    /// [`EngineError::BadAxis`] or [`EngineError::BadShape`] if its size is not 1.
    pub fn squeeze(&self, axis: usize) -> Result<Tensor> {
        self.view(self.layout.squeeze(axis)?, "squeeze")
    }

    /// Insert a size-1 dimension before `axis` (a view).
    ///
    /// # Errors
    /// [`EngineError::BadAxis`] if `axis > rank`.
    pub fn unsqueeze(&self, axis: usize) -> Result<Tensor> {
        self.view(self.layout.unsqueeze(axis)?, "unsqueeze")
    }

    // ANCHOR: contiguous
    /// A row-major tensor with the same elements: `self` (sharing storage)
    /// if it already is one, otherwise a copy gathered in logical order.
    ///
    /// # Errors
    /// [`EngineError::UnsupportedDType`] for quantized tensors.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let storage = self.storage.gather(self.layout.indices());
        let storage = storage.ok_or(EngineError::UnsupportedDType {
            op: "contiguous",
            dtype: self.dtype(),
        })?;
        Ok(Tensor {
            storage: Arc::new(storage),
            layout: Layout::contiguous(self.shape()),
        })
    }
    // ANCHOR_END: contiguous

    /// The elements as one `&[f32]` slice in row-major order, if this is a
    /// contiguous f32 tensor.
    ///
    /// # Errors
    /// [`EngineError::UnsupportedDType`] if not f32, [`EngineError::BadShape`]
    /// if not contiguous.
    pub fn as_f32_slice(&self) -> Result<&[f32]> {
        let Storage::F32(v) = &*self.storage else {
            return Err(EngineError::UnsupportedDType {
                op: "as_f32_slice",
                dtype: self.dtype(),
            });
        };
        if !self.is_contiguous() {
            return Err(EngineError::BadShape {
                op: "as_f32_slice",
                shape: self.shape().to_vec(),
                reason: "layout is not contiguous".into(),
            });
        }
        Ok(&v[self.offset()..self.offset() + self.numel()])
    }

    /// The elements as f32 in row-major order (converted from f16/bf16,
    /// dequantized from a block format).
    ///
    /// # Errors
    /// [`EngineError::UnsupportedDType`] for a non-contiguous quantized view.
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        if !self.device().is_cpu() {
            return self.to_device(&crate::Device::Cpu)?.to_vec_f32();
        }
        if let Ok(s) = self.as_f32_slice() {
            return Ok(s.to_vec());
        }
        if let (Storage::Quantized { dtype, bytes }, true) = (&*self.storage, self.is_contiguous())
        {
            let start = self.offset() / dtype.block_len() * dtype.unit_bytes();
            let n = self.numel();
            let len = dtype.bytes_for(n).unwrap_or(0);
            let mut out = vec![0f32; n];
            crate::quant::dequantize(*dtype, &bytes[start..start + len], &mut out)?;
            return Ok(out);
        }
        if let (
            Storage::Regrouped {
                dtype, bytes, cols, ..
            },
            true,
        ) = (&*self.storage, self.is_contiguous())
        {
            let (cols, first) = (*cols, self.offset() / (*cols).max(1));
            let mut row = vec![0u8; dtype.bytes_for(cols).unwrap_or(0)];
            let mut out = vec![0f32; self.numel()];
            for (i, o) in out.chunks_exact_mut(cols.max(1)).enumerate() {
                crate::quant::x8::unpack_row(*dtype, bytes, cols, first + i, &mut row);
                crate::quant::dequantize(*dtype, &row, o)?;
            }
            return Ok(out);
        }
        Ok(self.iter()?.collect())
    }

    /// Iterate over the elements as f32 in row-major order.
    ///
    /// # Errors
    /// [`EngineError::UnsupportedDType`] for quantized tensors.
    pub fn iter(&self) -> Result<impl Iterator<Item = f32> + '_> {
        self.host_only("iter")?;
        if self.dtype().is_quantized() {
            return Err(EngineError::UnsupportedDType {
                op: "iter",
                dtype: self.dtype(),
            });
        }
        Ok(self
            .layout
            .indices()
            .map(|i| self.storage.get_f32(i).unwrap_or(f32::NAN)))
    }

    /// The element at `index`, as f32.
    ///
    /// # Errors
    /// [`EngineError::OutOfRange`] / [`EngineError::BadShape`] for a bad
    /// index, [`EngineError::UnsupportedDType`] for quantized tensors.
    pub fn get(&self, index: &[usize]) -> Result<f32> {
        self.host_only("get")?;
        let at = self.layout.storage_index("get", index)?;
        self.storage
            .get_f32(at)
            .ok_or(EngineError::UnsupportedDType {
                op: "get",
                dtype: self.dtype(),
            })
    }

    /// A contiguous copy converted to `dtype`: widened or narrowed between
    /// f32, f16 and bf16, quantized to a block format (the rounding of
    /// [`crate::quant`]), or dequantized from one.
    ///
    /// # Errors
    /// [`EngineError::UnsupportedDType`] from a non-contiguous quantized view,
    /// [`EngineError::BadShape`] when quantizing a last dimension that is
    /// not a whole number of blocks, [`EngineError::NonFinite`] when
    /// quantizing NaN or ±inf.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if self.dtype() == dtype {
            return self.contiguous();
        }
        let v: Vec<f32> = self.to_vec_f32()?;
        let storage = match dtype {
            DType::F32 => Storage::F32(v),
            DType::F16 => Storage::F16(v.iter().map(|&x| f16::from_f32(x)).collect()),
            DType::BF16 => Storage::BF16(v.iter().map(|&x| bf16::from_f32(x)).collect()),
            q => {
                if self.shape().last().is_none_or(|d| d % q.block_len() != 0) {
                    return Err(EngineError::BadShape {
                        op: "to_dtype",
                        shape: self.shape().to_vec(),
                        reason: format!("last dimension must be a multiple of {}", q.block_len()),
                    });
                }
                Storage::Quantized {
                    dtype: q,
                    bytes: Bytes::from_vec(crate::quant::quantize(q, &v)?),
                }
            }
        };
        Tensor::new(storage, self.shape(), "to_dtype")
    }
}
