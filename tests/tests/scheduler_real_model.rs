//! Continuous batching on the real model: requests that join a running
//! batch at different steps, with prompts read in chunks, get the same
//! tokens as when each runs alone (the engine picks each row's kernel by
//! its own sequence, so batch neighbours change nothing). Uses the file's
//! quantized weights, in both sum orders: the server's (block sums) and
//! llama.cpp's. Needs the model.

use std::collections::HashMap;

use decode::{
    Event, GenerateParams, Request, RequestId, SamplingParams, Scheduler, SchedulerConfig,
    Strategy, generate,
};
use engine::quant::SumOrder;
use integration_tests::{heavy_lock, smollm2_path, smollm2_weights};
use model::batch::LogitsFor;
use model::gguf::GgufFile;
use model::llama::Llama;
use model::tokenizer::Tokenizer;

fn run(
    sched: &mut Scheduler<Llama, Tokenizer>,
    reqs: &[(usize, Request)],
) -> HashMap<usize, Vec<u32>> {
    let mut ids: HashMap<RequestId, usize> = HashMap::new();
    let mut out: HashMap<usize, Vec<u32>> = HashMap::new();
    let mut step = 0;
    loop {
        for (i, (at, r)) in reqs.iter().enumerate() {
            if *at == step {
                ids.insert(sched.submit(r.clone()).unwrap(), i);
            }
        }
        for e in sched.step() {
            match e {
                Event::Token { id, step } => out.entry(ids[&id]).or_default().push(step.token.id),
                Event::Ended { id, result } => panic!("request {id} ended: {result:?}"),
            }
        }
        step += 1;
        if sched.is_idle() && step > reqs.iter().map(|r| r.0).max().unwrap_or(0) {
            return out;
        }
    }
}

#[test]
fn requests_get_the_same_tokens_alone_and_batched() {
    let _g = heavy_lock();
    let g = GgufFile::open(smollm2_path()).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let greedy = GenerateParams {
        max_new_tokens: 12,
        ..Default::default()
    };
    let sample = GenerateParams {
        strategy: Strategy::Sample { seed: 11 },
        sampling: SamplingParams {
            temperature: 0.8,
            ..Default::default()
        },
        ..greedy.clone()
    };
    let long = "The history of the printing press begins in the fifteenth century, when \
                movable type changed how books were made and who could read them. Within fifty \
                years, presses were running in more than two hundred European cities, and \
                the price of a book had fallen so far that a merchant could own several. In";
    let prompts = [
        ("The capital of France is", &greedy, 0),
        (long, &greedy, 0),
        ("Once upon a time", &sample, 2),
        ("def fibonacci(n):", &greedy, 5),
        ("My favourite food is", &sample, 6),
    ];
    let reqs: Vec<(usize, Request)> = prompts
        .iter()
        .map(|(p, params, at)| {
            let r = Request {
                prompt: tok.encode(p),
                params: (*params).clone(),
                stream: 0,
            };
            (*at, r)
        })
        .collect();
    // Chunks of SGEMM_MIN_TOKENS: the long prompt's first chunk takes the
    // sgemm path beside decode rows on the integer path.
    let chunk = engine::nn::SGEMM_MIN_TOKENS;
    assert!(
        reqs[1].1.prompt.len() > chunk,
        "the long prompt spans chunks"
    );
    let config = SchedulerConfig {
        max_queue: 8,
        prefill_chunk: chunk,
        prefill_budget: 2 * chunk,
    };
    for order in [SumOrder::Block, SumOrder::Ggml] {
        let model = |slots| {
            Llama::new(smollm2_weights().clone(), 128, slots)
                .unwrap()
                .with_sum_order(order)
        };
        let mut batched = Scheduler::new(model(4), tok.clone(), config).unwrap();
        let together = run(&mut batched, &reqs);
        assert!(batched.stats().steps > 0);
        for (i, (_, r)) in reqs.iter().enumerate() {
            let mut lone = Scheduler::new(model(1), tok.clone(), config).unwrap();
            let alone = run(&mut lone, &[(0, r.clone())]);
            assert_eq!(
                together[&i], alone[&0],
                "{order:?}: request {i} ({:?})",
                prompts[i].0
            );
            if r.prompt.len() <= config.prefill_chunk {
                // One chunk is the whole prompt: the plain generator agrees too.
                let g = generate(&mut model(1), &tok, &r.prompt, &r.params).unwrap();
                let ids: Vec<u32> = g.tokens.iter().map(|t| t.id).collect();
                assert_eq!(together[&i], ids, "{order:?}: request {i} against generate");
            }
        }
    }
}

