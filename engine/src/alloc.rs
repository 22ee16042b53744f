//! A global allocator that puts every large buffer on a cache-line
//! boundary.
//!
//! A `Vec<f32>` is only as aligned as `f32` asks (4 bytes), and the system
//! allocator commonly puts a large buffer 16 bytes past the start of a
//! page. A weight matrix held that way has every row start 16 bytes into
//! a cache line, so a kernel's 32-byte loads straddle two lines every other
//! time and its 64-byte (AVX-512) loads every time: measured on a 2-core
//! Zen 5, a 512-bit f32 matrix-vector product streamed 26 GB/s from such a
//! buffer and 38 GB/s from an aligned one. Programs that hold models
//! install this allocator (`infer` does):
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: engine::alloc::LineAligned = engine::alloc::LineAligned;
//! ```
//!
//! Small allocations go to the system allocator unchanged.

use std::alloc::{GlobalAlloc, Layout, System};

/// From this size on, an allocation starts on a cache line.
pub const LARGE: usize = 1 << 16;

/// The alignment given to large allocations: one cache line.
pub const LINE: usize = 64;

/// The system allocator, with allocations of [`LARGE`] bytes or more
/// aligned to [`LINE`] bytes.
///
/// A large block is taken from the system [`LINE`] bytes longer, at the
/// system's own alignment, and handed out from its first line boundary at
/// least 8 bytes in; the 8 bytes before it hold where the system's block
/// starts. Asking the system for a 64-byte alignment instead would lose
/// `calloc`'s untouched zero pages (the standard library zeroes such a
/// block by writing it), and a KV cache allocated zeroed for 2,048
/// positions would be resident from the start.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineAligned;

/// True for the layouts this allocator lines up itself.
fn is_large(layout: Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= 16
}

/// The system's block behind a large `layout`: [`LINE`] bytes more, at
/// 16 bytes' alignment (`None` if that overflows).
fn outer(layout: Layout) -> Option<Layout> {
    Layout::from_size_align(layout.size().checked_add(LINE)?, 16).ok()
}

/// The first line boundary at least 8 bytes into the system's block at
/// `raw`, with `raw` written just before it. Null stays null.
///
/// # Safety
/// `raw` is null or a block of [`outer`] of a large layout.
unsafe fn line_up(raw: *mut u8) -> *mut u8 {
    if raw.is_null() {
        return raw;
    }
    // At most LINE bytes in (raw is 16-aligned), leaving the caller's
    // size inside the LINE extra bytes.
    let at = (raw as usize + 8).next_multiple_of(LINE) - raw as usize;
    // SAFETY: `at` ≤ LINE, inside the block; the 8 bytes before it are at
    // or after `raw` and aligned to 8.
    unsafe {
        let p = raw.add(at);
        p.cast::<*mut u8>().sub(1).write(raw);
        p
    }
}

/// The system's block behind a pointer [`line_up`] returned.
///
/// # Safety
/// `p` came from `line_up`.
unsafe fn system_block(p: *mut u8) -> *mut u8 {
    // SAFETY: `line_up` wrote the block's start just before `p`.
    unsafe { p.cast::<*mut u8>().sub(1).read() }
}

/// Element types whose all-zero bits are the value zero (and valid), so
/// that [`try_zeros`] may hand out zeroed memory as them.
pub trait ZeroBits: Copy + sealed::Sealed {}

mod sealed {
    /// Only this module's implementations: the promise is about bits.
    pub trait Sealed {}
}

macro_rules! zero_bits {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl ZeroBits for $t {}
    )*};
}
zero_bits!(f32, u16, u8);

/// `n` zeros, or `None` when the allocator refuses that much memory (or
/// its size overflows), where `vec![0; n]` would abort the process: a KV
/// cache sized from a user's `--ctx` must fail with an error that says
/// so. The memory comes zeroed from the allocator (`calloc`'s untouched
/// pages, as `vec![0; n]`'s does), so elements never written cost no
/// memory.
pub fn try_zeros<T: ZeroBits>(n: usize) -> Option<Vec<T>> {
    let layout = Layout::array::<T>(n).ok()?;
    if layout.size() == 0 {
        return Some(Vec::new());
    }
    // SAFETY: `layout` is not empty.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is a block of the global allocator for exactly `n`
    // values of `T` at `T`'s alignment (`Layout::array`), all of them
    // zero bits, which `ZeroBits` promises are valid values; the vector
    // frees it with the same layout.
    Some(unsafe { Vec::from_raw_parts(p.cast::<T>(), n, n) })
}

