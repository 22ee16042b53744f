//! Chapter 7: sampling — temperature, top-k, top-p, min-p — on one
//! distribution, with SVG bar charts written to `book/src/generated/`.
//!
//! `cargo run --release --example ch07_sampling`
//! The output carries `ANCHOR:` lines so the chapter can include sections.

use book::svg::{Svg, bar_panel};
use decode::probs::softmax;
use decode::processors::{MinP, Temperature, TopK, TopP};
use decode::toy::FnModel;
use decode::{
    GenerateParams, LogitsProcessor, ProcessorOrder, SamplingParams, Strategy, TokenHistory,
    generate, sample_from_logits, seeded_rng,
};

const WORDS: [&str; 10] = [
    "the", "a", "cat", "dog", "sat", "ran", "on", "mat", "and", ".",
];
const LOGITS: [f32; 10] = [2.0, 1.5, 1.2, 0.8, 0.5, 0.3, 0.0, -0.5, -1.0, -2.0];
const NONE: TokenHistory<'static> = TokenHistory {
    tokens: &[],
    prompt_len: 0,
};

fn write_svg(name: &str, panels: &[(&str, Vec<f32>, Vec<bool>)]) -> std::io::Result<()> {
    let mut svg = Svg::new(320.0 * panels.len() as f32, 220.0);
    let labels: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
    for (i, (title, v, k)) in panels.iter().enumerate() {
        let colors: Vec<&str> = k
            .iter()
            .map(|&k| if k { "#3b6ea8" } else { "#c8c8c8" })
            .collect();
        bar_panel(
            &mut svg,
            10.0 + 320.0 * i as f32,
            0.0,
            300.0,
            160.0,
            title,
            v,
            &labels,
            &colors,
        );
    }
    svg.write(name)
}

fn kept(x: &[f32]) -> Vec<bool> {
    x.iter().map(|v| *v > f32::NEG_INFINITY).collect()
}

fn apply(p: &dyn LogitsProcessor) -> Vec<f32> {
    let mut x = LOGITS.to_vec();
    p.process(&NONE, &mut x).expect("valid logits");
    x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("ANCHOR: temperature");
    let mut panels = Vec::new();
    println!(
        "{:<8}{}",
        "token",
        WORDS.iter().map(|w| format!("{w:>7}")).collect::<String>()
    );
    for t in [0.5f32, 1.0, 1.5] {
        let p = softmax(&apply(&Temperature::new(t)?));
        println!(
            "{:<8}{}",
            format!("T={t}"),
            p.iter().map(|v| format!("{v:>7.3}")).collect::<String>()
        );
        panels.push((
            if t == 0.5 {
                "T = 0.5"
            } else if t == 1.0 {
                "T = 1"
            } else {
                "T = 1.5"
            },
            p,
            vec![true; 10],
        ));
    }
    write_svg("ch07_temperature.svg", &panels)?;
    println!("ANCHOR_END: temperature");

    println!("ANCHOR: truncation");
    let p = softmax(&LOGITS);
    let filters: Vec<(&str, Box<dyn LogitsProcessor>)> = vec![
        ("top-k 3", Box::new(TopK::new(3))),
        ("top-p 0.9", Box::new(TopP::new(0.9)?)),
        ("min-p 0.1", Box::new(MinP::new(0.1)?)),
    ];
    let mut svg_panels = vec![];
    for (name, f) in &filters {
        let x = apply(f.as_ref());
        let k = kept(&x);
        let mass: f32 = p.iter().zip(&k).filter(|(_, k)| **k).map(|(v, _)| v).sum();
        let names: Vec<&str> = (0..10).filter(|&i| k[i]).map(|i| WORDS[i]).collect();
        println!(
            "{name:<10} keeps {} tokens, mass {mass:.3}: {}",
            names.len(),
            names.join(" ")
        );
        if *name == "top-p 0.9" {
            let mut cum = 0.0;
            for i in 0..10 {
                cum += p[i];
                println!(
                    "    {:<4} p {:.3}  cumulative {:.3}  {}",
                    WORDS[i],
                    p[i],
                    cum,
                    if k[i] { "kept" } else { "cut" }
                );
            }
            svg_panels.push(("nucleus p = 0.9 (grey: cut)", p.clone(), k.clone()));
            svg_panels.push(("renormalised", softmax(&x), k));
        }
    }
    write_svg("ch07_nucleus.svg", &svg_panels)?;
    println!("ANCHOR_END: truncation");

    println!("ANCHOR: order");
    let raw = [3.0f32, 2.0, 1.0];
    println!("softmax of {raw:?}: {:.4?}", softmax(&raw));
    println!(
        "softmax at T = 0.5:     {:.4?}",
        softmax(&raw.map(|x| x / 0.5))
    );
    for order in [ProcessorOrder::HuggingFace, ProcessorOrder::LlamaCpp] {
        let params = SamplingParams {
            temperature: 0.5,
            top_p: 0.8,
            order,
            ..Default::default()
        };
        let chain = params.build_chain(&[], true)?;
        let mut x = vec![3.0, 2.0, 1.0];
        chain.apply(&NONE, &mut x)?;
        let k: Vec<usize> = (0..3).filter(|&i| x[i] > f32::NEG_INFINITY).collect();
        println!(
            "{order:?} order {:?}: keeps tokens {k:?}, final probs {:.3?}",
            chain.names(),
            softmax(&x)
        );
    }
    println!("ANCHOR_END: order");

    println!("ANCHOR: frequencies");
    let n = 10_000;
    let mut counts = [0usize; 10];
    let mut rng = seeded_rng(42, 0);
    for _ in 0..n {
        counts[sample_from_logits(&LOGITS, &mut rng) as usize] += 1;
    }
    let mut chi2 = 0.0f64;
    println!(
        "{:<6} {:>8} {:>9} {:>9}",
        "token", "p", "expected", "observed"
    );
    for i in 0..10 {
        let e = p[i] as f64 * n as f64;
        chi2 += (counts[i] as f64 - e).powi(2) / e;
        println!("{:<6} {:>8.4} {:>9.1} {:>9}", WORDS[i], p[i], e, counts[i]);
    }
    println!("chi-square = {chi2:.2} with 9 degrees of freedom (critical value at 0.001: 27.88)");
    println!("ANCHOR_END: frequencies");

    println!("ANCHOR: explain");
    // A toy model that always proposes the same distribution, to show the
    // explain table for one sampled step.
    let mut model = FnModel::new(10, 1, 16, |_: &[u32]| LOGITS.to_vec());
    let detok: Vec<Vec<u8>> = WORDS.iter().map(|w| w.as_bytes().to_vec()).collect();
    let params = GenerateParams {
        strategy: Strategy::Sample { seed: 7 },
        sampling: SamplingParams {
            temperature: 0.7,
            top_k: 5,
            top_p: 0.9,
            ..Default::default()
        },
        max_new_tokens: 1,
        explain_top: 6,
        ..Default::default()
    };
    let g = generate(&mut model, &detok, &[0], &params)?;
    print!("{}", g.explain[0]);
    println!("ANCHOR_END: explain");
    Ok(())
}
