//! Step 2, the reference: the plain kernels of `engine/src/kernels/scalar.rs`
//! (the chapter "Fast CPU kernels" includes the softmax).

/// Softmax of one row, in place (the engine's plain `softmax_inplace`).
pub fn softmax(x: &mut [f32]) {
    engine::kernels::scalar::softmax_inplace(x)
}

/// Log-softmax of one row, in place (the engine's plain `log_softmax_inplace`).
pub fn log_softmax(x: &mut [f32]) {
    engine::kernels::scalar::log_softmax_inplace(x)
}
