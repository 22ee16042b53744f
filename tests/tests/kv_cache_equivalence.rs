//! The KV cache is exact: decoding with it gives the logits of recomputing
//! the whole prefix, and a batched decode step gives the logits of decoding
//! each sequence alone. Both architectures.

use decode::LanguageModel;
use integration_tests::{assert_close, fixture_dir, heavy_lock, smollm2_weights_f32};
use model::gpt2::{Gpt2, Gpt2Weights};
use model::llama::Llama;
use model::no_cache::Recompute;

/// Cached and recomputed logits differ only by summation order (matrix–vector
/// versus matrix–matrix products), well under 1e-4.
const TOL: f32 = 1e-4;

fn gpt2(slots: usize) -> Box<dyn LanguageModel> {
    let w = Gpt2Weights::from_hf_dir(fixture_dir("gpt2-tiny-b")).unwrap();
    Box::new(Gpt2::new(w, 1024, slots).unwrap())
}

fn smollm2(slots: usize) -> Box<dyn LanguageModel> {
    Box::new(Llama::new(smollm2_weights_f32().clone(), 256, slots).unwrap())
}

/// Greedy 64 steps with the cache and with recompute, comparing every step.
fn cache_equals_recompute(
    name: &str,
    cached: &mut dyn LanguageModel,
    recompute: &mut dyn LanguageModel,
    prompt: &[u32],
) {
    let mut a = cached.forward(&[(0, prompt)]).unwrap().remove(0);
    let mut b = recompute.forward(&[(0, prompt)]).unwrap().remove(0);
    for step in 0..64 {
        assert_close(
            &format!("{name} step {step} logits (cache vs recompute)"),
            &a,
            &b,
            TOL,
        );
        let (ta, tb) = (
            engine::kernels::argmax(&a) as u32,
            engine::kernels::argmax(&b) as u32,
        );
        assert_eq!(ta, tb, "{name} step {step}: greedy token differs");
        a = cached.forward(&[(0, &[ta])]).unwrap().remove(0);
        b = recompute.forward(&[(0, &[tb])]).unwrap().remove(0);
    }
    assert_eq!(cached.seq_len(0), prompt.len() + 64);
}

/// Three sequences of different lengths decoded together (one call per
/// step) equal each decoded alone (one call per sequence per step).
fn batched_equals_single(
    name: &str,
    batched: &mut dyn LanguageModel,
    single: &mut dyn LanguageModel,
) {
    let prompts: [&[u32]; 3] = [&[5, 17, 300, 42, 9, 11, 250], &[7], &[99, 98, 97, 96]];
    let first: Vec<(usize, &[u32])> = prompts.iter().copied().enumerate().collect();
    let mut lb = batched.forward(&first).unwrap();
    let mut ls: Vec<Vec<f32>> = first
        .iter()
        .map(|&e| single.forward(&[e]).unwrap().remove(0))
        .collect();
    for step in 0..16 {
        let next: Vec<u32> = lb
            .iter()
            .map(|l| engine::kernels::argmax(l) as u32)
            .collect();
        for slot in 0..3 {
            assert_close(
                &format!("{name} step {step} slot {slot} (batched vs single)"),
                &lb[slot],
                &ls[slot],
                TOL,
            );
            assert_eq!(
                next[slot],
                engine::kernels::argmax(&ls[slot]) as u32,
                "{name} step {step} slot {slot} token"
            );
        }
        let toks: Vec<[u32; 1]> = next.iter().map(|&t| [t]).collect();
        let entries: Vec<(usize, &[u32])> = toks
            .iter()
            .enumerate()
            .map(|(s, t)| (s, t.as_slice()))
            .collect();
        lb = batched.forward(&entries).unwrap();
        ls = entries
            .iter()
            .map(|&e| single.forward(&[e]).unwrap().remove(0))
            .collect();
    }
    for (slot, p) in prompts.iter().enumerate() {
        assert_eq!(batched.seq_len(slot), p.len() + 16);
    }
}

#[test]
fn gpt2_cache_equals_recompute() {
    let mut cached = gpt2(1);
    let mut recompute = Recompute::new(gpt2(1));
    cache_equals_recompute(
        "gpt2-tiny-b",
        cached.as_mut(),
        &mut recompute,
        &[3, 1, 4, 1, 5, 9, 2, 6],
    );
}

#[test]
fn gpt2_batched_decode_equals_single() {
    batched_equals_single("gpt2-tiny-b", gpt2(3).as_mut(), gpt2(3).as_mut());
}

