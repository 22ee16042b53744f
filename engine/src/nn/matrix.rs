//! A 2-D weight tensor seen as rows of one dtype, for the layer kernels.

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use crate::dtype::DType;
use crate::error::{EngineError, Result};
use crate::kernels;
use crate::quant::act::{Q8Acts, Q8Row};
use crate::quant::{self, SumOrder, dot, x8, x8_prompt};
use crate::tensor::{Storage, Tensor};

/// The rows of a contiguous matrix, by dtype.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    BF16(&'a [bf16]),
    Quant(DType, &'a [u8]),
    /// Q4_0/Q4_1/Q5_0/Q8_0 rows regrouped eight at a time ([`quant::x8`]), starting
    /// at a group, and how their decode-step products add up each block.
    Regrouped(DType, &'a [u8], SumOrder),
}

/// A `rows × cols` row-major weight.
#[derive(Clone, Copy)]
pub(crate) struct Matrix<'a> {
    pub rows: usize,
    pub cols: usize,
    pub data: Rows<'a>,
}

/// The kernel that multiplies decode-step tokens by regrouped rows of
/// `dtype` summed in `order`.
/// True if decode steps multiply regrouped rows of `dtype` summed in
/// `order` with the many-token kernel ([`x8_prompt`]).
fn decodes_by_block(dtype: DType, order: SumOrder) -> bool {
    order == SumOrder::Block && x8_prompt::supports(dtype)
}

