//! A small fork–join pool whose workers spin between jobs.
//!
//! Decoding one token runs a few hundred short parallel regions (each
//! matrix-vector product, each attention call) of tens of microseconds
//! each. A pool whose idle workers sleep spends about as long waking them
//! as the work takes, and the caller ends up doing most of it alone. Here
//! the workers spin on an epoch counter for a couple of milliseconds after
//! each job (as OpenMP's active wait does for llama.cpp), so a hand-off
//! costs about a cache-line transfer; after that they sleep on a condition
//! variable, so an idle process does not burn its cores.
//!
//! The caller takes part in its own job, and a job submitted while the
//! pool is busy (another thread's job, or a task submitting from inside a
//! task) runs on the calling thread instead of waiting.

use std::cell::{Cell, UnsafeCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A job: a function of the task index.
type Task = dyn Fn(usize) + Sync + 'static;

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_millis(3);

thread_local! {
    /// True on a pool worker and while a thread runs its own job, so that
    /// a nested submission runs inline instead of deadlocking.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// The job's address, with its lifetime erased (see `SpinPool::run`).
#[derive(Clone, Copy)]
struct JobPtr(*const Task);

// SAFETY: the pointee is `Sync`, and the pointer is only dereferenced by
// workers while the `run` call that published it is still waiting.
unsafe impl Send for JobPtr {}

/// A cache line of its own (two, as the adjacent-line prefetcher pairs
/// them): a value that one side writes and the other polls shares it with
/// nothing written at another time, so a hand-off moves each line between
/// the cores once. With every field side by side, and two mutexes locked
/// per job, an empty hand-off ([`super::hand_off_seconds`]) took 0.29 µs
/// on a 2-core Zen 4 guest whose cores shared a cache and 0.82 µs when
/// they did not; with these lines and no lock on the way, 0.12 and 0.43.
#[repr(align(128))]
struct Line<T>(T);

/// What the caller publishes for a job, in one line that idle workers
/// poll: written together just before `epoch` moves, read together after.
struct Post {
    /// Bumped once per job; workers wait for it to change.
    epoch: AtomicUsize,
    /// How many tasks the job has.
    n_tasks: AtomicUsize,
    /// The job. Written by the caller only while no worker is inside a job
    /// (before bumping `epoch`, after `active` has come back to zero), read
    /// by a worker only between seeing the new epoch and decrementing
    /// `active`.
    job: UnsafeCell<Option<JobPtr>>,
    shutdown: AtomicBool,
}

struct Shared {
    post: Line<Post>,
    /// The next task index to hand out.
    next: Line<AtomicUsize>,
    /// Workers that have not yet finished with the current job.
    active: Line<AtomicUsize>,
    panicked: AtomicBool,
    /// Workers asleep on `wake` (changed under `sleep`, read without it).
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `Post::job` is the only field that is not `Sync` by itself; its
// accesses are ordered by `epoch` (Release on publishing, Acquire on
// reading) and `active` (Release when a worker is done, Acquire before the
// caller writes it again), as its comment says.
unsafe impl Sync for Shared {}

/// A pool of `threads − 1` spinning workers plus the caller.
pub(crate) struct SpinPool {
    shared: Arc<Shared>,
    workers: usize,
    busy: Mutex<()>,
}

impl SpinPool {
    /// A pool for `threads` threads in all (the caller is one of them).
    pub fn new(threads: usize) -> std::io::Result<SpinPool> {
        let shared = Arc::new(Shared {
            post: Line(Post {
                epoch: AtomicUsize::new(0),
                n_tasks: AtomicUsize::new(0),
                job: UnsafeCell::new(None),
                shutdown: AtomicBool::new(false),
            }),
            next: Line(AtomicUsize::new(0)),
            active: Line(AtomicUsize::new(0)),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        });
        let workers = threads.max(1) - 1;
        for i in 0..workers {
            let s = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("engine-{}", i + 1))
                .spawn(move || worker(&s))?;
        }
        Ok(SpinPool {
            shared,
            workers,
            busy: Mutex::new(()),
        })
    }

    /// Threads that take part in a job (workers and the caller).
    pub fn threads(&self) -> usize {
        self.workers + 1
    }

    /// Run `f(0) … f(n_tasks − 1)` across the pool and return when all
    /// have finished. A panic in a task is re-raised here.
    pub fn run(&self, n_tasks: usize, f: &(dyn Fn(usize) + Sync + '_)) {
        let inline = || (0..n_tasks).for_each(f);
        if self.workers == 0 || n_tasks <= 1 || INSIDE.get() {
            return inline();
        }
        let Ok(_busy) = self.busy.try_lock() else {
            return inline();
        };
        let _region = crate::profile::region_timer();
        let s = &*self.shared;
        // SAFETY: this erases the borrow's lifetime so the workers can see
        // `f`. They dereference it only between the epoch bump below and
        // their `active` decrement, and this function does not return (nor
        // unwind: `catch_unwind` below) until `active` is back to zero, so
        // `f` outlives every use.
        let ptr: *const Task =
            unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync + '_), &'static Task>(f) };
        let post = &s.post.0;
        // SAFETY: no worker is inside a job (the last `run` waited for
        // `active` to reach zero, with Acquire), and none reads `job`
        // before the epoch bump below publishes it (Release).
        unsafe { *post.job.get() = Some(JobPtr(ptr)) };
        s.next.0.store(0, Ordering::Relaxed);
        post.n_tasks.store(n_tasks, Ordering::Relaxed);
        s.active.0.store(self.workers, Ordering::Relaxed);
        // SeqCst, with the load of `sleepers` after it and a sleeper's
        // increment and epoch check: either this thread sees the sleeper,
        // or the sleeper sees the new epoch and does not wait.
        post.epoch.fetch_add(1, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = lock(&s.sleep);
            s.wake.notify_all();
        }
        INSIDE.set(true);
        let mine = catch_unwind(AssertUnwindSafe(|| take_tasks(s, f)));
        INSIDE.set(false);
        let mut spins = 0u32;
        while s.active.0.load(Ordering::Acquire) != 0 {
            backoff(&mut spins);
        }
        let theirs =
            s.panicked.load(Ordering::Relaxed) && s.panicked.swap(false, Ordering::Relaxed);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        assert!(!theirs, "a task of the engine's thread pool panicked");
    }
}

impl Drop for SpinPool {
    fn drop(&mut self) {
        self.shared.post.0.shutdown.store(true, Ordering::SeqCst);
        let _g = lock(&self.shared.sleep);
        self.shared.wake.notify_all();
    }
}

/// One round of busy-waiting: a pause instruction, and after a few
/// thousand rounds a yield, so that on an oversubscribed machine the thread
/// being waited for gets the core.
fn backoff(spins: &mut u32) {
    *spins = spins.wrapping_add(1);
    if *spins < 1 << 12 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hand out task indices until none are left.
fn take_tasks(s: &Shared, f: &(dyn Fn(usize) + Sync + '_)) {
    let n = s.post.0.n_tasks.load(Ordering::Relaxed);
    loop {
        let i = s.next.0.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        f(i);
    }
}

fn worker(s: &Shared) {
    INSIDE.set(true);
    let post = &s.post.0;
    // The epoch the pool was created with: a job published before this
    // thread got here must still be seen as new.
    let mut seen = 0;
    loop {
        let mut idle_since: Option<Instant> = None;
        let mut spins = 0u32;
        loop {
            if post.shutdown.load(Ordering::Acquire) {
                return;
            }
            let e = post.epoch.load(Ordering::Acquire);
            if e != seen {
                seen = e;
                break;
            }
            backoff(&mut spins);
            if spins.is_multiple_of(1024)
                && idle_since.get_or_insert_with(Instant::now).elapsed() > SPIN
            {
                let mut g = lock(&s.sleep);
                s.sleepers.fetch_add(1, Ordering::SeqCst);
                while post.epoch.load(Ordering::SeqCst) == seen
                    && !post.shutdown.load(Ordering::SeqCst)
                {
                    g = s
                        .wake
                        .wait_timeout(g, Duration::from_millis(100))
                        .map_or_else(|e| e.into_inner().0, |r| r.0);
                }
                s.sleepers.fetch_sub(1, Ordering::SeqCst);
                drop(g);
                idle_since = None;
            }
        }
        // SAFETY: the caller wrote `job` before the epoch this thread has
        // just seen (Acquire), and leaves it alone until this thread
        // decrements `active` below.
        let job = unsafe { *post.job.get() };
        if let Some(JobPtr(p)) = job {
            // SAFETY: the submitting `run` call keeps `*p` alive until this
            // worker decrements `active` below.
            let f = unsafe { &*p };
            if catch_unwind(AssertUnwindSafe(|| take_tasks(s, f))).is_err() {
                s.panicked.store(true, Ordering::Relaxed);
            }
        }
        s.active.0.fetch_sub(1, Ordering::Release);
    }
}
