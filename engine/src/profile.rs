//! Time per kind of operation, for `infer bench --profile`.
//!
//! Off by default: each timed operation then costs one relaxed atomic load.
//! When [`enable`]d, the layer functions of [`crate::nn`] and the model-level
//! kernels (attention, RoPE, elementwise) add their wall time and call
//! count to a per-kind total that [`snapshot`] reads; the matrix products
//! add theirs per weight as well ([`products`]), and the thread pool adds
//! the wall time of every parallel region ([`parallel_seconds`]), so that
//! the rest, the time one thread worked alone, can be told apart.

use std::sync::Mutex;
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

/// A weight that products were timed against: one matrix, or several
/// stacked by rows and multiplied in one call (Q, K and V; gate and up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Rows, of all the stacked matrices together.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// The element types, as `infer` names them (`q4_1`; `q5_0+q8_0` for
    /// a stack of two types).
    pub dtype: String,
}

/// Per weight: nanoseconds and calls, in the order first seen.
static PRODUCTS: Mutex<Vec<(Product, u64, u64)>> = Mutex::new(Vec::new());

fn products_lock() -> std::sync::MutexGuard<'static, Vec<(Product, u64, u64)>> {
    PRODUCTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Zero every total.
pub fn reset() {
    for (n, c) in NANOS.iter().zip(&CALLS) {
        n.store(0, Ordering::Relaxed);
        c.store(0, Ordering::Relaxed);
    }
    PARALLEL_NANOS.store(0, Ordering::Relaxed);
    products_lock().clear();
}

/// Per weight multiplied since the last [`reset`]: (weight, seconds,
/// calls), in the order first seen. The matrix products of
/// [`Op::Linear`] split by the weight they read, so that a step's time can
/// be set against each weight's bytes, or against the same product timed
/// alone in cache.
pub fn products() -> Vec<(Product, f64, u64)> {
    products_lock()
        .iter()
        .map(|(p, n, c)| (p.clone(), *n as f64 * 1e-9, *c))
        .collect()
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

/// Adds the time until it is dropped to its weight's total in
/// [`products`] (when enabled).
pub(crate) struct ProductTimer(Option<(Instant, Product)>);

/// Start timing one product of `rows × cols` weights whose element types
/// `dtype` names (called only when timing is on).
pub(crate) fn product_timer(
    rows: usize,
    cols: usize,
    dtype: impl FnOnce() -> String,
) -> ProductTimer {
    if !ENABLED.load(Ordering::Relaxed) {
        return ProductTimer(None);
    }
    let dtype = dtype();
    ProductTimer(Some((Instant::now(), Product { rows, cols, dtype })))
}

impl Drop for ProductTimer {
    fn drop(&mut self) {
        if let Some((t0, key)) = self.0.take() {
            let ns = t0.elapsed().as_nanos() as u64;
            let mut all = products_lock();
            match all.iter_mut().find(|(p, _, _)| *p == key) {
                Some((_, n, c)) => {
                    *n += ns;
                    *c += 1;
                }
                None => all.push((key, ns, 1)),
            }
        }
    }
}

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
