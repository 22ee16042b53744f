//! The continuous-batching scheduler: every request gets the tokens it gets
//! alone, whatever joins or leaves beside it; the queue refuses when full
//! and never loses an accepted request; cancellation frees a slot at once.

mod common;

use std::collections::HashMap;

use decode::{
    Event, FinishReason, GenerateParams, LanguageModel, PenaltyScope, ProcessorOrder, Request,
    RequestId, SamplingParams, Scheduler, SchedulerConfig, Strategy, SubmitError, TokenOutput,
    generate,
};
use proptest::prelude::*;
use proptest::strategy::Strategy as _;

fn params(sample: Option<u64>, max_new: usize, stop: Option<String>) -> GenerateParams {
    GenerateParams {
        strategy: match sample {
            Some(seed) => Strategy::Sample { seed },
            None => Strategy::Greedy,
        },
        sampling: SamplingParams {
            top_k: 5,
            repetition_penalty: 1.3,
            ..Default::default()
        },
        max_new_tokens: max_new,
        eos_ids: vec![0],
        stop_strings: stop.into_iter().collect(),
        top_logprobs: 2,
        ..Default::default()
    }
}

/// Tokens and the final step's finish reason per request, from events.
#[derive(Default, Debug)]
struct Seen {
    tokens: Vec<TokenOutput>,
    text: String,
    finish: Option<FinishReason>,
    ends: usize,
}

fn record(seen: &mut HashMap<RequestId, Seen>, events: Vec<Event>) {
    for e in events {
        match e {
            Event::Token { id, step } => {
                let s = seen.entry(id).or_default();
                assert!(s.ends == 0, "request {id} got a token after it ended");
                s.text.push_str(&step.delta);
                s.tokens.push(step.token);
                if let Some(f) = step.finish {
                    s.finish = Some(f);
                    s.ends += 1;
                }
            }
            Event::Ended { id, result } => {
                let s = seen.entry(id).or_default();
                s.finish = Some(result.expect("the toy model does not fail"));
                s.ends += 1;
            }
        }
    }
}

/// Which tokens a penalty counts.
fn scope() -> impl proptest::strategy::Strategy<Value = PenaltyScope> {
    prop_oneof![
        Just(PenaltyScope::PromptAndGenerated),
        Just(PenaltyScope::GeneratedOnly),
        (0usize..6).prop_map(PenaltyScope::LastN),
    ]
}

prop_compose! {
    /// The penalties of one request, each often off.
    fn penalties(v: u32)(
        repetition_penalty in prop_oneof![Just(1.0f32), 0.5f32..2.0],
        repetition_scope in scope(),
        presence_penalty in prop_oneof![Just(0.0f32), -2.0f32..=2.0],
        frequency_penalty in prop_oneof![Just(0.0f32), -2.0f32..=2.0],
        frequency_scope in scope(),
        logit_bias in prop::collection::vec((0..v, -100.0f32..=100.0), 0..3),
        banned_ids in prop::collection::vec(0..v, 0..3),
        no_repeat_ngram in prop_oneof![Just(0usize), 2usize..4],
        min_new_tokens in 0usize..3,
    ) -> SamplingParams {
        SamplingParams {
            repetition_penalty,
            repetition_scope,
            presence_penalty,
            frequency_penalty,
            frequency_scope,
            logit_bias,
            banned_ids,
            no_repeat_ngram,
            min_new_tokens,
            ..Default::default()
        }
    }
}

prop_compose! {
    /// One request's processors: its penalties and warpers, in either order.
    fn sampling(v: u32)(
        penalties in penalties(v),
        temperature in prop_oneof![Just(1.0f32), 0.2f32..2.0],
        top_k in 0usize..8,
        top_p in prop_oneof![Just(1.0f32), 0.2f32..1.0],
        min_p in prop_oneof![Just(0.0f32), 0.0f32..0.5],
        typical_p in prop_oneof![Just(1.0f32), 0.3f32..1.0],
        llama_order in any::<bool>(),
    ) -> SamplingParams {
        SamplingParams {
            temperature,
            top_k,
            top_p,
            min_p,
            typical_p,
            order: if llama_order { ProcessorOrder::LlamaCpp } else { ProcessorOrder::HuggingFace },
            ..penalties
        }
    }
}

