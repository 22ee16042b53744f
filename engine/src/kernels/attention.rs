//! Causal attention over a KV cache: one query (decode), a run of new
//! queries (prefill), or the stacked queries of several sequences (a
//! batched step), in the cache's element type (f32, f16 or Q8_0). No mask
//! is materialised: query `i` simply reads the positions it may see.

#[cfg(target_arch = "x86_64")]
use super::Level;
use super::q8_scores::{Q8_0_BLOCK_BYTES, q8_0_scores};
use super::{AttnDims, level, scalar, softmax_inplace};
#[cfg(target_arch = "x86_64")]
use super::{ask_for, attend_avx512, avx2};
use crate::quant::act::Q8Acts;
use crate::threads;

fn check_attn(dims: AttnDims, q: usize, k: usize, v: usize, out: usize, end: usize) {
    let AttnDims {
        n_heads,
        n_kv_heads,
        head_dim,
        capacity,
    } = dims;
    assert!(
        n_kv_heads > 0 && n_heads.is_multiple_of(n_kv_heads),
        "attention: {n_heads} query heads not a multiple of {n_kv_heads} kv heads"
    );
    assert!(
        end <= capacity,
        "attention: {end} positions exceed capacity {capacity}"
    );
    let cache = n_kv_heads * capacity * head_dim;
    assert!(
        k == cache && v == cache && q == out,
        "attention: k {k} v {v} (want {cache}), q {q} out {out}"
    );
}

/// Single-query causal attention over `seq_len` cached positions, every
/// head; no mask is materialised. Layouts: see [`AttnDims`]. Heads are
/// split across the thread pool. It is [`attention_prefill`] for the one
/// query at position `seq_len - 1`.
///
/// # Panics
/// If the lengths do not match `dims`, `seq_len` is 0 or exceeds
/// `capacity`, or `n_heads % n_kv_heads != 0`.
pub fn attention_decode<'a>(
    q: &[f32],
    k_cache: impl Into<KvSlice<'a>>,
    v_cache: impl Into<KvSlice<'a>>,
    dims: AttnDims,
    seq_len: usize,
    out: &mut [f32],
) {
    assert!(seq_len > 0, "attention_decode: no positions to attend to");
    attention_prefill(q, k_cache, v_cache, dims, seq_len - 1, 1, out);
}

/// Causal attention for `t` new queries (`q`, `out`: `[t][n_heads][head_dim]`)
/// at positions `start_pos..start_pos+t`, whose keys and values are already
/// in the cache; query `i` sees positions `0..=start_pos+i`.
///
/// # Panics
/// If the lengths do not match `dims` and `t`, `start_pos + t > capacity`,
/// or `n_heads % n_kv_heads != 0`.
pub fn attention_prefill<'a>(
    q: &[f32],
    k_cache: impl Into<KvSlice<'a>>,
    v_cache: impl Into<KvSlice<'a>>,
    dims: AttnDims,
    start_pos: usize,
    t: usize,
    out: &mut [f32],
) {
    let _t = crate::profile::timer(crate::profile::Op::Attention);
    let (k_cache, v_cache) = same_dtype(k_cache.into(), v_cache.into());
    check_attn(
        dims,
        q.len(),
        k_cache.len(),
        v_cache.len(),
        out.len(),
        start_pos + t,
    );
    assert_eq!(
        q.len(),
        t * dims.n_heads * dims.head_dim,
        "attention_prefill: q length"
    );
    let seq = AttnSeq {
        k: k_cache,
        v: v_cache,
        start_pos,
        len: t,
    };
    attention_rows((q, dims.n_heads * dims.head_dim), &[seq], dims, out);
}

/// One sequence of a stacked batch for [`attention_stacked`]: its keys and
/// values (layout as in [`AttnDims`]) and its new queries, at positions
/// `start_pos..start_pos + len`, already written to them.
#[derive(Debug, Clone, Copy)]
pub struct AttnSeq<'a> {
    /// The sequence's keys.
    pub k: KvSlice<'a>,
    /// The sequence's values.
    pub v: KvSlice<'a>,
    /// Position of its first new query.
    pub start_pos: usize,
    /// Number of its new queries.
    pub len: usize,
}

