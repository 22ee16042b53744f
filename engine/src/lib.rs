//! # engine
//!
//! The bottom layer of Inference from Scratch: tensors (shared storage plus a
//! layout of shape, strides and offset), dtypes, and the CPU kernels every
//! model runs on. Each fast kernel has a plain twin in [`kernels::scalar`]
//! that the book shows first and the property tests compare against.

#![deny(missing_docs)]

pub mod dtype;
pub mod error;
pub mod kernels;
pub mod ops;
pub mod tensor;
pub mod threads;

pub use dtype::DType;
pub use error::{EngineError, Result};
pub use tensor::Tensor;
