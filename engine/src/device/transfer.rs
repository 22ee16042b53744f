//! Moving a tensor between devices: [`Tensor::to_device`] copies its bytes
//! as they are (f32, f16, bf16, or quantized blocks in the file's layout),
//! so a weight on the GPU is the same bytes as on the host.

use super::Device;
use crate::error::Result;
use crate::tensor::Tensor;
#[cfg(feature = "cuda")]
use {
    crate::cuda::{CudaStorage, Gpu},
    crate::dtype::DType,
    crate::error::EngineError,
    crate::tensor::{Bytes, Storage},
    half::{bf16, f16},
};

impl Tensor {
    /// The device this tensor's elements live on.
    pub fn device(&self) -> Device {
        match self.storage() {
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Device::Cuda(s.gpu().clone()),
            _ => Device::Cpu,
        }
    }

    /// This tensor on `device`: itself if it is already there, otherwise a
    /// copy of its elements, row-major, in the same dtype (a regrouped
    /// weight goes back to the file's block layout first; the regrouping
    /// serves the CPU kernels only).
    ///
    /// # Errors
    /// A quantized view that does not start at its first block, or the
    /// device's error (out of memory, a failed copy).
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        match device {
            Device::Cpu => self.to_host(),
            #[cfg(feature = "cuda")]
            Device::Cuda(gpu) => self.to_gpu(gpu),
        }
    }

    #[cfg(not(feature = "cuda"))]
    fn to_host(&self) -> Result<Tensor> {
        Ok(self.clone())
    }

    #[cfg(feature = "cuda")]
    fn to_host(&self) -> Result<Tensor> {
        let Storage::Cuda(s) = self.storage() else {
            return Ok(self.clone());
        };
        let bytes = s.gpu().download(s.bytes())?;
        let storage = match s.dtype() {
            DType::F32 => Storage::F32(
                words(&bytes, 4)
                    .map(|w| f32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                    .collect(),
            ),
            DType::F16 => Storage::F16(
                words(&bytes, 2)
                    .map(|w| f16::from_le_bytes([w[0], w[1]]))
                    .collect(),
            ),
            DType::BF16 => Storage::BF16(
                words(&bytes, 2)
                    .map(|w| bf16::from_le_bytes([w[0], w[1]]))
                    .collect(),
            ),
            dtype => Storage::Quantized {
                dtype,
                bytes: Bytes::from_vec(bytes),
            },
        };
        Ok(self.with_storage(storage))
    }

    #[cfg(feature = "cuda")]
    fn to_gpu(&self, gpu: &Gpu) -> Result<Tensor> {
        if let Storage::Cuda(s) = self.storage()
            && s.gpu().ordinal() == gpu.ordinal()
        {
            return Ok(self.clone());
        }
        let host = self.to_host()?.ungrouped();
        let host = if host.dtype().is_quantized() {
            host
        } else {
            host.contiguous()?
        };
        let (o, n) = (host.offset(), host.numel());
        let bytes: Vec<u8> = match host.storage() {
            Storage::F32(v) => v[o..o + n].iter().flat_map(|x| x.to_le_bytes()).collect(),
            Storage::F16(v) => v[o..o + n].iter().flat_map(|x| x.to_le_bytes()).collect(),
            Storage::BF16(v) => v[o..o + n].iter().flat_map(|x| x.to_le_bytes()).collect(),
            Storage::Quantized { bytes, .. } if o == 0 && host.is_contiguous() => bytes.to_vec(),
            _ => {
                return Err(EngineError::BadShape {
                    op: "to_device",
                    shape: self.shape().to_vec(),
                    reason: "a quantized view must start at its first block".into(),
                });
            }
        };
        let storage = CudaStorage::new(gpu.clone(), host.dtype(), gpu.upload(&bytes)?);
        Tensor::new(Storage::Cuda(storage), host.shape(), "to_device")
    }
}

#[cfg(feature = "cuda")]
fn words(bytes: &[u8], n: usize) -> impl Iterator<Item = &[u8]> {
    bytes.chunks_exact(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_the_cpu_a_tensor_stays_itself() -> Result<()> {
        let t = Tensor::arange(&[2, 3])?;
        assert_eq!(t.device(), Device::Cpu);
        let c = t.to_device(&Device::Cpu)?;
        assert!(c.shares_storage(&t));
        Ok(())
    }
}
