//! Decode steps replayed as CUDA graphs, behind one call that any model
//! wraps around its forward pass: [`StepGraphs::run`].
//!
//! A model names the step it is about to run by a key (the slot, the shape,
//! the buffers it uses: whatever would change the kernels it launches or
//! their arguments other than the staged values). The first time a key is
//! seen the step runs eagerly; the second time it is captured into a graph
//! and launched; from then on the model's code runs without launching
//! anything (it stages its per-step values and each launch is checked
//! against the graph's) and the graph is launched in one call. On the CPU,
//! without a key, or with graphs turned off, the step simply runs.
//!
//! A step that a graph cannot hold (an operation other than a kernel, a
//! launch that differs from the graph's) fails inside the graph before
//! anything has changed, and runs again eagerly; its key is then never
//! graphed again.

use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};

use super::Device;
use crate::error::EngineError;

/// Graphs kept at most (a model keeps one per sequence slot and buffer
/// layout; more means the buffers keep moving, and they are dropped).
#[cfg(feature = "cuda")]
const MAX_GRAPHS: usize = 64;

/// How the steps given to [`StepGraphs::run`] ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphStats {
    /// Steps run launch by launch (no key, a key's first step, the CPU).
    pub eager: u64,
    /// Steps captured into a new graph (and then launched).
    pub captured: u64,
    /// Steps that replayed a graph.
    pub replayed: u64,
    /// Steps a graph could not hold, run again eagerly.
    pub fallbacks: u64,
    /// Host time of the replayed steps before their graphs were launched:
    /// the model's code run without launching (checks, planning, staging,
    /// each launch compared with the graph's), which the GPU waits for.
    pub replay_host: std::time::Duration,
}

/// The CUDA graphs of one model's decode steps, by key.
pub struct StepGraphs {
    enabled: bool,
    seen: HashSet<u64>,
    refused: HashSet<u64>,
    #[cfg(feature = "cuda")]
    graphs: std::collections::HashMap<u64, crate::cuda::StepGraph>,
    stats: GraphStats,
}

/// Whether graphs are on unless a model says otherwise: yes, but for
/// `INFER_CUDA_GRAPHS=0` (read once; models make a `StepGraphs` per call).
fn graphs_by_default() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("INFER_CUDA_GRAPHS").map_or(true, |v| v != "0"))
}

impl Default for StepGraphs {
    fn default() -> Self {
        Self::new()
    }
}

/// A clone starts with no graphs: they hold the buffers of the model they
/// were captured for.
impl Clone for StepGraphs {
    fn clone(&self) -> Self {
        let mut g = StepGraphs::new();
        g.enabled = self.enabled;
        g
    }
}

impl fmt::Debug for StepGraphs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepGraphs")
            .field("enabled", &self.enabled)
            .field("stats", &self.stats)
            .finish()
    }
}

impl StepGraphs {
    /// No graphs yet; enabled unless the environment sets
    /// `INFER_CUDA_GRAPHS=0` (for comparisons).
    pub fn new() -> Self {
        StepGraphs {
            enabled: graphs_by_default(),
            seen: HashSet::new(),
            refused: HashSet::new(),
            #[cfg(feature = "cuda")]
            graphs: std::collections::HashMap::new(),
            stats: GraphStats::default(),
        }
    }