// ANCHOR: attention_stacked
/// Causal attention for several sequences whose new queries are stacked in
/// `q` (one query every `q_stride` values, its `[n_heads][head_dim]` at
/// the start: the fused QKV rows are read in place) and in `out`
/// (`[Σ len][n_heads][head_dim]`), in the order of `seqs`, each against
/// its own keys and values, as one piece of work for the pool: a batched
/// decode step of eight sequences is one hand-off per layer, not eight,
/// and its (query, head) pairs are shared evenly between the threads. Each
/// query's result is the same as [`attention_prefill`] gives it alone.
///
/// # Panics
/// If a sequence's lengths do not match `dims`, its positions exceed
/// `capacity`, the sequences' caches differ in dtype, `q_stride` is
/// shorter than a query, or `q` and `out` are not `Σ len` queries long.
pub fn attention_stacked(
    (q, q_stride): (&[f32], usize),
    seqs: &[AttnSeq<'_>],
    dims: AttnDims,
    out: &mut [f32],
) {
    let _t = crate::profile::timer(crate::profile::Op::Attention);
    let row = dims.n_heads * dims.head_dim;
    let t: usize = seqs.iter().map(|s| s.len).sum();
    assert!(
        q_stride >= row && q.len() == t * q_stride && out.len() == t * row,
        "attention_stacked: q {} (a query every {q_stride}) and out {} for {t} queries of {row}",
        q.len(),
        out.len()
    );
    for s in seqs {
        same_dtype(s.k, s.v);
        check_attn(dims, row, s.k.len(), s.v.len(), row, s.start_pos + s.len);
        same_dtype(s.k, seqs[0].k);
    }
    attention_rows((q, q_stride), seqs, dims, out);
}
// ANCHOR_END: attention_stacked

/// Attention for the stacked queries of `seqs` (checked by the caller),
/// one every `q_stride` values of `q`: query `i` of a sequence sees
/// `start_pos + i + 1` positions. Every (query, head) pair of every
/// sequence is independent work for the pool.
fn attention_rows(
    (q, q_stride): (&[f32], usize),
    seqs: &[AttnSeq<'_>],
    dims: AttnDims,
    out: &mut [f32],
) {
    let hd = dims.head_dim;
    // `len` query values from `at` into stacked query `i`'s row.
    let q_at = |i: usize, at: usize, len: usize| &q[i * q_stride + at..i * q_stride + at + len];
    // Per stacked query: its sequence and how many positions it sees.
    let owner: Vec<(usize, usize)> = seqs
        .iter()
        .enumerate()
        .flat_map(|(s, seq)| (0..seq.len).map(move |i| (s, seq.start_pos + i + 1)))
        .collect();
    let Some(first) = seqs.first() else { return };
    if hd == 0 || owner.is_empty() {
        return;
    }
    let group = dims.n_heads / dims.n_kv_heads;
    let job = |idx: usize, o: &mut [f32], scores: &mut Vec<f32>| {
        let (i, h) = (idx / dims.n_heads, idx % dims.n_heads);
        let (s, len) = owner[i];
        let base = (h / group) * dims.capacity * hd;
        let q = q_at(i, h * hd, hd);
        let rows = base..base + len * hd;
        match (seqs[s].k.slice(rows.clone()), seqs[s].v.slice(rows)) {
            (KvSlice::F32(k), KvSlice::F32(v)) => attend_one(q, k, v, scores, o),
            (KvSlice::F16(k), KvSlice::F16(v)) => attend_one_f16(q, k, v, scores, o),
            (KvSlice::Q8_0(k), KvSlice::Q8_0(v)) => attend_group_q8_0(
                GroupQ8 {
                    qs: q,
                    k,
                    v,
                    group: 1,
                },
                scores,
                o,
            ),
            _ => unreachable!("checked: keys and values share one dtype"),
        }
    };
    let work: usize = owner.iter().map(|&(_, len)| dims.n_heads * len * hd).sum();
    // Decode steps only: one query per sequence, pieces of similar size.
    let decode = owner.len() == seqs.len();
    // An f16 cache on AVX2: one task per (query, KV head), reading each key
    // and value row once for the whole group of query heads.
    #[cfg(target_arch = "x86_64")]
    if let (KvSlice::F16(_), Level::Avx2 | Level::Avx512) = (first.k, level())
        && group <= 4
        && hd.is_multiple_of(32)
    {
        let span = group * hd;
        // Two key rows or sixteen value columns per vector where AVX-512
        // has them: the same sums in the same order.
        let wide = level() == Level::Avx512;
        // Piece `idx`'s keys and values: the positions its query sees.
        let piece = |idx: usize| {
            let (i, kvh) = (idx / dims.n_kv_heads, idx % dims.n_kv_heads);
            let (s, len) = owner[i];
            let (KvSlice::F16(k16), KvSlice::F16(v16)) = (seqs[s].k, seqs[s].v) else {
                unreachable!("checked: every sequence's cache is f16")
            };
            let rows = kvh * dims.capacity * hd..(kvh * dims.capacity + len) * hd;
            (&k16[rows.clone()], &v16[rows])
        };
        let job = |idx: usize, o: &mut [f32]| {
            let (k, v) = piece(idx);
            let (i, kvh) = (idx / dims.n_kv_heads, idx % dims.n_kv_heads);
            let qs = q_at(i, kvh * span, span);
            SCORES.with_borrow_mut(|scores| {
                // SAFETY: level() is Avx2 or Avx512 only when the CPU
                // has AVX2, FMA and F16C; `wide` only with AVX-512F
                // besides.
                unsafe {
                    if wide {
                        attend_avx512::attend_group_f16(qs, k, v, group, scores, o)
                    } else {
                        avx2::attend_group_f16(qs, k, v, group, scores, o)
                    }
                }
            });
        };
        // The first key rows of the piece that comes next in a task's run:
        // the key loop asks for rows sixteen ahead of itself, so a piece's
        // own first rows would otherwise arrive one miss at a time.
        let ahead = |idx: usize| {
            let keys = piece(idx).0;
            ask_for(&keys[..keys.len().min(16 * hd)]);
        };
        run_tasks(out, span, work, decode, job, ahead);
        return;
    }
    // A Q8_0 cache: one task per (query, KV head) too, each key and value
    // row widened once for the whole group.
    if let KvSlice::Q8_0(_) = first.k {
        let span = group * hd;
        let job = |idx: usize, o: &mut [f32]| {
            let (i, kvh) = (idx / dims.n_kv_heads, idx % dims.n_kv_heads);
            let (s, len) = owner[i];
            let base = kvh * dims.capacity * hd;
            let rows = base..base + len * hd;
            let (KvSlice::Q8_0(k), KvSlice::Q8_0(v)) =
                (seqs[s].k.slice(rows.clone()), seqs[s].v.slice(rows))
            else {
                unreachable!("checked: every sequence's cache is Q8_0")
            };
            let qs = q_at(i, kvh * span, span);
            let task = GroupQ8 { qs, k, v, group };
            SCORES.with_borrow_mut(|scores| attend_group_q8_0(task, scores, o));
        };
        run_tasks(out, span, work, decode, job, |_| {});
        return;
    }
    // Each thread keeps its score buffer between calls: no allocation per
    // decode step once it has grown to the context length.
    let job = |idx: usize, o: &mut [f32]| SCORES.with_borrow_mut(|scores| job(idx, o, scores));
    run_tasks(out, hd, work, decode, job, |_| {});
}

/// `job(idx, o)` for each piece `o` of `out` (`span` values each, `idx`
/// its index): on the calling thread when `work` multiply-adds are too
/// few, else across the pool. A hand-off to the spinning pool costs about
/// a microsecond, so even one decode step's few heads are worth
/// splitting.
///
/// For a batch of `decode` steps (one query per sequence), the pool gets
/// runs of consecutive pieces, about [`RUNS_PER_THREAD`] per thread, not
/// one piece per task, and before each piece but a run's first,
/// `ahead(idx)` may ask for the memory of the next. A batch's pieces are
/// short: eight decode steps make 24 of them per layer of SmolLM2, each a
/// few hundred key rows at most, and each began with its first rows
/// missing in every cache and one task handed out through the pool's
/// shared counter. In runs of six, each asking for the next piece's
/// first sixteen key rows, attention took 0.86–0.93 ms of an eight-client
/// step instead of 0.95–1.00, and the steps gave 1,089–1,134 tokens a
/// second instead of 1,066–1,112 (`infer bench-batch --clients 8
/// --prompt-tokens 4 --new-tokens 160 --prefill-chunk 16 --prefill-budget
/// 16 --profile`, three rounds alternated with the build before, on a
/// 2-core Xeon); one client's three pieces still go one to a task. A
/// prompt's pieces stay one to a task too: they grow with the query's
/// position, so runs of them would leave the thread that took the last
/// run working alone.
fn run_tasks(
    out: &mut [f32],
    span: usize,
    work: usize,
    decode: bool,
    job: impl Fn(usize, &mut [f32]) + Sync,
    ahead: impl Fn(usize) + Sync,
) {
    if work < ATTN_PAR_MIN_WORK || threads::num_threads() < 2 {
        for (idx, o) in out.chunks_mut(span).enumerate() {
            job(idx, o);
        }
        return;
    }
    let per = if decode {
        let pieces = out.len() / span;
        pieces
            .div_ceil(RUNS_PER_THREAD * threads::num_threads())
            .max(1)
    } else {
        1
    };
    threads::for_each_chunk_mut(out, span * per, |c, run| {
        let n = run.len() / span;
        for (i, piece) in run.chunks_mut(span).enumerate() {
            let idx = c * per + i;
            if i + 1 < n {
                ahead(idx + 1);
            }
            job(idx, piece);
        }
    });
}

/// Runs of pieces per thread that [`run_tasks`] aims for: enough for
/// threads that finish early to take more, few enough that each run
/// goes through the pool's shared counter once.
const RUNS_PER_THREAD: usize = 2;

/// Keys or values of a KV cache, in the cache's element type.
#[derive(Debug, Clone, Copy)]
pub enum KvSlice<'a> {
    /// f32 elements.
    F32(&'a [f32]),
    /// f16 elements (half the memory, and half the bytes read per step).
    F16(&'a [half::f16]),
    /// Q8_0 blocks: 34 bytes per 32 elements (a little over a quarter of
    /// f32). Every range taken from it must be whole blocks.
    Q8_0(&'a [u8]),
}

impl KvSlice<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            KvSlice::F32(s) => s.len(),
            KvSlice::F16(s) => s.len(),
            KvSlice::Q8_0(s) => s.len() / Q8_0_BLOCK_BYTES * crate::quant::QK,
        }
    }

    /// True if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slice(&self, r: std::ops::Range<usize>) -> Self {
        match self {
            KvSlice::F32(s) => KvSlice::F32(&s[r]),
            KvSlice::F16(s) => KvSlice::F16(&s[r]),
            KvSlice::Q8_0(s) => {
                let qk = crate::quant::QK;
                assert!(
                    r.start.is_multiple_of(qk) && r.end.is_multiple_of(qk),
                    "a Q8_0 range must be whole blocks"
                );
                KvSlice::Q8_0(&s[r.start / qk * Q8_0_BLOCK_BYTES..r.end / qk * Q8_0_BLOCK_BYTES])
            }
        }
    }
}

