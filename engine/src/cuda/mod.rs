//! The CUDA backend (feature `cuda`): NVIDIA GPUs through `cudarc`, which
//! loads the driver and NVRTC at run time, so the engine builds without a
//! CUDA toolkit and a machine without a GPU gets a clear error, not a crash.
//!
//! * [`Gpu`]: one device, its stream and the kernels compiled for it;
//! * [`CudaStorage`]: a tensor's bytes on the device, in the file's format;
//! * [`source`]: the CUDA C kernels (`kernels/*.cu`) and their compilation;
//! * `StepGraph`: a decode step captured as a CUDA graph (`graph`);
//! * `launch`: one launcher per kernel, used by [`crate::device::ops`].
//!
//! Models never call this module: they call [`crate::device::ops`], which
//! dispatches on the [`crate::device::Device`] a buffer lives on.

mod gpu;
mod graph;
mod graph_state;
pub(crate) use gpu::driver;
pub(crate) mod launch;
pub mod source;
mod storage;

pub use gpu::Gpu;
pub(crate) use graph::StepGraph;
pub use storage::CudaStorage;
