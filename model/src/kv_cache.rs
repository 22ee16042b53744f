//! The explicit key/value cache.
//!
//! During generation every new token attends to the keys and values of all
//! earlier tokens. Those keys and values depend only on the earlier tokens
//! themselves (causal attention), so they never change once computed: the
//! cache keeps them, and a decode step computes K and V for the one new
//! token only.
//!
//! # Layout
//!
//! K and V are two separate preallocated buffers of f32 or f16 (the
//! [`CacheType`]; f16 halves the memory and the bytes each decode step
//! reads, as llama.cpp's default cache does), each laid out as
//!
//! ```text
//! [slot][layer][kv_head][position][head_dim]
//! ```
//!
//! with `position` running to the fixed `capacity`. The decode step reads,
//! for one slot and one layer, every cached position of one KV head in a
//! row: with this layout that is one contiguous run of `len × head_dim`
//! floats per head, streamed front to back while computing the attention
//! scores (and again for the weighted sum of V). The per-(slot, layer) block
//! `[kv_head][capacity][head_dim]` is exactly what
//! [`engine::kernels::attention_decode`] and
//! [`engine::kernels::attention_prefill`] take. Appending a token writes
//! `n_kv_heads` short rows (one per head) at the same position index; that
//! scatter is negligible next to the reads.
//!
//! # Sequences ("slots")
//!
//! The cache holds a fixed number of independent sequences. Beam search
//! and batched generation use several; [`KvCache::reorder`] and
//! [`KvCache::copy_slot`] rearrange them without recomputing anything.
//!
//! # Overflow and the sliding window
//!
//! By default appending past `capacity` is a [`KvCacheError::ContextOverflow`].
//! For RoPE models an opt-in [`SlidingWindow`] instead evicts old rows: the
//! first `sink` rows (the "attention sink" tokens, which attention keeps
//! leaning on) stay, and the oldest half of the rest is dropped, the
//! remaining rows sliding down. Positions are *not* renumbered: every cached
//! key keeps the rotation of the absolute position it was computed at, and
//! new tokens keep counting absolute positions ([`KvCache::next_position`]),
//! so a query sees every kept key at its true distance. After an eviction
//! the row index of a token (`len`) and its absolute position differ.

use engine::device::{Buffer, Device, Rows, ops};
use engine::kernels::{AttnDims, AttnSeq, KvSlice};
use half::f16;
use half::slice::HalfFloatSliceExt;
use half::vec::HalfBitsVecExt;
use thiserror::Error;

/// Errors from KV-cache operations; each names the slot and the numbers.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KvCacheError {
    /// The element type cannot hold this shape.
    #[error("kv cache: {reason}")]
    Unsupported {
        /// Why.
        reason: String,
    },
    /// A slot index outside `0..n_slots`.
    #[error("kv cache: slot {slot} out of range (the cache has {n_slots} slots)")]
    BadSlot {
        /// The slot asked for.
        slot: usize,
        /// Number of slots.
        n_slots: usize,
    },
    /// Appending would exceed the capacity and no sliding window is enabled.
    #[error(
        "kv cache: context overflow in slot {slot}: {len} cached + {new} new tokens exceed the capacity of {capacity} positions"
    )]
    ContextOverflow {
        /// The slot.
        slot: usize,
        /// Tokens already cached.
        len: usize,
        /// Tokens being appended.
        new: usize,
        /// Positions per slot.
        capacity: usize,
    },
    /// A truncation to a longer length than cached.
    #[error("kv cache: cannot truncate slot {slot} to {to} tokens, it holds only {len}")]
    TruncateBeyondEnd {
        /// The slot.
        slot: usize,
        /// Requested length.
        to: usize,
        /// Current length.
        len: usize,
    },
    /// Rows passed to [`KvCache::write`] have the wrong length.
    #[error(
        "kv cache: layer {layer} write of {k_len}/{v_len} K/V floats is not a whole number of {row} rows"
    )]
    BadRows {
        /// The layer.
        layer: usize,
        /// Length of the K data.
        k_len: usize,
        /// Length of the V data.
        v_len: usize,
        /// Floats per token (`n_kv_heads × head_dim`).
        row: usize,
    },
    /// A write outside the reserved rows, or to a missing layer.
    #[error(
        "kv cache: write of {n} rows at row {row} in layer {layer} is outside capacity {capacity} / {n_layers} layers"
    )]
    OutOfRange {
        /// The layer.
        layer: usize,
        /// First row written.
        row: usize,
        /// Rows written.
        n: usize,
        /// Positions per slot.
        capacity: usize,
        /// Layers in the cache.
        n_layers: usize,
    },
    /// The requested shape does not fit in memory (its size overflows, or
    /// the allocator refuses it).
    #[error(
        "kv cache: {n_slots} slots × {n_layers} layers × {n_kv_heads} kv heads × {capacity} positions × {head_dim} is too large: more memory than the system will give"
    )]
    TooLarge {
        /// Slots.
        n_slots: usize,
        /// Layers.
        n_layers: usize,
        /// KV heads.
        n_kv_heads: usize,
        /// Positions.
        capacity: usize,
        /// Head size.
        head_dim: usize,
    },
    /// The device holding the cache failed, or an operation needs the
    /// cache on the host.
    #[error("kv cache: {0}")]
    Device(String),
    /// The sliding window cannot make room for this many tokens at once.
    #[error(
        "kv cache: sliding window with {sink} sink rows cannot take {new} tokens at once (capacity {capacity})"
    )]
    WindowTooSmall {
        /// Sink rows kept.
        sink: usize,
        /// Tokens being appended.
        new: usize,
        /// Positions per slot.
        capacity: usize,
    },
}

/// Opt-in eviction policy for RoPE models (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindow {
    /// Rows at the start of the sequence that are never evicted.
    pub sink: usize,
}

/// The shape of one cache: layers, KV heads and head size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvShape {
    /// Transformer blocks.
    pub n_layers: usize,
    /// Key/value heads per block.
    pub n_kv_heads: usize,
    /// Elements per head.
    pub head_dim: usize,
}

/// Where an append goes: the first row index and the absolute position of
/// the first new token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// Row index (0-based, `< capacity`) of the first new token.
    pub row: usize,
    /// Absolute position of the first new token (for RoPE / learned positions).
    pub position: usize,
}

