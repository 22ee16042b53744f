//! Which instruction set the kernels use, chosen once per process.
//!
//! Detection runs on first use and is cached in a [`OnceLock`]. The
//! environment variable `INFER_KERNELS` (`scalar`, `avx2`, `avx512`, `neon`)
//! can force a *lower* level than the CPU supports (for tests and
//! benchmarks); asking for a level the CPU lacks falls back to the best one
//! it has.

use std::fmt;
use std::sync::OnceLock;

/// An instruction-set level for the slice kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Plain Rust, no explicit SIMD.
    Scalar,
    /// ARM NEON (128-bit, 4 f32 lanes).
    Neon,
    /// x86-64 AVX2 + FMA + F16C (256-bit, 8 f32 lanes).
    Avx2,
    /// x86-64 AVX-512F besides AVX2: 512-bit vectors for the integer
    /// products, the prompt tiles and the f16 and f32 matrix-vector
    /// products, each arranged to give AVX2's bits; the other f32 kernels
    /// (dot products, norms, softmax, attention), whose sums would change
    /// order with the width, stay AVX2's (attention on an f16 cache puts
    /// two key rows' eight-lane sums side by side in one vector, and
    /// sixteen value columns, which keeps every sum's order), so every x86
    /// level from AVX2 up computes the same bits.
    Avx512,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Scalar => "scalar",
            Level::Neon => "neon",
            Level::Avx2 => "avx2+fma",
            Level::Avx512 => "avx512f",
        })
    }
}

// ANCHOR: detect
/// The best level this CPU supports, ignoring `INFER_KERNELS`.
pub fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c");
        if avx2 && std::is_x86_feature_detected!("avx512f") {
            return Level::Avx512;
        }
        if avx2 {
            return Level::Avx2;
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            return Level::Neon;
        }
    }
    Level::Scalar
}

/// The level the kernels use: [`detect`], lowered by `INFER_KERNELS` if set.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = detect();
        let forced = match std::env::var("INFER_KERNELS").ok().as_deref() {
            Some("scalar") => Some(Level::Scalar),
            Some("neon") => Some(Level::Neon),
            Some("avx2") => Some(Level::Avx2),
            Some("avx512") => Some(Level::Avx512),
            _ => None,
        };
        match forced {
            // Only go down, and only to a level of the same architecture.
            Some(l) if l <= best && (l != Level::Neon || best == Level::Neon) => l,
            _ => best,
        }
    })
}
// ANCHOR_END: detect
