//! Shape, strides and offset: how a flat buffer is read as an n-d array.
//!
//! Element `[i₀, i₁, …]` lives at `offset + Σ iₖ·strides[k]` in the storage.
//! Every view (transpose, narrow, broadcast…) is a new `Layout` over the
//! same storage; no element moves.

use crate::error::{EngineError, Result};

// ANCHOR: layout
/// How to find each element of an n-d tensor in its flat storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Size of each dimension.
    pub shape: Vec<usize>,
    /// Storage elements to skip to move one step along each dimension
    /// (0 for a broadcast dimension).
    pub strides: Vec<usize>,
    /// Storage index of element `[0, 0, …]`.
    pub offset: usize,
}
// ANCHOR_END: layout

// ANCHOR: contiguous_strides
/// Row-major ("C order") strides for `shape`: the last dimension moves by 1.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut s = 1;
    for (st, &d) in strides.iter_mut().zip(shape).rev() {
        *st = s;
        s *= d;
    }
    strides
}
// ANCHOR_END: contiguous_strides

/// Number of elements of a shape (`None` on overflow).
pub fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

impl Layout {
    /// A row-major layout starting at offset 0.
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    // ANCHOR: is_contiguous
    /// True if the elements are stored in row-major order with no gaps, so
    /// the tensor is one plain slice `offset..offset + numel`.
    pub fn is_contiguous(&self) -> bool {
        let mut expect = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expect {
                return false;
            }
            expect *= d;
        }
        true
    }
    // ANCHOR_END: is_contiguous

    /// Storage index of the element at `index`.
    pub fn storage_index(&self, op: &'static str, index: &[usize]) -> Result<usize> {
        if index.len() != self.rank() {
            return Err(EngineError::BadShape {
                op,
                shape: self.shape.clone(),
                reason: format!("index {index:?} has {} coordinates", index.len()),
            });
        }
        let mut at = self.offset;
        for ((&i, &d), &s) in index.iter().zip(&self.shape).zip(&self.strides) {
            if i >= d {
                return Err(EngineError::OutOfRange {
                    op,
                    index: i,
                    size: d,
                });
            }
            at += i * s;
        }
        Ok(at)
    }

    /// Storage indices of every element, in row-major (logical) order.
    pub fn indices(&self) -> StridedIndices<'_> {
        StridedIndices {
            layout: self,
            pos: vec![0; self.rank()],
            next: self.offset,
            left: self.numel(),
        }
    }

    fn check_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        if axis >= self.rank() {
            return Err(EngineError::BadAxis {
                op,
                axis,
                rank: self.rank(),
            });
        }
        Ok(())
    }

    /// Same elements, new shape. Only for contiguous layouts (the caller
    /// copies first otherwise).
    pub fn reshape(&self, shape: &[usize]) -> Result<Layout> {
        if numel(shape) != Some(self.numel()) {
            return Err(EngineError::ShapeMismatch {
                op: "reshape",
                lhs: self.shape.clone(),
                rhs: shape.to_vec(),
            });
        }
        if !self.is_contiguous() {
            return Err(EngineError::BadShape {
                op: "reshape",
                shape: self.shape.clone(),
                reason: "layout is not contiguous".into(),
            });
        }
        Ok(Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: self.offset,
        })
    }

    // ANCHOR: permute
    /// Reorder the dimensions: dimension `k` of the result is dimension
    /// `dims[k]` of `self`. Only the shape and strides are shuffled.
    pub fn permute(&self, dims: &[usize]) -> Result<Layout> {
        let mut seen = vec![false; self.rank()];
        let valid = dims.len() == self.rank()
            && dims
                .iter()
                .all(|&d| d < self.rank() && !std::mem::replace(&mut seen[d], true));
        if !valid {
            return Err(EngineError::BadShape {
                op: "permute",
                shape: self.shape.clone(),
                reason: format!("{dims:?} is not a permutation of 0..{}", self.rank()),
            });
        }
        Ok(Layout {
            shape: dims.iter().map(|&d| self.shape[d]).collect(),
            strides: dims.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        })
    }
    // ANCHOR_END: permute

    /// Swap two dimensions.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Layout> {
        self.check_axis("transpose", a)?;
        self.check_axis("transpose", b)?;
        let mut dims: Vec<usize> = (0..self.rank()).collect();
        dims.swap(a, b);
        self.permute(&dims)
    }

    #[cfg(not(feature = "mutant-narrow-ignores-stride"))]
    // ANCHOR: narrow
    /// Keep `len` entries of `axis` starting at `start`: move the offset,
    /// shrink one dimension; the strides stay.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Layout> {
        self.check_axis("narrow", axis)?;
        let end = start.saturating_add(len);
        if end > self.shape[axis] {
            return Err(EngineError::OutOfRange {
                op: "narrow",
                index: end,
                size: self.shape[axis],
            });
        }
        let mut out = self.clone();
        out.shape[axis] = len;
        if len > 0 {
            out.offset += start * self.strides[axis];
        }
        Ok(out)
    }
    // ANCHOR_END: narrow

    /// Mutant twin of `narrow`: moves the offset by `start` elements instead
    /// of `start` strides (right only on an axis of stride 1).
    #[cfg(feature = "mutant-narrow-ignores-stride")]
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Layout> {
        self.check_axis("narrow", axis)?;
        let end = start.saturating_add(len);
        if end > self.shape[axis] {
            return Err(EngineError::OutOfRange {
                op: "narrow",
                index: end,
                size: self.shape[axis],
            });
        }
        let mut out = self.clone();
        out.shape[axis] = len;
        if len > 0 {
            out.offset += start;
        }
        Ok(out)
    }

    // ANCHOR: broadcast
    /// View as `shape` by repeating size-1 (or missing leading) dimensions:
    /// a repeated dimension gets stride 0, so every step reads the same
    /// element.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        let err = || EngineError::ShapeMismatch {
            op: "broadcast_to",
            lhs: self.shape.clone(),
            rhs: shape.to_vec(),
        };
        if shape.len() < self.rank() {
            return Err(err());
        }
        let lead = shape.len() - self.rank();
        let mut strides = vec![0; shape.len()];
        for (k, &want) in shape.iter().enumerate().skip(lead) {
            let (have, s) = (self.shape[k - lead], self.strides[k - lead]);
            strides[k] = match (have, want) {
                (h, w) if h == w => s,
                (1, _) => 0,
                _ => return Err(err()),
            };
        }
        Ok(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }
    // ANCHOR_END: broadcast

    /// Drop dimension `axis`, which must have size 1.
    pub fn squeeze(&self, axis: usize) -> Result<Layout> {
        self.check_axis("squeeze", axis)?;
        if self.shape[axis] != 1 {
            return Err(EngineError::BadShape {
                op: "squeeze",
                shape: self.shape.clone(),
                reason: format!("axis {axis} has size {}, not 1", self.shape[axis]),
            });
        }
        let mut out = self.clone();
        out.shape.remove(axis);
        out.strides.remove(axis);
        Ok(out)
    }

    /// Insert a dimension of size 1 before `axis` (`axis == rank` appends).
    pub fn unsqueeze(&self, axis: usize) -> Result<Layout> {
        if axis > self.rank() {
            return Err(EngineError::BadAxis {
                op: "unsqueeze",
                axis,
                rank: self.rank(),
            });
        }
        let mut out = self.clone();
        let stride = self.strides.get(axis).map_or(1, |&s| s * self.shape[axis]);
        out.shape.insert(axis, 1);
        out.strides.insert(axis, stride);
        Ok(out)
    }
}

/// Iterator over the storage indices of a layout in logical order (see
/// [`Layout::indices`]).
pub struct StridedIndices<'a> {
    layout: &'a Layout,
    pos: Vec<usize>,
    next: usize,
    left: usize,
}

impl Iterator for StridedIndices<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        let at = self.next;
        self.left -= 1;
        // Odometer: bump the last coordinate, carrying into earlier ones.
        for k in (0..self.pos.len()).rev() {
            self.pos[k] += 1;
            self.next += self.layout.strides[k];
            if self.pos[k] < self.layout.shape[k] {
                break;
            }
            self.next -= self.pos[k] * self.layout.strides[k];
            self.pos[k] = 0;
        }
        Some(at)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for StridedIndices<'_> {}
