//! The thread pool every parallel kernel runs on.
//!
//! One global pool (`spin`), built lazily with [`default_num_threads`]
//! threads (the number of physical cores, or `INFER_THREADS`) and
//! replaceable at any time with [`set_num_threads`]. Kernels split rows or
//! heads into tasks with [`for_each_task`] or [`for_each_chunk_mut`];
//! matrix–matrix products split their output into one block per task, each
//! a single-threaded `matrixmultiply` sgemm, so this one thread count
//! governs every kernel. [`hand_offs`] counts the parallel regions, which
//! `infer bench --profile` reports per decoded token.

mod spin;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use spin::SpinPool;

use crate::error::EngineError;

static POOL: RwLock<Option<Arc<SpinPool>>> = RwLock::new(None);
static HAND_OFFS: AtomicU64 = AtomicU64::new(0);

/// The default thread count: `INFER_THREADS` if it is set to a positive
/// number, otherwise the number of physical cores (at least 1).
pub fn default_num_threads() -> usize {
    std::env::var("INFER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| num_cpus::get_physical().max(1))
}

fn build(n: usize) -> Result<Arc<SpinPool>, EngineError> {
    SpinPool::new(n)
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
    pool().map_or(1, |p| p.threads())
}

/// The current pool, built on first use. `None` only if no pool can be
/// built at all, in which case kernels run on the calling thread.
fn pool() -> Option<Arc<SpinPool>> {
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Some(Arc::clone(p));
    }
    let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = build(default_num_threads()).ok();
    }
    guard.as_ref().map(Arc::clone)
}

// ANCHOR: for_each_task
/// Run `f(0) … f(n − 1)` on the pool (the calling thread takes part) and
/// return when all are done. Tasks are handed out one at a time, so uneven
/// tasks balance; a call from inside a task runs inline.
pub fn for_each_task(n: usize, f: impl Fn(usize) + Sync) {
    match pool() {
        Some(p) if n > 1 => {
            HAND_OFFS.fetch_add(1, Ordering::Relaxed);
            p.run(n, &f);
        }
        _ => (0..n).for_each(f),
    }
}
// ANCHOR_END: for_each_task

/// Split `data` into chunks of `chunk` items and run `f(index, chunk)` on
/// each, across the pool.
pub fn for_each_chunk_mut<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let chunk = chunk.max(1);
    if data.len() <= chunk {
        if !data.is_empty() {
            f(0, data);
        }
        return;
    }
    // Each task takes its own chunk out of its slot: disjoint `&mut`
    // borrows, handed across threads without unsafe code.
    let slots: Vec<Mutex<Option<&mut [T]>>> = data
        .chunks_mut(chunk)
        .map(|c| Mutex::new(Some(c)))
        .collect();
    for_each_task(slots.len(), |i| {
        let c = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(c) = c {
            f(i, c);
        }
    });
}

/// Parallel regions started so far in this process (calls of
/// [`for_each_task`] that went to the pool).
pub fn hand_offs() -> u64 {
    HAND_OFFS.load(Ordering::Relaxed)
}

// ANCHOR: hand_off_seconds
/// Seconds one empty hand-off to the pool takes, the mean of `n` after a
/// thousand to warm up: two tasks that do nothing, so only what every
/// parallel region pays before and after its work (the workers noticing
/// the job and reporting back, a few cache lines passed between the
/// cores). On a virtual machine whose cores move between ones that share
/// a cache and ones that do not, it says which: a batched decode step
/// makes some 150 hand-offs and passes its activations between the cores
/// at each. `None` with a pool of one thread. (The regions count in
/// [`hand_offs`].)
pub fn hand_off_seconds(n: usize) -> Option<f64> {
    if num_threads() < 2 || n == 0 {
        return None;
    }
    let empty = || {
        for_each_task(2, |i| {
            std::hint::black_box(i);
        })
    };
    (0..1000).for_each(|_| empty());
    let t0 = std::time::Instant::now();
    (0..n).for_each(|_| empty());
    Some(t0.elapsed().as_secs_f64() / n as f64)
}
// ANCHOR_END: hand_off_seconds

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Held by each test that sets the global thread count, so that tests
    /// running side by side do not change it under one another.
    static SETTING: Mutex<()> = Mutex::new(());

    fn setting() -> std::sync::MutexGuard<'static, ()> {
        SETTING.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn set_and_read_back() {
        let _g = setting();
        set_num_threads(1).unwrap();
        assert_eq!(num_threads(), 1);
        set_num_threads(0).unwrap();
        assert_eq!(num_threads(), default_num_threads());
    }

    #[test]
    fn every_task_runs_once_even_nested() {
        let _g = setting();
        set_num_threads(3).unwrap();
        for n in [0, 1, 2, 7, 100] {
            let hits: Vec<AtomicUsize> = (0..n * 3).map(|_| AtomicUsize::new(0)).collect();
            for_each_task(n, |i| {
                for_each_task(3, |j| {
                    hits[i * 3 + j].fetch_add(1, Ordering::Relaxed);
                });
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "n = {n}"
            );
        }
        let mut v: Vec<usize> = vec![0; 1001];
        for_each_chunk_mut(&mut v, 10, |i, c| c.iter_mut().for_each(|x| *x = i));
        assert!(v.iter().enumerate().all(|(k, &x)| x == k / 10));
    }

    #[test]
    fn an_empty_hand_off_is_timed_only_with_two_threads() {
        let _g = setting();
        set_num_threads(1).unwrap();
        assert_eq!(hand_off_seconds(100), None);
        set_num_threads(2).unwrap();
        let h0 = hand_offs();
        let s = hand_off_seconds(100).expect("two threads");
        assert!(s > 0.0 && s < 0.1, "{s} s");
        assert_eq!(hand_offs() - h0, 1100);
        assert_eq!(hand_off_seconds(0), None);
        set_num_threads(0).unwrap();
    }

    #[test]
    fn a_panicking_task_panics_the_caller_and_the_pool_survives() {
        let _g = setting();
        set_num_threads(2).unwrap();
        let r = std::panic::catch_unwind(|| for_each_task(8, |i| assert!(i != 5, "task 5")));
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        for_each_task(8, |_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn a_worker_that_fell_asleep_wakes_for_the_next_job() {
        let _g = setting();
        set_num_threads(2).unwrap();
        for round in 0..10 {
            // Longer than the workers spin before they sleep.
            std::thread::sleep(std::time::Duration::from_millis(8));
            // Task 0 waits for task 1 to start; the caller takes task 0
            // first, so only a worker can take task 1 while it waits.
            let started = std::sync::atomic::AtomicBool::new(false);
            let met = std::sync::atomic::AtomicBool::new(false);
            for_each_task(2, |i| {
                if i == 1 {
                    started.store(true, Ordering::SeqCst);
                    return;
                }
                let t0 = std::time::Instant::now();
                while t0.elapsed() < std::time::Duration::from_secs(5) {
                    if started.load(Ordering::SeqCst) {
                        met.store(true, Ordering::SeqCst);
                        return;
                    }
                    std::hint::spin_loop();
                }
            });
            assert!(
                met.load(Ordering::SeqCst),
                "round {round}: no worker took task 1"
            );
        }
        set_num_threads(0).unwrap();
    }
}
