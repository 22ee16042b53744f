//! Chapter 8 on the real model: a prompt whose greedy continuation by
//! SmolLM2-135M-Instruct falls into a loop, decoded greedily with no
//! penalty and with each penalty, then one step of the `--explain` table
//! where the repetition penalty changes the choice; then the decision
//! guide: for four tasks (factual QA, code, creative writing, chat), a chat
//! prompt run with the recommended settings and with an alternative, and
//! what each run measures.
//!
//! `cargo run --release --example ch08_real_model`
//! (needs the model: `scripts/fetch-model.sh`). The output carries
//! `ANCHOR:` lines so the chapter can include sections. The same runs from
//! the command line: `infer generate PROMPT --strategy greedy --repetition-penalty 1.3`, ...

use anyhow::Result;
use book::smollm2::{SmolLm2, distinct_n, excerpt, one_line, rep3, repeated_ngrams};
use decode::{GenerateParams, Generation, SamplingParams, Strategy, generate, generate_batch};

const PROMPT: &str = "My favourite food is pizza because";
const NEW_TOKENS: usize = 48;

fn main() -> Result<()> {
    let mut m = SmolLm2::load(256, SAMPLES)?;
    penalties(&mut m)?;
    println!();
    guide(&mut m)?;
    Ok(())
}

fn penalties(m: &mut SmolLm2) -> Result<()> {
    let (tok, lm) = (&m.tok, &mut m.lm);
    let prompt = tok.encode(PROMPT);
    let none = SamplingParams::default();
    let settings: Vec<(&str, SamplingParams)> = vec![
        ("no penalty", none.clone()),
        (
            "repetition 1.3 (prompt + output)",
            SamplingParams {
                repetition_penalty: 1.3,
                ..none.clone()
            },
        ),
        (
            "frequency 0.5 (output)",
            SamplingParams {
                frequency_penalty: 0.5,
                ..none.clone()
            },
        ),
        (
            "presence 0.5 (output)",
            SamplingParams {
                presence_penalty: 0.5,
                ..none.clone()
            },
        ),
        (
            "no-repeat-ngram 3",
            SamplingParams {
                no_repeat_ngram: 3,
                ..none.clone()
            },
        ),
    ];
    let eos: Vec<u32> = tok.eos_id().into_iter().collect();
    println!("ANCHOR: side_by_side");
    println!("prompt: {PROMPT:?}");
    println!("SmolLM2-135M-Instruct, greedy, {NEW_TOKENS} new tokens");
    for (name, sampling) in settings {
        let params = GenerateParams {
            strategy: Strategy::Greedy,
            sampling,
            max_new_tokens: NEW_TOKENS,
            eos_ids: eos.clone(),
            ..Default::default()
        };
        let g = generate(lm, tok, &prompt, &params)?;
        let ids: Vec<u32> = g.tokens.iter().map(|t| t.id).collect();
        println!();
        println!(
            "{name}  ({} of {} token 4-grams are repeats)",
            repeated_ngrams(&ids, 4),
            ids.len().saturating_sub(3)
        );
        println!("  {}", one_line(&g.text));
    }
    println!("ANCHOR_END: side_by_side");

    // The first step where the repetition penalty overrides the raw argmax,
    // as `infer generate --explain` shows it (greedy: no warpers, so the
    // /T column is empty and nothing is cut).
    let params = GenerateParams {
        strategy: Strategy::Greedy,
        sampling: SamplingParams {
            repetition_penalty: 1.3,
            ..none
        },
        max_new_tokens: NEW_TOKENS,
        eos_ids: eos,
        explain_top: 5,
        ..Default::default()
    };
    let g = generate(lm, tok, &prompt, &params)?;
    println!("ANCHOR: explain");
    match g.explain.iter().find(|s| s.rows[0].id != s.chosen) {
        Some(step) => {
            let before: Vec<u32> = g.tokens[..step.step].iter().map(|t| t.id).collect();
            println!(
                "text so far: {:?}",
                format!("{PROMPT}{}", tok.decode(&before))
            );
            print!("{step}");
        }
        None => println!("the repetition penalty never changed the greedy choice"),
    }
    println!("ANCHOR_END: explain");
    Ok(())
}

/// Sampled runs per setting in the decision guide (streams 0.. of `SEED`).
const SAMPLES: usize = 4;
const SEED: u64 = 42;

/// What a task's runs are checked for.
enum Check {
    /// The answer must contain every one of these strings.
    Contains(&'static [&'static str]),
    /// Lower is better: the share of token 3-grams that repeat.
    Repetition,
}

