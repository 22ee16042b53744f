//! Activations on a device: a flat run of f32 (rows of a batch stacked), in
//! host memory or in GPU memory. Buffers are written by [`super::ops`],
//! resized in place by [`Buffer::fit`] (no allocation once grown), and
//! read back with [`Buffer::to_host`].

use super::Device;
use crate::error::{EngineError, Result};

/// A flat f32 buffer on one [`Device`].
#[derive(Debug, Clone)]
pub enum Buffer {
    /// In host memory.
    Cpu(Vec<f32>),
    /// In the memory of a GPU.
    #[cfg(feature = "cuda")]
    Cuda {
        /// The GPU.
        gpu: crate::cuda::Gpu,
        /// The allocation (at least `len` values).
        data: cudarc::driver::CudaSlice<f32>,
        /// Values in use, from the start of `data`.
        len: usize,
    },
}

/// `count` rows inside a [`Buffer`]: row `r` starts at `at + r · stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rows {
    /// Index of row 0's first value.
    pub at: usize,
    /// Values from one row's start to the next's.
    pub stride: usize,
    /// Number of rows.
    pub count: usize,
}

impl Rows {
    /// True if rows of `width` values fit in a buffer of `len` values.
    pub(crate) fn fit(&self, width: usize, len: usize) -> bool {
        width <= self.stride
            && (self.count == 0 || self.at + (self.count - 1) * self.stride + width <= len)
    }
}

impl Buffer {
    /// A copy of `host` on `device`.
    ///
    /// # Errors
    /// The device's error (out of memory, a failed copy).
    pub fn from_host(device: &Device, host: &[f32]) -> Result<Buffer> {
        match device {
            Device::Cpu => Ok(Buffer::Cpu(host.to_vec())),
            #[cfg(feature = "cuda")]
            Device::Cuda(gpu) => Ok(Buffer::Cuda {
                gpu: gpu.clone(),
                data: gpu.upload(host)?,
                len: host.len(),
            }),
        }
    }

    /// `n` zeros on `device`.
    ///
    /// # Errors
    /// The device's error (out of memory).
    pub fn zeros(device: &Device, n: usize) -> Result<Buffer> {
        match device {
            Device::Cpu => Ok(Buffer::Cpu(vec![0.0; n])),
            #[cfg(feature = "cuda")]
            Device::Cuda(gpu) => Ok(Buffer::Cuda {
                gpu: gpu.clone(),
                data: gpu.zeros(n.max(1))?,
                len: n,
            }),
        }
    }

    /// Make the buffer `n` values long, keeping its allocation when it is
    /// big enough. Values up to the old length are kept; new ones are zero
    /// on the host and unspecified on a GPU (callers overwrite them).
    ///
    /// # Errors
    /// The device's error (out of memory).
    pub fn fit(&mut self, n: usize) -> Result<()> {
        match self {
            // A fresh allocation is zeroed by the allocator (as `vec!`
            // does), not value by value.
            Buffer::Cpu(v) if v.capacity() == 0 => *v = vec![0.0; n],
            Buffer::Cpu(v) => v.resize(n, 0.0),
            #[cfg(feature = "cuda")]
            Buffer::Cuda { gpu, data, len } => {
                if data.len() < n {
                    let mut grown = gpu.zeros(n)?;
                    if *len > 0 {
                        gpu.stream()
                            .memcpy_dtod(&data.slice(..*len), &mut grown.slice_mut(..*len))
                            .map_err(|e| crate::cuda::driver("copy on the device", e))?;
                    }
                    *data = grown;
                }
                *len = n;
            }
        }
        Ok(())
    }

    /// Where the values start (a host or device address): two buffers with
    /// the same address are the same allocation, which a CUDA graph that
    /// reads this buffer needs to know ([`super::StepGraphs`]).
    pub fn address(&self) -> u64 {
        match self {
            Buffer::Cpu(v) => v.as_ptr() as u64,
            #[cfg(feature = "cuda")]
            Buffer::Cuda { gpu, data, .. } => {
                use cudarc::driver::DevicePtr;
                data.device_ptr(gpu.stream()).0
            }
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Buffer::Cpu(v) => v.len(),
            #[cfg(feature = "cuda")]
            Buffer::Cuda { len, .. } => *len,
        }
    }

    /// True if there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The device the values are on.
    pub fn device(&self) -> Device {
        match self {
            Buffer::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Buffer::Cuda { gpu, .. } => Device::Cuda(gpu.clone()),
        }
    }

    /// The values, if they are in host memory.
    pub fn as_host(&self) -> Option<&[f32]> {
        match self {
            Buffer::Cpu(v) => Some(v),
            #[cfg(feature = "cuda")]
            Buffer::Cuda { .. } => None,
        }
    }

    /// The values, mutable, if they are in host memory.
    pub fn as_host_mut(&mut self) -> Option<&mut [f32]> {
        match self {
            Buffer::Cpu(v) => Some(v),
            #[cfg(feature = "cuda")]
            Buffer::Cuda { .. } => None,
        }
    }

    /// The values, copied to the host if they are elsewhere (this waits for
    /// the device's queued work).
    ///
    /// # Errors
    /// The device's error, including one from an earlier kernel.
    pub fn to_host(&self) -> Result<Vec<f32>> {
        self.read(0..self.len())
    }

