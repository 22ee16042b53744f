//! Embedding lookup: gather rows of a table.

use crate::error::{EngineError, Result};
use crate::tensor::Tensor;

impl Tensor {
    /// Rows `ids` of this `[vocab, dim]` table, as a `[ids.len(), dim]` f32
    /// tensor (f16 / bf16 tables are converted row by row).
    ///
    /// # Errors
    /// [`EngineError::BadShape`] unless the table is 2-D;
    /// [`EngineError::OutOfRange`] for an id `>= vocab`;
    /// [`EngineError::UnsupportedDType`] for quantized tables.
    pub fn embedding(&self, ids: &[usize]) -> Result<Tensor> {
        let op = "embedding";
        let &[vocab, dim] = self.shape() else {
            return Err(EngineError::BadShape {
                op,
                shape: self.shape().to_vec(),
                reason: "table must be [vocab, dim]".into(),
            });
        };
        if self.dtype().is_quantized() {
            return Err(EngineError::UnsupportedDType {
                op,
                dtype: self.dtype(),
            });
        }
        let mut out = Vec::with_capacity(ids.len() * dim);
        for &id in ids {
            if id >= vocab {
                return Err(EngineError::OutOfRange {
                    op,
                    index: id,
                    size: vocab,
                });
            }
            out.extend(self.narrow(0, id, 1)?.iter()?);
        }
        Tensor::from_vec(out, &[ids.len(), dim])
    }
}