#[test]
fn smollm2_cache_equals_recompute() {
    let _g = heavy_lock();
    let mut cached = smollm2(1);
    let mut recompute = Recompute::new(smollm2(1));
    // "Once upon a time" in SmolLM2's vocabulary.
    cache_equals_recompute(
        "smollm2",
        cached.as_mut(),
        &mut recompute,
        &[6403, 1980, 253, 655],
    );
}

#[test]
fn smollm2_batched_decode_equals_single() {
    let _g = heavy_lock();
    batched_equals_single("smollm2", smollm2(3).as_mut(), smollm2(3).as_mut());
}

/// Without a window a full cache is an error; with one, generation goes on
/// past the capacity, identical to an unbounded cache until the first
/// eviction, with positions still counting up.
#[test]
fn smollm2_sliding_window_runs_past_capacity() {
    let _g = heavy_lock();
    let w = smollm2_weights_f32();
    let mut plain = Llama::new(w.clone(), 256, 1).unwrap();
    let mut small = Llama::new(w.clone(), 32, 1).unwrap();
    let mut windowed = Llama::new(w.clone(), 32, 1).unwrap().with_sliding_window(4);
    let prompt = [6403u32, 1980, 253, 655];
    let mut lp = LanguageModel::forward(&mut plain, &[(0, &prompt)])
        .unwrap()
        .remove(0);
    let mut lw = LanguageModel::forward(&mut windowed, &[(0, &prompt)])
        .unwrap()
        .remove(0);
    LanguageModel::forward(&mut small, &[(0, &prompt)]).unwrap();
    for step in 0..60 {
        let fed = prompt.len() + step;
        if fed <= 32 {
            assert_close(
                &format!("window step {step} (no eviction yet)"),
                &lw,
                &lp,
                TOL,
            );
        }
        let tok = engine::kernels::argmax(&lp) as u32;
        lp = LanguageModel::forward(&mut plain, &[(0, &[tok])])
            .unwrap()
            .remove(0);
        lw = LanguageModel::forward(&mut windowed, &[(0, &[tok])])
            .unwrap()
            .remove(0);
        let r = LanguageModel::forward(&mut small, &[(0, &[tok])]);
        assert_eq!(
            r.is_err(),
            fed + 1 > 32,
            "step {step}: overflow without a window must be an error"
        );
        if let Err(e) = r {
            assert!(e.to_string().contains("context overflow"), "{e}");
        }
    }
    assert_eq!(windowed.cache().next_position(0), 64);
    assert!(windowed.cache().len(0) <= 32);
    assert!(lw.iter().all(|x| x.is_finite()));
}

/// The cache's element type changes the logits only by its rounding: on
/// SmolLM2, over a 48-token prompt and 16 greedy steps, the f16 cache
/// stays within 0.05 of the f32 cache's logits and the Q8_0 cache within
/// 0.5 (its codes carry 8 bits against f16's 11), and both choose the same
/// greedy tokens here. Their perplexity cost is measured in the
/// quantization chapter and with `infer perplexity --cache-type`.
#[test]
fn cache_types_agree_within_their_rounding() {
    use model::kv_cache::CacheType;
    let _g = heavy_lock();
    let prompt: Vec<u32> = (0..48).map(|i| 100 + (i * 37) % 900).collect();
    let run = |ty: CacheType| -> Vec<Vec<f32>> {
        let mut m = Llama::new(smollm2_weights_f32().clone(), 128, 1)
            .unwrap()
            .with_cache_type(ty)
            .unwrap();
        let m: &mut dyn LanguageModel = &mut m;
        let mut rows = vec![m.forward(&[(0, &prompt)]).unwrap().remove(0)];
        for _ in 0..16 {
            let next = decode::greedy_choice(rows.last().unwrap());
            rows.push(m.forward(&[(0, &[next])]).unwrap().remove(0));
        }
        rows
    };
    let exact = run(CacheType::F32);
    for (ty, tol) in [(CacheType::F16, 0.05), (CacheType::Q8_0, 0.5)] {
        let got = run(ty);
        let mut worst = 0f32;
        for (g, e) in got.iter().zip(&exact) {
            assert_eq!(decode::greedy_choice(g), decode::greedy_choice(e), "{ty}");
            let d = g
                .iter()
                .zip(e)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            worst = worst.max(d);
        }
        eprintln!("{ty} cache: largest logit difference from f32 {worst:.4}");
        assert!(worst <= tol, "{ty} cache: {worst} > {tol}");
    }
}