fn decode_kernel(dtype: DType, order: SumOrder) -> fn(DType, &[u8], &[Q8Row<'_>], &mut [f32]) {
    if decodes_by_block(dtype, order) {
        x8_prompt::matmul
    } else {
        x8::matmul
    }
}

impl<'a> Matrix<'a> {
    /// View `t` (2-D, contiguous) as a matrix.
    pub fn new(t: &'a Tensor, op: &'static str) -> Result<Matrix<'a>> {
        let shape = t.shape();
        if shape.len() != 2 || !t.is_contiguous() {
            return Err(EngineError::BadShape {
                op,
                shape: shape.to_vec(),
                reason: "weight must be a contiguous matrix".into(),
            });
        }
        let (rows, cols) = (shape[0], shape[1]);
        let (o, n) = (t.offset(), rows * cols);
        let data = match t.storage() {
            Storage::F32(v) => Rows::F32(&v[o..o + n]),
            Storage::F16(v) => Rows::F16(&v[o..o + n]),
            Storage::BF16(v) => Rows::BF16(&v[o..o + n]),
            Storage::Quantized { dtype, bytes } => {
                let unit = dtype.unit_bytes();
                let start = o / dtype.block_len() * unit;
                Rows::Quant(*dtype, &bytes[start..start + n / dtype.block_len() * unit])
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => {
                return Err(EngineError::Device(format!(
                    "{op}: the weight is on a GPU; this layer runs on the host (use device::ops)"
                )));
            }
            Storage::Regrouped {
                dtype,
                bytes,
                order,
                ..
            } => {
                let group = x8::ROWS * cols;
                if !o.is_multiple_of(group) || !rows.is_multiple_of(x8::ROWS) {
                    return Err(EngineError::BadShape {
                        op,
                        shape: shape.to_vec(),
                        reason: "a view of regrouped rows must cover whole groups of 8 rows".into(),
                    });
                }
                let unit = dtype.unit_bytes();
                let start = o / dtype.block_len() * unit;
                Rows::Regrouped(
                    *dtype,
                    &bytes[start..start + n / dtype.block_len() * unit],
                    *order,
                )
            }
        };
        Ok(Matrix { rows, cols, data })
    }

    /// True if the rows are regrouped eight at a time ([`quant::x8`]).
    pub fn is_regrouped(&self) -> bool {
        matches!(self.data, Rows::Regrouped(..))
    }

    /// True if prompts multiply these rows with the many-token integer
    /// kernel ([`quant::x8_prompt`]): regrouped Q4_0, Q4_1, Q5_0 or Q8_0.
    /// (Q8_0 joined once that kernel's signed codes met unsigned activation
    /// codes with one `vpdpbusd` each: a GPT-2 Q8_0 prompt then ran at
    /// about twice the widened f32 tiles' speed, on a 2-core Xeon with
    /// AVX-512.) Q4_K and Q6_K keep the f32 tiles: their integer products
    /// with four tokens per unpacked row ([`dot::matmul`]) measured slower
    /// than widened f32 tiles on prompts through a 576 × 1536 matrix (Zen
    /// 3, alternated in one process: 1.1 to 1.3 times the tiles' time at
    /// 128 tokens, 1.4 to 1.6 at 512), and about even on a Xeon with
    /// AVX-512 VNNI (0.89 to 0.99 at 128 tokens). The two paths round
    /// differently, so choosing per CPU would give a prompt different bits
    /// on different instruction sets; one rule keeps them the same.
    pub fn takes_prompt_kernel(&self) -> bool {
        matches!(
            self.data,
            Rows::Regrouped(DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q8_0, ..)
        )
    }

    /// True if every row count takes the same many-token integer kernel
    /// ([`quant::x8_prompt`], per token the same operations): regrouped
    /// Q4_0, Q4_1, Q5_0 or Q8_0 rows whose decode steps are summed in
    /// [`SumOrder::Block`], as prompts always are. A batch that mixes
    /// decode steps and prompt chunks then needs no split by kernel.
    pub fn sums_by_block(&self) -> bool {
        matches!(
            self.data,
            Rows::Regrouped(
                DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q8_0,
                _,
                SumOrder::Block
            )
        )
    }

    /// True if the rows are K-quants (Q4_K, Q6_K) in the file's layout,
    /// whose products read the activations in blocks of 256 as well
    /// ([`Q8Acts::quantize_blocks`]).
    pub fn reads_k_blocks(&self) -> bool {
        matches!(self.data, Rows::Quant(DType::Q4_K | DType::Q6_K, _))
    }

    /// True if the rows are block-quantized.
    pub fn is_quantized(&self) -> bool {
        matches!(self.data, Rows::Quant(..) | Rows::Regrouped(..))
    }

    /// Rows `r0..r0 + n` as they lie, if this is an f32 matrix (and they
    /// are inside it).
    pub fn f32_rows(&self, r0: usize, n: usize) -> Option<&'a [f32]> {
        match self.data {
            Rows::F32(v) => v.get(r0 * self.cols..(r0 + n) * self.cols),
            _ => None,
        }
    }

    /// Rows `r0..r0 + out.len() / cols` widened to f32 into `out`.
    pub fn rows_f32(&self, r0: usize, out: &mut [f32]) {
        let c = self.cols;
        let (a, b) = (r0 * c, r0 * c + out.len());
        match self.data {
            Rows::F32(v) => out.copy_from_slice(&v[a..b]),
            Rows::F16(v) => kernels::widen_f16(&v[a..b], out),
            Rows::BF16(v) => v[a..b].convert_to_f32_slice(out),
            Rows::Quant(dt, bytes) => {
                let rb = dt.bytes_for(c).unwrap_or(0);
                let rows = out.len() / c;
                quant::dequantize_unchecked(dt, &bytes[r0 * rb..(r0 + rows) * rb], out);
            }
            Rows::Regrouped(dt, bytes, _) => {
                let mut row = vec![0u8; dt.bytes_for(c).unwrap_or(0)];
                for (i, o) in out.chunks_exact_mut(c).enumerate() {
                    x8::unpack_row(dt, bytes, c, r0 + i, &mut row);
                    quant::dequantize_unchecked(dt, &row, o);
                }
            }
        }
    }

    /// `out[j · t + i] = row(r0 + j) · acts[i]` for a regrouped matrix with
    /// `kernel` (a regrouped product), by whole groups: when `r0..r0 +
    /// out.len() / t` does not cover whole groups, the groups around it are
    /// multiplied and the rows asked for kept, so every product is computed
    /// the same way.
    fn by_groups(
        &self,
        dt: DType,
        bytes: &[u8],
        r0: usize,
        acts: &[Q8Row<'_>],
        out: &mut [f32],
        kernel: fn(DType, &[u8], &[Q8Row<'_>], &mut [f32]),
    ) {
        let (c, t) = (self.cols, acts.len());
        let n = out.len() / t;
        let rb = dt.bytes_for(c).unwrap_or(0);
        if r0.is_multiple_of(x8::ROWS) && n.is_multiple_of(x8::ROWS) {
            kernel(dt, &bytes[r0 * rb..(r0 + n) * rb], acts, out);
            return;
        }
        let g0 = r0 / x8::ROWS * x8::ROWS;
        let g1 = (r0 + n).next_multiple_of(x8::ROWS);
        let mut all = vec![0f32; (g1 - g0) * t];
        kernel(dt, &bytes[g0 * rb..g1 * rb], acts, &mut all);
        out.copy_from_slice(&all[(r0 - g0) * t..(r0 - g0 + n) * t]);
    }

    /// `out[j · t + i] = row(r0 + j) · acts[i]` for the `t = acts.len()`
    /// quantized rows of a prompt, with the many-token integer kernel.
    ///
    /// # Panics
    /// If the matrix does not [`Matrix::takes_prompt_kernel`].
    pub fn prompt_rows(&self, r0: usize, acts: &[Q8Row<'_>], out: &mut [f32]) {
        let Rows::Regrouped(dt, bytes, _) = self.data else {
            panic!("prompt_rows: not a regrouped matrix");
        };
        self.by_groups(dt, bytes, r0, acts, out, x8_prompt::matmul);
    }

    /// True if `kernel` multiplies these rows by the many-token integer
    /// kernel ([`quant::x8_prompt`]), which can write each token's
    /// products side by side ([`Matrix::prompt_rows_into`]): a
    /// prompt's tiles of rows that [`Matrix::takes_prompt_kernel`]
    /// (`tiles`), or the rows of a batch of short sequences when the
    /// weight sums by block.
    pub fn prompt_kernel_runs(&self, tiles: bool) -> bool {
        match self.data {
            Rows::Regrouped(..) if tiles => self.takes_prompt_kernel(),
            Rows::Regrouped(dt, _, order) => decodes_by_block(dt, order),
            _ => false,
        }
    }

    /// `out.rows[i][out.col + j] = row(r0 + j) · acts[i]` for the `n` rows
    /// from `r0` (whole groups of [`x8::ROWS`]), with the many-token
    /// integer kernel: each token's products in its own row of results,
    /// the same bits as [`Matrix::prompt_rows`] gives by weight row.
    ///
    /// # Panics
    /// If the matrix is not regrouped, the rows are not whole groups, or
    /// `out` cannot hold them.
    pub fn prompt_rows_into(
        &self,
        (r0, n): (usize, usize),
        acts: &[Q8Row<'_>],
        out: &mut x8_prompt::TokenRows<'_, '_>,
    ) {
        let Rows::Regrouped(dt, bytes, _) = self.data else {
            panic!("prompt_rows_into: not a regrouped matrix");
        };
        let rb = dt.bytes_for(self.cols).unwrap_or(0);
        assert!(
            r0.is_multiple_of(x8::ROWS) && n.is_multiple_of(x8::ROWS),
            "prompt_rows_into: rows {r0}..{} are not whole groups",
            r0 + n
        );
        x8_prompt::matmul_into(dt, &bytes[r0 * rb..(r0 + n) * rb], acts, out);
    }

    /// `out[i] = row(r0 + i) · x` for one activation row `x` (and, for a
    /// quantized matrix, `qx`, its row `tok` quantized).
    pub fn matvec_rows(&self, r0: usize, x: &[f32], qx: &Q8Acts, tok: usize, out: &mut [f32]) {
        let c = self.cols;
        let rows = r0..r0 + out.len();
        match self.data {
            Rows::F32(v) => kernels::matvec_serial(&v[rows.start * c..rows.end * c], c, x, out),
            Rows::F16(v) => kernels::matvec_f16_serial(&v[rows.start * c..rows.end * c], c, x, out),
            Rows::BF16(v) => {
                for (o, r) in out.iter_mut().zip(rows) {
                    *o = v[r * c..(r + 1) * c]
                        .iter()
                        .zip(x)
                        .map(|(w, x)| w.to_f32() * x)
                        .sum();
                }
            }
            Rows::Quant(dt, bytes) => {
                let rb = dt.bytes_for(c).unwrap_or(0);
                dot::matvec(dt, &bytes[rows.start * rb..rows.end * rb], qx.row(tok), out);
            }
            Rows::Regrouped(dt, bytes, order) => {
                self.by_groups(dt, bytes, r0, &[qx.row(tok)], out, decode_kernel(dt, order))
            }
        }
    }

    /// `out[j · t + i] = row(r0 + j) · x[i]` for `t` activation rows of `x`
    /// (and, for a quantized matrix, `qx`, the same rows quantized, and
    /// `acts`, its `t` rows, made once by the caller for every task); each
    /// product is computed exactly as [`Matrix::matvec_rows`] computes it.
    pub fn matmul_rows(
        &self,
        r0: usize,
        (x, t): (&[f32], usize),
        (qx, acts): (&Q8Acts, &[Q8Row<'_>]),
        out: &mut [f32],
    ) {
        let c = self.cols;
        let n = out.len() / t;
        if let Rows::Quant(dt, bytes) = self.data {
            let rb = dt.bytes_for(c).unwrap_or(0);
            dot::matmul(dt, &bytes[r0 * rb..(r0 + n) * rb], acts, out);
            return;
        }
        if let Rows::Regrouped(dt, bytes, order) = self.data {
            self.by_groups(dt, bytes, r0, acts, out, decode_kernel(dt, order));
            return;
        }
        let mut tmp = vec![0f32; n];
        for i in 0..t {
            self.matvec_rows(r0, &x[i * c..(i + 1) * c], qx, i, &mut tmp);
            for (j, v) in tmp.iter().enumerate() {
                out[j * t + i] = *v;
            }
        }
    }
}