/// The element type of a KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheType {
    /// 32-bit floats: exact.
    #[default]
    F32,
    /// 16-bit floats: half the memory; keys and values rounded to f16
    /// (relative error ≤ 2⁻¹¹).
    F16,
    /// Q8_0 blocks (an f16 scale per 32 values and 8-bit codes, as the
    /// weights use): 34 bytes per 32 values; error ≤ half a step of each
    /// block's scale. Needs a head size that is a multiple of 32.
    Q8_0,
}

impl CacheType {
    /// Bytes of `n` elements (`n` a multiple of 32 for Q8_0).
    pub fn bytes_for(self, n: usize) -> usize {
        match self {
            CacheType::F32 => 4 * n,
            CacheType::F16 => 2 * n,
            CacheType::Q8_0 => n / engine::quant::QK * Q8_0_BLOCK,
        }
    }
}

/// Bytes of one Q8_0 block.
const Q8_0_BLOCK: usize = 34;

impl std::fmt::Display for CacheType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheType::F32 => "f32",
            CacheType::F16 => "f16",
            CacheType::Q8_0 => "q8_0",
        })
    }
}

impl std::str::FromStr for CacheType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(CacheType::F32),
            "f16" => Ok(CacheType::F16),
            "q8_0" => Ok(CacheType::Q8_0),
            _ => Err(format!("unknown cache type {s:?} (f32, f16 or q8_0)")),
        }
    }
}

/// One of the two buffers (K or V), in the cache's element type.
#[derive(Debug, Clone)]
enum KvBuf {
    F32(Vec<f32>),
    F16(Vec<f16>),
    /// Q8_0 blocks; element ranges are whole blocks (rows are whole heads).
    Q8_0(Vec<u8>),
    /// f32 on a device ([`KvCache::to_device`]), written and read by the
    /// engine's device operations.
    Device(Buffer),
}

fn device_error(e: engine::EngineError) -> KvCacheError {
    KvCacheError::Device(e.to_string())
}

/// The byte range of Q8_0 blocks holding elements `r`.
fn q8_bytes(r: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let qk = engine::quant::QK;
    r.start / qk * Q8_0_BLOCK..r.end / qk * Q8_0_BLOCK
}

impl KvBuf {
    /// `n` zeros of `ty`, or `None` when the memory is refused.
    fn zeros(ty: CacheType, n: usize) -> Option<KvBuf> {
        use engine::alloc::try_zeros;
        Some(match ty {
            CacheType::F32 => KvBuf::F32(try_zeros(n)?),
            // Zero bits are f16 zero; a zeroed allocation comes from the
            // allocator's zeroed pages, so untouched positions cost no
            // memory (as for the f32 cache).
            CacheType::F16 => KvBuf::F16(try_zeros::<u16>(n)?.reinterpret_into()),
            // All-zero blocks are a zero scale and zero codes: zeros.
            CacheType::Q8_0 => KvBuf::Q8_0(try_zeros(CacheType::Q8_0.bytes_for(n))?),
        })
    }

    fn copy_within(&mut self, src: std::ops::Range<usize>, dst: usize) -> Result<(), KvCacheError> {
        match self {
            KvBuf::F32(b) => b.copy_within(src, dst),
            KvBuf::F16(b) => b.copy_within(src, dst),
            KvBuf::Q8_0(b) => {
                let d = q8_bytes(dst..dst).start;
                b.copy_within(q8_bytes(src), d)
            }
            KvBuf::Device(b) => b
                .copy_within(src.start, dst, src.len())
                .map_err(device_error)?,
        }
        Ok(())
    }

    /// Store `x` at `at` (rounded to f16 for an f16 buffer, quantized for
    /// Q8_0, whose values a forward pass always gives finite).
    fn write(&mut self, at: usize, x: &[f32]) -> Result<(), KvCacheError> {
        match self {
            KvBuf::Q8_0(b) => {
                let r = q8_bytes(at..at + x.len());
                for (xb, ob) in x
                    .chunks_exact(engine::quant::QK)
                    .zip(b[r].chunks_exact_mut(Q8_0_BLOCK))
                {
                    engine::quant::q8_0::quantize_block(xb, ob);
                }
            }
            KvBuf::F32(b) => b[at..at + x.len()].copy_from_slice(x),
            // Eight at a time with F16C where the CPU has it (the same
            // round-to-nearest-even as one at a time).
            KvBuf::F16(b) => b[at..at + x.len()].convert_from_f32_slice(x),
            KvBuf::Device(b) => b.write(at, x).map_err(device_error)?,
        }
        Ok(())
    }

    /// Prefetch the cache lines of elements `at..at + n` (host buffers).
    fn prefetch(&self, at: usize, n: usize) {
        let (ptr, bytes) = match self {
            KvBuf::F32(b) => (b.as_ptr().wrapping_add(at) as *const u8, 4 * n),
            KvBuf::F16(b) => (b.as_ptr().wrapping_add(at) as *const u8, 2 * n),
            KvBuf::Q8_0(b) => {
                let r = q8_bytes(at..at + n);
                (b.as_ptr().wrapping_add(r.start), r.len())
            }
            KvBuf::Device(_) => return,
        };
        #[cfg(target_arch = "x86_64")]
        for line in (0..bytes).step_by(64) {
            // SAFETY: a prefetch never faults and reads nothing; the
            // address is only computed.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    ptr.wrapping_add(line) as *const i8,
                )
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (ptr, bytes);
    }

    /// Copy `n` elements from `other` at `src` to `dst` (same type).
    fn copy_from(
        &mut self,
        dst: usize,
        other: &KvBuf,
        src: usize,
        n: usize,
    ) -> Result<(), KvCacheError> {
        match (self, other) {
            (KvBuf::F32(a), KvBuf::F32(b)) => a[dst..dst + n].copy_from_slice(&b[src..src + n]),
            (KvBuf::F16(a), KvBuf::F16(b)) => a[dst..dst + n].copy_from_slice(&b[src..src + n]),
            (KvBuf::Q8_0(a), KvBuf::Q8_0(b)) => {
                a[q8_bytes(dst..dst + n)].copy_from_slice(&b[q8_bytes(src..src + n)])
            }
            (KvBuf::Device(a), KvBuf::Device(b)) => {
                a.copy_from(dst, b, src, n).map_err(device_error)?
            }
            _ => {
                return Err(KvCacheError::Device(
                    "copying between caches of different types or devices".into(),
                ));
            }
        }
        Ok(())
    }

