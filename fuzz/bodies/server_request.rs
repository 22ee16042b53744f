//! The server-request fuzz body, shared by the `server_request` fuzz target
//! and the corpus replay test (`tests/tests/fuzz_corpus_replay.rs`).

use infer::serve::api::{MAX_N, MAX_STOP, MAX_TOP_LOGPROBS, parse_chat, parse_completion};

/// Parse `data` as the body of `POST /v1/completions` and of
/// `POST /v1/chat/completions`.
///
/// Checked: nothing panics; a refusal is a 400 with a message; an accepted
/// body gives parameters that pass decode's own validation and lie in the
/// API's ranges (1..=`MAX_N` choices, at most `MAX_STOP` stop strings, at
/// most `MAX_TOP_LOGPROBS` alternatives, at least one new token).
pub fn server_request(data: &[u8]) {
    let check = |job: &infer::serve::api::Job| {
        job.params
            .validate()
            .unwrap_or_else(|e| panic!("accepted parameters fail validation: {e}"));
        assert!((1..=MAX_N).contains(&job.n), "n = {}", job.n);
        assert!(job.params.stop_strings.len() <= MAX_STOP);
        assert!(job.params.top_logprobs <= MAX_TOP_LOGPROBS);
        assert!(job.params.max_new_tokens >= 1);
    };
    match parse_completion(data) {
        Ok((_, _, job)) => check(&job),
        Err(e) => assert!(e.status.as_u16() == 400 && !e.message.is_empty(), "{e:?}"),
    }
    match parse_chat(data) {
        Ok((messages, job)) => {
            assert!(!messages.is_empty());
            check(&job);
        }
        Err(e) => assert!(e.status.as_u16() == 400 && !e.message.is_empty(), "{e:?}"),
    }
}
