//! Step 2: softmax.
//!
//! `softmax(x)ᵢ = exp(xᵢ) / Σⱼ exp(xⱼ)` turns a row of scores into
//! probabilities. Computed as written, `exp` overflows to infinity once a
//! score passes about 88 in f32; subtract the row's maximum first (the
//! result is the same, and the largest term is `exp(0) = 1`).
//! `log_softmax(x)ᵢ = xᵢ − max − ln Σⱼ exp(xⱼ − max)` is what beam search
//! adds up.
//!
//! Check: `cargo test --release --test step2_softmax` (PyTorch's outputs,
//! then the same rows shifted by 1000).

/// Softmax of one row, in place.
pub fn softmax(x: &mut [f32]) {
    todo!("step 2: softmax")
}

/// Log-softmax of one row, in place.
pub fn log_softmax(x: &mut [f32]) {
    todo!("step 2: log_softmax")
}