    /// Elements `r` in host memory, as the CPU's attention kernels take
    /// them; `None` for a buffer on a device.
    fn view(&self, r: std::ops::Range<usize>) -> Option<KvSlice<'_>> {
        match self {
            KvBuf::F32(b) => Some(KvSlice::F32(&b[r])),
            KvBuf::F16(b) => Some(KvSlice::F16(&b[r])),
            KvBuf::Q8_0(b) => Some(KvSlice::Q8_0(&b[q8_bytes(r)])),
            KvBuf::Device(_) => None,
        }
    }

    /// Elements `r` as f32 on the host (`None` if a device fails to copy them).
    fn to_f32(&self, r: std::ops::Range<usize>) -> Option<Vec<f32>> {
        Some(match self {
            KvBuf::F32(b) => b[r].to_vec(),
            KvBuf::F16(b) => b[r].iter().map(|x| x.to_f32()).collect(),
            KvBuf::Device(b) => b.read(r).ok()?,
            KvBuf::Q8_0(b) => {
                let mut out = vec![0f32; r.len()];
                for (blk, o) in b[q8_bytes(r)]
                    .chunks_exact(Q8_0_BLOCK)
                    .zip(out.chunks_exact_mut(engine::quant::QK))
                {
                    engine::quant::q8_0::dequantize_block(blk, o);
                }
                out
            }
        })
    }
}

/// Preallocated K and V for every layer of `n_slots` sequences.
#[derive(Debug, Clone)]
pub struct KvCache {
    shape: KvShape,
    capacity: usize,
    n_slots: usize,
    ty: CacheType,
    k: KvBuf,
    v: KvBuf,
    lens: Vec<usize>,
    next_pos: Vec<usize>,
    window: Option<SlidingWindow>,
}

// ANCHOR: bytes_formula
/// Bytes of a KV cache: 2 (K and V) × layers × positions × kv_heads ×
/// head_dim × bytes per element.
pub fn kv_bytes(shape: KvShape, positions: usize, bytes_per_elem: usize) -> usize {
    2 * shape.n_layers * positions * shape.n_kv_heads * shape.head_dim * bytes_per_elem
}
// ANCHOR_END: bytes_formula

impl KvCache {
    /// A cache of `n_slots` sequences of at most `capacity` positions each,
    /// zero-filled, of f32. Overflow is an error (see
    /// [`KvCache::with_sliding_window`]).
    ///
    /// # Errors
    /// [`KvCacheError::TooLarge`] if the element count overflows `usize` or
    /// the system refuses the memory.
    pub fn new(shape: KvShape, capacity: usize, n_slots: usize) -> Result<Self, KvCacheError> {
        Self::with_type(shape, capacity, n_slots, CacheType::F32)
    }

    /// As [`KvCache::new`], with elements of type `ty`.
    ///
    /// # Errors
    /// [`KvCacheError::TooLarge`] if the element count overflows `usize` or
    /// the system refuses the memory.
    pub fn with_type(
        shape: KvShape,
        capacity: usize,
        n_slots: usize,
        ty: CacheType,
    ) -> Result<Self, KvCacheError> {
        if ty == CacheType::Q8_0 && !shape.head_dim.is_multiple_of(engine::quant::QK) {
            return Err(KvCacheError::Unsupported {
                reason: format!(
                    "a q8_0 cache needs a head size that is a multiple of {}, not {}",
                    engine::quant::QK,
                    shape.head_dim
                ),
            });
        }
        let too_large = || KvCacheError::TooLarge {
            n_slots,
            n_layers: shape.n_layers,
            n_kv_heads: shape.n_kv_heads,
            capacity,
            head_dim: shape.head_dim,
        };
        let total = n_slots
            .checked_mul(shape.n_layers)
            .and_then(|x| x.checked_mul(shape.n_kv_heads))
            .and_then(|x| x.checked_mul(capacity))
            .and_then(|x| x.checked_mul(shape.head_dim))
            .and_then(|x| x.checked_mul(2 * std::mem::size_of::<f32>()).map(|_| x))
            .ok_or_else(too_large)?;
        Ok(Self {
            shape,
            capacity,
            n_slots,
            ty,
            k: KvBuf::zeros(ty, total).ok_or_else(too_large)?,
            v: KvBuf::zeros(ty, total).ok_or_else(too_large)?,
            lens: vec![0; n_slots],
            next_pos: vec![0; n_slots],
            window: None,
        })
    }

    /// Enable the sliding window: on overflow keep the first `sink` rows and
    /// evict the oldest half of the rest. Only meaningful for models whose
    /// positions are relative (RoPE); the model decides whether to allow it.
    pub fn with_sliding_window(mut self, sink: usize) -> Self {
        self.window = Some(SlidingWindow {
            sink: sink.min(self.capacity),
        });
        self
    }

    /// An empty cache of the same shape, capacity, slots and window with
    /// elements of type `ty`.
    ///
    /// # Errors
    /// [`KvCacheError::TooLarge`] as [`KvCache::new`].
    pub fn retyped(&self, ty: CacheType) -> Result<KvCache, KvCacheError> {
        let mut c = KvCache::with_type(self.shape, self.capacity, self.n_slots, ty)?;
        c.window = self.window;
        Ok(c)
    }

    /// The sliding-window policy, if enabled.
    pub fn sliding_window(&self) -> Option<SlidingWindow> {
        self.window
    }

    /// Layers, KV heads and head size.
    pub fn shape(&self) -> KvShape {
        self.shape
    }

    /// Positions per slot.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// True when the cache evicts old positions instead of failing when
    /// full ([`KvCache::with_sliding_window`]).
    pub fn slides(&self) -> bool {
        self.window.is_some()
    }

    /// Where K and V start on a device (zeros for a cache on the host): a
    /// CUDA graph that reads the cache names it by them.
    pub fn device_addresses(&self) -> [u64; 2] {
        match (&self.k, &self.v) {
            (KvBuf::Device(k), KvBuf::Device(v)) => [k.address(), v.address()],
            _ => [0, 0],
        }
    }

    /// Number of sequence slots.
    pub fn n_slots(&self) -> usize {
        self.n_slots
    }

    /// Bytes allocated for K and V together: for f32 and f16,
    /// `kv_bytes(shape, capacity × n_slots, bytes per element)`; Q8_0 stores
    /// 34 bytes per 32 elements.
    pub fn bytes(&self) -> usize {
        2 * self.ty.bytes_for(
            self.shape.n_layers
                * self.capacity
                * self.n_slots
                * self.shape.n_kv_heads
                * self.shape.head_dim,
        )
    }

    /// The element type.
    pub fn cache_type(&self) -> CacheType {
        self.ty
    }