prop_compose! {
    /// A request with its own processors, log-probs, stop and arrival step.
    fn request(v: u32)(
        prompt in prop::collection::vec(1u32..v, 1..12),
        sample in prop::option::of(any::<u64>()),
        max_new in 1usize..10,
        stop in prop::option::of("[a-e]{1,2}"),
        sampling in sampling(v),
        top_logprobs in 0usize..5,
        arrives in 0usize..6,
    ) -> (Request, usize) {
        let params = GenerateParams {
            sampling,
            top_logprobs,
            ..params(sample, max_new, stop)
        };
        (Request { prompt, params, stream: 0 }, arrives)
    }
}

// ANCHOR: prop_batched
proptest! {
    /// Requests arriving at random steps into a scheduler with few slots
    /// and small prompt chunks, each with its own processors (penalties,
    /// bias, bans, warpers and their order) and its own number of
    /// log-probs, get exactly the tokens (log-probs included), text and
    /// finish reason of a lone `generate` run.
    #[test]
    fn batched_requests_equal_lone_runs(
        tseed in any::<u64>(),
        slots in 1usize..4,
        chunk in 1usize..5,
        reqs in prop::collection::vec(request(12), 1..8),
    ) {
        let v = 12;
        let detok = common::letters(v);
        let config = SchedulerConfig { max_queue: 16, prefill_chunk: chunk, prefill_budget: chunk * 2 };
        let mut sched = Scheduler::new(common::model(v, tseed, slots), common::letters(v), config).unwrap();
        let mut ids = Vec::new();
        let mut seen = HashMap::new();
        let last = reqs.iter().map(|r| r.1).max().unwrap_or(0);
        for step in 0..=last {
            for (r, _) in reqs.iter().filter(|r| r.1 == step) {
                ids.push((sched.submit(r.clone()).unwrap(), r));
            }
            record(&mut seen, sched.step());
        }
        record(&mut seen, sched.run_to_completion());
        prop_assert!(sched.is_idle());
        for (id, r) in ids {
            let alone = generate(&mut common::model(v, tseed, 1), &detok, &r.prompt, &r.params).unwrap();
            let s = &seen[&id];
            prop_assert_eq!(s.ends, 1, "request {} ends exactly once", id);
            prop_assert_eq!(&s.tokens, &alone.tokens);
            prop_assert_eq!(&s.text, &alone.text);
            prop_assert_eq!(&s.finish, &alone.finish);
        }
    }
}
// ANCHOR_END: prop_batched

