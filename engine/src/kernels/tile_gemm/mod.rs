//! Prefill's matrix product against weight tiles widened in cache.
//!
//! A prompt's linear layer is `c = a · wᵀ` with `a` the activations
//! (`m` tokens × `k`) and `w` a weight (`n` rows × `k`) that is stored in
//! blocks and widened to f32 one small tile of rows at a time. A general
//! sgemm would pack `a` again for every tile. Here `a` is packed once per
//! product into [`Panels`] of [`MR`] tokens, each tile once into groups of
//! [`NR`] rows ([`pack_tile`]), both position-major, so that a
//! micro-kernel reads two sequential streams: per position, two vectors of
//! sixteen weights and six broadcast activations, into twelve registers of
//! sums that stay put for [`KC`] positions.
//!
//! Every output is `Σ_p a[i][p]·w[j][p]` accumulated in position order
//! with fused multiply-adds, whatever the tile, the group or the batch
//! around it: the plain twin ([`micro_scalar`], with `mul_add`) gives the
//! same bits, and a token's result does not depend on the other tokens.
//! With AVX-512 one micro-kernel call takes two neighbouring weight
//! groups ([`micro_pair`]), in the same layouts and with the same bits.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(test)]
mod tests;

use std::cell::RefCell;

use super::{Level, level};

/// Weight rows per group (two 8-lane vectors, or one 16-lane vector).
pub(crate) const NR: usize = 16;

/// Tokens per group (six broadcasts, twelve accumulators).
pub(crate) const MR: usize = 6;

/// Positions per pass: a weight group's slice (`KC · NR` floats, 16 KiB)
/// stays in L1 while every token group passes over it; each pass's sums
/// are added to the previous passes' in their [`Block`].
const KC: usize = 256;

/// One micro-kernel's sums: `[token][weight row]`.
pub(crate) type Block = [[f32; NR]; MR];

/// Activations packed for the micro-kernel: group `q` holds, for each
/// position `p`, the values `a[q·MR + t][p]` for `t < MR`, zero past the
/// last token.
#[derive(Debug, Default)]
pub(crate) struct Panels {
    data: Vec<f32>,
    m: usize,
    k: usize,
}

impl Panels {
    /// Pack `a` (`m × k`, row-major), reusing this buffer's allocation.
    ///
    /// # Panics
    /// If `a.len() != m · k`.
    pub(crate) fn pack(&mut self, a: &[f32], m: usize, k: usize) {
        assert_eq!(Some(a.len()), m.checked_mul(k), "Panels::pack: length");
        let len = m.div_ceil(MR) * k * MR;
        self.data.resize(len, 0.0);
        // The lanes past the last token read as zero.
        let last = (m / MR) * k * MR;
        self.data[last..].fill(0.0);
        for (i, row) in a.chunks_exact(k.max(1)).enumerate().take(m) {
            let (q, t) = (i / MR, i % MR);
            let group = &mut self.data[q * k * MR..(q + 1) * k * MR];
            for (p, &v) in row.iter().enumerate() {
                group[p * MR + t] = v;
            }
        }
        (self.m, self.k) = (m, k);
    }

    /// Group `q` from position `p0` on.
    fn group(&self, q: usize, p0: usize) -> &[f32] {
        &self.data[(q * self.k + p0) * MR..(q + 1) * self.k * MR]
    }
}

/// Pack the tile `w` (`n × k`, row-major) into groups of [`NR`] rows:
/// group `g` holds, for each position `p`, `w[g·NR + r][p]` for `r < NR`
/// (zero past the last row).
pub(crate) fn pack_tile(w: &[f32], k: usize, out: &mut Vec<f32>) {
    let n = w.len().checked_div(k).unwrap_or(0);
    out.resize(n.div_ceil(NR) * k * NR, 0.0);
    // Only the last group can have rows past the end: they read as zero.
    out[(n / NR) * k * NR..].fill(0.0);
    #[cfg(target_arch = "x86_64")]
    if matches!(level(), Level::Avx2 | Level::Avx512) {
        // SAFETY: the level says the CPU has AVX2; `transpose_into` checks
        // the lengths.
        unsafe { avx2::pack_tile(w, n, k, out) };
        return;
    }
    pack_tile_scalar(w, n, k, out);
}

/// [`pack_tile`]'s plain loops (`out` sized, the padding rows zeroed).
fn pack_tile_scalar(w: &[f32], n: usize, k: usize, out: &mut [f32]) {
    for (j, row) in w.chunks_exact(k.max(1)).enumerate().take(n) {
        let (g, r) = (j / NR, j % NR);
        let group = &mut out[g * k * NR..(g + 1) * k * NR];
        for (p, &v) in row.iter().enumerate() {
            group[p * NR + r] = v;
        }
    }
}