    fn check_slot(&self, slot: usize) -> Result<(), KvCacheError> {
        if slot < self.n_slots {
            Ok(())
        } else {
            Err(KvCacheError::BadSlot {
                slot,
                n_slots: self.n_slots,
            })
        }
    }

    /// Tokens (rows) cached in `slot`; 0 for an out-of-range slot.
    pub fn len(&self, slot: usize) -> usize {
        self.lens.get(slot).copied().unwrap_or(0)
    }

    /// Whether `slot` holds no tokens.
    pub fn is_empty(&self, slot: usize) -> bool {
        self.len(slot) == 0
    }

    /// Absolute position the next token of `slot` will have. Equal to
    /// [`KvCache::len`] unless the sliding window evicted rows.
    pub fn next_position(&self, slot: usize) -> usize {
        self.next_pos.get(slot).copied().unwrap_or(0)
    }

    fn layer_offset(&self, slot: usize, layer: usize) -> usize {
        (slot * self.shape.n_layers + layer) * self.layer_len()
    }

    /// Floats in one (slot, layer) block: `n_kv_heads × capacity × head_dim`.
    pub fn layer_len(&self) -> usize {
        self.shape.n_kv_heads * self.capacity * self.shape.head_dim
    }

    // ANCHOR: reserve
    /// Make room for `n` new tokens in `slot` and say where they go. With a
    /// sliding window this may evict rows; without one it fails on overflow.
    /// Nothing is counted as cached until [`KvCache::commit`].
    ///
    /// # Errors
    /// [`KvCacheError::BadSlot`], [`KvCacheError::ContextOverflow`] or
    /// [`KvCacheError::WindowTooSmall`].
    pub fn reserve(&mut self, slot: usize, n: usize) -> Result<Reservation, KvCacheError> {
        self.check_slot(slot)?;
        let len = self.lens[slot];
        if len + n > self.capacity {
            match self.window {
                None => {
                    return Err(KvCacheError::ContextOverflow {
                        slot,
                        len,
                        new: n,
                        capacity: self.capacity,
                    });
                }
                Some(SlidingWindow { sink }) => {
                    if sink + n > self.capacity {
                        return Err(KvCacheError::WindowTooSmall {
                            sink,
                            new: n,
                            capacity: self.capacity,
                        });
                    }
                    let need = len + n - self.capacity;
                    let drop = need.max((self.capacity - sink) / 2).min(len - sink);
                    self.evict(slot, sink, drop)?;
                }
            }
        }
        Ok(Reservation {
            row: self.lens[slot],
            position: self.next_pos[slot],
        })
    }

    // ANCHOR_END: reserve

    /// Drop rows `sink..sink+drop` of every layer and head of `slot`,
    /// sliding the later rows down. Positions keep counting.
    fn evict(&mut self, slot: usize, sink: usize, drop: usize) -> Result<(), KvCacheError> {
        let len = self.lens[slot];
        let hd = self.shape.head_dim;
        for layer in 0..self.shape.n_layers {
            let base = self.layer_offset(slot, layer);
            for h in 0..self.shape.n_kv_heads {
                let head = base + h * self.capacity * hd;
                let src = head + (sink + drop) * hd..head + len * hd;
                let dst = head + sink * hd;
                self.k.copy_within(src.clone(), dst)?;
                self.v.copy_within(src, dst)?;
            }
        }
        self.lens[slot] = len - drop;
        Ok(())
    }

    // ANCHOR: write
    /// Write K and V of `n` consecutive tokens for one layer at rows
    /// `row..row+n` of `slot`. `k` and `v` are token-major,
    /// `[n][n_kv_heads × head_dim]` (the output of the K/V projections); the
    /// cache scatters them into its head-major layout.
    ///
    /// # Errors
    /// On a bad slot, a layer out of range, rows past the capacity, or data
    /// that is not a whole number of token rows.
    pub fn write(
        &mut self,
        slot: usize,
        layer: usize,
        row: usize,
        k: &[f32],
        v: &[f32],
    ) -> Result<(), KvCacheError> {
        self.check_slot(slot)?;
        let hd = self.shape.head_dim;
        let width = self.shape.n_kv_heads * hd;
        if width == 0 || k.len() != v.len() || !k.len().is_multiple_of(width) {
            return Err(KvCacheError::BadRows {
                layer,
                k_len: k.len(),
                v_len: v.len(),
                row: width,
            });
        }
        let n = k.len() / width;
        if layer >= self.shape.n_layers || row + n > self.capacity {
            return Err(KvCacheError::OutOfRange {
                layer,
                row,
                n,
                capacity: self.capacity,
                n_layers: self.shape.n_layers,
            });
        }
        let base = self.layer_offset(slot, layer);
        for (t, (kt, vt)) in k.chunks_exact(width).zip(v.chunks_exact(width)).enumerate() {
            for h in 0..self.shape.n_kv_heads {
                let at = base + (h * self.capacity + row + t) * hd;
                self.k.write(at, &kt[h * hd..(h + 1) * hd])?;
                self.v.write(at, &vt[h * hd..(h + 1) * hd])?;
            }
        }
        Ok(())
    }

    // ANCHOR_END: write

    /// Ask the CPU to bring into cache the places where rows `row..row + n`
    /// of `slot`'s keys and values for `layer` will be written, so that the
    /// write, which comes after the products that compute them, does not
    /// wait for each line in turn. A hint only: nothing is read or
    /// written, and a bad slot, layer or row is ignored (the write
    /// reports it).
    pub fn prefetch_rows(&self, slot: usize, layer: usize, row: usize, n: usize) {
        if slot >= self.n_slots || layer >= self.shape.n_layers || row + n > self.capacity {
            return;
        }
        let hd = self.shape.head_dim;
        let base = self.layer_offset(slot, layer);
        for h in 0..self.shape.n_kv_heads {
            let at = base + (h * self.capacity + row) * hd;
            self.k.prefetch(at, n * hd);
            self.v.prefetch(at, n * hd);
        }
    }

