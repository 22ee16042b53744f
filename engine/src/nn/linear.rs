//! `out = x · Wᵀ` for a batch of activation rows against one weight, or
//! several weights stacked by rows (Q, K and V; gate and up), in one
//! hand-off to the thread pool.

use super::matrix::Matrix;
use crate::error::{EngineError, Result};
use crate::kernels;
use crate::quant::act::{Q8Acts, Q8Row};
use crate::quant::x8_prompt::TokenRows;
use crate::tensor::Tensor;
use crate::threads;

/// From this many rows of one sequence on, a product is a prompt's: a
/// regrouped Q4_0/Q4_1/Q5_0/Q8_0 weight takes the many-token integer kernel
/// ([`crate::quant::x8_prompt`], an integer sum per block), any other an
/// f32 matrix product on weight tiles widened in cache. Below it, every
/// weight row is read once per block and dotted with each activation row
/// (integer dot products for a quantized weight; the regrouped kernel
/// gives the same bits per row as llama.cpp's unless the weight was given
/// [`crate::quant::SumOrder::Block`]), so short prompts continue as
/// llama.cpp's do.
pub const SGEMM_MIN_TOKENS: usize = 32;

thread_local! {
    /// Activations quantized by this thread's last `linear` calls, kept for
    /// their allocations: one buffer per size lately seen ([`take_acts`]).
    static ACTS: std::cell::RefCell<Vec<Q8Acts>> = const { std::cell::RefCell::new(Vec::new()) };
    /// A batched product's scratch on this thread: one task's products, by
    /// weight row, kept for its allocation.
    pub(super) static BY_ROW: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    /// [`linear_add`]'s product before it is added, kept for its allocation.
    static PRODUCT: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Quantized-activation buffers a thread keeps between calls.
const ACTS_KEPT: usize = 4;

/// A buffer for quantizing `values` activations: the kept one that last
/// held that many, else the newest kept one, else a new one. A Llama block
/// alternates between rows of its width and rows of its MLP's, and one
/// buffer for both would zero-fill its growth at every MLP product.
pub(super) fn take_acts(values: usize) -> Q8Acts {
    ACTS.with_borrow_mut(|kept| {
        let size = |a: &Q8Acts| a.qs.len().max(a.k.qs.len());
        let at = kept.iter().rposition(|a| size(a) == values);
        at.or(kept.len().checked_sub(1))
            .map(|i| kept.remove(i))
            .unwrap_or_default()
    })
}

/// Give back a buffer from [`take_acts`], to be kept (the oldest kept one
/// is dropped beyond [`ACTS_KEPT`]).
pub(super) fn keep_acts(acts: Q8Acts) {
    ACTS.with_borrow_mut(|kept| {
        if kept.len() == ACTS_KEPT {
            kept.remove(0);
        }
        kept.push(acts);
    });
}

/// Call `f(matrix, first_row_in_matrix, rows, first_row_in_chunk)` for each
/// piece of the stacked rows `g0..g0 + len` that falls in one matrix.
fn segments(
    mats: &[Matrix<'_>],
    g0: usize,
    len: usize,
    mut f: impl FnMut(&Matrix<'_>, usize, usize, usize),
) {
    let (mut base, end) = (0, g0 + len);
    for m in mats {
        let (lo, hi) = (g0.max(base), end.min(base + m.rows));
        if lo < hi {
            f(m, lo - base, hi - lo, lo - g0);
        }
        base += m.rows;
    }
}

/// The most products (f32) a thread's by-row scratch keeps between calls.
pub(super) const BY_ROW_KEEP: usize = 1 << 20;

/// Rows of weights a task takes at a time when several activation rows
/// pass over them: small enough to stay in cache while every row passes,
/// a multiple of 4 so the four-row kernels group rows as a single row's
/// pass does.
const ROW_BLOCK: usize = 64;

/// `out[i][·] = x[i] · [W₁; W₂; …]ᵀ` for `t` rows of `x` (`t × cols`,
/// row-major) against the weights `parts`, each `rows_j × cols`, stacked
/// by rows: `out` is `t × Σ rows_j`. The engine picks the kernel from the
/// weights' dtypes and the batch size; the caller never does.
///
/// # Errors
/// [`EngineError::BadShape`] if a weight is not a contiguous matrix or
/// there are none, [`EngineError::ShapeMismatch`] if the widths or the
/// buffer lengths disagree.
pub fn linear(x: &[f32], t: usize, parts: &[&Tensor], out: &mut [f32]) -> Result<()> {
    linear_batch(x, &[t], parts, out)
}

// ANCHOR: linear
/// [`linear`] for a batch of sequences whose rows are stacked in `x`:
/// sequence `j` has `lens[j]` rows. Each sequence's rows get the kernel
/// its own length calls for (an f32 matrix product on widened weight tiles from
/// [`SGEMM_MIN_TOKENS`] rows on, integer dot products below), so a row's
/// result does not depend on what else is in the batch: a request decodes
/// the same tokens alone or beside others. (Weights whose kernel is the
/// same for every length, regrouped 4-bit rows summed by block, take a
/// mixed batch in one pass.)
///
/// # Errors
/// As [`linear`]; also a mismatch between `Σ lens` and the buffers.
pub fn linear_batch(x: &[f32], lens: &[usize], parts: &[&Tensor], out: &mut [f32]) -> Result<()> {
    linear_batch_with(x, lens, parts, out, None)
}

/// `out += x · Wᵀ` for the rows of a batch of sequences stacked in `x`
/// (sequence `j` has `lens[j]` rows): [`linear_batch`] into a scratch
/// kept between calls, then added to `out`.
///
/// # Errors
/// As [`linear_batch`].
pub fn linear_add(x: &[f32], lens: &[usize], w: &Tensor, out: &mut [f32]) -> Result<()> {
    linear_add_with(x, lens, w, out, None)
}

/// [`linear_add`] with [`linear_batch_with`]'s `pre`.
pub(super) fn linear_add_with(
    x: &[f32],
    lens: &[usize],
    w: &Tensor,
    out: &mut [f32],
    pre: Option<&Q8Acts>,
) -> Result<()> {
    PRODUCT.with_borrow_mut(|p| {
        p.resize(out.len(), 0.0);
        linear_batch_with(x, lens, &[w], p, pre)?;
        kernels::add_inplace(out, p);
        Ok(())
    })
}

/// [`linear_batch`], given `x` already quantized in blocks of 32 (`pre`:
/// what [`Q8Acts::quantize`] makes of it, by whoever computed `x`), which
/// a one-pass product of 32-value formats then uses instead of
/// quantizing `x` itself.
pub(super) fn linear_batch_with(
    x: &[f32],
    lens: &[usize],
    parts: &[&Tensor],
    out: &mut [f32],
    pre: Option<&Q8Acts>,
) -> Result<()> {
    let _t = crate::profile::timer(crate::profile::Op::Linear);
    let op = "linear";
    let t: usize = lens.iter().sum();
    let (mats, cols, rows) = weight_matrices(parts, op)?;
    if t.checked_mul(cols) != Some(x.len()) || t.checked_mul(rows) != Some(out.len()) {
        return Err(EngineError::ShapeMismatch {
            op,
            lhs: vec![t, cols, x.len()],
            rhs: vec![rows, cols, out.len()],
        });
    }
    if t == 0 || rows == 0 {
        return Ok(());
    }
    let _p = crate::profile::product_timer(rows, cols, || dtype_names(parts));
    let run = |k: Kernel, x: &[f32], t: usize, out: &mut [f32], pre| match k {
        Kernel::Tiles if !mats.iter().all(Matrix::takes_prompt_kernel) => {
            by_tiles(&mats, x, t, cols, rows, out)
        }
        k => by_rows(&mats, (x, pre), t, cols, rows, out, k),
    };
    if let Some(k) = one_pass(&mats, lens) {
        run(k, x, t, out, pre);
        return Ok(());
    }
    // A mixed batch (prompts beside decode steps): gather each kind's rows,
    // run each kernel once, and put the results back in order.
    for k in [Kernel::Rows, Kernel::Dots, Kernel::Tiles] {
        let picked: Vec<(usize, usize)> = lens
            .iter()
            .scan(0, |at, &n| {
                *at += n;
                Some((*at - n, n))
            })
            .filter(|&(_, n)| kind(n) == k)
            .collect();
        let tk: usize = picked.iter().map(|p| p.1).sum();
        if tk == 0 {
            continue;
        }
        let mut xk = Vec::with_capacity(tk * cols);
        for &(at, n) in &picked {
            xk.extend_from_slice(&x[at * cols..(at + n) * cols]);
        }
        let mut ok = vec![0f32; tk * rows];
        run(k, &xk, tk, &mut ok, None);
        let mut i = 0;
        for &(at, n) in &picked {
            out[at * rows..(at + n) * rows].copy_from_slice(&ok[i * rows..(i + n) * rows]);
            i += n;
        }
    }
    Ok(())
}

/// The element types of `parts`, each once, joined by `+` (`q4_1`,
/// `q5_0+q8_0`): how a product's weight is named in
/// [`crate::profile::products`].
pub(super) fn dtype_names(parts: &[&Tensor]) -> String {
    let mut names: Vec<String> = Vec::new();
    for p in parts {
        let n = p.dtype().to_string();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names.join("+")
}

/// True if [`linear_batch`] multiplies every row by `w` with the same
/// operations whatever the number of rows of its sequence in the call
/// (`Matrix::sums_by_block`: regrouped Q4_0, Q4_1, Q5_0 or Q8_0 rows summed in
/// [`crate::quant::SumOrder::Block`]). A row's product is then the same
/// bits whether its sequence was fed one token at a time or in chunks of
/// any size, so a cache of earlier rows may be reused from any position.
/// Any other weight (f32 tiles or integer dot products chosen by the
/// sequence's length, as [`SGEMM_MIN_TOKENS`] says) gives false.
pub fn same_product_for_every_length(w: &Tensor) -> bool {
    Matrix::new(w, "same_product_for_every_length").is_ok_and(|m| m.sums_by_block())
}

/// A sequence's kernel, from its own length only.
fn kind(n: usize) -> Kernel {
    match n {
        1 => Kernel::Rows,
        n if n < SGEMM_MIN_TOKENS => Kernel::Dots,
        _ => Kernel::Tiles,
    }
}

/// The kernel that takes every row of a batch of sequences (`lens`) in
/// one pass over `mats`: the one their lengths all call for, or, for
/// weights that multiply every row count the same way
/// ([`Matrix::sums_by_block`]), the many-token kernel. `None` when the
/// batch mixes kinds that need different kernels.
pub(super) fn one_pass(mats: &[Matrix<'_>], lens: &[usize]) -> Option<Kernel> {
    let first = kind(*lens.first()?);
    if lens.iter().all(|&n| kind(n) == first) {
        Some(first)
    } else if mats.iter().all(Matrix::sums_by_block) {
        Some(Kernel::Tiles)
    } else {
        None
    }
}

// ANCHOR_END: linear

/// `parts` as matrices of one width, with that width and their rows in
/// all.
///
/// # Errors
/// [`EngineError::BadShape`] if there are no weights, one is not a
/// contiguous matrix, or quantized rows are not whole blocks;
/// [`EngineError::ShapeMismatch`] if the widths differ.
pub(super) fn weight_matrices<'a>(
    parts: &[&'a Tensor],
    op: &'static str,
) -> Result<(Vec<Matrix<'a>>, usize, usize)> {
    let mats = parts
        .iter()
        .map(|p| Matrix::new(p, op))
        .collect::<Result<Vec<_>>>()?;
    let Some(cols) = mats.first().map(|m| m.cols) else {
        return Err(EngineError::BadShape {
            op,
            shape: vec![],
            reason: "no weights given".into(),
        });
    };
    let rows: usize = mats.iter().map(|m| m.rows).sum();
    if let Some(m) = mats.iter().find(|m| m.cols != cols) {
        return Err(EngineError::ShapeMismatch {
            op,
            lhs: vec![mats[0].rows, cols],
            rhs: vec![m.rows, m.cols],
        });
    }
    if mats.iter().any(Matrix::is_quantized) && !cols.is_multiple_of(crate::quant::QK) {
        return Err(EngineError::BadShape {
            op,
            shape: vec![rows, cols],
            reason: "quantized weight rows must be whole blocks".into(),
        });
    }
    Ok((mats, cols, rows))
}

/// Weight rows per task for a batch of `t` activation rows (`work`
/// products in all), whole groups of eight.
///
/// A batch of fewer than [`SGEMM_MIN_TOKENS`] rows (decode steps, and a
/// short prompt chunk beside them) still streams most of its time from
/// memory, like a single decode step: each thread takes one run of the
/// weights, which the prefetchers follow. Cut into four chunks per
/// thread, SmolLM2's eight-client decode steps ran 6-12% slower (`infer
/// bench-batch`, alternated), and eight chunks slower still. A longer
/// prompt is arithmetic-bound, and there four chunks per thread even
/// out the threads: one run each made 128-token prompts 4-20% slower.
///
/// Where it can, a chunk is whole pairs of groups and every thread gets
/// the same number of chunks: the 512-bit kernels multiply two groups at
/// once and leave a task's odd last group to the 256-bit kernel, which
/// takes about as long for it as for a pair. SmolLM2's 576 rows in eight
/// chunks of 72 (nine groups each) cost a tenth more than in six of 96.
pub(super) fn batch_chunk(rows: usize, t: usize, work: usize) -> usize {
    if !kernels::go_parallel(work) || rows < 16 {
        return rows;
    }
    let per_thread = if t < SGEMM_MIN_TOKENS { 1 } else { 4 };
    chunk_for(rows, threads::num_threads(), per_thread)
}

/// [`batch_chunk`]'s chunk of `rows` for `threads` threads and at most
/// `per_thread` chunks each.
fn chunk_for(rows: usize, threads: usize, per_thread: usize) -> usize {
    let pair = 2 * crate::quant::x8::ROWS;
    if rows.is_multiple_of(pair) {
        let pairs = rows / pair;
        // The most chunks per thread, up to `per_thread`, that divide the
        // pairs evenly.
        if let Some(tasks) = (1..=per_thread)
            .rev()
            .map(|k| k * threads)
            .find(|&n| pairs.is_multiple_of(n))
        {
            return pairs / tasks * pair;
        }
    }
    rows.div_ceil(threads * per_thread).next_multiple_of(8)
}

/// Each task's piece of every token's row of `out` (`t` rows of `rows`
/// values): task `c` gets `out[i][c·chunk..(c + 1)·chunk]` for each token
/// `i`, disjoint borrows that can go to the pool.
pub(super) fn token_pieces(out: &mut [f32], rows: usize, chunk: usize) -> Vec<Vec<&mut [f32]>> {
    let t = out.len() / rows.max(1);
    let mut pieces: Vec<Vec<&mut [f32]>> = (0..rows.div_ceil(chunk.max(1)))
        .map(|_| Vec::with_capacity(t))
        .collect();
    for token_row in out.chunks_exact_mut(rows.max(1)) {
        let mut rest = token_row;
        for p in &mut pieces {
            let len = chunk.min(rest.len());
            let (piece, tail) = std::mem::take(&mut rest).split_at_mut(len);
            p.push(piece);
            rest = tail;
        }
    }
    pieces
}

/// Which kernel a sequence's rows take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    /// One row (a decode step): the four-row kernels, several sequences'
    /// rows sharing each unpacked weight block.
    Rows,
    /// A short prompt: one dot product per weight row and token (a
    /// regrouped matrix: its kernel, eight rows and every token at once).
    Dots,
    /// A prompt of `SGEMM_MIN_TOKENS` rows or more: regrouped
    /// Q4_0/Q4_1/Q5_0/Q8_0 weights take the many-token integer kernel
    /// ([`crate::quant::x8_prompt`]), every other dtype an f32 matrix
    /// product on widened tiles.
    Tiles,
}

/// Every row of `x` times the weights as one f32 matrix product on weight
/// tiles widened in cache (`x` packed once, each tile once).
fn by_tiles(mats: &[Matrix<'_>], x: &[f32], t: usize, cols: usize, rows: usize, out: &mut [f32]) {
    let tile = rows
        .div_ceil(threads::num_threads() * 4)
        .next_multiple_of(kernels::TILE_ROWS)
        .min(128);
    // A tile inside one f32 matrix is read where it lies.
    let view = |r: std::ops::Range<usize>| {
        let mut base = 0;
        for m in mats {
            if r.start >= base && r.end <= base + m.rows {
                return m.f32_rows(r.start - base, r.len());
            }
            base += m.rows;
        }
        None
    };
    kernels::matmul_bt_tiles(x, (t, cols, rows), tile, out, view, |r, buf| {
        segments(mats, r.start, r.len(), |m, r0, n, at| {
            m.rows_f32(r0, &mut buf[at * cols..(at + n) * cols]);
        });
    });
}

// ANCHOR: by_rows
/// Every weight row read once per block of rows and dotted with each row
/// of `x` (integer dot products for a quantized weight). For `Rows` and
/// `Dots` each product is computed exactly as for a single row of `x`: by
/// the four-row or regrouped kernels, or, for `Dots` on a matrix in the
/// file's layout, one weight row at a time (the order a short prompt has
/// always used, which keeps its continuations closest to llama.cpp's).
/// `Tiles` (only for matrices that [`Matrix::takes_prompt_kernel`]) runs
/// the many-token integer kernel.
fn by_rows(
    mats: &[Matrix<'_>],
    (x, pre): (&[f32], Option<&Q8Acts>),
    t: usize,
    cols: usize,
    rows: usize,
    out: &mut [f32],
    kernel: Kernel,
) {
    let quantized = mats.iter().any(Matrix::is_quantized);
    // Blocks of 32 for the 32-value formats, of 256 for the K-quants.
    let of_256 = mats.iter().any(Matrix::reads_k_blocks);
    let of_32 = mats.iter().any(|m| m.is_quantized() && !m.reads_k_blocks());
    // Activations quantized by the caller serve when blocks of 32 are all
    // that is needed; else they live in a per-thread buffer that is taken
    // out and put back, so a decode step allocates nothing here.
    let given = pre.filter(|p| of_32 && !of_256 && p.cols == cols && p.rows() == t);
    let mut own = None;
    let qx: &Q8Acts = match given {
        Some(p) => p,
        None => {
            let q = own.insert(take_acts(x.len()));
            if quantized {
                q.quantize_blocks(x, cols, of_32, of_256);
            }
            q
        }
    };
    // The quantized rows, listed once for every task (a single row takes
    // the one-row path, which reads `qx` itself: nothing to list).
    let acts: Vec<_> = if quantized && t > 1 {
        (0..t).map(|i| qx.row(i)).collect()
    } else {
        Vec::new()
    };
    // Each task owns a run of weight rows and writes, for every activation
    // row, its products there: `by_row[r][i]` (the batch transposed).
    let run = |g0: usize, o: &mut [f32]| {
        let n = o.len() / t;
        segments(mats, g0, n, |m, r0, len, at| {
            if t == 1 {
                m.matvec_rows(r0, x, qx, 0, &mut o[at..at + len]);
                return;
            }
            // Rows in the file's layout meet each token in a dot product
            // of their own; K-quant rows take the matrix product below,
            // whose tiles share each row's unpacked codes among four
            // tokens and give every token its own dot product's bits.
            if kernel == Kernel::Dots && !m.is_regrouped() && !m.reads_k_blocks() {
                for j in 0..len {
                    for i in 0..t {
                        let xi = &x[i * cols..(i + 1) * cols];
                        let v = &mut o[(at + j) * t + i];
                        m.matvec_rows(r0 + j, xi, qx, i, std::slice::from_mut(v));
                    }
                }
                return;
            }
            for b in (0..len).step_by(ROW_BLOCK) {
                let nb = ROW_BLOCK.min(len - b);
                let o = &mut o[(at + b) * t..(at + b + nb) * t];
                if kernel == Kernel::Tiles {
                    m.prompt_rows(r0 + b, &acts, o);
                } else {
                    m.matmul_rows(r0 + b, (x, t), (qx, &acts), o);
                }
            }
        });
    };
    if t == 1 {
        if kernels::go_parallel(rows * cols) && rows >= 16 {
            // A decode step streams each thread's share of the weights as
            // one run: the prefetchers follow it, and each task start costs.
            let chunk = rows.div_ceil(threads::num_threads()).next_multiple_of(8);
            threads::for_each_chunk_mut(out, chunk, |c, o| run(c * chunk, o));
        } else {
            run(0, out);
        }
        if let Some(q) = own {
            keep_acts(q);
        }
        return;
    }
    // A batch of rows, which does more arithmetic per byte, takes a few
    // chunks of weight rows per thread for balance. A task multiplies its
    // rows into its own scratch (`by_row[r][i]`), then copies each token's
    // products to that token's row of `out`: the transposition runs in the
    // tasks, in parallel, while the products are still in cache.
    let chunk = batch_chunk(rows, t, rows * cols * t);
    let mut pieces = token_pieces(out, rows, chunk);
    // Matrices the many-token integer kernel multiplies write each token's
    // products straight into that token's row of `out`.
    let by_token = mats
        .iter()
        .all(|m| m.prompt_kernel_runs(kernel == Kernel::Tiles));
    // One task per entry of `pieces` (inline when there is only one).
    threads::for_each_chunk_mut(&mut pieces, 1, |c, task| {
        let dst = &mut task[0];
        let n = dst.first().map_or(0, |d| d.len());
        if by_token {
            segments(mats, c * chunk, n, |m, r0, len, at| {
                rows_by_token(m, (r0, len), &acts, dst, at);
            });
            return;
        }
        // Reused as it is (every element is written before it is read),
        // zeroed only where it first grows.
        let mut by_row = BY_ROW.take();
        if by_row.len() < n * t {
            by_row.resize(n * t, 0.0);
        }
        run(c * chunk, &mut by_row[..n * t]);
        kernels::transpose(&by_row[..n * t], t, dst);
        // Kept for the next call if it is a decode batch's size, freed
        // after a long prompt's.
        if by_row.capacity() <= BY_ROW_KEEP {
            BY_ROW.set(by_row);
        }
    });
    if let Some(q) = own {
        keep_acts(q);
    }
}
// ANCHOR_END: by_rows

/// Weight rows `r0..r0 + len` of `m` against `acts` by the many-token
/// kernel, [`ROW_BLOCK`] rows at a time (a block stays in cache while
/// every token passes over it), each token's products written into its
/// row of `rows` from column `col` on.
pub(super) fn rows_by_token(
    m: &Matrix<'_>,
    (r0, len): (usize, usize),
    acts: &[Q8Row<'_>],
    rows: &mut [&mut [f32]],
    col: usize,
) {
    for b in (0..len).step_by(ROW_BLOCK) {
        let run = (r0 + b, ROW_BLOCK.min(len - b));
        m.prompt_rows_into(run, acts, &mut TokenRows { rows, col: col + b });
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_for;

    #[test]
    fn chunks_are_whole_pairs_of_groups_shared_evenly_where_they_can_be() {
        // SmolLM2's matrices on two threads, four chunks each at most:
        // 576 rows (36 pairs) in six chunks, QKV's 960 in six, the head's
        // 49152 in eight; one chunk each: halves.
        assert_eq!(chunk_for(576, 2, 4), 96);
        assert_eq!(chunk_for(960, 2, 4), 160);
        assert_eq!(chunk_for(49152, 2, 4), 6144);
        assert_eq!(chunk_for(576, 2, 1), 288);
        assert_eq!(chunk_for(960, 2, 1), 480);
        // 9 pairs on two threads cannot be shared evenly: eight-row chunks.
        assert_eq!(chunk_for(144, 2, 4), 24);
        assert_eq!(chunk_for(144, 2, 1), 72);
        for per_thread in [1, 4] {
            for threads in 1..=4 {
                for rows in (16..2048).step_by(8) {
                    let c = chunk_for(rows, threads, per_thread);
                    let at = format!("{rows} rows, {threads} threads, {per_thread} each");
                    assert!(c > 0 && c.is_multiple_of(8), "{at}: chunks of {c}");
                    let tasks = rows.div_ceil(c);
                    assert!(tasks <= per_thread * threads, "{at}: {tasks} tasks");
                    let pairs = rows / 16;
                    let even = (1..=per_thread).any(|k| pairs.is_multiple_of(k * threads));
                    if rows.is_multiple_of(16) && even {
                        assert!(c.is_multiple_of(16), "{at}: chunks of {c}");
                        assert!(tasks.is_multiple_of(threads), "{at}: {tasks} tasks");
                    }
                }
            }
        }
    }
}
