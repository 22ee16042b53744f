//! What a GPU's launches do now (run, be captured into a CUDA graph, or be
//! checked against one), and what a step in a graph has staged: the state
//! behind `super::graph`, kept apart so that the GPU handle can own it.

use std::sync::Mutex;

use cudarc::driver::{CudaSlice, LaunchConfig};

/// What the GPU's launches do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Run at once, as always.
    Eager,
    /// Recorded into the graph being captured (nothing runs yet).
    Capturing,
    /// Checked against the graph about to be launched, not run.
    Replaying,
}

/// One launch as a graph holds it: enough to tell a step that would launch
/// something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mark {
    kernel: &'static str,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    shared: u32,
}

impl Mark {
    pub(super) fn of(kernel: &'static str, cfg: &LaunchConfig) -> Mark {
        Mark {
            kernel,
            grid: cfg.grid_dim,
            block: cfg.block_dim,
            shared: cfg.shared_mem_bytes,
        }
    }
}

/// The per-GPU state of capture and replay.
pub(crate) struct GraphState {
    pub(super) phase: Phase,
    /// Staged values of the step being captured or replayed.
    pub(super) host: Vec<u32>,
    /// Where the launches read them (allocated at the first capture).
    pub(super) dev: Option<CudaSlice<u32>>,
    /// Launches recorded (capturing) or expected (replaying).
    pub(super) marks: Vec<Mark>,
    /// Launches checked so far in this replay.
    pub(super) at: usize,
}

impl GraphState {
    /// Eager, nothing staged.
    pub(crate) fn new() -> Mutex<GraphState> {
        Mutex::new(GraphState {
            phase: Phase::Eager,
            host: Vec::new(),
            dev: None,
            marks: Vec::new(),
            at: 0,
        })
    }
}