    /// Write the keys and values of `k.count` consecutive tokens for one
    /// layer at rows `row..` of `slot`, reading them from `src` where they
    /// lie in rows (inside the fused QKV rows of a forward pass: `k` and `v`
    /// say where). The cache and `src` are on the same device.
    ///
    /// # Errors
    /// As [`KvCache::write`]; [`KvCacheError::Device`] for a buffer on
    /// another device or a device's failure.
    pub fn write_rows(
        &mut self,
        slot: usize,
        layer: usize,
        row: usize,
        src: &Buffer,
        k: Rows,
        v: Rows,
    ) -> Result<(), KvCacheError> {
        self.check_slot(slot)?;
        let width = self.shape.n_kv_heads * self.shape.head_dim;
        if layer >= self.shape.n_layers || row + k.count > self.capacity || k.count != v.count {
            return Err(KvCacheError::OutOfRange {
                layer,
                row,
                n: k.count.max(v.count),
                capacity: self.capacity,
                n_layers: self.shape.n_layers,
            });
        }
        let base = self.layer_offset(slot, layer);
        let dims = self.dims(0);
        if let (KvBuf::Device(kb), KvBuf::Device(vb)) = (&mut self.k, &mut self.v) {
            return ops::kv_write(kb, vb, base, src, k, v, dims, row).map_err(device_error);
        }
        let Some(s) = src.as_host() else {
            return Err(KvCacheError::Device(
                "rows on a GPU for a cache on the host".into(),
            ));
        };
        let fits = |r: Rows| r.count == 0 || r.at + (r.count - 1) * r.stride + width <= s.len();
        if width > k.stride.min(v.stride) || !fits(k) || !fits(v) {
            return Err(KvCacheError::BadRows {
                layer,
                k_len: s.len(),
                v_len: s.len(),
                row: width,
            });
        }
        // A GPU writes keys and values with one kernel.
        ops::count_launches(1);
        for t in 0..k.count {
            let (kt, vt) = (k.at + t * k.stride, v.at + t * v.stride);
            self.write(slot, layer, row + t, &s[kt..kt + width], &s[vt..vt + width])?;
        }
        Ok(())
    }

    /// The attention dimensions of this cache for `n_heads` query heads.
    fn dims(&self, n_heads: usize) -> AttnDims {
        AttnDims {
            n_heads,
            n_kv_heads: self.shape.n_kv_heads,
            head_dim: self.shape.head_dim,
            capacity: self.capacity,
        }
    }

    /// Causal attention at layer `layer` for a batch of sequences whose
    /// queries are stacked in `q`, one row every `q_stride` values (the
    /// first `n_heads × head_dim` of each row: the fused QKV rows can be
    /// read in place), each sequence's rows in turn: sequence `(slot, row, len)` has `len` new
    /// rows whose keys and values are already written at cache rows
    /// `row..row + len`, and its query `i` sees rows `0..=row + i`. On the
    /// host this is one hand-off to the thread pool for the whole batch
    /// ([`engine::kernels::attention_stacked`]); on a GPU, one launch per
    /// sequence.
    ///
    /// # Errors
    /// A bad slot or layer, sizes that disagree, buffers on another device.
    pub fn attend(
        &self,
        layer: usize,
        seqs: &[(usize, usize, usize)],
        (q, q_stride): (&Buffer, usize),
        n_heads: usize,
        out: &mut Buffer,
    ) -> Result<(), KvCacheError> {
        let dims = self.dims(n_heads);
        let width = n_heads * self.shape.head_dim;
        let t: usize = seqs.iter().map(|s| s.2).sum();
        if q_stride < width || q.len() != t * q_stride || out.len() != t * width {
            return Err(KvCacheError::BadRows {
                layer,
                k_len: q.len(),
                v_len: out.len(),
                row: width,
            });
        }
        if let (KvBuf::Device(kb), KvBuf::Device(vb)) = (&self.k, &self.v) {
            let mut at = 0;
            for &(slot, row, len) in seqs {
                self.check_slot(slot)?;
                let rows = |stride| Rows {
                    at: at * stride,
                    stride,
                    count: len,
                };
                let base = self.layer_offset(slot, layer);
                let (qr, or) = (rows(q_stride), rows(width));
                ops::attention(q, qr, kb, vb, base, dims, row + 1, out, or)
                    .map_err(device_error)?;
                at += len;
            }
            return Ok(());
        }
        let attn_seqs = seqs
            .iter()
            .map(|&(slot, row, len)| {
                let (k, v) = self.layer_kv(slot, layer)?;
                Ok(AttnSeq {
                    k,
                    v,
                    start_pos: row,
                    len,
                })
            })
            .collect::<Result<Vec<_>, KvCacheError>>()?;
        // The CPU kernel reads the queries in place (the fused QKV rows).
        let Some((q, o)) = q.as_host().zip(out.as_host_mut()) else {
            return Err(KvCacheError::Device(
                "queries on a GPU for a cache on the host".into(),
            ));
        };
        // A GPU launches one attention kernel per sequence.
        ops::count_launches(seqs.len());
        engine::kernels::attention_stacked((q, q_stride), &attn_seqs, dims, o);
        Ok(())
    }

    /// This cache on `device`, its contents copied. On a GPU the elements
    /// are f32 (the only type the GPU's kernels read so far).
    ///
    /// # Errors
    /// [`KvCacheError::Unsupported`] for an f16 or Q8_0 cache on a GPU;
    /// [`KvCacheError::Device`] for the device's failure.
    pub fn to_device(&self, device: &Device) -> Result<KvCache, KvCacheError> {
        let move_buf = |b: &KvBuf| -> Result<KvBuf, KvCacheError> {
            Ok(match (b, device.is_cpu()) {
                (KvBuf::Device(d), true) => KvBuf::F32(d.to_host().map_err(device_error)?),
                (KvBuf::Device(d), false) => KvBuf::Device(
                    Buffer::from_host(device, &d.to_host().map_err(device_error)?)
                        .map_err(device_error)?,
                ),
                (other, true) => other.clone(),
                (KvBuf::F32(v), false) => {
                    KvBuf::Device(Buffer::from_host(device, v).map_err(device_error)?)
                }
                (_, false) => {
                    return Err(KvCacheError::Unsupported {
                        reason: format!(
                            "a {} cache on {}: the GPU's kernels read f32 caches (--cache-type f32)",
                            self.ty,
                            device.name()
                        ),
                    });
                }
            })
        };
        Ok(KvCache {
            k: move_buf(&self.k)?,
            v: move_buf(&self.v)?,
            ..self.clone_meta()
        })
    }

    /// The device holding the keys and values.
    pub fn device(&self) -> Device {
        match &self.k {
            KvBuf::Device(b) => b.device(),
            _ => Device::Cpu,
        }
    }

    /// Everything but the buffers (empty host vectors in their place).
    fn clone_meta(&self) -> KvCache {
        KvCache {
            shape: self.shape,
            capacity: self.capacity,
            n_slots: self.n_slots,
            ty: self.ty,
            k: KvBuf::F32(Vec::new()),
            v: KvBuf::F32(Vec::new()),
            lens: self.lens.clone(),
            next_pos: self.next_pos.clone(),
            window: self.window,
        }
    }

