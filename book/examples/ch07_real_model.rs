//! Chapter 7 on the real model, SmolLM2-135M-Instruct:
//!
//! - `samples`: one prompt continued under greedy decoding and under each
//!   sampling setting, all with the same seed, so the differences come from
//!   the settings alone;
//! - `temperature`: the model's next-token distribution for one prompt at
//!   five temperatures (and `ch07_real_temperature.svg`);
//! - `truncation`: how many tokens top-k, top-p and min-p keep on a
//!   confident prompt and on an open one (and `ch07_real_truncation.svg`);
//! - `recipe`: the combined recipe (temperature, top-k, top-p, repetition
//!   penalty) against greedy and plain sampling on a longer run.
//!
//! `cargo run --release --example ch07_real_model`
//! (needs the model: `scripts/fetch-model.sh`). The same runs from the
//! command line: `infer generate PROMPT --seed 42 --temperature 1 --top-p 1 --top-k 40`, ...

use anyhow::Result;
use book::smollm2::{SmolLm2, one_line, repeated_ngrams};
use book::svg::{Svg, bar_panel};
use decode::probs::{softmax, sorted_desc};
use decode::processors::{MinP, TopK, TopP};
use decode::{
    GenerateParams, LanguageModel, LogitsProcessor, SamplingParams, Strategy, TokenHistory,
    generate,
};

const PROMPT: &str = "Once upon a time, in a small village by the sea,";
const SEED: u64 = 42;
const NEW_TOKENS: usize = 40;
/// The prompt whose next-token distribution the temperature figure shows.
const DIST_PROMPT: &str = "My favourite food is";
const TEMPERATURES: [f32; 5] = [0.1, 0.5, 1.0, 1.5, 2.0];
/// Bars per temperature panel (the rest of the vocabulary is one more bar).
const TOP: usize = 12;
/// The confident and the open prompt of the truncation comparison.
const TRUNC_PROMPTS: [&str; 2] = ["The capital of France is", "My favourite food is"];
const RECIPE_TOKENS: usize = 80;

const NONE: TokenHistory<'static> = TokenHistory {
    tokens: &[],
    prompt_len: 0,
};

/// A token's text as a quoted label: `" Paris"`, `"\n"`.
fn label(m: &SmolLm2, id: usize) -> String {
    format!("{:?}", m.tok.decode(&[id as u32]))
}

/// The logits of the token after `text`, from a fresh slot 0.
fn next_logits(m: &mut SmolLm2, text: &str) -> Result<Vec<f32>> {
    let ids = m.tok.encode(text);
    m.lm.clear(0);
    let logits = LanguageModel::forward(&mut m.lm, &[(0, &ids)])
        .map_err(|e| anyhow::anyhow!(e))?
        .remove(0);
    m.lm.clear(0);
    Ok(logits)
}

fn samples(m: &mut SmolLm2) -> Result<()> {
    let prompt = m.tok.encode(PROMPT);
    let t1 = SamplingParams::default(); // T = 1, every warper off
    let at = |temperature: f32| SamplingParams {
        temperature,
        ..t1.clone()
    };
    let settings: Vec<(&str, Strategy, SamplingParams)> = vec![
        ("greedy", Strategy::Greedy, t1.clone()),
        ("T = 0.5", Strategy::Sample { seed: SEED }, at(0.5)),
        ("T = 1.0", Strategy::Sample { seed: SEED }, t1.clone()),
        ("T = 1.5", Strategy::Sample { seed: SEED }, at(1.5)),
        (
            "T = 1.5, top-k 40",
            Strategy::Sample { seed: SEED },
            SamplingParams {
                top_k: 40,
                ..at(1.5)
            },
        ),
        (
            "T = 1.5, top-p 0.9",
            Strategy::Sample { seed: SEED },
            SamplingParams {
                top_p: 0.9,
                ..at(1.5)
            },
        ),
        (
            "T = 1.5, min-p 0.05",
            Strategy::Sample { seed: SEED },
            SamplingParams {
                min_p: 0.05,
                ..at(1.5)
            },
        ),
    ];
    println!("ANCHOR: samples");
    println!("prompt: {PROMPT:?}");
    println!("SmolLM2-135M-Instruct, {NEW_TOKENS} new tokens, seed {SEED} for every sampled run");
    for (name, strategy, sampling) in settings {
        let params = GenerateParams {
            strategy,
            sampling,
            max_new_tokens: NEW_TOKENS,
            eos_ids: m.eos(),
            ..Default::default()
        };
        let g = generate(&mut m.lm, &m.tok, &prompt, &params)?;
        // Mean log-prob of the chosen tokens under the distribution each was
        // drawn from: how far from the model's favourites the run wandered.
        let mean_lp =
            g.tokens.iter().map(|t| t.logprob as f64).sum::<f64>() / g.tokens.len().max(1) as f64;
        println!();
        println!("{name}  (mean log-prob of the chosen tokens {mean_lp:.2})");
        println!("  {}", one_line(&g.text));
    }
    println!("ANCHOR_END: samples");
    Ok(())
}

