//! Embedding lookup from a table of any dtype.

use super::matrix::Matrix;
use crate::error::{EngineError, Result};
use crate::tensor::Tensor;

/// Row `ids[i]` of `table` (`vocab × d`) into `out[i·d..(i+1)·d]`, as f32.
///
/// # Errors
/// [`EngineError::OutOfRange`] for an id past the table,
/// [`EngineError::ShapeMismatch`] if `out` is not `ids.len() × d`.
pub fn embed(table: &Tensor, ids: &[u32], out: &mut [f32]) -> Result<()> {
    let _t = crate::profile::timer(crate::profile::Op::Embed);
    let m = Matrix::new(table, "embed")?;
    let d = m.cols;
    if ids.len().checked_mul(d) != Some(out.len()) {
        return Err(EngineError::ShapeMismatch {
            op: "embed",
            lhs: vec![ids.len(), d],
            rhs: vec![out.len()],
        });
    }
    for (&id, o) in ids.iter().zip(out.chunks_exact_mut(d.max(1))) {
        let id = id as usize;
        if id >= m.rows {
            return Err(EngineError::OutOfRange {
                op: "embed",
                index: id,
                size: m.rows,
            });
        }
        m.rows_f32(id, o);
    }
    Ok(())
}