    /// Count `n` reserved-and-written tokens as cached in `slot`.
    ///
    /// # Errors
    /// [`KvCacheError::BadSlot`] or [`KvCacheError::ContextOverflow`].
    pub fn commit(&mut self, slot: usize, n: usize) -> Result<(), KvCacheError> {
        self.check_slot(slot)?;
        let len = self.lens[slot];
        if len + n > self.capacity {
            return Err(KvCacheError::ContextOverflow {
                slot,
                len,
                new: n,
                capacity: self.capacity,
            });
        }
        self.lens[slot] = len + n;
        self.next_pos[slot] += n;
        Ok(())
    }

    /// Append `n` tokens to `slot` in one call: `k_layers[l]` and
    /// `v_layers[l]` hold layer `l`'s rows, token-major as in
    /// [`KvCache::write`]. Returns where they went.
    ///
    /// # Errors
    /// As [`KvCache::reserve`] and [`KvCache::write`]; also
    /// [`KvCacheError::OutOfRange`] if the number of layers differs.
    pub fn append(
        &mut self,
        slot: usize,
        k_layers: &[&[f32]],
        v_layers: &[&[f32]],
    ) -> Result<Reservation, KvCacheError> {
        let width = self.shape.n_kv_heads * self.shape.head_dim;
        let n = k_layers.first().map_or(0, |k| k.len() / width.max(1));
        if k_layers.len() != self.shape.n_layers || v_layers.len() != self.shape.n_layers {
            return Err(KvCacheError::OutOfRange {
                layer: k_layers.len().max(v_layers.len()),
                row: self.len(slot),
                n,
                capacity: self.capacity,
                n_layers: self.shape.n_layers,
            });
        }
        let r = self.reserve(slot, n)?;
        for (layer, (k, v)) in k_layers.iter().zip(v_layers).enumerate() {
            self.write(slot, layer, r.row, k, v)?;
        }
        self.commit(slot, n)?;
        Ok(r)
    }

    /// K of one (slot, layer) as f32: `[n_kv_heads][capacity][head_dim]`;
    /// rows at and past [`KvCache::len`] are stale. `None` if out of range.
    pub fn keys(&self, slot: usize, layer: usize) -> Option<Vec<f32>> {
        self.block_range(slot, layer).and_then(|r| self.k.to_f32(r))
    }

    /// V of one (slot, layer), laid out like [`KvCache::keys`].
    pub fn values(&self, slot: usize, layer: usize) -> Option<Vec<f32>> {
        self.block_range(slot, layer).and_then(|r| self.v.to_f32(r))
    }

    /// K and V of one (slot, layer) together, as the attention kernels take them.
    ///
    /// # Errors
    /// [`KvCacheError::BadSlot`] or [`KvCacheError::OutOfRange`].
    pub fn layer_kv(
        &self,
        slot: usize,
        layer: usize,
    ) -> Result<(KvSlice<'_>, KvSlice<'_>), KvCacheError> {
        self.check_slot(slot)?;
        let r = self
            .block_range(slot, layer)
            .ok_or(KvCacheError::OutOfRange {
                layer,
                row: 0,
                n: 0,
                capacity: self.capacity,
                n_layers: self.shape.n_layers,
            })?;
        match (self.k.view(r.clone()), self.v.view(r)) {
            (Some(k), Some(v)) => Ok((k, v)),
            _ => Err(KvCacheError::Device(
                "the cache is on a GPU; its keys and values are read there".into(),
            )),
        }
    }

    fn block_range(&self, slot: usize, layer: usize) -> Option<std::ops::Range<usize>> {
        if slot >= self.n_slots || layer >= self.shape.n_layers {
            return None;
        }
        let o = self.layer_offset(slot, layer);
        Some(o..o + self.layer_len())
    }

    /// The cached key of token row `row`, KV head `head`, in `slot`/`layer`, as f32.
    pub fn key_row(&self, slot: usize, layer: usize, head: usize, row: usize) -> Option<Vec<f32>> {
        if slot >= self.n_slots
            || layer >= self.shape.n_layers
            || head >= self.shape.n_kv_heads
            || row >= self.len(slot)
        {
            return None;
        }
        let hd = self.shape.head_dim;
        let o = self.layer_offset(slot, layer) + (head * self.capacity + row) * hd;
        self.k.to_f32(o..o + hd)
    }

    /// Roll `slot` back to its first `len` rows (the rest become stale).
    ///
    /// # Errors
    /// [`KvCacheError::BadSlot`] or [`KvCacheError::TruncateBeyondEnd`].
    pub fn truncate(&mut self, slot: usize, len: usize) -> Result<(), KvCacheError> {
        self.check_slot(slot)?;
        let cur = self.lens[slot];
        if len > cur {
            return Err(KvCacheError::TruncateBeyondEnd {
                slot,
                to: len,
                len: cur,
            });
        }
        self.lens[slot] = len;
        self.next_pos[slot] -= cur - len;
        Ok(())
    }

    /// Forget everything in `slot` (out-of-range slots are ignored).
    pub fn clear(&mut self, slot: usize) {
        if slot < self.n_slots {
            self.lens[slot] = 0;
            self.next_pos[slot] = 0;
        }
    }

    /// Forget every slot.
    pub fn clear_all(&mut self) {
        self.lens.fill(0);
        self.next_pos.fill(0);
    }

    /// Copy slot `src`'s cached rows (every layer and head) over slot `dst`
    /// ("fork" a sequence, e.g. for beam search).
    ///
    /// # Errors
    /// [`KvCacheError::BadSlot`] for either slot.
    pub fn copy_slot(&mut self, src: usize, dst: usize) -> Result<(), KvCacheError> {
        self.check_slot(src)?;
        self.check_slot(dst)?;
        if src == dst {
            return Ok(());
        }
        let len = self.lens[src];
        let hd = self.shape.head_dim;
        for layer in 0..self.shape.n_layers {
            let (s, d) = (self.layer_offset(src, layer), self.layer_offset(dst, layer));
            for h in 0..self.shape.n_kv_heads {
                let off = h * self.capacity * hd;
                let range = s + off..s + off + len * hd;
                self.k.copy_within(range.clone(), d + off)?;
                self.v.copy_within(range, d + off)?;
            }
        }
        self.lens[dst] = len;
        self.next_pos[dst] = self.next_pos[src];
        Ok(())
    }