// ANCHOR: prop_prompt_cache
proptest! {
    /// Requests whose prompts start with one of two shared prefixes, arriving
    /// over many steps into few slots, so that most land in a slot an
    /// earlier request with a related prompt has left: each still gets
    /// exactly the tokens of a lone `generate` run, and every prompt token is
    /// either read or taken from a cache.
    #[test]
    fn requests_reusing_a_cached_prefix_equal_lone_runs(
        tseed in any::<u64>(),
        slots in 1usize..3,
        chunk in 1usize..5,
        bases in prop::collection::vec(prop::collection::vec(1u32..12, 2..10), 2),
        reqs in prop::collection::vec(
            (0usize..2, prop::collection::vec(1u32..12, 0..4), prop::option::of(any::<u64>()),
             1usize..6, 0usize..24),
            1..10,
        ),
    ) {
        let v = 12;
        let detok = common::letters(v);
        let config = SchedulerConfig { max_queue: 16, prefill_chunk: chunk, prefill_budget: chunk };
        let mut sched = Scheduler::new(common::history_model(v, tseed, slots), common::letters(v), config).unwrap();
        let reqs: Vec<(Request, usize)> = reqs
            .into_iter()
            .map(|(b, tail, sample, max_new, at)| {
                let prompt = [bases[b].clone(), tail].concat();
                (Request { prompt, params: params(sample, max_new, None), stream: 0 }, at)
            })
            .collect();
        let (mut ids, mut seen) = (Vec::new(), HashMap::new());
        for step in 0..24 {
            for (r, _) in reqs.iter().filter(|r| r.1 == step) {
                ids.push((sched.submit(r.clone()).unwrap(), r));
            }
            record(&mut seen, sched.step());
        }
        record(&mut seen, sched.run_to_completion());
        let st = sched.stats();
        let prompt_total: usize = reqs.iter().map(|r| r.0.prompt.len()).sum();
        prop_assert_eq!((st.prompt_tokens + st.reused_tokens) as usize, prompt_total);
        for (id, r) in ids {
            let alone = generate(&mut common::history_model(v, tseed, 1), &detok, &r.prompt, &r.params).unwrap();
            let s = &seen[&id];
            prop_assert_eq!(s.ends, 1, "request {} ends exactly once", id);
            prop_assert_eq!(&s.tokens, &alone.tokens);
            prop_assert_eq!(&s.finish, &alone.finish);
        }
    }
}
// ANCHOR_END: prop_prompt_cache

/// A small queue, and prompts read three tokens a step in chunks of three.
fn chunks_of_three() -> SchedulerConfig {
    SchedulerConfig {
        max_queue: 4,
        prefill_chunk: 3,
        prefill_budget: 3,
    }
}

/// A second request with the first one's prompt, into the one slot it left,
/// reads only what does not fill whole chunks, and gets the same tokens.
#[test]
fn a_repeated_prompt_is_read_from_the_cache() {
    let v = 12;
    let mut sched = Scheduler::new(
        common::history_model(v, 5, 1),
        common::letters(v),
        chunks_of_three(),
    )
    .unwrap();
    let req = Request {
        prompt: vec![3, 1, 4, 1, 5, 9, 2, 6],
        params: params(None, 4, None),
        stream: 0,
    };
    let mut tokens = Vec::new();
    for cached in [0, 6] {
        let mut seen = HashMap::new();
        let id = sched.submit(req.clone()).unwrap();
        record(&mut seen, sched.step());
        // The step that gave it a slot says what it took from the cache.
        assert_eq!(sched.admitted(), &[(id, cached)]);
        record(&mut seen, sched.run_to_completion());
        assert!(sched.admitted().is_empty());
        tokens.push(seen.remove(&id).unwrap().tokens);
    }
    // Eight prompt tokens in chunks of three: the second run takes the two
    // whole chunks (six tokens) from the cache and reads the last two.
    let st = sched.stats();
    assert_eq!((st.reused_tokens, st.prompt_tokens), (6, 8 + 2));
    assert_eq!(tokens[0], tokens[1]);
}

