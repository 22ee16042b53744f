//! The thread pool every parallel kernel runs on.
//!
//! One global [`rayon`] pool, built lazily with [`default_num_threads`]
//! threads (the number of physical cores, or `INFER_THREADS`) and
//! replaceable at any time with
//! [`set_num_threads`]. Kernels split rows or heads across it, and matrix–matrix
//! products split their output into one block per thread, each a
//! single-threaded `matrixmultiply` sgemm, so this one thread count governs
//! every kernel.

use std::sync::{Arc, RwLock};

use rayon::ThreadPool;

use crate::error::EngineError;

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

/// The default thread count: `INFER_THREADS` if it is set to a positive
/// number, otherwise the number of physical cores (at least 1).
pub fn default_num_threads() -> usize {
    std::env::var("INFER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| num_cpus::get_physical().max(1))
}

fn build(n: usize) -> Result<Arc<ThreadPool>, EngineError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("engine-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| EngineError::ThreadPool {
            threads: n,
            reason: e.to_string(),
        })
}

/// Replace the global pool with one of `n` threads (`0` means the default,
/// [`default_num_threads`]). Work already running finishes on the old pool.
///
/// # Errors
/// [`EngineError::ThreadPool`] if the operating system refuses the threads;
/// the previous pool then stays in place.
pub fn set_num_threads(n: usize) -> Result<(), EngineError> {
    let n = if n == 0 { default_num_threads() } else { n };
    let pool = build(n)?;
    let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
    *guard = Some(pool);
    Ok(())
}

/// The number of threads parallel kernels use.
pub fn num_threads() -> usize {
    pool().map_or(1, |p| p.current_num_threads())
}

/// The current pool, built on first use. `None` only if no pool can be
/// built at all, in which case kernels run on the calling thread.
fn pool() -> Option<Arc<ThreadPool>> {
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Some(Arc::clone(p));
    }
    let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = build(default_num_threads()).ok();
    }
    guard.as_ref().map(Arc::clone)
}

/// Run `f` inside the global pool (so rayon iterators inside it use the
/// configured thread count), or on the calling thread if there is no pool.
///
/// Every parallel kernel does this itself; a caller that runs many kernels
/// in a row (a model's forward pass) can wrap the whole sequence in one
/// `install`, so that each kernel starts from a pool thread instead of
/// handing its work over from outside and sleeping until it is done.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(p) => p.install(f),
        None => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_read_back() {
        set_num_threads(1).unwrap();
        assert_eq!(num_threads(), 1);
        set_num_threads(0).unwrap();
        assert_eq!(num_threads(), default_num_threads());
    }
}