    /// Rearrange slots: afterwards slot `i` holds what slot `sources[i]`
    /// held before (a source may feed several slots). Slots at
    /// `i >= sources.len()` are unchanged.
    ///
    /// # Errors
    /// [`KvCacheError::BadSlot`] if `sources` is longer than the slot count
    /// or names a missing slot; the cache is unchanged then.
    pub fn reorder(&mut self, sources: &[usize]) -> Result<(), KvCacheError> {
        if sources.len() > self.n_slots {
            return Err(KvCacheError::BadSlot {
                slot: sources.len() - 1,
                n_slots: self.n_slots,
            });
        }
        for &s in sources {
            self.check_slot(s)?;
        }
        // Sources whose own slot is overwritten by something else must be
        // saved first.
        let mut saved: Vec<(usize, KvCache)> = Vec::new();
        for (i, &s) in sources.iter().enumerate() {
            #[cfg(not(feature = "mutant-kv-reorder-unsaved"))]
            let clobbered = sources.get(s).is_some_and(|&src_of_s| src_of_s != s);
            // Mutant: never save a source, so a later copy reads a slot
            // that an earlier copy of this reorder already overwrote.
            #[cfg(feature = "mutant-kv-reorder-unsaved")]
            let clobbered = false;
            if s != i && clobbered && !saved.iter().any(|(id, _)| *id == s) {
                let mut one = KvCache::with_type(self.shape, self.capacity, 1, self.ty)?;
                one.copy_from(self, s, 0)?;
                saved.push((s, one));
            }
        }
        for (i, &s) in sources.iter().enumerate() {
            if s == i {
                continue;
            }
            match saved.iter().position(|(id, _)| *id == s) {
                Some(p) => {
                    let src = saved[p].1.clone();
                    self.copy_from(&src, 0, i)?;
                }
                None => self.copy_slot(s, i)?,
            }
        }
        Ok(())
    }

