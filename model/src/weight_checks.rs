//! What the architectures' weight sets share: shape and dtype checks with
//! errors that name the tensor, parameter and byte totals, and mapping
//! their matrices with a function that cannot fail.

use engine::{DType, Tensor};

use crate::arch_error::ArchError;

/// `t` has shape `want`.
pub(crate) fn check_shape(name: &str, t: &Tensor, want: &[usize]) -> Result<(), ArchError> {
    if t.shape() == want {
        Ok(())
    } else {
        Err(ArchError::BadShape {
            name: name.to_string(),
            expected: want.to_vec(),
            found: t.shape().to_vec(),
        })
    }
}

/// `t` has shape `want` and is f32 (the forward pass reads it as a slice:
/// norms, biases, position embeddings).
pub(crate) fn check_f32(name: &str, t: &Tensor, want: &[usize]) -> Result<(), ArchError> {
    check_shape(name, t, want)?;
    if t.dtype() != DType::F32 {
        return Err(ArchError::Config(format!(
            "{name} is {}; norms, biases and position embeddings must be f32",
            t.dtype()
        )));
    }
    Ok(())
}

/// Bytes `t` occupies in its dtype.
pub(crate) fn n_bytes(t: &Tensor) -> usize {
    t.dtype().bytes_for(t.numel()).unwrap_or(0)
}

/// (parameters, bytes) of a set of tensors.
pub(crate) fn totals<'a>(tensors: impl IntoIterator<Item = &'a Tensor>) -> (usize, usize) {
    tensors
        .into_iter()
        .fold((0, 0), |(p, b), t| (p + t.numel(), b + n_bytes(t)))
}

/// The result of a fallible walk given a function that cannot fail (the
/// weight sets' `map_matrices` is their `try_map_matrices` so).
pub(crate) fn never_fails<T>(r: Result<T, std::convert::Infallible>) -> T {
    match r {
        Ok(v) => v,
        Err(never) => match never {},
    }
}
