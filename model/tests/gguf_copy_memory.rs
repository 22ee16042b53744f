//! A plain-float tensor (f32, f16, bf16) is copied out of the memory map,
//! since the file does not promise its alignment; the copy must not leave
//! the map's pages of it resident too, or the process holds its weights
//! twice. This is its own test binary (one process, one test), so the
//! resident-memory figures it reads belong to it alone.

use engine::Tensor;
use model::gguf::GgufFile;
use model::gguf::write::write_gguf;

/// This process's resident memory in bytes (Linux's `VmRSS`).
fn resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn copying_a_plain_float_tensor_drops_its_mapped_pages() {
    if resident().is_none() {
        eprintln!("skipped: no /proc/self/status on this system to read resident memory from");
        return;
    }
    // 64 MiB of f32, written to a file and mapped back.
    let n = 16 << 20;
    let x: Vec<f32> = (0..n).map(|i| (i % 251) as f32).collect();
    let t = Tensor::from_vec(x, &[4096, n / 4096]).unwrap();
    let path = std::env::temp_dir().join(format!("infer-copy-memory-{}.gguf", std::process::id()));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        write_gguf(&mut f, &[], &[("w".to_string(), t)]).unwrap();
    }
    let file = GgufFile::open(&path).unwrap();
    let before = resident().unwrap();
    let w = file.tensor("w").unwrap();
    let grew = resident().unwrap().saturating_sub(before);
    std::fs::remove_file(&path).unwrap();
    let size = 4 * n as u64;
    assert_eq!(w.numel(), n);
    // The copy itself is `size`; with the map's pages kept as well it
    // would be about twice that.
    assert!(
        grew < size + size / 4,
        "loading a {size}-byte f32 tensor grew resident memory by {grew} bytes"
    );
    assert!(
        grew > size / 2,
        "the copy should be resident: grew by {grew} of {size}"
    );
}
