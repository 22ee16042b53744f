//! Chapter 1: tensors — storage, shape, strides, views.
//!
//! `cargo run --release --example ch01_tensors`
//! (The chapter includes this program's output, pasted by
//! `scripts/paste-chapter-output.sh ch01_tensors`. The output carries
//! `ANCHOR:` lines so the chapter can include sections by name.)

use anyhow::Result;
use engine::{DType, Tensor};

fn describe(name: &str, t: &Tensor) {
    println!(
        "{name}: shape {:?}, strides {:?}, offset {}, contiguous {}",
        t.shape(),
        t.strides(),
        t.offset(),
        t.is_contiguous()
    );
}

fn main() -> Result<()> {
    println!("ANCHOR: layout");
    println!("== 1. A tensor is a flat buffer plus a layout");
    let a = Tensor::arange(&[2, 3])?;
    println!("{a}");
    describe("a", &a);
    println!(
        "element [1, 2] is storage[offset + 1*3 + 2*1] = {}",
        a.get(&[1, 2])?
    );

    println!("ANCHOR_END: layout");
    println!();
    println!("ANCHOR: transpose");
    println!("== 2. A transpose swaps two strides; no element moves");
    let t = a.transpose(0, 1)?;
    println!("{t}");
    describe("a.T", &t);
    println!("shares a's storage: {}", t.shares_storage(&a));
    let c = t.contiguous()?;
    describe("a.T.contiguous()", &c);
    println!(
        "shares a's storage: {} (the copy happens only now)",
        c.shares_storage(&a)
    );

    println!("ANCHOR_END: transpose");
    println!();
    println!("ANCHOR: narrow");
    println!("== 3. narrow moves the offset and shrinks one dimension");
    let m = Tensor::arange(&[4, 5])?;
    let rows = m.narrow(0, 1, 2)?;
    describe("rows 1..3", &rows);
    println!("{rows}");
    let cols = m.narrow(1, 1, 2)?;
    describe("cols 1..3", &cols);
    println!("{cols}");

    println!("ANCHOR_END: narrow");
    println!();
    println!("ANCHOR: broadcast");
    println!("== 4. Broadcasting repeats with stride 0");
    let bias = Tensor::from_vec(vec![10.0, 20.0, 30.0], &[3])?;
    let wide = bias.broadcast_to(&[2, 3])?;
    describe("bias broadcast to [2, 3]", &wide);
    println!("{wide}");
    println!("a + bias = {}", a.add(&bias)?);

    println!("ANCHOR_END: broadcast");
    println!();
    println!("ANCHOR: reshape");
    println!("== 5. reshape is a view when the data is contiguous");
    let flat = a.reshape(&[6])?;
    println!("a.reshape([6]) shares storage: {}", flat.shares_storage(&a));
    let flat_t = t.reshape(&[6])?;
    println!(
        "a.T.reshape([6]) shares storage: {} -> {flat_t}",
        flat_t.shares_storage(&a)
    );
    let u = a.unsqueeze(0)?;
    describe("a.unsqueeze(0)", &u);

    println!("ANCHOR_END: reshape");
    println!();
    println!("ANCHOR: dtypes");
    println!("== 6. Element types");
    let x = Tensor::from_vec(vec![0.1, 1.0 / 3.0, 65504.0, 1e-8], &[4])?;
    for dt in [DType::F32, DType::F16, DType::BF16] {
        let v = x.to_dtype(dt)?.to_vec_f32()?;
        let shown: Vec<String> = v.iter().map(|f| format!("{f:.10e}")).collect();
        println!(
            "{:>5} ({} bytes/value): {}",
            dt.to_string(),
            dt.unit_bytes(),
            shown.join("  ")
        );
    }
    for dt in [DType::Q8_0, DType::Q4_0, DType::Q4_1] {
        println!(
            "{:>5}: blocks of {} values in {} bytes = {:.4} bytes/value",
            dt.to_string(),
            dt.block_len(),
            dt.unit_bytes(),
            dt.unit_bytes() as f64 / dt.block_len() as f64
        );
    }

    println!("ANCHOR_END: dtypes");
    println!();
    println!("ANCHOR: matmul");
    println!("== 7. A matmul reads its operands through their strides");
    let w = Tensor::arange(&[3, 2])?; // stored as [out=3, in=2], like a linear layer
    let y = a.matmul(&w)?; // [2, 3] x [3, 2]
    println!("a @ w = {y}");
    let wt = w.transpose(0, 1)?; // [2, 3] view, no copy
    let z = wt.matmul(&a.transpose(0, 1)?)?;
    println!("w.T @ a.T = {z}");
    println!(
        "(a @ w).T equals w.T @ a.T: {}",
        y.transpose(0, 1)?.to_vec_f32()? == z.to_vec_f32()?
    );

    println!("ANCHOR_END: matmul");
    println!();
    println!("ANCHOR: errors");
    println!("== 8. Mistakes are errors that say what and where");
    let wrong = Tensor::zeros(&[4])?;
    println!("a + zeros([4]): {}", a.add(&wrong).unwrap_err());
    println!("a.narrow(1, 2, 2): {}", a.narrow(1, 2, 2).unwrap_err());
    println!("a.matmul(a): {}", a.matmul(&a).unwrap_err());
    println!("ANCHOR_END: errors");
    Ok(())
}