// SAFETY: small layouts go to `System` as they are. A large one gets a
// block of `outer(layout)` from `System`, of which it uses `layout.size()`
// bytes from a 64-byte boundary (so its alignment, at most 16, is met);
// `dealloc` and `realloc` find that block again through the pointer stored
// before the boundary and free it with `outer(layout)`, the layout it was
// allocated with, since `is_large` and `outer` depend on the layout alone.
unsafe impl GlobalAlloc for LineAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_large(layout) {
            // SAFETY: the caller's contract.
            return unsafe { System.alloc(layout) };
        }
        let Some(o) = outer(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `o` is not empty; `line_up` gets its block.
        unsafe { line_up(System.alloc(o)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !is_large(layout) {
            // SAFETY: the caller's contract.
            return unsafe { System.alloc_zeroed(layout) };
        }
        let Some(o) = outer(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: as in `alloc`; the system zeroes the block (`calloc`,
        // whose fresh pages stay untouched), and `line_up` writes only the
        // 8 bytes before the caller's.
        unsafe { line_up(System.alloc_zeroed(o)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !is_large(layout) {
            // SAFETY: the caller's contract.
            return unsafe { System.dealloc(ptr, layout) };
        }
        if let Some(o) = outer(layout) {
            // SAFETY: `ptr` came from `alloc` with this large layout, so from
            // `line_up` over a block of `o`.
            unsafe { System.dealloc(system_block(ptr), o) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        if !is_large(layout) && !is_large(new) {
            // SAFETY: the caller's contract, both layouts the system's own.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // A large block on either side: move it (a line boundary sits at
        // another offset in a resized system block).
        // SAFETY: `new` is a valid non-empty layout; the copy takes the
        // bytes both blocks hold, and `ptr` is freed as it was allocated.
        unsafe {
            let moved = self.alloc(new);
            if !moved.is_null() {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            moved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_come_back_or_none_when_the_memory_is_refused() {
        let v: Vec<f32> = try_zeros(100_000).unwrap();
        assert!(v.len() == 100_000 && v.iter().all(|&x| x == 0.0));
        assert_eq!(try_zeros::<u16>(0), Some(Vec::new()));
        // More than any address space: refused, not an abort.
        assert_eq!(try_zeros::<f32>(usize::MAX / 2), None);
        assert_eq!(try_zeros::<u8>(1 << 60), None);
    }

    #[test]
    fn large_blocks_start_on_a_line_and_zeroed_ones_read_zero() {
        let a = LineAligned;
        for size in [LARGE, LARGE + 3, 5 * LARGE + 17] {
            for align in [1, 4, 16] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-empty layout, freed with itself.
                unsafe {
                    let p = a.alloc_zeroed(layout);
                    assert_eq!(p as usize % LINE, 0);
                    assert!((0..size).all(|i| *p.add(i) == 0));
                    *p.add(size - 1) = 7;
                    a.dealloc(p, layout);
                    let p = a.alloc(layout);
                    assert_eq!(p as usize % LINE, 0);
                    a.dealloc(p, layout);
                }
            }
        }
        assert!(!is_large(Layout::from_size_align(100, 4).unwrap()));
        assert!(!is_large(Layout::from_size_align(LARGE, 4096).unwrap()));
    }

    #[test]
    fn blocks_keep_their_bytes_through_every_resize() {
        let a = LineAligned;
        let layout = Layout::from_size_align(1000, 4).unwrap();
        // SAFETY: a non-zero layout; every pointer is used with the layout
        // it was made with, and only its first bytes are read and written.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            for i in 0..1000 {
                *p.add(i) = i as u8;
            }
            // Small to large (moves to a line), large to larger, then back.
            let p = a.realloc(p, layout, 3 * LARGE);
            assert_eq!(p as usize % LINE, 0);
            let layout = Layout::from_size_align(3 * LARGE, 4).unwrap();
            let p = a.realloc(p, layout, 5 * LARGE);
            assert_eq!(p as usize % LINE, 0);
            let layout = Layout::from_size_align(5 * LARGE, 4).unwrap();
            let p = a.realloc(p, layout, 500);
            for i in 0..500 {
                assert_eq!(*p.add(i), i as u8);
            }
            a.dealloc(p, Layout::from_size_align(500, 4).unwrap());
        }
    }
}
