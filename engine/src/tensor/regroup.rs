//! Weights in the layout their matrix products read fastest
//! ([`crate::quant::x8`]): one tensor at a time, or many at once into one
//! [`Home`] of huge pages.

use super::home::{Frozen, Home};
use super::{Bytes, Storage, Tensor};
use crate::dtype::DType;

/// What regrouping reads from a tensor: its format, its blocks in the
/// file's layout, its rows and columns.
struct Source<'t> {
    dtype: DType,
    blocks: &'t [u8],
    rows: usize,
    cols: usize,
    owner: &'t Bytes,
}

impl Tensor {
    /// This weight in the layout its matrix products read fastest: a
    /// contiguous Q4_0, Q4_1, Q5_0 or Q8_0 matrix whose rows come in whole groups of 8
    /// is regrouped eight rows at a time ([`crate::quant::x8`], one copy,
    /// no widening); any other tensor comes back as it is (sharing its
    /// storage). Products with the result equal the original's up to
    /// float rounding, and every other use of the tensor reads it as before.
    /// The original's bytes are released ([`Bytes::release`]): a memory-mapped
    /// file's pages leave memory until something reads them again.
    pub fn regrouped(&self) -> Tensor {
        self.source()
            .and_then(|s| {
                let packed = crate::quant::x8::pack(s.dtype, s.blocks, s.rows, s.cols)?;
                let t = self.regrouped_over(s.dtype, s.cols, Bytes::from_vec(packed))?;
                s.owner.release();
                Some(t)
            })
            .unwrap_or_else(|| self.clone())
    }

    /// [`Tensor::regrouped`] for every tensor in `tensors`, their bytes
    /// side by side in one [`Home`], which Linux is asked to back with
    /// 2 MiB pages (the home's module says why). Tensors that do not
    /// regroup stay as they are. Should the memory map fail, each tensor
    /// is regrouped on its own, as [`Tensor::regrouped`] does.
    pub fn regroup_together(tensors: &mut [&mut Tensor]) {
        let lens = tensors
            .iter()
            .map(|t| t.source().map_or(0, |s| s.blocks.len()));
        let home = Home::room(lens).and_then(|room| Home::with_capacity(room).ok());
        let Some(mut home) = home else {
            for t in tensors.iter_mut() {
                **t = t.regrouped();
            }
            return;
        };
        // Fill the home, then freeze it, then point each tensor into it:
        // its pieces cannot be shared while it is still being written.
        let placed: Vec<_> = tensors
            .iter()
            .map(|t| {
                let s = t.source()?;
                let (range, piece) = home.next(s.blocks.len())?;
                crate::quant::x8::pack_into(s.dtype, s.blocks, s.rows, s.cols, piece)?;
                // Now, not once all are copied: a memory-mapped file's
                // pages then leave as the home's arrive.
                s.owner.release();
                Some((range, s.dtype, s.cols))
            })
            .collect();
        let frozen: Option<Frozen> = home.freeze().ok();
        for (t, place) in tensors.iter_mut().zip(placed) {
            let moved = frozen
                .as_ref()
                .zip(place)
                .and_then(|(frozen, (range, dtype, cols))| {
                    t.regrouped_over(dtype, cols, frozen.bytes(range)?)
                });
            **t = moved.unwrap_or_else(|| t.regrouped());
        }
    }

    /// What [`Tensor::regrouped`] would read: a contiguous quantized
    /// matrix's blocks, when they regroup ([`crate::quant::x8::packs`]). (A
    /// home keeps no room for the others: a stretch of it left untouched
    /// between two matrices would still become resident, inside the huge
    /// page around it.)
    fn source(&self) -> Option<Source<'_>> {
        let (Storage::Quantized { dtype, bytes }, &[rows, cols], true) =
            (&*self.storage, self.shape(), self.is_contiguous())
        else {
            return None;
        };
        let start = self.offset() / dtype.block_len() * dtype.unit_bytes();
        let len = dtype.bytes_for(rows.checked_mul(cols)?)?;
        let blocks = bytes.get(start..start.checked_add(len)?)?;
        crate::quant::x8::packs(*dtype, blocks.len(), rows, cols).then_some(Source {
            dtype: *dtype,
            blocks,
            rows,
            cols,
            owner: bytes,
        })
    }

    /// A tensor of this shape over `packed`, its `dtype` blocks of `cols`
    /// columns regrouped, its sums in llama.cpp's order.
    fn regrouped_over(&self, dtype: DType, cols: usize, packed: Bytes) -> Option<Tensor> {
        let storage = Storage::Regrouped {
            dtype,
            bytes: packed,
            cols,
            order: crate::quant::SumOrder::Ggml,
        };
        Tensor::new(storage, self.shape(), "regrouped").ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `rows × cols` matrix of `dtype` from a fixed pattern.
    fn matrix(rows: usize, cols: usize, dtype: DType, seed: usize) -> Tensor {
        let v: Vec<f32> = (0..rows * cols)
            .map(|i| (((i * 37 + seed * 11) % 29) as f32 - 14.0) / 7.0)
            .collect();
        Tensor::from_vec(v, &[rows, cols])
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    fn is_regrouped(t: &Tensor) -> bool {
        matches!(*t.storage, Storage::Regrouped { .. })
    }

    #[test]
    fn together_gives_what_one_at_a_time_gives() {
        let originals = vec![
            matrix(16, 64, DType::Q4_1, 1),
            matrix(8, 32, DType::Q8_0, 2),
            // Not regroupable: rows not a multiple of 8, and f32.
            matrix(12, 32, DType::Q4_0, 3),
            matrix(8, 32, DType::F32, 4),
            matrix(24, 96, DType::Q5_0, 5),
        ];
        let mut together = originals.clone();
        let mut refs: Vec<&mut Tensor> = together.iter_mut().collect();
        Tensor::regroup_together(&mut refs);
        for (t, o) in together.iter().zip(&originals) {
            let alone = o.regrouped();
            assert_eq!(t.shape(), o.shape());
            assert_eq!(is_regrouped(t), is_regrouped(&alone));
            assert_eq!(*t.storage, *alone.storage);
            // The file's layout comes back byte for byte.
            assert_eq!(*t.ungrouped().storage, *o.storage);
        }
        assert!(is_regrouped(&together[0]) && !is_regrouped(&together[2]));
    }
}
