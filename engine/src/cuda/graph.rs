//! CUDA graphs for decode steps: a step's launches recorded once and then
//! replayed with one call, so the CPU no longer queues ~200 kernels one by
//! one and the GPU runs them back to back.
//!
//! A graph holds each kernel with its arguments as they were when it was
//! captured, so whatever changes from step to step must be read from device
//! memory: the token id, its position, the cache length. The launchers ask
//! for such values with [`Gpu::stage`]. Outside a graph that is an upload
//! of a fresh buffer, as before; while a step is captured or replayed it is
//! a slot of one staging buffer, the same slot at every replay, filled from
//! the host just before the graph is launched.
//!
//! A replay runs the model's code exactly as an eager step does (its
//! checks, its bookkeeping, its staged values) but launches nothing: each
//! launch is only compared with the one the graph holds at that place
//! (kernel and grid), and any difference, or any other device operation,
//! is an error that sends the step back to eager execution.

use std::sync::MutexGuard;

use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{CudaGraph, CudaSlice, DevicePtr, LaunchConfig};

use super::graph_state::{GraphState, Mark, Phase};

use super::gpu::{Gpu, driver};
use crate::error::{EngineError, Result};

/// Staged values one step may hold (a SmolLM2 step stages 63).
const STAGING_SLOTS: usize = 1024;

/// Values a kernel reads through a pointer: a fresh buffer of their own
/// (eager), or a slot of the staging buffer (in a graph).
pub(crate) struct Staged {
    /// The device address the kernel gets.
    pub ptr: u64,
    _own: Option<CudaSlice<u32>>,
}

impl Staged {
    /// No values: a null pointer.
    pub(crate) fn null() -> Staged {
        Staged { ptr: 0, _own: None }
    }
}

/// A captured decode step, ready to launch again.
pub(crate) struct StepGraph {
    graph: CudaGraph,
    marks: Vec<Mark>,
}

// SAFETY: a graph may be launched from any thread as long as no two
// threads use it at once; a `StepGraph` is only reached through `&mut` of
// its owner (`crate::device::StepGraphs`), which serializes every use.
unsafe impl Send for StepGraph {}

impl std::fmt::Debug for StepGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepGraph")
            .field("launches", &self.marks.len())
            .finish()
    }
}

impl Gpu {
    fn graph_state(&self) -> MutexGuard<'_, GraphState> {
        // A panic while holding the lock leaves plain data behind: go on.
        self.graph_lock()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True while a decode step is captured or replayed: launchers then
    /// read step values through [`Gpu::stage`] and size shared memory for
    /// the longest step, not this one.
    pub(crate) fn graphing(&self) -> bool {
        self.graph_state().phase != Phase::Eager
    }

    /// Refuse `what` (an allocation, a copy) while a step is captured or
    /// replayed: a graph holds kernels only.
    ///
    /// # Errors
    /// [`EngineError::Device`] while graphing.
    pub(crate) fn eager_only(&self, what: &str) -> Result<()> {
        if self.graphing() {
            return Err(EngineError::Device(format!(
                "{what} inside a CUDA graph's decode step"
            )));
        }
        Ok(())
    }

    /// `values` on the device for a kernel to read.
    ///
    /// # Errors
    /// The driver's error; more values than a step may stage.
    pub(crate) fn stage(&self, values: &[u32]) -> Result<Staged> {
        let mut g = self.graph_state();
        if g.phase == Phase::Eager {
            drop(g);
            let own = self
                .stream()
                .clone_htod(values)
                .map_err(|e| driver("copy to the device", e))?;
            let ptr = own.device_ptr(self.stream()).0;
            return Ok(Staged {
                ptr,
                _own: Some(own),
            });
        }
        let at = g.host.len();
        if at + values.len() > STAGING_SLOTS {
            return Err(EngineError::Device(format!(
                "a CUDA graph's decode step stages at most {STAGING_SLOTS} values"
            )));
        }
        g.host.extend_from_slice(values);
        let dev = g
            .dev
            .as_ref()
            .ok_or_else(|| EngineError::Device("no staging buffer".into()))?;
        let base = dev.device_ptr(self.stream()).0;
        Ok(Staged {
            ptr: base + (at * 4) as u64,
            _own: None,
        })
    }