impl<'a> From<&'a [f32]> for KvSlice<'a> {
    fn from(s: &'a [f32]) -> Self {
        KvSlice::F32(s)
    }
}

impl<'a> From<&'a Vec<f32>> for KvSlice<'a> {
    fn from(s: &'a Vec<f32>) -> Self {
        KvSlice::F32(s)
    }
}

impl<'a> From<&'a [half::f16]> for KvSlice<'a> {
    fn from(s: &'a [half::f16]) -> Self {
        KvSlice::F16(s)
    }
}

/// Keys and values, checked to share one dtype.
///
/// # Panics
/// If they do not.
fn same_dtype<'a>(k: KvSlice<'a>, v: KvSlice<'a>) -> (KvSlice<'a>, KvSlice<'a>) {
    assert!(
        matches!(
            (k, v),
            (KvSlice::F32(_), KvSlice::F32(_))
                | (KvSlice::F16(_), KvSlice::F16(_))
                | (KvSlice::Q8_0(_), KvSlice::Q8_0(_))
        ),
        "attention: keys and values must share one dtype"
    );
    (k, v)
}

/// Below this many multiply-adds attention stays on the calling thread.
const ATTN_PAR_MIN_WORK: usize = 1 << 13;

thread_local! {
    /// Attention scores of one (query, head) pair, reused by this thread.
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One query head against its keys and values, at the best SIMD level
/// (the whole loop runs inside one `#[target_feature]` function, so the
/// per-position dot products and axpys are inlined).
fn attend_one(q: &[f32], k: &[f32], v: &[f32], scores: &mut Vec<f32>, out: &mut [f32]) {
    simd!(avx2: attend_one(q, k, v, scores, out))
}

/// [`attend_one`] over f16 keys and values, one head at a time: the plain
/// twin. (An f16 cache on AVX2 with groups of up to four query heads per
/// KV head and heads of a multiple of 32 — SmolLM2, Llama — takes the
/// grouped kernel in `attention_rows` instead.)
fn attend_one_f16(
    q: &[f32],
    k: &[half::f16],
    v: &[half::f16],
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    scalar::attend_one_f16(q, k, v, scores, out)
}

/// One grouped-query task over a Q8_0 cache: the `group` query heads
/// (`qs`: their `head_dim` values in turn) that share one KV head's keys
/// `k` and values `v` (whole rows of blocks).
#[derive(Clone, Copy)]
struct GroupQ8<'a> {
    qs: &'a [f32],
    k: &'a [u8],
    v: &'a [u8],
    group: usize,
}

