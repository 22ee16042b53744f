//! Step 1: tensor strides.
//!
//! A tensor is one flat buffer read through a layout: a shape, a stride per
//! dimension and an offset. Element `[i₀, i₁, …]` lives at
//! `offset + Σ iₖ·strides[k]`. Transposing, slicing and splitting heads are
//! new layouts over the same buffer; no element moves.
//!
//! Write the four functions below. [`Layout`] is the engine's: three public
//! fields, `shape`, `strides` and `offset`.
//!
//! Check: `cargo test --release --test step1_strides`. The last check uses
//! your views to split the heads of the attention fixtures, runs the
//! engine's attention on them and compares with PyTorch.

use engine::tensor::Layout;

/// Row-major ("C order") strides for `shape`: the last dimension moves by
/// 1, each earlier one by the product of the sizes after it. `[2, 3, 4]`
/// gives `[12, 4, 1]`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    todo!("step 1: contiguous_strides")
}

/// Reorder the dimensions: dimension `k` of the result is dimension
/// `dims[k]` of `layout` (`dims` is a permutation of `0..rank`). Only the
/// shape and the strides move.
pub fn permute(layout: &Layout, dims: &[usize]) -> Layout {
    todo!("step 1: permute")
}

/// Keep `len` entries of dimension `axis`, starting at `start`
/// (`start + len` fits): one dimension shrinks, the offset moves, the
/// strides stay.
pub fn narrow(layout: &Layout, axis: usize, start: usize, len: usize) -> Layout {
    todo!("step 1: narrow")
}

/// The elements `layout` describes in `data`, in logical (row-major) order:
/// the contiguous copy of the view.
pub fn gather(data: &[f32], layout: &Layout) -> Vec<f32> {
    todo!("step 1: gather")
}
