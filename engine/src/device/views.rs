//! Views of [`Buffer`]s on a GPU for the launchers, checking that every
//! operand of one operation is on the same GPU.

use std::ops::Range;

use super::{Buffer, Device};
use crate::cuda::Gpu;
use crate::cuda::launch::{In, Out};
use crate::error::{EngineError, Result};

/// The error for operands on different devices.
pub(crate) fn elsewhere(op: &'static str, a: &Device, b: &Device) -> EngineError {
    EngineError::Device(format!("{op}: operands on {} and {}", a.name(), b.name()))
}

/// The GPU a buffer is on and a mutable view of `range` of it (the whole
/// buffer when `None`).
pub(crate) fn out_view<'a>(
    op: &'static str,
    b: &'a mut Buffer,
    range: Option<Range<usize>>,
) -> Result<(&'a Gpu, Out<'a>)> {
    match b {
        Buffer::Cuda { gpu, data, len } => {
            let r = range.unwrap_or(0..*len);
            Ok((&*gpu, data.slice_mut(r)))
        }
        Buffer::Cpu(_) => Err(EngineError::Device(format!(
            "{op}: a host buffer among GPU operands"
        ))),
    }
}

/// A view of `range` of a buffer that must be on `gpu`.
pub(crate) fn in_view<'a>(
    op: &'static str,
    b: &'a Buffer,
    gpu: &Gpu,
    range: Option<Range<usize>>,
) -> Result<In<'a>> {
    match b {
        Buffer::Cuda { gpu: g, data, len } if g.ordinal() == gpu.ordinal() => {
            Ok(data.slice(range.unwrap_or(0..*len)))
        }
        other => Err(elsewhere(op, &other.device(), &Device::Cuda(gpu.clone()))),
    }
}

/// The GPU a buffer is on (an error for a host buffer).
pub(crate) fn gpu_of<'a>(op: &'static str, b: &'a Buffer) -> Result<&'a Gpu> {
    match b {
        Buffer::Cuda { gpu, .. } => Ok(gpu),
        Buffer::Cpu(_) => Err(EngineError::Device(format!(
            "{op}: a host buffer among GPU operands"
        ))),
    }
}