/// [`attend_one`] over Q8_0 keys and values for the query heads of
/// `task` (`out`: their outputs in turn), as llama.cpp reads a Q8_0 K
/// cache: each query head is quantized to 8-bit blocks as the activations
/// of a weight product are ([`Q8Acts`]), and each score is a Q8_0 row
/// times that row (per block of 32 an integer sum, scaled once by both
/// blocks' scales, the blocks added in order: [`q8_0_scores`], the bits
/// of [`crate::quant::dot::dot_q8_0_scalar`] on every CPU), then the
/// softmax, then the value rows widened to f32 and weighed, added in
/// position order. The cache's rows are the Q8_0 blocks of a weight file,
/// so the weights' plain dot product defines the scores as it is; each
/// head gets the bits it gets alone. `head_dim` must be a multiple of
/// 32. `scores` ends up holding the heads' scores in turn (`group × len`).
fn attend_group_q8_0(task: GroupQ8<'_>, scores: &mut Vec<f32>, out: &mut [f32]) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level says the CPU has AVX-512 F besides AVX2, FMA
        // and F16C.
        Level::Avx512 => unsafe { attend_group_q8_0_avx512(task, scores, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level says the CPU has AVX2, FMA and F16C.
        Level::Avx2 => unsafe { attend_group_q8_0_avx2(task, scores, out) },
        _ => attend_group_q8_0_body(task, scores, out),
    }
}

/// [`attend_group_q8_0`] compiled for AVX-512 (the value sums on 512-bit
/// vectors, the same operations on each value, so the same bits).
///
/// # Safety
/// The CPU has AVX-512 F, AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
unsafe fn attend_group_q8_0_avx512(task: GroupQ8<'_>, scores: &mut Vec<f32>, out: &mut [f32]) {
    attend_group_q8_0_body(task, scores, out);
}

/// [`attend_group_q8_0`] compiled for AVX2 (the value sums on 256-bit
/// vectors: each value still takes one product and one sum, the same
/// bits).
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn attend_group_q8_0_avx2(task: GroupQ8<'_>, scores: &mut Vec<f32>, out: &mut [f32]) {
    attend_group_q8_0_body(task, scores, out);
}

thread_local! {
    /// The query heads of one Q8_0 task, quantized; reused by this thread.
    static QUERIES: std::cell::RefCell<Q8Acts> = std::cell::RefCell::new(Q8Acts::default());
}

/// The body of [`attend_group_q8_0`].
#[inline(always)]
fn attend_group_q8_0_body(task: GroupQ8<'_>, scores: &mut Vec<f32>, out: &mut [f32]) {
    let GroupQ8 { qs, k, v, group } = task;
    const QK: usize = crate::quant::QK;
    let hd = qs.len() / group.max(1);
    let rb = hd / QK * Q8_0_BLOCK_BYTES;
    if hd == 0 || rb == 0 {
        return;
    }
    let len = k.len() / rb;
    let scale = 1.0 / (hd as f32).sqrt();
    // The scores: the thread's buffer, no allocation per call.
    scores.clear();
    scores.resize(group * len, 0.0);
    QUERIES.with_borrow_mut(|queries| {
        queries.quantize(qs, hd);
        q8_0_scores((&k[..len * rb], v), rb, queries, (group, scale), scores);
    });
    for h in 0..group {
        softmax_inplace(&mut scores[h * len..(h + 1) * len]);
    }
    weigh_q8_0_values(scores, v, (len, rb, hd), out);
}

/// `out[h] = Σ_p scores[h·len + p] · v_p` for each of the heads in `out`
/// (`hd` values each) over the `len` Q8_0 value rows of `v` (`rb` bytes
/// each): every value widened as [`crate::quant::q8_0::dequantize_block`]
/// widens it (`q · d`), and each output column adds its rows' products in
/// position order from zero, a product and then a sum, so the widths of
/// the vectors change no bit. One block of 32 columns at a time, each
/// row's block widened once for every head, the heads' sums held in
/// registers over the rows.
#[inline(always)]
fn weigh_q8_0_values(
    scores: &[f32],
    v: &[u8],
    (len, rb, hd): (usize, usize, usize),
    out: &mut [f32],
) {
    let group = out.len() / hd.max(1);
    if group <= 4 {
        let shape = (len, rb, hd);
        match group {
            1 => weigh_q8_0_by::<1>(scores, v, shape, out),
            2 => weigh_q8_0_by::<2>(scores, v, shape, out),
            3 => weigh_q8_0_by::<3>(scores, v, shape, out),
            _ => weigh_q8_0_by::<4>(scores, v, shape, out),
        }
        return;
    }
    for (h, o) in out.chunks_exact_mut(hd).enumerate() {
        weigh_q8_0_by::<1>(&scores[h * len..(h + 1) * len], v, (len, rb, hd), o);
    }
}

/// [`weigh_q8_0_values`] for `G` heads.
#[inline(always)]
fn weigh_q8_0_by<const G: usize>(
    scores: &[f32],
    v: &[u8],
    (len, rb, hd): (usize, usize, usize),
    out: &mut [f32],
) {
    const QK: usize = crate::quant::QK;
    for c in 0..hd / QK {
        let mut acc = [[0f32; QK]; G];
        for (p, row) in v.chunks_exact(rb).take(len).enumerate() {
            let block = &row[c * Q8_0_BLOCK_BYTES..(c + 1) * Q8_0_BLOCK_BYTES];
            let d = crate::quant::f16_at(block, 0);
            let mut x = [0f32; QK];
            for (x, &q) in x.iter_mut().zip(&block[2..]) {
                *x = f32::from(q as i8) * d;
            }
            for (h, acc) in acc.iter_mut().enumerate() {
                let w = scores[h * len + p];
                for (a, &x) in acc.iter_mut().zip(&x) {
                    *a += w * x;
                }
            }
        }
        for (h, acc) in acc.iter().enumerate() {
            out[h * hd + c * QK..h * hd + (c + 1) * QK].copy_from_slice(acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// The plain loops of the Q8_0 cache's attention, one row at a time:
    /// the query quantized in blocks of 32, each score the plain Q8_0 dot
    /// product (`d_k·d_q·Σ k·q` per block, in block order), then the value
    /// rows widened and added in position order.
    fn plain_q8_0(q: &[f32], k: &[u8], v: &[u8], scores: &mut Vec<f32>, out: &mut [f32]) {
        let hd = q.len();
        let rb = hd / crate::quant::QK * Q8_0_BLOCK_BYTES;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut row = vec![0f32; hd];
        let mut query = Q8Acts::default();
        query.quantize(q, hd);
        scores.clear();
        for kr in k.chunks_exact(rb) {
            scores.push(crate::quant::dot::dot_q8_0_scalar(kr, query.row(0)) * scale);
        }
        softmax_inplace(scores);
        out.fill(0.0);
        for (vr, &p) in v.chunks_exact(rb).zip(scores.iter()) {
            crate::quant::dequantize_unchecked(crate::DType::Q8_0, vr, &mut row);
            for (o, x) in out.iter_mut().zip(&row) {
                *o += p * x;
            }
        }
    }

    /// One head alone (the path a query takes outside the grouped
    /// dispatch): every score and output has the plain loops' bits, for
    /// any count of positions, several head widths, and keys of zeros
    /// (whose sums are signed zeros).
    #[test]
    fn q8_0_attention_has_the_plain_loops_bits() {
        let mut rng = StdRng::seed_from_u64(5);
        for hd in [32, 64, 96] {
            for len in 0..=27 {
                let mut next = |n: usize, zero: bool| -> Vec<f32> {
                    (0..n)
                        .map(|_| {
                            if zero {
                                0.0
                            } else {
                                rng.gen_range(-2.0f32..2.0)
                            }
                        })
                        .collect()
                };
                let q = next(hd, false);
                let zeros = len % 5 == 4;
                let k = crate::quant::quantize(crate::DType::Q8_0, &next(len * hd, zeros)).unwrap();
                let v = crate::quant::quantize(crate::DType::Q8_0, &next(len * hd, false)).unwrap();
                let (mut s_got, mut s_want) = (Vec::new(), Vec::new());
                let (mut got, mut want) = (vec![0.0; hd], vec![0.0; hd]);
                let task = GroupQ8 {
                    qs: &q,
                    k: &k,
                    v: &v,
                    group: 1,
                };
                attend_group_q8_0(task, &mut s_got, &mut got);
                plain_q8_0(&q, &k, &v, &mut s_want, &mut want);
                let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&s_got[..len]),
                    bits(&s_want),
                    "scores, hd {hd} len {len}"
                );
                assert_eq!(bits(&got), bits(&want), "out, hd {hd} len {len}");
            }
        }
    }

    /// The grouped Q8_0 kernel gives every head of its group the bits the
    /// plain loops give that head alone: scores and outputs, for
    /// groups of one to four heads, head widths 32 to 128 and 0 to 27
    /// positions (tails of the eight-row loop included).
    #[test]
    fn grouped_q8_0_attention_has_each_heads_bits() {
        let mut rng = StdRng::seed_from_u64(6);
        for group in 1..=4 {
            for hd in [32, 64, 128] {
                for len in 0..=27 {
                    let mut next = |n: usize| -> Vec<f32> {
                        (0..n).map(|_| rng.gen_range(-3.0f32..3.0)).collect()
                    };
                    let qs = next(group * hd);
                    let k = crate::quant::quantize(crate::DType::Q8_0, &next(len * hd)).unwrap();
                    let v = crate::quant::quantize(crate::DType::Q8_0, &next(len * hd)).unwrap();
                    let mut scores = Vec::new();
                    let mut got = vec![f32::NAN; group * hd];
                    let task = GroupQ8 {
                        qs: &qs,
                        k: &k,
                        v: &v,
                        group,
                    };
                    attend_group_q8_0(task, &mut scores, &mut got);
                    let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    for h in 0..group {
                        let (mut s_want, mut want) = (Vec::new(), vec![0.0; hd]);
                        let q = &qs[h * hd..(h + 1) * hd];
                        plain_q8_0(q, &k, &v, &mut s_want, &mut want);
                        let s_got = &scores[h * len..(h + 1) * len];
                        let o_got = &got[h * hd..(h + 1) * hd];
                        let at = format!("group {group} head {h} hd {hd} len {len}");
                        assert_eq!(bits(s_got), bits(&s_want), "scores, {at}");
                        assert_eq!(bits(o_got), bits(&want), "out, {at}");
                    }
                }
            }
        }
    }
}
