//! Raw bytes for block-quantized storage: owned, or a window into a buffer
//! someone else owns (a memory-mapped model file), so weights can be used
//! where they lie instead of being copied.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// What an owner does with a range of its bytes that is no longer needed
/// in memory (see [`Bytes::release`]).
type Release = Arc<dyn Fn(Range<usize>) + Send + Sync>;

/// A read-only byte buffer, owned or shared.
#[derive(Clone)]
pub struct Bytes {
    owner: Arc<dyn AsRef<[u8]> + Send + Sync>,
    range: Range<usize>,
    release: Option<Release>,
}

impl Bytes {
    /// Own `v`.
    pub fn from_vec(v: Vec<u8>) -> Bytes {
        let range = 0..v.len();
        Bytes {
            owner: Arc::new(v),
            range,
            release: None,
        }
    }

    /// The bytes `range` of `owner` (for example a memory map), without a
    /// copy. Returns `None` if `range` is not inside the owner's bytes.
    pub fn shared(owner: Arc<dyn AsRef<[u8]> + Send + Sync>, range: Range<usize>) -> Option<Bytes> {
        let len = (*owner).as_ref().len();
        (range.start <= range.end && range.end <= len).then_some(Bytes {
            owner,
            range,
            release: None,
        })
    }

    /// These bytes, with `release` to call (with their range in the
    /// owner) when [`Bytes::release`] is asked for: a memory map drops
    /// the pages, to read them again from the file if they are used.
    pub fn with_release(mut self, release: impl Fn(Range<usize>) + Send + Sync + 'static) -> Bytes {
        self.release = Some(Arc::new(release));
        self
    }

    /// Tell the owner that these bytes need not stay in memory (after a
    /// tensor has been copied into another layout, say). Only a hint: the
    /// bytes stay valid and unchanged, and owned bytes ignore it.
    pub fn release(&self) {
        if let Some(f) = &self.release {
            f(self.range.clone());
        }
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &(*self.owner).as_ref()[self.range.clone()]
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.len())
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Bytes) -> bool {
        **self == **other
    }
}
