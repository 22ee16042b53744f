//! Where tensors live and operations run: the CPU, or an NVIDIA GPU through
//! `cudarc` when the engine is built with the `cuda` feature.
//!
//! A [`Device`] is chosen once (`infer --device cuda`). Weights go there
//! with [`Tensor::to_device`](crate::Tensor::to_device), activations live in
//! [`Buffer`]s on it, and [`ops`] runs each operation wherever its operands
//! are: the CPU kernels of [`crate::kernels`] and [`crate::nn`], or the CUDA
//! kernels of `engine/src/cuda/`. A forward pass written against [`ops`]
//! never asks which.

mod buffer;
mod graph;
pub mod ops;
mod transfer;
#[cfg(feature = "cuda")]
mod views;

pub use buffer::{Buffer, Rows};
pub use graph::{GraphStats, StepGraphs};

use crate::error::{EngineError, Result};

/// A place tensors live and operations run.
#[derive(Debug, Clone)]
pub enum Device {
    /// Host memory and the CPU kernels.
    Cpu,
    /// An NVIDIA GPU.
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::Gpu),
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            #[cfg(feature = "cuda")]
            (Device::Cuda(a), Device::Cuda(b)) => a.ordinal() == b.ordinal(),
            #[cfg(feature = "cuda")]
            _ => false,
        }
    }
}

impl Device {
    /// The device a command line names: `cpu`, `cuda` (GPU 0) or `cuda:N`.
    ///
    /// # Errors
    /// [`EngineError::Device`] for any other name, or (for `cuda`) when
    /// there is no such GPU or this build has no CUDA support.
    pub fn parse(name: &str) -> Result<Device> {
        match name {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Device::cuda(0),
            _ => match name.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(ordinal)) => Device::cuda(ordinal),
                _ => Err(EngineError::Device(format!(
                    "unknown device {name:?}: expected cpu, cuda or cuda:N"
                ))),
            },
        }
    }

    /// GPU `ordinal`, with the kernels compiled for it.
    ///
    /// # Errors
    /// "no CUDA device found: …", saying why (no driver, no such GPU, or a
    /// build without the `cuda` feature); never a panic.
    #[cfg(feature = "cuda")]
    pub fn cuda(ordinal: usize) -> Result<Device> {
        crate::cuda::Gpu::new(ordinal).map(Device::Cuda)
    }

    /// GPU `ordinal`: this build has no CUDA backend, so always an error.
    ///
    /// # Errors
    /// Always: "no CUDA device found: this build has no CUDA support".
    #[cfg(not(feature = "cuda"))]
    pub fn cuda(ordinal: usize) -> Result<Device> {
        Err(EngineError::Device(format!(
            "no CUDA device found: this build has no CUDA support, so GPU {ordinal} cannot be used \
             (build with `--features cuda`)"
        )))
    }

    /// True for [`Device::Cpu`].
    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }

    /// `cpu`, or `cuda:N (name)`.
    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "cpu".into(),
            #[cfg(feature = "cuda")]
            Device::Cuda(g) => format!("cuda:{} ({})", g.ordinal(), g.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(Device::parse("cpu"), Ok(Device::Cpu));
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", ""] {
            let Err(EngineError::Device(msg)) = Device::parse(bad) else {
                panic!("{bad:?} parsed");
            };
            assert!(msg.contains("unknown device"), "{msg}");
        }
    }

    /// Asking for a GPU where there is none is an error that says so, never
    /// a panic (this holds on a machine with a GPU only for a missing
    /// ordinal, so that is what is asked for there).
    #[test]
    fn a_missing_gpu_is_a_clear_error() {
        let Err(EngineError::Device(msg)) = Device::cuda(4096) else {
            panic!("GPU 4096 found");
        };
        assert!(msg.starts_with("no CUDA device found: "), "{msg}");
    }
}
