//! Stop strings and UTF-8 streaming.

mod common;

use decode::{FinishReason, GenerateParams, StopMatcher, Strategy, Utf8Stream, generate};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    // ANCHOR: prop_stop
    /// Stop strings never appear in the output, even when split across
    /// tokens; the output is exactly the text before the first stop string.
    #[test]
    fn stop_strings_never_in_output(
        seed in any::<u64>(), tseed in any::<u64>(),
        pieces in prop::collection::vec("[ab]{1,3}", 3..8),
        stops in prop::collection::vec("[ab]{2,4}", 1..3),
    ) {
        let v = pieces.len();
        let detok: Vec<Vec<u8>> = pieces.iter().map(|p| p.as_bytes().to_vec()).collect();
        let params = GenerateParams {
            strategy: Strategy::Sample { seed },
            max_new_tokens: 12,
            stop_strings: stops.clone(),
            ..Default::default()
        };
        let g = generate(&mut common::model(v, tseed, 1), &detok, &[0], &params).unwrap();
        for s in &stops {
            prop_assert!(!g.text.contains(s.as_str()), "{:?} contains stop {:?}", g.text, s);
        }
        let full: String = g.tokens.iter().map(|t| t.text.as_str()).collect();
        match &g.finish {
            Some(FinishReason::StopString(s)) => {
                let expect = format!("{}{}", g.text, s);
                prop_assert!(full.starts_with(&expect), "{:?} vs full {:?}", expect, full);
            }
            _ => prop_assert_eq!(&g.text, &full),
        }
    }
    // ANCHOR_END: prop_stop

    /// Splitting UTF-8 text into arbitrary byte chunks and streaming it back
    /// gives the same text.
    #[test]
    fn utf8_stream_reassembles(text in "\\PC{0,20}", cuts in prop::collection::vec(0usize..80, 0..6)) {
        let bytes = text.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort();
        let mut s = Utf8Stream::new();
        let mut out = String::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([bytes.len()]) {
            out.push_str(&s.push(&bytes[prev..c]));
            prev = c;
        }
        out.push_str(&s.finish());
        prop_assert_eq!(out, text);
    }
}

#[test]
fn stop_string_split_across_pushes() {
    let mut m = StopMatcher::new(&["END".to_string()]);
    assert_eq!(m.push("hello E").emit, "hello ");
    assert_eq!(m.push("N").emit, "");
    let c = m.push("D and more");
    assert_eq!(c.emit, "");
    assert_eq!(c.stopped.as_deref(), Some("END"));
    let mut m = StopMatcher::new(&["END".to_string()]);
    assert_eq!(m.push("hello EN").emit, "hello ");
    assert_eq!(m.push("X").emit, "ENX");
    assert_eq!(m.finish(), "");
}