/// Prompt caching on the real model: three requests that share a long
/// prefix (a chat's system prompt and first turn) run one after another
/// through one slot. The later ones take the prefix's whole chunks from the
/// cache the earlier ones left, and still get the same tokens, with the
/// same log-probabilities to the last bit, as each run alone.
#[test]
fn a_prefix_from_the_cache_gives_the_same_tokens_and_log_probs() {
    let _g = heavy_lock();
    let g = GgufFile::open(smollm2_path()).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let params = GenerateParams {
        max_new_tokens: 8,
        top_logprobs: 3,
        ..Default::default()
    };
    let system = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by \
                  Hugging Face. Answer in one short sentence, in plain English, without lists \
                  or headings, and say so when you do not know the answer instead of guessing \
                  at it. If a question has several good answers, give the one most people \
                  would expect, and keep any numbers you quote to three significant \
                  figures.<|im_end|>\n<|im_start|>user\n";
    let prompts = [
        format!("{system}What is the capital of France?<|im_end|>\n<|im_start|>assistant\n"),
        format!("{system}What is the capital of Spain?<|im_end|>\n<|im_start|>assistant\n"),
        format!("{system}Name a river.<|im_end|>\n<|im_start|>assistant\n"),
    ];
    // Chunks of SGEMM_MIN_TOKENS: in llama.cpp's sum order a whole chunk
    // takes the block-sum kernel and a shorter one the other, so a prefix
    // reused up to a point inside a chunk would change the bits.
    let chunk = engine::nn::SGEMM_MIN_TOKENS;
    let config = SchedulerConfig {
        max_queue: 4,
        prefill_chunk: chunk,
        prefill_budget: chunk,
    };
    for order in [SumOrder::Block, SumOrder::Ggml] {
        let model = || {
            Llama::new(smollm2_weights().clone(), 128, 1)
                .unwrap()
                .with_sum_order(order)
        };
        let outputs = |sched: &mut Scheduler<Llama, Tokenizer>, p: &str| {
            let id = sched
                .submit(Request {
                    prompt: tok.encode(p),
                    params: params.clone(),
                    stream: 0,
                })
                .unwrap();
            let mut got = Vec::new();
            for e in sched.run_to_completion() {
                match e {
                    Event::Token { id: i, step } if i == id => got.push(step.token),
                    Event::Token { .. } => {}
                    Event::Ended { result, .. } => panic!("ended: {result:?}"),
                }
            }
            got
        };
        let mut shared = Scheduler::new(model(), tok.clone(), config).unwrap();
        for p in &prompts {
            let cached = outputs(&mut shared, p);
            let mut lone = Scheduler::new(model(), tok.clone(), config).unwrap();
            assert_eq!(cached, outputs(&mut lone, p), "{order:?}: {p:?}");
        }
        let st = shared.stats();
        let system_len = tok.encode(system).len();
        assert!(
            system_len >= 2 * chunk,
            "the system prompt fills two chunks"
        );
        // Summed by block, SmolLM2's rows do not depend on the chunking,
        // so the later requests reuse the whole system prompt and more
        // (the second shares "What is the capital of" with the first);
        // in llama.cpp's order, whole chunks only.
        let free = model().chunking_free();
        assert_eq!(free, order == SumOrder::Block, "{order:?}");
        let least = if free {
            2 * system_len + 1
        } else {
            2 * (system_len / chunk * chunk)
        };
        assert!(
            st.reused_tokens >= least as u64,
            "{order:?}: the later requests reuse the system prompt ({st:?}, at least {least})"
        );
    }
}

/// A model that says it is chunking-free (`Llama::chunking_free`: SmolLM2's
/// Q4_1 summed by block) gives every logit the same bits whether a prompt
/// is fed whole, in chunks of 16 or 7, or one token at a time; in
/// llama.cpp's order it makes no such claim, and the bits do differ.
#[test]
fn a_chunking_free_model_gives_the_same_bits_in_any_chunking() {
    let _g = heavy_lock();
    let tok = Tokenizer::from_gguf(&GgufFile::open(smollm2_path()).unwrap()).unwrap();
    let prompt = tok.encode(
        "<|im_start|>user\nWhat grows in a small garden in early spring, before the last \
         frost, and which of those plants would you sow first if the soil were still cold and \
         wet?<|im_end|>\n<|im_start|>assistant\n",
    );
    // Long enough that the whole prompt takes the many-token kernel, where
    // llama.cpp's order differs from the shorter chunks'.
    assert!(
        prompt.len() >= engine::nn::SGEMM_MIN_TOKENS,
        "{} tokens",
        prompt.len()
    );
    for order in [SumOrder::Block, SumOrder::Ggml] {
        let mut last = Vec::new();
        for chunk in [prompt.len(), 16, 7, 1] {
            let mut lm = Llama::new(smollm2_weights().clone(), 128, 1)
                .unwrap()
                .with_sum_order(order);
            let mut logits = Vec::new();
            for c in prompt.chunks(chunk) {
                logits = lm.forward(&[(0, c)], LogitsFor::Last).unwrap().remove(0);
            }
            last.push((
                chunk,
                logits.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            ));
        }
        let free = Llama::new(smollm2_weights().clone(), 8, 1)
            .unwrap()
            .with_sum_order(order)
            .chunking_free();
        let same = last[1..].iter().all(|(_, bits)| *bits == last[0].1);
        assert_eq!(free, order == SumOrder::Block, "{order:?}");
        if free {
            assert!(same, "{order:?}: a chunking changed the logits");
        } else {
            assert!(
                !same,
                "{order:?}: chunkings agree here, so the test shows nothing"
            );
        }
    }
}
