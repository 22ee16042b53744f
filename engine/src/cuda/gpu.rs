//! One NVIDIA GPU: its context, the stream every op runs on in order, and
//! the kernels compiled for its compute capability.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DeviceRepr, DriverError,
    ValidAsZeroBits,
};

use super::graph_state::GraphState;
use super::source;
use crate::error::{EngineError, Result};

/// A driver error in the engine's error type, naming what was being done.
pub(crate) fn driver(what: &str, e: DriverError) -> EngineError {
    EngineError::Device(format!("CUDA {what}: {e:?}"))
}

/// A handle on one GPU (cheap to clone: every clone shares the context,
/// the stream and the compiled kernels).
#[derive(Clone)]
pub struct Gpu {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// cuBLAS on the same stream, when its library is present.
    blas: Option<cudarc::cublas::CudaBlas>,
    functions: HashMap<&'static str, CudaFunction>,
    _module: Arc<CudaModule>,
    name: String,
    capability: (i32, i32),
    /// Whether launches run, are captured into a graph or replay one.
    graph: Mutex<GraphState>,
    /// A weight widened to f32 for cuBLAS (`launch::linear_cublas`), kept
    /// for the next one.
    widened: Mutex<Option<CudaSlice<f32>>>,
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gpu")
            .field("ordinal", &self.ordinal())
            .field("name", &self.inner.name)
            .field("capability", &self.inner.capability)
            .field("cublas", &self.inner.blas.is_some())
            .finish()
    }
}

impl Gpu {
    // ANCHOR: gpu_new
    /// Open GPU `ordinal` and compile the kernels for it.
    ///
    /// # Errors
    /// "no CUDA device found: …" when the driver library is missing, it
    /// sees no device, or `ordinal` is past the last one; NVRTC's log when
    /// the kernels do not compile; the driver's error otherwise. Never
    /// panics, whatever the machine has.
    pub fn new(ordinal: usize) -> Result<Gpu> {
        let none = |why: String| EngineError::Device(format!("no CUDA device found: {why}"));
        // SAFETY: only tries to open the driver library. cudarc panics on
        // its first call when the library is absent, so this goes first.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(none(
                "the NVIDIA driver library (libcuda) is not present".into(),
            ));
        }
        let count = CudaContext::device_count().map_err(|e| none(format!("{e:?}")))?;
        if ordinal >= count.max(0) as usize {
            return Err(none(format!(
                "asked for GPU {ordinal}, the driver sees {count}"
            )));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| driver("context", e))?;
        let name = ctx.name().map_err(|e| driver("device name", e))?;
        let capability = ctx
            .compute_capability()
            .map_err(|e| driver("compute capability", e))?;
        let ptx = source::compile(Some(capability))?;
        let module = ctx
            .load_module(ptx)
            .map_err(|e| driver("loading the kernels", e))?;
        let mut functions = HashMap::new();
        for &name in source::KERNELS {
            let f = module
                .load_function(name)
                .map_err(|e| driver(&format!("kernel {name}"), e))?;
            functions.insert(name, f);
        }
        // One stream of its own, not the default one, which cannot be
        // captured into a CUDA graph; with every operation on it, cudarc
        // need not record events to order streams (and such events would
        // break a capture).
        // SAFETY: the engine uses this one stream for everything.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(|e| driver("stream", e))?;
        // SAFETY: only tries to open the cuBLAS library.
        let blas = if unsafe { cudarc::cublas::sys::is_culib_present() } {
            cudarc::cublas::CudaBlas::new(stream.clone()).ok()
        } else {
            None
        };
        Ok(Gpu {
            inner: Arc::new(Inner {
                ctx,
                stream,
                blas,
                functions,
                _module: module,
                name,
                capability,
                graph: GraphState::new(),
                widened: Mutex::new(None),
            }),
        })
    }
    // ANCHOR_END: gpu_new

    /// The driver's index of this GPU.
    pub fn ordinal(&self) -> usize {
        self.inner.ctx.ordinal()
    }

    /// The GPU's name, as the driver gives it.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Compute capability `(major, minor)`, the target the kernels were
    /// compiled for.
    pub fn capability(&self) -> (i32, i32) {
        self.inner.capability
    }

    /// The stream every operation on this GPU is queued on, in order.
    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.inner.stream
    }

    /// cuBLAS, if its library could be loaded (the products fall back to
    /// the engine's own kernels without it).
    pub(crate) fn blas(&self) -> Option<&cudarc::cublas::CudaBlas> {
        self.inner.blas.as_ref()
    }

    /// The lock on the graph state (`super::graph`).
    pub(crate) fn graph_lock(&self) -> &Mutex<GraphState> {
        &self.inner.graph
    }

    /// The buffer a weight is widened into for cuBLAS (locked while one
    /// product is queued; the stream orders the next one after it).
    pub(crate) fn widened(&self) -> std::sync::MutexGuard<'_, Option<CudaSlice<f32>>> {
        self.inner
            .widened
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A compiled kernel by name (one of [`source::KERNELS`]).
    pub(crate) fn function(&self, name: &str) -> Result<&CudaFunction> {
        self.inner
            .functions
            .get(name)
            .ok_or_else(|| EngineError::Device(format!("CUDA kernel {name} was not compiled")))
    }

    /// Copy `host` into a new device buffer.
    ///
    /// # Errors
    /// The driver's error (out of memory, a failed copy).
    pub fn upload<T: DeviceRepr>(&self, host: &[T]) -> Result<CudaSlice<T>> {
        self.eager_only("an upload")?;
        self.stream()
            .clone_htod(host)
            .map_err(|e| driver("copy to the device", e))
    }

    /// Copy a device buffer back to the host (waits for the queued work).
    ///
    /// # Errors
    /// The driver's error, including one from an earlier kernel.
    pub fn download<T: DeviceRepr + Default + Clone>(&self, dev: &CudaSlice<T>) -> Result<Vec<T>> {
        self.eager_only("a download")?;
        self.stream()
            .clone_dtoh(dev)
            .map_err(|e| driver("copy to the host", e))
    }

    /// A device buffer of `n` zeros.
    ///
    /// # Errors
    /// The driver's error (out of memory).
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> Result<CudaSlice<T>> {
        self.eager_only("an allocation")?;
        self.stream()
            .alloc_zeros(n)
            .map_err(|e| driver("allocation", e))
    }

    /// Wait until every queued operation has finished.
    ///
    /// # Errors
    /// The driver's error, including one from an earlier kernel.
    pub fn synchronize(&self) -> Result<()> {
        self.stream()
            .synchronize()
            .map_err(|e| driver("synchronize", e))
    }
}
