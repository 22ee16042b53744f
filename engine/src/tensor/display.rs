//! Pretty printing for small tensors, in the style of NumPy / PyTorch:
//! nested brackets, four decimals, long dimensions elided with `...`.

use std::fmt;

use super::Tensor;

/// Dimensions longer than this print their first and last 3 entries.
const EDGE: usize = 3;
const MAX_FULL: usize = 8;

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor(")?;
        if self.dtype().is_quantized() {
            write!(f, "<{} blocks>", self.dtype())?;
        } else {
            let mut index = vec![0; self.rank()];
            self.write_dim(f, 0, &mut index)?;
        }
        write!(f, ", shape={:?}, dtype={})", self.shape(), self.dtype())
    }
}

impl Tensor {
    fn write_dim(
        &self,
        f: &mut fmt::Formatter<'_>,
        dim: usize,
        index: &mut Vec<usize>,
    ) -> fmt::Result {
        if dim == self.rank() {
            let v = self.get(index).map_err(|_| fmt::Error)?;
            return write!(f, "{v:.4}");
        }
        let n = self.shape()[dim];
        let shown: Vec<Option<usize>> = if n > MAX_FULL {
            (0..EDGE)
                .map(Some)
                .chain([None])
                .chain((n - EDGE..n).map(Some))
                .collect()
        } else {
            (0..n).map(Some).collect()
        };
        write!(f, "[")?;
        for (k, i) in shown.iter().enumerate() {
            if k > 0 {
                if dim + 1 < self.rank() {
                    write!(f, ",\n{:width$}", "", width = 8 + dim)?;
                } else {
                    write!(f, ", ")?;
                }
            }
            match i {
                Some(i) => {
                    index[dim] = *i;
                    self.write_dim(f, dim + 1, index)?;
                }
                None => write!(f, "...")?,
            }
        }
        write!(f, "]")
    }
}
