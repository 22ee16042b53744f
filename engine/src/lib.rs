//! # engine
//!
//! The bottom layer of Inference from Scratch: tensors (shared storage plus a
//! layout of shape, strides and offset), dtypes, and the CPU kernels every
//! model runs on. Each fast kernel has a plain twin in [`kernels::scalar`]
//! that the book shows first and the property tests compare against.
//!
//! * [`tensor`]: [`Tensor`], its [`tensor::Layout`] and [`tensor::Storage`];
//!   views (reshape, permute, narrow, broadcast, squeeze) share storage.
//! * [`ops`]: operations on tensors, each returning [`Result`] with an
//!   [`EngineError`] that names the op and the shapes.
//! * [`kernels`]: slice-level hot loops (dot, matvec, softmax, norms, RoPE,
//!   attention…) with AVX-512, AVX2+FMA, NEON and scalar versions chosen
//!   once at run time (`INFER_KERNELS` forces a lower level).
//! * [`device`]: where tensors live and ops run, the CPU or (with the
//!   `cuda` feature) an NVIDIA GPU, and [`device::ops`] that run on either.
//! * [`threads`]: the thread pool the kernels split work across
//!   (`set_num_threads`, `INFER_THREADS`).
//!
//! ```
//! use engine::Tensor;
//!
//! let a = Tensor::arange(&[2, 3])?;
//! let t = a.transpose(0, 1)?; // a view: no element moves
//! assert!(t.shares_storage(&a));
//! assert_eq!(t.strides(), [1, 3]);
//! let p = a.softmax()?; // rows sum to 1
//! assert!((p.to_vec_f32()?[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
//! # Ok::<(), engine::EngineError>(())
//! ```

#![deny(missing_docs)]

pub mod alloc;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device;
pub mod dispatch;
pub mod dtype;
pub mod error;
pub mod kernels;
pub mod nn;
pub mod ops;
pub mod profile;
pub mod quant;
pub mod tensor;
pub mod threads;

pub use device::Device;
pub use dtype::DType;
pub use error::{EngineError, Result};
pub use tensor::Tensor;