/// With a chunking-free model, a prompt cache reuses any shared prefix, not
/// just whole chunks, and keeps the answer too: a repeated prompt reads
/// only its last token, and a next turn that resends the first answer
/// reads only what is new. Each gets the tokens of a lone run.
#[test]
fn a_chunking_free_model_reuses_any_prefix_and_the_answer() {
    let v = 12;
    let config = chunks_of_three();
    let model = || common::history_model(v, 5, 1).with_chunking_free();
    // As the server holds it: boxed, and still saying so.
    let boxed: Box<dyn LanguageModel> = Box::new(model());
    assert!(boxed.chunking_free());
    let mut sched = Scheduler::new(boxed, common::letters(v), config).unwrap();
    let mut run = |prompt: Vec<u32>, cached: usize| {
        let req = Request {
            prompt,
            params: params(None, 4, None),
            stream: 0,
        };
        let mut seen = HashMap::new();
        let id = sched.submit(req.clone()).unwrap();
        record(&mut seen, sched.step());
        assert_eq!(sched.admitted(), &[(id, cached)], "{:?}", req.prompt);
        record(&mut seen, sched.run_to_completion());
        let tokens = seen.remove(&id).unwrap().tokens;
        let alone = generate(&mut model(), &common::letters(v), &req.prompt, &req.params).unwrap();
        assert_eq!(tokens, alone.tokens, "{:?}", req.prompt);
        tokens
    };
    let first = vec![3, 1, 4, 1, 5, 9, 2, 6];
    let answer = run(first.clone(), 0);
    // The same eight tokens again: seven from the cache (the last is read
    // for its logits), where whole chunks of three would give six.
    run(first.clone(), 7);
    // The next turn: the prompt, the answer's tokens that were fed back
    // (all but the last, which no step read), and something new.
    let fed_back: Vec<u32> = answer[..answer.len() - 1].iter().map(|t| t.id).collect();
    let next = [first.as_slice(), &fed_back, &[7, 7]].concat();
    run(next, first.len() + fed_back.len());
}