    /// Turn graphs on or off (off drops the graphs held).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        if !on {
            self.clear();
        }
    }

    /// Drop every graph and what was learned about keys (for a model whose
    /// buffers were replaced).
    pub fn clear(&mut self) {
        self.seen.clear();
        self.refused.clear();
        #[cfg(feature = "cuda")]
        self.graphs.clear();
    }

    /// How the steps so far ran.
    pub fn stats(&self) -> GraphStats {
        self.stats
    }

    /// A key from the values that decide a step's launches.
    pub fn key(parts: &[u64]) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        parts.hash(&mut h);
        h.finish()
    }

    /// Run `body`, a step's device work, on `device`: as a CUDA graph when
    /// `key` names a step seen before (see the module's documentation),
    /// else as it is. `body` must leave the model as it found it when it
    /// fails (it may be run a second time), and must not read results back
    /// from the device.
    ///
    /// # Errors
    /// `body`'s error; the driver's, launching a graph.
    pub fn run<R, E: From<EngineError>>(
        &mut self,
        device: &Device,
        key: Option<u64>,
        mut body: impl FnMut() -> Result<R, E>,
    ) -> Result<R, E> {
        let key = key.filter(|k| self.enabled && !self.refused.contains(k));
        match (key, device) {
            #[cfg(feature = "cuda")]
            (Some(key), Device::Cuda(gpu)) => self.run_on_gpu(gpu, key, body),
            _ => {
                self.stats.eager += 1;
                body()
            }
        }
    }

    // ANCHOR: run_on_gpu
    #[cfg(feature = "cuda")]
    fn run_on_gpu<R, E: From<EngineError>>(
        &mut self,
        gpu: &crate::cuda::Gpu,
        key: u64,
        mut body: impl FnMut() -> Result<R, E>,
    ) -> Result<R, E> {
        // Replay the key's graph, or capture one on its second step.
        let (r, graph, replaying) = if let Some(mut graph) = self.graphs.remove(&key) {
            let started = std::time::Instant::now();
            gpu.begin_replay(&mut graph)?;
            let r = body();
            let end = gpu.end_replay(&mut graph).map(|()| graph);
            self.stats.replay_host += started.elapsed();
            (r, end, true)
        } else {
            if self.seen.insert(key) {
                self.stats.eager += 1;
                return body();
            }
            if self.graphs.len() >= MAX_GRAPHS {
                self.clear();
                self.seen.insert(key);
            }
            gpu.begin_capture()?;
            let r = body();
            (r, gpu.end_capture(), false)
        };
        match (r, graph) {
            (Ok(v), Ok(graph)) => {
                gpu.launch_graph(&graph)?;
                self.graphs.insert(key, graph);
                if replaying {
                    self.stats.replayed += 1;
                } else {
                    self.stats.captured += 1;
                }
                Ok(v)
            }
            // The step's host side ran and its kernels did not: no retry.
            (Ok(_), Err(e)) => Err(e.into()),
            (Err(_), graph) => {
                let again = self.eager_again(key, &mut body);
                if again.is_err() {
                    // The step fails eagerly too: not the graph's doing.
                    // Keep a graph that was replayed (a capture's is partial).
                    self.refused.remove(&key);
                    if let (true, Ok(graph)) = (replaying, graph) {
                        self.graphs.insert(key, graph);
                    }
                }
                again
            }
        }
    }
    // ANCHOR_END: run_on_gpu

    /// A step that failed inside a graph, run eagerly; its key is not
    /// graphed again.
    #[cfg(feature = "cuda")]
    fn eager_again<R, E>(
        &mut self,
        key: u64,
        body: &mut impl FnMut() -> Result<R, E>,
    ) -> Result<R, E> {
        self.refused.insert(key);
        self.stats.fallbacks += 1;
        body()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_the_cpu_every_step_runs_as_it_is() {
        let mut g = StepGraphs::new();
        let mut calls = 0;
        for _ in 0..3 {
            let r: Result<u32, EngineError> = g.run(&Device::Cpu, Some(7), || {
                calls += 1;
                Ok(calls)
            });
            assert_eq!(r.unwrap(), calls);
        }
        assert_eq!(calls, 3);
        assert_eq!(g.stats().eager, 3);
        assert_eq!(g.stats().captured + g.stats().replayed, 0);
    }

    #[test]
    fn a_failing_step_fails_once_and_keys_differ_by_their_parts() {
        let mut g = StepGraphs::new();
        let r: Result<(), EngineError> =
            g.run(&Device::Cpu, None, || Err(EngineError::Device("no".into())));
        assert!(r.is_err());
        assert_ne!(StepGraphs::key(&[1, 2]), StepGraphs::key(&[2, 1]));
        assert_eq!(StepGraphs::key(&[1, 2]), StepGraphs::key(&[1, 2]));
        assert_eq!(g.stats().eager, 1);
        assert_eq!(g.clone().stats(), GraphStats::default());
    }
}