/// One row of the decision guide: a task, a chat prompt for it, the
/// settings the guide recommends and an alternative to measure them against.
struct Task {
    name: &'static str,
    prompt: &'static str,
    tokens: usize,
    check: Check,
    settings: [(&'static str, Option<SamplingParams>); 2],
}

/// What one setting's runs measure.
struct Measured {
    runs: Vec<Generation>,
    passed: usize,
    rep3: f64,
    distinct2: f64,
    different: usize,
}

fn measure(task: &Task, runs: Vec<Generation>) -> Measured {
    let ids: Vec<Vec<u32>> = runs
        .iter()
        .map(|g| g.tokens.iter().map(|t| t.id).collect())
        .collect();
    let n = runs.len() as f64;
    let passed = match task.check {
        Check::Contains(needles) => runs
            .iter()
            .filter(|g| needles.iter().all(|s| g.text.contains(s)))
            .count(),
        Check::Repetition => 0,
    };
    let mut texts: Vec<&str> = runs.iter().map(|g| g.text.as_str()).collect();
    texts.sort_unstable();
    texts.dedup();
    Measured {
        passed,
        rep3: ids.iter().map(|i| rep3(i)).sum::<f64>() / n,
        distinct2: ids.iter().map(|i| distinct_n(i, 2)).sum::<f64>() / n,
        different: texts.len(),
        runs,
    }
}

/// `s` safe inside a Markdown table cell: no column breaks, no emphasis,
/// no code spans.
fn markdown_cell(s: &str) -> String {
    s.replace('`', "")
        .replace('|', "\\|")
        .replace('*', "\\*")
        .replace('_', "\\_")
}

fn sampled(temperature: f32, top_p: f32, repetition_penalty: f32) -> Option<SamplingParams> {
    Some(SamplingParams {
        temperature,
        top_p,
        repetition_penalty,
        ..Default::default()
    })
}

fn guide(m: &mut SmolLm2) -> Result<()> {
    let tasks = [
        Task {
            name: "factual QA",
            prompt: "What is the capital of France?",
            tokens: 24,
            check: Check::Contains(&["Paris"]),
            settings: [("greedy", None), ("T 1", sampled(1.0, 1.0, 1.0))],
        },
        Task {
            name: "code",
            prompt: "Write a Python function that returns the factorial of n.",
            tokens: 64,
            check: Check::Contains(&["def ", "return"]),
            settings: [("greedy", None), ("T 1", sampled(1.0, 1.0, 1.0))],
        },
        Task {
            name: "creative writing",
            prompt: "Write a short poem about the sea.",
            tokens: 64,
            check: Check::Repetition,
            settings: [
                ("T 0.8, top-p 0.95, repetition 1.1", sampled(0.8, 0.95, 1.1)),
                ("greedy", None),
            ],
        },
        Task {
            name: "chat",
            prompt: "How can I sleep better at night?",
            tokens: 64,
            check: Check::Repetition,
            settings: [
                ("T 0.7, top-p 0.9, repetition 1.1", sampled(0.7, 0.9, 1.1)),
                ("greedy", None),
            ],
        },
    ];
    let mut rows = Vec::new();
    println!("ANCHOR: guide_measures");
    println!(
        "SmolLM2-135M-Instruct, chat prompts; sampled settings run {SAMPLES} times (streams of seed {SEED})"
    );
    println!(
        "{:<17} {:<35} {:>5} {:>8} {:>6} {:>11} {:>10}",
        "task", "settings", "runs", "check", "rep-3", "distinct-2", "different"
    );
    for task in &tasks {
        let prompt = m.chat_prompt(task.prompt);
        let mut results = Vec::new();
        for (label, sampling) in &task.settings {
            let params = GenerateParams {
                strategy: match sampling {
                    Some(_) => Strategy::Sample { seed: SEED },
                    None => Strategy::Greedy,
                },
                sampling: sampling.clone().unwrap_or_default(),
                max_new_tokens: task.tokens,
                eos_ids: m.eos(),
                ..Default::default()
            };
            let runs = match sampling {
                Some(_) => {
                    let prompts = vec![prompt.clone(); SAMPLES];
                    generate_batch(&mut m.lm, &m.tok, &prompts, &params)?
                }
                None => vec![generate(&mut m.lm, &m.tok, &prompt, &params)?],
            };
            let r = measure(task, runs);
            println!(
                "{:<17} {:<35} {:>5} {:>8} {:>6.2} {:>11.2} {:>10}",
                task.name,
                label,
                r.runs.len(),
                match task.check {
                    Check::Contains(_) => format!("{}", r.passed),
                    Check::Repetition => "-".into(),
                },
                r.rep3,
                r.distinct2,
                r.different
            );
            results.push(r);
        }
        rows.push(results);
    }
    println!(
        "(check: answers containing {}; rep-3: mean share of repeated token 3-grams; distinct-2: mean share of distinct token 2-grams; different: distinct texts among the runs)",
        tasks
            .iter()
            .filter_map(|t| match t.check {
                Check::Contains(s) => Some(format!(
                    "{} for {}",
                    s.iter()
                        .map(|x| format!("{x:?}"))
                        .collect::<Vec<_>>()
                        .join(" and "),
                    t.name
                )),
                Check::Repetition => None,
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("ANCHOR_END: guide_measures");

    println!("ANCHOR: guide");
    println!("| task | use | measured on SmolLM2 | output with these settings (excerpt) |");
    println!("|---|---|---|---|");
    for (task, r) in tasks.iter().zip(&rows) {
        let (good, alt) = (&task.settings[0].0, &task.settings[1].0);
        let evidence = match task.check {
            Check::Contains(s) => format!(
                "{} in {} of {} runs; {alt}: {} of {}",
                s.iter()
                    .map(|x| format!("`{}`", x.trim()))
                    .collect::<Vec<_>>()
                    .join(" and "),
                r[0].passed,
                r[0].runs.len(),
                r[1].passed,
                r[1].runs.len()
            ),
            Check::Repetition => format!(
                "repeated 3-grams {:.2}, {} different texts in {}; {alt}: {:.2}, {} in {}",
                r[0].rep3,
                r[0].different,
                r[0].runs.len(),
                r[1].rep3,
                r[1].different,
                r[1].runs.len()
            ),
        };
        println!(
            "| {} ({:?}) | {good} | {evidence} | {} |",
            task.name,
            task.prompt,
            markdown_cell(&excerpt(&r[0].runs[0].text.replace("```python", ""), 70))
        );
    }
    println!("ANCHOR_END: guide");
    Ok(())
}
