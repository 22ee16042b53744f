//! The one error type of the engine. Every message names the operation and
//! the numbers involved, so a failure can be read without a debugger.

use crate::dtype::DType;

/// Everything that can go wrong in the engine's public API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// Two shapes that had to agree (or broadcast) did not.
    #[error("{op}: shape mismatch between {lhs:?} and {rhs:?}")]
    ShapeMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The first shape involved.
        lhs: Vec<usize>,
        /// The second shape involved.
        rhs: Vec<usize>,
    },
    /// A shape was not acceptable for the operation (wrong rank, bad size…).
    #[error("{op}: {reason} (shape {shape:?})")]
    BadShape {
        /// The operation that failed.
        op: &'static str,
        /// The offending shape.
        shape: Vec<usize>,
        /// What was wrong with it.
        reason: String,
    },
    /// An axis index outside `0..rank`.
    #[error("{op}: axis {axis} out of range for rank {rank}")]
    BadAxis {
        /// The operation that failed.
        op: &'static str,
        /// The axis asked for.
        axis: usize,
        /// The tensor's rank.
        rank: usize,
    },
    /// An index or range outside a dimension.
    #[error("{op}: index {index} out of range for dimension of size {size}")]
    OutOfRange {
        /// The operation that failed.
        op: &'static str,
        /// The index asked for (for a range, its end).
        index: usize,
        /// The size of the dimension.
        size: usize,
    },
    /// The operation does not support this element type.
    #[error("{op}: dtype {dtype} is not supported")]
    UnsupportedDType {
        /// The operation that failed.
        op: &'static str,
        /// The element type given.
        dtype: DType,
    },
    /// A buffer's length did not match the shape it was given.
    #[error("{op}: {len} elements given for shape {shape:?} ({expected} needed)")]
    LengthMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The shape asked for.
        shape: Vec<usize>,
        /// The elements the shape needs.
        expected: usize,
        /// The elements given.
        len: usize,
    },
    /// A value that cannot be quantized (NaN or ±inf).
    #[error("{op}: value {value} at index {index} is not finite")]
    NonFinite {
        /// The operation that failed.
        op: &'static str,
        /// Where the value is.
        index: usize,
        /// The value.
        value: f32,
    },
    /// No usable device of the kind asked for, or the device failed
    /// (a driver, compiler or launch error, in the driver's words).
    #[error("{0}")]
    Device(String),
    /// The thread pool could not be built.
    #[error("thread pool of {threads} threads: {reason}")]
    ThreadPool {
        /// Threads asked for.
        threads: usize,
        /// The operating system's reason.
        reason: String,
    },
}

/// Shorthand for results of engine operations.
pub type Result<T> = std::result::Result<T, EngineError>;