    /// Whether kernel `name` with `cfg` is to be queued now: always, but
    /// while replaying, when it is only checked against the graph.
    ///
    /// # Errors
    /// While replaying, a launch that is not the one the graph holds next.
    pub(crate) fn launch_now(&self, name: &'static str, cfg: &LaunchConfig) -> Result<bool> {
        let mut g = self.graph_state();
        let mark = Mark::of(name, cfg);
        match g.phase {
            Phase::Eager => Ok(true),
            Phase::Capturing => {
                g.marks.push(mark);
                Ok(true)
            }
            Phase::Replaying => {
                let at = g.at;
                if g.marks.get(at) != Some(&mark) {
                    return Err(EngineError::Device(format!(
                        "decode step out of step with its CUDA graph at launch {at} ({name})"
                    )));
                }
                g.at += 1;
                Ok(false)
            }
        }
    }

    /// Start capturing a decode step: its launches are recorded, not run.
    ///
    /// # Errors
    /// The driver's error; a capture or replay already under way.
    pub(crate) fn begin_capture(&self) -> Result<()> {
        let mut g = self.graph_state();
        if g.phase != Phase::Eager {
            return Err(EngineError::Device("a CUDA graph is already open".into()));
        }
        if g.dev.is_none() {
            g.dev = Some(
                self.stream()
                    .alloc_zeros(STAGING_SLOTS)
                    .map_err(|e| driver("allocation", e))?,
            );
        }
        self.stream()
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(|e| driver("stream capture", e))?;
        g.phase = Phase::Capturing;
        g.host.clear();
        g.marks.clear();
        Ok(())
    }

    /// End the capture begun by [`Gpu::begin_capture`]; the graph, ready
    /// to launch, when the capture held only kernels.
    ///
    /// # Errors
    /// The driver's error (an operation that cannot be captured was made).
    pub(crate) fn end_capture(&self) -> Result<StepGraph> {
        let mut g = self.graph_state();
        g.phase = Phase::Eager;
        let graph = self
            .stream()
            .end_capture(CUgraphInstantiate_flags(0))
            .map_err(|e| driver("stream capture", e))?
            .ok_or_else(|| EngineError::Device("CUDA stream capture gave no graph".into()))?;
        Ok(StepGraph {
            graph,
            marks: std::mem::take(&mut g.marks),
        })
    }

    /// Start replaying `graph`: the step's code runs, stages its values and
    /// checks its launches against the graph's.
    ///
    /// # Errors
    /// A capture or replay already under way.
    pub(crate) fn begin_replay(&self, graph: &mut StepGraph) -> Result<()> {
        let mut g = self.graph_state();
        if g.phase != Phase::Eager {
            return Err(EngineError::Device("a CUDA graph is already open".into()));
        }
        g.phase = Phase::Replaying;
        g.host.clear();
        g.marks = std::mem::take(&mut graph.marks);
        g.at = 0;
        Ok(())
    }

    /// End the replay begun by [`Gpu::begin_replay`], giving `graph` its
    /// launches back.
    ///
    /// # Errors
    /// When the step launched fewer kernels than the graph holds.
    pub(crate) fn end_replay(&self, graph: &mut StepGraph) -> Result<()> {
        let mut g = self.graph_state();
        g.phase = Phase::Eager;
        graph.marks = std::mem::take(&mut g.marks);
        if g.at != graph.marks.len() {
            return Err(EngineError::Device(format!(
                "decode step launched {} of its CUDA graph's {} kernels",
                g.at,
                graph.marks.len()
            )));
        }
        Ok(())
    }

    /// Copy the staged values up and launch `graph` on the stream.
    ///
    /// # Errors
    /// The driver's error.
    pub(crate) fn launch_graph(&self, graph: &StepGraph) -> Result<()> {
        let mut g = self.graph_state();
        let GraphState { host, dev, .. } = &mut *g;
        if let Some(dev) = dev.as_mut()
            && !host.is_empty()
        {
            self.stream()
                .memcpy_htod(host.as_slice(), &mut dev.slice_mut(..host.len()))
                .map_err(|e| driver("copy to the device", e))?;
        }
        drop(g);
        graph.graph.launch().map_err(|e| driver("graph launch", e))
    }
}