#[test]
fn a_full_queue_refuses_and_nothing_accepted_is_lost() {
    let v = 8;
    let config = SchedulerConfig {
        max_queue: 3,
        ..Default::default()
    };
    let mut sched = Scheduler::new(common::model(v, 1, 2), common::letters(v), config).unwrap();
    let req = Request {
        prompt: vec![1, 2],
        params: params(None, 4, None),
        stream: 0,
    };
    let mut accepted = Vec::new();
    for _ in 0..3 {
        accepted.push(sched.submit(req.clone()).unwrap());
    }
    assert!(matches!(
        sched.submit(req.clone()),
        Err(SubmitError::QueueFull(3))
    ));
    assert_eq!(sched.stats().refused, 1);
    // One step moves two into slots; the queue has room again.
    let mut seen = HashMap::new();
    record(&mut seen, sched.step());
    assert_eq!((sched.running(), sched.waiting()), (2, 1));
    accepted.push(sched.submit(req.clone()).unwrap());
    record(&mut seen, sched.run_to_completion());
    for id in accepted {
        assert_eq!(seen[&id].ends, 1, "request {id}");
    }
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let v = 8;
    let mut sched = Scheduler::new(
        common::model(v, 1, 1),
        common::letters(v),
        SchedulerConfig::default(),
    )
    .unwrap();
    let ok = params(None, 4, None);
    let cases = [
        (vec![], ok.clone(), "prompt"),
        (vec![9], ok.clone(), "outside the vocabulary"),
        (vec![1; 256], ok.clone(), "no room"),
        (
            vec![1],
            GenerateParams {
                strategy: Strategy::Beam(Default::default()),
                // Beam search with log-probs is refused for those first.
                top_logprobs: 0,
                ..ok.clone()
            },
            "stream",
        ),
        (
            vec![1],
            GenerateParams {
                sampling: SamplingParams {
                    top_p: 0.0,
                    ..Default::default()
                },
                ..ok.clone()
            },
            "top_p",
        ),
    ];
    for (prompt, params, why) in cases {
        let e = sched
            .submit(Request {
                prompt,
                params,
                stream: 0,
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{e:?} should mention {why:?}");
    }
    assert!(sched.is_idle());
    assert!(
        Scheduler::new(
            common::model(v, 1, 0),
            common::letters(v),
            SchedulerConfig::default()
        )
        .is_err()
    );
}

#[test]
fn cancelling_frees_the_slot_for_the_next_request_within_one_step() {
    let v = 8;
    let mut sched = Scheduler::new(
        common::model(v, 3, 1),
        common::letters(v),
        SchedulerConfig::default(),
    )
    .unwrap();
    let long = Request {
        prompt: vec![1],
        params: GenerateParams {
            max_new_tokens: 200,
            ..params(Some(7), 200, None)
        },
        stream: 0,
    };
    let a = sched.submit(long.clone()).unwrap();
    let b = sched.submit(long).unwrap();
    let mut seen = HashMap::new();
    record(&mut seen, sched.step());
    record(&mut seen, sched.step());
    assert_eq!((sched.running(), sched.waiting()), (1, 1));
    sched.cancel(a);
    let events = sched.step();
    record(&mut seen, events);
    assert_eq!(seen[&a].finish, Some(FinishReason::Cancelled));
    assert_eq!(seen[&a].ends, 1);
    assert_eq!(sched.stats().cancelled, 1);
    assert!(seen.contains_key(&b), "b took a's slot in the same step");
    // Cancelling a request that has ended changes nothing.
    sched.cancel(a);
    record(&mut seen, sched.step());
    assert_eq!((seen[&a].ends, sched.stats().cancelled), (1, 1));
    // Cancelling a waiting request also ends it.
    let c = sched
        .submit(Request {
            prompt: vec![2],
            params: params(None, 3, None),
            stream: 0,
        })
        .unwrap();
    sched.cancel(c);
    record(&mut seen, sched.step());
    assert_eq!(seen[&c].finish, Some(FinishReason::Cancelled));
    assert_eq!(sched.stats().cancelled, 2);
}

/// Long prompts joining a running request are read a chunk at a time
/// beside it: the running request gets a token on every step while they
/// are read, and no step reads more prompt tokens than the budget.
#[test]
fn long_prompts_joining_never_stall_a_running_request() {
    let v = 12;
    let (chunk, budget) = (4, 8);
    let config = SchedulerConfig {
        max_queue: 8,
        prefill_chunk: chunk,
        prefill_budget: budget,
    };
    let mut sched = Scheduler::new(common::model(v, 9, 4), common::letters(v), config).unwrap();
    // No end-of-sequence token, so only the length ends a request.
    let endless = |prompt: Vec<u32>, max_new: usize| Request {
        prompt,
        params: GenerateParams {
            eos_ids: Vec::new(),
            ..params(None, max_new, None)
        },
        stream: 0,
    };
    let running = sched.submit(endless(vec![3, 1], 200)).unwrap();
    let mut seen = HashMap::new();
    // Its prompt, then its first decode step.
    record(&mut seen, sched.step());
    record(&mut seen, sched.step());
    assert_eq!(seen[&running].tokens.len(), 2);
    let long: Vec<Vec<u32>> = [50, 30, 21]
        .iter()
        .map(|&n| (0..n).map(|i| 1 + (i * 7 % (v as u32 - 1))).collect())
        .collect();
    let total: usize = long.iter().map(Vec::len).sum();
    let joined: Vec<RequestId> = long
        .iter()
        .map(|p| sched.submit(endless(p.clone(), 3)).unwrap())
        .collect();
    let mut read = sched.stats().prompt_tokens;
    let start = read;
    let mut steps = 0;
    while (read - start) < total as u64 {
        let before = seen[&running].tokens.len();
        record(&mut seen, sched.step());
        steps += 1;
        let now = sched.stats().prompt_tokens;
        assert!(
            now - read <= budget as u64,
            "step {steps} read {} prompt tokens, over the budget of {budget}",
            now - read
        );
        read = now;
        assert_eq!(
            seen[&running].tokens.len(),
            before + 1,
            "step {steps}: the running request got no token while prompts were read"
        );
        assert!(steps <= total, "the prompts are never read");
    }
    // 101 tokens, two chunks of four a step: at least 13 steps.
    assert!(steps >= total.div_ceil(budget), "{steps} steps");
    record(&mut seen, sched.run_to_completion());
    for id in joined {
        assert_eq!(seen[&id].tokens.len(), 3, "request {id}");
    }
}