/// The plain twin of the micro-kernel: for `len` positions, each of the
/// [`MR`] tokens of `x` (a packed token group) times each of the [`NR`]
/// rows of `w` (a packed weight group), every sum in position order with
/// `mul_add` from zero, then stored in `sums` (`fresh`) or added to them.
///
/// # Panics
/// If `w` is shorter than `len · NR` or `x` than `len · MR`.
pub(crate) fn micro_scalar(w: &[f32], x: &[f32], len: usize, sums: &mut Block, fresh: bool) {
    assert!(w.len() >= len * NR && x.len() >= len * MR);
    let mut acc: Block = [[0.0; NR]; MR];
    for p in 0..len {
        let wp = &w[p * NR..(p + 1) * NR];
        for (t, acc) in acc.iter_mut().enumerate() {
            let a = x[p * MR + t];
            for (s, &b) in acc.iter_mut().zip(wp) {
                *s = a.mul_add(b, *s);
            }
        }
    }
    for (o, a) in sums.iter_mut().zip(&acc) {
        for (o, a) in o.iter_mut().zip(a) {
            *o = if fresh { *a } else { *o + a };
        }
    }
}

/// The micro-kernel at level `l`.
fn micro(l: Level, w: &[f32], x: &[f32], len: usize, acc: &mut Block, fresh: bool) {
    match l {
        // SAFETY: `level()` returns Avx2 or Avx512 only when the CPU has
        // AVX2 and FMA; `micro` checks the lengths.
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 | Level::Avx512 => unsafe { avx2::micro(w, x, len, acc, fresh) },
        _ => micro_scalar(w, x, len, acc, fresh),
    }
}

/// The micro-kernel on two weight groups `w.0` and `w.1` (sums into
/// `sums.0` and `sums.1`): one call at the AVX-512 level (a group's
/// sixteen rows are one vector there), two at any other.
fn micro_pair(
    l: Level,
    w: (&[f32], &[f32]),
    x: &[f32],
    len: usize,
    sums: (&mut Block, &mut Block),
    fresh: bool,
) {
    match l {
        // SAFETY: `level()` returns Avx512 only when the CPU has AVX-512F;
        // `micro_pair` checks the lengths.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { avx512::micro_pair(w, x, len, sums, fresh) },
        _ => {
            micro(l, w.0, x, len, sums.0, fresh);
            micro(l, w.1, x, len, sums.1, fresh);
        }
    }
}

thread_local! {
    /// Each thread's packed tile and running sums, kept for the allocations.
    static SCRATCH: RefCell<(Vec<f32>, Vec<Block>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `c[i][j] = Σ_p a[i][p] · w[j][p]` for every token `i` of `panels` and
/// every row `j` of the tile `w` (`n × k`, row-major): the tile's columns
/// of `c`, handed out a run at a time as `put(i, j, values)` (the values
/// of `c[i][j..j + values.len()]`).
pub(crate) fn tile_times_panels(
    w: &[f32],
    k: usize,
    panels: &Panels,
    mut put: impl FnMut(usize, usize, &[f32]),
) {
    let l = level();
    let n = w.len().checked_div(k).unwrap_or(0);
    let (tokens, groups) = (panels.m.div_ceil(MR), n.div_ceil(NR));
    SCRATCH.with_borrow_mut(|(packed, sums)| {
        pack_tile(w, k, packed);
        // Every block is overwritten by its first pass (`fresh`).
        sums.resize(tokens * groups, [[0.0; NR]; MR]);
        for p0 in (0..k).step_by(KC) {
            let len = KC.min(k - p0);
            let group = |g: usize| &packed[(g * k + p0) * NR..(g + 1) * k * NR];
            // Groups in pairs where the level takes two at once.
            let step = if l == Level::Avx512 { 2 } else { 1 };
            for g in (0..groups).step_by(step) {
                for q in 0..tokens {
                    let x = panels.group(q, p0);
                    if g + 1 < groups && step == 2 {
                        let (this, next) = sums.split_at_mut((g + 1) * tokens);
                        let pair = (&mut this[g * tokens + q], &mut next[q]);
                        micro_pair(l, (group(g), group(g + 1)), x, len, pair, p0 == 0);
                    } else {
                        micro(l, group(g), x, len, &mut sums[g * tokens + q], p0 == 0);
                    }
                }
            }
        }
        for g in 0..groups {
            let (j, rows) = (g * NR, NR.min(n - g * NR));
            for q in 0..tokens {
                let s = &sums[g * tokens + q];
                for (t, row) in s.iter().enumerate().take(MR.min(panels.m - q * MR)) {
                    put(q * MR + t, j, &row[..rows]);
                }
            }
        }
    });
}
