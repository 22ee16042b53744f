//! Every x86 kernel level from AVX2 up computes the same bits: SmolLM2's
//! logits for a 40-token prompt (the prompt kernels) and six greedy decode
//! steps (the one-token kernels, the f16 KV cache's attention), with the
//! file's Q4_1 weights (regrouped integer kernels), requantized to Q4_K
//! (K-quant kernels, widened prompt tiles) and widened to f16 (f16
//! matrix-vector products), at the best level this CPU has and, in a
//! child process, at `INFER_KERNELS=avx2`. On a CPU whose best level is
//! AVX2 there is nothing to compare, and the test says so.
//!
//! Why it matters: with wider vectors a sum may be added in another order,
//! and at a near tie another token comes out, so the same model and seed
//! would generate other text on an AVX-512 machine than on an AVX2 one (it
//! did, before AVX-512 CPUs ran the AVX2 f32 kernels; see chapter 2).

use engine::kernels::{Level, dispatch, level};
use integration_tests::{heavy_lock, smollm2_weights};
use model::batch::LogitsFor;
use model::llama::Llama;

/// Set in the child process, which prints its digest and exits.
const CHILD: &str = "INFER_X86_BITS_CHILD";
const NAME: &str = "avx2_and_the_best_level_give_the_same_bits";

/// One line per weight format: the bits of every logit of the prompt's
/// last position and of six greedy steps, folded into a 64-bit FNV-1a
/// digest, and the greedy ids.
fn digests() -> String {
    let w = smollm2_weights();
    let variants = [
        ("q4_1", w.clone()),
        ("q4_k", w.to_dtype(engine::DType::Q4_K).unwrap()),
        ("f16", w.to_dtype(engine::DType::F16).unwrap()),
    ];
    let prompt: Vec<u32> = (0..40).map(|i| 300 + 37 * i).collect();
    let mut lines = String::new();
    for (name, w) in variants {
        let mut m = Llama::new(w, 64, 1).unwrap();
        let mut logits = m
            .forward(&[(0, &prompt)], LogitsFor::Last)
            .unwrap()
            .remove(0);
        let mut digest = 0xcbf2_9ce4_8422_2325u64;
        let mut ids = Vec::new();
        for _ in 0..6 {
            for v in &logits {
                for b in v.to_bits().to_le_bytes() {
                    digest = (digest ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
            let t = engine::kernels::argmax(&logits) as u32;
            ids.push(t);
            logits = m.forward(&[(0, &[t])], LogitsFor::Last).unwrap().remove(0);
        }
        lines.push_str(&format!("{name} {digest:016x} {ids:?}\n"));
    }
    lines
}

#[test]
fn avx2_and_the_best_level_give_the_same_bits() {
    let _g = heavy_lock();
    if std::env::var_os(CHILD).is_some() {
        print!("DIGESTS\n{}END\n", digests());
        return;
    }
    let best = dispatch::detect();
    if best <= Level::Avx2 || level() != best {
        eprintln!(
            "skipped: this process runs {} and the CPU's best level is {best}; \
             the comparison needs a level above AVX2",
            level()
        );
        return;
    }
    let here = digests();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .env("INFER_KERNELS", "avx2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let child = stdout
        .split("DIGESTS\n")
        .nth(1)
        .and_then(|s| s.split("END\n").next())
        .unwrap_or_else(|| {
            panic!(
                "the AVX2 child printed no digests: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    eprintln!("{best}:\n{here}avx2:\n{child}");
    assert_eq!(
        here, child,
        "the {best} kernels and the AVX2 kernels differ"
    );
}
