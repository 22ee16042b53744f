//! Step 1, the reference: `engine/src/tensor/layout.rs` (the chapter
//! "Tensors" includes it).

use engine::tensor::Layout;

/// Row-major strides for `shape` (the engine's `contiguous_strides`).
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    engine::tensor::layout::contiguous_strides(shape)
}

/// Reorder the dimensions (the engine's `Layout::permute`).
pub fn permute(layout: &Layout, dims: &[usize]) -> Layout {
    layout.permute(dims).expect("dims is a permutation")
}

/// Keep `len` entries of `axis` from `start` (the engine's `Layout::narrow`).
pub fn narrow(layout: &Layout, axis: usize, start: usize, len: usize) -> Layout {
    layout.narrow(axis, start, len).expect("the range fits")
}

/// The view's elements in logical order (the engine's `Layout::indices`).
pub fn gather(data: &[f32], layout: &Layout) -> Vec<f32> {
    layout.indices().map(|i| data[i]).collect()
}
