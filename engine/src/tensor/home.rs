//! One home for many tensors' bytes: a single anonymous memory map that
//! Linux is asked to back with 2 MiB pages (`MADV_HUGEPAGE`), filled piece
//! by piece and then frozen, read-only, under every tensor that lives in it.
//!
//! A decode step reads every weight once, and each 4 KiB page it touches
//! needs an entry in the TLB. SmolLM2's 96.5 MB of weights span about
//! 24,000 such pages, several times what the TLB holds, so a step walks
//! the page tables thousands of times, and a prefetch that crosses into a
//! page the TLB lacks waits for its walk. In 2 MiB pages the same weights
//! are 47 pages. One matrix alone is too small for a huge page (SmolLM2's
//! layer matrices are 0.2 to 1.1 MB, each its own allocation), hence one
//! mapping for all of them. On a two-core Zen 4 guest, whose 32 MB L3
//! cannot keep the model, the weights in huge pages (all of the process's
//! memory, in that first measurement, through glibc's `hugetlb` tunable)
//! decoded one sequence at 307–315 tokens a second against 242–285, and
//! eight at 1,025–1,298 against 1,004–1,145 (`infer bench-batch --clients
//! 1,8 --prompt-tokens 64 --new-tokens 128`, three rounds alternated).
//!
//! The hint asks; it does not insist. Where transparent huge pages are
//! off, or on other systems, the map is an ordinary one and everything
//! works as before.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use super::Bytes;

/// Each piece starts on a cache line.
const ALIGN: usize = 64;

/// A map being filled: pieces are handed out in order, each once.
pub struct Home {
    map: memmap2::MmapMut,
    used: usize,
}

impl Home {
    /// The room that pieces of `lens` bytes take, each on its own line.
    pub fn room(lens: impl IntoIterator<Item = usize>) -> Option<usize> {
        lens.into_iter().try_fold(0usize, |sum, len| {
            sum.checked_add(len.checked_next_multiple_of(ALIGN)?)
        })
    }

    /// An empty home of `len` bytes (at least one), asked for huge pages
    /// before any page of it is touched.
    ///
    /// # Errors
    /// The system's, when it cannot map the memory.
    pub fn with_capacity(len: usize) -> io::Result<Home> {
        let map = memmap2::MmapMut::map_anon(len.max(1))?;
        // A hint: a kernel without transparent huge pages refuses it, and
        // the map stays one of ordinary pages.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        Ok(Home { map, used: 0 })
    }

    /// The next piece of `len` bytes to fill, with its range in the home;
    /// `None` when the home has no room left for it.
    pub fn next(&mut self, len: usize) -> Option<(Range<usize>, &mut [u8])> {
        let start = self.used.checked_next_multiple_of(ALIGN)?;
        let end = start.checked_add(len)?;
        let piece = self.map.get_mut(start..end)?;
        self.used = end;
        Some((start..end, piece))
    }

    /// The home, read-only from now on.
    ///
    /// # Errors
    /// The system's, when it cannot change the map's protection.
    pub fn freeze(self) -> io::Result<Frozen> {
        Ok(Frozen(Arc::new(self.map.make_read_only()?)))
    }
}

/// A filled home, shared by the tensors that live in it.
#[derive(Clone)]
pub struct Frozen(Arc<memmap2::Mmap>);

impl Frozen {
    /// The bytes of `range` (a range [`Home::next`] gave), sharing the home;
    /// `None` if it lies outside it.
    pub fn bytes(&self, range: Range<usize>) -> Option<Bytes> {
        Bytes::shared(self.0.clone(), range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_start_on_lines_and_keep_their_bytes() {
        let lens = [5usize, 64, 130, 0, 7];
        let room = Home::room(lens).unwrap();
        // 5, 64, 130, 0 and 7 bytes, each rounded up to whole lines.
        assert_eq!(room, 384);
        let mut home = Home::with_capacity(room).unwrap();
        let mut ranges = Vec::new();
        for (k, &len) in lens.iter().enumerate() {
            let (range, piece) = home.next(len).unwrap();
            assert_eq!(range.start % ALIGN, 0);
            assert_eq!(piece.len(), len);
            piece.fill(k as u8 + 1);
            ranges.push(range);
        }
        assert!(home.next(1).is_none(), "no room past the last piece");
        let frozen = home.freeze().unwrap();
        for (k, range) in ranges.into_iter().enumerate() {
            let b = frozen.bytes(range).unwrap();
            assert_eq!(b.len(), lens[k]);
            assert!(b.iter().all(|&x| x == k as u8 + 1));
        }
        assert!(frozen.bytes(0..room + 1).is_none());
    }

    #[test]
    fn room_that_overflows_is_none() {
        assert_eq!(Home::room([usize::MAX]), None);
        assert_eq!(Home::room([usize::MAX / 2, usize::MAX / 2]), None);
    }
}