    /// The values as a host vector, leaving the buffer empty: a host
    /// buffer hands over its own vector (no copy; its next
    /// [`Buffer::fit`] allocates afresh), a device buffer copies its values
    /// back and keeps its allocation for the next call.
    ///
    /// # Errors
    /// The device's error, including one from an earlier kernel.
    pub fn take_host(&mut self) -> Result<Vec<f32>> {
        match self {
            Buffer::Cpu(v) => Ok(std::mem::take(v)),
            #[cfg(feature = "cuda")]
            Buffer::Cuda { .. } => {
                let out = self.to_host()?;
                if let Buffer::Cuda { len, .. } = self {
                    *len = 0;
                }
                Ok(out)
            }
        }
    }

    /// The values into `v`, in exchange for what it held: a host buffer
    /// swaps vectors with `v` (no copy; it keeps `v`'s allocation, which
    /// its next [`Buffer::fit`] sizes, so a caller that hands the same
    /// vector back each time allocates nothing), a device buffer copies
    /// its values into `v` and keeps its own.
    ///
    /// # Errors
    /// The device's error, including one from an earlier kernel.
    pub fn swap_host(&mut self, v: &mut Vec<f32>) -> Result<()> {
        match self {
            Buffer::Cpu(own) => std::mem::swap(own, v),
            #[cfg(feature = "cuda")]
            Buffer::Cuda { .. } => *v = self.to_host()?,
        }
        Ok(())
    }

    /// Values `range`, copied to the host.
    ///
    /// # Errors
    /// A range past the end; the device's error.
    pub fn read(&self, range: std::ops::Range<usize>) -> Result<Vec<f32>> {
        self.check_range("read", &range)?;
        match self {
            Buffer::Cpu(v) => Ok(v[range].to_vec()),
            #[cfg(feature = "cuda")]
            Buffer::Cuda { gpu, data, .. } => {
                gpu.eager_only("a copy to the host")?;
                let mut out = vec![0.0; range.len()];
                gpu.stream()
                    .memcpy_dtoh(&data.slice(range), &mut out)
                    .map_err(|e| crate::cuda::driver("copy to the host", e))?;
                Ok(out)
            }
        }
    }

    /// Overwrite values `at..at + host.len()` with `host`.
    ///
    /// # Errors
    /// A range past the end; the device's error.
    pub fn write(&mut self, at: usize, host: &[f32]) -> Result<()> {
        self.check_range("write", &(at..at + host.len()))?;
        match self {
            Buffer::Cpu(v) => v[at..at + host.len()].copy_from_slice(host),
            #[cfg(feature = "cuda")]
            Buffer::Cuda { gpu, data, .. } => {
                gpu.eager_only("a copy to the device")?;
                gpu.stream()
                    .memcpy_htod(host, &mut data.slice_mut(at..at + host.len()))
                    .map_err(|e| crate::cuda::driver("copy to the device", e))?
            }
        }
        Ok(())
    }

    /// Copy `n` values of `src` from `from` to this buffer at `at` (`src`
    /// may be this buffer's twin on the same device; use
    /// [`Buffer::copy_within`] for overlapping runs of one buffer).
    ///
    /// # Errors
    /// A range past either end, buffers on different devices; the device's error.
    pub fn copy_from(&mut self, at: usize, src: &Buffer, from: usize, n: usize) -> Result<()> {
        self.check_range("copy_from", &(at..at + n))?;
        src.check_range("copy_from", &(from..from + n))?;
        match (self, src) {
            (Buffer::Cpu(d), Buffer::Cpu(s)) => d[at..at + n].copy_from_slice(&s[from..from + n]),
            #[cfg(feature = "cuda")]
            (Buffer::Cuda { gpu, data, .. }, Buffer::Cuda { data: s, .. }) => {
                gpu.eager_only("a copy on the device")?;
                gpu.stream()
                    .memcpy_dtod(&s.slice(from..from + n), &mut data.slice_mut(at..at + n))
                    .map_err(|e| crate::cuda::driver("copy on the device", e))?
            }
            #[cfg(feature = "cuda")]
            (d, s) => {
                return Err(EngineError::Device(format!(
                    "copy_from: buffers on {} and {}",
                    d.device().name(),
                    s.device().name()
                )));
            }
        }
        Ok(())
    }

    /// Copy values `from..from + n` to `at..at + n` of this buffer (the
    /// runs may overlap).
    ///
    /// # Errors
    /// A range past the end; the device's error.
    pub fn copy_within(&mut self, from: usize, at: usize, n: usize) -> Result<()> {
        self.check_range("copy_within", &(from..from + n))?;
        self.check_range("copy_within", &(at..at + n))?;
        match self {
            Buffer::Cpu(v) => v.copy_within(from..from + n, at),
            #[cfg(feature = "cuda")]
            Buffer::Cuda { .. } => {
                let run = self.read(from..from + n)?;
                self.write(at, &run)?;
            }
        }
        Ok(())
    }

    fn check_range(&self, op: &'static str, r: &std::ops::Range<usize>) -> Result<()> {
        if r.start > r.end || r.end > self.len() {
            return Err(EngineError::OutOfRange {
                op,
                index: r.end,
                size: self.len(),
            });
        }
        Ok(())
    }
}
