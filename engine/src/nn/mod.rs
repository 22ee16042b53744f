//! Layers for a model's forward pass: activations are plain `f32` slices
//! (rows of a batch stacked), weights are [`Tensor`](crate::Tensor)s of any
//! dtype. Each function checks the shapes, then dispatches on the weight's
//! dtype to the right kernel, so a forward pass never names a dtype:
//!
//! * [`linear`]: `out = x · Wᵀ` against one or several weights stacked by
//!   rows (f32 sgemm, f16 matvec, or quantized integer dot products);
//! * [`rmsnorm`], [`layernorm`]: per-row norms with tensor weights;
//! * [`embed`]: gather rows of an embedding table (dequantizing them).

mod embed;
mod linear;
mod matrix;
mod norm;
mod swiglu;

pub use embed::embed;
pub use linear::{
    SGEMM_MIN_TOKENS, linear, linear_add, linear_batch, same_product_for_every_length,
};
pub use norm::{layernorm, rmsnorm};
pub use swiglu::{linear_swiglu, swiglu_down_add};