fn temperature(m: &mut SmolLm2) -> Result<()> {
    let logits = next_logits(m, DIST_PROMPT)?;
    // The ranking does not depend on T (dividing by T > 0 keeps the order),
    // so every panel shows the same tokens in the same places.
    let order = sorted_desc(&logits);
    let top = &order[..TOP];
    let labels: Vec<String> = top
        .iter()
        .map(|&i| label(m, i))
        .chain(["(rest)".to_string()])
        .collect();
    println!("ANCHOR: temperature");
    println!(
        "next token after {DIST_PROMPT:?}: probability of the {TOP} most likely tokens, and of the other {}",
        logits.len() - TOP
    );
    print!("{:<14}", "token");
    for t in TEMPERATURES {
        print!("{:>9}", format!("T = {t}"));
    }
    println!();
    let dists: Vec<Vec<f32>> = TEMPERATURES
        .iter()
        .map(|&t| softmax(&logits.iter().map(|z| z / t).collect::<Vec<_>>()))
        .collect();
    for (row, lab) in labels.iter().enumerate() {
        print!("{lab:<14}");
        for p in &dists {
            let v = if row < TOP {
                p[top[row]]
            } else {
                1.0 - top.iter().map(|&i| p[i]).sum::<f32>()
            };
            print!("{v:>9.3}");
        }
        println!();
    }
    println!("ANCHOR_END: temperature");

    let (w, h, ph) = (760.0, 90.0, 145.0);
    let mut svg = Svg::new(w + 20.0, ph * TEMPERATURES.len() as f32 + 10.0);
    let mut colors = vec!["#3b6ea8"; TOP];
    colors.push("#c8c8c8");
    for (k, (t, p)) in TEMPERATURES.iter().zip(&dists).enumerate() {
        let mut values: Vec<f32> = top.iter().map(|&i| p[i]).collect();
        values.push(1.0 - values.iter().sum::<f32>());
        let title = format!("T = {t}: next token after \"{DIST_PROMPT}\"");
        bar_panel(
            &mut svg,
            10.0,
            10.0 + ph * k as f32,
            w,
            h,
            &title,
            &values,
            &labels,
            &colors,
        );
    }
    svg.write("ch07_real_temperature.svg")?;
    Ok(())
}

/// How many tokens survive `f`, and the probability (at T = 1) they hold.
fn kept(f: &dyn LogitsProcessor, logits: &[f32], p: &[f32]) -> Result<(usize, f32)> {
    let mut x = logits.to_vec();
    f.process(&NONE, &mut x)?;
    let keep: Vec<usize> = (0..x.len()).filter(|&i| x[i] > f32::NEG_INFINITY).collect();
    Ok((keep.len(), keep.iter().map(|&i| p[i]).sum()))
}