    /// Copy `other`'s slot `src` into this cache's slot `dst` (same shape
    /// and capacity; checked by the callers).
    fn copy_from(&mut self, other: &KvCache, src: usize, dst: usize) -> Result<(), KvCacheError> {
        let len = other.lens[src];
        let hd = self.shape.head_dim;
        for layer in 0..self.shape.n_layers {
            let (s, d) = (
                other.layer_offset(src, layer),
                self.layer_offset(dst, layer),
            );
            for h in 0..self.shape.n_kv_heads {
                let off = h * self.capacity * hd;
                self.k.copy_from(d + off, &other.k, s + off, len * hd)?;
                self.v.copy_from(d + off, &other.v, s + off, len * hd)?;
            }
        }
        self.lens[dst] = len;
        self.next_pos[dst] = other.next_pos[src];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: KvShape = KvShape {
        n_layers: 2,
        n_kv_heads: 3,
        head_dim: 4,
    };

    /// Token rows whose values encode (token, layer, element).
    fn rows(first: usize, n: usize, layer: usize, sign: f32) -> Vec<f32> {
        let w = SHAPE.n_kv_heads * SHAPE.head_dim;
        (0..n * w)
            .map(|i| sign * ((first + i / w) * 1000 + layer * 100 + i % w) as f32)
            .collect()
    }

    fn push(c: &mut KvCache, slot: usize, first: usize, n: usize) -> Reservation {
        let ks: Vec<Vec<f32>> = (0..SHAPE.n_layers)
            .map(|l| rows(first, n, l, 1.0))
            .collect();
        let vs: Vec<Vec<f32>> = (0..SHAPE.n_layers)
            .map(|l| rows(first, n, l, -1.0))
            .collect();
        let kr: Vec<&[f32]> = ks.iter().map(|x| x.as_slice()).collect();
        let vr: Vec<&[f32]> = vs.iter().map(|x| x.as_slice()).collect();
        c.append(slot, &kr, &vr).unwrap()
    }

    fn token_of(c: &KvCache, slot: usize, layer: usize, row: usize) -> usize {
        (c.key_row(slot, layer, 0, row).unwrap()[0] as usize) / 1000
    }

    #[test]
    fn a_cache_larger_than_memory_is_an_error_not_an_abort() {
        // About 2^53 elements a side: they fit in `usize`, but in no
        // machine's memory.
        let shape = KvShape {
            head_dim: 32,
            ..SHAPE
        };
        for ty in [CacheType::F32, CacheType::F16, CacheType::Q8_0] {
            let e = KvCache::with_type(shape, 1 << 46, 1, ty).unwrap_err();
            assert!(matches!(e, KvCacheError::TooLarge { .. }), "{ty:?}: {e}");
        }
        let e = KvCache::new(SHAPE, usize::MAX / 4, 2).unwrap_err();
        assert!(matches!(e, KvCacheError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn bytes_follow_the_formula() {
        let c = KvCache::new(SHAPE, 10, 3).unwrap();
        assert_eq!(c.bytes(), 2 * 2 * 30 * 3 * 4 * 4);
        // SmolLM2: 30 layers, 3 kv heads of 64, f32, 1024 positions.
        let smol = KvShape {
            n_layers: 30,
            n_kv_heads: 3,
            head_dim: 64,
        };
        assert_eq!(kv_bytes(smol, 1024, 4), 47_185_920);
    }

    #[test]
    fn prefetching_is_only_a_hint() {
        // f32 and f16 caches, in range and out of it: nothing panics and
        // nothing changes.
        for ty in [CacheType::F32, CacheType::F16] {
            let mut c = KvCache::with_type(SHAPE, 64, 2, ty).unwrap();
            push(&mut c, 1, 0, 3);
            let before = c.clone();
            for (slot, layer, row, n) in [(1, 1, 3, 2), (0, 0, 0, 64), (2, 0, 0, 1), (0, 9, 0, 1)] {
                c.prefetch_rows(slot, layer, row, n);
            }
            c.prefetch_rows(0, 0, 63, 2);
            assert_eq!(format!("{before:?}"), format!("{c:?}"));
        }
    }

    #[test]
    fn append_scatters_into_head_major_layout() {
        let mut c = KvCache::new(SHAPE, 8, 2).unwrap();
        push(&mut c, 1, 0, 3);
        push(&mut c, 1, 3, 2);
        assert_eq!(c.len(1), 5);
        assert_eq!(c.len(0), 0);
        let k = c.keys(1, 1).unwrap();
        let hd = SHAPE.head_dim;
        // head 2, row 4 holds token 4, layer 1, elements 8..12.
        let at = (2 * 8 + 4) * hd;
        assert_eq!(&k[at..at + hd], &[4108.0, 4109.0, 4110.0, 4111.0]);
        assert_eq!(c.values(1, 1).unwrap()[at], -4108.0);
        assert!(c.keys(2, 0).is_none() && c.layer_kv(0, 2).is_err());
    }

    #[test]
    fn overflow_is_an_error_by_default() {
        let mut c = KvCache::new(SHAPE, 4, 1).unwrap();
        push(&mut c, 0, 0, 3);
        let err = c.reserve(0, 2).unwrap_err();
        assert_eq!(
            err,
            KvCacheError::ContextOverflow {
                slot: 0,
                len: 3,
                new: 2,
                capacity: 4
            }
        );
        assert!(err.to_string().contains("capacity of 4"));
        assert!(matches!(c.reserve(5, 1), Err(KvCacheError::BadSlot { .. })));
    }

    #[test]
    fn truncate_and_clear_roll_back() {
        let mut c = KvCache::new(SHAPE, 8, 1).unwrap();
        push(&mut c, 0, 0, 6);
        c.truncate(0, 2).unwrap();
        assert_eq!((c.len(0), c.next_position(0)), (2, 2));
        assert!(c.truncate(0, 3).is_err());
        push(&mut c, 0, 50, 1);
        assert_eq!(token_of(&c, 0, 1, 2), 50);
        c.clear(0);
        assert!(c.is_empty(0));
    }

    #[test]
    fn sliding_window_keeps_sinks_and_recent_rows() {
        let mut c = KvCache::new(SHAPE, 8, 1).unwrap().with_sliding_window(2);
        for t in 0..8 {
            push(&mut c, 0, t, 1);
        }
        // Full: the next append evicts half of the 6 non-sink rows (2, 3, 4).
        let r = push(&mut c, 0, 8, 1);
        assert_eq!(
            r,
            Reservation {
                row: 5,
                position: 8
            }
        );
        let kept: Vec<usize> = (0..c.len(0)).map(|row| token_of(&c, 0, 1, row)).collect();
        assert_eq!(kept, vec![0, 1, 5, 6, 7, 8]);
        assert_eq!(c.next_position(0), 9);
        assert!(matches!(
            c.reserve(0, 7),
            Err(KvCacheError::WindowTooSmall { .. })
        ));
    }

    #[test]
    fn a_q8_0_cache_quantizes_by_block_and_keeps_its_rows_through_moves() {
        assert!(
            KvCache::with_type(SHAPE, 8, 2, CacheType::Q8_0).is_err(),
            "head_dim 4 is not whole blocks"
        );
        let shape = KvShape {
            n_layers: 2,
            n_kv_heads: 2,
            head_dim: 64,
        };
        let mut c = KvCache::with_type(shape, 8, 2, CacheType::Q8_0).unwrap();
        let f32_bytes = KvCache::new(shape, 8, 2).unwrap().bytes();
        assert_eq!(c.bytes() * 128, f32_bytes * 34, "34 bytes per 32 values");
        let width = shape.n_kv_heads * shape.head_dim;
        let row = |t: usize| -> Vec<f32> {
            (0..width)
                .map(|i| ((i * 37 + t * 11) % 101) as f32 / 10.0 - 5.0)
                .collect()
        };
        for t in 0..3 {
            let (k, v) = (row(t), row(t + 7));
            let r = c.reserve(1, 1).unwrap();
            for l in 0..shape.n_layers {
                c.write(1, l, r.row, &k, &v).unwrap();
            }
            c.commit(1, 1).unwrap();
        }
        for t in 0..3 {
            for h in 0..shape.n_kv_heads {
                let got = c.key_row(1, 1, h, t).unwrap();
                let want = &row(t)[h * 64..(h + 1) * 64];
                for (b, (g, w)) in got.chunks(32).zip(want.chunks(32)).enumerate() {
                    let max = w.iter().fold(0f32, |m, x| m.max(x.abs()));
                    for (x, y) in g.iter().zip(w) {
                        // Half a step of the block's scale (max / 127), plus
                        // the scale's rounding to f16.
                        assert!(
                            (x - y).abs() <= max / 127.0 * 0.51 + 1e-3,
                            "block {b}: {x} vs {y}"
                        );
                    }
                }
            }
        }
        let k = c.key_row(1, 0, 1, 2).unwrap();
        c.reorder(&[1, 1]).unwrap();
        assert_eq!(c.key_row(0, 0, 1, 2).unwrap(), k);
        c.truncate(0, 1).unwrap();
        assert!(c.key_row(0, 0, 1, 2).is_none());
        assert!(matches!(c.layer_kv(0, 0).unwrap().0, KvSlice::Q8_0(_)));
        assert_eq!("Q8_0".parse::<CacheType>(), Ok(CacheType::Q8_0));
    }

    #[test]
    fn an_f16_cache_rounds_and_costs_half() {
        let mut c = KvCache::with_type(SHAPE, 8, 2, CacheType::F16).unwrap();
        assert_eq!(c.bytes() * 2, KvCache::new(SHAPE, 8, 2).unwrap().bytes());
        push(&mut c, 1, 3, 2);
        // 4109 is not an f16 value: it rounds to the nearest (4108 or 4112).
        let k = c.key_row(1, 1, 2, 1).unwrap();
        assert_eq!(k, vec![4108.0, 4108.0, 4112.0, 4112.0]);
        c.reorder(&[1, 1]).unwrap();
        assert_eq!(c.key_row(0, 1, 2, 1).unwrap(), k);
        assert!(matches!(c.layer_kv(0, 0).unwrap().0, KvSlice::F16(_)));
        assert_eq!("F16".parse::<CacheType>(), Ok(CacheType::F16));
    }

    #[test]
    fn reorder_permutes_and_duplicates_slots() {
        let mut c = KvCache::new(SHAPE, 8, 3).unwrap();
        push(&mut c, 0, 10, 2);
        push(&mut c, 1, 20, 3);
        push(&mut c, 2, 30, 1);
        // Swap 0 and 1, and copy old slot 0 into slot 2 too.
        c.reorder(&[1, 0, 0]).unwrap();
        assert_eq!((c.len(0), c.len(1), c.len(2)), (3, 2, 2));
        assert_eq!(token_of(&c, 0, 0, 2), 22);
        assert_eq!(token_of(&c, 1, 1, 1), 11);
        assert_eq!(token_of(&c, 2, 1, 0), 10);
        assert!(c.reorder(&[0, 5]).is_err());
        c.copy_slot(0, 2).unwrap();
        assert_eq!((c.len(2), token_of(&c, 2, 0, 2)), (3, 22));
    }
}
