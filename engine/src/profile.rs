//! Time per kind of operation, for `infer bench --profile`.
//!
//! Off by default: each timed operation then costs one relaxed atomic load.
//! When [`enable`]d, the layer functions of [`crate::nn`] and the model-level
//! kernels (attention, RoPE, elementwise) add their wall time and call
//! count to a per-kind total that [`snapshot`] reads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The kinds of operation that are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Matrix products against weights ([`crate::nn::linear`]).
    Linear,
    /// Attention over the KV cache.
    Attention,
    /// RMSNorm and LayerNorm.
    Norm,
    /// Rotary position embedding.
    Rope,
    /// Elementwise activations, products and residual adds.
    Elementwise,
    /// Embedding lookups.
    Embed,
}

impl Op {
    /// Every kind, in report order.
    pub const ALL: [Op; 6] = [
        Op::Linear,
        Op::Attention,
        Op::Norm,
        Op::Rope,
        Op::Elementwise,
        Op::Embed,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Linear => "linear (matvec/matmul)",
            Op::Attention => "attention",
            Op::Norm => "norms",
            Op::Rope => "rope",
            Op::Elementwise => "elementwise",
            Op::Embed => "embedding",
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
static CALLS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

/// Turn timing on or off.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Wall time the submitting thread spent in parallel regions (hand-offs
/// to the thread pool: its own tasks, then waiting for the others').
static PARALLEL_NANOS: AtomicU64 = AtomicU64::new(0);

/// Zero every total.
pub fn reset() {
    for (n, c) in NANOS.iter().zip(&CALLS) {
        n.store(0, Ordering::Relaxed);
        c.store(0, Ordering::Relaxed);
    }
    PARALLEL_NANOS.store(0, Ordering::Relaxed);
}

/// Seconds spent in parallel regions since the last [`reset`]: the wall
/// time from each hand-off to the thread pool until every thread was done
/// with it. The rest of a step's time ran on one thread while the others
/// waited, and no more threads can shorten it (Amdahl's serial part).
pub fn parallel_seconds() -> f64 {
    PARALLEL_NANOS.load(Ordering::Relaxed) as f64 * 1e-9
}

/// Per kind: (kind, seconds, calls) since the last [`reset`].
pub fn snapshot() -> Vec<(Op, f64, u64)> {
    Op::ALL
        .iter()
        .enumerate()
        .map(|(i, &op)| {
            (
                op,
                NANOS[i].load(Ordering::Relaxed) as f64 * 1e-9,
                CALLS[i].load(Ordering::Relaxed),
            )
        })
        .collect()
}

/// Adds the time until it is dropped to its kind's total (when enabled).
pub(crate) struct Timer(Option<(usize, Instant)>);

/// Adds the time until it is dropped to [`parallel_seconds`] (when
/// enabled).
pub(crate) struct RegionTimer(Option<Instant>);

/// Start timing one parallel region.
pub(crate) fn region_timer() -> RegionTimer {
    RegionTimer(ENABLED.load(Ordering::Relaxed).then(Instant::now))
}

impl Drop for RegionTimer {
    fn drop(&mut self) {
        if let Some(t0) = self.0 {
            PARALLEL_NANOS.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }
}

/// Start timing one operation of kind `op`.
pub(crate) fn timer(op: Op) -> Timer {
    if !ENABLED.load(Ordering::Relaxed) {
        return Timer(None);
    }
    let i = Op::ALL.iter().position(|&o| o == op).unwrap_or(0);
    Timer(Some((i, Instant::now())))
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some((i, t0)) = self.0 {
            NANOS[i].fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            CALLS[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}