fn truncation(m: &mut SmolLm2) -> Result<()> {
    let filters: Vec<(&str, Box<dyn LogitsProcessor>)> = vec![
        ("top-k 40", Box::new(TopK::new(40))),
        ("top-p 0.9", Box::new(TopP::new(0.9)?)),
        ("top-p 0.95", Box::new(TopP::new(0.95)?)),
        ("min-p 0.05", Box::new(MinP::new(0.05)?)),
    ];
    println!("ANCHOR: truncation");
    println!("tokens each filter keeps at T = 1, and the probability they hold");
    print!("{:<28}{:<18}", "prompt", "top token");
    for (name, _) in &filters {
        print!("{name:>16}");
    }
    println!();
    let mut curves = Vec::new();
    for text in TRUNC_PROMPTS {
        let logits = next_logits(m, text)?;
        let p = softmax(&logits);
        let order = sorted_desc(&p);
        print!(
            "{:<28}{:<18}",
            format!("{text:?}"),
            format!("{} {:.2}", label(m, order[0]), p[order[0]])
        );
        let mut counts = Vec::new();
        for (_, f) in &filters {
            let (n, mass) = kept(f.as_ref(), &logits, &p)?;
            print!("{:>16}", format!("{n} / {mass:.2}"));
            counts.push((n, mass));
        }
        println!();
        let mut cum = 0.0f32;
        let cdf: Vec<f32> = order
            .iter()
            .map(|&i| {
                cum += p[i];
                cum
            })
            .collect();
        curves.push((text, cdf, counts));
    }
    println!("(each cell: tokens kept / their probability)");
    println!("ANCHOR_END: truncation");

    // The cumulative probability of the most likely tokens against their
    // rank (log scale): top-k cuts at a fixed rank, top-p where the curve
    // reaches p.
    let (x0, y0, pw, ph) = (60.0, 30.0, 680.0, 240.0);
    let vocab = curves[0].1.len();
    let decades = (vocab as f32).log10().ceil();
    let xs = |rank: usize| x0 + pw * (rank as f32).log10() / decades;
    let ys = |mass: f32| y0 + ph * (1.0 - mass);
    let mut svg = Svg::new(x0 + pw + 30.0, y0 + ph + 90.0);
    svg.text(
        x0,
        18.0,
        13.0,
        "start",
        "Cumulative probability of the most likely tokens (SmolLM2, T = 1)",
    );
    svg.line(x0, y0 + ph, x0 + pw, y0 + ph, "#000", 1.0, "");
    svg.line(x0, y0, x0, y0 + ph, "#000", 1.0, "");
    for d in 0..=decades as usize {
        let x = xs(10usize.pow(d as u32));
        svg.line(x, y0 + ph, x, y0 + ph + 4.0, "#000", 1.0, "");
        svg.text(
            x,
            y0 + ph + 16.0,
            10.0,
            "middle",
            &10usize.pow(d as u32).to_string(),
        );
    }
    svg.text(
        x0 + pw / 2.0,
        y0 + ph + 32.0,
        11.0,
        "middle",
        "rank of the token (log scale)",
    );
    for tick in [0.0f32, 0.25, 0.5, 0.75, 1.0] {
        svg.text(x0 - 6.0, ys(tick) + 4.0, 10.0, "end", &format!("{tick:.2}"));
        svg.line(x0 - 4.0, ys(tick), x0, ys(tick), "#000", 1.0, "");
    }
    svg.line(xs(40), y0, xs(40), y0 + ph, "#888", 1.0, "4 3");
    svg.text(xs(40) + 4.0, y0 + ph - 6.0, 10.0, "start", "top-k 40");
    svg.line(x0, ys(0.9), x0 + pw, ys(0.9), "#888", 1.0, "4 3");
    svg.text(x0 + pw - 4.0, ys(0.9) + 14.0, 10.0, "end", "top-p 0.9");
    let colors = ["#3b6ea8", "#d9822b"];
    for (k, ((text, cdf, counts), color)) in curves.iter().zip(colors).enumerate() {
        // Every rank up to 100, then 200 steps per decade: enough for a
        // smooth curve without 49 152 points.
        let mut pts = Vec::new();
        let mut last = 0;
        for r in 1..=cdf.len() {
            let step = (r as f32 * (10f32.powf(1.0 / 200.0) - 1.0)) as usize;
            if r <= 100 || r >= last + step.max(1) || r == cdf.len() {
                pts.push((xs(r), ys(cdf[r - 1])));
                last = r;
            }
        }
        svg.polyline(&pts, color, 2.0);
        let (n_p, _) = counts[1];
        svg.circle(xs(n_p), ys(cdf[n_p - 1]), 4.0, color);
        let (n_k, mass_k) = counts[0];
        svg.circle(xs(n_k), ys(cdf[n_k - 1]), 4.0, color);
        let ly = y0 + ph + 52.0 + 16.0 * k as f32;
        svg.rect(x0, ly - 9.0, 14.0, 10.0, color);
        svg.text(
            x0 + 20.0,
            ly,
            11.0,
            "start",
            &format!(
                "\"{text}\": top-p 0.9 keeps {n_p} token{}, top-k 40 keeps 40 (mass {mass_k:.2})",
                if n_p == 1 { "" } else { "s" }
            ),
        );
    }
    svg.write("ch07_real_truncation.svg")?;
    Ok(())
}

fn recipe(m: &mut SmolLm2) -> Result<()> {
    let prompt = m.tok.encode(PROMPT);
    let recipe = SamplingParams {
        temperature: 0.7,
        top_k: 40,
        top_p: 0.9,
        repetition_penalty: 1.1,
        ..Default::default()
    };
    let chain = recipe.build_chain(&m.eos(), true)?;
    let runs: Vec<(String, Strategy, SamplingParams)> = vec![
        ("greedy".into(), Strategy::Greedy, SamplingParams::default()),
        (
            "T = 1, nothing else".into(),
            Strategy::Sample { seed: SEED },
            SamplingParams::default(),
        ),
        (
            format!("recipe: {}", chain.names().join(" → ")),
            Strategy::Sample { seed: SEED },
            recipe.clone(),
        ),
    ];
    println!("ANCHOR: recipe");
    println!("prompt: {PROMPT:?}, {RECIPE_TOKENS} new tokens, seed {SEED}");
    println!(
        "recipe: temperature {}, top-k {}, top-p {}, repetition penalty {}",
        recipe.temperature, recipe.top_k, recipe.top_p, recipe.repetition_penalty
    );
    for (name, strategy, sampling) in runs {
        let params = GenerateParams {
            strategy,
            sampling,
            max_new_tokens: RECIPE_TOKENS,
            eos_ids: m.eos(),
            ..Default::default()
        };
        let g = generate(&mut m.lm, &m.tok, &prompt, &params)?;
        let ids: Vec<u32> = g.tokens.iter().map(|t| t.id).collect();
        println!();
        println!(
            "{name}  ({} tokens, {} of the token 4-grams are repeats)",
            ids.len(),
            repeated_ngrams(&ids, 4)
        );
        println!("  {}", one_line(&g.text));
    }
    println!("ANCHOR_END: recipe");
    Ok(())
}

fn main() -> Result<()> {
    let mut m = SmolLm2::load(128, 1)?;
    samples(&mut m)?;
    println!();
    temperature(&mut m)?;
    println!();
    truncation(&mut m)?;
    println!();
    recipe(&mut m)?;
    Ok(())
}
